//! Retention keeps the store's disk size level: a store-level load of
//! finished messages with a short retention, against the same load with
//! retention off.
//!
//! Run with `cargo bench --bench retention` (see `docs/benchmarks.md`,
//! "Retention"). Each message is accepted (a 10–30 KB XML payload) and
//! marked `delivered` with one output document (a third of the payload)
//! by `BENCH_CONCURRENCY` tasks against a real [`SledStore`] with durable
//! acknowledgements (one group-commit flush per write). Beside the load,
//! a sweeper does what the hub's does every `BENCH_SWEEP_MS`: purge in
//! batches of 500 (payloads after `BENCH_PAYLOADS_MS`, records after
//! `BENCH_RECORDS_MS` of wall-clock time), then collect the value log
//! (delete empty segments, compact those below half live). Every tenth
//! of the load, the size of the store directory (allocated blocks) is
//! sampled; the table at the end puts both runs side by side.
//!
//! Environment: `BENCH_MESSAGES` (default 100,000), `BENCH_CONCURRENCY`
//! (default 32), `BENCH_SEGMENT_MIB` (value-log segment size, default 64),
//! `BENCH_PAYLOADS_MS` (default 2,000), `BENCH_RECORDS_MS` (default
//! 4,000), `BENCH_SWEEP_MS` (default 250). Without `--bench` (as under
//! `cargo test --benches`) a tiny smoke version runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use drehscheibe_model::{
    sha256_hex, AuditEvent, Delivery, DeliveryState, Envelope, MessageId, MessageRecord,
    MessageState, SenderIdentity,
};
use drehscheibe_store::{Effects, Job, Retention, RetentionPolicy, SledStore, Store, StoreOptions};
use drehscheibe_suite::bench::{disk_bytes, env_usize};

/// A 10–30 KB XML payload unique to message `i` (deterministic).
fn payload(i: u64) -> Vec<u8> {
    let mut x = i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let len = 10_000 + (next() % 20_000) as usize;
    let mut p = format!("<antrag nr=\"{i}\">").into_bytes();
    while p.len() < len - 10 {
        let word = next();
        p.extend_from_slice(b"<f>");
        p.extend_from_slice(format!("{word:x}").as_bytes());
        p.extend_from_slice(b"</f>");
    }
    p.extend_from_slice(b"</antrag>");
    p
}

fn record(payload: &[u8]) -> MessageRecord {
    MessageRecord::received(Envelope {
        id: MessageId::new(),
        channel: "bench".into(),
        sender: SenderIdentity {
            adapter: "bench".into(),
            principal: "load".into(),
            remote_addr: None,
        },
        received_at: Utc::now(),
        content_type: "application/xml".into(),
        size: payload.len() as u64,
        sha256: sha256_hex(payload),
        correlation_ids: Default::default(),
        idempotency_key: None,
        tenant: Some("musterstadt".into()),
        kommune_key: None,
        leistung: None,
        attachments: Vec::new(),
    })
}

fn delivery(size: usize) -> Delivery {
    Delivery {
        target: "fachverfahren".into(),
        tenant: "musterstadt".into(),
        connector: "fv".into(),
        state: DeliveryState::Delivered,
        attempts: 1,
        generation: 0,
        content_type: "application/xml".into(),
        size: size as u64,
        sha256: String::new(),
        filename: "antrag.xml".into(),
        last_error: None,
        last_attempt_at: None,
        next_attempt_at: None,
        delivered_at: Some(Utc::now()),
        receipt: None,
        checkpoint: None,
        packed: false,
    }
}

/// One message through the store: accept, then delivered with its output.
async fn one(store: &SledStore, i: u64) {
    let body = payload(i);
    let output = Bytes::copy_from_slice(&body[..body.len() / 3]);
    let rec = record(&body);
    let id = rec.id();
    let ev = AuditEvent::new(id, "intake:bench:load", "received", None, rec.state);
    store
        .accept(&rec, Bytes::from(body), ev, None)
        .await
        .unwrap();
    store
        .update(id, &mut |r: &mut MessageRecord| {
            r.state = MessageState::Delivered;
            r.deliveries = vec![delivery(output.len())];
            Ok(Effects {
                audit: vec![AuditEvent::new(
                    id,
                    "connector:musterstadt/fv",
                    "delivered",
                    Some(MessageState::Received),
                    MessageState::Delivered,
                )],
                outputs: vec![(0, output.clone())],
                complete: vec![Job::Route { message: id }],
                schedule: Vec::new(),
            })
        })
        .await
        .unwrap();
}

struct Params {
    messages: u64,
    concurrency: usize,
    segment_bytes: u64,
    payloads: Duration,
    records: Duration,
    sweep: Duration,
}

/// One sample: messages done, seconds since start, store bytes on disk.
type Sample = (u64, f64, u64);

struct Run {
    samples: Vec<Sample>,
    elapsed: Duration,
    purged_payloads: u64,
    purged_records: u64,
    segments_deleted: u64,
    bytes_moved: u64,
    live_messages: u64,
}

