//! Rule tests: cases shipped inside a rule package, run against the
//! package as the hub would run it.
//!
//! # Layout
//!
//! ```text
//! <package>/tests/<case>/case.toml
//! <package>/tests/<case>/<input file>
//! <package>/tests/<case>/expected/<any file names>
//! ```
//!
//! Every subfolder of `tests/` that holds a `case.toml` is a case, named
//! after its folder; other subfolders (shared fixtures) and hidden entries
//! are ignored. Cases run in folder-name order.
//!
//! # `case.toml`
//!
//! ```toml
//! description = "Gewerbeanmeldung from the KoSIT 2.1 example"   # optional
//! input = "input.xml"                 # relative to the case folder
//! content_type = "application/xml"    # optional; default by extension
//! channel = "portal"                  # optional, default "test"
//! [meta]                              # optional envelope facts ($meta), e.g.
//! "xta.service" = "urn:…"              #   as an input adapter records them
//! [params]                            # optional tenant route parameters
//! aktenplan_kennzeichen = "32.10"
//! [[attachments]]                     # optional: the message's attachments,
//! file = "plan.pdf"                   #   as a container output sees them
//! content_type = "application/pdf"    #   (names only; no content needed)
//! [expect]
//! kommune = "12052000"                # optional: expected Kommune key
//! leistung = "99050012104000"         # optional: expected LeiKa key
//! [expect.outputs]                    # target → expected file
//! fachverfahren = "expected/fachverfahren.xml"
//! # instead of outputs:  terminated = "text of xsl:message terminate=yes"
//! # or:                  not_recognised = true
//! # or:                  invalid_input = "text of a schema error"
//! ```
//!
//! Unknown keys are errors. The default content type is
//! `application/xml` for `.xml` and `application/json` for `.json` inputs.
//! Parameters may be strings, integers, booleans, floats or dates (passed
//! on as their TOML text, like tenant configuration does). `[expect]` must
//! say exactly one of `outputs`, `terminated`, `not_recognised = true` or
//! `invalid_input`.
//!
//! # What a case checks
//!
//! 1. the input parses as the hub parses it ([`InputDocument::parse`]);
//! 2. the package's `[match]` (channel, content type and condition)
//!    accepts it — or, for `not_recognised = true`, does not;
//! 3. extraction succeeds, and gives `expect.kommune`/`expect.leistung`
//!    when those are given;
//! 4. the input is valid against the package's `[input] schema`, if it
//!    declares one — or, for `invalid_input`, is not, with an error whose
//!    text contains the given text (the case ends there);
//! 5. the parameters pass the package's declarations
//!    ([`RulePackage::check_params`]);
//! 6. rendering ([`RulePackage::render`], which validates every output
//!    against its declared schema) with a fixed [`RenderContext`]:
//!    message id [`CASE_MESSAGE_ID`] (the nil UUID
//!    `00000000-0000-0000-0000-000000000000`) and the extracted keys;
//! 7. with `terminated`, rendering must fail with
//!    [`TransformError::Terminated`] whose text contains the given text;
//!    otherwise every produced output must be listed in `expect.outputs`
//!    (an unlisted one fails: "output dms not covered by the case"), every
//!    listed one must be produced, and each must equal its expected file.
//!
//! Output comparison: when the output's content type or the expected
//! file's extension is XML, both are compared canonically (see
//! [`canonical`]) and a mismatch shows a unified diff of the two canonical
//! pretty-printed forms; anything else is compared byte for byte after
//! turning CRLF into LF, with a unified line diff on mismatch.

pub mod canonical;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use drehscheibe_model::MessageId;
use serde::Deserialize;

use crate::depot::{Depot, DepotError};
use crate::input::{InputDocument, InputKind};
use crate::package::RulePackage;
use crate::publish::load_package;
use crate::schema::{Engines, SchemaError};
use crate::transform::{RenderContext, TransformError};

/// The message id every case renders with (the nil UUID), so file name
/// templates and stylesheets that see it give reproducible results.
pub const CASE_MESSAGE_ID: [u8; 16] = [0; 16];

