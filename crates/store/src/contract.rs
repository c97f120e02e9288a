//! The store contract: backend-independent tests every [`Store`] (and
//! [`BlobStore`]) implementation must pass, one harness for all backends.
//!
//! Enabled by the cargo feature `contract`. A backend's test crate makes
//! a fresh, empty [`Fixture`] per test and lets
//! [`store_contract_tests!`](crate::store_contract_tests) generate one
//! `#[tokio::test]` per contract function:
//!
//! ```ignore
//! async fn fresh() -> Fixture {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = SledStore::open(&dir.path().join("store")).unwrap();
//!     let blobs = FsBlobStore::open(&dir.path().join("blobs")).unwrap();
//!     Fixture::new(Arc::new(store), Arc::new(blobs), dir) // dir: dropped after the test
//! }
//! drehscheibe_store::store_contract_tests!(fresh);
//! ```
//!
//! The functions are plain `pub async fn name(f: &Fixture)`, so a backend
//! can also call one from a test of its own. What only one backend can
//! show (sled's crash and reopen tests, PostgreSQL's several instances on
//! one database) stays in that backend's tests.
//!
//! Time is passed in (`now`), never waited for. These are tests: they
//! panic on failure.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use drehscheibe_model::{
    sha256_hex, AttachmentRef, AuditEvent, BlobError, BlobRef, BlobStore, Delivery, DeliveryState,
    Envelope, MessageId, MessageRecord, MessageState, SenderIdentity,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::state::MAX_STATE_PAGE;
use crate::{
    AcceptOutcome, Effects, IdempotencyKey, Job, MessageFilter, QueueStats, Retention,
    RetentionPolicy, StateSpace, Store, StoreError, MAX_PAGE_SIZE,
};

/// A fresh, empty store and blob store of one backend, plus whatever
/// keeps them alive and cleans up when the test ends (a temp dir, a
/// database schema dropped on `Drop`).
pub struct Fixture {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// The blob store belonging to it.
    pub blobs: Arc<dyn BlobStore>,
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

impl Fixture {
    /// A fixture of `store` and `blobs`; `keep` is dropped with it (after
    /// the stores).
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        keep: impl std::any::Any + Send + Sync,
    ) -> Self {
        Self {
            store,
            blobs,
            _keep: Box::new(keep),
        }
    }
}

/// One `#[tokio::test]` per contract function, each on a fresh fixture
/// from `$fresh` (an `async fn() -> Fixture`).
#[macro_export]
macro_rules! store_contract_tests {
    ($fresh:path) => {
        $crate::store_contract_tests!(@each $fresh;
            accept_get_payload_round_trip,
            idempotency_outcomes,
            accepting_the_same_id_twice_fails,
            update_commits_record_and_effects,
            an_update_that_changes_nothing_writes_nothing,
            failed_update_writes_nothing,
            claim_lease_and_release,
            renewing_a_lease_keeps_the_job_from_a_second_claim,
            next_due_and_empty_queue,
            list_filters_and_pages,
            list_caps_the_page_size,
            works_behind_dyn_store,
            pass_through_outputs_read_back_as_the_payload,
            config_snapshots_round_trip,
            referenced_blobs_are_the_attached_ones_until_purged,
            state_put_get_delete_and_spaces_are_separate,
            state_scans_page_by_prefix_in_key_order,
            state_a_commit_over_a_changed_read_writes_nothing,
            state_concurrent_increments_lose_nothing,
            state_bad_space_names_are_refused,
            state_held_blobs_count_with_messages_and_commit_with_the_state,
            retention_delivered_messages_lose_payload_then_record_and_dead_ones_stay,
            retention_tenants_have_their_own_durations_and_failed_messages_a_maximum,
            retention_purges_run_in_bounded_batches,
            retention_a_replay_takes_the_message_out_and_restarts_its_clock,
            retention_a_shared_blob_stays_until_its_last_reference_goes,
            blob_put_and_open_stream_a_few_megabytes,
            blob_limit_is_enforced,
            blob_identical_content_is_stored_once,
            blob_missing_and_foreign_refs,
            blob_a_reader_error_stores_nothing,
            blob_a_discarded_staging_removes_the_blob,
            blob_a_kept_staging_stays,
            blob_shared_content_stays_until_the_last_staging_ends,
        );
    };
    (@each $fresh:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = $fresh().await;
                $crate::contract::$name(&fixture).await;
            }
        )*
    };
}

// ---------------------------------------------------------------------------
// Helpers

/// A received message with `payload`, received at `received_at`.
pub fn record_at(received_at: DateTime<Utc>, payload: &[u8]) -> MessageRecord {
    MessageRecord::received(Envelope {
        id: MessageId::new(),
        channel: "online-dienst".into(),
        sender: SenderIdentity {
            adapter: "http".into(),
            principal: "portal".into(),
            remote_addr: Some("127.0.0.1:4711".into()),
        },
        received_at,
        content_type: "application/xml".into(),
        size: payload.len() as u64,
        sha256: sha256_hex(payload),
        correlation_ids: Default::default(),
        idempotency_key: None,
        tenant: None,
        kommune_key: None,
        leistung: None,
        attachments: Vec::new(),
    })
}

/// The `received` audit event of `rec`.
pub fn received_event(rec: &MessageRecord) -> AuditEvent {
    AuditEvent::new(rec.id(), "intake:http:portal", "received", None, rec.state)
}

/// Accept a fresh message with `payload`; returns its record.
pub async fn accept(store: &dyn Store, payload: &[u8]) -> MessageRecord {
    let rec = record_at(Utc::now(), payload);
    let out = store
        .accept(
            &rec,
            Bytes::copy_from_slice(payload),
            received_event(&rec),
            None,
        )
        .await
        .unwrap();
    assert_eq!(out, AcceptOutcome::Created);
    rec
}

/// The count of `state` in a `count_by_state` answer.
pub fn count(counts: &[(MessageState, u64)], state: MessageState) -> u64 {
    counts
        .iter()
        .find(|(s, _)| *s == state)
        .map_or(0, |(_, n)| *n)
}

/// The stored event must be the one handed in (same fields).
fn received_event_like(stored: &AuditEvent, rec: &MessageRecord) -> AuditEvent {
    let mut ev = received_event(rec);
    ev.at = stored.at;
    ev
}

const DAY: u64 = 86_400;

/// `n` days.
pub fn days(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n * DAY))
}

/// `n_days` from now.
pub fn later(n_days: i64) -> DateTime<Utc> {
    Utc::now() + TimeDelta::days(n_days)
}

fn record(payload: &[u8], key: Option<&str>, attachments: &[BlobRef]) -> MessageRecord {
    let mut rec = record_at(Utc::now(), payload);
    rec.envelope.sender.remote_addr = None;
    rec.envelope.idempotency_key = key.map(str::to_owned);
    rec.envelope.attachments = attachments
        .iter()
        .map(|b| AttachmentRef {
            name: "anlage".into(),
            filename: None,
            content_type: "application/pdf".into(),
            blob: b.clone(),
        })
        .collect();
    rec
}

fn idem(rec: &MessageRecord, payload: &[u8]) -> Option<IdempotencyKey> {
    rec.envelope
        .idempotency_key
        .as_ref()
        .map(|k| IdempotencyKey {
            channel: rec.envelope.channel.clone(),
            sender: IdempotencyKey::sender_of(&rec.envelope.sender),
            key: k.clone(),
            payload_sha256: sha256_hex(payload),
        })
}

/// Accept a message with an optional idempotency key and attachments.
pub async fn accept_with(
    store: &dyn Store,
    payload: &[u8],
    key: Option<&str>,
    attachments: &[BlobRef],
) -> (MessageRecord, AcceptOutcome) {
    let rec = record(payload, key, attachments);
    let ev = AuditEvent::new(rec.id(), "intake:http:portal", "received", None, rec.state);
    let out = store
        .accept(
            &rec,
            Bytes::copy_from_slice(payload),
            ev,
            idem(&rec, payload),
        )
        .await
        .unwrap();
    (rec, out)
}

