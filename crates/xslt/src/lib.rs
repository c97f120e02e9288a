//! An interpreter for a documented subset of XSLT (1.0–3.0), running over
//! [`drehscheibe_xpath::Document`] trees, with every XPath expression
//! compiled once by Drehscheibe's own XPath engine (`drehscheibe-xpath`).
//!
//! A stylesheet is compiled once ([`Stylesheet::compile_file`],
//! [`Stylesheet::compile_str`]); the compiled form is `Send + Sync` and can
//! be shared in an `Arc` and run many times, from any thread, without
//! re-parsing. Everything outside the supported subset is refused at
//! compile time with a [`CompileError`] naming file, line and construct.
//!
//! # Supported subset
//!
//! - `xsl:stylesheet`/`xsl:transform` (version 1.0–3.0) and simplified
//!   stylesheets; `xsl:include`, `xsl:import` (import precedence);
//! - `xsl:output` (unnamed output definition, merged by import
//!   precedence): methods `xml`, `html` (HTML 4.01 and HTML5), `xhtml`
//!   and `text` (the default chosen from the result tree), `indent`,
//!   `suppress-indentation`, `encoding` UTF-8 / UTF-16 / ISO-8859-1 /
//!   US-ASCII, `byte-order-mark`, `omit-xml-declaration`, `standalone`,
//!   `doctype-system`, `doctype-public`, `cdata-section-elements`,
//!   `normalization-form` (NFC, NFD, NFKC, NFKD), `escape-uri-attributes`,
//!   `include-content-type`, `html-version`, `media-type`; see
//!   `serialize.rs`. `use-character-maps` and XML 1.1 are refused;
//! - `use-when` / `xsl:use-when` (evaluated at compile time); attributes
//!   in foreign namespaces on XSLT elements are ignored; `xml:base` sets
//!   the static base URI (`static-base-uri()`, `resolve-uri()`,
//!   `document()`); top-level elements in other namespaces (user-defined
//!   data) are ignored and visible through `document('')`;
//!   `extension-element-prefixes` (an unknown extension instruction runs
//!   its `xsl:fallback`, or raises XTDE1450);
//! - `xsl:strip-space`, `xsl:preserve-space`;
//! - `xsl:template` with match patterns of XSLT 3.0: steps on the child,
//!   attribute, self, descendant(-or-self) and namespace axes, `//`,
//!   predicates, unions, `intersect`/`except`, parenthesised patterns,
//!   patterns rooted at `key()`, `id()`, `element-with-id()`, `doc()`,
//!   `root()` or a variable, predicate patterns `.[…]` matching atomic
//!   values; `priority`, the spec's default priorities, `mode` (also
//!   `#all`), the built-in template rules and `xsl:mode` declarations
//!   (`on-no-match`, `on-multiple-match`);
//! - `xsl:apply-templates` (`select`, `mode`, `xsl:with-param`,
//!   `xsl:sort`), `xsl:call-template`, `xsl:next-match`, `xsl:param` and
//!   `xsl:variable` (global and local; global parameters can be supplied
//!   by the caller; `as` types are checked), tunnel parameters;
//! - `xsl:value-of` (`separator`), `xsl:text`, `xsl:copy`, `xsl:copy-of`,
//!   `xsl:sequence`, `xsl:element`, `xsl:attribute`, `xsl:namespace`,
//!   `xsl:comment`, `xsl:processing-instruction`, literal result elements
//!   with attribute value templates, `exclude-result-prefixes`,
//!   `expand-text` text value templates; invalid names or namespaces
//!   computed at run time are errors (XTDE0820 and friends), never
//!   malformed output;
//! - `xsl:for-each` (with `xsl:sort`), `xsl:for-each-group` (`group-by`
//!   incl. `composite`, `group-adjacent`, `group-starting-with`,
//!   `group-ending-with`; `current-group()`, `current-grouping-key()`),
//!   `xsl:iterate` (`xsl:next-iteration`, `xsl:break`,
//!   `xsl:on-completion`), `xsl:if`, `xsl:choose`, `xsl:try`/`xsl:catch`
//!   (`$err:*`, `rollback-output`), `xsl:analyze-string` (with
//!   `regex-group()`), `xsl:where-populated`, `xsl:on-empty`,
//!   `xsl:on-non-empty`, `xsl:perform-sort`, `xsl:map`/`xsl:map-entry`;
//! - `xsl:sort` (`data-type` text/number, typed comparison without it in
//!   2.0+ stylesheets, `order`, `case-order`; `lang` is checked and
//!   accepted, strings sort by code point);
//! - `xsl:key` with `key()` (typed values in 2.0+), `xsl:number` (levels
//!   single, multiple, any; `select`; every XSLT 3.0 format token),
//!   `xsl:message` (`terminate` also as an attribute value template,
//!   `terminate="yes"` giving [`TransformError::Terminated`]);
//! - `xsl:function` (XSLT 2.0+), with `as` types on parameters and result;
//! - `current()`, `key()` (two and three arguments), `format-number()`
//!   with `xsl:decimal-format`, `document()` / `doc()` / `doc-available()`
//!   (`document('')` and relative local files), `unparsed-text()`,
//!   `unparsed-text-lines()`, `unparsed-text-available()` (relative local
//!   files, UTF-8), `system-property()`, `available-system-properties()`,
//!   `function-available()`, `element-available()`, `type-available()`,
//!   `unparsed-entity-uri()`.
//!
//! The XSLT functions are host functions of the XPath engine (see
//! `xpath.rs`); the stylesheet is read with `xot` (for source positions),
//! input, temporary and result trees are `drehscheibe_xpath` documents.

