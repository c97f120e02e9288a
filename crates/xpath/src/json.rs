//! JSON ↔ the XPath 3.1 `fn:json-to-xml` XML representation (OWNER: tree helper).
//!
//! [`json_to_xml`] turns a JSON text into the tree F&O 3.1 §17.5 defines,
//! in the namespace [`FN_NS`]:
//!
//! * object → `<map>`, array → `<array>`, string → `<string>`,
//!   number → `<number>`, `true`/`false` → `<boolean>true</boolean>`,
//!   `null` → `<null/>`;
//! * members of an object carry their key in a `key` attribute, in input
//!   order; duplicate keys are retained by default ([`Duplicates`]);
//! * keys and strings are plain text; characters XML cannot carry (e.g.
//!   `\u0000`) become U+FFFD. With [`JsonOptions::escape`], backslashes
//!   and such characters are written as JSON escapes instead and the
//!   element gets `escaped="true"` (`escaped-key="true"` for keys);
//! * numbers: integers exactly as written (within 64 bits), other numbers
//!   in the shortest form that round-trips as `xs:double` (`1.50` → `1.5`).
//!
//! The default namespace is declared on the root element, so
//! `{"a":[1,true]}` becomes
//! `<map xmlns="http://www.w3.org/2005/xpath-functions"><array key="a"><number>1</number><boolean>true</boolean></array></map>`.
//!
//! Memory and time: the nesting depth is checked by a linear pre-scan
//! *before* `serde_json` recurses, and the values stream from
//! `serde_json`'s deserializer straight into the [`Builder`] — no
//! intermediate `serde_json::Value`.
//!
//! [`check_json`] answers "would [`json_to_xml`] accept this?" by running
//! the very same deserializer calls into a sink that keeps nothing — the
//! check an intake must use so that it never accepts what the conversion
//! later refuses (out-of-range numbers, lone surrogate escapes).
//!
//! [`xml_to_json`] is the inverse (`fn:xml-to-json`): it validates the
//! same vocabulary (errors `FOJS0006`/`FOJS0007`) and writes compact JSON,
//! iteratively (no recursion on document depth).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::tree::{Builder, Document, NameId, Node, NodeKind, QName};

/// Namespace of the `fn:json-to-xml` vocabulary.
pub const FN_NS: &str = "http://www.w3.org/2005/xpath-functions";

/// Default deepest object/array nesting (below `serde_json`'s own
/// recursion limit of 128).
pub const DEFAULT_MAX_DEPTH: usize = 100;

/// What to do with duplicate keys in one object (`duplicates` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Duplicates {
    /// Keep every member (the default when not validating).
    #[default]
    Retain,
    /// Error `FOJS0003`.
    Reject,
    /// Keep the first member with a key, drop the later ones.
    UseFirst,
}

/// Options of [`json_to_xml`].
#[derive(Debug, Clone)]
pub struct JsonOptions {
    /// Deepest object/array nesting accepted (default 100; values above
    /// 127 are capped by `serde_json`'s recursion limit).
    pub max_depth: usize,
    /// Duplicate key handling.
    pub duplicates: Duplicates,
    /// `escape` option: keep JSON escapes for backslashes and characters
    /// XML cannot carry, marking such values `escaped="true"`.
    pub escape: bool,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            max_depth: DEFAULT_MAX_DEPTH,
            duplicates: Duplicates::Retain,
            escape: false,
        }
    }
}

/// Why JSON could not be converted (either direction).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Nesting deeper than [`JsonOptions::max_depth`] (`FOJS0001`).
    #[error("JSON nesting deeper than {limit} levels, at line {line}, column {column}")]
    TooDeep {
        /// The limit.
        limit: usize,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// Not JSON (`FOJS0001`).
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Malformed {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A duplicate key with `duplicates: reject` (`FOJS0003`).
    #[error("duplicate key {0:?} in a JSON object")]
    DuplicateKey(String),
    /// The XML is not a valid `fn:json-to-xml` representation (`FOJS0006`).
    #[error("invalid XML representation of JSON: {0}")]
    InvalidXml(String),
    /// A bad escape sequence in an `escaped` value (`FOJS0007`).
    #[error("invalid JSON escape sequence in {0:?}")]
    InvalidEscape(String),
}

impl JsonError {
    /// The W3C error code.
    pub fn code(&self) -> &'static str {
        match self {
            JsonError::TooDeep { .. } | JsonError::Malformed { .. } => "FOJS0001",
            JsonError::DuplicateKey(_) => "FOJS0003",
            JsonError::InvalidXml(_) => "FOJS0006",
            JsonError::InvalidEscape(_) => "FOJS0007",
        }
    }
}

