//! Running a compiled stylesheet: template matching, instruction
//! execution and XPath evaluation through xee.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use xee_interpreter::atomic::Atomic;
use xee_interpreter::context::{DocumentsRef, DynamicContextBuilder, Variables};
use xee_interpreter::interpreter::Program;
use xee_interpreter::sequence::{Item, Sequence};
use xot::xmlname::{NameStrInfo, OwnedName};
use xot::{NameId, Node, Value as XValue, Xot};

use crate::error::TransformError;
use crate::ir::*;
use crate::number::{format_number_list, Num, Picture};
use crate::pattern::{test_matches, Alt, Axis, IndexKey, Pattern, Root, Step, Test};
use crate::xpath::{internal_name, key_builder, programs_for, ExprId, VarRef};
use crate::Stylesheet;

type R<T> = Result<T, TransformError>;

/// Deepest nesting of template invocations before the run is aborted.
const MAX_DEPTH: usize = 5000;

/// The focus of an instruction: context item, position and size.
#[derive(Debug, Clone)]
struct Focus {
    item: Option<Item>,
    pos: usize,
    size: usize,
}

impl Focus {
    fn node(node: Node) -> Focus {
        Focus {
            item: Some(Item::Node(node)),
            pos: 1,
            size: 1,
        }
    }

