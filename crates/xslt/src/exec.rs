//! Running a compiled stylesheet: template matching, instruction
//! execution, and the XSLT functions the XPath engine calls back into.
//!
//! One run ([`Run`]) owns the dynamic state of a transformation: the
//! local variable frames, the lazily evaluated globals, the key indexes,
//! and a stack of *sinks* — where constructed nodes go:
//!
//! * [`Sink::Tree`]: a [`Builder`] building the result tree, a temporary
//!   tree (`xsl:variable` with content) or one parentless node;
//! * [`Sink::Seq`]: a sequence of items (a sequence constructor with an
//!   `as` type, the body of an `xsl:function`): each constructed node
//!   becomes its own parentless tree, atomic values stay atomic.
//!
//! Every tree created during the run lives in the run's [`DocArena`], so
//! nodes of temporary trees can be held in variables for the whole run.
//! XPath expressions are evaluated with the run itself as the engine's
//! [`Host`]: it supplies variables, `current()`, `key()`,
//! `format-number()`, `document()` and the stylesheet's functions.
//! Template and function invocations enter the environment's recursion
//! budget ([`Env::enter`]) and grow the stack on demand, so runaway
//! recursion ends with an error instead of a stack overflow. Every
//! instruction (and every expression evaluation) ticks the caller's
//! cooperative time budget (`drehscheibe_xpath::budget`), so a transform
//! run inside `budget::with_budget` stops with a dynamic error once the
//! deadline passes or the work is cancelled.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use drehscheibe_xpath::tree::{BuildError, ParseOptions};
use drehscheibe_xpath::value::{xpath1_parse_number, Atomic};
use drehscheibe_xpath::{
    Builder, DocArena, Document, Env, Focus, Host, Item, Node, NodeKind, QName, Sequence,
};

use crate::error::TransformError;
use crate::ir::*;
use crate::pattern::{element_name_matches, test_matches, Alt, Axis, Pattern, Root, Step};
use crate::xpath::{
    decode_fn, decode_var, resolve_lexical_qname, ExprId, HostFn, VarRef, XName, XsltFn, XSL_NS,
};
use crate::Stylesheet;
use drehscheibe_xpath::functions::format_number::{format_number_list, Picture};

type R<T> = Result<T, TransformError>;
type XResult<T> = drehscheibe_xpath::Result<T>;

/// Stack growth: keep this much free, grow by this much.
const RED_ZONE: usize = 256 * 1024;
const STACK_GROWTH: usize = 4 * 1024 * 1024;

/// Deepest nesting of template and function invocations.
const MAX_DEPTH: usize = 10_000;

#[derive(Debug, Clone)]
enum GlobalState<'a> {
    Pending,
    InProgress,
    Done(Sequence<'a>),
}

/// Kind of a node for template rule lookup (names are per document).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum NodeKey {
    Document,
    Element(u64, u32),
    Attribute(u64, u32),
    Text,
    Comment,
    Pi,
    Other,
}

/// The index of one `xsl:key` over one tree: key value → nodes in
/// document order.
/// A key's index for one document: each value's nodes as a ready
/// sequence in document order, so that the usual `key('k', $one-value)`
/// returns a shared sequence (a reference count) without copying its group.
type KeyIndex<'a> = HashMap<KeyValue, Sequence<'a>>;

/// A key value as `key()` compares it (XSLT 2.0 §16.3: by `eq`, values of
/// incomparable types never match): strings, untyped and URI values by
/// their string; numbers of every numeric type by value (as a double;
/// NaN matches nothing); date/time values by their instant (implicit
/// timezone for those without one); other types by type and canonical
/// form. In backwards-compatible mode every value is its string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyValue {
    Str(String),
    Num(u64),
    Bool(bool),
    Other(&'static str, String),
}

impl KeyValue {
    fn of(item: &Item<'_>, strings: bool, tz: i16) -> Option<KeyValue> {
        let a = match item {
            Item::Node(n) => return Some(KeyValue::Str(n.string_value().to_string())),
            Item::Atomic(a) => a,
            _ => return None,
        };
        if strings {
            return Some(KeyValue::Str(a.to_xs_string()));
        }
        let num = |f: f64| {
            if f.is_nan() {
                None
            } else if f == 0.0 {
                Some(KeyValue::Num(0.0f64.to_bits()))
            } else {
                Some(KeyValue::Num(f.to_bits()))
            }
        };
        match a {
            Atomic::String(s) | Atomic::Untyped(s) | Atomic::AnyUri(s) => {
                Some(KeyValue::Str(s.to_string()))
            }
            Atomic::Boolean(b) => Some(KeyValue::Bool(*b)),
            Atomic::Integer(i) => num(*i as f64),
            Atomic::Double(d) => num(*d),
            Atomic::Float(f) => num(f64::from(*f)),
            Atomic::Decimal(_) => num(a.to_xs_string().parse::<f64>().ok()?),
            Atomic::DateTime(d) => Some(KeyValue::Other("dateTime", d.instant(tz).to_string())),
            Atomic::Date(d) => Some(KeyValue::Other(
                "date",
                d.to_datetime().instant(tz).to_string(),
            )),
            Atomic::Time(t) => Some(KeyValue::Other(
                "time",
                t.to_reference_datetime().instant(tz).to_string(),
            )),
            Atomic::QName(q) => Some(KeyValue::Other("QName", q.clark())),
            Atomic::Duration(..) => Some(KeyValue::Other("duration", a.to_xs_string())),
            other => Some(KeyValue::Other(
                drehscheibe_xpath::cast::primitive_name(other.type_of()),
                other.to_xs_string(),
            )),
        }
    }
}

/// One sort key value.
#[derive(Debug)]
enum SortKey {
    /// The empty sequence (typed sorting): before everything.
    Empty,
    Num(f64),
    Text(String),
    /// A typed value other than numbers and strings (dates, booleans, …).
    Typed(Atomic),
}

/// Where constructed nodes go.
enum Sink<'a> {
    /// A tree under construction.
    Tree(Box<Builder>),
    /// A sequence of items.
    Seq(Vec<Item<'a>>),
}

/// What a run produced.
pub(crate) struct Outcome {
    pub bytes: Vec<u8>,
    pub messages: Vec<String>,
}

/// Runs `stylesheet` over `doc`.
pub(crate) fn run(
    stylesheet: &Stylesheet,
    doc: &Document,
    params: &BTreeMap<String, String>,
    invocation: &crate::Invocation,
) -> R<Outcome> {
    let c = stylesheet.compiled();
    if invocation.initial_mode.is_some() && doc.root().first_child().is_none() {
        // a document node without children cannot come from parsing: the
        // caller has no source document to apply the initial mode to
        return Err(TransformError::Input {
            message: "an initial mode needs a source document (XTDE0044)".to_string(),
        });
    }
    let mode = match &invocation.initial_mode {
        // the unnamed mode (there is no `xsl:default-mode` in the subset)
        None => 0,
        Some(m) if m == "#unnamed" || m == "#default" => 0,
        Some(m) => *c.mode_names.get(m).ok_or_else(|| TransformError::Input {
            message: format!("the stylesheet has no mode {m} (XTDE0045)"),
        })?,
    };
    let initial_template = match &invocation.initial_template {
        None => None,
        Some(t) => Some(
            *c.template_names
                .get(t)
                .ok_or_else(|| TransformError::Input {
                    message: format!("the stylesheet has no template named {t} (XTDE0040)"),
                })?,
        ),
    };
    if doc.root().kind() != NodeKind::Document {
        return Err(TransformError::Input {
            message: "the input node is not a document node".into(),
        });
    }
    for g in &c.globals {
        if g.is_param && g.required && !params.contains_key(&g.name.key()) {
            return Err(TransformError::MissingParam { name: g.name.key() });
        }
    }
    let arena = DocArena::new();
    let mut env = Env::new(&arena);
    env.max_depth = MAX_DEPTH;
    let source: &Document = if c.space_rules.iter().any(|r| r.strip) {
        let rules = &c.space_rules;
        let stripped = doc.strip_whitespace(&|name: &QName| strip_rule(rules, name));
        arena.alloc(stripped)
    } else {
        doc
    };
    let source = source.root();
    let mut run = Run {
        c,
        env: &env,
        params,
        globals: vec![GlobalState::Pending; c.globals.len()],
        locals: Vec::new(),
        base: 0,
        keys: HashMap::new(),
        sinks: vec![Sink::Tree(Box::new(Builder::new_document(None)))],
        names: &c.names,
        rule_cache: rustc_hash::FxHashMap::default(),
        pattern_sets: HashMap::new(),
        ns_scratch: (Vec::new(), Vec::new()),
        keys_building: Vec::new(),
        key_names: Vec::new(),
        match_subject: None,
        source,
        messages: Vec::new(),
        supplied: None,
        current: None,
        pending: None,
        pictures: HashMap::new(),
        documents: HashMap::new(),
        stylesheet_doc: None,
        cur_expr: usize::MAX,
        tree_base: 0,
        ext: Ext::default(),
    };
    let focus = Focus::of(Item::Node(source));
    let r = match initial_template {
        Some(t) => run.invoke(t, Some(&focus), &[], mode, None),
        None => run.apply(&[source], mode, &[], None),
    };
    r?;
    let result = match run.sinks.pop() {
        Some(Sink::Tree(b)) => (*b).finish(),
        _ => {
            return Err(TransformError::Serialize {
                message: "internal error: result tree lost".into(),
            })
        }
    };
    let bytes = crate::serialize::serialize(result.root(), stylesheet.output())?;
    Ok(Outcome {
        bytes,
        messages: std::mem::take(&mut run.messages),
    })
}

/// Should whitespace-only text children of an element named `name` be
/// stripped (`xsl:strip-space` / `xsl:preserve-space`, best match wins)?
fn strip_rule(rules: &[SpaceRule], name: &QName) -> bool {
    let mut best: Option<&SpaceRule> = None;
    for rule in rules {
        if !element_name_matches(name, &rule.test) {
            continue;
        }
        let better = match best {
            None => true,
            Some(b) => (rule.precedence, rule.priority) >= (b.precedence, b.priority),
        };
        if better {
            best = Some(rule);
        }
    }
    best.is_some_and(|r| r.strip)
}

struct Run<'a, 'e> {
    c: &'a Compiled,
    env: &'e Env<'a>,
    params: &'e BTreeMap<String, String>,
    globals: Vec<GlobalState<'a>>,
    /// Local variable slots of all active frames.
    locals: Vec<Sequence<'a>>,
    /// Start of the current frame in `locals`.
    base: usize,
    /// Key indexes per (key, document id): string value → nodes in
    /// document order.
    keys: HashMap<(usize, u64), Rc<KeyIndex<'a>>>,
    sinks: Vec<Sink<'a>>,
    /// The static names of the stylesheet as engine names.
    /// The stylesheet's static names (built once when it was compiled).
    names: &'a [QName],
    rule_cache: rustc_hash::FxHashMap<(usize, NodeKey), Arc<[Rule]>>,
    /// Node sets of rooted and general patterns per (head expression,
    /// tree root), sorted in document order (see `pattern.rs`).
    pattern_sets: HashMap<(ExprId, Node<'a>), Rc<Vec<Node<'a>>>>,
    /// Scratch buffers of [`Run::copy_namespaces`] (in-scope namespaces,
    /// prefixes seen), kept so that copying an element does not allocate.
    ns_scratch: (Vec<(&'a str, &'a str)>, Vec<&'a str>),
    /// Keys whose index is being built (a key used in its own match or
    /// use is circular: XTDE0640).
    keys_building: Vec<(usize, u64)>,
    /// `key()` names resolved in this run: (namespace context, lexical
    /// name, key index).
    key_names: Vec<(usize, String, usize)>,
    /// The node a path pattern is being matched against (`current()` in
    /// the predicates of its steps).
    match_subject: Option<Node<'a>>,
    source: Node<'a>,
    messages: Vec<String>,
    /// The value being coerced to an `as` type.
    supplied: Option<Sequence<'a>>,
    /// `current()`: the context item of the running instruction.
    current: Option<Item<'a>>,
    /// An error raised inside a host call, passed through the engine.
    pending: Option<TransformError>,
    /// Parsed `format-number()` pictures by (decimal format, picture).
    pictures: crate::ir::PictureCache,
    /// Documents loaded by `document()`.
    documents: HashMap<PathBuf, &'a Document>,
    /// The principal stylesheet module as a document (`document('')`).
    stylesheet_doc: Option<&'a Document>,
    /// The expression being evaluated (its static base URI and module;
    /// `usize::MAX` outside any).
    cur_expr: ExprId,
    /// The static base URI (index into `bases`) for the next temporary
    /// tree a variable builds.
    tree_base: u32,
    /// XSLT 2.0/3.0 dynamic context (see [`Ext`]).
    ext: Ext<'a>,
}

const NO_AT: At = At {
    file: 0,
    line: 0,
    base: 0,
};

impl<'a> Run<'a, '_> {
    // ---- errors -----------------------------------------------------------

    fn derr(&self, at: At, message: impl Into<String>) -> TransformError {
        TransformError::Dynamic {
            file: self.c.files.get(at.file).cloned().unwrap_or_default(),
            line: at.line,
            message: message.into(),
        }
    }

    fn expr_at(&self, id: ExprId) -> At {
        self.c
            .exprs
            .get(id)
            .map(|d| At {
                file: d.file,
                line: d.line,
                base: 0,
            })
            .unwrap_or(NO_AT)
    }

    fn expr_err(&self, id: ExprId, message: impl Into<String>) -> TransformError {
        self.derr(self.expr_at(id), message)
    }

    fn build_err(&self, at: At, e: BuildError) -> TransformError {
        self.derr(at, e.to_string())
    }

    /// Passes a run error through the engine: kept aside and restored when
    /// the evaluation that called the host returns its error.
    fn stash(&mut self, e: TransformError) -> drehscheibe_xpath::Error {
        let message = e.to_string();
        self.pending = Some(e);
        drehscheibe_xpath::Error::new("DSXT0001", message)
    }

    // ---- XPath evaluation ---------------------------------------------------

    fn eval(&mut self, id: ExprId, f: Option<&Focus<'a>>) -> R<Sequence<'a>> {
        self.eval_current(id, f, f.map(|f| f.item.clone()))
    }

    /// [`Self::eval`] with `current()` given apart from the focus (pattern
    /// predicates: `current()` is the node being matched).
    fn eval_current(
        &mut self,
        id: ExprId,
        f: Option<&Focus<'a>>,
        current: Option<Item<'a>>,
    ) -> R<Sequence<'a>> {
        let c: &'a Compiled = self.c;
        let Some(def) = c.exprs.get(id) else {
            return Err(self.expr_err(id, "internal error: unknown expression"));
        };
        let saved = std::mem::replace(&mut self.current, current);
        let saved_expr = std::mem::replace(&mut self.cur_expr, id);
        let env = self.env;
        let r = def.expr.evaluate(env, self, f);
        self.current = saved;
        self.cur_expr = saved_expr;
        match r {
            Ok(v) => {
                self.pending = None;
                Ok(v)
            }
            Err(e) => match self.pending.take() {
                Some(inner) => Err(inner),
                None => Err(self.expr_err(id, format!("{e} in `{}`", def.expr.text()))),
            },
        }
    }

    fn ebv(&mut self, id: ExprId, f: Option<&Focus<'a>>) -> R<bool> {
        let c: &'a Compiled = self.c;
        let Some(def) = c.exprs.get(id) else {
            return Err(self.expr_err(id, "internal error: unknown expression"));
        };
        let saved = std::mem::replace(&mut self.current, f.map(|f| f.item.clone()));
        let saved_expr = std::mem::replace(&mut self.cur_expr, id);
        let env = self.env;
        let r = def.expr.evaluate_bool(env, self, f);
        self.current = saved;
        self.cur_expr = saved_expr;
        match r {
            Ok(v) => {
                self.pending = None;
                Ok(v)
            }
            Err(e) => match self.pending.take() {
                Some(inner) => Err(inner),
                None => Err(self.expr_err(id, format!("{e} in `{}`", def.expr.text()))),
            },
        }
    }

    fn global(&mut self, g: usize) -> R<Sequence<'a>> {
        let c = self.c;
        match self.globals.get(g) {
            Some(GlobalState::Done(s)) => return Ok(s.clone()),
            Some(GlobalState::InProgress) => {
                let at = c.globals.get(g).map(|g| g.at).unwrap_or(NO_AT);
                return Err(self.derr(at, "circular definition of a global variable (XTDE0640)"));
            }
            Some(GlobalState::Pending) => {}
            None => return Ok(Sequence::Empty),
        }
        let Some(def) = c.globals.get(g) else {
            return Ok(Sequence::Empty);
        };
        if let Some(state) = self.globals.get_mut(g) {
            *state = GlobalState::InProgress;
        }
        let supplied = if def.is_param {
            self.params.get(&def.name.key())
        } else {
            None
        };
        let focus = Focus::of(Item::Node(self.source));
        let value = match supplied {
            Some(v) => {
                let untyped = Sequence::atomic(Atomic::untyped(v));
                match def.coerce {
                    Some(id) => self.coerce(id, untyped)?,
                    None => untyped,
                }
            }
            None => {
                let saved_base = self.base;
                self.base = self.locals.len();
                self.locals.resize(self.base + def.slots, Sequence::Empty);
                self.tree_base = def.at.base;
                let out = self.value(&def.value, Some(&focus), 0);
                self.locals.truncate(self.base);
                self.base = saved_base;
                out?
            }
        };
        if let Some(state) = self.globals.get_mut(g) {
            *state = GlobalState::Done(value.clone());
        }
        Ok(value)
    }

