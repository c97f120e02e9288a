//! Adapter and connector state in the hub store.
//!
//! Protocol crates keep what they need between calls — XTA mailboxes and
//! fetch iterators, the FIT-Connect intake's submissions and event logs,
//! a subscriber's pending SETs — in **spaces** of the one hub store, never
//! in a database of their own: one durability story, one backup, and a
//! second store backend (PostgreSQL) covers every adapter by implementing
//! three methods.
//!
//! A space is a named, ordered key-value map (`"xta/mailboxes"`,
//! `"fit-connect/intake/<channel>"`). Values are opaque bytes; keys sort
//! bytewise, so a prefix scan lists e.g. one account's mailbox in order.
//!
//! Changes are optimistic transactions over any number of keys of one
//! space ([`StateTx`]): reads remember what they saw, and the commit
//! applies the writes only if every key read still holds the value read
//! (a missing key still missing). Otherwise nothing is written and the
//! caller reads again — the same compare-the-bytes retry as
//! [`Store::update`](crate::Store::update). A committed change is durable
//! when `commit` returns (the store's group commit).
//!
//! ```ignore
//! let space = StateSpace::new(store, "xta/mailboxes")?;
//! loop {
//!     let mut tx = space.begin();
//!     let n = tx.get(b"counter").await?.map_or(0, |v| decode(&v));
//!     tx.put(b"counter", encode(n + 1));
//!     if tx.commit().await? { break; }
//! }
//! ```
//!
//! # Blobs held by state
//!
//! An adapter that keeps content in the blob store between calls (the
//! FIT-Connect intake's encrypted uploads, which any instance of the hub
//! may have to decrypt at submit) records the [`BlobRef`] in its state and
//! takes a *reference* in the same commit ([`StateTx::hold_blob`]); the
//! commit that forgets it gives the reference back
//! ([`StateTx::release_blob`]). The store counts these with the
//! references of stored messages, so retention collects a blob only when
//! neither a message nor a state record holds it, and no sweep or
//! instance of the hub deletes content a state record still names.
//!
//! [`BlobRef`]: drehscheibe_model::BlobRef
//!
//! Scans are not part of a transaction's read set (no range locks): a
//! transaction that must not miss a concurrent insert reads a key that
//! every such insert writes (a counter, an index entry).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::{Result, Store, StoreError};

/// Longest space name.
pub const MAX_SPACE_NAME: usize = 200;

/// Largest page [`Store::state_scan`] returns, whatever `limit` asks for.
pub const MAX_STATE_PAGE: usize = 1000;

/// The writes of one state transaction and the reads they depend on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateCommit {
    /// Keys read and the value seen (`None`: absent). The commit applies
    /// only while every one still holds it.
    pub expect: Vec<(Vec<u8>, Option<Bytes>)>,
    /// Keys to set (`Some`) or delete (`None`), applied in this order.
    pub writes: Vec<(Vec<u8>, Option<Bytes>)>,
    /// Blob references the state takes (`+1`) or gives back (`-1`), per
    /// blob SHA-256 hex digest, in the same transaction: a state record
    /// that holds a blob counts like a stored message referencing it (see
    /// [`StateTx::hold_blob`]).
    pub blob_refs: Vec<(String, i64)>,
}

/// Check a space name: 1 to [`MAX_SPACE_NAME`] bytes, no NUL.
///
/// # Errors
///
/// [`StoreError::Aborted`] naming the fault.
pub fn check_space(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_SPACE_NAME || name.contains('\0') {
        return Err(StoreError::Aborted(format!(
            "invalid state space name {name:?} (1 to {MAX_SPACE_NAME} bytes, no NUL)"
        )));
    }
    Ok(())
}

/// Most attempts of [`StateSpace::update`] before it gives up.
pub const MAX_STATE_ATTEMPTS: usize = 64;

/// One space of the store, as a protocol crate holds it.
#[derive(Clone)]
pub struct StateSpace {
    store: Arc<dyn Store>,
    name: Arc<str>,
}

impl std::fmt::Debug for StateSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateSpace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl StateSpace {
    /// The space `name` of `store`.
    ///
    /// # Errors
    ///
    /// An invalid name (see [`check_space`]).
    pub fn new(store: Arc<dyn Store>, name: &str) -> Result<Self> {
        check_space(name)?;
        Ok(Self {
            store,
            name: name.into(),
        })
    }

