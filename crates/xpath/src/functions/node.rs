//! Node, name, URI, document and JSON built-in functions (OWNER:
//! functions helper).
//!
//! * names: `name`, `local-name`, `namespace-uri`, `node-name`, the QName
//!   constructors and accessors (`QName`, `resolve-QName`,
//!   `prefix-from-QName`, …), `in-scope-prefixes`,
//!   `namespace-uri-for-prefix`;
//! * structure: `root`, `has-children`, `innermost`, `outermost`, `path`,
//!   `generate-id`, `lang`, `id`, `element-with-id`, `idref`, `nilled`;
//! * URIs and documents: `document-uri`, `base-uri`, `static-base-uri`,
//!   `resolve-uri`, `doc`, `doc-available`, `unparsed-text` (+`-lines`,
//!   `-available`) — resources come from the [`crate::Host`];
//! * `error`, `trace`;
//! * `parse-xml`, `parse-xml-fragment`, `serialize` (XML method, plus the
//!   `text` method through the options map);
//! * JSON: `json-to-xml`, `xml-to-json` (via [`crate::json`]),
//!   `parse-json`, `json-doc` (JSON → maps and arrays, built from the
//!   `json-to-xml` tree so duplicate keys, nesting limits and escapes are
//!   handled in one place).
//!
//! Without a schema or DTD there are no ID/IDREF types: `id()` treats
//! `xml:id` and unqualified `id` attributes as IDs, `idref()` treats
//! unqualified `idref`/`idrefs` attributes as references — a documented
//! simplification.
//!
//! `generate-id()` is `d{document id}n{node index}`: stable for a node
//! during a run, distinct between nodes, and an NCName.

use std::rc::Rc;
use std::sync::Arc;

use super::def;
use super::params::*;
use super::{opt_str, str_or_empty, Builtin, FN};
use crate::error::{Error, Result};
use crate::eval::Eval;
use crate::json::{json_to_xml as json_tree, xml_to_json as json_text, Duplicates, JsonOptions};
use crate::tree::{Builder, Document, Node, NodeKind, ParseOptions, QName, XML_NS};
use crate::value::{Array, Atomic, Item, Map, MapKey, Sequence};

/// The functions of this module.
pub const FUNCTIONS: &[Builtin] = &[
    def("name", 1, 1, &[NODE_OPT], true, name),
    def("local-name", 1, 1, &[NODE_OPT], true, local_name),
    def("namespace-uri", 1, 1, &[NODE_OPT], true, namespace_uri),
    def("node-name", 1, 1, &[NODE_OPT], true, node_name),
    def("root", 1, 1, &[NODE_OPT], true, root),
    def("has-children", 1, 1, &[NODE_OPT], true, has_children),
    def("innermost", 1, 1, &[NODE_MANY], false, innermost),
    def("outermost", 1, 1, &[NODE_MANY], false, outermost),
    def("path", 1, 1, &[NODE_OPT], true, path),
    def("generate-id", 1, 1, &[NODE_OPT], true, generate_id),
    def("lang", 2, 2, &[STR_OPT, NODE_ONE], true, lang),
    def("id", 2, 2, &[STR_MANY, NODE_ONE], true, id),
    def("element-with-id", 2, 2, &[STR_MANY, NODE_ONE], true, id),
    def("idref", 2, 2, &[STR_MANY, NODE_ONE], true, idref),
    def("document-uri", 1, 1, &[NODE_OPT], true, document_uri),
    def("base-uri", 1, 1, &[NODE_OPT], true, base_uri),
    def("nilled", 1, 1, &[NODE_OPT], true, nilled),
    def(
        "in-scope-prefixes",
        1,
        1,
        &[NODE_ONE],
        false,
        in_scope_prefixes,
    ),
    def(
        "namespace-uri-for-prefix",
        2,
        2,
        &[STR_OPT, NODE_ONE],
        false,
        namespace_uri_for_prefix,
    ),
    def(
        "resolve-QName",
        2,
        2,
        &[STR_OPT, NODE_ONE],
        false,
        resolve_qname,
    ),
    def("QName", 2, 2, &[STR_OPT, STR_ONE], false, qname),
    def(
        "prefix-from-QName",
        1,
        1,
        &[ATOMIC_OPT],
        false,
        prefix_from_qname,
    ),
    def(
        "local-name-from-QName",
        1,
        1,
        &[ATOMIC_OPT],
        false,
        local_name_from_qname,
    ),
    def(
        "namespace-uri-from-QName",
        1,
        1,
        &[ATOMIC_OPT],
        false,
        namespace_uri_from_qname,
    ),
    def("resolve-uri", 1, 2, &[STR_OPT, STR_ONE], false, resolve_uri),
    def("static-base-uri", 0, 0, &[], false, static_base_uri),
    def("doc", 1, 1, &[STR_OPT], false, doc),
    def("doc-available", 1, 1, &[STR_OPT], false, doc_available),
    def(
        "unparsed-text",
        1,
        2,
        &[STR_OPT, STR_ONE],
        false,
        unparsed_text,
    ),
    def(
        "unparsed-text-available",
        1,
        2,
        &[STR_OPT, STR_ONE],
        false,
        unparsed_text_available,
    ),
    def(
        "unparsed-text-lines",
        1,
        2,
        &[STR_OPT, STR_ONE],
        false,
        unparsed_text_lines,
    ),
    def(
        "error",
        0,
        3,
        &[ATOMIC_OPT, STR_ONE, ITEM_MANY],
        false,
        error,
    ),
    def("trace", 1, 2, &[ITEM_MANY, STR_ONE], false, trace),
    def("parse-xml", 1, 1, &[STR_OPT], false, parse_xml),
    def(
        "parse-xml-fragment",
        1,
        1,
        &[STR_OPT],
        false,
        parse_xml_fragment,
    ),
    def("serialize", 1, 2, &[ITEM_MANY, ITEM_OPT], false, serialize),
    def("json-to-xml", 1, 2, &[STR_OPT, MAP_ONE], false, json_to_xml),
    def(
        "xml-to-json",
        1,
        2,
        &[NODE_OPT, MAP_ONE],
        false,
        xml_to_json,
    ),
    def("parse-json", 1, 2, &[STR_OPT, MAP_ONE], false, parse_json),
    def("json-doc", 1, 2, &[STR_OPT, MAP_ONE], false, json_doc),
];

fn node_arg<'a>(args: &[Sequence<'a>], i: usize) -> Option<Node<'a>> {
    args.get(i)
        .and_then(Sequence::first)
        .and_then(Item::as_node)
}

fn s_arg<'s>(args: &'s [Sequence<'_>], i: usize) -> &'s str {
    args.get(i).map(str_or_empty).unwrap_or("")
}

fn any_uri<'a>(s: &str) -> Sequence<'a> {
    Sequence::atomic(Atomic::AnyUri(Arc::from(s)))
}

/// The name of a node as XPath sees it (`None` for unnamed kinds; a
/// namespace node's name is its prefix).
pub(crate) fn expanded_name<'a>(n: Node<'a>) -> Option<&'a QName> {
    match n.kind() {
        NodeKind::Element
        | NodeKind::Attribute
        | NodeKind::ProcessingInstruction
        | NodeKind::Namespace => n.name(),
        _ => None,
    }
}

