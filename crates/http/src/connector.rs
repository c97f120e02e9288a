//! The HTTP(S) delivery connector: `POST`/`PUT` a document to a
//! Fachverfahren endpoint.
//!
//! * Without attachments (or with [`HttpConnectorSettings::send_attachments`]
//!   off) the body is the document itself, with `Content-Type` set to
//!   [`DeliveryRequest::content_type`].
//! * With attachments the body is `multipart/form-data`: a part named
//!   `document` first, then one part per attachment (named after the
//!   attachment, with its file name and content type), streamed from the
//!   blob store and never loaded whole into memory.
//!
//! Every request carries the configured headers, the configured
//! authentication, and
//! `X-Drehscheibe-Message-Id`, `X-Drehscheibe-Target`, `Idempotency-Key`
//! ([`DeliveryRequest::idempotency_key`]), `X-Drehscheibe-Attempt`, and
//! `X-Drehscheibe-Leistung` / `X-Drehscheibe-Tenant` when known.
//!
//! The delivery succeeds iff the answer's status is one of
//! [`HttpConnectorSettings::success_status`]. Otherwise connection errors,
//! timeouts, `5xx`, `408` and `429` are retryable; redirects (never
//! followed) and every other status are permanent.
//!
//! TLS is rustls only. A configured CA certificate is **added** to the
//! built-in web PKI roots (it does not replace them). A configured client
//! certificate and key are presented for mutual TLS.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use drehscheibe_model::{BlobError, Connector, DeliveryError, DeliveryReceipt, DeliveryRequest};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use tokio_util::io::ReaderStream;

/// Longest response-body snippet kept in receipts and error reasons, in
/// characters.
pub const SNIPPET_CHARS: usize = 200;

/// Most response-body bytes read to build a snippet.
const SNIPPET_READ_BYTES: usize = 4096;

