//! Hub-hosted XTA mailboxes, one per account name, kept in the hub store
//! (state space [`SPACE`]). The `xta-mailbox` connector puts routed
//! messages in; the XTA server's MsgBoxPort lists, serves and closes them.
//! Any number of [`Mailboxes`] handles over one store see the same
//! mailboxes (the server and every `xta-mailbox` connector hold one).
//!
//! Content is referenced by [`BlobRef`] (the hub's content-addressed blob
//! store); the mailbox keeps meta data and content descriptions only.
//! A message id put twice (connector retries, replays) is stored once; a
//! closed message is remembered so that a late retry does not re-open it.
//!
//! | key | value |
//! |---|---|
//! | `m` 0 account 0 seq (u64 BE) | JSON [`MailboxMessage`] (open messages, in arrival order) |
//! | `i` 0 account 0 message id | seq (u64 BE) while open, `closed` after |
//! | `n` 0 account | next seq and open count (2 × u64 BE) |
//!
//! Every put and close of an account reads and writes its `n` entry, so
//! two of them racing conflict and one reruns (see
//! [`drehscheibe_store::state`]).

use std::sync::Arc;

use bytes::Bytes;
use drehscheibe_model::BlobRef;
use drehscheibe_store::{StateSpace, Store, StoreError};
use serde::{Deserialize, Serialize};

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

/// State space of the mailboxes.
pub const SPACE: &str = "xta/mailboxes";

/// Most open messages [`Mailboxes::list`] returns (oldest first); a
/// mailbox holding more shows the rest once the oldest are closed.
pub const MAX_LISTED: usize = 10_000;

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
    /// The hub store failed.
    #[error("mailbox store: {0}")]
    Store(String),
    /// A stored record cannot be read.
    #[error("mailbox record corrupt: {0}")]
    Corrupt(String),
    /// Account names must be non-empty and must not contain NUL.
    #[error("invalid account name {0:?}")]
    InvalidAccount(String),
}

impl From<StoreError> for MailboxError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(e) => Self::Corrupt(e),
            e => Self::Store(e.to_string()),
        }
    }
}

/// The mailboxes of one hub: a handle on their state space.
#[derive(Debug, Clone)]
pub struct Mailboxes {
    space: StateSpace,
}

const CLOSED: &[u8] = b"closed";

fn key(tag: u8, account: &str, rest: &[u8]) -> Result<Vec<u8>, MailboxError> {
    if account.is_empty() || account.contains('\0') {
        return Err(MailboxError::InvalidAccount(account.to_string()));
    }
    let mut k = Vec::with_capacity(account.len() + 3 + rest.len());
    k.push(tag);
    k.push(0);
    k.extend_from_slice(account.as_bytes());
    if tag != b'n' {
        k.push(0);
        k.extend_from_slice(rest);
    }
    Ok(k)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn decode_message(v: &[u8]) -> Result<MailboxMessage, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt(format!("mailbox message: {e}")))
}

fn encode_message(m: &MailboxMessage) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(m).map_err(|e| StoreError::Corrupt(format!("mailbox message: {e}")))
}

/// `(next seq, open count)` of an account's `n` entry.
fn counters(v: Option<&Bytes>) -> Result<(u64, u64), StoreError> {
    match v {
        None => Ok((0, 0)),
        Some(v) if v.len() == 16 => {
            let mut a = [0u8; 8];
            let mut b = [0u8; 8];
            a.copy_from_slice(&v[..8]);
            b.copy_from_slice(&v[8..]);
            Ok((u64::from_be_bytes(a), u64::from_be_bytes(b)))
        }
        Some(_) => Err(StoreError::Corrupt("mailbox counters".into())),
    }
}

fn counters_bytes(next: u64, open: u64) -> Vec<u8> {
    let mut v = next.to_be_bytes().to_vec();
    v.extend_from_slice(&open.to_be_bytes());
    v
}

