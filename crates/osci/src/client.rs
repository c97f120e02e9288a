//! An OSCI 1.2 client: the orders of an originator (GetMessageId,
//! StoreDelivery) and of an active recipient (InitDialog, FetchDelivery,
//! FetchProcessCard, ExitDialog), written the way the reference library
//! writes them (same header blocks, Ids, certificate Ids and namespace
//! declarations, so an Intermediär that accepts the library accepts us).
//!
//! Every request is signed (`ClientSignature` over all header blocks,
//! the body and the attachments) and transport-encrypted for the
//! Intermediär's cipher certificate. Every response is decrypted with
//! our cipher key, its `SupplierSignature` (when present) verified with
//! the Intermediär's signature certificate, and its ControlBlock checked:
//! `Response` must echo our challenge — a replayed or foreign response
//! is refused.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::certs::TrustStore;
use crate::content::ContentItem;
use crate::intermediary::{sha256_hex, KeyPair};
use crate::message::{
    self, b64, block_id, certificate_element, certificate_id, escape, header_block, role, Builder,
    Certificates, ControlBlock, Feedback, Inner, OrderKind, ACTOR_NEXT, ACTOR_NONE, NS_DECLS,
};
use crate::{dsig, xenc};

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// The Intermediär's URL.
    pub url: String,
    /// Its cipher certificate (requests are encrypted for it).
    pub intermediary_cipher: Vec<u8>,
    /// Its signature certificate: responses' SupplierSignature must be
    /// made with it (`None`: whatever certificate the response names,
    /// checked against `trust`).
    pub intermediary_signature: Option<Vec<u8>>,
    /// Our cipher key pair (responses are encrypted for it; as recipient,
    /// it opens end-to-end encrypted content).
    pub cipher: KeyPair,
    /// Our signature key pair.
    pub signature: KeyPair,
    /// CAs for the Intermediär's and authors' certificates.
    pub trust: Arc<TrustStore>,
    pub allow_legacy: bool,
    /// Per request.
    pub timeout: Duration,
    /// Extra CA for the HTTPS connection (PEM), if any.
    pub tls_ca_pem: Option<Vec<u8>>,
}

/// Client failure.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connection or HTTP status: worth retrying.
    #[error("OSCI transport: {0}")]
    Transport(String),
    /// The Intermediär refused the request (feedback code ≥ 9000, or a
    /// SOAP fault).
    #[error("OSCI error {code}: {text}")]
    Refused { code: String, text: String },
    /// The response is broken, forged or does not belong to the request.
    #[error("OSCI response invalid: {0}")]
    BadResponse(String),
    /// Our own side (keys, content) cannot build the request.
    #[error("OSCI request: {0}")]
    Request(String),
}

impl ClientError {
    /// Whether retrying later can help.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            // Server-side trouble and dialog/timeout problems.
            Self::Refused { code, .. } => {
                matches!(
                    code.as_str(),
                    "9000" | "9400" | "9503" | "9603" | "9710" | "9811"
                )
            }
            Self::BadResponse(_) => true,
            Self::Request(_) => false,
        }
    }
}

fn bad(m: impl Into<String>) -> ClientError {
    ClientError::BadResponse(m.into())
}

/// An open explicit dialog.
#[derive(Debug, Clone)]
pub struct Dialog {
    pub conversation_id: String,
    /// The Intermediär's last challenge (our next `Response`).
    challenge: String,
    /// Our next `SequenceNumber`.
    sequence: u64,
}

impl Dialog {
    /// The `SequenceNumber` the next request will carry.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Make the next request carry another `SequenceNumber` (to test an
    /// Intermediär's ControlBlock checks).
    pub fn set_sequence(&mut self, n: u64) {
        self.sequence = n;
    }
}

/// Content to send.
#[derive(Debug, Clone)]
pub struct OutContent {
    /// Name (attachment content id when sent as attachment).
    pub name: String,
    /// The content (a shared handle: the request is written on the
    /// blocking pool).
    pub bytes: bytes::Bytes,
    /// Send as MIME attachment (`href="cid:…"`) instead of inline
    /// base64 (ignored for encrypted containers: their content is inline,
    /// inside the encryption).
    pub attachment: bool,
}