async fn run(p: &Params, retention: bool) -> Run {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let store = SledStore::open_with(
        dir.path(),
        StoreOptions {
            vlog_segment_bytes: p.segment_bytes,
        },
    )
    .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();

    let sweeper = retention.then(|| {
        let (store, stop) = (store.clone(), stop.clone());
        let policy = RetentionPolicy {
            default: Retention {
                payloads: Some(p.payloads),
                records: Some(p.records),
                failed: None,
            },
            ..Default::default()
        };
        let every = p.sweep;
        tokio::spawn(async move {
            let mut totals = (0u64, 0u64, 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                loop {
                    let r = store.purge_expired(&policy, Utc::now(), 500).await.unwrap();
                    totals.0 += r.payloads;
                    totals.1 += r.records;
                    if !r.more {
                        break;
                    }
                }
                let c = store.collect_value_log(0.5, 256 << 20).await.unwrap();
                totals.2 += c.segments_deleted;
                totals.3 += c.bytes_moved;
                tokio::time::sleep(every).await;
            }
            totals
        })
    });

    let sampler = {
        let (done, stop) = (done.clone(), stop.clone());
        let path = dir.path().to_path_buf();
        let (n, step) = (p.messages, (p.messages / 10).max(1));
        tokio::spawn(async move {
            let mut samples = vec![(0, 0.0, disk_bytes(&path))];
            let mut mark = step;
            while mark <= n && !stop.load(Ordering::Relaxed) {
                if done.load(Ordering::Relaxed) >= mark {
                    samples.push((mark, start.elapsed().as_secs_f64(), disk_bytes(&path)));
                    mark += step;
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            samples
        })
    };

    let mut tasks = Vec::new();
    for _ in 0..p.concurrency {
        let (store, next, done) = (store.clone(), next.clone(), done.clone());
        let n = p.messages;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                one(&store, i).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let samples = sampler.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let totals = match sweeper {
        Some(s) => s.await.unwrap(),
        None => (0, 0, 0, 0),
    };
    let live_messages = store
        .count_by_state()
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum();
    Run {
        samples,
        elapsed,
        purged_payloads: totals.0,
        purged_records: totals.1,
        segments_deleted: totals.2,
        bytes_moved: totals.3,
        live_messages,
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes
    // nothing special: run a tiny smoke version then.
    let is_bench = std::env::args().any(|a| a == "--bench");
    let ms = |name: &str, bench: usize, smoke: usize| {
        Duration::from_millis(env_usize(name, if is_bench { bench } else { smoke }) as u64)
    };
    let p = Params {
        messages: env_usize("BENCH_MESSAGES", if is_bench { 100_000 } else { 600 }) as u64,
        concurrency: env_usize("BENCH_CONCURRENCY", 32),
        segment_bytes: if is_bench {
            env_usize("BENCH_SEGMENT_MIB", 64) as u64 * 1024 * 1024
        } else {
            1024 * 1024
        },
        payloads: ms("BENCH_PAYLOADS_MS", 2_000, 100),
        records: ms("BENCH_RECORDS_MS", 4_000, 200),
        sweep: ms("BENCH_SWEEP_MS", 250, 50),
    };
    println!(
        "retention bench{}: {} messages (10–30 KB payload + output of a third), {} tasks, {} MiB segments, payloads {:?}, records {:?}, sweep every {:?}",
        if is_bench { "" } else { " (smoke run)" },
        p.messages,
        p.concurrency,
        p.segment_bytes >> 20,
        p.payloads,
        p.records,
        p.sweep
    );
    let on = run(&p, true).await;
    let off = run(&p, false).await;

    println!();
    println!("| messages | retention on: s | store MiB | retention off: s | store MiB |");
    println!("|---:|---:|---:|---:|---:|");
    for (a, b) in on.samples.iter().zip(&off.samples) {
        println!(
            "| {} | {:.1} | {:.0} | {:.1} | {:.0} |",
            a.0,
            a.1,
            mib(a.2),
            b.1,
            mib(b.2)
        );
    }
    for (name, r) in [("on", &on), ("off", &off)] {
        println!(
            "retention {name}: {:.1} s, {:.0} msg/s; purged {} payloads and {} records, {} segments deleted, {:.0} MiB moved by compaction; {} messages left",
            r.elapsed.as_secs_f64(),
            p.messages as f64 / r.elapsed.as_secs_f64(),
            r.purged_payloads,
            r.purged_records,
            r.segments_deleted,
            mib(r.bytes_moved),
            r.live_messages
        );
    }
    let last = |r: &Run| r.samples.last().map_or(0, |s| s.2);
    if !is_bench {
        // The smoke run checks the bench still works, not the figures.
        assert!(on.purged_payloads > 0, "the sweeper purged nothing");
        assert!(last(&on) > 0 && last(&off) > 0);
    }
}
