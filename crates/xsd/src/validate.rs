//! Streaming validation of one document with libxml2's `xmlTextReader`.
//!
//! The reader parses the document in small chunks and hands out one node
//! at a time; a schema validation context plugged into it
//! (`xmlTextReaderSchemaValidateCtxt`) checks each node as it passes, and
//! nodes already read are freed. Memory therefore grows with the depth of
//! the document, not its size.
//!
//! The reader parses with `XML_PARSE_NONET`: no entity substitution
//! (`NOENT`), no external DTD (`DTDLOAD`, `DTDATTR`); `HUGE` (no 10 MB text
//! node or 256-level caps) only for UTF-8 documents without DOCTYPE
//! (`huge_is_safe`). On top of that a document with a `<!DOCTYPE …>` is
//! refused (nothing the hub accepts needs a DTD, and refusing it closes
//! XXE and entity expansion): before parsing when a byte scan of the
//! prolog finds it, otherwise as soon as the reader reports the node; and
//! the process-wide entity loader (see `loader.rs`) refuses every
//! external resource outside schema compilation.
//!
//! Positions: well-formedness errors carry libxml2's line and column.
//! Schema validity errors carry only a line in streaming mode (the line
//! the parser was on: that of the element's start tag, or of its end tag
//! for errors found at the end of the element); their column is derived
//! here from the document, the element named in the message and how far
//! the parser had read when the error was raised (see
//! [`locate_columns`]).

use std::ffi::c_void;
use std::os::raw::c_int;

use libxml::bindings::{
    xmlFreeTextReader, xmlParserOption_XML_PARSE_HUGE, xmlParserOption_XML_PARSE_NONET,
    xmlReaderForMemory, xmlReaderTypes_XML_READER_TYPE_DOCUMENT_TYPE, xmlSchemaFreeValidCtxt,
    xmlSchemaNewValidCtxt, xmlSchemaSetValidStructuredErrors, xmlSchemaValidCtxtPtr,
    xmlTextReaderIsValid, xmlTextReaderNodeType, xmlTextReaderPtr, xmlTextReaderRead,
    xmlTextReaderSchemaValidateCtxt, xmlTextReaderSetStructuredErrorHandler,
};

use crate::compile::CompiledSchema;
use crate::errors::{handler, Collector, Issue, ThreadErrorsTo};
use crate::loader::install;

/// The message of the issue a DOCTYPE declaration produces.
pub const DOCTYPE_REFUSED: &str = "DOCTYPE declarations are not accepted";

/// The verdict on one document.
#[derive(Debug)]
pub(crate) enum Outcome {
    Valid,
    Invalid(Collector),
    /// libxml2 could not set up the validation (out of memory).
    Failed(String),
}

/// Frees a schema validation context on drop.
struct ValidCtxt(xmlSchemaValidCtxtPtr);

impl Drop for ValidCtxt {
    fn drop(&mut self) {
        // SAFETY: a non-NULL context from xmlSchemaNewValidCtxt, freed once
        // and after the reader that used it (see `run`).
        unsafe { xmlSchemaFreeValidCtxt(self.0) }
    }
}

/// Frees a text reader on drop.
struct Reader(xmlTextReaderPtr);

impl Drop for Reader {
    fn drop(&mut self) {
        // SAFETY: a non-NULL reader from xmlReaderForMemory, freed once.
        // The validation context it was given is not freed by it (a
        // context passed to xmlTextReaderSchemaValidateCtxt is preserved).
        unsafe { xmlFreeTextReader(self.0) }
    }
}

/// Validates `document` against `schema` on this thread.
pub(crate) fn validate(schema: &CompiledSchema, document: &[u8]) -> Outcome {
    install();
    let mut collector = Collector::default();
    let Ok(len) = c_int::try_from(document.len()) else {
        collector.push(Issue::new(
            None,
            None,
            "the document is larger than libxml2 can read from memory (2 GiB)",
        ));
        return Outcome::Invalid(collector);
    };
    // A DOCTYPE in the prolog is refused before libxml2 parses anything
    // (the reader would only report it after parsing the internal subset,
    // and some hostile subsets fail with a parser error first); the
    // reader's own check below catches any the scan cannot see (UTF-16).
    if let Some((line, column)) = prolog_doctype(document) {
        collector.push(Issue::new(Some(line), Some(column), DOCTYPE_REFUSED));
        return Outcome::Invalid(collector);
    }
    let sink: *mut Collector = &mut collector;
    // SAFETY: `collector` is only accessed through `sink` until `run` has
    // returned, and `run` frees everything that holds `sink` before that.
    let result = unsafe { run(schema, document, len, sink) };
    match result {
        Err(message) => Outcome::Failed(message),
        Ok(true) if collector.total() == 0 => Outcome::Valid,
        Ok(_) => {
            if collector.total() == 0 {
                // libxml2 said "invalid" without a message.
                collector.push(Issue::new(
                    None,
                    None,
                    "the document is not valid (libxml2 gave no message)",
                ));
            }
            locate_columns(&mut collector.issues, document);
            Outcome::Invalid(collector)
        }
    }
}

