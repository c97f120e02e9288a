//! Processing of one claimed job: routing or one delivery attempt.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use drehscheibe_rules::budget;

use chrono::Utc;
use drehscheibe_config::RetryPolicy;
use drehscheibe_model::{
    AuditEvent, Checkpoint, CheckpointSink, Delivery, DeliveryError, DeliveryRequest,
    DeliveryState, MessageId, MessageRecord, MessageState,
};
use drehscheibe_store::{Effects, Job, StoreError};
use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::hub::{chrono_dur, memory_units, Hub};
use crate::{RouteFailure, RoutePlan};

const ACTOR: &str = "engine";

/// Where a connector's [`Checkpoint`] goes: onto the delivery's record,
/// in one store update with a `checkpoint` audit event — durable before
/// the connector takes the step it guards. A checkpoint of a generation
/// that a replay has since replaced is refused.
struct RecordCheckpoint {
    store: Arc<dyn drehscheibe_store::Store>,
    id: MessageId,
    index: u32,
    generation: u32,
    actor: Arc<str>,
}

#[async_trait::async_trait]
impl CheckpointSink for RecordCheckpoint {
    async fn save(&self, value: &str) -> Result<(), String> {
        let (index, generation) = (self.index as usize, self.generation);
        self.store
            .update(self.id, &mut |r: &mut MessageRecord| {
                let state = r.state;
                let rule = r.rule.clone();
                let Some(d) = r.deliveries.get_mut(index) else {
                    return Err(StoreError::Aborted(format!("no delivery #{index}")));
                };
                if d.generation != generation {
                    return Err(StoreError::Aborted(
                        "the delivery was replayed meanwhile".into(),
                    ));
                }
                d.checkpoint = Some(value.to_owned());
                Ok(Effects {
                    audit: vec![AuditEvent::new(
                        r.envelope.id,
                        self.actor.as_ref(),
                        "checkpoint",
                        None,
                        state,
                    )
                    .with_rule(rule)
                    .with_target(d.target.clone())
                    .with_detail(value.chars().take(500).collect::<String>())],
                    ..Effects::default()
                })
            })
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
/// Pause before a job whose processing hit an internal error runs again.
const INTERNAL_RETRY: Duration = Duration::from_secs(5);
/// How long past its time budget a routing step may take to notice the
/// deadline before the engine settles the message without waiting.
const ROUTE_STOP_GRACE: Duration = Duration::from_secs(2);

/// Aggregate message state from its deliveries.
pub(crate) fn aggregate(deliveries: &[Delivery]) -> MessageState {
    let in_progress = deliveries
        .iter()
        .any(|d| matches!(d.state, DeliveryState::Pending | DeliveryState::Failed));
    if in_progress {
        if deliveries.iter().any(|d| d.state == DeliveryState::Failed) {
            MessageState::Failed
        } else {
            MessageState::Delivering
        }
    } else if deliveries.iter().any(|d| d.state == DeliveryState::Dead) {
        MessageState::Dead
    } else {
        MessageState::Delivered
    }
}

/// `units` permits of `semaphore`, and whether they had to be waited for;
/// `None` once the semaphore is closed.
pub(crate) async fn acquire(
    semaphore: &Arc<Semaphore>,
    units: u32,
) -> Option<(OwnedSemaphorePermit, bool)> {
    if let Ok(permit) = semaphore.clone().try_acquire_many_owned(units) {
        return Some((permit, false));
    }
    let permit = semaphore.clone().acquire_many_owned(units).await.ok()?;
    Some((permit, true))
}

fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl Hub {
    pub(crate) async fn process(self: Arc<Self>, job: Job) {
        let work = async {
            match job {
                Job::Route { message } => self.route_job(message, job).await,
                Job::Deliver { message, delivery } => {
                    self.deliver_job(message, delivery, job).await
                }
            }
        };
        let result = self.keep_leased(job, work).await;
        if let Err(e) = result {
            tracing::error!(?job, error = %e, "job failed internally; retrying later");
            let retry = Effects {
                schedule: vec![(job, Utc::now() + chrono_dur(INTERNAL_RETRY))],
                ..Effects::default()
            };
            let id = job.message();
            let r = self
                .store
                .update(id, &mut |_: &mut MessageRecord| {
                    Ok(Effects {
                        schedule: retry.schedule.clone(),
                        ..Effects::default()
                    })
                })
                .await;
            if let Err(e) = r {
                tracing::error!(?job, error = %e, "could not reschedule job; it runs again after restart");
            }
        }
    }

    /// Runs a claimed job's work and renews its lease every third of the
    /// lease while the work runs — routing may wait long for the memory
    /// budget, a delivery for a connector slot — so the claim loop never
    /// hands the same job to a second worker while the first still holds
    /// it.
    async fn keep_leased<T>(&self, job: Job, work: impl std::future::Future<Output = T>) -> T {
        let every = (self.settings.lease / 3).max(Duration::from_millis(10));
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = renew.tick() => {
                    let until = Utc::now() + chrono_dur(self.settings.lease);
                    match self.store.renew_lease(job, until).await {
                        Ok(true) => tracing::debug!(?job, "lease renewed"),
                        Ok(false) => tracing::warn!(?job, "the job's lease was gone while its work ran"),
                        Err(e) => tracing::warn!(?job, error = %e, "renewing the job's lease failed"),
                    }
                }
            }
        }
    }

