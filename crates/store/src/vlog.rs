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
//! # Space: segment garbage collection
//!
//! Retention (see `docs/decisions/0015-retention.md`) deletes the
//! pointers of expired payloads and outputs; the bytes they pointed at
//! stay in their segment until the whole segment goes. A segment is
//! freed in one of two ways, both driven by
//! [`Store::collect_value_log`](crate::Store::collect_value_log):
//!
//! * **Delete**: a *sealed* segment (not the active one) that no pointer
//!   in the database points into is removed as a whole file.
//! * **Compact**: a sealed segment whose live bytes fell below a fraction
//!   of its size (one dead letter kept for months would otherwise pin the
//!   whole segment) has its live values copied to the active segment and
//!   their pointers moved there — through the store's writer, in one
//!   transaction that applies a move only while the pointer is still the
//!   old one — and is then deleted like an empty one.
//!
//! Live bytes are not kept in a counter that could drift from the truth:
//! each collection scans the pointer trees (`payload_refs`, `outputs`)
//! once and sums, per segment, the bytes still pointed at. That costs
//! O(stored messages) per collection, which the sweeper runs only after
//! it freed something, never per message.
//!
//! Two races make a zero count not yet mean "deletable":
//!
//! * A value appended to a segment whose pointer is not committed yet (an
//!   accept or an output waiting for its group commit) is invisible to
//!   the scan. Every append therefore holds an [`AppendPin`] on its
//!   segment, carried by the writer operation that stores the pointer and
//!   dropped only after that operation was applied and flushed (even if
//!   its caller stopped waiting); a segment counts as
//!   *quiet* once it is sealed and unpinned, and from then on pointers
//!   into it can only disappear (appends go to the active segment only).
//!   The collector takes its list of quiet segments *before* it scans.
//! * A reader may have read a pointer just before compaction moved it and
//!   the segment went. [`ValueLog::was_deleted`] lets the store tell that
//!   from corruption: it reads the pointer again and retries.
//!
//! Segments are [`SEGMENT_BYTES`] (64 MiB) by default: small enough that
//! a long-lived value pins little and compaction copies little, large
//! enough that a 1 TB store has ~16,000 files (the bench in
//! `docs/benchmarks.md`, "Retention", measures the effect). A transaction
//! that aborts after its values were appended (an idempotent duplicate,
//! an update that lost a race) leaves those bytes unreferenced; the
//! collector frees them with their segment.
//!
//! Deleting a segment file is not undone by a crash: the moves that
//! emptied it were flushed (value log first, then sled) before the
//! collector deleted it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::{Result, StoreError};

/// Default size at which the active segment is closed and a new one
/// started (see the module docs, "Space").
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

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
    /// Closed segments and their sizes in bytes.
    sealed: BTreeMap<u32, u64>,
    /// Segments deleted by this process (see [`ValueLog::was_deleted`]).
    deleted: HashSet<u32>,
}

/// Appends per segment whose pointers are not answered yet.
type Pins = Arc<Mutex<HashMap<u32, usize>>>;

/// Held from an append until the write carrying its pointer was applied
/// and flushed (or failed): the collector never deletes a pinned segment
/// (see the module docs, "Space").
#[must_use = "the pin must live until the pointer's write was applied"]
pub(crate) struct AppendPin {
    pins: Pins,
    segment: u32,
}

impl Drop for AppendPin {
    fn drop(&mut self) {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = pins.get_mut(&self.segment) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                pins.remove(&self.segment);
            }
        }
    }
}

/// A sealed segment the collector may look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuietSegment {
    pub segment: u32,
    /// File size in bytes.
    pub bytes: u64,
}

