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

mod ops;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use drehscheibe_engine::Hub;
use drehscheibe_model::auth::TokenTable;
use drehscheibe_model::Intake;
use tokio_util::sync::CancellationToken;

pub use ops::ops_router;

/// The complete router: inbox + operations API.
pub fn app(hub: Arc<Hub>, tokens: Arc<TokenTable>) -> Router {
    let intake: Arc<dyn Intake> = hub.clone();
    drehscheibe_http::inbox::inbox_router(intake, tokens.clone())
        .merge(ops_router(hub, tokens))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Server failure.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// A bound listener, so callers can learn the port before serving.
pub struct Bound {
    listener: tokio::net::TcpListener,
}

impl Bound {
    pub async fn bind(addr: SocketAddr) -> Result<Self, ServerError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        Ok(Self { listener })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, ServerError> {
        Ok(self.listener.local_addr()?)
    }

    /// Serve until `shutdown` is cancelled, then finish open requests.
    pub async fn serve(self, app: Router, shutdown: CancellationToken) -> Result<(), ServerError> {
        axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
        Ok(())
    }
}