fn name<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let s = node_arg(&args, 0)
        .and_then(expanded_name)
        .map(QName::lexical)
        .unwrap_or_default();
    Ok(Sequence::string(&s))
}

fn local_name<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let s = node_arg(&args, 0)
        .and_then(expanded_name)
        .map(|q| q.local.as_str())
        .unwrap_or("");
    Ok(Sequence::string(s))
}

fn namespace_uri<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let s = node_arg(&args, 0)
        .filter(|n| matches!(n.kind(), NodeKind::Element | NodeKind::Attribute))
        .and_then(|n| n.name())
        .map(|q| q.uri.as_str())
        .unwrap_or("");
    Ok(any_uri(s))
}

fn node_name<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(match node_arg(&args, 0).and_then(expanded_name) {
        Some(q) if !(q.local.is_empty() && q.uri.is_empty()) => {
            Sequence::atomic(Atomic::QName(Arc::new(q.clone())))
        }
        _ => Sequence::Empty,
    })
}

/// The root of the tree containing `n` (parentless ancestor-or-self).
fn top<'a>(n: Node<'a>) -> Node<'a> {
    let mut cur = n;
    while let Some(p) = cur.parent() {
        cur = p;
    }
    cur
}

fn root<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(node_arg(&args, 0)
        .map(|n| Sequence::One(Item::Node(top(n))))
        .unwrap_or_default())
}

fn has_children<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::boolean(
        node_arg(&args, 0).is_some_and(|n| n.first_child().is_some()),
    ))
}

/// The nodes of an argument in document order without duplicates.
fn sorted_nodes<'a>(s: &Sequence<'a>) -> Vec<Node<'a>> {
    let mut v: Vec<Node<'a>> = s.iter().filter_map(Item::as_node).collect();
    v.sort();
    v.dedup();
    v
}

fn innermost<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let v = sorted_nodes(&args[0]);
    // in document order, a node has a descendant in the set iff the next
    // node of the set lies in its subtree
    let keep: Vec<Node<'a>> = v
        .iter()
        .enumerate()
        .filter(|(i, n)| !v.get(i + 1).is_some_and(|next| n.contains(*next)))
        .map(|(_, n)| *n)
        .collect();
    Ok(Sequence::from_nodes(keep))
}

fn outermost<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let mut keep: Vec<Node<'a>> = Vec::new();
    for n in sorted_nodes(&args[0]) {
        if keep.last().is_some_and(|k| k.contains(n)) {
            continue;
        }
        keep.push(n);
    }
    Ok(Sequence::from_nodes(keep))
}

/// 1-based position among the preceding siblings that `same` accepts.
fn sibling_position(n: Node<'_>, same: impl Fn(Node<'_>) -> bool) -> usize {
    1 + n.preceding_siblings().filter(|s| same(*s)).count()
}

/// `fn:path`: a path of `Q{uri}local[n]` steps from the root.
pub fn node_path(n: Node<'_>) -> String {
    let mut steps: Vec<String> = Vec::new();
    let mut cur = n;
    let document_root = loop {
        match cur.kind() {
            NodeKind::Document => break true,
            NodeKind::Element => {
                let q = cur.name();
                let pos = sibling_position(cur, |s| s.kind() == NodeKind::Element && s.name() == q);
                let (uri, local) = q
                    .map(|q| (q.uri.as_str(), q.local.as_str()))
                    .unwrap_or(("", ""));
                steps.push(format!("Q{{{uri}}}{local}[{pos}]"));
            }
            NodeKind::Attribute => {
                let (uri, local) = cur
                    .name()
                    .map(|q| (q.uri.as_str(), q.local.as_str()))
                    .unwrap_or(("", ""));
                steps.push(if uri.is_empty() {
                    format!("@{local}")
                } else {
                    format!("@Q{{{uri}}}{local}")
                });
            }
            NodeKind::Text => {
                let pos = sibling_position(cur, |s| s.kind() == NodeKind::Text);
                steps.push(format!("text()[{pos}]"));
            }
            NodeKind::Comment => {
                let pos = sibling_position(cur, |s| s.kind() == NodeKind::Comment);
                steps.push(format!("comment()[{pos}]"));
            }
            NodeKind::ProcessingInstruction => {
                let target = cur.name().map(|q| q.local.as_str()).unwrap_or("");
                let pos = sibling_position(cur, |s| {
                    s.kind() == NodeKind::ProcessingInstruction
                        && s.name().map(|q| q.local.as_str()) == Some(target)
                });
                steps.push(format!("processing-instruction({target})[{pos}]"));
            }
            NodeKind::Namespace => {
                let prefix = cur.name().map(|q| q.local.as_str()).unwrap_or("");
                steps.push(if prefix.is_empty() {
                    format!("namespace::*[Q{{{FN}}}local-name()=\"\"]")
                } else {
                    format!("namespace::{prefix}")
                });
            }
        }
        match cur.parent() {
            Some(p) => cur = p,
            None => break false,
        }
    };
    steps.reverse();
    if document_root {
        format!("/{}", steps.join("/"))
    } else {
        // the parentless root itself is the first step we pushed last
        let rest: Vec<String> = steps.into_iter().skip(1).collect();
        let mut out = format!("Q{{{FN}}}root()");
        for s in rest {
            out.push('/');
            out.push_str(&s);
        }
        out
    }
}

fn path<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(match node_arg(&args, 0) {
        Some(n) => Sequence::string(&node_path(n)),
        None => Sequence::Empty,
    })
}

/// The `generate-id()` of a node.
pub fn node_id(n: Node<'_>) -> String {
    if n.ns != 0 {
        return format!("d{}n{}x{}", n.doc.id(), n.idx, n.ns);
    }
    format!("d{}n{}", n.doc.id(), n.idx)
}

fn generate_id<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::string(
        &node_arg(&args, 0).map(node_id).unwrap_or_default(),
    ))
}

fn lang<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let want = s_arg(&args, 0).to_lowercase();
    let Some(n) = node_arg(&args, 1) else {
        return Err(Error::no_context());
    };
    let mut cur = Some(n);
    while let Some(c) = cur {
        if let Some(v) = c.attribute(XML_NS, "lang") {
            let v = v.to_lowercase();
            let ok = v == want || (v.starts_with(&want) && v[want.len()..].starts_with('-'));
            return Ok(Sequence::boolean(ok));
        }
        cur = c.parent();
    }
    Ok(Sequence::boolean(false))
}

