//! Intake transcodes XML in another encoding to UTF-8 (issue 9, item 9):
//! the stored payload is UTF-8 with a declaration saying so, and the audit
//! trail records the original encoding. Real sled store in a temp dir.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use drehscheibe_engine::{HubSettings, RouteFailure, RoutePlan, RoutingPolicy};
use drehscheibe_model::{Envelope, Intake};

struct Never;

impl RoutingPolicy for Never {
    fn route(&self, _: &Envelope, _: &Bytes) -> Result<RoutePlan, RouteFailure> {
        Err(RouteFailure::rejected("not routed in this test"))
    }
}

#[tokio::test]
async fn latin1_xml_is_stored_as_utf8_and_the_transcoding_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let hub = common::hub(dir.path(), Arc::new(Never), HubSettings::default());
    let latin1 = hub
        .submit(common::submission(
            &b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><antrag>M\xFCller, Stra\xDFe</antrag>"[..],
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
        .submit(common::submission(
            &b"<a>\xE4</a>"[..],
            "text/xml; charset=ISO-8859-1",
        ))
        .await
        .unwrap();
    let stored = hub.store().payload(charset.id).await.unwrap().unwrap();
    assert_eq!(&stored[..], "<a>\u{E4}</a>".as_bytes());

    // UTF-8 stays byte for byte; bytes that are not what the declaration
    // says are still refused.
    let utf8 = hub
        .submit(common::submission(
            "<a>\u{FC}</a>".as_bytes(),
            "application/xml",
        ))
        .await
        .unwrap();
    let stored = hub.store().payload(utf8.id).await.unwrap().unwrap();
    assert_eq!(&stored[..], "<a>\u{FC}</a>".as_bytes());
    let refused = hub
        .submit(common::submission(&b"<a>\xFC</a>"[..], "application/xml"))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("UTF-8"), "{refused}");
}
