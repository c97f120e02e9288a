//! What an OSCI Intermediär (channel `osci`) keeps between requests, in
//! one state space of the hub store per channel (`osci/<channel id>`), so
//! that any instance of the hub answers any request of a dialog:
//!
//! | key | value |
//! |---|---|
//! | `c` | next conversation id (u64 BE) |
//! | `d` 0 conversation id | JSON [`Dialog`] |
//! | `i` 0 message id | JSON [`IssuedId`] (GetMessageId) |
//! | `p` 0 addressee 0 seq (u64 BE) | JSON [`PostboxEntry`] (open deliveries, arrival order) |
//! | `q` 0 addressee 0 message id | seq (u64 BE) while open, `closed` after |
//! | `n` 0 addressee | next seq and open count (2 × u64 BE) |
//! | `l` 0 message id | JSON [`ProcessCard`] (Laufzettel) |
//! | `u` 0 client | open dialogs and unused message ids of a client (2 × u64 BE) |
//!
//! Nothing stays for ever: [`IntermediaryState::sweep`] (run by the
//! channel every minute) removes dialogs past their timeout, message ids
//! handed out but never used after a day, and — once a delivery is
//! received and its Laufzettel older than the channel's
//! `keep_process_cards` — the Laufzettel, the id and the postbox's
//! `closed` marker.
//!
//! An addressee is named by the SHA-256 (hex) of its cipher certificate:
//! OSCI addresses a delivery to a certificate, not to a name.
//!
//! Per client (as [`Dialog::client`]) the state counts open dialogs and
//! message ids handed out but not used yet, in the same transaction that
//! opens, ends, issues, uses or sweeps them; [`Quota`] caps both, so that
//! one client — any holder of a certificate the channel trusts — cannot
//! fill the store with dialogs or ids faster than the sweep removes them.
//!
//! The content of an open delivery (the whole inner StoreDelivery
//! message, signatures and attachments included) is a blob of the hub's
//! blob store, held by the postbox entry ([`StateTx::hold_blob`]) and
//! given back when the addressee has confirmed reception.
//!
//! [`StateTx::hold_blob`]: drehscheibe_store::StateTx::hold_blob

use std::sync::Arc;

use bytes::Bytes;
use drehscheibe_model::BlobRef;
use drehscheibe_store::{StateSpace, StateTx, Store, StoreError};
use serde::{Deserialize, Serialize};

/// A dialog opened by InitDialog (or the implicit one of a single
/// request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dialog {
    /// SHA-256 (hex) of the client's signature certificate (cipher
    /// certificate when it signs nothing): only that client may continue.
    pub client: String,
    /// The client's cipher certificate (DER, base64): requests inside a
    /// dialog do not repeat it, every response is encrypted for it.
    #[serde(default)]
    pub client_cipher: String,
    /// The challenge the Intermediär sent last: the next request must
    /// echo it as `Response`.
    pub challenge: String,
    /// The `SequenceNumber` the next request must carry.
    pub next_sequence: u64,
    /// Unix seconds after which the dialog is gone.
    pub expires: u64,
    /// A delivery handed out by FetchDelivery and not yet confirmed: the
    /// next valid request of the dialog confirms it (its `Response`
    /// proves the response arrived).
    #[serde(default)]
    pub pending_receipt: Option<PendingReceipt>,
}

/// See [`Dialog::pending_receipt`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReceipt {
    pub addressee: String,
    pub message_id: String,
}

/// A message id handed out by GetMessageId.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedId {
    /// Who asked for it (as [`Dialog::client`]).
    pub client: String,
    /// RFC 3339.
    pub issued: String,
    /// The same as Unix seconds (what the sweep compares).
    #[serde(default)]
    pub issued_unix: u64,
    /// Set once a StoreDelivery used it.
    #[serde(default)]
    pub used: bool,
    /// What was delivered under it (addressee and content digests, see
    /// [`crate::intermediary`]): a repeated StoreDelivery of the id is
    /// answered as stored only if it delivers the same.
    #[serde(default)]
    pub delivery: Option<String>,
}

