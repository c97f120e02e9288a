//! Crash tests of the protocol connectors' checkpoints (issue 10): hub A
//! runs as a child process and is killed (`SIGKILL`) after its connector
//! has handed a message to the far side — hub B, in this process — but
//! before A has recorded the outcome. The restarted A resumes from the
//! checkpoint on the delivery record instead of sending again: B holds one
//! message, its Fachverfahren gets the document once, A ends `delivered`.
//!
//! B's Fachverfahren answers 503 until A has been restarted, so B cannot
//! give a final answer and A's attempt is still waiting for one (FIT-Connect
//! `accept-submission`, XTA transport report) when it is killed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use drehscheibe_suite::receiver::{Behaviour, Receiver};
use drehscheibe_suite::{
    audit_actions, free_port, order, start, Api, HubProcess, TestConfig, OPERATOR, SENDER,
};

const LEISTUNG: &str = "99050012104000";
const AGS: &str = "09162000";
const WAIT: Duration = Duration::from_secs(90);
const DEST: &str = "5a0c7e1d-3b2f-4c8e-9d6a-2f1e0b9c8d7a";

fn key_file(name: &str) -> PathBuf {
    drehscheibe_suite::repo_root()
        .join("crates/fit-connect/tests/fixtures/keys")
        .join(name)
}

/// B's tenant: the Fachverfahren is the receiver, retried quickly.
fn b_tenant(url: &str) -> String {
    drehscheibe_suite::http_tenant(
        "alpha",
        AGS,
        LEISTUNG,
        url,
        "retry = { max_attempts = 200, initial_backoff = \"100ms\", max_backoff = \"200ms\" }",
    )
}

