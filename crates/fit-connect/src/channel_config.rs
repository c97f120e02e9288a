//! Configuration and plugins of the two FIT-Connect channel types:
//!
//! * `type = "fit-connect"` ([`INTAKE_CHANNEL`]): the hub as a
//!   Zustelldienst-compatible intake ([`crate::intake`]) — contributes the
//!   Submission API routes under `base_path` and the task that follows
//!   open cases;
//! * `type = "fit-connect-subscriber"` ([`SUBSCRIBER_CHANNEL`]): fetches
//!   submissions for the hub's own destinations from a remote
//!   Zustelldienst ([`crate::subscriber`]) — contributes its callback
//!   route (with a callback secret) and the polling task.
//!
//! The keys are documented in `config/README.md`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use drehscheibe_config::plugin::{
    is_uuid, Adapter, BuildError, ChannelContext, ChannelFactory, ChannelPlugin, Checker, SecretRef,
};
use drehscheibe_config::{ByteSize, Secret};
use drehscheibe_model::{AdapterError, InputAdapter, Intake};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::intake::{
    FitConnectIntake, FitConnectIntakeSettings, IntakeClient, IntakeDestination, IntakeService,
};
use crate::keys::load_private_key;
use crate::subscriber::{FitConnectSubscriber, SubscriberDestination, SubscriberSettings};

/// The `fit-connect` (intake) channel plugin.
pub const INTAKE_CHANNEL: ChannelPlugin = ChannelPlugin {
    kind: "fit-connect",
    summary: "the hub as a FIT-Connect Zustelldienst: senders submit over the Submission API v1",
    parse: parse_intake,
};

/// The `fit-connect-subscriber` channel plugin.
pub const SUBSCRIBER_CHANNEL: ChannelPlugin = ChannelPlugin {
    kind: "fit-connect-subscriber",
    summary: "fetch submissions for the hub's destinations from a remote Zustelldienst",
    parse: parse_subscriber,
};

// ----------------------------------------------------------------- intake

