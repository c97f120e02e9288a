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

#[test]
fn every_stored_input_passes_its_target() {
    let mut failed = Vec::new();
    let mut total = 0;
    for (name, target) in drehscheibe_fuzz::TARGETS {
        for path in inputs(name) {
            total += 1;
            let data = std::fs::read(&path).unwrap();
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                failed.push(format!("{name}: {}", path.display()));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {total} stored inputs fail their target (messages above): {failed:#?}",
        failed.len()
    );
}
