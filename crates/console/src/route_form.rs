//! The route form on a Kommune's page: change a route's rule pin
//! (`rule = "id@requirement"`) and its targets (output role → connector)
//! without touching the TOML text by hand.
//!
//! The new file text is the file's current text with only that route's
//! `rule` and `targets` values changed ([`drehscheibe_config::edit::set_route`]:
//! comments, order and spacing stay). It is then saved exactly like the
//! editor's text ([`config_pages::commit`]: `ConfigAdmin::change`, which
//! checks like `config check`, writes, records and applies), with the same
//! answers: back to the page with the revision, or the page with the
//! refusal (`422`, `409`, …) and the candidate text in the editor.
//!
//! Form fields: `leistung`, `rule` (`id@requirement`), `target.<role>`
//! (a connector id; empty: the role is not mapped), `expect_sha256`,
//! `comment`, `csrf`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use drehscheibe_config::edit::{set_route, EditError};
use drehscheibe_config::{RouteConfig, RuleSelector, TenantConfig};
use drehscheibe_engine::admin::Change;
use drehscheibe_rules::{Depot, RulePackage};
use maud::{html, Markup};

use crate::config_pages::{self, editable_file};
use crate::layout::{self, csrf_field, not_found, notice, page, Nav};
use crate::session::Session;
use crate::Console;

/// Prefix of the target fields: `target.<role>`.
const TARGET: &str = "target.";

/// What the route forms of one Kommune's page need (shown to operators
/// when the file is editable).
pub(crate) struct RouteForms<'a> {
    pub(crate) session: &'a Session,
    pub(crate) tenant: &'a TenantConfig,
    /// The digest of the file as shown: a change made meanwhile refuses
    /// the save (`409`).
    pub(crate) expect_sha256: &'a str,
    pub(crate) depot: Arc<Depot>,
}

impl RouteForms<'_> {
    /// One `<details>` per route with a rule of its own (delegating routes
    /// have none), below the route table.
    pub(crate) fn render(&self) -> Markup {
        let routes: Vec<(&RouteConfig, &RuleSelector)> = self
            .tenant
            .routes
            .iter()
            .filter(|r| r.delegate_to.is_none())
            .filter_map(|r| r.rule.as_ref().map(|rule| (r, rule)))
            .collect();
        if routes.is_empty() {
            return html! {};
        }
        html! {
            h3 #routen-aendern { "Route ändern" }
            p.hint { "Regelversion und Ziele einer Route: Nur diese Werte ändern sich in der Datei. Die Änderung wird wie jede andere geprüft, gespeichert, im Verlauf festgehalten und ohne Neustart angewendet." }
            ul.route-edits {
                @for (r, rule) in &routes { li { (self.form(r, rule)) } }
            }
        }
    }

    fn form(&self, r: &RouteConfig, rule: &RuleSelector) -> Markup {
        let tenant = &self.tenant.id;
        let id = format!("route-{}", r.leistung);
        let versions: Vec<Arc<RulePackage>> = self
            .depot
            .packages()
            .into_iter()
            .filter(|p| p.id() == rule.id)
            .collect();
        let pins = pins(rule, &versions);
        let roles = roles(&versions, r);
        html! {
            details.route-edit #(id) {
                summary {
                    "Route " code { (r.leistung) } " ändern"
                    @if let Some(d) = &r.description { span.muted { " – " (d) } }
                }
                form.stack method="post" action=(format!("/console/kommunen/{tenant}/route")) {
                    (csrf_field(self.session))
                    input type="hidden" name="leistung" value=(r.leistung);
                    input type="hidden" name="expect_sha256" value=(self.expect_sha256);
                    div.field {
                        label for=(format!("{id}-regel")) { "Regelversion" }
                        select #(format!("{id}-regel")) name="rule" aria-describedby=(format!("{id}-regel-hinweis")) {
                            (pin_options(rule, &pins))
                        }
                        p.hint #(format!("{id}-regel-hinweis")) {
                            "Mit „^“ gilt die jeweils neueste Version dieser Hauptversion im Depot (auch eine künftig veröffentlichte), mit „=“ genau die gewählte."
                        }
                    }
                    @if versions.is_empty() {
                        p.hint { "Die Regel " code { (rule.id) } " ist nicht im Depot; welche Ausgaben sie hat, ist nicht bekannt." }
                    }
                    @for (j, (role, required)) in roles.iter().enumerate() {
                        div.field {
                            label for=(format!("{id}-ziel-{j}")) { "Ziel " (role) }
                            select #(format!("{id}-ziel-{j}")) name=(format!("{TARGET}{role}")) {
                                (connector_options(self.tenant, r.targets.get(role), *required))
                            }
                        }
                    }
                    div.field {
                        label for=(format!("{id}-kommentar")) { "Kommentar (optional)" }
                        input #(format!("{id}-kommentar")) type="text" name="comment";
                    }
                    div.actions { button type="submit" { "Route speichern und anwenden" } }
                }
            }
        }
    }
}

