//! The document: a read-only arena tree built once per message.
//!
//! OWNER: tree helper. The public API below is the contract the evaluator
//! (`eval.rs`), the XSLT interpreter and the rules crate build on; bodies
//! marked `todo!` are to be implemented, signatures are not to change
//! without telling the others.
//!
//! Layout: every node is one fixed-size record in `nodes`, in document
//! order, so a node's index *is* its document-order position. An element
//! is followed immediately by its attribute records, then its children.
//! `end` is the index just after the node's subtree, so a subtree is the
//! range `idx..end`, the next sibling is at `end` (if still inside the
//! parent), and descendant scans are plain index ranges. Text node content
//! lives contiguously, in document order, in one `text` buffer: the string
//! value of an element or document is therefore one slice
//! `text[a..b]`, never a concatenation. Attribute values, comments and
//! processing-instruction data live in a second buffer `aux`. Names are
//! interned per document.

use std::collections::HashMap;

mod parse;
mod serialize;

pub use parse::{
    declaration_error, decode_xml, decode_xml_from, first_non_xml_char, normalize_newlines,
    pi_target_error, split_qname,
};
pub use serialize::to_xml_string;
use std::sync::atomic::{AtomicU64, Ordering};

/// Index of an interned expanded name within one [`Document`].
pub type NameId = u32;

/// "No node" in `parent`/`prev` fields.
pub const NONE: u32 = u32::MAX;

/// Node kinds of the XDM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NodeKind {
    /// The document node.
    Document,
    /// An element.
    Element,
    /// An attribute.
    Attribute,
    /// A text node.
    Text,
    /// A comment.
    Comment,
    /// A processing instruction (name = target).
    ProcessingInstruction,
    /// A namespace node (only as a parentless node created by the XSLT
    /// `xsl:namespace` instruction; the namespace axis is computed).
    Namespace,
}

/// An expanded name with the prefix it was written with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QName {
    /// Namespace URI (`""`: no namespace).
    pub uri: String,
    /// Local part.
    pub local: String,
    /// Prefix (`""`: none).
    pub prefix: String,
}

impl QName {
    /// A name in no namespace.
    pub fn local(local: &str) -> QName {
        QName {
            uri: String::new(),
            local: local.to_string(),
            prefix: String::new(),
        }
    }

    /// A name with URI and prefix.
    pub fn new(uri: &str, local: &str, prefix: &str) -> QName {
        QName {
            uri: uri.to_string(),
            local: local.to_string(),
            prefix: prefix.to_string(),
        }
    }

    /// `prefix:local` or `local`.
    pub fn lexical(&self) -> String {
        if self.prefix.is_empty() {
            self.local.clone()
        } else {
            format!("{}:{}", self.prefix, self.local)
        }
    }

    /// `Q{uri}local` (or `local` for no namespace).
    pub fn clark(&self) -> String {
        if self.uri.is_empty() {
            self.local.clone()
        } else {
            format!("Q{{{}}}{}", self.uri, self.local)
        }
    }
}

/// One node record (28 bytes).
///
/// (Packing the kind into the name field would make it 24 bytes and cut
/// the memory factors by ~14 %; the fields are read directly elsewhere in
/// the crate, so the layout stays as documented.)
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeRec {
    pub kind: NodeKind,
    pub parent: u32,
    /// Index just after this node's subtree.
    pub end: u32,
    /// Previous sibling (attributes: NONE).
    pub prev: u32,
    /// Name (elements, attributes, PIs, namespace nodes), else NONE.
    pub name: NameId,
    /// Elements/documents: start of their string value in `text`.
    /// Text: start in `text`. Attribute/comment/PI/namespace: start in `aux`.
    pub a: u32,
    /// Elements/documents: end of their string value in `text`.
    /// Others: end of their content in `text`/`aux`.
    pub b: u32,
}

impl NodeRec {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        kind: NodeKind,
        parent: u32,
        end: u32,
        prev: u32,
        name: NameId,
        a: u32,
        b: u32,
    ) -> NodeRec {
        NodeRec {
            kind,
            parent,
            end,
            prev,
            name,
            a,
            b,
        }
    }

    /// The node kind.
    #[inline]
    pub(crate) fn kind(&self) -> NodeKind {
        self.kind
    }

    /// The name id, or [`NONE`].
    #[inline]
    pub(crate) fn name(&self) -> NameId {
        self.name
    }

    fn set_name(&mut self, name: NameId) {
        self.name = name;
    }
}

static NEXT_DOC: AtomicU64 = AtomicU64::new(1);

/// A finished, immutable tree (`Send + Sync`). The root is node 0; it is a
/// document node for parsed documents and may be any kind for trees built
/// with [`Builder::new_fragment`] (parentless elements, text, attributes).
#[derive(Debug)]
pub struct Document {
    pub(crate) id: u64,
    pub(crate) nodes: Vec<NodeRec>,
    pub(crate) names: Vec<QName>,
    pub(crate) name_index: NameIndex,
    pub(crate) text: String,
    pub(crate) aux: String,
    /// Namespace declarations: (element index, prefix, uri), sorted by
    /// element index. An empty uri undeclares the prefix.
    pub(crate) ns_decls: Vec<(u32, String, String)>,
    /// The names of the namespace nodes (`local` = prefix): the distinct
    /// prefixes declared in the document, sorted (the `xml` prefix is
    /// [`XML_PREFIX_NAME`]); empty, without an allocation, for documents
    /// that declare no prefix. See [`Node::namespace_nodes`].
    pub(crate) ns_names: Vec<QName>,
    /// Document URI / base URI, if known.
    pub uri: Option<String>,
    /// A temporary tree (XSLT variable): `uri` is its base URI only, it
    /// has no document URI (`document-uri()` is empty).
    pub temporary: bool,
}

/// A node: a document and an index. `Copy`, 16 bytes; equality is
/// identity; `Ord` is document order (across documents: by creation).
///
/// Namespace nodes of the namespace axis are not stored in the arena:
/// they are synthesized on demand as the handle of their element (`idx`)
/// with a non-zero `ns` (1: the default namespace; 2: the `xml` prefix;
/// `k + 3`: the prefix `Document::ns_names[k]`). The field fills the handle's padding, so
/// documents that never use the axis pay nothing, and `(idx, ns)` orders
/// namespace nodes after their element and before its attributes.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    /// The tree.
    pub doc: &'a Document,
    /// The record index (for a namespace node: of its element).
    pub idx: u32,
    /// 0, or which namespace node of the element at `idx` this is.
    pub(crate) ns: u32,
}

impl PartialEq for Node<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.idx == other.idx && self.ns == other.ns && std::ptr::eq(self.doc, other.doc)
    }
}
impl Eq for Node<'_> {}
impl PartialOrd for Node<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Node<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.doc.id, self.idx, self.ns).cmp(&(other.doc.id, other.idx, other.ns))
    }
}
impl std::hash::Hash for Node<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.doc.id.hash(state);
        self.idx.hash(state);
        self.ns.hash(state);
    }
}

/// Limits and options for [`Document::parse`].
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Deepest element nesting accepted (default 512).
    pub max_depth: usize,
    /// Most attributes on one element (default 10,000).
    pub max_attributes: usize,
    /// Document URI to record.
    pub uri: Option<String>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_depth: 512,
            max_attributes: 10_000,
            uri: None,
        }
    }
}

