//! RFC 7807 problems with FIT-Connect-style `type` URIs
//! (`https://schema.fitko.de/fit-connect/submission-api/problems/<kind>`).
//!
//! Kinds known from FIT-Connect: `destination-not-found`,
//! `submission-not-found`. The others follow the same naming; see the
//! crate README for the list.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::PROBLEM_BASE;

/// A problem answer of the intake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitProblem {
    /// HTTP status.
    pub status: u16,
    /// `type` suffix, e.g. `hash-mismatch`.
    pub kind: &'static str,
    /// Explanation of this occurrence.
    pub detail: String,
}

impl FitProblem {
    /// A problem of `kind` with `status`.
    pub fn new(status: u16, kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            detail: detail.into(),
        }
    }

    /// The full `type` URI.
    pub fn type_uri(&self) -> String {
        format!("{PROBLEM_BASE}{}", self.kind)
    }

    /// Title derived from the kind (`hash-mismatch` → `Hash mismatch`).
    pub fn title(&self) -> String {
        let mut t = String::new();
        for (i, c) in self.kind.chars().enumerate() {
            match c {
                '-' => t.push(' '),
                c if i == 0 => t.extend(c.to_uppercase()),
                c => t.push(c),
            }
        }
        t
    }

    pub(crate) fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", detail)
    }
    pub(crate) fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(403, "forbidden", detail)
    }
    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, "bad-request", detail)
    }
    pub(crate) fn internal(detail: impl Into<String>) -> Self {
        Self::new(500, "internal-error", detail)
    }
    pub(crate) fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, "service-unavailable", detail)
    }
}

impl std::fmt::Display for FitProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.kind, self.status, self.detail)
    }
}

impl IntoResponse for FitProblem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({
            "type": self.type_uri(),
            "title": self.title(),
            "status": self.status,
            "detail": self.detail,
        });
        let mut response = (status, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == 401 {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
