//! Retention on a real sled store in a temp dir, where only sled can show
//! it: the value-log collector and a purge interrupted by a crash. The
//! backend-independent retention tests are in `drehscheibe_store::contract`
//! (run by `tests/contract.rs`).

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use drehscheibe_model::{MessageId, MessageState};
use drehscheibe_store::contract::{accept, count, finish, later, purge_all};
use drehscheibe_store::{Retention, RetentionPolicy, SledStore, Store, StoreError, StoreOptions};

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
