//! [`PgStore`] and [`PgBlobStore`]: the hub's [`Store`](drehscheibe_store::Store) and
//! [`BlobStore`](drehscheibe_model::BlobStore) on PostgreSQL 15+, for
//! deployments where several hub instances share one database (ADR 0016).
//!
//! ```ignore
//! let store = PgStore::connect("postgres://hub@db/hub", PgOptions::new("hub-a")).await?;
//! let blobs = PgBlobStore::new(&store);
//! let wake = store.subscribe_queue(); // idle workers wait here instead of polling
//! ```
//!
//! # Schema
//!
//! Every table is prefixed `drehscheibe_` and lives in the schema named by
//! [`PgOptions::schema`] (or the connection's `search_path`). The SQL is
//! in `migrations/`, applied by [`migrate`] (also at
//! [`PgStore::connect`]) in one transaction under a transaction-scoped
//! advisory lock, so instances starting together never race; the applied
//! versions are rows of `drehscheibe_schema_migrations`. A binary refuses
//! a database whose schema is *newer* than it knows
//! ([`PgError::SchemaTooNew`]): it cannot know what the newer version
//! changed.
//!
//! | table | one row per | notes |
//! |-------|-------------|-------|
//! | `messages` | message | the [`MessageRecord`](drehscheibe_model::MessageRecord) as JSONB, plus `tenant`, `state`, `received_at`, `revision` and the retention columns (`finished_at`, `retention_stage`, `payload_purged_at`) the queries filter on |
//! | `payloads` | message | the payload (`bytea`); deleted at retention stage 1 |
//! | `outputs` | delivery | output document, or `same_as_payload` for a pass-through output |
//! | `audit` | event | `(message_id, seq)`, events as JSONB |
//! | `idempotency` | key | unique `(channel, sender, key)` → message id and payload SHA-256 |
//! | `queue` | job | `(message_id, delivery)` (`-1` = route), `due`, `lease_until`, `leased_by` |
//! | `config_snapshots` | digest | configuration text |
//! | `state` | key | adapter state spaces: `(space, key bytea)` → `value bytea` |
//! | `blob_refs`, `blob_garbage` | blob | retention's reference counts and collection candidates |
//! | `blob_uploads`, `blob_chunks`, `blobs`, `blob_holds` | blob | [`PgBlobStore`]: content in 1 MiB `bytea` chunks, stagings in flight |
//! | `singletons` | name | [`PgStore::try_lease_singleton`] |
//!
//! Payloads, outputs, audit and idempotency rows reference their message
//! with `ON DELETE CASCADE`, so retention's record stage is one `DELETE`.
//! Counters per state are `GROUP BY` over the state index (no hot counter
//! row every accept would have to lock).
//!
//! # Every method is one transaction
//!
//! * `accept`: `INSERT … ON CONFLICT DO NOTHING` of the idempotency key
//!   first — a concurrent accept of the same key waits on the unique index
//!   and then finds the committed row (`Duplicate` or `KeyConflict`) —
//!   then record, payload, first audit event, blob references and the
//!   route job.
//! * `update`: `SELECT … FOR UPDATE` of the record, the closure runs once
//!   against it while the row is locked (so no optimistic retry is
//!   needed), and record, audit, outputs and queue changes are written in
//!   the same transaction. A closure that changes nothing writes nothing.
//! * `state_commit`: a read-committed transaction that first takes a
//!   transaction-scoped advisory lock per key it reads or writes (in
//!   ascending order), then compares the expected values and writes.
//!   Commits sharing a key run one after the other, so expectations on
//!   *absent* keys are as safe as on present ones; commits on other keys
//!   never wait for each other. (`SERIALIZABLE` was tried first: its
//!   page-level predicate locks made unrelated keys conflict.)
//! * Transactions that fail on a deadlock or serialization failure are
//!   run again (a few times) before the error is returned.
//!
//! Durability is PostgreSQL's: a method returns after `COMMIT`, and every
//! connection sets `synchronous_commit = on` whatever the server default
//! is. [`Store::flush`](drehscheibe_store::Store::flush) has nothing left to do, and
//! [`Store::collect_value_log`](drehscheibe_store::Store::collect_value_log) keeps its default: purged payloads are
//! dead tuples that autovacuum reclaims.
//!
//! # Several instances, one database
//!
//! Each [`PgStore`] has an *instance id* ([`PgOptions::instance_id`]).
//! Leases are rows in the database, not process memory:
//!
//! * [`Store::claim_due`](drehscheibe_store::Store::claim_due) leases due jobs with `FOR UPDATE SKIP LOCKED`:
//!   two instances claiming at once never get the same job, and neither
//!   waits for the other.
//! * [`Store::renew_lease`](drehscheibe_store::Store::renew_lease) moves a lease only while this instance holds
//!   it; [`Store::release_leases`](drehscheibe_store::Store::release_leases) frees only this instance's leases (at
//!   start and shutdown), never another live instance's.
//! * An instance that dies keeps its leases until they expire; then
//!   any instance claims the jobs. An instance restarted with the *same*
//!   id frees them at once with `release_leases` — so give each instance a
//!   stable id (pod name), and never two live instances the same one.
//! * Times come from the callers (`now`, `lease_until`), as the trait
//!   says: the hosts' clocks must agree (NTP). Singleton leases use the
//!   database's clock instead.
//!
//! Idle workers need not poll: a transaction that queues a job due now
//! sends `NOTIFY drehscheibe_queue` (payload: the schema), and
//! [`PgStore::subscribe_queue`] hands out a [`QueueWakeups`] that a
//! `LISTEN` connection of its own drives (reconnecting after a loss; a
//! reconnect wakes everybody too, since notifications may have been
//! missed). A wake-up is a hint: workers still ask
//! [`Store::claim_due`](drehscheibe_store::Store::claim_due) and still sleep until [`Store::next_due`](drehscheibe_store::Store::next_due) at most.
//!
//! [`PgStore::try_lease_singleton`] elects one instance for hub-wide
//! singletons (pollers) with a lease row, not a session advisory lock: an
//! advisory lock belongs to one pooled connection and dies or leaks with
//! it, while a lease row has an expiry the holder renews and a fencing
//! token, and survives pool recycling.
//!
//! # Failures
//!
//! Nothing waits forever: connecting is bounded by
//! [`PgOptions::connect_timeout`], waiting for a pooled connection by
//! [`PgOptions::pool_wait_timeout`], every statement by
//! [`PgOptions::statement_timeout`] (server side, and the client gives up
//! a little later if the server does not answer at all). The error is
//! [`StoreError::Backend`]. Broken connections are dropped from the pool
//! and new ones made on demand, so the store recovers by itself when the
//! database is back; [`Store::ready`](drehscheibe_store::Store::ready) checks that it answers and is not a
//! read-only standby.
//!
//! # TLS
//!
//! rustls only (no OpenSSL), with libpq's `sslmode` meanings:
//! `disable`, `prefer` (the default) and `require` encrypt without
//! checking the server's certificate, as libpq does; `verify-ca` and
//! `verify-full` check it against the Mozilla roots and
//! [`PgOptions::tls_ca_file`]. Use `verify-full` in production.

