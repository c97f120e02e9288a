//! Static analysis: AST → IR.
//!
//! Names are resolved against the [`StaticContext`], variables to frame
//! slots (host variables by id, XPath-local `for`/`let`/parameters by
//! slot), function calls bound to builtins or host functions (unknown
//! functions, wrong arity and undeclared variables are static errors),
//! constants folded, and `//name` without positional predicates turned
//! into a single descendant step.

use std::sync::Arc;

use crate::ast::{
    self, Argument, Axis, BinOp, Expr, ExprKind, ItemType, KeySpec, KindTest, Literal, Name,
    NameTest, NodeTest, PathStart, Postfix, SequenceType, Step,
};
use crate::error::{Error, Result, Span};
use crate::functions::{self, Kind, Occ, Param, FN, XS};
use crate::ir::{Capture, CmpOp, Ir, ItemTypeIr, KeyIr, NodeCmp, Pred, SeqTypeIr, SetOp, Test};
use crate::tree::QName;
use crate::value::{ArithOp, Atomic};

/// Resolves namespace prefixes of the expression's static context.
pub trait Namespaces {
    /// The URI bound to `prefix` (`""` is never asked: unprefixed element
    /// names use [`StaticContext::default_element_namespace`]).
    fn resolve(&self, prefix: &str) -> Option<String>;

    /// All prefix → URI bindings, when the context can enumerate them
    /// (needed by a cast of a computed string to `xs:QName`, whose prefix
    /// is only known at run time). `None`: such casts fail with FONS0004
    /// for prefixed names.
    fn bindings(&self) -> Option<Vec<(String, String)>> {
        None
    }
}

impl<F: Fn(&str) -> Option<String>> Namespaces for F {
    fn resolve(&self, prefix: &str) -> Option<String> {
        self(prefix)
    }
}

/// A host function as resolved at compile time.
#[derive(Debug, Clone)]
pub struct HostFunction {
    /// Id passed to [`crate::Host::call`].
    pub id: u32,
    /// Parameter types (conversion applied before the call).
    pub params: Vec<Param>,
    /// Append the context item as an extra last argument (e.g. `key()`
    /// needs the context node's root). Absent focus → XPDY0002.
    pub wants_context: bool,
}

/// What the host knows at compile time.
pub trait HostStatic {
    /// Resolves a variable reference to a host variable id.
    fn variable(&self, name: &QName) -> Option<u32>;
    /// Resolves a host function by expanded name and arity (consulted
    /// before the builtins, so a host can override e.g. `fn:format-number`).
    fn function(&self, name: &QName, arity: usize) -> Option<HostFunction> {
        let _ = (name, arity);
        None
    }
}

/// A host without variables or functions.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHostStatic;

impl HostStatic for NoHostStatic {
    fn variable(&self, _name: &QName) -> Option<u32> {
        None
    }
}

/// The static context of an expression.
pub struct StaticContext<'s> {
    /// Prefix → URI (the `xml` prefix is always bound).
    pub namespaces: &'s dyn Namespaces,
    /// Namespace of unprefixed element/type names (`xpath-default-namespace`).
    pub default_element_namespace: String,
    /// XPath 1.0 backwards-compatible mode (XSLT `version="1.0"`).
    pub backwards_compatible: bool,
    /// The host.
    pub host: &'s dyn HostStatic,
}

/// An inline function (or the body of a function item) after compilation.
#[derive(Debug)]
pub struct InlineFn {
    /// Number of parameters.
    pub arity: usize,
    /// Frame size.
    pub(crate) frame: usize,
    /// Parameter types (for coercion).
    pub(crate) params: Vec<Option<SeqTypeIr>>,
    /// Result type.
    pub(crate) result: Option<SeqTypeIr>,
    /// The body.
    pub(crate) body: Ir,
    /// XPath 1.0 mode of the enclosing expression.
    pub(crate) xpath1: bool,
}

/// A compiled expression: `Send + Sync`, evaluate many times.
#[derive(Debug)]
pub struct Expression {
    pub(crate) ir: Ir,
    pub(crate) frame: usize,
    pub(crate) xpath1: bool,
    text: String,
}

impl Expression {
    /// Compiles `text` in `ctx`.
    pub fn compile(text: &str, ctx: &StaticContext<'_>) -> Result<Expression> {
        Self::compile_text(text, ctx)
    }

    fn compile_text(text: &str, ctx: &StaticContext<'_>) -> Result<Expression> {
        let ast = crate::parser::parse(text)?;
        Self::compile_ast(&ast, text, ctx)
    }

    /// Compiles an already parsed expression (e.g. a predicate taken out
    /// of an XSLT match pattern); `text` is the source it came from, for
    /// error messages.
    pub fn compile_ast(expr: &Expr, text: &str, ctx: &StaticContext<'_>) -> Result<Expression> {
        let mut c = Compiler {
            ctx,
            frames: vec![Frame::default()],
        };
        let ir = c.expr(expr)?;
        let frame = c.frames.pop().map(|f| f.size).unwrap_or(0);
        Ok(Expression {
            ir,
            frame,
            xpath1: ctx.backwards_compatible,
            text: text.to_string(),
        })
    }

    /// The expression text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Is this expression a constant (no context, variables or calls)?
    pub fn constant_value(&self) -> Option<Atomic> {
        match &self.ir {
            Ir::Const(a) => Some(a.clone()),
            _ => None,
        }
    }
}

/// Slot numbers of parameters while an inline function body is compiled.
const PARAM_BASE: u32 = 1 << 28;
/// Slot numbers of captures while an inline function body is compiled.
const CAP_BASE: u32 = 1 << 29;

#[derive(Default)]
struct Frame {
    /// Visible locals: name → slot (innermost last).
    scope: Vec<(QName, u32)>,
    size: usize,
    /// Captures of an inline function frame: where each comes from.
    captures: Vec<(QName, Capture)>,
    is_function: bool,
}

struct Compiler<'c, 's> {
    ctx: &'c StaticContext<'s>,
    frames: Vec<Frame>,
}

