//! Behaviour of `SledStore` on a real sled database in a temp dir.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use drehscheibe_model::{
    sha256_hex, AuditEvent, Envelope, MessageId, MessageRecord, MessageState, SenderIdentity,
};
use drehscheibe_store::{
    AcceptOutcome, Effects, FsBlobStore, IdempotencyKey, Job, MessageFilter, QueueStats, SledStore,
    Store, StoreError, MAX_PAGE_SIZE,
};

fn record_at(received_at: DateTime<Utc>, payload: &[u8]) -> MessageRecord {
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

fn received_event(rec: &MessageRecord) -> AuditEvent {
    AuditEvent::new(rec.id(), "intake:http:portal", "received", None, rec.state)
}

/// Accept a fresh message with `payload`; returns its record.
async fn accept(store: &dyn Store, payload: &'static [u8]) -> MessageRecord {
    let rec = record_at(Utc::now(), payload);
    let out = store
        .accept(
            &rec,
            Bytes::from_static(payload),
            received_event(&rec),
            None,
        )
        .await
        .unwrap();
    assert_eq!(out, AcceptOutcome::Created);
    rec
}

fn count(counts: &[(MessageState, u64)], state: MessageState) -> u64 {
    counts
        .iter()
        .find(|(s, _)| *s == state)
        .map(|(_, n)| *n)
        .unwrap()
}

#[tokio::test]
async fn accept_get_payload_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let rec = accept(&store, b"<antrag>1</antrag>").await;

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

/// The stored event must be the one handed in (same fields).
fn received_event_like(stored: &AuditEvent, rec: &MessageRecord) -> AuditEvent {
    let mut ev = received_event(rec);
    ev.at = stored.at;
    ev
}

#[tokio::test]
async fn idempotency_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let key = |channel: &str, payload: &[u8]| IdempotencyKey {
        channel: channel.into(),
        sender: "http:portal-a".into(),
        key: "antrag-42".into(),
        payload_sha256: sha256_hex(payload),
    };

    let first = record_at(Utc::now(), b"<a/>");
    let out = store
        .accept(
            &first,
            Bytes::from_static(b"<a/>"),
            received_event(&first),
            Some(key("ch", b"<a/>")),
        )
        .await
        .unwrap();
    assert_eq!(out, AcceptOutcome::Created);

    // Same key, same payload: the first id, nothing stored.
    let retry = record_at(Utc::now(), b"<a/>");
    let out = store
        .accept(
            &retry,
            Bytes::from_static(b"<a/>"),
            received_event(&retry),
            Some(key("ch", b"<a/>")),
        )
        .await
        .unwrap();
    assert_eq!(out, AcceptOutcome::Duplicate(first.id()));
    assert_eq!(store.get(retry.id()).await.unwrap(), None);
    assert_eq!(store.payload(retry.id()).await.unwrap(), None);
    assert!(store.audit(retry.id()).await.unwrap().is_empty());

    // Same key, other payload: conflict, nothing stored.
    let other = record_at(Utc::now(), b"<b/>");
    let out = store
        .accept(
            &other,
            Bytes::from_static(b"<b/>"),
            received_event(&other),
            Some(key("ch", b"<b/>")),
        )
        .await
        .unwrap();
    assert_eq!(out, AcceptOutcome::KeyConflict(first.id()));
    assert_eq!(store.get(other.id()).await.unwrap(), None);

    // Same key on another channel is another message.
    let elsewhere = record_at(Utc::now(), b"<b/>");
    let out = store
        .accept(
            &elsewhere,
            Bytes::from_static(b"<b/>"),
            received_event(&elsewhere),
            Some(key("other-channel", b"<b/>")),
        )
        .await
        .unwrap();
    assert_eq!(out, AcceptOutcome::Created);

    // Same key and channel from another sender is another message.
    let other_sender = record_at(Utc::now(), b"<a/>");
    let out = store
        .accept(
            &other_sender,
            Bytes::from_static(b"<a/>"),
            received_event(&other_sender),
            Some(IdempotencyKey {
                sender: "http:portal-b".into(),
                ..key("ch", b"<a/>")
            }),
        )
        .await
        .unwrap();
    assert_eq!(out, AcceptOutcome::Created);

    let stats = store.queue_stats(Utc::now()).await.unwrap();
    assert_eq!(stats.depth, 3, "only the three created messages are queued");
    let counts = store.count_by_state().await.unwrap();
    assert_eq!(count(&counts, MessageState::Received), 3);
}

#[tokio::test]
async fn accepting_the_same_id_twice_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let rec = accept(&store, b"<a/>").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_commits_record_and_effects() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let rec = accept(&store, b"<a/>").await;
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

#[tokio::test]
async fn an_update_that_changes_nothing_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let rec = accept(&store, b"<a/>").await;
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

