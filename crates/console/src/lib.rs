//! The hub's web console (`/console`, ADR 0021): server-rendered HTML
//! (maud), German UI, progressive enhancement with a vendored htmx.
//!
//! ```text
//!  browser ──► guard (every request under /console)
//!               │ static asset? ──────────────────────► assets (long cache)
//!               │ POST: Origin/Referer == Host, else 403
//!               │ session cookie → Session, else 303 /console/anmelden
//!               │ POST: CSRF token (form field `csrf` or X-CSRF-Token), else 403
//!               ▼
//!             pages ──► Hub / Store (the same calls as the JSON API)
//!                   └─► ConfigAdmin (configuration: files, check, change,
//!                       history, rollback, status)
//!               ▼
//!             security headers (CSP, nosniff, frame denial, no-store)
//! ```
//!
//! **Sign-in.** A user signs in with an existing API token
//! (`POST /console/anmelden`, checked against the hub's [`TokenTable`]).
//! `operator` tokens see and do everything; `tenant` tokens see their own
//! Kommune read-only (another Kommune's pages and messages answer `404`,
//! as the JSON API does); `sender` tokens are refused.
//!
//! **Sessions** live in memory ([`session::SessionStore`], at most
//! 10 000, the oldest evicted; at most 20 per token name, its own oldest
//! evicted; idle and absolute expiry from [`ConsoleSettings`]). A sign-in
//! ends the session the browser already had. The cookie holds a random
//! 256-bit id (from the operating system's generator) with
//! `HttpOnly; SameSite=Strict; Path=/`.
//! When the listener speaks TLS ([`ConsoleSettings::secure_cookie`]) the
//! cookie is `__Host-ds-session` with `Secure`; browsers refuse the
//! `__Host-` prefix without `Secure`, so on plain HTTP (development, or
//! behind a TLS-terminating proxy on loopback) the cookie is called
//! `ds-session` instead. Sessions do not survive a restart of the hub.
//!
//! **State-changing requests** (every POST) need a same-origin `Origin`
//! header (or, without it, `Referer`): its host and port must equal the
//! request's `Host` (over TLS its scheme must be `https`). Every POST but
//! the sign-in also needs the session's CSRF token, as form field `csrf`
//! (also as a part of a `multipart/form-data` upload) or header
//! `X-CSRF-Token`, compared in constant time. Bodies are read only after
//! the session was found, up to 2 MiB; the Probelauf takes the hub's
//! payload limit and the publication of a rule package its archive limit,
//! each plus 1 MiB for the other fields. The sign-in, the one POST without
//! a session, reads at most 4 KiB; requests under `/console/static/` have
//! their body dropped unread. A refusal is a `403` with a German
//! explanation.
//!
//! **Headers** on every answer: the Content-Security-Policy of ADR 0021
//! ([`security::CSP`]), `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: same-origin`, `X-Frame-Options: DENY`, and
//! `Cache-Control: no-store` on everything but the static files. Pages
//! contain no inline script, no `style=` and no `on…=` attribute.
//!
//! **One code path.** Message pages call the same [`Hub`] and store
//! functions as the operations API (`drehscheibe-server`'s `ops.rs`),
//! with the same visibility rules ([`Principal::may_read_record`],
//! [`Principal::tenant_scope`], [`Principal::may_replay`]); replays and
//! releases are audited as `operator:<token name>`. Configuration pages
//! call only [`ConfigAdmin`]; a change's author is the token's name. The
//! Regeldepot and SLA pages call [`drehscheibe_engine::insight`] and
//! [`ConfigAdmin::publish_rule`], the Probelauf [`Hub::dry_run`] and
//! [`Hub::dry_run_compare`], as the JSON API does.
//!
//! Routes (all below `/console`):
//!
//! | route | what |
//! |---|---|
//! | `GET /console` | Übersicht |
//! | `GET, POST /console/anmelden`, `POST /console/abmelden` | sign-in, sign-out |
//! | `GET /console/nachrichten` | message list (`state`, `tenant`, `since`, `after`) |
//! | `POST /console/nachrichten/erneut` | replay the selected messages |
//! | `GET /console/nachrichten/{id}` | message detail with audit trail |
//! | `GET /console/nachrichten/{id}/nutzdaten` | payload as a download |
//! | `POST /console/nachrichten/{id}/erneut` | replay one message |
//! | `POST /console/nachrichten/{id}/freigeben` | release a quarantined message |
//! | `GET /console/kommunen`, `GET /console/kommunen/{tenant}` | Kommunen, one Kommune with its file |
//! | `POST /console/kommunen/{tenant}/pruefen`, `…/speichern` | check, save the tenant file |
//! | `POST /console/kommunen/{tenant}/route` | change one route's rule pin and targets (operators) |
//! | `GET /console/kommunen/{tenant}/export` | the tenant file as a download |
//! | `GET /console/verlauf`, `GET /console/verlauf/{id}` | configuration history, one revision's diff |
//! | `POST /console/verlauf/{id}/zuruecksetzen` | roll back to a revision |
//! | `GET /console/regeldepot` | rule depot: versions, what pins them, publication form |
//! | `GET /console/regeldepot/{id}`, `GET …/{id}/vergleich?a=&b=` | one rule's versions, the diff of two |
//! | `POST /console/regeldepot/veroeffentlichen` | publish a rule package (ZIP upload, operators) |
//! | `GET, POST /console/probelauf` | dry run of a message, or of two rule versions (operators) |
//! | `GET /console/sla` | service levels per Kommune and Leistung, measured |
//! | `GET /console/static/{name}` | `htmx.min.js`, `console.css`, `console.js` |
//!
//! [`Principal::may_read_record`]: drehscheibe_model::auth::Principal::may_read_record
//! [`Principal::tenant_scope`]: drehscheibe_model::auth::Principal::tenant_scope
//! [`Principal::may_replay`]: drehscheibe_model::auth::Principal::may_replay

