//! SLA: the agreed throughput time of each route (`sla = { within = "5m",
//! percent = 95 }` in the tenant file) against what was measured over the
//! last day and week, with the week's breaches. The same report as
//! `GET /api/v1/sla` ([`insight::sla_report`]); a tenant sees its own
//! routes.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use chrono::Utc;
use drehscheibe_engine::insight::{self, SlaRow, SlaWindow};
use maud::{html, Markup};

use crate::layout::{self, dash, number, page, state_badge, table_wrap, time, Nav};
use crate::messages::storage_error;
use crate::session::Session;
use crate::Console;

/// `x` with a German decimal comma and at most `places` decimals
/// (`95`, `99,5`).
pub(crate) fn decimal(x: f64, places: usize) -> String {
    let s = format!("{x:.places$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    };
    s.replace('.', ",")
}

fn seconds(s: f64) -> String {
    insight::human_duration(Duration::from_secs_f64(s.max(0.0)))
}

/// The agreed level in words: `95 % in 5 min 0 s`.
pub(crate) fn target(row: &SlaRow) -> String {
    format!(
        "{} % in {}",
        decimal(row.percent, 2),
        seconds(row.within_seconds)
    )
}

fn opt_seconds(s: Option<f64>) -> Markup {
    match s {
        Some(s) => html! { (seconds(s)) },
        None => dash(),
    }
}

fn met(m: Option<bool>) -> Markup {
    match m {
        Some(true) => html! { span.yes { "Eingehalten" } },
        Some(false) => html! { span.no { "Verfehlt" } },
        None => dash(),
    }
}

fn window_row(w: &SlaWindow) -> Markup {
    let label = match w.window.as_str() {
        "Tag" => "Letzte 24 Stunden",
        "Woche" => "Letzte 7 Tage",
        other => other,
    };
    html! {
        tr {
            th scope="row" { (label)
                @if w.truncated {
                    br; span.muted { "gekürzt: nur die ersten " (number(insight::MAX_SLA_MESSAGES as u64)) " Nachrichten gelesen" }
                }
            }
            td.num { (number(w.received as u64)) }
            td.num { (number(w.delivered as u64)) }
            td.num { (opt_seconds(w.p50_seconds)) }
            td.num { (opt_seconds(w.p95_seconds)) }
            td.num { @match w.within_target_percent {
                Some(p) => { (decimal(p, 1)) " %" },
                None => (dash()),
            } }
            td { (met(w.met)) }
        }
    }
}

fn route_section(row: &SlaRow, index: usize) -> Markup {
    let heading = format!("sla-{index}");
    html! {
        section aria-labelledby=(heading) {
            h2 #(heading) {
                "Kommune " a href=(format!("/console/kommunen/{}", row.tenant)) { (row.tenant) }
                " – Leistung " code { (row.leistung) }
            }
            @if let Some(d) = &row.description { p.muted { (d) } }
            p { "Ziel: " strong { (target(row)) } }
            (table_wrap(&format!("Servicelevel {} {}", row.tenant, row.leistung), html! {
                table {
                    thead { tr {
                        th scope="col" { "Zeitraum" }
                        th scope="col" .num { "Empfangen" }
                        th scope="col" .num { "Zugestellt" }
                        th scope="col" .num { "Median (p50)" }
                        th scope="col" .num { "95. Perzentil (p95)" }
                        th scope="col" .num { "Anteil im Ziel" }
                        th scope="col" { "Ziel erreicht" }
                    } }
                    tbody {
                        (window_row(&row.day))
                        (window_row(&row.week))
                    }
                }
            }))
            @if row.breaches.is_empty() {
                p.hint { "Keine Verletzungen in den letzten 7 Tagen." }
            } @else {
                details {
                    summary { "Verletzungen der letzten 7 Tage (" (row.breaches.len())
                        @if row.breaches.len() >= 50 { ", die neuesten 50" } ")" }
                    (table_wrap("Verletzungen", html! {
                        table {
                            thead { tr {
                                th scope="col" { "Nachricht" } th scope="col" { "Empfangen" }
                                th scope="col" { "Status" } th scope="col" .num { "Dauer" }
                            } }
                            tbody { @for b in &row.breaches { tr {
                                th scope="row" { a.mono href=(format!("/console/nachrichten/{}", b.id)) { (b.id) } }
                                td { (time(&b.received_at)) }
                                td { (state_badge(b.state)) }
                                td.num { (seconds(b.seconds))
                                    @if b.state != drehscheibe_model::MessageState::Delivered { " (offen)" } }
                            } } }
                        }
                    }))
                }
            }
        }
    }
}

pub(crate) async fn show(State(c): State<Console>, Extension(s): Extension<Session>) -> Response {
    let rows = match insight::sla_report(
        c.hub.store().as_ref(),
        &c.admin.current(),
        s.principal.tenant_scope(),
        Utc::now(),
    )
    .await
    {
        Ok(rows) => rows,
        Err(e) => return storage_error(&s, &e),
    };
    let body = html! {
        p.hint {
            "Ein Servicelevel gilt je Route und wird in der Datei der Kommune an der Route vereinbart, z. B. "
            code { "sla = { within = \"5m\", percent = 95 }" }
            " unter " code { "[[routes]]" } ": 95 % der Nachrichten sollen binnen 5 Minuten nach dem Empfang zugestellt sein. "
            "Gemessen wird vom Empfang bis zur letzten Zustellung; Nachrichten, die nach Ablauf der Frist noch nicht zugestellt sind, zählen als verfehlt."
        }
        @if rows.is_empty() {
            p { "Für keine Route ist ein Servicelevel vereinbart." }
        }
        @for (i, row) in rows.iter().enumerate() {
            (route_section(row, i))
        }
    };
    layout::respond(
        StatusCode::OK,
        page("Servicelevel (SLA)", Some(&s), Nav::Sla, body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_use_a_decimal_comma() {
        assert_eq!(decimal(95.0, 2), "95");
        assert_eq!(decimal(99.5, 2), "99,5");
        assert_eq!(decimal(96.333, 1), "96,3");
        assert_eq!(decimal(100.0, 1), "100");
    }
}
