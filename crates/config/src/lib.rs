//! Configuration of the Drehscheibe hub.
//!
//! The hub is configured by one main TOML file (server, rule depot, input
//! channels, API tokens) plus one TOML file per tenant (a Kommune: its keys,
//! Stellen, connectors to its Fachverfahren and its routes per Leistung) in
//! the directory named by the main file's `tenant_dir`.
//!
//! [`HubConfig::load`] reads and validates everything and reports *all*
//! problems at once as [`ConfigErrors`], each with file, dotted key and line.
//! Relative paths anywhere in the configuration (tenant files included) are
//! resolved against the directory of the main file. See `config/README.md`
//! for the full key reference.
//!
//! Connector tables (`[connectors.<id>]`) belong to the protocol crates:
//! each registers a plugin ([`plugin`]) that reads and checks the keys of
//! its `type` and builds the connector; the composition root passes the
//! list of plugins to [`HubConfig::load`].
//!
//! ```no_run
//! # let plugins = drehscheibe_config::Plugins::new();
//! let hub = drehscheibe_config::HubConfig::load("config/drehscheibe.toml".as_ref(), &plugins)
//!     .unwrap_or_else(|errors| panic!("{errors}"));
//! let kommune = hub.tenant_by_key("09162000").expect("known AGS");
//! let route = kommune.route("99050012104000");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use drehscheibe_model::auth::{Principal, Role, TokenTable};
use serde::{Deserialize, Serialize};

pub mod edit;
mod error;
mod load;
mod locate;
pub mod plugin;
mod raw;
mod retry;
mod secret;

pub use error::{ConfigError, ConfigErrors};
pub use load::{disk_digest, relative_path, Overrides};
pub use plugin::Plugins;
pub use raw::{AuthType, ByteSize, RawAuth as AuthRef, RawClientCert as ClientCertRef};
pub use retry::RetryPolicy;
pub use secret::{redact_inline_secrets, Secret, SecretSource, SecretString};

/// The whole, validated hub configuration.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Absolute path of the main file.
    pub main_file: PathBuf,
    /// Absolute path of the tenant directory (`tenant_dir`).
    pub tenant_dir: PathBuf,
    /// Every file loaded, main file first, then the tenant files by path,
    /// with the text loaded (what [`HubConfig::digest`] covers).
    pub sources: Vec<(PathBuf, String)>,
    /// Hex SHA-256 over all configuration files (main file and tenant
    /// files, sorted by path; each contributes its path relative to the
    /// main file's directory and its text). Identifies the config version.
    pub digest: String,
    /// HTTP server and process settings.
    pub server: ServerConfig,
    /// Where the rule depot lives.
    pub rules: RulesConfig,
    /// Input channels, sorted by id.
    pub channels: Vec<ChannelConfig>,
    /// API tokens, sorted by name.
    pub tokens: Vec<TokenConfig>,
    /// Tenants (Kommunen), sorted by file path.
    pub tenants: Vec<TenantConfig>,
    /// `[retention]`: what the sweeper deletes when (see
    /// [`RetentionConfig`]).
    pub retention: RetentionConfig,
    /// `[store]`: where the hub's state lives (see [`StoreConfig`]).
    pub store: StoreConfig,
    /// `[scanner]`: the malware scanner; `None` when the section is
    /// absent (content is not scanned).
    pub scanner: Option<ScannerConfig>,
    /// `[console]`: the web console and the configuration API.
    pub console: ConsoleConfig,
}

/// `[console]` of the main file (ADR 0021).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// Whether the console and the configuration API may write tenant
    /// files (default `true`). Switch it off where several instances
    /// read configuration directories of their own (files rolled out by
    /// deployment): one node's edit would not reach the others.
    pub editable: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self { editable: true }
    }
}

/// A channel's or tenant's `scan` key (ADR 0017).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanMode {
    /// Scan; nothing goes on without a clean verdict (needs `[scanner]`).
    Required,
    /// Do not scan (e.g. a channel whose sender scans with a certified
    /// product of its own, documented in the operator's security concept).
    Off,
}

