//! The malware-scanner seam: the engine asks a [`Scanner`] about every
//! payload, attachment and output; `crates/clamd` implements it over
//! ClamAV's daemon. A scanner answers a [`Verdict`] or a [`ScanError`],
//! and every error means "not known to be clean": the caller fails
//! closed (the content waits and is scanned again; it is never delivered
//! unscanned).

use std::time::Duration;

use async_trait::async_trait;

use crate::BlobReader;

/// What the scanner found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing found.
    Clean,
    /// Malware: the scanner's name of what it found (e.g.
    /// `Eicar-Signature`).
    Infected { signature: String },
}

/// Why a scan gave no verdict. All of these are retried later; none lets
/// content through.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The scanner cannot be reached (not running, refused, reset).
    #[error("scanner unavailable: {0}")]
    Unavailable(String),
    /// The scanner took longer than allowed.
    #[error("scanner did not answer within {0:?}")]
    Timeout(Duration),
    /// The content is larger than the scanner accepts.
    #[error("content larger than the scanner accepts ({0})")]
    TooLarge(String),
    /// The content could not be read.
    #[error("reading the content to scan: {0}")]
    Source(String),
    /// The scanner answered something this client does not understand, or
    /// an error of its own.
    #[error("scanner error: {0}")]
    Scanner(String),
}

/// A malware scanner.
#[async_trait]
pub trait Scanner: Send + Sync {
    /// Scan the content of `reader` (streamed: never held whole in
    /// memory).
    async fn scan(&self, reader: BlobReader) -> Result<Verdict, ScanError>;
    /// Whether the scanner answers now (health checks, `/readyz`).
    async fn ping(&self) -> Result<(), ScanError>;
    /// What it is, for logs and audit events (e.g. `clamd unix:/run/clamav/clamd.ctl`).
    fn describe(&self) -> String;
}
