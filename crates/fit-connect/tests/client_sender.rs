//! The sender connector against the test Zustelldienst (real loopback
//! HTTP): announce/upload/submit, metadata valid against schema 1.0.0,
//! byte-exact decryption with the destination key, accept/reject,
//! retryable failures, idempotent retries, routing lookup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use drehscheibe_fit_connect::client::{Area, TokenSettings};
use drehscheibe_fit_connect::connector::{
    DestinationSource, FitConnectConnector, FitConnectConnectorSettings,
};
use drehscheibe_fit_connect::jose::{self, RsaPrivateKey};
use drehscheibe_fit_connect::set;
use drehscheibe_fit_connect::subscriber::{make_set, SubscriberDestination};
use drehscheibe_model::{
    AttachmentRef, Connector, DeliveryRequest, Envelope, MessageId, SenderIdentity,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha512};
use support::zustelldienst::{DestinationSetup, StoredSubmission, Zustelldienst};
use support::{key, MemBlobs};

const DEST: &str = "7d3c2a10-4b5e-4f60-8a71-9b8c7d6e5f40";
const LEIKA: &str = "99050012104000";
const SCHEMA_URI: &str = "urn:drehscheibe:test:order:1.0";

struct Fixture {
    zd: Zustelldienst,
    dest_key: RsaPrivateKey,
    dest: SubscriberDestination,
}

async fn fixture(status: &str) -> Fixture {
    let dest_key = key("dest-a.pem", "enc-a");
    let signing = key("signing.pem", "sig-1");
    let zd = Zustelldienst::start(
        "sender",
        "sender-secret",
        vec![DestinationSetup {
            id: DEST.into(),
            encryption_key: dest_key.encryption_jwk(),
            verification_keys: vec![signing.verification_jwk()],
            services: vec![(
                format!("urn:de:fim:leika:leistung:{LEIKA}"),
                SCHEMA_URI.into(),
                "application/xml".into(),
            )],
            status: status.into(),
        }],
        key("dest-b.pem", "service"),
    )
    .await;
    let dest = SubscriberDestination {
        destination_id: DEST.into(),
        decryption_keys: vec![dest_key.clone()],
        signing_key: signing,
    };
    Fixture { zd, dest_key, dest }
}

fn settings(zd: &Zustelldienst, destination: DestinationSource) -> FitConnectConnectorSettings {
    FitConnectConnectorSettings {
        token: TokenSettings {
            token_url: zd.token_url(),
            client_id: "sender".into(),
            client_secret: "sender-secret".into(),
            scope: None,
        },
        submission_api_url: format!("{}/v1", zd.url()),
        destination,
        leika: None,
        service_name: Some("Testleistung".into()),
        data_schema_uri: None,
        poll_interval: Duration::from_millis(50),
        max_wait: Duration::from_secs(20),
        require_accept: false,
        attempt_timeout: Duration::from_secs(60),
        http_timeout: Duration::from_secs(10),
        key_cache_ttl: Duration::from_secs(600),
        max_attachment_bytes: 8 << 20,
        ca_cert_pem: None,
    }
}

const DOC: &[u8] = b"<?xml version=\"1.0\"?>\n<o:order xmlns:o=\"urn:drehscheibe:test:order\" kommune=\"09162000\" leistung=\"99050012104000\">Gr\xc3\xbc\xc3\x9fe</o:order>\n";

