//! The `xta` connector against a WSDL-following server double on
//! loopback: happy path with MTOM content byte-exact, every fault class
//! mapped to retry or dead, message-id reuse across retries, red
//! transport reports.
#![allow(clippy::unwrap_used)]

mod client_support;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use client_support::{request, Double, MemBlobs, Script, ScriptedFault};
use drehscheibe_model::Connector;
use drehscheibe_testkit::KeptCheckpoint;
use drehscheibe_xta::client::{XtaClientSettings, XtaEndpoints};
use drehscheibe_xta::connector::{MetaDefaults, XtaConnector, XtaConnectorSettings};
use drehscheibe_xta::model::{keys, BusinessScenario, PartyIdentifier};
use std::sync::Arc;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n--not-a-boundary\r\n";
const DOC: &[u8] =
    b"<?xml version=\"1.0\"?><g:Gewerbeanzeige xmlns:g=\"urn:xoev-de:xgewerbeanzeige\"><g:Betrieb>B\xc3\xa4ckerei</g:Betrieb></g:Gewerbeanzeige>";

fn client_settings(url: &str) -> XtaClientSettings {
    XtaClientSettings {
        endpoints: XtaEndpoints::single(url),
        author: PartyIdentifier::new("dvdv:01001000", "xoev"),
        client_cert_pem: None,
        ca_cert_pem: None,
        bearer_token: Some("tok-nord".into()),
        timeout: Duration::from_secs(10),
        max_answer_bytes: 1 << 20,
    }
}

fn connector(url: &str) -> XtaConnector {
    XtaConnector::new(XtaConnectorSettings {
        client: client_settings(url),
        meta: MetaDefaults {
            reader: Some(PartyIdentifier::new("dvdv:02000000", "xoev")),
            service: Some("urn:xoev-de:xgewerbeanzeige:standard".into()),
            business_scenario: Some(BusinessScenario::Undefined("XGEWERBE".into())),
            ..Default::default()
        },
        report_wait: Duration::from_secs(2),
        report_poll_interval: Duration::from_millis(50),
        require_final_report: false,
    })
    .unwrap()
}

fn fault(element: &'static str, code: &'static str) -> ScriptedFault {
    ScriptedFault {
        element,
        code,
        name: "scripted",
    }
}

#[tokio::test]
async fn happy_path_sends_metadata_and_parts_byte_exact() {
    let double = Double::new();
    let url = double.serve().await;
    let blobs = Arc::new(MemBlobs::default());
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let req = request(
        DOC,
        vec![
            ("plan", "application/pdf", Bytes::from(big.clone())),
            ("foto", "image/png", Bytes::from_static(PNG)),
        ],
        blobs,
        BTreeMap::new(),
    );
    let receipt = connector(&url).deliver(req).await.unwrap();
    assert!(
        receipt.detail.contains("urn:de:xta:messageid:double:1")
            && receipt.detail.contains("status 1"),
        "{}",
        receipt.detail
    );
    let st = double.state.lock().unwrap();
    assert_eq!(
        st.calls,
        ["createMessageId", "sendMessage", "getTransportReport"]
    );
    let r = &st.received[0];
    assert_eq!(r.authorization.as_deref(), Some("Bearer tok-nord"));
    assert_eq!(r.meta.message_id, "urn:de:xta:messageid:double:1");
    assert_eq!(r.meta.author.value, "dvdv:01001000");
    assert_eq!(r.meta.reader.value, "dvdv:02000000");
    assert_eq!(
        r.meta.qualifier.service,
        "urn:xoev-de:xgewerbeanzeige:standard"
    );
    // message type derived from the document's root element
    assert_eq!(r.meta.qualifier.message_type.code.code, "Gewerbeanzeige");
    assert_eq!(
        r.meta.qualifier.message_type.payload_schema,
        "urn:xoev-de:xgewerbeanzeige"
    );
    assert_eq!(
        r.meta.msg_size,
        Some((DOC.len() + big.len() + PNG.len()) as u64)
    );
    assert_eq!(r.message.bytes.as_ref(), DOC);
    assert_eq!(r.message.description.content_type, "application/xml");
    assert_eq!(
        r.message.description.filename.as_deref(),
        Some("antrag.xml")
    );
    assert_eq!(r.attachments.len(), 2);
    assert_eq!(r.attachments[0].bytes.as_ref(), big.as_slice());
    assert_eq!(r.attachments[0].description.content_type, "application/pdf");
    assert_eq!(
        r.attachments[0].description.filename.as_deref(),
        Some("plan.bin")
    );
    assert_eq!(r.attachments[1].bytes.as_ref(), PNG);
}

