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
//!   query XML and JSON submissions with the same XPath engine. Intake
//!   ([`validate`]) runs the converter's own reading path into a sink that
//!   keeps nothing (`drehscheibe_xpath::json::check_json`), with the same
//!   options: numbers beyond the `xs:double` range (`1e999999999`) and
//!   lone surrogate escapes (`"\ud800"`) are refused at intake, never
//!   accepted and then rejected at routing (ADR 0009).
//!
//! The content type decides the parser: `application/xml`, `text/xml` and
//! any `*/*+xml` are XML; `application/json` and any `*/*+json` are JSON;
//! everything else is refused.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, OnceLock};

use drehscheibe_xpath::json::{self, Duplicates, JsonError, JsonOptions};
use drehscheibe_xpath::tree::{Builder, Document, ParseError, ParseOptions, QName};

use quick_xml::events::Event;
use quick_xml::Reader;

/// Deepest element nesting accepted in XML input.
pub const MAX_XML_DEPTH: usize = 512;

/// Most attributes (namespace declarations included) on one XML element,
/// for intake and routing alike.
pub const MAX_XML_ATTRIBUTES: usize = 10_000;

/// Deepest object/array nesting accepted in JSON input (below the recursion
/// limit of 128 that `serde_json` enforces on its own).
pub const MAX_JSON_DEPTH: usize = 100;

/// Estimated peak memory of routing an XML payload, per payload byte:
/// the payload itself, its decoded text (non-UTF-8 input only) and the
/// tree (≤ 7× for the worst shape, 4-byte `<a/>` elements: one 28-byte
/// node record each; see `memory_factor` in `crates/rules/examples` and
/// docs/benchmarks.md for the measurements).
pub const XML_MEMORY_FACTOR: u64 = 10;

/// Estimated peak memory of routing a JSON payload, per payload byte: the
/// `fn:json-to-xml` tree of the worst shape, `[0,0,…]`, is ≈ 28.5× (every
/// two input bytes become an element and a text record), plus the payload.
pub const JSON_MEMORY_FACTOR: u64 = 32;

/// The memory routing a payload is estimated to need at most (bytes):
/// its size times [`XML_MEMORY_FACTOR`] or [`JSON_MEMORY_FACTOR`]. The
/// engine's per-hub memory budget for documents in flight counts this.
pub fn routing_memory_estimate(payload_len: usize, content_type: &str) -> u64 {
    let factor = match InputKind::from_content_type(content_type) {
        Ok(InputKind::Json) => JSON_MEMORY_FACTOR,
        // XML, and anything refused right away (no tree is built).
        _ => XML_MEMORY_FACTOR,
    };
    (payload_len as u64).saturating_mul(factor)
}

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
            json::check_json(text, &JSON_OPTIONS).map_err(json_input_error)
        }
    }
}

/// An XML payload transcoded to UTF-8 at intake (see [`transcode_to_utf8`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transcoded {
    /// The document as UTF-8, its XML declaration saying so.
    pub bytes: Vec<u8>,
    /// The encoding it arrived in (encoding_rs' name, e.g. `windows-1252`
    /// for the `ISO-8859-1` label, `UTF-16LE`).
    pub from: &'static str,
}

/// XML that arrived in another encoding than UTF-8 (by byte order mark,
/// `charset` parameter or XML declaration: ISO-8859-1, windows-1252,
/// UTF-16, …) as UTF-8, so that the hub stores, routes and delivers one
/// encoding: the text is decoded as [`validate`] decodes it and the
/// `encoding` of the XML declaration is rewritten to `UTF-8`. `None` for
/// UTF-8 input (with or without byte order mark) and for JSON (always
/// UTF-8). Call after [`validate`] accepted the payload.
pub fn transcode_to_utf8(
    bytes: &[u8],
    content_type: &str,
) -> Result<Option<Transcoded>, InputError> {
    if InputKind::from_content_type(content_type)? != InputKind::Xml {
        return Ok(None);
    }
    let (text, from) =
        drehscheibe_xpath::tree::decode_xml_from(bytes, charset_param(content_type).as_deref())
            .map_err(map_parse_error)?;
    if from == encoding_rs::UTF_8.name() {
        return Ok(None);
    }
    Ok(Some(Transcoded {
        bytes: declare_utf8(&text).into_bytes(),
        from,
    }))
}

