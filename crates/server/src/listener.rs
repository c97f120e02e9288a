//! The accept loop and the per-connection limits, for plain HTTP and HTTPS
//! alike.
//!
//! A client that opens connections and sends nothing, or sends a request
//! one byte a minute (slowloris), must not be able to use up the hub's
//! file descriptors. [`ConnectionLimits`] bounds both the number and the
//! life of connections:
//!
//! * **`max_connections`**: the loop takes a slot from a counting
//!   semaphore *before* it calls `accept()`. When all slots are taken it
//!   stops accepting, logs one warning and counts
//!   `drehscheibe_connection_limit_reached_total`; further clients wait in
//!   the kernel's listen backlog (using no descriptor of the hub) and are
//!   served as soon as a connection closes.
//! * **`header_read_timeout`**: hyper's HTTP/1.1 header timer. It starts
//!   when the connection waits for a request head, so it bounds a slow
//!   head *and* the wait of a keep-alive connection for its next request.
//! * **`body_read_timeout`**: every request body is wrapped so that a wait
//!   for its next piece longer than this fails the read; the handler
//!   answers `400` and the connection is closed.
//! * **`idle_timeout`**: a watchdog closes a connection that has no
//!   request in progress and moved no byte for this long (for HTTP/1.1
//!   the header timer usually comes first; the watchdog also covers
//!   HTTP/2 and clients that stop reading their response).
//! * **HTTP/2** (TLS with ALPN `h2`, or prior knowledge on plain TCP): a
//!   connection must start its first request within `header_read_timeout`
//!   (pings and SETTINGS frames do not count); at most 64 concurrent
//!   streams and 64 KiB of request head per stream; keep-alive pings
//!   every `idle_timeout / 2` close a connection whose peer stopped
//!   answering. Rapid stream resets are limited by hyper's default
//!   (CVE-2023-44487).
//!
//! `accept()` failures (out of descriptors: `EMFILE`, `ENFILE`) never end
//! the loop: they are logged and counted
//! (`drehscheibe_accept_errors_total`), and the loop backs off briefly and
//! tries again.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::Router;
use drehscheibe_engine::Metrics;
use drehscheibe_model::auth::ClientCertificate;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Time a client gets to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// HTTP/2: streams one connection may have open at once.
const H2_MAX_STREAMS: u32 = 64;
/// HTTP/2: largest request head (decoded header list), bytes; HEADERS and
/// CONTINUATION frames beyond it refuse the stream.
const H2_MAX_HEADER_LIST: u32 = 64 * 1024;
/// HTTP/2: a peer that does not answer a keep-alive ping within this
/// long is gone; its connection is closed.
const H2_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// First pause after a failed `accept()`; doubled up to [`ACCEPT_BACKOFF_MAX`].
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Bounds on the listener's connections (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections served at once.
    pub max_connections: usize,
    /// Time for a complete HTTP/1.1 request head (also bounds the wait
    /// for the next request on a keep-alive connection).
    pub header_read_timeout: Duration,
    /// Longest wait for the next piece of a request body.
    pub body_read_timeout: Duration,
    /// A connection with no request in progress and no bytes moving is
    /// closed after this long.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            header_read_timeout: Duration::from_secs(15),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Everything a connection task needs.
struct Shared {
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    metrics: Option<Arc<Metrics>>,
    shutdown: CancellationToken,
    open: AtomicUsize,
}

/// Accept connections until `shutdown`, then let open requests finish
/// (within `grace`, if set).
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    shutdown: CancellationToken,
    grace: Option<Duration>,
    limits: ConnectionLimits,
    metrics: Option<Arc<Metrics>>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let shared = Arc::new(Shared {
        app,
        tls,
        limits,
        metrics,
        shutdown: shutdown.clone(),
        open: AtomicUsize::new(0),
    });
    let mut conns = JoinSet::new();
    let mut at_limit = false;
    let mut backoff = ACCEPT_BACKOFF;
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                at_limit = false;
                slot
            }
            Err(_) => {
                if !at_limit {
                    at_limit = true;
                    tracing::warn!(
                        max_connections = shared.limits.max_connections,
                        "connection limit reached: not accepting until a connection closes"
                    );
                    if let Some(m) = &shared.metrics {
                        m.connection_limit_reached();
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        // The semaphore is never closed.
                        Err(_) => break,
                    },
                }
            }
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => {
                backoff = ACCEPT_BACKOFF;
                a
            }
            Err(e) => {
                // Out of file descriptors and the like: the condition may
                // pass (connections close), so wait and try again; never
                // give up the listener.
                tracing::warn!(error = %e, pause = ?backoff, "accept failed; retrying");
                if let Some(m) = &shared.metrics {
                    m.accept_error();
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        conns.spawn(async move {
            let open = shared.open.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some(m) = &shared.metrics {
                m.set_connections_open(open);
            }
            connection(&shared, tcp, peer).await;
            let open = shared.open.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
            if let Some(m) = &shared.metrics {
                m.set_connections_open(open);
            }
            drop(slot);
        });
    }
    drop(listener);
    let drain = async { while conns.join_next().await.is_some() {} };
    match grace {
        None => drain.await,
        Some(g) => {
            if tokio::time::timeout(g, drain).await.is_err() {
                tracing::warn!(
                    open = conns.len(),
                    "connections still open after the shutdown grace; closing them"
                );
                conns.shutdown().await;
            }
        }
    }
}

