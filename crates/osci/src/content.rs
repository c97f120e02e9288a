//! The content of a delivery: `osci:ContentPackage` in the body of a
//! StoreDelivery (and of a ResponseToFetchDelivery).
//!
//! A package holds `osci:ContentContainer`s and `xenc:EncryptedData`
//! (an end-to-end encrypted container, for the reader's cipher
//! certificate). A container may carry content signatures (`ds:Signature`
//! over its contents, by an author) and `osci:Content`s, each either
//! inline (`osci:Base64Content`, or XML), or `href="cid:…"` to an
//! attachment part.
//!
//! [`read_contents`] decrypts what the reader's key opens, verifies
//! every content signature with the author's certificate from the
//! message, and returns the contents in order; [`forwardable`] cuts a
//! stored delivery into what a ResponseToFetchDelivery carries on.

use drehscheibe_model::{BlobRef, BlobStore};
use rsa::RsaPrivateKey;
use tokio::io::AsyncReadExt as _;

use crate::c14n::{Document, ElementRef};
use crate::message::{self, Certificates, Inner};
use crate::{dsig, xenc};

/// Why content cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content structure: {0}")]
    Structure(String),
    #[error("content decryption: {0}")]
    Decrypt(#[from] xenc::XencError),
    #[error("content signature: {0}")]
    Signature(#[from] dsig::DsigError),
    #[error("encrypted content for another reader (no key)")]
    NoKey,
}

impl ContentError {
    /// OSCI feedback code.
    pub fn feedback_code(&self) -> &'static str {
        match self {
            Self::Structure(_) => "9100",
            Self::Decrypt(e) => e.feedback_code(),
            Self::Signature(e) => e.feedback_code(),
            Self::NoKey => "9200",
        }
    }
}

fn structure(m: impl Into<String>) -> ContentError {
    ContentError::Structure(m.into())
}

/// One content of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentItem {
    /// A name for it: the content's `Id`, or the attachment's cid.
    pub name: String,
    /// Media type as far as known (`application/xml` for XML content,
    /// `application/octet-stream` otherwise).
    pub content_type: String,
    pub bytes: Vec<u8>,
    /// Whether an author's signature covers it.
    pub signed: bool,
}

/// Most contents one delivery may have.
pub const MAX_CONTENTS: usize = 1_000;

/// Read every content of `inner`'s ContentPackage (see the module docs).
/// `reader` opens encrypted containers; without it they are refused.
///
/// # Errors
///
/// See [`ContentError`].
pub fn read_contents(
    inner: &Inner<'_>,
    certs: &Certificates,
    reader: Option<(&RsaPrivateKey, &[u8])>,
    enc_algorithms: xenc::Algorithms,
    sig_algorithms: dsig::Algorithms,
) -> Result<Vec<ContentItem>, ContentError> {
    let body = inner.body().map_err(|e| structure(e.to_string()))?;
    let Some(package) = body.child("ContentPackage") else {
        return Ok(Vec::new());
    };
    let items = package.children();
    if items.len() > MAX_CONTENTS {
        return Err(structure("too many containers in the ContentPackage"));
    }
    let mut out = Vec::new();
    let mut hrefs: Vec<String> = Vec::new();
    for item in items {
        match item.local_name() {
            "ContentContainer" => read_container(
                &inner.doc,
                Some(&inner.mime),
                item,
                certs,
                sig_algorithms,
                &mut out,
                &mut hrefs,
            )?,
            "EncryptedData" => {
                let Some((key, cert)) = reader else {
                    return Err(ContentError::NoKey);
                };
                let plain = xenc::decrypt_element(
                    &inner.doc,
                    Some(&inner.mime),
                    item,
                    key,
                    Some(cert),
                    enc_algorithms,
                )?;
                // The plaintext is a ContentContainer (in the envelope's
                // namespace context) — parse it with the five
                // declarations around it. Plaintext that is not a container is answered like a
                // failed decryption: with legacy CBC (no integrity) two
                // different codes would be a padding oracle.
                let wrapped = format!(
                    "<osci:Wrapper {}>{}</osci:Wrapper>",
                    message::NS_DECLS,
                    std::str::from_utf8(&plain)
                        .map_err(|_| ContentError::Decrypt(xenc::XencError::Decrypt))?
                );
                let doc = Document::parse(wrapped.as_bytes())
                    .map_err(|_| ContentError::Decrypt(xenc::XencError::Decrypt))?;
                for c in doc.root().children() {
                    if c.local_name() == "ContentContainer" {
                        read_container(
                            &doc,
                            Some(&inner.mime),
                            c,
                            certs,
                            sig_algorithms,
                            &mut out,
                            &mut hrefs,
                        )?;
                    }
                }
            }
            other => return Err(structure(format!("unexpected {other} in ContentPackage"))),
        }
        if out.len() > MAX_CONTENTS {
            return Err(structure("too many contents"));
        }
    }
    Ok(out)
}

