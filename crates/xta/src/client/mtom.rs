//! MTOM/XOP on the client side: a streamed `multipart/related` request
//! body (root SOAP part, then every binary part read from memory or the
//! blob store while sending) and a streamed reader for MTOM answers (the
//! root part kept in memory up to a limit, every other part streamed into
//! a [`PartSink`]).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use drehscheibe_model::{BlobReader, BlobRef, BlobStore};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use tokio_util::io::{ReaderStream, StreamReader};

/// Where the content of one outgoing binary part comes from.
#[derive(Clone)]
pub enum PartSource {
    /// Bytes in memory (the routed document).
    Bytes(Bytes),
    /// A blob, streamed from the store while the request is sent.
    Blob {
        /// The store.
        store: Arc<dyn BlobStore>,
        /// The blob (its size goes into `Content-Length`).
        blob: BlobRef,
    },
}

impl PartSource {
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Self::Bytes(b) => b.len() as u64,
            Self::Blob { blob, .. } => blob.size,
        }
    }

    /// Whether the part is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for PartSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Self::Blob { blob, .. } => write!(f, "Blob({})", blob.sha256),
        }
    }
}

/// One binary MIME part of an outgoing MTOM message.
#[derive(Debug, Clone)]
pub struct BinaryPart {
    /// Content-ID without angle brackets (referenced as `cid:<id>`).
    pub cid: String,
    /// MIME type of the part.
    pub content_type: String,
    /// The content.
    pub source: PartSource,
}

/// Content-ID of the root part.
pub const ROOT_CID: &str = "root.message@drehscheibe";

/// The `Content-Type` header of an MTOM request.
pub fn content_type(boundary: &str, action: &str) -> String {
    format!(
        "multipart/related; type=\"application/xop+xml\"; start=\"<{ROOT_CID}>\"; start-info=\"application/soap+xml\"; action=\"{action}\"; boundary=\"{boundary}\""
    )
}

/// Build the streamed body and its exact length.
pub fn body(root_xml: String, parts: Vec<BinaryPart>, boundary: &str) -> (reqwest::Body, u64) {
    let mut pieces: Vec<PartSource> = Vec::with_capacity(parts.len() * 2 + 3);
    let head = format!(
        "--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\nContent-Transfer-Encoding: 8bit\r\nContent-ID: <{ROOT_CID}>\r\n\r\n"
    );
    pieces.push(PartSource::Bytes(Bytes::from(head)));
    pieces.push(PartSource::Bytes(Bytes::from(root_xml)));
    for p in parts {
        let h = format!(
            "\r\n--{boundary}\r\nContent-Type: {}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{}>\r\n\r\n",
            p.content_type, p.cid
        );
        pieces.push(PartSource::Bytes(Bytes::from(h)));
        pieces.push(p.source);
    }
    pieces.push(PartSource::Bytes(Bytes::from(format!(
        "\r\n--{boundary}--\r\n"
    ))));
    let len = pieces.iter().map(PartSource::len).sum();
    let s =
        stream::iter(pieces)
            .map(|p| -> BoxStream<'static, Result<Bytes, std::io::Error>> {
                match p {
                    PartSource::Bytes(b) => stream::once(async move { Ok(b) }).boxed(),
                    PartSource::Blob { store, blob } => stream::once(async move {
                        store.open(&blob).await.map_err(std::io::Error::other)
                    })
                    .map_ok(ReaderStream::new)
                    .try_flatten()
                    .boxed(),
                }
            })
            .flatten();
    (reqwest::Body::wrap_stream(s), len)
}

/// Receives the binary parts of an MTOM answer.
#[async_trait]
pub trait PartSink: Send + Sync {
    /// Store one part durably and return its reference.
    async fn store(&self, reader: BlobReader) -> Result<BlobRef, String>;
}

/// A [`PartSink`] writing into a blob store with a per-part limit.
pub struct BlobSink {
    /// The store.
    pub store: Arc<dyn BlobStore>,
    /// Largest part accepted.
    pub limit: u64,
}

#[async_trait]
impl PartSink for BlobSink {
    async fn store(&self, reader: BlobReader) -> Result<BlobRef, String> {
        self.store
            .put(reader, self.limit)
            .await
            .map_err(|e| e.to_string())
    }
}