    /// The space's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value of `key`, outside any transaction.
    pub async fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.store.state_get(&self.name, key).await
    }

    /// Up to `limit` entries whose key starts with `prefix`, in key order,
    /// after the key `after` (paging), outside any transaction.
    pub async fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Bytes)>> {
        self.store
            .state_scan(&self.name, prefix, after, limit)
            .await
    }

    /// The first `max` entries under `prefix`, in key order, page by page
    /// (a bound the caller states, so no space is read without one; what
    /// lies beyond it waits for a later call).
    pub async fn scan_up_to(&self, prefix: &[u8], max: usize) -> Result<Vec<(Vec<u8>, Bytes)>> {
        let mut out: Vec<(Vec<u8>, Bytes)> = Vec::new();
        while out.len() < max {
            let after = out.last().map(|(k, _)| k.clone());
            let want = (max - out.len()).min(MAX_STATE_PAGE);
            let page = self.scan(prefix, after.as_deref(), want).await?;
            let done = page.len() < want;
            out.extend(page);
            if done {
                break;
            }
        }
        Ok(out)
    }

    /// Start a transaction.
    pub fn begin(&self) -> StateTx<'_> {
        StateTx {
            space: self,
            reads: BTreeMap::new(),
            writes: BTreeMap::new(),
            order: Vec::new(),
            blob_refs: BTreeMap::new(),
        }
    }

    /// Run `f` in a transaction until it commits: `f` gets a fresh
    /// transaction, reads and writes through it and hands it back with its
    /// result; on a conflict it runs again on fresh reads. `f` must not
    /// have effects outside the transaction.
    ///
    /// ```ignore
    /// space.update(|mut tx| async move {
    ///     let seen = tx.get(b"k").await?;
    ///     tx.put(b"k", next(seen));
    ///     Ok((tx, ()))
    /// }).await?;
    /// ```
    ///
    /// # Errors
    ///
    /// `f`'s error (nothing written), a store failure, or
    /// [`MAX_STATE_ATTEMPTS`] conflicts in a row.
    pub async fn update<'s, T, F, Fut>(&'s self, mut f: F) -> Result<T>
    where
        F: FnMut(StateTx<'s>) -> Fut,
        Fut: std::future::Future<Output = Result<(StateTx<'s>, T)>>,
    {
        for attempt in 0..MAX_STATE_ATTEMPTS {
            let (tx, value) = f(self.begin()).await?;
            if tx.commit().await? {
                return Ok(value);
            }
            // Contenders for one key (a counter) that all rerun at once
            // keep colliding in the next batch; a random pause of up to
            // 2^attempt ms (at most 64 ms) spreads them out.
            let cap = 1u64 << attempt.min(6);
            let pause = rand::random::<u64>() % (cap + 1);
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        }
        Err(StoreError::Backend(format!(
            "state space {}: {MAX_STATE_ATTEMPTS} conflicting transactions in a row; giving up",
            self.name
        )))
    }
}

/// An optimistic transaction over one [`StateSpace`] (see the module docs).
pub struct StateTx<'s> {
    space: &'s StateSpace,
    /// Value first read per key (the commit's expectations).
    reads: BTreeMap<Vec<u8>, Option<Bytes>>,
    /// Pending writes per key (`None`: delete).
    writes: BTreeMap<Vec<u8>, Option<Bytes>>,
    /// Keys in the order of their last write.
    order: Vec<Vec<u8>>,
    /// Net change of blob references per SHA-256.
    blob_refs: BTreeMap<String, i64>,
}

impl StateTx<'_> {
    /// The value of `key` as this transaction sees it: its own writes
    /// first, then the store (remembered for the commit's check).
    pub async fn get(&mut self, key: &[u8]) -> Result<Option<Bytes>> {
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        if let Some(v) = self.reads.get(key) {
            return Ok(v.clone());
        }
        let v = self.space.get(key).await?;
        self.reads.insert(key.to_vec(), v.clone());
        Ok(v)
    }

    /// Set `key` to `value` at commit.
    pub fn put(&mut self, key: &[u8], value: impl Into<Bytes>) {
        self.write(key, Some(value.into()));
    }

    /// Delete `key` at commit.
    pub fn delete(&mut self, key: &[u8]) {
        self.write(key, None);
    }

    fn write(&mut self, key: &[u8], value: Option<Bytes>) {
        if self.writes.insert(key.to_vec(), value).is_some() {
            self.order.retain(|k| k.as_slice() != key);
        }
        self.order.push(key.to_vec());
    }

    /// Take a reference on the blob with this SHA-256 at commit: until a
    /// later commit releases it, retention does not collect the blob (see
    /// the module docs). Every hold must be matched by exactly one
    /// [`StateTx::release_blob`] once the state no longer names the blob.
    pub fn hold_blob(&mut self, sha256: &str) {
        *self.blob_refs.entry(sha256.to_owned()).or_insert(0) += 1;
    }

    /// Give back a reference taken by [`StateTx::hold_blob`] at commit;
    /// the blob becomes a collection candidate once nothing else
    /// references it.
    pub fn release_blob(&mut self, sha256: &str) {
        *self.blob_refs.entry(sha256.to_owned()).or_insert(0) -= 1;
    }

    /// Whether the transaction writes anything.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.blob_refs.values().all(|n| *n == 0)
    }

    /// Apply the writes if every key read still holds what was read.
    /// `Ok(false)`: a conflict, nothing written. A transaction without
    /// writes commits without touching the store.
    pub async fn commit(mut self) -> Result<bool> {
        if self.is_empty() {
            return Ok(true);
        }
        let writes = self
            .order
            .drain(..)
            .filter_map(|k| self.writes.remove(&k).map(|v| (k, v)))
            .collect();
        let commit = StateCommit {
            expect: std::mem::take(&mut self.reads).into_iter().collect(),
            writes,
            blob_refs: std::mem::take(&mut self.blob_refs)
                .into_iter()
                .filter(|(_, n)| *n != 0)
                .collect(),
        };
        self.space
            .store
            .state_commit(&self.space.name, commit)
            .await
    }
}

/// The smallest key above every key that starts with `prefix` (`None`:
/// no bound, the prefix is empty or all `0xff`) — the end of a prefix
/// scan in a store ordered by bytes.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