#[tokio::test]
async fn failed_update_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let rec = accept(&store, b"<a/>").await;
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

#[tokio::test]
async fn claim_lease_and_release() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let a = accept(&store, b"<a/>").await;
    let b = accept(&store, b"<b/>").await;
    let c = accept(&store, b"<c/>").await;
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

#[tokio::test]
async fn renewing_a_lease_keeps_the_job_from_a_second_claim() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let a = accept(&store, b"<a/>").await;
    let b = accept(&store, b"<b/>").await;
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

#[tokio::test]
async fn next_due_and_empty_queue() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.next_due().await.unwrap(), None);
    assert_eq!(
        store.queue_stats(Utc::now()).await.unwrap(),
        QueueStats::default()
    );
    let rec = accept(&store, b"<a/>").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
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
    let ids_of = |page: &drehscheibe_store::Page| -> Vec<MessageId> {
        page.items.iter().map(|r| r.id()).collect()
    };

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_caps_the_page_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_queue_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let key = IdempotencyKey {
        channel: "ch".into(),
        sender: "http:portal-a".into(),
        key: "k1".into(),
        payload_sha256: sha256_hex(b"<a/>"),
    };
    let (rec, routed) = {
        let store = SledStore::open(dir.path()).unwrap();
        let rec = record_at(Utc::now(), b"<a/>");
        store
            .accept(
                &rec,
                Bytes::from_static(b"<a/>"),
                received_event(&rec),
                Some(key.clone()),
            )
            .await
            .unwrap();
        let id = rec.id();
        let routed = store
            .update(id, &mut |r: &mut MessageRecord| {
                r.state = MessageState::Routed;
                Ok(Effects {
                    audit: vec![AuditEvent::new(id, "engine", "routed", None, r.state)],
                    outputs: vec![(0, Bytes::from_static(b"<out/>"))],
                    complete: vec![Job::Route { message: id }],
                    schedule: vec![(
                        Job::Deliver {
                            message: id,
                            delivery: 0,
                        },
                        Utc::now(),
                    )],
                })
            })
            .await
            .unwrap();
        store
            .put_config_snapshot("abc123", "[tenant]")
            .await
            .unwrap();
        // Leave a lease behind, as a crash would.
        let now = Utc::now();
        assert_eq!(
            store
                .claim_due(now, 10, now + TimeDelta::hours(1))
                .await
                .unwrap()
                .len(),
            1
        );
        (rec, routed)
    };

    let store = SledStore::open(dir.path()).unwrap();
    let id = rec.id();
    assert_eq!(store.get(id).await.unwrap(), Some(routed));
    assert_eq!(
        store.payload(id).await.unwrap().unwrap(),
        Bytes::from_static(b"<a/>")
    );
    assert_eq!(
        store.output(id, 0).await.unwrap().unwrap(),
        Bytes::from_static(b"<out/>")
    );
    assert_eq!(store.audit(id).await.unwrap().len(), 2);
    assert_eq!(
        store.config_snapshot("abc123").await.unwrap().as_deref(),
        Some("[tenant]")
    );
    assert_eq!(store.config_snapshot("other").await.unwrap(), None);
    let counts = store.count_by_state().await.unwrap();
    assert_eq!(count(&counts, MessageState::Routed), 1);

    // Leases are process-local: the job leased before the restart is due
    // again at once.
    let now = Utc::now();
    assert_eq!(store.release_leases().await.unwrap(), 0);
    let claimed = store
        .claim_due(now, 10, now + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.job).collect::<Vec<_>>(),
        [Job::Deliver {
            message: id,
            delivery: 0
        }]
    );

    // The idempotency key is remembered.
    let retry = record_at(Utc::now(), b"<a/>");
    let out = store
        .accept(
            &retry,
            Bytes::from_static(b"<a/>"),
            received_event(&retry),
            Some(key),
        )
        .await
        .unwrap();
    assert_eq!(out, AcceptOutcome::Duplicate(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_accepts_share_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let flushes = store.flush_count();
    let requests = store.flush_requests();
    const N: u64 = 64;
    let tasks: Vec<_> = (0..N)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { accept(store.as_ref(), b"<a/>").await.id() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let flushes = store.flush_count() - flushes;
    assert_eq!(store.flush_requests() - requests, N);
    // How many accepts one flush serves depends on the machine (flush
    // time against transaction time; the unit test
    // `one_flush_serves_all_waiting_accepts` proves the grouping itself
    // with the flusher held back); concurrent accepts must share some.
    assert!(flushes >= 1);
    assert!(
        flushes < N,
        "{N} concurrent accepts took {flushes} flushes: none shared"
    );
    let counts = store.count_by_state().await.unwrap();
    assert_eq!(count(&counts, MessageState::Received), N);
}

#[tokio::test]
async fn corrupt_records_are_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = SledStore::open(dir.path()).unwrap();
        accept(&store, b"<a/>").await.id()
    };
    {
        // Same segment size as SledStore uses (sled refuses to reopen a
        // database with another one).
        let db = sled::Config::new()
            .path(dir.path().join("db"))
            .segment_size(8 * 1024 * 1024)
            .open()
            .unwrap();
        db.open_tree("messages")
            .unwrap()
            .insert(id.as_bytes(), &b"{not json"[..])
            .unwrap();
        let mut audit_key = id.as_bytes().to_vec();
        audit_key.extend_from_slice(&0u64.to_be_bytes());
        db.open_tree("audit")
            .unwrap()
            .insert(audit_key, &b"\xff"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    let hex_id = hex::encode(id.as_bytes());
    let is_corrupt = |e: StoreError| matches!(&e, StoreError::Corrupt(m) if m.contains(&hex_id));

    assert!(is_corrupt(store.get(id).await.unwrap_err()));
    assert!(is_corrupt(store.audit(id).await.unwrap_err()));
    assert!(is_corrupt(
        store.list(&MessageFilter::default()).await.unwrap_err()
    ));
    assert!(is_corrupt(
        store
            .list(&MessageFilter {
                state: Some(MessageState::Received),
                ..Default::default()
            })
            .await
            .unwrap_err()
    ));
    let mut ran = false;
    let err = store
        .update(id, &mut |_: &mut MessageRecord| {
            ran = true;
            Ok(Effects::default())
        })
        .await
        .unwrap_err();
    assert!(is_corrupt(err));
    assert!(!ran, "the closure never sees a corrupt record");
}

#[tokio::test]
async fn works_behind_dyn_store() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let rec = accept(store.as_ref(), b"<a/>").await;
    assert!(store.get(rec.id()).await.unwrap().is_some());
    store.flush().await.unwrap();
}

const CRASH_CHILD: &str = "DREHSCHEIBE_STORE_CRASH_CHILD";

/// A child process accepts messages, reports each id once `accept` has
/// returned, and aborts without running any destructor (no sled flush on
/// drop). Every reported message must be there after reopening.
#[test]
fn accepted_messages_survive_a_crash() {
    if let Ok(dir) = std::env::var(CRASH_CHILD) {
        crash_child(std::path::Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "accepted_messages_survive_a_crash",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD, dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child must abort");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let ids: Vec<MessageId> = stdout
        .lines()
        .filter_map(|l| l.split("ACCEPTED ").nth(1))
        .map(|id| id.parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 5, "child output: {stdout}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SledStore::open(dir.path()).unwrap();
        for id in &ids {
            assert!(store.get(*id).await.unwrap().is_some(), "{id} lost");
            assert_eq!(
                store.payload(*id).await.unwrap().unwrap(),
                Bytes::from_static(b"<a/>")
            );
        }
        let now = Utc::now();
        let claimed = store
            .claim_due(now, 100, now + TimeDelta::minutes(1))
            .await
            .unwrap();
        let routes: Vec<Job> = ids.iter().map(|id| Job::Route { message: *id }).collect();
        assert_eq!(claimed.iter().map(|c| c.job).collect::<Vec<_>>(), routes);
    });
}

fn crash_child(dir: &std::path::Path) -> ! {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SledStore::open(dir).unwrap();
        let mut stdout = std::io::stdout();
        for _ in 0..5 {
            let rec = accept(&store, b"<a/>").await;
            writeln!(stdout, "ACCEPTED {}", rec.id()).unwrap();
            stdout.flush().unwrap();
        }
    });
    std::process::abort()
}

