//! [`SledStore`]: the embedded [`Store`] on sled 0.34.
//!
//! One sled database at `<dir>/db` and a value log at `<dir>/vlog`.
//! Accepts and updates are prepared by the caller and queued to the
//! store's single writer thread (`writer.rs`), which applies everything
//! queued in one multi-tree sled transaction followed by one flush (see
//! [`SledStore::flush_count`]): the method returns only once the change is
//! on disk, and concurrent callers share one transaction and one flush.
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
//! | `payload_refs`| id                           | value-log pointer of the payload; empty once retention purged it |
//! | `payloads`    | id                           | payload bytes (stores written before the value log; read only) |
//! | `outputs`     | id + u32 index               | 2 + value-log pointer, 1 = same as payload, or 0 + document (before the value log) |
//! | `audit`       | id + u64 seq                 | JSON [`AuditEvent`] (prefix scan = in order) |
//! | `audit_seq`   | id                           | u64 next audit seq of that message     |
//! | `counts`      | state name                   | u64 number of messages in that state   |
//! | `queue`       | ms due + job                 | JSON [`Job`] (one entry per job)       |
//! | `idempotency` | 1 + u32 len + channel + u32 len + sender + key | JSON `{id, sha256}`      |
//! | `by_tenant`   | u32 len + tenant + id        | empty (index for `list`)               |
//! | `by_state`    | state name + `0x00` + id     | empty (index for `list`)               |
//! | `config`      | digest                       | configuration text                     |
//! | `state`       | u32 len + space + key        | adapter state value ([`crate::state`]) |
//! | `retention`   | `e` + stage + u32 len + tenant + ms finished + id | empty (expiry index, see below) |
//! |               | `o` + id                     | the message's `e` key                  |
//! |               | `c` + blob sha256 (hex)      | u64 messages referencing the blob      |
//! |               | `g` + blob sha256 (hex)      | empty: unreferenced blob to collect    |
//! |               | `v`                          | u64 version of the index (built once)  |
//!
//! The index trees, counters and queue entries are changed in the same
//! transaction as the record they describe. Payloads and output documents
//! live in the append-only value log beside the database (`<dir>/vlog`,
//! see `vlog.rs`), synced by the same group commit before sled's flush;
//! the trees hold only pointers to them.
//!
//! # Retention
//!
//! The `retention` tree serves the sweeper (see [`crate::retention`]):
//!
//! * The *expiry index*: every finished message (`delivered`, `dead`,
//!   `rejected`) has one `e` entry, keyed by its next stage (`p` payload
//!   of a delivered message, `f` payload of a dead or rejected one, `r`
//!   record), its tenant (empty without one) and the millisecond it
//!   finished. Within one (stage, tenant) prefix the entries are in finish
//!   order and share one duration, so [`Store::purge_expired`] reads each
//!   prefix from its start up to `now − duration` and then seeks to the
//!   next tenant: it visits only due messages. `o` + id names a message's
//!   entry, so a replay (leaving the finished state) can remove it. Both
//!   are written in the transaction that moves the state.
//! * *Blob reference counts*: `c` + sha counts the stored messages
//!   referencing a blob, raised by `accept` and lowered by the payload
//!   stage in the same transaction; when it reaches zero the count goes
//!   and a `g` candidate is written for the blob collector (engine), which
//!   deletes the file only under the blob store's staging lock after
//!   asking the count again (ADR 0015).
//!
//! Purges are prepared like updates (the record read and the new record
//! computed outside the writer) and applied by the writer in bounded
//! batches, each only while the record is still the bytes read and its
//! `o` entry still names the due stage; anything else is skipped and
//! found again by the next sweep. A store written before retention
//! builds the index once at open (`v` missing).
//!
//! # The queue in memory
//!
//! The `queue` tree is the durable truth; a mirror of it in memory (the
//! *queue index*: entries by due time, each job's due time, and the
//! leases) answers [`Store::claim_due`], [`Store::next_due`],
//! [`Store::renew_lease`], [`Store::release_leases`] and
//! [`Store::queue_stats`] without touching sled. Every transaction holds
//! the index's lock and applies its queue changes to the index once it
//! has committed, so the two never disagree; a (re)open rebuilds the
//! index from the tree. Leases exist only in the index: they are
//! process-local claims (see the crate docs), and sled 0.34 runs one
//! transaction at a time anyway, so the lock costs no concurrency.
//!
//! # Notes
//!
//! * `update` runs its closure on the calling thread against the committed
//!   record, outside any lock; the writer applies the result only if the
//!   stored record is still the one read (byte for byte; every update moves
//!   its revision), otherwise the closure runs again on
//!   the new record (`writer.rs`). Keep the closure short and free of I/O.
//! * Point reads (`get`, `payload`, `output` up to 256 KiB) run on the
//!   calling thread; scans (`list`, `audit`, the blob sweep) and large
//!   value-log reads on the blocking pool.
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
use std::collections::HashMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use drehscheibe_model::{AuditEvent, MessageId, MessageRecord, MessageState};
use serde::{Deserialize, Serialize};
use sled::transaction::{
    ConflictableTransactionError, TransactionError, Transactional, TransactionalTree,
};
use sled::Tree;

mod queue;
mod writer;

use queue::{QueueChange, QueueIndex};
use writer::{
    AcceptOp, IndexKeys, Op, Outcome, PointerTree, PurgeItem, PurgeStage, RepointItem, StateOp,
    UpdateOp, Writer,
};

use crate::retention::blob_refs_of;
use crate::state::prefix_end;
use crate::vlog::{AppendPin, Pointer, ValueLog, POINTER_BYTES};
use crate::{
    AcceptOutcome, ClaimedJob, CollectReport, IdempotencyKey, Job, MessageFilter, Page,
    PurgeReport, QueueStats, Result, RetentionPolicy, StateCommit, Store, StoreError, UpdateFn,
    DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE,
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

/// How often [`SledStore::update`] reruns its closure when the record
/// keeps changing under it before it gives up.
const MAX_UPDATE_ATTEMPTS: u32 = 64;

/// Largest value-log read or payload append done on the calling thread;
/// larger ones go to the blocking pool (see [`SledStore::read_doc`]).
const INLINE_IO_BYTES: u64 = 256 * 1024;

/// A stored document: bytes already at hand, or where to read them.
enum Doc {
    Bytes(Vec<u8>),
    Log(Pointer),
    /// Deleted by retention.
    Purged,
}

/// Key of the probe write in the `config` tree (never a digest).
const PROBE_KEY: &[u8] = b"\0probe";

const TREE_NAMES: [&str; 14] = [
    "messages",
    "payloads",
    "payload_refs",
    "outputs",
    "audit",
    "audit_seq",
    "counts",
    "queue",
    "idempotency",
    "by_tenant",
    "by_state",
    "config",
    "state",
    "retention",
];

/// Trees of stores written before the queue index and the value log
/// (the job → queue-key map and the persisted leases); dropped at open.
const RETIRED_TREES: [&str; 2] = ["jobs", "leases"];

/// Tunables of [`SledStore::open_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Size at which a value-log segment is closed (default
    /// [`crate::SEGMENT_BYTES`], 64 MiB). Small values are for tests.
    pub vlog_segment_bytes: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            vlog_segment_bytes: crate::SEGMENT_BYTES,
        }
    }
}

