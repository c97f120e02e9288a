//! Safe parsing of submitted payloads into an XPath-ready tree.
//!
//! Every payload the hub routes goes through [`InputDocument::parse`] (or,
//! at intake, the cheaper [`validate`]). The rules are strict on purpose:
//!
//! * **XML**: any `<!DOCTYPE …>` is refused before a tree exists, so
//!   external entities (XXE) and entity expansion bombs ("billion laughs")
//!   never get a chance to expand. Only the five predefined entities and
//!   character references are understood. Element nesting deeper than
//!   [`MAX_XML_DEPTH`] is refused. Malformed input is reported with line and
//!   column.
//! * **JSON**: parsed with `serde_json` after a depth pre-scan (limit
//!   [`MAX_JSON_DEPTH`]) and converted to the XPath 3.1 `fn:json-to-xml`
//!   form (see [`InputDocument::parse`] for the exact mapping), so rules
//!   query XML and JSON submissions with the same XPath engine.
//!
//! The content type decides the parser: `application/xml`, `text/xml` and
//! any `*/*+xml` are XML; `application/json` and any `*/*+json` are JSON;
//! everything else is refused.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;
use serde::de::{Deserialize as _, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use xot::{NameId, Node, Xot};

/// Deepest element nesting accepted in XML input.
pub const MAX_XML_DEPTH: usize = 512;

/// Deepest object/array nesting accepted in JSON input (below the recursion
/// limit of 128 that `serde_json` enforces on its own).
pub const MAX_JSON_DEPTH: usize = 100;

/// Namespace of the `fn:json-to-xml` representation of JSON.
pub const JSON_XML_NAMESPACE: &str = "http://www.w3.org/2005/xpath-functions";

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The content type is neither XML nor JSON.
    #[error("unsupported content type {0:?} (expected application/xml, text/xml, */*+xml, application/json or */*+json)")]
    UnsupportedContentType(String),
    /// The XML carries a document type declaration. Refused, never expanded.
    #[error("XML document type declarations (DOCTYPE) are refused, at line {line}, column {column}: entity definitions could expand or load external resources")]
    Doctype {
        /// 1-based line of the declaration.
        line: usize,
        /// 1-based column (in characters) of the declaration.
        column: usize,
    },
    /// Nesting deeper than the limit.
    #[error("{format} nesting deeper than {limit} levels, at line {line}, column {column}")]
    TooDeep {
        /// `XML` or `JSON`.
        format: &'static str,
        /// The limit that was exceeded.
        limit: usize,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The XML is not well-formed.
    #[error("malformed XML at line {line}, column {column}: {message}")]
    MalformedXml {
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The JSON is not well-formed.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    MalformedJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The bytes cannot be decoded in the declared or detected encoding.
    #[error("cannot decode payload: {0}")]
    Encoding(String),
}

/// Which parser a content type selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// An XML document, parsed as is.
    Xml,
    /// A JSON text, converted to the `fn:json-to-xml` form.
    Json,
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputKind::Xml => "XML",
            InputKind::Json => "JSON",
        })
    }
}

impl InputKind {
    /// Selects the parser for a media type (parameters such as `charset`
    /// are ignored, case does not matter).
    pub fn from_content_type(content_type: &str) -> Result<Self, InputError> {
        let essence = media_type_essence(content_type);
        let (top, sub) = essence
            .split_once('/')
            .ok_or_else(|| InputError::UnsupportedContentType(content_type.to_owned()))?;
        if top.is_empty() || sub.is_empty() {
            return Err(InputError::UnsupportedContentType(content_type.to_owned()));
        }
        if essence == "application/xml" || essence == "text/xml" || sub.ends_with("+xml") {
            Ok(InputKind::Xml)
        } else if essence == "application/json" || sub.ends_with("+json") {
            Ok(InputKind::Json)
        } else {
            Err(InputError::UnsupportedContentType(content_type.to_owned()))
        }
    }
}

/// The lower-cased media type without parameters (`Text/XML; charset=x` →
/// `text/xml`).
pub fn media_type_essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The `charset` parameter of a media type, if any.
fn charset_param(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("charset") {
            Some(value.trim().trim_matches('"').to_owned())
        } else {
            None
        }
    })
}

