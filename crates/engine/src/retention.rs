//! The retention sweeper: every [`RetentionSettings::interval`] the hub
//! deletes what retention says is due (ADR 0015), in three steps:
//!
//! 1. **Purge** ([`Store::purge_expired`]): batches of at most
//!    [`RetentionSettings::batch`] messages, each one durable transaction
//!    through the store's writer, until nothing more is due. Finished
//!    messages lose payload, outputs and attachment references after
//!    their tenant's `payloads` (`failed` for dead and rejected ones) and
//!    the rest after `records`; the store finds them through its expiry
//!    index, not by scanning.
//! 2. **Blobs**: attachments whose last referencing message was purged
//!    are handed to [`BlobStore::remove_unreferenced`], which deletes a
//!    file only while no staging of the same content is in flight and the
//!    store's reference count, asked under the staging lock, is still
//!    zero.
//! 3. **Value log** ([`Store::collect_value_log`]): once something was
//!    purged, segments nothing points into are deleted and sparse ones
//!    compacted.
//!
//! Every step is idempotent and crash-safe on its own: what a crash
//! interrupts, the next round finds again. Counters:
//! `drehscheibe_retention_*` (see [`crate::Metrics`]).
//!
//! [`Store::purge_expired`]: drehscheibe_store::Store::purge_expired
//! [`Store::collect_value_log`]: drehscheibe_store::Store::collect_value_log
//! [`BlobStore::remove_unreferenced`]: drehscheibe_model::BlobStore::remove_unreferenced

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drehscheibe_config::HubConfig;
use drehscheibe_store::{RetentionPolicy, StoreError};
use tokio_util::sync::CancellationToken;

use crate::Hub;

/// Blob candidates looked at per round.
const BLOB_PAGE: usize = 256;

/// How the sweeper runs.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionSettings {
    /// What is deleted when, per tenant.
    pub policy: RetentionPolicy,
    /// Time between two rounds.
    pub interval: Duration,
    /// Messages per purge transaction.
    pub batch: usize,
    /// A value-log segment whose live share falls below this is compacted.
    pub compact_below: f64,
    /// Most bytes compaction copies per round.
    pub max_move_bytes: u64,
}

impl RetentionSettings {
    /// The settings of `[retention]` and the tenants' overrides; `None`
    /// when retention is switched off.
    pub fn from_config(config: &HubConfig) -> Option<Self> {
        let r = &config.retention;
        if !r.enabled {
            return None;
        }
        Some(Self {
            policy: RetentionPolicy {
                default: r.default,
                tenants: config
                    .tenants
                    .iter()
                    .filter(|t| !t.retention.is_empty())
                    .map(|t| (t.id.clone(), t.retention.over(&r.default)))
                    .collect(),
            },
            interval: r.interval,
            batch: r.batch,
            ..Self::with_policy(RetentionPolicy::default())
        })
    }

    /// `policy` with the default pace: a round a minute, 500 messages per
    /// transaction, segments compacted below half live, 256 MiB copied per
    /// round at most.
    pub fn with_policy(policy: RetentionPolicy) -> Self {
        Self {
            policy,
            interval: Duration::from_secs(60),
            batch: 500,
            compact_below: 0.5,
            max_move_bytes: 256 << 20,
        }
    }
}

/// What one sweeper round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Messages whose payload was deleted.
    pub payloads: u64,
    /// Messages deleted entirely.
    pub records: u64,
    /// Payload and output bytes released.
    pub bytes: u64,
    /// Purge transactions.
    pub batches: u64,
    /// Attachment files deleted.
    pub blobs_removed: u64,
    /// Value-log segment files deleted.
    pub segments_deleted: u64,
    /// Bytes of value-log segment files deleted.
    pub segment_bytes_freed: u64,
    /// Bytes of the value log after the round (when it was collected).
    pub value_log_bytes: Option<u64>,
}

impl Hub {
    /// One sweeper round at `now` (see the module docs). `collect` runs
    /// the value-log collection even if nothing was purged.
    ///
    /// # Errors
    ///
    /// The first store failure; what was done before it stays done.
    pub async fn sweep(
        &self,
        settings: &RetentionSettings,
        now: DateTime<Utc>,
        collect: bool,
    ) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        loop {
            let r = self
                .store
                .purge_expired(&settings.policy, now, settings.batch.max(1))
                .await?;
            report.batches += 1;
            report.payloads += r.payloads;
            report.records += r.records;
            report.bytes += r.bytes;
            if !r.more {
                break;
            }
            // Let the pipeline's writes in between batches.
            tokio::task::yield_now().await;
        }
        self.collect_blobs(&mut report).await?;
        if collect || report.payloads + report.records > 0 {
            let c = self
                .store
                .collect_value_log(settings.compact_below, settings.max_move_bytes)
                .await?;
            report.segments_deleted = c.segments_deleted;
            report.segment_bytes_freed = c.bytes_freed;
            report.value_log_bytes = Some(c.disk_bytes);
        }
        self.metrics.retention(&report);
        if report.payloads + report.records + report.blobs_removed + report.segments_deleted > 0 {
            tracing::info!(
                payloads = report.payloads,
                records = report.records,
                bytes = report.bytes,
                blobs = report.blobs_removed,
                segments = report.segments_deleted,
                "retention sweep"
            );
        }
        Ok(report)
    }

    async fn collect_blobs(&self, report: &mut SweepReport) -> Result<(), StoreError> {
        for sha in self.store.unreferenced_blobs(BLOB_PAGE).await? {
            let store = self.store.clone();
            let probe = sha.clone();
            let unreferenced = move || {
                let (store, sha) = (store.clone(), probe.clone());
                Box::pin(async move { store.blob_references(&sha).await.is_ok_and(|n| n == 0) })
                    as Pin<Box<dyn Future<Output = bool> + Send>>
            };
            match self.blobs.remove_unreferenced(&sha, &unreferenced).await {
                Ok(true) => {
                    self.store.forget_unreferenced_blob(&sha).await?;
                    report.blobs_removed += 1;
                }
                // Staged right now, or referenced again: asked next round.
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(sha256 = %sha, error = %e, "could not remove an unreferenced attachment; retrying next round");
                }
            }
        }
        Ok(())
    }

    /// Run a sweep every `settings.interval` until `shutdown`; the first
    /// right away (and with a value-log collection, which also frees what
    /// an earlier run left).
    pub(crate) async fn retention_loop(
        self: Arc<Self>,
        settings: RetentionSettings,
        shutdown: CancellationToken,
    ) {
        let mut first = true;
        loop {
            let round = self.sweep(&settings, Utc::now(), first);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = round => {
                    if let Err(e) = r {
                        tracing::error!(error = %e, "retention sweep failed; retrying next round");
                    }
                }
            }
            first = false;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(settings.interval) => {}
            }
        }
    }
}
