//! Malware scanning through the whole hub (ADR 0017), against a real
//! ClamAV daemon the test starts (`drehscheibe_testkit::clamd`: clamd from
//! the Debian package with a signature of ours for the EICAR test file):
//!
//! - malware in a payload or in an attachment: the sender gets `422
//!   malware-found`, the message is kept `quarantined` with the
//!   signature's name, and nothing reaches the Fachverfahren;
//! - an operator's release (with a reason, audited) lets it through;
//! - with the scanner down, messages are accepted but wait — nothing is
//!   delivered unscanned — and go on by themselves once it is back.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{
    http_tenant, multipart_body, order, start, Api, TestConfig, OPERATOR, SENDER,
};
use drehscheibe_testkit::clamd::{ClamdProcess, EICAR, SIGNATURE};
use serde_json::{json, Value};

const LEISTUNG: &str = "99050012104000";
const WAIT: Duration = Duration::from_secs(30);

/// `order` with the EICAR test string in its text.
fn infected_order() -> Vec<u8> {
    let text = String::from_utf8(order("01001000", LEISTUNG, 10)).unwrap();
    text.replace(
        "Grüße aus der Drehscheibe",
        std::str::from_utf8(EICAR).unwrap(),
    )
    .into_bytes()
}

fn scanner_section(clamd: &ClamdProcess, retry: &str) -> String {
    format!(
        "\n[scanner]\ntype = \"clamd\"\naddress = \"unix:{}\"\ntimeout = \"5s\"\nretry = \"{retry}\"\n",
        clamd.socket.display()
    )
}

