//! The XML parser: bytes → text (encoding detection) → [`Document`].
//!
//! Tokenizing is done by `quick-xml`'s [`Reader`]; everything above the
//! tokens is done here, in one pass and in linear time:
//!
//! * namespace resolution with O(1) prefix lookups (the builder's scope
//!   map; `NsReader` scans its binding list per lookup);
//! * duplicate attributes detected by interned name id — linearly for
//!   the usual handful, with a hash set for elements with many attributes
//!   (quick-xml's own duplicate check is quadratic and is switched off);
//! * entity and character-reference expansion, line-end normalization and
//!   attribute-value normalization by our own unescaper, which knows only
//!   the five predefined entities and reports the exact position of a bad
//!   reference;
//! * limits (depth, attributes per element) checked while reading, before
//!   any of the offending content is stored.
//!
//! Line and column are computed only when an error is reported.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use quick_xml::events::Event;
use quick_xml::Reader;

use super::{Builder, Document, NameId, ParseError, ParseOptions, XMLNS_NS, XML_NS};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decodes XML bytes to text: a byte order mark wins, then `charset` (an
/// encoding label from outside, e.g. a media type parameter), then the
/// `encoding` of the XML declaration, else UTF-8. UTF-16 without byte
/// order mark is recognised from the `<?` pattern.
pub fn decode_xml<'a>(bytes: &'a [u8], charset: Option<&str>) -> Result<Cow<'a, str>, ParseError> {
    decode_xml_from(bytes, charset).map(|(text, _)| text)
}

/// [`decode_xml`], also naming the encoding the bytes were decoded from
/// (the WHATWG name encoding_rs uses: `UTF-8`, `UTF-16LE`,
/// `windows-1252` for the `ISO-8859-1` label, …).
pub fn decode_xml_from<'a>(
    bytes: &'a [u8],
    charset: Option<&str>,
) -> Result<(Cow<'a, str>, &'static str), ParseError> {
    let utf8_name = encoding_rs::UTF_8.name();
    if let Some(rest) = bytes.strip_prefix(UTF8_BOM) {
        return utf8(rest).map(|t| (Cow::Borrowed(t), utf8_name));
    }
    let utf16 = if bytes.starts_with(b"\xFF\xFE") {
        Some((encoding_rs::UTF_16LE, 2))
    } else if bytes.starts_with(b"\xFE\xFF") {
        Some((encoding_rs::UTF_16BE, 2))
    } else if bytes.starts_with(b"<\0?\0") {
        Some((encoding_rs::UTF_16LE, 0))
    } else if bytes.starts_with(b"\0<\0?") {
        Some((encoding_rs::UTF_16BE, 0))
    } else {
        None
    };
    if let Some((encoding, skip)) = utf16 {
        let body = bytes.get(skip..).unwrap_or_default();
        return encoding
            .decode_without_bom_handling_and_without_replacement(body)
            .map(|text| (Cow::Owned(text.into_owned()), encoding.name()))
            .ok_or_else(|| ParseError::Encoding(format!("invalid {} data", encoding.name())));
    }
    let label = match charset {
        Some(label) => Some(label.to_owned()),
        None => declared_encoding(bytes),
    };
    let Some(label) = label else {
        return utf8(bytes).map(|t| (Cow::Borrowed(t), utf8_name));
    };
    let encoding = encoding_rs::Encoding::for_label(label.trim().as_bytes())
        .ok_or_else(|| ParseError::Encoding(format!("unknown encoding {label:?}")))?;
    if encoding == encoding_rs::UTF_8 {
        return utf8(bytes).map(|t| (Cow::Borrowed(t), utf8_name));
    }
    if encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE {
        return Err(ParseError::Encoding(format!(
            "{} declared, but the data is not UTF-16 (no byte order mark)",
            encoding.name()
        )));
    }
    encoding
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|text| (Cow::Owned(text.into_owned()), encoding.name()))
        .ok_or_else(|| ParseError::Encoding(format!("invalid {} data", encoding.name())))
}

