//! Small blocking file-system helpers: atomic writes and directory fsync.

use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// A fresh, unique temporary file name (`<uuid>.part`).
pub(crate) fn temp_name() -> String {
    format!("{}.part", uuid::Uuid::now_v7().simple())
}

/// Makes the directory entries of `dir` durable (after renames into it).
///
/// Some file systems (several network file systems among them) refuse
/// `fsync` on a directory; there the rename is as durable as the server
/// makes it, and the refusal is not treated as an error.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported) => {
            tracing::debug!(dir = %dir.display(), error = %e, "directory fsync not supported");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to a new file in `tmp_dir`, fsyncs it and renames it to
/// `target` (replacing an existing file atomically). The temporary file is
/// removed on failure. Does not fsync the target's directory.
pub(crate) fn write_atomic(tmp_dir: &Path, target: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_dir.join(temp_name());
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Whether `path` exists (without following a final symlink).
pub(crate) fn exists(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Hex SHA-256 of a file, streamed.
pub(crate) fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Reads at most `limit` bytes of a small file; `None` if it is larger.
pub(crate) fn read_small(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// A path in `dir` that is not taken yet: `<base><suffix>`, or
/// `<base>-<n><suffix>` for the first free `n`, where every one of
/// `companions` appended to the candidate must be free as well.
pub(crate) fn free_name(dir: &Path, base: &str, companions: &[&str]) -> io::Result<String> {
    for n in 0u32..10_000 {
        let candidate = if n == 0 {
            base.to_owned()
        } else {
            format!("{base}-{n}")
        };
        let mut taken = exists(&dir.join(&candidate))?;
        for companion in companions {
            taken = taken || exists(&dir.join(format!("{candidate}{companion}")))?;
        }
        if !taken {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        ErrorKind::AlreadyExists,
        format!("no free name for {base:?} in {}", dir.display()),
    ))
}

/// Runs blocking file-system work on tokio's blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| io::Error::other(format!("blocking task failed: {e}")))?
}
