//! The inbox over real sockets, against a recording `Intake` double.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{pseudo_random, serve, RecordingIntake};
use drehscheibe_http::{inbox_router, AcceptedBody};
use drehscheibe_model::auth::{Principal, Role, TokenTable};
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MAX_PAYLOAD: u64 = 64 * 1024;
const MAX_ATTACHMENT: u64 = 512 * 1024;
const XML: &[u8] = b"<?xml version=\"1.0\"?><antrag><ags>15003000</ags></antrag>";

struct Hub {
    base: String,
    addr: std::net::SocketAddr,
    intake: Arc<RecordingIntake>,
    _dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl Hub {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let intake = Arc::new(RecordingIntake::new(
            &dir.path().join("blobs"),
            MAX_PAYLOAD,
            MAX_ATTACHMENT,
        ));
        let mut tokens = TokenTable::new();
        tokens.insert(
            "portal-token",
            Principal {
                name: "onlinedienst".into(),
                role: Role::Sender {
                    channels: vec!["portal".into(), "closed".into()],
                },
            },
        );
        tokens.insert(
            "operator-token",
            Principal {
                name: "betrieb".into(),
                role: Role::Operator,
            },
        );
        let addr = serve(inbox_router(intake.clone(), Arc::new(tokens))).await;
        Self {
            base: format!("http://{addr}"),
            addr,
            intake,
            _dir: dir,
            client: reqwest::Client::new(),
        }
    }

    fn post(&self, channel: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/api/v1/inbox/{channel}", self.base))
            .bearer_auth("portal-token")
    }
}

