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
    /// What an earlier attempt of this delivery recorded, and where to
    /// record more (see [`Checkpoint`]).
    pub checkpoint: Checkpoint,
}

/// Where a [`Checkpoint`] is kept: the engine stores it on the message's
/// delivery record, durably, with an audit event.
#[async_trait]
pub trait CheckpointSink: Send + Sync {
    /// Persist `value` as the delivery's checkpoint; durable when `Ok`.
    async fn save(&self, value: &str) -> Result<(), String>;
}

/// A connector's durable memory of one delivery (message, target and
/// generation) across attempts and crashes.
///
/// A connector whose protocol has an irrevocable step (announcing a
/// FIT-Connect submission, sending an XTA message with an id it made)
/// saves what it is about to do **before** doing it — the submission id,
/// the message id — and on the next attempt reads it back and resumes
/// (asks the far side how far it got) instead of sending again. A replay
/// starts a new generation with no checkpoint.
pub struct Checkpoint {
    value: Option<String>,
    sink: Option<Arc<dyn CheckpointSink>>,
}

impl Checkpoint {
    /// A checkpoint stored through `sink`, holding `value` so far.
    pub fn new(value: Option<String>, sink: Arc<dyn CheckpointSink>) -> Self {
        Self {
            value,
            sink: Some(sink),
        }
    }

    /// A checkpoint kept in memory only (tools and tests that call a
    /// connector without a hub).
    pub fn in_memory() -> Self {
        Self {
            value: None,
            sink: None,
        }
    }

    /// What the last saved checkpoint holds.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// Save `value`; durable when this returns `Ok`.
    ///
    /// # Errors
    ///
    /// A retryable [`DeliveryError`] when it could not be stored: the
    /// connector must not take the step it guards.
    pub async fn save(&mut self, value: String) -> Result<(), DeliveryError> {
        if let Some(sink) = &self.sink {
            sink.save(&value)
                .await
                .map_err(|e| DeliveryError::retryable(format!("saving the checkpoint: {e}")))?;
        }
        self.value = Some(value);
        Ok(())
    }
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

    /// Whether the far side answers and when the client certificate ends
    /// (see [`crate::health`]). Cheap and read-only; the engine bounds it
    /// with a timeout. The default checks nothing.
    async fn healthcheck(&self) -> crate::Health {
        crate::Health::up("no check for this connector type")
    }
}
