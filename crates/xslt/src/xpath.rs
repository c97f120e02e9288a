//! XPath expressions: compile-time rewriting, validation and the per-thread
//! program cache.
//!
//! Every XPath expression in a stylesheet is parsed with `xee-xpath-ast`,
//! walked once to
//! - replace the XSLT-only functions (`current()`, `key()`, `format-number()`)
//!   and the focus functions `position()`/`last()` of the outermost focus by
//!   references to internal external variables (xee always runs a query with
//!   position 1 of 1),
//! - turn `*[local-name() = 'x']` steps into the equivalent, much cheaper
//!   name test `*:x`,
//! - collect the stylesheet variables it references,
//!
//! and then compiled by xee to validate it. xee's compiled `Program` holds
//! `Rc`s and therefore is neither `Send` nor `Sync`; the stylesheet keeps the
//! rewritten ASTs and each thread compiles them once into a cache keyed by
//! the stylesheet's identity.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::{Arc, Weak};

use xee_interpreter::context::StaticContext;
use xee_interpreter::interpreter::Program;
use xee_xpath_ast::ast;
use xee_xpath_ast::ast::BinaryOperator;
use xee_xpath_ast::{Namespaces, VariableNames, XPathParserContext, FN_NAMESPACE};
use xot::xmlname::OwnedName;

/// Namespace of the internal variables introduced by rewriting.
pub(crate) const INTERNAL_NS: &str = "urn:x-drehscheibe:xslt:internal";

/// Index of an expression in [`crate::compile::Compiled::exprs`].
pub(crate) type ExprId = usize;

/// Where the value bound to an external variable of a query comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarRef {
    /// Slot in the current template frame.
    Local(usize),
    /// Global variable or parameter.
    Global(usize),
    /// `current()`.
    Current,
    /// `position()` of the instruction's focus.
    Position,
    /// `last()` of the instruction's focus.
    Last,
    /// The lookup map of the `xsl:key` with this index.
    Key(usize),
    /// The result of hoisted call number n of this expression.
    Hoisted(usize),
    /// The value supplied by the caller for the global parameter being
    /// coerced.
    Supplied,
}

/// A `format-number()` call evaluated in Rust before its expression.
#[derive(Debug, Clone)]
pub(crate) struct Hoist {
    pub value: ExprId,
    pub picture: Picture,
    pub format: usize,
}

/// The picture of a hoisted `format-number()` call.
#[derive(Debug, Clone)]
pub(crate) enum Picture {
    /// A literal picture, parsed at compile time.
    Parsed(Box<crate::number::Picture>),
    /// A computed picture.
    Expr(ExprId),
}

/// A compiled (validated, rewritten) XPath expression.
#[derive(Debug, Clone)]
pub(crate) struct ExprDef {
    /// The rewritten expression text (for diagnostics).
    pub text: String,
    pub ast: ast::XPath,
    pub namespaces: Arc<Namespaces>,
    pub vars: Vec<(OwnedName, VarRef)>,
    pub hoists: Vec<Hoist>,
    /// The variables declared in the static context (same names as `vars`).
    pub declared: Vec<OwnedName>,
    /// Module index and line of the owning instruction.
    pub file: usize,
    pub line: usize,
}

/// What the expression compiler needs to know about the stylesheet.
pub(crate) trait ExprEnv {
    /// Resolve a variable reference visible at the expression.
    fn lookup_var(&self, name: &OwnedName) -> Option<VarRef>;
    /// All variable names visible at the expression.
    fn visible_vars(&self) -> Vec<OwnedName>;
    /// Index of the key with this expanded name.
    fn key_index(&self, name: &OwnedName) -> Option<usize>;
    /// Index of the decimal format with this name (`None`: the default one).
    fn decimal_format(&self, name: Option<&OwnedName>) -> Option<usize>;
    /// The decimal format with this index.
    fn decimal_format_def(&self, index: usize) -> Option<crate::ir::DecimalFormat>;
    /// Is the expression in an XSLT 1.0 (backwards compatible) region?
    fn backwards_compatible(&self) -> bool;
}

fn internal(local: &str) -> OwnedName {
    OwnedName::new(local.to_string(), INTERNAL_NS.to_string(), String::new())
}

fn internal_ref(local: &str) -> String {
    format!("$Q{{{INTERNAL_NS}}}{local}")
}

/// Resolve a lexical QName (`p:local` or `local`) with the given namespaces;
/// unprefixed names are in no namespace.
pub(crate) fn resolve_lexical_qname(lexical: &str, ns: &Namespaces) -> Option<OwnedName> {
    let lexical = lexical.trim();
    if let Some((prefix, local)) = lexical.split_once(':') {
        let uri = ns.by_prefix(prefix)?;
        if !is_ncname(local) || !is_ncname(prefix) {
            return None;
        }
        Some(OwnedName::new(
            local.to_string(),
            uri.to_string(),
            prefix.to_string(),
        ))
    } else if is_ncname(lexical) {
        Some(OwnedName::new(
            lexical.to_string(),
            String::new(),
            String::new(),
        ))
    } else {
        None
    }
}

/// Is `s` an XML NCName (simplified to the common character classes)?
pub(crate) fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '\u{B7}'))
}

#[derive(Debug)]
enum Part {
    Lit(String),
    Src(usize, usize),
}

