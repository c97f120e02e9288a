//! Reads a stylesheet module into the compiler's xot tree.
//!
//! quick-xml tokenizes the text and this module builds the tree that
//! `Xot::parse_with_span_info` builds (elements with their namespace
//! declarations and attributes, text with adjacent text and CDATA merged,
//! comments, processing instructions; no DTD) — except that line ends in
//! CDATA sections, comments and processing instructions are normalized
//! to LF as XML 1.0 §2.11 requires (xot keeps CR there) — and records where each
//! element and text node starts, for the compiler's `file:line:col`
//! messages. xot's own parser spent a third of the compile time of a
//! typical rule (`gewerbeanmeldung`'s three-module stylesheet: 3.2 M of
//! 10.1 M instructions, docs/benchmarks.md), most of it in its tokenizer,
//! in copying every attribute value and text character by character, and
//! in span bookkeeping the compiler does not use.
//!
//! Well-formedness is checked as xot checks it: characters allowed in XML,
//! one root element, matching end tags, declared prefixes, no duplicate
//! attributes, known entity and character references, the XML declaration
//! first, no DTD, XML 1.0. (Not checked: unique `xml:id` values, which xot
//! also normalizes; the compiler does not use them.)

use std::borrow::Cow;

use drehscheibe_xpath::tree::{
    first_non_xml_char, normalize_newlines, split_qname, XMLNS_NS, XML_NS,
};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use rustc_hash::FxHashMap;
use xot::{NamespaceId, Node, PrefixId, Xot};

/// Why a module is not well-formed: the message and the byte offset in
/// the module text it applies to.
#[derive(Debug)]
pub(crate) struct ReadError {
    pub(crate) offset: usize,
    pub(crate) message: String,
}

fn error(offset: usize, message: impl Into<String>) -> ReadError {
    ReadError {
        offset,
        message: message.into(),
    }
}

/// Byte offsets in the module text: of each element's name (just after
/// its `<`) and of each text node's first character.
#[derive(Default)]
pub(crate) struct Positions(FxHashMap<Node, usize>);

impl Positions {
    pub(crate) fn get(&self, node: Node) -> Option<usize> {
        self.0.get(&node).copied()
    }
}

/// Reads `text` into `xot`: the document node and the positions.
pub(crate) fn read(xot: &mut Xot, text: &str) -> Result<(Node, Positions), ReadError> {
    // quick-xml does not check characters; xot's tokenizer refused these
    if let Some((offset, c)) = first_non_xml_char(text) {
        return Err(error(
            offset,
            format!("character U+{:04X} is not allowed in XML", c as u32),
        ));
    }
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.check_comments = true;
    config.expand_empty_elements = false;
    let document = xot.new_document();
    let mut state = State {
        xot,
        text,
        document,
        open: vec![document],
        bindings: Vec::new(),
        frames: Vec::new(),
        pending: String::new(),
        pending_at: 0,
        positions: Positions::default(),
        seen_root: false,
    };
    let xml = (state.xot.xml_prefix(), state.xot.xml_namespace());
    state.bindings.push(xml);
    loop {
        let at = to_usize(reader.buffer_position());
        let event = reader
            .read_event()
            .map_err(|e| error(to_usize(reader.error_position()), e.to_string()))?;
        match event {
            Event::Start(e) => {
                state.flush_text()?;
                state.open_element(&e, at)?;
            }
            Event::Empty(e) => {
                state.flush_text()?;
                state.open_element(&e, at)?;
                state.close_element();
            }
            Event::End(_) => {
                state.flush_text()?;
                state.close_element();
            }
            Event::Text(t) => {
                let raw = utf8(text, &t, at)?;
                state.text(unescape(raw, false, at)?, at)?;
            }
            Event::CData(t) => {
                let raw = utf8(text, &t, at)?;
                state.text(normalize_newlines(raw), at)?;
            }
            Event::Comment(c) => {
                state.flush_text()?;
                let content = normalize_newlines(utf8(text, &c, at)?);
                let node = state.xot.new_comment(&content);
                state.append(node, at)?;
            }
            Event::PI(pi) => {
                state.flush_text()?;
                let target = utf8(text, pi.target(), at)?;
                if target.eq_ignore_ascii_case("xml") || !is_name(target) {
                    return Err(error(
                        at,
                        format!("invalid processing instruction target {target:?}"),
                    ));
                }
                let content = normalize_newlines(utf8(text, pi.content(), at)?);
                let content = content.trim_start_matches(XML_WHITESPACE);
                let name = state.xot.add_name(target);
                let data = (!content.is_empty()).then_some(content);
                let node = state.xot.new_processing_instruction(name, data);
                state.append(node, at)?;
            }
            Event::Decl(d) => {
                // only at the very start (after a byte order mark)
                let first = text
                    .get(..at)
                    .is_some_and(|before| before.trim_start_matches('\u{feff}').is_empty());
                if !first {
                    return Err(error(at, "the XML declaration must come first"));
                }
                let version = d
                    .version()
                    .map_err(|e| error(at, format!("XML declaration: {e}")))?;
                if version.as_ref() != b"1.0" {
                    return Err(error(
                        at,
                        format!(
                            "unsupported XML version {:?} (only 1.0)",
                            String::from_utf8_lossy(&version)
                        ),
                    ));
                }
            }
            Event::DocType(_) => {
                return Err(error(
                    at,
                    "document type declarations (DTD) are not supported",
                ));
            }
            Event::Eof => {
                state.flush_text()?;
                if state.open.len() > 1 {
                    let unclosed = state.open[state.open.len() - 1];
                    let at = state.positions.get(unclosed).unwrap_or(text.len());
                    return Err(error(at, "element is not closed"));
                }
                if !state.seen_root {
                    return Err(error(text.len(), "no root element"));
                }
                return Ok((document, state.positions));
            }
        }
    }
}

