//! Structured edits of a tenant file's text that keep everything else as
//! written: comments, key order, spacing, quoting of untouched values.
//!
//! The console's route form (ADR 0021) changes a route's rule pin and
//! targets with [`set_route`]; the result is a complete new file text,
//! which then goes through the same check, write, record and apply as a
//! text edit. Nothing here checks the configuration itself (that the rule
//! exists, that the connectors do): that is the load's job.
//!
//! ```
//! use std::collections::BTreeMap;
//! let text = "[[routes]]\nleistung = \"99021001000000\" # Hundesteuer\nrule = \"hundesteuer@^1\"\ntargets = { fachverfahren = \"steuer\" }\n";
//! let targets = BTreeMap::from([("fachverfahren".to_owned(), "steuer".to_owned())]);
//! let new = drehscheibe_config::edit::set_route(text, "99021001000000", "hundesteuer@=1.2.0", &targets).unwrap();
//! assert_eq!(new, text.replace("hundesteuer@^1", "hundesteuer@=1.2.0"));
//! ```

use std::collections::BTreeMap;

use toml_edit::{DocumentMut, InlineTable, Item, TableLike, Value};

/// Why a structured edit could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The text does not parse as TOML.
    #[error("the text is not TOML: {0}")]
    NotToml(String),
    /// The file has no `[[routes]]` entry with this `leistung`.
    #[error("no route for Leistung {0}")]
    NoRoute(String),
    /// The route hands its Leistung to another tenant (`delegate_to`): it
    /// has no rule or targets of its own.
    #[error(
        "the route for Leistung {leistung} delegates to {to}; it has no rule or targets of its own"
    )]
    Delegates {
        /// The route's Leistung.
        leistung: String,
        /// The tenant it delegates to.
        to: String,
    },
}

/// `text` with the route for `leistung` using `rule` (`id@requirement`)
/// and exactly `targets` (output role → connector id); nothing else
/// changes.
///
/// Routes are found in `[[routes]]` tables or in an inline array
/// `routes = [{ … }]` (the first with this `leistung`). Values that stay
/// the same are not touched; a changed value keeps the spacing and
/// comment around it. `targets` may be an inline table or a
/// `[routes.targets]` table: its keys keep their order, roles not in
/// `targets` are removed, new ones are appended. A route without
/// `rule` or `targets` gets them appended.
pub fn set_route(
    text: &str,
    leistung: &str,
    rule: &str,
    targets: &BTreeMap<String, String>,
) -> Result<String, EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::NotToml(e.to_string()))?;
    let route =
        find_route(doc.as_table_mut(), leistung).ok_or(EditError::NoRoute(leistung.to_owned()))?;
    if let Some(to) = route.get("delegate_to") {
        return Err(EditError::Delegates {
            leistung: leistung.to_owned(),
            to: to.as_str().unwrap_or("?").to_owned(),
        });
    }
    set_str(route, "rule", rule);
    match route.get_mut("targets") {
        Some(item) => match item.as_table_like_mut() {
            Some(table) => set_targets(table, targets),
            None => *item = Item::Value(Value::InlineTable(inline(targets))),
        },
        None => {
            route.insert("targets", Item::Value(Value::InlineTable(inline(targets))));
        }
    }
    Ok(line_ends_as_in(text, doc.to_string()))
}

/// toml_edit ends the lines it writes with `\n`: give them the file's
/// `\r\n` when every line of the file ends so, and keep a missing line
/// end at the end of the file missing.
fn line_ends_as_in(text: &str, mut out: String) -> String {
    let crlf = text.contains("\r\n") && text.matches('\n').count() == text.matches("\r\n").count();
    if crlf {
        out = out.replace("\r\n", "\n").replace('\n', "\r\n");
    }
    if !text.ends_with('\n') {
        let trimmed = out.strip_suffix(if crlf { "\r\n" } else { "\n" });
        if let Some(t) = trimmed {
            out.truncate(t.len());
        }
    }
    out
}

