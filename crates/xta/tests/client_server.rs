//! The client side against the crate's own XTA-WS server on loopback:
//! the `xta` connector sends into the server's intake; the `xta-mailbox`
//! connector fills a hosted mailbox that the `xta-poller` empties.
#![allow(clippy::unwrap_used)]

mod client_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use client_support::{request, MemBlobs, MemIntake};
use drehscheibe_model::{BlobStore, Connector, Intake};
use drehscheibe_xta::client::{XtaClient, XtaClientSettings, XtaEndpoints};
use drehscheibe_xta::connector::{MetaDefaults, XtaConnector, XtaConnectorSettings};
use drehscheibe_xta::mailbox_connector::{
    mailbox_message_id, XtaMailboxConnector, XtaMailboxConnectorSettings,
};
use drehscheibe_xta::model::{keys, PartyIdentifier};
use drehscheibe_xta::poller::{XtaPoller, XtaPollerSettings};
use drehscheibe_xta::server::{Account, XtaServer, XtaServerSettings};
use tokio_util::sync::CancellationToken;

const DOC: &[u8] = b"<?xml version=\"1.0\"?><b:Antrag xmlns:b=\"http://www.xleitstelle.de/xbau/2/3\"><b:v>\xc3\xbc &amp; ok</b:v></b:Antrag>";

fn accounts() -> Vec<Account> {
    vec![
        Account {
            name: "land".into(),
            identifier: PartyIdentifier::new("dvdv:09000000", "xoev"),
            tokens: vec!["tok-land".into()],
            cert_fingerprints: vec![],
        },
        Account {
            name: "kommune".into(),
            identifier: PartyIdentifier::new("dvdv:01001000", "xoev"),
            tokens: vec!["tok-kommune".into()],
            cert_fingerprints: vec![],
        },
    ]
}

/// The hosting server's identity: mailbox message ids are named after it
/// (issue 10, defect 12).
const IDENTITY: &str = "hub-b.example";

async fn serve(intake: Arc<dyn Intake>, dir: &std::path::Path) -> (XtaServer, String) {
    let store: Arc<dyn drehscheibe_store::Store> =
        Arc::new(drehscheibe_store::SledStore::open(&dir.join("store")).unwrap());
    let mut settings = XtaServerSettings::new("xta", dir.to_path_buf(), accounts());
    settings.server_identity = IDENTITY.into();
    let server = XtaServer::open(settings, intake, store).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/xta", l.local_addr().unwrap());
    let app = server.router();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (server, url)
}

fn client(url: &str, party: &str, token: &str) -> XtaClientSettings {
    XtaClientSettings {
        endpoints: XtaEndpoints::single(url),
        author: PartyIdentifier::new(party, "xoev"),
        client_cert_pem: None,
        ca_cert_pem: None,
        bearer_token: Some(token.into()),
        timeout: Duration::from_secs(10),
        max_answer_bytes: 1 << 20,
    }
}

#[tokio::test]
async fn connector_delivers_into_the_server_intake_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let intake = MemIntake::new("xta");
    let (_server, url) = serve(intake.clone(), dir.path()).await;
    let connector = XtaConnector::new(XtaConnectorSettings {
        client: client(&url, "dvdv:09000000", "tok-land"),
        meta: MetaDefaults {
            reader: Some(PartyIdentifier::new("dvdv:01001000", "xoev")),
            service: Some("urn:xoev-de:xbau:standard:xbau_2.3".into()),
            message_type: Some("baugenehmigung.antrag.0200".into()),
            ..Default::default()
        },
        report_wait: Duration::from_millis(100),
        report_poll_interval: Duration::from_millis(20),
        require_final_report: false,
    })
    .unwrap();
    let pdf: Vec<u8> = (0..1_500_000u32).map(|i| (i % 253) as u8).collect();
    let blobs = Arc::new(MemBlobs::default());
    let req = request(
        DOC,
        vec![("plan", "application/pdf", Bytes::from(pdf.clone()))],
        blobs,
        BTreeMap::new(),
    );
    let receipt = connector.deliver(req).await.unwrap();
    assert!(
        receipt.detail.starts_with("XTA urn:de:xta:messageid:"),
        "{}",
        receipt.detail
    );
    assert_eq!(intake.stored.lock().unwrap().len(), 1);
    let s = intake.stored.lock().unwrap()[0].1.clone();
    assert_eq!(s.payload.as_ref(), DOC);
    assert_eq!(
        s.correlation_ids[keys::SERVICE],
        "urn:xoev-de:xbau:standard:xbau_2.3"
    );
    assert_eq!(
        s.correlation_ids[keys::MESSAGE_TYPE],
        "baugenehmigung.antrag.0200"
    );
    assert_eq!(s.correlation_ids[keys::AUTHOR], "dvdv:09000000");
    assert_eq!(s.correlation_ids[keys::READER], "dvdv:01001000");
    assert!(receipt
        .detail
        .contains(&s.correlation_ids[keys::MESSAGE_ID]));
    assert_eq!(s.attachments.len(), 1);
    assert_eq!(
        intake.blobs.get(&s.attachments[0].blob).as_ref(),
        pdf.as_slice()
    );

    // Sending as another party than the account is refused for good.
    let foreign = XtaConnector::new(XtaConnectorSettings {
        client: client(&url, "dvdv:07000000", "tok-land"),
        meta: MetaDefaults {
            reader: Some(PartyIdentifier::new("dvdv:01001000", "xoev")),
            service: Some("urn:s".into()),
            ..Default::default()
        },
        report_wait: Duration::ZERO,
        report_poll_interval: Duration::from_millis(20),
        require_final_report: false,
    })
    .unwrap();
    let req = request(DOC, vec![], Arc::new(MemBlobs::default()), BTreeMap::new());
    let e = foreign.deliver(req).await.unwrap_err();
    assert!(
        !e.retryable && e.reason.contains("PermissionDenied"),
        "{e:?}"
    );
    // A wrong token is refused for good as well.
    let bad = XtaClient::new(client(&url, "dvdv:09000000", "wrong")).unwrap();
    let e = bad.create_message_id().await.unwrap_err();
    assert!(!e.is_retryable(), "{e}");
    let e = bad.check_account_active().await.unwrap_err();
    assert!(e.fault().is_some_and(|f| !f.kind.is_retryable()), "{e}");
    let good = XtaClient::new(client(&url, "dvdv:09000000", "tok-land")).unwrap();
    good.check_account_active().await.unwrap();
    // Transport report of an unknown message id: InvalidMessageID, dead.
    let e = good
        .get_transport_report("urn:de:xta:messageid:nowhere:1")
        .await
        .unwrap_err();
    assert_eq!(
        e.fault().map(|f| f.kind),
        Some(drehscheibe_xta::client::FaultKind::InvalidMessageId),
        "{e}"
    );
}