    /// Drop a job that has nothing left to do.
    async fn complete(&self, id: MessageId, job: Job) -> Result<(), StoreError> {
        match self
            .store
            .update(id, &mut |_: &mut MessageRecord| {
                Ok(Effects {
                    complete: vec![job],
                    ..Effects::default()
                })
            })
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn route_job(&self, id: MessageId, job: Job) -> Result<(), StoreError> {
        let Some(rec) = self.store.get(id).await? else {
            return self.complete(id, job).await;
        };
        if rec.state != MessageState::Received {
            return self.complete(id, job).await;
        }
        let payload =
            self.store.payload(id).await?.ok_or_else(|| {
                StoreError::Corrupt(format!("payload of message {id} is missing"))
            })?;
        // Malware scanning (see `scanning`): the input unless the intake
        // found it clean, before any routing work; an operator's release
        // overrides every verdict.
        let scanning = self
            .settings
            .scanning
            .as_ref()
            .filter(|_| !rec.scan_released());
        if let Some(scanning) = scanning {
            let input_clean = rec.scan.as_ref().is_some_and(|s| s.input_clean)
                || !scanning.scans_channel(&rec.envelope.channel);
            if !input_clean {
                match self.scan_input(scanning, &rec.envelope, &payload).await {
                    Ok(None) => {}
                    Ok(Some(finding)) => {
                        self.quarantine(id, Some(job), &finding, None).await?;
                        return Ok(());
                    }
                    Err(e) => return self.scan_later(id, job, scanning, &e).await,
                }
            }
        }

        // (a `Bytes` handle: the output scan compares outputs with it)
        let input = payload.clone();
        let decided = match self
            .reserve_memory(&rec.envelope.content_type, payload.len())
            .await
        {
            Ok((memory, waited_for_memory)) => {
                let (permit, waited_for_slot) = acquire(&self.route_permits, 1)
                    .await
                    .map_or((None, true), |(permit, waited)| (Some(permit), waited));
                // Waiting for memory and a worker slot can take long; should
                // the lease have run out meanwhile and another claim have
                // settled the message, there is nothing left to route. (The
                // update below checks the state again in any case; this read
                // only spares routing work, so it is skipped when nothing
                // had to wait.)
                if waited_for_memory || waited_for_slot {
                    match self.store.get(id).await? {
                        Some(now) if now.state == MessageState::Received => {}
                        _ => return self.complete(id, job).await,
                    }
                }
                self.route_within_budget(rec.envelope.clone(), payload, (memory, permit), None)
                    .await
            }
            Err(failure) => Err(failure),
        };

        // Container outputs are packed (payload and attachments from the
        // blob store) before they are scanned and stored.
        // (their memory reservation is held until the plan is stored)
        let mut _container_memory = None;
        let decided = match decided {
            Ok(mut plan) if plan.outputs.iter().any(|o| o.container.is_some()) => {
                match self
                    .pack_containers(&mut plan, &rec.envelope, &input)
                    .await?
                {
                    Ok(reserved) => {
                        _container_memory = reserved;
                        Ok(plan)
                    }
                    Err(failure) => Err(failure),
                }
            }
            other => other,
        };

        // Every output document before anything is delivered.
        if let (Ok(plan), Some(scanning)) = (&decided, scanning) {
            match self.scan_outputs(scanning, plan, &input).await {
                Ok(None) => {}
                Ok(Some(finding)) => {
                    self.quarantine(id, Some(job), &finding, None).await?;
                    return Ok(());
                }
                Err(e) => return self.scan_later(id, job, scanning, &e).await,
            }
        }

        let generation = rec
            .deliveries
            .iter()
            .map(|d| d.generation + 1)
            .max()
            .unwrap_or(0);
        let now = Utc::now();
        let stored = match &decided {
            Ok(plan) => {
                self.store
                    .update(id, &mut |r: &mut MessageRecord| {
                        apply_plan(r, plan, generation, job, now)
                    })
                    .await?
            }
            Err(failure) => {
                self.store
                    .update(id, &mut |r: &mut MessageRecord| {
                        apply_failure(r, failure, job)
                    })
                    .await?
            }
        };
        match &decided {
            Ok(plan) => {
                tracing::info!(message = %id, tenant = %plan.tenant, leistung = %plan.leistung,
                    rule = %plan.rule, outputs = plan.outputs.len(), "routed");
                self.wake();
            }
            Err(f) => {
                if stored.state == MessageState::Rejected {
                    self.metrics.rejected(&stored.envelope.channel);
                }
                tracing::warn!(message = %id, state = %stored.state, reason = %f, "routing failed");
            }
        }
        Ok(())
    }

    /// Runs the routing policy on a routing thread
    /// ([`RoutePool`](crate::route_pool::RoutePool)) under the hub's time
    /// budget (see [`HubSettings::route_budget`](crate::HubSettings)).
    ///
    /// The evaluation is stopped cooperatively: the policy runs inside
    /// `budget::with_budget` (deadline + cancel flag), which XPath and
    /// XSLT evaluation check every few steps. Should the policy not stop
    /// by itself shortly after the deadline (work that does not tick),
    /// this waits no longer: the message is settled `dead` now, the flag
    /// is raised, and the routing permit stays with the routing thread
    /// until it really ends (so a stuck routing still counts against
    /// `route_workers`). Either way the reason is the same.
    ///
    /// With `version`, the route's rule runs in exactly that version (the
    /// dry run's comparison, [`RoutingPolicy::route_with_version`]).
    pub(crate) async fn route_within_budget(
        &self,
        envelope: drehscheibe_model::Envelope,
        payload: Bytes,
        permits: (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>),
        version: Option<semver::Version>,
    ) -> Result<RoutePlan, RouteFailure> {
        let budget = self.settings.route_budget;
        let over_budget = || {
            RouteFailure::dead(format!(
                "routing exceeded the time budget of {} s",
                budget.as_secs_f64()
            ))
        };
        let deadline = Instant::now() + budget;
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let router = self.router.clone();
        let task = self.route_pool.run(move || {
            // Memory and worker slot stay taken until the work really ends.
            let _permits = permits;
            budget::with_budget(deadline, flag, || match &version {
                None => router.route(&envelope, &payload),
                Some(v) => router.route_with_version(&envelope, &payload, v),
            })
        });
        let decided = match tokio::time::timeout(budget + ROUTE_STOP_GRACE, task).await {
            Ok(Ok(decided)) => decided,
            Ok(Err(e)) => Err(RouteFailure::dead(format!(
                "rule processor crashed while routing: {e}"
            ))),
            Err(_) => {
                cancel.store(true, Ordering::SeqCst);
                return Err(over_budget());
            }
        };
        // An error after the deadline is the budget's doing, whatever
        // error the interrupted evaluation reported.
        match decided {
            Err(_) if Instant::now() >= deadline => Err(over_budget()),
            other => other,
        }
    }

    /// Reserves the estimated memory of routing this message from the
    /// hub's budget for documents in flight
    /// ([`HubSettings::document_memory`](crate::HubSettings)), waiting
    /// while other documents hold it; says whether it had to wait. A
    /// message that could never fit is a dead failure, not a wait without
    /// end.
    pub(crate) async fn reserve_memory(
        &self,
        content_type: &str,
        payload_len: usize,
    ) -> Result<(OwnedSemaphorePermit, bool), RouteFailure> {
        let estimate = drehscheibe_rules::routing_memory_estimate(payload_len, content_type);
        let need = memory_units(estimate);
        let total = memory_units(self.settings.document_memory);
        let refused = || {
            RouteFailure::dead(format!(
                "the payload ({payload_len} bytes) needs an estimated {need} MiB to route, more than the hub's memory budget for documents in flight ({total} MiB, [server] document_memory)"
            ))
        };
        if need > total {
            return Err(refused());
        }
        let units = u32::try_from(need).map_err(|_| refused())?;
        acquire(&self.memory_permits, units)
            .await
            .ok_or_else(|| RouteFailure::dead("the hub's memory budget is closed (shutting down)"))
    }

    async fn deliver_job(&self, id: MessageId, index_: u32, job: Job) -> Result<(), StoreError> {
        let Some(rec) = self.store.get(id).await? else {
            return self.complete(id, job).await;
        };
        let Some(d) = rec.deliveries.get(index_ as usize).cloned() else {
            return self.complete(id, job).await;
        };
        if !matches!(d.state, DeliveryState::Pending | DeliveryState::Failed) {
            return self.complete(id, job).await;
        }
        let Some(slot) = self.connectors.load().get(&d.tenant, &d.connector) else {
            let reason = format!(
                "connector {:?} of tenant {:?} is not configured (configuration changed?)",
                d.connector, d.tenant
            );
            let no_retry = RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            };
            self.record_attempt(
                id,
                index_,
                job,
                d.generation,
                Utc::now(),
                Err(DeliveryError::permanent(reason)),
                &no_retry,
                0.0,
            )
            .await?;
            return Ok(());
        };
        let Some(permit) = slot.acquire().await else {
            // Endpoint saturated: push back without counting an attempt.
            return self.defer_busy(id, job, &slot).await;
        };
        let limit = slot.timeout + Duration::from_secs(5);
        // With several instances on one store, the endpoint's limit is the
        // hub's: take one of its hub-wide slots too (held at most the
        // attempt's time limit plus a margin, so a crash frees it).
        let hub_slot = if self.store.is_shared() {
            match self.hub_slot(&slot, limit).await? {
                Some(n) => Some(n),
                None => {
                    drop(permit);
                    return self.defer_busy(id, job, &slot).await;
                }
            }
        } else {
            None
        };

        // No separate `delivering` write before the attempt: the record
        // moves to `delivering` (with its audit event, stamped with the
        // attempt's start) in the same update that stores the outcome —
        // one store write per message less (docs/decisions/0012).
        let started = Utc::now();
        let document = self.store.output(id, index_).await?.ok_or_else(|| {
            StoreError::Corrupt(format!("output {index_} of message {id} is missing"))
        })?;
        let sink = Arc::new(RecordCheckpoint {
            store: self.store.clone(),
            id,
            index: index_,
            generation: d.generation,
            actor: slot.actor.clone(),
        });
        let mut envelope = rec.envelope.clone();
        if d.packed {
            // The container holds what it needs of them.
            envelope.attachments.clear();
        }
        let request = DeliveryRequest {
            envelope,
            target: d.target.clone(),
            generation: d.generation,
            attempt: d.attempts + 1,
            document,
            content_type: d.content_type.clone(),
            filename: d.filename.clone(),
            blobs: self.blobs.clone(),
            checkpoint: Checkpoint::new(d.checkpoint.clone(), sink),
        };
        let outcome = match tokio::time::timeout(limit, slot.connector.deliver(request)).await {
            Ok(r) => r,
            Err(_) => Err(DeliveryError::retryable(format!(
                "attempt timed out after {}s",
                limit.as_secs()
            ))),
        };
        // The hub-wide slot goes back before the local permit: the next
        // local delivery takes the permit and then asks for a slot.
        if let Some(n) = hub_slot {
            if let Err(e) = self.store.release_slot(&slot.actor, n).await {
                // The slot frees itself when its time runs out.
                tracing::warn!(error = %e, connector = %slot.actor, "releasing a hub-wide connector slot failed");
            }
        }
        drop(permit);
        let jitter: f64 = rand::thread_rng().gen();
        let ok = outcome.is_ok();
        let stored = self
            .record_attempt(
                id,
                index_,
                job,
                d.generation,
                started,
                outcome,
                &slot.retry,
                jitter,
            )
            .await?;
        let channel = &stored.envelope.channel;
        if let Some(after) = stored.deliveries.get(index_ as usize) {
            match after.state {
                DeliveryState::Delivered if ok => {
                    let latency = (Utc::now() - stored.envelope.received_at)
                        .to_std()
                        .unwrap_or_default()
                        .as_secs_f64();
                    self.metrics
                        .delivered(channel, &slot.tenant, &slot.id, latency);
                }
                DeliveryState::Failed => self.metrics.failed(channel, &slot.tenant, &slot.id),
                DeliveryState::Dead => self.metrics.dead(channel, &slot.tenant, &slot.id),
                _ => {}
            }
        }
        Ok(())
    }

