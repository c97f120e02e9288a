//! HTTP handlers of the intake.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, Request, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::Utc;
use futures::StreamExt;
use serde_json::{json, Value};
use std::sync::Arc;

use drehscheibe_model::BlobError;
use tokio_util::io::StreamReader;
use uuid::Uuid;

use super::state::{SubmissionRecord, SubmissionState};
use super::{FitConnectIntake, FitProblem, MAX_ATTACHMENTS};
use crate::api::{
    CreateSubmission, DestinationService, DestinationView, EventLog, SubmissionCreated,
    SubmissionStatusView, SubmitSubmission, TokenResponse,
};

pub(super) fn router(intake: FitConnectIntake) -> Router {
    let api = Router::new()
        .route("/token", post(token))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/destinations/{id}", get(destination))
        .route("/v1/destinations/{id}/keys/{kid}", get(destination_key))
        .route("/v1/submissions", post(create_submission))
        .route(
            "/v1/submissions/{id}",
            put(submit_submission).get(submission_status),
        )
        .route(
            "/v1/submissions/{id}/attachments/{aid}",
            put(upload_attachment),
        )
        .route("/v1/cases/{id}/events", get(case_events))
        .with_state(intake.clone());
    let base = intake
        .shared
        .settings
        .base_path
        .as_deref()
        .map(|b| b.trim_end_matches('/'))
        .unwrap_or("");
    if base.is_empty() {
        api
    } else {
        Router::new().nest(base, api)
    }
}

fn parse_id(text: &str, what: &'static str) -> Result<Uuid, FitProblem> {
    Uuid::parse_str(text)
        .map_err(|_| FitProblem::new(404, what, format!("{text:?} is not a valid id")))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

async fn token(
    AxState(intake): AxState<FitConnectIntake>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        );
    }
    // client_secret_post, or HTTP Basic
    let mut credentials = match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
        _ => None,
    };
    if credentials.is_none() {
        credentials = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b.trim()).ok()
            })
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())));
    }
    let Some((client_id, secret)) = credentials else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client credentials required",
        );
    };
    match intake.shared.issue_token(&client_id, &secret) {
        Some((access_token, scope)) => Json(TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: intake.shared.settings.token_ttl.as_secs(),
            scope,
        })
        .into_response(),
        None => {
            tracing::warn!(client_id = %client_id, "fit-connect token refused");
            oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            )
        }
    }
}

async fn jwks(AxState(intake): AxState<FitConnectIntake>) -> Response {
    Json(intake.jwks()).into_response()
}

