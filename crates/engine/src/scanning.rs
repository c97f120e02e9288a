//! Malware scanning in the pipeline (ADR 0017).
//!
//! With a [`Scanning`] in the hub's settings, nothing reaches a connector
//! unscanned:
//!
//! * **at intake** ([`Hub::submit`](crate::Hub)): payload and attachments
//!   are scanned while the sender waits. Malware → the message is stored
//!   `quarantined` and the sender gets [`IntakeError::Infected`] (HTTP 422,
//!   XTA fault 9060, FIT-Connect `reject-submission`). Clean → the record
//!   notes it (`scan.input_clean`), so routing does not scan again. No
//!   verdict (scanner down, slow, over its size limit) → the message is
//!   accepted as usual and routing scans it;
//! * **before routing**, unless the intake found the input clean: the
//!   same scan;
//! * **after routing, before anything is delivered**: every output
//!   document. Malware → `quarantined` instead of `routed`.
//!
//! Fail closed: a scan without a verdict leaves the message `received`
//! with the scanner's error as its reason, and the routing job runs again
//! after [`Scanning::retry`] — it is never routed or delivered unscanned.
//! Only an operator's [`Hub::release`] (with a reason, audited) moves a
//! quarantined message on; from then on no verdict holds it back.
//!
//! [`IntakeError::Infected`]: drehscheibe_model::IntakeError::Infected

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use drehscheibe_model::{
    AuditEvent, Envelope, MessageId, MessageRecord, MessageState, ScanError, ScanFinding,
    ScanRelease, ScanState, Scanner, Verdict,
};
use drehscheibe_store::{Effects, Job, StoreError};

use crate::hub::chrono_dur;
use crate::{Hub, RoutePlan};

/// Actor of the scanner's audit events.
const ACTOR: &str = "scanner";

/// The hub's malware scanner and how it is used.
#[derive(Clone)]
pub struct Scanning {
    pub scanner: Arc<dyn Scanner>,
    /// Pause before a message whose scan gave no verdict is scanned again.
    pub retry: Duration,
}

impl std::fmt::Debug for Scanning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanning")
            .field("scanner", &self.scanner.describe())
            .field("retry", &self.retry)
            .finish()
    }
}

impl Scanning {
    /// `scanner`, scanning again 30 s after a scan without a verdict.
    pub fn new(scanner: Arc<dyn Scanner>) -> Self {
        Self {
            scanner,
            retry: Duration::from_secs(30),
        }
    }

    async fn scan_bytes(&self, bytes: &Bytes) -> Result<Verdict, ScanError> {
        self.scanner
            .scan(Box::pin(std::io::Cursor::new(bytes.clone())))
            .await
    }

    fn finding(&self, part: String, signature: String) -> ScanFinding {
        ScanFinding {
            part,
            signature,
            scanner: self.scanner.describe(),
            at: Utc::now(),
        }
    }
}

/// Why a release was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("message {0} not found")]
    NotFound(MessageId),
    #[error("message is {0}; only quarantined messages are released")]
    NotQuarantined(MessageState),
    #[error("a release needs a reason")]
    NoReason,
    #[error(transparent)]
    Store(StoreError),
}

impl Hub {
    /// Scan a message's payload and attachments: the first finding, or
    /// `None` when everything is clean.
    pub(crate) async fn scan_input(
        &self,
        scanning: &Scanning,
        envelope: &Envelope,
        payload: &Bytes,
    ) -> Result<Option<ScanFinding>, ScanError> {
        if let Verdict::Infected { signature } = scanning.scan_bytes(payload).await? {
            return Ok(Some(scanning.finding("payload".into(), signature)));
        }
        for a in &envelope.attachments {
            let reader = self
                .blobs
                .open(&a.blob)
                .await
                .map_err(|e| ScanError::Source(format!("attachment {:?}: {e}", a.name)))?;
            if let Verdict::Infected { signature } = scanning.scanner.scan(reader).await? {
                return Ok(Some(
                    scanning.finding(format!("attachment {:?}", a.name), signature),
                ));
            }
        }
        Ok(None)
    }

    /// Scan the output documents of a routing decision.
    pub(crate) async fn scan_outputs(
        &self,
        scanning: &Scanning,
        plan: &RoutePlan,
    ) -> Result<Option<ScanFinding>, ScanError> {
        for o in &plan.outputs {
            if let Verdict::Infected { signature } = scanning.scan_bytes(&o.bytes).await? {
                return Ok(Some(scanning.finding(
                    format!("output {:?} for {}/{}", o.target, o.tenant, o.connector),
                    signature,
                )));
            }
        }
        Ok(None)
    }