#![warn(missing_docs)]

mod compile;
mod error;
mod exec;
mod ir;
mod pattern;
mod read;
mod rules;
mod serialize;
mod xpath;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use drehscheibe_xpath::tree::ParseOptions;
use drehscheibe_xpath::Document;

pub use error::{CompileError, TransformError};
pub use rules::XsltFactory;

/// The serialization method of `xsl:output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMethod {
    /// XML output (the default).
    #[default]
    Xml,
    /// Plain text: the string value of the result tree.
    Text,
    /// HTML (HTML 4.01 or HTML5 syntax, see [`OutputSettings::html5`]).
    Html,
    /// XHTML: XML following the HTML compatibility guidelines.
    Xhtml,
}

/// A Unicode normalization form (`normalization-form`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NormalizationForm {
    /// No normalization (the default).
    #[default]
    None,
    /// Normalization Form C.
    Nfc,
    /// Normalization Form D.
    Nfd,
    /// Normalization Form KC.
    Nfkc,
    /// Normalization Form KD.
    Nfkd,
}

/// The serialization settings of a stylesheet: its unnamed output
/// definition (the merged unnamed `xsl:output` declarations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSettings {
    /// `method`; `xml` when the stylesheet declares none (see
    /// [`OutputSettings::method_declared`]).
    pub method: OutputMethod,
    /// Whether `method` was declared. Without it the method is chosen
    /// from the result tree (XSLT 3.0 §26.1): `html` for a document element
    /// `html` (any case) in no namespace, `xhtml` for `html` in the XHTML
    /// namespace (`xml` for XSLT 1.0 stylesheets), `xml` otherwise.
    pub method_declared: bool,
    /// `indent`; `None`: the method's default (yes for html and xhtml).
    pub indent: Option<bool>,
    /// `encoding` as written in the stylesheet (default `UTF-8`).
    pub encoding: String,
    /// `omit-xml-declaration="yes"`.
    pub omit_xml_declaration: bool,
    /// `media-type`, if given.
    pub media_type: Option<String>,
    /// `standalone` (`None`: omitted).
    pub standalone: Option<bool>,
    /// `doctype-system` (absent when not given or empty).
    pub doctype_system: Option<String>,
    /// `doctype-public` (absent when not given or empty).
    pub doctype_public: Option<String>,
    /// The requested HTML version is 5.0 (`html-version`, or `version`
    /// for the html method; default 5.0). Otherwise HTML 4.01 / XHTML 1.0.
    pub html5: bool,
    /// `byte-order-mark` (`None`: the default, yes for UTF-16 only); a byte
    /// order mark is written for UTF-8 and UTF-16 only.
    pub byte_order_mark: Option<bool>,
    /// `escape-uri-attributes` (html and xhtml; default yes).
    pub escape_uri_attributes: bool,
    /// `include-content-type` (html and xhtml; default yes).
    pub include_content_type: bool,
    /// `undeclare-prefixes="yes"` (a serialization error with XML 1.0).
    pub undeclare_prefixes: bool,
    /// `normalization-form`.
    pub normalization_form: NormalizationForm,
    /// `cdata-section-elements` as (namespace URI, local name) pairs.
    pub cdata_section_elements: Vec<(String, String)>,
    /// `suppress-indentation` as (namespace URI, local name) pairs.
    pub suppress_indentation: Vec<(String, String)>,
    /// The principal stylesheet module has `version="1.0"` (then an
    /// undeclared method never defaults to xhtml).
    pub xslt1: bool,
}

impl Default for OutputSettings {
    fn default() -> Self {
        Self {
            method: OutputMethod::Xml,
            method_declared: false,
            indent: None,
            encoding: "UTF-8".to_string(),
            omit_xml_declaration: false,
            media_type: None,
            standalone: None,
            doctype_system: None,
            doctype_public: None,
            html5: true,
            byte_order_mark: None,
            escape_uri_attributes: true,
            include_content_type: true,
            undeclare_prefixes: false,
            normalization_form: NormalizationForm::None,
            cdata_section_elements: Vec::new(),
            suppress_indentation: Vec::new(),
            xslt1: false,
        }
    }
}

