//! The rule depot and service levels over the JSON API: the depot with
//! the routes that pin each version, the diff between two versions, the
//! publication of a new version (a ZIP of the package; its own tests must
//! pass), and the SLA report. The console calls the same functions
//! ([`drehscheibe_engine::insight`], [`ConfigAdmin::publish_rule`]).
#![allow(clippy::result_large_err)]
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use drehscheibe_engine::admin::{ConfigAdmin, MAX_RULE_ARCHIVE_BYTES};
use drehscheibe_engine::insight;
use drehscheibe_engine::Hub;
use drehscheibe_http::problem::Problem;
use drehscheibe_model::auth::{Principal, Role, TokenTable};
use serde::Deserialize;

use crate::config_api::admin_problem;
use crate::ops::authenticate_with;

#[derive(Clone)]
pub(crate) struct RulesApi {
    hub: Arc<Hub>,
    admin: Arc<dyn ConfigAdmin>,
    tokens: Arc<TokenTable>,
}

/// The routes (see [`crate::openapi`]).
#[allow(clippy::type_complexity)]
pub(crate) fn routes() -> Vec<(
    &'static str,
    &'static [&'static str],
    MethodRouter<RulesApi>,
)> {
    vec![
        ("/api/v1/rules", &["get", "post"], get(list).post(publish)),
        ("/api/v1/rules/{id}/diff", &["get"], get(diff)),
        ("/api/v1/sla", &["get"], get(sla)),
    ]
}

/// The rule depot and SLA API (see the module docs).
pub fn rules_router(hub: Arc<Hub>, admin: Arc<dyn ConfigAdmin>, tokens: Arc<TokenTable>) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |r, (path, _, m)| r.route(path, m))
        .layer(DefaultBodyLimit::disable())
        .with_state(RulesApi { hub, admin, tokens })
}

fn problem(status: u16, kind: &str, detail: impl Into<String>) -> Response {
    Problem::new(status, kind, detail).into_response()
}

fn reader(api: &RulesApi, headers: &HeaderMap) -> Result<Principal, Response> {
    let p = authenticate_with(&api.tokens, headers)?;
    if matches!(p.role, Role::Sender { .. }) {
        return Err(problem(403, "forbidden", "sender tokens cannot read this"));
    }
    Ok(p)
}

async fn list(State(api): State<RulesApi>, headers: HeaderMap) -> Response {
    let p = match reader(&api, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (depot, config) = (api.admin.depot(), api.admin.current());
    let scope = p.tenant_scope().map(str::to_owned);
    // Lists each package's files: off the async threads.
    match tokio::task::spawn_blocking(move || {
        insight::depot_overview(&depot, &config, scope.as_deref())
    })
    .await
    {
        Ok(list) => Json(list).into_response(),
        Err(e) => problem(500, "internal", e.to_string()),
    }
}

#[derive(Deserialize)]
struct DiffQuery {
    a: String,
    b: String,
}

async fn diff(
    State(api): State<RulesApi>,
    Path(id): Path<String>,
    Query(q): Query<DiffQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = reader(&api, &headers) {
        return r;
    }
    let parse = |v: &str| {
        semver::Version::parse(v.trim())
            .map_err(|e| problem(400, "bad-query", format!("{v:?} is not a version: {e}")))
    };
    let (a, b) = match (parse(&q.a), parse(&q.b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let depot = api.admin.depot();
    match tokio::task::spawn_blocking(move || insight::rule_diff(&depot, &id, &a, &b)).await {
        Ok(Ok(files)) => Json(files).into_response(),
        Ok(Err(e)) => problem(404, "rule-version-not-found", e.to_string()),
        Err(e) => problem(500, "internal", e.to_string()),
    }
}

/// `POST /api/v1/rules` with a ZIP of the package as the body.
async fn publish(
    State(api): State<RulesApi>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let p = match reader(&api, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !matches!(p.role, Role::Operator) {
        return problem(403, "forbidden", "only operators may publish rules");
    }
    // Read only once the caller is known to be an operator.
    let body = match crate::config_api::read_body(body, MAX_RULE_ARCHIVE_BYTES).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match api.admin.publish_rule(body, &p.name).await {
        Ok(published) => (axum::http::StatusCode::CREATED, Json(published)).into_response(),
        Err(e) => admin_problem(e),
    }
}

async fn sla(State(api): State<RulesApi>, headers: HeaderMap) -> Response {
    let p = match reader(&api, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match insight::sla_report(
        api.hub.store().as_ref(),
        &api.admin.current(),
        p.tenant_scope(),
        chrono::Utc::now(),
    )
    .await
    {
        Ok(rows) => Json(rows).into_response(),
        Err(e) => problem(503, "storage-unavailable", e.to_string()),
    }
}
