//! Channel tasks that run once per hub, not once per instance.
//!
//! A channel contributes HTTP routes and/or background tasks (ADR 0013).
//! Routes serve whichever instance a load balancer picks; tasks — the XTA
//! poller, the FIT-Connect subscriber and follower, the directory intake —
//! must run in exactly one instance of a hub, or two pollers fetch the
//! same mailbox. On a store several processes share
//! ([`Store::is_shared`]), the tasks of each channel run under the
//! hub-wide lease `channel:<id>` ([`Store::hold_lease`]):
//!
//! - every instance tries to take the lease every [`RETRY`]; the holder
//!   starts the tasks and renews the lease every [`RENEW`] for [`TTL`];
//! - a holder that cannot renew (its database connection is gone, another
//!   instance took over) stops its tasks no later than [`STOP_AFTER`]
//!   after its last successful renewal — before the lease can expire and
//!   another instance start them — and competes again;
//! - at shutdown the holder stops the tasks and releases the lease, so
//!   another instance takes over at its next try instead of after `TTL`.
//!
//! A task's `run` consumes it, so tasks are built anew (with the channel's
//! factory) each time an instance takes the lease over again. On a store
//! only one process opens (sled) the tasks simply run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drehscheibe_config::plugin::{ChannelContext, ChannelFactory};
use drehscheibe_model::{InputAdapter, Intake};
use drehscheibe_store::Store;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long a taken or renewed lease lasts.
pub const TTL: Duration = Duration::from_secs(15);
/// How often the holder renews.
pub const RENEW: Duration = Duration::from_secs(3);
/// How often an instance without the lease tries to take it.
pub const RETRY: Duration = Duration::from_secs(2);
/// A holder that could not renew for this long stops its tasks (well
/// inside [`TTL`], so the tasks have stopped before the lease expires).
pub const STOP_AFTER: Duration = Duration::from_secs(9);

/// What rebuilding a channel's tasks needs (an owned [`ChannelContext`]).
pub struct LeasedChannel {
    pub id: String,
    pub factory: Arc<dyn ChannelFactory>,
    pub intake: Arc<dyn Intake>,
    pub store: Arc<dyn Store>,
    pub data_dir: PathBuf,
    pub tokens: Arc<drehscheibe_model::auth::TokenTable>,
}

impl LeasedChannel {
    fn lease_name(&self) -> String {
        format!("channel:{}", self.id)
    }

    fn build_tasks(&self) -> anyhow::Result<Vec<Box<dyn InputAdapter>>> {
        let adapter = self
            .factory
            .build(&ChannelContext {
                id: &self.id,
                intake: self.intake.clone(),
                store: self.store.clone(),
                data_dir: &self.data_dir,
                tokens: self.tokens.clone(),
            })
            .map_err(|e| anyhow::anyhow!("channel {}: rebuilding its tasks: {e}", self.id))?;
        Ok(adapter.tasks)
    }

    /// Run the channel's tasks whenever this instance holds the lease,
    /// until `shutdown`. `first` are the tasks built at start (used for the
    /// first term). Fails only when a task fails (as an unleased task
    /// would: a failing channel stops the hub).
    pub async fn run(
        self,
        first: Vec<Box<dyn InputAdapter>>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let name = self.lease_name();
        let mut ready = Some(first);
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let attempt = Instant::now();
            let held = self.store.hold_lease(&name, TTL).await;
            if let Err(e) = &held {
                tracing::warn!(lease = %name, error = %e, "cannot take the channel lease; trying again");
            }
            if !matches!(held, Ok(true)) {
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = shutdown.cancelled() => return Ok(()),
                }
                continue;
            }
            let tasks = match ready.take() {
                Some(t) => t,
                None => self.build_tasks()?,
            };
            tracing::info!(lease = %name, tasks = tasks.len(), "this instance runs the channel's tasks");
            let outcome = self.term(&name, tasks, attempt, &shutdown).await;
            match outcome {
                Term::Shutdown => {
                    if let Err(e) = self.store.release_lease(&name).await {
                        tracing::warn!(lease = %name, error = %e, "releasing the channel lease failed; it expires on its own");
                    }
                    return Ok(());
                }
                Term::Lost => {
                    tracing::warn!(lease = %name, "channel lease lost: its tasks stopped in this instance");
                }
                Term::Failed(e) => return Err(e),
            }
        }
    }

    /// One term as holder: run `tasks`, renew, stop them when the lease
    /// is lost or at shutdown.
    async fn term(
        &self,
        name: &str,
        tasks: Vec<Box<dyn InputAdapter>>,
        taken_at: Instant,
        shutdown: &CancellationToken,
    ) -> Term {
        let stop = shutdown.child_token();
        let mut set: JoinSet<Result<(), drehscheibe_model::AdapterError>> = JoinSet::new();
        for task in tasks {
            let (i, s) = (self.intake.clone(), stop.clone());
            set.spawn(async move { task.run(i, s).await });
        }
        let mut renewed = taken_at;
        let outcome = loop {
            tokio::select! {
                _ = tokio::time::sleep(RENEW) => {
                    let attempt = Instant::now();
                    // A store that hangs must not keep the tasks running
                    // past the lease.
                    match tokio::time::timeout(RENEW, self.store.hold_lease(name, TTL)).await {
                        Ok(Ok(true)) => renewed = attempt,
                        Ok(Ok(false)) => break Term::Lost,
                        Ok(Err(e)) => {
                            tracing::warn!(lease = %name, error = %e, "renewing the channel lease failed");
                        }
                        Err(_) => {
                            tracing::warn!(lease = %name, "renewing the channel lease timed out");
                        }
                    }
                    if renewed.elapsed() >= STOP_AFTER {
                        break Term::Lost;
                    }
                }
                joined = set.join_next(), if !set.is_empty() => {
                    match joined {
                        Some(Ok(Ok(()))) | None => {}
                        Some(Ok(Err(e))) => break Term::Failed(anyhow::Error::from(e)),
                        Some(Err(e)) => break Term::Failed(anyhow::anyhow!("channel task panicked: {e}")),
                    }
                }
                _ = shutdown.cancelled() => break Term::Shutdown,
            }
        };
        stop.cancel();
        while set.join_next().await.is_some() {}
        outcome
    }
}

enum Term {
    Shutdown,
    Lost,
    Failed(anyhow::Error),
}
