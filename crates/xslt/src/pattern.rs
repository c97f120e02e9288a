//! Match patterns: a pattern is syntactically an XPath expression (a
//! union of paths), parsed with the engine's parser and converted into a
//! right-to-left step matcher: the last step is tested against the
//! candidate node, then each earlier step against its parent (or, after
//! `//`, against any ancestor). Predicates are compiled as ordinary
//! expressions and evaluated with the candidate node as context item;
//! a numeric predicate result is compared with the node's position among
//! its siblings that pass the same step.
//!
//! The step matcher covers the common forms: steps on the child,
//! attribute and self axes, `//`, `descendant::` and
//! `descendant-or-self::` steps without predicates (they are `//` in
//! disguise), and the XSLT 2.0 rule that the first step of a relative
//! pattern also matches a parentless node (the spec's `child-or-top` and
//! `attribute-or-top` axes: `foo` matches a parentless `foo` element, `@a`
//! a parentless attribute; `namespace::p` only ever meets parentless
//! namespace nodes, as the tree keeps no namespace nodes on elements).
//! `current()` in the predicate of any step is the node being matched.
//!
//! Two XSLT 3.0 forms need an evaluated node set instead:
//!
//! * rooted patterns (`key('k', 'v')//p`, `id('a')`, `doc('x.xml')//b`,
//!   `$v/baz`, `root()[…]`): the head is compiled as an expression
//!   ([`Root::Nodes`]) and evaluated with the candidate as focus; the
//!   first step's parent (after `//`: an ancestor) must be in its value;
//! * everything else the pattern grammar allows (parenthesised patterns
//!   `(a|b)[1]`, `intersect`/`except`, `descendant::x[1]`): the general
//!   rule of XSLT 3.0 §5.5.3, *N matches P iff N is in `root(N)//(P)`*, is
//!   compiled as that very expression, again as a [`Root::Nodes`] with no
//!   steps.
//!
//! The value of such a head depends on the candidate only through its
//! tree (unless the pattern calls `current()` or reads a local variable
//! of an `xsl:number` instruction), so the interpreter
//! computes it once per tree and run (`per_tree`) and then tests
//! membership by binary search: a key pattern used by every template
//! rule of a large document costs one evaluation, not one per node.
//!
//! Predicate patterns (`.[…]`, XSLT 3.0) match any item for which every
//! predicate holds; dynamic errors in their predicates mean "no match".

use drehscheibe_xpath::ast::{self, BinOp, ExprKind, KindTest, NameTest, NodeTest, PathStart};
use drehscheibe_xpath::tree::{Node, NodeKind, QName};

use crate::xpath::{compile_parsed, resolve_lexical_qname, ExprDef, ExprId, Scope};

/// An expanded name: namespace URI and local name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ExpName {
    pub ns: String,
    pub local: String,
}

/// A node test of a pattern step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    /// A QName test on the principal node kind of the axis.
    Name(ExpName),
    /// `prefix:*`.
    NsAny(String),
    /// `*:local`.
    LocalAny(String),
    /// `*` (any node of the principal node kind).
    Any,
    /// `node()`.
    AnyNode,
    Text,
    Comment,
    Pi(Option<String>),
    Document,
    /// `element()` / `element(name)`.
    Element(Option<ExpName>),
    /// `attribute()` / `attribute(name)`.
    Attribute(Option<ExpName>),
    /// `document-node(element())` / `document-node(element(name))`: a
    /// document node with exactly one element child (matching the name)
    /// and no text children.
    DocumentElement(Option<ExpName>),
    /// `namespace-node()`.
    NamespaceNode,
    /// Matches nothing (`child::document-node()`).
    Never,
}

/// Axis of a pattern step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    Child,
    Attribute,
    /// `self::`: the step tests the node the previous step selected
    /// (principal node kind: element).
    Same,
    /// `namespace::`. The arena tree does not materialise the namespace
    /// nodes of elements, so only parentless namespace nodes (built by
    /// `xsl:namespace` in a variable) can match, as `namespace-or-top`.
    Namespace,
}

