//! Client of the FIT-Connect v1 Submission API (a Zustelldienst).
//!
//! The configured base URL is the service root (e.g.
//! `https://submission-api-testing.fit-connect.fitko.dev`); a trailing
//! `/v1` is tolerated. Every call carries a bearer token from the
//! [`TokenClient`]; a `401` drops the cached token and the call is tried
//! once more with a fresh one.
//!
//! Sender side: [`SubmissionClient::destination`],
//! [`SubmissionClient::destination_key`], [`SubmissionClient::announce`],
//! [`SubmissionClient::upload_attachment`], [`SubmissionClient::submit`],
//! [`SubmissionClient::events`]. Subscriber side:
//! [`SubmissionClient::list_submissions`], [`SubmissionClient::submission`],
//! [`SubmissionClient::attachment`], [`SubmissionClient::post_event`].

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{parse_base_url, read_limited, status_error, ClientError, TokenClient};

/// Largest JSON answer read by default (a fetched submission carries the
/// encrypted data set, which FIT-Connect limits to about 14 MB).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 << 20;

/// Most event-log entries fetched per page (the API's maximum).
const EVENT_PAGE: usize = 500;

/// A destination as `GET /v1/destinations/{id}` describes it. Only the
/// fields the hub needs are typed; everything else is kept in `extra`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// The destination id.
    #[serde(default)]
    pub destination_id: String,
    /// `active` when it accepts submissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Key id of the current public encryption key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_kid: Option<String>,
    /// Every other field (services, metadata versions, …).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Destination {
    /// Submission schemas the destination lists for a service identifier
    /// (`services[].identifier`, v1 shape, or `publicServices[]`),
    /// as `(schemaUri, mimeType)` pairs.
    pub fn submission_schemas(&self, service_identifier: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for list in ["services", "publicServices"] {
            let Some(services) = self.extra.get(list).and_then(|v| v.as_array()) else {
                continue;
            };
            for s in services {
                if s.get("identifier").and_then(|v| v.as_str()) != Some(service_identifier) {
                    continue;
                }
                let Some(schemas) = s.get("submissionSchemas").and_then(|v| v.as_array()) else {
                    continue;
                };
                for sc in schemas {
                    let uri = sc.get("schemaUri").and_then(|v| v.as_str());
                    let mime = sc.get("mimeType").and_then(|v| v.as_str());
                    if let (Some(u), Some(m)) = (uri, mime) {
                        out.push((u.to_string(), m.to_string()));
                    }
                }
            }
        }
        out
    }
}

/// `serviceType` of an announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceType {
    /// Display name of the Leistung.
    #[serde(default)]
    pub name: String,
    /// `urn:de:fim:leika:leistung:<14 digits>` (or another schema URN).
    pub identifier: String,
}

/// Body of `POST /v1/submissions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnnounceRequest {
    /// Where the submission goes.
    pub destination_id: String,
    /// Attachment ids (UUIDv4, chosen by the sender).
    pub announced_attachments: Vec<String>,
    /// The Leistung.
    pub service_type: ServiceType,
}

/// Answer of `POST /v1/submissions` (and of the submit `PUT`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Announced {
    /// The destination.
    #[serde(default)]
    pub destination_id: String,
    /// The new submission's id.
    pub submission_id: String,
    /// The case (Vorgang) id: handle of the event log.
    pub case_id: String,
}

/// One entry of `GET /v1/submissions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionItem {
    /// The destination it was sent to.
    pub destination_id: String,
    /// The submission id.
    pub submission_id: String,
    /// The case id.
    pub case_id: String,
}

/// A page of `GET /v1/submissions`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmissionPage {
    /// Entries on this page.
    #[serde(default)]
    pub count: Option<u64>,
    /// Start of this page.
    #[serde(default)]
    pub offset: Option<u64>,
    /// All entries.
    #[serde(default)]
    pub total_count: Option<u64>,
    /// The submissions.
    #[serde(default)]
    pub submissions: Vec<SubmissionItem>,
}

