//! Test support: a schema of its own per test in the test database.
//!
//! The database is `DREHSCHEIBE_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Each [`TestSchema`] is a
//! fresh `t_<uuid>` schema that the stores create (through
//! [`PgOptions::schema`]) and that is dropped with everything in it when
//! the `TestSchema` is dropped — also when the test panics. An
//! unreachable database fails the test with a message saying so; nothing
//! is skipped.

#![allow(clippy::unwrap_used, dead_code)]

use drehscheibe_store_postgres::PgOptions;

/// The test database's URL.
pub fn url() -> String {
    std::env::var("DREHSCHEIBE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema of one test (see the module docs).
pub struct TestSchema {
    pub name: String,
    url: String,
}

impl TestSchema {
    /// A new schema name; panics with a clear message when the database
    /// cannot be reached.
    pub async fn new() -> Self {
        let url = url();
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                let driver = tokio::spawn(connection);
                client.simple_query("SELECT 1").await.unwrap();
                drop(client);
                let _ = driver.await;
            }
            Err(e) => panic!(
                "PostgreSQL is not reachable at {url} ({e}): start it, or point \
                 DREHSCHEIBE_TEST_PG_URL at one (these tests never skip)"
            ),
        }
        Self {
            name: format!("t_{}", uuid::Uuid::now_v7().simple()),
            url,
        }
    }

    /// Options of an instance on this schema (small pool, short timeouts).
    pub fn options(&self, instance: &str) -> PgOptions {
        PgOptions {
            pool_size: 8,
            ..PgOptions::new(instance).with_schema(&self.name)
        }
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop may run inside a runtime (or while panicking): a thread of
        // its own with a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(drehscheibe_store_postgres::drop_schema(&url, &name))
                .map_err(|e| e.to_string())
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}
