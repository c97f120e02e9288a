//! Nachrichten: list, detail with audit trail, payload download, replay
//! (one or the selected ones) and release from quarantine. The same Hub
//! and Store calls, and the same visibility rules, as the operations API.

use std::collections::HashSet;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use chrono::{DateTime, NaiveDateTime, Utc};
use drehscheibe_engine::{ReleaseError, ReplayError};
use drehscheibe_model::{AuditEvent, DeliveryState, MessageId, MessageRecord, MessageState};
use drehscheibe_store::{MessageFilter, StoreError};
use maud::{html, Markup};
use serde::Deserialize;

use crate::layout::{
    self, csrf_field, dash, error_page, not_found, notice, opt_text, opt_time, page, state_badge,
    state_name, table_wrap, time, Nav,
};
use crate::session::Session;
use crate::{is_htmx, Console};

/// Messages per page of the list.
const PAGE_SIZE: usize = 50;

/// Most messages one "replay selected" request handles.
const MAX_SELECTED: usize = 500;

fn actor(s: &Session) -> String {
    format!("operator:{}", s.principal.name)
}

pub(crate) fn storage_error(s: &Session, e: &impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console: storage error");
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Speicher nicht erreichbar",
        &format!("Der Speicher der Drehscheibe antwortet nicht: {e}"),
        Some(s),
    )
}

