//! [`FsBlobStore`]: content-addressed attachments as files.
//!
//! Layout under the store directory:
//!
//! ```text
//! <dir>/tmp/<uuid>.part        being written (swept at open)
//! <dir>/staged/<sha>           marker of a staging in flight (see below)
//! <dir>/<sha[0..2]>/<sha>      finished blob, named by its hex SHA-256
//! ```
//!
//! `put` streams into a temp file in chunks while hashing, fsyncs it,
//! renames it into place and fsyncs the directory, so a returned
//! [`BlobRef`] survives a crash. Identical content is stored once.
//!
//! # Staged blobs
//!
//! Attachments of a submission the hub has not accepted yet are *staged*
//! ([`BlobStore::stage`]). Because identical content is stored once, a
//! refused request must not simply delete what it staged: another request
//! may be staging the same bytes, or a stored message may already
//! reference them. So the store counts, per content hash, the stagings in
//! flight in this process:
//!
//! * a `stage` that *creates* the blob file opens a hold (one holder) and
//!   writes a marker `<dir>/staged/<sha>` before the blob is renamed into
//!   place;
//! * a `stage` of content that exists and is held joins the hold; content
//!   that exists without a hold (stored earlier) is never removed by a
//!   discard;
//! * a plain `put` of held content marks the hold *kept*;
//! * [`BlobStore::keep_staged`] / [`BlobStore::discard_staged`] end one
//!   staging; when the last one ends, the marker is removed, and the blob
//!   too unless some staging was kept (a stored message references it).
//!
//! A crash leaves the markers of the stagings that were in flight.
//! [`FsBlobStore::sweep_staged`] (run at start, before requests are
//! served) removes those blobs no stored message references, and the
//! markers.
//!
//! # Retention: removing blobs no message references
//!
//! Blobs are shared by content, so retention cannot delete a message's
//! attachments with its payload. The store counts, per content hash, the
//! stored messages referencing it — raised by `accept` and lowered by the
//! purge in the same transaction — and records a blob whose count reached
//! zero as a candidate ([`Store::unreferenced_blobs`](crate::Store::unreferenced_blobs)).
//! The sweeper hands each candidate to
//! [`BlobStore::remove_unreferenced`], which deletes the file only
//!
//! * while holding the holds lock, so no staging can begin or end
//!   meanwhile,
//! * if no staging of that content is in flight: every `stage` registers
//!   a hold, also one of content stored earlier (such a hold is *kept*,
//!   so its discard never removes the blob), and ends it only after the
//!   message was accepted (count raised) or refused, and
//! * if the store's count, asked under the lock, is still zero.
//!
//! A staging that starts after the removal streams its bytes into a temp
//! file first and finds, under the lock, no blob in place: it moves its
//! own copy there. So a blob that a submission in flight is about to
//! reference is never deleted, and one that a stored message references
//! never is either. Why counting and not mark-and-sweep: a sweep would
//! read every record per round (as `sweep_staged` does once at start)
//! and still need the same lock against stagings; the count costs one
//! small write per attachment at accept and purge (ADR 0015). A plain
//! [`BlobStore::put`] registers no hold: content written that way and
//! referenced by a message accepted later must not rely on the
//! collector's timing — adapters stage.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use drehscheibe_model::{BlobError, BlobReader, BlobRef, BlobStore, UnreferencedCheck};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Read/write chunk size.
const CHUNK: usize = 64 * 1024;

/// Blob store on the local file system.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    dir: PathBuf,
    tmp: PathBuf,
    staged: PathBuf,
    /// Stagings in flight, by content hash (see the module docs). The lock
    /// also covers a `put`'s exists-check and rename, so a staging cannot
    /// slip between them.
    holds: Arc<tokio::sync::Mutex<HashMap<String, Hold>>>,
}

/// Stagings in flight of one blob.
#[derive(Debug)]
struct Hold {
    holders: usize,
    /// Some staging was kept or a plain `put` stored the same content: the
    /// blob stays when the last staging ends.
    kept: bool,
}

