//! The e-mail connector: delivers a routed message as a MIME mail to a
//! Kommune that has no Fachverfahren interface.
//!
//! # Design
//!
//! [`SmtpConnector`] is built once per configured endpoint. [`SmtpConnector::new`]
//! validates everything that can be checked without a network: host, the
//! `from` and `to` addresses, the subject template, credentials, the TLS
//! mode and the extra CA certificate. A misconfigured connector therefore
//! fails at start-up, not at the first delivery.
//!
//! Each [`Connector::deliver`] call
//!
//! 1. checks the **declared** size of the document plus all attachments
//!    (`envelope.attachments[].blob.size`) against
//!    [`SmtpSettings::max_total_bytes`] *before* opening a single blob; an
//!    oversize mail is a permanent error and nothing is read or sent;
//! 2. reads the attachments from [`DeliveryRequest::blobs`] (each read is
//!    capped at its declared size, a blob of a different size is refused);
//! 3. composes a `multipart/mixed` mail: a short `text/plain` summary
//!    (message id, Leistung, Kommune, tenant, received at, channel, SHA-256
//!    of the document, list of attachments), then the document as an
//!    attachment named [`DeliveryRequest::filename`] with
//!    [`DeliveryRequest::content_type`], then one attachment per envelope
//!    attachment. Every attachment is base64-encoded, so the bytes arrive
//!    unchanged (no line-ending normalisation) and the mail is pure ASCII;
//! 4. sends it in one SMTP session (a fresh connection per delivery; the
//!    engine bounds concurrency per endpoint) bounded as a whole by
//!    [`SmtpSettings::timeout`].
//!
//! The mail carries `Message-ID: <…@domain-of-from>`, where the local part
//! is [`DeliveryRequest::idempotency_key`] (characters outside
//! `[A-Za-z0-9/_-]` written as `=XX`). A retried attempt of the same
//! generation therefore carries the same `Message-ID`, so a recipient (or
//! its mail system) can recognise a duplicate when an earlier attempt did
//! arrive but its `250` reply was lost. It also carries
//! `X-Drehscheibe-Message-Id` and `X-Drehscheibe-Target` (and
//! `X-Drehscheibe-Leistung` / `X-Drehscheibe-Tenant` when known).
//!
//! Because SMTP needs the whole message as one byte string, a mail is held
//! in memory while it is sent; [`SmtpSettings::max_total_bytes`] bounds it
//! (expect roughly three times that limit at peak, for the raw, base64 and
//! dot-stuffed copies).
//!
//! # Errors
//!
//! Connection failures, timeouts, TLS failures and `4xx` replies are
//! retryable. `5xx` replies (including a refused login), an oversize mail, a
//! missing or corrupt attachment blob, and a server lacking a required
//! feature (e.g. STARTTLS) are permanent. Reasons name the server and quote
//! its reply, for the operator.
//!
//! # Security
//!
//! TLS is rustls only (with the built-in web PKI roots plus the optional
//! [`SmtpSettings::ca_cert_pem`]). [`SmtpTls::Starttls`] *requires* the
//! upgrade: a server that does not offer STARTTLS is refused, never used in
//! plain text. [`SmtpTls::None`] is accepted only for `localhost` and
//! loopback addresses. The password is never logged, never part of an error
//! and redacted from `Debug` output (lettre's own `tracing` feature, which
//! would log the `AUTH` exchange, must stay off).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use drehscheibe_model::{Connector, DeliveryError, DeliveryReceipt, DeliveryRequest};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub mod config;
mod mail;

/// Longest SMTP reply text kept in receipts and error reasons, in characters.
pub const REPLY_CHARS: usize = 300;

/// Transport security of the SMTP connection (`tls = "starttls" | "tls" |
/// "none"` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS; the upgrade is required.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption at all: only for `localhost` and loopback addresses.
    None,
}

