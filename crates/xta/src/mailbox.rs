//! Hub-hosted XTA mailboxes: durable (sled under `<data_dir>/xta`), one
//! per account name. The `xta-mailbox` connector puts routed messages in;
//! the XTA server's MsgBoxPort lists, serves and closes them.
//!
//! Content is referenced by [`BlobRef`] (the hub's content-addressed blob
//! store); the mailbox keeps meta data and content descriptions only.
//! A message id put twice (connector retries, replays) is stored once; a
//! closed message is remembered so that a late retry does not re-open it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use drehscheibe_model::BlobRef;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::model::{ContentDescription, MessageMetaData};

/// One content part (message or attachment) of a mailbox message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredContent {
    /// `xta:ContentType` attributes.
    pub description: ContentDescription,
    /// Where the bytes are.
    pub blob: BlobRef,
}

/// A message waiting in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxMessage {
    /// Meta data as the reader will see it (`MessageID` is the key).
    pub metadata: MessageMetaData,
    /// The `Message` part.
    pub message: StoredContent,
    /// The `Attachment` parts.
    #[serde(default)]
    pub attachments: Vec<StoredContent>,
    /// When the message entered the mailbox (RFC 3339).
    pub delivered_at: String,
    /// When the message was first fetched (RFC 3339), if ever.
    #[serde(default)]
    pub first_fetched_at: Option<String>,
}

impl MailboxMessage {
    /// Total content size in bytes.
    pub fn size(&self) -> u64 {
        self.message.blob.size + self.attachments.iter().map(|a| a.blob.size).sum::<u64>()
    }
}

/// Outcome of [`Mailboxes::put`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Stored now.
    Stored,
    /// The message id was already in this mailbox (open or closed).
    AlreadyPresent,
}

/// Mailbox store failure.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    /// sled failed.
    #[error("mailbox store: {0}")]
    Store(String),
    /// A stored record cannot be read.
    #[error("mailbox record corrupt: {0}")]
    Corrupt(String),
    /// Account names must be non-empty and must not contain NUL.
    #[error("invalid account name {0:?}")]
    InvalidAccount(String),
}

impl From<sled::Error> for MailboxError {
    fn from(e: sled::Error) -> Self {
        Self::Store(e.to_string())
    }
}

/// The durable mailboxes of one hub.
pub struct Mailboxes {
    path: PathBuf,
    db: sled::Db,
    /// `account \0 seq(be)` → JSON [`MailboxMessage`].
    entries: sled::Tree,
    /// `account \0 message id` → seq(be) for open messages, `closed` tombstone.
    index: sled::Tree,
}

impl std::fmt::Debug for Mailboxes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailboxes")
            .field("path", &self.path)
            .finish()
    }
}

static OPEN: Mutex<Option<HashMap<PathBuf, Weak<Mailboxes>>>> = Mutex::new(None);

const CLOSED: &[u8] = b"closed";

fn key(account: &str, rest: &[u8]) -> Result<Vec<u8>, MailboxError> {
    if account.is_empty() || account.contains('\0') {
        return Err(MailboxError::InvalidAccount(account.to_string()));
    }
    let mut k = Vec::with_capacity(account.len() + 1 + rest.len());
    k.extend_from_slice(account.as_bytes());
    k.push(0);
    k.extend_from_slice(rest);
    Ok(k)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn tx_err(e: TransactionError<MailboxError>) -> MailboxError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    }
}

