//! Regeldepot: every rule version with the routes that pin it, one rule's
//! versions, the file-by-file diff of two versions, and the publication
//! of a new version (a ZIP of the package; its own test cases must pass).
//! The same calls as `GET/POST /api/v1/rules` and
//! `GET /api/v1/rules/{id}/diff`: [`insight::depot_overview`],
//! [`insight::rule_diff`], [`ConfigAdmin::publish_rule`]. A tenant sees
//! every package but only its own routes' pins, and cannot publish.
//!
//! [`ConfigAdmin::publish_rule`]: drehscheibe_engine::admin::ConfigAdmin::publish_rule

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use drehscheibe_engine::admin::{AdminError, PublishedRule, MAX_RULE_ARCHIVE_BYTES};
use drehscheibe_engine::insight::{self, FileDiff, RuleVersionView};
use drehscheibe_rules::{Depot, RulePackage};
use maud::{html, Markup};
use serde::Deserialize;

use crate::config_pages::admin_error;
use crate::layout::{self, csrf_field, dash, not_found, notice, page, table_wrap, Nav};
use crate::session::Session;
use crate::{diff, human_bytes, Console, PUBLISH_PATH};

/// The depot's versions as the session may see them, grouped by rule id
/// (ids sorted, versions newest first). The overview lists each
/// package's files, so it runs off the async threads.
async fn overview(c: &Console, s: &Session) -> BTreeMap<String, Vec<RuleVersionView>> {
    let (depot, config) = (c.admin.depot(), c.admin.current());
    let scope = s.principal.tenant_scope().map(str::to_owned);
    let views = tokio::task::spawn_blocking(move || {
        insight::depot_overview(&depot, &config, scope.as_deref())
    })
    .await
    .unwrap_or_else(|e| {
        tracing::error!(error = %e, "console: depot overview failed");
        Vec::new()
    });
    let mut by_id: BTreeMap<String, Vec<RuleVersionView>> = BTreeMap::new();
    for v in views {
        by_id.entry(v.id.clone()).or_default().push(v);
    }
    // The depot lists versions in ascending order.
    for versions in by_id.values_mut() {
        versions.reverse();
    }
    by_id
}

/// May the session publish, and if not, why not (`None`: it may).
async fn publish_refusal(c: &Console, s: &Session) -> Option<&'static str> {
    if !s.principal.may_replay() {
        return Some("Regelversionen veröffentlichen darf nur der Betrieb.");
    }
    // As for the tenant files: editable unless `[console] editable = false`.
    match c.admin.files().await {
        Ok(files) if files.iter().any(|f| f.editable) => None,
        Ok(_) => Some("Veröffentlichen ist abgeschaltet ([console] editable = false): das Regeldepot wird außerhalb der Konsole verwaltet."),
        Err(_) => Some("Die Konfigurationsdateien sind gerade nicht lesbar; bitte versuchen Sie es später noch einmal."),
    }
}

fn pins(v: &RuleVersionView) -> Markup {
    if v.pinned_by.is_empty() {
        return dash();
    }
    html! {
        ul.plain { @for p in &v.pinned_by { li {
            a href=(format!("/console/kommunen/{}", p.tenant)) { (p.tenant) }
            " · Leistung " code { (p.leistung) } " · " code { (p.requirement) }
        } } }
    }
}

fn versions_table(id: &str, versions: &[RuleVersionView], with_files: bool) -> Markup {
    table_wrap(
        &format!("Versionen von {id}"),
        html! {
            table {
                thead { tr {
                    th scope="col" { "Version" } th scope="col" { "Titel" } th scope="col" { "Ausgaben" }
                    th scope="col" .num { "Priorität" } th scope="col" { "Zustand" } th scope="col" { "Verwendet von" }
                    @if with_files { th scope="col" { "Dateien" } }
                } }
                tbody { @for v in versions { tr {
                    th scope="row" { code { (v.version) } }
                    td { (v.title) }
                    td { @if v.outputs.is_empty() { (dash()) } @else {
                        @for (i, o) in v.outputs.iter().enumerate() { @if i > 0 { ", " } code { (o) } }
                    } }
                    td.num { (v.priority) }
                    td { @match &v.unavailable {
                        Some(why) => { span.no { "nicht ladbar:" } " " (why) },
                        None => span.yes { "bereit" },
                    } }
                    td { (pins(v)) }
                    @if with_files { td {
                        details {
                            summary { (v.files.len()) " Dateien" }
                            ul.plain { @for f in &v.files { li { code { (f) } } } }
                        }
                    } }
                } } }
            }
        },
    )
}

