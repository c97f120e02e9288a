//! Shared test fixtures (a dev-dependency of the crates' tests, never of
//! the product):
//!
//! * [`pki`]: a throw-away certificate authority with a server certificate
//!   for `localhost`/`127.0.0.1` and a client certificate, and an HTTPS
//!   listener that requires that client certificate ([`pki::serve_mtls`]);
//! * [`KeptCheckpoint`]: a connector checkpoint kept across attempts, as
//!   the engine keeps it on the delivery record;
//! * [`store_in`]: a real sled hub store in a directory;
//! * [`clamd`]: a real ClamAV daemon with a test signature for EICAR.
//!
//! Test code: panics on setup failures are the point (a broken fixture
//! must stop the test, loudly).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod clamd;
pub mod pki;
pub mod python;

use std::path::Path;
use std::sync::{Arc, Mutex};

use drehscheibe_model::{Checkpoint, CheckpointSink};
use drehscheibe_store::{SledStore, Store};

/// A checkpoint kept in memory across attempts, as the engine keeps it on
/// the delivery record: hand [`KeptCheckpoint::checkpoint`] to every
/// attempt of one delivery generation.
#[derive(Default)]
pub struct KeptCheckpoint(pub Mutex<Option<String>>);

#[async_trait::async_trait]
impl CheckpointSink for KeptCheckpoint {
    async fn save(&self, value: &str) -> Result<(), String> {
        *self.0.lock().unwrap() = Some(value.to_owned());
        Ok(())
    }
}

impl KeptCheckpoint {
    /// The checkpoint for the next attempt.
    pub fn checkpoint(self: &Arc<Self>) -> Checkpoint {
        Checkpoint::new(self.0.lock().unwrap().clone(), self.clone())
    }

    /// What was saved last.
    pub fn value(&self) -> Option<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A real sled hub store in `dir`.
pub fn store_in(dir: &Path) -> Arc<dyn Store> {
    Arc::new(SledStore::open(dir).unwrap())
}
