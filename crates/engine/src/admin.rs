//! Configuration administration of a running hub (ADR 0021).
//!
//! The configuration files stay the source of truth. [`ConfigAdmin`] is
//! the one service through which the JSON API (`/api/v1/config/…`) and
//! the console read and change them:
//!
//! ```text
//!  candidate text ──► HubConfig::load + rule checks (as `config check`)
//!        │ ok                     │ errors: refused, nothing written
//!        ▼
//!  temp file + fsync + rename ──► revision in the store ──► swap in:
//!                                  (author, time, old/new    DepotRouter's config,
//!                                   text + SHA-256)          changed connectors
//! ```
//!
//! Files are named by their path relative to the main file's directory,
//! with `/` separators (`tenants/musterstadt.toml`). The main file is
//! read-only here: what it holds (listener, TLS, store, channels, tokens)
//! needs a restart.
//!
//! The implementation lives at the binary edge (`drehscheibe-cli`), which
//! knows the plugins and connector factories; the engine and the HTTP
//! faces know only this trait.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use drehscheibe_config::HubConfig;
use drehscheibe_model::auth::{Principal, Role};
use serde::{Deserialize, Serialize};

/// Who made a change found on disk rather than through the API.
pub const FILE_AUTHOR: &str = "Datei";

/// One configuration file as it is on disk now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfigFile {
    /// Path relative to the main file's directory, `/`-separated.
    pub path: String,
    /// `main` or `tenant`.
    pub kind: FileKind,
    /// The tenant the file defines (tenant files only).
    pub tenant: Option<String>,
    /// Whether [`ConfigAdmin::change`] may write it.
    pub editable: bool,
    /// The file's text.
    pub text: String,
    /// Hex SHA-256 of `text`.
    pub sha256: String,
}

/// What a configuration file holds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Main,
    Tenant,
}

/// One entry of the configuration history. History only grows: a
/// rollback is a new revision with an earlier text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Revision {
    /// 1, 2, 3, … in the order the store recorded them.
    pub id: u64,
    /// The file changed (see [`ConfigFile::path`]).
    pub path: String,
    /// The token name of the author, or [`FILE_AUTHOR`] for a change
    /// found on disk.
    pub author: String,
    pub at: DateTime<Utc>,
    /// Free text given with the change (`Rücknahme von Revision 3` for a
    /// rollback without one).
    pub comment: String,
    /// The text before (`None`: the file was new).
    pub old_text: Option<String>,
    pub old_sha256: Option<String>,
    /// The text after (`None`: the file was removed).
    pub new_text: Option<String>,
    pub new_sha256: Option<String>,
    /// The configuration digest ([`HubConfig::digest`]) in force after
    /// the change.
    pub config_digest: String,
}

/// A revision without its texts: what history listings show (the texts
/// come with [`ConfigAdmin::revision`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RevisionSummary {
    pub id: u64,
    pub path: String,
    pub author: String,
    pub at: DateTime<Utc>,
    pub comment: String,
    /// `None`: the file was new.
    pub old_sha256: Option<String>,
    /// `None`: the file was removed.
    pub new_sha256: Option<String>,
    pub config_digest: String,
}

impl From<&Revision> for RevisionSummary {
    fn from(r: &Revision) -> Self {
        Self {
            id: r.id,
            path: r.path.clone(),
            author: r.author.clone(),
            at: r.at,
            comment: r.comment.clone(),
            old_sha256: r.old_sha256.clone(),
            new_sha256: r.new_sha256.clone(),
            config_digest: r.config_digest.clone(),
        }
    }
}

/// The outcome of a [`ConfigAdmin::reload`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// Whether anything differed from the configuration in force.
    pub changed: bool,
    /// Revisions recorded for the files that changed.
    pub revisions: Vec<Revision>,
    /// Connectors rebuilt (`tenant/id`), added or removed.
    pub connectors_rebuilt: Vec<String>,
    /// The digest in force afterwards.
    pub config_digest: String,
    /// The main file changed on disk: that takes a restart, which this
    /// says; the rest was applied.
    pub restart_needed: bool,
}

