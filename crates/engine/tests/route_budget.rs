//! The routing time budget (issue 9, item 1): a message whose routing
//! runs away ends `dead` with the reason, within the budget, and its job
//! is settled — never claimed a second time. Real sled store and blob
//! store in a temp dir, real XPath evaluation; nothing is timed.

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

/// Evaluates an XPath expression of 10^9 steps that accumulate nothing
/// (hours without a budget), counting how often it is asked to route.
struct Runaway {
    calls: AtomicUsize,
    /// Ignore the cooperative budget (sleep instead of evaluating).
    stubborn: bool,
}

impl RoutingPolicy for Runaway {
    fn route(&self, envelope: &Envelope, payload: &Bytes) -> Result<RoutePlan, RouteFailure> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.stubborn {
            std::thread::sleep(Duration::from_secs(4));
            return Err(RouteFailure::rejected("finished late"));
        }
        let doc = InputDocument::parse(payload, &envelope.content_type)
            .map_err(|e| RouteFailure::rejected(e.to_string()))?;
        let r = doc.evaluate_string(
            "count(for $i in 1 to 1000, $j in 1 to 1000, $k in 1 to 1000 return (if ($k = -1) then 1 else ()))",
            &[],
            "",
            "",
        );
        Err(RouteFailure::rejected(format!("evaluation ended: {r:?}")))
    }
}

async fn route_one(stubborn: bool) -> (MessageState, Option<String>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let router = Arc::new(Runaway {
        calls: AtomicUsize::new(0),
        stubborn,
    });
    let settings = HubSettings {
        route_budget: Duration::from_secs(1),
        ..HubSettings::default()
    };
    let hub = common::hub(dir.path(), router.clone(), settings);
    let shutdown = CancellationToken::new();
    let engine = tokio::spawn(hub.clone().run(shutdown.clone()));
    let accepted = hub
        .submit(common::submission(&b"<a/>"[..], "application/xml"))
        .await
        .unwrap();
    let (state, reason) = common::settle(&hub, accepted.id).await;
    // Give a second claim every chance to happen (there must be none).
    tokio::time::sleep(Duration::from_millis(300)).await;
    shutdown.cancel();
    engine.await.unwrap().unwrap();
    (state, reason, router.calls.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_routing_ends_dead_with_the_reason() {
    let (state, reason, calls) = route_one(false).await;
    assert_eq!(state, MessageState::Dead);
    assert_eq!(
        reason.as_deref(),
        Some("routing exceeded the time budget of 1 s")
    );
    assert_eq!(calls, 1, "routed exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routing_that_ignores_the_budget_is_settled_without_waiting_for_it() {
    let (state, reason, calls) = route_one(true).await;
    assert_eq!(state, MessageState::Dead);
    assert_eq!(
        reason.as_deref(),
        Some("routing exceeded the time budget of 1 s")
    );
    assert_eq!(calls, 1, "routed exactly once");
}
