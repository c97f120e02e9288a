//! [`PgStore`]: the [`Store`] trait on PostgreSQL (see the crate docs for
//! the schema and the multi-instance model).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use drehscheibe_model::{AuditEvent, MessageId, MessageRecord, MessageState};
use drehscheibe_store::{
    AcceptOutcome, ClaimedJob, IdempotencyKey, Job, MessageFilter, Page, PurgeReport, QueueStats,
    Result, RetentionPolicy, StateCommit, Store, StoreError, UpdateFn, DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE, SINCE_SLACK,
};
use tokio_postgres::types::ToSql;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::notify::{self, QueueWakeups, NOTIFY_CHANNEL};
use crate::{migrate, pg_config, pg_error, tls, PgError, PgOptions, CLIENT_SLACK};
use drehscheibe_store::retention::blob_refs_of;
use drehscheibe_store::state::prefix_end;

/// Attempts of a transaction that failed on a deadlock or a
/// serialization failure (`state_commit` answers a conflict after them).
pub(crate) const MAX_ATTEMPTS: u32 = 5;

/// The PostgreSQL store. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) options: PgOptions,
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    /// The schema the tables live in (payload of the queue notifications).
    pub(crate) scope: String,
    /// Longest a whole call may take before it answers `Backend`.
    pub(crate) op_timeout: Duration,
    /// The queue wake-ups, once [`PgStore::subscribe_queue`] started the
    /// listener.
    wakeups: Mutex<Option<tokio::sync::watch::Receiver<u64>>>,
    /// Stops the listener when the last clone is dropped.
    cancel: CancellationToken,
    /// [`Store::work_signal`], fed by the queue wake-ups once asked for.
    pub(crate) work: std::sync::OnceLock<Arc<tokio::sync::Notify>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("instance_id", &self.inner.options.instance_id)
            .field("scope", &self.inner.scope)
            .finish_non_exhaustive()
    }
}

/// What went wrong inside one attempt of a call: database errors keep
/// their SQLSTATE so the caller can tell a retryable one.
pub(crate) enum Oops {
    Pg(tokio_postgres::Error),
    Pool(deadpool_postgres::PoolError),
    Store(StoreError),
    /// Try again (a row the transaction relied on moved meanwhile).
    Retry(String),
}

impl From<tokio_postgres::Error> for Oops {
    fn from(e: tokio_postgres::Error) -> Self {
        Oops::Pg(e)
    }
}

impl From<deadpool_postgres::PoolError> for Oops {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Oops::Pool(e)
    }
}

impl From<StoreError> for Oops {
    fn from(e: StoreError) -> Self {
        Oops::Store(e)
    }
}

impl Oops {
    /// Deadlock, serialization failure, or an explicit retry.
    pub(crate) fn retryable(&self) -> bool {
        match self {
            Oops::Pg(e) => e.code().is_some_and(|c| {
                *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
            }),
            Oops::Retry(_) => true,
            _ => false,
        }
    }

    pub(crate) fn into_store(self) -> StoreError {
        match self {
            Oops::Pg(e) => StoreError::Backend(format!("PostgreSQL: {}", pg_error(&e))),
            Oops::Pool(e) => StoreError::Backend(format!("PostgreSQL connection pool: {e}")),
            Oops::Store(e) => e,
            Oops::Retry(m) => StoreError::Backend(m),
        }
    }
}

pub(crate) type Res<T> = std::result::Result<T, Oops>;

/// Run one attempt expression (re-evaluated per attempt) under the call
/// timeout, again after a retryable failure.
macro_rules! retrying {
    ($store:expr, $what:expr, $attempt:expr) => {{
        let timeout = $store.inner.op_timeout;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match tokio::time::timeout(timeout, $crate::store::attempt($attempt)).await {
                Err(_) => {
                    break Err(drehscheibe_store::StoreError::Backend(format!(
                        "{}: no answer from PostgreSQL within {timeout:?}",
                        $what
                    )))
                }
                Ok(Err(e)) if e.retryable() && attempt < $crate::store::MAX_ATTEMPTS => {
                    let pause = rand::random::<u64>() % (5u64 << attempt);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                Ok(r) => break r.map_err($crate::store::Oops::into_store),
            }
        }
    }};
}
pub(crate) use retrying;

/// One attempt of a call (fixes the error type for [`retrying!`]).
pub(crate) async fn attempt<T>(f: impl std::future::Future<Output = Res<T>>) -> Res<T> {
    f.await
}

// ---------------------------------------------------------------------------
// Conversions

pub(crate) fn uid(id: MessageId) -> Uuid {
    Uuid::from_bytes(*id.as_bytes())
}

pub(crate) fn mid(u: Uuid) -> MessageId {
    MessageId::from_bytes(*u.as_bytes())
}

/// Millisecond precision, as the trait stores due and lease times.
pub(crate) fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// `(message_id, delivery)` of a job; `-1` for a route job.
fn job_cols(job: &Job) -> (Uuid, i64) {
    match job {
        Job::Route { message } => (uid(*message), -1),
        Job::Deliver { message, delivery } => (uid(*message), i64::from(*delivery)),
    }
}

fn job_of(message: Uuid, delivery: i64) -> Result<Job> {
    let message = mid(message);
    if delivery == -1 {
        return Ok(Job::Route { message });
    }
    u32::try_from(delivery)
        .map(|delivery| Job::Deliver { message, delivery })
        .map_err(|_| StoreError::Corrupt(format!("queue: job {message}/{delivery}")))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn encode<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("encode: {e}")))
}

fn decode_record(id: Uuid, text: &str) -> Result<MessageRecord> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("drehscheibe_messages id {id}: {e}")))
}

/// Stage of the retention clock: see the migration's comments.
const STAGE_DELIVERED: i8 = b'p' as i8;
const STAGE_FAILED: i8 = b'f' as i8;
const STAGE_RECORD: i8 = b'r' as i8;

/// The next retention stage of a finished record, as its stage byte.
fn stage_of(rec: &MessageRecord) -> Option<i8> {
    drehscheibe_store::retention::Stage::of(rec).map(|s| s.byte() as i8)
}

