//! A plain XML serializer for trees (debugging, tests, the rules crate's
//! "show me the document").
//!
//! Output is namespace-well-formed: declarations are written where the
//! tree records them, and where a name's prefix is not bound to its URI
//! at that point (names are interned per expanded name, so a second
//! prefix for the same URI reuses the first one's; built trees may also
//! carry namespaced attributes without prefix) a declaration is added, or
//! a fresh `ns0`, `ns1`, … prefix is made up for attributes. No XML
//! declaration is written. Iterative: deep trees do not recurse.

use std::collections::HashMap;

use super::{Node, NodeKind, QName, XML_NS};

/// Prefix bindings in scope while writing, with an undo log per depth.
struct Scope<'a> {
    map: HashMap<String, &'a str>,
    undo: Vec<(usize, String, Option<&'a str>)>,
    fresh: usize,
}

impl<'a> Scope<'a> {
    fn bind(&mut self, depth: usize, prefix: &str, uri: &'a str) {
        let old = self.map.insert(prefix.to_string(), uri);
        self.undo.push((depth, prefix.to_string(), old));
    }

    fn get(&self, prefix: &str) -> &'a str {
        self.map.get(prefix).copied().unwrap_or("")
    }

    fn pop(&mut self, depth: usize) {
        while self.undo.last().is_some_and(|u| u.0 >= depth) {
            if let Some((_, p, old)) = self.undo.pop() {
                match old {
                    Some(u) => {
                        self.map.insert(p, u);
                    }
                    None => {
                        self.map.remove(&p);
                    }
                }
            }
        }
    }

    /// A prefix bound to `uri` (non-empty prefixes only), if any.
    fn prefix_for(&self, uri: &str) -> Option<String> {
        self.map
            .iter()
            .find(|(p, u)| !p.is_empty() && **u == uri)
            .map(|(p, _)| p.clone())
    }
}

/// Escapes text content (`&`, `<`, `>`; CR as a character reference so it
/// survives re-parsing).
pub fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

/// Escapes an attribute value (`&`, `<`, `>`, `"`, and the whitespace
/// characters that attribute-value normalization would otherwise change).
pub fn escape_attribute(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            '\t' => out.push_str("&#x9;"),
            c => out.push(c),
        }
    }
}

fn write_decl(out: &mut String, prefix: &str, uri: &str) {
    if prefix.is_empty() {
        out.push_str(" xmlns=\"");
    } else {
        out.push_str(" xmlns:");
        out.push_str(prefix);
        out.push_str("=\"");
    }
    escape_attribute(uri, out);
    out.push('"');
}

fn write_name(out: &mut String, prefix: &str, local: &str) {
    if !prefix.is_empty() {
        out.push_str(prefix);
        out.push(':');
    }
    out.push_str(local);
}