/// A delivery waiting in a postbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostboxEntry {
    pub message_id: String,
    /// The inner StoreDelivery message as received.
    pub content: BlobRef,
    /// `osci:Subject`, if given.
    #[serde(default)]
    pub subject: Option<String>,
    /// When it was stored (RFC 3339).
    pub stored: String,
    /// The same in Unix milliseconds (FetchDelivery's
    /// `ReceptionOfDelivery` selection compares it).
    #[serde(default)]
    pub stored_unix_ms: u64,
}

/// A Laufzettel: what happened to a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessCard {
    pub message_id: String,
    /// Originator (as [`Dialog::client`]): may fetch the card.
    pub originator: String,
    /// Addressee (SHA-256 of its cipher certificate): may fetch it too.
    pub addressee: String,
    #[serde(default)]
    pub subject: Option<String>,
    /// Stored at the Intermediär.
    pub creation: std::time::SystemTime,
    /// Handed to the addressee.
    #[serde(default)]
    pub forwarding: Option<std::time::SystemTime>,
    /// Confirmed by the addressee.
    #[serde(default)]
    pub reception: Option<std::time::SystemTime>,
}

impl ProcessCard {
    /// The latest of its times.
    pub fn recent_modification(&self) -> std::time::SystemTime {
        [Some(self.creation), self.forwarding, self.reception]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(self.creation)
    }
}

/// Most open deliveries one FetchDelivery looks through (for a
/// `ReceptionOfDelivery` selection, and to tell whether more wait).
pub const MAX_SCANNED: usize = 1_000;

/// State failure.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("OSCI state: {0}")]
    Store(#[from] StoreError),
    #[error("OSCI state record corrupt: {0}")]
    Corrupt(String),
}

const CLOSED: &[u8] = b"closed";

fn key(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![tag];
    for p in parts {
        k.push(0);
        k.extend_from_slice(p);
    }
    k
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt(format!("osci {what}: {e}")))
}

fn encode<T: Serialize>(what: &str, v: &T) -> Result<Bytes, StoreError> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| StoreError::Corrupt(format!("osci {what}: {e}")))
}

/// Big-endian u64 of a counter entry (0 when absent).
fn u64_of(v: Option<&Bytes>) -> Result<u64, StoreError> {
    match v {
        None => Ok(0),
        Some(b) => {
            let a: [u8; 8] = b
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Corrupt("osci counter".into()))?;
            Ok(u64::from_be_bytes(a))
        }
    }
}

/// Outcome of [`IntermediaryState::store_delivery`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored now.
    Stored,
    /// This message id was stored before with the same delivery (a
    /// client's retry).
    AlreadyStored,
    /// The id was not issued by this Intermediär, or to another client.
    NotIssued,
    /// The id was used before for another delivery.
    Conflict,
    /// The addressee's postbox holds its maximum of open deliveries.
    Full,
}

/// Outcome of [`IntermediaryState::advance_dialog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advanced {
    /// The dialog moved on (and the id, if any, was issued).
    Moved,
    /// Another request of the dialog got there first; nothing changed.
    Replayed,
    /// The client holds its maximum of unused ids; nothing changed.
    QuotaFull,
}

/// Record the message id under `k` (encoded `value` of `issued`) in `tx`
/// and count it for its client; `false` (nothing written) if the client
/// holds `max` unused ids already.
async fn put_issued(
    tx: &mut StateTx<'_>,
    k: &[u8],
    value: Bytes,
    issued: &IssuedId,
    max: u64,
) -> Result<bool, StoreError> {
    let client = issued.client.as_str();
    let (_, unused) = quota_counts(tx, client).await?;
    if unused >= max {
        return Ok(false);
    }
    // (ids are random: an id issued again is a caller's mistake; its
    // earlier owner's count stays right)
    if let Some(v) = tx.get(k).await? {
        let before: IssuedId = decode("issued id", &v)?;
        if !before.used {
            quota_add(tx, &before.client, 0, -1).await?;
        }
    }
    tx.put(k, value);
    quota_add(tx, client, 0, 1).await?;
    Ok(true)
}

