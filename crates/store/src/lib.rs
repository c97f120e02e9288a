//! Durable state of the hub behind the [`Store`] trait.
//!
//! The engine only ever talks to `dyn Store`; the embedded default is
//! [`SledStore`] (one process, one node). A PostgreSQL store for multi-node
//! deployments implements the same trait: every method is a small atomic
//! unit (`update` maps to `SELECT … FOR UPDATE` + write, `claim_due` to
//! `FOR UPDATE SKIP LOCKED` with a lease column).
//!
//! Durability contract: every method that changes messages, payloads,
//! outputs, audit or the queue returns only after the change is on disk
//! (flushed). Concurrent callers share flushes (group commit), so
//! durability does not cost one fsync per message. Leases
//! ([`Store::claim_due`]) are the exception: they are process-local claims
//! that [`Store::release_leases`] clears at start, so they need not wait
//! for the disk (a multi-node store keeps them in the database instead).

mod blobs;
#[cfg(feature = "contract")]
pub mod contract;
pub mod retention;
mod sled_store;
pub mod state;
mod vlog;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use drehscheibe_model::{AuditEvent, MessageId, MessageRecord, MessageState};
use serde::{Deserialize, Serialize};

pub use blobs::FsBlobStore;
pub use retention::{CollectReport, PurgeReport, Retention, RetentionPolicy};
pub use sled_store::{SledStore, StoreOptions, RECOVERY_INTERVAL, SINCE_SLACK};
pub use state::{StateCommit, StateSpace, StateTx};
pub use vlog::SEGMENT_BYTES;

/// Largest page [`Store::list`] returns, whatever `limit` asks for.
pub const MAX_PAGE_SIZE: usize = 500;

/// Page size of [`Store::list`] when `limit` is 0.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No message with this id.
    #[error("message {0} not found")]
    NotFound(MessageId),
    /// The storage backend failed (I/O, closed, internal error).
    #[error("storage backend: {0}")]
    Backend(String),
    /// Stored data could not be decoded; names the tree/key.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Returned by an [`Store::update`] closure to abort without writing.
    #[error("{0}")]
    Aborted(String),
    /// The message exists, but retention deleted its payload and output
    /// documents (see [`retention`]); the record says when.
    #[error("the payload of message {0} was deleted by retention")]
    Purged(MessageId),
}

/// Result with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A unit of work in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Job {
    /// Run the rule processor on a received message.
    Route { message: MessageId },
    /// Deliver output `delivery` (index into `MessageRecord::deliveries`).
    Deliver { message: MessageId, delivery: u32 },
}

impl Job {
    /// The message the job belongs to.
    pub fn message(&self) -> MessageId {
        match self {
            Job::Route { message } | Job::Deliver { message, .. } => *message,
        }
    }
}

/// A job taken from the queue. Until completed or rescheduled it is
/// leased to the caller; an expired lease (crash) makes it due again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    /// The job.
    pub job: Job,
    /// When it was due (millisecond precision).
    pub due: DateTime<Utc>,
}

/// Idempotency scope: the same key from the same sender on the same channel
/// is the same message.
///
/// Keys are chosen by senders, so two senders of one channel may well pick
/// the same key (`antrag-1`); scoping by the authenticated sender keeps
/// one sender from getting another's message id back (or a `409` for a
/// key it never used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Input channel id.
    pub channel: String,
    /// The authenticated sender, as `adapter:principal` (see
    /// [`IdempotencyKey::sender_of`]).
    pub sender: String,
    /// Sender-chosen key.
    pub key: String,
    /// SHA-256 of the payload, to detect a key reused for other content.
    pub payload_sha256: String,
}

impl IdempotencyKey {
    /// The sender scope of a submission: adapter kind and authenticated
    /// principal (`http:portal-a`), so the same principal name on two
    /// adapters does not share keys either.
    pub fn sender_of(sender: &drehscheibe_model::SenderIdentity) -> String {
        format!("{}:{}", sender.adapter, sender.principal)
    }
}