/// Channel a case uses when `case.toml` names none.
pub const DEFAULT_CHANNEL: &str = "test";

/// Name of the pseudo-case that reports a package that did not load.
pub const LOAD_CASE: &str = "(load)";

/// Why tests could not even be collected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TestingError {
    /// A file or folder could not be read.
    #[error("{}: cannot read: {message}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// The path is not a folder.
    #[error("{}: not a folder (expected a rule depot, a package, its tests folder or a case folder)", .0.display())]
    NotAFolder(PathBuf),
    /// A case folder that is not `<package>/tests/<case>`.
    #[error("{}: a case folder must be <package>/tests/<case>, next to the package's rule.toml", .0.display())]
    CaseOutsidePackage(PathBuf),
    /// The depot could not be read.
    #[error(transparent)]
    Depot(#[from] DepotError),
}

/// One test case: a folder holding `case.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRef {
    /// Case name (the folder name).
    pub name: String,
    /// The case folder.
    pub dir: PathBuf,
}

/// What a path given to [`discover`] designates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A rule depot: every case of every package version.
    Depot(PathBuf),
    /// One package folder and the cases to run in it.
    Package {
        /// The package folder (holding `rule.toml`).
        dir: PathBuf,
        /// The cases selected.
        cases: Vec<CaseRef>,
    },
}

/// Result of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything matched.
    Passed,
    /// Something did not.
    Failed {
        /// What went wrong (one or more lines).
        message: String,
        /// Unified diff(s) of expected vs. actual output, if outputs
        /// differed.
        diff: Option<String>,
    },
}

/// One case's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// `id@version` of the package, or a path when it did not load.
    pub package: String,
    /// Case name, or [`LOAD_CASE`] for a package that did not load.
    pub name: String,
    /// Passed or failed.
    pub outcome: Outcome,
    /// Wall time of the case.
    pub duration: Duration,
}

impl CaseResult {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }

    fn load_failure(package: String, message: String) -> Self {
        Self {
            package,
            name: LOAD_CASE.to_owned(),
            outcome: Outcome::Failed {
                message,
                diff: None,
            },
            duration: Duration::ZERO,
        }
    }
}

