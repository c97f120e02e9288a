//! The configuration API (ADR 0021): files, checks, changes, history,
//! rollback, reload and export, over [`ConfigAdmin`].
//!
//! Operators read and change everything but the main file, which is
//! read-only here. A tenant token reads its own Kommune's file and its
//! history, and changes nothing. Every refusal is a problem document;
//! a candidate that does not load answers `422` with the problems, one
//! per line of `config check`, in the extension member `errors`.
#![allow(clippy::result_large_err)]
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use drehscheibe_engine::admin::{
    download_name, may_read_revisions_of, revision_as_seen_by, status_as_seen_by,
    summary_as_seen_by, visible_files, AdminError, Change, ConfigAdmin, ConfigFile, FileKind,
    Revision, RevisionSummary, MAX_FILE_BYTES,
};
use drehscheibe_http::problem::Problem;
use drehscheibe_model::auth::{Principal, Role, TokenTable};
use serde::{Deserialize, Serialize};

use crate::ops::authenticate_with;

#[derive(Clone)]
pub(crate) struct ConfigApi {
    admin: Arc<dyn ConfigAdmin>,
    tokens: Arc<TokenTable>,
}

/// The configuration API's routes: path, methods, handler (the OpenAPI
/// document lists exactly these; a test holds both together).
#[allow(clippy::type_complexity)]
pub(crate) fn routes() -> Vec<(
    &'static str,
    &'static [&'static str],
    MethodRouter<ConfigApi>,
)> {
    vec![
        ("/api/v1/config", &["get"], get(overview)),
        (
            "/api/v1/config/files/{*path}",
            &["get", "put"],
            get(file).put(put_file),
        ),
        ("/api/v1/config/raw/{*path}", &["get"], get(raw_file)),
        ("/api/v1/config/check", &["post"], post(check)),
        ("/api/v1/config/revisions", &["get"], get(revisions)),
        ("/api/v1/config/revisions/{id}", &["get"], get(revision)),
        (
            "/api/v1/config/revisions/{id}/rollback",
            &["post"],
            post(rollback),
        ),
        ("/api/v1/config/reload", &["post"], post(reload)),
        ("/api/v1/config/export", &["get"], get(export)),
    ]
}

/// The configuration API (see the module docs).
pub fn config_router(admin: Arc<dyn ConfigAdmin>, tokens: Arc<TokenTable>) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |r, (path, _, m)| r.route(path, m))
        .with_state(ConfigApi { admin, tokens })
}

fn problem(status: u16, kind: &str, detail: impl Into<String>) -> Response {
    Problem::new(status, kind, detail).into_response()
}

/// Largest request body of a change: the file (JSON-escaped, so up to
/// twice its size) and a little more.
const BODY_LIMIT: usize = 2 * MAX_FILE_BYTES + 64 * 1024;

/// The request body, read only after the caller was authenticated and at
/// most `limit` bytes (`413` beyond).
pub(crate) async fn read_body(
    body: axum::body::Body,
    limit: usize,
) -> Result<axum::body::Bytes, Response> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        problem(
            413,
            "payload-too-large",
            format!("the request body is larger than {limit} bytes (or was cut off)"),
        )
    })
}

/// The answer for an [`AdminError`].
pub fn admin_problem(e: AdminError) -> Response {
    match e {
        AdminError::Invalid(errors) => {
            let mut p = Problem::new(
                422,
                "invalid-configuration",
                format!("the configuration does not load:\n{}", errors.join("\n")),
            );
            p.extra.insert("errors".into(), serde_json::json!(errors));
            p.into_response()
        }
        e @ AdminError::NotFound(_) => problem(404, "config-file-not-found", e.to_string()),
        e @ AdminError::NoRevision(_) => problem(404, "revision-not-found", e.to_string()),
        e @ AdminError::ReadOnly(_) => problem(403, "read-only", e.to_string()),
        AdminError::Conflict { path, current } => {
            let mut p = Problem::new(
                409,
                "config-conflict",
                format!("{path} changed meanwhile; read it again (its SHA-256 is now {current})"),
            );
            p.extra
                .insert("current_sha256".into(), serde_json::json!(current));
            p.into_response()
        }
        AdminError::Io(e) => {
            tracing::error!(error = %e, "configuration API: write or store failure");
            problem(503, "storage-unavailable", e)
        }
    }
}

