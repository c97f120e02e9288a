//! OSCI-Transport 1.2 `StoreDelivery` into the hub's Intermediär (issue
//! 14), with a plain loopback POST of the same bytes as the peer and a
//! breakdown of where the time goes.
//!
//! Run with `cargo bench --bench osci` (see `docs/benchmarks.md`). The hub
//! runs **in-process** (`drehscheibe_suite::start`, sled store, release
//! build) with an `osci` channel keyed with the demo PKI of
//! `crates/osci/tests/demo-pki` (`osci_manager_*_4096`) and one postbox, bob
//! (`bob_cipher_4096`). The client is [`drehscheibe_osci::client::Client`]
//! as alice (`alice_cipher_4096` / `alice_signature_4096`), over loopback
//! HTTP — the code the hub's `osci` connector sends with.
//!
//! Scenarios:
//! 1. `small`: 30 KB content, as the connector sends it (one inline
//!    content, signed and end-to-end encrypted for bob) and unencrypted as
//!    a MIME attachment part; sequential and with N concurrent clients
//!    (one `Client` each). Message ids are drawn (`GetMessageId`) before
//!    the timed phase, so the phase is `StoreDelivery` alone; the
//!    `GetMessageId` latency is reported separately. Reported: messages/s,
//!    p50/p95 latency, content MB/s, CPU time per message (the whole
//!    process: client **and** hub), and the peer: a plain POST of as many
//!    bytes as the OSCI request on the wire to a trivial handler (collects
//!    the body like the Intermediär's route, answers an empty 200) with
//!    the same concurrency.
//! 2. `large`: one 10/30/100 MB attachment (`OutContent { attachment:
//!    true }`, `encrypt = false`: a MIME attachment part inside the
//!    transport encryption). Every size gets a **fresh hub process** (this
//!    binary re-executed with `OSCI_BENCH_ROLE=hub`: the hub in-process
//!    there, nothing else) and fresh client processes (`OSCI_BENCH_ROLE=
//!    client`), so each `VmHWM` is one side's alone. Reported: seconds per
//!    message and MB/s end to end, the hub's peak RSS after the first and
//!    after the last message (growth over idle as a multiple of the
//!    attachment), the client's, and the peer POST of the same size.
//! 3. `breakdown`: the pieces of one round trip timed separately on the
//!    very messages of 1 and 2 (captured by a recording proxy, decrypted
//!    with the demo keys, re-signed and re-encrypted through the crate's
//!    pub API): single RSA-4096 private- and public-key operations,
//!    certificate checks (RSA-2048, the demo CA's key), `dsig::sign` /
//!    `verify`, C14N + digests, `xenc::encrypt_element` /
//!    `encrypt_transport` / `decrypt_transport`, `mime::parse`,
//!    `Inner::parse`, `content::forwardable`, the hub's blob store; and
//!    the client's whole request build + send against a sink. The pieces
//!    run round-robin (one run of each per round, median over the
//!    rounds): the VM's speed changes from minute to minute, and this
//!    keeps their ratios. Raw-crypto peers: AES-256-GCM of `ring` through
//!    rustls' record cipher API (the `aes-gcm` crate the OSCI crate uses
//!    is no dependency of this package), `sha2`, a copy, and `openssl
//!    speed` (another process) if installed.
//!
//! Every phase of 1 and 2 prints a yardstick: the median of 7 RSA-4096
//! signatures taken just before it.
//!
//! Environment: `BENCH_OSCI_MESSAGES` (per small phase, default 200),
//! `BENCH_OSCI_CONCURRENCY` (default `4,16`; sequential always runs),
//! `BENCH_OSCI_SIZES_MB` (default `10,30,100`), `BENCH_OSCI_REPEAT`
//! (messages per large size, default 3), `BENCH_OSCI_SECTIONS` (default
//! `1,2,3`). Without `--bench` (`cargo test --benches`) a tiny smoke
//! version runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use drehscheibe_model::Intake as _;
use drehscheibe_osci::c14n::{Document, ElementRef};
use drehscheibe_osci::certs::TrustStore;
use drehscheibe_osci::client::{Client, ClientSettings, OutContent};
use drehscheibe_osci::dsig::{self, RefTarget, SignatureMethod};
use drehscheibe_osci::intermediary::KeyPair;
use drehscheibe_osci::message::{self, Inner, NS_DECLS};
use drehscheibe_osci::{certs, mime, xenc};
use drehscheibe_suite::bench::{env_usize, load, ms, percentile};
use drehscheibe_suite::osci::{cert, key_pair, pem, pki};
use drehscheibe_suite::{order, start, TestConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const LEISTUNG: &str = "99050012104000";
const AGS: &str = "09162000";
const MB: f64 = 1e6;

// ---------------------------------------------------------------------
// Keys, hub and clients

fn trust() -> Arc<TrustStore> {
    Arc::new(TrustStore::from_pem(&pem("osci_manager_cipher_4096.chain.pem")).unwrap())
}

fn pair_toml(name: &str) -> String {
    format!(
        r#"{{ key = "{}", cert = "{}" }}"#,
        pki(&format!("{name}.key.pem")).display(),
        pki(&format!("{name}.cert.pem")).display()
    )
}

/// The hub: the Intermediär `osci` with bob's postbox, no tenants.
fn hub_config() -> TestConfig {
    let channel = format!(
        r#"
[channels.osci]
type = "osci"
cipher = {cipher}
signature = {signature}
ca_certs = ["{chain}"]
max_message_bytes = "150 MB"

[[channels.osci.postboxes]]
name = "bob"
cert = "{bob}"
signature_cert = "{bob_sig}"
"#,
        cipher = pair_toml("osci_manager_cipher_4096"),
        signature = pair_toml("osci_manager_signature_4096"),
        chain = pki("osci_manager_cipher_4096.chain.pem").display(),
        bob = pki("bob_cipher_4096.cert.pem").display(),
        bob_sig = pki("bob_signature_4096.cert.pem").display(),
    );
    TestConfig::write("127.0.0.1:0", &channel, &[])
}

/// alice, sending to `url`.
fn alice(url: &str) -> Client {
    Client::new(ClientSettings {
        url: url.to_owned(),
        intermediary_cipher: cert("osci_manager_cipher_4096"),
        intermediary_signature: Some(cert("osci_manager_signature_4096")),
        cipher: key_pair("alice_cipher_4096"),
        signature: key_pair("alice_signature_4096"),
        trust: trust(),
        allow_legacy: false,
        timeout: Duration::from_secs(600),
        tls_ca_pem: None,
    })
    .unwrap()
}

fn osci_url(addr: SocketAddr) -> String {
    format!("http://{addr}/osci/osci")
}

/// Incompressible-looking bytes.
fn noise(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0])
        .collect()
}

// ---------------------------------------------------------------------
// Process figures