impl OutputSettings {
    /// The media type of the serialized result: `media-type` if given,
    /// otherwise by method (`application/xml`, `text/plain`,
    /// `text/html`; `application/xml` when the method is not declared,
    /// as it may depend on the result).
    pub fn content_type(&self) -> String {
        match (&self.media_type, self.method) {
            (Some(m), _) => m.clone(),
            (None, OutputMethod::Xml) => "application/xml".to_string(),
            (None, OutputMethod::Text) => "text/plain".to_string(),
            (None, OutputMethod::Html | OutputMethod::Xhtml) => "text/html".to_string(),
        }
    }
}

/// A global `xsl:param` of a stylesheet, settable by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalParamDecl {
    /// The parameter name: the local name for names in no namespace,
    /// `Q{uri}local` otherwise. This is the key to use in the parameter map.
    pub name: String,
    /// `required="yes"`.
    pub required: bool,
    /// The declaration gives a default value (`select` or content).
    pub has_default: bool,
}

/// How a transformation is started (XSLT 3.0 §2.3): by applying templates
/// to the source document in a mode (the default), or by calling a named
/// template with the source document as context item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// Name (`local` or `Q{uri}local`) of a template to call instead of
    /// applying templates.
    pub initial_template: Option<String>,
    /// Name (`local` or `Q{uri}local`) of the initial mode; default: the
    /// unnamed mode.
    pub initial_mode: Option<String>,
}

/// A compiled stylesheet.
///
/// Cheap to clone (the compiled form is shared); `Send + Sync`.
#[derive(Debug, Clone)]
pub struct Stylesheet {
    inner: Arc<Inner>,
    /// Serialization settings that replace the stylesheet's unnamed output
    /// definition ([`Stylesheet::with_output`]).
    output: Option<Arc<OutputSettings>>,
}

#[derive(Debug)]
struct Inner {
    compiled: ir::Compiled,
}

/// The result of a transformation with the messages it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformOutcome {
    /// The serialized result.
    pub bytes: Vec<u8>,
    /// The text of every non-terminating `xsl:message`, in order.
    pub messages: Vec<String>,
}

