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
            index.by_due.insert((due_ms, jk), job);
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
                        self.by_due.remove(&(due, job_key.clone()));
                    }
                    self.leases.remove(&job_key);
                }
                QueueChange::Schedule { job, due_ms } => {
                    if let Some(old) = self.due_of.insert(job_key.clone(), due_ms) {
                        self.by_due.remove(&(old, job_key.clone()));
                    }
                    self.leases.remove(&job_key);
                    self.by_due.insert((due_ms, job_key), job);
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

    pub(super) fn stats(&self, now_ms: u64) -> QueueStats {
        let due = self
            .by_due
            .range(..(now_ms.saturating_add(1), Vec::new()))
            .filter(|((_, jk), _)| self.leased_at(jk, now_ms).is_none())
            .count() as u64;
        QueueStats {
            depth: self.by_due.len() as u64,
            due,
        }
    }
}
