//! The directory intake adapter: polls a folder and submits its files.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use drehscheibe_model::{
    AdapterError, InputAdapter, Intake, IntakeError, SenderIdentity, Submission,
};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use crate::fsutil::{blocking, exists, free_name, sync_dir, write_atomic};
use crate::DirectoryError;

const WORK_DIR: &str = ".work";
const PROCESSED_DIR: &str = "processed";
const REJECTED_DIR: &str = "rejected";
const ID_SUFFIX: &str = ".id";
const REASON_SUFFIX: &str = ".reason.txt";

/// Settings of one watched intake folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryIntakeSettings {
    /// Input channel the files are submitted to.
    pub channel: String,
    /// The watched folder; `processed/`, `rejected/` and `.work/` are
    /// created inside it.
    pub path: PathBuf,
    /// Time between two scans of the folder.
    pub poll_interval: Duration,
    /// How long size and modification time must stay unchanged before a
    /// file counts as complete. Zero trusts writers that rename finished
    /// files into the folder.
    pub settle: Duration,
    /// Media type for every file; `None` derives it from the extension
    /// (`.xml` → `application/xml`, `.json` → `application/json`, other
    /// files are rejected).
    pub content_type: Option<String>,
}

/// An [`InputAdapter`] that polls a folder for files to submit.
///
/// Each round it first resubmits files left in `.work/` (by a crash, or
/// because the hub was unavailable), then scans the folder. A file is
/// picked up once its size and modification time have not changed for
/// [`settle`](DirectoryIntakeSettings::settle), unless it looks temporary
/// or hidden (`.`-prefixed, `*.tmp`, `*.part`, `~`-suffixed); folders are
/// ignored. Picking up means renaming it into `.work/`, which is atomic, so
/// a second hub instance cannot take the same file.
///
/// A symbolic link is never followed (it could point at any file the hub
/// may read, outside the folder): the link itself is moved to `rejected/`
/// with a reason file, and a warning is logged. So is a file whose name is
/// not UTF-8.
///
/// File names come from whoever writes into the folder: the log shows
/// them escaped (Rust `Debug` form, `"a\nb.xml"`), so a name with a line
/// break cannot forge log lines.
///
/// The idempotency key is `dir:<file name>:<sha256 of content>`: a file
/// submitted again after a crash (between submit and move) returns the
/// first message id instead of creating a duplicate.
///
/// Outcomes:
/// * accepted → `processed/<timestamp>-<name>` and
///   `processed/<timestamp>-<name>.id` (the message id);
/// * refused because of the file itself (malformed, hostile, too large,
///   unsupported type, idempotency conflict) →
///   `rejected/<timestamp>-<name>` and `…reason.txt` (`<kind>: <message>`);
/// * hub unavailable, shutting down, or the channel unknown/forbidden (a
///   configuration matter, not the file's fault) → the file stays in
///   `.work/` and is tried again next round.
///
/// Polling instead of inotify: change notifications are unreliable or
/// missing on network shares, where such folders usually live.
#[derive(Debug)]
pub struct DirectoryIntake {
    settings: DirectoryIntakeSettings,
    name: String,
}

impl DirectoryIntake {
    /// Checks the settings; folders are created when the adapter runs.
    ///
    /// # Errors
    ///
    /// [`DirectoryError::InvalidSettings`] for an empty channel or path, a
    /// zero poll interval or an empty content type.
    pub fn new(settings: DirectoryIntakeSettings) -> Result<Self, DirectoryError> {
        let invalid = |s: &str| Err(DirectoryError::InvalidSettings(s.to_owned()));
        if settings.channel.trim().is_empty() {
            return invalid("intake channel is empty");
        }
        if settings.path.as_os_str().is_empty() {
            return invalid("intake folder path is empty");
        }
        if settings.poll_interval.is_zero() {
            return invalid("poll interval must be greater than zero");
        }
        if settings
            .content_type
            .as_deref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return invalid("content type is empty");
        }
        Ok(Self {
            name: format!("directory:{}", settings.channel),
            settings,
        })
    }
}

#[async_trait]
impl InputAdapter for DirectoryIntake {
    fn name(&self) -> &str {
        &self.name
    }