/// The whitespace-separated tokens of all strings of an argument.
fn id_tokens(s: &Sequence<'_>) -> std::collections::HashSet<String> {
    s.iter()
        .filter_map(|i| match i {
            Item::Atomic(a) => a.as_str().map(str::to_string),
            _ => None,
        })
        .flat_map(|s| {
            s.split_ascii_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn document_root_of<'a>(n: Node<'a>) -> Result<Node<'a>> {
    let r = top(n);
    if r.kind() != NodeKind::Document {
        return Err(Error::new(
            "FODC0001",
            "id()/idref() need a node in a tree whose root is a document node",
        ));
    }
    Ok(r)
}

fn id<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let wanted = id_tokens(&args[0]);
    let Some(n) = node_arg(&args, 1) else {
        return Err(Error::no_context());
    };
    let r = document_root_of(n)?;
    if wanted.is_empty() {
        return Ok(Sequence::Empty);
    }
    let mut out = Vec::new();
    let mut found = std::collections::HashSet::new();
    for e in r.descendants().filter(|d| d.kind() == NodeKind::Element) {
        let v = e.attribute(XML_NS, "id").or_else(|| e.attribute("", "id"));
        if let Some(v) = v {
            let v = v.trim();
            // the first element with a given ID wins
            if wanted.contains(v) && found.insert(v.to_string()) {
                out.push(e);
            }
        }
    }
    Ok(Sequence::from_nodes(out))
}

fn idref<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let wanted = id_tokens(&args[0]);
    let Some(n) = node_arg(&args, 1) else {
        return Err(Error::no_context());
    };
    let r = document_root_of(n)?;
    if wanted.is_empty() {
        return Ok(Sequence::Empty);
    }
    let mut out = Vec::new();
    for e in r.descendants().filter(|d| d.kind() == NodeKind::Element) {
        for a in e.attributes() {
            let is_ref = a
                .name()
                .is_some_and(|q| q.uri.is_empty() && (q.local == "idref" || q.local == "idrefs"));
            if is_ref
                && a.string_value()
                    .split_ascii_whitespace()
                    .any(|t| wanted.contains(t))
            {
                out.push(a);
            }
        }
    }
    Ok(Sequence::from_nodes(out))
}

fn document_uri<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(match node_arg(&args, 0) {
        Some(n) if n.kind() == NodeKind::Document && !n.doc.temporary => match &n.doc.uri {
            Some(u) => any_uri(u),
            None => Sequence::Empty,
        },
        _ => Sequence::Empty,
    })
}

fn base_uri<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(match node_arg(&args, 0).and_then(|n| n.base_uri()) {
        Some(u) => any_uri(&u),
        None => Sequence::Empty,
    })
}

fn nilled<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(match node_arg(&args, 0) {
        Some(n) if n.kind() == NodeKind::Element => Sequence::boolean(false),
        _ => Sequence::Empty,
    })
}

fn element_arg<'a>(args: &[Sequence<'a>], i: usize) -> Result<Node<'a>> {
    match node_arg(args, i) {
        Some(n) if n.kind() == NodeKind::Element => Ok(n),
        _ => Err(Error::type_error("an element node is required")),
    }
}

fn in_scope_prefixes<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let e = element_arg(&args, 0)?;
    Ok(e.in_scope_namespaces()
        .into_iter()
        .map(|(p, _)| Item::Atomic(Atomic::string(p)))
        .collect())
}

fn lookup_prefix<'a>(e: Node<'a>, prefix: &str) -> Option<&'a str> {
    e.in_scope_namespaces()
        .into_iter()
        .find(|(p, u)| *p == prefix && !u.is_empty())
        .map(|(_, u)| u)
}

fn namespace_uri_for_prefix<'a>(
    _: &mut Eval<'a, '_>,
    args: Vec<Sequence<'a>>,
) -> Result<Sequence<'a>> {
    let prefix = s_arg(&args, 0);
    let e = element_arg(&args, 1)?;
    Ok(lookup_prefix(e, prefix).map(any_uri).unwrap_or_default())
}

/// Is `s` an NCName (XML names without colons; approximated with Unicode
/// alphanumerics beyond ASCII)?
pub(crate) fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let start_ok = |c: char| c == '_' || c.is_alphabetic();
    start_ok(first)
        && chars.all(|c| {
            start_ok(c)
                || c.is_alphanumeric()
                || matches!(c, '-' | '.' | '\u{B7}')
                || (!c.is_ascii() && !c.is_whitespace())
        })
}

/// Splits a lexical QName into (prefix, local); FOCA0002 if malformed.
fn split_qname(s: &str) -> Result<(&str, &str)> {
    let t = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    let (p, l) = match t.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", t),
    };
    if (!p.is_empty() && !is_ncname(p)) || !is_ncname(l) {
        return Err(Error::new(
            "FOCA0002",
            format!("\"{s}\" is not a valid lexical QName"),
        ));
    }
    Ok((p, l))
}

fn resolve_qname<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let Some(lexical) = opt_str(&args[0]) else {
        return Ok(Sequence::Empty);
    };
    let (prefix, local) = split_qname(lexical)?;
    let e = element_arg(&args, 1)?;
    let uri = match lookup_prefix(e, prefix) {
        Some(u) => u,
        None if prefix.is_empty() => "",
        None => {
            return Err(Error::new(
                "FONS0004",
                format!("no namespace is bound to the prefix \"{prefix}\""),
            ))
        }
    };
    Ok(Sequence::atomic(Atomic::QName(Arc::new(QName::new(
        uri, local, prefix,
    )))))
}

fn qname<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let uri = s_arg(&args, 0);
    let (prefix, local) = split_qname(s_arg(&args, 1))?;
    if !prefix.is_empty() && uri.is_empty() {
        return Err(Error::new(
            "FOCA0002",
            format!("the prefix \"{prefix}\" needs a namespace URI"),
        ));
    }
    Ok(Sequence::atomic(Atomic::QName(Arc::new(QName::new(
        uri, local, prefix,
    )))))
}

fn qname_arg(args: &[Sequence<'_>]) -> Result<Option<Arc<QName>>> {
    match super::opt_atomic(&args[0]) {
        None => Ok(None),
        Some(Atomic::QName(q)) => Ok(Some(q.clone())),
        Some(other) => Err(Error::type_error(format!(
            "expected an xs:QName, got {:?}",
            other.type_of()
        ))),
    }
}

fn prefix_from_qname<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(match qname_arg(&args)? {
        Some(q) if !q.prefix.is_empty() => Sequence::string(&q.prefix),
        _ => Sequence::Empty,
    })
}

fn local_name_from_qname<'a>(
    _: &mut Eval<'a, '_>,
    args: Vec<Sequence<'a>>,
) -> Result<Sequence<'a>> {
    Ok(qname_arg(&args)?
        .map(|q| Sequence::string(&q.local))
        .unwrap_or_default())
}

fn namespace_uri_from_qname<'a>(
    _: &mut Eval<'a, '_>,
    args: Vec<Sequence<'a>>,
) -> Result<Sequence<'a>> {
    Ok(qname_arg(&args)?
        .map(|q| any_uri(&q.uri))
        .unwrap_or_default())
}

