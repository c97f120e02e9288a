//! Configuration and plugins of the two XTA connectors:
//!
//! * `type = "xta"` ([`CONNECTOR`]): send to a remote XTA 2 server as the
//!   tenant's account ([`crate::connector`]);
//! * `type = "xta-mailbox"` ([`MAILBOX_CONNECTOR`]): put into a mailbox
//!   this hub's own XTA server hosts ([`crate::mailbox_connector`]); the
//!   mailbox must be an account of an `xta` channel.
//!
//! ```toml
//! [connectors.xta]
//! type = "xta"
//! url = "https://xta.example.de/xta"
//! account = "dvdv:09162000"          # account_type = "xoev"
//! client_cert = { cert = "certs/k.pem", key = "certs/k.key" }
//! auth = { type = "bearer", token = { env = "XTA_TOKEN" } }
//! reader = "dvdv:09000000"
//! service = "urn:xoev-de:xgewerbeanzeige:standard:xgewerbeanzeige_2.2"
//! poll_interval = "1s"               # transport report polls
//! max_wait = "10s"                   # shorter than timeout
//! require_final_report = false       # true: done only on status 1/2/3
//!
//! [connectors.box]
//! type = "xta-mailbox"
//! mailbox = "kommune"
//! reader = "dvdv:09162000"
//! ```
//!
//! Metadata keys of both: `author`/`author_type` (xta-mailbox only),
//! `reader`/`reader_type`, `service`, `business_scenario`,
//! `message_type`, `message_type_list_uri`, `message_type_list_version`,
//! `payload_schema`; unset fields come from the message (see
//! [`MetaDefaults`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use drehscheibe_config::plugin::{
    check_id, BuildContext, BuildError, Checker, ConnectorFactory, ConnectorPlugin, Need,
};
use drehscheibe_config::{AuthRef, ClientCert, ClientCertRef, HttpAuth, Secret};
use drehscheibe_model::Connector;
use serde::Deserialize;

use crate::client::{XtaClientSettings, XtaEndpoints};
use crate::connector::{MetaDefaults, XtaConnector, XtaConnectorSettings};
use crate::mailbox::Mailboxes;
use crate::mailbox_connector::{XtaMailboxConnector, XtaMailboxConnectorSettings};
use crate::model::{BusinessScenario, PartyIdentifier};

/// The `xta` connector plugin.
pub const CONNECTOR: ConnectorPlugin = ConnectorPlugin {
    kind: "xta",
    summary: "send the document to a remote XTA 2 server as the tenant's account",
    parse: parse_xta,
};

