//! The `xta-poller` adapter against the server double: fetch → submit →
//! close, filters, exactly-once over a crash between submit and close,
//! broken content left in the box.
#![allow(clippy::unwrap_used)]

mod client_support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use client_support::{BoxEntry, Double, MemIntake, Part, Script, ScriptedFault};
use drehscheibe_model::{InputAdapter, Intake};
use drehscheibe_xta::client::{XtaClientSettings, XtaEndpoints};
use drehscheibe_xta::model::{
    keys, BusinessScenario, ContentDescription, DeliveryAttributes, KeyCode, MessageMetaData,
    MessageType, PartyIdentifier, Qualifier, TransportInfo,
};
use drehscheibe_xta::poller::{XtaPoller, XtaPollerSettings};
use tokio_util::sync::CancellationToken;

const XBAU: &str = "urn:xoev-de:xbau:standard:xbau_2.3";

fn meta(id: &str, service: &str) -> MessageMetaData {
    MessageMetaData {
        delivery_attributes: DeliveryAttributes {
            origin: Some("2026-11-30T10:00:00Z".into()),
            ..Default::default()
        },
        author: PartyIdentifier::new("dvdv:09000000", "xoev"),
        sender: None,
        reply_to: None,
        reader: PartyIdentifier {
            value: "dvdv:01001000".into(),
            kind: "xoev".into(),
            category: Some("Gemeinde".into()),
            name: None,
        },
        message_id: id.into(),
        in_reply_to: vec![],
        qualifier: Qualifier {
            subject: None,
            service: service.into(),
            business_scenario: BusinessScenario::Undefined("XBAU".into()),
            message_type: MessageType {
                code: KeyCode {
                    code: "baugenehmigung.antrag.0200".into(),
                    name: None,
                    list_uri: "urn:de:payloadSchema:elementName".into(),
                    list_version_id: "1.0".into(),
                },
                payload_schema: "http://www.xleitstelle.de/xbau/2/3".into(),
            },
        },
        msg_size: None,
        test_msg: None,
    }
}

fn part(ct: &str, filename: Option<&str>, bytes: &'static [u8]) -> Part {
    Part {
        description: ContentDescription {
            content_type: ct.into(),
            filename: filename.map(str::to_string),
            ..Default::default()
        },
        bytes: Bytes::from_static(bytes),
    }
}

fn entry(id: &str, service: &str, doc: &'static [u8], atts: Vec<Part>) -> BoxEntry {
    BoxEntry {
        meta: meta(id, service),
        message: part("text/xml", Some("antrag.xml"), doc),
        attachments: atts,
        broken_include: false,
        inline: false,
    }
}

fn poller(url: &str, services: Vec<String>) -> XtaPoller {
    XtaPoller::new(XtaPollerSettings {
        channel: "xta-in".into(),
        client: XtaClientSettings {
            endpoints: XtaEndpoints::single(url),
            author: PartyIdentifier::new("dvdv:01001000", "xoev"),
            client_cert_pem: None,
            ca_cert_pem: None,
            bearer_token: None,
            timeout: Duration::from_secs(5),
            max_answer_bytes: 1 << 20,
        },
        poll_interval: Duration::from_millis(50),
        max_list_items: 50,
        services,
        message_types: vec![],
    })
    .unwrap()
}

const DOC1: &[u8] =
    b"<x:Antrag xmlns:x=\"http://www.xleitstelle.de/xbau/2/3\"><x:n>1</x:n></x:Antrag>";
const DOC2: &[u8] =
    b"<x:Antrag xmlns:x=\"http://www.xleitstelle.de/xbau/2/3\"><x:n>2</x:n></x:Antrag>";
const PDF: &[u8] = b"%PDF-1.7\r\n--DOUBLE_BOUNDARY inside content\r\n%%EOF\x00\xff";