/// The embedded store: sled on local disk, one process.
///
/// Cheap to clone; clones share the database. Dropping the last clone stops
/// the writer thread and closes the database, so the directory can be
/// opened again.
#[derive(Clone)]
pub struct SledStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    options: StoreOptions,
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

/// One opened sled database with its trees and writer. Dropped (closing
/// the database) when the last call using it ends.
struct Generation {
    trees: Arc<Trees>,
    writer: Writer,
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
        Self::open_with(dir, StoreOptions::default())
    }

    /// [`SledStore::open`] with tunables.
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<SledStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("create {}: {e}", dir.display())))?;
        let generation = Generation::open(dir, &options)?;
        Ok(SledStore {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                options,
                current: Mutex::new(Some(Arc::new(generation))),
                closed_flushes: Mutex::new((0, 0)),
                health: Mutex::new(Health::default()),
                recovering: Mutex::new(()),
            }),
        })
    }
}

impl Generation {
    fn open(dir: &Path, options: &StoreOptions) -> Result<Generation> {
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
            // Our group-commit writer makes every acknowledged write
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
        for name in RETIRED_TREES {
            db.drop_tree(name).map_err(backend)?;
        }
        let queue = open(7)?;
        let index = QueueIndex::load(&queue)?;
        let vlog = ValueLog::open(&dir.join("vlog"), options.vlog_segment_bytes)?;
        let trees = Trees {
            messages: open(0)?,
            payloads: open(1)?,
            payload_refs: open(2)?,
            outputs: open(3)?,
            audit: open(4)?,
            audit_seq: open(5)?,
            counts: open(6)?,
            queue,
            idempotency: open(8)?,
            by_tenant: open(9)?,
            by_state: open(10)?,
            config: open(11)?,
            state: open(12)?,
            retention: open(13)?,
            vlog,
            index: Mutex::new(index),
        };
        build_retention_index(&trees)?;
        let trees = Arc::new(trees);
        let writer = Writer::start(Arc::clone(&trees), db.clone())?;
        Ok(Generation { trees, writer, db })
    }
}

impl SledStore {
    /// Number of disk flushes the group-commit writer has completed since
    /// the store was opened (for metrics and tests).
    pub fn flush_count(&self) -> u64 {
        let closed = lock(&self.inner.closed_flushes).0;
        closed + self.generation().map_or(0, |g| g.writer.completed())
    }

    /// Number of times a caller waited for a flush since the store was
    /// opened; `flush_requests / flush_count` is the group-commit factor.
    pub fn flush_requests(&self) -> u64 {
        let closed = lock(&self.inner.closed_flushes).1;
        closed + self.generation().map_or(0, |g| g.writer.requests())
    }

    /// The open database, for the duration of one call.
    fn generation(&self) -> Result<Arc<Generation>> {
        lock(&self.inner.current)
            .clone()
            .ok_or_else(|| StoreError::Backend(REOPENING.into()))
    }

    /// A point read (one record, one pointer): runs on the calling
    /// thread. sled serves it from its page cache in microseconds, less
    /// than handing it to the blocking pool and back costs (two thread
    /// switches); it waits only for a running transaction, which is as
    /// short as an `update` closure.
    fn quick<T>(&self, f: impl FnOnce(&Trees) -> Result<T>) -> Result<T> {
        let generation = self.generation()?;
        f(&generation.trees)
    }

    /// The bytes of a stored document: small values read on the calling
    /// thread (a `pread` from the page cache), large ones on the blocking
    /// pool.
    async fn read_doc(&self, id: MessageId, doc: Doc) -> Result<Bytes> {
        match doc {
            Doc::Purged => Err(StoreError::Purged(id)),
            Doc::Bytes(b) => Ok(Bytes::from(b)),
            Doc::Log(p) if p.len <= INLINE_IO_BYTES => {
                let generation = self.generation()?;
                generation.trees.vlog.read(&p).map(Bytes::from)
            }
            Doc::Log(p) => {
                self.blocking(move |t| t.vlog.read(&p).map(Bytes::from))
                    .await
            }
        }
    }