#[derive(Debug)]
struct Edit {
    start: usize,
    end: usize,
    parts: Vec<Part>,
}

enum HoistPicture {
    Literal(String),
    Expr(usize, usize),
}

struct HoistReq {
    value: (usize, usize),
    picture: HoistPicture,
    format: usize,
}

struct Walker<'a> {
    /// XSLT 1.0 backwards-compatible rewriting (first-item and number()
    /// conversions of XPath 1.0).
    bc: bool,
    declared: &'a VariableNames,
    ns: &'a Namespaces,
    env: &'a dyn ExprEnv,
    depth: usize,
    bound: Vec<OwnedName>,
    edits: Vec<Edit>,
    calls: Vec<(OwnedName, usize)>,
    used: Vec<OwnedName>,
    hoists: Vec<HoistReq>,
    error: Option<String>,
}

fn display_name(name: &OwnedName) -> String {
    if name.namespace() == FN_NAMESPACE || name.namespace().is_empty() {
        name.local_name().to_string()
    } else if !name.prefix().is_empty() {
        format!("{}:{}", name.prefix(), name.local_name())
    } else {
        format!("Q{{{}}}{}", name.namespace(), name.local_name())
    }
}

use xot::xmlname::NameStrInfo;

/// How XPath 1.0 converts an argument of a core function.
#[derive(Clone, Copy)]
enum Conv {
    /// First item (node-set to node).
    First,
    /// `string()` of the first item.
    Str,
    /// `number()` of the first item.
    Num,
    /// No conversion.
    Keep,
}

/// Argument conversions of XPath 1.0 core functions (backwards
/// compatible mode).
fn bc_conversion(local: &str, index: usize) -> Conv {
    match (local, index) {
        ("string" | "number" | "local-name" | "name" | "namespace-uri" | "generate-id", 0) => {
            Conv::First
        }
        ("string-length" | "normalize-space" | "lang", 0) => Conv::Str,
        ("concat", _) => Conv::Str,
        ("starts-with" | "contains" | "substring-before" | "substring-after", 0 | 1) => Conv::Str,
        ("translate", 0..=2) => Conv::Str,
        ("substring", 0) => Conv::Str,
        ("substring", 1 | 2) => Conv::Num,
        ("floor" | "ceiling" | "round", 0) => Conv::Num,
        _ => Conv::Keep,
    }
}

fn is_numeric_literal(p: &ast::PathExpr) -> bool {
    matches!(p.steps.as_slice(), [step] if matches!(&step.value,
        ast::StepExpr::PrimaryExpr(prim) if matches!(&prim.value,
            ast::PrimaryExpr::Literal(ast::Literal::Integer(_) | ast::Literal::Decimal(_) | ast::Literal::Double(_)))))
}

fn path_span(p: &ast::PathExpr) -> Option<(usize, usize)> {
    let first = p.steps.first()?;
    let last = p.steps.last()?;
    Some((first.span.start, last.span.end))
}

impl<'a> Walker<'a> {
    fn new(
        declared: &'a VariableNames,
        ns: &'a Namespaces,
        env: &'a dyn ExprEnv,
        bc: bool,
    ) -> Self {
        Walker {
            bc,
            declared,
            ns,
            env,
            depth: 0,
            bound: Vec::new(),
            edits: Vec::new(),
            calls: Vec::new(),
            used: Vec::new(),
            hoists: Vec::new(),
            error: None,
        }
    }

    fn wrap(&mut self, span: (usize, usize), before: &str, after: &str) {
        self.edits.push(Edit {
            start: span.0,
            end: span.1,
            parts: vec![
                Part::Lit(before.to_string()),
                Part::Src(span.0, span.1),
                Part::Lit(after.to_string()),
            ],
        });
    }

    fn wrap_conv(&mut self, span: (usize, usize), conv: Conv) {
        match conv {
            Conv::First => self.wrap(span, "((", ")[1])"),
            Conv::Str => self.wrap(span, "string((", ")[1])"),
            Conv::Num => self.wrap(span, "number((", ")[1])"),
            Conv::Keep => {}
        }
    }

    /// Walks a binary operand, applying XPath 1.0 conversions for
    /// arithmetic and relational operators in backwards compatible mode.
    fn operand(&mut self, op: &BinaryOperator, p: &ast::PathExpr) {
        self.path(p);
        if !self.bc {
            return;
        }
        let Some(span) = path_span(p) else {
            return;
        };
        if is_numeric_literal(p) {
            return;
        }
        match op {
            BinaryOperator::Add
            | BinaryOperator::Sub
            | BinaryOperator::Mul
            | BinaryOperator::Div
            | BinaryOperator::Mod => self.wrap_conv(span, Conv::Num),
            BinaryOperator::GenLt
            | BinaryOperator::GenLe
            | BinaryOperator::GenGt
            | BinaryOperator::GenGe => self.wrap(span, "((", ")!number(.))"),
            _ => {}
        }
    }

    fn fail(&mut self, message: String) {
        if self.error.is_none() {
            self.error = Some(message);
        }
    }

    fn expr(&mut self, e: &ast::ExprS) {
        for s in &e.value.0 {
            self.expr_single(s);
        }
    }