/// The text with the `encoding` pseudo-attribute of its XML declaration
/// (if any) set to `UTF-8`.
fn declare_utf8(text: &str) -> String {
    let declaration = text
        .starts_with("<?xml")
        .then(|| text.find("?>"))
        .flatten()
        .and_then(|end| text.get(..end));
    let value = declaration.and_then(|decl| {
        let at = decl.find("encoding")?;
        let rest = decl.get(at + "encoding".len()..)?;
        let eq = rest.find('=')?;
        let after_eq = rest.get(eq + 1..)?;
        let quote_at = after_eq.find(['"', '\''])?;
        let quote = after_eq.get(quote_at..quote_at + 1)?;
        let value_start = at + "encoding".len() + eq + 1 + quote_at + 1;
        let value_len = decl.get(value_start..)?.find(quote)?;
        Some(value_start..value_start + value_len)
    });
    match value {
        Some(range) => {
            let mut out = String::with_capacity(text.len());
            out.push_str(text.get(..range.start).unwrap_or_default());
            out.push_str("UTF-8");
            out.push_str(text.get(range.end..).unwrap_or_default());
            out
        }
        None => text.to_owned(),
    }
}

/// A parsed payload: an XML tree (for JSON: its `fn:json-to-xml` form) that
/// rule expressions and transforms run against.
///
/// The tree is an immutable [`Document`] of our XPath engine, shared as an
/// `Arc`: recognition, routing and the transform all read the same tree,
/// which is parsed exactly once per message. `InputDocument` is `Send` and
/// `Sync` without any lock, so the engine can move it into
/// `spawn_blocking` and transforms can run on it concurrently.
pub struct InputDocument {
    kind: InputKind,
    tree: Arc<Document>,
    meta: BTreeMap<String, String>,
    /// `<meta><entry key="…">…</entry>…</meta>`, built on first use by
    /// the XPath module (the `$meta` variable).
    meta_tree: OnceLock<Document>,
}

impl fmt::Debug for InputDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InputDocument")
            .field("kind", &self.kind)
            .field("nodes", &self.tree.len())
            .finish_non_exhaustive()
    }
}

impl InputDocument {
    /// Parses a payload according to its content type.
    ///
    /// XML is decoded (the encoding is taken from a byte order mark, else
    /// the `charset` parameter, else the XML declaration, else UTF-8) and
    /// built into a tree by the engine's parser, which refuses DOCTYPE and
    /// nesting deeper than [`MAX_XML_DEPTH`]. When the parser refuses the
    /// input, the same scan as [`validate`] runs to report the error
    /// exactly as intake would (so `parse` and `validate` always agree).
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
        let tree = match kind {
            InputKind::Xml => {
                let text = decode_xml(bytes, charset_param(content_type).as_deref())?;
                parse_xml(&text)?
            }
            InputKind::Json => {
                let text = decode_json(bytes)?;
                json_to_xml(text)?
            }
        };
        Ok(Self {
            kind,
            tree: Arc::new(tree),
            meta: BTreeMap::new(),
            meta_tree: OnceLock::new(),
        })
    }

    /// Attaches envelope facts (the message's correlation ids, e.g.
    /// `fitconnect.leika` or `xta.service`) that rule expressions read as
    /// `$meta/entry[@key='…']` (see the manifest docs).
    pub fn with_meta(mut self, meta: BTreeMap<String, String>) -> Self {
        self.meta = meta;
        self.meta_tree = OnceLock::new();
        self
    }

    /// The envelope facts attached with [`InputDocument::with_meta`].
    pub fn meta(&self) -> &BTreeMap<String, String> {
        &self.meta
    }

    /// The `$meta` tree: a document whose element `<meta>` holds one
    /// `<entry key="k">v</entry>` per envelope fact (built once).
    pub(crate) fn meta_tree(&self) -> &Document {
        self.meta_tree.get_or_init(|| meta_document(&self.meta))
    }

    /// Whether this was XML or JSON.
    pub fn kind(&self) -> InputKind {
        self.kind
    }

    /// The tree: its root is the document node. This is how XPath
    /// evaluation and transforms reach the payload.
    pub fn document(&self) -> &Document {
        &self.tree
    }

    /// The tree as a shared handle, for callers that must keep it beyond
    /// the lifetime of this `InputDocument` (e.g. across threads).
    pub fn shared(&self) -> Arc<Document> {
        Arc::clone(&self.tree)
    }

    /// Serializes the tree as XML text (for JSON input: the
    /// `fn:json-to-xml` form), without an XML declaration.
    pub fn to_xml_string(&self) -> String {
        drehscheibe_xpath::tree::to_xml_string(self.tree.root())
    }
}

