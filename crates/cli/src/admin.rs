//! The configuration service of a running hub: [`FileConfigAdmin`], the
//! implementation of [`ConfigAdmin`] over the configuration files (ADR
//! 0021).
//!
//! A change is checked by loading the whole set with the candidate text in
//! place of the file (`HubConfig::load_with`, then the same rule checks as
//! `config check`) and by building every connector it changes; only then
//! is the file written (temporary file, `fsync`, `rename`, `fsync` of the
//! directory), the revision recorded in the store's space
//! `config/history`, and the new configuration swapped in: the router's
//! configuration, the changed connectors (unchanged ones keep their slot,
//! connections and counters), the tenants that skip scanning.
//!
//! Changes are serialised by one lock per hub. Hand edits are found by
//! [`ConfigAdmin::reload`] (on `SIGHUP`, `POST /api/v1/config/reload` and
//! every [`POLL_INTERVAL`]): every file whose text differs from the one in
//! force gets a revision by [`FILE_AUTHOR`], unless the newest revision of
//! that file already has that text (another instance recorded it).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use drehscheibe_config::{HubConfig, Overrides};
use drehscheibe_engine::admin::{
    sha256_hex, AdminError, Change, ConfigAdmin, ConfigFile, FileKind, PublishedRule,
    ReloadOutcome, ReloadStatus, Revision, RevisionSummary, FILE_AUTHOR, MAX_FILE_BYTES,
    MAX_HISTORY_PAGE, MAX_RULE_ARCHIVE_BYTES,
};
use drehscheibe_engine::{ConnectorRegistry, DepotRouter, Hub};
use drehscheibe_rules::Depot;
use drehscheibe_store::state::StateSpace;

/// How often the files are compared with the configuration in force.
pub const POLL_INTERVAL: Duration = Duration::from_secs(30);

const SPACE: &str = "config/history";
const HEAD: &[u8] = b"head";

/// See the module docs.
pub struct FileConfigAdmin {
    main_file: PathBuf,
    base: PathBuf,
    /// The main file's text at start: a different one needs a restart.
    started_main: String,
    editable: bool,
    depot_dir: PathBuf,
    catalog: Option<PathBuf>,
    router: Arc<DepotRouter>,
    hub: Arc<Hub>,
    history: StateSpace,
    data_dir: PathBuf,
    resources: BTreeMap<String, String>,
    lock: tokio::sync::Mutex<()>,
    status: Mutex<ReloadStatus>,
}

fn io(e: impl std::fmt::Display) -> AdminError {
    AdminError::Io(e.to_string())
}

fn rev_key(id: u64) -> Vec<u8> {
    // Newest first in key order.
    let mut k = b"rev/".to_vec();
    k.extend_from_slice(&(u64::MAX - id).to_be_bytes());
    k
}

/// The texts of revision `id` (kept apart from its summary, so listings
/// read no texts).
fn text_key(id: u64) -> Vec<u8> {
    let mut k = b"text/".to_vec();
    k.extend_from_slice(&(u64::MAX - id).to_be_bytes());
    k
}

/// What `text/<id>` holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Texts {
    old_text: Option<String>,
    new_text: Option<String>,
}

fn file_key(path: &str, id: u64) -> Vec<u8> {
    let mut k = file_prefix(path);
    k.extend_from_slice(&(u64::MAX - id).to_be_bytes());
    k
}

fn file_prefix(path: &str) -> Vec<u8> {
    let mut k = b"file/".to_vec();
    k.extend_from_slice(path.as_bytes());
    k.push(0);
    k
}

fn id_of_key(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::MAX - u64::from_be_bytes(tail))
}

