use std::pin::Pin;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;

/// Reference to a content-addressed blob.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    /// Hex SHA-256 of the content; also its address.
    pub sha256: String,
    pub size: u64,
}

/// A streamed blob.
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// The question [`BlobStore::remove_unreferenced`] asks while no staging
/// can start: "does no stored message reference this blob?" (`true` =
/// unreferenced, may go; an error must answer `false`).
pub type UnreferencedCheck<'a> =
    &'a (dyn Fn() -> Pin<Box<dyn std::future::Future<Output = bool> + Send + 'a>> + Send + Sync);

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("blob {0} not found")]
    NotFound(String),
    #[error("blob {sha256} is corrupt: content hash differs")]
    Corrupt { sha256: String },
    #[error("blob I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Content-addressed storage for attachments. Blobs are streamed in and
/// out and never held whole in memory. `put` returns only when the content
/// is durable (fsynced).
///
/// # Staging
///
/// An input adapter streams attachments in *before* it knows whether the
/// hub accepts the message. Such blobs are put with [`BlobStore::stage`]
/// and each staging is ended exactly once: [`BlobStore::keep_staged`] when
/// a stored message references the blob, [`BlobStore::discard_staged`]
/// when the submission was refused or abandoned. A discarded blob is
/// removed unless something else still uses the same content (another
/// request staging it, a stored message, a plain `put`). The defaults keep
/// every blob, which is always safe.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stream `reader` into the store, refusing more than `limit` bytes.
    async fn put(&self, reader: BlobReader, limit: u64) -> Result<BlobRef, BlobError>;
    /// Open a blob for streaming.
    async fn open(&self, blob: &BlobRef) -> Result<BlobReader, BlobError>;
    /// Whether the blob exists.
    async fn contains(&self, blob: &BlobRef) -> Result<bool, BlobError>;
    /// [`BlobStore::put`] for an attachment of a submission not yet
    /// accepted (see the trait docs).
    async fn stage(&self, reader: BlobReader, limit: u64) -> Result<BlobRef, BlobError> {
        self.put(reader, limit).await
    }
    /// End one staging of `blob`: a stored message references it now.
    async fn keep_staged(&self, blob: &BlobRef) -> Result<(), BlobError> {
        let _ = blob;
        Ok(())
    }
    /// End one staging of `blob`: the submission was not accepted; remove
    /// the blob unless something else uses it.
    async fn discard_staged(&self, blob: &BlobRef) -> Result<(), BlobError> {
        let _ = blob;
        Ok(())
    }
    /// Retention's blob garbage collection: remove the blob with this
    /// content hash if no staging of it is in flight and `unreferenced`,
    /// asked while no new staging can begin, still answers `true`.
    /// Returns `true` when the blob is gone (removed now, or not there),
    /// `false` when it stays (ask again later). The default keeps every
    /// blob, which is always safe.
    async fn remove_unreferenced(
        &self,
        sha256: &str,
        unreferenced: UnreferencedCheck<'_>,
    ) -> Result<bool, BlobError> {
        let _ = (sha256, unreferenced);
        Ok(false)
    }
}
