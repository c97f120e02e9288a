//! The XTA mailbox poller (`xta-poller` channels): an [`InputAdapter`]
//! that fetches messages from an account's mailbox on a remote XTA server
//! (e.g. the Land's Nachrichtenbroker) and hands them to the hub.
//!
//! One poll:
//!
//! 1. `getStatusList` (`ListForm="MessageMetaData"`, at most
//!    `max_list_items`); messages whose service or message type is not in
//!    the configured filters are left in the box without being fetched;
//! 2. for each listed message: `getMessage` (MTOM parts streamed into the
//!    hub's blob store via [`Intake::stage_attachment`]) →
//!    [`Intake::submit`] with the XTA message id as idempotency key and
//!    the metadata as correlation ids (`xta.*`, `xta.transport`) → only
//!    after `submit` returned (the message is flushed to disk) `close`.
//!
//! **Exactly once.** A crash or a failed `close` after `submit` leaves the
//! message in the remote box; the next poll fetches it again and `submit`
//! answers `duplicate` (same channel, same message id, same payload), so
//! the hub routes it once; then `close` removes it.
//!
//! **Failures.** A failing list call ends the poll (next try after
//! `poll_interval`). A message that cannot be fetched or is refused by the
//! hub (too large, not XML/JSON, …) stays in the remote box and is
//! skipped for `10 × poll_interval` (at most 10 minutes) before it is
//! tried again; nothing is closed that was not stored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use drehscheibe_model::{
    AdapterError, BlobReader, BlobRef, InputAdapter, Intake, IntakeError, SenderIdentity,
    StagedAttachment, Submission,
};
use tokio::io::AsyncReadExt;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::client::{ClientError, FetchedMessage, PartSink, XtaClient, XtaClientSettings};
use crate::model::{keys, TransportInfo};

/// Settings of an [`XtaPoller`].
#[derive(Debug, Clone)]
pub struct XtaPollerSettings {
    /// Hub channel the messages are submitted on (also the adapter name).
    pub channel: String,
    /// The remote server and the polling account (mTLS identity, author
    /// header).
    pub client: XtaClientSettings,
    /// Time between polls.
    pub poll_interval: Duration,
    /// `maxListItems` of one `getStatusList`.
    pub max_list_items: u32,
    /// Only fetch these services (`Qualifier/Service`); empty: all.
    pub services: Vec<String>,
    /// Only fetch these message type codes; empty: all.
    pub message_types: Vec<String>,
}

/// Counters of one poll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollStats {
    /// Messages listed.
    pub listed: usize,
    /// Messages left in the box by the filters.
    pub filtered: usize,
    /// Newly stored in the hub.
    pub submitted: usize,
    /// Refetched and recognised as already stored.
    pub duplicates: usize,
    /// Closed on the remote server.
    pub closed: usize,
    /// Fetch, submit or close failed (left in the box).
    pub failed: usize,
    /// Skipped because an earlier failure is recent.
    pub deferred: usize,
    /// The server reported more messages than it listed.
    pub more_pending: bool,
}

/// Failure of one message.
#[derive(Debug, thiserror::Error)]
enum MessageError {
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("hub refused the message: {0}")]
    Intake(#[from] IntakeError),
    #[error("{0}")]
    Other(String),
}

/// Stages MTOM parts through the hub's intake (its attachment limit and
/// blob store).
struct IntakeSink(Arc<dyn Intake>);