impl FsBlobStore {
    /// Open (or create) the store in `dir` and delete temp files left over
    /// from an interrupted `put`.
    pub fn open(dir: &Path) -> Result<FsBlobStore, BlobError> {
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        for entry in std::fs::read_dir(&tmp)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                tracing::debug!(path = %entry.path().display(), "removing stale blob temp file");
                std::fs::remove_file(entry.path())?;
            }
        }
        let staged = dir.join("staged");
        std::fs::create_dir_all(&staged)?;
        Ok(FsBlobStore {
            dir: dir.to_path_buf(),
            tmp,
            staged,
            holds: Arc::default(),
        })
    }

    /// Remove the blobs of stagings that were in flight when the process
    /// ended (their markers are left, see the module docs) and that no
    /// stored message references. Only markers last modified before
    /// `older_than` are looked at, so a staging that another process (or
    /// this one, if the sweep runs late) has just begun is never hit; pass
    /// the time the hub started. Returns how many blobs were removed.
    pub async fn sweep_staged(
        &self,
        store: &dyn crate::Store,
        older_than: SystemTime,
    ) -> crate::Result<u64> {
        let io = |e: std::io::Error| {
            crate::StoreError::Backend(format!("sweeping {}: {e}", self.staged.display()))
        };
        let mut candidates = HashSet::new();
        let mut entries = tokio::fs::read_dir(&self.staged).await.map_err(io)?;
        while let Some(entry) = entries.next_entry().await.map_err(io)? {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if self.path_of(&name).is_none() {
                continue;
            }
            let modified = entry.metadata().await.and_then(|m| m.modified());
            if modified.is_ok_and(|t| t < older_than) {
                candidates.insert(name);
            }
        }
        if candidates.is_empty() {
            return Ok(0);
        }
        let referenced = store.referenced_blobs(candidates.clone()).await?;
        let mut removed = 0;
        for sha in &candidates {
            if !referenced.contains(sha) {
                if let Some(path) = self.path_of(sha) {
                    if remove_if_present(&path).await.map_err(io)? {
                        removed += 1;
                    }
                }
            }
            remove_if_present(&self.staged.join(sha))
                .await
                .map_err(io)?;
        }
        tracing::info!(
            markers = candidates.len(),
            removed,
            "swept attachments staged for requests a crash interrupted"
        );
        Ok(removed)
    }

    /// Stream into a temp file, then move it into place under the hold
    /// lock; `stage` opens or joins a hold (see the module docs).
    async fn store(
        &self,
        mut reader: BlobReader,
        limit: u64,
        stage: bool,
    ) -> Result<BlobRef, BlobError> {
        let tmp_path = self
            .tmp
            .join(format!("{}.part", uuid::Uuid::now_v7().simple()));
        let mut guard = TempGuard {
            path: Some(tmp_path.clone()),
        };
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .await?;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            size = size.saturating_add(n as u64);
            if size > limit {
                drop(file);
                return Err(BlobError::TooLarge { limit });
            }
            let chunk = buf.get(..n).unwrap_or_default();
            hasher.update(chunk);
            file.write_all(chunk).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);

        let sha256 = hex::encode(hasher.finalize());
        let blob = BlobRef { sha256, size };
        let final_path = self
            .path_of(&blob.sha256)
            .ok_or_else(|| BlobError::NotFound(blob.sha256.clone()))?;
        let shard = final_path
            .parent()
            .ok_or_else(|| BlobError::NotFound(blob.sha256.clone()))?
            .to_path_buf();
        let mut holds = self.holds.lock().await;
        if tokio::fs::try_exists(&final_path).await? {
            // Same content already stored; the guard deletes the temp file.
            if let Some(hold) = holds.get_mut(&blob.sha256) {
                if stage {
                    hold.holders += 1;
                } else {
                    hold.kept = true;
                }
            } else if stage {
                // Stored earlier: the hold keeps the collector away while
                // this staging is in flight, and `kept` keeps its discard
                // from removing what others stored.
                holds.insert(
                    blob.sha256.clone(),
                    Hold {
                        holders: 1,
                        kept: true,
                    },
                );
            }
            return Ok(blob);
        }
        if stage {
            // The marker goes first: a crash after the rename must leave it.
            let marker = self.staged.join(&blob.sha256);
            tokio::fs::File::create(&marker).await?.sync_all().await?;
            sync_dir(&self.staged).await?;
        }
        if !tokio::fs::try_exists(&shard).await? {
            tokio::fs::create_dir_all(&shard).await?;
            sync_dir(&self.dir).await?;
        }
        tokio::fs::rename(&tmp_path, &final_path).await?;
        guard.path = None;
        if stage {
            holds.insert(
                blob.sha256.clone(),
                Hold {
                    holders: 1,
                    kept: false,
                },
            );
        }
        drop(holds);
        sync_dir(&shard).await?;
        Ok(blob)
    }

    /// End one staging of `blob`.
    async fn end_staging(&self, blob: &BlobRef, keep: bool) -> Result<(), BlobError> {
        let mut holds = self.holds.lock().await;
        let Some(hold) = holds.get_mut(&blob.sha256) else {
            // Not staged by this process as new content: stored earlier,
            // so never ours to remove.
            return Ok(());
        };
        hold.holders = hold.holders.saturating_sub(1);
        hold.kept |= keep;
        if hold.holders > 0 {
            return Ok(());
        }
        let kept = hold.kept;
        holds.remove(&blob.sha256);
        if !kept {
            if let Some(path) = self.path_of(&blob.sha256) {
                remove_if_present(&path).await?;
                tracing::debug!(sha256 = %blob.sha256, "removed a staged attachment nobody accepted");
            }
        }
        remove_if_present(&self.staged.join(&blob.sha256)).await?;
        Ok(())
    }

    /// Where the blob with this hash lives; `None` if `sha256` is not 64
    /// lowercase hex digits (so a reference can never name another path).
    fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        let valid = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !valid {
            return None;
        }
        let shard = sha256.get(..2)?;
        Some(self.dir.join(shard).join(sha256))
    }
}

