//! Runs the W3C XSLT 3.0 test suite subset in `shared/conformance/xslt30`
//! and prints the pass rate per test set, per spec version (`XSLT10+`,
//! `XSLT20+`, `XSLT30+`) and overall.
//!
//! Each case runs on its own thread with a large stack, under
//! `catch_unwind` and with a time limit, so a panic, a stack overflow in a
//! case or a runaway case cannot end the run: it counts as a failure.
//! The catalogs and the expected results are read with `xot`; the XPath
//! assertions are evaluated with `drehscheibe-xpath`.
//!
//! ```text
//! cargo test --release -p drehscheibe-xslt --test w3c -- [SUITE_DIR] [--set NAME] [--write-known FILE] [--known FILE] [--verbose]
//! ```
//!
//! By default (and so as part of `cargo test`) it checks the suite in
//! `../shared/conformance/xslt30` against
//! `tests/conformance-known-failures.txt` and fails on a regression (a
//! case in no list that fails) or when the suite is missing; unknown
//! `-…` flags (the test harness's) are ignored.
//!
//! Counting: a case passes when its assertion holds. A case whose
//! stylesheet is refused at compile time as outside the supported subset
//! (and that does not expect an error) is counted as `refused`; the
//! "in-subset" rate excludes those. With `--known FILE` the failures are
//! compared with a list of known failures and new ones are reported as
//! regressions (exit code 1).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use drehscheibe_xpath::compile::NoHostStatic;
use drehscheibe_xpath::{
    DocArena, Document, Expression, Focus, Item, NoHost, ParseOptions, StaticContext,
};
use drehscheibe_xslt::{Invocation, Stylesheet};
use xot::{Node, Value, Xot};

const CATALOG_NS: &str = "http://www.w3.org/2012/10/xslt-test-catalog";

#[derive(Debug, Clone, Default)]
struct Env {
    /// The principal source document (file path or inline content).
    source: Option<Source>,
    /// The stylesheet, when the environment names one.
    stylesheet: Option<PathBuf>,
}

#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Content(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pass,
    Fail,
    Refused,
}

struct Suite {
    xot: Xot,
}

impl Suite {
    fn child_elements(&self, node: Node, local: &str) -> Vec<Node> {
        self.xot
            .children(node)
            .filter(|c| {
                self.xot.element(*c).is_some_and(|e| {
                    let (l, ns) = self.xot.name_ns_str(e.name());
                    l == local && ns == CATALOG_NS
                })
            })
            .collect()
    }

    fn first(&self, node: Node, local: &str) -> Option<Node> {
        self.child_elements(node, local).into_iter().next()
    }

    fn attr(&self, node: Node, local: &str) -> Option<String> {
        self.xot
            .attributes(node)
            .iter()
            .find(|(n, _)| self.xot.name_ns_str(*n) == (local, ""))
            .map(|(_, v)| v.clone())
    }

    fn text(&self, node: Node) -> String {
        self.xot.string_value(node)
    }

    fn environment(&self, env: Node, dir: &Path) -> Env {
        let mut out = Env::default();
        if let Some(f) = self
            .first(env, "stylesheet")
            .and_then(|s| self.attr(s, "file"))
        {
            out.stylesheet = Some(dir.join(f));
        }
        for s in self.child_elements(env, "source") {
            if self.attr(s, "role").as_deref() != Some(".") {
                continue;
            }
            if let Some(f) = self.attr(s, "file") {
                out.source = Some(Source::File(dir.join(f)));
            } else if let Some(c) = self.first(s, "content") {
                out.source = Some(Source::Content(self.text(c)));
            }
        }
        out
    }
}