/// One step of a path pattern.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub axis: Axis,
    pub test: Test,
    pub preds: Vec<ExprId>,
    /// The step is joined to the previous one by `//` instead of `/`.
    pub desc_before: bool,
}

/// How a path pattern is anchored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Root {
    Relative,
    /// `/...`: the first step's parent is the document node.
    Document,
    /// `//...`: the first step is anywhere below a document node.
    DocumentDesc,
    /// A rooted pattern (`key(…)`, `id(…)`, `doc(…)`, `root()`, `$v`, with
    /// predicates) or the general form `root(.)//(P)`: the expression is
    /// evaluated with the candidate as focus, and the first step's context
    /// node must be in its value (with no steps: the candidate itself).
    Nodes {
        expr: ExprId,
        /// The value is the same for every node of one tree (the pattern
        /// does not call `current()`): computed once per tree and run.
        per_tree: bool,
    },
    /// A predicate pattern `.[p1][p2]…`: any item for which every
    /// predicate holds (as the only item of its focus). No steps.
    Predicate(Vec<ExprId>),
}

/// One alternative of a (union) pattern.
#[derive(Debug, Clone)]
pub(crate) struct Alt {
    pub root: Root,
    pub steps: Vec<Step>,
    pub default_priority: f64,
}

/// A compiled pattern: the union of its alternatives.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    pub alts: Vec<Alt>,
}

/// The node kind a pattern alternative can match, used to index templates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum IndexKey {
    Element(ExpName),
    AnyElement,
    Attribute(ExpName),
    AnyAttribute,
    Text,
    Comment,
    Pi,
    Document,
    /// Any child-axis node (element, text, comment, PI).
    AnyChild,
    /// Any node of any kind (rooted, general and predicate patterns).
    AnyNode,
}

impl IndexKey {
    /// Can `node` be in this bucket? The cheap test before matching an
    /// alternative's steps (building a key index tests every node).
    pub(crate) fn admits(&self, node: Node<'_>) -> bool {
        let kind = node.kind();
        match self {
            IndexKey::Element(n) => kind == NodeKind::Element && name_is(node.name(), n),
            IndexKey::AnyElement => kind == NodeKind::Element,
            IndexKey::Attribute(n) => kind == NodeKind::Attribute && name_is(node.name(), n),
            IndexKey::AnyAttribute => kind == NodeKind::Attribute,
            IndexKey::Text => kind == NodeKind::Text,
            IndexKey::Comment => kind == NodeKind::Comment,
            IndexKey::Pi => kind == NodeKind::ProcessingInstruction,
            IndexKey::Document => kind == NodeKind::Document,
            IndexKey::AnyChild => matches!(
                kind,
                NodeKind::Element
                    | NodeKind::Text
                    | NodeKind::Comment
                    | NodeKind::ProcessingInstruction
            ),
            IndexKey::AnyNode => true,
        }
    }
}