/// Serializes a node as XML text: a document as its children, an element
/// with its subtree, an attribute as `name="value"`, a namespace node as
/// `xmlns:p="uri"`, text escaped, comments and PIs as markup.
pub fn to_xml_string(node: Node<'_>) -> String {
    let mut out = String::new();
    match node.kind() {
        NodeKind::Attribute => {
            if let Some(q) = node.name() {
                out.push_str(&q.lexical());
            }
            out.push_str("=\"");
            escape_attribute(node.string_value(), &mut out);
            out.push('"');
            return out;
        }
        NodeKind::Namespace => {
            write_decl(&mut out, node.local_name(), node.string_value());
            return out.trim_start().to_string();
        }
        _ => {}
    }
    let doc = node.doc;
    let mut scope = Scope {
        map: HashMap::new(),
        undo: Vec::new(),
        fresh: 0,
    };
    scope.map.insert("xml".to_string(), XML_NS);
    // The namespaces in scope from outside the serialized subtree are
    // declared on its outermost elements.
    let mut outer: Vec<(&str, &str)> = Vec::new();
    if let Some(p) = node.parent() {
        if p.kind() == NodeKind::Element {
            outer = p.in_scope_namespaces();
        }
    }
    let first = if node.kind() == NodeKind::Document {
        node.idx + 1
    } else {
        node.idx
    };
    let end = node.subtree_end();
    let mut open: Vec<(u32, u32)> = Vec::new(); // (end, idx)
    let mut i = first;
    while i < end {
        while let Some(&(e, idx)) = open.last() {
            if i >= e {
                close(&mut out, &mut scope, &mut open, doc.node(idx));
            } else {
                break;
            }
        }
        let Some(n) = doc.node(i) else { break };
        match n.kind() {
            NodeKind::Element => {
                let depth = open.len() + 1;
                let q = n.name().cloned().unwrap_or_else(|| QName::local("_"));
                out.push('<');
                write_name(&mut out, &q.prefix, &q.local);
                let mut declared: Vec<&str> = Vec::new();
                if open.is_empty() {
                    for &(p, u) in &outer {
                        if p != "xml" && scope.get(p) != u {
                            scope.bind(depth, p, u);
                            write_decl(&mut out, p, u);
                            declared.push(p);
                        }
                    }
                }
                for (p, u) in n.namespace_decls() {
                    if p == "xml" || declared.contains(&p) {
                        continue;
                    }
                    if scope.get(p) != u {
                        scope.bind(depth, p, u);
                        write_decl(&mut out, p, u);
                    }
                    declared.push(p);
                }
                // Element name fixup.
                if q.prefix != "xml" && scope.get(&q.prefix) != q.uri.as_str() {
                    let uri: &str = n.namespace_uri();
                    scope.bind(depth, &q.prefix, uri);
                    write_decl(&mut out, &q.prefix, uri);
                }
                // Attributes, with prefix fixup.
                let mut attrs = String::new();
                for a in n.attributes() {
                    let Some(aq) = a.name() else { continue };
                    let mut prefix = aq.prefix.clone();
                    if !aq.uri.is_empty() && prefix != "xml" {
                        let uri: &str = a.namespace_uri();
                        if prefix.is_empty() || scope.get(&prefix) != uri {
                            if prefix.is_empty() || scope.map.contains_key(&prefix) {
                                prefix = match scope.prefix_for(uri) {
                                    Some(p) => p,
                                    None => loop {
                                        let p = format!("ns{}", scope.fresh);
                                        scope.fresh += 1;
                                        if !scope.map.contains_key(&p) {
                                            break p;
                                        }
                                    },
                                };
                            }
                            if scope.get(&prefix) != uri {
                                scope.bind(depth, &prefix, uri);
                                write_decl(&mut out, &prefix, uri);
                            }
                        }
                    }
                    attrs.push(' ');
                    write_name(&mut attrs, &prefix, &aq.local);
                    attrs.push_str("=\"");
                    escape_attribute(a.string_value(), &mut attrs);
                    attrs.push('"');
                }
                out.push_str(&attrs);
                let e = n.subtree_end();
                if n.first_child().is_none() {
                    out.push_str("/>");
                    scope.pop(depth);
                    i = e;
                    continue;
                }
                out.push('>');
                open.push((e, n.idx));
            }
            NodeKind::Attribute => {}
            NodeKind::Text => escape_text(n.string_value(), &mut out),
            NodeKind::Comment => {
                out.push_str("<!--");
                out.push_str(n.string_value());
                out.push_str("-->");
            }
            NodeKind::ProcessingInstruction => {
                out.push_str("<?");
                out.push_str(n.local_name());
                let data = n.string_value();
                if !data.is_empty() {
                    out.push(' ');
                    out.push_str(data);
                }
                out.push_str("?>");
            }
            NodeKind::Namespace | NodeKind::Document => {}
        }
        i += 1;
    }
    while let Some(&(_, idx)) = open.last() {
        close(&mut out, &mut scope, &mut open, doc.node(idx));
    }
    out
}

fn close(out: &mut String, scope: &mut Scope<'_>, open: &mut Vec<(u32, u32)>, n: Option<Node<'_>>) {
    let depth = open.len();
    open.pop();
    scope.pop(depth);
    if let Some(n) = n {
        out.push_str("</");
        if let Some(q) = n.name() {
            write_name(out, &q.prefix, &q.local);
        }
        out.push('>');
    }
}