fn canon_node(xot: &Xot, node: Node, out: &mut String) {
    match xot.value(node) {
        Value::Element(e) => {
            let (local, ns) = xot.name_ns_str(e.name());
            out.push_str(&format!("<{{{ns}}}{local}"));
            let mut attrs: Vec<(String, String)> = xot
                .attributes(node)
                .iter()
                .map(|(n, v)| {
                    let (l, u) = xot.name_ns_str(n);
                    (format!("{{{u}}}{l}"), v.clone())
                })
                .collect();
            attrs.sort();
            for (n, v) in attrs {
                out.push_str(&format!(" {n}={v:?}"));
            }
            out.push('>');
            for c in xot.children(node) {
                canon_node(xot, c, out);
            }
            out.push_str("</>");
        }
        Value::Text(t) => {
            let t = t.get();
            if !t.trim().is_empty() {
                out.push_str(&format!("[{t:?}]"));
            }
        }
        Value::Comment(c) => out.push_str(&format!("<!--{}-->", c.get())),
        Value::ProcessingInstruction(pi) => out.push_str(&format!(
            "<?{} {}?>",
            xot.local_name_str(pi.target()),
            pi.data().unwrap_or("").trim()
        )),
        Value::Document => {
            for c in xot.children(node) {
                canon_node(xot, c, out);
            }
        }
        _ => {}
    }
}

fn strip_declaration(text: &str) -> &str {
    let t = text.trim_start_matches('\u{feff}');
    if t.starts_with("<?xml ") {
        if let Some(end) = t.find("?>") {
            return &t[end + 2..];
        }
    }
    t
}

fn canon(text: &str) -> Option<String> {
    let mut xot = Xot::new();
    let doc = xot
        .parse(&format!("<w>{}</w>", strip_declaration(text)))
        .ok()?;
    let mut out = String::new();
    canon_node(&xot, doc, &mut out);
    Some(out)
}

/// Prefixes the catalog's assertions use.
fn assert_namespaces(prefix: &str) -> Option<String> {
    Some(
        match prefix {
            "xs" => "http://www.w3.org/2001/XMLSchema",
            "fn" => "http://www.w3.org/2005/xpath-functions",
            "math" => "http://www.w3.org/2005/xpath-functions/math",
            "map" => "http://www.w3.org/2005/xpath-functions/map",
            "array" => "http://www.w3.org/2005/xpath-functions/array",
            "xsl" => "http://www.w3.org/1999/XSL/Transform",
            _ => return None,
        }
        .to_string(),
    )
}

fn compile_assertion(expr: &str) -> Result<Expression, String> {
    let ns = assert_namespaces;
    let ctx = StaticContext {
        namespaces: &ns,
        default_element_namespace: String::new(),
        backwards_compatible: false,
        host: &NoHostStatic,
    };
    Expression::compile(expr, &ctx)
        .map_err(|e| format!("assert does not compile: {}", e.describe(expr)))
}

/// Evaluates an XPath assertion with the result document as context item.
fn xpath_assert(result: &str, expr: &str) -> Result<bool, String> {
    let body = strip_declaration(result);
    let options = ParseOptions::default();
    let doc = Document::parse_str(body, &options)
        .or_else(|_| Document::parse_str(&format!("<w>{body}</w>"), &options))
        .map_err(|e| format!("result not parseable: {e}"))?;
    let q = compile_assertion(expr)?;
    let arena = DocArena::new();
    let env = drehscheibe_xpath::Env::new(&arena);
    let focus = Focus::of(Item::Node(doc.root()));
    q.evaluate_bool(&env, &mut NoHost, Some(&focus))
        .map_err(|e| format!("assert fails: {e}"))
}

fn xpath_string(expr: &str) -> Option<String> {
    let q = compile_assertion(expr).ok()?;
    let arena = DocArena::new();
    let env = drehscheibe_xpath::Env::new(&arena);
    let seq = q.evaluate(&env, &mut NoHost, None).ok()?;
    let mut parts = Vec::new();
    for item in seq.iter() {
        parts.push(item.string_value().ok()?);
    }
    Some(parts.join(" "))
}

enum Outcome {
    /// The serialized result, the `xsl:message` texts, and the result
    /// tree written by the plain XML method: the W3C assertions on the
    /// result tree (`assert-xml`, `assert`, ...) are checked against that,
    /// the serialization assertions against the serialized result (with
    /// the html method the two differ: `<br>`, `<!DOCTYPE html>`, ...).
    Output(String, Vec<String>, String),
    Error(String),
    Refused(String),
}

