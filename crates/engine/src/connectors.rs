use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use drehscheibe_config::RetryPolicy;
use drehscheibe_model::Connector;
use tokio::sync::Semaphore;

/// A configured endpoint: its connector, retry policy and concurrency cap.
pub struct ConnectorSlot {
    pub tenant: String,
    pub id: String,
    pub connector: Arc<dyn Connector>,
    pub retry: RetryPolicy,
    /// Upper bound for one attempt, enforced by the engine on top of the
    /// connector's own timeout.
    pub timeout: Duration,
    /// `connector:<tenant>/<id>`, the actor of the endpoint's audit events
    /// (made once here, not per delivery).
    pub actor: Arc<str>,
    permits: Arc<Semaphore>,
    max_concurrency: usize,
    waiting: AtomicUsize,
    /// Deliveries deferred since the endpoint last had room (see
    /// [`ConnectorSlot::busy_factor`]).
    deferred: AtomicUsize,
}

impl ConnectorSlot {
    pub fn new(
        tenant: impl Into<String>,
        id: impl Into<String>,
        connector: Arc<dyn Connector>,
        retry: RetryPolicy,
        max_concurrency: usize,
        timeout: Duration,
    ) -> Self {
        let max_concurrency = max_concurrency.max(1);
        let (tenant, id) = (tenant.into(), id.into());
        Self {
            actor: format!("connector:{tenant}/{id}").into(),
            tenant,
            id,
            connector,
            retry,
            timeout,
            permits: Arc::new(Semaphore::new(max_concurrency)),
            max_concurrency,
            waiting: AtomicUsize::new(0),
            deferred: AtomicUsize::new(0),
        }
    }

    pub fn max_concurrency(&self) -> usize {
        self.max_concurrency
    }

    /// Take a delivery permit. Returns `None` when the endpoint already has
    /// as many deliveries waiting as it may run at once: the caller defers
    /// the job so that one slow endpoint cannot hold the workers of all.
    pub(crate) async fn acquire(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            // Room without waiting: the endpoint is not saturated.
            self.deferred.store(0, Ordering::Relaxed);
            return Some(p);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_concurrency {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let permit = self.permits.clone().acquire_owned().await.ok();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        permit
    }
}

impl ConnectorSlot {
    /// How many `busy_defer`s a delivery deferred now waits: 1 for the
    /// first `max_concurrency` deferrals since the endpoint last had
    /// room, then doubling per further `max_concurrency`, at most 16 —
    /// a saturated endpoint's backlog comes back ever more slowly instead
    /// of being claimed and deferred again every `busy_defer`, while the
    /// running and waiting deliveries keep the endpoint busy.
    pub fn busy_factor(&self) -> u32 {
        let n = self.deferred.fetch_add(1, Ordering::Relaxed);
        let rounds = n / self.max_concurrency.max(1);
        1 << rounds.min(4)
    }
}

/// All configured endpoints, keyed by (tenant, connector id).
#[derive(Default)]
pub struct ConnectorRegistry {
    slots: HashMap<(String, String), Arc<ConnectorSlot>>,
}

impl ConnectorRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, slot: ConnectorSlot) {
        self.slots
            .insert((slot.tenant.clone(), slot.id.clone()), Arc::new(slot));
    }

    /// Add a slot that is already in use (kept across a configuration
    /// reload, with its permits and counters).
    pub fn insert_shared(&mut self, slot: Arc<ConnectorSlot>) {
        self.slots
            .insert((slot.tenant.clone(), slot.id.clone()), slot);
    }

    pub fn get(&self, tenant: &str, id: &str) -> Option<Arc<ConnectorSlot>> {
        self.slots.get(&(tenant.to_owned(), id.to_owned())).cloned()
    }

    /// Every endpoint, in no particular order.
    pub fn slots(&self) -> impl Iterator<Item = &Arc<ConnectorSlot>> {
        self.slots.values()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drehscheibe_model::{DeliveryError, DeliveryReceipt, DeliveryRequest};

    struct Never;

    #[async_trait::async_trait]
    impl Connector for Never {
        fn kind(&self) -> &'static str {
            "never"
        }
        async fn deliver(&self, _: DeliveryRequest) -> Result<DeliveryReceipt, DeliveryError> {
            Err(DeliveryError::permanent("test connector"))
        }
    }

    #[tokio::test]
    async fn deferrals_back_off_while_saturated_and_reset_when_there_is_room() {
        let slot = ConnectorSlot::new(
            "t",
            "c",
            Arc::new(Never),
            RetryPolicy::default(),
            2,
            Duration::from_secs(1),
        );
        let factors: Vec<u32> = (0..12).map(|_| slot.busy_factor()).collect();
        assert_eq!(factors, [1, 1, 2, 2, 4, 4, 8, 8, 16, 16, 16, 16]);
        // Room again: the next deferral starts over.
        let permit = slot.acquire().await;
        assert!(permit.is_some());
        assert_eq!(slot.busy_factor(), 1);
    }
}
