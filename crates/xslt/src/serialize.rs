//! Serialization of the result tree as `xsl:output` requests: the XML and
//! text methods, indentation, the output encoding, and namespace fixup
//! (every element and attribute name gets a declared prefix).

use std::borrow::Cow;

use drehscheibe_xpath::{Node, NodeKind};

use crate::error::TransformError;
use crate::{OutputMethod, OutputSettings};

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// A supported output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Utf8,
    Latin1,
    Ascii,
}

impl Encoding {
    /// The encoding for an `encoding` attribute value (case-insensitive).
    pub(crate) fn from_label(label: &str) -> Option<Encoding> {
        match label.trim().to_ascii_uppercase().as_str() {
            "UTF-8" | "UTF8" => Some(Encoding::Utf8),
            "ISO-8859-1" | "ISO8859-1" | "LATIN1" | "LATIN-1" | "ISO_8859-1" => {
                Some(Encoding::Latin1)
            }
            "US-ASCII" | "ASCII" => Some(Encoding::Ascii),
            _ => None,
        }
    }

    fn can_encode(self, c: char) -> bool {
        match self {
            Encoding::Utf8 => true,
            Encoding::Latin1 => (c as u32) <= 0xFF,
            Encoding::Ascii => (c as u32) <= 0x7F,
        }
    }

    fn encode(self, text: String) -> Vec<u8> {
        match self {
            Encoding::Utf8 => text.into_bytes(),
            // callers only pass encodable characters
            Encoding::Latin1 | Encoding::Ascii => text
                .chars()
                .map(|c| u8::try_from(c as u32).unwrap_or(b'?'))
                .collect(),
        }
    }
}

fn serr(message: impl Into<String>) -> TransformError {
    TransformError::Serialize {
        message: message.into(),
    }
}

/// Serializes the children of the result document `doc`.
pub(crate) fn serialize(
    doc: Node<'_>,
    settings: &OutputSettings,
) -> Result<Vec<u8>, TransformError> {
    let encoding = Encoding::from_label(&settings.encoding)
        .ok_or_else(|| serr(format!("unsupported encoding {}", settings.encoding)))?;
    match settings.method {
        OutputMethod::Text => {
            // the string value of the result document is exactly its text
            // nodes in document order (one slice of the arena's text buffer)
            let text = doc.string_value().to_string();
            if let Some(c) = text.chars().find(|c| !encoding.can_encode(*c)) {
                return Err(serr(format!(
                    "character U+{:04X} cannot be represented in {} (SERE0008)",
                    c as u32, settings.encoding
                )));
            }
            Ok(encoding.encode(text))
        }
        OutputMethod::Xml => {
            let mut w = Writer {
                out: String::with_capacity(4096),
                encoding,
                indent: settings.indent,
                scopes: vec![
                    (Cow::Borrowed(""), Cow::Borrowed("")),
                    (Cow::Borrowed("xml"), Cow::Borrowed(XML_NS)),
                ],
                attrs: Vec::new(),
                generated: 0,
            };
            if !settings.omit_xml_declaration {
                w.out.push_str("<?xml version=\"1.0\" encoding=\"");
                w.out.push_str(&settings.encoding);
                w.out.push('"');
                if let Some(s) = settings.standalone {
                    w.out.push_str(if s {
                        " standalone=\"yes\""
                    } else {
                        " standalone=\"no\""
                    });
                }
                w.out.push_str("?>\n");
            }
            for (i, c) in doc.children().enumerate() {
                if settings.indent && i > 0 && c.kind() != NodeKind::Text && !w.out.ends_with('\n')
                {
                    w.out.push('\n');
                }
                w.node(c, 0)?;
            }
            // like libxslt, end the document with a newline
            w.out.push('\n');
            Ok(encoding.encode(w.out))
        }
    }
}

/// The XML writer. Names and namespace URIs are borrowed from the result
/// tree (`'d`); only generated prefixes (`ns0`, …) are owned.
struct Writer<'d> {
    out: String,
    encoding: Encoding,
    indent: bool,
    /// Prefix → URI bindings in scope, innermost last; the element being
    /// written owns `scopes[frame..]` (the declarations it writes).
    scopes: Vec<(Cow<'d, str>, Cow<'d, str>)>,
    /// Attributes of the element being written: (prefix, local, value);
    /// an empty prefix writes the local name alone.
    attrs: Vec<(Cow<'d, str>, &'d str, &'d str)>,
    generated: usize,
}

