//! Test support for the client tests: an XTA server double that follows
//! the WSDL (SOAP 1.2, WS-Addressing, MTOM both ways, the fault elements
//! of `XTA-Webservice-Exceptions.xsd`) with scriptable faults, an
//! in-memory intake with the hub's idempotency semantics and an in-memory
//! blob store.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use drehscheibe_model::{
    sha256_hex, Accepted, BlobError, BlobReader, BlobRef, BlobStore, DeliveryRequest, Envelope,
    Intake, IntakeError, MessageId, MessageStatus, SenderIdentity, Submission,
};
use drehscheibe_xta::client::mtom::{mime_param, strip_cid};
use drehscheibe_xta::model::{
    esc, ContentDescription, MessageMetaData, NS_OSCI, NS_OSCIMETA, NS_SOAP12, NS_WSA, NS_XOP,
    NS_XTA,
};
use drehscheibe_xta::soap::{parse_envelope, XmlElement};
use tokio::io::AsyncReadExt;
use tokio::sync::Notify;

// ---------------------------------------------------------------- blobs

/// Blobs in memory.
#[derive(Default)]
pub struct MemBlobs {
    pub blobs: Mutex<HashMap<String, Bytes>>,
}

#[async_trait]
impl BlobStore for MemBlobs {
    async fn put(&self, mut reader: BlobReader, limit: u64) -> Result<BlobRef, BlobError> {
        let mut buf = Vec::new();
        (&mut reader).take(limit + 1).read_to_end(&mut buf).await?;
        if buf.len() as u64 > limit {
            return Err(BlobError::TooLarge { limit });
        }
        let sha = sha256_hex(&buf);
        let r = BlobRef {
            sha256: sha.clone(),
            size: buf.len() as u64,
        };
        self.blobs.lock().unwrap().insert(sha, Bytes::from(buf));
        Ok(r)
    }
    async fn open(&self, blob: &BlobRef) -> Result<BlobReader, BlobError> {
        let b = self
            .blobs
            .lock()
            .unwrap()
            .get(&blob.sha256)
            .cloned()
            .ok_or_else(|| BlobError::NotFound(blob.sha256.clone()))?;
        Ok(Box::pin(std::io::Cursor::new(b)))
    }
    async fn contains(&self, blob: &BlobRef) -> Result<bool, BlobError> {
        Ok(self.blobs.lock().unwrap().contains_key(&blob.sha256))
    }
}

impl MemBlobs {
    pub fn get(&self, r: &BlobRef) -> Bytes {
        self.blobs.lock().unwrap().get(&r.sha256).cloned().unwrap()
    }
}

// ---------------------------------------------------------------- intake

/// An intake that keeps submissions in memory with the hub's idempotency
/// rule (same channel + key + payload → duplicate).
pub struct MemIntake {
    pub blobs: Arc<MemBlobs>,
    /// Every submit call, in order.
    pub calls: Mutex<Vec<Submission>>,
    /// Stored messages.
    pub stored: Mutex<Vec<(MessageId, Submission)>>,
    keys: Mutex<HashMap<(String, String), (MessageId, String)>>,
    pub channel: String,
    /// Signalled after every stored (or duplicate) submit.
    pub submitted: Notify,
}

impl MemIntake {
    pub fn new(channel: &str) -> Arc<Self> {
        Arc::new(Self {
            blobs: Arc::new(MemBlobs::default()),
            calls: Mutex::new(Vec::new()),
            stored: Mutex::new(Vec::new()),
            keys: Mutex::new(HashMap::new()),
            channel: channel.into(),
            submitted: Notify::new(),
        })
    }
}

#[async_trait]
impl Intake for MemIntake {
    async fn submit(&self, s: Submission) -> Result<Accepted, IntakeError> {
        self.calls.lock().unwrap().push(s.clone());
        if s.channel != self.channel {
            return Err(IntakeError::UnknownChannel(s.channel));
        }
        let sha = sha256_hex(&s.payload);
        let out = {
            let mut keys = self.keys.lock().unwrap();
            match s.idempotency_key.clone() {
                Some(k) => match keys.get(&(s.channel.clone(), k.clone())) {
                    Some((id, h)) if *h == sha => Accepted {
                        id: *id,
                        duplicate: true,
                    },
                    Some(_) => return Err(IntakeError::IdempotencyConflict(k)),
                    None => {
                        let id = MessageId::new();
                        keys.insert((s.channel.clone(), k), (id, sha));
                        self.stored.lock().unwrap().push((id, s));
                        Accepted {
                            id,
                            duplicate: false,
                        }
                    }
                },
                None => {
                    let id = MessageId::new();
                    self.stored.lock().unwrap().push((id, s));
                    Accepted {
                        id,
                        duplicate: false,
                    }
                }
            }
        };
        self.submitted.notify_waiters();
        Ok(out)
    }
    async fn stage_attachment(&self, reader: BlobReader) -> Result<BlobRef, IntakeError> {
        self.blobs
            .put(reader, 64 << 20)
            .await
            .map_err(|e| IntakeError::Unavailable(e.to_string()))
    }
    fn max_payload_bytes(&self) -> u64 {
        16 << 20
    }
    fn max_attachment_bytes(&self) -> u64 {
        64 << 20
    }
    fn channel_exists(&self, channel: &str) -> bool {
        channel == self.channel
    }
    fn blobs(&self) -> Arc<dyn BlobStore> {
        self.blobs.clone()
    }
    async fn status(&self, _id: MessageId) -> Result<Option<MessageStatus>, IntakeError> {
        Ok(None)
    }
}

