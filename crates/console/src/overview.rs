//! Übersicht: messages per state, queue, connector health and
//! throughput, channel attention, messages needing attention and the
//! configuration status.

use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use chrono::Utc;
use drehscheibe_engine::admin::status_as_seen_by;
use drehscheibe_model::{MessageRecord, MessageState};
use drehscheibe_store::{MessageFilter, MAX_PAGE_SIZE};
use maud::{html, Markup};

use crate::layout::{self, dash, notice, number, page, state_badge, state_name, table_wrap};
use crate::session::Session;
use crate::Console;

/// States that need a person.
const ATTENTION: [MessageState; 3] = [
    MessageState::Dead,
    MessageState::Failed,
    MessageState::Quarantined,
];

/// How many messages needing attention are listed.
const ATTENTION_SHOWN: usize = 15;

/// Pages of 500 read per state to find the newest (at most).
const ATTENTION_PAGES: usize = 20;

/// Most of a tenant's messages examined to count them per state (one
/// pass over its messages, not one per state).
pub(crate) const TENANT_COUNT_MAX: usize = 5_000;

pub(crate) async fn show(State(c): State<Console>, Extension(s): Extension<Session>) -> Response {
    let scope = s.principal.tenant_scope().map(str::to_owned);
    let store = c.hub.store();

    // Messages per state: the store's counters for operators; a tenant's
    // own messages counted in one bounded pass (`capped`: there are more,
    // the counts are lower bounds).
    let mut counts: Vec<(MessageState, u64)> = Vec::new();
    let mut capped = false;
    let mut store_error = None;
    let tallied = match &scope {
        None => store.count_by_state().await.map_err(|e| e.to_string()),
        Some(t) => count_tenant(&c, t).await.map(|(v, more)| {
            capped = more;
            v
        }),
    };
    match tallied {
        Ok(v) => {
            for st in MessageState::ALL {
                let n = v.iter().find(|(s, _)| *s == st).map_or(0, |(_, n)| *n);
                counts.push((st, n));
            }
        }
        Err(e) => store_error = Some(e),
    }
    let queue = if scope.is_none() {
        store.queue_stats(Utc::now()).await.ok()
    } else {
        None
    };
    let attention = match attention(&c, &s, scope.as_deref()).await {
        Ok(v) => v,
        Err(e) => {
            store_error.get_or_insert(e);
            Vec::new()
        }
    };
    let visible = |tenant: &str| scope.as_deref().is_none_or(|own| own == tenant);
    let health: Vec<_> = c
        .hub
        .connector_health()
        .into_iter()
        .filter(|e| visible(&e.tenant))
        .collect();
    let tallies: Vec<_> = c
        .hub
        .metrics()
        .delivery_tallies()
        .into_iter()
        .filter(|t| visible(&t.tenant))
        .collect();
    let channel_notes = if scope.is_none() {
        c.hub.channel_attention()
    } else {
        Vec::new()
    };
    // Tenants see that the files do not load, not the error (it names
    // other Kommunen's files), nor that the main file changed.
    let operator = s.principal.may_replay();
    let status = status_as_seen_by(&s.principal, c.admin.status());
    let now = Utc::now();
    // At least a minute, so the first deliveries do not show absurd rates.
    let hours = c.started.elapsed().as_secs_f64().max(60.0) / 3600.0;

    let body = html! {
        @if let Some(e) = &store_error {
            (notice("error", html! { p { "Der Speicher antwortet nicht: " code { (e) } } }))
        }
        section aria-labelledby="konfiguration" {
            h2 #konfiguration { "Konfiguration" }
            @if let Some(err) = &status.disk_error {
                (notice("error", html! {
                    p { strong { "Die Dateien auf der Platte laden nicht" }
                        @if let Some(since) = &status.disk_error_since { " (seit " (layout::time(since)) ")" }
                        ". Die laufende Konfiguration bleibt unverändert in Kraft." }
                    @if operator {
                        pre.toml tabindex="0" aria-label="Fehlermeldung" { (err) }
                    } @else {
                        p { "Die Einzelheiten sieht der Betrieb." }
                    }
                }))
            }
            @if operator && status.restart_needed {
                (notice("warn", html! { p { strong { "Neustart nötig: " } "Die Hauptdatei wurde geändert. Ihre Änderungen (Listener, TLS, Speicher, Kanäle, Tokens) wirken erst nach einem Neustart der Drehscheibe." } }))
            }
            dl.fields {
                dt { "Stand (Digest)" } dd.mono { (status.config_digest) }
                dt { "Angewendet" } dd { (layout::opt_time(status.applied_at.as_ref())) }
                dt { "Dateien" } dd { @if status.disk_error.is_some() { "fehlerhaft" } @else { "in Ordnung" } }
            }
        }
        section aria-labelledby="status" {
            h2 #status { "Nachrichten nach Status" }
            @if capped {
                p.hint { "Gezählt wurden die ersten " (number(c.tenant_count_max as u64)) " Nachrichten Ihrer Kommune; es gibt mehr." }
            }
            ul.cards {
                @for (st, n) in &counts {
                    li {
                        span.count { @if capped { "mindestens " } (number(*n)) }
                        a href=(format!("/console/nachrichten?state={}", st.as_str())) { (state_name(*st)) }
                    }
                }
            }
            @if let Some(q) = &queue {
                p { "Warteschlange: " strong { (number(q.depth)) } " Aufträge, davon " strong { (number(q.due)) } " fällig." }
            }
        }
        section aria-labelledby="klaerung" {
            h2 #klaerung { "Klärungsbedarf" }
            @if attention.is_empty() {
                p { "Keine unzustellbaren, fehlgeschlagenen oder in Quarantäne genommenen Nachrichten." }
            } @else {
                p.hint { "Die jüngsten Nachrichten mit dem Status „Unzustellbar“, „Fehlgeschlagen“ oder „In Quarantäne“." }
                (table_wrap("Nachrichten mit Klärungsbedarf", html! {
                    table {
                        thead { tr {
                            th scope="col" { "Nachricht" }
                            th scope="col" { "Status" }
                            th scope="col" { "Kommune" }
                            th scope="col" { "Leistung" }
                            th scope="col" { "Aktualisiert" }
                            th scope="col" { "Grund" }
                        } }
                        tbody {
                            @for r in &attention {
                                tr {
                                    th scope="row" { a.mono href=(format!("/console/nachrichten/{}", r.id())) { (r.id()) } }
                                    td { (state_badge(r.state)) }
                                    td { (layout::opt_text(r.envelope.tenant.as_deref())) }
                                    td { (layout::opt_text(r.envelope.leistung.as_deref())) }
                                    td { (layout::time(&r.updated_at)) }
                                    td { (layout::opt_text(r.reason.as_deref())) }
                                }
                            }
                        }
                    }
                }))
            }
        }
        section aria-labelledby="verbindungen" {
            h2 #verbindungen { "Verbindungen" }
            @if health.is_empty() {
                p { "Noch keine Prüfung der Verbindungen." }
            } @else {
                (table_wrap("Zustand der Verbindungen", html! {
                    table {
                        thead { tr {
                            th scope="col" { "Kommune" }
                            th scope="col" { "Verbindung" }
                            th scope="col" { "Art" }
                            th scope="col" { "Erreichbar" }
                            th scope="col" { "Hinweis" }
                            th scope="col" { "Zertifikat gültig bis" }
                            th scope="col" { "Geprüft" }
                        } }
                        tbody {
                            @for e in &health {
                                tr {
                                    td { (e.tenant) }
                                    th scope="row" { (e.connector) }
                                    td { (e.kind) }
                                    td { (layout::yes_no(e.health.reachable)) }
                                    td { (e.health.detail)
                                        @if let Some(line) = e.attention(now) { @if e.health.reachable { br; strong { (line) } } } }
                                    td { (layout::opt_time(e.health.cert_not_after.as_ref())) }
                                    td { (layout::time(&e.checked_at)) }
                                }
                            }
                        }
                    }
                }))
            }
        }
        section aria-labelledby="durchsatz" {
            h2 #durchsatz { "Zustellungen seit dem Start" }
            @if tallies.is_empty() {
                p { "Seit dem Start wurde noch nichts zugestellt." }
            } @else {
                (table_wrap("Zustellungen je Verbindung", html! {
                    table {
                        thead { tr {
                            th scope="col" { "Kommune" }
                            th scope="col" { "Verbindung" }
                            th scope="col" .num { "Zugestellt" }
                            th scope="col" .num { "Fehlversuche" }
                            th scope="col" .num { "Unzustellbar" }
                            th scope="col" .num { "Zugestellt je Stunde" }
                            th scope="col" .num { "Mittlere Laufzeit" }
                        } }
                        tbody {
                            @for t in &tallies {
                                tr {
                                    td { (t.tenant) }
                                    th scope="row" { (t.connector) }
                                    td.num { (number(t.delivered)) }
                                    td.num { (number(t.failed)) }
                                    td.num { (number(t.dead)) }
                                    td.num { (per_hour(t.delivered, hours)) }
                                    td.num { (latency(t.mean_latency_seconds())) }
                                }
                            }
                        }
                    }
                }))
                p.hint { "Laufzeit: vom Eingang bis zur erfolgreichen Zustellung." }
            }
        }
        @if scope.is_none() {
            section aria-labelledby="kanaele" {
                h2 #kanaele { "Eingangskanäle" }
                @if channel_notes.is_empty() {
                    p { "Keine Meldungen der Eingangskanäle." }
                } @else {
                    ul { @for line in &channel_notes { li { (line) } } }
                }
            }
        }
    };
    layout::respond(
        axum::http::StatusCode::OK,
        page("Übersicht", Some(&s), layout::Nav::Overview, body),
    )
}

