//! `PUT /v1/submissions/{id}`: decrypt, validate, verify, hand to the hub.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use bytes::Bytes;
use chrono::Utc;
use drehscheibe_model::{
    BlobError, IntakeError, MessageId, SenderIdentity, StagedAttachment, Submission,
};
use serde_json::Value;
use tokio_util::io::SyncIoBridge;
use uuid::Uuid;

use super::state::{SubmissionRecord, SubmissionState};
use super::{FitConnectIntake, FitProblem, IntakeDestination, MAX_METADATA_BYTES};
use crate::api::{Metadata, SubmissionCreated, SubmitSubmission};
use crate::jose::{self, JoseError, RsaPrivateKey};
use crate::set;

/// Why a submit failed.
enum Failure {
    /// The submission is bad: reject it for good (`reject-submission`).
    Reject(FitProblem),
    /// The hub found malware and keeps the message quarantined: reject
    /// the submission for good, and note that answer on the hub's message
    /// (an operator's release would contradict it and must be forced).
    Quarantined(FitProblem, MessageId),
    /// Try again later; nothing changed.
    Transient(FitProblem),
}

fn reject(status: u16, kind: &'static str, detail: impl Into<String>) -> Failure {
    Failure::Reject(FitProblem::new(status, kind, detail))
}

fn jose_failure(what: &str, e: JoseError) -> Failure {
    match e {
        JoseError::Decryption => reject(
            422,
            "decryption-failed",
            format!("{what}: cannot be decrypted with the destination's keys, or its authentication tag does not match"),
        ),
        JoseError::TooLarge { limit } => reject(
            413,
            "payload-too-large",
            format!("{what}: plaintext larger than {limit} bytes"),
        ),
        JoseError::Io(e) => Failure::Transient(FitProblem::unavailable(format!("{what}: {e}"))),
        other => reject(400, "invalid-jwe", format!("{what}: {other}")),
    }
}

/// Where a submit reads an upload from.
enum Upload {
    /// The hub's blob store (read on a blocking thread).
    Blob(SyncIoBridge<drehscheibe_model::BlobReader>),
    /// A file of the channel's directory (uploaded by an earlier version).
    File(PathBuf),
}

/// Decrypted, verified content ready for the hub.
struct Checked {
    metadata: Metadata,
    data: Vec<u8>,
    data_type: String,
    staged: Vec<StagedAttachment>,
    tags: Value,
}

pub(super) async fn submit(
    intake: &FitConnectIntake,
    client: &str,
    id: Uuid,
    body: SubmitSubmission,
    remote: Option<String>,
) -> Result<SubmissionCreated, FitProblem> {
    let shared = &intake.shared;
    let _busy = shared.busy(id)?;
    let mut record = super::http::load_for(intake, client, id).await?;
    let created = SubmissionCreated {
        destination_id: record.destination_id,
        submission_id: record.submission_id,
        case_id: record.case_id,
    };
    if record.state != SubmissionState::Announced {
        return Err(FitProblem::new(
            409,
            "submission-state-invalid",
            format!(
                "submission {id} was already submitted (it is {})",
                record.state.as_str()
            ),
        ));
    }
    let missing: Vec<String> = record
        .announced
        .iter()
        .filter(|a| !record.uploaded.contains_key(a))
        .map(Uuid::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(FitProblem::new(
            422,
            "missing-attachments",
            format!(
                "announced attachments not uploaded yet: {}",
                missing.join(", ")
            ),
        ));
    }
    let dest = shared
        .destination(record.destination_id)
        .ok_or_else(|| FitProblem::internal("destination vanished from the configuration"))?
        .clone();
    match check(intake, &record, &dest, &body).await {
        Ok(checked) => {
            // The event is signed before the hub gets the message: between
            // the hand-over and the commit below, a sender that resumes
            // sees no `submit-submission` yet, so that window is kept to
            // the commit alone (an RSA signature is not instant).
            let token = set::create_set(
                shared.issuer(),
                record.submission_id,
                record.case_id,
                set::SUBMIT_SUBMISSION,
                checked.tags.clone(),
                &shared.settings.signing_key,
            )
            .map_err(|e| FitProblem::internal(format!("signing the event: {e}")))?;
            match hand_over(intake, &record, &dest, remote, checked).await {
                Ok((message_id, tags)) => {
                    record.state = SubmissionState::Submitted;
                    record.message_id = Some(message_id.clone());
                    record.auth_tags = Some(tags);
                    record.updated_at = Utc::now();
                    let committed = shared
                        .state
                        .commit(
                            SubmissionState::Announced,
                            &record,
                            &token,
                            Some(&message_id),
                        )
                        .await
                        .map_err(super::http::store_problem)?;
                    if !committed {
                        // The same submit through another instance was
                        // first (the hub's idempotency key made it one
                        // message): it wrote the event.
                        return Err(already_submitted(id));
                    }
                    remove_uploads(intake, id).await;
                    tracing::info!(submission = %id, case = %record.case_id, message = %message_id, "fit-connect submission handed to the hub");
                    Ok(created)
                }
                Err(Failure::Transient(p)) => Err(p),
                Err(Failure::Reject(p)) => Err(reject_for_good(intake, record, p, None).await),
                Err(Failure::Quarantined(p, id)) => {
                    Err(reject_for_good(intake, record, p, Some(id)).await)
                }
            }
        }
        Err(Failure::Transient(p)) => Err(p),
        Err(Failure::Reject(p)) => Err(reject_for_good(intake, record, p, None).await),
        Err(Failure::Quarantined(p, id)) => Err(reject_for_good(intake, record, p, Some(id)).await),
    }
}