// ---------------------------------------------------------------- double

/// A content part the double received or serves.
#[derive(Debug, Clone)]
pub struct Part {
    pub description: ContentDescription,
    pub bytes: Bytes,
}

/// A message the double received via `sendMessage`.
#[derive(Debug, Clone)]
pub struct Received {
    pub meta: MessageMetaData,
    pub message: Part,
    pub attachments: Vec<Part>,
    pub authorization: Option<String>,
}

/// A message waiting in the double's mailbox.
#[derive(Debug, Clone)]
pub struct BoxEntry {
    pub meta: MessageMetaData,
    pub message: Part,
    pub attachments: Vec<Part>,
    /// Serve the `Message` as an XOP include to a part that is missing.
    pub broken_include: bool,
    /// Serve the content inline (base64 in the SOAP body, no MTOM).
    pub inline: bool,
}

/// A scripted fault: exception element local name, code, SOAP code.
#[derive(Debug, Clone)]
pub struct ScriptedFault {
    pub element: &'static str,
    pub code: &'static str,
    pub name: &'static str,
}

/// What the double does on one call of an operation.
#[derive(Debug, Clone)]
pub enum Script {
    Fault(ScriptedFault),
    /// HTTP status with a non-SOAP body.
    Http(u16),
    /// Perform the operation, then answer with this fault (answer lost).
    DoThenFault(ScriptedFault),
    /// Signal `hang` and never answer (until the client gives up).
    Hang,
}

#[derive(Default)]
pub struct DoubleState {
    pub next_id: u64,
    pub calls: Vec<String>,
    pub received: Vec<Received>,
    pub used_ids: Vec<String>,
    pub report_status: i64,
    pub report_errors: Vec<(String, String)>,
    pub mailbox: Vec<BoxEntry>,
    pub closed: Vec<(String, String)>,
    pub scripts: HashMap<&'static str, VecDeque<Script>>,
    pub request_ids: Vec<String>,
}

/// The double.
#[derive(Clone)]
pub struct Double {
    pub state: Arc<Mutex<DoubleState>>,
    pub hang: Arc<Notify>,
}

impl Double {
    pub fn new() -> Self {
        let s = DoubleState {
            report_status: 1,
            ..Default::default()
        };
        Self {
            state: Arc::new(Mutex::new(s)),
            hang: Arc::new(Notify::new()),
        }
    }

    pub fn script(&self, op: &'static str, s: Script) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .entry(op)
            .or_default()
            .push_back(s);
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/xta", axum::routing::post(handle))
            .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
            .with_state(self.clone())
    }

    /// Serve on plain HTTP loopback; returns the service URL.
    pub async fn serve(&self) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = l.local_addr().unwrap();
        let app = self.router();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        format!("http://{addr}/xta")
    }
}

fn op_of(action: &str) -> &'static str {
    match action.rsplit('/').next().unwrap_or("") {
        "CreateMessageID" => "createMessageId",
        "SendMessage" => "sendMessage",
        "GetTransportReport" => "getTransportReport",
        "CheckAccountActive" => "checkAccountActive",
        "MsgBoxStatusListRequest" => "getStatusList",
        "MsgBoxFetchRequest" => "getMessage",
        "MsgBoxCloseRequest" => "close",
        _ => "unknown",
    }
}

