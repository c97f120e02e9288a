//! The `fit-connect` sender connector's configuration
//! (`[connectors.<id>] type = "fit-connect"`) and its plugin.
//!
//! ```toml
//! [connectors.fit]
//! type = "fit-connect"
//! token_url = "https://auth-testing.fit-connect.fitko.dev/token"
//! submission_api_url = "https://submission-api-testing.fit-connect.fitko.dev"
//! client_id = "…"
//! client_secret = { env = "FIT_SECRET" }
//! destination_id = "…"          # or routing_api_url (+ ars / ags)
//! leika = "99050012104000"       # default: the message's Leistung
//! data_schema_uri = "…"          # default: from the destination
//! poll_interval = "2s"
//! max_wait = "20s"               # shorter than timeout
//! require_accept = false
//! cache_ttl = "1h"
//! max_attachment_bytes = "64 MiB"
//! ca_cert = "certs/ca.pem"
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use drehscheibe_config::plugin::{
    BuildContext, BuildError, Checker, ConnectorFactory, ConnectorPlugin, SecretRef,
};
use drehscheibe_config::{ByteSize, Secret};
use drehscheibe_model::Connector;
use serde::Deserialize;

use crate::client::{Area, TokenSettings};
use crate::connector::{DestinationSource, FitConnectConnector, FitConnectConnectorSettings};

/// The plugin the composition root registers.
pub const CONNECTOR: ConnectorPlugin = ConnectorPlugin {
    kind: "fit-connect",
    summary: "submit the document encrypted to a FIT-Connect destination and follow its case",
    parse,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    token_url: Option<String>,
    submission_api_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretRef>,
    destination_id: Option<String>,
    routing_api_url: Option<String>,
    ars: Option<String>,
    ags: Option<String>,
    leika: Option<String>,
    service_name: Option<String>,
    data_schema_uri: Option<String>,
    #[serde(default, with = "humantime_serde")]
    poll_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    max_wait: Option<Duration>,
    require_accept: Option<bool>,
    #[serde(default, with = "humantime_serde")]
    cache_ttl: Option<Duration>,
    max_attachment_bytes: Option<ByteSize>,
    ca_cert: Option<PathBuf>,
}

/// Checked settings of a `fit-connect` connector.
#[derive(Debug, Clone, PartialEq)]
pub struct FitConnectConnectorConfig {
    /// OAuth token endpoint.
    pub token_url: String,
    /// Root URL of the Zustelldienst's Submission API.
    pub submission_api_url: String,
    /// OAuth client id (sender client from the SSP).
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: Secret,
    /// Where the destination comes from.
    pub destination: FitConnectDestination,
    /// Service identifier (14-digit LeiKa key or URN); default: the
    /// message's Leistung.
    pub leika: Option<String>,
    /// Service name sent along (default: the identifier).
    pub service_name: Option<String>,
    /// Schema URI of the data set (default: from the destination).
    pub data_schema_uri: Option<String>,
    /// Event-log poll interval after submitting (default 2 s).
    pub poll_interval: Duration,
    /// How long one attempt waits for accept/reject (default 20 s; shorter
    /// than the connector's `timeout`).
    pub max_wait: Duration,
    /// Keep the delivery retryable until `accept-submission` (default false).
    pub require_accept: bool,
    /// Cache time of destination info, keys and routes (default 1 h).
    pub cache_ttl: Duration,
    /// Largest attachment sent (default 64 MiB; encrypted in memory).
    pub max_attachment_bytes: u64,
    /// Extra CA certificate (PEM) to trust.
    pub ca_cert: Option<PathBuf>,
}

/// Destination of a FIT-Connect connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FitConnectDestination {
    /// `destination_id`.
    Fixed(String),
    /// Looked up in the Routing API by Leistung and area.
    Routing {
        /// Routing API base URL.
        routing_api_url: String,
        /// Area as ARS (else `ags`, else the message's Kommune key).
        ars: Option<String>,
        /// Area as AGS.
        ags: Option<String>,
    },
}

