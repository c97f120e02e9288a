//! The XTA-WS server: the twelve operations of the three ports of
//! `XTA.wsdl` (ManagementPort, SendXtaPort, MsgBoxPort) on one HTTP path,
//! dispatched on the WS-Addressing `Action`.
//!
//! * Accounts are party identifiers with bearer tokens and/or client
//!   certificate fingerprints. Tokens are checked first; a fingerprint is
//!   only available when the listener terminating TLS puts a
//!   [`drehscheibe_model::auth::ClientCertificate`] (or the older
//!   [`ClientCertFingerprint`]) into the request extensions; the hub's
//!   listener does so when `[server] tls` has a `client_ca`.
//! * `sendMessage` streams MTOM parts to spool files, checks every XOP
//!   reference and every limit, then stages the attachments and submits one
//!   message to the hub intake (idempotency key = XTA message id). Nothing
//!   is submitted when any check fails.
//! * `sendMessageSync` answers `SyncAsyncException` 9080: the hub offers
//!   asynchronous transport only.
//! * `cancelMessage` answers `CancelDeniedException`: the hub routes at
//!   once and does not hold messages until `NotBefore`.
//! * The MsgBoxPort serves the hub-hosted [`Mailboxes`] of the account.
//!   Mailbox contents are durable; `MsgBoxRequestID` iterators live in
//!   memory (after a restart `getNextStatusList` answers `RequestIdInvalid`,
//!   `close` with `LastMsgReceived` ids keeps working).
//! * Inline (non-MTOM) requests are read whole up to
//!   [`XtaServerSettings::max_soap_bytes`] (16 MiB); larger content must
//!   travel as MTOM parts, which are streamed to spool files.
//! * Only SOAP 1.2 is served. A SOAP 1.1 request (`text/xml`, or an
//!   envelope in the SOAP 1.1 namespace) is answered as SOAP 1.2 part 1,
//!   appendix A asks: a SOAP 1.1 `VersionMismatch` fault (HTTP 500,
//!   `text/xml`) whose `Upgrade` header block names the SOAP 1.2 envelope
//!   (see [`crate::faults`]).
//! * `GET <path>?wsdl` answers the official WSDL with the endpoint's
//!   address (its XSDs are served beside it).

mod ops;
mod wsdl;

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use drehscheibe_model::Intake;
use drehscheibe_store::{StateSpace, Store};
use futures::StreamExt;

use crate::faults::{Fault, XtaFault};
use crate::mailbox::Mailboxes;
use crate::model::PartyIdentifier;
use crate::mtom::{packaging, Packaging, ResponseBuilder, Segment};
use crate::soap::{parse_envelope, Envelope};

/// SHA-256 fingerprint (hex, lower case, no separators) of the client
/// certificate, inserted into request extensions by a TLS listener.
/// Superseded by [`drehscheibe_model::auth::ClientCertificate`], which the
/// hub's listener inserts; still accepted when present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertFingerprint(pub String);

/// An XTA account: the party it acts for and how it authenticates.
#[derive(Debug, Clone)]
pub struct Account {
    /// Account name (also the mailbox name).
    pub name: String,
    /// The party identifier (value, type, category).
    pub identifier: PartyIdentifier,
    /// Accepted bearer tokens.
    pub tokens: Vec<String>,
    /// Accepted client certificate SHA-256 fingerprints (hex).
    pub cert_fingerprints: Vec<String>,
}

/// Server settings.
#[derive(Debug, Clone)]
pub struct XtaServerSettings {
    /// Intake channel id of submitted messages.
    pub channel: String,
    /// HTTP path of the service (all three ports), e.g. `/xta`.
    pub path: String,
    /// Server identity used in message ids and transport reports.
    pub server_identity: String,
    /// The accounts.
    pub accounts: Vec<Account>,
    /// Largest accepted container (all content parts), bytes; XTA's
    /// limit is 40 MB.
    pub max_message_bytes: u64,
    /// Largest accepted SOAP part (and whole non-MTOM request), bytes.
    pub max_soap_bytes: u64,
    /// Directory for spool files and the server's state (`<data_dir>/xta`).
    pub state_dir: PathBuf,
    /// Default page size of status lists.
    pub max_list_items: usize,
}

impl XtaServerSettings {
    /// Settings with defaults: 40 MB container, 16 MiB SOAP part, 100
    /// list items.
    pub fn new(channel: &str, state_dir: PathBuf, accounts: Vec<Account>) -> Self {
        Self {
            channel: channel.to_string(),
            path: "/xta".to_string(),
            server_identity: "drehscheibe".to_string(),
            accounts,
            max_message_bytes: 40_000_000,
            max_soap_bytes: 16 * 1024 * 1024,
            state_dir,
            max_list_items: 100,
        }
    }
}

/// Server failure at start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Mailbox/state store.
    #[error(transparent)]
    Mailbox(#[from] crate::mailbox::MailboxError),
    /// Invalid settings.
    #[error("xta server settings: {0}")]
    Settings(String),
}

