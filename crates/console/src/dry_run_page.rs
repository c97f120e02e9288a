//! Probelauf: a message is recognised, routed and rendered exactly as
//! intake and the routing workers would, and nothing is stored or
//! delivered ([`Hub::dry_run`](drehscheibe_engine::Hub::dry_run)); with a
//! second version, the route's rule runs in both and the outputs are
//! diffed ([`Hub::dry_run_compare`](drehscheibe_engine::Hub::dry_run_compare)).
//! The same calls as `POST /api/v1/dry-run[/compare]`. Operators only: a
//! dry run shows every Kommune's routing.
//!
//! The form is `multipart/form-data` (the message typed into a textarea,
//! or a file), so it works without JavaScript; its `csrf` part is checked
//! by the guard.

use axum::body::Bytes;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use drehscheibe_engine::dry_run::{
    Comparison, DryRun, DryRunError, DryRunOutcome, DryRunOutput, DryRunRequest,
};
use maud::{html, Markup};

use crate::layout::{self, csrf_field, dash, notice, number, opt_text, page, table_wrap, Nav};
use crate::session::Session;
use crate::{diff, human_bytes, payload_limit, Console, DRY_RUN_PATH};

/// The media types the form offers.
const CONTENT_TYPES: [&str; 2] = ["application/xml", "application/json"];

/// Most of an output's text shown on the page.
const MAX_SHOWN: usize = 200 * 1024;

/// Most of the typed message echoed back into the textarea.
const MAX_ECHO: usize = 1024 * 1024;

/// What the form holds (as sent, for showing it again).
#[derive(Debug, Default)]
struct DryRunForm {
    channel: String,
    content_type: String,
    text: String,
    /// The uploaded file's name and content, when one was chosen.
    file: Option<(String, Bytes)>,
    version: String,
    compare: String,
}

/// What the page shows below the form.
enum Outcome {
    Single(Box<DryRun>),
    Compared(Box<Comparison>),
}

fn refused(s: &Session) -> Response {
    layout::forbidden(
        Some(s),
        "Den Probelauf dürfen nur Betriebs-Tokens verwenden: er zeigt das Routing aller Kommunen.",
    )
}

pub(crate) async fn form(State(c): State<Console>, Extension(s): Extension<Session>) -> Response {
    if !s.principal.may_replay() {
        return refused(&s);
    }
    let channels = c.hub.channels();
    let form = DryRunForm {
        channel: channels.first().cloned().unwrap_or_default(),
        content_type: CONTENT_TYPES[0].to_owned(),
        ..DryRunForm::default()
    };
    render(&c, &s, StatusCode::OK, &form, None, None)
}

/// A rule version typed into the form (`2.1.0`), read as the engine's
/// version type (through its serde form, which parses `x.y.z`).
fn rule_version<V: serde::de::DeserializeOwned>(typed: &str) -> Result<V, String> {
    serde_json::from_value(serde_json::Value::String(typed.to_owned()))
        .map_err(|_| format!("„{typed}“ ist keine Regelversion (erwartet wird die Form 2.1.0)."))
}

async fn read_form(mut multipart: Multipart) -> Result<DryRunForm, String> {
    let mut form = DryRunForm::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(format!("Das Formular ließ sich nicht lesen: {e}")),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "datei" {
            let file_name = field.file_name().unwrap_or_default().to_owned();
            let bytes = field
                .bytes()
                .await
                .map_err(|e| format!("Die Datei ließ sich nicht lesen: {e}"))?;
            if !bytes.is_empty() {
                form.file = Some((file_name, bytes));
            }
            continue;
        }
        let text = field
            .text()
            .await
            .map_err(|e| format!("Das Formular ließ sich nicht lesen: {e}"))?;
        match name.as_str() {
            "channel" => form.channel = text.trim().to_owned(),
            "content_type" => form.content_type = text.trim().to_owned(),
            // Browsers send a textarea's lines with CRLF.
            "text" => form.text = text.replace("\r\n", "\n"),
            "version" => form.version = text.trim().to_owned(),
            "vergleich" => form.compare = text.trim().to_owned(),
            _ => {}
        }
    }
    Ok(form)
}

