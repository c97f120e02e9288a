//! The operations API: message state, listing, payload, replay, health
//! and metrics.
//!
//! A message whose payload retention deleted (ADR 0015) keeps its record
//! and audit trail for a while: `GET …/payload` and `POST …/replay` then
//! answer `410 Gone` with the problem type `payload-purged`, naming when.
//!
//! Handlers answer errors with a ready `Response`; boxing it would only add noise.
#![allow(clippy::result_large_err)]
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use drehscheibe_engine::{Hub, ReleaseError, ReplayError};
use drehscheibe_http::problem::Problem;
use drehscheibe_model::auth::{bearer_token, Principal, TokenTable};
use drehscheibe_model::{AuditEvent, MessageId, MessageRecord, MessageState};
use drehscheibe_store::{MessageFilter, StoreError};
use serde::{Deserialize, Serialize};

#[derive(Clone)]
pub(crate) struct Ops {
    hub: Arc<Hub>,
    tokens: Arc<TokenTable>,
}

/// Operations API routes (see the crate docs).
pub fn ops_router(hub: Arc<Hub>, tokens: Arc<TokenTable>) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |r, (path, _, m)| r.route(path, m))
        .with_state(Ops { hub, tokens })
}

/// The operations API's routes: path, methods, handler (the OpenAPI
/// document lists exactly these; a test holds both together).
#[allow(clippy::type_complexity)]
pub(crate) fn routes() -> Vec<(&'static str, &'static [&'static str], MethodRouter<Ops>)> {
    vec![
        ("/api/v1/messages", &["get"], get(list)),
        ("/api/v1/messages/{id}", &["get"], get(show)),
        ("/api/v1/messages/{id}/payload", &["get"], get(payload)),
        ("/api/v1/messages/{id}/replay", &["post"], post(replay)),
        ("/api/v1/messages/{id}/release", &["post"], post(release)),
        ("/healthz", &["get"], get(healthz)),
        ("/readyz", &["get"], get(readyz)),
        ("/metrics", &["get"], get(metrics)),
    ]
}

fn problem(status: u16, kind: &str, detail: impl Into<String>) -> Response {
    Problem::new(status, kind, detail).into_response()
}

fn authenticate(ops: &Ops, headers: &HeaderMap) -> Result<Principal, Response> {
    authenticate_with(&ops.tokens, headers)
}

/// The caller named by the request's bearer token, or the `401` answer.
pub(crate) fn authenticate_with(
    tokens: &TokenTable,
    headers: &HeaderMap,
) -> Result<Principal, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    match token.and_then(|t| tokens.authenticate(t)) {
        Some(p) => Ok(p.clone()),
        None => {
            let mut r = problem(401, "unauthorized", "a valid bearer token is required");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            Err(r)
        }
    }
}

fn not_found(id: &str) -> Response {
    problem(
        404,
        "message-not-found",
        format!("no message {id} visible to you"),
    )
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "operations API: storage error");
    problem(503, "storage-unavailable", e.to_string())
}

#[derive(Serialize)]
struct MessageView {
    #[serde(flatten)]
    record: MessageRecord,
    audit: Vec<AuditEvent>,
}

async fn load_visible(
    ops: &Ops,
    principal: &Principal,
    id: &str,
) -> Result<MessageRecord, Response> {
    let Ok(mid) = id.parse::<MessageId>() else {
        return Err(not_found(id));
    };
    match ops.hub.store().get(mid).await {
        Ok(Some(rec)) if principal.may_read_record(&rec) => Ok(rec),
        Ok(_) => Err(not_found(id)),
        Err(e) => Err(internal(e)),
    }
}

/// The record `id` if the caller's token may read it; else the answer
/// (`401`, `404`).
async fn visible_record(
    ops: &Ops,
    headers: &HeaderMap,
    id: &str,
) -> Result<MessageRecord, Response> {
    let principal = authenticate(ops, headers)?;
    load_visible(ops, &principal, id).await
}