fn read_container(
    doc: &Document,
    mime: Option<&crate::mime::Message<'_>>,
    container: ElementRef<'_>,
    certs: &Certificates,
    algorithms: dsig::Algorithms,
    out: &mut Vec<ContentItem>,
    hrefs: &mut Vec<String>,
) -> Result<(), ContentError> {
    // Content signatures: each must verify, with the author's
    // certificate the message carries.
    let mut covered: Vec<String> = Vec::new();
    for sig in container.children_named("Signature") {
        let uri = sig
            .child("KeyInfo")
            .and_then(|k| k.child("RetrievalMethod"))
            .and_then(|r| r.attr("URI"))
            .and_then(|u| u.strip_prefix('#'))
            .ok_or_else(|| structure("content signature without RetrievalMethod"))?;
        let cert = certs
            .entries
            .iter()
            .find(|e| e.id.as_deref() == Some(uri))
            .ok_or_else(|| structure(format!("content signature: no certificate #{uri}")))?;
        let key = dsig::rsa_key_of_certificate(&cert.der)?;
        covered.extend(dsig::verify_with(doc, mime, sig, &key, algorithms)?);
    }
    for content in container.children_named("Content") {
        let id = content.attr("Id").map(str::to_owned);
        let signed_ref = |s: &str| covered.iter().any(|c| c == s);
        if out.len() >= MAX_CONTENTS {
            return Err(structure("too many contents"));
        }
        if let Some(href) = content.attr("href") {
            // Each attachment once: a thousand references to one large
            // part must not become a thousand copies.
            if hrefs.iter().any(|h| h == href) {
                return Err(structure(format!("{href} is referenced twice")));
            }
            hrefs.push(href.to_owned());
            let part = mime
                .and_then(|m| m.part(href))
                .ok_or_else(|| structure(format!("no MIME part {href}")))?;
            let name = href.trim_start_matches("cid:").to_owned();
            out.push(ContentItem {
                signed: signed_ref(href)
                    || id.as_deref().is_some_and(|i| signed_ref(&format!("#{i}"))),
                name,
                content_type: "application/octet-stream".into(),
                bytes: part.body.to_vec(),
            });
        } else if let Some(b64) = content.child("Base64Content") {
            let bid = b64.attr("Id").map(str::to_owned);
            let bytes = message::b64_decode(&b64.text())
                .map_err(|_| structure("osci:Base64Content is not base64"))?;
            let is_xml = looks_like_xml(&bytes);
            out.push(ContentItem {
                signed: bid.as_deref().is_some_and(|i| signed_ref(&format!("#{i}")))
                    || id.as_deref().is_some_and(|i| signed_ref(&format!("#{i}"))),
                name: bid
                    .or(id)
                    .unwrap_or_else(|| format!("content{}", out.len())),
                content_type: if is_xml {
                    "application/xml"
                } else {
                    "application/octet-stream"
                }
                .into(),
                bytes,
            });
        } else if let Some(xml) = content.children().into_iter().next() {
            let bytes = xml.canonicalize().map_err(|e| structure(e.to_string()))?;
            out.push(ContentItem {
                signed: id.as_deref().is_some_and(|i| signed_ref(&format!("#{i}"))),
                name: id.unwrap_or_else(|| format!("content{}", out.len())),
                content_type: "application/xml".into(),
                bytes,
            });
        } else {
            let text = content.text();
            out.push(ContentItem {
                signed: id.as_deref().is_some_and(|i| signed_ref(&format!("#{i}"))),
                name: id.unwrap_or_else(|| format!("content{}", out.len())),
                content_type: "text/plain".into(),
                bytes: text.into_bytes(),
            });
        }
    }
    Ok(())
}

