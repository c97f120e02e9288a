//! The hub as OSCI client of an external Intermediär: the `osci-poller`
//! channel (active recipient) and the `osci` connector (originator).
//!
//! Both share one configuration block for the far side and our keys
//! ([`RemoteConfig`]):
//!
//! ```toml
//! url = "https://intermediaer.example/osci-manager"
//! intermediary_cipher_cert = "keys/intermediary_cipher.cert.pem"
//! intermediary_signature_cert = "keys/intermediary_signature.cert.pem"   # optional
//! cipher = { key = "keys/hub_cipher.key.pem", cert = "keys/hub_cipher.cert.pem" }
//! signature = { key = "keys/hub_signature.key.pem", cert = "keys/hub_signature.cert.pem" }
//! ca_certs = ["keys/ca.pem"]        # partner certificates must chain to these
//! crls = ["keys/ca.crl"]            # optional: revocation lists those CAs signed
//! allow_legacy = false              # AES-CBC, 3DES, RSA-1.5, SHA-1 (old partners only)
//! ```
//!
//! **Poller** ([`OsciPoller`]): every `poll_interval`: InitDialog →
//! FetchDelivery until the postbox is empty (9803) or no further delivery
//! is announced (3800) → ExitDialog. Each delivery goes into the hub with
//! its OSCI message id as idempotency key *before* the next request of
//! the dialog confirms its reception to the Intermediär: a crash between
//! fetch and confirmation makes the Intermediär hand it out again, and the
//! intake recognises it — fetched twice, routed once.
//!
//! **Connector** ([`OsciConnector`]): GetMessageId, then StoreDelivery of
//! the rendered document (and the message's attachments), signed by the
//! hub as author and — with `encrypt = true` (default) — end-to-end
//! encrypted for the addressee's cipher certificate. The message id is
//! saved as the delivery's checkpoint before the StoreDelivery: a retry
//! after a crash stores under the same id, and the Intermediär answers
//! the second StoreDelivery of an id without storing it again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use drehscheibe_config::plugin::{
    Adapter, BuildContext, BuildError, ChannelContext, ChannelFactory, ChannelPlugin, Checker,
    ConnectorFactory, ConnectorPlugin,
};
use drehscheibe_model::{
    AdapterError, Connector, DeliveryError, DeliveryReceipt, DeliveryRequest, InputAdapter, Intake,
    SenderIdentity,
};
use serde::Deserialize;
use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;

use crate::channel_config::{certificate, key_pair, trust_store, RawKeyPair};
use crate::client::{Client, ClientError, ClientSettings, OutContent};

/// The `osci-poller` channel plugin.
pub const POLLER_CHANNEL: ChannelPlugin = ChannelPlugin {
    kind: "osci-poller",
    summary: "fetch deliveries from an external OSCI Intermediär as active recipient",
    parse: parse_poller,
};

/// The `osci` connector plugin.
pub const CONNECTOR: ConnectorPlugin = ConnectorPlugin {
    kind: "osci",
    summary: "deliver via an OSCI Intermediär (GetMessageId + StoreDelivery, signed, end-to-end encrypted)",
    parse: parse_connector,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoller {
    url: Option<String>,
    intermediary_cipher_cert: Option<PathBuf>,
    intermediary_signature_cert: Option<PathBuf>,
    cipher: Option<RawKeyPair>,
    signature: Option<RawKeyPair>,
    #[serde(default)]
    ca_certs: Vec<PathBuf>,
    #[serde(default)]
    crls: Vec<PathBuf>,
    tls_ca_cert: Option<PathBuf>,
    #[serde(default)]
    allow_legacy: bool,
    #[serde(default, with = "humantime_serde")]
    poll_interval: Option<Duration>,
    max_per_poll: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConnector {
    url: Option<String>,
    intermediary_cipher_cert: Option<PathBuf>,
    intermediary_signature_cert: Option<PathBuf>,
    cipher: Option<RawKeyPair>,
    signature: Option<RawKeyPair>,
    #[serde(default)]
    ca_certs: Vec<PathBuf>,
    #[serde(default)]
    crls: Vec<PathBuf>,
    tls_ca_cert: Option<PathBuf>,
    #[serde(default)]
    allow_legacy: bool,
    addressee_cert: Option<PathBuf>,
    encrypt: Option<bool>,
    subject: Option<String>,
}

/// The far side and our keys, checked.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    pub settings: ClientSettings,
}

/// The [`RemoteRaw`] of a raw poller or connector table (both have the
/// same keys for the far side).
macro_rules! remote_raw {
    ($raw:expr) => {
        RemoteRaw {
            url: $raw.url.as_ref(),
            intermediary_cipher_cert: $raw.intermediary_cipher_cert.as_ref(),
            intermediary_signature_cert: $raw.intermediary_signature_cert.as_ref(),
            cipher: $raw.cipher.as_ref(),
            signature: $raw.signature.as_ref(),
            ca_certs: &$raw.ca_certs,
            crls: &$raw.crls,
            tls_ca_cert: $raw.tls_ca_cert.as_ref(),
            allow_legacy: $raw.allow_legacy,
        }
    };
}

struct RemoteRaw<'a> {
    url: Option<&'a String>,
    intermediary_cipher_cert: Option<&'a PathBuf>,
    intermediary_signature_cert: Option<&'a PathBuf>,
    cipher: Option<&'a RawKeyPair>,
    signature: Option<&'a RawKeyPair>,
    ca_certs: &'a [PathBuf],
    crls: &'a [PathBuf],
    tls_ca_cert: Option<&'a PathBuf>,
    allow_legacy: bool,
}

