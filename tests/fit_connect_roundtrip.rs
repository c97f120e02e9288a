//! Hub ↔ hub over FIT-Connect on loopback: hub A's `fit-connect` sender
//! connector delivers to hub B's FIT-Connect intake; B decrypts, routes
//! and delivers to an HTTP receiver (the Fachverfahren). The document and
//! its attachment arrive byte-exact, and A's delivery ends `delivered`
//! only after B's verified `accept-submission`. Across the bridge the
//! acknowledgement means what it says: while B cannot deliver, A does not
//! count its delivery done, and when B gives up (dead, `reject-submission`)
//! A's message ends `dead` with B's rejection — the sender upstream of A
//! is never told "delivered" for a message no Fachverfahren took.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use drehscheibe_suite::receiver::{Behaviour, Receiver};
use drehscheibe_suite::{
    free_port, multipart_body, order, repo_root, start, Api, TestConfig, SENDER,
};

const DEST: &str = "5a0c7e1d-3b2f-4c8e-9d6a-2f1e0b9c8d7a";
const LEISTUNG: &str = "99050012104000";
const AGS: &str = "09162000";
const WAIT: Duration = Duration::from_secs(90);

fn key_file(name: &str) -> PathBuf {
    repo_root()
        .join("crates/fit-connect/tests/fixtures/keys")
        .join(name)
}

/// Hub B: a FIT-Connect intake hosting `DEST` for tenant `alpha`.
fn intake_channel(port: u16) -> String {
    format!(
        r#"
[channels.fit]
type = "fit-connect"
public_base_url = "http://127.0.0.1:{port}/fit-connect"
base_path = "/fit-connect"
signing_key = "{signing}"
signing_kid = "hub-b-set"
poll_interval = "50ms"

[[channels.fit.clients]]
client_id = "hub-a"
client_secret = {{ value = "hub-a-secret" }}
destinations = ["{DEST}"]

[[channels.fit.hosted_destinations]]
destination_id = "{DEST}"
tenant = "alpha"
decryption_keys = ["{dec}"]
services = [{{ identifier = "urn:de:fim:leika:leistung:{LEISTUNG}", name = "Testleistung", submission_schemas = [{{ schema_uri = "urn:drehscheibe:test:order:1", mime_type = "application/xml" }}] }}]
"#,
        signing = key_file("signing.pem").display(),
        dec = key_file("dest-a.pem").display(),
    )
}

/// Hub B's tenant: routes the order to the receiver.
fn b_tenant(url: &str) -> String {
    b_tenant_with(url, "")
}

fn b_tenant_with(url: &str, connector_extra: &str) -> String {
    format!(
        r#"id = "alpha"
name = "Kommune alpha (B)"
ags = "{AGS}"

[connectors.fv]
type = "http"
url = "{url}"
{connector_extra}

[[routes]]
leistung = "{LEISTUNG}"
rule = "testorder@^1"
targets = {{ fachverfahren = "fv" }}
"#
    )
}

/// Hub A's tenant: its Fachverfahren is B's FIT-Connect destination.
fn a_tenant(b_port: u16) -> String {
    a_tenant_with(b_port, "max_attempts = 3", "45s")
}

