use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use drehscheibe_model::{
    Accepted, AuditEvent, BlobError, BlobReader, BlobRef, BlobStore, DeliveryState, DeliveryStatus,
    Envelope, Intake, IntakeError, MessageId, MessageRecord, MessageState, MessageStatus,
    Submission,
};
use drehscheibe_store::{AcceptOutcome, Effects, IdempotencyKey, Job, Store, StoreError};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::{ConnectorRegistry, Metrics, RoutingPolicy};

/// Largest payload whose intake check runs on the calling async thread
/// instead of the blocking pool (see `Hub::submit`).
const INLINE_CHECK_BYTES: usize = 2 * 1024;

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Channel ids that accept messages.
    pub channels: HashSet<String>,
    pub max_payload_bytes: u64,
    pub max_attachment_bytes: u64,
    /// Routing jobs run at once (CPU-bound: parsing, XPath, transforms),
    /// each on one of as many routing threads of the hub's own.
    pub route_workers: usize,
    /// Jobs in flight at once (routing + deliveries, incl. waiting ones).
    pub max_in_flight: usize,
    /// How long a claimed job stays leased to this node. The worker
    /// renews the lease every third of it while the job's work runs
    /// (waiting for memory or a connector slot included), so a job is
    /// claimed again only when its worker is gone.
    pub lease: Duration,
    /// How far a delivery is pushed back when its endpoint is saturated.
    pub busy_defer: Duration,
    /// Upper bound of the dispatcher's idle sleep.
    pub idle_poll: Duration,
    /// Time between connector health checks (default 60 s).
    pub health_interval: Duration,
    /// How long shutdown waits for in-flight work before releasing it.
    pub shutdown_grace: Duration,
    /// Time budget of routing one message (parse, recognition, routing,
    /// transforms). Over it the message ends `dead` with the reason
    /// "routing exceeded the time budget of N s". The budget runs from
    /// the start of the evaluation, after the wait for memory.
    pub route_budget: Duration,
    /// Memory budget for documents in flight (bytes): routing a message
    /// first reserves its estimated peak memory
    /// ([`drehscheibe_rules::routing_memory_estimate`], payload size ×
    /// 10 for XML, × 32 for JSON) from this budget, in MiB units, and
    /// waits while the budget is taken; a message whose estimate exceeds
    /// the whole budget ends `dead` with the reason instead of waiting
    /// forever.
    pub document_memory: u64,
    /// The retention sweeper ([`crate::retention`]); `None` (the default
    /// here) keeps everything.
    pub retention: Option<crate::RetentionSettings>,
    /// The malware scanner ([`crate::scanning`]); `None`: content is not
    /// scanned.
    pub scanning: Option<crate::Scanning>,
}

impl Default for HubSettings {
    fn default() -> Self {
        Self {
            channels: HashSet::new(),
            max_payload_bytes: 16 * 1024 * 1024,
            max_attachment_bytes: 256 * 1024 * 1024,
            route_workers: 2,
            max_in_flight: 256,
            lease: Duration::from_secs(600),
            busy_defer: Duration::from_millis(250),
            idle_poll: Duration::from_secs(1),
            health_interval: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            route_budget: Duration::from_secs(30),
            document_memory: 1 << 30,
            retention: None,
            scanning: None,
        }
    }
}

/// Engine failure.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Why a replay was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("message {0} not found")]
    NotFound(MessageId),
    #[error("message is {0}; only dead, delivered or rejected messages can be replayed")]
    NotReplayable(MessageState),
    /// The sender was given a final answer (e.g. a FIT-Connect
    /// `reject-submission`) that a replay would contradict.
    #[error("the sender was already told: {0}; replaying would contradict that answer (force the replay to deliver anyway)")]
    SenderAnswered(String),
    /// Retention deleted the payload: there is nothing to route or
    /// deliver again.
    #[error("the payload was deleted by retention at {0}; the message cannot be replayed")]
    PayloadPurged(chrono::DateTime<Utc>),
    #[error("store: {0}")]
    Store(StoreError),
}

