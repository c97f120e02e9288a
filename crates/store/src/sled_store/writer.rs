//! The store's single writer: whatever callers queued up meanwhile, in one
//! sled transaction and one flush.
//!
//! # Why one writer
//!
//! sled 0.34 makes every atomic multi-key write expensive regardless of its
//! size: a transaction (and a batch) first seals and writes the current I/O
//! buffer, then reserves and writes a batch manifest — two buffer writes,
//! each a `pwrite` plus `sync_file_range` handed to sled's I/O thread pool
//! (`PageCache::pin_log`). With one transaction per `update`, the
//! Gewerbeanmeldung pipeline ran ~1,300 transactions/s and ~3,200 buffer
//! writes/s, 55,000 context switches/s, and the flushes waited behind them
//! (docs/benchmarks.md, session 8). sled also serialises transactions with
//! a process-wide lock, so running them on many threads bought nothing.
//!
//! So callers do not run transactions. They prepare an [`Op`] — an update
//! computes its new record from the committed one on the caller's thread —
//! and queue it here. The writer thread takes everything queued, applies
//! it in **one** transaction, makes it durable with **one** flush (value
//! log first, then sled; see `vlog.rs`), and answers each caller. The
//! transaction and the flush are the group commit: under load one batch
//! carries dozens of operations; alone, an operation waits for nothing but
//! its own flush.
//!
//! An update whose record changed after the caller read it (the stored
//! bytes differ from those it read: two deliveries of one message
//! finishing together)
//! is answered [`Outcome::Conflict`] and writes nothing; the caller reads
//! the record again and reruns its closure — the optimistic retry that
//! [`UpdateFn`](crate::UpdateFn) allows.
//!
//! Retention's deletions take the same road: a purge ([`Op::Purge`], at
//! most one sweep batch of messages) and the value-log collector's
//! pointer moves ([`Op::Repoint`]) are prepared by the caller and applied
//! here in the batch's transaction, each item only while what it read is
//! still stored — so a purge can never interleave with an update of the
//! same record, and its effects on counters, indexes and the queue are
//! as atomic and durable as an update's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use drehscheibe_model::{MessageId, MessageRecord, MessageState};
use sled::Transactional;
use tokio::sync::oneshot;

use super::{
    audit_key, be_u64, blob_garbage_key, decode, encode, lift, output_key, owner_key,
    IdempotencyEntry, Pointer, Trees, Tx, TxResult, OUTPUT_INLINE, OUTPUT_IN_LOG, PAYLOAD_PURGED,
    POINTER_BYTES,
};
use crate::vlog::AppendPin;
use crate::{AcceptOutcome, Job, Result, StoreError};

/// Most operations in one transaction.
const MAX_BATCH: usize = 1024;

/// A write prepared by a caller.
pub(super) enum Op {
    /// Store a new message (see [`Store::accept`](crate::Store::accept)).
    Accept(Box<AcceptOp>),
    /// Replace a record, if it is still the one the caller read.
    Update(Box<UpdateOp>),
    /// Change adapter state, if the keys read still hold what was read.
    State(Box<StateOp>),
    /// Retention: delete what is due of each message (see `mod.rs`).
    Purge(Vec<PurgeItem>),
    /// Value-log compaction: move pointers, each if still the old one.
    Repoint(Vec<RepointItem>),
    /// Drop a blob collection candidate unless it is referenced.
    ForgetBlob(String),
    /// Write nothing; answer once everything queued before is durable.
    Flush,
}

/// A state commit with its keys already in the `state` tree's layout.
pub(super) struct StateOp {
    pub expect: Vec<(Vec<u8>, Option<bytes::Bytes>)>,
    pub writes: Vec<(Vec<u8>, Option<bytes::Bytes>)>,
    /// Blob reference changes (sha256, delta) in the `retention` tree.
    pub blob_refs: Vec<(String, i64)>,
}

/// What the `states` and `tenants` indexes need of a record.
#[derive(Debug, PartialEq)]
pub(super) struct IndexKeys {
    pub state: MessageState,
    pub tenant: Option<String>,
}

impl IndexKeys {
    pub fn of(record: &MessageRecord) -> Self {
        IndexKeys {
            state: record.state,
            tenant: record.envelope.tenant.clone(),
        }
    }
}