fn has_scheme(s: &str) -> bool {
    match s.find(':') {
        Some(i) if i > 0 => {
            let scheme = &s[..i];
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        _ => false,
    }
}

/// Resolves `rel` against the explicit base or the static base URI.
fn resolve_against(ev: &Eval<'_, '_>, rel: &str, base: Option<&str>) -> Result<String> {
    // a URI reference has at most one fragment separator
    if let Some(bad) = [Some(rel), base]
        .into_iter()
        .flatten()
        .find(|u| u.matches('#').count() > 1)
    {
        return Err(Error::new(
            "FORG0002",
            format!("\"{bad}\" is not a valid URI reference"),
        ));
    }
    if has_scheme(rel) {
        return Ok(rel.to_string());
    }
    let base = match base {
        Some(b) => b.to_string(),
        None => match static_base(ev) {
            Some(b) => b.to_string(),
            None => {
                return Err(Error::new(
                    "FONS0005",
                    format!("cannot resolve the relative URI \"{rel}\": no base URI is known"),
                ))
            }
        },
    };
    if !has_scheme(&base) {
        return Err(Error::new(
            "FORG0002",
            format!("the base URI \"{base}\" is not absolute"),
        ));
    }
    Ok(crate::tree::resolve_uri(rel, &base))
}

fn resolve_uri<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let Some(rel) = opt_str(&args[0]) else {
        return Ok(Sequence::Empty);
    };
    let base = if args.len() > 1 {
        Some(s_arg(&args, 1))
    } else {
        None
    };
    Ok(any_uri(&resolve_against(ev, rel, base)?))
}

/// The static base URI: the host's for the current expression, else the
/// environment's.
fn static_base<'e>(ev: &'e Eval<'_, '_>) -> Option<&'e str> {
    ev.host.static_base_uri().or(ev.env.base_uri.as_deref())
}

fn static_base_uri<'a>(ev: &mut Eval<'a, '_>, _: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(static_base(ev).map(any_uri).unwrap_or_default())
}

/// A document/resource URI resolved against the static base when there
/// is one (left alone otherwise: the host decides what it means).
fn resource_uri(ev: &Eval<'_, '_>, uri: &str) -> String {
    if has_scheme(uri) || ev.env.base_uri.is_none() {
        return uri.to_string();
    }
    resolve_against(ev, uri, None).unwrap_or_else(|_| uri.to_string())
}

fn doc<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let Some(uri) = opt_str(&args[0]) else {
        return Ok(Sequence::Empty);
    };
    let uri = resource_uri(ev, uri);
    let d = ev.host.document(&uri)?;
    Ok(Sequence::One(Item::Node(d.root())))
}

fn doc_available<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let Some(uri) = opt_str(&args[0]) else {
        return Ok(Sequence::boolean(false));
    };
    let uri = resource_uri(ev, uri);
    Ok(Sequence::boolean(ev.host.document(&uri).is_ok()))
}

fn fetch_text(ev: &mut Eval<'_, '_>, args: &[Sequence<'_>]) -> Result<Option<String>> {
    let Some(uri) = opt_str(&args[0]) else {
        return Ok(None);
    };
    let uri = resource_uri(ev, uri);
    ev.host.unparsed_text(&uri).map(Some)
}

fn unparsed_text<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(fetch_text(ev, &args)?
        .map(|t| Sequence::string(&t))
        .unwrap_or_default())
}

fn unparsed_text_available<'a>(
    ev: &mut Eval<'a, '_>,
    args: Vec<Sequence<'a>>,
) -> Result<Sequence<'a>> {
    Ok(Sequence::boolean(matches!(
        fetch_text(ev, &args),
        Ok(Some(_))
    )))
}

/// Splits text into lines at `\n`, `\r\n` or `\r`; a final line
/// terminator does not start an empty line.
fn split_lines(t: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let b = t.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' => {
                lines.push(&t[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&t[start..i]);
                if b.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < t.len() {
        lines.push(&t[start..]);
    }
    lines
}

fn unparsed_text_lines<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(match fetch_text(ev, &args)? {
        Some(t) => split_lines(&t)
            .into_iter()
            .map(|l| Item::Atomic(Atomic::string(l)))
            .collect(),
        None => Sequence::Empty,
    })
}

fn error<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let code = match args.first().and_then(super::opt_atomic) {
        Some(Atomic::QName(q)) => q.local.clone(),
        Some(a) if a.is_stringlike() => a.to_xs_string(),
        _ => "FOER0000".to_string(),
    };
    let message = match args.get(1) {
        Some(d) => str_or_empty(d).to_string(),
        None => "error() was called".to_string(),
    };
    Err(Error::new(code, message))
}

fn trace<'a>(_: &mut Eval<'a, '_>, mut args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    args.truncate(1);
    Ok(args.pop().unwrap_or_default())
}

fn parse_error(e: crate::tree::ParseError) -> Error {
    Error::new("FODC0006", format!("parse-xml: {e}"))
}

fn parse_xml<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let Some(text) = opt_str(&args[0]) else {
        return Ok(Sequence::Empty);
    };
    let options = ParseOptions {
        uri: ev.env.base_uri.clone(),
        ..ParseOptions::default()
    };
    let d = Document::parse_str(text, &options).map_err(parse_error)?;
    let d = ev.alloc_document(d);
    Ok(Sequence::One(Item::Node(d.root())))
}

fn parse_xml_fragment<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let Some(text) = opt_str(&args[0]) else {
        return Ok(Sequence::Empty);
    };
    // an external parsed entity may start with a text declaration
    let body = match text.strip_prefix("<?xml") {
        Some(rest) if rest.starts_with([' ', '\t', '\n', '\r']) => match rest.find("?>") {
            Some(i) => &rest[i + 2..],
            None => {
                return Err(Error::new(
                    "FODC0006",
                    "parse-xml-fragment: unterminated text declaration",
                ))
            }
        },
        _ => text,
    };
    let wrapped = format!("<fragment-wrapper>{body}</fragment-wrapper>");
    let parsed = Document::parse_str(&wrapped, &ParseOptions::default()).map_err(parse_error)?;
    let mut b = Builder::new_document(ev.env.base_uri.clone());
    if let Some(w) = parsed.root().first_child() {
        for child in w.children() {
            b.copy(child, true)
                .map_err(|e| Error::new(e.code(), e.to_string()))?;
        }
    }
    let d = ev.alloc_document(b.finish());
    Ok(Sequence::One(Item::Node(d.root())))
}

// ---------------------------------------------------------------------------
// Serialization