/// `(next seq, open count)` of a postbox's `n` entry.
fn counters(v: Option<&Bytes>) -> Result<(u64, u64), StoreError> {
    match v {
        None => Ok((0, 0)),
        Some(b) if b.len() == 16 => {
            let mut a = [0u8; 8];
            let mut c = [0u8; 8];
            a.copy_from_slice(&b[..8]);
            c.copy_from_slice(&b[8..]);
            Ok((u64::from_be_bytes(a), u64::from_be_bytes(c)))
        }
        Some(_) => Err(StoreError::Corrupt("osci postbox counters".into())),
    }
}

fn counters_bytes(next: u64, open: u64) -> Vec<u8> {
    let mut v = next.to_be_bytes().to_vec();
    v.extend_from_slice(&open.to_be_bytes());
    v
}

/// What one client may hold at a time (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Open dialogs (InitDialog without ExitDialog or timeout yet).
    pub dialogs: u64,
    /// Message ids from GetMessageId not yet used by a StoreDelivery
    /// (nor swept after `keep_unused_ids`).
    pub unused_ids: u64,
}

/// How a client that does not sign its requests is named: this prefix,
/// then the SHA-256 of its cipher certificate. All such clients share one
/// quota: a cipher certificate is public, so anyone could use up the
/// quota of another's.
pub const UNSIGNED: &str = "unsigned:";

/// Key of a client's quota counters.
fn quota_key(client: &str) -> Vec<u8> {
    if client.starts_with(UNSIGNED) {
        key(b'u', &[UNSIGNED.as_bytes()])
    } else {
        key(b'u', &[client.as_bytes()])
    }
}

/// `(open dialogs, unused ids)` of a `u` record. A record that does not
/// read counts as none (logged), so that one bad record stops neither the
/// client nor the sweep; the next change writes it anew.
fn quota_of(v: Option<&Bytes>) -> (u64, u64) {
    counters(v).unwrap_or_else(|e| {
        tracing::error!(error = %e, "osci: a client's quota record is corrupt; counted as empty");
        (0, 0)
    })
}

/// `(open dialogs, unused ids)` of `client` in `tx`.
async fn quota_counts(tx: &mut StateTx<'_>, client: &str) -> Result<(u64, u64), StoreError> {
    Ok(quota_of(tx.get(&quota_key(client)).await?.as_ref()))
}

/// Add `dialogs` and `ids` (either may be negative) to `client`'s counts
/// in `tx`; the entry goes when both are 0.
async fn quota_add(
    tx: &mut StateTx<'_>,
    client: &str,
    dialogs: i64,
    ids: i64,
) -> Result<(), StoreError> {
    let (d, i) = quota_counts(tx, client).await?;
    if d.checked_add_signed(dialogs).is_none() || i.checked_add_signed(ids).is_none() {
        // Only dialogs and ids from before the counters (or a bug) get
        // here; the count stays at 0.
        tracing::warn!(
            client,
            dialogs,
            ids,
            "osci: a client's quota count would go below 0"
        );
    }
    let d = d.saturating_add_signed(dialogs);
    let i = i.saturating_add_signed(ids);
    let k = quota_key(client);
    if d == 0 && i == 0 {
        tx.delete(&k);
    } else {
        tx.put(&k, counters_bytes(d, i));
    }
    Ok(())
}