/// The answer to a submit of a submission another request moved on.
fn already_submitted(id: Uuid) -> FitProblem {
    FitProblem::new(
        409,
        "submission-state-invalid",
        format!("submission {id} was already submitted"),
    )
}

/// Record the rejection with a `reject-submission` event; returns the
/// problem to answer (or a 503 when even that fails). For a message the
/// hub kept (`quarantined`), the answer is noted on it once the event is
/// recorded.
async fn reject_for_good(
    intake: &FitConnectIntake,
    mut record: SubmissionRecord,
    problem: FitProblem,
    quarantined: Option<MessageId>,
) -> FitProblem {
    let shared = &intake.shared;
    tracing::warn!(submission = %record.submission_id, problem = %problem, "fit-connect submission rejected");
    record.state = SubmissionState::Rejected;
    record.problem = Some(problem.detail.clone());
    record.updated_at = Utc::now();
    let payload = set::rejection(problem.kind, &problem.title(), &problem.detail);
    let token = match set::create_set(
        &record.destination_id.to_string(),
        record.submission_id,
        record.case_id,
        set::REJECT_SUBMISSION,
        payload,
        &shared.settings.signing_key,
    ) {
        Ok(t) => t,
        Err(e) => return FitProblem::internal(format!("signing the event: {e}")),
    };
    match shared
        .state
        .commit(SubmissionState::Announced, &record, &token, None)
        .await
    {
        Ok(true) => {}
        Ok(false) => return already_submitted(record.submission_id),
        Err(e) => return super::http::store_problem(e),
    }
    remove_uploads(intake, record.submission_id).await;
    if let Some(id) = quarantined {
        let answer = format!(
            "FIT-Connect reject-submission (case {}, submission {})",
            record.case_id, record.submission_id
        );
        let actor = format!("fit-connect:{}", shared.settings.channel);
        if let Err(e) = shared.intake.note_sender_answer(id, &actor, &answer).await {
            tracing::warn!(submission = %record.submission_id, error = %e, "could not record the rejection on the quarantined message");
        }
    }
    problem
}

async fn remove_uploads(intake: &FitConnectIntake, id: Uuid) {
    let dir = intake.shared.state.upload_dir(id);
    if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove fit-connect uploads");
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Failure::Transient(FitProblem::internal(format!("worker failed: {e}"))))?
}