/// State of a MsgBox iterator (`MsgBoxRequestID`), kept in the state
/// space `xta/iterators/<channel>` under `account 0 request id`, so only
/// the account that opened it can use or close it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct MsgBoxIter {
    account: String,
    /// Ids still to list (status lists).
    pending: Vec<String>,
    /// Ids handed out by getMessage/getNextMessage.
    delivered: Vec<String>,
    list_form_metadata: bool,
    /// When it was opened (Unix seconds); iterators older than
    /// [`ITERATOR_TTL_SECS`] are dropped.
    #[serde(default)]
    opened: i64,
}

/// How long a `MsgBoxRequestID` stays usable.
pub(crate) const ITERATOR_TTL_SECS: i64 = 3600;

/// Most iterators one account keeps; opening one more drops the oldest.
pub(crate) const MAX_ITERATORS_PER_ACCOUNT: usize = 100;

pub(crate) struct Inner {
    settings: XtaServerSettings,
    intake: Arc<dyn Intake>,
    mailboxes: Arc<Mailboxes>,
    /// State space `xta/sent/<channel>`: message id → JSON `SentRecord`.
    sent: StateSpace,
    /// State space `xta/iterators/<channel>` (see [`MsgBoxIter`]).
    iters: StateSpace,
    spool: PathBuf,
}

/// The XTA-WS server; cheap to clone.
#[derive(Clone)]
pub struct XtaServer {
    inner: Arc<Inner>,
}

impl XtaServer {
    /// Open the server: mailboxes, the index of sent messages and the
    /// fetch iterators live in `store` (state spaces `xta/…`); large
    /// incoming messages are spooled under `settings.state_dir`.
    pub fn open(
        settings: XtaServerSettings,
        intake: Arc<dyn Intake>,
        store: Arc<dyn Store>,
    ) -> Result<Self, ServerError> {
        if !settings.path.starts_with('/') {
            return Err(ServerError::Settings(format!(
                "path {:?} must start with /",
                settings.path
            )));
        }
        let mailboxes = Mailboxes::new(store.clone())?;
        let space = |name: String| {
            StateSpace::new(store.clone(), &name).map_err(|e| ServerError::Settings(e.to_string()))
        };
        let sent = space(format!("xta/sent/{}", settings.channel))?;
        let iters = space(format!("xta/iterators/{}", settings.channel))?;
        let spool = settings.state_dir.join("spool");
        std::fs::create_dir_all(&spool)
            .map_err(|e| ServerError::Settings(format!("spool dir {}: {e}", spool.display())))?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                intake,
                mailboxes,
                sent,
                iters,
                spool,
            }),
        })
    }

    /// The hosted mailboxes (shared with `xta-mailbox` connectors).
    pub fn mailboxes(&self) -> Arc<Mailboxes> {
        self.inner.mailboxes.clone()
    }

    /// The axum router serving `POST <path>`.
    pub fn router(&self) -> Router {
        let path = &self.inner.settings.path;
        Router::new()
            .route(path, post(handle).get(wsdl::query))
            .route(&format!("{path}/{{file}}"), get(wsdl::document))
            .with_state(self.inner.clone())
    }
}

/// A response ready to be sent.
pub(crate) struct Reply {
    status: StatusCode,
    content_type: String,
    segments: Vec<Segment>,
}