fn a_tenant_with(b_port: u16, retry: &str, max_wait: &str) -> String {
    format!(
        r#"id = "alpha"
name = "Kommune alpha (A)"
ags = "{AGS}"

[connectors.fit]
type = "fit-connect"
timeout = "60s"
retry = {{ {retry}, initial_backoff = "200ms", max_backoff = "300ms" }}
token_url = "http://127.0.0.1:{b_port}/fit-connect/token"
submission_api_url = "http://127.0.0.1:{b_port}/fit-connect"
client_id = "hub-a"
client_secret = {{ value = "hub-a-secret" }}
destination_id = "{DEST}"
service_name = "Testleistung"
poll_interval = "100ms"
max_wait = "{max_wait}"
require_accept = true

[[routes]]
leistung = "{LEISTUNG}"
rule = "testorder@^1"
targets = {{ fachverfahren = "fit" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_a_delivers_to_hub_b_over_fit_connect_and_ends_with_the_accept() {
    let rx = Receiver::start().await;
    let b_port = free_port();
    let b_cfg = TestConfig::write(
        &format!("127.0.0.1:{b_port}"),
        &intake_channel(b_port),
        &[("alpha", b_tenant(&rx.url("/fv")))],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    let a_cfg = TestConfig::write("127.0.0.1:0", "", &[("alpha", a_tenant(b_port))]);
    let hub_a = start(&a_cfg.main).await.unwrap();
    let api_a = Api::new(hub_a.addr);
    let api_b = Api::new(hub_b.addr);

    let doc = order(AGS, LEISTUNG, 2000);
    let pdf: Vec<u8> = (0..250_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let boundary = "fit-roundtrip-boundary";
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

    // B's Fachverfahren gets the document and the attachment byte-exact.
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
    assert_eq!(document.name(), Some("document"));
    assert_eq!(document.bytes().await.unwrap().as_ref(), doc.as_slice());
    let attachment = parts.next_field().await.unwrap().unwrap();
    assert_eq!(attachment.file_name(), Some("nachweis.pdf"));
    assert_eq!(
        attachment.content_type().map(|m| m.to_string()).as_deref(),
        Some("application/pdf")
    );
    assert_eq!(attachment.bytes().await.unwrap().as_ref(), pdf.as_slice());

    // B's message carries the FIT-Connect facts of A's submission.
    let b_id = got[0].header("x-drehscheibe-message-id");
    let b_view = api_b.message(&b_id).await;
    let ids = &b_view["envelope"]["correlation_ids"];
    assert_eq!(ids["fitconnect.destination_id"], DEST);
    let case = ids["fitconnect.case_id"].as_str().unwrap().to_owned();
    let submission = ids["fitconnect.submission_id"].as_str().unwrap().to_owned();

    // A's delivery ends `delivered` with B's accept-submission as receipt.
    let a_view = api_a.wait_state(&a_id, "delivered", WAIT).await;
    let delivery = &a_view["deliveries"][0];
    assert_eq!(delivery["state"], "delivered", "{a_view:#}");
    let receipt = delivery["receipt"].as_str().unwrap();
    assert!(receipt.contains("accept-submission"), "{receipt}");
    assert!(receipt.contains(&case), "{receipt}");
    assert!(receipt.contains(&submission), "{receipt}");
    assert_eq!(rx.accepted("/fv").len(), 1, "delivered exactly once");

    hub_a.shutdown().await.unwrap();
    hub_b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn across_the_bridge_a_is_done_only_when_b_is_and_b_s_rejection_comes_back() {
    let rx = Receiver::start().await;
    rx.set("/fv", Behaviour::Always(503));
    let b_port = free_port();
    let b_cfg = TestConfig::write(
        &format!("127.0.0.1:{b_port}"),
        &intake_channel(b_port),
        &[(
            "alpha",
            b_tenant_with(
                &rx.url("/fv"),
                "retry = { max_attempts = 500, initial_backoff = \"100ms\", max_backoff = \"200ms\" }",
            ),
        )],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    let a_cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[(
            "alpha",
            a_tenant_with(b_port, "max_attempts = 500", "500ms"),
        )],
    );
    let hub_a = start(&a_cfg.main).await.unwrap();
    let api_a = Api::new(hub_a.addr);

    let a_id = api_a
        .submit("application/xml", order(AGS, LEISTUNG, 500))
        .await;

    // B holds the submission and keeps failing towards its Fachverfahren;
    // A keeps waiting for the accept instead of counting it delivered.
    let end = std::time::Instant::now() + WAIT;
    while rx.requests("/fv").len() < 3 {
        assert!(
            std::time::Instant::now() < end,
            "B never tried its Fachverfahren"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let view = api_a.message(&a_id).await;
    assert_ne!(view["state"], "delivered", "{view:#}");
    assert_ne!(view["state"], "dead", "{view:#}");
    let last_error = view["deliveries"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        last_error.contains("awaiting accept-submission"),
        "{view:#}"
    );

    // B's Fachverfahren refuses for good: B's message goes dead, B sends
    // reject-submission, and A's message ends dead with that rejection.
    rx.set("/fv", Behaviour::Always(422));
    let view = api_a.wait_state(&a_id, "dead", WAIT).await;
    let last_error = view["deliveries"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(last_error.contains("reject-submission"), "{view:#}");
    assert!(view["deliveries"][0]["receipt"].is_null(), "{view:#}");
    assert!(rx.accepted("/fv").is_empty());

    hub_a.shutdown().await.unwrap();
    hub_b.shutdown().await.unwrap();
}