impl From<JsonError> for crate::error::Error {
    fn from(e: JsonError) -> Self {
        crate::error::Error::new(e.code(), e.to_string())
    }
}

fn serde_error(e: serde_json::Error) -> JsonError {
    let message = e.to_string();
    if let Some(key) = message.strip_prefix(DUP_MARK) {
        // Our own duplicate-key error, routed through serde.
        let key = key.split(" at line ").next().unwrap_or(key);
        return JsonError::DuplicateKey(key.to_string());
    }
    JsonError::Malformed {
        line: e.line(),
        column: e.column(),
        message,
    }
}

const DUP_MARK: &str = "\u{1}duplicate key:";

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before.get(start..).unwrap_or("").chars().count() + 1)
}

/// Refuses JSON nested deeper than `limit`, before any parsing (a linear
/// byte scan; used by intake checks that must not build anything).
pub fn check_depth(text: &str, limit: usize) -> Result<(), JsonError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, byte) in text.bytes().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    let (line, column) = line_column(text, offset);
                    return Err(JsonError::TooDeep {
                        limit,
                        line,
                        column,
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Converts a JSON text to its `fn:json-to-xml` document (see the module
/// docs for the mapping). A leading byte order mark is ignored.
pub fn json_to_xml(text: &str, options: &JsonOptions) -> Result<Document, JsonError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    check_depth(text, options.max_depth)?;
    let mut b = Builder::new_document(None);
    // Modest pre-sizing; the buffers grow as needed and are shrunk to fit.
    b.reserve(text.len() / 16 + 2, text.len() / 8);
    let q = |local: &str| QName::new(FN_NS, local, "");
    let names = Names {
        map: b.intern(&q("map")),
        array: b.intern(&q("array")),
        string: b.intern(&q("string")),
        number: b.intern(&q("number")),
        boolean: b.intern(&q("boolean")),
        null: b.intern(&q("null")),
        key: b.intern(&QName::local("key")),
        escaped: b.intern(&QName::local("escaped")),
        escaped_key: b.intern(&QName::local("escaped-key")),
    };
    convert(text, &mut b, &names, options)?;
    Ok(b.finish())
}

/// Checks that [`json_to_xml`] would accept `text` with `options`, without
/// building anything: the same depth pre-scan and the same deserializer
/// calls (so every string is unescaped — a lone surrogate escape such as
/// `\ud800` is refused — and every number is converted — `1e999999999`
/// is refused as out of range), writing into a sink that discards.
///
/// This is what an intake check must use: a plain "is it JSON" skim
/// (`serde::de::IgnoredAny`) skips exactly those two checks and would let
/// through texts the conversion then refuses.
pub fn check_json(text: &str, options: &JsonOptions) -> Result<(), JsonError> {
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    check_depth(text, options.max_depth)?;
    let names = Names {
        map: 0,
        array: 0,
        string: 0,
        number: 0,
        boolean: 0,
        null: 0,
        key: 0,
        escaped: 0,
        escaped_key: 0,
    };
    convert(text, &mut Discard, &names, options)
}

/// Runs the deserializer over `text` into `sink` (the one JSON reading
/// path of both [`json_to_xml`] and [`check_json`]).
fn convert<S: Sink>(
    text: &str,
    sink: &mut S,
    names: &Names,
    options: &JsonOptions,
) -> Result<(), JsonError> {
    let mut de = serde_json::Deserializer::from_str(text);
    Seed {
        b: sink,
        names,
        options,
        key: None,
    }
    .deserialize(&mut de)
    .map_err(serde_error)?;
    de.end().map_err(serde_error)
}

/// Where the converter writes: the tree [`Builder`], or [`Discard`] for
/// a check.
trait Sink {
    fn start(&mut self, name: NameId);
    fn attribute(&mut self, name: NameId, value: &str);
    fn text(&mut self, text: &str);
    fn end(&mut self);
    /// Whether the written values are kept (a check skips preparing them).
    fn keeps(&self) -> bool;
}

impl Sink for Builder {
    fn start(&mut self, name: NameId) {
        self.start_element_id(name);
    }
    fn attribute(&mut self, name: NameId, value: &str) {
        // A freshly started element always accepts attributes.
        let _ = self.attribute_id(name, value);
    }
    fn text(&mut self, text: &str) {
        Builder::text(self, text);
    }
    fn end(&mut self) {
        let _ = self.end_element();
    }
    fn keeps(&self) -> bool {
        true
    }
}

/// A sink that keeps nothing (see [`check_json`]).
struct Discard;

impl Sink for Discard {
    fn start(&mut self, _: NameId) {}
    fn attribute(&mut self, _: NameId, _: &str) {}
    fn text(&mut self, _: &str) {}
    fn end(&mut self) {}
    fn keeps(&self) -> bool {
        false
    }
}

/// Element and attribute names, interned once.
struct Names {
    map: NameId,
    array: NameId,
    string: NameId,
    number: NameId,
    boolean: NameId,
    null: NameId,
    key: NameId,
    escaped: NameId,
    escaped_key: NameId,
}

fn xml_allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Plain mode: characters XML cannot carry become U+FFFD.
fn xml_chars(s: &str) -> Cow<'_, str> {
    if s.chars().all(xml_allowed) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(
            s.chars()
                .map(|c| if xml_allowed(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
    }
}

/// Escape mode: backslash and characters XML cannot carry as JSON escapes.
/// Returns the text and whether any escape was written.
fn json_escapes(s: &str) -> (Cow<'_, str>, bool) {
    if s.chars().all(|c| c != '\\' && xml_allowed(c)) {
        return (Cow::Borrowed(s), false);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if xml_allowed(c) {
            out.push(c);
        } else if c == '\u{8}' {
            out.push_str("\\b");
        } else if c == '\u{c}' {
            out.push_str("\\f");
        } else {
            out.push_str(&format!("\\u{:04X}", c as u32));
        }
    }
    (Cow::Owned(out), true)
}

/// Deserializes one JSON value straight into the sink.
struct Seed<'x, S: Sink> {
    b: &'x mut S,
    names: &'x Names,
    options: &'x JsonOptions,
    key: Option<String>,
}

impl<S: Sink> Seed<'_, S> {
    fn start(&mut self, name: NameId) {
        self.b.start(name);
        if let Some(key) = self.key.take() {
            if !self.b.keeps() {
                return;
            }
            if self.options.escape {
                let (k, esc) = json_escapes(&key);
                self.b.attribute(self.names.key, &k);
                if esc {
                    self.b.attribute(self.names.escaped_key, "true");
                }
            } else {
                self.b.attribute(self.names.key, &xml_chars(&key));
            }
        }
    }

    fn leaf(mut self, name: NameId, text: &str) {
        self.start(name);
        self.b.text(text);
        self.b.end();
    }

    /// A number, formatted only when the sink keeps it.
    fn number(self, format: impl FnOnce() -> String) {
        let name = self.names.number;
        if self.b.keeps() {
            self.leaf(name, &format());
        } else {
            self.leaf(name, "");
        }
    }

    fn string(mut self, v: &str) {
        let name = self.names.string;
        self.start(name);
        if !self.b.keeps() {
            // A check: the string was unescaped (and so checked) already.
        } else if self.options.escape {
            let (s, esc) = json_escapes(v);
            if esc {
                self.b.attribute(self.names.escaped, "true");
            }
            self.b.text(&s);
        } else {
            self.b.text(&xml_chars(v));
        }
        self.b.end();
    }
}

impl<'de, S: Sink> DeserializeSeed<'de> for Seed<'_, S> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || {
            deserializer.deserialize_any(self)
        })
    }
}