/// A `kB` field of `/proc/self/status` in KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) of this process so far (`/proc/self/stat`,
/// clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `openssl speed` (another process, the same run) as the peer for RSA
/// and AES-GCM, if the tool is installed: its result lines.
fn openssl_speed(args: &[&str]) -> Vec<String> {
    let Ok(out) = std::process::Command::new("openssl")
        .arg("speed")
        .args(args)
        .stderr(Stdio::null())
        .output()
    else {
        return vec!["(openssl not installed)".into()];
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("rsa ") || l.starts_with("AES-256-GCM") || l.starts_with("type"))
        .map(str::to_owned)
        .collect()
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    format!(
        "{} vCPU {} (family {} model {}, {} MHz), {mem:.1} GiB",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        field("model name"),
        field("cpu family"),
        field("model\t"),
        field("cpu MHz"),
    )
}

// ---------------------------------------------------------------------
// Loopback helpers: a sink (the peer) and a recording proxy

/// A trivial handler: collects the body as the Intermediär's route does
/// and answers an empty 200.
async fn sink() -> SocketAddr {
    use http_body_util::BodyExt as _;
    async fn take(body: axum::body::Body) -> axum::http::StatusCode {
        let c = http_body_util::Limited::new(body, 1 << 30)
            .collect()
            .await
            .unwrap();
        std::hint::black_box(c.to_bytes().len());
        axum::http::StatusCode::OK
    }
    let app = axum::Router::new()
        .route("/{*path}", axum::routing::post(take))
        .layer(axum::extract::DefaultBodyLimit::disable());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

/// What passed the proxy: (request body, response body).
type Seen = Arc<Mutex<Vec<(Bytes, Bytes)>>>;

/// A proxy to `target` that records every exchange.
async fn proxy(target: SocketAddr) -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    let http = reqwest::Client::new();
    let app = axum::Router::new()
        .route(
            "/osci/osci",
            axum::routing::post(move |body: Bytes| {
                let (seen, http) = (s2.clone(), http.clone());
                async move {
                    let resp = http
                        .post(osci_url(target))
                        .header("Content-Type", "text/xml")
                        .body(body.clone())
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap();
                    seen.lock().unwrap().push((body, resp.clone()));
                    resp
                }
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::disable());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, seen)
}

// ---------------------------------------------------------------------
// Scenario 1: 30 KB

#[derive(Clone, Copy)]
struct Variant {
    name: &'static str,
    encrypt: bool,
    attachment: bool,
}

const ENCRYPTED: Variant = Variant {
    name: "inline, encrypted for bob (connector default)",
    encrypt: true,
    attachment: false,
};
const ATTACHED: Variant = Variant {
    name: "attachment, unencrypted",
    encrypt: false,
    attachment: true,
};

fn contents(v: Variant, bytes: Vec<u8>) -> Vec<OutContent> {
    vec![OutContent {
        name: if v.attachment {
            "scan.bin".into()
        } else {
            "antrag.xml".into()
        },
        bytes: bytes.into(),
        attachment: v.attachment,
    }]
}

/// `n` message ids for alice, drawn by `clients.len()` workers; and the
/// GetMessageId latencies (sorted).
async fn draw_ids(clients: &[Client], n: usize) -> (Vec<String>, Vec<Duration>) {
    let left = Arc::new(std::sync::atomic::AtomicUsize::new(n));
    let mut tasks = Vec::new();
    for c in clients {
        let (c, left) = (c.clone(), left.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while left
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |k| k.checked_sub(1),
                )
                .is_ok()
            {
                let t = Instant::now();
                let id = c.get_message_id().await.expect("GetMessageId");
                out.push((id, t.elapsed()));
            }
            out
        }));
    }
    let (mut ids, mut lat) = (Vec::new(), Vec::new());
    for t in tasks {
        for (id, d) in t.await.unwrap() {
            ids.push(id);
            lat.push(d);
        }
    }
    lat.sort();
    (ids, lat)
}

struct Phase {
    elapsed: Duration,
    cpu: Duration,
    latencies: Vec<Duration>,
}

