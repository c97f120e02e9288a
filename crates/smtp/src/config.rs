//! The `smtp` connector's configuration (`[connectors.<id>] type = "smtp"`)
//! and its plugin.
//!
//! ```toml
//! [connectors.postfach]
//! type = "smtp"
//! host = "mail.kommune.example"
//! port = 587
//! tls = "starttls"                 # or "tls"; "none" only on loopback
//! username = "drehscheibe"
//! password = { env = "SMTP_PASSWORD" }
//! from = "drehscheibe@kommune.example"
//! to = ["gewerbeamt@kommune.example"]
//! subject = "Drehscheibe: {leistung} {id}"
//! max_total_bytes = "20 MiB"
//! ```

use std::sync::Arc;

use drehscheibe_config::plugin::{
    check_address, is_loopback_host, BuildContext, BuildError, Checker, ConnectorFactory,
    ConnectorPlugin, SecretRef,
};
use drehscheibe_config::{ByteSize, Secret};
use drehscheibe_model::Connector;
use serde::Deserialize;

use crate::{SmtpConnector, SmtpSettings, SmtpTls};

/// The plugin the composition root registers.
pub const CONNECTOR: ConnectorPlugin = ConnectorPlugin {
    kind: "smtp",
    summary: "send the document and its attachments as an e-mail",
    parse,
};

/// Default subject template.
pub const DEFAULT_SUBJECT: &str = "Drehscheibe: {leistung} {id}";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    host: Option<String>,
    port: Option<u16>,
    tls: Option<SmtpTls>,
    username: Option<String>,
    password: Option<SecretRef>,
    from: Option<String>,
    to: Option<Vec<String>>,
    subject: Option<String>,
    max_total_bytes: Option<ByteSize>,
}

/// Checked settings of an `smtp` connector.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpConnectorConfig {
    /// Mail server host name or IP address.
    pub host: String,
    /// Port (default 587).
    pub port: u16,
    /// Transport security (default STARTTLS).
    pub tls: SmtpTls,
    /// Login user.
    pub username: Option<String>,
    /// Login password (required with `username`).
    pub password: Option<Secret>,
    /// Sender address.
    pub from: String,
    /// Recipients (at least one).
    pub to: Vec<String>,
    /// Subject template (default [`DEFAULT_SUBJECT`]).
    pub subject: String,
    /// Largest mail (document plus attachments) to send (default 20 MiB).
    pub max_total_bytes: u64,
}

fn parse(chk: &mut Checker<'_>, table: toml::Table) -> Option<Arc<dyn ConnectorFactory>> {
    let raw: Raw = chk.deserialize(table)?;
    let host = raw.host.clone().unwrap_or_default();
    if host.is_empty() || host.chars().any(char::is_whitespace) {
        chk.error("host", "an smtp connector needs a `host`");
    }
    let port = raw.port.unwrap_or(587);
    if port == 0 {
        chk.error("port", "`port` must not be 0");
    }
    let tls = raw.tls.unwrap_or_default();
    if tls == SmtpTls::None && !host.is_empty() && !is_loopback_host(&host) {
        chk.error(
            "tls",
            format!(
                "tls = \"none\" is only allowed for localhost or loopback addresses, not `{host}`; use \"starttls\" or \"tls\""
            ),
        );
    }
    match (&raw.username, &raw.password) {
        (Some(_), None) => chk.error("username", "`username` needs a `password`"),
        (None, Some(_)) => chk.error("password", "`password` needs a `username`"),
        _ => {}
    }
    let password = raw
        .password
        .as_ref()
        .and_then(|p| chk.secret("password", p));
    let from = raw.from.clone().unwrap_or_default();
    if raw.from.is_none() {
        chk.error("", "an smtp connector needs `from`");
    } else if let Err(m) = check_address(&from) {
        chk.error("from", m);
    }
    let to = raw.to.clone().unwrap_or_default();
    if to.is_empty() {
        chk.error(
            "to",
            "an smtp connector needs at least one recipient in `to`",
        );
    }
    for (i, addr) in to.iter().enumerate() {
        if let Err(m) = check_address(addr) {
            chk.error(&format!("to[{i}]"), m);
        }
    }
    let subject = raw
        .subject
        .clone()
        .unwrap_or_else(|| DEFAULT_SUBJECT.to_string());
    if subject.contains(['\r', '\n']) {
        chk.error("subject", "`subject` must be a single line");
    }
    let max_total_bytes = raw.max_total_bytes.map_or(20 << 20, |b| b.0);
    if max_total_bytes == 0 {
        chk.error(
            "max_total_bytes",
            "`max_total_bytes` must be greater than 0",
        );
    }
    if chk.has_errors() {
        return None;
    }
    Some(Arc::new(SmtpConnectorConfig {
        host,
        port,
        tls,
        username: raw.username,
        password,
        from,
        to,
        subject,
        max_total_bytes,
    }))
}

impl ConnectorFactory for SmtpConnectorConfig {
    fn build(&self, cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, BuildError> {
        Ok(Arc::new(
            SmtpConnector::new(SmtpSettings {
                host: self.host.clone(),
                port: self.port,
                tls: self.tls,
                username: self.username.clone(),
                password: self.password.as_ref().map(|p| p.expose().to_owned()),
                from: self.from.clone(),
                to: self.to.clone(),
                subject_template: self.subject.clone(),
                max_total_bytes: self.max_total_bytes,
                timeout: cx.timeout,
                ca_cert_pem: None,
            })
            .map_err(BuildError::new)?,
        ))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