impl<'de, S: Sink> Visitor<'de> for Seed<'_, S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        let name = self.names.boolean;
        self.leaf(name, if v { "true" } else { "false" });
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<(), E> {
        self.number(|| v.to_string());
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<(), E> {
        self.number(|| v.to_string());
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<(), E> {
        self.number(|| format_double(v));
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.string(v);
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(mut self) -> Result<(), E> {
        let name = self.names.null;
        self.start(name);
        self.b.end();
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let name = self.names.array;
        self.start(name);
        while seq
            .next_element_seed(Seed {
                b: &mut *self.b,
                names: self.names,
                options: self.options,
                key: None,
            })?
            .is_some()
        {}
        self.b.end();
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let name = self.names.map;
        self.start(name);
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if self.options.duplicates != Duplicates::Retain && !seen.insert(key.clone()) {
                if self.options.duplicates == Duplicates::Reject {
                    return Err(serde::de::Error::custom(format!("{DUP_MARK}{key}")));
                }
                // Skipped, but checked like any other value.
                map.next_value_seed(Seed {
                    b: &mut Discard,
                    names: self.names,
                    options: self.options,
                    key: None,
                })?;
                continue;
            }
            map.next_value_seed(Seed {
                b: &mut *self.b,
                names: self.names,
                options: self.options,
                key: Some(key),
            })?;
        }
        self.b.end();
        Ok(())
    }
}

/// Shortest round-trip form of a double, as a valid `xs:double` lexical.
fn format_double(v: f64) -> String {
    if v.is_finite() {
        // Rust's `{}` for f64 is the shortest round-trip decimal form and
        // never uses an exponent; `{:e}` keeps very large/small magnitudes
        // short.
        let plain = format!("{v}");
        if plain.len() > 24 {
            format!("{v:e}").replace('e', "E")
        } else {
            plain
        }
    } else if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "INF".into()
    } else {
        "-INF".into()
    }
}