/// Does the (untyped) predicate AST certainly yield a non-numeric value?
fn boolean_predicate(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Binary(op, _, _) => matches!(
            op,
            BinOp::Or
                | BinOp::And
                | BinOp::GenEq
                | BinOp::GenNe
                | BinOp::GenLt
                | BinOp::GenLe
                | BinOp::GenGt
                | BinOp::GenGe
                | BinOp::ValEq
                | BinOp::ValNe
                | BinOp::ValLt
                | BinOp::ValLe
                | BinOp::ValGt
                | BinOp::ValGe
                | BinOp::Is
                | BinOp::Precedes
                | BinOp::Follows
        ),
        ExprKind::Path(_, steps) => steps.iter().all(|s| matches!(s, Step::Axis { .. })),
        ExprKind::FunctionCall(n, _) => {
            n.prefix.is_none()
                && n.uri.is_none()
                && matches!(
                    n.local.as_str(),
                    "not"
                        | "contains"
                        | "starts-with"
                        | "ends-with"
                        | "exists"
                        | "empty"
                        | "boolean"
                        | "true"
                        | "false"
                        | "matches"
                        | "lang"
                )
        }
        ExprKind::Literal(Literal::String(_)) => true,
        ExprKind::InstanceOf(..) | ExprKind::CastableAs(..) | ExprKind::Quantified(..) => true,
        _ => false,
    }
}

/// Does the predicate depend on the focus position/size?
fn uses_position(e: &Expr) -> bool {
    // conservative: any call of position()/last() anywhere, or a numeric-capable predicate
    let mut found = false;
    walk(e, &mut |x| {
        if let ExprKind::FunctionCall(n, args) = &x.kind {
            if args.is_empty() && (n.local == "position" || n.local == "last") {
                found = true;
            }
        }
    });
    found
}

fn walk(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    // iterative to stay safe on deep expressions
    let mut stack = vec![e];
    while let Some(x) = stack.pop() {
        f(x);
        match &x.kind {
            ExprKind::Sequence(v) | ExprKind::SquareArray(v) => stack.extend(v.iter()),
            ExprKind::FunctionCall(_, args) => {
                for a in args {
                    if let Argument::Expr(e) = a {
                        stack.push(e);
                    }
                }
            }
            ExprKind::InlineFunction { .. } => {}
            ExprKind::Map(kv) => {
                for (k, v) in kv {
                    stack.push(k);
                    stack.push(v);
                }
            }
            ExprKind::CurlyArray(a) | ExprKind::Unary(_, a) => stack.push(a),
            ExprKind::Postfix(p, fixes) => {
                stack.push(p);
                for fx in fixes {
                    match fx {
                        Postfix::Predicate(e) => stack.push(e),
                        Postfix::Call(args) => {
                            for a in args {
                                if let Argument::Expr(e) = a {
                                    stack.push(e);
                                }
                            }
                        }
                        Postfix::Lookup(KeySpec::Expr(e)) => stack.push(e),
                        Postfix::Lookup(_) => {}
                    }
                }
            }
            ExprKind::Path(_, steps) => {
                for s in steps {
                    if let Step::Expr(e) = s {
                        stack.push(e);
                    }
                    // predicates of steps have their own focus: skip
                }
            }
            ExprKind::Binary(_, a, b) | ExprKind::SimpleMap(a, b) => {
                stack.push(a);
                stack.push(b);
            }
            ExprKind::ArrowDynamic(a, b, args) => {
                stack.push(a);
                stack.push(b);
                for x in args {
                    if let Argument::Expr(e) = x {
                        stack.push(e);
                    }
                }
            }
            ExprKind::If(a, b, c) => {
                stack.push(a);
                stack.push(b);
                stack.push(c);
            }
            ExprKind::For(bs, r) | ExprKind::Let(bs, r) | ExprKind::Quantified(_, bs, r) => {
                for b in bs {
                    stack.push(&b.expr);
                }
                stack.push(r);
            }
            ExprKind::InstanceOf(a, _)
            | ExprKind::TreatAs(a, _)
            | ExprKind::CastableAs(a, _, _)
            | ExprKind::CastAs(a, _, _) => stack.push(a),
            _ => {}
        }
    }
}

impl Compiler<'_, '_> {
    fn resolve_prefix(&self, prefix: &str, span: Span) -> Result<String> {
        match prefix {
            "xml" => Ok("http://www.w3.org/XML/1998/namespace".into()),
            _ => self.ctx.namespaces.resolve(prefix).ok_or_else(|| {
                Error::new(
                    "XPST0081",
                    format!("namespace prefix `{prefix}` is not declared"),
                )
                .at(span)
            }),
        }
    }

    /// Resolves a name; unprefixed names get `default_uri`.
    fn qname(&self, n: &Name, default_uri: &str, span: Span) -> Result<QName> {
        if let Some(uri) = &n.uri {
            return Ok(QName::new(uri, &n.local, ""));
        }
        match &n.prefix {
            Some(p) => Ok(QName::new(&self.resolve_prefix(p, span)?, &n.local, p)),
            None => Ok(QName::new(default_uri, &n.local, "")),
        }
    }

    fn declare(&mut self, name: QName) -> u32 {
        let f = self.frames.last_mut();
        match f {
            Some(f) => {
                let slot = f.size as u32;
                f.size += 1;
                f.scope.push((name, slot));
                slot
            }
            None => 0,
        }
    }

    fn undeclare(&mut self, n: usize) {
        if let Some(f) = self.frames.last_mut() {
            for _ in 0..n {
                f.scope.pop();
            }
        }
    }

    /// Resolves a variable in frame `level` (capturing through inline
    /// function frames as needed).
    fn lookup_var(&mut self, name: &QName, level: usize) -> Option<Ir> {
        let frame = &self.frames[level];
        if let Some((_, slot)) = frame.scope.iter().rev().find(|(n, _)| n == name) {
            return Some(Ir::Local(*slot));
        }
        if let Some(i) = frame.captures.iter().position(|(n, _)| n == name) {
            return Some(Ir::Local(CAP_BASE + i as u32));
        }
        if !frame.is_function {
            return self.ctx.host.variable(name).map(Ir::HostVar);
        }
        // inside an inline function: capture from the enclosing frame
        let outer = if level > 0 {
            self.lookup_var(name, level - 1)?
        } else {
            return None;
        };
        let cap = match outer {
            Ir::Local(s) => Capture::Local(s),
            Ir::HostVar(h) => Capture::Host(h),
            _ => return None,
        };
        let frame = &mut self.frames[level];
        frame.captures.push((name.clone(), cap));
        Some(Ir::Local(CAP_BASE + (frame.captures.len() - 1) as u32))
    }

