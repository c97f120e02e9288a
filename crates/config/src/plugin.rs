//! The seam between the hub's configuration and the protocol crates.
//!
//! The config crate reads what every hub has — `[server]`, tokens,
//! tenants, routes, the common keys of a connector table (`type`,
//! `retry`, `max_concurrency`, `timeout`, `fachverfahren`) and of a channel
//! table (`type`, `description`). Everything else in `[connectors.<id>]`
//! and `[channels.<id>]` belongs to the protocol named by `type`:
//! its crate registers a [`ConnectorPlugin`] — the type name, a summary,
//! and a `parse` function that reads the rest of the table into the
//! crate's own typed settings and returns a [`ConnectorFactory`] — next to
//! the code that uses them. The composition root (the CLI) holds one list
//! of plugins ([`Plugins`]) and hands it to [`crate::HubConfig::load`].
//! A new protocol is one new crate plus one line in that list.
//!
//! Channels work the same way ([`ChannelPlugin`], [`ChannelFactory`]); a
//! channel's factory builds an [`Adapter`]: HTTP routes the hub mounts on
//! its listener and/or tasks it runs (pollers, subscribers) — one seam for
//! every kind of input.
//!
//! `parse` reports problems through a [`Checker`], which knows the file,
//! the key path and the line of every key, resolves paths against the
//! configuration directory and reads secrets, so a protocol crate's
//! errors look like all others: `tenants/x.toml:12: connectors.fv.url: …`.
//!
//! ```ignore
//! pub const PLUGIN: ConnectorPlugin = ConnectorPlugin {
//!     kind: "http",
//!     summary: "POST or PUT the document to a Fachverfahren's HTTP interface",
//!     parse: |chk, table| {
//!         let raw: RawHttp = chk.deserialize(table)?;   // deny_unknown_fields
//!         let settings = check(chk, raw)?;              // chk.error("url", …)
//!         Some(Arc::new(settings))                      // impl ConnectorFactory
//!     },
//! };
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use drehscheibe_model::Connector;
use drehscheibe_store::Store;

use crate::load::Ctx;
use crate::locate::{KeyPath, Source};
use crate::raw::RawSecret;
use crate::Secret;

/// A reference to a secret as written in the configuration: exactly one
/// of `env`, `file` (relative to the configuration directory) or `value`.
/// Resolve it with [`Checker::secret`].
pub type SecretRef = RawSecret;

/// A connector type offered by a protocol crate.
#[derive(Clone, Copy)]
pub struct ConnectorPlugin {
    /// The `type` value of its tables, e.g. `"http"`.
    pub kind: &'static str,
    /// One line for `drehscheibe config types` and the documentation.
    pub summary: &'static str,
    /// Read the type's own keys (the table without the common keys) and
    /// check them; `None` after reporting at least one problem.
    pub parse: fn(&mut Checker<'_>, toml::Table) -> Option<Arc<dyn ConnectorFactory>>,
}

impl fmt::Debug for ConnectorPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorPlugin")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What the composition root hands to a factory.
pub struct BuildContext<'a> {
    /// The tenant the connector belongs to.
    pub tenant: &'a str,
    /// The connector's id within the tenant.
    pub id: &'a str,
    /// The connector's `timeout` (one attempt).
    pub timeout: Duration,
    /// The hub store (adapter state spaces, see `drehscheibe_store::state`).
    pub store: Arc<dyn Store>,
    /// The hub's data directory.
    pub data_dir: &'a Path,
    /// What the channels provide ([`ChannelFactory::provides`]), by
    /// resource name: the connector's [`ConnectorFactory::needs`] are
    /// there (checked at load).
    pub resources: &'a BTreeMap<String, String>,
}

/// Why a connector could not be built (a certificate file that vanished
/// since the check, a client that cannot be set up).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(pub String);

impl BuildError {
    /// A build error from anything displayable.
    pub fn new(e: impl fmt::Display) -> Self {
        Self(e.to_string())
    }
}

