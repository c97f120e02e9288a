//! A real hub for the server's integration tests: sled store and file blob
//! store in a temp dir, the complete router ([`drehscheibe_server::app`])
//! on a loopback listener. The engine's workers are not started, so
//! accepted messages stay `received` (routing is not under test here).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use drehscheibe_engine::{
    ConnectorRegistry, Hub, HubSettings, RouteFailure, RoutePlan, RoutingPolicy,
};
use drehscheibe_model::auth::{Principal, Role, TokenTable};
use drehscheibe_model::{BlobStore, Envelope};
use drehscheibe_server::{Bound, ServerError};
use drehscheibe_store::{FsBlobStore, SledStore, Store};
use tokio_util::sync::CancellationToken;

/// Tokens of the test hub.
pub const OPERATOR: &str = "operator-token";
pub const SENDER_A: &str = "sender-a-token";
pub const SENDER_B: &str = "sender-b-token";
/// The one channel, open to both senders.
pub const CHANNEL: &str = "antraege";

struct NoRoutes;

impl RoutingPolicy for NoRoutes {
    fn route(&self, _: &Envelope, _: &Bytes) -> Result<RoutePlan, RouteFailure> {
        Err(RouteFailure::dead("no routes in this test"))
    }
}

pub fn tokens() -> TokenTable {
    let mut t = TokenTable::new();
    t.insert(
        OPERATOR,
        Principal {
            name: "ops".into(),
            role: Role::Operator,
        },
    );
    for (token, name) in [(SENDER_A, "portal-a"), (SENDER_B, "portal-b")] {
        t.insert(
            token,
            Principal {
                name: name.into(),
                role: Role::Sender {
                    channels: vec![CHANNEL.into()],
                },
            },
        );
    }
    t
}

pub struct TestHub {
    pub dir: tempfile::TempDir,
    pub hub: Arc<Hub>,
    pub store: Arc<dyn Store>,
    pub blobs: Arc<FsBlobStore>,
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub served: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl TestHub {
    pub async fn start() -> Self {
        Self::start_with(HubSettings::default()).await
    }

    pub async fn start_with(mut settings: HubSettings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("store")).unwrap());
        let blobs = Arc::new(FsBlobStore::open(&dir.path().join("blobs")).unwrap());
        settings.channels = HashSet::from([CHANNEL.to_owned()]);
        let hub = Hub::new(
            store.clone(),
            blobs.clone() as Arc<dyn BlobStore>,
            Arc::new(NoRoutes),
            ConnectorRegistry::new(),
            settings,
        );
        let tokens = Arc::new(tokens());
        // As the composition root does: the hub's routes plus the `http`
        // channel's inbox route.
        let intake: Arc<dyn drehscheibe_model::Intake> = hub.clone();
        let app = drehscheibe_server::app(hub.clone(), tokens.clone())
            .merge(drehscheibe_http::channel_router(CHANNEL, intake, tokens));
        let bound = Bound::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = bound.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let served = tokio::spawn(bound.serve(app, shutdown.clone()));
        Self {
            dir,
            hub,
            store,
            blobs,
            addr,
            shutdown,
            served,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn blob_dir(&self) -> PathBuf {
        self.dir.path().join("blobs")
    }

    /// Every file under the blob directory (finished blobs and temp files).
    pub fn blob_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.blob_dir(), &mut out);
        out.sort();
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}