fn check(suite: &Suite, result: Node, outcome: &Outcome, dir: &Path) -> Result<(), String> {
    let name = suite
        .xot
        .element(result)
        .map(|e| suite.xot.local_name_str(e.name()).to_string())
        .unwrap_or_default();
    match (name.as_str(), outcome) {
        ("error" | "assert-serialization-error", Outcome::Error(_) | Outcome::Refused(_)) => Ok(()),
        ("error" | "assert-serialization-error", Outcome::Output(o, _, _)) => Err(format!(
            "expected error {}, got output {}",
            suite.attr(result, "code").unwrap_or_default(),
            o.chars().take(200).collect::<String>()
        )),
        (n, Outcome::Error(e) | Outcome::Refused(e)) if !matches!(n, "all-of" | "any-of") => {
            Err(e.clone())
        }
        ("assert-xml", Outcome::Output(_, _, o)) => {
            let expected = match suite.attr(result, "file") {
                Some(f) => std::fs::read_to_string(dir.join(f)).map_err(|e| e.to_string())?,
                None => suite.text(result),
            };
            let (a, b) = (canon(o), canon(&expected));
            match (a, b) {
                (Some(a), Some(b)) if a == b => Ok(()),
                (Some(a), Some(b)) => Err(format!("assert-xml differs:\n  ours: {a}\n  want: {b}")),
                _ => Err("assert-xml: output or expectation not parseable".into()),
            }
        }
        ("assert", Outcome::Output(_, _, o)) => match xpath_assert(o, &suite.text(result))? {
            true => Ok(()),
            false => Err(format!("assert false: {}", suite.text(result))),
        },
        ("assert-string-value", Outcome::Output(_, _, o)) => {
            let got = canon_text(o);
            let want = suite.text(result);
            if normalize(&got) == normalize(&want) {
                Ok(())
            } else {
                Err(format!("string value {got:?} != {want:?}"))
            }
        }
        ("assert-serialization", Outcome::Output(o, _, _)) => {
            let want = match suite.attr(result, "file") {
                Some(f) => std::fs::read_to_string(dir.join(f)).map_err(|e| e.to_string())?,
                None => suite.text(result),
            };
            if normalize(strip_declaration(o)) == normalize(strip_declaration(&want)) {
                Ok(())
            } else {
                Err("serialization differs".into())
            }
        }
        ("serialization-matches", Outcome::Output(o, _, _)) => {
            let flags = suite.attr(result, "flags").unwrap_or_default();
            if regex_matches(o, &suite.text(result), &flags)? {
                Ok(())
            } else {
                Err(format!(
                    "serialization does not match {}",
                    suite.text(result)
                ))
            }
        }
        ("assert-eq", Outcome::Output(_, _, o)) => {
            let expr = format!("string(.) eq string({})", suite.text(result));
            match xpath_assert(o, &expr)? {
                true => Ok(()),
                false => Err(format!("assert-eq false: {}", suite.text(result))),
            }
        }
        ("assert-message", Outcome::Output(_, messages, _)) => {
            let Some(inner) = element_children(suite, result).into_iter().next() else {
                return Err("empty assert-message".into());
            };
            let mut last = Err("assert-message: no message".to_string());
            for m in messages {
                last = check(
                    suite,
                    inner,
                    &Outcome::Output(m.clone(), Vec::new(), m.clone()),
                    dir,
                );
                if last.is_ok() {
                    return Ok(());
                }
            }
            last
        }
        ("all-of", _) => {
            for c in element_children(suite, result) {
                check(suite, c, outcome, dir)?;
            }
            Ok(())
        }
        ("any-of", _) => {
            let mut last = Err("any-of: no alternatives".to_string());
            for c in element_children(suite, result) {
                last = check(suite, c, outcome, dir);
                if last.is_ok() {
                    return Ok(());
                }
            }
            last
        }
        ("not", _) => match element_children(suite, result).first() {
            Some(c) => match check(suite, *c, outcome, dir) {
                Ok(()) => Err("not: inner assertion holds".into()),
                Err(_) => Ok(()),
            },
            None => Err("empty not".into()),
        },
        (other, _) => Err(format!("unsupported assertion {other}")),
    }
}

