//! XPath expressions of a stylesheet: compiled once, at stylesheet compile
//! time, into [`drehscheibe_xpath::Expression`]s.
//!
//! The stylesheet supplies the static context of each expression:
//!
//! * its in-scope namespaces ([`NsCtx`]; every distinct context is stored
//!   once in the compiled stylesheet and numbered, so the XSLT functions
//!   that take lexical QNames at run time — `key()`, `format-number()`,
//!   `function-available()`, … — can resolve them against the namespaces
//!   of the expression that called them);
//! * its variables: local variables and parameters become host variables
//!   numbered by frame slot, globals by their index with [`GLOBAL_BIT`]
//!   set (see [`var_id`]);
//! * its functions: the XSLT functions and the stylesheet's own
//!   `xsl:function`s become host functions; the id encodes the function
//!   kind and the namespace context ([`fn_id`]).
//!
//! Expressions are `Send + Sync`, so the compiled stylesheet is shared by
//! all threads without per-thread caches.

use rustc_hash::FxHashMap as HashMap;

use drehscheibe_xpath::ast::{self, Argument, ExprKind, Postfix, Step};
use drehscheibe_xpath::compile::{HostFunction, HostStatic, Namespaces, StaticContext};
use drehscheibe_xpath::functions::{Kind, Occ, Param};
use drehscheibe_xpath::tree::QName;
use drehscheibe_xpath::Expression;

/// Namespace of the internal variables (the value being coerced).
pub(crate) const INTERNAL_NS: &str = "urn:x-drehscheibe:xslt:internal";
/// The XSLT namespace.
pub(crate) const XSL_NS: &str = "http://www.w3.org/1999/XSL/Transform";
/// The XML namespace.
pub(crate) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// The F&O namespace.
const FN_NS: &str = "http://www.w3.org/2005/xpath-functions";

/// Index of an expression in [`crate::ir::Compiled::exprs`].
pub(crate) type ExprId = usize;

/// Host variable ids with this bit set are globals.
pub(crate) const GLOBAL_BIT: u32 = 1 << 30;
/// Host variable id of the value being coerced to an `as` type.
pub(crate) const SUPPLIED_VAR: u32 = u32::MAX;

/// Host function ids with this bit set are `xsl:function`s.
pub(crate) const USER_FN_BIT: u32 = 1 << 31;

/// The XSLT functions implemented by the interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum XsltFn {
    Current = 0,
    Key = 1,
    FormatNumber = 2,
    Document = 3,
    SystemProperty = 4,
    FunctionAvailable = 5,
    ElementAvailable = 6,
    TypeAvailable = 7,
    UnparsedEntityUri = 8,
    UnparsedEntityPublicId = 9,
    /// `key()` with an explicit third argument (the tree to search).
    Key3 = 10,
    /// `available-system-properties()`.
    AvailableSystemProperties = 11,
    /// `unparsed-text()` (restricted like `document()`).
    UnparsedText = 12,
    /// `unparsed-text-lines()`.
    UnparsedTextLines = 13,
    /// `unparsed-text-available()`.
    UnparsedTextAvailable = 14,
    /// `doc-available()`.
    DocAvailable = 15,
    /// `current-group()`.
    CurrentGroup = 16,
    /// `current-grouping-key()`.
    CurrentGroupingKey = 17,
    /// `regex-group()`.
    RegexGroup = 18,
}

impl XsltFn {
    fn from_u32(v: u32) -> Option<XsltFn> {
        use XsltFn::*;
        Some(match v {
            0 => Current,
            1 => Key,
            2 => FormatNumber,
            3 => Document,
            4 => SystemProperty,
            5 => FunctionAvailable,
            6 => ElementAvailable,
            7 => TypeAvailable,
            8 => UnparsedEntityUri,
            9 => UnparsedEntityPublicId,
            10 => Key3,
            11 => AvailableSystemProperties,
            12 => UnparsedText,
            13 => UnparsedTextLines,
            14 => UnparsedTextAvailable,
            15 => DocAvailable,
            16 => CurrentGroup,
            17 => CurrentGroupingKey,
            18 => RegexGroup,
            _ => return None,
        })
    }
}