#[tokio::test]
async fn metadata_falls_back_to_the_incoming_xta_metadata() {
    let double = Double::new();
    let url = double.serve().await;
    let c = XtaConnector::new(XtaConnectorSettings {
        client: client_settings(&url),
        meta: MetaDefaults::default(),
        report_wait: Duration::ZERO,
        report_poll_interval: Duration::from_millis(50),
        require_final_report: false,
    })
    .unwrap();
    let mut ids = BTreeMap::new();
    ids.insert(keys::READER.to_string(), "gad:010010000000".to_string());
    ids.insert(
        keys::SERVICE.to_string(),
        "urn:xoev-de:xbau:standard".to_string(),
    );
    ids.insert(
        keys::MESSAGE_TYPE.to_string(),
        "baugenehmigung.antrag.0200".to_string(),
    );
    ids.insert(
        keys::PAYLOAD_SCHEMA.to_string(),
        "http://www.xleitstelle.de/xbau/2/3".to_string(),
    );
    let req = request(DOC, vec![], Arc::new(MemBlobs::default()), ids);
    c.deliver(req).await.unwrap();
    let m = double.state.lock().unwrap().received[0].meta.clone();
    assert_eq!(m.reader.value, "gad:010010000000");
    assert_eq!(m.qualifier.service, "urn:xoev-de:xbau:standard");
    assert_eq!(
        m.qualifier.message_type.code.code,
        "baugenehmigung.antrag.0200"
    );

    // Without a reader anywhere the delivery is dead, nothing is sent.
    let req = request(DOC, vec![], Arc::new(MemBlobs::default()), BTreeMap::new());
    let e = c.deliver(req).await.unwrap_err();
    assert!(!e.retryable && e.reason.contains("reader"), "{e:?}");
    assert_eq!(double.state.lock().unwrap().received.len(), 1);
}

#[tokio::test]
async fn fault_classes_map_to_retry_or_dead() {
    let cases: [(&'static str, &'static str, bool); 6] = [
        ("XTAWSTechnicalProblemException", "9030", true),
        ("PermissionDeniedException", "9012", false),
        ("ParameterIsNotValidException", "9023", false),
        ("MessageSchemaViolationException", "9050", false),
        ("MessageVirusDetectionException", "9060", false),
        ("SyncAsyncException", "9081", false),
    ];
    for (element, code, retryable) in cases {
        let double = Double::new();
        let url = double.serve().await;
        double.script("sendMessage", Script::Fault(fault(element, code)));
        let req = request(DOC, vec![], Arc::new(MemBlobs::default()), BTreeMap::new());
        let e = connector(&url).deliver(req).await.unwrap_err();
        assert_eq!(e.retryable, retryable, "{element}: {e:?}");
        assert!(
            e.reason.contains(element) && e.reason.contains(code),
            "{element}: {}",
            e.reason
        );
        assert!(double.state.lock().unwrap().received.is_empty());
    }
    // A fault on createMessageId is classified the same way.
    let double = Double::new();
    let url = double.serve().await;
    double.script(
        "createMessageId",
        Script::Fault(fault("PermissionDeniedException", "9011")),
    );
    let req = request(DOC, vec![], Arc::new(MemBlobs::default()), BTreeMap::new());
    let e = connector(&url).deliver(req).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
}

#[tokio::test]
async fn network_errors_and_5xx_without_fault_are_retryable() {
    // Nothing listens on this port.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/xta", l.local_addr().unwrap());
    drop(l);
    let req = request(DOC, vec![], Arc::new(MemBlobs::default()), BTreeMap::new());
    let e = connector(&url).deliver(req).await.unwrap_err();
    assert!(e.retryable, "{e:?}");

    let double = Double::new();
    let url = double.serve().await;
    double.script("sendMessage", Script::Http(503));
    double.script("sendMessage", Script::Http(404));
    let c = connector(&url);
    let req = request(DOC, vec![], Arc::new(MemBlobs::default()), BTreeMap::new());
    let e = c.deliver(req).await.unwrap_err();
    assert!(e.retryable && e.reason.contains("HTTP 503"), "{e:?}");
    let req = request(DOC, vec![], Arc::new(MemBlobs::default()), BTreeMap::new());
    let e = c.deliver(req).await.unwrap_err();
    assert!(!e.retryable && e.reason.contains("HTTP 404"), "{e:?}");
}

