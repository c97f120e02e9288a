//! Rule processor building blocks of Drehscheibe.
//!
//! * [`input`] — safe parsing of submitted payloads ([`InputDocument`],
//!   [`validate`]): DOCTYPE refused, depth limited, JSON converted to the
//!   XPath 3.1 `fn:json-to-xml` form;
//! * [`manifest`] — the `rule.toml` of a rule package ([`Manifest`]);
//! * [`depot`] — the versioned rule depot ([`Depot`]) and recognition:
//!   which rule handles a document, which Kommune and which Leistung;
//! * [`RulePackage`] — one rule version: extraction, parameter checks and
//!   the output step ([`RulePackage::render`]);
//! * [`schema`] — the seam to an XSD validator ([`SchemaFactory`]):
//!   declared input and output schemas, bounded violation reports;
//! * [`transform`] — the seam to a transform engine ([`Transformer`],
//!   [`TransformerFactory`]); this crate ships none;
//! * [`testing`] — rule test cases shipped in a package's `tests/`
//!   folder, canonical XML comparison, JUnit reports;
//! * [`mod@publish`] — validated, atomic publication of a package version into
//!   the depot ([`publish()`]), and loading a single package folder
//!   ([`load_package`]).
//!
//! XPath 3.1 is provided by our own engine, `drehscheibe-xpath`. A
//! package's expressions are compiled once when it is loaded; compiled
//! expressions are `Send + Sync` and shared by all worker threads. The
//! payload is parsed once per message into an immutable tree
//! ([`InputDocument::document`]) that recognition, routing and the
//! transform share; see [`xpath`](crate#xpath-evaluation).
//!
//! # XPath evaluation
//!
//! Expressions see the document node as context item and the external
//! variables `$channel` and `$content-type` (strings) and `$meta` (the
//! envelope facts as `<meta><entry key="…">…</entry></meta>`). Conditions use the
//! effective boolean value; extractions the string value of at most one
//! item, whitespace-trimmed.
//!
//! ```no_run
//! use std::sync::Arc;
//! use drehscheibe_rules::{Depot, InputDocument};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let depot = Depot::load("rules".as_ref(), None)?;
//! let doc = InputDocument::parse(b"<a/>", "application/xml")?;
//! let found = depot.recognize(&doc, "portal", "application/xml")?;
//! println!("{} → {} / {}", found.rule.rule_ref(), found.kommune_key, found.leistung);
//! # Ok(()) }
//! ```

pub mod container;
pub mod depot;
pub mod input;
pub mod manifest;
mod package;
pub mod publish;
pub mod schema;
pub mod testing;
pub mod transform;
mod xpath;

pub use depot::{Depot, DepotError, Recognition, RouteError};
/// The cooperative time budget of evaluation and transforms (re-exported
/// from the XPath engine for the engine's routing step).
pub use drehscheibe_xpath::budget;
pub use input::{
    routing_memory_estimate, transcode_to_utf8, validate, InputDocument, InputError, InputKind,
    Transcoded, JSON_MEMORY_FACTOR, MAX_JSON_DEPTH, MAX_XML_ATTRIBUTES, MAX_XML_DEPTH,
    XML_MEMORY_FACTOR,
};
pub use manifest::{Manifest, ManifestError, OutputSpec, ParamSpec, ParamType};
pub use package::RulePackage;
pub use publish::{load_package, publish, PublishError, Published};
pub use schema::{
    Engines, SchemaError, SchemaFactory, SchemaIssue, SchemaValidator, SchemaViolation,
};
pub use transform::{
    RenderAttachment, RenderContext, RenderedOutput, TransformError, TransformOutput, Transformer,
    TransformerFactory,
};
pub use xpath::{VAR_CHANNEL, VAR_CONTENT_TYPE};