fn utf8(bytes: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = bytes.get(..e.valid_up_to()).unwrap_or_default();
        let prefix = String::from_utf8_lossy(valid);
        let (line, column) = line_column(&prefix, prefix.len());
        ParseError::Encoding(format!(
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
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    (line, column)
}

/// Byte offset of `sub` inside `text` (sub must borrow from text; else 0).
fn offset_in(text: &str, sub: &[u8]) -> usize {
    let start = text.as_ptr() as usize;
    let p = sub.as_ptr() as usize;
    if p >= start && p <= start + text.len() {
        p - start
    } else {
        0
    }
}

struct Ctx<'t> {
    /// The whole input (error positions, attribute keys).
    text: &'t str,
}

impl Ctx<'_> {
    fn malformed(&self, offset: usize, message: impl Into<String>) -> ParseError {
        let (line, column) = line_column(self.text, offset);
        ParseError::Malformed {
            line,
            column,
            message: message.into(),
        }
    }

    fn str_at<'b>(&self, bytes: &'b [u8]) -> Result<&'b str, ParseError> {
        std::str::from_utf8(bytes)
            .map_err(|_| self.malformed(offset_in(self.text, bytes), "invalid UTF-8 in markup"))
    }
}

/// Is `c` allowed in XML 1.0 content?
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Does UTF-8 `bytes` contain U+FFFE or U+FFFF (EF BF BE / EF BF BF)?
fn has_nonchar(bytes: &[u8]) -> bool {
    // U+FFFE/U+FFFF start with 0xEF, rare in any text: find that first
    memchr::memchr_iter(0xEF, bytes)
        .any(|i| bytes.get(i + 1) == Some(&0xBF) && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)))
}

/// Does text (`attr = false`) or an attribute value need [`unescape`]'s
/// slow path? Branch-free per 32-byte block (the compiler vectorises it):
/// this runs over every byte of character data.
fn needs_unescape(bytes: &[u8], attr: bool) -> bool {
    let block = |b: &[u8]| {
        b.iter().fold(false, |acc, &c| {
            let control = (c < 0x20) & (attr | ((c != b'\n') & (c != b'\t')));
            acc | (c == b'&') | (c == b'\r') | control | (attr & (c == b'<'))
        })
    };
    bytes.chunks(32).any(block) || has_nonchar(bytes)
}