impl FileConfigAdmin {
    /// The service for the hub started from `config`, whose router is
    /// `router`.
    ///
    /// # Errors
    ///
    /// The store refuses the history space's name (it does not).
    pub fn new(
        config: &HubConfig,
        router: Arc<DepotRouter>,
        hub: Arc<Hub>,
        editable: bool,
    ) -> anyhow::Result<Self> {
        let base = config.base_dir().to_path_buf();
        let started_main = config
            .sources
            .first()
            .map(|(_, t)| t.clone())
            .unwrap_or_default();
        Ok(Self {
            main_file: config.main_file.clone(),
            base,
            started_main,
            editable,
            depot_dir: config.rules.depot.clone(),
            catalog: config.rules.catalog.clone(),
            router,
            history: StateSpace::new(hub.store().clone(), SPACE)?,
            data_dir: config.server.data_dir.clone(),
            resources: config.channel_resources(),
            hub,
            lock: tokio::sync::Mutex::new(()),
            status: Mutex::new(ReloadStatus {
                config_digest: config.digest.clone(),
                applied_at: Some(Utc::now()),
                ..ReloadStatus::default()
            }),
        })
    }

    /// `path` relative to the main file's directory, `/`-separated.
    fn relative(&self, path: &Path) -> String {
        drehscheibe_config::relative_path(&self.base, path)
    }

    /// The absolute path of the tenant file `rel`: one in force, or a new
    /// `<name>.toml` directly in the tenant directory.
    fn tenant_path(&self, config: &HubConfig, rel: &str) -> Result<PathBuf, AdminError> {
        if let Some((p, _)) = config
            .sources
            .iter()
            .skip(1)
            .find(|(p, _)| self.relative(p) == rel)
        {
            return Ok(p.clone());
        }
        if self.relative(&config.main_file) == rel {
            return Err(AdminError::ReadOnly(format!(
                "{rel} is the main file: it is read-only here, and a change to it takes a restart"
            )));
        }
        let dir = self.relative(&config.tenant_dir);
        let name = if dir.is_empty() {
            Some(rel)
        } else {
            rel.strip_prefix(&dir).and_then(|r| r.strip_prefix('/'))
        };
        let valid = name
            .and_then(|n| n.strip_suffix(".toml"))
            .is_some_and(|stem| {
                !stem.is_empty()
                    && stem.len() <= 64
                    && !stem.starts_with('.')
                    && stem
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            });
        match (valid, name) {
            (true, Some(n)) => Ok(config.tenant_dir.join(n)),
            _ => Err(AdminError::NotFound(rel.to_owned())),
        }
    }

    /// Load the configuration with `overrides`, check it against the
    /// depot as `config check` does.
    async fn candidate(&self, overrides: Overrides) -> Result<HubConfig, AdminError> {
        let main = self.main_file.clone();
        let depot = self.router.depot();
        tokio::task::spawn_blocking(move || {
            let config = HubConfig::load_with(&main, &crate::connectors::plugins(), &overrides)
                .map_err(|e| AdminError::Invalid(e.0.iter().map(|e| e.to_string()).collect()))?;
            crate::runtime::check_against_depot(&config, &depot).map_err(|e| {
                AdminError::Invalid(e.to_string().lines().map(str::to_owned).collect())
            })?;
            Ok(config)
        })
        .await
        .map_err(io)?
    }

    /// The connectors of `next`: unchanged ones keep their slot, changed
    /// and new ones are built (a build failure refuses the change).
    fn connectors_for(
        &self,
        next: &HubConfig,
    ) -> Result<(ConnectorRegistry, Vec<String>), AdminError> {
        let current = self.router.config();
        let in_force = self.hub.connectors();
        let mut registry = ConnectorRegistry::new();
        let mut rebuilt = Vec::new();
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        for t in &next.tenants {
            for c in &t.connectors {
                seen.insert((t.id.clone(), c.id.clone()));
                let same = current
                    .tenant(&t.id)
                    .and_then(|old| old.connector(&c.id))
                    .is_some_and(|old| old == c);
                if let (true, Some(slot)) = (same, in_force.get(&t.id, &c.id)) {
                    registry.insert_shared(slot);
                    continue;
                }
                match crate::connectors::slot(
                    &t.id,
                    c,
                    self.hub.store(),
                    &self.data_dir,
                    &self.resources,
                ) {
                    Ok(slot) => {
                        registry.insert(slot);
                        rebuilt.push(format!("{}/{}", t.id, c.id));
                    }
                    Err(e) => problems.push(format!(
                        "{}: tenants[{}].connectors.{}: {e:#}",
                        t.source.display(),
                        t.id,
                        c.id
                    )),
                }
            }
        }
        for slot in in_force.slots() {
            if !seen.contains(&(slot.tenant.clone(), slot.id.clone())) {
                rebuilt.push(format!("{}/{} (removed)", slot.tenant, slot.id));
            }
        }
        if problems.is_empty() {
            rebuilt.sort();
            Ok((registry, rebuilt))
        } else {
            Err(AdminError::Invalid(problems))
        }
    }