impl Alt {
    /// The index bucket this alternative belongs in.
    pub(crate) fn index_key(&self) -> IndexKey {
        let Some(last) = self.steps.last() else {
            return match self.root {
                Root::Nodes { .. } | Root::Predicate(_) => IndexKey::AnyNode,
                _ => IndexKey::Document,
            };
        };
        if last.axis == Axis::Namespace {
            return IndexKey::AnyNode;
        }
        if last.axis == Axis::Same {
            return match &last.test {
                Test::Name(n) | Test::Element(Some(n)) => IndexKey::Element(n.clone()),
                Test::NsAny(_) | Test::LocalAny(_) | Test::Any | Test::Element(None) => {
                    IndexKey::AnyElement
                }
                Test::Attribute(Some(n)) => IndexKey::Attribute(n.clone()),
                Test::Attribute(None) => IndexKey::AnyAttribute,
                Test::Text => IndexKey::Text,
                Test::Comment => IndexKey::Comment,
                Test::Pi(_) => IndexKey::Pi,
                Test::Document | Test::DocumentElement(_) | Test::Never => IndexKey::Document,
                Test::AnyNode | Test::NamespaceNode => IndexKey::AnyNode,
            };
        }
        match (last.axis, &last.test) {
            (Axis::Child, Test::Name(n)) | (Axis::Child, Test::Element(Some(n))) => {
                IndexKey::Element(n.clone())
            }
            (Axis::Attribute, Test::Name(n)) | (_, Test::Attribute(Some(n))) => {
                IndexKey::Attribute(n.clone())
            }
            (Axis::Child, Test::NsAny(_) | Test::LocalAny(_) | Test::Any | Test::Element(None)) => {
                IndexKey::AnyElement
            }
            (Axis::Attribute, _) | (_, Test::Attribute(None)) => IndexKey::AnyAttribute,
            (_, Test::Text) => IndexKey::Text,
            (_, Test::Comment) => IndexKey::Comment,
            (_, Test::Pi(_)) => IndexKey::Pi,
            (_, Test::Document | Test::DocumentElement(_) | Test::Never) => IndexKey::Document,
            (_, Test::AnyNode) => IndexKey::AnyChild,
            // handled above, or never matching on the child axis
            (Axis::Same | Axis::Namespace, _) | (_, Test::NamespaceNode) => IndexKey::AnyNode,
        }
    }
}

/// Resolves a name of a name test: prefixed names through the namespace
/// context, unprefixed element names in the `xpath-default-namespace`.
fn resolve(n: &ast::Name, scope: &Scope<'_>, element: bool, text: &str) -> Result<ExpName, String> {
    if let Some(uri) = &n.uri {
        return Ok(ExpName {
            ns: uri.clone(),
            local: n.local.clone(),
        });
    }
    match &n.prefix {
        None => Ok(ExpName {
            ns: if element {
                scope.ns.xpath_default.clone()
            } else {
                String::new()
            },
            local: n.local.clone(),
        }),
        Some(p) => {
            let q = resolve_lexical_qname(&format!("{p}:{}", n.local), scope.ns)
                .ok_or_else(|| format!("undeclared prefix '{p}' in pattern `{text}` (XPST0081)"))?;
            Ok(ExpName {
                ns: q.namespace().to_string(),
                local: q.local_name().to_string(),
            })
        }
    }
}

fn kind_test(k: &KindTest, scope: &Scope<'_>, text: &str) -> Result<Test, String> {
    let name_of = |t: &Option<NameTest>,
                   ty: &Option<ast::Name>,
                   element: bool|
     -> Result<Option<ExpName>, String> {
        if ty.is_some() {
            return Err(format!(
                "type annotations in kind tests are not supported: `{text}`"
            ));
        }
        match t {
            None | Some(NameTest::Any) => Ok(None),
            Some(NameTest::Name(n)) => Ok(Some(resolve(n, scope, element, text)?)),
            Some(_) => Err(format!(
                "wildcards in kind tests are not supported: `{text}`"
            )),
        }
    };
    Ok(match k {
        KindTest::AnyNode => Test::AnyNode,
        KindTest::Text => Test::Text,
        KindTest::Comment => Test::Comment,
        KindTest::Pi(name) => Test::Pi(name.clone()),
        KindTest::Document(None) => Test::Document,
        KindTest::Element(t, ty) => Test::Element(name_of(t, ty, true)?),
        KindTest::Attribute(t, ty) => Test::Attribute(name_of(t, ty, false)?),
        KindTest::Document(Some(inner)) => match inner.as_ref() {
            KindTest::Element(t, ty) => Test::DocumentElement(name_of(t, ty, true)?),
            _ => {
                return Err(format!(
                "document-node() with a schema-element test is not supported in patterns: `{text}`"
            ))
            }
        },
        KindTest::SchemaElement(_) | KindTest::SchemaAttribute(_) => {
            return Err("schema-element()/schema-attribute() are not supported".into())
        }
        KindTest::NamespaceNode => Test::NamespaceNode,
    })
}

