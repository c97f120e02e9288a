use drehscheibe_model::MessageState;
use drehscheibe_store::QueueStats;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    channel: String,
    tenant: String,
    connector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    tenant: String,
    connector: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelEventLabels {
    channel: String,
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

/// Prometheus metrics of the hub (text exposition via [`Metrics::encode`]).
pub struct Metrics {
    registry: Registry,
    received: Family<ChannelLabels, Counter>,
    refused: Family<ChannelLabels, Counter>,
    rejected: Family<ChannelLabels, Counter>,
    quarantined: Family<ChannelLabels, Counter>,
    scan_unavailable: Counter,
    scanner_up: Gauge,
    delivered: Family<DeliveryLabels, Counter>,
    failed: Family<DeliveryLabels, Counter>,
    dead: Family<DeliveryLabels, Counter>,
    delivery_latency: Family<DeliveryLabels, Histogram>,
    intake_latency: Histogram,
    queue_depth: Gauge,
    queue_due: Gauge,
    messages: Family<StateLabels, Gauge>,
    connections_open: Gauge,
    connection_limit_reached: Counter,
    accept_errors: Counter,
    connector_up: Family<EndpointLabels, Gauge>,
    connector_cert_expiry: Family<EndpointLabels, Gauge>,
    retention_payloads: Counter,
    retention_records: Counter,
    retention_bytes: Counter,
    retention_blobs: Counter,
    retention_segments: Counter,
    value_log_bytes: Gauge,
    channel_events: Family<ChannelEventLabels, Counter>,
    /// Last value seen per (channel, event) of a channel's own counters
    /// (see [`Metrics::channel_counter`]).
    channel_seen: std::sync::Mutex<std::collections::HashMap<(String, String), u64>>,
    /// Deliveries per (tenant, connector) since start, for
    /// [`Metrics::delivery_tallies`] (prometheus families cannot be read
    /// back).
    tallies: std::sync::Mutex<std::collections::BTreeMap<(String, String), DeliveryTally>>,
}

/// What one endpoint (tenant, connector) delivered since the hub started
/// (see [`Metrics::delivery_tallies`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryTally {
    pub tenant: String,
    pub connector: String,
    /// Deliveries completed.
    pub delivered: u64,
    /// Failed attempts that will be retried.
    pub failed: u64,
    /// Deliveries given up (dead letters).
    pub dead: u64,
    /// Sum of the intake-to-delivery latencies of `delivered`, seconds.
    pub latency_sum_seconds: f64,
}

