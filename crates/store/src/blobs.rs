//! [`FsBlobStore`]: content-addressed attachments as files.
//!
//! Layout under the store directory:
//!
//! ```text
//! <dir>/tmp/<uuid>.part        being written (swept at open)
//! <dir>/<sha[0..2]>/<sha>      finished blob, named by its hex SHA-256
//! ```
//!
//! `put` streams into a temp file in chunks while hashing, fsyncs it,
//! renames it into place and fsyncs the directory, so a returned
//! [`BlobRef`] survives a crash. Identical content is stored once.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use drehscheibe_model::{BlobError, BlobReader, BlobRef, BlobStore};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Read/write chunk size.
const CHUNK: usize = 64 * 1024;

/// Blob store on the local file system.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    dir: PathBuf,
    tmp: PathBuf,
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
        Ok(FsBlobStore {
            dir: dir.to_path_buf(),
            tmp,
        })
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
    async fn put(&self, mut reader: BlobReader, limit: u64) -> Result<BlobRef, BlobError> {
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
        if tokio::fs::try_exists(&final_path).await? {
            // Same content already stored; the guard deletes the temp file.
            return Ok(blob);
        }
        if !tokio::fs::try_exists(&shard).await? {
            tokio::fs::create_dir_all(&shard).await?;
            sync_dir(&self.dir).await?;
        }
        tokio::fs::rename(&tmp_path, &final_path).await?;
        guard.path = None;
        sync_dir(&shard).await?;
        Ok(blob)
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