// Handlers answer errors with a ready `Response`; boxing it would only add noise.
#![allow(clippy::result_large_err)]

mod assets;
mod config_pages;
mod depot_pages;
mod diff;
mod dry_run_page;
mod layout;
mod messages;
mod overview;
mod route_form;
pub mod security;
pub mod session;
mod sla_page;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use drehscheibe_engine::admin::ConfigAdmin;
use drehscheibe_engine::Hub;
use drehscheibe_model::auth::{Role, TokenTable};
use maud::html;
use serde::Deserialize;

use crate::layout::{error_page, page, Nav};
use crate::security::Refusal;
use crate::session::{Session, SessionStore};

/// How the console runs.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// The listener speaks TLS: the session cookie is `__Host-ds-session`
    /// with `Secure`, and origins must be `https`.
    pub secure_cookie: bool,
    /// A session ends after this long without a request (default 30 min).
    pub session_idle: Duration,
    /// A session ends this long after sign-in at the latest (default 8 h).
    pub session_max: Duration,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            secure_cookie: false,
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(8 * 3600),
        }
    }
}

/// Largest form the console reads (the tenant file editor included).
const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

/// Largest sign-in form (read before anyone is authenticated).
const MAX_SIGN_IN_BYTES: usize = 4 * 1024;

/// The sign-in page.
const SIGN_IN_PATH: &str = "/console/anmelden";

/// Room for the other fields of an upload form, beyond the file itself.
const UPLOAD_OVERHEAD: usize = 1024 * 1024;

/// The uploads: the Probelauf (a message of at most the hub's payload
/// limit) and the publication of a rule package.
const DRY_RUN_PATH: &str = "/console/probelauf";
const PUBLISH_PATH: &str = "/console/regeldepot/veroeffentlichen";

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct Console {
    pub(crate) hub: Arc<Hub>,
    pub(crate) tokens: Arc<TokenTable>,
    pub(crate) admin: Arc<dyn ConfigAdmin>,
    pub(crate) settings: Arc<ConsoleSettings>,
    pub(crate) sessions: Arc<SessionStore>,
    /// When the router was built (with the hub): the base of the
    /// throughput per hour on the Übersicht.
    pub(crate) started: std::time::Instant,
    /// Most messages examined to count a tenant's messages per state on
    /// the Übersicht ([`overview::TENANT_COUNT_MAX`]; smaller in tests).
    pub(crate) tenant_count_max: usize,
}