mod blobs;
mod coordination;
mod migrate;
mod notify;
mod singleton;
mod store;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

use drehscheibe_store::StoreError;

pub use blobs::{PgBlobStore, CHUNK_BYTES};
pub use migrate::{drop_schema, migrate, migrate_with, MIGRATIONS};
pub use notify::{QueueWakeups, NOTIFY_CHANNEL};
pub use singleton::SingletonGuard;
pub use store::PgStore;

/// Failure to connect to or migrate the database.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The URL or an option is invalid.
    #[error("invalid PostgreSQL configuration: {0}")]
    Config(String),
    /// The database could not be reached or refused the connection.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    /// The database holds a schema version this binary does not know.
    #[error(
        "the database schema is version {found}, newer than the {known} this binary knows; \
         run a binary of the newer release (or restore the older database)"
    )]
    SchemaTooNew { found: i32, known: i32 },
    /// A migration failed (nothing of it was applied).
    #[error("migration {version} failed: {message}")]
    Migration { version: i32, message: String },
    /// Any other database error.
    #[error("PostgreSQL: {0}")]
    Db(String),
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// Tunables of [`PgStore::connect`].
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most pooled connections of this instance (default 16). The
    /// `LISTEN` connection of [`PgStore::subscribe_queue`] is extra.
    pub pool_size: usize,
    /// This instance's id: owner of its queue leases (see the crate
    /// docs). Stable across restarts of the same instance, unique among
    /// live ones.
    pub instance_id: String,
    /// Schema of the tables, created if missing and put first on every
    /// connection's `search_path`; `None` uses the connection's
    /// `search_path` as it is (usually `public`). A lowercase SQL
    /// identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes).
    pub schema: Option<String>,
    /// Longest wait for a new connection.
    pub connect_timeout: Duration,
    /// Longest wait for a free pooled connection.
    pub pool_wait_timeout: Duration,
    /// `statement_timeout` of every connection; the client gives up on a
    /// silent server [`CLIENT_SLACK`] later.
    pub statement_timeout: Duration,
    /// Send `NOTIFY` when a job becomes due now (default on; see
    /// [`PgStore::subscribe_queue`]).
    pub notify: bool,
    /// Apply pending migrations at connect (default on). Off, connect
    /// refuses a database whose schema is not current.
    pub migrate: bool,
    /// Extra trusted CA certificates (PEM) for TLS, besides the Mozilla
    /// roots.
    pub tls_ca_file: Option<PathBuf>,
}

