//! The seam to a transform engine (XSLT), and the output step.
//!
//! This crate does not transform anything itself. A rule output that names
//! a stylesheet is served by a [`Transformer`] that a
//! [`TransformerFactory`] loaded when the depot was loaded. Without a
//! factory such a rule does not load (see [`crate::Depot::load`]); data is
//! never passed through silently instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use drehscheibe_model::MessageId;

use crate::input::InputDocument;

/// Failure of the output step or of a transform engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// The rule parameters do not fit the package's declarations.
    #[error("invalid rule parameters for {rule}: {message}")]
    InvalidParams {
        /// `id@version` of the rule.
        rule: String,
        /// Every problem found, `; `-separated.
        message: String,
    },
    /// A stylesheet could not be loaded or compiled.
    #[error("stylesheet {}: {message}", path.display())]
    Stylesheet {
        /// The stylesheet file.
        path: PathBuf,
        /// What the engine reported.
        message: String,
    },
    /// The transform ran and failed (dynamic error, `xsl:message
    /// terminate="yes"`, …).
    #[error("transform failed: {0}")]
    Failed(String),
    /// The stylesheet refused the message on purpose (`xsl:message
    /// terminate="yes"`); the text is the rule author's reason. The engine
    /// turns this into a `rejected` message, not a retry.
    #[error("terminated by the rule: {0}")]
    Terminated(String),
    /// An output is not valid against the schema its rule declares (or
    /// the schema could not be used): the rule is broken, the output is
    /// not delivered.
    #[error("output {target}: {source}")]
    InvalidOutput {
        /// Output role.
        target: String,
        /// The validator's verdict.
        source: crate::schema::SchemaError,
    },
    /// A container output could not be planned (its message names a file
    /// that is neither the payload nor an attachment, has no ProzessID…):
    /// the rule is broken.
    #[error("output {target}: container: {message}")]
    Container {
        /// Output role.
        target: String,
        /// What is wrong.
        message: String,
    },
    /// The rule cannot render at all (it was loaded leniently with an
    /// error, e.g. no transform engine for its stylesheets).
    #[error("{0}")]
    Unavailable(String),
}

/// The result of one transform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformOutput {
    /// The serialized result document.
    pub bytes: Bytes,
    /// Texts of non-terminating `xsl:message`s, in order: the engine logs
    /// them and writes them to the message's audit trail.
    pub messages: Vec<String>,
}

impl TransformOutput {
    /// Wraps serialized output.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        Self {
            bytes: bytes.into(),
            messages: Vec::new(),
        }
    }

    /// The same output with the stylesheet's `xsl:message` texts.
    pub fn with_messages(mut self, messages: Vec<String>) -> Self {
        self.messages = messages;
        self
    }
}

/// Namespace of the reserved stylesheet parameters the hub supplies to
/// every transform: declare e.g.
/// `<xsl:param name="ds:message-id" xmlns:ds="urn:x-drehscheibe:rule"/>`.
/// Being in a namespace, they can never collide with a rule's own
/// (unprefixed) parameters.
pub const RESERVED_PARAM_NS: &str = "urn:x-drehscheibe:rule";

/// Local names of the reserved parameters (see [`RESERVED_PARAM_NS`]):
/// message id, receive time (RFC 3339), intake channel, serving tenant,
/// Leistung and Kommune key; for container outputs
/// ([`crate::container`]) the payload's file name in a container and the
/// attachments' file names and media types (one per line).
pub const RESERVED_PARAMS: &[&str] = &[
    "message-id",
    "received-at",
    "channel",
    "tenant",
    "leistung",
    "kommune",
    "payload-file",
    "attachment-files",
    "attachment-types",
    "attachment-ids",
];

/// An attachment of the message as a rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderAttachment {
    /// Its file name inside a container ([`crate::container::attachment_files`]).
    pub file: String,
    /// Its media type as the sender declared it.
    pub content_type: String,
    /// A stable UUID for it ([`crate::container::attachment_id`]).
    pub id: String,
}

/// A loaded, ready-to-run transform (one stylesheet).
///
/// `params` are the rule parameters after [`crate::RulePackage::check_params`]
/// (declared names only, defaults applied), to be bound to the stylesheet's
/// global parameters of the same name.
pub trait Transformer: Send + Sync {
    /// Transforms the input document.
    fn transform(
        &self,
        input: &InputDocument,
        params: &BTreeMap<String, String>,
    ) -> Result<TransformOutput, TransformError>;
}

/// Loads stylesheets into [`Transformer`]s; called once per output per
/// package version when the depot is loaded.
pub trait TransformerFactory: Send + Sync {
    /// Loads and compiles the stylesheet at `stylesheet` (an absolute or
    /// depot-relative path inside the package directory).
    fn load(&self, stylesheet: &Path) -> Result<Arc<dyn Transformer>, TransformError>;
}

/// Message facts available to file name templates and, as reserved
/// parameters ([`RESERVED_PARAM_NS`]), to stylesheets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderContext {
    /// Id of the message being rendered (`{id}`).
    pub message_id: MessageId,
    /// LeiKa key (`{leistung}`).
    pub leistung: String,
    /// Kommune key (`{kommune}`).
    pub kommune: String,
    /// Intake channel (`""` when rendered outside the hub, e.g. `rules test`).
    pub channel: String,
    /// The tenant that processes the message (after delegation).
    pub tenant: String,
    /// Receive time, RFC 3339 (`""` outside the hub).
    pub received_at: String,
    /// The payload's file name in a container
    /// ([`crate::container::payload_file`]).
    pub payload_file: String,
    /// The message's attachments, in envelope order.
    pub attachments: Vec<RenderAttachment>,
}

impl RenderContext {
    /// The reserved parameters, keyed `Q{urn:x-drehscheibe:rule}name` as
    /// stylesheet parameter maps expect.
    pub fn reserved_params(&self) -> BTreeMap<String, String> {
        let values = [
            self.message_id.to_string(),
            self.received_at.clone(),
            self.channel.clone(),
            self.tenant.clone(),
            self.leistung.clone(),
            self.kommune.clone(),
            self.payload_file.clone(),
            crate::container::line_list(self.attachments.iter().map(|a| a.file.as_str())),
            crate::container::line_list(self.attachments.iter().map(|a| a.content_type.as_str())),
            crate::container::line_list(self.attachments.iter().map(|a| a.id.as_str())),
        ];
        RESERVED_PARAMS
            .iter()
            .zip(values)
            .map(|(name, value)| (format!("Q{{{RESERVED_PARAM_NS}}}{name}"), value))
            .collect()
    }
}

/// One output document of a rule, ready for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedOutput {
    /// Output role (`fachverfahren`, `dms`, …); the tenant route maps it to
    /// a connector.
    pub target: String,
    /// Media type of `bytes`.
    pub content_type: String,
    /// Suggested file name (template expanded, made safe).
    pub filename: String,
    /// The document.
    pub bytes: Bytes,
    /// `xsl:message` texts the transform produced.
    pub messages: Vec<String>,
    /// For a container output: the rendered message is `bytes`, and this
    /// names what the engine packs with it (and `filename` is the
    /// container's).
    pub container: Option<crate::container::Container>,
}