fn per_hour(n: u64, hours: f64) -> String {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let rate = n as f64 / hours;
    format!("{rate:.1}").replace('.', ",")
}

fn latency(secs: Option<f64>) -> Markup {
    match secs {
        None => dash(),
        Some(s) if s < 1.0 => html! { (format!("{:.0} ms", s * 1000.0)) },
        Some(s) if s < 120.0 => html! { (format!("{s:.1} s").replace('.', ",")) },
        Some(s) => html! { (format!("{:.1} min", s / 60.0).replace('.', ",")) },
    }
}

/// A tenant's messages per state, counted in one pass over its messages
/// that examines at most `c.tenant_count_max` records (true: there are
/// more, the counts are lower bounds).
async fn count_tenant(
    c: &Console,
    tenant: &str,
) -> Result<(Vec<(MessageState, u64)>, bool), String> {
    let mut counts: Vec<(MessageState, u64)> = MessageState::ALL.iter().map(|s| (*s, 0)).collect();
    let mut filter = MessageFilter {
        tenant: Some(tenant.to_owned()),
        ..MessageFilter::default()
    };
    let mut examined = 0usize;
    loop {
        let left = c.tenant_count_max.saturating_sub(examined);
        if left == 0 {
            return Ok((counts, true));
        }
        filter.limit = left.min(MAX_PAGE_SIZE);
        let page = c
            .hub
            .store()
            .list(&filter)
            .await
            .map_err(|e| e.to_string())?;
        examined += page.items.len();
        for rec in &page.items {
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == rec.state) {
                slot.1 += 1;
            }
        }
        match page.next {
            // An empty page with a cursor would not end: count it as read.
            Some(next) if !page.items.is_empty() => filter.after = Some(next),
            Some(_) => return Ok((counts, true)),
            None => return Ok((counts, false)),
        }
    }
}