/// Result of [`Store::accept`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// Stored and queued for routing.
    Created,
    /// The idempotency key was seen before with the same payload.
    Duplicate(MessageId),
    /// The idempotency key was seen before with a different payload.
    KeyConflict(MessageId),
}

/// Side effects committed atomically with a record change.
#[derive(Debug, Default)]
pub struct Effects {
    /// Audit events appended to the message's trail, in this order.
    pub audit: Vec<AuditEvent>,
    /// Output documents to store, by delivery index.
    pub outputs: Vec<(u32, Bytes)>,
    /// Jobs to remove from the queue (finished work).
    pub complete: Vec<Job>,
    /// Jobs to (re)schedule; replaces an existing entry for the same job and
    /// drops its lease. Applied after `complete`.
    pub schedule: Vec<(Job, DateTime<Utc>)>,
}

impl Effects {
    /// No effect at all.
    pub fn is_empty(&self) -> bool {
        self.audit.is_empty()
            && self.outputs.is_empty()
            && self.complete.is_empty()
            && self.schedule.is_empty()
    }
}

/// Filter for [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    /// Only messages of this tenant (`envelope.tenant`).
    pub tenant: Option<String>,
    /// Only messages in this state.
    pub state: Option<MessageState>,
    /// Only messages received at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only messages received before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only messages of this Leistung (`envelope.leistung`).
    pub leistung: Option<String>,
    /// Only messages with a correlation id of this value (any key), or
    /// this idempotency key.
    pub correlation: Option<String>,
    /// Page cursor: continue after this id (ids are time-ordered).
    pub after: Option<MessageId>,
    /// Page size: 0 means [`DEFAULT_PAGE_SIZE`], capped at [`MAX_PAGE_SIZE`].
    pub limit: usize,
}

/// Most records one [`Store::list`] call examines for the filters no
/// index serves (`until`, `leistung`, `correlation`): a page may then
/// hold fewer items than asked, with `next` set to go on.
pub const MAX_LIST_SCAN: usize = 10_000;

impl MessageFilter {
    /// Whether `rec` passes every filter (the stores' common check).
    pub fn matches(&self, rec: &MessageRecord) -> bool {
        let e = &rec.envelope;
        self.state.is_none_or(|s| rec.state == s)
            && self
                .tenant
                .as_deref()
                .is_none_or(|x| e.tenant.as_deref() == Some(x))
            && self.since.is_none_or(|s| e.received_at >= s)
            && self.until.is_none_or(|u| e.received_at < u)
            && self
                .leistung
                .as_deref()
                .is_none_or(|l| e.leistung.as_deref() == Some(l))
            && self.correlation.as_deref().is_none_or(|c| {
                e.idempotency_key.as_deref() == Some(c)
                    || e.correlation_ids.values().any(|v| v == c)
            })
    }
}

/// One page of [`Store::list`].
#[derive(Debug, Clone)]
pub struct Page {
    /// The messages, oldest first.
    pub items: Vec<MessageRecord>,
    /// Cursor for the next page, if there may be more.
    pub next: Option<MessageId>,
}

/// Counters for the metrics endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Jobs in the queue (due or not, leased or not).
    pub depth: u64,
    /// Of those, due now and not leased.
    pub due: u64,
}

/// Closure type for [`Store::update`]: edit the record in place and say
/// what else to commit with it. Returning `Err` aborts without writing.
/// It may run more than once (optimistic retry), so it must not have side
/// effects outside the record and its return value.
pub type UpdateFn<'a> = dyn FnMut(&mut MessageRecord) -> Result<Effects> + Send + 'a;

