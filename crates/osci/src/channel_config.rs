//! Configuration and plugins of the OSCI channel types:
//!
//! * `type = "osci"` ([`INTERMEDIARY_CHANNEL`]): the hub as OSCI
//!   Intermediär at `/osci/<channel id>` — postboxes for participants
//!   that fetch, and hub recipients whose deliveries become hub messages;
//! * `type = "osci-poller"` ([`crate::remote::POLLER_CHANNEL`]):
//!   fetches from an external Intermediär as an active recipient.
//!
//! Keys and certificates are PEM files (paths relative to the
//! configuration folder), read and checked when the configuration loads,
//! so `drehscheibe config check` finds a wrong key before a partner does.
//! The keys are documented in `config/README.md`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use drehscheibe_config::plugin::{
    check_id, Adapter, BuildError, ChannelContext, ChannelFactory, ChannelPlugin, Checker,
};
use drehscheibe_config::ByteSize;
use serde::Deserialize;

use crate::certs::TrustStore;
use crate::intermediary::{HubRecipient, Intermediary, IntermediarySettings, KeyPair, Postbox};

/// The `osci` (Intermediär) channel plugin.
pub const INTERMEDIARY_CHANNEL: ChannelPlugin = ChannelPlugin {
    kind: "osci",
    summary: "the hub as OSCI 1.2 Intermediär at /osci/<channel id>: postboxes and hub recipients",
    parse: parse_intermediary,
};

/// Default and largest accepted request: OSCI carries large attachments
/// (a 100 MB StoreDelivery is benchmarked), the whole request is held in
/// memory while it is decrypted.
pub const DEFAULT_MAX_MESSAGE: u64 = 150 * 1024 * 1024;
/// Default of `max_dialogs_per_client`.
pub const DEFAULT_DIALOGS_PER_CLIENT: u64 = 100;
/// Default of `max_unused_ids_per_client`.
pub const DEFAULT_UNUSED_IDS_PER_CLIENT: u64 = 10_000;
/// Hard ceiling of `max_message_bytes`.
pub const MAX_MESSAGE: u64 = 1024 * 1024 * 1024;

/// `{ key = "….pem", cert = "….pem" }` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeyPair {
    pub(crate) key: PathBuf,
    pub(crate) cert: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecipient {
    name: String,
    key: PathBuf,
    cert: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPostbox {
    name: String,
    cert: PathBuf,
    signature_cert: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntermediary {
    cipher: Option<RawKeyPair>,
    signature: Option<RawKeyPair>,
    #[serde(default)]
    ca_certs: Vec<PathBuf>,
    #[serde(default)]
    crls: Vec<PathBuf>,
    #[serde(default)]
    allow_legacy: bool,
    require_client_signature: Option<bool>,
    max_message_bytes: Option<ByteSize>,
    max_in_flight_bytes: Option<ByteSize>,
    max_postbox_deliveries: Option<u64>,
    max_dialogs_per_client: Option<u64>,
    max_unused_ids_per_client: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    dialog_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    keep_process_cards: Option<Duration>,
    #[serde(default)]
    recipients: Vec<RawRecipient>,
    #[serde(default)]
    postboxes: Vec<RawPostbox>,
}

/// Checked settings of an `osci` channel.
#[derive(Debug, Clone)]
pub struct OsciChannelConfig {
    pub cipher: KeyPair,
    pub signature: KeyPair,
    pub trust: Arc<TrustStore>,
    pub allow_legacy: bool,
    pub require_client_signature: bool,
    pub max_message_bytes: u64,
    pub max_in_flight_bytes: u64,
    pub max_postbox_deliveries: u64,
    pub quota: crate::state::Quota,
    pub dialog_timeout: Duration,
    pub keep_process_cards: Duration,
    pub recipients: Vec<HubRecipient>,
    pub postboxes: Vec<Postbox>,
}

/// Read a key pair's PEM files; errors are reported at `at`.
pub(crate) fn key_pair(
    chk: &mut Checker<'_>,
    at: &str,
    key: &Path,
    cert: &Path,
) -> Option<KeyPair> {
    let key_path = chk.pem_file(&format!("{at}.key"), key);
    let cert_path = chk.pem_file(&format!("{at}.cert"), cert);
    let cert = certificate(chk, &format!("{at}.cert"), &cert_path)?;
    let text = match std::fs::read_to_string(&key_path) {
        Ok(t) => t,
        Err(e) => {
            chk.error(
                &format!("{at}.key"),
                format!("cannot read {}: {e}", key_path.display()),
            );
            return None;
        }
    };
    let key = match crate::xenc::private_key_from_pem(&text) {
        Ok(k) => k,
        Err(e) => {
            chk.error(&format!("{at}.key"), format!("{}: {e}", key_path.display()));
            return None;
        }
    };
    // The key must belong to the certificate.
    match crate::dsig::rsa_key_of_certificate(&cert) {
        Ok(public) if public == key.to_public_key() => Some(KeyPair { key, cert }),
        Ok(_) => {
            chk.error(at, "the key does not belong to the certificate");
            None
        }
        Err(e) => {
            chk.error(
                &format!("{at}.cert"),
                format!("not an RSA certificate: {e}"),
            );
            None
        }
    }
}

/// Read one certificate (DER) from a PEM file.
pub(crate) fn certificate(chk: &mut Checker<'_>, at: &str, path: &Path) -> Option<Vec<u8>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            chk.error(at, format!("cannot read {}: {e}", path.display()));
            return None;
        }
    };
    match crate::xenc::certificate_der_from_pem(&text) {
        Ok(d) => match crate::certs::info(&d) {
            Ok(_) => Some(d),
            Err(e) => {
                chk.error(at, format!("{}: {e}", path.display()));
                None
            }
        },
        Err(e) => {
            chk.error(at, format!("{}: {e}", path.display()));
            None
        }
    }
}

