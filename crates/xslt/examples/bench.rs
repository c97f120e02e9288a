//! Times repeated transforms of one input (parse included, compile
//! excluded): `cargo run --release -p drehscheibe-xslt --example bench -- STYLE INPUT [N]`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use drehscheibe_xslt::Stylesheet;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(style), Some(input)) = (args.first(), args.get(1)) else {
        eprintln!("usage: bench STYLE INPUT [N]");
        return;
    };
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100);
    let started = Instant::now();
    let stylesheet = match Stylesheet::compile_file(Path::new(style)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    let compile = started.elapsed();
    let bytes = std::fs::read(input).unwrap_or_default();
    let params = BTreeMap::new();
    // first run compiles the XPath programs for this thread
    let first = Instant::now();
    let out = stylesheet.transform_bytes(&bytes, &params);
    let first = first.elapsed();
    if let Err(e) = &out {
        eprintln!("{e}");
        return;
    }
    let started = Instant::now();
    for _ in 0..n {
        let _ = stylesheet.transform_bytes(&bytes, &params);
    }
    let per = started.elapsed() / n as u32;
    println!(
        "compile {compile:?}, first run {first:?}, per transform {per:?} ({} bytes in, {} bytes out)",
        bytes.len(),
        out.map(|o| o.len()).unwrap_or(0)
    );
}