impl<'d> Writer<'d> {
    fn lookup(&self, prefix: &str) -> Option<&str> {
        self.scopes
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_ref())
    }

    fn prefix_for(&self, uri: &str, allow_default: bool) -> Option<Cow<'d, str>> {
        for (p, u) in self.scopes.iter().rev() {
            if u == uri && (allow_default || !p.is_empty()) && self.lookup(p) == Some(uri) {
                return Some(p.clone());
            }
        }
        None
    }

    fn fresh_prefix(&mut self) -> Cow<'d, str> {
        loop {
            let p = format!("ns{}", self.generated);
            self.generated += 1;
            if self.lookup(&p).is_none() {
                return Cow::Owned(p);
            }
        }
    }

    /// Escapes text (`attr`: an attribute value in double quotes). Runs
    /// of ordinary characters are copied at once.
    fn escape(&mut self, text: &str, attr: bool) {
        if self.encoding != Encoding::Utf8 {
            return self.escape_chars(text, attr);
        }
        let bytes = text.as_bytes();
        let mut run = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let rep = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' if !attr => "&gt;",
                b'"' if attr => "&quot;",
                b'\n' if attr => "&#10;",
                b'\t' if attr => "&#9;",
                b'\r' => "&#13;",
                _ => continue,
            };
            // `i` is at an ASCII byte, hence a char boundary
            self.out.push_str(text.get(run..i).unwrap_or_default());
            self.out.push_str(rep);
            run = i + 1;
        }
        self.out.push_str(text.get(run..).unwrap_or_default());
    }

    /// [`Writer::escape`] for encodings that cannot represent every
    /// character (character references for the others).
    fn escape_chars(&mut self, text: &str, attr: bool) {
        for c in text.chars() {
            match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' if !attr => self.out.push_str("&gt;"),
                '"' if attr => self.out.push_str("&quot;"),
                '\n' if attr => self.out.push_str("&#10;"),
                '\t' if attr => self.out.push_str("&#9;"),
                '\r' => self.out.push_str("&#13;"),
                c if !self.encoding.can_encode(c) => {
                    self.out.push_str(&format!("&#{};", c as u32));
                }
                c => self.out.push(c),
            }
        }
    }

    fn raw_checked(&mut self, text: &str, what: &str) -> Result<(), TransformError> {
        if self.encoding != Encoding::Utf8 {
            if let Some(c) = text.chars().find(|c| !self.encoding.can_encode(*c)) {
                return Err(serr(format!(
                    "character U+{:04X} in a {what} cannot be represented in the output encoding (SERE0008)",
                    c as u32
                )));
            }
        }
        self.out.push_str(text);
        Ok(())
    }

    /// `prefix:local` (or `local`), checked for the encoding.
    fn qname(&mut self, prefix: &str, local: &str, what: &str) -> Result<(), TransformError> {
        if !prefix.is_empty() {
            self.raw_checked(prefix, what)?;
            self.out.push(':');
        }
        self.raw_checked(local, what)
    }

    fn newline_indent(&mut self, depth: usize) {
        self.out.push('\n');
        for _ in 0..depth {
            self.out.push_str("  ");
        }
    }

    fn node(&mut self, node: Node<'d>, depth: usize) -> Result<(), TransformError> {
        match node.kind() {
            NodeKind::Element => {
                stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.element(node, depth))
            }
            NodeKind::Text => {
                self.escape(node.string_value(), false);
                Ok(())
            }
            NodeKind::Comment => {
                self.out.push_str("<!--");
                self.raw_checked(node.string_value(), "comment")?;
                self.out.push_str("-->");
                Ok(())
            }
            NodeKind::ProcessingInstruction => {
                let target = node.name().map(|q| q.local.as_str()).unwrap_or("");
                let data = node.string_value();
                self.out.push_str("<?");
                self.raw_checked(target, "processing instruction")?;
                if !data.is_empty() {
                    self.out.push(' ');
                    self.raw_checked(data, "processing instruction")?;
                }
                self.out.push_str("?>");
                Ok(())
            }
            NodeKind::Document => {
                for c in node.children() {
                    self.node(c, depth)?;
                }
                Ok(())
            }
            NodeKind::Attribute | NodeKind::Namespace => Ok(()),
        }
    }

    /// Binds a declaration this element writes.
    fn declare(&mut self, prefix: Cow<'d, str>, uri: Cow<'d, str>) {
        self.scopes.push((prefix, uri));
    }

    fn element(&mut self, node: Node<'d>, depth: usize) -> Result<(), TransformError> {
        let Some(name) = node.name() else {
            return Ok(());
        };
        let (local, uri, own_prefix) =
            (name.local.as_str(), name.uri.as_str(), name.prefix.as_str());
        let frame = self.scopes.len();
        for (p, u) in node.namespace_decls() {
            if p == "xml" || (p.is_empty() && !u.is_empty() && uri.is_empty()) {
                continue;
            }
            if self.lookup(p) != Some(u) {
                self.declare(Cow::Borrowed(p), Cow::Borrowed(u));
            }
        }
        let prefix: Cow<'d, str> = if uri.is_empty() {
            if self.lookup("").is_some_and(|d| !d.is_empty()) {
                self.declare(Cow::Borrowed(""), Cow::Borrowed(""));
            }
            Cow::Borrowed("")
        } else if self.lookup(own_prefix) == Some(uri) {
            Cow::Borrowed(own_prefix)
        } else {
            let preferred = node
                .namespace_decls()
                .find(|(p, u)| *u == uri && self.lookup(p) == Some(uri))
                .map(|(p, _)| Cow::Borrowed(p));
            match preferred.or_else(|| self.prefix_for(uri, true)) {
                Some(p) => p,
                None => {
                    let taken = |w: &Self, p: &str| {
                        w.scopes[frame..].iter().any(|(fp, u)| fp == p && u != uri)
                    };
                    let p = if !taken(self, own_prefix) {
                        Cow::Borrowed(own_prefix)
                    } else if !taken(self, "") {
                        Cow::Borrowed("")
                    } else {
                        self.fresh_prefix()
                    };
                    if !self.scopes[frame..]
                        .iter()
                        .any(|(fp, u)| *fp == p && u == uri)
                    {
                        self.declare(p.clone(), Cow::Borrowed(uri));
                    }
                    p
                }
            }
        };
        let attrs_start = self.attrs.len();
        for a in node.attributes() {
            let Some(an) = a.name() else {
                continue;
            };
            let (alocal, auri, aprefix) = (an.local.as_str(), an.uri.as_str(), an.prefix.as_str());
            let value = a.string_value();
            let p: Cow<'d, str> = if auri.is_empty() {
                Cow::Borrowed("")
            } else if auri == XML_NS {
                Cow::Borrowed("xml")
            } else if !aprefix.is_empty() && self.lookup(aprefix) == Some(auri) {
                Cow::Borrowed(aprefix)
            } else {
                match self.prefix_for(auri, false) {
                    Some(p) => p,
                    None => {
                        let p = if !aprefix.is_empty() && self.lookup(aprefix).is_none() {
                            Cow::Borrowed(aprefix)
                        } else {
                            self.fresh_prefix()
                        };
                        self.declare(p.clone(), Cow::Borrowed(auri));
                        p
                    }
                }
            };
            self.attrs.push((p, alocal, value));
        }
        self.out.push('<');
        self.qname(&prefix, local, "element name")?;
        for i in frame..self.scopes.len() {
            let (p, u) = self.scopes[i].clone();
            if p.is_empty() {
                self.out.push_str(" xmlns=\"");
            } else {
                self.out.push_str(" xmlns:");
                self.out.push_str(&p);
                self.out.push_str("=\"");
            }
            self.escape(&u, true);
            self.out.push('"');
        }
        for i in attrs_start..self.attrs.len() {
            let (p, l, value) = self.attrs[i].clone();
            self.out.push(' ');
            self.qname(&p, l, "attribute name")?;
            self.out.push_str("=\"");
            self.escape(value, true);
            self.out.push('"');
        }
        self.attrs.truncate(attrs_start);
        let mut children = node.children().peekable();
        if children.peek().is_none() {
            self.out.push_str("/>");
        } else {
            self.out.push('>');
            let indent_children =
                self.indent && !node.children().any(|c| c.kind() == NodeKind::Text);
            for c in children {
                if indent_children {
                    self.newline_indent(depth + 1);
                }
                self.node(c, depth + 1)?;
            }
            if indent_children {
                self.newline_indent(depth);
            }
            self.out.push_str("</");
            if !prefix.is_empty() {
                self.out.push_str(&prefix);
                self.out.push(':');
            }
            self.out.push_str(local);
            self.out.push('>');
        }
        self.scopes.truncate(frame);
        Ok(())
    }
}