/// A destination's `decryption_keys` (at least one; PEM or JWK files).
fn decryption_keys(chk: &mut Checker<'_>, at: &str, keys: &[PathBuf]) -> Vec<PathBuf> {
    if keys.is_empty() {
        chk.error(
            &format!("{at}.decryption_keys"),
            "at least one decryption key is needed",
        );
    }
    keys.iter()
        .enumerate()
        .map(|(j, p)| chk.key_file(&format!("{at}.decryption_keys[{j}]"), p))
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntake {
    public_base_url: Option<String>,
    base_path: Option<String>,
    #[serde(default, with = "humantime_serde")]
    token_ttl: Option<Duration>,
    signing_key: Option<PathBuf>,
    signing_kid: Option<String>,
    max_attachment_bytes: Option<ByteSize>,
    #[serde(default, with = "humantime_serde")]
    poll_interval: Option<Duration>,
    clients: Option<Vec<RawIntakeClient>>,
    hosted_destinations: Option<Vec<RawHostedDestination>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntakeClient {
    client_id: String,
    client_secret: SecretRef,
    destinations: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHostedDestination {
    destination_id: String,
    tenant: Option<String>,
    decryption_keys: Vec<PathBuf>,
    #[serde(default)]
    services: Vec<RawService>,
    #[serde(default)]
    metadata_versions: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    identifier: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    submission_schemas: Vec<RawSchema>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchema {
    schema_uri: String,
    mime_type: String,
}

/// A service a hosted destination offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedService {
    /// LeiKa URN.
    pub identifier: String,
    /// Name.
    pub name: String,
    /// Accepted Fachdaten schemas: (schema URI, media type).
    pub submission_schemas: Vec<(String, String)>,
}

/// Checked settings of a `fit-connect` (intake) channel.
#[derive(Debug, Clone, PartialEq)]
pub struct FitConnectIntakeConfig {
    /// External base URL of the Submission API (`iss` of the hub's SETs).
    pub public_base_url: String,
    /// Path prefix on the hub's listener (e.g. `/fit-connect`); empty
    /// mounts at `/`.
    pub base_path: String,
    /// Lifetime of access tokens (default 30 min).
    pub token_ttl: Duration,
    /// Private key signing the SETs (PEM or private JWK file).
    pub signing_key: PathBuf,
    /// `kid` of the signing key (default: its RFC 7638 thumbprint).
    pub signing_kid: Option<String>,
    /// Largest encrypted attachment (default and maximum 500 MB).
    pub max_attachment_bytes: u64,
    /// How often open cases are checked for delivery (default 1 s).
    pub poll_interval: Duration,
    /// OAuth clients (senders).
    pub clients: Vec<FitConnectIntakeClient>,
    /// Destinations the hub receives for.
    pub destinations: Vec<FitConnectHostedDestination>,
}

/// One sender client of a `fit-connect` channel.
#[derive(Debug, Clone, PartialEq)]
pub struct FitConnectIntakeClient {
    /// OAuth `client_id`.
    pub client_id: String,
    /// OAuth `client_secret`.
    pub client_secret: Secret,
    /// Destination ids it may send to.
    pub destinations: Vec<String>,
}

/// One destination hosted by a `fit-connect` channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitConnectHostedDestination {
    /// Destination id (UUID).
    pub destination_id: String,
    /// Tenant hint (correlation id `fitconnect.tenant`).
    pub tenant: Option<String>,
    /// Private decryption keys (PEM or JWK files); the first is published
    /// as the encryption key, the others still decrypt (rotation).
    pub decryption_keys: Vec<PathBuf>,
    /// Offered services. Empty: any.
    pub services: Vec<HostedService>,
    /// Metadata schema versions announced (empty: all supported).
    pub metadata_versions: Vec<String>,
}

fn parse_intake(chk: &mut Checker<'_>, table: toml::Table) -> Option<Arc<dyn ChannelFactory>> {
    let raw: RawIntake = chk.deserialize(table)?;
    let public_base_url = chk.service_url("public_base_url", raw.public_base_url.as_ref());
    let base_path = raw
        .base_path
        .as_deref()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_owned();
    if !base_path.is_empty()
        && (!base_path.starts_with('/')
            || base_path.starts_with("/api/")
            || !base_path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b)))
    {
        chk.error(
            "base_path",
            "`base_path` must be a path like `/fit-connect` (not below `/api/`)",
        );
    }
    let token_ttl = raw.token_ttl.unwrap_or(Duration::from_secs(30 * 60));
    if token_ttl.is_zero() {
        chk.error("token_ttl", "`token_ttl` must be greater than 0");
    }
    let poll_interval = raw.poll_interval.unwrap_or(Duration::from_secs(1));
    if poll_interval.is_zero() {
        chk.error("poll_interval", "`poll_interval` must be greater than 0");
    }
    const MAX_ATTACHMENT: u64 = 500_000_000;
    let max_attachment_bytes = raw.max_attachment_bytes.map_or(MAX_ATTACHMENT, |b| b.0);
    if max_attachment_bytes == 0 || max_attachment_bytes > MAX_ATTACHMENT {
        chk.error(
            "max_attachment_bytes",
            "`max_attachment_bytes` must be between 1 and 500 MB (the FIT-Connect limit)",
        );
    }
    let signing_key = match &raw.signing_key {
        Some(p) => chk.key_file("signing_key", p),
        None => {
            chk.error("", "`signing_key` is required (it signs the event log)");
            PathBuf::new()
        }
    };
    let hosted = raw.hosted_destinations.unwrap_or_default();
    if hosted.is_empty() {
        chk.error(
            "hosted_destinations",
            "a fit-connect channel needs at least one `[[hosted_destinations]]` entry",
        );
    }
    let mut destinations: Vec<FitConnectHostedDestination> = Vec::new();
    for (i, d) in hosted.iter().enumerate() {
        let at = format!("hosted_destinations[{i}]");
        if !is_uuid(&d.destination_id) {
            chk.error(
                &format!("{at}.destination_id"),
                "a destination id is a UUID",
            );
        } else if destinations
            .iter()
            .any(|x| x.destination_id.eq_ignore_ascii_case(&d.destination_id))
        {
            chk.error(&format!("{at}.destination_id"), "destination listed twice");
        }
        let decryption_keys = decryption_keys(chk, &at, &d.decryption_keys);
        for (j, s) in d.services.iter().enumerate() {
            if !s.identifier.starts_with("urn:") {
                chk.error(
                    &format!("{at}.services[{j}].identifier"),
                    "a service identifier is a URN like `urn:de:fim:leika:leistung:99…`",
                );
            }
            for (k, schema) in s.submission_schemas.iter().enumerate() {
                if schema.schema_uri.trim().is_empty() {
                    chk.error(
                        &format!("{at}.services[{j}].submission_schemas[{k}].schema_uri"),
                        "`schema_uri` must not be empty",
                    );
                }
                if !["application/xml", "application/json"].contains(&schema.mime_type.as_str()) {
                    chk.error(
                        &format!("{at}.services[{j}].submission_schemas[{k}].mime_type"),
                        "`mime_type` is `application/xml` or `application/json`",
                    );
                }
            }
        }
        destinations.push(FitConnectHostedDestination {
            destination_id: d.destination_id.to_ascii_lowercase(),
            tenant: d.tenant.clone(),
            decryption_keys,
            services: d
                .services
                .iter()
                .map(|s| HostedService {
                    identifier: s.identifier.clone(),
                    name: s.name.clone(),
                    submission_schemas: s
                        .submission_schemas
                        .iter()
                        .map(|x| (x.schema_uri.clone(), x.mime_type.clone()))
                        .collect(),
                })
                .collect(),
            metadata_versions: d.metadata_versions.clone(),
        });
    }
    let raw_clients = raw.clients.unwrap_or_default();
    if raw_clients.is_empty() {
        chk.error(
            "clients",
            "a fit-connect channel needs at least one `[[clients]]` entry",
        );
    }
    let mut clients = Vec::new();
    for (i, c) in raw_clients.iter().enumerate() {
        let at = format!("clients[{i}]");
        if c.client_id.trim().is_empty() {
            chk.error(
                &format!("{at}.client_id"),
                "a non-empty `client_id` is required",
            );
        }
        let secret = chk.secret(&format!("{at}.client_secret"), &c.client_secret);
        for (j, d) in c.destinations.iter().enumerate() {
            if !destinations
                .iter()
                .any(|x| x.destination_id.eq_ignore_ascii_case(d))
            {
                chk.error(
                    &format!("{at}.destinations[{j}]"),
                    format!("`{d}` is not one of this channel's hosted destinations"),
                );
            }
        }
        if let Some(client_secret) = secret {
            clients.push(FitConnectIntakeClient {
                client_id: c.client_id.clone(),
                client_secret,
                destinations: c
                    .destinations
                    .iter()
                    .map(|d| d.to_ascii_lowercase())
                    .collect(),
            });
        }
    }
    if chk.has_errors() {
        return None;
    }
    Some(Arc::new(FitConnectIntakeConfig {
        public_base_url,
        base_path,
        token_ttl,
        signing_key,
        signing_kid: raw.signing_kid,
        max_attachment_bytes,
        poll_interval,
        clients,
        destinations,
    }))
}

