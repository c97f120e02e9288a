//! XPath 3.1 expressions of rule packages: compilation, a per-thread cache
//! of compiled programs, and evaluation against an [`InputDocument`].
//!
//! xee's compiled programs use `Rc` internally and are neither `Send` nor
//! `Sync`. A rule package (shared across threads in an `Arc`) therefore
//! keeps the expression *texts*; they are compiled once when the package is
//! loaded (to refuse bad expressions early) and then once per package
//! version **per worker thread**, on first use, into a thread-local cache.
//! No expression is ever compiled per message.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use xee_interpreter::context::{DocumentsRef, StaticContextBuilder, Variables};
use xee_interpreter::sequence::Sequence;
use xee_xpath::query::SequenceQuery;
use xee_xpath::{Queries, Query};
use xot::xmlname::OwnedName;
use xot::{Node, Xot};

use crate::input::InputDocument;

/// Name of the external variable holding the input channel.
pub const VAR_CHANNEL: &str = "channel";
/// Name of the external variable holding the payload's content type.
pub const VAR_CONTENT_TYPE: &str = "content-type";
/// Name of the external variable holding the envelope facts: an element
/// `<meta>` with one `<entry key="…">value</entry>` per correlation id.
pub const VAR_META: &str = "meta";

/// Human-readable form of an xee error: code, message, position.
pub(crate) fn describe(e: &xee_xpath::error::Error) -> String {
    let mut out = e.error.code();
    let message = e.error.message();
    if !message.is_empty() {
        out.push_str(": ");
        out.push_str(message.trim());
    }
    if let Some(span) = e.span {
        let range = span.range();
        out.push_str(&format!(" (at characters {}..{})", range.start, range.end));
    }
    out
}

/// Compiles one expression with the rule static context: external
/// variables `$channel` and `$content-type`, plus the package's namespace
/// prefixes.
pub(crate) fn compile(
    text: &str,
    namespaces: &[(String, String)],
) -> Result<SequenceQuery, xee_xpath::error::Error> {
    let mut builder = StaticContextBuilder::default();
    builder.variable_names([
        OwnedName::name(VAR_CHANNEL),
        OwnedName::name(VAR_CONTENT_TYPE),
        OwnedName::name(VAR_META),
    ]);
    for (prefix, uri) in namespaces {
        builder.add_namespace(prefix, uri);
    }
    Queries::default().sequence_with_context(text, builder.build())
}

/// The expressions of one package, as texts, plus the identity used to key
/// the per-thread cache.
#[derive(Debug)]
pub(crate) struct ExprSet {
    uid: u64,
    alive: Arc<()>,
    namespaces: Vec<(String, String)>,
    texts: Vec<String>,
}

/// Index of an expression inside its [`ExprSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExprId(usize);

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

struct CacheEntry {
    alive: Weak<()>,
    programs: Rc<Vec<SequenceQuery>>,
}

thread_local! {
    static CACHE: RefCell<HashMap<u64, CacheEntry>> = RefCell::new(HashMap::new());
}

impl ExprSet {
    /// An empty set with a fresh identity.
    pub(crate) fn new(namespaces: Vec<(String, String)>) -> Self {
        Self {
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
            namespaces,
            texts: Vec::new(),
        }
    }

    /// Compiles `text` (to check it) and adds it to the set.
    pub(crate) fn add(&mut self, text: &str) -> Result<ExprId, String> {
        compile(text, &self.namespaces).map_err(|e| describe(&e))?;
        self.texts.push(text.to_owned());
        Ok(ExprId(self.texts.len() - 1))
    }

    /// The source text of an expression.
    pub(crate) fn text(&self, id: ExprId) -> &str {
        self.texts.get(id.0).map(String::as_str).unwrap_or_default()
    }

    /// The compiled programs of this set on the current thread, compiling
    /// them on first use.
    fn programs(&self) -> Result<Rc<Vec<SequenceQuery>>, String> {
        CACHE.with(|cache| {
            if let Some(entry) = cache.borrow().get(&self.uid) {
                return Ok(entry.programs.clone());
            }
            let programs = self
                .texts
                .iter()
                .map(|text| compile(text, &self.namespaces).map_err(|e| describe(&e)))
                .collect::<Result<Vec<_>, _>>()?;
            let programs = Rc::new(programs);
            let mut cache = cache.borrow_mut();
            // Drop programs of packages that no longer exist (depot reload).
            cache.retain(|_, entry| entry.alive.strong_count() > 0);
            cache.insert(
                self.uid,
                CacheEntry {
                    alive: Arc::downgrade(&self.alive),
                    programs: programs.clone(),
                },
            );
            Ok(programs)
        })
    }
}