/// A host function id: an XSLT function in namespace context `ns`.
pub(crate) fn fn_id(f: XsltFn, ns: usize) -> u32 {
    ((ns as u32) << 8) | f as u32
}

/// What a host function id stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostFn {
    /// An XSLT function and the namespace context of its call.
    Xslt(XsltFn, usize),
    /// The `xsl:function` with this index.
    User(usize),
}

/// Decodes a host function id.
pub(crate) fn decode_fn(id: u32) -> Option<HostFn> {
    if id & USER_FN_BIT != 0 {
        return Some(HostFn::User((id & !USER_FN_BIT) as usize));
    }
    Some(HostFn::Xslt(
        XsltFn::from_u32(id & 0xFF)?,
        (id >> 8) as usize,
    ))
}

/// A host variable: a frame slot or a global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarRef {
    Local(usize),
    Global(usize),
    Supplied,
}

/// Host variable id of a variable reference.
pub(crate) fn var_id(v: VarRef) -> u32 {
    match v {
        VarRef::Local(s) => s as u32,
        VarRef::Global(g) => GLOBAL_BIT | g as u32,
        VarRef::Supplied => SUPPLIED_VAR,
    }
}

/// Decodes a host variable id.
pub(crate) fn decode_var(id: u32) -> VarRef {
    if id == SUPPLIED_VAR {
        VarRef::Supplied
    } else if id & GLOBAL_BIT != 0 {
        VarRef::Global((id & !GLOBAL_BIT) as usize)
    } else {
        VarRef::Local(id as usize)
    }
}

/// An expanded name; equality and hashing ignore the prefix.
#[derive(Debug, Clone, Eq)]
pub(crate) struct XName {
    ns: String,
    local: String,
    /// The prefix as written (not part of the identity).
    #[cfg_attr(not(test), allow(dead_code))]
    prefix: String,
}

use drehscheibe_xpath::tree::short_eq;

impl PartialEq for XName {
    /// Cheap checks first: templates and parameters are matched by name
    /// on every call (a recursive named template compares its parameter
    /// names once per recursion step), and most candidates differ in the
    /// length of the local name; the namespace is usually empty.
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.local.len() == other.local.len()
            && self.ns.len() == other.ns.len()
            && short_eq(self.local.as_bytes(), other.local.as_bytes())
            && short_eq(self.ns.as_bytes(), other.ns.as_bytes())
    }
}

impl std::hash::Hash for XName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.ns.hash(state);
        self.local.hash(state);
    }
}

impl XName {
    /// A name from local part, namespace URI and prefix.
    pub(crate) fn new(local: String, ns: String, prefix: String) -> XName {
        XName { ns, local, prefix }
    }
    pub(crate) fn namespace(&self) -> &str {
        &self.ns
    }
    pub(crate) fn local_name(&self) -> &str {
        &self.local
    }
    /// As an XPath engine name.
    #[cfg(test)]
    pub(crate) fn qname(&self) -> QName {
        QName::new(&self.ns, &self.local, &self.prefix)
    }
    /// From an XPath engine name.
    pub(crate) fn of(q: &QName) -> XName {
        XName::new(q.local.clone(), q.uri.clone(), q.prefix.clone())
    }
    /// `local` or `Q{uri}local`: the key of parameter and template maps.
    pub(crate) fn key(&self) -> String {
        if self.ns.is_empty() {
            self.local.clone()
        } else {
            format!("Q{{{}}}{}", self.ns, self.local)
        }
    }
}

/// The namespaces in scope of a stylesheet element.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct NsCtx {
    /// Prefixed bindings (prefix, URI).
    pub bindings: Vec<(String, String)>,
    /// The default namespace (`xmlns="…"`), for `xsl:element` names.
    pub default_ns: String,
    /// `xpath-default-namespace`: for unprefixed element names in XPath.
    pub xpath_default: String,
}