/// The record `id` if the session may read it; else the answer (`404`
/// for what is not there and what is not the user's alike).
async fn load_visible(c: &Console, s: &Session, id: &str) -> Result<MessageRecord, Response> {
    let Ok(mid) = id.parse::<MessageId>() else {
        return Err(not_found(Some(s)));
    };
    match c.hub.store().get(mid).await {
        Ok(Some(rec)) if s.principal.may_read_record(&rec) => Ok(rec),
        Ok(_) => Err(not_found(Some(s))),
        Err(e) => Err(storage_error(s, &e)),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    state: Option<String>,
    tenant: Option<String>,
    since: Option<String>,
    until: Option<String>,
    leistung: Option<String>,
    correlation: Option<String>,
    after: Option<String>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `since` as typed: RFC 3339, or the `datetime-local` form
/// (`2025-03-01T14:05`, read as UTC).
fn parse_since(v: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, fmt) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    Err(format!(
        "„{v}“ ist kein Zeitpunkt (erwartet z. B. 2025-03-01T14:05)"
    ))
}

pub(crate) async fn list(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Query(q): Query<ListQuery>,
) -> Response {
    let mut errors = Vec::new();
    let state = match non_empty(&q.state).map(str::parse::<MessageState>) {
        None => None,
        Some(Ok(st)) => Some(st),
        Some(Err(_)) => {
            errors.push("Unbekannter Status.".to_owned());
            None
        }
    };
    let since = match non_empty(&q.since).map(parse_since) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
    };
    let until = match non_empty(&q.until).map(parse_since) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            errors.push(e);
            None
        }
    };
    let after = match non_empty(&q.after).map(str::parse::<MessageId>) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            errors.push("Ungültige Seitenmarke („after“).".to_owned());
            None
        }
    };
    // A tenant sees its own messages, whatever the query says (as the
    // JSON API, which refuses another tenant outright).
    let tenant = match s.principal.tenant_scope() {
        Some(own) => Some(own.to_owned()),
        None => non_empty(&q.tenant).map(str::to_owned),
    };
    let leistung = non_empty(&q.leistung).map(str::to_owned);
    let correlation = non_empty(&q.correlation).map(str::to_owned);
    let filter = MessageFilter {
        tenant: tenant.clone(),
        state,
        since,
        until,
        leistung: leistung.clone(),
        correlation: correlation.clone(),
        after,
        limit: PAGE_SIZE,
    };
    let page_result = if errors.is_empty() {
        match c.hub.store().list(&filter).await {
            Ok(p) => Some(p),
            Err(e) => return storage_error(&s, &e),
        }
    } else {
        None
    };
    let operator = s.principal.may_replay();
    let tenants: Vec<(String, String)> = c
        .admin
        .current()
        .tenants
        .iter()
        .map(|t| (t.id.clone(), t.name.clone()))
        .collect();
    let next_link = page_result.as_ref().and_then(|p| p.next).map(|next| {
        let mut qs = vec![format!("after={next}")];
        if let Some(st) = state {
            qs.push(format!("state={}", st.as_str()));
        }
        if let (Some(t), true) = (&tenant, operator) {
            qs.push(format!("tenant={}", urlencode(t)));
        }
        for (key, value) in [
            ("since", &q.since),
            ("until", &q.until),
            ("leistung", &q.leistung),
            ("correlation", &q.correlation),
        ] {
            if let Some(v) = non_empty(value) {
                qs.push(format!("{key}={}", urlencode(v)));
            }
        }
        format!("/console/nachrichten?{}", qs.join("&"))
    });
    let since_value = non_empty(&q.since).unwrap_or_default().to_owned();
    let until_value = non_empty(&q.until).unwrap_or_default().to_owned();

    let body = html! {
        @if !errors.is_empty() {
            (notice("error", html! { ul { @for e in &errors { li { (e) } } } }))
        }
        form.inline method="get" action="/console/nachrichten" role="search" aria-label="Nachrichten filtern" {
            div.field {
                label for="f-state" { "Status" }
                select #f-state name="state" {
                    option value="" selected[state.is_none()] { "alle" }
                    @for st in MessageState::ALL {
                        option value=(st.as_str()) selected[state == Some(st)] { (state_name(st)) }
                    }
                }
            }
            @if operator {
                div.field {
                    label for="f-tenant" { "Kommune" }
                    select #f-tenant name="tenant" {
                        option value="" selected[tenant.is_none()] { "alle" }
                        @for (id, name) in &tenants {
                            option value=(id) selected[tenant.as_deref() == Some(id.as_str())] { (name) " (" (id) ")" }
                        }
                    }
                }
            }
            div.field {
                label for="f-since" { "Empfangen ab (UTC)" }
                input #f-since type="datetime-local" name="since" value=(since_value);
            }
            div.field {
                label for="f-until" { "Empfangen vor (UTC)" }
                input #f-until type="datetime-local" name="until" value=(until_value);
            }
            div.field {
                label for="f-leistung" { "Leistung (LeiKa)" }
                input #f-leistung type="text" name="leistung" inputmode="numeric" value=(leistung.as_deref().unwrap_or_default());
            }
            div.field {
                label for="f-correlation" { "Vorgangs- oder Korrelationskennung" }
                input #f-correlation type="text" name="correlation" value=(correlation.as_deref().unwrap_or_default());
            }
            div.actions { button type="submit" { "Filtern" } a.button.secondary href="/console/nachrichten" { "Zurücksetzen" } }
        }
        @if let Some(p) = &page_result {
            @if p.items.is_empty() {
                p { "Keine Nachrichten gefunden." }
                @if let Some(link) = &next_link {
                    p { "Auf dieser Seite passte nichts zum Filter; die Suche kann " a href=(link) rel="next" { "weitergehen" } "." }
                }
            } @else {
                form method="post" action="/console/nachrichten/erneut"
                    hx-post="/console/nachrichten/erneut" hx-target="#ergebnis" hx-swap="innerHTML"
                    data-confirm="Die ausgewählten Nachrichten erneut einspielen?" {
                    (csrf_field(&s))
                    div #ergebnis aria-live="polite" {}
                    (table_wrap("Nachrichten", html! {
                        table {
                            caption { "Nachrichten, älteste zuerst" }
                            thead { tr {
                                @if operator {
                                    th scope="col" {
                                        input #alle type="checkbox" data-select-all="id";
                                        label.visually-hidden for="alle" { "alle auswählen" }
                                    }
                                }
                                th scope="col" { "Nachricht" }
                                th scope="col" { "Empfangen" }
                                th scope="col" { "Kanal" }
                                th scope="col" { "Kommune" }
                                th scope="col" { "Leistung" }
                                th scope="col" { "Status" }
                                th scope="col" { "Regel" }
                            } }
                            tbody {
                                @for r in &p.items {
                                    @let id = r.id().to_string();
                                    tr {
                                        @if operator {
                                            td {
                                                input type="checkbox" name="id" value=(id) id=(format!("sel-{id}"))
                                                    disabled[!r.state.is_replayable()];
                                                label.visually-hidden for=(format!("sel-{id}")) { "Nachricht " (id) " auswählen" }
                                            }
                                        }
                                        th scope="row" { a.mono href=(format!("/console/nachrichten/{id}")) { (id) } }
                                        td { (time(&r.envelope.received_at)) }
                                        td { (r.envelope.channel) }
                                        td { (opt_text(r.envelope.tenant.as_deref())) }
                                        td { (opt_text(r.envelope.leistung.as_deref())) }
                                        td { (state_badge(r.state)) }
                                        td { @match &r.rule { Some(rule) => code { (rule) }, None => (dash()) } }
                                    }
                                }
                            }
                        }
                    }))
                    @if operator {
                        div.actions {
                            div.field-check {
                                input #force-all type="checkbox" name="force" value="1";
                                label for="force-all" { "auch wenn der Absender schon eine endgültige Antwort erhielt" }
                            }
                            button type="submit" { "Ausgewählte erneut einspielen" }
                            span.htmx-indicator { "Wird ausgeführt …" }
                        }
                        p.hint { "Erneut einspielen lassen sich unzustellbare, zugestellte und abgewiesene Nachrichten." }
                    }
                }
                nav.pager aria-label="Seiten" {
                    @if let Some(link) = &next_link { a href=(link) rel="next" { "Weiter" } }
                }
            }
        }
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    layout::respond(status, page("Nachrichten", Some(&s), Nav::Messages, body))
}

