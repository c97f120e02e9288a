//! The FIT-Connect intake on a real loopback socket, driven over HTTP the
//! way a sender SDK does, against a recording `Intake`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use drehscheibe_fit_connect::api::JwkSet;
use drehscheibe_fit_connect::intake::{
    FitConnectIntake, FitConnectIntakeSettings, IntakeClient, IntakeDestination, IntakeService,
};
use drehscheibe_fit_connect::jose::{self, RsaPrivateKey, RsaPublicJwk};
use drehscheibe_fit_connect::set;
use drehscheibe_model::{
    Accepted, BlobError, BlobReader, BlobRef, BlobStore, Intake, IntakeError, MessageId,
    MessageState, MessageStatus, Submission,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha512};
use tokio::io::AsyncReadExt;
use uuid::Uuid;

const LEIKA: &str = "urn:de:fim:leika:leistung:99108008252000";

fn key(file: &str) -> RsaPrivateKey {
    let path = format!("{}/tests/fixtures/keys/{file}", env!("CARGO_MANIFEST_DIR"));
    RsaPrivateKey::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[derive(Default)]
struct MemBlobs(Mutex<HashMap<String, Vec<u8>>>);

#[async_trait]
impl BlobStore for MemBlobs {
    async fn put(&self, mut reader: BlobReader, limit: u64) -> Result<BlobRef, BlobError> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).await?;
        if bytes.len() as u64 > limit {
            return Err(BlobError::TooLarge { limit });
        }
        let sha256 = drehscheibe_model::sha256_hex(&bytes);
        let size = bytes.len() as u64;
        self.0.lock().unwrap().insert(sha256.clone(), bytes);
        Ok(BlobRef { sha256, size })
    }
    async fn open(&self, blob: &BlobRef) -> Result<BlobReader, BlobError> {
        let bytes = self.0.lock().unwrap().get(&blob.sha256).cloned();
        let bytes = bytes.ok_or_else(|| BlobError::NotFound(blob.sha256.clone()))?;
        Ok(Box::pin(std::io::Cursor::new(bytes)))
    }
    async fn contains(&self, blob: &BlobRef) -> Result<bool, BlobError> {
        Ok(self.0.lock().unwrap().contains_key(&blob.sha256))
    }
}

/// Records submissions; idempotent by key; status scripted per test.
#[derive(Default)]
struct Recorder {
    blobs: Arc<MemBlobs>,
    submitted: Mutex<Vec<(MessageId, Submission)>>,
    state: Mutex<Option<(MessageState, Option<String>)>>,
}

impl Recorder {
    fn submissions(&self) -> Vec<Submission> {
        self.submitted
            .lock()
            .unwrap()
            .iter()
            .map(|(_, s)| s.clone())
            .collect()
    }
    fn blob(&self, b: &BlobRef) -> Vec<u8> {
        self.blobs.0.lock().unwrap()[&b.sha256].clone()
    }
    fn set_state(&self, s: MessageState, reason: Option<&str>) {
        *self.state.lock().unwrap() = Some((s, reason.map(str::to_owned)));
    }
}

#[async_trait]
impl Intake for Recorder {
    async fn submit(&self, submission: Submission) -> Result<Accepted, IntakeError> {
        let mut all = self.submitted.lock().unwrap();
        if let Some((id, _)) = all.iter().find(|(_, s)| {
            s.idempotency_key.is_some() && s.idempotency_key == submission.idempotency_key
        }) {
            return Ok(Accepted {
                id: *id,
                duplicate: true,
            });
        }
        let id = MessageId::new();
        all.push((id, submission));
        Ok(Accepted {
            id,
            duplicate: false,
        })
    }
    async fn stage_attachment(&self, reader: BlobReader) -> Result<BlobRef, IntakeError> {
        self.blobs
            .put(reader, u64::MAX)
            .await
            .map_err(|e| IntakeError::Unavailable(e.to_string()))
    }
    fn max_payload_bytes(&self) -> u64 {
        1 << 20
    }
    fn max_attachment_bytes(&self) -> u64 {
        1 << 30
    }
    fn channel_exists(&self, channel: &str) -> bool {
        channel == "fit"
    }
    fn blobs(&self) -> Arc<dyn BlobStore> {
        self.blobs.clone()
    }
    async fn status(&self, id: MessageId) -> Result<Option<MessageStatus>, IntakeError> {
        let known = self.submitted.lock().unwrap().iter().any(|(m, _)| *m == id);
        if !known {
            return Ok(None);
        }
        let (state, reason) = self
            .state
            .lock()
            .unwrap()
            .clone()
            .unwrap_or((MessageState::Routed, None));
        Ok(Some(MessageStatus {
            id,
            state,
            reason,
            rule: None,
            deliveries: Vec::new(),
        }))
    }
}

struct Env {
    base: String,
    http: reqwest::Client,
    intake: FitConnectIntake,
    recorder: Arc<Recorder>,
    dest: Uuid,
    other_dest: Uuid,
    shutdown: tokio_util::sync::CancellationToken,
    store: Arc<dyn drehscheibe_store::Store>,
    _dir: tempfile::TempDir,
}