/// Reads the whole document through a validating reader; `Ok(valid)`.
///
/// # Safety
/// `sink` must point to a live `Collector` that nothing else accesses
/// until this function returns.
unsafe fn run(
    schema: &CompiledSchema,
    document: &[u8],
    len: c_int,
    sink: *mut Collector,
) -> Result<bool, String> {
    let user: *mut c_void = sink.cast();
    // Errors raised without a handler of their own also go to `sink`
    // instead of stderr. Declared first, so dropped last.
    // SAFETY: `sink` is valid until this function returns (contract).
    let _thread_errors = unsafe { ThreadErrorsTo::install(sink) };

    // A fresh validation context per document: it is cheap next to the
    // compiled schema (which is cached), and a context abandoned in the
    // middle of a document (DOCTYPE, fatal error) is never reused.
    // SAFETY: `schema` is a valid compiled schema of this thread.
    let vctxt = unsafe { xmlSchemaNewValidCtxt(schema.as_ptr()) };
    if vctxt.is_null() {
        return Err("libxml2 could not create a schema validation context".to_string());
    }
    let vctxt = ValidCtxt(vctxt);
    // SAFETY: `vctxt.0` is valid; `user` outlives it (contract).
    unsafe { xmlSchemaSetValidStructuredErrors(vctxt.0, handler(), user) };

    // NONET: never the network. HUGE lifts libxml2's size caps (a text
    // node over 10 MB — an XÖV attachment of ~7.5 MB as base64 — and
    // nesting beyond 256) but also its entity-expansion guard, so it is
    // only set when the prolog scan has seen the whole prolog: a UTF-8
    // document without DOCTYPE has no entities to expand
    // ([`huge_is_safe`]). Anything else (UTF-16, other encodings) keeps
    // libxml2's limits.
    let mut options = xmlParserOption_XML_PARSE_NONET as c_int;
    if huge_is_safe(document) {
        options |= xmlParserOption_XML_PARSE_HUGE as c_int;
    }
    // SAFETY: `document` is valid for `len` bytes and outlives the reader
    // (dropped at the end of this function); the URL is a static C string.
    let reader = unsafe {
        xmlReaderForMemory(
            document.as_ptr().cast(),
            len,
            c"document".as_ptr(),
            std::ptr::null(),
            options,
        )
    };
    if reader.is_null() {
        return Err("libxml2 could not create a reader for the document".to_string());
    }
    // Declared after `vctxt`, so freed before it.
    let reader = Reader(reader);
    // SAFETY: `reader.0` is valid; `user` outlives it (contract).
    unsafe { xmlTextReaderSetStructuredErrorHandler(reader.0, handler(), user) };
    // The collector asks the reader for positions; the pointer is cleared
    // below before the reader is freed.
    // SAFETY: no libxml2 call is running (contract).
    unsafe { (*sink).reader = reader.0 };
    let result = read_all(&reader, &vctxt, document, sink);
    // SAFETY: as above.
    unsafe { (*sink).reader = std::ptr::null_mut() };
    result
}

