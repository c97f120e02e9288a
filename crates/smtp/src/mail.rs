//! Composing the mail: size check, attachment reading, headers, body.

use std::fmt::Write as _;

use chrono::SecondsFormat;
use drehscheibe_model::{
    sha256_hex, AttachmentRef, BlobError, DeliveryError, DeliveryRequest, Envelope,
};
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use tokio::io::AsyncReadExt;

/// Fallback `Message-ID` domain when the sender's domain cannot be used.
const FALLBACK_DOMAIN: &str = "drehscheibe.invalid";

/// What the connector contributes to every mail.
pub(crate) struct Layout<'a> {
    pub from: &'a Mailbox,
    pub to: &'a [Mailbox],
    pub subject_template: &'a str,
    pub message_id_domain: &'a str,
}

/// One attachment, read from the blob store.
pub(crate) struct LoadedAttachment<'a> {
    pub reference: &'a AttachmentRef,
    pub bytes: Vec<u8>,
}

/// Declared size of document plus attachments (saturating).
pub(crate) fn declared_total(request: &DeliveryRequest) -> u64 {
    request
        .envelope
        .attachments
        .iter()
        .fold(request.document.len() as u64, |sum, a| {
            sum.saturating_add(a.blob.size)
        })
}

/// Read every attachment, each capped at its declared size.
pub(crate) async fn read_attachments(
    request: &DeliveryRequest,
) -> Result<Vec<LoadedAttachment<'_>>, DeliveryError> {
    let mut loaded = Vec::with_capacity(request.envelope.attachments.len());
    for reference in &request.envelope.attachments {
        let declared = reference.blob.size;
        let reader = request
            .blobs
            .open(&reference.blob)
            .await
            .map_err(|e| blob_error(&reference.name, e))?;
        let mut bytes = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        reader
            .take(declared.saturating_add(1))
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| blob_error(&reference.name, BlobError::Io(e)))?;
        if bytes.len() as u64 != declared {
            let actual = if bytes.len() as u64 > declared {
                "more".to_owned()
            } else {
                bytes.len().to_string()
            };
            return Err(DeliveryError::permanent(format!(
                "attachment {:?}: blob {} has {actual} bytes, the envelope declares {declared}",
                reference.name, reference.blob.sha256
            )));
        }
        loaded.push(LoadedAttachment { reference, bytes });
    }
    Ok(loaded)
}

fn blob_error(name: &str, e: BlobError) -> DeliveryError {
    let reason = format!("attachment {name:?}: {e}");
    match e {
        BlobError::Io(_) => DeliveryError::retryable(reason),
        BlobError::NotFound(_) | BlobError::Corrupt { .. } | BlobError::TooLarge { .. } => {
            DeliveryError::permanent(reason)
        }
    }
}

/// Domain part for `Message-ID`s: the sender's domain when it is a plain
/// dot-atom (or an address literal), otherwise a fixed `.invalid` domain.
pub(crate) fn message_id_domain(domain: &str) -> String {
    let dot_atom = !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    let literal = domain.starts_with('[')
        && domain.ends_with(']')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "[]:.".contains(c));
    if dot_atom || literal {
        domain.to_ascii_lowercase()
    } else {
        FALLBACK_DOMAIN.to_owned()
    }
}

/// `<key@domain>`, with the idempotency key made a valid `dot-atom-text`:
/// every byte outside `[A-Za-z0-9/_-]` becomes `=XX`. Deterministic, so a
/// retry of the same generation has the same id.
pub(crate) fn message_id(idempotency_key: &str, domain: &str) -> String {
    let mut local = String::with_capacity(idempotency_key.len() + 8);
    for b in idempotency_key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'/' || b == b'_' || b == b'-' {
            local.push(char::from(b));
        } else {
            let _ = write!(local, "={b:02X}");
        }
    }
    format!("<{local}@{domain}>")
}