/// The issued id under `ikey` in `tx` if `client` may use it for
/// `delivery` now, else the outcome to answer (see [`check_issued`]).
async fn usable_id(
    tx: &mut StateTx<'_>,
    ikey: &[u8],
    client: &str,
    delivery: &str,
) -> Result<Result<IssuedId, StoreOutcome>, StoreError> {
    let Some(v) = tx.get(ikey).await? else {
        return Ok(Err(StoreOutcome::NotIssued));
    };
    let issued: IssuedId = decode("issued id", &v)?;
    Ok(match check_issued(&issued, client, delivery) {
        Some(outcome) => Err(outcome),
        None => Ok(issued),
    })
}

/// Mark `issued` (under `ikey`) used for `delivery` in `tx`: its place in
/// its client's quota of unused ids is free again.
async fn mark_used(
    tx: &mut StateTx<'_>,
    ikey: &[u8],
    mut issued: IssuedId,
    delivery: &str,
) -> Result<(), StoreError> {
    issued.used = true;
    issued.delivery = Some(delivery.to_owned());
    tx.put(ikey, encode("issued id", &issued)?);
    quota_add(tx, &issued.client, 0, -1).await
}

/// Check an issued id for a StoreDelivery by `client` delivering
/// `delivery`: `None` to go on, else the outcome to answer.
fn check_issued(issued: &IssuedId, client: &str, delivery: &str) -> Option<StoreOutcome> {
    if issued.client != client {
        return Some(StoreOutcome::NotIssued);
    }
    if issued.used {
        return Some(if issued.delivery.as_deref() == Some(delivery) {
            StoreOutcome::AlreadyStored
        } else {
            StoreOutcome::Conflict
        });
    }
    None
}

/// The state of one `osci` channel.
#[derive(Debug, Clone)]
pub struct IntermediaryState {
    space: StateSpace,
}

impl IntermediaryState {
    /// The state of channel `channel` in `store`.
    ///
    /// # Errors
    ///
    /// An invalid space name.
    pub fn new(store: Arc<dyn Store>, channel: &str) -> Result<Self, StateError> {
        Ok(Self {
            space: StateSpace::new(store, &format!("osci/{channel}"))?,
        })
    }

    /// Open `dialog` under a new conversation id (unique across
    /// instances: a counter); `None` if its client holds `max` open
    /// dialogs already.
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn open_dialog(
        &self,
        dialog: &Dialog,
        max: u64,
    ) -> Result<Option<String>, StateError> {
        let value = encode("dialog", dialog)?;
        let client = dialog.client.as_str();
        let id = self
            .space
            .update(|mut tx| {
                let value = value.clone();
                async move {
                    let (open, _) = quota_counts(&mut tx, client).await?;
                    if open >= max {
                        return Ok((tx, None));
                    }
                    let n = u64_of(tx.get(b"c").await?.as_ref())? + 1;
                    tx.put(b"c", n.to_be_bytes().to_vec());
                    let id = n.to_string();
                    tx.put(&key(b'd', &[id.as_bytes()]), value);
                    quota_add(&mut tx, client, 1, 0).await?;
                    Ok((tx, Some(id)))
                }
            })
            .await?;
        Ok(id)
    }

    /// A conversation id for a request outside a dialog (nothing is
    /// stored but the counter).
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn next_conversation(&self) -> Result<String, StateError> {
        let id = self
            .space
            .update(|mut tx| async move {
                let n = u64_of(tx.get(b"c").await?.as_ref())? + 1;
                tx.put(b"c", n.to_be_bytes().to_vec());
                Ok((tx, n.to_string()))
            })
            .await?;
        Ok(id)
    }

    /// `client`'s open dialogs and unused message ids (see [`Quota`]).
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn quota_used(&self, client: &str) -> Result<(u64, u64), StateError> {
        Ok(quota_of(self.space.get(&quota_key(client)).await?.as_ref()))
    }

    /// A dialog, `None` if unknown.
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn dialog(&self, id: &str) -> Result<Option<Dialog>, StateError> {
        self.get_json("dialog", &key(b'd', &[id.as_bytes()])).await
    }