/// Checks a payload without building a tree: content type, encoding,
/// well-formedness, DOCTYPE refusal and depth limits (XML: also entity
/// references and namespace prefixes; JSON: full syntax).
///
/// Meant for intake, to reject bad input synchronously and fast. Whatever
/// passes here also parses with [`InputDocument::parse`].
pub fn validate(bytes: &[u8], content_type: &str) -> Result<(), InputError> {
    match InputKind::from_content_type(content_type)? {
        InputKind::Xml => {
            let text = decode_xml(bytes, charset_param(content_type).as_deref())?;
            scan_xml(&text)
        }
        InputKind::Json => {
            let text = decode_json(bytes)?;
            scan_json_depth(text)?;
            let mut de = serde_json::Deserializer::from_str(text);
            serde::de::IgnoredAny::deserialize(&mut de).map_err(json_error)?;
            de.end().map_err(json_error)
        }
    }
}

/// A parsed payload: an XML tree (for JSON: its `fn:json-to-xml` form) that
/// rule expressions and transforms run against.
///
/// The tree lives in its own [`Xot`] arena. `InputDocument` is `Send` and
/// `Sync` (the arena sits behind a mutex, as XPath evaluation needs `&mut
/// Xot`), so the engine can move it into `spawn_blocking`.
pub struct InputDocument {
    kind: InputKind,
    tree: Mutex<Tree>,
    meta: BTreeMap<String, String>,
}

struct Tree {
    xot: Xot,
    root: Node,
}

impl fmt::Debug for InputDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputDocument")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl InputDocument {
    /// Parses a payload according to its content type.
    ///
    /// XML is scanned first (DOCTYPE, depth, well-formedness; see the module
    /// docs), then built into a tree. The encoding is taken from a byte
    /// order mark, else the `charset` parameter, else the XML declaration,
    /// else UTF-8.
    ///
    /// JSON (UTF-8, optional BOM) becomes the XPath 3.1 `fn:json-to-xml`
    /// representation (F&O 3.1 §17.5), in the namespace
    /// [`JSON_XML_NAMESPACE`] (bound to the default namespace on the root
    /// element; XPath's predeclared `fn:` prefix names it too):
    ///
    /// * object → `<map>`, array → `<array>`, string → `<string>`,
    ///   number → `<number>`, `true`/`false` → `<boolean>true</boolean>`,
    ///   `null` → `<null/>`;
    /// * members of an object carry their key in a `key` attribute, in input
    ///   order; duplicate keys are retained (the spec's default when not
    ///   validating);
    /// * keys and strings are plain, unescaped text (the `escape` option is
    ///   not supported, so no `escaped`/`escaped-key` attributes); characters
    ///   not allowed in XML (e.g. `\u0000`) become U+FFFD, as the spec's
    ///   default fallback does;
    /// * numbers: integers exactly as written (within 64 bits), other
    ///   numbers in the shortest form that round-trips as `xs:double`
    ///   (`1.50` → `1.5`, `1E3` → `1000`).
    ///
    /// `{"name":"A","n":[1,true,null]}` becomes
    /// `<map xmlns="http://www.w3.org/2005/xpath-functions"><string key="name">A</string><array key="n"><number>1</number><boolean>true</boolean><null/></array></map>`.
    pub fn parse(bytes: &[u8], content_type: &str) -> Result<Self, InputError> {
        let kind = InputKind::from_content_type(content_type)?;
        let mut xot = Xot::new();
        let root = match kind {
            InputKind::Xml => {
                let text = decode_xml(bytes, charset_param(content_type).as_deref())?;
                scan_xml(&text)?;
                xot.parse(&text).map_err(|e| {
                    let (line, column) = line_column(&text, e.span().start);
                    InputError::MalformedXml {
                        line,
                        column,
                        message: e.to_string(),
                    }
                })?
            }
            InputKind::Json => {
                let text = decode_json(bytes)?;
                scan_json_depth(text)?;
                json_to_xml(&mut xot, text)?
            }
        };
        Ok(Self {
            kind,
            tree: Mutex::new(Tree { xot, root }),
            meta: BTreeMap::new(),
        })
    }

    /// Attaches envelope facts (the message's correlation ids, e.g.
    /// `fitconnect.leika` or `xta.service`) that rule expressions read as
    /// `$meta/entry[@key='…']` (see the manifest docs).
    pub fn with_meta(mut self, meta: BTreeMap<String, String>) -> Self {
        self.meta = meta;
        self
    }

    /// The envelope facts attached with [`InputDocument::with_meta`].
    pub fn meta(&self) -> &BTreeMap<String, String> {
        &self.meta
    }

    /// Whether this was XML or JSON.
    pub fn kind(&self) -> InputKind {
        self.kind
    }

    /// Runs `f` with exclusive access to the tree: the arena and the
    /// document node. This is how XPath evaluation and transforms reach the
    /// tree; nodes a caller adds to the arena stay in it until the document
    /// is dropped.
    pub fn with_tree<R>(&self, f: impl FnOnce(&mut Xot, Node) -> R) -> R {
        let mut guard = self.lock();
        let tree = &mut *guard;
        f(&mut tree.xot, tree.root)
    }

    /// Serializes the tree as XML text (for JSON input: the
    /// `fn:json-to-xml` form).
    pub fn to_xml_string(&self) -> String {
        self.with_tree(|xot, root| {
            xot.to_string(root)
                .unwrap_or_else(|e| format!("<!-- cannot serialize: {e} -->"))
        })
    }

    fn lock(&self) -> MutexGuard<'_, Tree> {
        // A panic while the lock was held cannot leave the tree half-built
        // (it is immutable after parsing except for nodes callers add), so
        // a poisoned lock is still usable.
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// ---------------------------------------------------------------------------
// Encoding

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

