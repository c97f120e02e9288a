//! Reading, converting and validating the configuration files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use drehscheibe_model::auth::Role;
use sha2::{Digest, Sha256};

use crate::locate::{KeyPath, Source};
use crate::plugin::{Checker, Plugins};
use crate::raw::{
    AuthType, RawAuth, RawChannel, RawConnector, RawMain, RawRetention, RawRetry, RawRoute,
    RawScanner, RawSecret, RawServer, RawStore, RawTenant, RawToken, RoleName,
};
use crate::{
    ags_of_ars, is_digits, ChannelConfig, ConfigError, ConfigErrors, ConnectorConfig, HttpAuth,
    HubConfig, PostgresConfig, RetentionConfig, RetentionOverride, RetentionSpans, RetryPolicy,
    RouteConfig, RuleSelector, RulesConfig, ScanMode, ScannerConfig, Secret, SecretSource,
    SecretString, ServerConfig, Stelle, StoreConfig, TenantConfig, TokenConfig,
    DEFAULT_PG_POOL_SIZE, MAX_RETENTION_BATCH,
};

/// Check an identifier (channel, token, tenant, connector, Stelle, target
/// role, rule id).
pub(crate) fn check_id(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 64 {
        return Err("must not be longer than 64 characters".into());
    }
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.') {
        return Err(format!(
            "`{s}` is not a valid id: use letters, digits, `-`, `_` and `.`, starting with a letter or digit"
        ));
    }
    Ok(())
}

/// Basic mail address syntax: `local@domain` or `Name <local@domain>`.
pub(crate) fn check_address(s: &str) -> Result<(), String> {
    let addr = match (s.find('<'), s.ends_with('>')) {
        (Some(open), true) => s.get(open + 1..s.len() - 1).unwrap_or(""),
        (None, false) => s,
        _ => return Err(format!("`{s}` is not a valid mail address")),
    };
    let bad = || Err(format!("`{s}` is not a valid mail address"));
    if addr
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
    {
        return bad();
    }
    let Some((local, domain)) = addr.split_once('@') else {
        return bad();
    };
    if local.is_empty()
        || domain.is_empty()
        || domain.contains('@')
        || domain.split('.').any(str::is_empty)
    {
        return bad();
    }
    Ok(())
}