fn default_priority(root: &Root, steps: &[Step]) -> f64 {
    match (root, steps) {
        (Root::Document, []) => -0.5,
        (Root::Predicate(preds), []) => {
            if preds.is_empty() {
                -1.0
            } else {
                1.0
            }
        }
        (Root::Relative, [s]) if s.preds.is_empty() && !s.desc_before && s.axis != Axis::Same => {
            match &s.test {
                Test::Name(_) => 0.0,
                Test::Pi(Some(_))
                | Test::Element(Some(_))
                | Test::Attribute(Some(_))
                | Test::DocumentElement(Some(_)) => 0.0,
                Test::NsAny(_) | Test::LocalAny(_) => -0.25,
                _ => -0.5,
            }
        }
        _ => 0.5,
    }
}

/// Compile a pattern. Predicates are compiled as XPath expressions in
/// `scope`.
pub(crate) fn compile_pattern(
    text: &str,
    scope: &Scope<'_>,
    file: usize,
    line: usize,
    exprs: &mut Vec<ExprDef>,
) -> Result<Pattern, String> {
    let parsed = drehscheibe_xpath::parser::parse(text)
        .map_err(|e| format!("pattern syntax error (XTSE0340): {}", e.describe(text)))?;
    check_pattern(&parsed, true, text)?;
    let mut alts = Vec::new();
    let mut stack = vec![&parsed];
    // unions are flattened left to right
    let mut ordered = Vec::new();
    while let Some(e) = stack.pop() {
        match &e.kind {
            ExprKind::Binary(BinOp::Union, a, b) => {
                stack.push(b);
                stack.push(a);
            }
            _ => ordered.push(e),
        }
    }
    for e in ordered {
        alts.push(compile_alt(e, text, scope, file, line, exprs)?);
    }
    Ok(Pattern { alts })
}

/// The source text of `e` (empty if the span is out of range).
fn source<'t>(e: &ast::Expr, text: &'t str) -> &'t str {
    text.get(e.span.start as usize..e.span.end as usize)
        .unwrap_or("")
        .trim_start()
}

fn not_a_pattern(text: &str) -> String {
    format!("pattern syntax error (XTSE0340): `{text}` is not a pattern")
}

/// Is `e` a function call allowed at the head of a rooted pattern
/// (`doc`, `id`, `element-with-id`, `key`, `root` of the `fn` namespace,
/// written without prefix)?
fn is_rooting_call(e: &ast::Expr) -> bool {
    matches!(&e.kind, ExprKind::FunctionCall(n, _)
        if n.prefix.is_none()
            && (n.uri.is_none() || n.uri.as_deref() == Some("http://www.w3.org/2005/xpath-functions"))
            && matches!(n.local.as_str(), "doc" | "id" | "element-with-id" | "key" | "root"))
}

/// The head of a rooted pattern: a variable reference or a rooting
/// function call, with predicates.
fn is_rooted_head(e: &ast::Expr) -> bool {
    match &e.kind {
        ExprKind::VarRef(_) => true,
        ExprKind::FunctionCall(..) => is_rooting_call(e),
        ExprKind::Postfix(base, posts) => {
            posts
                .iter()
                .all(|p| matches!(p, ast::Postfix::Predicate(_)))
                && (matches!(base.kind, ExprKind::VarRef(_)) || is_rooting_call(base))
        }
        _ => false,
    }
}