    /// Put `next` in force.
    async fn apply(&self, next: HubConfig, registry: ConnectorRegistry) {
        let snapshot = snapshot_text(&next);
        if let Err(e) = self
            .hub
            .store()
            .put_config_snapshot(&next.digest, &snapshot)
            .await
        {
            tracing::error!(error = %e, "storing the configuration snapshot failed");
        }
        let off = next.tenants_scan_off();
        let restart_needed =
            next.sources.first().map(|(_, t)| t.as_str()) != Some(self.started_main.as_str());
        let digest = next.digest.clone();
        self.hub.swap_connectors(registry);
        self.hub.set_scan_tenants_off(off);
        self.router.set_config(Arc::new(next));
        if let Ok(mut s) = self.status.lock() {
            s.config_digest = digest.clone();
            s.applied_at = Some(Utc::now());
            s.disk_error = None;
            s.disk_error_since = None;
            s.restart_needed = restart_needed;
        }
        tracing::info!(config = %digest, "configuration applied");
    }

    /// Record a revision (ids are allocated in the same transaction).
    async fn record(&self, rev: Revision) -> Result<Revision, AdminError> {
        let path = rev.path.clone();
        let recorded = self
            .history
            .update(|mut tx| {
                let mut rev = rev.clone();
                let path = path.clone();
                async move {
                    let head = tx
                        .get(HEAD)
                        .await?
                        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
                        .map_or(0, u64::from_be_bytes);
                    rev.id = head + 1;
                    let aborted = |e: serde_json::Error| {
                        drehscheibe_store::StoreError::Aborted(format!("revision: {e}"))
                    };
                    let summary =
                        serde_json::to_vec(&RevisionSummary::from(&rev)).map_err(aborted)?;
                    let texts = serde_json::to_vec(&Texts {
                        old_text: rev.old_text.clone(),
                        new_text: rev.new_text.clone(),
                    })
                    .map_err(aborted)?;
                    tx.put(HEAD, Bytes::copy_from_slice(&rev.id.to_be_bytes()));
                    tx.put(&rev_key(rev.id), Bytes::from(summary));
                    tx.put(&text_key(rev.id), Bytes::from(texts));
                    tx.put(&file_key(&path, rev.id), Bytes::new());
                    Ok((tx, rev))
                }
            })
            .await
            .map_err(io)?;
        tracing::info!(revision = recorded.id, path = %recorded.path, author = %recorded.author, "configuration revision recorded");
        Ok(recorded)
    }

    /// The newest revision of `path`, if any.
    async fn newest_of(&self, path: &str) -> Result<Option<Revision>, AdminError> {
        let found = self
            .history
            .scan(&file_prefix(path), None, 1)
            .await
            .map_err(io)?;
        match found.first().and_then(|(k, _)| id_of_key(k)) {
            Some(id) => self.revision(id).await.map(Some),
            None => Ok(None),
        }
    }

    async fn summary(&self, id: u64) -> Result<RevisionSummary, AdminError> {
        match self.history.get(&rev_key(id)).await.map_err(io)? {
            Some(v) => serde_json::from_slice(&v).map_err(io),
            None => Err(AdminError::NoRevision(id)),
        }
    }