/// Replace the placeholders of the subject template in one pass (values
/// are never scanned for placeholders themselves).
pub(crate) fn render_subject(template: &str, envelope: &Envelope, target: &str) -> String {
    let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unknown)".into());
    let mut out = String::with_capacity(template.len() + 48);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find('}') else {
            rest = after;
            break;
        };
        let value = match &after[1..close] {
            "leistung" => Some(or_unknown(&envelope.leistung)),
            "id" => Some(envelope.id.to_string()),
            "target" => Some(target.to_owned()),
            "tenant" => Some(or_unknown(&envelope.tenant)),
            "kommune" => Some(or_unknown(&envelope.kommune_key)),
            _ => None,
        };
        match value {
            Some(v) => out.push_str(&v),
            None => out.push_str(&after[..=close]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    clean(&out)
}

/// Control characters replaced by spaces: values from messages never
/// break a header or a line of the summary.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A file name safe for `Content-Disposition`: control characters and
/// path separators replaced; never empty.
fn safe_filename(name: &str, fallback: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || c == '/' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        fallback.to_owned()
    } else {
        cleaned.to_owned()
    }
}

fn attachment_filename(a: &AttachmentRef) -> String {
    safe_filename(a.filename.as_deref().unwrap_or(&a.name), "attachment")
}

fn content_type(value: &str, what: &str) -> ContentType {
    match ContentType::parse(value) {
        Ok(ct) => ct,
        Err(_) => {
            tracing::warn!(
                part = what,
                content_type = value,
                "invalid content type; sent as application/octet-stream"
            );
            ContentType::parse("application/octet-stream").unwrap_or(ContentType::TEXT_PLAIN)
        }
    }
}

/// The plain-text summary at the top of the mail.
pub(crate) fn summary(
    request: &DeliveryRequest,
    document_sha256: &str,
    attachments: &[LoadedAttachment<'_>],
) -> String {
    let e = &request.envelope;
    let unknown = |v: &Option<String>| v.as_deref().map_or_else(|| "(unknown)".into(), clean);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Drehscheibe forwards message {} for target {:?}.",
        e.id,
        clean(&request.target)
    );
    text.push('\n');
    let rows = [
        ("Message id", e.id.to_string()),
        ("Leistung", unknown(&e.leistung)),
        ("Kommune", unknown(&e.kommune_key)),
        ("Tenant", unknown(&e.tenant)),
        (
            "Received at",
            e.received_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        ),
        ("Channel", clean(&e.channel)),
        (
            "Sender",
            format!(
                "{} {}",
                clean(&e.sender.adapter),
                clean(&e.sender.principal)
            ),
        ),
        ("Delivery key", clean(&request.idempotency_key())),
        (
            "Document",
            format!(
                "{} ({}, {} bytes)",
                safe_filename(&request.filename, "document"),
                clean(&request.content_type),
                request.document.len()
            ),
        ),
        ("Document SHA-256", document_sha256.to_owned()),
    ];
    for (label, value) in rows {
        let _ = writeln!(text, "{:<18}{value}", format!("{label}:"));
    }
    text.push('\n');
    if attachments.is_empty() {
        text.push_str("Attachments: none\n");
    } else {
        let _ = writeln!(text, "Attachments ({}):", attachments.len());
        for a in attachments {
            let r = a.reference;
            let _ = writeln!(
                text,
                "  - {} ({}, {} bytes, SHA-256 {})",
                attachment_filename(r),
                clean(&r.content_type),
                r.blob.size,
                clean(&r.blob.sha256)
            );
        }
    }
    text.push_str(
        "\nThe document and every attachment are attached to this mail unchanged.\n\
         A repeated delivery of the same message carries the same Message-ID.\n",
    );
    text
}

fn header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), clean(value))
}

fn base64_part(
    filename: String,
    bytes: Vec<u8>,
    content_type: ContentType,
) -> Result<SinglePart, DeliveryError> {
    let body = Body::new_with_encoding(bytes, ContentTransferEncoding::Base64).map_err(|_| {
        DeliveryError::permanent(format!("attachment {filename:?} cannot be encoded"))
    })?;
    Ok(Attachment::new(filename).body(body, content_type))
}

