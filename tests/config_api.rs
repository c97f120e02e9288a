//! The configuration API (ADR 0021) on a real hub: a change is checked
//! like `config check`, written to the tenant file, recorded with author
//! and diff, and the next message follows it without a restart; rollback,
//! hand edits (reload), conflicts, roles and the OpenAPI document.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{
    http_tenant, order, start, Api, TestConfig, OPERATOR, TENANT_ALPHA, TENANT_BETA,
};
use serde_json::{json, Value};

const LEISTUNG: &str = "99050012104000";
const WAIT: Duration = Duration::from_secs(20);
const ALPHA: &str = "tenants/alpha.toml";

async fn put(api: &Api, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = api
        .http
        .put(format!("{}/api/v1/config/files/{path}", api.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A PUT the hub refuses early: its status, or `None` when the hub
/// answered and closed the connection before the client had sent the
/// whole body (the client then sees a broken pipe or a reset, not the
/// answer). Any other failure fails the test.
async fn put_refused(api: &Api, path: &str, token: &str, body: Value) -> Option<u16> {
    // Its own connection, never returned to a pool: the hub closes it
    // with the body unread, and hyper's pool could otherwise hand that
    // connection (and its write error) to the test's next request.
    let own = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let sent = own
        .put(format!("{}/api/v1/config/files/{path}", api.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await;
    match sent {
        Ok(r) => Some(r.status().as_u16()),
        Err(e) => {
            let text = format!("{e:?}");
            assert!(
                e.is_request() && (text.contains("BrokenPipe") || text.contains("ConnectionReset")),
                "{text}"
            );
            None
        }
    }
}

async fn post_json(api: &Api, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = api
        .http
        .post(format!("{}{path}", api.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn two_tenants(rx: &Receiver) -> TestConfig {
    TestConfig::write(
        "127.0.0.1:0",
        "",
        &[
            (
                "alpha",
                http_tenant("alpha", "01001000", LEISTUNG, &rx.url("/one"), ""),
            ),
            (
                "beta",
                http_tenant("beta", "02002000", LEISTUNG, &rx.url("/beta"), ""),
            ),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_checked_written_recorded_and_followed_by_the_next_message() {
    let rx = Receiver::start().await;
    let cfg = two_tenants(&rx);
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);

    // Before: alpha delivers to /one.
    let first = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    rx.wait_accepted("/one", 1, WAIT).await;
    api.wait_state(&first, "delivered", WAIT).await;

    let (s, file) = api
        .get(&format!("/api/v1/config/files/{ALPHA}"), OPERATOR)
        .await;
    assert_eq!(s, 200, "{file}");
    assert_eq!(file["kind"], "tenant");
    assert_eq!(file["tenant"], "alpha");
    assert_eq!(file["editable"], true);
    let old_text = file["text"].as_str().unwrap().to_owned();
    let old_sha = file["sha256"].as_str().unwrap().to_owned();

    // A candidate that does not load is refused with config check's
    // problems, and nothing is written.
    let broken = old_text.replace(
        "targets = { fachverfahren = \"fv\" }",
        "targets = { fachverfahren = \"nope\" }",
    );
    let (s, p) = put(
        &api,
        ALPHA,
        OPERATOR,
        json!({ "text": broken, "expect_sha256": old_sha }),
    )
    .await;
    assert_eq!(s, 422, "{p}");
    assert_eq!(
        p["type"],
        "https://drehscheibe.dev/problems/invalid-configuration"
    );
    let errors = p["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().contains("alpha.toml")
                && e.as_str().unwrap().contains("nope")),
        "{p}"
    );
    assert_eq!(std::fs::read_to_string(cfg.path(ALPHA)).unwrap(), old_text);
    let (s, p) = post_json(
        &api,
        "/api/v1/config/check",
        OPERATOR,
        json!({ "path": ALPHA, "text": broken }),
    )
    .await;
    assert_eq!(s, 422, "{p}");

    // A valid change: checked, written, recorded, in force.
    let new_text = old_text.replace(&rx.url("/one"), &rx.url("/two"));
    let (s, p) = post_json(
        &api,
        "/api/v1/config/check",
        OPERATOR,
        json!({ "path": ALPHA, "text": new_text }),
    )
    .await;
    assert_eq!((s, &p["valid"]), (200, &json!(true)), "{p}");
    let (s, rev) = put(
        &api,
        ALPHA,
        OPERATOR,
        json!({ "text": new_text, "expect_sha256": old_sha, "comment": "Fachverfahren umgezogen" }),
    )
    .await;
    assert_eq!(s, 200, "{rev}");
    assert_eq!(rev["author"], "operator");
    assert_eq!(rev["path"], ALPHA);
    assert_eq!(rev["comment"], "Fachverfahren umgezogen");
    assert_eq!(rev["old_sha256"], old_sha.as_str());
    assert_eq!(std::fs::read_to_string(cfg.path(ALPHA)).unwrap(), new_text);
    let rev_id = rev["id"].as_u64().unwrap();

    let second = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    let got = rx.wait_accepted("/two", 1, WAIT).await;
    assert_eq!(got[0].header("x-drehscheibe-message-id"), second);
    assert_eq!(
        rx.accepted("/one").len(),
        1,
        "the old endpoint got nothing more"
    );
    // The audit trail names the configuration that routed it.
    let view = api.wait_state(&second, "delivered", WAIT).await;
    let digest = rev["config_digest"].as_str().unwrap();
    assert!(
        view.to_string()
            .contains(&format!("configuration {}", &digest[..12])),
        "{view:#}"
    );

    // A stale expect_sha256 is a conflict.
    let (s, p) = put(
        &api,
        ALPHA,
        OPERATOR,
        json!({ "text": old_text, "expect_sha256": old_sha }),
    )
    .await;
    assert_eq!(s, 409, "{p}");

    // History and diff.
    let (s, list) = api
        .get(&format!("/api/v1/config/revisions?path={ALPHA}"), OPERATOR)
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list[0]["id"], rev_id);
    let (s, shown) = api
        .get(&format!("/api/v1/config/revisions/{rev_id}"), OPERATOR)
        .await;
    assert_eq!(s, 200);
    let diff = shown["diff"].as_str().unwrap();
    assert!(
        diff.contains(&format!("-url = \"{}\"", rx.url("/one"))),
        "{diff}"
    );
    assert!(
        diff.contains(&format!("+url = \"{}\"", rx.url("/two"))),
        "{diff}"
    );

    // Writing the text the file has records nothing.
    let (s, p) = put(&api, ALPHA, OPERATOR, json!({ "text": new_text })).await;
    assert_eq!(s, 422, "{p}");

    // Rollback: the text before the revision again, as a new revision;
    // the next message follows it.
    let (s, back) = post_json(
        &api,
        &format!("/api/v1/config/revisions/{rev_id}/rollback"),
        OPERATOR,
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{back}");
    assert_eq!(back["comment"], format!("Rücknahme von Revision {rev_id}"));
    assert!(back["id"].as_u64().unwrap() > rev_id);
    assert_eq!(back["new_sha256"], old_sha.as_str());
    assert_eq!(std::fs::read_to_string(cfg.path(ALPHA)).unwrap(), old_text);
    let third = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    let got = rx.wait_accepted("/one", 2, WAIT).await;
    assert_eq!(got[1].header("x-drehscheibe-message-id"), third);
    assert_eq!(rx.accepted("/two").len(), 1);

    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_edits_are_found_recorded_by_datei_and_broken_ones_keep_the_config_in_force() {
    let rx = Receiver::start().await;
    let cfg = two_tenants(&rx);
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let file = cfg.path(ALPHA);
    let old_text = std::fs::read_to_string(&file).unwrap();

    // Nothing changed: a reload says so and records nothing.
    let (s, o) = api.post_empty("/api/v1/config/reload", OPERATOR).await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(o["changed"], false);

    // A hand edit that does not load: refused, reported, config in force
    // unchanged (the next message still goes to /one).
    std::fs::write(&file, old_text.replace("[[routes]]", "[[routes]\n")).unwrap();
    let (s, p) = api.post_empty("/api/v1/config/reload", OPERATOR).await;
    assert_eq!(s, 422, "{p}");
    let (_, overview) = api.get("/api/v1/config", OPERATOR).await;
    assert!(
        overview["disk_error"]
            .as_str()
            .unwrap()
            .contains("alpha.toml"),
        "{overview}"
    );
    api.submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    rx.wait_accepted("/one", 1, WAIT).await;

    // A valid hand edit: applied, recorded as by `Datei`.
    let new_text = old_text.replace(&rx.url("/one"), &rx.url("/hand"));
    std::fs::write(&file, &new_text).unwrap();
    let (s, o) = api.post_empty("/api/v1/config/reload", OPERATOR).await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(o["changed"], true);
    assert_eq!(
        o["connectors_rebuilt"],
        json!(["alpha/fv"]),
        "only the changed connector is rebuilt"
    );
    assert_eq!(o["revisions"][0]["author"], "Datei");
    assert_eq!(o["revisions"][0]["path"], ALPHA);
    assert_eq!(o["revisions"][0]["old_text"], old_text.as_str());
    let (_, overview) = api.get("/api/v1/config", OPERATOR).await;
    assert!(overview["disk_error"].is_null(), "{overview}");
    let id = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    let got = rx.wait_accepted("/hand", 1, WAIT).await;
    assert_eq!(got[0].header("x-drehscheibe-message-id"), id);

    // A new tenant file through the API adds a Kommune.
    let gamma = http_tenant("gamma", "03003000", LEISTUNG, &rx.url("/gamma"), "");
    let (s, rev) = put(
        &api,
        "tenants/gamma.toml",
        OPERATOR,
        json!({ "text": gamma }),
    )
    .await;
    assert_eq!(s, 200, "{rev}");
    assert!(rev["old_text"].is_null());
    assert!(cfg.path("tenants/gamma.toml").exists());
    let id = api
        .submit("application/xml", order("03003000", LEISTUNG, 10))
        .await;
    let got = rx.wait_accepted("/gamma", 1, WAIT).await;
    assert_eq!(got[0].header("x-drehscheibe-message-id"), id);
    // No path outside the tenant directory, no hidden or odd names.
    for bad in [
        "../evil.toml",
        "tenants/../hub2.toml",
        "tenants/.hidden.toml",
        "tenants/x.txt",
        "data/x.toml",
    ] {
        let (s, p) = put(&api, bad, OPERATOR, json!({ "text": gamma })).await;
        assert!(s == 404 || s == 403, "{bad}: {s} {p}");
    }

    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_main_file_and_the_openapi_document() {
    let rx = Receiver::start().await;
    let cfg = two_tenants(&rx);
    // A connector secret written inline: operators see it, the tenant
    // sees its own file with the secret masked.
    let alpha = cfg.path(ALPHA);
    let with_secret = std::fs::read_to_string(&alpha).unwrap().replace(
        "[[routes]]",
        "auth = { type = \"bearer\", token = { value = \"fv-geheim\" } }\n\n[[routes]]",
    );
    std::fs::write(&alpha, &with_secret).unwrap();
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);

    // The operator sees the main file, read-only.
    let (s, o) = api.get("/api/v1/config", OPERATOR).await;
    assert_eq!(s, 200, "{o}");
    let files = o["files"].as_array().unwrap();
    assert_eq!(files[0]["path"], "hub.toml");
    assert_eq!(files[0]["kind"], "main");
    assert_eq!(files[0]["editable"], false);
    assert_eq!(files.len(), 3);
    let main_text = std::fs::read_to_string(&cfg.main).unwrap();
    let (s, p) = put(&api, "hub.toml", OPERATOR, json!({ "text": main_text })).await;
    assert_eq!(s, 403, "{p}");

    // A tenant sees its own file only, and changes nothing.
    let (s, o) = api.get("/api/v1/config", TENANT_ALPHA).await;
    assert_eq!(s, 200);
    let paths: Vec<&str> = o["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, [ALPHA]);
    let (s, own) = api
        .get(&format!("/api/v1/config/files/{ALPHA}"), TENANT_ALPHA)
        .await;
    assert_eq!(s, 200);
    let own_text = own["text"].as_str().unwrap();
    assert!(!own_text.contains("fv-geheim"), "{own_text}");
    assert!(
        own_text.contains("token = { value = \"********\" }"),
        "{own_text}"
    );
    let (_, full) = api
        .get(&format!("/api/v1/config/files/{ALPHA}"), OPERATOR)
        .await;
    assert_eq!(full["text"], with_secret.as_str());
    let (s, _) = api
        .get(&format!("/api/v1/config/files/{ALPHA}"), TENANT_BETA)
        .await;
    assert_eq!(s, 404, "another Kommune's file does not exist for a tenant");
    let (s, _) = api.get("/api/v1/config/files/hub.toml", TENANT_ALPHA).await;
    assert_eq!(s, 404);
    let text = std::fs::read_to_string(cfg.path(ALPHA)).unwrap();
    let (s, _) = put(
        &api,
        ALPHA,
        TENANT_ALPHA,
        json!({ "text": text.replace("Kommune alpha", "X") }),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = api.post_empty("/api/v1/config/reload", TENANT_ALPHA).await;
    assert_eq!(s, 403);
    let (s, _) = api.get("/api/v1/config", drehscheibe_suite::SENDER).await;
    assert_eq!(s, 403);
    let (s, _) = api.get("/api/v1/config", "wrong").await;
    assert_eq!(s, 401);

    // Revisions of another Kommune's file are invisible to a tenant.
    let (s, rev) = put(&api, "tenants/beta.toml", OPERATOR, json!({
        "text": std::fs::read_to_string(cfg.path("tenants/beta.toml")).unwrap().replace("Kommune beta", "Gemeinde Beta")
    })).await;
    assert_eq!(s, 200, "{rev}");
    let id = rev["id"].as_u64().unwrap();
    let (s, _) = api
        .get(&format!("/api/v1/config/revisions/{id}"), TENANT_ALPHA)
        .await;
    assert_eq!(s, 404);
    let (s, _) = api
        .get(&format!("/api/v1/config/revisions/{id}"), TENANT_BETA)
        .await;
    assert_eq!(s, 200);
    let (s, list) = api.get("/api/v1/config/revisions", TENANT_ALPHA).await;
    assert_eq!((s, list.as_array().unwrap().len()), (200, 0), "{list}");

    // Export: the files as a ZIP archive, as a tenant its own only.
    let r = api
        .http
        .get(format!("{}/api/v1/config/export", api.base))
        .bearer_auth(TENANT_ALPHA)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let bytes = r.bytes().await.unwrap();
    assert!(bytes.starts_with(b"PK\x03\x04"));
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("tenants/alpha.toml")
            && !text.contains("tenants/beta.toml")
            && !text.contains("hub.toml")
    );

    // The OpenAPI document is served and names the configuration API.
    let r = api
        .http
        .get(format!("{}/api/v1/openapi.json", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/config/files/{path}"]["put"].is_object());

    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_made_while_the_hub_was_stopped_are_recorded_at_start() {
    let rx = Receiver::start().await;
    let cfg = two_tenants(&rx);
    let file = cfg.path(ALPHA);
    let first = std::fs::read_to_string(&file).unwrap();
    let second = first.replace("Kommune alpha", "Gemeinde Alpha");
    let third = second.replace(&rx.url("/one"), &rx.url("/offline"));
    {
        let hub = start(&cfg.main).await.unwrap();
        let api = Api::new(hub.addr);
        let (s, rev) = put(&api, ALPHA, OPERATOR, json!({ "text": second })).await;
        assert_eq!(s, 200, "{rev}");
        hub.shutdown().await.unwrap();
    }
    // Edited while no hub watched.
    std::fs::write(&file, &third).unwrap();
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let (s, list) = api
        .get(&format!("/api/v1/config/revisions?path={ALPHA}"), OPERATOR)
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list[0]["author"], "Datei", "{list:#}");
    assert_eq!(list[0]["comment"], "beim Start vorgefunden");
    assert!(list[0].get("new_text").is_none(), "listings carry no texts");
    let id = list[0]["id"].as_u64().unwrap();
    let (_, rev) = api
        .get(&format!("/api/v1/config/revisions/{id}"), OPERATOR)
        .await;
    assert_eq!(rev["old_text"], second.as_str());
    assert_eq!(rev["new_text"], third.as_str());
    // And the configuration in force is the one on disk.
    let m = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    let got = rx.wait_accepted("/offline", 1, WAIT).await;
    assert_eq!(got[0].header("x-drehscheibe-message-id"), m);
    // A second start finds nothing new.
    hub.shutdown().await.unwrap();
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let (_, again) = api
        .get(&format!("/api/v1/config/revisions?path={ALPHA}"), OPERATOR)
        .await;
    assert_eq!(
        again.as_array().unwrap().len(),
        list.as_array().unwrap().len()
    );
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_no_digests_no_load_error_details_and_bodies_are_bounded() {
    let rx = Receiver::start().await;
    let cfg = two_tenants(&rx);
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);

    // A broken hand edit of beta's file: the operator reads the details,
    // alpha's tenant only that there is an error.
    std::fs::write(cfg.path("tenants/beta.toml"), "id = \"beta\"\nname = \n").unwrap();
    let (s, _) = api.post_empty("/api/v1/config/reload", OPERATOR).await;
    assert_eq!(s, 422);
    let (_, op) = api.get("/api/v1/config", OPERATOR).await;
    assert!(
        op["disk_error"].as_str().unwrap().contains("beta.toml"),
        "{op}"
    );
    let (_, own) = api.get("/api/v1/config", TENANT_ALPHA).await;
    let shown = own["disk_error"].as_str().unwrap();
    assert!(!shown.contains("beta"), "{shown}");
    // The digest a tenant sees is that of what it sees.
    let (_, f) = api
        .get(&format!("/api/v1/config/files/{ALPHA}"), TENANT_ALPHA)
        .await;
    let seen = f["text"].as_str().unwrap();
    assert_eq!(
        f["sha256"],
        drehscheibe_suite::sha256_hex(seen.as_bytes()).as_str()
    );

    // Bodies beyond the bound are refused, and unauthenticated ones are
    // refused without being read.
    let big = "x".repeat(3 * 1024 * 1024);
    for (token, status) in [(OPERATOR, 413), ("wrong", 401)] {
        // (`None`: the hub answered and closed before the client had
        // written the whole body — refused without being read)
        if let Some(s) = put_refused(&api, ALPHA, token, json!({ "text": big })).await {
            assert_eq!(s, status, "{token}");
        }
    }
    // Nothing of either was written.
    let (_, f) = api
        .get(&format!("/api/v1/config/files/{ALPHA}"), TENANT_ALPHA)
        .await;
    assert_eq!(f["text"].as_str(), Some(seen));
    hub.shutdown().await.unwrap();
}

/// Two instances on one PostgreSQL store reading one configuration
/// directory (ADR 0021): a change through one is in force in the other
/// after its next look at the files, and recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_directory_apply_a_change_recorded_once() {
    if drehscheibe_suite::StoreKind::from_env() == drehscheibe_suite::StoreKind::Postgres {
        eprintln!("note: this test always uses PostgreSQL and ran in the default pass");
        return;
    }
    let rx = Receiver::start().await;
    let cfg = TestConfig::write_full(
        "127.0.0.1:0",
        "",
        &drehscheibe_suite::fixture_rules(),
        &[
            (
                "alpha",
                http_tenant("alpha", "01001000", LEISTUNG, &rx.url("/one"), ""),
            ),
            (
                "beta",
                http_tenant("beta", "02002000", LEISTUNG, &rx.url("/beta"), ""),
            ),
        ],
        drehscheibe_suite::StoreKind::Postgres,
    );
    let any = Some("127.0.0.1:0".parse().unwrap());
    let hub_a = drehscheibe_suite::start_with(&cfg.main, any).await.unwrap();
    let hub_b = drehscheibe_suite::start_with(&cfg.main, any).await.unwrap();
    let (api_a, api_b) = (Api::new(hub_a.addr), Api::new(hub_b.addr));

    let old_text = std::fs::read_to_string(cfg.path(ALPHA)).unwrap();
    let new_text = old_text.replace(&rx.url("/one"), &rx.url("/two"));
    let (s, rev) = put(&api_a, ALPHA, OPERATOR, json!({ "text": new_text })).await;
    assert_eq!(s, 200, "{rev}");
    // B looks at the files (as it does on SIGHUP and every 30 s): it
    // applies the change and finds it recorded already.
    let (s, o) = api_b.post_empty("/api/v1/config/reload", OPERATOR).await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(o["changed"], true);
    assert_eq!(o["revisions"], json!([]), "recorded once, by A");
    assert_eq!(o["config_digest"], rev["config_digest"]);
    let (_, list) = api_b
        .get(&format!("/api/v1/config/revisions?path={ALPHA}"), OPERATOR)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list:#}");
    assert_eq!(list[0]["author"], "operator");
    // Whichever instance routes it, the next message follows the change.
    for api in [&api_a, &api_b] {
        let id = api
            .submit("application/xml", order("01001000", LEISTUNG, 10))
            .await;
        api.wait_state(&id, "delivered", WAIT).await;
    }
    assert_eq!(rx.accepted("/two").len(), 2);
    assert!(rx.accepted("/one").is_empty());
    hub_a.shutdown().await.unwrap();
    hub_b.shutdown().await.unwrap();
}