/// The console's routes (see the crate docs), to be merged into the hub's
/// router.
pub fn console_router(
    hub: Arc<Hub>,
    tokens: Arc<TokenTable>,
    admin: Arc<dyn ConfigAdmin>,
    settings: ConsoleSettings,
) -> Router {
    let sessions = SessionStore::new(settings.session_idle, settings.session_max);
    router_with(
        hub,
        tokens,
        admin,
        settings,
        sessions,
        overview::TENANT_COUNT_MAX,
    )
}

/// [`console_router`] with its session store and the bound of the tenant
/// counts given (the tests make both small).
pub(crate) fn router_with(
    hub: Arc<Hub>,
    tokens: Arc<TokenTable>,
    admin: Arc<dyn ConfigAdmin>,
    settings: ConsoleSettings,
    sessions: SessionStore,
    tenant_count_max: usize,
) -> Router {
    let console = Console {
        hub,
        tokens,
        admin,
        sessions: Arc::new(sessions),
        settings: Arc::new(settings),
        started: std::time::Instant::now(),
        tenant_count_max,
    };
    Router::new()
        .route("/console", get(overview::show))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route(SIGN_IN_PATH, get(sign_in_form).post(sign_in))
        .route("/console/abmelden", post(sign_out))
        .route("/console/nachrichten", get(messages::list))
        .route(
            "/console/nachrichten/erneut",
            post(messages::replay_selected),
        )
        .route("/console/nachrichten/{id}", get(messages::show))
        .route(
            "/console/nachrichten/{id}/nutzdaten",
            get(messages::payload),
        )
        .route(
            "/console/nachrichten/{id}/erneut",
            post(messages::replay_one),
        )
        .route(
            "/console/nachrichten/{id}/freigeben",
            post(messages::release),
        )
        .route("/console/kommunen", get(config_pages::tenants))
        .route("/console/kommunen/{tenant}", get(config_pages::tenant))
        .route(
            "/console/kommunen/{tenant}/pruefen",
            post(config_pages::check),
        )
        .route(
            "/console/kommunen/{tenant}/speichern",
            post(config_pages::save),
        )
        .route("/console/kommunen/{tenant}/route", post(route_form::save))
        .route(
            "/console/kommunen/{tenant}/export",
            get(config_pages::export),
        )
        .route("/console/verlauf", get(config_pages::history))
        .route("/console/verlauf/{id}", get(config_pages::revision))
        .route(
            "/console/verlauf/{id}/zuruecksetzen",
            post(config_pages::rollback),
        )
        .route("/console/regeldepot", get(depot_pages::list))
        .route(PUBLISH_PATH, post(depot_pages::publish))
        .route("/console/regeldepot/{id}", get(depot_pages::rule))
        .route(
            "/console/regeldepot/{id}/vergleich",
            get(depot_pages::compare),
        )
        .route(
            DRY_RUN_PATH,
            get(dry_run_page::form).post(dry_run_page::run),
        )
        .route("/console/sla", get(sla_page::show))
        .route("/console/static/{name}", get(assets::serve))
        .route("/console/{*rest}", get(not_found).post(not_found))
        .layer(from_fn_with_state(console.clone(), guard))
        // Outside the guard, so that its reading of a multipart form and
        // the handlers' see the same limit; the guard bounds every body
        // by its path first (`body_limit`).
        .layer(DefaultBodyLimit::max(largest_body(&console.hub)))
        .with_state(console)
}

/// Whatever no route takes. Paths under `/console/static/` pass the guard
/// without a session, so there may be none.
async fn not_found(session: Option<Extension<Session>>) -> Response {
    layout::not_found(session.as_ref().map(|Extension(s)| s))
}

/// The value of field `name` in an `application/x-www-form-urlencoded`
/// body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let mut kv = pair.splitn(2, |b| *b == b'=');
        let key = percent_decode(kv.next()?)?;
        (key == name).then(|| percent_decode(kv.next().unwrap_or_default()))?
    })
}