/// Minimal percent-encoding for query values.
fn urlencode(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A replay refusal in German, with the engine's text, and its status.
fn replay_error(e: &ReplayError) -> (StatusCode, String) {
    let (status, german) = match e {
        ReplayError::NotFound(_) => (StatusCode::NOT_FOUND, "Die Nachricht gibt es nicht.".to_owned()),
        ReplayError::NotReplayable(st) => (
            StatusCode::CONFLICT,
            format!(
                "Die Nachricht ist im Status „{}“; erneut einspielen lassen sich nur unzustellbare, zugestellte oder abgewiesene Nachrichten.",
                state_name(*st)
            ),
        ),
        ReplayError::SenderAnswered(_) => (
            StatusCode::CONFLICT,
            "Der Absender hat bereits eine endgültige Antwort erhalten, der ein erneutes Einspielen widerspräche. Kreuzen Sie „trotzdem“ an, um die Nachricht dennoch zuzustellen.".to_owned(),
        ),
        ReplayError::PayloadPurged(at) => (
            StatusCode::GONE,
            format!(
                "Die Nutzdaten wurden am {} durch die Aufbewahrungsfristen gelöscht; die Nachricht kann nicht erneut eingespielt werden.",
                at.format("%Y-%m-%d %H:%M UTC")
            ),
        ),
        ReplayError::Store(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Der Speicher hat die Änderung nicht angenommen.".to_owned(),
        ),
    };
    (status, format!("{german} (Fehlertext: {e})"))
}

fn release_error(e: &ReleaseError) -> (StatusCode, String) {
    let (status, german) = match e {
        ReleaseError::NotFound(_) => (StatusCode::NOT_FOUND, "Die Nachricht gibt es nicht.".to_owned()),
        ReleaseError::NotQuarantined(st) => (
            StatusCode::CONFLICT,
            format!(
                "Die Nachricht ist im Status „{}“; freigeben lassen sich nur Nachrichten in Quarantäne.",
                state_name(*st)
            ),
        ),
        ReleaseError::NoReason => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Bitte geben Sie einen Grund für die Freigabe an.".to_owned(),
        ),
        ReleaseError::SenderAnswered(_) => (
            StatusCode::CONFLICT,
            "Der Absender hat bereits eine endgültige Antwort erhalten. Kreuzen Sie „trotzdem“ an, um die Nachricht dennoch freizugeben.".to_owned(),
        ),
        ReleaseError::PayloadPurged(at) => (
            StatusCode::GONE,
            format!(
                "Die Nutzdaten wurden am {} durch die Aufbewahrungsfristen gelöscht.",
                at.format("%Y-%m-%d %H:%M UTC")
            ),
        ),
        ReleaseError::Store(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Der Speicher hat die Änderung nicht angenommen.".to_owned(),
        ),
    };
    (status, format!("{german} (Fehlertext: {e})"))
}