fn io_error(path: &Path, e: std::io::Error) -> TestingError {
    TestingError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// The cases in `<package>/tests/`, sorted by name; none if there is no
/// `tests/` folder.
pub fn package_cases(package_dir: &Path) -> Result<Vec<CaseRef>, TestingError> {
    let tests = package_dir.join("tests");
    if !tests.is_dir() {
        return Ok(Vec::new());
    }
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&tests).map_err(|e| io_error(&tests, e))? {
        let entry = entry.map_err(|e| io_error(&tests, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        if name.starts_with('.') || !dir.join("case.toml").is_file() {
            continue;
        }
        cases.push(CaseRef { name, dir });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(cases)
}

/// Decides what `path` designates: a case folder (holds `case.toml`), a
/// package folder (holds `rule.toml`), a package's `tests/` folder, or
/// else a rule depot.
pub fn discover(path: &Path) -> Result<Target, TestingError> {
    if !path.is_dir() {
        return Err(TestingError::NotAFolder(path.to_path_buf()));
    }
    if path.join("case.toml").is_file() {
        let tests = path
            .parent()
            .filter(|t| t.file_name().is_some_and(|n| n == "tests"));
        let package = tests.and_then(Path::parent);
        let Some(package) = package.filter(|p| p.join("rule.toml").is_file()) else {
            return Err(TestingError::CaseOutsidePackage(path.to_path_buf()));
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(Target::Package {
            dir: package.to_path_buf(),
            cases: vec![CaseRef {
                name,
                dir: path.to_path_buf(),
            }],
        });
    }
    if path.join("rule.toml").is_file() {
        return Ok(Target::Package {
            dir: path.to_path_buf(),
            cases: package_cases(path)?,
        });
    }
    if path.file_name().is_some_and(|n| n == "tests") {
        if let Some(package) = path.parent().filter(|p| p.join("rule.toml").is_file()) {
            return Ok(Target::Package {
                dir: package.to_path_buf(),
                cases: package_cases(package)?,
            });
        }
    }
    Ok(Target::Depot(path.to_path_buf()))
}

/// Runs every case `path` designates (see [`discover`]), loading packages
/// with `engines` (transform engine and schema validator), and calls `report` after each case.
///
/// A package that does not load is one failed result named [`LOAD_CASE`]
/// (its cases are not run). In a depot, packages are loaded like
/// [`Depot::load_lenient`] does, so layout and manifest errors become
/// failed results too (package label `depot`).
pub fn run_path(
    path: &Path,
    engines: impl Into<Engines>,
    mut report: impl FnMut(&CaseResult),
) -> Result<Vec<CaseResult>, TestingError> {
    let mut results = Vec::new();
    let mut push = |result: CaseResult, results: &mut Vec<CaseResult>| {
        report(&result);
        results.push(result);
    };
    let engines = engines.into();
    match discover(path)? {
        Target::Package { dir, cases } => match load_package(&dir, engines) {
            Ok(package) => {
                for case in &cases {
                    push(run_case(&package, case), &mut results);
                }
            }
            Err(e) => push(
                CaseResult::load_failure(dir.display().to_string(), e.to_string()),
                &mut results,
            ),
        },
        Target::Depot(dir) => {
            let depot = Depot::load_lenient(&dir, engines)?;
            for error in depot.load_errors() {
                // Transform problems of a loaded package are reported with
                // that package below.
                if !matches!(
                    error,
                    DepotError::NoTransformEngine { .. }
                        | DepotError::StylesheetMissing { .. }
                        | DepotError::Stylesheet { .. }
                        | DepotError::NoSchemaValidator { .. }
                        | DepotError::Schema { .. }
                ) {
                    push(
                        CaseResult::load_failure("depot".to_owned(), error.to_string()),
                        &mut results,
                    );
                }
            }
            for package in depot.packages() {
                let label = package.rule_ref().to_string();
                if let Some(reason) = package.unavailable() {
                    push(
                        CaseResult::load_failure(label, reason.to_owned()),
                        &mut results,
                    );
                    continue;
                }
                match package_cases(package.dir()) {
                    Ok(cases) => {
                        for case in &cases {
                            push(run_case(&package, case), &mut results);
                        }
                    }
                    Err(e) => push(CaseResult::load_failure(label, e.to_string()), &mut results),
                }
            }
        }
    }
    Ok(results)
}

// ---------------------------------------------------------------------------
// case.toml

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    input: PathBuf,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
    #[serde(default)]
    meta: BTreeMap<String, String>,
    #[serde(default)]
    attachments: Vec<RawAttachment>,
    expect: RawExpect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttachment {
    file: String,
    content_type: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default)]
    kommune: Option<String>,
    #[serde(default)]
    leistung: Option<String>,
    #[serde(default)]
    outputs: Option<BTreeMap<String, PathBuf>>,
    #[serde(default)]
    terminated: Option<String>,
    #[serde(default)]
    not_recognised: bool,
    #[serde(default)]
    invalid_input: Option<String>,
}

/// What the case expects of rendering.
enum Expectation {
    Outputs(BTreeMap<String, PathBuf>),
    Terminated(String),
    NotRecognised,
    InvalidInput(String),
}

/// A failed case, before it becomes an [`Outcome`].
struct Failure {
    message: String,
    diff: Option<String>,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            diff: None,
        }
    }
}

impl From<Failure> for Outcome {
    fn from(f: Failure) -> Self {
        Outcome::Failed {
            message: f.message,
            diff: f.diff,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::new(format!("{}: cannot read: {e}", path.display())))
}

fn param_text(name: &str, value: &toml::Value) -> Result<String, Failure> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Datetime(d) => Ok(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => Err(Failure::new(format!(
            "case.toml: params.{name}: must be a string, integer or boolean"
        ))),
    }
}