fn looks_like_xml(bytes: &[u8]) -> bool {
    let t = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |i| &bytes[i..]);
    t.starts_with(b"<") && Document::parse(bytes).is_ok()
}

/// The hub message of a delivery: the first XML content is the payload,
/// every other content an attachment; a delivery without XML content
/// gets a manifest payload (`<osci:Delivery>` listing message id,
/// subject and contents) so that rules can still route it.
pub fn payload_and_attachments(
    mut contents: Vec<ContentItem>,
    message_id: &str,
    subject: Option<&str>,
) -> (Vec<u8>, String, Vec<ContentItem>) {
    if let Some(i) = contents
        .iter()
        .position(|c| c.content_type == "application/xml")
    {
        let first = contents.remove(i);
        return (first.bytes, "application/xml".into(), contents);
    }
    let mut manifest = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><osci:Delivery xmlns:osci="urn:drehscheibe:osci"><osci:MessageId>{}</osci:MessageId>"#,
        message::escape(message_id)
    );
    if let Some(s) = subject {
        manifest.push_str(&format!(
            "<osci:Subject>{}</osci:Subject>",
            message::escape(s)
        ));
    }
    for c in &contents {
        manifest.push_str(&format!(
            r#"<osci:Content name="{}" type="{}" size="{}" signed="{}"/>"#,
            message::escape(&c.name),
            message::escape(&c.content_type),
            c.bytes.len(),
            c.signed
        ));
    }
    manifest.push_str("</osci:Delivery>");
    (manifest.into_bytes(), "application/xml".into(), contents)
}

/// A delivery as it goes into the hub.
#[derive(Debug)]
pub struct HubDelivery {
    pub channel: String,
    pub sender: drehscheibe_model::SenderIdentity,
    pub payload: Vec<u8>,
    pub content_type: String,
    pub attachments: Vec<ContentItem>,
    /// The OSCI message id (idempotency key).
    pub message_id: String,
    pub correlation_ids: std::collections::BTreeMap<String, String>,
}

/// Why [`submit`] did not take a delivery in.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Intake(#[from] drehscheibe_model::IntakeError),
}

/// Stage the attachments and submit (idempotent on the message id);
/// what was staged is given back if the submission fails.
///
/// # Errors
///
/// Over the intake's limits, or the intake refused.
pub async fn submit(
    intake: &dyn drehscheibe_model::Intake,
    d: HubDelivery,
) -> Result<drehscheibe_model::Accepted, SubmitError> {
    if d.payload.len() as u64 > intake.max_payload_bytes() {
        return Err(SubmitError::TooLarge(
            "the content is larger than the hub accepts".into(),
        ));
    }
    if d.attachments
        .iter()
        .any(|a| a.bytes.len() as u64 > intake.max_attachment_bytes())
    {
        return Err(SubmitError::TooLarge(
            "an attachment is larger than the hub accepts".into(),
        ));
    }
    let mut staged: Vec<BlobRef> = Vec::new();
    let mut attachments = Vec::new();
    for item in d.attachments {
        let blob = match intake
            .stage_attachment(Box::pin(std::io::Cursor::new(item.bytes)))
            .await
        {
            Ok(b) => b,
            Err(e) => {
                intake.discard_staged(&staged).await;
                return Err(e.into());
            }
        };
        staged.push(blob.clone());
        attachments.push(drehscheibe_model::StagedAttachment {
            name: item.name.clone(),
            filename: Some(item.name),
            content_type: item.content_type,
            blob,
        });
    }
    let submission = drehscheibe_model::Submission {
        channel: d.channel,
        sender: d.sender,
        content_type: d.content_type,
        payload: bytes::Bytes::from(d.payload),
        attachments,
        idempotency_key: Some(d.message_id),
        correlation_ids: d.correlation_ids,
    };
    match intake.submit(submission).await {
        Ok(a) => Ok(a),
        Err(e) => {
            intake.discard_staged(&staged).await;
            Err(e.into())
        }
    }
}

