//! The seam to an XML Schema (XSD) validator.
//!
//! A rule package may declare the schema of its input (`[input] schema`)
//! and of each output (`[[outputs]] schema`). This crate validates nothing
//! itself: a [`SchemaFactory`] (the hub wires `drehscheibe-xsd`, libxml2)
//! compiles each declared schema when the package is loaded and hands back
//! a [`SchemaValidator`]. A package that declares a schema but was loaded
//! without a factory, or whose schema does not compile, is
//! [unavailable](crate::RulePackage::unavailable) — never silently
//! unvalidated.
//!
//! A schema location is either a path relative to the package folder
//! (`gewerbe-import.xsd`) or a URI (`urn:xoev-de:xdomea:schema:3.1.0`,
//! `https://…/xdomea.xsd`) that the factory resolves through its XML
//! catalog to a local file: the hub never fetches a schema from the
//! network.
//!
//! What the validator reports is bounded: at most
//! [`MAX_REPORTED_ISSUES`] issues with their line and column, and the
//! number of further ones.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::transform::TransformerFactory;

/// Most issues a [`SchemaViolation`] lists; further ones are only counted
/// (an invalid 200 MB document must not become a 2 GB error report).
pub const MAX_REPORTED_ISSUES: usize = 50;

/// Most characters of one issue's message that are kept.
pub const MAX_ISSUE_CHARS: usize = 400;

/// One problem found in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaIssue {
    /// 1-based line in the document, when known.
    pub line: Option<u32>,
    /// 1-based column in the document, when known.
    pub column: Option<u32>,
    /// The validator's message, trimmed.
    pub message: String,
}

impl fmt::Display for SchemaIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            (Some(l), None) => write!(f, "line {l}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// A document that is not valid against its schema (or not well-formed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// The schema as declared (location text).
    pub schema: String,
    /// The first [`MAX_REPORTED_ISSUES`] issues, in document order.
    pub issues: Vec<SchemaIssue>,
    /// How many further issues were found but not kept.
    pub more: usize,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.issues.len() + self.more;
        write!(
            f,
            "not valid against schema {} ({total} error{}): ",
            self.schema,
            if total == 1 { "" } else { "s" }
        )?;
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{issue}")?;
        }
        if self.more > 0 {
            write!(f, "; and {} more", self.more)?;
        }
        Ok(())
    }
}

impl std::error::Error for SchemaViolation {}

/// Why a validation did not give a verdict on the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The document is invalid (or not well-formed XML).
    #[error("{0}")]
    Invalid(SchemaViolation),
    /// The schema could not be compiled or resolved (a rule or
    /// installation problem, not the document's fault).
    #[error("schema {schema}: {message}")]
    Schema {
        /// The schema as declared.
        schema: String,
        /// What went wrong, with the validator's messages.
        message: String,
    },
}

/// A compiled schema, ready to validate documents. Shared by all worker
/// threads; implementations keep thread-bound state (libxml2's compiled
/// schema) per thread themselves.
pub trait SchemaValidator: Send + Sync + fmt::Debug {
    /// The schema as declared (for messages and the audit trail).
    fn location(&self) -> &str;

    /// Validates one serialized document (streaming: memory does not grow
    /// with the document beyond its deepest element path).
    fn validate(&self, document: &[u8]) -> Result<(), SchemaError>;
}

/// Resolves and compiles schema locations; called once per declared
/// schema per package version when the depot is loaded.
pub trait SchemaFactory: Send + Sync {
    /// Compiles the schema `location` declared by the package in
    /// `package_dir` (a relative path inside the package, or a URI the
    /// factory's catalog maps to a local file).
    fn load(
        &self,
        package_dir: &Path,
        location: &str,
    ) -> Result<Arc<dyn SchemaValidator>, SchemaError>;
}

/// What a rule package needs from outside this crate to be usable: a
/// transform engine for its stylesheets and a schema validator for its
/// declared schemas. Either may be absent; a package that needs the
/// missing one loads [unavailable](crate::RulePackage::unavailable).
#[derive(Clone, Default)]
pub struct Engines {
    /// Compiles stylesheets.
    pub transform: Option<Arc<dyn TransformerFactory>>,
    /// Compiles schemas.
    pub schema: Option<Arc<dyn SchemaFactory>>,
}

impl Engines {
    /// Both engines.
    pub fn new(
        transform: Option<Arc<dyn TransformerFactory>>,
        schema: Option<Arc<dyn SchemaFactory>>,
    ) -> Self {
        Self { transform, schema }
    }
}

impl From<Option<Arc<dyn TransformerFactory>>> for Engines {
    fn from(transform: Option<Arc<dyn TransformerFactory>>) -> Self {
        Self {
            transform,
            schema: None,
        }
    }
}

impl fmt::Debug for Engines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engines")
            .field("transform", &self.transform.is_some())
            .field("schema", &self.schema.is_some())
            .finish()
    }
}