fn escape_into(out: &mut String, s: &str, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\t' if attr => out.push_str("&#9;"),
            '\n' if attr => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Serializes a node as XML (namespace declarations in scope at the top
/// element are written there). Iterative: no recursion on depth.
pub fn serialize_node(n: Node<'_>, out: &mut String) -> Result<()> {
    match n.kind() {
        NodeKind::Attribute | NodeKind::Namespace => {
            return Err(Error::new(
                "SENR0001",
                "an attribute or namespace node cannot be serialized on its own",
            ))
        }
        _ => {}
    }
    // (node, closing?) pairs
    let mut stack: Vec<(Node<'_>, bool)> = vec![(n, false)];
    while let Some((cur, closing)) = stack.pop() {
        if closing {
            if let Some(q) = cur.name() {
                out.push_str("</");
                out.push_str(&q.lexical());
                out.push('>');
            }
            continue;
        }
        match cur.kind() {
            NodeKind::Document => {
                let kids: Vec<_> = cur.children().collect();
                stack.extend(kids.into_iter().rev().map(|k| (k, false)));
            }
            NodeKind::Element => {
                let q = cur.name().map(QName::lexical).unwrap_or_default();
                out.push('<');
                out.push_str(&q);
                let decls: Vec<(&str, &str)> = if cur == n {
                    cur.in_scope_namespaces()
                        .into_iter()
                        .filter(|(p, _)| *p != "xml")
                        .collect()
                } else {
                    cur.namespace_decls().collect()
                };
                for (p, u) in decls {
                    if p.is_empty() {
                        out.push_str(" xmlns=\"");
                    } else {
                        out.push_str(" xmlns:");
                        out.push_str(p);
                        out.push_str("=\"");
                    }
                    escape_into(out, u, true);
                    out.push('"');
                }
                for a in cur.attributes() {
                    out.push(' ');
                    out.push_str(&a.name().map(QName::lexical).unwrap_or_default());
                    out.push_str("=\"");
                    escape_into(out, a.string_value(), true);
                    out.push('"');
                }
                if cur.first_child().is_none() {
                    out.push_str("/>");
                } else {
                    out.push('>');
                    stack.push((cur, true));
                    let kids: Vec<_> = cur.children().collect();
                    stack.extend(kids.into_iter().rev().map(|k| (k, false)));
                }
            }
            NodeKind::Text => escape_into(out, cur.string_value(), false),
            NodeKind::Comment => {
                out.push_str("<!--");
                out.push_str(cur.string_value());
                out.push_str("-->");
            }
            NodeKind::ProcessingInstruction => {
                out.push_str("<?");
                out.push_str(cur.name().map(|q| q.local.as_str()).unwrap_or(""));
                let data = cur.string_value();
                if !data.is_empty() {
                    out.push(' ');
                    out.push_str(data);
                }
                out.push_str("?>");
            }
            NodeKind::Attribute | NodeKind::Namespace => {}
        }
    }
    Ok(())
}

fn map_get<'m, 'a>(m: &'m Map<'a>, key: &str) -> Option<&'m Sequence<'a>> {
    m.entries.get(&MapKey::Str(Arc::from(key))).map(|(_, v)| v)
}

fn option_str(m: Option<&Map<'_>>, key: &str) -> Option<String> {
    let v = map_get(m?, key)?;
    match v.first() {
        Some(Item::Atomic(a)) => Some(a.to_xs_string()),
        _ => None,
    }
}

fn option_bool(m: Option<&Map<'_>>, key: &str) -> Result<Option<bool>> {
    let Some(v) = m.and_then(|m| map_get(m, key)) else {
        return Ok(None);
    };
    match v.first() {
        Some(Item::Atomic(Atomic::Boolean(b))) => Ok(Some(*b)),
        Some(Item::Atomic(a)) if a.as_str() == Some("yes") || a.as_str() == Some("true") => {
            Ok(Some(true))
        }
        Some(Item::Atomic(a)) if a.as_str() == Some("no") || a.as_str() == Some("false") => {
            Ok(Some(false))
        }
        _ => Err(Error::type_error(format!(
            "option \"{key}\" must be a boolean"
        ))),
    }
}

fn serialize<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let params: Option<Rc<Map<'a>>> = match args.get(1).and_then(Sequence::first) {
        Some(Item::Map(m)) => Some(m.clone()),
        _ => None,
    };
    let pm = params.as_deref();
    let method = option_str(pm, "method").unwrap_or_else(|| "xml".to_string());
    let mut out = String::new();
    match method.as_str() {
        "xml" | "html" | "xhtml" => {
            if option_bool(pm, "omit-xml-declaration")? == Some(false) && method == "xml" {
                out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            }
            let mut prev_atomic = false;
            for item in args[0].iter() {
                match item {
                    Item::Node(n) => {
                        serialize_node(*n, &mut out)?;
                        prev_atomic = false;
                    }
                    Item::Atomic(a) => {
                        if prev_atomic {
                            out.push(' ');
                        }
                        escape_into(&mut out, &ev.atomic_string(a), false);
                        prev_atomic = true;
                    }
                    Item::Array(_) => {
                        for a in super::seq::atomize(&Sequence::One(item.clone()))? {
                            if prev_atomic {
                                out.push(' ');
                            }
                            escape_into(&mut out, &ev.atomic_string(&a), false);
                            prev_atomic = true;
                        }
                    }
                    _ => {
                        return Err(Error::new(
                            "SENR0001",
                            "maps and functions cannot be serialized as XML",
                        ))
                    }
                }
            }
        }
        "text" => {
            let mut prev_atomic = false;
            for item in args[0].iter() {
                let atomic = matches!(item, Item::Atomic(_));
                if atomic && prev_atomic {
                    out.push(' ');
                }
                out.push_str(&ev.item_string(item)?);
                prev_atomic = atomic;
            }
        }
        "json" => {
            out = serialize_json(&args[0], ev)?;
        }
        other => {
            return Err(Error::new(
                "SEPM0016",
                format!("serialization method \"{other}\" is not supported"),
            ))
        }
    }
    Ok(Sequence::string(&out))
}

/// JSON output method for maps, arrays and atomic values (strings,
/// numbers, booleans; nodes as their serialized XML string).
fn serialize_json(seq: &Sequence<'_>, ev: &Eval<'_, '_>) -> Result<String> {
    fn value(seq: &Sequence<'_>, ev: &Eval<'_, '_>, depth: usize) -> Result<serde_json::Value> {
        if depth > 200 {
            return Err(Error::new("SERE0023", "JSON output nested too deeply"));
        }
        match seq.items() {
            [] => Ok(serde_json::Value::Null),
            [one] => item(one, ev, depth),
            _ => Err(Error::new(
                "SERE0023",
                "a sequence of several items cannot be serialized as JSON",
            )),
        }
    }
    fn item(it: &Item<'_>, ev: &Eval<'_, '_>, depth: usize) -> Result<serde_json::Value> {
        Ok(match it {
            Item::Atomic(Atomic::Boolean(b)) => serde_json::Value::Bool(*b),
            Item::Atomic(Atomic::Integer(i)) => serde_json::Value::Number((*i).into()),
            Item::Atomic(a) if a.is_numeric() => {
                let f = a.to_number();
                match serde_json::Number::from_f64(f) {
                    Some(n) if f.fract() != 0.0 => serde_json::Value::Number(n),
                    Some(_) if f.abs() < 9.0e15 => {
                        serde_json::Value::Number(serde_json::Number::from(f as i64))
                    }
                    Some(n) => serde_json::Value::Number(n),
                    None => {
                        return Err(Error::new(
                            "SERE0020",
                            "NaN or INF cannot be serialized as JSON",
                        ))
                    }
                }
            }
            Item::Atomic(a) => serde_json::Value::String(ev.atomic_string(a)),
            Item::Node(n) => {
                let mut s = String::new();
                serialize_node(*n, &mut s)?;
                serde_json::Value::String(s)
            }
            Item::Array(a) => serde_json::Value::Array(
                a.members
                    .iter()
                    .map(|m| value(m, ev, depth + 1))
                    .collect::<Result<Vec<_>>>()?,
            ),
            Item::Map(m) => {
                let mut o = serde_json::Map::new();
                for (k, v) in m.entries.values() {
                    o.insert(k.to_xs_string(), value(v, ev, depth + 1)?);
                }
                serde_json::Value::Object(o)
            }
            Item::Function(_) => {
                return Err(Error::new(
                    "SERE0021",
                    "a function cannot be serialized as JSON",
                ))
            }
        })
    }
    let v = value(seq, ev, 0)?;
    // Serialization 3.1 §10 (bug 29665) escapes the solidus; "/" can only
    // occur inside JSON strings, so a plain replacement is exact.
    serde_json::to_string(&v)
        .map(|s| s.replace('/', "\\/"))
        .map_err(|e| Error::new("SERE0020", e.to_string()))
}

// ---------------------------------------------------------------------------
// JSON

/// A boolean option of the JSON functions, by the XPath 3.1 option
/// conventions: exactly one `xs:boolean` (an untyped value is cast),
/// anything else is XPTY0004.
fn json_option_bool(m: Option<&Map<'_>>, key: &str) -> Result<Option<bool>> {
    let Some(v) = m.and_then(|m| map_get(m, key)) else {
        return Ok(None);
    };
    let bad = || Error::type_error(format!("option \"{key}\" must be a single xs:boolean"));
    if v.len() != 1 {
        return Err(bad());
    }
    match v.first() {
        Some(Item::Atomic(Atomic::Boolean(b))) => Ok(Some(*b)),
        Some(Item::Atomic(Atomic::Untyped(s))) => match s.trim() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(Error::invalid_value(format!(
                "option \"{key}\": '{s}' is not a valid xs:boolean"
            ))),
        },
        _ => Err(bad()),
    }
}