    fn expr_or_empty(&mut self, e: &ast::ExprOrEmptyS) {
        if let Some(expr) = &e.value {
            for s in &expr.0 {
                self.expr_single(s);
            }
        }
    }

    fn bind(&mut self, name: &ast::NameS, body: &ast::ExprSingleS) {
        self.bound.push(name.value.clone());
        self.expr_single(body);
        self.bound.pop();
    }

    fn expr_single(&mut self, e: &ast::ExprSingleS) {
        match &e.value {
            ast::ExprSingle::Path(p) => self.path(p),
            ast::ExprSingle::Apply(a) => {
                self.path(&a.path_expr);
                if self.bc {
                    if let (ast::ApplyOperator::Unary(_), Some(span)) =
                        (&a.operator, path_span(&a.path_expr))
                    {
                        if !is_numeric_literal(&a.path_expr) {
                            self.wrap_conv(span, Conv::Num);
                        }
                    }
                }
                if let ast::ApplyOperator::SimpleMap(paths) = &a.operator {
                    self.depth += 1;
                    for p in paths {
                        self.path(p);
                    }
                    self.depth -= 1;
                }
            }
            ast::ExprSingle::Let(l) => {
                self.expr_single(&l.var_expr);
                self.bind(&l.var_name, &l.return_expr);
            }
            ast::ExprSingle::For(f) => {
                self.expr_single(&f.var_expr);
                self.bind(&f.var_name, &f.return_expr);
            }
            ast::ExprSingle::Quantified(q) => {
                self.expr_single(&q.var_expr);
                self.bind(&q.var_name, &q.satisfies_expr);
            }
            ast::ExprSingle::If(i) => {
                self.expr(&i.condition);
                self.expr_single(&i.then);
                self.expr_single(&i.else_);
            }
            ast::ExprSingle::Binary(b) => {
                self.operand(&b.operator, &b.left);
                self.operand(&b.operator, &b.right);
            }
        }
    }

    fn path(&mut self, p: &ast::PathExpr) {
        for (i, step) in p.steps.iter().enumerate() {
            if i == 1 {
                self.depth += 1;
            }
            self.step(step);
        }
        if p.steps.len() > 1 {
            self.depth -= 1;
        }
        // xee returns a lone reverse-axis step (`ancestor::*`,
        // `preceding-sibling::x`) in reverse document order; an axis step
        // yields document order, so sort it with `/.`
        if let [step] = p.steps.as_slice() {
            if let ast::StepExpr::AxisStep(a) = &step.value {
                if matches!(
                    a.axis,
                    ast::Axis::Ancestor
                        | ast::Axis::AncestorOrSelf
                        | ast::Axis::Preceding
                        | ast::Axis::PrecedingSibling
                ) {
                    self.wrap((step.span.start, step.span.end), "((", ")/.)");
                }
            }
        }
    }

    fn step(&mut self, s: &ast::StepExprS) {
        match &s.value {
            ast::StepExpr::PrimaryExpr(p) => self.primary(p),
            ast::StepExpr::PostfixExpr { primary, postfixes } => {
                self.primary(primary);
                for postfix in postfixes {
                    match postfix {
                        ast::Postfix::Predicate(e) => {
                            self.depth += 1;
                            self.expr(e);
                            self.depth -= 1;
                        }
                        ast::Postfix::ArgumentList(args) => {
                            for a in args {
                                self.expr_single(a);
                            }
                        }
                        ast::Postfix::Lookup(k) => self.key_specifier(k),
                    }
                }
            }
            ast::StepExpr::AxisStep(a) => {
                let rewritten = self.local_name_step(s, a);
                self.depth += 1;
                for p in a.predicates.iter().skip(usize::from(rewritten)) {
                    self.expr(p);
                }
                self.depth -= 1;
            }
        }
    }

    /// Rewrites a wildcard step whose first predicate compares the local
    /// name with a literal (`*[local-name() = 'x']`, also `local-name(.)`,
    /// `eq`, operands swapped; on any axis but `namespace`) into the name
    /// test `axis::*:x` followed by the remaining predicates. The two select
    /// the same nodes in the same order, but xee runs the predicate as a
    /// function call and a string comparison per node (several allocations
    /// each), so the name test is several times faster. Rules that match
    /// across namespace versions (XÖV standards) use this form throughout.
    /// Returns whether the step was rewritten (its first predicate is then
    /// not walked).
    fn local_name_step(&mut self, s: &ast::StepExprS, a: &ast::AxisStep) -> bool {
        if !matches!(a.node_test, ast::NodeTest::NameTest(ast::NameTest::Star)) {
            return false;
        }
        let Some(axis) = axis_name(&a.axis) else {
            return false;
        };
        let Some(local) = a.predicates.first().and_then(local_name_equals) else {
            return false;
        };
        if !is_ncname(local) {
            return false;
        }
        let mut parts = vec![Part::Lit(format!("{axis}::*:{local}"))];
        for p in a.predicates.iter().skip(1) {
            parts.push(Part::Lit("[".into()));
            parts.push(Part::Src(p.span.start, p.span.end));
            parts.push(Part::Lit("]".into()));
        }
        self.edits.push(Edit {
            start: s.span.start,
            end: s.span.end,
            parts,
        });
        true
    }