/// `[scanner]` of the main file (ADR 0017): ClamAV's daemon. With it,
/// every payload, attachment and output is scanned, and nothing is
/// delivered without a clean verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerConfig {
    /// clamd's socket: `unix:/run/clamav/clamd.ctl` or `tcp://host:3310`.
    pub address: String,
    /// Limit of each step of a scan (default 60 s).
    pub timeout: Duration,
    /// Pause before a message whose scan gave no verdict is scanned
    /// again (default 30 s).
    pub retry: Duration,
    /// Base64 text in XML (element text) and JSON (string values) of at
    /// least this many characters is decoded and scanned as well (default
    /// 1024).
    pub base64_min: usize,
}

/// `[store]` of the main file. `type = "sled"` (the default) keeps the
/// state in `<data_dir>/store` of this one process; `type = "postgres"`
/// keeps it in a PostgreSQL database that several hub instances share
/// (ADR 0016).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreConfig {
    /// The embedded store (one process).
    #[default]
    Sled,
    /// A shared PostgreSQL database.
    Postgres(PostgresConfig),
}

/// `[store] type = "postgres"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// Connection URL (`postgres://user@host:5432/db`), a secret like every
    /// other (`{ env = "…" }`, `{ file = "…" }`), since it may carry a
    /// password.
    pub url: Secret,
    /// Connections per instance (default 16).
    pub pool_size: usize,
    /// Schema holding the hub's tables (default `public`); one database
    /// may hold several hubs (or test runs) in separate schemas.
    pub schema: String,
    /// This instance's name among the hub's instances, unique per
    /// instance (default: host name and listen port). Leases of jobs and
    /// channel tasks are held under it; a restarted instance with the same
    /// name takes its own leftover job leases back at once.
    pub instance: Option<String>,
    /// Time to wait for a connection (default 5 s): a database that is
    /// away makes requests fail with 503 after this, not hang.
    pub connect_timeout: Duration,
    /// Upper bound for one statement (default 30 s).
    pub statement_timeout: Duration,
}

/// Default `[store] pool_size`.
pub const DEFAULT_PG_POOL_SIZE: usize = 16;

/// `[retention]` of the main file: the hub's retention durations and the
/// sweeper's pace. Tenants may override the durations
/// ([`TenantConfig::retention`]); see `docs/decisions/0015-retention.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Whether the sweeper runs at all (default `true`). `false` keeps
    /// everything forever, as before retention existed.
    pub enabled: bool,
    /// The hub's durations (tenants without their own).
    pub default: RetentionSpans,
    /// Time between two sweeps (default 1 min).
    pub interval: Duration,
    /// Messages purged per store transaction (default 500, at most
    /// 10,000).
    pub batch: usize,
}

/// Retention durations; `None` = keep forever (`"off"`): the store's
/// own [`drehscheibe_store::Retention`] (defaults 30 days of payloads,
/// 365 days of records, failed messages until handled), so the sweeper
/// hands the configured values to the store as they are.
pub use drehscheibe_store::Retention as RetentionSpans;

/// A tenant's `[retention]`: each key that is set replaces the hub's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOverride {
    /// `payloads`, if the tenant sets it (`Some(None)` = `"off"`).
    pub payloads: Option<Option<Duration>>,
    /// `records`, if set.
    pub records: Option<Option<Duration>>,
    /// `failed`, if set.
    pub failed: Option<Option<Duration>>,
}

impl RetentionOverride {
    /// The durations of a tenant: its own where set, else `default`.
    pub fn over(&self, default: &RetentionSpans) -> RetentionSpans {
        RetentionSpans {
            payloads: self.payloads.unwrap_or(default.payloads),
            records: self.records.unwrap_or(default.records),
            failed: self.failed.unwrap_or(default.failed),
        }
    }

    /// Whether the tenant overrides nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            default: RetentionSpans::default(),
            interval: Duration::from_secs(60),
            batch: 500,
        }
    }
}

/// The largest `[retention] batch`.
pub const MAX_RETENTION_BATCH: usize = 10_000;