/// Builds the `$meta` document: `<meta><entry key="k">v</entry>…</meta>`
/// (characters XML cannot carry become U+FFFD).
fn meta_document(meta: &BTreeMap<String, String>) -> Document {
    let mut builder = Builder::new_document(None);
    builder.start_element(&QName::local("meta"));
    let entry = QName::local("entry");
    let key = QName::local("key");
    for (k, v) in meta {
        builder.start_element(&entry);
        // A freshly started element always accepts attributes.
        let _ = builder.attribute(&key, &xml_chars(k));
        builder.text(&xml_chars(v));
        let _ = builder.end_element();
    }
    let _ = builder.end_element();
    builder.finish()
}

/// Parses decoded XML into a tree. On failure the intake scan reports the
/// error (so `parse` and `validate` agree); should the scan accept what
/// the parser refused, the parser's own error is mapped.
fn parse_xml(text: &str) -> Result<Document, InputError> {
    let options = ParseOptions {
        max_depth: MAX_XML_DEPTH,
        max_attributes: MAX_XML_ATTRIBUTES,
        ..ParseOptions::default()
    };
    match Document::parse_str(text, &options) {
        Ok(doc) => Ok(doc),
        Err(parse_error) => {
            scan_xml(text)?;
            Err(map_parse_error(parse_error))
        }
    }
}

/// Maps the tree parser's error onto [`InputError`].
fn map_parse_error(e: ParseError) -> InputError {
    match e {
        ParseError::Doctype { line, column } => InputError::Doctype { line, column },
        ParseError::TooDeep {
            limit,
            line,
            column,
        } => InputError::TooDeep {
            format: "XML",
            limit,
            line,
            column,
        },
        ParseError::TooManyAttributes { line, column, .. } => too_many_attributes(line, column),
        ParseError::Malformed {
            line,
            column,
            message,
        } => InputError::MalformedXml {
            line,
            column,
            message,
        },
        ParseError::Encoding(message) => InputError::Encoding(message),
    }
}

// ---------------------------------------------------------------------------
// Encoding

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decodes XML bytes (byte order mark, then `charset`, then the XML
/// declaration, else UTF-8): the tree's decoder, so intake and parsing
/// agree byte for byte.
fn decode_xml<'a>(bytes: &'a [u8], charset: Option<&str>) -> Result<Cow<'a, str>, InputError> {
    drehscheibe_xpath::tree::decode_xml(bytes, charset).map_err(map_parse_error)
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

