//! The rule manifest, `rule.toml`.
//!
//! ```toml
//! id = "gewerbeanmeldung"          # [a-z0-9-]+
//! version = "1.0.0"                # semantic version
//! title = "Gewerbeanmeldung → Fachverfahren + DMS"
//! description = "…"                # optional
//! priority = 0                     # optional, default 0; higher wins
//!
//! [namespaces]                     # optional prefixes for the expressions
//! xga = "http://www.xgewerbeanzeige.de/spezifikation/2.1"
//!
//! [match]
//! channels = ["portal", "dropbox"] # or ["*"]
//! content_types = ["application/xml"]   # or ["*"]
//! condition = "exists(/*[local-name()='sta.gewerbemeldung.0100'])"
//!
//! [input]                        # optional
//! schema = "antrag.xsd"            # XSD of the XML payload (see below)
//!
//! [extract]
//! kommune = "string(//*:gemeindeSchluessel/code)"
//! leistung = "'99050012104000'"
//!
//! [[params]]
//! name = "aktenplan_kennzeichen"
//! type = "string"                  # string | integer | boolean
//! required = true                  # optional, default false
//! # default = "…"                  # optional, typed like `type`
//!
//! [[outputs]]
//! target = "fachverfahren"
//! transform = "fachverfahren.xsl"  # optional; omitted = pass-through
//! content_type = "application/xml"
//! filename = "gewerbe-{id}.xml"    # {id}, {leistung}, {kommune}
//! schema = "gewerbe-import.xsd"    # optional; XML outputs only
//!
//! [[outputs]]                      # a container output (see crate::container)
//! target = "dms"
//! transform = "dms.xsl"            # renders the xdomea message
//! container = "xdomea"             # message + the Primärdokumente it names
//! content_type = "application/zip"
//! schema = "urn:xoev-de:xdomea:schema:3.1.0"  # validates the message
//! # no filename: the standard names it <ProzessID>_<Nachrichtentyp>.zip
//! ```
//!
//! A `schema` is a path relative to the package folder or a URI the hub's
//! XML catalog maps to a local file (`urn:xoev-de:xdomea:schema:3.1.0`;
//! see [`crate::schema`]). The hub validates a payload against the input
//! schema once the rule has recognised it and the route (Kommune, rule
//! version) is known, before the rule renders (invalid: the message is
//! `rejected` with every error's line and
//! column), and every output against its schema before it is delivered
//! (invalid: `dead` — a broken rule must not reach a Fachverfahren). An
//! input schema needs `match.content_types` to list XML media types only.
//!
//! Unknown keys are errors. Every error names the file, the key and the
//! line. XPath expressions (`match.condition`, `extract.*`) are compiled
//! while the manifest is read; they see the document node as context item
//! and three external variables: `$channel` (the input channel id),
//! `$content-type` (the payload's media type as submitted) and `$meta`, an
//! element holding the envelope facts the input adapter recorded (its
//! correlation ids) as `<meta><entry key="…">value</entry>…</meta>`, e.g.
//! `$meta/entry[@key='fitconnect.leika']` or
//! `$meta/entry[@key='xta.service'] = 'urn:…'` (empty for plain HTTP). XPath's
//! predeclared prefixes (`fn`, `xs`, `map`, `array`, `math`) are available;
//! JSON input is queried in its `fn:json-to-xml` form, e.g.
//! `/fn:map/fn:string[@key='name']`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::container::ContainerFormat;
use crate::input::{line_column, media_type_essence, InputKind};
use crate::xpath::{ExprId, ExprSet};