/// StoreDelivery of `content` once per id, `clients.len()` at a time.
async fn store_phase(
    clients: &[Client],
    ids: Vec<String>,
    content: Arc<Vec<OutContent>>,
    encrypt: bool,
) -> Phase {
    let bob = Arc::new(cert("bob_cipher_4096"));
    let queue = Arc::new(Mutex::new(ids));
    let (cpu0, start) = (cpu_time(), Instant::now());
    let mut tasks = Vec::new();
    for c in clients {
        let (c, queue, content, bob) = (c.clone(), queue.clone(), content.clone(), bob.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let Some(id) = queue.lock().unwrap().pop() else {
                    break;
                };
                let t = Instant::now();
                c.store_delivery(&id, Some("Benchmark"), &bob, &content, encrypt)
                    .await
                    .expect("StoreDelivery");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    latencies.sort();
    Phase {
        elapsed: start.elapsed(),
        cpu: cpu_time().saturating_sub(cpu0),
        latencies,
    }
}

/// The wire sizes of one StoreDelivery of `content` (request, response)
/// and the bytes: captured through a recording proxy.
async fn capture(hub: SocketAddr, v: Variant, content: &[OutContent]) -> (Bytes, Bytes) {
    let (paddr, seen) = proxy(hub).await;
    let c = alice(&osci_url(paddr));
    let id = c.get_message_id().await.unwrap();
    c.store_delivery(
        &id,
        Some("Benchmark"),
        &cert("bob_cipher_4096"),
        content,
        v.encrypt,
    )
    .await
    .unwrap();
    let g = seen.lock().unwrap();
    g.last().cloned().unwrap()
}

// ---------------------------------------------------------------------
// Scenario 2: large attachments in fresh processes

/// `OSCI_BENCH_ROLE=hub`: the hub alone; `READY addr hwm rss` on stdout,
/// then `RSS hwm rss` for every line on stdin, until stdin closes.
async fn hub_child() {
    let cfg = hub_config();
    let hub = start(&cfg.main).await.unwrap();
    println!(
        "READY {} {} {}",
        hub.addr,
        status_kib("VmHWM:"),
        status_kib("VmRSS:")
    );
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut out = tokio::io::stdout();
    out.flush().await.unwrap();
    while let Ok(Some(_)) = lines.next_line().await {
        let l = format!("RSS {} {}\n", status_kib("VmHWM:"), status_kib("VmRSS:"));
        out.write_all(l.as_bytes()).await.unwrap();
        out.flush().await.unwrap();
    }
    hub.shutdown().await.unwrap();
    drop(cfg);
}

/// `OSCI_BENCH_ROLE=client`: `OSCI_BENCH_REPEAT` StoreDeliveries of one
/// `OSCI_BENCH_BYTES` attachment to `OSCI_BENCH_HUB`; prints
/// `RUN get_s store_s` per message, then `CLIENT hwm_idle hwm_with_content hwm_end`.
async fn client_child() {
    let addr: SocketAddr = std::env::var("OSCI_BENCH_HUB").unwrap().parse().unwrap();
    let bytes = env_usize("OSCI_BENCH_BYTES", 1_000_000);
    let repeat = env_usize("OSCI_BENCH_REPEAT", 1);
    let c = alice(&osci_url(addr));
    let bob = cert("bob_cipher_4096");
    let idle = status_kib("VmHWM:");
    let content = contents(ATTACHED, noise(bytes));
    let loaded = status_kib("VmHWM:");
    for _ in 0..repeat {
        let t = Instant::now();
        let id = c.get_message_id().await.unwrap();
        let g = t.elapsed();
        let t = Instant::now();
        c.store_delivery(&id, Some("Benchmark"), &bob, &content, false)
            .await
            .expect("StoreDelivery");
        println!("RUN {} {}", g.as_secs_f64(), t.elapsed().as_secs_f64());
    }
    println!("CLIENT {idle} {loaded} {}", status_kib("VmHWM:"));
}

fn child(role: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(std::env::current_exe().unwrap());
    c.env("OSCI_BENCH_ROLE", role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    c
}

struct ClientRuns {
    store: Vec<f64>,
    get: Vec<f64>,
    /// VmHWM KiB: idle, with the content built, at the end.
    hwm: (u64, u64, u64),
}

async fn run_client(hub: SocketAddr, bytes: usize, repeat: usize) -> ClientRuns {
    let out = child("client")
        .env("OSCI_BENCH_HUB", hub.to_string())
        .env("OSCI_BENCH_BYTES", bytes.to_string())
        .env("OSCI_BENCH_REPEAT", repeat.to_string())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "client child failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut r = ClientRuns {
        store: Vec::new(),
        get: Vec::new(),
        hwm: (0, 0, 0),
    };
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.first() {
            Some(&"RUN") => {
                r.get.push(f[1].parse().unwrap());
                r.store.push(f[2].parse().unwrap());
            }
            Some(&"CLIENT") => {
                r.hwm = (
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                )
            }
            _ => {}
        }
    }
    r
}

struct Large {
    bytes: usize,
    /// Seconds per StoreDelivery (all messages).
    store: Vec<f64>,
    get: Vec<f64>,
    /// Hub VmHWM (KiB): idle, after the first message, after all.
    hub: (u64, u64, u64),
    /// Client VmHWM (KiB): idle, content built, end (the first client).
    client: (u64, u64, u64),
}

/// Ask the hub child for its VmHWM (KiB).
async fn hub_rss(
    stdin: &mut tokio::process::ChildStdin,
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
) -> u64 {
    stdin.write_all(b"rss\n").await.unwrap();
    stdin.flush().await.unwrap();
    let l = lines.next_line().await.unwrap().unwrap();
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn large(bytes: usize, repeat: usize) -> Large {
    let mut hub = child("hub").spawn().unwrap();
    let mut stdin = hub.stdin.take().unwrap();
    let mut lines = tokio::io::BufReader::new(hub.stdout.take().unwrap()).lines();
    let ready = lines.next_line().await.unwrap().unwrap();
    let f: Vec<&str> = ready.split_whitespace().collect();
    assert_eq!(f[0], "READY", "{ready}");
    let addr: SocketAddr = f[1].parse().unwrap();
    let idle: u64 = f[2].parse().unwrap();
    let first = run_client(addr, bytes, 1).await;
    let after_first = hub_rss(&mut stdin, &mut lines).await;
    let mut store = first.store.clone();
    let mut get = first.get.clone();
    if repeat > 1 {
        let more = run_client(addr, bytes, repeat - 1).await;
        store.extend(more.store);
        get.extend(more.get);
    }
    let after_all = hub_rss(&mut stdin, &mut lines).await;
    drop(stdin);
    assert!(hub.wait().await.unwrap().success(), "hub child failed");
    Large {
        bytes,
        store,
        get,
        hub: (idle, after_first, after_all),
        client: first.hwm,
    }
}

// ---------------------------------------------------------------------
// Scenario 3: the pieces

/// Median wall time of `f` over `iters` runs (after one warm-up run).
fn time<T>(iters: usize, mut f: impl FnMut() -> T) -> Duration {
    std::hint::black_box(f());
    let mut v: Vec<Duration> = (0..iters.max(1))
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    v.sort();
    v[v.len() / 2]
}

fn row_rate(what: &str, d: Duration, bytes: usize) {
    println!(
        "  {what:<74} {:>10.3} ms  {:>8.0} MB/s",
        ms(d),
        bytes as f64 / MB / d.as_secs_f64()
    );
}

/// The references of a `ds:Signature`: (URI, base64 transform?).
fn references(sig: ElementRef<'_>) -> Vec<(String, bool)> {
    sig.child("SignedInfo")
        .unwrap()
        .children_named("Reference")
        .into_iter()
        .map(|r| {
            let b64 = r
                .child("Transforms")
                .map(|t| {
                    t.children_named("Transform")
                        .iter()
                        .any(|t| t.attr("Algorithm").is_some_and(|a| a.ends_with("#base64")))
                })
                .unwrap_or(false);
            (r.attr("URI").unwrap().to_owned(), b64)
        })
        .collect()
}

fn targets<'a>(refs: &'a [(String, bool)], m: &'a mime::Message<'a>) -> Vec<RefTarget<'a>> {
    refs.iter()
        .map(|(uri, b64)| match uri.strip_prefix('#') {
            Some(id) if *b64 => RefTarget::Base64Id(id),
            Some(id) => RefTarget::Id(id),
            None => RefTarget::Cid {
                uri,
                bytes: m.part(uri).unwrap().body,
            },
        })
        .collect()
}

/// `xml` with the first `<ds:Signature>…</ds:Signature>` after `after`
/// replaced by `marker`.
fn unsign(xml: &str, after: &str, marker: &str) -> String {
    let from = xml.find(after).unwrap();
    let s = from + xml[from..].find("<ds:Signature>").unwrap();
    let e = s + xml[s..].find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    format!("{}{marker}{}", &xml[..s], &xml[e..])
}

fn envelope<'a>(m: &'a mime::Message<'a>) -> &'a str {
    std::str::from_utf8(m.part(message::ROOT_CID).unwrap().body).unwrap()
}

struct Keys {
    intermediary_cipher: KeyPair,
    intermediary_signature: KeyPair,
    alice_cipher: KeyPair,
    alice_signature: KeyPair,
    bob_cipher: KeyPair,
    trust: Arc<TrustStore>,
}

fn keys() -> Keys {
    Keys {
        intermediary_cipher: key_pair("osci_manager_cipher_4096"),
        intermediary_signature: key_pair("osci_manager_signature_4096"),
        alice_cipher: key_pair("alice_cipher_4096"),
        alice_signature: key_pair("alice_signature_4096"),
        bob_cipher: key_pair("bob_cipher_4096"),
        trust: trust(),
    }
}