/// Deletes the temp file unless disarmed (error, limit, cancellation).
struct TempGuard {
    path: Option<PathBuf>,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            if let Err(e) = std::fs::remove_file(&p) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %p.display(), error = %e, "could not remove blob temp file");
                }
            }
        }
    }
}

/// Remove a file; `false` if it was not there.
async fn remove_if_present(path: &Path) -> std::io::Result<bool> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// fsync a directory so a rename or create in it is durable.
async fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    #[cfg(unix)]
    {
        let d = tokio::fs::File::open(dir).await?;
        d.sync_all().await?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, reader: BlobReader, limit: u64) -> Result<BlobRef, BlobError> {
        self.store(reader, limit, false).await
    }

    async fn stage(&self, reader: BlobReader, limit: u64) -> Result<BlobRef, BlobError> {
        self.store(reader, limit, true).await
    }

    async fn keep_staged(&self, blob: &BlobRef) -> Result<(), BlobError> {
        self.end_staging(blob, true).await
    }

    async fn discard_staged(&self, blob: &BlobRef) -> Result<(), BlobError> {
        self.end_staging(blob, false).await
    }

    /// Returns `true` when the blob is gone (removed now, or not there),
    /// `false` when it stays (a staging holds it, or it is referenced).
    async fn remove_unreferenced(
        &self,
        sha256: &str,
        unreferenced: UnreferencedCheck<'_>,
    ) -> Result<bool, BlobError> {
        let Some(path) = self.path_of(sha256) else {
            return Ok(true);
        };
        let holds = self.holds.lock().await;
        if holds.contains_key(sha256) || !unreferenced().await {
            return Ok(false);
        }
        if remove_if_present(&path).await? {
            tracing::debug!(sha256, "removed an attachment no stored message references");
        }
        drop(holds);
        Ok(true)
    }

    async fn open(&self, blob: &BlobRef) -> Result<BlobReader, BlobError> {
        let path = self
            .path_of(&blob.sha256)
            .ok_or_else(|| BlobError::NotFound(blob.sha256.clone()))?;
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(blob.sha256.clone()))
            }
            Err(e) => return Err(e.into()),
        };
        if file.metadata().await?.len() != blob.size {
            return Err(BlobError::Corrupt {
                sha256: blob.sha256.clone(),
            });
        }
        Ok(Box::pin(tokio::io::BufReader::with_capacity(CHUNK, file)))
    }

    async fn contains(&self, blob: &BlobRef) -> Result<bool, BlobError> {
        let Some(path) = self.path_of(&blob.sha256) else {
            return Ok(false);
        };
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(m.is_file() && m.len() == blob.size),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