const XML_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

fn to_usize(position: u64) -> usize {
    usize::try_from(position).unwrap_or(usize::MAX)
}

/// `bytes` as text. quick-xml hands out slices of the module text (read
/// from a `&str`): those are sliced from `text` again, which checks only
/// the two ends for character boundaries instead of validating every byte.
fn utf8<'b, 't: 'b>(text: &'t str, bytes: &'b [u8], at: usize) -> Result<&'b str, ReadError> {
    let base = text.as_ptr() as usize;
    let start = (bytes.as_ptr() as usize).wrapping_sub(base);
    if let Some(sub) = start
        .checked_add(bytes.len())
        .and_then(|end| text.get(start..end))
    {
        return Ok(sub);
    }
    std::str::from_utf8(bytes).map_err(|_| error(at, "invalid UTF-8"))
}

struct State<'x, 't> {
    xot: &'x mut Xot,
    text: &'t str,
    document: Node,
    /// The document node and the open elements, innermost last.
    open: Vec<Node>,
    /// Namespace bindings in scope, innermost last (`xml` first).
    bindings: Vec<(PrefixId, NamespaceId)>,
    /// Per open element, the length of `bindings` before its own.
    frames: Vec<usize>,
    /// Character data not yet added (text and CDATA sections in a row
    /// make one text node) and where it started.
    pending: String,
    pending_at: usize,
    positions: Positions,
    seen_root: bool,
}

impl State<'_, '_> {
    fn parent(&self) -> Node {
        self.open.last().copied().unwrap_or(self.document)
    }

    fn append(&mut self, node: Node, at: usize) -> Result<(), ReadError> {
        let parent = self.parent();
        self.xot
            .append(parent, node)
            .map_err(|e| error(at, e.to_string()))
    }

    fn text(&mut self, content: Cow<'_, str>, at: usize) -> Result<(), ReadError> {
        if self.open.len() == 1 {
            // outside the root element only whitespace is allowed, and it
            // is not part of the tree
            if !content.trim_matches(XML_WHITESPACE).is_empty() {
                return Err(error(at, "text outside the root element"));
            }
            return Ok(());
        }
        if content.is_empty() {
            return Ok(());
        }
        if self.pending.is_empty() {
            self.pending_at = at;
        }
        self.pending.push_str(&content);
        Ok(())
    }

