//! Shared support of the fit-client tests: the test Zustelldienst, an
//! in-memory blob store, a recording `Intake`, and the test-only keys.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod zustelldienst;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use drehscheibe_fit_connect::jose::RsaPrivateKey;
use drehscheibe_model::{
    Accepted, BlobError, BlobReader, BlobRef, BlobStore, Intake, IntakeError, MessageId,
    MessageState, MessageStatus, Submission,
};
use tokio::io::AsyncReadExt;

/// A test-only key from `tests/fixtures/keys` with the given kid.
pub fn key(file: &str, kid: &str) -> RsaPrivateKey {
    let path = format!("{}/tests/fixtures/keys/{file}", env!("CARGO_MANIFEST_DIR"));
    RsaPrivateKey::from_pem(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .with_kid(kid)
}

/// Content-addressed blobs in memory.
#[derive(Default)]
pub struct MemBlobs {
    pub blobs: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemBlobs {
    pub fn insert(&self, bytes: &[u8]) -> BlobRef {
        let sha256 = drehscheibe_model::sha256_hex(bytes);
        self.blobs
            .lock()
            .unwrap()
            .insert(sha256.clone(), bytes.to_vec());
        BlobRef {
            sha256,
            size: bytes.len() as u64,
        }
    }

    pub fn get(&self, blob: &BlobRef) -> Vec<u8> {
        self.blobs.lock().unwrap()[&blob.sha256].clone()
    }
}

#[async_trait]
impl BlobStore for MemBlobs {
    async fn put(&self, mut reader: BlobReader, limit: u64) -> Result<BlobRef, BlobError> {
        let mut buf = Vec::new();
        (&mut reader).take(limit + 1).read_to_end(&mut buf).await?;
        if buf.len() as u64 > limit {
            return Err(BlobError::TooLarge { limit });
        }
        Ok(self.insert(&buf))
    }
    async fn open(&self, blob: &BlobRef) -> Result<BlobReader, BlobError> {
        let bytes = self
            .blobs
            .lock()
            .unwrap()
            .get(&blob.sha256)
            .cloned()
            .ok_or_else(|| BlobError::NotFound(blob.sha256.clone()))?;
        Ok(Box::pin(std::io::Cursor::new(bytes)))
    }
    async fn contains(&self, blob: &BlobRef) -> Result<bool, BlobError> {
        Ok(self.blobs.lock().unwrap().contains_key(&blob.sha256))
    }
}

/// An `Intake` that records submissions, deduplicates by idempotency key
/// and reports the states the test sets.
pub struct RecordingIntake {
    pub blobs: Arc<MemBlobs>,
    pub messages: Mutex<Vec<(MessageId, Submission)>>,
    pub by_key: Mutex<HashMap<String, MessageId>>,
    pub states: Mutex<HashMap<MessageId, (MessageState, Option<String>)>>,
    pub submits: Mutex<usize>,
}

impl RecordingIntake {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            blobs: Arc::new(MemBlobs::default()),
            messages: Mutex::new(Vec::new()),
            by_key: Mutex::new(HashMap::new()),
            states: Mutex::new(HashMap::new()),
            submits: Mutex::new(0),
        })
    }

    pub fn set_state(&self, id: MessageId, state: MessageState, reason: Option<&str>) {
        self.states
            .lock()
            .unwrap()
            .insert(id, (state, reason.map(String::from)));
    }

    pub fn messages(&self) -> Vec<(MessageId, Submission)> {
        self.messages.lock().unwrap().clone()
    }
}

#[async_trait]
impl Intake for RecordingIntake {
    async fn submit(&self, submission: Submission) -> Result<Accepted, IntakeError> {
        *self.submits.lock().unwrap() += 1;
        if let Some(k) = &submission.idempotency_key {
            if let Some(id) = self.by_key.lock().unwrap().get(k) {
                return Ok(Accepted {
                    id: *id,
                    duplicate: true,
                });
            }
        }
        let id = MessageId::new();
        if let Some(k) = &submission.idempotency_key {
            self.by_key.lock().unwrap().insert(k.clone(), id);
        }
        self.messages.lock().unwrap().push((id, submission));
        self.set_state(id, MessageState::Received, None);
        Ok(Accepted {
            id,
            duplicate: false,
        })
    }
    async fn stage_attachment(&self, reader: BlobReader) -> Result<BlobRef, IntakeError> {
        self.blobs
            .put(reader, self.max_attachment_bytes())
            .await
            .map_err(|e| IntakeError::Unavailable(e.to_string()))
    }
    fn max_payload_bytes(&self) -> u64 {
        16 << 20
    }
    fn max_attachment_bytes(&self) -> u64 {
        64 << 20
    }
    fn channel_exists(&self, _channel: &str) -> bool {
        true
    }
    fn blobs(&self) -> Arc<dyn BlobStore> {
        self.blobs.clone()
    }
    async fn status(&self, id: MessageId) -> Result<Option<MessageStatus>, IntakeError> {
        Ok(self
            .states
            .lock()
            .unwrap()
            .get(&id)
            .map(|(state, reason)| MessageStatus {
                id,
                state: *state,
                reason: reason.clone(),
                rule: None,
                deliveries: Vec::new(),
            }))
    }
}
