//! The XTA client connector (`type = "xta"`): delivers a routed document
//! to a remote XTA 2 server as the tenant's account.
//!
//! One delivery attempt:
//!
//! 1. `createMessageId` (once per delivery generation: the id is saved as
//!    the delivery's durable [`Checkpoint`](drehscheibe_model::Checkpoint)
//!    before `sendMessage`, and every later attempt — after a timeout or
//!    a restart — sends with the same id);
//! 2. `sendMessage`: `MessageMetaData` header (see [`MetaDefaults`] for
//!    where each field comes from), the document as `Message` and the
//!    envelope's attachments as `Attachment`s, all as MTOM parts streamed
//!    from memory and the blob store;
//! 3. `getTransportReport` every `report_poll_interval` until the status
//!    leaves 0 (open) or `report_wait` has passed: 1 (green) and 2
//!    (yellow) end the delivery with a receipt naming the message id and
//!    the status; 3 (red) is a permanent failure carrying the report's
//!    errors; still 0 is a success "accepted, report open".
//!
//! **Errors.** Network failures, HTTP 5xx/408/429 without a fault and
//! `XTAWSTechnicalProblemException` are retryable; `PermissionDenied`,
//! `ParameterIsNotValid`, `MessageSchemaViolation`,
//! `MessageVirusDetection`, `SyncAsync` and malformed answers are
//! permanent (dead). A retry whose `sendMessage` is answered with
//! `ParameterIsNotValid` 9024 ("MessageID already used") for the id of an
//! earlier attempt of the same generation counts as sent: the earlier
//! attempt arrived although its answer was lost.
//!
//! **Limits.** The transport report is read for a bounded time only; a
//! report that stays open counts as delivered.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use drehscheibe_model::{Connector, DeliveryError, DeliveryReceipt, DeliveryRequest};

use crate::client::{
    ClientError, FaultKind, OutgoingPart, PartSource, XtaClient, XtaClientSettings,
};
use crate::model::{
    keys, BusinessScenario, ContentDescription, DeliveryAttributes, KeyCode, MessageMetaData,
    MessageType, PartyIdentifier, Qualifier, TransportInfo,
};

/// Default `listURI` of message type codes (payload root element names).
pub const DEFAULT_MESSAGE_TYPE_LIST_URI: &str = "urn:de:payloadSchema:elementName";
/// Default `listVersionID` of message type codes.
pub const DEFAULT_MESSAGE_TYPE_LIST_VERSION: &str = "1.0";

/// Configured metadata and fallbacks. Each field is taken from, in order:
/// the configured value here; the message's own XTA metadata when it
/// arrived over XTA (`xta.transport`, else the single `xta.*`
/// correlation ids); a derived default (message type code = the
/// document's root element name, payload schema = its namespace). A
/// missing reader or service is a permanent failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaDefaults {
    /// `Originators/Author` (the `xta` connector always uses its account).
    pub author: Option<PartyIdentifier>,
    /// `Destinations/Reader`.
    pub reader: Option<PartyIdentifier>,
    /// `Originators/Sender`.
    pub sender: Option<PartyIdentifier>,
    /// `Qualifier/Service`.
    pub service: Option<String>,
    /// `Qualifier/BusinessScenario`.
    pub business_scenario: Option<BusinessScenario>,
    /// `Qualifier/MessageType/code`.
    pub message_type: Option<String>,
    /// `listURI` of the message type (default [`DEFAULT_MESSAGE_TYPE_LIST_URI`]).
    pub message_type_list_uri: Option<String>,
    /// `listVersionID` of the message type (default `1.0`).
    pub message_type_list_version: Option<String>,
    /// `payloadSchema`.
    pub payload_schema: Option<String>,
    /// `Qualifier/Subject`.
    pub subject: Option<String>,
}

/// Root element `(namespace, local name)` of an XML document, if it is one.
pub fn root_element(doc: &[u8]) -> Option<(Option<String>, String)> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    let mut r = quick_xml::NsReader::from_reader(doc);
    loop {
        match r.read_resolved_event().ok()? {
            (ns, Event::Start(e)) | (ns, Event::Empty(e)) => {
                let ns = match ns {
                    ResolveResult::Bound(n) => {
                        Some(String::from_utf8_lossy(n.as_ref()).into_owned())
                    }
                    _ => None,
                };
                return Some((
                    ns,
                    String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                ));
            }
            (_, Event::Eof) | (_, Event::DocType(_)) => return None,
            _ => {}
        }
    }
}

