//! Durable state of the intake: announced and submitted submissions, the
//! event log of every case, the cases still awaiting `accept`/`reject`,
//! and the uploaded (still encrypted) attachments.
//!
//! The records live in the hub store, state space
//! `fit-connect/intake/<channel>` (see [`drehscheibe_store::state`]):
//!
//! | key | value |
//! |---|---|
//! | `s` + submission id (16 bytes) | [`SubmissionRecord`] JSON |
//! | `c` + case id | submission id |
//! | `e` + case id + sequence (8 bytes BE) | SET (compact JWS) |
//! | `n` + case id | number of events of the case (8 bytes BE) |
//! | `o` + submission id | hub message id (text): cases awaiting accept/reject |
//! | `a` + created (ms, 8 bytes BE) + submission id | empty: submissions still `announced`, oldest first |
//!
//! Uploaded attachments, still encrypted, live in the hub's blob store,
//! so any instance of the hub can take the submit that follows an upload
//! through another. The record names them ([`SubmissionRecord::upload_blobs`])
//! and holds a reference on each in the same commit (see
//! [`drehscheibe_store::state`]): `write_record` keeps the references the
//! space holds equal to the blobs the stored record names, and a record
//! that leaves `announced` (submitted, rejected, expired) names none, so
//! its uploads become retention's to collect. The channel's directory on
//! the local disk only holds the plaintext of an attachment while a submit
//! decrypts it (and uploads of an earlier version, read once at submit).
//! Every change is durable before the HTTP answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use drehscheibe_model::BlobRef;
use drehscheibe_store::{StateSpace, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::api::ServiceType;

/// Errors of the intake state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The hub store failed.
    #[error("fit-connect state store: {0}")]
    Store(String),
    /// A stored record cannot be read.
    #[error("fit-connect state store: corrupt record: {0}")]
    Corrupt(String),
}

impl From<StoreError> for StateError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(e) => Self::Corrupt(e),
            e => Self::Store(e.to_string()),
        }
    }
}

/// Most open cases or stale announcements read in one pass of the status
/// follower; the rest wait for its next pass.
pub const MAX_SCAN: usize = 10_000;

/// Where a submission stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubmissionState {
    /// Created; attachments may be uploaded.
    Announced,
    /// Decrypted, checked and handed to the hub; awaiting delivery.
    Submitted,
    /// Delivered to the Fachverfahren; `accept-submission` written.
    Accepted,
    /// Refused; `reject-submission` written.
    Rejected,
}

impl SubmissionState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Announced => "announced",
            Self::Submitted => "submitted",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
        }
    }
}

/// One submission as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmissionRecord {
    /// The submission id (chosen by the hub).
    pub submission_id: Uuid,
    /// The case id (chosen by the hub).
    pub case_id: Uuid,
    /// The destination.
    pub destination_id: Uuid,
    /// OAuth client that announced it.
    pub client_id: String,
    /// Leistung named at announcement.
    pub service_type: Option<ServiceType>,
    /// Announced attachment ids.
    pub announced: Vec<Uuid>,
    /// Uploaded attachment ids and their encrypted sizes.
    pub uploaded: BTreeMap<Uuid, u64>,
    /// Where each upload is in the blob store (the JWE as sent). Empty
    /// once the record left `announced`. An upload of an earlier version
    /// has an entry in `uploaded` only and lies in the local directory.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub upload_blobs: BTreeMap<Uuid, BlobRef>,
    /// State.
    pub state: SubmissionState,
    /// Hub message id once submitted.
    pub message_id: Option<String>,
    /// `{"authenticationTags": …}` once submitted.
    pub auth_tags: Option<Value>,
    /// Why it was rejected, as the sender is told (the `reject-submission`
    /// detail, also shown by `GET /v1/submissions/{id}`).
    pub problem: Option<String>,
    /// The hub's own reason when it differs from what the sender is told
    /// (a rejected or dead message: see [`crate::set::NotDelivered`]). For
    /// operators only; never sent to the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The store.