/// Expands references and normalizes line ends (text) or whitespace
/// (attribute values, `attr = true`). `base` is the offset of `raw` in
/// the input, for error positions. Returns borrowed text when nothing
/// changes.
fn unescape<'r>(
    ctx: &Ctx<'_>,
    raw: &'r str,
    base: usize,
    attr: bool,
) -> Result<Cow<'r, str>, ParseError> {
    let bytes = raw.as_bytes();
    if !needs_unescape(bytes, attr) {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'&' => {
                let rest = &raw[i + 1..];
                let Some(semi) = rest.find(';') else {
                    return Err(
                        ctx.malformed(base + i, "unterminated entity or character reference")
                    );
                };
                let name = &rest[..semi];
                if let Some(num) = name.strip_prefix('#') {
                    let value = if let Some(hex) = num.strip_prefix('x') {
                        u32::from_str_radix(hex, 16).ok()
                    } else {
                        num.parse::<u32>().ok()
                    };
                    let ch = value
                        .filter(|_| !num.is_empty() && !num.starts_with(['+', '-']))
                        .and_then(char::from_u32)
                        .filter(|&c| xml_char(c));
                    match ch {
                        Some(ch) => out.push(ch),
                        None => {
                            return Err(ctx.malformed(
                                base + i,
                                format!("invalid character reference &{name};"),
                            ))
                        }
                    }
                } else {
                    out.push(match name {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        _ => {
                            return Err(ctx.malformed(
                                base + i,
                                format!(
                                    "unknown entity &{name}; (only the predefined entities and character references are allowed)"
                                ),
                            ))
                        }
                    });
                }
                i += semi + 2;
            }
            b'\r' => {
                out.push(if attr { ' ' } else { '\n' });
                i += 1;
                if bytes.get(i) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' | b'\t' if attr => {
                out.push(' ');
                i += 1;
            }
            b'<' if attr => {
                return Err(ctx.malformed(base + i, "'<' is not allowed in attribute values"));
            }
            _ if c < 0x20 && c != b'\n' && c != b'\t' => {
                return Err(ctx.malformed(
                    base + i,
                    format!("character U+{c:04X} is not allowed in XML"),
                ));
            }
            _ => {
                // Copy a run of ordinary characters at once.
                let start = i;
                i += 1;
                while i < bytes.len()
                    && !matches!(bytes[i], b'&' | b'\r' | b'\n' | b'\t' | b'<' | 0..=0x1F)
                {
                    i += 1;
                }
                let run = &raw[start..i];
                if has_nonchar(run.as_bytes()) {
                    return Err(ctx.malformed(
                        base + start,
                        "character U+FFFE/U+FFFF is not allowed in XML",
                    ));
                }
                out.push_str(run);
                if i < bytes.len() && !attr && matches!(bytes[i], b'\n' | b'\t' | b'<') {
                    out.push(bytes[i] as char);
                    i += 1;
                }
            }
        }
    }
    Ok(Cow::Owned(out))
}

/// Normalizes line ends (CDATA, comments, PIs): CR LF and CR → LF.
/// Shared with the XSLT crate's stylesheet reader.
pub fn normalize_newlines(s: &str) -> Cow<'_, str> {
    if s.contains('\r') {
        Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(s)
    }
}

/// Splits `prefix:local` (no colon: empty prefix); `None` if malformed.
/// Shared with the rules crate's intake scan, like [`declaration_error`]
/// and [`pi_target_error`]: whatever the scan accepts, this parser must.
pub fn split_qname(name: &str) -> Option<(&str, &str)> {
    match name.split_once(':') {
        None if !name.is_empty() => Some(("", name)),
        Some((p, l)) if !p.is_empty() && !l.is_empty() && !l.contains(':') => Some((p, l)),
        _ => None,
    }
}

/// One attribute of the start tag being processed: key position in the
/// input and value range in the value buffer.
struct RawAttr {
    key_at: usize,
    key_len: usize,
    value: std::ops::Range<usize>,
}

