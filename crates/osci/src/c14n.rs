//! Inclusive Canonical XML 1.0 without comments
//! (<http://www.w3.org/TR/2001/REC-xml-c14n-20010315>) of one element
//! and its descendants, as XML-DSig computes a `Reference URI="#id"`
//! digest.
//!
//! The document is parsed once into a small tree ([`Document`]); an
//! element's subtree is then written in canonical form:
//!
//! * the apex element carries every namespace declaration in scope there
//!   (inherited ones included — that is what makes it *inclusive*), except
//!   an empty default namespace; a descendant carries a declaration only
//!   where its in-scope value differs from its parent's (`xmlns=""` where
//!   the default namespace is undeclared again);
//! * the apex also carries the `xml:*` attributes (`xml:lang`,
//!   `xml:space`, …) it inherits from its ancestors, unless it has its own;
//! * namespace declarations sorted by prefix (the default first), then
//!   attributes by namespace URI and local name;
//! * empty elements as start and end tag; character and entity
//!   references replaced; CDATA sections as escaped text; line ends
//!   normalised to `#xA` (XML 1.0 §2.11) and attribute values normalised
//!   (§3.3.3: literal tab, line feed and carriage return become spaces);
//! * comments dropped, processing instructions kept;
//! * text escaped `&amp;` `&lt;` `&gt;` `&#xD;`, attribute values
//!   `&amp;` `&lt;` `&quot;` `&#x9;` `&#xA;` `&#xD;`.
//!
//! DOCTYPE declarations are refused (no entity expansion from untrusted
//! input). Input size and depth are bounded by the caller's message limits
//! and [`MAX_DEPTH`].

use std::collections::BTreeMap;

use quick_xml::events::Event;
use quick_xml::Reader;

/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 256;

/// Most nodes (elements, text, processing instructions) of one document:
/// an OSCI envelope has a few hundred; bulk content travels as text or in
/// attachments. Bounds the tree's memory (~40× the input for a document
/// of empty elements otherwise).
pub const MAX_NODES: usize = 200_000;

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Why a document cannot be canonicalised.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum C14nError {
    #[error("not well-formed XML: {0}")]
    Malformed(String),
    #[error("DOCTYPE declarations are not accepted")]
    Doctype,
    #[error("elements nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("more than {MAX_NODES} nodes")]
    TooManyNodes,
    #[error("undeclared namespace prefix {0:?}")]
    UnboundPrefix(String),
    #[error("no element with Id {0:?}")]
    NoSuchId(String),
    #[error("more than one element with Id {0:?}")]
    DuplicateId(String),
}

/// A parsed document (see the module docs).
#[derive(Debug)]
pub struct Document {
    nodes: Vec<Node>,
    root: usize,
}

#[derive(Debug)]
enum Node {
    Element(Element),
    Text(String),
    Pi(String),
}

#[derive(Debug)]
struct Element {
    /// The qualified name as written.
    name: String,
    parent: Option<usize>,
    /// Declarations on this element: prefix (`""` = default) → URI.
    ns_decls: Vec<(String, String)>,
    /// Other attributes: qualified name → value (normalised, unescaped).
    attrs: Vec<(String, String)>,
    children: Vec<usize>,
}

fn malformed(e: impl std::fmt::Display) -> C14nError {
    C14nError::Malformed(e.to_string())
}

/// XML 1.0 §2.11: CR LF and lone CR become LF.
fn normalise_newlines(s: &str) -> String {
    if !s.contains('\r') {
        return s.to_owned();
    }
    s.replace("\r\n", "\n").replace('\r', "\n")
}

fn unescape(raw: &str) -> Result<String, C14nError> {
    quick_xml::escape::unescape(raw)
        .map(|c| c.into_owned())
        .map_err(malformed)
}

