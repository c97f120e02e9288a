//! The rule depot: every version of every rule, and recognition.
//!
//! Layout: `<dir>/<id>/<version>/rule.toml` (plus the package's stylesheets
//! and an optional `tests/` folder). Folder names must equal the manifest's
//! `id` and `version`. Entries starting with `.` are ignored, as are plain
//! files next to the rule folders (e.g. a README).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use drehscheibe_model::RuleRef;
use semver::{Version, VersionReq};

use crate::input::InputDocument;
use crate::manifest::{is_valid_id, ManifestError};
use crate::package::RulePackage;
use crate::schema::{Engines, SchemaError};
use crate::transform::TransformError;
use crate::xpath;

/// Why (part of) the depot could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepotError {
    /// A directory could not be read.
    #[error("{}: cannot read: {message}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// A `rule.toml` is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A folder that is neither a rule id nor a semantic version.
    #[error("{}: {message}", path.display())]
    Layout {
        /// The offending folder.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Manifest `id`/`version` differ from the folder names.
    #[error("{}: manifest {field} {manifest:?} does not match its folder name {folder:?}", path.display())]
    FolderMismatch {
        /// The package folder.
        path: PathBuf,
        /// `id` or `version`.
        field: &'static str,
        /// Folder name.
        folder: String,
        /// Manifest value.
        manifest: String,
    },
    /// An output names a stylesheet but the depot was loaded without a
    /// transform engine.
    #[error("rule {rule} output {target} names transform {transform} but no transform engine is available")]
    NoTransformEngine {
        /// The rule version.
        rule: RuleRef,
        /// Output role.
        target: String,
        /// Stylesheet path as written in the manifest.
        transform: String,
    },
    /// An output names a stylesheet that does not exist.
    #[error("rule {rule} output {target}: stylesheet {} does not exist", path.display())]
    StylesheetMissing {
        /// The rule version.
        rule: RuleRef,
        /// Output role.
        target: String,
        /// Expected stylesheet path.
        path: PathBuf,
    },
    /// The transform engine refused a stylesheet.
    #[error("rule {rule} output {target}: {source}")]
    Stylesheet {
        /// The rule version.
        rule: RuleRef,
        /// Output role.
        target: String,
        /// The engine's error.
        source: Box<TransformError>,
    },
    /// A rule declares a schema but the depot was loaded without a schema
    /// validator.
    #[error("rule {rule} declares schema {location} but no schema validator is available")]
    NoSchemaValidator {
        /// The rule version.
        rule: RuleRef,
        /// Schema location as written in the manifest.
        location: String,
    },
    /// A declared schema could not be resolved or compiled.
    #[error("rule {rule}: {source}")]
    Schema {
        /// The rule version.
        rule: RuleRef,
        /// The validator's error.
        source: Box<SchemaError>,
    },
    /// More than one of the above.
    #[error("{} errors in the rule depot: {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | "))]
    Several(Vec<DepotError>),
}

/// Why a message could not be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No rule's filters and condition accept the document.
    #[error("no rule matches (channel {channel:?}, content type {content_type:?})")]
    NoMatchingRule {
        /// Input channel.
        channel: String,
        /// Media type.
        content_type: String,
    },
    /// Several rules of the same, highest priority match.
    #[error("ambiguous: rules {} all match with priority {priority}", rules.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    Ambiguous {
        /// The shared priority.
        priority: i32,
        /// The matching rules (latest versions), sorted by id.
        rules: Vec<RuleRef>,
    },
    /// `extract.kommune` gave an empty value.
    #[error("rule {rule}: extract.kommune `{expression}` found no Kommune key")]
    MissingKommune {
        /// The rule version.
        rule: RuleRef,
        /// The expression.
        expression: String,
    },
    /// `extract.leistung` gave an empty value.
    #[error("rule {rule}: extract.leistung `{expression}` found no Leistung key")]
    MissingLeistung {
        /// The rule version.
        rule: RuleRef,
        /// The expression.
        expression: String,
    },
    /// An expression raised an error for this document.
    #[error("rule {rule}: {key} `{expression}` failed: {message}")]
    Evaluation {
        /// The rule version.
        rule: RuleRef,
        /// `match.condition`, `extract.kommune` or `extract.leistung`.
        key: String,
        /// The expression.
        expression: String,
        /// The XPath engine's error.
        message: String,
    },
    /// The matching rule was loaded leniently with an error.
    #[error("rule {rule} matches but is unavailable: {reason}")]
    RuleUnavailable {
        /// The rule version.
        rule: RuleRef,
        /// The load error.
        reason: String,
    },
}