impl DeliveryTally {
    /// Mean time from intake to delivery, seconds (`None` before the
    /// first delivery).
    pub fn mean_latency_seconds(&self) -> Option<f64> {
        (self.delivered > 0).then(|| self.latency_sum_seconds / self.delivered as f64)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("drehscheibe");
        let received = Family::<ChannelLabels, Counter>::default();
        let refused = Family::<ChannelLabels, Counter>::default();
        let rejected = Family::<ChannelLabels, Counter>::default();
        let quarantined = Family::<ChannelLabels, Counter>::default();
        let scan_unavailable = Counter::default();
        let scanner_up = Gauge::default();
        registry.register(
            "scanner_up",
            "1 while the malware scanner's last answer was a verdict, 0 after a scan or check without one (absent without [scanner])",
            scanner_up.clone(),
        );
        registry.register(
            "quarantined",
            "Messages the malware scanner found something in (kept, never delivered), by channel",
            quarantined.clone(),
        );
        registry.register(
            "scan_unavailable",
            "Scans that gave no verdict (scanner down, slow or over its size limit): the message waits",
            scan_unavailable.clone(),
        );
        let delivered = Family::<DeliveryLabels, Counter>::default();
        let failed = Family::<DeliveryLabels, Counter>::default();
        let dead = Family::<DeliveryLabels, Counter>::default();
        let delivery_latency = Family::<DeliveryLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 16))
        });
        let intake_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let queue_depth = Gauge::default();
        let queue_due = Gauge::default();
        let messages = Family::<StateLabels, Gauge>::default();
        let connections_open = Gauge::default();
        let connection_limit_reached = Counter::default();
        let accept_errors = Counter::default();
        let connector_up = Family::<EndpointLabels, Gauge>::default();
        let connector_cert_expiry = Family::<EndpointLabels, Gauge>::default();
        let retention_payloads = Counter::default();
        let retention_records = Counter::default();
        let retention_bytes = Counter::default();
        let retention_blobs = Counter::default();
        let retention_segments = Counter::default();
        let value_log_bytes = Gauge::default();
        let channel_events = Family::<ChannelEventLabels, Counter>::default();
        registry.register(
            "channel_events",
            "Events an input channel counts itself (e.g. receipts the far side refused), by channel and event",
            channel_events.clone(),
        );
        registry.register(
            "retention_purged_payloads",
            "Finished messages whose payload, outputs and attachment references retention deleted",
            retention_payloads.clone(),
        );
        registry.register(
            "retention_purged_records",
            "Finished messages retention deleted entirely (record, audit trail, idempotency key)",
            retention_records.clone(),
        );
        registry.register(
            "retention_purged_bytes",
            "Payload and output bytes retention released",
            retention_bytes.clone(),
        );
        registry.register(
            "retention_blobs_removed",
            "Attachment files removed after their last referencing message was purged",
            retention_blobs.clone(),
        );
        registry.register(
            "retention_segments_deleted",
            "Value-log segment files deleted (empty or compacted)",
            retention_segments.clone(),
        );
        registry.register(
            "value_log_bytes",
            "Bytes of the store's value-log segment files after the last collection",
            value_log_bytes.clone(),
        );
        registry.register(
            "connector_up",
            "1 if the connector's last health check reached the far side, else 0",
            connector_up.clone(),
        );
        registry.register(
            "connector_cert_expiry_timestamp_seconds",
            "End of validity (Unix time) of the client certificate a connector presents",
            connector_cert_expiry.clone(),
        );
        registry.register(
            "messages_received",
            "Messages accepted at intake",
            received.clone(),
        );
        registry.register(
            "intake_refused",
            "Submissions refused at intake (nothing stored)",
            refused.clone(),
        );
        registry.register(
            "messages_rejected",
            "Messages rejected by routing",
            rejected.clone(),
        );
        registry.register(
            "deliveries_delivered",
            "Deliveries completed",
            delivered.clone(),
        );
        registry.register(
            "delivery_attempts_failed",
            "Failed delivery attempts that will be retried",
            failed.clone(),
        );
        registry.register(
            "deliveries_dead",
            "Deliveries given up (dead letters)",
            dead.clone(),
        );
        registry.register(
            "delivery_latency_seconds",
            "Time from intake to successful delivery",
            delivery_latency.clone(),
        );
        registry.register(
            "intake_latency_seconds",
            "Time to validate and durably store a submission",
            intake_latency.clone(),
        );
        registry.register("queue_depth", "Jobs in the queue", queue_depth.clone());
        registry.register(
            "queue_due",
            "Jobs in the queue that are due and not leased",
            queue_due.clone(),
        );
        registry.register("messages", "Stored messages by state", messages.clone());
        registry.register(
            "connections_open",
            "Client connections the HTTP listener is serving",
            connections_open.clone(),
        );
        registry.register(
            "connection_limit_reached",
            "Times the HTTP listener reached its connection limit and stopped accepting until a connection closed",
            connection_limit_reached.clone(),
        );
        registry.register(
            "accept_errors",
            "Failed accept() calls of the HTTP listener (e.g. out of file descriptors)",
            accept_errors.clone(),
        );
        Self {
            registry,
            received,
            refused,
            rejected,
            delivered,
            failed,
            dead,
            delivery_latency,
            intake_latency,
            queue_depth,
            queue_due,
            messages,
            connections_open,
            connection_limit_reached,
            accept_errors,
            quarantined,
            scan_unavailable,
            scanner_up,
            connector_up,
            connector_cert_expiry,
            retention_payloads,
            retention_records,
            retention_bytes,
            retention_blobs,
            retention_segments,
            value_log_bytes,
            channel_events,
            channel_seen: Default::default(),
            tallies: Default::default(),
        }
    }

    /// Per (tenant, connector), sorted: deliveries, failed attempts, dead
    /// letters and the latency sum since the hub started (the console's
    /// Übersicht; Prometheus has the same numbers per channel too).
    pub fn delivery_tallies(&self) -> Vec<DeliveryTally> {
        self.tallies
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    fn tally(&self, tenant: &str, connector: &str, f: impl FnOnce(&mut DeliveryTally)) {
        if let Ok(mut m) = self.tallies.lock() {
            let t = m
                .entry((tenant.to_owned(), connector.to_owned()))
                .or_insert_with(|| DeliveryTally {
                    tenant: tenant.to_owned(),
                    connector: connector.to_owned(),
                    ..DeliveryTally::default()
                });
            f(t);
        }
    }

    /// Record a retention sweep.
    pub(crate) fn retention(&self, r: &crate::SweepReport) {
        self.retention_payloads.inc_by(r.payloads);
        self.retention_records.inc_by(r.records);
        self.retention_bytes.inc_by(r.bytes);
        self.retention_blobs.inc_by(r.blobs_removed);
        self.retention_segments.inc_by(r.segments_deleted);
        if let Some(bytes) = r.value_log_bytes {
            self.value_log_bytes
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
    }

    /// The HTTP listener now serves `n` connections.
    pub fn set_connections_open(&self, n: usize) {
        self.connections_open
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The HTTP listener reached its connection limit.
    pub fn connection_limit_reached(&self) {
        self.connection_limit_reached.inc();
    }

    /// An `accept()` of the HTTP listener failed.
    pub fn accept_error(&self) {
        self.accept_errors.inc();
    }

    pub(crate) fn received(&self, channel: &str) {
        self.received
            .get_or_create(&ChannelLabels {
                channel: channel.to_owned(),
            })
            .inc();
    }

    pub(crate) fn refused(&self, channel: &str) {
        self.refused
            .get_or_create(&ChannelLabels {
                channel: channel.to_owned(),
            })
            .inc();
    }

    pub(crate) fn rejected(&self, channel: &str) {
        self.rejected
            .get_or_create(&ChannelLabels {
                channel: channel.to_owned(),
            })
            .inc();
    }

    pub(crate) fn quarantined(&self, channel: &str) {
        self.quarantined
            .get_or_create(&ChannelLabels {
                channel: channel.to_owned(),
            })
            .inc();
    }

    pub(crate) fn scan_unavailable(&self) {
        self.scan_unavailable.inc();
    }

    pub(crate) fn scanner_up(&self, up: bool) {
        self.scanner_up.set(i64::from(up));
    }

    pub(crate) fn intake_latency(&self, seconds: f64) {
        self.intake_latency.observe(seconds);
    }

    fn labels(channel: &str, tenant: &str, connector: &str) -> DeliveryLabels {
        DeliveryLabels {
            channel: channel.to_owned(),
            tenant: tenant.to_owned(),
            connector: connector.to_owned(),
        }
    }

    pub(crate) fn delivered(&self, channel: &str, tenant: &str, connector: &str, latency: f64) {
        let l = Self::labels(channel, tenant, connector);
        self.delivered.get_or_create(&l).inc();
        self.delivery_latency.get_or_create(&l).observe(latency);
        self.tally(tenant, connector, |t| {
            t.delivered += 1;
            t.latency_sum_seconds += latency;
        });
    }

    pub(crate) fn failed(&self, channel: &str, tenant: &str, connector: &str) {
        self.failed
            .get_or_create(&Self::labels(channel, tenant, connector))
            .inc();
        self.tally(tenant, connector, |t| t.failed += 1);
    }

    pub(crate) fn dead(&self, channel: &str, tenant: &str, connector: &str) {
        self.dead
            .get_or_create(&Self::labels(channel, tenant, connector))
            .inc();
        self.tally(tenant, connector, |t| t.dead += 1);
    }

    /// Record a connector health check.
    pub(crate) fn connector_health(&self, e: &crate::health::EndpointHealth) {
        let labels = EndpointLabels {
            tenant: e.tenant.clone(),
            connector: e.connector.clone(),
            kind: e.kind.clone(),
        };
        self.connector_up
            .get_or_create(&labels)
            .set(i64::from(e.health.reachable));
        if let Some(end) = e.health.cert_not_after {
            self.connector_cert_expiry
                .get_or_create(&labels)
                .set(end.timestamp());
        }
    }

    /// Bring `drehscheibe_channel_events_total{channel, event}` up to a
    /// channel's own count `value` (counters only grow: a value below the
    /// last one seen — the adapter restarted — starts a new run of
    /// increments from there).
    pub fn channel_counter(&self, channel: &str, event: &str, value: u64) {
        let Ok(mut seen) = self.channel_seen.lock() else {
            return;
        };
        let last = seen
            .entry((channel.to_owned(), event.to_owned()))
            .or_insert(0);
        let delta = value.saturating_sub(*last);
        *last = value;
        let counter = self.channel_events.get_or_create(&ChannelEventLabels {
            channel: channel.to_owned(),
            event: event.to_owned(),
        });
        if delta > 0 {
            counter.inc_by(delta);
        }
    }

    /// Encode all metrics in the Prometheus text format, after setting the
    /// gauges read from the store at scrape time.
    pub fn encode(&self, queue: QueueStats, states: &[(MessageState, u64)]) -> String {
        self.queue_depth
            .set(i64::try_from(queue.depth).unwrap_or(i64::MAX));
        self.queue_due
            .set(i64::try_from(queue.due).unwrap_or(i64::MAX));
        for (state, n) in states {
            self.messages
                .get_or_create(&StateLabels {
                    state: state.as_str().to_owned(),
                })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_tallies_add_up_per_endpoint() {
        let m = Metrics::new();
        m.delivered("portal", "musterstadt", "fv", 1.0);
        m.delivered("fit", "musterstadt", "fv", 3.0);
        m.failed("portal", "musterstadt", "fv");
        m.dead("portal", "nachbarstadt", "dms");
        let t = m.delivery_tallies();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].tenant.as_str(), t[0].connector.as_str()),
            ("musterstadt", "fv")
        );
        assert_eq!((t[0].delivered, t[0].failed, t[0].dead), (2, 1, 0));
        assert_eq!(t[0].mean_latency_seconds(), Some(2.0));
        assert_eq!((t[1].delivered, t[1].dead), (0, 1));
        assert_eq!(t[1].mean_latency_seconds(), None);
    }
}