impl Mailboxes {
    /// Open (or create) the mailboxes under `dir` (normally
    /// `<data_dir>/xta`). Opening the same directory twice in one process
    /// returns the same instance, so the server and the `xta-mailbox`
    /// connectors share one sled database.
    pub fn open(dir: &Path) -> Result<Arc<Self>, MailboxError> {
        std::fs::create_dir_all(dir).map_err(|e| MailboxError::Store(e.to_string()))?;
        let path = dir
            .canonicalize()
            .map_err(|e| MailboxError::Store(e.to_string()))?;
        let mut guard = OPEN
            .lock()
            .map_err(|_| MailboxError::Store("registry poisoned".into()))?;
        let map = guard.get_or_insert_with(HashMap::new);
        if let Some(existing) = map.get(&path).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        // A just-dropped instance may hold sled's file lock for a moment
        // (its flusher thread ends asynchronously): retry briefly.
        let mut attempts = 0;
        let db = loop {
            match sled::Config::new()
                .path(path.join("mailboxes"))
                .segment_size(1 << 23)
                // Durability comes from explicit flushes; sled's periodic
                // flusher thread competed for the process-wide sled lock.
                .flush_every_ms(None)
                .open()
            {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if attempts < 50 && e.to_string().contains("could not acquire lock") =>
                {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(40));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let entries = db.open_tree("entries")?;
        let index = db.open_tree("index")?;
        let mb = Arc::new(Self {
            path: path.clone(),
            db,
            entries,
            index,
        });
        map.insert(path, Arc::downgrade(&mb));
        Ok(mb)
    }

    /// Put a message into `account`'s mailbox; durable when this returns.
    /// Idempotent on the message id.
    pub async fn put(
        &self,
        account: &str,
        message: MailboxMessage,
    ) -> Result<PutOutcome, MailboxError> {
        let ikey = key(account, message.metadata.message_id.as_bytes())?;
        let seq = self.db.generate_id()?;
        let ekey = key(account, &seq.to_be_bytes())?;
        let json =
            serde_json::to_vec(&message).map_err(|e| MailboxError::Corrupt(e.to_string()))?;
        let outcome = (&self.entries, &self.index)
            .transaction(|(entries, index)| {
                if index.get(&ikey)?.is_some() {
                    return Ok(PutOutcome::AlreadyPresent);
                }
                index.insert(ikey.as_slice(), &seq.to_be_bytes())?;
                entries.insert(ekey.as_slice(), json.as_slice())?;
                Ok::<_, ConflictableTransactionError<MailboxError>>(PutOutcome::Stored)
            })
            .map_err(tx_err)?;
        {
            // A blocking flush on a blocking thread, never `flush_async`:
            // sled 0.34 shares one concurrency-control lock between all
            // databases of the process, and its async flush held that lock
            // on sled's I/O threads while waiting for log stability, which
            // deadlocked with the hub store's transactions under load.
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || db.flush())
                .await
                .map_err(|e| MailboxError::Store(format!("flush task: {e}")))??;
        }
        Ok(outcome)
    }

    /// Open messages of `account`, oldest first.
    pub fn list(&self, account: &str) -> Result<Vec<MailboxMessage>, MailboxError> {
        let prefix = key(account, &[])?;
        let mut out = Vec::new();
        for kv in self.entries.scan_prefix(&prefix) {
            let (_, v) = kv?;
            out.push(serde_json::from_slice(&v).map_err(|e| MailboxError::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    fn seq_of(&self, account: &str, message_id: &str) -> Result<Option<Vec<u8>>, MailboxError> {
        let ikey = key(account, message_id.as_bytes())?;
        Ok(match self.index.get(&ikey)? {
            Some(v) if v.as_ref() != CLOSED => Some(key(account, &v)?),
            _ => None,
        })
    }

    /// An open message of `account`, `None` if unknown, closed or in
    /// another account's mailbox.
    pub fn get(
        &self,
        account: &str,
        message_id: &str,
    ) -> Result<Option<MailboxMessage>, MailboxError> {
        let Some(ekey) = self.seq_of(account, message_id)? else {
            return Ok(None);
        };
        match self.entries.get(ekey)? {
            Some(v) => Ok(Some(
                serde_json::from_slice(&v).map_err(|e| MailboxError::Corrupt(e.to_string()))?,
            )),
            None => Ok(None),
        }
    }

    /// Record the first fetch time of an open message (best effort).
    pub async fn mark_fetched(&self, account: &str, message_id: &str) -> Result<(), MailboxError> {
        let Some(ekey) = self.seq_of(account, message_id)? else {
            return Ok(());
        };
        if let Some(v) = self.entries.get(&ekey)? {
            let mut m: MailboxMessage =
                serde_json::from_slice(&v).map_err(|e| MailboxError::Corrupt(e.to_string()))?;
            if m.first_fetched_at.is_none() {
                m.first_fetched_at = Some(now());
                let json =
                    serde_json::to_vec(&m).map_err(|e| MailboxError::Corrupt(e.to_string()))?;
                let _ = self.entries.compare_and_swap(&ekey, Some(v), Some(json))?;
                {
                    // A blocking flush on a blocking thread, never `flush_async`:
                    // sled 0.34 shares one concurrency-control lock between all
                    // databases of the process, and its async flush held that lock
                    // on sled's I/O threads while waiting for log stability, which
                    // deadlocked with the hub store's transactions under load.
                    let db = self.db.clone();
                    tokio::task::spawn_blocking(move || db.flush())
                        .await
                        .map_err(|e| MailboxError::Store(format!("flush task: {e}")))??;
                }
            }
        }
        Ok(())
    }

    /// Close (remove) an open message. `Ok(false)` if the id is not open in
    /// this account's mailbox. Durable when this returns.
    pub async fn close(&self, account: &str, message_id: &str) -> Result<bool, MailboxError> {
        let ikey = key(account, message_id.as_bytes())?;
        let prefix = key(account, &[])?;
        let closed = (&self.entries, &self.index)
            .transaction(|(entries, index)| {
                let Some(seq) = index.get(&ikey)? else {
                    return Ok(false);
                };
                if seq.as_ref() == CLOSED {
                    return Ok(false);
                }
                let mut ekey = prefix.clone();
                ekey.extend_from_slice(&seq);
                entries.remove(ekey)?;
                index.insert(ikey.as_slice(), CLOSED)?;
                Ok::<_, ConflictableTransactionError<MailboxError>>(true)
            })
            .map_err(tx_err)?;
        if closed {
            {
                // A blocking flush on a blocking thread, never `flush_async`:
                // sled 0.34 shares one concurrency-control lock between all
                // databases of the process, and its async flush held that lock
                // on sled's I/O threads while waiting for log stability, which
                // deadlocked with the hub store's transactions under load.
                let db = self.db.clone();
                tokio::task::spawn_blocking(move || db.flush())
                    .await
                    .map_err(|e| MailboxError::Store(format!("flush task: {e}")))??;
            }
        }
        Ok(closed)
    }

    /// A further named tree in the same database (server state such as
    /// the index of sent messages).
    pub fn tree(&self, name: &str) -> Result<sled::Tree, MailboxError> {
        Ok(self.db.open_tree(name)?)
    }

    /// Flush the database (durability point for [`Self::tree`] writes).
    pub async fn flush(&self) -> Result<(), MailboxError> {
        {
            // A blocking flush on a blocking thread, never `flush_async`:
            // sled 0.34 shares one concurrency-control lock between all
            // databases of the process, and its async flush held that lock
            // on sled's I/O threads while waiting for log stability, which
            // deadlocked with the hub store's transactions under load.
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || db.flush())
                .await
                .map_err(|e| MailboxError::Store(format!("flush task: {e}")))??;
        }
        Ok(())
    }

    /// Whether the id was ever put into `account`'s mailbox (open or
    /// closed).
    pub fn knows(&self, account: &str, message_id: &str) -> Result<bool, MailboxError> {
        Ok(self
            .index
            .get(key(account, message_id.as_bytes())?)?
            .is_some())
    }
}

/// The current time as RFC 3339 (used for `delivered_at`).
pub fn timestamp_now() -> String {
    now()
}