/// `[server]` of the main file.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Listen address (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// Data directory (store, blobs). Default `data`; a relative path is
    /// resolved against the main file's directory.
    pub data_dir: PathBuf,
    /// Largest accepted document payload (default 16 MiB).
    pub max_payload_bytes: u64,
    /// Largest accepted single attachment (default 256 MiB).
    pub max_attachment_bytes: u64,
    /// Worker tasks for rule processing and delivery (default 8).
    pub workers: usize,
    /// Time granted to in-flight work on shutdown (default 10 s).
    pub shutdown_grace: Duration,
    /// Time budget of routing one message: parsing, recognition and
    /// transforms (default 30 s, at most 300 s — half the 600 s job
    /// lease). Over it the message ends `dead` with the reason.
    pub route_budget: Duration,
    /// Memory budget for documents in flight (default 1 GiB): routing a
    /// message reserves its estimated peak memory (payload × 10 for XML,
    /// × 32 for JSON) and waits while the budget is taken; a message
    /// whose estimate exceeds the whole budget ends `dead`.
    pub document_memory: u64,
    /// Log output format (default text).
    pub log_format: LogFormat,
    /// Most client connections served at once (default 512); further
    /// clients wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Time a client gets to send a complete HTTP/1.1 request head
    /// (default 15 s); the timer also runs while a keep-alive connection
    /// waits for its next request.
    pub header_read_timeout: Duration,
    /// Longest wait for the next piece of a request body (default 30 s).
    pub body_read_timeout: Duration,
    /// A connection with no request in progress and no bytes moving is
    /// closed after this long (default 60 s).
    pub idle_timeout: Duration,
    /// TLS for the listener (`[server] tls`); `None` = plain HTTP.
    pub tls: Option<ServerTls>,
}

/// `[server] tls`: the listener speaks HTTPS (HTTP/1.1 and HTTP/2 via
/// ALPN), optionally asking for client certificates (mTLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTls {
    /// Server certificate chain (PEM, leaf first; checked to exist at load).
    pub cert: PathBuf,
    /// Private key of the server certificate (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) client certificates are verified against;
    /// `None` = no client certificates are requested.
    pub client_ca: Option<PathBuf>,
    /// Whether a client certificate is required (only with `client_ca`).
    pub client_auth: ClientAuth,
}

/// Whether the TLS listener requires a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// A client certificate is asked for and verified when presented, but
    /// a client without one may still connect (bearer tokens then apply).
    #[default]
    Optional,
    /// The handshake fails without a valid client certificate.
    Required,
}

/// The longest `[server] route_budget` accepted: half the job lease, so a
/// routing step is always settled long before its lease could expire.
pub const MAX_ROUTE_BUDGET: Duration = Duration::from_secs(300);

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            max_payload_bytes: 16 << 20,
            max_attachment_bytes: 256 << 20,
            workers: 8,
            shutdown_grace: Duration::from_secs(10),
            route_budget: Duration::from_secs(30),
            document_memory: 1 << 30,
            log_format: LogFormat::Text,
            max_connections: 512,
            header_read_timeout: Duration::from_secs(15),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            tls: None,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[rules]` of the main file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesConfig {
    /// Rule depot directory (default `rules` beside the main file).
    pub depot: PathBuf,
    /// The XML catalog (OASIS XML Catalogs) that maps the schema URIs
    /// rules declare, and the imports inside schemas, to local files
    /// (`schemas/catalog.xml` in a checkout). `None`: no catalog, so only
    /// schemas inside rule packages can be used. The hub never fetches a
    /// schema from the network.
    pub catalog: Option<PathBuf>,
}

/// An input channel (`[channels.<id>]`).
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// Channel id, used in URLs and by sender tokens.
    pub id: String,
    /// Free text.
    pub description: Option<String>,
    /// The channel type (`type = "…"`), named by its plugin.
    pub kind: String,
    /// `scan = "required" | "off"`: whether what this channel takes in is
    /// scanned at intake and before routing (`None`: not set — required
    /// once a `[scanner]` is configured).
    pub scan: Option<ScanMode>,
    /// The type's own settings, checked by its plugin, which build the
    /// channel's routes and tasks (see [`plugin`]).
    pub factory: Arc<dyn plugin::ChannelFactory>,
}

/// What `channels` provide to connectors, by resource name.
pub(crate) fn resources_of(channels: &[ChannelConfig]) -> BTreeMap<String, String> {
    channels.iter().flat_map(|c| c.factory.provides()).collect()
}

impl PartialEq for ChannelConfig {
    /// Equal id, description, type and settings (settings compared by
    /// their `Debug` form, which shows no secret).
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.description == other.description
            && self.kind == other.kind
            && self.scan == other.scan
            && format!("{:?}", self.factory) == format!("{:?}", other.factory)
    }
}

/// An API token (`[tokens.<name>]`).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenConfig {
    /// Token name (shown in audit logs, never the secret).
    pub name: String,
    /// The bearer token itself.
    pub secret: Secret,
    /// What the token may do.
    pub role: Role,
}

/// A tenant: one Kommune (one file in the tenant directory).
#[derive(Debug, Clone, PartialEq)]
pub struct TenantConfig {
    /// Tenant id (used in URLs, tokens and delegations).
    pub id: String,
    /// Display name, e.g. `Stadt Musterstadt`.
    pub name: String,
    /// Amtlicher Gemeindeschlüssel, 8 digits.
    pub ags: Option<String>,
    /// Amtlicher Regionalschlüssel, 12 digits.
    pub ars: Option<String>,
    /// Further keys that identify this tenant in incoming messages
    /// (e.g. a FIT-Connect destination id, a Leitweg-ID).
    pub org_ids: Vec<String>,
    /// Organisational units, sorted by id.
    pub stellen: Vec<Stelle>,
    /// Delivery endpoints, sorted by id.
    pub connectors: Vec<ConnectorConfig>,
    /// One route per Leistung, in file order.
    pub routes: Vec<RouteConfig>,
    /// The tenant's `[retention]` overrides.
    pub retention: RetentionOverride,
    /// `scan = "required" | "off"`: whether this tenant's output
    /// documents are scanned before delivery (`None`: not set — required
    /// once a `[scanner]` is configured). Input is scanned by its channel's
    /// setting: at intake the tenant is not known yet.
    pub scan: Option<ScanMode>,
    /// The tenant's file.
    pub source: PathBuf,
}

/// A Stelle (organisational unit) of a tenant (`[stellen.<id>]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stelle {
    /// Stelle id, referenced by routes.
    pub id: String,
    /// Display name, e.g. `Gewerbeamt`.
    pub name: String,
    /// Contact address.
    pub email: Option<String>,
}

