//! How to store a large attachment in PostgreSQL: chunked `bytea` rows
//! against large objects, for ADR 0016. One variant per run, so the peak
//! RSS (`VmHWM`) is that variant's:
//!
//! ```text
//! cargo run -p drehscheibe-store-postgres --example blob_bench -- bytea 200
//! cargo run -p drehscheibe-store-postgres --example blob_bench -- lo 200
//! cargo run -p drehscheibe-store-postgres --example blob_bench -- store 200
//! ```
//!
//! `bytea`: 1 MiB rows, one autocommitted INSERT each, read back one
//! SELECT per chunk (what `PgBlobStore` does, without hashing). `lo`: one
//! large object written with `lowrite` in 1 MiB calls inside one
//! transaction on one connection, read back with `loread`. `store`:
//! `PgBlobStore::put` and `open` end to end (SHA-256 included). The
//! database is `DREHSCHEIBE_TEST_PG_URL` (default the local `test`
//! database); everything lives in a schema of its own, dropped at the end.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use drehscheibe_model::BlobStore;
use drehscheibe_store::contract::{sha_of_reader, Generated};
use drehscheibe_store_postgres::{PgBlobStore, PgOptions, PgStore};
use tokio::io::AsyncReadExt;

const CHUNK: usize = 1 << 20;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The next up-to-1-MiB chunk of `reader`.
async fn fill(reader: &mut Generated, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader.read(&mut buf[filled..]).await.unwrap();
        if n == 0 {
            break;
        }
        filled += n;
    }
    filled
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "bytea".into());
    let mib: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let len = mib * CHUNK as u64;
    let url = std::env::var("DREHSCHEIBE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path = {schema};
             CREATE TABLE chunks (id int, seq int, data bytea, PRIMARY KEY (id, seq));
             ALTER TABLE chunks ALTER COLUMN data SET STORAGE EXTERNAL;"
        ))
        .await
        .unwrap();
    let rss_before = peak_rss_mib();
    let mut buf = vec![0u8; CHUNK];
    let (write, read) = match variant.as_str() {
        "bytea" => {
            let start = Instant::now();
            let insert = client
                .prepare("INSERT INTO chunks (id, seq, data) VALUES (1, $1, $2)")
                .await
                .unwrap();
            let mut reader = Generated::new(1, len);
            let mut seq = 0i32;
            loop {
                let n = fill(&mut reader, &mut buf).await;
                if n == 0 {
                    break;
                }
                client.execute(&insert, &[&seq, &&buf[..n]]).await.unwrap();
                seq += 1;
            }
            let write = start.elapsed();
            let start = Instant::now();
            let select = client
                .prepare("SELECT data FROM chunks WHERE id = 1 AND seq = $1")
                .await
                .unwrap();
            let mut total = 0u64;
            for s in 0..seq {
                let row = client.query_one(&select, &[&s]).await.unwrap();
                total += row.get::<_, &[u8]>(0).len() as u64;
            }
            assert_eq!(total, len);
            (write, start.elapsed())
        }
        "lo" => {
            let start = Instant::now();
            client.batch_execute("BEGIN").await.unwrap();
            let oid: u32 = client
                .query_one("SELECT lo_create(0)", &[])
                .await
                .unwrap()
                .get(0);
            let fd: i32 = client
                .query_one("SELECT lo_open($1, 131072)", &[&oid])
                .await
                .unwrap()
                .get(0);
            let write_st = client.prepare("SELECT lowrite($1, $2)").await.unwrap();
            let mut reader = Generated::new(1, len);
            loop {
                let n = fill(&mut reader, &mut buf).await;
                if n == 0 {
                    break;
                }
                client
                    .query_one(&write_st, &[&fd, &&buf[..n]])
                    .await
                    .unwrap();
            }
            client.batch_execute("COMMIT").await.unwrap();
            let write = start.elapsed();
            let start = Instant::now();
            client.batch_execute("BEGIN").await.unwrap();
            let fd: i32 = client
                .query_one("SELECT lo_open($1, 262144)", &[&oid])
                .await
                .unwrap()
                .get(0);
            let read_st = client.prepare("SELECT loread($1, $2)").await.unwrap();
            let mut total = 0u64;
            loop {
                let row = client
                    .query_one(&read_st, &[&fd, &(CHUNK as i32)])
                    .await
                    .unwrap();
                let n = row.get::<_, &[u8]>(0).len();
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            client.batch_execute("COMMIT").await.unwrap();
            assert_eq!(total, len);
            client
                .execute("SELECT lo_unlink($1)", &[&oid])
                .await
                .unwrap();
            (write, start.elapsed())
        }
        "store" => {
            let store = PgStore::connect(&url, PgOptions::new("bench").with_schema(&schema))
                .await
                .unwrap();
            let blobs = PgBlobStore::new(&store);
            let start = Instant::now();
            let blob = blobs
                .put(Box::pin(Generated::new(1, len)), len)
                .await
                .unwrap();
            let write = start.elapsed();
            let start = Instant::now();
            let (sha, total) = sha_of_reader(blobs.open(&blob).await.unwrap()).await;
            assert_eq!((sha, total), (blob.sha256, len));
            (write, start.elapsed())
        }
        other => panic!("unknown variant {other:?} (bytea, lo, store)"),
    };
    let rss_after = peak_rss_mib();
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    let rate = |d: std::time::Duration| mib as f64 / d.as_secs_f64();
    println!(
        "{variant}: {mib} MiB  write {:.2} s ({:.0} MiB/s)  read {:.2} s ({:.0} MiB/s)  peak RSS {:.0} MiB (before {:.0} MiB)",
        write.as_secs_f64(),
        rate(write),
        read.as_secs_f64(),
        rate(read),
        rss_after,
        rss_before
    );
}
