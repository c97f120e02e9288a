//! The store contract (`drehscheibe_store::contract`) on sled and the
//! file-system blob store: every test on a fresh temp dir.

use std::sync::Arc;

use drehscheibe_store::contract::Fixture;
use drehscheibe_store::{FsBlobStore, SledStore};

#[allow(clippy::unwrap_used)]
async fn fresh() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store")).unwrap();
    let blobs = FsBlobStore::open(&dir.path().join("blobs")).unwrap();
    Fixture::new(Arc::new(store), Arc::new(blobs), dir)
}

drehscheibe_store::store_contract_tests!(fresh);
