//! Kommunen and Verlauf: the configuration in force, a tenant file's
//! editor (check, save), export, the history with diffs, and rollback.
//! Everything goes through [`ConfigAdmin`](drehscheibe_engine::admin::ConfigAdmin),
//! and what a session may see of it through the engine's shared rules
//! ([`visible_files`], [`may_read_revisions_of`], [`revision_as_seen_by`],
//! [`summary_as_seen_by`]), the same as the JSON API's.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use drehscheibe_config::{ConnectorConfig, TenantConfig};
use drehscheibe_engine::admin::{
    download_name, may_read_revisions_of, revision_as_seen_by, summary_as_seen_by, visible_files,
    AdminError, Change, ConfigFile, FileKind, Revision, RevisionSummary,
};
use maud::{html, Markup};
use serde::Deserialize;

use crate::diff;
use crate::layout::{
    self, csrf_field, dash, not_found, notice, opt_text, page, table_wrap, time, Nav,
};
use crate::route_form::RouteForms;
use crate::session::Session;
use crate::Console;

/// Revisions per page of the history.
const HISTORY_PAGE: usize = 50;

/// Revisions shown on a Kommune's page.
const TENANT_HISTORY: usize = 20;

/// May the session see tenant `id`?
fn may_see(s: &Session, id: &str) -> bool {
    s.principal.tenant_scope().is_none_or(|own| own == id)
}

/// German title and status for a refused configuration call, and its
/// lines.
pub(crate) fn admin_error(e: &AdminError) -> (StatusCode, &'static str, Vec<String>) {
    match e {
        AdminError::Invalid(list) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Die Konfiguration lädt so nicht",
            list.clone(),
        ),
        AdminError::Conflict { path, current } => (
            StatusCode::CONFLICT,
            "Die Datei wurde inzwischen geändert",
            vec![format!(
                "{path} wurde geändert, seit Sie sie geöffnet haben (jetzt SHA-256 {current}). Ihr Text ist unten erhalten; vergleichen Sie ihn mit dem neuen Stand und übernehmen Sie Ihre Änderungen nach dem Neuladen der Seite."
            )],
        ),
        AdminError::ReadOnly(why) => (
            StatusCode::FORBIDDEN,
            "Diese Datei kann hier nicht geändert werden",
            vec![why.clone()],
        ),
        AdminError::NotFound(path) => (
            StatusCode::NOT_FOUND,
            "Datei nicht gefunden",
            vec![format!("Es gibt keine Konfigurationsdatei {path}.")],
        ),
        AdminError::NoRevision(id) => (
            StatusCode::NOT_FOUND,
            "Revision nicht gefunden",
            vec![format!("Es gibt keine Revision {id}.")],
        ),
        AdminError::Io(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Schreiben fehlgeschlagen",
            vec![format!(
                "Die Datei oder der Verlauf konnte nicht geschrieben werden: {why}"
            )],
        ),
    }
}

fn admin_error_notice(e: &AdminError) -> (StatusCode, Markup) {
    let (status, title, lines) = admin_error(e);
    (
        status,
        notice(
            "error",
            html! {
                p { strong { (title) } }
                @if lines.len() == 1 { p { (lines[0]) } }
                @else { ul { @for l in &lines { li { code { (l) } } } } }
            },
        ),
    )
}

fn admin_error_page(s: &Session, e: &AdminError) -> Response {
    if matches!(e, AdminError::NotFound(_) | AdminError::NoRevision(_)) {
        return not_found(Some(s));
    }
    let (status, body) = admin_error_notice(e);
    layout::respond(status, page("Fehler", Some(s), Nav::None, body))
}

/// The files the session may read, their texts as it may see them
/// (inline secrets masked for tenants).
async fn files(c: &Console, s: &Session) -> Result<Vec<ConfigFile>, Response> {
    visible_files(c.admin.as_ref(), &s.principal)
        .await
        .map_err(|e| admin_error_page(s, &e))
}

fn tenant_file<'a>(files: &'a [ConfigFile], tenant: &str) -> Option<&'a ConfigFile> {
    files
        .iter()
        .find(|f| f.kind == FileKind::Tenant && f.tenant.as_deref() == Some(tenant))
}

// ---------------------------------------------------------------- Kommunen