    /// Put a `received` message into quarantine with `finding`, completing
    /// `job`.
    pub(crate) async fn quarantine(
        &self,
        id: MessageId,
        job: Option<Job>,
        finding: &ScanFinding,
    ) -> Result<MessageRecord, StoreError> {
        let reason = format!(
            "malware found in the {}: {} ({})",
            finding.part, finding.signature, finding.scanner
        );
        let mut changed = false;
        let stored = self
            .store
            .update(id, &mut |r: &mut MessageRecord| {
                let mut effects = Effects {
                    complete: job.into_iter().collect(),
                    ..Effects::default()
                };
                changed = r.state == MessageState::Received;
                if !changed {
                    // Another worker (or the intake) got there first.
                    return Ok(effects);
                }
                let from = r.state;
                r.state = MessageState::Quarantined;
                r.reason = Some(reason.clone());
                r.scan.get_or_insert_with(ScanState::default).finding = Some(finding.clone());
                effects.audit.push(
                    AuditEvent::new(
                        r.envelope.id,
                        ACTOR,
                        "quarantined",
                        Some(from),
                        MessageState::Quarantined,
                    )
                    .with_detail(reason.clone()),
                );
                Ok(effects)
            })
            .await?;
        if changed {
            tracing::warn!(message = %id, part = %finding.part, signature = %finding.signature, "malware found; message quarantined");
            self.metrics.quarantined(&stored.envelope.channel);
        }
        Ok(stored)
    }

    /// A scan gave no verdict: the message stays `received` with the
    /// error as its reason, and `job` runs again after the pause.
    pub(crate) async fn scan_later(
        &self,
        id: MessageId,
        job: Job,
        scanning: &Scanning,
        error: &ScanError,
    ) -> Result<(), StoreError> {
        let reason = format!(
            "waiting for the malware scanner ({}): {error}",
            scanning.scanner.describe()
        );
        let due = Utc::now() + chrono_dur(scanning.retry);
        self.store
            .update(id, &mut |r: &mut MessageRecord| {
                if r.state == MessageState::Received {
                    r.reason = Some(reason.clone());
                }
                Ok(Effects {
                    schedule: vec![(job, due)],
                    ..Effects::default()
                })
            })
            .await?;
        tracing::warn!(message = %id, error = %error, retry_in = ?scanning.retry, "no verdict from the malware scanner; the message waits");
        self.metrics.scan_unavailable();
        Ok(())
    }

    /// An operator releases a quarantined message with `reason`: it goes
    /// back to `received` and is routed and delivered without scanning
    /// (the finding stays on the record, the release is audited).
    ///
    /// # Errors
    ///
    /// The message is unknown or not quarantined, the reason is empty, or
    /// the store failed.
    pub async fn release(
        &self,
        id: MessageId,
        actor: &str,
        reason: &str,
    ) -> Result<MessageRecord, ReleaseError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(ReleaseError::NoReason);
        }
        let now = Utc::now();
        let mut refused = None;
        let result = self
            .store
            .update(id, &mut |r: &mut MessageRecord| {
                if r.state != MessageState::Quarantined {
                    refused = Some(r.state);
                    return Err(StoreError::Aborted(format!("message is {}", r.state)));
                }
                let signature = r
                    .scan
                    .as_ref()
                    .and_then(|s| s.finding.as_ref())
                    .map(|f| f.signature.clone())
                    .unwrap_or_default();
                r.scan.get_or_insert_with(ScanState::default).released = Some(ScanRelease {
                    by: actor.to_owned(),
                    reason: reason.to_owned(),
                    at: now,
                });
                r.state = MessageState::Received;
                r.reason = None;
                Ok(Effects {
                    audit: vec![AuditEvent::new(
                        r.envelope.id,
                        actor,
                        "released",
                        Some(MessageState::Quarantined),
                        MessageState::Received,
                    )
                    .with_detail(format!("released from quarantine ({signature}): {reason}"))],
                    schedule: vec![(
                        Job::Route {
                            message: r.envelope.id,
                        },
                        now,
                    )],
                    ..Effects::default()
                })
            })
            .await;
        match result {
            Ok(rec) => {
                tracing::warn!(message = %id, actor, reason, "quarantined message released by an operator");
                self.wake();
                Ok(rec)
            }
            Err(StoreError::NotFound(_)) => Err(ReleaseError::NotFound(id)),
            Err(_) if refused.is_some() => Err(ReleaseError::NotQuarantined(
                refused.unwrap_or(MessageState::Quarantined),
            )),
            Err(e) => Err(ReleaseError::Store(e)),
        }
    }
}