    fn context_node(&self) -> Option<Node> {
        match &self.item {
            Some(Item::Node(n)) => Some(*n),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
enum GlobalState {
    Pending,
    InProgress,
    Done(Sequence),
}

/// Kind of a node for template rule lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum NodeKey {
    Document,
    Element(NameId),
    Attribute(NameId),
    Text,
    Comment,
    Pi,
    Other,
}

/// Runs `stylesheet` over `doc`.
pub(crate) fn run(
    stylesheet: &Stylesheet,
    xot: &mut Xot,
    doc: Node,
    params: &BTreeMap<String, String>,
    owned: bool,
    invocation: &crate::Invocation,
) -> R<Vec<u8>> {
    let c = stylesheet.compiled();
    let mode = match &invocation.initial_mode {
        None => 0,
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
    let (id, alive) = stylesheet.cache_identity();
    let programs = programs_for(id, alive, &c.exprs).map_err(|(i, message)| {
        let (file, line) = c.exprs.get(i).map(|d| (d.file, d.line)).unwrap_or((0, 0));
        TransformError::Dynamic {
            file: c.files.get(file).cloned().unwrap_or_default(),
            line,
            message: format!("cannot compile XPath expression: {message}"),
        }
    })?;
    if !xot.is_document(doc) {
        return Err(TransformError::Input {
            message: "the input node is not a document node".into(),
        });
    }
    for g in &c.globals {
        if g.is_param && g.required && !params.contains_key(&param_key(&g.name)) {
            return Err(TransformError::MissingParam {
                name: param_key(&g.name),
            });
        }
    }
    let mut created = Vec::new();
    let source = if c.space_rules.iter().any(|r| r.strip) {
        let source = if owned {
            doc
        } else {
            let copy = xot.clone_node(doc);
            created.push(copy);
            copy
        };
        strip_space(xot, c, source);
        source
    } else {
        doc
    };
    let result = xot.new_document();
    created.push(result);
    let outcome = {
        let mut run = Run {
            c,
            programs: &programs,
            builders: vec![None; programs.len()],
            xot: &mut *xot,
            docs: DocumentsRef::new(),
            params,
            globals: vec![GlobalState::Pending; c.globals.len()],
            locals: Vec::new(),
            base: 0,
            keys: HashMap::new(),
            temp: Vec::new(),
            depth: 0,
            names: vec![None; c.names.len()],
            nss: vec![None; c.ns_bindings.len()],
            rule_cache: HashMap::new(),
            source,
            now: chrono::Local::now().fixed_offset(),
            messages: Vec::new(),
            supplied: None,
            seq: HashMap::new(),
        };
        let r = match initial_template {
            Some(t) => run.invoke(t, &Focus::node(source), &[], mode, result, None),
            None => run.apply(&[source], &Focus::node(source), mode, &[], result, None),
        };
        created.append(&mut run.temp);
        r
    };
    let serialized = outcome.and_then(|()| crate::serialize::serialize(xot, result, &c.output));
    for node in created {
        // best effort: a node may already be gone with its tree
        let _ = xot.remove(node);
    }
    serialized
}

/// The key of a global parameter in the caller's parameter map.
pub(crate) fn param_key(name: &OwnedName) -> String {
    if name.namespace().is_empty() {
        name.local_name().to_string()
    } else {
        format!("Q{{{}}}{}", name.namespace(), name.local_name())
    }
}

/// Removes whitespace-only text nodes as `xsl:strip-space` requests.
fn strip_space(xot: &mut Xot, c: &Compiled, root: Node) {
    let mut remove = Vec::new();
    for node in xot.descendants(root) {
        let Some(text) = xot.text_str(node) else {
            continue;
        };
        if !text
            .chars()
            .all(|ch| matches!(ch, ' ' | '\t' | '\n' | '\r'))
        {
            continue;
        }
        let Some(parent) = xot.parent(node) else {
            continue;
        };
        if !xot.is_element(parent) || preserved_by_xml_space(xot, parent) {
            continue;
        }
        let mut best: Option<&SpaceRule> = None;
        for rule in &c.space_rules {
            if !test_matches(xot, parent, Axis::Child, &rule.test) {
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
        if best.is_some_and(|r| r.strip) {
            remove.push(node);
        }
    }
    for node in remove {
        let _ = xot.remove(node);
    }
}

fn preserved_by_xml_space(xot: &Xot, element: Node) -> bool {
    let xml_space = xot.xml_space_name();
    let mut current = Some(element);
    while let Some(n) = current {
        if xot.is_element(n) {
            if let Some(v) = xot.get_attribute(n, xml_space) {
                return v.trim() == "preserve";
            }
        }
        current = xot.parent(n);
    }
    false
}

struct Run<'a> {
    c: &'a Compiled,
    programs: &'a [Program],
    /// Per expression: a dynamic context builder with the run's documents
    /// and current date-time, cloned for every evaluation (creating one
    /// reads the clock and the time zone and allocates a document table).
    builders: Vec<Option<DynamicContextBuilder<'a>>>,
    xot: &'a mut Xot,
    docs: DocumentsRef,
    params: &'a BTreeMap<String, String>,
    globals: Vec<GlobalState>,
    /// Local variable slots of all active frames.
    locals: Vec<Sequence>,
    /// Start of the current frame in `locals`.
    base: usize,
    /// Key maps per (key, tree root).
    keys: HashMap<(usize, Node), Sequence>,
    /// Roots of temporary trees, removed after the run.
    temp: Vec<Node>,
    depth: usize,
    names: Vec<Option<NameId>>,
    nss: Vec<Option<(xot::PrefixId, xot::NamespaceId)>>,
    rule_cache: HashMap<(usize, NodeKey), Rc<Vec<Rule>>>,
    source: Node,
    now: chrono::DateTime<chrono::FixedOffset>,
    messages: Vec<String>,
    /// The supplied value of the global parameter being coerced.
    supplied: Option<Sequence>,
    /// Containers of sequence constructors evaluated as sequences (`as`
    /// on a variable with content) and the items built so far.
    seq: HashMap<Node, Vec<Item>>,
}

impl<'a> Run<'a> {
    // ---- errors -----------------------------------------------------------

    fn derr(&self, at: At, message: impl Into<String>) -> TransformError {
        TransformError::Dynamic {
            file: self.c.files.get(at.file).cloned().unwrap_or_default(),
            line: at.line,
            message: message.into(),
        }
    }

    fn expr_err(&self, id: ExprId, message: impl Into<String>) -> TransformError {
        let (file, line) = self
            .c
            .exprs
            .get(id)
            .map(|d| (d.file, d.line))
            .unwrap_or((0, 0));
        TransformError::Dynamic {
            file: self.c.files.get(file).cloned().unwrap_or_default(),
            line,
            message: message.into(),
        }
    }

    fn xot_err(&self, at: At, e: xot::Error) -> TransformError {
        self.derr(at, format!("cannot build the result tree: {e}"))
    }

    // ---- XPath evaluation ---------------------------------------------------

    fn eval(&mut self, id: ExprId, f: &Focus) -> R<Sequence> {
        let c = self.c;
        let Some(def) = c.exprs.get(id) else {
            return Err(self.expr_err(id, "internal error: unknown expression"));
        };
        let mut vars = Variables::default();
        for (name, r) in &def.vars {
            let value = match *r {
                VarRef::Local(slot) => self
                    .locals
                    .get(self.base + slot)
                    .cloned()
                    .unwrap_or_default(),
                VarRef::Global(g) => self.global(g)?,
                VarRef::Current => match &f.item {
                    Some(i) => Sequence::from(i.clone()),
                    None => Sequence::default(),
                },
                VarRef::Supplied => self.supplied.clone().unwrap_or_default(),
                VarRef::Position => Sequence::from(Atomic::from(f.pos as u64)),
                VarRef::Last => Sequence::from(Atomic::from(f.size as u64)),
                VarRef::Key(k) => self.key_map(k, f, id)?,
                VarRef::Hoisted(n) => {
                    let Some(h) = def.hoists.get(n) else {
                        return Err(self.expr_err(id, "internal error: unknown hoisted call"));
                    };
                    Sequence::from(Atomic::from(self.format_number_hoisted(h, f, id)?))
                }
            };
            vars.insert(name.clone(), value);
        }
        let programs = self.programs;
        let Some(program) = programs.get(id) else {
            return Err(self.expr_err(id, "internal error: expression not compiled"));
        };
        let mut builder = match self.builders.get_mut(id) {
            Some(Some(base)) => base.clone(),
            slot => {
                let mut base = program.dynamic_context_builder();
                base.documents(self.docs.clone());
                base.current_datetime(self.now);
                let builder = base.clone();
                if let Some(slot) = slot {
                    *slot = Some(base);
                }
                builder
            }
        };
        builder.variables(vars);
        if let Some(item) = &f.item {
            builder.context_item(item.clone());
        }
        let dc = builder.build();
        let result = program.runnable(&dc).many(self.xot);
        result.map_err(|e| {
            self.expr_err(
                id,
                format!(
                    "XPath error {} in `{}`: {}",
                    e.error,
                    def.text,
                    e.error.message()
                ),
            )
        })
    }

    fn format_number_hoisted(
        &mut self,
        h: &crate::xpath::Hoist,
        f: &Focus,
        id: ExprId,
    ) -> R<String> {
        let value = self.eval(h.value, f)?;
        let parsed;
        let p = match &h.picture {
            crate::xpath::Picture::Parsed(p) => p,
            crate::xpath::Picture::Expr(pid) => {
                let picture = self.eval(*pid, f)?;
                let picture = self.seq_string(&picture, " ", false, id)?;
                let df = self
                    .c
                    .decimal_formats
                    .get(h.format)
                    .cloned()
                    .unwrap_or_default();
                parsed = Picture::parse(&picture, &df).map_err(|e| self.expr_err(id, e))?;
                &parsed
            }
        };
        let num = match value.atomized(self.xot).next() {
            None => Num::Double(f64::NAN),
            Some(Err(e)) => return Err(self.expr_err(id, format!("format-number(): {e}"))),
            Some(Ok(a)) => match &a {
                Atomic::Decimal(d) => Num::Decimal(**d),
                other => Num::Double(atomic_to_f64(self.xot, other)),
            },
        };
        Ok(p.format(num))
    }

    fn ebv(&mut self, id: ExprId, f: &Focus) -> R<bool> {
        let seq = self.eval(id, f)?;
        seq.effective_boolean_value()
            .map_err(|e| self.expr_err(id, format!("effective boolean value: {e}")))
    }

    fn global(&mut self, g: usize) -> R<Sequence> {
        let c = self.c;
        match self.globals.get(g) {
            Some(GlobalState::Done(s)) => return Ok(s.clone()),
            Some(GlobalState::InProgress) => {
                let at = c
                    .globals
                    .get(g)
                    .map(|g| g.at)
                    .unwrap_or(At { file: 0, line: 0 });
                return Err(self.derr(at, "circular definition of a global variable (XTDE0640)"));
            }
            Some(GlobalState::Pending) => {}
            None => return Ok(Sequence::default()),
        }
        let Some(def) = c.globals.get(g) else {
            return Ok(Sequence::default());
        };
        if let Some(state) = self.globals.get_mut(g) {
            *state = GlobalState::InProgress;
        }
        let supplied = if def.is_param {
            self.params.get(&param_key(&def.name))
        } else {
            None
        };
        let value = match supplied {
            Some(v) => {
                let untyped = Sequence::from(Atomic::Untyped(Rc::from(v.as_str())));
                match def.coerce {
                    Some(id) => {
                        self.supplied = Some(untyped);
                        let source = self.source;
                        let r = self.eval(id, &Focus::node(source));
                        self.supplied = None;
                        r?
                    }
                    None => untyped,
                }
            }
            None => {
                let saved_base = self.base;
                self.base = self.locals.len();
                self.locals
                    .resize(self.base + def.slots, Sequence::default());
                let source = self.source;
                let out = self.value(&def.value, &Focus::node(source), 0, def.at);
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

    fn key_map(&mut self, k: usize, f: &Focus, id: ExprId) -> R<Sequence> {
        let root = match f.context_node() {
            Some(n) => self.xot.root(n),
            None => self.source,
        };
        if let Some(m) = self.keys.get(&(k, root)) {
            return Ok(m.clone());
        }
        let c = self.c;
        let Some(key) = c.keys.get(k) else {
            return Err(self.expr_err(id, "internal error: unknown key"));
        };
        let mut strings: Vec<Item> = Vec::new();
        let mut nodes: Vec<Item> = Vec::new();
        let mut candidates = Vec::new();
        for n in self.xot.descendants(root) {
            candidates.push(n);
            if self.xot.is_element(n) {
                candidates.extend(self.xot.attribute_nodes(n));
            }
        }
        for n in candidates {
            for (pattern, use_) in &key.defs {
                if !self.pattern_matches(pattern, n)? {
                    continue;
                }
                let values = self.eval(*use_, &Focus::node(n))?;
                let atoms: Vec<_> = values.atomized(self.xot).collect();
                for a in atoms {
                    let a = a.map_err(|e| self.expr_err(*use_, format!("xsl:key use: {e}")))?;
                    strings.push(Item::Atomic(Atomic::from(atomic_string(self.xot, &a))));
                    nodes.push(Item::Node(n));
                }
            }
        }
        let program = key_builder().map_err(|e| self.expr_err(id, e))?;
        let mut vars = Variables::default();
        vars.insert(internal_name("k"), Sequence::from(strings));
        vars.insert(internal_name("n"), Sequence::from(nodes));
        let mut builder = program.dynamic_context_builder();
        builder.documents(self.docs.clone());
        builder.variables(vars);
        let dc = builder.build();
        let map = program
            .runnable(&dc)
            .many(self.xot)
            .map_err(|e| self.expr_err(id, format!("building key map: {e}")))?;
        self.keys.insert((k, root), map.clone());
        Ok(map)
    }

    // ---- values and strings ---------------------------------------------

    fn value(&mut self, v: &Value, f: &Focus, mode: usize, at: At) -> R<Sequence> {
        match v {
            Value::Select(id) => self.eval(*id, f),
            Value::Body(body) => {
                let doc = self.xot.new_document();
                self.temp.push(doc);
                self.exec(body, f, doc, mode)?;
                let _ = at;
                Ok(Sequence::from(doc))
            }
            Value::BodyAs(body, coerce) => {
                let doc = self.xot.new_document();
                self.temp.push(doc);
                self.seq.insert(doc, Vec::new());
                let r = self.exec(body, f, doc, mode);
                self.flush_seq(doc);
                let items = self.seq.remove(&doc).unwrap_or_default();
                r?;
                let saved = self.supplied.replace(Sequence::from(items));
                let r = self.eval(*coerce, f);
                self.supplied = saved;
                r
            }
            Value::Empty => Ok(Sequence::from(Atomic::from(""))),
        }
    }

    fn item_string(&self, item: &Item, id: ExprId) -> R<String> {
        if self.c.backwards_compatible {
            match item {
                Item::Atomic(Atomic::Double(d)) => return Ok(xpath1_number(d.0)),
                Item::Atomic(Atomic::Float(f)) => return Ok(xpath1_number(f64::from(f.0))),
                _ => {}
            }
        }
        item.string_value(self.xot)
            .map_err(|e| self.expr_err(id, format!("cannot take the string value: {e}")))
    }

    fn seq_string(&self, seq: &Sequence, sep: &str, first_only: bool, id: ExprId) -> R<String> {
        let mut out = String::new();
        for (i, item) in seq.iter().enumerate() {
            if i > 0 {
                if first_only {
                    break;
                }
                out.push_str(sep);
            }
            out.push_str(&self.item_string(&item, id)?);
        }
        Ok(out)
    }

    /// The string value of a select/content value (simple content).
    fn string_of(
        &mut self,
        v: &Value,
        f: &Focus,
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
                let seq = self.value(v, f, mode, At { file: 0, line: 0 })?;
                let sep = match separator {
                    Some(a) => self.avt(a, f)?,
                    None => String::new(),
                };
                self.seq_string(&seq, &sep, first_only, 0)
            }
            Value::Body(body) => {
                let doc = self.xot.new_document();
                let r = self.exec(body, f, doc, mode);
                let text = self.xot.string_value(doc);
                let _ = self.xot.remove(doc);
                r?;
                Ok(text)
            }
            Value::Empty => Ok(String::new()),
        }
    }

    fn avt(&mut self, a: &Avt, f: &Focus) -> R<String> {
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

    // ---- names -------------------------------------------------------------

    fn name_id(&mut self, idx: NameIdx) -> NameId {
        if let Some(Some(id)) = self.names.get(idx) {
            return *id;
        }
        let (ns, local, _) = self.c.names.get(idx).cloned().unwrap_or_default();
        let ns_id = self.xot.add_namespace(&ns);
        let id = self.xot.add_name_ns(&local, ns_id);
        if let Some(slot) = self.names.get_mut(idx) {
            *slot = Some(id);
        }
        id
    }

    fn ns_binding(&mut self, idx: NsIdx) -> (xot::PrefixId, xot::NamespaceId) {
        if let Some(Some(b)) = self.nss.get(idx) {
            return *b;
        }
        let (prefix, uri) = self.c.ns_bindings.get(idx).cloned().unwrap_or_default();
        let b = (self.xot.add_prefix(&prefix), self.xot.add_namespace(&uri));
        if let Some(slot) = self.nss.get_mut(idx) {
            *slot = Some(b);
        }
        b
    }

    /// Resolves a computed lexical QName: (prefix, namespace URI, local).
    fn computed_name(
        &self,
        lexical: &str,
        namespace: Option<String>,
        nsctx: &xee_xpath_ast::Namespaces,
        use_default: bool,
        at: At,
        what: &str,
    ) -> R<(String, String, String)> {
        let lexical = lexical.trim();
        let (prefix, local) = match lexical.split_once(':') {
            Some((p, l)) => (p.to_string(), l.to_string()),
            None => (String::new(), lexical.to_string()),
        };
        let valid = crate::xpath::is_ncname(&local)
            && (prefix.is_empty() || crate::xpath::is_ncname(&prefix));
        if !valid {
            return Err(self.derr(at, format!("invalid {what} name '{lexical}' (XTDE0820)")));
        }
        let uri = match namespace {
            Some(uri) => uri,
            None if prefix.is_empty() => {
                if use_default {
                    nsctx.default_element_namespace().to_string()
                } else {
                    String::new()
                }
            }
            None if prefix == "xml" => "http://www.w3.org/XML/1998/namespace".to_string(),
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

    // ---- tree construction helpers ----------------------------------------------

    fn append(&mut self, out: Node, child: Node, at: At) -> R<()> {
        self.xot.append(out, child).map_err(|e| self.xot_err(at, e))
    }

    fn append_text(&mut self, out: Node, text: &str, at: At) -> R<()> {
        if text.is_empty() {
            return Ok(());
        }
        let t = self.xot.new_text(text);
        self.append(out, t, at)
    }

    fn add_attribute(&mut self, out: Node, name: NameId, value: String, at: At) -> R<()> {
        if self.seq.contains_key(&out) {
            // a sequence constructor with `as`: a parentless attribute
            let attr = self.xot.new_attribute_node(name, value);
            self.push_item(out, Item::Node(attr));
            return Ok(());
        }
        if !self.xot.is_element(out) {
            return Err(self.derr(
                at,
                "an attribute can only be added to an element (XTDE0420)",
            ));
        }
        if self.xot.first_child(out).is_some() {
            return Err(self.derr(
                at,
                "an attribute cannot be added after children of the element (XTDE0410)",
            ));
        }
        self.xot.attributes_mut(out).insert(name, value);
        Ok(())
    }

    /// Copies the namespaces in scope of `src` onto `dest`.
    fn copy_namespaces(&mut self, src: Node, dest: Node) {
        let xml = self.xot.xml_prefix();
        let pairs: Vec<_> = self
            .xot
            .namespaces_in_scope(src)
            .filter(|(p, _)| *p != xml)
            .collect();
        for (p, n) in pairs {
            if self.xot.namespaces(dest).get(p).is_none() {
                self.xot.namespaces_mut(dest).insert(p, n);
            }
        }
    }

    /// Deep copy of an item into the tree under `out`.
    fn copy_item(&mut self, item: &Item, out: Node, at: At) -> R<()> {
        match item {
            Item::Node(n) => self.copy_node(*n, out, at),
            Item::Atomic(a) => {
                let text = atomic_string(self.xot, a);
                self.append_text(out, &text, at)
            }
            Item::Function(_) => {
                Err(self.derr(at, "a function item cannot be added to a tree (XTDE0450)"))
            }
        }
    }

    fn copy_node(&mut self, n: Node, out: Node, at: At) -> R<()> {
        match self.xot.value(n) {
            XValue::Document => {
                let children: Vec<Node> = self.xot.children(n).collect();
                for ch in children {
                    self.copy_node(ch, out, at)?;
                }
                Ok(())
            }
            XValue::Text(t) => {
                let text = t.get().to_string();
                self.append_text(out, &text, at)
            }
            XValue::Attribute(a) => {
                let (name, value) = (a.name(), a.value().to_string());
                self.add_attribute(out, name, value, at)
            }
            XValue::Namespace(ns) => {
                let (p, u) = (ns.prefix(), ns.namespace());
                if self.xot.is_element(out) {
                    self.xot.namespaces_mut(out).insert(p, u);
                }
                Ok(())
            }
            XValue::Element(_) => {
                let copy = self.xot.clone_node(n);
                self.copy_namespaces(n, copy);
                self.append(out, copy, at)
            }
            XValue::Comment(_) | XValue::ProcessingInstruction(_) => {
                let copy = self.xot.clone_node(n);
                self.append(out, copy, at)
            }
        }
    }

    /// Adds a sequence to the tree: nodes are copied, adjacent atomic
    /// values are joined with single spaces.
    /// Moves the nodes built so far in a sequence container into its item
    /// list (they become parentless, as XSLT 2.0 requires).
    fn flush_seq(&mut self, container: Node) {
        let children: Vec<Node> = self.xot.children(container).collect();
        for c in children {
            let _ = self.xot.detach(c);
            self.temp.push(c);
            if let Some(items) = self.seq.get_mut(&container) {
                items.push(Item::Node(c));
            }
        }
    }

    fn push_item(&mut self, container: Node, item: Item) {
        self.flush_seq(container);
        if let Item::Node(n) = &item {
            if self.xot.parent(*n).is_none() {
                self.temp.push(*n);
            }
        }
        if let Some(items) = self.seq.get_mut(&container) {
            items.push(item);
        }
    }

    fn add_sequence(&mut self, seq: &Sequence, out: Node, at: At) -> R<()> {
        if self.seq.contains_key(&out) {
            for item in seq.iter() {
                match item {
                    Item::Node(n) => {
                        // copy-of/sequence of a node in a sequence
                        // constructor: a copy, as its own item
                        self.flush_seq(out);
                        self.copy_node(n, out, at)?;
                        self.flush_seq(out);
                    }
                    other => self.push_item(out, other),
                }
            }
            return Ok(());
        }
        let mut prev_atomic = false;
        for item in seq.iter() {
            let atomic = matches!(item, Item::Atomic(_));
            if atomic && prev_atomic {
                self.append_text(out, " ", at)?;
            }
            self.copy_item(&item, out, at)?;
            prev_atomic = atomic;
        }
        Ok(())
    }

    // ---- template rules ---------------------------------------------------------

    fn node_key(&self, n: Node) -> NodeKey {
        match self.xot.value(n) {
            XValue::Document => NodeKey::Document,
            XValue::Element(e) => NodeKey::Element(e.name()),
            XValue::Attribute(a) => NodeKey::Attribute(a.name()),
            XValue::Text(_) => NodeKey::Text,
            XValue::Comment(_) => NodeKey::Comment,
            XValue::ProcessingInstruction(_) => NodeKey::Pi,
            XValue::Namespace(_) => NodeKey::Other,
        }
    }

    fn candidates(&mut self, mode: usize, key: NodeKey) -> Rc<Vec<Rule>> {
        if let Some(v) = self.rule_cache.get(&(mode, key)) {
            return v.clone();
        }
        let c = self.c;
        let mut rules: Vec<Rule> = Vec::new();
        if let Some(m) = c.modes.get(mode) {
            let exp = |name: NameId| {
                let (local, ns) = self.xot.name_ns_str(name);
                crate::pattern::ExpName {
                    ns: ns.to_string(),
                    local: local.to_string(),
                }
            };
            let keys: Vec<IndexKey> = match key {
                NodeKey::Document => vec![IndexKey::Document],
                NodeKey::Element(n) => vec![
                    IndexKey::Element(exp(n)),
                    IndexKey::AnyElement,
                    IndexKey::AnyChild,
                ],
                NodeKey::Attribute(n) => {
                    vec![IndexKey::Attribute(exp(n)), IndexKey::AnyAttribute]
                }
                NodeKey::Text => vec![IndexKey::Text, IndexKey::AnyChild],
                NodeKey::Comment => vec![IndexKey::Comment, IndexKey::AnyChild],
                NodeKey::Pi => vec![IndexKey::Pi, IndexKey::AnyChild],
                NodeKey::Other => vec![],
            };
            for k in keys {
                if let Some(b) = m.buckets.get(&k) {
                    rules.extend(b.iter().cloned());
                }
            }
        }
        rules.sort_by(|a, b| {
            b.precedence
                .cmp(&a.precedence)
                .then(b.priority.total_cmp(&a.priority))
                .then(b.order.cmp(&a.order))
        });
        let rules = Rc::new(rules);
        self.rule_cache.insert((mode, key), rules.clone());
        rules
    }

    fn find_rule(&mut self, node: Node, mode: usize) -> R<Option<usize>> {
        let key = self.node_key(node);
        let rules = self.candidates(mode, key);
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

    fn pattern_matches(&mut self, p: &Pattern, node: Node) -> R<bool> {
        for alt in &p.alts {
            if self.alt_matches(alt, node)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn alt_matches(&mut self, alt: &Alt, node: Node) -> R<bool> {
        if alt.steps.is_empty() {
            // `/`
            return Ok(self.xot.is_document(node));
        }
        self.steps_match(alt, alt.steps.len(), node)
    }

    fn steps_match(&mut self, alt: &Alt, k: usize, node: Node) -> R<bool> {
        let Some(step) = alt.steps.get(k - 1) else {
            return Ok(false);
        };
        if !test_matches(self.xot, node, step.axis, &step.test) {
            return Ok(false);
        }
        if !step.preds.is_empty() && !self.preds_match(step, step.preds.len(), node)? {
            return Ok(false);
        }
        let parent = self.xot.parent(node);
        if k == 1 {
            return Ok(match alt.root {
                Root::Relative => {
                    // the step's axis must be able to reach the node
                    match step.test {
                        Test::Document => true,
                        _ => parent.is_some() || step.axis == Axis::Child,
                    }
                }
                Root::Document => parent.is_some_and(|p| self.xot.is_document(p)),
                Root::DocumentDesc => self.xot.is_document(self.xot.root(node)) && parent.is_some(),
            });
        }
        let Some(parent) = parent else {
            return Ok(false);
        };
        if step.desc_before {
            let mut current = Some(parent);
            while let Some(anc) = current {
                if self.steps_match(alt, k - 1, anc)? {
                    return Ok(true);
                }
                current = self.xot.parent(anc);
            }
            Ok(false)
        } else {
            self.steps_match(alt, k - 1, parent)
        }
    }

    /// Do the first `count` predicates of `step` hold for `node`?
    fn preds_match(&mut self, step: &Step, count: usize, node: Node) -> R<bool> {
        for (i, &pred) in step.preds.iter().take(count).enumerate() {
            let needs_pos = self.c.exprs.get(pred).is_some_and(|d| {
                d.vars
                    .iter()
                    .any(|(_, r)| matches!(r, VarRef::Position | VarRef::Last))
            });
            let mut focus = Focus::node(node);
            if needs_pos {
                let (pos, size) = self.step_position(step, i, node)?;
                focus.pos = pos;
                focus.size = size;
            }
            let result = self.eval(pred, &focus)?;
            let ok = match numeric_singleton(self.xot, &result) {
                Some(n) => {
                    if !needs_pos {
                        let (pos, size) = self.step_position(step, i, node)?;
                        focus.pos = pos;
                        focus.size = size;
                    }
                    n == focus.pos as f64
                }
                None => result
                    .effective_boolean_value()
                    .map_err(|e| self.expr_err(pred, format!("effective boolean value: {e}")))?,
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Position and size of `node` among its siblings that pass the step's
    /// node test and its first `preds` predicates.
    fn step_position(&mut self, step: &Step, preds: usize, node: Node) -> R<(usize, usize)> {
        let siblings: Vec<Node> = match self.xot.parent(node) {
            None => vec![node],
            Some(p) => {
                if self.xot.is_attribute_node(node) {
                    self.xot.attribute_nodes(p).collect()
                } else {
                    self.xot.children(p).collect()
                }
            }
        };
        let mut pos = 0;
        let mut size = 0;
        for s in siblings {
            if !test_matches(self.xot, s, step.axis, &step.test) {
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
        nodes: &[Node],
        _caller: &Focus,
        mode: usize,
        params: &[(OwnedName, Sequence)],
        out: Node,
        at: Option<At>,
    ) -> R<()> {
        let size = nodes.len();
        for (i, &node) in nodes.iter().enumerate() {
            let focus = Focus {
                item: Some(Item::Node(node)),
                pos: i + 1,
                size,
            };
            match self.find_rule(node, mode)? {
                Some(t) => self.invoke(t, &focus, params, mode, out, at)?,
                None => self.builtin(node, &focus, mode, params, out, at)?,
            }
        }
        Ok(())
    }

    fn builtin(
        &mut self,
        node: Node,
        _focus: &Focus,
        mode: usize,
        params: &[(OwnedName, Sequence)],
        out: Node,
        at: Option<At>,
    ) -> R<()> {
        let at_ = at.unwrap_or(At { file: 0, line: 0 });
        match self.xot.value(node) {
            XValue::Document | XValue::Element(_) => {
                let children: Vec<Node> = self.xot.children(node).collect();
                let focus = Focus::node(node);
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.derr(at_, "template recursion too deep"));
                }
                let r = stacker::maybe_grow(128 * 1024, 4 * 1024 * 1024, || {
                    self.apply(&children, &focus, mode, params, out, at)
                });
                self.depth -= 1;
                r
            }
            XValue::Text(t) => {
                let text = t.get().to_string();
                self.append_text(out, &text, at_)
            }
            XValue::Attribute(a) => {
                let text = a.value().to_string();
                self.append_text(out, &text, at_)
            }
            _ => Ok(()),
        }
    }

    fn invoke(
        &mut self,
        t: usize,
        focus: &Focus,
        params: &[(OwnedName, Sequence)],
        mode: usize,
        out: Node,
        at: Option<At>,
    ) -> R<()> {
        let c = self.c;
        let Some(template) = c.templates.get(t) else {
            return Ok(());
        };
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let at = at.unwrap_or(template.at);
            return Err(self.derr(
                at,
                "template recursion too deep (more than 5000 nested calls)",
            ));
        }
        let saved_base = self.base;
        let new_base = self.locals.len();
        self.locals
            .resize(new_base + template.slots, Sequence::default());
        self.base = new_base;
        let r = stacker::maybe_grow(128 * 1024, 4 * 1024 * 1024, || {
            for p in &template.params {
                let value = match params.iter().find(|(n, _)| *n == p.name) {
                    Some((_, v)) => v.clone(),
                    None if p.required => {
                        return Err(self.derr(
                            template.at,
                            format!(
                                "required parameter ${} was not supplied (XTDE0700)",
                                p.name.local_name()
                            ),
                        ))
                    }
                    None => self.value(&p.value, focus, mode, template.at)?,
                };
                if let Some(slot) = self.locals.get_mut(self.base + p.slot) {
                    *slot = value;
                }
            }
            self.exec(&template.body, focus, out, mode)
        });
        self.locals.truncate(new_base);
        self.base = saved_base;
        self.depth -= 1;
        r
    }

    fn with_params(
        &mut self,
        params: &[WithParam],
        f: &Focus,
        mode: usize,
    ) -> R<Vec<(OwnedName, Sequence)>> {
        let mut out = Vec::with_capacity(params.len());
        for p in params {
            let v = self.value(&p.value, f, mode, p.at)?;
            out.push((p.name.clone(), v));
        }
        Ok(out)
    }

    // ---- sorting ---------------------------------------------------------------

    fn sort_items(&mut self, items: Vec<Item>, sorts: &[Sort], at: At) -> R<Vec<Item>> {
        if sorts.is_empty() || items.len() < 2 {
            return Ok(items);
        }
        #[derive(Debug)]
        enum Key {
            Num(f64),
            Text(String),
        }
        let size = items.len();
        let mut keys: Vec<Vec<Key>> = Vec::with_capacity(size);
        for (i, item) in items.iter().enumerate() {
            let focus = Focus {
                item: Some(item.clone()),
                pos: i + 1,
                size,
            };
            let mut row = Vec::with_capacity(sorts.len());
            for s in sorts {
                let text_or_num = match s.select {
                    Some(id) => {
                        let seq = self.eval(id, &focus)?;
                        let first = seq.iter().next();
                        match first {
                            None => None,
                            Some(first) => Some(match (&first, s.number) {
                                (Item::Atomic(a), true) => Key::Num(atomic_to_f64(self.xot, a)),
                                (other, true) => {
                                    Key::Num(parse_number(&self.item_string(other, id)?))
                                }
                                (other, false) => Key::Text(self.item_string(other, id)?),
                            }),
                        }
                    }
                    None => {
                        let text = match item {
                            Item::Node(n) => self.xot.string_value(*n),
                            Item::Atomic(a) => atomic_string(self.xot, a),
                            Item::Function(_) => {
                                return Err(self.derr(at, "cannot sort function items"))
                            }
                        };
                        Some(if s.number {
                            Key::Num(parse_number(&text))
                        } else {
                            Key::Text(text)
                        })
                    }
                };
                row.push(match text_or_num {
                    Some(k) => k,
                    None if s.number => Key::Num(f64::NAN),
                    None => Key::Text(String::new()),
                });
            }
            keys.push(row);
        }
        let mut order: Vec<usize> = (0..size).collect();
        order.sort_by(|&a, &b| {
            for (i, s) in sorts.iter().enumerate() {
                let (ka, kb) = (&keys[a][i], &keys[b][i]);
                let ord = match (ka, kb) {
                    (Key::Num(x), Key::Num(y)) => match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Less,
                        (false, true) => std::cmp::Ordering::Greater,
                        _ => x.total_cmp(y),
                    },
                    (Key::Text(x), Key::Text(y)) => compare_text(x, y, s.upper_first),
                    (Key::Num(_), Key::Text(_)) => std::cmp::Ordering::Less,
                    (Key::Text(_), Key::Num(_)) => std::cmp::Ordering::Greater,
                };
                let ord = if s.descending { ord.reverse() } else { ord };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            std::cmp::Ordering::Equal
        });
        let mut slots: Vec<Option<Item>> = items.into_iter().map(Some).collect();
        Ok(order
            .into_iter()
            .filter_map(|i| slots.get_mut(i).and_then(Option::take))
            .collect())
    }

    // ---- xsl:number -----------------------------------------------------------------

    fn number(&mut self, def: &NumberDef, f: &Focus, at: At) -> R<String> {
        let numbers: Vec<u64> = match def.value {
            Some(id) => {
                let seq = self.eval(id, f)?;
                let mut out = Vec::new();
                let atoms: Vec<_> = seq.atomized(self.xot).collect();
                for a in atoms {
                    let a = a.map_err(|e| self.expr_err(id, format!("xsl:number value: {e}")))?;
                    let n = atomic_to_f64(self.xot, &a);
                    if n.is_nan() || n < 0.0 || n.is_infinite() {
                        return Ok(if n.is_nan() {
                            "NaN".to_string()
                        } else {
                            n.to_string()
                        });
                    }
                    out.push((n + 0.5).floor() as u64);
                }
                out
            }
            None => {
                let Some(node) = f.context_node() else {
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
        format_number_list(&numbers, &format, grouping).map_err(|e| self.derr(at, e))
    }

    fn counts(&mut self, def: &NumberDef, node: Node, candidate: Node) -> R<bool> {
        match &def.count {
            Some(p) => self.pattern_matches(p, candidate),
            None => Ok(self.same_kind_and_name(node, candidate)),
        }
    }

    fn same_kind_and_name(&self, a: Node, b: Node) -> bool {
        match (self.xot.value(a), self.xot.value(b)) {
            (XValue::Element(x), XValue::Element(y)) => x.name() == y.name(),
            (XValue::Attribute(x), XValue::Attribute(y)) => x.name() == y.name(),
            (XValue::ProcessingInstruction(x), XValue::ProcessingInstruction(y)) => {
                x.target() == y.target()
            }
            (x, y) => x.value_type() == y.value_type(),
        }
    }

    fn is_from(&mut self, def: &NumberDef, n: Node) -> R<bool> {
        match &def.from {
            Some(p) => self.pattern_matches(p, n),
            None => Ok(false),
        }
    }

    fn sibling_number(&mut self, def: &NumberDef, node: Node, target: Node) -> R<u64> {
        let mut count = 1;
        let preceding: Vec<Node> = self.xot.preceding_siblings(target).skip(1).collect();
        for s in preceding {
            if self.counts(def, node, s)? {
                count += 1;
            }
        }
        Ok(count)
    }

    fn count_nodes(&mut self, def: &NumberDef, node: Node) -> R<Vec<u64>> {
        // ancestor-or-self chain up to (excluding) a `from` match
        let mut chain = Vec::new();
        let mut current = Some(node);
        while let Some(n) = current {
            if n != node && self.is_from(def, n)? {
                break;
            }
            chain.push(n);
            if self.xot.is_document(n) {
                break;
            }
            current = self.xot.parent(n);
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
                let root = self.xot.root(node);
                let all: Vec<Node> = self.xot.descendants(root).collect();
                let mut count = 0u64;
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

    fn exec(&mut self, body: &[Instr], f: &Focus, out: Node, mode: usize) -> R<()> {
        for instr in body {
            self.instr(instr, f, out, mode)?;
        }
        Ok(())
    }

    fn select_nodes(&mut self, id: ExprId, f: &Focus, at: At) -> R<Vec<Node>> {
        let seq = self.eval(id, f)?;
        let mut nodes = Vec::with_capacity(seq.len());
        for item in seq.iter() {
            match item {
                Item::Node(n) => nodes.push(n),
                _ => {
                    return Err(self.derr(
                        at,
                        "xsl:apply-templates select must give nodes only (XTTE0520)",
                    ))
                }
            }
        }
        Ok(nodes)
    }

    fn instr(&mut self, instr: &Instr, f: &Focus, out: Node, mode: usize) -> R<()> {
        match instr {
            Instr::Text(t) => {
                let at = At { file: 0, line: 0 };
                self.append_text(out, t, at)
            }
            Instr::ValueOf {
                value,
                separator,
                first_only,
                at,
            } => {
                let text = match (value, separator) {
                    (Value::Body(_), None) => self.string_of(value, f, mode, None, false)?,
                    _ => self.string_of(value, f, mode, separator.as_ref(), *first_only)?,
                };
                self.append_text(out, &text, *at)
            }
            Instr::ApplyTemplates {
                select,
                mode: msel,
                params,
                sorts,
                at,
            } => {
                let nodes = match select {
                    Some(id) => self.select_nodes(*id, f, *at)?,
                    None => match f.context_node() {
                        Some(n) => self.xot.children(n).collect(),
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
                        .filter_map(|i| match i {
                            Item::Node(n) => Some(n),
                            _ => None,
                        })
                        .collect()
                };
                let params = self.with_params(params, f, mode)?;
                let new_mode = match msel {
                    ModeSel::Mode(m) => *m,
                    ModeSel::Current => mode,
                };
                self.apply(&nodes, f, new_mode, &params, out, Some(*at))
            }
            Instr::CallTemplate {
                template,
                params,
                at,
            } => {
                let params = self.with_params(params, f, mode)?;
                self.invoke(*template, f, &params, mode, out, Some(*at))
            }
            Instr::ForEach {
                select,
                sorts,
                body,
                at,
            } => {
                let seq = self.eval(*select, f)?;
                let items: Vec<Item> = seq.iter().collect();
                let items = self.sort_items(items, sorts, *at)?;
                let size = items.len();
                for (i, item) in items.into_iter().enumerate() {
                    let focus = Focus {
                        item: Some(item),
                        pos: i + 1,
                        size,
                    };
                    self.exec(body, &focus, out, mode)?;
                }
                Ok(())
            }
            Instr::If { test, body, .. } => {
                if self.ebv(*test, f)? {
                    self.exec(body, f, out, mode)?;
                }
                Ok(())
            }
            Instr::Choose {
                whens, otherwise, ..
            } => {
                for (test, body) in whens {
                    if self.ebv(*test, f)? {
                        return self.exec(body, f, out, mode);
                    }
                }
                self.exec(otherwise, f, out, mode)
            }
            Instr::Variable {
                slot, value, at, ..
            } => {
                let v = self.value(value, f, mode, *at)?;
                let index = self.base + slot;
                if let Some(s) = self.locals.get_mut(index) {
                    *s = v;
                    Ok(())
                } else {
                    Err(self.derr(*at, "internal error: variable slot out of range"))
                }
            }
            Instr::LiteralElement {
                name,
                namespaces,
                attributes,
                body,
                at,
            } => {
                let name_id = self.name_id(*name);
                let el = self.xot.new_element(name_id);
                self.append(out, el, *at)?;
                for &ns in namespaces {
                    let (p, u) = self.ns_binding(ns);
                    self.xot.namespaces_mut(el).insert(p, u);
                }
                for (aname, avt) in attributes {
                    let value = self.avt(avt, f)?;
                    let aid = self.name_id(*aname);
                    self.xot.attributes_mut(el).insert(aid, value);
                }
                self.exec(body, f, el, mode)
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
                let ns_id = self.xot.add_namespace(&uri);
                let name_id = self.xot.add_name_ns(&local, ns_id);
                let el = self.xot.new_element(name_id);
                self.append(out, el, *at)?;
                if !uri.is_empty() && prefix != "xml" {
                    let p = self.xot.add_prefix(&prefix);
                    self.xot.namespaces_mut(el).insert(p, ns_id);
                }
                self.exec(body, f, el, mode)
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
                let (mut prefix, uri, local) =
                    self.computed_name(&lexical, ns, nsctx, false, *at, "attribute")?;
                if lexical.trim() == "xmlns" {
                    return Err(self.derr(*at, "an attribute cannot be named xmlns (XTDE0855)"));
                }
                let text = self.string_of(value, f, mode, separator.as_ref(), false)?;
                let ns_id = self.xot.add_namespace(&uri);
                let name_id = self.xot.add_name_ns(&local, ns_id);
                if !uri.is_empty() && self.xot.is_element(out) && prefix != "xml" {
                    if prefix.is_empty() {
                        prefix = "ns0".to_string();
                    }
                    let p = self.xot.add_prefix(&prefix);
                    let free = self.xot.namespaces(out).get(p).is_none()
                        && self
                            .xot
                            .namespace_for_prefix(out, p)
                            .is_none_or(|n| n == ns_id);
                    if free {
                        self.xot.namespaces_mut(out).insert(p, ns_id);
                    }
                }
                self.add_attribute(out, name_id, text, *at)
            }
            Instr::Comment { value, at } => {
                let text = self.string_of(value, f, mode, None, false)?;
                let text = sanitize_comment(&text);
                let node = self.xot.new_comment(&text);
                self.append(out, node, *at)
            }
            Instr::ProcessingInstruction { name, value, at } => {
                let target = self.avt(name, f)?;
                let target = target.trim().to_string();
                if !crate::xpath::is_ncname(&target) || target.eq_ignore_ascii_case("xml") {
                    return Err(self.derr(
                        *at,
                        format!("invalid processing instruction name '{target}' (XTDE0890)"),
                    ));
                }
                let text = self.string_of(value, f, mode, None, false)?;
                let text = text.trim_start().replace("?>", "? >");
                let target_id = self.xot.add_name(&target);
                let data = if text.is_empty() {
                    None
                } else {
                    Some(text.as_str())
                };
                let node = self.xot.new_processing_instruction(target_id, data);
                self.append(out, node, *at)
            }
            Instr::Namespace { name, value, at } => {
                let prefix = self.avt(name, f)?.trim().to_string();
                let uri = self.string_of(value, f, mode, None, false)?;
                if !self.xot.is_element(out) {
                    return Err(self.derr(*at, "xsl:namespace needs an element parent (XTDE0420)"));
                }
                if !prefix.is_empty() && !crate::xpath::is_ncname(&prefix) {
                    return Err(self.derr(
                        *at,
                        format!("invalid namespace prefix '{prefix}' (XTDE0920)"),
                    ));
                }
                let p = self.xot.add_prefix(&prefix);
                let u = self.xot.add_namespace(&uri);
                self.xot.namespaces_mut(out).insert(p, u);
                Ok(())
            }
            Instr::Copy { body, at } => {
                let Some(item) = f.item.clone() else {
                    return Err(self.derr(*at, "xsl:copy needs a context item (XTTE0945)"));
                };
                match item {
                    Item::Node(n) => match self.xot.value(n) {
                        XValue::Document => self.exec(body, f, out, mode),
                        XValue::Element(e) => {
                            let name = e.name();
                            let el = self.xot.new_element(name);
                            self.append(out, el, *at)?;
                            self.copy_namespaces(n, el);
                            self.exec(body, f, el, mode)
                        }
                        _ => self.copy_node(n, out, *at),
                    },
                    other => self.copy_item(&other, out, *at),
                }
            }
            Instr::CopyOf { select, at } | Instr::Sequence { select, at } => {
                let seq = self.eval(*select, f)?;
                self.add_sequence(&seq, out, *at)
            }
            Instr::Message {
                value, terminate, ..
            } => {
                let text = self.string_of(value, f, mode, None, false)?;
                if *terminate {
                    return Err(TransformError::Terminated { message: text });
                }
                self.messages.push(text);
                Ok(())
            }
            Instr::Number { def, at } => {
                let text = self.number(def, f, *at)?;
                self.append_text(out, &text, *at)
            }
        }
    }
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

fn numeric_singleton(xot: &Xot, seq: &Sequence) -> Option<f64> {
    if seq.len() != 1 {
        return None;
    }
    match seq.iter().next()? {
        Item::Atomic(a) if a.is_numeric() => Some(atomic_to_f64(xot, &a)),
        _ => None,
    }
}

/// XPath `number()` of a string.
fn parse_number(s: &str) -> f64 {
    let t = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    if t.is_empty()
        || !t
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
    {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// The numeric value of an atomic value (`number()` semantics).
pub(crate) fn atomic_to_f64(xot: &Xot, a: &Atomic) -> f64 {
    match a {
        Atomic::Double(d) => d.0,
        Atomic::Float(f) => f64::from(f.0),
        Atomic::Decimal(d) => {
            use rust_decimal::prelude::ToPrimitive;
            d.to_f64().unwrap_or(f64::NAN)
        }
        Atomic::Integer(_, i) => i.to_string().parse::<f64>().unwrap_or(f64::NAN),
        Atomic::Boolean(b) => {
            if *b {
                1.0
            } else {
                0.0
            }
        }
        other => parse_number(&atomic_string(xot, other)),
    }
}

/// The canonical string value of an atomic value.
fn atomic_string(xot: &Xot, a: &Atomic) -> String {
    Item::Atomic(a.clone())
        .string_value(xot)
        .unwrap_or_default()
}

/// The XPath 1.0 string form of a number: no exponent, integers without a
/// fractional part, `NaN`, `Infinity`, `-Infinity`.
fn xpath1_number(d: f64) -> String {
    if d.is_nan() {
        "NaN".to_string()
    } else if d.is_infinite() {
        if d > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else if d == 0.0 {
        "0".to_string()
    } else {
        format!("{d}")
    }
}
