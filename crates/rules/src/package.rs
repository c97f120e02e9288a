//! A loaded rule package: one version of one rule.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use drehscheibe_model::RuleRef;

use crate::container::{plan_xdomea, ContainerFormat};
use crate::depot::{DepotError, RouteError};
use crate::input::InputDocument;
use crate::manifest::{expand_filename, Manifest, ManifestExprs, OutputSpec, ParamSpec};
use crate::schema::{Engines, SchemaError, SchemaValidator};
use crate::transform::{RenderContext, RenderedOutput, TransformError, Transformer};
use crate::xpath::{self, ExprId, Session};

/// One version of one rule: manifest, compiled expressions and loaded
/// transforms. Shared as `Arc<RulePackage>`.
pub struct RulePackage {
    manifest: Manifest,
    dir: PathBuf,
    exprs: ManifestExprs,
    /// Parallel to `manifest.outputs`; `Some` for outputs with a transform.
    transformers: Vec<Option<Arc<dyn Transformer>>>,
    /// The compiled `[input] schema`, if declared (and loaded).
    input_schema: Option<Arc<dyn SchemaValidator>>,
    /// Parallel to `manifest.outputs`; `Some` for outputs with a schema.
    output_schemas: Vec<Option<Arc<dyn SchemaValidator>>>,
    /// Set when the package was loaded leniently despite an error.
    unavailable: Option<String>,
}

impl fmt::Debug for RulePackage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RulePackage")
            .field("rule", &self.rule_ref().to_string())
            .field("dir", &self.dir)
            .field("unavailable", &self.unavailable)
            .finish_non_exhaustive()
    }
}