pub(crate) async fn run(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    multipart: Multipart,
) -> Response {
    if !s.principal.may_replay() {
        return refused(&s);
    }
    let form = match read_form(multipart).await {
        Ok(f) => f,
        Err(e) => {
            let form = DryRunForm::default();
            return render(&c, &s, StatusCode::BAD_REQUEST, &form, Some(&[e]), None);
        }
    };
    let mut errors = Vec::new();
    if !c.hub.channels().contains(&form.channel) {
        errors.push("Bitte wählen Sie einen der Kanäle aus.".to_owned());
    }
    if !CONTENT_TYPES.contains(&form.content_type.as_str()) {
        errors.push("Bitte wählen Sie application/xml oder application/json.".to_owned());
    }
    let payload = match &form.file {
        Some((_, bytes)) => bytes.clone(),
        None => Bytes::from(form.text.clone().into_bytes()),
    };
    if payload.is_empty() {
        errors.push("Bitte geben Sie eine Nachricht ein oder wählen Sie eine Datei.".to_owned());
    }
    let version = match form.version.as_str() {
        "" => None,
        v => match rule_version(v) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    let compare = match form.compare.as_str() {
        "" => None,
        v => match rule_version(v) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };
    if compare.is_some() && form.version.is_empty() {
        errors.push(
            "Zum Vergleichen geben Sie bitte auch die Regelversion an, mit der verglichen wird."
                .to_owned(),
        );
    }
    if !errors.is_empty() {
        return render(
            &c,
            &s,
            StatusCode::UNPROCESSABLE_ENTITY,
            &form,
            Some(&errors),
            None,
        );
    }
    let req = DryRunRequest {
        channel: form.channel.clone(),
        content_type: form.content_type.clone(),
        payload,
        version: None,
        principal: s.principal.name.clone(),
    };
    let done = match (version, compare) {
        (Some(a), Some(b)) => c
            .hub
            .dry_run_compare(req, a, b)
            .await
            .map(|r| Outcome::Compared(Box::new(r))),
        (version, _) => c
            .hub
            .dry_run(DryRunRequest { version, ..req })
            .await
            .map(|r| Outcome::Single(Box::new(r))),
    };
    match done {
        Ok(outcome) => {
            tracing::info!(token = %s.principal.name, channel = %form.channel, "console: dry run");
            render(&c, &s, StatusCode::OK, &form, None, Some(&outcome))
        }
        Err(e) => {
            let (status, text) = match &e {
                DryRunError::UnknownChannel(ch) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("Den Kanal „{ch}“ gibt es nicht."),
                ),
                DryRunError::TooLarge(size, limit) => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "Die Nachricht ist zu groß ({}); die Drehscheibe nimmt höchstens {} an.",
                        human_bytes(*size as u64),
                        human_bytes(*limit)
                    ),
                ),
                DryRunError::Empty => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Die Nachricht ist leer.".to_owned(),
                ),
                DryRunError::Internal(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("Der Probelauf ist abgebrochen: {e}"),
                ),
            };
            render(&c, &s, status, &form, Some(&[text]), None)
        }
    }
}

fn render(
    c: &Console,
    s: &Session,
    status: StatusCode,
    form: &DryRunForm,
    errors: Option<&[String]>,
    outcome: Option<&Outcome>,
) -> Response {
    let limit = human_bytes(payload_limit(&c.hub) as u64);
    let body = html! {
        p.hint {
            "Die Nachricht wird erkannt, geroutet und umgewandelt wie beim echten Empfang – mit dem Regeldepot und der Konfiguration in Kraft, denselben Zeit- und Speichergrenzen, Schemaprüfung und Virenprüfung. "
            strong { "Nichts wird gespeichert oder zugestellt." }
        }
        @if let Some(errors) = errors {
            (notice("error", html! {
                @if errors.len() == 1 { p { (errors[0]) } }
                @else { ul { @for e in errors { li { (e) } } } }
            }))
        }
        (form_markup(c, s, form, &limit))
        @match outcome {
            Some(Outcome::Single(r)) => {
                section aria-labelledby="ergebnis" {
                    h2 #ergebnis { "Ergebnis" }
                    (nothing_kept())
                    (result(r, "e", false))
                }
            }
            Some(Outcome::Compared(cmp)) => (comparison(cmp)),
            None => {}
        }
    };
    layout::respond(status, page("Probelauf", Some(s), Nav::DryRun, body))
}

