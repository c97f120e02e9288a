//! FIT-Connect intake throughput: decrypt + verify + route + deliver.
//!
//! Run with `cargo bench --bench fit_connect` (see `docs/benchmarks.md`).
//! The hub runs as a child process (`drehscheibe serve`, release build,
//! sled store on disk) with a `fit-connect` intake channel hosting one
//! destination (RSA-4096 decryption key, RSA-4096 SET signing key) for a
//! tenant whose route delivers to a counting loopback receiver in this
//! process. This process is the sender: the crate's own `TokenClient` and
//! `SubmissionClient` (token → announce → upload → submit) from N
//! concurrent tasks, with JWEs made by `jose::encrypt_compact`
//! (RSA-OAEP-256 + A256GCM, no compression, as the sender connector does).
//!
//! Scenarios:
//! 1. `raw crypto` (the peer): in-process, on every core, what the hub's
//!    cryptography alone costs for the same payloads — RSA-OAEP-256 unwrap,
//!    AES-256-GCM decrypt of metadata and data (and attachment, streamed)
//!    and SHA-512 of the plaintexts;
//! 2. `data set`: submissions of a 50 KB JSON data set (no attachment):
//!    submissions/s until delivered and until every `accept-submission`
//!    SET is in its case's event log, p50/p99 of the sender's whole
//!    announce + submit sequence and of the `PUT` submit alone, hub peak RSS;
//! 3. `attachment`: submissions with one 20 MiB attachment, one after the
//!    other, on a fresh hub process: MB/s from announce to delivery, hub
//!    peak RSS.
//!
//! Environment: `BENCH_FIT_SUBMISSIONS` (default 300),
//! `BENCH_FIT_CONCURRENCY` (default 8), `BENCH_FIT_ATTACHMENTS` (default 5),
//! `BENCH_FIT_ATTACHMENT_MB` (default 20), `BENCH_FIT_PERF=<file>` (record
//! `perf` profiles of the hub during scenarios 2 and 3). Without `--bench`
//! (as under `cargo test --benches`) a tiny smoke version runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drehscheibe_fit_connect::client::{
    http_client, AnnounceRequest, ServiceType, SubmissionClient, TokenClient, TokenSettings,
};
use drehscheibe_fit_connect::jose::{self, RsaPrivateKey, RsaPublicJwk};
use drehscheibe_suite::bench::{counting_receiver, env_usize, ms, peak_rss_mib, percentile};
use drehscheibe_suite::{free_port, repo_root, HubProcess, TestConfig};
use serde_json::json;
use sha2::{Digest, Sha512};

const DEST: &str = "3d9b2a64-8c1e-4f0a-b5d7-6e2c1f9a0b42";
const LEISTUNG: &str = "99108008252000";
const AGS: &str = "09162000";

fn key_file(name: &str) -> PathBuf {
    repo_root()
        .join("crates/fit-connect/tests/fixtures/keys")
        .join(name)
}

/// CPU time (user + system) the process has used so far, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // USER_HZ is 100 on Linux.
    f.iter().sum::<f64>() / 100.0
}