    /// One of the endpoint's hub-wide slots (several instances share the
    /// store), waiting up to `busy_defer` for one to come free (other
    /// instances' deliveries to the endpoint end all the time); `None`
    /// after that: the caller defers the job.
    async fn hub_slot(
        &self,
        slot: &crate::connectors::ConnectorSlot,
        limit: Duration,
    ) -> Result<Option<u32>, StoreError> {
        let ttl = limit + Duration::from_secs(30);
        let max = u32::try_from(slot.max_concurrency()).unwrap_or(u32::MAX);
        let give_up = std::time::Instant::now() + self.settings.busy_defer;
        let mut pause = Duration::from_millis(5);
        loop {
            if let Some(n) = self.store.acquire_slot(&slot.actor, max, ttl).await? {
                return Ok(Some(n));
            }
            if std::time::Instant::now() + pause > give_up {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Push a delivery back by `busy_defer` without counting an attempt
    /// (its endpoint is saturated).
    ///
    /// On a shared store the pause grows while the endpoint stays
    /// saturated (see
    /// [`ConnectorSlot::busy_factor`](crate::connectors::ConnectorSlot::busy_factor)):
    /// each deferral costs a claim and a store write, and a backlog of
    /// thousands of deliveries to one slow Fachverfahren must not turn
    /// into thousands of writes per second.
    async fn defer_busy(
        &self,
        id: MessageId,
        job: Job,
        slot: &crate::connectors::ConnectorSlot,
    ) -> Result<(), StoreError> {
        // On a store only this process uses, a deferral is cheap (memory
        // and one group-committed write) and a fixed pause brings the
        // backlog back soonest; on a shared store it is database work
        // every instance pays for, so the pause grows.
        let pause = if self.store.is_shared() {
            let jitter = 1.0 + rand::thread_rng().gen::<f64>() * 0.5;
            self.settings
                .busy_defer
                .mul_f64(f64::from(slot.busy_factor()) * jitter)
        } else {
            self.settings.busy_defer
        };
        let due = Utc::now() + chrono_dur(pause);
        self.store
            .update(id, &mut |_: &mut MessageRecord| {
                Ok(Effects {
                    schedule: vec![(job, due)],
                    ..Effects::default()
                })
            })
            .await?;
        Ok(())
    }

    /// Store the outcome of one attempt, atomically with the job's next
    /// step: done, retry at `now + backoff`, or dead. A message that was
    /// `routed` or `failed` passes through `delivering` in the same update
    /// (its audit event carries `started`, when the attempt began).
    #[allow(clippy::too_many_arguments)]
    async fn record_attempt(
        &self,
        id: MessageId,
        index_: u32,
        job: Job,
        generation: u32,
        started: chrono::DateTime<Utc>,
        outcome: Result<drehscheibe_model::DeliveryReceipt, DeliveryError>,
        retry: &RetryPolicy,
        jitter: f64,
    ) -> Result<MessageRecord, StoreError> {
        let now = Utc::now();
        let max_attempts = retry.max_attempts;
        self.store
            .update(id, &mut |r: &mut MessageRecord| {
                let rule = r.rule.clone();
                let mut effects = Effects::default();
                let mut from = r.state;
                let Some(d) = r.deliveries.get_mut(index_ as usize) else {
                    return Ok(Effects {
                        complete: vec![job],
                        ..Effects::default()
                    });
                };
                if d.generation != generation {
                    // A replay started a new generation meanwhile.
                    return Ok(Effects::default());
                }
                if matches!(from, MessageState::Routed | MessageState::Failed) {
                    let mut delivering = AuditEvent::new(
                        id,
                        ACTOR,
                        "delivering",
                        Some(from),
                        MessageState::Delivering,
                    )
                    .with_rule(rule.clone())
                    .with_target(d.target.clone());
                    delivering.at = started;
                    effects.audit.push(delivering);
                    from = MessageState::Delivering;
                }
                d.attempts += 1;
                d.last_attempt_at = Some(now);
                let (action, detail) = match &outcome {
                    Ok(receipt) => {
                        d.state = DeliveryState::Delivered;
                        d.delivered_at = Some(now);
                        d.receipt = Some(receipt.detail.clone());
                        d.last_error = None;
                        d.next_attempt_at = None;
                        effects.complete.push(job);
                        ("delivered", receipt.detail.clone())
                    }
                    Err(e) if e.retryable && d.attempts < max_attempts => {
                        d.state = DeliveryState::Failed;
                        d.last_error = Some(e.reason.clone());
                        let due = now + chrono_dur(retry.backoff(d.attempts, jitter));
                        d.next_attempt_at = Some(due);
                        effects.schedule.push((job, due));
                        (
                            "delivery_failed",
                            format!("attempt {} of {max_attempts}: {}", d.attempts, e.reason),
                        )
                    }
                    Err(e) => {
                        d.state = DeliveryState::Dead;
                        d.last_error = Some(e.reason.clone());
                        d.next_attempt_at = None;
                        effects.complete.push(job);
                        let why = if e.retryable {
                            format!("gave up after {} attempts: {}", d.attempts, e.reason)
                        } else {
                            format!("permanent failure: {}", e.reason)
                        };
                        ("dead", why)
                    }
                };
                let target = d.target.clone();
                r.state = aggregate(&r.deliveries);
                r.reason = match r.state {
                    MessageState::Dead | MessageState::Failed => {
                        Some(format!("{target}: {detail}"))
                    }
                    _ => None,
                };
                effects.audit.push(
                    AuditEvent::new(r.envelope.id, ACTOR, action, Some(from), r.state)
                        .with_rule(rule)
                        .with_target(target)
                        .with_detail(detail),
                );
                Ok(effects)
            })
            .await
    }
}

fn apply_plan(
    r: &mut MessageRecord,
    plan: &RoutePlan,
    generation: u32,
    job: Job,
    now: chrono::DateTime<Utc>,
) -> Result<Effects, StoreError> {
    let mut effects = Effects {
        complete: vec![job],
        ..Effects::default()
    };
    if r.state != MessageState::Received {
        return Ok(effects);
    }
    let from = r.state;
    r.envelope.tenant = Some(plan.tenant.clone());
    r.requested_by = plan.requested_by.clone();
    r.envelope.kommune_key = Some(plan.kommune_key.clone());
    r.envelope.leistung = Some(plan.leistung.clone());
    r.rule = Some(plan.rule.clone());
    r.reason = None;
    r.deliveries = plan
        .outputs
        .iter()
        .map(|o| Delivery {
            target: o.target.clone(),
            tenant: o.tenant.clone(),
            connector: o.connector.clone(),
            state: DeliveryState::Pending,
            attempts: 0,
            generation,
            content_type: o.content_type.clone(),
            size: o.bytes.len() as u64,
            sha256: drehscheibe_model::sha256_hex(&o.bytes),
            filename: o.filename.clone(),
            last_error: None,
            last_attempt_at: None,
            next_attempt_at: None,
            delivered_at: None,
            receipt: None,
            checkpoint: None,
            packed: o.packed,
        })
        .collect();
    for (i, o) in plan.outputs.iter().enumerate() {
        effects.outputs.push((index(i), o.bytes.clone()));
        effects.schedule.push((
            Job::Deliver {
                message: r.envelope.id,
                delivery: index(i),
            },
            now,
        ));
    }
    r.state = if plan.outputs.is_empty() {
        MessageState::Delivered
    } else {
        MessageState::Routed
    };
    let targets: Vec<String> = plan
        .outputs
        .iter()
        .map(|o| format!("{}→{}/{}", o.target, o.tenant, o.connector))
        .collect();
    let mut detail = format!(
        "tenant {} (key {}), Leistung {}, targets [{}]",
        plan.tenant,
        plan.kommune_key,
        plan.leistung,
        targets.join(", ")
    );
    for note in &plan.notes {
        detail.push_str("; ");
        detail.push_str(note);
    }
    effects.audit.push(
        AuditEvent::new(r.envelope.id, ACTOR, "routed", Some(from), r.state)
            .with_rule(Some(plan.rule.clone()))
            .with_detail(detail),
    );
    Ok(effects)
}

fn apply_failure(
    r: &mut MessageRecord,
    failure: &RouteFailure,
    job: Job,
) -> Result<Effects, StoreError> {
    let mut effects = Effects {
        complete: vec![job],
        ..Effects::default()
    };
    if r.state != MessageState::Received {
        return Ok(effects);
    }
    let from = r.state;
    let (to, reason, rule) = match failure {
        RouteFailure::Rejected { reason, rule } => (MessageState::Rejected, reason, rule),
        RouteFailure::Dead { reason, rule } => (MessageState::Dead, reason, rule),
    };
    r.state = to;
    r.reason = Some(reason.clone());
    if rule.is_some() {
        r.rule = rule.clone();
    }
    effects.audit.push(
        AuditEvent::new(r.envelope.id, ACTOR, to.as_str(), Some(from), to)
            .with_rule(rule.clone())
            .with_detail(reason.clone()),
    );
    Ok(effects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(state: DeliveryState) -> Delivery {
        Delivery {
            target: "t".into(),
            tenant: "x".into(),
            connector: "c".into(),
            state,
            attempts: 0,
            generation: 0,
            content_type: "application/xml".into(),
            size: 0,
            sha256: String::new(),
            filename: "f".into(),
            last_error: None,
            last_attempt_at: None,
            next_attempt_at: None,
            delivered_at: None,
            receipt: None,
            checkpoint: None,
            packed: false,
        }
    }

    #[test]
    fn aggregate_state_follows_deliveries() {
        use DeliveryState::*;
        assert_eq!(
            aggregate(&[d(Delivered), d(Delivered)]),
            MessageState::Delivered
        );
        assert_eq!(
            aggregate(&[d(Delivered), d(Pending)]),
            MessageState::Delivering
        );
        assert_eq!(aggregate(&[d(Failed), d(Pending)]), MessageState::Failed);
        assert_eq!(aggregate(&[d(Dead), d(Pending)]), MessageState::Delivering);
        assert_eq!(aggregate(&[d(Dead), d(Delivered)]), MessageState::Dead);
    }
}