/// Why XML could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A `<!DOCTYPE …>` was found (refused, never expanded).
    #[error(
        "XML document type declarations (DOCTYPE) are refused, at line {line}, column {column}"
    )]
    Doctype {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// Nesting deeper than allowed.
    #[error("XML nesting deeper than {limit} levels, at line {line}, column {column}")]
    TooDeep {
        /// The limit.
        limit: usize,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// Too many attributes on one element.
    #[error("more than {limit} attributes on one element, at line {line}, column {column}")]
    TooManyAttributes {
        /// The limit.
        limit: usize,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// Not well-formed (or not namespace-well-formed).
    #[error("malformed XML at line {line}, column {column}: {message}")]
    Malformed {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The bytes are not in a supported encoding.
    #[error("{0}")]
    Encoding(String),
}

/// The name of the namespace node of the `xml` prefix.
static XML_PREFIX_NAME: std::sync::LazyLock<QName> =
    std::sync::LazyLock::new(|| QName::local("xml"));

/// The namespace URI bound to the `xml` prefix.
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// The namespace URI of `xmlns` declarations (never bound to a prefix).
pub const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

impl Document {
    /// Parses XML bytes (encoding from BOM / XML declaration: UTF-8,
    /// UTF-16, ISO-8859-x and the other encodings `encoding_rs` knows).
    /// DOCTYPE is refused; only predefined entities and character
    /// references are expanded. Time and memory are linear in the input.
    pub fn parse(bytes: &[u8], options: &ParseOptions) -> Result<Document, ParseError> {
        let text = parse::decode_xml(bytes, None)?;
        parse::parse_str(&text, options)
    }

    /// Like [`Document::parse`], with an encoding label from outside the
    /// document (e.g. the `charset` parameter of a media type). A byte
    /// order mark still wins; the label wins over the XML declaration.
    pub fn parse_with_charset(
        bytes: &[u8],
        charset: Option<&str>,
        options: &ParseOptions,
    ) -> Result<Document, ParseError> {
        let text = parse::decode_xml(bytes, charset)?;
        parse::parse_str(&text, options)
    }

    /// Parses XML text (already decoded).
    pub fn parse_str(text: &str, options: &ParseOptions) -> Result<Document, ParseError> {
        parse::parse_str(text.strip_prefix('\u{FEFF}').unwrap_or(text), options)
    }

    /// The root node (index 0).
    pub fn root(&self) -> Node<'_> {
        Node {
            doc: self,
            idx: 0,
            ns: 0,
        }
    }

    /// The node with record index `idx`, if it exists.
    pub fn node(&self, idx: u32) -> Option<Node<'_>> {
        if (idx as usize) < self.nodes.len() {
            Some(Node {
                doc: self,
                idx,
                ns: 0,
            })
        } else {
            None
        }
    }

    /// Number of node records.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never true: a document has at least its root.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Unique id of this tree (creation order).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Bytes held by the tree (records, names, text buffers), for the
    /// memory-factor benchmark.
    ///
    /// Measured factors (`heap_size / input bytes`, see the
    /// `memory_factors` test):
    ///
    /// * 100,000 `<a/>` in one root element: ≈ 7.0× — one 28-byte record
    ///   per 4 input bytes is the floor of this layout;
    /// * record-style XML (the test's indented records with attributes and
    ///   three text fields): ≈ 3.1× — the indentation whitespace costs a
    ///   28-byte record per line; the same records unindented ≈ 2.3×;
    /// * `fn:json-to-xml` of a JSON array of 100,000 zeros (`[0,0,…]`):
    ///   ≈ 28× — every 2 input bytes become an element and a text record
    ///   (56 bytes). Record-style JSON (objects with four members) ≈ 4.9×.
    pub fn heap_size(&self) -> usize {
        let names: usize = self
            .names
            .iter()
            .map(|q| {
                std::mem::size_of::<QName>()
                    + q.uri.capacity()
                    + q.local.capacity()
                    + q.prefix.capacity()
            })
            .sum();
        let index: usize = self.name_index.heap_size();
        let decls: usize = self.ns_decls.capacity() * std::mem::size_of::<(u32, String, String)>()
            + self
                .ns_decls
                .iter()
                .map(|(_, p, u)| p.capacity() + u.capacity())
                .sum::<usize>();
        let ns_names: usize = self.ns_names.capacity() * std::mem::size_of::<QName>()
            + self
                .ns_names
                .iter()
                .map(|q| q.local.capacity())
                .sum::<usize>();
        self.nodes.capacity() * std::mem::size_of::<NodeRec>()
            + ns_names
            + self.text.capacity()
            + self.aux.capacity()
            + names
            + index
            + decls
            + self.uri.as_ref().map_or(0, |u| u.capacity())
    }

    /// The id of an interned name, if any node of this document has it.
    ///
    /// Allocation-free: one hash of the two strings and one probe of an
    /// integer-keyed table (the evaluator calls this per step and
    /// context node).
    pub fn lookup_name(&self, uri: &str, local: &str) -> Option<NameId> {
        if self.names.len() <= 8 {
            // Tiny documents: a scan is cheaper than hashing.
            return self
                .names
                .iter()
                .position(|q| name_eq(q, uri, local))
                .map(|i| i as NameId);
        }
        self.name_index.get(&self.names, uri, local)
    }

    /// The `ns` code of the namespace node for `prefix` (see [`Node`]).
    fn namespace_node_code(&self, prefix: &str) -> Option<u32> {
        match prefix {
            "" => Some(1),
            "xml" => Some(2),
            p => self
                .ns_names
                .binary_search_by(|q| q.local.as_str().cmp(p))
                .ok()
                .map(|k| k as u32 + 3),
        }
    }

    /// The name of the namespace node with code `ns` (`None`: the
    /// default namespace, which has no name).
    fn namespace_node_name(&self, ns: u32) -> Option<&QName> {
        match ns {
            0 | 1 => None,
            2 => Some(&XML_PREFIX_NAME),
            k => self.ns_names.get(k as usize - 3),
        }
    }

    /// The name with this id.
    pub fn name(&self, id: NameId) -> &QName {
        &self.names[id as usize]
    }

    /// All interned names (index = [`NameId`]).
    pub fn names(&self) -> &[QName] {
        &self.names
    }

    /// A copy without the whitespace-only text nodes whose parent element
    /// `strip` says to strip (`xsl:strip-space`), honouring `xml:space`.
    ///
    /// `xml:space="preserve"` on an element or an ancestor keeps its
    /// whitespace, `xml:space="default"` hands the decision back to
    /// `strip`. The copy is a new document (new id) with the same URI.
    pub fn strip_whitespace(&self, strip: &dyn Fn(&QName) -> bool) -> Document {
        let xml_space = self.lookup_name(XML_NS, "space");
        // Per element name id: does `strip` say strip? (cached, the
        // callback may be a pattern match).
        let mut strip_cache: Vec<u8> = vec![2; self.names.len()];
        let mut b = if self.nodes.first().map(|r| r.kind()) == Some(NodeKind::Document) {
            Builder::new_document(self.uri.clone())
        } else {
            Builder::new_fragment()
        };
        // Open source elements: (end index, preserve?).
        let mut open: Vec<(u32, bool)> = Vec::new();
        let start = if self.nodes.first().map(|r| r.kind()) == Some(NodeKind::Document) {
            1
        } else {
            0
        };
        let mut i = start;
        let total = self.nodes.len() as u32;
        while i < total {
            while let Some(&(end, _)) = open.last() {
                if i >= end {
                    open.pop();
                    let _ = b.end_element();
                } else {
                    break;
                }
            }
            let rec = self.nodes[i as usize];
            match rec.kind() {
                NodeKind::Element => {
                    let inherited = open.last().is_some_and(|o| o.1);
                    let mut preserve = inherited;
                    if let Some(space) = xml_space {
                        if let Some(v) = (Node {
                            doc: self,
                            idx: i,
                            ns: 0,
                        })
                        .attribute_by_id(space)
                        {
                            match v.trim() {
                                "preserve" => preserve = true,
                                "default" => preserve = false,
                                _ => {}
                            }
                        }
                    }
                    b.copy_element_shallow(self, i);
                    open.push((rec.end, preserve));
                }
                NodeKind::Attribute => {
                    b.copy_attribute_raw(self, i);
                }
                NodeKind::Text => {
                    let s = &self.text[rec.a as usize..rec.b as usize];
                    let keep = if !is_xml_whitespace(s) || rec.parent == NONE {
                        true
                    } else {
                        match open.last() {
                            Some(&(_, true)) => true,
                            Some(_) => {
                                let pname = self.nodes[rec.parent as usize].name() as usize;
                                let cached = strip_cache.get(pname).copied().unwrap_or(2);
                                let strip_it = if cached == 2 {
                                    let v = self.names.get(pname).is_some_and(strip);
                                    if let Some(c) = strip_cache.get_mut(pname) {
                                        *c = u8::from(v);
                                    }
                                    v
                                } else {
                                    cached == 1
                                };
                                !strip_it
                            }
                            // Text directly under the document node.
                            None => true,
                        }
                    };
                    if keep {
                        b.text(s);
                    }
                }
                NodeKind::Comment => b.comment(&self.aux[rec.a as usize..rec.b as usize]),
                NodeKind::ProcessingInstruction => {
                    let target = self.names[rec.name() as usize].local.clone();
                    b.processing_instruction(&target, &self.aux[rec.a as usize..rec.b as usize]);
                }
                NodeKind::Namespace => {
                    let prefix = self.names[rec.name() as usize].local.clone();
                    let _ = b.namespace(&prefix, &self.aux[rec.a as usize..rec.b as usize]);
                }
                NodeKind::Document => {}
            }
            i += 1;
        }
        b.finish()
    }
}

/// XML whitespace (space, tab, CR, LF) only?
pub fn is_xml_whitespace(s: &str) -> bool {
    s.bytes().all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
}

/// Iterator over nodes (children, attributes, axes).
pub type NodeIter<'a> = Box<dyn Iterator<Item = Node<'a>> + 'a>;

impl<'a> Node<'a> {
    #[inline]
    fn rec(self) -> &'a NodeRec {
        &self.doc.nodes[self.idx as usize]
    }

    #[inline]
    fn at(self, idx: u32) -> Node<'a> {
        Node {
            doc: self.doc,
            idx,
            ns: 0,
        }
    }

    /// The node kind.
    pub fn kind(self) -> NodeKind {
        if self.ns != 0 {
            return NodeKind::Namespace;
        }
        self.rec().kind()
    }

    /// Is this an element?
    pub fn is_element(self) -> bool {
        self.kind() == NodeKind::Element
    }

    /// Expanded name (elements, attributes, PIs (local = target),
    /// namespace nodes (local = prefix)); `None` for others.
    pub fn name(self) -> Option<&'a QName> {
        if self.ns != 0 {
            return self.doc.namespace_node_name(self.ns);
        }
        self.name_id().map(|id| &self.doc.names[id as usize])
    }

    /// Interned name id, if named (namespace nodes of the namespace axis
    /// have none: their names are not interned).
    pub fn name_id(self) -> Option<NameId> {
        if self.ns != 0 {
            return None;
        }
        let r = self.rec();
        if r.name() == NONE {
            None
        } else {
            Some(r.name())
        }
    }

    /// Local part of the name (`""` for unnamed nodes).
    pub fn local_name(self) -> &'a str {
        self.name().map_or("", |q| q.local.as_str())
    }

    /// Namespace URI of the name (`""` for unnamed or no-namespace nodes).
    pub fn namespace_uri(self) -> &'a str {
        self.name().map_or("", |q| q.uri.as_str())
    }

    /// Parent (attributes: their element).
    pub fn parent(self) -> Option<Node<'a>> {
        if self.ns != 0 {
            return Some(self.at(self.idx));
        }
        let p = self.rec().parent;
        if p == NONE {
            None
        } else {
            Some(self.at(p))
        }
    }

    /// The root of the tree (the parentless ancestor-or-self; index 0 for
    /// everything but the extra top-level nodes of a fragment).
    pub fn root(self) -> Node<'a> {
        if self.doc.nodes.first().is_some_and(|r| self.idx < r.end) {
            return self.doc.root();
        }
        let mut n = self;
        while let Some(p) = n.parent() {
            n = p;
        }
        n
    }

    /// Children in document order (not attributes).
    pub fn children(self) -> impl Iterator<Item = Node<'a>> + 'a {
        let end = self.subtree_end();
        let mut next = self.first_child().map_or(NONE, |c| c.idx);
        let doc = self.doc;
        std::iter::from_fn(move || {
            if next == NONE || next >= end {
                return None;
            }
            let n = Node {
                doc,
                idx: next,
                ns: 0,
            };
            next = n.rec().end;
            Some(n)
        })
    }

    /// Index of the first record after this element's attributes.
    fn after_attributes(self) -> u32 {
        let r = self.rec();
        if r.kind() != NodeKind::Element {
            return self.idx + 1;
        }
        let nodes = &self.doc.nodes;
        let (lo, hi) = (self.idx as usize + 1, r.end as usize);
        // Attributes of this element form a prefix of idx+1..end; probe a
        // few, then binary-search (elements with thousands of attributes).
        let mut i = lo;
        while i < hi && i < lo + 8 {
            if nodes[i].kind() != NodeKind::Attribute {
                return i as u32;
            }
            i += 1;
        }
        if i >= hi {
            return hi as u32;
        }
        let own = |rec: &NodeRec| rec.kind() == NodeKind::Attribute && rec.parent == self.idx;
        (i + nodes[i..hi].partition_point(own)) as u32
    }

    /// First child.
    pub fn first_child(self) -> Option<Node<'a>> {
        match self.kind() {
            NodeKind::Element | NodeKind::Document => {
                let c = self.after_attributes();
                if c < self.rec().end {
                    Some(self.at(c))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Last child.
    pub fn last_child(self) -> Option<Node<'a>> {
        let mut c = self.first_child()?;
        // Walk siblings via `end`: O(children).
        while let Some(n) = c.next_sibling() {
            c = n;
        }
        Some(c)
    }

    /// Next sibling (none for attributes).
    pub fn next_sibling(self) -> Option<Node<'a>> {
        let r = self.rec();
        if r.kind() == NodeKind::Attribute || r.parent == NONE || self.ns != 0 {
            return None;
        }
        let pend = self.doc.nodes[r.parent as usize].end;
        if r.end < pend {
            Some(self.at(r.end))
        } else {
            None
        }
    }

    /// Previous sibling (none for attributes).
    pub fn prev_sibling(self) -> Option<Node<'a>> {
        let p = self.rec().prev;
        if p == NONE || self.ns != 0 {
            None
        } else {
            Some(self.at(p))
        }
    }

    /// Following siblings, nearest first.
    pub fn following_siblings(self) -> impl Iterator<Item = Node<'a>> + 'a {
        std::iter::successors(self.next_sibling(), |n| n.next_sibling())
    }

    /// Preceding siblings, nearest first (reverse document order).
    pub fn preceding_siblings(self) -> impl Iterator<Item = Node<'a>> + 'a {
        std::iter::successors(self.prev_sibling(), |n| n.prev_sibling())
    }

    /// Ancestors, nearest first (parent, grandparent, …, root).
    pub fn ancestors(self) -> impl Iterator<Item = Node<'a>> + 'a {
        std::iter::successors(self.parent(), |n| n.parent())
    }

    /// Attributes of an element (empty for others).
    pub fn attributes(self) -> impl Iterator<Item = Node<'a>> + 'a {
        let doc = self.doc;
        let parent = self.idx;
        let is_elem = self.kind() == NodeKind::Element;
        let mut i = self.idx + 1;
        std::iter::from_fn(move || {
            if !is_elem {
                return None;
            }
            let r = doc.nodes.get(i as usize)?;
            if r.kind() == NodeKind::Attribute && r.parent == parent {
                let n = Node { doc, idx: i, ns: 0 };
                i += 1;
                Some(n)
            } else {
                None
            }
        })
    }

    /// The value of the attribute with this name.
    pub fn attribute(self, uri: &str, local: &str) -> Option<&'a str> {
        let id = self.doc.lookup_name(uri, local)?;
        self.attribute_by_id(id)
    }

    /// The value of the attribute with this interned name.
    pub fn attribute_by_id(self, name: NameId) -> Option<&'a str> {
        self.attributes()
            .find(|a| a.rec().name() == name)
            .map(|a| a.string_value())
    }

    /// Descendants in document order (no attributes), excluding self.
    pub fn descendants(self) -> impl Iterator<Item = Node<'a>> + 'a {
        let doc = self.doc;
        let start = match self.kind() {
            NodeKind::Element | NodeKind::Document => self.after_attributes(),
            _ => self.idx + 1,
        };
        let end = self.subtree_end();
        (start..end)
            .filter(move |&i| doc.nodes[i as usize].kind() != NodeKind::Attribute)
            .map(move |idx| Node { doc, idx, ns: 0 })
    }

    /// Index just after the subtree (descendant range is `idx+1..end`).
    pub fn subtree_end(self) -> u32 {
        if self.ns != 0 {
            // A namespace node has no subtree (`idx+1..idx` is empty).
            return self.idx;
        }
        self.rec().end
    }

    /// The string value: text content for documents/elements (one slice),
    /// the value of attributes, text, comments, PIs, namespace nodes.
    pub fn string_value(self) -> &'a str {
        if self.ns != 0 {
            return self.namespace_node_uri();
        }
        let r = self.rec();
        let (a, b) = (r.a as usize, r.b as usize);
        match r.kind() {
            NodeKind::Document | NodeKind::Element | NodeKind::Text => {
                self.doc.text.get(a..b).unwrap_or("")
            }
            _ => self.doc.aux.get(a..b).unwrap_or(""),
        }
    }

    /// Namespace declarations made on this element (prefix, uri; "" =
    /// default namespace).
    pub fn namespace_decls(self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let decls = &self.doc.ns_decls;
        let idx = self.idx;
        let start = if self.kind() == NodeKind::Element {
            decls.partition_point(|d| d.0 < idx)
        } else {
            decls.len()
        };
        decls[start..]
            .iter()
            .take_while(move |d| d.0 == idx)
            .map(|d| (d.1.as_str(), d.2.as_str()))
    }

    /// In-scope namespaces of an element (nearest declaration wins,
    /// undeclarations removed, `xml` included), sorted by prefix.
    pub fn in_scope_namespaces(self) -> Vec<(&'a str, &'a str)> {
        let mut out = Vec::new();
        self.in_scope_namespaces_into(&mut out, &mut Vec::new());
        out
    }

    /// [`Node::in_scope_namespaces`] into `out` (cleared first), with
    /// `seen` as scratch space: for callers that ask per element and keep
    /// the two buffers, so that no call allocates once they have grown.
    pub fn in_scope_namespaces_into(
        self,
        out: &mut Vec<(&'a str, &'a str)>,
        seen: &mut Vec<&'a str>,
    ) {
        out.clear();
        seen.clear();
        if self.kind() != NodeKind::Element {
            return;
        }
        out.push(("xml", XML_NS));
        seen.push("xml");
        let mut cur = Some(self);
        while let Some(n) = cur {
            if n.kind() == NodeKind::Element {
                for (p, u) in n.namespace_decls() {
                    if !seen.contains(&p) {
                        seen.push(p);
                        if !u.is_empty() {
                            out.push((p, u));
                        }
                    }
                }
            }
            cur = n.parent();
        }
        out.sort_unstable();
    }

    /// The namespace nodes of an element (the namespace axis), in
    /// document order; empty for other nodes. Synthesized on demand: the
    /// first call on a document builds the sorted list of its prefixes.
    pub fn namespace_nodes(self) -> Vec<Node<'a>> {
        let mut out: Vec<Node<'a>> = self
            .in_scope_namespaces()
            .into_iter()
            .filter_map(|(p, _)| {
                Some(Node {
                    doc: self.doc,
                    idx: self.idx,
                    ns: self.doc.namespace_node_code(p)?,
                })
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// The URI of a synthesized namespace node: the nearest declaration
    /// of its prefix on its element or an ancestor.
    fn namespace_node_uri(self) -> &'a str {
        let prefix = match self.doc.namespace_node_name(self.ns) {
            Some(q) => q.local.as_str(),
            None => "",
        };
        if prefix == "xml" {
            return XML_NS;
        }
        let mut cur = Some(self.at(self.idx));
        while let Some(n) = cur {
            if let Some((_, u)) = n.namespace_decls().find(|(p, _)| *p == prefix) {
                return u;
            }
            cur = n.parent();
        }
        ""
    }

    /// Is this node an ancestor-or-self of `other`?
    pub fn contains(self, other: Node<'a>) -> bool {
        if self.ns != 0 {
            return self == other;
        }
        std::ptr::eq(self.doc, other.doc) && self.idx <= other.idx && other.idx < self.subtree_end()
    }

    /// `xml:base`-aware base URI (the document URI otherwise).
    pub fn base_uri(self) -> Option<String> {
        let xml_base = self.doc.lookup_name(XML_NS, "base");
        let start = match self.kind() {
            NodeKind::Element | NodeKind::Document => Some(self),
            NodeKind::Namespace => return None,
            _ => self.parent(),
        };
        let mut bases: Vec<&str> = Vec::new();
        if let Some(id) = xml_base {
            let mut cur = start;
            while let Some(n) = cur {
                if let Some(v) = n.attribute_by_id(id) {
                    bases.push(v);
                }
                cur = n.parent();
            }
        }
        let mut base = self.doc.uri.clone();
        for rel in bases.iter().rev() {
            base = Some(match base {
                Some(b) => resolve_uri(rel.trim(), &b),
                None => rel.trim().to_string(),
            });
        }
        base
    }
}

