//! Shared vocabulary of Drehscheibe.
//!
//! Everything that crosses a crate boundary is defined here: the message
//! [`Envelope`] and [`MessageRecord`], the [`MessageState`] machine, the
//! [`AuditEvent`], and the trait seams that let a new protocol be one new
//! crate:
//!
//! * [`Intake`] — implemented by the engine, called by input adapters;
//! * [`InputAdapter`] — a source that runs its own loop (directory watcher,
//!   FIT-Connect subscriber, XTA mailbox poller);
//! * [`Connector`] — a sink that delivers one document to one endpoint;
//! * [`BlobStore`] — content-addressed, streamed attachment storage;
//! * [`Scanner`] — a malware scanner the engine asks about all content.
//!
//! Data flows one way: adapter → intake store → rule processor → delivery
//! queue → connector. No crate reaches around another.

pub mod auth;
mod blob;
mod connector;
mod envelope;
pub mod health;
mod ids;
mod intake;
pub mod scan;
mod state;

pub use blob::{BlobError, BlobReader, BlobRef, BlobStore, UnreferencedCheck};
pub use connector::{
    Checkpoint, CheckpointSink, Connector, DeliveryError, DeliveryReceipt, DeliveryRequest,
};
pub use envelope::{
    AttachmentRef, AuditEvent, Delivery, DeliveryState, Envelope, MessageRecord, RuleRef,
    ScanFinding, ScanRelease, ScanState, SenderIdentity,
};
pub use health::Health;
pub use ids::{IdError, MessageId};
pub use intake::{
    Accepted, AdapterError, DeliveryStatus, InputAdapter, Intake, IntakeError, MessageStatus,
    StagedAttachment, Submission,
};
pub use scan::{ScanError, Scanner, Verdict};
pub use state::{InvalidTransition, MessageState};

/// Hex-encoded SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
