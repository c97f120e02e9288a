//! SOAP 1.2 client for a remote XTA 2 server (Version 3 WSDL):
//! reqwest + rustls, mutual TLS with the tenant's certificate,
//! WS-Addressing headers on every request, MTOM for `sendMessage` (parts
//! streamed from memory and the blob store) and for `getMessage` answers
//! (parts streamed into a [`PartSink`]).
//!
//! Every failure is a [`ClientError`] that knows whether another attempt
//! can help ([`ClientError::is_retryable`], table in [`FaultKind`]).

mod error;
pub mod mtom;

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use drehscheibe_model::BlobRef;

pub use error::{ClientError, Fault, FaultKind};
pub use mtom::{BinaryPart, BlobSink, PartSink, PartSource};

use crate::model::{
    esc, ContentDescription, MessageMetaData, PartyIdentifier, NS_OSCI, NS_OSCIMETA, NS_SOAP12,
    NS_WSA, NS_XOP, NS_XTA,
};
use crate::soap::{parse_xml, XmlElement};

/// WS-Addressing anonymous address.
pub const WSA_ANONYMOUS: &str = "http://www.w3.org/2005/08/addressing/anonymous";

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("drehscheibe-xta/", env!("CARGO_PKG_VERSION"));

/// SOAPActions / `wsa:Action` values of the operations the client uses.
pub mod action {
    /// `checkAccountActive`.
    pub const CHECK_ACCOUNT_ACTIVE: &str = "http://www.xta.de/XTA/CheckAccountActive";
    /// `createMessageId`.
    pub const CREATE_MESSAGE_ID: &str = "http://www.xta.de/XTA/CreateMessageID";
    /// `getTransportReport`.
    pub const GET_TRANSPORT_REPORT: &str = "http://www.xta.de/XTA/GetTransportReport";
    /// `sendMessage`.
    pub const SEND_MESSAGE: &str = "http://www.xta.de/XTA/SendMessage";
    /// `getStatusList`.
    pub const GET_STATUS_LIST: &str =
        "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/MsgBoxStatusListRequest";
    /// `getMessage`.
    pub const GET_MESSAGE: &str =
        "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/MsgBoxFetchRequest";
    /// `close`.
    pub const CLOSE: &str =
        "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/MsgBoxCloseRequest";
}

/// Addresses of the three ports (often one URL for all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XtaEndpoints {
    /// ManagementPort.
    pub management: String,
    /// SendXtaPort.
    pub send: String,
    /// MsgBoxPort.
    pub msgbox: String,
}

impl XtaEndpoints {
    /// All three ports at one address.
    pub fn single(url: impl Into<String>) -> Self {
        let url = url.into();
        Self {
            management: url.clone(),
            send: url.clone(),
            msgbox: url,
        }
    }
}

/// Settings of an [`XtaClient`].
#[derive(Clone)]
pub struct XtaClientSettings {
    /// Where the server's ports are.
    pub endpoints: XtaEndpoints,
    /// The account's identity, sent as the `oscimeta:Author` header.
    pub author: PartyIdentifier,
    /// Client certificate chain and private key (PEM) for mutual TLS.
    pub client_cert_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// Extra CA certificate(s) to trust (PEM).
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Optional bearer token (servers that bind accounts to tokens).
    pub bearer_token: Option<String>,
    /// Timeout of one whole request.
    pub timeout: Duration,
    /// Largest SOAP answer (or SOAP root part of an MTOM answer) read.
    pub max_answer_bytes: u64,
}

impl std::fmt::Debug for XtaClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XtaClientSettings")
            .field("endpoints", &self.endpoints)
            .field("author", &self.author)
            .field(
                "client_cert",
                &self.client_cert_pem.as_ref().map(|_| "<pem>"),
            )
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// One entry (`Error`, `Warning`, `Info`) of a transport report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRecord {
    /// `Timestamp`.
    pub timestamp: String,
    /// `Code/code`.
    pub code: String,
    /// `Reason`.
    pub reason: String,
}