fn json_options(m: Option<&Map<'_>>, for_parse_json: bool) -> Result<(JsonOptions, bool)> {
    let mut o = JsonOptions::default();
    json_option_bool(m, "validate")?;
    if let Some(f) = m.and_then(|m| map_get(m, "fallback")) {
        if f.len() != 1
            || !matches!(
                f.first(),
                Some(Item::Function(_) | Item::Map(_) | Item::Array(_))
            )
        {
            return Err(Error::type_error(
                "option \"fallback\" must be a single function(xs:string) as xs:string",
            ));
        }
    }
    if json_option_bool(m, "liberal")? == Some(true) {
        return Err(Error::new(
            "FOJS0001",
            "liberal JSON parsing is not supported",
        ));
    }
    o.escape = json_option_bool(m, "escape")?.unwrap_or(false);
    let mut use_last = false;
    match option_str(m, "duplicates").as_deref() {
        None => {
            o.duplicates = if for_parse_json {
                Duplicates::UseFirst
            } else {
                Duplicates::Retain
            };
        }
        Some("reject") => o.duplicates = Duplicates::Reject,
        Some("use-first") => o.duplicates = Duplicates::UseFirst,
        Some("retain") if !for_parse_json => o.duplicates = Duplicates::Retain,
        Some("use-last") if for_parse_json => {
            o.duplicates = Duplicates::Retain;
            use_last = true;
        }
        Some(other) => {
            return Err(Error::new(
                "FOJS0005",
                format!("invalid value \"{other}\" for the duplicates option"),
            ))
        }
    }
    Ok((o, use_last))
}

fn map_arg<'a>(args: &[Sequence<'a>], i: usize) -> Option<Rc<Map<'a>>> {
    match args.get(i).and_then(Sequence::first) {
        Some(Item::Map(m)) => Some(m.clone()),
        _ => None,
    }
}

fn json_to_xml<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let Some(text) = opt_str(&args[0]) else {
        return Ok(Sequence::Empty);
    };
    let m = map_arg(&args, 1);
    let (options, _) = json_options(m.as_deref(), false)?;
    let d = json_tree(text, &options)?;
    let d = ev.alloc_document(d);
    Ok(Sequence::One(Item::Node(d.root())))
}

fn xml_to_json<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(match node_arg(&args, 0) {
        Some(n) => Sequence::string(&json_text(n)?),
        None => Sequence::Empty,
    })
}

/// Converts a `json-to-xml` element to maps/arrays/atomics. Depth is
/// bounded by the JSON nesting limit of [`JsonOptions`].
fn xml_to_value<'a>(e: Node<'_>, use_last: bool) -> Result<Sequence<'a>> {
    let local = e.name().map(|q| q.local.as_str()).unwrap_or("");
    let elements = || e.children().filter(|c| c.kind() == NodeKind::Element);
    Ok(match local {
        "map" => {
            let mut map = Map::default();
            for c in elements() {
                let key = c.attribute("", "key").unwrap_or("");
                let k = MapKey::Str(Arc::from(key));
                if !use_last && map.entries.contains_key(&k) {
                    continue;
                }
                let v = xml_to_value(c, use_last)?;
                map.entries.insert(k, (Atomic::string(key), v));
            }
            Sequence::One(Item::Map(Rc::new(map)))
        }
        "array" => {
            let members = elements()
                .map(|c| xml_to_value(c, use_last))
                .collect::<Result<Vec<_>>>()?;
            Sequence::One(Item::Array(Rc::new(Array { members })))
        }
        "string" => Sequence::string(e.string_value()),
        "number" => {
            Sequence::double(crate::value::parse_double(e.string_value()).unwrap_or(f64::NAN))
        }
        "boolean" => Sequence::boolean(e.string_value().trim() == "true"),
        _ => Sequence::Empty,
    })
}

fn parse_json_text<'a>(text: &str, m: Option<&Map<'_>>) -> Result<Sequence<'a>> {
    let (options, use_last) = json_options(m, true)?;
    let d = json_tree(text, &options)?;
    let Some(top) = d.root().children().find(|c| c.kind() == NodeKind::Element) else {
        return Ok(Sequence::Empty);
    };
    xml_to_value(top, use_last)
}

fn parse_json<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let Some(text) = opt_str(&args[0]) else {
        return Ok(Sequence::Empty);
    };
    let m = map_arg(&args, 1);
    parse_json_text(text, m.as_deref())
}