/// How often CRL files are looked at again for changes (at most).
pub const CRL_REFRESH: Duration = Duration::from_secs(60);

/// Read the CA certificates (`ca_certs`) and the CRLs (`crls`) they
/// signed.
pub(crate) fn trust_store(
    chk: &mut Checker<'_>,
    paths: &[PathBuf],
    crls: &[PathBuf],
    allow_legacy: bool,
) -> TrustStore {
    let mut pem = String::new();
    for (i, p) in paths.iter().enumerate() {
        let path = chk.pem_file(&format!("ca_certs[{i}]"), p);
        match std::fs::read_to_string(&path) {
            Ok(t) => {
                pem.push_str(&t);
                pem.push('\n');
            }
            Err(e) => chk.error(
                &format!("ca_certs[{i}]"),
                format!("cannot read {}: {e}", path.display()),
            ),
        }
    }
    let crl_files: Vec<PathBuf> = crls
        .iter()
        .enumerate()
        .map(|(i, p)| chk.path(&format!("crls[{i}]"), p))
        .collect();
    if pem.is_empty() {
        if !crl_files.is_empty() {
            chk.error("crls", "CRLs need the `ca_certs` that signed them");
        }
        return TrustStore::empty();
    }
    let trust = match TrustStore::from_pem(&pem) {
        Ok(t) => t,
        Err(e) => {
            chk.error("ca_certs", e.to_string());
            return TrustStore::empty();
        }
    };
    match trust
        .clone()
        .with_crl_files(crl_files, allow_legacy, CRL_REFRESH)
    {
        Ok(t) => t,
        Err(e) => {
            chk.error("crls", e.to_string());
            trust
        }
    }
}

