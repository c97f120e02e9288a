//! Durable state of the intake: announced and submitted submissions, the
//! event log of every case, the cases still awaiting `accept`/`reject`,
//! and the uploaded (still encrypted) attachments.
//!
//! One sled database per channel under `<data_dir>/fit-connect/<channel>`:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `submissions` | submission id (16 bytes) | [`SubmissionRecord`] JSON |
//! | `cases` | case id | submission id |
//! | `events` | case id + sequence (8 bytes BE) | SET (compact JWS) |
//! | `open` | submission id | hub message id (text) |
//!
//! Uploaded attachments are files `uploads/<submission>/<attachment>.jwe`
//! beside the database. Every change is flushed before the HTTP answer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use uuid::Uuid;

use crate::api::ServiceType;

/// Errors of the intake state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// sled failed.
    #[error("fit-connect state store: {0}")]
    Store(String),
    /// A stored record cannot be read.
    #[error("fit-connect state store: corrupt record: {0}")]
    Corrupt(String),
}

impl From<sled::Error> for StateError {
    fn from(e: sled::Error) -> Self {
        Self::Store(e.to_string())
    }
}

impl From<TransactionError<StateError>> for StateError {
    fn from(e: TransactionError<StateError>) -> Self {
        match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => Self::Store(e.to_string()),
        }
    }
}

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
    /// State.
    pub state: SubmissionState,
    /// Hub message id once submitted.
    pub message_id: Option<String>,
    /// `{"authenticationTags": …}` once submitted.
    pub auth_tags: Option<Value>,
    /// Why it was rejected.
    pub problem: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The store.
#[derive(Clone)]
pub struct State {
    db: sled::Db,
    submissions: sled::Tree,
    cases: sled::Tree,
    events: sled::Tree,
    open: sled::Tree,
    dir: PathBuf,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").field("dir", &self.dir).finish()
    }
}

