//! The hub as OSCI Intermediär (channel type `osci`).
//!
//! One POST is one OSCI request. [`Intermediary::handle`] takes the HTTP
//! body and always returns a body for an HTTP 200 — OSCI clients treat
//! any other status as an I/O error, so refusals travel as OSCI feedback
//! or SOAP faults:
//!
//! 1. take off the transport layer with the Intermediär's cipher key
//!    ([`crate::xenc::decrypt_transport_for`], on a blocking thread: it
//!    is AES over the whole request);
//! 2. read the envelope, the certificates, the ControlBlock and the
//!    order; check the originator's certificates (validity, chain to the
//!    configured CAs) and its `ClientSignature`, which must cover every
//!    header block, the body and every attachment — what the Intermediär
//!    reads is what was signed;
//! 3. check the ControlBlock against the dialog ([`crate::state`]):
//!    `Response` must echo the Intermediär's last challenge,
//!    `SequenceNumber` must be the next one, only the client that opened
//!    a dialog (same signature certificate, same cipher certificate) may
//!    continue it; a replayed request fails;
//! 4. carry out the order: InitDialog/ExitDialog, GetMessageId,
//!    StoreDelivery (into a postbox, or into the hub for a hub
//!    recipient), FetchDelivery (only the postbox owner — the
//!    participant with the postbox's signature certificate — fetches;
//!    the next request of the dialog confirms reception),
//!    FetchProcessCard (originator or addressee);
//! 5. answer with the order's response, signed (`SupplierSignature`) and
//!    encrypted for the client's cipher certificate.
//!
//! Refusals before the order is carried out (decryption, structure,
//! signature, certificates, ControlBlock) are unencrypted SOAP faults with
//! the OSCI code; a StoreDelivery refused for what it delivers (message
//! id, addressee, size, content) gets a normal, encrypted
//! ResponseToStoreDelivery with the error code in its Feedback — as the
//! reference library expects 98xx codes.
//!
//! Nothing is stored half: a StoreDelivery's postbox entry, its
//! Laufzettel and the use of its message id are one state transaction; a
//! delivery for the hub goes through the hub intake (idempotent on the
//! OSCI message id) before its message id is marked used.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use drehscheibe_model::{BlobRef, Intake, SenderIdentity};
use rsa::RsaPrivateKey;
use sha2::{Digest as _, Sha256};

use crate::c14n::ElementRef;
use crate::certs::TrustStore;
use crate::message::{
    self, b64, block_id, certificate_element, certificate_id, escape, header_block, role,
    timestamp, Builder, Certificates, ControlBlock, Feedback, Inner, OrderKind, ACTOR_NEXT,
};
use crate::state::{
    unix, unix_ms, Advanced, Dialog, IntermediaryState, IssuedId, PendingReceipt, PostboxEntry,
    ProcessCard, StoreOutcome,
};
use crate::{dsig, xenc};

/// A key pair: private key and its certificate (DER).
#[derive(Clone)]
pub struct KeyPair {
    pub key: RsaPrivateKey,
    pub cert: Vec<u8>,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("cert_sha256", &sha256_hex(&self.cert))
            .finish_non_exhaustive()
    }
}

/// An addressee whose deliveries become hub messages: the hub reads them
/// with `reader`'s key.
#[derive(Debug, Clone)]
pub struct HubRecipient {
    /// Name (in correlation ids and logs).
    pub name: String,
    /// The addressee's cipher key pair (its certificate is what senders
    /// address; its key decrypts end-to-end encrypted content).
    pub reader: KeyPair,
}

/// A postbox an external participant fetches from.
#[derive(Debug, Clone)]
pub struct Postbox {
    pub name: String,
    /// The participant's cipher certificate (DER): deliveries addressed
    /// to it land here.
    pub cipher_cert: Vec<u8>,
    /// The participant's signature certificate (DER): only requests
    /// signed with it fetch from here or read its Laufzettel.
    pub signature_cert: Vec<u8>,
}

/// Settings of one `osci` channel.
#[derive(Debug, Clone)]
pub struct IntermediarySettings {
    /// Channel id (intake channel of hub deliveries).
    pub channel: String,
    /// Transport decryption.
    pub cipher: KeyPair,
    /// SupplierSignature.
    pub signature: KeyPair,
    /// CAs partner certificates must chain to (empty: validity only).
    pub trust: Arc<TrustStore>,
    /// Accept legacy algorithms (AES-CBC, 3DES, RSA-1.5, SHA-1).
    pub allow_legacy: bool,
    /// Refuse requests without a ClientSignature (default on).
    pub require_client_signature: bool,
    pub recipients: Vec<HubRecipient>,
    pub postboxes: Vec<Postbox>,
    /// Largest request body.
    pub max_message_bytes: u64,
    /// Request bodies (and deliveries being handed out) in work at once,
    /// in bytes; a request waits for its share. The Intermediär holds
    /// about three copies of each (the body, the decrypted message, the
    /// response being written): peak memory is about 3× this
    /// (`docs/benchmarks.md`, "OSCI StoreDelivery").
    pub max_in_flight_bytes: u64,
    /// Most open deliveries one postbox holds; a StoreDelivery beyond
    /// gets 9805.
    pub max_postbox_deliveries: u64,
    /// Most open dialogs and unused message ids one client holds; an
    /// InitDialog or GetMessageId beyond is refused (9000, saying which).
    pub quota: crate::state::Quota,
    /// A dialog without a request for this long is gone.
    pub dialog_timeout: Duration,
    /// Laufzettel of received deliveries are kept this long.
    pub keep_process_cards: Duration,
}

/// The Intermediär.
pub struct Intermediary {
    settings: Arc<IntermediarySettings>,
    state: IntermediaryState,
    intake: Arc<dyn Intake>,
    /// [`IntermediarySettings::max_in_flight_bytes`] in KiB permits.
    budget: Arc<tokio::sync::Semaphore>,
    budget_permits: u32,
}

/// KiB permits for `bytes` (at least one).
fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

impl std::fmt::Debug for Intermediary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intermediary")
            .field("channel", &self.settings.channel)
            .finish_non_exhaustive()
    }
}

/// SHA-256 hex (the hub's one helper for it).
pub use drehscheibe_model::sha256_hex;

/// Longest message id accepted (the reference library's are ~60 bytes).
pub const MAX_MESSAGE_ID: usize = 256;
/// Longest subject accepted.
pub const MAX_SUBJECT: usize = 1024;
/// How long a request waits for its share of the memory budget.
pub const BUDGET_WAIT: Duration = Duration::from_secs(120);
/// How long a client may take to send its whole request.
pub const BODY_DEADLINE: Duration = Duration::from_secs(600);

/// A refusal: feedback code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub detail: String,
}

fn refuse(code: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal {
        code,
        detail: detail.into(),
    }
}

