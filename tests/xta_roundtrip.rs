//! Hub ↔ hub over XTA 2 on loopback:
//!
//! * hub A's `xta` connector sends a routed order (with an attachment) to
//!   hub B's XTA-WS server as account `land`;
//! * hub B routes it like any intake and its `xta-mailbox` connector puts
//!   it into the mailbox of account `kommune`;
//! * hub C's `xta-poller` channel polls B as `kommune`, submits the message
//!   (idempotency key = XTA message id) and closes it; C delivers it to an
//!   HTTP Fachverfahren.
//!
//! The document and the attachment arrive byte-exact, once; A's delivery
//! ends `delivered` with B's transport report (status 1) as receipt; B's
//! mailbox is empty afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use drehscheibe_model::Intake;
use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{
    free_port, multipart_body, order, start, Api, CrashAfterSubmit, TestConfig, SENDER,
};
use drehscheibe_xta::client::{XtaClientSettings, XtaEndpoints};
use drehscheibe_xta::model::PartyIdentifier;
use drehscheibe_xta::poller::{XtaPoller, XtaPollerSettings};
use tokio_util::sync::CancellationToken;

const LEISTUNG: &str = "99050012104000";
const AGS: &str = "09162000";
const WAIT: Duration = Duration::from_secs(90);
const SERVICE: &str = "urn:drehscheibe:test:xta-order";

/// Hub B: the XTA server with the sending account and the mailbox account.
fn b_channel() -> String {
    r#"
[channels.xta]
type = "xta"
server_identity = "hub-b"

[[channels.xta.accounts]]
name = "land"
identifier = "dvdv:09000000"
tokens = [{ value = "tok-land" }]

[[channels.xta.accounts]]
name = "kommune"
identifier = "dvdv:09162000"
tokens = [{ value = "tok-kommune" }]
"#
    .to_string()
}

/// Hub B's tenant: orders go into the `kommune` mailbox (author: the
/// original XTA author, or `extra` keys).
fn b_tenant(extra: &str) -> String {
    format!(
        r#"id = "alpha"
name = "Kommune alpha (B)"
ags = "{AGS}"

[connectors.box]
type = "xta-mailbox"
mailbox = "kommune"
reader = "dvdv:09162000"
{extra}

[[routes]]
leistung = "{LEISTUNG}"
rule = "testorder@^1"
targets = {{ fachverfahren = "box" }}
"#
    )
}

/// Hub C: polls the `kommune` mailbox on hub B.
fn c_channel(b_port: u16) -> String {
    format!(
        r#"
[channels.land]
type = "xta-poller"
url = "http://127.0.0.1:{b_port}/xta/xta"
account = "dvdv:09162000"
token = {{ value = "tok-kommune" }}
poll_interval = "100ms"
services = ["{SERVICE}"]
"#
    )
}

