use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{BlobRef, MessageId, MessageState};

/// Who handed the message to the hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderIdentity {
    /// Input adapter kind, e.g. `http`, `directory`, `fit-connect`.
    pub adapter: String,
    /// Authenticated principal (token name, certificate subject, folder).
    pub principal: String,
    /// Network peer, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_addr: Option<String>,
}

/// An attachment, stored as a content-addressed blob and referenced here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// Part name (multipart field name or file name).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    pub content_type: String,
    pub blob: BlobRef,
}

/// Everything the hub knows about a message besides its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: MessageId,
    /// Input channel the message arrived on (configured channel id).
    pub channel: String,
    pub sender: SenderIdentity,
    pub received_at: DateTime<Utc>,
    /// Media type of the primary payload (`application/xml`, `application/json`).
    pub content_type: String,
    /// Size of the primary payload in bytes.
    pub size: u64,
    /// Hex SHA-256 of the primary payload.
    pub sha256: String,
    /// Correlation ids supplied by the sender or the protocol (e.g.
    /// `x-correlation-id`, FIT-Connect submission id, XTA message id).
    #[serde(default)]
    pub correlation_ids: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Responsible organisation (tenant id), once routing found it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Kommune key the rule extracted (AGS/ARS or org id), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kommune_key: Option<String>,
    /// LeiKa key of the Verwaltungsleistung, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leistung: Option<String>,
    #[serde(default)]
    pub attachments: Vec<AttachmentRef>,
}

/// Exact rule version that acted on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRef {
    pub id: String,
    pub version: String,
}

impl std::fmt::Display for RuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.id, self.version)
    }
}

/// State of one delivery (one output document to one connector).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
    Dead,
}

/// One delivery of a routed message: an output document to one connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Output role named by the rule (e.g. `fachverfahren`, `dms`).
    pub target: String,
    /// Tenant whose connector receives it (may differ from the message's
    /// tenant when a Leistung is handed to a neighbour Kommune).
    pub tenant: String,
    /// Connector id within that tenant's configuration.
    pub connector: String,
    pub state: DeliveryState,
    /// Attempts in the current generation.
    pub attempts: u32,
    /// Incremented by every replay; attempts restart at 0.
    pub generation: u32,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    /// Suggested file name for file-like connectors.
    pub filename: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// What the far side answered on success (status, receipt id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// The connector's checkpoint of the current generation (see
    /// [`crate::Checkpoint`]); cleared by a replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// The document is a container that already holds the message's
    /// attachments it needs (an xdomea transfer container): the connector
    /// is handed the envelope without attachments, so it does not send
    /// them a second time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub packed: bool,
}

/// The stored state of a message: envelope, life-cycle state and deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub envelope: Envelope,
    pub state: MessageState,
    /// Why the message is `rejected`, `dead` or `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Rule version that routed the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleRef>,
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
    /// The Kommune that handed the Leistung to `envelope.tenant` when the
    /// message was delegated (`delegate_to`): it may read the message, not
    /// act on it (ADR 0004).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    /// A final answer the intake adapter gave the sender that cannot be
    /// taken back (e.g. `reject-submission` over FIT-Connect): a replay
    /// that would contradict it must be forced (see `Hub::replay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_answer: Option<String>,
    /// When retention deleted the payload, the output documents and the
    /// attachment references of this finished message (the record and its
    /// audit trail stay until their own retention ends). Such a message
    /// cannot be replayed, and its payload reads as gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_purged_at: Option<DateTime<Utc>>,
    /// Malware scanning of this message (ADR 0017); `None` while nothing
    /// was scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanState>,
    pub updated_at: DateTime<Utc>,
    /// Incremented by every stored change (optimistic concurrency, ETag).
    pub revision: u64,
}

/// What the malware scanner said about a message, and an operator's
/// release from quarantine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanState {
    /// The intake scanned payload and attachments and found them clean
    /// (the routing step does not scan them again).
    #[serde(default)]
    pub input_clean: bool,
    /// Malware found (the message is or was `quarantined`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<ScanFinding>,
    /// An operator released the message from quarantine: from then on no
    /// verdict holds it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<ScanRelease>,
}

/// Malware in a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanFinding {
    /// Which part: `payload`, `attachment <name>`, `output <target>`.
    pub part: String,
    /// The scanner's name of what it found.
    pub signature: String,
    /// The scanner (e.g. `clamd unix:/run/clamav/clamd.ctl`).
    pub scanner: String,
    pub at: DateTime<Utc>,
}

/// An operator's release of a quarantined message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRelease {
    pub by: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl MessageRecord {
    /// Whether an operator released this message from quarantine.
    pub fn scan_released(&self) -> bool {
        self.scan.as_ref().is_some_and(|s| s.released.is_some())
    }

    /// A freshly received message.
    pub fn received(envelope: Envelope) -> Self {
        let at = envelope.received_at;
        Self {
            envelope,
            state: MessageState::Received,
            reason: None,
            rule: None,
            deliveries: Vec::new(),
            requested_by: None,
            sender_answer: None,
            payload_purged_at: None,
            scan: None,
            updated_at: at,
            revision: 0,
        }
    }

    pub fn id(&self) -> MessageId {
        self.envelope.id
    }
}

/// One entry of the audit trail: every state transition and every
/// delivery attempt leaves one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub message_id: MessageId,
    pub at: DateTime<Utc>,
    /// Who acted: `intake:http:<principal>`, `engine`, `operator:<name>`.
    pub actor: String,
    /// What happened, e.g. `received`, `routed`, `delivery_attempt`, `replay`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<MessageState>,
    pub to: MessageState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleRef>,
    /// Delivery target, for delivery events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Human-readable detail (error text, receipt, reason).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

impl AuditEvent {
    pub fn new(
        message_id: MessageId,
        actor: impl Into<String>,
        action: impl Into<String>,
        from: Option<MessageState>,
        to: MessageState,
    ) -> Self {
        Self {
            message_id,
            at: Utc::now(),
            actor: actor.into(),
            action: action.into(),
            from,
            to,
            rule: None,
            target: None,
            detail: String::new(),
        }
    }

    pub fn with_rule(mut self, rule: Option<RuleRef>) -> Self {
        self.rule = rule;
        self
    }

    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}