/// Parses decoded XML text into a document.
pub(crate) fn parse_str(text: &str, options: &ParseOptions) -> Result<Document, ParseError> {
    let ctx = Ctx { text };
    if text.len() >= u32::MAX as usize {
        return Err(ctx.malformed(0, "document too large (4 GiB or more)"));
    }
    let mut reader = Reader::from_str(text);
    {
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.allow_unmatched_ends = false;
        config.expand_empty_elements = false;
        config.trim_text(false);
    }
    let mut b = Builder::new_document(options.uri.clone());
    // Modest pre-sizing (the buffers are shrunk to fit at the end; a big
    // guess would raise the peak for text-heavy input).
    b.reserve(text.len() / 32, text.len() / 8);
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut attrs: Vec<RawAttr> = Vec::new();
    let mut values = String::new();
    let mut ids: Vec<NameId> = Vec::new();
    let mut id_set: HashSet<NameId> = HashSet::new();
    let mut prefix_set: HashSet<&str> = HashSet::new();
    // Resolved names by their lexical form, valid while the namespace
    // bindings in scope do not change (most documents declare their
    // namespaces on the root only): (scope generation, name id).
    let mut element_names: NameCache<'_> = NameCache::default();
    let mut attribute_names: NameCache<'_> = NameCache::default();
    loop {
        let start = reader.buffer_position() as usize;
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => return Err(ctx.malformed(reader.error_position() as usize, e.to_string())),
        };
        match event {
            Event::Decl(_) => {
                if start != 0 {
                    return Err(ctx.malformed(
                        start,
                        "the XML declaration is only allowed at the very start",
                    ));
                }
            }
            Event::DocType(_) => {
                let (line, column) = line_column(text, start);
                return Err(ParseError::Doctype { line, column });
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                if depth == 0 {
                    if seen_root {
                        return Err(ctx.malformed(start, "more than one root element"));
                    }
                    seen_root = true;
                }
                if depth + 1 > options.max_depth {
                    let (line, column) = line_column(text, start);
                    return Err(ParseError::TooDeep {
                        limit: options.max_depth,
                        line,
                        column,
                    });
                }
                let raw_name = e.name().into_inner();
                let name_at = offset_in(text, raw_name);
                // re-sliced from the input, so that it outlives the event
                let qname = match text.get(name_at..name_at + raw_name.len()) {
                    Some(q) if q.as_bytes() == raw_name => q,
                    _ => return Err(ctx.malformed(start, "invalid UTF-8 in markup")),
                };
                let Some((prefix, local)) = split_qname(qname) else {
                    return Err(ctx.malformed(start, format!("invalid element name {qname:?}")));
                };
                // 1. Read the attributes (values unescaped into `values`).
                attrs.clear();
                values.clear();
                let mut it = e.attributes();
                it.with_checks(false);
                for (count, a) in it.enumerate() {
                    if count >= options.max_attributes {
                        let (line, column) = line_column(text, start);
                        return Err(ParseError::TooManyAttributes {
                            limit: options.max_attributes,
                            line,
                            column,
                        });
                    }
                    let a = a.map_err(|err| ctx.malformed(start, format!("attribute: {err}")))?;
                    let key = a.key.into_inner();
                    let raw_value = ctx.str_at(&a.value)?;
                    let value_at = offset_in(text, &a.value);
                    let v = unescape(&ctx, raw_value, value_at, true)?;
                    let from = values.len();
                    values.push_str(&v);
                    attrs.push(RawAttr {
                        key_at: offset_in(text, key),
                        key_len: key.len(),
                        value: from..values.len(),
                    });
                }
                // 2. Start the element, then bind its declarations.
                b.push_element(NameId::MAX);
                prefix_set.clear();
                let mut ndecl = 0usize;
                for a in &attrs {
                    let key = &text[a.key_at..a.key_at + a.key_len];
                    let decl_prefix = if key == "xmlns" {
                        Some("")
                    } else {
                        key.strip_prefix("xmlns:")
                    };
                    let Some(p) = decl_prefix else { continue };
                    let uri = &values[a.value.clone()];
                    ndecl += 1;
                    if ndecl > 1 {
                        if prefix_set.is_empty() {
                            // Switch to the set lazily (most elements have
                            // at most one declaration).
                            for o in &attrs {
                                let k = &text[o.key_at..o.key_at + o.key_len];
                                if std::ptr::eq(o, a) {
                                    break;
                                }
                                if k == "xmlns" {
                                    prefix_set.insert("");
                                } else if let Some(q) = k.strip_prefix("xmlns:") {
                                    prefix_set.insert(q);
                                }
                            }
                        }
                        if !prefix_set.insert(p) {
                            return Err(ctx.malformed(
                                a.key_at,
                                format!("duplicate namespace declaration {key:?}"),
                            ));
                        }
                    }
                    check_declaration(&ctx, a.key_at, p, uri)?;
                    if p == "xml" {
                        continue;
                    }
                    b.declare_new(p, uri);
                }
                // 3. Resolve the element name.
                let generation = b.scope_generation();
                let cached = element_names
                    .get(qname)
                    .filter(|(g, _)| *g == generation)
                    .map(|(_, id)| *id);
                let id = match cached {
                    Some(id) => id,
                    None => {
                        let uri = match b.resolve_prefix(prefix) {
                            Some(u) => u.to_string(),
                            None if prefix.is_empty() => String::new(),
                            None => {
                                return Err(ctx.malformed(
                                    start,
                                    format!("undeclared namespace prefix {prefix:?}"),
                                ))
                            }
                        };
                        if prefix == "xmlns" {
                            return Err(
                                ctx.malformed(start, "the prefix xmlns cannot name an element")
                            );
                        }
                        let id = b.intern_parts(&uri, local, prefix);
                        element_names.insert(qname, (generation, id));
                        id
                    }
                };
                b.set_pending_name(id);
                // 4. The attributes proper.
                add_attributes(
                    &ctx,
                    &mut b,
                    &attrs,
                    &values,
                    &mut ids,
                    &mut id_set,
                    &mut attribute_names,
                )?;
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                } else {
                    b.end_element()
                        .map_err(|err| ctx.malformed(start, err.to_string()))?;
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                b.end_element()
                    .map_err(|err| ctx.malformed(start, err.to_string()))?;
            }
            Event::Text(ref t) => {
                let raw = ctx.str_at(t)?;
                if depth == 0 {
                    if !super::is_xml_whitespace(raw) {
                        let at = start + raw.len() - raw.trim_start().len();
                        return Err(ctx.malformed(at, "text outside the root element"));
                    }
                    continue;
                }
                let v = unescape(&ctx, raw, start, false)?;
                b.text(&v);
            }
            Event::CData(ref t) => {
                if depth == 0 {
                    return Err(ctx.malformed(start, "CDATA outside the root element"));
                }
                let raw = ctx.str_at(t)?;
                check_chars(&ctx, raw, start)?;
                b.text(&normalize_newlines(raw));
            }
            Event::Comment(ref t) => {
                let raw = ctx.str_at(t)?;
                check_chars(&ctx, raw, start)?;
                b.comment(&normalize_newlines(raw));
            }
            Event::PI(ref pi) => {
                let target = ctx.str_at(pi.target())?;
                if let Some(message) = pi_target_error(target) {
                    return Err(ctx.malformed(start, message));
                }
                let data = ctx.str_at(pi.content())?;
                let data = data.trim_start_matches([' ', '\t', '\r', '\n']);
                check_chars(&ctx, data, start)?;
                b.processing_instruction(target, &normalize_newlines(data));
            }
            Event::Eof => break,
        }
    }
    if depth > 0 {
        return Err(ctx.malformed(text.len(), "unexpected end of document: element not closed"));
    }
    if !seen_root {
        return Err(ctx.malformed(text.len(), "no root element"));
    }
    Ok(b.finish())
}