/// A manifest that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("{}: cannot read: {message}", file.display())]
    Io {
        /// The manifest file.
        file: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// Not valid TOML, an unknown key, a missing key or a wrongly typed value.
    #[error("{}:{line}:{column}: {message}", file.display())]
    Syntax {
        /// The manifest file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The TOML parser's message (names the key).
        message: String,
    },
    /// A value that is well-typed but not acceptable.
    #[error("{}:{line}: {key}: {message}", file.display())]
    Invalid {
        /// The manifest file.
        file: PathBuf,
        /// 1-based line of the value.
        line: usize,
        /// Dotted key, e.g. `outputs[1].filename`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// An XPath expression does not compile.
    #[error("{}:{line}: {key}: XPath expression `{expression}` does not compile: {message}", file.display())]
    XPath {
        /// The manifest file.
        file: PathBuf,
        /// 1-based line of the expression.
        line: usize,
        /// Dotted key, e.g. `match.condition`.
        key: String,
        /// The expression text.
        expression: String,
        /// The XPath engine's error (code, message, position).
        message: String,
    },
}

/// Type of a rule parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// Any string.
    String,
    /// A signed 64-bit integer in decimal.
    Integer,
    /// `true` or `false`.
    Boolean,
}

impl fmt::Display for ParamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
        })
    }
}

impl ParamType {
    /// Checks a supplied value; returns it in canonical form.
    pub fn check(&self, value: &str) -> Result<String, String> {
        match self {
            ParamType::String => Ok(value.to_owned()),
            ParamType::Integer => value
                .trim()
                .parse::<i64>()
                .map(|n| n.to_string())
                .map_err(|_| format!("{value:?} is not an integer")),
            ParamType::Boolean => match value.trim() {
                "true" => Ok("true".into()),
                "false" => Ok("false".into()),
                _ => Err(format!("{value:?} is not a boolean (true or false)")),
            },
        }
    }
}

/// A declared rule parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    /// Parameter name (also the stylesheet parameter name).
    pub name: String,
    /// Value type.
    pub kind: ParamType,
    /// Whether the tenant route must supply it.
    pub required: bool,
    /// Value used when none is supplied, in canonical form.
    pub default: Option<String>,
    /// Free text for operators.
    pub description: Option<String>,
}

/// A declared output document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    /// Output role; tenant routes map roles to connectors.
    pub target: String,
    /// Stylesheet path relative to the package directory; `None` means the
    /// original payload is delivered unchanged.
    pub transform: Option<PathBuf>,
    /// Media type of the output.
    pub content_type: String,
    /// File name template (`{id}`, `{leistung}`, `{kommune}`).
    pub filename: String,
    /// Schema location the output must be valid against (XML outputs;
    /// for a container, its message).
    pub schema: Option<String>,
    /// Packs the rendered message with the documents it names
    /// ([`crate::container`]); `filename` is then empty (the format names
    /// the container).
    pub container: Option<ContainerFormat>,
}

/// A validated `rule.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Rule id, `[a-z0-9-]+`.
    pub id: String,
    /// Package version.
    pub version: semver::Version,
    /// Short human-readable title.
    pub title: String,
    /// Longer description.
    pub description: Option<String>,
    /// Tie-break between matching rules; higher wins.
    pub priority: i32,
    /// Namespace prefixes usable in the expressions.
    pub namespaces: BTreeMap<String, String>,
    /// Input channels this rule listens to (`*` = all).
    pub channels: Vec<String>,
    /// Media types this rule accepts (`*` = all), lower-cased essence.
    pub content_types: Vec<String>,
    /// XPath: does this rule handle the document?
    pub condition: String,
    /// XPath: the Kommune key (AGS/ARS or org id).
    pub extract_kommune: String,
    /// XPath: the LeiKa key.
    pub extract_leistung: String,
    /// Schema location the (XML) payload must be valid against.
    pub input_schema: Option<String>,
    /// Declared parameters.
    pub params: Vec<ParamSpec>,
    /// Declared outputs (at least one).
    pub outputs: Vec<OutputSpec>,
}