/// Count per hash, in hash order (lock order, against deadlocks).
fn counted(shas: impl IntoIterator<Item = String>) -> (Vec<String>, Vec<i64>) {
    let mut map: BTreeMap<String, i64> = BTreeMap::new();
    for s in shas {
        *map.entry(s).or_insert(0) += 1;
    }
    map.into_iter().unzip()
}

/// Smallest UUIDv7 with the millisecond of `t`.
fn min_id_at(t: DateTime<Utc>) -> Uuid {
    let ms = u64::try_from(t.timestamp_millis()).unwrap_or(0);
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    Uuid::from_bytes(b)
}

/// `30d`, `36h`, `90s`: a retention duration for the audit trail.
fn format_keep(keep: Duration) -> String {
    let secs = keep.as_secs();
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s > 0 => format!("{s}s"),
        _ => format!("{}ms", keep.as_millis()),
    }
}

// ---------------------------------------------------------------------------
// SQL

const INSERT_IDEMPOTENCY: &str = "INSERT INTO drehscheibe_idempotency \
     (channel, sender, key, message_id, payload_sha256) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT DO NOTHING";
const SELECT_IDEMPOTENCY: &str = "SELECT message_id, payload_sha256 FROM drehscheibe_idempotency \
     WHERE channel = $1 AND sender = $2 AND key = $3";
const INSERT_MESSAGE: &str = "INSERT INTO drehscheibe_messages \
     (id, tenant, state, received_at, revision, finished_at, retention_stage, payload_purged_at, record) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::text::jsonb) ON CONFLICT (id) DO NOTHING";
const INSERT_PAYLOAD: &str = "INSERT INTO drehscheibe_payloads (message_id, body) VALUES ($1, $2)";
const INSERT_AUDIT: &str = "INSERT INTO drehscheibe_audit (message_id, seq, event) \
     SELECT $1, base.n + e.ord - 1, e.ev::jsonb \
     FROM unnest($2::text[]) WITH ORDINALITY AS e(ev, ord), \
          (SELECT COALESCE(max(seq) + 1, 0) AS n FROM drehscheibe_audit WHERE message_id = $1) AS base";
const REF_BLOBS: &str = "INSERT INTO drehscheibe_blob_refs (sha256, refs) \
     SELECT * FROM unnest($1::text[], $2::int8[]) \
     ON CONFLICT (sha256) DO UPDATE SET refs = drehscheibe_blob_refs.refs + EXCLUDED.refs";
const UNGARBAGE_BLOBS: &str = "DELETE FROM drehscheibe_blob_garbage WHERE sha256 = ANY($1)";
/// Lower the reference counts `$1` by `$2`; a blob left without any
/// becomes a collection candidate. Answers how many did.
const UNREF_BLOBS: &str = "WITH d(sha, n) AS (SELECT * FROM unnest($1::text[], $2::int8[])), \
     gone AS (DELETE FROM drehscheibe_blob_refs r USING d \
              WHERE r.sha256 = d.sha AND r.refs <= d.n RETURNING r.sha256), \
     dec AS (UPDATE drehscheibe_blob_refs r SET refs = r.refs - d.n FROM d \
             WHERE r.sha256 = d.sha AND r.refs > d.n), \
     ins AS (INSERT INTO drehscheibe_blob_garbage (sha256) \
             SELECT sha256 FROM gone ON CONFLICT DO NOTHING) \
     SELECT count(*) FROM gone";
const SCHEDULE: &str = "INSERT INTO drehscheibe_queue (message_id, delivery, due) \
     SELECT * FROM unnest($1::uuid[], $2::int8[], $3::timestamptz[]) \
     ON CONFLICT (message_id, delivery) DO UPDATE \
     SET due = EXCLUDED.due, lease_until = NULL, leased_by = NULL";
const COMPLETE: &str = "DELETE FROM drehscheibe_queue q \
     USING unnest($1::uuid[], $2::int8[]) AS c(m, d) \
     WHERE q.message_id = c.m AND q.delivery = c.d";
const NOTIFY: &str = "SELECT pg_notify($1, $2)";
const LOCK_RECORD: &str = "SELECT record::text, finished_at FROM drehscheibe_messages \
     WHERE id = $1 FOR UPDATE";
const UPDATE_MESSAGE: &str = "UPDATE drehscheibe_messages SET tenant = $2, state = $3, \
     revision = $4, finished_at = $5, retention_stage = $6, payload_purged_at = $7, \
     record = $8::text::jsonb WHERE id = $1";
const UPSERT_OUTPUT: &str = "INSERT INTO drehscheibe_outputs \
     (message_id, idx, same_as_payload, body) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (message_id, idx) DO UPDATE \
     SET same_as_payload = EXCLUDED.same_as_payload, body = EXCLUDED.body";
const CLAIM: &str = "UPDATE drehscheibe_queue q SET lease_until = $3, leased_by = $4 \
     FROM (SELECT message_id, delivery FROM drehscheibe_queue \
           WHERE due <= $1 AND (lease_until IS NULL OR lease_until <= $1) \
           ORDER BY due, message_id, delivery LIMIT $2 FOR UPDATE SKIP LOCKED) c \
     WHERE q.message_id = c.message_id AND q.delivery = c.delivery \
     RETURNING q.message_id, q.delivery, q.due";

// ---------------------------------------------------------------------------
// Connect