/// The value log of one store directory.
pub(crate) struct ValueLog {
    dir: PathBuf,
    segment_bytes: u64,
    state: Mutex<State>,
    pins: Pins,
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
    /// segment after the highest existing one; segments are closed once
    /// they pass `segment_bytes`.
    pub(crate) fn open(dir: &Path, segment_bytes: u64) -> Result<ValueLog> {
        std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
        let mut highest: Option<u32> = None;
        let mut sealed = BTreeMap::new();
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
            let len = entry.metadata().map_err(|e| io("stat", dir, e))?.len();
            sealed.insert(n, len);
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
            segment_bytes: segment_bytes.max(1),
            state: Mutex::new(State {
                active,
                dirty: HashMap::new(),
                sealed,
                deleted: HashSet::new(),
            }),
            pins: Arc::default(),
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

    /// Append `value`; durable after the next [`ValueLog::sync`]. The pin
    /// must be held until the write carrying the pointer was answered.
    pub(crate) fn append(&self, value: &[u8]) -> Result<(Pointer, AppendPin)> {
        let len = value.len() as u64;
        let (segment, file, offset, pin) = {
            let mut st = self.lock();
            if st.active.len > 0 && st.active.len.saturating_add(len) > self.segment_bytes {
                let next = st.active.segment.checked_add(1).ok_or_else(|| {
                    StoreError::Backend("value log: segment numbers exhausted".into())
                })?;
                let fresh = Self::create_segment(&self.dir, next)?;
                let old = std::mem::replace(&mut st.active, fresh);
                // The old segment stays dirty until the next sync; the new
                // one's directory entry is synced with it.
                st.sealed.insert(old.segment, old.len);
                st.dirty.insert(old.segment, old.file);
            }
            let offset = st.active.len;
            st.active.len = offset.saturating_add(len);
            let file = Arc::clone(&st.active.file);
            let segment = st.active.segment;
            st.dirty.insert(segment, Arc::clone(&file));
            // Pinned under the state lock: a segment the collector saw
            // sealed and unpinned can never be pinned again.
            *self
                .pins
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(segment)
                .or_insert(0) += 1;
            let pin = AppendPin {
                pins: Arc::clone(&self.pins),
                segment,
            };
            (segment, file, offset, pin)
        };
        // Outside the lock: appends of concurrent callers write their own
        // reserved ranges in parallel.
        file.write_all_at(value, offset)
            .map_err(|e| io("write", &segment_path(&self.dir, segment), e))?;
        Ok((
            Pointer {
                segment,
                offset,
                len,
                crc: crc32fast::hash(value),
            },
            pin,
        ))
    }

    /// Sealed segments no append is pinning now, oldest first: from now
    /// on pointers into them can only go away (see the module docs).
    pub(crate) fn quiet_segments(&self) -> Vec<QuietSegment> {
        let st = self.lock();
        let pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        st.sealed
            .iter()
            .filter(|(segment, _)| !pins.contains_key(segment))
            .map(|(&segment, &bytes)| QuietSegment { segment, bytes })
            .collect()
    }

    /// Total bytes of all segment files, the active one included.
    pub(crate) fn disk_bytes(&self) -> u64 {
        let st = self.lock();
        st.sealed.values().sum::<u64>() + st.active.len
    }

    /// Number of segment files, the active one included.
    pub(crate) fn segment_count(&self) -> usize {
        self.lock().sealed.len() + 1
    }

    /// Delete a sealed segment file. The caller has made sure no durable
    /// pointer points into it (see the module docs).
    pub(crate) fn delete_segment(&self, segment: u32) -> Result<()> {
        let path = segment_path(&self.dir, segment);
        {
            let mut st = self.lock();
            if segment == st.active.segment {
                return Err(StoreError::Backend(format!(
                    "value log: refusing to delete the active segment {}",
                    path.display()
                )));
            }
            st.sealed.remove(&segment);
            st.dirty.remove(&segment);
            st.deleted.insert(segment);
        }
        // An open read handle would keep the file's blocks allocated.
        self.readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&segment);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("delete", &path, e)),
        }
        sync_dir(&self.dir)
    }

    /// Whether this process deleted `segment` (a pointer read before a
    /// compaction moved it; read the pointer again).
    pub(crate) fn was_deleted(&self, segment: u32) -> bool {
        self.lock().deleted.contains(&segment)
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
        // A corrupt pointer must not make us allocate its length (a flipped
        // high bit aborts the process): beyond 1 MiB, check it against the
        // segment first.
        if len > 1 << 20 {
            let size = file.metadata().map_err(|e| io("stat", &path, e))?.len();
            if p.offset.saturating_add(p.len) > size {
                return Err(StoreError::Corrupt(format!(
                    "value log {}: value at {} ({} bytes) lies beyond the segment's {size} bytes",
                    path.display(),
                    p.offset,
                    p.len
                )));
            }
        }
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
        let log = ValueLog::open(dir.path(), SEGMENT_BYTES)?;
        let (a, _pa) = log.append(b"first value")?;
        let (b, _pb) = log.append(&[7u8; 100_000])?;
        log.sync()?;
        assert_eq!(log.read(&a)?, b"first value");
        assert_eq!(log.read(&b)?.len(), 100_000);
        assert_eq!(Pointer::decode(&b.encode(), "t")?, b);
        drop(log);
        let log = ValueLog::open(dir.path(), SEGMENT_BYTES)?;
        assert_eq!(log.read(&a)?, b"first value");
        let (c, _pc) = log.append(b"after reopen")?;
        assert_ne!(c.segment, a.segment, "a reopen starts a new segment");
        assert_eq!(log.read(&c)?, b"after reopen");
        Ok(())
    }

    #[test]
    fn damaged_values_are_corrupt_not_wrong() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Backend(e.to_string()))?;
        let log = ValueLog::open(dir.path(), SEGMENT_BYTES)?;
        let (p, _pin) = log.append(b"payload bytes")?;
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

    #[test]
    fn pinned_and_active_segments_are_not_quiet_and_deleted_ones_are_known() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Backend(e.to_string()))?;
        let log = ValueLog::open(dir.path(), 16)?;
        let (a, pin_a) = log.append(&[1u8; 16])?;
        // Rotates: `a`'s segment is sealed but still pinned.
        let (b, _pin_b) = log.append(&[2u8; 16])?;
        assert_ne!(a.segment, b.segment);
        assert!(log.quiet_segments().iter().all(|q| q.segment != a.segment));
        drop(pin_a);
        let quiet = log.quiet_segments();
        assert_eq!(
            quiet,
            vec![QuietSegment {
                segment: a.segment,
                bytes: 16
            }]
        );
        assert!(log.delete_segment(b.segment).is_err(), "active stays");
        log.delete_segment(a.segment)?;
        assert!(log.was_deleted(a.segment));
        assert!(matches!(log.read(&a), Err(StoreError::Corrupt(_))));
        assert_eq!(log.read(&b)?, vec![2u8; 16]);
        assert_eq!(log.segment_count(), 1);
        Ok(())
    }
}