/// Resolves `rel` against `base` (RFC 3986 §5.2, simplified: no query or
/// fragment subtleties beyond dropping them from the base).
pub fn resolve_uri(rel: &str, base: &str) -> String {
    fn scheme_len(s: &str) -> Option<usize> {
        let colon = s.find(':')?;
        let scheme = &s[..colon];
        let mut chars = scheme.chars();
        let first = chars.next()?;
        if first.is_ascii_alphabetic()
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            Some(colon)
        } else {
            None
        }
    }
    if scheme_len(rel).is_some() {
        return remove_dot_segments(rel);
    }
    if rel.is_empty() {
        return base.split('#').next().unwrap_or(base).to_string();
    }
    let base = base.split(['#', '?']).next().unwrap_or(base);
    let scheme_end = scheme_len(base).map_or(0, |i| i + 1);
    if rel.starts_with("//") {
        return format!("{}{}", &base[..scheme_end], rel);
    }
    let after_scheme = &base[scheme_end..];
    let authority_end = if let Some(rest) = after_scheme.strip_prefix("//") {
        scheme_end + 2 + rest.find('/').unwrap_or(rest.len())
    } else {
        scheme_end
    };
    if rel.starts_with('/') {
        return format!("{}{}", &base[..authority_end], remove_dot_segments(rel));
    }
    if rel.starts_with('?') || rel.starts_with('#') {
        return format!("{base}{rel}");
    }
    let path = &base[authority_end..];
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None if authority_end > scheme_end => "/",
        None => "",
    };
    format!(
        "{}{}",
        &base[..authority_end],
        remove_dot_segments(&format!("{dir}{rel}"))
    )
}

