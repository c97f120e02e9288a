//! Ad-hoc throughput check: validate, parse and parse + recognize of a
//! ~30 KB XGewerbeanzeige message against a three-rule depot.
//!
//! `cargo run --release -p drehscheibe-rules --example parse_recognize`

use std::time::Instant;

use drehscheibe_rules::{validate, Depot, InputDocument};

const SAMPLE: &str = include_str!("../tests/fixtures/xgwa2.1-valid.xml");
const NS: &str = "http://www.xgewerbeanzeige.de/spezifikation/2.1";

fn rule(id: &str, ns: &str, condition: &str, kommune: &str, leistung: &str) -> String {
    format!(
        r#"id = "{id}"
version = "1.0.0"
title = "{id}"
[namespaces]
xga = "{ns}"
[match]
channels = ["*"]
content_types = ["application/xml", "application/json"]
condition = "{condition}"
[extract]
kommune = "{kommune}"
leistung = "'{leistung}'"
[[outputs]]
target = "fachverfahren"
content_type = "application/xml"
filename = "{{id}}.xml"
"#
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let rules = [
        (
            "baumfaellung",
            "/fn:map/fn:string[@key='antragsart'] = 'baumfaellung'",
            "/fn:map/fn:string[@key='ags']",
            "99104005000000",
        ),
        (
            "hundesteuer",
            "/fn:map/fn:string[@key='antragsart'] = 'hundesteuer'",
            "/fn:map/fn:string[@key='ags']",
            "99102013000000",
        ),
        (
            "gewerbeanmeldung",
            "exists(/xga:sta.gewerbemeldung.0100)",
            "string((//xga:gemeindeSchluessel/code)[1])",
            "99050012104000",
        ),
    ];
    for (id, condition, kommune, leistung) in rules {
        let dir = tmp.path().join(id).join("1.0.0");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(
            dir.join("rule.toml"),
            rule(id, NS, condition, kommune, leistung),
        )?;
    }
    let depot = Depot::load(tmp.path(), None)?;

    // Grow the sample to ~30 KB by repeating its <xga:satz> record.
    let start = SAMPLE.find("<xga:satz>").ok_or("no satz")?;
    let end = SAMPLE.find("</xga:satz>").ok_or("no satz end")? + "</xga:satz>".len();
    let satz = &SAMPLE[start..end];
    let mut doc = SAMPLE.to_string();
    while doc.len() < 30_000 {
        doc.insert_str(end, satz);
    }
    let bytes = doc.as_bytes();
    println!("document: {} bytes", bytes.len());

    let n = 2000;
    let t = Instant::now();
    for _ in 0..n {
        validate(bytes, "application/xml")?;
    }
    let validate_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;

    let t = Instant::now();
    for _ in 0..n {
        InputDocument::parse(bytes, "application/xml")?;
    }
    let parse_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;

    let t = Instant::now();
    for _ in 0..n {
        let input = InputDocument::parse(bytes, "application/xml")?;
        let found = depot.recognize(&input, "portal", "application/xml")?;
        assert_eq!(found.kommune_key, "12052000");
    }
    let total_us = t.elapsed().as_secs_f64() * 1e6 / n as f64;

    println!("validate (scan only):   {validate_us:8.1} µs");
    println!("parse (scan + tree):    {parse_us:8.1} µs");
    println!(
        "parse + recognize:      {total_us:8.1} µs  (≈ {:.0} msgs/s on one core)",
        1e6 / total_us
    );
    Ok(())
}