/// Compiled-expression handles that belong with a [`Manifest`].
#[derive(Debug)]
pub(crate) struct ManifestExprs {
    pub(crate) set: ExprSet,
    pub(crate) condition: ExprId,
    pub(crate) kommune: ExprId,
    pub(crate) leistung: ExprId,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    id: Spanned<String>,
    version: Spanned<String>,
    title: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    namespaces: BTreeMap<String, Spanned<String>>,
    #[serde(rename = "match")]
    matching: RawMatch,
    #[serde(default)]
    input: Option<RawInput>,
    extract: RawExtract,
    #[serde(default)]
    params: Vec<RawParam>,
    outputs: Spanned<Vec<RawOutput>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    channels: Spanned<Vec<String>>,
    content_types: Spanned<Vec<String>>,
    condition: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    schema: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtract {
    kommune: Spanned<String>,
    leistung: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: ParamType,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<Spanned<toml::Value>>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    target: Spanned<String>,
    #[serde(default)]
    transform: Option<Spanned<String>>,
    content_type: Spanned<String>,
    #[serde(default)]
    filename: Option<Spanned<String>>,
    #[serde(default)]
    schema: Option<Spanned<String>>,
    #[serde(default)]
    container: Option<Spanned<String>>,
}

/// Error-building context: the file and its text.
struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, span: std::ops::Range<usize>) -> usize {
        line_column(self.text, span.start).0
    }

    fn invalid<T>(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: String,
    ) -> Result<T, ManifestError> {
        Err(ManifestError::Invalid {
            file: self.file.to_path_buf(),
            line: self.line(span),
            key: key.to_owned(),
            message,
        })
    }

    fn xpath(
        &self,
        set: &mut ExprSet,
        value: &Spanned<String>,
        key: &str,
    ) -> Result<ExprId, ManifestError> {
        let expression = value.get_ref();
        if expression.trim().is_empty() {
            return self.invalid(value.span(), key, "empty XPath expression".into());
        }
        set.add(expression).map_err(|message| ManifestError::XPath {
            file: self.file.to_path_buf(),
            line: self.line(value.span()),
            key: key.to_owned(),
            expression: expression.clone(),
            message,
        })
    }
}

/// Whether `id` is a valid rule id: `[a-z0-9-]+`, at most 64 characters.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn is_valid_target(target: &str) -> bool {
    !target.is_empty()
        && target.len() <= 64
        && target
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn is_valid_param_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// Placeholders allowed in file name templates.
pub const FILENAME_PLACEHOLDERS: [&str; 3] = ["id", "leistung", "kommune"];

/// Checks a file name template: placeholders from
/// [`FILENAME_PLACEHOLDERS`] only, no path separators, not hidden.
fn check_filename_template(template: &str) -> Result<(), String> {
    if template.is_empty() {
        return Err("empty file name".into());
    }
    if template.starts_with('.') {
        return Err("file name must not start with '.'".into());
    }
    if template.contains(['/', '\\', '\0']) || template.contains("..") {
        return Err("file name must not contain '/', '\\', NUL or '..'".into());
    }
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        let after = rest.get(open..).unwrap_or_default();
        if after.starts_with('}') {
            return Err("unmatched '}'".into());
        }
        let close = after.find('}').ok_or("unmatched '{'")?;
        let name = after.get(1..close).unwrap_or_default();
        if !FILENAME_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder {{{name}}} (allowed: {{id}}, {{leistung}}, {{kommune}})"
            ));
        }
        rest = after.get(close + 1..).unwrap_or_default();
    }
    Ok(())
}

/// Whether a schema location is a URI (resolved through the catalog)
/// rather than a path inside the package: a scheme of two or more
/// characters followed by `:`.
pub fn is_schema_uri(location: &str) -> bool {
    let Some((scheme, _)) = location.split_once(':') else {
        return false;
    };
    scheme.len() >= 2
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
}

