//! Intake targets: the payload check (XML, JSON) and the HTTP inbox's
//! multipart reader.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use drehscheibe_model::auth::{Principal, Role, TokenTable};
use drehscheibe_model::{
    Accepted, BlobError, BlobReader, BlobRef, BlobStore, Intake, IntakeError, MessageId,
    MessageStatus, Submission,
};
use drehscheibe_rules::input::media_type_essence;
use drehscheibe_rules::{transcode_to_utf8, validate, InputDocument};
use tokio::io::AsyncReadExt;
use tower::ServiceExt;

/// Content types the XML target chooses from (first input byte).
const XML_TYPES: &[&str] = &[
    "application/xml",
    "text/xml; charset=ISO-8859-1",
    "application/xml; charset=UTF-16",
    "application/vnd.xgewerbeanzeige+xml; charset=windows-1252",
    "text/xml; charset=utf-8",
];

/// Content types the JSON target chooses from (first input byte).
const JSON_TYPES: &[&str] = &["application/json", "application/fhir+json; charset=utf-8"];

/// The intake check, transcoding and the routing parser on one payload:
/// whatever [`validate`] accepts must transcode and must parse with
/// [`InputDocument::parse`] under the media type the hub stores (issue 9,
/// defect 6: intake and routing must agree).
pub fn intake_xml(data: &[u8]) {
    let Some((selector, payload)) = data.split_first() else {
        return;
    };
    accepted_means_routable(payload, XML_TYPES[*selector as usize % XML_TYPES.len()]);
}

/// As [`intake_xml`] for JSON payloads.
pub fn intake_json(data: &[u8]) {
    let Some((selector, payload)) = data.split_first() else {
        return;
    };
    accepted_means_routable(payload, JSON_TYPES[*selector as usize % JSON_TYPES.len()]);
}

fn accepted_means_routable(payload: &[u8], content_type: &str) {
    if validate(payload, content_type).is_err() {
        return;
    }
    // The hub stores the transcoded UTF-8 and routes it under the bare
    // media type (crates/engine/src/hub.rs, `submit`).
    let stored = match transcode_to_utf8(payload, content_type) {
        Ok(Some(t)) => t.bytes,
        Ok(None) => payload.to_vec(),
        Err(e) => panic!("intake accepted a payload it cannot transcode: {e}"),
    };
    let stored_type = media_type_essence(content_type);
    if let Err(e) = InputDocument::parse(&stored, &stored_type) {
        panic!("intake accepted a payload that routing refuses: {e}");
    }
}

const TOKEN: &str = "fuzz-sender-token";
const BOUNDARY: &str = "fuzz-boundary";

/// A `multipart/form-data` body (boundary `fuzz-boundary`) posted by an
/// authenticated sender to the HTTP inbox, through the real axum router.
/// The answer must be 202 or a 4xx refusal, and every attachment the
/// inbox staged must end up in the submission or be discarded (issue 9,
/// defect 3).
pub fn http_multipart(data: &[u8]) {
    let rt = crate::runtime();
    let intake = Arc::new(MemIntake::default());
    let mut tokens = TokenTable::new();
    tokens.insert(
        TOKEN,
        Principal {
            name: "fuzzer".into(),
            role: Role::Sender {
                channels: vec!["portal".into()],
            },
        },
    );
    let router = drehscheibe_http::inbox_router(intake.clone(), Arc::new(tokens));
    let request = Request::post("/api/v1/inbox/portal")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from(data.to_vec()));
    let Ok(request) = request else {
        return;
    };
    let status = rt.block_on(async {
        match router.oneshot(request).await {
            Ok(response) => response.status(),
            Err(never) => match never {},
        }
    });
    assert!(
        status == StatusCode::ACCEPTED || status.is_client_error(),
        "the inbox answered {status} to a multipart body"
    );
    // Discarding runs on a spawned task: give it time, then count.
    rt.block_on(async {
        for _ in 0..2000 {
            if intake.balanced() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    });
    let (staged, kept, discarded) = intake.counts();
    assert_eq!(
        staged,
        kept + discarded,
        "staged attachments leaked: {staged} staged, {kept} submitted, {discarded} discarded (answer {status})"
    );
}

