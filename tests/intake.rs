//! Intake edge cases end-to-end: hostile and malformed input, routing
//! failures, tenant isolation on the operations API, multipart attachments,
//! the directory adapter and the directory drop connector.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{
    http_tenant, multipart_body, order, start, Api, TestConfig, OPERATOR, SENDER, TENANT_ALPHA,
    TENANT_BETA,
};
use futures::StreamExt;
use serde_json::Value;

const LEISTUNG: &str = "99050012104000";
const WAIT: Duration = Duration::from_secs(20);

async fn two_tenant_hub(
    rx: &Receiver,
    server_extra: &str,
) -> (TestConfig, drehscheibe_suite::Runtime) {
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        server_extra,
        &[
            (
                "alpha",
                http_tenant("alpha", "01001000", LEISTUNG, &rx.url("/alpha"), ""),
            ),
            (
                "beta",
                http_tenant("beta", "02002000", LEISTUNG, &rx.url("/beta"), ""),
            ),
        ],
    );
    let hub = start(&cfg.main).await.unwrap();
    (cfg, hub)
}

async fn problem(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(
        ct.starts_with("application/problem+json"),
        "status {status}: RFC 7807 content type expected, got {ct:?} ({v})"
    );
    assert_eq!(v["status"], status, "problem body carries the status");
    assert!(v["type"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(v["detail"].as_str().is_some_and(|t| !t.is_empty()));
    (status, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_malformed_input_is_refused_with_problem_details() {
    let rx = Receiver::start().await;
    let (_cfg, hub) = two_tenant_hub(&rx, "max_payload_bytes = \"64 KiB\"").await;
    let api = Api::new(hub.addr);

    let billion_laughs = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>"#;
    let xxe =
        br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
    let deep = format!("{}{}", "<a>".repeat(5_000), "</a>".repeat(5_000));
    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        (
            "malformed xml",
            "application/xml",
            b"<a><b></a>".to_vec(),
            400,
        ),
        (
            "billion laughs",
            "application/xml",
            billion_laughs.to_vec(),
            400,
        ),
        ("xxe", "application/xml", xxe.to_vec(), 400),
        ("deep nesting", "application/xml", deep.into_bytes(), 400),
        (
            "not utf-8",
            "application/xml",
            b"<a>\xff\xfe</a>".to_vec(),
            400,
        ),
        (
            "malformed json",
            "application/json",
            b"{\"a\": [1, 2".to_vec(),
            400,
        ),
        ("empty body", "application/xml", Vec::new(), 400),
        (
            "unsupported type",
            "application/pdf",
            b"%PDF-1.7".to_vec(),
            415,
        ),
        (
            "oversize",
            "application/xml",
            order("01001000", LEISTUNG, 70 * 1024),
            413,
        ),
    ];
    for (name, ct, body, want) in cases {
        let r = api.post("portal", SENDER, ct, body, None).await;
        let (status, v) = problem(r).await;
        assert_eq!(status, want, "{name}: {v}");
    }
    // Oversize without Content-Length (chunked): still refused, streamed.
    // The client is still sending when the limit is passed. Were the
    // inbox to close the connection with the rest of the body unread, the
    // kernel would reset it and the client could lose the 413 it had not
    // read yet; the inbox reads and discards the rest instead (within
    // DRAIN_AFTER_REFUSAL_BYTES), so the client reads the refusal every
    // time: a slow sender, and a fast one with ten times the limit.
    let slow = futures::stream::iter(0..200)
        .then(|_| async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok::<_, std::io::Error>(vec![b'x'; 1024])
        })
        .boxed();
    let fast = || futures::stream::iter((0..10).map(|_| Ok(vec![b'x'; 64 * 1024]))).boxed();
    for body in [slow, fast(), fast(), fast(), fast(), fast()] {
        let r = api
            .http
            .post(format!("{}/api/v1/inbox/portal", api.base))
            .bearer_auth(SENDER)
            .header("content-type", "application/xml")
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .unwrap();
        assert_eq!(problem(r).await.0, 413);
    }

    // Authentication and channel checks.
    let body = order("01001000", LEISTUNG, 10);
    let r = api
        .post("nope", SENDER, "application/xml", body.clone(), None)
        .await;
    assert_eq!(problem(r).await.0, 404, "unknown channel");
    // A channel of another type takes no HTTP submissions: only `http`
    // channels contribute an inbox route, the rest is unclaimed.
    let r = api
        .post("dropbox", OPERATOR, "application/xml", body.clone(), None)
        .await;
    let (status, problem_body) = problem(r).await;
    assert_eq!(
        status, 404,
        "directory channel via the inbox: {problem_body}"
    );
    let r = api
        .post("nope", "wrong-token", "application/xml", body.clone(), None)
        .await;
    assert_eq!(problem(r).await.0, 401, "strangers learn nothing");
    let r = api
        .post(
            "portal",
            "wrong-token",
            "application/xml",
            body.clone(),
            None,
        )
        .await;
    assert_eq!(problem(r).await.0, 401);
    let r = api
        .post("other", SENDER, "application/xml", body.clone(), None)
        .await;
    assert_eq!(problem(r).await.0, 403, "sender token of another channel");
    let r = api
        .post(
            "portal",
            TENANT_ALPHA,
            "application/xml",
            body.clone(),
            None,
        )
        .await;
    assert_eq!(problem(r).await.0, 403, "tenant tokens do not submit");

    // Nothing of the refused input was stored.
    let (s, page) = api.get("/api/v1/messages", OPERATOR).await;
    assert_eq!(s, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "{page}");
    let m = api.metrics().await;
    assert!(m.contains("drehscheibe_intake_refused_total"), "{m}");
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_failures_are_visible_with_their_reason() {
    let rx = Receiver::start().await;
    let (_cfg, hub) = two_tenant_hub(&rx, "").await;
    let api = Api::new(hub.addr);

    // Well-formed, but no rule recognises it.
    let id = api
        .submit("application/xml", b"<unbekannt xmlns=\"urn:x\"/>".to_vec())
        .await;
    let v = api.wait_state(&id, "rejected", WAIT).await;
    assert!(v["reason"].as_str().unwrap().contains("rule"), "{v}");

    // Recognised, but no Kommune has the extracted key.
    let id = api
        .submit("application/xml", order("99999999", LEISTUNG, 10))
        .await;
    let v = api.wait_state(&id, "rejected", WAIT).await;
    assert!(v["reason"].as_str().unwrap().contains("99999999"), "{v}");

    // Kommune known, Leistung not configured: dead (a person must fix the
    // configuration, then replay).
    let id = api
        .submit("application/xml", order("01001000", "99000000000001", 10))
        .await;
    let v = api.wait_state(&id, "dead", WAIT).await;
    let reason = v["reason"].as_str().unwrap();
    assert!(
        reason.contains("99000000000001") && reason.contains("alpha"),
        "{v}"
    );
    assert_eq!(
        v["rule"]["id"], "testorder",
        "the audit names the rule: {v}"
    );

    assert!(rx.requests("/alpha").is_empty() && rx.requests("/beta").is_empty());
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_only_their_own_messages() {
    let rx = Receiver::start().await;
    let (_cfg, hub) = two_tenant_hub(&rx, "").await;
    let api = Api::new(hub.addr);
    let a = api
        .submit("application/xml", order("01001000", LEISTUNG, 1))
        .await;
    let b = api
        .submit("application/xml", order("02002000", LEISTUNG, 1))
        .await;
    api.wait_state(&a, "delivered", WAIT).await;
    api.wait_state(&b, "delivered", WAIT).await;

    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (s, all) = api.get("/api/v1/messages", OPERATOR).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&all).len(), 2);

    let (s, own) = api.get("/api/v1/messages", TENANT_ALPHA).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&own), vec![a.clone()]);
    let (s, own) = api.get("/api/v1/messages", TENANT_BETA).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&own), vec![b.clone()]);

    // Asking for the other tenant's list or message is refused / hidden.
    let (s, _) = api.get("/api/v1/messages?tenant=beta", TENANT_ALPHA).await;
    assert_eq!(s, 403);
    let (s, _) = api
        .get(&format!("/api/v1/messages/{b}"), TENANT_ALPHA)
        .await;
    assert_eq!(s, 404);
    let (s, v) = api
        .get(&format!("/api/v1/messages/{a}"), TENANT_ALPHA)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["envelope"]["tenant"], "alpha");
    // Tenants read, but only operators replay.
    let (s, _) = api
        .post_empty(&format!("/api/v1/messages/{a}/replay"), TENANT_ALPHA)
        .await;
    assert_eq!(s, 403);
    let (s, _) = api
        .post_empty(&format!("/api/v1/messages/{b}/replay"), TENANT_ALPHA)
        .await;
    assert_eq!(s, 404);
    // Senders cannot browse; no token, no access.
    let (s, _) = api.get("/api/v1/messages", SENDER).await;
    assert_eq!(s, 403);
    let (s, _) = api.get("/api/v1/messages", "").await;
    assert_eq!(s, 401);

    // Paging and filters.
    let (s, p1) = api.get("/api/v1/messages?limit=1", OPERATOR).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&p1).len(), 1);
    let next = p1["next"].as_str().unwrap();
    let (_, p2) = api
        .get(&format!("/api/v1/messages?limit=1&after={next}"), OPERATOR)
        .await;
    assert_eq!(ids(&p2).len(), 1);
    assert_ne!(ids(&p1), ids(&p2));
    let (_, none) = api
        .get("/api/v1/messages?since=2999-01-01T00:00:00Z", OPERATOR)
        .await;
    assert!(ids(&none).is_empty());
    let (_, d) = api
        .get("/api/v1/messages?state=delivered&tenant=beta", OPERATOR)
        .await;
    assert_eq!(ids(&d), vec![b]);
    let (s, _) = api.get("/api/v1/messages?state=bogus", OPERATOR).await;
    assert_eq!(s, 400);
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_attachments_are_stored_and_delivered() {
    let rx = Receiver::start().await;
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[(
            "alpha",
            http_tenant(
                "alpha",
                "01001000",
                LEISTUNG,
                &rx.url("/alpha"),
                "send_attachments = true",
            ),
        )],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let doc = order("01001000", LEISTUNG, 100);
    let pdf: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let boundary = "drehscheibe-test-boundary";
    let r = api
        .post(
            "portal",
            SENDER,
            &format!("multipart/form-data; boundary={boundary}"),
            multipart_body(boundary, &doc, &pdf),
            None,
        )
        .await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = api.wait_state(&id, "delivered", WAIT).await;
    let att = &v["envelope"]["attachments"][0];
    assert_eq!(att["filename"], "nachweis.pdf");
    assert_eq!(att["blob"]["size"], pdf.len() as u64);

    let got = rx.accepted("/alpha");
    let ct = got[0].header("content-type");
    assert!(ct.starts_with("multipart/form-data"), "{ct}");
    let b = ct
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let mut parts = multer::Multipart::new(
        futures::stream::once(async move { Ok::<_, std::io::Error>(got[0].body.clone()) }),
        b,
    );
    let first = parts.next_field().await.unwrap().unwrap();
    assert_eq!(first.name(), Some("document"));
    assert_eq!(first.bytes().await.unwrap().as_ref(), doc.as_slice());
    let second = parts.next_field().await.unwrap().unwrap();
    assert_eq!(second.file_name(), Some("nachweis.pdf"));
    assert_eq!(second.bytes().await.unwrap().as_ref(), pdf.as_slice());
    hub.shutdown().await.unwrap();
}