/// The `xta-mailbox` connector plugin.
pub const MAILBOX_CONNECTOR: ConnectorPlugin = ConnectorPlugin {
    kind: "xta-mailbox",
    summary: "put the document into a mailbox this hub's XTA server hosts",
    parse: parse_mailbox,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    author: Option<String>,
    author_type: Option<String>,
    reader: Option<String>,
    reader_type: Option<String>,
    service: Option<String>,
    business_scenario: Option<String>,
    message_type: Option<String>,
    message_type_list_uri: Option<String>,
    message_type_list_version: Option<String>,
    payload_schema: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawXta {
    url: Option<String>,
    account: Option<String>,
    account_type: Option<String>,
    auth: Option<AuthRef>,
    client_cert: Option<ClientCertRef>,
    ca_cert: Option<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    poll_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    max_wait: Option<Duration>,
    require_final_report: Option<bool>,
    reader: Option<String>,
    reader_type: Option<String>,
    service: Option<String>,
    business_scenario: Option<String>,
    message_type: Option<String>,
    message_type_list_uri: Option<String>,
    message_type_list_version: Option<String>,
    payload_schema: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailbox {
    mailbox: Option<String>,
    author: Option<String>,
    author_type: Option<String>,
    reader: Option<String>,
    reader_type: Option<String>,
    service: Option<String>,
    business_scenario: Option<String>,
    message_type: Option<String>,
    message_type_list_uri: Option<String>,
    message_type_list_version: Option<String>,
    payload_schema: Option<String>,
}

/// An XTA party identifier: value and `type` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XtaParty {
    /// Identifier value, e.g. `dvdv:01001000`.
    pub value: String,
    /// `type` attribute (default `xoev`).
    pub kind: String,
}

/// How the client side reaches a remote XTA server as one account (the
/// `xta` connector and the `xta-poller` channel).
#[derive(Debug, Clone, PartialEq)]
pub struct XtaRemoteAccount {
    /// Address of the XTA-WS (all three ports).
    pub url: String,
    /// The account's party identifier (sent as author).
    pub account: XtaParty,
    /// TLS client certificate of the tenant/account.
    pub client_cert: Option<ClientCert>,
    /// Extra CA certificate (PEM) to trust.
    pub ca_cert: Option<PathBuf>,
    /// Bearer token, for servers that bind accounts to tokens.
    pub token: Option<Secret>,
}

/// A party identifier from a value key and its type key (default type
/// `xoev`); `None` when the value is not set.
pub fn party(
    chk: &mut Checker<'_>,
    key: &str,
    value: Option<&String>,
    type_key: &str,
    kind: Option<&String>,
) -> Option<XtaParty> {
    let Some(value) = value else {
        if kind.is_some() {
            chk.error(type_key, format!("`{type_key}` needs `{key}`"));
        }
        return None;
    };
    let value = value.trim();
    if value.is_empty() || value.chars().any(char::is_control) {
        chk.error(
            key,
            format!("`{key}` must be a party identifier like `dvdv:01001000`"),
        );
    }
    let kind = kind.map_or("xoev", String::as_str).trim();
    if kind.is_empty() {
        chk.error(type_key, format!("`{type_key}` must not be empty"));
    }
    Some(XtaParty {
        value: value.to_owned(),
        kind: kind.to_owned(),
    })
}

/// A remote XTA server and account: `url`, `account`/`account_type`,
/// `client_cert`, `ca_cert`, and the token resolved by the caller.
pub fn remote(
    chk: &mut Checker<'_>,
    url: Option<&String>,
    account: (Option<&String>, Option<&String>),
    client_cert: Option<&ClientCertRef>,
    ca_cert: Option<&PathBuf>,
    token: Option<Secret>,
) -> Option<XtaRemoteAccount> {
    let url = chk.service_url("url", url);
    let account = party(chk, "account", account.0, "account_type", account.1);
    if account.is_none() {
        chk.error(
            "",
            "`account` (the party identifier of the account, e.g. `dvdv:01001000`) is required",
        );
    }
    let client_cert = client_cert.map(|c| chk.client_cert("client_cert", c));
    let ca_cert = ca_cert.map(|p| chk.pem_file("ca_cert", p));
    Some(XtaRemoteAccount {
        url,
        account: account?,
        client_cert,
        ca_cert,
        token,
    })
}

/// Metadata of messages an XTA connector writes; unset fields come from
/// the message's own XTA metadata or the document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XtaMetaConfig {
    /// `Originators/Author` (xta-mailbox only; the xta connector's author
    /// is its account).
    pub author: Option<XtaParty>,
    /// `Destinations/Reader`.
    pub reader: Option<XtaParty>,
    /// `Qualifier/Service`.
    pub service: Option<String>,
    /// `Qualifier/BusinessScenario` (undefined, free text).
    pub business_scenario: Option<String>,
    /// `Qualifier/MessageType` code.
    pub message_type: Option<String>,
    /// Its `listURI`.
    pub message_type_list_uri: Option<String>,
    /// Its `listVersionID`.
    pub message_type_list_version: Option<String>,
    /// `payloadSchema`.
    pub payload_schema: Option<String>,
}

/// Checked settings of an `xta` connector.
#[derive(Debug, Clone, PartialEq)]
pub struct XtaConnectorConfig {
    /// Remote server and account.
    pub remote: XtaRemoteAccount,
    /// Metadata.
    pub meta: XtaMetaConfig,
    /// Time between transport report polls (default 1 s).
    pub report_poll_interval: Duration,
    /// How long one attempt waits for a final transport report (default
    /// 10 s, shorter than `timeout`).
    pub report_wait: Duration,
    /// Done only on a final transport report (default false: a report
    /// still open after `max_wait` counts as delivered).
    pub require_final_report: bool,
}

/// Checked settings of an `xta-mailbox` connector.
#[derive(Debug, Clone, PartialEq)]
pub struct XtaMailboxConnectorConfig {
    /// Account (mailbox) name of an `xta` channel of this hub.
    pub mailbox: String,
    /// Metadata.
    pub meta: XtaMetaConfig,
}