    /// Record what changed in the files while no hub watched them (edited
    /// while it was stopped, or written by a change whose revision a crash
    /// lost): every file whose newest revision has another text gets a
    /// revision by [`FILE_AUTHOR`]. Files without any history are taken as
    /// they are. Called once at start.
    pub async fn record_offline_edits(&self) -> Result<Vec<Revision>, AdminError> {
        let _serial = self.lock.lock().await;
        let config = self.current();
        let mut recorded = Vec::new();
        for (p, text) in &config.sources {
            let path = self.relative(p);
            let Some(newest) = self.newest_of(&path).await? else {
                continue;
            };
            if newest.new_text.as_deref() == Some(text.as_str()) {
                continue;
            }
            recorded.push(
                self.record(Revision {
                    id: 0,
                    path,
                    author: FILE_AUTHOR.to_owned(),
                    at: Utc::now(),
                    comment: "beim Start vorgefunden".to_owned(),
                    old_sha256: newest.new_sha256.clone(),
                    old_text: newest.new_text,
                    new_sha256: Some(sha256_hex(text)),
                    new_text: Some(text.clone()),
                    config_digest: config.digest.clone(),
                })
                .await?,
            );
        }
        Ok(recorded)
    }

    /// The files on disk are those in force: any earlier load error is
    /// over.
    fn unchanged(&self, digest: &str) -> ReloadOutcome {
        let mut restart_needed = false;
        if let Ok(mut s) = self.status.lock() {
            s.disk_error = None;
            s.disk_error_since = None;
            restart_needed = s.restart_needed;
        }
        ReloadOutcome {
            changed: false,
            revisions: Vec::new(),
            connectors_rebuilt: Vec::new(),
            config_digest: digest.to_owned(),
            restart_needed,
        }
    }

    /// Note that the files on disk do not load (reported on the
    /// Übersicht and by `GET /api/v1/config`); returns `e`.
    fn disk_error(&self, e: AdminError) -> AdminError {
        if let Ok(mut s) = self.status.lock() {
            if s.disk_error.is_none() {
                s.disk_error_since = Some(Utc::now());
            }
            s.disk_error = Some(e.to_string());
        }
        e
    }

    async fn reload_locked(&self, author: &str) -> Result<ReloadOutcome, AdminError> {
        // First a cheap look: the files' bytes hashed as loading would.
        // The same digest as in force means nothing to load (the common
        // case of the 30 s poll, whatever the number of Kommunen).
        let current = self.router.config();
        let (main, dir) = (self.main_file.clone(), current.tenant_dir.clone());
        let on_disk =
            tokio::task::spawn_blocking(move || drehscheibe_config::disk_digest(&main, &dir))
                .await
                .map_err(io)?;
        if on_disk.is_ok_and(|d| d == current.digest) {
            return Ok(self.unchanged(&current.digest));
        }
        let next = match self.candidate(Overrides::new()).await {
            Ok(c) => c,
            Err(e) => return Err(self.disk_error(e)),
        };
        let current = self.router.config();
        if next.digest == current.digest {
            return Ok(self.unchanged(&next.digest));
        }
        if let Some((p, t)) = next.sources.iter().find(|(_, t)| t.len() > MAX_FILE_BYTES) {
            return Err(self.disk_error(AdminError::Invalid(vec![format!(
                "{}: {} bytes, more than the {MAX_FILE_BYTES} a configuration file may have",
                p.display(),
                t.len()
            )])));
        }
        let (registry, rebuilt) = self.connectors_for(&next)?;
        let old: BTreeMap<&PathBuf, &String> =
            current.sources.iter().map(|(p, t)| (p, t)).collect();
        let new: BTreeMap<&PathBuf, &String> = next.sources.iter().map(|(p, t)| (p, t)).collect();
        let paths: BTreeSet<&PathBuf> = old.keys().chain(new.keys()).copied().collect();
        let mut pending = Vec::new();
        for p in paths {
            let (o, n) = (old.get(p).copied(), new.get(p).copied());
            if o == n {
                continue;
            }
            pending.push(Revision {
                id: 0,
                path: self.relative(p),
                author: author.to_owned(),
                at: Utc::now(),
                comment: String::new(),
                old_sha256: o.map(|t| sha256_hex(t)),
                old_text: o.cloned(),
                new_sha256: n.map(|t| sha256_hex(t)),
                new_text: n.cloned(),
                config_digest: next.digest.clone(),
            });
        }
        let digest = next.digest.clone();
        let restart_needed =
            next.sources.first().map(|(_, t)| t.as_str()) != Some(self.started_main.as_str());
        // Recorded before applied (as a change is): a failure leaves the
        // configuration in force as it was, and the next look records and
        // applies again.
        let mut revisions = Vec::new();
        for rev in pending {
            // Another instance (same files) may have recorded it already.
            let known = self.newest_of(&rev.path).await?;
            if known.is_some_and(|k| k.new_sha256 == rev.new_sha256) {
                continue;
            }
            revisions.push(self.record(rev).await?);
        }
        self.apply(next, registry).await;
        if restart_needed {
            tracing::warn!(
                "the main configuration file changed: its settings take effect at the next restart"
            );
        }
        Ok(ReloadOutcome {
            changed: true,
            revisions,
            connectors_rebuilt: rebuilt,
            config_digest: digest,
            restart_needed,
        })
    }