fn read_text(path: &Path) -> Result<String, String> {
    let bytes = fs::read(path).map_err(|e| format!("cannot read file: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "file is not valid UTF-8".to_string())
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn deserialize<T: serde::de::DeserializeOwned>(
    src: &Source,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    src.doc()?;
    match toml::from_str::<T>(&src.text) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(src.error_at_span(e.message(), e.span()));
            None
        }
    }
}

fn digest(base: &Path, files: &[&Source]) -> String {
    digest_of(
        base,
        files.iter().map(|f| (f.path.as_path(), f.text.as_str())),
    )
}

/// `path` relative to `base` (the main file's folder), `/`-separated: how
/// the digest, the configuration history and the API name files.
pub fn relative_path(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// [`HubConfig::digest`] over `(path, text)` pairs.
fn digest_of<'a>(base: &Path, files: impl Iterator<Item = (&'a Path, &'a str)>) -> String {
    let mut files: Vec<(&Path, &str)> = files.collect();
    files.sort_by(|a, b| a.0.cmp(b.0));
    let mut h = Sha256::new();
    for (path, text) in files {
        let rel = relative_path(base, path);
        h.update((rel.len() as u64).to_be_bytes());
        h.update(rel.as_bytes());
        h.update((text.len() as u64).to_be_bytes());
        h.update(text.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The digest the files on disk would load with ([`HubConfig::digest`]),
/// computed from their bytes alone: the main file and the `*.toml` files
/// of `tenant_dir` (as loading lists them). Nothing is parsed, so it costs
/// a read of each file — the cheap first look of a reload.
///
/// # Errors
///
/// A file or the folder cannot be read, or is not UTF-8 (a full load
/// then reports it properly).
pub fn disk_digest(main_file: &Path, tenant_dir: &Path) -> std::io::Result<String> {
    let main_abs = std::path::absolute(main_file)?;
    let base = main_abs
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let utf8 = |b: Vec<u8>| {
        String::from_utf8(b).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    };
    let mut files = vec![(main_abs.clone(), utf8(fs::read(&main_abs)?)?)];
    let mut listed = Vec::new();
    match fs::read_dir(tenant_dir) {
        Ok(entries) => {
            for entry in entries {
                let entry = entry?;
                let path = entry.path();
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                let is_toml = path.extension().is_some_and(|x| x == "toml");
                if hidden || !is_toml || path == main_abs {
                    continue;
                }
                if fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                    listed.push(path);
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    for path in listed {
        let text = utf8(fs::read(&path)?)?;
        files.push((path, text));
    }
    Ok(digest_of(
        &base,
        files.iter().map(|(p, t)| (p.as_path(), t.as_str())),
    ))
}

fn single(file: &Path, message: String) -> ConfigErrors {
    ConfigErrors(vec![ConfigError {
        file: file.to_path_buf(),
        key: String::new(),
        line: None,
        message,
    }])
}

/// A tenant file on its way through loading.
struct TenantFile {
    src: Source,
    /// Id as written in the file (or the file stem if unreadable).
    id: String,
    config: Option<TenantConfig>,
}

/// Texts that stand in for files on disk while loading (see
/// [`HubConfig::load_with`]), by absolute path: `Some(text)` replaces or
/// adds a file, `None` removes it.
pub type Overrides = std::collections::BTreeMap<PathBuf, Option<String>>;

pub(crate) fn load(
    main_file: &Path,
    plugins: &Plugins,
    overrides: &Overrides,
) -> Result<HubConfig, ConfigErrors> {
    let main_abs = std::path::absolute(main_file)
        .map_err(|e| single(main_file, format!("cannot resolve path: {e}")))?;
    let base = main_abs
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let read_text = |path: &Path| -> Result<String, String> {
        match overrides.get(path) {
            Some(Some(text)) => Ok(text.clone()),
            Some(None) => Err("file is removed".to_string()),
            None => read_text(path),
        }
    };
    let text = read_text(&main_abs).map_err(|m| single(&main_abs, m))?;

    let mut cx = Ctx {
        errors: Vec::new(),
        base: base.clone(),
        plugins: plugins.clone(),
    };
    let (main_src, e) = Source::parse(&main_abs, text);
    cx.errors.extend(e);
    let raw_main: Option<RawMain> = deserialize(&main_src, &mut cx.errors);

    // Tenant directory: from the typed file, else from the syntax tree (so a
    // type error elsewhere in the main file still lets tenants be checked).
    let written_dir = raw_main
        .as_ref()
        .and_then(|m| m.tenant_dir.clone())
        .or_else(|| {
            main_src
                .doc()
                .and_then(|d| d.get("tenant_dir"))
                .and_then(|i| i.as_str())
                .map(PathBuf::from)
        });
    let explicit = written_dir.is_some();
    let tenant_dir = resolve(
        &base,
        &written_dir.unwrap_or_else(|| PathBuf::from("tenants")),
    );
    let mut files = cx.list_tenant_files(&main_src, &tenant_dir, explicit);
    for (path, text) in overrides {
        let in_dir = path.parent() == Some(tenant_dir.as_path())
            && path.extension().is_some_and(|x| x == "toml")
            && *path != main_abs;
        match text {
            Some(_) if in_dir && !files.contains(path) => files.push(path.clone()),
            None => files.retain(|f| f != path),
            _ => {}
        }
    }
    files.sort();

    let mut tenant_files = Vec::new();
    for f in files {
        let text = match read_text(&f) {
            Ok(t) => t,
            Err(m) => {
                cx.errors.push(ConfigError {
                    file: f,
                    key: String::new(),
                    line: None,
                    message: m,
                });
                continue;
            }
        };
        let (mut src, e) = Source::parse(&f, text);
        cx.errors.extend(e);
        let stem = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = src
            .doc()
            .and_then(|d| d.get("id"))
            .and_then(|i| i.as_str())
            .map_or(stem, str::to_string);
        src.set_prefix(format!("tenants[{id}]"));
        let raw: Option<RawTenant> = deserialize(&src, &mut cx.errors);
        let config = raw.map(|r| cx.tenant(&src, r));
        tenant_files.push(TenantFile { src, id, config });
    }

    let mut all_sources: Vec<&Source> = vec![&main_src];
    all_sources.extend(tenant_files.iter().map(|t| &t.src));
    let digest = digest(&base, &all_sources);

    cx.check_tenants(&tenant_files);

    let main = raw_main.map(|m| {
        let server = cx.server(&main_src, &m.server);
        let rules = RulesConfig {
            depot: cx.path(
                &main_src,
                &KeyPath::root().key("rules").key("depot"),
                m.rules.depot.as_deref().unwrap_or(Path::new("rules")),
            ),
            catalog: m.rules.catalog.as_deref().map(|p| {
                cx.path(
                    &main_src,
                    &KeyPath::root().key("rules").key("catalog"),
                    p,
                )
            }),
        };
        let channels: Vec<ChannelConfig> = m
            .channels
            .iter()
            .filter_map(|(id, c)| cx.channel(&main_src, id, c))
            .collect();
        cx.unique_mounts(&main_src, &channels);
        cx.connector_needs(&channels, &tenant_files);
        let known_tenants: BTreeSet<&str> = tenant_files.iter().map(|t| t.id.as_str()).collect();
        let tokens = cx.tokens(&main_src, &m.tokens, &m.channels, &known_tenants);
        let retention = cx.retention(&main_src, m.retention.as_ref());
        let store = cx.store(&main_src, m.store.as_ref());
        let scanner = cx.scanner(&main_src, m.scanner.as_ref());
        let console = crate::ConsoleConfig {
            editable: m.console.editable.unwrap_or(true),
        };
        if scanner.is_none() {
            for (id, c) in &m.channels {
                if c.scan == Some(ScanMode::Required) {
                    cx.err(
                        &main_src,
                        &KeyPath::root().key("channels").key(id).key("scan"),
                        "`scan = \"required\"` needs a [scanner] (ClamAV's daemon) in the main file",
                    );
                }
            }
            for t in &tenant_files {
                if t.config.as_ref().is_some_and(|c| c.scan == Some(ScanMode::Required)) {
                    cx.err(
                        &t.src,
                        &KeyPath::root().key("scan"),
                        "`scan = \"required\"` needs a [scanner] (ClamAV's daemon) in the main file",
                    );
                }
            }
        }
        (server, rules, channels, tokens, retention, (store, scanner, console))
    });

    let main_path = main_abs.clone();
    let mut errors = cx.errors;
    if let (true, Some((server, rules, channels, tokens, retention, (store, scanner, console)))) =
        (errors.is_empty(), main)
    {
        let mut sources = vec![(main_src.path.clone(), main_src.text.clone())];
        sources.extend(
            tenant_files
                .iter()
                .map(|t| (t.src.path.clone(), t.src.text.clone())),
        );
        let tenants = tenant_files.into_iter().filter_map(|t| t.config).collect();
        return Ok(HubConfig {
            main_file: main_abs,
            tenant_dir,
            sources,
            digest,
            server,
            rules,
            channels,
            tokens,
            tenants,
            retention,
            store,
            scanner,
            console,
        });
    }
    errors.sort_by(|a, b| {
        (a.file != main_path, &a.file, a.line.unwrap_or(0)).cmp(&(
            b.file != main_path,
            &b.file,
            b.line.unwrap_or(0),
        ))
    });
    Err(ConfigErrors(errors))
}

pub(crate) struct Ctx {
    errors: Vec<ConfigError>,
    base: PathBuf,
    plugins: Plugins,
}

impl Ctx {
    pub(crate) fn err(&mut self, src: &Source, path: &KeyPath, message: impl Into<String>) {
        self.errors.push(src.error(path, message));
    }

    pub(crate) fn error_count(&self) -> usize {
        self.errors.len()
    }

    /// Resolve a path value; empty paths are errors.
    pub(crate) fn path(&mut self, src: &Source, kp: &KeyPath, p: &Path) -> PathBuf {
        if p.as_os_str().is_empty() {
            self.err(src, kp, "path must not be empty");
        }
        resolve(&self.base, p)
    }

    fn list_tenant_files(&mut self, main: &Source, dir: &Path, explicit: bool) -> Vec<PathBuf> {
        let kp = KeyPath::root().key("tenant_dir");
        let entries = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if !explicit && e.kind() == io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                self.err(
                    main,
                    &kp,
                    format!("cannot read tenant directory `{}`: {e}", dir.display()),
                );
                return Vec::new();
            }
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.err(
                        main,
                        &kp,
                        format!("cannot list tenant directory `{}`: {e}", dir.display()),
                    );
                    continue;
                }
            };
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            let is_toml = path.extension().is_some_and(|x| x == "toml");
            if hidden || !is_toml || path == main.path {
                continue;
            }
            if fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                files.push(path);
            }
        }
        files.sort();
        files
    }

    fn server(&mut self, src: &Source, raw: &RawServer) -> ServerConfig {
        let kp = KeyPath::root().key("server");
        let d = ServerConfig::default();
        let data_dir = self.path(
            src,
            &kp.key("data_dir"),
            raw.data_dir.as_deref().unwrap_or(&d.data_dir),
        );
        let positive = |cx: &mut Self, key: &str, v: Option<u64>, default: u64| -> u64 {
            match v {
                Some(0) => {
                    cx.err(src, &kp.key(key), format!("`{key}` must be greater than 0"));
                    default
                }
                Some(v) => v,
                None => default,
            }
        };
        let max_payload_bytes = positive(
            self,
            "max_payload_bytes",
            raw.max_payload_bytes.map(|b| b.0),
            d.max_payload_bytes,
        );
        let max_attachment_bytes = positive(
            self,
            "max_attachment_bytes",
            raw.max_attachment_bytes.map(|b| b.0),
            d.max_attachment_bytes,
        );
        let workers = positive(self, "workers", raw.workers.map(|w| w as u64), 1);
        let max_connections = positive(
            self,
            "max_connections",
            raw.max_connections.map(|n| n as u64),
            d.max_connections as u64,
        );
        let nonzero = |cx: &mut Self, key: &str, v: Option<Duration>, default: Duration| {
            cx.nonzero_duration(src, &kp, key, v, default)
        };
        let header_read_timeout = nonzero(
            self,
            "header_read_timeout",
            raw.header_read_timeout,
            d.header_read_timeout,
        );
        let body_read_timeout = nonzero(
            self,
            "body_read_timeout",
            raw.body_read_timeout,
            d.body_read_timeout,
        );
        let idle_timeout = nonzero(self, "idle_timeout", raw.idle_timeout, d.idle_timeout);
        let document_memory = positive(
            self,
            "document_memory",
            raw.document_memory.map(|b| b.0),
            d.document_memory,
        );
        let route_budget = match raw.route_budget {
            Some(b) if b.is_zero() || b > crate::MAX_ROUTE_BUDGET => {
                self.err(
                    src,
                    &kp.key("route_budget"),
                    format!(
                        "`route_budget` must be greater than 0 and at most {} s (half the job lease)",
                        crate::MAX_ROUTE_BUDGET.as_secs()
                    ),
                );
                d.route_budget
            }
            Some(b) => b,
            None => d.route_budget,
        };
        let tls = raw.tls.as_ref().map(|t| {
            let tkp = kp.key("tls");
            let client_ca = t
                .client_ca
                .as_ref()
                .map(|p| self.pem_file(src, &tkp.key("client_ca"), p));
            if client_ca.is_none() && t.client_auth.is_some() {
                self.err(
                    src,
                    &tkp.key("client_auth"),
                    "`client_auth` needs `client_ca` (the CA client certificates are verified against)",
                );
            }
            crate::ServerTls {
                cert: self.pem_file(src, &tkp.key("cert"), &t.cert),
                key: self.pem_file(src, &tkp.key("key"), &t.key),
                client_ca,
                client_auth: t.client_auth.unwrap_or_default(),
            }
        });
        ServerConfig {
            listen: raw.listen.unwrap_or(d.listen),
            data_dir,
            max_payload_bytes,
            max_attachment_bytes,
            workers: raw
                .workers
                .filter(|&w| w > 0)
                .map_or(d.workers, |_| usize::try_from(workers).unwrap_or(d.workers)),
            shutdown_grace: raw.shutdown_grace.unwrap_or(d.shutdown_grace),
            route_budget,
            document_memory,
            log_format: raw.log_format.unwrap_or(d.log_format),
            max_connections: usize::try_from(max_connections).unwrap_or(d.max_connections),
            header_read_timeout,
            body_read_timeout,
            idle_timeout,
            tls,
        }
    }

    /// `[store]` of the main file.
    /// `v` (or `default` when unset), reporting a zero duration as an
    /// error of key `key` under `kp`.
    fn nonzero_duration(
        &mut self,
        src: &Source,
        kp: &KeyPath,
        key: &str,
        v: Option<Duration>,
        default: Duration,
    ) -> Duration {
        match v {
            Some(t) if t.is_zero() => {
                self.err(src, &kp.key(key), format!("`{key}` must be more than zero"));
                default
            }
            Some(t) => t,
            None => default,
        }
    }

    /// `[scanner]` of the main file.
    fn scanner(&mut self, src: &Source, raw: Option<&RawScanner>) -> Option<ScannerConfig> {
        let raw = raw?;
        let kp = KeyPath::root().key("scanner");
        match raw.kind.as_deref().unwrap_or("clamd") {
            "clamd" => {}
            other => {
                self.err(
                    src,
                    &kp.key("type"),
                    format!("unknown scanner type {other:?}; the hub speaks to `clamd` (ClamAV's daemon)"),
                );
                return None;
            }
        }
        let address = raw.address.as_deref().map(str::trim).unwrap_or("");
        if let Err(e) = drehscheibe_clamd::ClamdAddress::parse(address) {
            self.err(
                src,
                &kp.key("address"),
                format!("`address` names clamd's socket: `unix:/run/clamav/clamd.ctl` or `tcp://host:3310` ({e})"),
            );
            return None;
        }
        let timeout =
            self.nonzero_duration(src, &kp, "timeout", raw.timeout, Duration::from_secs(60));
        let retry = self.nonzero_duration(src, &kp, "retry", raw.retry, Duration::from_secs(30));
        let base64_min = match raw.base64_min {
            Some(n) if n < 16 => {
                self.err(
                    src,
                    &kp.key("base64_min"),
                    "`base64_min` must be at least 16 (shorter text is not worth decoding)",
                );
                1024
            }
            Some(n) => n,
            None => 1024,
        };
        Some(ScannerConfig {
            address: address.to_owned(),
            timeout,
            retry,
            base64_min,
        })
    }

    fn store(&mut self, src: &Source, raw: Option<&RawStore>) -> StoreConfig {
        let kp = KeyPath::root().key("store");
        let Some(raw) = raw else {
            return StoreConfig::Sled;
        };
        let postgres_only = [
            ("url", raw.url.is_some()),
            ("pool_size", raw.pool_size.is_some()),
            ("schema", raw.schema.is_some()),
            ("instance", raw.instance.is_some()),
            ("connect_timeout", raw.connect_timeout.is_some()),
            ("statement_timeout", raw.statement_timeout.is_some()),
        ];
        match raw.kind.as_deref().unwrap_or("sled") {
            "sled" => {
                for (key, given) in postgres_only {
                    if given {
                        self.err(
                            src,
                            &kp.key(key),
                            format!("`{key}` is a setting of `type = \"postgres\"`; the sled store has none"),
                        );
                    }
                }
                StoreConfig::Sled
            }
            "postgres" => {
                let Some(url_raw) = &raw.url else {
                    self.err(
                        src,
                        &kp,
                        "`type = \"postgres\"` needs `url` (e.g. `url = { env = \"DREHSCHEIBE_DATABASE_URL\" }`)",
                    );
                    return StoreConfig::Sled;
                };
                let url = self.secret(src, &kp.key("url"), url_raw);
                if let Some(u) = &url {
                    let text = u.expose();
                    if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
                        // Never echo the URL: it may hold a password.
                        self.err(
                            src,
                            &kp.key("url"),
                            "`url` must start with `postgres://` or `postgresql://`",
                        );
                    }
                }
                let pool_size = match raw.pool_size {
                    Some(0) => {
                        self.err(src, &kp.key("pool_size"), "`pool_size` must be at least 1");
                        DEFAULT_PG_POOL_SIZE
                    }
                    Some(n) if n > 1000 => {
                        self.err(
                            src,
                            &kp.key("pool_size"),
                            "`pool_size` must be at most 1000",
                        );
                        DEFAULT_PG_POOL_SIZE
                    }
                    Some(n) => n,
                    None => DEFAULT_PG_POOL_SIZE,
                };
                let schema = raw.schema.clone().unwrap_or_else(|| "public".to_owned());
                let schema_ok = !schema.is_empty()
                    && schema.len() <= 63
                    && schema
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                    && schema
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !schema_ok {
                    self.err(
                        src,
                        &kp.key("schema"),
                        "`schema` must be a lower-case SQL identifier (a-z, 0-9, _; at most 63 characters)",
                    );
                }
                if let Some(i) = &raw.instance {
                    if let Err(m) = check_id(i) {
                        self.err(src, &kp.key("instance"), format!("instance name {m}"));
                    }
                }
                let mut timeout = |key: &str, v: Option<Duration>, d: Duration| {
                    self.nonzero_duration(src, &kp, key, v, d)
                };
                let connect_timeout = timeout(
                    "connect_timeout",
                    raw.connect_timeout,
                    Duration::from_secs(5),
                );
                let statement_timeout = timeout(
                    "statement_timeout",
                    raw.statement_timeout,
                    Duration::from_secs(30),
                );
                match url {
                    Some(url) => StoreConfig::Postgres(PostgresConfig {
                        url,
                        pool_size,
                        schema,
                        instance: raw.instance.clone(),
                        connect_timeout,
                        statement_timeout,
                    }),
                    None => StoreConfig::Sled,
                }
            }
            other => {
                self.err(
                    src,
                    &kp.key("type"),
                    format!("unknown store type {other:?}; known: \"sled\", \"postgres\""),
                );
                StoreConfig::Sled
            }
        }
    }

    /// `[retention]` of the main file.
    fn retention(&mut self, src: &Source, raw: Option<&RawRetention>) -> RetentionConfig {
        let kp = KeyPath::root().key("retention");
        let d = RetentionConfig::default();
        let Some(raw) = raw else {
            return d;
        };
        let interval = match raw.interval {
            Some(i) if i.is_zero() => {
                self.err(
                    src,
                    &kp.key("interval"),
                    "`interval` must be greater than 0",
                );
                d.interval
            }
            Some(i) => i,
            None => d.interval,
        };
        let batch = match raw.batch {
            Some(b) if b == 0 || b > MAX_RETENTION_BATCH => {
                self.err(
                    src,
                    &kp.key("batch"),
                    format!("`batch` must be between 1 and {MAX_RETENTION_BATCH}"),
                );
                d.batch
            }
            Some(b) => b,
            None => d.batch,
        };
        RetentionConfig {
            enabled: raw.enabled.unwrap_or(d.enabled),
            default: RetentionSpans {
                payloads: raw.payloads.map_or(d.default.payloads, |s| s.0),
                records: raw.records.map_or(d.default.records, |s| s.0),
                failed: raw.failed.map_or(d.default.failed, |s| s.0),
            },
            interval,
            batch,
        }
    }

    fn channel(&mut self, src: &Source, id: &str, raw: &RawChannel) -> Option<ChannelConfig> {
        let kp = KeyPath::root().key("channels").key(id);
        if let Err(m) = check_id(id) {
            self.err(src, &kp, format!("channel id {m}"));
        }
        let Some(plugin) = self.plugins.channel_plugin(&raw.kind).copied() else {
            let known: Vec<&str> = self.plugins.channel_types().map(|p| p.kind).collect();
            self.unknown_type(src, &kp, "channel", &raw.kind, &known);
            return None;
        };
        let factory = {
            let mut chk = Checker::new(
                self,
                src,
                kp.clone(),
                Duration::ZERO,
                format!("{} channels", plugin.kind),
            );
            (plugin.parse)(&mut chk, raw.rest.clone())
        }?;
        Some(ChannelConfig {
            id: id.to_string(),
            description: raw.description.clone(),
            kind: plugin.kind.to_string(),
            scan: raw.scan,
            factory,
        })
    }

    /// A `type` no registered plugin claims.
    fn unknown_type(&mut self, src: &Source, kp: &KeyPath, what: &str, kind: &str, known: &[&str]) {
        self.err(
            src,
            &kp.key("type"),
            format!("unknown {what} type `{kind}` (known: {})", known.join(", ")),
        );
    }

    fn tokens(
        &mut self,
        src: &Source,
        raw: &BTreeMap<String, RawToken>,
        channels: &BTreeMap<String, RawChannel>,
        tenants: &BTreeSet<&str>,
    ) -> Vec<TokenConfig> {
        let mut out = Vec::new();
        let mut by_secret: BTreeMap<String, String> = BTreeMap::new();
        for (name, t) in raw {
            let kp = KeyPath::root().key("tokens").key(name);
            if let Err(m) = check_id(name) {
                self.err(src, &kp, format!("token name {m}"));
            }
            let not_for = |cx: &mut Self, key: &str, present: bool, role: &str| {
                if present {
                    cx.err(
                        src,
                        &kp.key(key),
                        format!("`{key}` is not valid for role `{role}`"),
                    );
                }
            };
            let role = match t.role {
                RoleName::Sender => {
                    not_for(self, "tenant", t.tenant.is_some(), "sender");
                    let channel_list = t.channels.clone().unwrap_or_default();
                    if channel_list.is_empty() {
                        self.err(
                            src,
                            &kp.key("channels"),
                            "a sender token needs a non-empty `channels` list (or [\"*\"])",
                        );
                    }
                    for (i, c) in channel_list.iter().enumerate() {
                        if c != "*" && !channels.contains_key(c) {
                            let known = channels.keys().cloned().collect::<Vec<_>>().join(", ");
                            self.err(
                                src,
                                &kp.key("channels").index(i),
                                format!("unknown channel `{c}` (defined channels: {known})"),
                            );
                        }
                    }
                    Role::Sender {
                        channels: channel_list,
                    }
                }
                RoleName::Operator => {
                    not_for(self, "channels", t.channels.is_some(), "operator");
                    not_for(self, "tenant", t.tenant.is_some(), "operator");
                    Role::Operator
                }
                RoleName::Tenant => {
                    not_for(self, "channels", t.channels.is_some(), "tenant");
                    let tenant = t.tenant.clone().unwrap_or_default();
                    if t.tenant.is_none() {
                        self.err(src, &kp, "a tenant token needs `tenant`");
                    } else if !tenants.contains(tenant.as_str()) {
                        self.err(src, &kp.key("tenant"), format!("unknown tenant `{tenant}`"));
                    }
                    Role::Tenant { tenant }
                }
            };
            let Some(secret) = self.secret(src, &kp.key("secret"), &t.secret) else {
                continue;
            };
            if let Some(other) = by_secret.get(secret.expose()) {
                self.err(
                    src,
                    &kp.key("secret"),
                    format!("same secret as token `{other}`; every token needs its own secret"),
                );
            } else {
                by_secret.insert(secret.expose().to_string(), name.clone());
            }
            out.push(TokenConfig {
                name: name.clone(),
                secret,
                role,
            });
        }
        out
    }

    /// Resolve a secret. Error messages name the variable or file, never
    /// the value.
    pub(crate) fn secret(&mut self, src: &Source, kp: &KeyPath, raw: &RawSecret) -> Option<Secret> {
        let given = [raw.env.is_some(), raw.file.is_some(), raw.value.is_some()];
        if given.iter().filter(|&&g| g).count() != 1 {
            self.err(
                src,
                kp,
                "a secret needs exactly one of `env`, `file` or `value`",
            );
            return None;
        }
        let (source, value, key) = if let Some(name) = &raw.env {
            match std::env::var(name) {
                Ok(v) => (SecretSource::Env(name.clone()), v, "env"),
                Err(std::env::VarError::NotPresent) => {
                    self.err(
                        src,
                        &kp.key("env"),
                        format!("environment variable `{name}` is not set"),
                    );
                    return None;
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    self.err(
                        src,
                        &kp.key("env"),
                        format!("environment variable `{name}` is not valid UTF-8"),
                    );
                    return None;
                }
            }
        } else if let Some(file) = &raw.file {
            let path = resolve(&self.base, file);
            let text = match fs::read(&path) {
                Ok(bytes) => String::from_utf8(bytes).ok(),
                Err(e) => {
                    self.err(
                        src,
                        &kp.key("file"),
                        format!("cannot read secret file `{}`: {e}", path.display()),
                    );
                    return None;
                }
            };
            let Some(mut text) = text else {
                self.err(
                    src,
                    &kp.key("file"),
                    format!("secret file `{}` is not valid UTF-8", path.display()),
                );
                return None;
            };
            if text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            (SecretSource::File(path), text, "file")
        } else {
            (
                SecretSource::Value,
                raw.value.clone().unwrap_or_default(),
                "value",
            )
        };
        if value.is_empty() {
            let what = match &source {
                SecretSource::Env(n) => format!("environment variable `{n}`"),
                SecretSource::File(p) => format!("secret file `{}`", p.display()),
                SecretSource::Value => "secret value".to_string(),
            };
            self.err(src, &kp.key(key), format!("{what} is empty"));
            return None;
        }
        Some(Secret {
            source,
            value: SecretString::new(value),
        })
    }

    fn tenant(&mut self, src: &Source, raw: RawTenant) -> TenantConfig {
        let root = KeyPath::root();
        if let Err(m) = check_id(&raw.id) {
            self.err(src, &root.key("id"), format!("tenant id {m}"));
        }
        if raw.name.trim().is_empty() {
            self.err(src, &root.key("name"), "`name` must not be empty");
        }
        if let Some(ags) = &raw.ags {
            if !is_digits(ags, 8) {
                self.err(
                    src,
                    &root.key("ags"),
                    format!("AGS must be exactly 8 digits, got `{ags}`"),
                );
            }
        }
        if let Some(ars) = &raw.ars {
            if !is_digits(ars, 12) {
                self.err(
                    src,
                    &root.key("ars"),
                    format!("ARS must be exactly 12 digits, got `{ars}`"),
                );
            }
        }
        if let (Some(ags), Some(derived)) = (&raw.ags, raw.ars.as_deref().and_then(ags_of_ars)) {
            if is_digits(ags, 8) && *ags != derived {
                self.err(
                    src,
                    &root.key("ars"),
                    format!(
                        "ARS does not belong to AGS `{ags}` (its AGS would be `{derived}`: digits 1-5 and 10-12)"
                    ),
                );
            }
        }
        let mut seen_org = BTreeSet::new();
        for (i, o) in raw.org_ids.iter().enumerate() {
            let kp = root.key("org_ids").index(i);
            if o.trim().is_empty() || o.chars().any(char::is_whitespace) {
                self.err(
                    src,
                    &kp,
                    format!("org id `{o}` must be non-empty and contain no whitespace"),
                );
            } else if !seen_org.insert(o.as_str()) {
                self.err(src, &kp, format!("org id `{o}` is listed twice"));
            }
        }

        let mut stellen = Vec::new();
        for (id, s) in &raw.stellen {
            let kp = root.key("stellen").key(id);
            if let Err(m) = check_id(id) {
                self.err(src, &kp, format!("Stelle id {m}"));
            }
            if s.name.trim().is_empty() {
                self.err(src, &kp.key("name"), "`name` must not be empty");
            }
            if let Some(email) = &s.email {
                if let Err(m) = check_address(email) {
                    self.err(src, &kp.key("email"), m);
                }
            }
            stellen.push(Stelle {
                id: id.clone(),
                name: s.name.clone(),
                email: s.email.clone(),
            });
        }

        let connectors = raw
            .connectors
            .iter()
            .filter_map(|(id, c)| self.connector(src, id, c))
            .collect();

        let mut routes = Vec::new();
        let mut seen_leistung: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, r) in raw.routes.iter().enumerate() {
            let kp = root.key("routes").index(i);
            if !is_digits(&r.leistung, 14) {
                self.err(
                    src,
                    &kp.key("leistung"),
                    format!("LeiKa key must be exactly 14 digits, got `{}`", r.leistung),
                );
            }
            if let Some(first) = seen_leistung.get(r.leistung.as_str()) {
                self.err(
                    src,
                    &kp.key("leistung"),
                    format!(
                        "Leistung `{}` already has a route (routes[{first}])",
                        r.leistung
                    ),
                );
            } else {
                seen_leistung.insert(&r.leistung, i);
            }
            routes.push(self.route(src, &kp, r, &raw));
        }

        TenantConfig {
            id: raw.id.clone(),
            name: raw.name.clone(),
            ags: raw.ags.clone(),
            ars: raw.ars.clone(),
            org_ids: raw.org_ids.clone(),
            stellen,
            connectors,
            routes,
            retention: raw
                .retention
                .as_ref()
                .map(|r| RetentionOverride {
                    payloads: r.payloads.map(|s| s.0),
                    records: r.records.map(|s| s.0),
                    failed: r.failed.map(|s| s.0),
                })
                .unwrap_or_default(),
            scan: raw.scan,
            source: src.path.clone(),
        }
    }

    fn route(
        &mut self,
        src: &Source,
        kp: &KeyPath,
        r: &RawRoute,
        tenant: &RawTenant,
    ) -> RouteConfig {
        let mut rule = None;
        if let Some(to) = &r.delegate_to {
            if let Err(m) = check_id(to) {
                self.err(src, &kp.key("delegate_to"), format!("tenant id {m}"));
            }
            let not_with = [
                ("rule", r.rule.is_some()),
                ("stelle", r.stelle.is_some()),
                ("targets", !r.targets.is_empty()),
                ("params", !r.params.is_empty()),
            ];
            for (key, present) in not_with {
                if present {
                    self.err(
                        src,
                        &kp.key(key),
                        format!(
                            "a route with `delegate_to` takes no `{key}`: the route of tenant `{to}` applies"
                        ),
                    );
                }
            }
        } else {
            match &r.rule {
                None => self.err(src, kp, "a route needs `rule` (or `delegate_to`)"),
                Some(s) => match s.parse::<RuleSelector>() {
                    Ok(sel) => rule = Some(sel),
                    Err(m) => self.err(src, &kp.key("rule"), m),
                },
            }
            if let Some(stelle) = &r.stelle {
                if !tenant.stellen.contains_key(stelle) {
                    let known = tenant
                        .stellen
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.err(
                        src,
                        &kp.key("stelle"),
                        format!("unknown Stelle `{stelle}` (this tenant has: {known})"),
                    );
                }
            }
            if r.targets.is_empty() {
                self.err(
                    src,
                    &kp.key("targets"),
                    "a route needs at least one target (`targets = { fachverfahren = \"<connector>\" }`)",
                );
            }
            for (role, conn) in &r.targets {
                let tkp = kp.key("targets").key(role);
                if let Err(m) = check_id(role) {
                    self.err(src, &tkp, format!("target role {m}"));
                }
                if !tenant.connectors.contains_key(conn) {
                    let known = tenant
                        .connectors
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ");
                    self.err(
                        src,
                        &tkp,
                        format!("unknown connector `{conn}` (this tenant has: {known})"),
                    );
                }
            }
        }
        let mut params = BTreeMap::new();
        for (k, v) in &r.params {
            let s = match v {
                toml::Value::String(s) => Some(s.clone()),
                toml::Value::Integer(i) => Some(i.to_string()),
                toml::Value::Float(f) => Some(f.to_string()),
                toml::Value::Boolean(b) => Some(b.to_string()),
                toml::Value::Datetime(d) => Some(d.to_string()),
                toml::Value::Array(_) | toml::Value::Table(_) => None,
            };
            match s {
                Some(s) => {
                    params.insert(k.clone(), s);
                }
                None => self.err(
                    src,
                    &kp.key("params").key(k),
                    "parameter values must be strings, numbers, booleans or dates",
                ),
            }
        }
        let sla = r.sla.as_ref().map(|sla| {
            if !(sla.percent > 0.0 && sla.percent <= 100.0) {
                self.err(
                    src,
                    &kp.key("sla").key("percent"),
                    "`percent` must be greater than 0 and at most 100",
                );
            }
            if sla.within.is_zero() {
                self.err(
                    src,
                    &kp.key("sla").key("within"),
                    "`within` must be a positive duration such as \"5m\"",
                );
            }
            crate::SlaTarget {
                within: sla.within,
                percent: sla.percent,
            }
        });
        RouteConfig {
            leistung: r.leistung.clone(),
            description: r.description.clone(),
            rule,
            stelle: r.stelle.clone(),
            targets: r.targets.clone(),
            delegate_to: r.delegate_to.clone(),
            params,
            source_line: src.line_of(&kp.key("rule")),
            sla,
        }
    }

    fn connector(&mut self, src: &Source, id: &str, c: &RawConnector) -> Option<ConnectorConfig> {
        let kp = KeyPath::root().key("connectors").key(id);
        if let Err(m) = check_id(id) {
            self.err(src, &kp, format!("connector id {m}"));
        }
        let retry = self.retry(src, &kp.key("retry"), c.retry.as_ref());
        let max_concurrency = match c.max_concurrency {
            Some(0) => {
                self.err(
                    src,
                    &kp.key("max_concurrency"),
                    "`max_concurrency` must be at least 1",
                );
                1
            }
            Some(n) => n,
            None => 4,
        };
        let timeout = c.timeout.unwrap_or(Duration::from_secs(30));
        if timeout.is_zero() {
            self.err(src, &kp.key("timeout"), "`timeout` must be greater than 0");
        }
        let Some(plugin) = self.plugins.connector_plugin(&c.kind).copied() else {
            let known: Vec<&str> = self.plugins.connector_types().map(|p| p.kind).collect();
            self.unknown_type(src, &kp, "connector", &c.kind, &known);
            return None;
        };
        let factory = {
            let mut chk = Checker::new(
                self,
                src,
                kp.clone(),
                timeout,
                format!("{} connectors", plugin.kind),
            );
            (plugin.parse)(&mut chk, c.rest.clone())
        }?;
        Some(ConnectorConfig {
            id: id.to_string(),
            fachverfahren: c.fachverfahren.clone(),
            retry,
            max_concurrency,
            timeout,
            kind: plugin.kind.to_string(),
            factory,
        })
    }

    fn retry(&mut self, src: &Source, kp: &KeyPath, raw: Option<&RawRetry>) -> RetryPolicy {
        let d = RetryPolicy::default();
        let Some(raw) = raw else {
            return d;
        };
        let p = RetryPolicy {
            max_attempts: raw.max_attempts.unwrap_or(d.max_attempts),
            initial_backoff: raw.initial_backoff.unwrap_or(d.initial_backoff),
            max_backoff: raw.max_backoff.unwrap_or(d.max_backoff),
            multiplier: raw.multiplier.unwrap_or(d.multiplier),
            jitter: raw.jitter.unwrap_or(d.jitter),
        };
        if p.max_attempts == 0 {
            self.err(
                src,
                &kp.key("max_attempts"),
                "`max_attempts` must be at least 1",
            );
        }
        if p.initial_backoff.is_zero() {
            self.err(
                src,
                &kp.key("initial_backoff"),
                "`initial_backoff` must be greater than 0",
            );
        }
        if p.max_backoff < p.initial_backoff {
            self.err(
                src,
                &kp.key("max_backoff"),
                "`max_backoff` must not be smaller than `initial_backoff`",
            );
        }
        if !(p.multiplier.is_finite() && p.multiplier >= 1.0) {
            self.err(
                src,
                &kp.key("multiplier"),
                "`multiplier` must be at least 1.0",
            );
        }
        if !(0.0..=1.0).contains(&p.jitter) {
            self.err(
                src,
                &kp.key("jitter"),
                "`jitter` must be between 0.0 and 1.0",
            );
        }
        p
    }

    pub(crate) fn pem_file(&mut self, src: &Source, kp: &KeyPath, p: &Path) -> PathBuf {
        let path = self.path(src, kp, p);
        match fs::read(&path) {
            Ok(bytes) => {
                if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
                    self.err(src, kp, format!("`{}` is not a PEM file", path.display()));
                }
            }
            Err(e) => self.err(src, kp, format!("cannot read `{}`: {e}", path.display())),
        }
        path
    }

    /// A readable private key file: PEM or a private JWK.
    pub(crate) fn key_file(&mut self, src: &Source, kp: &KeyPath, p: &Path) -> PathBuf {
        let path = self.path(src, kp, p);
        match fs::read(&path) {
            Ok(bytes) => {
                let jwk = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
                if !jwk && !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
                    self.err(
                        src,
                        kp,
                        format!("`{}` is neither a PEM file nor a JWK", path.display()),
                    );
                }
            }
            Err(e) => self.err(src, kp, format!("cannot read `{}`: {e}", path.display())),
        }
        path
    }

    pub(crate) fn http_auth(
        &mut self,
        src: &Source,
        kp: &KeyPath,
        a: &RawAuth,
    ) -> Option<HttpAuth> {
        match a.kind {
            AuthType::Bearer => {
                for (key, present) in [
                    ("username", a.username.is_some()),
                    ("password", a.password.is_some()),
                ] {
                    if present {
                        self.err(
                            src,
                            &kp.key(key),
                            format!("`{key}` is not valid for bearer auth"),
                        );
                    }
                }
                let Some(token) = &a.token else {
                    self.err(src, kp, "bearer auth needs `token`");
                    return None;
                };
                let token = self.secret(src, &kp.key("token"), token)?;
                Some(HttpAuth::Bearer { token })
            }
            AuthType::Basic => {
                if a.token.is_some() {
                    self.err(src, &kp.key("token"), "`token` is not valid for basic auth");
                }
                let username = a.username.clone().unwrap_or_default();
                if username.is_empty() || username.contains(':') {
                    self.err(
                        src,
                        &kp.key("username"),
                        "basic auth needs a non-empty `username` without `:`",
                    );
                }
                let Some(password) = &a.password else {
                    self.err(src, kp, "basic auth needs `password`");
                    return None;
                };
                let password = self.secret(src, &kp.key("password"), password)?;
                Some(HttpAuth::Basic { username, password })
            }
        }
    }

    /// A required http(s) URL without credentials.
    pub(crate) fn service_url(
        &mut self,
        src: &Source,
        kp: &KeyPath,
        key: &str,
        v: Option<&String>,
    ) -> String {
        let Some(url) = v else {
            self.err(src, kp, format!("`{key}` is required"));
            return String::new();
        };
        let ukp = kp.key(key);
        match url::Url::parse(url) {
            Err(e) => self.err(src, &ukp, format!("invalid URL `{url}`: {e}")),
            Ok(u) => {
                if u.scheme() != "http" && u.scheme() != "https" {
                    self.err(src, &ukp, "URL scheme must be http or https");
                } else if u.host_str().is_none_or(str::is_empty) {
                    self.err(src, &ukp, "URL has no host");
                }
                if !u.username().is_empty() || u.password().is_some() {
                    self.err(src, &ukp, "credentials in the URL are not allowed");
                }
            }
        }
        url.clone()
    }

    /// Every connector's [`Need`](crate::plugin::Need)s must be provided
    /// by a channel (e.g. an `xta-mailbox` connector's mailbox is an
    /// account of an `xta` channel).
    fn connector_needs(&mut self, channels: &[ChannelConfig], tenants: &[TenantFile]) {
        let provided = crate::resources_of(channels);
        for t in tenants {
            let Some(cfg) = &t.config else { continue };
            for c in &cfg.connectors {
                for need in c.factory.needs() {
                    if !provided.contains_key(&need.resource) {
                        self.err(
                            &t.src,
                            &KeyPath::root().key("connectors").key(&c.id).key(need.key),
                            need.missing,
                        );
                    }
                }
            }
        }
    }

    /// Two channels must not mount routes under the same path prefix.
    fn unique_mounts(&mut self, src: &Source, channels: &[ChannelConfig]) {
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for c in channels {
            for m in c.factory.mounts() {
                if let Some(other) = seen.insert(m.clone(), &c.id) {
                    self.err(
                        src,
                        &KeyPath::root().key("channels").key(&c.id),
                        format!("channel `{other}` already serves `{m}` on this listener"),
                    );
                }
            }
        }
    }

    /// Checks across tenants: unique ids and keys, valid delegations.
    fn check_tenants(&mut self, files: &[TenantFile]) {
        let root = KeyPath::root();
        let mut by_id: BTreeMap<&str, &TenantFile> = BTreeMap::new();
        for f in files {
            match by_id.get(f.id.as_str()) {
                Some(first) => {
                    let first = first.src.path.display().to_string();
                    self.err(
                        &f.src,
                        &root.key("id"),
                        format!("tenant id `{}` is already used in {first}", f.id),
                    );
                }
                None => {
                    by_id.insert(&f.id, f);
                }
            }
        }

        // AGS, ARS, org ids (and the AGS implied by an ARS) share one
        // namespace: a key must lead to exactly one tenant.
        let mut owner: BTreeMap<String, (String, &'static str)> = BTreeMap::new();
        for f in files {
            let Some(t) = &f.config else { continue };
            let mut keys: Vec<(String, &'static str, KeyPath)> = Vec::new();
            if let Some(a) = t.ags.as_ref().filter(|a| is_digits(a, 8)) {
                keys.push((a.clone(), "AGS", root.key("ags")));
            }
            if let Some(a) = t.ars.as_ref().filter(|a| is_digits(a, 12)) {
                keys.push((a.clone(), "ARS", root.key("ars")));
                if t.ags.is_none() {
                    if let Some(derived) = ags_of_ars(a) {
                        keys.push((derived, "AGS implied by its ARS", root.key("ars")));
                    }
                }
            }
            for (i, o) in t.org_ids.iter().enumerate() {
                keys.push((o.clone(), "org id", root.key("org_ids").index(i)));
            }
            for (key, what, kp) in keys {
                match owner.get(&key) {
                    Some((other, other_what)) if *other != t.id => {
                        self.err(
                            &f.src,
                            &kp,
                            format!(
                                "{what} `{key}` is already used by tenant `{other}` (as its {other_what})"
                            ),
                        );
                    }
                    Some(_) => {}
                    None => {
                        owner.insert(key, (t.id.clone(), what));
                    }
                }
            }
        }

        for f in files {
            let Some(t) = &f.config else { continue };
            for (i, r) in t.routes.iter().enumerate() {
                let Some(first_hop) = &r.delegate_to else {
                    continue;
                };
                let kp = root.key("routes").index(i).key("delegate_to");
                if let Some(m) = delegation_problem(&by_id, &t.id, first_hop, &r.leistung) {
                    self.err(&f.src, &kp, m);
                }
            }
        }
    }
}

/// What is wrong with delegating `leistung` from `from` to `to`, if anything.
fn delegation_problem(
    by_id: &BTreeMap<&str, &TenantFile>,
    from: &str,
    to: &str,
    leistung: &str,
) -> Option<String> {
    if to == from {
        return Some(format!("tenant `{from}` cannot delegate to itself"));
    }
    let mut chain = vec![from.to_string()];
    let mut cur = to.to_string();
    loop {
        if chain.contains(&cur) {
            chain.push(cur.clone());
            return Some(if cur == from {
                format!("delegation cycle: {}", chain.join(" -> "))
            } else {
                format!(
                    "tenant `{to}` delegates Leistung {leistung} further (chain {}); the target of a delegation must handle the Leistung itself",
                    chain.join(" -> ")
                )
            });
        }
        let Some(file) = by_id.get(cur.as_str()) else {
            return Some(format!("unknown tenant `{cur}`"));
        };
        // A tenant whose file has errors was reported already.
        let config = file.config.as_ref()?;
        let Some(route) = config.route(leistung) else {
            return Some(format!(
                "tenant `{cur}` has no route for Leistung {leistung}"
            ));
        };
        match &route.delegate_to {
            None if chain.len() == 1 => return None,
            None => {
                return Some(format!(
                    "tenant `{to}` delegates Leistung {leistung} further to `{}`; the target of a delegation must handle the Leistung itself",
                    chain.get(2).cloned().unwrap_or_else(|| cur.clone())
                ))
            }
            Some(next) => {
                chain.push(cur);
                cur = next.clone();
            }
        }
    }
}
