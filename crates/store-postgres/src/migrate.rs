//! Embedded, versioned schema migrations.
//!
//! Each migration is a SQL file under `migrations/`, compiled into the
//! binary. [`migrate`] applies the missing ones in order, all in one
//! transaction that first takes `pg_advisory_xact_lock` on a key derived
//! from the schema name: a second instance starting at the same moment
//! waits for the lock and then finds everything applied. PostgreSQL's DDL
//! is transactional, so a failed migration leaves nothing behind.
//! `drehscheibe_schema_migrations` records `(version, name, applied_at)`.

use crate::{check_schema, pg_config, pg_error, tls, PgError, PgOptions};

/// The migrations this binary knows: `(version, name, SQL)`, ascending.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "0001_initial",
        include_str!("../migrations/0001_initial.sql"),
    ),
    (
        2,
        "0002_connector_slots",
        include_str!("../migrations/0002_connector_slots.sql"),
    ),
];

/// The newest schema version this binary knows.
pub(crate) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Apply the pending migrations to the database at `url` (tables in the
/// connection's `search_path`); returns the versions applied now. For
/// the `drehscheibe store migrate` command.
///
/// # Errors
///
/// [`PgError::SchemaTooNew`] when the database is ahead of this binary;
/// connection and migration failures.
pub async fn migrate(url: &str) -> Result<Vec<i32>, PgError> {
    migrate_with(url, &PgOptions::default()).await
}

/// [`migrate`] with options (schema, timeouts, TLS).
///
/// # Errors
///
/// As [`migrate`].
pub async fn migrate_with(url: &str, options: &PgOptions) -> Result<Vec<i32>, PgError> {
    let config = pg_config(url, options)?;
    let (mut client, connection) = config
        .connect(tls(url, options)?)
        .await
        .map_err(|e| PgError::Connect(pg_error(&e)))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "migration connection ended");
        }
    });
    let result = run(&mut client, options, true).await;
    drop(client);
    let _ = driver.await;
    result
}

/// Apply (or, with `apply` false, only check) the migrations on `client`.
pub(crate) async fn run(
    client: &mut tokio_postgres::Client,
    options: &PgOptions,
    apply: bool,
) -> Result<Vec<i32>, PgError> {
    let db = |e: tokio_postgres::Error| PgError::Db(pg_error(&e));
    let tx = client.transaction().await.map_err(db)?;
    let scope = match &options.schema {
        Some(s) => {
            check_schema(s)?;
            s.clone()
        }
        None => tx
            .query_one("SELECT COALESCE(current_schema(), '')", &[])
            .await
            .map_err(db)?
            .get(0),
    };
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('drehscheibe-migrate:' || $1, 0))",
        &[&scope],
    )
    .await
    .map_err(db)?;
    if let Some(schema) = &options.schema {
        // Checked identifier (see `check_schema`): safe to splice.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .map_err(db)?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS drehscheibe_schema_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(db)?;
    let found: i32 = tx
        .query_one(
            "SELECT COALESCE(max(version), 0) FROM drehscheibe_schema_migrations",
            &[],
        )
        .await
        .map_err(db)?
        .get(0);
    let known = latest();
    if found > known {
        return Err(PgError::SchemaTooNew { found, known });
    }
    let pending: Vec<_> = MIGRATIONS.iter().filter(|m| m.0 > found).collect();
    if pending.is_empty() {
        tx.commit().await.map_err(db)?;
        return Ok(Vec::new());
    }
    if !apply {
        return Err(PgError::Migration {
            version: found + 1,
            message: format!(
                "the database schema is version {found}, this binary needs {known}; \
                 run `drehscheibe store migrate` (or connect with migrations on)"
            ),
        });
    }
    let mut applied = Vec::new();
    for (version, name, sql) in pending {
        tx.batch_execute(sql)
            .await
            .map_err(|e| PgError::Migration {
                version: *version,
                message: pg_error(&e),
            })?;
        tx.execute(
            "INSERT INTO drehscheibe_schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(db)?;
        applied.push(*version);
    }
    tx.commit().await.map_err(db)?;
    tracing::info!(?applied, "applied store schema migrations");
    Ok(applied)
}

/// Drop `schema` with everything in it (`DROP SCHEMA … CASCADE`): for
/// test runs that give each hub a schema of its own, and for operators
/// removing a hub's tables. Irreversible.
///
/// # Errors
///
/// An invalid schema name, connection and database failures.
pub async fn drop_schema(url: &str, schema: &str) -> Result<(), PgError> {
    check_schema(schema)?;
    let options = PgOptions::default();
    let config = pg_config(url, &options)?;
    let (client, connection) = config
        .connect(tls(url, &options)?)
        .await
        .map_err(|e| PgError::Connect(pg_error(&e)))?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "drop-schema connection ended");
        }
    });
    // Checked identifier (see `check_schema`): safe to splice.
    let result = client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .await
        .map_err(|e| PgError::Db(pg_error(&e)));
    drop(client);
    let _ = driver.await;
    result
}