/// `fn:matches($output, $regex, $flags)`, evaluated with the XPath engine.
fn regex_matches(output: &str, regex: &str, flags: &str) -> Result<bool, String> {
    let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let expr = format!("matches({}, {}, {})", lit(output), lit(regex), lit(flags));
    let q = compile_assertion(&expr)?;
    let arena = DocArena::new();
    let env = drehscheibe_xpath::Env::new(&arena);
    q.evaluate_bool(&env, &mut NoHost, None)
        .map_err(|e| format!("serialization-matches fails: {e}"))
}

fn canon_text(o: &str) -> String {
    let body = strip_declaration(o);
    let mut xot = Xot::new();
    match xot.parse(&format!("<w>{body}</w>")) {
        Ok(d) => xot.string_value(d),
        Err(_) => body.to_string(),
    }
}

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn element_children(suite: &Suite, node: Node) -> Vec<Node> {
    suite
        .xot
        .children(node)
        .filter(|c| suite.xot.element(*c).is_some())
        .collect()
}

fn run_case(
    suite: &mut Suite,
    case: Node,
    dir: &Path,
    envs: &HashMap<String, Env>,
) -> (Status, String) {
    let Some(test) = suite.first(case, "test") else {
        return (Status::Fail, "no test element".into());
    };
    let Some(result) = suite
        .first(case, "result")
        .and_then(|r| element_children(suite, r).into_iter().next())
    else {
        return (Status::Fail, "no result element".into());
    };
    let env = match suite.first(case, "environment") {
        Some(e) => match suite.attr(e, "ref") {
            Some(r) => envs.get(&r).cloned().unwrap_or_default(),
            None => suite.environment(e, dir),
        },
        None => Env::default(),
    };
    let Some(style) = suite
        .first(test, "stylesheet")
        .and_then(|s| suite.attr(s, "file"))
        .map(|f| dir.join(f))
        .or_else(|| env.stylesheet.clone())
    else {
        return (Status::Fail, "no stylesheet".into());
    };
    let mut params = BTreeMap::new();
    for p in suite.child_elements(test, "param") {
        if let (Some(n), Some(sel)) = (suite.attr(p, "name"), suite.attr(p, "select")) {
            match xpath_string(&sel) {
                Some(v) => {
                    params.insert(n, v);
                }
                None => return (Status::Fail, format!("cannot evaluate param {sel}")),
            }
        }
    }
    let invocation = Invocation {
        initial_template: suite
            .first(test, "initial-template")
            .and_then(|t| suite.attr(t, "name")),
        initial_mode: suite
            .first(test, "initial-mode")
            .and_then(|t| suite.attr(t, "name")),
    };
    if std::env::var_os("CONFORMANCE_TRACE").is_some() {
        eprintln!("running {}", style.display());
    }
    let outcome = run_isolated(style, env.source.clone(), params, invocation);
    let refused = matches!(outcome, Outcome::Refused(_));
    match check(suite, result, &outcome, dir) {
        Ok(()) => (Status::Pass, String::new()),
        Err(e) if refused => (Status::Refused, e),
        Err(e) => (Status::Fail, e),
    }
}

/// Compiles and runs one case on its own thread (large stack,
/// `catch_unwind`, time limit).
fn run_isolated(
    style: PathBuf,
    source: Option<Source>,
    params: BTreeMap<String, String>,
    invocation: Invocation,
) -> Outcome {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .stack_size(256 * 1024 * 1024)
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_case_inner(&style, source.as_ref(), &params, &invocation)
            }));
            let outcome = r.unwrap_or_else(|p| {
                let what = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Outcome::Error(format!("panic: {what}"))
            });
            let _ = tx.send(outcome);
        });
    if let Err(e) = spawned {
        return Outcome::Error(format!("cannot start a thread: {e}"));
    }
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(o) => o,
        Err(_) => Outcome::Error("timeout (or the case thread died)".into()),
    }
}