/// Removes `.` and `..` segments from a path (RFC 3986 §5.2.4, simplified).
fn remove_dot_segments(path: &str) -> String {
    if !path.contains("./") && !path.ends_with("/.") && !path.ends_with("/..") {
        return path.to_string();
    }
    let (prefix, rest) = match path.find(['?', '#']) {
        Some(i) => (&path[..i], &path[i..]),
        None => (path, ""),
    };
    let mut out: Vec<&str> = Vec::new();
    let segs: Vec<&str> = prefix.split('/').collect();
    let last = segs.len().saturating_sub(1);
    for (i, seg) in segs.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 || out.first().is_some_and(|s| !s.is_empty()) {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("{}{}", out.join("/"), rest)
}

/// An open node of the [`Builder`]: its index and its last child so far.
#[derive(Debug, Clone, Copy)]
struct Open {
    idx: u32,
    last: u32,
}

/// Prefix → URI bindings in scope while building, with an undo log keyed
/// by element depth, so that lookups and declarations are O(1).
#[derive(Debug, Default)]
struct NsScope {
    map: HashMap<String, String, parse::FxState>,
    /// (depth, prefix, previous binding).
    undo: Vec<(usize, String, Option<String>)>,
    /// Bumped on every change of a binding, so that callers can cache
    /// name resolutions while it stays the same.
    generation: u64,
}

impl NsScope {
    fn new() -> NsScope {
        let mut map = HashMap::default();
        map.insert("xml".to_string(), XML_NS.to_string());
        NsScope {
            map,
            undo: Vec::new(),
            generation: 0,
        }
    }

    fn get(&self, prefix: &str) -> Option<&str> {
        self.map.get(prefix).map(String::as_str)
    }

    fn bind(&mut self, depth: usize, prefix: &str, uri: &str, record_undo: bool) {
        self.generation += 1;
        let old = self.map.insert(prefix.to_string(), uri.to_string());
        if record_undo {
            self.undo.push((depth, prefix.to_string(), old));
        }
    }

    fn pop(&mut self, depth: usize) {
        while let Some((d, _, _)) = self.undo.last() {
            if *d < depth {
                break;
            }
            if let Some((_, prefix, old)) = self.undo.pop() {
                self.generation += 1;
                match old {
                    Some(u) => {
                        self.map.insert(prefix, u);
                    }
                    None => {
                        self.map.remove(&prefix);
                    }
                }
            }
        }
    }
}

/// Builds a [`Document`] in document order. Used by the parser, the JSON
/// converter, whitespace stripping, and the XSLT result tree construction.
///
/// Attributes and namespace declarations may be added to the most recently
/// started element until its first child is added (later attributes with
/// the same name replace earlier ones); after that [`Builder::attribute`]
/// returns [`BuildError::AttributeAfterChildren`]. Adjacent text is
/// merged; empty text is dropped.
///
/// Namespace fixup: [`Builder::start_element`] and [`Builder::attribute`]
/// declare the prefix of the name on the element when it is not already
/// bound to the name's URI in scope, so every built tree is
/// namespace-well-formed as far as prefixes allow.
#[derive(Debug)]
pub struct Builder {
    doc: Document,
    stack: Vec<Open>,
    /// Element whose attributes may still be added, or `NONE`.
    pending: u32,
    /// Attributes added to `pending` so far.
    attr_count: u32,
    /// Name → attribute index for `pending`, once it has many attributes.
    attr_index: HashMap<NameId, u32>,
    /// Namespace declarations made on `pending` so far.
    ns_count: u32,
    /// Prefix → declaration index for `pending`, once it has many.
    ns_index: HashMap<String, usize>,
    fragment: bool,
    scope: NsScope,
    /// Name-id translation for [`Builder::copy`]: (source doc id, map).
    copy_names: Option<(u64, Vec<NameId>)>,
}

/// Misuse of the [`Builder`] that comes from the stylesheet (XSLT errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// `XTDE0410`: attribute added after children of an element.
    #[error("XTDE0410: an attribute node cannot be added after the children of an element")]
    AttributeAfterChildren,
    /// `XTDE0420`: attribute added with no element open (document root).
    #[error("XTDE0420: an attribute node cannot be added to a document node")]
    AttributeToDocument,
    /// An element was ended that was not started.
    #[error("unbalanced end_element")]
    Unbalanced,
}

impl BuildError {
    /// The W3C error code (`XTDE0410`, `XTDE0420`; `DSXP0002` for an
    /// unbalanced `end_element`, an internal misuse).
    pub fn code(&self) -> &'static str {
        match self {
            BuildError::AttributeAfterChildren => "XTDE0410",
            BuildError::AttributeToDocument => "XTDE0420",
            BuildError::Unbalanced => "DSXP0002",
        }
    }
}

impl From<BuildError> for crate::error::Error {
    fn from(e: BuildError) -> Self {
        crate::error::Error::new(e.code(), e.to_string())
    }
}

const LINEAR_LIMIT: u32 = 8;

impl Builder {
    fn empty(fragment: bool, uri: Option<String>) -> Builder {
        Builder {
            doc: Document {
                id: next_doc_id(),
                nodes: Vec::new(),
                names: Vec::new(),
                name_index: NameIndex::default(),
                text: String::new(),
                aux: String::new(),
                ns_decls: Vec::new(),
                ns_names: Vec::new(),
                uri,
                temporary: false,
            },
            stack: Vec::new(),
            pending: NONE,
            attr_count: 0,
            attr_index: HashMap::new(),
            ns_count: 0,
            ns_index: HashMap::new(),
            fragment,
            scope: NsScope::new(),
            copy_names: None,
        }
    }

    /// A builder whose root is a document node.
    pub fn new_document(uri: Option<String>) -> Builder {
        let mut b = Builder::empty(false, uri);
        b.doc
            .nodes
            .push(NodeRec::new(NodeKind::Document, NONE, 1, NONE, NONE, 0, 0));
        b.stack.push(Open { idx: 0, last: NONE });
        b
    }

    /// A builder whose root is the document node of a temporary tree:
    /// `base` is its base URI, it has no document URI.
    pub fn new_temporary(base: Option<String>) -> Builder {
        let mut b = Builder::new_document(base);
        b.doc.temporary = true;
        b
    }

    /// A builder for a parentless tree: the first node added becomes the
    /// root (an element, text, comment, PI, attribute or namespace node).
    ///
    /// Further top-level nodes may follow the first one; they are
    /// parentless too (use [`Builder::next_index`] to know where each
    /// starts). A fragment with no node at all finishes as an empty
    /// document node.
    pub fn new_fragment() -> Builder {
        Builder::empty(true, None)
    }

    /// Pre-sizes the buffers (records, text) for a known input size.
    pub fn reserve(&mut self, records: usize, text: usize) {
        self.doc.nodes.reserve(records);
        self.doc.text.reserve(text);
    }

    /// The index the next node will get.
    pub fn next_index(&self) -> u32 {
        self.doc.nodes.len() as u32
    }

    /// Interns a name.
    pub fn intern(&mut self, name: &QName) -> NameId {
        self.intern_parts(&name.uri, &name.local, &name.prefix)
    }

    /// Interns a name given by its parts (no `QName` needed for lookup).
    pub(crate) fn intern_parts(&mut self, uri: &str, local: &str, prefix: &str) -> NameId {
        let hash = name_hash(uri, local);
        if let Some(id) = self.doc.name_index.find(&self.doc.names, hash, uri, local) {
            return id;
        }
        let id = self.doc.names.len() as NameId;
        self.doc.names.push(QName::new(uri, local, prefix));
        self.doc.name_index.insert(hash, id);
        id
    }

    /// The name with this id.
    pub fn name(&self, id: NameId) -> &QName {
        &self.doc.names[id as usize]
    }

    /// The URI bound to `prefix` at the current position.
    pub fn resolve_prefix(&self, prefix: &str) -> Option<&str> {
        self.scope.get(prefix)
    }

    /// Changes whenever a prefix binding in scope changes (the parser
    /// caches resolved names while it stays the same).
    pub(crate) fn scope_generation(&self) -> u64 {
        self.scope.generation
    }

    /// Appends a child record to the open node (or a parentless one).
    fn push_child(&mut self, kind: NodeKind, name: NameId, a: usize, b: usize) -> u32 {
        self.pending = NONE;
        let idx = self.doc.nodes.len() as u32;
        let (parent, prev) = match self.stack.last_mut() {
            Some(open) => {
                let prev = open.last;
                open.last = idx;
                (open.idx, prev)
            }
            None => (NONE, NONE),
        };
        self.doc.nodes.push(NodeRec {
            kind,
            parent,
            end: idx + 1,
            prev,
            name,
            a: a as u32,
            b: b as u32,
        });
        idx
    }

    /// Starts an element with an interned name (no namespace fixup).
    pub(crate) fn push_element(&mut self, name: NameId) {
        let t = self.doc.text.len();
        let idx = self.push_child(NodeKind::Element, name, t, t);
        self.stack.push(Open { idx, last: NONE });
        self.pending = idx;
        self.attr_count = 0;
        self.ns_count = 0;
        if !self.ns_index.is_empty() {
            self.ns_index = HashMap::new();
        }
        if !self.attr_index.is_empty() {
            if self.attr_index.capacity() > 1024 {
                self.attr_index = HashMap::new();
            } else {
                self.attr_index.clear();
            }
        }
    }

    /// Sets the name of the element just started (parser: the name is
    /// resolved after the element's own declarations are bound).
    pub(crate) fn set_pending_name(&mut self, name: NameId) {
        if self.pending != NONE {
            self.doc.nodes[self.pending as usize].set_name(name);
        }
    }

