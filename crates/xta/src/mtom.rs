//! MTOM/XOP: `multipart/related` requests (root SOAP part plus binary
//! parts addressed by `Content-ID`) and streamed responses, either MTOM
//! (raw binary parts) or plain SOAP with inline base64 produced on the fly.
//! Content is never assembled into one string: response bodies are a
//! sequence of XML segments and content sources streamed from the blob
//! store.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use drehscheibe_model::{BlobRef, BlobStore};
use futures::stream::{self, BoxStream, StreamExt};
use tokio::io::AsyncReadExt;

/// How a request body is packaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packaging {
    /// `application/soap+xml` (SOAP 1.2, inline base64 content).
    Soap12,
    /// `text/xml` (SOAP 1.1 — refused with a SOAP 1.1 `VersionMismatch`
    /// fault).
    Soap11,
    /// `multipart/related; type="application/xop+xml"`.
    Mtom {
        /// Multipart boundary.
        boundary: String,
        /// `start` parameter (Content-ID of the root part), without `<>`.
        start: Option<String>,
    },
}

/// A content type the server cannot handle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported Content-Type {0:?}: expected application/soap+xml or multipart/related (MTOM)"
)]
pub struct UnsupportedContentType(pub String);

/// Parameter `name` of a MIME header value (case-insensitive name,
/// quotes removed).
pub fn mime_param(value: &str, name: &str) -> Option<String> {
    for p in value.split(';').skip(1) {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case(name) {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            return Some(v.to_string());
        }
    }
    None
}

/// Classify a request `Content-Type`.
pub fn packaging(content_type: &str) -> Result<Packaging, UnsupportedContentType> {
    let main = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match main.as_str() {
        "application/soap+xml" => Ok(Packaging::Soap12),
        "text/xml" => Ok(Packaging::Soap11),
        "multipart/related" => {
            let boundary = mime_param(content_type, "boundary")
                .filter(|b| !b.is_empty() && b.len() <= 200)
                .ok_or_else(|| UnsupportedContentType(content_type.to_string()))?;
            let ty = mime_param(content_type, "type").unwrap_or_default();
            if !ty.eq_ignore_ascii_case("application/xop+xml") {
                return Err(UnsupportedContentType(content_type.to_string()));
            }
            let start_info = mime_param(content_type, "start-info").unwrap_or_default();
            if start_info.to_ascii_lowercase().starts_with("text/xml") {
                return Ok(Packaging::Soap11);
            }
            Ok(Packaging::Mtom {
                boundary,
                start: mime_param(content_type, "start").map(|s| strip_cid(&s).to_string()),
            })
        }
        _ => Err(UnsupportedContentType(content_type.to_string())),
    }
}

/// `<id>` or `cid:id` → `id` (percent-decoding of `cid:` URLs included).
pub fn strip_cid(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s);
    match s.strip_prefix("cid:") {
        Some(rest) => percent_decode(rest),
        None => s.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the bytes of a content part come from when answering.
#[derive(Debug, Clone)]
pub enum ContentSource {
    /// Bytes in memory.
    Inline(Bytes),
    /// A blob in the hub's blob store.
    Blob(BlobRef),
}

/// One segment of a response body.
#[derive(Debug, Clone)]
pub enum Segment {
    /// Literal bytes (XML, MIME headers, boundaries).
    Bytes(Bytes),
    /// Content, raw (MTOM part) or base64-encoded (inline).
    Content {
        /// The bytes.
        source: ContentSource,
        /// Encode as base64 on the fly.
        base64: bool,
    },
}

/// A response body under construction: XML text with content slots.
#[derive(Debug, Default)]
pub struct ResponseBuilder {
    mtom: bool,
    boundary: String,
    xml: String,
    segments: Vec<Segment>,
    parts: Vec<(String, ContentSource)>,
}

impl ResponseBuilder {
    /// A builder; `mtom` selects MTOM packaging, otherwise inline base64.
    pub fn new(mtom: bool) -> Self {
        Self {
            mtom,
            boundary: format!("uuid:{}", uuid::Uuid::new_v4()),
            ..Default::default()
        }
    }

    /// Append XML text.
    pub fn xml(&mut self, s: &str) {
        self.xml.push_str(s);
    }

    /// Append the content of a `xta:ContentType` element (between its
    /// start and end tags): an `xop:Include` or inline base64.
    pub fn content(&mut self, source: ContentSource) {
        if self.mtom {
            let cid = format!("{}@drehscheibe", uuid::Uuid::new_v4());
            self.xml.push_str(&format!(
                "<xop:Include xmlns:xop=\"{}\" href=\"cid:{}\"/>",
                crate::model::NS_XOP,
                cid
            ));
            self.parts.push((cid, source));
        } else {
            self.flush_xml();
            self.segments.push(Segment::Content {
                source,
                base64: true,
            });
        }
    }

    fn flush_xml(&mut self) {
        if !self.xml.is_empty() {
            let x = std::mem::take(&mut self.xml);
            self.segments.push(Segment::Bytes(Bytes::from(x)));
        }
    }

    /// Finish: the `Content-Type` header and the body segments.
    pub fn finish(mut self) -> (String, Vec<Segment>) {
        if !self.mtom {
            self.flush_xml();
            return (
                "application/soap+xml; charset=utf-8".to_string(),
                self.segments,
            );
        }
        let root = std::mem::take(&mut self.xml);
        let b = &self.boundary;
        let mut segs = vec![Segment::Bytes(Bytes::from(format!(
            "--{b}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <root.message@drehscheibe>\r\n\r\n{root}"
        )))];
        for (cid, src) in std::mem::take(&mut self.parts) {
            segs.push(Segment::Bytes(Bytes::from(format!(
                "\r\n--{b}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{cid}>\r\n\r\n"
            ))));
            segs.push(Segment::Content {
                source: src,
                base64: false,
            });
        }
        segs.push(Segment::Bytes(Bytes::from(format!("\r\n--{b}--\r\n"))));
        (
            format!(
                "multipart/related; type=\"application/xop+xml\"; boundary=\"{b}\"; start=\"<root.message@drehscheibe>\"; start-info=\"application/soap+xml\""
            ),
            segs,
        )
    }
}

/// Chunk size used when streaming blobs.
const CHUNK: usize = 64 * 1024;

/// Turn segments into a byte stream; blobs are opened lazily.
pub fn stream_segments(
    segments: Vec<Segment>,
    blobs: Arc<dyn BlobStore>,
) -> BoxStream<'static, std::io::Result<Bytes>> {
    stream::iter(segments)
        .flat_map(move |seg| -> BoxStream<'static, std::io::Result<Bytes>> {
            match seg {
                Segment::Bytes(b) => stream::once(async move { Ok(b) }).boxed(),
                Segment::Content { source, base64 } => {
                    content_stream(source, base64, blobs.clone())
                }
            }
        })
        .boxed()
}