/// What a handled request answers.
struct Answer {
    kind: OrderKind,
    control: ControlBlock,
    /// Response block in the header (complete element), if the response
    /// type has one.
    block: String,
    /// Further header blocks after the certificates.
    extra_headers: Vec<String>,
    /// Body content.
    body: String,
    /// Attachments (cid, bytes).
    attachments: Vec<(String, Vec<u8>)>,
}

/// What a request inside a dialog does to it ([`Intermediary::advance`]).
enum Step<'a> {
    /// The dialog goes on; with a delivery handed out, which the next
    /// request of the dialog confirms.
    Next(Option<PendingReceipt>),
    /// The dialog goes on, and this message id is issued with it
    /// (GetMessageId; refused, the dialog unchanged, at the client's
    /// quota).
    Issue(&'a str, &'a IssuedId),
    /// The dialog ends (ExitDialog).
    Close,
}

/// The request as checked.
struct Checked<'i> {
    inner: &'i Inner<'i>,
    certs: Certificates,
    control: ControlBlock,
    order: ElementRef<'i>,
    /// SHA-256 of the sender's signature certificate (`unsigned:` and
    /// that of its cipher certificate when unsigned requests are
    /// allowed).
    client: String,
    /// The sender's cipher certificate (responses are encrypted for it).
    client_cipher: Vec<u8>,
}

impl Intermediary {
    /// An Intermediär over `store` delivering hub recipients' messages to
    /// `intake`.
    ///
    /// # Errors
    ///
    /// The state space cannot be opened.
    pub fn new(
        settings: IntermediarySettings,
        intake: Arc<dyn Intake>,
        store: Arc<dyn drehscheibe_store::Store>,
    ) -> Result<Self, crate::state::StateError> {
        let state = IntermediaryState::new(store, &settings.channel)?;
        let permits = kib(settings.max_in_flight_bytes.max(settings.max_message_bytes));
        Ok(Self {
            settings: Arc::new(settings),
            state,
            intake,
            budget: Arc::new(tokio::sync::Semaphore::new(permits as usize)),
            budget_permits: permits,
        })
    }

    /// The state (tests read it).
    pub fn state(&self) -> &IntermediaryState {
        &self.state
    }

