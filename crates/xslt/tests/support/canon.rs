//! The canonical form both differential tests (`diff.rs` against
//! xsltproc, `saxon.rs` against SaxonC-HE) compare outputs in: names as
//! `{uri}local`, attributes sorted, whitespace-only text dropped, so that
//! equivalent serializations of the same tree compare equal.
#![allow(dead_code)]

use drehscheibe_xpath::{Document, Node, NodeKind, ParseOptions};

/// Decodes serialized output according to its XML declaration.
pub fn decode(bytes: &[u8]) -> String {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(100)]).to_string();
    let latin1 = head.starts_with("<?xml")
        && head
            .split("?>")
            .next()
            .is_some_and(|d| d.to_ascii_uppercase().contains("ISO-8859-1"));
    if latin1 {
        bytes.iter().map(|b| char::from(*b)).collect()
    } else {
        String::from_utf8_lossy(bytes).to_string()
    }
}

pub fn strip_declaration(text: &str) -> &str {
    if text.starts_with("<?xml") {
        if let Some(end) = text.find("?>") {
            return &text[end + 2..];
        }
    }
    text
}

/// `{uri}local` of an element, attribute or PI (empty for other nodes).
fn expanded(node: Node<'_>) -> String {
    node.name()
        .map(|q| format!("{{{}}}{}", q.uri, q.local))
        .unwrap_or_default()
}

pub fn canon_node(node: Node<'_>, out: &mut String) {
    match node.kind() {
        NodeKind::Element => {
            out.push('<');
            out.push_str(&expanded(node));
            let mut attrs: Vec<(String, String)> = node
                .attributes()
                .map(|a| (expanded(a), a.string_value().to_string()))
                .collect();
            attrs.sort();
            for (n, v) in attrs {
                out.push_str(&format!(" {n}={v:?}"));
            }
            out.push('>');
            for c in node.children() {
                canon_node(c, out);
            }
            out.push_str("</>");
        }
        NodeKind::Text if !node.string_value().trim().is_empty() => {
            out.push_str(&format!("[{:?}]", node.string_value()));
        }
        NodeKind::Comment => out.push_str(&format!("<!--{}-->", node.string_value())),
        NodeKind::ProcessingInstruction => out.push_str(&format!(
            "<?{} {}?>",
            node.name().map_or("", |q| q.local.as_str()),
            node.string_value().trim()
        )),
        NodeKind::Document => {
            for c in node.children() {
                canon_node(c, out);
            }
        }
        _ => {}
    }
}

/// Canonical form of an XML-method output (which may be a fragment).
pub fn canon_xml(bytes: &[u8]) -> Result<String, String> {
    let text = decode(bytes);
    let body = strip_declaration(&text);
    let wrapped = format!("<canon-wrapper>{body}</canon-wrapper>");
    let doc = Document::parse_str(&wrapped, &ParseOptions::default())
        .map_err(|e| format!("output is not well-formed: {e}\n{text}"))?;
    let mut out = String::new();
    canon_node(doc.root(), &mut out);
    Ok(out.replace("><", ">\n<"))
}