fn settings(dir: &Path, dest: Uuid, other: Uuid, max_attachment: u64) -> FitConnectIntakeSettings {
    FitConnectIntakeSettings {
        channel: "fit".into(),
        base_path: Some("/fc".into()),
        clients: vec![
            IntakeClient {
                client_id: "portal".into(),
                client_secret: "s3cret".into(),
                destinations: vec![dest],
            },
            IntakeClient {
                client_id: "neighbour".into(),
                client_secret: "other".into(),
                destinations: vec![other],
            },
        ],
        destinations: vec![
            IntakeDestination {
                id: dest,
                tenant: Some("musterstadt".into()),
                services: vec![IntakeService {
                    identifier: LEIKA.into(),
                    name: "Gewerbeanmeldung".into(),
                    submission_schemas: vec![(
                        "https://schema.example/gewerbe.json".into(),
                        "application/json".into(),
                    )],
                }],
                keys: vec![
                    key("dest-a.pem").with_kid("dest-key-2"),
                    key("dest-b.pem").with_kid("dest-key-1"),
                ],
                metadata_versions: vec![],
            },
            IntakeDestination {
                id: other,
                tenant: None,
                services: vec![],
                keys: vec![key("dest-b.pem")],
                metadata_versions: vec![],
            },
        ],
        signing_key: key("signing.pem").with_kid("hub-set-1"),
        token_ttl: Duration::from_secs(60),
        public_base_url: "http://hub.test/fc".into(),
        max_attachment_bytes: max_attachment,
        state_dir: dir.join("fit-connect"),
        poll_interval: Duration::from_millis(20),
    }
}

async fn serve(
    intake: &FitConnectIntake,
    shutdown: tokio_util::sync::CancellationToken,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = intake.router();
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .unwrap();
    });
    (addr, task)
}

/// The hub store of a test, under `dir/store`.
fn store_in(dir: &std::path::Path) -> Arc<dyn drehscheibe_store::Store> {
    drehscheibe_testkit::store_in(&dir.join("store"))
}

async fn env_with(max_attachment: u64) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let (dest, other) = (Uuid::new_v4(), Uuid::new_v4());
    let s = settings(dir.path(), dest, other, max_attachment);
    let recorder = Arc::new(Recorder::default());
    let store = store_in(dir.path());
    let intake = FitConnectIntake::open(s, recorder.clone(), store.clone()).unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (addr, _task) = serve(&intake, shutdown.clone()).await;
    Env {
        store,
        base: format!("http://{addr}/fc"),
        http: reqwest::Client::new(),
        intake,
        recorder,
        dest,
        other_dest: other,
        shutdown,
        _dir: dir,
    }
}

async fn env() -> Env {
    env_with(10 << 20).await
}

impl Env {
    async fn token(&self, id: &str, secret: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/token", self.base))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .unwrap()
    }