/// A delivery endpoint of a tenant (`[connectors.<id>]`).
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// Connector id, unique within the tenant.
    pub id: String,
    /// Product name of the Fachverfahren (informational).
    pub fachverfahren: Option<String>,
    /// Retry behaviour on retryable failures.
    pub retry: RetryPolicy,
    /// Deliveries in flight at once (default 4).
    pub max_concurrency: usize,
    /// Timeout of one delivery attempt (default 30 s).
    pub timeout: Duration,
    /// The connector type (`type = "…"`), named by its plugin.
    pub kind: String,
    /// The type's own settings, checked by its plugin, which build the
    /// connector (see [`plugin`]).
    pub factory: Arc<dyn plugin::ConnectorFactory>,
}

impl PartialEq for ConnectorConfig {
    /// Equal common settings and equal type settings (compared by their
    /// `Debug` form, which shows no secret).
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.fachverfahren == other.fachverfahren
            && self.retry == other.retry
            && self.max_concurrency == other.max_concurrency
            && self.timeout == other.timeout
            && self.kind == other.kind
            && format!("{:?}", self.factory) == format!("{:?}", other.factory)
    }
}

/// Authentication of an HTTP connector.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: Secret,
    },
    /// HTTP Basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
}

/// TLS client certificate and key (PEM files, checked to exist at load).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// Certificate chain file.
    pub cert: PathBuf,
    /// Private key file.
    pub key: PathBuf,
}

/// How a tenant handles one Leistung (`[[routes]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RouteConfig {
    /// LeiKa key, 14 digits.
    pub leistung: String,
    /// Free text (e.g. the Leistung's name).
    pub description: Option<String>,
    /// Rule to apply. `Some` exactly when `delegate_to` is `None`.
    pub rule: Option<RuleSelector>,
    /// Zuständige Stelle (an id from the tenant's `stellen`).
    pub stelle: Option<String>,
    /// Output role (as produced by the rule) → connector id of this tenant.
    /// Empty when delegating.
    pub targets: BTreeMap<String, String>,
    /// "Umlenken": hand this Leistung to another tenant (a neighbour
    /// Kommune acting as shared service), whose own route then applies.
    pub delegate_to: Option<String>,
    /// Tenant parameters for the rule (TOML scalars as strings).
    pub params: BTreeMap<String, String>,
    /// Line of the route's `rule` key in the tenant file (for messages).
    pub source_line: Option<usize>,
    /// The agreed throughput time (`sla = { within = "5m", percent = 95 }`:
    /// 95 % of the messages delivered within 5 minutes of receipt).
    pub sla: Option<SlaTarget>,
}