/// Authentication presented to the endpoint.
#[derive(Clone, PartialEq, Eq)]
pub enum HttpAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic <base64(username:password)>`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

impl fmt::Debug for HttpAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

/// Settings of one HTTP connector, filled from the configuration.
#[derive(Clone)]
pub struct HttpConnectorSettings {
    /// Endpoint URL (`http` or `https`).
    pub url: String,
    /// `POST` or `PUT`.
    pub method: Method,
    /// Extra headers sent with every request (before the connector's own).
    pub headers: Vec<(String, String)>,
    /// Authentication, if any.
    pub auth: Option<HttpAuth>,
    /// Status codes that mean "delivered"; must not be empty.
    pub success_status: Vec<u16>,
    /// Client certificate chain and private key (PEM) for mutual TLS.
    pub client_cert_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// Extra trusted CA certificate(s) (PEM), added to the built-in roots.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Limit for the whole request: connect, send, and read the answer.
    pub timeout: Duration,
    /// Send attachments as `multipart/form-data` parts.
    pub send_attachments: bool,
}

impl fmt::Debug for HttpConnectorSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpConnectorSettings")
            .field("url", &self.url)
            .field("method", &self.method)
            .field("headers", &header_names)
            .field("auth", &self.auth)
            .field("success_status", &self.success_status)
            .field(
                "client_cert_pem",
                &self.client_cert_pem.as_ref().map(|_| "<redacted>"),
            )
            .field("ca_cert_pem", &self.ca_cert_pem.as_ref().map(|c| c.len()))
            .field("timeout", &self.timeout)
            .field("send_attachments", &self.send_attachments)
            .finish()
    }
}

/// Why an [`HttpConnector`] could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum HttpConnectorError {
    /// The URL does not parse or is not `http`/`https`.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The configured URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Only `POST` and `PUT` are supported.
    #[error("unsupported method {0}: expected POST or PUT")]
    UnsupportedMethod(Method),
    /// A configured header name or value is not valid HTTP.
    #[error("invalid header {0:?}")]
    InvalidHeader(String),
    /// Bearer token or Basic credentials cannot be sent as a header.
    #[error("invalid credentials: {0}")]
    InvalidAuth(String),
    /// `success_status` is empty or holds a number that is no status code.
    #[error("invalid success status list: {0}")]
    InvalidSuccessStatus(String),
    /// The timeout is zero.
    #[error("timeout must be greater than zero")]
    ZeroTimeout,
    /// The client certificate or key PEM could not be used.
    #[error("invalid client certificate or key: {0}")]
    InvalidClientCert(String),
    /// The CA certificate PEM could not be used.
    #[error("invalid CA certificate: {0}")]
    InvalidCaCert(String),
    /// The HTTP client could not be built.
    #[error("cannot build HTTP client: {0}")]
    Client(String),
}

/// Delivers documents to one HTTP(S) endpoint; see the module docs.
pub struct HttpConnector {
    client: reqwest::Client,
    url: Url,
    method: Method,
    headers: HeaderMap,
    success_status: Vec<StatusCode>,
    timeout: Duration,
    send_attachments: bool,
    /// The client certificate chain (for its expiry in health checks).
    client_cert: Option<Vec<u8>>,
}

impl fmt::Debug for HttpConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConnector")
            .field("url", &self.url.as_str())
            .field("method", &self.method)
            .field("success_status", &self.success_status)
            .field("timeout", &self.timeout)
            .field("send_attachments", &self.send_attachments)
            .finish_non_exhaustive()
    }
}

impl HttpConnector {
    /// Validate the settings and build the HTTP client (with TLS material).
    pub fn new(settings: HttpConnectorSettings) -> Result<Self, HttpConnectorError> {
        let url = Url::parse(&settings.url).map_err(|e| HttpConnectorError::InvalidUrl {
            url: settings.url.clone(),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpConnectorError::InvalidUrl {
                url: settings.url.clone(),
                reason: "scheme must be http or https".into(),
            });
        }
        if settings.method != Method::POST && settings.method != Method::PUT {
            return Err(HttpConnectorError::UnsupportedMethod(settings.method));
        }
        if settings.timeout.is_zero() {
            return Err(HttpConnectorError::ZeroTimeout);
        }
        if settings.success_status.is_empty() {
            return Err(HttpConnectorError::InvalidSuccessStatus(
                "no status code given".into(),
            ));
        }
        let success_status = settings
            .success_status
            .iter()
            .map(|&code| {
                StatusCode::from_u16(code)
                    .ok()
                    .filter(|s| (200..600).contains(&s.as_u16()))
                    .ok_or_else(|| {
                        HttpConnectorError::InvalidSuccessStatus(format!(
                            "{code} is not a final status code"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut headers = HeaderMap::new();
        for (name, value) in &settings.headers {
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpConnectorError::InvalidHeader(name.clone()))?;
            let header_value = HeaderValue::from_str(value)
                .map_err(|_| HttpConnectorError::InvalidHeader(name.clone()))?;
            headers.append(header_name, header_value);
        }
        if let Some(auth) = &settings.auth {
            let mut value = auth_header(auth)?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }

        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &settings.ca_cert_pem {
            let certs = reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| HttpConnectorError::InvalidCaCert(e.to_string()))?;
            if certs.is_empty() {
                return Err(HttpConnectorError::InvalidCaCert(
                    "no certificate in PEM".into(),
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some((chain, key)) = &settings.client_cert_pem {
            let mut pem = Vec::with_capacity(chain.len() + key.len() + 1);
            pem.extend_from_slice(chain);
            pem.push(b'\n');
            pem.extend_from_slice(key);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| HttpConnectorError::InvalidClientCert(error_chain(&e)))?;
            builder = builder.identity(identity);
        }
        let client = builder
            .build()
            .map_err(|e| HttpConnectorError::Client(error_chain(&e)))?;

        Ok(Self {
            client,
            url,
            method: settings.method,
            headers,
            success_status,
            timeout: settings.timeout,
            send_attachments: settings.send_attachments,
            client_cert: settings.client_cert_pem.as_ref().map(|(c, _)| c.clone()),
        })
    }

    /// The endpoint URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    fn request_headers(&self, request: &DeliveryRequest) -> HeaderMap {
        let mut headers = self.headers.clone();
        let envelope = &request.envelope;
        let ours = [
            ("x-drehscheibe-message-id", Some(envelope.id.to_string())),
            ("x-drehscheibe-target", Some(request.target.clone())),
            ("idempotency-key", Some(request.idempotency_key())),
            ("x-drehscheibe-attempt", Some(request.attempt.to_string())),
            ("x-drehscheibe-leistung", envelope.leistung.clone()),
            ("x-drehscheibe-tenant", envelope.tenant.clone()),
        ];
        for (name, value) in ours {
            let Some(value) = value else { continue };
            match HeaderValue::from_str(&value) {
                Ok(value) => {
                    headers.insert(HeaderName::from_static(name), value);
                }
                Err(_) => {
                    headers.remove(name);
                    tracing::warn!(
                        header = name,
                        message = %envelope.id,
                        "value cannot be sent as an HTTP header; header left out"
                    );
                }
            }
        }
        headers
    }

    async fn multipart_body(
        &self,
        request: &DeliveryRequest,
    ) -> Result<reqwest::multipart::Form, DeliveryError> {
        use reqwest::multipart::{Form, Part};

        let document = Part::stream_with_length(
            reqwest::Body::from(request.document.clone()),
            request.document.len() as u64,
        )
        .file_name(request.filename.clone())
        .mime_str(&request.content_type)
        .map_err(|_| {
            DeliveryError::permanent(format!(
                "content type {:?} cannot be sent",
                request.content_type
            ))
        })?;
        let mut form = Form::new().part("document", document);
        for attachment in &request.envelope.attachments {
            let reader = request
                .blobs
                .open(&attachment.blob)
                .await
                .map_err(|e| blob_error(&attachment.name, e))?;
            let body = reqwest::Body::wrap_stream(ReaderStream::new(reader));
            let content_type = if Part::bytes(Vec::new())
                .mime_str(&attachment.content_type)
                .is_ok()
            {
                attachment.content_type.as_str()
            } else {
                tracing::warn!(
                    attachment = %attachment.name,
                    content_type = %attachment.content_type,
                    "invalid attachment content type; sent as application/octet-stream"
                );
                "application/octet-stream"
            };
            let mut part = Part::stream_with_length(body, attachment.blob.size)
                .mime_str(content_type)
                .map_err(|e| DeliveryError::permanent(format!("attachment part: {e}")))?;
            if let Some(filename) = &attachment.filename {
                part = part.file_name(filename.clone());
            }
            form = form.part(attachment.name.clone(), part);
        }
        Ok(form)
    }
}

#[async_trait]
impl Connector for HttpConnector {
    fn kind(&self) -> &'static str {
        "http"
    }

    /// `HEAD` on the endpoint: any answer proves it is there (a 405 too);
    /// a refused, failed or timed-out connection does not.
    async fn healthcheck(&self) -> drehscheibe_model::Health {
        let health = match self
            .client
            .head(self.url.clone())
            .timeout(self.timeout.min(Duration::from_secs(10)))
            .send()
            .await
        {
            Ok(r) => drehscheibe_model::Health::up(format!("HEAD {}: {}", self.url, r.status())),
            Err(e) => {
                drehscheibe_model::Health::down(format!("HEAD {}: {}", self.url, error_chain(&e)))
            }
        };
        health.with_cert(self.client_cert.as_deref())
    }

    async fn deliver(&self, request: DeliveryRequest) -> Result<DeliveryReceipt, DeliveryError> {
        let headers = self.request_headers(&request);
        let builder = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(headers);
        let builder = if self.send_attachments && !request.envelope.attachments.is_empty() {
            builder.multipart(self.multipart_body(&request).await?)
        } else {
            let content_type = HeaderValue::from_str(&request.content_type).map_err(|_| {
                DeliveryError::permanent(format!(
                    "content type {:?} cannot be sent",
                    request.content_type
                ))
            })?;
            builder
                .header(CONTENT_TYPE, content_type)
                .body(request.document.clone())
        };

        let mut response = builder.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let snippet = read_snippet(&mut response).await;
        let mut summary = status_line(status);
        if !snippet.is_empty() {
            summary = format!("{summary}: {snippet}");
        }

        if self.success_status.contains(&status) {
            return Ok(DeliveryReceipt { detail: summary });
        }
        let code = status.as_u16();
        if status.is_server_error() || code == 408 || code == 429 {
            if let Some(retry_after) = retry_after {
                summary = format!("{summary} (Retry-After: {retry_after})");
            }
            Err(DeliveryError::retryable(summary))
        } else if status.is_redirection() {
            let to = location.unwrap_or_else(|| "no Location".into());
            Err(DeliveryError::permanent(format!(
                "{summary} (redirect to {to} not followed)"
            )))
        } else {
            Err(DeliveryError::permanent(summary))
        }
    }
}

impl HttpConnector {
    fn transport_error(&self, e: &reqwest::Error) -> DeliveryError {
        let target = format!("{} {}", self.method, self.url);
        if e.is_timeout() {
            DeliveryError::retryable(format!("{target}: timed out after {:?}", self.timeout))
        } else if e.is_builder() {
            DeliveryError::permanent(error_chain(e))
        } else if e.is_connect() {
            DeliveryError::retryable(format!("connect failed: {}", error_chain(e)))
        } else {
            DeliveryError::retryable(error_chain(e))
        }
    }
}

fn auth_header(auth: &HttpAuth) -> Result<HeaderValue, HttpConnectorError> {
    let value = match auth {
        HttpAuth::Bearer(token) => format!("Bearer {token}"),
        HttpAuth::Basic { username, password } => {
            if username.contains(':') {
                return Err(HttpConnectorError::InvalidAuth(
                    "a Basic user name must not contain ':'".into(),
                ));
            }
            format!(
                "Basic {}",
                base64(format!("{username}:{password}").as_bytes())
            )
        }
    };
    HeaderValue::from_str(&value)
        .map_err(|_| HttpConnectorError::InvalidAuth("not a valid header value".into()))
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |n: u32, shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b0 = u32::from(chunk.first().copied().unwrap_or(0));
        let b1 = u32::from(chunk.get(1).copied().unwrap_or(0));
        let b2 = u32::from(chunk.get(2).copied().unwrap_or(0));
        let n = (b0 << 16) | (b1 << 8) | b2;
        out.push(sextet(n, 18));
        out.push(sextet(n, 12));
        out.push(if chunk.len() > 1 { sextet(n, 6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(n, 0) } else { '=' });
    }
    out
}

fn blob_error(name: &str, e: BlobError) -> DeliveryError {
    let reason = format!("attachment {name:?}: {e}");
    match e {
        BlobError::Io(_) => DeliveryError::retryable(reason),
        BlobError::NotFound(_) | BlobError::Corrupt { .. } | BlobError::TooLarge { .. } => {
            DeliveryError::permanent(reason)
        }
    }
}

fn status_line(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    }
}

/// Up to [`SNIPPET_CHARS`] characters of the response body, whitespace
/// collapsed; empty when there is no body or it cannot be read.
async fn read_snippet(response: &mut reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < SNIPPET_READ_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    snippet(&buf)
}

fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut count = 0;
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count >= SNIPPET_CHARS {
                return out;
            }
            out.push(c);
            count += 1;
        }
    }
    out
}

/// An error with its sources, `outer: inner: innermost`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn snippet_is_short_and_single_line() {
        assert_eq!(snippet(b"  {\"id\":\n\t\"x\"}  "), "{\"id\": \"x\"}");
        let long = "ä".repeat(500);
        assert_eq!(snippet(long.as_bytes()).chars().count(), SNIPPET_CHARS);
        assert_eq!(snippet(b""), "");
    }

    #[test]
    fn debug_redacts_secrets() {
        let auth = HttpAuth::Basic {
            username: "fv".into(),
            password: "geheim".into(),
        };
        let text = format!("{auth:?} {:?}", HttpAuth::Bearer("tok-123".into()));
        assert!(text.contains("fv"));
        assert!(!text.contains("geheim"));
        assert!(!text.contains("tok-123"));
        let settings = HttpConnectorSettings {
            url: "https://fv.example/in".into(),
            method: Method::POST,
            headers: vec![("X-Api-Key".into(), "key-456".into())],
            auth: Some(HttpAuth::Bearer("tok-123".into())),
            success_status: vec![200],
            client_cert_pem: Some((b"CERT".to_vec(), b"PRIVATE-789".to_vec())),
            ca_cert_pem: None,
            timeout: Duration::from_secs(1),
            send_attachments: true,
        };
        let text = format!("{settings:?}");
        assert!(text.contains("X-Api-Key"));
        for secret in ["tok-123", "key-456", "PRIVATE-789"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
}