/// The output roles a route's form maps: those of the `versions` of its
/// rule in the depot, and those the route maps now; each with whether
/// every version produces it (then it must be mapped; otherwise the form
/// offers "none").
fn roles(versions: &[Arc<RulePackage>], r: &RouteConfig) -> Vec<(String, bool)> {
    let outputs: Vec<BTreeSet<String>> = versions
        .iter()
        .map(|p| p.outputs().iter().map(|o| o.target.clone()).collect())
        .collect();
    let mut all: BTreeSet<String> = outputs.iter().flatten().cloned().collect();
    all.extend(r.targets.keys().cloned());
    all.into_iter()
        .map(|role| {
            let required = !outputs.is_empty() && outputs.iter().all(|o| o.contains(&role));
            (role, required)
        })
        .collect()
}

/// What the pin select offers.
#[derive(Debug, Default)]
struct Pins {
    /// `^<major>` for each major version in the depot, newest first, with
    /// the newest version it takes now (`None`: only pre-releases).
    caret: Vec<(String, Option<String>)>,
    /// `=<version>` for each version, newest first, with whether it loads.
    exact: Vec<(String, bool)>,
}

/// The pins for `rule` from its `versions` in the depot (in the depot's
/// order: oldest first).
fn pins(rule: &RuleSelector, versions: &[Arc<RulePackage>]) -> Pins {
    let mut majors: Vec<u64> = versions.iter().map(|p| p.version().major).collect();
    majors.sort_unstable_by(|a, b| b.cmp(a));
    majors.dedup();
    let caret = majors
        .iter()
        .map(|m| {
            let req = format!("^{m}");
            let newest = format!("{}@{req}", rule.id)
                .parse::<RuleSelector>()
                .ok()
                .and_then(|sel| {
                    versions
                        .iter()
                        .map(|p| p.version())
                        .filter(|v| sel.matches(&rule.id, v))
                        .max()
                        .map(ToString::to_string)
                });
            (req, newest)
        })
        .collect();
    let exact = versions
        .iter()
        .rev()
        .map(|p| (format!("={}", p.version()), p.unavailable().is_none()))
        .collect();
    Pins { caret, exact }
}

