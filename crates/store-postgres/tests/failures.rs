//! Failures: an unreachable database, a database that goes away and comes
//! back (through a TCP proxy the test cuts), and migrations (idempotent,
//! concurrent, refusing a newer schema).

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use chrono::Utc;
use drehscheibe_store::contract::accept;
use drehscheibe_store::{Store, StoreError};
use drehscheibe_store_postgres::{migrate_with, PgError, PgOptions, PgStore, MIGRATIONS};
use support::{url, TestSchema};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy on 127.0.0.1 to the test database; `stop` cuts every
/// connection and closes the port.
struct Proxy {
    port: u16,
    task: JoinHandle<()>,
}

impl Proxy {
    async fn start(port: u16) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = {
            let cfg: tokio_postgres::Config = url().parse().unwrap();
            let host = match cfg.get_hosts().first() {
                Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                _ => "127.0.0.1".to_owned(),
            };
            (host, cfg.get_ports().first().copied().unwrap_or(5432))
        };
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let target = target.clone();
                conns.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy { port, task }
    }

    fn url(&self) -> String {
        let cfg: tokio_postgres::Config = url().parse().unwrap();
        let user = cfg.get_user().unwrap_or("postgres");
        let db = cfg.get_dbname().unwrap_or("test");
        format!(
            "postgres://{user}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// Cut every connection (the task owns them) and close the port.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

fn quick(schema: &TestSchema, id: &str) -> PgOptions {
    PgOptions {
        connect_timeout: Duration::from_secs(1),
        pool_wait_timeout: Duration::from_secs(1),
        statement_timeout: Duration::from_secs(2),
        ..schema.options(id)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_a_prompt_error() {
    let schema = TestSchema::new().await;
    let started = Instant::now();
    let err = PgStore::connect("postgres://postgres@127.0.0.1:1/test", quick(&schema, "a"))
        .await
        .unwrap_err();
    assert!(matches!(err, PgError::Connect(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let store_err: StoreError = err.into();
    assert!(matches!(store_err, StoreError::Backend(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_fails_calls_promptly_and_is_used_again_when_back() {
    let schema = TestSchema::new().await;
    let proxy = Proxy::start(0).await;
    let port = proxy.port;
    let proxied = proxy.url();
    let store = PgStore::connect(&proxied, quick(&schema, "a"))
        .await
        .unwrap();
    let before = accept(&store, b"<a/>").await;
    store.ready().await.unwrap();

    proxy.stop().await;
    for _ in 0..3 {
        let started = Instant::now();
        let err = store.get(before.id()).await.unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }
    assert!(store.ready().await.is_err());
    let rec = drehscheibe_store::contract::record_at(Utc::now(), b"<b/>");
    let err = store
        .accept(
            &rec,
            bytes::Bytes::from_static(b"<b/>"),
            drehscheibe_store::contract::received_event(&rec),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err}");

    // Back on the same port: the pool makes new connections by itself.
    let proxy = Proxy::start(port).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = store.ready().await {
        assert!(Instant::now() < deadline, "not back: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.get(before.id()).await.unwrap(), Some(before));
    accept(&store, b"<c/>").await;
    drop(store);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_concurrent_starts_are_safe() {
    let schema = TestSchema::new().await;
    let options = schema.options("m");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let options = options.clone();
            tokio::spawn(async move { migrate_with(&url(), &options).await })
        })
        .collect();
    let mut applied = Vec::new();
    for r in runs {
        applied.extend(r.await.unwrap().unwrap());
    }
    let all: Vec<i32> = MIGRATIONS.iter().map(|m| m.0).collect();
    assert_eq!(applied, all, "each migration applied exactly once");
    assert!(migrate_with(&url(), &options).await.unwrap().is_empty());

    // Instances starting together on a fresh schema.
    let fresh = TestSchema::new().await;
    let starts: Vec<_> = ["x", "y", "z"]
        .into_iter()
        .map(|id| {
            let options = fresh.options(id);
            tokio::spawn(async move { PgStore::connect(&url(), options).await })
        })
        .collect();
    for s in starts {
        let store = s.await.unwrap().unwrap();
        store.ready().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_or_missing_schema_is_refused() {
    let schema = TestSchema::new().await;
    // Migrations off on a fresh schema: refused, nothing created.
    let off = PgOptions {
        migrate: false,
        ..schema.options("a")
    };
    let err = PgStore::connect(&url(), off.clone()).await.unwrap_err();
    assert!(matches!(err, PgError::Migration { .. }), "{err}");

    let store = PgStore::connect(&url(), schema.options("a")).await.unwrap();
    drop(store);
    PgStore::connect(&url(), off).await.unwrap();

    // A later release migrated the database: this binary must not touch it.
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "INSERT INTO {}.drehscheibe_schema_migrations (version, name) VALUES (999, 'future')",
            schema.name
        ))
        .await
        .unwrap();
    drop(client);
    let _ = driver.await;
    let err = PgStore::connect(&url(), schema.options("a"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PgError::SchemaTooNew { found: 999, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("newer"), "{err}");
}