/// The parts of a `TransportReport` the client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportReport {
    /// `MessageStatus/Status`: 0 open, 1 green, 2 yellow, 3 red.
    pub status: i64,
    /// `ReportTime`.
    pub report_time: String,
    /// `XTAServerIdentity`.
    pub server: String,
    /// `ErrorList/Error`.
    pub errors: Vec<ReportRecord>,
    /// `WarnList/Warning`.
    pub warnings: Vec<ReportRecord>,
    /// `InfoList/Info`.
    pub infos: Vec<ReportRecord>,
    /// The report's metadata, when readable.
    pub meta: Option<MessageMetaData>,
}

/// The answer of `getStatusList`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusList {
    /// `MsgBoxResponse/@MsgBoxRequestID` (needed for `close`).
    pub request_id: String,
    /// `ItemsPending`, when the server has more than it listed.
    pub items_pending: Option<u64>,
    /// `NoMessageAvailable/@reason`, when the box is empty.
    pub no_message_reason: Option<String>,
    /// Metadata of the listed messages.
    pub messages: Vec<MessageMetaData>,
}

/// One content item (`Message` or `Attachment`) of a fetched message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPart {
    /// The `xta:ContentType` attributes.
    pub description: ContentDescription,
    /// The stored content.
    pub blob: BlobRef,
}

/// The answer of `getMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedMessage {
    /// `MsgBoxResponse/@MsgBoxRequestID`, when sent.
    pub request_id: Option<String>,
    /// The `MessageMetaData` header.
    pub meta: MessageMetaData,
    /// `ContentContainer/Message`.
    pub message: FetchedPart,
    /// `ContentContainer/Attachment`s.
    pub attachments: Vec<FetchedPart>,
}

/// One content item to send: its `xta:ContentType` attributes and bytes.
#[derive(Debug, Clone)]
pub struct OutgoingPart {
    /// Attributes (`contentType` is also the MIME part's type; `size` is
    /// set from the content).
    pub description: ContentDescription,
    /// The content.
    pub source: PartSource,
}

/// A parsed SOAP answer.
struct Answer {
    header: Option<XmlElement>,
    body: XmlElement,
}

/// The XTA client; cheap to clone.
#[derive(Clone)]
pub struct XtaClient {
    http: reqwest::Client,
    settings: std::sync::Arc<XtaClientSettings>,
}