/// A parsed MTOM answer.
#[derive(Debug)]
pub struct MtomAnswer {
    /// The root (SOAP) part.
    pub root: Vec<u8>,
    /// Every other part by Content-ID (without angle brackets): MIME type
    /// and stored blob.
    pub parts: HashMap<String, (String, BlobRef)>,
}

/// A parameter of a MIME header value (`boundary`, `start`), unquoted.
pub fn mime_param(value: &str, name: &str) -> Option<String> {
    for piece in value.split(';').skip(1) {
        let (k, v) = piece.split_once('=')?;
        if k.trim().eq_ignore_ascii_case(name) {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// Read an MTOM answer: the root part (the `start` part, else the first)
/// into memory up to `root_limit`, every other part into `sink`.
pub async fn read_answer(
    resp: reqwest::Response,
    content_type: &str,
    root_limit: u64,
    sink: &dyn PartSink,
) -> Result<MtomAnswer, String> {
    let boundary =
        mime_param(content_type, "boundary").ok_or("multipart answer without boundary")?;
    let start = mime_param(content_type, "start").map(|s| strip_cid(&s).to_string());
    let body = resp.bytes_stream().map_err(std::io::Error::other);
    let mut mp = multer::Multipart::new(body, boundary);
    let mut root: Option<Vec<u8>> = None;
    let mut parts = HashMap::new();
    let mut first = true;
    while let Some(mut field) = mp
        .next_field()
        .await
        .map_err(|e| format!("broken MIME multipart: {e}"))?
    {
        let cid = field
            .headers()
            .get("content-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| strip_cid(v).to_string());
        let ctype = field
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_string();
        let is_root = match (&start, &cid) {
            (Some(s), Some(c)) => s == c,
            (Some(_), None) => false,
            (None, _) => first,
        };
        first = false;
        if is_root {
            let mut buf = Vec::new();
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| format!("broken MIME multipart: {e}"))?
            {
                if buf.len() as u64 + chunk.len() as u64 > root_limit {
                    return Err(format!("SOAP part is larger than {root_limit} bytes"));
                }
                buf.extend_from_slice(&chunk);
            }
            root = Some(buf);
        } else {
            let cid = cid.ok_or("MIME part without Content-ID")?;
            let stream = field.map_err(std::io::Error::other);
            let reader: BlobReader = Box::pin(StreamReader::new(stream));
            let blob = sink.store(reader).await?;
            parts.insert(cid, (ctype, blob));
        }
    }
    let root = root.ok_or("multipart answer without its SOAP part")?;
    Ok(MtomAnswer { root, parts })
}

/// `<id>` or `cid:id` (percent-encoded) → `id`.
pub fn strip_cid(s: &str) -> std::borrow::Cow<'_, str> {
    let s = s.trim();
    let s = s.strip_prefix("cid:").unwrap_or(s);
    let s = s.trim_start_matches('<').trim_end_matches('>');
    percent_decode(s)
}

fn percent_decode(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('%') {
        return s.into();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_params_and_cids() {
        let ct =
            "multipart/related; type=\"application/xop+xml\"; boundary=\"b1\"; start=\"<r@x>\"";
        assert_eq!(mime_param(ct, "boundary").as_deref(), Some("b1"));
        assert_eq!(mime_param(ct, "start").as_deref(), Some("<r@x>"));
        assert_eq!(mime_param(ct, "missing"), None);
        assert_eq!(strip_cid("<a@b>"), "a@b");
        assert_eq!(strip_cid("cid:a%40b"), "a@b");
        assert_eq!(strip_cid("cid:a%4"), "a%4");
    }

    #[tokio::test]
    async fn body_length_matches_the_stream() {
        let parts = vec![BinaryPart {
            cid: "p1@x".into(),
            content_type: "application/pdf".into(),
            source: PartSource::Bytes(Bytes::from_static(b"%PDF-1.7 data")),
        }];
        let (body, len) = body("<e/>".into(), parts, "BOUND");
        let bytes = http_body_bytes(body).await;
        assert_eq!(bytes.len() as u64, len);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("--BOUND\r\n"));
        assert!(text.contains("Content-ID: <p1@x>\r\n\r\n%PDF-1.7 data\r\n--BOUND--\r\n"));
    }

    async fn http_body_bytes(body: reqwest::Body) -> Vec<u8> {
        use http_body_util::BodyExt;
        body.collect().await.unwrap().to_bytes().to_vec()
    }
}