    /// Compare the files with the configuration in force every
    /// [`POLL_INTERVAL`] and on `SIGHUP`, until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let signalled = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let signalled = std::future::pending::<()>();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = signalled => tracing::info!("SIGHUP: reading the configuration files again"),
            }
            match self.reload(FILE_AUTHOR).await {
                Ok(o) if o.changed => {
                    tracing::info!(config = %o.config_digest, revisions = o.revisions.len(), connectors = ?o.connectors_rebuilt, "configuration files changed on disk: applied");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "configuration files on disk do not load; the configuration in force stays");
                }
            }
        }
    }
}

/// The text stored under a configuration digest: every file, each headed
/// by its path (the audit trail's `configuration <digest>` names it).
pub fn snapshot_text(config: &HubConfig) -> String {
    let mut out = String::new();
    for (p, t) in &config.sources {
        out.push_str("# ==> ");
        out.push_str(&drehscheibe_config::relative_path(config.base_dir(), p));
        out.push_str(" <==\n");
        out.push_str(t);
        if !t.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// Write `text` to `path` so that a crash leaves the old or the new file,
/// never a part: temporary file beside it, `fsync`, `rename`, `fsync` of
/// the directory.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn read_optional(path: &Path) -> Result<Option<String>, AdminError> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| AdminError::Io(format!("{} is not valid UTF-8", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AdminError::Io(format!("reading {}: {e}", path.display()))),
    }
}

/// Limits of a rule package archive beyond its size.
const MAX_ARCHIVE_ENTRIES: usize = 2_000;
const MAX_ARCHIVE_UNPACKED: u64 = 128 * 1024 * 1024;

