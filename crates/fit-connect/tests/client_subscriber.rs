//! The subscriber adapter against the test Zustelldienst (real loopback
//! HTTP): fetch, decrypt, verify, hand in once, accept/reject SETs,
//! restart safety, and HMAC-verified callbacks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use drehscheibe_fit_connect::client::{
    AnnounceRequest, ServiceType, SubmissionClient, TokenClient, TokenSettings,
};
use drehscheibe_fit_connect::jose::{self, RsaPrivateKey, RsaPublicJwk};
use drehscheibe_fit_connect::set;
use drehscheibe_fit_connect::subscriber::{
    callback_path, FitConnectSubscriber, SetRetryPolicy, SubscriberDestination, SubscriberSettings,
};
use drehscheibe_model::{InputAdapter, Intake, MessageState};
use serde_json::{json, Value};
use sha2::{Digest, Sha512};
use support::zustelldienst::{send_callback, DestinationSetup, Zustelldienst};
use support::{key, RecordingIntake};
use tokio_util::sync::CancellationToken;

const DEST: &str = "2b1f0c3e-8d7a-4e6b-9c5d-1a2b3c4d5e6f";
const SECRET: &str = "callback-secret-of-the-test";

struct Fixture {
    zd: Zustelldienst,
    enc: RsaPrivateKey,
    signing: RsaPrivateKey,
    state: tempfile::TempDir,
    /// The hub store the subscriber keeps its state in.
    store: std::sync::Arc<dyn drehscheibe_store::Store>,
}

use drehscheibe_testkit::store_in;

async fn fixture() -> Fixture {
    let enc = key("dest-a.pem", "enc-a");
    let signing = key("signing.pem", "sig-1");
    let zd = Zustelldienst::start(
        "client",
        "client-secret",
        vec![DestinationSetup {
            id: DEST.into(),
            encryption_key: enc.encryption_jwk(),
            verification_keys: vec![signing.verification_jwk()],
            services: vec![],
            status: "active".into(),
        }],
        key("dest-b.pem", "service"),
    )
    .await;
    let state = tempfile::tempdir().unwrap();
    let store = store_in(&state.path().join("store"));
    Fixture {
        zd,
        enc,
        signing,
        state,
        store,
    }
}

fn token_settings(zd: &Zustelldienst) -> TokenSettings {
    TokenSettings {
        token_url: zd.token_url(),
        client_id: "client".into(),
        client_secret: "client-secret".into(),
        scope: None,
    }
}

fn subscriber(f: &Fixture, poll: Duration) -> FitConnectSubscriber {
    FitConnectSubscriber::new(
        SubscriberSettings {
            channel: "fit".into(),
            token: token_settings(&f.zd),
            submission_api_url: f.zd.url(),
            destinations: vec![SubscriberDestination {
                destination_id: DEST.into(),
                decryption_keys: vec![key("dest-b.pem", "old"), f.enc.clone()],
                signing_key: f.signing.clone(),
            }],
            poll_interval: poll,
            callback_secret: Some(SECRET.into()),
            state_dir: f.state.path().to_path_buf(),
            http_timeout: Duration::from_secs(10),
            ca_cert_pem: None,
        },
        f.store.clone(),
    )
    .unwrap()
}

/// What a test sender puts into a submission.
struct Send<'a> {
    data: &'a [u8],
    mime: &'a str,
    attachments: Vec<(&'a str, Vec<u8>)>,
    key: RsaPublicJwk,
    tamper: fn(&mut Value),
}