fn form_markup(c: &Console, s: &Session, form: &DryRunForm, limit: &str) -> Markup {
    let channels = c.hub.channels();
    let echo = if form.text.len() <= MAX_ECHO {
        form.text.as_str()
    } else {
        ""
    };
    html! {
        form.stack method="post" action=(DRY_RUN_PATH) enctype="multipart/form-data" {
            (csrf_field(s))
            div.field {
                label for="channel" { "Kanal" }
                select #channel name="channel" {
                    @for ch in &channels { option value=(ch) selected[*ch == form.channel] { (ch) } }
                }
            }
            div.field {
                label for="content_type" { "Inhaltstyp" }
                select #content_type name="content_type" {
                    @for ct in CONTENT_TYPES { option value=(ct) selected[ct == form.content_type] { (ct) } }
                }
            }
            div.field {
                label for="text" { "Nachricht" }
                textarea #text name="text" spellcheck="false" autocapitalize="off" autocomplete="off" aria-describedby="text-hint" { "\n" (echo) }
                p.hint #text-hint { "Der Inhalt der Nachricht, z. B. das XML eines Antrags. Alternativ eine Datei wählen; eine gewählte Datei hat Vorrang." }
            }
            div.field {
                label for="datei" { "… oder Datei" }
                input #datei type="file" name="datei" aria-describedby="datei-hint";
                p.hint #datei-hint { "Höchstens " (limit) " (die Grenze der Drehscheibe für Nachrichten)." }
            }
            div.field {
                label for="version" { "Regelversion (optional)" }
                input #version type="text" name="version" value=(form.version) placeholder="z. B. 2.1.0" spellcheck="false" aria-describedby="version-hint";
                p.hint #version-hint { "Die Regel der Route läuft in genau dieser Version statt in der, auf die ihre Anforderung zeigt." }
            }
            div.field {
                label for="vergleich" { "Vergleichen mit Version (optional)" }
                input #vergleich type="text" name="vergleich" value=(form.compare) placeholder="z. B. 2.0.0" spellcheck="false" aria-describedby="vergleich-hint";
                p.hint #vergleich-hint { "Mit einer zweiten Version läuft die Nachricht in beiden; die Ausgaben werden nebeneinander gezeigt und verglichen. Dazu ist die Regelversion nötig." }
            }
            div.actions { button type="submit" { "Probelauf starten" } }
        }
    }
}

fn nothing_kept() -> Markup {
    notice(
        "ok",
        html! { p { strong { "Nichts wurde gespeichert oder zugestellt." } } },
    )
}

/// The outcome in words.
fn outcome_text(o: DryRunOutcome) -> &'static str {
    match o {
        DryRunOutcome::Routed => "Würde zugestellt werden",
        DryRunOutcome::Rejected => "Würde abgewiesen werden",
        DryRunOutcome::Dead => "Würde unzustellbar (tot)",
        DryRunOutcome::Quarantined => "Käme in Quarantäne",
    }
}

fn outcome_class(o: DryRunOutcome) -> &'static str {
    match o {
        DryRunOutcome::Routed => "state state-delivered",
        DryRunOutcome::Rejected => "state state-rejected",
        DryRunOutcome::Dead => "state state-dead",
        DryRunOutcome::Quarantined => "state state-quarantined",
    }
}

fn verdict_text(v: &str) -> &str {
    match v {
        "clean" => "sauber",
        "infected" => "Schadsoftware gefunden",
        "error" => "Fehler bei der Prüfung",
        "off" => "nicht geprüft (abgeschaltet)",
        other => other,
    }
}

fn tenant_link(t: Option<&str>) -> Markup {
    match t {
        Some(t) => html! { a href=(format!("/console/kommunen/{t}")) { (t) } },
        None => dash(),
    }
}