/// Unpack the rule package `archive` into `dir`; returns the package
/// folder (`dir`, or its one top folder when `rule.toml` is there).
fn unpack_package(archive: &[u8], dir: &Path) -> Result<PathBuf, AdminError> {
    let bad = |m: String| AdminError::Invalid(vec![format!("rule package archive: {m}")]);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive))
        .map_err(|e| bad(format!("not a ZIP archive: {e}")))?;
    if zip.len() > MAX_ARCHIVE_ENTRIES {
        return Err(bad(format!(
            "{} entries, at most {MAX_ARCHIVE_ENTRIES}",
            zip.len()
        )));
    }
    let mut unpacked = 0u64;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
        let Some(rel) = entry.enclosed_name() else {
            return Err(bad(format!("entry {:?} leaves the package", entry.name())));
        };
        if entry.is_symlink() {
            return Err(bad(format!("entry {:?} is a symbolic link", entry.name())));
        }
        let target = dir.join(&rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(io)?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut out = std::fs::File::create(&target).map_err(io)?;
        // Count what is really written, not what the header claims.
        let room = MAX_ARCHIVE_UNPACKED.saturating_sub(unpacked);
        let n = std::io::copy(&mut std::io::Read::take(&mut entry, room + 1), &mut out)
            .map_err(|e| bad(format!("{}: {e}", rel.display())))?;
        unpacked += n;
        if unpacked > MAX_ARCHIVE_UNPACKED {
            return Err(bad(format!(
                "unpacks to more than {MAX_ARCHIVE_UNPACKED} bytes"
            )));
        }
    }
    if dir.join("rule.toml").is_file() {
        return Ok(dir.to_path_buf());
    }
    let tops: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    match tops.as_slice() {
        [one] if one.join("rule.toml").is_file() => Ok(one.clone()),
        _ => Err(bad(
            "no rule.toml at its root or in its one top folder".to_owned()
        )),
    }
}

#[async_trait]
impl ConfigAdmin for FileConfigAdmin {
    fn current(&self) -> Arc<HubConfig> {
        self.router.config()
    }

    fn depot(&self) -> Arc<Depot> {
        self.router.depot()
    }

    async fn publish_rule(
        &self,
        archive: Bytes,
        author: &str,
    ) -> Result<PublishedRule, AdminError> {
        if !self.editable {
            return Err(AdminError::ReadOnly(
                "the configuration is read-only here ([console] editable = false)".into(),
            ));
        }
        if archive.len() > MAX_RULE_ARCHIVE_BYTES {
            return Err(AdminError::Invalid(vec![format!(
                "rule package archive: {} bytes, at most {MAX_RULE_ARCHIVE_BYTES}",
                archive.len()
            )]));
        }
        let _serial = self.lock.lock().await;
        let (depot_dir, catalog) = (self.depot_dir.clone(), self.catalog.clone());
        let done = tokio::task::spawn_blocking(move || {
            let tmp = tempfile::tempdir().map_err(io)?;
            let package_dir = unpack_package(&archive, tmp.path())?;
            let manifest = std::fs::read_to_string(package_dir.join("rule.toml")).map_err(io)?;
            let engines = crate::ruletools::engines(catalog.as_deref())
                .map_err(|e| AdminError::Io(format!("{e:#}")))?;
            let published = match drehscheibe_rules::publish(&package_dir, &depot_dir, engines) {
                Ok(p) => p,
                Err(drehscheibe_rules::PublishError::VersionExists { rule, .. }) => {
                    return Err(AdminError::Conflict {
                        path: format!("rules/{}/{}", rule.id, rule.version),
                        current: "published (versions are immutable: publish a new version)".into(),
                    })
                }
                Err(drehscheibe_rules::PublishError::TestsFailed {
                    rule,
                    total,
                    failed,
                }) => {
                    let mut lines = vec![format!(
                        "rule {rule}: {} of {total} test cases failed; nothing was published",
                        failed.len()
                    )];
                    lines.extend(failed.iter().map(|c| match &c.outcome {
                        drehscheibe_rules::testing::Outcome::Failed { message, .. } => {
                            format!("{}: {message}", c.name)
                        }
                        drehscheibe_rules::testing::Outcome::Passed => c.name.clone(),
                    }));
                    return Err(AdminError::Invalid(lines));
                }
                Err(e) => return Err(AdminError::Invalid(vec![e.to_string()])),
            };
            let engines = crate::ruletools::engines(catalog.as_deref())
                .map_err(|e| AdminError::Io(format!("{e:#}")))?;
            let depot = Depot::load_lenient(&depot_dir, engines)
                .map_err(|e| AdminError::Io(format!("loading the rule depot again: {e}")))?;
            Ok((published, manifest, depot))
        })
        .await
        .map_err(io)??;
        let (published, manifest, depot) = done;
        for e in depot.load_errors() {
            tracing::error!(problem = %e, "rule package not loaded");
        }
        self.router.set_depot(Arc::new(depot));
        let rule = published.rule;
        let tests_passed = published.results.len();
        let config = self.current();
        let revision = self
            .record(Revision {
                id: 0,
                path: format!("rules/{}/{}", rule.id, rule.version),
                author: author.to_owned(),
                at: Utc::now(),
                comment: format!(
                    "Regelversion veröffentlicht ({tests_passed} Testfälle bestanden)"
                ),
                old_text: None,
                old_sha256: None,
                new_sha256: Some(sha256_hex(&manifest)),
                new_text: Some(manifest),
                config_digest: config.digest.clone(),
            })
            .await?;
        tracing::info!(rule = %rule, author, tests_passed, "rule version published");
        Ok(PublishedRule {
            id: rule.id,
            version: rule.version,
            tests_passed,
            revision,
        })
    }

