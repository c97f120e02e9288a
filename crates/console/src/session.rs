//! Server-side sessions: a random 256-bit id in the cookie, the
//! principal, a CSRF token and the two expiries (idle and absolute) here.
//!
//! The store is bounded ([`MAX_SESSIONS`]): a new sign-in beyond it evicts
//! the oldest session. One principal (token name) holds at most
//! [`MAX_SESSIONS_PER_PRINCIPAL`]: beyond it, its own oldest session goes,
//! so one token holder signing in again and again cannot push everyone
//! else out. Ids are kept only as their SHA-256, so a memory dump does not
//! hand out usable cookies.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use drehscheibe_model::auth::Principal;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Most sessions kept at once; the oldest goes first.
pub const MAX_SESSIONS: usize = 10_000;

/// Most sessions one principal (token name) keeps at once; its oldest goes
/// first.
pub const MAX_SESSIONS_PER_PRINCIPAL: usize = 20;

/// A signed-in user, as the handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub principal: Principal,
    /// The session's CSRF token (hex, 256 bit).
    pub csrf: String,
}

#[derive(Debug)]
struct Entry {
    session: Session,
    created: Instant,
    last_seen: Instant,
    /// Key into `Inner::order`.
    seq: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// By SHA-256 of the session id.
    by_key: HashMap<[u8; 32], Entry>,
    /// Creation order: sequence number → key (oldest first).
    order: BTreeMap<u64, [u8; 32]>,
    /// Per principal name: the sequence numbers of its sessions.
    by_principal: HashMap<String, BTreeSet<u64>>,
    next_seq: u64,
}

impl Inner {
    fn remove(&mut self, key: &[u8; 32]) {
        if let Some(e) = self.by_key.remove(key) {
            self.order.remove(&e.seq);
            self.forget_seq(&e.session.principal.name, e.seq);
        }
    }

    fn forget_seq(&mut self, name: &str, seq: u64) {
        if let Some(seqs) = self.by_principal.get_mut(name) {
            seqs.remove(&seq);
            if seqs.is_empty() {
                self.by_principal.remove(name);
            }
        }
    }

    /// Remove the oldest session overall.
    fn evict_oldest(&mut self) -> bool {
        let Some((_, key)) = self.order.first_key_value() else {
            return false;
        };
        let key = *key;
        self.remove(&key);
        true
    }

    /// Remove the oldest session of principal `name`.
    fn evict_oldest_of(&mut self, name: &str) -> bool {
        let Some(seq) = self.by_principal.get(name).and_then(|s| s.first().copied()) else {
            return false;
        };
        match self.order.get(&seq).copied() {
            Some(key) => self.remove(&key),
            None => self.forget_seq(name, seq),
        }
        true
    }

    fn count_of(&self, name: &str) -> usize {
        self.by_principal.get(name).map_or(0, BTreeSet::len)
    }
}

/// The in-memory session store (see the module docs).
#[derive(Debug)]
pub struct SessionStore {
    inner: Mutex<Inner>,
    idle: Duration,
    max: Duration,
    capacity: usize,
    per_principal: usize,
}