    /// A JSON record, `None` if absent.
    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        what: &str,
        k: &[u8],
    ) -> Result<Option<T>, StateError> {
        match self.space.get(k).await? {
            Some(v) => Ok(Some(decode(what, &v)?)),
            None => Ok(None),
        }
    }

    /// Advance a dialog from `seen` (the state the request was checked
    /// against) to `next`, or end it (`None`); with `issue` = `(message
    /// id, record, max)` a message id is issued in the same transaction
    /// (GetMessageId inside a dialog). [`Advanced::Replayed`] if another
    /// request of the dialog got there first (a replay racing the
    /// original); [`Advanced::QuotaFull`] if the client holds `max`
    /// unused ids: the dialog stays where it was, so the client keeps the
    /// challenge it needs for its next request.
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn advance_dialog(
        &self,
        id: &str,
        seen: &Dialog,
        next: Option<&Dialog>,
        issue: Option<(&str, &IssuedId, u64)>,
    ) -> Result<Advanced, StateError> {
        let k = key(b'd', &[id.as_bytes()]);
        let next = next.map(|d| encode("dialog", d)).transpose()?;
        let issue = issue
            .map(|(m, rec, max)| {
                Ok::<_, StateError>((
                    key(b'i', &[m.as_bytes()]),
                    encode("issued id", rec)?,
                    rec,
                    max,
                ))
            })
            .transpose()?;
        // `update` reruns on a conflict with any key it read (the client's
        // counters too); only a dialog that is no longer `seen` is a lost
        // race.
        let done = self
            .space
            .update(|mut tx| {
                let (k, next, issue) = (&k, next.clone(), issue.clone());
                async move {
                    match tx.get(k).await? {
                        Some(v) if decode::<Dialog>("dialog", &v)? == *seen => {}
                        _ => return Ok((tx, Advanced::Replayed)),
                    }
                    if let Some((ik, value, rec, max)) = issue {
                        if !put_issued(&mut tx, &ik, value, rec, max).await? {
                            return Ok((tx, Advanced::QuotaFull));
                        }
                    }
                    match next {
                        Some(d) => tx.put(k, d),
                        None => {
                            tx.delete(k);
                            quota_add(&mut tx, &seen.client, -1, 0).await?;
                        }
                    }
                    Ok((tx, Advanced::Moved))
                }
            })
            .await?;
        Ok(done)
    }

    /// Record a message id handed out to `issued.client`; `false` (and
    /// nothing recorded) if that client holds `max` unused ids already.
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn issue_id(
        &self,
        message_id: &str,
        issued: &IssuedId,
        max: u64,
    ) -> Result<bool, StateError> {
        let k = key(b'i', &[message_id.as_bytes()]);
        let value = encode("issued id", issued)?;
        let done = self
            .space
            .update(|mut tx| {
                let (k, value) = (&k, value.clone());
                async move {
                    let issued = put_issued(&mut tx, k, value, issued, max).await?;
                    Ok((tx, issued))
                }
            })
            .await?;
        Ok(done)
    }

    /// Put a delivery into `addressee`'s postbox, start its Laufzettel
    /// and mark its message id used — one transaction. The blob must be
    /// staged; the entry holds it from here on.
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn store_delivery(
        &self,
        client: &str,
        addressee: &str,
        entry: &PostboxEntry,
        card: &ProcessCard,
        delivery: &str,
        max_open: u64,
    ) -> Result<StoreOutcome, StateError> {
        let ikey = key(b'i', &[entry.message_id.as_bytes()]);
        let qkey = key(b'q', &[addressee.as_bytes(), entry.message_id.as_bytes()]);
        let nkey = key(b'n', &[addressee.as_bytes()]);
        let lkey = key(b'l', &[entry.message_id.as_bytes()]);
        let entry_json = encode("postbox entry", entry)?;
        let card_json = encode("process card", card)?;
        let sha = entry.content.sha256.clone();
        let outcome = self
            .space
            .update(|mut tx| {
                let (ikey, qkey, nkey, lkey) = (&ikey, &qkey, &nkey, &lkey);
                let (entry_json, card_json, sha) = (entry_json.clone(), card_json.clone(), &sha);
                async move {
                    let issued = match usable_id(&mut tx, ikey, client, delivery).await? {
                        Ok(issued) => issued,
                        Err(outcome) => return Ok((tx, outcome)),
                    };
                    let (seq, open) = counters(tx.get(nkey).await?.as_ref())?;
                    if open >= max_open {
                        return Ok((tx, StoreOutcome::Full));
                    }
                    mark_used(&mut tx, ikey, issued, delivery).await?;
                    tx.put(nkey, counters_bytes(seq + 1, open + 1));
                    tx.put(qkey, seq.to_be_bytes().to_vec());
                    tx.put(
                        &key(b'p', &[addressee.as_bytes(), &seq.to_be_bytes()]),
                        entry_json,
                    );
                    tx.put(lkey, card_json);
                    tx.hold_blob(sha);
                    Ok((tx, StoreOutcome::Stored))
                }
            })
            .await?;
        Ok(outcome)
    }

    /// A message id as issued, `None` if unknown.
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn issued(&self, message_id: &str) -> Result<Option<IssuedId>, StateError> {
        self.get_json("issued id", &key(b'i', &[message_id.as_bytes()]))
            .await
    }

    /// Whether `client` may use `message_id` for `delivery` now (`None`)
    /// or what to answer (read only; [`Self::record_hub_delivery`] checks
    /// again when it commits).
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn may_deliver(
        &self,
        client: &str,
        message_id: &str,
        delivery: &str,
    ) -> Result<Option<StoreOutcome>, StateError> {
        Ok(match self.issued(message_id).await? {
            None => Some(StoreOutcome::NotIssued),
            Some(i) => check_issued(&i, client, delivery),
        })
    }

    /// Record a delivery the hub itself took in (a hub recipient's): the
    /// id is used, the Laufzettel complete — no postbox entry.
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn record_hub_delivery(
        &self,
        client: &str,
        card: &ProcessCard,
        delivery: &str,
    ) -> Result<StoreOutcome, StateError> {
        let ikey = key(b'i', &[card.message_id.as_bytes()]);
        let lkey = key(b'l', &[card.message_id.as_bytes()]);
        let card_json = encode("process card", card)?;
        let outcome = self
            .space
            .update(|mut tx| {
                let (ikey, lkey, card_json) = (&ikey, &lkey, card_json.clone());
                async move {
                    let issued = match usable_id(&mut tx, ikey, client, delivery).await? {
                        Ok(issued) => issued,
                        Err(outcome) => return Ok((tx, outcome)),
                    };
                    mark_used(&mut tx, ikey, issued, delivery).await?;
                    tx.put(lkey, card_json);
                    Ok((tx, StoreOutcome::Stored))
                }
            })
            .await?;
        Ok(outcome)
    }

    /// The oldest open deliveries of `addressee` (at most `max`).
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn open_deliveries(
        &self,
        addressee: &str,
        max: usize,
    ) -> Result<Vec<PostboxEntry>, StateError> {
        let prefix = key(b'p', &[addressee.as_bytes()]);
        let mut prefix = prefix;
        prefix.push(0);
        let mut out = Vec::new();
        for (_, v) in self.space.scan_up_to(&prefix, max).await? {
            out.push(decode("postbox entry", &v)?);
        }
        Ok(out)
    }

    /// An open delivery by id.
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn open_delivery(
        &self,
        addressee: &str,
        message_id: &str,
    ) -> Result<Option<PostboxEntry>, StateError> {
        let q = self
            .space
            .get(&key(b'q', &[addressee.as_bytes(), message_id.as_bytes()]))
            .await?;
        let Some(seq) = q.filter(|v| v.as_ref() != CLOSED) else {
            return Ok(None);
        };
        match self
            .space
            .get(&key(b'p', &[addressee.as_bytes(), &seq]))
            .await?
        {
            Some(v) => Ok(Some(decode("postbox entry", &v)?)),
            None => Ok(None),
        }
    }

    /// Close an open delivery (the addressee confirmed it) and stamp its
    /// Laufzettel; gives the blob back. `false` if it was not open.
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn confirm_reception(
        &self,
        addressee: &str,
        message_id: &str,
        at: std::time::SystemTime,
    ) -> Result<bool, StateError> {
        let qkey = key(b'q', &[addressee.as_bytes(), message_id.as_bytes()]);
        let lkey = key(b'l', &[message_id.as_bytes()]);
        let done = self
            .space
            .update(|mut tx| {
                let (qkey, lkey) = (&qkey, &lkey);
                async move {
                    let Some(seq) = tx.get(qkey).await? else {
                        return Ok((tx, false));
                    };
                    if seq.as_ref() == CLOSED {
                        return Ok((tx, false));
                    }
                    let pkey = key(b'p', &[addressee.as_bytes(), &seq]);
                    let nkey = key(b'n', &[addressee.as_bytes()]);
                    let (next, open) = counters(tx.get(&nkey).await?.as_ref())?;
                    tx.put(&nkey, counters_bytes(next, open.saturating_sub(1)));
                    if let Some(v) = tx.get(&pkey).await? {
                        let entry: PostboxEntry = decode("postbox entry", &v)?;
                        tx.release_blob(&entry.content.sha256);
                    }
                    tx.delete(&pkey);
                    tx.put(qkey, Bytes::from_static(CLOSED));
                    if let Some(v) = tx.get(lkey).await? {
                        let mut card: ProcessCard = decode("process card", &v)?;
                        card.reception = Some(at);
                        tx.put(lkey, encode("process card", &card)?);
                    }
                    Ok((tx, true))
                }
            })
            .await?;
        Ok(done)
    }

    /// Stamp a delivery's first forwarding time.
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn mark_forwarded(
        &self,
        message_id: &str,
        at: std::time::SystemTime,
    ) -> Result<(), StateError> {
        let lkey = key(b'l', &[message_id.as_bytes()]);
        self.space
            .update(|mut tx| {
                let lkey = &lkey;
                async move {
                    if let Some(v) = tx.get(lkey).await? {
                        let mut card: ProcessCard = decode("process card", &v)?;
                        if card.forwarding.is_none() {
                            card.forwarding = Some(at);
                            tx.put(lkey, encode("process card", &card)?);
                        }
                    }
                    Ok((tx, ()))
                }
            })
            .await?;
        Ok(())
    }

    /// A Laufzettel.
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn process_card(&self, message_id: &str) -> Result<Option<ProcessCard>, StateError> {
        self.get_json("process card", &key(b'l', &[message_id.as_bytes()]))
            .await
    }
}