fn percent_decode(s: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The largest message the Probelauf takes.
fn payload_limit(hub: &Hub) -> usize {
    usize::try_from(hub.max_payload_bytes()).unwrap_or(usize::MAX)
}

/// The largest body a POST to `path` may have.
fn body_limit(hub: &Hub, path: &str) -> usize {
    match path {
        SIGN_IN_PATH => MAX_SIGN_IN_BYTES,
        DRY_RUN_PATH => payload_limit(hub).saturating_add(UPLOAD_OVERHEAD),
        PUBLISH_PATH => drehscheibe_engine::admin::MAX_RULE_ARCHIVE_BYTES + UPLOAD_OVERHEAD,
        _ => MAX_FORM_BYTES,
    }
}

fn largest_body(hub: &Hub) -> usize {
    [DRY_RUN_PATH, PUBLISH_PATH, ""]
        .into_iter()
        .map(|p| body_limit(hub, p))
        .max()
        .unwrap_or(MAX_FORM_BYTES)
}

/// `n` bytes in words (`2 MiB`, `512 KiB`).
pub(crate) fn human_bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64).replace('.', ",")
    } else if n >= KIB {
        format!("{} KiB", n.div_ceil(KIB))
    } else {
        format!("{n} Bytes")
    }
}

/// The text of field `name` of a buffered `multipart/form-data` body
/// (`parts`: the request's head, for the boundary and the body limit).
async fn multipart_field(
    parts: &axum::http::request::Parts,
    body: &axum::body::Bytes,
    name: &str,
) -> Option<String> {
    let mut req = Request::new(Body::from(body.clone()));
    *req.headers_mut() = parts.headers.clone();
    *req.extensions_mut() = parts.extensions.clone();
    let mut form = Multipart::from_request(req, &()).await.ok()?;
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some(name) {
            return field.text().await.ok();
        }
    }
    None
}

/// Every request under `/console` passes here (see the crate docs).
async fn guard(State(c): State<Console>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path.starts_with("/console/static/") {
        // No session here: nothing may read what was sent.
        *req.body_mut() = Body::empty();
        let mut resp = next.run(req).await;
        let asset = resp.status().is_success();
        security::apply_headers(resp.headers_mut(), !asset);
        return resp;
    }
    let mut resp = match admit(&c, req, &path).await {
        Ok(req) => next.run(req).await,
        Err(resp) => resp,
    };
    security::apply_headers(resp.headers_mut(), true);
    resp
}

/// The checks of [`guard`]: the request to run, or the answer.
async fn admit(c: &Console, mut req: Request, path: &str) -> Result<Request, Response> {
    let tls = c.settings.secure_cookie;
    let changing = !matches!(*req.method(), Method::GET | Method::HEAD);
    let session = security::session_id(req.headers(), tls).and_then(|id| c.sessions.get(&id));
    if changing {
        let authority = req.uri().authority().map(|a| a.as_str().to_owned());
        if let Err(r) = security::check_origin(req.headers(), authority.as_deref(), tls) {
            return Err(refused(r, session.as_ref()));
        }
    }
    if path == SIGN_IN_PATH {
        if changing {
            // Read before anyone is authenticated: a small limit.
            let (parts, body) = req.into_parts();
            let bytes = read_limited(body, body_limit(&c.hub, path), session.as_ref()).await?;
            req = Request::from_parts(parts, Body::from(bytes));
        }
        if let Some(s) = session {
            req.extensions_mut().insert(s);
        }
        return Ok(req);
    }
    let Some(session) = session else {
        return Err(if changing {
            error_page(
                StatusCode::FORBIDDEN,
                "Sitzung abgelaufen",
                "Ihre Sitzung ist abgelaufen oder Sie sind nicht angemeldet. Bitte melden Sie sich an und versuchen Sie es noch einmal.",
                None,
            )
        } else {
            Redirect::to("/console/anmelden").into_response()
        });
    };
    if changing {
        let (parts, body) = req.into_parts();
        let bytes = read_limited(body, body_limit(&c.hub, path), Some(&session)).await?;
        let header_token = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let token = match header_token {
            Some(t) => Some(t),
            None if content_type.starts_with("application/x-www-form-urlencoded") => {
                form_field(&bytes, "csrf")
            }
            // Upload forms (no JavaScript needed): the `csrf` part, which
            // the console's forms send first.
            None if content_type.starts_with("multipart/form-data") => {
                multipart_field(&parts, &bytes, "csrf").await
            }
            None => None,
        };
        if let Err(r) = security::check_csrf(&session.csrf, token.as_deref()) {
            return Err(refused(r, Some(&session)));
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(session);
    Ok(req)
}

/// The body, at most `limit` bytes; beyond it `413`.
async fn read_limited(
    body: Body,
    limit: usize,
    session: Option<&Session>,
) -> Result<axum::body::Bytes, Response> {
    to_bytes(body, limit).await.map_err(|_| {
        error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Zu groß",
            &format!(
                "Die Anfrage ist zu groß (höchstens {}).",
                human_bytes(limit as u64)
            ),
            session,
        )
    })
}

fn refused(r: Refusal, session: Option<&Session>) -> Response {
    tracing::warn!(reason = ?r, "console: state-changing request refused");
    error_page(
        StatusCode::FORBIDDEN,
        "Anfrage abgelehnt",
        r.german(),
        session,
    )
}

/// Was the request made by htmx (answer with a fragment)?
pub(crate) fn is_htmx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}

