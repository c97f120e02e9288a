//! A 200 MiB attachment round-trips through `PgBlobStore` with bounded
//! memory: streamed in and out in chunks, never whole. The test binary
//! runs only this test, so its peak RSS (`VmHWM`) is this test's.

#![allow(clippy::unwrap_used)]

mod support;

use drehscheibe_model::BlobStore;
use drehscheibe_store::contract::{sha_of, sha_of_reader, Generated};
use drehscheibe_store_postgres::{PgBlobStore, PgStore};
use support::{url, TestSchema};

const MIB: u64 = 1024 * 1024;

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mib_blob_round_trips_streamed() {
    let schema = TestSchema::new().await;
    let store = PgStore::connect(&url(), schema.options("big"))
        .await
        .unwrap();
    let blobs = PgBlobStore::new(&store);
    let len = 200 * MIB;
    let blob = blobs
        .put(Box::pin(Generated::new(42, len)), 256 * MIB)
        .await
        .unwrap();
    assert_eq!(blob.size, len);
    assert_eq!(blob.sha256, sha_of(42, len).await);
    let (sha, total) = sha_of_reader(blobs.open(&blob).await.unwrap()).await;
    assert_eq!((sha.as_str(), total), (blob.sha256.as_str(), len));
    // Never whole in memory: a small multiple of the 1 MiB chunk plus the
    // process itself, nowhere near 200 MiB.
    let peak = peak_rss_mib();
    assert!(peak < 100, "peak RSS {peak} MiB for a 200 MiB blob");
}