/// A submitted submission as `GET /v1/submissions/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedSubmission {
    /// The destination.
    #[serde(default)]
    pub destination_id: String,
    /// The submission id.
    pub submission_id: String,
    /// The case id.
    pub case_id: String,
    /// The Leistung as announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_type: Option<ServiceType>,
    /// Ids of the uploaded attachments.
    #[serde(default)]
    pub attachments: Vec<String>,
    /// Metadata, JWE compact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_metadata: Option<String>,
    /// Data set, JWE compact (may be absent or an empty placeholder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted_data: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubmitBody<'a> {
    encrypted_metadata: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    encrypted_data: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventLog {
    #[serde(default)]
    event_log: Vec<String>,
    #[serde(default)]
    total_count: Option<u64>,
}

/// Client of one Zustelldienst; see the module docs.
pub struct SubmissionClient {
    http: reqwest::Client,
    base: String,
    tokens: Arc<TokenClient>,
    max_body_bytes: u64,
}

impl fmt::Debug for SubmissionClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmissionClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Check an id before it goes into a URL path (ids are UUIDs in practice;
/// anything with `/`, `?`, `#`, `%` or whitespace is refused).
fn path_id(what: &str, id: &str) -> Result<(), ClientError> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        || id == "."
        || id == ".."
    {
        return Err(ClientError::Config(format!("invalid {what} {id:?}")));
    }
    Ok(())
}

impl SubmissionClient {
    /// A client for the Zustelldienst at `base_url`.
    pub fn new(
        http: reqwest::Client,
        base_url: &str,
        tokens: Arc<TokenClient>,
    ) -> Result<Self, ClientError> {
        let u = parse_base_url("submission_api_url", base_url)?;
        let mut base = u.as_str().trim_end_matches('/').to_string();
        if let Some(stripped) = base.strip_suffix("/v1") {
            base = stripped.to_string();
        }
        Ok(Self {
            http,
            base,
            tokens,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        })
    }