    /// Declares `prefix` if the name is not bound as needed in scope.
    fn fixup(&mut self, name: NameId, is_attribute: bool) {
        let q = &self.doc.names[name as usize];
        if is_attribute && q.prefix.is_empty() {
            // Unprefixed attributes are in no namespace; a namespaced
            // attribute without prefix is fixed at serialization.
            return;
        }
        if q.prefix == "xml" {
            return;
        }
        let bound = self.scope.get(&q.prefix).unwrap_or("");
        if bound != q.uri {
            let (p, u) = (q.prefix.clone(), q.uri.clone());
            self.declare(&p, &u);
        }
    }

    /// Records a namespace declaration on `pending` (replacing an earlier
    /// one for the same prefix) and binds it in scope.
    fn declare(&mut self, prefix: &str, uri: &str) {
        let depth = self.stack.len();
        let elem = self.pending;
        let n = self.ns_count as usize;
        let len = self.doc.ns_decls.len();
        let existing = if n <= LINEAR_LIMIT as usize {
            self.doc.ns_decls[len - n..]
                .iter()
                .position(|d| d.1 == prefix)
                .map(|i| len - n + i)
        } else {
            // Many declarations on one element: a prefix → position index,
            // built once and kept up to date.
            if self.ns_index.len() < n {
                self.ns_index.clear();
                for (i, d) in self.doc.ns_decls[len - n..].iter().enumerate() {
                    self.ns_index.insert(d.1.clone(), len - n + i);
                }
            }
            self.ns_index.get(prefix).copied()
        };
        match existing {
            Some(i) => {
                uri.clone_into(&mut self.doc.ns_decls[i].2);
                self.scope.bind(depth, prefix, uri, false);
            }
            None => {
                if !self.ns_index.is_empty() {
                    self.ns_index.insert(prefix.to_string(), len);
                }
                self.doc
                    .ns_decls
                    .push((elem, prefix.to_string(), uri.to_string()));
                self.ns_count += 1;
                self.scope.bind(depth, prefix, uri, true);
            }
        }
    }

    /// Parser fast path: a declaration known to be new on the element just
    /// started.
    pub(crate) fn declare_new(&mut self, prefix: &str, uri: &str) {
        let depth = self.stack.len();
        self.doc
            .ns_decls
            .push((self.pending, prefix.to_string(), uri.to_string()));
        self.ns_count += 1;
        self.scope.bind(depth, prefix, uri, true);
    }

    /// Parser fast path: an attribute known to be new on the element just
    /// started.
    pub(crate) fn push_attribute(&mut self, name: NameId, value: &str) {
        let a = self.doc.aux.len();
        self.doc.aux.push_str(value);
        let idx = self.doc.nodes.len() as u32;
        self.doc.nodes.push(NodeRec {
            kind: NodeKind::Attribute,
            parent: self.pending,
            end: idx + 1,
            prev: NONE,
            name,
            a: a as u32,
            b: self.doc.aux.len() as u32,
        });
        self.attr_count += 1;
    }

    /// Starts an element with an interned name (with namespace fixup).
    pub fn start_element_id(&mut self, id: NameId) {
        self.push_element(id);
        self.fixup(id, false);
    }

    /// Starts an element.
    pub fn start_element(&mut self, name: &QName) {
        let id = self.intern(name);
        self.push_element(id);
        self.fixup(id, false);
    }

    /// Declares a namespace on the element just started (before children).
    ///
    /// In a fragment with no open element this creates a parentless
    /// namespace node instead.
    pub fn namespace(&mut self, prefix: &str, uri: &str) -> Result<(), BuildError> {
        if self.pending == NONE {
            if self.stack.is_empty() {
                let name = self.intern_parts("", prefix, "");
                let a = self.doc.aux.len();
                self.doc.aux.push_str(uri);
                let b = self.doc.aux.len();
                self.push_child(NodeKind::Namespace, name, a, b);
                return Ok(());
            }
            return Err(self.attribute_error());
        }
        if prefix == "xml" || prefix == "xmlns" {
            return Ok(());
        }
        // Already in scope with this URI (inherited from an ancestor, or
        // declared on this element): nothing to record. `xsl:copy` of an
        // element copies all its in-scope namespaces, so without this
        // every copied element would re-declare every binding.
        if self.scope.get(prefix).unwrap_or("") == uri {
            return Ok(());
        }
        self.declare(prefix, uri);
        Ok(())
    }

    fn attribute_error(&self) -> BuildError {
        match self.stack.last() {
            Some(o) if self.doc.nodes[o.idx as usize].kind() == NodeKind::Document => {
                BuildError::AttributeToDocument
            }
            _ => BuildError::AttributeAfterChildren,
        }
    }

    /// Adds an attribute to the element just started (before children).
    ///
    /// In a fragment with no open element this creates a parentless
    /// attribute node instead.
    pub fn attribute(&mut self, name: &QName, value: &str) -> Result<(), BuildError> {
        let id = self.intern(name);
        self.attribute_id(id, value)
    }

    /// [`Builder::attribute`] with an interned name.
    pub fn attribute_id(&mut self, id: NameId, value: &str) -> Result<(), BuildError> {
        if self.pending == NONE {
            if self.stack.is_empty() {
                let a = self.doc.aux.len();
                self.doc.aux.push_str(value);
                let b = self.doc.aux.len();
                self.push_child(NodeKind::Attribute, id, a, b);
                return Ok(());
            }
            return Err(self.attribute_error());
        }
        let first = self.pending + 1;
        let existing = if self.attr_count <= LINEAR_LIMIT {
            (first..first + self.attr_count).find(|&i| self.doc.nodes[i as usize].name() == id)
        } else {
            if self.attr_index.len() < self.attr_count as usize {
                for i in first..first + self.attr_count {
                    let n = self.doc.nodes[i as usize].name();
                    self.attr_index.entry(n).or_insert(i);
                }
            }
            self.attr_index.get(&id).copied()
        };
        match existing {
            Some(i) => {
                let a = self.doc.aux.len();
                self.doc.aux.push_str(value);
                let rec = &mut self.doc.nodes[i as usize];
                rec.a = a as u32;
                rec.b = self.doc.aux.len() as u32;
            }
            None => {
                if !self.attr_index.is_empty() {
                    self.attr_index.insert(id, self.doc.nodes.len() as u32);
                }
                self.push_attribute(id, value);
                self.fixup(id, true);
            }
        }
        Ok(())
    }

    /// Ends the current element.
    pub fn end_element(&mut self) -> Result<(), BuildError> {
        let floor = usize::from(!self.fragment);
        if self.stack.len() <= floor {
            return Err(BuildError::Unbalanced);
        }
        let depth = self.stack.len();
        let Some(open) = self.stack.pop() else {
            return Err(BuildError::Unbalanced);
        };
        self.scope.pop(depth);
        let end = self.doc.nodes.len() as u32;
        let t = self.doc.text.len() as u32;
        let rec = &mut self.doc.nodes[open.idx as usize];
        rec.end = end;
        rec.b = t;
        self.pending = NONE;
        Ok(())
    }

