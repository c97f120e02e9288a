//! Python oracles for tests (SaxonC-HE for XSLT, lxml for XML
//! canonicalisation): a venv per package and version, made once under the
//! calling test's target directory with `python3 -m venv` and `pip
//! install`, reused while its marker file is there. Missing tools fail the
//! test with what to install; they never skip it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Run `cmd`; panic with `what`, the command and its output when it cannot
/// start or fails. Returns its standard output.
pub fn run_checked(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("{what}: cannot run {cmd:?}: {e} (Python oracles need python3 with venv and pip; on Debian: apt-get install python3-venv)")
    });
    assert!(
        out.status.success(),
        "{what}: {cmd:?} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The Python interpreter of a venv in `dir` with `package==version`
/// installed and `module` importable, made first if needed (a half-made
/// venv from an interrupted install is made again).
pub fn venv(dir: &Path, package: &str, version: &str, module: &str) -> PathBuf {
    let venv = dir.join(format!("{package}-{version}"));
    let python = venv.join("bin").join("python");
    let marker = venv.join("drehscheibe-installed");
    if marker.exists() && python.exists() {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    run_checked(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        &format!("creating the {package} venv"),
    );
    run_checked(
        Command::new(&python)
            .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
            .arg(format!("{package}=={version}")),
        &format!("installing {package} from PyPI"),
    );
    run_checked(
        Command::new(&python).args(["-c", &format!("import {module}")]),
        &format!("importing {module}"),
    );
    std::fs::write(&marker, version).unwrap_or_else(|e| panic!("{}: {e}", marker.display()));
    python
}