/// Settings of one SMTP connector, filled from the configuration.
#[derive(Clone)]
pub struct SmtpSettings {
    /// Mail server host name or IP address (an IPv6 address may be written
    /// in brackets).
    pub host: String,
    /// Server port (587 for STARTTLS, 465 for TLS, 25 …).
    pub port: u16,
    /// Transport security.
    pub tls: SmtpTls,
    /// Login user; given together with [`Self::password`] or not at all.
    pub username: Option<String>,
    /// Login password.
    pub password: Option<String>,
    /// Sender address (`a@b` or `Name <a@b>`), also the envelope sender.
    pub from: String,
    /// Recipient addresses (at least one).
    pub to: Vec<String>,
    /// Subject template: `{leistung}`, `{id}`, `{target}`, `{tenant}` and
    /// `{kommune}` are replaced; other text is kept as written.
    pub subject_template: String,
    /// Largest total of document plus attachments, in bytes; a larger
    /// delivery fails permanently without anything being sent.
    pub max_total_bytes: u64,
    /// Bound on one whole SMTP session (connect, TLS, login, transfer).
    pub timeout: Duration,
    /// Extra trusted root certificate(s) (PEM) for STARTTLS/TLS, added to
    /// the built-in web PKI roots, e.g. a Kommune's internal CA.
    pub ca_cert_pem: Option<Vec<u8>>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("to", &self.to)
            .field("subject_template", &self.subject_template)
            .field("max_total_bytes", &self.max_total_bytes)
            .field("timeout", &self.timeout)
            .field("ca_cert_pem", &self.ca_cert_pem.as_ref().map(Vec::len))
            .finish()
    }
}

/// Why an [`SmtpConnector`] cannot be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// Empty host or one containing white space.
    #[error("invalid SMTP host {0:?}")]
    InvalidHost(String),
    /// Port 0.
    #[error("SMTP port must not be 0")]
    InvalidPort,
    /// An address that is not a valid mailbox.
    #[error("invalid `{field}` address {address:?}: {reason}")]
    InvalidAddress {
        /// `from` or `to`.
        field: &'static str,
        /// The address as configured.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `to` is empty.
    #[error("an SMTP connector needs at least one recipient in `to`")]
    NoRecipients,
    /// [`SmtpTls::None`] for a host that is not loopback.
    #[error(
        "unencrypted SMTP is only allowed to localhost or loopback addresses, not {0:?}; use STARTTLS or TLS"
    )]
    PlaintextNotLoopback(String),
    /// Only one of user name and password given.
    #[error("SMTP user name and password must be given together")]
    IncompleteCredentials,
    /// Subject template with a line break or other control character.
    #[error("the subject template must be a single line without control characters")]
    InvalidSubject,
    /// `max_total_bytes` is 0.
    #[error("max_total_bytes must be greater than 0")]
    ZeroLimit,
    /// `timeout` is 0.
    #[error("the SMTP timeout must be greater than 0")]
    ZeroTimeout,
    /// The extra CA certificate cannot be used.
    #[error("CA certificate: {0}")]
    InvalidCaCert(String),
    /// The TLS client could not be set up.
    #[error("TLS setup for {host}: {reason}")]
    Tls {
        /// Server host.
        host: String,
        /// What failed.
        reason: String,
    },
}

/// Delivers documents as e-mails over SMTP; see the [crate docs](crate).
pub struct SmtpConnector {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// `host:port`, for messages.
    endpoint: String,
    tls: SmtpTls,
    username: Option<String>,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject_template: String,
    max_total_bytes: u64,
    timeout: Duration,
    message_id_domain: String,
}

