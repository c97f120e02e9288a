//! Acknowledgements across a bridge (issue 10, defect 9): hub A delivers
//! over XTA to hub B, whose Fachverfahren is down. With
//! `require_final_report` A must not count the delivery done while B's
//! transport report is still open (status 0) — so nothing upstream of A
//! (a FIT-Connect intake's `accept-submission`) can be sent early — and
//! once B delivers (status 1), A ends `delivered`, having sent the message
//! once. Without the setting an open report counts as delivered (the
//! documented default), which the second half shows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use drehscheibe_suite::receiver::{Behaviour, Receiver};
use drehscheibe_suite::{free_port, order, start, Api, TestConfig, OPERATOR};

const LEISTUNG: &str = "99050012104000";
const AGS: &str = "09162000";
const WAIT: Duration = Duration::from_secs(60);

fn a_tenant(b_port: u16, require_final: bool) -> String {
    format!(
        r#"id = "alpha"
name = "Kommune alpha (A)"
ags = "{AGS}"

[connectors.xta]
type = "xta"
timeout = "30s"
retry = {{ max_attempts = 200, initial_backoff = "100ms", max_backoff = "200ms" }}
url = "http://127.0.0.1:{b_port}/xta/xta"
account = "dvdv:09000000"
auth = {{ type = "bearer", token = {{ value = "tok-land" }} }}
reader = "dvdv:09162000"
service = "urn:drehscheibe:test:xta-order"
poll_interval = "50ms"
max_wait = "300ms"
require_final_report = {require_final}

[[routes]]
leistung = "{LEISTUNG}"
rule = "testorder@^1"
targets = {{ fachverfahren = "xta" }}
"#
    )
}

async fn post(api: &Api) -> String {
    api.submit("application/xml", order(AGS, LEISTUNG, 500))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_counts_an_xta_delivery_done_only_on_the_final_report() {
    let rx = Receiver::start().await;
    rx.set("/fv", Behaviour::Always(503));
    let b_port = free_port();
    let b_cfg = TestConfig::write(
        &format!("127.0.0.1:{b_port}"),
        r#"
[channels.xta]
type = "xta"
server_identity = "hub-b"

[[channels.xta.accounts]]
name = "land"
identifier = "dvdv:09000000"
tokens = [{ value = "tok-land" }]
"#,
        &[(
            "alpha",
            drehscheibe_suite::http_tenant(
                "alpha",
                AGS,
                LEISTUNG,
                &rx.url("/fv"),
                "retry = { max_attempts = 200, initial_backoff = \"100ms\", max_backoff = \"200ms\" }",
            ),
        )],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    let a_cfg = TestConfig::write("127.0.0.1:0", "", &[("alpha", a_tenant(b_port, true))]);
    let hub_a = start(&a_cfg.main).await.unwrap();
    let api_a = Api::new(hub_a.addr);
    let api_b = Api::new(hub_b.addr);

    let id = post(&api_a).await;
    // B holds the message and keeps failing to deliver it; A keeps asking
    // for the final report instead of counting the delivery done.
    let end = Instant::now() + WAIT;
    while rx.requests("/fv").len() < 3 {
        assert!(Instant::now() < end, "B never tried its Fachverfahren");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let view = api_a.message(&id).await;
    assert_ne!(view["state"], "delivered", "{view:#}");
    let last_error = view["deliveries"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        last_error.contains("awaiting a final transport report"),
        "{view:#}"
    );
    assert!(
        view["deliveries"][0]["attempts"].as_u64().unwrap() >= 2,
        "{view:#}"
    );

    // B's Fachverfahren recovers: B delivers (report status 1), A follows.
    rx.set("/fv", Behaviour::Ok);
    let view = api_a.wait_state(&id, "delivered", WAIT).await;
    let receipt = view["deliveries"][0]["receipt"].as_str().unwrap();
    assert!(receipt.contains("status 1"), "{receipt}");
    assert_eq!(rx.accepted("/fv").len(), 1, "the Fachverfahren got it once");
    let (s, page) = api_b.get("/api/v1/messages", OPERATOR).await;
    assert_eq!(s, 200);
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "A's retries asked for the report; they sent nothing again"
    );
    hub_a.shutdown().await.unwrap();

    // The default: an open report after max_wait counts as delivered.
    rx.set("/fv", Behaviour::Always(503));
    let a2_cfg = TestConfig::write("127.0.0.1:0", "", &[("alpha", a_tenant(b_port, false))]);
    let hub_a2 = start(&a2_cfg.main).await.unwrap();
    let api_a2 = Api::new(hub_a2.addr);
    let id2 = post(&api_a2).await;
    let view = api_a2.wait_state(&id2, "delivered", WAIT).await;
    let receipt = view["deliveries"][0]["receipt"].as_str().unwrap();
    assert!(receipt.contains("report open"), "{receipt}");
    hub_a2.shutdown().await.unwrap();
    hub_b.shutdown().await.unwrap();
}
