//! [`SledStore`]: the embedded [`Store`] on sled 0.34.
//!
//! One sled database at `<dir>/db`. Every state change is one multi-tree
//! sled transaction, followed by a group-committed flush (see
//! [`SledStore::flush_count`]): the method returns only once the change is
//! on disk, and concurrent callers share one flush.
//!
//! # Key layout
//!
//! `id` is the 16 raw bytes of the UUIDv7 message id (byte order = time
//! order), integers are big-endian, `job` is the job key (`r` + id for
//! `Route`, `d` + id + u32 delivery index for `Deliver`), `ms` is a u64 of
//! milliseconds since the Unix epoch.
//!
//! | tree          | key                          | value                                  |
//! |---------------|------------------------------|----------------------------------------|
//! | `messages`    | id                           | JSON [`MessageRecord`]                 |
//! | `payloads`    | id                           | payload bytes                          |
//! | `outputs`     | id + u32 index               | 0 + document, or 1 = same as payload   |
//! | `audit`       | id + u64 seq                 | JSON [`AuditEvent`] (prefix scan = in order) |
//! | `audit_seq`   | id                           | u64 next audit seq of that message     |
//! | `counts`      | state name                   | u64 number of messages in that state   |
//! | `queue`       | ms due + job                 | JSON [`Job`]                           |
//! | `jobs`        | job                          | its current `queue` key (one entry per job) |
//! | `leases`      | job                          | ms lease-until                         |
//! | `idempotency` | 1 + u32 len + channel + u32 len + sender + key | JSON `{id, sha256}`      |
//! | `by_tenant`   | u32 len + tenant + id        | empty (index for `list`)               |
//! | `by_state`    | state name + `0x00` + id     | empty (index for `list`)               |
//! | `config`      | digest                       | configuration text                     |
//!
//! The index trees, counters, queue and lease entries are changed in the
//! same transaction as the record they describe.
//!
//! # Notes
//!
//! * sled 0.34 serialises transactions with a process-wide lock, so a
//!   transaction never actually conflicts; the code still tolerates the
//!   closure running more than once.
//! * `update` runs its closure inside the transaction on the calling
//!   thread (via `block_in_place` on a multi-thread runtime, inline on a
//!   current-thread one), holding sled's transaction lock: keep the closure
//!   short and free of I/O. All other methods run on the blocking pool.
//! * Due and lease times are stored with millisecond precision.
//!
//! # Recovering from write failures (disk full)
//!
//! sled 0.34 poisons itself on the first failed log write or flush: it
//! stores the I/O error as a process-wide "global error", and every later
//! write and flush returns that error until the database is opened again
//! (`PageCache::start` is the only place that clears it). A full disk would
//! therefore stop the store for good, even after space was freed.
//!
//! So the store remembers a failed write or flush ([`SledStore::ready`]
//! reports it) and recovers by itself once the disk takes writes again:
//!
//! 1. a *probe*: write, fsync and delete a small file next to the database
//!    (fails while the disk is still full — nothing else is tried then);
//! 2. a small sled write and flush on the open database: if that works,
//!    sled was not poisoned and the store is healthy again;
//! 3. otherwise *reopen*: the database handle is taken out of service (new
//!    calls fail fast with "reopening"), the store waits until no call is
//!    in flight on it (every call holds a counted reference), copies the
//!    in-memory leases (they need not be durable, see the crate docs, and
//!    must survive so no job is claimed twice), closes it and opens the
//!    directory again — sled recovers the last flushed state, which holds
//!    every acknowledged change (a call whose flush failed was answered
//!    with an error).
//!
//! Recovery is tried by [`SledStore::ready`] (the `/readyz` probe) and by
//! the next write, at most once per [`RECOVERY_INTERVAL`].
//! * `list` with `since` starts its scan at the id of `since` minus one day
//!   ([`SINCE_SLACK`]): it assumes a message id is generated no more than a
//!   day before the message's `received_at` (ids are made at receipt).

use std::cell::RefCell;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use drehscheibe_model::{AuditEvent, MessageId, MessageRecord, MessageState};
use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};
use sled::{IVec, Tree};
use tokio::sync::watch;

use crate::{
    AcceptOutcome, ClaimedJob, Effects, IdempotencyKey, Job, MessageFilter, Page, QueueStats,
    Result, Store, StoreError, UpdateFn, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE,
};

/// How far before `since` a `list` scan starts (see the module notes).
pub const SINCE_SLACK: TimeDelta = TimeDelta::days(1);

/// Least time between two recovery attempts after a write failure.
pub const RECOVERY_INTERVAL: Duration = Duration::from_secs(1);

/// How long a reopen waits for calls in flight on the old database.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Size of the probe file written before a recovery attempt.
const PROBE_BYTES: usize = 64 * 1024;

/// The error of a call made while the database is being reopened.
const REOPENING: &str = "store is reopening after a write failure";

/// Key of the probe write in the `config` tree (never a digest).
const PROBE_KEY: &[u8] = b"\0probe";

const TREE_NAMES: [&str; 13] = [
    "messages",
    "payloads",
    "outputs",
    "audit",
    "audit_seq",
    "counts",
    "queue",
    "jobs",
    "leases",
    "idempotency",
    "by_tenant",
    "by_state",
    "config",
];

/// The embedded store: sled on local disk, one process.
///
/// Cheap to clone; clones share the database. Dropping the last clone stops
/// the flusher thread and closes the database, so the directory can be
/// opened again.
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// The open database; `None` while it is being reopened. Every call
    /// clones the `Arc` for its duration, so a reopen can wait for the
    /// calls in flight (see the module docs).
    current: Mutex<Option<Arc<Generation>>>,
    /// Flushes and flush requests of closed generations (for the counters).
    closed_flushes: Mutex<(u64, u64)>,
    health: Mutex<Health>,
    /// Held by the one recovery attempt running.
    recovering: Mutex<()>,
}