/// A pass-through output (byte-identical to the payload) is stored as a
/// reference, and reads back as the payload; other outputs are stored as
/// they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_through_outputs_read_back_as_the_payload() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let rec = accept(&store, b"<antrag>1</antrag>").await;
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

/// A crash between staging and the end of the request leaves markers; the
/// start-up sweep removes the blobs no stored message references and
/// keeps the others, and leaves stagings newer than its cut-off alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_sweep_removes_orphaned_staged_blobs_only() {
    use drehscheibe_model::{AttachmentRef, BlobStore};
    let dir = tempfile::tempdir().unwrap();
    let blob_dir = dir.path().join("blobs");
    let store = SledStore::open(&dir.path().join("store")).unwrap();
    let reader = |bytes: &'static [u8]| -> drehscheibe_model::BlobReader {
        Box::pin(std::io::Cursor::new(bytes))
    };
    let (orphan, referenced) = {
        // The process that "crashes": stages two attachments, stores a
        // message with one of them, and never ends either staging.
        let blobs = FsBlobStore::open(&blob_dir).unwrap();
        let orphan = blobs.stage(reader(b"orphan"), 1024).await.unwrap();
        let referenced = blobs.stage(reader(b"in a message"), 1024).await.unwrap();
        let mut rec = record_at(Utc::now(), b"<a/>");
        rec.envelope.attachments.push(AttachmentRef {
            name: "anlage".into(),
            filename: None,
            content_type: "application/pdf".into(),
            blob: referenced.clone(),
        });
        store
            .accept(
                &rec,
                Bytes::from_static(b"<a/>"),
                received_event(&rec),
                None,
            )
            .await
            .unwrap();
        (orphan, referenced)
    };
    let markers = || std::fs::read_dir(blob_dir.join("staged")).unwrap().count();
    assert_eq!(markers(), 2);

    // A sweep whose cut-off predates the stagings touches nothing.
    let blobs = FsBlobStore::open(&blob_dir).unwrap();
    let long_ago = std::time::SystemTime::UNIX_EPOCH;
    assert_eq!(blobs.sweep_staged(&store, long_ago).await.unwrap(), 0);
    assert_eq!(markers(), 2);
    assert!(blobs.contains(&orphan).await.unwrap());

    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    assert_eq!(blobs.sweep_staged(&store, later).await.unwrap(), 1);
    assert!(!blobs.contains(&orphan).await.unwrap());
    assert!(blobs.contains(&referenced).await.unwrap());
    assert_eq!(markers(), 0);
    // Nothing left to do on the next start.
    assert_eq!(blobs.sweep_staged(&store, later).await.unwrap(), 0);
}