/// A service level: `percent` % of the messages delivered within `within`
/// of their receipt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlaTarget {
    pub within: Duration,
    pub percent: f64,
}

/// A rule id plus a version requirement, written `id@req`
/// (e.g. `gewerbeanmeldung@^1.0` or `gewerbeanmeldung@=1.2.0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSelector {
    /// Rule id in the depot.
    pub id: String,
    /// Acceptable versions.
    pub version: semver::VersionReq,
}

impl RuleSelector {
    /// Does the rule `id` in `version` satisfy this selector?
    pub fn matches(&self, id: &str, version: &semver::Version) -> bool {
        self.id == id && self.version.matches(version)
    }
}

impl fmt::Display for RuleSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.version)
    }
}

impl FromStr for RuleSelector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (id, req) = s.split_once('@').ok_or_else(|| {
            format!(
                "rule `{s}` must be written `id@version-requirement`, e.g. `gewerbeanmeldung@^1`"
            )
        })?;
        load::check_id(id).map_err(|m| format!("rule id `{id}`: {m}"))?;
        let version = semver::VersionReq::parse(req.trim())
            .map_err(|e| format!("version requirement `{req}`: {e}"))?;
        Ok(Self {
            id: id.to_string(),
            version,
        })
    }
}

/// A route after following a delegation: which tenant serves the Leistung
/// and with which route.
#[derive(Debug, Clone, Copy)]
pub struct ResolvedRoute<'a> {
    /// The tenant the message was addressed to.
    pub requested_by: &'a TenantConfig,
    /// The tenant that handles it (differs when delegated).
    pub tenant: &'a TenantConfig,
    /// The handling tenant's route.
    pub route: &'a RouteConfig,
    /// The rule to apply.
    pub rule: &'a RuleSelector,
}

impl ResolvedRoute<'_> {
    /// `true` if the Leistung was handed to another tenant.
    pub fn is_delegated(&self) -> bool {
        self.requested_by.id != self.tenant.id
    }
}

impl HubConfig {
    /// Load and validate the configuration rooted at `main_file`.
    ///
    /// Returns every problem found (syntax, unknown keys, missing files,
    /// unresolvable secrets, dangling references, …) at once. Connector
    /// tables are read by the plugin registered for their `type`.
    pub fn load(main_file: &Path, plugins: &Plugins) -> Result<HubConfig, ConfigErrors> {
        load::load(main_file, plugins, &Overrides::new())
    }

    /// [`HubConfig::load`] with some files' texts given instead of read:
    /// the check of a candidate change before anything is written (ADR
    /// 0021). An override in the tenant directory that is not on disk is
    /// loaded as a new tenant file.
    pub fn load_with(
        main_file: &Path,
        plugins: &Plugins,
        overrides: &Overrides,
    ) -> Result<HubConfig, ConfigErrors> {
        load::load(main_file, plugins, overrides)
    }

    /// The main file's folder: configuration paths are relative to it.
    pub fn base_dir(&self) -> &Path {
        self.main_file.parent().unwrap_or(Path::new("/"))
    }

    /// Tenants whose output documents are not scanned (`scan = "off"`).
    pub fn tenants_scan_off(&self) -> std::collections::HashSet<String> {
        self.tenants
            .iter()
            .filter(|t| t.scan == Some(ScanMode::Off))
            .map(|t| t.id.clone())
            .collect()
    }

    /// What the channels provide to connectors, by resource name (see
    /// [`plugin::ChannelFactory::provides`]).
    pub fn channel_resources(&self) -> BTreeMap<String, String> {
        resources_of(&self.channels)
    }

    /// The tenant with this id.
    pub fn tenant(&self, id: &str) -> Option<&TenantConfig> {
        self.tenants.iter().find(|t| t.id == id)
    }