fn request(blobs: &Arc<MemBlobs>, generation: u32, kommune: Option<&str>) -> DeliveryRequest {
    let pdf: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let a1 = blobs.insert(&pdf);
    let a2 = blobs.insert(b"second attachment\n");
    DeliveryRequest {
        envelope: Envelope {
            id: MessageId::new(),
            channel: "portal".into(),
            sender: SenderIdentity {
                adapter: "http".into(),
                principal: "test".into(),
                remote_addr: None,
            },
            received_at: Utc::now(),
            content_type: "application/xml".into(),
            size: DOC.len() as u64,
            sha256: drehscheibe_model::sha256_hex(DOC),
            correlation_ids: BTreeMap::new(),
            idempotency_key: None,
            tenant: Some("alpha".into()),
            kommune_key: kommune.map(String::from),
            leistung: Some(LEIKA.into()),
            attachments: vec![
                AttachmentRef {
                    name: "antrag".into(),
                    filename: Some("antrag.pdf".into()),
                    content_type: "application/pdf".into(),
                    blob: a1,
                },
                AttachmentRef {
                    name: "note.txt".into(),
                    filename: None,
                    content_type: "text/plain".into(),
                    blob: a2,
                },
            ],
        },
        target: "fachverfahren".into(),
        generation,
        attempt: 1,
        document: Bytes::from_static(DOC),
        content_type: "application/xml; charset=utf-8".into(),
        filename: "order.xml".into(),
        blobs: blobs.clone(),
        checkpoint: drehscheibe_model::Checkpoint::in_memory(),
    }
}