    fn expr(&mut self, e: &Expr) -> Result<Ir> {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.expr_inner(e))
    }

    fn boxed(&mut self, e: &Expr) -> Result<Box<Ir>> {
        Ok(Box::new(self.expr(e)?))
    }

    fn expr_inner(&mut self, e: &Expr) -> Result<Ir> {
        let span = e.span;
        Ok(match &e.kind {
            ExprKind::Literal(l) => Ir::Const(literal(l, span)?),
            ExprKind::VarRef(n) => {
                let q = self.qname(n, "", span)?;
                let level = self.frames.len() - 1;
                self.lookup_var(&q, level).ok_or_else(|| {
                    Error::new(
                        "XPST0008",
                        format!("variable ${} is not declared", q.lexical()),
                    )
                    .at(span)
                })?
            }
            ExprKind::ContextItem => Ir::ContextItem,
            ExprKind::Sequence(items) => {
                let mut v = Vec::with_capacity(items.len());
                for i in items {
                    v.push(self.expr(i)?);
                }
                match v.len() {
                    0 => Ir::Empty,
                    1 => v.pop().unwrap_or(Ir::Empty),
                    _ => {
                        if v.iter().all(|i| matches!(i, Ir::Const(_))) {
                            Ir::ConstSeq(
                                v.into_iter()
                                    .filter_map(|i| match i {
                                        Ir::Const(a) => Some(a),
                                        _ => None,
                                    })
                                    .collect(),
                            )
                        } else {
                            Ir::Seq(v)
                        }
                    }
                }
            }
            ExprKind::FunctionCall(n, args) => self.call(n, args, span)?,
            ExprKind::NamedFunctionRef(n, arity) => {
                let q = self.qname(n, FN, span)?;
                if let Some(h) = self.ctx.host.function(&q, *arity) {
                    Ir::HostRef(h.id, *arity, Arc::new(q))
                } else if q.uri == XS {
                    // constructor function as item: partial application of a cast
                    let target = crate::cast::type_by_name(&q.local).ok_or_else(|| {
                        Error::new(
                            "XPST0017",
                            format!("unknown function {}#{arity}", q.lexical()),
                        )
                        .at(span)
                    })?;
                    let body = self.cast_ir(Ir::Local(0), target, true, false);
                    Ir::InlineFn(
                        Box::new(InlineFn {
                            arity: 1,
                            frame: 1,
                            params: vec![None],
                            result: None,
                            body,
                            xpath1: false,
                        }),
                        vec![],
                    )
                } else {
                    let id = functions::lookup(&q.uri, &q.local, *arity).ok_or_else(|| {
                        Error::new(
                            "XPST0017",
                            format!("unknown function {}#{arity}", q.lexical()),
                        )
                        .at(span)
                    })?;
                    Ir::BuiltinRef(id, *arity)
                }
            }
            ExprKind::InlineFunction {
                params,
                result,
                body,
            } => {
                let mut ptypes = Vec::new();
                for p in params {
                    ptypes.push(match &p.ty {
                        Some(t) => Some(self.seq_type(t, span)?),
                        None => None,
                    });
                }
                let result = match result {
                    Some(t) => Some(self.seq_type(t, span)?),
                    None => None,
                };
                self.frames.push(Frame {
                    is_function: true,
                    ..Frame::default()
                });
                // parameters are declared after the captures; captures are
                // discovered while compiling the body, so params get slots
                // from a high base and are renumbered below.
                let mut names = Vec::new();
                for p in params {
                    names.push(self.qname(&p.name, "", span)?);
                }
                if let Some(f) = self.frames.last_mut() {
                    for (i, n) in names.iter().enumerate() {
                        f.scope.push((n.clone(), PARAM_BASE + i as u32));
                    }
                }
                let body_ir = self.expr(body);
                let frame = self.frames.pop().unwrap_or_default();
                let mut body_ir = body_ir?;
                let ncap = frame.captures.len() as u32;
                let arity = params.len() as u32;
                renumber(&mut body_ir, &|s| {
                    if s >= CAP_BASE {
                        s - CAP_BASE
                    } else if s >= PARAM_BASE {
                        ncap + (s - PARAM_BASE)
                    } else {
                        ncap + arity + s
                    }
                });
                let captures: Vec<Capture> = frame.captures.iter().map(|(_, c)| *c).collect();
                let size = frame.size + captures.len() + params.len();
                Ir::InlineFn(
                    Box::new(InlineFn {
                        arity: params.len(),
                        frame: size,
                        params: ptypes,
                        result,
                        body: body_ir,
                        xpath1: self.ctx.backwards_compatible,
                    }),
                    captures,
                )
            }
            ExprKind::Map(entries) => {
                let mut v = Vec::new();
                for (k, val) in entries {
                    v.push((self.expr(k)?, self.expr(val)?));
                }
                Ir::MapCtor(v)
            }
            ExprKind::SquareArray(members) => {
                let mut v = Vec::new();
                for m in members {
                    v.push(self.expr(m)?);
                }
                Ir::SquareArray(v)
            }
            ExprKind::CurlyArray(e) => Ir::CurlyArray(self.boxed(e)?),
            ExprKind::UnaryLookup(k) => Ir::UnaryLookup(Box::new(self.key(k)?)),
            ExprKind::Postfix(primary, fixes) => {
                let mut cur = self.expr(primary)?;
                let mut preds: Vec<Pred> = Vec::new();
                for fx in fixes {
                    match fx {
                        Postfix::Predicate(p) => preds.push(self.pred(p)?),
                        Postfix::Call(args) => {
                            if !preds.is_empty() {
                                cur = Ir::Filter(Box::new(cur), std::mem::take(&mut preds));
                            }
                            let mut a = Vec::new();
                            for arg in args {
                                a.push(match arg {
                                    Argument::Expr(e) => Some(self.expr(e)?),
                                    Argument::Placeholder => None,
                                });
                            }
                            cur = Ir::DynCall(Box::new(cur), a);
                        }
                        Postfix::Lookup(k) => {
                            if !preds.is_empty() {
                                cur = Ir::Filter(Box::new(cur), std::mem::take(&mut preds));
                            }
                            cur = Ir::Lookup(Box::new(cur), Box::new(self.key(k)?));
                        }
                    }
                }
                if !preds.is_empty() {
                    cur = Ir::Filter(Box::new(cur), preds);
                }
                cur
            }
            ExprKind::Path(start, steps) => self.path(*start, steps, span)?,
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, span)?,
            ExprKind::Unary(minus, a) => {
                let inner = self.expr(a)?;
                let inner = if self.ctx.backwards_compatible {
                    Ir::Number1(Box::new(inner))
                } else {
                    inner
                };
                if *minus {
                    fold(Ir::Neg(Box::new(inner)))
                } else {
                    Ir::Plus(Box::new(inner))
                }
            }
            ExprKind::SimpleMap(a, b) => Ir::SimpleMap(self.boxed(a)?, self.boxed(b)?),
            ExprKind::ArrowDynamic(a, f, args) => {
                let mut v = vec![Some(self.expr(a)?)];
                for arg in args {
                    v.push(match arg {
                        Argument::Expr(e) => Some(self.expr(e)?),
                        Argument::Placeholder => None,
                    });
                }
                Ir::DynCall(self.boxed(f)?, v)
            }
            ExprKind::If(c, t, f) => Ir::If(self.boxed(c)?, self.boxed(t)?, self.boxed(f)?),
            ExprKind::For(bindings, ret) => self.bindings(bindings, ret, span, |slot, e, r| {
                Ir::For(slot, Box::new(e), Box::new(r))
            })?,
            ExprKind::Let(bindings, ret) => self.bindings(bindings, ret, span, |slot, e, r| {
                Ir::Let(slot, Box::new(e), Box::new(r))
            })?,
            ExprKind::Quantified(every, bindings, cond) => {
                let every = *every;
                self.bindings(bindings, cond, span, move |slot, e, r| {
                    Ir::Quantified(every, slot, Box::new(e), Box::new(r))
                })?
            }
            ExprKind::InstanceOf(a, t) => Ir::InstanceOf(self.boxed(a)?, self.seq_type(t, span)?),
            ExprKind::TreatAs(a, t) => Ir::Treat(self.boxed(a)?, self.seq_type(t, span)?),
            ExprKind::CastAs(a, n, opt) => {
                let target = self.cast_target(n, span)?;
                let arg = self.expr(a)?;
                self.cast_ir(arg, target, *opt, false)
            }
            ExprKind::CastableAs(a, n, opt) => {
                let target = self.cast_target(n, span)?;
                let arg = self.expr(a)?;
                self.cast_ir(arg, target, *opt, true)
            }
        })
    }

    /// `arg cast as target` (`castable`: `castable as`). A cast to
    /// `xs:QName` resolves prefixes against the static namespaces: a
    /// literal is resolved now (and folded), a computed value gets a
    /// snapshot of the enumerable bindings for the run-time resolution.
    fn cast_ir(&self, arg: Ir, target: crate::cast::CastTarget, opt: bool, castable: bool) -> Ir {
        if target.primitive != crate::value::AtomicType::QName {
            return if castable {
                Ir::Castable(Box::new(arg), target, opt)
            } else {
                fold(Ir::Cast(Box::new(arg), target, opt))
            };
        }
        let mut ns = crate::cast::CastNamespaces {
            bindings: Vec::new(),
            default_ns: self.ctx.default_element_namespace.clone(),
        };
        match &arg {
            Ir::Const(c) if c.is_stringlike() => {
                let prefix = c
                    .as_str()
                    .unwrap_or("")
                    .trim()
                    .split_once(':')
                    .map(|(p, _)| p);
                if let Some(p) = prefix {
                    if let Some(uri) = self.ctx.namespaces.resolve(p) {
                        ns.bindings.push((p.to_string(), uri));
                    }
                }
                match crate::cast::cast_with_namespaces(c, target, &ns) {
                    Ok(_) if castable => return Ir::Const(Atomic::Boolean(true)),
                    Ok(v) => return Ir::Const(v),
                    Err(_) => {}
                }
            }
            _ => ns.bindings = self.ctx.namespaces.bindings().unwrap_or_default(),
        }
        Ir::CastQName(Box::new(arg), target, opt, castable, Box::new(ns))
    }

    fn cast_target(&self, n: &Name, span: Span) -> Result<crate::cast::CastTarget> {
        let q = self.qname(n, &self.ctx.default_element_namespace, span)?;
        if q.uri != XS {
            return Err(
                Error::new("XPST0051", format!("unknown atomic type {}", q.lexical())).at(span),
            );
        }
        match q.local.as_str() {
            "anyAtomicType" | "NOTATION" | "numeric" => {
                Err(Error::new("XPST0080", format!("cannot cast to xs:{}", q.local)).at(span))
            }
            _ => crate::cast::type_by_name(&q.local).ok_or_else(|| {
                Error::new("XPST0051", format!("unknown atomic type xs:{}", q.local)).at(span)
            }),
        }
    }

    fn key(&mut self, k: &KeySpec) -> Result<KeyIr> {
        Ok(match k {
            KeySpec::Wildcard => KeyIr::Wildcard,
            KeySpec::Name(n) => KeyIr::Expr(Ir::Const(Atomic::string(n))),
            KeySpec::Integer(i) => {
                KeyIr::Expr(Ir::Const(Atomic::Integer(i.parse().map_err(|_| {
                    Error::new("FOAR0002", format!("integer {i} is too large"))
                })?)))
            }
            KeySpec::Expr(e) => KeyIr::Expr(self.expr(e)?),
        })
    }

    fn bindings(
        &mut self,
        bindings: &[ast::Binding],
        ret: &Expr,
        span: Span,
        make: impl Fn(u32, Ir, Ir) -> Ir,
    ) -> Result<Ir> {
        // compile binding i in the scope of bindings < i
        let mut compiled = Vec::new();
        for b in bindings {
            let e = self.expr(&b.expr)?;
            let q = self.qname(&b.name, "", span)?;
            let slot = self.declare(q);
            compiled.push((slot, e));
        }
        let body = self.expr(ret);
        self.undeclare(bindings.len());
        let mut out = body?;
        while let Some((slot, e)) = compiled.pop() {
            out = make(slot, e, out);
        }
        Ok(out)
    }

    fn pred(&mut self, p: &Expr) -> Result<Pred> {
        if let ExprKind::Literal(Literal::Integer(i)) = &p.kind {
            if let Ok(n) = i.parse::<i64>() {
                return Ok(Pred::Position(n));
            }
        }
        if let ExprKind::FunctionCall(n, args) = &p.kind {
            if args.is_empty() && n.local == "last" && n.prefix.is_none() && n.uri.is_none() {
                return Ok(Pred::Last);
            }
        }
        let ir = self.expr(p)?;
        if let Ir::Const(a) = &ir {
            if a.is_numeric() {
                let f = a.to_number();
                if f.fract() == 0.0 && f.abs() < 1e15 {
                    return Ok(Pred::Position(f as i64));
                }
                return Ok(Pred::Position(0));
            }
        }
        if boolean_predicate(p) {
            Ok(Pred::Boolean(ir))
        } else {
            Ok(Pred::General(ir))
        }
    }

    fn test(&self, axis: Axis, t: &NodeTest, span: Span) -> Result<Test> {
        let default_uri = if axis == Axis::Attribute || axis == Axis::Namespace {
            ""
        } else {
            self.ctx.default_element_namespace.as_str()
        };
        Ok(match t {
            NodeTest::Name(NameTest::Name(n)) => {
                let q = self.qname(n, default_uri, span)?;
                Test::Name {
                    uri: q.uri,
                    local: q.local,
                }
            }
            NodeTest::Name(NameTest::Any) => Test::AnyName,
            NodeTest::Name(NameTest::AnyLocal { prefix, uri }) => match (uri, prefix) {
                (Some(u), _) => Test::AnyLocal(u.clone()),
                (None, Some(p)) => Test::AnyLocal(self.resolve_prefix(p, span)?),
                (None, None) => Test::AnyName,
            },
            NodeTest::Name(NameTest::AnyNamespace(l)) => Test::AnyNamespace(l.clone()),
            NodeTest::Kind(k) => self.kind_test(k, span)?,
        })
    }

    /// Can a node of an untyped tree carry the type annotation `t`?
    /// Elements are `xs:untyped` (derived from `xs:anyType`), attributes
    /// `xs:untypedAtomic` (derived from `xs:anyAtomicType` and
    /// `xs:anySimpleType`); any other known type never matches.
    fn annotation_matches(&self, element: bool, t: &Name, span: Span) -> Result<bool> {
        let q = self.qname(t, &self.ctx.default_element_namespace, span)?;
        let known = q.uri == XS
            && (matches!(q.local.as_str(), "anyType" | "untyped" | "anySimpleType")
                || atomic_type_name(&q.local).is_some());
        if !known {
            return Err(Error::new("XPST0008", format!("unknown type {}", q.lexical())).at(span));
        }
        Ok(if element {
            matches!(q.local.as_str(), "anyType" | "untyped")
        } else {
            matches!(
                q.local.as_str(),
                "untypedAtomic" | "anyAtomicType" | "anySimpleType"
            )
        })
    }

    fn kind_test(&self, k: &KindTest, span: Span) -> Result<Test> {
        Ok(match k {
            KindTest::AnyNode => Test::AnyNode,
            KindTest::Text => Test::Text,
            KindTest::Comment => Test::Comment,
            KindTest::NamespaceNode => Test::NamespaceNode,
            KindTest::Pi(n) => Test::Pi(n.clone()),
            KindTest::Document(inner) => Test::Document(match inner {
                Some(i) => Some(Box::new(self.kind_test(i, span)?)),
                None => None,
            }),
            KindTest::Element(_, Some(t)) | KindTest::Attribute(_, Some(t))
                if !self.annotation_matches(matches!(k, KindTest::Element(..)), t, span)? =>
            {
                Test::Never
            }
            KindTest::Element(n, _) => Test::Element(match n {
                Some(nt) => Some(Box::new(self.test(
                    Axis::Child,
                    &NodeTest::Name(nt.clone()),
                    span,
                )?)),
                None => None,
            }),
            KindTest::Attribute(n, _) => Test::Attribute(match n {
                Some(nt) => Some(Box::new(self.test(
                    Axis::Attribute,
                    &NodeTest::Name(nt.clone()),
                    span,
                )?)),
                None => None,
            }),
            KindTest::SchemaElement(_) | KindTest::SchemaAttribute(_) => {
                return Err(Error::new(
                    "XPST0008",
                    "schema-element()/schema-attribute() need a schema-aware processor",
                )
                .at(span))
            }
        })
    }

    fn item_type(&self, t: &ItemType, span: Span) -> Result<ItemTypeIr> {
        Ok(match t {
            ItemType::Item => ItemTypeIr::Item,
            ItemType::Kind(k) => ItemTypeIr::Node(self.kind_test(k, span)?),
            ItemType::Atomic(n) => {
                let q = self.qname(n, &self.ctx.default_element_namespace, span)?;
                if q.uri == XS {
                    match atomic_type_name(&q.local) {
                        Some(s) => ItemTypeIr::Atomic(s),
                        None => {
                            return Err(Error::new(
                                "XPST0051",
                                format!("unknown type xs:{}", q.local),
                            )
                            .at(span))
                        }
                    }
                } else {
                    return Err(
                        Error::new("XPST0051", format!("unknown type {}", q.lexical())).at(span),
                    );
                }
            }
            ItemType::Function(sig) => ItemTypeIr::Function(sig.as_ref().map(|(p, _)| p.len())),
            ItemType::Map(_) => ItemTypeIr::Map,
            ItemType::Array(_) => ItemTypeIr::Array,
            ItemType::Paren(i) => self.item_type(i, span)?,
        })
    }

    pub(crate) fn seq_type(&self, t: &SequenceType, span: Span) -> Result<SeqTypeIr> {
        Ok(match t {
            SequenceType::Empty => SeqTypeIr::Empty,
            SequenceType::Item(i, o) => SeqTypeIr::Item(self.item_type(i, span)?, *o),
        })
    }

    fn path(&mut self, start: PathStart, steps: &[Step], span: Span) -> Result<Ir> {
        let mut cur: Option<Ir> = match start {
            PathStart::Relative => None,
            PathStart::Root => Some(Ir::Root),
            PathStart::RootDescendants => Some(Ir::Path(
                Box::new(Ir::Root),
                Box::new(Ir::Step(Axis::DescendantOrSelf, Test::AnyNode, vec![])),
            )),
        };
        for step in steps {
            let ir = match step {
                Step::Axis {
                    axis,
                    test,
                    predicates,
                } => {
                    let t = self.test(*axis, test, span)?;
                    let mut preds = Vec::new();
                    for p in predicates {
                        preds.push(self.pred(p)?);
                    }
                    // descendant-or-self::node()/child::T[non-positional] → descendant::T
                    if *axis == Axis::Child
                        && predicates
                            .iter()
                            .all(|p| !uses_position(p) && boolean_predicate(p))
                    {
                        if let Some(Ir::Path(_, last)) = &cur {
                            if let Ir::Step(Axis::DescendantOrSelf, Test::AnyNode, lp) =
                                last.as_ref()
                            {
                                if lp.is_empty() {
                                    if let Some(Ir::Path(base, _)) = cur.take() {
                                        cur = Some(Ir::Path(
                                            base,
                                            Box::new(Ir::Step(Axis::Descendant, t, preds)),
                                        ));
                                        continue;
                                    }
                                }
                            }
                        }
                        if let Some(Ir::Step(Axis::DescendantOrSelf, Test::AnyNode, lp)) = &cur {
                            if lp.is_empty() {
                                cur = Some(Ir::Step(Axis::Descendant, t, preds));
                                continue;
                            }
                        }
                    }
                    Ir::Step(*axis, t, preds)
                }
                Step::Expr(e) => self.expr(e)?,
            };
            cur = Some(match cur {
                None => ir,
                Some(prev) => Ir::Path(Box::new(prev), Box::new(ir)),
            });
        }
        Ok(cur.unwrap_or(Ir::Root))
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr, span: Span) -> Result<Ir> {
        // left-deep chains (a + b + c + …) are common: iterate on the left
        // spine is handled by recursion depth bounded by stacker.
        let bc = self.ctx.backwards_compatible;
        let l = self.expr(a)?;
        let r = self.expr(b)?;
        let arith = |o: ArithOp, l: Ir, r: Ir| {
            let (l, r) = if bc {
                (Ir::Number1(Box::new(l)), Ir::Number1(Box::new(r)))
            } else {
                (l, r)
            };
            fold(Ir::Arith(o, Box::new(l), Box::new(r)))
        };
        let _ = span;
        if let Some(fast) = name_comparison(op, &l, &r) {
            return Ok(Ir::NameEq(crate::ir::NameEq {
                fallback: Box::new(match op {
                    BinOp::GenEq => Ir::GenCmp(CmpOp::Eq, Box::new(l), Box::new(r)),
                    BinOp::GenNe => Ir::GenCmp(CmpOp::Ne, Box::new(l), Box::new(r)),
                    BinOp::ValEq => Ir::ValCmp(CmpOp::Eq, Box::new(l), Box::new(r)),
                    _ => Ir::ValCmp(CmpOp::Ne, Box::new(l), Box::new(r)),
                }),
                ..fast
            }));
        }
        Ok(match op {
            BinOp::Or => Ir::Or(Box::new(l), Box::new(r)),
            BinOp::And => Ir::And(Box::new(l), Box::new(r)),
            BinOp::GenEq => Ir::GenCmp(CmpOp::Eq, Box::new(l), Box::new(r)),
            BinOp::GenNe => Ir::GenCmp(CmpOp::Ne, Box::new(l), Box::new(r)),
            BinOp::GenLt => Ir::GenCmp(CmpOp::Lt, Box::new(l), Box::new(r)),
            BinOp::GenLe => Ir::GenCmp(CmpOp::Le, Box::new(l), Box::new(r)),
            BinOp::GenGt => Ir::GenCmp(CmpOp::Gt, Box::new(l), Box::new(r)),
            BinOp::GenGe => Ir::GenCmp(CmpOp::Ge, Box::new(l), Box::new(r)),
            BinOp::ValEq => Ir::ValCmp(CmpOp::Eq, Box::new(l), Box::new(r)),
            BinOp::ValNe => Ir::ValCmp(CmpOp::Ne, Box::new(l), Box::new(r)),
            BinOp::ValLt => Ir::ValCmp(CmpOp::Lt, Box::new(l), Box::new(r)),
            BinOp::ValLe => Ir::ValCmp(CmpOp::Le, Box::new(l), Box::new(r)),
            BinOp::ValGt => Ir::ValCmp(CmpOp::Gt, Box::new(l), Box::new(r)),
            BinOp::ValGe => Ir::ValCmp(CmpOp::Ge, Box::new(l), Box::new(r)),
            BinOp::Is => Ir::NodeCmp(NodeCmp::Is, Box::new(l), Box::new(r)),
            BinOp::Precedes => Ir::NodeCmp(NodeCmp::Precedes, Box::new(l), Box::new(r)),
            BinOp::Follows => Ir::NodeCmp(NodeCmp::Follows, Box::new(l), Box::new(r)),
            BinOp::Concat => Ir::Concat(Box::new(l), Box::new(r)),
            BinOp::Range => Ir::Range(Box::new(l), Box::new(r)),
            BinOp::Add => arith(ArithOp::Add, l, r),
            BinOp::Sub => arith(ArithOp::Sub, l, r),
            BinOp::Mul => arith(ArithOp::Mul, l, r),
            BinOp::Div => arith(ArithOp::Div, l, r),
            BinOp::IDiv => arith(ArithOp::IDiv, l, r),
            BinOp::Mod => arith(ArithOp::Mod, l, r),
            BinOp::Union => Ir::Set(SetOp::Union, Box::new(l), Box::new(r)),
            BinOp::Intersect => Ir::Set(SetOp::Intersect, Box::new(l), Box::new(r)),
            BinOp::Except => Ir::Set(SetOp::Except, Box::new(l), Box::new(r)),
        })
    }

    fn call(&mut self, n: &Name, args: &[Argument], span: Span) -> Result<Ir> {
        let q = self.qname(n, FN, span)?;
        let arity = args.len();
        let placeholders = args.iter().any(|a| matches!(a, Argument::Placeholder));
        // position()/last() are focus intrinsics
        if q.uri == FN && arity == 0 {
            match q.local.as_str() {
                "position" => return Ok(Ir::Position),
                "last" => return Ok(Ir::Last),
                _ => {}
            }
        }
        if let Some(h) = self.ctx.host.function(&q, arity) {
            if placeholders {
                return self.partial(Ir::HostRef(h.id, arity, Arc::new(q)), args);
            }
            let mut a = Vec::new();
            for arg in args {
                if let Argument::Expr(e) = arg {
                    a.push(self.expr(e)?);
                }
            }
            let mut params = h.params.clone();
            while params.len() < a.len() {
                params.push(Param(Kind::Item, Occ::Many));
            }
            return Ok(Ir::HostCall(h.id, a, params, h.wants_context));
        }
        if q.uri == XS {
            if arity != 1 {
                return Err(Error::new(
                    "XPST0017",
                    format!("constructor function xs:{} takes one argument", q.local),
                )
                .at(span));
            }
            let target = match q.local.as_str() {
                "anyAtomicType" | "NOTATION" | "numeric" => None,
                l => crate::cast::type_by_name(l),
            }
            .ok_or_else(|| {
                Error::new("XPST0017", format!("unknown function xs:{}#1", q.local)).at(span)
            })?;
            let arg = match args.first() {
                Some(Argument::Expr(e)) => self.expr(e)?,
                _ => {
                    return Err(Error::new(
                        "XPST0017",
                        "partial application of constructor functions is not supported",
                    )
                    .at(span))
                }
            };
            return Ok(self.cast_ir(arg, target, true, false));
        }
        let id = functions::lookup(&q.uri, &q.local, arity).ok_or_else(|| {
            let known = functions::exists(&q.uri, &q.local);
            Error::new(
                "XPST0017",
                if known {
                    format!("function {}() does not take {arity} arguments", q.lexical())
                } else {
                    format!("unknown function {}#{arity}", q.lexical())
                },
            )
            .at(span)
        })?;
        if placeholders {
            return self.partial(Ir::BuiltinRef(id, arity), args);
        }
        let b = &functions::table()[id as usize];
        let mut a = Vec::new();
        for arg in args {
            if let Argument::Expr(e) = arg {
                a.push(self.expr(e)?);
            }
        }
        if b.context_default && arity + 1 == b.min {
            a.push(Ir::ContextItem);
        }
        let params: Vec<Param> = (0..a.len()).map(|i| b.param(i)).collect();
        Ok(fold(Ir::Call(id, a, params)))
    }

    fn partial(&mut self, f: Ir, args: &[Argument]) -> Result<Ir> {
        let mut a = Vec::new();
        for arg in args {
            a.push(match arg {
                Argument::Expr(e) => Some(self.expr(e)?),
                Argument::Placeholder => None,
            });
        }
        Ok(Ir::PartialStatic(Box::new(f), a))
    }
}

