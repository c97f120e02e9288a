//! The HTTP connector against small axum receivers on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use common::{pseudo_random, serve, sha256_hex, FileBlobStore};
use drehscheibe_http::{HttpAuth, HttpConnector, HttpConnectorError, HttpConnectorSettings};
use drehscheibe_model::{
    AttachmentRef, BlobStore, Connector, DeliveryRequest, Envelope, MessageId, SenderIdentity,
};
use tokio::sync::mpsc;

const DOC: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<fv:antrag xmlns:fv=\"urn:fv\">\xc3\xa4</fv:antrag>\r\n";

/// What a receiver saw.
#[derive(Debug)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Answer {
    status: StatusCode,
    body: &'static str,
    seen: mpsc::UnboundedSender<Seen>,
}

async fn record(
    State(answer): State<Answer>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let _ = answer.seen.send(Seen {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
    });
    (
        answer.status,
        [("location", "/anderswo"), ("retry-after", "120")],
        answer.body,
    )
}

/// A receiver answering every request with `status` and `body`.
async fn receiver(status: u16, body: &'static str) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let router = Router::new().fallback(record).with_state(Answer {
        status: StatusCode::from_u16(status).unwrap(),
        body,
        seen: tx,
    });
    let addr = serve(router).await;
    (format!("http://{addr}/fv/eingang"), rx)
}

fn settings(url: &str) -> HttpConnectorSettings {
    HttpConnectorSettings {
        url: url.to_owned(),
        method: Method::POST,
        headers: vec![("X-Api-Version".into(), "3".into())],
        auth: Some(HttpAuth::Bearer("fv-secret-token".into())),
        success_status: vec![200, 201, 202],
        client_cert_pem: None,
        ca_cert_pem: None,
        timeout: Duration::from_secs(10),
        send_attachments: true,
    }
}

fn request(
    document: &[u8],
    attachments: Vec<AttachmentRef>,
    blobs: Arc<dyn BlobStore>,
) -> DeliveryRequest {
    DeliveryRequest {
        envelope: Envelope {
            id: MessageId::new(),
            channel: "portal".into(),
            sender: SenderIdentity {
                adapter: "http".into(),
                principal: "onlinedienst".into(),
                remote_addr: None,
            },
            received_at: chrono::Utc::now(),
            content_type: "application/xml".into(),
            size: document.len() as u64,
            sha256: sha256_hex(document),
            correlation_ids: Default::default(),
            idempotency_key: None,
            tenant: Some("musterstadt".into()),
            kommune_key: Some("15003000".into()),
            leistung: Some("99050012104000".into()),
            attachments,
        },
        target: "fachverfahren".into(),
        generation: 2,
        attempt: 3,
        document: Bytes::copy_from_slice(document),
        content_type: "application/vnd.fv+xml; charset=utf-8".into(),
        filename: "antrag.xml".into(),
        blobs,
        checkpoint: drehscheibe_model::Checkpoint::in_memory(),
    }
}

fn no_blobs() -> (tempfile::TempDir, Arc<FileBlobStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileBlobStore::new(dir.path()));
    (dir, store)
}

#[tokio::test]
async fn document_is_delivered_byte_exact_with_all_headers() {
    let (url, mut seen) = receiver(201, "  {\"vorgang\": \"FV-2024-17\"}\n").await;
    let connector = HttpConnector::new(settings(&url)).unwrap();
    assert_eq!(connector.kind(), "http");
    let (_dir, blobs) = no_blobs();
    let req = request(DOC, Vec::new(), blobs);
    let id = req.envelope.id;
    let key = req.idempotency_key();

    let receipt = connector.deliver(req).await.unwrap();
    assert_eq!(
        receipt.detail,
        "HTTP 201 Created: {\"vorgang\": \"FV-2024-17\"}"
    );

    let s = seen.recv().await.unwrap();
    assert_eq!(s.method, Method::POST);
    assert_eq!(s.path, "/fv/eingang");
    assert_eq!(&s.body[..], DOC);
    let h = |name: &str| s.headers[name].to_str().unwrap().to_owned();
    assert_eq!(h("content-type"), "application/vnd.fv+xml; charset=utf-8");
    assert_eq!(h("authorization"), "Bearer fv-secret-token");
    assert_eq!(h("x-api-version"), "3");
    assert_eq!(h("idempotency-key"), format!("{id}/fachverfahren/2"));
    assert_eq!(key, format!("{id}/fachverfahren/2"));
    assert_eq!(h("x-drehscheibe-message-id"), id.to_string());
    assert_eq!(h("x-drehscheibe-target"), "fachverfahren");
    assert_eq!(h("x-drehscheibe-attempt"), "3");
    assert_eq!(h("x-drehscheibe-leistung"), "99050012104000");
    assert_eq!(h("x-drehscheibe-tenant"), "musterstadt");
    assert_eq!(h("content-length"), DOC.len().to_string());
}

