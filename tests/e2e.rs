//! End-to-end: a real hub (in-process: axum on a loopback port, sled on
//! disk, the fixture rule depot) delivering to real HTTP receivers.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use drehscheibe_suite::receiver::{dead_url, Behaviour, Receiver};
use drehscheibe_suite::{
    audit_actions, http_tenant, metric, order, start, Api, TestConfig, OPERATOR, SENDER,
};
use serde_json::Value;

const LEISTUNG: &str = "99050012104000";
const WAIT: Duration = Duration::from_secs(20);

fn fast_retry(max_attempts: u32) -> String {
    format!(
        "retry = {{ max_attempts = {max_attempts}, initial_backoff = \"200ms\", max_backoff = \"2s\", multiplier = 2.0, jitter = 0.0 }}"
    )
}

fn delivery(view: &Value) -> &Value {
    &view["deliveries"][0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_byte_exact_with_audit_trail_and_metrics() {
    let rx = Receiver::start().await;
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[(
            "alpha",
            http_tenant("alpha", "01001000", LEISTUNG, &rx.url("/fv"), ""),
        )],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);

    let body = order("01001000", LEISTUNG, 2000);
    let r = api
        .post("portal", SENDER, "application/xml", body.clone(), None)
        .await;
    assert_eq!(r.status(), 202);
    let location = r
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let v: Value = r.json().await.unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/messages/{id}"));

    let got = rx.wait_accepted("/fv", 1, WAIT).await;
    assert_eq!(got[0].body.as_ref(), body.as_slice(), "byte-exact delivery");
    assert_eq!(got[0].header("x-drehscheibe-message-id"), id);
    assert!(got[0].header("content-type").starts_with("application/xml"));

    let view = api.wait_state(&id, "delivered", WAIT).await;
    assert_eq!(view["envelope"]["tenant"], "alpha");
    assert_eq!(view["envelope"]["leistung"], LEISTUNG);
    assert_eq!(view["envelope"]["size"], body.len() as u64);
    assert_eq!(view["rule"]["id"], "testorder");
    assert_eq!(view["rule"]["version"], "1.0.0");
    let d = delivery(&view);
    assert_eq!(d["state"], "delivered");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["connector"], "fv");
    // Every transition is audited, the routing step names the rule version.
    let actions = audit_actions(&view);
    assert!(actions.len() >= 3, "audit trail: {actions:?}");
    let routed = view["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["to"] == "routed")
        .unwrap_or_else(|| panic!("no transition to routed in {:#}", view["audit"]));
    assert_eq!(routed["rule"]["id"], "testorder");
    assert_eq!(routed["rule"]["version"], "1.0.0");
    // … and the configuration that routed it (its digest's first 12 hex
    // digits: several versions route side by side in a rolling restart).
    let detail = routed["detail"].as_str().unwrap_or("");
    let digest = detail
        .split("configuration ")
        .nth(1)
        .map(|d| d.chars().take_while(char::is_ascii_hexdigit).count());
    assert_eq!(digest, Some(12), "routed detail: {detail}");
    assert!(view["audit"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["to"] == "delivered"));
    // The attempt is audited as it happened: `delivering` (stamped when
    // the attempt began), then its outcome — in that order.
    let trail: Vec<(&str, &str, &str)> = view["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["to"].as_str().unwrap_or(""),
                e["at"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let states: Vec<&str> = trail.iter().map(|(_, to, _)| *to).collect();
    assert_eq!(
        states,
        ["received", "routed", "delivering", "delivered"],
        "audit trail: {trail:?}"
    );
    let at = |i: usize| chrono::DateTime::parse_from_rfc3339(trail[i].2).unwrap();
    assert!(at(1) <= at(2) && at(2) <= at(3), "audit times: {trail:?}");

    let m = api.metrics().await;
    assert!(
        metric(
            &m,
            "drehscheibe_messages_received_total{channel=\"portal\"}"
        ) >= 1.0,
        "{m}"
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with("drehscheibe_deliveries_delivered_total")
                && l.contains("tenant=\"alpha\"")
                && l.contains("connector=\"fv\"")),
        "{m}"
    );
    assert!(
        m.contains("drehscheibe_delivery_latency_seconds_bucket"),
        "{m}"
    );
    assert!(m.contains("drehscheibe_queue_depth"), "{m}");
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_backoff_until_the_receiver_recovers() {
    let rx = Receiver::start().await;
    rx.set("/flaky", Behaviour::FailTimes { n: 2, status: 503 });
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[(
            "alpha",
            http_tenant(
                "alpha",
                "01001000",
                LEISTUNG,
                &rx.url("/flaky"),
                &fast_retry(5),
            ),
        )],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let id = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    let view = api.wait_state(&id, "delivered", WAIT).await;
    assert_eq!(delivery(&view)["attempts"], 3);

    let reqs = rx.requests("/flaky");
    assert_eq!(reqs.len(), 3, "two failures then one success");
    assert_eq!(
        reqs.iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 503, 201]
    );
    // Backoff 200 ms then 400 ms (no jitter): the gaps respect the lower
    // bound, and nothing waits absurdly long.
    let gap1 = reqs[1].at - reqs[0].at;
    let gap2 = reqs[2].at - reqs[1].at;
    assert!(gap1 >= Duration::from_millis(190), "gap1 {gap1:?}");
    assert!(gap2 >= Duration::from_millis(390), "gap2 {gap2:?}");
    assert!(gap1 < Duration::from_secs(5) && gap2 < Duration::from_secs(5));
    assert!(audit_actions(&view).iter().any(|a| a.contains("fail")));
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_after_the_limit_and_replays_on_request() {
    let rx = Receiver::start().await;
    rx.set("/broken", Behaviour::Always(500));
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[(
            "alpha",
            http_tenant(
                "alpha",
                "01001000",
                LEISTUNG,
                &rx.url("/broken"),
                &fast_retry(3),
            ),
        )],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let body = order("01001000", LEISTUNG, 100);
    let id = api.submit("application/xml", body.clone()).await;
    let view = api.wait_state(&id, "dead", WAIT).await;
    let d = delivery(&view);
    let generation = d["generation"].as_u64().unwrap();
    assert_eq!(d["state"], "dead");
    assert_eq!(d["attempts"], 3);
    assert!(
        d["last_error"].as_str().unwrap().contains("500"),
        "last error names the status: {d}"
    );
    assert_eq!(rx.requests("/broken").len(), 3);
    let m = api.metrics().await;
    assert!(
        m.lines()
            .any(|l| l.starts_with("drehscheibe_deliveries_dead_total") && l.ends_with(" 1")),
        "{m}"
    );

    // The operator fixes the Fachverfahren and replays.
    rx.set("/broken", Behaviour::Ok);
    let (s, _) = api
        .post_empty(&format!("/api/v1/messages/{id}/replay"), SENDER)
        .await;
    assert_eq!(s, 404, "a sender cannot even see the message");
    let (s, v) = api
        .post_empty(&format!("/api/v1/messages/{id}/replay"), OPERATOR)
        .await;
    assert_eq!(s, 202, "{v}");
    let view = api.wait_state(&id, "delivered", WAIT).await;
    assert_eq!(view["envelope"]["id"], id.as_str(), "same message id");
    let d = delivery(&view);
    assert_eq!(
        d["generation"],
        generation + 1,
        "a replay is a new generation"
    );
    assert_eq!(rx.accepted("/broken")[0].body.as_ref(), body.as_slice());
    assert!(audit_actions(&view).iter().any(|a| a.contains("replay")));

    // A delivered message can be replayed too (new generation).
    let (s, _) = api
        .post_empty(&format!("/api/v1/messages/{id}/replay"), OPERATOR)
        .await;
    assert_eq!(s, 202);
    rx.wait_accepted("/broken", 2, WAIT).await;
    let view = api.wait_state(&id, "delivered", WAIT).await;
    assert_eq!(delivery(&view)["generation"], generation + 2);
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_endpoint_fails_visibly_and_goes_dead() {
    let url = dead_url("/nobody").await;
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[(
            "alpha",
            http_tenant("alpha", "01001000", LEISTUNG, &url, &fast_retry(2)),
        )],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let id = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    let view = api.wait_state(&id, "dead", WAIT).await;
    let err = delivery(&view)["last_error"].as_str().unwrap().to_owned();
    assert!(!err.is_empty());
    assert_eq!(delivery(&view)["attempts"], 2);
    // Listed for the operator as dead.
    let (s, page) = api.get("/api/v1/messages?state=dead", OPERATOR).await;
    assert_eq!(s, 200);
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == id.as_str()));
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_fachverfahren_does_not_starve_another() {
    let rx = Receiver::start().await;
    rx.set("/hang", Behaviour::Hang);
    let slow = http_tenant(
        "alpha",
        "01001000",
        LEISTUNG,
        &rx.url("/hang"),
        &format!("timeout = \"1s\"\nmax_concurrency = 1\n{}", fast_retry(2)),
    );
    let fast = http_tenant("beta", "02002000", LEISTUNG, &rx.url("/fast"), "");
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "workers = 2",
        &[("alpha", slow), ("beta", fast)],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let mut slow_ids = Vec::new();
    for _ in 0..6 {
        slow_ids.push(
            api.submit("application/xml", order("01001000", LEISTUNG, 10))
                .await,
        );
    }
    let mut fast_ids = Vec::new();
    for _ in 0..6 {
        fast_ids.push(
            api.submit("application/xml", order("02002000", LEISTUNG, 10))
                .await,
        );
    }
    // All fast deliveries complete while the slow endpoint holds its one
    // slot; the hanging endpoint never saw more than one request at a time.
    rx.wait_accepted("/fast", 6, Duration::from_secs(10)).await;
    for id in &fast_ids {
        api.wait_state(id, "delivered", WAIT).await;
    }
    let hung = rx.requests("/hang");
    for w in hung.windows(2) {
        assert!(
            w[1].at - w[0].at >= Duration::from_millis(900),
            "max_concurrency = 1 holds: requests overlapped"
        );
    }
    // The slow ones time out and end dead with a timeout reason.
    for id in &slow_ids {
        let v = api.wait_state(id, "dead", Duration::from_secs(60)).await;
        let e = delivery(&v)["last_error"].as_str().unwrap().to_lowercase();
        assert!(e.contains("time"), "timeout reason: {e}");
    }
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_makes_sender_retries_safe() {
    let rx = Receiver::start().await;
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[(
            "alpha",
            http_tenant("alpha", "01001000", LEISTUNG, &rx.url("/fv"), ""),
        )],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let body = order("01001000", LEISTUNG, 50);
    let r1 = api
        .post(
            "portal",
            SENDER,
            "application/xml",
            body.clone(),
            Some("antrag-4711"),
        )
        .await;
    assert_eq!(r1.status(), 202);
    let id1 = r1.json::<Value>().await.unwrap()["id"].clone();
    let r2 = api
        .post(
            "portal",
            SENDER,
            "application/xml",
            body.clone(),
            Some("antrag-4711"),
        )
        .await;
    assert!(r2.status() == 200 || r2.status() == 202, "{}", r2.status());
    let id2 = r2.json::<Value>().await.unwrap()["id"].clone();
    assert_eq!(id1, id2, "the retry names the same message");
    // Same key, different content: a conflict, not a silent overwrite.
    let r3 = api
        .post(
            "portal",
            SENDER,
            "application/xml",
            order("01001000", LEISTUNG, 51),
            Some("antrag-4711"),
        )
        .await;
    assert_eq!(r3.status(), 409);
    api.wait_state(id1.as_str().unwrap(), "delivered", WAIT)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.accepted("/fv").len(), 1, "delivered exactly once");
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_work_survives_a_restart_on_the_same_store() {
    let rx = Receiver::start().await;
    rx.set("/later", Behaviour::Always(503));
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[(
            "alpha",
            http_tenant(
                "alpha",
                "01001000",
                LEISTUNG,
                &rx.url("/later"),
                "retry = { max_attempts = 50, initial_backoff = \"100ms\", max_backoff = \"300ms\", jitter = 0.0 }",
            ),
        )],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let body = order("01001000", LEISTUNG, 10);
    let id = api.submit("application/xml", body.clone()).await;
    api.wait_state(&id, "failed", WAIT).await;
    hub.shutdown().await.unwrap();

    rx.set("/later", Behaviour::Ok);
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let view = api.wait_state(&id, "delivered", WAIT).await;
    assert!(delivery(&view)["attempts"].as_u64().unwrap() >= 2);
    assert_eq!(rx.accepted("/later")[0].body.as_ref(), body.as_slice());
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_submissions_route_like_xml() {
    let rx = Receiver::start().await;
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[(
            "alpha",
            http_tenant("alpha", "01001000", "99102013000000", &rx.url("/fv"), "")
                .replace("testorder@^1", "testjson@^1"),
        )],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let body =
        br#"{"kommune":"01001000","leistung":"99102013000000","hund":{"name":"Bello"}}"#.to_vec();
    let id = api.submit("application/json", body.clone()).await;
    let view = api.wait_state(&id, "delivered", WAIT).await;
    assert_eq!(view["rule"]["id"], "testjson");
    let got = rx.accepted("/fv");
    assert_eq!(got[0].body.as_ref(), body.as_slice());
    assert!(got[0]
        .header("content-type")
        .starts_with("application/json"));
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_transforms_use_tenant_parameters_and_may_refuse() {
    let rx = Receiver::start().await;
    let tenant = http_tenant("alpha", "01001000", LEISTUNG, &rx.url("/fv"), "")
        .replace("testorder@^1", "testxslt@^1")
        .replace(
            "targets = { fachverfahren = \"fv\" }",
            "targets = { fachverfahren = \"fv\" }\nparams = { mandant = \"M-17\" }",
        );
    let refused = "\n[[routes]]\nleistung = \"99000000000666\"\nrule = \"testxslt@^1\"\ntargets = { fachverfahren = \"fv\" }\nparams = { mandant = \"M-17\" }\n";
    let runaway = refused.replace("99000000000666", "99000000000777");
    let cfg = TestConfig::write("127.0.0.1:0", "", &[("alpha", tenant + refused + &runaway)]);
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let doc = |leistung: &str| {
        format!(
            "<o:xorder xmlns:o=\"urn:drehscheibe:test:order\" kommune=\"01001000\" leistung=\"{leistung}\"><o:item n=\"1\">Grüße</o:item><o:item n=\"2\">&amp; mehr</o:item></o:xorder>"
        )
        .into_bytes()
    };
    let id = api.submit("application/xml", doc(LEISTUNG)).await;
    let view = api.wait_state(&id, "delivered", WAIT).await;
    assert_eq!(view["rule"]["id"], "testxslt");
    let got = rx.accepted("/fv");
    let body = std::str::from_utf8(&got[0].body).unwrap();
    assert!(
        body.contains("<import mandant=\"M-17\" kommune=\"01001000\"><position nr=\"1\">Grüße</position><position nr=\"2\">&amp; mehr</position></import>"),
        "transformed output: {body}"
    );
    // the reserved parameters reach the stylesheet
    assert!(
        body.contains(&format!("<!--message {id} via ")) && body.contains(" for alpha-->"),
        "reserved parameters in the output: {body}"
    );
    // a non-terminating xsl:message lands in the audit trail of the routing step
    let routed = view["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "routed")
        .unwrap()
        .to_string();
    assert!(
        routed.contains("xsl:message (fachverfahren): positions: 2"),
        "{routed}"
    );

    // xsl:message terminate="yes" → rejected with the rule author's text.
    let id = api.submit("application/xml", doc("99000000000666")).await;
    let view = api.wait_state(&id, "rejected", WAIT).await;
    assert!(
        view["reason"]
            .as_str()
            .unwrap()
            .contains("not accepted by this Fachverfahren"),
        "{view}"
    );
    assert_eq!(rx.accepted("/fv").len(), 1);

    // A rule that recurses forever ends this one message dead with a clear
    // reason; the hub keeps running and keeps delivering.
    let id = api.submit("application/xml", doc("99000000000777")).await;
    let view = api.wait_state(&id, "dead", WAIT).await;
    let reason = view["reason"].as_str().unwrap();
    assert!(reason.contains("recursion"), "{view}");
    let id = api.submit("application/xml", doc(LEISTUNG)).await;
    api.wait_state(&id, "delivered", WAIT).await;
    assert_eq!(rx.accepted("/fv").len(), 2);
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_can_follow_the_state_of_what_they_submitted() {
    use drehscheibe_model::{DeliveryState, Intake, MessageId, MessageState};
    let rx = Receiver::start().await;
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[(
            "alpha",
            http_tenant("alpha", "01001000", LEISTUNG, &rx.url("/fv"), ""),
        )],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let id = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    api.wait_state(&id, "delivered", WAIT).await;
    let status = hub
        .hub
        .status(id.parse::<MessageId>().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.state, MessageState::Delivered);
    assert_eq!(status.rule.as_deref(), Some("testorder@1.0.0"));
    assert_eq!(status.deliveries.len(), 1);
    assert_eq!(status.deliveries[0].state, DeliveryState::Delivered);
    assert!(status.deliveries[0]
        .receipt
        .as_deref()
        .unwrap_or("")
        .contains("201"));
    assert!(hub.hub.status(MessageId::new()).await.unwrap().is_none());
    hub.shutdown().await.unwrap();
}