impl PgStore {
    /// Connect to the database at `url` (a libpq-style URL,
    /// `postgres://user@host:port/db?sslmode=…`), apply pending migrations
    /// (unless [`PgOptions::migrate`] is off) and open the pool.
    ///
    /// # Errors
    ///
    /// [`PgError`]: bad URL or options, unreachable database (within
    /// [`PgOptions::connect_timeout`]), a schema newer than this binary,
    /// a failed migration.
    pub async fn connect(url: &str, options: PgOptions) -> std::result::Result<PgStore, PgError> {
        if options.instance_id.is_empty() {
            return Err(PgError::Config("the instance id is empty".into()));
        }
        let config = pg_config(url, &options)?;
        let tls = tls(url, &options)?;
        // Migrate (or check) on a connection of its own, before the pool.
        let (mut client, connection) = tokio::time::timeout(
            options.connect_timeout + CLIENT_SLACK,
            config.connect(tls.clone()),
        )
        .await
        .map_err(|_| PgError::Connect(format!("no answer within {:?}", options.connect_timeout)))?
        .map_err(|e| PgError::Connect(pg_error(&e)))?;
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "setup connection ended");
            }
        });
        let setup = async {
            migrate::run(&mut client, &options, options.migrate).await?;
            let scope: String = client
                .query_one("SELECT COALESCE(current_schema(), '')", &[])
                .await
                .map_err(|e| PgError::Db(pg_error(&e)))?
                .get(0);
            Ok::<_, PgError>(scope)
        };
        let scope = tokio::time::timeout(
            options.statement_timeout + options.connect_timeout + CLIENT_SLACK,
            setup,
        )
        .await
        .map_err(|_| PgError::Connect("no answer while migrating".into()))??;
        drop(client);
        let _ = driver.await;

        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.pool_wait_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| PgError::Config(format!("pool: {e}")))?;
        let op_timeout = options.pool_wait_timeout
            + options.connect_timeout
            + options.statement_timeout
            + CLIENT_SLACK;
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                options,
                config,
                tls,
                scope,
                op_timeout,
                wakeups: Mutex::new(None),
                cancel: CancellationToken::new(),
                work: std::sync::OnceLock::new(),
            }),
        })
    }

    /// This instance's id (owner of its leases).
    pub fn instance_id(&self) -> &str {
        &self.inner.options.instance_id
    }

    /// The schema the tables live in.
    pub fn schema(&self) -> &str {
        &self.inner.scope
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Res<deadpool_postgres::Object> {
        Ok(self.inner.pool.get().await?)
    }

    /// Wake-ups for idle queue workers: each `NOTIFY drehscheibe_queue`
    /// of this schema (a job became due now, from any instance) and each
    /// (re)connect of the listening connection. The first call starts
    /// the listener (one dedicated connection, outside the pool); it
    /// stops when the last clone of the store is dropped. Must be called
    /// inside a Tokio runtime.
    ///
    /// ```ignore
    /// let mut wake = store.subscribe_queue();
    /// loop {
    ///     let jobs = store.claim_due(Utc::now(), 16, lease).await?;
    ///     if jobs.is_empty() {
    ///         let sleep = store.next_due().await?.map_or(MAX_IDLE, until);
    ///         tokio::select! { _ = wake.wait() => {}, _ = tokio::time::sleep(sleep) => {} }
    ///     }
    ///     // … run them
    /// }
    /// ```
    pub fn subscribe_queue(&self) -> QueueWakeups {
        let mut slot = self.inner.wakeups.lock().unwrap_or_else(|p| p.into_inner());
        let rx = slot.get_or_insert_with(|| {
            notify::start(
                self.inner.config.clone(),
                self.inner.tls.clone(),
                self.inner.scope.clone(),
                self.inner.cancel.clone(),
            )
        });
        QueueWakeups::new(rx.clone())
    }

    async fn notify_queue(&self, tx: &deadpool_postgres::Transaction<'_>) -> Res<()> {
        if self.inner.options.notify {
            let st = tx.prepare_cached(NOTIFY).await?;
            tx.execute(&st, &[&NOTIFY_CHANNEL, &self.inner.scope])
                .await?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Attempts (one transaction each)

impl PgStore {
    async fn try_accept(
        &self,
        record: &MessageRecord,
        record_json: &str,
        payload: &[u8],
        audit_json: &str,
        idempotency: Option<&IdempotencyKey>,
    ) -> Res<AcceptOutcome> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let id = uid(record.id());
        if let Some(k) = idempotency {
            let st = tx.prepare_cached(INSERT_IDEMPOTENCY).await?;
            let inserted = tx
                .execute(
                    &st,
                    &[&k.channel, &k.sender, &k.key, &id, &k.payload_sha256],
                )
                .await?;
            if inserted == 0 {
                let st = tx.prepare_cached(SELECT_IDEMPOTENCY).await?;
                let Some(row) = tx.query_opt(&st, &[&k.channel, &k.sender, &k.key]).await? else {
                    return Err(Oops::Retry(
                        "idempotency key vanished while it was read".into(),
                    ));
                };
                let first: Uuid = row.get(0);
                let sha: String = row.get(1);
                return Ok(if sha == k.payload_sha256 {
                    AcceptOutcome::Duplicate(mid(first))
                } else {
                    AcceptOutcome::KeyConflict(mid(first))
                });
            }
        }
        let stage = stage_of(record);
        let finished = stage.map(|_| ms(record.updated_at));
        let st = tx.prepare_cached(INSERT_MESSAGE).await?;
        let inserted = tx
            .execute(
                &st,
                &[
                    &id,
                    &record.envelope.tenant,
                    &record.state.as_str(),
                    &record.envelope.received_at,
                    &to_i64(record.revision),
                    &finished,
                    &stage,
                    &record.payload_purged_at,
                    &record_json,
                ],
            )
            .await?;
        if inserted == 0 {
            return Err(
                StoreError::Backend(format!("message {} already exists", record.id())).into(),
            );
        }
        let (shas, counts) = counted(blob_refs_of(record));
        let due = ms(Utc::now());
        let (payload_st, audit_st, ref_st, ungarbage_st, schedule_st) = futures::try_join!(
            tx.prepare_cached(INSERT_PAYLOAD),
            tx.prepare_cached(INSERT_AUDIT),
            tx.prepare_cached(REF_BLOBS),
            tx.prepare_cached(UNGARBAGE_BLOBS),
            tx.prepare_cached(SCHEDULE),
        )?;
        let events = vec![audit_json.to_owned()];
        let route = (vec![id], vec![-1i64], vec![due]);
        let payload_params: [&(dyn ToSql + Sync); 2] = [&id, &payload];
        let audit_params: [&(dyn ToSql + Sync); 2] = [&id, &events];
        let route_params: [&(dyn ToSql + Sync); 3] = [&route.0, &route.1, &route.2];
        futures::try_join!(
            tx.execute(&payload_st, &payload_params),
            tx.execute(&audit_st, &audit_params),
            async {
                if shas.is_empty() {
                    return Ok(0);
                }
                tx.execute(&ref_st, &[&shas, &counts]).await?;
                tx.execute(&ungarbage_st, &[&shas]).await
            },
            tx.execute(&schedule_st, &route_params),
        )?;
        self.notify_queue(&tx).await?;
        tx.commit().await?;
        Ok(AcceptOutcome::Created)
    }

    async fn try_update(&self, id: MessageId, f: &mut UpdateFn<'_>) -> Res<MessageRecord> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let key = uid(id);
        let st = tx.prepare_cached(LOCK_RECORD).await?;
        let Some(row) = tx.query_opt(&st, &[&key]).await? else {
            return Err(StoreError::NotFound(id).into());
        };
        let text: String = row.get(0);
        let old_finished: Option<DateTime<Utc>> = row.get(1);
        let old = decode_record(key, &text)?;
        let mut rec = old.clone();
        let effects = f(&mut rec)?;
        if rec.id() != id {
            return Err(StoreError::Aborted(format!(
                "update of message {id} may not change its id"
            ))
            .into());
        }
        if effects.is_empty() && rec == old {
            // Nothing to write; dropping the transaction rolls it back.
            return Ok(rec);
        }
        rec.revision = old.revision.saturating_add(1);
        rec.updated_at = Utc::now();
        // The retention clock starts when the message enters a finished
        // state and stops when it leaves it (a replay).
        let finished = if rec.state != old.state {
            stage_of(&rec).map(|_| ms(rec.updated_at))
        } else {
            old_finished
        };
        let stage = finished.and(stage_of(&rec));
        let json = encode(&rec)?;
        let st = tx.prepare_cached(UPDATE_MESSAGE).await?;
        tx.execute(
            &st,
            &[
                &key,
                &rec.envelope.tenant,
                &rec.state.as_str(),
                &to_i64(rec.revision),
                &finished,
                &stage,
                &rec.payload_purged_at,
                &json,
            ],
        )
        .await?;
        if !effects.audit.is_empty() {
            let events = effects
                .audit
                .iter()
                .map(encode)
                .collect::<Result<Vec<_>>>()?;
            let st = tx.prepare_cached(INSERT_AUDIT).await?;
            tx.execute(&st, &[&key, &events]).await?;
        }
        if !effects.outputs.is_empty() {
            let st = tx.prepare_cached(UPSERT_OUTPUT).await?;
            for (index, doc) in &effects.outputs {
                let same = doc.len() as u64 == rec.envelope.size
                    && drehscheibe_model::sha256_hex(doc) == rec.envelope.sha256;
                let body: Option<&[u8]> = (!same).then_some(doc.as_ref());
                tx.execute(&st, &[&key, &i64::from(*index), &same, &body])
                    .await?;
            }
        }
        if !effects.complete.is_empty() {
            let (m, d): (Vec<Uuid>, Vec<i64>) = effects.complete.iter().map(job_cols).unzip();
            let st = tx.prepare_cached(COMPLETE).await?;
            tx.execute(&st, &[&m, &d]).await?;
        }
        if !effects.schedule.is_empty() {
            // One row per job: the last schedule of a job wins.
            let mut last: HashMap<(Uuid, i64), DateTime<Utc>> = HashMap::new();
            for (job, due) in &effects.schedule {
                last.insert(job_cols(job), ms(*due));
            }
            let now = Utc::now();
            let due_now = last.values().any(|d| *d <= now);
            let mut m = Vec::with_capacity(last.len());
            let mut d = Vec::with_capacity(last.len());
            let mut t = Vec::with_capacity(last.len());
            for ((message, delivery), due) in last {
                m.push(message);
                d.push(delivery);
                t.push(due);
            }
            let st = tx.prepare_cached(SCHEDULE).await?;
            tx.execute(&st, &[&m, &d, &t]).await?;
            if due_now {
                self.notify_queue(&tx).await?;
            }
        }
        tx.commit().await?;
        Ok(rec)
    }

    async fn try_list(&self, filter: &MessageFilter) -> Res<Page> {
        let limit = match filter.limit {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let mut sql = String::from("SELECT id, record::text FROM drehscheibe_messages WHERE true");
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        let mut param = |sql: &mut String, cond: &str, p: Box<dyn ToSql + Sync + Send>| {
            params.push(p);
            sql.push_str(&format!(" AND {cond} ${}", params.len()));
        };
        if let Some(t) = &filter.tenant {
            param(&mut sql, "tenant =", Box::new(t.clone()));
        }
        if let Some(s) = filter.state {
            param(&mut sql, "state =", Box::new(s.as_str().to_owned()));
        }
        if let Some(since) = filter.since {
            param(&mut sql, "received_at >=", Box::new(since));
            // Ids are made at receipt: start the index scan near `since`.
            param(&mut sql, "id >=", Box::new(min_id_at(since - SINCE_SLACK)));
        }
        if let Some(until) = filter.until {
            param(&mut sql, "received_at <", Box::new(until));
        }
        if let Some(l) = &filter.leistung {
            param(
                &mut sql,
                "record->'envelope'->>'leistung' =",
                Box::new(l.clone()),
            );
        }
        if let Some(c) = &filter.correlation {
            // Any correlation id's value, or the idempotency key.
            param(
                &mut sql,
                "EXISTS (SELECT 1 FROM jsonb_each_text(COALESCE(record->'envelope'->'correlation_ids', '{}'::jsonb) || jsonb_build_object('~idempotency', record->'envelope'->'idempotency_key')) c WHERE c.value =",
                Box::new(c.clone()),
            );
            sql.push(')');
        }
        if let Some(after) = filter.after {
            param(&mut sql, "id >", Box::new(uid(after)));
        }
        params.push(Box::new(to_i64(limit as u64 + 1)));
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", params.len()));
        let client = self.client().await?;
        let st = client.prepare_cached(&sql).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let rows = client.query(&st, &refs).await?;
        let more = rows.len() > limit;
        let items = rows
            .iter()
            .take(limit)
            .map(|r| decode_record(r.get(0), r.get(1)))
            .collect::<Result<Vec<_>>>()?;
        let next = if more {
            items.last().map(MessageRecord::id)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn try_state_commit(&self, space: &str, commit: &StateCommit) -> Res<bool> {
        let mut client = self.client().await?;
        // Read committed, serialised per key: every commit first takes a
        // transaction-scoped advisory lock for each key it reads or
        // writes, in ascending order (no deadlocks). Two commits touching
        // one key run one after the other, and the second sees what the
        // first wrote; commits on other keys never wait for each other.
        // (SERIALIZABLE gave the same answers, but its page-level
        // predicate locks made unrelated keys of a small table conflict:
        // retries of up to a quarter of a second under a FIT-Connect
        // submit.)
        let tx = client.transaction().await?;
        let mut locks: Vec<i64> = commit
            .expect
            .iter()
            .map(|(k, _)| k.as_slice())
            .chain(commit.writes.iter().map(|(k, _)| k.as_slice()))
            .map(|k| state_lock_key(space, k))
            .collect();
        locks.sort_unstable();
        locks.dedup();
        let st = tx
            .prepare_cached(
                "SELECT count(pg_advisory_xact_lock(k)) FROM \
                 (SELECT k FROM unnest($1::int8[]) AS u(k) ORDER BY k) AS ordered",
            )
            .await?;
        tx.query_one(&st, &[&locks]).await?;
        if !commit.expect.is_empty() {
            let keys: Vec<&[u8]> = commit.expect.iter().map(|(k, _)| k.as_slice()).collect();
            let st = tx
                .prepare_cached(
                    "SELECT key, value FROM drehscheibe_state WHERE space = $1 AND key = ANY($2)",
                )
                .await?;
            let rows = tx.query(&st, &[&space, &keys]).await?;
            let found: HashMap<&[u8], &[u8]> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            for (key, seen) in &commit.expect {
                if found.get(key.as_slice()).copied() != seen.as_deref() {
                    return Ok(false);
                }
            }
        }
        // The last write of a key wins (they apply in order).
        let mut last: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
        for (k, v) in &commit.writes {
            last.insert(k.as_slice(), v.as_deref());
        }
        let mut put_keys = Vec::new();
        let mut put_values = Vec::new();
        let mut deletes = Vec::new();
        for (k, v) in last {
            match v {
                Some(v) => {
                    put_keys.push(k);
                    put_values.push(v);
                }
                None => deletes.push(k),
            }
        }
        if !deletes.is_empty() {
            let st = tx
                .prepare_cached("DELETE FROM drehscheibe_state WHERE space = $1 AND key = ANY($2)")
                .await?;
            tx.execute(&st, &[&space, &deletes]).await?;
        }
        if !put_keys.is_empty() {
            let st = tx
                .prepare_cached(
                    "INSERT INTO drehscheibe_state (space, key, value) \
                     SELECT $1, k, v FROM unnest($2::bytea[], $3::bytea[]) AS u(k, v) \
                     ON CONFLICT (space, key) DO UPDATE SET value = EXCLUDED.value",
                )
                .await?;
            tx.execute(&st, &[&space, &put_keys, &put_values]).await?;
        }
        // Blob references the state takes and gives back (see
        // `drehscheibe_store::state`), with the write that names them.
        let (mut held, mut held_n, mut released, mut released_n) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (sha, n) in &commit.blob_refs {
            if *n > 0 {
                held.push(sha.as_str());
                held_n.push(*n);
            } else if *n < 0 {
                released.push(sha.as_str());
                released_n.push(-*n);
            }
        }
        if !held.is_empty() {
            let (ref_st, ungarbage_st) = futures::try_join!(
                tx.prepare_cached(REF_BLOBS),
                tx.prepare_cached(UNGARBAGE_BLOBS),
            )?;
            tx.execute(&ref_st, &[&held, &held_n]).await?;
            tx.execute(&ungarbage_st, &[&held]).await?;
        }
        if !released.is_empty() {
            let st = tx.prepare_cached(UNREF_BLOBS).await?;
            tx.query_one(&st, &[&released, &released_n]).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn try_purge(
        &self,
        policy: &RetentionPolicy,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Res<PurgeReport> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let by_tenant = tx
            .prepare_cached(
                "SELECT id, record::text FROM drehscheibe_messages \
                 WHERE retention_stage = $1 AND tenant = $2 AND finished_at <= $3 \
                 ORDER BY finished_at LIMIT $4 FOR UPDATE SKIP LOCKED",
            )
            .await?;
        let by_default = tx
            .prepare_cached(
                "SELECT id, record::text FROM drehscheibe_messages \
                 WHERE retention_stage = $1 AND (tenant IS NULL OR tenant <> ALL($2::text[])) \
                   AND finished_at <= $3 \
                 ORDER BY finished_at LIMIT $4 FOR UPDATE SKIP LOCKED",
            )
            .await?;
        let mut tenants: Vec<&String> = policy.tenants.keys().collect();
        tenants.sort();
        let cutoff = |keep: Option<Duration>| {
            keep.and_then(|k| TimeDelta::from_std(k).ok())
                .and_then(|k| now.checked_sub_signed(k))
        };
        // (id, record, stage, the duration that made it due)
        let mut due: Vec<(Uuid, MessageRecord, i8, Duration)> = Vec::new();
        'stages: for stage in [STAGE_DELIVERED, STAGE_FAILED, STAGE_RECORD] {
            let keep_of = |r: &drehscheibe_store::Retention| match stage {
                STAGE_DELIVERED => r.payloads,
                STAGE_FAILED => r.failed,
                _ => r.records,
            };
            let mut runs: Vec<(Option<&String>, Duration, DateTime<Utc>)> = Vec::new();
            for t in &tenants {
                let keep = policy.tenants.get(*t).and_then(keep_of);
                if let (Some(k), Some(c)) = (keep, cutoff(keep)) {
                    runs.push((Some(*t), k, c));
                }
            }
            let keep = keep_of(&policy.default);
            if let (Some(k), Some(c)) = (keep, cutoff(keep)) {
                runs.push((None, k, c));
            }
            for (tenant, keep, cut) in runs {
                let left = to_i64((limit - due.len()) as u64);
                let rows = match tenant {
                    Some(t) => tx.query(&by_tenant, &[&stage, t, &cut, &left]).await?,
                    None => {
                        let names: Vec<&str> = tenants.iter().map(|t| t.as_str()).collect();
                        tx.query(&by_default, &[&stage, &names, &cut, &left])
                            .await?
                    }
                };
                for r in rows {
                    let id: Uuid = r.get(0);
                    due.push((id, decode_record(id, r.get(1))?, stage, keep));
                }
                if due.len() >= limit {
                    break 'stages;
                }
            }
        }
        if due.is_empty() {
            return Ok(PurgeReport::default());
        }
        let n = due.len();
        let all: Vec<Uuid> = due.iter().map(|d| d.0).collect();
        let mut report = PurgeReport::default();
        let bytes: i64 = tx
            .query_one(
                "SELECT (COALESCE((SELECT sum(octet_length(body)) FROM drehscheibe_payloads \
                                   WHERE message_id = ANY($1)), 0) \
                       + COALESCE((SELECT sum(octet_length(body)) FROM drehscheibe_outputs \
                                   WHERE message_id = ANY($1)), 0))::int8",
                &[&all],
            )
            .await?
            .get(0);
        report.bytes = u64::try_from(bytes).unwrap_or(0);
        tx.execute(
            "DELETE FROM drehscheibe_payloads WHERE message_id = ANY($1)",
            &[&all],
        )
        .await?;
        tx.execute(
            "DELETE FROM drehscheibe_outputs WHERE message_id = ANY($1)",
            &[&all],
        )
        .await?;
        let mut unref = Vec::new();
        let (mut p_ids, mut p_recs, mut p_revs, mut p_events) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut r_ids = Vec::new();
        for (id, rec, stage, keep) in due {
            unref.extend(blob_refs_of(&rec));
            if stage == STAGE_RECORD {
                r_ids.push(id);
                continue;
            }
            let blobs = blob_refs_of(&rec).len();
            let mut purged = rec.clone();
            purged.payload_purged_at = Some(now);
            purged.revision = rec.revision.saturating_add(1);
            purged.updated_at = Utc::now();
            let event = AuditEvent::new(rec.id(), "retention", "payload_purged", Some(rec.state), rec.state)
                .with_detail(format!(
                    "payload, {} output document(s) and {blobs} attachment reference(s) deleted {} after the message became {}",
                    rec.deliveries.len(),
                    format_keep(keep),
                    rec.state
                ));
            p_ids.push(id);
            p_revs.push(to_i64(purged.revision));
            p_recs.push(encode(&purged)?);
            p_events.push(encode(&event)?);
        }
        if !p_ids.is_empty() {
            tx.execute(
                "UPDATE drehscheibe_messages m SET record = u.rec::jsonb, revision = u.rev, \
                     payload_purged_at = $4, retention_stage = 'r' \
                 FROM unnest($1::uuid[], $2::text[], $3::int8[]) AS u(id, rec, rev) \
                 WHERE m.id = u.id",
                &[&p_ids, &p_recs, &p_revs, &now],
            )
            .await?;
            tx.execute(
                "INSERT INTO drehscheibe_audit (message_id, seq, event) \
                 SELECT u.id, (SELECT COALESCE(max(seq) + 1, 0) FROM drehscheibe_audit a \
                               WHERE a.message_id = u.id), u.ev::jsonb \
                 FROM unnest($1::uuid[], $2::text[]) AS u(id, ev)",
                &[&p_ids, &p_events],
            )
            .await?;
            report.payloads = p_ids.len() as u64;
        }
        if !r_ids.is_empty() {
            tx.execute(
                "DELETE FROM drehscheibe_queue WHERE message_id = ANY($1)",
                &[&r_ids],
            )
            .await?;
            // Payloads, outputs, audit and idempotency rows cascade.
            tx.execute(
                "DELETE FROM drehscheibe_messages WHERE id = ANY($1)",
                &[&r_ids],
            )
            .await?;
            report.records = r_ids.len() as u64;
        }
        if !unref.is_empty() {
            let (shas, counts) = counted(unref);
            let gone: i64 = tx.query_one(UNREF_BLOBS, &[&shas, &counts]).await?.get(0);
            report.blobs_unreferenced = u64::try_from(gone).unwrap_or(0);
        }
        tx.commit().await?;
        // A full batch, or payloads purged whose record stage may be due
        // at once.
        report.more = n >= limit || report.payloads > 0;
        Ok(report)
    }
}

// ---------------------------------------------------------------------------
// Store

#[async_trait]
impl Store for PgStore {
    async fn accept(
        &self,
        record: &MessageRecord,
        payload: Bytes,
        audit: AuditEvent,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<AcceptOutcome> {
        let record_json = encode(record)?;
        let audit_json = encode(&audit)?;
        retrying!(
            self,
            "accept",
            self.try_accept(
                record,
                &record_json,
                &payload,
                &audit_json,
                idempotency.as_ref()
            )
        )
    }

    async fn get(&self, id: MessageId) -> Result<Option<MessageRecord>> {
        retrying!(self, "get", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached("SELECT record::text FROM drehscheibe_messages WHERE id = $1")
                .await?;
            match client.query_opt(&st, &[&uid(id)]).await? {
                Some(row) => Ok(Some(decode_record(uid(id), row.get(0))?)),
                None => Ok(None),
            }
        })
    }

    async fn payload(&self, id: MessageId) -> Result<Option<Bytes>> {
        retrying!(self, "payload", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached(
                    "SELECT m.payload_purged_at IS NOT NULL, p.body FROM drehscheibe_messages m \
                     LEFT JOIN drehscheibe_payloads p ON p.message_id = m.id WHERE m.id = $1",
                )
                .await?;
            let Some(row) = client.query_opt(&st, &[&uid(id)]).await? else {
                return Ok(None);
            };
            if row.get::<_, bool>(0) {
                return Err(StoreError::Purged(id).into());
            }
            Ok(row.get::<_, Option<Vec<u8>>>(1).map(Bytes::from))
        })
    }

    async fn output(&self, id: MessageId, index: u32) -> Result<Option<Bytes>> {
        retrying!(self, "output", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached(
                    "SELECT m.payload_purged_at IS NOT NULL, o.same_as_payload, o.body, p.body \
                     FROM drehscheibe_messages m \
                     LEFT JOIN drehscheibe_outputs o ON o.message_id = m.id AND o.idx = $2 \
                     LEFT JOIN drehscheibe_payloads p ON p.message_id = m.id AND o.same_as_payload \
                     WHERE m.id = $1",
                )
                .await?;
            let Some(row) = client
                .query_opt(&st, &[&uid(id), &i64::from(index)])
                .await?
            else {
                return Ok(None);
            };
            let purged: bool = row.get(0);
            match row.get::<_, Option<bool>>(1) {
                None if purged => Err(StoreError::Purged(id).into()),
                None => Ok(None),
                Some(false) => Ok(row.get::<_, Option<Vec<u8>>>(2).map(Bytes::from)),
                Some(true) => match row.get::<_, Option<Vec<u8>>>(3) {
                    Some(p) => Ok(Some(Bytes::from(p))),
                    None if purged => Err(StoreError::Purged(id).into()),
                    None => Err(StoreError::Corrupt(format!(
                        "output {index} of {id} refers to the payload, which is missing"
                    ))
                    .into()),
                },
            }
        })
    }

    async fn update(&self, id: MessageId, f: &mut UpdateFn<'_>) -> Result<MessageRecord> {
        retrying!(self, "update", self.try_update(id, f))
    }

    async fn list(&self, filter: &MessageFilter) -> Result<Page> {
        retrying!(self, "list", self.try_list(filter))
    }

    async fn audit(&self, id: MessageId) -> Result<Vec<AuditEvent>> {
        retrying!(self, "audit", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached(
                    "SELECT seq, event::text FROM drehscheibe_audit WHERE message_id = $1 ORDER BY seq",
                )
                .await?;
            let rows = client.query(&st, &[&uid(id)]).await?;
            rows.iter()
                .map(|r| {
                    serde_json::from_str(r.get(1)).map_err(|e| {
                        Oops::Store(StoreError::Corrupt(format!(
                            "drehscheibe_audit {id}/{}: {e}",
                            r.get::<_, i64>(0)
                        )))
                    })
                })
                .collect()
        })
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedJob>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (now, until) = (ms(now), ms(lease_until));
        let me = &self.inner.options.instance_id;
        let rows = retrying!(self, "claim_due", async {
            let client = self.client().await?;
            let st = client.prepare_cached(CLAIM).await?;
            Ok(client
                .query(&st, &[&now, &to_i64(limit as u64), &until, me])
                .await?)
        })?;
        let mut claimed = rows
            .iter()
            .map(|r| {
                let due: DateTime<Utc> = r.get(2);
                let key = (due, r.get::<_, Uuid>(0), r.get::<_, i64>(1));
                Ok((key, job_of(key.1, key.2)?))
            })
            .collect::<Result<Vec<_>>>()?;
        claimed.sort_by_key(|(key, _)| *key);
        Ok(claimed
            .into_iter()
            .map(|((due, _, _), job)| ClaimedJob { job, due })
            .collect())
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        let now = ms(Utc::now());
        retrying!(self, "next_due", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached(
                    "SELECT least( \
                       (SELECT due FROM drehscheibe_queue \
                        WHERE lease_until IS NULL OR lease_until <= $1 ORDER BY due LIMIT 1), \
                       (SELECT min(greatest(due, lease_until)) FROM drehscheibe_queue \
                        WHERE leased_by IS NOT NULL AND lease_until > $1))",
                )
                .await?;
            Ok(client.query_one(&st, &[&now]).await?.get(0))
        })
    }

    async fn renew_lease(&self, job: Job, lease_until: DateTime<Utc>) -> Result<bool> {
        let (m, d) = job_cols(&job);
        let until = ms(lease_until);
        let me = &self.inner.options.instance_id;
        retrying!(self, "renew_lease", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached(
                    "UPDATE drehscheibe_queue SET lease_until = $3 \
                     WHERE message_id = $1 AND delivery = $2 AND leased_by = $4",
                )
                .await?;
            Ok(client.execute(&st, &[&m, &d, &until, me]).await? == 1)
        })
    }

    async fn release_leases(&self) -> Result<u64> {
        let me = &self.inner.options.instance_id;
        retrying!(self, "release_leases", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached(
                    "UPDATE drehscheibe_queue SET lease_until = NULL, leased_by = NULL \
                     WHERE leased_by = $1",
                )
                .await?;
            Ok(client.execute(&st, &[me]).await?)
        })
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats> {
        let now = ms(now);
        retrying!(self, "queue_stats", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached(
                    "SELECT count(*), count(*) FILTER (WHERE due <= $1 \
                       AND (lease_until IS NULL OR lease_until <= $1)) FROM drehscheibe_queue",
                )
                .await?;
            let row = client.query_one(&st, &[&now]).await?;
            Ok(QueueStats {
                depth: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
                due: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
            })
        })
    }

    async fn count_by_state(&self) -> Result<Vec<(MessageState, u64)>> {
        let rows = retrying!(self, "count_by_state", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached("SELECT state, count(*) FROM drehscheibe_messages GROUP BY state")
                .await?;
            Ok(client.query(&st, &[]).await?)
        })?;
        let mut counts: HashMap<String, u64> = HashMap::new();
        for r in &rows {
            counts.insert(r.get(0), u64::try_from(r.get::<_, i64>(1)).unwrap_or(0));
        }
        Ok(MessageState::ALL
            .into_iter()
            .map(|s| (s, counts.get(s.as_str()).copied().unwrap_or(0)))
            .collect())
    }

    async fn put_config_snapshot(&self, digest: &str, text: &str) -> Result<()> {
        retrying!(self, "put_config_snapshot", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached(
                    "INSERT INTO drehscheibe_config_snapshots (digest, body) VALUES ($1, $2) \
                     ON CONFLICT (digest) DO UPDATE SET body = EXCLUDED.body",
                )
                .await?;
            client.execute(&st, &[&digest, &text]).await?;
            Ok(())
        })
    }

    async fn config_snapshot(&self, digest: &str) -> Result<Option<String>> {
        retrying!(self, "config_snapshot", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached("SELECT body FROM drehscheibe_config_snapshots WHERE digest = $1")
                .await?;
            Ok(client.query_opt(&st, &[&digest]).await?.map(|r| r.get(0)))
        })
    }

    async fn referenced_blobs(&self, candidates: HashSet<String>) -> Result<HashSet<String>> {
        if candidates.is_empty() {
            return Ok(candidates);
        }
        let list: Vec<String> = candidates.into_iter().collect();
        retrying!(self, "referenced_blobs", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached("SELECT sha256 FROM drehscheibe_blob_refs WHERE sha256 = ANY($1)")
                .await?;
            let rows = client.query(&st, &[&list]).await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    async fn state_get(&self, space: &str, key: &[u8]) -> Result<Option<Bytes>> {
        drehscheibe_store::state::check_space(space)?;
        retrying!(self, "state_get", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached("SELECT value FROM drehscheibe_state WHERE space = $1 AND key = $2")
                .await?;
            Ok(client
                .query_opt(&st, &[&space, &key])
                .await?
                .map(|r| Bytes::from(r.get::<_, Vec<u8>>(0))))
        })
    }

    async fn state_scan(
        &self,
        space: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Bytes)>> {
        drehscheibe_store::state::check_space(space)?;
        let limit = to_i64(limit.min(drehscheibe_store::state::MAX_STATE_PAGE) as u64);
        let (lower_op, lower) = match after {
            Some(a) if a > prefix => (">", a),
            _ => (">=", prefix),
        };
        let end = prefix_end(prefix);
        let sql = format!(
            "SELECT key, value FROM drehscheibe_state WHERE space = $1 AND key {lower_op} $2 {} \
             ORDER BY key LIMIT $3",
            if end.is_some() { "AND key < $4" } else { "" }
        );
        retrying!(self, "state_scan", async {
            let client = self.client().await?;
            let st = client.prepare_cached(&sql).await?;
            let rows = match &end {
                Some(end) => {
                    client
                        .query(&st, &[&space, &lower, &limit, &end.as_slice()])
                        .await?
                }
                None => client.query(&st, &[&space, &lower, &limit]).await?,
            };
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, Vec<u8>>(0), Bytes::from(r.get::<_, Vec<u8>>(1))))
                .collect())
        })
    }

    async fn state_commit(&self, space: &str, commit: StateCommit) -> Result<bool> {
        drehscheibe_store::state::check_space(space)?;
        if commit.writes.is_empty() && commit.blob_refs.is_empty() {
            return Ok(true);
        }
        retrying!(self, "state_commit", self.try_state_commit(space, &commit))
    }

    async fn purge_expired(
        &self,
        policy: &RetentionPolicy,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<PurgeReport> {
        if limit == 0 {
            return Ok(PurgeReport::default());
        }
        retrying!(self, "purge_expired", self.try_purge(policy, now, limit))
    }

    async fn unreferenced_blobs(&self, limit: usize) -> Result<Vec<String>> {
        let limit = to_i64(limit as u64);
        retrying!(self, "unreferenced_blobs", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached(
                    "SELECT sha256 FROM drehscheibe_blob_garbage ORDER BY sha256 LIMIT $1",
                )
                .await?;
            Ok(client
                .query(&st, &[&limit])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    async fn blob_references(&self, sha256: &str) -> Result<u64> {
        retrying!(self, "blob_references", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached("SELECT refs FROM drehscheibe_blob_refs WHERE sha256 = $1")
                .await?;
            Ok(client
                .query_opt(&st, &[&sha256])
                .await?
                .map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
        })
    }

    async fn forget_unreferenced_blob(&self, sha256: &str) -> Result<()> {
        retrying!(self, "forget_unreferenced_blob", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached(
                    "DELETE FROM drehscheibe_blob_garbage WHERE sha256 = $1 \
                     AND NOT EXISTS (SELECT 1 FROM drehscheibe_blob_refs WHERE sha256 = $1)",
                )
                .await?;
            client.execute(&st, &[&sha256]).await?;
            Ok(())
        })
    }

    /// Every method commits before it returns (`synchronous_commit = on`):
    /// nothing is left to flush.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// One round trip: the database answers and takes writes (it is not a
    /// standby in recovery).
    async fn ready(&self) -> Result<()> {
        let standby: bool = retrying!(self, "ready", async {
            let client = self.client().await?;
            let st = client.prepare_cached("SELECT pg_is_in_recovery()").await?;
            Ok(client.query_one(&st, &[]).await?.get(0))
        })?;
        if standby {
            return Err(StoreError::Backend(
                "the database is a read-only standby (in recovery)".into(),
            ));
        }
        Ok(())
    }

    async fn hold_lease(&self, name: &str, ttl: Duration) -> Result<bool> {
        self.hold_instance_lease(name, ttl).await
    }

    async fn release_lease(&self, name: &str) -> Result<()> {
        self.release_instance_lease(name).await
    }

    async fn acquire_slot(&self, key: &str, limit: u32, ttl: Duration) -> Result<Option<u32>> {
        self.take_slot(key, limit, ttl).await
    }

    async fn release_slot(&self, key: &str, slot: u32) -> Result<()> {
        self.give_back_slot(key, slot).await
    }

    fn work_signal(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.work_notify())
    }

    fn is_shared(&self) -> bool {
        true
    }
}

/// The advisory lock of one state key: the first 8 bytes of SHA-256 over
/// `state`, the space and the key (stable across instances and builds; a
/// collision only makes two commits wait for each other).
fn state_lock_key(space: &str, key: &[u8]) -> i64 {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"state\0");
    h.update(space.as_bytes());
    h.update([0u8]);
    h.update(key);
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_bounds() {
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
        let t = Utc::now();
        let id = MessageId::new();
        assert!(min_id_at(t - TimeDelta::milliseconds(1)) < uid(id));
        assert!(uid(id) < min_id_at(t + TimeDelta::seconds(1)));
        assert_eq!(format_keep(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format_keep(Duration::from_millis(5)), "5ms");
        let job = Job::Deliver {
            message: id,
            delivery: 3,
        };
        let (m, d) = job_cols(&job);
        assert_eq!(job_of(m, d).ok(), Some(job));
        assert!(job_of(m, -2).is_err());
    }
}