fn remote(chk: &mut Checker<'_>, raw: RemoteRaw<'_>) -> Option<RemoteConfig> {
    let url = chk.service_url("url", raw.url);
    let intermediary_cipher = match raw.intermediary_cipher_cert {
        Some(p) => {
            let path = chk.pem_file("intermediary_cipher_cert", p);
            certificate(chk, "intermediary_cipher_cert", &path)
        }
        None => {
            chk.error(
                "intermediary_cipher_cert",
                "the Intermediär's cipher certificate is required (requests are encrypted for it)",
            );
            None
        }
    };
    let intermediary_signature = raw.intermediary_signature_cert.and_then(|p| {
        let path = chk.pem_file("intermediary_signature_cert", p);
        certificate(chk, "intermediary_signature_cert", &path)
    });
    let cipher = match raw.cipher {
        Some(k) => key_pair(chk, "cipher", &k.key, &k.cert),
        None => {
            chk.error(
                "cipher",
                "`cipher = { key, cert }` is required (our cipher key pair)",
            );
            None
        }
    };
    let signature = match raw.signature {
        Some(k) => key_pair(chk, "signature", &k.key, &k.cert),
        None => {
            chk.error(
                "signature",
                "`signature = { key, cert }` is required (our signature key pair)",
            );
            None
        }
    };
    let trust = trust_store(chk, raw.ca_certs, raw.crls, raw.allow_legacy);
    let tls_ca_pem = raw.tls_ca_cert.and_then(|p| {
        let path = chk.pem_file("tls_ca_cert", p);
        std::fs::read(&path).ok()
    });
    Some(RemoteConfig {
        settings: ClientSettings {
            url,
            intermediary_cipher: intermediary_cipher?,
            intermediary_signature,
            cipher: cipher?,
            signature: signature?,
            trust: Arc::new(trust),
            allow_legacy: raw.allow_legacy,
            timeout: chk.timeout(),
            tls_ca_pem,
        },
    })
}

// ------------------------------------------------------------------ poller

/// Checked settings of an `osci-poller` channel.
#[derive(Debug, Clone)]
pub struct OsciPollerConfig {
    pub remote: RemoteConfig,
    pub poll_interval: Duration,
    pub max_per_poll: u32,
}

fn parse_poller(chk: &mut Checker<'_>, table: toml::Table) -> Option<Arc<dyn ChannelFactory>> {
    let raw: RawPoller = chk.deserialize(table)?;
    let remote = remote(chk, remote_raw!(raw));
    let timeout = raw.timeout.unwrap_or(Duration::from_secs(120));
    if timeout.is_zero() {
        chk.error("timeout", "`timeout` must be greater than 0");
    }
    let poll_interval = raw.poll_interval.unwrap_or(Duration::from_secs(30));
    if poll_interval.is_zero() {
        chk.error("poll_interval", "`poll_interval` must be greater than 0");
    }
    let max_per_poll = raw.max_per_poll.unwrap_or(100);
    if max_per_poll == 0 {
        chk.error("max_per_poll", "`max_per_poll` must be at least 1");
    }
    if chk.has_errors() {
        return None;
    }
    let mut remote = remote?;
    remote.settings.timeout = timeout;
    Some(Arc::new(OsciPollerConfig {
        remote,
        poll_interval,
        max_per_poll,
    }))
}