    /// Change the largest JSON answer read (default
    /// [`DEFAULT_MAX_BODY_BYTES`]).
    pub fn with_max_body_bytes(mut self, limit: u64) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// The service root this client talks to (without `/v1`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1{path}", self.base)
    }

    /// Send a request built by `make` with a bearer token; on `401` retry
    /// once with a fresh token.
    async fn send(
        &self,
        op: &str,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let mut fresh = false;
        loop {
            let token = self.tokens.token().await?;
            let resp = make()
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|e| ClientError::network(op, &e))?;
            if resp.status() == reqwest::StatusCode::UNAUTHORIZED && !fresh {
                self.tokens.invalidate().await;
                fresh = true;
                continue;
            }
            return Ok(resp);
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        op: &str,
        resp: reqwest::Response,
        limit: u64,
    ) -> Result<T, ClientError> {
        if !resp.status().is_success() {
            return Err(status_error(op, resp).await);
        }
        let body = read_limited(resp, limit)
            .await
            .map_err(|e| ClientError::invalid(op, e))?;
        serde_json::from_slice(&body).map_err(|e| ClientError::invalid(op, e.to_string()))
    }

    async fn expect_success(&self, op: &str, resp: reqwest::Response) -> Result<(), ClientError> {
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(op, resp).await)
        }
    }

    /// `GET /v1/destinations/{id}`.
    pub async fn destination(&self, destination_id: &str) -> Result<Destination, ClientError> {
        path_id("destination id", destination_id)?;
        let op = format!("GET /v1/destinations/{destination_id}");
        let url = self.url(&format!("/destinations/{destination_id}"));
        let resp = self.send(&op, || self.http.get(&url)).await?;
        self.json(&op, resp, 4 << 20).await
    }

    /// `GET /v1/destinations/{id}/keys/{kid}`: one public JWK (as JSON).
    pub async fn destination_key(
        &self,
        destination_id: &str,
        kid: &str,
    ) -> Result<serde_json::Value, ClientError> {
        path_id("destination id", destination_id)?;
        path_id("key id", kid)?;
        let op = format!("GET /v1/destinations/{destination_id}/keys/{kid}");
        let url = self.url(&format!("/destinations/{destination_id}/keys/{kid}"));
        let resp = self.send(&op, || self.http.get(&url)).await?;
        self.json(&op, resp, 1 << 20).await
    }

    /// `POST /v1/submissions`: announce a submission.
    pub async fn announce(&self, request: &AnnounceRequest) -> Result<Announced, ClientError> {
        const OP: &str = "POST /v1/submissions";
        let url = self.url("/submissions");
        let resp = self.send(OP, || self.http.post(&url).json(request)).await?;
        let a: Announced = self.json(OP, resp, 1 << 20).await?;
        path_id("submission id", &a.submission_id)
            .and_then(|()| path_id("case id", &a.case_id))
            .map_err(|e| ClientError::invalid(OP, e.to_string()))?;
        Ok(a)
    }

    /// `PUT /v1/submissions/{id}/attachments/{attachmentId}` with a JWE.
    pub async fn upload_attachment(
        &self,
        submission_id: &str,
        attachment_id: &str,
        jwe: bytes::Bytes,
    ) -> Result<(), ClientError> {
        path_id("submission id", submission_id)?;
        path_id("attachment id", attachment_id)?;
        let op = format!("PUT /v1/submissions/{submission_id}/attachments/{attachment_id}");
        let url = self.url(&format!(
            "/submissions/{submission_id}/attachments/{attachment_id}"
        ));
        let resp = self
            .send(&op, || {
                self.http
                    .put(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/jose")
                    .body(jwe.clone())
            })
            .await?;
        self.expect_success(&op, resp).await
    }

    /// `PUT /v1/submissions/{id}`: submit metadata and data (JWEs).
    pub async fn submit(
        &self,
        submission_id: &str,
        encrypted_metadata: &str,
        encrypted_data: Option<&str>,
    ) -> Result<(), ClientError> {
        path_id("submission id", submission_id)?;
        let op = format!("PUT /v1/submissions/{submission_id}");
        let url = self.url(&format!("/submissions/{submission_id}"));
        let body = SubmitBody {
            encrypted_metadata,
            encrypted_data,
        };
        let resp = self.send(&op, || self.http.put(&url).json(&body)).await?;
        self.expect_success(&op, resp).await
    }

    /// `GET /v1/cases/{caseId}/events`: the whole event log (SETs, compact
    /// JWS), following pages of 500.
    pub async fn events(&self, case_id: &str) -> Result<Vec<String>, ClientError> {
        path_id("case id", case_id)?;
        let op = format!("GET /v1/cases/{case_id}/events");
        let url = self.url(&format!("/cases/{case_id}/events"));
        let mut all = Vec::new();
        loop {
            let offset = all.len().to_string();
            let limit = EVENT_PAGE.to_string();
            let resp = self
                .send(&op, || {
                    self.http
                        .get(&url)
                        .query(&[("offset", offset.as_str()), ("limit", limit.as_str())])
                })
                .await?;
            let page: EventLog = self.json(&op, resp, 16 << 20).await?;
            let got = page.event_log.len();
            all.extend(page.event_log);
            let more = page.total_count.is_some_and(|t| (all.len() as u64) < t);
            if got < EVENT_PAGE && !more || got == 0 || all.len() >= 100 * EVENT_PAGE {
                return Ok(all);
            }
        }
    }

    /// `GET /v1/submissions?destinationId=…&offset=…&limit=…`: submissions
    /// waiting for the subscriber.
    pub async fn list_submissions(
        &self,
        destination_id: Option<&str>,
        offset: u64,
        limit: u64,
    ) -> Result<SubmissionPage, ClientError> {
        const OP: &str = "GET /v1/submissions";
        if let Some(d) = destination_id {
            path_id("destination id", d)?;
        }
        let url = self.url("/submissions");
        let (offset, limit) = (offset.to_string(), limit.to_string());
        let resp = self
            .send(OP, || {
                let mut q = vec![("offset", offset.as_str()), ("limit", limit.as_str())];
                if let Some(d) = destination_id {
                    q.push(("destinationId", d));
                }
                self.http.get(&url).query(&q)
            })
            .await?;
        self.json(OP, resp, 16 << 20).await
    }

    /// `GET /v1/submissions/{id}`.
    pub async fn submission(
        &self,
        submission_id: &str,
    ) -> Result<SubmittedSubmission, ClientError> {
        path_id("submission id", submission_id)?;
        let op = format!("GET /v1/submissions/{submission_id}");
        let url = self.url(&format!("/submissions/{submission_id}"));
        let resp = self.send(&op, || self.http.get(&url)).await?;
        self.json(&op, resp, self.max_body_bytes).await
    }

    /// `GET /v1/submissions/{id}/attachments/{attachmentId}`: the JWE,
    /// refusing more than `limit` bytes.
    pub async fn attachment(
        &self,
        submission_id: &str,
        attachment_id: &str,
        limit: u64,
    ) -> Result<Vec<u8>, ClientError> {
        path_id("submission id", submission_id)?;
        path_id("attachment id", attachment_id)?;
        let op = format!("GET /v1/submissions/{submission_id}/attachments/{attachment_id}");
        let url = self.url(&format!(
            "/submissions/{submission_id}/attachments/{attachment_id}"
        ));
        let resp = self.send(&op, || self.http.get(&url)).await?;
        if !resp.status().is_success() {
            return Err(status_error(&op, resp).await);
        }
        read_limited(resp, limit)
            .await
            .map_err(|e| ClientError::invalid(&op, e))
    }

    /// `POST /v1/cases/{caseId}/events` with a SET (compact JWS,
    /// `Content-Type: application/jose`).
    pub async fn post_event(&self, case_id: &str, set: &str) -> Result<(), ClientError> {
        path_id("case id", case_id)?;
        let op = format!("POST /v1/cases/{case_id}/events");
        let url = self.url(&format!("/cases/{case_id}/events"));
        let body = set.to_string();
        let resp = self
            .send(&op, || {
                self.http
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/jose")
                    .body(body.clone())
            })
            .await?;
        self.expect_success(&op, resp).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_paths_are_checked() {
        assert!(path_id("x", "3fa85f64-5717-4562-b3fc-2c963f66afa6").is_ok());
        assert!(path_id("x", "../etc").is_err());
        assert!(path_id("x", "a/b").is_err());
        assert!(path_id("x", "a?b").is_err());
        assert!(path_id("x", "").is_err());
        assert!(path_id("x", "..").is_err());
    }

    #[test]
    fn destination_lists_schemas_per_service() {
        let d: Destination = serde_json::from_value(serde_json::json!({
            "destinationId": "d1",
            "status": "active",
            "encryptionKid": "k1",
            "services": [
                {"identifier": "urn:de:fim:leika:leistung:99050012104000",
                 "submissionSchemas": [{"schemaUri": "urn:x:schema", "mimeType": "application/xml"}]},
                {"identifier": "other", "submissionSchemas": [{"schemaUri": "urn:y", "mimeType": "application/json"}]}
            ]
        }))
        .unwrap();
        assert_eq!(d.encryption_kid.as_deref(), Some("k1"));
        assert_eq!(
            d.submission_schemas("urn:de:fim:leika:leistung:99050012104000"),
            vec![("urn:x:schema".to_string(), "application/xml".to_string())]
        );
        assert!(d.submission_schemas("none").is_empty());
    }
}
