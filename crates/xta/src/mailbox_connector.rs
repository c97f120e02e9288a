//! The `xta-mailbox` connector: puts a routed message into the mailbox of
//! an account hosted by this hub's XTA server, where the party's
//! Fachverfahren fetches it over the MsgBoxPort (`getStatusList` →
//! `getMessage` → `close`).
//!
//! The document is stored in the hub's blob store (attachments already
//! are), the mailbox keeps metadata and blob references ([`Mailboxes`],
//! durable when `put` returns). Metadata comes from the configuration and
//! the message's own XTA metadata as described in
//! [`MetaDefaults`](crate::connector::MetaDefaults); the author must be
//! known (configured, or the original author of a message that arrived
//! over XTA).
//!
//! **Idempotency.** The mailbox message id is derived from the delivery's
//! idempotency key (`urn:de:xta:messageid:<server identity>:<32 hex>`), so a
//! retry of the same delivery generation finds its message already in the
//! box (also after it was fetched and closed) and does not add a second
//! one; a replay (new generation) puts a new message.

use std::sync::Arc;

use async_trait::async_trait;
use drehscheibe_model::{
    sha256_hex, BlobReader, Connector, DeliveryError, DeliveryReceipt, DeliveryRequest,
};

use crate::connector::{build_metadata, descriptions, MetaDefaults};
use crate::mailbox::{MailboxError, MailboxMessage, Mailboxes, PutOutcome, StoredContent};

/// Settings of an [`XtaMailboxConnector`].
#[derive(Debug, Clone)]
pub struct XtaMailboxConnectorSettings {
    /// Account (mailbox name) on this hub's XTA server.
    pub account: String,
    /// Metadata defaults (reader: usually the account's party id).
    pub meta: MetaDefaults,
    /// `server_identity` of the XTA channel hosting the mailbox: the
    /// message ids this connector creates are named after it.
    pub server_identity: String,
}

/// The `xta-mailbox` connector; see the module docs.
#[derive(Debug)]
pub struct XtaMailboxConnector {
    mailboxes: Arc<Mailboxes>,
    settings: XtaMailboxConnectorSettings,
}

/// The mailbox message id of a delivery: named after the hosting
/// server's identity, stable across retries of one delivery generation.
pub fn mailbox_message_id(server_identity: &str, idempotency_key: &str) -> String {
    let h = sha256_hex(idempotency_key.as_bytes());
    format!("urn:de:xta:messageid:{server_identity}:{}", &h[..32])
}

impl XtaMailboxConnector {
    /// A connector writing into `mailboxes` (the store the hub's XTA
    /// server serves, see [`Mailboxes::open`]).
    pub fn new(mailboxes: Arc<Mailboxes>, settings: XtaMailboxConnectorSettings) -> Self {
        Self {
            mailboxes,
            settings,
        }
    }
}

#[async_trait]
impl Connector for XtaMailboxConnector {
    fn kind(&self) -> &'static str {
        "xta-mailbox"
    }

    async fn deliver(&self, request: DeliveryRequest) -> Result<DeliveryReceipt, DeliveryError> {
        let account = &self.settings.account;
        let message_id =
            mailbox_message_id(&self.settings.server_identity, &request.idempotency_key());
        let metadata = build_metadata(&self.settings.meta, &request, &message_id, None)?;
        let size = request.document.len() as u64;
        let reader: BlobReader = Box::pin(std::io::Cursor::new(request.document.clone()));
        let blob = request
            .blobs
            .put(reader, size.max(1))
            .await
            .map_err(|e| DeliveryError::retryable(format!("storing the document: {e}")))?;
        let (mdesc, adescs) = descriptions(&request);
        let attachments = request
            .envelope
            .attachments
            .iter()
            .zip(adescs)
            .map(|(a, description)| StoredContent {
                description,
                blob: a.blob.clone(),
            })
            .collect();
        let message = MailboxMessage {
            metadata,
            message: StoredContent {
                description: mdesc,
                blob,
            },
            attachments,
            delivered_at: crate::mailbox::timestamp_now(),
            first_fetched_at: None,
        };
        match self.mailboxes.put(account, message).await {
            Ok(PutOutcome::Stored) => Ok(DeliveryReceipt {
                detail: format!("XTA mailbox {account}: {message_id}"),
            }),
            Ok(PutOutcome::AlreadyPresent) => Ok(DeliveryReceipt {
                detail: format!("XTA mailbox {account}: {message_id} (already there)"),
            }),
            Err(e @ MailboxError::InvalidAccount(_)) => {
                Err(DeliveryError::permanent(e.to_string()))
            }
            Err(e) => Err(DeliveryError::retryable(e.to_string())),
        }
    }
}
