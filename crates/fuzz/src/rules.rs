//! Rule-author targets: the XPath compiler and the XSLT compiler, each
//! followed by a run under a time budget, as the rule processor runs them.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use drehscheibe_xpath::{
    budget, DocArena, Document, Env, Expression, Focus, Item, NoHost, NoHostStatic, ParseOptions,
    StaticContext,
};
use drehscheibe_xslt::Stylesheet;

/// How long one run may take before the budget stops it (the hub's
/// `route_budget` does the same per message).
const RUN_BUDGET: Duration = Duration::from_millis(250);

const DOC: &str = r#"<antrag xmlns:g="urn:g" id="a1"><betrag waehrung="EUR">108.50</betrag><name>Anna</name><g:ort>Musterstadt</g:ort><posten n="1">12</posten><posten n="2">3.5</posten></antrag>"#;

fn namespaces(prefix: &str) -> Option<String> {
    match prefix {
        "g" => Some("urn:g".into()),
        "xs" => Some("http://www.w3.org/2001/XMLSchema".into()),
        "fn" => Some("http://www.w3.org/2005/xpath-functions".into()),
        "map" => Some("http://www.w3.org/2005/xpath-functions/map".into()),
        "array" => Some("http://www.w3.org/2005/xpath-functions/array".into()),
        "math" => Some("http://www.w3.org/2005/xpath-functions/math".into()),
        _ => None,
    }
}

fn document() -> Option<&'static Document> {
    static DOCUMENT: OnceLock<Option<Document>> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| Document::parse(DOC.as_bytes(), &ParseOptions::default()).ok())
        .as_ref()
}

/// An XPath expression (first byte: XPath 1.0 compatibility mode or
/// not), compiled and, if it compiles, evaluated against a small
/// document under a time budget.
pub fn xpath(data: &[u8]) {
    let Some((selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let Some(doc) = document() else {
        panic!("the fuzz document did not parse");
    };
    let host = NoHostStatic;
    let ctx = StaticContext {
        namespaces: &namespaces,
        default_element_namespace: String::new(),
        backwards_compatible: selector % 2 == 1,
        host: &host,
    };
    let Ok(compiled) = Expression::compile(text, &ctx) else {
        return;
    };
    let arena = DocArena::new();
    let env = Env::new(&arena);
    let focus = Focus::of(Item::Node(doc.root()));
    budget::with_budget(
        Instant::now() + RUN_BUDGET,
        Arc::new(AtomicBool::new(false)),
        || {
            let _ = compiled.evaluate_string(&env, &mut NoHost, Some(&focus));
        },
    );
}

/// A stylesheet, compiled and, if it compiles, run on a small document
/// under a time budget. Includes and `document()` resolve against a
/// directory that does not exist.
pub fn xslt(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sheet) = Stylesheet::compile_str(text, Path::new("/nonexistent/fuzz/rule.xsl")) else {
        return;
    };
    budget::with_budget(
        Instant::now() + RUN_BUDGET,
        Arc::new(AtomicBool::new(false)),
        || {
            let _ = sheet.transform_bytes(DOC.as_bytes(), &BTreeMap::new());
        },
    );
}
