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

static NEXT_DOC: AtomicU64 = AtomicU64::new(1);

/// A finished, immutable tree (`Send + Sync`). The root is node 0; it is a
/// document node for parsed documents and may be any kind for trees built
/// with [`Builder::new_fragment`] (parentless elements, text, attributes).
#[derive(Debug)]
pub struct Document {
    pub(crate) id: u64,
    pub(crate) nodes: Vec<NodeRec>,
    pub(crate) names: Vec<QName>,
    pub(crate) name_index: HashMap<(String, String), NameId>,
    pub(crate) text: String,
    pub(crate) aux: String,
    /// Namespace declarations: (element index, prefix, uri), sorted by
    /// element index. An empty uri undeclares the prefix.
    pub(crate) ns_decls: Vec<(u32, String, String)>,
    /// Document URI / base URI, if known.
    pub uri: Option<String>,
}

/// A node: a document and an index. `Copy`, 16 bytes; equality is
/// identity; `Ord` is document order (across documents: by creation).
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    /// The tree.
    pub doc: &'a Document,
    /// The record index.
    pub idx: u32,
}

impl PartialEq for Node<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.idx == other.idx && std::ptr::eq(self.doc, other.doc)
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
        (self.doc.id, self.idx).cmp(&(other.doc.id, other.idx))
    }
}
impl std::hash::Hash for Node<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.doc.id.hash(state);
        self.idx.hash(state);
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
    #[error("XML document type declarations (DOCTYPE) are refused, at line {line}, column {column}")]
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

impl Document {
    /// Parses XML bytes (encoding from BOM / XML declaration: UTF-8,
    /// UTF-16, ISO-8859-x and the other encodings `encoding_rs` knows).
    /// DOCTYPE is refused; only predefined entities and character
    /// references are expanded. Time and memory are linear in the input.
    pub fn parse(bytes: &[u8], options: &ParseOptions) -> Result<Document, ParseError> {
        let _ = (bytes, options);
        todo!()
    }

    /// Parses XML text (already decoded).
    pub fn parse_str(text: &str, options: &ParseOptions) -> Result<Document, ParseError> {
        let _ = (text, options);
        todo!()
    }

    /// The root node (index 0).
    pub fn root(&self) -> Node<'_> {
        Node { doc: self, idx: 0 }
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
    pub fn heap_size(&self) -> usize {
        todo!()
    }

    /// The id of an interned name, if any node of this document has it.
    pub fn lookup_name(&self, uri: &str, local: &str) -> Option<NameId> {
        let _ = (uri, local);
        todo!()
    }

    /// The name with this id.
    pub fn name(&self, id: NameId) -> &QName {
        &self.names[id as usize]
    }

    /// A copy without the whitespace-only text nodes whose parent element
    /// `strip` says to strip (`xsl:strip-space`), honouring `xml:space`.
    pub fn strip_whitespace(&self, strip: &dyn Fn(&QName) -> bool) -> Document {
        let _ = strip;
        todo!()
    }
}

/// Iterator over nodes (children, attributes, axes).
pub type NodeIter<'a> = Box<dyn Iterator<Item = Node<'a>> + 'a>;

impl<'a> Node<'a> {
    /// The node kind.
    pub fn kind(self) -> NodeKind {
        todo!()
    }

