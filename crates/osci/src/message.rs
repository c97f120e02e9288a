//! The inner OSCI message: one SOAP 1.1 envelope (MIME part
//! `<osci@message>`) plus attachment parts, after the transport layer is
//! taken off ([`crate::xenc`]).
//!
//! ```text
//! soap:Envelope
//!   soap:Header
//!     osci:ControlBlock          Challenge / Response, ConversationId, SequenceNumber
//!     osci:ClientSignature       (requests)  or osci:SupplierSignature (responses)
//!     osci:DesiredLanguages      (requests)
//!     osci:QualityOfTimestamp ×2 (StoreDelivery)
//!     osci:<order block>         storeDelivery / responseToStoreDelivery / …
//!     osci:IntermediaryCertificates, osci:NonIntermediaryCertificates
//!     custom headers             (e.g. XTA MessageMetaData)
//!   soap:Body Id="body"
//!     osci:ContentPackage        ContentContainer / xenc:EncryptedData …
//! ```
//!
//! The reference library declares the same five namespaces (`ds`, `osci`,
//! `soap`, `xenc`, `xsi`) on the envelope *and* on every header block and
//! content container ([`NS_DECLS`]). Inclusive C14N renders every
//! namespace in scope, so a container keeps its canonical form — and its
//! content signature stays valid — when an Intermediär copies it from a
//! StoreDelivery into a ResponseToFetchDelivery whose envelope declares
//! the same five. [`Builder`] writes messages that way.
//!
//! [`Inner::parse`] reads any message of either direction; the typed
//! readers ([`ControlBlock::read`], [`Certificates::read`],
//! [`Feedback::read`]) pick out what the protocol needs.

use std::fmt::Write as _;

use base64::Engine as _;
use rand::RngCore as _;

use crate::c14n::{C14nError, Document, ElementRef};
use crate::mime::{self, MimeError};

/// `http://www.osci.de/2002/04/osci`
pub const NS_OSCI: &str = "http://www.osci.de/2002/04/osci";
/// SOAP 1.1 envelope namespace.
pub const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// XML-DSig.
pub const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// XML encryption 1.0.
pub const NS_XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
/// XML Schema instance.
pub const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// OSCI 1.2 additions of 2017 (feature description, chunking).
pub const NS_OSCI2017: &str = "http://xoev.de/transport/osci12/7";

/// The five declarations every envelope, header block and content
/// container carries (see the module docs).
pub const NS_DECLS: &str = concat!(
    r#"xmlns:ds="http://www.w3.org/2000/09/xmldsig#" "#,
    r#"xmlns:osci="http://www.osci.de/2002/04/osci" "#,
    r#"xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" "#,
    r#"xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" "#,
    r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""#
);

/// `soap:actor` of header blocks addressed to the next node.
pub const ACTOR_NEXT: &str = "http://schemas.xmlsoap.org/soap/actor/next";
/// `soap:actor` of blocks for no SOAP node (certificates).
pub const ACTOR_NONE: &str = "http://www.w3.org/2001/12/soap-envelope/actor/none";

/// Content id of the envelope part.
pub const ROOT_CID: &str = "osci@message";

/// Largest inner envelope (the XML part) this crate parses: attachments
/// carry bulk content, the envelope only headers and inline content.
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024 * 1024;

/// Why a message cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// MIME framing.
    #[error("MIME: {0}")]
    Mime(#[from] MimeError),
    /// XML.
    #[error("XML: {0}")]
    Xml(#[from] C14nError),
    /// Structure against the OSCI schemas.
    #[error("{0}")]
    Structure(String),
}

impl MessageError {
    /// The OSCI feedback code (`9100`: the message is not a valid OSCI
    /// message).
    pub fn feedback_code(&self) -> &'static str {
        "9100"
    }
}

fn structure(m: impl Into<String>) -> MessageError {
    MessageError::Structure(m.into())
}

/// A parsed inner message: its MIME parts and the envelope's tree.
#[derive(Debug)]
pub struct Inner<'a> {
    /// The MIME parts (attachments are looked up by `cid:`).
    pub mime: mime::Message<'a>,
    /// The envelope.
    pub doc: Document,
}