    /// The tenant identified by an AGS, an ARS or an org id.
    ///
    /// Exact matches win. Otherwise a 12-digit ARS also finds a tenant that
    /// only has an AGS (AGS = ARS\[0..5\] + ARS\[9..12\]), and an 8-digit
    /// AGS finds a tenant that only has an ARS.
    pub fn tenant_by_key(&self, key: &str) -> Option<&TenantConfig> {
        if key.is_empty() {
            return None;
        }
        if let Some(t) = self.tenants.iter().find(|t| {
            t.ags.as_deref() == Some(key)
                || t.ars.as_deref() == Some(key)
                || t.org_ids.iter().any(|o| o == key)
        }) {
            return Some(t);
        }
        if let Some(ags) = ags_of_ars(key) {
            if let Some(t) = self
                .tenants
                .iter()
                .find(|t| t.ars.is_none() && t.ags.as_deref() == Some(ags.as_str()))
            {
                return Some(t);
            }
        }
        if is_digits(key, 8) {
            return self.tenants.iter().find(|t| {
                t.ags.is_none() && t.ars.as_deref().and_then(ags_of_ars).as_deref() == Some(key)
            });
        }
        None
    }

    /// The channel with this id.
    pub fn channel(&self, id: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.id == id)
    }

    /// The route that handles `leistung` for `tenant_id`, following a
    /// delegation ("umlenken") to the serving tenant. `None` if the tenant
    /// or route does not exist (or a hand-built config has a broken chain).
    pub fn resolve_route(&self, tenant_id: &str, leistung: &str) -> Option<ResolvedRoute<'_>> {
        let requested_by = self.tenant(tenant_id)?;
        let mut tenant = requested_by;
        // A loaded config allows one hop; hand-built ones are bounded too.
        for _ in 0..=self.tenants.len() {
            let route = tenant.route(leistung)?;
            match (&route.delegate_to, &route.rule) {
                (Some(next), _) => tenant = self.tenant(next)?,
                (None, Some(rule)) => {
                    return Some(ResolvedRoute {
                        requested_by,
                        tenant,
                        route,
                        rule,
                    })
                }
                (None, None) => return None,
            }
        }
        None
    }

    /// Token table for the HTTP API (tokens stored as digests).
    pub fn token_table(&self) -> TokenTable {
        let mut table = TokenTable::new();
        for t in &self.tokens {
            table.insert(
                t.secret.expose(),
                Principal {
                    name: t.name.clone(),
                    role: t.role.clone(),
                },
            );
        }
        table
    }

    /// Cross-check every non-delegating route against the rule depot.
    ///
    /// `exists` gets the route's rule selector and parameters and returns
    /// `Err(message)` if no matching rule exists or a required parameter is
    /// missing. All failures are returned, each pointing at the route's
    /// `rule` key in its tenant file.
    pub fn check_rule_refs(
        &self,
        exists: impl Fn(&RuleSelector, &BTreeMap<String, String>) -> Result<(), String>,
    ) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        for t in &self.tenants {
            for (i, r) in t.routes.iter().enumerate() {
                if let Some(rule) = &r.rule {
                    if let Err(message) = exists(rule, &r.params) {
                        errors.push(ConfigError {
                            file: t.source.clone(),
                            key: format!("tenants[{}].routes[{i}].rule", t.id),
                            line: r.source_line,
                            message,
                        });
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

impl TenantConfig {
    /// The route for a LeiKa key.
    pub fn route(&self, leistung: &str) -> Option<&RouteConfig> {
        self.routes.iter().find(|r| r.leistung == leistung)
    }

    /// The connector with this id.
    pub fn connector(&self, id: &str) -> Option<&ConnectorConfig> {
        self.connectors.iter().find(|c| c.id == id)
    }

    /// The Stelle with this id.
    pub fn stelle(&self, id: &str) -> Option<&Stelle> {
        self.stellen.iter().find(|s| s.id == id)
    }
}

pub(crate) fn is_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// AGS derived from a 12-digit ARS: Land, Regierungsbezirk, Kreis
/// (positions 1–5) plus Gemeinde (positions 10–12).
pub fn ags_of_ars(ars: &str) -> Option<String> {
    if !is_digits(ars, 12) {
        return None;
    }
    let head = ars.get(0..5)?;
    let tail = ars.get(9..12)?;
    Some(format!("{head}{tail}"))
}