async fn show(State(ops): State<Ops>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let record = match visible_record(&ops, &headers, &id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    match ops.hub.store().audit(record.id()).await {
        Ok(audit) => Json(MessageView { record, audit }).into_response(),
        Err(e) => internal(e),
    }
}

/// `410 Gone`: retention deleted the payload of `rec`.
fn payload_purged(rec: &MessageRecord, at: Option<DateTime<Utc>>) -> Response {
    let when = at
        .or(rec.payload_purged_at)
        .map_or_else(String::new, |t| format!(" at {}", t.to_rfc3339()));
    problem(
        410,
        "payload-purged",
        format!(
            "the payload of message {} was deleted by retention{when}; its record and audit trail remain",
            rec.id()
        ),
    )
}

/// The payload as received, with its media type.
async fn payload(State(ops): State<Ops>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let record = match visible_record(&ops, &headers, &id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if record.payload_purged_at.is_some() {
        return payload_purged(&record, None);
    }
    match ops.hub.store().payload(record.id()).await {
        Ok(Some(bytes)) => (
            [(header::CONTENT_TYPE, record.envelope.content_type.clone())],
            bytes,
        )
            .into_response(),
        Ok(None) => not_found(&id),
        // Purged between the two reads.
        Err(StoreError::Purged(_)) => payload_purged(&record, None),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    tenant: Option<String>,
    state: Option<String>,
    since: Option<String>,
    until: Option<String>,
    leistung: Option<String>,
    correlation: Option<String>,
    after: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize)]
struct ListItem {
    id: MessageId,
    state: MessageState,
    channel: String,
    tenant: Option<String>,
    leistung: Option<String>,
    received_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct ListPage {
    items: Vec<ListItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

async fn list(State(ops): State<Ops>, Query(q): Query<ListQuery>, headers: HeaderMap) -> Response {
    let principal = match authenticate(&ops, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if matches!(principal.role, drehscheibe_model::auth::Role::Sender { .. }) {
        return problem(403, "forbidden", "senders cannot list messages");
    }
    let tenant = match (principal.tenant_scope(), q.tenant) {
        (Some(own), Some(asked)) if asked != own => {
            return problem(
                403,
                "forbidden",
                "a tenant token may only list its own messages",
            )
        }
        (Some(own), _) => Some(own.to_owned()),
        (None, asked) => asked,
    };
    let state = match q.state.as_deref().map(str::parse::<MessageState>) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => return problem(400, "bad-query", e),
    };
    let time = |name: &str, v: Option<&str>| match v.map(DateTime::parse_from_rfc3339) {
        None => Ok(None),
        Some(Ok(t)) => Ok(Some(t.with_timezone(&Utc))),
        Some(Err(e)) => Err(problem(
            400,
            "bad-query",
            format!("{name} must be an RFC 3339 timestamp: {e}"),
        )),
    };
    let (since, until) = match (
        time("since", q.since.as_deref()),
        time("until", q.until.as_deref()),
    ) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let after = match q.after.as_deref().map(str::parse::<MessageId>) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(e)) => return problem(400, "bad-query", e.to_string()),
    };
    let filter = MessageFilter {
        tenant,
        state,
        since,
        until,
        leistung: q.leistung.filter(|l| !l.is_empty()),
        correlation: q.correlation.filter(|c| !c.is_empty()),
        after,
        limit: q.limit.unwrap_or(100).clamp(1, 500),
    };
    match ops.hub.store().list(&filter).await {
        Ok(page) => Json(ListPage {
            items: page
                .items
                .into_iter()
                .map(|r| ListItem {
                    id: r.envelope.id,
                    state: r.state,
                    channel: r.envelope.channel,
                    tenant: r.envelope.tenant,
                    leistung: r.envelope.leistung,
                    received_at: r.envelope.received_at,
                    updated_at: r.updated_at,
                    reason: r.reason,
                })
                .collect(),
            next: page.next.map(|n| n.to_string()),
        })
        .into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
struct ReplayQuery {
    /// Replay even though the sender was given a final answer the replay
    /// contradicts (recorded in the audit event).
    #[serde(default)]
    force: bool,
}

async fn replay(
    State(ops): State<Ops>,
    Path(id): Path<String>,
    Query(q): Query<ReplayQuery>,
    headers: HeaderMap,
) -> Response {
    let principal = match authenticate(&ops, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !principal.may_replay() {
        // Tenants may see their messages but not re-drive them.
        return match load_visible(&ops, &principal, &id).await {
            Ok(_) => problem(403, "forbidden", "only operators may replay"),
            Err(r) => r,
        };
    }
    let Ok(mid) = id.parse::<MessageId>() else {
        return not_found(&id);
    };
    match ops
        .hub
        .replay(mid, &format!("operator:{}", principal.name), q.force)
        .await
    {
        Ok(rec) => (StatusCode::ACCEPTED, Json(rec)).into_response(),
        Err(ReplayError::NotFound(_)) => not_found(&id),
        Err(e @ ReplayError::NotReplayable(_)) => problem(409, "not-replayable", e.to_string()),
        Err(e @ ReplayError::SenderAnswered(_)) => problem(
            409,
            "sender-answered",
            format!("{e}: POST …/replay?force=true"),
        ),
        Err(ReplayError::PayloadPurged(at)) => match ops.hub.store().get(mid).await {
            Ok(Some(rec)) => payload_purged(&rec, Some(at)),
            _ => problem(
                410,
                "payload-purged",
                ReplayError::PayloadPurged(at).to_string(),
            ),
        },
        Err(ReplayError::Store(e)) => internal(e),
    }
}

#[derive(Debug, Deserialize)]
struct ReleaseBody {
    /// Why the operator lets the message through (audited).
    reason: String,
}

/// An operator releases a quarantined message (the scanner's finding is
/// overridden; ADR 0017). Body: `{"reason": "…"}`; `?force=true` as for a
/// replay when the sender was already given a final answer.
async fn release(
    State(ops): State<Ops>,
    Path(id): Path<String>,
    Query(q): Query<ReplayQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let principal = match authenticate(&ops, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !principal.may_replay() {
        return match load_visible(&ops, &principal, &id).await {
            Ok(_) => problem(
                403,
                "forbidden",
                "only operators may release quarantined messages",
            ),
            Err(r) => r,
        };
    }
    let Ok(mid) = id.parse::<MessageId>() else {
        return not_found(&id);
    };
    let reason = match serde_json::from_slice::<ReleaseBody>(&body) {
        Ok(b) => b.reason,
        Err(e) => {
            return problem(
                400,
                "bad-request",
                format!("expected {{\"reason\": \"…\"}}: {e}"),
            )
        }
    };
    match ops
        .hub
        .release(
            mid,
            &format!("operator:{}", principal.name),
            &reason,
            q.force,
        )
        .await
    {
        Ok(rec) => (StatusCode::ACCEPTED, Json(rec)).into_response(),
        Err(ReleaseError::NotFound(_)) => not_found(&id),
        Err(e @ ReleaseError::NotQuarantined(_)) => problem(409, "not-quarantined", e.to_string()),
        Err(e @ ReleaseError::NoReason) => problem(400, "reason-required", e.to_string()),
        Err(e @ ReleaseError::SenderAnswered(_)) => problem(
            409,
            "sender-answered",
            format!("{e}: POST …/release?force=true"),
        ),
        Err(ReleaseError::PayloadPurged(at)) => match ops.hub.store().get(mid).await {
            Ok(Some(rec)) => payload_purged(&rec, Some(at)),
            _ => problem(
                410,
                "payload-purged",
                ReleaseError::PayloadPurged(at).to_string(),
            ),
        },
        Err(ReleaseError::Store(e)) => internal(e),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(ops): State<Ops>) -> Response {
    if !ops.hub.is_accepting() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    // Not just "answers": the store must take writes (a full disk makes
    // it refuse them; it reports that, and recovers here once space is
    // back).
    // Connector trouble is listed (a Fachverfahren down, a client
    // certificate ending within 30 days) but does not make the hub unready:
    // it still accepts and keeps messages for later delivery.
    let now = Utc::now();
    let scanner = ops.hub.scanner_attention().await;
    let notes: String = ops
        .hub
        .connector_health()
        .iter()
        .filter_map(|e| e.attention(now))
        .chain(ops.hub.channel_attention())
        .chain(scanner)
        .map(|line| format!("{line}\n"))
        .collect();
    match ops.hub.store().ready().await {
        Ok(()) => (StatusCode::OK, format!("ready\n{notes}")).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store: {e}\n{notes}"),
        )
            .into_response(),
    }
}

async fn metrics(State(ops): State<Ops>) -> Response {
    let store = ops.hub.store();
    let queue = store.queue_stats(Utc::now()).await.unwrap_or_default();
    let states = store.count_by_state().await.unwrap_or_default();
    ops.hub.sync_channel_metrics();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ops.hub.metrics().encode(queue, &states),
    )
        .into_response()
}