/// The read loop of [`run`].
///
/// # Safety
/// As for [`run`]; `reader` and `vctxt` are the live reader and context.
unsafe fn read_all(
    reader: &Reader,
    vctxt: &ValidCtxt,
    document: &[u8],
    sink: *mut Collector,
) -> Result<bool, String> {
    // SAFETY: both valid; the reader keeps (does not own) the context.
    if unsafe { xmlTextReaderSchemaValidateCtxt(reader.0, vctxt.0, 0) } != 0 {
        return Err("libxml2 could not attach the schema to the reader".to_string());
    }

    let doctype = xmlReaderTypes_XML_READER_TYPE_DOCUMENT_TYPE as c_int;
    let mut status;
    loop {
        // SAFETY: `reader.0` is valid.
        status = unsafe { xmlTextReaderRead(reader.0) };
        if status != 1 {
            break;
        }
        // SAFETY: `reader.0` is valid and positioned on a node.
        if unsafe { xmlTextReaderNodeType(reader.0) } == doctype {
            // SAFETY: no libxml2 call is running, so nothing else
            // accesses the collector now (contract).
            let collector = unsafe { &mut *sink };
            let (line, column) = doctype_position(document);
            // What the parser said about the rest of a refused document
            // (it may have read ahead) is of no interest.
            collector.issues.clear();
            collector.more = 0;
            collector.fatal = false;
            collector.push(Issue::new(line, column, DOCTYPE_REFUSED));
            collector.fatal = true;
            return Ok(false);
        }
        // SAFETY: as above.
        if unsafe { (*sink).fatal } {
            break;
        }
    }
    // SAFETY: `reader.0` is valid.
    let valid = status == 0 && unsafe { xmlTextReaderIsValid(reader.0) } == 1;
    if status != 0 {
        // SAFETY: as above.
        let collector = unsafe { &mut *sink };
        if collector.total() == 0 {
            collector.push(Issue::new(
                None,
                None,
                "the document could not be read (libxml2 gave no message)",
            ));
        }
    }
    Ok(valid)
}

/// Whether libxml2's `XML_PARSE_HUGE` may be set for `document`: it is
/// UTF-8 (valid, no NUL, no other encoding declared) and its prolog holds
/// no DOCTYPE — so [`prolog_doctype`] saw the prolog as libxml2 will, and
/// the document declares no entities. (Called after the DOCTYPE check.)
fn huge_is_safe(document: &[u8]) -> bool {
    let body = document.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(document);
    if body.contains(&0) || std::str::from_utf8(body).is_err() {
        return false;
    }
    if prolog_doctype(document).is_some() {
        return false;
    }
    let Some(rest) = body.trim_ascii_start().strip_prefix(b"<?xml") else {
        return true; // no declaration: UTF-8 by default
    };
    let Some(end) = rest.windows(2).position(|w| w == b"?>") else {
        return false;
    };
    let declaration = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
    match declaration.split_once("encoding") {
        None => true,
        Some((_, value)) => {
            let value = value
                .trim_start()
                .trim_start_matches('=')
                .trim_start()
                .trim_start_matches(['"', '\''])
                .split(['"', '\''])
                .next()
                .unwrap_or_default();
            matches!(value, "utf-8" | "utf8")
        }
    }
}

/// Line and column (1-based) of a `<!DOCTYPE` in the prolog of an
/// ASCII-compatible document (after the XML declaration, processing
/// instructions, comments and white space).
fn prolog_doctype(document: &[u8]) -> Option<(u32, u32)> {
    let mut rest = document.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(document);
    loop {
        let trimmed = rest.trim_ascii_start();
        rest = if trimmed.starts_with(b"<!DOCTYPE") {
            let at = document.len() - trimmed.len();
            let (line, column) = doctype_position(&document[..at + 9]);
            return line.zip(column);
        } else if trimmed.starts_with(b"<?") {
            let end = trimmed.windows(2).position(|w| w == b"?>")?;
            &trimmed[end + 2..]
        } else if trimmed.starts_with(b"<!--") {
            let end = trimmed[4..].windows(3).position(|w| w == b"-->")?;
            &trimmed[4 + end + 3..]
        } else {
            return None;
        };
    }
}