impl Document {
    /// Parse `xml` (UTF-8).
    ///
    /// # Errors
    ///
    /// See [`C14nError`].
    pub fn parse(xml: &[u8]) -> Result<Self, C14nError> {
        let text = std::str::from_utf8(xml).map_err(malformed)?;
        let mut reader = Reader::from_str(text);
        reader.config_mut().check_end_names = true;
        let mut nodes: Vec<Node> = Vec::new();
        let mut stack: Vec<usize> = Vec::new();
        let mut root = None;
        let open = |nodes: &mut Vec<Node>,
                    stack: &mut Vec<usize>,
                    e: &quick_xml::events::BytesStart<'_>|
         -> Result<usize, C14nError> {
            if stack.len() >= MAX_DEPTH {
                return Err(C14nError::TooDeep);
            }
            if nodes.len() >= MAX_NODES {
                return Err(C14nError::TooManyNodes);
            }
            let name = std::str::from_utf8(e.name().as_ref())
                .map_err(malformed)?
                .to_owned();
            let mut ns_decls = Vec::new();
            let mut attrs = Vec::new();
            for a in e.attributes().with_checks(true) {
                let a = a.map_err(malformed)?;
                let key = std::str::from_utf8(a.key.as_ref())
                    .map_err(malformed)?
                    .to_owned();
                let raw = std::str::from_utf8(&a.value).map_err(malformed)?;
                // §2.11 then §3.3.3: line ends become one line feed, then
                // literal white space characters become spaces
                // (references to them stay what they reference).
                let normalised: String = normalise_newlines(raw)
                    .chars()
                    .map(|c| {
                        if matches!(c, '\t' | '\n' | '\r') {
                            ' '
                        } else {
                            c
                        }
                    })
                    .collect();
                let value = unescape(&normalised)?;
                if key == "xmlns" {
                    ns_decls.push((String::new(), value));
                } else if let Some(p) = key.strip_prefix("xmlns:") {
                    ns_decls.push((p.to_owned(), value));
                } else {
                    attrs.push((key, value));
                }
            }
            let idx = nodes.len();
            nodes.push(Node::Element(Element {
                name,
                parent: stack.last().copied(),
                ns_decls,
                attrs,
                children: Vec::new(),
            }));
            if let Some(&p) = stack.last() {
                if let Node::Element(parent) = &mut nodes[p] {
                    parent.children.push(idx);
                }
            }
            Ok(idx)
        };
        let push_leaf = |nodes: &mut Vec<Node>, stack: &[usize], node: Node| {
            // Outside the document element nothing is kept (a subtree
            // never includes it).
            let Some(&p) = stack.last() else { return };
            // Text between elements is bounded by the element count (one
            // run of text per gap); at the cap it is dropped, and the
            // next element start reports the cap.
            if nodes.len() >= MAX_NODES {
                return;
            }
            let idx = nodes.len();
            nodes.push(node);
            if let Node::Element(parent) = &mut nodes[p] {
                parent.children.push(idx);
            }
        };
        loop {
            match reader.read_event().map_err(malformed)? {
                Event::Start(e) => {
                    let idx = open(&mut nodes, &mut stack, &e)?;
                    if stack.is_empty() {
                        if root.is_some() {
                            return Err(malformed("more than one document element"));
                        }
                        root = Some(idx);
                    }
                    stack.push(idx);
                }
                Event::Empty(e) => {
                    let idx = open(&mut nodes, &mut stack, &e)?;
                    if stack.is_empty() {
                        if root.is_some() {
                            return Err(malformed("more than one document element"));
                        }
                        root = Some(idx);
                    }
                }
                Event::End(_) => {
                    stack.pop();
                }
                Event::Text(t) => {
                    let raw = std::str::from_utf8(t.as_ref()).map_err(malformed)?;
                    if stack.is_empty() {
                        if !raw.trim().is_empty() {
                            return Err(malformed("text outside the document element"));
                        }
                        continue;
                    }
                    let text = unescape(&normalise_newlines(raw))?;
                    push_leaf(&mut nodes, &stack, Node::Text(text));
                }
                Event::CData(t) => {
                    let raw = std::str::from_utf8(t.as_ref()).map_err(malformed)?;
                    push_leaf(&mut nodes, &stack, Node::Text(normalise_newlines(raw)));
                }
                Event::PI(pi) => {
                    let raw = std::str::from_utf8(pi.as_ref()).map_err(malformed)?;
                    push_leaf(&mut nodes, &stack, Node::Pi(normalise_newlines(raw)));
                }
                Event::DocType(_) => return Err(C14nError::Doctype),
                Event::Comment(_) | Event::Decl(_) => {}
                Event::Eof => break,
            }
        }
        if !stack.is_empty() {
            return Err(malformed("unclosed element at the end"));
        }
        let root = root.ok_or_else(|| malformed("no document element"))?;
        Ok(Self { nodes, root })
    }

    fn element(&self, i: usize) -> Option<&Element> {
        match self.nodes.get(i) {
            Some(Node::Element(e)) => Some(e),
            _ => None,
        }
    }

