//! "Run once per hub": leases on named singletons (pollers).
//!
//! A row of `drehscheibe_singletons` names the holder (instance id and a
//! random guard id) and an expiry on the *database's* clock. Taking the
//! lease is one `INSERT … ON CONFLICT DO UPDATE … WHERE expires_at <=
//! now()`: it succeeds only while nobody holds an unexpired lease, and it
//! raises a fencing token that the holder may pass on to what it guards.
//! The holder renews well before the expiry (say every ttl/3); an
//! instance that dies stops renewing, and after `ttl` another instance
//! takes over.
//!
//! Why not `pg_try_advisory_lock`: a session advisory lock belongs to one
//! connection. With a pool, the connection goes back to the pool (the lock
//! leaks to whoever gets it next) or must be kept out of it for the
//! lock's lifetime, and a connection that silently dies leaves the other
//! instances unsure whether the holder still runs. A lease row survives
//! pool recycling, expires on its own, and says who holds it.

use std::time::Duration;

use drehscheibe_store::Result;
use uuid::Uuid;

use crate::store::{retrying, Oops, PgStore};

/// A held singleton lease. Renew it with [`SingletonGuard::renew`] before
/// the ttl runs out; end it with [`SingletonGuard::release`] (dropping it
/// releases it in the background, best effort).
#[derive(Debug)]
pub struct SingletonGuard {
    store: PgStore,
    name: String,
    guard: Uuid,
    token: i64,
    released: bool,
}

/// A lease's time to live in whole milliseconds (saturating).
pub(crate) fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

impl PgStore {
    /// Take the singleton `name` for `ttl` if no instance holds it (or
    /// its holder let the lease expire). `None`: someone else holds it;
    /// ask again later (e.g. every ttl/2).
    ///
    /// # Errors
    ///
    /// `StoreError::Backend` when the database cannot be reached.
    pub async fn try_lease_singleton(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<Option<SingletonGuard>> {
        let guard = Uuid::now_v7();
        let me = &self.inner.options.instance_id;
        let token: Option<i64> = retrying!(self, "try_lease_singleton", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached(
                    "INSERT INTO drehscheibe_singletons AS s (name, holder, guard, token, expires_at) \
                     VALUES ($1, $2, $3, 1, now() + $4::int8 * interval '1 millisecond') \
                     ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, \
                         guard = EXCLUDED.guard, token = s.token + 1, expires_at = EXCLUDED.expires_at \
                     WHERE s.expires_at <= now() \
                     RETURNING token",
                )
                .await?;
            Ok::<_, Oops>(
                client
                    .query_opt(&st, &[&name, me, &guard, &ttl_ms(ttl)])
                    .await?
                    .map(|r| r.get(0)),
            )
        })?;
        Ok(token.map(|token| SingletonGuard {
            store: self.clone(),
            name: name.to_owned(),
            guard,
            token,
            released: false,
        }))
    }

    /// The instance holding an unexpired lease on `name`, if any.
    ///
    /// # Errors
    ///
    /// `StoreError::Backend` when the database cannot be reached.
    pub async fn singleton_holder(&self, name: &str) -> Result<Option<String>> {
        retrying!(self, "singleton_holder", async {
            let client = self.client().await?;
            let st = client
                .prepare_cached(
                    "SELECT holder FROM drehscheibe_singletons WHERE name = $1 AND expires_at > now()",
                )
                .await?;
            Ok::<_, Oops>(client.query_opt(&st, &[&name]).await?.map(|r| r.get(0)))
        })
    }
}

impl SingletonGuard {
    /// The singleton's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The fencing token: raised by every take-over, so work stamped with
    /// an older token can be recognised as a former holder's.
    pub fn token(&self) -> i64 {
        self.token
    }

    /// Extend the lease to `ttl` from now. `false`: the lease was lost
    /// (it expired and another instance took it) — stop the work it
    /// guards.
    ///
    /// # Errors
    ///
    /// `StoreError::Backend` when the database cannot be reached (the
    /// lease may still be held; retry before the ttl runs out).
    pub async fn renew(&self, ttl: Duration) -> Result<bool> {
        let store = &self.store;
        retrying!(store, "renew singleton", async {
            let client = store.client().await?;
            let st = client
                .prepare_cached(
                    "UPDATE drehscheibe_singletons \
                     SET expires_at = now() + $3::int8 * interval '1 millisecond' \
                     WHERE name = $1 AND guard = $2",
                )
                .await?;
            Ok::<_, Oops>(
                client
                    .execute(&st, &[&self.name, &self.guard, &ttl_ms(ttl)])
                    .await?
                    == 1,
            )
        })
    }

    /// End the lease now, so another instance can take it at once.
    ///
    /// # Errors
    ///
    /// `StoreError::Backend` when the database cannot be reached (the
    /// lease then expires by itself).
    pub async fn release(mut self) -> Result<()> {
        self.released = true;
        release(&self.store, &self.name, self.guard).await
    }
}

async fn release(store: &PgStore, name: &str, guard: Uuid) -> Result<()> {
    retrying!(store, "release singleton", async {
        let client = store.client().await?;
        let st = client
            // Expire, not delete: the row keeps the fencing token counting.
            .prepare_cached(
                "UPDATE drehscheibe_singletons SET expires_at = '-infinity' \
                 WHERE name = $1 AND guard = $2",
            )
            .await?;
        client.execute(&st, &[&name, &guard]).await?;
        Ok::<_, Oops>(())
    })
}

impl Drop for SingletonGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let (store, name, guard) = (self.store.clone(), self.name.clone(), self.guard);
            handle.spawn(async move {
                if let Err(e) = release(&store, &name, guard).await {
                    tracing::debug!(error = %e, name, "could not release a singleton lease; it expires");
                }
            });
        }
    }
}
