//! The twelve operations.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use drehscheibe_model::{
    BlobRef, IntakeError, MessageId, MessageState, SenderIdentity, StagedAttachment, Submission,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::{Call, Inner, MsgBoxIter, Reply};
use crate::faults::{Fault, XtaFault, XtaFaultKind};
use crate::mailbox::MailboxMessage;
use crate::model::{
    esc, keys, ContentDescription, MessageMetaData, TransportInfo, NS_OSCI, NS_OSCIMETA, NS_WSA,
    NS_XOP, NS_XTA,
};
use crate::mtom::{strip_cid, ContentSource, ResponseBuilder};
use crate::soap::{response_envelope, XmlElement};

const A_CHECK: &str = "http://www.xta.de/XTA/CheckAccountActive";
const A_CREATE_ID: &str = "http://www.xta.de/XTA/CreateMessageID";
const A_LOOKUP: &str = "http://www.xta.de/XTA/IsServiceAvailable";
const A_REPORT: &str = "http://www.xta.de/XTA/GetTransportReport";
const A_CANCEL: &str = "http://www.xta.de/XTA/CancelMessage";
const A_SEND: &str = "http://www.xta.de/XTA/SendMessage";
const A_SEND_SYNC: &str = "http://www.xta.de/XTA/SendMessageSync";
const MSGBOX: &str = "http://www.osci.eu/ws/2008/05/transport/urn/messageTypes/";
const REASONS: &str = "http://www.osci.eu/ws/2008/05/transport/MsgBox/reasons/";

/// The operations, identified by their WS-Addressing action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    CheckAccountActive,
    CreateMessageId,
    LookupService,
    GetTransportReport,
    CancelMessage,
    SendMessage,
    SendMessageSync,
    GetStatusList,
    GetNextStatusList,
    GetMessage,
    GetNextMessage,
    Close,
}

impl Operation {
    pub(crate) fn from_action(a: &str) -> Option<Self> {
        Some(match a {
            A_CHECK => Self::CheckAccountActive,
            A_CREATE_ID => Self::CreateMessageId,
            A_LOOKUP => Self::LookupService,
            A_REPORT => Self::GetTransportReport,
            A_CANCEL => Self::CancelMessage,
            A_SEND => Self::SendMessage,
            A_SEND_SYNC => Self::SendMessageSync,
            _ => match a.strip_prefix(MSGBOX)? {
                "MsgBoxStatusListRequest" => Self::GetStatusList,
                "MsgBoxGetNextListRequest" => Self::GetNextStatusList,
                "MsgBoxFetchRequest" => Self::GetMessage,
                "MsgBoxGetNextMsgRequest" => Self::GetNextMessage,
                "MsgBoxCloseRequest" => Self::Close,
                _ => return None,
            },
        })
    }
}

/// What the server remembers about a submitted message.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SentRecord {
    account: String,
    hub_id: String,
    metadata: MessageMetaData,
}

fn internal(e: impl std::fmt::Display) -> Fault {
    XtaFault::internal(e.to_string()).into()
}

fn empty_reply(action: &str, relates: Option<&str>, headers: &str, body: &str) -> Reply {
    let mut b = ResponseBuilder::new(false);
    b.xml(&response_envelope(action, relates, headers, body));
    Reply::ok(b)
}

impl Operation {
    /// The XTA exceptions the WSDL declares for the operation.
    pub(crate) fn declares(self, kind: XtaFaultKind) -> bool {
        use XtaFaultKind as K;
        matches!(kind, K::PermissionDenied | K::TechnicalProblem)
            || match self {
                Self::CheckAccountActive
                | Self::CreateMessageId
                | Self::GetStatusList
                | Self::GetNextStatusList => false,
                Self::LookupService => kind == K::ParameterIsNotValid,
                Self::GetTransportReport
                | Self::GetMessage
                | Self::GetNextMessage
                | Self::Close => kind == K::InvalidMessageId,
                Self::CancelMessage => matches!(kind, K::ParameterIsNotValid | K::CancelDenied),
                Self::SendMessage | Self::SendMessageSync => matches!(
                    kind,
                    K::ParameterIsNotValid
                        | K::MessageSchemaViolation
                        | K::MessageVirusDetection
                        | K::SyncAsync
                ),
            }
    }
}

/// Run an operation. An XTA exception the WSDL does not declare for it
/// (e.g. a malformed MsgBox request) is answered as a plain SOAP
/// `env:Sender` fault, so clients generated from the WSDL never see an
/// undeclared fault detail.
pub(crate) async fn dispatch(
    inner: &Arc<Inner>,
    op: Operation,
    call: Call,
    relates: Option<&str>,
) -> Result<Reply, Fault> {
    match run(inner, op, call, relates).await {
        Err(Fault::Xta(x)) if !op.declares(x.kind) => Err(Fault::sender(x.reason)),
        other => other,
    }
}