/// Checks a schema location: a URI, or a relative path inside the package.
fn check_schema_location(location: &str) -> Result<String, String> {
    let location = location.trim();
    if location.is_empty() {
        return Err("empty schema location".into());
    }
    if !is_schema_uri(location) {
        let p = Path::new(location);
        if !p.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(format!(
                "schema {location:?} must be relative to the package directory, without '..', or a URI from the XML catalog"
            ));
        }
    }
    Ok(location.to_owned())
}

fn is_xml_media_type(media_type: &str) -> bool {
    matches!(InputKind::from_content_type(media_type), Ok(InputKind::Xml))
}

/// Checks a stylesheet path: relative, inside the package directory.
fn check_transform_path(path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if path.is_empty() {
        return Err("empty stylesheet path".into());
    }
    if !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(format!(
            "stylesheet path {path:?} must be relative to the package directory, without '..'"
        ));
    }
    Ok(p.to_path_buf())
}

impl Manifest {
    /// Reads and validates `file`.
    pub fn load(file: &Path) -> Result<Self, ManifestError> {
        Self::load_compiled(file).map(|(manifest, _)| manifest)
    }

    /// Parses and validates manifest text; `file` is used in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ManifestError> {
        Self::parse_compiled(text, file).map(|(manifest, _)| manifest)
    }

    pub(crate) fn load_compiled(file: &Path) -> Result<(Self, ManifestExprs), ManifestError> {
        let text = std::fs::read_to_string(file).map_err(|e| ManifestError::Io {
            file: file.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::parse_compiled(&text, file)
    }

    pub(crate) fn parse_compiled(
        text: &str,
        file: &Path,
    ) -> Result<(Self, ManifestExprs), ManifestError> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_column(text, span.start))
                .unwrap_or((1, 1));
            ManifestError::Syntax {
                file: file.to_path_buf(),
                line,
                column,
                message: e.message().trim().to_owned(),
            }
        })?;
        let cx = Ctx { file, text };

        if !is_valid_id(raw.id.get_ref()) {
            return cx.invalid(
                raw.id.span(),
                "id",
                format!(
                    "{:?} is not a rule id ([a-z0-9-]+, at most 64 characters)",
                    raw.id.get_ref()
                ),
            );
        }
        let version = match semver::Version::parse(raw.version.get_ref()) {
            Ok(v) => v,
            Err(e) => {
                return cx.invalid(
                    raw.version.span(),
                    "version",
                    format!("{:?} is not a semantic version: {e}", raw.version.get_ref()),
                )
            }
        };
        if raw.title.get_ref().trim().is_empty() {
            return cx.invalid(raw.title.span(), "title", "empty title".into());
        }

        let mut namespaces = BTreeMap::new();
        for (prefix, uri) in &raw.namespaces {
            let key = format!("namespaces.{prefix}");
            if !is_valid_param_name(prefix) || prefix.contains('.') {
                return cx.invalid(
                    uri.span(),
                    &key,
                    format!("{prefix:?} is not a namespace prefix"),
                );
            }
            if uri.get_ref().is_empty() {
                return cx.invalid(uri.span(), &key, "empty namespace URI".into());
            }
            namespaces.insert(prefix.clone(), uri.get_ref().clone());
        }

        let channels = raw.matching.channels.get_ref();
        if channels.is_empty() || channels.iter().any(|c| c.trim().is_empty()) {
            return cx.invalid(
                raw.matching.channels.span(),
                "match.channels",
                "list channel ids, or [\"*\"] for all channels".into(),
            );
        }
        let mut content_types = Vec::new();
        for ct in raw.matching.content_types.get_ref() {
            let essence = media_type_essence(ct);
            if essence != "*" {
                if let Err(e) = InputKind::from_content_type(&essence) {
                    return cx.invalid(
                        raw.matching.content_types.span(),
                        "match.content_types",
                        e.to_string(),
                    );
                }
            }
            content_types.push(essence);
        }
        if content_types.is_empty() {
            return cx.invalid(
                raw.matching.content_types.span(),
                "match.content_types",
                "list media types, or [\"*\"] for all".into(),
            );
        }

        let ns_list = namespaces
            .iter()
            .map(|(p, u)| (p.clone(), u.clone()))
            .collect();
        let mut set = ExprSet::new(ns_list);
        let condition = cx.xpath(&mut set, &raw.matching.condition, "match.condition")?;
        let kommune = cx.xpath(&mut set, &raw.extract.kommune, "extract.kommune")?;
        let leistung = cx.xpath(&mut set, &raw.extract.leistung, "extract.leistung")?;

        let mut params = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, p) in raw.params.into_iter().enumerate() {
            let key = format!("params[{i}]");
            let name = p.name.get_ref();
            if !is_valid_param_name(name) {
                return cx.invalid(
                    p.name.span(),
                    &format!("{key}.name"),
                    format!("{name:?} is not a parameter name"),
                );
            }
            if !seen.insert(name.clone()) {
                return cx.invalid(
                    p.name.span(),
                    &format!("{key}.name"),
                    format!("parameter {name:?} declared twice"),
                );
            }
            let default = match &p.default {
                None => None,
                Some(value) => {
                    let key = format!("{key}.default");
                    if p.required {
                        return cx.invalid(
                            value.span(),
                            &key,
                            "a required parameter cannot have a default".into(),
                        );
                    }
                    let text = match (p.kind, value.get_ref()) {
                        (ParamType::String, toml::Value::String(s)) => s.clone(),
                        (ParamType::Integer, toml::Value::Integer(n)) => n.to_string(),
                        (ParamType::Boolean, toml::Value::Boolean(b)) => b.to_string(),
                        (kind, other) => {
                            return cx.invalid(
                                value.span(),
                                &key,
                                format!(
                                    "default {other} does not have the parameter's type {kind}"
                                ),
                            )
                        }
                    };
                    Some(text)
                }
            };
            params.push(ParamSpec {
                name: name.clone(),
                kind: p.kind,
                required: p.required,
                default,
                description: p.description,
            });
        }

        let outputs_span = raw.outputs.span();
        let raw_outputs = raw.outputs.into_inner();
        if raw_outputs.is_empty() {
            return cx.invalid(
                outputs_span,
                "outputs",
                "a rule needs at least one [[outputs]] entry".into(),
            );
        }
        let mut outputs = Vec::new();
        let mut targets = BTreeSet::new();
        for (i, o) in raw_outputs.into_iter().enumerate() {
            let key = format!("outputs[{i}]");
            let target = o.target.get_ref();
            if !is_valid_target(target) {
                return cx.invalid(
                    o.target.span(),
                    &format!("{key}.target"),
                    format!("{target:?} is not a target role ([a-z0-9_-]+)"),
                );
            }
            if !targets.insert(target.clone()) {
                return cx.invalid(
                    o.target.span(),
                    &format!("{key}.target"),
                    format!("target {target:?} declared twice"),
                );
            }
            let transform = match &o.transform {
                None => None,
                Some(path) => Some(
                    check_transform_path(path.get_ref())
                        .or_else(|m| cx.invalid(path.span(), &format!("{key}.transform"), m))?,
                ),
            };
            let content_type = o.content_type.get_ref().trim();
            if !content_type.contains('/') {
                return cx.invalid(
                    o.content_type.span(),
                    &format!("{key}.content_type"),
                    format!("{content_type:?} is not a media type"),
                );
            }
            let container = match &o.container {
                None => None,
                Some(c) => {
                    let ckey = format!("{key}.container");
                    let Some(format) = ContainerFormat::parse(c.get_ref()) else {
                        return cx.invalid(
                            c.span(),
                            &ckey,
                            format!(
                                "unknown container format {:?} (known: \"xdomea\")",
                                c.get_ref()
                            ),
                        );
                    };
                    if o.transform.is_none() {
                        return cx.invalid(
                            c.span(),
                            &ckey,
                            "a container output needs a transform that renders its message".into(),
                        );
                    }
                    if media_type_essence(content_type) != format.media_type() {
                        return cx.invalid(
                            o.content_type.span(),
                            &format!("{key}.content_type"),
                            format!("an {} container is {}", c.get_ref(), format.media_type()),
                        );
                    }
                    if let Some(f) = &o.filename {
                        return cx.invalid(
                            f.span(),
                            &format!("{key}.filename"),
                            "an xdomea container is named <ProzessID>_<Nachrichtentyp>.zip by the standard: leave filename out".into(),
                        );
                    }
                    Some(format)
                }
            };
            let filename = match (&o.filename, container) {
                (Some(f), _) => {
                    check_filename_template(f.get_ref())
                        .or_else(|m| cx.invalid(f.span(), &format!("{key}.filename"), m))?;
                    f.get_ref().clone()
                }
                (None, Some(_)) => String::new(),
                (None, None) => {
                    return cx.invalid(
                        o.target.span(),
                        &format!("{key}.filename"),
                        "missing filename (a template with {id}, {leistung}, {kommune})".into(),
                    )
                }
            };
            let schema = match &o.schema {
                None => None,
                Some(loc) => {
                    let key = format!("{key}.schema");
                    if !is_xml_media_type(content_type) && container.is_none() {
                        return cx.invalid(
                            loc.span(),
                            &key,
                            format!("an XML schema needs an XML output, not {content_type:?}"),
                        );
                    }
                    Some(
                        check_schema_location(loc.get_ref())
                            .or_else(|m| cx.invalid(loc.span(), &key, m))?,
                    )
                }
            };
            outputs.push(OutputSpec {
                target: target.clone(),
                transform,
                content_type: content_type.to_owned(),
                filename,
                schema,
                container,
            });
        }

        let input_schema = match &raw.input {
            None => None,
            Some(input) => {
                if let Some(other) = content_types.iter().find(|ct| !is_xml_media_type(ct)) {
                    return cx.invalid(
                        raw.matching.content_types.span(),
                        "match.content_types",
                        format!(
                            "[input] schema validates XML payloads: list XML media types only, not {other:?}"
                        ),
                    );
                }
                Some(
                    check_schema_location(input.schema.get_ref())
                        .or_else(|m| cx.invalid(input.schema.span(), "input.schema", m))?,
                )
            }
        };

        let manifest = Manifest {
            id: raw.id.into_inner(),
            version,
            title: raw.title.into_inner(),
            description: raw.description,
            priority: raw.priority,
            namespaces,
            channels: channels.clone(),
            content_types,
            condition: raw.matching.condition.into_inner(),
            extract_kommune: raw.extract.kommune.into_inner(),
            extract_leistung: raw.extract.leistung.into_inner(),
            input_schema,
            params,
            outputs,
        };
        Ok((
            manifest,
            ManifestExprs {
                set,
                condition,
                kommune,
                leistung,
            },
        ))
    }

    /// Whether the rule listens on `channel` for `content_type`.
    pub fn accepts(&self, channel: &str, content_type: &str) -> bool {
        let essence = media_type_essence(content_type);
        self.channels.iter().any(|c| c == "*" || c == channel)
            && self.content_types.iter().any(|c| c == "*" || *c == essence)
    }
}

/// Expands a file name template, making substituted values safe for file
/// systems: anything but `[A-Za-z0-9._-]` becomes `_`, and a value cannot
/// introduce `..`.
pub(crate) fn expand_filename(template: &str, id: &str, leistung: &str, kommune: &str) -> String {
    fn safe(value: &str) -> String {
        let cleaned: String = value
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        cleaned.replace("..", "__")
    }
    template
        .replace("{id}", &safe(id))
        .replace("{leistung}", &safe(leistung))
        .replace("{kommune}", &safe(kommune))
}