fn wait_for_file(dir: &Path, pred: impl Fn(&str) -> bool, timeout: Duration) -> Vec<String> {
    let end = Instant::now() + timeout;
    loop {
        let names: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| pred(n))
                    .collect()
            })
            .unwrap_or_default();
        if !names.is_empty() {
            return names;
        }
        assert!(
            Instant::now() < end,
            "no matching file in {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_intake_to_directory_drop() {
    let drop_dir = tempfile::tempdir().unwrap();
    let tenant = format!(
        r#"id = "alpha"
name = "Kommune alpha"
ags = "01001000"

[connectors.drop]
type = "directory"
path = "{}"
metadata = true

[[routes]]
leistung = "{LEISTUNG}"
rule = "testorder@^1"
targets = {{ fachverfahren = "drop" }}
"#,
        drop_dir.path().display()
    );
    let cfg = TestConfig::write("127.0.0.1:0", "", &[("alpha", tenant)]);
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let inbox = cfg.path("inbox");

    // A good file: written under a temporary name, then renamed (complete).
    let doc = order("01001000", LEISTUNG, 500);
    std::fs::write(inbox.join(".antrag.xml.tmp"), &doc).unwrap();
    std::fs::rename(inbox.join(".antrag.xml.tmp"), inbox.join("antrag.xml")).unwrap();
    // A broken file.
    std::fs::write(inbox.join("kaputt.xml"), b"<a><b></a>").unwrap();

    let processed = wait_for_file(
        &inbox.join("processed"),
        |n| n.ends_with("antrag.xml"),
        WAIT,
    );
    assert_eq!(processed.len(), 1);
    let id_file = wait_for_file(
        &inbox.join("processed"),
        |n| n.ends_with("antrag.xml.id"),
        WAIT,
    );
    let id = std::fs::read_to_string(inbox.join("processed").join(&id_file[0])).unwrap();
    let id = id.trim().to_owned();
    let rejected = wait_for_file(&inbox.join("rejected"), |n| n.contains("kaputt"), WAIT);
    assert!(
        rejected.iter().any(|n| n.ends_with(".reason.txt")),
        "{rejected:?}"
    );
    let reason_file = rejected
        .iter()
        .find(|n| n.ends_with(".reason.txt"))
        .unwrap();
    let reason = std::fs::read_to_string(inbox.join("rejected").join(reason_file)).unwrap();
    assert!(!reason.trim().is_empty());
    assert!(!inbox.join("antrag.xml").exists() && !inbox.join("kaputt.xml").exists());

    // The accepted file is delivered to the drop folder byte-exact, with
    // a companion metadata file, and no temporary leftovers.
    let delivered = wait_for_file(drop_dir.path(), |n| n.ends_with(".xml"), WAIT);
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let bytes = std::fs::read(drop_dir.path().join(&delivered[0])).unwrap();
    assert_eq!(bytes, doc);
    let meta = wait_for_file(drop_dir.path(), |n| n.ends_with(".meta.json"), WAIT);
    let meta: Value =
        serde_json::from_slice(&std::fs::read(drop_dir.path().join(&meta[0])).unwrap()).unwrap();
    api.wait_state(&id, "delivered", WAIT).await;
    assert!(
        meta.to_string().contains(&id),
        "metadata names the message: {meta}"
    );
    let v = api.message(&id).await;
    assert_eq!(v["envelope"]["channel"], "dropbox");
    // Files are written in `.tmp/` and renamed into place: nothing stays there.
    let leftovers = std::fs::read_dir(drop_dir.path().join(".tmp"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    assert_eq!(leftovers, 0);
    hub.shutdown().await.unwrap();
}

/// A file name is chosen by whoever writes into the folder: a line break in
/// it must not forge a log line, and a symbolic link must not make the hub
/// read a file outside the folder.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_intake_escapes_names_in_the_log_and_rejects_symlinks() {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", drehscheibe_suite::free_port())
        .parse()
        .unwrap();
    let cfg = TestConfig::write(
        &addr.to_string(),
        "",
        &[(
            "alpha",
            http_tenant("alpha", "01001000", LEISTUNG, "http://127.0.0.1:1/fv", ""),
        )],
    );
    let log = cfg.path("hub.log");
    let hub = drehscheibe_suite::HubProcess::spawn(&cfg.main, addr, &log).await;
    let inbox = cfg.path("inbox");

    // A malformed file (logged as rejected) whose name carries a forged
    // log line.
    let forged = "2030-01-01T00:00:00.000000Z ERROR forged: operator token leaked";
    std::fs::write(inbox.join(format!("x\n{forged}.xml")), b"<a><b></a>").unwrap();
    // A link to a file outside the folder.
    let outside = cfg.path("secret.xml");
    let secret = order("01001000", LEISTUNG, 10);
    std::fs::write(&outside, &secret).unwrap();
    std::os::unix::fs::symlink(&outside, inbox.join("link.xml")).unwrap();

    let rejected = inbox.join("rejected");
    wait_for_file(
        &rejected,
        |n| n.ends_with("forged: operator token leaked.xml.reason.txt"),
        WAIT,
    );
    let reasons = wait_for_file(&rejected, |n| n.ends_with("link.xml.reason.txt"), WAIT);
    let reason = std::fs::read_to_string(rejected.join(&reasons[0])).unwrap();
    assert!(reason.starts_with("symbolic-link: "), "{reason}");
    // The link itself was moved, never followed; its target is untouched
    // and nothing was submitted from it.
    let link = wait_for_file(&rejected, |n| n.ends_with("link.xml"), WAIT);
    let moved = std::fs::symlink_metadata(rejected.join(&link[0])).unwrap();
    assert!(moved.file_type().is_symlink());
    assert!(!inbox.join("link.xml").exists());
    assert_eq!(std::fs::read(&outside).unwrap(), secret);
    let (status, page) = Api::new(addr).get("/api/v1/messages", OPERATOR).await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(0), "{page}");

    assert!(hub.terminate());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().all(|l| !l.starts_with("2030-01-01")),
        "a file name forged a log line:\n{text}"
    );
    assert!(text.contains(r"x\n2030-01-01"), "{text}");
    assert!(
        text.contains("symbolic link in the intake folder rejected") && text.contains("link.xml"),
        "{text}"
    );
}