async fn run(
    inner: &Arc<Inner>,
    op: Operation,
    call: Call,
    relates: Option<&str>,
) -> Result<Reply, Fault> {
    let action = call.env.addressing.action.clone();
    match op {
        Operation::CheckAccountActive => Ok(empty_reply(&action, relates, "", "")),
        Operation::CreateMessageId => {
            let id = format!(
                "urn:de:xta:messageid:{}:{}",
                inner.settings.server_identity,
                uuid::Uuid::new_v4()
            );
            Ok(empty_reply(
                &action,
                relates,
                "",
                &format!("<wsa:MessageID>{}</wsa:MessageID>", esc(&id)),
            ))
        }
        Operation::LookupService => lookup_service(inner, &call, &action, relates),
        Operation::GetTransportReport => transport_report(inner, &call, &action, relates).await,
        Operation::CancelMessage => cancel(inner, &call).await,
        Operation::SendMessage => send_message(inner, call, &action, relates).await,
        Operation::SendMessageSync => Err(XtaFault::new(
            XtaFaultKind::SyncAsync,
            9080,
            "this XTA server offers asynchronous transport only (use sendMessage)",
        )
        .into()),
        Operation::GetStatusList => status_list(inner, &call, &action, relates).await,
        Operation::GetNextStatusList => next_status_list(inner, &call, &action, relates).await,
        Operation::GetMessage => get_message(inner, &call, &action, relates, false).await,
        Operation::GetNextMessage => get_message(inner, &call, &action, relates, true).await,
        Operation::Close => close(inner, &call, &action, relates).await,
    }
}

fn body<'a>(call: &'a Call, ns: &str, local: &str) -> Result<&'a XmlElement, Fault> {
    match &call.env.body {
        Some(b) if b.is(ns, local) => Ok(b),
        Some(b) => Err(XtaFault::invalid_parameter(format!(
            "expected {local} in the body, found {}",
            b.local
        ))
        .into()),
        None => Err(XtaFault::new(
            XtaFaultKind::ParameterIsNotValid,
            9020,
            format!("expected {local} in the body"),
        )
        .into()),
    }
}

// ---------------------------------------------------------------- management

fn lookup_service(
    inner: &Arc<Inner>,
    call: &Call,
    action: &str,
    relates: Option<&str>,
) -> Result<Reply, Fault> {
    let req = body(call, NS_XTA, "LookupServiceRequest")?;
    let mut out = format!("<xta:LookupServiceResponse xmlns:xta=\"{NS_XTA}\" xmlns:oscimeta=\"{NS_OSCIMETA}\"><xta:LookupServiceResultList>");
    let mut n = 0;
    for item in req.children_named(NS_XTA, "LookupServiceRequestList") {
        let ls = item.child(NS_XTA, "LookupService").ok_or_else(|| {
            XtaFault::invalid_parameter("LookupServiceRequestList lacks LookupService")
        })?;
        let reader = ls
            .child(NS_OSCIMETA, "Reader")
            .and_then(|r| r.child(NS_OSCIMETA, "Identifier"))
            .ok_or_else(|| XtaFault::invalid_parameter("LookupService lacks Reader/Identifier"))
            .and_then(|i| {
                crate::model::party_identifier(i)
                    .map_err(|e| XtaFault::invalid_parameter(e.to_string()))
            })?;
        let service = ls
            .child(NS_XTA, "ServiceType")
            .map(|s| s.text().trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                XtaFault::new(
                    XtaFaultKind::ParameterIsNotValid,
                    9021,
                    "LookupService lacks ServiceType",
                )
            })?;
        let hosted = inner
            .settings
            .accounts
            .iter()
            .any(|a| a.identifier.value == reader.value);
        out.push_str("<xta:LookupServiceResult><oscimeta:Reader>");
        write_identifier(&mut out, &reader);
        let _ = write!(
            out,
            "</oscimeta:Reader><xta:ServiceType>{}</xta:ServiceType><xta:IsServiceAvailableValue>",
            esc(&service)
        );
        if hosted {
            out.push_str("<xta:ServiceIsAvailable>true</xta:ServiceIsAvailable>");
        } else {
            out.push_str("<xta:ServiceIsAvailableUnknown>true</xta:ServiceIsAvailableUnknown>");
        }
        out.push_str("</xta:IsServiceAvailableValue></xta:LookupServiceResult>");
        n += 1;
    }
    if n == 0 {
        return Err(XtaFault::new(
            XtaFaultKind::ParameterIsNotValid,
            9020,
            "no LookupService entries",
        )
        .into());
    }
    out.push_str("</xta:LookupServiceResultList></xta:LookupServiceResponse>");
    Ok(empty_reply(action, relates, "", &out))
}

fn write_identifier(out: &mut String, p: &crate::model::PartyIdentifier) {
    let _ = write!(out, "<oscimeta:Identifier type=\"{}\"", esc(&p.kind));
    if let Some(c) = &p.category {
        let _ = write!(out, " category=\"{}\"", esc(c));
    }
    if let Some(n) = &p.name {
        let _ = write!(out, " name=\"{}\"", esc(n));
    }
    let _ = write!(out, ">{}</oscimeta:Identifier>", esc(&p.value));
}

fn body_message_id(call: &Call) -> Result<String, Fault> {
    let e = body(call, NS_WSA, "MessageID")?;
    let id = e.text().trim().to_string();
    if id.is_empty() {
        return Err(
            XtaFault::new(XtaFaultKind::ParameterIsNotValid, 9020, "empty MessageID").into(),
        );
    }
    Ok(id)
}