fn json_doc<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let Some(text) = fetch_text(ev, &args[..1])? else {
        return Ok(Sequence::Empty);
    };
    let m = map_arg(&args, 1);
    parse_json_text(&text, m.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{DocArena, Env, Host, NoHost};
    use crate::functions::Impl;

    fn show(s: &Sequence<'_>) -> String {
        s.iter()
            .map(|i| match i {
                Item::Atomic(a) => a.to_xs_string(),
                Item::Node(n) => format!("node:{}", node_path(*n)),
                Item::Map(m) => format!("map:{}", m.entries.len()),
                Item::Array(a) => format!("array:{}", a.members.len()),
                Item::Function(_) => "fn".into(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs `f` on a parsed document: `args` builds the arguments from
    /// the document's root.
    fn with_doc(
        xml: &str,
        f: Impl,
        args: impl for<'a> Fn(Node<'a>) -> Vec<Sequence<'a>>,
    ) -> Result<String> {
        let arena = DocArena::new();
        let d = arena.alloc(Document::parse_str(xml, &ParseOptions::default()).unwrap());
        let env = Env::new(&arena);
        let mut host = NoHost;
        let mut ev = Eval {
            env: &env,
            host: &mut host,
            locals: vec![],
            xpath1: false,
        };
        let r = f(&mut ev, args(d.root()))?;
        Ok(show(&r))
    }

    fn run(f: Impl, args: Vec<Sequence<'static>>) -> Result<String> {
        let arena = DocArena::new();
        let env = Env::new(&arena);
        let mut host = NoHost;
        let mut ev = Eval {
            env: &env,
            host: &mut host,
            locals: vec![],
            xpath1: false,
        };
        let r = f(&mut ev, args)?;
        Ok(show(&r))
    }

    fn el<'a>(root: Node<'a>, local: &str) -> Node<'a> {
        root.descendants()
            .find(|n| n.name().is_some_and(|q| q.local == local))
            .unwrap()
    }

    fn one(n: Node<'_>) -> Sequence<'_> {
        Sequence::One(Item::Node(n))
    }

    const XML: &str = "<r xmlns:p='urn:p' xml:lang='en-GB'><p:a x='1'>t</p:a><b id='k1'/><b xml:id='k2'><!--c--></b>text</r>";

    #[test]
    fn names() {
        assert_eq!(
            with_doc(XML, name, |r| vec![one(el(r, "a"))]).unwrap(),
            "p:a"
        );
        assert_eq!(
            with_doc(XML, local_name, |r| vec![one(el(r, "a"))]).unwrap(),
            "a"
        );
        assert_eq!(
            with_doc(XML, namespace_uri, |r| vec![one(el(r, "a"))]).unwrap(),
            "urn:p"
        );
        assert_eq!(with_doc(XML, name, |r| vec![one(r)]).unwrap(), "");
        assert_eq!(with_doc(XML, node_name, |r| vec![one(r)]).unwrap(), "");
        assert_eq!(
            with_doc(XML, node_name, |r| vec![one(el(r, "a"))]).unwrap(),
            "p:a"
        );
        assert_eq!(
            with_doc(XML, in_scope_prefixes, |r| vec![one(el(r, "a"))]).unwrap(),
            "p,xml"
        );
        assert_eq!(
            with_doc(XML, namespace_uri_for_prefix, |r| vec![
                Sequence::string("p"),
                one(el(r, "b"))
            ])
            .unwrap(),
            "urn:p"
        );
        assert_eq!(
            with_doc(XML, resolve_qname, |r| vec![
                Sequence::string("p:z"),
                one(el(r, "b"))
            ])
            .unwrap(),
            "p:z"
        );
        assert_eq!(
            with_doc(XML, resolve_qname, |r| vec![
                Sequence::string("q:z"),
                one(el(r, "b"))
            ])
            .unwrap_err()
            .code,
            "FONS0004"
        );
    }

    #[test]
    fn structure() {
        assert_eq!(
            with_doc(XML, path, |r| vec![one(el(r, "a"))]).unwrap(),
            "/Q{}r[1]/Q{urn:p}a[1]"
        );
        assert_eq!(
            with_doc(XML, path, |r| vec![one(el(r, "b").next_sibling().unwrap())]).unwrap(),
            "/Q{}r[1]/Q{}b[2]"
        );
        assert_eq!(
            with_doc(XML, path, |r| vec![one(el(r, "a")
                .attributes()
                .next()
                .unwrap())])
            .unwrap(),
            "/Q{}r[1]/Q{urn:p}a[1]/@x"
        );
        assert_eq!(with_doc(XML, path, |r| vec![one(r)]).unwrap(), "/");
        assert_eq!(
            with_doc(XML, has_children, |r| vec![one(el(r, "b"))]).unwrap(),
            "false"
        );
        assert_eq!(
            with_doc(XML, root, |r| vec![one(el(r, "a"))]).unwrap(),
            "node:/"
        );
        let gid = with_doc(XML, generate_id, |r| vec![one(el(r, "a"))]).unwrap();
        assert!(is_ncname(&gid), "{gid}");
        assert_eq!(
            with_doc(XML, innermost, |r| vec![Sequence::from_nodes(vec![
                r,
                el(r, "a"),
                el(r, "r")
            ])])
            .unwrap(),
            "node:/Q{}r[1]/Q{urn:p}a[1]"
        );
        assert_eq!(
            with_doc(XML, outermost, |r| vec![Sequence::from_nodes(vec![
                el(r, "a"),
                el(r, "r")
            ])])
            .unwrap(),
            "node:/Q{}r[1]"
        );
        assert_eq!(
            with_doc(XML, lang, |r| vec![Sequence::string("en"), one(el(r, "a"))]).unwrap(),
            "true"
        );
        assert_eq!(
            with_doc(XML, lang, |r| vec![Sequence::string("de"), one(el(r, "a"))]).unwrap(),
            "false"
        );
        assert_eq!(
            with_doc(XML, id, |r| vec![Sequence::string("k2 k1 zz"), one(r)]).unwrap(),
            "node:/Q{}r[1]/Q{}b[1],node:/Q{}r[1]/Q{}b[2]"
        );
    }

    #[test]
    fn qnames_and_uris() {
        assert_eq!(
            run(
                qname,
                vec![Sequence::string("urn:x"), Sequence::string("p:l")]
            )
            .unwrap(),
            "p:l"
        );
        assert_eq!(
            run(qname, vec![Sequence::string(""), Sequence::string("p:l")])
                .unwrap_err()
                .code,
            "FOCA0002"
        );
        assert_eq!(
            run(qname, vec![Sequence::string(""), Sequence::string("1x")])
                .unwrap_err()
                .code,
            "FOCA0002"
        );
        let q = Sequence::atomic(Atomic::QName(Arc::new(QName::new("urn:x", "l", "p"))));
        assert_eq!(run(prefix_from_qname, vec![q.clone()]).unwrap(), "p");
        assert_eq!(run(local_name_from_qname, vec![q.clone()]).unwrap(), "l");
        assert_eq!(run(namespace_uri_from_qname, vec![q]).unwrap(), "urn:x");
        assert_eq!(
            run(
                resolve_uri,
                vec![Sequence::string("c/d"), Sequence::string("http://x/a/b")]
            )
            .unwrap(),
            "http://x/a/c/d"
        );
        assert_eq!(
            run(resolve_uri, vec![Sequence::string("c")])
                .unwrap_err()
                .code,
            "FONS0005"
        );
        assert_eq!(
            run(resolve_uri, vec![Sequence::string("urn:abs")]).unwrap(),
            "urn:abs"
        );
        assert_eq!(run(static_base_uri, vec![]).unwrap(), "");
    }

    #[test]
    fn errors_trace_and_resources() {
        let e = run(error, vec![]).unwrap_err();
        assert_eq!(e.code, "FOER0000");
        let q = Sequence::atomic(Atomic::QName(Arc::new(QName::new("urn:x", "MYERR", "p"))));
        let e = run(error, vec![q, Sequence::string("boom")]).unwrap_err();
        assert_eq!((e.code.as_str(), e.message.as_str()), ("MYERR", "boom"));
        assert_eq!(
            run(trace, vec![Sequence::integer(3), Sequence::string("x")]).unwrap(),
            "3"
        );
        assert_eq!(
            run(doc_available, vec![Sequence::string("a.xml")]).unwrap(),
            "false"
        );
        assert_eq!(
            run(doc, vec![Sequence::string("a.xml")]).unwrap_err().code,
            "FODC0002"
        );
        assert_eq!(
            split_lines("a\r\nb\rc\n\nd\n"),
            vec!["a", "b", "c", "", "d"]
        );
    }

    struct TextHost;
    impl<'a> Host<'a> for TextHost {
        fn variable(&mut self, id: u32) -> Result<Sequence<'a>> {
            Err(Error::new("XPST0008", format!("no variable {id}")))
        }
        fn unparsed_text(&mut self, uri: &str) -> Result<String> {
            Ok(format!("line1\n{uri}\n"))
        }
    }

    #[test]
    fn unparsed_text_via_host() {
        let arena = DocArena::new();
        let env = Env::new(&arena);
        let mut host = TextHost;
        let mut ev = Eval {
            env: &env,
            host: &mut host,
            locals: vec![],
            xpath1: false,
        };
        let r = unparsed_text_lines(&mut ev, vec![Sequence::string("u")]).unwrap();
        assert_eq!(show(&r), "line1,u");
        let r = unparsed_text_available(&mut ev, vec![Sequence::string("u")]).unwrap();
        assert_eq!(show(&r), "true");
    }

    #[test]
    fn parse_and_serialize() {
        let arena = DocArena::new();
        let env = Env::new(&arena);
        let mut host = NoHost;
        let mut ev = Eval {
            env: &env,
            host: &mut host,
            locals: vec![],
            xpath1: false,
        };
        let d = parse_xml(
            &mut ev,
            vec![Sequence::string(
                "<a xmlns='urn:d' k='&lt;&quot;'><b>x &amp; y</b><c/><!--n--></a>",
            )],
        )
        .unwrap();
        let s = serialize(&mut ev, vec![d]).unwrap();
        assert_eq!(
            show(&s),
            "<a xmlns=\"urn:d\" k=\"&lt;&quot;\"><b>x &amp; y</b><c/><!--n--></a>"
        );
        let f = parse_xml_fragment(
            &mut ev,
            vec![Sequence::string("<?xml version='1.0'?>t<e/>u")],
        )
        .unwrap();
        assert_eq!(show(&serialize(&mut ev, vec![f]).unwrap()), "t<e/>u");
        assert_eq!(
            parse_xml(&mut ev, vec![Sequence::string("<a>")])
                .unwrap_err()
                .code,
            "FODC0006"
        );
        let mixed = Sequence::from_vec(vec![
            Item::Atomic(Atomic::Integer(1)),
            Item::Atomic(Atomic::string("<")),
        ]);
        assert_eq!(show(&serialize(&mut ev, vec![mixed]).unwrap()), "1 &lt;");
    }

    #[test]
    fn json() {
        let arena = DocArena::new();
        let env = Env::new(&arena);
        let mut host = NoHost;
        let mut ev = Eval {
            env: &env,
            host: &mut host,
            locals: vec![],
            xpath1: false,
        };
        let v = parse_json(
            &mut ev,
            vec![Sequence::string(
                r#"{"a":[1,true,null,"s"],"b":{"a":1,"a":2}}"#,
            )],
        )
        .unwrap();
        let Some(Item::Map(m)) = v.first() else {
            panic!("not a map")
        };
        assert_eq!(m.entries.len(), 2);
        let a = map_get(m, "a").unwrap();
        let Some(Item::Array(arr)) = a.first() else {
            panic!("not an array")
        };
        assert_eq!(
            arr.members.iter().map(show).collect::<Vec<_>>(),
            ["1", "true", "", "s"]
        );
        let b = map_get(m, "b").unwrap();
        let Some(Item::Map(inner)) = b.first() else {
            panic!("not a map")
        };
        assert_eq!(show(map_get(inner, "a").unwrap()), "1");
        assert_eq!(
            parse_json(&mut ev, vec![Sequence::string("{")])
                .unwrap_err()
                .code,
            "FOJS0001"
        );
        let x = json_to_xml(&mut ev, vec![Sequence::string("[1]")]).unwrap();
        let j = xml_to_json(&mut ev, vec![Sequence::One(x.first().unwrap().clone())]).unwrap();
        assert_eq!(show(&j), "[1]");
        let s = serialize_json(&v, &ev).unwrap();
        assert_eq!(s, r#"{"a":[1,true,null,"s"],"b":{"a":1}}"#);
    }
}

/// End-to-end checks through the parser, compiler and evaluator.
#[cfg(test)]
mod e2e {
    use crate::compile::{Expression, NoHostStatic, StaticContext};
    use crate::eval::{DocArena, Env, Focus, NoHost};
    use crate::tree::{Document, ParseOptions};
    use crate::value::Item;

    fn eval(xpath: &str, xml: &str, xpath1: bool) -> Result<String, String> {
        let ns = |p: &str| (p == "math").then(|| crate::functions::MATH.to_string());
        let ctx = StaticContext {
            namespaces: &ns,
            default_element_namespace: String::new(),
            backwards_compatible: xpath1,
            host: &NoHostStatic,
        };
        let e = Expression::compile(xpath, &ctx).map_err(|e| e.code)?;
        let arena = DocArena::new();
        let d = arena
            .alloc(Document::parse_str(xml, &ParseOptions::default()).map_err(|e| e.to_string())?);
        let env = Env::new(&arena);
        let mut host = NoHost;
        let focus = Focus::of(Item::Node(d.root()));
        e.evaluate_string(&env, &mut host, Some(&focus))
            .map_err(|e| e.code)
    }

    const XML: &str = "<r><a n='2'>x</a><a n='3'>y</a><b>1.5</b></r>";

    #[test]
    fn functions_through_the_evaluator() {
        assert_eq!(eval("string-join(//a/@n, '+')", XML, false).unwrap(), "2+3");
        assert_eq!(eval("sum(//a/@n)", XML, false).unwrap(), "5");
        assert_eq!(eval("round(//b)", XML, false).unwrap(), "2");
        assert_eq!(eval("replace('abc', 'b', 'X')", XML, false).unwrap(), "aXc");
        assert_eq!(
            eval("count(distinct-values((1, 1.0, '1')))", XML, false).unwrap(),
            "2"
        );
        assert_eq!(eval("math:sqrt(16)", XML, false).unwrap(), "4");
        assert_eq!(eval("name(/*)", XML, false).unwrap(), "r");
        assert_eq!(eval("substring('12345', 2, 3)", XML, false).unwrap(), "234");
        assert_eq!(eval("1 div 4", XML, false).unwrap(), "0.25");
        assert_eq!(eval("string(1 div 0e0)", XML, false).unwrap(), "INF");
        assert_eq!(eval("sum(//a/@n) div 2", XML, true).unwrap(), "2.5");
    }

    /// XPath 1.0 mode: single-item parameters take the first item of a
    /// node-set (XPath 2.0 §3.1.5 rule 1a), numbers come from `number()`.
    #[test]
    fn xpath1_first_item_rule() {
        let cases = [
            ("string(//a)", "x"),
            ("concat(//a, '-')", "x-"),
            ("local-name(/r/*)", "a"),
            ("generate-id(/r/*) = generate-id(/r/a[1])", "true"),
            ("floor(//b)", "1"),
            ("round('x')", "NaN"),
        ];
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|(x, want)| {
                let got = eval(x, XML, true);
                (got.as_deref() != Ok(*want)).then(|| format!("{x}: {got:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{failures:#?}");
    }
}