    async fn run(
        self: Box<Self>,
        intake: Arc<dyn Intake>,
        shutdown: CancellationToken,
    ) -> Result<(), AdapterError> {
        if !intake.channel_exists(&self.settings.channel) {
            return Err(AdapterError {
                adapter: self.name.clone(),
                reason: format!("unknown channel {:?}", self.settings.channel),
            });
        }
        let worker = Worker {
            settings: self.settings,
            intake,
        };
        let mut tracker = Tracker::default();
        let mut failing = false;
        tracing::info!(adapter = %self.name, folder = %worker.settings.path.display(), "directory intake started");
        loop {
            match worker.round(&mut tracker, &shutdown).await {
                Ok(Flow::Continue) => {
                    if failing {
                        tracing::info!(adapter = %self.name, "intake folder usable again");
                        failing = false;
                    }
                }
                Ok(Flow::Stop) => break,
                Err(e) => {
                    // Log once per failure period, not every poll.
                    if !failing {
                        tracing::warn!(adapter = %self.name, error = %e, "intake folder not usable");
                        failing = true;
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(worker.settings.poll_interval) => {}
            }
        }
        tracing::info!(adapter = %self.name, "directory intake stopped");
        Ok(())
    }
}

/// Whether to go on after a file or round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// The hub is shutting down or cancellation was requested.
    Stop,
}

/// What became of one file in `.work/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Moved to `processed/` or `rejected/` (or gone).
    Done,
    /// Left in `.work/`; stop this round and try again later.
    Retry,
    /// Left in `.work/`; the hub is shutting down.
    Stop,
}

struct Worker {
    settings: DirectoryIntakeSettings,
    intake: Arc<dyn Intake>,
}

impl Worker {
    fn root(&self) -> &Path {
        &self.settings.path
    }

    fn work(&self) -> PathBuf {
        self.root().join(WORK_DIR)
    }

