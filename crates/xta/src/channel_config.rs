//! Configuration and plugins of the two XTA channel types:
//!
//! * `type = "xta"` ([`SERVER_CHANNEL`]): the hub as XTA 2 server —
//!   contributes the XTA-WS routes at `/xta/<channel id>`; its accounts'
//!   mailboxes are what `xta-mailbox` connectors deliver into (each
//!   account is provided as `xta-account:<name>`);
//! * `type = "xta-poller"` ([`POLLER_CHANNEL`]): fetches from an
//!   account's mailbox on a remote XTA server — contributes the polling
//!   task.
//!
//! The keys are documented in `config/README.md`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use drehscheibe_config::plugin::{
    check_id, Adapter, BuildError, ChannelContext, ChannelFactory, ChannelPlugin, Checker,
    SecretRef,
};
use drehscheibe_config::{ByteSize, ClientCertRef, Secret};

use crate::connector_config::{remote, XtaRemoteAccount};
use serde::Deserialize;

use crate::model::PartyIdentifier;
use crate::poller::{XtaPoller, XtaPollerSettings};
use crate::server::{Account, XtaServer, XtaServerSettings};

/// The `xta` (server) channel plugin.
pub const SERVER_CHANNEL: ChannelPlugin = ChannelPlugin {
    kind: "xta",
    summary: "the hub as XTA 2 server: XTA-WS operations at /xta/<channel id>, hosted mailboxes",
    parse: parse_server,
};

/// The `xta-poller` channel plugin.
pub const POLLER_CHANNEL: ChannelPlugin = ChannelPlugin {
    kind: "xta-poller",
    summary: "fetch messages from an account's mailbox on a remote XTA server",
    parse: parse_poller,
};

// ------------------------------------------------------------------ server

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    accounts: Option<Vec<RawAccount>>,
    server_identity: Option<String>,
    max_message_bytes: Option<ByteSize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    name: String,
    identifier: String,
    identifier_type: Option<String>,
    identifier_category: Option<String>,
    identifier_name: Option<String>,
    #[serde(default)]
    tokens: Vec<SecretRef>,
    #[serde(default)]
    client_cert_sha256: Vec<String>,
}

/// Checked settings of an `xta` (server) channel.
#[derive(Debug, Clone, PartialEq)]
pub struct XtaChannelConfig {
    /// Identity in message ids and transport reports (default
    /// `drehscheibe`).
    pub server_identity: String,
    /// Largest accepted container, bytes (default and maximum 40 MB, the
    /// XTA limit).
    pub max_message_bytes: u64,
    /// The accounts.
    pub accounts: Vec<XtaAccountConfig>,
}

/// One account of an `xta` channel.
#[derive(Debug, Clone, PartialEq)]
pub struct XtaAccountConfig {
    /// Account name (also its mailbox name for `xta-mailbox` connectors).
    pub name: String,
    /// Party identifier value, e.g. `dvdv:01001000`.
    pub identifier: String,
    /// Identifier `type` attribute (default `xoev`).
    pub identifier_type: String,
    /// Identifier `category` attribute.
    pub identifier_category: Option<String>,
    /// Identifier `name` attribute.
    pub identifier_name: Option<String>,
    /// Bearer tokens.
    pub tokens: Vec<Secret>,
    /// SHA-256 fingerprints (hex) of accepted client certificates.
    pub client_cert_sha256: Vec<String>,
}

fn parse_server(chk: &mut Checker<'_>, table: toml::Table) -> Option<Arc<dyn ChannelFactory>> {
    let raw: RawServer = chk.deserialize(table)?;
    let server_identity = raw
        .server_identity
        .unwrap_or_else(|| "drehscheibe".to_owned());
    if server_identity.is_empty()
        || !server_identity
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        chk.error(
            "server_identity",
            "`server_identity` must be a name like `drehscheibe.example` (letters, digits, `-_.`)",
        );
    }
    const MAX_MESSAGE: u64 = 40_000_000;
    let max_message_bytes = raw.max_message_bytes.map_or(MAX_MESSAGE, |b| b.0);
    if max_message_bytes == 0 || max_message_bytes > MAX_MESSAGE {
        chk.error(
            "max_message_bytes",
            "`max_message_bytes` must be between 1 and 40 MB (the XTA limit)",
        );
    }
    let raw_accounts = raw.accounts.unwrap_or_default();
    if raw_accounts.is_empty() {
        chk.error(
            "accounts",
            "an xta channel needs at least one `[[accounts]]` entry",
        );
    }
    let mut accounts: Vec<XtaAccountConfig> = Vec::new();
    for (i, a) in raw_accounts.iter().enumerate() {
        let at = format!("accounts[{i}]");
        if let Err(m) = check_id(&a.name) {
            chk.error(&format!("{at}.name"), format!("account name {m}"));
        } else if accounts.iter().any(|x| x.name == a.name) {
            chk.error(&format!("{at}.name"), "account listed twice");
        }
        if a.identifier.trim().is_empty() {
            chk.error(
                &format!("{at}.identifier"),
                "a party identifier like `dvdv:01001000` is required",
            );
        } else if accounts.iter().any(|x| x.identifier == a.identifier) {
            chk.error(
                &format!("{at}.identifier"),
                format!("identifier `{}` belongs to another account", a.identifier),
            );
        }
        if a.tokens.is_empty() && a.client_cert_sha256.is_empty() {
            chk.error(&at, "an account needs `tokens` and/or `client_cert_sha256`");
        }
        let tokens: Vec<Secret> = a
            .tokens
            .iter()
            .enumerate()
            .filter_map(|(j, t)| chk.secret(&format!("{at}.tokens[{j}]"), t))
            .collect();
        let mut fingerprints = Vec::new();
        for (j, f) in a.client_cert_sha256.iter().enumerate() {
            let hex: String = f.chars().filter(|c| *c != ':').collect();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                chk.error(
                    &format!("{at}.client_cert_sha256[{j}]"),
                    "a certificate fingerprint is 64 hex digits (SHA-256), optionally with `:`",
                );
            }
            fingerprints.push(hex.to_ascii_lowercase());
        }
        accounts.push(XtaAccountConfig {
            name: a.name.clone(),
            identifier: a.identifier.trim().to_owned(),
            identifier_type: a
                .identifier_type
                .clone()
                .unwrap_or_else(|| "xoev".to_owned()),
            identifier_category: a.identifier_category.clone(),
            identifier_name: a.identifier_name.clone(),
            tokens,
            client_cert_sha256: fingerprints,
        });
    }
    if chk.has_errors() {
        return None;
    }
    Some(Arc::new(XtaChannelConfig {
        server_identity,
        max_message_bytes,
        accounts,
    }))
}

