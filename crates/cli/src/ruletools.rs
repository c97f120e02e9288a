//! The rule author's commands: `rules test`, `rules publish`, `rules list`
//! and `transform`.
//!
//! Private to the command line (`command.rs`): each function prints
//! its report and returns the process exit code.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use drehscheibe_rules::testing::{self, CaseResult, Outcome};
use drehscheibe_rules::{
    Depot, InputDocument, PublishError, TransformError, Transformer, TransformerFactory,
};
use drehscheibe_xslt::{Stylesheet, XsltFactory};

fn factory() -> Option<Arc<dyn TransformerFactory>> {
    Some(Arc::new(XsltFactory))
}

/// Indents every line of `text` by `prefix`.
fn indented(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn print_result(result: &CaseResult) {
    match &result.outcome {
        Outcome::Passed => println!("ok   {} {}", result.package, result.name),
        Outcome::Failed { message, diff } => {
            println!("FAIL {} {}", result.package, result.name);
            println!("{}", indented(message, "     "));
            if let Some(diff) = diff {
                println!("{}", indented(diff, "     "));
            }
        }
    }
}

/// `drehscheibe rules test [PATH] [--junit FILE]`.
pub fn test(path: &Path, junit: Option<&Path>) -> ExitCode {
    let results = match testing::run_path(path, factory(), print_result) {
        Ok(results) => results,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let failed = results.iter().filter(|r| !r.passed()).count();
    let passed = results.len() - failed;
    if results.is_empty() {
        eprintln!("note: no test cases under {}", path.display());
    }
    let mut code = if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    };
    if let Some(file) = junit {
        if let Err(e) = std::fs::write(file, testing::junit_xml(&results)) {
            eprintln!("error: cannot write {}: {e}", file.display());
            code = ExitCode::FAILURE;
        }
    }
    println!("{passed} passed, {failed} failed");
    code
}

/// `drehscheibe rules publish PACKAGE_DIR [--depot DIR]`.
pub fn publish(package: &Path, depot: &Path) -> ExitCode {
    match drehscheibe_rules::publish(package, depot, factory()) {
        Ok(published) => {
            println!(
                "published {} to {} ({} test cases passed)",
                published.rule,
                published.path.display(),
                published.results.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            if let PublishError::TestsFailed { failed, .. } = &e {
                for result in failed {
                    print_result(result);
                }
            }
            eprintln!("error: not published: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `drehscheibe rules list [--depot DIR]`.
pub fn list(depot_dir: &Path) -> ExitCode {
    let depot = match Depot::load_lenient(depot_dir, factory()) {
        Ok(depot) => depot,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let mut current: Option<(String, Vec<String>, String)> = None;
    for package in depot.packages() {
        let version = match package.unavailable() {
            Some(_) => format!("{} (broken)", package.version()),
            None => package.version().to_string(),
        };
        match &mut current {
            Some((id, versions, title)) if id == package.id() => {
                versions.push(version);
                // Versions come in ascending order: the latest title wins.
                *title = package.title().to_owned();
            }
            _ => {
                if let Some((id, versions, title)) = current.take() {
                    rows.push((id, versions.join(", "), title));
                }
                current = Some((
                    package.id().to_owned(),
                    vec![version],
                    package.title().to_owned(),
                ));
            }
        }
    }
    if let Some((id, versions, title)) = current {
        rows.push((id, versions.join(", "), title));
    }
    for error in depot.load_errors() {
        eprintln!("warning: {error}");
    }
    if rows.is_empty() {
        println!("no rules in {}", depot_dir.display());
        return ExitCode::SUCCESS;
    }
    let id_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(2);
    let version_width = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .max(8);
    println!("{:<id_width$}  {:<version_width$}  TITLE", "ID", "VERSIONS");
    for (id, versions, title) in rows {
        println!("{id:<id_width$}  {versions:<version_width$}  {title}");
    }
    ExitCode::SUCCESS
}

/// Parses `name=value` of `--param`.
pub fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected name=value, got {text:?}")),
    }
}

/// `drehscheibe transform --stylesheet FILE --input FILE [--param n=v]...`.
pub fn transform(
    stylesheet: &Path,
    input: &Path,
    content_type: Option<&str>,
    params: Vec<(String, String)>,
) -> ExitCode {
    let compiled = match Stylesheet::compile_file(stylesheet) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let bytes = match std::fs::read(input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {}: cannot read: {e}", input.display());
            return ExitCode::FAILURE;
        }
    };
    let content_type = content_type.unwrap_or_else(|| {
        let json = input
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if json {
            "application/json"
        } else {
            "application/xml"
        }
    });
    let doc = match InputDocument::parse(&bytes, content_type) {
        Ok(doc) => doc,
        Err(e) => {
            eprintln!("error: {}: {e}", input.display());
            return ExitCode::FAILURE;
        }
    };
    let params: BTreeMap<String, String> = params.into_iter().collect();
    match Transformer::transform(&compiled, &doc, &params) {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            if let Err(e) = stdout
                .write_all(&output.bytes)
                .and_then(|()| stdout.flush())
            {
                eprintln!("error: cannot write the result: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(TransformError::Terminated(reason)) => {
            eprintln!("terminated by xsl:message: {reason}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
