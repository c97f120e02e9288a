//! The hub's HTTP face.
//!
//! One listener serves the HTTP inbox (`POST /api/v1/inbox/{channel}`, from
//! the `drehscheibe-http` crate) and the operations API:
//!
//! | method | path | who |
//! |---|---|---|
//! | GET | `/api/v1/messages/{id}` | operator; tenant for its own messages |
//! | GET | `/api/v1/messages?tenant=&state=&since=&after=&limit=` | operator; tenant (forced to itself) |
//! | POST | `/api/v1/messages/{id}/replay` | operator |
//! | GET | `/healthz`, `/readyz`, `/metrics` | anyone (bind to an internal interface) |
//!
//! A tenant asking for another tenant's message gets `404`, the same as for
//! a message that does not exist, so ids of other Kommunen leak nothing.
//!
//! The listener speaks plain HTTP ([`Bound::bind`]) or HTTPS with optional
//! client certificates ([`Bound::bind_tls`], see [`tls`]). Either way it
//! bounds the number of connections and how long a client may take or
//! idle ([`ConnectionLimits`], see [`listener`]).

mod config_api;
pub mod dry_run_api;
pub mod listener;
pub mod openapi;
mod ops;
mod rules_api;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use drehscheibe_engine::{Hub, Metrics};
use drehscheibe_model::auth::TokenTable;
use drehscheibe_model::Intake;
use tokio_util::sync::CancellationToken;

pub use config_api::{admin_problem, config_router};
pub use dry_run_api::dry_run_router;
pub use listener::ConnectionLimits;
pub use openapi::openapi_router;
pub use ops::ops_router;
pub use rules_api::rules_router;
pub use tls::{ClientCerts, TlsError, TlsSettings};

/// The hub's own routes: the operations API, and the answer for inbox
/// paths no `http` channel claimed (`404 unknown-channel`). The channels'
/// routes (each `http` channel's inbox, FIT-Connect, XTA) are merged in
/// by the composition root.
pub fn app(hub: Arc<Hub>, tokens: Arc<TokenTable>) -> Router {
    let intake: Arc<dyn Intake> = hub.clone();
    drehscheibe_http::inbox::unclaimed_router(intake, tokens.clone())
        .merge(ops_router(hub, tokens))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Server failure.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS configuration could not be loaded.
    #[error("{0}")]
    Tls(#[from] TlsError),
}

/// A bound listener, so callers can learn the port before serving.
pub struct Bound {
    listener: tokio::net::TcpListener,
    tls: Option<TlsSettings>,
    grace: Option<Duration>,
    limits: ConnectionLimits,
    metrics: Option<Arc<Metrics>>,
}

impl Bound {
    /// Bind a plain HTTP listener.
    pub async fn bind(addr: SocketAddr) -> Result<Self, ServerError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        Ok(Self {
            listener,
            tls: None,
            grace: None,
            limits: ConnectionLimits::default(),
            metrics: None,
        })
    }

    /// Bind an HTTPS listener (HTTP/1.1 and HTTP/2 via ALPN).
    pub async fn bind_tls(addr: SocketAddr, tls: TlsSettings) -> Result<Self, ServerError> {
        let mut bound = Self::bind(addr).await?;
        bound.tls = Some(tls);
        Ok(bound)
    }

    /// Limit the time open requests get after shutdown (default: no
    /// limit); connections still open then are closed.
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Bound the connections (default: [`ConnectionLimits::default`]).
    pub fn with_limits(mut self, limits: ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Count open connections, reached limits and failed accepts here.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> Result<SocketAddr, ServerError> {
        Ok(self.listener.local_addr()?)
    }

    /// `https` for a TLS listener, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Serve until `shutdown` is cancelled, then stop accepting and finish
    /// open requests (within the shutdown grace, if one is set).
    pub async fn serve(self, app: Router, shutdown: CancellationToken) -> Result<(), ServerError> {
        let tls = self.tls.as_ref().map(TlsSettings::acceptor);
        listener::serve(
            self.listener,
            tls,
            app,
            shutdown,
            self.grace,
            self.limits,
            self.metrics,
        )
        .await;
        Ok(())
    }
}