/// The arguments of a rooting call in a pattern are literals or variable
/// references (the pattern grammar has no other expressions there).
fn check_rooting_args(args: &[ast::Argument], text: &str) -> Result<(), String> {
    for a in args {
        let ok = matches!(a, ast::Argument::Expr(x)
            if matches!(x.kind, ExprKind::Literal(_) | ExprKind::VarRef(_)));
        if !ok {
            return Err(format!(
                "the arguments of key(), id(), doc() and root() in a pattern must be literals or variable references (XPST0017): `{text}`"
            ));
        }
    }
    Ok(())
}

/// Checks the XSLT 3.0 pattern grammar (parentheses are gone in the AST:
/// a parenthesised pattern is the inner pattern, with predicates a
/// postfix expression). Anything else is XTSE0340; the namespace axis is
/// refused as unsupported.
fn check_pattern(e: &ast::Expr, top: bool, text: &str) -> Result<(), String> {
    match &e.kind {
        ExprKind::Binary(BinOp::Union | BinOp::Intersect | BinOp::Except, a, b) => {
            check_pattern(a, false, text)?;
            check_pattern(b, false, text)
        }
        ExprKind::VarRef(_) => Ok(()),
        ExprKind::FunctionCall(_, args) if is_rooting_call(e) => check_rooting_args(args, text),
        ExprKind::Postfix(base, posts) => {
            if !posts
                .iter()
                .all(|p| matches!(p, ast::Postfix::Predicate(_)))
            {
                return Err(not_a_pattern(text));
            }
            match &base.kind {
                // the AST has lost the parentheses, the span has not
                ExprKind::ContextItem if top && source(e, text).starts_with('(') => Err(format!(
                    "pattern syntax error (XTSE0340): a predicate pattern cannot be parenthesised: `{text}`"
                )),
                ExprKind::ContextItem if top => Ok(()),
                ExprKind::ContextItem => Err(format!(
                    "pattern syntax error (XTSE0340): a predicate pattern `.[…]` cannot be part of another pattern: `{text}`"
                )),
                _ => check_pattern(base, false, text),
            }
        }
        ExprKind::Path(start, steps) => {
            for (i, s) in steps.iter().enumerate() {
                match s {
                    ast::Step::Axis { axis, .. } => match axis {
                        ast::Axis::Child
                        | ast::Axis::Attribute
                        | ast::Axis::SelfAxis
                        | ast::Axis::Descendant
                        | ast::Axis::DescendantOrSelf
                        | ast::Axis::Namespace => {}
                        other => {
                            return Err(format!(
                                "the {other:?} axis is not allowed in patterns (XTSE0340): `{text}`"
                            ))
                        }
                    },
                    ast::Step::Expr(x) => {
                        if i == 0 && *start == PathStart::Relative && is_rooted_head(x) {
                            check_pattern(x, false, text)?;
                            continue;
                        }
                        // a parenthesised pattern, possibly with predicates
                        match &x.kind {
                            ExprKind::Postfix(base, posts)
                                if posts
                                    .iter()
                                    .all(|p| matches!(p, ast::Postfix::Predicate(_))) =>
                            {
                                check_pattern(base, false, text)?
                            }
                            ExprKind::Binary(..) | ExprKind::Path(..) => {
                                check_pattern(x, false, text)?
                            }
                            _ => return Err(not_a_pattern(text)),
                        }
                    }
                }
            }
            Ok(())
        }
        _ => Err(not_a_pattern(text)),
    }
}

/// Is the value of a rooted or general pattern the same for every node of
/// a tree? Not if it calls `current()` (the candidate) or may refer to a
/// local variable (patterns of `xsl:number`); the test is on the text, so
/// it errs on the side of "not shared".
fn shared_by_tree(text: &str, scope: &Scope<'_>) -> bool {
    !text.contains("current") && (scope.locals.is_empty() || !text.contains('$'))
}