/// What [`IntermediaryState::sweep`] keeps.
#[derive(Debug, Clone, Copy)]
pub struct SweepPolicy {
    /// Laufzettel of received deliveries, after their last change.
    pub keep_process_cards: std::time::Duration,
    /// Message ids handed out and never used.
    pub keep_unused_ids: std::time::Duration,
}

/// Where the next sweep goes on (a sweep reads a page per kind).
#[derive(Debug, Clone, Default)]
pub struct SweepCursor {
    dialogs: Option<Vec<u8>>,
    ids: Option<Vec<u8>>,
}

impl IntermediaryState {
    /// The next page of at most `page` entries with key tag `tag`, from
    /// `cursor` on; the cursor moves past it (back to the start after a
    /// short page).
    async fn page(
        &self,
        tag: u8,
        cursor: &mut Option<Vec<u8>>,
        page: usize,
    ) -> Result<Vec<(Vec<u8>, Bytes)>, StateError> {
        let entries = self.space.scan(&[tag, 0], cursor.as_deref(), page).await?;
        *cursor = if entries.len() < page {
            None
        } else {
            entries.last().map(|(k, _)| k.clone())
        };
        Ok(entries)
    }

    /// Delete `k` if it still holds `v`, and take `dialogs`/`ids` off
    /// `client`'s counts with it; whether it was deleted now.
    async fn delete_unchanged(
        &self,
        k: &[u8],
        v: &Bytes,
        (client, dialogs, ids): (&str, i64, i64),
    ) -> Result<bool, StateError> {
        let done = self
            .space
            .update(|mut tx| async move {
                if tx.get(k).await?.as_ref() != Some(v) {
                    return Ok((tx, false));
                }
                tx.delete(k);
                quota_add(&mut tx, client, dialogs, ids).await?;
                Ok((tx, true))
            })
            .await?;
        Ok(done)
    }
}