/// The hub: intake for adapters, workers for routing and delivery.
pub struct Hub {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) router: Arc<dyn RoutingPolicy>,
    /// The connectors in force; swapped whole by a configuration reload
    /// ([`Hub::swap_connectors`]). A delivery holds its slot's `Arc`, so
    /// it finishes on the connector it started with.
    pub(crate) connectors: arc_swap::ArcSwap<ConnectorRegistry>,
    /// Tenants whose outputs are not scanned (`scan = "off"`), swapped
    /// with the configuration.
    pub(crate) scan_tenants_off: arc_swap::ArcSwap<std::collections::HashSet<String>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) settings: HubSettings,
    pub(crate) route_permits: Arc<Semaphore>,
    /// The threads that route (as many as `route_permits`).
    pub(crate) route_pool: crate::route_pool::RoutePool,
    /// [`HubSettings::document_memory`] in MiB permits.
    pub(crate) memory_permits: Arc<Semaphore>,
    wake: Notify,
    accepting: AtomicBool,
    /// Last connector health checks (see `health.rs`).
    pub(crate) health: crate::health::HealthBoard,
    /// What the running input channels report (see [`Hub::add_channel_status`]).
    channel_status:
        std::sync::RwLock<Vec<(String, Arc<dyn drehscheibe_model::health::ChannelStatus>)>>,
}

