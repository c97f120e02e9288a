//! Times repeated transforms of one input with one stylesheet (parse and
//! serialization included, compile excluded) — a quick check for a rule
//! author or while working on this crate:
//!
//! ```text
//! cargo run --release -p drehscheibe-xslt --example bench -- STYLE INPUT [N] [name=value]...
//! ```
//!
//! The comparison with libxslt on generated inputs of three sizes is the
//! workspace benchmark `benches/transform.rs` (`cargo bench --bench
//! transform`, figures in `docs/benchmarks.md`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use drehscheibe_xslt::Stylesheet;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(style), Some(input)) = (args.first(), args.get(1)) else {
        eprintln!("usage: bench STYLE INPUT [N] [name=value]...");
        return ExitCode::from(2);
    };
    let n: u32 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
        .max(1);
    let params: BTreeMap<String, String> = args
        .iter()
        .skip(3)
        .filter_map(|a| a.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let started = Instant::now();
    let stylesheet = match Stylesheet::compile_file(Path::new(style)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let compile = started.elapsed();
    let bytes = match std::fs::read(input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{input}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // the first run also compiles the XPath programs for this thread
    let first = Instant::now();
    let out = match stylesheet.transform_bytes(&bytes, &params) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let first = first.elapsed();
    let started = Instant::now();
    for _ in 0..n {
        if let Err(e) = stylesheet.transform_bytes(&bytes, &params) {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    let per = started.elapsed() / n;
    println!(
        "compile {compile:?}, first run {first:?}, per transform {per:?} ({} bytes in, {} bytes out, {:.1} MB/s)",
        bytes.len(),
        out.len(),
        bytes.len() as f64 / 1e6 / per.as_secs_f64()
    );
    ExitCode::SUCCESS
}
