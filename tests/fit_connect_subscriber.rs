//! The hub as a FIT-Connect subscriber: a full in-process hub with a
//! `fit-connect-subscriber` channel polls a Zustelldienst (the in-memory
//! test double of `crates/fit-connect/tests/support/zustelldienst.rs`,
//! which serves the subscriber endpoints the hub's own intake does not),
//! fetches an application a sender submitted there, decrypts and verifies
//! it, routes it to the Fachverfahren (an HTTP receiver) byte-exact, and
//! posts a valid `accept-submission` SET to the case's event log. While the
//! first SET posts fail, the Zustelldienst keeps listing the submission, and
//! after the accept it lists it again: later polls must not route it twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "../crates/fit-connect/tests/support/zustelldienst.rs"]
mod zustelldienst;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use drehscheibe_fit_connect::client::{
    http_client, AnnounceRequest, ServiceType, SubmissionClient, TokenClient, TokenSettings,
};
use drehscheibe_fit_connect::jose::{self, RsaPrivateKey};
use drehscheibe_fit_connect::set;
use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{repo_root, start, Api, TestConfig};
use serde_json::json;
use sha2::{Digest, Sha512};
use zustelldienst::{DestinationSetup, Zustelldienst};

const DEST: &str = "8c4d2e1f-6a3b-4c5d-9e7f-0a1b2c3d4e5f";
const AGS: &str = "09162000";
const LEISTUNG: &str = "99108008252000";
const CLIENT: &str = "hub-subscriber";
const SECRET: &str = "hub-subscriber-secret";
const SIGNING_KID: &str = "hub-sub-set";
const WAIT: Duration = Duration::from_secs(60);

fn key_file(name: &str) -> PathBuf {
    repo_root()
        .join("crates/fit-connect/tests/fixtures/keys")
        .join(name)
}

fn key(name: &str) -> RsaPrivateKey {
    RsaPrivateKey::from_pem(&std::fs::read_to_string(key_file(name)).unwrap()).unwrap()
}

fn channel_toml(zd: &Zustelldienst) -> String {
    format!(
        r#"
[channels.fitsub]
type = "fit-connect-subscriber"
token_url = "{token_url}"
submission_api_url = "{api}"
client_id = "{CLIENT}"
client_secret = {{ value = "{SECRET}" }}
poll_interval = "100ms"

[[channels.fitsub.destinations]]
destination_id = "{DEST}"
decryption_keys = ["{dec}"]
signing_key = "{signing}"
signing_kid = "{SIGNING_KID}"
"#,
        token_url = zd.token_url(),
        api = zd.url(),
        dec = key_file("dest-a.pem").display(),
        signing = key_file("signing.pem").display(),
    )
}

fn tenant(url: &str) -> String {
    format!(
        r#"id = "alpha"
name = "Kommune alpha"
ags = "{AGS}"

[connectors.fv]
type = "http"
url = "{url}"

[[routes]]
leistung = "{LEISTUNG}"
rule = "testjson@^1"
targets = {{ fachverfahren = "fv" }}
"#
    )
}

/// How many list polls the Zustelldienst has answered so far.
fn list_polls(zd: &Zustelldienst) -> usize {
    zd.state()
        .requests
        .iter()
        .filter(|r| r.starts_with("GET /v1/submissions") && !r.contains("/v1/submissions/"))
        .count()
}

