//! HTTP clients for the remote FIT-Connect services (reqwest + rustls):
//!
//! * [`TokenClient`]: OAuth 2.0 client-credentials tokens, cached until
//!   shortly before they expire;
//! * [`SubmissionClient`]: the v1 Submission API of a Zustelldienst, for
//!   senders (destination + key, announce, upload, submit, event log) and
//!   subscribers (list, fetch, attachments, post events);
//! * [`RoutingClient`]: the public Routing API (`GET /routes`), cached.
//!
//! Every failure is a [`ClientError`] that knows whether trying again later
//! can help ([`ClientError::is_retryable`]): network errors, timeouts,
//! `408`, `429` and `5xx` can; other `4xx` answers (RFC 7807 problems,
//! kept in [`ClientError::Status`]) and malformed answers cannot.

mod oauth;
mod routing;
mod submission;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use oauth::{TokenClient, TokenSettings};
pub use routing::{Area, Route, RoutingClient};
pub use submission::{
    AnnounceRequest, Announced, Destination, ServiceType, SubmissionClient, SubmissionItem,
    SubmissionPage, SubmittedSubmission,
};

/// `User-Agent` of every request (the Routing API refuses requests
/// without one).
pub const USER_AGENT: &str = concat!("drehscheibe-fit-connect/", env!("CARGO_PKG_VERSION"));

/// Most bytes of an error answer kept for messages.
const SNIPPET_CHARS: usize = 300;

/// An RFC 7807 problem as a FIT-Connect service sends it
/// (`type` like `https://schema.fitko.de/fit-connect/submission-api/problems/<name>`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Problem {
    /// Problem type URI.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Short summary.
    #[serde(default)]
    pub title: String,
    /// HTTP status, as the service repeats it in the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The affected resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.kind.rsplit('/').next().unwrap_or(&self.kind);
        write!(f, "{name}")?;
        if !self.title.is_empty() {
            write!(f, ": {}", self.title)?;
        }
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

/// Failure of a call to a remote FIT-Connect service.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// No answer: connection refused, reset, TLS failure, timeout.
    #[error("{operation}: {reason}")]
    Network {
        /// What was being done, e.g. `POST /v1/submissions`.
        operation: String,
        /// The transport error.
        reason: String,
    },
    /// The service answered with an unexpected status.
    #[error("{operation}: HTTP {status}{}", describe(.problem, .body))]
    Status {
        /// What was being done.
        operation: String,
        /// The HTTP status.
        status: u16,
        /// The RFC 7807 problem, when the body was one.
        problem: Option<Box<Problem>>,
        /// Start of the body otherwise.
        body: String,
    },
    /// The answer had the right status but not the documented shape.
    #[error("{operation}: unexpected answer: {reason}")]
    Invalid {
        /// What was being done.
        operation: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting or argument cannot be used (bad URL, bad key format).
    #[error("{0}")]
    Config(String),
}

fn describe(problem: &Option<Box<Problem>>, body: &str) -> String {
    match problem {
        Some(p) => format!(": {p}"),
        None if body.is_empty() => String::new(),
        None => format!(": {body}"),
    }
}

impl ClientError {
    /// Whether trying again later can help: network failures, `408`,
    /// `429` and `5xx` answers.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Network { .. } => true,
            Self::Status { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            Self::Invalid { .. } | Self::Config(_) => false,
        }
    }

    /// The HTTP status, for [`ClientError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The RFC 7807 problem, for [`ClientError::Status`] with a problem body.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Status { problem, .. } => problem.as_deref(),
            _ => None,
        }
    }

    pub(crate) fn network(operation: &str, e: &reqwest::Error) -> Self {
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            source = s.source();
        }
        Self::Network {
            operation: operation.to_string(),
            reason,
        }
    }

    pub(crate) fn invalid(operation: &str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            operation: operation.to_string(),
            reason: reason.into(),
        }
    }
}

/// Build the shared HTTP client: rustls, no redirects, `timeout` for each
/// whole request, optional extra trusted CA (PEM).
pub fn http_client(
    timeout: Duration,
    ca_cert_pem: Option<&[u8]>,
) -> Result<reqwest::Client, ClientError> {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout);
    if let Some(pem) = ca_cert_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ClientError::Config(format!("invalid CA certificate: {e}")))?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    b.build()
        .map_err(|e| ClientError::Config(format!("cannot build HTTP client: {e}")))
}

/// Turn a non-success answer into [`ClientError::Status`].
pub(crate) async fn status_error(operation: &str, resp: reqwest::Response) -> ClientError {
    let status = resp.status().as_u16();
    let is_json = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    let bytes = read_limited(resp, 64 * 1024).await.unwrap_or_default();
    let problem = if is_json {
        serde_json::from_slice::<Problem>(&bytes)
            .ok()
            .filter(|p| !p.kind.is_empty() || !p.title.is_empty())
            .map(Box::new)
    } else {
        None
    };
    let body = if problem.is_some() {
        String::new()
    } else {
        String::from_utf8_lossy(&bytes)
            .chars()
            .take(SNIPPET_CHARS)
            .collect::<String>()
            .trim()
            .to_string()
    };
    ClientError::Status {
        operation: operation.to_string(),
        status,
        problem,
        body,
    }
}

/// Read a body, refusing more than `limit` bytes.
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    limit: u64,
) -> Result<Vec<u8>, String> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(format!("answer is larger than {limit} bytes"));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(format!("answer is larger than {limit} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Parse a configured base URL (http/https, no credentials, no query).
pub(crate) fn parse_base_url(what: &str, s: &str) -> Result<url::Url, ClientError> {
    let u = url::Url::parse(s.trim())
        .map_err(|e| ClientError::Config(format!("{what}: invalid URL {s:?}: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(ClientError::Config(format!(
            "{what}: URL {s:?} must be http or https"
        )));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(ClientError::Config(format!(
            "{what}: URL {s:?} has no host"
        )));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(ClientError::Config(format!(
            "{what}: URL must not contain credentials"
        )));
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_classification() {
        let st = |status| ClientError::Status {
            operation: "x".into(),
            status,
            problem: None,
            body: String::new(),
        };
        assert!(st(503).is_retryable());
        assert!(st(500).is_retryable());
        assert!(st(429).is_retryable());
        assert!(st(408).is_retryable());
        assert!(!st(400).is_retryable());
        assert!(!st(404).is_retryable());
        assert!(!st(422).is_retryable());
        assert!(ClientError::Network {
            operation: "x".into(),
            reason: "refused".into()
        }
        .is_retryable());
        assert!(!ClientError::invalid("x", "garbage").is_retryable());
    }

    #[test]
    fn problem_display_uses_the_type_name() {
        let e = ClientError::Status {
            operation: "GET /v1/destinations/d".into(),
            status: 404,
            problem: Some(Box::new(Problem {
                kind: "https://schema.fitko.de/fit-connect/submission-api/problems/destination-not-found".into(),
                title: "Destination not found".into(),
                status: Some(404),
                detail: None,
                instance: None,
            })),
            body: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "GET /v1/destinations/d: HTTP 404: destination-not-found: Destination not found"
        );
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(parse_base_url("x", "https://example.org/v1").is_ok());
        assert!(parse_base_url("x", "ftp://example.org").is_err());
        assert!(parse_base_url("x", "https://u:p@example.org").is_err());
        assert!(parse_base_url("x", "not a url").is_err());
    }
}