/// Wait until the double holds a submitted submission.
async fn wait_submitted(zd: &Zustelldienst, n: usize) -> Vec<StoredSubmission> {
    for _ in 0..400 {
        let s = zd.submissions("submitted");
        if s.len() >= n {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no submitted submission arrived");
}

fn schema_validator() -> jsonschema::Validator {
    let path = format!(
        "{}/../../schemas/fit-connect/metadata.schema.v1.0.0.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// Decrypt and check everything that arrived; return the accept payload.
fn check_arrival(f: &Fixture, sub: &StoredSubmission, req: &DeliveryRequest) -> Value {
    let keys = [&f.dest_key];
    let meta_jwe = sub.encrypted_metadata.as_deref().unwrap();
    let meta = jose::decrypt_compact(meta_jwe.as_bytes(), &keys).unwrap();
    assert_eq!(meta.header["cty"], "application/json");
    assert_eq!(meta.header["alg"], "RSA-OAEP-256");
    assert_eq!(meta.header["enc"], "A256GCM");
    assert_eq!(meta.header["kid"], "enc-a");
    let metadata: Value = serde_json::from_slice(&meta.plaintext).unwrap();
    let validator = schema_validator();
    let errors: Vec<String> = validator
        .iter_errors(&metadata)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "metadata invalid: {errors:?}\n{metadata:#}"
    );
    // Negative control: the validator does catch a broken document.
    let mut broken = metadata.clone();
    broken["contentStructure"]["data"]["hash"]["type"] = json!("md5");
    assert!(!validator.is_valid(&broken));

    assert_eq!(
        metadata["publicServiceType"]["identifier"],
        format!("urn:de:fim:leika:leistung:{LEIKA}")
    );
    assert_eq!(
        sub.service_type["identifier"],
        metadata["publicServiceType"]["identifier"]
    );
    let data =
        jose::decrypt_compact(sub.encrypted_data.as_deref().unwrap().as_bytes(), &keys).unwrap();
    assert_eq!(data.plaintext, DOC, "data must arrive byte-exact");
    let cs = &metadata["contentStructure"];
    assert_eq!(
        cs["data"]["hash"]["content"],
        hex::encode(Sha512::digest(DOC))
    );
    assert_eq!(cs["data"]["submissionSchema"]["schemaUri"], SCHEMA_URI);
    assert_eq!(
        cs["data"]["submissionSchema"]["mimeType"],
        "application/xml"
    );

    let atts = cs["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 2);
    assert_eq!(sub.attachments.len(), 2);
    let mut tags = Vec::new();
    for (meta_att, sent) in atts.iter().zip(&req.envelope.attachments) {
        let id = meta_att["attachmentId"].as_str().unwrap();
        let jwe = &sub.attachments[id];
        let plain = jose::decrypt_compact(jwe.as_bytes(), &keys).unwrap();
        let original = req_blob(req, sent);
        assert_eq!(plain.plaintext, original, "attachment {id} byte-exact");
        assert_eq!(
            meta_att["hash"]["content"],
            hex::encode(Sha512::digest(&original))
        );
        assert_eq!(meta_att["mimeType"], sent.content_type);
        tags.push((id.to_string(), plain.auth_tag));
    }
    assert_eq!(atts[0]["filename"], "antrag.pdf");
    set::authentication_tags(&meta.auth_tag, Some(&data.auth_tag), &tags)
}

fn req_blob(req: &DeliveryRequest, a: &AttachmentRef) -> Vec<u8> {
    let _ = req;
    BLOBS.with(|b| b.borrow().as_ref().unwrap().get(&a.blob))
}

thread_local! {
    static BLOBS: std::cell::RefCell<Option<Arc<MemBlobs>>> = const { std::cell::RefCell::new(None) };
}

fn blobs() -> Arc<MemBlobs> {
    let b = Arc::new(MemBlobs::default());
    BLOBS.with(|x| *x.borrow_mut() = Some(b.clone()));
    b
}

#[tokio::test(flavor = "current_thread")]
async fn delivers_encrypted_and_ends_with_the_verified_accept() {
    let f = fixture("active").await;
    let blobs = blobs();
    let connector = Arc::new(
        FitConnectConnector::new(settings(&f.zd, DestinationSource::Fixed(DEST.into()))).unwrap(),
    );
    let req = request(&blobs, 0, None);
    let check_req = request(&blobs, 0, None);
    let c = connector.clone();
    let delivery = tokio::spawn(async move { c.deliver(req).await });

    let subs = wait_submitted(&f.zd, 1).await;
    let sub = &subs[0];
    let accept = check_arrival(&f, sub, &check_req);
    // A forged accept (signed with a key the destination does not publish)
    // is ignored by the connector.
    let forged = SubscriberDestination {
        signing_key: key("dest-b.pem", "sig-1"),
        ..f.dest.clone()
    };
    let bad = make_set(
        &forged,
        &sub.submission_id,
        &sub.case_id,
        set::ACCEPT_SUBMISSION,
        accept.clone(),
    )
    .unwrap();
    f.zd.state()
        .events
        .entry(sub.case_id.clone())
        .or_default()
        .push(bad);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !delivery.is_finished(),
        "a forged accept must not end the delivery"
    );

    let token = make_set(
        &f.dest,
        &sub.submission_id,
        &sub.case_id,
        set::ACCEPT_SUBMISSION,
        accept,
    )
    .unwrap();
    f.zd.post_event(&sub.case_id, &token).unwrap();
    let receipt = delivery.await.unwrap().unwrap();
    assert!(
        receipt.detail.contains("accept-submission"),
        "{}",
        receipt.detail
    );
    assert!(receipt.detail.contains(&sub.case_id), "{}", receipt.detail);
    assert!(
        receipt.detail.contains(&sub.submission_id),
        "{}",
        receipt.detail
    );

    // Token cached: one token request for the whole delivery.
    assert_eq!(f.zd.state().token_requests, 1);
    // Destination and key cached: a second delivery fetches neither again.
    let before =
        f.zd.state()
            .requests
            .iter()
            .filter(|r| r.starts_with("GET /v1/destinations"))
            .count();
    let mut short = request(&blobs, 0, None);
    short.envelope.attachments.clear();
    let c = connector.clone();
    let second = tokio::spawn(async move { c.deliver(short).await });
    let subs = wait_submitted(&f.zd, 1).await;
    let sub2 = subs
        .iter()
        .find(|s| s.submission_id != sub.submission_id)
        .unwrap()
        .clone();
    let meta =
        jose::decrypt_compact(sub2.encrypted_metadata.unwrap().as_bytes(), &[&f.dest_key]).unwrap();
    let data =
        jose::decrypt_compact(sub2.encrypted_data.unwrap().as_bytes(), &[&f.dest_key]).unwrap();
    let accept = set::authentication_tags(&meta.auth_tag, Some(&data.auth_tag), &[]);
    let token = make_set(
        &f.dest,
        &sub2.submission_id,
        &sub2.case_id,
        set::ACCEPT_SUBMISSION,
        accept,
    )
    .unwrap();
    f.zd.post_event(&sub2.case_id, &token).unwrap();
    second.await.unwrap().unwrap();
    let after =
        f.zd.state()
            .requests
            .iter()
            .filter(|r| r.starts_with("GET /v1/destinations"))
            .count();
    assert_eq!(
        before, after,
        "destination, keys and verification key are cached"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn reject_submission_is_a_permanent_failure_with_the_problems() {
    let f = fixture("active").await;
    let blobs = blobs();
    let connector = Arc::new(
        FitConnectConnector::new(settings(&f.zd, DestinationSource::Fixed(DEST.into()))).unwrap(),
    );
    let req = request(&blobs, 0, None);
    let c = connector.clone();
    let delivery = tokio::spawn(async move { c.deliver(req).await });
    let sub = wait_submitted(&f.zd, 1).await.remove(0);
    let token = make_set(
        &f.dest,
        &sub.submission_id,
        &sub.case_id,
        set::REJECT_SUBMISSION,
        set::rejection(
            "schema-violation",
            "Schema violation",
            "Fachdaten passen nicht zum Schema",
        ),
    )
    .unwrap();
    f.zd.post_event(&sub.case_id, &token).unwrap();
    let err = delivery.await.unwrap().unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(err.reason.contains("reject-submission"), "{}", err.reason);
    assert!(
        err.reason
            .contains("schema-violation: Fachdaten passen nicht zum Schema"),
        "{}",
        err.reason
    );
}

#[tokio::test(flavor = "current_thread")]
async fn unavailable_service_is_retryable_and_4xx_is_not() {
    let f = fixture("active").await;
    let blobs = blobs();
    let mut s = settings(&f.zd, DestinationSource::Fixed(DEST.into()));
    s.max_wait = Duration::from_millis(100);
    let connector = FitConnectConnector::new(s).unwrap();

    // 503 on announce: retryable, nothing created.
    f.zd.fail_next("announce", 503, 1);
    let err = connector
        .deliver(request(&blobs, 0, None))
        .await
        .unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert!(err.reason.contains("503"), "{}", err.reason);
    assert!(f.zd.all_submissions().is_empty());

    // 503 on submit: retryable; the retry finds the submit did not arrive
    // and submits anew — exactly one submission ends up submitted.
    f.zd.fail_next("submit", 503, 1);
    let req = request(&blobs, 0, None);
    let id = req.envelope.id;
    let err = connector.deliver(req).await.unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert_eq!(f.zd.submissions("submitted").len(), 0);
    let mut retry = request(&blobs, 0, None);
    retry.envelope.id = id;
    let receipt = connector.deliver(retry).await.unwrap();
    assert!(
        receipt.detail.contains("awaiting acceptance"),
        "{}",
        receipt.detail
    );
    assert_eq!(f.zd.submissions("submitted").len(), 1);
    assert_eq!(
        f.zd.submissions("incomplete").len(),
        1,
        "the first announcement stays incomplete"
    );

    // Connection refused: retryable.
    let mut dead = settings(&f.zd, DestinationSource::Fixed(DEST.into()));
    dead.submission_api_url = "http://127.0.0.1:9".into();
    let err = FitConnectConnector::new(dead)
        .unwrap()
        .deliver(request(&blobs, 0, None))
        .await
        .unwrap_err();
    assert!(err.retryable, "{err:?}");

    // Unknown destination: 404 problem, permanent.
    let err = FitConnectConnector::new(settings(
        &f.zd,
        DestinationSource::Fixed("00000000-0000-4000-8000-000000000000".into()),
    ))
    .unwrap()
    .deliver(request(&blobs, 0, None))
    .await
    .unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(
        err.reason.contains("destination-not-found"),
        "{}",
        err.reason
    );

    // Wrong client secret: the token endpoint's 401 is permanent.
    let mut wrong = settings(&f.zd, DestinationSource::Fixed(DEST.into()));
    wrong.token.client_secret = "nope".into();
    let err = FitConnectConnector::new(wrong)
        .unwrap()
        .deliver(request(&blobs, 0, None))
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err:?}");

    // A PDF as data set: permanent, nothing sent.
    let before = f.zd.all_submissions().len();
    let mut pdf = request(&blobs, 0, None);
    pdf.content_type = "application/pdf".into();
    let err = connector.deliver(pdf).await.unwrap_err();
    assert!(!err.retryable);
    assert_eq!(f.zd.all_submissions().len(), before);
}

#[tokio::test(flavor = "current_thread")]
async fn inactive_destination_is_permanent() {
    let f = fixture("inactive").await;
    let blobs = blobs();
    let err = FitConnectConnector::new(settings(&f.zd, DestinationSource::Fixed(DEST.into())))
        .unwrap()
        .deliver(request(&blobs, 0, None))
        .await
        .unwrap_err();
    assert!(!err.retryable);
    assert!(err.reason.contains("not active"), "{}", err.reason);
}

use drehscheibe_testkit::KeptCheckpoint;

#[tokio::test(flavor = "current_thread")]
async fn retries_of_one_generation_never_submit_twice() {
    let f = fixture("active").await;
    let blobs = blobs();
    let mut s = settings(&f.zd, DestinationSource::Fixed(DEST.into()));
    s.max_wait = Duration::from_millis(150);
    s.require_accept = true;
    let connector = FitConnectConnector::new(s.clone()).unwrap();
    // The checkpoint as the engine keeps it: outside the connector,
    // handed to every attempt of the generation.
    let kept = Arc::new(KeptCheckpoint::default());
    let mut req = request(&blobs, 3, None);
    req.checkpoint = kept.checkpoint();
    let id = req.envelope.id;
    let again = |blobs: &Arc<MemBlobs>| {
        let mut r = request(blobs, 3, None);
        r.envelope.id = id;
        r.attempt = 2;
        r.checkpoint = kept.checkpoint();
        r
    };

    // No decision in time: retryable "awaiting", one submission.
    let err = connector.deliver(req).await.unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert!(
        err.reason.contains("awaiting accept-submission"),
        "{}",
        err.reason
    );
    assert!(
        kept.0
            .lock()
            .unwrap()
            .as_deref()
            .is_some_and(|c| c.contains("submission_id")),
        "the submission was checkpointed before it was submitted"
    );
    let err = connector.deliver(again(&blobs)).await.unwrap_err();
    assert!(err.retryable);
    assert_eq!(
        f.zd.all_submissions().len(),
        1,
        "the retry must not submit again"
    );
    // Nor a retry by a new connector (a restarted hub): the memory is the
    // checkpoint, not the connector.
    let restarted = FitConnectConnector::new(s).unwrap();
    let err = restarted.deliver(again(&blobs)).await.unwrap_err();
    assert!(err.retryable);
    assert_eq!(
        f.zd.all_submissions().len(),
        1,
        "no second submission after a restart"
    );

    // The events endpoint fails once: still retryable, still one.
    f.zd.fail_next("events", 502, 1);
    let err = connector.deliver(again(&blobs)).await.unwrap_err();
    assert!(err.retryable);
    assert_eq!(f.zd.all_submissions().len(), 1);

    // The accept arrives: the next retry ends delivered, without submitting.
    let sub = f.zd.submissions("submitted").remove(0);
    let keys = [&f.dest_key];
    let meta = jose::decrypt_compact(sub.encrypted_metadata.as_deref().unwrap().as_bytes(), &keys)
        .unwrap();
    let data =
        jose::decrypt_compact(sub.encrypted_data.as_deref().unwrap().as_bytes(), &keys).unwrap();
    let tags: Vec<(String, String)> = sub
        .attachments
        .iter()
        .map(|(id, jwe)| (id.clone(), jose::jwe_auth_tag(jwe).unwrap().to_string()))
        .collect();
    let accept = set::authentication_tags(&meta.auth_tag, Some(&data.auth_tag), &tags);
    let token = make_set(
        &f.dest,
        &sub.submission_id,
        &sub.case_id,
        set::ACCEPT_SUBMISSION,
        accept,
    )
    .unwrap();
    f.zd.post_event(&sub.case_id, &token).unwrap();
    let receipt = connector.deliver(again(&blobs)).await.unwrap();
    assert!(receipt.detail.contains(&sub.case_id));
    assert_eq!(f.zd.all_submissions().len(), 1);

    // A new generation (replay) is a new submission.
    let mut replay = request(&blobs, 4, None);
    replay.envelope.id = id;
    let _ = connector.deliver(replay).await;
    assert_eq!(f.zd.all_submissions().len(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn without_a_decision_the_delivery_counts_as_submitted() {
    let f = fixture("active").await;
    let blobs = blobs();
    let mut s = settings(&f.zd, DestinationSource::Fixed(DEST.into()));
    s.max_wait = Duration::from_millis(150);
    let receipt = FitConnectConnector::new(s)
        .unwrap()
        .deliver(request(&blobs, 0, None))
        .await
        .unwrap();
    assert!(
        receipt.detail.contains("awaiting acceptance"),
        "{}",
        receipt.detail
    );
    assert_eq!(f.zd.submissions("submitted").len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn routing_api_finds_and_caches_the_destination() {
    use axum::extract::Query;
    use axum::routing::get;
    let f = fixture("active").await;
    let blobs = blobs();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let app = axum::Router::new().route(
        "/v1/routes",
        get(move |Query(q): Query<std::collections::HashMap<String, String>>, headers: axum::http::HeaderMap| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                assert!(headers.get("user-agent").is_some(), "the Routing API needs a User-Agent");
                let known = q.get("leikaKey").map(String::as_str) == Some(LEIKA)
                    && q.get("ars").map(String::as_str) == Some("091620000000");
                let routes = if known {
                    vec![json!({"destinationId": DEST, "destinationSignature": "a.b.c", "destinationName": "Musterstadt"})]
                } else {
                    vec![]
                };
                axum::Json(json!({"count": routes.len(), "offset": 0, "totalCount": routes.len(), "routes": routes}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut s = settings(
        &f.zd,
        DestinationSource::Routing {
            routing_api_url: format!("http://{addr}/v1/"),
            area: None,
            cache_ttl: Duration::from_secs(60),
        },
    );
    s.max_wait = Duration::from_millis(50);
    let connector = FitConnectConnector::new(s).unwrap();
    for _ in 0..2 {
        let r = connector
            .deliver(request(&blobs, 0, Some("091620000000")))
            .await
            .unwrap();
        assert!(r.detail.contains(DEST), "{}", r.detail);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "routing answers are cached"
    );
    assert_eq!(f.zd.submissions("submitted").len(), 2);

    // An area without a route: permanent.
    let err = connector
        .deliver(request(&blobs, 0, Some("091620000001")))
        .await
        .unwrap_err();
    assert!(!err.retryable);
    assert!(err.reason.contains("no route"), "{}", err.reason);
    // No Kommune key and no configured area: permanent.
    let err = connector
        .deliver(request(&blobs, 0, None))
        .await
        .unwrap_err();
    assert!(!err.retryable);

    // A configured area wins over the message.
    let mut s = settings(
        &f.zd,
        DestinationSource::Routing {
            routing_api_url: format!("http://{addr}/v1"),
            area: Some(Area::Ars("091620000000".into())),
            cache_ttl: Duration::from_secs(60),
        },
    );
    s.max_wait = Duration::from_millis(50);
    FitConnectConnector::new(s)
        .unwrap()
        .deliver(request(&blobs, 0, None))
        .await
        .unwrap();
}