    /// Appends text (merged with adjacent text).
    pub fn text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(open) = self.stack.last() {
            let last = open.last;
            if last != NONE
                && last as usize + 1 == self.doc.nodes.len()
                && self.doc.nodes[last as usize].kind() == NodeKind::Text
            {
                self.doc.text.push_str(text);
                let b = self.doc.text.len() as u32;
                self.doc.nodes[last as usize].b = b;
                return;
            }
        }
        let a = self.doc.text.len();
        self.doc.text.push_str(text);
        let b = self.doc.text.len();
        self.push_child(NodeKind::Text, NONE, a, b);
    }

    /// Appends a comment.
    pub fn comment(&mut self, text: &str) {
        let a = self.doc.aux.len();
        self.doc.aux.push_str(text);
        let b = self.doc.aux.len();
        self.push_child(NodeKind::Comment, NONE, a, b);
    }

    /// Appends a processing instruction.
    pub fn processing_instruction(&mut self, target: &str, data: &str) {
        let name = self.intern_parts("", target, "");
        let a = self.doc.aux.len();
        self.doc.aux.push_str(data);
        let b = self.doc.aux.len();
        self.push_child(NodeKind::ProcessingInstruction, name, a, b);
    }

    /// Translates a name id of `src` into this builder's ids.
    fn map_name(&mut self, src: &Document, id: NameId) -> NameId {
        if id == NONE {
            return NONE;
        }
        let fresh = !matches!(&self.copy_names, Some((d, _)) if *d == src.id);
        if fresh {
            self.copy_names = Some((src.id, vec![NONE; src.names.len()]));
        }
        if let Some((_, map)) = &self.copy_names {
            if let Some(&m) = map.get(id as usize) {
                if m != NONE {
                    return m;
                }
            }
        }
        let q = &src.names[id as usize];
        let m = self.intern_parts(&q.uri, &q.local, &q.prefix);
        if let Some((_, map)) = &mut self.copy_names {
            if let Some(slot) = map.get_mut(id as usize) {
                *slot = m;
            }
        }
        m
    }

    /// Starts a copy of element `idx` of `src` with its own declarations
    /// (no attributes, no children).
    pub(crate) fn copy_element_shallow(&mut self, src: &Document, idx: u32) {
        let name = self.map_name(src, src.nodes[idx as usize].name());
        self.push_element(name);
        let start = src.ns_decls.partition_point(|d| d.0 < idx);
        for d in src.ns_decls[start..].iter().take_while(|d| d.0 == idx) {
            self.declare(&d.1, &d.2);
        }
        self.fixup(name, false);
    }

    /// Copies attribute `idx` of `src` onto the pending element.
    pub(crate) fn copy_attribute_raw(&mut self, src: &Document, idx: u32) {
        let rec = src.nodes[idx as usize];
        let name = self.map_name(src, rec.name());
        let value = &src.aux[rec.a as usize..rec.b as usize];
        let _ = self.attribute_id(name, value);
    }

    /// Deep-copies `node` (with its in-scope namespaces when it is an
    /// element, if `namespaces` is true): a document node copies its
    /// children, an attribute becomes an attribute of the open element.
    pub fn copy(&mut self, node: Node<'_>, namespaces: bool) -> Result<(), BuildError> {
        let src = node.doc;
        let rec = *node.rec();
        match node.kind() {
            NodeKind::Attribute => {
                let name = self.map_name(src, rec.name());
                return self.attribute_id(name, node.string_value());
            }
            NodeKind::Namespace => {
                let prefix = node.local_name().to_string();
                return self.namespace(&prefix, node.string_value());
            }
            NodeKind::Text => {
                self.text(node.string_value());
                return Ok(());
            }
            NodeKind::Comment => {
                self.comment(node.string_value());
                return Ok(());
            }
            NodeKind::ProcessingInstruction => {
                self.processing_instruction(node.local_name(), node.string_value());
                return Ok(());
            }
            NodeKind::Document | NodeKind::Element => {}
        }
        let first = if rec.kind() == NodeKind::Document {
            node.idx + 1
        } else {
            node.idx
        };
        let mut open: Vec<u32> = Vec::new();
        let mut cursor = src.ns_decls.partition_point(|d| d.0 < first);
        let mut i = first;
        while i < rec.end {
            while let Some(&end) = open.last() {
                if i >= end {
                    open.pop();
                    self.end_element()?;
                } else {
                    break;
                }
            }
            let r = src.nodes[i as usize];
            match r.kind() {
                NodeKind::Element => {
                    let name = self.map_name(src, r.name());
                    self.push_element(name);
                    if namespaces {
                        if i == node.idx && rec.kind() == NodeKind::Element {
                            for (p, u) in node.in_scope_namespaces() {
                                if p != "xml" && self.scope.get(p) != Some(u) {
                                    self.declare(p, u);
                                }
                            }
                        } else {
                            while cursor < src.ns_decls.len() && src.ns_decls[cursor].0 < i {
                                cursor += 1;
                            }
                            while cursor < src.ns_decls.len() && src.ns_decls[cursor].0 == i {
                                let (_, p, u) = &src.ns_decls[cursor];
                                if self.scope.get(p).unwrap_or("") != u.as_str() {
                                    self.declare(p, u);
                                }
                                cursor += 1;
                            }
                        }
                    }
                    self.fixup(name, false);
                    open.push(r.end);
                }
                NodeKind::Attribute => self.copy_attribute_raw(src, i),
                NodeKind::Text => self.text(&src.text[r.a as usize..r.b as usize]),
                NodeKind::Comment => self.comment(&src.aux[r.a as usize..r.b as usize]),
                NodeKind::ProcessingInstruction => {
                    let target = src.names[r.name() as usize].local.as_str();
                    self.processing_instruction(target, &src.aux[r.a as usize..r.b as usize]);
                }
                NodeKind::Namespace | NodeKind::Document => {}
            }
            i += 1;
        }
        while open.pop().is_some() {
            self.end_element()?;
        }
        Ok(())
    }

    /// Is an element open whose attributes can still be added?
    pub fn can_add_attribute(&self) -> bool {
        self.pending != NONE
    }

    /// The element just started (attributes may still be added), if any.
    pub fn pending_element_name(&self) -> Option<&QName> {
        let rec = self.doc.nodes.get(self.pending as usize)?;
        (rec.kind() == NodeKind::Element).then(|| &self.doc.names[rec.name() as usize])
    }

    /// The URI bound to `prefix` by a namespace declaration of the element
    /// just started (explicit, or made by the namespace fixup of its
    /// name or attributes), if any.
    pub fn pending_namespace_decl(&self, prefix: &str) -> Option<&str> {
        self.pending_element_name()?;
        let n = self.ns_count as usize;
        let decls = &self.doc.ns_decls;
        decls[decls.len().saturating_sub(n)..]
            .iter()
            .find(|d| d.1 == prefix)
            .map(|d| d.2.as_str())
    }

    /// Depth of open elements.
    pub fn depth(&self) -> usize {
        self.stack.len() - usize::from(!self.fragment)
    }

    /// Finishes the tree (closing any open elements).
    pub fn finish(mut self) -> Document {
        let floor = usize::from(!self.fragment);
        while self.stack.len() > floor {
            let _ = self.end_element();
        }
        if self.doc.nodes.is_empty() {
            self.doc
                .nodes
                .push(NodeRec::new(NodeKind::Document, NONE, 1, NONE, NONE, 0, 0));
        }
        if !self.fragment {
            let end = self.doc.nodes.len() as u32;
            let t = self.doc.text.len() as u32;
            let root = &mut self.doc.nodes[0];
            root.end = end;
            root.b = t;
        }
        let mut doc = self.doc;
        doc.nodes.shrink_to_fit();
        doc.text.shrink_to_fit();
        doc.aux.shrink_to_fit();
        doc.names.shrink_to_fit();
        doc.name_index.shrink_to_fit();
        doc.ns_decls.shrink_to_fit();
        let mut prefixes: Vec<&str> = doc
            .ns_decls
            .iter()
            .map(|d| d.1.as_str())
            .filter(|p| !p.is_empty() && *p != "xml")
            .collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        doc.ns_names = prefixes.into_iter().map(QName::local).collect();
        doc
    }
}

/// A hasher for keys that are already hashes (`u64`).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PreHashed(u64);

impl std::hash::Hasher for PreHashed {
    fn finish(&self) -> u64 {
        // Fx leaves the low bits (the bucket index) weakly mixed.
        self.0 ^ (self.0 >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = fx_bytes(self.0, bytes);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// `BuildHasher` for [`PreHashed`].
pub(crate) type PreHashedState = std::hash::BuildHasherDefault<PreHashed>;

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// The Fx hash (rustc's) of a byte string, 8 bytes at a time.
fn fx_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(FX_SEED);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(FX_SEED);
    }
    (h.rotate_left(5) ^ bytes.len() as u64).wrapping_mul(FX_SEED)
}

/// Hash of an expanded name (URI, local part).
pub(crate) fn name_hash(uri: &str, local: &str) -> u64 {
    fx_bytes(fx_bytes(0, uri.as_bytes()), local.as_bytes())
}

/// Expanded name → [`NameId`] without allocating on lookup: the hash of
/// (URI, local part) maps to the first id with that hash; ids with the
/// same hash are chained through `next` and told apart by comparing the
/// names themselves.
#[derive(Debug, Default, Clone)]
pub(crate) struct NameIndex {
    heads: HashMap<u64, NameId, PreHashedState>,
    /// Per id: the next id with the same hash, or [`NONE`].
    next: Vec<NameId>,
}

impl NameIndex {
    /// The id of (uri, local), if interned.
    pub(crate) fn get(&self, names: &[QName], uri: &str, local: &str) -> Option<NameId> {
        self.find(names, name_hash(uri, local), uri, local)
    }

    fn find(&self, names: &[QName], hash: u64, uri: &str, local: &str) -> Option<NameId> {
        let mut id = *self.heads.get(&hash)?;
        while id != NONE {
            let q = names.get(id as usize)?;
            if name_eq(q, uri, local) {
                return Some(id);
            }
            id = self.next.get(id as usize).copied().unwrap_or(NONE);
        }
        None
    }

    /// Records `id` (the next id in sequence) under `hash`.
    fn insert(&mut self, hash: u64, id: NameId) {
        if self.next.len() <= id as usize {
            self.next.resize(id as usize + 1, NONE);
        }
        if let Some(prev) = self.heads.insert(hash, id) {
            self.next[id as usize] = prev;
        }
    }

    fn shrink_to_fit(&mut self) {
        self.heads.shrink_to_fit();
        self.next.shrink_to_fit();
    }

    fn heap_size(&self) -> usize {
        self.heads.capacity() * (std::mem::size_of::<(u64, NameId)>() + 1)
            + self.next.capacity() * std::mem::size_of::<NameId>()
    }
}

/// `q` is `{uri}local`? Lengths first, and short names compared without
/// a libc `memcmp` call: the evaluator resolves a name test per step and
/// context node, so the call overhead showed in profiles (≈ 8 % of a
/// Muenchian grouping).
#[inline]
pub(crate) fn name_eq(q: &QName, uri: &str, local: &str) -> bool {
    q.local.len() == local.len()
        && q.uri.len() == uri.len()
        && short_eq(q.local.as_bytes(), local.as_bytes())
        && short_eq(q.uri.as_bytes(), uri.as_bytes())
}

/// Byte equality of two slices of the same length; a plain loop for short
/// ones (no `memcmp` call).
#[inline]
pub fn short_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() > 32 {
        return a == b;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// Next document id (creation order, used for cross-document order).
pub(crate) fn next_doc_id() -> u64 {
    NEXT_DOC.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Document {
        Document::parse_str(s, &ParseOptions::default()).unwrap()
    }

    fn err(s: &str) -> ParseError {
        Document::parse_str(s, &ParseOptions::default()).unwrap_err()
    }

    fn elem<'a>(doc: &'a Document, local: &str) -> Node<'a> {
        doc.root()
            .descendants()
            .find(|n| n.is_element() && n.local_name() == local)
            .unwrap()
    }

    #[test]
    fn namespaces_resolve_and_are_recorded() {
        let doc = parse(
            r#"<a:r xmlns:a="urn:a" xmlns="urn:d"><x a:at="1" at="2"/><y xmlns=""><z xml:lang="de"/></y></a:r>"#,
        );
        let r = doc.root().first_child().unwrap();
        assert_eq!(r.name().unwrap(), &QName::new("urn:a", "r", "a"));
        assert_eq!(
            r.namespace_decls().collect::<Vec<_>>(),
            vec![("a", "urn:a"), ("", "urn:d")]
        );
        let x = elem(&doc, "x");
        assert_eq!(x.namespace_uri(), "urn:d");
        assert_eq!(x.attribute("urn:a", "at"), Some("1"));
        assert_eq!(x.attribute("", "at"), Some("2"));
        let z = elem(&doc, "z");
        assert_eq!(z.namespace_uri(), "");
        assert_eq!(z.attribute(XML_NS, "lang"), Some("de"));
        assert_eq!(
            z.in_scope_namespaces(),
            vec![("a", "urn:a"), ("xml", XML_NS)]
        );
        assert_eq!(
            x.in_scope_namespaces(),
            vec![("", "urn:d"), ("a", "urn:a"), ("xml", XML_NS)]
        );
    }