async fn sent_record(inner: &Inner, account: &str, id: &str) -> Result<Option<SentRecord>, Fault> {
    let Some(v) = inner.sent.get(id.as_bytes()).await.map_err(internal)? else {
        return Ok(None);
    };
    let r: SentRecord = serde_json::from_slice(&v).map_err(internal)?;
    Ok((r.account == account).then_some(r))
}

async fn transport_report(
    inner: &Arc<Inner>,
    call: &Call,
    action: &str,
    relates: Option<&str>,
) -> Result<Reply, Fault> {
    let id = body_message_id(call)?;
    let rec = sent_record(inner, &call.account.name, &id)
        .await?
        .ok_or_else(|| {
            XtaFault::unknown_message(format!("message {id} is unknown for this account"))
        })?;
    let hub_id: MessageId = rec.hub_id.parse().map_err(internal)?;
    let status = inner.intake.status(hub_id).await.map_err(|e| {
        Fault::from(XtaFault::new(
            XtaFaultKind::TechnicalProblem,
            9030,
            e.to_string(),
        ))
    })?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut records = String::new();
    let code = |c: &str| {
        format!("<xta:Code listURI=\"urn:de:drehscheibe:xta:record\" listVersionID=\"1.0\"><code>{c}</code></xta:Code>")
    };
    let (level, list) = match &status {
        None => (0, None),
        Some(s) => match s.state {
            MessageState::Delivered => {
                let _ = write!(
                    records,
                    "<xta:Info><xta:Timestamp>{now}</xta:Timestamp>{}<xta:Reason>delivered ({} deliveries)</xta:Reason></xta:Info>",
                    code("delivered"),
                    s.deliveries.len()
                );
                (1, Some("InfoList"))
            }
            MessageState::Dead | MessageState::Rejected | MessageState::Quarantined => {
                let reason = s
                    .reason
                    .clone()
                    .or_else(|| s.deliveries.iter().find_map(|d| d.last_error.clone()))
                    .unwrap_or_else(|| s.state.as_str().to_string());
                let _ = write!(
                    records,
                    "<xta:Error><xta:Timestamp>{now}</xta:Timestamp>{}<xta:Reason>{}</xta:Reason></xta:Error>",
                    code(s.state.as_str()),
                    esc(&reason)
                );
                (3, Some("ErrorList"))
            }
            MessageState::Failed => {
                let reason = s
                    .deliveries
                    .iter()
                    .find_map(|d| d.last_error.clone())
                    .unwrap_or_else(|| "delivery failed, retrying".into());
                let _ = write!(
                    records,
                    "<xta:Warning><xta:Timestamp>{now}</xta:Timestamp>{}<xta:Reason>{}</xta:Reason></xta:Warning>",
                    code("retrying"),
                    esc(&reason)
                );
                (0, Some("WarnList"))
            }
            _ => (0, None),
        },
    };
    let mut out = format!("<xta:TransportReport xmlns:xta=\"{NS_XTA}\">");
    rec.metadata.write_xml(&mut out);
    let _ = write!(
        out,
        "<xta:ReportTime>{now}</xta:ReportTime><xta:XTAServerIdentity>{}</xta:XTAServerIdentity><xta:MessageStatus><xta:Status>{level}</xta:Status>",
        esc(&inner.settings.server_identity)
    );
    if let Some(l) = list {
        let _ = write!(out, "<xta:{l}>{records}</xta:{l}>");
    }
    out.push_str("</xta:MessageStatus></xta:TransportReport>");
    Ok(empty_reply(action, relates, "", &out))
}

async fn cancel(inner: &Arc<Inner>, call: &Call) -> Result<Reply, Fault> {
    let id = body_message_id(call)?;
    let rec = sent_record(inner, &call.account.name, &id)
        .await?
        .ok_or_else(|| {
            XtaFault::invalid_parameter(format!("message {id} is unknown for this account"))
        })?;
    Err(match rec.metadata.delivery_attributes.not_before {
        None => XtaFault::new(
            XtaFaultKind::CancelDenied,
            9101,
            "NotBefore was not set; the message was routed on receipt",
        ),
        Some(_) => XtaFault::new(
            XtaFaultKind::CancelDenied,
            9100,
            "the hub routes on receipt and does not hold messages until NotBefore",
        ),
    }
    .into())
}

// ---------------------------------------------------------------- send

/// Where a content element's bytes are in the request.
enum Carrier {
    Inline(Vec<u8>),
    Part(String),
}

fn carrier(e: &XmlElement) -> Result<Carrier, Fault> {
    if let Some(inc) = e.child(NS_XOP, "Include") {
        let href = inc
            .attr("href")
            .ok_or_else(|| XtaFault::invalid_parameter("xop:Include lacks href"))?;
        if !href.starts_with("cid:") {
            return Err(XtaFault::invalid_parameter(format!(
                "xop:Include href {href:?} is not a cid: URL"
            ))
            .into());
        }
        return Ok(Carrier::Part(strip_cid(href)));
    }
    if e.elements().next().is_some() {
        return Err(XtaFault::invalid_parameter(format!(
            "{} has unexpected child elements",
            e.local
        ))
        .into());
    }
    let text: String = e
        .text()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map(Carrier::Inline)
        .map_err(|err| {
            XtaFault::new(
                XtaFaultKind::MessageSchemaViolation,
                9051,
                format!("{} is not valid base64: {err}", e.local),
            )
            .into()
        })
}