fn meta(chk: &mut Checker<'_>, m: RawMeta) -> XtaMetaConfig {
    let author = party(
        chk,
        "author",
        m.author.as_ref(),
        "author_type",
        m.author_type.as_ref(),
    );
    let reader = party(
        chk,
        "reader",
        m.reader.as_ref(),
        "reader_type",
        m.reader_type.as_ref(),
    );
    if let Some(svc) = &m.service {
        if url::Url::parse(svc).is_err() {
            chk.error(
                "service",
                "`service` must be a URI like `urn:xoev-de:xbau:standard:xbau_2.3`",
            );
        }
    }
    if m.payload_schema
        .as_ref()
        .is_some_and(|p| p.trim().is_empty())
    {
        chk.error("payload_schema", "`payload_schema` must not be empty");
    }
    for (key, v) in [
        ("business_scenario", &m.business_scenario),
        ("message_type", &m.message_type),
        ("message_type_list_uri", &m.message_type_list_uri),
        ("message_type_list_version", &m.message_type_list_version),
    ] {
        if v.as_ref().is_some_and(|v| v.trim().is_empty()) {
            chk.error(key, format!("`{key}` must not be empty"));
        }
    }
    XtaMetaConfig {
        author,
        reader,
        service: m.service,
        business_scenario: m.business_scenario,
        message_type: m.message_type,
        message_type_list_uri: m.message_type_list_uri,
        message_type_list_version: m.message_type_list_version,
        payload_schema: m.payload_schema,
    }
}

fn parse_xta(chk: &mut Checker<'_>, table: toml::Table) -> Option<Arc<dyn ConnectorFactory>> {
    let c: RawXta = chk.deserialize(table)?;
    let timeout = chk.timeout();
    let token = match &c.auth {
        None => None,
        Some(a) => match chk.http_auth("auth", a)? {
            HttpAuth::Bearer { token } => Some(token),
            HttpAuth::Basic { .. } => {
                chk.error(
                    "auth",
                    "xta connectors support `type = \"bearer\"` auth only",
                );
                None
            }
        },
    };
    let remote = remote(
        chk,
        c.url.as_ref(),
        (c.account.as_ref(), c.account_type.as_ref()),
        c.client_cert.as_ref(),
        c.ca_cert.as_ref(),
        token,
    );
    let meta = meta(
        chk,
        RawMeta {
            author: None,
            author_type: None,
            reader: c.reader,
            reader_type: c.reader_type,
            service: c.service,
            business_scenario: c.business_scenario,
            message_type: c.message_type,
            message_type_list_uri: c.message_type_list_uri,
            message_type_list_version: c.message_type_list_version,
            payload_schema: c.payload_schema,
        },
    );
    let report_poll_interval = c.poll_interval.unwrap_or(Duration::from_secs(1));
    if report_poll_interval.is_zero() {
        chk.error("poll_interval", "`poll_interval` must be greater than 0");
    }
    let report_wait = c
        .max_wait
        .unwrap_or_else(|| Duration::from_secs(10).min(timeout / 2));
    if report_wait >= timeout {
        chk.error(
            "max_wait",
            format!(
                "`max_wait` must be shorter than the connector's `timeout` ({}s)",
                timeout.as_secs()
            ),
        );
    }
    if chk.has_errors() {
        return None;
    }
    Some(Arc::new(XtaConnectorConfig {
        remote: remote?,
        meta,
        report_poll_interval,
        report_wait,
        require_final_report: c.require_final_report.unwrap_or(false),
    }))
}

fn parse_mailbox(chk: &mut Checker<'_>, table: toml::Table) -> Option<Arc<dyn ConnectorFactory>> {
    let c: RawMailbox = chk.deserialize(table)?;
    let meta = meta(
        chk,
        RawMeta {
            author: c.author,
            author_type: c.author_type,
            reader: c.reader,
            reader_type: c.reader_type,
            service: c.service,
            business_scenario: c.business_scenario,
            message_type: c.message_type,
            message_type_list_uri: c.message_type_list_uri,
            message_type_list_version: c.message_type_list_version,
            payload_schema: c.payload_schema,
        },
    );
    let Some(mailbox) = c.mailbox else {
        chk.error(
            "",
            "an xta-mailbox connector needs `mailbox` (an account name of an xta channel)",
        );
        return None;
    };
    if let Err(m) = check_id(&mailbox) {
        chk.error("mailbox", format!("mailbox {m}"));
    }
    if chk.has_errors() {
        return None;
    }
    Some(Arc::new(XtaMailboxConnectorConfig { mailbox, meta }))
}