    async fn bearer(&self) -> String {
        let r = self.token("portal", "s3cret").await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], 60);
        assert_eq!(v["scope"], format!("send:destination:{}", self.dest));
        v["access_token"].as_str().unwrap().to_owned()
    }

    /// The published encryption key, the way a sender finds it.
    async fn encryption_key(&self, token: &str) -> RsaPublicJwk {
        let d: Value = self
            .http
            .get(format!("{}/v1/destinations/{}", self.base, self.dest))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(d["status"], "active");
        assert_eq!(d["services"][0]["identifier"], LEIKA);
        assert_eq!(d["metadataVersions"], json!(["1.0.0"]));
        let kid = d["encryptionKid"].as_str().unwrap();
        assert_eq!(kid, "dest-key-2");
        let jwk: Value = self
            .http
            .get(format!(
                "{}/v1/destinations/{}/keys/{kid}",
                self.base, self.dest
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(jwk["key_ops"], json!(["wrapKey"]));
        assert_eq!(jwk["alg"], "RSA-OAEP-256");
        assert!(jwk.get("d").is_none());
        let mut jwk = RsaPublicJwk::from_value(&jwk).unwrap();
        assert_eq!(jwk.bits(), 4096);
        jwk.kid = None; // senders put the thumbprint into the JWE kid
        jwk
    }

    async fn announce(&self, token: &str, attachments: &[Uuid]) -> (Uuid, Uuid) {
        let r = self
            .http
            .post(format!("{}/v1/submissions", self.base))
            .bearer_auth(token)
            .json(&json!({
                "destinationId": self.dest,
                "announcedAttachments": attachments,
                "serviceType": {"name": "", "identifier": LEIKA}
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["destinationId"], self.dest.to_string());
        (
            v["submissionId"].as_str().unwrap().parse().unwrap(),
            v["caseId"].as_str().unwrap().parse().unwrap(),
        )
    }

    async fn upload(&self, token: &str, sid: Uuid, aid: Uuid, jwe: String) -> reqwest::Response {
        self.http
            .put(format!(
                "{}/v1/submissions/{sid}/attachments/{aid}",
                self.base
            ))
            .bearer_auth(token)
            .header("content-type", "application/jose")
            .body(jwe)
            .send()
            .await
            .unwrap()
    }

    async fn submit(
        &self,
        token: &str,
        sid: Uuid,
        metadata: String,
        data: Option<String>,
    ) -> (u16, Value) {
        let r = self
            .http
            .put(format!("{}/v1/submissions/{sid}", self.base))
            .bearer_auth(token)
            .json(&json!({"encryptedMetadata": metadata, "encryptedData": data}))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn events(&self, token: &str, case: Uuid) -> Vec<String> {
        let v: Value = self
            .http
            .get(format!("{}/v1/cases/{case}/events", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["eventLog"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_owned())
            .collect()
    }

    async fn jwks(&self) -> Vec<RsaPublicJwk> {
        let set: JwkSet = self
            .http
            .get(format!("{}/.well-known/jwks.json", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        set.keys
    }
}

fn metadata(data: &[u8], attachments: &[(Uuid, &[u8])]) -> Value {
    json!({
        "$schema": "https://schema.fitko.de/fit-connect/metadata/1.0.0/metadata.schema.json",
        "contentStructure": {
            "data": {
                "hash": {"type": "sha512", "content": hex::encode(Sha512::digest(data))},
                "submissionSchema": {"schemaUri": "https://example.org/form.schema.json", "mimeType": "application/json"}
            },
            "attachments": attachments.iter().map(|(id, bytes)| json!({
                "attachmentId": id,
                "hash": {"type": "sha512", "content": hex::encode(Sha512::digest(bytes))},
                "purpose": "attachment",
                "mimeType": "application/pdf",
                "filename": "nachweis.pdf"
            })).collect::<Vec<_>>()
        },
        "publicServiceType": {"identifier": LEIKA}
    })
}

fn enc(bytes: &[u8], key: &RsaPublicJwk) -> String {
    jose::encrypt_compact(bytes, key, true).unwrap()
}

fn tamper_ciphertext(jwe: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
    let mut ct = b64.decode(&parts[3]).unwrap();
    ct[0] ^= 0x80;
    parts[3] = b64.encode(ct);
    parts.join(".")
}

#[tokio::test]
async fn a_submission_is_decrypted_checked_routed_and_accepted() {
    let env = env().await;
    let token = env.bearer().await;
    let jwk = env.encryption_key(&token).await;
    let data = br#"{"kommune":"09162000","leistung":"99108008252000","name":"Erika Mustermann"}"#;
    let pdf: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let aid = Uuid::new_v4();
    let (sid, case) = env.announce(&token, &[aid]).await;

    let att_jwe = enc(&pdf, &jwk);
    assert_eq!(
        env.upload(&token, sid, aid, att_jwe.clone()).await.status(),
        204
    );
    let meta_jwe = enc(metadata(data, &[(aid, &pdf)]).to_string().as_bytes(), &jwk);
    let data_jwe = enc(data, &jwk);
    let (status, body) = env
        .submit(&token, sid, meta_jwe.clone(), Some(data_jwe.clone()))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["caseId"], case.to_string());

    // the hub got the plaintext, byte-exact, with the FIT-Connect facts
    let subs = env.recorder.submissions();
    assert_eq!(subs.len(), 1);
    let s = &subs[0];
    assert_eq!(s.payload.as_ref(), data);
    assert_eq!(s.content_type, "application/json");
    assert_eq!(s.channel, "fit");
    assert_eq!(s.sender.adapter, "fit-connect");
    assert_eq!(s.sender.principal, "portal");
    assert_eq!(s.idempotency_key.as_deref(), Some(sid.to_string().as_str()));
    assert_eq!(
        s.correlation_ids["fitconnect.submission_id"],
        sid.to_string()
    );
    assert_eq!(s.correlation_ids["fitconnect.case_id"], case.to_string());
    assert_eq!(
        s.correlation_ids["fitconnect.destination_id"],
        env.dest.to_string()
    );
    assert_eq!(s.correlation_ids["fitconnect.leika"], LEIKA);
    assert_eq!(s.correlation_ids["fitconnect.tenant"], "musterstadt");
    assert_eq!(s.attachments.len(), 1);
    assert_eq!(s.attachments[0].content_type, "application/pdf");
    assert_eq!(s.attachments[0].filename.as_deref(), Some("nachweis.pdf"));
    assert_eq!(env.recorder.blob(&s.attachments[0].blob), pdf);
    // the encrypted upload is gone once handed over
    assert!(!env.intake.state().upload_dir(sid).exists());

    // submit-submission is in the log, signed by the hub
    let jwks = env.jwks().await;
    let events = env.events(&token, case).await;
    assert_eq!(events.len(), 1);
    let submitted = set::verify_set(&events[0], &jwks).unwrap();
    assert_eq!(submitted.event, set::SUBMIT_SUBMISSION);
    assert_eq!(submitted.issuer, "http://hub.test/fc");

    // not delivered yet: nothing happens
    assert_eq!(env.intake.follow_once().await.unwrap(), 0);
    env.recorder.set_state(MessageState::Delivered, None);
    assert_eq!(env.intake.follow_once().await.unwrap(), 1);
    let events = env.events(&token, case).await;
    assert_eq!(events.len(), 2);
    let accepted = set::verify_set(&events[1], &jwks).unwrap();
    assert_eq!(accepted.event, set::ACCEPT_SUBMISSION);
    assert_eq!(accepted.submission_id, sid);
    assert_eq!(accepted.case_id, case);
    assert_eq!(accepted.issuer, env.dest.to_string());
    assert_eq!(accepted.header["typ"], "secevent+jwt");
    assert_eq!(accepted.header["alg"], "PS512");
    let tags = &accepted.payload["authenticationTags"];
    assert_eq!(tags["metadata"], jose::jwe_auth_tag(&meta_jwe).unwrap());
    assert_eq!(tags["data"], jose::jwe_auth_tag(&data_jwe).unwrap());
    assert_eq!(
        tags["attachments"][aid.to_string()],
        jose::jwe_auth_tag(&att_jwe).unwrap()
    );
    // the destination publishes the SET key under the accept SET's kid
    let kid = accepted.header["kid"].as_str().unwrap();
    let r = env
        .http
        .get(format!(
            "{}/v1/destinations/{}/keys/{kid}",
            env.base, env.dest
        ))
        .send()
        .await
        .unwrap();
    let jwk: Value = r.json().await.unwrap();
    assert_eq!(jwk["key_ops"], json!(["verify"]));

    // status view; a replayed submit is refused and routes nothing twice
    let v: Value = env
        .http
        .get(format!("{}/v1/submissions/{sid}", env.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "accepted");
    let (status, body) = env.submit(&token, sid, meta_jwe, Some(data_jwe)).await;
    assert_eq!(status, 409);
    assert_eq!(
        body["type"],
        "https://schema.fitko.de/fit-connect/submission-api/problems/submission-state-invalid"
    );
    assert_eq!(env.recorder.submissions().len(), 1);
    // the follower does not touch closed cases again
    assert_eq!(env.intake.follow_once().await.unwrap(), 0);
    env.shutdown.cancel();
}

#[tokio::test]
async fn authentication_and_authorization_are_enforced() {
    let env = env().await;
    // wrong secret, unknown client, wrong grant
    let r = env.token("portal", "wrong").await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    assert_eq!(env.token("nobody", "s3cret").await.status(), 401);
    let r = env
        .http
        .post(format!("{}/token", env.base))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "portal"),
            ("client_secret", "s3cret"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // HTTP Basic works too
    let r = env
        .http
        .post(format!("{}/token", env.base))
        .basic_auth("portal", Some("s3cret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // no token / bogus token
    let r = env
        .http
        .post(format!("{}/v1/submissions", env.base))
        .json(&json!({"destinationId": env.dest}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = env
        .http
        .get(format!("{}/v1/destinations/{}", env.base, env.dest))
        .bearer_auth("forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // a foreign destination: exists, but not for this client
    let token = env.bearer().await;
    let r = env
        .http
        .post(format!("{}/v1/submissions", env.base))
        .bearer_auth(&token)
        .json(&json!({"destinationId": env.other_dest, "announcedAttachments": [], "serviceType": {"identifier": LEIKA}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = env
        .http
        .post(format!("{}/v1/submissions", env.base))
        .bearer_auth(&token)
        .json(&json!({"destinationId": Uuid::new_v4(), "serviceType": {"identifier": LEIKA}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["type"],
        "https://schema.fitko.de/fit-connect/submission-api/problems/destination-not-found"
    );
    // a service the destination does not offer
    let r = env
        .http
        .post(format!("{}/v1/submissions", env.base))
        .bearer_auth(&token)
        .json(&json!({"destinationId": env.dest, "serviceType": {"identifier": "urn:de:fim:leika:leistung:99000000000000"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    // the neighbour client cannot see or submit this client's submission
    let (sid, case) = env.announce(&token, &[]).await;
    let r = env.token("neighbour", "other").await;
    let other: Value = r.json().await.unwrap();
    let other = other["access_token"].as_str().unwrap();
    let (status, _) = env.submit(other, sid, "a.b.c.d.e".into(), None).await;
    assert_eq!(status, 403);
    let r = env
        .http
        .get(format!("{}/v1/cases/{case}/events", env.base))
        .bearer_auth(other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // unknown submission and case ids
    let (status, body) = env
        .submit(&token, Uuid::new_v4(), "a.b.c.d.e".into(), None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        body["type"],
        "https://schema.fitko.de/fit-connect/submission-api/problems/submission-not-found"
    );
    let (status, _) = env.submit(&token, Uuid::nil(), "x".into(), None).await;
    assert_eq!(status, 404);
    let r = env
        .http
        .get(format!("{}/v1/cases/{}/events", env.base, Uuid::new_v4()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(env.recorder.submissions().is_empty());
}

#[tokio::test]
async fn attachments_must_be_announced_uploaded_and_sane() {
    let env = env_with(64 * 1024).await;
    let token = env.bearer().await;
    let jwk = env.encryption_key(&token).await;
    let data = br#"{"kommune":"09162000"}"#;
    let (a1, a2) = (Uuid::new_v4(), Uuid::new_v4());
    let (sid, case) = env.announce(&token, &[a1, a2]).await;
    let meta = |atts: &[(Uuid, &[u8])]| enc(metadata(data, atts).to_string().as_bytes(), &jwk);

    // submit before the announced attachments are uploaded: 422, and the
    // submission stays open (no reject-submission; config/README.md,
    // issue 10 defect 4) so the sender can upload the rest and submit again
    let (status, body) = env
        .submit(
            &token,
            sid,
            meta(&[(a1, b"one"), (a2, b"two")]),
            Some(enc(data, &jwk)),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        body["type"],
        "https://schema.fitko.de/fit-connect/submission-api/problems/missing-attachments"
    );
    assert!(body["detail"].as_str().unwrap().contains(&a1.to_string()));
    assert!(
        env.events(&token, case).await.is_empty(),
        "no event: the submission is still open"
    );

    // an attachment id that was not announced
    let r = env
        .upload(&token, sid, Uuid::new_v4(), enc(b"x", &jwk))
        .await;
    assert_eq!(r.status(), 404);
    // wrong media type
    let r = env
        .http
        .put(format!(
            "{}/v1/submissions/{sid}/attachments/{a1}",
            env.base
        ))
        .bearer_auth(&token)
        .header("content-type", "application/pdf")
        .body(enc(b"x", &jwk))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // alg none / garbage refused at upload
    let mut parts: Vec<String> = enc(b"one", &jwk).split('.').map(str::to_owned).collect();
    use base64::Engine;
    parts[0] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"alg":"none","enc":"A256GCM"}"#);
    let r = env.upload(&token, sid, a1, parts.join(".")).await;
    assert_eq!(r.status(), 400);
    let r = env.upload(&token, sid, a1, "garbage".into()).await;
    assert_eq!(r.status(), 400);
    // oversize (limit 64 KiB, streamed: no content-length trust needed)
    let big: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let r = env
        .upload(
            &token,
            sid,
            a1,
            jose::encrypt_compact(&big, &jwk, false).unwrap(),
        )
        .await;
    assert_eq!(r.status(), 413);

    // now the real uploads; a re-upload replaces the first
    assert_eq!(
        env.upload(&token, sid, a1, enc(b"wrong", &jwk))
            .await
            .status(),
        204
    );
    assert_eq!(
        env.upload(&token, sid, a1, enc(b"one", &jwk))
            .await
            .status(),
        204
    );
    assert_eq!(
        env.upload(&token, sid, a2, enc(b"two", &jwk))
            .await
            .status(),
        204
    );
    let (status, body) = env
        .submit(
            &token,
            sid,
            meta(&[(a1, b"one"), (a2, b"two")]),
            Some(enc(data, &jwk)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let s = &env.recorder.submissions()[0];
    let mut got: Vec<Vec<u8>> = s
        .attachments
        .iter()
        .map(|a| env.recorder.blob(&a.blob))
        .collect();
    got.sort();
    assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
    // uploads after submit are refused
    assert_eq!(
        env.upload(&token, sid, a1, enc(b"one", &jwk))
            .await
            .status(),
        409
    );
}

/// Submit one bad submission; expect the problem kind and a
/// `reject-submission` event, and nothing routed.
async fn expect_rejected(
    env: &Env,
    token: &str,
    meta: String,
    data: Option<String>,
    kind: &str,
    atts: &[(Uuid, String)],
) {
    let ids: Vec<Uuid> = atts.iter().map(|(id, _)| *id).collect();
    let (sid, case) = env.announce(token, &ids).await;
    for (id, jwe) in atts {
        assert_eq!(env.upload(token, sid, *id, jwe.clone()).await.status(), 204);
    }
    let (status, body) = env.submit(token, sid, meta, data).await;
    assert!((400..500).contains(&status), "{kind}: {status} {body}");
    assert_eq!(
        body["type"],
        format!("https://schema.fitko.de/fit-connect/submission-api/problems/{kind}"),
        "{body}"
    );
    let events = env.events(token, case).await;
    assert_eq!(events.len(), 1, "{kind}");
    let rejected = set::verify_set(&events[0], &env.jwks().await).unwrap();
    assert_eq!(rejected.event, set::REJECT_SUBMISSION);
    assert_eq!(
        rejected.payload["problems"][0]["type"],
        format!("{}{kind}", set::EVENT_PROBLEM_BASE)
    );
    assert!(
        !env.intake.state().upload_dir(sid).exists(),
        "uploads are removed"
    );
    // a rejected submission stays rejected
    let (status, _) = env.submit(token, sid, "a.b.c.d.e".into(), None).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn hostile_submissions_are_rejected_precisely() {
    let env = env().await;
    let token = env.bearer().await;
    let jwk = env.encryption_key(&token).await;
    let data = br#"{"kommune":"09162000"}"#;
    let good_meta = enc(metadata(data, &[]).to_string().as_bytes(), &jwk);

    // tampered data ciphertext
    expect_rejected(
        &env,
        &token,
        good_meta.clone(),
        Some(tamper_ciphertext(&enc(data, &jwk))),
        "decryption-failed",
        &[],
    )
    .await;
    // data encrypted for a key the destination does not have
    let foreign = key("signing.pem").encryption_jwk();
    expect_rejected(
        &env,
        &token,
        good_meta.clone(),
        Some(enc(data, &foreign)),
        "decryption-failed",
        &[],
    )
    .await;
    // truncated JWE
    let d = enc(data, &jwk);
    expect_rejected(
        &env,
        &token,
        good_meta.clone(),
        Some(d[..d.len() / 2].to_owned()),
        "invalid-jwe",
        &[],
    )
    .await;
    // hash mismatch of the data
    expect_rejected(
        &env,
        &token,
        good_meta.clone(),
        Some(enc(br#"{"kommune":"00000000"}"#, &jwk)),
        "hash-mismatch",
        &[],
    )
    .await;
    // hash mismatch of an attachment
    let aid = Uuid::new_v4();
    let meta = enc(
        metadata(data, &[(aid, b"declared")]).to_string().as_bytes(),
        &jwk,
    );
    expect_rejected(
        &env,
        &token,
        meta,
        Some(enc(data, &jwk)),
        "hash-mismatch",
        &[(aid, enc(b"actual", &jwk))],
    )
    .await;
    // tampered attachment
    let aid = Uuid::new_v4();
    let meta = enc(
        metadata(data, &[(aid, b"declared")]).to_string().as_bytes(),
        &jwk,
    );
    expect_rejected(
        &env,
        &token,
        meta,
        Some(enc(data, &jwk)),
        "decryption-failed",
        &[(aid, tamper_ciphertext(&enc(b"declared", &jwk)))],
    )
    .await;
    // metadata violating the schema (data without hash: the fitconnect-client 0.1.3 defect)
    let mut m = metadata(data, &[]);
    m["contentStructure"]["data"]
        .as_object_mut()
        .unwrap()
        .remove("hash");
    expect_rejected(
        &env,
        &token,
        enc(m.to_string().as_bytes(), &jwk),
        Some(enc(data, &jwk)),
        "schema-violation",
        &[],
    )
    .await;
    // metadata that is not JSON
    expect_rejected(
        &env,
        &token,
        enc(b"<xml/>", &jwk),
        Some(enc(data, &jwk)),
        "schema-violation",
        &[],
    )
    .await;
    // no encryptedData (the fitconnect-client 0.1.3 defect)
    expect_rejected(&env, &token, good_meta.clone(), None, "missing-data", &[]).await;
    // metadata describing an attachment that was never announced
    let meta = enc(
        metadata(data, &[(Uuid::new_v4(), b"x")])
            .to_string()
            .as_bytes(),
        &jwk,
    );
    expect_rejected(
        &env,
        &token,
        meta,
        Some(enc(data, &jwk)),
        "attachment-mismatch",
        &[],
    )
    .await;

    assert!(
        env.recorder.submissions().is_empty(),
        "nothing half-delivered"
    );
}

#[tokio::test]
async fn rotated_keys_still_decrypt_and_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (dest, other) = (Uuid::new_v4(), Uuid::new_v4());
    let recorder = Arc::new(Recorder::default());
    let data = br#"{"kommune":"09162000"}"#;
    let old_key = key("dest-b.pem").encryption_jwk(); // the second (rotated-out) key
    let (sid, case);
    {
        let store = store_in(dir.path());
        let intake = FitConnectIntake::open(
            settings(dir.path(), dest, other, 1 << 20),
            recorder.clone(),
            store.clone(),
        )
        .unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let (addr, task) = serve(&intake, shutdown.clone()).await;
        let env = Env {
            store,
            base: format!("http://{addr}/fc"),
            http: reqwest::Client::new(),
            intake: intake.clone(),
            recorder: recorder.clone(),
            dest,
            other_dest: other,
            shutdown: shutdown.clone(),
            _dir: tempfile::tempdir().unwrap(),
        };
        let token = env.bearer().await;
        (sid, case) = env.announce(&token, &[]).await;
        let meta = enc(metadata(data, &[]).to_string().as_bytes(), &old_key);
        let (status, body) = env
            .submit(&token, sid, meta, Some(enc(data, &old_key)))
            .await;
        assert_eq!(status, 200, "{body}");
        shutdown.cancel();
        drop(env);
        drop(intake);
        task.await.unwrap();
    }
    // "restart": a new intake on the same store and state directory
    let intake = FitConnectIntake::open(
        settings(dir.path(), dest, other, 1 << 20),
        recorder.clone(),
        store_in(dir.path()),
    )
    .unwrap();
    assert_eq!(intake.state().open_cases().await.unwrap().len(), 1);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let follower = tokio::spawn(intake.clone().run_status_follower(shutdown.clone()));
    recorder.set_state(
        MessageState::Dead,
        Some("connector fv: 503 after 5 attempts"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !intake.state().open_cases().await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "follower did not close the case"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    follower.await.unwrap();
    let (events, total) = intake.state().events(case, 0, 500).await.unwrap();
    assert_eq!(total, 2);
    let jwks = intake.jwks().keys;
    assert_eq!(
        set::verify_set(&events[0], &jwks).unwrap().event,
        set::SUBMIT_SUBMISSION
    );
    let rejected = set::verify_set(&events[1], &jwks).unwrap();
    assert_eq!(rejected.event, set::REJECT_SUBMISSION);
    let record = intake.state().get(sid).await.unwrap().unwrap();
    let message = record.message_id.clone().unwrap();
    // the sender learns the outcome and a reference, not the hub's reason
    let detail = rejected.payload["problems"][0]["detail"].as_str().unwrap();
    assert_eq!(
        detail,
        set::NotDelivered::Dead.sender_detail(&message),
        "{detail}"
    );
    assert!(!detail.contains("503"), "{detail}");
    assert_eq!(record.problem.as_deref(), Some(detail));
    // which the hub keeps
    assert_eq!(
        record.reason.as_deref(),
        Some("connector fv: 503 after 5 attempts")
    );
}

#[tokio::test]
async fn settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let store = store_in(dir.path());
    let mut s = settings(dir.path(), Uuid::new_v4(), Uuid::new_v4(), 1 << 20);
    s.max_attachment_bytes = 600_000_000;
    assert!(FitConnectIntake::open(s, recorder.clone(), store.clone()).is_err());
    let mut s = settings(dir.path(), Uuid::new_v4(), Uuid::new_v4(), 1 << 20);
    s.channel = "unknown".into();
    assert!(FitConnectIntake::open(s, recorder.clone(), store.clone()).is_err());
    let mut s = settings(dir.path(), Uuid::new_v4(), Uuid::new_v4(), 1 << 20);
    s.clients[0].destinations.push(Uuid::new_v4());
    let err = FitConnectIntake::open(s, recorder.clone(), store.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown destination"), "{err}");
    let mut s = settings(dir.path(), Uuid::new_v4(), Uuid::new_v4(), 1 << 20);
    s.destinations[0].keys.clear();
    assert!(FitConnectIntake::open(s, recorder, store).is_err());
}

#[tokio::test]
async fn incomplete_submissions_expire_and_their_uploads_are_released() {
    let env = env().await;
    let token = env.bearer().await;
    let jwk = env.encryption_key(&token).await;
    let aid = Uuid::new_v4();
    let (stale, stale_case) = env.announce(&token, &[aid]).await;
    let half = enc(b"half", &jwk);
    let sha = drehscheibe_model::sha256_hex(half.as_bytes());
    assert_eq!(
        env.upload(&token, stale, aid, half.clone()).await.status(),
        204
    );
    // In the blob store, held by the submission's record; not on disk.
    assert_eq!(
        env.recorder.blob(&BlobRef {
            sha256: sha.clone(),
            size: half.len() as u64
        }),
        half.as_bytes()
    );
    assert_eq!(env.store.blob_references(&sha).await.unwrap(), 1);
    assert!(!env.intake.state().upload_dir(stale).exists());
    // Uploading it again replaces it: still one reference.
    assert_eq!(
        env.upload(&token, stale, aid, half.clone()).await.status(),
        204
    );
    assert_eq!(env.store.blob_references(&sha).await.unwrap(), 1);
    assert!(env.store.unreferenced_blobs(10).await.unwrap().is_empty());
    // a submitted one is not touched
    let data = br#"{"kommune":"09162000"}"#;
    let (done, _) = env.announce(&token, &[]).await;
    let meta = enc(metadata(data, &[]).to_string().as_bytes(), &jwk);
    assert_eq!(
        env.submit(&token, done, meta, Some(enc(data, &jwk)))
            .await
            .0,
        200
    );

    // nothing is older than a day
    let day = drehscheibe_fit_connect::intake::INCOMPLETE_TTL;
    assert_eq!(env.intake.expire_incomplete(day).await.unwrap(), 0);
    assert_eq!(
        env.intake.expire_incomplete(Duration::ZERO).await.unwrap(),
        1
    );
    // Released: retention's to collect now.
    assert_eq!(env.store.blob_references(&sha).await.unwrap(), 0);
    assert_eq!(
        env.store.unreferenced_blobs(10).await.unwrap(),
        std::slice::from_ref(&sha)
    );
    let events = env.events(&token, stale_case).await;
    let rejected = set::verify_set(&events[0], &env.jwks().await).unwrap();
    assert_eq!(rejected.event, set::REJECT_SUBMISSION);
    assert_eq!(
        rejected.payload["problems"][0]["type"],
        format!("{}submission-expired", set::EVENT_PROBLEM_BASE)
    );
    assert_eq!(
        env.upload(&token, stale, aid, enc(b"late", &jwk))
            .await
            .status(),
        409
    );
    assert_eq!(
        env.intake.expire_incomplete(Duration::ZERO).await.unwrap(),
        0
    );
}

/// Where [`flip_ciphertext_byte`] damages a ciphertext.
#[derive(Debug, Clone, Copy)]
enum Damage {
    First,
    Middle,
    Last,
}

/// Flip one bit of the first, a middle or the last byte of a JWE's
/// ciphertext segment (the fourth), leaving everything else intact.
fn flip_ciphertext_byte(jwe: &str, at: Damage) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
    let mut ct = b64.decode(&parts[3]).unwrap();
    let i = match at {
        Damage::First => 0,
        Damage::Middle => ct.len() / 2,
        Damage::Last => ct.len() - 1,
    };
    ct[i] ^= 0x01;
    parts[3] = b64.encode(ct);
    parts.join(".")
}

/// Regression: a compressed (`zip: DEF`) JWE was inflated before its
/// authentication tag was checked, so damage at the start or the end of
/// the ciphertext surfaced as an inflate error (`503`, no
/// `reject-submission`) while damage in the middle was a `422`. Now the tag
/// is verified first: every position of the damage, in metadata, data and
/// attachment alike, is the same `decryption-failed` problem and rejects
/// the submission for good.
#[tokio::test]
async fn damaged_compressed_ciphertext_is_rejected_the_same_wherever_the_damage_is() {
    let env = env().await;
    let token = env.bearer().await;
    let jwk = env.encryption_key(&token).await;
    let data = br#"{"kommune":"09162000","leistung":"99108008252000"}"#;
    // Several 48 KiB chunks of ciphertext even after compression: the
    // attachment is decrypted streamed.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let pdf: Vec<u8> = (0..600_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 16) as u8 // half compressible
        })
        .collect();
    for at in [Damage::First, Damage::Middle, Damage::Last] {
        // damaged metadata
        expect_rejected(
            &env,
            &token,
            flip_ciphertext_byte(&enc(metadata(data, &[]).to_string().as_bytes(), &jwk), at),
            Some(enc(data, &jwk)),
            "decryption-failed",
            &[],
        )
        .await;
        // damaged Fachdaten
        expect_rejected(
            &env,
            &token,
            enc(metadata(data, &[]).to_string().as_bytes(), &jwk),
            Some(flip_ciphertext_byte(&enc(data, &jwk), at)),
            "decryption-failed",
            &[],
        )
        .await;
        // damaged attachment
        let aid = Uuid::new_v4();
        let att = enc(&pdf, &jwk);
        assert!(
            att.split('.').nth(3).unwrap().len() > 3 * 65536,
            "the attachment spans several decryption chunks"
        );
        expect_rejected(
            &env,
            &token,
            enc(metadata(data, &[(aid, &pdf)]).to_string().as_bytes(), &jwk),
            Some(enc(data, &jwk)),
            "decryption-failed",
            &[(aid, flip_ciphertext_byte(&att, at))],
        )
        .await;
    }
    assert!(
        env.recorder.submissions().is_empty(),
        "nothing damaged reaches the hub"
    );
    env.shutdown.cancel();
}

/// What a hub message record may say about a rejection: the hub's
/// configuration (a Kommune key without a tenant), an internal URL and a
/// connect error. None of it is for the sender.
const INTERNAL_REASON: &str = "no Kommune is configured for key \"09999999\" (extracted by rule kommune-aus-antrag); \
    last delivery to http://127.0.0.1:47113/xta/xta-ws failed: error sending request: connection refused";

/// Regression: the `reject-submission` of a rejected or dead message
/// carried the hub's own reason — its configuration, internal URLs,
/// connect errors. The sender now gets a fixed detail per outcome and the
/// hub message id as a reference; the full reason stays with the hub.
#[tokio::test]
async fn a_rejection_tells_the_sender_the_outcome_and_a_reference_but_no_hub_internals() {
    for (state, expected) in [
        (
            MessageState::Rejected,
            "the submission was not accepted by the receiving administration's rules",
        ),
        (
            MessageState::Dead,
            "the submission could not be delivered to the responsible authority",
        ),
    ] {
        let env = env().await;
        let token = env.bearer().await;
        let jwk = env.encryption_key(&token).await;
        let data = br#"{"kommune":"09999999"}"#;
        let (sid, case) = env.announce(&token, &[]).await;
        let meta = enc(metadata(data, &[]).to_string().as_bytes(), &jwk);
        let (status, body) = env.submit(&token, sid, meta, Some(enc(data, &jwk))).await;
        assert_eq!(status, 200, "{body}");
        let message = env.recorder.submitted.lock().unwrap()[0].0.to_string();

        env.recorder.set_state(state, Some(INTERNAL_REASON));
        assert_eq!(env.intake.follow_once().await.unwrap(), 1);

        let events = env.events(&token, case).await;
        let rejected = set::verify_set(&events[1], &env.jwks().await).unwrap();
        assert_eq!(rejected.event, set::REJECT_SUBMISSION);
        let detail = rejected.payload["problems"][0]["detail"]
            .as_str()
            .unwrap()
            .to_owned();
        // the sender's status view says the same
        let view: Value = env
            .http
            .get(format!("{}/v1/submissions/{sid}", env.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(view["status"], "rejected");
        for told in [detail.as_str(), view["problem"].as_str().unwrap()] {
            assert!(told.starts_with(expected), "{state}: {told}");
            assert!(
                told.contains(&message),
                "{state}: reference missing: {told}"
            );
            for internal in [
                "Kommune",
                "09999999",
                "http://",
                "127.0.0.1",
                "xta-ws",
                "refused",
            ] {
                assert!(
                    !told.contains(internal),
                    "{state}: {internal:?} leaked: {told}"
                );
            }
        }
        // the hub keeps the full reason
        let record = env.intake.state().get(sid).await.unwrap().unwrap();
        assert_eq!(record.reason.as_deref(), Some(INTERNAL_REASON));
        env.shutdown.cancel();
    }
}

/// Two instances of the hub on one store: a sender's token, upload and
/// submit may each reach another one (a load balancer in front).
#[tokio::test]
async fn a_submission_uploaded_through_one_instance_is_submitted_through_another() {
    let env = env().await;
    let other_dir = tempfile::tempdir().unwrap();
    let other = FitConnectIntake::open(
        settings(other_dir.path(), env.dest, env.other_dest, 10 << 20),
        env.recorder.clone(),
        env.store.clone(),
    )
    .unwrap();
    let (other_addr, _task) = serve(&other, env.shutdown.clone()).await;
    let b = Env {
        base: format!("http://{other_addr}/fc"),
        http: reqwest::Client::new(),
        intake: other,
        recorder: env.recorder.clone(),
        dest: env.dest,
        other_dest: env.other_dest,
        shutdown: env.shutdown.clone(),
        store: env.store.clone(),
        _dir: other_dir,
    };

    // Token from a, everything else alternating.
    let token = env.bearer().await;
    let jwk = b.encryption_key(&token).await;
    let (a1, a2) = (Uuid::new_v4(), Uuid::new_v4());
    let (sid, case) = b.announce(&token, &[a1, a2]).await;
    let pdf1 = b"%PDF-1.7 first".to_vec();
    let pdf2 = vec![7u8; 300_000];
    assert_eq!(
        env.upload(&token, sid, a1, enc(&pdf1, &jwk)).await.status(),
        204
    );
    assert_eq!(
        b.upload(&token, sid, a2, enc(&pdf2, &jwk)).await.status(),
        204
    );
    let data = br#"{"kommune":"09162000"}"#;
    let meta = metadata(data, &[(a1, &pdf1), (a2, &pdf2)]);
    let meta = enc(meta.to_string().as_bytes(), &jwk);
    let (status, body) = env.submit(&token, sid, meta, Some(enc(data, &jwk))).await;
    assert_eq!(status, 200, "{body}");
    let submitted = env.recorder.submissions();
    assert_eq!(submitted.len(), 1);
    let got: Vec<Vec<u8>> = submitted[0]
        .attachments
        .iter()
        .map(|a| env.recorder.blob(&a.blob))
        .collect();
    assert_eq!(got, [pdf1, pdf2]);
    // b answers for the case a took in.
    let events = b.events(&token, case).await;
    let first = set::verify_set(&events[0], &b.jwks().await).unwrap();
    assert_eq!(first.event, set::SUBMIT_SUBMISSION);
    // The encrypted uploads are no longer held by anything.
    let released = env.store.unreferenced_blobs(10).await.unwrap();
    assert_eq!(released.len(), 2, "{released:?}");
}