impl Stylesheet {
    /// Compiles the stylesheet in `path` (with its includes and imports,
    /// resolved relative to the including module).
    pub fn compile_file(path: &Path) -> Result<Stylesheet, CompileError> {
        let bytes = std::fs::read(path).map_err(|e| CompileError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read stylesheet: {e}"),
        })?;
        let text = decode_text(&bytes).map_err(|message| CompileError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            message,
        })?;
        Self::compile_str(&text, path)
    }

    /// Compiles stylesheet text. `base` is the path the text is reported
    /// under and relative to which `xsl:include`/`xsl:import` are resolved
    /// (pass the file the text came from, or e.g. `Path::new("<string>")`
    /// for text without includes).
    pub fn compile_str(text: &str, base: &Path) -> Result<Stylesheet, CompileError> {
        let compiled =
            compile::Compiler::new().compile_root(text.to_string(), base.to_path_buf())?;
        let stylesheet = Stylesheet {
            inner: Arc::new(Inner { compiled }),
            output: None,
        };
        Ok(stylesheet)
    }

    /// The global parameters (`xsl:param` at the top level).
    pub fn global_params(&self) -> &[GlobalParamDecl] {
        &self.inner.compiled.params
    }

    /// The serialization settings: the stylesheet's unnamed output
    /// definition, or those given to [`Stylesheet::with_output`].
    pub fn output(&self) -> &OutputSettings {
        self.output
            .as_deref()
            .unwrap_or(&self.inner.compiled.output)
    }

    /// The same compiled stylesheet serializing its result with `output`
    /// instead of its `xsl:output` declarations (XSLT 3.0 §26 allows an
    /// API to override them). Cheap: the compiled form is shared.
    pub fn with_output(&self, output: OutputSettings) -> Stylesheet {
        Stylesheet {
            inner: self.inner.clone(),
            output: Some(Arc::new(output)),
        }
    }

    /// Parses `input_xml` (encoding from BOM or XML declaration), transforms it and serializes the result as
    /// `xsl:output` requests. `params` supplies global parameters by name
    /// (see [`GlobalParamDecl::name`]) as `xs:untypedAtomic` values;
    /// names the stylesheet does not declare are ignored.
    pub fn transform_bytes(
        &self,
        input_xml: &[u8],
        params: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>, TransformError> {
        let doc = Document::parse(input_xml, &ParseOptions::default()).map_err(|e| {
            TransformError::Input {
                message: format!("input is not well-formed XML: {e}"),
            }
        })?;
        self.transform_document(&doc, params)
    }

    /// Transforms a document held by the caller (it is not modified;
    /// whitespace stripping works on a copy).
    pub fn transform_document(
        &self,
        doc: &Document,
        params: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>, TransformError> {
        self.transform_document_with(doc, params, &Invocation::default())
    }

    /// Like [`Stylesheet::transform_document`], started as `invocation` says.
    pub fn transform_document_with(
        &self,
        doc: &Document,
        params: &BTreeMap<String, String>,
        invocation: &Invocation,
    ) -> Result<Vec<u8>, TransformError> {
        Ok(exec::run(self, doc, params, invocation)?.bytes)
    }

    /// Like [`Stylesheet::transform_document`], also returning the text
    /// of the non-terminating `xsl:message`s (for logs and the audit
    /// trail).
    pub fn transform_document_with_messages(
        &self,
        doc: &Document,
        params: &BTreeMap<String, String>,
    ) -> Result<TransformOutcome, TransformError> {
        let outcome = exec::run(self, doc, params, &Invocation::default())?;
        Ok(TransformOutcome {
            bytes: outcome.bytes,
            messages: outcome.messages,
        })
    }

    /// Like [`Stylesheet::transform_document_with`] (parameters and
    /// invocation), also returning the text of the non-terminating
    /// `xsl:message`s.
    pub fn transform_with_messages(
        &self,
        doc: &Document,
        params: &BTreeMap<String, String>,
        invocation: &Invocation,
    ) -> Result<TransformOutcome, TransformError> {
        let outcome = exec::run(self, doc, params, invocation)?;
        Ok(TransformOutcome {
            bytes: outcome.bytes,
            messages: outcome.messages,
        })
    }

    /// Whether the stylesheet has a template with this name (`local` or
    /// `Q{uri}local`), e.g. `Q{http://www.w3.org/1999/XSL/Transform}initial-template`.
    pub fn has_template(&self, name: &str) -> bool {
        self.compiled().template_names.contains_key(name)
    }

    pub(crate) fn compiled(&self) -> &ir::Compiled {
        &self.inner.compiled
    }
}

/// Decodes stylesheet bytes by BOM and XML declaration: UTF-8 (default),
/// UTF-16 with BOM, ISO-8859-1 / US-ASCII.
pub(crate) fn decode_text(bytes: &[u8]) -> Result<String, String> {
    let input_err = |message: String| message;
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8(rest.to_vec())
            .map_err(|e| input_err(format!("stylesheet is not UTF-8: {e}")));
    }
    let utf16 = |rest: &[u8], big: bool| -> Result<String, String> {
        let units: Vec<u16> = rest
            .chunks(2)
            .map(|c| match (c.first(), c.get(1), big) {
                (Some(a), Some(b), true) => u16::from_be_bytes([*a, *b]),
                (Some(a), Some(b), false) => u16::from_le_bytes([*a, *b]),
                _ => 0xFFFD,
            })
            .collect();
        String::from_utf16(&units).map_err(|e| input_err(format!("stylesheet is not UTF-16: {e}")))
    };
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return utf16(rest, true);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return utf16(rest, false);
    }
    // the encoding pseudo-attribute of the XML declaration
    let head = &bytes[..bytes.len().min(200)];
    let head = String::from_utf8_lossy(head);
    let declared = head
        .strip_prefix("<?xml")
        .and_then(|d| d.split("?>").next())
        .and_then(|d| d.split("encoding").nth(1))
        .and_then(|d| {
            let d = d.trim_start().strip_prefix('=')?.trim_start();
            let quote = d.chars().next()?;
            d.get(1..)?.split(quote).next().map(str::to_ascii_uppercase)
        });
    match declared.as_deref() {
        None | Some("UTF-8" | "UTF8") => String::from_utf8(bytes.to_vec())
            .map_err(|e| input_err(format!("stylesheet is not UTF-8: {e}"))),
        Some("ISO-8859-1" | "LATIN1" | "ISO8859-1" | "US-ASCII" | "ASCII") => {
            Ok(bytes.iter().map(|b| char::from(*b)).collect())
        }
        Some(other) => Err(input_err(format!(
            "unsupported stylesheet encoding {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn stylesheet_text_is_decoded() {
        let latin1 = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xe4</a>";
        assert!(decode_text(latin1).unwrap().ends_with("<a>\u{e4}</a>"));
        assert_eq!(decode_text(b"\xEF\xBB\xBF<a/>").unwrap(), "<a/>");
        assert!(decode_text(b"<?xml version=\"1.0\" encoding=\"EBCDIC\"?><a/>").is_err());
    }

    #[test]
    fn stylesheet_is_send_and_sync() {
        assert_send_sync::<Stylesheet>();
    }
}
