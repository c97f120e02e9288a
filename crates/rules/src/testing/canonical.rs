//! Canonical comparison of XML documents, for rule tests.
//!
//! Two documents are *canonically equal* when their trees are equal after
//! these normalisations:
//!
//! * names are compared as expanded names (namespace URI + local name);
//!   prefixes and namespace declarations do not matter;
//! * attributes are a set: their order does not matter;
//! * whitespace-only text nodes are dropped everywhere (indentation is
//!   insignificant; `xml:space` is not consulted), all other text is
//!   compared exactly, including leading and trailing whitespace;
//! * comments and processing instructions are compared (target and data);
//! * the XML declaration, the encoding and character/entity references vs.
//!   literal characters do not matter (both sides are decoded first);
//!   CDATA sections count as text.
//!
//! Both documents are parsed with [`InputDocument::parse`], the hub's own
//! safe parser (DOCTYPE refused, encoding from BOM or declaration).
//!
//! [`canonical_pretty`] prints the canonical form one node per line, so
//! that a line diff of two canonical forms shows exactly what differs:
//! element names in Clark notation (`{uri}local`), where the `{uri}` is
//! left out when it equals the parent element's namespace (like an
//! inherited default namespace; `{}local` marks a switch back to no
//! namespace), attribute names always in full Clark notation (plain
//! `local` for no namespace), attributes sorted, text escaped with leading
//! and trailing whitespace and inner line breaks written as character
//! references.

use std::fmt::Write as _;

use drehscheibe_xpath::{Node, NodeKind};

use crate::input::{InputDocument, InputError};

/// A document (or output) that is not well-formed XML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not well-formed XML: {0}")]
pub struct CanonicalError(#[from] pub InputError);

/// An expanded name: namespace URI (empty for none) and local name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct QName {
    uri: String,
    local: String,
}

impl QName {
    fn clark(&self) -> String {
        if self.uri.is_empty() {
            self.local.clone()
        } else {
            format!("{{{}}}{}", self.uri, self.local)
        }
    }
}

/// One node of the canonical tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CNode {
    Element {
        name: QName,
        /// Sorted by name.
        attributes: Vec<(QName, String)>,
        children: Vec<CNode>,
    },
    Text(String),
    Comment(String),
    Pi {
        target: String,
        data: String,
    },
}

/// The canonical form of a whole document: the document node's children.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Canonical(Vec<CNode>);

fn parse(bytes: &[u8]) -> Result<Canonical, CanonicalError> {
    let doc = InputDocument::parse(bytes, "application/xml")?;
    Ok(Canonical(children(doc.document().root())))
}

fn qname(name: Option<&drehscheibe_xpath::QName>) -> QName {
    name.map(|n| QName {
        uri: n.uri.clone(),
        local: n.local.clone(),
    })
    .unwrap_or_else(|| QName {
        uri: String::new(),
        local: String::new(),
    })
}

/// The canonical children of `node`. Recursion depth is bounded by the
/// parser's nesting limit.
fn children(node: Node<'_>) -> Vec<CNode> {
    let mut out: Vec<CNode> = Vec::new();
    for child in node.children() {
        match child.kind() {
            NodeKind::Element => {
                let mut attributes: Vec<(QName, String)> = child
                    .attributes()
                    .map(|a| (qname(a.name()), a.string_value().to_owned()))
                    .collect();
                attributes.sort();
                out.push(CNode::Element {
                    name: qname(child.name()),
                    attributes,
                    children: children(child),
                });
            }
            NodeKind::Text => {
                let text = child.string_value();
                if text.chars().all(is_xml_whitespace) {
                    continue;
                }
                // The parser merges adjacent text, but be safe: text that
                // follows text (e.g. around a dropped node) is one node.
                if let Some(CNode::Text(previous)) = out.last_mut() {
                    previous.push_str(text);
                } else {
                    out.push(CNode::Text(text.to_owned()));
                }
            }
            NodeKind::Comment => out.push(CNode::Comment(child.string_value().to_owned())),
            NodeKind::ProcessingInstruction => out.push(CNode::Pi {
                target: child.name().map(|n| n.local.clone()).unwrap_or_default(),
                data: child.string_value().to_owned(),
            }),
            NodeKind::Document | NodeKind::Attribute | NodeKind::Namespace => {}
        }
    }
    out
}