fn sign_in_page(status: StatusCode, error: Option<&str>) -> Response {
    layout::respond(
        status,
        page(
            "Anmelden",
            None,
            Nav::None,
            html! {
                div.signin {
                    @if let Some(e) = error {
                        (layout::notice("error", html! { p { (e) } }))
                    }
                    p { "Melden Sie sich mit Ihrem API-Token der Drehscheibe an. Betriebs-Tokens sehen alles, Kommunen-Tokens ihre eigene Kommune." }
                    form.stack method="post" action=(SIGN_IN_PATH) {
                        div.field {
                            label for="token" { "API-Token" }
                            input #token type="password" name="token" required autocomplete="current-password" spellcheck="false";
                        }
                        div.actions { button type="submit" { "Anmelden" } }
                    }
                }
            },
        ),
    )
}

async fn sign_in_form(session: Option<Extension<Session>>) -> Response {
    if session.is_some() {
        return Redirect::to("/console").into_response();
    }
    sign_in_page(StatusCode::OK, None)
}

#[derive(Deserialize)]
struct SignIn {
    #[serde(default)]
    token: String,
}

async fn sign_in(
    State(c): State<Console>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let Some(principal) = c.tokens.authenticate(form.token.trim()).cloned() else {
        tracing::info!("console: sign-in with an unknown token");
        return sign_in_page(
            StatusCode::UNAUTHORIZED,
            Some("Dieses Token ist nicht bekannt."),
        );
    };
    if matches!(principal.role, Role::Sender { .. }) {
        tracing::info!(token = %principal.name, "console: sign-in with a sender token refused");
        return sign_in_page(
            StatusCode::FORBIDDEN,
            Some("Mit einem Absender-Token (Rolle „sender“) kann man sich an der Konsole nicht anmelden. Bitte verwenden Sie ein Betriebs- oder Kommunen-Token."),
        );
    }
    // Whatever session this browser had ends here, whoever signs in now:
    // an id planted before the sign-in is worth nothing after it.
    if let Some(old) = security::session_id(&headers, c.settings.secure_cookie) {
        c.sessions.remove(&old);
    }
    tracing::info!(token = %principal.name, "console: signed in");
    let (id, _) = c.sessions.create(principal);
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                security::session_cookie(&id, c.settings.secure_cookie),
            ),
            (header::LOCATION, "/console".to_owned()),
        ],
    )
        .into_response()
}

async fn sign_out(State(c): State<Console>, headers: HeaderMap) -> Response {
    let tls = c.settings.secure_cookie;
    if let Some(id) = security::session_id(&headers, tls) {
        c.sessions.remove(&id);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, security::clear_cookie(tls)),
            (header::LOCATION, "/console/anmelden".to_owned()),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests;
