//! The dry run ("Probelauf"): a message is recognised, routed and
//! rendered exactly as intake and the routing workers would — same rule
//! depot, configuration in force, time and memory budgets, routing
//! threads, schema validation, malware scan — and nothing is stored or
//! delivered.
//!
//! With a rule version given, the route's rule runs in exactly that
//! version instead of the one its pin resolves to, so two versions can be
//! compared on the same message ([`Hub::dry_run`] twice, then a diff of
//! the outputs).

use bytes::Bytes;
use chrono::Utc;
use drehscheibe_model::{Envelope, MessageId, RuleRef, SenderIdentity};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Hub, RouteFailure};

/// What to try.
#[derive(Debug, Clone)]
pub struct DryRunRequest {
    /// A configured channel id (the rules may recognise by channel).
    pub channel: String,
    pub content_type: String,
    pub payload: Bytes,
    /// Run the route's rule in exactly this version.
    pub version: Option<semver::Version>,
    /// Who asked (the envelope's sender principal, for rules that look).
    pub principal: String,
}

/// How the dry run ended.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DryRunOutcome {
    /// Routed: the outputs would be delivered.
    Routed,
    /// The message would be `rejected` (its own fault).
    Rejected,
    /// The message would go `dead` (configuration or rule at fault).
    Dead,
    /// A malware finding: it would be `quarantined`.
    Quarantined,
}

/// One rendered output document.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunOutput {
    pub target: String,
    pub tenant: String,
    pub connector: String,
    pub content_type: String,
    pub filename: String,
    pub size: usize,
    pub sha256: String,
    /// The document as text, when it is UTF-8 (else `None`, see `base64`).
    pub text: Option<String>,
    /// The document base64-encoded, when it is not UTF-8.
    pub base64: Option<String>,
    /// An xdomea container output: the rendered message is shown; the
    /// hub would pack it with the payload and attachments.
    pub container: bool,
}

/// One malware scan of the dry run.
#[derive(Debug, Clone, Serialize)]
pub struct DryRunScan {
    /// `payload`, `output <target>`.
    pub part: String,
    /// `clean`, `infected`, `error`, `off` (no scanner, or scanning is
    /// switched off for the channel or tenant).
    pub verdict: String,
    pub detail: Option<String>,
}

/// The result (see the module docs).
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    pub outcome: DryRunOutcome,
    /// Why it was not routed.
    pub reason: Option<String>,
    /// The rule version that acted (or recognised, when it failed later).
    pub rule: Option<RuleRef>,
    pub tenant: Option<String>,
    pub kommune_key: Option<String>,
    pub leistung: Option<String>,
    pub stelle: Option<String>,
    pub requested_by: Option<String>,
    /// What the audit trail's routing step would say.
    pub notes: Vec<String>,
    pub outputs: Vec<DryRunOutput>,
    pub scans: Vec<DryRunScan>,
    /// Wall time of recognition, routing and rendering.
    pub duration_ms: f64,
}

/// Why a dry run could not start.
#[derive(Debug, thiserror::Error)]
pub enum DryRunError {
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    #[error("the payload ({0} bytes) is larger than the hub accepts ({1} bytes)")]
    TooLarge(usize, u64),
    #[error("the payload is empty")]
    Empty,
    #[error("dry run: {0}")]
    Internal(String),
}