/// Line and column (1-based) of the first `<!DOCTYPE` in the document.
fn doctype_position(document: &[u8]) -> (Option<u32>, Option<u32>) {
    let Some(at) = document.windows(9).position(|w| w == b"<!DOCTYPE") else {
        return (None, None);
    };
    let before = &document[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    (
        u32::try_from(line).ok(),
        u32::try_from(chars(&document[line_start..at]) + 1).ok(),
    )
}

/// Characters in UTF-8 bytes (bytes that do not continue a sequence).
fn chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

/// Fills in the column of schema validity errors.
///
/// libxml2 reports them (in streaming mode) with the line the parser was
/// on, but no column. The collector noted how far the parser had read
/// when the error was raised: just past the tag that triggered it (the
/// element's start tag, or its end tag for errors found at the end of
/// the element such as a wrong value or a missing child), and the
/// message names the element (`Element '{urn:x}name': …`). The column is
/// that of the element's start tag when it is on the reported line (an
/// end tag is paired with its start tag on the same line), otherwise
/// that of the tag that triggered the error, when it starts on that line.
/// How far into a line the column of a schema error is looked for.
const MAX_COLUMN_SEARCH: usize = 1 << 20;

fn locate_columns(issues: &mut [Issue], document: &[u8]) {
    let mut wanted: Vec<u32> = issues
        .iter()
        .filter(|i| i.column.is_none() && i.offset.is_some())
        .filter_map(|i| i.line)
        .collect();
    if wanted.is_empty() {
        return;
    }
    wanted.sort_unstable();
    wanted.dedup();
    let starts = line_starts(document, &wanted);
    for issue in issues.iter_mut() {
        let (Some(line), Some(offset), None) = (issue.line, issue.offset, issue.column) else {
            continue;
        };
        let Some(name) = element_local_name(&issue.message) else {
            continue;
        };
        let Some(&(_, start)) = starts.iter().find(|(l, _)| *l == line) else {
            continue;
        };
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        // On a line longer than this (a minified document) the column is
        // left out: finding it would scan the line once per issue.
        if offset.saturating_sub(start) > MAX_COLUMN_SEARCH {
            continue;
        }
        let window = document.len().min(offset.saturating_add(4096));
        let end = document[start..window]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(window, |p| start + p);
        if let Some(at) = element_tag(&document[start..end], offset.saturating_sub(start), name) {
            issue.column = u32::try_from(chars(&document[start..start + at]) + 1).ok();
        }
    }
}

/// `(line, byte offset of its first character)` for each wanted line
/// (sorted, 1-based) that exists.
fn line_starts(document: &[u8], wanted: &[u32]) -> Vec<(u32, usize)> {
    let mut out = Vec::with_capacity(wanted.len());
    let mut next = wanted.iter().copied().peekable();
    let mut line = 1u32;
    let mut start = 0usize;
    loop {
        while next.peek() == Some(&line) {
            out.push((line, start));
            next.next();
        }
        if next.peek().is_none() {
            break;
        }
        match document[start..].iter().position(|&b| b == b'\n') {
            Some(p) => {
                start += p + 1;
                line = line.saturating_add(1);
            }
            None => break,
        }
    }
    out
}

/// The local name of the element a libxml2 schema message names.
fn element_local_name(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("Element '")?;
    let name = &rest[..rest.find('\'')?];
    let local = match name.rfind('}') {
        Some(brace) => &name[brace + 1..],
        None => name,
    };
    let local = local.rsplit(':').next().unwrap_or(local);
    (!local.is_empty()).then_some(local)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Start,
    End,
    Empty,
}

/// The tags of element `local` (any prefix) in `line`, in order, as
/// (byte index of `<`, kind).
fn tags_of(line: &[u8], local: &str) -> Vec<(usize, Tag)> {
    let local = local.as_bytes();
    let mut tags = Vec::new();
    for (i, _) in line.iter().enumerate().filter(|(_, &b)| b == b'<') {
        let (rest, closing) = match line.get(i + 1) {
            Some(b'/') => (&line[i + 2..], true),
            _ => (&line[i + 1..], false),
        };
        let name_len = rest
            .iter()
            .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/'))
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        let same = name == local
            || (name.len() > local.len()
                && name.ends_with(local)
                && name[name.len() - local.len() - 1] == b':');
        if !same {
            continue;
        }
        let kind = if closing {
            Tag::End
        } else {
            let close = rest.iter().position(|&b| b == b'>');
            match close {
                Some(c) if c > 0 && rest[c - 1] == b'/' => Tag::Empty,
                _ => Tag::Start,
            }
        };
        tags.push((i, kind));
    }
    tags
}

/// Byte index in `line` of the tag an error about element `local` refers
/// to, given that the parser had read up to `limit` (an index into `line`,
/// possibly past its end).
fn element_tag(line: &[u8], limit: usize, local: &str) -> Option<usize> {
    let tags: Vec<_> = tags_of(line, local)
        .into_iter()
        .filter(|&(i, _)| i < limit)
        .collect();
    let (last_index, kind) = *tags.last()?;
    // When the parser stopped right after this tag, it triggered the error;
    // otherwise (the tag started on an earlier line) fall back to the last
    // start tag on the line.
    let triggered = limit <= line.len() && limit > 0 && line[limit - 1] == b'>' && {
        let open = line[..limit].iter().rposition(|&b| b == b'<');
        open == Some(last_index)
    };
    if !triggered {
        return tags
            .iter()
            .rev()
            .find(|(_, k)| *k != Tag::End)
            .or(tags.last())
            .map(|&(i, _)| i);
    }
    if kind != Tag::End {
        return Some(last_index);
    }
    // Pair the end tag with its start tag on this line, if there.
    let mut depth = 0usize;
    for &(i, k) in tags[..tags.len() - 1].iter().rev() {
        match k {
            Tag::End => depth += 1,
            Tag::Start if depth == 0 => return Some(i),
            Tag::Start => depth -= 1,
            Tag::Empty => {}
        }
    }
    Some(last_index)
}

#[cfg(test)]
mod huge_tests {
    use super::huge_is_safe;

    #[test]
    fn huge_only_for_utf8_without_doctype() {
        assert!(huge_is_safe(b"<a/>"));
        assert!(huge_is_safe(
            b"\xEF\xBB\xBF<?xml version='1.0' encoding='UTF-8'?><a/>"
        ));
        assert!(huge_is_safe(
            "<?xml version=\"1.0\"?><a>Grüße</a>".as_bytes()
        ));
        assert!(!huge_is_safe(
            b"<?xml version='1.0' encoding='UTF-16'?><a/>"
        ));
        assert!(!huge_is_safe(
            b"<?xml version='1.0' encoding='ISO-8859-1'?><a>\xE4</a>"
        ));
        assert!(!huge_is_safe(b"<\0a\0/\0>\0"));
        assert!(!huge_is_safe(b"\xFF\xFE<\0a\0/\0>\0"));
        assert!(!huge_is_safe(b"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>"));
        assert!(!huge_is_safe(b"<?xml version='1.0'"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_names() {
        assert_eq!(element_local_name("Element '{urn:t}item': x"), Some("item"));
        assert_eq!(
            element_local_name("Element 'item', attribute 'a': x"),
            Some("item")
        );
        assert_eq!(element_local_name("Element 'p:item': x"), Some("item"));
        assert_eq!(element_local_name("Opening and ending tag mismatch"), None);
    }

    #[test]
    fn tags() {
        let line = b"  <a><p:item>1</p:item><item/><items><g><g>x</g></g>";
        // Triggered by `<p:item>` (start tag).
        assert_eq!(element_tag(line, 13, "item"), Some(5));
        // Triggered by `</p:item>`: its start tag.
        assert_eq!(element_tag(line, 23, "item"), Some(5));
        // Triggered by `<item/>`.
        assert_eq!(element_tag(line, 30, "item"), Some(23));
        // Nested elements of one name are paired.
        assert_eq!(element_tag(line, 48, "g"), Some(40));
        assert_eq!(element_tag(line, line.len(), "g"), Some(37));
        assert_eq!(element_tag(line, line.len(), "b"), None);
        // An end tag whose start tag is on an earlier line.
        assert_eq!(element_tag(b"x</item>", 8, "item"), Some(1));
        // The parser is past the line: the last start tag.
        assert_eq!(element_tag(b"<item>", 99, "item"), Some(0));
    }

    #[test]
    fn lines() {
        let doc = b"a\nbb\n\nccc";
        assert_eq!(
            line_starts(doc, &[1, 2, 4, 9]),
            vec![(1, 0), (2, 2), (4, 6)]
        );
    }

    #[test]
    fn doctype_in_prolog() {
        assert_eq!(
            prolog_doctype(
                b"\xEF\xBB\xBF<?xml version='1.0'?>\n<!-- <a> -->\n <?pi x?> <!DOCTYPE a>"
            ),
            Some((3, 11))
        );
        assert_eq!(prolog_doctype(b"<!DOCTYPE a><a/>"), Some((1, 1)));
        assert_eq!(prolog_doctype(b"<a><!DOCTYPE a></a>"), None);
        assert_eq!(prolog_doctype(b"<!-- unterminated <!DOCTYPE a>"), None);
        assert_eq!(prolog_doctype(b""), None);
    }

    #[test]
    fn doctype() {
        assert_eq!(
            doctype_position(b"<?xml version='1.0'?>\n  <!DOCTYPE x>"),
            (Some(2), Some(3))
        );
    }
}
