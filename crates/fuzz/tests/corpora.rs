//! Replays every stored fuzz input — the corpora the fuzzers built
//! (`fuzz/corpus/<target>/`) and the inputs of fixed findings
//! (`fuzz/regressions/<target>/`) — through the same target functions
//! the fuzzers run, so the suite fails if a fixed crash comes back. No
//! libFuzzer or nightly toolchain needed; `fuzz/README.md` has the live
//! fuzzing commands.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = root().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_target_has_a_seeded_corpus() {
    for (name, _) in drehscheibe_fuzz::TARGETS {
        let n = inputs(name).len();
        assert!(
            n >= 5,
            "fuzz/corpus/{name} holds {n} inputs; seed it (fuzz/README.md)"
        );
        assert!(
            root()
                .join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "no cargo-fuzz binary for target {name}"
        );
    }
}

macro_rules! replay {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let files = inputs(stringify!($name));
            let mut failed = Vec::new();
            for path in &files {
                let data = std::fs::read(path).unwrap();
                if std::panic::catch_unwind(|| drehscheibe_fuzz::$name(&data)).is_err() {
                    failed.push(path.display().to_string());
                }
            }
            assert!(
                failed.is_empty(),
                "{} fails on {} of {} inputs (messages above): {failed:#?}",
                stringify!($name),
                failed.len(),
                files.len()
            );
        }
    )*};
}

replay!(
    intake_xml,
    intake_json,
    http_multipart,
    xta_mtom,
    soap_envelope,
    jose,
    xpath,
    xslt
);
