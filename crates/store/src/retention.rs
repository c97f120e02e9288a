//! What retention deletes, and when: the policy the sweeper hands to
//! [`Store::purge_expired`](crate::Store::purge_expired) and what the
//! store answers.
//!
//! A message is a candidate only once it is *finished* — `delivered`,
//! `dead` or `rejected` — and its clock starts when it got there (a
//! replay takes it out again and restarts the clock at its next finish).
//! From then on it goes through two stages, each after its own duration
//! of the message's tenant ([`RetentionPolicy::for_tenant`]):
//!
//! 1. **Payload**: after [`Retention::payloads`] for a `delivered`
//!    message, after [`Retention::failed`] for a `dead` or `rejected` one,
//!    the payload, the output documents and the message's references to
//!    its attachments are deleted. The record stays, marked with
//!    [`MessageRecord::payload_purged_at`], with an audit event
//!    `payload_purged`; reading its payload answers
//!    [`StoreError::Purged`](crate::StoreError::Purged), and it can no
//!    longer be replayed.
//! 2. **Record**: after [`Retention::records`] (counted from the finish,
//!    but never before stage 1) the record, its audit trail, its index
//!    entries and its idempotency key go, and the counters drop by one.
//!    A sender may use the key again.
//!
//! `None` means "never": a `dead` message with `failed = None` is kept
//! until a person replays it (the safe default, see ADR 0015).
//!
//! The store keeps an *expiry index* ordered by (stage, tenant, finish
//! time), so one sweep visits exactly the messages that are due plus one
//! seek per tenant — never the whole store.
//!
//! [`MessageRecord::payload_purged_at`]: drehscheibe_model::MessageRecord::payload_purged_at

use std::collections::HashMap;
use std::time::Duration;

/// Retention of one tenant (or the hub default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Stage 1 of `delivered` messages: payload, outputs and attachment
    /// references are deleted this long after delivery.
    pub payloads: Option<Duration>,
    /// Stage 2: record, audit trail and idempotency key are deleted this
    /// long after the message finished (at stage 1 at the earliest).
    pub records: Option<Duration>,
    /// Stage 1 of `dead` and `rejected` messages; `None` keeps them until
    /// a person handles (replays) them.
    pub failed: Option<Duration>,
}

impl Default for Retention {
    /// 30 days of payloads, 365 days of records, failed messages until
    /// handled.
    fn default() -> Self {
        Self {
            payloads: Some(Duration::from_secs(30 * 86_400)),
            records: Some(Duration::from_secs(365 * 86_400)),
            failed: None,
        }
    }
}

impl Retention {
    /// Keep everything forever.
    pub fn keep_all() -> Self {
        Self {
            payloads: None,
            records: None,
            failed: None,
        }
    }
}

/// Retention of the whole hub: a default and per-tenant overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// For messages of tenants without their own entry (and messages that
    /// never got a tenant, e.g. rejected at routing).
    pub default: Retention,
    /// By tenant id.
    pub tenants: HashMap<String, Retention>,
}

impl RetentionPolicy {
    /// The retention of messages of `tenant`.
    pub fn for_tenant(&self, tenant: Option<&str>) -> &Retention {
        tenant
            .and_then(|t| self.tenants.get(t))
            .unwrap_or(&self.default)
    }
}

/// What one [`Store::purge_expired`](crate::Store::purge_expired) call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Messages whose payload (stage 1) was deleted.
    pub payloads: u64,
    /// Messages deleted entirely (stage 2).
    pub records: u64,
    /// Payload and output bytes no longer referenced (freed on disk once
    /// their value-log segment is collected).
    pub bytes: u64,
    /// Due messages left for a later call because they changed while the
    /// call ran.
    pub skipped: u64,
    /// Blobs whose last reference went (candidates for
    /// [`Store::unreferenced_blobs`](crate::Store::unreferenced_blobs)).
    pub blobs_unreferenced: u64,
    /// The batch was full: more may be due now.
    pub more: bool,
}

/// What one [`Store::collect_value_log`](crate::Store::collect_value_log)
/// call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectReport {
    /// Segment files deleted (empty, or emptied by compaction).
    pub segments_deleted: u64,
    /// Segments whose live values were moved forward.
    pub segments_compacted: u64,
    /// Bytes of live values copied by compaction.
    pub bytes_moved: u64,
    /// Bytes of segment files deleted.
    pub bytes_freed: u64,
    /// Segment files left, the active one included.
    pub segments: u64,
    /// Bytes of the segment files left.
    pub disk_bytes: u64,
}

/// The stage a finished message waits in (the stage a store's expiry
/// index files it under).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Payload of a delivered message (`payloads` duration).
    Delivered,
    /// Payload of a dead or rejected message (`failed` duration).
    Failed,
    /// The record, its payload already deleted (`records` duration).
    Record,
}

impl Stage {
    /// The byte a store keys the stage by (`p`, `f`, `r`).
    pub fn byte(self) -> u8 {
        match self {
            Stage::Delivered => b'p',
            Stage::Failed => b'f',
            Stage::Record => b'r',
        }
    }

    /// The next retention stage of `rec`; `None` while it is not finished.
    pub fn of(rec: &drehscheibe_model::MessageRecord) -> Option<Stage> {
        use drehscheibe_model::MessageState;
        if rec.payload_purged_at.is_some() {
            return rec.state.is_terminal().then_some(Stage::Record);
        }
        match rec.state {
            MessageState::Delivered => Some(Stage::Delivered),
            // Quarantined messages are kept like failed ones (`failed`:
            // off by default, i.e. until an operator acts).
            MessageState::Dead | MessageState::Rejected | MessageState::Quarantined => {
                Some(Stage::Failed)
            }
            _ => None,
        }
    }
}

/// Blob hashes a record references while it holds its payload (one per
/// attachment entry): what the stores' blob reference counts count.
pub fn blob_refs_of(rec: &drehscheibe_model::MessageRecord) -> Vec<String> {
    if rec.payload_purged_at.is_some() {
        return Vec::new();
    }
    rec.envelope
        .attachments
        .iter()
        .map(|a| a.blob.sha256.clone())
        .collect()
}