impl SweepCursor {
    /// Whether both key ranges were read to their end (a round is over).
    pub fn is_at_start(&self) -> bool {
        self.dialogs.is_none() && self.ids.is_none()
    }
}

/// What one sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub dialogs: usize,
    pub ids: usize,
    pub cards: usize,
}

/// Unix seconds of `t` (0 before 1970).
pub(crate) fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix milliseconds of `t` (0 before 1970).
pub(crate) fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl IntermediaryState {
    /// Remove what is over (see the module docs), reading at most `page`
    /// dialogs and `page` message ids from `cursor` on; call again for the
    /// rest (the cursor wraps around at the end).
    ///
    /// # Errors
    ///
    /// The store failed.
    pub async fn sweep(
        &self,
        now: std::time::SystemTime,
        policy: SweepPolicy,
        cursor: &mut SweepCursor,
        page: usize,
    ) -> Result<Swept, StateError> {
        let mut swept = Swept::default();
        let now_unix = unix(now);
        // Dialogs past their timeout.
        for (k, v) in self.page(b'd', &mut cursor.dialogs, page).await? {
            let Ok(d) = serde_json::from_slice::<Dialog>(&v) else {
                continue;
            };
            if d.expires < now_unix && self.delete_unchanged(&k, &v, (&d.client, -1, 0)).await? {
                swept.dialogs += 1;
            }
        }
        // Message ids, and with them finished Laufzettel.
        for (k, v) in self.page(b'i', &mut cursor.ids, page).await? {
            let Some(id) = k.get(2..) else { continue };
            let Ok(issued) = serde_json::from_slice::<IssuedId>(&v) else {
                continue;
            };
            if !issued.used {
                if issued.issued_unix + policy.keep_unused_ids.as_secs() < now_unix
                    && self
                        .delete_unchanged(&k, &v, (&issued.client, 0, -1))
                        .await?
                {
                    swept.ids += 1;
                }
                continue;
            }
            let lkey = key(b'l', &[id]);
            let mut tx = self.space.begin();
            let card = match tx.get(&lkey).await? {
                Some(c) => match serde_json::from_slice::<ProcessCard>(&c) {
                    Ok(c) => c,
                    Err(_) => continue,
                },
                None => continue,
            };
            let Some(received) = card.reception else {
                continue;
            };
            if unix(received.max(card.recent_modification())) + policy.keep_process_cards.as_secs()
                >= now_unix
            {
                continue;
            }
            if tx.get(&k).await?.as_deref() != Some(v.as_ref()) {
                continue;
            }
            tx.delete(&lkey);
            tx.delete(&k);
            tx.delete(&key(b'q', &[card.addressee.as_bytes(), id]));
            if tx.commit().await? {
                swept.ids += 1;
                swept.cards += 1;
            }
        }
        Ok(swept)
    }
}