fn decode_xml<'a>(bytes: &'a [u8], charset: Option<&str>) -> Result<Cow<'a, str>, InputError> {
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        return utf8(rest).map(Cow::Borrowed);
    }
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        let (encoding, bom_len) = encoding_rs::Encoding::for_bom(bytes)
            .ok_or_else(|| InputError::Encoding("unrecognised byte order mark".into()))?;
        let body = bytes.get(bom_len..).unwrap_or_default();
        return encoding
            .decode_without_bom_handling_and_without_replacement(body)
            .map(|text| Cow::Owned(text.into_owned()))
            .ok_or_else(|| InputError::Encoding(format!("invalid {} data", encoding.name())));
    }
    let label = match charset {
        Some(label) => Some(label.to_owned()),
        None => declared_encoding(bytes),
    };
    let Some(label) = label else {
        return utf8(bytes).map(Cow::Borrowed);
    };
    let encoding = encoding_rs::Encoding::for_label(label.trim().as_bytes())
        .ok_or_else(|| InputError::Encoding(format!("unknown encoding {label:?}")))?;
    if encoding == encoding_rs::UTF_8 {
        return utf8(bytes).map(Cow::Borrowed);
    }
    if encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE {
        return Err(InputError::Encoding(format!(
            "{} without byte order mark",
            encoding.name()
        )));
    }
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|text| Cow::Owned(text.into_owned()))
        .ok_or_else(|| InputError::Encoding(format!("invalid {} data", encoding.name())))
}

fn decode_json(bytes: &[u8]) -> Result<&str, InputError> {
    utf8(bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes))
}

fn utf8(bytes: &[u8]) -> Result<&str, InputError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
        let prefix = String::from_utf8_lossy(valid);
        let (line, column) = line_column(&prefix, prefix.len());
        InputError::Encoding(format!(
            "invalid UTF-8 at line {line}, column {column} (byte offset {})",
            e.valid_up_to()
        ))
    })
}

/// The `encoding` pseudo-attribute of an XML declaration at the very start
/// of `bytes` (ASCII-compatible encodings only).
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let head = bytes.get(..bytes.len().min(512))?;
    if !head.starts_with(b"<?xml") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(head.get(5..end)?).ok()?;
    let idx = decl.find("encoding")?;
    let rest = decl.get(idx + "encoding".len()..)?.trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let quote = rest.chars().next()?;
    if quote != '"' && quote != '\'' {
        return None;
    }
    let value = rest.get(1..)?;
    let close = value.find(quote)?;
    Some(value.get(..close)?.to_owned())
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    (line, column)
}

// ---------------------------------------------------------------------------
// XML scan