    #[test]
    fn attributes_keep_order_and_follow_their_element() {
        let doc = parse(r#"<r c="3" a="1" b="2"><k/></r>"#);
        let r = doc.root().first_child().unwrap();
        let names: Vec<_> = r.attributes().map(|a| a.local_name().to_string()).collect();
        assert_eq!(names, ["c", "a", "b"]);
        for a in r.attributes() {
            assert_eq!(a.parent(), Some(r));
            assert_eq!(a.kind(), NodeKind::Attribute);
            assert!(a.next_sibling().is_none() && a.prev_sibling().is_none());
        }
        assert_eq!(r.first_child().unwrap().local_name(), "k");
        assert_eq!(r.children().count(), 1);
        assert_eq!(r.descendants().count(), 1);
    }

    #[test]
    fn entities_char_refs_and_cdata() {
        let doc =
            parse("<r a=\"&lt;&#x41;&#66;\t\r\nx\">&amp;&apos;&quot;&gt;<![CDATA[<&>]]>t\r\nu</r>");
        let r = doc.root().first_child().unwrap();
        assert_eq!(r.attribute("", "a"), Some("<AB  x"));
        assert_eq!(r.string_value(), "&'\">".to_string() + "<&>t\nu");
        // CDATA merges with the surrounding text: one text node.
        assert_eq!(r.children().count(), 1);
    }

    #[test]
    fn comments_and_pis_are_kept_declaration_is_not() {
        let doc = parse("<?xml version=\"1.0\"?><!--c1--><?pi data here?><r><!--in-->t</r>");
        let kinds: Vec<_> = doc.root().children().map(|n| n.kind()).collect();
        assert_eq!(
            kinds,
            [
                NodeKind::Comment,
                NodeKind::ProcessingInstruction,
                NodeKind::Element
            ]
        );
        let pi = doc.root().children().nth(1).unwrap();
        assert_eq!(pi.local_name(), "pi");
        assert_eq!(pi.string_value(), "data here");
        let r = elem(&doc, "r");
        assert_eq!(r.string_value(), "t");
        assert_eq!(r.first_child().unwrap().string_value(), "in");
    }

    #[test]
    fn errors_carry_line_and_column() {
        match err("<r>\n  <a b='1' b='2'/></r>") {
            ParseError::Malformed {
                line,
                column,
                message,
            } => {
                assert_eq!((line, column), (2, 12));
                assert!(message.contains("duplicate attribute"), "{message}");
            }
            e => panic!("{e:?}"),
        }
        match err("<r>\n<p:a/></r>") {
            ParseError::Malformed { line, message, .. } => {
                assert_eq!(line, 2);
                assert!(message.contains("undeclared namespace prefix"), "{message}");
            }
            e => panic!("{e:?}"),
        }
        match err("<r>\n x &nbsp;</r>") {
            ParseError::Malformed {
                line,
                column,
                message,
            } => {
                assert_eq!((line, column), (2, 4));
                assert!(message.contains("unknown entity"), "{message}");
            }
            e => panic!("{e:?}"),
        }
        assert!(matches!(err("<r></s>"), ParseError::Malformed { .. }));
        assert!(matches!(err("<r/><s/>"), ParseError::Malformed { .. }));
        assert!(matches!(err("<r>"), ParseError::Malformed { .. }));
        assert!(matches!(err(""), ParseError::Malformed { .. }));
        assert!(matches!(err("<r/>x"), ParseError::Malformed { .. }));
        assert!(matches!(
            err("<r a='1' p:b='2'/>"),
            ParseError::Malformed { .. }
        ));
        assert!(matches!(err("<r>&#0;</r>"), ParseError::Malformed { .. }));
        assert!(matches!(err("<r>\u{1}</r>"), ParseError::Malformed { .. }));
        assert!(matches!(
            err("<r>a\u{FFFF}</r>"),
            ParseError::Malformed { .. }
        ));
        assert!(matches!(
            err("<r>&amp;\u{FFFE}</r>"),
            ParseError::Malformed { .. }
        ));
        assert!(matches!(
            err("<r a='\u{FFFF}'/>"),
            ParseError::Malformed { .. }
        ));
        assert_eq!(
            parse("<r>\u{FFFD}\u{F000}</r>").root().string_value(),
            "\u{FFFD}\u{F000}"
        );
        assert!(matches!(
            err("<r><?xml version='1.0'?></r>"),
            ParseError::Malformed { .. }
        ));
        assert!(matches!(
            err("<r xmlns:p=''/>"),
            ParseError::Malformed { .. }
        ));
        // Duplicates by expanded name, too.
        assert!(matches!(
            err("<r xmlns:a='u' xmlns:b='u' a:x='1' b:x='2'/>"),
            ParseError::Malformed { .. }
        ));
    }

    #[test]
    fn doctype_is_refused() {
        let e = err("<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY x \"y\">]>\n<r>&x;</r>");
        assert_eq!(e, ParseError::Doctype { line: 2, column: 1 });
    }

    #[test]
    fn depth_and_attribute_limits() {
        let opts = ParseOptions {
            max_depth: 3,
            max_attributes: 2,
            uri: None,
        };
        assert!(Document::parse_str("<a><b><c/></b></a>", &opts).is_ok());
        assert!(matches!(
            Document::parse_str("<a><b><c><d/></c></b></a>", &opts),
            Err(ParseError::TooDeep {
                limit: 3,
                line: 1,
                column: 10
            })
        ));
        assert!(matches!(
            Document::parse_str("<a x='1' y='2' z='3'/>", &opts),
            Err(ParseError::TooManyAttributes { limit: 2, .. })
        ));
        // Default depth 512: a very deep document is refused, not crashed.
        let deep = "<a>".repeat(100_000) + &"</a>".repeat(100_000);
        assert!(matches!(err(&deep), ParseError::TooDeep { limit: 512, .. }));
    }

    #[test]
    fn encodings() {
        let opts = ParseOptions::default();
        // UTF-16LE with BOM.
        let mut le = vec![0xFF, 0xFE];
        for u in "<r>Grüße</r>".encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
        }
        let doc = Document::parse(&le, &opts).unwrap();
        assert_eq!(doc.root().string_value(), "Grüße");
        // UTF-16BE with BOM.
        let mut be = vec![0xFE, 0xFF];
        for u in "<r>ä</r>".encode_utf16() {
            be.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(
            Document::parse(&be, &opts).unwrap().root().string_value(),
            "ä"
        );
        // ISO-8859-1 from the declaration.
        let latin = b"<?xml version='1.0' encoding='ISO-8859-1'?><r>\xE4\xF6</r>";
        assert_eq!(
            Document::parse(latin, &opts).unwrap().root().string_value(),
            "äö"
        );
        // UTF-8 BOM.
        let bom = b"\xEF\xBB\xBF<r>x</r>";
        assert_eq!(
            Document::parse(bom, &opts).unwrap().root().string_value(),
            "x"
        );
        // Invalid UTF-8 and unknown labels.
        assert!(matches!(
            Document::parse(b"<r>\xFF</r>", &opts),
            Err(ParseError::Encoding(_))
        ));
        assert!(matches!(
            Document::parse(b"<?xml version='1.0' encoding='bogus'?><r/>", &opts),
            Err(ParseError::Encoding(_))
        ));
        // A charset from outside wins over the declaration.
        let d = Document::parse_with_charset(b"<r>\xE4</r>", Some("windows-1252"), &opts).unwrap();
        assert_eq!(d.root().string_value(), "ä");
    }

    #[test]
    fn navigation_siblings_and_string_values() {
        let doc = parse("<r><a>1<b>2</b>3</a><c/>4<d><e>5</e></d></r>");
        let r = elem(&doc, "r");
        let kids: Vec<_> = r.children().collect();
        assert_eq!(kids.len(), 4);
        assert_eq!(r.string_value(), "12345");
        assert_eq!(kids[0].string_value(), "123");
        assert_eq!(kids[3].string_value(), "5");
        assert_eq!(kids[0].next_sibling(), Some(kids[1]));
        assert_eq!(kids[3].next_sibling(), None);
        assert_eq!(kids[2].prev_sibling(), Some(kids[1]));
        assert_eq!(kids[0].prev_sibling(), None);
        assert_eq!(kids[0].following_siblings().count(), 3);
        assert_eq!(
            kids[3].preceding_siblings().collect::<Vec<_>>(),
            vec![kids[2], kids[1], kids[0]]
        );
        let e = elem(&doc, "e");
        let anc: Vec<_> = e.ancestors().map(|n| n.local_name().to_string()).collect();
        assert_eq!(anc, ["d", "r", ""]);
        assert_eq!(e.root(), doc.root());
        assert!(r.contains(e) && !e.contains(r));
        assert_eq!(doc.root().string_value(), "12345");
        assert!(kids[0] < kids[1]);
        assert_eq!(r.last_child(), Some(kids[3]));
    }

    fn many_attributes(n: usize) -> String {
        let mut s = String::from("<r");
        for i in 0..n {
            s.push_str(&format!(" a{i}=\"{i}\""));
        }
        s.push_str("><c/></r>");
        s
    }

    #[test]
    fn many_attributes_are_parsed_and_checked_for_duplicates() {
        // Linearity is shown by `benches/tree.rs` (1k…100k attributes),
        // not by timing here; a quadratic duplicate check would make this
        // 100k-attribute parse take minutes.
        let opts = ParseOptions {
            max_attributes: 200_000,
            ..ParseOptions::default()
        };
        let doc = Document::parse_str(&many_attributes(100_000), &opts).unwrap();
        let r = elem(&doc, "r");
        assert_eq!(r.attributes().count(), 100_000);
        assert_eq!(r.attribute("", "a99999"), Some("99999"));
        assert_eq!(r.first_child().unwrap().local_name(), "c");
        // A duplicate at the end is still found.
        let dup = many_attributes(100_000).replace("><c/>", " a5=\"x\"><c/>");
        assert!(matches!(
            Document::parse_str(&dup, &opts),
            Err(ParseError::Malformed { .. })
        ));
    }

    #[test]
    fn base_uri_follows_xml_base() {
        let opts = ParseOptions {
            uri: Some("http://h/dir/doc.xml".into()),
            ..ParseOptions::default()
        };
        let doc = Document::parse_str(
            "<r xml:base='sub/'><a xml:base='../x/y.xml'><b/></a><c xml:base='/abs/'/></r>",
            &opts,
        )
        .unwrap();
        assert_eq!(
            doc.root().base_uri().as_deref(),
            Some("http://h/dir/doc.xml")
        );
        assert_eq!(
            elem(&doc, "b").base_uri().as_deref(),
            Some("http://h/dir/x/y.xml")
        );
        assert_eq!(elem(&doc, "c").base_uri().as_deref(), Some("http://h/abs/"));
        assert_eq!(resolve_uri("urn:x", "http://h/"), "urn:x");
    }

    #[test]
    fn builder_records_only_namespace_bindings_not_already_in_scope() {
        let mut b = Builder::new_document(None);
        b.start_element(&QName::local("a"));
        b.namespace("p", "urn:p").unwrap();
        b.namespace("q", "urn:q").unwrap();
        b.start_element(&QName::local("b"));
        // what xsl:copy does: all in-scope bindings again
        b.namespace("p", "urn:p").unwrap();
        b.namespace("q", "urn:other").unwrap();
        b.namespace("", "").unwrap();
        b.end_element().unwrap();
        b.end_element().unwrap();
        let doc = b.finish();
        let a = doc.root().first_child().unwrap();
        let inner = a.first_child().unwrap();
        assert_eq!(a.namespace_decls().count(), 2);
        // only the changed binding is recorded on the child …
        assert_eq!(
            inner.namespace_decls().collect::<Vec<_>>(),
            vec![("q", "urn:other")]
        );
        // … and the inherited one is still in scope there
        assert!(inner.in_scope_namespaces().contains(&("p", "urn:p")));
        assert_eq!(
            to_xml_string(doc.root()),
            r#"<a xmlns:p="urn:p" xmlns:q="urn:q"><b xmlns:q="urn:other"/></a>"#
        );
    }

    #[test]
    fn builder_rules() {
        let mut b = Builder::new_document(None);
        assert_eq!(
            b.attribute(&QName::local("a"), "1"),
            Err(BuildError::AttributeToDocument)
        );
        b.start_element(&QName::new("urn:x", "r", "x"));
        b.attribute(&QName::local("a"), "1").unwrap();
        b.attribute(&QName::local("a"), "2").unwrap();
        assert!(b.can_add_attribute());
        b.text("he");
        b.text("");
        b.text("llo");
        assert!(!b.can_add_attribute());
        assert_eq!(
            b.attribute(&QName::local("b"), "1"),
            Err(BuildError::AttributeAfterChildren)
        );
        b.start_element(&QName::local("k"));
        assert_eq!(b.depth(), 2);
        b.end_element().unwrap();
        b.comment("c");
        b.end_element().unwrap();
        assert_eq!(b.end_element(), Err(BuildError::Unbalanced));
        let doc = b.finish();
        let r = doc.root().first_child().unwrap();
        assert_eq!(r.attributes().count(), 1);
        assert_eq!(r.attribute("", "a"), Some("2"));
        assert_eq!(r.children().count(), 3);
        assert_eq!(r.first_child().unwrap().string_value(), "hello");
        assert_eq!(
            to_xml_string(doc.root()),
            r#"<x:r xmlns:x="urn:x" a="2">hello<k/><!--c--></x:r>"#
        );
        assert_eq!(doc.lookup_name("urn:x", "r"), r.name_id());
        assert_eq!(doc.lookup_name("urn:x", "nope"), None);
    }

    #[test]
    fn builder_many_same_name_attributes() {
        let mut b = Builder::new_document(None);
        b.start_element(&QName::local("r"));
        for i in 0..100 {
            b.attribute(&QName::local(&format!("a{}", i % 20)), &i.to_string())
                .unwrap();
        }
        let doc = b.finish();
        let r = doc.root().first_child().unwrap();
        assert_eq!(r.attributes().count(), 20);
        assert_eq!(r.attribute("", "a3"), Some("83"));
    }

    #[test]
    fn builder_copy_and_fragments() {
        let src = parse(
            r#"<p:r xmlns:p="urn:p" xmlns:q="urn:q"><a q:x="1">t<!--c--><?pi d?></a><b/></p:r>"#,
        );
        let a = elem(&src, "a");
        let mut b = Builder::new_document(None);
        b.start_element(&QName::local("out"));
        b.copy(a, true).unwrap();
        b.copy(a, false).unwrap();
        b.copy(a.attributes().next().unwrap(), true).unwrap_err();
        b.end_element().unwrap();
        let doc = b.finish();
        assert_eq!(
            to_xml_string(doc.root()),
            r#"<out><a xmlns:p="urn:p" xmlns:q="urn:q" q:x="1">t<!--c--><?pi d?></a><a xmlns:q="urn:q" q:x="1">t<!--c--><?pi d?></a></out>"#
        );
        // Copy of a whole document copies its children.
        let mut b = Builder::new_document(None);
        b.copy(src.root(), true).unwrap();
        let copy = b.finish();
        assert_eq!(to_xml_string(copy.root()), to_xml_string(src.root()));
        assert_eq!(copy.root().string_value(), "t");
        // Parentless roots of any kind.
        let mut f = Builder::new_fragment();
        f.attribute(&QName::local("id"), "7").unwrap();
        let doc = f.finish();
        assert_eq!(doc.root().kind(), NodeKind::Attribute);
        assert_eq!(doc.root().parent(), None);
        assert_eq!(to_xml_string(doc.root()), r#"id="7""#);
        let mut f = Builder::new_fragment();
        f.text("x");
        let doc = f.finish();
        assert_eq!(doc.root().kind(), NodeKind::Text);
        let mut f = Builder::new_fragment();
        f.start_element(&QName::local("e"));
        f.attribute(&QName::local("a"), "1").unwrap();
        f.end_element().unwrap();
        assert_eq!(f.end_element(), Err(BuildError::Unbalanced));
        let doc = f.finish();
        assert_eq!(doc.root().parent(), None);
        assert_eq!(doc.root().attribute("", "a"), Some("1"));
        assert_eq!(
            Builder::new_fragment().finish().root().kind(),
            NodeKind::Document
        );
    }

    #[test]
    fn strip_whitespace_honours_xml_space() {
        let doc = parse("<r>\n <a> </a>\n <b xml:space='preserve'> <c> </c></b><d xml:space='preserve'><e xml:space='default'> </e></d> x </r>");
        let stripped = doc.strip_whitespace(&|q| q.local != "a");
        assert_eq!(
            to_xml_string(stripped.root()),
            "<r><a> </a><b xml:space=\"preserve\"> <c> </c></b><d xml:space=\"preserve\"><e xml:space=\"default\"/></d> x </r>"
        );
        assert_ne!(stripped.id(), doc.id());
    }

    #[test]
    fn serializer_escapes_and_declares() {
        let doc = parse("<r xmlns='urn:d' a='&quot;&lt;&amp;'>&lt;&amp;&gt;<s xmlns=''/></r>");
        assert_eq!(
            to_xml_string(doc.root()),
            r#"<r xmlns="urn:d" a="&quot;&lt;&amp;">&lt;&amp;&gt;<s xmlns=""/></r>"#
        );
        // A subtree gets the namespaces in scope from outside.
        let doc = parse("<p:r xmlns:p='urn:p'><p:a/></p:r>");
        let a = doc.root().first_child().unwrap().first_child().unwrap();
        assert_eq!(to_xml_string(a), r#"<p:a xmlns:p="urn:p"/>"#);
    }

    /// Memory factors (heap_size / input). See [`Document::heap_size`].
    #[test]
    fn memory_factors() {
        // (a) 100k empty elements.
        let a = format!("<r>{}</r>", "<a/>".repeat(100_000));
        let doc = parse(&a);
        let fa = doc.heap_size() as f64 / a.len() as f64;
        // (b) record-style XML.
        let mut b = String::from("<records>\n");
        for i in 0..10_000 {
            b.push_str(&format!(
                "  <record id=\"{i}\">\n    <name>Person number {i}</name>\n    <city>Berlin-Charlottenburg</city>\n    <amount currency=\"EUR\">{}.50</amount>\n  </record>\n",
                i * 7
            ));
        }
        b.push_str("</records>\n");
        let doc = parse(&b);
        let fb = doc.heap_size() as f64 / b.len() as f64;
        // (c) JSON array of 100k zeros.
        let c = format!("[{}0]", "0,".repeat(99_999));
        let doc = crate::json::json_to_xml(&c, &crate::json::JsonOptions::default()).unwrap();
        let fc = doc.heap_size() as f64 / c.len() as f64;
        // Unindented records and record-style JSON, for the docs.
        let flat: String = b.lines().map(str::trim).collect();
        let fb2 = parse(&flat).heap_size() as f64 / flat.len() as f64;
        let mut j = String::from("[");
        for i in 0..10_000 {
            j.push_str(&format!(
                "{{\"id\":{i},\"name\":\"Person number {i}\",\"city\":\"Berlin-Charlottenburg\",\"amount\":{}.5}},",
                i * 7
            ));
        }
        j.push_str("null]");
        let dj = crate::json::json_to_xml(&j, &crate::json::JsonOptions::default()).unwrap();
        let fj = dj.heap_size() as f64 / j.len() as f64;
        eprintln!("memory factors: empty elements {fa:.2}, records {fb:.2} (flat {fb2:.2}), json zeros {fc:.2}, json records {fj:.2}");
        assert!(fa <= 8.0, "{fa}");
        // Indented records: the whitespace text nodes cost a record each.
        assert!(fb <= 3.2, "{fb}");
        // 2 records (56 bytes) + 1 text byte per 2 input bytes.
        assert!(fc <= 30.0, "{fc}");
    }
}
