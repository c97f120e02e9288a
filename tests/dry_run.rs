//! The dry run ("Probelauf") on a real hub with the shipped
//! `gewerbeanmeldung` rule: recognition, routing decision and every output
//! rendered and validated, nothing stored or delivered; two rule versions
//! compared on one message.
#![allow(clippy::unwrap_used)]

use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{
    gewerbe_tenant, order, repo_root, start, Api, TestConfig, OPERATOR, TENANT_ALPHA,
};
use serde_json::Value;

fn sample() -> Vec<u8> {
    std::fs::read(repo_root().join("rules/gewerbeanmeldung/2.1.0/tests/v2.2-anmeldung/input.xml"))
        .unwrap()
}

async fn dry(api: &Api, query: &str, token: &str, body: Vec<u8>) -> (u16, Value) {
    let r = api
        .http
        .post(format!("{}/api/v1/dry-run{query}", api.base))
        .bearer_auth(token)
        .header("content-type", "application/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_shows_recognition_routing_and_outputs_and_delivers_nothing() {
    let rx = Receiver::start().await;
    let cfg = TestConfig::write_with_depot(
        "127.0.0.1:0",
        "",
        &repo_root().join("rules"),
        &[("alpha", gewerbe_tenant(rx.addr))],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);

    let (s, run) = dry(&api, "?channel=portal", OPERATOR, sample()).await;
    assert_eq!(s, 200, "{run}");
    assert_eq!(run["outcome"], "routed", "{run:#}");
    assert_eq!(run["rule"]["id"], "gewerbeanmeldung");
    assert_eq!(
        run["rule"]["version"], "2.1.0",
        "the pin ^2 resolves to the newest 2.x"
    );
    assert_eq!(run["tenant"], "alpha");
    assert_eq!(run["kommune_key"], "12052000");
    assert_eq!(run["leistung"], "99050012104000");
    let outputs = run["outputs"].as_array().unwrap();
    let targets: Vec<&str> = outputs
        .iter()
        .map(|o| o["target"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["fachverfahren", "dms"]);
    assert_eq!(outputs[0]["connector"], "fv");
    assert_eq!(outputs[1]["connector"], "dms");
    // The outputs are the rule's own test expectations.
    for (o, file) in outputs.iter().zip(["fachverfahren.xml", "dms.xml"]) {
        let text = o["text"].as_str().unwrap();
        assert_eq!(o["size"].as_u64().unwrap() as usize, text.len());
        let expected = std::fs::read_to_string(repo_root().join(format!(
            "rules/gewerbeanmeldung/2.1.0/tests/v2.2-anmeldung/expected/{file}"
        )))
        .unwrap();
        let strip = |s: &str| s.split_whitespace().collect::<String>();
        // The DMS output carries the message id and time; the Fachverfahren
        // output is stable.
        if file == "fachverfahren.xml" {
            assert_eq!(strip(text), strip(&expected));
        } else {
            assert!(text.contains("<xdomea:Version>gewerbeanmeldung 2.1.0</xdomea:Version>"));
        }
    }
    assert_eq!(run["scans"][0]["verdict"], "off", "no [scanner] configured");

    // Nothing was stored or delivered.
    let (_, page) = api.get("/api/v1/messages", OPERATOR).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "{page}");
    assert!(rx.requests("/gewerbe").is_empty() && rx.requests("/dms").is_empty());

    // A message the rule refuses, and one for no Kommune.
    let broken = String::from_utf8(sample())
        .unwrap()
        .replace("12052000", "99999999");
    let (s, run) = dry(&api, "?channel=portal", OPERATOR, broken.into_bytes()).await;
    assert_eq!(s, 200);
    assert_eq!(run["outcome"], "rejected", "{run:#}");
    assert!(
        run["reason"].as_str().unwrap().contains("99999999"),
        "{run:#}"
    );
    let (s, run) = dry(&api, "?channel=portal", OPERATOR, order("01001000", "1", 1)).await;
    assert_eq!(
        (s, run["outcome"].as_str()),
        (200, Some("rejected")),
        "{run:#}"
    );

    // Requests that cannot run, and who may.
    let (s, p) = dry(&api, "?channel=nope", OPERATOR, sample()).await;
    assert_eq!(s, 404, "{p}");
    let (s, p) = dry(&api, "?channel=portal&version=x", OPERATOR, sample()).await;
    assert_eq!(s, 400, "{p}");
    let (s, _) = dry(&api, "?channel=portal", TENANT_ALPHA, sample()).await;
    assert_eq!(s, 403);
    let (s, run) = dry(&api, "?channel=portal&version=9.9.9", OPERATOR, sample()).await;
    assert_eq!((s, run["outcome"].as_str()), (200, Some("dead")), "{run:#}");

    // Two versions side by side.
    let r = api
        .http
        .post(format!(
            "{}/api/v1/dry-run/compare?channel=portal&a=2.1.0&b=3.0.0",
            api.base
        ))
        .bearer_auth(OPERATOR)
        .header("content-type", "application/xml")
        .body(sample())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["a"]["rule"]["version"], "2.1.0");
    assert_eq!(c["b"]["rule"]["version"], "3.0.0");
    let dms = c["diffs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["target"] == "dms")
        .unwrap();
    assert_eq!(dms["equal"], false);
    let diff = dms["diff"].as_str().unwrap();
    let line = |sign: char, v: &str| {
        diff.lines().any(|l| {
            l.starts_with(sign)
                && l[1..].trim() == format!("<xdomea:Version>gewerbeanmeldung {v}</xdomea:Version>")
        })
    };
    assert!(line('-', "2.1.0") && line('+', "3.0.0"), "{diff}");
    assert_eq!(c["b"]["outputs"][1]["container"], true);

    hub.shutdown().await.unwrap();
}
