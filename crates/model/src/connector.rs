use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{BlobStore, Envelope};

/// One delivery handed to a connector.
pub struct DeliveryRequest {
    pub envelope: Envelope,
    /// Output role (e.g. `fachverfahren`).
    pub target: String,
    /// Delivery generation (replays increase it); with message id and target
    /// it forms an idempotency key the far side may use.
    pub generation: u32,
    /// Attempt number within the generation, starting at 1.
    pub attempt: u32,
    /// The document to deliver (transformed output or original payload).
    pub document: Bytes,
    pub content_type: String,
    /// Suggested file name for file-like connectors.
    pub filename: String,
    /// Where attachments (`envelope.attachments`) can be streamed from.
    pub blobs: Arc<dyn BlobStore>,
}

impl DeliveryRequest {
    /// Stable key identifying this delivery across retries of one
    /// generation: `<message id>/<target>/<generation>`.
    pub fn idempotency_key(&self) -> String {
        format!("{}/{}/{}", self.envelope.id, self.target, self.generation)
    }
}

/// What the far side said on success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    /// Short human-readable receipt, e.g. `HTTP 201` or a file path.
    pub detail: String,
}

/// A failed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct DeliveryError {
    /// Worth trying again later (network error, 5xx, timeout) or not
    /// (4xx, payload refused, misconfiguration).
    pub retryable: bool,
    pub reason: String,
}

impl DeliveryError {
    pub fn retryable(reason: impl Into<String>) -> Self {
        Self {
            retryable: true,
            reason: reason.into(),
        }
    }
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            retryable: false,
            reason: reason.into(),
        }
    }
}

/// A sink: delivers one document to one configured endpoint (an HTTP
/// Fachverfahren interface, a folder, a mailbox, an XTA or FIT-Connect
/// destination). Connectors are built once per configured endpoint; the
/// engine bounds their concurrency and retries on `retryable` errors.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Connector kind, e.g. `http`, `directory`, `smtp` (for metrics/logs).
    fn kind(&self) -> &'static str;
    async fn deliver(&self, request: DeliveryRequest) -> Result<DeliveryReceipt, DeliveryError>;
}