fn parse_intermediary(
    chk: &mut Checker<'_>,
    table: toml::Table,
) -> Option<Arc<dyn ChannelFactory>> {
    let raw: RawIntermediary = chk.deserialize(table)?;
    let cipher = match &raw.cipher {
        Some(k) => key_pair(chk, "cipher", &k.key, &k.cert),
        None => {
            chk.error("cipher", "an osci channel needs `cipher = { key, cert }` (the Intermediär's cipher key pair)");
            None
        }
    };
    let signature = match &raw.signature {
        Some(k) => key_pair(chk, "signature", &k.key, &k.cert),
        None => {
            chk.error(
                "signature",
                "an osci channel needs `signature = { key, cert }` (it signs every response)",
            );
            None
        }
    };
    if raw.ca_certs.is_empty() {
        chk.error(
            "ca_certs",
            "an osci channel needs `ca_certs`: without them any self-made certificate could deliver into a postbox",
        );
    }
    let trust = trust_store(chk, &raw.ca_certs, &raw.crls, raw.allow_legacy);
    let max_message_bytes = raw.max_message_bytes.map_or(DEFAULT_MAX_MESSAGE, |b| b.0);
    if max_message_bytes == 0 || max_message_bytes > MAX_MESSAGE {
        chk.error(
            "max_message_bytes",
            "`max_message_bytes` must be between 1 byte and 1 GiB",
        );
    }
    let max_in_flight_bytes = raw
        .max_in_flight_bytes
        .map_or(2 * max_message_bytes, |b| b.0);
    if max_in_flight_bytes < max_message_bytes {
        chk.error(
            "max_in_flight_bytes",
            "`max_in_flight_bytes` must be at least `max_message_bytes` (one largest request must fit)",
        );
    }
    let dialog_timeout = raw.dialog_timeout.unwrap_or(Duration::from_secs(600));
    if dialog_timeout.is_zero() {
        chk.error("dialog_timeout", "`dialog_timeout` must be greater than 0");
    }
    let mut recipients = Vec::new();
    for (i, r) in raw.recipients.iter().enumerate() {
        let at = format!("recipients[{i}]");
        if let Err(m) = check_id(&r.name) {
            chk.error(&format!("{at}.name"), format!("recipient name {m}"));
        }
        if let Some(reader) = key_pair(chk, &at, &r.key, &r.cert) {
            recipients.push(HubRecipient {
                name: r.name.clone(),
                reader,
            });
        }
    }
    let mut postboxes = Vec::new();
    for (i, p) in raw.postboxes.iter().enumerate() {
        let at = format!("postboxes[{i}]");
        if let Err(m) = check_id(&p.name) {
            chk.error(&format!("{at}.name"), format!("postbox name {m}"));
        }
        let path = chk.pem_file(&format!("{at}.cert"), &p.cert);
        let cipher_cert = certificate(chk, &format!("{at}.cert"), &path);
        let signature_cert = match &p.signature_cert {
            Some(sp) => {
                let path = chk.pem_file(&format!("{at}.signature_cert"), sp);
                certificate(chk, &format!("{at}.signature_cert"), &path)
            }
            None => {
                chk.error(
                    &format!("{at}.signature_cert"),
                    "a postbox needs `signature_cert`: only requests signed with it fetch from the postbox",
                );
                None
            }
        };
        if let (Some(cipher_cert), Some(signature_cert)) = (cipher_cert, signature_cert) {
            postboxes.push(Postbox {
                name: p.name.clone(),
                cipher_cert,
                signature_cert,
            });
        }
    }
    if recipients.is_empty() && postboxes.is_empty() {
        chk.error(
            "recipients",
            "an osci channel needs at least one `[[recipients]]` or `[[postboxes]]` entry",
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for cert in recipients
        .iter()
        .map(|r| &r.reader.cert)
        .chain(postboxes.iter().map(|p| &p.cipher_cert))
    {
        if !seen.insert(crate::intermediary::sha256_hex(cert)) {
            chk.error("postboxes", "one cipher certificate is listed twice (recipients and postboxes are addressed by it)");
        }
    }
    let quota = crate::state::Quota {
        dialogs: raw
            .max_dialogs_per_client
            .unwrap_or(DEFAULT_DIALOGS_PER_CLIENT),
        unused_ids: raw
            .max_unused_ids_per_client
            .unwrap_or(DEFAULT_UNUSED_IDS_PER_CLIENT),
    };
    for (k, v) in [
        ("max_dialogs_per_client", quota.dialogs),
        ("max_unused_ids_per_client", quota.unused_ids),
    ] {
        if v == 0 {
            chk.error(k, format!("`{k}` must be at least 1"));
        }
    }
    if chk.has_errors() {
        return None;
    }
    Some(Arc::new(OsciChannelConfig {
        cipher: cipher?,
        signature: signature?,
        trust: Arc::new(trust),
        allow_legacy: raw.allow_legacy,
        require_client_signature: raw.require_client_signature.unwrap_or(true),
        max_message_bytes,
        max_in_flight_bytes,
        max_postbox_deliveries: raw.max_postbox_deliveries.unwrap_or(10_000),
        quota,
        dialog_timeout,
        keep_process_cards: raw
            .keep_process_cards
            .unwrap_or(Duration::from_secs(30 * 86_400)),
        recipients,
        postboxes,
    }))
}

/// What an `osci` or `osci-poller` channel tells `/readyz` (see
/// [`drehscheibe_model::health::ChannelStatus`]): CRLs past or near their
/// `nextUpdate`, and our own certificates within 30 days of their end.
pub struct OsciChannelStatus {
    pub trust: Arc<TrustStore>,
    /// Our certificates: what they are for, and what they say (read
    /// once, at start).
    pub own: Vec<(&'static str, crate::certs::CertInfo)>,
}

impl OsciChannelStatus {
    /// The status of a channel trusting `trust` with our key pairs
    /// `cipher` and `signature`.
    pub fn new(trust: Arc<TrustStore>, cipher: &KeyPair, signature: &KeyPair) -> Self {
        Self {
            trust,
            own: [("cipher", cipher), ("signature", signature)]
                .into_iter()
                .filter_map(|(what, pair)| Some((what, crate::certs::info(&pair.cert).ok()?)))
                .collect(),
        }
    }
}

/// Our certificates are named in `/readyz` this long before they end.
pub const OWN_CERT_WARNING: Duration = Duration::from_secs(30 * 86_400);

impl drehscheibe_model::health::ChannelStatus for OsciChannelStatus {
    fn counters(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    fn attention(&self) -> Vec<String> {
        let now = std::time::SystemTime::now();
        let mut out = Vec::new();
        if let Some(crls) = self.trust.crls() {
            out.extend(crls.attention(now));
            // Look at the files again off the async threads (at most
            // every refresh interval): the next `/readyz` sees a CRL
            // replaced on an instance that checked no certificate since.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let trust = self.trust.clone();
                rt.spawn_blocking(move || trust.crls().map(crate::crl::CrlSet::current));
            }
        }
        for (what, info) in &self.own {
            if info.not_after < now + OWN_CERT_WARNING {
                out.push(format!(
                    "our {what} certificate {:?} ends on {}",
                    info.subject,
                    crate::message::timestamp(info.not_after)
                ));
            }
        }
        out
    }
}

impl ChannelFactory for OsciChannelConfig {
    fn build(&self, cx: &ChannelContext<'_>) -> Result<Adapter, BuildError> {
        let settings = IntermediarySettings {
            channel: cx.id.to_owned(),
            cipher: self.cipher.clone(),
            signature: self.signature.clone(),
            trust: self.trust.clone(),
            allow_legacy: self.allow_legacy,
            require_client_signature: self.require_client_signature,
            recipients: self.recipients.clone(),
            postboxes: self.postboxes.clone(),
            max_message_bytes: self.max_message_bytes,
            max_in_flight_bytes: self.max_in_flight_bytes,
            max_postbox_deliveries: self.max_postbox_deliveries,
            quota: self.quota,
            dialog_timeout: self.dialog_timeout,
            keep_process_cards: self.keep_process_cards,
        };
        let intermediary = Intermediary::new(settings, cx.intake.clone(), cx.store.clone())
            .map_err(BuildError::new)?;
        let sweeper = intermediary.sweeper();
        let status = OsciChannelStatus::new(self.trust.clone(), &self.cipher, &self.signature);
        Ok(Adapter {
            routes: Some(Arc::new(intermediary).router(&format!("/osci/{}", cx.id))),
            tasks: vec![Box::new(sweeper)],
            status: Some(Arc::new(status)),
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