    /// One poll: leftovers in `.work/` first, then completed new files.
    async fn round(&self, tracker: &mut Tracker, shutdown: &CancellationToken) -> io::Result<Flow> {
        let root = self.root().to_path_buf();
        blocking(move || {
            for dir in [WORK_DIR, PROCESSED_DIR, REJECTED_DIR] {
                std::fs::create_dir_all(root.join(dir))?;
            }
            Ok(())
        })
        .await?;

        let work = self.work();
        let leftovers = list_files(work.clone(), false).await?.files;
        for (name, _) in leftovers {
            if shutdown.is_cancelled() {
                return Ok(Flow::Stop);
            }
            let Some(name) = name.to_str() else {
                continue;
            };
            match self.process(name).await? {
                Outcome::Done => {}
                Outcome::Retry => return Ok(Flow::Continue),
                Outcome::Stop => return Ok(Flow::Stop),
            }
        }

        let Listing { files, symlinks } = list_files(self.root().to_path_buf(), true).await?;
        for link in symlinks {
            if shutdown.is_cancelled() {
                return Ok(Flow::Stop);
            }
            tracing::warn!(file = ?link, "symbolic link in the intake folder rejected");
            self.reject_entry(
                &link,
                &format!(
                    "symbolic-link: {link:?} is a symbolic link; the intake folder accepts \
                     regular files only (a link is not followed, it may point outside the folder)\n"
                ),
            )
            .await?;
        }
        let ready = tracker.update(files, Instant::now(), self.settings.settle);
        for os_name in ready {
            if shutdown.is_cancelled() {
                return Ok(Flow::Stop);
            }
            let Some(name) = os_name.to_str().map(str::to_owned) else {
                tracing::warn!(file = ?os_name, "file name is not UTF-8, file rejected");
                self.reject_entry(
                    &os_name,
                    "malformed-payload: file name is not valid UTF-8\n",
                )
                .await?;
                tracker.forget(&os_name);
                continue;
            };
            let (from, to) = (self.root().join(&name), work.join(&name));
            // A file of the same name still waits in `.work/`: let it go first.
            let to_check = to.clone();
            if blocking(move || exists(&to_check)).await? {
                continue;
            }
            match tokio::fs::rename(&from, &to).await {
                Ok(()) => {}
                // Taken by someone else (another instance, the operator).
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    tracker.forget(&os_name);
                    continue;
                }
                Err(e) => return Err(e),
            }
            tracker.forget(&os_name);
            match self.process(&name).await? {
                Outcome::Done => {}
                Outcome::Retry => return Ok(Flow::Continue),
                Outcome::Stop => return Ok(Flow::Stop),
            }
        }
        Ok(Flow::Continue)
    }

    /// Submits `.work/<name>` and files it according to the answer.
    async fn process(&self, name: &str) -> io::Result<Outcome> {
        let path = self.work().join(name);
        let metadata = match tokio::fs::metadata(&path).await {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Outcome::Done),
            Err(e) => return Err(e),
        };
        let limit = self.intake.max_payload_bytes();
        if metadata.len() > limit {
            return self
                .reject(name, &IntakeError::TooLarge { limit })
                .await
                .map(|()| Outcome::Done);
        }
        let Some(content_type) = self.content_type_for(name) else {
            let e = IntakeError::UnsupportedMediaType(format!(
                "file {name:?}: only .xml and .json files are accepted"
            ));
            return self.reject(name, &e).await.map(|()| Outcome::Done);
        };
        let mut payload = Vec::new();
        tokio::fs::File::open(&path)
            .await?
            .take(limit.saturating_add(1))
            .read_to_end(&mut payload)
            .await?;
        if payload.len() as u64 > limit {
            return self
                .reject(name, &IntakeError::TooLarge { limit })
                .await
                .map(|()| Outcome::Done);
        }
        let sha = drehscheibe_model::sha256_hex(&payload);
        let submission = Submission {
            channel: self.settings.channel.clone(),
            sender: SenderIdentity {
                adapter: "directory".into(),
                principal: format!("directory:{}", self.settings.channel),
                remote_addr: None,
            },
            content_type,
            payload: Bytes::from(payload),
            attachments: Vec::new(),
            idempotency_key: Some(format!("dir:{name}:{sha}")),
            correlation_ids: BTreeMap::from([("filename".to_owned(), name.to_owned())]),
        };
        match self.intake.submit(submission).await {
            Ok(accepted) => {
                tracing::info!(
                    file = ?name,
                    message_id = %accepted.id,
                    duplicate = accepted.duplicate,
                    "file accepted"
                );
                self.archive(name, PROCESSED_DIR, ID_SUFFIX, format!("{}\n", accepted.id))
                    .await?;
                Ok(Outcome::Done)
            }
            Err(e) => match e {
                IntakeError::UnsupportedMediaType(_)
                | IntakeError::TooLarge { .. }
                | IntakeError::Malformed(_)
                | IntakeError::Hostile(_)
                | IntakeError::IdempotencyConflict(_)
                | IntakeError::Infected { .. } => {
                    self.reject(name, &e).await?;
                    Ok(Outcome::Done)
                }
                IntakeError::ShuttingDown => Ok(Outcome::Stop),
                IntakeError::Unavailable(_) => {
                    tracing::warn!(file = ?name, error = %e, "hub unavailable, file kept for the next round");
                    Ok(Outcome::Retry)
                }
                IntakeError::UnknownChannel(_) | IntakeError::Forbidden(_) => {
                    tracing::error!(file = ?name, error = %e, "channel refused the file, kept in .work for the next round");
                    Ok(Outcome::Retry)
                }
            },
        }
    }

    fn content_type_for(&self, name: &str) -> Option<String> {
        if let Some(ct) = &self.settings.content_type {
            return Some(ct.clone());
        }
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "xml" => Some("application/xml".into()),
            "json" => Some("application/json".into()),
            _ => None,
        }
    }

    async fn reject(&self, name: &str, error: &IntakeError) -> io::Result<()> {
        tracing::warn!(file = ?name, kind = error.kind(), error = %error, "file rejected");
        self.archive(
            name,
            REJECTED_DIR,
            REASON_SUFFIX,
            format!("{}: {error}\n", error.kind()),
        )
        .await
    }

    /// Moves `.work/<name>` to `<dir>/<timestamp>-<name>`, after writing
    /// the companion `<…><suffix>` file with `content`.
    async fn archive(
        &self,
        name: &str,
        dir: &str,
        suffix: &str,
        content: String,
    ) -> io::Result<()> {
        let (work, dir) = (self.work(), self.root().join(dir));
        let (name, suffix) = (name.to_owned(), suffix.to_owned());
        blocking(move || {
            let stamp = Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
            let base = free_name(&dir, &format!("{stamp}-{name}"), &[&suffix])?;
            write_atomic(
                &dir,
                &dir.join(format!("{base}{suffix}")),
                content.as_bytes(),
            )?;
            std::fs::rename(work.join(&name), dir.join(&base))?;
            sync_dir(&dir)?;
            sync_dir(&work)
        })
        .await
    }

    /// Moves an entry of the watched folder that is never submitted (a
    /// name that is not UTF-8, a symbolic link — the link itself, never
    /// its target) straight to `rejected/`, with `reason` beside it.
    async fn reject_entry(&self, os_name: &OsString, reason: &str) -> io::Result<()> {
        let (root, rejected) = (self.root().to_path_buf(), self.root().join(REJECTED_DIR));
        let (os_name, reason) = (os_name.clone(), reason.to_owned());
        blocking(move || {
            let lossy = os_name.to_string_lossy().replace('\u{FFFD}', "_");
            let stamp = Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
            let base = free_name(&rejected, &format!("{stamp}-{lossy}"), &[REASON_SUFFIX])?;
            write_atomic(
                &rejected,
                &rejected.join(format!("{base}{REASON_SUFFIX}")),
                reason.as_bytes(),
            )?;
            std::fs::rename(root.join(&os_name), rejected.join(&base))?;
            sync_dir(&rejected)
        })
        .await
    }
}

/// Size and modification time of a regular file.
type Observation = (u64, Option<SystemTime>);