pub(super) struct AcceptOp {
    pub id: MessageId,
    /// Keeps the payload's value-log segment from the collector until
    /// this operation is applied and flushed (dropped with the op, even
    /// if the caller stopped waiting).
    pub _pin: AppendPin,
    /// Content hashes of the attachments (their reference counts go up).
    pub blobs: Vec<String>,
    pub keys: IndexKeys,
    /// The record, encoded on the caller's thread (not the writer's).
    pub record_bytes: Vec<u8>,
    /// Encoded value-log pointer of the payload.
    pub payload_ref: Vec<u8>,
    /// The `received` audit event, encoded.
    pub audit: Vec<u8>,
    /// Key and entry in the `idempotency` tree.
    pub idempotency: Option<(Vec<u8>, IdempotencyEntry)>,
    pub route_due: DateTime<Utc>,
}

pub(super) struct UpdateOp {
    pub id: MessageId,
    /// The stored bytes of the record the caller read; the update applies
    /// only while they are still what is stored. Comparing bytes spares
    /// the writer decoding the record again.
    pub base: sled::IVec,
    pub base_keys: IndexKeys,
    /// The new record (revision already bumped), encoded.
    pub keys: IndexKeys,
    pub record_bytes: Vec<u8>,
    /// Encoded audit events.
    pub audit: Vec<Vec<u8>>,
    /// Encoded `outputs` values by delivery index.
    pub outputs: Vec<(u32, Vec<u8>)>,
    pub complete: Vec<Job>,
    pub schedule: Vec<(Job, DateTime<Utc>)>,
    /// The expiry entry of the new record when this update finishes it
    /// (enters `delivered`, `dead` or `rejected`).
    pub finish: Option<Vec<u8>>,
    /// Pins of the outputs' value-log segments (see [`AcceptOp::_pin`]).
    pub _pins: Vec<AppendPin>,
}

/// One message of a retention batch.
pub(super) struct PurgeItem {
    pub id: MessageId,
    /// The stored bytes of the record read; the item applies only while
    /// they are still what is stored.
    pub base: sled::IVec,
    /// The expiry entry that was due; the item applies only while it is
    /// still the message's entry.
    pub due: Vec<u8>,
    /// Output slots (the record's deliveries).
    pub outputs: u32,
    /// Attachment references to drop (one per attachment entry).
    pub blobs: Vec<String>,
    pub stage: PurgeStage,
}

pub(super) enum PurgeStage {
    /// Delete payload and outputs; store the marked record.
    Payload {
        record_bytes: Vec<u8>,
        audit: Vec<u8>,
        /// The record stage's expiry entry.
        next: Vec<u8>,
    },
    /// Delete everything of the message.
    Record {
        keys: IndexKeys,
        /// Its idempotency entry, removed if it still names the message.
        idempotency: Option<Vec<u8>>,
    },
}

/// Which tree a value-log pointer lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PointerTree {
    PayloadRefs,
    Outputs,
}

/// A pointer to move: the value under `key` becomes `new` if it is still
/// `old`.
pub(super) struct RepointItem {
    /// Pin of the copy's segment (see [`AcceptOp::_pin`]).
    pub _pin: AppendPin,
    pub tree: PointerTree,
    pub key: Vec<u8>,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

/// What a purge batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct PurgeTally {
    pub payloads: u64,
    pub records: u64,
    pub bytes: u64,
    pub skipped: u64,
    pub blobs_unreferenced: u64,
}

/// The answer to one [`Op`].
#[derive(Debug)]
pub(super) enum Outcome {
    Accepted(AcceptOutcome),
    Updated,
    StateCommitted,
    Purged(PurgeTally),
    /// Pointers moved (those that had changed meanwhile were left).
    Repointed,
    /// The record (or a state key) changed since the caller read it; nothing was written.
    Conflict,
    Flushed,
}

type Reply = oneshot::Sender<Result<Outcome>>;

struct Pending {
    op: Op,
    reply: Reply,
}

