//! Serialization of the result tree as `xsl:output` requests: the XML and
//! text methods, indentation, the output encoding, and namespace fixup
//! (every element and attribute name gets a declared prefix).

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

    fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Encoding::Utf8 => text.as_bytes().to_vec(),
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
            let mut text = String::new();
            for n in doc.descendants() {
                if n.kind() == NodeKind::Text {
                    text.push_str(n.string_value());
                }
            }
            if let Some(c) = text.chars().find(|c| !encoding.can_encode(*c)) {
                return Err(serr(format!(
                    "character U+{:04X} cannot be represented in {} (SERE0008)",
                    c as u32, settings.encoding
                )));
            }
            Ok(encoding.encode(&text))
        }
        OutputMethod::Xml => {
            let mut w = Writer {
                out: String::new(),
                encoding,
                indent: settings.indent,
                scopes: vec![vec![
                    (String::new(), String::new()),
                    ("xml".to_string(), XML_NS.to_string()),
                ]],
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
            Ok(encoding.encode(&w.out))
        }
    }
}

struct Writer {
    out: String,
    encoding: Encoding,
    indent: bool,
    /// Namespace bindings in scope, one frame per open element.
    scopes: Vec<Vec<(String, String)>>,
    generated: usize,
}

impl Writer {
    fn lookup(&self, prefix: &str) -> Option<&str> {
        for frame in self.scopes.iter().rev() {
            if let Some((_, uri)) = frame.iter().rev().find(|(p, _)| p == prefix) {
                return Some(uri);
            }
        }
        None
    }

    fn prefix_for(&self, uri: &str, allow_default: bool) -> Option<String> {
        for frame in self.scopes.iter().rev() {
            for (p, u) in frame.iter().rev() {
                if u == uri && (allow_default || !p.is_empty()) && self.lookup(p) == Some(uri) {
                    return Some(p.clone());
                }
            }
        }
        None
    }

    fn fresh_prefix(&mut self) -> String {
        loop {
            let p = format!("ns{}", self.generated);
            self.generated += 1;
            if self.lookup(&p).is_none() {
                return p;
            }
        }
    }

    fn escape(&mut self, text: &str, attr: bool) {
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
        if let Some(c) = text.chars().find(|c| !self.encoding.can_encode(*c)) {
            return Err(serr(format!(
                "character U+{:04X} in a {what} cannot be represented in the output encoding (SERE0008)",
                c as u32
            )));
        }
        self.out.push_str(text);
        Ok(())
    }

    fn newline_indent(&mut self, depth: usize) {
        self.out.push('\n');
        for _ in 0..depth {
            self.out.push_str("  ");
        }
    }

    fn node(&mut self, node: Node<'_>, depth: usize) -> Result<(), TransformError> {
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

    fn element(&mut self, node: Node<'_>, depth: usize) -> Result<(), TransformError> {
        let Some(name) = node.name() else {
            return Ok(());
        };
        let (local, uri, own_prefix) = (name.local.clone(), name.uri.clone(), name.prefix.clone());
        let mut frame: Vec<(String, String)> = Vec::new();
        // declared namespace nodes of the element
        let own: Vec<(String, String)> = node
            .namespace_decls()
            .map(|(p, u)| (p.to_string(), u.to_string()))
            .collect();
        self.scopes.push(Vec::new());
        for (p, u) in &own {
            if p == "xml" || (p.is_empty() && !u.is_empty() && uri.is_empty()) {
                // the element itself is in no namespace: it cannot take a
                // default namespace declaration
                continue;
            }
            if self.lookup(p) != Some(u.as_str()) {
                frame.push((p.clone(), u.clone()));
                if let Some(top) = self.scopes.last_mut() {
                    top.push((p.clone(), u.clone()));
                }
            }
        }
        // the element's own prefix
        let prefix = if uri.is_empty() {
            if self.lookup("").is_some_and(|d| !d.is_empty()) {
                frame.push((String::new(), String::new()));
                if let Some(top) = self.scopes.last_mut() {
                    top.push((String::new(), String::new()));
                }
            }
            String::new()
        } else if self.lookup(&own_prefix) == Some(uri.as_str()) {
            own_prefix.clone()
        } else {
            let preferred = own
                .iter()
                .find(|(p, u)| *u == uri && self.lookup(p) == Some(uri.as_str()))
                .map(|(p, _)| p.clone());
            match preferred.or_else(|| self.prefix_for(&uri, true)) {
                Some(p) => p,
                None => {
                    let taken = |frame: &[(String, String)], p: &str| {
                        frame.iter().any(|(fp, u)| fp == p && *u != uri)
                    };
                    let p = if !taken(&frame, &own_prefix) {
                        own_prefix.clone()
                    } else if !taken(&frame, "") {
                        String::new()
                    } else {
                        self.fresh_prefix()
                    };
                    if !frame.iter().any(|(fp, u)| *fp == p && *u == uri) {
                        frame.push((p.clone(), uri.clone()));
                        if let Some(top) = self.scopes.last_mut() {
                            top.push((p.clone(), uri.clone()));
                        }
                    }
                    p
                }
            }
        };
        // attributes
        let mut attrs: Vec<(String, String)> = Vec::new();
        for a in node.attributes() {
            let Some(an) = a.name() else {
                continue;
            };
            let (alocal, auri, aprefix) = (an.local.clone(), an.uri.clone(), an.prefix.clone());
            let value = a.string_value().to_string();
            let qname = if auri.is_empty() {
                alocal
            } else if auri == XML_NS {
                format!("xml:{alocal}")
            } else {
                let p = if !aprefix.is_empty() && self.lookup(&aprefix) == Some(auri.as_str()) {
                    aprefix
                } else {
                    match self.prefix_for(&auri, false) {
                        Some(p) => p,
                        None => {
                            let p = if !aprefix.is_empty() && self.lookup(&aprefix).is_none() {
                                aprefix
                            } else {
                                self.fresh_prefix()
                            };
                            frame.push((p.clone(), auri.clone()));
                            if let Some(top) = self.scopes.last_mut() {
                                top.push((p.clone(), auri.clone()));
                            }
                            p
                        }
                    }
                };
                format!("{p}:{alocal}")
            };
            attrs.push((qname, value));
        }
        let qname = if prefix.is_empty() {
            local
        } else {
            format!("{prefix}:{local}")
        };
        self.out.push('<');
        self.raw_checked(&qname, "element name")?;
        for (p, u) in &frame {
            if p.is_empty() {
                self.out.push_str(" xmlns=\"");
            } else {
                self.out.push_str(" xmlns:");
                self.out.push_str(p);
                self.out.push_str("=\"");
            }
            self.escape(u, true);
            self.out.push('"');
        }
        for (name, value) in &attrs {
            self.out.push(' ');
            self.raw_checked(name, "attribute name")?;
            self.out.push_str("=\"");
            self.escape(value, true);
            self.out.push('"');
        }
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
            self.out.push_str(&qname);
            self.out.push('>');
        }
        self.scopes.pop();
        Ok(())
    }
}