/// Send a submission through the Submission API like a real sender.
async fn send(zd: &Zustelldienst, s: Send<'_>) -> (String, String) {
    let http = drehscheibe_fit_connect::client::http_client(Duration::from_secs(10), None).unwrap();
    let tokens = Arc::new(TokenClient::new(http.clone(), token_settings(zd)).unwrap());
    let client = SubmissionClient::new(http, &zd.url(), tokens).unwrap();
    let ids: Vec<String> = s
        .attachments
        .iter()
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let a = client
        .announce(&AnnounceRequest {
            destination_id: DEST.into(),
            announced_attachments: ids.clone(),
            service_type: ServiceType {
                name: "Gewerbeanmeldung".into(),
                identifier: "urn:de:fim:leika:leistung:99050012104000".into(),
            },
        })
        .await
        .unwrap();
    let mut meta_atts = Vec::new();
    for (id, (name, bytes)) in ids.iter().zip(&s.attachments) {
        let jwe = jose::encrypt_compact(bytes, &s.key, true).unwrap();
        client
            .upload_attachment(&a.submission_id, id, Bytes::from(jwe))
            .await
            .unwrap();
        meta_atts.push(json!({
            "attachmentId": id, "purpose": "attachment", "mimeType": "application/pdf", "filename": name,
            "hash": {"type": "sha512", "content": hex::encode(Sha512::digest(bytes))},
        }));
    }
    let mut metadata = json!({
        "contentStructure": {
            "data": {
                "hash": {"type": "sha512", "content": hex::encode(Sha512::digest(s.data))},
                "submissionSchema": {"schemaUri": "urn:test:schema", "mimeType": s.mime},
            },
            "attachments": meta_atts,
        },
        "publicServiceType": {"identifier": "urn:de:fim:leika:leistung:99050012104000", "name": "Gewerbeanmeldung"},
    });
    (s.tamper)(&mut metadata);
    let meta = jose::encrypt_compact(metadata.to_string().as_bytes(), &s.key, true).unwrap();
    let data = jose::encrypt_compact(s.data, &s.key, true).unwrap();
    client
        .submit(&a.submission_id, &meta, Some(&data))
        .await
        .unwrap();
    (a.submission_id, a.case_id)
}

