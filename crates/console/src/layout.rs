//! The page frame (header, navigation, `main`), error pages and small
//! formatting helpers shared by the pages.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use drehscheibe_model::auth::Role;
use drehscheibe_model::MessageState;
use maud::{html, Markup, DOCTYPE};

use crate::assets;
use crate::session::Session;

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Messages,
    Tenants,
    Depot,
    DryRun,
    Sla,
    History,
    None,
}

/// The navigation: section, link, label, and whether only operators see
/// it.
const NAV: [(Nav, &str, &str, bool); 7] = [
    (Nav::Overview, "/console", "Übersicht", false),
    (Nav::Messages, "/console/nachrichten", "Nachrichten", false),
    (Nav::Tenants, "/console/kommunen", "Kommunen", false),
    (Nav::Depot, "/console/regeldepot", "Regeldepot", false),
    (Nav::DryRun, "/console/probelauf", "Probelauf", true),
    (Nav::Sla, "/console/sla", "SLA", false),
    (Nav::History, "/console/verlauf", "Verlauf", false),
];

/// htmx settings: no inline indicator styles (CSP), no eval, no scripts
/// from answers.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0}"#;

/// What the header says about the signed-in user.
pub fn role_label(role: &Role) -> String {
    match role {
        Role::Operator => "Betrieb".to_owned(),
        Role::Tenant { tenant } => format!("Kommune {tenant}"),
        Role::Sender { .. } => "Absender".to_owned(),
    }
}

/// A whole page: `title` is the `<h1>` and the document title.
pub fn page(title: &str, session: Option<&Session>, active: Nav, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="de" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) " – Drehscheibe" }
                link rel="stylesheet" href=(assets::url("console.css"));
                script src=(assets::url("htmx.min.js")) defer {}
                script src=(assets::url("console.js")) defer {}
            }
            body {
                a.skip-link href="#inhalt" { "Zum Inhalt springen" }
                header.site-header {
                    a.brand href="/console" { "Drehscheibe" }
                    @if let Some(s) = session {
                        nav aria-label="Hauptnavigation" {
                            ul {
                                @for (nav, href, label, operators_only) in NAV {
                                    @if !operators_only || s.principal.may_replay() { li {
                                        a href=(href) aria-current=[(nav == active).then_some("page")] { (label) }
                                    } }
                                }
                            }
                        }
                        div.user {
                            span { "Angemeldet: " strong { (s.principal.name) } " (" (role_label(&s.principal.role)) ")" }
                            form method="post" action="/console/abmelden" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button type="submit" { "Abmelden" }
                            }
                        }
                    }
                }
                main #inhalt tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// An HTML answer with `status`.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    (status, markup).into_response()
}

/// A German error page.
pub fn error_page(
    status: StatusCode,
    title: &str,
    detail: &str,
    session: Option<&Session>,
) -> Response {
    respond(
        status,
        page(
            title,
            session,
            Nav::None,
            html! {
                div.notice.notice-error role="alert" { p { (detail) } }
                p {
                    @if session.is_some() { a href="/console" { "Zur Übersicht" } }
                    @else { a href="/console/anmelden" { "Zur Anmeldung" } }
                }
            },
        ),
    )
}

/// `404` without saying whether the thing exists for someone else.
pub fn not_found(session: Option<&Session>) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Nicht gefunden",
        "Diese Seite gibt es nicht, oder Sie dürfen sie nicht sehen.",
        session,
    )
}

/// `403` for a read-only user trying a change.
pub fn forbidden(session: Option<&Session>, detail: &str) -> Response {
    error_page(StatusCode::FORBIDDEN, "Nicht erlaubt", detail, session)
}

/// A hidden field with the session's CSRF token.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A time as shown everywhere: `2025-03-01 14:05:09 UTC`.
pub fn time(t: &DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

pub fn opt_time(t: Option<&DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => time(t),
        None => dash(),
    }
}

pub fn dash() -> Markup {
    html! { span.muted { "–" } }
}

pub fn opt_text(t: Option<&str>) -> Markup {
    match t {
        Some(t) if !t.is_empty() => html! { (t) },
        _ => dash(),
    }
}

/// German name of a message state.
pub fn state_name(s: MessageState) -> &'static str {
    match s {
        MessageState::Received => "Empfangen",
        MessageState::Routed => "Geroutet",
        MessageState::Delivering => "In Zustellung",
        MessageState::Delivered => "Zugestellt",
        MessageState::Failed => "Fehlgeschlagen (wird wiederholt)",
        MessageState::Dead => "Unzustellbar",
        MessageState::Rejected => "Abgewiesen",
        MessageState::Quarantined => "In Quarantäne",
    }
}

/// A state badge.
pub fn state_badge(s: MessageState) -> Markup {
    html! { span class=(format!("state state-{}", s.as_str())) { (state_name(s)) } }
}

/// Yes/no in words (not colour alone).
pub fn yes_no(b: bool) -> Markup {
    if b {
        html! { span.yes { "Ja" } }
    } else {
        html! { span.no { "Nein" } }
    }
}

/// A notice box: `kind` is `ok`, `warn` or `error`.
pub fn notice(kind: &str, body: Markup) -> Markup {
    let role = if kind == "error" { "alert" } else { "status" };
    html! { div class=(format!("notice notice-{kind}")) role=(role) { (body) } }
}

/// Wrap a table so it scrolls horizontally on narrow screens; the wrapper
/// is focusable so keyboard users can scroll it too.
pub fn table_wrap(label: &str, table: Markup) -> Markup {
    html! { div.table-wrap role="region" aria-label=(label) tabindex="0" { (table) } }
}

/// Number with German thousands separators (`12.345`).
pub fn number(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use drehscheibe_model::auth::Principal;

    #[test]
    fn the_frame_is_accessible_and_free_of_inline_code() {
        let s = Session {
            principal: Principal {
                name: "op<1>".into(),
                role: Role::Operator,
            },
            csrf: "c".repeat(64),
        };
        let html = page("Übersicht", Some(&s), Nav::Overview, html! { p { "x" } }).into_string();
        assert!(html.starts_with("<!DOCTYPE html><html lang=\"de\">"));
        assert!(html.contains("<a class=\"skip-link\" href=\"#inhalt\">"));
        assert!(html.contains("<main id=\"inhalt\""));
        assert!(html.contains("<a href=\"/console\" aria-current=\"page\">Übersicht</a>"));
        assert!(html.contains("<a href=\"/console/verlauf\">Verlauf</a>"));
        assert!(html.contains("op&lt;1&gt;"));
        assert!(html.contains(&"c".repeat(64)));
        assert!(!html.contains(" style="));
        assert!(!html.contains("<style"));
        assert!(!html.contains(" onclick="));
        // Scripts only by src.
        assert_eq!(
            html.matches("<script").count(),
            html.matches("<script src=").count()
        );
    }

    #[test]
    fn numbers_get_german_separators() {
        assert_eq!(number(0), "0");
        assert_eq!(number(999), "999");
        assert_eq!(number(1000), "1.000");
        assert_eq!(number(1234567), "1.234.567");
    }
}
