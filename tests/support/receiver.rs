//! A scriptable HTTP endpoint standing in for a Fachverfahren: real axum
//! server on a loopback port that records every request and answers as
//! told per path (succeed, fail N times, always fail, hang).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::any;
use axum::Router;
use tokio_util::sync::CancellationToken;

/// How the receiver answers requests to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `201 Created`.
    Ok,
    /// Answer `status` to the first `n` requests, then `201`.
    FailTimes { n: u32, status: u16 },
    /// Always answer `status`.
    Always(u16),
    /// Never answer (the connection stays open until the client gives up).
    Hang,
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// What the receiver answered (0 for `Hang`).
    pub status: u16,
}

impl Received {
    /// A header as a string ("" when missing).
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }
}

#[derive(Default)]
struct Inner {
    behaviour: HashMap<String, Behaviour>,
    seen: HashMap<String, u32>,
    log: Vec<Received>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    stop: CancellationToken,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn handle(
    State((inner, stop)): State<(Arc<Mutex<Inner>>, CancellationToken)>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    // The hub's connector health checks send HEAD; they are not deliveries.
    if method == axum::http::Method::HEAD {
        return StatusCode::OK;
    }
    let path = uri.path().to_owned();
    let status = {
        let mut g = inner.lock().unwrap();
        let b = g.behaviour.get(&path).copied().unwrap_or(Behaviour::Ok);
        let seen = g.seen.entry(path.clone()).or_insert(0);
        *seen += 1;
        let status = match b {
            Behaviour::Ok => 201,
            Behaviour::FailTimes { n, status } if *seen <= n => status,
            Behaviour::FailTimes { .. } => 201,
            Behaviour::Always(s) => s,
            Behaviour::Hang => 0,
        };
        g.log.push(Received {
            path,
            headers,
            body,
            at: Instant::now(),
            status,
        });
        status
    };
    if status == 0 {
        stop.cancelled().await;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    /// Start on a free loopback port.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let stop = CancellationToken::new();
        let app = Router::new()
            .fallback(any(handle))
            .with_state((inner.clone(), stop.clone()))
            .layer(axum::extract::DefaultBodyLimit::max(1 << 30));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await;
        });
        Self { addr, inner, stop }
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Set how requests to `path` are answered (resets its request count).
    pub fn set(&self, path: &str, b: Behaviour) {
        let mut g = self.inner.lock().unwrap();
        g.behaviour.insert(path.to_owned(), b);
        g.seen.remove(path);
    }

    /// Every request to `path` so far, oldest first.
    pub fn requests(&self, path: &str) -> Vec<Received> {
        let g = self.inner.lock().unwrap();
        g.log.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// Requests to `path` answered with a 2xx status.
    pub fn accepted(&self, path: &str) -> Vec<Received> {
        self.requests(path)
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// Wait until `path` has accepted at least `n` requests.
    pub async fn wait_accepted(&self, path: &str, n: usize, timeout: Duration) -> Vec<Received> {
        let end = Instant::now() + timeout;
        loop {
            let got = self.accepted(path);
            if got.len() >= n {
                return got;
            }
            if Instant::now() > end {
                panic!(
                    "receiver {path}: {} of {n} requests accepted within {timeout:?}",
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A loopback URL on which nobody listens.
pub async fn dead_url(path: &str) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}{path}")
}