/// Lexical name → (scope generation, name id).
type NameCache<'t> = HashMap<&'t str, (u64, NameId), FxState>;

/// A small, fast hasher for the parser's name caches (short strings).
#[derive(Default, Clone, Copy)]
pub(crate) struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = self.0;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
        self.0 = h;
    }
    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(i)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

pub(crate) type FxState = std::hash::BuildHasherDefault<Fx>;

/// Adds the attributes (not the namespace declarations) of the element
/// just started: resolves and interns their names (cached by lexical
/// name while the bindings in scope stay the same), rejects duplicates.
fn add_attributes<'t>(
    ctx: &Ctx<'t>,
    b: &mut Builder,
    attrs: &[RawAttr],
    values: &str,
    ids: &mut Vec<NameId>,
    id_set: &mut HashSet<NameId>,
    cache: &mut NameCache<'t>,
) -> Result<(), ParseError> {
    let text = ctx.text;
    let generation = b.scope_generation();
    ids.clear();
    for a in attrs {
        let key = text.get(a.key_at..a.key_at + a.key_len).unwrap_or_default();
        let cached = match cache.get(key) {
            Some(&(g, id)) if g == generation => Some(id),
            _ => None,
        };
        let id = match cached {
            Some(id) => id,
            None => {
                if key == "xmlns" || key.starts_with("xmlns:") {
                    continue;
                }
                let Some((p, l)) = split_qname(key) else {
                    return Err(ctx.malformed(a.key_at, format!("invalid attribute name {key:?}")));
                };
                let id = if p.is_empty() {
                    b.intern_parts("", l, "")
                } else {
                    let Some(u) = b.resolve_prefix(p) else {
                        return Err(ctx.malformed(
                            a.key_at,
                            format!("undeclared namespace prefix {p:?} on attribute"),
                        ));
                    };
                    let u = u.to_string();
                    b.intern_parts(&u, l, p)
                };
                cache.insert(key, (generation, id));
                id
            }
        };
        let duplicate = if ids.len() < 16 {
            ids.contains(&id)
        } else {
            if id_set.is_empty() {
                id_set.extend(ids.iter().copied());
            }
            !id_set.insert(id)
        };
        if duplicate {
            return Err(ctx.malformed(a.key_at, format!("duplicate attribute {key:?}")));
        }
        ids.push(id);
        b.push_attribute(id, values.get(a.value.clone()).unwrap_or_default());
    }
    if !id_set.is_empty() {
        *id_set = HashSet::new();
    }
    Ok(())
}

