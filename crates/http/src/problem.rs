//! RFC 7807 problem details (`application/problem+json`).
//!
//! Every error answer of Drehscheibe's HTTP interfaces is a [`Problem`]:
//!
//! ```json
//! {
//!   "type": "https://drehscheibe.dev/problems/unknown-channel",
//!   "title": "Unknown channel",
//!   "status": 404,
//!   "detail": "unknown channel \"portal\""
//! }
//! ```
//!
//! The `type` is [`PROBLEM_TYPE_BASE`] followed by a short kind (for intake
//! errors [`IntakeError::kind`]), so clients can switch on it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use drehscheibe_model::IntakeError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Prefix of every problem `type` URI.
pub const PROBLEM_TYPE_BASE: &str = "https://drehscheibe.dev/problems/";

/// Media type of a problem document.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Member names defined by RFC 7807; extension members may not reuse them.
const RESERVED_MEMBERS: [&str; 5] = ["type", "title", "status", "detail", "instance"];

/// An RFC 7807 problem document; an axum response with status `status` and
/// content type `application/problem+json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// URI identifying the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the problem type; the same for every occurrence.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// Explanation specific to this occurrence.
    pub detail: String,
    /// URI reference of this occurrence (e.g. the request path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Extension members, serialized next to the standard ones.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Problem {
    /// A problem of kind `kind` (the `type` suffix, e.g. `unauthorized`).
    ///
    /// The title is derived from the kind: `unknown-channel` becomes
    /// `Unknown channel`.
    pub fn new(status: u16, kind: &str, detail: impl Into<String>) -> Self {
        Self {
            type_: format!("{PROBLEM_TYPE_BASE}{kind}"),
            title: title_of(kind),
            status,
            detail: detail.into(),
            instance: None,
            extra: Map::new(),
        }
    }

    /// The problem for a refused submission: status
    /// [`IntakeError::http_status`], kind [`IntakeError::kind`].
    pub fn from_intake(error: &IntakeError) -> Self {
        Self::new(error.http_status(), error.kind(), error.to_string())
    }

    /// `400 Bad Request` of kind `bad-request`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(400, "bad-request", detail)
    }

    /// `401 Unauthorized` of kind `unauthorized`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, "unauthorized", detail)
    }

    /// `404 Not Found` of kind `not-found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, "not-found", detail)
    }

    /// `500 Internal Server Error` of kind `internal`.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(500, "internal", detail)
    }

    /// Set the `instance` member.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Add an extension member. Names of standard members (`type`, `title`,
    /// `status`, `detail`, `instance`) are ignored, so they cannot be
    /// overwritten or duplicated.
    pub fn with_extra(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        let name = name.into();
        if !RESERVED_MEMBERS.contains(&name.as_str()) {
            self.extra.insert(name, value.into());
        }
        self
    }

    /// The kind: `type` without [`PROBLEM_TYPE_BASE`], if it has that prefix.
    pub fn kind(&self) -> Option<&str> {
        self.type_.strip_prefix(PROBLEM_TYPE_BASE)
    }

    /// The status as a [`StatusCode`]; `500` if `status` is not a valid code.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<IntakeError> for Problem {
    fn from(error: IntakeError) -> Self {
        Self::from_intake(&error)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.title, self.status, self.detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = match serde_json::to_vec(&self) {
            Ok(body) => body,
            // A map of JSON values always serializes; keep a valid answer anyway.
            Err(_) => {
                br#"{"type":"about:blank","title":"Internal Server Error","status":500}"#.to_vec()
            }
        };
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        response
    }
}

/// `405 Method Not Allowed` with an `Allow` header listing `allow`.
pub(crate) fn method_not_allowed(allow: &str, path: &str) -> Response {
    let problem = Problem::new(
        405,
        "method-not-allowed",
        format!("this resource supports only {allow}"),
    )
    .with_instance(path);
    let mut response = problem.into_response();
    if let Ok(value) = HeaderValue::from_str(allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// A fallback handler answering `404` with a problem document; mount it
/// with `Router::fallback` on the outermost router.
pub async fn not_found_fallback(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!("no resource at {}", uri.path())).with_instance(uri.path())
}

fn title_of(kind: &str) -> String {
    let mut title = String::with_capacity(kind.len());
    for (i, c) in kind.chars().enumerate() {
        match c {
            '-' | '_' => title.push(' '),
            c if i == 0 => title.extend(c.to_uppercase()),
            c => title.push(c),
        }
    }
    title
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_is_derived_from_kind() {
        assert_eq!(title_of("unknown-channel"), "Unknown channel");
        assert_eq!(title_of("payload-too-large"), "Payload too large");
        assert_eq!(title_of(""), "");
    }

    #[test]
    fn serializes_standard_and_extension_members() {
        let p = Problem::from_intake(&IntakeError::TooLarge { limit: 10 })
            .with_instance("/api/v1/inbox/portal")
            .with_extra("limit", 10)
            .with_extra("status", 999);
        let v: Value = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v["type"],
            "https://drehscheibe.dev/problems/payload-too-large"
        );
        assert_eq!(v["title"], "Payload too large");
        assert_eq!(v["status"], 413);
        assert_eq!(v["detail"], "payload is larger than the limit of 10 bytes");
        assert_eq!(v["instance"], "/api/v1/inbox/portal");
        assert_eq!(v["limit"], 10);
        assert_eq!(v.as_object().unwrap().len(), 6);
        let back: Problem = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.kind(), Some("payload-too-large"));
    }

    #[test]
    fn response_has_problem_content_type_and_status() {
        let r = Problem::from_intake(&IntakeError::UnknownChannel("x".into())).into_response();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            r.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
        let r = Problem::new(1000, "odd", "invalid status").into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