async fn destination(
    AxState(intake): AxState<FitConnectIntake>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<DestinationView>, FitProblem> {
    let client = intake.shared.authenticate(&headers)?;
    let id = parse_id(&id, "destination-not-found")?;
    let dest = intake.shared.authorize(&client, id)?;
    let encryption_kid = dest
        .keys
        .first()
        .map(|k| k.kid().to_owned())
        .ok_or_else(|| FitProblem::internal("destination has no key"))?;
    let metadata_versions = if dest.metadata_versions.is_empty() {
        crate::schema::supported_versions()
    } else {
        dest.metadata_versions.clone()
    };
    Ok(Json(DestinationView {
        destination_id: dest.id,
        status: "active".into(),
        services: dest
            .services
            .iter()
            .map(|s| DestinationService {
                identifier: s.identifier.clone(),
                name: s.name.clone(),
                submission_schemas: s
                    .submission_schemas
                    .iter()
                    .map(|(uri, mime)| json!({ "schemaUri": uri, "mimeType": mime }))
                    .collect(),
                regions: Vec::new(),
            })
            .collect(),
        encryption_kid,
        metadata_versions,
        reply_channels: json!({}),
    }))
}

async fn destination_key(
    AxState(intake): AxState<FitConnectIntake>,
    Path((id, kid)): Path<(String, String)>,
) -> Result<Response, FitProblem> {
    let id = parse_id(&id, "destination-not-found")?;
    let dest = intake.shared.destination(id).ok_or_else(|| {
        FitProblem::new(
            404,
            "destination-not-found",
            format!("destination {id} does not exist"),
        )
    })?;
    if let Some(key) = dest
        .keys
        .iter()
        .find(|k| k.kid() == kid || k.thumbprint() == kid)
    {
        return Ok(Json(key.encryption_jwk()).into_response());
    }
    // The signature key of the destination's accept/reject SETs.
    let signing = &intake.shared.settings.signing_key;
    if signing.kid() == kid || signing.thumbprint() == kid {
        return Ok(Json(signing.verification_jwk()).into_response());
    }
    Err(FitProblem::new(
        404,
        "key-not-found",
        format!("destination {id} has no key {kid:?}"),
    ))
}

async fn create_submission(
    AxState(intake): AxState<FitConnectIntake>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<SubmissionCreated>), FitProblem> {
    let client = intake.shared.authenticate(&headers)?;
    let request: CreateSubmission = serde_json::from_slice(&body)
        .map_err(|e| FitProblem::bad_request(format!("invalid submission request: {e}")))?;
    let dest = intake.shared.authorize(&client, request.destination_id)?;
    let service = request.service_type.or(request.public_service);
    if !dest.services.is_empty() {
        let Some(s) = &service else {
            return Err(FitProblem::new(
                422,
                "service-type-missing",
                "serviceType is required",
            ));
        };
        if !dest.services.iter().any(|o| o.identifier == s.identifier) {
            return Err(FitProblem::new(
                422,
                "service-type-not-offered",
                format!("destination {} does not offer {:?}", dest.id, s.identifier),
            ));
        }
    }
    if request.announced_attachments.len() > MAX_ATTACHMENTS {
        return Err(FitProblem::new(
            422,
            "too-many-attachments",
            format!("at most {MAX_ATTACHMENTS} attachments per submission"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = request
        .announced_attachments
        .iter()
        .find(|a| !seen.insert(**a))
    {
        return Err(FitProblem::new(
            422,
            "duplicate-attachment-id",
            format!("attachment id {dup} is announced twice"),
        ));
    }
    let now = Utc::now();
    let record = SubmissionRecord {
        submission_id: Uuid::new_v4(),
        case_id: Uuid::new_v4(),
        destination_id: dest.id,
        client_id: client,
        service_type: service,
        announced: request.announced_attachments,
        uploaded: BTreeMap::new(),
        upload_blobs: BTreeMap::new(),
        state: SubmissionState::Announced,
        message_id: None,
        auth_tags: None,
        problem: None,
        reason: None,
        created_at: now,
        updated_at: now,
    };
    let state = &intake.shared.state;
    state.create(&record).await.map_err(store_problem)?;
    tracing::info!(submission = %record.submission_id, case = %record.case_id, destination = %record.destination_id, "fit-connect submission announced");
    Ok((
        StatusCode::CREATED,
        Json(SubmissionCreated {
            destination_id: record.destination_id,
            submission_id: record.submission_id,
            case_id: record.case_id,
        }),
    ))
}

pub(super) fn store_problem(e: super::StateError) -> FitProblem {
    tracing::error!(error = %e, "fit-connect state store failed");
    FitProblem::unavailable(e.to_string())
}

/// Load a submission the client may see.
pub(super) async fn load_for(
    intake: &FitConnectIntake,
    client: &str,
    id: Uuid,
) -> Result<SubmissionRecord, FitProblem> {
    let record = intake
        .shared
        .state
        .get(id)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| {
            FitProblem::new(
                404,
                "submission-not-found",
                format!("submission {id} does not exist"),
            )
        })?;
    intake.shared.authorize(client, record.destination_id)?;
    Ok(record)
}

async fn upload_attachment(
    AxState(intake): AxState<FitConnectIntake>,
    Path((id, aid)): Path<(String, String)>,
    headers: HeaderMap,
    request: Request,
) -> Result<StatusCode, FitProblem> {
    let client = intake.shared.authenticate(&headers)?;
    let id = parse_id(&id, "submission-not-found")?;
    let aid = parse_id(&aid, "attachment-not-found")?;
    let _busy = intake.shared.busy(id)?;
    let record = load_for(&intake, &client, id).await?;
    if record.state != SubmissionState::Announced {
        return Err(FitProblem::new(
            409,
            "submission-state-invalid",
            format!(
                "submission {id} is {}; attachments can no longer be uploaded",
                record.state.as_str()
            ),
        ));
    }
    if !record.announced.contains(&aid) {
        return Err(FitProblem::new(
            404,
            "attachment-not-found",
            format!("attachment {aid} was not announced for submission {id}"),
        ));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .trim()
        .to_ascii_lowercase()
        .starts_with("application/jose")
    {
        return Err(FitProblem::new(
            415,
            "unsupported-media-type",
            format!("attachments are JWE compact serializations (application/jose), not {content_type:?}"),
        ));
    }
    let limit = intake.shared.max_encrypted_attachment();
    let too_large = || {
        FitProblem::new(
            413,
            "attachment-too-large",
            format!("an encrypted attachment may have at most {limit} bytes"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit {
            return Err(too_large());
        }
    }
    // Into the hub's blob store, so whichever instance takes the submit
    // finds it. Staged: until the record names it (and holds a reference
    // in the same commit), a refusal or a crash leaves nothing behind.
    let blobs = intake.shared.intake.blobs();
    let body_error: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let seen = body_error.clone();
    let body = request.into_body().into_data_stream().map(move |chunk| {
        chunk.map_err(|e| {
            let message = format!("reading body: {e}");
            if let Ok(mut slot) = seen.lock() {
                *slot = Some(message.clone());
            }
            std::io::Error::other(message)
        })
    });
    let staged = blobs.stage(Box::pin(StreamReader::new(body)), limit).await;
    let client_fault = body_error.lock().ok().and_then(|mut slot| slot.take());
    let blob = match staged {
        Ok(blob) => blob,
        Err(BlobError::TooLarge { .. }) => return Err(too_large()),
        Err(e) => {
            return Err(match client_fault {
                Some(message) => FitProblem::bad_request(message),
                None => FitProblem::unavailable(format!("storing attachment: {e}")),
            })
        }
    };
    let size = blob.size;
    let discard = |why: &'static str| {
        let (blobs, blob) = (blobs.clone(), blob.clone());
        async move {
            if let Err(e) = blobs.discard_staged(&blob).await {
                tracing::warn!(submission = %id, attachment = %aid, error = %e, "cannot discard a refused upload ({why}); the next sweep removes it");
            }
        }
    };
    // Early sanity check of the protected header (algorithms), so an
    // unusable upload is refused now rather than at submit.
    let head = match read_head(blobs.as_ref(), &blob).await {
        Ok(head) => head,
        Err(e) => {
            discard("unreadable").await;
            return Err(FitProblem::unavailable(format!(
                "reading attachment back: {e}"
            )));
        }
    };
    if let Err(e) = crate::jose::peek_jwe_header(&head).and_then(|h| {
        match (
            h.get("alg").and_then(Value::as_str),
            h.get("enc").and_then(Value::as_str),
        ) {
            (Some(crate::jose::ALG_RSA_OAEP_256), Some(crate::jose::ENC_A256GCM)) => Ok(()),
            (alg, enc) => Err(crate::jose::JoseError::Unsupported(format!(
                "alg {alg:?}, enc {enc:?}; expected RSA-OAEP-256 and A256GCM"
            ))),
        }
    }) {
        discard("invalid").await;
        return Err(FitProblem::new(
            400,
            "invalid-jwe",
            format!("attachment {aid}: {e}"),
        ));
    }
    // Name it in the record (re-checked on what is stored now: another
    // instance may have taken the submit meanwhile).
    let now = Utc::now();
    let named = intake
        .shared
        .state
        .modify(id, |r| {
            if r.state != SubmissionState::Announced {
                return Err(r.state);
            }
            r.uploaded.insert(aid, size);
            r.upload_blobs.insert(aid, blob.clone());
            r.updated_at = now;
            Ok(())
        })
        .await;
    let outcome = match named {
        Ok(Some(Ok(_))) => Ok(()),
        Ok(Some(Err(state))) => Err(FitProblem::new(
            409,
            "submission-state-invalid",
            format!(
                "submission {id} is {}; attachments can no longer be uploaded",
                state.as_str()
            ),
        )),
        Ok(None) => Err(FitProblem::new(
            404,
            "submission-not-found",
            format!("submission {id} does not exist"),
        )),
        Err(e) => Err(store_problem(e)),
    };
    if let Err(p) = outcome {
        discard("not recorded").await;
        return Err(p);
    }
    // The record holds it now: this staging ends as kept.
    if let Err(e) = blobs.keep_staged(&blob).await {
        tracing::warn!(submission = %id, attachment = %aid, error = %e, "cannot end the staging of an upload (the record's reference keeps it)");
    }
    tracing::info!(submission = %id, attachment = %aid, bytes = size, "fit-connect attachment uploaded");
    Ok(StatusCode::NO_CONTENT)
}

/// The first 20 KiB of a stored upload (enough for any JWE header).
async fn read_head(
    blobs: &dyn drehscheibe_model::BlobStore,
    blob: &drehscheibe_model::BlobRef,
) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let reader = blobs.open(blob).await.map_err(std::io::Error::other)?;
    let mut head = Vec::new();
    reader.take(20 * 1024).read_to_end(&mut head).await?;
    Ok(head)
}

async fn submit_submission(
    AxState(intake): AxState<FitConnectIntake>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: Request,
) -> Result<Json<SubmissionCreated>, FitProblem> {
    let client = intake.shared.authenticate(&headers)?;
    let id = parse_id(&id, "submission-not-found")?;
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    // metadata ≤ 1 MiB, data ≤ the hub's payload limit; base64url adds a third
    let limit =
        (intake.shared.intake.max_payload_bytes() + super::MAX_METADATA_BYTES) / 3 * 4 + 64 * 1024;
    let body = axum::body::to_bytes(
        request.into_body(),
        usize::try_from(limit).unwrap_or(usize::MAX),
    )
    .await
    .map_err(|e| FitProblem::new(413, "payload-too-large", format!("submit body: {e}")))?;
    let body: SubmitSubmission = serde_json::from_slice(&body)
        .map_err(|e| FitProblem::bad_request(format!("invalid submit request: {e}")))?;
    // Once the hub holds the message, the submission's record and its
    // `submit-submission` event must be written too. A client that hangs
    // up drops this handler's future; the work runs as a task of its own
    // so a disconnect cannot stop it half way (the submission would stay
    // `announced` while the hub routes its message, and a resuming client
    // would submit again).
    let created =
        tokio::spawn(
            async move { super::submit::submit(&intake, &client, id, body, remote).await },
        )
        .await
        .map_err(|e| FitProblem::internal(format!("the submit task failed: {e}")))??;
    Ok(Json(created))
}

async fn submission_status(
    AxState(intake): AxState<FitConnectIntake>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<SubmissionStatusView>, FitProblem> {
    let client = intake.shared.authenticate(&headers)?;
    let id = parse_id(&id, "submission-not-found")?;
    let r = load_for(&intake, &client, id).await?;
    Ok(Json(SubmissionStatusView {
        destination_id: r.destination_id,
        submission_id: r.submission_id,
        case_id: r.case_id,
        status: r.state.as_str().into(),
        service_type: r.service_type,
        announced_attachments: r.announced,
        uploaded_attachments: r.uploaded.keys().copied().collect(),
        problem: r.problem,
    }))
}

#[derive(serde::Deserialize)]
struct Page {
    offset: Option<usize>,
    limit: Option<usize>,
}

async fn case_events(
    AxState(intake): AxState<FitConnectIntake>,
    Path(id): Path<String>,
    Query(page): Query<Page>,
    headers: HeaderMap,
) -> Result<Json<EventLog>, FitProblem> {
    let client = intake.shared.authenticate(&headers)?;
    let case = parse_id(&id, "case-not-found")?;
    let record = intake
        .shared
        .state
        .by_case(case)
        .await
        .map_err(store_problem)?
        .ok_or_else(|| {
            FitProblem::new(404, "case-not-found", format!("case {case} does not exist"))
        })?;
    intake.shared.authorize(&client, record.destination_id)?;
    let offset = page.offset.unwrap_or(0);
    let limit = page.limit.unwrap_or(100).clamp(1, 500);
    let (events, total) = intake
        .shared
        .state
        .events(case, offset, limit)
        .await
        .map_err(store_problem)?;
    Ok(Json(EventLog {
        count: events.len() as u64,
        event_log: events,
        offset: offset as u64,
        total_count: total as u64,
    }))
}
