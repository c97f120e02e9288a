//! Publishing a rule package into the depot.
//!
//! Published versions are immutable: [`publish`] validates a package
//! (manifest, XPath expressions, stylesheets, the package's own tests),
//! refuses a version that already exists in the depot, and then copies the
//! package in atomically: into a hidden `<depot>/.publish-tmp-…` folder
//! first (every file and folder fsync'ed), then renamed to
//! `<depot>/<id>/<version>`. A crash leaves at most a hidden temporary
//! folder, which [`Depot::load`](crate::Depot::load) ignores; readers never
//! see a half-copied version.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use drehscheibe_model::RuleRef;

use crate::depot::DepotError;
use crate::manifest::Manifest;
use crate::package::RulePackage;
use crate::schema::Engines;
use crate::testing::{self, CaseResult};

/// Loads one package folder (`rule.toml` plus stylesheets) on its own,
/// strictly: a manifest error, an XPath expression that does not compile or
/// a stylesheet that does not load fails the load (several problems as
/// [`DepotError::Several`]).
pub fn load_package(dir: &Path, engines: impl Into<Engines>) -> Result<RulePackage, DepotError> {
    let (package, mut errors) = RulePackage::load(dir, &engines.into())?;
    match errors.len() {
        0 => Ok(package),
        1 => Err(errors.remove(0)),
        _ => Err(DepotError::Several(errors)),
    }
}

/// Why a package was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The package does not load (manifest, XPath, stylesheets).
    #[error("package {} is invalid: {source}", dir.display())]
    Invalid {
        /// The package folder.
        dir: PathBuf,
        /// The load error.
        source: Box<DepotError>,
    },
    /// The package's tests could not be collected.
    #[error("package {}: cannot collect its tests: {source}", dir.display())]
    Tests {
        /// The package folder.
        dir: PathBuf,
        /// What went wrong.
        source: Box<testing::TestingError>,
    },
    /// Some of the package's own test cases fail.
    #[error("rule {rule}: {} of {total} test cases failed: {}", failed.len(), failed.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", "))]
    TestsFailed {
        /// The rule version.
        rule: RuleRef,
        /// Number of cases run.
        total: usize,
        /// The failed cases.
        failed: Vec<CaseResult>,
    },
    /// `<depot>/<id>/<version>` exists already.
    #[error("rule {rule} is already published at {}: versions are immutable; publish a new version", path.display())]
    VersionExists {
        /// The rule version.
        rule: RuleRef,
        /// The existing folder.
        path: PathBuf,
    },
    /// The package contains something that cannot be published.
    #[error("{}: {message}", path.display())]
    Unpublishable {
        /// The offending entry.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Copying failed (the depot is unchanged).
    #[error("{}: {message}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
}

/// A successful publication.
#[derive(Debug, Clone)]
pub struct Published {
    /// The rule version now in the depot.
    pub rule: RuleRef,
    /// Its folder, `<depot>/<id>/<version>`.
    pub path: PathBuf,
    /// The package's test results (all passed; empty if it has no tests).
    pub results: Vec<CaseResult>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
    move |e| PublishError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Validates the package in `package_dir` and copies it into `depot_dir`
/// as `<id>/<version>` (see the module docs). An existing version is
/// refused first (only the manifest is read for that); then the package
/// is loaded strictly ([`load_package`]) and its tests run. The depot folder is created
/// if missing. Hidden entries (names starting with `.`) of the package are
/// not copied; symbolic links are refused.
pub fn publish(
    package_dir: &Path,
    depot_dir: &Path,
    engines: impl Into<Engines>,
) -> Result<Published, PublishError> {
    // An existing version is refused before anything else: no validation
    // result could change that answer.
    let manifest =
        Manifest::load(&package_dir.join("rule.toml")).map_err(|source| PublishError::Invalid {
            dir: package_dir.to_path_buf(),
            source: Box::new(source.into()),
        })?;
    let existing = depot_dir
        .join(&manifest.id)
        .join(manifest.version.to_string());
    if existing.exists() {
        return Err(PublishError::VersionExists {
            rule: RuleRef {
                id: manifest.id,
                version: manifest.version.to_string(),
            },
            path: existing,
        });
    }
    let package = load_package(package_dir, engines).map_err(|source| PublishError::Invalid {
        dir: package_dir.to_path_buf(),
        source: Box::new(source),
    })?;
    let rule = package.rule_ref();
    let cases = testing::package_cases(package_dir).map_err(|source| PublishError::Tests {
        dir: package_dir.to_path_buf(),
        source: Box::new(source),
    })?;
    let results: Vec<CaseResult> = cases
        .iter()
        .map(|case| testing::run_case(&package, case))
        .collect();
    let failed: Vec<CaseResult> = results.iter().filter(|r| !r.passed()).cloned().collect();
    if !failed.is_empty() {
        return Err(PublishError::TestsFailed {
            rule,
            total: results.len(),
            failed,
        });
    }

    let id_dir = depot_dir.join(&rule.id);
    let target = id_dir.join(&rule.version);
    if target.exists() {
        return Err(PublishError::VersionExists { rule, path: target });
    }
    std::fs::create_dir_all(&id_dir).map_err(io(&id_dir))?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let tmp = depot_dir.join(format!(
        ".publish-tmp-{}-{}-{}-{nanos}",
        rule.id,
        rule.version,
        std::process::id()
    ));
    let result = copy_tree(package_dir, &tmp)
        .and_then(|()| {
            // `rename` refuses a non-empty target, so a concurrent publish
            // of the same version cannot be overwritten.
            std::fs::rename(&tmp, &target).map_err(|e| {
                if target.exists() {
                    PublishError::VersionExists {
                        rule: rule.clone(),
                        path: target.clone(),
                    }
                } else {
                    io(&target)(e)
                }
            })
        })
        .and_then(|()| sync_dir(&id_dir))
        .and_then(|()| sync_dir(depot_dir));
    if let Err(e) = result {
        if tmp.exists() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        return Err(e);
    }
    Ok(Published {
        rule,
        path: target,
        results,
    })
}

/// Copies `from` into the new folder `to`, fsync'ing every file and
/// folder.
fn copy_tree(from: &Path, to: &Path) -> Result<(), PublishError> {
    std::fs::create_dir(to).map_err(io(to))?;
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(from)
        .map_err(io(from))?
        .collect::<Result<_, _>>()
        .map_err(io(from))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let source = entry.path();
        let dest = to.join(&name);
        let kind = entry.file_type().map_err(io(&source))?;
        if kind.is_symlink() {
            return Err(PublishError::Unpublishable {
                path: source,
                message: "symbolic links are not published; copy the file into the package"
                    .to_owned(),
            });
        } else if kind.is_dir() {
            copy_tree(&source, &dest)?;
        } else if kind.is_file() {
            std::fs::copy(&source, &dest).map_err(io(&source))?;
            std::fs::File::open(&dest)
                .and_then(|f| f.sync_all())
                .map_err(io(&dest))?;
        } else {
            return Err(PublishError::Unpublishable {
                path: source,
                message: "neither a file nor a folder".to_owned(),
            });
        }
    }
    sync_dir(to)
}

fn sync_dir(dir: &Path) -> Result<(), PublishError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))
}