fn encode(record: &SubmissionRecord) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(record).map_err(|e| StateError::Corrupt(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<SubmissionRecord, StateError> {
    serde_json::from_slice(bytes).map_err(|e| StateError::Corrupt(e.to_string()))
}

impl State {
    /// Open (or create) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(dir.join("uploads"))
            .map_err(|e| StateError::Store(format!("creating {}: {e}", dir.display())))?;
        let db = sled::Config::new()
            .path(dir.join("db"))
            .flush_every_ms(None)
            .open()?;
        Ok(Self {
            submissions: db.open_tree("submissions")?,
            cases: db.open_tree("cases")?,
            events: db.open_tree("events")?,
            open: db.open_tree("open")?,
            db,
            dir: dir.to_path_buf(),
        })
    }

    /// Directory of the uploaded attachments of a submission.
    pub fn upload_dir(&self, submission: Uuid) -> PathBuf {
        self.dir.join("uploads").join(submission.to_string())
    }

    /// Flush to disk.
    pub async fn flush(&self) -> Result<(), StateError> {
        {
            // A blocking flush on a blocking thread, never `flush_async`:
            // sled 0.34 shares one concurrency-control lock between all
            // databases of the process, and its async flush held that lock
            // on sled's I/O threads while waiting for log stability, which
            // deadlocked with the hub store's transactions under load.
            let db = self.db.clone();
            tokio::task::spawn_blocking(move || db.flush())
                .await
                .map_err(|e| StateError::Store(format!("flush task: {e}")))??;
        }
        Ok(())
    }

    /// A submission.
    pub fn get(&self, submission: Uuid) -> Result<Option<SubmissionRecord>, StateError> {
        self.submissions
            .get(submission.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// The submission of a case.
    pub fn by_case(&self, case: Uuid) -> Result<Option<SubmissionRecord>, StateError> {
        match self.cases.get(case.as_bytes())? {
            Some(sid) => {
                let sid = Uuid::from_slice(&sid).map_err(|e| StateError::Corrupt(e.to_string()))?;
                self.get(sid)
            }
            None => Ok(None),
        }
    }

    /// Store a new submission and its case.
    pub fn create(&self, record: &SubmissionRecord) -> Result<(), StateError> {
        let value = encode(record)?;
        (&self.submissions, &self.cases).transaction(|(s, c)| {
            s.insert(record.submission_id.as_bytes(), value.as_slice())?;
            c.insert(record.case_id.as_bytes(), record.submission_id.as_bytes())?;
            Ok::<(), ConflictableTransactionError<StateError>>(())
        })?;
        Ok(())
    }

    /// Replace a submission record.
    pub fn put(&self, record: &SubmissionRecord) -> Result<(), StateError> {
        self.submissions
            .insert(record.submission_id.as_bytes(), encode(record)?)?;
        Ok(())
    }

    /// Store `record`, append `event` (a SET) to its case, and mark the
    /// case open (awaiting accept/reject, with the hub message id) or
    /// closed — all in one transaction.
    pub fn commit(
        &self,
        record: &SubmissionRecord,
        event: &str,
        open: Option<&str>,
    ) -> Result<(), StateError> {
        let value = encode(record)?;
        (&self.submissions, &self.events, &self.open).transaction(|(s, e, o)| {
            s.insert(record.submission_id.as_bytes(), value.as_slice())?;
            let seq = e.generate_id()?;
            let mut key = record.case_id.as_bytes().to_vec();
            key.extend_from_slice(&seq.to_be_bytes());
            e.insert(key, event.as_bytes())?;
            match open {
                Some(message) => {
                    o.insert(record.submission_id.as_bytes(), message.as_bytes())?;
                }
                None => {
                    o.remove(record.submission_id.as_bytes())?;
                }
            }
            Ok::<(), ConflictableTransactionError<StateError>>(())
        })?;
        Ok(())
    }

    /// Events of a case, oldest first: `(page, total)`.
    pub fn events(
        &self,
        case: Uuid,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<String>, usize), StateError> {
        let mut all = Vec::new();
        for item in self.events.scan_prefix(case.as_bytes()) {
            let (_, v) = item?;
            all.push(
                String::from_utf8(v.to_vec()).map_err(|e| StateError::Corrupt(e.to_string()))?,
            );
        }
        let total = all.len();
        let page = all.into_iter().skip(offset).take(limit).collect();
        Ok((page, total))
    }

    /// Submissions still `announced` that were created before `before`.
    pub fn announced_before(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<SubmissionRecord>, StateError> {
        let mut out = Vec::new();
        for item in self.submissions.iter() {
            let (_, v) = item?;
            let r = decode(&v)?;
            if r.state == SubmissionState::Announced && r.created_at < before {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Open cases: `(submission id, hub message id)`.
    pub fn open_cases(&self) -> Result<Vec<(Uuid, String)>, StateError> {
        let mut out = Vec::new();
        for item in self.open.iter() {
            let (k, v) = item?;
            let sid = Uuid::from_slice(&k).map_err(|e| StateError::Corrupt(e.to_string()))?;
            out.push((sid, String::from_utf8_lossy(&v).into_owned()));
        }
        Ok(out)
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
            state: SubmissionState::Announced,
            message_id: None,
            auth_tags: None,
            problem: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn records_events_and_open_cases_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = record();
        {
            let s = State::open(dir.path()).unwrap();
            s.create(&r).unwrap();
            r.state = SubmissionState::Submitted;
            s.commit(&r, "set-1", Some("msg-1")).unwrap();
            s.commit(&r, "set-2", Some("msg-1")).unwrap();
            s.flush().await.unwrap();
        }
        let s = State::open(dir.path()).unwrap();
        assert_eq!(
            s.get(r.submission_id).unwrap().unwrap().state,
            SubmissionState::Submitted
        );
        assert_eq!(
            s.by_case(r.case_id).unwrap().unwrap().submission_id,
            r.submission_id
        );
        let (events, total) = s.events(r.case_id, 0, 500).unwrap();
        assert_eq!(
            (events, total),
            (vec!["set-1".to_owned(), "set-2".to_owned()], 2)
        );
        assert_eq!(
            s.events(r.case_id, 1, 1).unwrap().0,
            vec!["set-2".to_owned()]
        );
        assert_eq!(
            s.open_cases().unwrap(),
            vec![(r.submission_id, "msg-1".to_owned())]
        );
        r.state = SubmissionState::Accepted;
        s.commit(&r, "set-3", None).unwrap();
        assert!(s.open_cases().unwrap().is_empty());
        assert!(s.by_case(Uuid::new_v4()).unwrap().is_none());
        assert!(s.events(Uuid::new_v4(), 0, 10).unwrap().0.is_empty());
    }
}