/// The intake check of XML: one streaming pass, nothing built, linear in
/// the input for every shape of document (many attributes, many
/// namespace declarations, many elements):
///
/// * prefixes are resolved against our own scope — a map from prefix to
///   the number of declarations of it in scope, undone at the end tag —
///   so a lookup is O(1) (`NsReader` scans its binding list per lookup,
///   which is quadratic for an element with many declarations);
/// * duplicate attributes are found with a short list for the usual
///   handful and a hash set beyond [`SMALL_ATTRIBUTE_COUNT`] (quick-xml's
///   own check compares every pair and is switched off);
/// * at most [`MAX_XML_ATTRIBUTES`] attributes per element, the tree
///   parser's limit, with the same error.
fn scan_xml(text: &str) -> Result<(), InputError> {
    let mut reader = Reader::from_str(text);
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
    let mut scope = PrefixScope::default();
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut key_set: HashSet<&[u8]> = HashSet::new();
    loop {
        let start = reader.buffer_position();
        let event = match reader.read_event() {
            Ok(event) => event,
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
                check_qname(element.name().into_inner(), "element")
                    .map_err(|m| malformed(start, m))?;
                // The attributes: limits, values, duplicates, declarations.
                scope.open();
                keys.clear();
                key_set.clear();
                let mut attributes = element.attributes();
                attributes.with_checks(false);
                for (count, attribute) in attributes.enumerate() {
                    if count >= MAX_XML_ATTRIBUTES {
                        let (line, column) =
                            line_column(text, usize::try_from(start).unwrap_or(usize::MAX));
                        return Err(too_many_attributes(line, column));
                    }
                    let attribute =
                        attribute.map_err(|e| malformed(start, format!("attribute: {e}")))?;
                    // Re-sliced from the input, so that it outlives the event.
                    let raw_key = attribute.key.into_inner();
                    let at = offset_in(text, raw_key);
                    let key: &[u8] = text
                        .as_bytes()
                        .get(at..at + raw_key.len())
                        .filter(|k| *k == raw_key)
                        .ok_or_else(|| malformed(start, "invalid attribute name".into()))?;
                    check_qname(key, "attribute").map_err(|m| malformed(start, m))?;
                    let duplicate = if keys.len() < SMALL_ATTRIBUTE_COUNT {
                        keys.contains(&key)
                    } else {
                        if key_set.is_empty() {
                            key_set.extend(keys.iter().copied());
                        }
                        !key_set.insert(key)
                    };
                    if duplicate {
                        return Err(malformed(
                            start,
                            format!("duplicate attribute {:?}", String::from_utf8_lossy(key)),
                        ));
                    }
                    keys.push(key);
                    if attribute.value.contains(&b'<') {
                        return Err(malformed(
                            start,
                            "'<' is not allowed in attribute values".into(),
                        ));
                    }
                    let value = attribute
                        .unescape_value()
                        .map_err(|e| malformed(start, format!("attribute value: {e}")))?;
                    check_chars(&value).map_err(|m| malformed(start, m))?;
                    let declared = if key == b"xmlns" {
                        Some(&b""[..])
                    } else {
                        key.strip_prefix(b"xmlns:")
                    };
                    if let Some(prefix) = declared {
                        check_declaration(prefix, &value).map_err(|m| malformed(start, m))?;
                        scope.declare(prefix);
                    }
                }
                // Every prefix used must be declared (the element's own
                // declarations count).
                let name = element.name().into_inner();
                if let Some(prefix) = prefix_of(name) {
                    if prefix == b"xmlns" {
                        return Err(malformed(
                            start,
                            "the prefix xmlns cannot name an element".into(),
                        ));
                    }
                    if !scope.is_bound(prefix) {
                        return Err(malformed(
                            start,
                            format!(
                                "undeclared namespace prefix {:?}",
                                String::from_utf8_lossy(prefix)
                            ),
                        ));
                    }
                }
                for key in &keys {
                    match prefix_of(key) {
                        Some(b"xmlns") | None => {}
                        Some(prefix) if scope.is_bound(prefix) => {}
                        Some(prefix) => {
                            return Err(malformed(
                                start,
                                format!(
                                    "undeclared namespace prefix {:?} on attribute",
                                    String::from_utf8_lossy(prefix)
                                ),
                            ))
                        }
                    }
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                } else {
                    scope.close();
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                scope.close();
            }
            Event::Text(ref t) => {
                // Outside the root only XML whitespace (raw: a character
                // reference is not allowed there either).
                if depth == 0
                    && !std::str::from_utf8(t).is_ok_and(drehscheibe_xpath::tree::is_xml_whitespace)
                {
                    return Err(malformed(start, "text outside the root element".into()));
                }
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
                check_chars(&unescaped).map_err(|m| malformed(start, m))?;
            }
            Event::CData(ref t) => {
                check_chars(&String::from_utf8_lossy(t)).map_err(|m| malformed(start, m))?;
                if depth == 0 {
                    return Err(malformed(start, "CDATA outside the root element".into()));
                }
            }
            Event::PI(ref t) => {
                let target = String::from_utf8_lossy(t.target());
                if let Some(message) = drehscheibe_xpath::tree::pi_target_error(&target) {
                    return Err(malformed(start, message));
                }
                check_chars(&String::from_utf8_lossy(t)).map_err(|m| malformed(start, m))?;
            }
            Event::Comment(ref t) => {
                check_chars(&String::from_utf8_lossy(t)).map_err(|m| malformed(start, m))?;
            }
            Event::Decl(_) => {
                if start != 0 {
                    return Err(malformed(
                        start,
                        "the XML declaration is only allowed at the very start".into(),
                    ));
                }
            }
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

/// Attributes on one element up to which duplicates are found by a
/// linear search (cheaper than hashing for the usual handful).
const SMALL_ATTRIBUTE_COUNT: usize = 16;

fn too_many_attributes(line: usize, column: usize) -> InputError {
    InputError::MalformedXml {
        line,
        column,
        message: format!("more than {MAX_XML_ATTRIBUTES} attributes on one element"),
    }
}

/// Byte offset of `sub` inside `text` (`sub` borrows from `text`; else
/// an offset past the end, which no slice of `text` matches).
fn offset_in(text: &str, sub: &[u8]) -> usize {
    let start = text.as_ptr() as usize;
    let at = sub.as_ptr() as usize;
    if at >= start && at <= start + text.len() {
        at - start
    } else {
        usize::MAX / 2
    }
}

/// The prefix of a lexical name (`p:x` → `p`), if any.
fn prefix_of(name: &[u8]) -> Option<&[u8]> {
    name.iter()
        .position(|&b| b == b':')
        .and_then(|i| name.get(..i))
}

/// The namespace prefixes declared in scope during a scan: O(1) lookups,
/// undone element by element. (A prefix cannot be undeclared in XML 1.0,
/// so "bound" is "declared on this element or an ancestor".)
#[derive(Default)]
struct PrefixScope<'t> {
    /// Declarations in scope per prefix.
    counts: HashMap<&'t [u8], u32>,
    /// Prefixes in the order declared, for undoing.
    declared: Vec<&'t [u8]>,
    /// Per open element: `declared.len()` when it started.
    marks: Vec<usize>,
}

impl<'t> PrefixScope<'t> {
    fn open(&mut self) {
        self.marks.push(self.declared.len());
    }

    fn declare(&mut self, prefix: &'t [u8]) {
        *self.counts.entry(prefix).or_insert(0) += 1;
        self.declared.push(prefix);
    }

    fn close(&mut self) {
        let mark = self.marks.pop().unwrap_or(0);
        for prefix in self.declared.drain(mark..) {
            if let Some(n) = self.counts.get_mut(prefix) {
                *n = n.saturating_sub(1);
            }
        }
    }

    fn is_bound(&self, prefix: &[u8]) -> bool {
        prefix == b"xml" || self.counts.get(prefix).is_some_and(|&n| n > 0)
    }
}

/// Namespaces in XML 1.0 constraints on a declaration: the tree
/// parser's own rules.
fn check_declaration(prefix: &[u8], uri: &str) -> Result<(), String> {
    match drehscheibe_xpath::tree::declaration_error(&String::from_utf8_lossy(prefix), uri) {
        Some(message) => Err(message),
        None => Ok(()),
    }
}

/// Refuses an element or attribute name that is not a QName, with the
/// tree parser's rule ([`drehscheibe_xpath::tree::split_qname`]).
fn check_qname(raw: &[u8], what: &str) -> Result<(), String> {
    match std::str::from_utf8(raw)
        .ok()
        .and_then(drehscheibe_xpath::tree::split_qname)
    {
        Some(_) => Ok(()),
        None => Err(format!(
            "invalid {what} name {:?}",
            String::from_utf8_lossy(raw)
        )),
    }
}

/// Refuses characters XML 1.0 does not allow (raw or as character
/// references), as the tree parser does.
fn check_chars(text: &str) -> Result<(), String> {
    match text.chars().find(|&c| !is_xml_char(c)) {
        None => Ok(()),
        Some(c) => Err(format!(
            "character U+{:04X} is not allowed in XML",
            u32::from(c)
        )),
    }
}

/// The XML 1.0 `Char` production.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

// ---------------------------------------------------------------------------
// JSON

/// Converts JSON text to its `fn:json-to-xml` tree with the engine's
/// converter (see [`InputDocument::parse`] for the mapping: duplicate keys
/// retained, no `escape` option). The converter refuses nesting deeper
/// than [`MAX_JSON_DEPTH`] with a linear pre-scan before it recurses.
fn json_to_xml(text: &str) -> Result<Document, InputError> {
    json::json_to_xml(text, &JSON_OPTIONS).map_err(json_input_error)
}

/// The one set of JSON options of intake ([`validate`]) and routing
/// ([`InputDocument::parse`]).
const JSON_OPTIONS: JsonOptions = JsonOptions {
    max_depth: MAX_JSON_DEPTH,
    duplicates: Duplicates::Retain,
    escape: false,
};

fn json_input_error(e: JsonError) -> InputError {
    match e {
        JsonError::TooDeep {
            limit,
            line,
            column,
        } => InputError::TooDeep {
            format: "JSON",
            limit,
            line,
            column,
        },
        JsonError::Malformed {
            line,
            column,
            message,
        } => InputError::MalformedJson {
            line,
            column,
            message,
        },
        // Not produced with the options above; reported, never panicked on.
        other => InputError::MalformedJson {
            line: 1,
            column: 1,
            message: other.to_string(),
        },
    }
}

/// Replaces characters XML 1.0 cannot carry with U+FFFD.
fn xml_chars(s: &str) -> Cow<'_, str> {
    if s.chars().all(is_xml_char) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(
            s.chars()
                .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_xml_is_transcoded_to_utf8() {
        let latin1 = b"<?xml version='1.0' encoding='ISO-8859-1'?>\n<a>Stra\xDFe M\xFCller</a>";
        validate(latin1, "application/xml").unwrap();
        let t = transcode_to_utf8(latin1, "application/xml")
            .unwrap()
            .unwrap();
        assert_eq!(t.from, "windows-1252");
        assert_eq!(
            String::from_utf8(t.bytes.clone()).unwrap(),
            "<?xml version='1.0' encoding='UTF-8'?>\n<a>Stra\u{DF}e M\u{FC}ller</a>"
        );
        // The transcoded document is the same document.
        let before = InputDocument::parse(latin1, "application/xml").unwrap();
        let after = InputDocument::parse(&t.bytes, "application/xml").unwrap();
        assert_eq!(before.to_xml_string(), after.to_xml_string());
        // A charset parameter counts too; UTF-8 and JSON stay as they are.
        let t = transcode_to_utf8(b"<a>\xE4</a>", "text/xml; charset=latin1")
            .unwrap()
            .unwrap();
        assert_eq!(t.bytes, "<a>\u{E4}</a>".as_bytes());
        assert_eq!(
            transcode_to_utf8(b"<a>\xC3\xA4</a>", "application/xml"),
            Ok(None)
        );
        assert_eq!(transcode_to_utf8(b"{}", "application/json"), Ok(None));
        assert_eq!(
            declare_utf8("<?xml version=\"1.0\"?><a/>"),
            "<?xml version=\"1.0\"?><a/>"
        );
    }

    #[test]
    fn check_chars_refuses_what_xml_cannot_carry() {
        assert!(check_chars("a\tb\n\u{10000}").is_ok());
        let err = check_chars("a\u{1}b").unwrap_err();
        assert!(err.contains("U+0001"), "{err}");
        assert_eq!(xml_chars("a\u{0}b"), "a\u{FFFD}b");
    }

    /// Findings of the `intake_xml` fuzz target (fuzz/regressions): the
    /// intake scan accepted these and routing refused them. Both must
    /// refuse each.
    #[test]
    fn intake_and_routing_agree_on_fuzzer_findings() {
        for case in [
            "<a/><?xml version=\"1.0\"?>",
            "<a><?xml-stylesheet href=\"x\"?><?p:x data?></a>",
            "<a><? x?></a>",
            "<a/>\u{a0}",
            "<a/>&#32;",
            "<a x::c=\"1\"/>",
            "<a:/>",
            "<a><:b/></a>",
        ] {
            assert!(
                validate(case.as_bytes(), "application/xml").is_err(),
                "intake accepts {case:?}"
            );
            assert!(
                InputDocument::parse(case.as_bytes(), "application/xml").is_err(),
                "routing accepts {case:?}"
            );
        }
        // What XML allows stays accepted: a PI target starting with "xml",
        // whitespace around the root.
        let fine = "<?xml version=\"1.0\"?>\n<?xml-model href=\"x\"?><a/>\r\n\t";
        assert!(validate(fine.as_bytes(), "application/xml").is_ok());
        assert!(InputDocument::parse(fine.as_bytes(), "application/xml").is_ok());
    }

    #[test]
    fn parser_errors_map_onto_input_errors() {
        assert_eq!(
            map_parse_error(ParseError::Doctype { line: 2, column: 1 }),
            InputError::Doctype { line: 2, column: 1 }
        );
        assert!(matches!(
            map_parse_error(ParseError::TooDeep {
                limit: 512,
                line: 1,
                column: 9
            }),
            InputError::TooDeep {
                format: "XML",
                limit: 512,
                ..
            }
        ));
        assert!(matches!(
            map_parse_error(ParseError::Encoding("x".into())),
            InputError::Encoding(_)
        ));
    }

    #[test]
    fn meta_document_holds_one_entry_per_fact() {
        let meta = BTreeMap::from([
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "x\u{0}".to_owned()),
        ]);
        let doc = meta_document(&meta);
        let root = doc.root().first_child().unwrap();
        assert_eq!(root.name().unwrap().local, "meta");
        let entries: Vec<_> = root
            .children()
            .map(|e| {
                (
                    e.attribute("", "key").unwrap().to_owned(),
                    e.string_value().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "x\u{FFFD}".to_owned())
            ]
        );
    }

    #[test]
    fn the_tree_is_shared_not_copied() {
        let doc = InputDocument::parse(b"<a>x</a>", "application/xml").unwrap();
        let shared = doc.shared();
        assert!(std::ptr::eq(&*shared, doc.document()));
        assert_eq!(doc.to_xml_string(), "<a>x</a>");
    }
}