#[derive(Default)]
struct State {
    queue: Vec<Pending>,
    /// Test hook: hold batches back.
    paused: bool,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Batches made durable so far.
    flushes: AtomicU64,
    /// Operations queued so far.
    requests: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Handle of the writer thread of one open database.
pub(super) struct Writer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub(super) fn start(trees: Arc<Trees>, db: sled::Db) -> Result<Writer> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            flushes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || write_loop(&worker, &trees, &db))
            .map_err(|e| StoreError::Backend(format!("start store writer thread: {e}")))?;
        Ok(Writer {
            shared,
            thread: Some(thread),
        })
    }

    /// Queue `op` and wait for its outcome (after its batch is durable).
    pub(super) async fn submit(&self, op: Op) -> Result<Outcome> {
        let (reply, answer) = oneshot::channel();
        {
            let mut st = self.shared.lock();
            if st.shutdown {
                return Err(StoreError::Backend("store is closed".into()));
            }
            st.queue.push(Pending { op, reply });
        }
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        self.shared.wake.notify_one();
        answer
            .await
            .map_err(|_| StoreError::Backend("store writer stopped".into()))?
    }

    pub(super) fn completed(&self) -> u64 {
        self.shared.flushes.load(Ordering::Relaxed)
    }

    pub(super) fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(super) fn set_paused(&self, paused: bool) {
        self.shared.lock().paused = paused;
        self.shared.wake.notify_one();
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_loop(shared: &Shared, trees: &Trees, db: &sled::Db) {
    loop {
        let batch: Vec<Pending> = {
            let mut st = shared.lock();
            loop {
                let ready = !st.queue.is_empty() && (!st.paused || st.shutdown);
                if ready {
                    let n = st.queue.len().min(MAX_BATCH);
                    break st.queue.drain(..n).collect();
                }
                if st.shutdown {
                    return;
                }
                st = shared.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        let outcomes = apply_batch(trees, &batch);
        let outcomes = outcomes.and_then(|outcomes| {
            // The value log first: a pointer on disk must never point at
            // bytes that are not (see `vlog.rs`).
            trees.vlog.sync()?;
            db.flush()
                .map_err(|e| StoreError::Backend(format!("flush to disk failed: {e}")))?;
            shared.flushes.fetch_add(1, Ordering::Relaxed);
            Ok(outcomes)
        });
        // The batch — and with it every append pin — is dropped only after
        // its answers are sent, i.e. after the flush above.
        match outcomes {
            Ok(outcomes) => {
                for (pending, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = pending.reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "store write failed");
                let msg = e.to_string();
                for pending in batch {
                    let _ = pending.reply.send(Err(match &e {
                        StoreError::Corrupt(_) => StoreError::Corrupt(msg.clone()),
                        _ => StoreError::Backend(msg.clone()),
                    }));
                }
            }
        }
    }
}

/// Apply every operation of a batch in one transaction. The outer error
/// fails the whole batch (storage); an operation's own refusal (not
/// found, conflict) is its entry in the vector and wrote nothing.
///
/// Adapter state lives in its own tree and gets its own transaction in
/// the same batch (each operation is atomic in one of the two; the flush
/// covers both), so message batches do not carry the `state` tree. State
/// commits also carry the `retention` tree for the blob references they
/// take and give back.
fn apply_batch(trees: &Trees, batch: &[Pending]) -> Result<Vec<Result<Outcome>>> {
    let mut outcomes: Vec<Result<Outcome>> = if batch.iter().any(|p| {
        matches!(
            p.op,
            Op::Accept(_) | Op::Update(_) | Op::Purge(_) | Op::Repoint(_) | Op::ForgetBlob(_)
        )
    }) {
        trees.transact(|tx| batch.iter().map(|p| apply(tx, &p.op)).collect())?
    } else {
        batch.iter().map(|_| Ok(Outcome::Flushed)).collect()
    };
    if batch.iter().any(|p| matches!(p.op, Op::State(_))) {
        let states = (&trees.state, &trees.retention)
            .transaction(|(t, r)| {
                batch
                    .iter()
                    .map(|p| match &p.op {
                        Op::State(s) => apply_state(t, r, s).map(Some),
                        _ => Ok(None),
                    })
                    .collect::<TxResult<Vec<_>>>()
            })
            .map_err(super::tx_error)?;
        for (slot, outcome) in outcomes.iter_mut().zip(states) {
            if let Some(outcome) = outcome {
                *slot = Ok(outcome);
            }
        }
    }
    Ok(outcomes)
}

fn apply(tx: &Tx<'_>, op: &Op) -> TxResult<Result<Outcome>> {
    match op {
        Op::Flush | Op::State(_) => Ok(Ok(Outcome::Flushed)),
        Op::Accept(a) => accept(tx, a),
        Op::Update(u) => update(tx, u),
        Op::Purge(items) => purge(tx, items),
        Op::Repoint(items) => repoint(tx, items),
        Op::ForgetBlob(sha) => {
            if tx.retention.get(super::blob_count_key(sha))?.is_none() {
                tx.retention.remove(blob_garbage_key(sha))?;
            }
            Ok(Ok(Outcome::Flushed))
        }
    }
}

/// Bytes a value-log or inline `outputs` value held.
fn output_bytes(v: &[u8]) -> u64 {
    match v.split_first() {
        Some((&OUTPUT_IN_LOG, rest)) => Pointer::decode(rest, "outputs").map_or(0, |p| p.len),
        Some((&OUTPUT_INLINE, rest)) => rest.len() as u64,
        _ => 0,
    }
}

fn purge(tx: &Tx<'_>, items: &[PurgeItem]) -> TxResult<Result<Outcome>> {
    let mut tally = PurgeTally::default();
    for item in items {
        let id = item.id;
        let Some(stored) = tx.messages.get(id.as_bytes())? else {
            // Gone meanwhile: drop a stale entry.
            tx.retention.remove(item.due.as_slice())?;
            tally.skipped += 1;
            continue;
        };
        let owner = tx.retention.get(owner_key(id))?;
        if stored != item.base || owner.as_deref() != Some(item.due.as_slice()) {
            tally.skipped += 1;
            continue;
        }
        // Stage 1 and stage 2 both free what the message still holds.
        if let Some(p) = tx.payload_refs.get(id.as_bytes())? {
            if p.len() == POINTER_BYTES {
                tally.bytes += lift(Pointer::decode(&p, "payload_refs"))?.len;
            }
        }
        if let Some(v) = tx.payloads.remove(id.as_bytes())? {
            tally.bytes += v.len() as u64;
        }
        for index in 0..item.outputs {
            if let Some(v) = tx.outputs.remove(output_key(id, index))? {
                tally.bytes += output_bytes(&v);
            }
        }
        for sha in &item.blobs {
            if tx.blob_unref(sha)? {
                tally.blobs_unreferenced += 1;
            }
        }
        match &item.stage {
            PurgeStage::Payload {
                record_bytes,
                audit,
                next,
            } => {
                tx.payload_refs.insert(id.as_bytes(), PAYLOAD_PURGED)?;
                tx.messages.insert(id.as_bytes(), record_bytes.as_slice())?;
                tx.append_audit(id, audit)?;
                tx.set_expiry(id, next)?;
                tally.payloads += 1;
            }
            PurgeStage::Record { keys, idempotency } => {
                tx.payload_refs.remove(id.as_bytes())?;
                tx.messages.remove(id.as_bytes())?;
                if let Some(n) = tx.audit_seq.remove(id.as_bytes())? {
                    for seq in 0..lift(be_u64(&n, "audit_seq"))? {
                        tx.audit.remove(audit_key(id, seq))?;
                    }
                }
                tx.index_state(keys.state, id, false)?;
                tx.index_tenant(keys.tenant.as_deref(), id, false)?;
                if let Some(key) = idempotency {
                    if let Some(v) = tx.idempotency.get(key.as_slice())? {
                        let entry: IdempotencyEntry = lift(decode("idempotency", key, &v))?;
                        if entry.id == id {
                            tx.idempotency.remove(key.as_slice())?;
                        }
                    }
                }
                // A finished message has no jobs; make sure of it.
                tx.complete(&Job::Route { message: id })?;
                for delivery in 0..item.outputs {
                    tx.complete(&Job::Deliver {
                        message: id,
                        delivery,
                    })?;
                }
                tx.clear_expiry(id)?;
                tally.records += 1;
            }
        }
    }
    Ok(Ok(Outcome::Purged(tally)))
}

fn repoint(tx: &Tx<'_>, items: &[RepointItem]) -> TxResult<Result<Outcome>> {
    for item in items {
        let tree = match item.tree {
            PointerTree::PayloadRefs => tx.payload_refs,
            PointerTree::Outputs => tx.outputs,
        };
        if tree.get(item.key.as_slice())?.as_deref() == Some(item.old.as_slice()) {
            tree.insert(item.key.as_slice(), item.new.as_slice())?;
        }
    }
    Ok(Ok(Outcome::Repointed))
}

/// One state commit inside the batch's state transaction: it sees the
/// writes of the commits before it in the batch.
fn apply_state(
    t: &sled::transaction::TransactionalTree,
    retention: &sled::transaction::TransactionalTree,
    s: &StateOp,
) -> TxResult<Outcome> {
    for (key, seen) in &s.expect {
        let now = t.get(key.as_slice())?;
        if now.as_deref() != seen.as_deref() {
            return Ok(Outcome::Conflict);
        }
    }
    for (sha, delta) in &s.blob_refs {
        super::blob_ref_change(retention, sha, *delta)?;
    }
    for (key, value) in &s.writes {
        match value {
            Some(v) => {
                t.insert(key.as_slice(), v.as_ref())?;
            }
            None => {
                t.remove(key.as_slice())?;
            }
        }
    }
    Ok(Outcome::StateCommitted)
}

fn accept(tx: &Tx<'_>, a: &AcceptOp) -> TxResult<Result<Outcome>> {
    let id = a.id;
    if let Some((key, entry)) = &a.idempotency {
        if let Some(v) = tx.idempotency.get(key.as_slice())? {
            let first: IdempotencyEntry = lift(decode("idempotency", key, &v))?;
            return Ok(Ok(Outcome::Accepted(if first.sha256 == entry.sha256 {
                AcceptOutcome::Duplicate(first.id)
            } else {
                AcceptOutcome::KeyConflict(first.id)
            })));
        }
    }
    if tx.messages.get(id.as_bytes())?.is_some() {
        // A message id is made once per receipt: refuse this one, write
        // nothing, and leave the rest of the batch alone.
        return Ok(Err(StoreError::Backend(format!(
            "message {id} already exists"
        ))));
    }
    if let Some((key, entry)) = &a.idempotency {
        tx.idempotency
            .insert(key.as_slice(), lift(encode(entry))?)?;
    }
    for sha in &a.blobs {
        tx.blob_ref(sha)?;
    }
    tx.messages
        .insert(id.as_bytes(), a.record_bytes.as_slice())?;
    tx.payload_refs
        .insert(id.as_bytes(), a.payload_ref.as_slice())?;
    tx.append_audit(id, &a.audit)?;
    tx.index_state(a.keys.state, id, true)?;
    tx.index_tenant(a.keys.tenant.as_deref(), id, true)?;
    tx.schedule(&Job::Route { message: id }, a.route_due)?;
    Ok(Ok(Outcome::Accepted(AcceptOutcome::Created)))
}

fn update(tx: &Tx<'_>, u: &UpdateOp) -> TxResult<Result<Outcome>> {
    let id = u.id;
    let Some(stored) = tx.messages.get(id.as_bytes())? else {
        return Ok(Err(StoreError::NotFound(id)));
    };
    if stored != u.base {
        return Ok(Ok(Outcome::Conflict));
    }
    tx.messages
        .insert(id.as_bytes(), u.record_bytes.as_slice())?;
    let (old, new) = (&u.base_keys, &u.keys);
    if new.state != old.state {
        tx.index_state(old.state, id, false)?;
        tx.index_state(new.state, id, true)?;
        if old.state.is_terminal() {
            // A replay: the clock restarts at the next finish.
            tx.clear_expiry(id)?;
        }
        if let Some(key) = &u.finish {
            tx.set_expiry(id, key)?;
        }
    }
    if new.tenant != old.tenant {
        tx.index_tenant(old.tenant.as_deref(), id, false)?;
        tx.index_tenant(new.tenant.as_deref(), id, true)?;
    }
    for event in &u.audit {
        tx.append_audit(id, event)?;
    }
    for (index, value) in &u.outputs {
        tx.outputs
            .insert(output_key(id, *index), value.as_slice())?;
    }
    for job in &u.complete {
        tx.complete(job)?;
    }
    for (job, due) in &u.schedule {
        tx.schedule(job, *due)?;
    }
    Ok(Ok(Outcome::Updated))
}
