//! What a running channel reports besides messages (its
//! `ChannelStatus`): its counters appear in `/metrics` as
//! `drehscheibe_channel_events_total{channel, event}` and its attention
//! lines in `/readyz`, which stays `200` — e.g. the FIT-Connect
//! subscriber's refused and given-up SETs (issue 10, defect 6).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::TestHub;
use drehscheibe_model::health::ChannelStatus;

#[derive(Default)]
struct FakeStatus {
    refused: AtomicU64,
}

impl ChannelStatus for FakeStatus {
    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("set_refused", self.refused.load(Ordering::SeqCst))]
    }

    fn attention(&self) -> Vec<String> {
        match self.refused.load(Ordering::SeqCst) {
            0 => Vec::new(),
            n => vec![format!("{n} receipts refused")],
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_counters_reach_metrics_and_attention_reaches_readyz() {
    let hub = TestHub::start().await;
    let status = Arc::new(FakeStatus::default());
    hub.hub.add_channel_status("fit-sub".into(), status.clone());
    let client = reqwest::Client::new();
    let text = |path: &'static str| {
        let client = client.clone();
        let url = hub.url(path);
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let metric = "drehscheibe_channel_events_total{channel=\"fit-sub\",event=\"set_refused\"}";

    let (code, body) = text("/readyz").await;
    assert_eq!(code, 200);
    assert!(!body.contains("fit-sub"), "{body}");
    let (_, body) = text("/metrics").await;
    assert!(body.contains(&format!("{metric} 0")), "{body}");

    status.refused.store(3, Ordering::SeqCst);
    let (code, body) = text("/readyz").await;
    assert_eq!(code, 200, "attention never makes the hub unready");
    assert!(
        body.contains("channel fit-sub: 3 receipts refused"),
        "{body}"
    );
    let (_, body) = text("/metrics").await;
    assert!(body.contains(&format!("{metric} 3")), "{body}");
    // Scraping twice does not count twice.
    let (_, body) = text("/metrics").await;
    assert!(body.contains(&format!("{metric} 3")), "{body}");
    // The channel restarted and counts from zero again: the exposed
    // counter never goes down, and grows by what is new.
    status.refused.store(2, Ordering::SeqCst);
    let (_, body) = text("/metrics").await;
    assert!(body.contains(&format!("{metric} 3")), "{body}");
    status.refused.store(4, Ordering::SeqCst);
    let (_, body) = text("/metrics").await;
    assert!(body.contains(&format!("{metric} 5")), "{body}");
}
