//! The rule author's commands: `rules test`, `rules publish`, `rules list`,
//! `transform` and `validate`.
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
    Depot, Engines, InputDocument, PublishError, SchemaError, SchemaFactory, SchemaValidator,
    TransformError, Transformer,
};
use drehscheibe_xsd::{Catalog, XsdFactory};
use drehscheibe_xslt::{Stylesheet, XsltFactory};

/// The catalog a rule tool uses when `--catalog` is not given:
/// `schemas/catalog.xml` of a checkout, if the command runs in one.
const DEFAULT_CATALOG: &str = "schemas/catalog.xml";

/// The engines rule packages are loaded with, in the hub and in the rule
/// tools alike: the XSLT-subset interpreter for stylesheets and libxml2
/// for XSD, resolving schema URIs through `catalog` (none: only schemas
/// inside the packages).
pub(crate) fn engines(catalog: Option<&Path>) -> anyhow::Result<Engines> {
    let catalog = match catalog {
        Some(file) => Catalog::load(file)
            .map_err(|e| anyhow::anyhow!("XML catalog {}: {e}", file.display()))?,
        None => Catalog::empty(),
    };
    Ok(Engines::new(
        Some(Arc::new(XsltFactory)),
        Some(Arc::new(XsdFactory::new(Arc::new(catalog)))),
    ))
}

/// [`engines`] for a rule tool: `--catalog FILE`, else
/// [`DEFAULT_CATALOG`] if it exists. Prints the error and gives `None`
/// when the catalog cannot be read.
fn tool_engines(catalog: Option<&Path>) -> Option<Engines> {
    let default = Path::new(DEFAULT_CATALOG);
    let catalog = catalog.or_else(|| default.is_file().then_some(default));
    match engines(catalog) {
        Ok(engines) => Some(engines),
        Err(e) => {
            eprintln!("error: {e:#}");
            None
        }
    }
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

/// `drehscheibe rules test [PATH] [--junit FILE] [--catalog FILE]`.
pub fn test(path: &Path, junit: Option<&Path>, catalog: Option<&Path>) -> ExitCode {
    let Some(engines) = tool_engines(catalog) else {
        return ExitCode::FAILURE;
    };
    let results = match testing::run_path(path, engines, print_result) {
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

/// `drehscheibe rules publish PACKAGE_DIR [--depot DIR] [--catalog FILE]`.
pub fn publish(package: &Path, depot: &Path, catalog: Option<&Path>) -> ExitCode {
    let Some(engines) = tool_engines(catalog) else {
        return ExitCode::FAILURE;
    };
    match drehscheibe_rules::publish(package, depot, engines) {
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

/// `drehscheibe rules list [--depot DIR] [--catalog FILE]`.
pub fn list(depot_dir: &Path, catalog: Option<&Path>) -> ExitCode {
    let Some(engines) = tool_engines(catalog) else {
        return ExitCode::FAILURE;
    };
    let depot = match Depot::load_lenient(depot_dir, engines) {
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
    let result = Transformer::transform(&compiled, &doc, &params);
    // The process ends with this command: leave the compiled stylesheet
    // and the input tree to the operating system instead of freeing their
    // thousands of allocations one by one (0.3 M of the 11 M instructions
    // of a small transform with a three-module stylesheet).
    std::mem::forget(compiled);
    std::mem::forget(doc);
    match result {
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

/// `drehscheibe validate --schema SCHEMA [--catalog FILE] FILE...`: checks
/// each file against the schema (a file, or a URI from the catalog) and
/// prints `FILE: valid` or one `FILE:LINE:COLUMN: message` line per error.
/// Exit code 0 when every file is valid, 1 otherwise, 2 when the schema
/// itself cannot be used.
pub fn validate(schema: &str, catalog: Option<&Path>, files: &[std::path::PathBuf]) -> ExitCode {
    let default = Path::new(DEFAULT_CATALOG);
    let catalog_file = catalog.or_else(|| default.is_file().then_some(default));
    let catalog = match catalog_file.map(Catalog::load).transpose() {
        Ok(c) => c.unwrap_or_else(Catalog::empty),
        Err(e) => {
            eprintln!("error: XML catalog: {e}");
            return ExitCode::from(2);
        }
    };
    let factory = XsdFactory::new(Arc::new(catalog));
    let loaded: Result<Arc<dyn SchemaValidator>, SchemaError> =
        if drehscheibe_rules::manifest::is_schema_uri(schema) {
            factory.load(Path::new("."), schema)
        } else {
            factory
                .load_path(Path::new(schema))
                .map(|s| s as Arc<dyn SchemaValidator>)
        };
    let validator = match loaded {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut all_valid = true;
    for file in files {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: cannot read: {e}", file.display());
                all_valid = false;
                continue;
            }
        };
        match validator.validate(&bytes) {
            Ok(()) => println!("{}: valid", file.display()),
            Err(SchemaError::Invalid(violation)) => {
                all_valid = false;
                for issue in &violation.issues {
                    println!(
                        "{}:{}:{}: {}",
                        file.display(),
                        issue.line.unwrap_or(0),
                        issue.column.unwrap_or(0),
                        issue.message
                    );
                }
                if violation.more > 0 {
                    println!("{}: … and {} more errors", file.display(), violation.more);
                }
                let total = violation.issues.len() + violation.more;
                println!(
                    "{}: INVALID ({total} error{})",
                    file.display(),
                    if total == 1 { "" } else { "s" }
                );
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