#[async_trait]
impl PartSink for IntakeSink {
    async fn store(&self, reader: BlobReader) -> Result<BlobRef, String> {
        self.0
            .stage_attachment(reader)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The poller; see the module docs.
#[derive(Debug)]
pub struct XtaPoller {
    client: XtaClient,
    settings: XtaPollerSettings,
    /// Message id → do not try before.
    deferred: Mutex<HashMap<String, Instant>>,
}

impl XtaPoller {
    /// Build the poller (certificates are read now).
    pub fn new(settings: XtaPollerSettings) -> Result<Self, ClientError> {
        if settings.poll_interval.is_zero() {
            return Err(ClientError::Config("poll_interval must be > 0".into()));
        }
        let client = XtaClient::new(settings.client.clone())?;
        Ok(Self {
            client,
            settings,
            deferred: Mutex::new(HashMap::new()),
        })
    }

    fn retry_after(&self) -> Duration {
        (self.settings.poll_interval * 10).min(Duration::from_secs(600))
    }

    /// One poll (see the module docs). Errors only when the list call
    /// fails; per-message failures are counted and logged.
    pub async fn poll_once(
        &self,
        intake: &Arc<dyn Intake>,
        shutdown: &CancellationToken,
    ) -> Result<PollStats, ClientError> {
        let list = self
            .client
            .get_status_list(self.settings.max_list_items)
            .await?;
        let mut stats = PollStats {
            listed: list.messages.len(),
            more_pending: list.items_pending.is_some_and(|n| n > 0),
            ..Default::default()
        };
        let now = Instant::now();
        self.deferred.lock().await.retain(|_, until| *until > now);
        for meta in &list.messages {
            if shutdown.is_cancelled() {
                break;
            }
            let s = &self.settings;
            if (!s.services.is_empty() && !s.services.contains(&meta.qualifier.service))
                || (!s.message_types.is_empty()
                    && !s
                        .message_types
                        .contains(&meta.qualifier.message_type.code.code))
            {
                stats.filtered += 1;
                continue;
            }
            let id = meta.message_id.clone();
            if self.deferred.lock().await.contains_key(&id) {
                stats.deferred += 1;
                continue;
            }
            match self.take(intake, &id, &list.request_id, &mut stats).await {
                Ok(()) => {}
                Err(e) => {
                    stats.failed += 1;
                    tracing::warn!(channel = %s.channel, message_id = %id, error = %e, "xta-poller: message left in the remote mailbox");
                    self.deferred
                        .lock()
                        .await
                        .insert(id, Instant::now() + self.retry_after());
                }
            }
        }
        Ok(stats)
    }

    /// Fetch, store durably, then close one message.
    async fn take(
        &self,
        intake: &Arc<dyn Intake>,
        id: &str,
        list_request_id: &str,
        stats: &mut PollStats,
    ) -> Result<(), MessageError> {
        let sink = IntakeSink(intake.clone());
        let fetched = self.client.get_message(id, &sink).await?;
        if fetched.meta.message_id != id {
            return Err(MessageError::Other(format!(
                "asked for {id}, got {}",
                fetched.meta.message_id
            )));
        }
        let submission = self.submission(intake, &fetched).await?;
        let accepted = intake.submit(submission).await?;
        if accepted.duplicate {
            stats.duplicates += 1;
            tracing::info!(channel = %self.settings.channel, message_id = %id, hub_id = %accepted.id, "xta-poller: refetched message was already stored");
        } else {
            stats.submitted += 1;
        }
        let request_id = fetched.request_id.as_deref().unwrap_or(list_request_id);
        self.client.close(request_id, id).await?;
        stats.closed += 1;
        Ok(())
    }

    async fn submission(
        &self,
        intake: &Arc<dyn Intake>,
        f: &FetchedMessage,
    ) -> Result<Submission, MessageError> {
        let limit = intake.max_payload_bytes();
        if f.message.blob.size > limit {
            return Err(MessageError::Intake(IntakeError::TooLarge { limit }));
        }
        let mut reader = intake
            .blobs()
            .open(&f.message.blob)
            .await
            .map_err(|e| MessageError::Other(format!("reading the staged message: {e}")))?;
        let mut payload = Vec::with_capacity(f.message.blob.size as usize);
        (&mut reader)
            .take(limit + 1)
            .read_to_end(&mut payload)
            .await
            .map_err(|e| MessageError::Other(format!("reading the staged message: {e}")))?;
        if payload.len() as u64 > limit {
            return Err(MessageError::Intake(IntakeError::TooLarge { limit }));
        }
        let attachments = f
            .attachments
            .iter()
            .enumerate()
            .map(|(i, a)| StagedAttachment {
                name: a
                    .description
                    .content_description
                    .clone()
                    .or_else(|| a.description.filename.clone())
                    .or_else(|| a.description.id.clone())
                    .unwrap_or_else(|| format!("attachment-{}", i + 1)),
                filename: a.description.filename.clone(),
                content_type: a.description.content_type.clone(),
                blob: a.blob.clone(),
            })
            .collect();
        let mut correlation_ids = f.meta.correlation_ids();
        correlation_ids.insert(
            keys::ACCOUNT.into(),
            self.settings.client.author.value.clone(),
        );
        correlation_ids.insert(
            keys::TRANSPORT.into(),
            TransportInfo {
                metadata: f.meta.clone(),
                message: f.message.description.clone(),
                attachments: f
                    .attachments
                    .iter()
                    .map(|a| a.description.clone())
                    .collect(),
            }
            .to_json(),
        );
        Ok(Submission {
            channel: self.settings.channel.clone(),
            sender: SenderIdentity {
                adapter: "xta-poller".into(),
                principal: f.meta.author.value.clone(),
                remote_addr: reqwest::Url::parse(&self.settings.client.endpoints.msgbox)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string)),
            },
            content_type: f.message.description.content_type.clone(),
            payload: Bytes::from(payload),
            attachments,
            idempotency_key: Some(f.meta.message_id.clone()),
            correlation_ids,
        })
    }
}

#[async_trait]
impl InputAdapter for XtaPoller {
    fn name(&self) -> &str {
        &self.settings.channel
    }

    async fn run(
        self: Box<Self>,
        intake: Arc<dyn Intake>,
        shutdown: CancellationToken,
    ) -> Result<(), AdapterError> {
        if !intake.channel_exists(&self.settings.channel) {
            return Err(AdapterError {
                adapter: self.settings.channel.clone(),
                reason: format!("unknown channel {:?}", self.settings.channel),
            });
        }
        while !shutdown.is_cancelled() {
            let again = match self.poll_once(&intake, &shutdown).await {
                Ok(stats) => {
                    if stats.listed > 0 {
                        tracing::info!(channel = %self.settings.channel, ?stats, "xta-poller: poll");
                    }
                    stats.more_pending && stats.closed > 0
                }
                Err(e) => {
                    tracing::warn!(channel = %self.settings.channel, error = %e, "xta-poller: listing the remote mailbox failed");
                    false
                }
            };
            if again {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
        Ok(())
    }
}