/// Whether two XML documents are canonically equal (see the module docs).
///
/// Fails if either is not well-formed; `expected` is checked first.
pub fn xml_equal(expected: &[u8], actual: &[u8]) -> Result<bool, CanonicalError> {
    let expected = parse(expected)?;
    let actual = parse(actual)?;
    Ok(expected == actual)
}

/// The canonical form of a document, pretty-printed one node per line
/// with two-space indentation (see the module docs). Canonically equal
/// documents give identical text.
pub fn canonical_pretty(xml: &[u8]) -> Result<String, CanonicalError> {
    let canonical = parse(xml)?;
    let mut out = String::new();
    for node in &canonical.0 {
        pretty(node, 0, "", &mut out);
    }
    Ok(out)
}

/// Prints `node`; `parent_ns` is the namespace URI of the parent element
/// (empty at the top).
fn pretty(node: &CNode, depth: usize, parent_ns: &str, out: &mut String) {
    let indent = "  ".repeat(depth);
    match node {
        CNode::Element {
            name,
            attributes,
            children,
        } => {
            let clark = if name.uri == parent_ns {
                name.local.clone()
            } else {
                format!("{{{}}}{}", name.uri, name.local)
            };
            let _ = write!(out, "{indent}<{clark}");
            for (name, value) in attributes {
                let _ = write!(out, " {}=\"{}\"", name.clark(), escape_attribute(value));
            }
            match children.as_slice() {
                [] => out.push_str("/>\n"),
                [CNode::Text(text)] => {
                    let _ = writeln!(out, ">{}</{clark}>", escape_text(text));
                }
                _ => {
                    out.push_str(">\n");
                    for child in children {
                        pretty(child, depth + 1, &name.uri, out);
                    }
                    let _ = writeln!(out, "{indent}</{clark}>");
                }
            }
        }
        CNode::Text(text) => {
            let _ = writeln!(out, "{indent}{}", escape_text(text));
        }
        CNode::Comment(text) => {
            let _ = writeln!(out, "{indent}<!--{}-->", escape_breaks(text));
        }
        CNode::Pi { target, data } => {
            if data.is_empty() {
                let _ = writeln!(out, "{indent}<?{target}?>");
            } else {
                let _ = writeln!(out, "{indent}<?{target} {}?>", escape_breaks(data));
            }
        }
    }
}

/// XML's whitespace (S production): space, tab, CR, LF — not NBSP.
fn is_xml_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn char_ref(c: char) -> String {
    format!("&#{};", u32::from(c))
}

/// Escapes markup characters and line breaks; whitespace at either end is
/// written as character references so that it is visible in a diff.
fn escape_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let first = chars.iter().position(|c| !c.is_whitespace());
    let last = chars.iter().rposition(|c| !c.is_whitespace());
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        let at_edge = match (first, last) {
            (Some(first), Some(last)) => i < first || i > last,
            _ => true,
        };
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push_str(&char_ref(c)),
            c if at_edge && c.is_whitespace() => out.push_str(&char_ref(c)),
            c => out.push(c),
        }
    }
    out
}

fn escape_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\n' | '\r' | '\t' => out.push_str(&char_ref(c)),
            c => out.push(c),
        }
    }
    out
}

fn escape_breaks(text: &str) -> String {
    text.replace('\r', "&#13;").replace('\n', "&#10;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_text_marks_edge_whitespace_only() {
        assert_eq!(escape_text(" a b\n"), "&#32;a b&#10;");
        assert_eq!(escape_text("a\tb"), "a\tb");
        assert_eq!(escape_text("x<y&z"), "x&lt;y&amp;z");
    }
}