impl fmt::Debug for SmtpConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConnector")
            .field("endpoint", &self.endpoint)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("from", &self.from.to_string())
            .field(
                "to",
                &self.to.iter().map(Mailbox::to_string).collect::<Vec<_>>(),
            )
            .field("max_total_bytes", &self.max_total_bytes)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmtpConnector {
    /// Validate the settings and build the connector. No connection is made
    /// here.
    pub fn new(settings: SmtpSettings) -> Result<Self, SmtpError> {
        let host = settings.host.trim();
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(SmtpError::InvalidHost(settings.host.clone()));
        }
        // `[::1]` → `::1`: the socket layer wants the bare address.
        let server = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_owned();
        if settings.port == 0 {
            return Err(SmtpError::InvalidPort);
        }
        if settings.tls == SmtpTls::None && !is_loopback_host(&server) {
            return Err(SmtpError::PlaintextNotLoopback(settings.host.clone()));
        }
        let from = parse_mailbox("from", &settings.from)?;
        if settings.to.is_empty() {
            return Err(SmtpError::NoRecipients);
        }
        let to = settings
            .to
            .iter()
            .map(|a| parse_mailbox("to", a))
            .collect::<Result<Vec<_>, _>>()?;
        if settings.subject_template.chars().any(char::is_control) {
            return Err(SmtpError::InvalidSubject);
        }
        if settings.max_total_bytes == 0 {
            return Err(SmtpError::ZeroLimit);
        }
        if settings.timeout.is_zero() {
            return Err(SmtpError::ZeroTimeout);
        }
        let credentials = match (&settings.username, &settings.password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.clone())),
            (None, None) => None,
            _ => return Err(SmtpError::IncompleteCredentials),
        };

        let tls = match settings.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => {
                Tls::Required(tls_parameters(&server, settings.ca_cert_pem.as_deref())?)
            }
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(&server, settings.ca_cert_pem.as_deref())?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.clone())
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout));
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }

        let message_id_domain = mail::message_id_domain(from.email.domain());
        Ok(Self {
            transport: builder.build(),
            endpoint: if server.contains(':') {
                format!("[{server}]:{}", settings.port)
            } else {
                format!("{server}:{}", settings.port)
            },
            tls: settings.tls,
            username: settings.username,
            from,
            to,
            subject_template: settings.subject_template,
            max_total_bytes: settings.max_total_bytes,
            timeout: settings.timeout,
            message_id_domain,
        })
    }

    /// Turn a failed SMTP session into a delivery error with a reason for
    /// the operator.
    fn smtp_error(&self, e: &lettre::transport::smtp::Error) -> DeliveryError {
        let endpoint = &self.endpoint;
        let reply = std::error::Error::source(e)
            .map(|s| truncate(&one_line(&s.to_string()), REPLY_CHARS))
            .unwrap_or_default();
        if let Some(code) = e.status() {
            let code = u16::from(code);
            if e.is_permanent() {
                return DeliveryError::permanent(format!(
                    "SMTP server {endpoint} answered {code} {reply} (permanent failure)"
                ));
            }
            return DeliveryError::retryable(format!(
                "SMTP server {endpoint} answered {code} {reply} (temporary failure)"
            ));
        }
        let text = truncate(&one_line(&e.to_string()), REPLY_CHARS);
        let io_error = error_sources(e).find_map(|s| s.downcast_ref::<std::io::Error>());
        if e.is_timeout() {
            DeliveryError::retryable(format!("SMTP server {endpoint} timed out: {text}"))
        } else if e.is_tls() {
            DeliveryError::retryable(format!("TLS with SMTP server {endpoint} failed: {text}"))
        } else if e.is_client() {
            // The server lacks something this connector requires (STARTTLS,
            // a login mechanism): retrying does not help, the configuration
            // of one side must change.
            let why = if reply.is_empty() { &text } else { &reply };
            DeliveryError::permanent(format!(
                "SMTP server {endpoint} cannot be used as configured: {why}"
            ))
        } else if let Some(io) = io_error.filter(|io| {
            // rustls reports handshake and certificate failures as
            // `InvalidData` I/O errors.
            self.tls != SmtpTls::None && io.kind() == std::io::ErrorKind::InvalidData
        }) {
            DeliveryError::retryable(format!(
                "TLS with SMTP server {endpoint} failed: {}",
                truncate(&one_line(&io.to_string()), REPLY_CHARS)
            ))
        } else if let Some(io) = io_error {
            DeliveryError::retryable(format!(
                "connection to SMTP server {endpoint} failed: {}",
                truncate(&one_line(&io.to_string()), REPLY_CHARS)
            ))
        } else {
            DeliveryError::retryable(format!("SMTP server {endpoint}: {text}"))
        }
    }
}

