//! The `http` connector's configuration (`[connectors.<id>] type = "http"`)
//! and its plugin: read and check the table, build the connector; and the
//! `http` channel type ([`CHANNEL`]), which has no keys of its own.
//!
//! ```toml
//! [connectors.fv]
//! type = "http"
//! url = "https://fv.example.de/api/antraege"
//! method = "POST"                      # or PUT
//! headers = { "X-Mandant" = "09162000" }
//! auth = { type = "bearer", token = { env = "FV_TOKEN" } }
//! success_status = [200, 201, 202, 204]
//! client_cert = { cert = "certs/fv.pem", key = "certs/fv.key" }
//! ca_cert = "certs/fv-ca.pem"
//! send_attachments = true
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use drehscheibe_config::plugin::{
    is_header_name, Adapter, BuildContext, BuildError, ChannelContext, ChannelFactory,
    ChannelPlugin, Checker, ConnectorFactory, ConnectorPlugin,
};
use drehscheibe_config::{AuthRef, ClientCert, ClientCertRef, HttpAuth};
use drehscheibe_model::Connector;
use serde::Deserialize;

use crate::{HttpConnector, HttpConnectorSettings};

/// The plugin the composition root registers.
pub const CONNECTOR: ConnectorPlugin = ConnectorPlugin {
    kind: "http",
    summary:
        "POST or PUT the document (and its attachments) to a Fachverfahren's HTTP(S) interface",
    parse,
};

/// Request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// POST (default).
    #[default]
    #[serde(alias = "post")]
    Post,
    /// PUT.
    #[serde(alias = "put")]
    Put,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    url: Option<String>,
    method: Option<HttpMethod>,
    headers: Option<BTreeMap<String, String>>,
    auth: Option<AuthRef>,
    success_status: Option<Vec<u16>>,
    client_cert: Option<ClientCertRef>,
    ca_cert: Option<PathBuf>,
    send_attachments: Option<bool>,
}

/// Checked settings of an `http` connector.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConnectorConfig {
    /// Target URL (`http` or `https`, no credentials in it).
    pub url: String,
    /// Request method (default POST).
    pub method: HttpMethod,
    /// Extra request headers.
    pub headers: BTreeMap<String, String>,
    /// Authentication.
    pub auth: Option<HttpAuth>,
    /// Statuses that count as delivered (default 200, 201, 202, 204).
    pub success_status: Vec<u16>,
    /// TLS client certificate.
    pub client_cert: Option<ClientCert>,
    /// Extra CA certificate (PEM) to trust.
    pub ca_cert: Option<PathBuf>,
    /// Send the message's attachments as further multipart parts
    /// (default true).
    pub send_attachments: bool,
}

fn parse(chk: &mut Checker<'_>, table: toml::Table) -> Option<Arc<dyn ConnectorFactory>> {
    let raw: Raw = chk.deserialize(table)?;
    let Some(url) = &raw.url else {
        chk.error("", "an http connector needs `url`");
        return None;
    };
    let url = chk.service_url("url", Some(url));
    let headers = raw.headers.unwrap_or_default();
    for (name, value) in &headers {
        let key = format!("headers.{name}");
        if !is_header_name(name) {
            chk.error(&key, format!("`{name}` is not a valid header name"));
        }
        if value.chars().any(|ch| ch.is_control() && ch != '\t') {
            chk.error(&key, "header values must not contain control characters");
        }
        if raw.auth.is_some() && name.eq_ignore_ascii_case("authorization") {
            chk.error(
                &key,
                "set either `auth` or an Authorization header, not both",
            );
        }
    }
    let auth = raw.auth.as_ref().and_then(|a| chk.http_auth("auth", a));
    let success_status = raw
        .success_status
        .unwrap_or_else(|| vec![200, 201, 202, 204]);
    if success_status.is_empty() {
        chk.error(
            "success_status",
            "`success_status` must list at least one status code",
        );
    }
    for (i, s) in success_status.iter().enumerate() {
        if !(100..=599).contains(s) {
            chk.error(
                &format!("success_status[{i}]"),
                format!("`{s}` is not an HTTP status code"),
            );
        }
    }
    let client_cert = raw
        .client_cert
        .as_ref()
        .map(|c| chk.client_cert("client_cert", c));
    let ca_cert = raw.ca_cert.as_ref().map(|p| chk.pem_file("ca_cert", p));
    if chk.has_errors() {
        return None;
    }
    Some(Arc::new(HttpConnectorConfig {
        url,
        method: raw.method.unwrap_or_default(),
        headers,
        auth,
        success_status,
        client_cert,
        ca_cert,
        send_attachments: raw.send_attachments.unwrap_or(true),
    }))
}

fn read(p: &std::path::Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(p).map_err(|e| BuildError(format!("reading {}: {e}", p.display())))
}

impl ConnectorFactory for HttpConnectorConfig {
    fn build(&self, cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, BuildError> {
        let client_cert_pem = match &self.client_cert {
            Some(c) => Some((read(&c.cert)?, read(&c.key)?)),
            None => None,
        };
        let ca_cert_pem = self.ca_cert.as_deref().map(read).transpose()?;
        let settings = HttpConnectorSettings {
            url: self.url.clone(),
            method: match self.method {
                HttpMethod::Post => reqwest::Method::POST,
                HttpMethod::Put => reqwest::Method::PUT,
            },
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            auth: self.auth.as_ref().map(|a| match a {
                HttpAuth::Bearer { token } => crate::HttpAuth::Bearer(token.expose().to_owned()),
                HttpAuth::Basic { username, password } => crate::HttpAuth::Basic {
                    username: username.clone(),
                    password: password.expose().to_owned(),
                },
            }),
            success_status: self.success_status.clone(),
            client_cert_pem,
            ca_cert_pem,
            timeout: cx.timeout,
            send_attachments: self.send_attachments,
        };
        Ok(Arc::new(
            HttpConnector::new(settings).map_err(BuildError::new)?,
        ))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The `http` channel plugin: submissions over `POST
/// /api/v1/inbox/<channel>`. The inbox route serves every channel of this
/// type and is mounted by the hub's server with the token table (which
/// decides who may post to which channel), so the channel contributes
/// neither routes nor tasks of its own.
pub const CHANNEL: ChannelPlugin = ChannelPlugin {
    kind: "http",
    summary: "submissions over the HTTP inbox, POST /api/v1/inbox/<channel>",
    parse: parse_channel,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {}

/// An `http` channel (no settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpChannelConfig;

fn parse_channel(chk: &mut Checker<'_>, table: toml::Table) -> Option<Arc<dyn ChannelFactory>> {
    let _: RawChannel = chk.deserialize(table)?;
    if chk.has_errors() {
        return None;
    }
    Some(Arc::new(HttpChannelConfig))
}

impl ChannelFactory for HttpChannelConfig {
    /// The channel's inbox route, `POST /api/v1/inbox/<id>`.
    fn build(&self, cx: &ChannelContext<'_>) -> Result<Adapter, BuildError> {
        Ok(Adapter {
            routes: Some(crate::inbox::channel_router(
                cx.id,
                cx.intake.clone(),
                cx.tokens.clone(),
            )),
            ..Adapter::default()
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