/// The first route table with this `leistung`.
fn find_route<'a>(root: &'a mut toml_edit::Table, leistung: &str) -> Option<&'a mut dyn TableLike> {
    let is_it = |t: &dyn TableLike| t.get("leistung").and_then(Item::as_str) == Some(leistung);
    match root.get_mut("routes")? {
        Item::ArrayOfTables(routes) => routes
            .iter_mut()
            .find(|t| is_it(&**t))
            .map(|t| t as &mut dyn TableLike),
        Item::Value(Value::Array(routes)) => routes
            .iter_mut()
            .filter_map(Value::as_inline_table_mut)
            .find(|t| is_it(&**t))
            .map(|t| t as &mut dyn TableLike),
        _ => None,
    }
}

/// Set `key` to the string `new`, keeping the decoration (spacing,
/// trailing comment) of a value that was there.
fn set_str(table: &mut dyn TableLike, key: &str, new: &str) {
    match table.get_mut(key) {
        Some(item) => match item.as_value_mut() {
            Some(v) if v.as_str() == Some(new) => {}
            Some(v) => {
                let decor = v.decor().clone();
                *v = Value::from(new);
                *v.decor_mut() = decor;
            }
            None => *item = toml_edit::value(new),
        },
        None => {
            table.insert(key, toml_edit::value(new));
        }
    }
}

fn set_targets(table: &mut dyn TableLike, targets: &BTreeMap<String, String>) {
    let gone: Vec<String> = table
        .iter()
        .map(|(k, _)| k.to_owned())
        .filter(|k| !targets.contains_key(k))
        .collect();
    for k in gone {
        table.remove(&k);
    }
    for (role, connector) in targets {
        set_str(table, role, connector);
    }
}