fn parse(chk: &mut Checker<'_>, table: toml::Table) -> Option<Arc<dyn ConnectorFactory>> {
    let c: Raw = chk.deserialize(table)?;
    let timeout = chk.timeout();
    let token_url = chk.service_url("token_url", c.token_url.as_ref());
    let submission_api_url = chk.service_url("submission_api_url", c.submission_api_url.as_ref());
    let client_id = c.client_id.clone().unwrap_or_default();
    if client_id.trim().is_empty() {
        chk.error("client_id", "a non-empty `client_id` is required");
    }
    let client_secret = match &c.client_secret {
        Some(s) => chk.secret("client_secret", s),
        None => {
            chk.error("", "`client_secret` is required");
            None
        }
    };
    let destination = match (&c.destination_id, &c.routing_api_url) {
        (Some(id), None) => {
            if id.trim().is_empty() || id.contains('/') {
                chk.error("destination_id", "invalid destination id");
            }
            for (key, present) in [("ars", c.ars.is_some()), ("ags", c.ags.is_some())] {
                if present {
                    chk.error(key, format!("`{key}` is only used with `routing_api_url`"));
                }
            }
            FitConnectDestination::Fixed(id.clone())
        }
        (None, Some(_)) => {
            let routing_api_url = chk.service_url("routing_api_url", c.routing_api_url.as_ref());
            if let Some(ars) = &c.ars {
                if !(ars.bytes().all(|b| b.is_ascii_digit())
                    && [2, 3, 5, 9, 12].contains(&ars.len()))
                {
                    chk.error("ars", "ARS must have 2, 3, 5, 9 or 12 digits");
                }
            }
            if let Some(ags) = &c.ags {
                if !(ags.bytes().all(|b| b.is_ascii_digit()) && [2, 3, 5, 8].contains(&ags.len())) {
                    chk.error("ags", "AGS must have 2, 3, 5 or 8 digits");
                }
            }
            if c.ars.is_some() && c.ags.is_some() {
                chk.error("ags", "set either `ars` or `ags`, not both");
            }
            FitConnectDestination::Routing {
                routing_api_url,
                ars: c.ars.clone(),
                ags: c.ags.clone(),
            }
        }
        (Some(_), Some(_)) => {
            chk.error(
                "routing_api_url",
                "set either `destination_id` or `routing_api_url`, not both",
            );
            return None;
        }
        (None, None) => {
            chk.error(
                "",
                "a fit-connect connector needs `destination_id` or `routing_api_url`",
            );
            return None;
        }
    };
    if let Some(l) = &c.leika {
        let digits = l.len() == 14 && l.bytes().all(|b| b.is_ascii_digit());
        if !digits && !l.starts_with("urn:") {
            chk.error("leika", "`leika` must be a 14-digit LeiKa key or a URN");
        }
    }
    let poll_interval = c.poll_interval.unwrap_or(Duration::from_secs(2));
    if poll_interval.is_zero() {
        chk.error("poll_interval", "`poll_interval` must be greater than 0");
    }
    let max_wait = c
        .max_wait
        .unwrap_or_else(|| Duration::from_secs(20).min(timeout / 2));
    if max_wait >= timeout {
        chk.error(
            "max_wait",
            format!(
                "`max_wait` must be shorter than the connector's `timeout` ({}s)",
                timeout.as_secs()
            ),
        );
    }
    let max_attachment_bytes = c.max_attachment_bytes.map_or(64 << 20, |b| b.0);
    if max_attachment_bytes == 0 {
        chk.error(
            "max_attachment_bytes",
            "`max_attachment_bytes` must be greater than 0",
        );
    }
    let ca_cert = c.ca_cert.as_ref().map(|p| chk.pem_file("ca_cert", p));
    if chk.has_errors() {
        return None;
    }
    Some(Arc::new(FitConnectConnectorConfig {
        token_url,
        submission_api_url,
        client_id,
        client_secret: client_secret?,
        destination,
        leika: c.leika,
        service_name: c.service_name,
        data_schema_uri: c.data_schema_uri,
        poll_interval,
        max_wait,
        require_accept: c.require_accept.unwrap_or(false),
        cache_ttl: c.cache_ttl.unwrap_or(Duration::from_secs(3600)),
        max_attachment_bytes,
        ca_cert,
    }))
}

impl ConnectorFactory for FitConnectConnectorConfig {
    fn build(&self, cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, BuildError> {
        let ca_cert_pem = self
            .ca_cert
            .as_deref()
            .map(|p| {
                std::fs::read(p).map_err(|e| BuildError(format!("reading {}: {e}", p.display())))
            })
            .transpose()?;
        let destination = match &self.destination {
            FitConnectDestination::Fixed(id) => DestinationSource::Fixed(id.clone()),
            FitConnectDestination::Routing {
                routing_api_url,
                ars,
                ags,
            } => DestinationSource::Routing {
                routing_api_url: routing_api_url.clone(),
                area: ars
                    .clone()
                    .map(Area::Ars)
                    .or_else(|| ags.clone().map(Area::Ags)),
                cache_ttl: self.cache_ttl,
            },
        };
        let connector = FitConnectConnector::new(FitConnectConnectorSettings {
            token: TokenSettings {
                token_url: self.token_url.clone(),
                client_id: self.client_id.clone(),
                client_secret: self.client_secret.expose().to_owned(),
                scope: None,
            },
            submission_api_url: self.submission_api_url.clone(),
            destination,
            leika: self.leika.clone(),
            service_name: self.service_name.clone(),
            data_schema_uri: self.data_schema_uri.clone(),
            poll_interval: self.poll_interval,
            max_wait: self.max_wait,
            require_accept: self.require_accept,
            attempt_timeout: cx.timeout,
            http_timeout: cx.timeout.min(Duration::from_secs(30)),
            key_cache_ttl: self.cache_ttl,
            max_attachment_bytes: self.max_attachment_bytes,
            ca_cert_pem,
        })
        .map_err(BuildError::new)?;
        Ok(Arc::new(connector))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