impl Hub {
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        router: Arc<dyn RoutingPolicy>,
        connectors: ConnectorRegistry,
        settings: HubSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            blobs,
            router,
            connectors: arc_swap::ArcSwap::from_pointee(connectors),
            scan_tenants_off: arc_swap::ArcSwap::from_pointee(
                settings
                    .scanning
                    .as_ref()
                    .map(|s| s.tenants_off.clone())
                    .unwrap_or_default(),
            ),
            metrics: Arc::new(Metrics::new()),
            route_permits: Arc::new(Semaphore::new(settings.route_workers.max(1))),
            route_pool: crate::route_pool::RoutePool::new(settings.route_workers.max(1)),
            memory_permits: Arc::new(Semaphore::new(memory_units(settings.document_memory))),
            settings,
            wake: Notify::new(),
            accepting: AtomicBool::new(true),
            health: crate::health::HealthBoard::default(),
            channel_status: Default::default(),
        })
    }

    /// The connectors in force.
    pub fn connectors(&self) -> Arc<ConnectorRegistry> {
        self.connectors.load_full()
    }

    /// Put a new set of connectors in force (configuration reload). Jobs
    /// already delivering keep the slot they hold; the next job looks its
    /// connector up in `registry`. Health results of connectors no longer
    /// configured are dropped.
    pub fn swap_connectors(&self, registry: ConnectorRegistry) {
        self.health
            .retain(|tenant, id| registry.get(tenant, id).is_some());
        self.connectors.store(Arc::new(registry));
    }

    /// Which tenants' outputs skip the malware scan (`scan = "off"`),
    /// swapped in with a reloaded configuration.
    pub fn set_scan_tenants_off(&self, tenants: std::collections::HashSet<String>) {
        self.scan_tenants_off.store(Arc::new(tenants));
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The largest payload the hub accepts (`[server] max_payload_bytes`).
    pub fn max_payload_bytes(&self) -> u64 {
        self.settings.max_payload_bytes
    }

    /// The channel ids configured, sorted.
    pub fn channels(&self) -> Vec<String> {
        let mut c: Vec<String> = self.settings.channels.iter().cloned().collect();
        c.sort();
        c
    }

    /// False once shutdown has begun.
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    /// Wake the dispatcher (new work was queued).
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Re-queue a `dead` or `delivered` message for delivery (dead
    /// deliveries only, or all of a delivered message), or a `rejected`
    /// one for routing. Same message id, new delivery generation, audit
    /// event naming `actor`.
    ///
    /// A message whose sender was given a final answer that cannot be
    /// taken back ([`MessageRecord::sender_answer`], e.g. a FIT-Connect
    /// `reject-submission`) is refused with [`ReplayError::SenderAnswered`]
    /// unless `force` is set; a forced replay says so in its audit event.
    pub async fn replay(
        &self,
        id: MessageId,
        actor: &str,
        force: bool,
    ) -> Result<MessageRecord, ReplayError> {
        let now = Utc::now();
        let actor = actor.to_owned();
        let mut refused = None;
        let mut answered: Option<String> = None;
        let mut purged = None;
        let result = self
            .store
            .update(id, &mut |r: &mut MessageRecord| {
                let from = r.state;
                if let Some(at) = r.payload_purged_at {
                    purged = Some(at);
                    return Err(StoreError::Aborted(format!(
                        "the payload was deleted by retention at {at}"
                    )));
                }
                if let (Some(answer), false) = (&r.sender_answer, force) {
                    answered = Some(answer.clone());
                    return Err(StoreError::Aborted(format!(
                        "the sender was already told: {answer}"
                    )));
                }
                let mut effects = Effects::default();
                let routed_ok = !r.deliveries.is_empty();
                match from {
                    MessageState::Dead | MessageState::Delivered if routed_ok => {
                        for (i, d) in r.deliveries.iter_mut().enumerate() {
                            let again = d.state == DeliveryState::Dead
                                || from == MessageState::Delivered;
                            if again {
                                d.generation += 1;
                                d.attempts = 0;
                                d.state = DeliveryState::Pending;
                                d.last_error = None;
                                d.next_attempt_at = None;
                                d.delivered_at = None;
                                d.receipt = None;
                                d.checkpoint = None;
                                effects.schedule.push((
                                    Job::Deliver {
                                        message: r.envelope.id,
                                        delivery: u32::try_from(i).unwrap_or(u32::MAX),
                                    },
                                    now,
                                ));
                            }
                        }
                        r.state = MessageState::Delivering;
                    }
                    MessageState::Dead | MessageState::Rejected => {
                        r.state = MessageState::Received;
                        effects
                            .schedule
                            .push((Job::Route { message: r.envelope.id }, now));
                    }
                    other => {
                        refused = Some(other);
                        return Err(StoreError::Aborted(format!(
                            "message is {other}; only dead, delivered or rejected messages can be replayed"
                        )));
                    }
                }
                r.reason = None;
                let mut event =
                    AuditEvent::new(r.envelope.id, actor.clone(), "replay", Some(from), r.state)
                        .with_rule(r.rule.clone());
                if let Some(answer) = &r.sender_answer {
                    event = event.with_detail(format!(
                        "forced although the sender was told: {answer}"
                    ));
                }
                effects.audit.push(event);
                Ok(effects)
            })
            .await;
        match result {
            Ok(rec) => {
                self.wake();
                Ok(rec)
            }
            Err(StoreError::NotFound(id)) => Err(ReplayError::NotFound(id)),
            Err(StoreError::Aborted(_)) if purged.is_some() => {
                Err(ReplayError::PayloadPurged(purged.unwrap_or(now)))
            }
            Err(StoreError::Aborted(_)) if answered.is_some() => {
                Err(ReplayError::SenderAnswered(answered.unwrap_or_default()))
            }
            Err(StoreError::Aborted(_)) if refused.is_some() => Err(ReplayError::NotReplayable(
                refused.unwrap_or(MessageState::Received),
            )),
            Err(e) => Err(ReplayError::Store(e)),
        }
    }

    /// Run the dispatcher until `shutdown` is cancelled; then stop taking
    /// work, give in-flight jobs `shutdown_grace` to finish, release the
    /// rest (they run again at the next start) and flush the store.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) -> Result<(), EngineError> {
        let released = self.store.release_leases().await?;
        if released > 0 {
            tracing::info!(released, "released job leases left by an earlier run");
        }
        let mut tasks: JoinSet<()> = JoinSet::new();
        let health = tokio::spawn(self.clone().health_loop(shutdown.clone()));
        let retention = self
            .settings
            .retention
            .clone()
            .map(|r| tokio::spawn(self.clone().retention_loop(r, shutdown.clone())));
        let max_in_flight = self.settings.max_in_flight.max(1);
        // Work queued by another instance of a shared store (its accepts,
        // its retries) arrives through the store's signal, not `wake`.
        let remote_work = self.store.work_signal();
        let remote_notified = || async {
            match &remote_work {
                Some(signal) => signal.notified().await,
                None => std::future::pending().await,
            }
        };
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            let room = max_in_flight.saturating_sub(tasks.len());
            if room == 0 {
                tokio::select! {
                    _ = tasks.join_next() => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            let now = Utc::now();
            let lease_until = now + chrono_dur(self.settings.lease);
            let claimed = match self.store.claim_due(now, room.min(64), lease_until).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "claiming due jobs failed; retrying in 1s");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    continue;
                }
            };
            if claimed.is_empty() {
                let wait = match self.store.next_due().await {
                    Ok(Some(due)) => (due - Utc::now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(self.settings.idle_poll),
                    _ => self.settings.idle_poll,
                };
                if wait.is_zero() {
                    tokio::task::yield_now().await;
                    continue;
                }
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = remote_notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            for c in claimed {
                let hub = self.clone();
                tasks.spawn(async move { hub.process(c.job).await });
            }
        }

        self.accepting.store(false, Ordering::SeqCst);
        let in_flight = tasks.len();
        tracing::info!(in_flight, "shutting down: waiting for in-flight work");
        let drained = tokio::time::timeout(self.settings.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                remaining = tasks.len(),
                "shutdown grace period over: releasing unfinished jobs for the next start"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        health.abort();
        if let Some(r) = retention {
            // Between two transactions: each batch is atomic either way.
            r.abort();
        }
        self.store.release_leases().await?;
        self.store.flush().await?;
        tracing::info!("engine stopped");
        Ok(())
    }

    fn refuse(&self, channel: &str, e: IntakeError) -> IntakeError {
        self.metrics.refused(channel);
        e
    }
}

/// Bytes in MiB permits, rounded up (at least 1, at most what a tokio
/// semaphore holds).
pub(crate) fn memory_units(bytes: u64) -> usize {
    let units = bytes.div_ceil(1 << 20).max(1);
    usize::try_from(units)
        .unwrap_or(usize::MAX)
        .min(Semaphore::MAX_PERMITS)
}

/// `d` as a chrono duration, at most a century: due times are `now +`
/// this, and a configured pause of 300,000 years must not overflow the
/// addition (a century is "never" for a queue).
pub(crate) fn chrono_dur(d: Duration) -> chrono::Duration {
    const CENTURY: chrono::Duration = chrono::Duration::days(36_525);
    chrono::Duration::from_std(d).map_or(CENTURY, |c| c.min(CENTURY))
}

/// `application/xml; charset=utf-8` → `application/xml`.
fn media_type(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[async_trait]
impl Intake for Hub {
    async fn note_sender_answer(
        &self,
        id: MessageId,
        actor: &str,
        answer: &str,
    ) -> Result<(), IntakeError> {
        self.store
            .update(id, &mut |r: &mut MessageRecord| {
                if r.sender_answer.as_deref() == Some(answer) {
                    return Ok(Effects::default());
                }
                r.sender_answer = Some(answer.to_owned());
                Ok(Effects {
                    audit: vec![AuditEvent::new(
                        r.envelope.id,
                        actor,
                        "sender-answered",
                        None,
                        r.state,
                    )
                    .with_rule(r.rule.clone())
                    .with_detail(answer)],
                    ..Effects::default()
                })
            })
            .await
            .map(|_| ())
            .map_err(|e| IntakeError::Unavailable(e.to_string()))
    }

    async fn status(&self, id: MessageId) -> Result<Option<MessageStatus>, IntakeError> {
        let rec = self
            .store
            .get(id)
            .await
            .map_err(|e| IntakeError::Unavailable(e.to_string()))?;
        Ok(rec.map(|r| MessageStatus {
            id: r.id(),
            state: r.state,
            reason: r.reason.clone(),
            rule: r.rule.as_ref().map(|x| x.to_string()),
            deliveries: r
                .deliveries
                .iter()
                .map(|d| DeliveryStatus {
                    target: d.target.clone(),
                    tenant: d.tenant.clone(),
                    connector: d.connector.clone(),
                    state: d.state,
                    attempts: d.attempts,
                    receipt: d.receipt.clone(),
                    last_error: d.last_error.clone(),
                })
                .collect(),
        }))
    }

    async fn submit(&self, mut s: Submission) -> Result<Accepted, IntakeError> {
        let started = Instant::now();
        if !self.is_accepting() {
            return Err(IntakeError::ShuttingDown);
        }
        if !self.settings.channels.contains(&s.channel) {
            return Err(self.refuse(&s.channel, IntakeError::UnknownChannel(s.channel.clone())));
        }
        let limit = self.settings.max_payload_bytes;
        if s.payload.len() as u64 > limit {
            return Err(self.refuse(&s.channel, IntakeError::TooLarge { limit }));
        }
        let content_type = media_type(&s.content_type);
        // The check is CPU work proportional to the payload (linear, up to
        // ≈ 25 µs per KiB for attribute-dense XML, docs/benchmarks.md): on
        // the blocking pool, never on the async threads that serve
        // /healthz and other requests — except for payloads of at most
        // INLINE_CHECK_BYTES, whose check (≤ 50 µs) costs less than the
        // hand-over to a pool thread and back.
        // XML in another encoding (ISO-8859-1, UTF-16, …) is transcoded
        // to UTF-8 here, once: the hub stores, routes and delivers UTF-8,
        // and the audit trail records the original encoding. The check
        // sees the declared media type with its `charset`; what is stored
        // is UTF-8, so routing needs only the bare media type.
        let check = |payload: &[u8], ct: &str| {
            drehscheibe_rules::validate(payload, ct)?;
            drehscheibe_rules::transcode_to_utf8(payload, ct)
        };
        let checked = if s.payload.len() <= INLINE_CHECK_BYTES {
            check(&s.payload, &s.content_type)
        } else {
            let payload = s.payload.clone();
            let ct = s.content_type.clone();
            tokio::task::spawn_blocking(move || check(&payload, &ct))
                .await
                .map_err(|e| IntakeError::Unavailable(format!("validation task: {e}")))?
        };
        let transcoded_from = match checked {
            Err(e) => return Err(self.refuse(&s.channel, crate::depot_router::intake_error(e))),
            Ok(None) => None,
            Ok(Some(t)) => {
                s.payload = Bytes::from(t.bytes);
                Some(t.from)
            }
        };
        for a in &s.attachments {
            match self.blobs.contains(&a.blob).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(IntakeError::Malformed(format!(
                        "attachment {:?} was not staged",
                        a.name
                    )))
                }
                Err(e) => return Err(IntakeError::Unavailable(e.to_string())),
            }
        }

        let sha256 = drehscheibe_model::sha256_hex(&s.payload);
        let envelope = Envelope {
            id: MessageId::new(),
            channel: s.channel.clone(),
            sender: s.sender.clone(),
            received_at: Utc::now(),
            content_type,
            size: s.payload.len() as u64,
            sha256: sha256.clone(),
            correlation_ids: s.correlation_ids,
            idempotency_key: s.idempotency_key.clone(),
            tenant: None,
            kommune_key: None,
            leistung: None,
            attachments: s.attachments.into_iter().map(Into::into).collect(),
        };
        let mut record = MessageRecord::received(envelope);
        // Malware scanning while the sender waits (see `scanning`): a
        // clean verdict spares routing the scan, a finding quarantines the
        // message once it is stored, no verdict leaves it to routing.
        let mut finding = None;
        if let Some(scanning) = self
            .settings
            .scanning
            .as_ref()
            .filter(|sc| sc.scans_channel(&s.channel))
        {
            match self
                .scan_input(scanning, &record.envelope, &s.payload)
                .await
            {
                Ok(None) => {
                    record.scan = Some(drehscheibe_model::ScanState {
                        input_clean: true,
                        ..Default::default()
                    });
                }
                Ok(Some(f)) => finding = Some(f),
                Err(e) => {
                    tracing::warn!(error = %e, channel = %s.channel, "no verdict from the malware scanner at intake; routing scans the message");
                }
            }
        }
        let audit = AuditEvent::new(
            record.id(),
            format!("intake:{}:{}", s.sender.adapter, s.sender.principal),
            "received",
            None,
            MessageState::Received,
        )
        .with_detail(match transcoded_from {
            None => format!(
                "{} bytes {} on channel {}",
                record.envelope.size, record.envelope.content_type, s.channel
            ),
            Some(from) => format!(
                "{} bytes {} on channel {}, transcoded from {from} to UTF-8",
                record.envelope.size, record.envelope.content_type, s.channel
            ),
        });
        let idempotency = s.idempotency_key.map(|key| IdempotencyKey {
            channel: s.channel.clone(),
            sender: IdempotencyKey::sender_of(&s.sender),
            key,
            payload_sha256: sha256,
        });
        let outcome = self
            .store
            .accept(&record, s.payload, audit, idempotency.clone())
            .await
            .map_err(|e| IntakeError::Unavailable(e.to_string()))?;
        // The record is durable now: its attachments are referenced, a
        // duplicate's were never stored.
        let staged = record.envelope.attachments.iter().map(|a| &a.blob);
        for blob in staged {
            let ended = match outcome {
                AcceptOutcome::Created => self.blobs.keep_staged(blob).await,
                AcceptOutcome::Duplicate(_) => self.blobs.discard_staged(blob).await,
                AcceptOutcome::KeyConflict(_) => Ok(()),
            };
            if let Err(e) = ended {
                tracing::warn!(sha256 = %blob.sha256, error = %e, "could not end the staging of an attachment");
            }
        }
        if outcome == AcceptOutcome::Created {
            self.metrics.received(&s.channel);
        }
        if let (AcceptOutcome::Created, Some(finding)) = (&outcome, &finding) {
            let id = record.id();
            let answer = "refused as malware at intake, while the sender waited";
            self.quarantine(id, Some(Job::Route { message: id }), finding, Some(answer))
                .await
                .map_err(|e| IntakeError::Unavailable(e.to_string()))?;
            return Err(IntakeError::Infected {
                id,
                part: finding.part.clone(),
                signature: finding.signature.clone(),
            });
        }
        match outcome {
            AcceptOutcome::Created => {
                self.metrics.intake_latency(started.elapsed().as_secs_f64());
                self.wake();
                Ok(Accepted {
                    id: record.id(),
                    duplicate: false,
                })
            }
            AcceptOutcome::Duplicate(id) => Ok(Accepted {
                id,
                duplicate: true,
            }),
            AcceptOutcome::KeyConflict(_) => Err(self.refuse(
                &s.channel,
                IntakeError::IdempotencyConflict(idempotency.map(|k| k.key).unwrap_or_default()),
            )),
        }
    }

    async fn stage_attachment(&self, reader: BlobReader) -> Result<BlobRef, IntakeError> {
        let limit = self.settings.max_attachment_bytes;
        self.blobs.stage(reader, limit).await.map_err(|e| match e {
            BlobError::TooLarge { limit } => IntakeError::TooLarge { limit },
            other => IntakeError::Unavailable(other.to_string()),
        })
    }

    async fn discard_staged(&self, blobs: &[BlobRef]) {
        for blob in blobs {
            if let Err(e) = self.blobs.discard_staged(blob).await {
                tracing::warn!(sha256 = %blob.sha256, error = %e, "could not remove a staged attachment; the next start sweeps it");
            }
        }
    }

    fn max_payload_bytes(&self) -> u64 {
        self.settings.max_payload_bytes
    }

    fn max_attachment_bytes(&self) -> u64 {
        self.settings.max_attachment_bytes
    }

    fn channel_exists(&self, channel: &str) -> bool {
        self.settings.channels.contains(channel)
    }

    fn blobs(&self) -> Arc<dyn BlobStore> {
        self.blobs.clone()
    }
}

/// The status the input channels report (counters for `/metrics`, lines
/// for `/readyz`), registered by the composition root as it builds them.
impl Hub {
    /// Register what channel `channel` reports while it runs.
    pub fn add_channel_status(
        &self,
        channel: String,
        status: Arc<dyn drehscheibe_model::health::ChannelStatus>,
    ) {
        if let Ok(mut v) = self.channel_status.write() {
            v.push((channel, status));
        }
    }

    /// Copy the channels' own counters into the metrics (before encoding).
    pub fn sync_channel_metrics(&self) {
        let Ok(v) = self.channel_status.read() else {
            return;
        };
        for (channel, status) in v.iter() {
            for (event, value) in status.counters() {
                self.metrics.channel_counter(channel, event, value);
            }
        }
    }

    /// The channels' lines for `/readyz`, each prefixed with its channel.
    pub fn channel_attention(&self) -> Vec<String> {
        let Ok(v) = self.channel_status.read() else {
            return Vec::new();
        };
        v.iter()
            .flat_map(|(channel, status)| {
                status
                    .attention()
                    .into_iter()
                    .map(move |line| format!("channel {channel}: {line}"))
            })
            .collect()
    }
}