impl<'a> Inner<'a> {
    /// Parse `bytes` (MIME headers included).
    ///
    /// # Errors
    ///
    /// Not MIME, no envelope part, not XML, no SOAP envelope.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, MessageError> {
        let mime = mime::parse(bytes)?;
        let root = mime
            .part(ROOT_CID)
            .or_else(|| mime.parts.first())
            .ok_or_else(|| structure("no envelope part"))?;
        if root.body.len() > MAX_ENVELOPE_BYTES {
            return Err(structure(format!(
                "the envelope part is larger than {MAX_ENVELOPE_BYTES} bytes"
            )));
        }
        // Every other part is an attachment, found by its Content-ID:
        // each needs one, and no two the same (a client takes the first of
        // two, a signature check the other).
        let mut ids: Vec<&str> = Vec::with_capacity(mime.parts.len());
        for part in &mime.parts {
            if std::ptr::eq(part, root) {
                continue;
            }
            let id = part
                .content_id()
                .ok_or_else(|| structure("an attachment part without Content-ID"))?;
            ids.push(id);
        }
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) || ids.contains(&ROOT_CID) {
            return Err(structure("two MIME parts with the same Content-ID"));
        }
        let doc = Document::parse(root.body)?;
        let env = doc.root();
        if env.local_name() != "Envelope" || env.namespace().as_deref() != Some(NS_SOAP) {
            return Err(structure(
                "the root element is not a SOAP 1.1 soap:Envelope",
            ));
        }
        Ok(Self { mime, doc })
    }

    /// `soap:Header`'s child elements.
    pub fn header_blocks(&self) -> Vec<ElementRef<'_>> {
        self.doc
            .root()
            .child("Header")
            .map(|h| h.children())
            .unwrap_or_default()
    }

    /// The header block with local name `local` in the OSCI namespace.
    pub fn header(&self, local: &str) -> Option<ElementRef<'_>> {
        self.header_blocks()
            .into_iter()
            .find(|b| b.local_name() == local && b.namespace().as_deref() == Some(NS_OSCI))
    }

    /// `soap:Body`.
    ///
    /// # Errors
    ///
    /// There is none.
    pub fn body(&self) -> Result<ElementRef<'_>, MessageError> {
        self.doc
            .root()
            .child("Body")
            .ok_or_else(|| structure("no soap:Body"))
    }

    /// The order (or response) block: the header block whose name is one
    /// of [`OrderKind`]'s, with its kind.
    ///
    /// # Errors
    ///
    /// None or more than one.
    pub fn order(&self) -> Result<(OrderKind, ElementRef<'_>), MessageError> {
        let mut found = None;
        for b in self.header_blocks() {
            if b.namespace().as_deref() != Some(NS_OSCI) {
                continue;
            }
            if let Some(kind) = OrderKind::from_block(b.local_name()) {
                if found.is_some() {
                    return Err(structure("more than one order block"));
                }
                found = Some((kind, b));
            }
        }
        // Fault responses and Body-only orders (initDialog, exitDialog …)
        // carry the order in the body.
        if found.is_none() {
            if let Ok(body) = self.body() {
                for b in body.children() {
                    if let Some(kind) = OrderKind::from_block(b.local_name()) {
                        found = Some((kind, b));
                        break;
                    }
                }
            }
        }
        found.ok_or_else(|| structure("no order block"))
    }

    /// A SOAP fault in the body, if the message is one.
    pub fn fault(&self) -> Option<SoapFault> {
        let f = self.body().ok()?.child("Fault")?;
        let text = |n: &str| f.child(n).map(|e| e.text()).unwrap_or_default();
        let detail = f.child("detail").map(|d| d.text()).unwrap_or_default();
        Some(SoapFault {
            code: text("faultcode"),
            string: text("faultstring"),
            detail,
        })
    }
}

/// A SOAP fault as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoapFault {
    pub code: String,
    pub string: String,
    pub detail: String,
}

/// The orders and responses this crate knows (name of the block in the
/// header, or in the body for `initDialog`/`exitDialog`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderKind {
    InitDialog,
    ExitDialog,
    GetMessageId,
    StoreDelivery,
    FetchDelivery,
    FetchProcessCard,
    ResponseToInitDialog,
    ResponseToExitDialog,
    ResponseToGetMessageId,
    ResponseToStoreDelivery,
    ResponseToFetchDelivery,
    ResponseToFetchProcessCard,
    /// Known to OSCI, not served here (Forward/Accept/Mediate/Process/
    /// Partial…): answered with an explicit error.
    Unsupported(&'static str),
}