impl Hub {
    /// Try `req` (see the module docs). Nothing is stored or delivered.
    ///
    /// # Errors
    ///
    /// The request itself is unusable ([`DryRunError`]); everything the
    /// message or the rules are to blame for is in the result.
    pub async fn dry_run(&self, req: DryRunRequest) -> Result<DryRun, DryRunError> {
        if !self.settings.channels.contains(&req.channel) {
            return Err(DryRunError::UnknownChannel(req.channel));
        }
        if req.payload.is_empty() {
            return Err(DryRunError::Empty);
        }
        let limit = self.settings.max_payload_bytes;
        if req.payload.len() as u64 > limit {
            return Err(DryRunError::TooLarge(req.payload.len(), limit));
        }
        let envelope = Envelope {
            id: MessageId::new(),
            channel: req.channel.clone(),
            sender: SenderIdentity {
                adapter: "dry-run".into(),
                principal: req.principal.clone(),
                remote_addr: None,
            },
            received_at: Utc::now(),
            content_type: req.content_type.clone(),
            size: req.payload.len() as u64,
            sha256: hex::encode(Sha256::digest(&req.payload)),
            correlation_ids: Default::default(),
            idempotency_key: None,
            tenant: None,
            kommune_key: None,
            leistung: None,
            attachments: Vec::new(),
        };
        let started = std::time::Instant::now();
        let mut scans = Vec::new();
        let scanning = self.settings.scanning.as_ref();
        // The payload first, as intake would.
        match scanning {
            Some(s) if s.scans_channel(&req.channel) => {
                let verdict = s
                    .scan_document("payload", &req.payload, &req.content_type)
                    .await;
                let infected = matches!(verdict, Ok(Some(_)));
                scans.push(scan_entry("payload".into(), verdict));
                if infected {
                    return Ok(DryRun::failed(
                        DryRunOutcome::Quarantined,
                        "the payload carries malware".into(),
                        None,
                        scans,
                        started,
                    ));
                }
            }
            _ => scans.push(DryRunScan {
                part: "payload".into(),
                verdict: "off".into(),
                detail: None,
            }),
        }
        let decided = match self
            .reserve_memory(&req.content_type, req.payload.len())
            .await
        {
            Ok((memory, _)) => {
                let permit = crate::worker::acquire(&self.route_permits, 1)
                    .await
                    .map(|(p, _)| p);
                self.route_within_budget(
                    envelope,
                    req.payload.clone(),
                    (memory, permit),
                    req.version,
                )
                .await
            }
            Err(f) => Err(f),
        };
        let plan = match decided {
            Ok(plan) => plan,
            Err(RouteFailure::Rejected { reason, rule }) => {
                return Ok(DryRun::failed(
                    DryRunOutcome::Rejected,
                    reason,
                    rule,
                    scans,
                    started,
                ))
            }
            Err(RouteFailure::Dead { reason, rule }) => {
                return Ok(DryRun::failed(
                    DryRunOutcome::Dead,
                    reason,
                    rule,
                    scans,
                    started,
                ))
            }
        };
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let tenants_off = self.scan_tenants_off.load();
        let mut outcome = DryRunOutcome::Routed;
        let mut reason = None;
        for o in &plan.outputs {
            let part = format!("output {}", o.target);
            match scanning {
                Some(s) if !tenants_off.contains(&o.tenant) => {
                    let verdict = s.scan_document(&part, &o.bytes, &o.content_type).await;
                    if let Ok(Some(f)) = &verdict {
                        outcome = DryRunOutcome::Quarantined;
                        reason = Some(format!("{}: {}", f.part, f.signature));
                    }
                    scans.push(scan_entry(part, verdict));
                }
                _ => scans.push(DryRunScan {
                    part,
                    verdict: "off".into(),
                    detail: None,
                }),
            }
        }
        let outputs = plan
            .outputs
            .iter()
            .map(|o| {
                let text = std::str::from_utf8(&o.bytes).ok().map(str::to_owned);
                DryRunOutput {
                    target: o.target.clone(),
                    tenant: o.tenant.clone(),
                    connector: o.connector.clone(),
                    content_type: o.content_type.clone(),
                    filename: o.filename.clone(),
                    size: o.bytes.len(),
                    sha256: hex::encode(Sha256::digest(&o.bytes)),
                    base64: text.is_none().then(|| {
                        use base64::Engine;
                        base64::engine::general_purpose::STANDARD.encode(&o.bytes)
                    }),
                    text,
                    container: o.container.is_some(),
                }
            })
            .collect();
        Ok(DryRun {
            outcome,
            reason,
            rule: Some(plan.rule),
            tenant: Some(plan.tenant),
            kommune_key: Some(plan.kommune_key),
            leistung: Some(plan.leistung),
            stelle: plan.stelle,
            requested_by: plan.requested_by,
            notes: plan.notes,
            outputs,
            scans,
            duration_ms,
        })
    }
}