fn too_large(what: &str, limit: u64) -> Fault {
    XtaFault::new(
        XtaFaultKind::ParameterIsNotValid,
        9023,
        format!("{what} exceeds the size limit of {limit} bytes"),
    )
    .into()
}

enum Spooled {
    Memory(Vec<u8>),
    File(tokio::fs::File),
}

async fn send_message(
    inner: &Arc<Inner>,
    mut call: Call,
    action: &str,
    relates: Option<&str>,
) -> Result<Reply, Fault> {
    let md_el = call
        .env
        .header(NS_OSCIMETA, "MessageMetaData")
        .ok_or_else(|| {
            XtaFault::new(
                XtaFaultKind::ParameterIsNotValid,
                9020,
                "MessageMetaData header is required",
            )
        })?;
    let metadata = MessageMetaData::from_element(md_el)
        .map_err(|e| XtaFault::invalid_parameter(e.to_string()))?;
    if metadata.author.value != call.account.identifier.value {
        return Err(XtaFault::foreign_party(format!(
            "account {} may not send as author {}",
            call.account.name, metadata.author.value
        ))
        .into());
    }
    // A message id belongs to the account that first used it.
    if let Some(v) = inner
        .sent
        .get(metadata.message_id.as_bytes())
        .await
        .map_err(internal)?
    {
        let r: SentRecord = serde_json::from_slice(&v).map_err(internal)?;
        if r.account != call.account.name {
            return Err(XtaFault::new(
                XtaFaultKind::ParameterIsNotValid,
                9024,
                format!("MessageID {} is already used", metadata.message_id),
            )
            .into());
        }
    }
    let gcc = body(&call, NS_XTA, "GenericContentContainer")?;
    if gcc
        .child("http://www.w3.org/2001/04/xmlenc#", "EncryptedData")
        .is_some()
    {
        return Err(XtaFault::new(
            XtaFaultKind::MessageSchemaViolation,
            9052,
            "encrypted containers (xenc:EncryptedData) are not accepted by this hub",
        )
        .into());
    }
    let cc = gcc.child(NS_XTA, "ContentContainer").ok_or_else(|| {
        XtaFault::invalid_parameter("GenericContentContainer lacks ContentContainer")
    })?;
    let msg_el = cc
        .child(NS_XTA, "Message")
        .ok_or_else(|| XtaFault::invalid_parameter("ContentContainer lacks Message"))?;
    let mut items = vec![(
        ContentDescription::from_element(msg_el)
            .map_err(|e| XtaFault::invalid_parameter(e.to_string()))?,
        carrier(msg_el)?,
    )];
    for a in cc.children_named(NS_XTA, "Attachment") {
        items.push((
            ContentDescription::from_element(a)
                .map_err(|e| XtaFault::invalid_parameter(e.to_string()))?,
            carrier(a)?,
        ));
    }
    let max_total = inner.settings.max_message_bytes;
    let payload_limit = inner.intake.max_payload_bytes().min(max_total);
    let attach_limit = inner.intake.max_attachment_bytes().min(max_total);
    // Which part feeds which item.
    let mut wanted: HashMap<String, usize> = HashMap::new();
    for (i, (_, c)) in items.iter().enumerate() {
        if let Carrier::Part(cid) = c {
            if wanted.insert(cid.clone(), i).is_some() {
                return Err(XtaFault::invalid_parameter(format!(
                    "MIME part {cid} is referenced twice"
                ))
                .into());
            }
        }
    }
    let mut spooled: Vec<Option<Spooled>> = items.iter().map(|_| None).collect();
    let mut total: u64 = 0;
    for (i, (_, c)) in items.iter_mut().enumerate() {
        if let Carrier::Inline(b) = c {
            total += b.len() as u64;
            spooled[i] = Some(Spooled::Memory(std::mem::take(b)));
        }
    }
    if !wanted.is_empty() {
        let Some(mp) = call.parts.as_mut() else {
            return Err(
                XtaFault::invalid_parameter("xop:Include in a request that is not MTOM").into(),
            );
        };
        loop {
            let mut field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(Fault::sender(format!("broken MTOM package: {e}"))),
            };
            let cid = field
                .headers()
                .get("content-id")
                .and_then(|v| v.to_str().ok())
                .map(strip_cid)
                .unwrap_or_default();
            let Some(&idx) = wanted.get(&cid) else {
                // Unreferenced part: drain it within the overall limit.
                while let Some(c) = field
                    .chunk()
                    .await
                    .map_err(|e| Fault::sender(format!("broken MTOM package: {e}")))?
                {
                    total += c.len() as u64;
                    if total > max_total {
                        return Err(too_large("the container", max_total));
                    }
                }
                continue;
            };
            if spooled[idx].is_some() {
                return Err(
                    XtaFault::invalid_parameter(format!("MIME part {cid} occurs twice")).into(),
                );
            }
            let limit = if idx == 0 {
                payload_limit
            } else {
                attach_limit
            };
            let what = if idx == 0 {
                "the Message part"
            } else {
                "an Attachment part"
            };
            if idx == 0 {
                let mut buf = Vec::new();
                while let Some(c) = field
                    .chunk()
                    .await
                    .map_err(|e| Fault::sender(format!("broken MTOM package: {e}")))?
                {
                    total += c.len() as u64;
                    if (buf.len() + c.len()) as u64 > limit {
                        return Err(too_large(what, limit));
                    }
                    if total > max_total {
                        return Err(too_large("the container", max_total));
                    }
                    buf.extend_from_slice(&c);
                }
                spooled[idx] = Some(Spooled::Memory(buf));
            } else {
                let std_file = tempfile::tempfile_in(&inner.spool).map_err(internal)?;
                let mut file = tokio::fs::File::from_std(std_file);
                let mut n: u64 = 0;
                while let Some(c) = field
                    .chunk()
                    .await
                    .map_err(|e| Fault::sender(format!("broken MTOM package: {e}")))?
                {
                    n += c.len() as u64;
                    total += c.len() as u64;
                    if n > limit {
                        return Err(too_large(what, limit));
                    }
                    if total > max_total {
                        return Err(too_large("the container", max_total));
                    }
                    file.write_all(&c).await.map_err(internal)?;
                }
                file.flush().await.map_err(internal)?;
                file.seek(std::io::SeekFrom::Start(0))
                    .await
                    .map_err(internal)?;
                spooled[idx] = Some(Spooled::File(file));
            }
        }
    }
    for (cid, idx) in &wanted {
        if spooled[*idx].is_none() {
            return Err(XtaFault::invalid_parameter(format!(
                "xop:Include refers to cid:{cid}, but the request has no such MIME part"
            ))
            .into());
        }
    }
    if total > max_total {
        return Err(too_large("the container", max_total));
    }
    // All parts are here and within limits: stage and submit.
    let msg_desc = items[0].0.clone();
    let mut payload = Bytes::new();
    let mut attachments = Vec::new();
    let mut descriptions = Vec::new();
    for (i, (s, (desc, _))) in spooled.into_iter().zip(items).enumerate() {
        let Some(s) = s else {
            return Err(internal("content part missing after checks"));
        };
        if i == 0 {
            payload = match s {
                Spooled::Memory(b) => {
                    if b.len() as u64 > payload_limit {
                        return Err(too_large("the Message part", payload_limit));
                    }
                    Bytes::from(b)
                }
                Spooled::File(..) => return Err(internal("message part spooled to a file")),
            };
            continue;
        }
        let reader: drehscheibe_model::BlobReader = match s {
            Spooled::Memory(b) => {
                if b.len() as u64 > attach_limit {
                    return Err(too_large("an Attachment part", attach_limit));
                }
                Box::pin(std::io::Cursor::new(b))
            }
            Spooled::File(f) => Box::pin(f),
        };
        let blob: BlobRef = inner
            .intake
            .stage_attachment(reader)
            .await
            .map_err(intake_fault)?;
        let name = desc
            .id
            .clone()
            .or_else(|| desc.filename.clone())
            .unwrap_or_else(|| format!("attachment-{i}"));
        attachments.push(StagedAttachment {
            name,
            filename: desc.filename.clone(),
            content_type: desc.content_type.clone(),
            blob,
        });
        descriptions.push(desc);
    }
    let info = TransportInfo {
        metadata: metadata.clone(),
        message: msg_desc.clone(),
        attachments: descriptions,
    };
    let mut correlation_ids: BTreeMap<String, String> = metadata.correlation_ids();
    correlation_ids.insert(keys::ACCOUNT.into(), call.account.name.clone());
    correlation_ids.insert(keys::TRANSPORT.into(), info.to_json());
    let submission = Submission {
        channel: inner.settings.channel.clone(),
        sender: SenderIdentity {
            adapter: "xta".into(),
            principal: call.account.name.clone(),
            remote_addr: None,
        },
        content_type: msg_desc.content_type.clone(),
        payload,
        attachments,
        idempotency_key: Some(metadata.message_id.clone()),
        correlation_ids,
    };
    let accepted = inner
        .intake
        .submit(submission)
        .await
        .map_err(intake_fault)?;
    let rec = SentRecord {
        account: call.account.name.clone(),
        hub_id: accepted.id.to_string(),
        metadata: metadata.clone(),
    };
    let value = serde_json::to_vec(&rec).map_err(internal)?;
    // The hub holds the message now; its sent record (what
    // getTransportReport answers from) must follow even if the client
    // hangs up, which drops this handler's future: a task of its own.
    let (owner, key) = (inner.clone(), metadata.message_id.clone());
    tokio::spawn(async move {
        let mut tx = owner.sent.begin();
        tx.put(key.as_bytes(), value);
        tx.commit().await
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    tracing::info!(xta_message_id = %metadata.message_id, hub_id = %accepted.id, duplicate = accepted.duplicate, account = %call.account.name, "xta: message accepted");
    Ok(empty_reply(action, relates, "", ""))
}

fn intake_fault(e: IntakeError) -> Fault {
    let (kind, code) = match &e {
        IntakeError::Forbidden(_) => (XtaFaultKind::PermissionDenied, 9013),
        IntakeError::UnsupportedMediaType(_) => (XtaFaultKind::MessageSchemaViolation, 9052),
        IntakeError::Malformed(_) | IntakeError::Hostile(_) => {
            (XtaFaultKind::MessageSchemaViolation, 9050)
        }
        // "Es wurde schadhafter Code ermittelt.": a permanent refusal of
        // this message (the hub keeps it quarantined).
        IntakeError::Infected { .. } => (XtaFaultKind::MessageVirusDetection, 9060),
        IntakeError::TooLarge { .. } => (XtaFaultKind::ParameterIsNotValid, 9023),
        IntakeError::IdempotencyConflict(_) => (XtaFaultKind::ParameterIsNotValid, 9024),
        IntakeError::UnknownChannel(_)
        | IntakeError::ShuttingDown
        | IntakeError::Unavailable(_) => (XtaFaultKind::TechnicalProblem, 9030),
    };
    XtaFault::new(kind, code, e.to_string()).into()
}

// ---------------------------------------------------------------- msgbox

fn iter_key(account: &str, rid: &str) -> Vec<u8> {
    let mut k = account.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(rid.as_bytes());
    k
}

/// The iterator `rid` if `account` opened it and it has not expired.
async fn load_iter(inner: &Inner, account: &str, rid: &str) -> Result<Option<MsgBoxIter>, Fault> {
    let Some(v) = inner
        .iters
        .get(&iter_key(account, rid))
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    let it: MsgBoxIter = serde_json::from_slice(&v).map_err(internal)?;
    let fresh = chrono::Utc::now().timestamp() - it.opened < super::ITERATOR_TTL_SECS;
    Ok((fresh && it.account == account).then_some(it))
}

async fn save_iter(inner: &Inner, rid: &str, it: &MsgBoxIter) -> Result<(), Fault> {
    let mut tx = inner.iters.begin();
    tx.put(
        &iter_key(&it.account, rid),
        serde_json::to_vec(it).map_err(internal)?,
    );
    tx.commit().await.map_err(internal)?;
    Ok(())
}

async fn drop_iter(inner: &Inner, account: &str, rid: &str) -> Result<(), Fault> {
    let mut tx = inner.iters.begin();
    tx.delete(&iter_key(account, rid));
    tx.commit().await.map_err(internal)?;
    Ok(())
}

/// Store a new iterator under a fresh id; drops the account's expired
/// iterators and, beyond [`super::MAX_ITERATORS_PER_ACCOUNT`], its oldest.
async fn new_iter(inner: &Inner, mut it: MsgBoxIter) -> Result<String, Fault> {
    let id = format!("urn:uuid:{}", uuid::Uuid::now_v7());
    it.opened = chrono::Utc::now().timestamp();
    let mut prefix = it.account.as_bytes().to_vec();
    prefix.push(0);
    let existing = inner
        .iters
        .scan(&prefix, None, drehscheibe_store::state::MAX_STATE_PAGE)
        .await
        .map_err(internal)?;
    let mut tx = inner.iters.begin();
    let mut live: Vec<(i64, Vec<u8>)> = Vec::new();
    for (k, v) in existing {
        match serde_json::from_slice::<MsgBoxIter>(&v) {
            Ok(old) if it.opened - old.opened < super::ITERATOR_TTL_SECS => {
                live.push((old.opened, k))
            }
            _ => tx.delete(&k),
        }
    }
    live.sort();
    let excess = (live.len() + 1).saturating_sub(super::MAX_ITERATORS_PER_ACCOUNT);
    for (_, k) in live.into_iter().take(excess) {
        tx.delete(&k);
    }
    tx.put(
        &iter_key(&it.account, &id),
        serde_json::to_vec(&it).map_err(internal)?,
    );
    tx.commit().await.map_err(internal)?;
    Ok(id)
}

fn msgbox_response(id: &str, pending: Option<usize>, reason: &str) -> String {
    match pending {
        Some(n) => format!("<osci:MsgBoxResponse xmlns:osci=\"{NS_OSCI}\" MsgBoxRequestID=\"{}\"><osci:ItemsPending>{n}</osci:ItemsPending></osci:MsgBoxResponse>", esc(id)),
        None => format!("<osci:MsgBoxResponse xmlns:osci=\"{NS_OSCI}\" MsgBoxRequestID=\"{}\"><osci:NoMessageAvailable reason=\"{REASONS}{reason}\"/></osci:MsgBoxResponse>", esc(id)),
    }
}

fn selector_ids(req: &XmlElement) -> Vec<String> {
    req.child(NS_OSCI, "MsgSelector")
        .map(|s| {
            s.children_named(NS_WSA, "MessageID")
                .map(|m| m.text().trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn with_delivery(m: &MailboxMessage) -> MessageMetaData {
    let mut md = m.metadata.clone();
    if md.delivery_attributes.delivery.is_none() {
        md.delivery_attributes.delivery = Some(m.delivered_at.clone());
    }
    if md.delivery_attributes.initial_fetch.is_none() {
        md.delivery_attributes.initial_fetch = m.first_fetched_at.clone();
    }
    md.msg_size = md.msg_size.or(Some(m.size().max(1)));
    md
}

fn list_body(msgs: &[MailboxMessage], metadata_form: bool) -> String {
    let mut out = format!("<osci:MsgStatusList xmlns:osci=\"{NS_OSCI}\" xmlns:wsa=\"{NS_WSA}\">");
    for m in msgs {
        if metadata_form {
            with_delivery(m).write_xml(&mut out);
        } else {
            let scenario = m.metadata.qualifier.business_scenario.key().to_string();
            let _ = write!(
                out,
                "<osci:MsgAttributes><wsa:MessageID>{}</wsa:MessageID><osci:TypeOfBusinessScenario>{}</osci:TypeOfBusinessScenario><osci:MsgSize>{}</osci:MsgSize><osci:DeliveryTime>{}</osci:DeliveryTime>",
                esc(&m.metadata.message_id),
                esc(&scenario),
                m.size().min(i32::MAX as u64),
                esc(&m.delivered_at)
            );
            if let Some(f) = &m.first_fetched_at {
                let _ = write!(
                    out,
                    "<osci:InitialFetchedTime>{}</osci:InitialFetchedTime>",
                    esc(f)
                );
            }
            out.push_str("</osci:MsgAttributes>");
        }
    }
    out.push_str("</osci:MsgStatusList>");
    out
}

async fn page(
    inner: &Inner,
    account: &str,
    ids: Vec<String>,
    max: usize,
    metadata_form: bool,
    iter_id: Option<(String, i64)>,
) -> Result<(String, String), Fault> {
    let mut msgs = Vec::new();
    let mut rest = Vec::new();
    for id in ids {
        if msgs.len() >= max {
            rest.push(id);
            continue;
        }
        if let Some(m) = inner.mailboxes.get(account, &id).await.map_err(internal)? {
            msgs.push(m);
        }
    }
    let pending = rest.len();
    let it = MsgBoxIter {
        account: account.to_string(),
        pending: rest,
        delivered: Vec::new(),
        list_form_metadata: metadata_form,
        opened: 0,
    };
    let id = match iter_id {
        Some((id, opened)) => {
            save_iter(inner, &id, &MsgBoxIter { opened, ..it }).await?;
            id
        }
        None => new_iter(inner, it).await?,
    };
    let header = if msgs.is_empty() {
        msgbox_response(&id, None, "NoMatch")
    } else {
        msgbox_response(&id, Some(pending), "")
    };
    Ok((header, list_body(&msgs, metadata_form)))
}

async fn status_list(
    inner: &Arc<Inner>,
    call: &Call,
    action: &str,
    relates: Option<&str>,
) -> Result<Reply, Fault> {
    let req = body(call, NS_OSCI, "MsgBoxStatusListRequest")?;
    let max = match req.attr("maxListItems") {
        None => inner.settings.max_list_items,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                XtaFault::invalid_parameter(format!("maxListItems {v:?} is not a positive integer"))
            })?,
    };
    let metadata_form = req.attr("ListForm") == Some("MessageMetaData");
    let account = &call.account.name;
    let selected = selector_ids(req);
    let all: Vec<String> = inner
        .mailboxes
        .list(account)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|m| m.metadata.message_id)
        .filter(|id| selected.is_empty() || selected.contains(id))
        .collect();
    let (header, body) = page(inner, account, all, max, metadata_form, None).await?;
    Ok(empty_reply(action, relates, &header, &body))
}

async fn next_status_list(
    inner: &Arc<Inner>,
    call: &Call,
    action: &str,
    relates: Option<&str>,
) -> Result<Reply, Fault> {
    let req = body(call, NS_OSCI, "MsgBoxGetNextRequest")?;
    let rid = req
        .attr("MsgBoxRequestID")
        .ok_or_else(|| XtaFault::invalid_parameter("MsgBoxGetNextRequest lacks MsgBoxRequestID"))?
        .to_string();
    match load_iter(inner, &call.account.name, &rid).await? {
        Some(it) => {
            let (header, body) = page(
                inner,
                &call.account.name,
                it.pending,
                inner.settings.max_list_items,
                it.list_form_metadata,
                Some((rid, it.opened)),
            )
            .await?;
            Ok(empty_reply(action, relates, &header, &body))
        }
        None => Ok(empty_reply(
            action,
            relates,
            &msgbox_response(&rid, None, "RequestIdInvalid"),
            &list_body(&[], false),
        )),
    }
}

async fn get_message(
    inner: &Arc<Inner>,
    call: &Call,
    action: &str,
    relates: Option<&str>,
    next: bool,
) -> Result<Reply, Fault> {
    let account = call.account.name.clone();
    let open = inner.mailboxes.list(&account).await.map_err(internal)?;
    let (msg, rid, it) = if next {
        let req = body(call, NS_OSCI, "MsgBoxGetNextRequest")?;
        let rid = req
            .attr("MsgBoxRequestID")
            .ok_or_else(|| {
                XtaFault::invalid_parameter("MsgBoxGetNextRequest lacks MsgBoxRequestID")
            })?
            .to_string();
        let it = load_iter(inner, &account, &rid).await?.ok_or_else(|| {
            XtaFault::invalid_parameter(format!("MsgBoxRequestID {rid} is unknown"))
        })?;
        let mut seen = it.delivered.clone();
        seen.extend(
            req.children_named(NS_OSCI, "LastMsgReceived")
                .map(|e| e.text().trim().to_string()),
        );
        let m = open
            .iter()
            .find(|m| !seen.contains(&m.metadata.message_id))
            .cloned()
            .ok_or_else(|| XtaFault::unknown_message("no further message in this mailbox"))?;
        (m, rid, it)
    } else {
        let req = body(call, NS_OSCI, "MsgBoxFetchRequest")?;
        let ids = selector_ids(req);
        let m = match ids.first() {
            Some(id) => inner
                .mailboxes
                .get(&account, id)
                .await
                .map_err(internal)?
                .ok_or_else(|| {
                    XtaFault::unknown_message(format!(
                        "message {id} is not in this account's mailbox"
                    ))
                })?,
            None => open
                .first()
                .cloned()
                .ok_or_else(|| XtaFault::unknown_message("the mailbox is empty"))?,
        };
        let it = MsgBoxIter {
            account: account.clone(),
            ..Default::default()
        };
        let rid = new_iter(inner, it.clone()).await?;
        let it = MsgBoxIter {
            opened: chrono::Utc::now().timestamp(),
            ..it
        };
        (m, rid, it)
    };
    let (msg, rid, mut it) = (msg, rid, it);
    it.delivered.push(msg.metadata.message_id.clone());
    save_iter(inner, &rid, &it).await?;
    inner
        .mailboxes
        .mark_fetched(&account, &msg.metadata.message_id)
        .await
        .map_err(internal)?;
    let pending = open.len().saturating_sub(1);
    let mut headers = String::new();
    with_delivery(&msg).write_xml(&mut headers);
    headers.push_str(&msgbox_response(&rid, Some(pending), ""));
    let mut b = ResponseBuilder::new(call.mtom);
    let env = response_envelope(action, relates, &headers, "\u{0}");
    let (head, tail) = env
        .split_once('\u{0}')
        .ok_or_else(|| internal("envelope template"))?;
    b.xml(head);
    let _ = write!(
        b_xml(&mut b),
        "<xta:GenericContentContainer xmlns:xta=\"{NS_XTA}\"><xta:ContentContainer>"
    );
    for (tag, c) in std::iter::once(("Message", &msg.message))
        .chain(msg.attachments.iter().map(|a| ("Attachment", a)))
    {
        let mut s = format!("<xta:{tag}");
        c.description.write_attrs(&mut s);
        s.push('>');
        b.xml(&s);
        b.content(ContentSource::Blob(c.blob.clone()));
        b.xml(&format!("</xta:{tag}>"));
    }
    b.xml("</xta:ContentContainer></xta:GenericContentContainer>");
    b.xml(tail);
    Ok(Reply::ok(b))
}

fn b_xml(b: &mut ResponseBuilder) -> XmlSink<'_> {
    XmlSink(b)
}

struct XmlSink<'a>(&'a mut ResponseBuilder);

