//! The hub-wide coordination of [`Store`](drehscheibe_store::Store) on
//! PostgreSQL: what several instances must agree on.
//!
//! - **Instance leases** ([`Store::hold_lease`]): the tasks of a channel
//!   (pollers, subscribers) run in one instance at a time. One upsert on
//!   `drehscheibe_singletons` takes a free or expired lease, or renews the
//!   caller's own; the holder is the instance id, the expiry is on the
//!   database's clock. Shares the table (and the fencing token) with
//!   [`PgStore::try_lease_singleton`].
//! - **Connector slots** ([`Store::acquire_slot`]): a connector's
//!   `max_concurrency` holds for the hub. Slot `i` of a key is a row of
//!   `drehscheibe_connector_slots`; taking one inserts a free (absent or
//!   expired) slot, picked at random so that concurrent takers rarely
//!   collide; a collision is retried a few times before the answer is
//!   "all taken".
//! - **Work signal** ([`Store::work_signal`]): the `LISTEN` wake-ups of
//!   [`PgStore::subscribe_queue`] as a `Notify` for the engine's
//!   dispatcher.
//!
//! [`Store::hold_lease`]: drehscheibe_store::Store::hold_lease
//! [`Store::acquire_slot`]: drehscheibe_store::Store::acquire_slot
//! [`Store::work_signal`]: drehscheibe_store::Store::work_signal

use std::sync::Arc;
use std::time::Duration;

use drehscheibe_store::Result;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::singleton::ttl_ms;
use crate::store::{retrying, Oops, PgStore};

/// Attempts of [`PgStore::take_slot`] when another instance took the
/// same free slot at the same moment.
const SLOT_ATTEMPTS: u32 = 3;

impl PgStore {
    pub(crate) async fn hold_instance_lease(&self, name: &str, ttl: Duration) -> Result<bool> {
        let me = &self.inner.options.instance_id;
        let guard = Uuid::now_v7();
        retrying!(self, "hold_lease", async {
            let client = self.client().await?;
            // Free or expired: take it (new guard, token + 1). Held by
            // this instance: extend it (same guard and token).
            let st = client
                .prepare_cached(
                    "INSERT INTO drehscheibe_singletons AS s (name, holder, guard, token, expires_at) \
                     VALUES ($1, $2, $3, 1, now() + $4::int8 * interval '1 millisecond') \
                     ON CONFLICT (name) DO UPDATE SET \
                         holder = EXCLUDED.holder, \
                         guard = CASE WHEN s.holder = EXCLUDED.holder AND s.expires_at > now() \
                                      THEN s.guard ELSE EXCLUDED.guard END, \
                         token = CASE WHEN s.holder = EXCLUDED.holder AND s.expires_at > now() \
                                      THEN s.token ELSE s.token + 1 END, \
                         expires_at = EXCLUDED.expires_at \
                     WHERE s.expires_at <= now() OR s.holder = EXCLUDED.holder \
                     RETURNING token",
                )
                .await?;
            Ok::<_, Oops>(
                client
                    .query_opt(&st, &[&name, me, &guard, &ttl_ms(ttl)])
                    .await?
                    .is_some(),
            )
        })
    }

    pub(crate) async fn release_instance_lease(&self, name: &str) -> Result<()> {
        let me = &self.inner.options.instance_id;
        retrying!(self, "release_lease", async {
            let client = self.client().await?;
            // Expire, not delete: the row keeps the fencing token counting.
            let st = client
                .prepare_cached(
                    "UPDATE drehscheibe_singletons SET expires_at = '-infinity' \
                     WHERE name = $1 AND holder = $2",
                )
                .await?;
            client.execute(&st, &[&name, me]).await?;
            Ok::<_, Oops>(())
        })
    }

    pub(crate) async fn take_slot(
        &self,
        key: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<Option<u32>> {
        let me = &self.inner.options.instance_id;
        let limit = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
        for _ in 0..SLOT_ATTEMPTS {
            let got: Option<i32> = retrying!(self, "acquire_slot", async {
                let client = self.client().await?;
                let st = client
                    .prepare_cached(
                        "WITH candidate AS ( \
                             SELECT g.slot FROM generate_series(0, $3::int4 - 1) AS g(slot) \
                             LEFT JOIN drehscheibe_connector_slots c ON c.key = $1 AND c.slot = g.slot \
                             WHERE c.slot IS NULL OR c.expires_at <= now() \
                             ORDER BY random() LIMIT 1) \
                         INSERT INTO drehscheibe_connector_slots AS c (key, slot, holder, expires_at) \
                         SELECT $1, slot, $2, now() + $4::int8 * interval '1 millisecond' FROM candidate \
                         ON CONFLICT (key, slot) DO UPDATE SET holder = EXCLUDED.holder, \
                             expires_at = EXCLUDED.expires_at \
                         WHERE c.expires_at <= now() \
                         RETURNING slot",
                    )
                    .await?;
                Ok::<_, Oops>(
                    client
                        .query_opt(&st, &[&key, me, &limit, &ttl_ms(ttl)])
                        .await?
                        .map(|r| r.get(0)),
                )
            })?;
            if let Some(slot) = got {
                return Ok(u32::try_from(slot).ok());
            }
            // Nothing free — or a free slot taken by another instance
            // between our look and our insert: look again.
            let free: i64 = retrying!(self, "acquire_slot", async {
                let client = self.client().await?;
                let st = client
                    .prepare_cached(
                        "SELECT $2::int8 - count(*) FROM drehscheibe_connector_slots \
                         WHERE key = $1 AND slot::int8 < $2::int8 AND expires_at > now()",
                    )
                    .await?;
                Ok::<_, Oops>(
                    client
                        .query_one(&st, &[&key, &i64::from(limit)])
                        .await?
                        .get(0),
                )
            })?;
            if free <= 0 {
                return Ok(None);
            }
        }
        Ok(None)
    }

    pub(crate) async fn give_back_slot(&self, key: &str, slot: u32) -> Result<()> {
        let me = &self.inner.options.instance_id;
        let slot = i32::try_from(slot).unwrap_or(i32::MAX);
        retrying!(self, "release_slot", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached(
                    "DELETE FROM drehscheibe_connector_slots \
                     WHERE key = $1 AND slot = $2 AND holder = $3",
                )
                .await?;
            client.execute(&st, &[&key, &slot, me]).await?;
            Ok::<_, Oops>(())
        })
    }

    /// The queue wake-ups as one shared `Notify` (a permit is kept when
    /// nobody waits, so a wake-up between two waits is not lost).
    pub(crate) fn work_notify(&self) -> Arc<Notify> {
        self.inner
            .work
            .get_or_init(|| {
                let notify = Arc::new(Notify::new());
                let mut wakeups = self.subscribe_queue();
                let n = notify.clone();
                tokio::spawn(async move {
                    while wakeups.wait().await {
                        n.notify_one();
                    }
                });
                notify
            })
            .clone()
    }
}