fn compile_alt(
    e: &ast::Expr,
    text: &str,
    scope: &Scope<'_>,
    file: usize,
    line: usize,
    exprs: &mut Vec<ExprDef>,
) -> Result<Alt, String> {
    // `current()` is the candidate itself: such a pattern's node set
    // cannot be shared by the nodes of a tree.
    let per_tree = shared_by_tree(text, scope);
    let nodes_root = |x: &ast::Expr, exprs: &mut Vec<ExprDef>| -> Result<Root, String> {
        exprs.push(compile_parsed(x, text, scope, file, line)?);
        Ok(Root::Nodes {
            expr: exprs.len() - 1,
            per_tree,
        })
    };
    match &e.kind {
        ExprKind::Postfix(base, posts) if matches!(base.kind, ExprKind::ContextItem) => {
            let mut preds = Vec::new();
            for p in posts {
                if let ast::Postfix::Predicate(x) = p {
                    exprs.push(compile_parsed(x, text, scope, file, line)?);
                    preds.push(exprs.len() - 1);
                }
            }
            let root = Root::Predicate(preds);
            return Ok(Alt {
                default_priority: default_priority(&root, &[]),
                root,
                steps: Vec::new(),
            });
        }
        _ if is_rooted_head(e) => {
            return Ok(Alt {
                root: nodes_root(e, exprs)?,
                steps: Vec::new(),
                default_priority: 0.5,
            })
        }
        ExprKind::Path(start, steps) => {
            if let Some(mut alt) = compile_path(*start, steps, text, scope, file, line, exprs)? {
                // `document-node()` matches document nodes, but an explicit
                // `child::document-node()` never matches (no document node
                // is a child); the AST does not keep whether `child::` was
                // written, the source does.
                if let (Root::Relative, Some(first)) = (&alt.root, alt.steps.first_mut()) {
                    if first.test == Test::Document && source(e, text).starts_with("child") {
                        first.test = Test::Never;
                    }
                }
                return Ok(alt);
            }
        }
        _ => {}
    }
    // The general rule: N matches P iff N is in `root(N)//(P)`. An absolute
    // or rooted path has the same value from every node of the tree and is
    // evaluated as it is.
    let independent = match &e.kind {
        ExprKind::Path(PathStart::Root | PathStart::RootDescendants, _) => true,
        ExprKind::Path(PathStart::Relative, steps) => {
            matches!(steps.first(), Some(ast::Step::Expr(x)) if is_rooted_head(x))
        }
        _ => false,
    };
    let general = if independent {
        e.clone()
    } else {
        ast::Expr {
            kind: ExprKind::Path(
                PathStart::Relative,
                vec![
                    ast::Step::Expr(Box::new(ast::Expr {
                        kind: ExprKind::FunctionCall(ast::Name::local("root"), Vec::new()),
                        span: e.span,
                    })),
                    ast::Step::Axis {
                        axis: ast::Axis::DescendantOrSelf,
                        test: NodeTest::Kind(KindTest::AnyNode),
                        predicates: Vec::new(),
                    },
                    ast::Step::Expr(Box::new(e.clone())),
                ],
            ),
            span: e.span,
        }
    };
    // `P1 intersect P2` and `P1 except P2` have the priority of `P1`.
    let mut first = e;
    while let ExprKind::Binary(BinOp::Intersect | BinOp::Except, a, _) = &first.kind {
        first = a;
    }
    let default_priority = if std::ptr::eq(first, e) {
        0.5
    } else {
        let mut scratch = Vec::new();
        compile_alt(first, text, scope, file, line, &mut scratch)?.default_priority
    };
    Ok(Alt {
        root: nodes_root(&general, exprs)?,
        steps: Vec::new(),
        default_priority,
    })
}

