//! Match patterns: compiled from the `xee-xpath-ast` pattern AST into a
//! right-to-left step matcher. Predicates are XPath expressions evaluated
//! by xee with the candidate node as context item.

use std::sync::Arc;

use xee_xpath_ast::ast;
use xee_xpath_ast::pattern as p;
use xee_xpath_ast::{Namespaces, XPathParserContext};
use xot::xmlname::NameStrInfo;
use xot::{Node, Value, Xot};

use crate::xpath::{compile_expr, ExprDef, ExprEnv, ExprId};

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

fn exp_name(n: &ast::Name) -> ExpName {
    ExpName {
        ns: n.namespace().to_string(),
        local: n.local_name().to_string(),
    }
}

fn kind_test(k: &ast::KindTest) -> Result<Test, String> {
    use xee_xpath_ast::ast::{KindTest, NameOrWildcard, PITest};
    let name_of = |t: &Option<ast::ElementOrAttributeTest>| -> Result<Option<ExpName>, String> {
        match t {
            None => Ok(None),
            Some(t) => {
                if t.type_name.is_some() {
                    return Err("type annotations in kind tests are not supported".into());
                }
                Ok(match &t.name_or_wildcard {
                    NameOrWildcard::Name(n) => Some(exp_name(n)),
                    NameOrWildcard::Wildcard => None,
                })
            }
        }
    };
    Ok(match k {
        KindTest::Any => Test::AnyNode,
        KindTest::Text => Test::Text,
        KindTest::Comment => Test::Comment,
        KindTest::PI(None) => Test::Pi(None),
        KindTest::PI(Some(PITest::Name(n))) | KindTest::PI(Some(PITest::StringLiteral(n))) => {
            Test::Pi(Some(n.clone()))
        }
        KindTest::Document(None) => Test::Document,
        KindTest::Element(t) => Test::Element(name_of(t)?),
        KindTest::Attribute(t) => Test::Attribute(name_of(t)?),
        KindTest::Document(Some(_)) => {
            return Err("document-node() with an element test is not supported in patterns".into())
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

/// Compile a pattern. Predicates are compiled as XPath expressions with the
/// given environment.
pub(crate) fn compile_pattern(
    text: &str,
    ns: &Arc<Namespaces>,
    env: &dyn ExprEnv,
    file: usize,
    line: usize,
    exprs: &mut Vec<ExprDef>,
) -> Result<Pattern, String> {
    let ctx = XPathParserContext::new((**ns).clone(), Default::default());
    let mut alts = Vec::new();
    // The alternatives of a union are parsed one by one: xee's pattern
    // parser fails on a kind test followed by `|` (`node()|@*`).
    for alt in split_union(text) {
        // `document-node()/x` is `/x` (xee cannot parse a kind test
        // followed by `/` either)
        let alt = match alt.trim().strip_prefix("document-node()/") {
            Some(rest) if !rest.starts_with('/') => format!("/{rest}"),
            _ => alt.trim().to_string(),
        };
        // xee's pattern parser also fails on anything after a kind test
        // (`text()[1]`, `node()/x`): kind tests are replaced by placeholder
        // names, parsed on their own, and put back into the steps.
        let (alt, kinds) = substitute_kind_tests(&alt);
        let mut kind_tests = Vec::with_capacity(kinds.len());
        for k in &kinds {
            kind_tests.push(parse_kind_test(&ctx, k, text)?);
        }
        let parsed = ctx
            .parse_pattern(&alt)
            .map_err(|e| format!("pattern syntax error (XTSE0340) in `{text}`: {e:?}"))?;
        let first_new = alts.len();
        match &parsed {
            p::Pattern::Predicate(_) => {
                return Err(format!(
                    "predicate patterns (`.[...]`) are not supported: `{text}`"
                ))
            }
            p::Pattern::Expr(e) => collect_alts(e, &alt, ns, env, file, line, exprs, &mut alts)?,
        }
        for a in alts.iter_mut().skip(first_new) {
            let mut replaced = false;
            for step in &mut a.steps {
                if let Test::Name(n) = &step.test {
                    if n.ns == KIND_NS {
                        let index: usize = n.local.trim_start_matches('k').parse().unwrap_or(0);
                        if let Some(t) = kind_tests.get(index) {
                            step.test = t.clone();
                            replaced = true;
                        }
                    }
                }
            }
            if replaced {
                a.default_priority = default_priority(a.root, &a.steps);
            }
        }
    }
    Ok(Pattern { alts })
}

/// Namespace of the placeholder names standing for kind tests.
const KIND_NS: &str = "urn:x-drehscheibe:xslt:kind-test";

const KIND_TESTS: &[&str] = &[
    "processing-instruction",
    "schema-attribute",
    "schema-element",
    "namespace-node",
    "document-node",
    "attribute",
    "element",
    "comment",
    "node",
    "text",
];

/// Replaces the kind tests outside predicates by `Q{KIND_NS}kN`; returns
/// the new text and the kind tests in order.
fn substitute_kind_tests(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut kinds = Vec::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < text.len() {
        let rest = &text[i..];
        let Some(c) = rest.chars().next() else {
            break;
        };
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        let prev_is_name = i > 0
            && !text[..i].ends_with("::")
            && bytes.get(i - 1).is_some_and(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'}')
            });
        if depth == 0 && !prev_is_name {
            if let Some(kt) = KIND_TESTS.iter().find(|k| rest.starts_with(**k)) {
                let after = rest[kt.len()..].trim_start();
                if after.starts_with('(') {
                    // find the closing parenthesis
                    let open = i + kt.len() + (rest[kt.len()..].len() - after.len());
                    let mut level = 0usize;
                    let mut end = None;
                    for (j, ch) in text[open..].char_indices() {
                        match ch {
                            '(' => level += 1,
                            ')' => {
                                level -= 1;
                                if level == 0 {
                                    end = Some(open + j + 1);
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    if let Some(end) = end {
                        out.push_str(&format!("Q{{{KIND_NS}}}k{}", kinds.len()));
                        kinds.push(text[i..end].to_string());
                        i = end;
                        continue;
                    }
                }
            }
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '[' | '(' => depth += 1,
            ']' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        out.push(c);
        i += c.len_utf8();
    }
    (out, kinds)
}

/// The node test of a lone kind test such as `text()`.
fn parse_kind_test(ctx: &XPathParserContext, kind: &str, text: &str) -> Result<Test, String> {
    let parsed = ctx
        .parse_pattern(kind)
        .map_err(|e| format!("pattern syntax error (XTSE0340) in `{text}`: {e:?}"))?;
    if let p::Pattern::Expr(p::ExprPattern::Path(path)) = &parsed {
        if let [p::StepExpr::AxisStep(a)] = path.steps.as_slice() {
            if let ast::NodeTest::KindTest(k) = &a.node_test {
                return kind_test(k);
            }
        }
    }
    Err(format!(
        "unsupported kind test `{kind}` in pattern `{text}`"
    ))
}

/// Splits a pattern at the `|` operators outside brackets, parentheses,
/// braces and string literals.
fn split_union(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                '|' if depth == 0 => {
                    parts.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            },
        }
    }
    parts.push(&text[start..]);
    parts
}

#[allow(clippy::too_many_arguments)]
fn collect_alts(
    e: &p::ExprPattern<ast::ExprS>,
    text: &str,
    ns: &Arc<Namespaces>,
    env: &dyn ExprEnv,
    file: usize,
    line: usize,
    exprs: &mut Vec<ExprDef>,
    alts: &mut Vec<Alt>,
) -> Result<(), String> {
    match e {
        p::ExprPattern::BinaryExpr(b) => {
            if b.operator != p::Operator::Union {
                return Err(format!(
                    "intersect/except in patterns are not supported: `{text}`"
                ));
            }
            collect_alts(&b.left, text, ns, env, file, line, exprs, alts)?;
            collect_alts(&b.right, text, ns, env, file, line, exprs, alts)
        }
        p::ExprPattern::Path(path) => {
            let root = match &path.root {
                p::PathRoot::Relative => Root::Relative,
                p::PathRoot::AbsoluteSlash => Root::Document,
                p::PathRoot::AbsoluteDoubleSlash => Root::DocumentDesc,
                p::PathRoot::Rooted { .. } => {
                    return Err(format!(
                        "patterns rooted at key(), id(), doc() or a variable are not supported: `{text}`"
                    ))
                }
            };
            let mut steps: Vec<Step> = Vec::new();
            let mut desc_pending = false;
            for s in &path.steps {
                let p::StepExpr::AxisStep(a) = s else {
                    return Err(format!(
                        "parenthesized expressions in patterns are not supported: `{text}`"
                    ));
                };
                let axis = match a.forward {
                    p::ForwardAxis::Child => Axis::Child,
                    p::ForwardAxis::Attribute => Axis::Attribute,
                    p::ForwardAxis::DescendantOrSelf
                        if a.predicates.is_empty()
                            && matches!(
                                a.node_test,
                                ast::NodeTest::KindTest(ast::KindTest::Any)
                            ) =>
                    {
                        desc_pending = true;
                        continue;
                    }
                    other => {
                        return Err(format!(
                            "the {other:?} axis is not supported in patterns: `{text}`"
                        ))
                    }
                };
                let test = match &a.node_test {
                    ast::NodeTest::NameTest(n) => match n {
                        ast::NameTest::Name(n) => Test::Name(exp_name(&n.value)),
                        ast::NameTest::Star => Test::Any,
                        ast::NameTest::LocalName(l) => Test::LocalAny(l.clone()),
                        ast::NameTest::Namespace(uri) => Test::NsAny(uri.clone()),
                    },
                    ast::NodeTest::KindTest(k) => kind_test(k)?,
                };
                let mut preds = Vec::new();
                for pred in &a.predicates {
                    let src = text
                        .get(pred.span.start..pred.span.end)
                        .ok_or_else(|| format!("cannot locate predicate in pattern `{text}`"))?;
                    preds.push(compile_expr(src, ns, env, file, line, exprs)?);
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
            alts.push(Alt {
                root,
                steps,
                default_priority,
            });
            Ok(())
        }
    }
}

fn name_is(xot: &Xot, name: xot::NameId, n: &ExpName) -> bool {
    let (local, ns) = xot.name_ns_str(name);
    local == n.local && ns == n.ns
}

/// Does `node` pass the node test of a step on `axis`?
pub(crate) fn test_matches(xot: &Xot, node: Node, axis: Axis, test: &Test) -> bool {
    let value = xot.value(node);
    match axis {
        Axis::Attribute => {
            let Value::Attribute(a) = value else {
                return false;
            };
            let name = a.name();
            match test {
                Test::Name(n) | Test::Attribute(Some(n)) => name_is(xot, name, n),
                Test::Any | Test::AnyNode | Test::Attribute(None) => true,
                Test::NsAny(ns) => xot.name_ns_str(name).1 == ns,
                Test::LocalAny(l) => xot.name_ns_str(name).0 == l,
                _ => false,
            }
        }
        Axis::Child => match (test, value) {
            (Test::Name(n) | Test::Element(Some(n)), Value::Element(e)) => {
                name_is(xot, e.name(), n)
            }
            (Test::Any | Test::Element(None), Value::Element(_)) => true,
            (Test::NsAny(ns), Value::Element(e)) => xot.name_ns_str(e.name()).1 == ns,
            (Test::LocalAny(l), Value::Element(e)) => xot.name_ns_str(e.name()).0 == l,
            (
                Test::AnyNode,
                Value::Element(_)
                | Value::Text(_)
                | Value::Comment(_)
                | Value::ProcessingInstruction(_),
            ) => true,
            (Test::Text, Value::Text(_)) => true,
            (Test::Comment, Value::Comment(_)) => true,
            (Test::Pi(None), Value::ProcessingInstruction(_)) => true,
            (Test::Pi(Some(t)), Value::ProcessingInstruction(pi)) => {
                xot.local_name_str(pi.target()) == t
            }
            (Test::Document, Value::Document) => true,
            (Test::Attribute(_), Value::Attribute(_)) => true,
            _ => false,
        },
    }
}
