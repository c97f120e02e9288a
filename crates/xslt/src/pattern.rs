//! Match patterns: a pattern is syntactically an XPath expression (a
//! union of paths), parsed with the engine's parser and converted into a
//! right-to-left step matcher: the last step is tested against the
//! candidate node, then each earlier step against its parent (or, after
//! `//`, against any ancestor). Predicates are compiled as ordinary
//! expressions and evaluated with the candidate node as context item;
//! a numeric predicate result is compared with the node's position among
//! its siblings that pass the same step. Anything that is not a path over
//! the child and attribute axes (with `//`) is refused at compile time.

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
}

/// Axis of a pattern step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    Child,
    Attribute,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    Relative,
    /// `/...`: the first step's parent is the document node.
    Document,
    /// `//...`: the first step is anywhere below a document node.
    DocumentDesc,
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
}

impl Alt {
    /// The index bucket this alternative belongs in.
    pub(crate) fn index_key(&self) -> IndexKey {
        let Some(last) = self.steps.last() else {
            return IndexKey::Document;
        };
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
            (_, Test::Document) => IndexKey::Document,
            (_, Test::AnyNode) => IndexKey::AnyChild,
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
        KindTest::Document(Some(_)) => {
            return Err(format!(
                "document-node() with an element test is not supported in patterns: `{text}`"
            ))
        }
        KindTest::SchemaElement(_) | KindTest::SchemaAttribute(_) => {
            return Err("schema-element()/schema-attribute() are not supported".into())
        }
        KindTest::NamespaceNode => return Err("namespace-node() patterns are not supported".into()),
    })
}

fn default_priority(root: Root, steps: &[Step]) -> f64 {
    match (root, steps) {
        (Root::Document, []) => -0.5,
        (Root::Relative, [s]) if s.preds.is_empty() => match &s.test {
            Test::Name(_) => 0.0,
            Test::Pi(Some(_)) | Test::Element(Some(_)) | Test::Attribute(Some(_)) => 0.0,
            Test::NsAny(_) | Test::LocalAny(_) => -0.25,
            _ => -0.5,
        },
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
            ExprKind::Binary(BinOp::Intersect | BinOp::Except, _, _) => {
                return Err(format!(
                    "intersect/except in patterns are not supported: `{text}`"
                ))
            }
            _ => ordered.push(e),
        }
    }
    for e in ordered {
        alts.push(compile_alt(e, text, scope, file, line, exprs)?);
    }
    Ok(Pattern { alts })
}

fn compile_alt(
    e: &ast::Expr,
    text: &str,
    scope: &Scope<'_>,
    file: usize,
    line: usize,
    exprs: &mut Vec<ExprDef>,
) -> Result<Alt, String> {
    let (start, steps_in) = match &e.kind {
        ExprKind::Path(start, steps) => (*start, steps.as_slice()),
        ExprKind::Postfix(base, _) if matches!(base.kind, ExprKind::ContextItem) => {
            return Err(format!(
                "predicate patterns (`.[...]`) are not supported: `{text}`"
            ))
        }
        ExprKind::FunctionCall(..) | ExprKind::VarRef(_) | ExprKind::Postfix(..) => {
            return Err(format!(
                "patterns rooted at key(), id(), doc() or a variable are not supported: `{text}`"
            ))
        }
        _ => {
            return Err(format!(
                "pattern syntax error (XTSE0340): `{text}` is not a pattern"
            ))
        }
    };
    let root = match start {
        PathStart::Relative => Root::Relative,
        PathStart::Root => Root::Document,
        PathStart::RootDescendants => Root::DocumentDesc,
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut desc_pending = false;
    for (i, s) in steps_in.iter().enumerate() {
        let ast::Step::Axis {
            axis,
            test,
            predicates,
        } = s
        else {
            let what = if i == 0 {
                "patterns rooted at key(), id(), doc() or a variable are not supported"
            } else {
                "parenthesized expressions in patterns are not supported"
            };
            return Err(format!("{what}: `{text}`"));
        };
        let axis = match axis {
            ast::Axis::Child => Axis::Child,
            ast::Axis::Attribute => Axis::Attribute,
            ast::Axis::DescendantOrSelf
                if predicates.is_empty()
                    && matches!(test, NodeTest::Kind(KindTest::AnyNode))
                    && i > 0 =>
            {
                desc_pending = true;
                continue;
            }
            other => {
                return Err(format!(
                    "the {other:?} axis is not supported in patterns (XTSE0340): `{text}`"
                ))
            }
        };
        let test = match test {
            NodeTest::Name(n) => match n {
                NameTest::Name(n) => Test::Name(resolve(n, scope, axis == Axis::Child, text)?),
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
    let default_priority = default_priority(root, &steps);
    Ok(Alt {
        root,
        steps,
        default_priority,
    })
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
            (Test::Document, NodeKind::Document) => true,
            (Test::Attribute(None), NodeKind::Attribute) => true,
            (Test::Attribute(Some(n)), NodeKind::Attribute) => name_is(node.name(), n),
            _ => false,
        },
    }
}