fn delivery(tenant: &str) -> Delivery {
    Delivery {
        target: "fachverfahren".into(),
        tenant: tenant.into(),
        connector: "fv".into(),
        state: DeliveryState::Delivered,
        attempts: 1,
        generation: 0,
        content_type: "application/xml".into(),
        size: 0,
        sha256: String::new(),
        filename: "out.xml".into(),
        last_error: None,
        last_attempt_at: None,
        next_attempt_at: None,
        delivered_at: None,
        receipt: None,
        checkpoint: None,
        packed: false,
    }
}

/// Route and finish a message in `state` for `tenant`, with one output
/// document.
pub async fn finish(
    store: &dyn Store,
    id: MessageId,
    state: MessageState,
    tenant: Option<&str>,
    output: &[u8],
) -> MessageRecord {
    let output = Bytes::copy_from_slice(output);
    store
        .update(id, &mut |r: &mut MessageRecord| {
            r.state = state;
            r.envelope.tenant = tenant.map(str::to_owned);
            r.deliveries = vec![delivery(tenant.unwrap_or("none"))];
            Ok(Effects {
                audit: vec![AuditEvent::new(id, "engine", "finished", None, state)],
                outputs: vec![(0, output.clone())],
                complete: vec![Job::Route { message: id }],
                schedule: Vec::new(),
            })
        })
        .await
        .unwrap()
}

/// Purge until nothing more is due; sums the reports.
pub async fn purge_all(
    store: &dyn Store,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> crate::PurgeReport {
    let mut sum = crate::PurgeReport::default();
    loop {
        let r = store.purge_expired(policy, now, 500).await.unwrap();
        sum.payloads += r.payloads;
        sum.records += r.records;
        sum.bytes += r.bytes;
        sum.skipped += r.skipped;
        sum.blobs_unreferenced += r.blobs_unreferenced;
        if !r.more {
            return sum;
        }
    }
}

/// Stage `content` (at most 1 MiB).
pub async fn stage_bytes(blobs: &dyn BlobStore, content: &'static [u8]) -> BlobRef {
    blobs
        .stage(Box::pin(std::io::Cursor::new(content)), 1 << 20)
        .await
        .unwrap()
}

/// Deterministic pseudo-random bytes, produced on demand (never whole in
/// memory), in reads of at most 64 KiB.
pub struct Generated {
    state: u64,
    left: u64,
}

impl Generated {
    /// `len` bytes from `seed`.
    pub fn new(seed: u64, len: u64) -> Self {
        Self {
            state: seed | 1,
            left: len,
        }
    }

    fn next_word(&mut self) -> u64 {
        // xorshift64
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }
}

impl AsyncRead for Generated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left).min(64 * 1024) as usize;
        let mut chunk = [0u8; 8];
        let mut left = n;
        while left > 0 {
            chunk.copy_from_slice(&self.next_word().to_le_bytes());
            let take = left.min(8);
            buf.put_slice(&chunk[..take]);
            left -= take;
        }
        self.left -= n as u64;
        Poll::Ready(Ok(()))
    }
}

/// SHA-256 of everything `reader` yields, and its length.
pub async fn sha_of_reader(mut reader: impl AsyncRead + Unpin) -> (String, u64) {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    (hex::encode(h.finalize()), total)
}

/// SHA-256 of a generated stream, computed independently of any store.
pub async fn sha_of(seed: u64, len: u64) -> String {
    sha_of_reader(Generated::new(seed, len)).await.0
}

const MB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------
// Messages, queue, lists

pub async fn accept_get_payload_round_trip(f: &Fixture) {
    let store = &*f.store;
    let rec = accept(store, b"<antrag>1</antrag>").await;

    assert_eq!(store.get(rec.id()).await.unwrap(), Some(rec.clone()));
    assert_eq!(
        store.payload(rec.id()).await.unwrap().unwrap(),
        Bytes::from_static(b"<antrag>1</antrag>")
    );
    let audit = store.audit(rec.id()).await.unwrap();
    assert_eq!(audit, vec![received_event_like(&audit[0], &rec)]);
    assert_eq!(store.output(rec.id(), 0).await.unwrap(), None);

    // A Route job is queued, due now.
    let now = Utc::now();
    let claimed = store
        .claim_due(now, 10, now + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].job, Job::Route { message: rec.id() });
    assert!(claimed[0].due <= now);

    let counts = store.count_by_state().await.unwrap();
    assert_eq!(counts.len(), MessageState::ALL.len());
    assert_eq!(count(&counts, MessageState::Received), 1);
    assert_eq!(count(&counts, MessageState::Routed), 0);

    let unknown = MessageId::new();
    assert_eq!(store.get(unknown).await.unwrap(), None);
    assert_eq!(store.payload(unknown).await.unwrap(), None);
    assert!(store.audit(unknown).await.unwrap().is_empty());
}

/// Accept `payload` as a new message under idempotency key `key`.
async fn accept_keyed(
    store: &dyn Store,
    payload: &'static [u8],
    key: IdempotencyKey,
) -> (MessageRecord, AcceptOutcome) {
    let rec = record_at(Utc::now(), payload);
    let out = store
        .accept(
            &rec,
            Bytes::from_static(payload),
            received_event(&rec),
            Some(key),
        )
        .await
        .unwrap();
    (rec, out)
}

pub async fn idempotency_outcomes(f: &Fixture) {
    let store = &*f.store;
    let key = |channel: &str, payload: &[u8]| IdempotencyKey {
        channel: channel.into(),
        sender: "http:portal-a".into(),
        key: "antrag-42".into(),
        payload_sha256: sha256_hex(payload),
    };

    let (first, out) = accept_keyed(store, b"<a/>", key("ch", b"<a/>")).await;
    assert_eq!(out, AcceptOutcome::Created);

    // Same key, same payload: the first id, nothing stored.
    let (retry, out) = accept_keyed(store, b"<a/>", key("ch", b"<a/>")).await;
    assert_eq!(out, AcceptOutcome::Duplicate(first.id()));
    assert_eq!(store.get(retry.id()).await.unwrap(), None);
    assert_eq!(store.payload(retry.id()).await.unwrap(), None);
    assert!(store.audit(retry.id()).await.unwrap().is_empty());

    // Same key, other payload: conflict, nothing stored.
    let (other, out) = accept_keyed(store, b"<b/>", key("ch", b"<b/>")).await;
    assert_eq!(out, AcceptOutcome::KeyConflict(first.id()));
    assert_eq!(store.get(other.id()).await.unwrap(), None);

    // Same key on another channel is another message.
    let (_, out) = accept_keyed(store, b"<b/>", key("other-channel", b"<b/>")).await;
    assert_eq!(out, AcceptOutcome::Created);

    // Same key and channel from another sender is another message.
    let (_, out) = accept_keyed(
        store,
        b"<a/>",
        IdempotencyKey {
            sender: "http:portal-b".into(),
            ..key("ch", b"<a/>")
        },
    )
    .await;
    assert_eq!(out, AcceptOutcome::Created);

    let stats = store.queue_stats(Utc::now()).await.unwrap();
    assert_eq!(stats.depth, 3, "only the three created messages are queued");
    let counts = store.count_by_state().await.unwrap();
    assert_eq!(count(&counts, MessageState::Received), 3);
}

