//! XML Schema (XSD 1.0) validation for Drehscheibe, with libxml2.
//!
//! # What this crate does
//!
//! A rule package may declare the schema its input must satisfy and the
//! schema of each output (see `drehscheibe_rules::schema`). This crate is
//! the validator behind that seam: [`XsdFactory`] implements
//! [`SchemaFactory`] and compiles each declared schema when the depot is
//! loaded; the [`XsdSchema`] it returns implements [`SchemaValidator`] and
//! validates serialized documents, from any number of threads.
//!
//! ```no_run
//! use std::path::Path;
//! use std::sync::Arc;
//! use drehscheibe_xsd::{Catalog, SchemaValidator, XsdFactory};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let catalog = Catalog::load("schemas/catalog.xml")?;
//! let factory = XsdFactory::new(Arc::new(catalog));
//! let schema = factory.load_schema(Path::new("rules/x/1.0.0"), "urn:xoev-de:xdomea:schema:3.1.0")?;
//! schema.validate(b"<xdomea:Abgabe.Abgabe.0401 xmlns:xdomea='urn:xoev-de:xdomea:schema:3.1.0'/>")?;
//! # Ok(()) }
//! ```
//!
//! # Where schemas come from: locations and the XML catalog
//!
//! A schema location is either a path relative to the rule package
//! (`gewerbe-import.xsd`; absolute paths and `..` are refused, so is a
//! symbolic link out of the package) or a URI (`urn:…`, `https://…`: any
//! text starting with a scheme `[A-Za-z][A-Za-z0-9+.-]+:`). A URI is
//! looked up in the hub's XML [`Catalog`] (OASIS XML Catalogs 1.1, the
//! shipped one is `schemas/catalog.xml`), which maps it to a local copy;
//! a URI the catalog does not list is an error. The hub never downloads
//! a schema: that would make validation depend on a third party's web
//! server, and let a rule author make the hub send requests.
//!
//! Schemas are rarely one file. `xs:include` and `xs:import` pull in
//! further files, often by `http://` URL (`xml.xsd`, XÖV code lists).
//! libxml2 loads all of them through one process-wide hook, the external
//! entity loader, which this crate replaces once per process (module
//! `loader`). While a schema compiles, the loader first asks the catalog
//! (so `http://www.w3.org/2001/xml.xsd` is read from `schemas/xta/xml.xsd`),
//! then allows plain files below the schema's own directory, the rule
//! package and the catalog's [roots](Catalog::roots), and refuses
//! everything else; a refused import fails the compile with a message
//! naming the URL ("import of … refused: not in the XML catalog; …"),
//! even where libxml2 itself would only have warned and skipped it.
//!
//! # How a document is validated: streaming
//!
//! libxml2 can validate a tree it has parsed completely (DOM), or a
//! stream of parse events. This crate does the latter, with the
//! `xmlTextReader` pull parser and a schema validation context plugged
//! into it: the reader parses a few hundred bytes at a time, the validator
//! checks each node as it passes, and nodes already read are freed, so a
//! 200 MB document does not need 2 GB of tree.
//!
//! Every problem libxml2 reports goes to a structured error callback
//! that keeps the first [`MAX_REPORTED_ISSUES`] issues (line, column,
//! message clipped to [`MAX_ISSUE_CHARS`] characters) and counts the rest
//! in [`SchemaViolation::more`]. Lines are libxml2's (the same as
//! `xmllint --stream --schema` prints); libxml2 gives schema errors no
//! column in streaming mode, so the column of the element's tag is
//! worked out from the document. A document that is not well-formed is
//! [`SchemaError::Invalid`] as well, with the parser's message and
//! position; parsing stops at the first such (fatal) error.
//!
//! # Hostile documents
//!
//! Documents come from outside. The reader parses with `XML_PARSE_NONET`:
//! entities are not substituted (`NOENT`), external DTDs not loaded
//! (`DTDLOAD`, `DTDATTR`). libxml2's default size limits (10 MB per text
//! node, 256 levels) would refuse valid documents — an XÖV attachment of
//! 7.5 MB as base64 — so `HUGE` lifts them, but only for a UTF-8 document
//! whose prolog holds no DOCTYPE (HUGE also lifts libxml2's guard against
//! entity expansion; such a document declares no entities); any other
//! keeps the limits. A document with a `<!DOCTYPE …>` is refused at once
//! ("DOCTYPE declarations are not accepted"; found by a scan of the
//! prolog before parsing, or else when the reader meets the node, which
//! also covers UTF-16): no payload the hub handles needs a DTD, and
//! refusing it closes external-entity file disclosure (XXE) and entity
//! expansion ("billion laughs") for good. Outside schema compilation the
//! entity loader refuses every load.
//!
//! Not bounded by the hub's route budget: libxml2 does not look at it, so
//! a validation runs to its end (linear in the document: about 30–60 MB/s,
//! `benches/validate.rs`). libxml2 writes a few internal notices (e.g.
//! "Unimplemented block") to stderr through its generic error handler,
//! which this crate does not replace (its C type is variadic).
//!
//! # Threads
//!
//! A compiled libxml2 schema is not thread-safe to share, so an
//! [`XsdSchema`] holds only what is needed to compile it (file, catalog,
//! allowed roots) and a process-unique id. Each thread compiles its own
//! copy on first use and keeps it in a thread-local cache (at most
//! [`MAX_CACHED_PER_THREAD`] schemas per thread, least recently used
//! evicted). [`XsdFactory::load_schema`] compiles once on the calling
//! thread, so a broken schema is reported when the package is loaded,
//! with file, line and libxml2's message. Each validation uses a fresh
//! (cheap) validation context, so a document abandoned halfway never
//! leaves state behind for the next one.
//!
//! # Requirements
//!
//! The `libxml` crate generates its bindings with bindgen at build time:
//! building needs `libxml2-dev`, `libclang-dev` and `pkg-config`; running
//! needs libxml2 (2.9 or later).

mod catalog;
mod compile;
mod errors;
mod factory;
mod loader;
mod validate;

pub use catalog::{Catalog, CatalogError, CATALOG_NS, MAX_CATALOG_DEPTH};
pub use compile::{cached_on_this_thread, MAX_CACHED_PER_THREAD};
pub use factory::{XsdFactory, XsdSchema};
pub use validate::DOCTYPE_REFUSED;

pub use drehscheibe_rules::schema::{
    SchemaError, SchemaFactory, SchemaIssue, SchemaValidator, SchemaViolation, MAX_ISSUE_CHARS,
    MAX_REPORTED_ISSUES,
};