/// Outcome of [`Depot::recognize`].
#[derive(Debug, Clone)]
pub struct Recognition {
    /// The rule (latest version) that recognised the document.
    pub rule: Arc<RulePackage>,
    /// Extracted Kommune key (AGS/ARS or org id).
    pub kommune_key: String,
    /// Extracted LeiKa key.
    pub leistung: String,
}

/// All loaded rule packages.
#[derive(Debug, Default)]
pub struct Depot {
    dir: PathBuf,
    rules: BTreeMap<String, BTreeMap<Version, Arc<RulePackage>>>,
    /// For recognition, built once at load: per rule id its versions,
    /// newest first; ids by their highest priority, then by id.
    recognition_order: Vec<Vec<Arc<RulePackage>>>,
    errors: Vec<DepotError>,
}

/// The highest priority among a rule id's versions.
fn top_priority(versions: &[Arc<RulePackage>]) -> i32 {
    versions
        .iter()
        .map(|p| p.priority())
        .max()
        .unwrap_or_default()
}

fn read_dir_sorted(path: &Path) -> Result<Vec<(String, PathBuf)>, DepotError> {
    let io = |e: std::io::Error| DepotError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            out.push((name, path));
        }
    }
    out.sort();
    Ok(out)
}

impl Depot {
    /// Loads every package under `dir`. Any error fails the whole load
    /// (all errors are reported, as [`DepotError::Several`] when more than
    /// one).
    ///
    /// `factory` loads stylesheets; with `None`, a rule whose output names
    /// a transform is an error
    /// ([`DepotError::NoTransformEngine`]), never a silent pass-through.
    pub fn load(dir: &Path, engines: impl Into<Engines>) -> Result<Depot, DepotError> {
        let depot = Self::load_lenient(dir, engines)?;
        let mut errors = depot.errors;
        match errors.len() {
            0 => Ok(Depot { errors, ..depot }),
            1 => Err(errors.remove(0)),
            _ => Err(DepotError::Several(errors)),
        }
    }

    /// Loads what can be loaded and records the rest in
    /// [`Depot::load_errors`]; fails only if `dir` itself cannot be read.
    ///
    /// Packages whose manifest is valid but whose transforms could not be
    /// loaded are kept, marked [unavailable](RulePackage::unavailable):
    /// they still take part in recognition, and a message they win fails
    /// with [`RouteError::RuleUnavailable`] carrying the load error, so the
    /// hub can start and reject such messages with a reason.
    pub fn load_lenient(dir: &Path, engines: impl Into<Engines>) -> Result<Depot, DepotError> {
        let engines = engines.into();
        let mut depot = Depot {
            dir: dir.to_path_buf(),
            ..Depot::default()
        };
        for (id, id_path) in read_dir_sorted(dir)? {
            if !is_valid_id(&id) {
                depot.errors.push(DepotError::Layout {
                    path: id_path,
                    message: format!("folder {id:?} is not a rule id ([a-z0-9-]+)"),
                });
                continue;
            }
            let versions = match read_dir_sorted(&id_path) {
                Ok(v) => v,
                Err(e) => {
                    depot.errors.push(e);
                    continue;
                }
            };
            for (folder, path) in versions {
                if let Err(e) = depot.load_one(&id, &folder, &path, &engines) {
                    depot.errors.push(e);
                }
            }
        }
        for error in &depot.errors {
            tracing::warn!(%error, "rule depot");
        }
        depot.recognition_order = depot
            .rules
            .values()
            .map(|versions| versions.values().rev().cloned().collect::<Vec<_>>())
            .collect();
        // Stable: id order within a priority.
        depot
            .recognition_order
            .sort_by_key(|versions| std::cmp::Reverse(top_priority(versions)));
        Ok(depot)
    }

    fn load_one(
        &mut self,
        id: &str,
        folder: &str,
        path: &Path,
        engines: &Engines,
    ) -> Result<(), DepotError> {
        let version = Version::parse(folder).map_err(|e| DepotError::Layout {
            path: path.to_path_buf(),
            message: format!("folder {folder:?} is not a semantic version: {e}"),
        })?;
        let (package, errors) = RulePackage::load(path, engines)?;
        if package.id() != id {
            return Err(DepotError::FolderMismatch {
                path: path.to_path_buf(),
                field: "id",
                folder: id.to_owned(),
                manifest: package.id().to_owned(),
            });
        }
        if package.version().to_string() != folder {
            return Err(DepotError::FolderMismatch {
                path: path.to_path_buf(),
                field: "version",
                folder: folder.to_owned(),
                manifest: package.version().to_string(),
            });
        }
        self.errors.extend(errors);
        self.rules
            .entry(id.to_owned())
            .or_default()
            .insert(version, Arc::new(package));
        Ok(())
    }