fn uuid(s: &str) -> Result<uuid::Uuid, BuildError> {
    s.parse::<uuid::Uuid>()
        .map_err(|e| BuildError(format!("destination id {s}: {e}")))
}

/// The intake's status follower as a task of the hub.
struct Follower(FitConnectIntake, String);

#[async_trait]
impl InputAdapter for Follower {
    fn name(&self) -> &str {
        &self.1
    }

    async fn run(
        self: Box<Self>,
        _intake: Arc<dyn Intake>,
        shutdown: CancellationToken,
    ) -> Result<(), AdapterError> {
        self.0.run_status_follower(shutdown).await;
        Ok(())
    }
}

impl ChannelFactory for FitConnectIntakeConfig {
    fn build(&self, cx: &ChannelContext<'_>) -> Result<Adapter, BuildError> {
        let key = |p: &std::path::Path, kid: Option<&str>| {
            load_private_key(p, kid).map_err(BuildError::new)
        };
        let mut destinations = Vec::new();
        for d in &self.destinations {
            destinations.push(IntakeDestination {
                id: uuid(&d.destination_id)?,
                tenant: d.tenant.clone(),
                services: d
                    .services
                    .iter()
                    .map(|s| IntakeService {
                        identifier: s.identifier.clone(),
                        name: s.name.clone(),
                        submission_schemas: s.submission_schemas.clone(),
                    })
                    .collect(),
                keys: d
                    .decryption_keys
                    .iter()
                    .map(|p| key(p, None))
                    .collect::<Result<_, _>>()?,
                metadata_versions: d.metadata_versions.clone(),
            });
        }
        let clients = self
            .clients
            .iter()
            .map(|c| {
                Ok(IntakeClient {
                    client_id: c.client_id.clone(),
                    client_secret: c.client_secret.expose().to_owned(),
                    destinations: c
                        .destinations
                        .iter()
                        .map(|d| uuid(d))
                        .collect::<Result<_, _>>()?,
                })
            })
            .collect::<Result<Vec<_>, BuildError>>()?;
        let fit = FitConnectIntake::open(
            FitConnectIntakeSettings {
                channel: cx.id.to_owned(),
                base_path: Some(self.base_path.clone()),
                clients,
                destinations,
                signing_key: key(&self.signing_key, self.signing_kid.as_deref())?,
                token_ttl: self.token_ttl,
                public_base_url: self.public_base_url.clone(),
                max_attachment_bytes: self.max_attachment_bytes,
                state_dir: cx.data_dir.join("fit-connect").join(cx.id),
                poll_interval: self.poll_interval,
            },
            cx.intake.clone(),
            cx.store.clone(),
        )
        .map_err(BuildError::new)?;
        Ok(Adapter {
            routes: Some(fit.router()),
            tasks: vec![Box::new(Follower(fit, cx.id.to_owned()))],
            status: None,
        })
    }

