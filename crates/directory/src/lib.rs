//! Directory protocol for Drehscheibe: a drop connector and an intake adapter.
//!
//! Many Fachverfahren exchange data through a shared folder. This crate
//! covers both directions:
//!
//! * [`DirectoryConnector`] — a [`Connector`](drehscheibe_model::Connector)
//!   that drops each delivered document (with its attachments and an
//!   optional `<name>.meta.json`) into a folder, atomically: everything is
//!   written to `<path>/.tmp/`, fsynced and renamed into place, and the
//!   document itself appears last, so its appearance tells the consumer
//!   that the delivery is complete.
//! * [`DirectoryIntake`] — an [`InputAdapter`](drehscheibe_model::InputAdapter)
//!   that polls a folder, picks up completed files by renaming them into
//!   `<path>/.work/`, submits them to the hub and files them under
//!   `processed/` or `rejected/`.
//!
//! Both sides poll and rename instead of using inotify: change
//! notifications do not work reliably on network shares (SMB/NFS), where
//! these folders usually live, while `rename` within one folder tree is
//! atomic on every file system that matters here.

pub mod config;
mod connector;
mod fsutil;
mod intake;
mod sanitize;

pub use connector::{DirectoryConnector, DirectorySettings, DropAttachment, DropMetadata};
pub use intake::{DirectoryIntake, DirectoryIntakeSettings};
pub use sanitize::{sanitize_filename, MAX_FILENAME_BYTES};

/// Invalid settings for a directory connector or intake adapter.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The settings cannot work (empty path, path is a file, zero interval, …).
    #[error("invalid directory settings: {0}")]
    InvalidSettings(String),
}