/// XTA message meta data carried as a custom header of the delivery
/// (see `../shared/osci/NOTES.md`), as correlation ids: the message id,
/// the service and the business scenario, if present.
pub fn xta_metadata(inner: &Inner<'_>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for block in inner.header_blocks() {
        if block.local_name() != "MessageMetaData" {
            continue;
        }
        let mut stack = vec![block];
        while let Some(e) = stack.pop() {
            let key = match e.local_name() {
                "MessageID" | "MessageId" => Some("xta.message_id"),
                "Service" => Some("xta.service"),
                "BusinessScenario" => Some("xta.business_scenario"),
                _ => None,
            };
            if let Some(k) = key {
                let v = e.text().trim().to_owned();
                if !v.is_empty() && v.len() <= 1024 {
                    out.push((k.to_owned(), v));
                }
            }
            stack.extend(e.children());
        }
    }
    out
}

/// Read a blob into memory, refusing more than `limit` bytes.
///
/// # Errors
///
/// The blob store failed or the blob is larger.
pub async fn read_blob(
    blobs: &dyn BlobStore,
    blob: &BlobRef,
    limit: u64,
) -> Result<Vec<u8>, String> {
    if blob.size > limit {
        return Err(format!("stored content larger than {limit} bytes"));
    }
    let mut r = blobs.open(blob).await.map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0));
    r.read_to_end(&mut out).await.map_err(|e| e.to_string())?;
    Ok(out)
}

/// What a ResponseToFetchDelivery carries on from a stored delivery.
#[derive(Debug, Clone, Default)]
pub struct Forwardable {
    /// Header blocks: the delivery's `osci:NonIntermediaryCertificates`
    /// (authors' and readers' certificates for the content signatures and
    /// encryption), and custom headers.
    pub headers: Vec<String>,
    /// The body's content: `osci:ContentPackage`, canonical.
    pub body: String,
    /// The attachment parts (cid, bytes).
    pub attachments: Vec<(String, Vec<u8>)>,
}

/// Whether [`forwardable`] will succeed on `stored`, without copying
/// anything (StoreDelivery checks this before it stores).
///
/// # Errors
///
/// What [`forwardable`] would fail with.
pub fn check_forwardable(stored: &Inner<'_>) -> Result<(), ContentError> {
    if let Some(n) = stored.header("NonIntermediaryCertificates") {
        n.canonicalize().map_err(|e| structure(e.to_string()))?;
    }
    for b in stored.header_blocks() {
        if b.namespace().as_deref() != Some(message::NS_OSCI)
            && b.local_name() != "FeatureDescription"
        {
            b.canonicalize().map_err(|e| structure(e.to_string()))?;
        }
    }
    let body = stored.body().map_err(|e| structure(e.to_string()))?;
    if let Some(p) = body.child("ContentPackage") {
        p.canonicalize().map_err(|e| structure(e.to_string()))?;
    }
    for part in message::attachments(stored) {
        part.content_id()
            .ok_or_else(|| structure("an attachment part without Content-ID"))?;
    }
    Ok(())
}

/// Cut a stored StoreDelivery into what a ResponseToFetchDelivery
/// carries (canonical forms: they keep the content signatures valid, see
/// [`crate::message`]).
///
/// # Errors
///
/// The stored message is not a readable delivery.
pub fn forwardable(stored: &Inner<'_>) -> Result<Forwardable, ContentError> {
    let canon = |e: ElementRef<'_>| -> Result<String, ContentError> {
        let b = e.canonicalize().map_err(|e| structure(e.to_string()))?;
        String::from_utf8(b).map_err(|_| structure("not UTF-8"))
    };
    let mut f = Forwardable::default();
    if let Some(n) = stored.header("NonIntermediaryCertificates") {
        f.headers.push(canon(n)?);
    }
    for b in stored.header_blocks() {
        if b.namespace().as_deref() != Some(message::NS_OSCI)
            && b.local_name() != "FeatureDescription"
        {
            f.headers.push(canon(b)?);
        }
    }
    let body = stored.body().map_err(|e| structure(e.to_string()))?;
    if let Some(p) = body.child("ContentPackage") {
        f.body = canon(p)?;
    }
    for part in message::attachments(stored) {
        let cid = part
            .content_id()
            .ok_or_else(|| structure("an attachment part without Content-ID"))?;
        f.attachments.push((cid.to_owned(), part.body.to_vec()));
    }
    Ok(f)
}