    /// Expanded name (elements, attributes, PIs (local = target),
    /// namespace nodes (local = prefix)); `None` for others.
    pub fn name(self) -> Option<&'a QName> {
        todo!()
    }

    /// Interned name id, if named.
    pub fn name_id(self) -> Option<NameId> {
        todo!()
    }

    /// Parent (attributes: their element).
    pub fn parent(self) -> Option<Node<'a>> {
        todo!()
    }

    /// The root of the tree.
    pub fn root(self) -> Node<'a> {
        self.doc.root()
    }

    /// Children in document order (not attributes).
    pub fn children(self) -> impl Iterator<Item = Node<'a>> + 'a {
        std::iter::empty()
    }

    /// First child.
    pub fn first_child(self) -> Option<Node<'a>> {
        todo!()
    }

    /// Next sibling (none for attributes).
    pub fn next_sibling(self) -> Option<Node<'a>> {
        todo!()
    }

    /// Previous sibling (none for attributes).
    pub fn prev_sibling(self) -> Option<Node<'a>> {
        todo!()
    }

    /// Attributes of an element (empty for others).
    pub fn attributes(self) -> impl Iterator<Item = Node<'a>> + 'a {
        std::iter::empty()
    }

    /// The value of the attribute with this name.
    pub fn attribute(self, uri: &str, local: &str) -> Option<&'a str> {
        let _ = (uri, local);
        todo!()
    }

    /// Descendants in document order (no attributes), excluding self.
    pub fn descendants(self) -> impl Iterator<Item = Node<'a>> + 'a {
        std::iter::empty()
    }

    /// Index just after the subtree (descendant range is `idx+1..end`).
    pub fn subtree_end(self) -> u32 {
        todo!()
    }

    /// The string value: text content for documents/elements (one slice),
    /// the value of attributes, text, comments, PIs, namespace nodes.
    pub fn string_value(self) -> &'a str {
        todo!()
    }

    /// Namespace declarations made on this element (prefix, uri; "" =
    /// default namespace).
    pub fn namespace_decls(self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        std::iter::empty()
    }

    /// In-scope namespaces of an element (nearest declaration wins,
    /// undeclarations removed, `xml` included), sorted by prefix.
    pub fn in_scope_namespaces(self) -> Vec<(&'a str, &'a str)> {
        todo!()
    }

    /// Is this node an ancestor-or-self of `other`?
    pub fn contains(self, other: Node<'a>) -> bool {
        std::ptr::eq(self.doc, other.doc) && self.idx <= other.idx && other.idx < self.subtree_end()
    }

    /// `xml:base`-aware base URI (the document URI otherwise).
    pub fn base_uri(self) -> Option<String> {
        todo!()
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
#[derive(Debug)]
pub struct Builder {
    doc: Document,
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

impl Builder {
    /// A builder whose root is a document node.
    pub fn new_document(uri: Option<String>) -> Builder {
        let _ = uri;
        todo!()
    }

    /// A builder for a parentless tree: the first node added becomes the
    /// root (an element, text, comment, PI, attribute or namespace node).
    pub fn new_fragment() -> Builder {
        todo!()
    }

    /// Interns a name.
    pub fn intern(&mut self, name: &QName) -> NameId {
        let _ = name;
        todo!()
    }

    /// Starts an element.
    pub fn start_element(&mut self, name: &QName) {
        let _ = name;
        todo!()
    }

    /// Declares a namespace on the element just started (before children).
    pub fn namespace(&mut self, prefix: &str, uri: &str) -> Result<(), BuildError> {
        let _ = (prefix, uri);
        todo!()
    }

    /// Adds an attribute to the element just started (before children).
    pub fn attribute(&mut self, name: &QName, value: &str) -> Result<(), BuildError> {
        let _ = (name, value);
        todo!()
    }

    /// Ends the current element.
    pub fn end_element(&mut self) -> Result<(), BuildError> {
        todo!()
    }

    /// Appends text (merged with adjacent text).
    pub fn text(&mut self, text: &str) {
        let _ = text;
        todo!()
    }

    /// Appends a comment.
    pub fn comment(&mut self, text: &str) {
        let _ = text;
        todo!()
    }

    /// Appends a processing instruction.
    pub fn processing_instruction(&mut self, target: &str, data: &str) {
        let _ = (target, data);
        todo!()
    }

    /// Deep-copies `node` (with its in-scope namespaces when it is an
    /// element, if `namespaces` is true): a document node copies its
    /// children, an attribute becomes an attribute of the open element.
    pub fn copy(&mut self, node: Node<'_>, namespaces: bool) -> Result<(), BuildError> {
        let _ = (node, namespaces);
        todo!()
    }

    /// Is an element open whose attributes can still be added?
    pub fn can_add_attribute(&self) -> bool {
        todo!()
    }

    /// Depth of open elements.
    pub fn depth(&self) -> usize {
        todo!()
    }

    /// Finishes the tree (closing any open elements).
    pub fn finish(self) -> Document {
        let _ = &self.doc;
        todo!()
    }
}

/// Next document id (creation order, used for cross-document order).
pub(crate) fn next_doc_id() -> u64 {
    NEXT_DOC.fetch_add(1, Ordering::Relaxed)
}