impl Reply {
    pub(crate) fn fault(f: &Fault, action: Option<&str>, relates_to: Option<&str>) -> Self {
        Self {
            status: StatusCode::from_u16(f.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
            content_type: f.content_type().into(),
            segments: vec![Segment::Bytes(Bytes::from(
                f.to_envelope(action, relates_to),
            ))],
        }
    }

    pub(crate) fn ok(b: ResponseBuilder) -> Self {
        let (content_type, segments) = b.finish();
        Self {
            status: StatusCode::OK,
            content_type,
            segments,
        }
    }
}

/// The request as the operations see it.
pub(crate) struct Call {
    pub env: Envelope,
    pub account: Account,
    pub mtom: bool,
    /// Remaining MTOM parts (sendMessage reads them).
    pub parts: Option<multer::Multipart<'static>>,
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let blobs = inner.intake.blobs();
    let reply = match serve(&inner, req).await {
        Ok(r) => r,
        Err((f, action, relates)) => Reply::fault(&f, action.as_deref(), relates.as_deref()),
    };
    let body = Body::from_stream(crate::mtom::stream_segments(reply.segments, blobs));
    let mut resp = (reply.status, body).into_response();
    if let Ok(v) = reply.content_type.parse() {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

type Failure = (Fault, Option<String>, Option<String>);

fn authenticate(
    inner: &Inner,
    headers: &HeaderMap,
    ext: Option<&ClientCertFingerprint>,
) -> Option<Account> {
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(drehscheibe_model::auth::bearer_token)
    {
        return inner
            .settings
            .accounts
            .iter()
            .find(|a| {
                a.tokens
                    .iter()
                    .any(|t| ct_eq(t.as_bytes(), token.as_bytes()))
            })
            .cloned();
    }
    let fp = ext?;
    let want = fp.0.to_ascii_lowercase().replace(':', "");
    inner
        .settings
        .accounts
        .iter()
        .find(|a| {
            a.cert_fingerprints
                .iter()
                .any(|f| f.to_ascii_lowercase().replace(':', "") == want)
        })
        .cloned()
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn serve(inner: &Arc<Inner>, req: Request) -> Result<Reply, Failure> {
    let plain = |f: Fault| -> Failure { (f, None, None) };
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let pkg = packaging(&ct).map_err(|e| plain(Fault::sender(e.to_string())))?;
    let fingerprint = req
        .extensions()
        .get::<drehscheibe_model::auth::ClientCertificate>()
        .map(|c| ClientCertFingerprint(c.sha256_hex.clone()))
        .or_else(|| req.extensions().get::<ClientCertFingerprint>().cloned());
    let headers = req.headers().clone();
    let limit = inner.settings.max_soap_bytes;
    let body = req.into_body();
    let (root, parts, mtom) = match pkg {
        // `text/xml` is the SOAP 1.1 HTTP binding: whatever the body, the
        // client speaks SOAP 1.1 and gets the fault it can read.
        Packaging::Soap11 => return Err(plain(crate::soap::SoapError::Soap11Envelope.into())),
        Packaging::Soap12 => {
            let mut stream = body.into_data_stream();
            let mut buf = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk =
                    chunk.map_err(|e| plain(Fault::sender(format!("request body: {e}"))))?;
                if (buf.len() + chunk.len()) as u64 > limit {
                    return Err(plain(
                        XtaFault::new(
                            crate::faults::XtaFaultKind::ParameterIsNotValid,
                            9023,
                            format!("SOAP request larger than {limit} bytes; send large content as MTOM parts"),
                        )
                        .into(),
                    ));
                }
                buf.extend_from_slice(&chunk);
            }
            (buf, None, false)
        }
        Packaging::Mtom { boundary, start } => {
            let stream = body.into_data_stream();
            let mut mp = multer::Multipart::new(stream, boundary);
            let mut field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => return Err(plain(Fault::sender("MTOM request has no root part"))),
                Err(e) => return Err(plain(Fault::sender(format!("broken MTOM package: {e}")))),
            };
            if let Some(start) = &start {
                let cid = field
                    .headers()
                    .get("content-id")
                    .and_then(|v| v.to_str().ok())
                    .map(crate::mtom::strip_cid);
                if cid.as_deref() != Some(start.as_str()) {
                    return Err(plain(Fault::sender(format!(
                        "the first MIME part is not the root part <{start}>"
                    ))));
                }
            }
            let mut buf = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(c)) => {
                        if (buf.len() + c.len()) as u64 > limit {
                            return Err(plain(
                                XtaFault::new(
                                    crate::faults::XtaFaultKind::ParameterIsNotValid,
                                    9023,
                                    format!("SOAP part larger than {limit} bytes"),
                                )
                                .into(),
                            ));
                        }
                        buf.extend_from_slice(&c);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        return Err(plain(Fault::sender(format!("broken MTOM package: {e}"))))
                    }
                }
            }
            drop(field);
            (buf, Some(mp), true)
        }
    };
    let env = parse_envelope(&root).map_err(|e| plain(e.into()))?;
    let action = env.addressing.action.clone();
    let relates = env.addressing.message_id.clone();
    let fail = |f: Fault| -> Failure { (f, Some(action.clone()), relates.clone()) };
    let Some(op) = ops::Operation::from_action(&action) else {
        return Err(plain(crate::faults::action_not_supported(&action)));
    };
    let account = authenticate(inner, &headers, fingerprint.as_ref()).ok_or_else(|| {
        fail(
            XtaFault::unknown_account("no account for the presented token or client certificate")
                .into(),
        )
    })?;
    // An AuthorIdentifier header, if present, must name the account's party.
    if let Some(author) = env.header(crate::model::NS_OSCIMETA, "Author") {
        let id = author
            .child(crate::model::NS_OSCIMETA, "Identifier")
            .map(crate::model::party_identifier)
            .transpose()
            .map_err(|e| fail(XtaFault::invalid_parameter(e.to_string()).into()))?;
        if let Some(id) = id {
            if id.value != account.identifier.value {
                return Err(fail(
                    XtaFault::foreign_party(format!(
                        "account {} may not act for {}",
                        account.name, id.value
                    ))
                    .into(),
                ));
            }
        }
    }
    let call = Call {
        env,
        account,
        mtom,
        parts,
    };
    let relates_for_ok = relates.clone();
    match ops::dispatch(inner, op, call, relates_for_ok.as_deref()).await {
        Ok(r) => Ok(r),
        Err(f) => Err(fail(f)),
    }
}