fn plain<'a>(f: &Fixture, data: &'a [u8], attachments: Vec<(&'a str, Vec<u8>)>) -> Send<'a> {
    Send {
        data,
        mime: "application/xml",
        attachments,
        key: f.enc.encryption_jwk(),
        tamper: |_| {},
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn run(
    adapter: FitConnectSubscriber,
    intake: Arc<RecordingIntake>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let s = stop.clone();
    let intake: Arc<dyn Intake> = intake;
    let task = tokio::spawn(async move {
        Box::new(adapter).run(intake, s).await.unwrap();
    });
    (stop, task)
}

const DOC1: &[u8] = b"<?xml version=\"1.0\"?><antrag nr=\"1\">Gr\xc3\xbc\xc3\x9fe</antrag>";
const DOC2: &[u8] = b"<?xml version=\"1.0\"?><antrag nr=\"2\"/>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_are_handed_in_once_and_acknowledged_with_verifiable_sets() {
    let mut f = fixture().await;
    let pdf: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let (s1, c1) = send(&f.zd, plain(&f, DOC1, vec![("antrag.pdf", pdf.clone())])).await;
    let (s2, c2) = send(&f.zd, plain(&f, DOC2, vec![])).await;

    let intake = RecordingIntake::new();
    let (stop, task) = run(subscriber(&f, Duration::from_millis(100)), intake.clone());
    eventually("two messages", || intake.messages().len() == 2).await;

    let msgs = intake.messages();
    let (m1, sub1) = msgs
        .iter()
        .find(|(_, s)| s.correlation_ids["fitconnect.submission_id"] == s1)
        .unwrap();
    let (m2, sub2) = msgs
        .iter()
        .find(|(_, s)| s.correlation_ids["fitconnect.submission_id"] == s2)
        .unwrap();
    assert_eq!(&sub1.payload[..], DOC1, "data byte-exact");
    assert_eq!(sub1.content_type, "application/xml");
    assert_eq!(sub1.channel, "fit");
    assert_eq!(
        sub1.idempotency_key.as_deref(),
        Some(format!("fitconnect:{s1}").as_str())
    );
    assert_eq!(sub1.correlation_ids["fitconnect.case_id"], c1);
    assert_eq!(sub1.correlation_ids["fitconnect.destination_id"], DEST);
    assert_eq!(
        sub1.correlation_ids["fitconnect.leika"],
        "urn:de:fim:leika:leistung:99050012104000"
    );
    assert_eq!(sub1.attachments.len(), 1);
    assert_eq!(sub1.attachments[0].filename.as_deref(), Some("antrag.pdf"));
    assert_eq!(sub1.attachments[0].content_type, "application/pdf");
    assert_eq!(
        intake.blobs.get(&sub1.attachments[0].blob),
        pdf,
        "attachment byte-exact"
    );
    assert_eq!(&sub2.payload[..], DOC2);

    // Crash before the state was written: the adapter forgets, fetches both
    // again, and the hub's idempotency keys make them duplicates.
    stop.cancel();
    task.await.unwrap();
    // (a store without the adapter's state: the same as losing it)
    f.store = store_in(&f.state.path().join("forgotten"));
    let (stop, task) = run(subscriber(&f, Duration::from_millis(100)), intake.clone());
    eventually("both fetched again", || {
        *intake.submits.lock().unwrap() == 4
    })
    .await;
    assert_eq!(
        intake.messages().len(),
        2,
        "a submission fetched twice is routed once"
    );

    // Nothing is acknowledged before the hub decides.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(f.zd.submissions("submitted").len(), 2);

    // Restart again: the pending list survives, no re-fetch needed.
    stop.cancel();
    task.await.unwrap();
    let gets_before =
        f.zd.state()
            .requests
            .iter()
            .filter(|r| r.starts_with("GET /v1/submissions/"))
            .count();
    intake.set_state(*m1, MessageState::Delivered, None);
    intake.set_state(
        *m2,
        MessageState::Dead,
        Some("no route for Leistung 99050012104000"),
    );
    let (stop, task) = run(subscriber(&f, Duration::from_millis(100)), intake.clone());
    eventually("accept and reject posted", || {
        f.zd.submissions("accepted").len() == 1 && f.zd.submissions("rejected").len() == 1
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    let gets_after =
        f.zd.state()
            .requests
            .iter()
            .filter(|r| r.starts_with("GET /v1/submissions/"))
            .count();
    assert_eq!(
        gets_before, gets_after,
        "decided submissions are not fetched again"
    );
    assert_eq!(f.zd.submissions("accepted")[0].submission_id, s1);

    // The SETs verify with the destination's published key and carry the
    // right claims and tags.
    let keys = [f.signing.verification_jwk()];
    let log1 = f.zd.events(&c1);
    let accept = log1
        .iter()
        .find_map(|t| {
            set::verify_set(t, &keys)
                .ok()
                .filter(|v| v.event == set::ACCEPT_SUBMISSION)
        })
        .unwrap();
    assert_eq!(accept.issuer, DEST);
    assert_eq!(accept.submission_id.to_string(), s1);
    assert_eq!(accept.case_id.to_string(), c1);
    assert_eq!(accept.header["kid"], "sig-1");
    let stored =
        f.zd.all_submissions()
            .into_iter()
            .find(|s| s.submission_id == s1)
            .unwrap();
    let tags = &accept.payload["authenticationTags"];
    assert_eq!(
        tags["metadata"],
        jose::jwe_auth_tag(stored.encrypted_metadata.as_deref().unwrap()).unwrap()
    );
    assert_eq!(
        tags["data"],
        jose::jwe_auth_tag(stored.encrypted_data.as_deref().unwrap()).unwrap()
    );
    let (att_id, att_jwe) = stored.attachments.iter().next().unwrap();
    assert_eq!(
        tags["attachments"][att_id],
        jose::jwe_auth_tag(att_jwe).unwrap()
    );

    let log2 = f.zd.events(&c2);
    let reject = log2
        .iter()
        .find_map(|t| {
            set::verify_set(t, &keys)
                .ok()
                .filter(|v| v.event == set::REJECT_SUBMISSION)
        })
        .unwrap();
    // The sender learns the outcome and a reference, not the hub's reason
    // (see a_rejection_tells_the_sender_…).
    let problem = &reject.payload["problems"][0];
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains(&m2.to_string()), "{problem}");
    assert!(!detail.contains("no route for Leistung"), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_submissions_are_rejected_with_precise_problems() {
    let f = fixture().await;
    let (bad_hash, _) = send(
        &f.zd,
        Send {
            tamper: |m| m["contentStructure"]["data"]["hash"]["content"] = json!("0".repeat(128)),
            ..plain(&f, DOC1, vec![])
        },
    )
    .await;
    let (wrong_key, _) = send(
        &f.zd,
        Send {
            key: key("signing.pem", "x").encryption_jwk(),
            ..plain(&f, DOC1, vec![])
        },
    )
    .await;
    let (bad_schema, _) = send(
        &f.zd,
        Send {
            tamper: |m| m["contentStructure"]["data"]["hash"]["type"] = json!("md5"),
            ..plain(&f, DOC1, vec![])
        },
    )
    .await;
    let (bad_att, _) = send(
        &f.zd,
        Send {
            tamper: |m| {
                m["contentStructure"]["attachments"][0]["hash"]["content"] = json!("ab".repeat(64))
            },
            ..plain(&f, DOC2, vec![("x.pdf", b"%PDF-1.4 test".to_vec())])
        },
    )
    .await;
    let (good, _) = send(&f.zd, plain(&f, DOC2, vec![])).await;

    let intake = RecordingIntake::new();
    let (stop, task) = run(subscriber(&f, Duration::from_millis(100)), intake.clone());
    eventually("four rejected", || f.zd.submissions("rejected").len() == 4).await;
    eventually("one handed in", || intake.messages().len() == 1).await;
    stop.cancel();
    task.await.unwrap();
    assert_eq!(
        intake.messages()[0].1.correlation_ids["fitconnect.submission_id"],
        good
    );

    let keys = [f.signing.verification_jwk()];
    let problem_of = |sid: &str| -> String {
        let sub =
            f.zd.all_submissions()
                .into_iter()
                .find(|s| s.submission_id == sid)
                .unwrap();
        let log = f.zd.events(&sub.case_id);
        let v = log
            .iter()
            .find_map(|t| {
                set::verify_set(t, &keys)
                    .ok()
                    .filter(|v| v.event == set::REJECT_SUBMISSION)
            })
            .unwrap();
        v.payload["problems"][0]["type"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(problem_of(&bad_hash), "hash-mismatch");
    assert_eq!(problem_of(&wrong_key), "encryption-issue");
    assert_eq!(problem_of(&bad_schema), "schema-violation");
    assert_eq!(problem_of(&bad_att), "hash-mismatch");
    // No staged attachment of the rejected submission was handed in.
    assert!(intake
        .messages()
        .iter()
        .all(|(_, s)| s.attachments.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_wake_the_adapter_only_when_authentic() {
    let f = fixture().await;
    let adapter = subscriber(&f, Duration::from_secs(3600));
    let router = adapter.callback_router().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let url = format!("http://{addr}{}", callback_path("fit"));

    let intake = RecordingIntake::new();
    let (stop, task) = run(adapter, intake.clone());
    // The first poll happens at start; after it, only a callback wakes it.
    eventually("first poll", || {
        f.zd.state()
            .requests
            .iter()
            .any(|r| r == "GET /v1/submissions")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let body = json!({"type": "https://schema.fitko.de/fit-connect/submission-api/callbacks/new-submissions", "submissions": []}).to_string();
    let now = chrono::Utc::now().timestamp();
    // Wrong secret, stale, future, missing headers: 401.
    assert_eq!(
        send_callback(url.clone(), "wrong".into(), body.clone(), None).await,
        Some(401)
    );
    assert_eq!(
        send_callback(url.clone(), SECRET.into(), body.clone(), Some(now - 301)).await,
        Some(401)
    );
    assert_eq!(
        send_callback(url.clone(), SECRET.into(), body.clone(), Some(now + 400)).await,
        Some(401)
    );
    let status = reqwest::Client::new()
        .post(&url)
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 401);
    // A valid signature over a different body: 401.
    let ts = now.to_string();
    let sig = drehscheibe_fit_connect::subscriber::callback_signature(
        SECRET.as_bytes(),
        &ts,
        body.as_bytes(),
    );
    let status = reqwest::Client::new()
        .post(&url)
        .header("callback-timestamp", &ts)
        .header("callback-authentication", &sig)
        .body("{}")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 401);
    // A valid one: 204.
    assert_eq!(
        send_callback(url.clone(), SECRET.into(), body.clone(), Some(now - 10)).await,
        Some(204)
    );

    // The double sends a real callback on submit: the message arrives
    // without waiting for the hour-long poll interval.
    f.zd.set_callback(url.clone(), SECRET.into());
    let (sid, _) = send(&f.zd, plain(&f, DOC1, vec![])).await;
    eventually("callback-driven fetch", || intake.messages().len() == 1).await;
    assert_eq!(
        intake.messages()[0].1.correlation_ids["fitconnect.submission_id"],
        sid
    );
    stop.cancel();
    task.await.unwrap();
}

/// Regression: the subscriber's `reject-submission` for a rejected or dead
/// message told the sender the hub's own reason (its configuration,
/// internal URLs, a downstream hub's routing reason). Now: a fixed detail
/// per outcome and the hub message id as a reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_tells_the_sender_the_outcome_and_a_reference_but_no_hub_internals() {
    let f = fixture().await;
    let (rejected, c1) = send(&f.zd, plain(&f, DOC1, vec![])).await;
    let (dead, c2) = send(&f.zd, plain(&f, DOC2, vec![])).await;
    let intake = RecordingIntake::new();
    let (stop, task) = run(subscriber(&f, Duration::from_millis(50)), intake.clone());
    eventually("both handed in", || intake.messages().len() == 2).await;
    let message_of = |sid: &str| {
        intake
            .messages()
            .iter()
            .find(|(_, s)| s.correlation_ids["fitconnect.submission_id"] == sid)
            .map(|(m, _)| *m)
            .unwrap()
    };
    let (m1, m2) = (message_of(&rejected), message_of(&dead));
    let internal = "no Kommune is configured for key \"09999999\" (extracted by rule kommune); \
        downstream hub http://127.0.0.1:47113/xta/xta-ws: routing: no route for Leistung 99050012104000";
    intake.set_state(m1, MessageState::Rejected, Some(internal));
    intake.set_state(m2, MessageState::Dead, Some(internal));
    eventually("both rejected", || f.zd.submissions("rejected").len() == 2).await;
    stop.cancel();
    task.await.unwrap();

    let keys = [f.signing.verification_jwk()];
    for (case, message, expected) in [
        (
            &c1,
            m1,
            "the submission was not accepted by the receiving administration's rules",
        ),
        (
            &c2,
            m2,
            "the submission could not be delivered to the responsible authority",
        ),
    ] {
        let reject =
            f.zd.events(case)
                .iter()
                .find_map(|t| {
                    set::verify_set(t, &keys)
                        .ok()
                        .filter(|v| v.event == set::REJECT_SUBMISSION)
                })
                .unwrap();
        let detail = reject.payload["problems"][0]["detail"].as_str().unwrap();
        assert!(detail.starts_with(expected), "{detail}");
        assert!(
            detail.contains(&message.to_string()),
            "reference missing: {detail}"
        );
        for leak in [
            "Kommune",
            "09999999",
            "http://",
            "127.0.0.1",
            "xta-ws",
            "no route",
        ] {
            assert!(!detail.contains(leak), "{leak:?} leaked: {detail}");
        }
    }
}

/// Regression: a SET the Zustelldienst refused with `422` was signed and
/// posted again on every poll, forever, across restarts. Now the posts back
/// off exponentially (the schedule survives a restart), stop after the
/// policy's bound, and the given-up SET stays visible with its last error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_set_backs_off_then_is_given_up_and_kept_visible() {
    let f = fixture().await;
    // A submission the subscriber rejects at once (its data hash is
    // wrong): a reject-submission SET is pending.
    let (sid, case) = send(
        &f.zd,
        Send {
            tamper: |m| m["contentStructure"]["data"]["hash"]["content"] = json!("0".repeat(128)),
            ..plain(&f, DOC1, vec![])
        },
    )
    .await;
    // The Zustelldienst refuses every SET.
    f.zd.fail_next("post-event", 422, 1000);
    let policy = SetRetryPolicy {
        first_delay: Duration::from_millis(300),
        max_delay: Duration::from_secs(5),
        max_attempts: 4,
        give_up_after: Duration::from_secs(3600),
    };
    let poll = Duration::from_millis(50);
    let post = format!("POST /v1/cases/{case}/events");
    let intake = RecordingIntake::new();

    let (stop, task) = run(subscriber(&f, poll).with_set_retry(policy), intake.clone());
    eventually("two refused posts", || f.zd.request_times(&post).len() == 2).await;
    // Restart between the second and the third try.
    stop.cancel();
    task.await.unwrap();
    let adapter = subscriber(&f, poll).with_set_retry(policy);
    let counters = adapter.counters();
    let (stop, task) = run(adapter, intake.clone());
    eventually("given up", || counters.sets_given_up() == 1).await;
    // What the hub shows in /metrics and /readyz (ChannelStatus).
    {
        use drehscheibe_model::health::ChannelStatus;
        let reported = ChannelStatus::counters(&counters);
        assert!(reported.contains(&("set_given_up", 1)), "{reported:?}");
        assert!(
            reported
                .iter()
                .any(|(event, n)| *event == "set_refused" && *n >= 1),
            "{reported:?}"
        );
        let lines = counters.attention();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("1 security event token(s) given up"),
            "{lines:?}"
        );
    }
    // A dozen more polls: nothing is posted any more.
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop.cancel();
    task.await.unwrap();

    let times = f.zd.request_times(&post);
    assert_eq!(times.len(), 4, "posted exactly max_attempts times");
    // 300 ms, 600 ms, 1200 ms apart at least (a little slack for the two
    // clocks involved), the restart notwithstanding.
    for (i, pair) in times.windows(2).enumerate() {
        let want = policy.delay(i as u32 + 1) - Duration::from_millis(20);
        let gap = pair[1] - pair[0];
        assert!(gap >= want, "gap {i}: {gap:?} < {want:?}");
    }
    assert_eq!(
        counters.sets_refused(),
        2,
        "the second run saw two refusals"
    );

    // Visible to an operator, with the last error; not fetched again.
    let given_up = subscriber(&f, poll).given_up_sets().await.unwrap();
    assert_eq!(given_up.len(), 1);
    let g = &given_up[0];
    assert_eq!(g.set.submission_id, sid);
    assert_eq!(g.event, set::REJECT_SUBMISSION);
    assert_eq!(g.set.refusals, 4);
    assert!(
        g.set.last_error.as_deref().unwrap().contains("422"),
        "{g:?}"
    );
    let fetches =
        f.zd.state()
            .requests
            .iter()
            .filter(|r| **r == format!("GET /v1/submissions/{sid}"))
            .count();
    assert_eq!(fetches, 1, "a given-up submission is not fetched again");
    assert_eq!(
        f.zd.submissions("submitted").len(),
        1,
        "still undecided there"
    );
}
