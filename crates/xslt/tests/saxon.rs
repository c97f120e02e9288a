//! Second oracle for XSLT 2.0/3.0 semantics: every case under
//! `tests/diff3/<case>/` (`style.xsl`, `input.xml`, optional `params.txt`
//! with `name=value` lines) is run through this crate and through
//! SaxonC-HE (the `saxonche` package from PyPI), and the two serialized
//! results are compared canonically, exactly as `diff.rs` compares with
//! `xsltproc` (which only knows XSLT 1.0).
//!
//! Saxon runs in a Python virtual environment that the test creates once
//! under the cargo target directory (`CARGO_TARGET_TMPDIR`) with
//! `python3 -m venv` and `pip install saxonche==SAXONCHE_VERSION`; all cases
//! go through one Python process (`tests/saxon_driver.py`). There is no
//! stored reference output and no silent skip: without `python3`, `venv`,
//! `pip` or PyPI the test fails and says what is missing.
//!
//! `tests/diff3/divergences.txt` lists the cases where this engine is known
//! to disagree, one per line: `<case> refused <reason>` (the stylesheet is
//! refused at load as unsupported) or `<case> differs <reason>` (output or
//! error differs from Saxon). A listed case must still diverge in the
//! listed way: a case that starts to agree with Saxon fails the test until
//! its line is removed, so the list never goes stale.
//!
//! Run it alone with `cargo test --release -p drehscheibe-xslt --test saxon
//! -- --nocapture` to see the summary line (cases agreeing, refused and
//! differing as listed).
//!
//! Canonical comparison: both outputs are parsed; element and attribute
//! names are compared as (namespace URI, local name), attributes sorted,
//! whitespace-only text nodes dropped, namespace declarations and prefixes
//! ignored. Text-method outputs are compared as strings.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use drehscheibe_testkit::python::run_checked;
use drehscheibe_xslt::{OutputMethod, Stylesheet};

/// The SaxonC-HE release used as the oracle (pinned so results are
/// reproducible; any 12.x implements XSLT 3.0 / XPath 3.1).
const SAXONCHE_VERSION: &str = "12.9.0";

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn cases_dir() -> PathBuf {
    tests_dir().join("diff3")
}

fn read_params(dir: &Path) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("params.txt")) {
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                params.insert(k.trim().to_string(), v.to_string());
            }
        }
    }
    params
}

/// The Python interpreter of the cached venv with `saxonche` installed
/// (see `drehscheibe_testkit::python`).
fn saxon_python() -> PathBuf {
    drehscheibe_testkit::python::venv(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        "saxonche",
        SAXONCHE_VERSION,
        "saxonche",
    )
}

#[path = "support/canon.rs"]
mod canon;
use canon::{canon_xml, decode};

fn canon(bytes: &[u8], method: OutputMethod) -> Result<String, String> {
    match method {
        OutputMethod::Text | OutputMethod::Html => Ok(decode(bytes)),
        OutputMethod::Xml | OutputMethod::Xhtml => canon_xml(bytes),
    }
}

/// How a listed case diverges from Saxon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Divergence {
    /// Our engine refuses the stylesheet at load (unsupported construct).
    Refused,
    /// Our engine runs the stylesheet but its output (or error) differs.
    Differs,
}

fn read_divergences() -> BTreeMap<String, Divergence> {
    let text = std::fs::read_to_string(cases_dir().join("divergences.txt")).unwrap();
    let mut list = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let name = words.next().unwrap().to_string();
        let kind = match words.next() {
            Some("refused") => Divergence::Refused,
            Some("differs") => Divergence::Differs,
            other => {
                panic!("divergences.txt: '{line}': kind must be refused or differs, not {other:?}")
            }
        };
        assert!(
            words.next().is_some(),
            "divergences.txt: '{line}' needs a reason"
        );
        list.insert(name, kind);
    }
    list
}

/// What our engine made of a case, compared with Saxon's result.
enum Outcome {
    Agrees,
    Refused(String),
    Differs(String),
}

fn run_ours(dir: &Path, saxon: &[u8]) -> Outcome {
    let stylesheet = match Stylesheet::compile_file(&dir.join("style.xsl")) {
        Ok(s) => s,
        Err(e) => return Outcome::Refused(format!("compile error: {e}")),
    };
    let method = stylesheet.output().method;
    let input = std::fs::read(dir.join("input.xml")).unwrap();
    let ours = match stylesheet.transform_bytes(&input, &read_params(dir)) {
        Ok(o) => o,
        Err(e) => return Outcome::Differs(format!("transform error: {e}")),
    };
    match (canon(&ours, method), canon(saxon, method)) {
        (Ok(a), Ok(b)) if a == b => Outcome::Agrees,
        (Ok(a), Ok(b)) => Outcome::Differs(format!(
            "outputs differ\n--- ours ---\n{a}\n--- saxon ---\n{b}\n--- ours raw ---\n{}\n--- saxon raw ---\n{}",
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(saxon)
        )),
        (Err(e), _) => Outcome::Differs(format!("our output: {e}")),
        (_, Err(e)) => Outcome::Differs(format!("Saxon's output: {e}")),
    }
}

#[test]
fn xslt3_corpus_matches_saxon() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("style.xsl").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 40, "the corpus must have at least 40 cases");
    let divergences = read_divergences();
    for name in divergences.keys() {
        assert!(
            cases_dir().join(name).join("style.xsl").exists(),
            "divergences.txt names '{name}', which is not a case"
        );
    }

    let python = saxon_python();
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("saxon-out");
    let _ = std::fs::remove_dir_all(&out_dir);
    let stdout = String::from_utf8_lossy(&run_checked(
        Command::new(&python)
            .arg(tests_dir().join("saxon_driver.py"))
            .arg(&out_dir)
            .args(&dirs),
        "running the Saxon driver",
    ))
    .into_owned();
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with(&format!("saxon-driver: {} cases", dirs.len()))),
        "the Saxon driver did not finish:\n{stdout}"
    );

    let mut failures = Vec::new();
    let (mut agreed, mut refused, mut differs) = (0, 0, 0);
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if let Ok(err) = std::fs::read_to_string(out_dir.join(format!("{name}.err"))) {
            failures.push(format!(
                "{name}: Saxon rejects the case (fix the case): {err}"
            ));
            continue;
        }
        let saxon = std::fs::read(out_dir.join(format!("{name}.out"))).unwrap();
        let listed = divergences.get(&name).copied();
        match (run_ours(dir, &saxon), listed) {
            (Outcome::Agrees, None) => agreed += 1,
            (Outcome::Refused(_), Some(Divergence::Refused)) => refused += 1,
            (Outcome::Differs(_), Some(Divergence::Differs)) => differs += 1,
            (Outcome::Agrees, Some(_)) => failures.push(format!(
                "{name}: now agrees with Saxon: remove its line from diff3/divergences.txt"
            )),
            (Outcome::Refused(e), listed) => {
                failures.push(format!("{name} (listed: {listed:?}): refused: {e}"))
            }
            (Outcome::Differs(e), listed) => {
                failures.push(format!("{name} (listed: {listed:?}): {e}"))
            }
        }
    }
    println!(
        "saxon oracle ({SAXONCHE_VERSION}): {} cases, {agreed} agree, {refused} refused and {differs} differ as listed, {} unexpected",
        dirs.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
