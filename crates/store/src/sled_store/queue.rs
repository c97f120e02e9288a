//! The queue index: the in-memory mirror of the `queue` tree plus the
//! leases (see the parent module's docs, "The queue in memory").

use std::collections::{BTreeMap, HashMap};

use sled::Tree;

use super::{backend, be_u64, decode};
use crate::{Job, QueueStats, Result};

/// The last queue change a committed transaction made to one job (see
/// [`QueueIndex::apply`], which takes them by job key).
#[derive(Debug)]
pub(super) enum QueueChange {
    Complete,
    Schedule { job: Job, due_ms: u64 },
}

/// The in-memory mirror of the `queue` tree, plus the leases (see the
/// module docs).
#[derive(Debug, Default)]
pub(super) struct QueueIndex {
    /// (due ms, job key) → job, in the `queue` tree's order.
    pub(super) by_due: BTreeMap<(u64, Vec<u8>), Job>,
    /// Job key → its due time (one entry per job).
    pub(super) due_of: HashMap<Vec<u8>, u64>,
    /// Job key → lease-until ms of a job this process has claimed.
    pub(super) leases: HashMap<Vec<u8>, u64>,
    /// Entries of `by_due` per due second: [`QueueIndex::stats`] sums
    /// these instead of walking every due job (a backlog of a million
    /// jobs must not make every `/metrics` scrape walk a million entries).
    buckets: BTreeMap<u64, u64>,
}

impl QueueIndex {
    /// Build the index from the `queue` tree. A job found twice (which the
    /// transactions never write) keeps its earliest entry; the later ones
    /// are removed from the tree.
    pub(super) fn load(queue: &Tree) -> Result<QueueIndex> {
        let mut index = QueueIndex::default();
        let mut extra = Vec::new();
        for kv in queue.iter() {
            let (qk, v) = kv.map_err(backend)?;
            let due_ms = be_u64(&qk, "queue")?;
            let jk = qk.get(8..).unwrap_or_default().to_vec();
            let job: Job = decode("queue", &qk, &v)?;
            if index.due_of.contains_key(&jk) {
                extra.push(qk);
                continue;
            }
            index.due_of.insert(jk.clone(), due_ms);
            index.insert(due_ms, jk, job);
        }
        if !extra.is_empty() {
            tracing::warn!(
                entries = extra.len(),
                "removing duplicate queue entries of jobs queued twice"
            );
            for qk in extra {
                queue.remove(qk).map_err(backend)?;
            }
        }
        Ok(index)
    }

    /// Apply a committed transaction's changes, by job key. Each replaces
    /// whatever the index held for its job, so applying only the last
    /// change per job gives the same index as applying all in order.
    pub(super) fn apply(&mut self, changes: HashMap<Vec<u8>, QueueChange>) {
        for (job_key, change) in changes {
            match change {
                QueueChange::Complete => {
                    if let Some(due) = self.due_of.remove(&job_key) {
                        self.remove(due, &job_key);
                    }
                    self.leases.remove(&job_key);
                }
                QueueChange::Schedule { job, due_ms } => {
                    if let Some(old) = self.due_of.insert(job_key.clone(), due_ms) {
                        self.remove(old, &job_key);
                    }
                    self.leases.remove(&job_key);
                    self.insert(due_ms, job_key, job);
                }
            }
        }
    }

    fn insert(&mut self, due_ms: u64, jk: Vec<u8>, job: Job) {
        if self.by_due.insert((due_ms, jk), job).is_none() {
            *self.buckets.entry(due_ms / 1000).or_insert(0) += 1;
        }
    }

