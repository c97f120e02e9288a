//! The listener's connection limits with real sockets: slow heads, silent
//! and idle connections are closed, a stalled body fails, and the
//! connection limit makes further clients wait until a slot frees.
//!
//! The limits are test-short; the reads that wait for the hub to close a
//! connection have a generous safety bound so a broken hub fails the test
//! instead of hanging it.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use drehscheibe_engine::Metrics;
use drehscheibe_server::{Bound, ConnectionLimits};
use drehscheibe_store::QueueStats;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Upper bound for "the hub closes this connection"; far above every
/// configured limit.
const SAFETY: Duration = Duration::from_secs(20);
const LONG: Duration = Duration::from_secs(600);

struct Served {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn serve(limits: ConnectionLimits) -> Served {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/echo",
            post(|body: axum::body::Bytes| async move { body.len().to_string() }),
        );
    let metrics = Arc::new(Metrics::new());
    let bound = Bound::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
        .with_limits(limits)
        .with_metrics(metrics.clone());
    let addr = bound.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(bound.serve(app, shutdown.clone()));
    Served {
        addr,
        metrics,
        shutdown,
    }
}

fn limits() -> ConnectionLimits {
    ConnectionLimits {
        max_connections: 64,
        header_read_timeout: LONG,
        body_read_timeout: LONG,
        idle_timeout: LONG,
    }
}

/// Read until the peer closes; returns what was read. Panics if the hub
/// does not close the connection within [`SAFETY`].
async fn read_until_closed(conn: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(SAFETY, conn.read(&mut buf)).await {
            Err(_) => panic!(
                "the hub did not close the connection; read so far: {:?}",
                String::from_utf8_lossy(&out)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&out).into_owned(),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Send a GET /healthz with keep-alive and read its response head and body.
async fn healthz(conn: &mut TcpStream) -> String {
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    while !out.ends_with(b"ok\n") {
        let n = tokio::time::timeout(SAFETY, conn.read(&mut buf))
            .await
            .expect("no answer from the hub")
            .unwrap();
        assert!(
            n > 0,
            "connection closed: {:?}",
            String::from_utf8_lossy(&out)
        );
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn counter(metrics: &Metrics, name: &str) -> String {
    metrics
        .encode(QueueStats::default(), &[])
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_slowloris_head_is_closed_after_the_header_read_timeout() {
    let served = serve(ConnectionLimits {
        header_read_timeout: Duration::from_millis(300),
        ..limits()
    })
    .await;
    let mut conn = TcpStream::connect(served.addr).await.unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    // …and silence: the hub closes the connection (it may answer 408 first).
    let answer = read_until_closed(&mut conn).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let served = serve(ConnectionLimits {
        idle_timeout: Duration::from_millis(300),
        ..limits()
    })
    .await;
    let mut conn = TcpStream::connect(served.addr).await.unwrap();
    let answer = healthz(&mut conn).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    // Keep-alive, and then nothing: closed without another byte.
    assert_eq!(read_until_closed(&mut conn).await, "");

    // A connection that never sends anything is idle too.
    let mut silent = TcpStream::connect(served.addr).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await, "");
}

#[tokio::test]
async fn a_stalled_request_body_fails_after_the_body_read_timeout() {
    let served = serve(ConnectionLimits {
        body_read_timeout: Duration::from_millis(300),
        ..limits()
    })
    .await;
    let mut conn = TcpStream::connect(served.addr).await.unwrap();
    conn.write_all(b"POST /echo HTTP/1.1\r\nHost: hub\r\nContent-Length: 100\r\n\r\nonly a part")
        .await
        .unwrap();
    let answer = read_until_closed(&mut conn).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");

    // A body that arrives in time is read whole.
    let mut conn = TcpStream::connect(served.addr).await.unwrap();
    conn.write_all(
        b"POST /echo HTTP/1.1\r\nHost: hub\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await
    .unwrap();
    let answer = read_until_closed(&mut conn).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.ends_with("\r\n\r\n5"), "{answer:?}");
}

#[tokio::test]
async fn connections_over_the_limit_wait_until_a_slot_frees() {
    let served = serve(ConnectionLimits {
        max_connections: 2,
        ..limits()
    })
    .await;
    // Two connections take both slots (each proves it is served).
    let mut first = TcpStream::connect(served.addr).await.unwrap();
    healthz(&mut first).await;
    let mut second = TcpStream::connect(served.addr).await.unwrap();
    healthz(&mut second).await;

    // The third connects (kernel backlog) but is not served while both
    // slots are taken.
    let mut third = TcpStream::connect(served.addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf)).await;
    assert!(early.is_err(), "served over the limit: {early:?}");
    assert_eq!(
        counter(
            &served.metrics,
            "drehscheibe_connection_limit_reached_total"
        ),
        "drehscheibe_connection_limit_reached_total 1"
    );

    // A slot frees: the waiting request is served on it.
    drop(first);
    let mut out = Vec::new();
    while !out.ends_with(b"ok\n") {
        let n = tokio::time::timeout(SAFETY, third.read(&mut buf))
            .await
            .expect("the waiting connection was not served after a slot freed")
            .unwrap();
        assert!(n > 0);
        out.extend_from_slice(&buf[..n]);
    }
    assert!(out.starts_with(b"HTTP/1.1 200"));
    // The served connections still work.
    healthz(&mut second).await;
    healthz(&mut third).await;
}

/// The HTTP/2 connection preface and an empty SETTINGS frame (RFC 9113
/// §3.4, §6.5).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
/// A PING frame with 8 bytes of opaque data (RFC 9113 §6.7).
const H2_PING: &[u8] = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00pingpong";

#[tokio::test]
async fn an_http2_connection_without_a_request_is_closed_despite_pings() {
    let served = serve(ConnectionLimits {
        header_read_timeout: Duration::from_millis(500),
        ..limits()
    })
    .await;
    let mut conn = TcpStream::connect(served.addr).await.unwrap();
    conn.write_all(H2_PREFACE).await.unwrap();
    // Ping every 100 ms (bytes keep moving both ways, so the idle
    // watchdog alone would never fire) and never open a stream.
    let closed = tokio::time::timeout(SAFETY, async {
        let mut buf = [0u8; 4096];
        loop {
            if conn.write_all(H2_PING).await.is_err() {
                return;
            }
            match tokio::time::timeout(Duration::from_millis(100), conn.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the hub kept an HTTP/2 connection without a request open"
    );
}