    fn flush_text(&mut self) -> Result<(), ReadError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let node = self.xot.new_text(&self.pending);
        self.pending.clear();
        let at = self.pending_at;
        self.append(node, at)?;
        self.positions.0.insert(node, at);
        Ok(())
    }

    fn resolve(&self, prefix: &str, at: usize) -> Result<NamespaceId, ReadError> {
        let Some(id) = self.xot.prefix(prefix) else {
            return Err(error(at, format!("undeclared namespace prefix {prefix:?}")));
        };
        match self.bindings.iter().rev().find(|(p, _)| *p == id) {
            Some((_, ns)) => Ok(*ns),
            None if prefix.is_empty() => Ok(self.xot.no_namespace()),
            None => Err(error(at, format!("undeclared namespace prefix {prefix:?}"))),
        }
    }

    fn open_element(&mut self, start: &BytesStart<'_>, at: usize) -> Result<(), ReadError> {
        if self.open.len() == 1 {
            if self.seen_root {
                return Err(error(at, "more than one root element"));
            }
            self.seen_root = true;
        }
        let frame = self.bindings.len();
        let mut declared: Vec<(PrefixId, NamespaceId)> = Vec::new();
        let mut attributes: Vec<(&str, &str, String, usize)> = Vec::new();
        for attribute in start.attributes().with_checks(true) {
            let attribute = attribute.map_err(|e| error(at, e.to_string()))?;
            let key = utf8(self.text, attribute.key.into_inner(), at)?;
            let raw = utf8(self.text, &attribute.value, at)?;
            let value = unescape(raw, true, at)?;
            if key == "xmlns" {
                let ns = self.xot.add_namespace(&value);
                declared.push((self.xot.empty_prefix(), ns));
            } else if let Some(prefix) = key.strip_prefix("xmlns:") {
                check_declaration(prefix, &value, at)?;
                let p = self.xot.add_prefix(prefix);
                let ns = self.xot.add_namespace(&value);
                declared.push((p, ns));
            } else {
                let (prefix, local) = split_name(key, at)?;
                attributes.push((prefix, local, value.into_owned(), at));
            }
        }
        self.bindings.extend(declared.iter().copied());
        let name = utf8(self.text, start.name().into_inner(), at)?;
        let (prefix, local) = split_name(name, at)?;
        let ns = self.resolve(prefix, at)?;
        let name = self.xot.add_name_ns(local, ns);
        let element = self.xot.new_element(name);
        for (p, ns) in declared {
            self.xot.namespaces_mut(element).insert(p, ns);
        }
        let mut names = Vec::with_capacity(attributes.len());
        for (prefix, local, value, at) in attributes {
            let ns = if prefix.is_empty() {
                self.xot.no_namespace()
            } else {
                self.resolve(prefix, at)?
            };
            let name = self.xot.add_name_ns(local, ns);
            if names.contains(&name) {
                return Err(error(
                    at,
                    format!(
                        "duplicate attribute {{{}}}{local}",
                        self.xot.namespace_str(ns)
                    ),
                ));
            }
            names.push(name);
            self.xot.attributes_mut(element).insert(name, value);
        }
        self.append(element, at)?;
        self.positions.0.insert(element, at + 1);
        self.open.push(element);
        self.frames.push(frame);
        Ok(())
    }

    fn close_element(&mut self) {
        if self.open.len() > 1 {
            self.open.pop();
        }
        if let Some(frame) = self.frames.pop() {
            self.bindings.truncate(frame);
        }
    }
}

/// `xmlns:p="…"`: neither `xml` nor `xmlns` may be rebound. (An empty
/// URI, which Namespaces in XML 1.0 does not allow, is accepted as xot
/// accepts it: the prefix then names no namespace.)
fn check_declaration(prefix: &str, uri: &str, at: usize) -> Result<(), ReadError> {
    let bad = prefix == "xmlns" || uri == XMLNS_NS || (prefix == "xml") != (uri == XML_NS);
    if bad || !is_ncname(prefix) {
        return Err(error(
            at,
            format!("invalid namespace declaration xmlns:{prefix}={uri:?}"),
        ));
    }
    Ok(())
}

/// `prefix:local` or `local`, both NCNames.
fn split_name(name: &str, at: usize) -> Result<(&str, &str), ReadError> {
    split_qname(name)
        .filter(|(prefix, local)| is_ncname(local) && (prefix.is_empty() || is_ncname(prefix)))
        .ok_or_else(|| error(at, format!("invalid name {name:?}")))
}

fn is_name_start(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphabetic() || c == '_'
    } else {
        c.is_alphabetic() || !c.is_whitespace()
    }
}

fn is_name_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
    } else {
        is_name_start(c) || c == '\u{B7}'
    }
}

fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| is_name_start(c) || c == ':')
        && chars.all(|c| is_name_char(c) || c == ':')
}