// ---------------------------------------------------------------------------
// fn:xml-to-json

/// The XPath canonical string of a finite `xs:double`: plain decimal for
/// magnitudes in [1e-6, 1e6), else `mantissa E exponent` (`1.0E6`).
fn xs_double_string(d: f64) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let a = d.abs();
    if (1e-6..1e6).contains(&a) {
        return format!("{d}");
    }
    // `{:e}` gives the shortest round-trip digits: "1.2345e19", "1e6".
    let e = format!("{d:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let mant = if mant.contains('.') {
        mant.to_string()
    } else {
        format!("{mant}.0")
    };
    format!("{mant}E{exp}")
}

/// Is `s` a JSON number literal?
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == s {
            return false;
        }
    }
    i == b.len()
}

/// Writes `s` as the body of a JSON string. `escaped`: `s` already holds
/// JSON escapes, which are validated and kept.
fn write_json_string(s: &str, escaped: bool, out: &mut String) -> Result<(), JsonError> {
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if escaped => {
                let Some(n) = chars.next() else {
                    return Err(JsonError::InvalidEscape(s.to_string()));
                };
                match n {
                    '"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't' => {
                        out.push('\\');
                        out.push(n);
                    }
                    'u' => {
                        out.push_str("\\u");
                        for _ in 0..4 {
                            match chars.next() {
                                Some(h) if h.is_ascii_hexdigit() => out.push(h),
                                _ => return Err(JsonError::InvalidEscape(s.to_string())),
                            }
                        }
                    }
                    _ => return Err(JsonError::InvalidEscape(s.to_string())),
                }
            }
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || ('\u{7F}'..='\u{9F}').contains(&c) => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(())
}

/// One open container while writing JSON.
struct Frame<'a> {
    node: Node<'a>,
    next: Option<Node<'a>>,
    is_map: bool,
    first: bool,
    keys: HashSet<String>,
}

fn invalid(msg: impl Into<String>) -> JsonError {
    JsonError::InvalidXml(msg.into())
}

/// The element children of a map/array/leaf, rejecting non-whitespace text.
fn next_element<'a>(
    mut cur: Option<Node<'a>>,
) -> Result<(Option<Node<'a>>, Option<Node<'a>>), JsonError> {
    while let Some(n) = cur {
        match n.kind() {
            NodeKind::Element => return Ok((Some(n), n.next_sibling())),
            NodeKind::Text if !crate::tree::is_xml_whitespace(n.string_value()) => {
                return Err(invalid(format!(
                    "text {:?} is not allowed in map or array",
                    n.string_value()
                )))
            }
            _ => cur = n.next_sibling(),
        }
    }
    Ok((None, None))
}