    fn key_specifier(&mut self, k: &ast::KeySpecifier) {
        if let ast::KeySpecifier::Expr(e) = k {
            self.expr_or_empty(e);
        }
    }

    fn var_ref(&mut self, name: &OwnedName) {
        if self.bound.iter().any(|b| b == name) {
            return;
        }
        if name.namespace() == INTERNAL_NS || self.declared.contains(name) {
            if !self.used.contains(name) {
                self.used.push(name.clone());
            }
            return;
        }
        self.fail(format!(
            "undeclared variable ${}",
            if name.prefix().is_empty() {
                name.local_name().to_string()
            } else {
                format!("{}:{}", name.prefix(), name.local_name())
            }
        ));
    }

    fn primary(&mut self, p: &ast::PrimaryExprS) {
        match &p.value {
            ast::PrimaryExpr::Literal(_)
            | ast::PrimaryExpr::ContextItem
            | ast::PrimaryExpr::NamedFunctionRef(_) => {
                if let ast::PrimaryExpr::NamedFunctionRef(r) = &p.value {
                    self.named_function_ref(r);
                }
            }
            ast::PrimaryExpr::VarRef(name) => self.var_ref(name),
            ast::PrimaryExpr::Expr(e) => self.expr_or_empty(e),
            ast::PrimaryExpr::FunctionCall(call) => self.function_call(call, p.span),
            ast::PrimaryExpr::InlineFunction(f) => {
                for param in &f.params {
                    self.bound.push(param.name.clone());
                }
                self.depth += 1;
                self.expr_or_empty(&f.body);
                self.depth -= 1;
                for _ in &f.params {
                    self.bound.pop();
                }
            }
            ast::PrimaryExpr::MapConstructor(m) => {
                for entry in &m.entries {
                    self.expr_single(&entry.key);
                    self.expr_single(&entry.value);
                }
            }
            ast::PrimaryExpr::ArrayConstructor(a) => match a {
                ast::ArrayConstructor::Square(e) => self.expr(e),
                ast::ArrayConstructor::Curly(e) => self.expr_or_empty(e),
            },
            ast::PrimaryExpr::UnaryLookup(k) => self.key_specifier(k),
        }
    }

    fn named_function_ref(&mut self, r: &ast::NamedFunctionRef) {
        let name = &r.name.value;
        if name.namespace() == FN_NAMESPACE
            && matches!(
                name.local_name(),
                "current" | "key" | "format-number" | "position" | "last"
            )
        {
            self.fail(format!(
                "unsupported function reference {}#{}",
                display_name(name),
                r.arity
            ));
        }
        self.calls.push((name.clone(), r.arity as usize));
    }

    fn literal_string(arg: &ast::ExprSingleS) -> Option<&str> {
        if let ast::ExprSingle::Path(p) = &arg.value {
            if let [step] = p.steps.as_slice() {
                if let ast::StepExpr::PrimaryExpr(prim) = &step.value {
                    if let ast::PrimaryExpr::Literal(ast::Literal::String(s)) = &prim.value {
                        return Some(s);
                    }
                }
            }
        }
        None
    }

    fn references_bound(&self, arg: &ast::ExprSingleS) -> bool {
        // Walk the argument with a scratch walker and see whether it touches
        // a variable bound inside the expression.
        let mut scratch = Walker::new(self.declared, self.ns, self.env, false);
        // names bound outside the argument are unknown to the scratch walker:
        // they are reported as undeclared variables
        scratch.expr_single(arg);
        let outer_bound = &self.bound;
        scratch.error.is_some() && !outer_bound.is_empty()
    }