/// Durable state of the hub.
#[async_trait]
pub trait Store: Send + Sync {
    /// Store a new message (record, payload, first audit event) and queue a
    /// `Route` job due now — atomically and durably. With an idempotency
    /// key, a second call with the same key returns `Duplicate`/`KeyConflict`
    /// and stores nothing.
    async fn accept(
        &self,
        record: &MessageRecord,
        payload: Bytes,
        audit: AuditEvent,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<AcceptOutcome>;

    /// The record of one message.
    async fn get(&self, id: MessageId) -> Result<Option<MessageRecord>>;

    /// The primary payload as received.
    async fn payload(&self, id: MessageId) -> Result<Option<Bytes>>;

    /// A stored output document of delivery `index`.
    async fn output(&self, id: MessageId, index: u32) -> Result<Option<Bytes>>;

    /// Read-modify-write one record atomically with its effects; bumps
    /// `revision` and `updated_at`. Returns the stored record. An update
    /// that changes nothing — the record left as it was and no effects —
    /// writes nothing (no revision bump, no flush) and returns the record.
    async fn update(&self, id: MessageId, f: &mut UpdateFn<'_>) -> Result<MessageRecord>;

    /// Messages matching `filter`, oldest first (by id). `next` is set only
    /// when another matching message exists.
    async fn list(&self, filter: &MessageFilter) -> Result<Page>;

    /// The audit trail of one message, in order.
    async fn audit(&self, id: MessageId) -> Result<Vec<AuditEvent>>;

    /// Lease up to `limit` jobs due at `now` until `lease_until`. Need not
    /// be durable (see the module docs).
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedJob>>;

    /// Earliest time at which [`Store::claim_due`] can return a job (so
    /// workers can sleep): the due time of an unleased (or lease-expired)
    /// job, or the lease expiry of a leased one, whichever comes first.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>>;

    /// Move the lease of a job this node claimed to `lease_until`, while
    /// its work is still running (a route waiting for memory, a delivery
    /// waiting for a connector slot): without it the job would become
    /// claimable again after the lease and run twice concurrently.
    /// Returns `false` when the job holds no lease any more (completed or
    /// released), and then creates none. Need not be durable, like
    /// [`Store::claim_due`].
    async fn renew_lease(&self, job: Job, lease_until: DateTime<Utc>) -> Result<bool>;

    /// Drop all leases held by this node (at start and at shutdown): the
    /// jobs become due again at their due time.
    async fn release_leases(&self) -> Result<u64>;

    /// Queue depth and due jobs at `now`.
    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<QueueStats>;

    /// Count of messages per state (for metrics and readiness).
    async fn count_by_state(&self) -> Result<Vec<(MessageState, u64)>>;

    /// Cache a snapshot of the tenant configuration (raw text + digest), so
    /// an operator can see which configuration routed a message.
    async fn put_config_snapshot(&self, digest: &str, text: &str) -> Result<()>;
    /// A snapshot stored by [`Store::put_config_snapshot`].
    async fn config_snapshot(&self, digest: &str) -> Result<Option<String>>;

    /// Which of `candidates` (blob SHA-256 hex digests) a stored message or
    /// a state record (see [`state`]) references, by the reference counts
    /// — for the start-up sweep of staged blobs (see
    /// [`FsBlobStore::sweep_staged`]).
    async fn referenced_blobs(
        &self,
        candidates: std::collections::HashSet<String>,
    ) -> Result<std::collections::HashSet<String>>;

    /// The value of `key` in the adapter state space `space` (see
    /// [`state`]).
    async fn state_get(&self, space: &str, key: &[u8]) -> Result<Option<Bytes>>;

    /// Up to `limit` entries of `space` whose key starts with `prefix`, in
    /// key order, after the key `after`; `limit` is capped at
    /// [`state::MAX_STATE_PAGE`].
    async fn state_scan(
        &self,
        space: &str,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Bytes)>>;

    /// Apply `commit.writes` to `space` atomically and durably if every key
    /// of `commit.expect` still holds the value given there; `Ok(false)`
    /// (nothing written) otherwise.
    async fn state_commit(&self, space: &str, commit: StateCommit) -> Result<bool>;

    /// Retention, stage by stage (see [`retention`]): delete what is due
    /// at `now` under `policy`, at most `limit` messages in one durable
    /// transaction (through the same writer as every other change).
    /// `report.more` says whether another call may find more due. The
    /// default deletes nothing.
    async fn purge_expired(
        &self,
        policy: &RetentionPolicy,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<PurgeReport> {
        let _ = (policy, now, limit);
        Ok(PurgeReport::default())
    }

    /// Up to `limit` content hashes of blobs whose last referencing
    /// message was purged: candidates for
    /// [`BlobStore::remove_unreferenced`](drehscheibe_model::BlobStore::remove_unreferenced).
    async fn unreferenced_blobs(&self, limit: usize) -> Result<Vec<String>> {
        let _ = limit;
        Ok(Vec::new())
    }

    /// How many stored messages reference the blob with this content
    /// hash (kept atomically with accept and purge). The default answers
    /// 1, which keeps every blob.
    async fn blob_references(&self, sha256: &str) -> Result<u64> {
        let _ = sha256;
        Ok(1)
    }

    /// Drop a candidate of [`Store::unreferenced_blobs`] (its file is
    /// gone, or it is referenced again).
    async fn forget_unreferenced_blob(&self, sha256: &str) -> Result<()> {
        let _ = sha256;
        Ok(())
    }

    /// Free disk space of purged payloads and outputs: delete storage
    /// units nothing points into and compact those whose live share fell
    /// below `compact_below` (0.0–1.0), moving at most `max_move_bytes`
    /// per call. The default does nothing.
    async fn collect_value_log(
        &self,
        compact_below: f64,
        max_move_bytes: u64,
    ) -> Result<CollectReport> {
        let _ = (compact_below, max_move_bytes);
        Ok(CollectReport::default())
    }

    /// Flush everything to disk (used at shutdown).
    async fn flush(&self) -> Result<()>;

    /// Whether the store can take writes now (for readiness probes). A
    /// store that recovers from write failures (a full disk) tries to
    /// recover here. The default only checks that the store answers.
    ///
    /// # Errors
    ///
    /// The reason the store cannot take writes.
    async fn ready(&self) -> Result<()> {
        self.queue_stats(Utc::now()).await.map(|_| ())
    }

    // -- Hub-wide coordination -------------------------------------------
    //
    // Several hub instances on one shared store are one hub (ADR 0016).
    // The store is where they agree on what must happen once per hub.
    // The defaults describe a store that only one process can open (the
    // embedded sled store): that process is the whole hub, so it holds
    // every lease and every slot, and its own in-process signals suffice.

    /// Take or renew the hub-wide lease `name` (e.g. the poller of a
    /// channel, which must run once per hub, not once per instance) for
    /// this instance until `ttl` from now. `Ok(true)`: this instance holds
    /// it now; `Ok(false)`: another live instance does. A holder that
    /// stops renewing (crash, lost database) loses the lease when `ttl`
    /// runs out, and another instance takes over.
    async fn hold_lease(&self, name: &str, ttl: std::time::Duration) -> Result<bool> {
        let _ = (name, ttl);
        Ok(true)
    }

    /// Give up the lease `name` if this instance holds it (at shutdown,
    /// so another instance need not wait for the expiry).
    async fn release_lease(&self, name: &str) -> Result<()> {
        let _ = name;
        Ok(())
    }

    /// Take one of `limit` hub-wide slots of `key` (a connector's
    /// concurrency limit holds for the hub, not per instance) until `ttl`
    /// from now. `Ok(None)`: all slots are taken. The caller gives the slot
    /// back with [`Store::release_slot`]; a crashed holder's slot frees
    /// itself when `ttl` runs out. The default grants every request: one
    /// process enforces its limits in memory.
    async fn acquire_slot(
        &self,
        key: &str,
        limit: u32,
        ttl: std::time::Duration,
    ) -> Result<Option<u32>> {
        let _ = (key, limit, ttl);
        Ok(Some(0))
    }

    /// Give back a slot taken with [`Store::acquire_slot`].
    async fn release_slot(&self, key: &str, slot: u32) -> Result<()> {
        let _ = (key, slot);
        Ok(())
    }

    /// Notified when another instance queued work (so an idle dispatcher
    /// wakes instead of polling); `None` when only this process can queue
    /// work (its own wake-ups suffice).
    fn work_signal(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }

    /// Whether several processes may share this store (then channel tasks
    /// run under [`Store::hold_lease`] and connector limits go through
    /// [`Store::acquire_slot`]).
    fn is_shared(&self) -> bool {
        false
    }
}