    fn status(&self) -> ReloadStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    async fn files(&self) -> Result<Vec<ConfigFile>, AdminError> {
        let config = self.current();
        let tenant_of: BTreeMap<&PathBuf, &str> = config
            .tenants
            .iter()
            .map(|t| (&t.source, t.id.as_str()))
            .collect();
        let mut out = Vec::new();
        for (i, (path, applied)) in config.sources.iter().enumerate() {
            let p = path.clone();
            let text = tokio::task::spawn_blocking(move || read_optional(&p))
                .await
                .map_err(io)??
                .unwrap_or_else(|| applied.clone());
            let main = i == 0;
            out.push(ConfigFile {
                path: self.relative(path),
                kind: if main {
                    FileKind::Main
                } else {
                    FileKind::Tenant
                },
                tenant: tenant_of.get(path).map(|t| (*t).to_owned()),
                editable: self.editable && !main,
                sha256: sha256_hex(&text),
                text,
            });
        }
        Ok(out)
    }

    async fn check(&self, change: &Change) -> Result<(), AdminError> {
        let config = self.current();
        let path = self.tenant_path(&config, &change.path)?;
        if change.text.len() > MAX_FILE_BYTES {
            return Err(AdminError::Invalid(vec![format!(
                "{}: the file is larger than {MAX_FILE_BYTES} bytes",
                change.path
            )]));
        }
        let mut overrides = Overrides::new();
        overrides.insert(path, Some(change.text.clone()));
        let next = self.candidate(overrides).await?;
        self.connectors_for(&next).map(|_| ())
    }