fn inline(targets: &BTreeMap<String, String>) -> InlineTable {
    let mut t = InlineTable::new();
    for (role, connector) in targets {
        t.insert(role, Value::from(connector.as_str()));
    }
    t.fmt();
    t
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const FILE: &str = "\
# Stadt Musterstadt – von Hand gepflegt
id = \"musterstadt\"
name   =   \"Stadt Musterstadt\"

[connectors.steuer]   # das Steuerverfahren
type = \"http\"
url = \"https://steuer.example/import\"

[connectors.umwelt]
type = \"http\"
url = \"https://umwelt.example/import\"

# Baumfällungen macht die Nachbarstadt.
[[routes]]
leistung = \"99104005000000\"
delegate_to = \"nachbarstadt\"

[[routes]]
leistung = \"99021001000000\"   # Hundesteuer
description = 'Hundesteuer'
rule   = \"hundesteuer@^1\"   # bis 2.0 getestet
targets = {  fachverfahren = \"steuer\",  archiv = \"umwelt\"  }
params = { satz = 12 }

[[routes]]
leistung = \"99050012104000\"
rule = 'gewerbe@^2'
stelle = \"gewerbeamt\"

[routes.targets]
# Gewerbeamt bekommt alles
fachverfahren = \"steuer\" # vorerst
";

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parses_with(text: &str, leistung: &str) -> toml::Table {
        let doc: toml::Table = toml::from_str(text).unwrap();
        let routes = doc["routes"].as_array().unwrap();
        routes
            .iter()
            .find(|r| r["leistung"].as_str() == Some(leistung))
            .unwrap()
            .as_table()
            .unwrap()
            .clone()
    }

    #[test]
    fn only_the_rule_value_changes() {
        let targets = map(&[("fachverfahren", "steuer"), ("archiv", "umwelt")]);
        let new = set_route(FILE, "99021001000000", "hundesteuer@=1.2.0", &targets).unwrap();
        assert_eq!(new, FILE.replace("hundesteuer@^1", "hundesteuer@=1.2.0"));
        let route = parses_with(&new, "99021001000000");
        assert_eq!(route["rule"].as_str(), Some("hundesteuer@=1.2.0"));
    }

    #[test]
    fn nothing_changes_when_nothing_is_new() {
        let targets = map(&[("fachverfahren", "steuer"), ("archiv", "umwelt")]);
        let new = set_route(FILE, "99021001000000", "hundesteuer@^1", &targets).unwrap();
        assert_eq!(new, FILE);
        // A literal string stays literal when its value is kept.
        let new = set_route(
            FILE,
            "99050012104000",
            "gewerbe@^2",
            &map(&[("fachverfahren", "steuer")]),
        )
        .unwrap();
        assert_eq!(new, FILE);
    }

    #[test]
    fn inline_targets_change_in_place() {
        let targets = map(&[("fachverfahren", "umwelt"), ("archiv", "umwelt")]);
        let new = set_route(FILE, "99021001000000", "hundesteuer@^1", &targets).unwrap();
        assert_eq!(
            new,
            FILE.replace(
                "{  fachverfahren = \"steuer\",",
                "{  fachverfahren = \"umwelt\","
            )
        );
        let route = parses_with(&new, "99021001000000");
        assert_eq!(route["targets"]["fachverfahren"].as_str(), Some("umwelt"));
        assert_eq!(route["targets"]["archiv"].as_str(), Some("umwelt"));
    }

    #[test]
    fn roles_are_removed_and_added() {
        let targets = map(&[("fachverfahren", "steuer"), ("statistik", "umwelt")]);
        let new = set_route(FILE, "99021001000000", "hundesteuer@^2", &targets).unwrap();
        let route = parses_with(&new, "99021001000000");
        let got: BTreeMap<String, String> = route["targets"]
            .as_table()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(got, targets);
        assert_eq!(route["rule"].as_str(), Some("hundesteuer@^2"));
        // Everything before and after the route's targets line is as it was.
        let line = |t: &str| {
            t.lines()
                .find(|l| l.starts_with("targets"))
                .unwrap()
                .to_owned()
        };
        let old_line = line(FILE);
        let new_line = line(&new);
        assert_eq!(
            new.replace(&new_line, &old_line),
            FILE.replace("hundesteuer@^1", "hundesteuer@^2")
        );
    }

    #[test]
    fn sub_table_targets_keep_their_comments() {
        let targets = map(&[("fachverfahren", "umwelt")]);
        let new = set_route(FILE, "99050012104000", "gewerbe@=2.3.1", &targets).unwrap();
        assert_eq!(
            new,
            FILE.replace("'gewerbe@^2'", "\"gewerbe@=2.3.1\"").replace(
                "fachverfahren = \"steuer\" # vorerst",
                "fachverfahren = \"umwelt\" # vorerst"
            )
        );
        let route = parses_with(&new, "99050012104000");
        assert_eq!(route["rule"].as_str(), Some("gewerbe@=2.3.1"));
        assert_eq!(route["targets"]["fachverfahren"].as_str(), Some("umwelt"));
        assert_eq!(route["stelle"].as_str(), Some("gewerbeamt"));
    }

    #[test]
    fn a_new_role_goes_into_the_sub_table() {
        let targets = map(&[("fachverfahren", "steuer"), ("archiv", "umwelt")]);
        let new = set_route(FILE, "99050012104000", "gewerbe@^2", &targets).unwrap();
        assert!(new.starts_with(FILE), "{new}");
        let route = parses_with(&new, "99050012104000");
        assert_eq!(route["targets"]["archiv"].as_str(), Some("umwelt"));
        assert_eq!(route["targets"]["fachverfahren"].as_str(), Some("steuer"));
    }

    #[test]
    fn missing_rule_and_targets_are_added() {
        let text =
            "id = \"x\"\n\n[[routes]]\nleistung = \"1\"\n\n[[routes]]\nleistung = \"2\" # zwei\n";
        let new = set_route(text, "2", "r@^1", &map(&[("out", "c")])).unwrap();
        assert!(new.starts_with(text.trim_end()), "{new}");
        let route = parses_with(&new, "2");
        assert_eq!(route["rule"].as_str(), Some("r@^1"));
        assert_eq!(route["targets"]["out"].as_str(), Some("c"));
        assert!(parses_with(&new, "1").get("rule").is_none());
    }

    #[test]
    fn inline_route_arrays_work_too() {
        let text = "routes = [\n  { leistung = \"1\", rule = \"r@^1\", targets = { out = \"a\" } }, # eins\n  { leistung = \"2\", rule = \"r@^1\", targets = { out = \"a\" } },\n]\n";
        let new = set_route(text, "2", "r@=1.0.3", &map(&[("out", "b")])).unwrap();
        assert_eq!(
            new,
            text.replace(
                "{ leistung = \"2\", rule = \"r@^1\", targets = { out = \"a\" } }",
                "{ leistung = \"2\", rule = \"r@=1.0.3\", targets = { out = \"b\" } }"
            )
        );
    }

    #[test]
    fn crlf_line_ends_are_kept() {
        let text = FILE.replace('\n', "\r\n");
        let targets = map(&[("fachverfahren", "steuer"), ("archiv", "umwelt")]);
        let new = set_route(&text, "99021001000000", "hundesteuer@=1.2.0", &targets).unwrap();
        assert_eq!(new, text.replace("hundesteuer@^1", "hundesteuer@=1.2.0"));
    }

    /// The shipped example tenant files: writing a route's own values back
    /// changes nothing; a new pin changes its `rule` line only.
    #[test]
    fn the_shipped_tenant_files_change_in_one_line_only() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/tenants");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let doc: toml::Table = toml::from_str(&text).unwrap();
            for route in doc["routes"].as_array().unwrap() {
                let leistung = route["leistung"].as_str().unwrap();
                let Some(rule) = route.get("rule").and_then(|r| r.as_str()) else {
                    continue;
                };
                let targets: BTreeMap<String, String> = route["targets"]
                    .as_table()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                assert_eq!(set_route(&text, leistung, rule, &targets).unwrap(), text);
                let (id, _) = rule.split_once('@').unwrap();
                let pin = format!("{id}@=9.9.9");
                let new = set_route(&text, leistung, &pin, &targets).unwrap();
                let changed: Vec<(&str, &str)> = text
                    .lines()
                    .zip(new.lines())
                    .filter(|(a, b)| a != b)
                    .collect();
                assert_eq!(text.lines().count(), new.lines().count());
                assert_eq!(changed.len(), 1, "{changed:?}");
                assert!(changed[0].1.trim_start().starts_with("rule"));
                assert!(changed[0].1.contains(&format!("\"{pin}\"")));
                assert_eq!(
                    parses_with(&new, leistung)["rule"].as_str(),
                    Some(pin.as_str())
                );
                seen += 1;
            }
        }
        assert!(seen >= 3, "{seen} routes");
    }

    #[test]
    fn a_missing_last_line_end_stays_missing() {
        let text = "[[routes]]\nleistung = \"1\"\nrule = \"r@^1\"\ntargets = { out = \"a\" }";
        let new = set_route(text, "1", "r@^2", &map(&[("out", "a")])).unwrap();
        assert_eq!(new, text.replace("r@^1", "r@^2"));
        let new = set_route(
            &text.replace('\n', "\r\n"),
            "1",
            "r@^2",
            &map(&[("out", "a")]),
        )
        .unwrap();
        assert_eq!(new, text.replace("r@^1", "r@^2").replace('\n', "\r\n"));
    }

    #[test]
    fn values_are_quoted() {
        let targets = map(&[("fach verfahren", "a\"b")]);
        let new = set_route(FILE, "99021001000000", "x@^1\"\n[evil]", &targets).unwrap();
        let route = parses_with(&new, "99021001000000");
        assert_eq!(route["rule"].as_str(), Some("x@^1\"\n[evil]"));
        assert_eq!(route["targets"]["fach verfahren"].as_str(), Some("a\"b"));
        let doc: toml::Table = toml::from_str(&new).unwrap();
        assert!(doc.get("evil").is_none());
    }

    #[test]
    fn unknown_delegating_and_broken_are_errors() {
        let targets = map(&[("fachverfahren", "steuer")]);
        assert_eq!(
            set_route(FILE, "99000000000000", "x@^1", &targets),
            Err(EditError::NoRoute("99000000000000".into()))
        );
        assert_eq!(
            set_route(FILE, "99104005000000", "x@^1", &targets),
            Err(EditError::Delegates {
                leistung: "99104005000000".into(),
                to: "nachbarstadt".into()
            })
        );
        assert_eq!(
            set_route("id = \"x\"\n", "1", "x@^1", &targets),
            Err(EditError::NoRoute("1".into()))
        );
        assert!(matches!(
            set_route("id = \n", "1", "x@^1", &targets),
            Err(EditError::NotToml(_))
        ));
    }
}