/// An intake that keeps submissions and staged attachments in memory and
/// counts what happens to the staged ones.
#[derive(Default)]
pub(crate) struct MemIntake {
    blobs: Arc<MemBlobs>,
    staged: AtomicUsize,
    kept: AtomicUsize,
    discarded: AtomicUsize,
    keys: Mutex<HashMap<String, MessageId>>,
}

impl MemIntake {
    fn counts(&self) -> (usize, usize, usize) {
        (
            self.staged.load(Ordering::SeqCst),
            self.kept.load(Ordering::SeqCst),
            self.discarded.load(Ordering::SeqCst),
        )
    }

    fn balanced(&self) -> bool {
        let (staged, kept, discarded) = self.counts();
        staged == kept + discarded
    }
}

#[async_trait]
impl Intake for MemIntake {
    async fn submit(&self, submission: Submission) -> Result<Accepted, IntakeError> {
        // As the hub: the payload is checked at intake.
        validate(&submission.payload, &submission.content_type)
            .map_err(|e| IntakeError::Malformed(e.to_string()))?;
        self.kept
            .fetch_add(submission.attachments.len(), Ordering::SeqCst);
        let id = match &submission.idempotency_key {
            Some(key) => {
                let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
                *keys.entry(key.clone()).or_default()
            }
            None => MessageId::new(),
        };
        Ok(Accepted {
            id,
            duplicate: false,
        })
    }

    async fn stage_attachment(&self, reader: BlobReader) -> Result<BlobRef, IntakeError> {
        let blob = self
            .blobs
            .put(reader, self.max_attachment_bytes())
            .await
            .map_err(|e| match e {
                BlobError::TooLarge { limit } => IntakeError::TooLarge { limit },
                other => IntakeError::Unavailable(other.to_string()),
            })?;
        self.staged.fetch_add(1, Ordering::SeqCst);
        Ok(blob)
    }

    async fn discard_staged(&self, blobs: &[BlobRef]) {
        self.discarded.fetch_add(blobs.len(), Ordering::SeqCst);
    }

    fn max_payload_bytes(&self) -> u64 {
        1 << 20
    }

    fn max_attachment_bytes(&self) -> u64 {
        1 << 20
    }

    fn channel_exists(&self, channel: &str) -> bool {
        channel == "portal" || channel == "xta-in"
    }

    fn blobs(&self) -> Arc<dyn BlobStore> {
        self.blobs.clone()
    }

    async fn status(&self, _id: MessageId) -> Result<Option<MessageStatus>, IntakeError> {
        Ok(None)
    }
}

/// Blobs in memory, by SHA-256.
#[derive(Default)]
pub(crate) struct MemBlobs(Mutex<HashMap<String, Arc<Vec<u8>>>>);

#[async_trait]
impl BlobStore for MemBlobs {
    async fn put(&self, mut reader: BlobReader, limit: u64) -> Result<BlobRef, BlobError> {
        let mut bytes = Vec::new();
        (&mut reader)
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .await?;
        if bytes.len() as u64 > limit {
            return Err(BlobError::TooLarge { limit });
        }
        let sha256 = drehscheibe_model::sha256_hex(&bytes);
        let blob = BlobRef {
            sha256: sha256.clone(),
            size: bytes.len() as u64,
        };
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sha256, Arc::new(bytes));
        Ok(blob)
    }

    async fn open(&self, blob: &BlobRef) -> Result<BlobReader, BlobError> {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&blob.sha256)
            .cloned()
            .ok_or_else(|| BlobError::NotFound(blob.sha256.clone()))?;
        Ok(Box::pin(std::io::Cursor::new(bytes.as_ref().clone())))
    }

    async fn contains(&self, blob: &BlobRef) -> Result<bool, BlobError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&blob.sha256))
    }
}

/// The shared intake of the XTA target (its server keeps state on disk
/// and is opened once per process).
pub(crate) fn shared_intake() -> Arc<MemIntake> {
    static INTAKE: OnceLock<Arc<MemIntake>> = OnceLock::new();
    INTAKE.get_or_init(Default::default).clone()
}