/// One opened sled database with its trees and flusher. Dropped (closing
/// the database) when the last call using it ends.
struct Generation {
    trees: Trees,
    flusher: Flusher,
    db: sled::Db,
}

/// What the store knows about its ability to write.
#[derive(Default)]
struct Health {
    /// The last write or flush failure not yet recovered from.
    failure: Option<String>,
    /// When recovery was last tried.
    last_attempt: Option<Instant>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("flushes", &self.flush_count())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SledStore {
    /// Open (or create) the store in `dir`; the sled database lives in
    /// `dir/db`. Fails if another process holds the database.
    pub fn open(dir: &Path) -> Result<SledStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("create {}: {e}", dir.display())))?;
        let generation = Generation::open(dir)?;
        Ok(SledStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                current: Mutex::new(Some(Arc::new(generation))),
                closed_flushes: Mutex::new((0, 0)),
                health: Mutex::new(Health::default()),
                recovering: Mutex::new(()),
            }),
        })
    }
}

impl Generation {
    fn open(dir: &Path) -> Result<Generation> {
        // sled's default page cache is 1 GiB; payloads are read once per
        // routing and delivery, so a small cache keeps the RSS modest
        // without costing throughput (see docs/benchmarks.md).
        let config = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(64 * 1024 * 1024)
            // sled writes any log item larger than segment_size / 4 as a
            // separate file; leaf nodes holding a few 30 KB payloads cross
            // the default 128 KiB and turned every consolidation into a
            // file create + write. 8 MiB segments raise that to 2 MiB.
            .segment_size(8 * 1024 * 1024)
            // Our group-commit flusher makes every acknowledged write
            // durable; sled's own periodic flusher thread would only keep
            // the database (and its file lock) alive after a drop.
            .flush_every_ms(None);
        // A store dropped a moment ago (same process) may still be closing
        // on a background thread: retry the file lock briefly.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if (e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("could not acquire lock"))
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(StoreError::Backend(format!("open {}: {e}", dir.display()))),
            }
        };
        let open = |i: usize| -> Result<Tree> {
            let name = TREE_NAMES
                .get(i)
                .ok_or_else(|| StoreError::Backend(format!("no tree #{i}")))?;
            db.open_tree(name).map_err(backend)
        };
        let trees = Trees {
            messages: open(0)?,
            payloads: open(1)?,
            outputs: open(2)?,
            audit: open(3)?,
            audit_seq: open(4)?,
            counts: open(5)?,
            queue: open(6)?,
            jobs: open(7)?,
            leases: open(8)?,
            idempotency: open(9)?,
            by_tenant: open(10)?,
            by_state: open(11)?,
            config: open(12)?,
        };
        let flusher = Flusher::start(db.clone())?;
        Ok(Generation { trees, flusher, db })
    }
}

impl SledStore {
    /// Number of disk flushes the group-commit flusher has completed since
    /// the store was opened (for metrics and tests).
    pub fn flush_count(&self) -> u64 {
        let closed = lock(&self.inner.closed_flushes).0;
        closed + self.generation().map_or(0, |g| g.flusher.completed())
    }

    /// Number of times a caller waited for a flush since the store was
    /// opened; `flush_requests / flush_count` is the group-commit factor.
    pub fn flush_requests(&self) -> u64 {
        let closed = lock(&self.inner.closed_flushes).1;
        closed + self.generation().map_or(0, |g| g.flusher.requests())
    }

    /// The open database, for the duration of one call.
    fn generation(&self) -> Result<Arc<Generation>> {
        lock(&self.inner.current)
            .clone()
            .ok_or_else(|| StoreError::Backend(REOPENING.into()))
    }

    /// Run sled work on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Trees) -> Result<T> + Send + 'static,
    {
        let generation = self.generation()?;
        tokio::task::spawn_blocking(move || f(&generation.trees))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }

    /// A write: tries recovery first if an earlier write failed, runs `f`
    /// on the blocking pool, then waits until the change is on disk. A
    /// backend failure is remembered (see the module docs).
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Trees) -> Result<T> + Send + 'static,
    {
        self.recover_if_due().await;
        let generation = self.generation()?;
        let g = Arc::clone(&generation);
        let result = tokio::task::spawn_blocking(move || f(&g.trees))
            .await
            .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))
            .and_then(|r| r);
        let result = match result {
            Ok(v) => generation.flusher.flush().await.map(|()| v),
            Err(e) => Err(e),
        };
        self.noted(result)
    }

    /// Remember a backend failure of a write (not a refusal such as
    /// `NotFound` or `Aborted`, nor a call refused during a reopen).
    fn noted<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(StoreError::Backend(e)) = &result {
            if e == REOPENING {
                return result;
            }
            let mut health = lock(&self.inner.health);
            if health.failure.is_none() {
                tracing::error!(error = %e, "store write failed; the store recovers once the disk takes writes again");
            }
            health.failure = Some(e.clone());
        }
        result
    }

    /// Whether the store can take writes now. After a failed write or
    /// flush this tries to recover (probe file, probe write, reopen; see
    /// the module docs) at most once per [`RECOVERY_INTERVAL`] and
    /// reports the outcome.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] with the reason while the store cannot write.
    pub async fn ready(&self) -> Result<()> {
        self.recover_if_due().await;
        match &lock(&self.inner.health).failure {
            None => Ok(()),
            Some(e) => Err(StoreError::Backend(format!("cannot write: {e}"))),
        }
    }

    async fn recover_if_due(&self) {
        {
            let mut health = lock(&self.inner.health);
            if health.failure.is_none()
                || health
                    .last_attempt
                    .is_some_and(|t| t.elapsed() < RECOVERY_INTERVAL)
            {
                return;
            }
            health.last_attempt = Some(Instant::now());
        }
        let store = self.clone();
        let outcome = tokio::task::spawn_blocking(move || store.recover())
            .await
            .unwrap_or_else(|e| Some(Err(format!("recovery task failed: {e}"))));
        let mut health = lock(&self.inner.health);
        match outcome {
            // Another attempt is running; it reports.
            None => {}
            Some(Ok(())) => {
                health.failure = None;
                tracing::info!("store takes writes again");
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "store still cannot write");
                health.failure = Some(e);
            }
        }
    }

    /// One recovery attempt (blocking): probe file, probe write, reopen.
    /// `None` if another attempt is running.
    fn recover(&self) -> Option<std::result::Result<(), String>> {
        let Ok(_running) = self.inner.recovering.try_lock() else {
            return None;
        };
        if let Err(e) = probe_file(&self.inner.dir) {
            return Some(Err(e));
        }
        if let Ok(generation) = self.generation() {
            if generation.probe_write().is_ok() {
                return Some(Ok(()));
            }
        }
        Some(self.reopen())
    }

    /// Close the database (once no call uses it) and open it again.
    fn reopen(&self) -> std::result::Result<(), String> {
        tracing::warn!(dir = %self.inner.dir.display(), "reopening the store after a write failure");
        let Some(old) = lock(&self.inner.current).take() else {
            return Err("store is not open".into());
        };
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while Arc::strong_count(&old) > 1 {
            if Instant::now() >= deadline {
                *lock(&self.inner.current) = Some(old);
                return Err("calls still in flight on the failed database".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let leases: Vec<(IVec, IVec)> = match old
            .trees
            .leases
            .iter()
            .collect::<std::result::Result<_, _>>()
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "leases of the failed database not readable; jobs in flight may be claimed again");
                Vec::new()
            }
        };
        {
            let mut counters = lock(&self.inner.closed_flushes);
            counters.0 += old.flusher.completed();
            counters.1 += old.flusher.requests();
        }
        drop(old);
        match Generation::open(&self.inner.dir) {
            Ok(new) => {
                for (k, v) in leases {
                    if let Err(e) = new.trees.leases.insert(k, v) {
                        tracing::warn!(error = %e, "lease not carried over");
                    }
                }
                let probe = new.probe_write();
                *lock(&self.inner.current) = Some(Arc::new(new));
                probe.map_err(|e| e.to_string())
            }
            Err(e) => Err(format!("reopen failed: {e}")),
        }
    }
}

impl Generation {
    /// A small durable write: fails while sled is poisoned.
    fn probe_write(&self) -> Result<()> {
        self.trees
            .config
            .insert(PROBE_KEY, &b"probe"[..])
            .map_err(backend)?;
        self.trees.config.remove(PROBE_KEY).map_err(backend)?;
        self.db.flush().map_err(backend).map(|_| ())
    }
}

/// Write, fsync and remove a small file in `dir`: does the disk take
/// writes?
fn probe_file(dir: &Path) -> std::result::Result<(), String> {
    use std::io::Write;
    let path = dir.join(".write-probe");
    let result = std::fs::File::create(&path)
        .and_then(|mut f| {
            f.write_all(&[0u8; PROBE_BYTES])?;
            f.sync_all()
        })
        .map_err(|e| format!("{}: {e}", path.display()));
    let _ = std::fs::remove_file(&path);
    result
}

/// Run a blocking closure that borrows from the caller: on a multi-thread
/// runtime via `block_in_place`, otherwise inline.
fn run_in_place<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

// ---------------------------------------------------------------------------
// Group commit

/// Background thread that flushes sled on request. A caller asks for flush
/// generation `started + 1` — the next flush to *start* — and waits for it;
/// one flush serves every caller that asked before it started.
struct Flusher {
    shared: Arc<FlushShared>,
    thread: Option<JoinHandle<()>>,
}

struct FlushShared {
    state: Mutex<FlushState>,
    wake: Condvar,
    done: watch::Sender<FlushDone>,
}

#[derive(Default)]
struct FlushState {
    /// Highest generation somebody waits for.
    requested: u64,
    /// Generation of the last flush started.
    started: u64,
    /// Flush requests so far (one per waiting caller).
    requests: u64,
    /// Test hook: hold flushes back.
    paused: bool,
    shutdown: bool,
}

#[derive(Clone, Default)]
struct FlushDone {
    /// Generation of the last completed flush.
    generation: u64,
    /// Its error, if it failed.
    error: Option<String>,
}