impl std::fmt::Write for XmlSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.xml(s);
        Ok(())
    }
}

async fn close(
    inner: &Arc<Inner>,
    call: &Call,
    action: &str,
    relates: Option<&str>,
) -> Result<Reply, Fault> {
    let req = body(call, NS_OSCI, "MsgBoxCloseRequest")?;
    let rid = req
        .attr("MsgBoxRequestID")
        .ok_or_else(|| XtaFault::invalid_parameter("MsgBoxCloseRequest lacks MsgBoxRequestID"))?
        .to_string();
    let account = &call.account.name;
    let mut ids: Vec<String> = req
        .children_named(NS_OSCI, "LastMsgReceived")
        .map(|e| e.text().trim().to_string())
        .collect();
    // Check every named message first, so that a bad id closes nothing.
    for id in &ids {
        if inner
            .mailboxes
            .get(account, id)
            .await
            .map_err(internal)?
            .is_none()
        {
            return Err(XtaFault::unknown_message(format!(
                "message {id} is not open in this account's mailbox"
            ))
            .into());
        }
    }
    // The request id must be one this account opened (and not closed):
    // another account cannot end a reader's fetch session, and a made-up
    // id is a fault, as for getNextMessage.
    let it = load_iter(inner, account, &rid)
        .await?
        .ok_or_else(|| XtaFault::invalid_parameter(format!("MsgBoxRequestID {rid} is unknown")))?;
    if ids.is_empty() {
        // Close what this iterator handed out.
        ids = it.delivered.clone();
    }
    for id in &ids {
        inner.mailboxes.close(account, id).await.map_err(internal)?;
    }
    drop_iter(inner, account, &rid).await?;
    Ok(empty_reply(action, relates, "", ""))
}
