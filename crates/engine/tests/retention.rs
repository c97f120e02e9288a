//! The retention sweeper on a real hub (sled store and blob store in a
//! temp dir): a finished message loses its payload and its attachment,
//! cannot be replayed, and later goes entirely; the counters show it.
//! Time is passed to the sweep, never waited for.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{TimeDelta, Utc};
use drehscheibe_engine::{
    HubSettings, ReplayError, RetentionSettings, RouteFailure, RoutePlan, RoutingPolicy,
};
use drehscheibe_model::{BlobStore, Envelope, Intake, MessageState, StagedAttachment};
use drehscheibe_store::{FsBlobStore, Retention, RetentionPolicy, StoreError};
use tokio_util::sync::CancellationToken;

struct RejectAll;

impl RoutingPolicy for RejectAll {
    fn route(&self, _envelope: &Envelope, _payload: &Bytes) -> Result<RoutePlan, RouteFailure> {
        Err(RouteFailure::rejected("no route in this test"))
    }
}

fn settings() -> RetentionSettings {
    RetentionSettings::with_policy(RetentionPolicy {
        default: Retention {
            payloads: Some(Duration::from_secs(86_400)),
            records: Some(Duration::from_secs(10 * 86_400)),
            failed: Some(Duration::from_secs(86_400)),
        },
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_purges_payload_and_attachment_then_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let hub = common::hub(
        dir.path(),
        Arc::new(RejectAll),
        HubSettings {
            idle_poll: Duration::from_millis(20),
            ..HubSettings::default()
        },
    );
    let shutdown = CancellationToken::new();
    let engine = tokio::spawn(hub.clone().run(shutdown.clone()));

    let blob = hub
        .stage_attachment(Box::pin(std::io::Cursor::new(b"%PDF-1.7 anlage".to_vec())))
        .await
        .unwrap();
    let mut submission = common::submission(&b"<antrag/>"[..], "application/xml");
    submission.attachments = vec![StagedAttachment {
        name: "anlage".into(),
        filename: Some("anlage.pdf".into()),
        content_type: "application/pdf".into(),
        blob: blob.clone(),
    }];
    let id = hub.submit(submission).await.unwrap().id;
    assert_eq!(common::settle(&hub, id).await.0, MessageState::Rejected);
    // A second hub-less view of the same blob directory.
    let blobs = FsBlobStore::open(&dir.path().join("blobs")).unwrap();
    assert!(blobs.contains(&blob).await.unwrap());

    let settings = settings();
    let early = hub.sweep(&settings, Utc::now(), true).await.unwrap();
    assert_eq!((early.payloads, early.records), (0, 0));

    let report = hub
        .sweep(&settings, Utc::now() + TimeDelta::days(2), false)
        .await
        .unwrap();
    assert_eq!((report.payloads, report.records), (1, 0));
    assert_eq!(report.bytes, 9);
    assert_eq!(report.blobs_removed, 1);
    assert!(
        !blobs.contains(&blob).await.unwrap(),
        "the attachment is gone"
    );
    assert!(matches!(
        hub.store().payload(id).await,
        Err(StoreError::Purged(_))
    ));
    match hub.replay(id, "operator:test", false).await {
        Err(ReplayError::PayloadPurged(_)) => {}
        other => panic!("expected PayloadPurged, got {other:?}"),
    }
    let metrics = hub.metrics().encode(Default::default(), &[]);
    assert!(
        metrics.contains("drehscheibe_retention_purged_payloads_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("drehscheibe_retention_blobs_removed_total 1"),
        "{metrics}"
    );

    let report = hub
        .sweep(&settings, Utc::now() + TimeDelta::days(11), false)
        .await
        .unwrap();
    assert_eq!(report.records, 1);
    assert_eq!(hub.store().get(id).await.unwrap(), None);
    let counts = hub.store().count_by_state().await.unwrap();
    assert!(counts.iter().all(|(_, n)| *n == 0), "{counts:?}");
    match hub.replay(id, "operator:test", false).await {
        Err(ReplayError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }

    shutdown.cancel();
    engine.await.unwrap().unwrap();
}

#[test]
fn settings_follow_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("hub.toml");
    std::fs::write(
        &main,
        "[server]\nlisten = \"127.0.0.1:0\"\n[retention]\npayloads = \"7d\"\ninterval = \"10s\"\nbatch = 50\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("tenants")).unwrap();
    std::fs::write(
        dir.path().join("tenants/a.toml"),
        "id = \"a\"\nname = \"A\"\n[retention]\nfailed = \"90d\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tenants/b.toml"),
        "id = \"b\"\nname = \"B\"\n",
    )
    .unwrap();
    let config =
        drehscheibe_config::HubConfig::load(&main, &drehscheibe_config::Plugins::new()).unwrap();
    let s = RetentionSettings::from_config(&config).unwrap();
    assert_eq!(s.interval, Duration::from_secs(10));
    assert_eq!(s.batch, 50);
    let day = |n: u64| Some(Duration::from_secs(n * 86_400));
    assert_eq!(s.policy.default.payloads, day(7));
    assert_eq!(s.policy.default.failed, None);
    let a = s.policy.for_tenant(Some("a"));
    assert_eq!(
        (a.payloads, a.records, a.failed),
        (day(7), day(365), day(90))
    );
    assert_eq!(s.policy.for_tenant(Some("b")), &s.policy.default);

    std::fs::write(
        &main,
        "[server]\nlisten = \"127.0.0.1:0\"\n[retention]\nenabled = false\n",
    )
    .unwrap();
    let config =
        drehscheibe_config::HubConfig::load(&main, &drehscheibe_config::Plugins::new()).unwrap();
    assert_eq!(RetentionSettings::from_config(&config), None);
}