    fn function_call(&mut self, call: &ast::FunctionCall, span: ast::Span) {
        let name = &call.name.value;
        let arity = call.arguments.len();
        if name.namespace() == FN_NAMESPACE {
            match (name.local_name(), arity) {
                ("current", 0) => {
                    self.edits.push(Edit {
                        start: span.start,
                        end: span.end,
                        parts: vec![Part::Lit(internal_ref("current"))],
                    });
                    return;
                }
                ("position", 0) | ("last", 0) if self.depth == 0 => {
                    self.edits.push(Edit {
                        start: span.start,
                        end: span.end,
                        parts: vec![Part::Lit(internal_ref(name.local_name()))],
                    });
                    return;
                }
                ("key", 2) => {
                    let Some(key_name) = call.arguments.first().and_then(Self::literal_string)
                    else {
                        self.fail(
                            "key() is only supported with a string literal as key name".into(),
                        );
                        return;
                    };
                    let Some(qname) = resolve_lexical_qname(key_name, self.ns) else {
                        self.fail(format!("key(): invalid key name '{key_name}'"));
                        return;
                    };
                    let Some(index) = self.env.key_index(&qname) else {
                        self.fail(format!("key(): no xsl:key named '{key_name}' (XTDE1260)"));
                        return;
                    };
                    let Some(arg) = call.arguments.get(1) else {
                        return;
                    };
                    self.expr_single(arg);
                    let kv = internal_ref("kv");
                    self.edits.push(Edit {
                        start: span.start,
                        end: span.end,
                        parts: vec![
                            Part::Lit(format!("((for {kv} in data(")),
                            Part::Src(arg.span.start, arg.span.end),
                            Part::Lit(format!(
                                ") return {}(string({kv})))/.)",
                                internal_ref(&format!("key-{index}"))
                            )),
                        ],
                    });
                    return;
                }
                ("key", _) => {
                    self.fail("key() is only supported with two arguments".into());
                    return;
                }
                ("format-number", 2) | ("format-number", 3) => {
                    let format = if arity == 3 {
                        let Some(lit) = call.arguments.get(2).and_then(Self::literal_string) else {
                            self.fail(
                                "format-number(): the decimal format name must be a string literal"
                                    .into(),
                            );
                            return;
                        };
                        let Some(qname) = resolve_lexical_qname(lit, self.ns) else {
                            self.fail(format!("format-number(): invalid format name '{lit}'"));
                            return;
                        };
                        self.env.decimal_format(Some(&qname))
                    } else {
                        self.env.decimal_format(None)
                    };
                    let Some(format) = format else {
                        self.fail("format-number(): unknown decimal format (FODF1280)".into());
                        return;
                    };
                    let (Some(value), Some(picture)) =
                        (call.arguments.first(), call.arguments.get(1))
                    else {
                        return;
                    };
                    let literal = Self::literal_string(picture).map(str::to_string);
                    let Some(df) = self.env.decimal_format_def(format) else {
                        self.fail("format-number(): unknown decimal format (FODF1280)".into());
                        return;
                    };
                    if let Some(pic) = &literal {
                        // a bad literal picture is a compile-time error
                        if let Err(e) = crate::number::Picture::parse(pic, &df) {
                            self.fail(e);
                            return;
                        }
                    }
                    let hoistable = self.depth == 0
                        && !self.references_bound(value)
                        && !self.references_bound(picture);
                    if !hoistable {
                        // inside an inner focus: an XPath inline function
                        let Some(pic) = literal else {
                            self.fail(
                                "format-number() with a computed picture is only supported where \
                                 its arguments depend on the instruction's context (not inside a \
                                 predicate, path step, or on a variable bound inside the expression)"
                                    .into(),
                            );
                            return;
                        };
                        match crate::number::Picture::parse(&pic, &df) {
                            Ok(p) => {
                                self.expr_single(value);
                                self.edits.push(Edit {
                                    start: span.start,
                                    end: span.end,
                                    parts: vec![
                                        Part::Lit(format!("{}(", p.to_xpath_function(INTERNAL_NS))),
                                        Part::Src(value.span.start, value.span.end),
                                        Part::Lit(")".into()),
                                    ],
                                });
                            }
                            Err(e) => self.fail(e),
                        }
                        return;
                    }
                    // evaluated in Rust before the expression
                    self.expr_single(value);
                    if literal.is_none() {
                        self.expr_single(picture);
                    }
                    let n = self.hoists.len();
                    self.hoists.push(HoistReq {
                        value: (value.span.start, value.span.end),
                        picture: match literal {
                            Some(l) => HoistPicture::Literal(l),
                            None => HoistPicture::Expr(picture.span.start, picture.span.end),
                        },
                        format,
                    });
                    self.edits.push(Edit {
                        start: span.start,
                        end: span.end,
                        parts: vec![Part::Lit(internal_ref(&format!("fmt-{n}")))],
                    });
                    return;
                }
                (
                    "document"
                    | "doc"
                    | "doc-available"
                    | "collection"
                    | "uri-collection"
                    | "environment-variable"
                    | "available-environment-variables"
                    | "system-property"
                    | "element-available"
                    | "function-available"
                    | "unparsed-entity-uri"
                    | "unparsed-entity-public-id"
                    | "regex-group"
                    | "current-group"
                    | "current-grouping-key"
                    | "type-available"
                    | "unparsed-text"
                    | "unparsed-text-lines"
                    | "unparsed-text-available"
                    | "format-date"
                    | "format-dateTime"
                    | "format-time"
                    | "format-integer"
                    | "json-to-xml"
                    | "xml-to-json"
                    | "json-doc"
                    | "current-output-uri"
                    | "accumulator-before"
                    | "accumulator-after"
                    | "copy-of"
                    | "snapshot"
                    | "stream-available"
                    | "available-system-properties"
                    | "current-merge-group"
                    | "current-merge-key",
                    _,
                ) => {
                    self.fail(format!(
                        "unsupported XPath function {}#{arity}",
                        name.local_name()
                    ));
                    return;
                }
                _ => {}
            }
        }
        if arity == 0
            && name.namespace() == FN_NAMESPACE
            && matches!(
                name.local_name(),
                "normalize-space"
                    | "string"
                    | "string-length"
                    | "name"
                    | "local-name"
                    | "namespace-uri"
                    | "number"
                    | "generate-id"
                    | "root"
                    | "data"
                    | "node-name"
                    | "has-children"
                    | "path"
            )
        {
            // xee's zero-argument forms fail in some foci (e.g. inside a
            // predicate); the explicit context item is equivalent
            self.calls.push((name.clone(), 1));
            self.edits.push(Edit {
                start: span.start,
                end: span.end,
                parts: vec![Part::Lit(format!("{}(.)", name.local_name()))],
            });
            return;
        }
        self.calls.push((name.clone(), arity));
        let core = self.bc && name.namespace() == FN_NAMESPACE;
        for (i, a) in call.arguments.iter().enumerate() {
            self.expr_single(a);
            if core {
                self.wrap_conv(
                    (a.span.start, a.span.end),
                    bc_conversion(name.local_name(), i),
                );
            }
        }
    }
}