impl ChannelFactory for XtaChannelConfig {
    fn build(&self, cx: &ChannelContext<'_>) -> Result<Adapter, BuildError> {
        let accounts = self
            .accounts
            .iter()
            .map(|a| Account {
                name: a.name.clone(),
                identifier: PartyIdentifier {
                    value: a.identifier.clone(),
                    kind: a.identifier_type.clone(),
                    category: a.identifier_category.clone(),
                    name: a.identifier_name.clone(),
                },
                tokens: a.tokens.iter().map(|t| t.expose().to_owned()).collect(),
                cert_fingerprints: a.client_cert_sha256.clone(),
            })
            .collect();
        let mut settings = XtaServerSettings::new(cx.id, cx.data_dir.join("xta"), accounts);
        settings.path = format!("/xta/{}", cx.id);
        settings.server_identity = self.server_identity.clone();
        settings.max_message_bytes = self.max_message_bytes;
        let server = XtaServer::open(settings, cx.intake.clone(), cx.store.clone())
            .map_err(BuildError::new)?;
        Ok(Adapter {
            routes: Some(server.router()),
            tasks: Vec::new(),
            status: None,
        })
    }

    /// Each account's mailbox, with this server's identity (the
    /// `xta-mailbox` connector names the message ids it creates after it).
    fn provides(&self) -> Vec<(String, String)> {
        self.accounts
            .iter()
            .map(|a| {
                (
                    format!("xta-account:{}", a.name),
                    self.server_identity.clone(),
                )
            })
            .chain([(
                crate::connector_config::XTA_METADATA.to_string(),
                self.server_identity.clone(),
            )])
            .collect()
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

// ------------------------------------------------------------------ poller

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoller {
    url: Option<String>,
    account: Option<String>,
    account_type: Option<String>,
    client_cert: Option<ClientCertRef>,
    ca_cert: Option<PathBuf>,
    token: Option<SecretRef>,
    #[serde(default, with = "humantime_serde")]
    poll_interval: Option<Duration>,
    max_list_items: Option<u32>,
    services: Option<Vec<String>>,
    message_types: Option<Vec<String>>,
}

/// Checked settings of an `xta-poller` channel.
#[derive(Debug, Clone, PartialEq)]
pub struct XtaPollerConfig {
    /// Remote server and account.
    pub remote: XtaRemoteAccount,
    /// Time between polls (default 30 s).
    pub poll_interval: Duration,
    /// `maxListItems` per status list (default 50).
    pub max_list_items: u32,
    /// Only fetch these services (empty: all).
    pub services: Vec<String>,
    /// Only fetch these message type codes (empty: all).
    pub message_types: Vec<String>,
}

fn parse_poller(chk: &mut Checker<'_>, table: toml::Table) -> Option<Arc<dyn ChannelFactory>> {
    let raw: RawPoller = chk.deserialize(table)?;
    let token = raw.token.as_ref().and_then(|t| chk.secret("token", t));
    let remote = remote(
        chk,
        raw.url.as_ref(),
        (raw.account.as_ref(), raw.account_type.as_ref()),
        raw.client_cert.as_ref(),
        raw.ca_cert.as_ref(),
        token,
    );
    let poll_interval = raw.poll_interval.unwrap_or(Duration::from_secs(30));
    if poll_interval.is_zero() {
        chk.error("poll_interval", "`poll_interval` must be greater than 0");
    }
    let max_list_items = raw.max_list_items.unwrap_or(50);
    if max_list_items == 0 {
        chk.error("max_list_items", "`max_list_items` must be at least 1");
    }
    if chk.has_errors() {
        return None;
    }
    Some(Arc::new(XtaPollerConfig {
        remote: remote?,
        poll_interval,
        max_list_items,
        services: raw.services.unwrap_or_default(),
        message_types: raw.message_types.unwrap_or_default(),
    }))
}

impl ChannelFactory for XtaPollerConfig {
    fn build(&self, cx: &ChannelContext<'_>) -> Result<Adapter, BuildError> {
        let client =
            crate::connector_config::client_settings(&self.remote, Duration::from_secs(120))?;
        let poller = XtaPoller::new(XtaPollerSettings {
            channel: cx.id.to_owned(),
            client,
            poll_interval: self.poll_interval,
            max_list_items: self.max_list_items,
            services: self.services.clone(),
            message_types: self.message_types.clone(),
        })
        .map_err(BuildError::new)?;
        Ok(Adapter {
            routes: None,
            tasks: vec![Box::new(poller)],
            status: None,
        })
    }

    fn provides(&self) -> Vec<(String, String)> {
        vec![(
            crate::connector_config::XTA_METADATA.to_string(),
            String::new(),
        )]
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