/// One dry run's result; `prefix` keeps element ids unique when two are
/// on the page; `nested`: one column of a comparison (headings a level
/// deeper).
fn result(r: &DryRun, prefix: &str, nested: bool) -> Markup {
    html! {
        dl.fields {
            dt { "Ergebnis" } dd { span class=(outcome_class(r.outcome)) { (outcome_text(r.outcome)) } }
            @if let Some(reason) = &r.reason { dt { "Grund" } dd { (reason) } }
            dt { "Regel" } dd { @match &r.rule {
                Some(rule) => a href=(format!("/console/regeldepot/{}", rule.id)) { code { (rule) } },
                None => (dash()),
            } }
            dt { "Leistung" } dd { (opt_text(r.leistung.as_deref())) }
            dt { "Kommunenschlüssel" } dd { (opt_text(r.kommune_key.as_deref())) }
            dt { "Kommune" } dd { (tenant_link(r.tenant.as_deref())) }
            dt { "Stelle" } dd { (opt_text(r.stelle.as_deref())) }
            dt { "Angefragt von" } dd { (tenant_link(r.requested_by.as_deref())) }
            dt { "Dauer" } dd { (crate::sla_page::decimal(r.duration_ms, 1)) " ms" }
            dt { "Hinweise" } dd {
                @if r.notes.is_empty() { (dash()) }
                @else { ul.plain { @for n in &r.notes { li { (n) } } } }
            }
        }
        @if nested { h4 { "Virenprüfung" } } @else { h3 { "Virenprüfung" } }
        (table_wrap("Virenprüfung", html! {
            table {
                thead { tr { th scope="col" { "Teil" } th scope="col" { "Ergebnis" } th scope="col" { "Einzelheiten" } } }
                tbody { @for sc in &r.scans { tr {
                    th scope="row" { (sc.part) }
                    td { (verdict_text(&sc.verdict)) }
                    td { (opt_text(sc.detail.as_deref())) }
                } } }
            }
        }))
        @if nested { h4 { "Ausgaben (" (r.outputs.len()) ")" } } @else { h3 { "Ausgaben (" (r.outputs.len()) ")" } }
        @if r.outputs.is_empty() { p { "Keine Ausgaben." } }
        @for (i, o) in r.outputs.iter().enumerate() {
            (output(o, &format!("{prefix}-{i}"), nested))
        }
    }
}

/// `text` cut to [`MAX_SHOWN`] bytes at a character boundary.
fn shown(text: &str) -> (&str, bool) {
    if text.len() <= MAX_SHOWN {
        return (text, false);
    }
    let mut end = MAX_SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

fn output(o: &DryRunOutput, id: &str, nested: bool) -> Markup {
    let (label, body) = match (&o.text, &o.base64) {
        (Some(t), _) => ("Inhalt", t.as_str()),
        (None, Some(b)) => ("Inhalt (kein UTF-8-Text, Base64-kodiert)", b.as_str()),
        (None, None) => ("Inhalt", ""),
    };
    let (text, cut) = shown(body);
    let heading = format!("ausgabe-{id}");
    html! {
        section.output aria-labelledby=(heading) {
            @if nested { h5 #(heading) { "Ziel " code { (o.target) } } }
            @else { h4 #(heading) { "Ziel " code { (o.target) } } }
            dl.fields {
                dt { "Kommune" } dd { (tenant_link(Some(&o.tenant))) }
                dt { "Verbindung" } dd { code { (o.connector) } }
                dt { "Inhaltstyp" } dd { (o.content_type) }
                dt { "Dateiname" } dd { (o.filename) }
                dt { "Größe" } dd { (number(o.size as u64)) " Bytes" }
                dt { "SHA-256" } dd.mono { (o.sha256) }
            }
            @if o.container {
                p.hint { "xdomea-Container: gezeigt wird die erzeugte Nachricht; die Drehscheibe würde sie mit der Nachricht und ihren Anhängen verpacken." }
            }
            p.label { (label) }
            pre.output tabindex="0" aria-label=(format!("{label} von {}", o.target)) { (text) }
            @if cut {
                p.hint { "Gekürzt: gezeigt werden die ersten " (human_bytes(MAX_SHOWN as u64)) " von " (number(body.len() as u64)) " Bytes." }
            }
        }
    }
}

fn comparison(cmp: &Comparison) -> Markup {
    let label = |r: &DryRun| {
        r.rule
            .as_ref()
            .map_or_else(|| "?".to_owned(), ToString::to_string)
    };
    html! {
        section aria-labelledby="ergebnis" {
            h2 #ergebnis { "Vergleich" }
            (nothing_kept())
            div.compare {
                section aria-labelledby="spalte-a" {
                    h3 #spalte-a { "Version A: " code { (label(&cmp.a)) } }
                    (result(&cmp.a, "a", true))
                }
                section aria-labelledby="spalte-b" {
                    h3 #spalte-b { "Version B: " code { (label(&cmp.b)) } }
                    (result(&cmp.b, "b", true))
                }
            }
            h2 { "Unterschiede der Ausgaben" }
            @if cmp.diffs.is_empty() { p { "Keine der beiden Versionen erzeugt Ausgaben." } }
            @for d in &cmp.diffs {
                h3 { "Ziel " code { (d.target) } }
                @if d.equal { p { "Gleich in beiden Versionen." } }
                @else { (diff::show(&d.diff)) }
            }
        }
    }
}