pub async fn accepting_the_same_id_twice_fails(f: &Fixture) {
    let store = &*f.store;
    let rec = accept(store, b"<a/>").await;
    let err = store
        .accept(
            &rec,
            Bytes::from_static(b"<x/>"),
            received_event(&rec),
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
    assert_eq!(
        store.payload(rec.id()).await.unwrap().unwrap(),
        Bytes::from_static(b"<a/>")
    );
}

pub async fn update_commits_record_and_effects(f: &Fixture) {
    let store = &*f.store;
    let rec = accept(store, b"<a/>").await;
    let id = rec.id();
    let due = Utc::now() + TimeDelta::seconds(30);

    let stored = store
        .update(id, &mut |r: &mut MessageRecord| {
            r.state = MessageState::Routed;
            r.envelope.tenant = Some("kommune-a".into());
            Ok(Effects {
                audit: vec![
                    AuditEvent::new(
                        id,
                        "engine",
                        "routed",
                        Some(MessageState::Received),
                        r.state,
                    ),
                    AuditEvent::new(id, "engine", "output", None, r.state).with_target("fv"),
                ],
                outputs: vec![(0, Bytes::from_static(b"<out/>"))],
                complete: vec![Job::Route { message: id }],
                schedule: vec![(
                    Job::Deliver {
                        message: id,
                        delivery: 0,
                    },
                    due,
                )],
            })
        })
        .await
        .unwrap();
    assert_eq!(stored.revision, rec.revision + 1);
    assert!(stored.updated_at >= rec.updated_at);
    assert_eq!(stored.state, MessageState::Routed);
    assert_eq!(store.get(id).await.unwrap(), Some(stored.clone()));

    let actions: Vec<String> = store
        .audit(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["received", "routed", "output"]);
    assert_eq!(
        store.output(id, 0).await.unwrap().unwrap(),
        Bytes::from_static(b"<out/>")
    );
    assert_eq!(store.output(id, 1).await.unwrap(), None);

    // Route is gone, Deliver is queued at `due`.
    assert_eq!(
        store.queue_stats(Utc::now()).await.unwrap(),
        QueueStats { depth: 1, due: 0 }
    );
    let claimed = store
        .claim_due(due, 10, due + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.job).collect::<Vec<_>>(),
        [Job::Deliver {
            message: id,
            delivery: 0
        }]
    );

    // Indexes and counters follow the state and tenant.
    let counts = store.count_by_state().await.unwrap();
    assert_eq!(count(&counts, MessageState::Received), 0);
    assert_eq!(count(&counts, MessageState::Routed), 1);
    let page = store
        .list(&MessageFilter {
            tenant: Some("kommune-a".into()),
            state: Some(MessageState::Routed),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items, vec![stored.clone()]);

    // A second update continues the audit sequence after the first.
    let again = store
        .update(id, &mut |r: &mut MessageRecord| {
            r.state = MessageState::Delivering;
            Ok(Effects {
                audit: vec![AuditEvent::new(
                    id,
                    "engine",
                    "delivery_attempt",
                    Some(MessageState::Routed),
                    r.state,
                )],
                ..Default::default()
            })
        })
        .await
        .unwrap();
    assert_eq!(again.revision, rec.revision + 2);
    let actions: Vec<String> = store
        .audit(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        ["received", "routed", "output", "delivery_attempt"]
    );
}

pub async fn an_update_that_changes_nothing_writes_nothing(f: &Fixture) {
    let store = &*f.store;
    let rec = accept(store, b"<a/>").await;
    let stored = store.get(rec.id()).await.unwrap().unwrap();
    let same = store
        .update(
            rec.id(),
            &mut |_: &mut MessageRecord| Ok(Effects::default()),
        )
        .await
        .unwrap();
    assert_eq!(same, stored, "no revision bump, no new updated_at");
    assert_eq!(store.get(rec.id()).await.unwrap().unwrap(), stored);
    // A change, or an effect alone, is written as before.
    let changed = store
        .update(rec.id(), &mut |r: &mut MessageRecord| {
            r.reason = Some("x".into());
            Ok(Effects::default())
        })
        .await
        .unwrap();
    assert_eq!(changed.revision, stored.revision + 1);
    let audited = store
        .update(rec.id(), &mut |r: &mut MessageRecord| {
            Ok(Effects {
                audit: vec![received_event(r)],
                ..Default::default()
            })
        })
        .await
        .unwrap();
    assert_eq!(audited.revision, stored.revision + 2);
    assert_eq!(store.audit(rec.id()).await.unwrap().len(), 2);
}

pub async fn failed_update_writes_nothing(f: &Fixture) {
    let store = &*f.store;
    let rec = accept(store, b"<a/>").await;
    let id = rec.id();

    let err = store
        .update(id, &mut |r: &mut MessageRecord| {
            r.state = MessageState::Dead;
            Err(StoreError::Aborted("transition not allowed".into()))
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Aborted(m) if m == "transition not allowed"),
        "{err}"
    );
    assert_eq!(store.get(id).await.unwrap(), Some(rec.clone()));
    assert_eq!(store.audit(id).await.unwrap().len(), 1);
    let counts = store.count_by_state().await.unwrap();
    assert_eq!(count(&counts, MessageState::Dead), 0);

    let missing = MessageId::new();
    let err = store
        .update(missing, &mut |_: &mut MessageRecord| Ok(Effects::default()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(m) if m == missing));

    // The id is not editable.
    let err = store
        .update(id, &mut |r: &mut MessageRecord| {
            r.envelope.id = MessageId::new();
            Ok(Effects::default())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Aborted(_)), "{err}");
    assert_eq!(store.get(id).await.unwrap(), Some(rec));
}

pub async fn claim_lease_and_release(f: &Fixture) {
    let store = &*f.store;
    let a = accept(store, b"<a/>").await;
    let b = accept(store, b"<b/>").await;
    let c = accept(store, b"<c/>").await;
    let route = |r: &MessageRecord| Job::Route { message: r.id() };

    let now = Utc::now();
    let lease = now + TimeDelta::minutes(5);
    // Oldest due first, at most `limit`.
    let first = store.claim_due(now, 2, lease).await.unwrap();
    assert_eq!(
        first.iter().map(|j| j.job).collect::<Vec<_>>(),
        [route(&a), route(&b)]
    );
    assert!(first[0].due <= first[1].due);
    // Leased jobs are skipped.
    let second = store.claim_due(now, 10, lease).await.unwrap();
    assert_eq!(
        second.iter().map(|j| j.job).collect::<Vec<_>>(),
        [route(&c)]
    );
    assert!(store.claim_due(now, 10, lease).await.unwrap().is_empty());
    assert_eq!(
        store.queue_stats(now).await.unwrap(),
        QueueStats { depth: 3, due: 0 }
    );
    // Nothing unleased: the next chance is the lease expiry.
    let next = store.next_due().await.unwrap().unwrap();
    assert_eq!(next.timestamp_millis(), lease.timestamp_millis());

    // An expired lease makes the job claimable again.
    let later = lease + TimeDelta::seconds(1);
    let again = store
        .claim_due(later, 10, later + TimeDelta::minutes(5))
        .await
        .unwrap();
    assert_eq!(again.len(), 3);

    // release_leases makes everything due at its due time.
    assert_eq!(store.release_leases().await.unwrap(), 3);
    assert_eq!(store.release_leases().await.unwrap(), 0);
    assert_eq!(
        store.queue_stats(now).await.unwrap(),
        QueueStats { depth: 3, due: 3 }
    );
    let next = store.next_due().await.unwrap().unwrap();
    assert_eq!(next, first[0].due);

    // Rescheduling moves the job (one entry per job) and drops its lease.
    let claimed = store.claim_due(now, 1, lease).await.unwrap();
    assert_eq!(claimed[0].job, route(&a));
    let retry_at = now + TimeDelta::hours(1);
    store
        .update(a.id(), &mut |_: &mut MessageRecord| {
            Ok(Effects {
                schedule: vec![(route(&a), retry_at)],
                ..Default::default()
            })
        })
        .await
        .unwrap();
    assert_eq!(
        store.queue_stats(now).await.unwrap(),
        QueueStats { depth: 3, due: 2 }
    );
    let at_retry = store
        .claim_due(retry_at, 10, retry_at + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        at_retry.iter().map(|j| j.job).collect::<Vec<_>>(),
        [route(&b), route(&c), route(&a)]
    );
    assert_eq!(
        at_retry[2].due.timestamp_millis(),
        retry_at.timestamp_millis()
    );

    // Completing removes the job and its lease.
    store
        .update(b.id(), &mut |_: &mut MessageRecord| {
            Ok(Effects {
                complete: vec![route(&b)],
                ..Default::default()
            })
        })
        .await
        .unwrap();
    assert_eq!(store.queue_stats(now).await.unwrap().depth, 2);
    assert_eq!(store.release_leases().await.unwrap(), 2);
    assert_eq!(
        store
            .claim_due(now, 10, lease)
            .await
            .unwrap()
            .iter()
            .map(|j| j.job)
            .collect::<Vec<_>>(),
        [route(&c)]
    );
}

pub async fn renewing_a_lease_keeps_the_job_from_a_second_claim(f: &Fixture) {
    let store = &*f.store;
    let a = accept(store, b"<a/>").await;
    let b = accept(store, b"<b/>").await;
    let route = |r: &MessageRecord| Job::Route { message: r.id() };

    let now = Utc::now();
    let lease = now + TimeDelta::seconds(10);
    assert_eq!(store.claim_due(now, 10, lease).await.unwrap().len(), 2);
    // a's worker renews its lease; b's does not.
    let renewed = now + TimeDelta::hours(1);
    assert!(store.renew_lease(route(&a), renewed).await.unwrap());
    // After the first lease ran out only b is claimable again.
    let later = lease + TimeDelta::seconds(1);
    let again = store
        .claim_due(later, 10, later + TimeDelta::seconds(10))
        .await
        .unwrap();
    assert_eq!(again.iter().map(|j| j.job).collect::<Vec<_>>(), [route(&b)]);
    // a becomes claimable when the renewed lease runs out.
    let after_renewal = renewed + TimeDelta::seconds(1);
    let last = store
        .claim_due(after_renewal, 10, after_renewal + TimeDelta::seconds(10))
        .await
        .unwrap();
    assert!(last.iter().any(|j| j.job == route(&a)));

    // A completed job has no lease to renew, and renewing creates none.
    store
        .update(a.id(), &mut |_: &mut MessageRecord| {
            Ok(Effects {
                complete: vec![route(&a)],
                ..Default::default()
            })
        })
        .await
        .unwrap();
    assert!(!store.renew_lease(route(&a), renewed).await.unwrap());
    assert_eq!(
        store.release_leases().await.unwrap(),
        1,
        "only b's lease is left"
    );
}

pub async fn next_due_and_empty_queue(f: &Fixture) {
    let store = &*f.store;
    assert_eq!(store.next_due().await.unwrap(), None);
    assert_eq!(
        store.queue_stats(Utc::now()).await.unwrap(),
        QueueStats::default()
    );
    let rec = accept(store, b"<a/>").await;
    let future = Utc::now() + TimeDelta::days(1);
    store
        .update(rec.id(), &mut |_: &mut MessageRecord| {
            Ok(Effects {
                schedule: vec![(Job::Route { message: rec.id() }, future)],
                ..Default::default()
            })
        })
        .await
        .unwrap();
    let next = store.next_due().await.unwrap().unwrap();
    assert_eq!(next.timestamp_millis(), future.timestamp_millis());
    assert!(store
        .claim_due(Utc::now(), 10, future)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_due(Utc::now(), 0, future)
        .await
        .unwrap()
        .is_empty());
}

pub async fn list_filters_and_pages(f: &Fixture) {
    let store = &*f.store;
    let old = Utc::now() - TimeDelta::hours(3);
    let mut ids = Vec::new();
    for i in 0..6u32 {
        // The first two were received three hours ago.
        let at = if i < 2 { old } else { Utc::now() };
        let rec = record_at(at, b"<a/>");
        store
            .accept(
                &rec,
                Bytes::from_static(b"<a/>"),
                received_event(&rec),
                None,
            )
            .await
            .unwrap();
        let tenant = if i % 2 == 0 { "kommune-a" } else { "kommune-b" };
        let state = if i % 3 == 0 {
            MessageState::Rejected
        } else {
            MessageState::Routed
        };
        store
            .update(rec.id(), &mut |r: &mut MessageRecord| {
                r.envelope.tenant = Some(tenant.into());
                r.state = state;
                Ok(Effects::default())
            })
            .await
            .unwrap();
        ids.push(rec.id());
    }
    let ids_of =
        |page: &crate::Page| -> Vec<MessageId> { page.items.iter().map(|r| r.id()).collect() };

    let all = store.list(&MessageFilter::default()).await.unwrap();
    assert_eq!(ids_of(&all), ids);
    assert_eq!(all.next, None);

    let a = store
        .list(&MessageFilter {
            tenant: Some("kommune-a".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids_of(&a), [ids[0], ids[2], ids[4]]);

    let rejected = store
        .list(&MessageFilter {
            state: Some(MessageState::Rejected),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids_of(&rejected), [ids[0], ids[3]]);

    let both = store
        .list(&MessageFilter {
            tenant: Some("kommune-b".into()),
            state: Some(MessageState::Routed),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids_of(&both), [ids[1], ids[5]]);

    let recent = store
        .list(&MessageFilter {
            since: Some(old + TimeDelta::hours(1)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids_of(&recent), &ids[2..]);

    let nobody = store
        .list(&MessageFilter {
            tenant: Some("kommune-z".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(nobody.items.is_empty() && nobody.next.is_none());

    // Leistung, correlation id (any key) or idempotency key, time range.
    store
        .update(ids[1], &mut |r: &mut MessageRecord| {
            r.envelope.leistung = Some("99050012104000".into());
            r.envelope
                .correlation_ids
                .insert("x-correlation-id".into(), "antrag-4711".into());
            Ok(Effects::default())
        })
        .await
        .unwrap();
    store
        .update(ids[4], &mut |r: &mut MessageRecord| {
            r.envelope.leistung = Some("99050012104000".into());
            r.envelope.idempotency_key = Some("antrag-4711".into());
            Ok(Effects::default())
        })
        .await
        .unwrap();
    let by_leistung = store
        .list(&MessageFilter {
            leistung: Some("99050012104000".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids_of(&by_leistung), [ids[1], ids[4]]);
    let by_correlation = store
        .list(&MessageFilter {
            correlation: Some("antrag-4711".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids_of(&by_correlation), [ids[1], ids[4]]);
    let none = store
        .list(&MessageFilter {
            correlation: Some("antrag-0000".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(none.items.is_empty());
    let old_only = store
        .list(&MessageFilter {
            until: Some(old + TimeDelta::hours(1)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids_of(&old_only), &ids[..2]);
    let b_leistung = store
        .list(&MessageFilter {
            tenant: Some("kommune-b".into()),
            leistung: Some("99050012104000".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids_of(&b_leistung), [ids[1]]);

    // Paging: pages of 4 then 2, the cursor is the last id.
    let p1 = store
        .list(&MessageFilter {
            limit: 4,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids_of(&p1), &ids[..4]);
    assert_eq!(p1.next, Some(ids[3]));
    let p2 = store
        .list(&MessageFilter {
            limit: 4,
            after: p1.next,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids_of(&p2), &ids[4..]);
    assert_eq!(p2.next, None);

    // Paging through an index with a cursor.
    let a1 = store
        .list(&MessageFilter {
            tenant: Some("kommune-a".into()),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids_of(&a1), [ids[0], ids[2]]);
    let a2 = store
        .list(&MessageFilter {
            tenant: Some("kommune-a".into()),
            limit: 2,
            after: a1.next,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(ids_of(&a2), [ids[4]]);
    assert_eq!(a2.next, None);
}

pub async fn list_caps_the_page_size(f: &Fixture) {
    let store = Arc::clone(&f.store);
    let n = MAX_PAGE_SIZE + 3;
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { accept(store.as_ref(), b"<a/>").await.id() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let page = store
        .list(&MessageFilter {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), MAX_PAGE_SIZE);
    let rest = store
        .list(&MessageFilter {
            limit: 10_000,
            after: page.next,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 3);
    assert_eq!(rest.next, None);
    assert!(page.items.last().unwrap().id() < rest.items[0].id());
}

pub async fn works_behind_dyn_store(f: &Fixture) {
    let store: Arc<dyn Store> = Arc::clone(&f.store);
    let rec = accept(store.as_ref(), b"<a/>").await;
    assert!(store.get(rec.id()).await.unwrap().is_some());
    store.flush().await.unwrap();
}

/// A pass-through output (byte-identical to the payload) is stored as a
/// reference, and reads back as the payload; other outputs are stored as
/// they are.
pub async fn pass_through_outputs_read_back_as_the_payload(f: &Fixture) {
    let store = &*f.store;
    let rec = accept(store, b"<antrag>1</antrag>").await;
    let id = rec.id();
    store
        .update(id, &mut |r: &mut MessageRecord| {
            r.state = MessageState::Routed;
            Ok(Effects {
                outputs: vec![
                    (0, Bytes::from_static(b"<antrag>1</antrag>")),
                    (1, Bytes::from_static(b"<antrag>2</antrag>")),
                    (2, Bytes::new()),
                ],
                ..Effects::default()
            })
        })
        .await
        .unwrap();
    assert_eq!(
        store.output(id, 0).await.unwrap().unwrap(),
        Bytes::from_static(b"<antrag>1</antrag>")
    );
    assert_eq!(
        store.output(id, 1).await.unwrap().unwrap(),
        Bytes::from_static(b"<antrag>2</antrag>")
    );
    assert_eq!(store.output(id, 2).await.unwrap().unwrap(), Bytes::new());
    assert_eq!(store.output(id, 3).await.unwrap(), None);
}

pub async fn config_snapshots_round_trip(f: &Fixture) {
    let store = &*f.store;
    assert_eq!(store.config_snapshot("abc123").await.unwrap(), None);
    store
        .put_config_snapshot("abc123", "[tenant]")
        .await
        .unwrap();
    assert_eq!(
        store.config_snapshot("abc123").await.unwrap().as_deref(),
        Some("[tenant]")
    );
    // Storing the same digest again is harmless.
    store
        .put_config_snapshot("abc123", "[tenant]")
        .await
        .unwrap();
    assert_eq!(store.config_snapshot("other").await.unwrap(), None);
    store.flush().await.unwrap();
    store.ready().await.unwrap();
}

/// `referenced_blobs` names the candidates an attachment of a stored
/// message references, until retention purged the message's payload.
pub async fn referenced_blobs_are_the_attached_ones_until_purged(f: &Fixture) {
    let store = &*f.store;
    let blob = BlobRef {
        sha256: "ab".repeat(32),
        size: 3,
    };
    let other = "cd".repeat(32);
    assert!(store
        .referenced_blobs(std::collections::HashSet::new())
        .await
        .unwrap()
        .is_empty());
    let (rec, _) = accept_with(store, b"<a/>", None, std::slice::from_ref(&blob)).await;
    let candidates = [blob.sha256.clone(), other.clone()].into_iter().collect();
    let found = store.referenced_blobs(candidates).await.unwrap();
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        std::slice::from_ref(&blob.sha256)
    );
    assert_eq!(store.blob_references(&blob.sha256).await.unwrap(), 1);
    assert_eq!(store.blob_references(&other).await.unwrap(), 0);

    finish(store, rec.id(), MessageState::Delivered, None, b"<o/>").await;
    let r = purge_all(store, &RetentionPolicy::default(), later(31)).await;
    assert_eq!((r.payloads, r.blobs_unreferenced), (1, 1));
    let candidates = [blob.sha256.clone()].into_iter().collect();
    assert!(store.referenced_blobs(candidates).await.unwrap().is_empty());
    assert_eq!(
        store.unreferenced_blobs(10).await.unwrap(),
        std::slice::from_ref(&blob.sha256)
    );
    // Referenced again by a new message: no longer a candidate, and
    // forgetting it is a no-op while referenced.
    accept_with(store, b"<b/>", None, std::slice::from_ref(&blob)).await;
    assert!(store.unreferenced_blobs(10).await.unwrap().is_empty());
    store.forget_unreferenced_blob(&blob.sha256).await.unwrap();
    assert_eq!(store.blob_references(&blob.sha256).await.unwrap(), 1);
}

// ---------------------------------------------------------------------------
// Blob stores (only what the `BlobStore` trait shows)

pub async fn blob_put_and_open_stream_a_few_megabytes(f: &Fixture) {
    let blobs = &*f.blobs;
    let len = 3 * MB + 17;
    let blob = blobs
        .put(Box::pin(Generated::new(7, len)), 4 * MB)
        .await
        .unwrap();
    let expected = sha_of(7, len).await;
    assert_eq!(
        blob,
        BlobRef {
            sha256: expected.clone(),
            size: len
        }
    );
    assert!(blobs.contains(&blob).await.unwrap());
    let (sha, total) = sha_of_reader(blobs.open(&blob).await.unwrap()).await;
    assert_eq!((sha, total), (expected, len));
}

pub async fn blob_limit_is_enforced(f: &Fixture) {
    let blobs = &*f.blobs;
    let err = blobs
        .put(Box::pin(Generated::new(1, MB + 1)), MB)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BlobError::TooLarge { limit } if limit == MB),
        "{err}"
    );
    let refused = BlobRef {
        sha256: sha_of(1, MB + 1).await,
        size: MB + 1,
    };
    assert!(!blobs.contains(&refused).await.unwrap(), "nothing stored");
    // Exactly at the limit is fine.
    let blob = blobs
        .put(Box::pin(Generated::new(1, MB)), MB)
        .await
        .unwrap();
    assert_eq!(blob.size, MB);
}

pub async fn blob_identical_content_is_stored_once(f: &Fixture) {
    let blobs = &*f.blobs;
    let a = blobs
        .put(Box::pin(Generated::new(3, 100_000)), MB)
        .await
        .unwrap();
    let b = blobs
        .put(Box::pin(Generated::new(3, 100_000)), MB)
        .await
        .unwrap();
    let c = blobs
        .put(Box::pin(Generated::new(4, 100_000)), MB)
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_ne!(a.sha256, c.sha256);
    let empty = blobs.put(Box::pin(tokio::io::empty()), MB).await.unwrap();
    assert_eq!(empty.size, 0);
    assert_eq!(
        empty.sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert!(blobs.contains(&empty).await.unwrap());
    let (sha, n) = sha_of_reader(blobs.open(&empty).await.unwrap()).await;
    assert_eq!((sha, n), (empty.sha256.clone(), 0));
}

pub async fn blob_missing_and_foreign_refs(f: &Fixture) {
    let blobs = &*f.blobs;
    let missing = BlobRef {
        sha256: "ab".repeat(32),
        size: 1,
    };
    assert!(!blobs.contains(&missing).await.unwrap());
    assert!(matches!(
        blobs.open(&missing).await.err().unwrap(),
        BlobError::NotFound(_)
    ));
    // A reference that is not a hash never names anything.
    for bad in ["../secret", "secret", &"AB".repeat(32), ""] {
        let r = BlobRef {
            sha256: bad.to_string(),
            size: 1,
        };
        assert!(!blobs.contains(&r).await.unwrap(), "{bad}");
        assert!(
            matches!(blobs.open(&r).await.err().unwrap(), BlobError::NotFound(_)),
            "{bad}"
        );
    }
    // A reference whose size differs from the stored blob's.
    let blob = blobs
        .put(Box::pin(Generated::new(9, 1000)), MB)
        .await
        .unwrap();
    let wrong = BlobRef {
        size: 999,
        ..blob.clone()
    };
    assert!(!blobs.contains(&wrong).await.unwrap());
    assert!(matches!(
        blobs.open(&wrong).await.err().unwrap(),
        BlobError::Corrupt { .. }
    ));
}

/// A reader that fails midway: nothing is stored.
pub async fn blob_a_reader_error_stores_nothing(f: &Fixture) {
    struct Failing(u32);
    impl AsyncRead for Failing {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if self.0 == 0 {
                return Poll::Ready(Err(io::Error::other("connection reset")));
            }
            self.0 -= 1;
            buf.put_slice(&[0u8; 1000]);
            Poll::Ready(Ok(()))
        }
    }
    let blobs = &*f.blobs;
    let err = blobs.put(Box::pin(Failing(5)), MB).await.unwrap_err();
    assert!(matches!(err, BlobError::Io(_)), "{err}");
    let partial = BlobRef {
        sha256: sha256_hex(&[0u8; 5000]),
        size: 5000,
    };
    assert!(!blobs.contains(&partial).await.unwrap());
}

pub async fn blob_a_discarded_staging_removes_the_blob(f: &Fixture) {
    let blobs = &*f.blobs;
    let blob = blobs
        .stage(Box::pin(Generated::new(1, 70_000)), MB)
        .await
        .unwrap();
    assert!(blobs.contains(&blob).await.unwrap());
    blobs.discard_staged(&blob).await.unwrap();
    assert!(!blobs.contains(&blob).await.unwrap());
}

pub async fn blob_a_kept_staging_stays(f: &Fixture) {
    let blobs = &*f.blobs;
    let blob = blobs
        .stage(Box::pin(Generated::new(2, 1000)), MB)
        .await
        .unwrap();
    blobs.keep_staged(&blob).await.unwrap();
    assert!(blobs.contains(&blob).await.unwrap());
    // A later staging of the same content that is discarded leaves the
    // stored blob alone: the content existed before it.
    let again = blobs
        .stage(Box::pin(Generated::new(2, 1000)), MB)
        .await
        .unwrap();
    assert_eq!(again, blob);
    blobs.discard_staged(&again).await.unwrap();
    assert!(blobs.contains(&blob).await.unwrap());
}

pub async fn blob_shared_content_stays_until_the_last_staging_ends(f: &Fixture) {
    let blobs = &*f.blobs;
    let stage = |seed| blobs.stage(Box::pin(Generated::new(seed, 5000)), MB);
    let first = stage(3).await.unwrap();
    let second = stage(3).await.unwrap();
    assert_eq!(first, second);
    // One request gives up; the other is still in flight.
    blobs.discard_staged(&first).await.unwrap();
    assert!(blobs.contains(&second).await.unwrap());
    // The other is accepted: the content stays for good.
    blobs.keep_staged(&second).await.unwrap();
    assert!(blobs.contains(&second).await.unwrap());

    // Two stagings, both discarded: gone.
    let a = stage(4).await.unwrap();
    let b = stage(4).await.unwrap();
    blobs.discard_staged(&a).await.unwrap();
    assert!(blobs.contains(&b).await.unwrap());
    blobs.discard_staged(&b).await.unwrap();
    assert!(!blobs.contains(&b).await.unwrap());

    // A plain put of staged content makes it stay.
    let staged = stage(5).await.unwrap();
    let put = blobs
        .put(Box::pin(Generated::new(5, 5000)), MB)
        .await
        .unwrap();
    assert_eq!(staged, put);
    blobs.discard_staged(&staged).await.unwrap();
    assert!(blobs.contains(&put).await.unwrap());
}

// ---------------------------------------------------------------------------
// Adapter state spaces

pub async fn state_put_get_delete_and_spaces_are_separate(f: &Fixture) {
    let store = Arc::clone(&f.store);
    let a = StateSpace::new(store.clone(), "a").unwrap();
    // "ab" + "c" must not meet "a" + "bc": names are length-prefixed.
    let ab = StateSpace::new(store.clone(), "ab").unwrap();

    let mut tx = a.begin();
    assert_eq!(tx.get(b"bc").await.unwrap(), None);
    tx.put(b"bc", Bytes::from_static(b"one"));
    tx.put(b"x", Bytes::from_static(b"two"));
    assert_eq!(tx.get(b"bc").await.unwrap().as_deref(), Some(&b"one"[..]));
    assert!(tx.commit().await.unwrap());

    assert_eq!(a.get(b"bc").await.unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(ab.get(b"c").await.unwrap(), None);
    assert!(ab.scan(b"", None, 10).await.unwrap().is_empty());

    let mut tx = a.begin();
    tx.delete(b"bc");
    assert_eq!(tx.get(b"bc").await.unwrap(), None, "own delete is seen");
    assert!(tx.commit().await.unwrap());
    assert_eq!(a.get(b"bc").await.unwrap(), None);
    assert_eq!(a.get(b"x").await.unwrap().as_deref(), Some(&b"two"[..]));
}

pub async fn state_scans_page_by_prefix_in_key_order(f: &Fixture) {
    let store = Arc::clone(&f.store);
    let s = StateSpace::new(store.clone(), "mailboxes").unwrap();
    let mut tx = s.begin();
    for i in (0..25u32).rev() {
        tx.put(
            format!("alice\0{i:04}").as_bytes(),
            i.to_be_bytes().to_vec(),
        );
    }
    tx.put(b"alicf", Bytes::from_static(b"outside"));
    tx.put(b"alic", Bytes::from_static(b"outside"));
    assert!(tx.commit().await.unwrap());

    let first = s.scan(b"alice\0", None, 10).await.unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(first[0].0, b"alice\x000000");
    let next = s.scan(b"alice\0", Some(&first[9].0), 100).await.unwrap();
    assert_eq!(next.len(), 15);
    assert_eq!(next[0].0, b"alice\x000010");
    assert_eq!(next[14].0, b"alice\x000024");
    assert_eq!(next[14].1.as_ref(), 24u32.to_be_bytes());

    assert_eq!(s.scan_up_to(b"alice\0", 25).await.unwrap().len(), 25);
    assert_eq!(s.scan_up_to(b"alice\0", 100).await.unwrap().len(), 25);
    let first = s.scan_up_to(b"alice\0", 24).await.unwrap();
    assert_eq!(first.len(), 24, "the bound cuts the list");
    assert_eq!(first[23].0, b"alice\x000023");
    // The page is capped whatever the caller asks for; scan_up_to pages on.
    assert!(s.scan(b"", None, usize::MAX).await.unwrap().len() <= MAX_STATE_PAGE);
    let mut tx = s.begin();
    for i in 0..(MAX_STATE_PAGE as u32 + 500) {
        tx.put(format!("bob\0{i:06}").as_bytes(), Bytes::new());
    }
    assert!(tx.commit().await.unwrap());
    assert_eq!(
        s.scan_up_to(b"bob\0", 10_000).await.unwrap().len(),
        MAX_STATE_PAGE + 500
    );
    let some = s.scan_up_to(b"bob\0", MAX_STATE_PAGE + 200).await.unwrap();
    assert_eq!(some.len(), MAX_STATE_PAGE + 200);
    assert_eq!(
        some.last().unwrap().0,
        format!("bob\0{:06}", MAX_STATE_PAGE + 199).into_bytes()
    );
}

pub async fn state_a_commit_over_a_changed_read_writes_nothing(f: &Fixture) {
    let store = Arc::clone(&f.store);
    let s = StateSpace::new(store.clone(), "s").unwrap();

    // Two transactions both find the key absent and create it: one wins.
    let mut t1 = s.begin();
    let mut t2 = s.begin();
    assert_eq!(t1.get(b"k").await.unwrap(), None);
    assert_eq!(t2.get(b"k").await.unwrap(), None);
    t1.put(b"k", Bytes::from_static(b"1"));
    t1.put(b"other", Bytes::from_static(b"1"));
    t2.put(b"k", Bytes::from_static(b"2"));
    t2.put(b"other", Bytes::from_static(b"2"));
    assert!(t2.commit().await.unwrap());
    assert!(!t1.commit().await.unwrap(), "t1 read a key t2 changed");
    assert_eq!(s.get(b"k").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(s.get(b"other").await.unwrap().as_deref(), Some(&b"2"[..]));

    // A deleted key read as present conflicts too.
    let mut t3 = s.begin();
    assert!(t3.get(b"k").await.unwrap().is_some());
    let mut t4 = s.begin();
    t4.delete(b"k");
    assert!(t4.commit().await.unwrap());
    t3.put(b"k", Bytes::from_static(b"3"));
    assert!(!t3.commit().await.unwrap());
    assert_eq!(s.get(b"k").await.unwrap(), None);
}

pub async fn state_held_blobs_count_with_messages_and_commit_with_the_state(f: &Fixture) {
    let store = Arc::clone(&f.store);
    let blobs = &*f.blobs;
    let s = StateSpace::new(store.clone(), "uploads").unwrap();
    let blob = stage_bytes(blobs, b"an encrypted upload, held by a state record").await;
    let sha = blob.sha256.clone();

    // A hold commits with the write that names the blob.
    let mut tx = s.begin();
    assert_eq!(tx.get(b"rec").await.unwrap(), None);
    tx.put(b"rec", sha.clone().into_bytes());
    tx.hold_blob(&sha);
    assert!(tx.commit().await.unwrap());
    blobs.keep_staged(&blob).await.unwrap();
    assert_eq!(store.blob_references(&sha).await.unwrap(), 1);
    let one = [sha.clone()].into_iter().collect();
    assert_eq!(store.referenced_blobs(one).await.unwrap().len(), 1);
    assert!(store.unreferenced_blobs(10).await.unwrap().is_empty());

    // A message referencing the same content adds to the count.
    let (rec, _) = accept_with(&*store, b"<a/>", None, std::slice::from_ref(&blob)).await;
    assert_eq!(store.blob_references(&sha).await.unwrap(), 2);

    // A release whose commit conflicts gives nothing back.
    let mut stale = s.begin();
    assert!(stale.get(b"rec").await.unwrap().is_some());
    s.update(|mut tx| async move {
        tx.put(b"rec", Bytes::from_static(b"changed"));
        Ok((tx, ()))
    })
    .await
    .unwrap();
    stale.delete(b"rec");
    stale.release_blob(&sha);
    assert!(!stale.commit().await.unwrap());
    assert_eq!(store.blob_references(&sha).await.unwrap(), 2);

    // Released by the state, still held by the message.
    let mut tx = s.begin();
    tx.delete(b"rec");
    tx.release_blob(&sha);
    assert!(tx.commit().await.unwrap());
    assert_eq!(store.blob_references(&sha).await.unwrap(), 1);
    assert!(store.unreferenced_blobs(10).await.unwrap().is_empty());

    // The message purged: no reference left, a collection candidate.
    finish(&*store, rec.id(), MessageState::Delivered, None, b"<o/>").await;
    let r = purge_all(&*store, &RetentionPolicy::default(), later(31)).await;
    assert_eq!(r.blobs_unreferenced, 1);
    assert_eq!(store.blob_references(&sha).await.unwrap(), 0);
    assert_eq!(
        store.unreferenced_blobs(10).await.unwrap(),
        std::slice::from_ref(&sha)
    );

    // Held again by a state commit that writes nothing else: no longer
    // a candidate; a hold and a release in one commit cancel out.
    let mut tx = s.begin();
    tx.hold_blob(&sha);
    assert!(tx.commit().await.unwrap());
    assert_eq!(store.blob_references(&sha).await.unwrap(), 1);
    assert!(store.unreferenced_blobs(10).await.unwrap().is_empty());
    let mut tx = s.begin();
    tx.hold_blob(&sha);
    tx.release_blob(&sha);
    assert!(tx.is_empty());
    assert!(tx.commit().await.unwrap());
    assert_eq!(store.blob_references(&sha).await.unwrap(), 1);
}

pub async fn state_concurrent_increments_lose_nothing(f: &Fixture) {
    let store = Arc::clone(&f.store);
    let s = StateSpace::new(store.clone(), "counter").unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                for _ in 0..40 {
                    s.update(|mut tx| async move {
                        let n = tx
                            .get(b"n")
                            .await?
                            .map_or(0, |v| u64::from_be_bytes(v.as_ref().try_into().unwrap()));
                        tx.put(b"n", (n + 1).to_be_bytes().to_vec());
                        Ok((tx, ()))
                    })
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let n = s.get(b"n").await.unwrap().unwrap();
    assert_eq!(u64::from_be_bytes(n.as_ref().try_into().unwrap()), 320);
}

pub async fn state_bad_space_names_are_refused(f: &Fixture) {
    let store = Arc::clone(&f.store);
    for name in ["", "a\0b", &"x".repeat(201)] {
        assert!(StateSpace::new(store.clone(), name).is_err(), "{name:?}");
        assert!(store.state_get(name, b"k").await.is_err(), "{name:?}");
    }
}

// ---------------------------------------------------------------------------
// Retention

pub async fn retention_delivered_messages_lose_payload_then_record_and_dead_ones_stay(f: &Fixture) {
    let store = &*f.store;
    let policy = RetentionPolicy::default(); // 30d payloads, 365d records, failed kept
    let mut delivered = Vec::new();
    for i in 0..4 {
        let payload = format!("<antrag>{i}</antrag>");
        let (rec, out) =
            accept_with(store, payload.as_bytes(), Some(&format!("key-{i}")), &[]).await;
        assert_eq!(out, AcceptOutcome::Created);
        finish(store, rec.id(), MessageState::Delivered, None, b"<out/>").await;
        delivered.push((rec, payload));
    }
    let dead = accept(store, b"<dead/>").await;
    finish(store, dead.id(), MessageState::Dead, None, b"<o/>").await;
    let open = accept(store, b"<still-routing/>").await;

    // Nothing is due before 30 days.
    let r = store.purge_expired(&policy, later(29), 500).await.unwrap();
    assert_eq!((r.payloads, r.records), (0, 0));

    // Stage 1 after 30 days: payload and outputs go, the record stays.
    let r = purge_all(store, &policy, later(31)).await;
    assert_eq!((r.payloads, r.records), (4, 0));
    assert_eq!(
        r.bytes,
        delivered
            .iter()
            .map(|(_, p)| p.len() as u64 + 6)
            .sum::<u64>()
    );
    for (rec, _) in &delivered {
        let id = rec.id();
        let stored = store.get(id).await.unwrap().unwrap();
        assert!(stored.payload_purged_at.is_some());
        assert_eq!(stored.state, MessageState::Delivered);
        assert!(matches!(store.payload(id).await, Err(StoreError::Purged(x)) if x == id));
        assert!(matches!(
            store.output(id, 0).await,
            Err(StoreError::Purged(_))
        ));
        let audit = store.audit(id).await.unwrap();
        let last = audit.last().unwrap();
        assert_eq!(last.action, "payload_purged");
        assert!(last.detail.contains("30d"), "{}", last.detail);
    }
    // The dead and the open message are untouched.
    assert_eq!(
        store.payload(dead.id()).await.unwrap().unwrap(),
        Bytes::from_static(b"<dead/>")
    );
    assert_eq!(
        store.payload(open.id()).await.unwrap().unwrap(),
        Bytes::from_static(b"<still-routing/>")
    );
    let counts = store.count_by_state().await.unwrap();
    assert_eq!(count(&counts, MessageState::Delivered), 4);

    // A duplicate still finds the message while its record lives.
    let (_, out) = accept_with(store, b"<antrag>0</antrag>", Some("key-0"), &[]).await;
    assert_eq!(out, AcceptOutcome::Duplicate(delivered[0].0.id()));

    // Stage 2 after 365 days: everything of the delivered messages goes.
    let r = purge_all(store, &policy, later(366)).await;
    assert_eq!((r.payloads, r.records), (0, 4));
    for (rec, _) in &delivered {
        assert_eq!(store.get(rec.id()).await.unwrap(), None);
        assert_eq!(store.payload(rec.id()).await.unwrap(), None);
        assert!(store.audit(rec.id()).await.unwrap().is_empty());
    }
    let counts = store.count_by_state().await.unwrap();
    assert_eq!(count(&counts, MessageState::Delivered), 0);
    assert_eq!(count(&counts, MessageState::Dead), 1);
    assert_eq!(count(&counts, MessageState::Received), 1);
    let page = store
        .list(&MessageFilter {
            state: Some(MessageState::Delivered),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page.items.is_empty());
    // The idempotency key expired with its message: the sender may use
    // it again.
    let (_, out) = accept_with(store, b"<antrag>0</antrag>", Some("key-0"), &[]).await;
    assert_eq!(out, AcceptOutcome::Created);
    // The dead message is kept until handled.
    assert!(store.get(dead.id()).await.unwrap().is_some());
    assert!(store.payload(dead.id()).await.unwrap().is_some());
}

pub async fn retention_tenants_have_their_own_durations_and_failed_messages_a_maximum(f: &Fixture) {
    let store = &*f.store;
    let policy = RetentionPolicy {
        default: Retention {
            payloads: days(30),
            records: days(30),
            failed: days(90),
        },
        tenants: HashMap::from([(
            "kurz".to_owned(),
            Retention {
                payloads: days(1),
                records: days(2),
                failed: None,
            },
        )]),
    };
    let short = accept(store, b"<a/>").await;
    finish(
        store,
        short.id(),
        MessageState::Delivered,
        Some("kurz"),
        b"<o/>",
    )
    .await;
    let long = accept(store, b"<b/>").await;
    finish(
        store,
        long.id(),
        MessageState::Delivered,
        Some("lang"),
        b"<o/>",
    )
    .await;
    let short_dead = accept(store, b"<c/>").await;
    finish(
        store,
        short_dead.id(),
        MessageState::Dead,
        Some("kurz"),
        b"<o/>",
    )
    .await;
    let rejected = accept(store, b"<d/>").await;
    finish(store, rejected.id(), MessageState::Rejected, None, b"<o/>").await;

    let r = purge_all(store, &policy, later(3)).await;
    assert_eq!(
        (r.payloads, r.records),
        (1, 1),
        "only the short tenant's delivered message"
    );
    assert_eq!(store.get(short.id()).await.unwrap(), None);
    assert!(store.payload(long.id()).await.unwrap().is_some());

    let r = purge_all(store, &policy, later(31)).await;
    assert_eq!((r.payloads, r.records), (1, 1));
    assert_eq!(store.get(long.id()).await.unwrap(), None);

    // Rejected (default: failed = 90d) goes after its maximum; the short
    // tenant keeps dead messages until handled.
    let r = purge_all(store, &policy, later(91)).await;
    assert_eq!((r.payloads, r.records), (1, 1));
    assert_eq!(store.get(rejected.id()).await.unwrap(), None);
    let r = purge_all(store, &policy, later(10_000)).await;
    assert_eq!((r.payloads, r.records), (0, 0));
    assert!(store.payload(short_dead.id()).await.unwrap().is_some());
}

pub async fn retention_purges_run_in_bounded_batches(f: &Fixture) {
    let store = &*f.store;
    let policy = RetentionPolicy::default();
    for i in 0..12 {
        let rec = accept(store, format!("<m>{i}</m>").as_bytes()).await;
        finish(store, rec.id(), MessageState::Delivered, None, b"<o/>").await;
    }
    let mut batches = Vec::new();
    loop {
        let r = store.purge_expired(&policy, later(31), 5).await.unwrap();
        batches.push(r.payloads);
        if !r.more {
            break;
        }
    }
    assert_eq!(batches, [5, 5, 2, 0]);
}

pub async fn retention_a_replay_takes_the_message_out_and_restarts_its_clock(f: &Fixture) {
    let store = &*f.store;
    let policy = RetentionPolicy::default();
    let rec = accept(store, b"<a/>").await;
    let id = rec.id();
    finish(store, id, MessageState::Dead, None, b"<o/>").await;
    store
        .update(id, &mut |r: &mut MessageRecord| {
            r.state = MessageState::Delivering;
            Ok(Effects::default())
        })
        .await
        .unwrap();
    let never = RetentionPolicy {
        default: Retention {
            failed: days(1),
            ..Retention::default()
        },
        ..Default::default()
    };
    let r = purge_all(store, &never, later(400)).await;
    assert_eq!(r.payloads, 0, "a message in the pipeline is never purged");
    finish(store, id, MessageState::Delivered, None, b"<o/>").await;
    let r = purge_all(store, &policy, later(31)).await;
    assert_eq!(r.payloads, 1);
}

pub async fn retention_a_shared_blob_stays_until_its_last_reference_goes(f: &Fixture) {
    let store = &*f.store;
    let blobs = &*f.blobs;
    let content: &'static [u8] = b"%PDF-1.7 the same attachment twice";
    let blob = stage_bytes(blobs, content).await;
    let (first, _) = accept_with(store, b"<a/>", None, std::slice::from_ref(&blob)).await;
    blobs.keep_staged(&blob).await.unwrap();
    let again = stage_bytes(blobs, content).await;
    assert_eq!(again, blob, "deduplicated by content");
    let (second, _) = accept_with(store, b"<b/>", None, std::slice::from_ref(&blob)).await;
    blobs.keep_staged(&blob).await.unwrap();
    assert_eq!(store.blob_references(&blob.sha256).await.unwrap(), 2);

    let policy = RetentionPolicy {
        default: Retention {
            payloads: days(1),
            ..Retention::default()
        },
        ..Default::default()
    };
    finish(store, first.id(), MessageState::Delivered, None, b"<o/>").await;
    let r = purge_all(store, &policy, later(2)).await;
    assert_eq!((r.payloads, r.blobs_unreferenced), (1, 0));
    assert_eq!(store.blob_references(&blob.sha256).await.unwrap(), 1);
    assert!(store.unreferenced_blobs(10).await.unwrap().is_empty());
    assert!(blobs.contains(&blob).await.unwrap());

    finish(store, second.id(), MessageState::Delivered, None, b"<o/>").await;
    let r = purge_all(store, &policy, later(2)).await;
    assert_eq!((r.payloads, r.blobs_unreferenced), (1, 1));
    assert_eq!(
        store.unreferenced_blobs(10).await.unwrap(),
        std::slice::from_ref(&blob.sha256)
    );

    let check_store = Arc::clone(&f.store);
    let sha = blob.sha256.clone();
    let unreferenced = move || {
        let (store, sha) = (check_store.clone(), sha.clone());
        Box::pin(async move { store.blob_references(&sha).await.is_ok_and(|n| n == 0) })
            as std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
    };
    // A staging of the same content in flight keeps it.
    let held = stage_bytes(blobs, content).await;
    assert!(!blobs
        .remove_unreferenced(&blob.sha256, &unreferenced)
        .await
        .unwrap());
    assert!(blobs.contains(&blob).await.unwrap());
    blobs.discard_staged(&held).await.unwrap();
    assert!(
        blobs.contains(&blob).await.unwrap(),
        "a discard never removes content stored earlier"
    );

    // Then it goes, and the candidate with it.
    assert!(blobs
        .remove_unreferenced(&blob.sha256, &unreferenced)
        .await
        .unwrap());
    assert!(!blobs.contains(&blob).await.unwrap());
    store.forget_unreferenced_blob(&blob.sha256).await.unwrap();
    assert!(store.unreferenced_blobs(10).await.unwrap().is_empty());

    // New content with the same bytes is stored again and counted.
    let back = stage_bytes(blobs, content).await;
    let (_, out) = accept_with(store, b"<c/>", None, std::slice::from_ref(&back)).await;
    assert_eq!(out, AcceptOutcome::Created);
    blobs.keep_staged(&back).await.unwrap();
    assert!(blobs.contains(&back).await.unwrap());
    assert_eq!(store.blob_references(&back.sha256).await.unwrap(), 1);
}