/// Client settings for a remote XTA account (certificates read now).
///
/// # Errors
///
/// An unreadable certificate file.
pub fn client_settings(
    r: &XtaRemoteAccount,
    timeout: Duration,
) -> Result<XtaClientSettings, BuildError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| BuildError(format!("reading {}: {e}", p.display())))
    };
    Ok(XtaClientSettings {
        endpoints: XtaEndpoints::single(r.url.clone()),
        author: PartyIdentifier::new(r.account.value.clone(), r.account.kind.clone()),
        client_cert_pem: match &r.client_cert {
            Some(c) => Some((read(&c.cert)?, read(&c.key)?)),
            None => None,
        },
        ca_cert_pem: r.ca_cert.as_deref().map(read).transpose()?,
        bearer_token: r.token.as_ref().map(|t| t.expose().to_owned()),
        timeout,
        max_answer_bytes: 16 << 20,
    })
}

fn meta_defaults(m: &XtaMetaConfig) -> MetaDefaults {
    let party = |p: &Option<XtaParty>| {
        p.as_ref()
            .map(|p| PartyIdentifier::new(p.value.clone(), p.kind.clone()))
    };
    MetaDefaults {
        author: party(&m.author),
        reader: party(&m.reader),
        sender: None,
        service: m.service.clone(),
        business_scenario: m.business_scenario.clone().map(BusinessScenario::Undefined),
        message_type: m.message_type.clone(),
        message_type_list_uri: m.message_type_list_uri.clone(),
        message_type_list_version: m.message_type_list_version.clone(),
        payload_schema: m.payload_schema.clone(),
        subject: None,
    }
}

impl ConnectorFactory for XtaConnectorConfig {
    fn build(&self, cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, BuildError> {
        let connector = XtaConnector::new(XtaConnectorSettings {
            client: client_settings(&self.remote, cx.timeout)?,
            meta: meta_defaults(&self.meta),
            report_wait: self.report_wait,
            report_poll_interval: self.report_poll_interval,
            require_final_report: self.require_final_report,
        })
        .map_err(BuildError::new)?;
        Ok(Arc::new(connector))
    }

    /// `reader` and `service` left unset can only come from the XTA
    /// metadata of a message an `xta` channel (server or poller) took in;
    /// in a hub without one, every delivery would go dead (`xta: no
    /// reader configured or known`), so `config check` refuses it.
    fn needs(&self) -> Vec<Need> {
        let mut needs = Vec::new();
        for (key, unset) in [
            ("reader", self.meta.reader.is_none()),
            ("service", self.meta.service.is_none()),
        ] {
            if unset {
                needs.push(Need {
                    resource: XTA_METADATA.to_string(),
                    key,
                    missing: format!(
                        "`{key}` is not set and no xta channel of this hub takes in XTA messages whose metadata could name one: every delivery would go dead; set `{key}`"
                    ),
                });
            }
        }
        needs
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The resource every `xta` channel (server and poller) provides: messages
/// with XTA transport metadata, from which an `xta` connector may take the
/// reader and service it was not given.
pub const XTA_METADATA: &str = "xta-metadata";

impl ConnectorFactory for XtaMailboxConnectorConfig {
    fn build(&self, cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, BuildError> {
        let mailboxes = Mailboxes::new(cx.store.clone()).map_err(BuildError::new)?;
        let server_identity = cx
            .resources
            .get(&format!("xta-account:{}", self.mailbox))
            .cloned()
            .ok_or_else(|| {
                BuildError(format!("no xta channel has an account `{}`", self.mailbox))
            })?;
        Ok(Arc::new(XtaMailboxConnector::new(
            mailboxes,
            XtaMailboxConnectorSettings {
                account: self.mailbox.clone(),
                meta: meta_defaults(&self.meta),
                server_identity,
            },
        )))
    }

    fn needs(&self) -> Vec<Need> {
        vec![Need {
            resource: format!("xta-account:{}", self.mailbox),
            key: "mailbox",
            missing: format!("no xta channel has an account `{}`", self.mailbox),
        }]
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