    /// The element whose attribute `Id` (or `ID`, `id`) is `id`.
    ///
    /// # Errors
    ///
    /// None, or more than one, has it.
    pub fn element_by_id(&self, id: &str) -> Result<ElementRef<'_>, C14nError> {
        let mut found = None;
        for (i, n) in self.nodes.iter().enumerate() {
            if let Node::Element(e) = n {
                if e.attrs
                    .iter()
                    .any(|(k, v)| matches!(k.as_str(), "Id" | "ID" | "id") && v == id)
                {
                    if found.is_some() {
                        return Err(C14nError::DuplicateId(id.to_owned()));
                    }
                    found = Some(i);
                }
            }
        }
        found
            .map(|index| ElementRef { doc: self, index })
            .ok_or_else(|| C14nError::NoSuchId(id.to_owned()))
    }

    /// Every element whose local name is `local`, in document order.
    pub fn elements_named(&self, local: &str) -> Vec<ElementRef<'_>> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(index, n)| match n {
                Node::Element(e) if local_name(&e.name) == local => {
                    Some(ElementRef { doc: self, index })
                }
                _ => None,
            })
            .collect()
    }

    /// The document element.
    pub fn root(&self) -> ElementRef<'_> {
        ElementRef {
            doc: self,
            index: self.root,
        }
    }

    /// Namespace bindings in scope at element `i` (its own declarations
    /// over its ancestors').
    fn in_scope(&self, i: usize) -> BTreeMap<String, String> {
        let mut chain = Vec::new();
        let mut cur = Some(i);
        while let Some(c) = cur {
            let Some(e) = self.element(c) else { break };
            chain.push(c);
            cur = e.parent;
        }
        let mut scope = BTreeMap::new();
        for c in chain.into_iter().rev() {
            if let Some(e) = self.element(c) {
                for (p, u) in &e.ns_decls {
                    scope.insert(p.clone(), u.clone());
                }
            }
        }
        scope
    }
}

/// An element of a [`Document`].
#[derive(Debug, Clone, Copy)]
pub struct ElementRef<'d> {
    doc: &'d Document,
    index: usize,
}

fn local_name(qname: &str) -> &str {
    qname.rsplit_once(':').map_or(qname, |(_, l)| l)
}

