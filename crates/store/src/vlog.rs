//! Append-only value log: where [`SledStore`](crate::SledStore) keeps
//! payloads and output documents, so sled's tree nodes hold only small
//! pointers.
//!
//! Why: sled 0.34 stores values inside its tree nodes and copies a whole
//! node whenever it consolidates one; with 10–30 KB documents inline, most
//! of the store's CPU went into copying and freeing nodes and into the
//! allocator (docs/benchmarks.md, sessions 5–6). Documents are written
//! once and read once or twice, so they need no tree at all: an
//! append-only file and a pointer (segment, offset, length, CRC-32) are
//! enough.
//!
//! # Layout
//!
//! `<dir>/vlog/<segment>.seg`, `segment` a zero-padded decimal number.
//! Values are appended back to back without framing; the pointer in sled
//! says where one is. A new segment starts when the active one passes
//! [`SEGMENT_BYTES`] and at every open (a crash may leave a torn tail in
//! the last segment; nothing points there, and nothing is appended after
//! it).
//!
//! # Durability
//!
//! [`ValueLog::append`] writes to the file (page cache) and marks the
//! segment dirty; the store's group-commit flusher calls
//! [`ValueLog::sync`] *before* it flushes sled, so a pointer that is on
//! disk always points at bytes that are on disk. A pointer written by a
//! transaction that was never flushed may point at bytes that were never
//! synced — after a power loss (not a process crash) such a message was
//! never acknowledged, and the CRC turns its payload into a
//! [`StoreError::Corrupt`] instead of wrong bytes.
//!
//! # Space
//!
//! Nothing is deleted yet: retention (dropping or compacting segments
//! whose values are all deleted) comes with the retention sweeper. A
//! transaction that aborts after its values were appended (an idempotent
//! duplicate) leaves those bytes unreferenced.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{Result, StoreError};

/// Size at which the active segment is closed and a new one started.
pub(crate) const SEGMENT_BYTES: u64 = 256 * 1024 * 1024;

/// Encoded size of a [`Pointer`].
pub(crate) const POINTER_BYTES: usize = 4 + 8 + 8 + 4;

/// Where one value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pointer {
    pub segment: u32,
    pub offset: u64,
    pub len: u64,
    pub crc: u32,
}

impl Pointer {
    /// Fixed-size big-endian encoding (segment, offset, len, crc).
    pub(crate) fn encode(&self) -> [u8; POINTER_BYTES] {
        let mut b = [0u8; POINTER_BYTES];
        b[..4].copy_from_slice(&self.segment.to_be_bytes());
        b[4..12].copy_from_slice(&self.offset.to_be_bytes());
        b[12..20].copy_from_slice(&self.len.to_be_bytes());
        b[20..24].copy_from_slice(&self.crc.to_be_bytes());
        b
    }

    pub(crate) fn decode(bytes: &[u8], what: &str) -> Result<Pointer> {
        /// The big-endian field of `N` bytes at `at`.
        fn field<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
            bytes.get(at..at + N)?.try_into().ok()
        }
        let decoded = (bytes.len() == POINTER_BYTES)
            .then(|| {
                Some(Pointer {
                    segment: u32::from_be_bytes(field(bytes, 0)?),
                    offset: u64::from_be_bytes(field(bytes, 4)?),
                    len: u64::from_be_bytes(field(bytes, 12)?),
                    crc: u32::from_be_bytes(field(bytes, 20)?),
                })
            })
            .flatten();
        decoded.ok_or_else(|| StoreError::Corrupt(format!("{what}: bad value-log pointer")))
    }
}

struct Active {
    segment: u32,
    file: Arc<File>,
    /// Next write offset.
    len: u64,
}

struct State {
    active: Active,
    /// Segments written since the last [`ValueLog::sync`].
    dirty: HashMap<u32, Arc<File>>,
}

/// The value log of one store directory.
pub(crate) struct ValueLog {
    dir: PathBuf,
    state: Mutex<State>,
    /// Read handles by segment.
    readers: Mutex<HashMap<u32, Arc<File>>>,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("value log: {what} {}: {e}", path.display()))
}

fn segment_path(dir: &Path, segment: u32) -> PathBuf {
    dir.join(format!("{segment:010}.seg"))
}