    async fn change(&self, change: &Change, author: &str) -> Result<Revision, AdminError> {
        if !self.editable {
            return Err(AdminError::ReadOnly(
                "the configuration is read-only here ([console] editable = false)".into(),
            ));
        }
        if change.text.len() > MAX_FILE_BYTES {
            return Err(AdminError::Invalid(vec![format!(
                "{}: the file is larger than {MAX_FILE_BYTES} bytes",
                change.path
            )]));
        }
        let _serial = self.lock.lock().await;
        // Hand edits first, so that they are recorded as theirs and not
        // folded into this change. Files that do not load refuse the
        // change below anyway, with their errors.
        let _ = self.reload_locked(FILE_AUTHOR).await;
        let config = self.current();
        let path = self.tenant_path(&config, &change.path)?;
        let p = path.clone();
        let on_disk = tokio::task::spawn_blocking(move || read_optional(&p))
            .await
            .map_err(io)??;
        let disk_sha = on_disk.as_deref().map(sha256_hex);
        if let Some(expect) = &change.expect_sha256 {
            if disk_sha.as_deref() != Some(expect.as_str()) {
                return Err(AdminError::Conflict {
                    path: change.path.clone(),
                    current: disk_sha.unwrap_or_else(|| "absent".into()),
                });
            }
        }
        if on_disk.as_deref() == Some(change.text.as_str()) {
            return Err(AdminError::Invalid(vec![format!(
                "{}: unchanged (the text is the file's text)",
                change.path
            )]));
        }
        let mut overrides = Overrides::new();
        overrides.insert(path.clone(), Some(change.text.clone()));
        let next = self.candidate(overrides).await?;
        let (registry, rebuilt) = self.connectors_for(&next)?;
        let (p, text) = (path.clone(), change.text.clone());
        tokio::task::spawn_blocking(move || write_atomically(&p, &text))
            .await
            .map_err(io)?
            .map_err(|e| AdminError::Io(format!("writing {}: {e}", path.display())))?;
        let rev = Revision {
            id: 0,
            path: change.path.clone(),
            author: author.to_owned(),
            at: Utc::now(),
            comment: change.comment.clone(),
            old_sha256: disk_sha,
            old_text: on_disk.clone(),
            new_sha256: Some(sha256_hex(&change.text)),
            new_text: Some(change.text.clone()),
            config_digest: next.digest.clone(),
        };
        let rev = match self.record(rev).await {
            Ok(r) => r,
            Err(e) => {
                // Not recorded: put the old text back, so the file and
                // the history do not part.
                let (p, old) = (path.clone(), on_disk);
                let _ = tokio::task::spawn_blocking(move || match old {
                    Some(t) => write_atomically(&p, &t),
                    None => std::fs::remove_file(&p),
                })
                .await;
                return Err(e);
            }
        };
        tracing::info!(revision = rev.id, path = %rev.path, author, connectors = ?rebuilt, "configuration changed");
        self.apply(next, registry).await;
        Ok(rev)
    }

    async fn history(
        &self,
        path: Option<&str>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RevisionSummary>, AdminError> {
        let limit = limit.clamp(1, MAX_HISTORY_PAGE);
        let (prefix, after) = match path {
            Some(p) => (file_prefix(p), before.map(|b| file_key(p, b))),
            None => (b"rev/".to_vec(), before.map(rev_key)),
        };
        let entries = self
            .history
            .scan(&prefix, after.as_deref(), limit)
            .await
            .map_err(io)?;
        let mut out = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            if path.is_some() {
                if let Some(id) = id_of_key(&k) {
                    out.push(self.summary(id).await?);
                }
            } else {
                out.push(serde_json::from_slice(&v).map_err(io)?);
            }
        }
        Ok(out)
    }

    async fn revision(&self, id: u64) -> Result<Revision, AdminError> {
        let s = self.summary(id).await?;
        let texts: Texts = match self.history.get(&text_key(id)).await.map_err(io)? {
            Some(v) => serde_json::from_slice(&v).map_err(io)?,
            None => {
                return Err(AdminError::Io(format!(
                    "revision {id}: its texts are missing"
                )))
            }
        };
        Ok(Revision {
            id: s.id,
            path: s.path,
            author: s.author,
            at: s.at,
            comment: s.comment,
            old_text: texts.old_text,
            old_sha256: s.old_sha256,
            new_text: texts.new_text,
            new_sha256: s.new_sha256,
            config_digest: s.config_digest,
        })
    }

    async fn rollback(&self, id: u64, author: &str, comment: &str) -> Result<Revision, AdminError> {
        let rev = self.revision(id).await?;
        let Some(text) = rev.old_text else {
            return Err(AdminError::Invalid(vec![format!(
                "revision {id} added {}; removing files is not supported here",
                rev.path
            )]));
        };
        let comment = if comment.trim().is_empty() {
            format!("Rücknahme von Revision {id}")
        } else {
            comment.to_owned()
        };
        self.change(
            &Change {
                path: rev.path,
                text,
                expect_sha256: None,
                comment,
            },
            author,
        )
        .await
    }

    async fn reload(&self, author: &str) -> Result<ReloadOutcome, AdminError> {
        let _serial = self.lock.lock().await;
        self.reload_locked(author).await
    }
}