impl<'d> ElementRef<'d> {
    /// The first child element whose local name is `local`.
    pub fn child(&self, local: &str) -> Option<ElementRef<'d>> {
        let e = self.doc.element(self.index)?;
        e.children
            .iter()
            .copied()
            .find_map(|c| match self.doc.nodes.get(c) {
                Some(Node::Element(ch)) if local_name(&ch.name) == local => Some(ElementRef {
                    doc: self.doc,
                    index: c,
                }),
                _ => None,
            })
    }

    /// Every child element whose local name is `local`.
    pub fn children_named(&self, local: &str) -> Vec<ElementRef<'d>> {
        let Some(e) = self.doc.element(self.index) else {
            return Vec::new();
        };
        e.children
            .iter()
            .copied()
            .filter(|&c| {
                matches!(self.doc.nodes.get(c), Some(Node::Element(ch)) if local_name(&ch.name) == local)
            })
            .map(|index| ElementRef {
                doc: self.doc,
                index,
            })
            .collect()
    }

    /// The qualified name as written (`osci:ControlBlock`).
    pub fn name(&self) -> &'d str {
        self.doc.element(self.index).map_or("", |e| e.name.as_str())
    }

    /// The local name (`ControlBlock`).
    pub fn local_name(&self) -> &'d str {
        local_name(self.name())
    }

    /// The namespace URI of the element's name, if its prefix (or the
    /// default namespace) is bound.
    pub fn namespace(&self) -> Option<String> {
        let name = self.name();
        let prefix = name.rsplit_once(':').map_or("", |(p, _)| p);
        self.doc.in_scope(self.index).remove(prefix)
    }

    /// Every child element, in document order.
    pub fn children(&self) -> Vec<ElementRef<'d>> {
        let Some(e) = self.doc.element(self.index) else {
            return Vec::new();
        };
        e.children
            .iter()
            .copied()
            .filter(|&c| matches!(self.doc.nodes.get(c), Some(Node::Element(_))))
            .map(|index| ElementRef {
                doc: self.doc,
                index,
            })
            .collect()
    }

    /// The parent element, `None` at the root.
    pub fn parent(&self) -> Option<ElementRef<'d>> {
        let parent = self.doc.element(self.index)?.parent?;
        Some(ElementRef {
            doc: self.doc,
            index: parent,
        })
    }

    /// The value of the attribute `name` (as written, e.g. `URI`).
    pub fn attr(&self, name: &str) -> Option<&'d str> {
        self.doc
            .element(self.index)?
            .attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The element's text: its descendant text nodes concatenated (what
    /// the XML-DSig `base64` transform decodes).
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut stack = vec![self.index];
        while let Some(i) = stack.pop() {
            match self.doc.nodes.get(i) {
                Some(Node::Element(e)) => stack.extend(e.children.iter().rev()),
                Some(Node::Text(t)) => out.push_str(t),
                _ => {}
            }
        }
        out
    }

    /// The element's subtree in canonical form (see the module docs).
    ///
    /// # Errors
    ///
    /// A prefix used but not declared.
    pub fn canonicalize(&self) -> Result<Vec<u8>, C14nError> {
        let doc = self.doc;
        let mut out = String::new();
        // xml:* attributes the apex inherits (C14N 1.0 §2.4).
        let mut inherited: BTreeMap<String, String> = BTreeMap::new();
        let mut cur = doc.element(self.index).and_then(|e| e.parent);
        while let Some(c) = cur {
            let Some(e) = doc.element(c) else { break };
            for (k, v) in &e.attrs {
                if k.starts_with("xml:") {
                    inherited.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            cur = e.parent;
        }
        write_element(doc, self.index, None, &inherited, &mut out)?;
        Ok(out.into_bytes())
    }
}

fn write_element(
    doc: &Document,
    i: usize,
    parent_scope: Option<&BTreeMap<String, String>>,
    inherited_xml: &BTreeMap<String, String>,
    out: &mut String,
) -> Result<(), C14nError> {
    let Some(e) = doc.element(i) else {
        return Ok(());
    };
    let scope = doc.in_scope(i);
    // Namespace declarations to render.
    let mut ns: Vec<(&String, &String)> = Vec::new();
    for (p, u) in &scope {
        if p == "xml" {
            continue;
        }
        let rendered_above = parent_scope.and_then(|s| s.get(p));
        let render = match parent_scope {
            // The apex: everything in scope but an empty default.
            None => !(p.is_empty() && u.is_empty()),
            Some(_) => {
                rendered_above != Some(u)
                    && !(p.is_empty() && u.is_empty() && rendered_above.is_none())
            }
        };
        if render {
            ns.push((p, u));
        }
    }
    // The default namespace undeclared again below a non-empty one.
    let undeclare_default = parent_scope
        .and_then(|s| s.get(""))
        .is_some_and(|d| !d.is_empty())
        && scope.get("").is_none_or(|d| d.is_empty());
    ns.retain(|(p, u)| !(p.is_empty() && u.is_empty()));
    // Attributes with their namespace URI for sorting.
    let mut attrs: Vec<(String, String, &str, &str)> = Vec::new();
    for (k, v) in &e.attrs {
        let (uri, local) = match k.split_once(':') {
            Some(("xml", local)) => (XML_NS.to_owned(), local.to_owned()),
            Some((prefix, local)) => (
                scope
                    .get(prefix)
                    .cloned()
                    .ok_or_else(|| C14nError::UnboundPrefix(prefix.to_owned()))?,
                local.to_owned(),
            ),
            None => (String::new(), k.clone()),
        };
        attrs.push((uri, local, k.as_str(), v.as_str()));
    }
    if parent_scope.is_none() {
        for (k, v) in inherited_xml {
            if !e.attrs.iter().any(|(own, _)| own == k) {
                let local = k.trim_start_matches("xml:").to_owned();
                attrs.push((XML_NS.to_owned(), local, k.as_str(), v.as_str()));
            }
        }
    }
    attrs.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    // The element's own prefix must be bound (or the default).
    if let Some((prefix, _)) = e.name.split_once(':') {
        if prefix != "xml" && !scope.contains_key(prefix) {
            return Err(C14nError::UnboundPrefix(prefix.to_owned()));
        }
    }

    out.push('<');
    out.push_str(&e.name);
    if undeclare_default {
        out.push_str(" xmlns=\"\"");
    }
    for (p, u) in ns {
        out.push_str(" xmlns");
        if !p.is_empty() {
            out.push(':');
            out.push_str(p);
        }
        out.push_str("=\"");
        escape_attr(u, out);
        out.push('"');
    }
    for (_, _, qname, value) in &attrs {
        out.push(' ');
        out.push_str(qname);
        out.push_str("=\"");
        escape_attr(value, out);
        out.push('"');
    }
    out.push('>');
    for &c in &e.children {
        match doc.nodes.get(c) {
            Some(Node::Element(_)) => {
                write_element(doc, c, Some(&scope), inherited_xml, out)?;
            }
            Some(Node::Text(t)) => escape_text(t, out),
            Some(Node::Pi(pi)) => {
                out.push_str("<?");
                out.push_str(pi);
                out.push_str("?>");
            }
            None => {}
        }
    }
    out.push_str("</");
    out.push_str(&e.name);
    out.push('>');
    Ok(())
}

fn escape_text(s: &str, out: &mut String) {
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

fn escape_attr(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

/// Canonicalise the element with Id `id` of `xml` (see the module docs).
///
/// # Errors
///
/// See [`C14nError`].
pub fn canonicalize_id(xml: &[u8], id: &str) -> Result<Vec<u8>, C14nError> {
    Document::parse(xml)?.element_by_id(id)?.canonicalize()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn c14n(xml: &str, id: &str) -> String {
        String::from_utf8(canonicalize_id(xml.as_bytes(), id).unwrap()).unwrap()
    }

    #[test]
    fn inherited_namespaces_land_on_the_apex_sorted_and_unused_ones_too() {
        let xml = r#"<r xmlns="urn:d" xmlns:b="urn:b" xmlns:a="urn:a"><a:x Id="x" b:z="1" y="2" a:w="3"><a:c/></a:x></r>"#;
        assert_eq!(
            c14n(xml, "x"),
            r#"<a:x xmlns="urn:d" xmlns:a="urn:a" xmlns:b="urn:b" Id="x" y="2" a:w="3" b:z="1"><a:c></a:c></a:x>"#
        );
    }

    #[test]
    fn redundant_declarations_below_the_apex_are_dropped_and_changes_kept() {
        let xml = r#"<r xmlns:p="urn:1"><e Id="e" xmlns:p="urn:1"><f xmlns:p="urn:1"><g xmlns:p="urn:2"/></f></e></r>"#;
        assert_eq!(
            c14n(xml, "e"),
            r#"<e xmlns:p="urn:1" Id="e"><f><g xmlns:p="urn:2"></g></f></e>"#
        );
    }

    #[test]
    fn the_default_namespace_is_undeclared_where_it_ends() {
        let xml = r#"<r xmlns="urn:d"><e Id="e"><f xmlns=""><g/></f></e></r>"#;
        assert_eq!(
            c14n(xml, "e"),
            r#"<e xmlns="urn:d" Id="e"><f xmlns=""><g></g></f></e>"#
        );
        // An empty default at the apex is not rendered.
        assert_eq!(
            c14n(r#"<r><e Id="e" xmlns=""/></r>"#, "e"),
            r#"<e Id="e"></e>"#
        );
    }

    #[test]
    fn xml_attributes_are_inherited_by_the_apex_only() {
        let xml = r#"<r xml:lang="de" xml:space="preserve"><e Id="e" xml:lang="en"><f/></e></r>"#;
        assert_eq!(
            c14n(xml, "e"),
            r#"<e Id="e" xml:lang="en" xml:space="preserve"><f></f></e>"#
        );
    }

    #[test]
    fn text_attributes_references_cdata_comments_and_pis() {
        let xml = "<r><e Id=\"e\" a=\"x&#9;y\nz&amp;&quot;&lt;\">1 &lt; 2 &amp; 3 &gt; 0\r\n<![CDATA[<b>&]]><!-- gone --><?pi data?>&#xD;&#65;</e></r>";
        assert_eq!(
            c14n(xml, "e"),
            "<e Id=\"e\" a=\"x&#x9;y z&amp;&quot;&lt;\">1 &lt; 2 &amp; 3 &gt; 0\n&lt;b&gt;&amp;<?pi data?>&#xD;A</e>"
        );
    }

    #[test]
    fn hostile_or_broken_input_is_refused() {
        let doctype = "<!DOCTYPE r [<!ENTITY x \"y\">]><r><e Id=\"e\">&x;</e></r>";
        assert_eq!(
            canonicalize_id(doctype.as_bytes(), "e"),
            Err(C14nError::Doctype)
        );
        assert!(matches!(
            canonicalize_id(b"<r><e Id=\"e\"></r>", "e"),
            Err(C14nError::Malformed(_))
        ));
        assert_eq!(
            canonicalize_id(b"<r><e Id=\"e\"/><f Id=\"e\"/></r>", "e"),
            Err(C14nError::DuplicateId("e".into()))
        );
        assert_eq!(
            canonicalize_id(b"<r/>", "e"),
            Err(C14nError::NoSuchId("e".into()))
        );
        assert_eq!(
            canonicalize_id(b"<r><e Id=\"e\" p:a=\"1\"/></r>", "e"),
            Err(C14nError::UnboundPrefix("p".into()))
        );
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(
            Document::parse(deep.as_bytes()).err(),
            Some(C14nError::TooDeep)
        );
    }
}