async fn wait_polls(zd: &Zustelldienst, more_than: usize) {
    let end = Instant::now() + WAIT;
    while list_polls(zd) <= more_than {
        assert!(Instant::now() < end, "the hub stopped polling");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_fetches_routes_and_accepts_a_submission_once() {
    let signing = key("signing.pem").with_kid(SIGNING_KID);
    let zd = Zustelldienst::start(
        CLIENT,
        SECRET,
        vec![DestinationSetup {
            id: DEST.into(),
            encryption_key: key("dest-a.pem").encryption_jwk(),
            verification_keys: vec![signing.verification_jwk()],
            services: vec![],
            status: "active".into(),
        }],
        key("dest-b.pem").with_kid("zustelldienst-service"),
    )
    .await;
    // The hub's first SET posts fail: the submission stays listed while
    // the hub has already delivered it.
    zd.fail_next("post-event", 503, 3);

    let rx = Receiver::start().await;
    let cfg = TestConfig::write(
        "127.0.0.1:0",
        &channel_toml(&zd),
        &[("alpha", tenant(&rx.url("/fv")))],
    );
    let hub = start(&cfg.main).await.unwrap();

    // A sender submits an application with one attachment.
    let data = format!(
        "{{\"kommune\": \"{AGS}\", \"leistung\": \"{LEISTUNG}\", \"antragsteller\": \"Erika Müller\", \"gewerbe\": \"Bäckerei\"}}"
    )
    .into_bytes();
    let pdf: Vec<u8> = (0..120_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let http = http_client(Duration::from_secs(30), None).unwrap();
    let tokens = TokenClient::new(
        http.clone(),
        TokenSettings {
            token_url: zd.token_url(),
            client_id: CLIENT.into(),
            client_secret: SECRET.into(),
            scope: None,
        },
    )
    .unwrap();
    let sender = SubmissionClient::new(http, &zd.url(), Arc::new(tokens)).unwrap();
    let aid = uuid::Uuid::new_v4().to_string();
    let announced = sender
        .announce(&AnnounceRequest {
            destination_id: DEST.into(),
            announced_attachments: vec![aid.clone()],
            service_type: ServiceType {
                name: "Gewerbeanmeldung".into(),
                identifier: format!("urn:de:fim:leika:leistung:{LEISTUNG}"),
            },
        })
        .await
        .unwrap();
    let sid = announced.submission_id.clone();
    let case = announced.case_id.clone();
    let enc = key("dest-a.pem").encryption_jwk();
    let pdf_jwe = jose::encrypt_compact(&pdf, &enc, false).unwrap();
    sender
        .upload_attachment(&sid, &aid, Bytes::from(pdf_jwe.clone()))
        .await
        .unwrap();
    let metadata = json!({
        "$schema": "https://schema.fitko.de/fit-connect/metadata/1.0.0/metadata.schema.json",
        "contentStructure": {
            "data": {
                "hash": {"type": "sha512", "content": hex::encode(Sha512::digest(&data))},
                "submissionSchema": {"schemaUri": "https://example.org/antrag.schema.json", "mimeType": "application/json"}
            },
            "attachments": [{
                "attachmentId": aid, "purpose": "attachment", "mimeType": "application/pdf",
                "filename": "nachweis.pdf",
                "hash": {"type": "sha512", "content": hex::encode(Sha512::digest(&pdf))}
            }]
        },
        "publicServiceType": {"identifier": format!("urn:de:fim:leika:leistung:{LEISTUNG}"), "name": "Gewerbeanmeldung"}
    });
    let meta_jwe = jose::encrypt_compact(metadata.to_string().as_bytes(), &enc, false).unwrap();
    let data_jwe = jose::encrypt_compact(&data, &enc, false).unwrap();
    sender
        .submit(&sid, &meta_jwe, Some(&data_jwe))
        .await
        .unwrap();

    // The Fachverfahren gets the decrypted data set and the attachment
    // byte-exact, as multipart.
    let got = rx.wait_accepted("/fv", 1, WAIT).await;
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
    assert_eq!(attachment.file_name(), Some("nachweis.pdf"));
    assert_eq!(
        attachment.content_type().map(|m| m.to_string()).as_deref(),
        Some("application/pdf")
    );
    assert_eq!(attachment.bytes().await.unwrap().as_ref(), pdf.as_slice());
    assert!(parts.next_field().await.unwrap().is_none());

    // The hub's message carries the FIT-Connect facts.
    let message_id = got[0].header("x-drehscheibe-message-id");
    let api = Api::new(hub.addr);
    let view = api.message(&message_id).await;
    let ids = &view["envelope"]["correlation_ids"];
    assert_eq!(ids["fitconnect.submission_id"], sid.as_str());
    assert_eq!(ids["fitconnect.case_id"], case.as_str());
    assert_eq!(ids["fitconnect.destination_id"], DEST);
    assert_eq!(
        view["envelope"]["sender"]["adapter"],
        "fit-connect-subscriber"
    );

    // The Zustelldienst ends with a valid accept-submission SET, signed
    // with the destination's registered key, carrying the JWE tags.
    let end = Instant::now() + WAIT;
    let accept = loop {
        let events = zd.events(&case);
        if let Some(e) = events.iter().find_map(|t| {
            set::verify_set(t, &[signing.verification_jwk()])
                .ok()
                .filter(|v| v.event == set::ACCEPT_SUBMISSION)
        }) {
            break e;
        }
        assert!(
            Instant::now() < end,
            "no accept-submission within {WAIT:?}: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(accept.submission_id.to_string(), sid);
    assert_eq!(accept.case_id.to_string(), case);
    assert_eq!(accept.issuer, DEST);
    assert_eq!(accept.header["kid"], SIGNING_KID);
    let tags = &accept.payload["authenticationTags"];
    assert_eq!(tags["metadata"], jose::jwe_auth_tag(&meta_jwe).unwrap());
    assert_eq!(tags["data"], jose::jwe_auth_tag(&data_jwe).unwrap());
    assert_eq!(
        tags["attachments"][&aid],
        jose::jwe_auth_tag(&pdf_jwe).unwrap()
    );
    assert_eq!(zd.submissions("accepted").len(), 1);
    // The three failed posts were retried, i.e. the hub polled (and saw
    // the submission still listed) while its SET was pending.
    let failed_posts = zd
        .state()
        .requests
        .iter()
        .filter(|r| r.starts_with("POST /v1/cases/"))
        .count();
    assert!(failed_posts >= 4, "SET posts: {failed_posts}");

    // A Zustelldienst that lists the submission again (e.g. a replica
    // lagging behind): the next polls must not route it a second time.
    zd.state().submissions.get_mut(&sid).unwrap().status = "submitted".into();
    let polls = list_polls(&zd);
    wait_polls(&zd, polls + 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rx.requests("/fv").len(),
        1,
        "a submission listed twice was routed twice"
    );

    hub.shutdown().await.unwrap();
}