/// The distinct ids (in the order sent) and the `force` box of a form.
/// Collecting stops after `MAX_SELECTED + 1` ids: more than
/// [`MAX_SELECTED`] are refused anyway.
fn selected(form: &[(String, String)]) -> (Vec<String>, bool) {
    let mut seen: HashSet<&str> = HashSet::new();
    let mut ids: Vec<String> = Vec::new();
    for (k, v) in form {
        if k == "id" && seen.insert(v.as_str()) {
            ids.push(v.clone());
            if ids.len() > MAX_SELECTED {
                break;
            }
        }
    }
    let force = form.iter().any(|(k, v)| k == "force" && !v.is_empty());
    (ids, force)
}

/// `POST /console/nachrichten/erneut`: replay each selected message.
pub(crate) async fn replay_selected(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if !s.principal.may_replay() {
        return layout::forbidden(
            Some(&s),
            "Nur der Betrieb darf Nachrichten erneut einspielen.",
        );
    }
    let (ids, force) = selected(&form);
    if ids.len() > MAX_SELECTED {
        let fragment = notice(
            "error",
            html! { p { strong { "Zu viele Nachrichten ausgewählt." } " Es lassen sich höchstens " (MAX_SELECTED) " Nachrichten auf einmal erneut einspielen. Es wurde nichts erneut eingespielt; bitte wählen Sie weniger aus." } },
        );
        // htmx swaps only successful answers in.
        if is_htmx(&headers) {
            return layout::respond(StatusCode::OK, fragment);
        }
        return layout::respond(
            StatusCode::UNPROCESSABLE_ENTITY,
            page("Erneut einspielen", Some(&s), Nav::Messages, fragment),
        );
    }
    let mut results: Vec<(String, Result<MessageState, String>)> = Vec::new();
    for id in ids {
        let outcome = match id.parse::<MessageId>() {
            Err(_) => Err("Ungültige Nachrichtenkennung.".to_owned()),
            Ok(mid) => match c.hub.replay(mid, &actor(&s), force).await {
                Ok(rec) => Ok(rec.state),
                Err(e) => Err(replay_error(&e).1),
            },
        };
        results.push((id, outcome));
    }
    let done = results.iter().filter(|(_, r)| r.is_ok()).count();
    let failed = results.len() - done;
    let fragment = html! {
        @if results.is_empty() {
            (notice("warn", html! { p { "Keine Nachricht ausgewählt." } }))
        } @else {
            (notice(if failed == 0 { "ok" } else { "warn" }, html! {
                p { strong { (done) " erneut eingespielt, " (failed) " fehlgeschlagen" } " (von " (results.len()) ")." }
            }))
            (table_wrap("Ergebnis des erneuten Einspielens", html! {
                table {
                    thead { tr { th scope="col" { "Nachricht" } th scope="col" { "Ergebnis" } } }
                    tbody {
                        @for (id, r) in &results {
                            tr {
                                th scope="row" { a.mono href=(format!("/console/nachrichten/{}", urlencode(id))) { (id) } }
                                td { @match r {
                                    Ok(st) => { span.yes { "Erneut eingespielt" } " – jetzt " (state_badge(*st)) },
                                    Err(e) => { span.no { "Fehler: " } (e) },
                                } }
                            }
                        }
                    }
                }
            }))
            p { a href="/console/nachrichten" { "Liste neu laden" } }
        }
    };
    if is_htmx(&headers) {
        return layout::respond(StatusCode::OK, fragment);
    }
    layout::respond(
        StatusCode::OK,
        page("Erneut einspielen", Some(&s), Nav::Messages, fragment),
    )
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ShowQuery {
    erneut: Option<String>,
    freigegeben: Option<String>,
}

pub(crate) async fn show(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let rec = match load_visible(&c, &s, &id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let message = if q.erneut.is_some() {
        Some(notice(
            "ok",
            html! { p { "Die Nachricht wurde erneut eingespielt." } },
        ))
    } else if q.freigegeben.is_some() {
        Some(notice(
            "ok",
            html! { p { "Die Nachricht wurde aus der Quarantäne freigegeben." } },
        ))
    } else {
        None
    };
    detail(&c, &s, rec, StatusCode::OK, message).await
}

async fn detail(
    c: &Console,
    s: &Session,
    rec: MessageRecord,
    status: StatusCode,
    message: Option<Markup>,
) -> Response {
    let audit = match c.hub.store().audit(rec.id()).await {
        Ok(a) => a,
        Err(e) => return storage_error(s, &e),
    };
    let title = format!("Nachricht {}", rec.id());
    layout::respond(
        status,
        page(
            &title,
            Some(s),
            Nav::Messages,
            detail_body(s, &rec, &audit, message),
        ),
    )
}

fn detail_body(
    s: &Session,
    r: &MessageRecord,
    audit: &[AuditEvent],
    message: Option<Markup>,
) -> Markup {
    let id = r.id().to_string();
    let e = &r.envelope;
    let operator = s.principal.may_replay();
    html! {
        @if let Some(m) = message { (m) }
        p { a href="/console/nachrichten" { "← Alle Nachrichten" } }
        section aria-labelledby="umschlag" {
            h2 #umschlag { "Umschlag" }
            dl.fields {
                dt { "Kennung" } dd.mono { (id) }
                dt { "Status" } dd { (state_badge(r.state)) }
                @if let Some(reason) = &r.reason { dt { "Grund" } dd { (reason) } }
                dt { "Kanal" } dd { (e.channel) }
                dt { "Absender" } dd { (e.sender.adapter) " / " (e.sender.principal)
                    @if let Some(a) = &e.sender.remote_addr { " (" (a) ")" } }
                dt { "Empfangen" } dd { (time(&e.received_at)) }
                dt { "Aktualisiert" } dd { (time(&r.updated_at)) }
                dt { "Inhaltstyp" } dd { code { (e.content_type) } }
                dt { "Größe" } dd { (layout::number(e.size)) " Byte" }
                dt { "Idempotenzschlüssel" } dd { (opt_text(e.idempotency_key.as_deref())) }
                dt { "Kommune" } dd { (opt_text(e.tenant.as_deref())) }
                @if let Some(rb) = &r.requested_by { dt { "Angefragt bei" } dd { (rb) " (Leistung dorthin umgelenkt)" } }
                dt { "Kommunenschlüssel" } dd { (opt_text(e.kommune_key.as_deref())) }
                dt { "Leistung" } dd { (opt_text(e.leistung.as_deref())) }
                dt { "Regel" } dd { @match &r.rule { Some(rule) => code { (rule) }, None => (dash()) } }
                @if let Some(a) = &r.sender_answer { dt { "Antwort an den Absender" } dd { (a) } }
                @if let Some(scan) = &r.scan {
                    dt { "Virenprüfung" } dd {
                        @if let Some(f) = &scan.finding {
                            "Fund in " (f.part) ": " code { (f.signature) } " (" (f.scanner) ", " (time(&f.at)) ")"
                        } @else if scan.input_clean { "Eingang sauber" } @else { "–" }
                        @if let Some(rel) = &scan.released {
                            br; "Freigegeben von " (rel.by) " am " (time(&rel.at)) ": " (rel.reason)
                        }
                    }
                }
                dt { "Nutzdaten" } dd {
                    @if let Some(at) = &r.payload_purged_at {
                        "gelöscht (Aufbewahrung) am " (time(at))
                    } @else {
                        a href=(format!("/console/nachrichten/{id}/nutzdaten")) download { "Nutzdaten herunterladen" }
                    }
                }
            }
        }
        @if !e.correlation_ids.is_empty() {
            section aria-labelledby="korrelation" {
                h2 #korrelation { "Korrelationskennungen" }
                (table_wrap("Korrelationskennungen", html! {
                    table {
                        thead { tr { th scope="col" { "Art" } th scope="col" { "Wert" } } }
                        tbody { @for (k, v) in &e.correlation_ids { tr { th scope="row" { (k) } td.mono { (v) } } } }
                    }
                }))
            }
        }
        @if !e.attachments.is_empty() {
            section aria-labelledby="anhaenge" {
                h2 #anhaenge { "Anhänge" }
                (table_wrap("Anhänge", html! {
                    table {
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Dateiname" } th scope="col" { "Inhaltstyp" } } }
                        tbody { @for a in &e.attachments { tr {
                            th scope="row" { (a.name) } td { (opt_text(a.filename.as_deref())) } td { code { (a.content_type) } }
                        } } }
                    }
                }))
            }
        }
        section aria-labelledby="zustellungen" {
            h2 #zustellungen { "Zustellungen" }
            @if r.deliveries.is_empty() {
                p { "Keine Zustellungen (noch nicht geroutet, abgewiesen oder unzustellbar vor dem Routing)." }
            } @else {
                (table_wrap("Zustellungen", html! {
                    table {
                        thead { tr {
                            th scope="col" { "Ziel" } th scope="col" { "Kommune" } th scope="col" { "Verbindung" }
                            th scope="col" { "Status" } th scope="col" .num { "Versuche" } th scope="col" .num { "Durchgang" }
                            th scope="col" { "Letzter Fehler" } th scope="col" { "Letzter Versuch" }
                            th scope="col" { "Nächster Versuch" } th scope="col" { "Zugestellt" } th scope="col" { "Quittung" }
                        } }
                        tbody { @for d in &r.deliveries { tr {
                            th scope="row" { (d.target) }
                            td { (d.tenant) }
                            td { (d.connector) }
                            td { (delivery_state(d.state)) }
                            td.num { (d.attempts) }
                            td.num { (d.generation) }
                            td { (opt_text(d.last_error.as_deref())) }
                            td { (opt_time(d.last_attempt_at.as_ref())) }
                            td { (opt_time(d.next_attempt_at.as_ref())) }
                            td { (opt_time(d.delivered_at.as_ref())) }
                            td { (opt_text(d.receipt.as_deref())) }
                        } } }
                    }
                }))
                h3 { "Ausgaben" }
                (table_wrap("Ausgabedokumente", html! {
                    table {
                        thead { tr {
                            th scope="col" { "Ziel" } th scope="col" { "Dateiname" } th scope="col" { "Inhaltstyp" }
                            th scope="col" .num { "Größe (Byte)" } th scope="col" { "SHA-256" }
                        } }
                        tbody { @for d in &r.deliveries { tr {
                            th scope="row" { (d.target) }
                            td { (d.filename) @if d.packed { " (Container mit Anhängen)" } }
                            td { code { (d.content_type) } }
                            td.num { (layout::number(d.size)) }
                            td.mono { (d.sha256) }
                        } } }
                    }
                }))
            }
        }
        @if operator && r.state.is_replayable() {
            section aria-labelledby="erneut" {
                h2 #erneut { "Erneut einspielen" }
                form.stack method="post" action=(format!("/console/nachrichten/{id}/erneut"))
                    data-confirm="Diese Nachricht erneut einspielen?" {
                    (csrf_field(s))
                    div.field-check {
                        input #force type="checkbox" name="force" value="1";
                        label for="force" { "trotzdem, auch wenn der Absender schon eine endgültige Antwort erhielt" }
                    }
                    div.actions { button type="submit" { "Erneut einspielen" } }
                }
            }
        }
        @if operator && r.state == MessageState::Quarantined {
            section aria-labelledby="freigeben" {
                h2 #freigeben { "Aus der Quarantäne freigeben" }
                form.stack method="post" action=(format!("/console/nachrichten/{id}/freigeben"))
                    data-confirm="Die Nachricht trotz des Fundes freigeben?" {
                    (csrf_field(s))
                    div.field {
                        label for="reason" { "Grund der Freigabe (wird protokolliert)" }
                        input #reason type="text" name="reason" required;
                    }
                    div.field-check {
                        input #force-rel type="checkbox" name="force" value="1";
                        label for="force-rel" { "trotzdem, auch wenn der Absender schon eine endgültige Antwort erhielt" }
                    }
                    div.actions { button.danger type="submit" { "Freigeben" } }
                }
            }
        }
        section aria-labelledby="protokoll" {
            h2 #protokoll { "Protokoll" }
            (table_wrap("Protokoll der Nachricht", html! {
                table {
                    thead { tr {
                        th scope="col" { "Zeit" } th scope="col" { "Akteur" } th scope="col" { "Ereignis" }
                        th scope="col" { "Status" } th scope="col" { "Ziel" } th scope="col" { "Regel" } th scope="col" { "Details" }
                    } }
                    tbody { @for ev in audit { tr {
                        th scope="row" { (time(&ev.at)) }
                        td { (ev.actor) }
                        td { (ev.action) }
                        td { @if let Some(from) = ev.from { (state_name(from)) " → " } (state_name(ev.to)) }
                        td { (opt_text(ev.target.as_deref())) }
                        td { @match &ev.rule { Some(rule) => code { (rule) }, None => (dash()) } }
                        td { (opt_text(Some(ev.detail.as_str()))) }
                    } } }
                }
            }))
        }
    }
}

fn delivery_state(d: DeliveryState) -> Markup {
    let (class, text) = match d {
        DeliveryState::Pending => ("state", "Ausstehend"),
        DeliveryState::Delivered => ("state state-delivered", "Zugestellt"),
        DeliveryState::Failed => ("state state-failed", "Fehlgeschlagen"),
        DeliveryState::Dead => ("state state-dead", "Unzustellbar"),
    };
    html! { span class=(class) { (text) } }
}

/// Operator only; a tenant gets `403` for its own message, `404` for others.
async fn operator_or(c: &Console, s: &Session, id: &str, what: &str) -> Result<(), Response> {
    if s.principal.may_replay() {
        return Ok(());
    }
    match load_visible(c, s, id).await {
        Ok(_) => Err(layout::forbidden(Some(s), what)),
        Err(r) => Err(r),
    }
}

/// Re-render the detail page with an error (or answer `404`).
async fn detail_with_error(
    c: &Console,
    s: &Session,
    id: &str,
    status: StatusCode,
    text: String,
) -> Response {
    match load_visible(c, s, id).await {
        Ok(rec) => {
            detail(
                c,
                s,
                rec,
                status,
                Some(notice("error", html! { p { (text) } })),
            )
            .await
        }
        Err(r) => r,
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    force: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

pub(crate) async fn replay_one(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err(r) = operator_or(
        &c,
        &s,
        &id,
        "Nur der Betrieb darf Nachrichten erneut einspielen.",
    )
    .await
    {
        return r;
    }
    let Ok(mid) = id.parse::<MessageId>() else {
        return not_found(Some(&s));
    };
    let force = form.force.is_some_and(|v| !v.is_empty());
    match c.hub.replay(mid, &actor(&s), force).await {
        Ok(_) => Redirect::to(&format!("/console/nachrichten/{mid}?erneut=1")).into_response(),
        Err(ReplayError::NotFound(_)) => not_found(Some(&s)),
        Err(e) => {
            let (status, text) = replay_error(&e);
            detail_with_error(&c, &s, &id, status, text).await
        }
    }
}

pub(crate) async fn release(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Response {
    if let Err(r) = operator_or(&c, &s, &id, "Nur der Betrieb darf Nachrichten freigeben.").await {
        return r;
    }
    let Ok(mid) = id.parse::<MessageId>() else {
        return not_found(Some(&s));
    };
    let force = form.force.is_some_and(|v| !v.is_empty());
    let reason = form.reason.unwrap_or_default();
    match c.hub.release(mid, &actor(&s), &reason, force).await {
        Ok(_) => Redirect::to(&format!("/console/nachrichten/{mid}?freigegeben=1")).into_response(),
        Err(ReleaseError::NotFound(_)) => not_found(Some(&s)),
        Err(e) => {
            let (status, text) = release_error(&e);
            detail_with_error(&c, &s, &id, status, text).await
        }
    }
}

/// File name extension for a payload's media type.
fn extension(content_type: &str) -> &'static str {
    let ct = content_type.to_ascii_lowercase();
    if ct.contains("json") {
        "json"
    } else if ct.contains("xml") {
        "xml"
    } else if ct.starts_with("text/csv") {
        "csv"
    } else if ct.starts_with("text/") {
        "txt"
    } else if ct.contains("pdf") {
        "pdf"
    } else {
        "bin"
    }
}

/// `GET …/nutzdaten`: the payload as received, always as a download.
pub(crate) async fn payload(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> Response {
    let rec = match load_visible(&c, &s, &id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let gone = |at: Option<DateTime<Utc>>| {
        let when = at
            .or(rec.payload_purged_at)
            .map(|t| format!(" am {}", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default();
        error_page(
            StatusCode::GONE,
            "Nutzdaten gelöscht",
            &format!("Die Nutzdaten dieser Nachricht wurden{when} durch die Aufbewahrungsfristen gelöscht; Eintrag und Protokoll bleiben."),
            Some(&s),
        )
    };
    if rec.payload_purged_at.is_some() {
        return gone(None);
    }
    match c.hub.store().payload(rec.id()).await {
        Ok(Some(bytes)) => {
            // Never anything a browser would render as a page, even by
            // mistake: HTML and SVG go out as plain bytes.
            let lower = rec.envelope.content_type.to_ascii_lowercase();
            let active = lower.contains("html") || lower.contains("svg");
            let ct = HeaderValue::from_str(&rec.envelope.content_type)
                .ok()
                .filter(|_| !active)
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            let disposition = format!(
                "attachment; filename=\"nachricht-{}.{}\"",
                rec.id(),
                extension(&rec.envelope.content_type)
            );
            let mut resp = bytes.into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, ct);
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            resp
        }
        Ok(None) => not_found(Some(&s)),
        Err(StoreError::Purged(_)) => gone(None),
        Err(e) => storage_error(&s, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_the_browser_form_and_rfc3339() {
        let t = parse_since("2025-03-01T14:05").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-03-01T14:05:00+00:00");
        let t = parse_since("2025-03-01T14:05:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2025-03-01T13:05:00+00:00");
        assert!(parse_since("2025-03-01").is_ok());
        assert!(parse_since("gestern").is_err());
    }

    #[test]
    fn selection_is_deduplicated() {
        let form = vec![
            ("csrf".to_owned(), "x".to_owned()),
            ("id".to_owned(), "a".to_owned()),
            ("id".to_owned(), "b".to_owned()),
            ("id".to_owned(), "a".to_owned()),
        ];
        assert_eq!(
            selected(&form),
            (vec!["a".to_owned(), "b".to_owned()], false)
        );
        let form = vec![("force".to_owned(), "1".to_owned())];
        assert!(selected(&form).1);
        // Collecting stops one past the limit, duplicates not counted.
        let form: Vec<(String, String)> = (0..2 * MAX_SELECTED)
            .flat_map(|i| {
                [
                    ("id".to_owned(), format!("m{i}")),
                    ("id".to_owned(), format!("m{i}")),
                ]
            })
            .collect();
        let (ids, _) = selected(&form);
        assert_eq!(ids.len(), MAX_SELECTED + 1);
        assert_eq!(ids[MAX_SELECTED], format!("m{MAX_SELECTED}"));
    }

    #[test]
    fn payload_names_follow_the_media_type() {
        assert_eq!(extension("application/xml; charset=utf-8"), "xml");
        assert_eq!(extension("application/fhir+json"), "json");
        assert_eq!(extension("text/html"), "txt");
        assert_eq!(extension("application/octet-stream"), "bin");
        assert_eq!(urlencode("a b/ä"), "a%20b%2F%C3%A4");
    }
}