impl ValueLog {
    /// Open the value log in `dir` (created if missing) and start a new
    /// segment after the highest existing one.
    pub(crate) fn open(dir: &Path) -> Result<ValueLog> {
        std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
        let mut highest: Option<u32> = None;
        for entry in std::fs::read_dir(dir).map_err(|e| io("list", dir, e))? {
            let entry = entry.map_err(|e| io("list", dir, e))?;
            let name = entry.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".seg"))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            highest = Some(highest.map_or(n, |h| h.max(n)));
        }
        let first = match highest {
            None => 0,
            Some(h) => h.checked_add(1).ok_or_else(|| {
                StoreError::Backend("value log: segment numbers exhausted".into())
            })?,
        };
        let active = Self::create_segment(dir, first)?;
        // The new file's directory entry must survive a crash before any
        // pointer into it does.
        sync_dir(dir)?;
        Ok(ValueLog {
            dir: dir.to_path_buf(),
            state: Mutex::new(State {
                active,
                dirty: HashMap::new(),
            }),
            readers: Mutex::new(HashMap::new()),
        })
    }

    fn create_segment(dir: &Path, segment: u32) -> Result<Active> {
        let path = segment_path(dir, segment);
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io("create", &path, e))?;
        Ok(Active {
            segment,
            file: Arc::new(file),
            len: 0,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append `value`; durable after the next [`ValueLog::sync`].
    pub(crate) fn append(&self, value: &[u8]) -> Result<Pointer> {
        let len = value.len() as u64;
        let (segment, file, offset) = {
            let mut st = self.lock();
            if st.active.len > 0 && st.active.len.saturating_add(len) > SEGMENT_BYTES {
                let next = st.active.segment.checked_add(1).ok_or_else(|| {
                    StoreError::Backend("value log: segment numbers exhausted".into())
                })?;
                let fresh = Self::create_segment(&self.dir, next)?;
                let old = std::mem::replace(&mut st.active, fresh);
                // The old segment stays dirty until the next sync; the new
                // one's directory entry is synced with it.
                st.dirty.insert(old.segment, old.file);
            }
            let offset = st.active.len;
            st.active.len = offset.saturating_add(len);
            let file = Arc::clone(&st.active.file);
            let segment = st.active.segment;
            st.dirty.insert(segment, Arc::clone(&file));
            (segment, file, offset)
        };
        // Outside the lock: appends of concurrent callers write their own
        // reserved ranges in parallel.
        file.write_all_at(value, offset)
            .map_err(|e| io("write", &segment_path(&self.dir, segment), e))?;
        Ok(Pointer {
            segment,
            offset,
            len,
            crc: crc32fast::hash(value),
        })
    }

    /// Make every value appended so far durable (called by the flusher
    /// before sled's flush).
    pub(crate) fn sync(&self) -> Result<()> {
        let dirty: Vec<(u32, Arc<File>)> = {
            let mut st = self.lock();
            st.dirty.drain().collect()
        };
        let rotated = dirty.len() > 1;
        for (segment, file) in &dirty {
            if let Err(e) = file.sync_data() {
                // Keep it dirty so the next flush tries again.
                let mut st = self.lock();
                for (s, f) in &dirty {
                    st.dirty.insert(*s, Arc::clone(f));
                }
                return Err(io("sync", &segment_path(&self.dir, *segment), e));
            }
        }
        if rotated {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Read the value at `p`, checking length and CRC.
    pub(crate) fn read(&self, p: &Pointer) -> Result<Vec<u8>> {
        let path = segment_path(&self.dir, p.segment);
        let file = {
            let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
            match readers.get(&p.segment) {
                Some(f) => Arc::clone(f),
                None => {
                    let f = Arc::new(File::open(&path).map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => StoreError::Corrupt(format!(
                            "value log segment {} is missing",
                            path.display()
                        )),
                        _ => io("open", &path, e),
                    })?);
                    readers.insert(p.segment, Arc::clone(&f));
                    f
                }
            }
        };
        let len = usize::try_from(p.len).map_err(|_| {
            StoreError::Corrupt(format!("value log: value of {} bytes too large", p.len))
        })?;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, p.offset)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => StoreError::Corrupt(format!(
                    "value log {}: value at {} ({} bytes) is cut off",
                    path.display(),
                    p.offset,
                    p.len
                )),
                _ => io("read", &path, e),
            })?;
        if crc32fast::hash(&buf) != p.crc {
            return Err(StoreError::Corrupt(format!(
                "value log {}: value at {} ({} bytes) fails its checksum",
                path.display(),
                p.offset,
                p.len
            )));
        }
        Ok(buf)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io("sync directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_survive_reopen() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Backend(e.to_string()))?;
        let log = ValueLog::open(dir.path())?;
        let a = log.append(b"first value")?;
        let b = log.append(&[7u8; 100_000])?;
        log.sync()?;
        assert_eq!(log.read(&a)?, b"first value");
        assert_eq!(log.read(&b)?.len(), 100_000);
        assert_eq!(Pointer::decode(&b.encode(), "t")?, b);
        drop(log);
        let log = ValueLog::open(dir.path())?;
        assert_eq!(log.read(&a)?, b"first value");
        let c = log.append(b"after reopen")?;
        assert_ne!(c.segment, a.segment, "a reopen starts a new segment");
        assert_eq!(log.read(&c)?, b"after reopen");
        Ok(())
    }

    #[test]
    fn damaged_values_are_corrupt_not_wrong() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Backend(e.to_string()))?;
        let log = ValueLog::open(dir.path())?;
        let p = log.append(b"payload bytes")?;
        log.sync()?;
        let flipped = Pointer {
            crc: p.crc ^ 1,
            ..p
        };
        assert!(matches!(log.read(&flipped), Err(StoreError::Corrupt(_))));
        let beyond = Pointer {
            len: p.len + 10,
            ..p
        };
        assert!(matches!(log.read(&beyond), Err(StoreError::Corrupt(_))));
        let missing = Pointer { segment: 99, ..p };
        assert!(matches!(log.read(&missing), Err(StoreError::Corrupt(_))));
        assert!(Pointer::decode(b"short", "t").is_err());
        Ok(())
    }
}
