//! Intake transcodes XML in another encoding to UTF-8 (issue 9, item 9):
//! the stored payload is UTF-8 with a declaration saying so, and the audit
//! trail records the original encoding. Real sled store in a temp dir.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use drehscheibe_engine::{
    ConnectorRegistry, Hub, HubSettings, RouteFailure, RoutePlan, RoutingPolicy,
};
use drehscheibe_model::{Envelope, Intake, SenderIdentity, Submission};
use drehscheibe_store::{FsBlobStore, SledStore};

struct Never;

impl RoutingPolicy for Never {
    fn route(&self, _: &Envelope, _: &Bytes) -> Result<RoutePlan, RouteFailure> {
        Err(RouteFailure::rejected("not routed in this test"))
    }
}

fn submission(payload: &'static [u8], content_type: &str) -> Submission {
    Submission {
        channel: "in".into(),
        sender: SenderIdentity {
            adapter: "test".into(),
            principal: "p".into(),
            remote_addr: None,
        },
        content_type: content_type.into(),
        payload: Bytes::from_static(payload),
        attachments: Vec::new(),
        idempotency_key: None,
        correlation_ids: BTreeMap::new(),
    }
}

#[tokio::test]
async fn latin1_xml_is_stored_as_utf8_and_the_transcoding_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(&dir.path().join("store")).unwrap());
    let blobs = Arc::new(FsBlobStore::open(&dir.path().join("blobs")).unwrap());
    let hub = Hub::new(
        store,
        blobs,
        Arc::new(Never),
        ConnectorRegistry::new(),
        HubSettings {
            channels: HashSet::from(["in".to_owned()]),
            ..HubSettings::default()
        },
    );
    let latin1 = hub
        .submit(submission(
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><antrag>M\xFCller, Stra\xDFe</antrag>",
            "application/xml",
        ))
        .await
        .unwrap();
    let stored = hub.store().payload(latin1.id).await.unwrap().unwrap();
    assert_eq!(
        std::str::from_utf8(&stored).unwrap(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><antrag>M\u{FC}ller, Stra\u{DF}e</antrag>"
    );
    let audit = hub.store().audit(latin1.id).await.unwrap();
    assert!(
        audit[0]
            .detail
            .ends_with("transcoded from windows-1252 to UTF-8"),
        "{}",
        audit[0].detail
    );

    // A charset parameter names the encoding too.
    let charset = hub
        .submit(submission(b"<a>\xE4</a>", "text/xml; charset=ISO-8859-1"))
        .await
        .unwrap();
    let stored = hub.store().payload(charset.id).await.unwrap().unwrap();
    assert_eq!(&stored[..], "<a>\u{E4}</a>".as_bytes());

    // UTF-8 stays byte for byte; bytes that are not what the declaration
    // says are still refused.
    let utf8 = hub
        .submit(submission("<a>\u{FC}</a>".as_bytes(), "application/xml"))
        .await
        .unwrap();
    let stored = hub.store().payload(utf8.id).await.unwrap().unwrap();
    assert_eq!(&stored[..], "<a>\u{FC}</a>".as_bytes());
    let refused = hub
        .submit(submission(b"<a>\xFC</a>", "application/xml"))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("UTF-8"), "{refused}");
}