impl OrderKind {
    /// The block's local name.
    pub fn block(self) -> &'static str {
        match self {
            Self::InitDialog => "initDialog",
            Self::ExitDialog => "exitDialog",
            Self::GetMessageId => "getMessageId",
            Self::StoreDelivery => "storeDelivery",
            Self::FetchDelivery => "fetchDelivery",
            Self::FetchProcessCard => "fetchProcessCard",
            Self::ResponseToInitDialog => "responseToInitDialog",
            Self::ResponseToExitDialog => "responseToExitDialog",
            Self::ResponseToGetMessageId => "responseToGetMessageId",
            Self::ResponseToStoreDelivery => "responseToStoreDelivery",
            Self::ResponseToFetchDelivery => "responseToFetchDelivery",
            Self::ResponseToFetchProcessCard => "responseToFetchProcessCard",
            Self::Unsupported(n) => n,
        }
    }

    fn from_block(local: &str) -> Option<Self> {
        const OTHERS: [&str; 12] = [
            "forwardDelivery",
            "acceptDelivery",
            "mediateDelivery",
            "processDelivery",
            "partialStoreDelivery",
            "partialFetchDelivery",
            "responseToForwardDelivery",
            "responseToAcceptDelivery",
            "responseToMediateDelivery",
            "responseToProcessDelivery",
            "responseToPartialStoreDelivery",
            "responseToPartialFetchDelivery",
        ];
        Some(match local {
            "initDialog" => Self::InitDialog,
            "exitDialog" => Self::ExitDialog,
            "getMessageId" => Self::GetMessageId,
            "storeDelivery" => Self::StoreDelivery,
            "fetchDelivery" => Self::FetchDelivery,
            "fetchProcessCard" => Self::FetchProcessCard,
            "responseToInitDialog" => Self::ResponseToInitDialog,
            "responseToExitDialog" => Self::ResponseToExitDialog,
            "responseToGetMessageId" => Self::ResponseToGetMessageId,
            "responseToStoreDelivery" => Self::ResponseToStoreDelivery,
            "responseToFetchDelivery" => Self::ResponseToFetchDelivery,
            "responseToFetchProcessCard" => Self::ResponseToFetchProcessCard,
            other => {
                return OTHERS
                    .iter()
                    .find(|o| **o == other)
                    .map(|o| Self::Unsupported(o))
            }
        })
    }

    /// The schema file of the envelope (for `xsi:schemaLocation`, as the
    /// reference library writes it).
    pub fn schema_file(self) -> String {
        let b = self.block();
        let mut c = b.chars();
        match c.next() {
            Some(f) => format!("soap{}{}.xsd", f.to_ascii_uppercase(), c.as_str()),
            None => "soap.xsd".into(),
        }
    }
}

/// `osci:ControlBlock`: the challenge/response chain of a dialog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlBlock {
    /// Echo of the other side's last challenge.
    pub response: Option<String>,
    /// A fresh challenge the other side must echo next.
    pub challenge: Option<String>,
    /// Dialog id (set by the Intermediär).
    pub conversation_id: Option<String>,
    /// Number of the exchange within the dialog.
    pub sequence_number: Option<u64>,
}

/// Longest challenge accepted (the reference library sends 10 random
/// bytes in base64).
pub const MAX_CHALLENGE: usize = 256;