/// Build the metadata of an outgoing message (see [`MetaDefaults`]).
pub fn build_metadata(
    d: &MetaDefaults,
    request: &DeliveryRequest,
    message_id: &str,
    author: Option<&PartyIdentifier>,
) -> Result<MessageMetaData, DeliveryError> {
    let ids: &BTreeMap<String, String> = &request.envelope.correlation_ids;
    let transport = TransportInfo::from_correlation_ids(ids).ok();
    let orig = transport.as_ref().map(|t| &t.metadata);
    let from_ids = |k: &str| ids.get(k).filter(|v| !v.trim().is_empty()).cloned();
    let party_from_ids = |k: &str| from_ids(k).map(|v| PartyIdentifier::new(v, "xoev".to_string()));

    let author = author
        .cloned()
        .or_else(|| d.author.clone())
        .or_else(|| orig.map(|m| m.author.clone()))
        .or_else(|| party_from_ids(keys::AUTHOR))
        .ok_or_else(|| DeliveryError::permanent("xta: no author configured or known"))?;
    let reader = d
        .reader
        .clone()
        .or_else(|| orig.map(|m| m.reader.clone()))
        .or_else(|| party_from_ids(keys::READER))
        .ok_or_else(|| DeliveryError::permanent("xta: no reader configured or known"))?;
    let service = d
        .service
        .clone()
        .or_else(|| orig.map(|m| m.qualifier.service.clone()))
        .or_else(|| from_ids(keys::SERVICE))
        .ok_or_else(|| DeliveryError::permanent("xta: no service configured or known"))?;
    let business_scenario = d
        .business_scenario
        .clone()
        .or_else(|| orig.map(|m| m.qualifier.business_scenario.clone()))
        .or_else(|| from_ids(keys::BUSINESS_SCENARIO).map(BusinessScenario::Undefined))
        .unwrap_or_else(|| BusinessScenario::Undefined(service.clone()));
    let root = root_element(&request.document);
    let orig_type = orig.map(|m| &m.qualifier.message_type);
    let code = d
        .message_type
        .clone()
        .or_else(|| orig_type.map(|t| t.code.code.clone()))
        .or_else(|| from_ids(keys::MESSAGE_TYPE))
        .or_else(|| root.as_ref().map(|(_, l)| l.clone()))
        .ok_or_else(|| {
            DeliveryError::permanent("xta: no message type configured and the document is not XML")
        })?;
    let payload_schema = d
        .payload_schema
        .clone()
        .or_else(|| orig_type.map(|t| t.payload_schema.clone()))
        .or_else(|| from_ids(keys::PAYLOAD_SCHEMA))
        .or_else(|| root.as_ref().and_then(|(ns, _)| ns.clone()))
        .ok_or_else(|| {
            DeliveryError::permanent(
                "xta: no payload schema configured and the document has no namespace",
            )
        })?;
    let list_uri = d
        .message_type_list_uri
        .clone()
        .or_else(|| orig_type.map(|t| t.code.list_uri.clone()))
        .unwrap_or_else(|| DEFAULT_MESSAGE_TYPE_LIST_URI.to_string());
    let list_version_id = d
        .message_type_list_version
        .clone()
        .or_else(|| orig_type.map(|t| t.code.list_version_id.clone()))
        .unwrap_or_else(|| DEFAULT_MESSAGE_TYPE_LIST_VERSION.to_string());
    let size = request.document.len() as u64
        + request
            .envelope
            .attachments
            .iter()
            .map(|a| a.blob.size)
            .sum::<u64>();
    Ok(MessageMetaData {
        delivery_attributes: DeliveryAttributes {
            origin: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            ..Default::default()
        },
        author,
        sender: d.sender.clone(),
        reply_to: None,
        reader,
        message_id: message_id.to_string(),
        in_reply_to: Vec::new(),
        qualifier: Qualifier {
            subject: d
                .subject
                .clone()
                .or_else(|| orig.and_then(|m| m.qualifier.subject.clone())),
            service,
            business_scenario,
            message_type: MessageType {
                code: KeyCode {
                    code,
                    name: None,
                    list_uri,
                    list_version_id,
                },
                payload_schema,
            },
        },
        msg_size: Some(size).filter(|s| *s > 0),
        test_msg: None,
    })
}