    /// Converts `value` by a coercion expression (`as` types).
    fn coerce(&mut self, id: ExprId, value: Sequence<'a>) -> R<Sequence<'a>> {
        let saved = self.supplied.replace(value);
        let r = self.eval(id, None);
        self.supplied = saved;
        r
    }

    // ---- the XSLT functions ---------------------------------------------------

    fn call_host(&mut self, id: u32, args: Vec<Sequence<'a>>) -> R<Sequence<'a>> {
        let Some(f) = decode_fn(id) else {
            return Err(self.derr(NO_AT, format!("internal error: unknown host function {id}")));
        };
        let (f, ns) = match f {
            HostFn::User(index) => return self.call_user(index, args),
            HostFn::Xslt(f, ns) => (f, ns),
        };
        let arg_str = |i: usize| -> String {
            args.get(i)
                .and_then(|s| s.first())
                .map(|item| match item {
                    Item::Atomic(a) => a.to_xs_string(),
                    Item::Node(n) => n.string_value().to_string(),
                    _ => String::new(),
                })
                .unwrap_or_default()
        };
        let c = self.c;
        let no_namespaces = crate::xpath::NsCtx::default();
        let nsctx = c.nsctx.get(ns).unwrap_or(&no_namespaces);
        let qname = |lexical: &str| resolve_lexical_qname(lexical, nsctx);
        match f {
            XsltFn::Current => Ok(match &self.current {
                Some(i) => Sequence::One(i.clone()),
                None => Sequence::Empty,
            }),
            XsltFn::CurrentGroup => Ok(match self.ext.groups.last() {
                Some((g, _)) => Sequence::from_vec(g.as_ref().clone()),
                None => Sequence::Empty,
            }),
            XsltFn::CurrentGroupingKey => Ok(match self.ext.groups.last() {
                Some((_, k)) => k.clone(),
                None => Sequence::Empty,
            }),
            XsltFn::RegexGroup => {
                let n = match args.first().and_then(|s| s.first()) {
                    Some(Item::Atomic(Atomic::Integer(n))) => usize::try_from(*n).ok(),
                    _ => None,
                };
                let text = match (self.ext.regex_groups.last(), n) {
                    (Some(groups), Some(n)) => groups.get(n).cloned().unwrap_or_default(),
                    _ => String::new(),
                };
                Ok(Sequence::string(&text))
            }
            XsltFn::Key | XsltFn::Key3 => {
                let name = arg_str(0);
                // The name is nearly always a literal: resolve each
                // (namespace context, name) once per run.
                let cached = self
                    .key_names
                    .iter()
                    .find(|(n, text, _)| *n == ns && *text == name)
                    .map(|(_, _, key)| *key);
                let key = cached.or_else(|| {
                    let key = qname(&name).and_then(|q| c.key_names.get(&q.key()).copied())?;
                    self.key_names.push((ns, name.clone(), key));
                    Some(key)
                });
                let Some(key) = key else {
                    return Err(self.derr(
                        NO_AT,
                        format!("key(): no xsl:key named '{name}' (XTDE1260)"),
                    ));
                };
                let Some(top) = args.get(2).and_then(|s| s.first()).and_then(Item::as_node) else {
                    return Err(
                        self.derr(NO_AT, "key(): the context item is not a node (XTDE1270)")
                    );
                };
                let root = top.root();
                let index = self.key_index(key, root)?;
                let strings = c.keys.get(key).is_some_and(|k| k.string_values);
                let tz = self.env.implicit_timezone;
                let wanted: Vec<KeyValue> = args
                    .get(1)
                    .map(|values| {
                        values
                            .iter()
                            .filter_map(|v| KeyValue::of(v, strings, tz))
                            .collect()
                    })
                    .unwrap_or_default();
                let whole_document = f == XsltFn::Key || top.kind() == NodeKind::Document;
                if let ([one], true) = (wanted.as_slice(), whole_document) {
                    return Ok(index.get(one).cloned().unwrap_or_default());
                }
                let mut nodes: Vec<Node<'a>> = Vec::new();
                for s in &wanted {
                    if let Some(found) = index.get(s) {
                        nodes.extend(found.iter().filter_map(Item::as_node));
                    }
                }
                if !whole_document {
                    nodes.retain(|n| top.contains(*n));
                }
                nodes.sort();
                nodes.dedup();
                Ok(Sequence::from_nodes(nodes))
            }
            XsltFn::FormatNumber => {
                let format = match args.get(2).and_then(|s| s.first()) {
                    None => Some(0),
                    Some(_) => {
                        let name = arg_str(2);
                        qname(&name).and_then(|q| c.format_names.get(&q.key()).copied())
                    }
                };
                let Some(format) = format else {
                    return Err(self.derr(
                        NO_AT,
                        format!(
                            "format-number(): unknown decimal format '{}' (FODF1280)",
                            arg_str(2)
                        ),
                    ));
                };
                let key = (format, arg_str(1));
                let parsed = match c.pictures.get(&key).or_else(|| self.pictures.get(&key)) {
                    Some(p) => p.clone(),
                    None => {
                        let df = c.decimal_formats.get(format).cloned().unwrap_or_default();
                        let p = std::sync::Arc::new(
                            Picture::parse(&key.1, &df)
                                .map_err(|e| self.derr(NO_AT, e.to_string()))?,
                        );
                        self.pictures.insert(key, p.clone());
                        p
                    }
                };
                let value = args.first().cloned().unwrap_or_default();
                if value.len() > 1 && !c.backwards_compatible {
                    return Err(self.derr(
                        NO_AT,
                        "format-number(): the value must be a single number (XPTY0004)",
                    ));
                }
                let num = match value.first() {
                    Some(Item::Atomic(a)) if a.is_stringlike() => {
                        Atomic::Double(xpath1_parse_number(&a.to_xs_string()))
                    }
                    Some(Item::Atomic(a)) => a.clone(),
                    Some(Item::Node(n)) => Atomic::Double(xpath1_parse_number(n.string_value())),
                    _ => Atomic::Double(f64::NAN),
                };
                Ok(Sequence::string(
                    &parsed.format_with(&num, c.backwards_compatible),
                ))
            }
            XsltFn::Document => {
                let mut out = Vec::new();
                // document($uris, $node): relative to the base URI of $node
                let base_node = args
                    .get(1)
                    .and_then(|s| s.first())
                    .and_then(|i| i.as_node());
                let explicit = base_node.map(|n| n.base_uri());
                if let Some(uris) = args.first() {
                    for item in uris.iter() {
                        let (uri, base) = match item {
                            Item::Atomic(a) => (a.to_xs_string(), None),
                            // relative to the node's own base URI
                            Item::Node(n) => (n.string_value().to_string(), n.base_uri()),
                            _ => continue,
                        };
                        let base = match &explicit {
                            Some(b) => b.clone(),
                            None => base,
                        };
                        out.push(self.load_document_from(&uri, base)?.root());
                    }
                }
                out.sort();
                out.dedup();
                Ok(Sequence::from_nodes(out))
            }
            XsltFn::SystemProperty => {
                let name = arg_str(0);
                let value = match qname(&name) {
                    Some(q) if q.namespace() == XSL_NS => {
                        crate::xpath::system_property(q.local_name(), c.backwards_compatible)
                    }
                    _ => "",
                };
                Ok(Sequence::string(value))
            }
            XsltFn::FunctionAvailable => {
                let name = arg_str(0);
                let arity = args.get(1).and_then(|s| s.first()).and_then(|i| match i {
                    Item::Atomic(Atomic::Integer(n)) => usize::try_from(*n).ok(),
                    _ => None,
                });
                let q = if name.contains(':') || name.starts_with("Q{") {
                    qname(&name)
                } else {
                    Some(XName::new(
                        name.trim().to_string(),
                        drehscheibe_xpath::functions::FN.to_string(),
                        String::new(),
                    ))
                };
                let Some(q) = q else {
                    return Err(self.derr(
                        NO_AT,
                        format!("function-available(): '{name}' is not a valid EQName with a declared prefix (XTDE1400)"),
                    ));
                };
                Ok(Sequence::boolean(function_available(c, &q, arity)))
            }
            XsltFn::ElementAvailable => {
                let name = arg_str(0);
                let Some(q) = qname(&name) else {
                    return Err(self.derr(
                        NO_AT,
                        format!("element-available(): '{name}' is not a valid EQName with a declared prefix (XTDE1440)"),
                    ));
                };
                let available =
                    q.namespace() == XSL_NS && SUPPORTED_INSTRUCTIONS.contains(&q.local_name());
                Ok(Sequence::boolean(available))
            }
            XsltFn::TypeAvailable => {
                let name = arg_str(0);
                let Some(q) = qname(&name) else {
                    return Err(self.derr(
                        NO_AT,
                        format!("type-available(): '{name}' is not a valid EQName with a declared prefix (XTDE1428)"),
                    ));
                };
                let available = crate::xpath::type_available(&q);
                Ok(Sequence::boolean(available))
            }
            XsltFn::UnparsedEntityUri | XsltFn::UnparsedEntityPublicId => Ok(Sequence::string("")),
            XsltFn::AvailableSystemProperties
            | XsltFn::UnparsedText
            | XsltFn::UnparsedTextLines
            | XsltFn::UnparsedTextAvailable
            | XsltFn::DocAvailable => self.resource_fn(f, &args),
        }
    }

    /// `available-system-properties()`, `unparsed-text()`,
    /// `unparsed-text-lines()`, `unparsed-text-available()` and
    /// `doc-available()`. Text resources are restricted like
    /// [`Self::load_document`]: relative references to local files next
    /// to the stylesheet.
    fn resource_fn(&mut self, f: XsltFn, args: &[Sequence<'a>]) -> R<Sequence<'a>> {
        let uri = args.first().and_then(|s| s.first()).map(|item| match item {
            Item::Atomic(a) => Some(a.to_xs_string()),
            Item::Node(n) => Some(n.string_value().to_string()),
            _ => None,
        });
        match f {
            XsltFn::AvailableSystemProperties => {
                let names = [
                    "version",
                    "vendor",
                    "vendor-url",
                    "product-name",
                    "product-version",
                    "is-schema-aware",
                    "supports-serialization",
                    "supports-backwards-compatibility",
                    "supports-namespace-axis",
                    "supports-streaming",
                    "supports-dynamic-evaluation",
                    "supports-higher-order-functions",
                    "xpath-version",
                    "xsd-version",
                ];
                Ok(Sequence::from_vec(
                    names
                        .iter()
                        .map(|l| {
                            Item::Atomic(Atomic::QName(std::sync::Arc::new(QName::new(
                                XSL_NS, l, "xsl",
                            ))))
                        })
                        .collect(),
                ))
            }
            XsltFn::DocAvailable => match uri {
                Some(Some(u)) => Ok(Sequence::boolean(self.load_document_from(&u, None).is_ok())),
                _ => Ok(Sequence::boolean(false)),
            },
            _ => {
                let text = match uri {
                    Some(Some(u)) => self.load_text(&u),
                    _ if f == XsltFn::UnparsedTextAvailable => return Ok(Sequence::boolean(false)),
                    _ => return Ok(Sequence::Empty),
                };
                match f {
                    XsltFn::UnparsedTextAvailable => Ok(Sequence::boolean(text.is_ok())),
                    XsltFn::UnparsedTextLines => {
                        let text = text?;
                        let text = text.replace("\r\n", "\n").replace('\r', "\n");
                        let mut lines: Vec<&str> = text.split('\n').collect();
                        if lines.last() == Some(&"") {
                            lines.pop();
                        }
                        Ok(Sequence::from_vec(
                            lines
                                .into_iter()
                                .map(|l| Item::Atomic(Atomic::string(l)))
                                .collect(),
                        ))
                    }
                    _ => Ok(Sequence::string(&text?)),
                }
            }
        }
    }

    /// The text of a resource for `unparsed-text()`: a relative reference
    /// to a local file, resolved against the stylesheet's directory.
    fn load_text(&mut self, uri: &str) -> R<String> {
        let uri = uri.trim();
        let refuse = |run: &Self, why: &str| {
            run.derr(NO_AT, format!("unparsed-text('{uri}'): {why} (FOUT1170)"))
        };
        if uri.is_empty()
            || uri.contains(':')
            || uri.starts_with('/')
            || uri.starts_with('\\')
            || uri.contains('#')
        {
            return Err(refuse(
                self,
                "only relative references to local files are supported",
            ));
        }
        let base = match self.c.files.first() {
            Some(f) if !f.as_os_str().is_empty() && f != Path::new("<string>") => {
                f.parent().map(Path::to_path_buf).unwrap_or_default()
            }
            _ => {
                return Err(refuse(
                    self,
                    "the stylesheet was compiled without a base path",
                ))
            }
        };
        let path = base.join(uri);
        let bytes = std::fs::read(&path)
            .map_err(|e| refuse(self, &format!("cannot read {}: {e}", path.display())))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            self.derr(
                NO_AT,
                format!("unparsed-text('{uri}'): the resource is not UTF-8 (FOUT1190)"),
            )
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_string();
        if text.chars().any(|c| {
            matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
        }) {
            return Err(self.derr(
                NO_AT,
                format!("unparsed-text('{uri}'): the resource contains a non-XML character (FOUT1190)"),
            ));
        }
        Ok(text)
    }

    /// The static base URI of the expression being evaluated.
    fn static_base(&self) -> Option<&str> {
        let c: &'a Compiled = self.c;
        let i = c.expr_bases.get(self.cur_expr).copied().unwrap_or(0);
        c.bases.get(i as usize).and_then(|b| b.as_deref())
    }

    /// A document for `document()`: `''` is the stylesheet module of the
    /// calling expression; other references are relative file paths,
    /// resolved against `base` (a node argument's base URI) or the static
    /// base URI of the calling expression when that is a `file:` URI, and
    /// against the principal stylesheet's directory otherwise. Anything
    /// else is refused.
    fn load_document_from(&mut self, uri: &str, base: Option<String>) -> R<&'a Document> {
        let uri = uri.trim();
        let refuse =
            |run: &Self, why: &str| run.derr(NO_AT, format!("document('{uri}'): {why} (FODC0002)"));
        let module = self.c.exprs.get(self.cur_expr).map_or(0, |d| d.file);
        if uri.is_empty() && module != 0 {
            // `document('')` in an included or imported module: that module
            let Some(path) = self.c.files.get(module).cloned() else {
                return Err(refuse(self, "unknown stylesheet module"));
            };
            return self.parse_file(path, &refuse);
        }
        if uri.is_empty() {
            return self.load_document(uri);
        }
        if uri.starts_with("file:///") {
            // an absolute file URI (e.g. made by resolve-uri() against the
            // static base): only within the principal stylesheet's
            // directory, like the relative references
            let inside = match (file_path(uri), self.c.files.first()) {
                (Some(p), Some(f)) => match (
                    p.canonicalize(),
                    f.parent().and_then(|d| d.canonicalize().ok()),
                ) {
                    (Ok(p), Some(dir)) => p.starts_with(dir).then_some(p),
                    _ => None,
                },
                _ => None,
            };
            return match inside {
                Some(p) => self.parse_file(p, &refuse),
                None => Err(refuse(
                    self,
                    "only files in the stylesheet's directory are accessible",
                )),
            };
        }
        if uri.contains(':') || uri.starts_with('/') || uri.starts_with('\\') || uri.contains('#') {
            return self.load_document(uri);
        }
        let base = base.or_else(|| self.static_base().map(str::to_string));
        let path = base
            .filter(|b| b.starts_with("file://"))
            .map(|b| drehscheibe_xpath::tree::resolve_uri(uri, &b))
            .and_then(|u| file_path(&u));
        match path {
            Some(path) => self.parse_file(path, &refuse),
            None => self.load_document(uri),
        }
    }

    /// Parses (once per run) the XML file at `path`; its document URI is
    /// its `file:` URI.
    fn parse_file(
        &mut self,
        path: PathBuf,
        refuse: &dyn Fn(&Self, &str) -> TransformError,
    ) -> R<&'a Document> {
        if let Some(d) = self.documents.get(&path) {
            return Ok(d);
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| refuse(self, &format!("cannot read {}: {e}", path.display())))?;
        let abs = path.canonicalize().unwrap_or_else(|_| path.clone());
        let options = ParseOptions {
            uri: Some(crate::compile::file_uri(&abs)),
            ..ParseOptions::default()
        };
        let doc = Document::parse(&bytes, &options).map_err(|e| refuse(self, &e.to_string()))?;
        let doc = self.env.arena.alloc(doc);
        self.documents.insert(path, doc);
        Ok(doc)
    }

    /// A document for `document()`: `''` is the principal stylesheet
    /// module; other references are relative file paths resolved against
    /// the stylesheet's directory. Anything else is refused.
    fn load_document(&mut self, uri: &str) -> R<&'a Document> {
        let uri = uri.trim();
        let refuse =
            |run: &Self, why: &str| run.derr(NO_AT, format!("document('{uri}'): {why} (FODC0002)"));
        if uri.is_empty() {
            if let Some(d) = self.stylesheet_doc {
                return Ok(d);
            }
            let doc = Document::parse_str(&self.c.source_text, &ParseOptions::default())
                .map_err(|e| refuse(self, &e.to_string()))?;
            let doc = self.env.arena.alloc(doc);
            self.stylesheet_doc = Some(doc);
            return Ok(doc);
        }
        if uri.contains(':') || uri.starts_with('/') || uri.starts_with('\\') || uri.contains('#') {
            return Err(refuse(
                self,
                "only relative references to local files are supported",
            ));
        }
        let base = match self.c.files.first() {
            Some(f) if !f.as_os_str().is_empty() && f != Path::new("<string>") => {
                f.parent().map(Path::to_path_buf).unwrap_or_default()
            }
            _ => {
                return Err(refuse(
                    self,
                    "the stylesheet was compiled without a base path",
                ))
            }
        };
        self.parse_file(base.join(uri), &refuse)
    }

    /// The index of key `k` over the tree of `root`, built on first use.
    fn key_index(&mut self, k: usize, root: Node<'a>) -> R<Rc<KeyIndex<'a>>> {
        if let Some(m) = self.keys.get(&(k, root.doc.id())) {
            return Ok(m.clone());
        }
        let c = self.c;
        let Some(key) = c.keys.get(k) else {
            return Err(self.derr(NO_AT, "internal error: unknown key"));
        };
        let building = (k, root.doc.id());
        if self.keys_building.contains(&building) {
            return Err(self.derr(
                NO_AT,
                "a key is used in its own definition (XTDE0640: circular key)",
            ));
        }
        self.keys_building.push(building);
        let r = self.build_key_index(key, root);
        self.keys_building.retain(|b| *b != building);
        let index = Rc::new(r?);
        self.keys.insert((k, root.doc.id()), index.clone());
        Ok(index)
    }

    fn build_key_index(&mut self, key: &'a Key, root: Node<'a>) -> R<KeyIndex<'a>> {
        use crate::pattern::IndexKey;
        // SipHash, not Fx: the values come from the input document, which
        // must not be able to force collisions.
        let mut index: HashMap<KeyValue, Vec<Node<'a>>> = HashMap::new();
        let tz = self.env.implicit_timezone;
        // Attributes are candidates only if some pattern can match one
        // (most keys match elements: `match="person"`).
        let attributes = key.defs.iter().any(|(pattern, _)| {
            pattern.alts.iter().any(|alt| {
                matches!(
                    alt.index_key(),
                    IndexKey::Attribute(_) | IndexKey::AnyAttribute | IndexKey::AnyNode
                )
            })
        });
        // Per definition, the buckets its pattern's alternatives can
        // match: a node in none of them is skipped without matching.
        let buckets: Vec<Vec<IndexKey>> = key
            .defs
            .iter()
            .map(|(pattern, _)| pattern.alts.iter().map(|alt| alt.index_key()).collect())
            .collect();
        let mut consider = |this: &mut Self, n: Node<'a>| -> R<()> {
            for ((pattern, use_), buckets) in key.defs.iter().zip(&buckets) {
                if !buckets.iter().any(|b| b.admits(n)) || !this.pattern_matches(pattern, n)? {
                    continue;
                }
                let values = this.eval(*use_, Some(&Focus::of(Item::Node(n))))?;
                for v in values.iter() {
                    let Some(s) = KeyValue::of(v, key.string_values, tz) else {
                        continue;
                    };
                    let entry = index.entry(s).or_default();
                    if entry.last() != Some(&n) {
                        entry.push(n);
                    }
                }
            }
            Ok(())
        };
        consider(self, root)?;
        for n in root.descendants() {
            consider(self, n)?;
            if attributes && n.kind() == NodeKind::Element {
                for a in n.attributes() {
                    consider(self, a)?;
                }
            }
        }
        Ok(index
            .into_iter()
            .map(|(value, mut nodes)| {
                // Candidates come in document order; a node whose `use`
                // yields a value twice under two definitions may repeat.
                nodes.sort();
                nodes.dedup();
                (value, Sequence::from_nodes(nodes))
            })
            .collect())
    }