/// What the last look at the files found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ReloadStatus {
    /// The digest in force.
    pub config_digest: String,
    /// When the configuration in force was applied.
    pub applied_at: Option<DateTime<Utc>>,
    /// The files on disk do not load: the error, and since when. The
    /// configuration in force stays as it was.
    pub disk_error: Option<String>,
    pub disk_error_since: Option<DateTime<Utc>>,
    /// The main file differs from the one the hub started with.
    pub restart_needed: bool,
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The candidate does not load: every problem, with file, key and
    /// line, as `config check` prints them.
    #[error("the configuration does not load:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// No such file, or not one the caller may see.
    #[error("no configuration file {0:?}")]
    NotFound(String),
    /// The file may not be changed here (the main file; or the console
    /// is read-only: `[console] editable = false`).
    #[error("{0}")]
    ReadOnly(String),
    /// The file changed since the caller read it (`expect_sha256`).
    #[error("the file {path} changed meanwhile (now {current})")]
    Conflict { path: String, current: String },
    /// No such revision.
    #[error("no configuration revision {0}")]
    NoRevision(u64),
    /// Writing the file or the store failed.
    #[error("{0}")]
    Io(String),
}

/// A proposed change of one file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Change {
    /// See [`ConfigFile::path`].
    pub path: String,
    /// The complete new text.
    pub text: String,
    /// The SHA-256 of the text the change was made on; a different file on
    /// disk refuses it ([`AdminError::Conflict`]).
    #[serde(default)]
    pub expect_sha256: Option<String>,
    #[serde(default)]
    pub comment: String,
}

/// A rule version published through [`ConfigAdmin::publish_rule`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublishedRule {
    pub id: String,
    pub version: String,
    /// The package's own test cases, all passed.
    pub tests_passed: usize,
    /// The history entry (path `rules/<id>/<version>`, the manifest as
    /// its text).
    pub revision: Revision,
}

/// Most revisions one [`ConfigAdmin::history`] call returns.
pub const MAX_HISTORY_PAGE: usize = 200;

/// Largest configuration file the service writes or applies (a hand edit
/// beyond it is refused like one that does not load).
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Largest pair of texts [`unified_diff`] compares (together); beyond it
/// the diff says so instead.
pub const MAX_DIFF_BYTES: usize = 4 * 1024 * 1024;

/// Longest a diff computes before it settles for a coarser result.
pub const DIFF_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The unified diff from `old` to `new` under the headers `from` and
/// `to`: bounded in input size ([`MAX_DIFF_BYTES`]) and time
/// ([`DIFF_TIMEOUT`]; a diff that runs out of time is still correct, only
/// less minimal). The one diff of configuration revisions, rule versions
/// and dry-run comparisons, in the API and the console alike.
pub fn unified_diff(old: &str, new: &str, from: &str, to: &str) -> String {
    if old.len() + new.len() > MAX_DIFF_BYTES {
        return format!(
            "--- {from}\n+++ {to}\n(not compared: {} and {} bytes, more than {MAX_DIFF_BYTES} together)\n",
            old.len(),
            new.len()
        );
    }
    similar::TextDiff::configure()
        .timeout(DIFF_TIMEOUT)
        .diff_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(from, to)
        .to_string()
}

/// The name a configuration file is downloaded under: its last path
/// segment, only letters, digits, `-`, `_` and `.` kept.
pub fn download_name(path: &str) -> String {
    let name: String = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if name.trim_matches('.').is_empty() {
        "config.toml".to_owned()
    } else {
        name
    }
}

/// Largest rule package archive [`ConfigAdmin::publish_rule`] takes.
pub const MAX_RULE_ARCHIVE_BYTES: usize = 32 * 1024 * 1024;

/// The configuration service of a running hub (see the module docs).
#[async_trait]
pub trait ConfigAdmin: Send + Sync {
    /// The rule depot in force.
    fn depot(&self) -> Arc<drehscheibe_rules::Depot>;

    /// Publish the rule package in `archive` (a ZIP archive with
    /// `rule.toml` at its root or in its one top folder): it must load,
    /// its own test cases must pass and its version must be new
    /// (versions are immutable); then it is copied into the depot, the
    /// depot is loaded again and put in force, and the publication is
    /// recorded in the history. Refusals are [`AdminError::Invalid`] (with
    /// every failed case) or [`AdminError::Conflict`] (version exists).
    async fn publish_rule(
        &self,
        archive: bytes::Bytes,
        author: &str,
    ) -> Result<PublishedRule, AdminError>;

    /// The configuration in force.
    fn current(&self) -> Arc<HubConfig>;

    /// The state of the files against the configuration in force.
    fn status(&self) -> ReloadStatus;

    /// Every configuration file, main file first, then tenant files by
    /// path.
    async fn files(&self) -> Result<Vec<ConfigFile>, AdminError>;