impl Mailboxes {
    /// The mailboxes kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Result<Arc<Self>, MailboxError> {
        Ok(Arc::new(Self {
            space: StateSpace::new(store, SPACE)?,
        }))
    }

    /// Put a message into `account`'s mailbox; durable when this returns.
    /// Idempotent on the message id.
    pub async fn put(
        &self,
        account: &str,
        message: MailboxMessage,
    ) -> Result<PutOutcome, MailboxError> {
        let ikey = key(b'i', account, message.metadata.message_id.as_bytes())?;
        let nkey = key(b'n', account, &[])?;
        let json = Bytes::from(encode_message(&message)?);
        let account = account.to_string();
        let outcome = self
            .space
            .update(|mut tx| {
                let (ikey, nkey, json, account) = (&ikey, &nkey, &json, &account);
                async move {
                    if tx.get(ikey).await?.is_some() {
                        return Ok((tx, PutOutcome::AlreadyPresent));
                    }
                    let (seq, open) = counters(tx.get(nkey).await?.as_ref())?;
                    let ekey = key(b'm', account, &seq.to_be_bytes())
                        .map_err(|e| StoreError::Aborted(e.to_string()))?;
                    tx.put(nkey, counters_bytes(seq + 1, open + 1));
                    tx.put(ikey, seq.to_be_bytes().to_vec());
                    tx.put(&ekey, json.clone());
                    Ok((tx, PutOutcome::Stored))
                }
            })
            .await?;
        Ok(outcome)
    }

    /// Open messages of `account`, oldest first (at most [`MAX_LISTED`]).
    pub async fn list(&self, account: &str) -> Result<Vec<MailboxMessage>, MailboxError> {
        let prefix = key(b'm', account, &[])?;
        let mut out = Vec::new();
        for (_, v) in self.space.scan_up_to(&prefix, MAX_LISTED).await? {
            out.push(decode_message(&v)?);
        }
        Ok(out)
    }

    /// Number of open messages of `account`.
    pub async fn open_count(&self, account: &str) -> Result<u64, MailboxError> {
        let v = self.space.get(&key(b'n', account, &[])?).await?;
        Ok(counters(v.as_ref())?.1)
    }

    /// The entry key of an open message.
    async fn entry_key(
        &self,
        account: &str,
        message_id: &str,
    ) -> Result<Option<Vec<u8>>, MailboxError> {
        match self
            .space
            .get(&key(b'i', account, message_id.as_bytes())?)
            .await?
        {
            Some(v) if v.as_ref() != CLOSED => Ok(Some(key(b'm', account, &v)?)),
            _ => Ok(None),
        }
    }

    /// An open message of `account`, `None` if unknown, closed or in
    /// another account's mailbox.
    pub async fn get(
        &self,
        account: &str,
        message_id: &str,
    ) -> Result<Option<MailboxMessage>, MailboxError> {
        let Some(ekey) = self.entry_key(account, message_id).await? else {
            return Ok(None);
        };
        match self.space.get(&ekey).await? {
            Some(v) => Ok(Some(decode_message(&v)?)),
            None => Ok(None),
        }
    }

    /// Record the first fetch time of an open message.
    pub async fn mark_fetched(&self, account: &str, message_id: &str) -> Result<(), MailboxError> {
        let Some(ekey) = self.entry_key(account, message_id).await? else {
            return Ok(());
        };
        let fetched_at = now();
        self.space
            .update(|mut tx| {
                let (ekey, fetched_at) = (&ekey, &fetched_at);
                async move {
                    let Some(v) = tx.get(ekey).await? else {
                        return Ok((tx, ()));
                    };
                    let mut m = decode_message(&v)?;
                    if m.first_fetched_at.is_none() {
                        m.first_fetched_at = Some(fetched_at.clone());
                        tx.put(ekey, encode_message(&m)?);
                    }
                    Ok((tx, ()))
                }
            })
            .await?;
        Ok(())
    }

    /// Close (remove) an open message. `Ok(false)` if the id is not open in
    /// this account's mailbox. Durable when this returns.
    pub async fn close(&self, account: &str, message_id: &str) -> Result<bool, MailboxError> {
        let ikey = key(b'i', account, message_id.as_bytes())?;
        let nkey = key(b'n', account, &[])?;
        let prefix = key(b'm', account, &[])?;
        let closed = self
            .space
            .update(|mut tx| {
                let (ikey, nkey, prefix) = (&ikey, &nkey, &prefix);
                async move {
                    let Some(seq) = tx.get(ikey).await? else {
                        return Ok((tx, false));
                    };
                    if seq.as_ref() == CLOSED {
                        return Ok((tx, false));
                    }
                    let (next, open) = counters(tx.get(nkey).await?.as_ref())?;
                    let mut ekey = prefix.clone();
                    ekey.extend_from_slice(&seq);
                    tx.delete(&ekey);
                    tx.put(ikey, Bytes::from_static(CLOSED));
                    tx.put(nkey, counters_bytes(next, open.saturating_sub(1)));
                    Ok((tx, true))
                }
            })
            .await?;
        Ok(closed)
    }

    /// Whether the id was ever put into `account`'s mailbox (open or
    /// closed).
    pub async fn knows(&self, account: &str, message_id: &str) -> Result<bool, MailboxError> {
        Ok(self
            .space
            .get(&key(b'i', account, message_id.as_bytes())?)
            .await?
            .is_some())
    }
}

/// The current time as RFC 3339 (used for `delivered_at`).
pub fn timestamp_now() -> String {
    now()
}