/// Post one order to A; returns its message id.
async fn post_order(api: &Api) -> String {
    let r = api
        .post(
            "portal",
            SENDER,
            "application/xml",
            order(AGS, LEISTUNG, 1000),
            None,
        )
        .await;
    assert_eq!(r.status().as_u16(), 202);
    r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Wait until A's message shows a `checkpoint` audit event and B's
/// Fachverfahren has been tried (B holds the message).
async fn wait_handed_over(api_a: &Api, id: &str, rx: &Receiver) {
    let end = Instant::now() + WAIT;
    loop {
        let view = api_a.message(id).await;
        let checkpointed = audit_actions(&view).iter().any(|a| a == "checkpoint");
        if checkpointed && !rx.requests("/fv").is_empty() {
            return;
        }
        assert!(Instant::now() < end, "not handed over in time: {view:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn message_count(api: &Api) -> usize {
    let (s, page) = api.get("/api/v1/messages", OPERATOR).await;
    assert_eq!(s, 200);
    page["items"].as_array().unwrap().len()
}

/// Kill A mid-delivery, restart it, let B's Fachverfahren recover, and
/// check that everything arrived once.
async fn crash_and_resume(a_cfg: &TestConfig, a_addr: SocketAddr, api_b: &Api, rx: &Receiver) {
    let log = a_cfg.path("hub-a.log");
    let hub_a = HubProcess::spawn(&a_cfg.main, a_addr, &log).await;
    let api_a = Api::new(a_addr);
    let id = post_order(&api_a).await;
    wait_handed_over(&api_a, &id, rx).await;
    assert_eq!(message_count(api_b).await, 1);

    hub_a.kill();
    let hub_a = HubProcess::spawn(&a_cfg.main, a_addr, &log).await;
    rx.set("/fv", Behaviour::Ok);

    let view = api_a.wait_state(&id, "delivered", WAIT).await;
    let got = rx.wait_accepted("/fv", 1, WAIT).await;
    // Give a second submission, had there been one, time to show.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(rx.accepted("/fv").len(), 1, "the Fachverfahren got it once");
    assert_eq!(
        message_count(api_b).await,
        1,
        "B holds one message: the restarted A resumed instead of sending again"
    );
    let checkpoints = audit_actions(&view)
        .iter()
        .filter(|a| *a == "checkpoint")
        .count();
    assert_eq!(
        checkpoints, 1,
        "one checkpoint, saved before the send: {view:#}"
    );
    drop(hub_a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fit_connect_connector_resumes_after_a_crash_without_a_second_submission() {
    let rx = Receiver::start().await;
    rx.set("/fv", Behaviour::Always(503));
    let b_port = free_port();
    let b_channel = format!(
        r#"
[channels.fit]
type = "fit-connect"
public_base_url = "http://127.0.0.1:{b_port}/fit-connect"
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
services = [{{ identifier = "urn:de:fim:leika:leistung:{LEISTUNG}", name = "Testleistung" }}]
"#,
        signing = key_file("signing.pem").display(),
        dec = key_file("dest-a.pem").display(),
    );
    let b_cfg = TestConfig::write(
        &format!("127.0.0.1:{b_port}"),
        &b_channel,
        &[("alpha", b_tenant(&rx.url("/fv")))],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    let api_b = Api::new(hub_b.addr);

    let a_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let a_tenant = format!(
        r#"id = "alpha"
name = "Kommune alpha (A)"
ags = "{AGS}"

[connectors.fit]
type = "fit-connect"
timeout = "60s"
retry = {{ max_attempts = 20, initial_backoff = "200ms", max_backoff = "500ms" }}
token_url = "http://127.0.0.1:{b_port}/fit-connect/token"
submission_api_url = "http://127.0.0.1:{b_port}/fit-connect"
client_id = "hub-a"
client_secret = {{ value = "hub-a-secret" }}
destination_id = "{DEST}"
data_schema_uri = "urn:drehscheibe:test:order:1"
service_name = "Testleistung"
poll_interval = "100ms"
max_wait = "45s"
require_accept = true

[[routes]]
leistung = "{LEISTUNG}"
rule = "testorder@^1"
targets = {{ fachverfahren = "fit" }}
"#
    );
    let a_cfg = TestConfig::write(&a_addr.to_string(), "", &[("alpha", a_tenant)]);
    crash_and_resume(&a_cfg, a_addr, &api_b, &rx).await;
    hub_b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xta_connector_resumes_after_a_crash_with_the_same_message_id() {
    let rx = Receiver::start().await;
    rx.set("/fv", Behaviour::Always(503));
    let b_port = free_port();
    let b_channel = r#"
[channels.xta]
type = "xta"
server_identity = "hub-b"

[[channels.xta.accounts]]
name = "land"
identifier = "dvdv:09000000"
tokens = [{ value = "tok-land" }]
"#;
    let b_cfg = TestConfig::write(
        &format!("127.0.0.1:{b_port}"),
        b_channel,
        &[("alpha", b_tenant(&rx.url("/fv")))],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    let api_b = Api::new(hub_b.addr);

    let a_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let a_tenant = format!(
        r#"id = "alpha"
name = "Kommune alpha (A)"
ags = "{AGS}"

[connectors.xta]
type = "xta"
timeout = "60s"
retry = {{ max_attempts = 20, initial_backoff = "200ms", max_backoff = "500ms" }}
url = "http://127.0.0.1:{b_port}/xta/xta"
account = "dvdv:09000000"
auth = {{ type = "bearer", token = {{ value = "tok-land" }} }}
reader = "dvdv:09162000"
service = "urn:drehscheibe:test:xta-order"
poll_interval = "100ms"
max_wait = "45s"

[[routes]]
leistung = "{LEISTUNG}"
rule = "testorder@^1"
targets = {{ fachverfahren = "xta" }}
"#
    );
    let a_cfg = TestConfig::write(&a_addr.to_string(), "", &[("alpha", a_tenant)]);
    crash_and_resume(&a_cfg, a_addr, &api_b, &rx).await;
    hub_b.shutdown().await.unwrap();
}