/// Maps every local slot of this frame through `f` (nested inline
/// functions keep their own frames; only their captures are mapped).
fn renumber(ir: &mut Ir, f: &dyn Fn(u32) -> u32) {
    visit_mut(ir, &mut |node| match node {
        Ir::Local(s) => *s = f(*s),
        Ir::For(s, ..) | Ir::Let(s, ..) | Ir::Quantified(_, s, ..) => *s = f(*s),
        _ => {}
    });
}

fn visit_mut(ir: &mut Ir, f: &mut dyn FnMut(&mut Ir)) {
    f(ir);
    match ir {
        Ir::Seq(v) | Ir::SquareArray(v) => v.iter_mut().for_each(|x| visit_mut(x, f)),
        Ir::Path(a, b)
        | Ir::SimpleMap(a, b)
        | Ir::Arith(_, a, b)
        | Ir::GenCmp(_, a, b)
        | Ir::ValCmp(_, a, b)
        | Ir::NodeCmp(_, a, b)
        | Ir::And(a, b)
        | Ir::Or(a, b)
        | Ir::For(_, a, b)
        | Ir::Let(_, a, b)
        | Ir::Quantified(_, _, a, b)
        | Ir::Range(a, b)
        | Ir::Concat(a, b)
        | Ir::Set(_, a, b) => {
            visit_mut(a, f);
            visit_mut(b, f);
        }
        Ir::If(a, b, c) => {
            visit_mut(a, f);
            visit_mut(b, f);
            visit_mut(c, f);
        }
        Ir::Step(_, _, preds) => preds.iter_mut().for_each(|p| visit_pred(p, f)),
        Ir::Filter(a, preds) => {
            visit_mut(a, f);
            preds.iter_mut().for_each(|p| visit_pred(p, f));
        }
        Ir::Call(_, args, _) | Ir::HostCall(_, args, _, _) => {
            args.iter_mut().for_each(|x| visit_mut(x, f))
        }
        Ir::NameEq(n) => visit_mut(&mut n.fallback, f),
        Ir::DynCall(a, args) | Ir::PartialStatic(a, args) => {
            visit_mut(a, f);
            args.iter_mut().flatten().for_each(|x| visit_mut(x, f));
        }
        Ir::InlineFn(_, caps) => {
            // nested function bodies have their own frames; only the
            // captures refer to this frame
            for c in caps.iter_mut() {
                if let Capture::Local(s) = c {
                    let mut tmp = Ir::Local(*s);
                    f(&mut tmp);
                    if let Ir::Local(n) = tmp {
                        *s = n;
                    }
                }
            }
        }
        Ir::Lookup(a, k) => {
            visit_mut(a, f);
            if let KeyIr::Expr(e) = k.as_mut() {
                visit_mut(e, f);
            }
        }
        Ir::UnaryLookup(k) => {
            if let KeyIr::Expr(e) = k.as_mut() {
                visit_mut(e, f);
            }
        }
        Ir::Neg(a)
        | Ir::Plus(a)
        | Ir::InstanceOf(a, _)
        | Ir::Treat(a, _)
        | Ir::Cast(a, _, _)
        | Ir::Castable(a, _, _)
        | Ir::CastQName(a, ..)
        | Ir::CurlyArray(a)
        | Ir::Number1(a) => visit_mut(a, f),
        Ir::MapCtor(kv) => {
            for (k, v) in kv {
                visit_mut(k, f);
                visit_mut(v, f);
            }
        }
        _ => {}
    }
}