/// Checks the attributes of a vocabulary element; returns (key,
/// escaped, escaped-key).
fn check_attributes<'a>(
    n: Node<'a>,
    in_map: bool,
    local: &str,
) -> Result<(Option<&'a str>, bool, bool), JsonError> {
    let mut key = None;
    let mut escaped = false;
    let mut escaped_key = false;
    let flag = |v: &str| -> Result<bool, JsonError> {
        match v.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(invalid(format!(
                "invalid boolean attribute value {other:?}"
            ))),
        }
    };
    for a in n.attributes() {
        let Some(q) = a.name() else { continue };
        if q.uri == FN_NS {
            return Err(invalid(format!("attribute {} is not allowed", q.clark())));
        }
        if !q.uri.is_empty() {
            continue;
        }
        match q.local.as_str() {
            "key" if in_map => key = Some(a.string_value()),
            "escaped-key" if in_map => escaped_key = flag(a.string_value())?,
            "escaped" if local == "string" => escaped = flag(a.string_value())?,
            other => {
                return Err(invalid(format!(
                    "attribute {other:?} is not allowed on {local}"
                )))
            }
        }
    }
    if in_map && key.is_none() {
        return Err(invalid(format!(
            "{local} inside a map needs a key attribute"
        )));
    }
    Ok((key, escaped, escaped_key))
}

/// Converts a `fn:json-to-xml` tree (a document node or a vocabulary
/// element) back to JSON text (`fn:xml-to-json`), compact.
pub fn xml_to_json(node: Node<'_>) -> Result<String, JsonError> {
    let start = match node.kind() {
        NodeKind::Document => {
            let (first, rest) = next_element(node.first_child())?;
            let Some(first) = first else {
                return Err(invalid("the document has no element"));
            };
            if next_element(rest)?.0.is_some() {
                return Err(invalid("the document has more than one element"));
            }
            first
        }
        NodeKind::Element => node,
        _ => return Err(invalid("xml-to-json needs a document or element node")),
    };
    let mut out = String::new();
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut todo = Some((start, false));
    loop {
        if let Some((n, in_map)) = todo.take() {
            let Some(q) = n.name() else {
                return Err(invalid("unnamed node"));
            };
            if q.uri != FN_NS {
                return Err(invalid(format!(
                    "element {} is not in the namespace {FN_NS}",
                    q.clark()
                )));
            }
            let local = q.local.as_str();
            let (key, escaped, escaped_key) = check_attributes(n, in_map, local)?;
            if let (Some(key), Some(frame)) = (key, stack.last_mut()) {
                let k = if escaped_key {
                    unescape_key(key)?
                } else {
                    key.to_string()
                };
                if !frame.keys.insert(k) {
                    return Err(invalid(format!("duplicate key {key:?} in a map")));
                }
                if !frame.first {
                    out.push(',');
                }
                frame.first = false;
                write_json_string(key, escaped_key, &mut out)?;
                out.push(':');
            } else if let Some(frame) = stack.last_mut() {
                if !frame.first {
                    out.push(',');
                }
                frame.first = false;
            }
            match local {
                "map" | "array" => {
                    out.push(if local == "map" { '{' } else { '[' });
                    stack.push(Frame {
                        node: n,
                        next: n.first_child(),
                        is_map: local == "map",
                        first: true,
                        keys: HashSet::new(),
                    });
                }
                "string" | "number" | "boolean" | "null" => {
                    if n.children().any(|c| c.kind() == NodeKind::Element) {
                        return Err(invalid(format!("{local} must not contain elements")));
                    }
                    let v = n.string_value();
                    match local {
                        "string" => write_json_string(v, escaped, &mut out)?,
                        "number" => {
                            // xs:string(xs:double(.)), as the spec says.
                            let t = v.trim();
                            let lexical_ok = is_json_number(t.strip_prefix('+').unwrap_or(t))
                                || is_json_number(&format!(
                                    "0{}",
                                    t.trim_start_matches(['+', '-'])
                                ));
                            match t.parse::<f64>() {
                                Ok(d) if d.is_finite() && lexical_ok => {
                                    out.push_str(&xs_double_string(d))
                                }
                                _ => return Err(invalid(format!("invalid number {t:?}"))),
                            }
                        }
                        "boolean" => match v.trim() {
                            "true" | "1" => out.push_str("true"),
                            "false" | "0" => out.push_str("false"),
                            other => return Err(invalid(format!("invalid boolean {other:?}"))),
                        },
                        _ => {
                            if !v.trim().is_empty() {
                                return Err(invalid("null must be empty"));
                            }
                            out.push_str("null");
                        }
                    }
                }
                other => return Err(invalid(format!("unknown element {other:?}"))),
            }
        }
        let Some(frame) = stack.last_mut() else { break };
        let (child, rest) = next_element(frame.next)?;
        frame.next = rest;
        match child {
            Some(c) => todo = Some((c, frame.is_map)),
            None => {
                out.push(if frame.is_map { '}' } else { ']' });
                let _ = frame.node;
                stack.pop();
            }
        }
    }
    Ok(out)
}