/// Two dry runs of one message and the diff of their outputs.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a: DryRun,
    pub b: DryRun,
    /// Per output target present in either: the unified diff from `a`
    /// to `b` (empty when equal).
    pub diffs: Vec<OutputDiff>,
}

/// See [`Comparison`].
#[derive(Debug, Clone, Serialize)]
pub struct OutputDiff {
    pub target: String,
    pub equal: bool,
    pub diff: String,
}

impl Hub {
    /// Dry-run `req` with the route's rule in version `a` and in `b`, and
    /// diff the outputs target by target.
    ///
    /// # Errors
    ///
    /// As [`Hub::dry_run`].
    pub async fn dry_run_compare(
        &self,
        req: DryRunRequest,
        a: semver::Version,
        b: semver::Version,
    ) -> Result<Comparison, DryRunError> {
        let ra = self
            .dry_run(DryRunRequest {
                version: Some(a),
                ..req.clone()
            })
            .await?;
        let rb = self
            .dry_run(DryRunRequest {
                version: Some(b),
                ..req
            })
            .await?;
        // Diffing up to megabytes of output takes CPU: off the async
        // threads.
        tokio::task::spawn_blocking(move || {
            let diffs = output_diffs(&ra, &rb);
            Comparison {
                a: ra,
                b: rb,
                diffs,
            }
        })
        .await
        .map_err(|e| DryRunError::Internal(e.to_string()))
    }
}

/// Per output target of either run: the unified diff from `ra` to `rb`.
fn output_diffs(ra: &DryRun, rb: &DryRun) -> Vec<OutputDiff> {
    let mut targets: Vec<&str> = ra
        .outputs
        .iter()
        .chain(rb.outputs.iter())
        .map(|o| o.target.as_str())
        .collect();
    targets.sort_unstable();
    targets.dedup();
    let text_of = |r: &DryRun, t: &str| -> String {
        r.outputs
            .iter()
            .find(|o| o.target == t)
            .and_then(|o| o.text.clone().or_else(|| o.base64.clone()))
            .unwrap_or_default()
    };
    let label = |r: &DryRun| {
        r.rule
            .as_ref()
            .map_or_else(|| "?".to_owned(), ToString::to_string)
    };
    targets
        .into_iter()
        .map(|t| {
            let (x, y) = (text_of(ra, t), text_of(rb, t));
            OutputDiff {
                target: t.to_owned(),
                equal: x == y,
                diff: crate::admin::unified_diff(
                    &x,
                    &y,
                    &format!("{} {t}", label(ra)),
                    &format!("{} {t}", label(rb)),
                ),
            }
        })
        .collect()
}

fn scan_entry(
    part: String,
    verdict: Result<Option<drehscheibe_model::ScanFinding>, drehscheibe_model::ScanError>,
) -> DryRunScan {
    match verdict {
        Ok(None) => DryRunScan {
            part,
            verdict: "clean".into(),
            detail: None,
        },
        Ok(Some(f)) => DryRunScan {
            part,
            verdict: "infected".into(),
            detail: Some(f.signature),
        },
        Err(e) => DryRunScan {
            part,
            verdict: "error".into(),
            detail: Some(e.to_string()),
        },
    }
}

impl DryRun {
    fn failed(
        outcome: DryRunOutcome,
        reason: String,
        rule: Option<RuleRef>,
        scans: Vec<DryRunScan>,
        started: std::time::Instant,
    ) -> Self {
        Self {
            outcome,
            reason: Some(reason),
            rule,
            tenant: None,
            kommune_key: None,
            leistung: None,
            stelle: None,
            requested_by: None,
            notes: Vec::new(),
            outputs: Vec::new(),
            scans,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        }
    }
}