/// 256 random bits from the operating system, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn key_of(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl SessionStore {
    /// Sessions end after `idle` without a request, and `max` after
    /// sign-in at the latest.
    pub fn new(idle: Duration, max: Duration) -> Self {
        Self::with_capacity(idle, max, MAX_SESSIONS)
    }

    pub(crate) fn with_capacity(idle: Duration, max: Duration, capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            idle,
            max,
            capacity: capacity.max(1),
            per_principal: MAX_SESSIONS_PER_PRINCIPAL,
        }
    }

    /// Start a session for `principal`: its id (for the cookie) and the
    /// session.
    pub fn create(&self, principal: Principal) -> (String, Session) {
        self.create_at(principal, Instant::now())
    }

    pub(crate) fn create_at(&self, principal: Principal, now: Instant) -> (String, Session) {
        let id = random_token();
        let session = Session {
            principal,
            csrf: random_token(),
        };
        let Ok(mut inner) = self.inner.lock() else {
            return (id, session);
        };
        self.expire(&mut inner, now);
        // The principal's own oldest first, then the oldest of all.
        while inner.count_of(&session.principal.name) >= self.per_principal {
            if !inner.evict_oldest_of(&session.principal.name) {
                break;
            }
        }
        while inner.by_key.len() >= self.capacity {
            if !inner.evict_oldest() {
                break;
            }
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let key = key_of(&id);
        inner.order.insert(seq, key);
        inner
            .by_principal
            .entry(session.principal.name.clone())
            .or_default()
            .insert(seq);
        inner.by_key.insert(
            key,
            Entry {
                session: session.clone(),
                created: now,
                last_seen: now,
                seq,
            },
        );
        (id, session)
    }

    /// The live session with cookie value `id` (and note the request).
    pub fn get(&self, id: &str) -> Option<Session> {
        self.get_at(id, Instant::now())
    }

    pub(crate) fn get_at(&self, id: &str, now: Instant) -> Option<Session> {
        let key = key_of(id);
        let mut inner = self.inner.lock().ok()?;
        let entry = inner.by_key.get_mut(&key)?;
        let idle_over = now.saturating_duration_since(entry.last_seen) >= self.idle;
        let max_over = now.saturating_duration_since(entry.created) >= self.max;
        if idle_over || max_over {
            inner.remove(&key);
            return None;
        }
        entry.last_seen = now;
        Some(entry.session.clone())
    }

    /// End the session with cookie value `id` (sign-out).
    pub fn remove(&self, id: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.remove(&key_of(id));
        }
    }

    /// Sessions kept now (expired ones included until the next sign-in
    /// sweeps them).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.by_key.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drop expired sessions (runs at every sign-in).
    fn expire(&self, inner: &mut Inner, now: Instant) {
        let dead: Vec<[u8; 32]> = inner
            .by_key
            .iter()
            .filter(|(_, e)| {
                now.saturating_duration_since(e.last_seen) >= self.idle
                    || now.saturating_duration_since(e.created) >= self.max
            })
            .map(|(k, _)| *k)
            .collect();
        for k in dead {
            inner.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drehscheibe_model::auth::Role;

    fn op(name: &str) -> Principal {
        Principal {
            name: name.into(),
            role: Role::Operator,
        }
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn ids_and_csrf_tokens_are_random_256_bit_hex() {
        let store = SessionStore::new(30 * MIN, 480 * MIN);
        let (a, sa) = store.create(op("a"));
        let (b, sb) = store.create(op("b"));
        for t in [&a, &b, &sa.csrf, &sb.csrf] {
            assert_eq!(t.len(), 64);
            assert!(t.chars().all(|c| c.is_ascii_hexdigit()));
        }
        assert_ne!(a, b);
        assert_ne!(sa.csrf, sb.csrf);
        assert_ne!(a, sa.csrf);
        assert_eq!(store.get(&a).map(|s| s.principal.name), Some("a".into()));
        assert_eq!(store.get(&b), Some(sb));
        assert_eq!(store.get("nonsense"), None);
    }

    #[test]
    fn idle_sessions_expire_and_use_keeps_them_alive() {
        let store = SessionStore::new(30 * MIN, 480 * MIN);
        let t0 = Instant::now();
        let (id, _) = store.create_at(op("a"), t0);
        // Used every 20 minutes: stays alive past the idle timeout.
        for i in 1..=4 {
            assert!(store.get_at(&id, t0 + 20 * MIN * i).is_some(), "step {i}");
        }
        // 30 minutes without a request: gone, and stays gone.
        assert!(store.get_at(&id, t0 + 80 * MIN + 30 * MIN).is_none());
        assert!(store.get_at(&id, t0 + 81 * MIN).is_none());
        assert!(store.is_empty());
    }

    #[test]
    fn sessions_end_at_their_absolute_lifetime_however_busy() {
        let store = SessionStore::new(30 * MIN, 120 * MIN);
        let t0 = Instant::now();
        let (id, _) = store.create_at(op("a"), t0);
        let mut t = t0;
        while t < t0 + 110 * MIN {
            t += 10 * MIN;
            if t < t0 + 120 * MIN {
                assert!(store.get_at(&id, t).is_some());
            }
        }
        assert!(store.get_at(&id, t0 + 120 * MIN).is_none());
    }

    #[test]
    fn signing_out_ends_the_session() {
        let store = SessionStore::new(30 * MIN, 480 * MIN);
        let (id, _) = store.create(op("a"));
        store.remove(&id);
        assert!(store.get(&id).is_none());
    }

    #[test]
    fn the_store_is_bounded_and_evicts_the_oldest() {
        let store = SessionStore::with_capacity(30 * MIN, 480 * MIN, 3);
        let t0 = Instant::now();
        let ids: Vec<String> = (0..5)
            .map(|i| store.create_at(op(&format!("u{i}")), t0).0)
            .collect();
        assert_eq!(store.len(), 3);
        assert!(store.get_at(&ids[0], t0).is_none());
        assert!(store.get_at(&ids[1], t0).is_none());
        for id in &ids[2..] {
            assert!(store.get_at(id, t0).is_some());
        }
        assert_eq!(SessionStore::new(MIN, MIN).capacity, MAX_SESSIONS);
    }

    #[test]
    fn one_principal_cannot_push_out_the_others() {
        let store =
            SessionStore::with_capacity(30 * MIN, 480 * MIN, MAX_SESSIONS_PER_PRINCIPAL + 1);
        let t0 = Instant::now();
        let (other, _) = store.create_at(op("other"), t0);
        let mine: Vec<String> = (0..=MAX_SESSIONS_PER_PRINCIPAL)
            .map(|_| store.create_at(op("busy"), t0).0)
            .collect();
        assert_eq!(store.len(), MAX_SESSIONS_PER_PRINCIPAL + 1);
        assert!(store.get_at(&other, t0).is_some());
        assert!(store.get_at(&mine[0], t0).is_none());
        for id in &mine[1..] {
            assert!(store.get_at(id, t0).is_some());
        }
        // Signing out and expiry keep the per-principal books right.
        store.remove(&mine[1]);
        let (again, _) = store.create_at(op("busy"), t0);
        assert!(store.get_at(&mine[2], t0).is_some());
        assert!(store.get_at(&again, t0).is_some());
        assert!(store.get_at(&other, t0).is_some());
    }

    #[test]
    fn a_sign_in_sweeps_expired_sessions_first() {
        let store = SessionStore::with_capacity(30 * MIN, 480 * MIN, 2);
        let t0 = Instant::now();
        let (old, _) = store.create_at(op("old"), t0);
        let (live, _) = store.create_at(op("live"), t0 + 25 * MIN);
        // At t0 + 40 min `old` is idle-expired: it is swept, `live` stays.
        let (new, _) = store.create_at(op("new"), t0 + 40 * MIN);
        assert_eq!(store.len(), 2);
        assert!(store.get_at(&old, t0 + 40 * MIN).is_none());
        assert!(store.get_at(&live, t0 + 40 * MIN).is_some());
        assert!(store.get_at(&new, t0 + 40 * MIN).is_some());
    }
}