/// AES-256-GCM over `n` bytes: ring (through rustls' TLS 1.3 record
/// cipher, the raw-crypto peer) and SHA-256 and a copy as yardsticks.
fn bulk_primitives(n: usize, iters: usize) {
    use rustls::crypto::cipher::{
        AeadKey, InboundOpaqueMessage, Iv, OutboundChunks, OutboundPlainMessage,
    };
    use rustls::{ContentType, ProtocolVersion};
    let data = noise(n);
    let rustls::SupportedCipherSuite::Tls13(suite) =
        rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384
    else {
        unreachable!()
    };
    let aead = suite.aead_alg;
    let mut enc = aead.encrypter(AeadKey::from([7u8; 32]), Iv::new([1u8; 12]));
    let mut dec = aead.decrypter(AeadKey::from([7u8; 32]), Iv::new([1u8; 12]));
    let seal = |enc: &mut Box<dyn rustls::crypto::cipher::MessageEncrypter>| {
        enc.encrypt(
            OutboundPlainMessage {
                typ: ContentType::ApplicationData,
                version: ProtocolVersion::TLSv1_2,
                payload: OutboundChunks::Single(&data),
            },
            0,
        )
        .unwrap()
        .encode()
    };
    let label = if n >= 1_000_000 {
        format!("{:.0} MB", n as f64 / MB)
    } else {
        format!("{:.0} KB", n as f64 / 1e3)
    };
    row_rate(
        &format!("AES-256-GCM encrypt {label} (ring via rustls cipher API, copies once)"),
        time(iters, || seal(&mut enc)),
        n,
    );
    let sealed = seal(&mut enc);
    // The record header (5 bytes) is not part of the ciphertext.
    let mut buf = sealed.clone();
    let d = time(iters, || {
        buf.copy_from_slice(&sealed);
        let r = dec.decrypt(
            InboundOpaqueMessage::new(
                ContentType::ApplicationData,
                ProtocolVersion::TLSv1_2,
                &mut buf[5..],
            ),
            0,
        );
        // Records above 16 KB are refused after the tag verified.
        assert!(
            !matches!(r, Err(rustls::Error::DecryptError)),
            "{:?}",
            r.err()
        );
    });
    let copy = time(iters, || buf.copy_from_slice(&sealed));
    row_rate(
        &format!("AES-256-GCM decrypt {label} (ring via rustls, in place)"),
        d.saturating_sub(copy),
        n,
    );
    row_rate(
        &format!("SHA-256 of {label} (sha2)"),
        time(iters, || {
            use sha2::Digest as _;
            sha2::Sha256::digest(&data)
        }),
        n,
    );
    row_rate(
        &format!("copy of {label} (Vec clone)"),
        time(iters, || data.clone()),
        n,
    );
}

/// What a row of the breakdown belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Group {
    /// Single RSA operations (not summed).
    Rsa,
    /// The client building and sending the request.
    Client,
    /// The Intermediär.
    Hub,
    /// The client reading the response.
    Response,
    /// A part of the row above it (not summed).
    Detail,
}

/// One timed piece.
struct Piece<'a> {
    label: String,
    /// Bytes it works on (for MB/s).
    bytes: Option<usize>,
    group: Group,
    f: Box<dyn FnMut() + 'a>,
}

fn piece<'a, T>(
    group: Group,
    label: impl Into<String>,
    bytes: Option<usize>,
    mut f: impl FnMut() -> T + 'a,
) -> Piece<'a> {
    Piece {
        label: label.into(),
        bytes,
        group,
        f: Box::new(move || {
            std::hint::black_box(f());
        }),
    }
}