/// A fetched delivery.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub message_id: String,
    pub subject: Option<String>,
    /// The contents, or why they cannot be read (a certificate, a
    /// signature, the decryption): OSCI code and text. Such a delivery is
    /// still taken in (visible, with the raw message) — otherwise it
    /// would block the postbox for good.
    pub contents: Result<Vec<ContentItem>, (String, String)>,
    /// The decrypted response (inner MIME message) as received.
    pub raw: Vec<u8>,
    /// Feedback said more deliveries wait (3800).
    pub more: bool,
    /// XTA meta data from custom headers.
    pub metadata: Vec<(String, String)>,
}

/// A Laufzettel as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessCardInfo {
    pub message_id: String,
    pub creation: Option<String>,
    pub forwarding: Option<String>,
    pub reception: Option<String>,
    pub subject: Option<String>,
}

/// The client.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    settings: Arc<ClientSettings>,
}

/// Largest response the client reads (a FetchDelivery carries the
/// delivery: the Intermediär's limit plus room for the envelope).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024 * 1024;

/// Attachment parts: content id and bytes.
type Attachments = Vec<(String, Vec<u8>)>;

const SIG_MARKER: &str = "<!--osci:client-signature-->";

struct Req {
    kind: OrderKind,
    control: ControlBlock,
    /// Order header block (storeDelivery, fetchDelivery), if the order
    /// lives in the header.
    order_block: Option<String>,
    /// Extra header blocks before the order (QualityOfTimestamp).
    pre_order: Vec<String>,
    /// The addressee's cipher certificate (StoreDelivery).
    addressee: Option<Vec<u8>>,
    body: String,
    attachments: Vec<(String, Vec<u8>)>,
}

