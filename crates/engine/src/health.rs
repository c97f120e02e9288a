//! The connector health monitor: every [`HubSettings::health_interval`]
//! the hub runs each connector's
//! [`healthcheck`](drehscheibe_model::Connector::healthcheck) (bounded by a
//! timeout, all endpoints at once) and keeps the last result per endpoint
//! for `/readyz` and the metrics (`drehscheibe_connector_up`,
//! `drehscheibe_connector_cert_expiry_timestamp_seconds`). The checks
//! never block deliveries and never take the hub out of service.
//!
//! [`HubSettings::health_interval`]: crate::HubSettings::health_interval

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use drehscheibe_model::Health;
use tokio_util::sync::CancellationToken;

use crate::Hub;

/// Longest a single health check may take.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate ending within this time is reported in `/readyz`.
pub const CERT_WARNING: chrono::TimeDelta = chrono::TimeDelta::days(30);

/// The last health check of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHealth {
    /// Tenant of the connector.
    pub tenant: String,
    /// Connector id.
    pub connector: String,
    /// Connector type.
    pub kind: String,
    /// What the check found.
    pub health: Health,
    /// When it ran.
    pub checked_at: DateTime<Utc>,
}

impl EndpointHealth {
    /// A line for `/readyz` when something needs attention: unreachable,
    /// a certificate ending within [`CERT_WARNING`] (or already ended), or
    /// a note of the check ([`Health::notes`]).
    pub fn attention(&self, now: DateTime<Utc>) -> Option<String> {
        let name = format!(
            "connector {}/{} ({})",
            self.tenant, self.connector, self.kind
        );
        let mut parts = Vec::new();
        if !self.health.reachable {
            parts.push(format!("unreachable: {}", self.health.detail));
        }
        if let Some(end) = self.health.cert_not_after {
            let left = end - now;
            if left <= chrono::TimeDelta::zero() {
                parts.push(format!("client certificate expired at {end}"));
            } else if left < CERT_WARNING {
                parts.push(format!(
                    "client certificate expires in {} days ({end})",
                    left.num_days()
                ));
            }
        }
        parts.extend(self.health.notes.iter().cloned());
        (!parts.is_empty()).then(|| format!("{name}: {}", parts.join("; ")))
    }
}

/// The last results, by (tenant, connector).
#[derive(Debug, Default)]
pub struct HealthBoard {
    entries: Mutex<BTreeMap<(String, String), EndpointHealth>>,
}

impl HealthBoard {
    /// All endpoints checked so far, by tenant and connector id.
    pub fn snapshot(&self) -> Vec<EndpointHealth> {
        self.entries
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Keep only the endpoints `keep(tenant, connector)` says.
    pub(crate) fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        if let Ok(mut m) = self.entries.lock() {
            m.retain(|(t, c), _| keep(t, c));
        }
    }

    fn put(&self, e: EndpointHealth) {
        if let Ok(mut m) = self.entries.lock() {
            m.insert((e.tenant.clone(), e.connector.clone()), e);
        }
    }
}

impl Hub {
    /// Check every endpoint once now (all at once, each bounded by
    /// [`HEALTH_TIMEOUT`]) and record the results.
    pub async fn check_connectors(&self) {
        let registry = self.connectors.load_full();
        let checks =
            registry.slots().map(|slot| {
                let slot = slot.clone();
                async move {
                    let health =
                        match tokio::time::timeout(HEALTH_TIMEOUT, slot.connector.healthcheck())
                            .await
                        {
                            Ok(h) => h,
                            Err(_) => Health::down(format!(
                                "health check timed out after {}s",
                                HEALTH_TIMEOUT.as_secs()
                            )),
                        };
                    EndpointHealth {
                        tenant: slot.tenant.clone(),
                        connector: slot.id.clone(),
                        kind: slot.connector.kind().to_owned(),
                        health,
                        checked_at: Utc::now(),
                    }
                }
            });
        for e in futures::future::join_all(checks).await {
            if !e.health.reachable {
                tracing::warn!(tenant = %e.tenant, connector = %e.connector, detail = %e.health.detail, "connector health check failed");
            }
            self.metrics.connector_health(&e);
            self.health.put(e);
        }
    }

    /// The last health check of every endpoint.
    pub fn connector_health(&self) -> Vec<EndpointHealth> {
        self.health.snapshot()
    }

    /// Run the checks every [`crate::HubSettings::health_interval`] until
    /// `shutdown`.
    pub(crate) async fn health_loop(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            self.check_connectors().await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.settings.health_interval) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(health: Health) -> EndpointHealth {
        EndpointHealth {
            tenant: "alpha".into(),
            connector: "osci".into(),
            kind: "osci".into(),
            health,
            checked_at: Utc::now(),
        }
    }

    #[test]
    fn attention_names_what_is_wrong_and_nothing_when_all_is_well() {
        let now = Utc::now();
        assert_eq!(endpoint(Health::up("answered")).attention(now), None);
        let mut far_cert = Health::up("answered");
        far_cert.cert_not_after = Some(now + chrono::TimeDelta::days(90));
        assert_eq!(endpoint(far_cert).attention(now), None);

        let down = endpoint(Health::down("connection refused"))
            .attention(now)
            .unwrap_or_default();
        assert_eq!(
            down,
            "connector alpha/osci (osci): unreachable: connection refused"
        );

        let mut noted = Health::up("answered");
        noted.cert_not_after = Some(now + chrono::TimeDelta::days(10));
        noted.notes.push("CRL of CN=Root is due for renewal".into());
        let line = endpoint(noted).attention(now).unwrap_or_default();
        assert!(
            line.starts_with("connector alpha/osci (osci): client certificate expires in"),
            "{line}"
        );
        assert!(
            line.ends_with("; CRL of CN=Root is due for renewal"),
            "{line}"
        );
        assert!(!line.contains("unreachable"), "{line}");

        let mut ended = Health::down("timeout");
        ended.cert_not_after = Some(now - chrono::TimeDelta::days(1));
        let line = endpoint(ended).attention(now).unwrap_or_default();
        assert!(
            line.contains("unreachable: timeout; client certificate expired at"),
            "{line}"
        );
    }
}