/// The step matcher's form of a path pattern, or `None` when the path
/// needs the general rule (parenthesised steps, `descendant::` steps with
/// predicates).
fn compile_path(
    start: PathStart,
    steps_in: &[ast::Step],
    text: &str,
    scope: &Scope<'_>,
    file: usize,
    line: usize,
    exprs: &mut Vec<ExprDef>,
) -> Result<Option<Alt>, String> {
    let mut root = match start {
        PathStart::Relative => Root::Relative,
        PathStart::Root => Root::Document,
        PathStart::RootDescendants => Root::DocumentDesc,
    };
    let mut rest = steps_in;
    if let (Root::Relative, Some(ast::Step::Expr(head))) = (&root, steps_in.first()) {
        if !is_rooted_head(head) {
            return Ok(None);
        }
        exprs.push(compile_parsed(head, text, scope, file, line)?);
        root = Root::Nodes {
            expr: exprs.len() - 1,
            per_tree: shared_by_tree(text, scope),
        };
        rest = steps_in.get(1..).unwrap_or(&[]);
    }
    let mut steps: Vec<Step> = Vec::new();
    let mut desc_pending = false;
    for (i, s) in rest.iter().enumerate() {
        let ast::Step::Axis {
            axis,
            test,
            predicates,
        } = s
        else {
            return Ok(None);
        };
        let has_next = i + 1 < rest.len();
        let axis = match axis {
            ast::Axis::Child => Axis::Child,
            ast::Axis::Attribute => Axis::Attribute,
            ast::Axis::SelfAxis => Axis::Same,
            ast::Axis::Namespace => Axis::Namespace,
            // `a//b` is `a/descendant-or-self::node()/b`
            ast::Axis::DescendantOrSelf
                if predicates.is_empty()
                    && has_next
                    && matches!(test, NodeTest::Kind(KindTest::AnyNode)) =>
            {
                desc_pending = true;
                continue;
            }
            // `a/descendant::b` is `a//b`, `a/descendant-or-self::b` is
            // `a//self::b` (without predicates, whose positions would count
            // along the axis)
            ast::Axis::Descendant if predicates.is_empty() => {
                desc_pending = true;
                Axis::Child
            }
            ast::Axis::DescendantOrSelf if predicates.is_empty() => {
                desc_pending = true;
                Axis::Same
            }
            _ => return Ok(None),
        };
        let test = match test {
            NodeTest::Name(n) => match n {
                NameTest::Name(n) => Test::Name(resolve(n, scope, axis != Axis::Attribute, text)?),
                NameTest::Any => Test::Any,
                NameTest::AnyNamespace(l) => Test::LocalAny(l.clone()),
                NameTest::AnyLocal { prefix, uri } => match (uri, prefix) {
                    (Some(u), _) => Test::NsAny(u.clone()),
                    (None, Some(p)) => Test::NsAny(
                        scope
                            .ns
                            .by_prefix(p)
                            .ok_or_else(|| format!("undeclared prefix '{p}' in pattern `{text}`"))?
                            .to_string(),
                    ),
                    (None, None) => Test::Any,
                },
            },
            NodeTest::Kind(k) => kind_test(k, scope, text)?,
        };
        let mut preds = Vec::new();
        for pred in predicates {
            let def = compile_parsed(pred, text, scope, file, line)?;
            exprs.push(def);
            preds.push(exprs.len() - 1);
        }
        steps.push(Step {
            axis,
            test,
            preds,
            desc_before: desc_pending,
        });
        desc_pending = false;
    }
    if desc_pending {
        return Err(format!("pattern ends with `//`: `{text}`"));
    }
    // `/descendant::x` is `//x`
    if root == Root::Document {
        if let Some(first) = steps.first_mut() {
            if first.desc_before && first.axis != Axis::Same {
                first.desc_before = false;
                root = Root::DocumentDesc;
            }
        }
    }
    let default_priority = default_priority(&root, &steps);
    Ok(Some(Alt {
        root,
        steps,
        default_priority,
    }))
}

fn name_is(q: Option<&QName>, n: &ExpName) -> bool {
    q.is_some_and(|q| q.local == n.local && q.uri == n.ns)
}