pub fn fault_response(f: &ScriptedFault) -> Response {
    let sender = f.element != "XTAWSTechnicalProblemException";
    let code = if sender { "env:Sender" } else { "env:Receiver" };
    let body = format!(
        "<?xml version=\"1.0\"?><env:Envelope xmlns:env=\"{NS_SOAP12}\" xmlns:wsa=\"{NS_WSA}\"><env:Header><wsa:Action>http://www.w3.org/2005/08/addressing/soap/fault</wsa:Action></env:Header><env:Body><env:Fault><env:Code><env:Value>{code}</env:Value></env:Code><env:Reason><env:Text xml:lang=\"de\">{}</env:Text></env:Reason><env:Detail><xta:{el} xmlns:xta=\"{NS_XTA}\"><xta:errorCode listURI=\"urn:de:xta:webservice:codeliste:fehlernummer\" listVersionID=\"1.0\"><code>{}</code><name>{}</name></xta:errorCode></xta:{el}></env:Detail></env:Fault></env:Body></env:Envelope>",
        esc(f.name),
        f.code,
        esc(f.name),
        el = f.element
    );
    (
        if sender {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        },
        [(header::CONTENT_TYPE, "application/soap+xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn soap_ok(action: &str, headers: &str, body: &str) -> Response {
    let env = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><env:Envelope xmlns:env=\"{NS_SOAP12}\" xmlns:wsa=\"{NS_WSA}\"><env:Header><wsa:Action>{action}</wsa:Action>{headers}</env:Header><env:Body>{body}</env:Body></env:Envelope>"
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/soap+xml; charset=utf-8")],
        env,
    )
        .into_response()
}

async fn read_request(headers: &HeaderMap, body: Bytes) -> (Vec<u8>, HashMap<String, Bytes>) {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !ct.starts_with("multipart/related") {
        return (body.to_vec(), HashMap::new());
    }
    let boundary = mime_param(&ct, "boundary").unwrap();
    let start = mime_param(&ct, "start").map(|s| strip_cid(&s).to_string());
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut root = None;
    let mut parts = HashMap::new();
    while let Some(f) = mp.next_field().await.unwrap() {
        let cid = f
            .headers()
            .get("content-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| strip_cid(v).to_string())
            .unwrap_or_default();
        let bytes = f.bytes().await.unwrap();
        if root.is_none() && start.as_deref().is_none_or(|s| s == cid) {
            root = Some(bytes.to_vec());
        } else {
            parts.insert(cid, bytes);
        }
    }
    (root.unwrap(), parts)
}

fn content_of(el: &XmlElement, parts: &HashMap<String, Bytes>) -> Part {
    let inc = el.child(NS_XOP, "Include").unwrap();
    let cid = strip_cid(inc.attr("href").unwrap()).to_string();
    Part {
        description: ContentDescription::from_element(el).unwrap(),
        bytes: parts.get(&cid).cloned().unwrap(),
    }
}

async fn handle(State(d): State<Double>, headers: HeaderMap, body: Bytes) -> Response {
    let (root, parts) = read_request(&headers, body).await;
    let env = match parse_envelope(&root) {
        Ok(e) => e,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let action = env.addressing.action.clone();
    let op = op_of(&action);
    let script = {
        let mut st = d.state.lock().unwrap();
        st.calls.push(op.to_string());
        st.scripts.get_mut(op).and_then(VecDeque::pop_front)
    };
    let mut after_fault = None;
    match script {
        Some(Script::Fault(f)) => return fault_response(&f),
        Some(Script::Http(code)) => {
            return (
                StatusCode::from_u16(code).unwrap(),
                "<html>proxy error</html>",
            )
                .into_response()
        }
        Some(Script::Hang) => {
            d.hang.notify_waiters();
            futures::future::pending::<()>().await;
        }
        Some(Script::DoThenFault(f)) => after_fault = Some(f),
        None => {}
    }
    let resp = match op {
        "createMessageId" => {
            let id = {
                let mut st = d.state.lock().unwrap();
                st.next_id += 1;
                format!("urn:de:xta:messageid:double:{}", st.next_id)
            };
            soap_ok(&action, "", &format!("<wsa:MessageID>{id}</wsa:MessageID>"))
        }
        "checkAccountActive" => soap_ok(&action, "", ""),
        "sendMessage" => {
            let meta = env
                .header(NS_OSCIMETA, "MessageMetaData")
                .map(|m| MessageMetaData::from_element(m).unwrap())
                .unwrap();
            let body = env.body.as_ref().unwrap();
            let cc = body.child(NS_XTA, "ContentContainer").unwrap();
            let message = content_of(cc.child(NS_XTA, "Message").unwrap(), &parts);
            let attachments = cc
                .children_named(NS_XTA, "Attachment")
                .map(|a| content_of(a, &parts))
                .collect();
            let mut st = d.state.lock().unwrap();
            if st.used_ids.contains(&meta.message_id) {
                drop(st);
                return fault_response(&ScriptedFault {
                    element: "ParameterIsNotValidException",
                    code: "9024",
                    name: "MessageID bereits verwendet",
                });
            }
            st.used_ids.push(meta.message_id.clone());
            st.received.push(Received {
                meta,
                message,
                attachments,
                authorization: headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            });
            soap_ok(&action, "", "")
        }
        "getTransportReport" => {
            let id = env.body.as_ref().unwrap().text().trim().to_string();
            let st = d.state.lock().unwrap();
            let Some(r) = st.received.iter().find(|r| r.meta.message_id == id) else {
                drop(st);
                return fault_response(&ScriptedFault {
                    element: "InvalidMessageIDException",
                    code: "9070",
                    name: "MessageID unbekannt",
                });
            };
            let mut errors = String::new();
            for (code, reason) in &st.report_errors {
                errors.push_str(&format!("<xta:Error><xta:Timestamp>2026-11-30T10:00:00Z</xta:Timestamp><xta:Code listURI=\"urn:x\" listVersionID=\"1\"><code>{code}</code></xta:Code><xta:Reason>{}</xta:Reason></xta:Error>", esc(reason)));
            }
            let body = format!(
                "<xta:TransportReport xmlns:xta=\"{NS_XTA}\">{}<xta:ReportTime>2026-11-30T10:00:00Z</xta:ReportTime><xta:XTAServerIdentity>double</xta:XTAServerIdentity><xta:MessageStatus><xta:Status>{}</xta:Status>{}</xta:MessageStatus></xta:TransportReport>",
                r.meta.to_xml(),
                st.report_status,
                if errors.is_empty() { String::new() } else { format!("<xta:ErrorList>{errors}</xta:ErrorList>") }
            );
            soap_ok(&action, "", &body)
        }
        "getStatusList" => {
            let mut st = d.state.lock().unwrap();
            let rid = format!("urn:uuid:{}", uuid::Uuid::new_v4());
            st.request_ids.push(rid.clone());
            let metas: String = st.mailbox.iter().map(|e| e.meta.to_xml()).collect();
            let hdr = if st.mailbox.is_empty() {
                format!("<osci:MsgBoxResponse xmlns:osci=\"{NS_OSCI}\" MsgBoxRequestID=\"{rid}\"><osci:NoMessageAvailable reason=\"http://www.osci.eu/ws/2008/05/transport/MsgBox/reasons/NoMatch\"/></osci:MsgBoxResponse>")
            } else {
                format!("<osci:MsgBoxResponse xmlns:osci=\"{NS_OSCI}\" MsgBoxRequestID=\"{rid}\"><osci:ItemsPending>0</osci:ItemsPending></osci:MsgBoxResponse>")
            };
            soap_ok(
                &action,
                &hdr,
                &format!(
                    "<osci:MsgStatusList xmlns:osci=\"{NS_OSCI}\">{metas}</osci:MsgStatusList>"
                ),
            )
        }
        "getMessage" => {
            let id = env
                .body
                .as_ref()
                .unwrap()
                .child(NS_OSCI, "MsgSelector")
                .and_then(|s| s.child(NS_WSA, "MessageID"))
                .map(|m| m.text().trim().to_string())
                .unwrap_or_default();
            let (entry, rid) = {
                let st = d.state.lock().unwrap();
                (
                    st.mailbox.iter().find(|e| e.meta.message_id == id).cloned(),
                    st.request_ids.last().cloned().unwrap_or_default(),
                )
            };
            let Some(entry) = entry else {
                return fault_response(&ScriptedFault {
                    element: "InvalidMessageIDException",
                    code: "9070",
                    name: "MessageID unbekannt",
                });
            };
            mtom_message(&action, &rid, &entry)
        }
        "close" => {
            let b = env.body.as_ref().unwrap();
            let rid = b.attr("MsgBoxRequestID").unwrap_or_default().to_string();
            let id = b
                .child(NS_OSCI, "LastMsgReceived")
                .map(|m| m.text().trim().to_string())
                .unwrap_or_default();
            let mut st = d.state.lock().unwrap();
            let before = st.mailbox.len();
            st.mailbox.retain(|e| e.meta.message_id != id);
            if st.mailbox.len() == before {
                drop(st);
                return fault_response(&ScriptedFault {
                    element: "InvalidMessageIDException",
                    code: "9070",
                    name: "MessageID unbekannt",
                });
            }
            st.closed.push((rid, id));
            soap_ok(&action, "", "")
        }
        _ => (StatusCode::BAD_REQUEST, "unknown action").into_response(),
    };
    match after_fault {
        Some(f) => fault_response(&f),
        None => resp,
    }
}

fn mtom_message(action: &str, rid: &str, e: &BoxEntry) -> Response {
    let boundary = "DOUBLE_BOUNDARY_1";
    let mut container = String::from("<xta:GenericContentContainer xmlns:xta=\"http://xoev.de/transport/xta/211\"><xta:ContentContainer>");
    let mut parts: Vec<(String, &Part)> = Vec::new();
    for (i, (el, p)) in std::iter::once(("Message", &e.message))
        .chain(e.attachments.iter().map(|a| ("Attachment", a)))
        .enumerate()
    {
        let cid = format!("c{i}@double");
        container.push_str(&format!("<xta:{el}"));
        p.description.write_attrs(&mut container);
        if e.inline {
            use base64::Engine as _;
            container.push_str(&format!(
                ">{}</xta:{el}>",
                base64::engine::general_purpose::STANDARD.encode(&p.bytes)
            ));
            continue;
        }
        let href = if e.broken_include && i == 0 {
            "cid:missing@double".to_string()
        } else {
            format!("cid:{}", cid.replace('@', "%40"))
        };
        container.push_str(&format!(
            "><xop:Include xmlns:xop=\"{NS_XOP}\" href=\"{href}\"/></xta:{el}>"
        ));
        parts.push((cid, p));
    }
    container.push_str("</xta:ContentContainer></xta:GenericContentContainer>");
    if e.inline {
        let hdr = format!(
            "{}<osci:MsgBoxResponse xmlns:osci=\"{NS_OSCI}\" MsgBoxRequestID=\"{rid}\"><osci:ItemsPending>0</osci:ItemsPending></osci:MsgBoxResponse>",
            e.meta.to_xml()
        );
        return soap_ok(action, &hdr, &container);
    }
    let hdr = format!(
        "{}<osci:MsgBoxResponse xmlns:osci=\"{NS_OSCI}\" MsgBoxRequestID=\"{rid}\"><osci:ItemsPending>0</osci:ItemsPending></osci:MsgBoxResponse>",
        e.meta.to_xml()
    );
    let env = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><env:Envelope xmlns:env=\"{NS_SOAP12}\" xmlns:wsa=\"{NS_WSA}\"><env:Header><wsa:Action>{action}</wsa:Action>{hdr}</env:Header><env:Body>{container}</env:Body></env:Envelope>"
    );
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\nContent-ID: <root@double>\r\n\r\n").as_bytes());
    body.extend_from_slice(env.as_bytes());
    for (cid, p) in parts {
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Type: {}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{cid}>\r\n\r\n",
                p.description.content_type
            )
            .as_bytes(),
        );
        body.extend_from_slice(&p.bytes);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            format!("multipart/related; type=\"application/xop+xml\"; start=\"<root@double>\"; start-info=\"application/soap+xml\"; boundary=\"{boundary}\""),
        )],
        Body::from(body),
    )
        .into_response()
}