/// Median of every piece, measured round-robin (one run of each piece
/// per round, after a warm-up round), so a slower minute of the shared
/// VM slows all pieces alike and their ratios hold.
fn round_robin(pieces: &mut [Piece<'_>], rounds: usize) -> Vec<Duration> {
    for p in pieces.iter_mut() {
        (p.f)();
    }
    let mut times = vec![Vec::with_capacity(rounds); pieces.len()];
    for _ in 0..rounds.max(1) {
        for (i, p) in pieces.iter_mut().enumerate() {
            let t = Instant::now();
            (p.f)();
            times[i].push(t.elapsed());
        }
    }
    times
        .into_iter()
        .map(|mut v| {
            v.sort();
            v[v.len() / 2]
        })
        .collect()
}

fn print_piece(label: &str, bytes: Option<usize>, group: Group, d: Duration) {
    let indent = if group == Group::Detail { "    " } else { "  " };
    match bytes {
        Some(n) => println!(
            "{indent}{label:<76} {:>10.3} ms {:>7.0} MB/s",
            ms(d),
            n as f64 / MB / d.as_secs_f64()
        ),
        None => println!("{indent}{label:<76} {:>10.3} ms", ms(d)),
    }
}

/// The single RSA operations, from a row set.
#[derive(Default, Clone, Copy)]
struct Rsa {
    private_oaep: f64,
    private_sign: f64,
    public_oaep: f64,
    public_verify: f64,
    chain_2048: f64,
}

impl Rsa {
    /// RSA time of one StoreDelivery round trip (ms): client: content
    /// signature, request signature, OAEP for the Intermediär (+ for the
    /// addressee); Intermediär: OAEP decrypt, 3 certificate checks,
    /// ClientSignature verify, SupplierSignature, OAEP for the client;
    /// client: OAEP decrypt, 1 certificate check, SupplierSignature
    /// verify.
    fn round_trip(&self, encrypted: bool) -> (f64, f64) {
        let private = 3.0 * self.private_sign + 2.0 * self.private_oaep;
        let oaep = if encrypted { 3.0 } else { 2.0 };
        (
            private,
            private + oaep * self.public_oaep + 2.0 * self.public_verify + 4.0 * self.chain_2048,
        )
    }
}

/// Sums of one message's pieces (ms).
#[derive(Default)]
struct Pieces {
    client: f64,
    hub: f64,
    client_response: f64,
    rsa: Rsa,
}

/// The pieces of one captured StoreDelivery exchange (`req`, `resp` as
/// on the wire; `content_len` the client's content), in the order they
/// happen, measured round-robin together with single RSA operations
/// (`with_rsa`).
#[allow(clippy::too_many_arguments)]
async fn breakdown(
    title: &str,
    k: &Keys,
    hub: &drehscheibe_suite::Runtime,
    req: &[u8],
    resp: &[u8],
    content_len: usize,
    rounds: usize,
    with_rsa: bool,
) -> Pieces {
    println!(
        "{title}: request {} bytes on the wire, response {} bytes (median of {rounds}, round-robin)",
        req.len(),
        resp.len()
    );
    // The request as the Intermediär sees it after decryption.
    let inner =
        xenc::decrypt_transport(req, &k.intermediary_cipher.key, xenc::Algorithms::MODERN).unwrap();
    let im = mime::parse(&inner).unwrap();
    let env = envelope(&im);
    let idoc = Document::parse(env.as_bytes()).unwrap();
    let req_refs = references(
        idoc.root()
            .child("Header")
            .unwrap()
            .child("ClientSignature")
            .unwrap()
            .child("Signature")
            .unwrap(),
    );
    // The content container as the client signed it.
    let package = idoc
        .root()
        .child("Body")
        .unwrap()
        .child("ContentPackage")
        .unwrap();
    let encrypted = package.child("EncryptedData").is_some();
    let container: String = match package.child("EncryptedData") {
        Some(enc) => String::from_utf8(
            xenc::decrypt_element(
                &idoc,
                Some(&im),
                enc,
                &k.bob_cipher.key,
                Some(&k.bob_cipher.cert),
                xenc::Algorithms::MODERN,
            )
            .unwrap(),
        )
        .unwrap(),
        None => {
            let s = env.find("<osci:ContentContainer").unwrap();
            let e = s
                + env[s..].find("</osci:ContentContainer>").unwrap()
                + "</osci:ContentContainer>".len();
            env[s..e].to_owned()
        }
    };
    const MARKER: &str = "<!--osci:content-signature-->";
    let wrapper = format!(
        "<osci:ContentPackage {NS_DECLS}>{}</osci:ContentPackage>",
        unsign(&container, "<osci:ContentContainer", MARKER)
    );
    let cdoc_text = format!("<osci:ContentPackage {NS_DECLS}>{container}</osci:ContentPackage>");
    let cdoc = Document::parse(cdoc_text.as_bytes()).unwrap();
    let content_refs = references(cdoc.elements_named("Signature")[0]);
    let content_targets = targets(&content_refs, &im);
    let sig_key_info = format!(
        r##"<ds:RetrievalMethod URI="#{}"></ds:RetrievalMethod>"##,
        message::certificate_id("originator_signature", &k.alice_signature.cert)
    );
    const SIG_MARKER: &str = "<!--osci:client-signature-->";
    let unsigned = unsign(env, "<osci:ClientSignature", SIG_MARKER);
    let req_targets = targets(&req_refs, &im);
    let addressee_id = message::certificate_id("addressee_cipher", &k.bob_cipher.cert);
    let parsed = Inner::parse(&inner).unwrap();
    let certs_list = message::Certificates::read(&parsed).unwrap();
    let signer = dsig::rsa_key_of_certificate(&k.alice_signature.cert).unwrap();
    let client_sig = parsed
        .header("ClientSignature")
        .unwrap()
        .child("Signature")
        .unwrap();
    let ids: Vec<&str> = req_refs
        .iter()
        .filter_map(|(u, _)| u.strip_prefix('#'))
        .collect();
    let cids: Vec<&[u8]> = req_refs
        .iter()
        .filter(|(u, _)| u.starts_with("cid:"))
        .map(|(u, _)| parsed.mime.part(u).unwrap().body)
        .collect();
    // The response as the Intermediär wrote it.
    let resp_inner =
        xenc::decrypt_transport(resp, &k.alice_cipher.key, xenc::Algorithms::MODERN).unwrap();
    let rm = mime::parse(&resp_inner).unwrap();
    let renv = envelope(&rm);
    let rdoc = Document::parse(renv.as_bytes()).unwrap();
    let resp_refs = references(rdoc.elements_named("Signature")[0]);
    let resp_targets = targets(&resp_refs, &rm);
    const SUP_MARKER: &str = "<!--osci:supplier-signature-->";
    let resp_unsigned = unsign(renv, "<osci:SupplierSignature", SUP_MARKER);
    let sup_key_info = format!(
        r##"<ds:RetrievalMethod URI="#{}"></ds:RetrievalMethod>"##,
        message::certificate_id("intermediary_signature", &k.intermediary_signature.cert)
    );
    // Single RSA operations, each in the smallest call of the pub API
    // that makes it (the XML around it is a few hundred bytes).
    let tiny = xenc::encrypt_transport(b"x", &k.intermediary_cipher.cert).unwrap();
    let small_doc = small_doc();
    let small_sign = || small_sign(k, &small_doc);
    let small_signed = small_sign();
    let small_parsed = Document::parse(small_signed.as_bytes()).unwrap();
    let small_sig = small_parsed.elements_named("Signature")[0];

    let content_src = noise(content_len);
    let mut rows: Vec<Piece<'_>> = Vec::new();
    if with_rsa {
        rows.push(piece(
            Group::Rsa,
            "RSA-4096 private: OAEP decrypt of a 32-byte key (decrypt_transport of 1 B)",
            None,
            || {
                xenc::decrypt_transport(&tiny, &k.intermediary_cipher.key, xenc::Algorithms::MODERN)
                    .unwrap()
            },
        ));
        rows.push(piece(
            Group::Rsa,
            "RSA-4096 private: PKCS#1 v1.5 sign of a SHA-256 digest (dsig::sign, 1 tiny ref)",
            None,
            small_sign,
        ));
        rows.push(piece(
            Group::Rsa,
            "RSA-4096 public: OAEP encrypt of a 32-byte key (encrypt_element of 1 B)",
            None,
            || {
                xenc::encrypt_element(
                    b"x",
                    "e",
                    &[xenc::Reader {
                        cert_der: &k.bob_cipher.cert,
                        retrieval_id: Some("c"),
                    }],
                )
                .unwrap()
            },
        ));
        rows.push(piece(
            Group::Rsa,
            "RSA-4096 public: PKCS#1 v1.5 verify (dsig::verify, 1 tiny ref)",
            None,
            || dsig::verify(&small_parsed, None, small_sig, &signer).unwrap(),
        ));
        rows.push(piece(
            Group::Rsa,
            "certificate check: parse + chain to the demo CA = 1 RSA-2048 verify (certs::check)",
            None,
            || {
                certs::check(
                    &k.alice_signature.cert,
                    &[],
                    &k.trust,
                    SystemTime::now(),
                    false,
                )
                .unwrap()
            },
        ));
    }
    rows.push(piece(
        Group::Client,
        "Client::content_package clones the content (OutContent bytes, one copy)",
        Some(content_len),
        || content_src.clone(),
    ));
    rows.push(piece(
        Group::Client,
        format!(
            "content signature: dsig::sign (refs: {})",
            content_refs
                .iter()
                .map(|(u, _)| u.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Some(content_len),
        || {
            dsig::sign(
                &wrapper,
                MARKER,
                &content_targets,
                SignatureMethod::RsaSha256,
                &k.alice_signature.key,
                &sig_key_info,
            )
            .unwrap()
        },
    ));
    if encrypted {
        rows.push(piece(
            Group::Client,
            format!(
                "content encryption for bob: xenc::encrypt_element ({} B container)",
                container.len()
            ),
            Some(container.len()),
            || {
                xenc::encrypt_element(
                    container.as_bytes(),
                    "encdata_0",
                    &[xenc::Reader {
                        cert_der: &k.bob_cipher.cert,
                        retrieval_id: Some(&addressee_id),
                    }],
                )
                .unwrap()
            },
        ));
    }
    rows.push(piece(
        Group::Client,
        format!(
            "request signature: dsig::sign ({} refs, {} B envelope)",
            req_refs.len(),
            env.len()
        ),
        Some(inner.len()),
        || {
            dsig::sign(
                &unsigned,
                SIG_MARKER,
                &req_targets,
                SignatureMethod::RsaSha256,
                &k.alice_signature.key,
                &sig_key_info,
            )
            .unwrap()
        },
    ));
    rows.push(piece(
        Group::Client,
        "framing the inner MIME message (≈ one copy of it)",
        Some(inner.len()),
        || inner.clone(),
    ));
    rows.push(piece(
        Group::Client,
        "transport encryption: xenc::encrypt_transport (AES-256-GCM + 1 OAEP)",
        Some(inner.len()),
        || xenc::encrypt_transport(&inner, &k.intermediary_cipher.cert).unwrap(),
    ));
    rows.push(piece(
        Group::Hub,
        "transport decryption: xenc::decrypt_transport (MIME + 1 OAEP + AES-256-GCM)",
        Some(req.len()),
        || {
            xenc::decrypt_transport(req, &k.intermediary_cipher.key, xenc::Algorithms::MODERN)
                .unwrap()
        },
    ));
    rows.push(piece(
        Group::Detail,
        "of which mime::parse of the request",
        Some(req.len()),
        || mime::parse(req).unwrap().parts.len(),
    ));
    rows.push(piece(
        Group::Hub,
        "Inner::parse (MIME + XML of the envelope)",
        Some(inner.len()),
        || Inner::parse(&inner).unwrap().mime.parts.len(),
    ));
    rows.push(piece(
        Group::Detail,
        "of which mime::parse of the inner message",
        Some(inner.len()),
        || mime::parse(&inner).unwrap().parts.len(),
    ));
    rows.push(piece(
        Group::Hub,
        format!(
            "certificate checks: certs::check × {}",
            certs_list.entries.len()
        ),
        None,
        || {
            for c in &certs_list.entries {
                certs::check(&c.der, &[], &k.trust, SystemTime::now(), false).unwrap();
            }
        },
    ));
    rows.push(piece(
        Group::Hub,
        "ClientSignature check: dsig::verify (C14N, digests, 1 RSA verify)",
        Some(inner.len()),
        || dsig::verify(&parsed.doc, Some(&parsed.mime), client_sig, &signer).unwrap(),
    ));
    rows.push(piece(
        Group::Detail,
        format!(
            "of which C14N + SHA-256 of the {} signed blocks of the envelope",
            ids.len()
        ),
        None,
        || {
            for id in &ids {
                let c = parsed
                    .doc
                    .element_by_id(id)
                    .unwrap()
                    .canonicalize()
                    .unwrap();
                std::hint::black_box(dsig::DigestMethod::Sha256.digest(&c));
            }
        },
    ));
    if !cids.is_empty() {
        rows.push(piece(
            Group::Detail,
            "of which SHA-256 of the attachment parts",
            Some(cids.iter().map(|c| c.len()).sum()),
            || {
                for c in &cids {
                    std::hint::black_box(dsig::DigestMethod::Sha256.digest(c));
                }
            },
        ));
    }
    rows.push(piece(
        Group::Hub,
        "content::forwardable (store-time check: C14N of blocks, copies attachments)",
        Some(inner.len()),
        || drehscheibe_osci::content::forwardable(&parsed).unwrap(),
    ));
    rows.push(piece(
        Group::Hub,
        "response: SupplierSignature (dsig::sign) + encrypt_transport (1 OAEP)",
        None,
        || {
            let signed = dsig::sign(
                &resp_unsigned,
                SUP_MARKER,
                &resp_targets,
                SignatureMethod::RsaSha256,
                &k.intermediary_signature.key,
                &sup_key_info,
            )
            .unwrap();
            xenc::encrypt_transport(signed.as_bytes(), &k.alice_cipher.cert).unwrap()
        },
    ));
    rows.push(piece(
        Group::Response,
        "decrypt_transport + Inner::parse + certs::check + SupplierSignature verify",
        None,
        || {
            let inner =
                xenc::decrypt_transport(resp, &k.alice_cipher.key, xenc::Algorithms::MODERN)
                    .unwrap();
            let parsed = Inner::parse(&inner).unwrap();
            let certs_list = message::Certificates::read(&parsed).unwrap();
            let c = certs_list
                .get(message::role::SIGNATURE_INTERMEDIARY)
                .unwrap();
            certs::check(&c.der, &[], &k.trust, SystemTime::now(), false).unwrap();
            let key = dsig::rsa_key_of_certificate(&c.der).unwrap();
            let sig = parsed
                .header("SupplierSignature")
                .unwrap()
                .child("Signature")
                .unwrap();
            dsig::verify(&parsed.doc, Some(&parsed.mime), sig, &key).unwrap()
        },
    ));
    let times = round_robin(&mut rows, rounds);

    // The hub's blob store (async, its own loop).
    let blobs = hub.hub.blobs();
    let mut stage_times = Vec::new();
    for i in 0..rounds.clamp(1, 5) {
        // A fresh blob each time (content-addressed).
        let mut b = inner.clone();
        let n = b.len();
        b[n - 1] ^= i as u8 + 1;
        let t = Instant::now();
        let r = blobs
            .stage(Box::pin(std::io::Cursor::new(Bytes::from(b))), u64::MAX)
            .await
            .unwrap();
        stage_times.push(t.elapsed());
        blobs.discard_staged(&r).await.unwrap();
    }
    stage_times.sort();
    let stage = stage_times[stage_times.len() / 2];

    let mut p = Pieces::default();
    let mut last = None;
    for (row, d) in rows.iter().zip(&times) {
        let group = if row.group == Group::Detail {
            last.unwrap_or(Group::Detail)
        } else {
            row.group
        };
        if Some(group) != last {
            if last == Some(Group::Hub) {
                print_piece(
                    "storing: the hub's blob store stage (SHA-256 + write + fsync)",
                    Some(inner.len()),
                    Group::Hub,
                    stage,
                );
            }
            println!(
                " {}",
                match group {
                    Group::Rsa => "single RSA operations:",
                    Group::Client => "client, request:",
                    Group::Hub => "Intermediär:",
                    Group::Response => "client, response:",
                    Group::Detail => "",
                }
            );
            last = Some(group);
        }
        print_piece(&row.label, row.bytes, row.group, *d);
        let x = ms(*d);
        match row.group {
            Group::Client => p.client += x,
            Group::Hub => p.hub += x,
            Group::Response => p.client_response += x,
            Group::Rsa | Group::Detail => {}
        }
    }
    p.hub += ms(stage);
    if with_rsa {
        p.rsa = Rsa {
            private_oaep: ms(times[0]),
            private_sign: ms(times[1]),
            public_oaep: ms(times[2]),
            public_verify: ms(times[3]),
            chain_2048: ms(times[4]),
        };
    }
    println!(
        " sum of the pieces: client request {:.1} ms + Intermediär {:.1} ms + client response {:.1} ms = {:.1} ms",
        p.client,
        p.hub,
        p.client_response,
        p.client + p.hub + p.client_response
    );
    p
}

/// The median of 7 single RSA-4096 signs (the VM's speed varies by up
/// to 2× between minutes; this puts a phase's figures in scale).
fn sign_yardstick(k: &Keys) -> Duration {
    let doc = small_doc();
    time(7, || small_sign(k, &doc))
}

/// A document of a few hundred bytes with one element to sign: the
/// smallest call that makes one RSA signature.
fn small_doc() -> String {
    format!(r#"<osci:X {NS_DECLS}><osci:A Id="a">hello</osci:A><!--m--></osci:X>"#)
}

/// `doc` ([`small_doc`]) signed with alice's key: one RSA-4096 signature.
fn small_sign(k: &Keys, doc: &str) -> String {
    dsig::sign(
        doc,
        "<!--m-->",
        &[RefTarget::Id("a")],
        SignatureMethod::RsaSha256,
        &k.alice_signature.key,
        "<ds:KeyName>k</ds:KeyName>",
    )
    .unwrap()
}

/// The client's request build + send against the sink (which answers an
/// empty 200 the client refuses at once), alternating with a single RSA
/// sign (a yardstick for the VM's speed at that moment): medians of
/// both.
async fn build_and_send(
    sink: SocketAddr,
    k: &Keys,
    content: &[OutContent],
    encrypt: bool,
    iters: usize,
) -> (Duration, Duration) {
    let c = alice(&format!("http://{sink}/probe"));
    let small_doc = format!(r#"<osci:X {NS_DECLS}><osci:A Id="a">hello</osci:A><!--m--></osci:X>"#);
    let (mut v, mut s) = (Vec::new(), Vec::new());
    for _ in 0..=iters.max(1) {
        let t = Instant::now();
        let r = c
            .store_delivery("bench-id", None, &k.bob_cipher.cert, content, encrypt)
            .await;
        assert!(r.is_err());
        v.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(
            dsig::sign(
                &small_doc,
                "<!--m-->",
                &[RefTarget::Id("a")],
                SignatureMethod::RsaSha256,
                &k.alice_signature.key,
                "<ds:KeyName>k</ds:KeyName>",
            )
            .unwrap(),
        );
        s.push(t.elapsed());
    }
    v.remove(0);
    s.remove(0);
    v.sort();
    s.sort();
    (v[v.len() / 2], s[s.len() / 2])
}

// ---------------------------------------------------------------------

fn list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    match std::env::var("OSCI_BENCH_ROLE").as_deref() {
        Ok("hub") => return hub_child().await,
        Ok("client") => return client_child().await,
        _ => {}
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: a
    // tiny smoke version then.
    let is_bench = std::env::args().any(|a| a == "--bench");
    let n = if is_bench {
        env_usize("BENCH_OSCI_MESSAGES", 200)
    } else {
        2
    };
    let mut concurrency = vec![1];
    concurrency.extend(if is_bench {
        list("BENCH_OSCI_CONCURRENCY", "4,16")
    } else {
        // The smoke version runs in the test profile, where one RSA-4096
        // operation takes a third of a second.
        Vec::new()
    });
    let sizes_mb = if is_bench {
        list("BENCH_OSCI_SIZES_MB", "10,30,100")
    } else {
        vec![1]
    };
    let repeat = if is_bench {
        env_usize("BENCH_OSCI_REPEAT", 3).max(1)
    } else {
        1
    };
    let iters = if is_bench { 40 } else { 1 };
    let sections = list("BENCH_OSCI_SECTIONS", "1,2,3");
    let big_iters = if is_bench { 3 } else { 1 };
    println!("osci bench: {}; load average {}", machine(), loadavg());
    let started = Instant::now();

    let cfg = hub_config();
    let hub = start(&cfg.main).await.unwrap();
    let sink = sink().await;
    let doc = order(AGS, LEISTUNG, 30 * 1024 - 300);
    let k = keys();

    // 1. 30 KB.
    println!(
        "\n1. StoreDelivery, {} B content, in-process hub; {n} messages per phase",
        doc.len()
    );
    let mut captured = Vec::new();
    for v in [ENCRYPTED, ATTACHED] {
        let content = Arc::new(contents(v, doc.clone()));
        let (req, resp) = capture(hub.addr, v, &content).await;
        println!(
            "{}: request {} B, response {} B on the wire",
            v.name,
            req.len(),
            resp.len()
        );
        let phases: &[usize] = if sections.contains(&1) {
            &concurrency
        } else {
            &[]
        };
        for &conc in phases {
            let clients: Vec<Client> = (0..conc).map(|_| alice(&osci_url(hub.addr))).collect();
            // Warm-up: connections.
            let (warm, _) = draw_ids(&clients, conc).await;
            store_phase(&clients, warm, content.clone(), v.encrypt).await;
            let (ids, get_lat) = draw_ids(&clients, n).await;
            let yardstick = sign_yardstick(&k);
            let p = store_phase(&clients, ids, content.clone(), v.encrypt).await;
            let rate = n as f64 / p.elapsed.as_secs_f64();
            let peer_n = n.max(if is_bench { 1000 } else { 4 });
            let peer = load(
                format!("http://{sink}/peer"),
                None,
                vec![b'x'; req.len()],
                peer_n,
                conc,
            )
            .await;
            let peer_rate = peer_n as f64 / peer.elapsed.as_secs_f64();
            println!(
                "  {conc:>2} clients: {rate:>6.1} msg/s ({:.2} MB/s content, {:.2} MB/s wire)  p50 {:>7.1} ms  p95 {:>7.1} ms  CPU {:.1} ms/msg  | GetMessageId p50 {:.1} ms | raw POST of {} B: {peer_rate:>7.0} msg/s p50 {:.2} ms p95 {:.2} ms | OSCI/POST: {:.0}× latency, {:.0}× fewer msg/s | one RSA-4096 sign just before: {:.1} ms",
                rate * doc.len() as f64 / MB,
                rate * req.len() as f64 / MB,
                ms(percentile(&p.latencies, 0.50)),
                ms(percentile(&p.latencies, 0.95)),
                ms(p.cpu) / n as f64,
                ms(percentile(&get_lat, 0.50)),
                req.len(),
                ms(percentile(&peer.latencies, 0.50)),
                ms(percentile(&peer.latencies, 0.95)),
                ms(percentile(&p.latencies, 0.50)) / ms(percentile(&peer.latencies, 0.50)),
                peer_rate / rate,
                ms(yardstick),
            );
        }
        captured.push((v, content, req, resp));
    }
    println!(
        "  (elapsed {:.0} s, load average {})",
        started.elapsed().as_secs_f64(),
        loadavg()
    );

    // 2. Large attachments, fresh processes.
    println!(
        "\n2. StoreDelivery with one attachment (encrypt=false), fresh hub and client processes per size, {repeat} messages each"
    );
    let overhead = captured[1].2.len() - doc.len();
    let sizes: &[usize] = if sections.contains(&2) {
        &sizes_mb
    } else {
        &[]
    };
    for &size in sizes {
        let bytes = size * 1_000_000;
        let yardstick = sign_yardstick(&k);
        let l = large(bytes, repeat).await;
        let s = median_f(l.store.clone());
        let g = median_f(l.get.clone());
        // The peer: a raw POST of as many bytes.
        let wire = l.bytes + overhead;
        let peer = load(
            format!("http://{sink}/peer"),
            None,
            vec![b'x'; wire],
            repeat,
            1,
        )
        .await;
        let peer_s = percentile(&peer.latencies, 0.5).as_secs_f64();
        let mib = |kib: u64| kib as f64 / 1024.0;
        let size_mib = l.bytes as f64 / 1024.0 / 1024.0;
        println!(
            "  {size:>4} MB: StoreDelivery {s:.3} s/msg ({:.0} MB/s) [median of {}; all: {}] + GetMessageId {:.3} s | hub VmHWM idle {:.0} MiB, after 1st {:.0} MiB (+{:.0} MiB = {:.2}× the attachment), after all {:.0} MiB | client VmHWM idle {:.0} MiB, with content {:.0} MiB, end {:.0} MiB (+{:.0} MiB over idle = {:.2}×) | raw POST of {wire} B {peer_s:.3} s ({:.0} MB/s): OSCI {:.1}× | RSA-4096 sign just before: {:.1} ms",
            l.bytes as f64 / MB / s,
            l.store.len(),
            l.store
                .iter()
                .map(|x| format!("{x:.3}"))
                .collect::<Vec<_>>()
                .join(" "),
            g,
            mib(l.hub.0),
            mib(l.hub.1),
            mib(l.hub.1 - l.hub.0),
            mib(l.hub.1 - l.hub.0) / size_mib,
            mib(l.hub.2),
            mib(l.client.0),
            mib(l.client.1),
            mib(l.client.2),
            mib(l.client.2 - l.client.0),
            mib(l.client.2 - l.client.0) / size_mib,
            wire as f64 / MB / peer_s,
            s / peer_s,
            ms(yardstick),
        );
    }
    println!(
        "  (elapsed {:.0} s, load average {})",
        started.elapsed().as_secs_f64(),
        loadavg()
    );

    // 3. Where the time goes.
    if !sections.contains(&3) {
        hub.shutdown().await.unwrap();
        return;
    }
    println!("\n3. Breakdown (same process; the hub idle)");
    println!(
        "Bulk primitives (median of {big_iters} for 100 MB, {} for 30 KB):",
        iters * 10
    );
    bulk_primitives(doc.len(), iters * 10);
    let big = *sizes_mb.iter().max().unwrap_or(&1) * 1_000_000;
    bulk_primitives(big, big_iters);
    let mut rsa = Rsa::default();
    for (v, content, req, resp) in &captured {
        println!();
        let p = breakdown(v.name, &k, &hub, req, resp, doc.len(), iters, true).await;
        rsa = p.rsa;
        let (send, sign) = build_and_send(sink, &k, content, v.encrypt, iters).await;
        println!(
            " client request build + send to the sink (Client::store_delivery against an empty answer): {:.1} ms = {:.1} RSA signs (one measured alternately: {:.1} ms)",
            ms(send),
            ms(send) / ms(sign),
            ms(sign)
        );
        let (private, all) = rsa.round_trip(v.encrypt);
        let pieces = p.client + p.hub + p.client_response;
        println!(
            " RSA per round trip: 5 private RSA-4096 (3 sign + 2 OAEP decrypt) = {private:.1} ms; with {} public RSA-4096 ({} OAEP encrypt + 2 verify) and 4 certificate checks (RSA-2048) {all:.1} ms = {:.0} % of the {pieces:.1} ms of pieces (private alone {:.0} %)",
            if v.encrypt { 5 } else { 4 },
            if v.encrypt { 3 } else { 2 },
            100.0 * all / pieces,
            100.0 * private / pieces,
        );
    }
    // The large message: end to end in this (warm) process, then
    // captured through the proxy to the in-process hub.
    println!();
    let big_content = contents(ATTACHED, noise(big));
    let c = alice(&osci_url(hub.addr));
    let mut warm = Vec::new();
    for _ in 0..big_iters {
        let id = c.get_message_id().await.unwrap();
        let t = Instant::now();
        c.store_delivery(
            &id,
            Some("Benchmark"),
            &k.bob_cipher.cert,
            &big_content,
            false,
        )
        .await
        .unwrap();
        warm.push(t.elapsed().as_secs_f64());
    }
    println!(
        "{} MB attachment end to end in this process (hub and client warm, in-process): {:.3} s (median of {big_iters})",
        big / 1_000_000,
        median_f(warm)
    );
    let (req, resp) = capture(hub.addr, ATTACHED, &big_content).await;
    let p = breakdown(
        &format!("{} MB attachment, unencrypted", big / 1_000_000),
        &k,
        &hub,
        &req,
        &resp,
        big,
        big_iters,
        false,
    )
    .await;
    let (send, _) = build_and_send(sink, &k, &big_content, false, big_iters).await;
    let pieces = p.client + p.hub + p.client_response;
    let (_, all) = rsa.round_trip(false);
    println!(
        " client request build + send to the sink: {:.1} ms (client pieces {:.1} ms + raw POST); RSA (as measured above) {all:.1} ms = {:.0} % of the {pieces:.1} ms of pieces",
        ms(send),
        p.client,
        100.0 * all / pieces
    );
    hub.shutdown().await.unwrap();
    if is_bench {
        println!(
            "\nPeer: openssl speed (OpenSSL's own RSA and AES-GCM, another process, same run):"
        );
        for l in openssl_speed(&["-seconds", "2", "rsa4096", "rsa2048"])
            .into_iter()
            .chain(openssl_speed(&["-seconds", "1", "-evp", "aes-256-gcm"]))
        {
            println!("  {l}");
        }
    }
    println!(
        "\ntotal {:.0} s, load average {}",
        started.elapsed().as_secs_f64(),
        loadavg()
    );
}