fn content_stream(
    source: ContentSource,
    base64: bool,
    blobs: Arc<dyn BlobStore>,
) -> BoxStream<'static, std::io::Result<Bytes>> {
    match source {
        ContentSource::Inline(b) => {
            let out = if base64 {
                Bytes::from(base64::engine::general_purpose::STANDARD.encode(&b))
            } else {
                b
            };
            stream::once(async move { Ok(out) }).boxed()
        }
        ContentSource::Blob(blob) => {
            struct St {
                reader: Option<drehscheibe_model::BlobReader>,
                blob: BlobRef,
                carry: Vec<u8>,
                done: bool,
            }
            let st = St {
                reader: None,
                blob,
                carry: Vec::new(),
                done: false,
            };
            stream::unfold((st, blobs), move |(mut st, blobs)| async move {
                if st.done {
                    return None;
                }
                if st.reader.is_none() {
                    match blobs.open(&st.blob).await {
                        Ok(r) => st.reader = Some(r),
                        Err(e) => {
                            st.done = true;
                            return Some((Err(std::io::Error::other(e.to_string())), (st, blobs)));
                        }
                    }
                }
                let reader = st.reader.as_mut()?;
                let mut buf = vec![0u8; CHUNK];
                match reader.read(&mut buf).await {
                    Err(e) => {
                        st.done = true;
                        Some((Err(e), (st, blobs)))
                    }
                    Ok(0) => {
                        st.done = true;
                        if base64 && !st.carry.is_empty() {
                            let tail = base64::engine::general_purpose::STANDARD.encode(&st.carry);
                            Some((Ok(Bytes::from(tail)), (st, blobs)))
                        } else {
                            Some((Ok(Bytes::new()), (st, blobs)))
                        }
                    }
                    Ok(n) => {
                        buf.truncate(n);
                        if !base64 {
                            return Some((Ok(Bytes::from(buf)), (st, blobs)));
                        }
                        let mut data = std::mem::take(&mut st.carry);
                        data.extend_from_slice(&buf);
                        let whole = data.len() / 3 * 3;
                        st.carry = data.split_off(whole);
                        let enc = base64::engine::general_purpose::STANDARD.encode(&data);
                        Some((Ok(Bytes::from(enc)), (st, blobs)))
                    }
                }
            })
            .boxed()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_content_types() {
        assert_eq!(
            packaging("application/soap+xml; charset=utf-8; action=\"x\"").unwrap(),
            Packaging::Soap12
        );
        assert_eq!(
            packaging("text/xml; charset=utf-8").unwrap(),
            Packaging::Soap11
        );
        assert_eq!(
            packaging("multipart/related; type=\"application/xop+xml\"; boundary=\"b1\"; start=\"<root@x>\"; start-info=\"application/soap+xml\"").unwrap(),
            Packaging::Mtom { boundary: "b1".into(), start: Some("root@x".into()) }
        );
        assert!(packaging("multipart/related; boundary=x").is_err());
        assert!(packaging("application/json").is_err());
        assert_eq!(strip_cid("cid:a%40b"), "a@b");
        assert_eq!(strip_cid("<a@b>"), "a@b");
    }
}