/// The pin options: the `^` ones, then the `=` ones; the current
/// requirement selected (offered on its own first if it is neither).
fn pin_options(rule: &RuleSelector, pins: &Pins) -> Markup {
    let value = |req: &str| format!("{}@{req}", rule.id);
    let is_current = |req: &str| value(req).parse::<RuleSelector>().is_ok_and(|s| s == *rule);
    let offered = pins.caret.iter().any(|(q, _)| is_current(q))
        || pins.exact.iter().any(|(q, _)| is_current(q));
    html! {
        @if !offered {
            option value=(value(&rule.version.to_string())) selected { (rule.version) " (aktuell)" }
        }
        @if !pins.caret.is_empty() {
            optgroup label="Neueste einer Hauptversion" {
                @for (q, newest) in &pins.caret {
                    option value=(value(q)) selected[is_current(q)] {
                        (q)
                        @match newest { Some(v) => { " – jetzt " (v) }, None => { " – keine freigegebene Version" } }
                        @if is_current(q) { " (aktuell)" }
                    }
                }
            }
        }
        @if !pins.exact.is_empty() {
            optgroup label="Genau eine Version" {
                @for (q, loads) in &pins.exact {
                    option value=(value(q)) selected[is_current(q)] {
                        (q)
                        @if !loads { " – lädt nicht" }
                        @if is_current(q) { " (aktuell)" }
                    }
                }
            }
        }
    }
}

/// The tenant's connectors, `current` selected; "none" first unless the
/// role is `required`.
fn connector_options(t: &TenantConfig, current: Option<&String>, required: bool) -> Markup {
    let known = current.is_none_or(|c| t.connector(c).is_some());
    html! {
        @if !required || current.is_none() {
            option value="" selected[current.is_none()] { "– keine Verbindung –" }
        }
        @if !known {
            @if let Some(c) = current { option value=(c) selected { (c) " (unbekannt)" } }
        }
        @for k in &t.connectors {
            option value=(k.id) selected[current == Some(&k.id)] {
                (k.id)
                @if let Some(fv) = &k.fachverfahren { " – " (fv) }
            }
        }
    }
}

/// The route form's fields.
#[derive(Debug, Default)]
struct RouteForm {
    leistung: String,
    rule: String,
    targets: BTreeMap<String, String>,
    expect_sha256: String,
    comment: String,
}

impl RouteForm {
    /// From the submitted pairs (the first of a repeated field counts;
    /// an empty `target.<role>` maps nothing).
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut f = Self::default();
        let mut seen = BTreeSet::new();
        for (k, v) in pairs {
            if !seen.insert(k.clone()) {
                continue;
            }
            match k.as_str() {
                "leistung" => f.leistung = v.trim().to_owned(),
                "rule" => f.rule = v.trim().to_owned(),
                "expect_sha256" => f.expect_sha256 = v.trim().to_owned(),
                "comment" => f.comment = v.trim().to_owned(),
                _ => {
                    if let Some(role) = k.strip_prefix(TARGET) {
                        let v = v.trim();
                        if !role.is_empty() && !v.is_empty() {
                            f.targets.insert(role.to_owned(), v.to_owned());
                        }
                    }
                }
            }
        }
        f
    }
}

/// `POST /console/kommunen/{tenant}/route`.
pub(crate) async fn save(
    State(c): State<Console>,
    Extension(s): Extension<Session>,
    Path(tenant): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let file = match editable_file(&c, &s, &tenant).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let form = RouteForm::from_pairs(pairs);
    if form.rule.is_empty() {
        return refused(
            &s,
            &tenant,
            &form.leistung,
            "Es ist keine Regelversion gewählt.",
        );
    }
    let text = match set_route(&file.text, &form.leistung, &form.rule, &form.targets) {
        Ok(text) => text,
        Err(EditError::NoRoute(_)) => return not_found(Some(&s)),
        Err(EditError::Delegates { to, .. }) => {
            return refused(
                &s,
                &tenant,
                &form.leistung,
                &format!(
                    "Diese Route lenkt an {to} um; sie hat keine eigene Regel und keine Ziele."
                ),
            )
        }
        Err(EditError::NotToml(e)) => {
            return refused(
                &s,
                &tenant,
                &form.leistung,
                &format!("Die Datei ist kein gültiges TOML ({e}). Bitte ändern Sie sie im Editor."),
            )
        }
    };
    let change = Change {
        path: file.path.clone(),
        text,
        expect_sha256: (!form.expect_sha256.is_empty()).then(|| form.expect_sha256.clone()),
        comment: form.comment.clone(),
    };
    let top = notice(
        "warn",
        html! { p {
            "Die Route " code { (form.leistung) } " wurde nicht geändert. Den Grund finden Sie "
            a href="#datei" { "bei der Datei" }
            "; dort steht auch der geänderte Text."
        } },
    );
    config_pages::commit(
        &c,
        &s,
        &tenant,
        &file,
        change,
        &form.expect_sha256,
        Some(top),
    )
    .await
}