    /// Calls the `xsl:function` with this index.
    fn call_user(&mut self, index: usize, args: Vec<Sequence<'a>>) -> R<Sequence<'a>> {
        let c: &'a Compiled = self.c;
        let Some(f) = c.functions.get(index) else {
            return Err(self.derr(NO_AT, "internal error: unknown function"));
        };
        self.env
            .enter()
            .map_err(|e| self.derr(f.at, format!("{e} in xsl:function {}", f.name.local_name())))?;
        let r = stacker::maybe_grow(RED_ZONE, STACK_GROWTH, || {
            let mut values = Vec::with_capacity(args.len());
            for ((_, coerce), arg) in f.params.iter().zip(args) {
                values.push(match coerce {
                    Some(id) => self.coerce(*id, arg)?,
                    None => arg,
                });
            }
            let saved_base = self.base;
            let new_base = self.locals.len();
            self.locals.resize(new_base + f.slots, Sequence::Empty);
            for ((slot, _), v) in f.params.iter().zip(values) {
                if let Some(s) = self.locals.get_mut(new_base + slot) {
                    *s = v;
                }
            }
            self.base = new_base;
            let saved_current = self.current.take();
            self.sinks.push(Sink::Seq(Vec::new()));
            let r = self.exec(&f.body, None, 0);
            let items = match self.sinks.pop() {
                Some(Sink::Seq(items)) => items,
                _ => Vec::new(),
            };
            self.current = saved_current;
            self.locals.truncate(new_base);
            self.base = saved_base;
            r?;
            let result = Sequence::from_vec(items);
            match f.result {
                Some(id) => self.coerce(id, result),
                None => Ok(result),
            }
        });
        self.env.leave();
        r
    }

    // ---- values and strings ---------------------------------------------

    fn value(&mut self, v: &'a Value, f: Option<&Focus<'a>>, mode: usize) -> R<Sequence<'a>> {
        match v {
            Value::Select(id) => self.eval(*id, f),
            Value::Body(body) => {
                // a temporary tree: its base URI is the static base URI of
                // the variable declaring it (the principal module's else)
                let c: &'a Compiled = self.c;
                let base = c.bases.get(std::mem::take(&mut self.tree_base) as usize);
                let uri = base.cloned().flatten();
                self.sinks
                    .push(Sink::Tree(Box::new(Builder::new_temporary(uri))));
                let r = self.exec(body, f, mode);
                let doc = self.pop_tree();
                r?;
                let doc = self.env.arena.alloc(doc);
                Ok(Sequence::One(Item::Node(doc.root())))
            }
            Value::BodyAs(body, coerce) => {
                self.sinks.push(Sink::Seq(Vec::new()));
                let r = self.exec(body, f, mode);
                let items = match self.sinks.pop() {
                    Some(Sink::Seq(items)) => items,
                    _ => Vec::new(),
                };
                r?;
                self.coerce(*coerce, Sequence::from_vec(items))
            }
            Value::Empty => Ok(Sequence::string("")),
        }
    }

    fn pop_tree(&mut self) -> Document {
        match self.sinks.pop() {
            Some(Sink::Tree(b)) => (*b).finish(),
            _ => Builder::new_document(None).finish(),
        }
    }

    fn item_string(&self, item: &Item<'a>, id: ExprId) -> R<String> {
        match item {
            Item::Atomic(a) if self.c.backwards_compatible => Ok(a.to_xpath1_string()),
            Item::Atomic(a) => Ok(a.to_xs_string()),
            Item::Node(n) => Ok(n.string_value().to_string()),
            _ => Err(self.expr_err(
                id,
                "the string value of a function item is not defined (FOTY0014)",
            )),
        }
    }

    fn seq_string(&self, seq: &Sequence<'a>, sep: &str, first_only: bool, id: ExprId) -> R<String> {
        let mut out = String::new();
        for (i, item) in seq.iter().enumerate() {
            if i > 0 {
                if first_only {
                    break;
                }
                out.push_str(sep);
            }
            out.push_str(&self.item_string(item, id)?);
        }
        Ok(out)
    }

    /// The string value of a select/content value (simple content).
    fn string_of(
        &mut self,
        v: &'a Value,
        f: Option<&Focus<'a>>,
        mode: usize,
        separator: Option<&Avt>,
        first_only: bool,
    ) -> R<String> {
        match v {
            Value::Select(id) => {
                let sep = match separator {
                    Some(a) => self.avt(a, f)?,
                    None => " ".to_string(),
                };
                let seq = self.eval(*id, f)?;
                self.seq_string(&seq, &sep, first_only, *id)
            }
            Value::BodyAs(..) => {
                let seq = self.value(v, f, mode)?;
                let sep = match separator {
                    Some(a) => self.avt(a, f)?,
                    None => String::new(),
                };
                self.seq_string(&seq, &sep, first_only, 0)
            }
            Value::Body(body) => {
                self.sinks
                    .push(Sink::Tree(Box::new(Builder::new_document(None))));
                let r = self.exec(body, f, mode);
                let doc = self.pop_tree();
                r?;
                Ok(doc.root().string_value().to_string())
            }
            Value::Empty => Ok(String::new()),
        }
    }

    fn avt(&mut self, a: &Avt, f: Option<&Focus<'a>>) -> R<String> {
        if let Some(lit) = a.literal() {
            return Ok(lit.to_string());
        }
        let mut out = String::new();
        for part in &a.parts {
            match part {
                AvtPart::Lit(s) => out.push_str(s),
                AvtPart::Expr(id) => {
                    let seq = self.eval(*id, f)?;
                    out.push_str(&self.seq_string(&seq, " ", a.first_only, *id)?);
                }
            }
        }
        Ok(out)
    }

    /// Resolves a computed lexical QName: (prefix, namespace URI, local).
    fn computed_name(
        &self,
        lexical: &str,
        namespace: Option<String>,
        nsctx: &crate::xpath::NsCtx,
        use_default: bool,
        at: At,
        what: &str,
    ) -> R<(String, String, String)> {
        let lexical = lexical.trim();
        let (prefix, local, colon) = match lexical.split_once(':') {
            Some((p, l)) => (p.to_string(), l.to_string(), true),
            None => (String::new(), lexical.to_string(), false),
        };
        // a colon needs a prefix before it: ":foo" is not a QName
        let valid = crate::xpath::is_ncname(&local) && (!colon || crate::xpath::is_ncname(&prefix));
        if !valid {
            return Err(self.derr(at, format!("invalid {what} name '{lexical}' (XTDE0820)")));
        }
        let uri = match namespace {
            Some(uri) => {
                if uri == XMLNS_NS || !is_namespace_uri(&uri) {
                    let code = if what == "element" {
                        "XTDE0835"
                    } else {
                        "XTDE0865"
                    };
                    return Err(self.derr(
                        at,
                        format!("invalid namespace URI '{uri}' for {what} '{lexical}' ({code})"),
                    ));
                }
                uri
            }
            None if prefix.is_empty() => {
                if use_default {
                    nsctx.default_ns.clone()
                } else {
                    String::new()
                }
            }
            None => match nsctx.by_prefix(&prefix) {
                Some(u) => u.to_string(),
                None => {
                    return Err(self.derr(
                        at,
                        format!(
                            "undeclared prefix '{prefix}' in {what} name '{lexical}' (XTDE0830)"
                        ),
                    ))
                }
            },
        };
        Ok((prefix, uri, local))
    }

    // ---- output -----------------------------------------------------------------

    /// Runs `build` on a fresh fragment builder and appends the new
    /// parentless node to the sequence on top of the sink stack.
    fn push_fragment(
        &mut self,
        at: At,
        build: impl FnOnce(&mut Builder) -> Result<(), BuildError>,
    ) -> R<()> {
        let mut b = Builder::new_fragment();
        build(&mut b).map_err(|e| self.build_err(at, e))?;
        let doc = self.env.arena.alloc(b.finish());
        if let Some(Sink::Seq(items)) = self.sinks.last_mut() {
            items.push(Item::Node(doc.root()));
        }
        Ok(())
    }

    fn top_tree(&mut self) -> Option<&mut Builder> {
        match self.sinks.last_mut() {
            Some(Sink::Tree(b)) => Some(b),
            _ => None,
        }
    }

    fn out_text(&mut self, text: &str, at: At) -> R<()> {
        if text.is_empty() {
            return Ok(());
        }
        match self.top_tree() {
            Some(b) => {
                b.text(text);
                Ok(())
            }
            None => self.push_fragment(at, |b| {
                b.text(text);
                Ok(())
            }),
        }
    }

    /// Starts an element; in a sequence a fragment tree is pushed for it
    /// (returns true then, [`Run::end_element`] pops it).
    fn start_element(&mut self, name: &QName) -> bool {
        match self.top_tree() {
            Some(b) => {
                b.start_element(name);
                false
            }
            None => {
                let mut b = Builder::new_fragment();
                b.start_element(name);
                self.sinks.push(Sink::Tree(Box::new(b)));
                true
            }
        }
    }