/// Content descriptions of the document and the attachments.
pub(crate) fn descriptions(
    request: &DeliveryRequest,
) -> (ContentDescription, Vec<ContentDescription>) {
    let message = ContentDescription {
        content_type: request.content_type.clone(),
        filename: Some(request.filename.clone()).filter(|f| !f.is_empty()),
        size: Some(request.document.len() as u64).filter(|n| *n > 0),
        ..Default::default()
    };
    let attachments = request
        .envelope
        .attachments
        .iter()
        .map(|a| ContentDescription {
            content_type: a.content_type.clone(),
            filename: a.filename.clone().or_else(|| Some(a.name.clone())),
            content_description: Some(a.name.clone()).filter(|n| !n.is_empty()),
            size: Some(a.blob.size).filter(|n| *n > 0),
            ..Default::default()
        })
        .collect();
    (message, attachments)
}

/// Settings of an [`XtaConnector`].
#[derive(Debug, Clone)]
pub struct XtaConnectorSettings {
    /// The remote server and the tenant's account (its identity is the
    /// author of every message).
    pub client: XtaClientSettings,
    /// Metadata defaults (`author` is ignored: the account is the author).
    pub meta: MetaDefaults,
    /// How long one attempt waits for a final transport report.
    pub report_wait: Duration,
    /// Time between `getTransportReport` calls.
    pub report_poll_interval: Duration,
    /// Count the delivery done only on a final transport report (status
    /// 1, 2 or 3): a report still open after `report_wait` (or none) is a
    /// retryable failure, and later attempts only ask for the report
    /// again. For bridges whose upstream acknowledgement cannot be taken
    /// back (a FIT-Connect intake in front accepts only once this
    /// delivery is done).
    pub require_final_report: bool,
}

/// The checkpoint of a delivery: the message id it sends with.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Pending {
    message_id: String,
    /// `sendMessage` succeeded (saved only with `require_final_report`,
    /// so later attempts just ask for the report).
    #[serde(default)]
    sent: bool,
}

/// The `xta` connector; see the module docs.
#[derive(Debug)]
pub struct XtaConnector {
    client: XtaClient,
    settings: XtaConnectorSettings,
}

/// Why a connector could not be built.
#[derive(Debug, thiserror::Error)]
#[error("xta connector: {0}")]
pub struct ConnectorError(pub String);

impl XtaConnector {
    /// Build the connector (certificates are read now).
    pub fn new(settings: XtaConnectorSettings) -> Result<Self, ConnectorError> {
        let client =
            XtaClient::new(settings.client.clone()).map_err(|e| ConnectorError(e.to_string()))?;
        Ok(Self { client, settings })
    }

    async fn attempt(&self, mut request: DeliveryRequest) -> Result<String, DeliveryError> {
        let known = request
            .checkpoint
            .value()
            .map(|v| {
                serde_json::from_str::<Pending>(v).map_err(|e| {
                    DeliveryError::permanent(format!(
                        "the delivery's checkpoint cannot be read ({e}); replay the message to start over"
                    ))
                })
            })
            .transpose()?;
        // An earlier attempt of this generation sent (or may have sent)
        // with this id.
        let was_tried = known.is_some();
        let p = match known {
            Some(p) => p,
            None => {
                let p = Pending {
                    message_id: self.client.create_message_id().await?,
                    sent: false,
                };
                // Durable before sendMessage: every later attempt sends
                // with the same id, so the far side sees one message.
                let value = serde_json::to_string(&p).map_err(|e| {
                    DeliveryError::permanent(format!("encoding the checkpoint: {e}"))
                })?;
                request.checkpoint.save(value).await?;
                p
            }
        };
        if p.sent {
            return self.report(&p.message_id).await;
        }
        let request = &mut request;
        {
            let author = self.client.settings().author.clone();
            let meta = build_metadata(&self.settings.meta, request, &p.message_id, Some(&author))?;
            let (mdesc, adescs) = descriptions(request);
            let message = OutgoingPart {
                description: mdesc,
                source: PartSource::Bytes(request.document.clone()),
            };
            let attachments = request
                .envelope
                .attachments
                .iter()
                .zip(adescs)
                .map(|(a, description)| OutgoingPart {
                    description,
                    source: PartSource::Blob {
                        store: request.blobs.clone(),
                        blob: a.blob.clone(),
                    },
                })
                .collect();
            match self.client.send_message(&meta, message, attachments).await {
                Ok(()) => {}
                Err(ClientError::Fault { fault, .. })
                    if was_tried
                        && fault.kind == FaultKind::ParameterIsNotValid
                        && fault.code.as_deref() == Some("9024") =>
                {
                    tracing::info!(message_id = %p.message_id, "xta: message id already used by an earlier attempt: counted as sent");
                }
                Err(e) => return Err(e.into()),
            }
            if self.settings.require_final_report {
                let sent = Pending {
                    message_id: p.message_id.clone(),
                    sent: true,
                };
                let value = serde_json::to_string(&sent).map_err(|e| {
                    DeliveryError::permanent(format!("encoding the checkpoint: {e}"))
                })?;
                request.checkpoint.save(value).await?;
            }
        }
        self.report(&p.message_id).await
    }

