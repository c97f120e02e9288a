//! The store contract (`drehscheibe_store::contract`) on PostgreSQL:
//! every test on a fresh schema, dropped afterwards.

mod support;

use std::sync::Arc;

use drehscheibe_store::contract::Fixture;
use drehscheibe_store_postgres::{PgBlobStore, PgStore};
use support::{url, TestSchema};

async fn fresh() -> Fixture {
    let schema = TestSchema::new().await;
    let store = PgStore::connect(&url(), schema.options("contract"))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let blobs = PgBlobStore::new(&store);
    Fixture::new(Arc::new(store), Arc::new(blobs), schema)
}

drehscheibe_store::store_contract_tests!(fresh);