fn publish_form(s: &Session) -> Markup {
    html! {
        form.stack method="post" action=(PUBLISH_PATH) enctype="multipart/form-data" {
            (csrf_field(s))
            div.field {
                label for="archiv" { "Regelpaket (ZIP-Archiv)" }
                input #archiv type="file" name="archiv" accept=".zip,application/zip" required aria-describedby="archiv-hint";
                p.hint #archiv-hint {
                    "Ein ZIP-Archiv mit " code { "rule.toml" } " in der Wurzel oder in seinem einzigen Ordner, höchstens "
                    (human_bytes(MAX_RULE_ARCHIVE_BYTES as u64)) ". Das Paket muss laden, seine eigenen Testfälle müssen bestehen, und seine Version muss neu sein (Versionen sind unveränderlich). Routen, deren Anforderung die neue Version trifft, verwenden sie sofort."
                }
            }
            div.actions { button type="submit" { "Prüfen und veröffentlichen" } }
        }
    }
}

async fn list_page(
    c: &Console,
    s: &Session,
    status: StatusCode,
    outcome: Option<Markup>,
) -> Response {
    let by_id = overview(c, s).await;
    let refusal = publish_refusal(c, s).await;
    let body = html! {
        @if let Some(o) = &outcome { (o) }
        p.hint {
            "Alle Regelversionen im Depot. „Verwendet von“ nennt die Routen, deren Anforderung heute auf diese Version zeigt"
            @if s.principal.tenant_scope().is_some() { " (nur die Ihrer Kommune)" }
            "."
        }
        @if by_id.is_empty() { p { "Das Regeldepot ist leer." } }
        @for (id, versions) in &by_id {
            section aria-labelledby=(format!("regel-{id}")) {
                h2 #(format!("regel-{id}")) { a href=(format!("/console/regeldepot/{id}")) { (id) } }
                (versions_table(id, versions, false))
            }
        }
        @if s.principal.may_replay() {
            section aria-labelledby="veroeffentlichen" {
                h2 #veroeffentlichen { "Neue Regelversion veröffentlichen" }
                @match refusal {
                    None => (publish_form(s)),
                    Some(why) => p.hint { (why) },
                }
            }
        }
    };
    layout::respond(status, page("Regeldepot", Some(s), Nav::Depot, body))
}

pub(crate) async fn list(State(c): State<Console>, Extension(s): Extension<Session>) -> Response {
    list_page(&c, &s, StatusCode::OK, None).await
}

/// Version `v` (as written, e.g. `2.1.0`) of rule `id`.
fn package(depot: &Depot, id: &str, v: &str) -> Option<Arc<RulePackage>> {
    let v = v.trim();
    depot
        .packages()
        .into_iter()
        .find(|p| p.id() == id && p.version().to_string() == v)
}

fn compare_form(id: &str, versions: &[RuleVersionView], a: &str, b: &str) -> Markup {
    html! {
        form.inline method="get" action=(format!("/console/regeldepot/{id}/vergleich")) {
            div.field {
                label for="a" { "Von Version" }
                select #a name="a" {
                    @for v in versions { option value=(v.version) selected[v.version == a] { (v.version) } }
                }
            }
            div.field {
                label for="b" { "Zu Version" }
                select #b name="b" {
                    @for v in versions { option value=(v.version) selected[v.version == b] { (v.version) } }
                }
            }
            div.actions { button type="submit" { "Vergleichen" } }
        }
    }
}

pub(crate) async fn rule(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let Some(versions) = overview(&c, &s).await.remove(&id) else {
        return not_found(Some(&s));
    };
    // Newest first: compare the one before the newest with the newest.
    let b = versions
        .first()
        .map(|v| v.version.clone())
        .unwrap_or_default();
    let a = versions
        .get(1)
        .map_or_else(|| b.clone(), |v| v.version.clone());
    let title = versions
        .first()
        .map_or_else(|| id.clone(), |v| format!("Regel {id}: {}", v.title));
    let body = html! {
        p { a href="/console/regeldepot" { "← Regeldepot" } }
        h2 { "Versionen" }
        (versions_table(&id, &versions, true))
        @if versions.len() > 1 {
            h2 { "Zwei Versionen vergleichen" }
            (compare_form(&id, &versions, &a, &b))
        }
    };
    layout::respond(StatusCode::OK, page(&title, Some(&s), Nav::Depot, body))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CompareQuery {
    #[serde(default)]
    a: String,
    #[serde(default)]
    b: String,
}

fn change_name(change: &str) -> &'static str {
    match change {
        "added" => "hinzugefügt",
        "removed" => "entfernt",
        "changed" => "geändert",
        "unchanged" => "unverändert",
        _ => "anders",
    }
}

fn file_diffs(files: &[FileDiff]) -> Markup {
    let (same, changed): (Vec<&FileDiff>, Vec<&FileDiff>) =
        files.iter().partition(|f| f.change == "unchanged");
    html! {
        @if changed.is_empty() { p { "Die beiden Versionen haben dieselben Dateien mit demselben Inhalt." } }
        @for f in &changed {
            section.file-diff {
                h3 { code { (f.path) } " – " (change_name(f.change)) }
                @if f.diff.is_empty() { p.muted { "Kein Textunterschied darstellbar." } }
                @else { (diff::show(&f.diff)) }
            }
        }
        @if !same.is_empty() {
            h3 { "Unverändert" }
            ul.plain { @for f in &same { li { code { (f.path) } } } }
        }
    }
}