impl NsCtx {
    /// The URI bound to `prefix` (`xml` is always bound).
    pub(crate) fn by_prefix(&self, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some(XML_NS);
        }
        self.bindings
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str())
    }
}

impl Namespaces for NsCtx {
    fn resolve(&self, prefix: &str) -> Option<String> {
        self.by_prefix(prefix).map(str::to_string)
    }

    fn bindings(&self) -> Option<Vec<(String, String)>> {
        Some(self.bindings.clone())
    }
}

/// Resolve a lexical QName (`p:local` or `local`, or `Q{uri}local`) with
/// the given namespaces; unprefixed names are in no namespace.
pub(crate) fn resolve_lexical_qname(lexical: &str, ns: &NsCtx) -> Option<XName> {
    let lexical = lexical.trim();
    if let Some(rest) = lexical.strip_prefix("Q{") {
        let (uri, local) = rest.split_once('}')?;
        return is_ncname(local).then(|| XName::new(local.into(), uri.into(), String::new()));
    }
    if let Some((prefix, local)) = lexical.split_once(':') {
        let uri = ns.by_prefix(prefix)?;
        if !is_ncname(local) || !is_ncname(prefix) {
            return None;
        }
        Some(XName::new(
            local.to_string(),
            uri.to_string(),
            prefix.to_string(),
        ))
    } else if is_ncname(lexical) {
        Some(XName::new(
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

/// A compiled expression with where it came from.
#[derive(Debug)]
pub(crate) struct ExprDef {
    pub expr: Expression,
    /// Module index and line of the owning instruction.
    pub file: usize,
    pub line: usize,
    /// Calls `position()` or `last()` outside a nested focus (patterns use
    /// this to decide whether a step position must be computed).
    pub uses_position: bool,
}

/// The signature of an `xsl:function` known at compile time.
#[derive(Debug, Clone)]
pub(crate) struct FnSig {
    pub index: usize,
}

/// What the expression compiler needs to know about the stylesheet.
pub(crate) struct Scope<'s> {
    pub locals: &'s [(XName, usize)],
    pub globals: &'s HashMap<XName, usize>,
    pub functions: &'s HashMap<(XName, usize), FnSig>,
    pub ns: &'s NsCtx,
    pub ns_index: usize,
    pub backwards_compatible: bool,
    /// The stylesheet's keys (checked for literal key names).
    pub key_names: &'s HashMap<XName, usize>,
    /// The decimal formats by name (the unnamed one: `None`).
    pub format_names: &'s HashMap<Option<XName>, usize>,
    pub formats: &'s [crate::ir::DecimalFormat],
    /// Literal pictures parsed at compile time (filled here, used at run time).
    pub pictures: &'s std::cell::RefCell<crate::ir::PictureCache>,
}

fn literal_string(a: Option<&Argument>) -> Option<&str> {
    match a {
        Some(Argument::Expr(ast::Expr {
            kind: ExprKind::Literal(ast::Literal::String(s)),
            ..
        })) => Some(s),
        _ => None,
    }
}

/// Compile-time checks of the XSLT functions' literal arguments: key and
/// decimal format names must exist. A literal `format-number()` picture is
/// parsed once here and cached for every run; an invalid one is left to
/// the run (FODF1310 is a dynamic error, and the call may never run).
fn check_xslt_call(local: &str, args: &[Argument], scope: &Scope<'_>) -> Result<(), String> {
    match (local, args.len()) {
        ("key", 2 | 3) => {
            if let Some(name) = literal_string(args.first()) {
                let known = resolve_lexical_qname(name, scope.ns)
                    .is_some_and(|q| scope.key_names.contains_key(&q));
                if !known {
                    return Err(format!("key(): no xsl:key named '{name}' (XTDE1260)"));
                }
            }
        }
        ("format-number", 2 | 3) => {
            let format = if args.len() == 3 {
                match literal_string(args.get(2)) {
                    Some(name) => {
                        let q = resolve_lexical_qname(name, scope.ns);
                        match q.and_then(|q| scope.format_names.get(&Some(q)).copied()) {
                            Some(i) => Some(i),
                            None => {
                                return Err(format!(
                                    "format-number(): unknown decimal format '{name}' (FODF1280)"
                                ))
                            }
                        }
                    }
                    None => None,
                }
            } else {
                scope.format_names.get(&None).copied()
            };
            if let (Some(f), Some(picture)) = (format, literal_string(args.get(1))) {
                let df = scope.formats.get(f).cloned().unwrap_or_default();
                if let Ok(p) =
                    drehscheibe_xpath::functions::format_number::Picture::parse(picture, &df)
                {
                    scope
                        .pictures
                        .borrow_mut()
                        .entry((f, picture.to_string()))
                        .or_insert_with(|| std::sync::Arc::new(p));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

impl HostStatic for Scope<'_> {
    fn variable(&self, name: &QName) -> Option<u32> {
        let n = XName::of(name);
        if n.ns == INTERNAL_NS && n.local == "supplied" {
            return Some(var_id(VarRef::Supplied));
        }
        if let Some((_, slot)) = self.locals.iter().rev().find(|(l, _)| *l == n) {
            return Some(var_id(VarRef::Local(*slot)));
        }
        self.globals.get(&n).map(|g| var_id(VarRef::Global(*g)))
    }

    fn function(&self, name: &QName, arity: usize) -> Option<HostFunction> {
        let n = XName::of(name);
        if let Some(sig) = self.functions.get(&(n.clone(), arity)) {
            return Some(HostFunction {
                id: USER_FN_BIT | sig.index as u32,
                params: vec![Param(Kind::Item, Occ::Many); arity],
                wants_context: false,
            });
        }
        if name.uri != FN_NS {
            return None;
        }
        let s = |o| Param(Kind::String, o);
        let (f, params, wants_context) = match (name.local.as_str(), arity) {
            ("current", 0) => (XsltFn::Current, vec![], false),
            ("current-group", 0) => (XsltFn::CurrentGroup, vec![], false),
            ("current-grouping-key", 0) => (XsltFn::CurrentGroupingKey, vec![], false),
            ("regex-group", 1) => (
                XsltFn::RegexGroup,
                vec![Param(Kind::Integer, Occ::One)],
                false,
            ),
            ("key", 2) => (
                XsltFn::Key,
                vec![s(Occ::One), Param(Kind::Atomic, Occ::Many)],
                true,
            ),
            ("key", 3) => (
                XsltFn::Key3,
                vec![
                    s(Occ::One),
                    Param(Kind::Atomic, Occ::Many),
                    Param(Kind::Node, Occ::One),
                ],
                false,
            ),
            ("format-number", 2) => (
                XsltFn::FormatNumber,
                vec![Param(Kind::Item, Occ::Many), s(Occ::One)],
                false,
            ),
            ("format-number", 3) => (
                XsltFn::FormatNumber,
                vec![Param(Kind::Item, Occ::Many), s(Occ::One), s(Occ::Opt)],
                false,
            ),
            ("document", 1) => (XsltFn::Document, vec![Param(Kind::Item, Occ::Many)], false),
            ("doc", 1) => (XsltFn::Document, vec![s(Occ::Opt)], false),
            ("doc-available", 1) => (XsltFn::DocAvailable, vec![s(Occ::Opt)], false),
            ("available-system-properties", 0) => {
                (XsltFn::AvailableSystemProperties, vec![], false)
            }
            ("unparsed-text", 1 | 2) => (XsltFn::UnparsedText, vec![s(Occ::Opt); arity], false),
            ("unparsed-text-lines", 1 | 2) => {
                (XsltFn::UnparsedTextLines, vec![s(Occ::Opt); arity], false)
            }
            ("unparsed-text-available", 1 | 2) => (
                XsltFn::UnparsedTextAvailable,
                vec![s(Occ::Opt); arity],
                false,
            ),
            ("document", 2) => (
                XsltFn::Document,
                vec![Param(Kind::Item, Occ::Many), Param(Kind::Node, Occ::One)],
                false,
            ),
            ("system-property", 1) => (XsltFn::SystemProperty, vec![s(Occ::One)], false),
            ("function-available", 1) => (XsltFn::FunctionAvailable, vec![s(Occ::One)], false),
            ("function-available", 2) => (
                XsltFn::FunctionAvailable,
                vec![s(Occ::One), Param(Kind::Integer, Occ::One)],
                false,
            ),
            ("element-available", 1) => (XsltFn::ElementAvailable, vec![s(Occ::One)], false),
            ("type-available", 1) => (XsltFn::TypeAvailable, vec![s(Occ::One)], false),
            ("unparsed-entity-uri", 1) => (XsltFn::UnparsedEntityUri, vec![s(Occ::One)], false),
            ("unparsed-entity-public-id", 1) => {
                (XsltFn::UnparsedEntityPublicId, vec![s(Occ::One)], false)
            }
            _ => return None,
        };
        Some(HostFunction {
            id: fn_id(f, self.ns_index),
            params,
            wants_context,
        })
    }
}

/// Functions refused at compile time: they would read the environment or
/// other resources the rule processor must not touch, or belong to XSLT
/// features outside the supported subset. (`doc()` and `unparsed-text()`
/// are allowed: like `document()` they only read files relative to the
/// stylesheet.)
/// `system-property()` of a name in the XSLT namespace (`""` for unknown
/// ones); shared by `use-when` and the run time.
pub(crate) fn system_property(local: &str, backwards_compatible: bool) -> &'static str {
    match local {
        "version" if backwards_compatible => "1.0",
        "version" => "3.0",
        "vendor" => "Drehscheibe",
        "vendor-url" => "https://example.invalid/drehscheibe",
        "product-name" => "drehscheibe-xslt",
        "product-version" => env!("CARGO_PKG_VERSION"),
        "is-schema-aware" | "supports-streaming" | "supports-dynamic-evaluation" => "no",
        "supports-serialization"
        | "supports-backwards-compatibility"
        | "supports-namespace-axis"
        | "supports-higher-order-functions" => "yes",
        "xpath-version" => "3.1",
        "xsd-version" => "1.1",
        _ => "",
    }
}

/// `function-available()` for the built-in functions: the XPath library
/// and the XSLT functions (stylesheet functions are the caller's part).
pub(crate) fn builtin_function_available(q: &XName, arity: Option<usize>) -> bool {
    let ns = q.namespace();
    let local = q.local_name();
    if ns == drehscheibe_xpath::functions::FN {
        let xslt = match local {
            "current" => Some((0, 0)),
            "unparsed-entity-uri" | "unparsed-entity-public-id" => Some((1, 1)),
            "key" | "format-number" => Some((2, 3)),
            "document" => Some((1, 2)),
            "system-property" | "element-available" | "type-available" => Some((1, 1)),
            "function-available" => Some((1, 2)),
            "current-group" | "current-grouping-key" => Some((0, 0)),
            "regex-group" => Some((1, 1)),
            _ => None,
        };
        if let Some((min, max)) = xslt {
            return arity.is_none_or(|n| n >= min && n <= max);
        }
        if REFUSED_FUNCTIONS.contains(&local) {
            return false;
        }
    }
    match arity {
        None => drehscheibe_xpath::functions::exists(ns, local),
        Some(n) => drehscheibe_xpath::functions::lookup(ns, local, n).is_some(),
    }
}

/// `type-available()`: the XSD types the engine knows.
pub(crate) fn type_available(q: &XName) -> bool {
    q.namespace() == drehscheibe_xpath::functions::XS
        && (matches!(
            q.local_name(),
            "anyAtomicType" | "untypedAtomic" | "anyType" | "anySimpleType" | "untyped" | "numeric"
        ) || drehscheibe_xpath::cast::type_by_name(q.local_name()).is_some())
}

pub(crate) const REFUSED_FUNCTIONS: &[&str] = &[
    "collection",
    "uri-collection",
    "environment-variable",
    "available-environment-variables",
    "json-doc",
    "current-output-uri",
    "accumulator-before",
    "accumulator-after",
    "copy-of",
    "snapshot",
    "stream-available",
    "current-merge-group",
    "current-merge-key",
];

/// Walks an AST (iteratively) and refuses the functions in
/// [`REFUSED_FUNCTIONS`]; also reports whether `position()`/`last()` are
/// called outside predicates and path steps (the focus of the expression
/// itself).
fn scan(expr: &ast::Expr, scope: &Scope<'_>) -> Result<bool, String> {
    let ns = scope.ns;
    let mut uses_position = false;
    // (expression, depth of nested focus)
    let mut stack: Vec<(&ast::Expr, usize)> = vec![(expr, 0)];
    while let Some((e, depth)) = stack.pop() {
        match &e.kind {
            ExprKind::FunctionCall(name, args) => {
                let fn_ns = match (&name.uri, &name.prefix) {
                    (Some(u), _) => Some(u.clone()),
                    (None, None) => Some(FN_NS.to_string()),
                    (None, Some(p)) => ns.by_prefix(p).map(str::to_string),
                };
                if fn_ns.as_deref() == Some(FN_NS) {
                    let local = name.local.as_str();
                    if REFUSED_FUNCTIONS.contains(&local) {
                        return Err(format!("unsupported XPath function {local}#{}", args.len()));
                    }
                    check_xslt_call(local, args, scope)?;
                    if depth == 0 && args.is_empty() && matches!(local, "position" | "last") {
                        uses_position = true;
                    }
                }
                push_args(&mut stack, args, depth);
            }
            ExprKind::ArrowDynamic(a, b, args) => {
                stack.push((a, depth));
                stack.push((b, depth));
                push_args(&mut stack, args, depth);
            }
            ExprKind::Sequence(items) | ExprKind::SquareArray(items) => {
                stack.extend(items.iter().map(|x| (x, depth)));
            }
            ExprKind::InlineFunction { body, .. } => stack.push((body, depth + 1)),
            ExprKind::Map(entries) => {
                for (k, v) in entries {
                    stack.push((k, depth));
                    stack.push((v, depth));
                }
            }
            ExprKind::CurlyArray(x)
            | ExprKind::Unary(_, x)
            | ExprKind::InstanceOf(x, _)
            | ExprKind::TreatAs(x, _)
            | ExprKind::CastableAs(x, _, _)
            | ExprKind::CastAs(x, _, _) => stack.push((x, depth)),
            ExprKind::UnaryLookup(ast::KeySpec::Expr(x)) => stack.push((x, depth)),
            ExprKind::Postfix(base, posts) => {
                stack.push((base, depth));
                for p in posts {
                    match p {
                        Postfix::Predicate(x) => stack.push((x, depth + 1)),
                        Postfix::Call(args) => push_args(&mut stack, args, depth),
                        Postfix::Lookup(ast::KeySpec::Expr(x)) => stack.push((x, depth)),
                        Postfix::Lookup(_) => {}
                    }
                }
            }
            ExprKind::Path(_, steps) => {
                for (i, s) in steps.iter().enumerate() {
                    let d = if i == 0 { depth } else { depth + 1 };
                    match s {
                        Step::Axis { predicates, .. } => {
                            stack.extend(predicates.iter().map(|x| (x, depth + 1)));
                        }
                        Step::Expr(x) => stack.push((x, d)),
                    }
                }
            }
            ExprKind::Binary(_, a, b) => {
                stack.push((a, depth));
                stack.push((b, depth));
            }
            ExprKind::SimpleMap(a, b) => {
                stack.push((a, depth));
                stack.push((b, depth + 1));
            }
            ExprKind::If(a, b, c) => {
                stack.push((a, depth));
                stack.push((b, depth));
                stack.push((c, depth));
            }
            ExprKind::For(bs, r) | ExprKind::Let(bs, r) | ExprKind::Quantified(_, bs, r) => {
                for b in bs {
                    stack.push((&b.expr, depth));
                }
                stack.push((r, depth));
            }
            _ => {}
        }
    }
    Ok(uses_position)
}

fn push_args<'e>(stack: &mut Vec<(&'e ast::Expr, usize)>, args: &'e [Argument], depth: usize) {
    for a in args {
        if let Argument::Expr(x) = a {
            stack.push((x, depth));
        }
    }
}

/// Compiles one expression in `scope`; returns its definition.
pub(crate) fn compile_expr(
    text: &str,
    scope: &Scope<'_>,
    file: usize,
    line: usize,
) -> Result<ExprDef, String> {
    let parsed = drehscheibe_xpath::parser::parse(text).map_err(|e| e.describe(text))?;
    compile_parsed(&parsed, text, scope, file, line)
}

/// Compiles an already parsed expression (pattern predicates).
pub(crate) fn compile_parsed(
    parsed: &ast::Expr,
    text: &str,
    scope: &Scope<'_>,
    file: usize,
    line: usize,
) -> Result<ExprDef, String> {
    let uses_position = scan(parsed, scope)?;
    let ctx = StaticContext {
        namespaces: scope.ns,
        default_element_namespace: scope.ns.xpath_default.clone(),
        backwards_compatible: scope.backwards_compatible,
        host: scope,
    };
    let expr = Expression::compile_ast(parsed, text, &ctx).map_err(|e| {
        if e.code == "XPST0017" {
            format!("unsupported XPath function: {}", e.describe(text))
        } else if e.code == "XPST0008" {
            format!("undeclared variable: {}", e.describe(text))
        } else {
            format!("XPath error {}", e.describe(text))
        }
    })?;
    Ok(ExprDef {
        expr,
        file,
        line,
        uses_position,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_without_prefix() {
        let a = XName::new("x".into(), "urn:a".into(), "p".into());
        let b = XName::new("x".into(), "urn:a".into(), "q".into());
        assert_eq!(a, b);
        assert_eq!(a.key(), "Q{urn:a}x");
        assert_eq!(XName::of(&a.qname()), b);
    }

    #[test]
    fn lexical_names_resolve() {
        let ns = NsCtx {
            bindings: vec![("p".into(), "urn:p".into())],
            ..NsCtx::default()
        };
        let q = resolve_lexical_qname("p:a", &ns).unwrap();
        assert_eq!((q.namespace(), q.local_name()), ("urn:p", "a"));
        assert!(resolve_lexical_qname("z:a", &ns).is_none());
        assert_eq!(
            resolve_lexical_qname("Q{urn:z}b", &ns).unwrap().key(),
            "Q{urn:z}b"
        );
        assert_eq!(
            resolve_lexical_qname("xml:lang", &ns).unwrap().namespace(),
            XML_NS
        );
    }

    #[test]
    fn ids_round_trip() {
        assert_eq!(decode_var(var_id(VarRef::Local(3))), VarRef::Local(3));
        assert_eq!(decode_var(var_id(VarRef::Global(7))), VarRef::Global(7));
        assert_eq!(decode_var(var_id(VarRef::Supplied)), VarRef::Supplied);
        assert_eq!(
            decode_fn(fn_id(XsltFn::Key3, 5)),
            Some(HostFn::Xslt(XsltFn::Key3, 5))
        );
        assert_eq!(decode_fn(USER_FN_BIT | 4), Some(HostFn::User(4)));
    }
}