impl RulePackage {
    /// Loads the package in `dir` (`dir/rule.toml` plus stylesheets).
    ///
    /// Manifest errors fail the load. Transform problems (no factory, a
    /// missing or broken stylesheet) are returned next to a package marked
    /// unavailable, so a lenient caller can keep it: it still claims its
    /// messages at recognition, which then fail with the reason.
    pub(crate) fn load(
        dir: &Path,
        engines: &Engines,
    ) -> Result<(Self, Vec<DepotError>), DepotError> {
        let factory = engines.transform.as_ref();
        let (manifest, exprs) = Manifest::load_compiled(&dir.join("rule.toml"))?;
        let rule = RuleRef {
            id: manifest.id.clone(),
            version: manifest.version.to_string(),
        };
        let mut transformers = Vec::with_capacity(manifest.outputs.len());
        let mut errors = Vec::new();
        for output in &manifest.outputs {
            let Some(transform) = &output.transform else {
                transformers.push(None);
                continue;
            };
            let path = dir.join(transform);
            let loaded = match factory {
                None => Err(DepotError::NoTransformEngine {
                    rule: rule.clone(),
                    target: output.target.clone(),
                    transform: transform.display().to_string(),
                }),
                Some(_) if !path.is_file() => Err(DepotError::StylesheetMissing {
                    rule: rule.clone(),
                    target: output.target.clone(),
                    path: path.clone(),
                }),
                Some(factory) => factory
                    .load(&path)
                    .map_err(|source| DepotError::Stylesheet {
                        rule: rule.clone(),
                        target: output.target.clone(),
                        source: Box::new(source),
                    }),
            };
            match loaded {
                Ok(t) => transformers.push(Some(t)),
                Err(e) => {
                    transformers.push(None);
                    errors.push(e);
                }
            }
        }
        let load_schema = |location: &Option<String>, errors: &mut Vec<DepotError>| {
            let location = location.as_ref()?;
            let loaded = match &engines.schema {
                None => Err(DepotError::NoSchemaValidator {
                    rule: rule.clone(),
                    location: location.clone(),
                }),
                Some(factory) => factory
                    .load(dir, location)
                    .map_err(|source| DepotError::Schema {
                        rule: rule.clone(),
                        source: Box::new(source),
                    }),
            };
            loaded.map_err(|e| errors.push(e)).ok()
        };
        let input_schema = load_schema(&manifest.input_schema, &mut errors);
        let output_schemas = manifest
            .outputs
            .iter()
            .map(|o| load_schema(&o.schema, &mut errors))
            .collect();
        let unavailable = if errors.is_empty() {
            None
        } else {
            Some(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        };
        Ok((
            Self {
                manifest,
                dir: dir.to_path_buf(),
                exprs,
                transformers,
                input_schema,
                output_schemas,
                unavailable,
            },
            errors,
        ))
    }

    /// Rule id.
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    /// Package version.
    pub fn version(&self) -> &semver::Version {
        &self.manifest.version
    }

    /// `id@version`, as recorded on messages.
    pub fn rule_ref(&self) -> RuleRef {
        RuleRef {
            id: self.manifest.id.clone(),
            version: self.manifest.version.to_string(),
        }
    }

    /// Title from the manifest.
    pub fn title(&self) -> &str {
        &self.manifest.title
    }

    /// Priority from the manifest.
    pub fn priority(&self) -> i32 {
        self.manifest.priority
    }

    /// Declared parameters.
    pub fn params(&self) -> &[ParamSpec] {
        &self.manifest.params
    }

    /// Declared outputs.
    pub fn outputs(&self) -> &[OutputSpec] {
        &self.manifest.outputs
    }

    /// The whole manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Package directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Why this package cannot render, if it was loaded leniently with an
    /// error; `None` for a usable package.
    pub fn unavailable(&self) -> Option<&str> {
        self.unavailable.as_deref()
    }

    fn eval_error(&self, key: &str, id: ExprId, message: String) -> RouteError {
        RouteError::Evaluation {
            rule: self.rule_ref(),
            key: key.to_owned(),
            expression: self.exprs.set.text(id).to_owned(),
            message,
        }
    }

    /// Evaluates the match condition (channel/content-type filters are the
    /// caller's business).
    pub(crate) fn condition(&self, session: &mut Session<'_>) -> Result<bool, RouteError> {
        let id = self.exprs.condition;
        session
            .boolean(&self.exprs.set, id)
            .map_err(|m| self.eval_error("match.condition", id, m))
    }

    pub(crate) fn extract_in(
        &self,
        session: &mut Session<'_>,
    ) -> Result<(String, String), RouteError> {
        let id = self.exprs.kommune;
        let kommune = session
            .string(&self.exprs.set, id)
            .map_err(|m| self.eval_error("extract.kommune", id, m))?;
        if kommune.is_empty() {
            return Err(RouteError::MissingKommune {
                rule: self.rule_ref(),
                expression: self.exprs.set.text(id).to_owned(),
            });
        }
        let id = self.exprs.leistung;
        let leistung = session
            .string(&self.exprs.set, id)
            .map_err(|m| self.eval_error("extract.leistung", id, m))?;
        if leistung.is_empty() {
            return Err(RouteError::MissingLeistung {
                rule: self.rule_ref(),
                expression: self.exprs.set.text(id).to_owned(),
            });
        }
        Ok((kommune, leistung))
    }

    /// Extracts `(kommune_key, leistung)` from a document with this
    /// package's expressions. Values are whitespace-trimmed; an empty value
    /// is an error, as is an expression returning more than one item.
    pub fn extract(
        &self,
        doc: &InputDocument,
        channel: &str,
        content_type: &str,
    ) -> Result<(String, String), RouteError> {
        xpath::with_session(doc, channel, content_type, |s| self.extract_in(s))
    }

    /// Whether this package's match condition holds for `doc` (channel and
    /// content type filters included).
    pub fn matches(
        &self,
        doc: &InputDocument,
        channel: &str,
        content_type: &str,
    ) -> Result<bool, RouteError> {
        if !self.manifest.accepts(channel, content_type) {
            return Ok(false);
        }
        xpath::with_session(doc, channel, content_type, |s| self.condition(s))
    }

    /// Checks tenant-supplied parameters against the declarations: every
    /// supplied name must be declared, values must have the declared type,
    /// required ones must be present. Returns the values in canonical form
    /// with defaults filled in; the error lists every problem.
    pub fn check_params(
        &self,
        supplied: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, String> {
        let mut problems = Vec::new();
        let mut out = BTreeMap::new();
        for name in supplied.keys() {
            if !self.manifest.params.iter().any(|p| &p.name == name) {
                problems.push(format!("undeclared parameter {name:?}"));
            }
        }
        for spec in &self.manifest.params {
            match supplied.get(&spec.name) {
                Some(value) => match spec.kind.check(value) {
                    Ok(v) => {
                        out.insert(spec.name.clone(), v);
                    }
                    Err(e) => problems.push(format!("parameter {:?}: {e}", spec.name)),
                },
                None => {
                    if let Some(default) = &spec.default {
                        out.insert(spec.name.clone(), default.clone());
                    } else if spec.required {
                        problems.push(format!(
                            "missing required parameter {:?} ({})",
                            spec.name, spec.kind
                        ));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems.join("; "))
        }
    }

    /// Validates a payload against the package's `[input] schema`; `Ok`
    /// when the package declares none. Call it once the package has been
    /// chosen for the message, before rendering: an invalid payload is the
    /// sender's fault ([`SchemaError::Invalid`]); a schema that cannot be
    /// used is the rule's ([`SchemaError::Schema`]).
    pub fn check_input(&self, payload: &[u8]) -> Result<(), SchemaError> {
        match &self.input_schema {
            Some(schema) => schema.validate(payload),
            None if self.manifest.input_schema.is_some() => Err(SchemaError::Schema {
                schema: self.manifest.input_schema.clone().unwrap_or_default(),
                message: format!(
                    "rule {} is unavailable: {}",
                    self.rule_ref(),
                    self.unavailable.as_deref().unwrap_or("schema not loaded")
                ),
            }),
            None => Ok(()),
        }
    }

    /// Produces the output documents for one message.
    ///
    /// Parameters are checked first ([`Self::check_params`]). Outputs
    /// without a transform return `payload` unchanged (byte for byte);
    /// outputs with one call their [`Transformer`]. File names come from
    /// the templates, with substituted values made file-system safe.
    pub fn render(
        &self,
        doc: &InputDocument,
        payload: &[u8],
        params: &BTreeMap<String, String>,
        ctx: &RenderContext,
    ) -> Result<Vec<RenderedOutput>, TransformError> {
        if let Some(reason) = &self.unavailable {
            return Err(TransformError::Unavailable(format!(
                "rule {} is unavailable: {reason}",
                self.rule_ref()
            )));
        }
        let params =
            self.check_params(params)
                .map_err(|message| TransformError::InvalidParams {
                    rule: self.rule_ref().to_string(),
                    message,
                })?;
        let id = ctx.message_id.to_string();
        let mut with_reserved = params.clone();
        with_reserved.extend(ctx.reserved_params());
        let mut rendered = Vec::with_capacity(self.manifest.outputs.len());
        for (index, spec) in self.manifest.outputs.iter().enumerate() {
            let (bytes, messages) = match (&spec.transform, self.transformers.get(index)) {
                (None, _) => (Bytes::copy_from_slice(payload), Vec::new()),
                (Some(_), Some(Some(transformer))) => {
                    let out = transformer.transform(doc, &with_reserved)?;
                    (out.bytes, out.messages)
                }
                (Some(path), _) => {
                    return Err(TransformError::Unavailable(format!(
                        "rule {} output {}: transform {} is not loaded",
                        self.rule_ref(),
                        spec.target,
                        path.display()
                    )))
                }
            };
            if spec.schema.is_some() {
                let Some(Some(schema)) = self.output_schemas.get(index) else {
                    return Err(TransformError::Unavailable(format!(
                        "rule {} output {}: its schema is not loaded",
                        self.rule_ref(),
                        spec.target
                    )));
                };
                schema
                    .validate(&bytes)
                    .map_err(|source| TransformError::InvalidOutput {
                        target: spec.target.clone(),
                        source,
                    })?;
            }
            let (filename, container) = match spec.container {
                None => (
                    expand_filename(&spec.filename, &id, &ctx.leistung, &ctx.kommune),
                    None,
                ),
                Some(ContainerFormat::Xdomea) => {
                    let files: Vec<String> =
                        ctx.attachments.iter().map(|a| a.file.clone()).collect();
                    let (name, container) = plan_xdomea(&bytes, &ctx.payload_file, &files)
                        .map_err(|message| TransformError::Container {
                            target: spec.target.clone(),
                            message,
                        })?;
                    (name, Some(container))
                }
            };
            rendered.push(RenderedOutput {
                target: spec.target.clone(),
                content_type: spec.content_type.clone(),
                filename,
                bytes,
                messages,
                container,
            });
        }
        Ok(rendered)
    }
}