#[derive(Clone)]
pub struct State {
    space: StateSpace,
    dir: PathBuf,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("space", &self.space.name())
            .field("dir", &self.dir)
            .finish()
    }
}

fn encode(record: &SubmissionRecord) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(record).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<SubmissionRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("submission: {e}")))
}

fn k(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = vec![tag];
    for p in parts {
        key.extend_from_slice(p);
    }
    key
}

fn uuid_of(bytes: &[u8]) -> Result<Uuid, StoreError> {
    Uuid::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn u64_of(bytes: &[u8]) -> Result<u64, StoreError> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("event counter".into()))?;
    Ok(u64::from_be_bytes(arr))
}

fn announced_key(record: &SubmissionRecord) -> Vec<u8> {
    let ms = u64::try_from(record.created_at.timestamp_millis()).unwrap_or(0);
    k(b'a', &[&ms.to_be_bytes(), record.submission_id.as_bytes()])
}

/// Write `record`, keep the index of announced submissions in step, and
/// the blob references of the space equal to the uploads the stored
/// record names: those of the record as stored before are released, those
/// of `record` held (none once it left `announced`). Reads the stored
/// record, so a commit over a record changed meanwhile conflicts.
async fn write_record(
    tx: &mut drehscheibe_store::StateTx<'_>,
    record: &SubmissionRecord,
) -> Result<(), StoreError> {
    let key = k(b's', &[record.submission_id.as_bytes()]);
    let before = match tx.get(&key).await? {
        Some(v) => decode(&v)?.upload_blobs,
        None => BTreeMap::new(),
    };
    let mut record = std::borrow::Cow::Borrowed(record);
    if record.state != SubmissionState::Announced && !record.upload_blobs.is_empty() {
        record.to_mut().upload_blobs.clear();
    }
    for blob in before.values() {
        tx.release_blob(&blob.sha256);
    }
    for blob in record.upload_blobs.values() {
        tx.hold_blob(&blob.sha256);
    }
    tx.put(&key, encode(&record)?);
    if record.state == SubmissionState::Announced {
        tx.put(&announced_key(&record), Bytes::new());
    } else {
        tx.delete(&announced_key(&record));
    }
    Ok(())
}

impl State {
    /// The state of channel `channel` in `store`; uploads go under `dir`.
    pub fn open(store: Arc<dyn Store>, channel: &str, dir: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(dir.join("uploads"))
            .map_err(|e| StateError::Store(format!("creating {}: {e}", dir.display())))?;
        Ok(Self {
            space: StateSpace::new(store, &format!("fit-connect/intake/{channel}"))?,
            dir: dir.to_path_buf(),
        })
    }

    /// Directory of the uploaded attachments of a submission.
    pub fn upload_dir(&self, submission: Uuid) -> PathBuf {
        self.dir.join("uploads").join(submission.to_string())
    }

    /// A submission.
    pub async fn get(&self, submission: Uuid) -> Result<Option<SubmissionRecord>, StateError> {
        Ok(self
            .space
            .get(&k(b's', &[submission.as_bytes()]))
            .await?
            .map(|v| decode(&v))
            .transpose()?)
    }

    /// The submission of a case.
    pub async fn by_case(&self, case: Uuid) -> Result<Option<SubmissionRecord>, StateError> {
        match self.space.get(&k(b'c', &[case.as_bytes()])).await? {
            Some(sid) => self.get(uuid_of(&sid)?).await,
            None => Ok(None),
        }
    }

    /// Store a new submission and its case.
    pub async fn create(&self, record: &SubmissionRecord) -> Result<(), StateError> {
        self.space
            .update(|mut tx| async move {
                write_record(&mut tx, record).await?;
                tx.put(
                    &k(b'c', &[record.case_id.as_bytes()]),
                    record.submission_id.as_bytes().to_vec(),
                );
                Ok((tx, ()))
            })
            .await?;
        Ok(())
    }

