//! Retention on a real sled store in a temp dir: the two purge stages,
//! per-tenant durations, idempotency keys, counters, blob reference
//! counts and the value-log collector. Time is passed in (`now`), never
//! waited for.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use drehscheibe_model::{
    sha256_hex, AttachmentRef, AuditEvent, BlobRef, BlobStore, Delivery, DeliveryState, Envelope,
    MessageId, MessageRecord, MessageState, SenderIdentity,
};
use drehscheibe_store::{
    AcceptOutcome, Effects, FsBlobStore, IdempotencyKey, Job, MessageFilter, Retention,
    RetentionPolicy, SledStore, Store, StoreError, StoreOptions,
};

const DAY: u64 = 86_400;

fn days(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n * DAY))
}

fn later(n_days: i64) -> DateTime<Utc> {
    Utc::now() + TimeDelta::days(n_days)
}

fn record(payload: &[u8], key: Option<&str>, attachments: &[BlobRef]) -> MessageRecord {
    MessageRecord::received(Envelope {
        id: MessageId::new(),
        channel: "online-dienst".into(),
        sender: SenderIdentity {
            adapter: "http".into(),
            principal: "portal".into(),
            remote_addr: None,
        },
        received_at: Utc::now(),
        content_type: "application/xml".into(),
        size: payload.len() as u64,
        sha256: sha256_hex(payload),
        correlation_ids: Default::default(),
        idempotency_key: key.map(str::to_owned),
        tenant: None,
        kommune_key: None,
        leistung: None,
        attachments: attachments
            .iter()
            .map(|b| AttachmentRef {
                name: "anlage".into(),
                filename: None,
                content_type: "application/pdf".into(),
                blob: b.clone(),
            })
            .collect(),
    })
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

async fn accept_with(
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

async fn accept(store: &dyn Store, payload: &[u8]) -> MessageRecord {
    let (rec, out) = accept_with(store, payload, None, &[]).await;
    assert_eq!(out, AcceptOutcome::Created);
    rec
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
    }
}

/// Route and finish a message in `state` for `tenant`, with one output
/// document.
async fn finish(
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

fn count(counts: &[(MessageState, u64)], state: MessageState) -> u64 {
    counts
        .iter()
        .find(|(s, _)| *s == state)
        .map_or(0, |(_, n)| *n)
}

/// Purge until nothing more is due; sums the reports.
async fn purge_all(
    store: &dyn Store,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> drehscheibe_store::PurgeReport {
    let mut sum = drehscheibe_store::PurgeReport::default();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_messages_lose_payload_then_record_and_dead_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let policy = RetentionPolicy::default(); // 30d payloads, 365d records, failed kept
    let mut delivered = Vec::new();
    for i in 0..4 {
        let payload = format!("<antrag>{i}</antrag>");
        let (rec, out) =
            accept_with(&store, payload.as_bytes(), Some(&format!("key-{i}")), &[]).await;
        assert_eq!(out, AcceptOutcome::Created);
        finish(&store, rec.id(), MessageState::Delivered, None, b"<out/>").await;
        delivered.push((rec, payload));
    }
    let dead = accept(&store, b"<dead/>").await;
    finish(&store, dead.id(), MessageState::Dead, None, b"<o/>").await;
    let open = accept(&store, b"<still-routing/>").await;

    // Nothing is due before 30 days.
    let r = store.purge_expired(&policy, later(29), 500).await.unwrap();
    assert_eq!((r.payloads, r.records), (0, 0));

    // Stage 1 after 30 days: payload and outputs go, the record stays.
    let r = purge_all(&store, &policy, later(31)).await;
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
    let (_, out) = accept_with(&store, b"<antrag>0</antrag>", Some("key-0"), &[]).await;
    assert_eq!(out, AcceptOutcome::Duplicate(delivered[0].0.id()));

    // Stage 2 after 365 days: everything of the delivered messages goes.
    let r = purge_all(&store, &policy, later(366)).await;
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
    let (_, out) = accept_with(&store, b"<antrag>0</antrag>", Some("key-0"), &[]).await;
    assert_eq!(out, AcceptOutcome::Created);
    // The dead message is kept until handled.
    assert!(store.get(dead.id()).await.unwrap().is_some());
    assert!(store.payload(dead.id()).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_have_their_own_durations_and_failed_messages_a_maximum() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
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
    let short = accept(&store, b"<a/>").await;
    finish(
        &store,
        short.id(),
        MessageState::Delivered,
        Some("kurz"),
        b"<o/>",
    )
    .await;
    let long = accept(&store, b"<b/>").await;
    finish(
        &store,
        long.id(),
        MessageState::Delivered,
        Some("lang"),
        b"<o/>",
    )
    .await;
    let short_dead = accept(&store, b"<c/>").await;
    finish(
        &store,
        short_dead.id(),
        MessageState::Dead,
        Some("kurz"),
        b"<o/>",
    )
    .await;
    let rejected = accept(&store, b"<d/>").await;
    finish(&store, rejected.id(), MessageState::Rejected, None, b"<o/>").await;

    let r = purge_all(&store, &policy, later(3)).await;
    assert_eq!(
        (r.payloads, r.records),
        (1, 1),
        "only the short tenant's delivered message"
    );
    assert_eq!(store.get(short.id()).await.unwrap(), None);
    assert!(store.payload(long.id()).await.unwrap().is_some());

    let r = purge_all(&store, &policy, later(31)).await;
    assert_eq!((r.payloads, r.records), (1, 1));
    assert_eq!(store.get(long.id()).await.unwrap(), None);

    // Rejected (default: failed = 90d) goes after its maximum; the short
    // tenant keeps dead messages until handled.
    let r = purge_all(&store, &policy, later(91)).await;
    assert_eq!((r.payloads, r.records), (1, 1));
    assert_eq!(store.get(rejected.id()).await.unwrap(), None);
    let r = purge_all(&store, &policy, later(10_000)).await;
    assert_eq!((r.payloads, r.records), (0, 0));
    assert!(store.payload(short_dead.id()).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purges_run_in_bounded_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let policy = RetentionPolicy::default();
    for i in 0..12 {
        let rec = accept(&store, format!("<m>{i}</m>").as_bytes()).await;
        finish(&store, rec.id(), MessageState::Delivered, None, b"<o/>").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_takes_the_message_out_and_restarts_its_clock() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let policy = RetentionPolicy::default();
    let rec = accept(&store, b"<a/>").await;
    let id = rec.id();
    finish(&store, id, MessageState::Dead, None, b"<o/>").await;
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
    let r = purge_all(&store, &never, later(400)).await;
    assert_eq!(r.payloads, 0, "a message in the pipeline is never purged");
    finish(&store, id, MessageState::Delivered, None, b"<o/>").await;
    let r = purge_all(&store, &policy, later(31)).await;
    assert_eq!(r.payloads, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_blob_stays_until_its_last_reference_goes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store")).unwrap();
    let blobs = FsBlobStore::open(&dir.path().join("blobs")).unwrap();
    let content: &'static [u8] = b"%PDF-1.7 the same attachment twice";
    let stage = |blobs: &FsBlobStore| {
        let blobs = blobs.clone();
        async move {
            blobs
                .stage(Box::pin(std::io::Cursor::new(content)), 1 << 20)
                .await
                .unwrap()
        }
    };
    let blob = stage(&blobs).await;
    let (first, _) = accept_with(&store, b"<a/>", None, std::slice::from_ref(&blob)).await;
    blobs.keep_staged(&blob).await.unwrap();
    let again = stage(&blobs).await;
    assert_eq!(again, blob, "deduplicated by content");
    let (second, _) = accept_with(&store, b"<b/>", None, std::slice::from_ref(&blob)).await;
    blobs.keep_staged(&blob).await.unwrap();
    assert_eq!(store.blob_references(&blob.sha256).await.unwrap(), 2);

    let policy = RetentionPolicy {
        default: Retention {
            payloads: days(1),
            ..Retention::default()
        },
        ..Default::default()
    };
    finish(&store, first.id(), MessageState::Delivered, None, b"<o/>").await;
    let r = purge_all(&store, &policy, later(2)).await;
    assert_eq!((r.payloads, r.blobs_unreferenced), (1, 0));
    assert_eq!(store.blob_references(&blob.sha256).await.unwrap(), 1);
    assert!(store.unreferenced_blobs(10).await.unwrap().is_empty());
    assert!(blobs.contains(&blob).await.unwrap());

    finish(&store, second.id(), MessageState::Delivered, None, b"<o/>").await;
    let r = purge_all(&store, &policy, later(2)).await;
    assert_eq!((r.payloads, r.blobs_unreferenced), (1, 1));
    assert_eq!(
        store.unreferenced_blobs(10).await.unwrap(),
        std::slice::from_ref(&blob.sha256)
    );

    let check_store = store.clone();
    let sha = blob.sha256.clone();
    let unreferenced = move || {
        let (store, sha) = (check_store.clone(), sha.clone());
        Box::pin(async move { store.blob_references(&sha).await.is_ok_and(|n| n == 0) })
            as std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>
    };
    // A staging of the same content in flight keeps it.
    let held = stage(&blobs).await;
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
    let back = stage(&blobs).await;
    let (_, out) = accept_with(&store, b"<c/>", None, std::slice::from_ref(&back)).await;
    assert_eq!(out, AcceptOutcome::Created);
    blobs.keep_staged(&back).await.unwrap();
    assert!(blobs.contains(&back).await.unwrap());
    assert_eq!(store.blob_references(&back.sha256).await.unwrap(), 1);
}

/// A payload unique to message `i`, `len` bytes.
fn payload_of(i: usize, len: usize) -> Vec<u8> {
    let mut p = format!("<m i=\"{i}\">").into_bytes();
    let mut x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    while p.len() < len - 4 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p.push(b'a' + (x % 26) as u8);
    }
    p.extend_from_slice(b"</m>");
    p
}

fn segment_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("vlog")).unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_log_segments_are_deleted_or_compacted_and_the_rest_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        vlog_segment_bytes: 16 * 1024,
    };
    let store = SledStore::open_with(dir.path(), options.clone()).unwrap();
    // 48 messages of 3 KB (five per segment); every eighth stays routed
    // and so pins its segment, the rest are delivered.
    let mut kept = Vec::new();
    let mut gone = Vec::new();
    for i in 0..48 {
        let payload = payload_of(i, 3000);
        let rec = accept(&store, &payload).await;
        if i % 8 == 0 {
            kept.push((rec.id(), payload));
        } else {
            finish(&store, rec.id(), MessageState::Delivered, None, b"<o/>").await;
            gone.push(rec.id());
        }
    }
    let before = segment_files(dir.path());
    assert!(before >= 10, "{before} segments");
    // Nothing is purged yet: the collector finds nothing to free.
    let c = store.collect_value_log(0.5, u64::MAX).await.unwrap();
    assert_eq!((c.segments_deleted, c.segments_compacted), (0, 0));

    let r = purge_all(&store, &RetentionPolicy::default(), later(31)).await;
    assert_eq!(r.payloads, 42);
    let c = store.collect_value_log(0.5, u64::MAX).await.unwrap();
    assert!(c.segments_deleted > 0, "{c:?}");
    assert!(c.segments_compacted > 0, "{c:?}");
    assert!(c.bytes_moved >= 3000, "{c:?}");
    let after = segment_files(dir.path());
    assert!(after < before / 2, "{before} → {after} segments");
    assert_eq!(c.segments as usize, after);
    for (id, payload) in &kept {
        assert_eq!(
            store.payload(*id).await.unwrap().unwrap(),
            payload.as_slice()
        );
    }
    for id in &gone {
        assert!(matches!(
            store.payload(*id).await,
            Err(StoreError::Purged(_))
        ));
    }

    drop(store);
    let store = SledStore::open_with(dir.path(), options).unwrap();
    for (id, payload) in &kept {
        assert_eq!(
            store.payload(*id).await.unwrap().unwrap(),
            payload.as_slice(),
            "byte-exact after reopen"
        );
    }
    // The reopen sealed the segment that was active; collecting again
    // compacts it if sparse, and the kept payloads still read back.
    let c = store.collect_value_log(0.5, u64::MAX).await.unwrap();
    let live: u64 = kept.iter().map(|(_, p)| p.len() as u64).sum();
    assert!(c.disk_bytes <= 2 * live, "{c:?}");
    for (id, payload) in &kept {
        assert_eq!(
            store.payload(*id).await.unwrap().unwrap(),
            payload.as_slice()
        );
    }
}

const CRASH_CHILD: &str = "DREHSCHEIBE_RETENTION_CRASH_CHILD";

/// A child process purges and collects in small batches and aborts in
/// the middle of a batch (no destructor, no flush on drop). After
/// reopening, every message is either whole, marked purged with its
/// payload reading as purged, or gone entirely — never corrupt — and the
/// counters match the records.
#[test]
fn an_interrupted_purge_leaves_a_consistent_store() {
    if let Ok(dir) = std::env::var(CRASH_CHILD) {
        crash_child(std::path::Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_interrupted_purge_leaves_a_consistent_store",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD, dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child must abort");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let messages: Vec<(usize, MessageId)> = stdout
        .lines()
        .filter_map(|l| l.split("MESSAGE ").nth(1))
        .map(|rest| {
            let (i, id) = rest.split_once(' ').unwrap();
            (i.parse().unwrap(), id.parse().unwrap())
        })
        .collect();
    assert_eq!(messages.len(), 40, "child output: {stdout}");
    assert!(stdout.contains("PURGING"), "{stdout}");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SledStore::open_with(dir.path(), crash_options()).unwrap();
        let (mut whole, mut marked, mut gone) = (0, 0, 0);
        for (i, id) in &messages {
            match store.get(*id).await.unwrap() {
                Some(rec) if rec.payload_purged_at.is_some() => {
                    assert!(matches!(
                        store.payload(*id).await,
                        Err(StoreError::Purged(_))
                    ));
                    marked += 1;
                }
                Some(_) => {
                    assert_eq!(
                        store.payload(*id).await.unwrap().unwrap(),
                        payload_of(*i, 2000).as_slice()
                    );
                    whole += 1;
                }
                None => {
                    assert_eq!(store.payload(*id).await.unwrap(), None);
                    gone += 1;
                }
            }
        }
        let counts = store.count_by_state().await.unwrap();
        let stored: u64 = counts.iter().map(|(_, n)| n).sum();
        assert_eq!(stored, whole + marked, "counters match the records");
        assert!(gone + marked > 0, "the child purged something");
        // The sweep finishes what the crash interrupted.
        let policy = crash_policy();
        purge_all(&store, &policy, later(1)).await;
        store.collect_value_log(0.5, u64::MAX).await.unwrap();
        let counts = store.count_by_state().await.unwrap();
        assert_eq!(count(&counts, MessageState::Delivered), 0);
        for (i, id) in &messages {
            if let Some(rec) = store.get(*id).await.unwrap() {
                assert_eq!(rec.state, MessageState::Routed);
                assert_eq!(
                    store.payload(*id).await.unwrap().unwrap(),
                    payload_of(*i, 2000).as_slice()
                );
            }
        }
    });
}

fn crash_options() -> StoreOptions {
    StoreOptions {
        vlog_segment_bytes: 8 * 1024,
    }
}

fn crash_policy() -> RetentionPolicy {
    RetentionPolicy {
        default: Retention {
            payloads: Some(Duration::ZERO),
            records: Some(Duration::ZERO),
            failed: None,
        },
        ..Default::default()
    }
}

fn crash_child(dir: &std::path::Path) -> ! {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SledStore::open_with(dir, crash_options()).unwrap();
        let mut stdout = std::io::stdout();
        for i in 0..40 {
            let rec = accept(&store, &payload_of(i, 2000)).await;
            let state = if i % 5 == 0 {
                MessageState::Routed
            } else {
                MessageState::Delivered
            };
            finish(&store, rec.id(), state, None, &payload_of(i + 1000, 1500)).await;
            writeln!(stdout, "MESSAGE {i} {}", rec.id()).unwrap();
        }
        writeln!(stdout, "PURGING").unwrap();
        stdout.flush().unwrap();
        let policy = crash_policy();
        // Two whole batches, a collection, then one batch interrupted.
        for _ in 0..2 {
            store.purge_expired(&policy, later(1), 7).await.unwrap();
        }
        store.collect_value_log(0.5, u64::MAX).await.unwrap();
        let interrupted = {
            let (store, policy) = (store.clone(), policy.clone());
            tokio::spawn(async move { store.purge_expired(&policy, later(1), 7).await })
        };
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        let _ = interrupted.is_finished();
    });
    std::process::abort()
}