fn default_content_type(input: &Path) -> Option<&'static str> {
    let ext = input.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "xml" => Some("application/xml"),
        "json" => Some("application/json"),
        _ => None,
    }
}

/// Runs one case against a loaded package.
pub fn run_case(package: &RulePackage, case: &CaseRef) -> CaseResult {
    let started = Instant::now();
    let outcome = match evaluate(package, case) {
        Ok(()) => Outcome::Passed,
        Err(failure) => failure.into(),
    };
    CaseResult {
        package: package.rule_ref().to_string(),
        name: case.name.clone(),
        outcome,
        duration: started.elapsed(),
    }
}

fn evaluate(package: &RulePackage, case: &CaseRef) -> Result<(), Failure> {
    let case_file = case.dir.join("case.toml");
    let text = String::from_utf8(read(&case_file)?)
        .map_err(|_| Failure::new(format!("{}: not UTF-8", case_file.display())))?;
    let raw: RawCase = toml::from_str(&text)
        .map_err(|e| Failure::new(format!("{}: {}", case_file.display(), e.to_string().trim())))?;

    let RawExpect {
        kommune: want_kommune,
        leistung: want_leistung,
        outputs,
        terminated,
        not_recognised,
        invalid_input,
    } = raw.expect;
    let expectation = match (outputs, terminated, not_recognised, invalid_input) {
        (Some(outputs), None, false, None) => Expectation::Outputs(outputs),
        (None, Some(text), false, None) => Expectation::Terminated(text),
        (None, None, true, None) => Expectation::NotRecognised,
        (None, None, false, Some(text)) => Expectation::InvalidInput(text),
        (None, None, false, None) => {
            return Err(Failure::new(format!(
            "{}: [expect] needs one of outputs, terminated, not_recognised = true or invalid_input",
            case_file.display()
        )))
        }
        _ => {
            return Err(Failure::new(format!(
            "{}: [expect] takes only one of outputs, terminated, not_recognised and invalid_input",
            case_file.display()
        )))
        }
    };

    let input_path = case.dir.join(&raw.input);
    let content_type = match raw.content_type.as_deref() {
        Some(ct) => ct.to_owned(),
        None => default_content_type(&raw.input)
            .ok_or_else(|| {
                Failure::new(format!(
                    "case.toml: cannot infer the content type of {} from its extension; set content_type",
                    raw.input.display()
                ))
            })?
            .to_owned(),
    };
    let channel = raw.channel.as_deref().unwrap_or(DEFAULT_CHANNEL);
    let payload = read(&input_path)?;
    let doc = InputDocument::parse(&payload, &content_type)
        .map_err(|e| {
            Failure::new(format!(
                "input {} refused by the hub's parser: {e}",
                raw.input.display()
            ))
        })?
        .with_meta(raw.meta.clone());

    let matched = package
        .matches(&doc, channel, &content_type)
        .map_err(|e| Failure::new(format!("recognition failed: {e}")))?;
    if let Expectation::NotRecognised = expectation {
        return if matched {
            Err(Failure::new(format!(
                "expected the input not to be recognised, but the package's [match] accepts it (channel {channel:?}, content type {content_type:?})"
            )))
        } else {
            Ok(())
        };
    }
    if !matched {
        return Err(Failure::new(format!(
            "the package's [match] does not accept the input (channel {channel:?}, content type {content_type:?})"
        )));
    }

    let (kommune, leistung) = package
        .extract(&doc, channel, &content_type)
        .map_err(|e| Failure::new(format!("extraction failed: {e}")))?;
    let mut problems = Vec::new();
    if let Some(want) = &want_kommune {
        if want != &kommune {
            problems.push(format!("kommune: expected {want:?}, extracted {kommune:?}"));
        }
    }
    if let Some(want) = &want_leistung {
        if want != &leistung {
            problems.push(format!(
                "leistung: expected {want:?}, extracted {leistung:?}"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Failure::new(problems.join("\n")));
    }

    match (&expectation, package.check_input(&payload)) {
        (Expectation::InvalidInput(want), Err(SchemaError::Invalid(violation))) => {
            let text = violation.to_string();
            return if text.contains(want.as_str()) {
                Ok(())
            } else {
                Err(Failure::new(format!(
                    "input refused with {text:?}, expected an error containing {want:?}"
                )))
            };
        }
        (Expectation::InvalidInput(want), Ok(())) => {
            return Err(Failure::new(format!(
                "expected the input to fail the package's input schema with {want:?}, but it is valid{}",
                if package.manifest().input_schema.is_none() {
                    " (the package declares no [input] schema)"
                } else {
                    ""
                }
            )))
        }
        (_, Err(e)) => return Err(Failure::new(format!("input schema: {e}"))),
        (_, Ok(())) => {}
    }

    let mut supplied = BTreeMap::new();
    for (name, value) in &raw.params {
        supplied.insert(name.clone(), param_text(name, value)?);
    }
    let params = package
        .check_params(&supplied)
        .map_err(|e| Failure::new(format!("params: {e}")))?;

    let message_id = MessageId::from_bytes(CASE_MESSAGE_ID).to_string();
    let payload_file = crate::container::payload_file(&message_id, &content_type);
    let parts: Vec<(Option<&str>, &str, &str)> = raw
        .attachments
        .iter()
        .map(|a| {
            (
                Some(a.file.as_str()),
                a.file.as_str(),
                a.content_type.as_str(),
            )
        })
        .collect();
    let attachments = crate::container::render_attachments(&message_id, &parts);
    let ctx = RenderContext {
        message_id: MessageId::from_bytes(CASE_MESSAGE_ID),
        leistung,
        kommune,
        channel: String::new(),
        tenant: String::new(),
        received_at: String::new(),
        payload_file,
        attachments,
    };
    let rendered = package.render(&doc, &payload, &params, &ctx);
    let outputs = match (expectation, rendered) {
        (Expectation::Terminated(want), Err(TransformError::Terminated(message))) => {
            return if message.contains(&want) {
                Ok(())
            } else {
                Err(Failure::new(format!(
                    "terminated with {message:?}, expected a message containing {want:?}"
                )))
            };
        }
        (Expectation::Terminated(want), Ok(_)) => {
            return Err(Failure::new(format!(
                "expected the rule to terminate with {want:?}, but it rendered its outputs"
            )))
        }
        (_, Err(e)) => return Err(Failure::new(format!("rendering failed: {e}"))),
        (Expectation::Outputs(expected), Ok(rendered)) => (expected, rendered),
        (Expectation::NotRecognised | Expectation::InvalidInput(_), Ok(_)) => return Ok(()),
    };
    compare_outputs(&case.dir, outputs.0, outputs.1)
}

fn compare_outputs(
    case_dir: &Path,
    mut expected: BTreeMap<String, PathBuf>,
    rendered: Vec<crate::transform::RenderedOutput>,
) -> Result<(), Failure> {
    let mut problems = Vec::new();
    let mut diffs = Vec::new();
    for output in rendered {
        let Some(file) = expected.remove(&output.target) else {
            problems.push(format!("output {} not covered by the case", output.target));
            continue;
        };
        let path = case_dir.join(&file);
        let want = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                problems.push(format!(
                    "output {}: cannot read {}: {e}",
                    output.target,
                    path.display()
                ));
                continue;
            }
        };
        let is_xml = matches!(
            InputKind::from_content_type(&output.content_type),
            Ok(InputKind::Xml)
        ) || file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"));
        let header = format!("output {} ({})", output.target, file.display());
        let compared = if is_xml {
            compare_xml(&want, &output.bytes, &header)
        } else {
            compare_text(&want, &output.bytes, &header)
        };
        if let Err(failure) = compared {
            problems.push(format!("output {}: {}", output.target, failure.message));
            diffs.extend(failure.diff);
        }
    }
    for target in expected.keys() {
        problems.push(format!(
            "the case expects output {target}, but the package produced no such output"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure {
            message: problems.join("\n"),
            diff: if diffs.is_empty() {
                None
            } else {
                Some(diffs.join("\n"))
            },
        })
    }
}

fn unified(expected: &str, actual: &str, header: &str) -> String {
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header(&format!("expected {header}"), &format!("actual {header}"))
        .to_string()
}

fn compare_xml(expected: &[u8], actual: &[u8], header: &str) -> Result<(), Failure> {
    let want = canonical::canonical_pretty(expected)
        .map_err(|e| Failure::new(format!("expected file is {e}")))?;
    let got = match canonical::canonical_pretty(actual) {
        Ok(got) => got,
        Err(e) => {
            return Err(Failure {
                message: format!("output is {e}"),
                diff: Some(unified(
                    &decode_lossy(expected),
                    &decode_lossy(actual),
                    header,
                )),
            })
        }
    };
    if want == got {
        Ok(())
    } else {
        Err(Failure {
            message: "differs from the expected XML (canonical comparison)".to_owned(),
            diff: Some(unified(&want, &got, &format!("{header} [canonical]"))),
        })
    }
}

fn normalise_newlines(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// UTF-8 if it is, else Windows-1252 (the usual legacy encoding of
/// Fachverfahren imports), for display only.
fn decode_lossy(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
    }
}

fn compare_text(expected: &[u8], actual: &[u8], header: &str) -> Result<(), Failure> {
    let want = normalise_newlines(expected);
    let got = normalise_newlines(actual);
    if want == got {
        return Ok(());
    }
    let (want_text, got_text) = (decode_lossy(&want), decode_lossy(&got));
    let diff = if want_text == got_text {
        format!(
            "(the texts differ only in their encoding: expected {} bytes, actual {} bytes)\n",
            want.len(),
            got.len()
        )
    } else {
        unified(&want_text, &got_text, header)
    };
    Err(Failure {
        message: "differs from the expected text".to_owned(),
        diff: Some(diff),
    })
}

// ---------------------------------------------------------------------------
// JUnit

/// Replaces characters XML 1.0 does not allow (most C0 controls) with
/// U+FFFD.
fn xml_chars(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars().map(|c| match c {
        '\t' | '\n' | '\r' => c,
        c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
        c => c,
    })
}

fn junit_attr(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in xml_chars(text) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

fn junit_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in xml_chars(text) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML for CI systems: a `testsuites` root, one `testsuite` per
/// package (in order of first appearance), one `testcase` per case
/// (`classname` = package), and for a failed case a `failure` element
/// whose `message` attribute is the message and whose text is the message
/// followed by the diff.
pub fn junit_xml(results: &[CaseResult]) -> String {
    let mut suites: Vec<(&str, Vec<&CaseResult>)> = Vec::new();
    for result in results {
        match suites.iter_mut().find(|(name, _)| *name == result.package) {
            Some((_, cases)) => cases.push(result),
            None => suites.push((&result.package, vec![result])),
        }
    }
    let failures = results.iter().filter(|r| !r.passed()).count();
    let total: Duration = results.iter().map(|r| r.duration).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"drehscheibe rules test\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">\n",
        results.len(),
        total.as_secs_f64()
    ));
    for (name, cases) in suites {
        let failed = cases.iter().filter(|r| !r.passed()).count();
        let time: Duration = cases.iter().map(|r| r.duration).sum();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\">\n",
            junit_attr(name),
            cases.len(),
            time.as_secs_f64()
        ));
        for case in cases {
            let open = format!(
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                junit_attr(&case.name),
                junit_attr(&case.package),
                case.duration.as_secs_f64()
            );
            match &case.outcome {
                Outcome::Passed => {
                    out.push_str(&open);
                    out.push_str("/>\n");
                }
                Outcome::Failed { message, diff } => {
                    out.push_str(&open);
                    out.push_str(">\n");
                    let mut body = message.clone();
                    if let Some(diff) = diff {
                        body.push_str("\n\n");
                        body.push_str(diff);
                    }
                    out.push_str(&format!(
                        "      <failure message=\"{}\" type=\"failure\">{}</failure>\n",
                        junit_attr(message),
                        junit_text(&body)
                    ));
                    out.push_str("    </testcase>\n");
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