/// A checked connector configuration that can build its connector.
pub trait ConnectorFactory: fmt::Debug + Send + Sync {
    /// Build the connector.
    ///
    /// # Errors
    ///
    /// [`BuildError`] with the reason.
    fn build(&self, cx: &BuildContext<'_>) -> Result<Arc<dyn Connector>, BuildError>;

    /// Things this connector needs some channel to provide (checked once
    /// the whole configuration is read), e.g. an `xta-mailbox` connector
    /// needs an XTA channel hosting its mailbox account.
    fn needs(&self) -> Vec<Need> {
        Vec::new()
    }

    /// The factory as `Any`, so tools and tests can look at the typed
    /// settings (`factory.as_any().downcast_ref::<HttpSettings>()`).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// A resource a connector needs from the rest of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// What is needed, e.g. `xta-account:kommune`.
    pub resource: String,
    /// The connector key the need comes from (for the error's location).
    pub key: &'static str,
    /// The error when nothing provides it.
    pub missing: String,
}

/// A channel (input) type offered by a protocol crate.
#[derive(Clone, Copy)]
pub struct ChannelPlugin {
    /// The `type` value of its tables, e.g. `"xta"`.
    pub kind: &'static str,
    /// One line for the documentation.
    pub summary: &'static str,
    /// Read the type's own keys (the table without `type` and
    /// `description`) and check them; `None` after reporting a problem.
    pub parse: fn(&mut Checker<'_>, toml::Table) -> Option<Arc<dyn ChannelFactory>>,
}

impl fmt::Debug for ChannelPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelPlugin")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What the composition root hands to a channel factory.
pub struct ChannelContext<'a> {
    /// The channel's id.
    pub id: &'a str,
    /// Where received messages go.
    pub intake: Arc<dyn drehscheibe_model::Intake>,
    /// The hub store (adapter state spaces).
    pub store: Arc<dyn Store>,
    /// The hub's data directory (spool and temporary files go below
    /// `<data_dir>/<channel type>/<channel id>`).
    pub data_dir: &'a Path,
    /// The hub's bearer tokens (channels that authenticate senders with
    /// them, like the HTTP inbox).
    pub tokens: Arc<drehscheibe_model::auth::TokenTable>,
}

/// What a channel contributes to the running hub: HTTP routes for the
/// shared listener and/or tasks that run until shutdown (pollers,
/// subscribers, followers).
#[derive(Default)]
pub struct Adapter {
    /// Routes merged into the hub's HTTP server.
    pub routes: Option<axum::Router>,
    /// Tasks the hub runs with its intake and shutdown token.
    pub tasks: Vec<Box<dyn drehscheibe_model::InputAdapter>>,
    /// What the running channel reports for `/metrics` and `/readyz`.
    pub status: Option<std::sync::Arc<dyn drehscheibe_model::health::ChannelStatus>>,
}

/// A checked channel configuration that can build its adapter.
pub trait ChannelFactory: fmt::Debug + Send + Sync {
    /// Build the channel's routes and tasks (keys are read now, so a bad
    /// key file stops the start).
    ///
    /// # Errors
    ///
    /// [`BuildError`] with the reason.
    fn build(&self, cx: &ChannelContext<'_>) -> Result<Adapter, BuildError>;

    /// Resources this channel provides to connectors (see
    /// [`ConnectorFactory::needs`]) with a value the connector may use,
    /// e.g. `xta-account:kommune` → the server identity of the XTA server
    /// hosting that mailbox.
    fn provides(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// URL path prefixes this channel's routes occupy on the shared
    /// listener; two channels must not share one.
    fn mounts(&self) -> Vec<String> {
        Vec::new()
    }

    /// The factory as `Any` (typed settings for tools and tests).
    fn as_any(&self) -> &dyn std::any::Any;
}

/// The connector and channel types a hub knows, by `type` name.
#[derive(Debug, Clone, Default)]
pub struct Plugins {
    connectors: BTreeMap<&'static str, ConnectorPlugin>,
    channels: BTreeMap<&'static str, ChannelPlugin>,
}

impl Plugins {
    /// No plugins (hub-level configuration only).
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a connector type.
    ///
    /// # Panics
    ///
    /// When two plugins claim the same type name: a programming error in
    /// the composition root's list, found by its first test run.
    #[must_use]
    #[allow(clippy::panic)]
    pub fn connector(mut self, plugin: ConnectorPlugin) -> Self {
        if self.connectors.insert(plugin.kind, plugin).is_some() {
            panic!("two connector plugins claim type {:?}", plugin.kind);
        }
        self
    }

    /// The plugin of connector type `kind`.
    pub fn connector_plugin(&self, kind: &str) -> Option<&ConnectorPlugin> {
        self.connectors.get(kind)
    }

    /// All connector types, sorted by name.
    pub fn connector_types(&self) -> impl Iterator<Item = &ConnectorPlugin> {
        self.connectors.values()
    }

    /// Add a channel type.
    ///
    /// # Panics
    ///
    /// When two plugins claim the same type name (see
    /// [`Plugins::connector`]).
    #[must_use]
    #[allow(clippy::panic)]
    pub fn channel(mut self, plugin: ChannelPlugin) -> Self {
        if self.channels.insert(plugin.kind, plugin).is_some() {
            panic!("two channel plugins claim type {:?}", plugin.kind);
        }
        self
    }

    /// The plugin of channel type `kind`.
    pub fn channel_plugin(&self, kind: &str) -> Option<&ChannelPlugin> {
        self.channels.get(kind)
    }

    /// All channel types, sorted by name.
    pub fn channel_types(&self) -> impl Iterator<Item = &ChannelPlugin> {
        self.channels.values()
    }
}

/// Reports problems of one table with file, key and line, and resolves
/// paths and secrets like the rest of the configuration.
pub struct Checker<'a> {
    cx: &'a mut Ctx,
    src: &'a Source,
    at: KeyPath,
    timeout: Duration,
    /// What the table is, for messages: `http connectors`.
    what: String,
    errors_before: usize,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(
        cx: &'a mut Ctx,
        src: &'a Source,
        at: KeyPath,
        timeout: Duration,
        what: String,
    ) -> Self {
        let errors_before = cx.error_count();
        Self {
            cx,
            src,
            at,
            timeout,
            what,
            errors_before,
        }
    }

    /// `key` (dotted, relative to the table; `a.b[2]` for an array
    /// element; empty for the table itself) as a key path.
    fn kp(&self, key: &str) -> KeyPath {
        let mut kp = self.at.clone();
        if key.is_empty() {
            return kp;
        }
        for part in key.split('.') {
            let (name, indices) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !name.is_empty() {
                kp = kp.key(name);
            }
            for idx in indices.split('[').filter(|s| !s.is_empty()) {
                match idx.trim_end_matches(']').parse::<usize>() {
                    Ok(n) => kp = kp.index(n),
                    Err(_) => kp = kp.key(idx.trim_end_matches(']')),
                }
            }
        }
        kp
    }

    /// Report a problem at `key` (see [`Checker`] for the key syntax).
    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let kp = self.kp(key);
        self.cx.err(self.src, &kp, message);
    }