/// `422`: the route form cannot be applied to the file as it is.
fn refused(s: &Session, tenant: &str, leistung: &str, why: &str) -> Response {
    layout::respond(
        StatusCode::UNPROCESSABLE_ENTITY,
        page(
            "Route nicht geändert",
            Some(s),
            Nav::Tenants,
            html! {
                (notice("error", html! {
                    p { strong { "Die Route " code { (leistung) } " wurde nicht geändert." } }
                    p { (why) }
                }))
                p { a href=(format!("/console/kommunen/{tenant}")) { "Zurück zur Kommune" } }
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sel(s: &str) -> RuleSelector {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    /// What the pins of baum 1.0.0, 2.0.0 and 2.1.0 are.
    fn baum() -> Pins {
        Pins {
            caret: vec![
                ("^2".into(), Some("2.1.0".into())),
                ("^1".into(), Some("1.0.0".into())),
            ],
            exact: vec![
                ("=2.1.0".into(), true),
                ("=2.0.0".into(), true),
                ("=1.0.0".into(), false),
            ],
        }
    }

    #[test]
    fn pins_offer_majors_and_versions_with_the_current_selected() {
        let versions = baum();
        let html = pin_options(&sel("baum@^2"), &versions).into_string();
        assert!(
            html.contains("<option value=\"baum@^2\" selected>^2 – jetzt 2.1.0 (aktuell)</option>"),
            "{html}"
        );
        assert!(html.contains("<option value=\"baum@^1\">^1 – jetzt 1.0.0</option>"));
        assert!(html.contains("<option value=\"baum@=2.1.0\">=2.1.0</option>"));
        assert!(html.contains("<option value=\"baum@=1.0.0\">=1.0.0 – lädt nicht</option>"));
        assert!(html.find("baum@^2").unwrap() < html.find("baum@^1").unwrap());
        assert!(html.find("=2.1.0").unwrap() < html.find("=2.0.0").unwrap());
        assert_eq!(html.matches(" selected").count(), 1);

        let html = pin_options(&sel("baum@=2.0.0"), &versions).into_string();
        assert!(
            html.contains("<option value=\"baum@=2.0.0\" selected>=2.0.0 (aktuell)</option>"),
            "{html}"
        );
        assert_eq!(html.matches(" selected").count(), 1);

        // A requirement the form does not offer is kept, selected.
        let html = pin_options(&sel("baum@~2.0"), &versions).into_string();
        assert!(
            html.starts_with("<option value=\"baum@~2.0\" selected>~2.0 (aktuell)</option>"),
            "{html}"
        );
        assert_eq!(html.matches(" selected").count(), 1);

        // No version in the depot: only the current one.
        let html = pin_options(&sel("weg@^1"), &Pins::default()).into_string();
        assert_eq!(
            html,
            "<option value=\"weg@^1\" selected>^1 (aktuell)</option>"
        );
    }

    #[test]
    fn the_form_takes_targets_and_the_first_of_repeated_fields() {
        let pairs = [
            ("leistung", " 1 "),
            ("rule", "r@^1"),
            ("rule", "r@^9"),
            ("target.a", "x"),
            ("target.b", ""),
            ("target.", "y"),
            ("csrf", "c"),
            ("comment", " neu "),
        ];
        let f = RouteForm::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        assert_eq!(f.leistung, "1");
        assert_eq!(f.rule, "r@^1");
        assert_eq!(f.comment, "neu");
        assert_eq!(
            f.targets,
            BTreeMap::from([("a".to_owned(), "x".to_owned())])
        );
    }
}
