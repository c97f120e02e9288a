//! Runs one stylesheet over one input file and writes the result to
//! stdout: `cargo run -p drehscheibe-xslt --example xslt -- STYLE INPUT [name=value]...`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use drehscheibe_xslt::Stylesheet;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(style), Some(input)) = (args.first(), args.get(1)) else {
        eprintln!("usage: xslt STYLESHEET INPUT [name=value]...");
        return ExitCode::from(2);
    };
    let mut params = BTreeMap::new();
    for p in &args[2..] {
        if let Some((k, v)) = p.split_once('=') {
            params.insert(k.to_string(), v.to_string());
        }
    }
    let stylesheet = match Stylesheet::compile_file(Path::new(style)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let bytes = match std::fs::read(input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{input}: {e}");
            return ExitCode::from(1);
        }
    };
    match stylesheet.transform_bytes(&bytes, &params) {
        Ok(out) => {
            let _ = std::io::stdout().write_all(&out);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
