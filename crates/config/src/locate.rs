//! Key paths and their positions in a TOML source file.
//!
//! Every file is parsed twice: once by `toml_edit` into a span-preserving
//! document (used here to turn a key path into a line number and a byte
//! offset back into a key path) and once by serde into the typed raw
//! structures.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{ImDocument, Item, Table, Value};

use crate::error::ConfigError;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A path to a value inside one TOML file, e.g. `routes[0].targets.dms`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(Vec<Seg>);

impl KeyPath {
    /// The document root.
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// This path extended by a table key.
    pub(crate) fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        Self(v)
    }

    /// This path extended by an array index.
    pub(crate) fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn is_bare(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare(k) {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// One configuration file: its text, its span-preserving parse and the
/// prefix put in front of its key paths in error messages.
pub(crate) struct Source {
    pub(crate) path: PathBuf,
    pub(crate) text: String,
    doc: Option<ImDocument<String>>,
    prefix: String,
}

impl Source {
    /// Parse `text`; a TOML syntax error is returned as a [`ConfigError`]
    /// (the source is still usable for error reporting).
    pub(crate) fn parse(path: &Path, text: String) -> (Self, Option<ConfigError>) {
        let (doc, err) = match ImDocument::parse(text.clone()) {
            Ok(doc) => (Some(doc), None),
            Err(e) => (None, Some((e.message().to_string(), e.span()))),
        };
        let src = Self {
            path: path.to_path_buf(),
            text,
            doc,
            prefix: String::new(),
        };
        let err = err.map(|(msg, span)| src.error_at_span(&msg, span));
        (src, err)
    }

    /// Set the prefix for key paths (e.g. `tenants[musterstadt]`).
    pub(crate) fn set_prefix(&mut self, prefix: String) {
        self.prefix = prefix;
    }

    /// The parsed document, if the file is syntactically valid TOML.
    pub(crate) fn doc(&self) -> Option<&ImDocument<String>> {
        self.doc.as_ref()
    }

    /// Full key string (prefix + path) as shown to the user.
    pub(crate) fn key_string(&self, path: &KeyPath) -> String {
        match (self.prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => {
                let p = path.to_string();
                if p.starts_with('[') {
                    format!("{}{p}", self.prefix)
                } else {
                    format!("{}.{p}", self.prefix)
                }
            }
        }
    }

    /// 1-based line of a byte offset.
    pub(crate) fn line_of_offset(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text
            .as_bytes()
            .get(..end)
            .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
            + 1
    }

    /// Line of the deepest existing prefix of `path` (the key itself if it
    /// is present, else the table that should contain it).
    pub(crate) fn line_of(&self, path: &KeyPath) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        span_of(doc.as_item(), &path.0).map(|s| self.line_of_offset(s.start))
    }

    /// The deepest key path whose key or value contains `offset`.
    pub(crate) fn path_at(&self, offset: usize) -> KeyPath {
        let mut best = KeyPath::root();
        if let Some(doc) = &self.doc {
            let mut cur = KeyPath::root();
            dfs_item(doc.as_item(), offset, &mut cur, &mut best);
        }
        best
    }

    /// An error at a key path.
    pub(crate) fn error(&self, path: &KeyPath, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.clone(),
            key: self.key_string(path),
            line: self.line_of(path),
            message: message.into(),
        }
    }

    /// An error at a byte span (from the TOML parser or deserializer).
    pub(crate) fn error_at_span(&self, message: &str, span: Option<Range<usize>>) -> ConfigError {
        let (key, line) = match span {
            Some(s) => (
                self.key_string(&self.path_at(s.start)),
                Some(self.line_of_offset(s.start)),
            ),
            None => (self.key_string(&KeyPath::root()), None),
        };
        ConfigError {
            file: self.path.clone(),
            key,
            line,
            message: tidy_message(message),
        }
    }
}