impl ChannelFactory for OsciPollerConfig {
    fn build(&self, cx: &ChannelContext<'_>) -> Result<Adapter, BuildError> {
        let client = Client::new(self.remote.settings.clone()).map_err(BuildError::new)?;
        Ok(Adapter {
            routes: None,
            tasks: vec![Box::new(OsciPoller {
                channel: cx.id.to_owned(),
                client,
                poll_interval: self.poll_interval,
                max_per_poll: self.max_per_poll,
            })],
            status: Some(Arc::new(crate::channel_config::OsciChannelStatus::new(
                self.remote.settings.trust.clone(),
                &self.remote.settings.cipher,
                &self.remote.settings.signature,
            ))),
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The poller (see the module docs).
#[derive(Debug)]
pub struct OsciPoller {
    pub channel: String,
    pub client: Client,
    pub poll_interval: Duration,
    pub max_per_poll: u32,
}

/// Why one poll failed.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("hub intake: {0}")]
    Intake(#[from] crate::content::SubmitError),
}

impl OsciPoller {
    /// One poll: a dialog that fetches until the postbox is empty (or
    /// `max_per_poll`); returns the number of deliveries taken in.
    ///
    /// # Errors
    ///
    /// The Intermediär or the intake failed; what was taken in stays
    /// (the Intermediär hands out the unconfirmed rest again).
    pub async fn poll_once(&self, intake: &Arc<dyn Intake>) -> Result<usize, PollError> {
        let mut dialog = self.client.init_dialog().await?;
        let mut taken = 0usize;
        loop {
            let Some(fetched) = self.client.fetch_delivery(&mut dialog, None).await? else {
                break;
            };
            let more = fetched.more;
            self.take_in(intake, fetched).await?;
            taken += 1;
            if !more || taken >= self.max_per_poll as usize {
                break;
            }
        }
        // ExitDialog confirms the last delivery.
        self.client.exit_dialog(dialog).await?;
        Ok(taken)
    }

    /// Take one fetched delivery into the hub (what [`Self::poll_once`]
    /// does with each, before the dialog confirms it).
    ///
    /// # Errors
    ///
    /// The intake refused or failed.
    pub async fn take_in(
        &self,
        intake: &Arc<dyn Intake>,
        fetched: crate::client::Fetched,
    ) -> Result<(), PollError> {
        let mut correlation_ids = std::collections::BTreeMap::new();
        let (payload, content_type, rest) = match fetched.contents {
            Ok(contents) => crate::content::payload_and_attachments(
                contents,
                &fetched.message_id,
                fetched.subject.as_deref(),
            ),
            Err((code, text)) => {
                // Unreadable here (certificate, signature, decryption):
                // taken in anyway, with the reason and the message as
                // received — no rule matches the error manifest, so it is
                // visible as rejected and can be looked at; the postbox
                // moves on.
                tracing::warn!(channel = %self.channel, osci_message_id = %fetched.message_id, code = %code, error = %text, "osci-poller: delivery cannot be read; taken in as received");
                correlation_ids.insert("osci.error".to_owned(), format!("{code} {text}"));
                let manifest = format!(
                    r#"<?xml version="1.0" encoding="UTF-8"?><osci:Delivery xmlns:osci="urn:drehscheibe:osci"><osci:MessageId>{}</osci:MessageId><osci:Error code="{}">{}</osci:Error></osci:Delivery>"#,
                    crate::message::escape(&fetched.message_id),
                    crate::message::escape(&code),
                    crate::message::escape(&text)
                );
                (
                    manifest.into_bytes(),
                    "application/xml".to_owned(),
                    vec![crate::content::ContentItem {
                        name: "osci-delivery.mime".into(),
                        content_type: "multipart/related".into(),
                        bytes: fetched.raw,
                        signed: false,
                    }],
                )
            }
        };
        correlation_ids.insert("osci.message_id".to_owned(), fetched.message_id.clone());
        if let Some(s) = &fetched.subject {
            correlation_ids.insert("osci.subject".to_owned(), s.clone());
        }
        for (k, v) in fetched.metadata {
            correlation_ids.insert(k, v);
        }
        let delivery = crate::content::HubDelivery {
            channel: self.channel.clone(),
            sender: SenderIdentity {
                adapter: "osci-poller".into(),
                principal: self.channel.clone(),
                remote_addr: None,
            },
            payload,
            content_type,
            attachments: rest,
            message_id: fetched.message_id.clone(),
            correlation_ids,
        };
        match crate::content::submit(&**intake, delivery).await {
            Ok(a) => {
                tracing::info!(channel = %self.channel, osci_message_id = %fetched.message_id, hub_id = %a.id, duplicate = a.duplicate, "osci-poller: delivery taken in");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl InputAdapter for OsciPoller {
    fn name(&self) -> &str {
        &self.channel
    }

    async fn run(
        self: Box<Self>,
        intake: Arc<dyn Intake>,
        shutdown: CancellationToken,
    ) -> Result<(), AdapterError> {
        if !intake.channel_exists(&self.channel) {
            return Err(AdapterError {
                adapter: self.channel.clone(),
                reason: format!("unknown channel {:?}", self.channel),
            });
        }
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                r = self.poll_once(&intake) => match r {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(channel = %self.channel, n, "osci-poller: poll done"),
                    Err(e) => tracing::warn!(channel = %self.channel, error = %e, "osci-poller: poll failed, next poll retries"),
                },
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }
}

// --------------------------------------------------------------- connector

/// Checked settings of an `osci` connector.
#[derive(Debug, Clone)]
pub struct OsciConnectorConfig {
    pub remote: RemoteConfig,
    /// The addressee's cipher certificate (DER).
    pub addressee: Vec<u8>,
    pub encrypt: bool,
    pub subject: Option<String>,
}

fn parse_connector(chk: &mut Checker<'_>, table: toml::Table) -> Option<Arc<dyn ConnectorFactory>> {
    let raw: RawConnector = chk.deserialize(table)?;
    let remote = remote(chk, remote_raw!(raw));
    let addressee = match &raw.addressee_cert {
        Some(p) => {
            let path = chk.pem_file("addressee_cert", p);
            certificate(chk, "addressee_cert", &path)
        }
        None => {
            chk.error(
                "addressee_cert",
                "the addressee's cipher certificate is required (OSCI addresses deliveries to it)",
            );
            None
        }
    };
    if chk.has_errors() {
        return None;
    }
    Some(Arc::new(OsciConnectorConfig {
        remote: remote?,
        addressee: addressee?,
        encrypt: raw.encrypt.unwrap_or(true),
        subject: raw.subject,
    }))
}

impl ConnectorFactory for OsciConnectorConfig {
    fn build(&self, cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, BuildError> {
        let mut settings = self.remote.settings.clone();
        settings.timeout = cx.timeout;
        Ok(Arc::new(OsciConnector {
            client: Client::new(settings).map_err(BuildError::new)?,
            addressee: self.addressee.clone(),
            encrypt: self.encrypt,
            subject: self.subject.clone(),
        }))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The connector (see the module docs).
#[derive(Debug)]
pub struct OsciConnector {
    client: Client,
    addressee: Vec<u8>,
    encrypt: bool,
    subject: Option<String>,
}

/// Largest attachment the connector reads into a request.
pub const MAX_ATTACHMENT: u64 = 512 * 1024 * 1024;

fn delivery_error(e: ClientError) -> DeliveryError {
    if e.retryable() {
        DeliveryError::retryable(e.to_string())
    } else {
        DeliveryError::permanent(e.to_string())
    }
}

fn receipt(message_id: &str, card: &crate::client::ProcessCardInfo) -> DeliveryReceipt {
    DeliveryReceipt {
        detail: format!(
            "OSCI StoreDelivery {message_id} stored{}",
            card.creation
                .as_ref()
                .map(|c| format!(" at {c}"))
                .unwrap_or_default()
        ),
    }
}

impl OsciConnector {
    /// The Laufzettel of an earlier delivery under `message_id`, if the
    /// Intermediär has one for us.
    async fn stored_before(
        &self,
        message_id: &str,
    ) -> Result<Option<crate::client::ProcessCardInfo>, DeliveryError> {
        let mut d = self.client.init_dialog().await.map_err(delivery_error)?;
        let card = self
            .client
            .fetch_process_card(&mut d, message_id)
            .await
            .map_err(delivery_error)?;
        if let Err(e) = self.client.exit_dialog(d).await {
            tracing::debug!(error = %e, "osci: ExitDialog after FetchProcessCard failed");
        }
        Ok(card)
    }
}

#[async_trait]
impl Connector for OsciConnector {
    fn kind(&self) -> &'static str {
        "osci"
    }

    /// InitDialog and ExitDialog with the Intermediär (transport
    /// encryption, both signatures and the certificates checked both
    /// ways); the earlier end of our two certificates; CRLs of `crls`
    /// past or near their `nextUpdate` as notes (past it, the
    /// Intermediär's certificates are refused and the check fails too).
    async fn healthcheck(&self) -> drehscheibe_model::Health {
        let mut health = match self.client.init_dialog().await {
            Ok(d) => match self.client.exit_dialog(d).await {
                Ok(()) => drehscheibe_model::Health::up("OSCI InitDialog/ExitDialog: answered"),
                Err(e) => drehscheibe_model::Health::down(format!("OSCI ExitDialog: {e}")),
            },
            Err(e) => drehscheibe_model::Health::down(format!("OSCI InitDialog: {e}")),
        };
        health.cert_not_after = self.client.certificates_end();
        if let Some(crls) = self.client.trust().crls() {
            health.notes = crls.attention(std::time::SystemTime::now());
        }
        health
    }

    async fn deliver(
        &self,
        mut request: DeliveryRequest,
    ) -> Result<DeliveryReceipt, DeliveryError> {
        // The message id: from the checkpoint of an earlier attempt, or a
        // new one saved before it is used.
        let message_id = match request.checkpoint.value() {
            Some(id) => id.to_owned(),
            None => {
                let id = self.client.get_message_id().await.map_err(delivery_error)?;
                request.checkpoint.save(id.clone()).await?;
                id
            }
        };
        let mut contents = vec![OutContent {
            name: if request.filename.is_empty() {
                "document.xml".into()
            } else {
                request.filename.clone()
            },
            bytes: request.document.clone(),
            attachment: false,
        }];
        for a in &request.envelope.attachments {
            if a.blob.size > MAX_ATTACHMENT {
                return Err(DeliveryError::permanent(format!(
                    "attachment {} is larger than {MAX_ATTACHMENT} bytes",
                    a.name
                )));
            }
            let mut r = request
                .blobs
                .open(&a.blob)
                .await
                .map_err(|e| DeliveryError::retryable(format!("attachment {}: {e}", a.name)))?;
            let mut bytes = Vec::new();
            r.read_to_end(&mut bytes)
                .await
                .map_err(|e| DeliveryError::retryable(format!("attachment {}: {e}", a.name)))?;
            contents.push(OutContent {
                name: a.filename.clone().unwrap_or_else(|| a.name.clone()),
                bytes: bytes.into(),
                attachment: true,
            });
        }
        let subject = self.subject.clone().or_else(|| {
            request
                .envelope
                .correlation_ids
                .get("osci.subject")
                .cloned()
        });
        let resumed = request.checkpoint.value().is_some();
        let result = self
            .client
            .store_delivery(
                &message_id,
                subject.as_deref(),
                &self.addressee,
                &contents,
                self.encrypt,
            )
            .await;
        let (message_id, result) = match result {
            // A retry under a saved id that the Intermediär calls used:
            // the earlier attempt may have stored it and lost the answer.
            // Its Laufzettel tells; without one the id is spent, and a new
            // one is drawn (and saved) for this attempt.
            Err(ClientError::Refused { code, .. }) if code == "9801" && resumed => {
                if let Some(card) = self.stored_before(&message_id).await? {
                    return Ok(receipt(&message_id, &card));
                }
                let id = self.client.get_message_id().await.map_err(delivery_error)?;
                request.checkpoint.save(id.clone()).await?;
                let r = self
                    .client
                    .store_delivery(
                        &id,
                        subject.as_deref(),
                        &self.addressee,
                        &contents,
                        self.encrypt,
                    )
                    .await;
                (id, r)
            }
            other => (message_id, other),
        };
        match result {
            Ok(card) => Ok(receipt(&message_id, &card)),
            Err(e) => Err(delivery_error(e)),
        }
    }
}
