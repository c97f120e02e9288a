//! What XSD validation costs (issue 12, ADR 0018), with `xmllint` (the
//! same libxml2, as a separate process) as the peer in the same run:
//!
//! - small documents: the shipped rule tests' xdomea 3.1.0 `dms.xml`
//!   (4–7 KB, the whole xdomea schema set) and Gewerbe import XML
//!   (2–3 KB), validated N times each by `drehscheibe-xsd` in-process and
//!   by one `xmllint --noout --stream --schema` over the same N files
//!   (schema compiled once by both);
//! - growing documents: a Gewerbe import with 1, 10, 100 MB of `meldung`
//!   elements — time, throughput and the validator's extra resident memory
//!   (high-water mark above the document itself, which the bench holds in
//!   memory), next to xmllint's time and peak RSS for the same file. Flat
//!   extra memory and linear time are the claim.
//!
//! Run with `cargo bench --bench validate` (knobs: `BENCH_DOCS`, default
//! 2000; `BENCH_MAX_MB`, default 100).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drehscheibe_rules::SchemaFactory;
use drehscheibe_suite::bench::env_usize;
use drehscheibe_suite::repo_root;
use drehscheibe_xsd::{Catalog, XsdFactory};

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resets this process's resident-memory high-water mark (Linux
/// `clear_refs` 5), so the next VmHWM reading is the peak since now.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// `xmllint --noout --stream --schema <schema> <files…>`: wall time and
/// peak RSS (from GNU time's `%M`, KiB) of the whole process.
fn xmllint(schema: &Path, files: &[PathBuf]) -> (Duration, u64) {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "xmllint", "--noout", "--stream", "--schema"])
        .arg(schema)
        .args(files)
        .output();
    let elapsed = started.elapsed();
    let out = match out {
        Ok(o) => o,
        Err(_) => {
            // No GNU time: time xmllint alone.
            let started = Instant::now();
            let o = Command::new("xmllint")
                .args(["--noout", "--stream", "--schema"])
                .arg(schema)
                .args(files)
                .output()
                .expect("xmllint (apt-get install libxml2-utils)");
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            return (started.elapsed(), 0);
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "xmllint: {stderr}");
    let peak = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (elapsed, peak)
}

fn per_doc_us(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

/// A Gewerbe import document of about `target` bytes: the `meldung`
/// elements of a shipped test case repeated.
fn gewerbe_import(template: &str, target: usize) -> Vec<u8> {
    let start = template.find("<meldung").unwrap();
    let end = template.rfind("</meldung>").unwrap() + "</meldung>".len();
    let (head, meldungen, tail) = (&template[..start], &template[start..end], &template[end..]);
    let mut out = String::with_capacity(target + template.len());
    out.push_str(head);
    while out.len() < target {
        out.push_str(meldungen);
    }
    out.push_str(tail);
    out.into_bytes()
}

fn main() {
    let is_bench = std::env::args().any(|a| a == "--bench");
    let docs = if is_bench {
        env_usize("BENCH_DOCS", 2000)
    } else {
        20
    };
    let max_mb = if is_bench {
        env_usize("BENCH_MAX_MB", 100)
    } else {
        1
    };
    let root = repo_root();
    let catalog = Arc::new(Catalog::load(root.join("schemas/catalog.xml")).unwrap());
    let factory = XsdFactory::new(catalog);
    let package = root.join("rules/gewerbeanmeldung/2.1.0");
    // `load` resolves and compiles the schema (as the depot load does).
    let started = Instant::now();
    let xdomea = factory
        .load(&package, "urn:xoev-de:xdomea:schema:3.1.0")
        .unwrap();
    let xdomea_compile = started.elapsed();
    let started = Instant::now();
    let import = factory.load(&package, "gewerbe-import.xsd").unwrap();
    println!(
        "schema compile: xdomea 3.1.0 set {:.1} ms, gewerbe-import.xsd {:.1} ms",
        xdomea_compile.as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "validate bench: {docs} small documents per schema, growing documents up to {max_mb} MB, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<PathBuf> = std::fs::read_dir(package.join("tests"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected").is_dir())
        .collect();
    for (label, name, schema, schema_file) in [
        (
            "xdomea 0605 (whole xdomea 3.1.0 set)",
            "dms.xml",
            &xdomea,
            root.join("schemas/xdomea/3.1.0/xdomea.xsd"),
        ),
        (
            "Gewerbe import",
            "fachverfahren.xml",
            &import,
            package.join("gewerbe-import.xsd"),
        ),
    ] {
        let inputs: Vec<Vec<u8>> = cases
            .iter()
            .map(|c| std::fs::read(c.join("expected").join(name)).unwrap())
            .collect();
        // The peer reads the same documents from files.
        let files: Vec<PathBuf> = (0..docs)
            .map(|i| {
                let path = tmp.path().join(format!("{i}-{name}"));
                std::fs::write(&path, &inputs[i % inputs.len()]).unwrap();
                path
            })
            .collect();
        let bytes: usize = (0..docs).map(|i| inputs[i % inputs.len()].len()).sum();
        schema.validate(&inputs[0]).unwrap();
        let started = Instant::now();
        for i in 0..docs {
            schema.validate(&inputs[i % inputs.len()]).unwrap();
        }
        let ours = started.elapsed();
        let (theirs, _) = xmllint(&schema_file, &files);
        println!(
            "{label}: {docs} docs, {:.1} KB average — drehscheibe-xsd {:.0} µs/doc ({:.0} docs/s), xmllint --stream {:.0} µs/doc incl. its start and one compile → ratio {:.2}× xmllint's time",
            bytes as f64 / docs as f64 / 1024.0,
            per_doc_us(ours, docs),
            docs as f64 / ours.as_secs_f64(),
            per_doc_us(theirs, docs),
            ours.as_secs_f64() / theirs.as_secs_f64(),
        );
    }

    let template = std::fs::read_to_string(
        package.join("tests/batch-two-meldungen/expected/fachverfahren.xml"),
    )
    .unwrap();
    let mut mb = 1;
    while mb <= max_mb {
        let doc = gewerbe_import(&template, mb << 20);
        let file = tmp.path().join(format!("import-{mb}.xml"));
        std::fs::write(&file, &doc).unwrap();
        reset_peak();
        let before = status_kib("VmRSS:");
        let started = Instant::now();
        import.validate(&doc).unwrap();
        let ours = started.elapsed();
        let extra_kib = status_kib("VmHWM:").saturating_sub(before);
        let (theirs, their_peak) = xmllint(
            &package.join("gewerbe-import.xsd"),
            std::slice::from_ref(&file),
        );
        println!(
            "Gewerbe import {mb:>4} MB: drehscheibe-xsd {:>8.1} ms ({:>6.1} MB/s, +{} KiB resident above the document), xmllint --stream {:>8.1} ms (peak RSS {:.1} MiB) → ratio {:.2}×",
            ours.as_secs_f64() * 1e3,
            doc.len() as f64 / 1048576.0 / ours.as_secs_f64(),
            extra_kib,
            theirs.as_secs_f64() * 1e3,
            their_peak as f64 / 1024.0,
            ours.as_secs_f64() / theirs.as_secs_f64(),
        );
        std::fs::remove_file(&file).unwrap();
        mb *= 10;
    }
}