    /// Check `change` exactly like `config check` would with it written,
    /// without writing anything.
    async fn check(&self, change: &Change) -> Result<(), AdminError>;

    /// Check, write, record and apply `change` (see the module docs).
    async fn change(&self, change: &Change, author: &str) -> Result<Revision, AdminError>;

    /// Revisions without their texts, newest first: of one file, or of
    /// all; at most `limit` (capped at [`MAX_HISTORY_PAGE`]), older than
    /// `before` when given.
    async fn history(
        &self,
        path: Option<&str>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RevisionSummary>, AdminError>;

    async fn revision(&self, id: u64) -> Result<Revision, AdminError>;

    /// Undo revision `id`: write the text its file had before it, as a new
    /// revision (history only grows). This also undoes the file's later
    /// revisions.
    async fn rollback(&self, id: u64, author: &str, comment: &str) -> Result<Revision, AdminError>;

    /// Look at the files on disk and apply what changed there (hand
    /// edits), recording them as by `author`.
    async fn reload(&self, author: &str) -> Result<ReloadOutcome, AdminError>;
}

/// What `principal` may see of `file`'s text: operators all of it;
/// anyone else the text with inline secrets (`{ value = "…" }`) masked
/// (see [`drehscheibe_config::redact_inline_secrets`]). The SHA-256 stays
/// that of the file.
///
/// The SHA-256 shown is that of the text shown: the file's own digest
/// would let someone who knows every other byte test guesses of a masked
/// secret.
pub fn file_as_seen_by(principal: &Principal, mut file: ConfigFile) -> ConfigFile {
    if !matches!(principal.role, Role::Operator) {
        file.text = redact(&file.text);
        file.sha256 = sha256_hex(&file.text);
    }
    file
}

/// [`file_as_seen_by`] for a revision's two texts and digests.
pub fn revision_as_seen_by(principal: &Principal, mut rev: Revision) -> Revision {
    if !matches!(principal.role, Role::Operator) {
        rev.old_text = rev.old_text.as_deref().map(redact);
        rev.new_text = rev.new_text.as_deref().map(redact);
        rev.old_sha256 = rev.old_text.as_deref().map(sha256_hex);
        rev.new_sha256 = rev.new_text.as_deref().map(sha256_hex);
    }
    rev
}

/// [`revision_as_seen_by`] for a summary: a non-operator sees no digests.
pub fn summary_as_seen_by(principal: &Principal, mut rev: RevisionSummary) -> RevisionSummary {
    if !matches!(principal.role, Role::Operator) {
        rev.old_sha256 = None;
        rev.new_sha256 = None;
    }
    rev
}

/// What `principal` may see of the reload status: operators all of it;
/// anyone else not the text of a load error (it names other Kommunen's
/// files, keys and lines), only that there is one.
pub fn status_as_seen_by(principal: &Principal, mut status: ReloadStatus) -> ReloadStatus {
    if !matches!(principal.role, Role::Operator) && status.disk_error.is_some() {
        status.disk_error =
            Some("the configuration files on disk do not load (details for operators)".into());
    }
    status
}

/// Hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

fn redact(text: &str) -> String {
    drehscheibe_config::redact_inline_secrets(text)
        .unwrap_or_else(|| "# (not shown: the file is not valid TOML)\n".to_owned())
}

/// Whether `principal` may read `file`: operators every file, a tenant
/// its own Kommune's file.
pub fn may_read_file(principal: &Principal, file: &ConfigFile) -> bool {
    match &principal.role {
        Role::Operator => true,
        Role::Tenant { tenant } => {
            file.kind == FileKind::Tenant && file.tenant.as_deref() == Some(tenant)
        }
        Role::Sender { .. } => false,
    }
}

/// The files `principal` may read.
pub async fn visible_files(
    admin: &dyn ConfigAdmin,
    principal: &Principal,
) -> Result<Vec<ConfigFile>, AdminError> {
    Ok(admin
        .files()
        .await?
        .into_iter()
        .filter(|f| may_read_file(principal, f))
        .map(|f| file_as_seen_by(principal, f))
        .collect())
}

/// Whether `principal` may read the revisions of the file `path`:
/// operators all, a tenant those of its own file.
pub async fn may_read_revisions_of(
    admin: &dyn ConfigAdmin,
    principal: &Principal,
    path: &str,
) -> Result<bool, AdminError> {
    if matches!(principal.role, Role::Operator) {
        return Ok(true);
    }
    Ok(visible_files(admin, principal)
        .await?
        .iter()
        .any(|f| f.path == path))
}