fn run_case_inner(
    style: &Path,
    source: Option<&Source>,
    params: &BTreeMap<String, String>,
    invocation: &Invocation,
) -> Outcome {
    let st = match Stylesheet::compile_file(style) {
        Err(e) => {
            let refused = e.message.contains("unsupported") || e.message.contains("not supported");
            return if refused {
                Outcome::Refused(e.to_string())
            } else {
                Outcome::Error(e.to_string())
            };
        }
        Ok(st) => st,
    };
    // Without a source document and an explicit invocation, a stylesheet
    // with `xsl:initial-template` starts there (XSLT 3.0 §2.3).
    let initial = "Q{http://www.w3.org/1999/XSL/Transform}initial-template";
    let mut invocation = invocation.clone();
    if source.is_none()
        && invocation.initial_template.is_none()
        && invocation.initial_mode.is_none()
        && st.has_template(initial)
    {
        invocation.initial_template = Some(initial.to_string());
    }
    let invocation = &invocation;
    let options = ParseOptions::default();
    let doc = match source {
        Some(Source::File(f)) => std::fs::read(f).map_err(|e| e.to_string()).and_then(|b| {
            let options = ParseOptions {
                uri: Some(f.display().to_string()),
                ..ParseOptions::default()
            };
            Document::parse(&b, &options).map_err(|e| e.to_string())
        }),
        Some(Source::Content(c)) => Document::parse_str(c, &options).map_err(|e| e.to_string()),
        None => Ok(drehscheibe_xpath::Builder::new_document(None).finish()),
    };
    match doc {
        Err(e) => Outcome::Error(format!("source: {e}")),
        Ok(doc) => match st.transform_with_messages(&doc, params, invocation) {
            Ok(out) => {
                // the serialized bytes, decoded as the output encoding says
                let encoding = st.output().encoding.trim().to_ascii_uppercase();
                let text = match encoding.as_str() {
                    "UTF-8" | "UTF8" => String::from_utf8_lossy(&out.bytes).to_string(),
                    "UTF-16" | "UTF16" => {
                        let units: Vec<u16> = out
                            .bytes
                            .chunks(2)
                            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                            .collect();
                        String::from_utf16_lossy(&units)
                    }
                    _ => out.bytes.iter().map(|b| char::from(*b)).collect(),
                };
                // the result tree, written by the XML method alone
                let xml = drehscheibe_xslt::OutputSettings {
                    method_declared: true,
                    indent: Some(false),
                    ..drehscheibe_xslt::OutputSettings::default()
                };
                let tree = match st
                    .with_output(xml)
                    .transform_with_messages(&doc, params, invocation)
                {
                    Ok(t) => String::from_utf8_lossy(&t.bytes).to_string(),
                    Err(_) => text.clone(),
                };
                Outcome::Output(text, out.messages, tree)
            }
            Err(e) => Outcome::Error(e.to_string()),
        },
    }
}