impl ControlBlock {
    /// Read the ControlBlock of `inner`.
    ///
    /// # Errors
    ///
    /// Missing, or values out of shape.
    pub fn read(inner: &Inner<'_>) -> Result<Self, MessageError> {
        let cb = inner
            .header("ControlBlock")
            .ok_or_else(|| structure("no osci:ControlBlock"))?;
        let text = |n: &str| -> Result<Option<String>, MessageError> {
            match cb.child(n) {
                None => Ok(None),
                Some(e) => {
                    let t = e.text().trim().to_owned();
                    if t.is_empty() || t.len() > MAX_CHALLENGE {
                        return Err(structure(format!("osci:{n} is empty or too long")));
                    }
                    Ok(Some(t))
                }
            }
        };
        let number = |n: &str| -> Result<Option<u64>, MessageError> {
            match cb.attr(n) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map(Some)
                    .map_err(|_| structure(format!("{n} {v:?} is not a number"))),
            }
        };
        let conversation_id = match cb.attr("ConversationId") {
            None => None,
            Some(v) => {
                let v = v.trim();
                if v.is_empty() || v.len() > 64 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(structure(format!("ConversationId {v:?} is not a number")));
                }
                Some(v.to_owned())
            }
        };
        Ok(Self {
            response: text("Response")?,
            challenge: text("Challenge")?,
            conversation_id,
            sequence_number: number("SequenceNumber")?,
        })
    }

    /// The header block.
    pub fn render(&self) -> String {
        let mut s = format!(r#"<osci:ControlBlock {NS_DECLS}"#);
        if let Some(c) = &self.conversation_id {
            let _ = write!(s, r#" ConversationId="{}""#, escape(c));
        }
        s.push_str(r#" Id="controlblock""#);
        if let Some(n) = self.sequence_number {
            let _ = write!(s, r#" SequenceNumber="{n}""#);
        }
        let _ = write!(s, r#" soap:actor="{ACTOR_NEXT}" soap:mustUnderstand="1">"#);
        if let Some(r) = &self.response {
            let _ = write!(s, "<osci:Response>{}</osci:Response>", escape(r));
        }
        if let Some(c) = &self.challenge {
            let _ = write!(s, "<osci:Challenge>{}</osci:Challenge>", escape(c));
        }
        s.push_str("</osci:ControlBlock>");
        s
    }
}

/// A fresh challenge: 10 random bytes, base64 (as the reference library).
pub fn new_challenge() -> String {
    let mut b = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The roles a certificate can have in `osci:NonIntermediaryCertificates`
/// / `osci:IntermediaryCertificates` (element local names).
pub mod role {
    pub const CIPHER_ORIGINATOR: &str = "CipherCertificateOriginator";
    pub const CIPHER_ADDRESSEE: &str = "CipherCertificateAddressee";
    pub const CIPHER_OTHER_READER: &str = "CipherCertificateOtherReader";
    pub const CIPHER_OTHER_AUTHOR: &str = "CipherCertificateOtherAuthor";
    pub const SIGNATURE_ORIGINATOR: &str = "SignatureCertificateOriginator";
    pub const SIGNATURE_ADDRESSEE: &str = "SignatureCertificateAddressee";
    pub const SIGNATURE_OTHER_AUTHOR: &str = "SignatureCertificateOtherAuthor";
    pub const CIPHER_INTERMEDIARY: &str = "CipherCertificateIntermediary";
    pub const SIGNATURE_INTERMEDIARY: &str = "SignatureCertificateIntermediary";
}

/// One certificate of a message's certificate blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertEntry {
    /// Element local name ([`role`]).
    pub role: String,
    /// Its `Id`.
    pub id: Option<String>,
    /// DER.
    pub der: Vec<u8>,
}

/// The certificates a message carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Certificates {
    pub entries: Vec<CertEntry>,
}

/// Most certificates one message may carry.
pub const MAX_CERTIFICATES: usize = 64;

impl Certificates {
    /// Read both certificate blocks of `inner`.
    ///
    /// # Errors
    ///
    /// A certificate element without base64 DER, or too many.
    pub fn read(inner: &Inner<'_>) -> Result<Self, MessageError> {
        let mut entries = Vec::new();
        for block in ["NonIntermediaryCertificates", "IntermediaryCertificates"] {
            let Some(b) = inner.header(block) else {
                continue;
            };
            for c in b.children() {
                if entries.len() == MAX_CERTIFICATES {
                    return Err(structure("too many certificates"));
                }
                let text = c
                    .child("X509Data")
                    .and_then(|d| d.child("X509Certificate"))
                    .map(|e| e.text())
                    .ok_or_else(|| {
                        structure(format!("osci:{} without a certificate", c.local_name()))
                    })?;
                let der = b64_decode(&text)
                    .map_err(|_| structure(format!("osci:{}: not base64", c.local_name())))?;
                entries.push(CertEntry {
                    role: c.local_name().to_owned(),
                    id: c.attr("Id").map(str::to_owned),
                    der,
                });
            }
        }
        Ok(Self { entries })
    }

    /// The first certificate with `role`.
    pub fn get(&self, role: &str) -> Option<&CertEntry> {
        self.entries.iter().find(|e| e.role == role)
    }

    /// Every certificate with `role`.
    pub fn all<'s>(&'s self, role: &'s str) -> impl Iterator<Item = &'s CertEntry> + 's {
        self.entries.iter().filter(move |e| e.role == role)
    }
}

/// Base64 with line breaks and blanks ignored.
///
/// # Errors
///
/// Not base64.
pub fn b64_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean)
}