    /// The depot directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Errors recorded by [`Depot::load_lenient`] (empty after a successful
    /// [`Depot::load`]).
    pub fn load_errors(&self) -> &[DepotError] {
        &self.errors
    }

    /// The highest version of `id` that satisfies `req`.
    pub fn resolve(&self, id: &str, req: &VersionReq) -> Option<Arc<RulePackage>> {
        self.rules
            .get(id)?
            .iter()
            .rev()
            .find(|(v, _)| req.matches(v))
            .map(|(_, p)| p.clone())
    }

    /// Exactly `id@version`.
    pub fn get(&self, id: &str, version: &Version) -> Option<Arc<RulePackage>> {
        self.rules.get(id)?.get(version).cloned()
    }

    /// Every loaded package, by id, then version.
    pub fn packages(&self) -> Vec<Arc<RulePackage>> {
        self.rules
            .values()
            .flat_map(|versions| versions.values().cloned())
            .collect()
    }

    /// The highest version of each rule id, by id.
    pub fn latest_per_id(&self) -> Vec<Arc<RulePackage>> {
        self.rules
            .values()
            .filter_map(|versions| versions.values().next_back().cloned())
            .collect()
    }

    /// Finds the rule for a document and extracts its keys.
    ///
    /// Considers, per rule id, the versions whose channel and content-type
    /// filters accept the message, newest first: the id matches with its
    /// newest version whose condition holds. Ids are tried from the
    /// highest priority down, stopping below the first priority that
    /// matched. No match is [`RouteError::NoMatchingRule`], two or more
    /// ids at that priority [`RouteError::Ambiguous`]. An expression error
    /// is reported, not skipped.
    ///
    /// The winning id's matching version then extracts Kommune and
    /// Leistung. If it is unavailable (it failed to load) or finds no
    /// Kommune or Leistung, the id's older versions whose condition holds
    /// are tried in turn (ADR 0003): a message in a format only an older
    /// version knows is recognised by that version — the one named in the
    /// audit trail — and reaches the Kommunen that still pin it. If none
    /// succeeds, the newest matching version's error is returned.
    pub fn recognize(
        &self,
        doc: &InputDocument,
        channel: &str,
        content_type: &str,
    ) -> Result<Recognition, RouteError> {
        let accepts = |p: &RulePackage| p.manifest().accepts(channel, content_type);
        xpath::with_session(doc, channel, content_type, |session| {
            // (the id's versions, index of its newest matching version)
            let mut matched: Vec<(&Vec<Arc<RulePackage>>, usize)> = Vec::new();
            let best = |m: &[(&Vec<Arc<RulePackage>>, usize)]| {
                m.iter().map(|(v, i)| v[*i].priority()).max()
            };
            for versions in &self.recognition_order {
                if best(&matched).is_some_and(|b| top_priority(versions) < b) {
                    break;
                }
                for (i, package) in versions.iter().enumerate() {
                    if accepts(package) && package.condition(session)? {
                        matched.push((versions, i));
                        break;
                    }
                }
            }
            let Some(priority) = best(&matched) else {
                return Err(RouteError::NoMatchingRule {
                    channel: channel.to_owned(),
                    content_type: content_type.to_owned(),
                });
            };
            matched.retain(|(v, i)| v[*i].priority() == priority);
            let (versions, first) = match matched.as_slice() {
                [one] => *one,
                _ => {
                    return Err(RouteError::Ambiguous {
                        priority,
                        rules: matched.iter().map(|(v, i)| v[*i].rule_ref()).collect(),
                    })
                }
            };
            let mut first_error = None;
            for (i, candidate) in versions.iter().enumerate().skip(first) {
                if i > first && !(accepts(candidate) && candidate.condition(session)?) {
                    continue;
                }
                let attempt = match candidate.unavailable() {
                    Some(reason) => Err(RouteError::RuleUnavailable {
                        rule: candidate.rule_ref(),
                        reason: reason.to_owned(),
                    }),
                    None => candidate.extract_in(session),
                };
                match attempt {
                    Ok((kommune_key, leistung)) => {
                        return Ok(Recognition {
                            rule: candidate.clone(),
                            kommune_key,
                            leistung,
                        })
                    }
                    Err(
                        e @ (RouteError::RuleUnavailable { .. }
                        | RouteError::MissingKommune { .. }
                        | RouteError::MissingLeistung { .. }),
                    ) => {
                        first_error.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(first_error.unwrap_or(RouteError::NoMatchingRule {
                channel: channel.to_owned(),
                content_type: content_type.to_owned(),
            }))
        })
    }
}