/// The spec version a case (or its test set) depends on.
fn spec_of(suite: &Suite, node: Node) -> Option<String> {
    let deps = suite.first(node, "dependencies")?;
    let spec = suite.first(deps, "spec")?;
    suite.attr(spec, "value")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut suite_dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/xslt30"
    ));
    let mut write_known: Option<PathBuf> = None;
    let mut known: Option<PathBuf> = None;
    let mut verbose = false;
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--write-known" => write_known = it.next().map(PathBuf::from),
            "--known" => known = it.next().map(PathBuf::from),
            "--verbose" => verbose = true,
            "--set" => only = it.next().cloned(),
            // flags of the test harness (`cargo test -- --nocapture`)
            other if other.starts_with('-') => {}
            other => suite_dir = PathBuf::from(other),
        }
    }
    if known.is_none() && write_known.is_none() {
        // The default (also under `cargo test`): compare with the
        // known-failures list so that a regression fails.
        known = Some(PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/conformance-known-failures.txt"
        )));
    }
    // `..` in the path would leak into base URIs (document-0203)
    let suite_dir = suite_dir.canonicalize().unwrap_or(suite_dir);
    let mut suite = Suite { xot: Xot::new() };
    let catalog_text = match std::fs::read_to_string(suite_dir.join("catalog.xml")) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "cannot read {}: {e}",
                suite_dir.join("catalog.xml").display()
            );
            return ExitCode::from(2);
        }
    };
    let Ok(catalog) = suite.xot.parse(&catalog_text) else {
        eprintln!("catalog.xml is not well-formed");
        return ExitCode::from(2);
    };
    let Ok(root) = suite.xot.document_element(catalog) else {
        return ExitCode::from(2);
    };
    let mut global_envs = HashMap::new();
    for e in suite.child_elements(root, "environment") {
        if let Some(n) = suite.attr(e, "name") {
            let env = suite.environment(e, &suite_dir);
            global_envs.insert(n, env);
        }
    }
    let mut totals = (0usize, 0usize, 0usize, 0usize);
    let mut by_spec: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let mut failures = BTreeSet::new();
    for set in suite.child_elements(root, "test-set") {
        let (Some(name), Some(file)) = (suite.attr(set, "name"), suite.attr(set, "file")) else {
            continue;
        };
        if only.as_ref().is_some_and(|o| *o != name) {
            continue;
        }
        let path = suite_dir.join(&file);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(doc) = suite.xot.parse(&text) else {
            continue;
        };
        let Ok(set_root) = suite.xot.document_element(doc) else {
            continue;
        };
        let mut envs = global_envs.clone();
        for e in suite.child_elements(set_root, "environment") {
            if let Some(n) = suite.attr(e, "name") {
                let env = suite.environment(e, &dir);
                envs.insert(n, env);
            }
        }
        let mut counts = (0usize, 0usize, 0usize, 0usize);
        let set_spec = spec_of(&suite, set_root);
        for case in suite.child_elements(set_root, "test-case") {
            let case_name = suite.attr(case, "name").unwrap_or_default();
            let spec = spec_of(&suite, case)
                .or_else(|| set_spec.clone())
                .unwrap_or_else(|| "XSLT10+".to_string());
            let bucket = if spec.contains("XSLT10+") {
                "XSLT10+"
            } else if spec.contains("XSLT20+") {
                "XSLT20+"
            } else if spec.contains("XSLT30+") {
                "XSLT30+"
            } else {
                "other"
            };
            let (status, why) = run_case(&mut suite, case, &dir, &envs);
            let entry = by_spec.entry(bucket).or_insert((0usize, 0usize, 0usize));
            entry.0 += 1;
            match status {
                Status::Pass => entry.1 += 1,
                Status::Refused => entry.2 += 1,
                Status::Fail => {}
            }
            counts.0 += 1;
            match status {
                Status::Pass => counts.1 += 1,
                Status::Refused => counts.2 += 1,
                Status::Fail => {
                    counts.3 += 1;
                    failures.insert(case_name.clone());
                    if verbose {
                        println!(
                            "FAIL {name}/{case_name}: {}",
                            why.lines().take(3).collect::<Vec<_>>().join(" | ")
                        );
                    }
                }
            }
            if verbose && status == Status::Refused {
                println!(
                    "REFUSED {name}/{case_name}: {}",
                    why.lines().next().unwrap_or("")
                );
            }
        }
        println!(
            "{name:<24} {:>4} cases {:>4} passed {:>4} refused {:>4} failed",
            counts.0, counts.1, counts.2, counts.3
        );
        totals.0 += counts.0;
        totals.1 += counts.1;
        totals.2 += counts.2;
        totals.3 += counts.3;
    }
    let pct = |a: usize, b: usize| {
        if b == 0 {
            0.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    println!(
        "TOTAL {} cases: {} passed ({:.1}%), {} refused as outside the subset, {} failed; in-subset pass rate {:.1}%",
        totals.0,
        totals.1,
        pct(totals.1, totals.0),
        totals.2,
        totals.3,
        pct(totals.1, totals.0 - totals.2)
    );
    for (spec, (n, passed, refused)) in &by_spec {
        println!(
            "{spec:<8} {n:>5} cases: {passed:>5} passed ({:.1}%), {refused} refused; in-subset {:.1}%",
            pct(*passed, *n),
            pct(*passed, n - refused)
        );
    }
    if let Some(path) = write_known {
        let text: String = failures.iter().map(|f| format!("{f}\n")).collect();
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("cannot write {}: {e}", path.display());
        }
    }
    if let Some(path) = known {
        let known: BTreeSet<String> = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        let regressions: Vec<&String> = failures.difference(&known).collect();
        if !regressions.is_empty() {
            println!("REGRESSIONS ({}): {regressions:?}", regressions.len());
            return ExitCode::from(1);
        }
        println!("no regressions against {}", path.display());
    }
    ExitCode::SUCCESS
}