/// The XPath name of an axis whose principal node kind is element or
/// attribute (all but `namespace`).
fn axis_name(axis: &ast::Axis) -> Option<&'static str> {
    Some(match axis {
        ast::Axis::Ancestor => "ancestor",
        ast::Axis::AncestorOrSelf => "ancestor-or-self",
        ast::Axis::Attribute => "attribute",
        ast::Axis::Child => "child",
        ast::Axis::Descendant => "descendant",
        ast::Axis::DescendantOrSelf => "descendant-or-self",
        ast::Axis::Following => "following",
        ast::Axis::FollowingSibling => "following-sibling",
        ast::Axis::Parent => "parent",
        ast::Axis::Preceding => "preceding",
        ast::Axis::PrecedingSibling => "preceding-sibling",
        ast::Axis::Self_ => "self",
        ast::Axis::Namespace => return None,
    })
}

/// The string literal a one-step path consists of.
fn path_literal(p: &ast::PathExpr) -> Option<&str> {
    if let [step] = p.steps.as_slice() {
        if let ast::StepExpr::PrimaryExpr(prim) = &step.value {
            if let ast::PrimaryExpr::Literal(ast::Literal::String(s)) = &prim.value {
                return Some(s);
            }
        }
    }
    None
}

/// Whether a path is the call `local-name()` or `local-name(.)`.
fn is_local_name_call(p: &ast::PathExpr) -> bool {
    let [step] = p.steps.as_slice() else {
        return false;
    };
    let ast::StepExpr::PrimaryExpr(prim) = &step.value else {
        return false;
    };
    let ast::PrimaryExpr::FunctionCall(call) = &prim.value else {
        return false;
    };
    let name = &call.name.value;
    if name.namespace() != FN_NAMESPACE || name.local_name() != "local-name" {
        return false;
    }
    match call.arguments.as_slice() {
        [] => true,
        [arg] => matches!(&arg.value, ast::ExprSingle::Path(p)
            if matches!(p.steps.as_slice(), [step]
                if matches!(&step.value, ast::StepExpr::PrimaryExpr(prim)
                    if matches!(prim.value, ast::PrimaryExpr::ContextItem)))),
        _ => false,
    }
}