fn visit_pred(p: &mut Pred, f: &mut dyn FnMut(&mut Ir)) {
    match p {
        Pred::Boolean(i) | Pred::General(i) => visit_mut(i, f),
        _ => {}
    }
}

/// The `&'static` name of a known xs: type for `instance of`.
fn atomic_type_name(local: &str) -> Option<&'static str> {
    const NAMES: &[&str] = &[
        "anyAtomicType",
        "numeric",
        "string",
        "untypedAtomic",
        "anyURI",
        "boolean",
        "integer",
        "decimal",
        "double",
        "float",
        "QName",
        "dateTime",
        "date",
        "time",
        "duration",
        "yearMonthDuration",
        "dayTimeDuration",
        "gYear",
        "gYearMonth",
        "gMonth",
        "gMonthDay",
        "gDay",
        "hexBinary",
        "base64Binary",
        "int",
        "long",
        "short",
        "byte",
        "nonNegativeInteger",
        "positiveInteger",
        "nonPositiveInteger",
        "negativeInteger",
        "unsignedLong",
        "unsignedInt",
        "unsignedShort",
        "unsignedByte",
        "normalizedString",
        "token",
        "language",
        "NMTOKEN",
        "Name",
        "NCName",
        "ID",
        "IDREF",
        "ENTITY",
        "dateTimeStamp",
        "NOTATION",
    ];
    NAMES.iter().find(|n| **n == local).copied()
}

