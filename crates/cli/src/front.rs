//! `drehscheibe` and `drehscheibe-hub`: one command line, two executables.
//!
//! Everything the command line can do is in `drehscheibe-hub` (the server,
//! the operations client, the rule tools). `drehscheibe` — the name users
//! type — is a small front: `drehscheibe transform` runs in it directly,
//! every other command replaces the front process with
//! `drehscheibe-hub` (`execve`: same process id, same arguments, same
//! standard streams, so service managers and signals see no difference).
//!
//! Why: rule authors call `drehscheibe transform` once per document from
//! scripts, as they call `xsltproc`. The hub executable is large (every
//! protocol, the stores, TLS) and links libxml2 (with ICU and libstdc++),
//! and the dynamic loader relocates and maps all of it before `main`:
//! 2.1 ms of CPU for `drehscheibe --version` against 1.5 ms for
//! `xsltproc --version`. The front links only the XSLT processor (and
//! keeps glibc's malloc: the hub's mimalloc is set up for a long-running
//! process, see [`crate::hub_allocator`]), so a one-shot transform starts
//! like xsltproc does (ADR 0020, docs/benchmarks.md).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;

/// File name suffix of the hub executable, next to the front:
/// `drehscheibe` → `drehscheibe-hub` (the test suite's
/// `drehscheibe-under-test` → `drehscheibe-under-test-hub`).
pub const HUB_SUFFIX: &str = "-hub";

/// Where the hub executable is: beside this executable, named after it
/// with [`HUB_SUFFIX`].
pub fn hub_path() -> std::io::Result<PathBuf> {
    let front = std::env::current_exe()?;
    let mut name: OsString = front
        .file_stem()
        .map(OsString::from)
        .unwrap_or_else(|| OsString::from("drehscheibe"));
    name.push(HUB_SUFFIX);
    if let Some(ext) = front.extension() {
        name.push(".");
        name.push(ext);
    }
    Ok(front.with_file_name(name))
}

/// The front executable that belongs to the hub executable `hub` (the
/// inverse of [`hub_path`]): `…/drehscheibe-hub` → `…/drehscheibe`; `None`
/// if `hub` is not named like a hub executable.
pub fn front_path(hub: &std::path::Path) -> Option<PathBuf> {
    let stem = hub.file_stem()?.to_str()?.strip_suffix(HUB_SUFFIX)?;
    let mut name = OsString::from(stem);
    if let Some(ext) = hub.extension() {
        name.push(".");
        name.push(ext);
    }
    Some(hub.with_file_name(name))
}

/// Replaces this process with the hub executable, passing the arguments
/// (and `argv[0]`, so usage messages name the command the user typed).
/// Returns only when that fails.
pub fn exec_hub() -> ExitCode {
    let hub = match hub_path() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: cannot find this executable's path: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| OsString::from("drehscheibe"));
    let error = std::process::Command::new(&hub)
        .arg0(arg0)
        .args(args)
        .exec();
    eprintln!(
        "error: cannot start the hub executable {}: {error} (it is built and installed next to drehscheibe: cargo build -p drehscheibe-cli builds both)",
        hub.display()
    );
    ExitCode::FAILURE
}