async fn release(api: &Api, id: &str, token: &str, body: Value) -> (u16, Value) {
    let r = api
        .http
        .post(format!("{}/api/v1/messages/{id}/release", api.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The quarantined message id named in a `422 malware-found` answer.
async fn refused_as_malware(r: reqwest::Response) -> String {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 422, "{v}");
    assert!(
        v["type"].as_str().unwrap().ends_with("malware-found"),
        "{v}"
    );
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains(SIGNATURE), "{detail}");
    let id = detail
        .rsplit_once("quarantined message ")
        .map(|(_, id)| id.trim_end_matches(')').to_owned())
        .unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malware_is_quarantined_never_delivered_and_released_only_by_an_operator() {
    let clamd = ClamdProcess::start();
    let rx = Receiver::start().await;
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        &scanner_section(&clamd, "1s"),
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

    // Clean: delivered, and the record says the intake scanned it.
    let clean = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    let view = api.wait_state(&clean, "delivered", WAIT).await;
    assert_eq!(view["scan"]["input_clean"], true, "{view:#}");

    // Malware in the payload.
    let r = api
        .post("portal", SENDER, "application/xml", infected_order(), None)
        .await;
    let in_payload = refused_as_malware(r).await;
    let view = api.message(&in_payload).await;
    assert_eq!(view["state"], "quarantined", "{view:#}");
    assert_eq!(view["scan"]["finding"]["signature"], SIGNATURE);
    assert_eq!(view["scan"]["finding"]["part"], "payload");

    // Malware in an attachment of a clean document.
    let boundary = "scan-boundary";
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend_from_slice(EICAR);
    let r = api
        .post(
            "portal",
            SENDER,
            &format!("multipart/form-data; boundary={boundary}"),
            multipart_body(boundary, &order("01001000", LEISTUNG, 10), &pdf),
            None,
        )
        .await;
    let in_attachment = refused_as_malware(r).await;
    let view = api.message(&in_attachment).await;
    assert_eq!(view["state"], "quarantined");
    assert_eq!(view["scan"]["finding"]["part"], "attachment \"nachweis\"");

    // Malware base64-encoded inside the XML (an XÖV attachment element).
    let mut anlage = vec![b'%'; 2000];
    anlage.extend_from_slice(EICAR);
    let encoded = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&anlage)
    };
    let text = String::from_utf8(order("01001000", LEISTUNG, 10)).unwrap();
    let with_b64 = text.replace("<o:pad>", &format!("<o:anlage>{encoded}</o:anlage><o:pad>"));
    let r = api
        .post(
            "portal",
            SENDER,
            "application/xml",
            with_b64.into_bytes(),
            None,
        )
        .await;
    let in_base64 = refused_as_malware(r).await;
    let view = api.message(&in_base64).await;
    assert_eq!(
        view["scan"]["finding"]["part"],
        "payload, base64 in <o:anlage>"
    );

    // The same inside a JSON form (a file field as a base64 string).
    let json = format!(
        r#"{{"antragsart": "test", "ags": "01001000", "anlagen": [{{"name": "nachweis.pdf", "inhalt": "{encoded}"}}]}}"#
    );
    let r = api
        .post(
            "portal",
            SENDER,
            "application/json",
            json.into_bytes(),
            None,
        )
        .await;
    let in_json = refused_as_malware(r).await;
    let view = api.message(&in_json).await;
    assert_eq!(
        view["scan"]["finding"]["part"],
        "payload, base64 in \"inhalt\""
    );

    // Nothing of it reached the Fachverfahren.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = rx.accepted("/alpha");
    assert_eq!(got.len(), 1, "only the clean message is delivered");
    assert_eq!(got[0].header("x-drehscheibe-message-id"), clean);

    // Releasing: operators only, with a reason, quarantined messages only.
    // (a sender does not even see messages: 404, as for a replay)
    let (s, _) = release(&api, &in_payload, SENDER, json!({"reason": "x"})).await;
    assert_eq!(s, 404);
    let (s, v) = release(&api, &in_payload, OPERATOR, json!({"reason": "  "})).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = release(&api, &clean, OPERATOR, json!({"reason": "x"})).await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = api
        .post_empty(&format!("/api/v1/messages/{in_payload}/replay"), OPERATOR)
        .await;
    assert_eq!(
        s, 409,
        "a quarantined message is released, not replayed: {v}"
    );
    // The sender was told 422 while it waited: a release contradicts that
    // answer (it may resend the document), so it has to be forced.
    let reason = json!({"reason": "EICAR test file, sent on purpose by the Fachverfahren vendor"});
    let (s, v) = release(&api, &in_attachment, OPERATOR, reason.clone()).await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("while the sender waited"),
        "{v}"
    );
    let r = api
        .http
        .post(format!(
            "{}/api/v1/messages/{in_attachment}/release?force=true",
            api.base
        ))
        .bearer_auth(OPERATOR)
        .json(&reason)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let view = api.wait_state(&in_attachment, "delivered", WAIT).await;
    assert_eq!(
        view["scan"]["released"]["by"], "operator:operator",
        "{view:#}"
    );
    let audit = view["audit"].as_array().unwrap();
    let released = audit.iter().find(|e| e["action"] == "released").unwrap();
    assert!(released["detail"]
        .as_str()
        .unwrap()
        .contains("sent on purpose"));
    assert!(audit.iter().any(|e| e["action"] == "quarantined"));
    // The other one stays where it is.
    assert_eq!(api.message(&in_payload).await["state"], "quarantined");
    assert_eq!(rx.accepted("/alpha").len(), 2);
    let metrics = api.metrics().await;
    assert!(
        metrics.contains("drehscheibe_quarantined_total{channel=\"portal\"} 4"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_verdict_nothing_is_delivered_until_the_scanner_is_back() {
    let mut clamd = ClamdProcess::start();
    let rx = Receiver::start().await;
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        &scanner_section(&clamd, "300ms"),
        &[(
            "alpha",
            http_tenant("alpha", "01001000", LEISTUNG, &rx.url("/alpha"), ""),
        )],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);

    clamd.stop();
    // Accepted (stored durably), but neither routed nor delivered.
    let clean = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    let dirty = api.submit("application/xml", infected_order()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        rx.accepted("/alpha").is_empty(),
        "nothing unscanned is delivered"
    );
    for id in [&clean, &dirty] {
        let view = api.message(id).await;
        assert_eq!(view["state"], "received", "{view:#}");
        let reason = view["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("waiting for the malware scanner"),
            "{view:#}"
        );
    }
    let metrics = api.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("drehscheibe_scan_unavailable_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    // Operators see it in /readyz; the hub stays ready (it accepts and
    // keeps messages).
    let (status, ready) = api.readyz().await;
    assert_eq!(status, 200);
    assert!(
        ready.contains("scanner clamd unix:") && ready.contains("nothing is delivered unscanned"),
        "{ready}"
    );
    assert!(api.metrics().await.contains("drehscheibe_scanner_up 0"));

    // The scanner is back: each goes its way without anybody's help.
    clamd.restart();
    let started = Instant::now();
    api.wait_state(&clean, "delivered", WAIT).await;
    let view = api.wait_state(&dirty, "quarantined", WAIT).await;
    assert_eq!(view["scan"]["finding"]["signature"], SIGNATURE);
    println!(
        "resumed {:.1} s after the scanner came back",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = rx.accepted("/alpha");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("x-drehscheibe-message-id"), clean);
    assert!(api.metrics().await.contains("drehscheibe_scanner_up 1"));
    let (_, ready) = api.readyz().await;
    assert!(!ready.contains("scanner"));
}

/// A FIT-Connect sender: malware in an attachment (plain only after the
/// hub decrypted it) is refused at submit with a problem, the case gets a
/// `reject-submission`, and the message is kept quarantined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malware_inside_a_fit_connect_submission_is_found_after_decryption() {
    use drehscheibe_fit_connect::jose::{self, RsaPrivateKey};
    use drehscheibe_fit_connect::set;
    use drehscheibe_suite::fit::{self, Sender, DEST};

    let clamd = ClamdProcess::start();
    let rx = Receiver::start().await;
    let port = drehscheibe_suite::free_port();
    let cfg = TestConfig::write(
        &format!("127.0.0.1:{port}"),
        &format!(
            "{}{}",
            fit::channel_toml(port),
            scanner_section(&clamd, "1s")
        ),
        &[("alpha", fit::tenant(&rx.url("/alpha")))],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let sender = Sender {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}/fit-connect"),
    };
    let token = sender.bearer().await;
    let key =
        RsaPrivateKey::from_pem(&std::fs::read_to_string(fit::key_file("dest-a.pem")).unwrap())
            .unwrap()
            .encryption_jwk();
    let enc = |b: &[u8]| jose::encrypt_compact(b, &key, true).unwrap();
    let aid = uuid::Uuid::new_v4();
    let r = sender.announce(&token, DEST, &[aid]).await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    let (sid, case) = (
        v["submissionId"].as_str().unwrap().to_owned(),
        v["caseId"].as_str().unwrap().to_owned(),
    );
    let mut pdf = b"%PDF-1.7 Anlage\n".to_vec();
    pdf.extend_from_slice(EICAR);
    let r = sender
        .http
        .put(format!(
            "{}/v1/submissions/{sid}/attachments/{aid}",
            sender.base
        ))
        .bearer_auth(&token)
        .header("content-type", "application/jose")
        .body(enc(&pdf))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        204,
        "encrypted, the upload is nothing a scanner sees"
    );
    let data = br#"{"kommune":"09162000","leistung":"99108008252000"}"#;
    let meta = fit::metadata(data, &[(aid, &pdf)]);
    let (status, body) = sender.submit(&token, &sid, &enc(&meta), &enc(data)).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["type"].as_str().unwrap().ends_with("malware-detected"),
        "{body}"
    );
    let events = sender.events(&token, &case).await;
    let last = set::verify_set(events.last().unwrap(), &sender.jwks().await).unwrap();
    assert_eq!(last.event, set::REJECT_SUBMISSION);
    let (s, list) = api
        .get("/api/v1/messages?state=quarantined", OPERATOR)
        .await;
    assert_eq!(s, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let view = api.message(items[0]["id"].as_str().unwrap()).await;
    assert_eq!(view["scan"]["finding"]["signature"], SIGNATURE);
    assert!(view["scan"]["finding"]["part"]
        .as_str()
        .unwrap()
        .starts_with("attachment"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rx.accepted("/alpha").is_empty());

    // The sender was told "rejected": a release would contradict that
    // answer, so it needs ?force=true — and then the audit says so.
    let id = items[0]["id"].as_str().unwrap().to_owned();
    let (s, v) = release(&api, &id, OPERATOR, json!({"reason": "false positive"})).await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["detail"].as_str().unwrap_or_default().contains("reject"),
        "the refusal names the answer the sender got: {v}"
    );
    assert_eq!(api.message(&id).await["state"], "quarantined");
    let r = api
        .http
        .post(format!(
            "{}/api/v1/messages/{id}/release?force=true",
            api.base
        ))
        .bearer_auth(OPERATOR)
        .json(&json!({"reason": "false positive, confirmed by the sender by phone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let view = api.wait_state(&id, "delivered", WAIT).await;
    let audit = view["audit"].as_array().unwrap();
    let released = audit.iter().find(|e| e["action"] == "released").unwrap();
    assert!(
        released["detail"]
            .as_str()
            .unwrap()
            .contains("forced although the sender was told"),
        "{released}"
    );
    assert_eq!(rx.accepted("/alpha").len(), 1);
}

/// Hub A (no scanner) sends an order with an infected attachment over
/// XTA 2 to hub B, which scans: B's `sendMessage` answers the XTA fault
/// for malware (`MessageVirusDetectionException`, code 9060), keeps the
/// message quarantined, and A's delivery ends dead with that fault — the
/// attachment was plain only after B took the MTOM message apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malware_sent_over_xta_is_refused_with_the_virus_fault() {
    const AGS: &str = "09162000";
    let clamd = ClamdProcess::start();
    let rx = Receiver::start().await;
    let b_port = drehscheibe_suite::free_port();
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
        &format!("{b_channel}{}", scanner_section(&clamd, "1s")),
        &[(
            "alpha",
            http_tenant("alpha", AGS, LEISTUNG, &rx.url("/b"), ""),
        )],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    let a_tenant = drehscheibe_suite::xta_sending_tenant(b_port, "urn:drehscheibe:test:xta-order");
    let a_cfg = TestConfig::write("127.0.0.1:0", "", &[("alpha", a_tenant)]);
    let hub_a = start(&a_cfg.main).await.unwrap();
    let (api_a, api_b) = (Api::new(hub_a.addr), Api::new(hub_b.addr));

    let boundary = "xta-scan-boundary";
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend_from_slice(EICAR);
    let r = api_a
        .post(
            "portal",
            SENDER,
            &format!("multipart/form-data; boundary={boundary}"),
            multipart_body(boundary, &order(AGS, LEISTUNG, 100), &pdf),
            None,
        )
        .await;
    assert_eq!(r.status().as_u16(), 202, "hub A does not scan");
    let a_id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a_view = api_a.wait_state(&a_id, "dead", WAIT).await;
    let error = a_view["deliveries"][0]["last_error"].as_str().unwrap();
    assert!(
        error.contains("9060") || error.contains("MessageVirusDetection"),
        "{a_view:#}"
    );
    let (s, list) = api_b
        .get("/api/v1/messages?state=quarantined", OPERATOR)
        .await;
    assert_eq!(s, 200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let view = api_b.message(items[0]["id"].as_str().unwrap()).await;
    assert_eq!(view["scan"]["finding"]["signature"], SIGNATURE);
    assert!(rx.accepted("/b").is_empty());
}

/// A clean input whose *output* is malware (a rule that joins two
/// harmless halves): caught after routing, before anything is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_the_rule_made_is_scanned_before_delivery() {
    let depot = tempfile::tempdir().unwrap();
    let rule = depot.path().join("scanjoin/1.0.0");
    std::fs::create_dir_all(&rule).unwrap();
    std::fs::write(
        rule.join("rule.toml"),
        r#"id = "scanjoin"
version = "1.0.0"
title = "Joins two parts of an order (scanning test)"

[namespaces]
o = "urn:drehscheibe:test:order"

[match]
channels = ["*"]
content_types = ["application/xml"]
condition = "exists(/o:order)"

[extract]
kommune = "string(/o:order/@kommune)"
leistung = "string(/o:order/@leistung)"

[[outputs]]
target = "fachverfahren"
transform = "join.xsl"
content_type = "application/xml"
filename = "joined-{id}.xml"
"#,
    )
    .unwrap();
    std::fs::write(
        rule.join("join.xsl"),
        r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:o="urn:drehscheibe:test:order">
  <xsl:template match="/"><joined><xsl:value-of select="concat(/o:order/o:a, /o:order/o:b)"/></joined></xsl:template>
</xsl:stylesheet>
"#,
    )
    .unwrap();
    let clamd = ClamdProcess::start();
    let rx = Receiver::start().await;
    let tenant = drehscheibe_suite::http_tenant_with_rule(
        "alpha",
        "01001000",
        LEISTUNG,
        "scanjoin@^1",
        &rx.url("/alpha"),
        "",
    );
    let cfg = TestConfig::write_with_depot(
        "127.0.0.1:0",
        &scanner_section(&clamd, "1s"),
        depot.path(),
        &[("alpha", tenant)],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let eicar = std::str::from_utf8(EICAR).unwrap();
    let (a, b) = eicar.split_at(24);
    let doc = |a: &str, b: &str| {
        format!(
            "<o:order xmlns:o=\"urn:drehscheibe:test:order\" kommune=\"01001000\" leistung=\"{LEISTUNG}\"><o:a>{a}</o:a><o:note>zwei Teile</o:note><o:b>{b}</o:b></o:order>"
        )
        .into_bytes()
    };
    // Harmless halves apart: the intake finds nothing.
    let id = api.submit("application/xml", doc(a, b)).await;
    let view = api.wait_state(&id, "quarantined", WAIT).await;
    assert_eq!(view["scan"]["input_clean"], true, "{view:#}");
    let part = view["scan"]["finding"]["part"].as_str().unwrap();
    assert!(part.starts_with("output \"fachverfahren\""), "{part}");
    // A clean join goes through.
    let ok = api
        .submit("application/xml", doc("Antrag ", "Anlage"))
        .await;
    api.wait_state(&ok, "delivered", WAIT).await;
    let got = rx.accepted("/alpha");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("x-drehscheibe-message-id"), ok);
}

/// `scan = "off"` on a channel: its input is not scanned (the operator's
/// decision, e.g. a sender that scans with a certified product itself),
/// while every other channel's still is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_with_scanning_off_is_not_scanned() {
    let clamd = ClamdProcess::start();
    let rx = Receiver::start().await;
    let extra = format!(
        "{}\n[channels.vorgeprueft]\ntype = \"http\"\nscan = \"off\"\n\n[tokens.vorgeprueft]\nsecret = {{ value = \"tok-vorgeprueft\" }}\nrole = \"sender\"\nchannels = [\"vorgeprueft\"]\n",
        scanner_section(&clamd, "1s")
    );
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        &extra,
        &[(
            "alpha",
            http_tenant("alpha", "01001000", LEISTUNG, &rx.url("/alpha"), ""),
        )],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let r = api
        .post("portal", SENDER, "application/xml", infected_order(), None)
        .await;
    refused_as_malware(r).await;
    let r = api
        .post(
            "vorgeprueft",
            "tok-vorgeprueft",
            "application/xml",
            infected_order(),
            None,
        )
        .await;
    assert_eq!(r.status().as_u16(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let view = api.wait_state(&id, "delivered", WAIT).await;
    assert!(view["scan"].is_null(), "{view:#}");
    assert_eq!(rx.accepted("/alpha").len(), 1);
}