/// Build the whole mail.
pub(crate) fn compose(
    layout: &Layout<'_>,
    request: &DeliveryRequest,
    attachments: Vec<LoadedAttachment<'_>>,
) -> Result<Message, DeliveryError> {
    let envelope = &request.envelope;
    let document_sha256 = sha256_hex(&request.document);
    let text = summary(request, &document_sha256, &attachments);

    let mut builder = Message::builder()
        .from(layout.from.clone())
        .subject(render_subject(
            layout.subject_template,
            envelope,
            &request.target,
        ))
        .message_id(Some(message_id(
            &request.idempotency_key(),
            layout.message_id_domain,
        )))
        .raw_header(header("X-Drehscheibe-Message-Id", &envelope.id.to_string()))
        .raw_header(header("X-Drehscheibe-Target", &request.target));
    if let Some(leistung) = &envelope.leistung {
        builder = builder.raw_header(header("X-Drehscheibe-Leistung", leistung));
    }
    if let Some(tenant) = &envelope.tenant {
        builder = builder.raw_header(header("X-Drehscheibe-Tenant", tenant));
    }
    for to in layout.to {
        builder = builder.to(to.clone());
    }

    let document = base64_part(
        safe_filename(&request.filename, "document"),
        request.document.to_vec(),
        content_type(&request.content_type, "document"),
    )?;
    let mut mime = MultiPart::mixed()
        .singlepart(SinglePart::plain(text))
        .singlepart(document);
    for a in attachments {
        let filename = attachment_filename(a.reference);
        let ct = content_type(&a.reference.content_type, &a.reference.name);
        mime = mime.singlepart(base64_part(filename, a.bytes, ct)?);
    }
    builder
        .multipart(mime)
        .map_err(|e| DeliveryError::permanent(format!("the mail cannot be built: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_valid_and_deterministic() {
        let key = "01900000-0000-7000-8000-000000000001/fach verfahren.x/2";
        let id = message_id(key, "example.org");
        assert_eq!(
            id,
            "<01900000-0000-7000-8000-000000000001/fach=20verfahren=2Ex/2@example.org>"
        );
        assert_eq!(id, message_id(key, "example.org"));
        assert_ne!(
            id,
            message_id(
                "01900000-0000-7000-8000-000000000001/fach verfahren.x/3",
                "example.org"
            )
        );
        // `=` itself is escaped, so the encoding is injective.
        assert_ne!(message_id("a=20", "d"), message_id("a ", "d"));
    }

    #[test]
    fn message_id_domain_falls_back_for_odd_domains() {
        assert_eq!(message_id_domain("Example.ORG"), "example.org");
        assert_eq!(message_id_domain("[127.0.0.1]"), "[127.0.0.1]");
        assert_eq!(message_id_domain("bad..domain"), FALLBACK_DOMAIN);
        assert_eq!(message_id_domain("bücher.de"), FALLBACK_DOMAIN);
    }

    fn envelope() -> Envelope {
        Envelope {
            id: "01900000-0000-7000-8000-000000000001".parse().unwrap(),
            channel: "portal".into(),
            sender: drehscheibe_model::SenderIdentity {
                adapter: "http".into(),
                principal: "portal".into(),
                remote_addr: None,
            },
            received_at: chrono::Utc::now(),
            content_type: "application/xml".into(),
            size: 1,
            sha256: String::new(),
            correlation_ids: Default::default(),
            idempotency_key: None,
            tenant: Some("musterstadt".into()),
            kommune_key: Some("09162000".into()),
            leistung: Some("99050012104000\r\nBcc: evil@x {id}".into()),
            attachments: Vec::new(),
        }
    }

    #[test]
    fn subject_placeholders_are_replaced_once() {
        let e = envelope();
        assert_eq!(
            render_subject(
                "[{tenant}/{kommune}] {leistung} {id} {target} {other} {",
                &e,
                "fv"
            ),
            "[musterstadt/09162000] 99050012104000  Bcc: evil@x {id} \
             01900000-0000-7000-8000-000000000001 fv {other} {"
        );
        let mut e = envelope();
        e.leistung = None;
        assert_eq!(render_subject("{leistung}", &e, "fv"), "(unknown)");
    }

    #[test]
    fn filenames_are_made_safe() {
        assert_eq!(safe_filename("a/b\\c\r\n.xml", "x"), "a_b_c__.xml");
        assert_eq!(safe_filename("  ", "x"), "x");
        assert_eq!(safe_filename("..", "x"), "x");
        assert_eq!(safe_filename("Antrag Müller.pdf", "x"), "Antrag Müller.pdf");
    }
}