/// Rejects characters XML does not allow (CDATA, comments, PIs).
/// The first character of `s` that XML 1.0 does not allow in a document
/// (control characters other than tab, LF and CR; U+FFFE, U+FFFF), with
/// its byte offset. Shared with the XSLT crate's stylesheet reader.
pub fn first_non_xml_char(s: &str) -> Option<(usize, char)> {
    s.char_indices().find(|&(_, c)| !xml_char(c))
}

fn check_chars(ctx: &Ctx<'_>, s: &str, base: usize) -> Result<(), ParseError> {
    if let Some((i, c)) = first_non_xml_char(s) {
        return Err(ctx.malformed(
            base + i,
            format!("character U+{:04X} is not allowed in XML", c as u32),
        ));
    }
    Ok(())
}

/// Namespaces in XML 1.0 constraints on a declaration.
fn check_declaration(ctx: &Ctx<'_>, at: usize, prefix: &str, uri: &str) -> Result<(), ParseError> {
    match declaration_error(prefix, uri) {
        Some(message) => Err(ctx.malformed(at, message)),
        None => Ok(()),
    }
}

/// What is wrong with a processing-instruction target, if anything: it
/// must be a name without a colon (Namespaces in XML 1.0 §7), and `xml`
/// in any case is reserved (XML 1.0 §2.6). Shared with the intake scan.
pub fn pi_target_error(target: &str) -> Option<String> {
    if target.eq_ignore_ascii_case("xml") {
        return Some("the processing-instruction target 'xml' is reserved".into());
    }
    if target.is_empty() || target.contains(':') {
        return Some(format!("invalid processing-instruction target {target:?}"));
    }
    None
}

/// What is wrong with declaring `prefix` (`""`: the default namespace)
/// as `uri` under Namespaces in XML 1.0, if anything: `xmlns` cannot be
/// declared, `xml` only as its own namespace, those two namespaces bound
/// to no other prefix, and a prefix cannot be undeclared. The tree parser
/// and the rules crate's intake scan share these rules.
pub fn declaration_error(prefix: &str, uri: &str) -> Option<String> {
    if prefix == "xmlns" {
        return Some("the prefix xmlns must not be declared".into());
    }
    if prefix == "xml" {
        return (uri != XML_NS)
            .then(|| "the prefix xml cannot be bound to another namespace".into());
    }
    if uri == XML_NS || uri == XMLNS_NS {
        return Some(format!("the namespace {uri} cannot be bound to a prefix"));
    }
    if !prefix.is_empty() && uri.is_empty() {
        return Some(format!(
            "the prefix {prefix:?} cannot be undeclared in XML 1.0"
        ));
    }
    None
}