/// The unescaped form of an `escaped-key` key (for duplicate detection).
fn unescape_key(key: &str) -> Result<String, JsonError> {
    let quoted = {
        let mut s = String::new();
        write_json_string(key, true, &mut s)?;
        s
    };
    serde_json::from_str::<String>(&quoted).map_err(|_| JsonError::InvalidEscape(key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::to_xml_string;

    fn j2x(s: &str) -> String {
        let doc = json_to_xml(s, &JsonOptions::default()).unwrap();
        to_xml_string(doc.root())
    }

    #[test]
    fn json_to_xml_mapping() {
        assert_eq!(
            j2x(r#"{"name":"A","n":[1,true,null,1.50,-2,"x\u0000"],"o":{}}"#),
            concat!(
                r#"<map xmlns="http://www.w3.org/2005/xpath-functions"><string key="name">A</string>"#,
                r#"<array key="n"><number>1</number><boolean>true</boolean><null/><number>1.5</number>"#,
                "<number>-2</number><string>x\u{FFFD}</string></array><map key=\"o\"/></map>"
            )
        );
        assert_eq!(
            j2x("\"a<b\""),
            r#"<string xmlns="http://www.w3.org/2005/xpath-functions">a&lt;b</string>"#
        );
        // The tree is navigable: string values are one slice.
        let doc = json_to_xml(r#"{"a":"x","b":["y","z"]}"#, &JsonOptions::default()).unwrap();
        let map = doc.root().first_child().unwrap();
        assert_eq!(map.namespace_uri(), FN_NS);
        assert_eq!(map.string_value(), "xyz");
        assert_eq!(
            map.children().nth(1).unwrap().attribute("", "key"),
            Some("b")
        );
    }

    #[test]
    fn check_json_agrees_with_json_to_xml() {
        let o = JsonOptions::default();
        for bad in [
            r#"{"n":1e999999999}"#,
            r#"[-1e400]"#,
            r#"["\ud800"]"#,
            r#"{"\udc00":1}"#,
            r#"["a\ud800b"]"#,
            r#"[1,]"#,
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        ] {
            let converted = json_to_xml(bad, &o).map(|_| ());
            assert!(converted.is_err(), "{bad}");
            assert_eq!(check_json(bad, &o), converted, "{bad}");
        }
        for good in [
            r#"{"n":1e300,"s":"\ud83d\ude00","z":"\u0000"}"#,
            "\u{FEFF}[0,0.5,true,null]",
        ] {
            assert!(json_to_xml(good, &o).is_ok(), "{good}");
            assert_eq!(check_json(good, &o), Ok(()), "{good}");
        }
        // A duplicate skipped by use-first is still checked.
        let first = JsonOptions {
            duplicates: Duplicates::UseFirst,
            ..JsonOptions::default()
        };
        let dup = r#"{"a":1,"a":"\ud800"}"#;
        assert!(json_to_xml(dup, &first).is_err());
        assert!(check_json(dup, &first).is_err());
    }

    #[test]
    fn json_errors() {
        let deep = "[".repeat(101) + &"]".repeat(101);
        assert_eq!(
            json_to_xml(&deep, &JsonOptions::default()).unwrap_err(),
            JsonError::TooDeep {
                limit: 100,
                line: 1,
                column: 101
            }
        );
        // Far too deep for serde_json's recursion: refused by the pre-scan.
        let very = "[".repeat(1_000_000);
        assert!(matches!(
            json_to_xml(&very, &JsonOptions::default()),
            Err(JsonError::TooDeep { .. })
        ));
        let ok = "[".repeat(100) + &"]".repeat(100);
        assert!(json_to_xml(&ok, &JsonOptions::default()).is_ok());
        let e = json_to_xml("{\"a\":\n 1,}", &JsonOptions::default()).unwrap_err();
        assert!(matches!(e, JsonError::Malformed { line: 2, .. }), "{e:?}");
        assert_eq!(e.code(), "FOJS0001");
        assert!(json_to_xml("[1] x", &JsonOptions::default()).is_err());
        let reject = JsonOptions {
            duplicates: Duplicates::Reject,
            ..JsonOptions::default()
        };
        let e = json_to_xml(r#"{"a":1,"a":2}"#, &reject).unwrap_err();
        assert_eq!(e, JsonError::DuplicateKey("a".into()));
        assert_eq!(e.code(), "FOJS0003");
        let first = JsonOptions {
            duplicates: Duplicates::UseFirst,
            ..JsonOptions::default()
        };
        let doc = json_to_xml(r#"{"a":1,"a":[2]}"#, &first).unwrap();
        assert_eq!(doc.root().string_value(), "1");
        assert_eq!(xml_to_json(doc.root()).unwrap(), r#"{"a":1}"#);
    }

    #[test]
    fn escape_option() {
        let opts = JsonOptions {
            escape: true,
            ..JsonOptions::default()
        };
        let doc = json_to_xml(r#"{"k\\":"a\u0001b"}"#, &opts).unwrap();
        assert_eq!(
            to_xml_string(doc.root()),
            r#"<map xmlns="http://www.w3.org/2005/xpath-functions"><string key="k\\" escaped-key="true" escaped="true">a\u0001b</string></map>"#
        );
        assert_eq!(xml_to_json(doc.root()).unwrap(), r#"{"k\\":"a\u0001b"}"#);
    }

    #[test]
    fn round_trips() {
        for json in [
            r#"{"name":"A","n":[1,true,null,false,-2.5,"x\"y\n"],"o":{"p":{}}}"#,
            r#"[]"#,
            r#""plain""#,
            r#"[{"a":[[[]]]}]"#,
        ] {
            let doc = json_to_xml(json, &JsonOptions::default()).unwrap();
            let back = xml_to_json(doc.root()).unwrap();
            let a: serde_json::Value = serde_json::from_str(json).unwrap();
            let b: serde_json::Value = serde_json::from_str(&back).unwrap();
            assert_eq!(a, b, "{json} -> {back}");
        }
        let back =
            |s: &str| xml_to_json(json_to_xml(s, &JsonOptions::default()).unwrap().root()).unwrap();
        assert_eq!(back("\"a/b\""), r#""a\/b""#);
        assert_eq!(back("12345678901234567890"), "1.2345678901234567E19");
        assert_eq!(back("[1e6,0.5,-0.0,1e-7]"), "[1.0E6,0.5,-0,1.0E-7]");
    }

    #[test]
    fn xml_to_json_validates() {
        let parse =
            |s: &str| Document::parse_str(s, &crate::tree::ParseOptions::default()).unwrap();
        let ns = FN_NS;
        let ok = parse(&format!(
            "<map xmlns='{ns}'>\n  <number key='a'> 1.0E2 </number>\n  <boolean key='b'>0</boolean>\n</map>"
        ));
        assert_eq!(xml_to_json(ok.root()).unwrap(), r#"{"a":100,"b":false}"#);
        for bad in [
            format!("<map xmlns='{ns}'><number>1</number></map>"),
            format!("<map xmlns='{ns}'><null key='a'/><null key='a'/></map>"),
            format!("<array xmlns='{ns}'>text</array>"),
            format!("<array xmlns='{ns}'><number>abc</number></array>"),
            format!("<array xmlns='{ns}'><foo/></array>"),
            format!("<array xmlns='{ns}'><string key='k'>x</string></array>"),
            "<map/>".to_string(),
        ] {
            let e = xml_to_json(parse(&bad).root()).unwrap_err();
            assert_eq!(e.code(), "FOJS0006", "{bad}: {e}");
        }
        let esc = parse(&format!("<string xmlns='{ns}' escaped='true'>\\q</string>"));
        assert_eq!(xml_to_json(esc.root()).unwrap_err().code(), "FOJS0007");
    }
}