impl Client {
    /// A client.
    ///
    /// # Errors
    ///
    /// The HTTP client cannot be built.
    pub fn new(settings: ClientSettings) -> Result<Self, ClientError> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(10));
        if let Some(pem) = &settings.tls_ca_pem {
            let cert = reqwest::Certificate::from_pem(pem)
                .map_err(|e| ClientError::Request(format!("TLS CA: {e}")))?;
            b = b.add_root_certificate(cert);
        }
        let http = b
            .build()
            .map_err(|e| ClientError::Request(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            settings: Arc::new(settings),
        })
    }

    fn cipher_id(&self) -> String {
        certificate_id("originator_cipher", &self.settings.cipher.cert)
    }

    fn signature_id(&self) -> String {
        certificate_id("originator_signature", &self.settings.signature.cert)
    }

    fn certificates_block(&self, addressee: Option<&[u8]>) -> String {
        let mut inner = certificate_element(
            role::CIPHER_ORIGINATOR,
            &self.cipher_id(),
            &self.settings.cipher.cert,
        );
        if let Some(a) = addressee {
            inner.push_str(&certificate_element(
                role::CIPHER_ADDRESSEE,
                &certificate_id("addressee_cipher", a),
                a,
            ));
        }
        inner.push_str(&certificate_element(
            role::SIGNATURE_ORIGINATOR,
            &self.signature_id(),
            &self.settings.signature.cert,
        ));
        header_block(
            "NonIntermediaryCertificates",
            "nonintermediarycertificates",
            ACTOR_NONE,
            &inner,
        )
    }

    /// Write, sign, encrypt and send a request; decrypt, verify and check
    /// the response. Returns the response's bytes (inner message) and its
    /// ControlBlock.
    async fn exchange(&self, req: Req) -> Result<(Vec<u8>, ControlBlock), ClientError> {
        // Signing and encryption, decryption and the checks: CPU in the
        // size of the message, on the blocking pool.
        let challenge = req.control.challenge.clone();
        let me = self.clone();
        let outer = tokio::task::spawn_blocking(move || me.write_request(req))
            .await
            .map_err(|e| ClientError::Transport(format!("request task: {e}")))??;
        let s = &self.settings;
        let resp = self
            .http
            .post(&s.url)
            .header("Content-Type", "text/xml")
            .body(outer)
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(ClientError::Transport(format!("HTTP {}", resp.status())));
        }
        let mut resp = resp;
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(bad(format!(
                    "the response is larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.read_response(&body, challenge))
            .await
            .map_err(|e| ClientError::Transport(format!("response task: {e}")))?
    }

    /// The request on the wire: written, signed, transport-encrypted.
    fn write_request(&self, req: Req) -> Result<Vec<u8>, ClientError> {
        let s = &self.settings;
        let mut headers = vec![req.control.render()];
        let mut ids = vec!["controlblock".to_owned()];
        headers.push(
            header_block("DesiredLanguages", "desiredlanguages", ACTOR_NEXT, "").replace(
                r#" Id="desiredlanguages""#,
                r#" Id="desiredlanguages" LanguagesList="de""#,
            ),
        );
        ids.push("desiredlanguages".into());
        for b in &req.pre_order {
            headers.push(b.clone());
            if let Some(id) = block_id(b) {
                ids.push(id);
            }
        }
        if let Some(b) = &req.order_block {
            headers.push(b.clone());
            if let Some(id) = block_id(b) {
                ids.push(id);
            }
        }
        headers.push(self.certificates_block(req.addressee.as_deref()));
        ids.push("nonintermediarycertificates".into());
        ids.push("body".into());
        let builder = Builder {
            kind: req.kind,
            headers,
            body: req.body.clone(),
            attachments: req
                .attachments
                .iter()
                .map(|(cid, bytes)| message::Attachment {
                    cid: cid.clone(),
                    bytes,
                })
                .collect(),
        };
        let sig_block = format!(
            r#"<osci:ClientSignature Id="clientsignature" soap:actor="{ACTOR_NEXT}" soap:mustUnderstand="1">{SIG_MARKER}</osci:ClientSignature>"#
        );
        let envelope = builder.envelope(Some(&sig_block));
        let signed = message::sign_envelope(
            &envelope,
            SIG_MARKER,
            &ids,
            &req.attachments,
            &s.signature.key,
            &self.signature_id(),
        )
        .map_err(|e| ClientError::Request(format!("signing: {e}")))?;
        let inner = builder.mime(&signed);
        xenc::encrypt_transport(&inner, &s.intermediary_cipher)
            .map_err(|e| ClientError::Request(format!("encryption: {e}")))
    }

    /// A response body: a fault, or decrypted, its ControlBlock echoing
    /// `challenge` and its SupplierSignature (if any) verified.
    fn read_response(
        &self,
        body: &[u8],
        challenge: Option<String>,
    ) -> Result<(Vec<u8>, ControlBlock), ClientError> {
        let s = &self.settings;
        // An unencrypted fault?
        if let Ok(plain) = Inner::parse(body) {
            if plain
                .doc
                .root()
                .child("Body")
                .and_then(|b| b.child("EncryptedData"))
                .is_none()
            {
                if let Some(f) = plain.fault() {
                    return Err(fault_error(&f));
                }
                return Err(bad("an unencrypted response that is not a fault"));
            }
        }
        let inner_resp = xenc::decrypt_transport_for(
            body,
            &s.cipher.key,
            Some(&s.cipher.cert),
            xenc::Algorithms {
                allow_legacy: s.allow_legacy,
            },
        )
        .map_err(|e| bad(format!("decryption: {e}")))?;
        let control = {
            let parsed = Inner::parse(&inner_resp).map_err(|e| bad(e.to_string()))?;
            if let Some(f) = parsed.fault() {
                return Err(fault_error(&f));
            }
            let control = ControlBlock::read(&parsed).map_err(|e| bad(e.to_string()))?;
            if control.response != challenge {
                return Err(bad(
                    "the response's ControlBlock does not echo our Challenge",
                ));
            }
            self.check_supplier_signature(&parsed)?;
            control
        };
        Ok((inner_resp, control))
    }

    fn check_supplier_signature(&self, parsed: &Inner<'_>) -> Result<(), ClientError> {
        let s = &self.settings;
        let Some(block) = parsed.header("SupplierSignature") else {
            return Ok(());
        };
        let sig = block
            .child("Signature")
            .ok_or_else(|| bad("SupplierSignature without ds:Signature"))?;
        let certs = Certificates::read(parsed).map_err(|e| bad(e.to_string()))?;
        let cert = certs
            .get(role::SIGNATURE_INTERMEDIARY)
            .ok_or_else(|| bad("SupplierSignature without the Intermediär's certificate"))?;
        if let Some(expected) = &s.intermediary_signature {
            if *expected != cert.der {
                return Err(bad("the response is signed with another certificate than the configured Intermediär's"));
            }
        }
        crate::certs::check(&cert.der, &[], &s.trust, SystemTime::now(), s.allow_legacy)
            .map_err(|e| bad(format!("Intermediär certificate: {e}")))?;
        let key = dsig::rsa_key_of_certificate(&cert.der).map_err(|e| bad(e.to_string()))?;
        let covered = dsig::verify_with(
            &parsed.doc,
            Some(&parsed.mime),
            sig,
            &key,
            dsig::Algorithms {
                allow_legacy: s.allow_legacy,
            },
        )
        .map_err(|e| bad(format!("SupplierSignature: {e}")))?;
        for needed in
            message::signed_parts(parsed, "SupplierSignature").map_err(|e| bad(e.to_string()))?
        {
            if !covered.contains(&needed) {
                return Err(bad(format!("SupplierSignature does not cover {needed}")));
            }
        }
        Ok(())
    }

    /// InitDialog: open an explicit dialog.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn init_dialog(&self) -> Result<Dialog, ClientError> {
        let (_, control) = self
            .exchange(Req {
                kind: OrderKind::InitDialog,
                control: ControlBlock {
                    challenge: Some(message::new_challenge()),
                    ..ControlBlock::default()
                },
                order_block: None,
                pre_order: Vec::new(),
                addressee: None,
                body: "<osci:initDialog></osci:initDialog>".into(),
                attachments: Vec::new(),
            })
            .await?;
        Ok(Dialog {
            conversation_id: control
                .conversation_id
                .ok_or_else(|| bad("InitDialog answered without ConversationId"))?,
            challenge: control
                .challenge
                .ok_or_else(|| bad("InitDialog answered without Challenge"))?,
            sequence: 0,
        })
    }

    fn dialog_control(d: &Dialog) -> ControlBlock {
        ControlBlock {
            response: Some(d.challenge.clone()),
            challenge: Some(message::new_challenge()),
            conversation_id: Some(d.conversation_id.clone()),
            sequence_number: Some(d.sequence),
        }
    }

    fn advance(d: &mut Dialog, control: &ControlBlock) -> Result<(), ClientError> {
        if control.conversation_id.as_deref() != Some(d.conversation_id.as_str()) {
            return Err(bad("the response belongs to another dialog"));
        }
        d.challenge = control
            .challenge
            .clone()
            .ok_or_else(|| bad("a dialog response without Challenge"))?;
        d.sequence += 1;
        Ok(())
    }

    /// ExitDialog (confirms the last fetched delivery).
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn exit_dialog(&self, d: Dialog) -> Result<(), ClientError> {
        let (inner, _) = self
            .exchange(Req {
                kind: OrderKind::ExitDialog,
                control: Self::dialog_control(&d),
                order_block: None,
                pre_order: Vec::new(),
                addressee: None,
                body: "<osci:exitDialog></osci:exitDialog>".into(),
                attachments: Vec::new(),
            })
            .await?;
        let parsed = Inner::parse(&inner).map_err(|e| bad(e.to_string()))?;
        let (_, feedback) = answer_of(&parsed)?;
        check_feedback(&feedback)?;
        Ok(())
    }

    /// GetMessageId (outside a dialog).
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn get_message_id(&self) -> Result<String, ClientError> {
        let single = ControlBlock {
            challenge: Some(message::new_challenge()),
            sequence_number: Some(0),
            ..ControlBlock::default()
        };
        let (inner, _) = self.exchange(Self::get_message_id_req(single)).await?;
        message_id_of(&inner)
    }

    /// GetMessageId in dialog `d` (the dialog moves on only when the
    /// Intermediär answered; a refusal leaves `d` as it was).
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn get_message_id_in(&self, d: &mut Dialog) -> Result<String, ClientError> {
        let (inner, control) = self
            .exchange(Self::get_message_id_req(Self::dialog_control(d)))
            .await?;
        let id = message_id_of(&inner)?;
        Self::advance(d, &control)?;
        Ok(id)
    }

    fn get_message_id_req(control: ControlBlock) -> Req {
        Req {
            kind: OrderKind::GetMessageId,
            control,
            order_block: None,
            pre_order: Vec::new(),
            addressee: None,
            body: "<osci:getMessageId></osci:getMessageId>".into(),
            attachments: Vec::new(),
        }
    }

    /// StoreDelivery (outside a dialog) of `contents` to the addressee
    /// with cipher certificate `addressee`; signed by us as author; with
    /// `encrypt`, the container is end-to-end encrypted for the
    /// addressee. Returns the Laufzettel.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn store_delivery(
        &self,
        message_id: &str,
        subject: Option<&str>,
        addressee: &[u8],
        contents: &[OutContent],
        encrypt: bool,
    ) -> Result<ProcessCardInfo, ClientError> {
        // Signing and end-to-end encryption of the contents: CPU in their
        // size, on the blocking pool.
        let (package, attachments) = {
            let me = self.clone();
            let (contents, to) = (contents.to_vec(), addressee.to_vec());
            tokio::task::spawn_blocking(move || me.content_package(&contents, &to, encrypt))
                .await
                .map_err(|e| ClientError::Transport(format!("content task: {e}")))??
        };
        let mut order = format!("<osci:MessageId>{}</osci:MessageId>", escape(message_id));
        if let Some(s) = subject {
            order.push_str(&format!("<osci:Subject>{}</osci:Subject>", escape(s)));
        }
        let qot = |service: &str| {
            format!(
                r#"<osci:QualityOfTimestamp {NS_DECLS} Id="qualityoftimestamp_{service}" Quality="plain" Service="{service}" soap:actor="{ACTOR_NEXT}" soap:mustUnderstand="1"></osci:QualityOfTimestamp>"#
            )
        };
        let (inner, _) = self
            .exchange(Req {
                kind: OrderKind::StoreDelivery,
                control: ControlBlock {
                    challenge: Some(message::new_challenge()),
                    sequence_number: Some(0),
                    ..ControlBlock::default()
                },
                order_block: Some(header_block(
                    "storeDelivery",
                    "storedelivery",
                    ACTOR_NEXT,
                    &order,
                )),
                pre_order: vec![qot("creation"), qot("reception")],
                addressee: Some(addressee.to_vec()),
                body: package,
                attachments,
            })
            .await?;
        let parsed = Inner::parse(&inner).map_err(|e| bad(e.to_string()))?;
        let (block, feedback) = answer_of(&parsed)?;
        check_feedback(&feedback)?;
        Ok(block
            .child("ProcessCardBundle")
            .map(read_card)
            .unwrap_or_else(|| ProcessCardInfo {
                message_id: message_id.to_owned(),
                ..ProcessCardInfo::default()
            }))
    }

    /// The `osci:ContentPackage` (and attachment parts) of `contents`.
    fn content_package(
        &self,
        contents: &[OutContent],
        addressee: &[u8],
        encrypt: bool,
    ) -> Result<(String, Attachments), ClientError> {
        let mut inner = String::new();
        let mut attachments = Vec::new();
        let mut targets_ids = Vec::new();
        let mut cid_targets: Vec<(String, usize)> = Vec::new();
        for (i, c) in contents.iter().enumerate() {
            let id = format!("content{i}");
            if c.attachment && !encrypt {
                let cid = sanitize_cid(&c.name, i);
                inner.push_str(&format!(
                    r#"<osci:Content Id="{id}" href="cid:{cid}"></osci:Content>"#
                ));
                cid_targets.push((format!("cid:{cid}"), attachments.len()));
                attachments.push((cid, c.bytes.to_vec()));
            } else {
                inner.push_str(&format!(
                    r#"<osci:Content><osci:Base64Content Id="{id}">{}</osci:Base64Content></osci:Content>"#,
                    b64(&c.bytes)
                ));
                targets_ids.push(id);
            }
        }
        const MARKER: &str = "<!--osci:content-signature-->";
        let container = format!(
            r#"<osci:ContentContainer {NS_DECLS} Id="contentcontainer0">{MARKER}{inner}</osci:ContentContainer>"#
        );
        let wrapper =
            format!(r#"<osci:ContentPackage {NS_DECLS}>{container}</osci:ContentPackage>"#);
        let mut targets: Vec<dsig::RefTarget<'_>> = targets_ids
            .iter()
            .map(|i| dsig::RefTarget::Base64Id(i))
            .collect();
        for (uri, idx) in &cid_targets {
            if let Some((_, bytes)) = attachments.get(*idx) {
                targets.push(dsig::RefTarget::Cid { uri, bytes });
            }
        }
        let signed = dsig::sign(
            &wrapper,
            MARKER,
            &targets,
            dsig::SignatureMethod::RsaSha256,
            &self.settings.signature.key,
            &format!(
                r##"<ds:RetrievalMethod URI="#{}"></ds:RetrievalMethod>"##,
                self.signature_id()
            ),
        )
        .map_err(|e| ClientError::Request(format!("content signature: {e}")))?;
        let container = signed
            .strip_prefix(&format!(r#"<osci:ContentPackage {NS_DECLS}>"#))
            .and_then(|s| s.strip_suffix("</osci:ContentPackage>"))
            .ok_or_else(|| ClientError::Request("content signature changed the package".into()))?
            .to_owned();
        let package = if encrypt {
            let enc = xenc::encrypt_element(
                container.as_bytes(),
                "encdata_0",
                &[xenc::Reader {
                    cert_der: addressee,
                    retrieval_id: Some(&certificate_id("addressee_cipher", addressee)),
                }],
            )
            .map_err(|e| ClientError::Request(format!("content encryption: {e}")))?;
            format!("<osci:ContentPackage>{enc}</osci:ContentPackage>")
        } else {
            format!("<osci:ContentPackage>{container}</osci:ContentPackage>")
        };
        Ok((package, attachments))
    }

    /// FetchDelivery in dialog `d`: the oldest delivery (or the one with
    /// `message_id`); `None` when the postbox is empty (9803).
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn fetch_delivery(
        &self,
        d: &mut Dialog,
        message_id: Option<&str>,
    ) -> Result<Option<Fetched>, ClientError> {
        let selection = message_id
            .map(|m| {
                format!(
                    "<osci:SelectionRule><osci:MessageId>{}</osci:MessageId></osci:SelectionRule>",
                    escape(m)
                )
            })
            .unwrap_or_default();
        let (inner, control) = self
            .exchange(Req {
                kind: OrderKind::FetchDelivery,
                control: Self::dialog_control(d),
                order_block: Some(header_block(
                    "fetchDelivery",
                    "fetchdelivery",
                    ACTOR_NEXT,
                    &selection,
                )),
                pre_order: Vec::new(),
                addressee: None,
                body: String::new(),
                attachments: Vec::new(),
            })
            .await?;
        Self::advance(d, &control)?;
        // Reading the delivery decrypts and verifies its contents: CPU in
        // the size of the message, on the blocking pool.
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.read_fetched(inner))
            .await
            .map_err(|e| ClientError::Transport(format!("fetch task: {e}")))?
    }

    /// What a ResponseToFetchDelivery holds (its inner message `inner`):
    /// none on 9803, else the delivery with its contents read — or why
    /// they cannot be read.
    fn read_fetched(&self, inner: Vec<u8>) -> Result<Option<Fetched>, ClientError> {
        let parsed = Inner::parse(&inner).map_err(|e| bad(e.to_string()))?;
        let (block, feedback) = answer_of(&parsed)?;
        if feedback.iter().any(|f| f.code == "9803") {
            return Ok(None);
        }
        check_feedback(&feedback)?;
        let more = feedback.iter().any(|f| f.code == "3800");
        let bundle = block
            .child("ProcessCardBundle")
            .ok_or_else(|| bad("ResponseToFetchDelivery without ProcessCardBundle"))?;
        let card = read_card(bundle);
        let s = &self.settings;
        let contents = (|| {
            let certs =
                Certificates::read(&parsed).map_err(|e| ("9100".to_owned(), e.to_string()))?;
            for c in &certs.entries {
                crate::certs::check(&c.der, &[], &s.trust, SystemTime::now(), s.allow_legacy)
                    .map_err(|e| {
                        (
                            e.feedback_code().to_owned(),
                            format!("osci:{}: {e}", c.role),
                        )
                    })?;
            }
            crate::content::read_contents(
                &parsed,
                &certs,
                Some((&s.cipher.key, s.cipher.cert.as_slice())),
                xenc::Algorithms {
                    allow_legacy: s.allow_legacy,
                },
                dsig::Algorithms {
                    allow_legacy: s.allow_legacy,
                },
            )
            .map_err(|e| (e.feedback_code().to_owned(), e.to_string()))
        })();
        let metadata = crate::content::xta_metadata(&parsed);
        drop(parsed);
        Ok(Some(Fetched {
            message_id: card.message_id.clone(),
            subject: card.subject.clone(),
            contents,
            raw: inner,
            more,
            metadata,
        }))
    }

    /// FetchProcessCard in dialog `d` for `message_id`.
    ///
    /// # Errors
    ///
    /// See [`ClientError`].
    pub async fn fetch_process_card(
        &self,
        d: &mut Dialog,
        message_id: &str,
    ) -> Result<Option<ProcessCardInfo>, ClientError> {
        let (inner, control) = self
            .exchange(Req {
                kind: OrderKind::FetchProcessCard,
                control: Self::dialog_control(d),
                order_block: None,
                pre_order: Vec::new(),
                addressee: None,
                body: format!(
                    "<osci:fetchProcessCard><osci:SelectionRule><osci:MessageId>{}</osci:MessageId></osci:SelectionRule></osci:fetchProcessCard>",
                    escape(message_id)
                ),
                attachments: Vec::new(),
            })
            .await?;
        Self::advance(d, &control)?;
        let parsed = Inner::parse(&inner).map_err(|e| bad(e.to_string()))?;
        let (block, feedback) = answer_of(&parsed)?;
        if feedback.iter().any(|f| f.code == "9804") {
            return Ok(None);
        }
        check_feedback(&feedback)?;
        Ok(block.child("ProcessCardBundle").map(read_card))
    }

    /// The CAs (and CRLs) the Intermediär's and authors' certificates are
    /// checked against.
    pub fn trust(&self) -> &TrustStore {
        &self.settings.trust
    }

    /// When the first of our two certificates ends.
    pub fn certificates_end(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        [&self.settings.cipher.cert, &self.settings.signature.cert]
            .into_iter()
            .filter_map(|c| crate::certs::info(c).ok())
            .map(|i| chrono::DateTime::<chrono::Utc>::from(i.not_after))
            .min()
    }

    /// The fingerprint of our cipher certificate (our postbox at an
    /// Intermediär).
    pub fn postbox(&self) -> String {
        sha256_hex(&self.settings.cipher.cert)
    }
}

fn sanitize_cid(name: &str, i: usize) -> String {
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(100)
        .collect();
    if clean.is_empty() {
        format!("attachment{i}")
    } else {
        format!("{i}.{clean}")
    }
}

fn fault_error(f: &message::SoapFault) -> ClientError {
    let code = f
        .detail
        .chars()
        .filter(char::is_ascii_digit)
        .take(4)
        .collect::<String>();
    ClientError::Refused {
        code: if code.len() == 4 { code } else { "9000".into() },
        text: format!("{}: {}", f.string, f.detail),
    }
}

/// The message id of a ResponseToGetMessageId (its inner message).
fn message_id_of(inner: &[u8]) -> Result<String, ClientError> {
    let parsed = Inner::parse(inner).map_err(|e| bad(e.to_string()))?;
    let (block, feedback) = answer_of(&parsed)?;
    check_feedback(&feedback)?;
    block
        .child("MessageId")
        .map(|e| e.text().trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("ResponseToGetMessageId without MessageId"))
}

fn check_feedback(entries: &[Feedback]) -> Result<(), ClientError> {
    if let Some(e) = entries.iter().find(|e| e.is_error()) {
        return Err(ClientError::Refused {
            code: e.code.clone(),
            text: e.text.clone(),
        });
    }
    for w in entries.iter().filter(|e| e.code.starts_with('3')) {
        tracing::info!(code = %w.code, text = %w.text, "osci: warning from the Intermediär");
    }
    Ok(())
}

/// The response's order block and its Feedback.
fn answer_of<'i>(
    parsed: &'i Inner<'i>,
) -> Result<(crate::c14n::ElementRef<'i>, Vec<Feedback>), ClientError> {
    let (_, block) = parsed.order().map_err(|e| bad(e.to_string()))?;
    let feedback = Feedback::read(block);
    Ok((block, feedback))
}

fn read_card(bundle: crate::c14n::ElementRef<'_>) -> ProcessCardInfo {
    let text = |e: Option<crate::c14n::ElementRef<'_>>| e.map(|e| e.text().trim().to_owned());
    let card = bundle.child("ProcessCard");
    let ts = |n: &str| text(card.and_then(|c| c.child(n)).and_then(|t| t.child("Plain")));
    ProcessCardInfo {
        message_id: text(bundle.child("MessageId")).unwrap_or_default(),
        creation: ts("Creation"),
        forwarding: ts("Forwarding"),
        reception: ts("Reception"),
        subject: text(card.and_then(|c| c.child("Subject"))),
    }
}