/// What one scan of a folder found.
#[derive(Debug, Default)]
struct Listing {
    /// Regular files, sorted by name.
    files: Vec<(OsString, Observation)>,
    /// Symbolic links (whatever they point at), sorted by name.
    symlinks: Vec<OsString>,
}

/// Regular files and symbolic links directly in `dir` (folders and other
/// special files are left out); with `skip_temporary`, hidden and temporary
/// names are left out as well. Links are not followed.
async fn list_files(dir: PathBuf, skip_temporary: bool) -> io::Result<Listing> {
    blocking(move || {
        let mut files = Vec::new();
        let mut symlinks = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if skip_temporary && is_temporary(&name) {
                continue;
            }
            let metadata = match entry.metadata() {
                Ok(m) => m,
                // Vanished between listing and stat.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            // `DirEntry::metadata` does not follow links (lstat).
            if metadata.file_type().is_symlink() {
                symlinks.push(name);
                continue;
            }
            if !metadata.file_type().is_file() {
                continue;
            }
            files.push((name, (metadata.len(), metadata.modified().ok())));
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        symlinks.sort();
        Ok(Listing { files, symlinks })
    })
    .await
}

/// Hidden or temporary names that are never picked up.
fn is_temporary(name: &OsString) -> bool {
    let name = name.to_string_lossy();
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.ends_with('~')
        || lower.ends_with(".tmp")
        || lower.ends_with(".part")
}

/// Remembers since when each file has looked the same.
#[derive(Debug, Default)]
struct Tracker {
    seen: HashMap<OsString, (Observation, Instant)>,
}

impl Tracker {
    /// Records a scan and returns the files unchanged for at least
    /// `settle`, sorted by name. Files no longer present are forgotten.
    fn update(
        &mut self,
        observed: Vec<(OsString, Observation)>,
        now: Instant,
        settle: Duration,
    ) -> Vec<OsString> {
        let mut next = HashMap::with_capacity(observed.len());
        let mut ready = Vec::new();
        for (name, observation) in observed {
            let since = match self.seen.get(&name) {
                Some((seen, since)) if *seen == observation => *since,
                _ => now,
            };
            if now.saturating_duration_since(since) >= settle {
                ready.push(name.clone());
            }
            next.insert(name, (observation, since));
        }
        self.seen = next;
        ready.sort();
        ready
    }

    fn forget(&mut self, name: &OsString) {
        self.seen.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(name: &str, size: u64, mtime: u64) -> (OsString, Observation) {
        (
            name.into(),
            (
                size,
                Some(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime)),
            ),
        )
    }

    #[test]
    fn a_file_is_ready_only_after_staying_unchanged_for_settle() {
        let settle = Duration::from_secs(2);
        let t0 = Instant::now();
        let mut tracker = Tracker::default();
        assert!(tracker
            .update(vec![obs("a.xml", 10, 1)], t0, settle)
            .is_empty());
        // Grew: the clock restarts.
        let t1 = t0 + Duration::from_secs(3);
        assert!(tracker
            .update(vec![obs("a.xml", 20, 1)], t1, settle)
            .is_empty());
        // Touched without growing: restarts as well.
        let t2 = t1 + Duration::from_secs(3);
        assert!(tracker
            .update(vec![obs("a.xml", 20, 2)], t2, settle)
            .is_empty());
        let t3 = t2 + Duration::from_secs(1);
        assert!(tracker
            .update(vec![obs("a.xml", 20, 2)], t3, settle)
            .is_empty());
        let t4 = t2 + Duration::from_secs(2);
        assert_eq!(
            tracker.update(vec![obs("a.xml", 20, 2)], t4, settle),
            vec![OsString::from("a.xml")]
        );
    }

    #[test]
    fn vanished_files_are_forgotten_and_zero_settle_is_immediate() {
        let t0 = Instant::now();
        let mut tracker = Tracker::default();
        tracker.update(vec![obs("a.xml", 1, 1)], t0, Duration::from_secs(1));
        tracker.update(vec![], t0 + Duration::from_secs(5), Duration::from_secs(1));
        // Reappearing starts over.
        assert!(tracker
            .update(
                vec![obs("a.xml", 1, 1)],
                t0 + Duration::from_secs(6),
                Duration::from_secs(1)
            )
            .is_empty());
        assert_eq!(
            Tracker::default().update(vec![obs("b.json", 1, 1)], t0, Duration::ZERO),
            vec![OsString::from("b.json")]
        );
    }

    #[test]
    fn temporary_names_are_recognised() {
        for name in [".hidden.xml", "a.tmp", "a.TMP", "a.xml.part", "a.xml~"] {
            assert!(is_temporary(&name.into()), "{name}");
        }
        for name in ["a.xml", "tmp.xml", "partial.json"] {
            assert!(!is_temporary(&name.into()), "{name}");
        }
    }
}