pub(crate) async fn tenants(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
) -> Response {
    let config = c.admin.current();
    let visible: Vec<&TenantConfig> = config
        .tenants
        .iter()
        .filter(|t| may_see(&s, &t.id))
        .collect();
    let body = html! {
        @if visible.is_empty() {
            p { "Keine Kommunen konfiguriert." }
        } @else {
            (table_wrap("Kommunen", html! {
                table {
                    thead { tr {
                        th scope="col" { "Kommune" } th scope="col" { "Name" } th scope="col" { "AGS" } th scope="col" { "ARS" }
                        th scope="col" .num { "Routen" } th scope="col" .num { "Verbindungen" }
                    } }
                    tbody { @for t in &visible { tr {
                        th scope="row" { a href=(format!("/console/kommunen/{}", t.id)) { (t.id) } }
                        td { (t.name) }
                        td { (opt_text(t.ags.as_deref())) }
                        td { (opt_text(t.ars.as_deref())) }
                        td.num { (t.routes.len()) }
                        td.num { (t.connectors.len()) }
                    } } }
                }
            }))
        }
    };
    layout::respond(
        StatusCode::OK,
        page("Kommunen", Some(&s), Nav::Tenants, body),
    )
}

/// What the editor shows: the text (as on disk, or as submitted), the
/// digest it was made on, the comment, and the outcome of the last
/// check or save.
struct Editor {
    text: String,
    expect: String,
    comment: String,
    outcome: Option<Markup>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TenantQuery {
    gespeichert: Option<u64>,
}

pub(crate) async fn tenant(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    Query(q): Query<TenantQuery>,
) -> Response {
    let outcome = q.gespeichert.map(|rev| {
        notice(
            "ok",
            html! { p { "Gespeichert und angewendet als " a href=(format!("/console/verlauf/{rev}")) { "Revision " (rev) } "." } },
        )
    });
    tenant_page(&c, &s, &id, StatusCode::OK, None, outcome).await
}

async fn tenant_page(
    c: &Console,
    s: &Session,
    id: &str,
    status: StatusCode,
    editor: Option<Editor>,
    outcome: Option<Markup>,
) -> Response {
    if !may_see(s, id) {
        return not_found(Some(s));
    }
    let config = c.admin.current();
    let files = match files(c, s).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let tenant = config.tenant(id);
    let file = tenant_file(&files, id);
    if tenant.is_none() && file.is_none() {
        return not_found(Some(s));
    }
    let history = match file {
        Some(f) => summaries(
            s,
            c.admin
                .history(Some(&f.path), None, TENANT_HISTORY)
                .await
                .unwrap_or_default(),
        ),
        None => Vec::new(),
    };
    let title = tenant.map_or_else(|| format!("Kommune {id}"), |t| t.name.clone());
    // The route forms: operators, on a file the console may write.
    let routes = match (tenant, file) {
        (Some(t), Some(f)) if s.principal.may_replay() && f.editable => Some(RouteForms {
            session: s,
            tenant: t,
            expect_sha256: &f.sha256,
            depot: c.admin.depot(),
        }),
        _ => None,
    };
    let body = html! {
        p { a href="/console/kommunen" { "← Alle Kommunen" } }
        @if let Some(o) = &outcome { (o) }
        @match tenant {
            Some(t) => (tenant_config(t, routes.as_ref())),
            None => (notice("warn", html! { p { "Diese Kommune ist nicht in Kraft: ihre Datei lädt nicht oder ist neu. Unten steht die Datei, wie sie auf der Platte liegt." } })),
        }
        @if let Some(f) = file {
            (file_section(s, id, f, editor))
            section aria-labelledby="verlauf" {
                h2 #verlauf { "Verlauf" }
                (revision_table(s, &history, false))
                p { a href="/console/verlauf" { "Gesamter Verlauf" } }
            }
        }
    };
    layout::respond(status, page(&title, Some(s), Nav::Tenants, body))
}

fn tenant_config(t: &TenantConfig, routes: Option<&RouteForms<'_>>) -> Markup {
    html! {
        section aria-labelledby="stammdaten" {
            h2 #stammdaten { "Stammdaten" }
            dl.fields {
                dt { "Kennung" } dd { code { (t.id) } }
                dt { "Name" } dd { (t.name) }
                dt { "AGS" } dd { (opt_text(t.ags.as_deref())) }
                dt { "ARS" } dd { (opt_text(t.ars.as_deref())) }
                dt { "Weitere Kennungen" } dd {
                    @if t.org_ids.is_empty() { (dash()) } @else { (t.org_ids.join(", ")) }
                }
                dt { "Virenprüfung der Ausgaben" } dd { @match t.scan {
                    Some(m) => code { (format!("{m:?}").to_lowercase()) },
                    None => "Voreinstellung",
                } }
            }
        }
        section aria-labelledby="stellen" {
            h2 #stellen { "Stellen" }
            @if t.stellen.is_empty() { p { "Keine Stellen." } } @else {
                (table_wrap("Stellen", html! {
                    table {
                        thead { tr { th scope="col" { "Kennung" } th scope="col" { "Name" } th scope="col" { "E-Mail" } } }
                        tbody { @for st in &t.stellen { tr {
                            th scope="row" { (st.id) } td { (st.name) } td { (opt_text(st.email.as_deref())) }
                        } } }
                    }
                }))
            }
        }
        section aria-labelledby="verbindungen" {
            h2 #verbindungen { "Verbindungen" }
            @if t.connectors.is_empty() { p { "Keine Verbindungen." } } @else {
                (table_wrap("Verbindungen", html! {
                    table {
                        thead { tr {
                            th scope="col" { "Kennung" } th scope="col" { "Art" } th scope="col" { "Fachverfahren" }
                            th scope="col" .num { "Parallel" } th scope="col" { "Zeitlimit" } th scope="col" { "Wiederholungen" }
                            th scope="col" { "Einstellungen" }
                        } }
                        tbody { @for k in &t.connectors { tr {
                            th scope="row" { (k.id) }
                            td { (k.kind) }
                            td { (opt_text(k.fachverfahren.as_deref())) }
                            td.num { (k.max_concurrency) }
                            td { (format!("{:?}", k.timeout)) }
                            td { (k.retry.max_attempts) " Versuche, " (format!("{:?}", k.retry.initial_backoff)) " bis " (format!("{:?}", k.retry.max_backoff)) }
                            td { code { (settings_summary(k)) } }
                        } } }
                    }
                }))
            }
        }
        section aria-labelledby="routen" {
            h2 #routen { "Routen" }
            @if t.routes.is_empty() { p { "Keine Routen." } } @else {
                (table_wrap("Routen", html! {
                    table {
                        thead { tr {
                            th scope="col" { "Leistung" } th scope="col" { "Regel (Version)" } th scope="col" { "Stelle" }
                            th scope="col" { "Ziele" } th scope="col" { "Parameter" } th scope="col" { "Umgelenkt an" }
                        } }
                        tbody { @for r in &t.routes { tr {
                            th scope="row" { code { (r.leistung) }
                                @if let Some(d) = &r.description { br; span.muted { (d) } } }
                            td { @match &r.rule { Some(rule) => code { (rule.id) "@" (rule.version) }, None => (dash()) } }
                            td { (opt_text(r.stelle.as_deref())) }
                            td { @if r.targets.is_empty() { (dash()) } @else {
                                ul { @for (role, conn) in &r.targets { li { (role) " → " code { (conn) } } } }
                            } }
                            td { @if r.params.is_empty() { (dash()) } @else {
                                ul { @for (k, v) in &r.params { li { code { (k) } " = " (v) } } }
                            } }
                            td { @match &r.delegate_to {
                                Some(d) => a href=(format!("/console/kommunen/{d}")) { (d) },
                                None => (dash()),
                            } }
                        } } }
                    }
                }))
                @if let Some(forms) = routes { (forms.render()) }
            }
        }
    }
}

/// The connector type's settings in their `Debug` form (which shows no
/// secret), URL credentials masked, shortened.
fn settings_summary(k: &ConnectorConfig) -> String {
    let s = redact_userinfo(&format!("{:?}", k.factory));
    if s.chars().count() > 400 {
        let cut: String = s.chars().take(400).collect();
        format!("{cut} …")
    } else {
        s
    }
}

/// `scheme://user:pass@host` → `scheme://***@host`.
fn redact_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(['/', '"', ' ', ',', ')', '}', ']'])
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&tail[at..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn file_section(s: &Session, tenant: &str, f: &ConfigFile, editor: Option<Editor>) -> Markup {
    let operator = s.principal.may_replay();
    let editable = operator && f.editable;
    let ed = editor.unwrap_or_else(|| Editor {
        text: f.text.clone(),
        expect: f.sha256.clone(),
        comment: String::new(),
        outcome: None,
    });
    html! {
        section aria-labelledby="datei" {
            h2 #datei { "Datei " code { (f.path) } }
            @if let Some(o) = &ed.outcome { (o) }
            @if editable {
                form.stack method="post" action=(format!("/console/kommunen/{tenant}/speichern")) {
                    (csrf_field(s))
                    input type="hidden" name="expect_sha256" value=(ed.expect);
                    div.field {
                        label for="text" { "Inhalt von " (f.path) " (TOML)" }
                        textarea #text name="text" spellcheck="false" autocapitalize="off" autocomplete="off" aria-describedby="text-hint" { "\n" (ed.text) }
                        p.hint #text-hint { "Änderungen werden wie mit „drehscheibe config check“ geprüft, dann geschrieben, im Verlauf festgehalten und ohne Neustart angewendet." }
                    }
                    div.field {
                        label for="comment" { "Kommentar" }
                        input #comment type="text" name="comment" value=(ed.comment);
                    }
                    div.actions {
                        button.secondary type="submit" formaction=(format!("/console/kommunen/{tenant}/pruefen")) { "Prüfen" }
                        button type="submit" { "Speichern und anwenden" }
                        a href=(format!("/console/kommunen/{tenant}/export")) { "Exportieren" }
                    }
                }
            } @else {
                p.hint {
                    @if !operator { "Nur Lesezugriff." }
                    @else { "Bearbeiten ist abgeschaltet (" code { "[console] editable = false" } "); die Datei wird außerhalb der Konsole verwaltet." }
                }
                div.field {
                    label for="text" { "Inhalt von " (f.path) " (TOML, nur lesen)" }
                    textarea #text readonly spellcheck="false" { "\n" (f.text) }
                }
                p { a href=(format!("/console/kommunen/{tenant}/export")) { "Exportieren" } }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct EditForm {
    #[serde(default)]
    text: String,
    #[serde(default)]
    expect_sha256: String,
    #[serde(default)]
    comment: String,
}

/// The file of `tenant` for an operator's change; else the answer.
pub(crate) async fn editable_file(
    c: &Console,
    s: &Session,
    tenant: &str,
) -> Result<ConfigFile, Response> {
    if !may_see(s, tenant) {
        return Err(not_found(Some(s)));
    }
    let files = files(c, s).await?;
    let Some(file) = tenant_file(&files, tenant).cloned() else {
        return Err(not_found(Some(s)));
    };
    if !s.principal.may_replay() {
        return Err(layout::forbidden(
            Some(s),
            "Kommunen-Tokens sehen ihre Konfiguration nur; ändern darf sie der Betrieb.",
        ));
    }
    Ok(file)
}

/// Browsers send textarea text with CRLF line ends: keep the file's own.
fn normalise(submitted: &str, on_disk: &str) -> String {
    if on_disk.contains("\r\n") {
        submitted.to_owned()
    } else {
        submitted.replace("\r\n", "\n")
    }
}

fn change_of(file: &ConfigFile, form: &EditForm) -> Change {
    let expect = form.expect_sha256.trim();
    Change {
        path: file.path.clone(),
        text: normalise(&form.text, &file.text),
        expect_sha256: (!expect.is_empty()).then(|| expect.to_owned()),
        comment: form.comment.trim().to_owned(),
    }
}

fn editor_after(change: &Change, form: &EditForm, outcome: Markup) -> Editor {
    Editor {
        text: change.text.clone(),
        expect: form.expect_sha256.clone(),
        comment: form.comment.clone(),
        outcome: Some(outcome),
    }
}

/// The notice for a refused check or save; a conflict also shows how the
/// file on disk differs from the submitted text.
fn refusal(e: &AdminError, file: &ConfigFile, change: &Change) -> (StatusCode, Markup) {
    let (status, box_) = admin_error_notice(e);
    if matches!(e, AdminError::Conflict { .. }) {
        let text = diff::unified(
            Some(&file.text),
            Some(&change.text),
            &format!("{} (jetzt auf der Platte)", file.path),
            &format!("{} (Ihr Text)", file.path),
        );
        return (
            status,
            html! { (box_) h3 { "Unterschied zum neuen Stand" } (diff::show(&text)) },
        );
    }
    (status, box_)
}

pub(crate) async fn check(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Path(tenant): Path<String>,
    Form(form): Form<EditForm>,
) -> Response {
    let file = match editable_file(&c, &s, &tenant).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let change = change_of(&file, &form);
    let (status, outcome) = match c.admin.check(&change).await {
        Ok(()) => (
            StatusCode::OK,
            notice(
                "ok",
                html! { p { strong { "Gültig." } " Die Konfiguration lädt mit diesem Text. Noch ist nichts gespeichert." } },
            ),
        ),
        Err(e) => refusal(&e, &file, &change),
    };
    let editor = editor_after(&change, &form, outcome);
    tenant_page(&c, &s, &tenant, status, Some(editor), None).await
}

pub(crate) async fn save(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Path(tenant): Path<String>,
    Form(form): Form<EditForm>,
) -> Response {
    let file = match editable_file(&c, &s, &tenant).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let change = change_of(&file, &form);
    commit(&c, &s, &tenant, &file, change, &form.expect_sha256, None).await
}

/// Write `change` of `tenant`'s `file` through
/// [`ConfigAdmin::change`](drehscheibe_engine::admin::ConfigAdmin::change)
/// (check, write, record, apply): on success back to the Kommune with the
/// revision; refused, the Kommune's page with the refusal and the
/// candidate text in the editor (`expect`: the digest the form was made
/// on, as submitted). Every console change of a tenant file ends here —
/// the editor's and the route form's; `top`: a notice above the page for
/// a change not made in the editor.
pub(crate) async fn commit(
    c: &Console,
    s: &Session,
    tenant: &str,
    file: &ConfigFile,
    change: Change,
    expect: &str,
    top: Option<Markup>,
) -> Response {
    match c.admin.change(&change, &s.principal.name).await {
        Ok(rev) => {
            tracing::info!(path = %change.path, revision = rev.id, author = %s.principal.name, "console: configuration changed");
            Redirect::to(&format!(
                "/console/kommunen/{tenant}?gespeichert={}",
                rev.id
            ))
            .into_response()
        }
        Err(AdminError::NotFound(_)) => not_found(Some(s)),
        Err(e) => {
            let (status, outcome) = refusal(&e, file, &change);
            let editor = Editor {
                text: change.text,
                expect: expect.to_owned(),
                comment: change.comment,
                outcome: Some(outcome),
            };
            tenant_page(c, s, tenant, status, Some(editor), top).await
        }
    }
}

/// `GET …/export`: the tenant file as a download.
pub(crate) async fn export(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Path(tenant): Path<String>,
) -> Response {
    if !may_see(&s, &tenant) {
        return not_found(Some(&s));
    }
    let files = match files(&c, &s).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(file) = tenant_file(&files, &tenant) else {
        return not_found(Some(&s));
    };
    let name = download_name(&file.path);
    let mut resp = file.text.clone().into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/toml; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

// ----------------------------------------------------------------- Verlauf

/// Which revisions a session may list: operators all (`None`), a tenant
/// those of its own file (`Some(None)`: it has none).
async fn history_scope(c: &Console, s: &Session) -> Result<Option<Option<String>>, Response> {
    match s.principal.tenant_scope() {
        None => Ok(None),
        Some(own) => {
            let files = files(c, s).await?;
            Ok(Some(tenant_file(&files, own).map(|f| f.path.clone())))
        }
    }
}

/// History entries as the session may see them (no digests for tenants).
fn summaries(s: &Session, revs: Vec<RevisionSummary>) -> Vec<RevisionSummary> {
    revs.into_iter()
        .map(|r| summary_as_seen_by(&s.principal, r))
        .collect()
}

/// What a revision did to its file, from its digests (operators only:
/// tenants see no digests in lists, and a missing one says nothing then).
fn change_kind(r: &RevisionSummary) -> &'static str {
    match (&r.old_sha256, &r.new_sha256) {
        (None, Some(_)) => "neu",
        (Some(_), None) => "gelöscht",
        (None, None) => "–",
        (Some(_), Some(_)) => "geändert",
    }
}

/// The first 12 hex digits of a digest.
fn short_digest(d: Option<&str>) -> Markup {
    match d {
        Some(d) => html! { code title=(d) { (d.get(..12).unwrap_or(d)) } },
        None => dash(),
    }
}

fn revision_table(s: &Session, revs: &[RevisionSummary], with_path: bool) -> Markup {
    if revs.is_empty() {
        return html! { p { "Noch keine Revisionen." } };
    }
    // Digests (and what they tell: new, removed) for operators only.
    let digests = s.principal.may_replay();
    table_wrap(
        "Revisionen",
        html! {
            table {
                thead { tr {
                    th scope="col" { "Revision" }
                    @if with_path { th scope="col" { "Datei" } }
                    th scope="col" { "Zeit" } th scope="col" { "Autor" } th scope="col" { "Kommentar" }
                    @if digests { th scope="col" { "Art" } th scope="col" { "SHA-256 nachher" } }
                } }
                tbody { @for r in revs { tr {
                    th scope="row" { a href=(format!("/console/verlauf/{}", r.id)) { "Revision " (r.id) } }
                    @if with_path { td { code { (r.path) } } }
                    td { (time(&r.at)) }
                    td { (r.author) }
                    td { (opt_text(Some(r.comment.as_str()))) }
                    @if digests {
                        td { (change_kind(r)) }
                        td { (short_digest(r.new_sha256.as_deref())) }
                    }
                } } }
            }
        },
    )
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct HistoryQuery {
    vor: Option<u64>,
}

pub(crate) async fn history(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let scope = match history_scope(&c, &s).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let revs = match &scope {
        None => c.admin.history(None, q.vor, HISTORY_PAGE).await,
        Some(Some(path)) => c.admin.history(Some(path), q.vor, HISTORY_PAGE).await,
        Some(None) => Ok(Vec::new()),
    };
    let revs = match revs {
        Ok(r) => summaries(&s, r),
        Err(e) => return admin_error_page(&s, &e),
    };
    let older = (revs.len() >= HISTORY_PAGE)
        .then(|| {
            revs.last()
                .map(|r| format!("/console/verlauf?vor={}", r.id))
        })
        .flatten();
    let body = html! {
        p.hint { "Jede Änderung einer Konfigurationsdatei – über die Konsole, die API oder von Hand – ist eine Revision. Neueste zuerst." }
        (revision_table(&s, &revs, true))
        nav.pager aria-label="Seiten" {
            @if q.vor.is_some() { a href="/console/verlauf" { "Neueste" } }
            @if let Some(link) = &older { a href=(link) rel="next" { "Ältere" } }
        }
    };
    layout::respond(
        StatusCode::OK,
        page("Verlauf", Some(&s), Nav::History, body),
    )
}

/// Revision `id` (with its texts) as the session may see it, if it may.
async fn visible_revision(c: &Console, s: &Session, id: u64) -> Result<Revision, Response> {
    let rev = c
        .admin
        .revision(id)
        .await
        .map_err(|e| admin_error_page(s, &e))?;
    match may_read_revisions_of(c.admin.as_ref(), &s.principal, &rev.path).await {
        Ok(true) => Ok(revision_as_seen_by(&s.principal, rev)),
        Ok(false) => Err(not_found(Some(s))),
        Err(e) => Err(admin_error_page(s, &e)),
    }
}

/// A revision's digest on its page: from its texts (a missing text, not
/// a missing digest, means the file was new or removed).
fn revision_digest(text: Option<&str>, digest: Option<&str>, missing: &'static str) -> Markup {
    match (text, digest) {
        (None, _) => html! { span.muted { (missing) } },
        (Some(_), Some(d)) => html! { (d) },
        (Some(_), None) => dash(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RevisionQuery {
    zurueckgesetzt: Option<u64>,
}

pub(crate) async fn revision(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    Query(q): Query<RevisionQuery>,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return not_found(Some(&s));
    };
    let rev = match visible_revision(&c, &s, id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let files = match files(&c, &s).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let file = files.iter().find(|f| f.path == rev.path);
    let may_roll_back =
        s.principal.may_replay() && rev.old_text.is_some() && file.is_some_and(|f| f.editable);
    let text = diff::unified(
        rev.old_text.as_deref(),
        rev.new_text.as_deref(),
        &format!("a/{}", rev.path),
        &format!("b/{}", rev.path),
    );
    let body = html! {
        p { a href="/console/verlauf" { "← Gesamter Verlauf" } }
        @if let Some(from) = q.zurueckgesetzt {
            (notice("ok", html! { p { "Revision " (from) " zurückgenommen; das ist Revision " (rev.id) "." } }))
        }
        dl.fields {
            dt { "Datei" } dd {
                code { (rev.path) }
                @if let Some(t) = file.and_then(|f| f.tenant.as_deref()) {
                    " (" a href=(format!("/console/kommunen/{t}")) { "Kommune " (t) } ")"
                }
            }
            dt { "Zeit" } dd { (time(&rev.at)) }
            dt { "Autor" } dd { (rev.author) }
            dt { "Kommentar" } dd { (opt_text(Some(rev.comment.as_str()))) }
            dt { "SHA-256 vorher" } dd.mono { (revision_digest(rev.old_text.as_deref(), rev.old_sha256.as_deref(), "neue Datei")) }
            dt { "SHA-256 nachher" } dd.mono { (revision_digest(rev.new_text.as_deref(), rev.new_sha256.as_deref(), "Datei gelöscht")) }
            dt { "Konfigurationsstand danach" } dd.mono { (rev.config_digest) }
        }
        h2 { "Änderungen" }
        (diff::show(&text))
        @if may_roll_back {
            h2 { "Zurücknehmen" }
            form.stack method="post" action=(format!("/console/verlauf/{}/zuruecksetzen", rev.id))
                data-confirm="Diese Änderung zurücknehmen?" {
                (csrf_field(&s))
                p.hint { "Schreibt den Text vor dieser Revision erneut, als neue Revision (der Verlauf wächst nur); spätere Änderungen derselben Datei werden damit ebenfalls zurückgenommen. Der Text wird vorher geprüft wie bei jeder Änderung." }
                div.field {
                    label for="comment" { "Kommentar (optional)" }
                    input #comment type="text" name="comment";
                }
                div.actions { button.danger type="submit" { "Diese Änderung zurücknehmen" } }
            }
        }
    };
    layout::respond(
        StatusCode::OK,
        page(
            &format!("Revision {}", rev.id),
            Some(&s),
            Nav::History,
            body,
        ),
    )
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RollbackForm {
    #[serde(default)]
    comment: String,
}

pub(crate) async fn rollback(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<RollbackForm>,
) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return not_found(Some(&s));
    };
    if let Err(r) = visible_revision(&c, &s, id).await {
        return r;
    }
    if !s.principal.may_replay() {
        return layout::forbidden(Some(&s), "Zurücksetzen darf nur der Betrieb.");
    }
    match c
        .admin
        .rollback(id, &s.principal.name, form.comment.trim())
        .await
    {
        Ok(rev) => {
            tracing::info!(revision = id, new = rev.id, author = %s.principal.name, "console: configuration rolled back");
            Redirect::to(&format!("/console/verlauf/{}?zurueckgesetzt={id}", rev.id))
                .into_response()
        }
        Err(e) => {
            let (status, body) = admin_error_notice(&e);
            if matches!(e, AdminError::NotFound(_) | AdminError::NoRevision(_)) {
                return not_found(Some(&s));
            }
            layout::respond(
                status,
                page(
                    "Zurücksetzen fehlgeschlagen",
                    Some(&s),
                    Nav::History,
                    html! { (body) p { a href=(format!("/console/verlauf/{id}")) { "Zurück zur Revision " (id) } } },
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_masked() {
        assert_eq!(
            redact_userinfo(r#"Http { url: "https://user:pw@fv.example/x", auth: None }"#),
            r#"Http { url: "https://***@fv.example/x", auth: None }"#
        );
        assert_eq!(
            redact_userinfo(r#"url: "http://fv.example:8080/a@b""#),
            r#"url: "http://fv.example:8080/a@b""#
        );
    }

    #[test]
    fn browser_line_ends_do_not_change_the_file() {
        assert_eq!(normalise("a = 1\r\nb = 2\r\n", "a = 1\n"), "a = 1\nb = 2\n");
        assert_eq!(normalise("a = 1\r\n", "a = 0\r\n"), "a = 1\r\n");
    }

    #[test]
    fn admin_errors_map_to_statuses() {
        let cases = [
            (AdminError::Invalid(vec!["x".into()]), 422),
            (
                AdminError::Conflict {
                    path: "p".into(),
                    current: "c".into(),
                },
                409,
            ),
            (AdminError::ReadOnly("r".into()), 403),
            (AdminError::NotFound("p".into()), 404),
            (AdminError::NoRevision(3), 404),
            (AdminError::Io("disk".into()), 503),
        ];
        for (e, status) in cases {
            assert_eq!(admin_error(&e).0.as_u16(), status, "{e:?}");
        }
        let (_, _, lines) = admin_error(&AdminError::Invalid(vec!["a".into(), "b".into()]));
        assert_eq!(lines, ["a", "b"]);
    }
}
