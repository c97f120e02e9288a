//! Secrets: where they come from and their resolved, redacted value.

use std::fmt;
use std::path::PathBuf;

/// A secret value that never shows up in `Debug` or `Display` output
/// (both print `***`). Use [`SecretString::expose`] where the value is
/// really needed (an `Authorization` header, an SMTP login).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret was taken from. TOML: `{ env = "NAME" }`,
/// `{ file = "path" }` or `{ value = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable (its name).
    Env(String),
    /// A file (resolved path); one trailing line break is removed.
    File(PathBuf),
    /// Written literally into the configuration (demo and tests only).
    Value,
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Value => f.write_str("value"),
        }
    }
}

/// A secret resolved at load time, together with its source.
///
/// `Debug` shows the source (an env variable name or a file path is not
/// secret) and `***` for the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// Where the value came from.
    pub source: SecretSource,
    /// The resolved value.
    pub value: SecretString,
}

impl Secret {
    /// A secret given literally (for tests and programmatic configs).
    pub fn from_value(value: impl Into<String>) -> Self {
        Self {
            source: SecretSource::Value,
            value: SecretString::new(value),
        }
    }

    /// The secret value itself.
    pub fn expose(&self) -> &str {
        self.value.expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret {
            source: SecretSource::Env("HUB_TOKEN".into()),
            value: SecretString::new("hunter2-very-secret"),
        };
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("***"));
        assert!(dbg.contains("HUB_TOKEN"));
        assert_eq!(format!("{}", s.value), "***");
        assert_eq!(format!("{:?}", s.value), "***");
        assert_eq!(format!("{:#?}", s.value), "***");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }
}

/// `text` (a configuration file) with every secret written inline —
/// `{ value = "…" }` — replaced by `"********"`, everything else as
/// written. For showing a file to someone who may read it but not its
/// secrets (a tenant in the console). `None` when the text is not TOML
/// (then nothing of it should be shown).
pub fn redact_inline_secrets(text: &str) -> Option<String> {
    use toml_edit::{ImDocument, Item, Value};
    let doc = ImDocument::parse(text.to_owned()).ok()?;
    let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
    fn is_secret<'a>(keys: impl Iterator<Item = &'a str>) -> bool {
        let mut any = false;
        for k in keys {
            if !matches!(k, "value" | "env" | "file") {
                return false;
            }
            any = true;
        }
        any
    }
    fn value(v: &Value, spans: &mut Vec<std::ops::Range<usize>>) {
        match v {
            Value::InlineTable(t) => {
                if is_secret(t.iter().map(|(k, _)| k)) {
                    if let Some(Value::String(s)) = t.get("value") {
                        spans.extend(s.span());
                    }
                }
                for (_, v) in t.iter() {
                    value(v, spans);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| value(v, spans)),
            _ => {}
        }
    }
    fn item(i: &Item, spans: &mut Vec<std::ops::Range<usize>>) {
        match i {
            Item::Table(t) => {
                if is_secret(t.iter().map(|(k, _)| k)) {
                    if let Some(Item::Value(Value::String(s))) = t.get("value") {
                        spans.extend(s.span());
                    }
                }
                for (_, i) in t.iter() {
                    item(i, spans);
                }
            }
            Item::ArrayOfTables(a) => {
                for t in a.iter() {
                    for (_, i) in t.iter() {
                        item(i, spans);
                    }
                }
            }
            Item::Value(v) => value(v, spans),
            Item::None => {}
        }
    }
    for (_, i) in doc.iter() {
        item(i, &mut spans);
    }
    spans.sort_by_key(|r| std::cmp::Reverse(r.start));
    let mut out = text.to_owned();
    for r in spans {
        if out.get(r.clone()).is_some() {
            out.replace_range(r, "\"********\"");
        }
    }
    Some(out)
}

#[cfg(test)]
mod redact_tests {
    use super::redact_inline_secrets;

    #[test]
    fn inline_secret_values_are_masked_and_nothing_else() {
        let text = r#"id = "alpha" # value = "not a secret"
name = "Alpha"

[connectors.fv]
type = "http"
url = "https://fv.example/in"
auth = { type = "bearer", token = { value = "s3cr3t" } }
headers = { value = "kept: not a secret table" , other = "x" }

[connectors.mail.password]
value = 'also-secret'

[connectors.dir]
token = { env = "FV_TOKEN" }
"#;
        let out = redact_inline_secrets(text).unwrap();
        assert!(
            !out.contains("s3cr3t") && !out.contains("also-secret"),
            "{out}"
        );
        assert_eq!(out.matches("\"********\"").count(), 2, "{out}");
        assert!(out.contains("kept: not a secret table"));
        assert!(out.contains("# value = \"not a secret\""));
        assert!(out.contains("token = { env = \"FV_TOKEN\" }"));
        assert_eq!(
            out.lines().count(),
            text.lines().count(),
            "layout unchanged"
        );
        assert_eq!(redact_inline_secrets("a = ["), None);
    }
}