/// Hub C's tenant: delivers to the HTTP receiver.
fn c_tenant(url: &str) -> String {
    drehscheibe_suite::http_tenant("alpha", AGS, LEISTUNG, url, "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sends_over_xta_to_b_mailbox_and_c_polls_it_exactly_once() {
    let rx = Receiver::start().await;
    let b_port = free_port();
    let b_cfg = TestConfig::write(
        &format!("127.0.0.1:{b_port}"),
        &b_channel(),
        &[("alpha", b_tenant(""))],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    let a_cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[(
            "alpha",
            drehscheibe_suite::xta_sending_tenant(b_port, SERVICE),
        )],
    );
    let hub_a = start(&a_cfg.main).await.unwrap();
    let c_cfg = TestConfig::write(
        "127.0.0.1:0",
        &c_channel(b_port),
        &[("alpha", c_tenant(&rx.url("/fv")))],
    );
    let hub_c = start(&c_cfg.main).await.unwrap();
    let api_a = Api::new(hub_a.addr);
    let api_b = Api::new(hub_b.addr);
    let api_c = Api::new(hub_c.addr);

    let doc = order(AGS, LEISTUNG, 3000);
    let pdf: Vec<u8> = (0..400_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let boundary = "xta-roundtrip-boundary";
    let r = api_a
        .post(
            "portal",
            SENDER,
            &format!("multipart/form-data; boundary={boundary}"),
            multipart_body(boundary, &doc, &pdf),
            None,
        )
        .await;
    assert_eq!(r.status().as_u16(), 202);
    let a_id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // C's Fachverfahren gets document and attachment byte-exact.
    let got = rx.wait_accepted("/fv", 1, WAIT).await;
    assert_eq!(got.len(), 1);
    let ct = got[0].header("content-type");
    assert!(ct.starts_with("multipart/form-data"), "{ct}");
    let b = ct
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let body = got[0].body.clone();
    let mut parts = multer::Multipart::new(
        futures::stream::once(async move { Ok::<_, std::io::Error>(body) }),
        b,
    );
    let document = parts.next_field().await.unwrap().unwrap();
    assert_eq!(document.bytes().await.unwrap().as_ref(), doc.as_slice());
    let attachment = parts.next_field().await.unwrap().unwrap();
    assert_eq!(
        attachment.content_type().map(|m| m.to_string()).as_deref(),
        Some("application/pdf")
    );
    assert_eq!(attachment.bytes().await.unwrap().as_ref(), pdf.as_slice());

    // C's message carries the XTA facts of B's mailbox message; its
    // author is A's account.
    let c_id = got[0].header("x-drehscheibe-message-id");
    let c_view = api_c.message(&c_id).await;
    let ids = &c_view["envelope"]["correlation_ids"];
    assert_eq!(ids["xta.service"], SERVICE);
    assert_eq!(ids["xta.author"], "dvdv:09000000");
    assert_eq!(ids["xta.reader"], "dvdv:09162000");
    let mailbox_id = ids["xta.message_id"].as_str().unwrap().to_owned();
    // Named after hub B's `server_identity` (issue 10, defect 12).
    assert!(
        mailbox_id.starts_with("urn:de:xta:messageid:hub-b:"),
        "{mailbox_id}"
    );
    assert_eq!(c_view["envelope"]["idempotency_key"], mailbox_id.as_str());
    assert_eq!(c_view["envelope"]["sender"]["adapter"], "xta-poller");

    // A's delivery ends `delivered` with B's green transport report.
    let a_view = api_a.wait_state(&a_id, "delivered", WAIT).await;
    let delivery = &a_view["deliveries"][0];
    assert_eq!(delivery["state"], "delivered", "{a_view:#}");
    let receipt = delivery["receipt"].as_str().unwrap();
    assert!(receipt.contains("status 1"), "{receipt}");
    let sent_id = receipt.split_whitespace().nth(1).unwrap().to_owned();

    // B's routed message is the one A sent, delivered into the mailbox.
    let (status, list) = api_b
        .get("/api/v1/messages?limit=10", drehscheibe_suite::OPERATOR)
        .await;
    assert_eq!(status, 200, "{list:#}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list:#}");
    assert_eq!(items[0]["channel"], "xta");
    let b_id = items[0]["id"].as_str().unwrap().to_owned();
    let b_view = api_b.wait_state(&b_id, "delivered", WAIT).await;
    assert_eq!(
        b_view["envelope"]["correlation_ids"]["xta.message_id"],
        sent_id.as_str()
    );
    assert_eq!(b_view["envelope"]["sender"]["adapter"], "xta");
    let b_receipt = b_view["deliveries"][0]["receipt"].as_str().unwrap();
    assert!(b_receipt.contains(&mailbox_id), "{b_receipt}");

    // Exactly once: C polls on and nothing more arrives.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.accepted("/fv").len(), 1, "delivered exactly once");

    hub_c.shutdown().await.unwrap();
    hub_a.shutdown().await.unwrap();
    hub_b.shutdown().await.unwrap();
}

fn kommune_poller(b_port: u16) -> XtaPoller {
    XtaPoller::new(XtaPollerSettings {
        channel: "other".into(),
        client: XtaClientSettings {
            endpoints: XtaEndpoints::single(format!("http://127.0.0.1:{b_port}/xta/xta")),
            author: PartyIdentifier::new("dvdv:09162000", "xoev"),
            client_cert_pem: None,
            ca_cert_pem: None,
            bearer_token: Some("tok-kommune".into()),
            timeout: Duration::from_secs(10),
            max_answer_bytes: 1 << 20,
        },
        poll_interval: Duration::from_millis(100),
        max_list_items: 10,
        services: vec![],
        message_types: vec![],
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_submit_and_close_refetches_and_routes_once() {
    let rx = Receiver::start().await;
    // Hub B: orders posted to its portal go into the `kommune` mailbox.
    let b_port = free_port();
    let b_cfg = TestConfig::write(
        &format!("127.0.0.1:{b_port}"),
        &b_channel(),
        &[(
            "alpha",
            b_tenant("author = \"dvdv:01000000\"\nservice = \"urn:drehscheibe:test:xta-order\""),
        )],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    // Hub C: routes to the receiver; the poller runs in the test.
    let c_cfg = TestConfig::write("127.0.0.1:0", "", &[("alpha", c_tenant(&rx.url("/fv")))]);
    let hub_c = start(&c_cfg.main).await.unwrap();
    let c_intake: Arc<dyn Intake> = hub_c.hub.clone();

    let doc = order(AGS, LEISTUNG, 500);
    let b_id = Api::new(hub_b.addr)
        .submit("application/xml", doc.clone())
        .await;
    Api::new(hub_b.addr)
        .wait_state(&b_id, "delivered", WAIT)
        .await;

    // First poll: stored in C, then the "crash" before close.
    let crashing: Arc<dyn Intake> = Arc::new(CrashAfterSubmit(c_intake.clone()));
    let stats = kommune_poller(b_port)
        .poll_once(&crashing, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (stats.listed, stats.failed, stats.closed),
        (1, 1, 0),
        "{stats:?}"
    );

    // After the restart: the message is offered again, C knows it.
    let stats = kommune_poller(b_port)
        .poll_once(&c_intake, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (
            stats.listed,
            stats.duplicates,
            stats.submitted,
            stats.closed
        ),
        (1, 1, 0, 1),
        "{stats:?}"
    );
    let stats = kommune_poller(b_port)
        .poll_once(&c_intake, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(stats.listed, 0, "closed on B: {stats:?}");

    // Routed and delivered exactly once.
    let got = rx.wait_accepted("/fv", 1, WAIT).await;
    assert_eq!(got[0].body.as_ref(), doc.as_slice());
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.accepted("/fv").len(), 1, "delivered exactly once");
    let (status, list) = Api::new(hub_c.addr)
        .get("/api/v1/messages?limit=10", drehscheibe_suite::OPERATOR)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list:#}");

    hub_c.shutdown().await.unwrap();
    hub_b.shutdown().await.unwrap();
}