async fn check(
    intake: &FitConnectIntake,
    record: &SubmissionRecord,
    dest: &IntakeDestination,
    body: &SubmitSubmission,
) -> Result<Checked, Failure> {
    let shared = &intake.shared;
    let keys: Vec<RsaPrivateKey> = dest.keys.clone();

    // 1. metadata: decrypt, parse, validate against its $schema
    let meta_jwe = body.encrypted_metadata.clone();
    let meta_keys = keys.clone();
    let meta = blocking(move || {
        let refs: Vec<&RsaPrivateKey> = meta_keys.iter().collect();
        jose::decrypt_compact_limited(meta_jwe.as_bytes(), &refs, MAX_METADATA_BYTES)
            .map_err(|e| jose_failure("encryptedMetadata", e))
    })
    .await?;
    let meta_value: Value = serde_json::from_slice(&meta.plaintext).map_err(|e| {
        reject(
            422,
            "schema-violation",
            format!("metadata is not JSON: {e}"),
        )
    })?;
    shared
        .validator
        .validate(&meta_value)
        .map_err(|e| reject(422, "schema-violation", e.to_string()))?;
    let metadata: Metadata = serde_json::from_value(meta_value)
        .map_err(|e| reject(422, "schema-violation", format!("metadata: {e}")))?;

    // 2. attachments in the metadata = announced attachments
    let described: BTreeSet<String> = metadata
        .content_structure
        .attachments
        .iter()
        .map(|a| a.attachment_id.to_ascii_lowercase())
        .collect();
    if described.len() != metadata.content_structure.attachments.len() {
        return Err(reject(
            422,
            "attachment-mismatch",
            "metadata describes an attachment twice",
        ));
    }
    let announced: BTreeSet<String> = record.announced.iter().map(Uuid::to_string).collect();
    if described != announced {
        let missing: Vec<&String> = announced.difference(&described).collect();
        let extra: Vec<&String> = described.difference(&announced).collect();
        return Err(reject(
            422,
            "attachment-mismatch",
            format!("metadata and announced attachments differ: not described {missing:?}, not announced {extra:?}"),
        ));
    }

    // 3. Fachdaten: decrypt, hash
    let Some(data_meta) = metadata.content_structure.data.clone() else {
        return Err(reject(
            422,
            "missing-data",
            "metadata has no contentStructure.data: the hub routes on the Fachdaten",
        ));
    };
    let data_type = data_meta.submission_schema.mime_type.clone();
    let (data, data_tag) = match body.encrypted_data.as_deref() {
        None => {
            return Err(reject(
                422,
                "missing-data",
                "encryptedData is missing but the metadata describes Fachdaten",
            ))
        }
        Some(jwe) => {
            let jwe = jwe.to_owned();
            let data_keys = keys.clone();
            let limit = shared.intake.max_payload_bytes();
            let d = blocking(move || {
                let refs: Vec<&RsaPrivateKey> = data_keys.iter().collect();
                jose::decrypt_compact_limited(jwe.as_bytes(), &refs, limit)
                    .map_err(|e| jose_failure("encryptedData", e))
            })
            .await?;
            (d.plaintext, d.auth_tag)
        }
    };
    let digest = hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&data));
    if !data_meta.hash.content.eq_ignore_ascii_case(&digest) {
        return Err(reject(
            422,
            "hash-mismatch",
            "the SHA-512 of the decrypted Fachdaten differs from contentStructure.data.hash",
        ));
    }

    // 4. attachments: stream-decrypt each upload out of the blob store to
    //    a plaintext file on the local disk, hash, stage into the blob
    //    store (compressed ones are inflated only after their tag matched;
    //    see `jose`)
    let mut staged = Vec::new();
    let mut attachment_tags = Vec::new();
    let dir = shared.state.upload_dir(record.submission_id);
    let blobs = shared.intake.blobs();
    for a in &metadata.content_structure.attachments {
        let id = a.attachment_id.to_ascii_lowercase();
        let plain: PathBuf = dir.join(format!("{id}.plain"));
        // The upload as stored by whichever instance took it: in the blob
        // store, or (uploaded before that) in this channel's directory.
        let stored = Uuid::parse_str(&id)
            .ok()
            .and_then(|aid| record.upload_blobs.get(&aid).cloned());
        let gone = || {
            Failure::Transient(FitProblem::new(
                422,
                "missing-attachments",
                format!("the upload of attachment {id} is gone; upload it again"),
            ))
        };
        let source = match stored {
            Some(blob) => match blobs.open(&blob).await {
                Ok(reader) => Upload::Blob(SyncIoBridge::new(reader)),
                Err(BlobError::NotFound(_)) => return Err(gone()),
                Err(e) => {
                    return Err(Failure::Transient(FitProblem::unavailable(format!(
                        "attachment {id}: {e}"
                    ))))
                }
            },
            None => Upload::File(dir.join(format!("{id}.jwe"))),
        };
        if let Upload::File(path) = &source {
            if !tokio::fs::try_exists(path).await.unwrap_or(false) {
                return Err(gone());
            }
        }
        let att_keys = keys.clone();
        let limit = shared
            .settings
            .max_attachment_bytes
            .min(shared.intake.max_attachment_bytes());
        let (plain_path, spool_dir) = (plain.clone(), dir.clone());
        let what = format!("attachment {id}");
        let out = blocking(move || {
            let io = |e: std::io::Error| {
                Failure::Transient(FitProblem::unavailable(format!("{what}: {e}")))
            };
            std::fs::create_dir_all(&spool_dir).map_err(io)?;
            let output = std::fs::File::create(&plain_path).map_err(io)?;
            let mut output = std::io::BufWriter::with_capacity(64 * 1024, output);
            let input: Box<dyn std::io::Read> = match source {
                Upload::Blob(reader) => Box::new(reader),
                Upload::File(path) => Box::new(std::fs::File::open(path).map_err(io)?),
            };
            let refs: Vec<&RsaPrivateKey> = att_keys.iter().collect();
            // Compressed content waits for its tag in the channel's
            // directory (an anonymous file, gone when closed), not in
            // memory.
            let r = jose::decrypt_compact_stream_in(input, &refs, &mut output, limit, &spool_dir)
                .map_err(|e| jose_failure(&what, e));
            let file = output.into_inner().map_err(|e| io(e.into_error()))?;
            file.sync_all().map_err(io)?;
            r
        })
        .await;
        let out = match out {
            Ok(o) => o,
            Err(f) => {
                let _ = tokio::fs::remove_file(&plain).await;
                return Err(f);
            }
        };
        if !a.hash.content.eq_ignore_ascii_case(&out.sha512_hex) {
            let _ = tokio::fs::remove_file(&plain).await;
            return Err(reject(
                422,
                "hash-mismatch",
                format!("the SHA-512 of decrypted attachment {id} differs from its metadata hash"),
            ));
        }
        let file = tokio::fs::File::open(&plain).await.map_err(|e| {
            Failure::Transient(FitProblem::unavailable(format!("attachment {id}: {e}")))
        })?;
        let blob = shared
            .intake
            .stage_attachment(Box::pin(file))
            .await
            .map_err(|e| intake_failure(&format!("attachment {id}"), e))?;
        let _ = tokio::fs::remove_file(&plain).await;
        staged.push(StagedAttachment {
            name: id.clone(),
            filename: a.filename.clone(),
            content_type: a.mime_type.clone(),
            blob,
        });
        attachment_tags.push((id, out.auth_tag));
    }
    let tags = set::authentication_tags(&meta.auth_tag, Some(&data_tag), &attachment_tags);
    Ok(Checked {
        metadata,
        data,
        data_type,
        staged,
        tags,
    })
}