async fn connection(shared: &Shared, tcp: tokio::net::TcpStream, peer: SocketAddr) {
    let Some(acceptor) = &shared.tls else {
        serve_stream(shared, tcp, peer, None).await;
        return;
    };
    let stream = tokio::select! {
        _ = shared.shutdown.cancelled() => return,
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
    };
    let cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|der| ClientCertificate::from_der(der, crate::tls::subject_of(der)));
    serve_stream(shared, stream, peer, cert).await;
}

/// Serve HTTP/1.1 or HTTP/2 on one connection under the limits.
async fn serve_stream<S>(
    shared: &Shared,
    stream: S,
    peer: SocketAddr,
    cert: Option<ClientCertificate>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let stream = Watched {
        inner: stream,
        activity: activity.clone(),
    };
    let app = shared.app.clone();
    let body_timeout = shared.limits.body_read_timeout;
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let in_flight = InFlight::start(requests.clone());
        let mut req = req.map(|body| IdleTimeoutBody::new(body, body_timeout));
        req.extensions_mut().insert(ConnectInfo(peer));
        if let Some(c) = &cert {
            req.extensions_mut().insert(c.clone());
        }
        let mut app = app.clone();
        async move {
            let resp = tower_service::Service::call(&mut app, req).await;
            drop(in_flight);
            Ok::<_, Infallible>(match resp {
                Ok(r) => r,
                Err(never) => match never {},
            })
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_LIST)
        .keep_alive_interval(Some(shared.limits.idle_timeout / 2))
        .keep_alive_timeout(H2_PING_TIMEOUT);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = idle(&activity, shared.limits.idle_timeout) => {
            tracing::debug!(%peer, "closing idle connection");
            return;
        }
        _ = first_request(&activity, shared.limits.header_read_timeout) => {
            tracing::debug!(%peer, "closing a connection that sent no request in time");
            return;
        }
        _ = shared.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Returns if the connection has not started a request within `limit`
/// of its start (HTTP/1.1 has hyper's header timer for this; an HTTP/2
/// client could otherwise hold a connection with pings and settings, or a
/// request head trickled in CONTINUATION frames); pends forever once a
/// request has started.
async fn first_request(activity: &Activity, limit: Duration) {
    tokio::time::sleep(limit).await;
    if activity.requests.load(Ordering::SeqCst) > 0 {
        std::future::pending::<()>().await;
    }
}

/// Returns once the connection has had no request in progress and moved
/// no byte for `limit`.
async fn idle(activity: &Activity, limit: Duration) {
    loop {
        let wait = match activity.idle_for() {
            Some(idle) if idle >= limit => return,
            Some(idle) => limit - idle,
            None => limit,
        };
        tokio::time::sleep(wait).await;
    }
}

/// When a connection last moved bytes, and how many requests it has in
/// progress.
struct Activity {
    origin: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// Requests started on this connection.
    requests: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// How long the connection has been idle; `None` while a request is
    /// in progress.
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let last = self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(last.elapsed())
    }
}

/// A request in progress (from its head to its response head).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> Self {
        activity.requests.fetch_add(1, Ordering::SeqCst);
        activity.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The connection's byte stream, recording when bytes move.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The request body did not move for the body read timeout.
#[derive(Debug, thiserror::Error)]
#[error("no request body data for {0:?}")]
pub struct BodyReadTimeout(Duration);

/// A request body whose reader fails after waiting longer than `timeout`
/// for the next frame. The clock runs only while the reader waits, so a
/// handler that pauses between reads (writing a chunk to disk) is not
/// charged for it.
struct IdleTimeoutBody {
    inner: Incoming,
    timeout: Duration,
    waiting: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl IdleTimeoutBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            waiting: None,
        }
    }
}

impl Body for IdleTimeoutBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .waiting
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.waiting = None;
                        Poll::Ready(Some(Err(Box::new(BodyReadTimeout(timeout)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