#[tokio::test]
async fn poll_fetches_submits_then_closes_and_honours_filters() {
    let double = Double::new();
    let url = double.serve().await;
    {
        let mut st = double.state.lock().unwrap();
        st.mailbox.push(entry(
            "urn:de:xta:messageid:broker:1",
            XBAU,
            DOC1,
            vec![part("application/pdf", Some("plan.pdf"), PDF)],
        ));
        st.mailbox
            .push(entry("urn:de:xta:messageid:broker:2", XBAU, DOC2, vec![]));
        st.mailbox.push(entry(
            "urn:de:xta:messageid:broker:3",
            "urn:other:service",
            DOC2,
            vec![],
        ));
    }
    let intake = MemIntake::new("xta-in");
    let dyn_intake: Arc<dyn Intake> = intake.clone();
    let p = poller(&url, vec![XBAU.into()]);
    let stats = p
        .poll_once(&dyn_intake, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (
            stats.listed,
            stats.filtered,
            stats.submitted,
            stats.closed,
            stats.failed
        ),
        (3, 1, 2, 2, 0),
        "{stats:?}"
    );
    let stored = intake.stored.lock().unwrap();
    assert_eq!(stored.len(), 2);
    let s = &stored[0].1;
    assert_eq!(s.payload.as_ref(), DOC1);
    assert_eq!(s.content_type, "text/xml");
    assert_eq!(
        s.idempotency_key.as_deref(),
        Some("urn:de:xta:messageid:broker:1")
    );
    assert_eq!(s.sender.adapter, "xta-poller");
    assert_eq!(s.sender.principal, "dvdv:09000000");
    assert_eq!(
        s.correlation_ids[keys::MESSAGE_ID],
        "urn:de:xta:messageid:broker:1"
    );
    assert_eq!(s.correlation_ids[keys::SERVICE], XBAU);
    assert_eq!(
        s.correlation_ids[keys::MESSAGE_TYPE],
        "baugenehmigung.antrag.0200"
    );
    assert_eq!(s.correlation_ids[keys::READER], "dvdv:01001000");
    let t = TransportInfo::from_correlation_ids(&s.correlation_ids).unwrap();
    assert_eq!(t.metadata, meta("urn:de:xta:messageid:broker:1", XBAU));
    assert_eq!(s.attachments.len(), 1);
    assert_eq!(s.attachments[0].content_type, "application/pdf");
    assert_eq!(s.attachments[0].filename.as_deref(), Some("plan.pdf"));
    assert_eq!(intake.blobs.get(&s.attachments[0].blob).as_ref(), PDF);
    drop(stored);

    let st = double.state.lock().unwrap();
    // Only the filtered message is left; it was never fetched.
    assert_eq!(st.mailbox.len(), 1);
    assert_eq!(
        st.mailbox[0].meta.message_id,
        "urn:de:xta:messageid:broker:3"
    );
    assert_eq!(st.calls.iter().filter(|c| *c == "getMessage").count(), 2);
    // Close names the request id of the listing and comes after each fetch.
    assert_eq!(st.closed.len(), 2);
    assert_eq!(st.closed[0].0, st.request_ids[0]);
    assert_eq!(
        st.calls,
        [
            "getStatusList",
            "getMessage",
            "close",
            "getMessage",
            "close"
        ]
    );
}

#[tokio::test]
async fn crash_between_submit_and_close_refetches_as_duplicate() {
    let double = Double::new();
    let url = double.serve().await;
    double.state.lock().unwrap().mailbox.push(entry(
        "urn:de:xta:messageid:broker:7",
        XBAU,
        DOC1,
        vec![part("application/pdf", None, PDF)],
    ));
    // The first close never answers: the poller is killed while waiting.
    double.script("close", Script::Hang);
    let intake = MemIntake::new("xta-in");
    let dyn_intake: Arc<dyn Intake> = intake.clone();

    let hang = double.hang.clone();
    let waiting = hang.notified();
    let first: Box<dyn InputAdapter> = Box::new(poller(&url, vec![]));
    let task = tokio::spawn(first.run(dyn_intake.clone(), CancellationToken::new()));
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("poller reached close");
    task.abort(); // the crash
    let _ = task.await;
    assert_eq!(
        intake.stored.lock().unwrap().len(),
        1,
        "stored before close"
    );
    assert_eq!(double.state.lock().unwrap().mailbox.len(), 1, "not closed");

    // A new poller (after the restart) fetches the message again.
    let stats = poller(&url, vec![])
        .poll_once(&dyn_intake, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (stats.submitted, stats.duplicates, stats.closed),
        (0, 1, 1),
        "{stats:?}"
    );
    let calls = intake.calls.lock().unwrap();
    assert_eq!(calls.len(), 2, "submitted twice");
    assert!(calls
        .iter()
        .all(|c| c.idempotency_key.as_deref() == Some("urn:de:xta:messageid:broker:7")));
    assert_eq!(intake.stored.lock().unwrap().len(), 1, "stored once");
    let st = double.state.lock().unwrap();
    assert!(st.mailbox.is_empty());
    assert_eq!(st.closed.len(), 1);
}

