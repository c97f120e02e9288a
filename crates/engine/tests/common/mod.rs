//! Shared set-up of the engine's integration tests: a hub on a real sled
//! store and blob store in a temp dir, with channel `in`.

#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use drehscheibe_engine::{ConnectorRegistry, Hub, HubSettings, RoutingPolicy};
use drehscheibe_model::{Intake, MessageId, MessageState, SenderIdentity, Submission};
use drehscheibe_store::{FsBlobStore, SledStore};

/// A hub with `settings` (plus channel `in`) storing below `dir`.
pub fn hub(dir: &Path, router: Arc<dyn RoutingPolicy>, mut settings: HubSettings) -> Arc<Hub> {
    let store = Arc::new(SledStore::open(&dir.join("store")).expect("open sled store"));
    let blobs = Arc::new(FsBlobStore::open(&dir.join("blobs")).expect("open blob store"));
    settings.channels.insert("in".to_owned());
    Hub::new(store, blobs, router, ConnectorRegistry::new(), settings)
}

/// A submission on channel `in`.
pub fn submission(payload: impl Into<Bytes>, content_type: &str) -> Submission {
    Submission {
        channel: "in".into(),
        sender: SenderIdentity {
            adapter: "test".into(),
            principal: "p".into(),
            remote_addr: None,
        },
        content_type: content_type.into(),
        payload: payload.into(),
        attachments: Vec::new(),
        idempotency_key: None,
        correlation_ids: BTreeMap::new(),
    }
}

/// Waits until the message has left `received`: its state and reason.
pub async fn settle(hub: &Hub, id: MessageId) -> (MessageState, Option<String>) {
    loop {
        let status = hub
            .status(id)
            .await
            .expect("status")
            .expect("message exists");
        if status.state != MessageState::Received {
            return (status.state, status.reason);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
