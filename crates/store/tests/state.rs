//! Adapter state spaces (`drehscheibe_store::state`) on a real sled store:
//! what only sled shows (reopen). The rest is in the store contract.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use drehscheibe_store::{SledStore, StateSpace, Store};

fn open(dir: &std::path::Path) -> Arc<dyn Store> {
    Arc::new(SledStore::open(dir).unwrap())
}

#[tokio::test]
async fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let s = StateSpace::new(store.clone(), "durable").unwrap();
        let mut tx = s.begin();
        tx.put(b"k", Bytes::from_static(b"v"));
        assert!(tx.commit().await.unwrap());
    }
    let store = open(dir.path());
    let s = StateSpace::new(store, "durable").unwrap();
    assert_eq!(s.get(b"k").await.unwrap().as_deref(), Some(&b"v"[..]));
}