/// An operator's request with a JSON body of shape `T` (an empty body is
/// `T::default()` where `empty` allows it): authenticated first, then at
/// most `limit` bytes read, then parsed; `shape` names what was expected.
async fn operator_json<T: serde::de::DeserializeOwned + Default>(
    api: &ConfigApi,
    headers: &HeaderMap,
    body: axum::body::Body,
    limit: usize,
    shape: &str,
    empty: bool,
) -> Result<(Principal, T), Response> {
    let p = operator(api, headers)?;
    let body = read_body(body, limit).await?;
    if empty && body.is_empty() {
        return Ok((p, T::default()));
    }
    serde_json::from_slice(&body)
        .map(|v| (p, v))
        .map_err(|e| problem(400, "bad-request", format!("expected {shape}: {e}")))
}

fn principal(api: &ConfigApi, headers: &HeaderMap) -> Result<Principal, Response> {
    let p = authenticate_with(&api.tokens, headers)?;
    if matches!(p.role, Role::Sender { .. }) {
        return Err(problem(
            403,
            "forbidden",
            "sender tokens have no access to the configuration",
        ));
    }
    Ok(p)
}

fn operator(api: &ConfigApi, headers: &HeaderMap) -> Result<Principal, Response> {
    let p = principal(api, headers)?;
    if matches!(p.role, Role::Operator) {
        Ok(p)
    } else {
        Err(problem(
            403,
            "forbidden",
            "only operators may change the configuration",
        ))
    }
}

#[derive(Serialize)]
struct FileSummary {
    path: String,
    kind: FileKind,
    tenant: Option<String>,
    editable: bool,
    sha256: String,
}

#[derive(Serialize)]
struct Overview {
    #[serde(flatten)]
    status: drehscheibe_engine::admin::ReloadStatus,
    files: Vec<FileSummary>,
}

async fn overview(State(api): State<ConfigApi>, headers: HeaderMap) -> Response {
    let p = match principal(&api, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match visible_files(api.admin.as_ref(), &p).await {
        Ok(files) => Json(Overview {
            status: status_as_seen_by(&p, api.admin.status()),
            files: files
                .into_iter()
                .map(|f| FileSummary {
                    path: f.path,
                    kind: f.kind,
                    tenant: f.tenant,
                    editable: f.editable && matches!(p.role, Role::Operator),
                    sha256: f.sha256,
                })
                .collect(),
        })
        .into_response(),
        Err(e) => admin_problem(e),
    }
}

async fn find_file(api: &ConfigApi, p: &Principal, path: &str) -> Result<ConfigFile, Response> {
    visible_files(api.admin.as_ref(), p)
        .await
        .map_err(admin_problem)?
        .into_iter()
        .find(|f| f.path == path)
        .ok_or_else(|| admin_problem(AdminError::NotFound(path.to_owned())))
}

async fn file(
    State(api): State<ConfigApi>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let p = match principal(&api, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match find_file(&api, &p, &path).await {
        Ok(f) => Json(f).into_response(),
        Err(r) => r,
    }
}

/// A file's text as a download, the way the hub reads it.
async fn raw_file(
    State(api): State<ConfigApi>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    let p = match principal(&api, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match find_file(&api, &p, &path).await {
        Ok(f) => toml_download(&f.path, f.text),
        Err(r) => r,
    }
}

/// `text` as the download of the file `path`.
fn toml_download(path: &str, text: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "application/toml; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", download_name(path)),
            ),
        ],
        text,
    )
        .into_response()
}

#[derive(Deserialize, Default)]
struct PutBody {
    text: String,
    #[serde(default)]
    expect_sha256: Option<String>,
    #[serde(default)]
    comment: String,
}

async fn put_file(
    State(api): State<ConfigApi>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let (p, b): (_, PutBody) = match operator_json(
        &api,
        &headers,
        body,
        BODY_LIMIT,
        "{\"text\": \"…\", \"expect_sha256\"?: \"…\", \"comment\"?: \"…\"}",
        false,
    )
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let change = Change {
        path,
        text: b.text,
        expect_sha256: b.expect_sha256,
        comment: b.comment,
    };
    match api.admin.change(&change, &p.name).await {
        Ok(rev) => Json(rev).into_response(),
        Err(e) => admin_problem(e),
    }
}

async fn check(
    State(api): State<ConfigApi>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let (_, change): (_, Change) = match operator_json(
        &api,
        &headers,
        body,
        BODY_LIMIT,
        "{\"path\": \"…\", \"text\": \"…\"}",
        false,
    )
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    match api.admin.check(&change).await {
        Ok(()) => Json(serde_json::json!({ "valid": true })).into_response(),
        Err(e) => admin_problem(e),
    }
}

#[derive(Deserialize)]
struct HistoryQuery {
    path: Option<String>,
    before: Option<u64>,
    limit: Option<usize>,
}