/// Expands entity and character references and normalizes line ends
/// (text) or whitespace (attribute values, `attribute = true`, XML 1.0
/// §3.3.3), as xot does. Borrows when nothing changes.
fn unescape(raw: &str, attribute: bool, at: usize) -> Result<Cow<'_, str>, ReadError> {
    let special = |b: u8| b == b'&' || b == b'\r' || (attribute && (b == b'\n' || b == b'\t'));
    if !raw.bytes().any(special) {
        if attribute && raw.contains('<') {
            return Err(error(at, "'<' is not allowed in an attribute value"));
        }
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(|c: char| c.is_ascii() && special(c as u8)) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        rest = &rest[i + 1..];
        match c {
            b'&' => {
                let Some(end) = rest.find(';') else {
                    return Err(error(at, "unterminated entity or character reference"));
                };
                let name = &rest[..end];
                rest = &rest[end + 1..];
                let expanded = match name {
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "amp" => Some('&'),
                    "apos" => Some('\''),
                    "quot" => Some('"'),
                    _ => name
                        .strip_prefix("#x")
                        .map(|hex| u32::from_str_radix(hex, 16).ok())
                        .or_else(|| name.strip_prefix('#').map(|dec| dec.parse::<u32>().ok()))
                        .flatten()
                        .and_then(char::from_u32),
                };
                match expanded {
                    Some(ch) => out.push(ch),
                    None => {
                        return Err(error(
                            at,
                            format!("unknown entity or invalid character reference &{name};"),
                        ))
                    }
                }
            }
            b'\r' => {
                out.push(if attribute { ' ' } else { '\n' });
                if rest.starts_with('\n') {
                    rest = &rest[1..];
                }
            }
            _ => out.push(' '),
        }
    }
    out.push_str(rest);
    if attribute && raw.contains('<') {
        return Err(error(at, "'<' is not allowed in an attribute value"));
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree `read` builds, as xot serializes it, next to xot's own
    /// parse of the same text.
    fn both(text: &str) -> (String, String) {
        let mut ours = Xot::new();
        let (root, _) = read(&mut ours, text).unwrap();
        let mut theirs = Xot::new();
        let root2 = theirs.parse(text).unwrap();
        (
            ours.to_string(root).unwrap(),
            theirs.to_string(root2).unwrap(),
        )
    }

    #[test]
    fn builds_the_tree_xot_builds() {
        for text in [
            r#"<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"><xsl:template match="/"><out a="x &amp; y" b='&#x41;&#66;'>t&lt;<![CDATA[<c>]]>u<!-- c --><?pi data?></out></xsl:template></xsl:stylesheet>"#,
            "<?xml version=\"1.0\"?>\n<!-- before -->\n<a xmlns=\"urn:d\" xmlns:p=\"urn:p\" p:x=\"1\" xml:space=\"preserve\">\r\n<b xmlns=\"\" y=\"a\tb\nc\r\nd\"/>\r<p:c/></a>\n<?after?>\n",
            "<a><b/>  <c>x</c>\n</a>",
        ] {
            let (ours, theirs) = both(text);
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn records_element_and_text_positions() {
        let text = "<a>\n  <b>hi</b></a>";
        let mut xot = Xot::new();
        let (root, positions) = read(&mut xot, text).unwrap();
        let a = xot.document_element(root).unwrap();
        let b = xot
            .first_child(a)
            .and_then(|n| xot.next_sibling(n))
            .unwrap();
        let hi = xot.first_child(b).unwrap();
        assert_eq!(positions.get(a), Some(1));
        assert_eq!(positions.get(b), Some(7));
        assert_eq!(positions.get(hi), Some(9));
    }

    #[test]
    fn refuses_what_is_not_well_formed() {
        // (text, message, whether xot refuses it too: it lets the same
        // expanded name through two prefixes and a rebound `xml` prefix
        // pass, which Namespaces in XML 1.0 forbids)
        for (text, want, xot_refuses) in [
            ("<a><b></a>", "expected `</b>`", true),
            ("<a/><b/>", "more than one root", true),
            ("<a x='1' x='2'/>", "duplicate", true),
            (
                "<a xmlns:p='urn:p' xmlns:q='urn:p' p:x='1' q:x='2'/>",
                "duplicate attribute",
                false,
            ),
            ("<p:a/>", "undeclared namespace prefix", true),
            ("<a>&nbsp;</a>", "unknown entity", true),
            ("<a x='&#xZZ;'/>", "invalid character reference", true),
            ("<!DOCTYPE a><a/>", "DTD", true),
            ("<?xml version=\"1.1\"?><a/>", "version", true),
            ("<a>", "not closed", true),
            ("", "no root element", true),
            ("text<a/>", "outside the root", true),
            ("<a xmlns:xml='urn:x'/>", "namespace declaration", false),
            ("<a x='<'/>", "not allowed", true),
            ("<1a/>", "invalid name", true),
            ("<a>\u{1}</a>", "U+0001", true),
            ("<a/><?xml version=\"1.0\"?>", "must come first", true),
        ] {
            let mut xot = Xot::new();
            let e = read(&mut xot, text)
                .err()
                .unwrap_or_else(|| panic!("{text} read"));
            assert!(e.message.contains(want), "{text}: {}", e.message);
            if xot_refuses {
                assert!(Xot::new().parse(text).is_err(), "xot reads {text}");
            }
        }
    }
}
