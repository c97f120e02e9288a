//! Interoperability of the hub's FIT-Connect intake with a sender we did
//! not write: the PyPI SDK `fitconnect` 0.4.2 (installed into the venv
//! `target/fitconnect-venv`; the test fails if pip cannot install it)
//! submits a real application with an attachment to an in-process hub;
//! the Fachverfahren receiver must get the decrypted data byte-exact and
//! the case's event log must hold a valid `accept-submission` SET
//! (verified by the hub's own verifier *and* by `jwcrypto`). Then hostile
//! senders, in Rust.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use drehscheibe_fit_connect::jose::{self, RsaPrivateKey};
use drehscheibe_fit_connect::set;
use drehscheibe_suite::fit::{
    channel_toml, key_file, metadata, tenant, Sender, DEST, FOREIGN_DEST, LEIKA,
};
use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{free_port, repo_root, start, Api, TestConfig};
use serde_json::Value;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

/// The venv with `fitconnect` 0.4.2; created and installed on first use.
fn venv_python() -> PathBuf {
    let venv = repo_root().join("target/fitconnect-venv");
    let python = venv.join("bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import fitconnect, jwcrypto, requests"])
            .status()
            .is_ok_and(|s| s.success());
    if !ready {
        let status = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 must be installed");
        assert!(status.success(), "python3 -m venv failed");
        let out = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "fitconnect==0.4.2"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pip install fitconnect==0.4.2 failed (PyPI must be reachable):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    python
}