    async fn report(&self, id: &str) -> Result<String, DeliveryError> {
        let deadline = Instant::now() + self.settings.report_wait;
        loop {
            let report = match self.client.get_transport_report(id).await {
                Ok(r) => r,
                Err(e) if self.settings.require_final_report => {
                    return Err(DeliveryError::retryable(format!(
                        "XTA {id} sent; transport report unavailable: {e}"
                    )))
                }
                Err(e) => return Ok(format!("XTA {id} sent; transport report unavailable: {e}")),
            };
            let records = |list: &[crate::client::ReportRecord]| {
                list.iter()
                    .map(|r| {
                        if r.code.is_empty() {
                            r.reason.clone()
                        } else {
                            format!("{} {}", r.code, r.reason)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            match report.status {
                0 if Instant::now() < deadline => {
                    tokio::time::sleep(self.settings.report_poll_interval).await;
                }
                0 if self.settings.require_final_report => {
                    return Err(DeliveryError::retryable(format!(
                        "XTA {id} sent, awaiting a final transport report (status 0)"
                    )))
                }
                0 => {
                    return Ok(format!(
                        "XTA {id} accepted; transport report open (status 0)"
                    ))
                }
                1 => return Ok(format!("XTA {id} delivered (transport report status 1)")),
                2 => {
                    return Ok(format!(
                        "XTA {id} delivered with warnings (status 2): {}",
                        records(&report.warnings)
                    ))
                }
                s => {
                    return Err(DeliveryError::permanent(format!(
                        "XTA {id}: transport report status {s}: {}",
                        records(&report.errors)
                    )))
                }
            }
        }
    }
}

#[async_trait]
impl Connector for XtaConnector {
    fn kind(&self) -> &'static str {
        "xta"
    }

    async fn deliver(&self, request: DeliveryRequest) -> Result<DeliveryReceipt, DeliveryError> {
        let detail = self.attempt(request).await?;
        Ok(DeliveryReceipt { detail })
    }

    /// `CheckAccountActive` (the XTA management operation meant for this):
    /// the server answers and knows the account.
    async fn healthcheck(&self) -> drehscheibe_model::Health {
        let health = match self.client.check_account_active().await {
            Ok(()) => drehscheibe_model::Health::up("XTA CheckAccountActive: active"),
            Err(e) => drehscheibe_model::Health::down(format!("XTA CheckAccountActive: {e}")),
        };
        let cert = self
            .client
            .settings()
            .client_cert_pem
            .as_ref()
            .map(|(c, _)| c.as_slice());
        health.with_cert(cert)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_element_of_documents() {
        assert_eq!(
            root_element(b"<?xml version=\"1.0\"?><!-- c --><a:X xmlns:a=\"urn:x\"/>"),
            Some((Some("urn:x".into()), "X".into()))
        );
        assert_eq!(root_element(b"<Y/>"), Some((None, "Y".into())));
        assert_eq!(root_element(b"{\"json\": true}"), None);
    }
}