impl std::fmt::Debug for XtaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XtaClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl XtaClient {
    /// Build the client (certificates are parsed now).
    pub fn new(settings: XtaClientSettings) -> Result<Self, ClientError> {
        for (what, url) in [
            ("management", &settings.endpoints.management),
            ("send", &settings.endpoints.send),
            ("msgbox", &settings.endpoints.msgbox),
        ] {
            let ok = reqwest::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
            if ok.is_none() {
                return Err(ClientError::Config(format!(
                    "{what} endpoint {url:?} is not an http(s) URL"
                )));
            }
        }
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .timeout(settings.timeout);
        if let Some(pem) = &settings.ca_cert_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Config(format!("invalid CA certificate: {e}")))?;
            if certs.is_empty() {
                return Err(ClientError::Config("CA file holds no certificate".into()));
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let Some((chain, key)) = &settings.client_cert_pem {
            let mut pem = chain.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                ClientError::Config(format!("invalid client certificate or key: {e}"))
            })?;
            b = b.identity(identity);
        }
        let http = b
            .build()
            .map_err(|e| ClientError::Config(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            http,
            settings: std::sync::Arc::new(settings),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &XtaClientSettings {
        &self.settings
    }

    /// `checkAccountActive`: `Ok` when the account may use the server.
    pub async fn check_account_active(&self) -> Result<(), ClientError> {
        const OP: &str = "checkAccountActive";
        let env = self.envelope(
            action::CHECK_ACCOUNT_ACTIVE,
            &self.settings.endpoints.management,
            &self.author_header(),
            "",
        );
        self.call(
            OP,
            action::CHECK_ACCOUNT_ACTIVE,
            &self.settings.endpoints.management,
            env,
        )
        .await
        .map(|_| ())
    }

    /// `createMessageId`: a fresh message id from the server.
    pub async fn create_message_id(&self) -> Result<String, ClientError> {
        const OP: &str = "createMessageId";
        let url = &self.settings.endpoints.management;
        let env = self.envelope(action::CREATE_MESSAGE_ID, url, &self.author_header(), "");
        let a = self.call(OP, action::CREATE_MESSAGE_ID, url, env).await?;
        let id = a
            .body
            .child(NS_WSA, "MessageID")
            .map(|m| m.text().trim().to_string())
            .filter(|m| !m.is_empty())
            .ok_or_else(|| ClientError::invalid(OP, "no wsa:MessageID in the body"))?;
        Ok(id)
    }

    /// `sendMessage`: metadata in the header, message and attachments as
    /// MTOM parts (streamed).
    pub async fn send_message(
        &self,
        meta: &MessageMetaData,
        message: OutgoingPart,
        attachments: Vec<OutgoingPart>,
    ) -> Result<(), ClientError> {
        const OP: &str = "sendMessage";
        let url = &self.settings.endpoints.send;
        let run = uuid::Uuid::new_v4().simple().to_string();
        let mut parts = Vec::with_capacity(attachments.len() + 1);
        let mut container = String::from("<xta:GenericContentContainer><xta:ContentContainer>");
        for (i, (elem, p)) in std::iter::once(("Message", message))
            .chain(attachments.into_iter().map(|a| ("Attachment", a)))
            .enumerate()
        {
            let cid = format!("part{i}.{run}@drehscheibe");
            let mut d = p.description;
            d.size = Some(p.source.len()).filter(|n| *n > 0);
            container.push_str(&format!("<xta:{elem}"));
            d.write_attrs(&mut container);
            container.push_str(&format!(
                "><xop:Include xmlns:xop=\"{NS_XOP}\" href=\"cid:{cid}\"/></xta:{elem}>"
            ));
            parts.push(BinaryPart {
                cid,
                content_type: d.content_type,
                source: p.source,
            });
        }
        container.push_str("</xta:ContentContainer></xta:GenericContentContainer>");
        let env = self.envelope(action::SEND_MESSAGE, url, &meta.to_xml(), &container);
        let boundary = format!("MIMEBoundary_{run}");
        let (body, len) = mtom::body(env, parts, &boundary);
        let req = self
            .request(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                mtom::content_type(&boundary, action::SEND_MESSAGE),
            )
            .header(reqwest::header::CONTENT_LENGTH, len)
            .header("SOAPAction", format!("\"{}\"", action::SEND_MESSAGE))
            .body(body);
        let resp = req.send().await.map_err(|e| ClientError::network(OP, &e))?;
        self.answer(OP, resp, None).await.map(|_| ())
    }

    /// `getTransportReport` for a message this account sent.
    pub async fn get_transport_report(
        &self,
        message_id: &str,
    ) -> Result<TransportReport, ClientError> {
        const OP: &str = "getTransportReport";
        let url = &self.settings.endpoints.management;
        let body = format!("<wsa:MessageID>{}</wsa:MessageID>", esc(message_id));
        let env = self.envelope(
            action::GET_TRANSPORT_REPORT,
            url,
            &self.author_header(),
            &body,
        );
        let a = self
            .call(OP, action::GET_TRANSPORT_REPORT, url, env)
            .await?;
        let report = a
            .body
            .child(NS_XTA, "TransportReport")
            .ok_or_else(|| ClientError::invalid(OP, "no xta:TransportReport in the body"))?;
        let status_el = report
            .child(NS_XTA, "MessageStatus")
            .ok_or_else(|| ClientError::invalid(OP, "TransportReport without MessageStatus"))?;
        let status = status_el
            .child(NS_XTA, "Status")
            .and_then(|s| s.text().trim().parse::<i64>().ok())
            .ok_or_else(|| ClientError::invalid(OP, "MessageStatus without a numeric Status"))?;
        let records = |list: &str, item: &str| -> Vec<ReportRecord> {
            status_el
                .child(NS_XTA, list)
                .map(|l| {
                    l.children_named(NS_XTA, item)
                        .map(|r| ReportRecord {
                            timestamp: text(r, NS_XTA, "Timestamp"),
                            code: r
                                .child(NS_XTA, "Code")
                                .and_then(|c| c.child_local("code"))
                                .map(|c| c.text().trim().to_string())
                                .unwrap_or_default(),
                            reason: text(r, NS_XTA, "Reason"),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(TransportReport {
            status,
            report_time: text(report, NS_XTA, "ReportTime"),
            server: text(report, NS_XTA, "XTAServerIdentity"),
            errors: records("ErrorList", "Error"),
            warnings: records("WarnList", "Warning"),
            infos: records("InfoList", "Info"),
            meta: report
                .child(NS_OSCIMETA, "MessageMetaData")
                .and_then(|m| MessageMetaData::from_element(m).ok()),
        })
    }

    /// `getStatusList` with `ListForm="MessageMetaData"`.
    pub async fn get_status_list(&self, max_items: u32) -> Result<StatusList, ClientError> {
        const OP: &str = "getStatusList";
        let url = &self.settings.endpoints.msgbox;
        let body = format!(
            "<osci:MsgBoxStatusListRequest maxListItems=\"{}\" ListForm=\"MessageMetaData\"/>",
            max_items.max(1)
        );
        let env = self.envelope(action::GET_STATUS_LIST, url, &self.author_header(), &body);
        let a = self.call(OP, action::GET_STATUS_LIST, url, env).await?;
        let (request_id, items_pending, no_message_reason) = msgbox_response(OP, &a, true)?;
        let list = a
            .body
            .child(NS_OSCI, "MsgStatusList")
            .ok_or_else(|| ClientError::invalid(OP, "no osci:MsgStatusList in the body"))?;
        let messages = list
            .children_named(NS_OSCIMETA, "MessageMetaData")
            .map(MessageMetaData::from_element)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientError::invalid(OP, e.to_string()))?;
        Ok(StatusList {
            request_id: request_id.unwrap_or_default(),
            items_pending,
            no_message_reason,
            messages,
        })
    }

    /// `getMessage` for one message id; the content is streamed into
    /// `sink` (MTOM parts) or decoded from inline base64.
    pub async fn get_message(
        &self,
        message_id: &str,
        sink: &dyn PartSink,
    ) -> Result<FetchedMessage, ClientError> {
        const OP: &str = "getMessage";
        let url = &self.settings.endpoints.msgbox;
        let body = format!(
            "<osci:MsgBoxFetchRequest><osci:MsgSelector><wsa:MessageID>{}</wsa:MessageID></osci:MsgSelector></osci:MsgBoxFetchRequest>",
            esc(message_id)
        );
        let env = self.envelope(action::GET_MESSAGE, url, &self.author_header(), &body);
        // Sent as MTOM (the WSDL's OptimizedMimeSerialization policy), so
        // that the server answers with MTOM parts, which are streamed,
        // instead of inline base64, which has to fit `max_answer_bytes`.
        let boundary = format!("MIMEBoundary_{}", uuid::Uuid::new_v4().simple());
        let (body, len) = mtom::body(env, Vec::new(), &boundary);
        let resp = self
            .request(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                mtom::content_type(&boundary, action::GET_MESSAGE),
            )
            .header(reqwest::header::CONTENT_LENGTH, len)
            .header("SOAPAction", format!("\"{}\"", action::GET_MESSAGE))
            .body(body)
            .send()
            .await
            .map_err(|e| ClientError::network(OP, &e))?;
        let (a, parts) = self.answer(OP, resp, Some(sink)).await?;
        let (request_id, _, _) = msgbox_response(OP, &a, false)?;
        let meta = a
            .header
            .as_ref()
            .and_then(|h| h.child(NS_OSCIMETA, "MessageMetaData"))
            .ok_or_else(|| ClientError::invalid(OP, "no MessageMetaData header"))
            .and_then(|m| {
                MessageMetaData::from_element(m)
                    .map_err(|e| ClientError::invalid(OP, e.to_string()))
            })?;
        let container = a
            .body
            .child(NS_XTA, "GenericContentContainer")
            .ok_or_else(|| ClientError::invalid(OP, "no xta:GenericContentContainer"))?
            .child(NS_XTA, "ContentContainer")
            .ok_or_else(|| {
                ClientError::invalid(OP, "only unencrypted ContentContainers are supported")
            })?;
        let msg_el = container
            .child(NS_XTA, "Message")
            .ok_or_else(|| ClientError::invalid(OP, "ContentContainer without Message"))?;
        let message = fetched_part(OP, msg_el, &parts, sink).await?;
        let mut attachments = Vec::new();
        for att in container.children_named(NS_XTA, "Attachment") {
            attachments.push(fetched_part(OP, att, &parts, sink).await?);
        }
        Ok(FetchedMessage {
            request_id,
            meta,
            message,
            attachments,
        })
    }

    /// `close`: confirm that `message_id` was received (it leaves the box).
    pub async fn close(&self, request_id: &str, message_id: &str) -> Result<(), ClientError> {
        const OP: &str = "close";
        let url = &self.settings.endpoints.msgbox;
        let rid = if request_id.is_empty() {
            // The attribute is required; a server that gave none gets a
            // well-formed placeholder.
            "urn:drehscheibe:msgbox:none".to_string()
        } else {
            request_id.to_string()
        };
        let body = format!(
            "<osci:MsgBoxCloseRequest MsgBoxRequestID=\"{}\"><osci:LastMsgReceived>{}</osci:LastMsgReceived></osci:MsgBoxCloseRequest>",
            esc(&rid),
            esc(message_id)
        );
        let env = self.envelope(action::CLOSE, url, &self.author_header(), &body);
        self.call(OP, action::CLOSE, url, env).await.map(|_| ())
    }

    // ---- plumbing ----

    fn author_header(&self) -> String {
        author_xml(&self.settings.author)
    }

    fn envelope(&self, action: &str, to: &str, extra_headers: &str, body: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
<soap:Envelope xmlns:soap=\"{NS_SOAP12}\" xmlns:wsa=\"{NS_WSA}\" xmlns:xta=\"{NS_XTA}\" xmlns:oscimeta=\"{NS_OSCIMETA}\" xmlns:osci=\"{NS_OSCI}\">\
<soap:Header><wsa:Action>{}</wsa:Action><wsa:MessageID>urn:uuid:{}</wsa:MessageID><wsa:To>{}</wsa:To>\
<wsa:ReplyTo><wsa:Address>{WSA_ANONYMOUS}</wsa:Address></wsa:ReplyTo>{extra_headers}</soap:Header>\
<soap:Body>{body}</soap:Body></soap:Envelope>",
            esc(action),
            uuid::Uuid::new_v4(),
            esc(to),
        )
    }

    fn request(&self, url: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.post(url);
        if let Some(t) = &self.settings.bearer_token {
            r = r.bearer_auth(t);
        }
        r
    }

    fn post_soap(&self, url: &str, action: &str, envelope: String) -> reqwest::RequestBuilder {
        self.request(url)
            .header(
                reqwest::header::CONTENT_TYPE,
                format!("application/soap+xml; charset=utf-8; action=\"{action}\""),
            )
            .header("SOAPAction", format!("\"{action}\""))
            .body(envelope)
    }

    async fn call(
        &self,
        op: &'static str,
        action: &str,
        url: &str,
        envelope: String,
    ) -> Result<Answer, ClientError> {
        let resp = self
            .post_soap(url, action, envelope)
            .send()
            .await
            .map_err(|e| ClientError::network(op, &e))?;
        self.answer(op, resp, None).await.map(|(a, _)| a)
    }

    /// Read an answer (plain SOAP or MTOM), turn faults and HTTP errors
    /// into [`ClientError`]s.
    async fn answer(
        &self,
        op: &'static str,
        resp: reqwest::Response,
        sink: Option<&dyn PartSink>,
    ) -> Result<(Answer, std::collections::HashMap<String, (String, BlobRef)>), ClientError> {
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let limit = self.settings.max_answer_bytes;
        let (root, parts) = if ctype.to_ascii_lowercase().starts_with("multipart/related") {
            let refuse = RefuseSink;
            let sink: &dyn PartSink = match sink {
                Some(s) if (200..300).contains(&status) => s,
                _ => &refuse,
            };
            let a = mtom::read_answer(resp, &ctype, limit, sink)
                .await
                .map_err(|e| ClientError::invalid(op, e))?;
            (a.root, a.parts)
        } else {
            (read_limited(op, resp, limit).await?, Default::default())
        };
        let parsed = match parse_xml(&root) {
            Ok(p) => p,
            Err(e) => {
                if !(200..300).contains(&status) {
                    return Err(ClientError::Status {
                        operation: op,
                        status,
                        body: snippet(&root),
                    });
                }
                return Err(ClientError::invalid(op, e.to_string()));
            }
        };
        if !parsed.is(NS_SOAP12, "Envelope") {
            if !(200..300).contains(&status) {
                return Err(ClientError::Status {
                    operation: op,
                    status,
                    body: snippet(&root),
                });
            }
            return Err(ClientError::invalid(
                op,
                format!(
                    "not a SOAP 1.2 envelope ({{{}}}{})",
                    parsed.ns.as_deref().unwrap_or(""),
                    parsed.local
                ),
            ));
        }
        let body = parsed
            .child(NS_SOAP12, "Body")
            .cloned()
            .ok_or_else(|| ClientError::invalid(op, "envelope without Body"))?;
        if let Some(f) = body.child(NS_SOAP12, "Fault") {
            return Err(ClientError::Fault {
                operation: op,
                fault: parse_fault(f),
            });
        }
        if !(200..300).contains(&status) {
            return Err(ClientError::Status {
                operation: op,
                status,
                body: snippet(&root),
            });
        }
        let header = parsed.child(NS_SOAP12, "Header").cloned();
        Ok((Answer { header, body }, parts))
    }
}

/// A sink for MTOM parts of answers that must not carry any (faults).
struct RefuseSink;

#[async_trait::async_trait]
impl PartSink for RefuseSink {
    async fn store(&self, _reader: drehscheibe_model::BlobReader) -> Result<BlobRef, String> {
        Err("unexpected binary part in the answer".into())
    }
}

/// `<oscimeta:Author><oscimeta:Identifier …>…</…></…>` (the
/// `AuthorIdentifier` header block).
fn author_xml(p: &PartyIdentifier) -> String {
    let mut s = format!(
        "<oscimeta:Author xmlns:oscimeta=\"{NS_OSCIMETA}\"><oscimeta:Identifier type=\"{}\"",
        esc(&p.kind)
    );
    if let Some(c) = &p.category {
        s.push_str(&format!(" category=\"{}\"", esc(c)));
    }
    if let Some(n) = &p.name {
        s.push_str(&format!(" name=\"{}\"", esc(n)));
    }
    s.push_str(&format!(
        ">{}</oscimeta:Identifier></oscimeta:Author>",
        esc(&p.value)
    ));
    s
}

fn text(el: &XmlElement, ns: &str, local: &str) -> String {
    el.child(ns, local)
        .map(|c| c.text().trim().to_string())
        .unwrap_or_default()
}

fn snippet(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .take(300)
        .collect::<String>()
        .trim()
        .to_string()
}

async fn read_limited(
    op: &'static str,
    mut resp: reqwest::Response,
    limit: u64,
) -> Result<Vec<u8>, ClientError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(ClientError::invalid(
            op,
            format!("answer is larger than {limit} bytes"),
        ));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ClientError::network(op, &e))?
    {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(ClientError::invalid(
                op,
                format!("answer is larger than {limit} bytes"),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Read a `soap:Fault` element.
pub fn parse_fault(f: &XmlElement) -> Fault {
    let code_value = f
        .child(NS_SOAP12, "Code")
        .and_then(|c| c.child(NS_SOAP12, "Value"))
        .map(|v| v.text().trim().to_string())
        .unwrap_or_default();
    let reason_text = f
        .child(NS_SOAP12, "Reason")
        .and_then(|r| r.child(NS_SOAP12, "Text"))
        .map(|t| t.text().trim().to_string())
        .unwrap_or_default();
    let detail = f
        .child(NS_SOAP12, "Detail")
        .and_then(|d| d.elements().find(|c| c.ns.as_deref() == Some(NS_XTA)));
    match detail.and_then(|d| FaultKind::from_element(&d.local).map(|k| (k, d))) {
        Some((kind, d)) => {
            let ec = d.child(NS_XTA, "errorCode");
            let code = ec
                .and_then(|e| e.child_local("code"))
                .map(|c| c.text().trim().to_string());
            let name = ec
                .and_then(|e| e.child_local("name"))
                .map(|c| c.text().trim().to_string())
                .filter(|n| !n.is_empty());
            Fault {
                kind,
                code,
                reason: name.unwrap_or(reason_text),
            }
        }
        None => Fault {
            kind: FaultKind::Generic {
                receiver: code_value.ends_with("Receiver"),
            },
            code: None,
            reason: if code_value.is_empty() {
                reason_text
            } else {
                format!("{code_value}: {reason_text}")
            },
        },
    }
}

/// `(MsgBoxRequestID, ItemsPending, NoMessageAvailable/@reason)` from the
/// `osci:MsgBoxResponse` header.
#[allow(clippy::type_complexity)]
fn msgbox_response(
    op: &'static str,
    a: &Answer,
    required: bool,
) -> Result<(Option<String>, Option<u64>, Option<String>), ClientError> {
    let r = a
        .header
        .as_ref()
        .and_then(|h| h.child(NS_OSCI, "MsgBoxResponse"));
    let Some(r) = r else {
        if required {
            return Err(ClientError::invalid(op, "no osci:MsgBoxResponse header"));
        }
        return Ok((None, None, None));
    };
    Ok((
        r.attr("MsgBoxRequestID").map(str::to_string),
        r.child(NS_OSCI, "ItemsPending")
            .and_then(|i| i.text().trim().parse().ok()),
        r.child(NS_OSCI, "NoMessageAvailable")
            .and_then(|n| n.attr("reason"))
            .map(str::to_string),
    ))
}

/// A `Message`/`Attachment` element: XOP include → stored part; inline
/// base64 → decoded and stored through the sink.
async fn fetched_part(
    op: &'static str,
    el: &XmlElement,
    parts: &std::collections::HashMap<String, (String, BlobRef)>,
    sink: &dyn PartSink,
) -> Result<FetchedPart, ClientError> {
    let blob = if let Some(inc) = el.child(NS_XOP, "Include") {
        let href = inc
            .attr("href")
            .ok_or_else(|| ClientError::invalid(op, "xop:Include without href"))?;
        let cid = mtom::strip_cid(href);
        parts
            .get(cid.as_ref())
            .map(|(_, b)| b.clone())
            .ok_or_else(|| {
                ClientError::invalid(op, format!("xop:Include points to a missing part {href:?}"))
            })?
    } else {
        let cleaned: String = el.text().chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(cleaned.as_bytes())
            .map_err(|e| ClientError::invalid(op, format!("content is not base64: {e}")))?;
        let reader: drehscheibe_model::BlobReader =
            Box::pin(std::io::Cursor::new(Bytes::from(bytes)));
        sink.store(reader).await.map_err(|e| ClientError::Local {
            operation: op,
            reason: e,
            retryable: false,
        })?
    };
    let mut description = ContentDescription::from_element(el)
        .map_err(|e| ClientError::invalid(op, e.to_string()))?;
    description.size = Some(blob.size);
    Ok(FetchedPart { description, blob })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_read_with_code_and_kind() {
        let doc = format!(
            r#"<s:Fault xmlns:s="{NS_SOAP12}" xmlns:x="{NS_XTA}"><s:Code><s:Value>s:Sender</s:Value></s:Code>
<s:Reason><s:Text xml:lang="de">Parameter</s:Text></s:Reason><s:Detail><x:ParameterIsNotValidException>
<x:errorCode listURI="urn:de:xta:webservice:codeliste:fehlernummer" listVersionID="1.0"><code>9024</code><name>MessageID bereits verwendet</name></x:errorCode>
</x:ParameterIsNotValidException></s:Detail></s:Fault>"#
        );
        let f = parse_fault(&parse_xml(doc.as_bytes()).unwrap());
        assert_eq!(f.kind, FaultKind::ParameterIsNotValid);
        assert_eq!(f.code.as_deref(), Some("9024"));
        assert_eq!(f.reason, "MessageID bereits verwendet");

        let generic = format!(
            r#"<s:Fault xmlns:s="{NS_SOAP12}"><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text>down</s:Text></s:Reason></s:Fault>"#
        );
        let f = parse_fault(&parse_xml(generic.as_bytes()).unwrap());
        assert_eq!(f.kind, FaultKind::Generic { receiver: true });
        assert!(f.kind.is_retryable());
    }

    #[test]
    fn endpoints_must_be_http_urls() {
        let s = XtaClientSettings {
            endpoints: XtaEndpoints::single("ftp://x"),
            author: PartyIdentifier::new("a", "xoev"),
            client_cert_pem: None,
            ca_cert_pem: None,
            bearer_token: None,
            timeout: Duration::from_secs(5),
            max_answer_bytes: 1 << 20,
        };
        assert!(matches!(XtaClient::new(s), Err(ClientError::Config(_))));
    }
}