fn literal(l: &Literal, span: Span) -> Result<Atomic> {
    Ok(match l {
        Literal::String(s) => Atomic::string(s),
        Literal::Integer(i) => match i.parse::<i64>() {
            Ok(v) => Atomic::Integer(v),
            Err(_) => match i.parse::<rust_decimal::Decimal>() {
                Ok(d) => Atomic::Decimal(d),
                Err(_) => {
                    return Err(
                        Error::new("FOAR0002", format!("integer literal {i} is too large"))
                            .at(span),
                    )
                }
            },
        },
        Literal::Decimal(d) => {
            let t = if d.starts_with('.') {
                format!("0{d}")
            } else {
                d.clone()
            };
            let t = t.strip_suffix('.').map(str::to_string).unwrap_or(t);
            match t.parse::<rust_decimal::Decimal>() {
                Ok(v) => Atomic::Decimal(v),
                Err(_) => Atomic::Double(t.parse::<f64>().unwrap_or(f64::NAN)),
            }
        }
        Literal::Double(d) => Atomic::Double(crate::value::parse_double(d).unwrap_or(f64::NAN)),
    })
}

/// Constant folding of pure operations on constants.
/// Recognises `local-name() = 'lit'` and `name() = 'lit'` (with `!=`,
/// `eq`, `ne`, either operand order) on the context item — the idiom of
/// namespace-independent matching (`*[local-name() = 'antrag']`) that
/// XÖV rules use everywhere. The result carries a placeholder fallback
/// that the caller fills in.
fn name_comparison(op: BinOp, l: &Ir, r: &Ir) -> Option<crate::ir::NameEq> {
    let negate = match op {
        BinOp::GenEq | BinOp::ValEq => false,
        BinOp::GenNe | BinOp::ValNe => true,
        _ => return None,
    };
    let (call, lit) = match (l, r) {
        (Ir::Call(..), Ir::Const(Atomic::String(s))) => (l, s),
        (Ir::Const(Atomic::String(s)), Ir::Call(..)) => (r, s),
        _ => return None,
    };
    let Ir::Call(id, args, _) = call else {
        return None;
    };
    if !matches!(args.as_slice(), [Ir::ContextItem]) {
        return None;
    }
    let b = functions::table().get(*id as usize)?;
    let lexical = match (b.ns, b.name) {
        (functions::FN, "local-name") => false,
        (functions::FN, "name") => true,
        _ => return None,
    };
    Some(crate::ir::NameEq {
        lexical,
        value: lit.clone(),
        negate,
        fallback: Box::new(Ir::Empty),
    })
}