#[tokio::test]
async fn failed_close_is_retried_by_the_next_poll_without_a_second_message() {
    let double = Double::new();
    let url = double.serve().await;
    double.state.lock().unwrap().mailbox.push(entry(
        "urn:de:xta:messageid:broker:8",
        XBAU,
        DOC2,
        vec![],
    ));
    double.script(
        "close",
        Script::Fault(ScriptedFault {
            element: "XTAWSTechnicalProblemException",
            code: "9030",
            name: "Datenbank nicht erreichbar",
        }),
    );
    let intake = MemIntake::new("xta-in");
    let dyn_intake: Arc<dyn Intake> = intake.clone();
    let mut p = poller(&url, vec![]);
    let stats = p
        .poll_once(&dyn_intake, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((stats.submitted, stats.failed, stats.closed), (1, 1, 0));
    // The failed message is deferred on the same poller …
    let stats = p
        .poll_once(&dyn_intake, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(stats.deferred, 1, "{stats:?}");
    // … and taken again by a fresh one (or after the delay).
    p = poller(&url, vec![]);
    let stats = p
        .poll_once(&dyn_intake, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((stats.duplicates, stats.closed), (1, 1), "{stats:?}");
    assert_eq!(intake.stored.lock().unwrap().len(), 1);
    assert!(double.state.lock().unwrap().mailbox.is_empty());
}

#[tokio::test]
async fn broken_content_is_left_in_the_box_and_nothing_is_submitted() {
    let double = Double::new();
    let url = double.serve().await;
    let mut e = entry("urn:de:xta:messageid:broker:9", XBAU, DOC1, vec![]);
    e.broken_include = true;
    double.state.lock().unwrap().mailbox.push(e);
    let intake = MemIntake::new("xta-in");
    let dyn_intake: Arc<dyn Intake> = intake.clone();
    let stats = poller(&url, vec![])
        .poll_once(&dyn_intake, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((stats.failed, stats.closed), (1, 0), "{stats:?}");
    assert!(intake.calls.lock().unwrap().is_empty());
    assert_eq!(double.state.lock().unwrap().mailbox.len(), 1);
    assert!(!double
        .state
        .lock()
        .unwrap()
        .calls
        .contains(&"close".to_string()));
}

#[tokio::test]
async fn a_listing_failure_is_an_error_and_run_stops_on_shutdown() {
    let double = Double::new();
    let url = double.serve().await;
    double.script(
        "getStatusList",
        Script::Fault(ScriptedFault {
            element: "PermissionDeniedException",
            code: "9012",
            name: "Account unbekannt",
        }),
    );
    let intake = MemIntake::new("xta-in");
    let dyn_intake: Arc<dyn Intake> = intake.clone();
    let e = poller(&url, vec![])
        .poll_once(&dyn_intake, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("PermissionDeniedException 9012"),
        "{e}"
    );

    let shutdown = CancellationToken::new();
    let adapter: Box<dyn InputAdapter> = Box::new(poller(&url, vec![]));
    let task = tokio::spawn(adapter.run(dyn_intake, shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(150)).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let lists = double
        .state
        .lock()
        .unwrap()
        .calls
        .iter()
        .filter(|c| *c == "getStatusList")
        .count();
    assert!(lists >= 2, "polled repeatedly: {lists}");
}

#[tokio::test]
async fn inline_base64_content_is_decoded() {
    let double = Double::new();
    let url = double.serve().await;
    let mut e = entry(
        "urn:de:xta:messageid:broker:10",
        XBAU,
        DOC2,
        vec![part("application/pdf", Some("a.pdf"), PDF)],
    );
    e.inline = true;
    double.state.lock().unwrap().mailbox.push(e);
    let intake = MemIntake::new("xta-in");
    let dyn_intake: Arc<dyn Intake> = intake.clone();
    let stats = poller(&url, vec![])
        .poll_once(&dyn_intake, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((stats.submitted, stats.closed), (1, 1), "{stats:?}");
    let s = intake.stored.lock().unwrap()[0].1.clone();
    assert_eq!(s.payload.as_ref(), DOC2);
    assert_eq!(intake.blobs.get(&s.attachments[0].blob).as_ref(), PDF);
}