    /// Read a document whose pointer the value-log collector may move
    /// meanwhile: a read that finds its segment deleted by this process
    /// (moved, see `vlog.rs`) looks the pointer up again.
    async fn read_moving(
        &self,
        id: MessageId,
        locate: impl Fn(&Trees) -> Result<Option<Doc>>,
    ) -> Result<Option<Bytes>> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(doc) = self.quick(&locate)? else {
                return Ok(None);
            };
            let segment = match &doc {
                Doc::Log(p) => Some(p.segment),
                _ => None,
            };
            match self.read_doc(id, doc).await {
                Err(StoreError::Corrupt(_))
                    if attempt < 4
                        && segment.is_some_and(|s| {
                            self.generation().is_ok_and(|g| g.trees.vlog.was_deleted(s))
                        }) =>
                {
                    continue
                }
                other => return other.map(Some),
            }
        }
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

    /// A rare write outside the writer's batches (a configuration
    /// snapshot): tries recovery first if an earlier write failed, runs `f`
    /// on the blocking pool, then waits until the change is on disk. A
    /// backend failure is remembered (see the module docs).
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Trees) -> Result<T> + Send + 'static,
    {
        self.recover_if_due().await;
        let value = self.noted(self.blocking(f).await)?;
        Store::flush(self).await?;
        Ok(value)
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
        let leases = old.trees.lock_index().leases.clone();
        {
            let mut counters = lock(&self.inner.closed_flushes);
            counters.0 += old.writer.completed();
            counters.1 += old.writer.requests();
        }
        drop(old);
        match Generation::open(&self.inner.dir, &self.inner.options) {
            Ok(new) => {
                new.trees.lock_index().carry_leases(leases);
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

/// First byte of an `outputs` value written before the value log: the
/// document follows.
const OUTPUT_INLINE: u8 = 0;
/// First (and only) byte of an `outputs` value: the output is byte-identical
/// to the message's payload (a pass-through rule) and is not stored twice.
const OUTPUT_IS_PAYLOAD: u8 = 1;
/// First byte of an `outputs` value: a value-log pointer follows.
const OUTPUT_IN_LOG: u8 = 2;

/// The `outputs` value of `doc`: a reference to the payload, or the
/// document appended to the value log.
fn encode_output(
    rec: &MessageRecord,
    doc: &[u8],
    vlog: &ValueLog,
) -> Result<(Vec<u8>, Option<AppendPin>)> {
    let same_as_payload = doc.len() as u64 == rec.envelope.size
        && drehscheibe_model::sha256_hex(doc) == rec.envelope.sha256;
    if same_as_payload {
        return Ok((vec![OUTPUT_IS_PAYLOAD], None));
    }
    let (pointer, pin) = vlog.append(doc)?;
    Ok((encode_log_output(&pointer), Some(pin)))
}

/// The `outputs` value of a document at `pointer`.
fn encode_log_output(pointer: &Pointer) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + POINTER_BYTES);
    v.push(OUTPUT_IN_LOG);
    v.extend_from_slice(&pointer.encode());
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

/// Key of `key` in state space `space`: the space length-prefixed, so
/// no space's keys can reach into another's.
fn state_key(space: &str, key: &[u8]) -> Vec<u8> {
    let mut k = len_prefixed(space);
    k.extend_from_slice(key);
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

/// The `payload_refs` value of a message whose payload retention deleted.
const PAYLOAD_PURGED: &[u8] = &[];

/// Stage byte of an expiry entry: payload of a delivered message.
const STAGE_DELIVERED: u8 = b'p';
/// Stage byte of an expiry entry: payload of a dead or rejected message.
const STAGE_FAILED: u8 = b'f';
/// Stage byte of an expiry entry: the record (payload already deleted).
const STAGE_RECORD: u8 = b'r';

/// Key of the version entry of the `retention` tree.
const RETENTION_VERSION: &[u8] = b"v";

/// The next retention stage of a finished record, as its stage byte.
fn stage_of(rec: &MessageRecord) -> Option<u8> {
    crate::retention::Stage::of(rec).map(crate::retention::Stage::byte)
}

/// `e` + stage + u32 len + tenant: one prefix of the expiry index.
fn expiry_prefix(stage: u8, tenant: Option<&str>) -> Vec<u8> {
    let mut k = vec![b'e', stage];
    k.extend_from_slice(&len_prefixed(tenant.unwrap_or("")));
    k
}

/// The expiry entry of a message finished at `finished_ms`.
fn expiry_key(stage: u8, tenant: Option<&str>, finished_ms: u64, id: MessageId) -> Vec<u8> {
    let mut k = expiry_prefix(stage, tenant);
    k.extend_from_slice(&finished_ms.to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// The expiry entry of a finished record (finish = its `updated_at`).
fn expiry_key_of(rec: &MessageRecord) -> Option<Vec<u8>> {
    let stage = stage_of(rec)?;
    Some(expiry_key(
        stage,
        rec.envelope.tenant.as_deref(),
        millis(rec.updated_at),
        rec.id(),
    ))
}

/// A parsed expiry entry.
struct ExpiryEntry {
    stage: u8,
    /// Empty for messages without a tenant.
    tenant: String,
    finished_ms: u64,
    id: MessageId,
}

fn parse_expiry_key(k: &[u8]) -> Result<ExpiryEntry> {
    let bad = || StoreError::Corrupt(format!("retention key {}: malformed", hex::encode(k)));
    let stage = *k.get(1).ok_or_else(bad)?;
    let len: [u8; 4] = k
        .get(2..6)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    let len = u32::from_be_bytes(len) as usize;
    let tenant = k.get(6..6 + len).ok_or_else(bad)?;
    let tenant = String::from_utf8(tenant.to_vec()).map_err(|_| bad())?;
    let rest = k.get(6 + len..).ok_or_else(bad)?;
    if rest.len() != 24 {
        return Err(bad());
    }
    Ok(ExpiryEntry {
        stage,
        tenant,
        finished_ms: be_u64(rest, "retention")?,
        id: id_from(rest.get(8..).unwrap_or_default(), "retention")?,
    })
}

/// `o` + id: which expiry entry a message has.
fn owner_key(id: MessageId) -> Vec<u8> {
    let mut k = vec![b'o'];
    k.extend_from_slice(id.as_bytes());
    k
}

/// `c` + sha: reference count of a blob.
fn blob_count_key(sha256: &str) -> Vec<u8> {
    let mut k = vec![b'c'];
    k.extend_from_slice(sha256.as_bytes());
    k
}

/// Change the reference count of a blob by `delta` (messages and state
/// records holding it); `true` when no reference is left (the blob
/// becomes a collection candidate), and it is no candidate while any is.
fn blob_ref_change(retention: &TransactionalTree, sha256: &str, delta: i64) -> TxResult<bool> {
    let key = blob_count_key(sha256);
    let n = match retention.get(&key)? {
        Some(v) => lift(be_u64(&v, "retention"))?,
        None => 0,
    };
    let next = if delta >= 0 {
        n.saturating_add(delta.unsigned_abs())
    } else {
        n.saturating_sub(delta.unsigned_abs())
    };
    if next > 0 {
        retention.insert(key, &next.to_be_bytes())?;
        retention.remove(blob_garbage_key(sha256))?;
        Ok(false)
    } else {
        retention.remove(key)?;
        retention.insert(blob_garbage_key(sha256), &[])?;
        Ok(true)
    }
}

/// `g` + sha: a blob no message references any more.
fn blob_garbage_key(sha256: &str) -> Vec<u8> {
    let mut k = vec![b'g'];
    k.extend_from_slice(sha256.as_bytes());
    k
}

/// Build the `retention` tree of a store written before it (once, at
/// open, before the writer starts): an expiry entry for every finished
/// message, finished at its last update, and the blob reference counts.
/// One atomic batch, so a crash leaves it unbuilt and the next open
/// starts again.
fn build_retention_index(t: &Trees) -> Result<()> {
    if t.retention
        .contains_key(RETENTION_VERSION)
        .map_err(backend)?
    {
        return Ok(());
    }
    let mut batch = sled::Batch::default();
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut finished = 0u64;
    for kv in t.messages.iter() {
        let (k, v) = kv.map_err(backend)?;
        let rec: MessageRecord = decode("messages", &k, &v)?;
        for sha in blob_refs_of(&rec) {
            *counts.entry(sha).or_insert(0) += 1;
        }
        if let Some(key) = expiry_key_of(&rec) {
            batch.insert(owner_key(rec.id()), key.clone());
            batch.insert(key, &[][..]);
            finished += 1;
        }
    }
    for (sha, n) in &counts {
        batch.insert(blob_count_key(sha), &n.to_be_bytes()[..]);
    }
    batch.insert(RETENTION_VERSION, &1u64.to_be_bytes()[..]);
    t.retention.apply_batch(batch).map_err(backend)?;
    t.retention.flush().map_err(backend)?;
    if finished > 0 || !counts.is_empty() {
        tracing::info!(
            finished,
            blobs = counts.len(),
            "built the retention index of a store written before it"
        );
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct IdempotencyEntry {
    id: MessageId,
    sha256: String,
}

// ---------------------------------------------------------------------------
// Transactions

/// Everything of one open database: its trees, the value log and the
/// queue index.
struct Trees {
    messages: Tree,
    /// Read only: payloads of stores written before the value log.
    payloads: Tree,
    payload_refs: Tree,
    outputs: Tree,
    audit: Tree,
    audit_seq: Tree,
    counts: Tree,
    queue: Tree,
    idempotency: Tree,
    by_tenant: Tree,
    by_state: Tree,
    config: Tree,
    /// Adapter state spaces (`state.rs`), written in their own
    /// transaction of each batch.
    state: Tree,
    /// Expiry index and blob reference counts (see the module docs).
    retention: Tree,
    vlog: ValueLog,
    index: Mutex<QueueIndex>,
}

/// The transactional view of the trees written in transactions.
struct Tx<'a> {
    messages: &'a TransactionalTree,
    payloads: &'a TransactionalTree,
    payload_refs: &'a TransactionalTree,
    outputs: &'a TransactionalTree,
    audit: &'a TransactionalTree,
    audit_seq: &'a TransactionalTree,
    counts: &'a TransactionalTree,
    queue: &'a TransactionalTree,
    idempotency: &'a TransactionalTree,
    by_tenant: &'a TransactionalTree,
    by_state: &'a TransactionalTree,
    config: &'a TransactionalTree,
    retention: &'a TransactionalTree,
    /// The queue index as of the transaction's start.
    index: &'a QueueIndex,
    /// The last queue change of this transaction per job key, applied to
    /// the index after the commit (only the last one counts: each change
    /// replaces the job's entry).
    changes: RefCell<HashMap<Vec<u8>, QueueChange>>,
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
    fn lock_index(&self) -> MutexGuard<'_, QueueIndex> {
        lock(&self.index)
    }

    /// Run `f` as one transaction over all written trees, holding the
    /// queue index's lock, and apply its queue changes to the index once
    /// it has committed.
    fn transact<A>(&self, f: impl Fn(&Tx<'_>) -> TxResult<A>) -> Result<A> {
        let all: [&Tree; 13] = [
            &self.messages,
            &self.payloads,
            &self.payload_refs,
            &self.outputs,
            &self.audit,
            &self.audit_seq,
            &self.counts,
            &self.queue,
            &self.idempotency,
            &self.by_tenant,
            &self.by_state,
            &self.config,
            &self.retention,
        ];
        let mut index = self.lock_index();
        let (a, changes) = <[&Tree] as Transactional<StoreError>>::transaction(&all[..], |v| {
            let [messages, payloads, payload_refs, outputs, audit, audit_seq, counts, queue, idempotency, by_tenant, by_state, config, retention] =
                v.as_slice()
            else {
                return abort(StoreError::Backend("transaction over wrong trees".into()));
            };
            let tx = Tx {
                messages,
                payloads,
                payload_refs,
                outputs,
                audit,
                audit_seq,
                counts,
                queue,
                idempotency,
                by_tenant,
                by_state,
                config,
                retention,
                index: &index,
                changes: RefCell::new(HashMap::new()),
            };
            let a = f(&tx)?;
            Ok((a, tx.changes.into_inner()))
        })
        .map_err(tx_error)?;
        index.apply(changes);
        Ok(a)
    }

    /// Where the payload is: in the value log, or inline in a store
    /// written before it.
    fn payload_doc(&self, id: MessageId) -> Result<Option<Doc>> {
        if let Some(p) = self.payload_refs.get(id.as_bytes()).map_err(backend)? {
            if p.as_ref() == PAYLOAD_PURGED {
                return Ok(Some(Doc::Purged));
            }
            return Ok(Some(Doc::Log(Pointer::decode(&p, "payload_refs")?)));
        }
        Ok(self
            .payloads
            .get(id.as_bytes())
            .map_err(backend)?
            .map(|v| Doc::Bytes(v.to_vec())))
    }

    fn get_record(&self, id: MessageId) -> Result<Option<MessageRecord>> {
        Ok(self.get_record_raw(id)?.map(|(_, rec)| rec))
    }

    /// The record and the bytes it was decoded from.
    fn get_record_raw(&self, id: MessageId) -> Result<Option<(sled::IVec, MessageRecord)>> {
        match self.messages.get(id.as_bytes()).map_err(backend)? {
            Some(v) => {
                let rec = decode("messages", id.as_bytes(), &v)?;
                Ok(Some((v, rec)))
            }
            None => Ok(None),
        }
    }
}

impl Tx<'_> {
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

    /// One more stored message references the blob.
    fn blob_ref(&self, sha256: &str) -> TxResult<()> {
        blob_ref_change(self.retention, sha256, 1).map(|_| ())
    }

    /// One stored message less references the blob; `true` when that was
    /// the last (the blob becomes a collection candidate).
    fn blob_unref(&self, sha256: &str) -> TxResult<bool> {
        blob_ref_change(self.retention, sha256, -1)
    }

    /// Remove a message's expiry entry, if it has one.
    fn clear_expiry(&self, id: MessageId) -> TxResult<()> {
        if let Some(old) = self.retention.remove(owner_key(id))? {
            self.retention.remove(old)?;
        }
        Ok(())
    }

    /// Give a message the expiry entry `key` (replacing any other).
    fn set_expiry(&self, id: MessageId, key: &[u8]) -> TxResult<()> {
        self.clear_expiry(id)?;
        self.retention.insert(key, &[])?;
        self.retention.insert(owner_key(id), key)?;
        Ok(())
    }

    /// Append one encoded audit event to the message's trail.
    fn append_audit(&self, id: MessageId, event: &[u8]) -> TxResult<()> {
        let seq = match self.audit_seq.get(id.as_bytes())? {
            Some(v) => lift(be_u64(&v, "audit_seq"))?,
            None => 0,
        };
        self.audit.insert(audit_key(id, seq), event)?;
        self.audit_seq
            .insert(id.as_bytes(), &seq.saturating_add(1).to_be_bytes())?;
        Ok(())
    }

    /// Due time of a job as this transaction sees it: its own changes
    /// first, then the index.
    fn due_of(&self, jk: &[u8]) -> Option<u64> {
        match self.changes.borrow().get(jk) {
            Some(QueueChange::Schedule { due_ms, .. }) => Some(*due_ms),
            Some(QueueChange::Complete) => None,
            None => self.index.due_of.get(jk).copied(),
        }
    }

    fn complete(&self, job: &Job) -> TxResult<()> {
        let jk = job_key(job);
        if let Some(due_ms) = self.due_of(&jk) {
            self.queue.remove(queue_key(due_ms, &jk))?;
        }
        self.changes.borrow_mut().insert(jk, QueueChange::Complete);
        Ok(())
    }

    fn schedule(&self, job: &Job, due: DateTime<Utc>) -> TxResult<()> {
        let jk = job_key(job);
        if let Some(old) = self.due_of(&jk) {
            self.queue.remove(queue_key(old, &jk))?;
        }
        let due_ms = millis(due);
        self.queue
            .insert(queue_key(due_ms, &jk), lift(encode(job))?)?;
        self.changes
            .borrow_mut()
            .insert(jk, QueueChange::Schedule { job: *job, due_ms });
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
        self.recover_if_due().await;
        let generation = self.generation()?;
        // Before the transaction; a duplicate leaves these bytes
        // unreferenced (see `vlog.rs`).
        let appended = if payload.len() as u64 <= INLINE_IO_BYTES {
            generation.trees.vlog.append(&payload)
        } else {
            self.blocking(move |t| t.vlog.append(&payload)).await
        };
        // The pin keeps the segment from the collector until the writer
        // applied the op (see `vlog.rs`); it travels with the op, so a
        // caller that stops waiting does not release it early.
        let (pointer, pin) = self.noted(appended)?;
        let id = record.id();
        let op = AcceptOp {
            id,
            _pin: pin,
            blobs: blob_refs_of(record),
            keys: IndexKeys::of(record),
            record_bytes: encode(record)?,
            payload_ref: pointer.encode().to_vec(),
            audit: encode(&audit)?,
            idempotency: idempotency.map(|k| {
                (
                    idempotency_key(&k.channel, &k.sender, &k.key),
                    IdempotencyEntry {
                        id,
                        sha256: k.payload_sha256,
                    },
                )
            }),
            route_due: Utc::now(),
        };
        // The writer answers duplicates only once the first message is on
        // disk too: it may have been in flight.
        match self.noted(generation.writer.submit(Op::Accept(Box::new(op))).await)? {
            Outcome::Accepted(outcome) => Ok(outcome),
            other => Err(StoreError::Backend(format!(
                "store writer answered an accept with {other:?}"
            ))),
        }
    }

    async fn get(&self, id: MessageId) -> Result<Option<MessageRecord>> {
        self.quick(|t| t.get_record(id))
    }

    async fn payload(&self, id: MessageId) -> Result<Option<Bytes>> {
        self.read_moving(id, |t| t.payload_doc(id)).await
    }

    async fn output(&self, id: MessageId, index: u32) -> Result<Option<Bytes>> {
        self.read_moving(id, |t| {
            let Some(v) = t.outputs.get(output_key(id, index)).map_err(backend)? else {
                // Retention deletes outputs with the payload.
                return Ok(match t.payload_doc(id)? {
                    Some(Doc::Purged) => Some(Doc::Purged),
                    _ => None,
                });
            };
            match v.first() {
                Some(&OUTPUT_IN_LOG) => Ok(Some(Doc::Log(Pointer::decode(&v[1..], "outputs")?))),
                Some(&OUTPUT_INLINE) => Ok(Some(Doc::Bytes(v[1..].to_vec()))),
                Some(&OUTPUT_IS_PAYLOAD) => t.payload_doc(id)?.map(Some).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "output {index} of {id} refers to the payload, which is missing"
                    ))
                }),
                _ => Err(StoreError::Corrupt(format!(
                    "output {index} of {id}: unknown encoding"
                ))),
            }
        })
        .await
    }

    async fn update(&self, id: MessageId, f: &mut UpdateFn<'_>) -> Result<MessageRecord> {
        self.recover_if_due().await;
        let generation = self.generation()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Read the committed record and run the closure here, on the
            // caller's thread; the writer applies the result only if the
            // stored bytes are still the ones read here (see `writer.rs`).
            let Some((base, old)) = generation.trees.get_record_raw(id)? else {
                return Err(StoreError::NotFound(id));
            };
            let mut rec = old.clone();
            let effects = f(&mut rec)?;
            if rec.id() != id {
                return Err(StoreError::Aborted(format!(
                    "update of message {id} may not change its id"
                )));
            }
            if effects.is_empty() && rec == old {
                // Nothing to write (e.g. a second delivery of a message
                // another worker already marked `delivering`).
                return Ok(rec);
            }
            rec.revision = old.revision.saturating_add(1);
            rec.updated_at = Utc::now();
            let mut pins = Vec::new();
            let outputs = effects
                .outputs
                .iter()
                .map(|(index, doc)| {
                    let (value, pin) = encode_output(&rec, doc, &generation.trees.vlog)?;
                    pins.extend(pin);
                    Ok((*index, value))
                })
                .collect::<Result<Vec<_>>>();
            let outputs = self.noted(outputs)?;
            let finish = if rec.state != old.state {
                expiry_key_of(&rec)
            } else {
                None
            };
            let audit = effects
                .audit
                .iter()
                .map(encode)
                .collect::<Result<Vec<_>>>()?;
            let op = UpdateOp {
                id,
                base,
                base_keys: IndexKeys::of(&old),
                keys: IndexKeys::of(&rec),
                record_bytes: encode(&rec)?,
                audit,
                outputs,
                complete: effects.complete,
                schedule: effects.schedule,
                finish,
                _pins: pins,
            };
            match self.noted(generation.writer.submit(Op::Update(Box::new(op))).await)? {
                Outcome::Updated => return Ok(rec),
                Outcome::Conflict if attempt < MAX_UPDATE_ATTEMPTS => continue,
                Outcome::Conflict => {
                    return Err(StoreError::Backend(format!(
                    "message {id} changed under {MAX_UPDATE_ATTEMPTS} updates in a row; giving up"
                )))
                }
                other => {
                    return Err(StoreError::Backend(format!(
                        "store writer answered an update with {other:?}"
                    )))
                }
            }
        }
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
        // In memory (see the module docs): no sled work, no flush — a
        // lease only matters while this process runs (a single process
        // owns the sled database, and `release_leases` drops every lease
        // at the next start).
        let generation = self.generation()?;
        let claimed = generation
            .trees
            .lock_index()
            .claim(millis(now), limit, millis(lease_until));
        claimed
            .into_iter()
            .map(|(job, due_ms)| {
                Ok(ClaimedJob {
                    job,
                    due: from_millis(due_ms, "queue")?,
                })
            })
            .collect()
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>> {
        let generation = self.generation()?;
        let next = generation.trees.lock_index().next_due(millis(Utc::now()));
        next.map(|ms| from_millis(ms, "queue")).transpose()
    }

    async fn renew_lease(&self, job: Job, lease_until: DateTime<Utc>) -> Result<bool> {
        let generation = self.generation()?;
        let renewed = generation
            .trees
            .lock_index()
            .renew(&job_key(&job), millis(lease_until));
        Ok(renewed)
    }

    async fn release_leases(&self) -> Result<u64> {
        let generation = self.generation()?;
        let released = generation.trees.lock_index().release();
        Ok(released)
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats> {
        let generation = self.generation()?;
        let stats = generation.trees.lock_index().stats(millis(now));
        Ok(stats)
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
        // The reference counts (messages and state records holding a
        // blob), kept in step with every accept, purge and state commit.
        self.blocking(move |t| {
            let mut found = std::collections::HashSet::new();
            for sha in candidates {
                if t.retention
                    .contains_key(blob_count_key(&sha))
                    .map_err(backend)?
                {
                    found.insert(sha);
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

    async fn state_get(&self, space: &str, key: &[u8]) -> Result<Option<Bytes>> {
        crate::state::check_space(space)?;
        let k = state_key(space, key);
        self.quick(|t| {
            Ok(t.state
                .get(k)
                .map_err(backend)?
                .map(|v| Bytes::copy_from_slice(&v)))
        })
    }

    async fn state_scan(
        &self,
        space: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Bytes)>> {
        crate::state::check_space(space)?;
        let limit = limit.min(crate::state::MAX_STATE_PAGE);
        let head = len_prefixed(space).len();
        let start = state_key(space, prefix);
        let from = match after {
            Some(a) if a > prefix => Bound::Excluded(state_key(space, a)),
            _ => Bound::Included(start.clone()),
        };
        self.blocking(move |t| {
            let mut out = Vec::new();
            for kv in t.state.range((from, Bound::Unbounded)) {
                if out.len() >= limit {
                    break;
                }
                let (k, v) = kv.map_err(backend)?;
                if !k.starts_with(&start) {
                    break;
                }
                out.push((k[head..].to_vec(), Bytes::copy_from_slice(&v)));
            }
            Ok(out)
        })
        .await
    }

    async fn state_commit(&self, space: &str, commit: StateCommit) -> Result<bool> {
        crate::state::check_space(space)?;
        self.recover_if_due().await;
        let generation = self.generation()?;
        let op = StateOp {
            expect: commit
                .expect
                .into_iter()
                .map(|(k, v)| (state_key(space, &k), v))
                .collect(),
            writes: commit
                .writes
                .into_iter()
                .map(|(k, v)| (state_key(space, &k), v))
                .collect(),
            blob_refs: commit.blob_refs,
        };
        match self.noted(generation.writer.submit(Op::State(Box::new(op))).await)? {
            Outcome::StateCommitted => Ok(true),
            Outcome::Conflict => Ok(false),
            other => Err(StoreError::Backend(format!(
                "store writer answered a state commit with {other:?}"
            ))),
        }
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
        self.recover_if_due().await;
        let generation = self.generation()?;
        let items = {
            let policy = policy.clone();
            self.blocking(move |t| due_items(t, &policy, now, limit))
                .await?
        };
        if items.is_empty() {
            return Ok(PurgeReport::default());
        }
        let n = items.len();
        match self.noted(generation.writer.submit(Op::Purge(items)).await)? {
            Outcome::Purged(tally) => Ok(PurgeReport {
                payloads: tally.payloads,
                records: tally.records,
                bytes: tally.bytes,
                skipped: tally.skipped,
                blobs_unreferenced: tally.blobs_unreferenced,
                // A full batch, or payloads purged whose record stage
                // may be due at once.
                more: n >= limit || tally.payloads > 0,
            }),
            other => Err(StoreError::Backend(format!(
                "store writer answered a purge with {other:?}"
            ))),
        }
    }

    async fn unreferenced_blobs(&self, limit: usize) -> Result<Vec<String>> {
        self.blocking(move |t| {
            let mut out = Vec::new();
            for kv in t.retention.scan_prefix(b"g").take(limit) {
                let (k, _) = kv.map_err(backend)?;
                let sha = String::from_utf8(k.get(1..).unwrap_or_default().to_vec())
                    .map_err(|_| StoreError::Corrupt("retention: bad blob key".into()))?;
                out.push(sha);
            }
            Ok(out)
        })
        .await
    }

    async fn blob_references(&self, sha256: &str) -> Result<u64> {
        let key = blob_count_key(sha256);
        self.quick(|t| match t.retention.get(key).map_err(backend)? {
            Some(v) => be_u64(&v, "retention"),
            None => Ok(0),
        })
    }

    async fn forget_unreferenced_blob(&self, sha256: &str) -> Result<()> {
        self.recover_if_due().await;
        let generation = self.generation()?;
        self.noted(
            generation
                .writer
                .submit(Op::ForgetBlob(sha256.to_owned()))
                .await,
        )
        .map(|_| ())
    }

    async fn collect_value_log(
        &self,
        compact_below: f64,
        max_move_bytes: u64,
    ) -> Result<CollectReport> {
        self.collect(compact_below, max_move_bytes).await
    }

    async fn flush(&self) -> Result<()> {
        let flushed = match self.generation() {
            Ok(generation) => generation.writer.submit(Op::Flush).await.map(|_| ()),
            Err(e) => Err(e),
        };
        self.noted(flushed)
    }

    async fn ready(&self) -> Result<()> {
        SledStore::ready(self).await
    }
}

/// Messages due for retention at `now` (at most `limit`), prepared for
/// the writer (see the module docs, "Retention").
fn due_items(
    t: &Trees,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<PurgeItem>> {
    let now_ms = millis(now);
    let mut due: Vec<(Vec<u8>, ExpiryEntry, std::time::Duration)> = Vec::new();
    'stages: for stage in [STAGE_DELIVERED, STAGE_FAILED, STAGE_RECORD] {
        let stage_prefix = [b'e', stage];
        let mut from = stage_prefix.to_vec();
        loop {
            // One seek per tenant: its first entry.
            let Some(first) = t.retention.range(from.as_slice()..).next() else {
                break;
            };
            let (first, _) = first.map_err(backend)?;
            if !first.starts_with(&stage_prefix) {
                break;
            }
            let entry = parse_expiry_key(&first)?;
            let tenant = (!entry.tenant.is_empty()).then_some(entry.tenant.as_str());
            let prefix = expiry_prefix(stage, tenant);
            let r = policy.for_tenant(tenant);
            let keep = match stage {
                STAGE_DELIVERED => r.payloads,
                STAGE_FAILED => r.failed,
                _ => r.records,
            };
            if let Some(keep) = keep {
                let keep_ms = u64::try_from(keep.as_millis()).unwrap_or(u64::MAX);
                if let Some(cutoff) = now_ms.checked_sub(keep_ms) {
                    for kv in t.retention.range(first.as_ref()..) {
                        let (k, _) = kv.map_err(backend)?;
                        if !k.starts_with(&prefix) {
                            break;
                        }
                        let e = parse_expiry_key(&k)?;
                        if e.finished_ms > cutoff {
                            break;
                        }
                        due.push((k.to_vec(), e, keep));
                        if due.len() >= limit {
                            break 'stages;
                        }
                    }
                }
            }
            match prefix_end(&prefix) {
                Some(end) => from = end,
                None => break,
            }
        }
    }
    let mut items = Vec::with_capacity(due.len());
    for (key, entry, keep) in due {
        let id = entry.id;
        let Some((base, rec)) = t.get_record_raw(id)? else {
            // A stale entry: the writer drops it.
            items.push(PurgeItem {
                id,
                base: sled::IVec::default(),
                due: key,
                outputs: 0,
                blobs: Vec::new(),
                stage: PurgeStage::Record {
                    keys: IndexKeys {
                        state: MessageState::Delivered,
                        tenant: None,
                    },
                    idempotency: None,
                },
            });
            continue;
        };
        let outputs = u32::try_from(rec.deliveries.len()).unwrap_or(u32::MAX);
        let blobs = blob_refs_of(&rec);
        let stage = if entry.stage == STAGE_RECORD {
            PurgeStage::Record {
                keys: IndexKeys::of(&rec),
                idempotency: rec.envelope.idempotency_key.as_ref().map(|k| {
                    idempotency_key(
                        &rec.envelope.channel,
                        &IdempotencyKey::sender_of(&rec.envelope.sender),
                        k,
                    )
                }),
            }
        } else {
            let mut purged = rec.clone();
            purged.payload_purged_at = Some(now);
            purged.revision = rec.revision.saturating_add(1);
            purged.updated_at = Utc::now();
            let event = AuditEvent::new(id, "retention", "payload_purged", Some(rec.state), rec.state)
                .with_detail(format!(
                    "payload, {} output document(s) and {} attachment reference(s) deleted {} after the message became {}",
                    rec.deliveries.len(),
                    blobs.len(),
                    format_keep(keep),
                    rec.state
                ));
            PurgeStage::Payload {
                record_bytes: encode(&purged)?,
                audit: encode(&event)?,
                next: expiry_key(
                    STAGE_RECORD,
                    rec.envelope.tenant.as_deref(),
                    entry.finished_ms,
                    id,
                ),
            }
        };
        items.push(PurgeItem {
            id,
            base,
            due: key,
            outputs,
            blobs,
            stage,
        });
    }
    Ok(items)
}

/// `30d`, `36h`, `90s`: a retention duration for the audit trail.
fn format_keep(keep: std::time::Duration) -> String {
    let secs = keep.as_secs();
    match secs {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s > 0 => format!("{s}s"),
        _ => format!("{}ms", keep.as_millis()),
    }
}

/// Bytes still pointed at, per value-log segment (see `vlog.rs`, "Space").
fn live_bytes(t: &Trees) -> Result<HashMap<u32, u64>> {
    let mut live: HashMap<u32, u64> = HashMap::new();
    for kv in t.payload_refs.iter() {
        let (_, v) = kv.map_err(backend)?;
        if v.len() == POINTER_BYTES {
            let p = Pointer::decode(&v, "payload_refs")?;
            *live.entry(p.segment).or_insert(0) += p.len;
        }
    }
    for kv in t.outputs.iter() {
        let (_, v) = kv.map_err(backend)?;
        if let Some((&OUTPUT_IN_LOG, rest)) = v.split_first() {
            let p = Pointer::decode(rest, "outputs")?;
            *live.entry(p.segment).or_insert(0) += p.len;
        }
    }
    Ok(live)
}

/// Copy every live value of `segments` to the active segment: the pointer
/// moves for the writer (each with the pin of its copy) and the bytes
/// copied.
fn copy_forward(
    t: &Trees,
    segments: &std::collections::HashSet<u32>,
) -> Result<(Vec<RepointItem>, u64)> {
    let mut items = Vec::new();
    let mut bytes = 0;
    for kv in t.payload_refs.iter() {
        let (k, v) = kv.map_err(backend)?;
        if v.len() != POINTER_BYTES {
            continue;
        }
        let p = Pointer::decode(&v, "payload_refs")?;
        if segments.contains(&p.segment) {
            let (moved, pin) = t.vlog.append(&t.vlog.read(&p)?)?;
            bytes += p.len;
            items.push(RepointItem {
                _pin: pin,
                tree: PointerTree::PayloadRefs,
                key: k.to_vec(),
                old: v.to_vec(),
                new: moved.encode().to_vec(),
            });
        }
    }
    for kv in t.outputs.iter() {
        let (k, v) = kv.map_err(backend)?;
        let Some((&OUTPUT_IN_LOG, rest)) = v.split_first() else {
            continue;
        };
        let p = Pointer::decode(rest, "outputs")?;
        if segments.contains(&p.segment) {
            let (moved, pin) = t.vlog.append(&t.vlog.read(&p)?)?;
            bytes += p.len;
            items.push(RepointItem {
                _pin: pin,
                tree: PointerTree::Outputs,
                key: k.to_vec(),
                old: v.to_vec(),
                new: encode_log_output(&moved),
            });
        }
    }
    Ok((items, bytes))
}

/// Pointer moves per writer operation during compaction.
const REPOINT_BATCH: usize = 512;

impl SledStore {
    /// Delete value-log segments nothing points into and compact those
    /// whose live share fell below `compact_below` (see `vlog.rs`,
    /// "Space"); the body of [`Store::collect_value_log`].
    async fn collect(&self, compact_below: f64, max_move_bytes: u64) -> Result<CollectReport> {
        self.recover_if_due().await;
        let generation = self.generation()?;
        let mut report = CollectReport::default();
        // Quiet before the scan: from now on their pointers only go away.
        let quiet = generation.trees.vlog.quiet_segments();
        if !quiet.is_empty() {
            let live = self.blocking(live_bytes).await?;
            let mut budget = max_move_bytes;
            let mut candidates = Vec::new();
            for q in &quiet {
                let l = live.get(&q.segment).copied().unwrap_or(0);
                if l == 0 {
                    let segment = q.segment;
                    self.blocking(move |t| t.vlog.delete_segment(segment))
                        .await?;
                    report.segments_deleted += 1;
                    report.bytes_freed += q.bytes;
                } else if (l as f64) < compact_below * q.bytes as f64 && l <= budget {
                    budget -= l;
                    candidates.push(*q);
                }
            }
            if !candidates.is_empty() {
                let set: std::collections::HashSet<u32> =
                    candidates.iter().map(|q| q.segment).collect();
                let (items, bytes) = {
                    let set = set.clone();
                    self.noted(self.blocking(move |t| copy_forward(t, &set)).await)?
                };
                report.bytes_moved = bytes;
                let mut items = items.into_iter().peekable();
                while items.peek().is_some() {
                    let chunk: Vec<RepointItem> = items.by_ref().take(REPOINT_BATCH).collect();
                    match self.noted(generation.writer.submit(Op::Repoint(chunk)).await)? {
                        Outcome::Repointed => {}
                        other => {
                            return Err(StoreError::Backend(format!(
                                "store writer answered a repoint with {other:?}"
                            )))
                        }
                    }
                }
                // Every move is durable now (value log synced before sled).
                let live = self.blocking(live_bytes).await?;
                for q in candidates {
                    if live.get(&q.segment).copied().unwrap_or(0) == 0 {
                        let segment = q.segment;
                        self.blocking(move |t| t.vlog.delete_segment(segment))
                            .await?;
                        report.segments_compacted += 1;
                        report.segments_deleted += 1;
                        report.bytes_freed += q.bytes;
                    }
                }
            }
        }
        report.segments = generation.trees.vlog.segment_count() as u64;
        report.disk_bytes = generation.trees.vlog.disk_bytes();
        if report.segments_deleted > 0 {
            tracing::info!(
                deleted = report.segments_deleted,
                compacted = report.segments_compacted,
                moved_bytes = report.bytes_moved,
                freed_bytes = report.bytes_freed,
                "value log collected"
            );
        }
        Ok(report)
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
    // Ids are time-ordered: past `until` (with the same slack as
    // `since`) nothing can match any more.
    let stop = filter
        .until
        .map(|u| with_id(prefix.clone(), min_id_at(u + SINCE_SLACK)));
    let mut last_examined = None;
    for (examined, kv) in tree
        .range::<Vec<u8>, _>((start, Bound::Unbounded))
        .enumerate()
    {
        let (k, v) = kv.map_err(backend)?;
        if !k.starts_with(&prefix) || stop.as_deref().is_some_and(|st| k.as_ref() >= st) {
            break;
        }
        if examined == crate::MAX_LIST_SCAN {
            // Bounded work per call: the caller goes on from here.
            return Ok(Page {
                items,
                next: last_examined,
            });
        }
        let rec: MessageRecord = if name == "messages" {
            decode("messages", &k, &v)?
        } else {
            let id = id_suffix(&k, name)?;
            t.get_record(id)?.ok_or_else(|| {
                StoreError::Corrupt(format!("{name} key {}: message missing", hex::encode(&k)))
            })?
        };
        last_examined = Some(rec.id());
        if !filter.matches(&rec) {
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
    use crate::Effects;
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

    /// With the writer held back, N concurrent accepts queue up; released,
    /// the writer applies them in one transaction and one flush.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_batch_and_one_flush_serve_all_waiting_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let before = store.flush_count();
        store.generation().unwrap().writer.set_paused(true);
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
        // Wait until every accept has queued its operation.
        while store.flush_requests() < N {
            tokio::task::yield_now().await;
        }
        let counts = store.count_by_state().await.unwrap();
        assert!(
            !counts.contains(&(MessageState::Received, N)),
            "nothing is written while the writer is held back"
        );
        assert!(tasks.iter().all(|t| !t.is_finished()), "nobody is answered");
        store.generation().unwrap().writer.set_paused(false);
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), AcceptOutcome::Created);
        }
        assert_eq!(store.flush_count(), before + 1);
        let counts = store.count_by_state().await.unwrap();
        assert!(counts.contains(&(MessageState::Received, N)));
    }

    /// Two updates of one record prepared from the same revision: the
    /// second is a conflict, reruns its closure on the new record, and
    /// both changes land.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_updates_of_one_record_both_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let rec = record();
        let id = rec.id();
        let ev = AuditEvent::new(id, "test", "received", None, rec.state);
        store
            .accept(&rec, Bytes::from_static(b"<a/>"), ev, None)
            .await
            .unwrap();
        // Both read revision r while the writer is held back.
        store.generation().unwrap().writer.set_paused(true);
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let mut tasks = Vec::new();
        for label in ["first", "second"] {
            let (store, runs) = (store.clone(), Arc::clone(&runs));
            tasks.push(tokio::spawn(async move {
                store
                    .update(id, &mut |r: &mut MessageRecord| {
                        runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        r.envelope
                            .correlation_ids
                            .insert(label.to_owned(), "x".to_owned());
                        Ok(Effects::default())
                    })
                    .await
            }));
        }
        while store.flush_requests() < 3 {
            tokio::task::yield_now().await;
        }
        store.generation().unwrap().writer.set_paused(false);
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let stored = store.get(id).await.unwrap().unwrap();
        assert!(stored.envelope.correlation_ids.contains_key("first"));
        assert!(stored.envelope.correlation_ids.contains_key("second"));
        assert_eq!(stored.revision, rec.revision + 2);
        assert_eq!(
            runs.load(std::sync::atomic::Ordering::SeqCst),
            3,
            "the losing closure ran once more"
        );
    }

    /// A store written before retention (no `retention` tree content)
    /// gets its expiry index and blob counts built at open.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_written_before_retention_gets_its_index_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let sha = "ab".repeat(32);
        let mut rec = record();
        rec.envelope.attachments = vec![drehscheibe_model::AttachmentRef {
            name: "a".into(),
            filename: None,
            content_type: "application/pdf".into(),
            blob: drehscheibe_model::BlobRef {
                sha256: sha.clone(),
                size: 1,
            },
        }];
        let id = rec.id();
        let ev = AuditEvent::new(id, "test", "received", None, rec.state);
        store
            .accept(&rec, Bytes::from_static(b"<a/>"), ev, None)
            .await
            .unwrap();
        let open = record();
        let ev = AuditEvent::new(open.id(), "test", "received", None, open.state);
        store
            .accept(&open, Bytes::from_static(b"<a/>"), ev, None)
            .await
            .unwrap();
        store
            .update(id, &mut |r: &mut MessageRecord| {
                r.state = MessageState::Delivered;
                Ok(Effects::default())
            })
            .await
            .unwrap();
        // Make it look old: no retention tree content at all.
        let trees = Arc::clone(&store.generation().unwrap().trees);
        trees.retention.clear().unwrap();
        trees.retention.flush().unwrap();
        drop(trees);
        drop(store);

        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.blob_references(&sha).await.unwrap(), 1);
        let policy = crate::RetentionPolicy::default();
        let later = Utc::now() + TimeDelta::days(31);
        let r = store.purge_expired(&policy, later, 10).await.unwrap();
        assert_eq!((r.payloads, r.blobs_unreferenced), (1, 1));
        assert!(matches!(
            store.payload(id).await,
            Err(StoreError::Purged(_))
        ));
        assert!(store.payload(open.id()).await.unwrap().is_some());
        assert_eq!(store.unreferenced_blobs(10).await.unwrap(), [sha]);
    }

    #[test]
    fn expiry_keys_order_by_stage_tenant_and_finish_and_parse_back() {
        let id = MessageId::new();
        let k = expiry_key(STAGE_DELIVERED, Some("kommune-a"), 42, id);
        let e = parse_expiry_key(&k).unwrap();
        assert_eq!(
            (e.stage, e.tenant.as_str(), e.finished_ms, e.id),
            (STAGE_DELIVERED, "kommune-a", 42, id)
        );
        let none = parse_expiry_key(&expiry_key(STAGE_RECORD, None, 7, id)).unwrap();
        assert_eq!(none.tenant, "");
        // Within one (stage, tenant) prefix: finish order.
        assert!(k < expiry_key(STAGE_DELIVERED, Some("kommune-a"), 43, id));
        // A tenant's prefix never reaches into another's ("a" vs "ab").
        let a = expiry_prefix(STAGE_DELIVERED, Some("a"));
        let ab = expiry_key(STAGE_DELIVERED, Some("ab"), 0, id);
        assert!(!ab.starts_with(&a));
        let end = prefix_end(&a).unwrap();
        assert!(expiry_key(STAGE_DELIVERED, Some("a"), u64::MAX, id) < end);
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert!(parse_expiry_key(b"e").is_err());
        assert!(parse_expiry_key(&k[..k.len() - 1]).is_err());
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
