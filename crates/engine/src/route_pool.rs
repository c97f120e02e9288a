//! The threads that run the rule processor.
//!
//! Routing is CPU work on a blocking thread. It used to run on tokio's
//! blocking pool, which also serves the store, the scanner and file I/O
//! and keeps up to hundreds of threads: over a busy hour every one of them
//! routed some message, and each kept what the rule processor caches per
//! thread — compiled XML schemas above all (libxml2's are not shared
//! between threads, ADR 0018): under the pipeline benchmark 50 threads held
//! copies of the xdomea schema set, 130–200 MiB of the hub's RSS.
//!
//! [`RoutePool`] is `route_workers` threads of its own. The hub hands a job
//! over only while holding one of its `route_workers` routing permits, and
//! the permit lives in the job until the job ends, so a free thread is
//! always waiting for it; a job that overruns the route budget keeps its
//! thread as it keeps its permit.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of named threads running routing jobs; the threads end when
/// the pool is dropped (after finishing the jobs they hold).
pub(crate) struct RoutePool {
    jobs: mpsc::Sender<Job>,
}

/// Why a job gave no result.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PoolError {
    /// The job panicked (the message names the panic).
    #[error("{0}")]
    Panicked(String),
    /// The pool's threads are gone (the hub is shutting down) or could not
    /// be started.
    #[error("the routing threads are not running")]
    Gone,
}

/// Stack of a routing thread: tokio's blocking threads' size, which the
/// rule processor was measured and tested with (deeper recursion continues
/// on stack segments `stacker` adds).
const STACK_SIZE: usize = 2 << 20;

impl RoutePool {
    /// Starts `threads` (at least one) routing threads.
    pub(crate) fn new(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("route-{n}"))
                .stack_size(STACK_SIZE)
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job.
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                // Fewer threads than permits would leave a job waiting
                // with no thread to run it: say so loudly; `run` reports
                // `Gone` if none started at all.
                tracing::error!(error = %e, "cannot start a routing thread");
            }
        }
        Self { jobs }
    }

    /// Runs `work` on a routing thread; the result (or the panic's
    /// message) arrives when it ends.
    pub(crate) async fn run<R, F>(&self, work: F) -> Result<R, PoolError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(work)).map_err(|panic| {
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_string());
                PoolError::Panicked(text)
            });
            // The receiver may have given up (route budget): nothing to do.
            let _ = tx.send(outcome);
        });
        self.jobs.send(job).map_err(|_| PoolError::Gone)?;
        rx.await.map_err(|_| PoolError::Gone)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[tokio::test]
    async fn runs_jobs_on_its_own_named_threads() {
        let pool = RoutePool::new(2);
        let mut names = BTreeSet::new();
        for _ in 0..20 {
            let name = pool
                .run(|| std::thread::current().name().map(str::to_owned))
                .await
                .unwrap()
                .unwrap();
            names.insert(name);
        }
        assert!(!names.is_empty() && names.len() <= 2, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("route-")), "{names:?}");
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_thread_lives_on() {
        let pool = RoutePool::new(1);
        let err = pool.run(|| -> u32 { panic!("boom") }).await.unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }
}
