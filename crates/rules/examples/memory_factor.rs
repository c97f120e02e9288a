//! Memory of the document representation per payload byte, for the two
//! issue 9 reproductions: a 15 MB JSON array `[0,0,…]` and 15.6 MB of
//! `<a/>` elements. Prints the tree's own size (`Document::heap_size`)
//! and the process's peak resident memory (`VmHWM`) while parsing, each
//! divided by the payload size. One case per process, so peaks don't mix.
//!
//! `cargo run --release -p drehscheibe-rules --example memory_factor -- json`
//! `cargo run --release -p drehscheibe-rules --example memory_factor -- xml`

use drehscheibe_rules::{validate, InputDocument};

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "json".into());
    let (payload, content_type) = match which.as_str() {
        "xml" => {
            let mut s = String::with_capacity(15_600_016);
            s.push_str("<r>");
            while s.len() < 15_600_000 {
                s.push_str("<a/>");
            }
            s.push_str("</r>");
            (s, "application/xml")
        }
        _ => {
            let mut s = String::with_capacity(15_000_002);
            s.push('[');
            while s.len() < 15_000_000 {
                if s.len() > 1 {
                    s.push(',');
                }
                s.push('0');
            }
            s.push(']');
            (s, "application/json")
        }
    };
    let before = vm_hwm_kib();
    let checked = validate(payload.as_bytes(), content_type);
    let after_check = vm_hwm_kib();
    let doc = match InputDocument::parse(payload.as_bytes(), content_type) {
        Ok(doc) => doc,
        Err(e) => {
            eprintln!("parse failed: {e}");
            std::process::exit(1);
        }
    };
    let peak = vm_hwm_kib();
    let tree = doc.document().heap_size() as f64;
    let len = payload.len() as f64;
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "{which}: payload {:.1} MB, intake check {:?} (+{:.0} MiB peak), tree {:.0} MiB = {:.1}x payload, peak RSS growth while parsing {:.0} MiB = {:.1}x payload",
        len / 1e6,
        checked.is_ok(),
        mib(after_check.saturating_sub(before)),
        tree / 1048576.0,
        tree / len,
        mib(peak.saturating_sub(before)),
        (peak.saturating_sub(before) * 1024) as f64 / len,
    );
}