// ---------------------------------------------------------------- requests

/// A delivery request for the connector tests.
pub fn request(
    document: &'static [u8],
    attachments: Vec<(&str, &str, Bytes)>,
    blobs: Arc<MemBlobs>,
    correlation_ids: BTreeMap<String, String>,
) -> DeliveryRequest {
    let mut refs = Vec::new();
    for (name, ct, bytes) in attachments {
        let sha = sha256_hex(&bytes);
        let size = bytes.len() as u64;
        blobs.blobs.lock().unwrap().insert(sha.clone(), bytes);
        refs.push(drehscheibe_model::AttachmentRef {
            name: name.to_string(),
            filename: Some(format!("{name}.bin")),
            content_type: ct.to_string(),
            blob: BlobRef { sha256: sha, size },
        });
    }
    DeliveryRequest {
        envelope: Envelope {
            id: MessageId::new(),
            channel: "portal".into(),
            sender: SenderIdentity {
                adapter: "http".into(),
                principal: "onlinedienst".into(),
                remote_addr: None,
            },
            received_at: chrono::Utc::now(),
            content_type: "application/xml".into(),
            size: document.len() as u64,
            sha256: sha256_hex(document),
            correlation_ids,
            idempotency_key: None,
            tenant: Some("nord".into()),
            kommune_key: None,
            leistung: None,
            attachments: refs,
        },
        target: "fachverfahren".into(),
        generation: 0,
        attempt: 1,
        document: Bytes::from_static(document),
        content_type: "application/xml".into(),
        filename: "antrag.xml".into(),
        blobs,
        checkpoint: drehscheibe_model::Checkpoint::in_memory(),
    }
}

pub type BoxedReader = Pin<Box<dyn tokio::io::AsyncRead + Send>>;