    /// Change the record of `submission` with `change` on what is stored
    /// now, retried on a concurrent change (so two instances of the hub
    /// never lose each other's change). `change` answers `Err` to leave
    /// the record as it is; `Ok(None)` when there is no such submission.
    pub async fn modify<E>(
        &self,
        submission: Uuid,
        change: impl Fn(&mut SubmissionRecord) -> Result<(), E>,
    ) -> Result<Option<Result<SubmissionRecord, E>>, StateError> {
        let key = k(b's', &[submission.as_bytes()]);
        let change = &change;
        let key = &key;
        Ok(self
            .space
            .update(|mut tx| async move {
                let Some(bytes) = tx.get(key).await? else {
                    return Ok((tx, None));
                };
                let mut record = decode(&bytes)?;
                if let Err(e) = change(&mut record) {
                    return Ok((tx, Some(Err(e))));
                }
                write_record(&mut tx, &record).await?;
                Ok((tx, Some(Ok(record))))
            })
            .await?)
    }

    /// Store `record`, append `event` (a SET) to its case, and mark the
    /// case open (awaiting accept/reject, with the hub message id) or
    /// closed — all in one transaction, and only while the stored record
    /// is still in state `from` (`Ok(false)`, nothing written, when
    /// another instance of the hub moved it on meanwhile).
    pub async fn commit(
        &self,
        from: SubmissionState,
        record: &SubmissionRecord,
        event: &str,
        open: Option<&str>,
    ) -> Result<bool, StateError> {
        let case = record.case_id;
        let counter = k(b'n', &[case.as_bytes()]);
        let key = k(b's', &[record.submission_id.as_bytes()]);
        Ok(self
            .space
            .update(|mut tx| {
                let (counter, key) = (&counter, &key);
                async move {
                    let stored = match tx.get(key).await? {
                        Some(v) => Some(decode(&v)?.state),
                        None => None,
                    };
                    if stored != Some(from) {
                        return Ok((tx, false));
                    }
                    let seq = match tx.get(counter).await? {
                        Some(v) => u64_of(&v)?,
                        None => 0,
                    };
                    write_record(&mut tx, record).await?;
                    tx.put(
                        &k(b'e', &[case.as_bytes(), &seq.to_be_bytes()]),
                        event.as_bytes().to_vec(),
                    );
                    tx.put(counter, (seq + 1).to_be_bytes().to_vec());
                    let okey = k(b'o', &[record.submission_id.as_bytes()]);
                    match open {
                        Some(message) => tx.put(&okey, message.as_bytes().to_vec()),
                        None => tx.delete(&okey),
                    }
                    Ok((tx, true))
                }
            })
            .await?)
    }