/// Base64 without line breaks.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// XML text/attribute escaping.
pub fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// `osci:Feedback` entries (code and text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub code: String,
    pub text: String,
}

impl Feedback {
    /// An entry with the standard German text of `code`.
    pub fn code(code: &str) -> Self {
        Self {
            code: code.to_owned(),
            text: feedback_text(code).to_owned(),
        }
    }

    /// An entry with the standard text plus a detail.
    pub fn with_detail(code: &str, detail: &str) -> Self {
        Self {
            code: code.to_owned(),
            text: format!("{} {}", feedback_text(code), detail),
        }
    }

    /// The `osci:Feedback` element of `entries`.
    pub fn render(entries: &[Feedback]) -> String {
        let mut s = String::from("<osci:Feedback>");
        for e in entries {
            let _ = write!(
                s,
                r#"<osci:Entry xml:lang="de"><osci:Code>{}</osci:Code><osci:Text>{}</osci:Text></osci:Entry>"#,
                escape(&e.code),
                escape(&e.text)
            );
        }
        s.push_str("</osci:Feedback>");
        s
    }

    /// The entries of a `osci:Feedback` element under `block`.
    pub fn read(block: ElementRef<'_>) -> Vec<Feedback> {
        block
            .child("Feedback")
            .map(|f| {
                f.children_named("Entry")
                    .into_iter()
                    .map(|e| Feedback {
                        code: e
                            .child("Code")
                            .map(|c| c.text().trim().to_owned())
                            .unwrap_or_default(),
                        text: e.child("Text").map(|c| c.text()).unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// An error code (`9xxx`).
    pub fn is_error(&self) -> bool {
        self.code.starts_with('9')
    }
}

/// The standard text of a feedback code (German; the texts of the OSCI 1.2
/// specification's code table, which the reference library and the
/// Intermediäre in the field send).
pub fn feedback_text(code: &str) -> &'static str {
    match code {
        "0800" => "Auftrag ausgeführt, Dialog beendet",
        "0801" => "Auftrag ausgeführt, Dialog weiterhin geöffnet",
        "3800" => "Es liegen weitere Zustellungen für diesen Client vor",
        "3801" => "Zu den im Auftrag angegebenen Kriterien liegen weitere Laufzettel vor",
        "9000" => "Interner Fehler beim Supplier",
        "9100" => "Empfangene Nachricht stellt keine gültige OSCI-Nachricht dar",
        "9200" => "Supplier verfügt nicht über den privaten Schlüssel zum Chiffrierzertifikat auf Nachrichtenebene",
        "9202" => "Auftragsdaten konnten nicht entschlüsselt werden",
        "9300" => "Auftragsdaten stellen keinen gültigen Auftrag dar",
        "9400" => "ConversationId oder SequenceNumber oder Response nicht korrekt",
        "9500" => "Chiffrierzertifikat des Clients ist nicht in den Auftragsdaten enthalten",
        "9501" => "Signatur über das Chiffrierzertifikat des Clients ist fehlerhaft",
        "9600" => "Auftrag ist nicht signiert, obwohl dieser Supplier für diesen Auftragstyp eine Signatur verlangt",
        "9601" => "Signatur über Auftrag ist fehlerhaft",
        "9602" => "Es sind nicht alle geforderten Elemente des Auftrags signiert",
        "9700" => "Signatur über das Signierzertifikat des Clients ist fehlerhaft",
        "9704" => "Signatur über das Chiffrierzertifikat eines Autors ist fehlerhaft",
        "9706" => "Signatur über das Chiffrierzertifikat des Empfängers ist fehlerhaft",
        "9708" => "Signatur über das Chiffrierzertifikat eines Lesers ist fehlerhaft",
        "9711" => "Signatur über das Signierzertifikat des Empfängers ist fehlerhaft",
        "9800" => "Annahme der Zustellung ohne MessageId verweigert",
        "9801" => "Illegale MessageId (MessageId wurde nicht von diesem Supplier erzeugt oder MessageId wurde schon einmal verwendet)",
        "9802" => "Auftrag nicht innerhalb eines expliziten Dialogs gesendet, obwohl dies für diesen Auftragstyp gefordert ist",
        "9803" => "Zu den im Auftrag angegebenen Kriterien ist keine Zustellung vorhanden",
        "9804" => "Zu den im Auftrag angegebenen Kriterien ist kein Laufzettel vorhanden",
        "9805" => "Empfänger hat Zustellung des Senders nicht angenommen",
        "9811" => "Interner Fehler des Suppliers bei der Ausführung des Auftrags",
        "9904" => "Maximale Nachrichtengröße überschritten",
        _ => "",
    }
}

/// An attachment part of a message being built.
#[derive(Debug, Clone)]
pub struct Attachment<'b> {
    /// Content id without `cid:` and angle brackets.
    pub cid: String,
    pub bytes: &'b [u8],
}

/// Writes an inner message: envelope part plus attachments, in the
/// reference library's layout.
#[derive(Debug, Clone)]
pub struct Builder<'b> {
    /// The order the envelope carries (its schema file is named in
    /// `xsi:schemaLocation`).
    pub kind: OrderKind,
    /// Header blocks, in order (each a complete element declaring
    /// [`NS_DECLS`] itself).
    pub headers: Vec<String>,
    /// What goes into `soap:Body Id="body"`.
    pub body: String,
    /// Attachment parts.
    pub attachments: Vec<Attachment<'b>>,
}

impl Builder<'_> {
    /// The envelope's text, `signature_block` (if any) inserted as the
    /// second header block (after the ControlBlock).
    pub fn envelope(&self, signature_block: Option<&str>) -> String {
        let mut s = String::with_capacity(
            4096 + self.body.len() + self.headers.iter().map(String::len).sum::<usize>(),
        );
        let _ = write!(
            s,
            r#"<?xml version="1.0" encoding="UTF-8"?>{nl}{nl}<soap:Envelope {NS_DECLS} xsi:schemaLocation="http://schemas.xmlsoap.org/soap/envelope/ {schema} http://www.w3.org/2000/09/xmldsig# oscisig.xsd http://www.w3.org/2001/04/xmlenc# oscienc.xsd"><soap:Header>"#,
            nl = "\r\n",
            schema = self.kind.schema_file()
        );
        for (i, h) in self.headers.iter().enumerate() {
            s.push_str(h);
            if i == 0 {
                if let Some(sig) = signature_block {
                    s.push_str(sig);
                }
            }
        }
        let _ = write!(
            s,
            r#"</soap:Header><soap:Body {NS_DECLS} Id="body">{}</soap:Body></soap:Envelope>"#,
            self.body
        );
        s
    }

    /// The whole message (MIME headers included) around `envelope`.
    pub fn mime(&self, envelope: &str) -> Vec<u8> {
        let boundary = boundary();
        let mut out = Vec::with_capacity(
            envelope.len()
                + 1024
                + self
                    .attachments
                    .iter()
                    .map(|a| a.bytes.len() + 256)
                    .sum::<usize>(),
        );
        let _ = write_mime_head(&mut out, &boundary);
        out.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\nContent-ID: <{ROOT_CID}>\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(envelope.as_bytes());
        for a in &self.attachments {
            out.extend_from_slice(
                format!(
                    "\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: 8-bit\r\nContent-ID: <{}>\r\nContent-Length: {}\r\n\r\n",
                    a.cid,
                    a.bytes.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(a.bytes);
        }
        out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        out
    }
}

fn write_mime_head(out: &mut Vec<u8>, boundary: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    write!(
        out,
        "MIME-Version: 1.0\r\nContent-Type: Multipart/Related; boundary={boundary}; type=text/xml\r\n\r\n"
    )
}

/// A fresh MIME boundary in the reference library's style.
pub fn boundary() -> String {
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    format!("MIME_boundary_{}", b64(&b))
}

/// The `Id` of a block's text as this crate writes it (`… Id="x" …`).
pub fn block_id(block: &str) -> Option<String> {
    let start = block.find(" Id=\"")? + 5;
    let end = block[start..].find('"')? + start;
    Some(block[start..end].to_owned())
}

/// The attachment parts of a message (every part but the envelope).
pub fn attachments<'m, 'a>(
    inner: &'m Inner<'a>,
) -> impl Iterator<Item = &'m crate::mime::Part<'a>> + 'm {
    let root = inner
        .mime
        .part(ROOT_CID)
        .or_else(|| inner.mime.parts.first());
    inner
        .mime
        .parts
        .iter()
        .filter(move |p| !root.is_some_and(|r| std::ptr::eq(*p, r)))
}

/// What a message's signature (`ClientSignature`, `SupplierSignature`:
/// `signature_block`) must cover: every other header block (each needs an
/// `Id`), the body, every attachment — as the reference library signs
/// and checks.
///
/// # Errors
///
/// A header block or the body without `Id`.
pub fn signed_parts(inner: &Inner<'_>, signature_block: &str) -> Result<Vec<String>, MessageError> {
    let mut out = Vec::new();
    for b in inner.header_blocks() {
        if b.local_name() == signature_block {
            continue;
        }
        let id = b
            .attr("Id")
            .ok_or_else(|| structure(format!("the header block {} has no Id", b.local_name())))?;
        out.push(format!("#{id}"));
    }
    let id = inner
        .body()?
        .attr("Id")
        .ok_or_else(|| structure("soap:Body has no Id"))?;
    out.push(format!("#{id}"));
    for part in attachments(inner) {
        if let Some(cid) = part.content_id() {
            out.push(format!("cid:{cid}"));
        }
    }
    Ok(out)
}

/// Sign an envelope the way OSCI signs a message (`ClientSignature`,
/// `SupplierSignature`): `marker` in `envelope` becomes a `ds:Signature`
/// (rsa-sha256, SHA-256, inclusive C14N) over the elements with the `ids`
/// and every attachment, its key named by `RetrievalMethod` to the
/// certificate element `cert_id`.
///
/// # Errors
///
/// See [`crate::dsig::sign`].
pub fn sign_envelope(
    envelope: &str,
    marker: &str,
    ids: &[String],
    attachments: &[(String, Vec<u8>)],
    key: &rsa::RsaPrivateKey,
    cert_id: &str,
) -> Result<String, crate::dsig::DsigError> {
    use crate::dsig::{self, RefTarget};
    let cids: Vec<String> = attachments
        .iter()
        .map(|(c, _)| format!("cid:{c}"))
        .collect();
    let mut targets: Vec<RefTarget<'_>> = ids.iter().map(|i| RefTarget::Id(i)).collect();
    for ((_, bytes), uri) in attachments.iter().zip(&cids) {
        targets.push(RefTarget::Cid { uri, bytes });
    }
    dsig::sign(
        envelope,
        marker,
        &targets,
        dsig::SignatureMethod::RsaSha256,
        key,
        &format!(r##"<ds:RetrievalMethod URI="#{cert_id}"></ds:RetrievalMethod>"##),
    )
}

/// A header block `osci:<local>` with the standard attributes around
/// `inner`.
pub fn header_block(local: &str, id: &str, actor: &str, inner: &str) -> String {
    format!(
        r#"<osci:{local} {NS_DECLS} Id="{id}" soap:actor="{actor}" soap:mustUnderstand="1">{inner}</osci:{local}>"#
    )
}

/// A certificate element (`osci:<role> Id=…` with `ds:X509Data`).
pub fn certificate_element(role: &str, id: &str, der: &[u8]) -> String {
    format!(
        r#"<osci:{role} Id="{id}"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></osci:{role}>"#,
        b64(der)
    )
}

/// The `Id` the reference library gives a certificate element:
/// `<prefix>_<sha256 hex of the DER>`.
pub fn certificate_id(prefix: &str, der: &[u8]) -> String {
    use sha2::Digest as _;
    format!("{prefix}_{}", hex::encode(sha2::Sha256::digest(der)))
}

/// An OSCI timestamp (`xsd:dateTime`, UTC, milliseconds).
pub fn timestamp(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_xsd_datetimes() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_764_936_000_123);
        assert_eq!(timestamp(t), "2025-12-05T12:00:00.123Z");
        assert_eq!(timestamp(std::time::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn control_block_round_trip() {
        let cb = ControlBlock {
            response: Some("abc=".into()),
            challenge: Some("xyz=".into()),
            conversation_id: Some("42".into()),
            sequence_number: Some(3),
        };
        let b = Builder {
            kind: OrderKind::ResponseToFetchDelivery,
            headers: vec![cb.render()],
            body: String::new(),
            attachments: vec![],
        };
        let bytes = b.mime(&b.envelope(None));
        let inner = Inner::parse(&bytes).unwrap();
        assert_eq!(ControlBlock::read(&inner).unwrap(), cb);
    }

    #[test]
    fn schema_files_follow_the_block_names() {
        assert_eq!(
            OrderKind::StoreDelivery.schema_file(),
            "soapStoreDelivery.xsd"
        );
        assert_eq!(
            OrderKind::ResponseToFetchProcessCard.schema_file(),
            "soapResponseToFetchProcessCard.xsd"
        );
    }
}