#[tokio::test]
async fn retries_reuse_the_message_id_and_a_lost_answer_is_not_sent_twice() {
    let double = Double::new();
    let url = double.serve().await;
    let c = connector(&url);
    let blobs = Arc::new(MemBlobs::default());
    let kept = Arc::new(KeptCheckpoint::default());
    let mut req = request(DOC, vec![], blobs.clone(), BTreeMap::new());
    req.checkpoint = kept.checkpoint();
    let mut retry = request(DOC, vec![], blobs, BTreeMap::new());
    retry.envelope.id = req.envelope.id;
    retry.attempt = 2;

    // First attempt: the server stores the message but the answer is a
    // technical fault (answer lost / server hiccup after storing).
    double.script(
        "sendMessage",
        Script::DoThenFault(fault("XTAWSTechnicalProblemException", "9030")),
    );
    let e = c.deliver(req).await.unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert!(
        kept.0
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(|v| v.contains("double:1")),
        "the message id was checkpointed before sendMessage"
    );
    // Second attempt, by a new connector (a restarted hub): same message
    // id from the checkpoint; the server says 9024 (already used), which
    // proves the first attempt arrived.
    retry.checkpoint = kept.checkpoint();
    drop(c);
    let c = connector(&url);
    let receipt = c.deliver(retry).await.unwrap();
    assert!(receipt.detail.contains("double:1"), "{}", receipt.detail);
    let st = double.state.lock().unwrap();
    assert_eq!(st.received.len(), 1, "delivered once");
    assert_eq!(
        st.calls.iter().filter(|c| *c == "createMessageId").count(),
        1,
        "one message id for both attempts: {:?}",
        st.calls
    );
}

#[tokio::test]
async fn a_9024_on_a_first_attempt_is_dead() {
    let double = Double::new();
    let url = double.serve().await;
    double.script(
        "sendMessage",
        Script::Fault(fault("ParameterIsNotValidException", "9024")),
    );
    let req = request(DOC, vec![], Arc::new(MemBlobs::default()), BTreeMap::new());
    let e = connector(&url).deliver(req).await.unwrap_err();
    assert!(!e.retryable, "{e:?}");
}

#[tokio::test]
async fn red_transport_report_is_dead_and_open_report_is_accepted() {
    let double = Double::new();
    let url = double.serve().await;
    {
        let mut st = double.state.lock().unwrap();
        st.report_status = 3;
        st.report_errors = vec![("E1".into(), "Empfänger unbekannt".into())];
    }
    let req = request(DOC, vec![], Arc::new(MemBlobs::default()), BTreeMap::new());
    let e = connector(&url).deliver(req).await.unwrap_err();
    assert!(
        !e.retryable && e.reason.contains("status 3") && e.reason.contains("Empfänger unbekannt"),
        "{e:?}"
    );

    double.state.lock().unwrap().report_status = 0;
    let c = XtaConnector::new(XtaConnectorSettings {
        client: client_settings(&url),
        meta: MetaDefaults {
            reader: Some(PartyIdentifier::new("dvdv:02000000", "xoev")),
            service: Some("urn:s".into()),
            ..Default::default()
        },
        report_wait: Duration::from_millis(200),
        report_poll_interval: Duration::from_millis(50),
        require_final_report: false,
    })
    .unwrap();
    let req = request(DOC, vec![], Arc::new(MemBlobs::default()), BTreeMap::new());
    let r = c.deliver(req).await.unwrap();
    assert!(r.detail.contains("report open"), "{}", r.detail);
    let polls = double
        .state
        .lock()
        .unwrap()
        .calls
        .iter()
        .filter(|c| *c == "getTransportReport")
        .count();
    assert!(polls >= 3, "polled until the wait ended: {polls}");
}

/// Issue 10, defect 9: with `require_final_report` an open report is not a
/// delivery: the attempt fails retryably, and the next attempt (with the
/// checkpoint) only asks for the report again — no second sendMessage —
/// until the report is final.
#[tokio::test]
async fn an_open_report_is_not_final_when_a_final_report_is_required() {
    let double = Double::new();
    let url = double.serve().await;
    double.state.lock().unwrap().report_status = 0;
    let c = XtaConnector::new(XtaConnectorSettings {
        client: client_settings(&url),
        meta: MetaDefaults {
            reader: Some(PartyIdentifier::new("dvdv:02000000", "xoev")),
            service: Some("urn:s".into()),
            ..Default::default()
        },
        report_wait: Duration::from_millis(150),
        report_poll_interval: Duration::from_millis(50),
        require_final_report: true,
    })
    .unwrap();
    let kept = Arc::new(KeptCheckpoint::default());
    let blobs = Arc::new(MemBlobs::default());
    let mut req = request(DOC, vec![], blobs.clone(), BTreeMap::new());
    req.checkpoint = kept.checkpoint();
    let id = req.envelope.id;
    let e = c.deliver(req).await.unwrap_err();
    assert!(
        e.retryable && e.reason.contains("awaiting a final transport report"),
        "{e:?}"
    );

    double.state.lock().unwrap().report_status = 1;
    let mut retry = request(DOC, vec![], blobs, BTreeMap::new());
    retry.envelope.id = id;
    retry.attempt = 2;
    retry.checkpoint = kept.checkpoint();
    let r = c.deliver(retry).await.unwrap();
    assert!(r.detail.contains("status 1"), "{}", r.detail);
    let st = double.state.lock().unwrap();
    assert_eq!(
        st.calls.iter().filter(|c| *c == "sendMessage").count(),
        1,
        "the retry only asked for the report: {:?}",
        st.calls
    );
    assert_eq!(st.received.len(), 1);
}