fn sdk(python: &Path, args: &[&str]) -> Value {
    let out = Command::new(python)
        .arg(repo_root().join("tests/fitconnect_sdk/submit.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "submit.py {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pypi_sdk_submits_and_the_case_is_accepted() {
    let python = venv_python();
    let rx = Receiver::start().await;
    let port = free_port();
    let cfg = TestConfig::write(
        &format!("127.0.0.1:{port}"),
        &channel_toml(port),
        &[("alpha", tenant(&rx.url("/alpha")))],
    );
    let hub = start(&cfg.main).await.unwrap();
    let base = format!("http://127.0.0.1:{port}/fit-connect");
    let token_url = format!("{base}/token");
    let api_url = format!("{base}/v1");

    // A real application: JSON Fachdaten the testjson rule routes to
    // Kommune alpha, plus one binary attachment.
    let data = "{\"kommune\": \"09162000\", \"leistung\": \"99108008252000\", \"antragsteller\": \"Erika Müller\", \"gewerbe\": \"Bäckerei\"}".as_bytes().to_vec();
    let pdf: Vec<u8> = (0..150_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let data_file = cfg.path("antrag.json");
    let pdf_file = cfg.path("nachweis.pdf");
    std::fs::write(&data_file, &data).unwrap();
    std::fs::write(&pdf_file, &pdf).unwrap();

    let started = Instant::now();
    let answer = sdk(
        &python,
        &[
            "submit",
            "--token-url",
            &token_url,
            "--api-url",
            &api_url,
            "--client-id",
            "antragsportal",
            "--client-secret",
            "portal-secret",
            "--destination",
            DEST,
            "--leika",
            LEIKA,
            "--data",
            data_file.to_str().unwrap(),
            "--attachment",
            pdf_file.to_str().unwrap(),
        ],
    );
    let submit_secs = started.elapsed().as_secs_f64();
    assert_eq!(answer["destinationId"], DEST, "{answer}");
    let case = answer["caseId"].as_str().unwrap().to_owned();
    let sid = answer["submissionId"].as_str().unwrap().to_owned();

    // The Fachverfahren got the decrypted Fachdaten byte-exact, and the
    // attachment, as multipart.
    let got = rx.wait_accepted("/alpha", 1, WAIT).await;
    assert_eq!(got.len(), 1);
    let ct = got[0].header("content-type");
    assert!(ct.starts_with("multipart/form-data"), "{ct}");
    let boundary = ct
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let body = got[0].body.clone();
    let mut parts = multer::Multipart::new(
        futures::stream::once(async move { Ok::<_, std::io::Error>(body) }),
        boundary,
    );
    let document = parts.next_field().await.unwrap().unwrap();
    assert_eq!(document.name(), Some("document"));
    assert_eq!(document.bytes().await.unwrap().as_ref(), data.as_slice());
    let attachment = parts.next_field().await.unwrap().unwrap();
    assert_eq!(
        attachment.content_type().map(|m| m.to_string()).as_deref(),
        Some("application/pdf")
    );
    assert_eq!(attachment.bytes().await.unwrap().as_ref(), pdf.as_slice());

    // The hub's message carries the FIT-Connect facts.
    let message_id = got[0].header("x-drehscheibe-message-id");
    let api = Api::new(hub.addr);
    let view = api.message(&message_id).await;
    let ids = &view["envelope"]["correlation_ids"];
    assert_eq!(ids["fitconnect.submission_id"], sid.as_str());
    assert_eq!(ids["fitconnect.case_id"], case.as_str());
    assert_eq!(ids["fitconnect.destination_id"], DEST);
    assert_eq!(ids["fitconnect.leika"], LEIKA);
    assert_eq!(view["envelope"]["sender"]["adapter"], "fit-connect");

    // accept-submission appears in the event log once delivered.
    let sender = Sender {
        http: reqwest::Client::new(),
        base: base.clone(),
    };
    let token = sender.bearer().await;
    let jwks = sender.jwks().await;
    let end = Instant::now() + WAIT;
    let events = loop {
        let events = sender.events(&token, &case).await;
        if events.len() >= 2 {
            break events;
        }
        assert!(
            Instant::now() < end,
            "no accept-submission within {WAIT:?}: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(events.len(), 2);
    let submitted = set::verify_set(&events[0], &jwks).unwrap();
    assert_eq!(submitted.event, set::SUBMIT_SUBMISSION);
    let accepted = set::verify_set(&events[1], &jwks).unwrap();
    assert_eq!(accepted.event, set::ACCEPT_SUBMISSION);
    assert_eq!(accepted.submission_id.to_string(), sid);
    assert_eq!(accepted.case_id.to_string(), case);
    let tags = &accepted.payload["authenticationTags"];
    for t in [&tags["metadata"], &tags["data"]] {
        assert_eq!(
            t.as_str().unwrap().len(),
            22,
            "a 16-byte GCM tag in base64url: {tags}"
        );
    }
    assert_eq!(tags["attachments"].as_object().unwrap().len(), 1);

    // Independent check: jwcrypto verifies the same SETs against the JWKS.
    let checked = sdk(
        &python,
        &[
            "events",
            "--token-url",
            &token_url,
            "--api-url",
            &api_url,
            "--client-id",
            "antragsportal",
            "--client-secret",
            "portal-secret",
            "--case",
            &case,
            "--jwks-url",
            &format!("{base}/.well-known/jwks.json"),
        ],
    );
    let checked = checked.as_array().unwrap();
    assert_eq!(checked.len(), 2);
    assert_eq!(checked[1]["header"]["typ"], "secevent+jwt");
    assert_eq!(checked[1]["header"]["alg"], "PS512");
    assert_eq!(checked[1]["claims"]["sub"], format!("submission:{sid}"));
    assert_eq!(checked[1]["claims"]["txn"], format!("case:{case}"));
    assert_eq!(
        checked[1]["claims"]["events"][set::ACCEPT_SUBMISSION]["authenticationTags"],
        *tags
    );
    eprintln!("fitconnect 0.4.2 submit (token, key, announce, upload, submit; SDK fetches a token per request): {submit_secs:.2} s");
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_senders_get_precise_problems_and_nothing_is_delivered() {
    let rx = Receiver::start().await;
    let port = free_port();
    let cfg = TestConfig::write(
        &format!("127.0.0.1:{port}"),
        &channel_toml(port),
        &[("alpha", tenant(&rx.url("/alpha")))],
    );
    let hub = start(&cfg.main).await.unwrap();
    let sender = Sender {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}/fit-connect"),
    };
    let problem =
        |kind: &str| format!("https://schema.fitko.de/fit-connect/submission-api/problems/{kind}");

    // wrong client secret
    let r = sender.token("antragsportal", "guessed").await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let token = sender.bearer().await;
    // a destination hosted here, but not for this client
    let r = sender.announce(&token, FOREIGN_DEST, &[]).await;
    assert_eq!(r.status(), 403);
    // unknown submission id
    let (s, v) = sender
        .submit(
            &token,
            &Uuid::new_v4().to_string(),
            "a.b.c.d.e",
            "a.b.c.d.e",
        )
        .await;
    assert_eq!(
        (s, v["type"].as_str().unwrap()),
        (404, problem("submission-not-found").as_str())
    );

    let key = RsaPrivateKey::from_pem(&std::fs::read_to_string(key_file("dest-a.pem")).unwrap())
        .unwrap()
        .encryption_jwk();
    let data = br#"{"kommune":"09162000","leistung":"99108008252000"}"#;
    let enc = |b: &[u8]| jose::encrypt_compact(b, &key, true).unwrap();
    let created = |v: Value| {
        (
            v["submissionId"].as_str().unwrap().to_owned(),
            v["caseId"].as_str().unwrap().to_owned(),
        )
    };

    // submit before the announced attachment is uploaded: 422, retryable
    let aid = Uuid::new_v4();
    let (sid, _) = created(
        sender
            .announce(&token, DEST, &[aid])
            .await
            .json()
            .await
            .unwrap(),
    );
    let (s, v) = sender
        .submit(
            &token,
            &sid,
            &enc(&metadata(data, &[(aid, b"pdf")])),
            &enc(data),
        )
        .await;
    assert_eq!(
        (s, v["type"].as_str().unwrap()),
        (422, problem("missing-attachments").as_str())
    );

    let jwks = sender.jwks().await;
    // tampered ciphertext, hash mismatch: problem + reject-submission
    for (kind, data_jwe) in [
        ("decryption-failed", {
            let jwe = enc(data);
            let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
            use base64::Engine;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let mut ct = b64.decode(&parts[3]).unwrap();
            ct[3] ^= 1;
            parts[3] = b64.encode(ct);
            parts.join(".")
        }),
        (
            "hash-mismatch",
            enc(br#"{"kommune":"09162000","leistung":"99108008252000","x":1}"#),
        ),
    ] {
        let (sid, case) = created(
            sender
                .announce(&token, DEST, &[])
                .await
                .json()
                .await
                .unwrap(),
        );
        let (s, v) = sender
            .submit(&token, &sid, &enc(&metadata(data, &[])), &data_jwe)
            .await;
        assert_eq!(
            (s, v["type"].as_str().unwrap()),
            (422, problem(kind).as_str()),
            "{v}"
        );
        let events = sender.events(&token, &case).await;
        let rejected = set::verify_set(&events[0], &jwks).unwrap();
        assert_eq!(rejected.event, set::REJECT_SUBMISSION);
        assert_eq!(
            rejected.payload["problems"][0]["type"],
            format!("{}{kind}", set::EVENT_PROBLEM_BASE)
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.requests("/alpha").is_empty(), "nothing may be delivered");
    hub.shutdown().await.unwrap();
}

/// Issue 10, defect 10: once the sender got a `reject-submission` for a
/// message that went dead, an operator's replay would deliver what the
/// case says was rejected. The hub records the answer on the message and
/// refuses the replay unless it is forced; a forced replay says so in the
/// audit trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_contradicting_a_sent_rejection_must_be_forced() {
    let rx = Receiver::start().await;
    rx.set(
        "/alpha",
        drehscheibe_suite::receiver::Behaviour::Always(400),
    );
    let port = free_port();
    let cfg = TestConfig::write(
        &format!("127.0.0.1:{port}"),
        &channel_toml(port),
        &[("alpha", tenant(&rx.url("/alpha")))],
    );
    let hub = start(&cfg.main).await.unwrap();
    let api = Api::new(hub.addr);
    let sender = Sender {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}/fit-connect"),
    };
    let token = sender.bearer().await;
    let key = RsaPrivateKey::from_pem(&std::fs::read_to_string(key_file("dest-a.pem")).unwrap())
        .unwrap()
        .encryption_jwk();
    let data = br#"{"kommune":"09162000","leistung":"99108008252000"}"#;
    let enc = |b: &[u8]| jose::encrypt_compact(b, &key, true).unwrap();
    let v: Value = sender
        .announce(&token, DEST, &[])
        .await
        .json()
        .await
        .unwrap();
    let (sid, case) = (
        v["submissionId"].as_str().unwrap().to_owned(),
        v["caseId"].as_str().unwrap().to_owned(),
    );
    let (s, v) = sender
        .submit(&token, &sid, &enc(&metadata(data, &[])), &enc(data))
        .await;
    assert_eq!(s, 200, "{v}");

    // The Fachverfahren answers 400: the message ends dead, the sender
    // gets a reject-submission.
    let jwks = sender.jwks().await;
    let end = Instant::now() + WAIT;
    let rejected = loop {
        let events = sender.events(&token, &case).await;
        if let Some(last) = events.last() {
            let e = set::verify_set(last, &jwks).unwrap();
            if e.event == set::REJECT_SUBMISSION {
                break e;
            }
        }
        assert!(Instant::now() < end, "no reject-submission: {events:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rejected.event, set::REJECT_SUBMISSION);
    let (s, page) = api
        .get("/api/v1/messages?state=dead", drehscheibe_suite::OPERATOR)
        .await;
    assert_eq!(s, 200);
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();
    // The answer is on the message (the follower records it right after
    // the event; allow it a moment).
    let end = Instant::now() + WAIT;
    let view = loop {
        let view = api.message(&id).await;
        if view["sender_answer"].is_string() || Instant::now() > end {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        view["sender_answer"]
            .as_str()
            .unwrap()
            .contains("reject-submission"),
        "{view:#}"
    );
    assert!(
        drehscheibe_suite::audit_actions(&view).contains(&"sender-answered".to_owned()),
        "{view:#}"
    );

    // A plain replay is refused and changes nothing.
    let (s, problem) = api
        .post_empty(
            &format!("/api/v1/messages/{id}/replay"),
            drehscheibe_suite::OPERATOR,
        )
        .await;
    assert_eq!(s, 409, "{problem}");
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("sender-answered"),
        "{problem}"
    );
    assert_eq!(api.message(&id).await["state"], "dead");

    // Forced, it runs, and the audit trail says it was forced.
    rx.set("/alpha", drehscheibe_suite::receiver::Behaviour::Ok);
    let (s, _) = api
        .post_empty(
            &format!("/api/v1/messages/{id}/replay?force=true"),
            drehscheibe_suite::OPERATOR,
        )
        .await;
    assert_eq!(s, 202);
    let view = api.wait_state(&id, "delivered", WAIT).await;
    let replay = view["audit"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "replay")
        .unwrap()
        .clone();
    assert!(
        replay["detail"]
            .as_str()
            .unwrap()
            .contains("forced although the sender was told: FIT-Connect reject-submission"),
        "{replay:#}"
    );
    hub.shutdown().await.unwrap();
}