    fn end_element(&mut self, pushed: bool, at: At) -> R<()> {
        if let Some(b) = self.top_tree() {
            let r = b.end_element();
            r.map_err(|e| self.build_err(at, e))?;
        }
        if pushed {
            let doc = self.pop_tree();
            let doc = self.env.arena.alloc(doc);
            if let Some(Sink::Seq(items)) = self.sinks.last_mut() {
                items.push(Item::Node(doc.root()));
            }
        }
        Ok(())
    }

    fn out_attribute(&mut self, name: &QName, value: &str, at: At) -> R<()> {
        match self.top_tree() {
            Some(b) => {
                let r = b.attribute(name, value);
                r.map_err(|e| self.build_err(at, e))
            }
            None => self.push_fragment(at, |b| b.attribute(name, value)),
        }
    }

    /// The in-scope namespaces of `node` (but `xml`) onto the element just
    /// started: what `xsl:copy` and shallow-copy of an element do.
    fn copy_namespaces(&mut self, node: Node<'a>, at: At) -> R<()> {
        let (mut list, mut seen) = std::mem::take(&mut self.ns_scratch);
        node.in_scope_namespaces_into(&mut list, &mut seen);
        let r = list
            .iter()
            .filter(|(p, _)| *p != "xml")
            .try_for_each(|(p, u)| self.out_namespace(p, u, at));
        self.ns_scratch = (list, seen);
        r
    }

    fn out_namespace(&mut self, prefix: &str, uri: &str, at: At) -> R<()> {
        match self.top_tree() {
            Some(b) => {
                let r = b.namespace(prefix, uri);
                r.map_err(|e| self.build_err(at, e))
            }
            None => self.push_fragment(at, |b| b.namespace(prefix, uri)),
        }
    }

    fn out_comment(&mut self, text: &str, at: At) -> R<()> {
        match self.top_tree() {
            Some(b) => {
                b.comment(text);
                Ok(())
            }
            None => self.push_fragment(at, |b| {
                b.comment(text);
                Ok(())
            }),
        }
    }

    fn out_pi(&mut self, target: &str, data: &str, at: At) -> R<()> {
        match self.top_tree() {
            Some(b) => {
                b.processing_instruction(target, data);
                Ok(())
            }
            None => self.push_fragment(at, |b| {
                b.processing_instruction(target, data);
                Ok(())
            }),
        }
    }

    /// Deep copy of a node to the output.
    fn out_copy(&mut self, n: Node<'a>, at: At) -> R<()> {
        match self.top_tree() {
            Some(b) => {
                let r = b.copy(n, true);
                r.map_err(|e| self.build_err(at, e))
            }
            None => {
                if n.kind() == NodeKind::Document {
                    let mut b = Builder::new_document(n.doc.uri.clone());
                    b.copy(n, true).map_err(|e| self.build_err(at, e))?;
                    let doc = self.env.arena.alloc(b.finish());
                    if let Some(Sink::Seq(items)) = self.sinks.last_mut() {
                        items.push(Item::Node(doc.root()));
                    }
                    Ok(())
                } else {
                    self.push_fragment(at, |b| b.copy(n, true))
                }
            }
        }
    }

    /// Adds a sequence to the output. In a tree, nodes are copied and
    /// adjacent atomic values joined with single spaces; in a sequence the
    /// items are added as they are (`copy`: nodes copied).
    fn out_sequence(&mut self, seq: &Sequence<'a>, copy: bool, at: At) -> R<()> {
        if let Some(Sink::Seq(items)) = self.sinks.last_mut() {
            if !copy {
                items.extend(seq.iter().cloned());
                return Ok(());
            }
            for item in seq.iter() {
                match item {
                    Item::Node(n) => self.out_copy(*n, at)?,
                    other => {
                        if let Some(Sink::Seq(items)) = self.sinks.last_mut() {
                            items.push(other.clone());
                        }
                    }
                }
            }
            return Ok(());
        }
        let mut prev_atomic = false;
        for item in seq.iter() {
            match item {
                Item::Node(n) => {
                    self.out_copy(*n, at)?;
                    prev_atomic = false;
                }
                Item::Atomic(a) => {
                    if prev_atomic {
                        self.out_text(" ", at)?;
                    }
                    let s = if self.c.backwards_compatible {
                        a.to_xpath1_string()
                    } else {
                        a.to_xs_string()
                    };
                    self.out_text(&s, at)?;
                    prev_atomic = true;
                }
                _ => {
                    return Err(
                        self.derr(at, "a function item cannot be added to a tree (XTDE0450)")
                    )
                }
            }
        }
        Ok(())
    }

    // ---- template rules ---------------------------------------------------------

    fn node_key(n: Node<'a>) -> NodeKey {
        match n.kind() {
            NodeKind::Document => NodeKey::Document,
            NodeKind::Element => NodeKey::Element(n.doc.id(), n.name_id().unwrap_or(u32::MAX)),
            NodeKind::Attribute => NodeKey::Attribute(n.doc.id(), n.name_id().unwrap_or(u32::MAX)),
            NodeKind::Text => NodeKey::Text,
            NodeKind::Comment => NodeKey::Comment,
            NodeKind::ProcessingInstruction => NodeKey::Pi,
            NodeKind::Namespace => NodeKey::Other,
        }
    }

    fn candidates(&mut self, mode: usize, node: Node<'a>) -> Arc<[Rule]> {
        self.candidates_for(mode, Self::node_key(node), node.name())
    }

    /// The rules that may match a node with this key and name (`Other`:
    /// namespace nodes and items that are not nodes), best first: the
    /// mode's precomputed list, cached per run by the tree's name id so
    /// the name is looked up once per distinct name.
    fn candidates_for(&mut self, mode: usize, key: NodeKey, name: Option<&QName>) -> Arc<[Rule]> {
        if let Some(v) = self.rule_cache.get(&(mode, key)) {
            return v.clone();
        }
        let Some(m) = self.c.modes.get(mode) else {
            return Arc::from(Vec::new());
        };
        let l = &m.lists;
        let named = |map: &crate::ir::NameLists, generic: &Arc<[Rule]>| {
            name.and_then(|q| {
                map.get(q.uri.as_str())
                    .and_then(|m| m.get(q.local.as_str()))
            })
            .unwrap_or(generic)
            .clone()
        };
        let rules = match key {
            NodeKey::Document => l.document.clone(),
            NodeKey::Element(..) => named(&l.elements, &l.any_element),
            NodeKey::Attribute(..) => named(&l.attributes, &l.any_attribute),
            NodeKey::Text => l.text.clone(),
            NodeKey::Comment => l.comment.clone(),
            NodeKey::Pi => l.pi.clone(),
            NodeKey::Other => l.other.clone(),
        };
        self.rule_cache.insert((mode, key), rules.clone());
        rules
    }

    fn find_rule(&mut self, node: Node<'a>, mode: usize) -> R<Option<usize>> {
        let rules = self.candidates(mode, node);
        let c = self.c;
        for rule in rules.iter() {
            let Some(t) = c.templates.get(rule.template) else {
                continue;
            };
            let Some(alt) = t.pattern.as_ref().and_then(|p| p.alts.get(rule.alt)) else {
                continue;
            };
            if self.alt_matches(alt, node)? {
                return Ok(Some(rule.template));
            }
        }
        Ok(None)
    }