/// A revision as the API shows it: with the unified diff.
#[derive(Serialize)]
struct RevisionView {
    #[serde(flatten)]
    revision: Revision,
    diff: String,
}

/// The unified diff of a revision (old text to new text).
fn revision_diff(rev: &Revision) -> String {
    drehscheibe_engine::admin::unified_diff(
        rev.old_text.as_deref().unwrap_or(""),
        rev.new_text.as_deref().unwrap_or(""),
        &format!("a/{}", rev.path),
        &format!("b/{}", rev.path),
    )
}

async fn revisions(
    State(api): State<ConfigApi>,
    Query(q): Query<HistoryQuery>,
    headers: HeaderMap,
) -> Response {
    let p = match principal(&api, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let path = match (&p.role, q.path) {
        (Role::Operator, path) => path,
        (_, path) => {
            // A tenant reads its own file's history only.
            let own = match visible_files(api.admin.as_ref(), &p).await {
                Ok(f) => f,
                Err(e) => return admin_problem(e),
            };
            match (own.first(), path) {
                (Some(f), None) => Some(f.path.clone()),
                (Some(f), Some(asked)) if asked == f.path => Some(asked),
                (_, Some(asked)) => return admin_problem(AdminError::NotFound(asked)),
                (None, None) => return Json(Vec::<RevisionSummary>::new()).into_response(),
            }
        }
    };
    match api
        .admin
        .history(path.as_deref(), q.before, q.limit.unwrap_or(50))
        .await
    {
        Ok(revs) => Json(
            revs.into_iter()
                .map(|r| summary_as_seen_by(&p, r))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => admin_problem(e),
    }
}

async fn visible_revision(api: &ConfigApi, p: &Principal, id: u64) -> Result<Revision, Response> {
    let rev = api.admin.revision(id).await.map_err(admin_problem)?;
    match may_read_revisions_of(api.admin.as_ref(), p, &rev.path).await {
        Ok(true) => Ok(revision_as_seen_by(p, rev)),
        Ok(false) => Err(admin_problem(AdminError::NoRevision(id))),
        Err(e) => Err(admin_problem(e)),
    }
}

async fn revision(
    State(api): State<ConfigApi>,
    Path(id): Path<u64>,
    headers: HeaderMap,
) -> Response {
    let p = match principal(&api, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let rev = match visible_revision(&api, &p, id).await {
        Ok(rev) => rev,
        Err(r) => return r,
    };
    // Diffing up to megabytes takes CPU: off the async threads.
    match tokio::task::spawn_blocking(move || RevisionView {
        diff: revision_diff(&rev),
        revision: rev,
    })
    .await
    {
        Ok(view) => Json(view).into_response(),
        Err(e) => problem(500, "internal", e.to_string()),
    }
}

#[derive(Deserialize, Default)]
struct RollbackBody {
    #[serde(default)]
    comment: String,
}

async fn rollback(
    State(api): State<ConfigApi>,
    Path(id): Path<u64>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let (p, b): (_, RollbackBody) = match operator_json(
        &api,
        &headers,
        body,
        64 * 1024,
        "{\"comment\"?: \"…\"}",
        true,
    )
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    match api.admin.rollback(id, &p.name, &b.comment).await {
        Ok(rev) => Json(rev).into_response(),
        Err(e) => admin_problem(e),
    }
}

async fn reload(State(api): State<ConfigApi>, headers: HeaderMap) -> Response {
    let p = match operator(&api, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match api
        .admin
        .reload(drehscheibe_engine::admin::FILE_AUTHOR)
        .await
    {
        Ok(outcome) => {
            tracing::info!(by = %p.name, changed = outcome.changed, "configuration reload requested");
            Json(outcome).into_response()
        }
        Err(e) => admin_problem(e),
    }
}

/// Every file the caller may read, as one ZIP archive laid out like the
/// configuration directory.
async fn export(State(api): State<ConfigApi>, headers: HeaderMap) -> Response {
    let p = match principal(&api, &headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let files = match visible_files(api.admin.as_ref(), &p).await {
        Ok(f) => f,
        Err(e) => return admin_problem(e),
    };
    match zip_files(&files) {
        Ok(bytes) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/zip"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"drehscheibe-config.zip\"",
                ),
            ],
            bytes,
        )
            .into_response(),
        Err(e) => problem(500, "export-failed", e.to_string()),
    }
}

fn zip_files(files: &[ConfigFile]) -> zip::result::ZipResult<Vec<u8>> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for f in files {
        w.start_file(f.path.as_str(), options)?;
        w.write_all(f.text.as_bytes())?;
    }
    Ok(w.finish()?.into_inner())
}