    fn mounts(&self) -> Vec<String> {
        vec![if self.base_path.is_empty() {
            "/".to_owned()
        } else {
            self.base_path.clone()
        }]
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

// ------------------------------------------------------------- subscriber

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscriber {
    token_url: Option<String>,
    submission_api_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretRef>,
    callback_secret: Option<SecretRef>,
    #[serde(default, with = "humantime_serde")]
    poll_interval: Option<Duration>,
    ca_cert: Option<PathBuf>,
    destinations: Option<Vec<RawSubscriberDestination>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscriberDestination {
    destination_id: String,
    decryption_keys: Vec<PathBuf>,
    signing_key: PathBuf,
    signing_kid: String,
}

/// Checked settings of a `fit-connect-subscriber` channel.
#[derive(Debug, Clone, PartialEq)]
pub struct FitConnectSubscriberConfig {
    /// OAuth token endpoint.
    pub token_url: String,
    /// Root URL of the Zustelldienst's Submission API.
    pub submission_api_url: String,
    /// OAuth client id (subscriber client from the SSP).
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Secret,
    /// Time between polls (default 30 s).
    pub poll_interval: Duration,
    /// Callback secret; enables `POST /api/v1/fit-connect/callbacks/<channel>`.
    pub callback_secret: Option<Secret>,
    /// Extra CA certificate (PEM) to trust.
    pub ca_cert: Option<PathBuf>,
    /// The destinations to fetch for (at least one).
    pub destinations: Vec<FitConnectSubscriberDestination>,
}

/// One destination of a subscriber channel (`[[channels.<id>.destinations]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitConnectSubscriberDestination {
    /// Destination id (UUID).
    pub destination_id: String,
    /// Private decryption keys (PEM or JWK files; several during a
    /// rotation).
    pub decryption_keys: Vec<PathBuf>,
    /// Private key signing the SETs (PEM or JWK file).
    pub signing_key: PathBuf,
    /// `kid` under which the signing key's public part is registered.
    pub signing_kid: String,
}

fn parse_subscriber(chk: &mut Checker<'_>, table: toml::Table) -> Option<Arc<dyn ChannelFactory>> {
    let raw: RawSubscriber = chk.deserialize(table)?;
    let token_url = chk.service_url("token_url", raw.token_url.as_ref());
    let submission_api_url = chk.service_url("submission_api_url", raw.submission_api_url.as_ref());
    let client_id = raw.client_id.clone().unwrap_or_default();
    if client_id.trim().is_empty() {
        chk.error("client_id", "a non-empty `client_id` is required");
    }
    let client_secret = match &raw.client_secret {
        Some(s) => chk.secret("client_secret", s),
        None => {
            chk.error("", "`client_secret` is required");
            None
        }
    };
    let callback_secret = raw
        .callback_secret
        .as_ref()
        .and_then(|s| chk.secret("callback_secret", s));
    let poll_interval = raw.poll_interval.unwrap_or(Duration::from_secs(30));
    if poll_interval.is_zero() {
        chk.error("poll_interval", "`poll_interval` must be greater than 0");
    }
    let ca_cert = raw.ca_cert.as_ref().map(|p| chk.pem_file("ca_cert", p));
    let list = raw.destinations.unwrap_or_default();
    if list.is_empty() {
        chk.error(
            "destinations",
            "a fit-connect-subscriber channel needs at least one `[[destinations]]` entry",
        );
    }
    let mut destinations = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let at = format!("destinations[{i}]");
        if d.destination_id.trim().is_empty() || d.destination_id.contains('/') {
            chk.error(&format!("{at}.destination_id"), "invalid destination id");
        }
        let decryption_keys = decryption_keys(chk, &at, &d.decryption_keys);
        let signing_key = chk.key_file(&format!("{at}.signing_key"), &d.signing_key);
        if d.signing_kid.trim().is_empty() {
            chk.error(
                &format!("{at}.signing_kid"),
                "`signing_kid` must not be empty",
            );
        }
        destinations.push(FitConnectSubscriberDestination {
            destination_id: d.destination_id.clone(),
            decryption_keys,
            signing_key,
            signing_kid: d.signing_kid.clone(),
        });
    }
    if chk.has_errors() {
        return None;
    }
    Some(Arc::new(FitConnectSubscriberConfig {
        token_url,
        submission_api_url,
        client_id,
        client_secret: client_secret?,
        poll_interval,
        callback_secret,
        ca_cert,
        destinations,
    }))
}

impl ChannelFactory for FitConnectSubscriberConfig {
    fn build(&self, cx: &ChannelContext<'_>) -> Result<Adapter, BuildError> {
        let mut destinations = Vec::new();
        for d in &self.destinations {
            let context = |e: crate::keys::KeyFileError| {
                BuildError(format!("destination {}: {e}", d.destination_id))
            };
            destinations.push(SubscriberDestination {
                destination_id: d.destination_id.clone(),
                decryption_keys: d
                    .decryption_keys
                    .iter()
                    .map(|p| load_private_key(p, None).map_err(context))
                    .collect::<Result<_, _>>()?,
                signing_key: load_private_key(&d.signing_key, Some(&d.signing_kid))
                    .map_err(context)?,
            });
        }
        let ca_cert_pem = self
            .ca_cert
            .as_deref()
            .map(|p| {
                std::fs::read(p).map_err(|e| BuildError(format!("reading {}: {e}", p.display())))
            })
            .transpose()?;
        let adapter = FitConnectSubscriber::new(
            SubscriberSettings {
                channel: cx.id.to_owned(),
                token: crate::client::TokenSettings {
                    token_url: self.token_url.clone(),
                    client_id: self.client_id.clone(),
                    client_secret: self.client_secret.expose().to_owned(),
                    scope: None,
                },
                submission_api_url: self.submission_api_url.clone(),
                destinations,
                poll_interval: self.poll_interval,
                callback_secret: self.callback_secret.as_ref().map(|s| s.expose().to_owned()),
                state_dir: cx.data_dir.join("fit-connect-subscriber").join(cx.id),
                http_timeout: Duration::from_secs(30),
                ca_cert_pem,
            },
            cx.store.clone(),
        )
        .map_err(BuildError::new)?;
        let status = adapter.counters();
        Ok(Adapter {
            routes: adapter.callback_router(),
            tasks: vec![Box::new(adapter)],
            status: Some(std::sync::Arc::new(status)),
        })
    }

    fn mounts(&self) -> Vec<String> {
        Vec::new()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