    fn remove(&mut self, due_ms: u64, jk: &[u8]) {
        if self.by_due.remove(&(due_ms, jk.to_vec())).is_some() {
            let second = due_ms / 1000;
            if let Some(n) = self.buckets.get_mut(&second) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.buckets.remove(&second);
                }
            }
        }
    }

    fn leased_at(&self, jk: &[u8], now_ms: u64) -> Option<u64> {
        self.leases.get(jk).copied().filter(|&until| until > now_ms)
    }

    /// Lease up to `limit` jobs due at `now_ms` and not leased; returns
    /// them with their due times.
    pub(super) fn claim(&mut self, now_ms: u64, limit: usize, until_ms: u64) -> Vec<(Job, u64)> {
        let mut out = Vec::new();
        for ((due_ms, jk), job) in self.by_due.range(..(now_ms.saturating_add(1), Vec::new())) {
            if out.len() >= limit {
                break;
            }
            if self.leased_at(jk, now_ms).is_some() {
                continue;
            }
            out.push((jk.clone(), *job, *due_ms));
        }
        out.into_iter()
            .map(|(jk, job, due_ms)| {
                self.leases.insert(jk, until_ms);
                (job, due_ms)
            })
            .collect()
    }

    /// The earliest time a job can be claimed (see [`Store::next_due`]).
    pub(super) fn next_due(&self, now_ms: u64) -> Option<u64> {
        let mut best: Option<u64> = None;
        for (due_ms, jk) in self.by_due.keys() {
            if best.is_some_and(|b| *due_ms >= b) {
                break;
            }
            let at = match self.leased_at(jk, now_ms) {
                Some(until) => (*due_ms).max(until),
                None => *due_ms,
            };
            best = Some(best.map_or(at, |b| b.min(at)));
        }
        best
    }

    pub(super) fn renew(&mut self, jk: &[u8], until_ms: u64) -> bool {
        match self.leases.get_mut(jk) {
            Some(until) => {
                *until = until_ms;
                true
            }
            None => false,
        }
    }

    pub(super) fn release(&mut self) -> u64 {
        let n = self.leases.len() as u64;
        self.leases.clear();
        n
    }

    /// Leases carried over from the index of a closed database: only for
    /// jobs still queued.
    pub(super) fn carry_leases(&mut self, leases: HashMap<Vec<u8>, u64>) {
        for (jk, until) in leases {
            if self.due_of.contains_key(&jk) {
                self.leases.insert(jk, until);
            }
        }
    }

    /// Depth and due jobs: whole seconds before `now` from the per-second
    /// counts, the current second from its entries, minus the leased
    /// ones — O(seconds with jobs + jobs due this second + leases), not
    /// O(due jobs).
    pub(super) fn stats(&self, now_ms: u64) -> QueueStats {
        let second = now_ms / 1000;
        let earlier: u64 = self.buckets.range(..second).map(|(_, n)| n).sum();
        let this_second = self
            .by_due
            .range((second * 1000, Vec::new())..(now_ms.saturating_add(1), Vec::new()))
            .count() as u64;
        let leased = self
            .leases
            .iter()
            .filter(|(jk, until)| {
                **until > now_ms && self.due_of.get(*jk).is_some_and(|d| *d <= now_ms)
            })
            .count() as u64;
        QueueStats {
            depth: self.by_due.len() as u64,
            due: (earlier + this_second).saturating_sub(leased),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drehscheibe_model::MessageId;

    /// What `stats` used to compute by walking every due entry.
    fn brute(index: &QueueIndex, now_ms: u64) -> QueueStats {
        QueueStats {
            depth: index.by_due.len() as u64,
            due: index
                .by_due
                .range(..(now_ms.saturating_add(1), Vec::new()))
                .filter(|((_, jk), _)| index.leased_at(jk, now_ms).is_none())
                .count() as u64,
        }
    }

    #[test]
    fn counted_stats_match_walking_every_entry() {
        let mut index = QueueIndex::default();
        let ids: Vec<MessageId> = (0..64).map(|_| MessageId::new()).collect();
        // A deterministic walk of schedules, reschedules, completions and
        // claims around a moving "now", checked against the walk after
        // every step.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut now = 1_000_000u64;
        for step in 0..5_000 {
            let id = ids[(next() % ids.len() as u64) as usize];
            let job = Job::Route { message: id };
            let jk = super::super::job_key(&job);
            let mut changes = HashMap::new();
            match next() % 4 {
                0 | 1 => {
                    let due_ms = now - 5_000 + next() % 10_000;
                    changes.insert(jk, QueueChange::Schedule { job, due_ms });
                }
                2 => {
                    changes.insert(jk, QueueChange::Complete);
                }
                _ => {
                    index.claim(now, 3, now + next() % 3_000);
                }
            }
            index.apply(changes);
            now += next() % 700;
            for probe in [now, now - 999, now + 1_500] {
                assert_eq!(index.stats(probe), brute(&index, probe), "step {step}");
            }
        }
        assert!(index.by_due.len() > 10, "the walk kept a queue");
    }
}