    /// Whether anything was reported through this checker.
    pub fn has_errors(&self) -> bool {
        self.cx.error_count() > self.errors_before
    }

    /// The connector's `timeout` (one attempt), for settings bounded by it.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Deserialize the table into a plugin's raw settings (use
    /// `#[serde(deny_unknown_fields)]`). An unknown key is reported at that
    /// key and left out, so the rest of the table is still checked (every
    /// problem at once); any other serde error is reported at the key it
    /// names, or at the table.
    pub fn deserialize<T: serde::de::DeserializeOwned>(
        &mut self,
        mut table: toml::Table,
    ) -> Option<T> {
        loop {
            match toml::Value::Table(table.clone()).try_into::<T>() {
                Ok(v) => return Some(v),
                Err(e) => {
                    let msg = e.message().trim().to_string();
                    let unknown = msg
                        .strip_prefix("unknown field `")
                        .and_then(|rest| rest.split('`').next())
                        .filter(|k| table.contains_key(*k))
                        .map(str::to_string);
                    match unknown {
                        Some(key) => {
                            let what = self.what.clone();
                            self.error(&key, format!("`{key}` is not a setting of {what}"));
                            table.remove(&key);
                        }
                        None => {
                            self.error("", msg);
                            return None;
                        }
                    }
                }
            }
        }
    }

    /// A path as written (relative to the configuration directory);
    /// empty paths are errors.
    pub fn path(&mut self, key: &str, p: &Path) -> PathBuf {
        let kp = self.kp(key);
        self.cx.path(self.src, &kp, p)
    }

    /// A readable PEM file.
    pub fn pem_file(&mut self, key: &str, p: &Path) -> PathBuf {
        let kp = self.kp(key);
        self.cx.pem_file(self.src, &kp, p)
    }

    /// A readable private key file: PEM or a private JWK.
    pub fn key_file(&mut self, key: &str, p: &Path) -> PathBuf {
        let kp = self.kp(key);
        self.cx.key_file(self.src, &kp, p)
    }

    /// Resolve a secret (environment, file or value).
    pub fn secret(&mut self, key: &str, raw: &SecretRef) -> Option<Secret> {
        let kp = self.kp(key);
        self.cx.secret(self.src, &kp, raw)
    }

    /// HTTP authentication (`type = "bearer"` with `token`, or
    /// `type = "basic"` with `username` and `password`).
    pub fn http_auth(&mut self, key: &str, raw: &crate::AuthRef) -> Option<crate::HttpAuth> {
        let kp = self.kp(key);
        self.cx.http_auth(self.src, &kp, raw)
    }

    /// A TLS client certificate and key (PEM files).
    pub fn client_cert(&mut self, key: &str, raw: &crate::ClientCertRef) -> crate::ClientCert {
        crate::ClientCert {
            cert: self.pem_file(&format!("{key}.cert"), &raw.cert),
            key: self.pem_file(&format!("{key}.key"), &raw.key),
        }
    }

    /// A required `http(s)` URL with a host and without credentials
    /// (`None`: reported missing).
    pub fn service_url(&mut self, key: &str, url: Option<&String>) -> String {
        let kp = self.at.clone();
        self.cx.service_url(self.src, &kp, key, url)
    }
}

/// Check an e-mail address (`local@domain`, no display name).
///
/// # Errors
///
/// The reason, for [`Checker::error`].
pub fn check_address(s: &str) -> Result<(), String> {
    crate::load::check_address(s)
}

/// Check an identifier (letters, digits, `-`, `_`; see the config docs).
///
/// # Errors
///
/// The reason, for [`Checker::error`].
pub fn check_id(s: &str) -> Result<(), String> {
    crate::load::check_id(s)
}

/// `localhost` or a loopback IP address (plain-text protocols are allowed
/// only there).
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An HTTP header name (RFC 9110 token).
pub fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// A UUID in its hyphenated text form (FIT-Connect ids).
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}