/// Parser messages may span several lines; keep one error per line.
fn tidy_message(m: &str) -> String {
    m.trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn contains(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

fn span_of(root: &Item, path: &[Seg]) -> Option<Range<usize>> {
    let mut best = root.span();
    let mut cur = Node::Item(root);
    for seg in path {
        let next = match (seg, cur) {
            (Seg::Key(k), Node::Item(Item::Table(t))) => t
                .get_key_value(k)
                .map(|(key, item)| (key.span().or_else(|| item.span()), Node::Item(item))),
            (Seg::Key(k), Node::Item(Item::Value(Value::InlineTable(t))))
            | (Seg::Key(k), Node::Value(Value::InlineTable(t))) => t
                .get_key_value(k)
                .map(|(key, item)| (key.span().or_else(|| item.span()), Node::Item(item))),
            (Seg::Index(i), Node::Item(Item::ArrayOfTables(a))) => {
                a.get(*i).map(|t| (t.span(), Node::Table(t)))
            }
            (Seg::Key(k), Node::Table(t)) => t
                .get_key_value(k)
                .map(|(key, item)| (key.span().or_else(|| item.span()), Node::Item(item))),
            (Seg::Index(i), Node::Item(Item::Value(Value::Array(a))))
            | (Seg::Index(i), Node::Value(Value::Array(a))) => {
                a.get(*i).map(|v| (v.span(), Node::Value(v)))
            }
            _ => None,
        };
        match next {
            Some((span, node)) => {
                if span.is_some() {
                    best = span;
                }
                cur = node;
            }
            None => break,
        }
    }
    best
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a Table),
    Value(&'a Value),
}

fn consider(hit: bool, cur: &KeyPath, best: &mut KeyPath) {
    if hit && cur.0.len() >= best.0.len() {
        *best = cur.clone();
    }
}

fn dfs_table(t: &Table, offset: usize, cur: &mut KeyPath, best: &mut KeyPath) {
    for (k, item) in t.iter() {
        cur.0.push(Seg::Key(k.to_string()));
        let key_span = t.key(k).and_then(|key| key.span());
        consider(
            contains(key_span, offset) || contains(item.span(), offset),
            cur,
            best,
        );
        dfs_item(item, offset, cur, best);
        cur.0.pop();
    }
}

fn dfs_item(item: &Item, offset: usize, cur: &mut KeyPath, best: &mut KeyPath) {
    match item {
        Item::Table(t) => dfs_table(t, offset, cur, best),
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                cur.0.push(Seg::Index(i));
                consider(contains(t.span(), offset), cur, best);
                dfs_table(t, offset, cur, best);
                cur.0.pop();
            }
        }
        Item::Value(v) => dfs_value(v, offset, cur, best),
        Item::None => {}
    }
}

fn dfs_value(v: &Value, offset: usize, cur: &mut KeyPath, best: &mut KeyPath) {
    match v {
        Value::Array(a) => {
            for (i, el) in a.iter().enumerate() {
                cur.0.push(Seg::Index(i));
                consider(contains(el.span(), offset), cur, best);
                dfs_value(el, offset, cur, best);
                cur.0.pop();
            }
        }
        Value::InlineTable(t) => {
            for (k, el) in t.iter() {
                cur.0.push(Seg::Key(k.to_string()));
                let key_span = t.key(k).and_then(|key| key.span());
                consider(
                    contains(key_span, offset) || contains(el.span(), offset),
                    cur,
                    best,
                );
                dfs_value(el, offset, cur, best);
                cur.0.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"id = "x"

[connectors.fv]
type = "http"
url = "http://h"
headers = { "X-A" = "1" }

[[routes]]
leistung = "1"
targets = { fachverfahren = "fv" }

[[routes]]
leistung = "2"
params = { list = [1, 2] }
"#;

    fn src() -> Source {
        let (s, e) = Source::parse(Path::new("t.toml"), DOC.to_string());
        assert!(e.is_none());
        s
    }

    #[test]
    fn key_paths_map_to_lines() {
        let s = src();
        let p = KeyPath::root();
        assert_eq!(s.line_of(&p.key("id")), Some(1));
        assert_eq!(s.line_of(&p.key("connectors").key("fv")), Some(3));
        assert_eq!(
            s.line_of(&p.key("connectors").key("fv").key("url")),
            Some(5)
        );
        // missing key: falls back to the containing table
        assert_eq!(
            s.line_of(&p.key("connectors").key("fv").key("method")),
            Some(3)
        );
        assert_eq!(
            s.line_of(&p.key("routes").index(1).key("leistung")),
            Some(13)
        );
        assert_eq!(
            s.line_of(&p.key("routes").index(0).key("targets").key("fachverfahren")),
            Some(10)
        );
    }

    #[test]
    fn offsets_map_to_key_paths() {
        let s = src();
        let off = DOC.find("\"fv\" }").unwrap();
        assert_eq!(
            s.path_at(off).to_string(),
            "routes[0].targets.fachverfahren"
        );
        let off = DOC.find("2] }").unwrap();
        assert_eq!(s.path_at(off).to_string(), "routes[1].params.list[1]");
        let off = DOC.find("\"1\" }").unwrap();
        assert_eq!(s.path_at(off).to_string(), "connectors.fv.headers.X-A");
    }

    #[test]
    fn prefix_is_joined() {
        let mut s = src();
        s.set_prefix("tenants[ms]".into());
        assert_eq!(
            s.key_string(&KeyPath::root().key("routes").index(0)),
            "tenants[ms].routes[0]"
        );
        assert_eq!(s.key_string(&KeyPath::root()), "tenants[ms]");
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let (_, e) = Source::parse(Path::new("t.toml"), "a = 1\nb = = 2\n".into());
        let e = e.unwrap();
        assert_eq!(e.line, Some(2));
        assert!(!e.message.contains('\n'));
    }
}