#[async_trait]
impl Connector for SmtpConnector {
    fn kind(&self) -> &'static str {
        "smtp"
    }

    /// Connect (with STARTTLS/TLS as configured) and send `NOOP`.
    async fn healthcheck(&self) -> drehscheibe_model::Health {
        match self.transport.test_connection().await {
            Ok(true) => {
                drehscheibe_model::Health::up(format!("SMTP {}: NOOP answered", self.endpoint))
            }
            Ok(false) => drehscheibe_model::Health::down(format!(
                "SMTP {}: the server did not answer NOOP",
                self.endpoint
            )),
            Err(e) => drehscheibe_model::Health::down(format!("SMTP {}: {e}", self.endpoint)),
        }
    }

    async fn deliver(&self, request: DeliveryRequest) -> Result<DeliveryReceipt, DeliveryError> {
        let total = mail::declared_total(&request);
        if total > self.max_total_bytes {
            return Err(DeliveryError::permanent(format!(
                "mail too large: document and {} attachment(s) are {total} bytes, the limit of this SMTP connector is {} bytes",
                request.envelope.attachments.len(),
                self.max_total_bytes
            )));
        }
        let attachments = mail::read_attachments(&request).await?;
        let layout = mail::Layout {
            from: &self.from,
            to: &self.to,
            subject_template: &self.subject_template,
            message_id_domain: &self.message_id_domain,
        };
        let message = mail::compose(&layout, &request, attachments)?;
        let envelope = message.envelope().clone();
        let raw = message.formatted();
        drop(message);

        let sent =
            tokio::time::timeout(self.timeout, self.transport.send_raw(&envelope, &raw)).await;
        let response = match sent {
            Err(_) => {
                tracing::debug!(message = %request.envelope.id, endpoint = %self.endpoint, "SMTP session timed out");
                return Err(DeliveryError::retryable(format!(
                    "SMTP server {} did not complete the session within {:?}",
                    self.endpoint, self.timeout
                )));
            }
            Ok(Err(e)) => {
                let error = self.smtp_error(&e);
                tracing::debug!(message = %request.envelope.id, endpoint = %self.endpoint, retryable = error.retryable, reason = %error.reason, "SMTP delivery failed");
                return Err(error);
            }
            Ok(Ok(response)) => response,
        };
        let reply = truncate(
            &one_line(&response.message().collect::<Vec<_>>().join(" ")),
            REPLY_CHARS,
        );
        let recipients = self
            .to
            .iter()
            .map(|m| m.email.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let code = u16::from(response.code());
        let detail = if reply.is_empty() {
            format!("SMTP {code} to {recipients}")
        } else {
            format!("SMTP {code} {reply} to {recipients}")
        };
        tracing::debug!(message = %request.envelope.id, endpoint = %self.endpoint, %detail, "mail delivered");
        Ok(DeliveryReceipt { detail })
    }
}

/// `e`'s sources, nearest first.
fn error_sources<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(e.source(), |s| s.source())
}

fn parse_mailbox(field: &'static str, address: &str) -> Result<Mailbox, SmtpError> {
    address
        .trim()
        .parse::<Mailbox>()
        .map_err(|e| SmtpError::InvalidAddress {
            field,
            address: address.to_owned(),
            reason: e.to_string(),
        })
}