/// The binary expression an expression consists of, looking through
/// parentheses (the parser wraps predicates in them).
fn single_binary(expr: &ast::Expr) -> Option<&ast::BinaryExpr> {
    let [single] = expr.0.as_slice() else {
        return None;
    };
    match &single.value {
        ast::ExprSingle::Binary(b) => Some(b),
        ast::ExprSingle::Path(p) => match p.steps.as_slice() {
            [step] => match &step.value {
                ast::StepExpr::PrimaryExpr(prim) => match &prim.value {
                    ast::PrimaryExpr::Expr(inner) => single_binary(inner.value.as_ref()?),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

/// `x` if a predicate is exactly `local-name() = 'x'` (or `eq`, or the
/// operands swapped, or `local-name(.)`).
fn local_name_equals(predicate: &ast::ExprS) -> Option<&str> {
    let b = single_binary(&predicate.value)?;
    if !matches!(b.operator, BinaryOperator::GenEq | BinaryOperator::ValueEq) {
        return None;
    }
    if is_local_name_call(&b.left) {
        path_literal(&b.right)
    } else if is_local_name_call(&b.right) {
        path_literal(&b.left)
    } else {
        None
    }
}

/// Renders `src[start..end]` with the edits from index `from` on applied.
/// Edits are sorted by start, then outermost first (an edit pushed later
/// encloses an earlier one with the same span), so the source ranges of an
/// edit are rendered with the edits after it only.
fn render(src: &str, edits: &[Edit], from: usize, start: usize, end: usize) -> String {
    let mut out = String::new();
    let mut pos = start;
    for (i, e) in edits.iter().enumerate().skip(from) {
        if e.start < pos || e.end > end || e.start < start {
            continue;
        }
        out.push_str(src.get(pos..e.start).unwrap_or(""));
        for part in &e.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Src(a, b) => out.push_str(&render(src, edits, i + 1, *a, *b)),
            }
        }
        pos = e.end;
    }
    out.push_str(src.get(pos..end).unwrap_or(""));
    out
}

fn parse_error_message(text: &str, err: &xee_xpath_ast::ParserError) -> String {
    format!("XPath syntax error (XPST0003) in `{text}`: {err:?}")
}

/// Compile one XPath expression; hoisted sub-expressions are pushed to
/// `exprs` before the expression itself. Returns the expression's index.
pub(crate) fn compile_expr(
    text: &str,
    ns: &Arc<Namespaces>,
    env: &dyn ExprEnv,
    file: usize,
    line: usize,
    exprs: &mut Vec<ExprDef>,
) -> Result<ExprId, String> {
    let mut declared: VariableNames = VariableNames::default();
    for name in env.visible_vars() {
        declared.insert(name);
    }
    let parse_ctx = XPathParserContext::new((**ns).clone(), declared.clone());
    let first = parse_ctx
        .parse_xpath(text)
        .map_err(|e| parse_error_message(text, &e))?;
    let mut walker = Walker::new(&declared, ns, env, env.backwards_compatible());
    walker.expr(&first.0);
    if let Some(err) = walker.error {
        return Err(err);
    }
    let mut hoists = Vec::new();
    let (final_text, ast, used, calls) = if walker.edits.is_empty() {
        (text.to_string(), first, walker.used, walker.calls)
    } else {
        let mut indexed: Vec<(usize, Edit)> = walker.edits.into_iter().enumerate().collect();
        indexed.sort_by(|(ia, a), (ib, b)| {
            a.start
                .cmp(&b.start)
                .then(b.end.cmp(&a.end))
                .then(ib.cmp(ia))
        });
        let edits: Vec<Edit> = indexed.into_iter().map(|(_, e)| e).collect();
        for h in &walker.hoists {
            let value_text = render(text, &edits, 0, h.value.0, h.value.1);
            let value = compile_expr(&value_text, ns, env, file, line, exprs)?;
            let picture = match &h.picture {
                HoistPicture::Literal(l) => {
                    let df = env.decimal_format_def(h.format).unwrap_or_default();
                    Picture::Parsed(Box::new(crate::number::Picture::parse(l, &df)?))
                }
                HoistPicture::Expr(a, b) => {
                    let picture_text = render(text, &edits, 0, *a, *b);
                    Picture::Expr(compile_expr(&picture_text, ns, env, file, line, exprs)?)
                }
            };
            hoists.push(Hoist {
                value,
                picture,
                format: h.format,
            });
        }
        let rewritten = render(text, &edits, 0, 0, text.len());
        // the internal variables must be known to the parser (it renames
        // references to unknown variables)
        let mut declared = declared.clone();
        let marker = format!("$Q{{{INTERNAL_NS}}}");
        for (at, _) in rewritten.match_indices(&marker) {
            let rest = rewritten.get(at + marker.len()..).unwrap_or("");
            let local: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect();
            declared.insert(internal(&local));
        }
        let parse_ctx = XPathParserContext::new((**ns).clone(), declared.clone());
        let second = parse_ctx
            .parse_xpath(&rewritten)
            .map_err(|e| parse_error_message(&rewritten, &e))?;
        let mut walker = Walker::new(&declared, ns, env, false);
        walker.expr(&second.0);
        if let Some(err) = walker.error {
            return Err(err);
        }
        (rewritten, second, walker.used, walker.calls)
    };
    let mut vars = Vec::new();
    for name in &used {
        let r = if name.namespace() == INTERNAL_NS {
            match name.local_name() {
                "current" => VarRef::Current,
                "position" => VarRef::Position,
                "last" => VarRef::Last,
                "supplied" => VarRef::Supplied,
                other => {
                    if let Some(n) = other.strip_prefix("key-").and_then(|n| n.parse().ok()) {
                        VarRef::Key(n)
                    } else if let Some(n) = other.strip_prefix("fmt-").and_then(|n| n.parse().ok())
                    {
                        VarRef::Hoisted(n)
                    } else {
                        return Err(format!(
                            "internal variable {other} cannot be used in `{final_text}`"
                        ));
                    }
                }
            }
        } else {
            env.lookup_var(name)
                .ok_or_else(|| format!("undeclared variable ${}", name.local_name()))?
        };
        vars.push((name.clone(), r));
    }
    let def = ExprDef {
        text: final_text,
        ast,
        namespaces: ns.clone(),
        declared: used.clone(),
        vars,
        hoists,
        file,
        line,
    };
    // validate by compiling once
    if let Err(e) = compile_program(&def) {
        return Err(explain_compile_error(&def, &e, &calls));
    }
    exprs.push(def);
    Ok(exprs.len() - 1)
}

fn explain_compile_error(
    def: &ExprDef,
    e: &xee_interpreter::error::SpannedError,
    calls: &[(OwnedName, usize)],
) -> String {
    if matches!(e.error, xee_interpreter::error::Error::XPST0017) {
        let sc = StaticContext::from(XPathParserContext::new(
            (*def.namespaces).clone(),
            VariableNames::default(),
        ));
        for (name, arity) in calls {
            let Ok(a) = u8::try_from(*arity) else {
                continue;
            };
            if sc.function_id_by_name(name, a).is_none() {
                return format!(
                    "unsupported XPath function {}#{arity} (XPST0017)",
                    display_name(name)
                );
            }
        }
    }
    format!(
        "XPath error {} in `{}`: {}",
        e.error,
        def.text,
        e.error.message()
    )
}

/// Compile an expression definition into an xee program.
pub(crate) fn compile_program(
    def: &ExprDef,
) -> Result<Program, xee_interpreter::error::SpannedError> {
    let mut names = VariableNames::default();
    for n in &def.declared {
        names.insert(n.clone());
    }
    let sc = StaticContext::from(XPathParserContext::new((*def.namespaces).clone(), names));
    xee_xpath_compiler::compile(sc, def.ast.clone())
}

struct CacheEntry {
    id: u64,
    alive: Weak<()>,
    programs: Rc<Vec<Program>>,
}

thread_local! {
    static CACHE: RefCell<Vec<CacheEntry>> = const { RefCell::new(Vec::new()) };
}

/// The compiled programs of a stylesheet for the current thread, compiling
/// them on first use.
pub(crate) fn programs_for(
    id: u64,
    alive: &Arc<()>,
    exprs: &[ExprDef],
) -> Result<Rc<Vec<Program>>, (usize, String)> {
    let cached = CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.retain(|e| e.alive.strong_count() > 0);
        cache
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.programs.clone())
    });
    if let Some(p) = cached {
        return Ok(p);
    }
    let mut programs = Vec::with_capacity(exprs.len());
    for (i, def) in exprs.iter().enumerate() {
        programs.push(compile_program(def).map_err(|e| (i, e.to_string()))?);
    }
    let programs = Rc::new(programs);
    CACHE.with(|cache| {
        cache.borrow_mut().push(CacheEntry {
            id,
            alive: Arc::downgrade(alive),
            programs: programs.clone(),
        })
    });
    Ok(programs)
}