/// A tmpfs of `size` mounted on a fresh temporary folder, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (after saying why) where mounting is not permitted, except
    /// under CI (`CI` set), where that fails the test.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status();
        if matches!(status, Ok(s) if s.success()) {
            return Some(Tmpfs { dir });
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "cannot mount a tmpfs ({status:?}): the disk-full test needs root under CI"
        );
        eprintln!("SKIPPED: cannot mount a tmpfs ({status:?}); run as root to test a full disk");
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// A full disk is not the end: the store refuses writes while the disk is
/// full, says so in `ready()`, and takes writes again — in the same process
/// — once space is freed (sled poisons itself on a failed write; the store
/// reopens it, see the `sled_store` module docs). The disk is real: a small
/// tmpfs (needs root or CAP_SYS_ADMIN; see [`Tmpfs::mount`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_and_the_store_recovers_when_space_returns() {
    let Some(fs) = Tmpfs::mount("64m") else {
        return;
    };
    let dir = fs.dir.path().join("store");
    let store = SledStore::open(&dir).unwrap();
    let payload = vec![b'x'; 200 * 1024];
    let try_accept = |store: SledStore, payload: Vec<u8>| async move {
        let rec = record_at(Utc::now(), &payload);
        let outcome = store
            .accept(&rec, Bytes::from(payload), received_event(&rec), None)
            .await;
        (rec.id(), outcome)
    };
    let (before, outcome) = try_accept(store.clone(), payload.clone()).await;
    assert_eq!(outcome.unwrap(), AcceptOutcome::Created);
    store.ready().await.unwrap();

    // Fill the disk with one file until it refuses a write.
    let filler = fs.dir.path().join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0x5a_u8; 256 * 1024];
    while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
    drop(f);

    // Sooner or later a write is refused …
    let mut refused = None;
    for _ in 0..200 {
        if let (_, Err(e)) = try_accept(store.clone(), payload.clone()).await {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("the store took writes on a full disk");
    assert!(matches!(refused, StoreError::Backend(_)), "{refused}");

    // … readiness says so, and keeps saying so while the disk stays full
    // (a recovery attempt fails at the probe).
    let err = store.ready().await.unwrap_err().to_string();
    assert!(err.contains("cannot write"), "{err}");
    tokio::time::sleep(drehscheibe_store::RECOVERY_INTERVAL).await;
    assert!(store.ready().await.is_err());
    assert!(try_accept(store.clone(), payload.clone()).await.1.is_err());

    // Space returns: the same store becomes ready and takes writes again.
    std::fs::remove_file(&filler).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while let Err(e) = store.ready().await {
        assert!(
            std::time::Instant::now() < deadline,
            "store did not recover: {e}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (after, outcome) = try_accept(store.clone(), payload.clone()).await;
    assert_eq!(outcome.unwrap(), AcceptOutcome::Created);
    assert!(store.get(before).await.unwrap().is_some());
    assert_eq!(
        store.payload(after).await.unwrap().as_deref(),
        Some(&payload[..])
    );

    // What was acknowledged is on disk: a fresh open finds both.
    drop(store);
    let store = SledStore::open(&dir).unwrap();
    assert!(store.get(before).await.unwrap().is_some());
    assert!(store.get(after).await.unwrap().is_some());
}
