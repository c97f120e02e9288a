//! Test doubles shared by the integration tests: a file-backed blob store
//! and a recording implementation of our own `Intake` trait.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use drehscheibe_model::{
    Accepted, BlobError, BlobReader, BlobRef, BlobStore, Intake, IntakeError, MessageId, Submission,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Content-addressed blobs as files `<dir>/<sha256>`.
pub struct FileBlobStore {
    dir: PathBuf,
    counter: AtomicU64,
}

impl FileBlobStore {
    pub fn new(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        Self {
            dir: dir.to_owned(),
            counter: AtomicU64::new(0),
        }
    }

    pub fn path_of(&self, blob: &BlobRef) -> PathBuf {
        self.dir.join(&blob.sha256)
    }
}

#[async_trait]
impl BlobStore for FileBlobStore {
    async fn put(&self, mut reader: BlobReader, limit: u64) -> Result<BlobRef, BlobError> {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let tmp = self.dir.join(format!("tmp-{n}"));
        let mut file = tokio::fs::File::create(&tmp).await?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let read = match reader.read(&mut buf).await {
                Ok(read) => read,
                Err(e) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    return Err(e.into());
                }
            };
            if read == 0 {
                break;
            }
            size += read as u64;
            if size > limit {
                let _ = tokio::fs::remove_file(&tmp).await;
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(&buf[..read]);
            file.write_all(&buf[..read]).await?;
        }
        file.sync_all().await?;
        let sha256 = hex::encode(hasher.finalize());
        tokio::fs::rename(&tmp, self.dir.join(&sha256)).await?;
        Ok(BlobRef { sha256, size })
    }

    async fn open(&self, blob: &BlobRef) -> Result<BlobReader, BlobError> {
        match tokio::fs::File::open(self.path_of(blob)).await {
            Ok(file) => Ok(Box::pin(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(BlobError::NotFound(blob.sha256.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn contains(&self, blob: &BlobRef) -> Result<bool, BlobError> {
        Ok(tokio::fs::try_exists(self.path_of(blob)).await?)
    }
}

/// Records submissions; stages attachments into a `FileBlobStore`.
pub struct RecordingIntake {
    pub channels: BTreeSet<String>,
    pub max_payload: u64,
    pub max_attachment: u64,
    pub blobs: Arc<FileBlobStore>,
    pub submissions: Mutex<Vec<Submission>>,
    /// `(channel, idempotency key)` → first message id.
    keys: Mutex<HashMap<(String, String), MessageId>>,
    /// Submissions to this channel are refused with `ShuttingDown`.
    pub closed_channel: Option<String>,
}

impl RecordingIntake {
    pub fn new(blob_dir: &Path, max_payload: u64, max_attachment: u64) -> Self {
        Self {
            channels: ["portal", "gewerbe", "closed"]
                .into_iter()
                .map(String::from)
                .collect(),
            max_payload,
            max_attachment,
            blobs: Arc::new(FileBlobStore::new(blob_dir)),
            submissions: Mutex::new(Vec::new()),
            keys: Mutex::new(HashMap::new()),
            closed_channel: Some("closed".into()),
        }
    }

    pub fn recorded(&self) -> Vec<Submission> {
        self.submissions.lock().unwrap().clone()
    }
}

#[async_trait]
impl Intake for RecordingIntake {
    async fn status(
        &self,
        _id: MessageId,
    ) -> Result<Option<drehscheibe_model::MessageStatus>, IntakeError> {
        // The inbox never asks; a recording double knows no states.
        Ok(None)
    }

    async fn submit(&self, submission: Submission) -> Result<Accepted, IntakeError> {
        if self.closed_channel.as_deref() == Some(submission.channel.as_str()) {
            return Err(IntakeError::ShuttingDown);
        }
        if let Some(key) = &submission.idempotency_key {
            let mut keys = self.keys.lock().unwrap();
            let slot = (submission.channel.clone(), key.clone());
            if let Some(id) = keys.get(&slot) {
                return Ok(Accepted {
                    id: *id,
                    duplicate: true,
                });
            }
            let id = MessageId::new();
            keys.insert(slot, id);
            self.submissions.lock().unwrap().push(submission);
            return Ok(Accepted {
                id,
                duplicate: false,
            });
        }
        self.submissions.lock().unwrap().push(submission);
        Ok(Accepted {
            id: MessageId::new(),
            duplicate: false,
        })
    }

    async fn stage_attachment(&self, reader: BlobReader) -> Result<BlobRef, IntakeError> {
        self.blobs
            .put(reader, self.max_attachment)
            .await
            .map_err(|e| match e {
                BlobError::TooLarge { limit } => IntakeError::TooLarge { limit },
                other => IntakeError::Unavailable(other.to_string()),
            })
    }

    fn max_payload_bytes(&self) -> u64 {
        self.max_payload
    }

    fn max_attachment_bytes(&self) -> u64 {
        self.max_attachment
    }

    fn channel_exists(&self, channel: &str) -> bool {
        self.channels.contains(channel)
    }

    fn blobs(&self) -> Arc<dyn BlobStore> {
        self.blobs.clone()
    }
}

/// Serve `router` on 127.0.0.1 (port 0) with peer addresses recorded.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

/// Deterministic pseudo-random bytes (xorshift), so content is not trivially
/// compressible or periodic.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