/// How much longer than [`PgOptions::statement_timeout`] the client waits
/// for a server that does not answer at all before it gives up.
pub const CLIENT_SLACK: Duration = Duration::from_secs(5);

impl PgOptions {
    /// Defaults with this instance id.
    pub fn new(instance_id: impl Into<String>) -> Self {
        Self {
            instance_id: instance_id.into(),
            ..Self::default()
        }
    }

    /// The same options with the tables in `schema`.
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }
}

impl Default for PgOptions {
    /// 16 connections, a random instance id (`hub-<uuid>`, fine for a
    /// single instance), 5 s to connect or get a connection, 30 s per
    /// statement, notifications and migrations on.
    fn default() -> Self {
        Self {
            pool_size: 16,
            instance_id: format!("hub-{}", uuid::Uuid::now_v7().simple()),
            schema: None,
            connect_timeout: Duration::from_secs(5),
            pool_wait_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            notify: true,
            migrate: true,
            tls_ca_file: None,
        }
    }
}

/// Check a schema name (see [`PgOptions::schema`]).
fn check_schema(name: &str) -> Result<(), PgError> {
    let mut bytes = name.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if first_ok && rest_ok && name.len() <= 63 {
        Ok(())
    } else {
        Err(PgError::Config(format!(
            "schema {name:?} is not a lowercase SQL identifier ([a-z_][a-z0-9_]*, at most 63 bytes)"
        )))
    }
}

/// The TLS connector for `url` (see the `tls` module): rustls, libpq's
/// `sslmode` meanings.
fn tls(
    url: &str,
    options: &PgOptions,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgError> {
    tls::connector(options, tls::split_sslmode(url).1)
}

/// The connection configuration of `url` under `options`: timeouts,
/// keepalives, `search_path`, `statement_timeout`, `synchronous_commit`.
fn pg_config(url: &str, options: &PgOptions) -> Result<tokio_postgres::Config, PgError> {
    let (url, _) = tls::split_sslmode(url);
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|e| PgError::Config(format!("{e}")))?;
    if let Some(schema) = &options.schema {
        check_schema(schema)?;
    }
    let mut opts = config.get_options().unwrap_or_default().to_owned();
    let ms = options.statement_timeout.as_millis();
    opts.push_str(&format!(
        " -c statement_timeout={ms} -c synchronous_commit=on"
    ));
    if let Some(schema) = &options.schema {
        opts.push_str(&format!(" -c search_path={schema}"));
    }
    config.options(opts.trim().to_owned());
    if config.get_application_name().is_none() {
        let name: String = format!("drehscheibe {}", options.instance_id)
            .chars()
            .take(63)
            .collect();
        config.application_name(name);
    }
    config.connect_timeout(options.connect_timeout);
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(30));
    config.keepalives_interval(Duration::from_secs(5));
    config.keepalives_retries(3);
    // A server that stops acknowledging (host gone, network cut) fails
    // the connection instead of leaving a query hanging.
    config.tcp_user_timeout(options.statement_timeout + CLIENT_SLACK);
    Ok(config)
}

/// A database error as a store error, with the server's message.
pub(crate) fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_are_checked() {
        for ok in ["t_abc", "_x", "drehscheibe"] {
            assert!(check_schema(ok).is_ok(), "{ok}");
        }
        for bad in ["", "A", "1x", "a-b", "a;drop", &"a".repeat(64)] {
            assert!(check_schema(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options_reach_the_connection_config() {
        let o = PgOptions::new("i1").with_schema("s1");
        let c = pg_config("postgres://u@localhost/db?options=-c%20work_mem%3D4MB", &o)
            .unwrap_or_else(|e| panic!("{e}"));
        let opts = c.get_options().unwrap_or_default();
        assert!(opts.starts_with("-c work_mem=4MB"), "{opts}");
        assert!(opts.contains("search_path=s1"), "{opts}");
        assert!(opts.contains("synchronous_commit=on"), "{opts}");
        assert!(opts.contains("statement_timeout=30000"), "{opts}");
        assert_eq!(c.get_application_name(), Some("drehscheibe i1"));
    }
}