    /// Handle one request body; returns the response body (always for
    /// HTTP 200).
    pub async fn handle(&self, body: Bytes) -> Vec<u8> {
        if body.len() as u64 > self.settings.max_message_bytes {
            return plain_fault(
                "9904",
                &format!(
                    "the request is larger than {} bytes",
                    self.settings.max_message_bytes
                ),
            );
        }
        // Decryption, the certificate checks and the ClientSignature: CPU
        // in the size of the request, on the blocking pool.
        let settings = self.settings.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let bytes = xenc::decrypt_transport_for(
                &body,
                &settings.cipher.key,
                Some(&settings.cipher.cert),
                xenc::Algorithms {
                    allow_legacy: settings.allow_legacy,
                },
            )
            .map_err(|e| refuse(e.feedback_code(), e.to_string()))?;
            let signer = verify_request(&settings, &bytes)?;
            Ok::<_, Refusal>((Bytes::from(bytes), signer))
        })
        .await;
        let (inner_bytes, signer) = match checked {
            // Shared, not copied: a StoreDelivery stages these bytes.
            Ok(Ok(v)) => v,
            Ok(Err(r)) => {
                tracing::info!(code = r.code, detail = %r.detail, "osci: request refused");
                return plain_fault(r.code, &r.detail);
            }
            Err(e) => {
                tracing::error!(error = %e, "osci: request check task failed");
                return plain_fault("9000", "internal error");
            }
        };
        let inner = match Inner::parse(&inner_bytes) {
            Ok(i) => i,
            Err(e) => return plain_fault(e.feedback_code(), &e.to_string()),
        };
        let certs = match Certificates::read(&inner) {
            Ok(c) => c,
            Err(e) => return plain_fault(e.feedback_code(), &e.to_string()),
        };
        // The certificate to encrypt the answer for. Inside a dialog it is
        // the one InitDialog brought (requests in a dialog need not repeat
        // it, and may not change it).
        let control = ControlBlock::read(&inner).unwrap_or_default();
        let in_dialog = match &control.conversation_id {
            Some(id) => match self.state.dialog(id).await {
                Ok(d) => d.and_then(|d| message::b64_decode(&d.client_cipher).ok()),
                Err(e) => {
                    tracing::error!(error = %e, "osci: state");
                    return plain_fault("9000", "internal error, try again later");
                }
            },
            None => None,
        };
        let in_request = certs.get(role::CIPHER_ORIGINATOR).map(|c| c.der.clone());
        let client_cipher = match (in_request, in_dialog) {
            (Some(r), Some(d)) if !d.is_empty() && r != d => {
                return plain_fault(
                    "9400",
                    "the CipherCertificateOriginator differs from the one that opened the dialog",
                )
            }
            (Some(r), _) => r,
            (None, Some(d)) if !d.is_empty() => d,
            _ => {
                return plain_fault(
                    "9500",
                    "the request has no osci:CipherCertificateOriginator and no open dialog that knows it",
                )
            }
        };
        // (unsigned requests, where allowed, are told apart by the cipher
        // certificate they carry — public, so they share one quota)
        let client = signer
            .unwrap_or_else(|| format!("{}{}", crate::state::UNSIGNED, sha256_hex(&client_cipher)));
        let answer = match self
            .process(&inner, &inner_bytes, certs, client, client_cipher.clone())
            .await
        {
            Ok(a) => a,
            Err(r) => {
                tracing::info!(code = r.code, detail = %r.detail, "osci: request refused");
                return plain_fault(r.code, &r.detail);
            }
        };
        drop(inner);
        let me = self.settings.clone();
        match tokio::task::spawn_blocking(move || render(&me, answer, &client_cipher)).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "osci: cannot write the response");
                plain_fault("9000", "the response could not be written")
            }
            Err(e) => {
                tracing::error!(error = %e, "osci: response task failed");
                plain_fault("9000", "internal error")
            }
        }
    }

    async fn process(
        &self,
        inner: &Inner<'_>,
        inner_bytes: &Bytes,
        certs: Certificates,
        client: String,
        client_cipher: Vec<u8>,
    ) -> Result<Answer, Refusal> {
        let control = ControlBlock::read(inner).map_err(|e| refuse("9400", e.to_string()))?;
        let (kind, order) = inner.order().map_err(|e| refuse("9100", e.to_string()))?;
        if let OrderKind::Unsupported(name) = kind {
            return Err(refuse(
                "9300",
                format!("osci:{name} is not supported by this Intermediär"),
            ));
        }
        let now = SystemTime::now();
        let checked = Checked {
            inner,
            certs,
            control,
            order,
            client,
            client_cipher,
        };
        match kind {
            OrderKind::InitDialog => self.init_dialog(&checked, now).await,
            OrderKind::ExitDialog => self.exit_dialog(&checked, now).await,
            OrderKind::GetMessageId => self.get_message_id(&checked, now).await,
            OrderKind::StoreDelivery => self.store_delivery(&checked, inner_bytes, now).await,
            OrderKind::FetchDelivery => self.fetch_delivery(&checked, now).await,
            OrderKind::FetchProcessCard => self.fetch_process_card(&checked, now).await,
            _ => Err(refuse(
                "9300",
                format!("osci:{} is not an order", kind.block()),
            )),
        }
    }

    /// Check the ControlBlock of a request inside an explicit dialog
    /// (read only): the dialog and its id.
    async fn check_dialog(
        &self,
        c: &Checked<'_>,
        now: SystemTime,
    ) -> Result<(String, Dialog), Refusal> {
        let conv = c.control.conversation_id.clone().ok_or_else(|| {
            refuse(
                "9802",
                "this order needs an explicit dialog (ConversationId)",
            )
        })?;
        let dialog = self
            .state
            .dialog(&conv)
            .await
            .map_err(internal)?
            .ok_or_else(|| refuse("9400", format!("dialog {conv} is unknown or over")))?;
        if dialog.expires < unix(now) {
            return Err(refuse("9400", format!("dialog {conv} has timed out")));
        }
        if dialog.client != c.client {
            return Err(refuse("9400", "the dialog belongs to another client"));
        }
        if c.control.response.as_deref() != Some(dialog.challenge.as_str()) {
            return Err(refuse(
                "9400",
                "Response does not echo the Intermediär's last Challenge (replayed request?)",
            ));
        }
        if c.control.sequence_number != Some(dialog.next_sequence) {
            return Err(refuse(
                "9400",
                format!(
                    "SequenceNumber {:?}, expected {}",
                    c.control.sequence_number, dialog.next_sequence
                ),
            ));
        }
        if c.control.challenge.is_none() {
            return Err(refuse("9400", "no Challenge"));
        }
        // A valid next request proves the last response arrived: the
        // delivery it handed out is received.
        if let Some(p) = &dialog.pending_receipt {
            self.state
                .confirm_reception(&p.addressee, &p.message_id, now)
                .await
                .map_err(internal)?;
            tracing::info!(osci_message_id = %p.message_id, "osci: reception confirmed");
        }
        Ok((conv, dialog))
    }

    /// Move a checked dialog on by `step` (compare-and-set against
    /// `seen`, one transaction with the id a GetMessageId issues): the
    /// response's ControlBlock.
    async fn advance(
        &self,
        c: &Checked<'_>,
        now: SystemTime,
        conv: &str,
        seen: &Dialog,
        step: Step<'_>,
    ) -> Result<ControlBlock, Refusal> {
        let closing = matches!(step, Step::Close);
        let (pending, issue) = match step {
            Step::Next(pending) => (pending, None),
            Step::Issue(id, record) => (None, Some((id, record, self.settings.quota.unused_ids))),
            Step::Close => (None, None),
        };
        let next_challenge = message::new_challenge();
        let next = Dialog {
            client: seen.client.clone(),
            client_cipher: seen.client_cipher.clone(),
            challenge: next_challenge.clone(),
            next_sequence: seen.next_sequence + 1,
            expires: unix(now) + self.settings.dialog_timeout.as_secs(),
            pending_receipt: pending,
        };
        match self
            .state
            .advance_dialog(conv, seen, (!closing).then_some(&next), issue)
            .await
            .map_err(internal)?
        {
            Advanced::Moved => {}
            Advanced::Replayed => {
                return Err(refuse(
                    "9400",
                    "another request of this dialog was processed first (replay)",
                ))
            }
            Advanced::QuotaFull => return Err(self.ids_quota_refusal()),
        }
        Ok(ControlBlock {
            response: c.control.challenge.clone(),
            challenge: (!closing).then_some(next_challenge),
            conversation_id: Some(conv.to_owned()),
            sequence_number: c.control.sequence_number,
        })
    }

    /// The ControlBlock of a request outside a dialog (GetMessageId,
    /// StoreDelivery), or of one inside an explicit dialog.
    async fn single_or_dialog(
        &self,
        c: &Checked<'_>,
        now: SystemTime,
    ) -> Result<ControlBlock, Refusal> {
        if c.control.conversation_id.is_some() {
            let (conv, seen) = self.check_dialog(c, now).await?;
            return self.advance(c, now, &conv, &seen, Step::Next(None)).await;
        }
        let challenge = c
            .control
            .challenge
            .clone()
            .ok_or_else(|| refuse("9400", "no Challenge"))?;
        // `Response` may echo an earlier exchange of the same client
        // object (the reference library keeps it); outside a dialog there
        // is nothing to check it against.
        if c.control.sequence_number.unwrap_or(0) != 0 {
            return Err(refuse("9400", "SequenceNumber must be 0 outside a dialog"));
        }
        // An implicit dialog: only its number is drawn.
        let conv = self.state.next_conversation().await.map_err(internal)?;
        Ok(ControlBlock {
            response: Some(challenge),
            challenge: None,
            conversation_id: Some(conv),
            sequence_number: Some(0),
        })
    }

    async fn init_dialog(&self, c: &Checked<'_>, now: SystemTime) -> Result<Answer, Refusal> {
        let challenge = c
            .control
            .challenge
            .clone()
            .ok_or_else(|| refuse("9400", "InitDialog without Challenge"))?;
        if c.control.conversation_id.is_some() || c.control.response.is_some() {
            return Err(refuse("9400", "InitDialog inside a dialog"));
        }
        let ours = message::new_challenge();
        let dialog = Dialog {
            client: c.client.clone(),
            client_cipher: b64(&c.client_cipher),
            challenge: ours.clone(),
            next_sequence: 0,
            expires: unix(now) + self.settings.dialog_timeout.as_secs(),
            pending_receipt: None,
        };
        let conv = self
            .state
            .open_dialog(&dialog, self.settings.quota.dialogs)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                refuse(
                    "9000",
                    format!(
                        "this client has {} dialogs open, the most the Intermediär allows (max_dialogs_per_client): end one with ExitDialog, or wait for the dialog timeout (a timed-out dialog is given back within a minute)",
                        self.settings.quota.dialogs
                    ),
                )
            })?;
        tracing::debug!(conversation = %conv, "osci: dialog opened");
        Ok(Answer::in_body(
            OrderKind::ResponseToInitDialog,
            ControlBlock {
                response: Some(challenge),
                challenge: Some(ours),
                conversation_id: Some(conv),
                sequence_number: None,
            },
            "0801",
        ))
    }

    async fn exit_dialog(&self, c: &Checked<'_>, now: SystemTime) -> Result<Answer, Refusal> {
        let (conv, seen) = self.check_dialog(c, now).await?;
        let control = self.advance(c, now, &conv, &seen, Step::Close).await?;
        Ok(Answer::in_body(
            OrderKind::ResponseToExitDialog,
            control,
            "0800",
        ))
    }

    async fn get_message_id(&self, c: &Checked<'_>, now: SystemTime) -> Result<Answer, Refusal> {
        let mut raw = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut raw);
        // base64(UTF-8 id): the reference library decodes it to a string.
        let id = b64(format!("{}-{}", self.settings.channel, hex::encode(raw)).as_bytes());
        let record = IssuedId {
            client: c.client.clone(),
            issued: timestamp(now),
            issued_unix: unix(now),
            used: false,
            delivery: None,
        };
        let control = if c.control.conversation_id.is_some() {
            // Inside a dialog, the id is issued in the transaction that
            // moves the dialog on: a refusal for the quota leaves the
            // dialog where it was, so the client keeps the challenge it
            // needs for its next request.
            let (conv, seen) = self.check_dialog(c, now).await?;
            self.advance(c, now, &conv, &seen, Step::Issue(&id, &record))
                .await?
        } else {
            let control = self.single_or_dialog(c, now).await?;
            if !self
                .state
                .issue_id(&id, &record, self.settings.quota.unused_ids)
                .await
                .map_err(internal)?
            {
                return Err(self.ids_quota_refusal());
            }
            control
        };
        let feedback = if control.challenge.is_some() {
            "0801"
        } else {
            "0800"
        };
        Ok(Answer {
            kind: OrderKind::ResponseToGetMessageId,
            control,
            block: String::new(),
            extra_headers: Vec::new(),
            body: format!(
                "<osci:responseToGetMessageId>{}<osci:MessageId>{}</osci:MessageId></osci:responseToGetMessageId>",
                Feedback::render(&[Feedback::code(feedback)]),
                escape(&id)
            ),
            attachments: Vec::new(),
        })
    }

    fn ids_quota_refusal(&self) -> Refusal {
        refuse(
            "9000",
            format!(
                "this client holds {} message ids it has not used, the most the Intermediär allows (max_unused_ids_per_client): use them in StoreDelivery, or wait until unused ids expire after a day",
                self.settings.quota.unused_ids
            ),
        )
    }

    async fn store_delivery(
        &self,
        c: &Checked<'_>,
        inner_bytes: &Bytes,
        now: SystemTime,
    ) -> Result<Answer, Refusal> {
        let message_id = c
            .order
            .child("MessageId")
            .map(|e| e.text().trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| refuse("9800", "osci:storeDelivery without osci:MessageId"))?;
        if message_id.len() > MAX_MESSAGE_ID {
            return Err(refuse("9100", "the MessageId is too long"));
        }
        let subject = c.order.child("Subject").map(|e| e.text());
        if subject.as_ref().is_some_and(|s| s.len() > MAX_SUBJECT) {
            return Err(refuse("9100", "the Subject is too long"));
        }
        let addressee = c
            .certs
            .get(role::CIPHER_ADDRESSEE)
            .ok_or_else(|| refuse("9100", "no osci:CipherCertificateAddressee"))?
            .der
            .clone();
        let addressee_sha = sha256_hex(&addressee);
        let control = self.single_or_dialog(c, now).await?;
        // From here on the ControlBlock is answered: refusals of what is
        // delivered go into the response's Feedback.
        let refused = |code: &'static str, detail: String| {
            tracing::info!(code, detail = %detail, osci_message_id = %message_id, "osci: StoreDelivery refused");
            Ok(Answer {
                kind: OrderKind::ResponseToStoreDelivery,
                control: control.clone(),
                block: header_block(
                    "responseToStoreDelivery",
                    "responsetostoredelivery",
                    ACTOR_NEXT,
                    &Feedback::render(&[Feedback::with_detail(code, &format!("({detail})"))]),
                ),
                extra_headers: Vec::new(),
                body: String::new(),
                attachments: Vec::new(),
            })
        };
        let recipient = self
            .settings
            .recipients
            .iter()
            .find(|r| sha256_hex(&r.reader.cert) == addressee_sha);
        let postbox_known = self
            .settings
            .postboxes
            .iter()
            .any(|p| sha256_hex(&p.cipher_cert) == addressee_sha);
        if recipient.is_none() && !postbox_known {
            return refused(
                "9805",
                "the addressee's cipher certificate belongs to no postbox of this Intermediär"
                    .into(),
            );
        }
        // A delivery that could not be handed on is refused now, not
        // found out when the addressee fetches it.
        if let Err(e) = crate::content::check_forwardable(c.inner) {
            return refused("9100", e.to_string());
        }
        let delivery = delivery_fingerprint(c.inner, &addressee_sha);
        let card = ProcessCard {
            message_id: message_id.clone(),
            originator: c.client.clone(),
            addressee: addressee_sha.clone(),
            subject: subject.clone(),
            creation: now,
            forwarding: None,
            reception: None,
        };
        let outcome = if let Some(r) = recipient {
            // The hub is the addressee: check the id, take the delivery
            // in (idempotent on the id), then mark the id used.
            match self
                .state
                .may_deliver(&c.client, &message_id, &delivery)
                .await
                .map_err(internal)?
            {
                None => {
                    if let Err(r) = self
                        .to_hub(c, inner_bytes, r, &message_id, subject.as_deref())
                        .await
                    {
                        return refused(r.code, r.detail);
                    }
                    let done = ProcessCard {
                        forwarding: Some(now),
                        reception: Some(now),
                        ..card.clone()
                    };
                    self.state
                        .record_hub_delivery(&c.client, &done, &delivery)
                        .await
                        .map_err(internal)?
                }
                Some(o) => o,
            }
        } else {
            // Into the postbox: the message as received is the content.
            let blobs = self.intake.blobs();
            let blob: BlobRef = blobs
                .stage(
                    Box::pin(std::io::Cursor::new(inner_bytes.clone())),
                    self.settings.max_message_bytes,
                )
                .await
                .map_err(|e| refuse("9000", format!("blob store: {e}")))?;
            let entry = PostboxEntry {
                message_id: message_id.clone(),
                content: blob.clone(),
                subject: subject.clone(),
                stored: timestamp(now),
                stored_unix_ms: unix_ms(now),
            };
            let outcome = self
                .state
                .store_delivery(
                    &c.client,
                    &addressee_sha,
                    &entry,
                    &card,
                    &delivery,
                    self.settings.max_postbox_deliveries,
                )
                .await;
            let _ = if matches!(outcome, Ok(StoreOutcome::Stored)) {
                blobs.keep_staged(&blob).await
            } else {
                blobs.discard_staged(&blob).await
            };
            outcome.map_err(internal)?
        };
        match outcome {
            StoreOutcome::NotIssued => {
                return refused(
                    "9801",
                    "the MessageId was not issued to this client by this Intermediär".into(),
                )
            }
            StoreOutcome::Conflict => {
                return refused(
                    "9801",
                    "the MessageId was used before for another delivery".into(),
                )
            }
            StoreOutcome::Full => return refused("9805", "the addressee's postbox is full".into()),
            StoreOutcome::Stored | StoreOutcome::AlreadyStored => {}
        }
        let card = self
            .state
            .process_card(&message_id)
            .await
            .map_err(internal)?
            .unwrap_or(card);
        let feedback = if control.challenge.is_some() {
            "0801"
        } else {
            "0800"
        };
        Ok(Answer {
            kind: OrderKind::ResponseToStoreDelivery,
            control,
            block: header_block(
                "responseToStoreDelivery",
                "responsetostoredelivery",
                ACTOR_NEXT,
                &format!(
                    "{}{}",
                    Feedback::render(&[Feedback::code(feedback)]),
                    process_card_bundle(&card)
                ),
            ),
            extra_headers: Vec::new(),
            body: String::new(),
            attachments: Vec::new(),
        })
    }

    /// A delivery addressed to a hub recipient becomes a hub message.
    /// `inner_bytes` is the inner message `c.inner` was read from.
    async fn to_hub(
        &self,
        c: &Checked<'_>,
        inner_bytes: &Bytes,
        recipient: &HubRecipient,
        message_id: &str,
        subject: Option<&str>,
    ) -> Result<(), Refusal> {
        // Decrypting the contents and checking their signatures is CPU in
        // the size of the delivery: on the blocking pool, over a second
        // reading of the (shared) inner message.
        let (bytes, certs, reader) = (
            inner_bytes.clone(),
            c.certs.clone(),
            recipient.reader.clone(),
        );
        let allow_legacy = self.settings.allow_legacy;
        let (contents, metadata) = tokio::task::spawn_blocking(move || {
            let inner = Inner::parse(&bytes).map_err(|e| refuse("9100", e.to_string()))?;
            let contents = crate::content::read_contents(
                &inner,
                &certs,
                Some((&reader.key, reader.cert.as_slice())),
                xenc::Algorithms { allow_legacy },
                dsig::Algorithms { allow_legacy },
            )
            .map_err(|e| refuse(e.feedback_code(), e.to_string()))?;
            Ok::<_, Refusal>((contents, crate::content::xta_metadata(&inner)))
        })
        .await
        .map_err(|e| refuse("9000", format!("content task: {e}")))??;
        let (payload, content_type, attachments) =
            crate::content::payload_and_attachments(contents, message_id, subject);
        let mut correlation_ids = std::collections::BTreeMap::new();
        correlation_ids.insert("osci.message_id".to_owned(), message_id.to_owned());
        correlation_ids.insert("osci.recipient".to_owned(), recipient.name.clone());
        if let Some(s) = subject {
            correlation_ids.insert("osci.subject".to_owned(), s.to_owned());
        }
        if let Some(sig) = c.certs.get(role::SIGNATURE_ORIGINATOR) {
            if let Ok(info) = crate::certs::info(&sig.der) {
                correlation_ids.insert("osci.originator".to_owned(), info.subject);
            }
        }
        for (k, v) in metadata {
            correlation_ids.insert(k, v);
        }
        let delivery = crate::content::HubDelivery {
            channel: self.settings.channel.clone(),
            sender: SenderIdentity {
                adapter: "osci".into(),
                principal: c.client.clone(),
                remote_addr: None,
            },
            payload,
            content_type,
            attachments,
            message_id: message_id.to_owned(),
            correlation_ids,
        };
        match crate::content::submit(&*self.intake, delivery).await {
            Ok(a) => {
                tracing::info!(osci_message_id = %message_id, hub_id = %a.id, duplicate = a.duplicate, "osci: delivery accepted into the hub");
                Ok(())
            }
            Err(crate::content::SubmitError::TooLarge(m)) => Err(refuse("9904", m)),
            Err(e) => Err(refuse("9805", e.to_string())),
        }
    }

    /// The postbox `c` owns: the one of its cipher certificate, if its
    /// signature certificate is the postbox's.
    fn owned_postbox(&self, c: &Checked<'_>) -> Option<String> {
        let cipher = sha256_hex(&c.client_cipher);
        self.settings
            .postboxes
            .iter()
            .find(|p| {
                sha256_hex(&p.cipher_cert) == cipher && sha256_hex(&p.signature_cert) == c.client
            })
            .map(|_| cipher)
    }

    async fn fetch_delivery(&self, c: &Checked<'_>, now: SystemTime) -> Result<Answer, Refusal> {
        let (conv, seen) = self.check_dialog(c, now).await?;
        let selection = c.order.child("SelectionRule");
        let wanted = selection
            .and_then(|s| s.child("MessageId"))
            .map(|e| e.text().trim().to_owned());
        if wanted.as_ref().is_some_and(|w| w.len() > MAX_MESSAGE_ID) {
            return Err(refuse("9100", "the MessageId is too long"));
        }
        let after = match selection.and_then(|s| s.child("ReceptionOfDelivery")) {
            Some(e) => Some(
                chrono::DateTime::parse_from_rfc3339(e.text().trim())
                    .map_err(|_| refuse("9100", "ReceptionOfDelivery is not an xsd:dateTime"))?
                    .timestamp_millis(),
            ),
            None => None,
        };
        let echo = selection
            .and_then(|s| s.canonicalize().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        // Only the postbox owner sees anything; anyone else is told there
        // is nothing (no hint whether someone else's postbox holds mail).
        let postbox = self.owned_postbox(c);
        if postbox.is_none() {
            tracing::info!(client = %c.client, "osci: FetchDelivery by a client that owns no postbox");
        }
        let (entry, more) = match &postbox {
            None => (None, false),
            Some(pb) => match (&wanted, after) {
                (Some(id), _) => (
                    self.state.open_delivery(pb, id).await.map_err(internal)?,
                    false,
                ),
                (None, after) => {
                    let open = self
                        .state
                        .open_deliveries(pb, crate::state::MAX_SCANNED)
                        .await
                        .map_err(internal)?;
                    let mut matching = open.into_iter().filter(|e| {
                        after
                            .is_none_or(|t| i64::try_from(e.stored_unix_ms).unwrap_or(i64::MAX) > t)
                    });
                    let first = matching.next();
                    (first, matching.next().is_some())
                }
            },
        };
        let Some(entry) = entry else {
            let control = self.advance(c, now, &conv, &seen, Step::Next(None)).await?;
            return Ok(Answer {
                kind: OrderKind::ResponseToFetchDelivery,
                control,
                block: header_block(
                    "responseToFetchDelivery",
                    "responsetofetchdelivery",
                    ACTOR_NEXT,
                    &format!(
                        "{}<osci:fetchDelivery>{echo}</osci:fetchDelivery>",
                        Feedback::render(&[Feedback::code("9803")])
                    ),
                ),
                extra_headers: Vec::new(),
                body: String::new(),
                attachments: Vec::new(),
            });
        };
        // The delivery is read whole to be written into the response: it
        // takes its share of the memory budget (at most half of it, so a
        // largest delivery never waits for itself).
        let share = kib(entry.content.size).min((self.budget_permits / 2).max(1));
        let _permit =
            tokio::time::timeout(BUDGET_WAIT, self.budget.clone().acquire_many_owned(share))
                .await
                .map_err(|_| refuse("9000", "the Intermediär is busy, try again later"))?
                .map_err(|_| refuse("9000", "the Intermediär is shutting down"))?;
        let stored = crate::content::read_blob(
            &*self.intake.blobs(),
            &entry.content,
            self.settings.max_message_bytes,
        )
        .await
        .map_err(|e| refuse("9000", e))?;
        let original =
            Inner::parse(&stored).map_err(|e| refuse("9000", format!("stored delivery: {e}")))?;
        let forwarded = crate::content::forwardable(&original)
            .map_err(|e| refuse("9000", format!("stored delivery: {e}")))?;
        // Hand it out: the dialog remembers it, the next request of the
        // dialog confirms it.
        let pending = postbox.map(|pb| PendingReceipt {
            addressee: pb,
            message_id: entry.message_id.clone(),
        });
        let control = self
            .advance(c, now, &conv, &seen, Step::Next(pending))
            .await?;
        self.state
            .mark_forwarded(&entry.message_id, now)
            .await
            .map_err(internal)?;
        let card = self
            .state
            .process_card(&entry.message_id)
            .await
            .map_err(internal)?;
        let mut feedback = vec![Feedback::code("0801")];
        if more {
            feedback.push(Feedback::code("3800"));
        }
        let bundle = card.map(|k| process_card_bundle(&k)).unwrap_or_default();
        Ok(Answer {
            kind: OrderKind::ResponseToFetchDelivery,
            control,
            block: header_block(
                "responseToFetchDelivery",
                "responsetofetchdelivery",
                ACTOR_NEXT,
                &format!(
                    "{}<osci:fetchDelivery>{echo}</osci:fetchDelivery>{bundle}",
                    Feedback::render(&feedback)
                ),
            ),
            extra_headers: forwarded.headers,
            body: forwarded.body,
            attachments: forwarded.attachments,
        })
    }

    async fn fetch_process_card(
        &self,
        c: &Checked<'_>,
        now: SystemTime,
    ) -> Result<Answer, Refusal> {
        let (conv, seen) = self.check_dialog(c, now).await?;
        let selection = c.order.child("SelectionRule");
        if let Some(s) = selection {
            if s.children().iter().any(|e| e.local_name() != "MessageId") {
                return Err(refuse(
                    "9300",
                    "FetchProcessCard selects by MessageId only at this Intermediär",
                ));
            }
        }
        let wanted = selection
            .and_then(|s| s.child("MessageId"))
            .map(|e| e.text().trim().to_owned());
        let mut bundles = String::new();
        let mut found = false;
        if let Some(id) = wanted.as_ref().filter(|w| w.len() <= MAX_MESSAGE_ID) {
            if let Some(card) = self.state.process_card(id).await.map_err(internal)? {
                let addressee = self.owned_postbox(c).is_some_and(|pb| pb == card.addressee);
                if card.originator == c.client || addressee {
                    bundles.push_str(&process_card_bundle(&card));
                    found = true;
                }
            }
        }
        let control = self.advance(c, now, &conv, &seen, Step::Next(None)).await?;
        let feedback = if found {
            Feedback::code("0801")
        } else {
            Feedback::code("9804")
        };
        let echo = selection
            .and_then(|s| s.canonicalize().ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Ok(Answer {
            kind: OrderKind::ResponseToFetchProcessCard,
            control,
            block: String::new(),
            extra_headers: Vec::new(),
            body: format!(
                "<osci:responseToFetchProcessCard>{}<osci:fetchProcessCard>{echo}</osci:fetchProcessCard>{bundles}</osci:responseToFetchProcessCard>",
                Feedback::render(&[feedback])
            ),
            attachments: Vec::new(),
        })
    }
}

/// The checks of a decrypted request that cost CPU in its size (run on
/// the blocking pool): the envelope parses, no block occurs twice, every
/// certificate is valid and chains to the CAs, and the ClientSignature
/// (made with the originator's signature certificate) covers everything
/// the Intermediär reads. Returns the SHA-256 of the signature
/// certificate (`None`: unsigned, and the channel allows it).
fn verify_request(
    settings: &IntermediarySettings,
    bytes: &[u8],
) -> Result<Option<String>, Refusal> {
    let allow_legacy = settings.allow_legacy;
    let inner = match Inner::parse(bytes) {
        Ok(i) => i,
        // With legacy CBC allowed (no integrity), a plaintext that does
        // not parse gets the decryption code: two codes would be a
        // padding oracle ("How to Break XML Encryption").
        Err(_) if allow_legacy => return Err(refuse("9202", "the request could not be decrypted")),
        Err(e) => return Err(refuse(e.feedback_code(), e.to_string())),
    };
    let certs = Certificates::read(&inner).map_err(|e| refuse(e.feedback_code(), e.to_string()))?;
    check_unique_blocks(&inner)?;
    let now = SystemTime::now();
    for c in &certs.entries {
        crate::certs::check(&c.der, &[], &settings.trust, now, allow_legacy).map_err(|e| {
            refuse(
                certificate_refusal_code(&e, &c.role),
                format!("osci:{}: {e}", c.role),
            )
        })?;
    }
    let signer = certs.get(role::SIGNATURE_ORIGINATOR);
    match (inner.header("ClientSignature"), signer) {
        (Some(sig_block), Some(cert)) => {
            let sig = sig_block
                .child("Signature")
                .ok_or_else(|| refuse("9100", "osci:ClientSignature without ds:Signature"))?;
            let key = dsig::rsa_key_of_certificate(&cert.der)
                .map_err(|e| refuse(e.feedback_code(), e.to_string()))?;
            let covered = dsig::verify_with(
                &inner.doc,
                Some(&inner.mime),
                sig,
                &key,
                dsig::Algorithms { allow_legacy },
            )
            .map_err(|e| refuse(e.feedback_code(), e.to_string()))?;
            for needed in required_coverage(&inner)? {
                if !covered.contains(&needed) {
                    return Err(refuse(
                        "9602",
                        format!("the ClientSignature does not cover {needed}"),
                    ));
                }
            }
            Ok(Some(sha256_hex(&cert.der)))
        }
        (Some(_), None) => Err(refuse(
            "9600",
            "osci:ClientSignature without osci:SignatureCertificateOriginator",
        )),
        (None, _) if settings.require_client_signature => Err(refuse(
            "9600",
            "the request is not signed (osci:ClientSignature)",
        )),
        (None, _) => Ok(None),
    }
}

/// Refuse a request with two of a block the Intermediär reads once
/// (which of two would it read, which did the signature cover?).
fn check_unique_blocks(inner: &Inner<'_>) -> Result<(), Refusal> {
    let mut seen: Vec<(String, String)> = Vec::new();
    for b in inner.header_blocks() {
        let name = (b.namespace().unwrap_or_default(), b.local_name().to_owned());
        // Two QualityOfTimestamp blocks (creation, reception) are normal.
        if name.1 == "QualityOfTimestamp" {
            continue;
        }
        if seen.contains(&name) {
            return Err(refuse(
                "9100",
                format!("the header block {} occurs twice", name.1),
            ));
        }
        seen.push(name);
    }
    if inner.doc.root().children_named("Body").len() > 1
        || inner.doc.root().children_named("Header").len() > 1
    {
        return Err(refuse("9100", "two soap:Header or soap:Body elements"));
    }
    Ok(())
}

/// What a ClientSignature must cover ([`message::signed_parts`]).
fn required_coverage(inner: &Inner<'_>) -> Result<Vec<String>, Refusal> {
    message::signed_parts(inner, "ClientSignature").map_err(|e| refuse("9100", e.to_string()))
}

/// What a StoreDelivery delivers, for comparing a repeated one: the
/// addressee and the digests the (verified) ClientSignature gives the body
/// and the attachments — they do not change with the challenge or the
/// MIME boundary of a retry. Unsigned requests: the digest of the body's
/// canonical form and of each attachment.
fn delivery_fingerprint(inner: &Inner<'_>, addressee_sha: &str) -> String {
    let mut h = Sha256::new();
    h.update(addressee_sha.as_bytes());
    let body_id = inner
        .body()
        .ok()
        .and_then(|b| b.attr("Id"))
        .map(|i| format!("#{i}"));
    let mut parts: Vec<String> = inner
        .header("ClientSignature")
        .and_then(|b| b.child("Signature"))
        .and_then(|s| s.child("SignedInfo"))
        .map(|si| {
            si.children_named("Reference")
                .into_iter()
                .filter_map(|r| {
                    let uri = r.attr("URI")?;
                    let relevant = uri.starts_with("cid:") || Some(uri) == body_id.as_deref();
                    relevant.then(|| {
                        format!(
                            "{uri}={}",
                            r.child("DigestValue").map(|d| d.text()).unwrap_or_default()
                        )
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty() {
        if let Ok(b) = inner.body() {
            h.update(b.canonicalize().unwrap_or_default());
        }
        for p in message::attachments(inner) {
            h.update(Sha256::digest(p.body));
        }
    }
    parts.sort();
    for p in parts {
        h.update(b"\n");
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Sign and encrypt an answer (on a blocking thread: RSA and AES over the
/// whole response).
fn render(
    settings: &IntermediarySettings,
    a: Answer,
    client_cipher: &[u8],
) -> Result<Vec<u8>, String> {
    let sig_cert_id = certificate_id("intermediary_signature", &settings.signature.cert);
    let mut headers = vec![a.control.render()];
    let mut ids = vec!["controlblock".to_owned()];
    if !a.block.is_empty() {
        headers.push(a.block.clone());
        if let Some(id) = block_id(&a.block) {
            ids.push(id);
        }
    }
    headers.push(header_block(
        "IntermediaryCertificates",
        "intermediarycertificates",
        ACTOR_NEXT,
        &certificate_element(
            role::SIGNATURE_INTERMEDIARY,
            &sig_cert_id,
            &settings.signature.cert,
        ),
    ));
    ids.push("intermediarycertificates".to_owned());
    for h in &a.extra_headers {
        if let Some(id) = block_id(h) {
            ids.push(id);
        }
        headers.push(h.clone());
    }
    ids.push("body".to_owned());
    let builder = Builder {
        kind: a.kind_for_schema(),
        headers,
        body: a.body.clone(),
        attachments: a
            .attachments
            .iter()
            .map(|(cid, bytes)| message::Attachment {
                cid: cid.clone(),
                bytes,
            })
            .collect(),
    };
    const MARKER: &str = "<!--osci:supplier-signature-->";
    let block = header_block("SupplierSignature", "suppliersignature", ACTOR_NEXT, MARKER);
    let envelope = builder.envelope(Some(&block));
    let signed = message::sign_envelope(
        &envelope,
        MARKER,
        &ids,
        &a.attachments,
        &settings.signature.key,
        &sig_cert_id,
    )
    .map_err(|e| e.to_string())?;
    let inner = builder.mime(&signed);
    xenc::encrypt_transport(&inner, client_cipher).map_err(|e| e.to_string())
}

impl Answer {
    /// A response whose order block is in the body, with `feedback`.
    fn in_body(kind: OrderKind, control: ControlBlock, feedback: &str) -> Self {
        let block = kind.block();
        Self {
            kind,
            control,
            block: String::new(),
            extra_headers: Vec::new(),
            body: format!(
                "<osci:{block}>{}</osci:{block}>",
                Feedback::render(&[Feedback::code(feedback)])
            ),
            attachments: Vec::new(),
        }
    }

    fn kind_for_schema(&self) -> OrderKind {
        match self.kind {
            OrderKind::InitDialog => OrderKind::ResponseToInitDialog,
            OrderKind::ExitDialog => OrderKind::ResponseToExitDialog,
            OrderKind::GetMessageId => OrderKind::ResponseToGetMessageId,
            OrderKind::StoreDelivery => OrderKind::ResponseToStoreDelivery,
            OrderKind::FetchDelivery => OrderKind::ResponseToFetchDelivery,
            OrderKind::FetchProcessCard => OrderKind::ResponseToFetchProcessCard,
            k => k,
        }
    }
}

/// The code a certificate problem is refused with. The hub refuses
/// certificates outside their validity period too: the reference
/// library's codes for that are warnings (3xxx), so the role's error code
/// is sent instead.
fn certificate_refusal_code(e: &crate::certs::CertError, role: &str) -> &'static str {
    use crate::certs::CertRole;
    let Some(r) = CertRole::from_element(role) else {
        return "9700";
    };
    let code = e.feedback_code_for(r);
    if code.starts_with('9') {
        return code;
    }
    match r {
        CertRole::ClientSignature | CertRole::AuthorSignature => "9700",
        CertRole::ClientCipher => "9501",
        CertRole::AuthorCipher => "9704",
        CertRole::AddresseeSignature => "9711",
        CertRole::AddresseeCipher => "9706",
        CertRole::ReaderCipher => "9708",
    }
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    tracing::error!(error = %e, "osci: internal error");
    refuse("9000", "internal error, try again later")
}

/// An unencrypted SOAP fault message, in the shape the reference library
/// writes and reads: no header, no `xsi:schemaLocation` (that is how a
/// client tells a fault from a response), `faultcode` `soap:Server` for
/// the Intermediär's own trouble, `soap:Client` otherwise, the OSCI code
/// in `detail/osci:Code`.
pub fn plain_fault(code: &str, detail: &str) -> Vec<u8> {
    let kind = if matches!(code, "9000" | "9811") {
        "soap:Server"
    } else {
        "soap:Client"
    };
    let text = message::feedback_text(code);
    let string = if text.is_empty() {
        detail.to_owned()
    } else {
        format!("{text} ({detail})")
    };
    let envelope = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>{nl}{nl}<soap:Envelope xmlns:soap="{}" xmlns:osci="{}"><soap:Body><soap:Fault><faultcode>{kind}</faultcode><faultstring>{}</faultstring><detail><osci:Code>{}</osci:Code></detail></soap:Fault></soap:Body></soap:Envelope>"#,
        message::NS_SOAP,
        message::NS_OSCI,
        escape(&string),
        escape(code),
        nl = "\r\n"
    );
    let b = Builder {
        kind: OrderKind::Unsupported("messageFault"),
        headers: Vec::new(),
        body: String::new(),
        attachments: Vec::new(),
    };
    b.mime(&envelope)
}

/// `osci:ProcessCardBundle` of a Laufzettel.
fn process_card_bundle(card: &ProcessCard) -> String {
    let ts = |t: SystemTime| format!("<osci:Plain>{}</osci:Plain>", timestamp(t));
    let mut s = format!(
        r#"<osci:ProcessCardBundle><osci:MessageId>{}</osci:MessageId><osci:ProcessCard RecentModification="{}"><osci:Creation>{}</osci:Creation>"#,
        escape(&card.message_id),
        timestamp(card.recent_modification()),
        ts(card.creation)
    );
    if let Some(f) = card.forwarding {
        s.push_str(&format!("<osci:Forwarding>{}</osci:Forwarding>", ts(f)));
    }
    if let Some(r) = card.reception {
        s.push_str(&format!("<osci:Reception>{}</osci:Reception>", ts(r)));
    }
    if let Some(sub) = &card.subject {
        s.push_str(&format!("<osci:Subject>{}</osci:Subject>", escape(sub)));
    }
    s.push_str("</osci:ProcessCard><osci:InspectionReport></osci:InspectionReport></osci:ProcessCardBundle>");
    s
}

impl Intermediary {
    /// The HTTP route: `POST <path>` with the OSCI message as body (the
    /// reference library sends `Content-Type: text/xml` and the MIME
    /// headers inside the body). A request waits (at most
    /// [`BUDGET_WAIT`]) for its share of the memory budget, must arrive
    /// within [`BODY_DEADLINE`], and is cut off at the channel's limit
    /// while streaming.
    pub fn router(self: Arc<Self>, path: &str) -> axum::Router {
        use axum::extract::{DefaultBodyLimit, State};
        use axum::http::header;
        use axum::response::IntoResponse;
        use http_body_util::BodyExt as _;
        async fn post(
            State(me): State<Arc<Intermediary>>,
            headers: axum::http::HeaderMap,
            body: axum::body::Body,
        ) -> impl IntoResponse {
            let xml = [(header::CONTENT_TYPE, "text/xml; charset=UTF-8")];
            let limit = usize::try_from(me.settings.max_message_bytes).unwrap_or(usize::MAX);
            // This request's share of the memory budget: its declared
            // length, or the largest a request may be.
            let declared = headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(me.settings.max_message_bytes)
                .min(me.settings.max_message_bytes);
            let permit = tokio::time::timeout(
                BUDGET_WAIT,
                me.budget.clone().acquire_many_owned(kib(declared)),
            )
            .await;
            let Ok(Ok(_permit)) = permit else {
                return (
                    xml,
                    plain_fault("9000", "the Intermediär is busy, try again later"),
                );
            };
            let read = tokio::time::timeout(
                BODY_DEADLINE,
                http_body_util::Limited::new(body, limit).collect(),
            )
            .await;
            let answer = match read {
                Ok(Ok(c)) => me.handle(c.to_bytes()).await,
                Ok(Err(e))
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some() =>
                {
                    tracing::info!(limit, "osci: request larger than the limit refused");
                    plain_fault("9904", &format!("the request is larger than {limit} bytes"))
                }
                Ok(Err(e)) => {
                    tracing::info!(error = %e, "osci: request body broken off");
                    plain_fault("9100", "the request body could not be read")
                }
                Err(_) => {
                    tracing::info!("osci: request body too slow");
                    plain_fault("9100", "the request body did not arrive in time")
                }
            };
            (xml, answer)
        }
        axum::Router::new()
            .route(path, axum::routing::post(post))
            .layer(DefaultBodyLimit::disable())
            .with_state(self)
    }
}

/// The channel's housekeeping task: every minute the whole state is
/// swept, page by page ([`IntermediaryState::sweep`]).
pub struct Sweeper {
    pub channel: String,
    pub state: IntermediaryState,
    pub policy: crate::state::SweepPolicy,
    pub every: Duration,
}

/// Pages one sweep round reads at most (of 1,000 keys each).
pub const MAX_SWEEP_PAGES: usize = 1_000;

#[async_trait::async_trait]
impl drehscheibe_model::InputAdapter for Sweeper {
    fn name(&self) -> &str {
        &self.channel
    }

    async fn run(
        self: Box<Self>,
        _intake: Arc<dyn Intake>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<(), drehscheibe_model::AdapterError> {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.every) => {}
            }
            // One round: from the start to the end of both key ranges.
            let mut cursor = crate::state::SweepCursor::default();
            let mut total = crate::state::Swept::default();
            for _ in 0..MAX_SWEEP_PAGES {
                match self
                    .state
                    .sweep(SystemTime::now(), self.policy, &mut cursor, 1000)
                    .await
                {
                    Ok(s) => {
                        total.dialogs += s.dialogs;
                        total.ids += s.ids;
                        total.cards += s.cards;
                    }
                    Err(e) => {
                        tracing::warn!(channel = %self.channel, error = %e, "osci: sweep failed");
                        break;
                    }
                }
                if cursor.is_at_start() || shutdown.is_cancelled() {
                    break;
                }
            }
            if total != crate::state::Swept::default() {
                tracing::info!(channel = %self.channel, dialogs = total.dialogs, ids = total.ids, cards = total.cards, "osci: state swept");
            }
        }
    }
}

impl Intermediary {
    /// The housekeeping task of this Intermediär's state.
    pub fn sweeper(&self) -> Sweeper {
        Sweeper {
            channel: self.settings.channel.clone(),
            state: self.state.clone(),
            policy: crate::state::SweepPolicy {
                keep_process_cards: self.settings.keep_process_cards,
                keep_unused_ids: Duration::from_secs(86_400),
            },
            every: Duration::from_secs(60),
        }
    }
}