/// One evaluation session over a document: the arena, the document node
/// and the external variables, shared by all expressions evaluated in it.
pub(crate) struct Session<'a> {
    xot: &'a mut Xot,
    root: Node,
    documents: DocumentsRef,
    variables: Variables,
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        xot: &'a mut Xot,
        root: Node,
        channel: &str,
        content_type: &str,
        meta: &BTreeMap<String, String>,
    ) -> Self {
        let mut documents = xee_interpreter::xml::Documents::new();
        // Registering the root lets `root()`/document-order work as usual;
        // a fresh collection cannot hold a duplicate, so this cannot fail.
        let _ = documents.add_root(None, root);
        let meta = meta_element(xot, meta);
        if let Some(doc) = meta.and_then(|m| xot.parent(m)) {
            let _ = documents.add_root(None, doc);
        }
        let mut variables = Variables::new();
        variables.insert(
            OwnedName::name(VAR_CHANNEL),
            Sequence::from(channel.to_owned()),
        );
        variables.insert(
            OwnedName::name(VAR_CONTENT_TYPE),
            Sequence::from(content_type.to_owned()),
        );
        variables.insert(
            OwnedName::name(VAR_META),
            meta.map(Sequence::from).unwrap_or_default(),
        );
        Self {
            xot,
            root,
            documents: DocumentsRef::from(documents),
            variables,
        }
    }

    fn run(&mut self, set: &ExprSet, id: ExprId) -> Result<Sequence, String> {
        let programs = set.programs()?;
        let query = programs
            .get(id.0)
            .ok_or_else(|| format!("internal: no expression #{}", id.0))?;
        self.run_query(query)
    }

    fn run_query(&mut self, query: &SequenceQuery) -> Result<Sequence, String> {
        let program = query.program();
        let mut builder = program.dynamic_context_builder();
        builder
            .documents(self.documents.clone())
            .context_node(self.root)
            .variables(self.variables.clone());
        let context = builder.build();
        let result = program
            .runnable(&context)
            .many(self.xot)
            .map_err(|e| describe(&e));
        result
    }

    /// Effective boolean value of an expression.
    pub(crate) fn boolean(&mut self, set: &ExprSet, id: ExprId) -> Result<bool, String> {
        let sequence = self.run(set, id)?;
        Self::ebv(&sequence)
    }

    fn ebv(sequence: &Sequence) -> Result<bool, String> {
        sequence
            .effective_boolean_value()
            .map_err(|e| format!("{}: no effective boolean value", e.code()))
    }

    /// String value of an expression, whitespace-trimmed; an empty sequence
    /// gives the empty string, more than one item is an error.
    pub(crate) fn string(&mut self, set: &ExprSet, id: ExprId) -> Result<String, String> {
        let sequence = self.run(set, id)?;
        self.single_string(&sequence)
    }

    fn single_string(&self, sequence: &Sequence) -> Result<String, String> {
        let count = sequence.iter().count();
        if count > 1 {
            return Err(format!(
                "expression returned {count} items, expected at most one (wrap it in string(( … )[1]) to pick the first)"
            ));
        }
        let value = sequence
            .string_value(self.xot)
            .map_err(|e| format!("{}: no string value", e.code()))?;
        Ok(value.trim().to_owned())
    }
}

/// Builds `<meta><entry key="k">v</entry>…</meta>` in its own document
/// inside the input's arena (it lives as long as the input document; a few
/// nodes per routing). `None` only if the arena refuses the tree, which a
/// fresh document cannot cause.
fn meta_element(xot: &mut Xot, meta: &BTreeMap<String, String>) -> Option<Node> {
    let doc = xot.new_document();
    let meta_name = xot.add_name("meta");
    let entry_name = xot.add_name("entry");
    let key_name = xot.add_name("key");
    let el = xot.new_element(meta_name);
    xot.append(doc, el).ok()?;
    for (k, v) in meta {
        let entry = xot.new_element(entry_name);
        xot.attributes_mut(entry).insert(key_name, k.clone());
        let text = xot.new_text(v);
        xot.append(entry, text).ok()?;
        xot.append(el, entry).ok()?;
    }
    Some(el)
}

/// Runs `f` with a session over `doc`.
pub(crate) fn with_session<R>(
    doc: &InputDocument,
    channel: &str,
    content_type: &str,
    f: impl FnOnce(&mut Session<'_>) -> R,
) -> R {
    let meta = doc.meta();
    doc.with_tree(|xot, root| {
        let mut session = Session::new(xot, root, channel, content_type, meta);
        f(&mut session)
    })
}

impl InputDocument {
    /// Evaluates an ad-hoc XPath expression (same static context as rule
    /// expressions, plus `namespaces`) and returns its string value, as
    /// `extract.*` would. Compiles on every call: meant for tools and
    /// tests, not the message path.
    pub fn evaluate_string(
        &self,
        expression: &str,
        namespaces: &[(&str, &str)],
        channel: &str,
        content_type: &str,
    ) -> Result<String, String> {
        let query = compile_adhoc(expression, namespaces)?;
        with_session(self, channel, content_type, |s| {
            let sequence = s.run_query(&query)?;
            s.single_string(&sequence)
        })
    }

    /// Evaluates an ad-hoc XPath expression and returns its effective
    /// boolean value, as `match.condition` would. Compiles on every call.
    pub fn evaluate_boolean(
        &self,
        expression: &str,
        namespaces: &[(&str, &str)],
        channel: &str,
        content_type: &str,
    ) -> Result<bool, String> {
        let query = compile_adhoc(expression, namespaces)?;
        with_session(self, channel, content_type, |s| {
            let sequence = s.run_query(&query)?;
            Session::ebv(&sequence)
        })
    }
}

fn compile_adhoc(expression: &str, namespaces: &[(&str, &str)]) -> Result<SequenceQuery, String> {
    let namespaces: Vec<(String, String)> = namespaces
        .iter()
        .map(|(p, u)| ((*p).to_owned(), (*u).to_owned()))
        .collect();
    compile(expression, &namespaces).map_err(|e| describe(&e))
}
