use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::{
    AttachmentRef, BlobReader, BlobRef, BlobStore, DeliveryState, MessageId, MessageState,
    SenderIdentity,
};

/// An attachment the adapter has already streamed into the blob store.
#[derive(Debug, Clone)]
pub struct StagedAttachment {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: String,
    pub blob: BlobRef,
}

impl From<StagedAttachment> for AttachmentRef {
    fn from(a: StagedAttachment) -> Self {
        AttachmentRef {
            name: a.name,
            filename: a.filename,
            content_type: a.content_type,
            blob: a.blob,
        }
    }
}

/// A message as an input adapter hands it to the hub.
#[derive(Debug, Clone)]
pub struct Submission {
    pub channel: String,
    pub sender: SenderIdentity,
    /// Media type of `payload` as declared by the sender.
    pub content_type: String,
    /// The primary payload (XML or JSON), size-limited by the adapter.
    pub payload: Bytes,
    pub attachments: Vec<StagedAttachment>,
    /// Sender-chosen key that makes retries safe: the same key from the
    /// same sender (adapter + principal) on the same channel returns the
    /// first message's id instead of a new message.
    pub idempotency_key: Option<String>,
    pub correlation_ids: BTreeMap<String, String>,
}

/// The hub's answer to an accepted submission. The message is on disk
/// (flushed) when this is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: MessageId,
    /// True when an earlier submission with the same idempotency key was
    /// found and its id returned; nothing new was stored.
    pub duplicate: bool,
}

/// Why a submission was refused. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    #[error("sender may not submit to channel {0:?}")]
    Forbidden(String),
    #[error("unsupported media type {0:?}: expected XML or JSON")]
    UnsupportedMediaType(String),
    #[error("payload is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("malformed payload: {0}")]
    Malformed(String),
    #[error("refused: {0}")]
    Hostile(String),
    #[error("idempotency key {0:?} was already used for a different payload")]
    IdempotencyConflict(String),
    #[error("hub is shutting down")]
    ShuttingDown,
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The malware scanner found something: the message is stored as
    /// `quarantined` (kept, never delivered) under `id`.
    #[error("malware found in the {part}: {signature} (kept as quarantined message {id})")]
    Infected {
        id: crate::MessageId,
        part: String,
        signature: String,
    },
}

impl IntakeError {
    /// HTTP status code that fits the error (used by HTTP-based adapters).
    pub fn http_status(&self) -> u16 {
        match self {
            Self::UnknownChannel(_) => 404,
            Self::Forbidden(_) => 403,
            Self::UnsupportedMediaType(_) => 415,
            Self::TooLarge { .. } => 413,
            Self::Malformed(_) | Self::Hostile(_) => 400,
            Self::IdempotencyConflict(_) => 409,
            Self::ShuttingDown | Self::Unavailable(_) => 503,
            Self::Infected { .. } => 422,
        }
    }

    /// Short machine-readable kind (problem `type` suffix, reason files).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownChannel(_) => "unknown-channel",
            Self::Forbidden(_) => "forbidden",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::TooLarge { .. } => "payload-too-large",
            Self::Malformed(_) => "malformed-payload",
            Self::Hostile(_) => "hostile-payload",
            Self::IdempotencyConflict(_) => "idempotency-conflict",
            Self::ShuttingDown => "shutting-down",
            Self::Unavailable(_) => "storage-unavailable",
            Self::Infected { .. } => "malware-found",
        }
    }
}

/// The hub's front door, implemented by the engine. Input adapters call
/// it; they never touch the store or the rules directly.
#[async_trait]
pub trait Intake: Send + Sync {
    /// Validate, store durably and queue a message for routing.
    async fn submit(&self, submission: Submission) -> Result<Accepted, IntakeError>;
    /// Stream an attachment into the blob store before submitting. An
    /// accepted [`Intake::submit`] (new message or duplicate), and one
    /// refused with [`IntakeError::Infected`] (the message is stored,
    /// quarantined), ends the staging of its attachments; an adapter whose request ends any other
    /// way (refusal, error, client gone) hands what it staged to
    /// [`Intake::discard_staged`].
    async fn stage_attachment(&self, reader: BlobReader) -> Result<BlobRef, IntakeError>;
    /// Give up attachments staged for a request that was not acknowledged:
    /// the hub removes those no stored message and no other request uses.
    /// Errors are logged, not returned: the caller is already answering
    /// with an error, and an orphan left behind is swept at the next
    /// start. The default keeps them.
    async fn discard_staged(&self, blobs: &[BlobRef]) {
        let _ = blobs;
    }
    /// Limit for one primary payload, in bytes.
    fn max_payload_bytes(&self) -> u64;
    /// Limit for one attachment, in bytes.
    fn max_attachment_bytes(&self) -> u64;
    /// Known channel ids.
    fn channel_exists(&self, channel: &str) -> bool;
    /// Blob store, for adapters that need to read staged content back.
    fn blobs(&self) -> Arc<dyn BlobStore>;
    /// Where a message stands now, for adapters that report back to their
    /// sender (FIT-Connect events, XTA transport reports). `None` when the
    /// id is unknown.
    async fn status(&self, id: MessageId) -> Result<Option<MessageStatus>, IntakeError>;
    /// Record that the sender was given a final answer that cannot be
    /// taken back (`answer`, e.g. `FIT-Connect reject-submission`): the
    /// message's audit trail shows it, and an operator's replay that would
    /// contradict it has to be forced. `actor` names the adapter.
    async fn note_sender_answer(
        &self,
        id: MessageId,
        actor: &str,
        answer: &str,
    ) -> Result<(), IntakeError> {
        let _ = (id, actor, answer);
        Ok(())
    }
}

/// A message's state as an input adapter may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageStatus {
    pub id: MessageId,
    pub state: MessageState,
    /// Why the message is `rejected`/`dead` (or last failed), if known.
    pub reason: Option<String>,
    /// Rule `id@version` that routed it, once routed.
    pub rule: Option<String>,
    pub deliveries: Vec<DeliveryStatus>,
}

/// One delivery of a [`MessageStatus`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStatus {
    pub target: String,
    pub tenant: String,
    pub connector: String,
    pub state: DeliveryState,
    pub attempts: u32,
    /// The far side's receipt once delivered.
    pub receipt: Option<String>,
    pub last_error: Option<String>,
}

/// Failure of an input adapter's loop.
#[derive(Debug, thiserror::Error)]
#[error("input adapter {adapter}: {reason}")]
pub struct AdapterError {
    pub adapter: String,
    pub reason: String,
}

/// A source that runs its own loop (directory watcher, protocol poller).
/// HTTP-mounted adapters instead expose an axum router from their crate;
/// both hand messages to the same [`Intake`].
#[async_trait]
pub trait InputAdapter: Send {
    /// Adapter instance name for logs and metrics.
    fn name(&self) -> &str;
    /// Run until `shutdown` is cancelled; finish or release the message in
    /// hand before returning.
    async fn run(
        self: Box<Self>,
        intake: Arc<dyn Intake>,
        shutdown: CancellationToken,
    ) -> Result<(), AdapterError>;
}