impl FlushShared {
    fn lock(&self) -> MutexGuard<'_, FlushState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Flusher {
    fn start(db: sled::Db) -> Result<Self> {
        let (done, _) = watch::channel(FlushDone::default());
        let shared = Arc::new(FlushShared {
            state: Mutex::new(FlushState::default()),
            wake: Condvar::new(),
            done,
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("store-flusher".into())
            .spawn(move || flush_loop(&worker, &db))
            .map_err(|e| StoreError::Backend(format!("start flusher thread: {e}")))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    fn completed(&self) -> u64 {
        self.shared.done.borrow().generation
    }

    async fn flush(&self) -> Result<()> {
        let mut rx = self.shared.done.subscribe();
        let target = {
            let mut st = self.shared.lock();
            if st.shutdown {
                return Err(StoreError::Backend("store is closed".into()));
            }
            let target = st.started + 1;
            st.requested = st.requested.max(target);
            st.requests += 1;
            target
        };
        self.shared.wake.notify_one();
        let done = rx
            .wait_for(|d| d.generation >= target)
            .await
            .map_err(|_| StoreError::Backend("flusher stopped".into()))?
            .clone();
        match done.error {
            None => Ok(()),
            Some(e) => Err(StoreError::Backend(format!("flush to disk failed: {e}"))),
        }
    }

    #[cfg(test)]
    fn set_paused(&self, paused: bool) {
        self.shared.lock().paused = paused;
        self.shared.wake.notify_one();
    }

    fn requests(&self) -> u64 {
        self.shared.lock().requests
    }
}

fn flush_loop(shared: &FlushShared, db: &sled::Db) {
    loop {
        let generation = {
            let mut st = shared.lock();
            loop {
                if st.requested > st.started && !st.paused {
                    st.started += 1;
                    break Some(st.started);
                }
                if st.shutdown {
                    break None;
                }
                st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        let Some(generation) = generation else {
            return;
        };
        let error = db.flush().err().map(|e| e.to_string());
        if let Some(e) = &error {
            tracing::error!(error = %e, "store flush failed");
        }
        shared.done.send_replace(FlushDone { generation, error });
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------
// Keys and codecs

fn backend(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Corruption { .. } => StoreError::Corrupt(e.to_string()),
        other => StoreError::Backend(other.to_string()),
    }
}

fn tx_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => backend(e),
    }
}

fn millis(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

fn from_millis(ms: u64, what: &str) -> Result<DateTime<Utc>> {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: time {ms} out of range")))
}

fn be_u64(bytes: &[u8], what: &str) -> Result<u64> {
    let arr: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: expected 8 bytes")))?;
    Ok(u64::from_be_bytes(arr))
}

fn id_from(bytes: &[u8], what: &str) -> Result<MessageId> {
    let arr: [u8; 16] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt(format!("{what}: bad message id in key")))?;
    Ok(MessageId::from_bytes(arr))
}

/// The last 16 bytes of an index key.
fn id_suffix(key: &[u8], what: &str) -> Result<MessageId> {
    let start = key
        .len()
        .checked_sub(16)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: key too short")))?;
    id_from(key.get(start..).unwrap_or_default(), what)
}

fn decode<T: serde::de::DeserializeOwned>(tree: &str, key: &[u8], value: &[u8]) -> Result<T> {
    serde_json::from_slice(value)
        .map_err(|e| StoreError::Corrupt(format!("{tree} key {}: {e}", hex::encode(key))))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Backend(format!("encode: {e}")))
}

fn job_key(job: &Job) -> Vec<u8> {
    match job {
        Job::Route { message } => {
            let mut k = Vec::with_capacity(17);
            k.push(b'r');
            k.extend_from_slice(message.as_bytes());
            k
        }
        Job::Deliver { message, delivery } => {
            let mut k = Vec::with_capacity(21);
            k.push(b'd');
            k.extend_from_slice(message.as_bytes());
            k.extend_from_slice(&delivery.to_be_bytes());
            k
        }
    }
}

fn queue_key(due_ms: u64, job_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + job_key.len());
    k.extend_from_slice(&due_ms.to_be_bytes());
    k.extend_from_slice(job_key);
    k
}

/// First byte of an `outputs` value: the document follows.
const OUTPUT_INLINE: u8 = 0;
/// First (and only) byte of an `outputs` value: the output is byte-identical
/// to the message's payload (a pass-through rule) and is not stored twice.
const OUTPUT_IS_PAYLOAD: u8 = 1;

fn encode_output(rec: &MessageRecord, doc: &[u8]) -> Vec<u8> {
    let same_as_payload = doc.len() as u64 == rec.envelope.size
        && drehscheibe_model::sha256_hex(doc) == rec.envelope.sha256;
    if same_as_payload {
        return vec![OUTPUT_IS_PAYLOAD];
    }
    let mut v = Vec::with_capacity(doc.len() + 1);
    v.push(OUTPUT_INLINE);
    v.extend_from_slice(doc);
    v
}

fn output_key(id: MessageId, index: u32) -> Vec<u8> {
    let mut k = id.as_bytes().to_vec();
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn audit_key(id: MessageId, seq: u64) -> Vec<u8> {
    let mut k = id.as_bytes().to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn len_prefixed(a: &str) -> Vec<u8> {
    // Strings longer than u32::MAX cannot reach here (they would not fit a
    // request); saturate rather than panic.
    let len = u32::try_from(a.len()).unwrap_or(u32::MAX);
    let mut k = Vec::with_capacity(4 + a.len() + 16);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(a.as_bytes());
    k
}

/// Marks an idempotency entry scoped by sender (see [`idempotency_key`]).
const SCOPED_IDEMPOTENCY: u8 = 1;

/// Key of an idempotency entry: version byte, channel, sender, key.
///
/// Stores written before keys were scoped by sender hold entries of the
/// form `u32 len + channel + key`, whose first byte is the high byte of
/// the channel length, so `0` for any real channel name. A scoped key
/// starts with [`SCOPED_IDEMPOTENCY`] instead, so old entries stay
/// readable but simply never match a new key: a retry that spans the
/// upgrade is stored as a new message, nothing is lost or refused.
fn idempotency_key(channel: &str, sender: &str, key: &str) -> Vec<u8> {
    let mut k = vec![SCOPED_IDEMPOTENCY];
    k.extend_from_slice(&len_prefixed(channel));
    k.extend_from_slice(&len_prefixed(sender));
    k.extend_from_slice(key.as_bytes());
    k
}

fn tenant_prefix(tenant: &str) -> Vec<u8> {
    len_prefixed(tenant)
}

fn state_prefix(state: MessageState) -> Vec<u8> {
    let mut k = state.as_str().as_bytes().to_vec();
    k.push(0);
    k
}

fn with_id(mut prefix: Vec<u8>, id: MessageId) -> Vec<u8> {
    prefix.extend_from_slice(id.as_bytes());
    prefix
}

/// Smallest UUIDv7 with the given millisecond timestamp.
fn min_id_at(t: DateTime<Utc>) -> MessageId {
    let ms = millis(t);
    let mut b = [0u8; 16];
    if let Some(dst) = b.get_mut(..6) {
        dst.copy_from_slice(ms.to_be_bytes().get(2..).unwrap_or(&[0; 6]));
    }
    MessageId::from_bytes(b)
}

#[derive(Serialize, Deserialize)]
struct IdempotencyEntry {
    id: MessageId,
    sha256: String,
}

// ---------------------------------------------------------------------------
// Transactions

struct Trees {
    messages: Tree,
    payloads: Tree,
    outputs: Tree,
    audit: Tree,
    audit_seq: Tree,
    counts: Tree,
    queue: Tree,
    jobs: Tree,
    leases: Tree,
    idempotency: Tree,
    by_tenant: Tree,
    by_state: Tree,
    config: Tree,
}

/// The transactional view of all trees.
struct Tx<'a> {
    messages: &'a TransactionalTree,
    payloads: &'a TransactionalTree,
    outputs: &'a TransactionalTree,
    audit: &'a TransactionalTree,
    audit_seq: &'a TransactionalTree,
    counts: &'a TransactionalTree,
    queue: &'a TransactionalTree,
    jobs: &'a TransactionalTree,
    leases: &'a TransactionalTree,
    idempotency: &'a TransactionalTree,
    by_tenant: &'a TransactionalTree,
    by_state: &'a TransactionalTree,
    config: &'a TransactionalTree,
}

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<StoreError>>;

fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

/// Lift a store error into the transaction error type.
fn lift<T>(r: Result<T>) -> TxResult<T> {
    r.map_err(ConflictableTransactionError::Abort)
}

impl Trees {
    /// Run `f` as one transaction over all trees.
    fn transact<A>(&self, f: impl Fn(&Tx<'_>) -> TxResult<A>) -> Result<A> {
        let all: [&Tree; 13] = [
            &self.messages,
            &self.payloads,
            &self.outputs,
            &self.audit,
            &self.audit_seq,
            &self.counts,
            &self.queue,
            &self.jobs,
            &self.leases,
            &self.idempotency,
            &self.by_tenant,
            &self.by_state,
            &self.config,
        ];
        <[&Tree] as Transactional<StoreError>>::transaction(&all[..], |v| {
            let [messages, payloads, outputs, audit, audit_seq, counts, queue, jobs, leases, idempotency, by_tenant, by_state, config] =
                v.as_slice()
            else {
                return abort(StoreError::Backend("transaction over wrong trees".into()));
            };
            f(&Tx {
                messages,
                payloads,
                outputs,
                audit,
                audit_seq,
                counts,
                queue,
                jobs,
                leases,
                idempotency,
                by_tenant,
                by_state,
                config,
            })
        })
        .map_err(tx_error)
    }

    fn get_record(&self, id: MessageId) -> Result<Option<MessageRecord>> {
        match self.messages.get(id.as_bytes()).map_err(backend)? {
            Some(v) => Ok(Some(decode("messages", id.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    /// Lease expiry of a job key, if leased.
    fn lease_of(&self, job_key: &[u8]) -> Result<Option<u64>> {
        match self.leases.get(job_key).map_err(backend)? {
            Some(v) => Ok(Some(be_u64(&v, "leases")?)),
            None => Ok(None),
        }
    }
}

impl Tx<'_> {
    fn record(&self, id: MessageId) -> TxResult<Option<MessageRecord>> {
        match self.messages.get(id.as_bytes())? {
            Some(v) => lift(decode("messages", id.as_bytes(), &v)).map(Some),
            None => Ok(None),
        }
    }

    fn put_record(&self, rec: &MessageRecord) -> TxResult<()> {
        let bytes = lift(encode(rec))?;
        self.messages.insert(rec.id().as_bytes(), bytes)?;
        Ok(())
    }

    fn count_add(&self, state: MessageState, delta: i64) -> TxResult<()> {
        let key = state.as_str().as_bytes();
        let old = match self.counts.get(key)? {
            Some(v) => lift(be_u64(&v, "counts"))?,
            None => 0,
        };
        let new = old.saturating_add_signed(delta);
        self.counts.insert(key, &new.to_be_bytes())?;
        Ok(())
    }

    fn index_state(&self, state: MessageState, id: MessageId, add: bool) -> TxResult<()> {
        let key = with_id(state_prefix(state), id);
        if add {
            self.by_state.insert(key, &[])?;
        } else {
            self.by_state.remove(key)?;
        }
        self.count_add(state, if add { 1 } else { -1 })
    }

    fn index_tenant(&self, tenant: Option<&str>, id: MessageId, add: bool) -> TxResult<()> {
        if let Some(t) = tenant {
            let key = with_id(tenant_prefix(t), id);
            if add {
                self.by_tenant.insert(key, &[])?;
            } else {
                self.by_tenant.remove(key)?;
            }
        }
        Ok(())
    }

    fn append_audit(&self, id: MessageId, event: &AuditEvent) -> TxResult<()> {
        let seq = match self.audit_seq.get(id.as_bytes())? {
            Some(v) => lift(be_u64(&v, "audit_seq"))?,
            None => 0,
        };
        self.audit
            .insert(audit_key(id, seq), lift(encode(event))?)?;
        self.audit_seq
            .insert(id.as_bytes(), &seq.saturating_add(1).to_be_bytes())?;
        Ok(())
    }

    fn complete(&self, job: &Job) -> TxResult<()> {
        let jk = job_key(job);
        if let Some(qk) = self.jobs.remove(jk.as_slice())? {
            self.queue.remove(qk)?;
        }
        self.leases.remove(jk)?;
        Ok(())
    }

    fn schedule(&self, job: &Job, due: DateTime<Utc>) -> TxResult<()> {
        let jk = job_key(job);
        if let Some(old) = self.jobs.get(jk.as_slice())? {
            self.queue.remove(old)?;
        }
        let qk = queue_key(millis(due), &jk);
        self.queue.insert(qk.as_slice(), lift(encode(job))?)?;
        self.jobs.insert(jk.as_slice(), qk)?;
        self.leases.remove(jk)?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Store

#[async_trait]
impl Store for SledStore {
    async fn accept(
        &self,
        record: &MessageRecord,
        payload: Bytes,
        audit: AuditEvent,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<AcceptOutcome> {
        let record = record.clone();
        // `write` waits for the disk also for duplicates: the first message
        // may still be in flight to disk.
        self.write(move |t| {
            let id = record.id();
            let idem = idempotency.map(|k| {
                (
                    idempotency_key(&k.channel, &k.sender, &k.key),
                    IdempotencyEntry {
                        id,
                        sha256: k.payload_sha256,
                    },
                )
            });
            t.transact(|tx| {
                if let Some((key, entry)) = &idem {
                    if let Some(v) = tx.idempotency.get(key.as_slice())? {
                        let first: IdempotencyEntry = lift(decode("idempotency", key, &v))?;
                        return Ok(if first.sha256 == entry.sha256 {
                            AcceptOutcome::Duplicate(first.id)
                        } else {
                            AcceptOutcome::KeyConflict(first.id)
                        });
                    }
                    tx.idempotency
                        .insert(key.as_slice(), lift(encode(entry))?)?;
                }
                if tx.messages.get(id.as_bytes())?.is_some() {
                    return abort(StoreError::Backend(format!("message {id} already exists")));
                }
                tx.put_record(&record)?;
                tx.payloads.insert(id.as_bytes(), payload.as_ref())?;
                tx.append_audit(id, &audit)?;
                tx.index_state(record.state, id, true)?;
                tx.index_tenant(record.envelope.tenant.as_deref(), id, true)?;
                tx.schedule(&Job::Route { message: id }, Utc::now())?;
                Ok(AcceptOutcome::Created)
            })
        })
        .await
    }

    async fn get(&self, id: MessageId) -> Result<Option<MessageRecord>> {
        self.blocking(move |t| t.get_record(id)).await
    }

    async fn payload(&self, id: MessageId) -> Result<Option<Bytes>> {
        self.blocking(move |t| {
            Ok(t.payloads
                .get(id.as_bytes())
                .map_err(backend)?
                .map(|v| Bytes::copy_from_slice(&v)))
        })
        .await
    }

    async fn output(&self, id: MessageId, index: u32) -> Result<Option<Bytes>> {
        self.blocking(move |t| {
            let Some(v) = t.outputs.get(output_key(id, index)).map_err(backend)? else {
                return Ok(None);
            };
            match v.first() {
                Some(&OUTPUT_INLINE) => Ok(Some(Bytes::copy_from_slice(&v[1..]))),
                Some(&OUTPUT_IS_PAYLOAD) => {
                    let payload = t.payloads.get(id.as_bytes()).map_err(backend)?;
                    payload
                        .map(|p| Some(Bytes::copy_from_slice(&p)))
                        .ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "output {index} of {id} refers to the payload, which is missing"
                            ))
                        })
                }
                _ => Err(StoreError::Corrupt(format!(
                    "output {index} of {id}: unknown encoding"
                ))),
            }
        })
        .await
    }

    async fn update(&self, id: MessageId, f: &mut UpdateFn<'_>) -> Result<MessageRecord> {
        let f = RefCell::new(f);
        self.recover_if_due().await;
        let generation = self.generation()?;
        let trees = &generation.trees;
        let stored = run_in_place(|| {
            trees.transact(|tx| {
                let Some(old) = tx.record(id)? else {
                    return abort(StoreError::NotFound(id));
                };
                let mut rec = old.clone();
                let effects: Effects = {
                    let mut f = f.borrow_mut();
                    lift((*f)(&mut rec))?
                };
                if rec.id() != id {
                    return abort(StoreError::Aborted(format!(
                        "update of message {id} may not change its id"
                    )));
                }
                if effects.is_empty() && rec == old {
                    // Nothing to write (e.g. a second delivery of a message
                    // another worker already marked `delivering`).
                    return Ok((rec, false));
                }
                rec.revision = old.revision.saturating_add(1);
                rec.updated_at = Utc::now();
                tx.put_record(&rec)?;
                if rec.state != old.state {
                    tx.index_state(old.state, id, false)?;
                    tx.index_state(rec.state, id, true)?;
                }
                if rec.envelope.tenant != old.envelope.tenant {
                    tx.index_tenant(old.envelope.tenant.as_deref(), id, false)?;
                    tx.index_tenant(rec.envelope.tenant.as_deref(), id, true)?;
                }
                for event in &effects.audit {
                    tx.append_audit(id, event)?;
                }
                for (index, doc) in &effects.outputs {
                    tx.outputs
                        .insert(output_key(id, *index), encode_output(&rec, doc))?;
                }
                for job in &effects.complete {
                    tx.complete(job)?;
                }
                for (job, due) in &effects.schedule {
                    tx.schedule(job, *due)?;
                }
                Ok((rec, true))
            })
        });
        let stored = match stored {
            Ok((rec, true)) => generation.flusher.flush().await.map(|()| rec),
            Ok((rec, false)) => Ok(rec),
            Err(e) => Err(e),
        };
        self.noted(stored)
    }

    async fn list(&self, filter: &MessageFilter) -> Result<Page> {
        let filter = filter.clone();
        self.blocking(move |t| list(t, &filter)).await
    }

    async fn audit(&self, id: MessageId) -> Result<Vec<AuditEvent>> {
        self.blocking(move |t| {
            t.audit
                .scan_prefix(id.as_bytes())
                .map(|kv| {
                    let (k, v) = kv.map_err(backend)?;
                    decode("audit", &k, &v)
                })
                .collect()
        })
        .await
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
        self.recover_if_due().await;
        let claimed = self
            .blocking(move |t| {
                let now_ms = millis(now);
                let lease = millis(lease_until).to_be_bytes();
                // Candidates from a scan outside the transaction, re-checked inside.
                let mut candidates = Vec::new();
                for kv in t.queue.iter() {
                    let (qk, v) = kv.map_err(backend)?;
                    let due_ms = be_u64(&qk, "queue")?;
                    if due_ms > now_ms {
                        break;
                    }
                    let jk = qk.get(8..).unwrap_or_default().to_vec();
                    if t.lease_of(&jk)?.is_some_and(|until| until > now_ms) {
                        continue;
                    }
                    let job: Job = decode("queue", &qk, &v)?;
                    candidates.push((qk, jk, job, from_millis(due_ms, "queue")?));
                    if candidates.len() >= limit {
                        break;
                    }
                }
                if candidates.is_empty() {
                    return Ok(Vec::new());
                }
                t.transact(|tx| {
                    let mut out = Vec::with_capacity(candidates.len());
                    for (qk, jk, job, due) in &candidates {
                        if tx.queue.get(qk)?.is_none() {
                            continue;
                        }
                        if let Some(v) = tx.leases.get(jk.as_slice())? {
                            if lift(be_u64(&v, "leases"))? > now_ms {
                                continue;
                            }
                        }
                        tx.leases.insert(jk.as_slice(), &lease)?;
                        out.push(ClaimedJob {
                            job: *job,
                            due: *due,
                        });
                    }
                    Ok(out)
                })
            })
            .await;
        let claimed = self.noted(claimed)?;
        // No flush here: a lease only matters while this process runs (a
        // single process owns the sled database, and `release_leases` drops
        // every lease at the next start). Waiting for the disk here would
        // serialise the dispatcher on fsync latency.
        Ok(claimed)
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        self.blocking(|t| {
            let now_ms = millis(Utc::now());
            let mut best: Option<u64> = None;
            for kv in t.queue.iter() {
                let (qk, _) = kv.map_err(backend)?;
                let due_ms = be_u64(&qk, "queue")?;
                if best.is_some_and(|b| due_ms >= b) {
                    break;
                }
                let jk = qk.get(8..).unwrap_or_default();
                // A leased job becomes claimable again when its lease expires.
                let at = match t.lease_of(jk)? {
                    Some(until) if until > now_ms => due_ms.max(until),
                    _ => due_ms,
                };
                best = Some(best.map_or(at, |b| b.min(at)));
            }
            best.map(|ms| from_millis(ms, "queue")).transpose()
        })
        .await
    }

    async fn renew_lease(&self, job: Job, lease_until: DateTime<Utc>) -> Result<bool> {
        let renewed = self
            .blocking(move |t| {
                let jk = job_key(&job);
                let until = millis(lease_until).to_be_bytes();
                // Atomic per key: a lease removed meanwhile (the job
                // completed) stays removed.
                let previous = t
                    .leases
                    .fetch_and_update(jk.as_slice(), |old| old.map(|_| until.to_vec()))
                    .map_err(backend)?;
                Ok(previous.is_some())
            })
            .await;
        self.noted(renewed)
    }

    async fn release_leases(&self) -> Result<u64> {
        self.write(|t| {
            let keys: Vec<IVec> = t
                .leases
                .iter()
                .keys()
                .collect::<std::result::Result<_, _>>()
                .map_err(backend)?;
            if keys.is_empty() {
                return Ok(0);
            }
            t.transact(|tx| {
                let mut n = 0u64;
                for k in &keys {
                    if tx.leases.remove(k)?.is_some() {
                        n += 1;
                    }
                }
                Ok(n)
            })
        })
        .await
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats> {
        self.blocking(move |t| {
            let now_ms = millis(now);
            let mut stats = QueueStats::default();
            for kv in t.queue.iter() {
                let (qk, _) = kv.map_err(backend)?;
                stats.depth += 1;
                if be_u64(&qk, "queue")? <= now_ms {
                    let jk = qk.get(8..).unwrap_or_default();
                    if t.lease_of(jk)?.is_none_or(|until| until <= now_ms) {
                        stats.due += 1;
                    }
                }
            }
            Ok(stats)
        })
        .await
    }

    async fn count_by_state(&self) -> Result<Vec<(MessageState, u64)>> {
        self.blocking(|t| {
            MessageState::ALL
                .into_iter()
                .map(|s| {
                    let n = match t.counts.get(s.as_str()).map_err(backend)? {
                        Some(v) => be_u64(&v, "counts")?,
                        None => 0,
                    };
                    Ok((s, n))
                })
                .collect()
        })
        .await
    }

    async fn put_config_snapshot(&self, digest: &str, text: &str) -> Result<()> {
        let digest = digest.to_owned();
        let text = text.to_owned();
        self.write(move |t| {
            t.transact(|tx| {
                tx.config.insert(digest.as_bytes(), text.as_bytes())?;
                Ok(())
            })
        })
        .await
    }

    async fn referenced_blobs(
        &self,
        candidates: std::collections::HashSet<String>,
    ) -> Result<std::collections::HashSet<String>> {
        if candidates.is_empty() {
            return Ok(candidates);
        }
        self.blocking(move |t| {
            let mut found = std::collections::HashSet::new();
            for entry in t.messages.iter() {
                let (key, value) = entry.map_err(backend)?;
                let record: MessageRecord = decode("messages", &key, &value)?;
                for a in &record.envelope.attachments {
                    if candidates.contains(&a.blob.sha256) {
                        found.insert(a.blob.sha256.clone());
                    }
                }
                if found.len() == candidates.len() {
                    break;
                }
            }
            Ok(found)
        })
        .await
    }

    async fn config_snapshot(&self, digest: &str) -> Result<Option<String>> {
        let digest = digest.to_owned();
        self.blocking(
            move |t| match t.config.get(digest.as_bytes()).map_err(backend)? {
                Some(v) => String::from_utf8(v.to_vec())
                    .map(Some)
                    .map_err(|e| StoreError::Corrupt(format!("config key {digest:?}: {e}"))),
                None => Ok(None),
            },
        )
        .await
    }

    async fn flush(&self) -> Result<()> {
        let flushed = match self.generation() {
            Ok(generation) => generation.flusher.flush().await,
            Err(e) => Err(e),
        };
        self.noted(flushed)
    }

    async fn ready(&self) -> Result<()> {
        SledStore::ready(self).await
    }
}

/// `list`: pick the most selective index, then check every filter on the
/// record itself.
fn list(t: &Trees, filter: &MessageFilter) -> Result<Page> {
    let limit = match filter.limit {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    };
    let (tree, prefix, name): (&Tree, Vec<u8>, &str) = match (&filter.state, &filter.tenant) {
        (Some(state), _) => (&t.by_state, state_prefix(*state), "by_state"),
        (None, Some(tenant)) => (&t.by_tenant, tenant_prefix(tenant), "by_tenant"),
        (None, None) => (&t.messages, Vec::new(), "messages"),
    };
    let after = filter.after.map(|id| with_id(prefix.clone(), id));
    let since = filter
        .since
        .map(|s| with_id(prefix.clone(), min_id_at(s - SINCE_SLACK)));
    let start = match (after, since) {
        (Some(a), Some(s)) if s > a => Bound::Included(s),
        (Some(a), _) => Bound::Excluded(a),
        (None, Some(s)) => Bound::Included(s),
        (None, None) => Bound::Included(prefix.clone()),
    };
    let mut items = Vec::new();
    let mut more = false;
    for kv in tree.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
        let (k, v) = kv.map_err(backend)?;
        if !k.starts_with(&prefix) {
            break;
        }
        let rec: MessageRecord = if name == "messages" {
            decode("messages", &k, &v)?
        } else {
            let id = id_suffix(&k, name)?;
            t.get_record(id)?.ok_or_else(|| {
                StoreError::Corrupt(format!("{name} key {}: message missing", hex::encode(&k)))
            })?
        };
        let matches = filter.state.is_none_or(|s| rec.state == s)
            && filter
                .tenant
                .as_deref()
                .is_none_or(|x| rec.envelope.tenant.as_deref() == Some(x))
            && filter.since.is_none_or(|s| rec.envelope.received_at >= s);
        if !matches {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(rec);
    }
    let next = if more {
        items.last().map(|r: &MessageRecord| r.id())
    } else {
        None
    };
    Ok(Page { items, next })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use drehscheibe_model::{Envelope, SenderIdentity};

    fn record() -> MessageRecord {
        let id = MessageId::new();
        MessageRecord::received(Envelope {
            id,
            channel: "ch".into(),
            sender: SenderIdentity {
                adapter: "test".into(),
                principal: "p".into(),
                remote_addr: None,
            },
            received_at: Utc::now(),
            content_type: "application/xml".into(),
            size: 3,
            sha256: drehscheibe_model::sha256_hex(b"<a/>"),
            correlation_ids: Default::default(),
            idempotency_key: None,
            tenant: None,
            kommune_key: None,
            leistung: None,
            attachments: Vec::new(),
        })
    }

    /// With the flusher held back, N concurrent accepts all commit and then
    /// wait for the same flush generation: exactly one flush serves them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_flush_serves_all_waiting_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let before = store.flush_count();
        store.generation().unwrap().flusher.set_paused(true);
        const N: u64 = 16;
        let mut tasks = Vec::new();
        for _ in 0..N {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let rec = record();
                let ev = AuditEvent::new(rec.id(), "test", "received", None, rec.state);
                store
                    .accept(&rec, Bytes::from_static(b"<a/>"), ev, None)
                    .await
            }));
        }
        // Wait until every accept has committed and asked for a flush.
        while store.flush_requests() < N {
            tokio::task::yield_now().await;
        }
        let counts = store.count_by_state().await.unwrap();
        assert!(counts.contains(&(MessageState::Received, N)));
        assert!(
            tasks.iter().all(|t| !t.is_finished()),
            "nobody is durable yet"
        );
        store.generation().unwrap().flusher.set_paused(false);
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), AcceptOutcome::Created);
        }
        assert_eq!(store.flush_count(), before + 1);
    }

    #[test]
    fn min_id_at_orders_with_real_ids() {
        let t = Utc::now();
        let before = min_id_at(t - TimeDelta::milliseconds(1));
        let id = MessageId::new();
        let after = min_id_at(t + TimeDelta::seconds(1));
        assert!(before < id && id < after);
    }
}
