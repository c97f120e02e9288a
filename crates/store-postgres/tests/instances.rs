//! Several `PgStore` instances (different instance ids) on one schema:
//! what only a shared database can show.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{TimeDelta, Utc};
use drehscheibe_model::{sha256_hex, MessageRecord};
use drehscheibe_store::contract::{accept, received_event, record_at};
use drehscheibe_store::{AcceptOutcome, Effects, IdempotencyKey, Job, Store};
use drehscheibe_store_postgres::PgStore;
use support::{url, TestSchema};

async fn instance(schema: &TestSchema, id: &str) -> PgStore {
    PgStore::connect(&url(), schema.options(id))
        .await
        .unwrap_or_else(|e| panic!("connect {id}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_never_hand_one_job_to_both_instances() {
    let schema = TestSchema::new().await;
    let a = instance(&schema, "a").await;
    let b = instance(&schema, "b").await;
    let mut ids = HashSet::new();
    for _ in 0..120 {
        ids.insert(accept(&a, b"<a/>").await.id());
    }
    let now = Utc::now() + TimeDelta::seconds(1);
    let lease = now + TimeDelta::minutes(5);
    let claim_all = |store: PgStore| async move {
        let mut got = Vec::new();
        loop {
            let batch = store.claim_due(now, 7, lease).await.unwrap();
            if batch.is_empty() {
                return got;
            }
            got.extend(batch.into_iter().map(|c| c.job.message()));
        }
    };
    let (from_a, from_b) = tokio::join!(
        tokio::spawn(claim_all(a.clone())),
        tokio::spawn(claim_all(b.clone()))
    );
    let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
    assert!(!from_a.is_empty() && !from_b.is_empty(), "both got work");
    let mut all: Vec<_> = from_a.iter().chain(&from_b).copied().collect();
    assert_eq!(all.len(), 120, "every job once");
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 120, "no job twice");
    assert_eq!(all.into_iter().collect::<HashSet<_>>(), ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_belong_to_their_instance() {
    let schema = TestSchema::new().await;
    let a = instance(&schema, "a").await;
    let b = instance(&schema, "b").await;
    for _ in 0..5 {
        accept(&a, b"<a/>").await;
    }
    let now = Utc::now() + TimeDelta::seconds(1);
    let lease = now + TimeDelta::minutes(5);
    let by_a = a.claim_due(now, 3, lease).await.unwrap();
    let by_b = b.claim_due(now, 10, lease).await.unwrap();
    assert_eq!((by_a.len(), by_b.len()), (3, 2));

    // Only the owner renews.
    assert!(!a.renew_lease(by_b[0].job, lease).await.unwrap());
    assert!(b.renew_lease(by_b[0].job, lease).await.unwrap());

    // a's release frees a's three, not b's two.
    assert_eq!(a.release_leases().await.unwrap(), 3);
    assert_eq!(a.queue_stats(now).await.unwrap().due, 3);
    let again = b.claim_due(now, 10, lease).await.unwrap();
    let mut again: Vec<Job> = again.into_iter().map(|c| c.job).collect();
    let mut freed: Vec<Job> = by_a.iter().map(|c| c.job).collect();
    again.sort_by_key(|j| j.message());
    freed.sort_by_key(|j| j.message());
    assert_eq!(again, freed, "b may take what a released");
    assert_eq!(b.release_leases().await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_instances_expired_lease_goes_to_another() {
    let schema = TestSchema::new().await;
    let b = instance(&schema, "b").await;
    let job = {
        let a = instance(&schema, "a").await;
        accept(&a, b"<a/>").await;
        let now = Utc::now();
        let claimed = a
            .claim_due(now, 10, now + TimeDelta::seconds(30))
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        claimed[0].job
        // a "dies" here: dropped without releasing.
    };
    let now = Utc::now();
    assert!(b
        .claim_due(now, 10, now + TimeDelta::seconds(30))
        .await
        .unwrap()
        .is_empty());
    let next = b.next_due().await.unwrap().unwrap();
    assert!(next > now, "the lease expiry is the next chance");
    // After the lease ran out, b takes the job.
    let later = now + TimeDelta::seconds(31);
    let taken = b
        .claim_due(later, 10, later + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(taken.iter().map(|c| c.job).collect::<Vec<_>>(), [job]);
    // a restarted with its id frees nothing of b's and cannot renew it.
    let a = instance(&schema, "a").await;
    assert_eq!(a.release_leases().await.unwrap(), 0);
    assert!(!a.renew_lease(job, later).await.unwrap());
    assert!(b
        .renew_lease(job, later + TimeDelta::minutes(2))
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_from_two_instances_is_stored_once() {
    let schema = TestSchema::new().await;
    let a = Arc::new(instance(&schema, "a").await);
    let b = Arc::new(instance(&schema, "b").await);
    for round in 0..20 {
        let key = IdempotencyKey {
            channel: "ch".into(),
            sender: "http:portal".into(),
            key: format!("antrag-{round}"),
            payload_sha256: sha256_hex(b"<a/>"),
        };
        let submit = |store: Arc<PgStore>, key: IdempotencyKey| async move {
            let rec = record_at(Utc::now(), b"<a/>");
            let out = store
                .accept(
                    &rec,
                    Bytes::from_static(b"<a/>"),
                    received_event(&rec),
                    Some(key),
                )
                .await
                .unwrap();
            (rec.id(), out)
        };
        let (x, y) = tokio::join!(
            tokio::spawn(submit(a.clone(), key.clone())),
            tokio::spawn(submit(b.clone(), key.clone()))
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        let (created, dup) = match (&x.1, &y.1) {
            (AcceptOutcome::Created, other) => (x.0, other.clone()),
            (other, AcceptOutcome::Created) => (y.0, other.clone()),
            _ => panic!("round {round}: nobody created: {x:?} {y:?}"),
        };
        assert_eq!(dup, AcceptOutcome::Duplicate(created), "round {round}");
    }
    let stats = a.queue_stats(Utc::now()).await.unwrap();
    assert_eq!(stats.depth, 20, "one message per key");
}

async fn wait_for(wake: &mut drehscheibe_store_postgres::QueueWakeups, what: &str) {
    tokio::time::timeout(Duration::from_secs(10), wake.wait())
        .await
        .unwrap_or_else(|_| panic!("no wake-up for {what}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_due_now_wakes_the_other_instances_subscriber() {
    let schema = TestSchema::new().await;
    let a = instance(&schema, "a").await;
    let b = instance(&schema, "b").await;
    let mut wake = b.subscribe_queue();
    // The first wake-up says the listener is listening.
    wait_for(&mut wake, "the listener's start").await;
    let rec = accept(&a, b"<a/>").await;
    wait_for(&mut wake, "an accept on the other instance").await;

    // A retry scheduled in the future wakes nobody; one due now does.
    let id = rec.id();
    let future = Utc::now() + TimeDelta::hours(1);
    a.update(id, &mut |_: &mut MessageRecord| {
        Ok(Effects {
            schedule: vec![(Job::Route { message: id }, future)],
            ..Default::default()
        })
    })
    .await
    .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), wake.wait())
            .await
            .is_err(),
        "a job due in an hour is no reason to wake"
    );
    a.update(id, &mut |_: &mut MessageRecord| {
        Ok(Effects {
            schedule: vec![(Job::Route { message: id }, Utc::now())],
            ..Default::default()
        })
    })
    .await
    .unwrap();
    wait_for(&mut wake, "a reschedule to now").await;

    // Another schema's notifications are not ours.
    let other = TestSchema::new().await;
    let c = instance(&other, "c").await;
    accept(&c, b"<c/>").await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), wake.wait())
            .await
            .is_err(),
        "woken by another schema"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_singleton_runs_once_and_fails_over() {
    let schema = TestSchema::new().await;
    let a = instance(&schema, "a").await;
    let b = instance(&schema, "b").await;
    let ttl = Duration::from_secs(30);
    let held = a.try_lease_singleton("poller", ttl).await.unwrap().unwrap();
    assert!(b
        .try_lease_singleton("poller", ttl)
        .await
        .unwrap()
        .is_none());
    assert!(
        a.try_lease_singleton("poller", ttl)
            .await
            .unwrap()
            .is_none(),
        "not even twice by its holder"
    );
    assert_eq!(
        b.singleton_holder("poller").await.unwrap().as_deref(),
        Some("a")
    );
    // Another name is another singleton.
    let other = b
        .try_lease_singleton("sweeper", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(held.renew(ttl).await.unwrap());
    let first_token = held.token();
    held.release().await.unwrap();

    // Released: b takes it at once, with a higher fencing token.
    let short = Duration::from_millis(300);
    let by_b = b
        .try_lease_singleton("poller", short)
        .await
        .unwrap()
        .unwrap();
    assert!(by_b.token() > first_token);
    // b stops renewing (as if it died): after the ttl a takes over and
    // b's renewal fails.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let by_a = a.try_lease_singleton("poller", ttl).await.unwrap().unwrap();
    assert!(by_a.token() > by_b.token());
    assert!(!by_b.renew(ttl).await.unwrap(), "the lease was lost");
    drop(by_b);
    other.release().await.unwrap();
    assert_eq!(
        a.singleton_holder("poller").await.unwrap().as_deref(),
        Some("a")
    );
}

/// An instance that crashed mid-request leaves a staging hold and an
/// unfinished upload; the sweep of another instance removes both, and
/// keeps a staged blob that a stored message references.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_cleans_up_after_a_crashed_instance() {
    use drehscheibe_model::BlobStore;
    use drehscheibe_store::contract::{accept_with, stage_bytes};
    use drehscheibe_store_postgres::PgBlobStore;

    let schema = TestSchema::new().await;
    let (orphan, referenced) = {
        let crashed = instance(&schema, "crashed").await;
        let blobs = PgBlobStore::new(&crashed);
        let orphan = stage_bytes(&blobs, b"orphan").await;
        let referenced = stage_bytes(&blobs, b"in a message").await;
        accept_with(&crashed, b"<a/>", None, std::slice::from_ref(&referenced)).await;
        // An upload that never finished (the process died mid-stream).
        let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!(
                "INSERT INTO {0}.drehscheibe_blob_uploads (upload_id, instance) \
                 VALUES ('{1}', 'crashed'); \
                 INSERT INTO {0}.drehscheibe_blob_chunks (upload_id, seq, data) \
                 VALUES ('{1}', 0, '\\x00')",
                schema.name,
                uuid::Uuid::now_v7()
            ))
            .await
            .unwrap();
        drop(client);
        let _ = driver.await;
        (orphan, referenced)
        // Neither staging ends: the instance "crashed".
    };
    let survivor = instance(&schema, "survivor").await;
    let blobs = PgBlobStore::new(&survivor);
    // A cut-off before the stagings touches nothing.
    let long_ago = Utc::now() - TimeDelta::hours(1);
    assert_eq!(blobs.sweep(&survivor, long_ago).await.unwrap(), 0);
    assert!(blobs.contains(&orphan).await.unwrap());

    let later = Utc::now() + TimeDelta::minutes(1);
    assert_eq!(blobs.sweep(&survivor, later).await.unwrap(), 1);
    assert!(!blobs.contains(&orphan).await.unwrap());
    assert!(blobs.contains(&referenced).await.unwrap());
    assert_eq!(blobs.sweep(&survivor, later).await.unwrap(), 0);
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let unfinished: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM {0}.drehscheibe_blob_uploads u WHERE NOT EXISTS \
                 (SELECT 1 FROM {0}.drehscheibe_blobs b WHERE b.upload_id = u.upload_id)",
                schema.name
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(unfinished, 0, "the unfinished upload is gone");
    drop(client);
    let _ = driver.await;
    // The content can be staged and discarded normally again.
    let again = stage_bytes(&blobs, b"orphan").await;
    blobs.discard_staged(&again).await.unwrap();
    assert!(!blobs.contains(&again).await.unwrap());
}