    /// Events of a case, oldest first: `(page, total)`.
    pub async fn events(
        &self,
        case: Uuid,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<String>, usize), StateError> {
        let total = match self.space.get(&k(b'n', &[case.as_bytes()])).await? {
            Some(v) => usize::try_from(u64_of(&v)?).unwrap_or(usize::MAX),
            None => 0,
        };
        let prefix = k(b'e', &[case.as_bytes()]);
        let after = offset
            .checked_sub(1)
            .map(|last| k(b'e', &[case.as_bytes(), &(last as u64).to_be_bytes()]));
        let page = self
            .space
            .scan(&prefix, after.as_deref(), limit)
            .await?
            .into_iter()
            .map(|(_, v)| {
                String::from_utf8(v.to_vec()).map_err(|e| StateError::Corrupt(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((page, total))
    }

    /// Submissions still `announced` that were created before `before`,
    /// oldest first (at most [`MAX_SCAN`]).
    pub async fn announced_before(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<SubmissionRecord>, StateError> {
        let before_ms = u64::try_from(before.timestamp_millis()).unwrap_or(0);
        let mut out = Vec::new();
        // Keys sort by creation time: stop at the first one not before.
        for (key, _) in self.space.scan_up_to(b"a", MAX_SCAN).await? {
            let (Some(ms), Some(sid)) = (key.get(1..9), key.get(9..)) else {
                return Err(StateError::Corrupt("announcement index key".into()));
            };
            if u64_of(ms)? >= before_ms {
                break;
            }
            if let Some(r) = self.get(uuid_of(sid)?).await? {
                if r.state == SubmissionState::Announced {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// Open cases: `(submission id, hub message id)` (at most
    /// [`MAX_SCAN`]).
    pub async fn open_cases(&self) -> Result<Vec<(Uuid, String)>, StateError> {
        self.space
            .scan_up_to(b"o", MAX_SCAN)
            .await?
            .iter()
            .map(|(key, v)| {
                let sid = uuid_of(key.get(1..).unwrap_or_default())?;
                Ok((sid, String::from_utf8_lossy(v).into_owned()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SubmissionRecord {
        SubmissionRecord {
            submission_id: Uuid::new_v4(),
            case_id: Uuid::new_v4(),
            destination_id: Uuid::new_v4(),
            client_id: "portal".into(),
            service_type: None,
            announced: vec![Uuid::new_v4()],
            uploaded: BTreeMap::new(),
            upload_blobs: BTreeMap::new(),
            state: SubmissionState::Announced,
            message_id: None,
            auth_tags: None,
            problem: None,
            reason: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn records_events_and_open_cases_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = record();
        let open = || -> Arc<dyn Store> {
            Arc::new(drehscheibe_store::SledStore::open(&dir.path().join("store")).unwrap())
        };
        let before = r.created_at + chrono::TimeDelta::seconds(1);
        {
            let s = State::open(open(), "in", dir.path()).unwrap();
            s.create(&r).await.unwrap();
            assert_eq!(s.announced_before(before).await.unwrap(), vec![r.clone()]);
            assert!(s.announced_before(r.created_at).await.unwrap().is_empty());
            r.state = SubmissionState::Submitted;
            assert!(s
                .commit(SubmissionState::Announced, &r, "set-1", Some("msg-1"))
                .await
                .unwrap());
            assert!(s
                .commit(SubmissionState::Submitted, &r, "set-2", Some("msg-1"))
                .await
                .unwrap());
            // Moved on by another instance: nothing written.
            assert!(!s
                .commit(SubmissionState::Announced, &r, "set-x", None)
                .await
                .unwrap());
            assert!(s.announced_before(before).await.unwrap().is_empty());
        }
        let s = State::open(open(), "in", dir.path()).unwrap();
        assert_eq!(
            s.get(r.submission_id).await.unwrap().unwrap().state,
            SubmissionState::Submitted
        );
        assert_eq!(
            s.by_case(r.case_id).await.unwrap().unwrap().submission_id,
            r.submission_id
        );
        let (events, total) = s.events(r.case_id, 0, 500).await.unwrap();
        assert_eq!(
            (events, total),
            (vec!["set-1".to_owned(), "set-2".to_owned()], 2)
        );
        assert_eq!(
            s.events(r.case_id, 1, 1).await.unwrap().0,
            vec!["set-2".to_owned()]
        );
        assert_eq!(
            s.open_cases().await.unwrap(),
            vec![(r.submission_id, "msg-1".to_owned())]
        );
        r.state = SubmissionState::Accepted;
        assert!(s
            .commit(SubmissionState::Submitted, &r, "set-3", None)
            .await
            .unwrap());
        assert!(s.open_cases().await.unwrap().is_empty());
        assert!(s.by_case(Uuid::new_v4()).await.unwrap().is_none());
        assert!(s.events(Uuid::new_v4(), 0, 10).await.unwrap().0.is_empty());
    }
}