/// Assert a problem+json answer and return its document.
async fn problem(response: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let path = response.url().path().to_owned();
    let doc: Value = response.json().await.unwrap();
    assert_eq!(
        doc["type"],
        format!("https://drehscheibe.dev/problems/{kind}"),
        "{doc}"
    );
    assert_eq!(doc["status"], status);
    assert!(
        doc["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{doc}"
    );
    assert!(
        doc["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "{doc}"
    );
    assert_eq!(doc["instance"], path);
    doc
}

async fn accepted(response: reqwest::Response) -> AcceptedBody {
    assert_eq!(response.status().as_u16(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: AcceptedBody = response.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/messages/{}", body.id));
    assert_eq!(body.status_url, location);
    body
}

#[tokio::test]
async fn xml_payload_is_accepted_with_headers_passed_through() {
    let hub = Hub::start().await;
    let response = hub
        .post("portal")
        .header("content-type", "application/xml")
        .header("idempotency-key", "antrag-4711")
        .header("x-correlation-id", "corr-1")
        .header("x-request-id", "req-9")
        .body(XML)
        .send()
        .await
        .unwrap();
    let body = accepted(response).await;
    assert!(!body.duplicate);
    assert!(body.id.parse::<drehscheibe_model::MessageId>().is_ok());

    let recorded = hub.intake.recorded();
    assert_eq!(recorded.len(), 1);
    let s = &recorded[0];
    assert_eq!(s.channel, "portal");
    assert_eq!(&s.payload[..], XML);
    assert_eq!(s.content_type, "application/xml");
    assert!(s.attachments.is_empty());
    assert_eq!(s.idempotency_key.as_deref(), Some("antrag-4711"));
    assert_eq!(s.correlation_ids["x-correlation-id"], "corr-1");
    assert_eq!(s.correlation_ids["x-request-id"], "req-9");
    assert_eq!(s.sender.adapter, "http");
    assert_eq!(s.sender.principal, "onlinedienst");
    let remote = s.sender.remote_addr.as_deref().unwrap();
    assert!(remote.starts_with("127.0.0.1:"), "{remote}");
    assert_ne!(remote, hub.addr.to_string());
}

#[tokio::test]
async fn json_payload_is_accepted_with_its_parameters() {
    let hub = Hub::start().await;
    let json = br#"{"ags":"15003000","leistung":"99050012104000"}"#;
    let response = hub
        .post("portal")
        .header("content-type", "Application/Vnd.Antrag+JSON; charset=utf-8")
        .body(&json[..])
        .send()
        .await
        .unwrap();
    accepted(response).await;
    let s = &hub.intake.recorded()[0];
    assert_eq!(&s.payload[..], json);
    assert_eq!(s.content_type, "application/vnd.antrag+json; charset=utf-8");
    assert!(s.idempotency_key.is_none());
    assert!(s.correlation_ids.is_empty());
}

#[tokio::test]
async fn multipart_attachments_are_staged_byte_exact() {
    let hub = Hub::start().await;
    let scan = pseudo_random(300_000, 7);
    let note = b"Bitte beachten: Anlage 2 ist ein Nachtrag.\n".to_vec();
    let form = Form::new()
        .part(
            "antrag",
            Part::bytes(XML.to_vec()).mime_str("text/xml").unwrap(),
        )
        .part(
            "ausweis",
            Part::bytes(scan.clone())
                .file_name("ausweis.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        )
        .part("notiz", Part::bytes(note.clone()).file_name("notiz.txt"));
    let response = hub.post("portal").multipart(form).send().await.unwrap();
    accepted(response).await;

    let s = &hub.intake.recorded()[0];
    assert_eq!(&s.payload[..], XML);
    assert_eq!(s.content_type, "text/xml");
    assert_eq!(s.attachments.len(), 2);
    let (a, b) = (&s.attachments[0], &s.attachments[1]);
    assert_eq!(a.name, "ausweis");
    assert_eq!(a.filename.as_deref(), Some("ausweis.pdf"));
    assert_eq!(a.content_type, "application/pdf");
    assert_eq!(a.blob.size, scan.len() as u64);
    assert_eq!(
        std::fs::read(hub.intake.blobs.path_of(&a.blob)).unwrap(),
        scan
    );
    assert_eq!(b.name, "notiz");
    assert_eq!(b.filename.as_deref(), Some("notiz.txt"));
    assert_eq!(b.content_type, "application/octet-stream");
    assert_eq!(
        std::fs::read(hub.intake.blobs.path_of(&b.blob)).unwrap(),
        note
    );
}

#[tokio::test]
async fn multipart_mixed_is_accepted() {
    let hub = Hub::start().await;
    let body = b"--xyz\r\nContent-Type: application/json\r\n\r\n{\"a\":1}\r\n\
--xyz\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\n\r\n--xyz--\r\n";
    let response = hub
        .post("portal")
        .header("content-type", "multipart/mixed; boundary=xyz")
        .body(&body[..])
        .send()
        .await
        .unwrap();
    accepted(response).await;
    let s = &hub.intake.recorded()[0];
    assert_eq!(&s.payload[..], b"{\"a\":1}");
    assert_eq!(s.attachments.len(), 1);
    let a = &s.attachments[0];
    assert_eq!(a.name, "attachment-1");
    assert_eq!(a.content_type, "image/png");
    assert_eq!(
        std::fs::read(hub.intake.blobs.path_of(&a.blob)).unwrap(),
        b"\x89PNG\r\n\x1a\n"
    );
}

#[tokio::test]
async fn missing_or_unknown_token_is_401_with_challenge() {
    let hub = Hub::start().await;
    let url = format!("{}/api/v1/inbox/portal", hub.base);
    let cases = [
        None,
        Some("Bearer wrong-token"),
        Some("Basic cG9ydGFsOnRva2Vu"),
        Some("Bearer "),
    ];
    for auth in cases {
        let mut request = hub
            .client
            .post(&url)
            .header("content-type", "application/xml")
            .body(XML);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        problem(response, 401, "unauthorized").await;
    }
    assert!(hub.intake.recorded().is_empty());
}

#[tokio::test]
async fn sender_outside_its_channels_is_403_and_unknown_channel_404() {
    let hub = Hub::start().await;
    // "gewerbe" exists, but the portal token may not submit there.
    let response = hub
        .post("gewerbe")
        .header("content-type", "application/xml")
        .body(XML)
        .send()
        .await
        .unwrap();
    problem(response, 403, "forbidden").await;

    let response = hub
        .client
        .post(format!("{}/api/v1/inbox/nirgendwo", hub.base))
        .bearer_auth("operator-token")
        .header("content-type", "application/xml")
        .body(XML)
        .send()
        .await
        .unwrap();
    let doc = problem(response, 404, "unknown-channel").await;
    assert!(doc["detail"].as_str().unwrap().contains("nirgendwo"));

    // The operator may submit anywhere.
    let response = hub
        .client
        .post(format!("{}/api/v1/inbox/gewerbe", hub.base))
        .bearer_auth("operator-token")
        .header("content-type", "application/xml")
        .body(XML)
        .send()
        .await
        .unwrap();
    accepted(response).await;
    assert_eq!(hub.intake.recorded()[0].sender.principal, "betrieb");
}

#[tokio::test]
async fn other_media_types_are_415() {
    let hub = Hub::start().await;
    for content_type in [Some("text/plain"), Some("application/octet-stream"), None] {
        let mut request = hub.post("portal").body(XML);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        problem(request.send().await.unwrap(), 415, "unsupported-media-type").await;
    }
    // multipart whose first part is not XML/JSON
    let form = Form::new().part("text", Part::text("hallo")).part(
        "antrag",
        Part::bytes(XML.to_vec())
            .mime_str("application/xml")
            .unwrap(),
    );
    let response = hub.post("portal").multipart(form).send().await.unwrap();
    problem(response, 415, "unsupported-media-type").await;
    assert!(hub.intake.recorded().is_empty());
}

#[tokio::test]
async fn declared_length_over_the_limit_is_413() {
    let hub = Hub::start().await;
    let body = vec![b'x'; MAX_PAYLOAD as usize + 1];
    let response = hub
        .post("portal")
        .header("content-type", "application/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    problem(response, 413, "payload-too-large").await;

    // exactly at the limit is fine
    let mut body = b"<a>".to_vec();
    body.resize(MAX_PAYLOAD as usize - 4, b' ');
    body.extend_from_slice(b"</a>");
    let response = hub
        .post("portal")
        .header("content-type", "application/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    accepted(response).await;
}

/// A chunked body without Content-Length that would be 64 MiB: the server
/// must answer 413 after reading little more than the limit, without
/// waiting for the rest.
#[tokio::test]
async fn streamed_body_over_the_limit_is_cut_off_with_413() {
    const PLANNED: u64 = 64 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let hub = Hub::start().await;
    let stream = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let written = Arc::new(AtomicU64::new(0));

    let writer = {
        let written = written.clone();
        tokio::spawn(async move {
            let head = "POST /api/v1/inbox/portal HTTP/1.1\r\nHost: hub\r\n\
                Authorization: Bearer portal-token\r\nContent-Type: application/xml\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
            wr.write_all(head.as_bytes()).await?;
            let data = vec![b'x'; CHUNK];
            while written.load(Ordering::SeqCst) < PLANNED {
                wr.write_all(format!("{CHUNK:x}\r\n").as_bytes()).await?;
                wr.write_all(&data).await?;
                wr.write_all(b"\r\n").await?;
                written.fetch_add(CHUNK as u64, Ordering::SeqCst);
            }
            wr.write_all(b"0\r\n\r\n").await?;
            Ok::<_, std::io::Error>(())
        })
    };

    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read_head = async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = rd.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before an answer");
            answer.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read_head)
        .await
        .expect("no answer while the client was still sending");
    let sent_when_answered = written.load(Ordering::SeqCst);
    writer.abort();

    let head = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    // Socket buffers hold a few MiB at most; the server did not read on.
    assert!(
        sent_when_answered < PLANNED / 4,
        "server read {sent_when_answered} bytes before answering"
    );
    assert!(hub.intake.recorded().is_empty());
}

#[tokio::test]
async fn attachment_over_its_limit_is_413() {
    let hub = Hub::start().await;
    let form = Form::new()
        .part(
            "antrag",
            Part::bytes(XML.to_vec())
                .mime_str("application/xml")
                .unwrap(),
        )
        .part(
            "gross",
            Part::bytes(pseudo_random(MAX_ATTACHMENT as usize + 1, 3)).file_name("gross.bin"),
        );
    let response = hub.post("portal").multipart(form).send().await.unwrap();
    let doc = problem(response, 413, "attachment-too-large").await;
    assert!(doc["detail"].as_str().unwrap().contains("gross"), "{doc}");
    assert!(hub.intake.recorded().is_empty());

    // an attachment exactly at the limit passes
    let form = Form::new()
        .part(
            "antrag",
            Part::bytes(XML.to_vec())
                .mime_str("application/xml")
                .unwrap(),
        )
        .part(
            "genau",
            Part::bytes(pseudo_random(MAX_ATTACHMENT as usize, 4)),
        );
    accepted(hub.post("portal").multipart(form).send().await.unwrap()).await;
}

/// Refused mid-body, the inbox reads the rest of the body (within its
/// drain bounds) before it answers: a client that sends fast, without a
/// Content-Length, still reads the 413 instead of a connection reset
/// under it.
#[tokio::test]
async fn refusal_mid_body_reaches_a_fast_sender() {
    let hub = Hub::start().await;
    let boundary = "grenze";
    for seed in 0..5 {
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"antrag\"\r\n\
             Content-Type: application/xml\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(XML);
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"gross\"; \
                 filename=\"gross.bin\"\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&pseudo_random(MAX_ATTACHMENT as usize * 2 + 200_000, seed));
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
        let response = hub
            .post("portal")
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .send()
            .await
            .unwrap();
        problem(response, 413, "attachment-too-large").await;
    }
    assert!(hub.intake.recorded().is_empty());
}

#[tokio::test]
async fn attachments_together_are_limited_to_four_times_the_single_limit() {
    let hub = Hub::start().await;
    let mut form = Form::new().part(
        "antrag",
        Part::bytes(XML.to_vec())
            .mime_str("application/xml")
            .unwrap(),
    );
    for i in 0..6 {
        form = form.part(
            format!("anlage-{i}"),
            Part::bytes(pseudo_random(400 * 1024, i)),
        );
    }
    let response = hub.post("portal").multipart(form).send().await.unwrap();
    let doc = problem(response, 413, "attachment-too-large").await;
    assert!(
        doc["detail"]
            .as_str()
            .unwrap()
            .contains("all attachments together"),
        "{doc}"
    );
    assert!(hub.intake.recorded().is_empty());
}

#[tokio::test]
async fn payload_part_over_the_limit_is_413() {
    let hub = Hub::start().await;
    let form = Form::new().part(
        "antrag",
        Part::bytes(vec![b' '; MAX_PAYLOAD as usize + 1])
            .mime_str("application/xml")
            .unwrap(),
    );
    let response = hub.post("portal").multipart(form).send().await.unwrap();
    problem(response, 413, "payload-too-large").await;
}

#[tokio::test]
async fn same_idempotency_key_returns_the_first_id_as_duplicate() {
    let hub = Hub::start().await;
    let send = || {
        hub.post("portal")
            .header("content-type", "application/xml")
            .header("idempotency-key", "key-1")
            .body(XML)
            .send()
    };
    let first = accepted(send().await.unwrap()).await;
    let second = accepted(send().await.unwrap()).await;
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(first.id, second.id);
    assert_eq!(hub.intake.recorded().len(), 1);
}

#[tokio::test]
async fn malformed_idempotency_key_is_400() {
    let hub = Hub::start().await;
    let too_long = "k".repeat(201);
    for key in [too_long.as_str(), "mit leerzeichen", "ümlaut", ""] {
        let response = hub
            .post("portal")
            .header("content-type", "application/xml")
            .header("idempotency-key", key.as_bytes())
            .body(XML)
            .send()
            .await
            .unwrap();
        let doc = problem(response, 400, "invalid-header").await;
        assert!(
            doc["detail"].as_str().unwrap().contains("idempotency-key"),
            "{doc}"
        );
    }
    // exactly 200 visible characters pass
    let response = hub
        .post("portal")
        .header("content-type", "application/xml")
        .header("idempotency-key", "k".repeat(200))
        .body(XML)
        .send()
        .await
        .unwrap();
    accepted(response).await;
    assert_eq!(hub.intake.recorded().len(), 1);
}

#[tokio::test]
async fn intake_errors_become_problems() {
    let hub = Hub::start().await;
    let response = hub
        .post("closed")
        .header("content-type", "application/xml")
        .body(XML)
        .send()
        .await
        .unwrap();
    problem(response, 503, "shutting-down").await;

    let response = hub
        .post("portal")
        .header("content-type", "application/xml")
        .send()
        .await
        .unwrap();
    problem(response, 400, "malformed-payload").await;
}

#[tokio::test]
async fn broken_multipart_and_wrong_method_are_problems() {
    let hub = Hub::start().await;
    let response = hub
        .post("portal")
        .header("content-type", "multipart/form-data; boundary=abc")
        .body("--abc\r\nContent-Type: application/xml\r\n\r\n<a/>")
        .send()
        .await
        .unwrap();
    problem(response, 400, "malformed-multipart").await;

    let response = hub
        .post("portal")
        .header("content-type", "multipart/form-data")
        .body("x")
        .send()
        .await
        .unwrap();
    problem(response, 400, "malformed-multipart").await;

    let response = hub
        .post("portal")
        .header("content-type", "multipart/form-data; boundary=abc")
        .body("--abc--\r\n")
        .send()
        .await
        .unwrap();
    problem(response, 400, "malformed-multipart").await;

    let response = hub
        .client
        .get(format!("{}/api/v1/inbox/portal", hub.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    problem(response, 405, "method-not-allowed").await;
    assert!(hub.intake.recorded().is_empty());
}
