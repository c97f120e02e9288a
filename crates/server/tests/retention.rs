//! A message whose payload retention deleted: `GET …/payload` and
//! `POST …/replay` answer `410 Gone` (`payload-purged`), not a server
//! error; before, the payload is served with its media type.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Bytes;
use chrono::{TimeDelta, Utc};
use common::{TestHub, OPERATOR};
use drehscheibe_engine::RetentionSettings;
use drehscheibe_model::{
    sha256_hex, AuditEvent, Envelope, MessageId, MessageRecord, MessageState, SenderIdentity,
};
use drehscheibe_store::{Effects, Job, RetentionPolicy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_payload_is_gone_not_an_error() {
    let hub = TestHub::start().await;
    let payload = b"<antrag/>";
    let rec = MessageRecord::received(Envelope {
        id: MessageId::new(),
        channel: common::CHANNEL.into(),
        sender: SenderIdentity {
            adapter: "http".into(),
            principal: "portal-a".into(),
            remote_addr: None,
        },
        received_at: Utc::now(),
        content_type: "application/xml".into(),
        size: payload.len() as u64,
        sha256: sha256_hex(payload),
        correlation_ids: Default::default(),
        idempotency_key: None,
        tenant: None,
        kommune_key: None,
        leistung: None,
        attachments: Vec::new(),
    });
    let id = rec.id();
    let ev = AuditEvent::new(id, "test", "received", None, rec.state);
    hub.store
        .accept(&rec, Bytes::from_static(payload), ev, None)
        .await
        .unwrap();
    hub.store
        .update(id, &mut |r: &mut MessageRecord| {
            r.state = MessageState::Delivered;
            Ok(Effects {
                complete: vec![Job::Route { message: id }],
                ..Effects::default()
            })
        })
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let get = |path: String| client.get(hub.url(&path)).bearer_auth(OPERATOR).send();
    let r = get(format!("/api/v1/messages/{id}/payload")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/xml");
    assert_eq!(r.bytes().await.unwrap(), &payload[..]);

    let settings = RetentionSettings::with_policy(RetentionPolicy::default());
    let swept = hub
        .hub
        .sweep(&settings, Utc::now() + TimeDelta::days(31), false)
        .await
        .unwrap();
    assert_eq!(swept.payloads, 1);

    let r = get(format!("/api/v1/messages/{id}/payload")).await.unwrap();
    assert_eq!(r.status(), 410);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["type"].as_str().unwrap().ends_with("payload-purged"),
        "{body}"
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("deleted by retention at"),
        "{body}"
    );
    let r = client
        .post(hub.url(&format!("/api/v1/messages/{id}/replay")))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 410);
    // The record itself is still served, marked.
    let r = get(format!("/api/v1/messages/{id}")).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["payload_purged_at"].is_string(), "{body}");
    hub.shutdown.cancel();
}
