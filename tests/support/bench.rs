//! Helpers shared by the load generators in `benches/`: a streaming,
//! counting loopback receiver, peak RSS of a process, latency percentiles.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use futures::StreamExt;

/// An environment variable parsed as `usize`, else `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A receiver that streams request bodies, counting bytes and requests.
pub async fn counting_receiver() -> (SocketAddr, Arc<AtomicU64>, Arc<AtomicU64>) {
    let requests = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    async fn sink(
        State((requests, bytes)): State<(Arc<AtomicU64>, Arc<AtomicU64>)>,
        body: Body,
    ) -> StatusCode {
        let mut s = body.into_data_stream();
        while let Some(chunk) = s.next().await {
            match chunk {
                Ok(c) => {
                    bytes.fetch_add(c.len() as u64, Ordering::Relaxed);
                }
                Err(_) => return StatusCode::BAD_REQUEST,
            }
        }
        requests.fetch_add(1, Ordering::SeqCst);
        StatusCode::CREATED
    }
    let app = Router::new()
        .route("/{*path}", post(sink))
        .with_state((requests.clone(), bytes.clone()));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    (addr, requests, bytes)
}

/// Peak resident set size (`VmHWM`) of process `pid` in MiB (NaN if unknown).
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// The `p`-quantile (0..=1) of sorted durations (zero when empty).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Allocated bytes of every file below `dir` (what `du` counts).
pub fn disk_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            total += disk_bytes(&e.path());
        } else {
            total += m.blocks() * 512;
        }
    }
    total
}

/// What a load run measured.
pub struct Load {
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Latency of every request, sorted.
    pub latencies: Vec<Duration>,
}

/// POST `n` copies of `body` to `url` with `concurrency` workers.
pub async fn load(
    url: String,
    token: Option<&str>,
    body: Vec<u8>,
    n: usize,
    concurrency: usize,
) -> Load {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let body = bytes::Bytes::from(body);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (http, url, body, next) = (http.clone(), url.clone(), body.clone(), next.clone());
        let token = token.map(str::to_owned);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while next.fetch_add(1, Ordering::SeqCst) < n as u64 {
                let t = Instant::now();
                let mut r = http
                    .post(&url)
                    .header("content-type", "application/xml")
                    .body(body.clone());
                if let Some(tok) = &token {
                    r = r.bearer_auth(tok);
                }
                let resp = r.send().await.expect("request");
                assert!(resp.status().is_success(), "status {}", resp.status());
                let _ = resp.bytes().await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    latencies.sort();
    Load {
        elapsed: start.elapsed(),
        latencies,
    }
}

/// Wait until `counter` reaches `n` (panics after `timeout`); returns the wait.
pub async fn wait_for(counter: &AtomicU64, n: u64, timeout: Duration) -> Duration {
    let start = Instant::now();
    while counter.load(Ordering::SeqCst) < n {
        assert!(
            start.elapsed() < timeout,
            "only {} of {n} delivered",
            counter.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}
