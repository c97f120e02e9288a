//! Idempotency keys are scoped to the authenticated sender: two senders of
//! one channel that happen to choose the same key get separate messages.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestHub, CHANNEL, SENDER_A, SENDER_B};
use serde_json::Value;

async fn post(hub: &TestHub, token: &str, key: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(hub.url(&format!("/api/v1/inbox/{CHANNEL}")))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .header("content-type", "application/xml")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn a_key_reused_by_another_sender_is_a_new_message() {
    let hub = TestHub::start().await;

    let (status, a) = post(&hub, SENDER_A, "antrag-1", "<antrag>a</antrag>").await;
    assert_eq!(status, 202);
    assert_eq!(a["duplicate"], false);

    // B, same key, other content: its own message, not A's conflict.
    let (status, b1) = post(&hub, SENDER_B, "antrag-1", "<antrag>b</antrag>").await;
    assert_eq!(status, 202, "{b1}");
    assert_eq!(b1["duplicate"], false);
    assert_ne!(b1["id"], a["id"]);

    // Same key and same content from both senders: each gets a message of
    // its own, never the other's id.
    let (status, b2) = post(&hub, SENDER_B, "antrag-2", "<antrag>a</antrag>").await;
    assert_eq!(status, 202);
    let (status, a2) = post(&hub, SENDER_A, "antrag-2", "<antrag>a</antrag>").await;
    assert_eq!(status, 202);
    assert_eq!(a2["duplicate"], false);
    assert_ne!(a2["id"], b2["id"]);

    // Within one sender the key still deduplicates and detects conflicts.
    let (status, again) = post(&hub, SENDER_B, "antrag-1", "<antrag>b</antrag>").await;
    assert_eq!(status, 202);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["id"], b1["id"]);
    let (status, conflict) = post(&hub, SENDER_A, "antrag-1", "<antrag>b</antrag>").await;
    assert_eq!(status, 409, "{conflict}");

    // The stored message carries its sender.
    let id: drehscheibe_model::MessageId = b1["id"].as_str().unwrap().parse().unwrap();
    let rec = hub.store.get(id).await.unwrap().unwrap();
    assert_eq!(rec.envelope.sender.principal, "portal-b");
    hub.shutdown.cancel();
}
