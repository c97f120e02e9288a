//! A claimed job whose work takes longer than its lease — here: routing
//! waits for the memory budget while other documents hold it — keeps its
//! lease (the worker renews it), so the claim loop never hands the job to
//! a second worker: every message is routed exactly once. Real sled store
//! and blob store in a temp dir.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use drehscheibe_engine::{HubSettings, RouteFailure, RoutePlan, RoutingPolicy};
use drehscheibe_model::{Envelope, Intake, MessageState};
use tokio_util::sync::CancellationToken;

/// Counts routings per payload; each takes longer than the lease.
#[derive(Default)]
struct Slow {
    calls: Mutex<HashMap<Vec<u8>, usize>>,
}

impl RoutingPolicy for Slow {
    fn route(&self, _envelope: &Envelope, payload: &Bytes) -> Result<RoutePlan, RouteFailure> {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(payload.to_vec())
            .or_default() += 1;
        std::thread::sleep(Duration::from_millis(400));
        Err(RouteFailure::rejected("routed"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waiting_longer_than_its_lease_is_not_claimed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let router = Arc::new(Slow::default());
    let settings = HubSettings {
        route_workers: 4,
        // One 150 KB payload (2 MiB of estimated memory) at a time: the
        // fourth message waits about 1.2 s, four leases.
        document_memory: 2 << 20,
        lease: Duration::from_millis(300),
        idle_poll: Duration::from_millis(20),
        ..HubSettings::default()
    };
    let hub = common::hub(dir.path(), router.clone(), settings);
    let shutdown = CancellationToken::new();
    let engine = tokio::spawn(hub.clone().run(shutdown.clone()));

    let mut ids = Vec::new();
    for i in 0..4u8 {
        let mut payload = format!("<r n=\"{i}\">").into_bytes();
        while payload.len() < 150_000 {
            payload.extend_from_slice(b"<a/>");
        }
        payload.extend_from_slice(b"</r>");
        let accepted = hub
            .submit(common::submission(payload, "application/xml"))
            .await
            .unwrap();
        ids.push(accepted.id);
    }
    for id in &ids {
        let (state, reason) = common::settle(&hub, *id).await;
        assert_eq!(state, MessageState::Rejected);
        assert_eq!(reason.as_deref(), Some("routed"));
    }
    // Give a wrongly re-claimed copy the time to run, then count.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let calls = router.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 4);
    assert!(
        calls.values().all(|n| *n == 1),
        "every message is routed exactly once: {:?}",
        calls.values().collect::<Vec<_>>()
    );
    shutdown.cancel();
    engine.await.unwrap().unwrap();
}