/// Names of the internal variables, for binding at run time.
pub(crate) fn internal_name(local: &str) -> OwnedName {
    internal(local)
}

/// Collect every variable name in `names` into a set (helper for tests).
#[allow(dead_code)]
pub(crate) fn name_set(names: &[OwnedName]) -> HashSet<String> {
    names.iter().map(|n| n.local_name().to_string()).collect()
}

/// Text of the query that builds the lookup map of an `xsl:key` from the
/// key strings `$k` and the nodes `$n` (pairwise).
const KEY_BUILDER: &str = "map:merge(for-each-pair($Q{urn:x-drehscheibe:xslt:internal}k, \
     $Q{urn:x-drehscheibe:xslt:internal}n, function($a, $b) { map { $a : $b } }), \
     map { 'duplicates' : 'combine' })";

thread_local! {
    static KEY_PROGRAM: RefCell<Option<Rc<Program>>> = const { RefCell::new(None) };
}

/// The (per-thread) program building key maps; see [`KEY_BUILDER`].
pub(crate) fn key_builder() -> Result<Rc<Program>, String> {
    if let Some(p) = KEY_PROGRAM.with(|k| k.borrow().clone()) {
        return Ok(p);
    }
    let mut names = VariableNames::default();
    names.insert(internal("k"));
    names.insert(internal("n"));
    let ctx = XPathParserContext::new(Namespaces::default(), names);
    let ast = ctx
        .parse_xpath(KEY_BUILDER)
        .map_err(|e| format!("key builder: {e:?}"))?;
    let sc = StaticContext::from(ctx);
    let program =
        Rc::new(xee_xpath_compiler::compile(sc, ast).map_err(|e| format!("key builder: {e}"))?);
    KEY_PROGRAM.with(|k| *k.borrow_mut() = Some(program.clone()));
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stylesheet context without variables, keys or decimal formats.
    struct Bare {
        bc: bool,
    }

    impl ExprEnv for Bare {
        fn lookup_var(&self, _: &OwnedName) -> Option<VarRef> {
            None
        }
        fn visible_vars(&self) -> Vec<OwnedName> {
            Vec::new()
        }
        fn key_index(&self, _: &OwnedName) -> Option<usize> {
            None
        }
        fn decimal_format(&self, _: Option<&OwnedName>) -> Option<usize> {
            None
        }
        fn decimal_format_def(&self, _: usize) -> Option<crate::ir::DecimalFormat> {
            None
        }
        fn backwards_compatible(&self) -> bool {
            self.bc
        }
    }

    fn rewritten(text: &str, bc: bool) -> String {
        let mut exprs = Vec::new();
        let ns = Arc::new(Namespaces::default());
        let id = compile_expr(text, &ns, &Bare { bc }, 0, 1, &mut exprs).unwrap();
        exprs[id].text.clone()
    }

    #[test]
    fn local_name_predicates_become_name_tests() {
        for bc in [false, true] {
            assert_eq!(rewritten("*[local-name() = 'a']", bc), "child::*:a");
            assert_eq!(rewritten("*['a' = local-name(.)]", bc), "child::*:a");
            assert_eq!(rewritten("*[local-name() eq 'a']", bc), "child::*:a");
            assert_eq!(
                rewritten("/*/*[local-name() = 'kopf']/@*[local-name()='id']", bc),
                "/*/child::*:kopf/attribute::*:id"
            );
            assert_eq!(
                rewritten("ancestor::*[local-name() = 'a.b-c'][2]", bc),
                "((ancestor::*:a.b-c[2])/.)"
            );
        }
        // later predicates keep their own rewriting
        assert_eq!(
            rewritten("*[local-name() = 'a'][position() = 1]", false),
            "child::*:a[position() = 1]"
        );
        assert_eq!(
            rewritten("*[local-name() = 'a'][normalize-space()]", false),
            "child::*:a[normalize-space(.)]"
        );
    }

    #[test]
    fn other_predicates_are_left_alone() {
        for text in [
            "*[local-name() = 'a b']",
            "*[local-name() != 'a']",
            "*[local-name() = 'a' or local-name() = 'b']",
            "node()[local-name() = 'a']",
            "x[local-name() = 'a']",
            "*[local-name(..) = 'a']",
            "*[1][local-name() = 'a']",
        ] {
            assert!(
                !rewritten(text, false).contains("*:"),
                "{text} was rewritten to {}",
                rewritten(text, false)
            );
        }
    }
}