    fn pattern_matches(&mut self, p: &Pattern, node: Node<'a>) -> R<bool> {
        for alt in &p.alts {
            if self.alt_matches(alt, node)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn alt_matches(&mut self, alt: &Alt, node: Node<'a>) -> R<bool> {
        if alt.steps.is_empty() {
            return match &alt.root {
                // `/`
                Root::Document => Ok(node.kind() == NodeKind::Document && node.parent().is_none()),
                Root::Nodes { expr, per_tree } => self.in_pattern_set(*expr, *per_tree, node),
                Root::Predicate(preds) => self.predicate_pattern(preds, Item::Node(node)),
                Root::Relative | Root::DocumentDesc => Ok(false),
            };
        }
        // `current()` in any step's predicates is the node being matched
        let saved = self.match_subject.replace(node);
        let r = self.steps_match(alt, alt.steps.len(), node);
        self.match_subject = saved;
        r
    }

    /// Does the `k`-th step (1-based) of `alt` match `node`, with the
    /// steps before it matching its context?
    fn steps_match(&mut self, alt: &Alt, k: usize, node: Node<'a>) -> R<bool> {
        let Some(step) = alt.steps.get(k - 1) else {
            return Ok(false);
        };
        if !test_matches(node, step.axis, &step.test) {
            return Ok(false);
        }
        if !step.preds.is_empty() && !self.preds_match(step, step.preds.len(), node)? {
            return Ok(false);
        }
        // The node the step was taken from: the node itself for `self::`,
        // else its parent; after `//` also any ancestor of that.
        let first = match step.axis {
            Axis::Same => Some(node),
            Axis::Child | Axis::Attribute | Axis::Namespace => node.parent(),
        };
        let Some(first) = first else {
            // a parentless node: `child-or-top` / `attribute-or-top` /
            // `namespace-or-top`
            return Ok(k == 1 && !step.desc_before && alt.root == Root::Relative);
        };
        // `a//self::x` is `a/descendant-or-self::node()/self::x`: an
        // attribute is no node's descendant, only itself
        let climb = step.desc_before
            && !(step.axis == Axis::Same
                && matches!(node.kind(), NodeKind::Attribute | NodeKind::Namespace));
        let mut current = Some(first);
        while let Some(ctx) = current {
            let ok = if k == 1 {
                self.start_matches(&alt.root, ctx)?
            } else {
                self.steps_match(alt, k - 1, ctx)?
            };
            if ok {
                return Ok(true);
            }
            if !climb {
                break;
            }
            current = ctx.parent();
        }
        Ok(false)
    }

    /// Can the first step of a path pattern start from `ctx`?
    fn start_matches(&mut self, root: &Root, ctx: Node<'a>) -> R<bool> {
        let in_tree = || {
            !matches!(ctx.kind(), NodeKind::Attribute | NodeKind::Namespace)
                || ctx.parent().is_none()
        };
        Ok(match root {
            Root::Relative => in_tree(),
            Root::Document => ctx.kind() == NodeKind::Document && ctx.parent().is_none(),
            Root::DocumentDesc => ctx.root().kind() == NodeKind::Document && in_tree(),
            Root::Nodes { expr, per_tree } => self.in_pattern_set(*expr, *per_tree, ctx)?,
            Root::Predicate(_) => false,
        })
    }

    /// Is `node` in the value of a rooted pattern's head (or of a general
    /// pattern's `root(.)//(P)`), evaluated with `node` as focus? A value
    /// that only depends on the tree is computed once per tree and run.
    fn in_pattern_set(&mut self, expr: ExprId, per_tree: bool, node: Node<'a>) -> R<bool> {
        let key = (expr, node.root());
        let set = match self.pattern_sets.get(&key) {
            Some(s) if per_tree => s.clone(),
            _ => {
                let value = match self.eval(expr, Some(&Focus::of(Item::Node(node)))) {
                    Ok(v) => v,
                    // an absolute pattern (`/a`, `//(a|b)`) over a tree
                    // that is not rooted at a document node matches nothing
                    Err(e) if e.to_string().contains("XPDY0050") => return Ok(false),
                    Err(e) => return Err(e),
                };
                let mut nodes: Vec<Node<'a>> = value.iter().filter_map(|i| i.as_node()).collect();
                nodes.sort_unstable();
                nodes.dedup();
                let set = Rc::new(nodes);
                if per_tree {
                    self.pattern_sets.insert(key, set.clone());
                }
                set
            }
        };
        Ok(set.binary_search(&node).is_ok())
    }

    /// Does a predicate pattern `.[p1][p2]…` match `item`? Every predicate
    /// is evaluated with `item` as the only item of the focus; a dynamic
    /// error means "no match" (XSLT 3.0 §5.5.3).
    fn predicate_pattern(&mut self, preds: &[ExprId], item: Item<'a>) -> R<bool> {
        let focus = Focus::of(item);
        for &pred in preds {
            let Ok(result) = self.eval(pred, Some(&focus)) else {
                return Ok(false);
            };
            let ok = match numeric_singleton(&result) {
                Some(n) => n == 1.0,
                None => effective_boolean(&result).unwrap_or(false),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Do the first `count` predicates of `step` hold for `node`?
    fn preds_match(&mut self, step: &Step, count: usize, node: Node<'a>) -> R<bool> {
        for (i, &pred) in step.preds.iter().take(count).enumerate() {
            let needs_pos = self.c.exprs.get(pred).is_some_and(|d| d.uses_position);
            let mut focus = Focus::of(Item::Node(node));
            if needs_pos {
                let (pos, size) = self.step_position(step, i, node)?;
                focus.position = pos;
                focus.size = size;
            }
            let subject = self.match_subject.unwrap_or(node);
            let result = self.eval_current(pred, Some(&focus), Some(Item::Node(subject)))?;
            let ok = match numeric_singleton(&result) {
                Some(n) => {
                    if !needs_pos {
                        let (pos, size) = self.step_position(step, i, node)?;
                        focus.position = pos;
                        focus.size = size;
                    }
                    n == focus.position as f64
                }
                None => effective_boolean(&result).map_err(|m| self.expr_err(pred, m))?,
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Position and size of `node` among its siblings that pass the step's
    /// node test and its first `preds` predicates.
    fn step_position(&mut self, step: &Step, preds: usize, node: Node<'a>) -> R<(usize, usize)> {
        if step.axis == Axis::Same {
            return Ok((1, 1));
        }
        let siblings: Vec<Node<'a>> = match node.parent() {
            None => vec![node],
            Some(p) => {
                if node.kind() == NodeKind::Attribute {
                    p.attributes().collect()
                } else {
                    p.children().collect()
                }
            }
        };
        let mut pos = 0;
        let mut size = 0;
        for s in siblings {
            if !test_matches(s, step.axis, &step.test) {
                continue;
            }
            if preds > 0 && !self.preds_match(step, preds, s)? {
                continue;
            }
            size += 1;
            if s == node {
                pos = size;
            }
        }
        Ok((pos, size))
    }

    // ---- applying templates ---------------------------------------------------------

    fn apply(
        &mut self,
        nodes: &[Node<'a>],
        mode: usize,
        params: &[(&'a XName, Sequence<'a>)],
        at: Option<At>,
    ) -> R<()> {
        let size = nodes.len();
        for (i, &node) in nodes.iter().enumerate() {
            let focus = Focus {
                item: Item::Node(node),
                position: i + 1,
                size,
            };
            match self.find_rule(node, mode)? {
                Some(t) => {
                    if self.c.modes.get(mode).is_some_and(|m| m.fail_on_multiple) {
                        self.check_multiple_match(node, mode, at)?;
                    }
                    let saved = self.ext.rule.replace((t, mode));
                    let r = self.invoke(t, Some(&focus), params, mode, at);
                    self.ext.rule = saved;
                    r?
                }
                None => self.builtin(node, mode, params, at)?,
            }
        }
        Ok(())
    }

    /// Applies templates to a sequence with items that are not nodes:
    /// only predicate patterns match those; the built-in rule writes an
    /// atomic value as text and skips functions, maps and arrays.
    fn apply_items(
        &mut self,
        items: &[Item<'a>],
        mode: usize,
        params: &[(&'a XName, Sequence<'a>)],
        at: Option<At>,
    ) -> R<()> {
        let size = items.len();
        for (i, item) in items.iter().enumerate() {
            let focus = Focus {
                item: item.clone(),
                position: i + 1,
                size,
            };
            let rule = match item {
                Item::Node(n) => self.find_rule(*n, mode)?,
                _ => self.find_item_rule(item, mode)?,
            };
            match (rule, item) {
                (Some(t), _) => self.invoke(t, Some(&focus), params, mode, at)?,
                (None, Item::Node(n)) => self.builtin(*n, mode, params, at)?,
                (None, Item::Atomic(a)) => {
                    let text = a.to_xs_string();
                    self.out_text(&text, at.unwrap_or(NO_AT))?
                }
                (None, _) => {}
            }
        }
        Ok(())
    }

    /// The template rule for an item that is not a node: the best rule
    /// whose pattern is a predicate pattern that matches it.
    fn find_item_rule(&mut self, item: &Item<'a>, mode: usize) -> R<Option<usize>> {
        let rules = self.candidates_for(mode, NodeKey::Other, None);
        let c = self.c;
        for rule in rules.iter() {
            let Some(t) = c.templates.get(rule.template) else {
                continue;
            };
            let Some(Root::Predicate(preds)) = t
                .pattern
                .as_ref()
                .and_then(|p| p.alts.get(rule.alt))
                .map(|a| &a.root)
            else {
                continue;
            };
            if self.predicate_pattern(preds, item.clone())? {
                return Ok(Some(rule.template));
            }
        }
        Ok(None)
    }

    fn builtin(
        &mut self,
        node: Node<'a>,
        mode: usize,
        params: &[(&'a XName, Sequence<'a>)],
        at: Option<At>,
    ) -> R<()> {
        let at_ = at.unwrap_or(NO_AT);
        let on_no_match = self.c.modes.get(mode).map(|m| m.on_no_match);
        if let Some(on_no_match) = on_no_match.filter(|o| *o != OnNoMatch::TextOnlyCopy) {
            return self.builtin3(node, mode, params, at, on_no_match);
        }
        match node.kind() {
            NodeKind::Document | NodeKind::Element => {
                let children: Vec<Node<'a>> = node.children().collect();
                self.env
                    .enter()
                    .map_err(|e| self.derr(at_, e.to_string()))?;
                let r = stacker::maybe_grow(RED_ZONE, STACK_GROWTH, || {
                    self.apply(&children, mode, params, at)
                });
                self.env.leave();
                r
            }
            NodeKind::Text | NodeKind::Attribute => {
                let text = node.string_value();
                self.out_text(text, at_)
            }
            _ => Ok(()),
        }
    }

    fn invoke(
        &mut self,
        t: usize,
        focus: Option<&Focus<'a>>,
        params: &[(&'a XName, Sequence<'a>)],
        mode: usize,
        at: Option<At>,
    ) -> R<()> {
        let c: &'a Compiled = self.c;
        let Some(template) = c.templates.get(t) else {
            return Ok(());
        };
        self.env.enter().map_err(|e| {
            self.derr(
                at.unwrap_or(template.at),
                format!("template recursion too deep: {e}"),
            )
        })?;
        let saved_base = self.base;
        let new_base = self.locals.len();
        self.locals
            .resize(new_base + template.slots, Sequence::Empty);
        self.base = new_base;
        let r = stacker::maybe_grow(RED_ZONE, STACK_GROWTH, || {
            for p in &template.params {
                let value = match params.iter().find(|(n, _)| **n == p.name) {
                    Some((_, v)) => match p.coerce {
                        Some(id) => self.coerce(id, v.clone())?,
                        None => v.clone(),
                    },
                    None if p.required => {
                        return Err(self.derr(
                            template.at,
                            format!(
                                "required parameter ${} was not supplied (XTDE0700)",
                                p.name.local_name()
                            ),
                        ))
                    }
                    None => self.value(&p.value, focus, mode)?,
                };
                if let Some(slot) = self.locals.get_mut(self.base + p.slot) {
                    *slot = value;
                }
            }
            self.exec(&template.body, focus, mode)
        });
        self.locals.truncate(new_base);
        self.base = saved_base;
        self.env.leave();
        r
    }

    fn with_params(
        &mut self,
        params: &'a [WithParam],
        f: Option<&Focus<'a>>,
        mode: usize,
    ) -> R<Vec<(&'a XName, Sequence<'a>)>> {
        let mut out = Vec::with_capacity(params.len());
        for p in params {
            let v = self.value(&p.value, f, mode)?;
            out.push((&p.name, v));
        }
        Ok(out)
    }

    // ---- sorting ---------------------------------------------------------------

    fn sort_items(&mut self, items: Vec<Item<'a>>, sorts: &[Sort], at: At) -> R<Vec<Item<'a>>> {
        if sorts.is_empty() || items.len() < 2 {
            return Ok(items);
        }
        let size = items.len();
        let mut keys: Vec<Vec<SortKey>> = Vec::with_capacity(size);
        for (i, item) in items.iter().enumerate() {
            let focus = Focus {
                item: item.clone(),
                position: i + 1,
                size,
            };
            keys.push(self.sort_key_row(&focus, sorts, at)?);
        }
        let order = self.sort_order(&keys, sorts, at)?;
        let mut slots: Vec<Option<Item<'a>>> = items.into_iter().map(Some).collect();
        Ok(order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take))
            .collect())
    }

    /// The sort keys of one item (the focus) for every `xsl:sort`.
    fn sort_key_row(&mut self, focus: &Focus<'a>, sorts: &[Sort], at: At) -> R<Vec<SortKey>> {
        let item = &focus.item;
        let mut row = Vec::with_capacity(sorts.len());
        for s in sorts {
            if s.typed {
                let seq = match s.select {
                    Some(id) => self.eval(id, Some(focus))?,
                    None => Sequence::One(item.clone()),
                };
                let atoms = atomize(&seq).map_err(|e| self.derr(at, e))?;
                let key = match atoms.as_slice() {
                    [] => SortKey::Empty,
                    [a] if a.is_numeric() => SortKey::Num(a.to_number()),
                    [a] if a.is_stringlike() => SortKey::Text(a.to_xs_string()),
                    [a] => SortKey::Typed(a.clone()),
                    _ => {
                        return Err(
                            self.derr(at, "a sort key must be a single atomic value (XTTE1020)")
                        )
                    }
                };
                row.push(key);
                continue;
            }
            let key = match s.select {
                Some(id) => {
                    let seq = self.eval(id, Some(focus))?;
                    match seq.first() {
                        None => None,
                        Some(first) => Some(match (first, s.number) {
                            (Item::Atomic(a), true) if !a.is_stringlike() => {
                                SortKey::Num(a.to_number())
                            }
                            (other, true) => {
                                SortKey::Num(xpath1_parse_number(&self.item_string(other, id)?))
                            }
                            (other, false) => SortKey::Text(self.item_string(other, id)?),
                        }),
                    }
                }
                None => {
                    let text = match item {
                        Item::Node(n) => n.string_value().to_string(),
                        Item::Atomic(a) => a.to_xs_string(),
                        _ => return Err(self.derr(at, "cannot sort function items")),
                    };
                    Some(if s.number {
                        SortKey::Num(xpath1_parse_number(&text))
                    } else {
                        SortKey::Text(text)
                    })
                }
            };
            row.push(match key {
                Some(k) => k,
                None if s.number => SortKey::Num(f64::NAN),
                None => SortKey::Text(String::new()),
            });
        }
        Ok(row)
    }

    /// The stable order of rows of sort keys.
    fn sort_order(&self, keys: &[Vec<SortKey>], sorts: &[Sort], at: At) -> R<Vec<usize>> {
        use std::cmp::Ordering;
        // typed keys of one sort must be mutually comparable (XTDE1030)
        for (i, _) in sorts.iter().enumerate().filter(|(_, s)| s.typed) {
            let mut first: Option<&SortKey> = None;
            for row in keys {
                let Some(k) = row.get(i) else { continue };
                if matches!(k, SortKey::Empty) {
                    continue;
                }
                match first {
                    None => first = Some(k),
                    Some(f) => {
                        let comparable = match (f, k) {
                            (SortKey::Num(_), SortKey::Num(_))
                            | (SortKey::Text(_), SortKey::Text(_)) => true,
                            (SortKey::Typed(a), SortKey::Typed(b)) => {
                                drehscheibe_xpath::compare::value_compare(a, b, false, 0).is_ok()
                            }
                            _ => false,
                        };
                        if !comparable {
                            return Err(self.derr(
                                at,
                                "sort keys of different types cannot be compared (XTDE1030)",
                            ));
                        }
                    }
                }
            }
        }
        let mut order: Vec<usize> = (0..keys.len()).collect();
        let empty: Vec<SortKey> = Vec::new();
        order.sort_by(|&a, &b| {
            let ra = keys.get(a).unwrap_or(&empty);
            let rb = keys.get(b).unwrap_or(&empty);
            for (i, s) in sorts.iter().enumerate() {
                let (Some(ka), Some(kb)) = (ra.get(i), rb.get(i)) else {
                    continue;
                };
                let ord = match (ka, kb) {
                    (SortKey::Empty, SortKey::Empty) => Ordering::Equal,
                    (SortKey::Empty, _) => Ordering::Less,
                    (_, SortKey::Empty) => Ordering::Greater,
                    (SortKey::Num(x), SortKey::Num(y)) => match (x.is_nan(), y.is_nan()) {
                        (true, true) => Ordering::Equal,
                        (true, false) => Ordering::Less,
                        (false, true) => Ordering::Greater,
                        _ => x.total_cmp(y),
                    },
                    (SortKey::Text(x), SortKey::Text(y)) => compare_text(x, y, s.upper_first),
                    (SortKey::Typed(x), SortKey::Typed(y)) => {
                        match drehscheibe_xpath::compare::value_compare(x, y, false, 0) {
                            Ok(Some(o)) => o,
                            _ => Ordering::Equal,
                        }
                    }
                    (SortKey::Num(_), _) => Ordering::Less,
                    (_, SortKey::Num(_)) => Ordering::Greater,
                    (SortKey::Text(_), _) => Ordering::Less,
                    (_, SortKey::Text(_)) => Ordering::Greater,
                };
                let ord = if s.descending { ord.reverse() } else { ord };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            Ordering::Equal
        });
        Ok(order)
    }

    // ---- xsl:number -----------------------------------------------------------------

    fn number(&mut self, def: &NumberDef, f: Option<&Focus<'a>>, at: At) -> R<String> {
        let numbers: Vec<u64> = match def.value {
            Some(id) => {
                let seq = self.eval(id, f)?;
                let mut out = Vec::new();
                for item in seq.iter() {
                    let n = match item {
                        Item::Atomic(a) if !a.is_stringlike() => a.to_number(),
                        Item::Atomic(a) => xpath1_parse_number(&a.to_xs_string()),
                        Item::Node(n) => xpath1_parse_number(n.string_value()),
                        _ => f64::NAN,
                    };
                    if !self.c.backwards_compatible && (n < 0.0 || n.is_infinite()) {
                        return Err(self.derr(
                            at,
                            format!("xsl:number cannot number the value {n} (XTDE0980)"),
                        ));
                    }
                    if n.is_nan() || n < 0.0 || n.is_infinite() {
                        return Ok(if n.is_nan() {
                            "NaN".to_string()
                        } else {
                            drehscheibe_xpath::value::xpath1_number_to_string(n)
                        });
                    }
                    out.push((n + 0.5).floor() as u64);
                }
                out
            }
            None => {
                let selected =
                    match def.select {
                        Some(id) => {
                            let seq = self.eval(id, f)?;
                            match seq.items() {
                                [Item::Node(n)] => Some(*n),
                                _ => return Err(self.derr(
                                    at,
                                    "the select of xsl:number must give a single node (XTTE1000)",
                                )),
                            }
                        }
                        None => f.and_then(|f| f.item.as_node()),
                    };
                let Some(node) = selected else {
                    return Err(self.derr(
                        at,
                        "xsl:number without value needs a context node (XTTE0990)",
                    ));
                };
                self.count_nodes(def, node)?
            }
        };
        let format = self.avt(&def.format, f)?;
        let grouping = match (&def.grouping_separator, def.grouping_size) {
            (Some(sep), Some(size)) => Some((sep.as_str(), size)),
            _ => None,
        };
        format_number_list(&numbers, &format, grouping).map_err(|e| self.derr(at, e.to_string()))
    }

    fn counts(&mut self, def: &NumberDef, node: Node<'a>, candidate: Node<'a>) -> R<bool> {
        match &def.count {
            Some(p) => self.pattern_matches(p, candidate),
            None => Ok(node.kind() == candidate.kind()
                && match (node.name(), candidate.name()) {
                    (Some(a), Some(b)) => a.uri == b.uri && a.local == b.local,
                    (None, None) => true,
                    _ => false,
                }),
        }
    }

    fn is_from(&mut self, def: &NumberDef, n: Node<'a>) -> R<bool> {
        match &def.from {
            Some(p) => self.pattern_matches(p, n),
            None => Ok(false),
        }
    }

    fn sibling_number(&mut self, def: &NumberDef, node: Node<'a>, target: Node<'a>) -> R<u64> {
        let mut count = 1;
        let mut s = target.prev_sibling();
        while let Some(n) = s {
            if self.counts(def, node, n)? {
                count += 1;
            }
            s = n.prev_sibling();
        }
        Ok(count)
    }

    fn count_nodes(&mut self, def: &NumberDef, node: Node<'a>) -> R<Vec<u64>> {
        let mut chain = Vec::new();
        let mut current = Some(node);
        while let Some(n) = current {
            if n != node && self.is_from(def, n)? {
                break;
            }
            chain.push(n);
            if n.kind() == NodeKind::Document {
                break;
            }
            current = n.parent();
        }
        match def.level {
            NumberLevel::Single => {
                for n in chain {
                    if self.counts(def, node, n)? {
                        return Ok(vec![self.sibling_number(def, node, n)?]);
                    }
                }
                Ok(Vec::new())
            }
            NumberLevel::Multiple => {
                let mut out = Vec::new();
                for n in chain {
                    if self.counts(def, node, n)? {
                        out.push(self.sibling_number(def, node, n)?);
                    }
                }
                out.reverse();
                Ok(out)
            }
            NumberLevel::Any => {
                let root = node.root();
                let mut count = 0u64;
                let all = std::iter::once(root).chain(root.descendants());
                for n in all {
                    if def.from.is_some() && self.is_from(def, n)? {
                        count = 0;
                    }
                    if self.counts(def, node, n)? {
                        count += 1;
                    }
                    if n == node {
                        break;
                    }
                }
                Ok(if count == 0 { Vec::new() } else { vec![count] })
            }
        }
    }

    // ---- instructions ------------------------------------------------------------------

    fn exec(&mut self, body: &'a [Instr], f: Option<&Focus<'a>>, mode: usize) -> R<()> {
        for instr in body {
            // The caller's time budget (drehscheibe_xpath::budget): a
            // runaway loop of instructions stops here even when it
            // evaluates no expression.
            drehscheibe_xpath::budget::tick().map_err(|e| self.derr(NO_AT, e.to_string()))?;
            self.instr(instr, f, mode)?;
        }
        Ok(())
    }

    fn instr(&mut self, instr: &'a Instr, f: Option<&Focus<'a>>, mode: usize) -> R<()> {
        match instr {
            Instr::Text(t) => self.out_text(t, NO_AT),
            Instr::ValueOf {
                value,
                separator,
                first_only,
                at,
            } => {
                if let (Value::Select(id), None) = (value, separator) {
                    // fast path: one node (or the first one) is written
                    // straight from the tree, without a String in between
                    let seq = self.eval(*id, f)?;
                    let node = match &seq {
                        Sequence::Empty => return Ok(()),
                        Sequence::One(Item::Node(n)) => Some(*n),
                        Sequence::Many(items) if *first_only => match items.first() {
                            Some(Item::Node(n)) => Some(*n),
                            _ => None,
                        },
                        _ => None,
                    };
                    if let Some(n) = node {
                        return self.out_text(n.string_value(), *at);
                    }
                    let text = self.seq_string(&seq, " ", *first_only, *id)?;
                    return self.out_text(&text, *at);
                }
                let text = match (value, separator) {
                    (Value::Body(_), None) => self.string_of(value, f, mode, None, false)?,
                    _ => self.string_of(value, f, mode, separator.as_ref(), *first_only)?,
                };
                self.out_text(&text, *at)
            }
            Instr::ApplyTemplates {
                select,
                mode: msel,
                params,
                sorts,
                at,
            } => {
                let nodes: Vec<Node<'a>> = match select {
                    Some(id) => {
                        let seq = self.eval(*id, f)?;
                        if seq.iter().any(|i| !matches!(i, Item::Node(_))) {
                            // XSLT 3.0: templates for atomic values and
                            // other items (predicate patterns `.[…]`)
                            let mut items: Vec<Item<'a>> = seq.iter().cloned().collect();
                            if !sorts.is_empty() {
                                items = self.sort_items(items, sorts, *at)?;
                            }
                            let params = self.with_params(params, f, mode)?;
                            let new_mode = match msel {
                                ModeSel::Mode(m) => *m,
                                ModeSel::Current => mode,
                            };
                            return self.apply_items(&items, new_mode, &params, Some(*at));
                        }
                        seq.iter().filter_map(|i| i.as_node()).collect()
                    }
                    None => match f.and_then(|f| f.item.as_node()) {
                        Some(n) => n.children().collect(),
                        None => return Err(self.derr(
                            *at,
                            "xsl:apply-templates without select needs a context node (XTTE0510)",
                        )),
                    },
                };
                let nodes = if sorts.is_empty() {
                    nodes
                } else {
                    let items = nodes.into_iter().map(Item::Node).collect();
                    self.sort_items(items, sorts, *at)?
                        .into_iter()
                        .filter_map(|i| i.as_node())
                        .collect()
                };
                let params = self.with_params(params, f, mode)?;
                let new_mode = match msel {
                    ModeSel::Mode(m) => *m,
                    ModeSel::Current => mode,
                };
                self.apply(&nodes, new_mode, &params, Some(*at))
            }
            Instr::CallTemplate {
                template,
                params,
                at,
            } => {
                let params = self.with_params(params, f, mode)?;
                self.invoke(*template, f, &params, mode, Some(*at))
            }
            Instr::ForEach {
                select,
                sorts,
                body,
                at,
            } => {
                let seq = self.eval(*select, f)?;
                let items = self.sort_items(seq.into_vec(), sorts, *at)?;
                let size = items.len();
                for (i, item) in items.into_iter().enumerate() {
                    let focus = Focus {
                        item,
                        position: i + 1,
                        size,
                    };
                    self.exec(body, Some(&focus), mode)?;
                }
                Ok(())
            }
            Instr::If { test, body } => {
                if self.ebv(*test, f)? {
                    self.exec(body, f, mode)?;
                }
                Ok(())
            }
            Instr::Choose { whens, otherwise } => {
                for (test, body) in whens {
                    if self.ebv(*test, f)? {
                        return self.exec(body, f, mode);
                    }
                }
                self.exec(otherwise, f, mode)
            }
            Instr::Variable { slot, value, at } => {
                self.tree_base = at.base;
                let v = self.value(value, f, mode)?;
                let index = self.base + slot;
                match self.locals.get_mut(index) {
                    Some(s) => {
                        *s = v;
                        Ok(())
                    }
                    None => Err(self.derr(*at, "internal error: variable slot out of range")),
                }
            }
            Instr::LiteralElement {
                name,
                namespaces,
                attributes,
                body,
                at,
            } => {
                // the compiled stylesheet's names: no copy of a QName per element
                let names = self.names;
                let unknown = QName::local("unknown");
                let pushed = self.start_element(names.get(*name).unwrap_or(&unknown));
                let c = self.c;
                for &ns in namespaces {
                    if let Some((p, u)) = c.ns_bindings.get(ns) {
                        self.out_namespace(p, u, *at)?;
                    }
                }
                for (aname, avt) in attributes {
                    let value = self.avt(avt, f)?;
                    let aq = names.get(*aname).unwrap_or(&unknown);
                    self.out_attribute(aq, &value, *at)?;
                }
                self.exec(body, f, mode)?;
                self.end_element(pushed, *at)
            }
            Instr::Element {
                name,
                namespace,
                nsctx,
                body,
                at,
            } => {
                let lexical = self.avt(name, f)?;
                let ns = match namespace {
                    Some(a) => Some(self.avt(a, f)?),
                    None => None,
                };
                let (prefix, uri, local) =
                    self.computed_name(&lexical, ns, nsctx, true, *at, "element")?;
                let prefix = if uri.is_empty() {
                    String::new()
                } else {
                    prefix
                };
                let pushed = self.start_element(&QName::new(&uri, &local, &prefix));
                if !uri.is_empty() && prefix != "xml" {
                    self.out_namespace(&prefix, &uri, *at)?;
                }
                self.exec(body, f, mode)?;
                self.end_element(pushed, *at)
            }
            Instr::Attribute {
                name,
                namespace,
                nsctx,
                value,
                separator,
                at,
            } => {
                let lexical = self.avt(name, f)?;
                let ns = match namespace {
                    Some(a) => Some(self.avt(a, f)?),
                    None => None,
                };
                let (prefix, uri, local) =
                    self.computed_name(&lexical, ns, nsctx, false, *at, "attribute")?;
                if lexical.trim() == "xmlns" {
                    return Err(self.derr(*at, "an attribute cannot be named xmlns (XTDE0855)"));
                }
                let text = self.string_of(value, f, mode, separator.as_ref(), false)?;
                let prefix = if uri.is_empty() {
                    String::new()
                } else {
                    prefix
                };
                self.out_attribute(&QName::new(&uri, &local, &prefix), &text, *at)
            }
            Instr::Comment { value, at } => {
                let text = self.string_of(value, f, mode, None, false)?;
                self.out_comment(&sanitize_comment(&text), *at)
            }
            Instr::ProcessingInstruction { name, value, at } => {
                let target = self.avt(name, f)?.trim().to_string();
                if !crate::xpath::is_ncname(&target) || target.eq_ignore_ascii_case("xml") {
                    return Err(self.derr(
                        *at,
                        format!("invalid processing instruction name '{target}' (XTDE0890)"),
                    ));
                }
                let text = self.string_of(value, f, mode, None, false)?;
                let text = text.trim_start().replace("?>", "? >");
                self.out_pi(&target, &text, *at)
            }
            Instr::Namespace { name, value, at } => {
                let prefix = self.avt(name, f)?.trim().to_string();
                let uri = self.string_of(value, f, mode, None, false)?;
                if prefix == "xmlns" || (!prefix.is_empty() && !crate::xpath::is_ncname(&prefix)) {
                    return Err(self.derr(
                        *at,
                        format!("invalid namespace prefix '{prefix}' (XTDE0920)"),
                    ));
                }
                if uri.is_empty() {
                    return Err(self.derr(
                        *at,
                        format!("xsl:namespace '{prefix}' with a zero-length URI (XTDE0930)"),
                    ));
                }
                if (prefix == "xml") != (uri == XML_NS) {
                    return Err(self.derr(
                        *at,
                        format!(
                            "the prefix 'xml' and the URI {XML_NS} only go together, not '{prefix}' = '{uri}' (XTDE0925)"
                        ),
                    ));
                }
                if uri == XMLNS_NS || !is_namespace_uri(&uri) {
                    return Err(self.derr(
                        *at,
                        format!("invalid namespace URI '{uri}' for prefix '{prefix}' (XTDE0905)"),
                    ));
                }
                if let Some(b) = self.top_tree() {
                    if !b.can_add_attribute() {
                        return Err(self.derr(
                            *at,
                            "xsl:namespace needs an element parent before its children (XTDE0420)",
                        ));
                    }
                    if prefix.is_empty()
                        && b.pending_element_name().is_some_and(|n| n.uri.is_empty())
                    {
                        return Err(self.derr(
                            *at,
                            "a default namespace cannot be added to an element in no namespace (XTDE0440)",
                        ));
                    }
                    // a binding made for the element's own name is not a
                    // namespace node of its own: the serializer renames the
                    // element's prefix then
                    let own = b.pending_element_name().filter(|n| n.prefix == prefix);
                    if let Some(bound) = b.pending_namespace_decl(&prefix) {
                        if bound != uri && own.is_none_or(|n| n.uri != bound) {
                            let msg = format!(
                                "namespace prefix '{prefix}' is already bound to '{bound}' on this element, cannot add '{uri}' (XTDE0430)"
                            );
                            return Err(self.derr(*at, msg));
                        }
                    }
                }
                self.out_namespace(&prefix, &uri, *at)
            }
            Instr::Copy { body, at } => {
                let Some(item) = f.map(|f| f.item.clone()) else {
                    return Err(self.derr(*at, "xsl:copy needs a context item (XTTE0945)"));
                };
                match item {
                    Item::Node(n) => match n.kind() {
                        NodeKind::Document => {
                            let open = self.top_tree().map(|b| b.can_add_attribute());
                            if open == Some(false) {
                                // the content goes straight into the tree:
                                // attributes there are refused by the builder
                                self.exec(body, f, mode)
                            } else if open == Some(true) {
                                // an element just started: the new document's
                                // content must not become its attributes
                                // (XTDE0420), so it is built apart and copied
                                self.sinks.push(Sink::Tree(Box::new(Builder::new_document(
                                    n.doc.uri.clone(),
                                ))));
                                let r = self.exec(body, f, mode);
                                let doc = self.pop_tree();
                                r?;
                                let doc = self.env.arena.alloc(doc);
                                for child in doc.root().children() {
                                    self.out_copy(child, *at)?;
                                }
                                Ok(())
                            } else {
                                self.sinks.push(Sink::Tree(Box::new(Builder::new_document(
                                    n.doc.uri.clone(),
                                ))));
                                let r = self.exec(body, f, mode);
                                let doc = self.pop_tree();
                                r?;
                                let doc = self.env.arena.alloc(doc);
                                if let Some(Sink::Seq(items)) = self.sinks.last_mut() {
                                    items.push(Item::Node(doc.root()));
                                }
                                Ok(())
                            }
                        }
                        NodeKind::Element => {
                            let Some(name) = n.name() else {
                                return Ok(());
                            };
                            let pushed = self.start_element(name);
                            self.copy_namespaces(n, *at)?;
                            self.exec(body, f, mode)?;
                            self.end_element(pushed, *at)
                        }
                        _ => self.out_copy(n, *at),
                    },
                    other => self.out_sequence(&Sequence::One(other), true, *at),
                }
            }
            Instr::CopyOf { select, at } => {
                let seq = self.eval(*select, f)?;
                self.out_sequence(&seq, true, *at)
            }
            Instr::Sequence { select, at } => {
                let seq = self.eval(*select, f)?;
                self.out_sequence(&seq, false, *at)
            }
            Instr::Message {
                value,
                terminate,
                at,
            } => {
                let text = self.string_of(value, f, mode, None, false)?;
                let terminate = match terminate {
                    None => false,
                    Some(avt) => {
                        let v = self.avt(avt, f)?;
                        crate::compile::terminate_flag(&v).ok_or_else(|| {
                            self.derr(*at, format!("invalid terminate value '{v}' (XTDE0030)"))
                        })?
                    }
                };
                if terminate {
                    return Err(TransformError::Terminated { message: text });
                }
                self.messages.push(text);
                Ok(())
            }
            Instr::Number { def, at } => {
                let text = self.number(def, f, *at)?;
                self.out_text(&text, *at)
            }
            other => self.instr3(other, f, mode),
        }
    }
}

impl<'a> Host<'a> for Run<'a, '_> {
    fn static_base_uri(&self) -> Option<&str> {
        self.static_base()
    }

    fn variable(&mut self, id: u32) -> XResult<Sequence<'a>> {
        match decode_var(id) {
            VarRef::Local(s) => Ok(self.locals.get(self.base + s).cloned().unwrap_or_default()),
            VarRef::Global(g) => self.global(g).map_err(|e| self.stash(e)),
            VarRef::Supplied => Ok(self.supplied.clone().unwrap_or_default()),
        }
    }

    fn call(&mut self, id: u32, args: Vec<Sequence<'a>>) -> XResult<Sequence<'a>> {
        self.call_host(id, args).map_err(|e| self.stash(e))
    }
}

/// The XSLT instructions `element-available()` reports.
const SUPPORTED_INSTRUCTIONS: &[&str] = &[
    "apply-templates",
    "attribute",
    "call-template",
    "choose",
    "comment",
    "copy",
    "copy-of",
    "element",
    "for-each",
    "if",
    "message",
    "namespace",
    "number",
    "otherwise",
    "processing-instruction",
    "sequence",
    "sort",
    "text",
    "value-of",
    "variable",
    "when",
    "with-param",
    "param",
    "template",
    "function",
    "key",
    "output",
    "stylesheet",
    "transform",
    "include",
    "import",
    "strip-space",
    "preserve-space",
    "decimal-format",
    "next-match",
    "mode",
    "analyze-string",
    "break",
    "catch",
    "for-each-group",
    "iterate",
    "map",
    "map-entry",
    "matching-substring",
    "next-iteration",
    "non-matching-substring",
    "on-completion",
    "perform-sort",
    "where-populated",
    "on-empty",
    "on-non-empty",
    "try",
];

/// Is the function `q` with `arity` (any arity: `None`) available?
fn function_available(c: &Compiled, q: &XName, arity: Option<usize>) -> bool {
    c.function_names
        .iter()
        .any(|((name, a), _)| *name == q.key() && arity.is_none_or(|n| n == *a))
        || crate::xpath::builtin_function_available(q, arity)
}

/// The effective boolean value of a sequence.
fn effective_boolean(seq: &Sequence<'_>) -> Result<bool, String> {
    match seq.items() {
        [] => Ok(false),
        [Item::Node(_), ..] => Ok(true),
        [Item::Atomic(a)] => match a {
            Atomic::Boolean(b) => Ok(*b),
            Atomic::String(s) | Atomic::Untyped(s) | Atomic::AnyUri(s) => Ok(!s.is_empty()),
            a if a.is_numeric() => {
                let n = a.to_number();
                Ok(n != 0.0 && !n.is_nan())
            }
            other => Err(format!(
                "the effective boolean value of a {:?} value is not defined (FORG0006)",
                other.type_of()
            )),
        },
        _ => Err("the effective boolean value of this sequence is not defined (FORG0006)".into()),
    }
}

fn numeric_singleton(seq: &Sequence<'_>) -> Option<f64> {
    match seq.items() {
        [Item::Atomic(a)] if a.is_numeric() => Some(a.to_number()),
        _ => None,
    }
}

/// The local path of a `file:` URI (percent-decoded), if it is one.
fn file_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = rest.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Some(PathBuf::from(String::from_utf8(out).ok()?))
}

/// The XML namespace, bound to the prefix `xml` only.
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace of namespace declarations: never the URI of a node.
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// A namespace URI computed at run time is usable (`xs:anyURI`, checked
/// cheaply: at most one fragment separator, no whitespace at the ends).
fn is_namespace_uri(uri: &str) -> bool {
    uri.matches('#').count() <= 1
}

fn sanitize_comment(text: &str) -> String {
    let mut s = text.to_string();
    while s.contains("--") {
        s = s.replace("--", "- -");
    }
    if s.ends_with('-') {
        s.push(' ');
    }
    s
}

/// Codepoint comparison, with `case-order` applied when given: letters are
/// first compared case-insensitively, ties broken by the requested case.
fn compare_text(a: &str, b: &str, upper_first: Option<bool>) -> std::cmp::Ordering {
    match upper_first {
        None => a.cmp(b),
        Some(upper) => {
            let la = a.to_lowercase();
            let lb = b.to_lowercase();
            la.cmp(&lb).then_with(|| {
                for (x, y) in a.chars().zip(b.chars()) {
                    if x != y {
                        let xu = x.is_uppercase();
                        let yu = y.is_uppercase();
                        if xu != yu {
                            return if xu == upper {
                                std::cmp::Ordering::Less
                            } else {
                                std::cmp::Ordering::Greater
                            };
                        }
                        return x.cmp(&y);
                    }
                }
                a.len().cmp(&b.len())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_boolean_values() {
        assert_eq!(effective_boolean(&Sequence::Empty), Ok(false));
        assert_eq!(effective_boolean(&Sequence::string("")), Ok(false));
        assert_eq!(effective_boolean(&Sequence::string("x")), Ok(true));
        assert_eq!(effective_boolean(&Sequence::double(f64::NAN)), Ok(false));
        assert_eq!(effective_boolean(&Sequence::integer(2)), Ok(true));
        let two = Sequence::from_vec(vec![
            Item::Atomic(Atomic::Integer(1)),
            Item::Atomic(Atomic::Integer(2)),
        ]);
        assert!(effective_boolean(&two).is_err());
    }

    #[test]
    fn case_order() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_text("a", "A", Some(true)), Greater);
        assert_eq!(compare_text("a", "A", Some(false)), Less);
        assert_eq!(compare_text("a", "b", None), Less);
    }

    #[test]
    fn comments_are_sanitized() {
        assert_eq!(sanitize_comment("a--b-"), "a- -b- ");
    }
}

/// The dynamic context of the XSLT 2.0/3.0 instructions, kept apart from
/// the core run state; stylesheets that do not use these instructions
/// never touch it.
#[derive(Default)]
struct Ext<'a> {
    /// `current-group()` / `current-grouping-key()`, innermost last.
    groups: Vec<(Rc<Vec<Item<'a>>>, Sequence<'a>)>,
    /// The captured groups of the innermost `xsl:matching-substring`
    /// (group 0 is the whole match); empty in `xsl:non-matching-substring`.
    regex_groups: Vec<Rc<Vec<String>>>,
    /// The current template rule (template, mode), for `xsl:next-match`.
    rule: Option<(usize, usize)>,
    /// The tunnel parameters of the current template.
    tunnel: Rc<Vec<(&'a XName, Sequence<'a>)>>,
    /// Set by `xsl:next-iteration` for the enclosing `xsl:iterate`.
    next_iteration: Option<Vec<(&'a XName, Sequence<'a>)>>,
    /// Set by `xsl:break`.
    broke: bool,
    /// Where the last [`Instr::SequenceSpaced`] ended with an atomic value
    /// in a tree: (sink depth, builder depth, next node index).
    atomic_end: Option<(usize, usize, u32)>,
}

/// The error code (namespace, local name) of a dynamic error message:
/// `CODE: …` (XPath errors), `Q{ns}local: …`, or `… (CODE)` (XSLT errors).
fn error_code(message: &str) -> (String, String) {
    let is_code = |s: &str| {
        s.len() == 8
            && s.bytes().take(4).all(|b| b.is_ascii_uppercase())
            && s.bytes().skip(4).all(|b| b.is_ascii_digit())
    };
    const ERR: &str = "http://www.w3.org/2005/xqt-errors";
    // XPath errors read `CODE: description in `expr``
    if let Some((first, _)) = message.split_once(": ") {
        let first = first.trim();
        if !first.is_empty()
            && !first.starts_with("Q{")
            && first
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return (ERR.to_string(), first.to_string());
        }
    }
    for part in message.split(": ") {
        let part = part.trim();
        if is_code(part) {
            return (ERR.to_string(), part.to_string());
        }
        if let Some(rest) = part.strip_prefix("Q{") {
            if let Some((ns, local)) = rest.split_once('}') {
                if !local.is_empty() && !local.contains(' ') {
                    return (ns.to_string(), local.to_string());
                }
            }
        }
    }
    let mut rest = message;
    let mut found = None;
    while let Some(i) = rest.find('(') {
        let after = rest.get(i + 1..).unwrap_or("");
        if let Some(code) = after.get(..8) {
            if is_code(code) && after.get(8..9) == Some(")") {
                found = Some(code.to_string());
            }
        }
        rest = after;
    }
    (
        ERR.to_string(),
        found.unwrap_or_else(|| "FOER0000".to_string()),
    )
}

/// The description of a dynamic error: the message without the leading
/// error code and the trailing `in `expression``.
fn error_description(message: &str) -> String {
    let (_, code) = error_code(message);
    let text = message
        .strip_prefix(code.as_str())
        .and_then(|r| r.strip_prefix(": "))
        .unwrap_or(message);
    let text = match text.rfind(" in `") {
        Some(i) if text.ends_with('`') => text.get(..i).unwrap_or(text),
        _ => text,
    };
    text.to_string()
}

/// Is an item "deemed empty" (XSLT 3.0 §8.4): a zero-length text node or
/// string, a document node without children, an empty array or map, and
/// for `xsl:where-populated` also an element without children.
fn deemed_empty(item: &Item<'_>, elements: bool) -> bool {
    match item {
        Item::Node(n) => match n.kind() {
            NodeKind::Text => n.string_value().is_empty(),
            NodeKind::Document => n.children().next().is_none(),
            NodeKind::Element => elements && n.children().next().is_none(),
            _ => false,
        },
        Item::Atomic(a) => a.is_stringlike() && a.to_xs_string().is_empty(),
        Item::Array(a) => a.members.is_empty(),
        Item::Map(m) => m.entries.is_empty(),
        Item::Function(_) => false,
    }
}

/// Atomizes a grouping or sort key.
fn atomize<'a>(seq: &Sequence<'a>) -> Result<Vec<Atomic>, String> {
    let mut out = Vec::with_capacity(seq.len());
    for item in seq.iter() {
        match item {
            Item::Atomic(a) => out.push(a.clone()),
            Item::Node(n) => out.push(Atomic::untyped(n.string_value())),
            Item::Array(a) => {
                for m in &a.members {
                    out.extend(atomize(m)?);
                }
            }
            _ => return Err("a function item cannot be atomized (FOTY0013)".to_string()),
        }
    }
    Ok(out)
}

impl<'a> Run<'a, '_> {
    /// The XSLT 2.0/3.0 instructions.
    fn instr3(&mut self, instr: &'a Instr, f: Option<&Focus<'a>>, mode: usize) -> R<()> {
        match instr {
            Instr::ForEachGroup {
                select,
                kind,
                sorts,
                body,
                at,
            } => self.for_each_group(*select, kind, sorts, body, f, mode, *at),
            Instr::AnalyzeString {
                select,
                regex,
                flags,
                analyze,
                matching,
                non_matching,
                at,
            } => {
                let input = self.eval(*select, f)?;
                let input =
                    match input.first() {
                        None => String::new(),
                        Some(_) if input.len() > 1 => return Err(self.derr(
                            *at,
                            "the select of xsl:analyze-string gives more than one item (XTTE0570)",
                        )),
                        Some(item) => self.item_string(item, *select)?,
                    };
                let regex = self.avt(regex, f)?;
                let flags = self.avt(flags, f)?;
                let args = Sequence::from_vec(vec![
                    Item::Atomic(Atomic::string(&input)),
                    Item::Atomic(Atomic::string(&regex)),
                    Item::Atomic(Atomic::string(&flags)),
                ]);
                let result = self.coerce(*analyze, args).map_err(|e| {
                    let text = e.to_string();
                    if text.contains("FORX0003") {
                        self.derr(*at, format!("the regex of xsl:analyze-string matches a zero-length string (XTDE1150): {text}"))
                    } else {
                        e
                    }
                })?;
                let Some(root) = result.first().and_then(Item::as_node) else {
                    return Ok(());
                };
                let root = if root.kind() == NodeKind::Document {
                    match root.children().find(|c| c.kind() == NodeKind::Element) {
                        Some(e) => e,
                        None => return Ok(()),
                    }
                } else {
                    root
                };
                let parts: Vec<Node<'a>> = root
                    .children()
                    .filter(|c| c.kind() == NodeKind::Element)
                    .collect();
                let size = parts.len();
                for (i, part) in parts.into_iter().enumerate() {
                    let text = part.string_value().to_string();
                    let is_match = part.local_name() == "match";
                    let body = if is_match { matching } else { non_matching };
                    if body.is_empty() {
                        continue;
                    }
                    let groups = if is_match {
                        let mut groups = vec![text.clone()];
                        for d in part.descendants() {
                            if d.kind() != NodeKind::Element || d.local_name() != "group" {
                                continue;
                            }
                            let nr = d
                                .attributes()
                                .find(|a| a.local_name() == "nr")
                                .and_then(|a| a.string_value().trim().parse::<usize>().ok());
                            if let Some(nr) = nr.filter(|n| *n > 0 && *n < 10_000) {
                                if groups.len() <= nr {
                                    groups.resize(nr + 1, String::new());
                                }
                                if let Some(g) = groups.get_mut(nr) {
                                    *g = d.string_value().to_string();
                                }
                            }
                        }
                        groups
                    } else {
                        Vec::new()
                    };
                    let focus = Focus {
                        item: Item::Atomic(Atomic::string(&text)),
                        position: i + 1,
                        size,
                    };
                    self.ext.regex_groups.push(Rc::new(groups));
                    let r = self.exec(body, Some(&focus), mode);
                    self.ext.regex_groups.pop();
                    r?;
                }
                Ok(())
            }
            Instr::NextMatch { params, tunnel, at } => {
                let params = self.with_params(params, f, mode)?;
                if tunnel.is_empty() {
                    self.next_match(f, &params, *at)
                } else {
                    let saved = self.push_tunnel(tunnel, f, mode)?;
                    let r = self.next_match(f, &params, *at);
                    self.ext.tunnel = saved;
                    r
                }
            }
            Instr::WithTunnel { params, body } => {
                let saved = self.push_tunnel(params, f, mode)?;
                let r = self.instr(body, f, mode);
                self.ext.tunnel = saved;
                r
            }
            Instr::TunnelParam {
                name,
                slot,
                value,
                required,
                at,
            } => {
                let tunnel = self.ext.tunnel.clone();
                let v = match tunnel.iter().rev().find(|(n, _)| *n == name) {
                    Some((_, v)) => v.clone(),
                    None if *required => {
                        return Err(self.derr(
                            *at,
                            format!(
                                "required tunnel parameter ${} was not supplied (XTDE0700)",
                                name.local_name()
                            ),
                        ))
                    }
                    None => self.value(value, f, mode)?,
                };
                match self.locals.get_mut(self.base + slot) {
                    Some(s) => {
                        *s = v;
                        Ok(())
                    }
                    None => Err(self.derr(*at, "internal error: parameter slot out of range")),
                }
            }
            Instr::Iterate {
                select,
                params,
                body,
                on_completion,
                at,
            } => {
                let items = self.eval(*select, f)?.into_vec();
                for (_, slot, value) in params {
                    let v = self.value(value, f, mode)?;
                    self.set_local(*slot, v, *at)?;
                }
                let size = items.len();
                let saved_next = self.ext.next_iteration.take();
                let saved_broke = std::mem::replace(&mut self.ext.broke, false);
                let mut r = Ok(());
                let mut broke = false;
                for (i, item) in items.into_iter().enumerate() {
                    let focus = Focus {
                        item,
                        position: i + 1,
                        size,
                    };
                    r = self.exec(body, Some(&focus), mode);
                    if r.is_err() {
                        break;
                    }
                    if std::mem::take(&mut self.ext.broke) {
                        broke = true;
                        break;
                    }
                    if let Some(values) = self.ext.next_iteration.take() {
                        for (name, v) in values {
                            let Some((_, slot, _)) = params.iter().find(|(n, _, _)| *n == *name)
                            else {
                                r = Err(self.derr(
                                    *at,
                                    format!(
                                        "xsl:next-iteration sets ${}, which is no parameter of xsl:iterate (XTSE3130)",
                                        name.local_name()
                                    ),
                                ));
                                break;
                            };
                            if let Err(e) = self.set_local(*slot, v, *at) {
                                r = Err(e);
                                break;
                            }
                        }
                        if r.is_err() {
                            break;
                        }
                    }
                }
                self.ext.next_iteration = saved_next;
                self.ext.broke = saved_broke;
                r?;
                if !broke {
                    self.exec(on_completion, None, mode)?;
                }
                Ok(())
            }
            Instr::NextIteration { params, .. } => {
                let values = self.with_params(params, f, mode)?;
                self.ext.next_iteration = Some(values);
                Ok(())
            }
            Instr::Break { value, at } => {
                match value {
                    Value::Select(id) => {
                        let seq = self.eval(*id, f)?;
                        self.out_sequence(&seq, false, *at)?;
                    }
                    Value::Body(b) => self.exec(b, f, mode)?,
                    _ => {}
                }
                self.ext.broke = true;
                Ok(())
            }
            Instr::Try { body, catches, at } => self.try_catch(body, catches, f, mode, *at),
            Instr::PerformSort {
                select,
                sorts,
                body,
                at,
            } => {
                let items = match select {
                    Some(id) => self.eval(*id, f)?.into_vec(),
                    None => self.collect_items(body, f, mode)?,
                };
                let items = self.sort_items(items, sorts, *at)?;
                self.out_sequence(&Sequence::from_vec(items), false, *at)
            }
            Instr::MapConstruct { body, at } => {
                let items = self.collect_items(body, f, mode)?;
                let mut map = drehscheibe_xpath::value::Map::default();
                for item in items {
                    let Item::Map(m) = item else {
                        return Err(
                            self.derr(*at, "the content of xsl:map must be maps (XTTE3375)")
                        );
                    };
                    for (k, v) in m.entries.iter() {
                        if map.entries.contains_key(k) {
                            return Err(self.derr(
                                *at,
                                format!(
                                    "duplicate key '{}' in xsl:map (XTDE3365)",
                                    v.0.to_xs_string()
                                ),
                            ));
                        }
                        map.entries.insert(k.clone(), v.clone());
                    }
                }
                self.out_sequence(&Sequence::One(Item::Map(Rc::new(map))), false, *at)
            }
            Instr::MapEntry { key, value, at } => {
                let k = self.eval(*key, f)?;
                let k = atomize(&k).map_err(|e| self.derr(*at, e))?;
                let [k] = k.as_slice() else {
                    return Err(self.derr(
                        *at,
                        "the key of xsl:map-entry must be a single atomic value (XTTE3375)",
                    ));
                };
                let v = self.value(value, f, mode)?;
                let mut map = drehscheibe_xpath::value::Map::default();
                map.entries
                    .insert(drehscheibe_xpath::value::MapKey::of(k), (k.clone(), v));
                self.out_sequence(&Sequence::One(Item::Map(Rc::new(map))), false, *at)
            }
            Instr::SequenceSpaced { select, check, at } => {
                let seq = self.eval(*select, f)?;
                let depth = self.sinks.len();
                if *check && matches!(seq.first(), Some(Item::Atomic(_))) {
                    let mark = self.top_tree().map(|b| (b.depth(), b.next_index()));
                    if let (Some((d, n)), Some(end)) = (mark, self.ext.atomic_end) {
                        if end == (depth, d, n) {
                            self.out_text(" ", *at)?;
                        }
                    }
                }
                self.out_sequence(&seq, false, *at)?;
                self.ext.atomic_end = match (seq.iter().last(), self.top_tree()) {
                    (Some(Item::Atomic(_)), Some(b)) => Some((depth, b.depth(), b.next_index())),
                    _ => None,
                };
                Ok(())
            }
            Instr::ValueOfSeq {
                body,
                separator,
                at,
            } => {
                let items = self.collect_items(body, f, mode)?;
                let sep = match separator {
                    Some(a) => self.avt(a, f)?,
                    None => String::new(),
                };
                let mut out = String::new();
                let mut prev_text = false;
                let mut first = true;
                for item in &items {
                    let is_text = matches!(item, Item::Node(n) if n.kind() == NodeKind::Text);
                    let s = self.item_string(item, 0)?;
                    if is_text && s.is_empty() {
                        continue;
                    }
                    if !(first || is_text && prev_text) {
                        out.push_str(&sep);
                    }
                    out.push_str(&s);
                    first = false;
                    prev_text = is_text;
                }
                self.out_text(&out, *at)
            }
            Instr::TextTemplate(avt, at) => {
                let text = self.avt(avt, f)?;
                self.out_text(&text, *at)
            }
            Instr::WherePopulated { body, at } => {
                let items = self.collect_items(body, f, mode)?;
                let items: Vec<Item<'a>> = items
                    .into_iter()
                    .filter(|i| !deemed_empty(i, true))
                    .collect();
                self.out_sequence(&Sequence::from_vec(items), false, *at)
            }
            Instr::Conditional { parts, at } => {
                let mut segments: Vec<Result<Vec<Item<'a>>, &Vec<Instr>>> = Vec::new();
                for part in parts {
                    match part {
                        Instr::OnEmpty(_) => {}
                        Instr::OnNonEmpty(b) => segments.push(Err(b)),
                        other => {
                            let items = self.collect_items(std::slice::from_ref(other), f, mode)?;
                            segments.push(Ok(items));
                        }
                    }
                }
                let empty = segments.iter().all(|s| match s {
                    Ok(items) => items.iter().all(|i| deemed_empty(i, false)),
                    Err(_) => true,
                });
                if empty {
                    for part in parts {
                        if let Instr::OnEmpty(b) = part {
                            self.exec(b, f, mode)?;
                        }
                    }
                    return Ok(());
                }
                for s in segments {
                    match s {
                        Ok(items) => self.out_sequence(&Sequence::from_vec(items), false, *at)?,
                        Err(b) => self.exec(b, f, mode)?,
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn set_local(&mut self, slot: usize, v: Sequence<'a>, at: At) -> R<()> {
        match self.locals.get_mut(self.base + slot) {
            Some(s) => {
                *s = v;
                Ok(())
            }
            None => Err(self.derr(at, "internal error: variable slot out of range")),
        }
    }

    /// Runs a sequence constructor into a sequence of items.
    fn collect_items(
        &mut self,
        body: &'a [Instr],
        f: Option<&Focus<'a>>,
        mode: usize,
    ) -> R<Vec<Item<'a>>> {
        let depth = self.sinks.len();
        self.sinks.push(Sink::Seq(Vec::new()));
        let r = self.exec(body, f, mode);
        self.sinks.truncate(depth + 1);
        let items = match self.sinks.pop() {
            Some(Sink::Seq(items)) => items,
            _ => Vec::new(),
        };
        r?;
        Ok(items)
    }

    /// Adds tunnel parameters to the tunnel set; returns the previous set.
    fn push_tunnel(
        &mut self,
        params: &'a [WithParam],
        f: Option<&Focus<'a>>,
        mode: usize,
    ) -> R<Rc<Vec<(&'a XName, Sequence<'a>)>>> {
        let values = self.with_params(params, f, mode)?;
        let mut set: Vec<(&'a XName, Sequence<'a>)> = self
            .ext
            .tunnel
            .iter()
            .filter(|(n, _)| !values.iter().any(|(m, _)| m == n))
            .cloned()
            .collect();
        set.extend(values);
        Ok(std::mem::replace(&mut self.ext.tunnel, Rc::new(set)))
    }

    /// `xsl:next-match`: the next matching rule after the current one.
    fn next_match(
        &mut self,
        f: Option<&Focus<'a>>,
        params: &[(&'a XName, Sequence<'a>)],
        at: At,
    ) -> R<()> {
        let Some((current, mode)) = self.ext.rule else {
            return Err(self.derr(
                at,
                "xsl:next-match needs a current template rule (XTDE0560)",
            ));
        };
        let Some(focus) = f else {
            return Err(self.derr(at, "xsl:next-match needs a context item (XTDE0560)"));
        };
        let Some(node) = focus.item.as_node() else {
            return Ok(());
        };
        let rules = self.candidates(mode, node);
        let c = self.c;
        let mut passed = false;
        let mut next = None;
        for rule in rules.iter() {
            let Some(t) = c.templates.get(rule.template) else {
                continue;
            };
            let Some(alt) = t.pattern.as_ref().and_then(|p| p.alts.get(rule.alt)) else {
                continue;
            };
            if !passed {
                if rule.template == current && self.alt_matches(alt, node)? {
                    passed = true;
                }
                continue;
            }
            if rule.template != current && self.alt_matches(alt, node)? {
                next = Some(rule.template);
                break;
            }
        }
        match next {
            Some(t) => {
                let saved = self.ext.rule.replace((t, mode));
                let r = self.invoke(t, Some(focus), params, mode, Some(at));
                self.ext.rule = saved;
                r
            }
            None => {
                // the built-in rule: children in the same mode
                let saved = self.ext.rule.take();
                let r = self.builtin(node, mode, params, Some(at));
                self.ext.rule = saved;
                r
            }
        }
    }

    /// `xsl:mode on-multiple-match="fail"`: two matching rules of the
    /// same import precedence and priority are an error (XTDE0540).
    fn check_multiple_match(&mut self, node: Node<'a>, mode: usize, at: Option<At>) -> R<()> {
        let rules = self.candidates(mode, node);
        let c = self.c;
        let mut best: Option<(usize, usize, f64)> = None;
        for rule in rules.iter() {
            let Some(t) = c.templates.get(rule.template) else {
                continue;
            };
            let Some(alt) = t.pattern.as_ref().and_then(|p| p.alts.get(rule.alt)) else {
                continue;
            };
            if let Some((template, precedence, priority)) = best {
                if rule.precedence != precedence || rule.priority != priority {
                    break;
                }
                if rule.template != template && self.alt_matches(alt, node)? {
                    return Err(self.derr(
                        at.unwrap_or(NO_AT),
                        "several template rules match the node with the same precedence and priority, and the mode has on-multiple-match=\"fail\" (XTDE0540)",
                    ));
                }
            } else if self.alt_matches(alt, node)? {
                best = Some((rule.template, rule.precedence, rule.priority));
            }
        }
        Ok(())
    }

    /// The built-in template rules of `xsl:mode on-no-match`.
    fn builtin3(
        &mut self,
        node: Node<'a>,
        mode: usize,
        params: &[(&'a XName, Sequence<'a>)],
        at: Option<At>,
        on_no_match: OnNoMatch,
    ) -> R<()> {
        let at_ = at.unwrap_or(NO_AT);
        let container = matches!(node.kind(), NodeKind::Document | NodeKind::Element);
        match on_no_match {
            OnNoMatch::DeepCopy => self.out_copy(node, at_),
            OnNoMatch::DeepSkip => Ok(()),
            OnNoMatch::Fail => Err(self.derr(
                at_,
                "no template rule matches the node and the mode has on-no-match=\"fail\" (XTDE0555)",
            )),
            OnNoMatch::ShallowSkip | OnNoMatch::ShallowCopy if !container => {
                if on_no_match == OnNoMatch::ShallowCopy {
                    self.out_copy(node, at_)
                } else {
                    Ok(())
                }
            }
            OnNoMatch::ShallowSkip | OnNoMatch::ShallowCopy | OnNoMatch::TextOnlyCopy => {
                let mut nodes: Vec<Node<'a>> = node.attributes().collect();
                nodes.extend(node.children());
                self.env
                    .enter()
                    .map_err(|e| self.derr(at_, e.to_string()))?;
                let copy_element = on_no_match == OnNoMatch::ShallowCopy
                    && node.kind() == NodeKind::Element;
                let r = stacker::maybe_grow(RED_ZONE, STACK_GROWTH, || {
                    if !copy_element {
                        return self.apply(&nodes, mode, params, at);
                    }
                    let Some(name) = node.name() else {
                        return Ok(());
                    };
                    let pushed = self.start_element(name);
                    self.copy_namespaces(node, at_)?;
                    self.apply(&nodes, mode, params, at)?;
                    self.end_element(pushed, at_)
                });
                self.env.leave();
                r
            }
        }
    }

    /// `xsl:try` / `xsl:catch`: the body's output is kept aside and only
    /// added when the body succeeds (rollback of partial output).
    fn try_catch(
        &mut self,
        body: &'a Value,
        catches: &'a [Catch],
        f: Option<&Focus<'a>>,
        mode: usize,
        at: At,
    ) -> R<()> {
        let saved_groups = self.ext.groups.len();
        let saved_regex = self.ext.regex_groups.len();
        let saved_rule = self.ext.rule;
        let saved_tunnel = self.ext.tunnel.clone();
        let r = match body {
            Value::Select(id) => self.eval(*id, f).map(Sequence::into_vec),
            Value::Body(b) | Value::BodyAs(b, _) => self.collect_items(b, f, mode),
            Value::Empty => Ok(Vec::new()),
        };
        let e = match r {
            Ok(items) => return self.out_sequence(&Sequence::from_vec(items), false, at),
            Err(e) => e,
        };
        self.ext.groups.truncate(saved_groups);
        self.ext.regex_groups.truncate(saved_regex);
        self.ext.rule = saved_rule;
        self.ext.tunnel = saved_tunnel;
        self.pending = None;
        let (description, module, line, (ns, local)) = match &e {
            TransformError::Dynamic {
                file,
                line,
                message,
            } => (
                error_description(message),
                file.display().to_string(),
                *line,
                error_code(message),
            ),
            TransformError::Terminated { message } => (
                message.clone(),
                String::new(),
                0,
                (
                    "http://www.w3.org/2005/xqt-errors".to_string(),
                    "XTMM9000".to_string(),
                ),
            ),
            _ => return Err(e),
        };
        let Some(catch) = catches.iter().find(|c| {
            c.errors.iter().any(|(n, l)| {
                n.as_deref().is_none_or(|n| n == ns) && l.as_deref().is_none_or(|l| l == local)
            })
        }) else {
            return Err(e);
        };
        let prefix = if ns == "http://www.w3.org/2005/xqt-errors" {
            "err"
        } else {
            ""
        };
        let values: [Sequence<'a>; 6] = [
            Sequence::One(Item::Atomic(Atomic::QName(std::sync::Arc::new(
                QName::new(&ns, &local, prefix),
            )))),
            Sequence::string(&description),
            Sequence::Empty,
            Sequence::string(&module),
            Sequence::integer(line as i64),
            Sequence::Empty,
        ];
        for (slot, v) in catch.slots.iter().zip(values) {
            self.set_local(*slot, v, at)?;
        }
        match &catch.body {
            Value::Select(id) => {
                let seq = self.eval(*id, f)?;
                self.out_sequence(&seq, false, at)
            }
            Value::Body(b) | Value::BodyAs(b, _) => self.exec(b, f, mode),
            Value::Empty => Ok(()),
        }
    }

    /// `xsl:for-each-group` (XSLT 3.0 §14).
    #[allow(clippy::too_many_arguments)]
    fn for_each_group(
        &mut self,
        select: ExprId,
        kind: &GroupKind,
        sorts: &[Sort],
        body: &'a [Instr],
        f: Option<&Focus<'a>>,
        mode: usize,
        at: At,
    ) -> R<()> {
        use drehscheibe_xpath::value::MapKey;
        let items = self.eval(select, f)?.into_vec();
        let size = items.len();
        let mut groups: Vec<(Vec<Item<'a>>, Sequence<'a>)> = Vec::new();
        match kind {
            GroupKind::By { key, composite } => {
                let mut index: HashMap<Vec<MapKey>, usize> = HashMap::new();
                for (i, item) in items.iter().enumerate() {
                    let focus = Focus {
                        item: item.clone(),
                        position: i + 1,
                        size,
                    };
                    let k = self.eval(*key, Some(&focus))?;
                    let atoms = atomize(&k).map_err(|e| self.derr(at, e))?;
                    let keys: Vec<Vec<Atomic>> = if *composite {
                        vec![atoms]
                    } else {
                        atoms.into_iter().map(|a| vec![a]).collect()
                    };
                    let mut joined: Vec<usize> = Vec::new();
                    for k in keys {
                        let hk: Vec<MapKey> = k.iter().map(MapKey::of).collect();
                        match index.get(&hk) {
                            Some(&g) => {
                                if !joined.contains(&g) {
                                    joined.push(g);
                                    if let Some(group) = groups.get_mut(g) {
                                        group.0.push(item.clone());
                                    }
                                }
                            }
                            None => {
                                index.insert(hk, groups.len());
                                joined.push(groups.len());
                                let key_seq =
                                    Sequence::from_vec(k.into_iter().map(Item::Atomic).collect());
                                groups.push((vec![item.clone()], key_seq));
                            }
                        }
                    }
                }
            }
            GroupKind::Adjacent { key, composite } => {
                let mut last: Option<Vec<MapKey>> = None;
                for (i, item) in items.iter().enumerate() {
                    let focus = Focus {
                        item: item.clone(),
                        position: i + 1,
                        size,
                    };
                    let k = self.eval(*key, Some(&focus))?;
                    let atoms = atomize(&k).map_err(|e| self.derr(at, e))?;
                    if !*composite && atoms.len() != 1 {
                        return Err(self.derr(
                            at,
                            "the group-adjacent key must be a single atomic value (XTTE1100)",
                        ));
                    }
                    let hk: Vec<MapKey> = atoms.iter().map(MapKey::of).collect();
                    match (&last, groups.last_mut()) {
                        (Some(l), Some(group)) if *l == hk => group.0.push(item.clone()),
                        _ => {
                            let key_seq =
                                Sequence::from_vec(atoms.into_iter().map(Item::Atomic).collect());
                            groups.push((vec![item.clone()], key_seq));
                            last = Some(hk);
                        }
                    }
                }
            }
            GroupKind::StartingWith(p) | GroupKind::EndingWith(p) => {
                let starting = matches!(kind, GroupKind::StartingWith(_));
                let mut open = false;
                for item in &items {
                    let Some(node) = item.as_node() else {
                        return Err(self.derr(
                            at,
                            "group-starting-with/group-ending-with need a sequence of nodes (XTTE1120)",
                        ));
                    };
                    let matched = self.pattern_matches(p, node)?;
                    if starting && matched {
                        open = false;
                    }
                    match groups.last_mut() {
                        Some(group) if open => group.0.push(item.clone()),
                        _ => groups.push((vec![item.clone()], Sequence::Empty)),
                    }
                    open = !matched || starting;
                }
            }
        }
        let groups: Vec<(Rc<Vec<Item<'a>>>, Sequence<'a>)> =
            groups.into_iter().map(|(g, k)| (Rc::new(g), k)).collect();
        let groups = if sorts.is_empty() || groups.len() < 2 {
            groups
        } else {
            self.sort_groups(groups, sorts, at)?
        };
        let count = groups.len();
        for (i, (group, key)) in groups.into_iter().enumerate() {
            let Some(first) = group.first().cloned() else {
                continue;
            };
            let focus = Focus {
                item: first,
                position: i + 1,
                size: count,
            };
            self.ext.groups.push((group, key));
            let r = self.exec(body, Some(&focus), mode);
            self.ext.groups.pop();
            r?;
        }
        Ok(())
    }

    /// Sorts groups: the sort keys are evaluated with the first item of
    /// the group as context item and the group as current group.
    fn sort_groups(
        &mut self,
        groups: Vec<(Rc<Vec<Item<'a>>>, Sequence<'a>)>,
        sorts: &[Sort],
        at: At,
    ) -> R<Vec<(Rc<Vec<Item<'a>>>, Sequence<'a>)>> {
        let size = groups.len();
        let mut rows = Vec::with_capacity(size);
        for (i, (group, key)) in groups.iter().enumerate() {
            let Some(first) = group.first().cloned() else {
                rows.push(Vec::new());
                continue;
            };
            let focus = Focus {
                item: first,
                position: i + 1,
                size,
            };
            self.ext.groups.push((group.clone(), key.clone()));
            let row = self.sort_key_row(&focus, sorts, at);
            self.ext.groups.pop();
            rows.push(row?);
        }
        let order = self.sort_order(&rows, sorts, at)?;
        let mut slots: Vec<Option<(Rc<Vec<Item<'a>>>, Sequence<'a>)>> =
            groups.into_iter().map(Some).collect();
        Ok(order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take))
            .collect())
    }
}
