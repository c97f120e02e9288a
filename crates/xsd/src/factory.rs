//! [`XsdFactory`] (the rule depot's [`SchemaFactory`]) and [`XsdSchema`]
//! (its [`SchemaValidator`]).

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use drehscheibe_rules::schema::{SchemaError, SchemaFactory, SchemaValidator, SchemaViolation};

use crate::catalog::{has_uri_scheme, Catalog};
use crate::compile::{self, CompileSpec};
use crate::validate::{self, Outcome};

/// Compiles XML schemas with libxml2, resolving URI locations and
/// imports through an XML [`Catalog`]; never touches the network.
#[derive(Debug, Clone)]
pub struct XsdFactory {
    catalog: Arc<Catalog>,
}

/// A compiled schema: cheap to share (`Send + Sync`); each thread that
/// validates compiles its own libxml2 copy once and caches it.
#[derive(Debug)]
pub struct XsdSchema {
    location: String,
    id: u64,
    spec: CompileSpec,
}

/// Process-unique ids of [`XsdSchema`]s (the per-thread cache key).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl XsdFactory {
    /// A factory resolving URI locations through `catalog`.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self { catalog }
    }

    /// The catalog this factory resolves through.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// [`SchemaFactory::load`] with the concrete result type: `location` is
    /// a URI the catalog maps (`urn:xoev-de:xdomea:schema:3.1.0`) or a
    /// relative path inside `package_dir` (no absolute paths, no `..`).
    pub fn load_schema(
        &self,
        package_dir: &Path,
        location: &str,
    ) -> Result<Arc<XsdSchema>, SchemaError> {
        let schema_error = |message: String| SchemaError::Schema {
            schema: location.to_string(),
            message,
        };
        let file = if has_uri_scheme(location) {
            let file = self.catalog.resolve(location).ok_or_else(|| {
                schema_error(format!(
                    "{location} is not in the XML catalog {}; the hub never fetches schemas from the network",
                    self.catalog
                ))
            })?;
            if !file.is_file() {
                return Err(schema_error(format!(
                    "the XML catalog {} maps {location} to {}, which is not a file",
                    self.catalog,
                    file.display()
                )));
            }
            file
        } else {
            package_file(package_dir, location).map_err(schema_error)?
        };
        let mut roots = vec![package_dir.to_path_buf()];
        if let Some(dir) = file.parent() {
            roots.push(dir.to_path_buf());
        }
        self.compile(location.to_string(), file, roots)
    }

    /// Compiles the schema file `schema_file` given directly (for example
    /// on a command line); imports may read files below its directory and
    /// the catalog's roots, or be mapped by the catalog.
    pub fn load_path(&self, schema_file: &Path) -> Result<Arc<XsdSchema>, SchemaError> {
        let location = schema_file.display().to_string();
        if !schema_file.is_file() {
            return Err(SchemaError::Schema {
                schema: location,
                message: format!("schema file {} does not exist", schema_file.display()),
            });
        }
        let roots = schema_file
            .parent()
            .map(|dir| {
                if dir.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    dir.to_path_buf()
                }
            })
            .into_iter()
            .collect();
        self.compile(location, schema_file.to_path_buf(), roots)
    }

    fn compile(
        &self,
        location: String,
        file: PathBuf,
        mut roots: Vec<PathBuf>,
    ) -> Result<Arc<XsdSchema>, SchemaError> {
        roots.extend(self.catalog.roots());
        let schema = XsdSchema {
            location,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            spec: CompileSpec {
                path: file,
                catalog: Arc::clone(&self.catalog),
                roots,
            },
        };
        // Compiled now, on the loading thread, so that a broken schema is
        // reported when the package is loaded; kept for this thread.
        let compiled = compile::compile(&schema.spec).map_err(|message| SchemaError::Schema {
            schema: schema.location.clone(),
            message,
        })?;
        compile::insert(schema.id, std::rc::Rc::new(compiled));
        Ok(Arc::new(schema))
    }
}

/// The file `location` names inside `package_dir`.
fn package_file(package_dir: &Path, location: &str) -> Result<PathBuf, String> {
    let relative = Path::new(location);
    if location.is_empty() {
        return Err("the schema location is empty".to_string());
    }
    if relative.is_absolute() || relative.has_root() {
        return Err(format!(
            "schema location {location} is an absolute path; a schema is a file inside the rule package or a URI listed in the XML catalog"
        ));
    }
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "schema location {location} leaves the rule package folder"
        ));
    }
    let file = package_dir.join(relative);
    if !file.is_file() {
        return Err(format!("schema file {} does not exist", file.display()));
    }
    // A symbolic link must not lead out of the package either.
    let inside = match (
        std::fs::canonicalize(&file),
        std::fs::canonicalize(package_dir),
    ) {
        (Ok(file), Ok(dir)) => file.starts_with(dir),
        _ => false,
    };
    if !inside {
        return Err(format!(
            "schema location {location} leaves the rule package folder"
        ));
    }
    Ok(file)
}

impl SchemaFactory for XsdFactory {
    fn load(
        &self,
        package_dir: &Path,
        location: &str,
    ) -> Result<Arc<dyn SchemaValidator>, SchemaError> {
        Ok(self.load_schema(package_dir, location)?)
    }
}

impl XsdSchema {
    /// The schema as declared (location text, or the file for
    /// [`XsdFactory::load_path`]).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The schema file compiled.
    pub fn path(&self) -> &Path {
        &self.spec.path
    }

    /// The process-unique id keying the per-thread caches.
    pub fn cache_id(&self) -> u64 {
        self.id
    }
}

impl SchemaValidator for XsdSchema {
    fn location(&self) -> &str {
        &self.location
    }

    fn validate(&self, document: &[u8]) -> Result<(), SchemaError> {
        let compiled =
            compile::compiled(self.id, &self.spec).map_err(|message| SchemaError::Schema {
                schema: self.location.clone(),
                message,
            })?;
        match validate::validate(&compiled, document) {
            Outcome::Valid => Ok(()),
            Outcome::Invalid(collector) => Err(SchemaError::Invalid(SchemaViolation {
                schema: self.location.clone(),
                issues: collector
                    .issues
                    .into_iter()
                    .map(|i| i.into_schema_issue())
                    .collect(),
                more: collector.more,
            })),
            Outcome::Failed(message) => Err(SchemaError::Schema {
                schema: self.location.clone(),
                message,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn schema_is_send_and_sync() {
        assert_send_sync::<XsdSchema>();
        assert_send_sync::<XsdFactory>();
    }
}
