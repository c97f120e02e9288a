//! Behaviour only `SledStore` shows, on a real sled database in a temp
//! dir: reopening, crashes, group commit, corrupt data, a full disk. The
//! backend-independent store tests are in `drehscheibe_store::contract`
//! (run by `tests/contract.rs`).

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{TimeDelta, Utc};
use drehscheibe_model::{sha256_hex, AuditEvent, MessageId, MessageRecord, MessageState};
use drehscheibe_store::contract::{accept, count, received_event, record_at};
use drehscheibe_store::{
    AcceptOutcome, Effects, FsBlobStore, IdempotencyKey, Job, MessageFilter, SledStore, Store,
    StoreError,
};

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

/// A filter no index serves (`leistung`) examines at most
/// `MAX_LIST_SCAN` records per call: a rare match behind many others comes
/// back on a later page, never by one unbounded scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unindexed_filters_scan_a_bounded_number_of_records_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let n = drehscheibe_store::MAX_LIST_SCAN + 5;
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in (t..n).step_by(8) {
                    accept(store.as_ref(), b"<a/>").await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let last = accept(store.as_ref(), b"<a/>").await.id();
    store
        .update(last, &mut |r: &mut MessageRecord| {
            r.envelope.leistung = Some("99050012104000".into());
            Ok(Effects::default())
        })
        .await
        .unwrap();
    let filter = MessageFilter {
        leistung: Some("99050012104000".into()),
        ..Default::default()
    };
    let first = store.list(&filter).await.unwrap();
    assert!(first.items.is_empty(), "the match lies beyond the bound");
    let cursor = first.next.expect("a cursor to go on");
    let second = store
        .list(&MessageFilter {
            after: Some(cursor),
            ..filter
        })
        .await
        .unwrap();
    assert_eq!(
        second.items.iter().map(|r| r.id()).collect::<Vec<_>>(),
        [last]
    );
    assert_eq!(second.next, None);
}
