//! The status follower: turns the hub's view of a submitted message into
//! `accept-submission` / `reject-submission` events of its case.
//!
//! A `reject-submission` tells the sender *that* the submission was not
//! delivered and gives the hub message id as a reference, never *why* in
//! the hub's words: the hub's reason names its configuration, internal URLs
//! and connect errors. The fixed texts are documented at
//! [`set::NotDelivered`]; the hub's reason stays in the message record, in
//! [`SubmissionRecord::reason`](super::SubmissionRecord::reason) and in the
//! log.

use std::time::Duration;

use chrono::Utc;
use drehscheibe_model::{MessageId, MessageState};
use tokio_util::sync::CancellationToken;

use super::state::SubmissionState;
use super::FitConnectIntake;
use crate::set;

/// Incomplete (announced, never submitted) submissions are rejected and
/// their uploads deleted after this long, as FIT-Connect does.
pub const INCOMPLETE_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Failure of one follower pass.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The intake state store failed.
    #[error(transparent)]
    State(#[from] super::StateError),
    /// Signing an event failed.
    #[error("signing an event: {0}")]
    Sign(#[from] set::SetError),
}

impl FitConnectIntake {
    /// Look at every open case once; returns how many were closed
    /// (accepted or rejected).
    pub async fn follow_once(&self) -> Result<usize, FollowError> {
        let shared = &self.shared;
        let mut closed = 0;
        for (sid, message) in shared.state.open_cases().await? {
            let Some(mut record) = shared.state.get(sid).await? else {
                continue;
            };
            let status = match message.parse::<MessageId>() {
                Ok(id) => match shared.intake.status(id).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(submission = %sid, error = %e, "hub status unavailable");
                        continue;
                    }
                },
                Err(_) => None,
            };
            let (event, payload, state, problem, reason) = match status {
                Some(s) if s.state == MessageState::Delivered => (
                    set::ACCEPT_SUBMISSION,
                    record.auth_tags.clone().unwrap_or_default(),
                    SubmissionState::Accepted,
                    None,
                    None,
                ),
                Some(s)
                    if matches!(
                        s.state,
                        MessageState::Rejected | MessageState::Dead | MessageState::Quarantined
                    ) =>
                {
                    let reason = s
                        .reason
                        .clone()
                        .unwrap_or_else(|| format!("the message is {}", s.state));
                    let (kind, outcome) = match s.state {
                        MessageState::Rejected => {
                            ("rejected-by-rule-processor", set::NotDelivered::Rejected)
                        }
                        MessageState::Quarantined => {
                            ("malware-detected", set::NotDelivered::Quarantined)
                        }
                        _ => ("delivery-failed", set::NotDelivered::Dead),
                    };
                    let detail = outcome.sender_detail(&message);
                    tracing::warn!(submission = %sid, case = %record.case_id, message = %message, state = %s.state, reason = %reason, "fit-connect submission not delivered; the sender gets a reject-submission without the reason");
                    (
                        set::REJECT_SUBMISSION,
                        set::rejection(kind, "Submission not delivered", &detail),
                        SubmissionState::Rejected,
                        Some(detail),
                        Some(reason),
                    )
                }
                Some(_) => continue,
                None => {
                    let reason = format!("hub message {message} is unknown");
                    let detail = set::NotDelivered::Unknown.sender_detail(&message);
                    tracing::warn!(submission = %sid, case = %record.case_id, message = %message, "fit-connect submission lost: the hub does not know its message");
                    (
                        set::REJECT_SUBMISSION,
                        set::rejection("technical-error", "Submission lost", &detail),
                        SubmissionState::Rejected,
                        Some(detail),
                        Some(reason),
                    )
                }
            };
            // Receiver events: issued in the name of the destination.
            let token = set::create_set(
                &record.destination_id.to_string(),
                record.submission_id,
                record.case_id,
                event,
                payload,
                &shared.settings.signing_key,
            )?;
            record.state = state;
            record.problem = problem;
            record.reason = reason;
            record.updated_at = Utc::now();
            if !shared
                .state
                .commit(SubmissionState::Submitted, &record, &token, None)
                .await?
            {
                continue;
            }
            if event == set::REJECT_SUBMISSION {
                // The sender has its final answer: a later replay of the
                // message at this hub would contradict it (issue 10,
                // defect 10), so the hub records it on the message.
                if let Ok(id) = message.parse::<MessageId>() {
                    let answer = format!(
                        "FIT-Connect reject-submission (case {}, submission {})",
                        record.case_id, record.submission_id
                    );
                    let actor = format!("fit-connect:{}", shared.settings.channel);
                    if let Err(e) = shared.intake.note_sender_answer(id, &actor, &answer).await {
                        tracing::warn!(submission = %sid, error = %e, "could not record the rejection on the hub message");
                    }
                }
            }
            tracing::info!(submission = %sid, case = %record.case_id, state = record.state.as_str(), "fit-connect case closed");
            closed += 1;
        }
        Ok(closed)
    }

    /// Reject submissions announced more than `older_than` ago and never
    /// submitted (FIT-Connect deletes incomplete submissions after a day):
    /// their uploads are deleted and their case gets a `reject-submission`
    /// (`submission-expired`). Returns how many expired.
    pub async fn expire_incomplete(&self, older_than: Duration) -> Result<usize, FollowError> {
        let shared = &self.shared;
        let cutoff =
            Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
        let mut expired = 0;
        for record in shared.state.announced_before(cutoff).await? {
            // a concurrent upload/submit holds the submission: skip it now
            let Ok(_busy) = shared.busy(record.submission_id) else {
                continue;
            };
            let Some(mut record) = shared.state.get(record.submission_id).await? else {
                continue;
            };
            if record.state != SubmissionState::Announced {
                continue;
            }
            let detail = format!(
                "submission announced at {} was not submitted within {} s",
                record.created_at.to_rfc3339(),
                older_than.as_secs()
            );
            let token = set::create_set(
                shared.issuer(),
                record.submission_id,
                record.case_id,
                set::REJECT_SUBMISSION,
                set::rejection("submission-expired", "Submission expired", &detail),
                &shared.settings.signing_key,
            )?;
            record.state = SubmissionState::Rejected;
            record.problem = Some(detail);
            record.updated_at = Utc::now();
            // A submit through another instance may have won the race.
            if !shared
                .state
                .commit(SubmissionState::Announced, &record, &token, None)
                .await?
            {
                continue;
            }
            let dir = shared.state.upload_dir(record.submission_id);
            if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot remove fit-connect uploads");
                }
            }
            tracing::info!(submission = %record.submission_id, "fit-connect submission expired");
            expired += 1;
        }
        Ok(expired)
    }

    /// Follow open cases every `poll_interval` until `shutdown`; expire
    /// incomplete submissions ([`INCOMPLETE_TTL`]) every ten minutes.
    pub async fn run_status_follower(self, shutdown: CancellationToken) {
        let interval = self
            .shared
            .settings
            .poll_interval
            .max(Duration::from_millis(10));
        let mut next_expiry = tokio::time::Instant::now();
        loop {
            if let Err(e) = self.follow_once().await {
                tracing::error!(error = %e, "fit-connect status follower");
            }
            if tokio::time::Instant::now() >= next_expiry {
                next_expiry += Duration::from_secs(600);
                if let Err(e) = self.expire_incomplete(INCOMPLETE_TTL).await {
                    tracing::error!(error = %e, "fit-connect expiry of incomplete submissions");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}
