//! The dry run API ("Probelauf", [`drehscheibe_engine::dry_run`]):
//! `POST /api/v1/dry-run?channel=…[&version=…]` with the message as the
//! body and its media type as `Content-Type`; `POST
//! /api/v1/dry-run/compare?channel=…&a=…&b=…` runs the route's rule in
//! two versions on the same message and diffs their outputs. Nothing is
//! stored or delivered. Operators only: a dry run shows every Kommune's
//! routing.
#![allow(clippy::result_large_err)]
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::{Json, Router};
use drehscheibe_engine::dry_run::{DryRunError, DryRunRequest};
use drehscheibe_engine::Hub;
use drehscheibe_http::problem::Problem;
use drehscheibe_model::auth::{Role, TokenTable};
use serde::Deserialize;

use crate::ops::authenticate_with;

#[derive(Clone)]
pub(crate) struct DryRunApi {
    hub: Arc<Hub>,
    tokens: Arc<TokenTable>,
}

/// The dry run API's routes (see [`crate::openapi`]).
#[allow(clippy::type_complexity)]
pub(crate) fn routes() -> Vec<(
    &'static str,
    &'static [&'static str],
    MethodRouter<DryRunApi>,
)> {
    vec![
        ("/api/v1/dry-run", &["post"], post(dry_run)),
        ("/api/v1/dry-run/compare", &["post"], post(compare)),
    ]
}

/// The dry run API (see the module docs).
pub fn dry_run_router(hub: Arc<Hub>, tokens: Arc<TokenTable>) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |r, (path, _, m)| r.route(path, m))
        .layer(DefaultBodyLimit::disable())
        .with_state(DryRunApi { hub, tokens })
}

fn problem(status: u16, kind: &str, detail: impl Into<String>) -> Response {
    Problem::new(status, kind, detail).into_response()
}

#[derive(Deserialize)]
struct RunQuery {
    channel: String,
    version: Option<String>,
}

#[derive(Deserialize)]
struct CompareQuery {
    channel: String,
    a: String,
    b: String,
}

fn version(v: &str) -> Result<semver::Version, Response> {
    semver::Version::parse(v.trim()).map_err(|e| {
        problem(
            400,
            "bad-query",
            format!("{v:?} is not a rule version (x.y.z): {e}"),
        )
    })
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/xml")
        .to_owned()
}

fn dry_run_problem(e: DryRunError) -> Response {
    match e {
        e @ DryRunError::UnknownChannel(_) => problem(404, "unknown-channel", e.to_string()),
        e @ DryRunError::TooLarge(..) => problem(413, "payload-too-large", e.to_string()),
        e @ DryRunError::Empty => problem(400, "empty-payload", e.to_string()),
        e @ DryRunError::Internal(_) => problem(500, "internal", e.to_string()),
    }
}

/// The request of an operator: authenticated first, then the message read
/// (at most the hub's `max_payload_bytes`), with its media type and the
/// channel asked for.
async fn request(
    api: &DryRunApi,
    headers: &HeaderMap,
    channel: String,
    body: axum::body::Body,
) -> Result<DryRunRequest, Response> {
    let p = authenticate_with(&api.tokens, headers)?;
    if !matches!(p.role, Role::Operator) {
        return Err(problem(403, "forbidden", "only operators may run dry runs"));
    }
    let limit = usize::try_from(api.hub.max_payload_bytes()).unwrap_or(usize::MAX);
    let payload = crate::config_api::read_body(body, limit).await?;
    Ok(DryRunRequest {
        channel,
        content_type: content_type(headers),
        payload,
        version: None,
        principal: p.name,
    })
}

async fn dry_run(
    State(api): State<DryRunApi>,
    Query(q): Query<RunQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let req = match request(&api, &headers, q.channel, body).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let version = match q.version.as_deref().map(version).transpose() {
        Ok(v) => v,
        Err(r) => return r,
    };
    match api.hub.dry_run(DryRunRequest { version, ..req }).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => dry_run_problem(e),
    }
}

async fn compare(
    State(api): State<DryRunApi>,
    Query(q): Query<CompareQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let req = match request(&api, &headers, q.channel, body).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let (a, b) = match (version(&q.a), version(&q.b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match api.hub.dry_run_compare(req, a, b).await {
        Ok(c) => Json(c).into_response(),
        Err(e) => dry_run_problem(e),
    }
}