#[tokio::test]
async fn put_with_basic_auth_and_no_optional_headers() {
    let (url, mut seen) = receiver(204, "").await;
    let mut s = settings(&url);
    s.method = Method::PUT;
    s.auth = Some(HttpAuth::Basic {
        username: "aladdin".into(),
        password: "open sesame".into(),
    });
    s.success_status = vec![204];
    let connector = HttpConnector::new(s).unwrap();
    let (_dir, blobs) = no_blobs();
    let mut req = request(DOC, Vec::new(), blobs);
    req.envelope.leistung = None;
    req.envelope.tenant = None;
    let receipt = connector.deliver(req).await.unwrap();
    assert_eq!(receipt.detail, "HTTP 204 No Content");

    let s = seen.recv().await.unwrap();
    assert_eq!(s.method, Method::PUT);
    // RFC 7617 example credentials
    assert_eq!(
        s.headers["authorization"],
        "Basic YWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    assert!(s.headers.get("x-drehscheibe-leistung").is_none());
    assert!(s.headers.get("x-drehscheibe-tenant").is_none());
}

#[tokio::test]
async fn only_configured_statuses_count_as_success() {
    let (url, _seen) = receiver(200, "ok").await;
    let mut s = settings(&url);
    s.success_status = vec![202];
    let connector = HttpConnector::new(s).unwrap();
    let (_dir, blobs) = no_blobs();
    let err = connector
        .deliver(request(DOC, Vec::new(), blobs.clone()))
        .await
        .unwrap_err();
    assert!(!err.retryable);
    assert_eq!(err.reason, "HTTP 200 OK: ok");

    let (url, _seen) = receiver(202, "").await;
    let mut s = settings(&url);
    s.success_status = vec![202];
    let connector = HttpConnector::new(s).unwrap();
    let receipt = connector
        .deliver(request(DOC, Vec::new(), blobs))
        .await
        .unwrap();
    assert_eq!(receipt.detail, "HTTP 202 Accepted");
}

#[tokio::test]
async fn failures_are_classified_by_status() {
    let (_dir, blobs) = no_blobs();
    let cases: [(u16, bool, &str); 6] = [
        (
            503,
            true,
            "HTTP 503 Service Unavailable: wartung (Retry-After: 120)",
        ),
        (
            500,
            true,
            "HTTP 500 Internal Server Error: wartung (Retry-After: 120)",
        ),
        (
            408,
            true,
            "HTTP 408 Request Timeout: wartung (Retry-After: 120)",
        ),
        (
            429,
            true,
            "HTTP 429 Too Many Requests: wartung (Retry-After: 120)",
        ),
        (400, false, "HTTP 400 Bad Request: wartung"),
        (
            302,
            false,
            "HTTP 302 Found: wartung (redirect to /anderswo not followed)",
        ),
    ];
    for (status, retryable, reason) in cases {
        let (url, mut seen) = receiver(status, "wartung").await;
        let connector = HttpConnector::new(settings(&url)).unwrap();
        let err = connector
            .deliver(request(DOC, Vec::new(), blobs.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.retryable, retryable, "{status}: {err:?}");
        assert_eq!(err.reason, reason);
        assert!(seen.recv().await.is_some(), "{status}: not delivered");
        // a redirect is not followed: exactly one request
        assert!(seen.try_recv().is_err());
    }
}

#[tokio::test]
async fn long_answers_are_cut_to_a_snippet() {
    let (url, _seen) = receiver(422, include_str!("connector.rs")).await;
    let connector = HttpConnector::new(settings(&url)).unwrap();
    let (_dir, blobs) = no_blobs();
    let err = connector
        .deliver(request(DOC, Vec::new(), blobs))
        .await
        .unwrap_err();
    assert!(!err.retryable);
    let snippet = err
        .reason
        .strip_prefix("HTTP 422 Unprocessable Entity: ")
        .unwrap();
    assert_eq!(snippet.chars().count(), 200);
    assert!(snippet.starts_with("//! The HTTP connector against"));
    assert!(!snippet.contains('\n'));
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let connector = HttpConnector::new(settings(&format!("http://{addr}/"))).unwrap();
    let (_dir, blobs) = no_blobs();
    let err = connector
        .deliver(request(DOC, Vec::new(), blobs))
        .await
        .unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert!(err.reason.contains("connect"), "{}", err.reason);
}

#[tokio::test]
async fn hanging_receiver_times_out_retryably() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and read nothing, answer nothing; keep the sockets open.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut s = settings(&format!("http://{addr}/"));
    s.timeout = Duration::from_millis(300);
    let connector = HttpConnector::new(s).unwrap();
    let (_dir, blobs) = no_blobs();
    let started = Instant::now();
    let err = connector
        .deliver(request(DOC, Vec::new(), blobs))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(err.retryable, "{err:?}");
    assert!(
        err.reason.contains("timed out after 300ms"),
        "{}",
        err.reason
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    holder.abort();
}

/// One multipart part as the receiver saw it.
#[derive(Debug, PartialEq)]
struct SeenPart {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    size: u64,
    sha256: String,
}

async fn record_parts(
    State(tx): State<mpsc::UnboundedSender<(HeaderMap, Vec<SeenPart>)>>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> StatusCode {
    use sha2::{Digest, Sha256};
    let mut parts = Vec::new();
    while let Some(mut field) = multipart.next_field().await.unwrap() {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = field.chunk().await.unwrap() {
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        parts.push(SeenPart {
            name,
            filename,
            content_type,
            size,
            sha256: hex::encode(hasher.finalize()),
        });
    }
    let _ = tx.send((headers, parts));
    StatusCode::CREATED
}

#[tokio::test]
async fn attachments_are_streamed_as_multipart() {
    const BIG: usize = 20 * 1024 * 1024;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let router = Router::new()
        .fallback(record_parts)
        .layer(DefaultBodyLimit::disable())
        .with_state(tx);
    let addr = serve(router).await;

    let (_dir, blobs) = no_blobs();
    let big = pseudo_random(BIG, 42);
    let big_sha = sha256_hex(&big);
    let big_ref = blobs
        .put(Box::pin(std::io::Cursor::new(big)), u64::MAX)
        .await
        .unwrap();
    assert_eq!(big_ref.sha256, big_sha);
    let small = b"Vollmacht\n".to_vec();
    let small_ref = blobs
        .put(Box::pin(std::io::Cursor::new(small.clone())), u64::MAX)
        .await
        .unwrap();
    let attachments = vec![
        AttachmentRef {
            name: "grundriss".into(),
            filename: Some("grundriss.tif".into()),
            content_type: "image/tiff".into(),
            blob: big_ref.clone(),
        },
        AttachmentRef {
            name: "vollmacht".into(),
            filename: None,
            content_type: "text/plain".into(),
            blob: small_ref.clone(),
        },
    ];
    let connector = HttpConnector::new(settings(&format!("http://{addr}/"))).unwrap();
    let req = request(DOC, attachments, blobs.clone());
    let id = req.envelope.id;
    let receipt = connector.deliver(req).await.unwrap();
    assert_eq!(receipt.detail, "HTTP 201 Created");

    let (headers, parts) = rx.recv().await.unwrap();
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("multipart/form-data; boundary="));
    assert_eq!(headers["x-drehscheibe-message-id"], id.to_string());
    assert_eq!(headers["authorization"], "Bearer fv-secret-token");
    assert_eq!(
        parts,
        vec![
            SeenPart {
                name: "document".into(),
                filename: Some("antrag.xml".into()),
                content_type: Some("application/vnd.fv+xml; charset=utf-8".into()),
                size: DOC.len() as u64,
                sha256: sha256_hex(DOC),
            },
            SeenPart {
                name: "grundriss".into(),
                filename: Some("grundriss.tif".into()),
                content_type: Some("image/tiff".into()),
                size: BIG as u64,
                sha256: big_sha,
            },
            SeenPart {
                name: "vollmacht".into(),
                filename: None,
                content_type: Some("text/plain".into()),
                size: small.len() as u64,
                sha256: sha256_hex(&small),
            },
        ]
    );
}

#[tokio::test]
async fn attachments_are_left_out_when_disabled() {
    let (url, mut seen) = receiver(200, "").await;
    let (_dir, blobs) = no_blobs();
    let blob = blobs
        .put(Box::pin(std::io::Cursor::new(b"anlage".to_vec())), 100)
        .await
        .unwrap();
    let attachment = AttachmentRef {
        name: "anlage".into(),
        filename: None,
        content_type: "application/pdf".into(),
        blob,
    };
    let mut s = settings(&url);
    s.send_attachments = false;
    let connector = HttpConnector::new(s).unwrap();
    connector
        .deliver(request(DOC, vec![attachment], blobs))
        .await
        .unwrap();
    let s = seen.recv().await.unwrap();
    assert_eq!(&s.body[..], DOC);
    assert_eq!(
        s.headers["content-type"],
        "application/vnd.fv+xml; charset=utf-8"
    );
}

#[tokio::test]
async fn missing_blob_is_a_permanent_failure() {
    let (url, mut seen) = receiver(200, "").await;
    let (_dir, blobs) = no_blobs();
    let attachment = AttachmentRef {
        name: "weg".into(),
        filename: None,
        content_type: "application/pdf".into(),
        blob: drehscheibe_model::BlobRef {
            sha256: "00".repeat(32),
            size: 3,
        },
    };
    let connector = HttpConnector::new(settings(&url)).unwrap();
    let err = connector
        .deliver(request(DOC, vec![attachment], blobs))
        .await
        .unwrap_err();
    assert!(!err.retryable);
    assert!(err.reason.contains("\"weg\""), "{}", err.reason);
    assert!(seen.try_recv().is_err(), "nothing may be sent");
}

#[test]
fn invalid_settings_are_refused() {
    let base = settings("https://fv.example/eingang");
    let check = |change: &dyn Fn(&mut HttpConnectorSettings),
                 expect: fn(&HttpConnectorError) -> bool| {
        let mut s = base.clone();
        change(&mut s);
        let err = HttpConnector::new(s).unwrap_err();
        assert!(expect(&err), "unexpected error {err:?}");
    };
    check(&|s| s.url = "ftp://fv.example/".into(), |e| {
        matches!(e, HttpConnectorError::InvalidUrl { .. })
    });
    check(&|s| s.url = "not a url".into(), |e| {
        matches!(e, HttpConnectorError::InvalidUrl { .. })
    });
    check(&|s| s.method = Method::GET, |e| {
        matches!(e, HttpConnectorError::UnsupportedMethod(_))
    });
    check(&|s| s.success_status.clear(), |e| {
        matches!(e, HttpConnectorError::InvalidSuccessStatus(_))
    });
    check(&|s| s.success_status = vec![99], |e| {
        matches!(e, HttpConnectorError::InvalidSuccessStatus(_))
    });
    check(
        &|s| s.headers = vec![("bad header".into(), "x".into())],
        |e| matches!(e, HttpConnectorError::InvalidHeader(_)),
    );
    check(
        &|s| s.headers = vec![("x-ok".into(), "line\nbreak".into())],
        |e| matches!(e, HttpConnectorError::InvalidHeader(_)),
    );
    check(&|s| s.auth = Some(HttpAuth::Bearer("a\r\nb".into())), |e| {
        matches!(e, HttpConnectorError::InvalidAuth(_))
    });
    check(&|s| s.timeout = Duration::ZERO, |e| {
        matches!(e, HttpConnectorError::ZeroTimeout)
    });
    check(&|s| s.ca_cert_pem = Some(b"no pem here".to_vec()), |e| {
        matches!(e, HttpConnectorError::InvalidCaCert(_))
    });
    check(
        &|s| s.client_cert_pem = Some((b"no cert".to_vec(), b"no key".to_vec())),
        |e| matches!(e, HttpConnectorError::InvalidClientCert(_)),
    );
}