fn fold(ir: Ir) -> Ir {
    match &ir {
        Ir::Arith(op, a, b) => {
            if let (Some(x), Some(y)) = (const_num(a), const_num(b)) {
                if let Ok(v) = crate::arith::arithmetic(*op, &x, &y, 0) {
                    return Ir::Const(v);
                }
            }
            ir
        }
        Ir::Neg(a) => {
            if let Some(x) = const_num(a) {
                if let Ok(v) = crate::arith::negate(&x) {
                    return Ir::Const(v);
                }
            }
            ir
        }
        Ir::Cast(a, target, _) => {
            if let Ir::Const(x) = a.as_ref() {
                if let Ok(v) = crate::cast::cast(x, *target) {
                    return Ir::Const(v);
                }
            }
            ir
        }
        _ => ir,
    }
}

fn const_num(ir: &Ir) -> Option<Atomic> {
    match ir {
        Ir::Const(a) if a.is_numeric() => Some(a.clone()),
        Ir::Number1(inner) => match inner.as_ref() {
            Ir::Const(a) if a.is_numeric() => Some(Atomic::Double(a.to_number())),
            Ir::Const(a) if a.is_stringlike() => Some(Atomic::Double(
                crate::value::xpath1_parse_number(a.as_str().unwrap_or("")),
            )),
            _ => None,
        },
        _ => None,
    }
}