/// Does an element with name `q` pass `test` (whitespace stripping rules)?
pub(crate) fn element_name_matches(q: &QName, test: &Test) -> bool {
    match test {
        Test::Name(n) | Test::Element(Some(n)) => q.local == n.local && q.uri == n.ns,
        Test::Any | Test::Element(None) | Test::AnyNode => true,
        Test::NsAny(ns) => q.uri == *ns,
        Test::LocalAny(l) => q.local == *l,
        _ => false,
    }
}

/// Does `node` pass the node test of a step on `axis`?
pub(crate) fn test_matches(node: Node<'_>, axis: Axis, test: &Test) -> bool {
    let kind = node.kind();
    match axis {
        Axis::Namespace => {
            if kind != NodeKind::Namespace {
                return false;
            }
            // a namespace node's name is its prefix, in no namespace
            match test {
                Test::Name(n) => name_is(node.name(), n),
                Test::Any | Test::AnyNode | Test::NamespaceNode => true,
                Test::LocalAny(l) => node.name().is_some_and(|q| q.local == *l),
                _ => false,
            }
        }
        Axis::Attribute => {
            if kind != NodeKind::Attribute {
                return false;
            }
            let name = node.name();
            match test {
                Test::Name(n) | Test::Attribute(Some(n)) => name_is(name, n),
                Test::Any | Test::AnyNode | Test::Attribute(None) => true,
                Test::NsAny(ns) => name.is_some_and(|q| q.uri == *ns),
                Test::LocalAny(l) => name.is_some_and(|q| q.local == *l),
                _ => false,
            }
        }
        Axis::Child => match (test, kind) {
            (Test::Name(n) | Test::Element(Some(n)), NodeKind::Element) => name_is(node.name(), n),
            (Test::Any | Test::Element(None), NodeKind::Element) => true,
            (Test::NsAny(ns), NodeKind::Element) => node.name().is_some_and(|q| q.uri == *ns),
            (Test::LocalAny(l), NodeKind::Element) => node.name().is_some_and(|q| q.local == *l),
            (
                Test::AnyNode,
                NodeKind::Element
                | NodeKind::Text
                | NodeKind::Comment
                | NodeKind::ProcessingInstruction,
            ) => true,
            (Test::Text, NodeKind::Text) => true,
            (Test::Comment, NodeKind::Comment) => true,
            (Test::Pi(None), NodeKind::ProcessingInstruction) => true,
            (Test::Pi(Some(t)), NodeKind::ProcessingInstruction) => {
                node.name().is_some_and(|q| q.local == *t)
            }
            // `document-node()` as a relative pattern matches document
            // nodes (they are never on a child axis otherwise)
            (Test::Document, NodeKind::Document) => true,
            (Test::DocumentElement(n), NodeKind::Document) => {
                let mut elements = 0;
                let mut only = None;
                for c in node.children() {
                    match c.kind() {
                        NodeKind::Element => {
                            elements += 1;
                            only = Some(c);
                        }
                        NodeKind::Text => return false,
                        _ => {}
                    }
                }
                match (elements, only, n) {
                    (1, Some(_), None) => true,
                    (1, Some(e), Some(n)) => name_is(e.name(), n),
                    _ => false,
                }
            }
            _ => false,
        },
        Axis::Same => match (test, kind) {
            (Test::AnyNode, _) | (Test::NamespaceNode, NodeKind::Namespace) => true,
            (Test::Attribute(None), NodeKind::Attribute) => true,
            (Test::Attribute(Some(n)), NodeKind::Attribute) => name_is(node.name(), n),
            (Test::Document | Test::DocumentElement(_), NodeKind::Document) => {
                test_matches(node, Axis::Child, test)
            }
            (
                _,
                NodeKind::Element
                | NodeKind::Text
                | NodeKind::Comment
                | NodeKind::ProcessingInstruction,
            ) => test_matches(node, Axis::Child, test),
            _ => false,
        },
    }
}