/// The newest messages in an [`ATTENTION`] state the user may see.
async fn attention(
    c: &Console,
    s: &Session,
    scope: Option<&str>,
) -> Result<Vec<MessageRecord>, String> {
    let mut found: Vec<MessageRecord> = Vec::new();
    for state in ATTENTION {
        let mut filter = MessageFilter {
            tenant: scope.map(str::to_owned),
            state: Some(state),
            limit: 500,
            ..MessageFilter::default()
        };
        // Oldest first: keep the tail of the last pages.
        let mut newest: Vec<MessageRecord> = Vec::new();
        for _ in 0..ATTENTION_PAGES {
            let page = c
                .hub
                .store()
                .list(&filter)
                .await
                .map_err(|e| e.to_string())?;
            newest.extend(
                page.items
                    .into_iter()
                    .filter(|r| s.principal.may_read_record(r)),
            );
            if newest.len() > ATTENTION_SHOWN {
                newest.drain(..newest.len() - ATTENTION_SHOWN);
            }
            match page.next {
                Some(next) => filter.after = Some(next),
                None => break,
            }
        }
        found.extend(newest);
    }
    found.sort_by_key(|r| std::cmp::Reverse(r.updated_at));
    found.truncate(ATTENTION_SHOWN);
    Ok(found)
}