pub(crate) async fn compare(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    Query(q): Query<CompareQuery>,
) -> Response {
    let Some(versions) = overview(&c, &s).await.remove(&id) else {
        return not_found(Some(&s));
    };
    let depot = c.admin.depot();
    let (Some(pa), Some(pb)) = (package(&depot, &id, &q.a), package(&depot, &id, &q.b)) else {
        return not_found(Some(&s));
    };
    let (va, vb) = (pa.version().clone(), pb.version().clone());
    let (a, b) = (va.to_string(), vb.to_string());
    let rule_id = id.clone();
    let files =
        match tokio::task::spawn_blocking(move || insight::rule_diff(&depot, &rule_id, &va, &vb))
            .await
        {
            Ok(Ok(files)) => files,
            Ok(Err(_)) => return not_found(Some(&s)),
            Err(e) => {
                tracing::error!(error = %e, "console: rule diff failed");
                return layout::error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Vergleich fehlgeschlagen",
                    "Der Vergleich der beiden Versionen ist abgebrochen.",
                    Some(&s),
                );
            }
        };
    let body = html! {
        p { a href=(format!("/console/regeldepot/{id}")) { "← Regel " (id) } }
        (compare_form(&id, &versions, &a, &b))
        p { "Von " code { (id) "@" (a) } " zu " code { (id) "@" (b) } ", Datei für Datei." }
        (file_diffs(&files))
    };
    layout::respond(
        StatusCode::OK,
        page(&format!("{id}: {a} → {b}"), Some(&s), Nav::Depot, body),
    )
}

/// German notice for a refused publication.
fn publish_refused(e: &AdminError) -> (StatusCode, Markup) {
    let (status, title, lines) = match e {
        AdminError::Invalid(lines) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Das Regelpaket wurde nicht veröffentlicht",
            lines.clone(),
        ),
        AdminError::Conflict { path, .. } => (
            StatusCode::CONFLICT,
            "Diese Version gibt es schon",
            vec![format!(
                "{path} ist bereits veröffentlicht. Versionen sind unveränderlich: erhöhen Sie die Version in rule.toml und veröffentlichen Sie erneut."
            )],
        ),
        other => admin_error(other),
    };
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

fn published_notice(p: &PublishedRule) -> Markup {
    notice(
        "ok",
        html! {
            p {
                strong { "Veröffentlicht: " code { (p.id) "@" (p.version) } "." }
                " " (p.tests_passed) " Testfälle bestanden. Im Verlauf als "
                a href=(format!("/console/verlauf/{}", p.revision.id)) { "Revision " (p.revision.id) }
                " festgehalten; "
                a href=(format!("/console/regeldepot/{}", p.id)) { "zur Regel " (p.id) }
                "."
            }
        },
    )
}

/// `POST /console/regeldepot/veroeffentlichen`: the ZIP in part `archiv`.
pub(crate) async fn publish(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    mut form: Multipart,
) -> Response {
    if let Some(why) = publish_refusal(&c, &s).await {
        return layout::forbidden(Some(&s), why);
    }
    let mut archive = None;
    loop {
        match form.next_field().await {
            Ok(Some(field)) if field.name() == Some("archiv") => match field.bytes().await {
                Ok(b) => archive = Some(b),
                Err(e) => return unreadable(&c, &s, &e).await,
            },
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => return unreadable(&c, &s, &e).await,
        }
    }
    let archive = archive.unwrap_or_default();
    if archive.is_empty() {
        let outcome = notice(
            "error",
            html! { p { "Bitte wählen Sie ein ZIP-Archiv mit dem Regelpaket aus." } },
        );
        return list_page(&c, &s, StatusCode::UNPROCESSABLE_ENTITY, Some(outcome)).await;
    }
    if archive.len() > MAX_RULE_ARCHIVE_BYTES {
        let outcome = notice(
            "error",
            html! { p { "Das Archiv ist zu groß (höchstens " (human_bytes(MAX_RULE_ARCHIVE_BYTES as u64)) ")." } },
        );
        return list_page(&c, &s, StatusCode::PAYLOAD_TOO_LARGE, Some(outcome)).await;
    }
    match c.admin.publish_rule(archive, &s.principal.name).await {
        Ok(p) => {
            tracing::info!(rule = %p.id, version = %p.version, author = %s.principal.name, "console: rule version published");
            list_page(&c, &s, StatusCode::OK, Some(published_notice(&p))).await
        }
        Err(e) => {
            let (status, outcome) = publish_refused(&e);
            list_page(&c, &s, status, Some(outcome)).await
        }
    }
}

async fn unreadable(c: &Console, s: &Session, e: &impl std::fmt::Display) -> Response {
    let outcome = notice(
        "error",
        html! { p { "Das Formular ließ sich nicht lesen: " (e.to_string()) } },
    );
    list_page(c, s, StatusCode::BAD_REQUEST, Some(outcome)).await
}