fn tls_parameters(server: &str, ca_cert_pem: Option<&[u8]>) -> Result<TlsParameters, SmtpError> {
    let mut builder = TlsParameters::builder(server.to_owned());
    if let Some(pem) = ca_cert_pem {
        let text = std::str::from_utf8(pem)
            .map_err(|_| SmtpError::InvalidCaCert("not a PEM text file".into()))?;
        if !text.contains("-----BEGIN CERTIFICATE-----") {
            return Err(SmtpError::InvalidCaCert(
                "no `BEGIN CERTIFICATE` block found".into(),
            ));
        }
        let cert =
            Certificate::from_pem(pem).map_err(|e| SmtpError::InvalidCaCert(e.to_string()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build_rustls().map_err(|e| SmtpError::Tls {
        host: server.to_owned(),
        reason: e.to_string(),
    })
}

/// `localhost` or a loopback IP address.
fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Control characters (line breaks, tabs …) replaced by spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SmtpSettings {
        SmtpSettings {
            host: "mail.example.org".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: Some("hub".into()),
            password: Some("s3cret-pass".into()),
            from: "Drehscheibe <hub@example.org>".into(),
            to: vec!["poststelle@kommune.example".into()],
            subject_template: "Drehscheibe: {leistung} {id}".into(),
            max_total_bytes: 1 << 20,
            timeout: Duration::from_secs(10),
            ca_cert_pem: None,
        }
    }

    #[test]
    fn valid_settings_build() {
        let c = SmtpConnector::new(settings()).unwrap();
        assert_eq!(c.kind(), "smtp");
        assert_eq!(c.endpoint, "mail.example.org:587");
        assert_eq!(c.message_id_domain, "example.org");
    }

    #[test]
    fn password_is_redacted_from_debug() {
        let s = settings();
        assert!(!format!("{s:?}").contains("s3cret-pass"));
        let c = SmtpConnector::new(s).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret-pass"), "{debug}");
        assert!(debug.contains("mail.example.org:587"), "{debug}");
    }

    #[test]
    fn invalid_settings_are_refused_with_clear_errors() {
        let check = |f: &dyn Fn(&mut SmtpSettings), expect: &str| {
            let mut s = settings();
            f(&mut s);
            let e = SmtpConnector::new(s).unwrap_err().to_string();
            assert!(e.contains(expect), "{e:?} should contain {expect:?}");
        };
        check(
            &|s| s.from = "not an address".into(),
            "invalid `from` address",
        );
        check(
            &|s| s.to.push("a@@b".into()),
            "invalid `to` address \"a@@b\"",
        );
        check(&|s| s.to.clear(), "at least one recipient");
        check(&|s| s.tls = SmtpTls::None, "only allowed to localhost");
        check(&|s| s.password = None, "must be given together");
        check(
            &|s| s.subject_template = "a\r\nBcc: x@y".into(),
            "single line",
        );
        check(&|s| s.host = "".into(), "invalid SMTP host");
        check(&|s| s.port = 0, "port");
        check(&|s| s.max_total_bytes = 0, "max_total_bytes");
        check(&|s| s.timeout = Duration::ZERO, "timeout");
        check(
            &|s| s.ca_cert_pem = Some(b"garbage".to_vec()),
            "CA certificate",
        );
    }

    #[test]
    fn plaintext_is_allowed_to_loopback_only() {
        for (host, endpoint) in [
            ("localhost", "localhost:587"),
            ("127.0.0.1", "127.0.0.1:587"),
            ("[::1]", "[::1]:587"),
            ("::1", "[::1]:587"),
            ("LOCALHOST", "LOCALHOST:587"),
        ] {
            let mut s = settings();
            s.host = host.into();
            s.tls = SmtpTls::None;
            assert_eq!(SmtpConnector::new(s).unwrap().endpoint, endpoint);
        }
        for host in ["10.0.0.1", "localhost.example.org", "[2001:db8::1]"] {
            let mut s = settings();
            s.host = host.into();
            s.tls = SmtpTls::None;
            assert!(matches!(
                SmtpConnector::new(s),
                Err(SmtpError::PlaintextNotLoopback(_))
            ));
        }
    }

    #[test]
    fn truncation_and_one_line() {
        assert_eq!(one_line(" a\r\nb\t"), "a  b");
        assert_eq!(truncate("äöü", 2), "äö…");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
