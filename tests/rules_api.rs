//! The rule depot over the API on a real hub: which routes pin which
//! version, the diff between versions, publishing a new version (its own
//! tests must pass; it is in force at once), and the SLA report measured
//! from real deliveries.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{
    copy_dir, gewerbe_tenant, http_tenant, order, repo_root, start, zip_package, Api, TestConfig,
    OPERATOR, TENANT_ALPHA,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

async fn publish(api: &Api, token: &str, zip: Vec<u8>) -> (u16, Value) {
    let r = api
        .http
        .post(format!("{}/api/v1/rules", api.base))
        .bearer_auth(token)
        .header("content-type", "application/zip")
        .body(zip)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_diffs_and_publishing_a_version_that_is_in_force_at_once() {
    let rx = Receiver::start().await;
    let depot = tempfile::tempdir().unwrap();
    copy_dir(&repo_root().join("rules"), depot.path());
    let cfg = TestConfig::write_with_depot(
        "127.0.0.1:0",
        "",
        depot.path(),
        &[("alpha", gewerbe_tenant(rx.addr))],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);

    let (s, list) = api.get("/api/v1/rules", OPERATOR).await;
    assert_eq!(s, 200, "{list}");
    let find = |list: &Value, id: &str, v: &str| -> Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id && r["version"] == v)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let v21 = find(&list, "gewerbeanmeldung", "2.1.0");
    assert_eq!(v21["pinned_by"][0]["tenant"], "alpha");
    assert_eq!(v21["pinned_by"][0]["requirement"], "gewerbeanmeldung@^2");
    assert!(v21["files"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f == "dms.xsl"));
    assert_eq!(
        find(&list, "gewerbeanmeldung", "2.0.0")["pinned_by"],
        serde_json::json!([])
    );

    let (s, files) = api
        .get(
            "/api/v1/rules/gewerbeanmeldung/diff?a=2.1.0&b=3.0.0",
            OPERATOR,
        )
        .await;
    assert_eq!(s, 200, "{files}");
    let dms = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "dms.xsl")
        .unwrap();
    assert_eq!(dms["change"], "changed");
    assert!(dms["diff"]
        .as_str()
        .unwrap()
        .contains("+    xmlns:ds=\"urn:x-drehscheibe:rule\""));
    let (s, _) = api
        .get(
            "/api/v1/rules/gewerbeanmeldung/diff?a=2.1.0&b=7.0.0",
            OPERATOR,
        )
        .await;
    assert_eq!(s, 404);

    // A package whose own test fails is refused, and nothing is published.
    let src = repo_root().join("rules/gewerbeanmeldung/2.1.0");
    let bump = |rel: &str, text: String| {
        if rel == "rule.toml" {
            text.replace("version = \"2.1.0\"", "version = \"2.2.0\"")
        } else {
            text
        }
    };
    let red = zip_package(&src, "pkg", &|rel, text| {
        let text = bump(rel, text);
        if rel.ends_with("v2.2-anmeldung/expected/fachverfahren.xml") {
            text.replacen("<", "<!-- changed -->\n<", 1)
        } else {
            text
        }
    });
    let (s, p) = publish(&api, OPERATOR, red).await;
    assert_eq!(s, 422, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("v2.2-anmeldung"),
        "{p}"
    );
    assert!(!depot.path().join("gewerbeanmeldung/2.2.0").exists());
    let (s, _) = publish(&api, OPERATOR, b"not a zip".to_vec()).await;
    assert_eq!(s, 422);
    let (s, _) = publish(&api, TENANT_ALPHA, zip_package(&src, "pkg", &bump)).await;
    assert_eq!(s, 403);

    // A green one is published, recorded, and the pin ^2 takes it at once.
    let (s, p) = publish(&api, OPERATOR, zip_package(&src, "pkg", &bump)).await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["version"], "2.2.0");
    assert!(p["tests_passed"].as_u64().unwrap() >= 5, "{p}");
    assert_eq!(p["revision"]["path"], "rules/gewerbeanmeldung/2.2.0");
    assert_eq!(p["revision"]["author"], "operator");
    assert!(depot
        .path()
        .join("gewerbeanmeldung/2.2.0/rule.toml")
        .exists());
    let (_, list) = api.get("/api/v1/rules", OPERATOR).await;
    assert_eq!(
        find(&list, "gewerbeanmeldung", "2.2.0")["pinned_by"][0]["tenant"],
        "alpha"
    );
    let sample = std::fs::read(src.join("tests/v2.2-anmeldung/input.xml")).unwrap();
    let id = api.submit("application/xml", sample).await;
    let view = api.wait_state(&id, "delivered", WAIT).await;
    assert_eq!(view["rule"]["version"], "2.2.0", "{view:#}");
    // Versions are immutable.
    let (s, p) = publish(&api, OPERATOR, zip_package(&src, "pkg", &bump)).await;
    assert_eq!(s, 409, "{p}");

    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sla_report_measures_real_deliveries_against_the_target() {
    let rx = Receiver::start().await;
    let leistung = "99050012104000";
    let with_sla = |id: &str, ags: &str, path: &str, sla: &str| {
        http_tenant(id, ags, leistung, &rx.url(path), "").replace(
            "targets = { fachverfahren = \"fv\" }",
            &format!("targets = {{ fachverfahren = \"fv\" }}\nsla = {sla}"),
        )
    };
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[
            (
                "alpha",
                with_sla(
                    "alpha",
                    "01001000",
                    "/a",
                    "{ within = \"5m\", percent = 95 }",
                ),
            ),
            (
                "beta",
                with_sla(
                    "beta",
                    "02002000",
                    "/b",
                    "{ within = \"1ms\", percent = 100 }",
                ),
            ),
        ],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let mut beta_ids = Vec::new();
    for _ in 0..3 {
        let a = api
            .submit("application/xml", order("01001000", leistung, 10))
            .await;
        api.wait_state(&a, "delivered", WAIT).await;
        let b = api
            .submit("application/xml", order("02002000", leistung, 10))
            .await;
        api.wait_state(&b, "delivered", WAIT).await;
        beta_ids.push(b);
    }
    let (s, rows) = api.get("/api/v1/sla", OPERATOR).await;
    assert_eq!(s, 200, "{rows}");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let alpha = &rows[0];
    assert_eq!(alpha["tenant"], "alpha");
    assert_eq!(alpha["within_seconds"], 300.0);
    assert_eq!(alpha["day"]["received"], 3);
    assert_eq!(alpha["day"]["delivered"], 3);
    assert_eq!(alpha["day"]["met"], true);
    assert_eq!(alpha["week"]["within_target_percent"], 100.0);
    let p50 = alpha["day"]["p50_seconds"].as_f64().unwrap();
    let p95 = alpha["day"]["p95_seconds"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 <= p95 && p95 < 300.0, "{alpha}");
    assert!(alpha["breaches"].as_array().unwrap().is_empty());
    let beta = &rows[1];
    assert_eq!(beta["day"]["met"], false, "{beta}");
    let breached: Vec<&str> = beta["breaches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    for id in &beta_ids {
        assert!(breached.contains(&id.as_str()), "{id} not in {breached:?}");
    }
    // A tenant sees its own rows only.
    let (_, own) = api.get("/api/v1/sla", TENANT_ALPHA).await;
    assert_eq!(own.as_array().unwrap().len(), 1);
    assert_eq!(own[0]["tenant"], "alpha");

    hub.shutdown().await.unwrap();
}