fn scan_xml(text: &str) -> Result<(), InputError> {
    let mut reader = NsReader::from_str(text);
    {
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.allow_unmatched_ends = false;
        config.expand_empty_elements = false;
        config.trim_text(false);
    }
    let malformed = |offset: u64, message: String| {
        let (line, column) = line_column(text, usize::try_from(offset).unwrap_or(usize::MAX));
        InputError::MalformedXml {
            line,
            column,
            message,
        }
    };
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let start = reader.buffer_position();
        let (resolved, event) = match reader.read_resolved_event() {
            Ok(pair) => pair,
            Err(e) => return Err(malformed(reader.error_position(), e.to_string())),
        };
        match event {
            Event::DocType(_) => {
                let (line, column) =
                    line_column(text, usize::try_from(start).unwrap_or(usize::MAX));
                return Err(InputError::Doctype { line, column });
            }
            Event::Start(ref element) | Event::Empty(ref element) => {
                if depth == 0 {
                    if seen_root {
                        return Err(malformed(start, "more than one root element".into()));
                    }
                    seen_root = true;
                }
                if depth + 1 > MAX_XML_DEPTH {
                    let (line, column) =
                        line_column(text, usize::try_from(start).unwrap_or(usize::MAX));
                    return Err(InputError::TooDeep {
                        format: "XML",
                        limit: MAX_XML_DEPTH,
                        line,
                        column,
                    });
                }
                if let ResolveResult::Unknown(prefix) = resolved {
                    return Err(malformed(
                        start,
                        format!(
                            "undeclared namespace prefix {:?}",
                            String::from_utf8_lossy(&prefix)
                        ),
                    ));
                }
                for attribute in element.attributes() {
                    let attribute =
                        attribute.map_err(|e| malformed(start, format!("attribute: {e}")))?;
                    let key = attribute.key;
                    let is_decl = key.as_ref() == b"xmlns" || key.as_ref().starts_with(b"xmlns:");
                    if !is_decl {
                        if let (ResolveResult::Unknown(prefix), _) = reader.resolve_attribute(key) {
                            return Err(malformed(
                                start,
                                format!(
                                    "undeclared namespace prefix {:?} on attribute",
                                    String::from_utf8_lossy(&prefix)
                                ),
                            ));
                        }
                    }
                    attribute
                        .unescape_value()
                        .map_err(|e| malformed(start, format!("attribute value: {e}")))?;
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
            }
            Event::Text(ref t) => {
                let unescaped = t.unescape().map_err(|e| {
                    // Point at the entity itself, not at the start of the text.
                    let at = match &e {
                        quick_xml::Error::Escape(
                            quick_xml::escape::EscapeError::UnrecognizedEntity(range, _)
                            | quick_xml::escape::EscapeError::UnterminatedEntity(range),
                        ) => start + range.start.saturating_sub(1) as u64,
                        _ => start,
                    };
                    malformed(at, e.to_string())
                })?;
                if depth == 0 && !unescaped.trim().is_empty() {
                    return Err(malformed(start, "text outside the root element".into()));
                }
            }
            Event::CData(_) => {
                if depth == 0 {
                    return Err(malformed(start, "CDATA outside the root element".into()));
                }
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if depth > 0 {
        return Err(malformed(
            text.len() as u64,
            "unexpected end of document: element not closed".into(),
        ));
    }
    if !seen_root {
        return Err(malformed(text.len() as u64, "no root element".into()));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// JSON

fn json_error(e: serde_json::Error) -> InputError {
    InputError::MalformedJson {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    }
}

/// Refuses JSON nested deeper than [`MAX_JSON_DEPTH`] before any parsing.
fn scan_json_depth(text: &str) -> Result<(), InputError> {
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
                if depth > MAX_JSON_DEPTH {
                    let (line, column) = line_column(text, offset);
                    return Err(InputError::TooDeep {
                        format: "JSON",
                        limit: MAX_JSON_DEPTH,
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

/// Element names of the `fn:json-to-xml` vocabulary, interned once per
/// arena.
struct JsonNames {
    map: NameId,
    array: NameId,
    string: NameId,
    number: NameId,
    boolean: NameId,
    null: NameId,
    key: NameId,
}

fn json_to_xml(xot: &mut Xot, text: &str) -> Result<Node, InputError> {
    let ns = xot.add_namespace(JSON_XML_NAMESPACE);
    let names = JsonNames {
        map: xot.add_name_ns("map", ns),
        array: xot.add_name_ns("array", ns),
        string: xot.add_name_ns("string", ns),
        number: xot.add_name_ns("number", ns),
        boolean: xot.add_name_ns("boolean", ns),
        null: xot.add_name_ns("null", ns),
        key: xot.add_name("key"),
    };
    let document = xot.new_document();
    let mut de = serde_json::Deserializer::from_str(text);
    JsonSeed {
        xot: &mut *xot,
        names: &names,
        parent: document,
        key: None,
    }
    .deserialize(&mut de)
    .map_err(json_error)?;
    de.end().map_err(json_error)?;
    if let Some(element) = xot.first_child(document) {
        let empty = xot.empty_prefix();
        xot.namespaces_mut(element).insert(empty, ns);
    }
    Ok(document)
}

/// Replaces characters XML 1.0 cannot carry with U+FFFD.
fn xml_chars(s: &str) -> Cow<'_, str> {
    fn allowed(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    }
    if s.chars().all(allowed) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(
            s.chars()
                .map(|c| if allowed(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
    }
}

/// Deserializes one JSON value straight into the tree, appending it to
/// `parent` (keeps member order and duplicate keys, unlike a map type).
struct JsonSeed<'x> {
    xot: &'x mut Xot,
    names: &'x JsonNames,
    parent: Node,
    key: Option<String>,
}

impl JsonSeed<'_> {
    fn element<E: serde::de::Error>(&mut self, name: NameId) -> Result<Node, E> {
        let element = self.xot.new_element(name);
        if let Some(key) = self.key.take() {
            self.xot
                .attributes_mut(element)
                .insert(self.names.key, xml_chars(&key).into_owned());
        }
        self.xot
            .append(self.parent, element)
            .map_err(|e| E::custom(format!("cannot build tree: {e}")))?;
        Ok(element)
    }

    fn leaf<E: serde::de::Error>(&mut self, name: NameId, text: Option<&str>) -> Result<(), E> {
        let element = self.element::<E>(name)?;
        if let Some(text) = text {
            if !text.is_empty() {
                self.xot
                    .append_text(element, &xml_chars(text))
                    .map_err(|e| E::custom(format!("cannot build tree: {e}")))?;
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for JsonSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JsonSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(mut self, v: bool) -> Result<(), E> {
        let name = self.names.boolean;
        self.leaf(name, Some(if v { "true" } else { "false" }))
    }

    fn visit_i64<E: serde::de::Error>(mut self, v: i64) -> Result<(), E> {
        let name = self.names.number;
        self.leaf(name, Some(&v.to_string()))
    }

    fn visit_u64<E: serde::de::Error>(mut self, v: u64) -> Result<(), E> {
        let name = self.names.number;
        self.leaf(name, Some(&v.to_string()))
    }

    fn visit_f64<E: serde::de::Error>(mut self, v: f64) -> Result<(), E> {
        let name = self.names.number;
        self.leaf(name, Some(&format_double(v)))
    }

    fn visit_str<E: serde::de::Error>(mut self, v: &str) -> Result<(), E> {
        let name = self.names.string;
        self.leaf(name, Some(v))
    }

    fn visit_unit<E: serde::de::Error>(mut self) -> Result<(), E> {
        let name = self.names.null;
        self.leaf(name, None)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let name = self.names.array;
        let element = self.element::<A::Error>(name)?;
        while seq
            .next_element_seed(JsonSeed {
                xot: &mut *self.xot,
                names: self.names,
                parent: element,
                key: None,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let name = self.names.map;
        let element = self.element::<A::Error>(name)?;
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(JsonSeed {
                xot: &mut *self.xot,
                names: self.names,
                parent: element,
                key: Some(key),
            })?;
        }
        Ok(())
    }
}

/// Shortest round-trip form of a double, as a valid `xs:double` lexical.
fn format_double(v: f64) -> String {
    if v.is_finite() {
        // Rust's `{}` for f64 is the shortest round-trip decimal form and
        // never uses an exponent; `{:e}` is used for very large/small
        // magnitudes to keep the text short.
        let plain = format!("{v}");
        if plain.len() > 24 {
            format!("{v:e}").replace('e', "E")
        } else {
            plain
        }
    } else {
        // serde_json never yields non-finite numbers; keep a valid lexical.
        if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "INF".into()
        } else {
            "-INF".into()
        }
    }
}