#[tokio::test]
async fn mailbox_connector_then_poller_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    // Hub B: its intake (and blob store) behind the XTA server.
    let hub_b = MemIntake::new("xta");
    let (server, url) = serve(hub_b.clone(), dir.path()).await;
    let mailbox = XtaMailboxConnector::new(
        server.mailboxes(),
        XtaMailboxConnectorSettings {
            account: "kommune".into(),
            server_identity: IDENTITY.into(),
            meta: MetaDefaults {
                author: Some(PartyIdentifier::new("dvdv:09000000", "xoev")),
                reader: Some(PartyIdentifier::new("dvdv:01001000", "xoev")),
                service: Some("urn:xoev-de:xbau:standard:xbau_2.3".into()),
                ..Default::default()
            },
        },
    );
    let blobs_b: Arc<MemBlobs> = hub_b.blobs.clone();
    let att = Bytes::from_static(b"\x00\x01binary\r\n--x--\r\n\xff");
    let req = request(
        DOC,
        vec![("anlage", "application/octet-stream", att.clone())],
        blobs_b.clone(),
        BTreeMap::new(),
    );
    let key = req.idempotency_key();
    let mut again = request(
        DOC,
        vec![("anlage", "application/octet-stream", att.clone())],
        blobs_b.clone(),
        BTreeMap::new(),
    );
    again.envelope.id = req.envelope.id;
    let r = mailbox.deliver(req).await.unwrap();
    assert!(
        r.detail.contains(&mailbox_message_id(IDENTITY, &key)),
        "{}",
        r.detail
    );
    assert!(
        r.detail.contains("urn:de:xta:messageid:hub-b.example:"),
        "{}",
        r.detail
    );
    // A retry of the same delivery does not add a second message.
    let r2 = mailbox.deliver(again).await.unwrap();
    assert!(r2.detail.contains("already there"), "{}", r2.detail);
    assert_eq!(server.mailboxes().list("kommune").await.unwrap().len(), 1);
    assert!(blobs_b
        .contains(
            &server.mailboxes().list("kommune").await.unwrap()[0]
                .message
                .blob
        )
        .await
        .unwrap());

    // Hub C polls the kommune account.
    let hub_c = MemIntake::new("xta-in");
    let hub_c_dyn: Arc<dyn Intake> = hub_c.clone();
    let poller = XtaPoller::new(XtaPollerSettings {
        channel: "xta-in".into(),
        client: client(&url, "dvdv:01001000", "tok-kommune"),
        poll_interval: Duration::from_millis(50),
        max_list_items: 10,
        services: vec![],
        message_types: vec![],
    })
    .unwrap();
    let stats = poller
        .poll_once(&hub_c_dyn, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (stats.submitted, stats.closed, stats.failed),
        (1, 1, 0),
        "{stats:?}"
    );
    let s = hub_c.stored.lock().unwrap()[0].1.clone();
    assert_eq!(s.payload.as_ref(), DOC);
    assert_eq!(
        s.idempotency_key.as_deref(),
        Some(mailbox_message_id(IDENTITY, &key).as_str())
    );
    assert_eq!(s.correlation_ids[keys::AUTHOR], "dvdv:09000000");
    assert_eq!(s.attachments.len(), 1);
    assert_eq!(s.attachments[0].content_type, "application/octet-stream");
    assert_eq!(hub_c.blobs.get(&s.attachments[0].blob), att);
    assert!(server.mailboxes().list("kommune").await.unwrap().is_empty());
    // Nothing left: the next poll stores nothing.
    let stats = poller
        .poll_once(&hub_c_dyn, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((stats.listed, stats.submitted), (0, 0), "{stats:?}");
    assert_eq!(hub_c.stored.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn poller_pages_through_a_full_mailbox_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let hub_b = MemIntake::new("xta");
    let (server, url) = serve(hub_b.clone(), dir.path()).await;
    let mailbox = XtaMailboxConnector::new(
        server.mailboxes(),
        XtaMailboxConnectorSettings {
            account: "kommune".into(),
            server_identity: IDENTITY.into(),
            meta: MetaDefaults {
                author: Some(PartyIdentifier::new("dvdv:09000000", "xoev")),
                reader: Some(PartyIdentifier::new("dvdv:01001000", "xoev")),
                service: Some("urn:s".into()),
                ..Default::default()
            },
        },
    );
    for _ in 0..5 {
        let req = request(DOC, vec![], hub_b.blobs.clone(), BTreeMap::new());
        mailbox.deliver(req).await.unwrap();
    }
    assert_eq!(server.mailboxes().list("kommune").await.unwrap().len(), 5);

    let hub_c = MemIntake::new("xta-in");
    let adapter: Box<dyn drehscheibe_model::InputAdapter> = Box::new(
        XtaPoller::new(XtaPollerSettings {
            channel: "xta-in".into(),
            client: client(&url, "dvdv:01001000", "tok-kommune"),
            // Long interval: only the ItemsPending re-poll can finish in time.
            poll_interval: Duration::from_secs(60),
            max_list_items: 2,
            services: vec![],
            message_types: vec![],
        })
        .unwrap(),
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(adapter.run(hub_c.clone(), shutdown.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while hub_c.stored.lock().unwrap().len() < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(hub_c.stored.lock().unwrap().len(), 5);
    assert!(server.mailboxes().list("kommune").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_mb_attachment_goes_out_and_comes_back_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let hub_b = MemIntake::new("xta");
    let (server, url) = serve(hub_b.clone(), dir.path()).await;
    let connector = XtaConnector::new(XtaConnectorSettings {
        client: client(&url, "dvdv:09000000", "tok-land"),
        meta: MetaDefaults {
            reader: Some(PartyIdentifier::new("dvdv:01001000", "xoev")),
            service: Some("urn:s".into()),
            ..Default::default()
        },
        report_wait: Duration::ZERO,
        report_poll_interval: Duration::from_millis(20),
        require_final_report: false,
    })
    .unwrap();
    let big: Vec<u8> = (0..30_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let big = Bytes::from(big);
    let req = request(
        DOC,
        vec![("akte", "application/zip", big.clone())],
        Arc::new(MemBlobs::default()),
        BTreeMap::new(),
    );
    connector.deliver(req).await.unwrap();
    let s = hub_b.stored.lock().unwrap()[0].1.clone();
    assert_eq!(hub_b.blobs.get(&s.attachments[0].blob), big);

    // The same content through the hosted mailbox to a poller.
    let mailbox = XtaMailboxConnector::new(
        server.mailboxes(),
        XtaMailboxConnectorSettings {
            account: "kommune".into(),
            server_identity: IDENTITY.into(),
            meta: MetaDefaults::default(),
        },
    );
    let mut ids = s.correlation_ids.clone();
    ids.remove(keys::TRANSPORT);
    let req = request(
        DOC,
        vec![("akte", "application/zip", big.clone())],
        hub_b.blobs.clone(),
        ids,
    );
    mailbox.deliver(req).await.unwrap();
    let hub_c = MemIntake::new("xta-in");
    let hub_c_dyn: Arc<dyn Intake> = hub_c.clone();
    let stats = XtaPoller::new(XtaPollerSettings {
        channel: "xta-in".into(),
        client: client(&url, "dvdv:01001000", "tok-kommune"),
        poll_interval: Duration::from_millis(50),
        max_list_items: 10,
        services: vec![],
        message_types: vec![],
    })
    .unwrap()
    .poll_once(&hub_c_dyn, &CancellationToken::new())
    .await
    .unwrap();
    assert_eq!((stats.submitted, stats.closed), (1, 1), "{stats:?}");
    let c = hub_c.stored.lock().unwrap()[0].1.clone();
    assert_eq!(c.payload.as_ref(), DOC);
    assert_eq!(c.attachments[0].content_type, "application/zip");
    assert_eq!(hub_c.blobs.get(&c.attachments[0].blob), big);
    // Metadata came from the message's own XTA facts (author, reader,
    // service of the first hop).
    assert_eq!(c.correlation_ids[keys::AUTHOR], "dvdv:09000000");
    assert_eq!(c.correlation_ids[keys::READER], "dvdv:01001000");
    assert_eq!(c.correlation_ids[keys::SERVICE], "urn:s");
}