fn intake_failure(what: &str, e: IntakeError) -> Failure {
    match e {
        IntakeError::ShuttingDown | IntakeError::Unavailable(_) => {
            Failure::Transient(FitProblem::unavailable(format!("{what}: {e}")))
        }
        IntakeError::TooLarge { .. } => reject(413, "payload-too-large", format!("{what}: {e}")),
        IntakeError::UnsupportedMediaType(_) => {
            reject(422, "unsupported-media-type", format!("{what}: {e}"))
        }
        IntakeError::IdempotencyConflict(_) => {
            reject(409, "submission-state-invalid", format!("{what}: {e}"))
        }
        IntakeError::UnknownChannel(_) | IntakeError::Forbidden(_) => Failure::Transient(
            FitProblem::internal(format!("{what}: hub configuration: {e}")),
        ),
        IntakeError::Malformed(_) | IntakeError::Hostile(_) => {
            reject(422, "invalid-data", format!("{what}: {e}"))
        }
        IntakeError::Infected { id, .. } => Failure::Quarantined(
            FitProblem::new(422, "malware-detected", format!("{what}: {e}")),
            id,
        ),
    }
}

/// Hand the checked submission to the hub; returns the message id and the
/// authentication tags.
async fn hand_over(
    intake: &FitConnectIntake,
    record: &SubmissionRecord,
    dest: &IntakeDestination,
    remote: Option<String>,
    checked: Checked,
) -> Result<(String, Value), Failure> {
    let shared = &intake.shared;
    let metadata = &checked.metadata;
    let mut correlation = BTreeMap::new();
    correlation.insert(
        "fitconnect.submission_id".to_owned(),
        record.submission_id.to_string(),
    );
    correlation.insert("fitconnect.case_id".to_owned(), record.case_id.to_string());
    correlation.insert(
        "fitconnect.destination_id".to_owned(),
        record.destination_id.to_string(),
    );
    let leika = metadata
        .public_service_type
        .as_ref()
        .map(|p| p.identifier.clone())
        .or_else(|| record.service_type.as_ref().map(|s| s.identifier.clone()));
    if let Some(l) = leika {
        correlation.insert("fitconnect.leika".to_owned(), l);
    }
    if let Some(t) = &dest.tenant {
        correlation.insert("fitconnect.tenant".to_owned(), t.clone());
    }
    let submission = Submission {
        channel: shared.settings.channel.clone(),
        sender: SenderIdentity {
            adapter: "fit-connect".into(),
            principal: record.client_id.clone(),
            remote_addr: remote,
        },
        content_type: checked.data_type,
        payload: Bytes::from(checked.data),
        attachments: checked.staged,
        idempotency_key: Some(record.submission_id.to_string()),
        correlation_ids: correlation,
    };
    let accepted = shared
        .intake
        .submit(submission)
        .await
        .map_err(|e| intake_failure("Fachdaten", e))?;
    Ok((accepted.id.to_string(), checked.tags))
}