async fn wait_for(counter: &AtomicU64, n: u64, timeout: Duration) {
    let start = Instant::now();
    while counter.load(Ordering::SeqCst) < n {
        assert!(
            start.elapsed() < timeout,
            "only {} of {n} delivered",
            counter.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The hub's main-file additions: the FIT-Connect intake channel `fit`.
fn channel_toml(port: u16) -> String {
    format!(
        r#"max_attachment_bytes = "1 GiB"

[channels.fit]
type = "fit-connect"
public_base_url = "http://127.0.0.1:{port}/fit-connect"
base_path = "/fit-connect"
signing_key = "{signing}"
signing_kid = "bench-set"
poll_interval = "200ms"

[[channels.fit.clients]]
client_id = "portal"
client_secret = {{ value = "portal-secret" }}
destinations = ["{DEST}"]

[[channels.fit.hosted_destinations]]
destination_id = "{DEST}"
tenant = "alpha"
decryption_keys = ["{dec}"]
services = [{{ identifier = "urn:de:fim:leika:leistung:{LEISTUNG}", name = "Gewerbeanmeldung" }}]
"#,
        signing = key_file("signing.pem").display(),
        dec = key_file("dest-a.pem").display(),
    )
}

/// The tenant: the `testjson` fixture rule recognises the data set and
/// routes it to the receiver (attachments sent along as multipart).
fn tenant(url: &str) -> String {
    format!(
        r#"id = "alpha"
name = "Kommune alpha"
ags = "{AGS}"

[connectors.fv]
type = "http"
url = "{url}"
max_concurrency = 16
send_attachments = true
timeout = "300s"

[[routes]]
leistung = "{LEISTUNG}"
rule = "testjson@^1"
targets = {{ fachverfahren = "fv" }}
"#
    )
}

/// A JSON data set of about `size` bytes that the `testjson` rule routes.
fn data_set(size: usize) -> Vec<u8> {
    let mut fields = Vec::new();
    let mut len = 64;
    let mut i = 0;
    while len < size {
        let f = format!("\"wert-{i:06}\"");
        len += f.len() + 1;
        fields.push(f);
        i += 1;
    }
    format!(
        "{{\"kommune\":\"{AGS}\",\"leistung\":\"{LEISTUNG}\",\"felder\":[{}]}}",
        fields.join(",")
    )
    .into_bytes()
}

/// Metadata (schema 1.0.0) for the data set and attachments
/// `(id, sha512 hex)`.
fn metadata(data: &[u8], attachments: &[(String, String)]) -> Vec<u8> {
    json!({
        "$schema": "https://schema.fitko.de/fit-connect/metadata/1.0.0/metadata.schema.json",
        "contentStructure": {
            "data": {
                "hash": {"type": "sha512", "content": hex::encode(Sha512::digest(data))},
                "submissionSchema": {"schemaUri": "https://example.org/antrag.schema.json", "mimeType": "application/json"}
            },
            "attachments": attachments.iter().map(|(id, hash)| json!({
                "attachmentId": id, "purpose": "attachment", "mimeType": "application/pdf",
                "filename": "nachweis.pdf",
                "hash": {"type": "sha512", "content": hash}
            })).collect::<Vec<_>>()
        }
    })
    .to_string()
    .into_bytes()
}

/// The sender's clients for the hub at `port`; the access token is
/// fetched once here and cached by the token client.
async fn sender(port: u16) -> SubmissionClient {
    let http = http_client(Duration::from_secs(600), None).unwrap();
    let tokens = TokenClient::new(
        http.clone(),
        TokenSettings {
            token_url: format!("http://127.0.0.1:{port}/fit-connect/token"),
            client_id: "portal".into(),
            client_secret: "portal-secret".into(),
            scope: None,
        },
    )
    .unwrap();
    tokens.token().await.unwrap();
    SubmissionClient::new(
        http,
        &format!("http://127.0.0.1:{port}/fit-connect"),
        Arc::new(tokens),
    )
    .unwrap()
}

fn announce_request(attachments: Vec<String>) -> AnnounceRequest {
    AnnounceRequest {
        destination_id: DEST.into(),
        announced_attachments: attachments,
        service_type: ServiceType {
            name: "Gewerbeanmeldung".into(),
            identifier: format!("urn:de:fim:leika:leistung:{LEISTUNG}"),
        },
    }
}

/// With `BENCH_FIT_PERF=<file>`: `perf record` the hub process into
/// `<file><suffix>` until [`stop_perf`].
fn start_perf(pid: u32, suffix: &str) -> Option<std::process::Child> {
    let out = format!("{}{suffix}", std::env::var("BENCH_FIT_PERF").ok()?);
    std::process::Command::new("perf")
        .args([
            "record",
            "-F",
            "499",
            "-g",
            "-o",
            &out,
            "-p",
            &pid.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()
}

/// Stop a recording started by [`start_perf`] (SIGINT: perf writes its
/// file and exits).
fn stop_perf(perf: Option<std::process::Child>) {
    if let Some(mut p) = perf {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &p.id().to_string()])
            .status();
        let _ = p.wait();
    }
}

/// Timings of one submission as the sender sees them.
struct Sent {
    /// The case (its event log receives the `accept-submission`).
    case: String,
    /// announce → (upload →) submit answered.
    total: Duration,
    /// The `PUT /v1/submissions/{id}` alone.
    submit: Duration,
}

/// The raw-crypto peer for the data set: `n` submissions' worth of
/// RSA-OAEP unwrap + AES-GCM decrypt + SHA-512 (metadata and data), on
/// `threads` threads. Returns submissions/s.
fn raw_data_set(key: &RsaPrivateKey, meta: &str, data: &str, n: usize, threads: usize) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for w in 0..threads {
            s.spawn(move || {
                for _ in (w..n).step_by(threads) {
                    for jwe in [meta, data] {
                        let out = jose::decrypt_compact(jwe.as_bytes(), &[key]).unwrap();
                        std::hint::black_box(Sha512::digest(&out.plaintext));
                    }
                }
            });
        }
    });
    n as f64 / t.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let is_bench = std::env::args().any(|a| a == "--bench");
    let (n, concurrency, n_big, big_mib) = if is_bench {
        (
            env_usize("BENCH_FIT_SUBMISSIONS", 300),
            env_usize("BENCH_FIT_CONCURRENCY", 8),
            env_usize("BENCH_FIT_ATTACHMENTS", 5),
            env_usize("BENCH_FIT_ATTACHMENT_MB", 20),
        )
    } else {
        (3, 2, 1, 1)
    };
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let key =
        RsaPrivateKey::from_pem(&std::fs::read_to_string(key_file("dest-a.pem")).unwrap()).unwrap();
    let jwk: RsaPublicJwk = key.encryption_jwk();
    let data = data_set(50 * 1000);
    let meta_small = jose::encrypt_compact(&metadata(&data, &[]), &jwk, false).unwrap();
    let data_jwe = jose::encrypt_compact(&data, &jwk, false).unwrap();
    let big_size = big_mib * 1024 * 1024;
    let big: Vec<u8> = (0..big_size as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let big_hash = hex::encode(Sha512::digest(&big));
    let big_jwe = bytes::Bytes::from(jose::encrypt_compact(&big, &jwk, false).unwrap());
    drop(big);
    println!(
        "fit-connect bench: {n} data sets of {} bytes (JWE {} bytes) from {concurrency} concurrent senders; {n_big} × {big_mib} MiB attachment (JWE {} bytes); {cores} cores",
        data.len(),
        data_jwe.len(),
        big_jwe.len()
    );

    // 1. Peer: the cryptography alone, in-process, on every core.
    let raw_n = if is_bench { 200 } else { 2 };
    let raw_small = raw_data_set(&key, &meta_small, &data_jwe, raw_n, cores);
    // What the hub adds per submission on top: two PS512 SETs
    // (submit-submission, accept-submission) with its RSA-4096 key.
    let signing =
        RsaPrivateKey::from_pem(&std::fs::read_to_string(key_file("signing.pem")).unwrap())
            .unwrap();
    let t = Instant::now();
    for _ in 0..raw_n {
        std::hint::black_box(
            jose::sign_jws_ps512(
                json!({"typ": "secevent+jwt"}),
                &json!({"jti": "x"}),
                &signing,
            )
            .unwrap(),
        );
    }
    let sign_ms = t.elapsed().as_secs_f64() * 1000.0 / raw_n as f64;
    let t = Instant::now();
    for _ in 0..raw_n {
        let out = jose::decrypt_compact(data_jwe.as_bytes(), &[&key]).unwrap();
        std::hint::black_box(Sha512::digest(&out.plaintext));
    }
    let unwrap_ms = t.elapsed().as_secs_f64() * 1000.0 / raw_n as f64;
    let meta_big = jose::encrypt_compact(
        &metadata(
            &data,
            &[(uuid::Uuid::new_v4().to_string(), big_hash.clone())],
        ),
        &jwk,
        false,
    )
    .unwrap();
    let t = Instant::now();
    let rounds = if is_bench { 3 } else { 1 };
    for _ in 0..rounds {
        for jwe in [&meta_big, &data_jwe] {
            let out = jose::decrypt_compact(jwe.as_bytes(), &[&key]).unwrap();
            std::hint::black_box(Sha512::digest(&out.plaintext));
        }
        let info =
            jose::decrypt_compact_stream(&big_jwe[..], &[&key], std::io::sink(), u64::MAX).unwrap();
        assert_eq!(info.sha512_hex, big_hash);
    }
    let raw_big_s = t.elapsed().as_secs_f64() / f64::from(rounds);
    let raw_big_mbs = big_size as f64 / raw_big_s / 1e6;
    println!(
        "one thread: decrypt + SHA-512 of the data set JWE {unwrap_ms:.1} ms; one PS512 signature {sign_ms:.1} ms"
    );
    println!(
        "raw crypto: data set {raw_small:>7.1} submissions/s on {cores} threads; {big_mib} MiB attachment {raw_big_mbs:>6.0} MB/s (one thread, {:.3} s per submission)",
        raw_big_s
    );

    // 2. Data sets through the hub.
    let (raddr, delivered, _) = counting_receiver().await;
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = TestConfig::write(
        &addr.to_string(),
        &channel_toml(port),
        &[("alpha", tenant(&format!("http://{raddr}/fv")))],
    );
    let hub = HubProcess::spawn(&cfg.main, addr, &cfg.path("hub.log")).await;
    let pid = hub.child.id();
    let client = Arc::new(sender(port).await);
    // Optional profile of the hub during this scenario.
    let perf = start_perf(pid, "");
    let cpu0 = cpu_secs(pid);
    let next = Arc::new(AtomicU64::new(0));
    let (meta_small, data_jwe) = (Arc::new(meta_small), Arc::new(data_jwe));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, next, meta, data) = (
            client.clone(),
            next.clone(),
            meta_small.clone(),
            data_jwe.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            while next.fetch_add(1, Ordering::SeqCst) < n as u64 {
                let t = Instant::now();
                let a = client
                    .announce(&announce_request(Vec::new()))
                    .await
                    .unwrap();
                let ts = Instant::now();
                client
                    .submit(&a.submission_id, &meta, Some(&data))
                    .await
                    .unwrap();
                sent.push(Sent {
                    case: a.case_id,
                    total: t.elapsed(),
                    submit: ts.elapsed(),
                });
            }
            sent
        }));
    }
    let mut sent = Vec::with_capacity(n);
    for t in tasks {
        sent.extend(t.await.unwrap());
    }
    let submitted = t0.elapsed();
    wait_for(&delivered, n as u64, Duration::from_secs(900)).await;
    let until_delivered = t0.elapsed();
    // The hub's status follower writes `accept-submission` once a message
    // is delivered (every `poll_interval`): wait for every receipt.
    let mut open: Vec<String> = sent.iter().map(|s| s.case.clone()).collect();
    let end = Instant::now() + Duration::from_secs(900);
    while !open.is_empty() {
        let mut still = Vec::new();
        for case in open {
            if client.events(&case).await.unwrap().len() < 2 {
                still.push(case);
            }
        }
        open = still;
        assert!(Instant::now() < end, "{} cases not accepted", open.len());
        if !open.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let until_receipts = t0.elapsed();
    stop_perf(perf);
    let cpu_small = cpu_secs(pid) - cpu0;
    let rss_small = peak_rss_mib(pid);
    let mut totals: Vec<Duration> = sent.iter().map(|s| s.total).collect();
    let mut submits: Vec<Duration> = sent.iter().map(|s| s.submit).collect();
    totals.sort();
    submits.sort();
    let accepted_rate = n as f64 / submitted.as_secs_f64();
    let delivered_rate = n as f64 / until_delivered.as_secs_f64();
    let receipt_rate = n as f64 / until_receipts.as_secs_f64();
    let mb_small = (n * data.len()) as f64 / until_delivered.as_secs_f64() / 1e6;
    println!(
        "data set  : {accepted_rate:>7.1} submissions/s submitted, {delivered_rate:>7.1}/s delivered ({mb_small:.1} MB/s of data), {receipt_rate:>7.1}/s with accept-submission written   announce+submit p50 {:>7.1} ms p99 {:>7.1} ms   PUT submit p50 {:>7.1} ms p99 {:>7.1} ms   hub peak RSS {rss_small:.0} MiB",
        ms(percentile(&totals, 0.50)),
        ms(percentile(&totals, 0.99)),
        ms(percentile(&submits, 0.50)),
        ms(percentile(&submits, 0.99)),
    );
    println!(
        "hub CPU   : {cpu_small:.1} s in {:.1} s ({:.2} cores busy on average), {:.1} ms per submission",
        until_receipts.as_secs_f64(),
        cpu_small / until_receipts.as_secs_f64(),
        cpu_small * 1000.0 / n as f64
    );
    println!(
        "ratio     : delivered / raw crypto = {:.2}, with receipts / raw crypto = {:.2}",
        delivered_rate / raw_small,
        receipt_rate / raw_small
    );
    assert!(hub.terminate());

    // 3. Big attachments, one after the other, on a fresh hub process.
    let (raddr, delivered, received_bytes) = counting_receiver().await;
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = TestConfig::write(
        &addr.to_string(),
        &channel_toml(port),
        &[("alpha", tenant(&format!("http://{raddr}/fv")))],
    );
    let hub = HubProcess::spawn(&cfg.main, addr, &cfg.path("hub.log")).await;
    let pid = hub.child.id();
    let rss_idle = peak_rss_mib(pid);
    let client = sender(port).await;
    let perf = start_perf(pid, ".attachment");
    let cpu0 = cpu_secs(pid);
    let mut rows = Vec::new();
    for i in 0..n_big {
        let aid = uuid::Uuid::new_v4().to_string();
        let meta = jose::encrypt_compact(
            &metadata(&data, &[(aid.clone(), big_hash.clone())]),
            &jwk,
            false,
        )
        .unwrap();
        let t = Instant::now();
        let a = client
            .announce(&announce_request(vec![aid.clone()]))
            .await
            .unwrap();
        client
            .upload_attachment(&a.submission_id, &aid, big_jwe.clone())
            .await
            .unwrap();
        let uploaded = t.elapsed();
        client
            .submit(&a.submission_id, &meta, Some(&data_jwe))
            .await
            .unwrap();
        let submitted = t.elapsed();
        wait_for(&delivered, i as u64 + 1, Duration::from_secs(600)).await;
        rows.push((uploaded, submitted, t.elapsed()));
    }
    stop_perf(perf);
    let cpu_big = cpu_secs(pid) - cpu0;
    let rss_big = peak_rss_mib(pid);
    assert!(received_bytes.load(Ordering::Relaxed) >= (n_big * big_size) as u64);
    let avg = |f: fn(&(Duration, Duration, Duration)) -> Duration| {
        rows.iter().map(f).sum::<Duration>().as_secs_f64() / rows.len() as f64
    };
    let (up, sub, total) = (avg(|r| r.0), avg(|r| r.1), avg(|r| r.2));
    let big_mbs = big_size as f64 / total / 1e6;
    println!(
        "attachment: {big_mib} MiB per submission, mean of {n_big}: upload {up:.2} s, submit answered {sub:.2} s, delivered {total:.2} s → {big_mbs:.0} MB/s ({:.2} submissions/s); hub peak RSS {rss_big:.0} MiB (idle {rss_idle:.0} MiB)",
        1.0 / total
    );
    println!(
        "hub CPU   : {:.2} s per attachment submission",
        cpu_big / n_big as f64
    );
    println!(
        "ratio     : attachment MB/s through the hub / raw crypto = {:.2}",
        big_mbs / raw_big_mbs
    );
    assert!(hub.terminate());
}
