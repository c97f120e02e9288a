//! The memory budget for documents in flight (issue 9, item 2): routing
//! reserves a payload's estimated memory and waits while the budget is
//! taken (it does not overcommit); a payload that can never fit ends
//! `dead` with the reason instead of waiting forever. Real sled store and
//! blob store in a temp dir.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use drehscheibe_engine::{HubSettings, RouteFailure, RoutePlan, RoutingPolicy};
use drehscheibe_model::{Envelope, Intake, MessageState};
use drehscheibe_rules::InputDocument;
use tokio_util::sync::CancellationToken;

/// Parses the payload and records how many routings ran at once.
#[derive(Default)]
struct Counting {
    now: AtomicUsize,
    most: AtomicUsize,
    calls: AtomicUsize,
}

impl RoutingPolicy for Counting {
    fn route(&self, envelope: &Envelope, payload: &Bytes) -> Result<RoutePlan, RouteFailure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let running = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(running, Ordering::SeqCst);
        // Long enough for a second worker to start if it were allowed to.
        std::thread::sleep(Duration::from_millis(200));
        let parsed = InputDocument::parse(payload, &envelope.content_type);
        self.now.fetch_sub(1, Ordering::SeqCst);
        Err(RouteFailure::rejected(format!(
            "parsed: {}",
            parsed.is_ok()
        )))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_waits_for_memory_and_refuses_what_never_fits() {
    let dir = tempfile::tempdir().unwrap();
    let router = Arc::new(Counting::default());
    let settings = HubSettings {
        route_workers: 4,
        // 2 MiB: one 150 KB XML payload (1.5 MB estimated, 2 MiB units)
        // at a time, nothing bigger than 2 MiB ever.
        document_memory: 2 << 20,
        ..HubSettings::default()
    };
    let hub = common::hub(dir.path(), router.clone(), settings);
    let shutdown = CancellationToken::new();
    let engine = tokio::spawn(hub.clone().run(shutdown.clone()));

    // 150 KB XML → 1.5 MB estimated → 2 MiB units: only one fits at once.
    let mut medium = b"<r>".to_vec();
    while medium.len() < 150_000 {
        medium.extend_from_slice(b"<a/>");
    }
    medium.extend_from_slice(b"</r>");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let accepted = hub
            .submit(common::submission(medium.clone(), "application/xml"))
            .await
            .unwrap();
        ids.push(accepted.id);
    }
    // 100 KB of JSON → 3.2 MB estimated: more than the whole budget.
    let mut big = b"[0".to_vec();
    while big.len() < 100_000 {
        big.extend_from_slice(b",0");
    }
    big.push(b']');
    let too_big = hub
        .submit(common::submission(big, "application/json"))
        .await
        .unwrap()
        .id;

    for id in &ids {
        let (state, reason) = common::settle(&hub, *id).await;
        assert_eq!(state, MessageState::Rejected);
        assert_eq!(reason.as_deref(), Some("parsed: true"));
    }
    let (state, reason) = common::settle(&hub, too_big).await;
    assert_eq!(state, MessageState::Dead);
    let reason = reason.unwrap();
    assert!(
        reason.contains("needs an estimated 4 MiB to route")
            && reason.contains("memory budget for documents in flight (2 MiB"),
        "{reason}"
    );
    assert_eq!(
        router.most.load(Ordering::SeqCst),
        1,
        "the budget admits one medium document at a time"
    );
    assert_eq!(
        router.calls.load(Ordering::SeqCst),
        3,
        "the oversized one never reached the router"
    );
    shutdown.cancel();
    engine.await.unwrap().unwrap();
}
