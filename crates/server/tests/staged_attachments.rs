//! Attachments staged for a request that is refused are removed from the
//! blob store; content that a stored message references stays.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestHub, CHANNEL, SENDER_A};

const BOUNDARY: &str = "grenze-4711";

/// A multipart body: `first` as the XML part, then one attachment per
/// entry of `attachments`.
fn multipart(first: &str, attachments: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"antrag\"\r\n\
             Content-Type: application/xml\r\n\r\n{first}\r\n"
        )
        .as_bytes(),
    );
    for (i, a) in attachments.iter().enumerate() {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"a{i}\"; filename=\"a{i}.bin\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(a);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// `n` distinct attachments of `len` bytes, distinguished by `tag`.
fn attachments(tag: &str, n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut a = format!("{tag}-{i}:").into_bytes();
            a.resize(len, b'x');
            a
        })
        .collect()
}

async fn post(hub: &TestHub, body: Vec<u8>) -> u16 {
    post_with_key(hub, body, None).await
}

async fn post_with_key(hub: &TestHub, body: Vec<u8>, key: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new()
        .post(hub.url(&format!("/api/v1/inbox/{CHANNEL}")))
        .bearer_auth(SENDER_A);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_malformed_payload_leaves_no_staged_attachments() {
    let hub = TestHub::start().await;
    // A stored message with one attachment whose content the refused
    // request below repeats.
    let shared = b"shared attachment content".to_vec();
    assert_eq!(
        post(&hub, multipart("<antrag/>", std::slice::from_ref(&shared))).await,
        202
    );
    let before = hub.blob_files();
    assert_eq!(before.len(), 1, "{before:?}");

    let mut parts = attachments("refused", 8, 256 * 1024);
    parts.push(shared);
    let status = post(&hub, multipart("<antrag><unclosed></antrag>", &parts)).await;
    assert_eq!(status, 400);
    // Answered only after the clean-up: no new files, the shared blob stays.
    assert_eq!(hub.blob_files(), before);
    hub.shutdown.cancel();
}

#[tokio::test]
async fn too_many_parts_leave_no_staged_attachments() {
    let hub = TestHub::start().await;
    let parts = attachments("many", drehscheibe_http::inbox::MAX_ATTACHMENTS + 1, 64);
    let status = post(&hub, multipart("<antrag/>", &parts)).await;
    assert_eq!(status, 413);
    assert_eq!(hub.blob_files(), Vec::<std::path::PathBuf>::new());
    hub.shutdown.cancel();
}

#[tokio::test]
async fn a_duplicate_leaves_no_second_copy_and_a_retry_still_works() {
    let hub = TestHub::start().await;
    let send =
        |parts: Vec<Vec<u8>>| post_with_key(&hub, multipart("<antrag/>", &parts), Some("k-1"));
    assert_eq!(send(attachments("first", 2, 100)).await, 202);
    let stored = hub.blob_files();
    assert_eq!(stored.len(), 2);
    // The retry carries other attachments: they are not stored anywhere.
    assert_eq!(send(attachments("retry", 2, 100)).await, 202);
    assert_eq!(hub.blob_files(), stored);
    hub.shutdown.cancel();
}

/// Wait (bounded) until `done` holds for the blob files.
async fn eventually(hub: &TestHub, what: &str, done: impl Fn(&[std::path::PathBuf]) -> bool) {
    for _ in 0..1000 {
        if done(&hub.blob_files()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{what}: blob files are {:?}", hub.blob_files());
}

#[tokio::test]
async fn a_client_gone_mid_body_leaves_no_staged_attachments() {
    use tokio::io::AsyncWriteExt;
    let hub = TestHub::start().await;
    let full = multipart("<antrag/>", &attachments("gone", 3, 4096));
    // Everything up to the middle of the last attachment.
    let cut = full.len() - 2048;
    let mut conn = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/inbox/{CHANNEL} HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {SENDER_A}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        full.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&full[..cut]).await.unwrap();
    // The first two attachments are staged (blob and marker each)…
    eventually(&hub, "staging", |files| files.len() >= 4).await;
    // …and the client goes away.
    drop(conn);
    eventually(&hub, "clean-up", <[_]>::is_empty).await;
}
