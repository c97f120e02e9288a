//! Differential test: every case under `tests/diff/<case>/` (`style.xsl`,
//! `input.xml`, optional `params.txt` with `name=value` lines) is run
//! through this crate and compared canonically with the output of
//! `xsltproc` (libxslt).
//!
//! The reference output is kept in `expected.out` next to the case, so the
//! test also runs where `xsltproc` is not installed. Where it is
//! installed, the test additionally checks that `expected.out` still is
//! what `xsltproc` produces; `XSLT_DIFF_BLESS=1` rewrites the reference
//! files from `xsltproc`.
//!
//! Canonical comparison: both outputs are parsed; element and attribute
//! names are compared as (namespace URI, local name), attributes sorted,
//! whitespace-only text nodes dropped, namespace declarations and
//! prefixes ignored. Text-method outputs are compared as strings.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use drehscheibe_xslt::{OutputMethod, Stylesheet};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff")
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

fn xsltproc_available() -> bool {
    Command::new("xsltproc")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn run_xsltproc(dir: &Path, params: &BTreeMap<String, String>) -> Result<Vec<u8>, String> {
    let mut cmd = Command::new("xsltproc");
    for (k, v) in params {
        cmd.arg("--stringparam").arg(k).arg(v);
    }
    cmd.arg(dir.join("style.xsl")).arg(dir.join("input.xml"));
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run xsltproc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "xsltproc failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

#[path = "support/canon.rs"]
mod canon;
use canon::{canon_xml, decode};

fn canon(bytes: &[u8], method: OutputMethod) -> Result<String, String> {
    match method {
        OutputMethod::Text => Ok(decode(bytes)),
        OutputMethod::Xml | OutputMethod::Xhtml | OutputMethod::Html => canon_xml(bytes),
    }
}

#[test]
fn differential_corpus_matches_xsltproc() {
    let live = xsltproc_available();
    let bless = std::env::var("XSLT_DIFF_BLESS").is_ok_and(|v| v == "1");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("style.xsl").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 40, "the corpus must have at least 40 cases");
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let params = read_params(dir);
        let expected_path = dir.join("expected.out");
        let expected = if live {
            let reference = match run_xsltproc(dir, &params) {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{name}: {e}"));
                    continue;
                }
            };
            if bless {
                std::fs::write(&expected_path, &reference).unwrap();
            }
            reference
        } else {
            match std::fs::read(&expected_path) {
                Ok(r) => r,
                Err(e) => {
                    failures.push(format!("{name}: no expected.out ({e})"));
                    continue;
                }
            }
        };
        let stylesheet = match Stylesheet::compile_file(&dir.join("style.xsl")) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{name}: compile error: {e}"));
                continue;
            }
        };
        let method = stylesheet.output().method;
        if live && !bless {
            let stored = std::fs::read(&expected_path).unwrap_or_default();
            if canon(&stored, method) != canon(&expected, method) {
                failures.push(format!(
                    "{name}: expected.out is stale (rerun with XSLT_DIFF_BLESS=1)"
                ));
            }
        }
        let input = std::fs::read(dir.join("input.xml")).unwrap();
        let ours = match stylesheet.transform_bytes(&input, &params) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: transform error: {e}"));
                continue;
            }
        };
        // libxslt ends every XML result with a newline; it is no part of
        // the result tree, and our serializer adds no whitespace unless
        // indenting (Serialization 3.1 §5.1.3)
        let reference = match method {
            OutputMethod::Text => &expected[..],
            _ => expected.strip_suffix(b"\n").unwrap_or(&expected),
        };
        match (canon(&ours, method), canon(reference, method)) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(a), Ok(b)) => failures.push(format!(
                "{name}: outputs differ\n--- ours ---\n{a}\n--- xsltproc ---\n{b}\n--- ours raw ---\n{}",
                String::from_utf8_lossy(&ours)
            )),
            (Err(e), _) => failures.push(format!("{name}: our output: {e}")),
            (_, Err(e)) => failures.push(format!("{name}: reference output: {e}")),
        }
    }
    println!(
        "differential corpus: {} cases, {} matched, {} failed (xsltproc live: {live})",
        dirs.len(),
        dirs.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
