//! Mutual TLS: a rustls receiver that requires a client certificate issued
//! by a test CA (`drehscheibe_testkit::pki`).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::Router;
use common::{sha256_hex, FileBlobStore};
use drehscheibe_http::{HttpConnector, HttpConnectorSettings};
use drehscheibe_model::{Connector, DeliveryRequest, Envelope, MessageId, SenderIdentity};
use drehscheibe_testkit::pki::{serve_mtls, Pki};
use tokio::sync::mpsc;

/// A receiver requiring client certificates from the test CA; received
/// bodies arrive on the channel.
async fn mtls_receiver(pki: &Pki) -> (SocketAddr, mpsc::UnboundedReceiver<Bytes>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let router = Router::new().fallback(move |body: Bytes| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(body);
            (StatusCode::CREATED, "angenommen")
        }
    });
    let (addr, _refused) = serve_mtls(pki, router).await;
    (addr, rx)
}

fn settings(addr: SocketAddr, pki: &Pki, with_client_cert: bool) -> HttpConnectorSettings {
    HttpConnectorSettings {
        url: format!("https://{addr}/eingang"),
        method: reqwest::Method::POST,
        headers: Vec::new(),
        auth: None,
        success_status: vec![201],
        client_cert_pem: with_client_cert.then(|| {
            (
                pki.client_cert_pem.clone().into_bytes(),
                pki.client_key_pem.clone().into_bytes(),
            )
        }),
        ca_cert_pem: Some(pki.ca_pem.clone().into_bytes()),
        timeout: Duration::from_secs(10),
        send_attachments: false,
    }
}

fn request(document: &'static [u8], blobs: Arc<FileBlobStore>) -> DeliveryRequest {
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
            tenant: None,
            kommune_key: None,
            leistung: None,
            attachments: Vec::new(),
        },
        target: "fachverfahren".into(),
        generation: 0,
        attempt: 1,
        document: Bytes::from_static(document),
        content_type: "application/xml".into(),
        filename: "antrag.xml".into(),
        blobs,
        checkpoint: drehscheibe_model::Checkpoint::in_memory(),
    }
}

#[tokio::test]
async fn delivery_with_client_certificate_succeeds_and_without_fails() {
    let pki = Pki::new("drehscheibe-hub");
    let (addr, mut received) = mtls_receiver(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(FileBlobStore::new(dir.path()));
    let doc: &'static [u8] = b"<antrag>mTLS</antrag>";

    let with_cert = HttpConnector::new(settings(addr, &pki, true)).unwrap();
    let receipt = with_cert
        .deliver(request(doc, blobs.clone()))
        .await
        .unwrap();
    assert_eq!(receipt.detail, "HTTP 201 Created: angenommen");
    assert_eq!(&received.recv().await.unwrap()[..], doc);

    let without_cert = HttpConnector::new(settings(addr, &pki, false)).unwrap();
    let err = without_cert
        .deliver(request(doc, blobs.clone()))
        .await
        .unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert!(
        received.try_recv().is_err(),
        "request without certificate got through"
    );

    // Without the test CA the server certificate is not trusted.
    let mut untrusting = settings(addr, &pki, true);
    untrusting.ca_cert_pem = None;
    let err = HttpConnector::new(untrusting)
        .unwrap()
        .deliver(request(doc, blobs))
        .await
        .unwrap_err();
    assert!(
        err.reason.to_ascii_lowercase().contains("certificate"),
        "{}",
        err.reason
    );
    assert!(received.try_recv().is_err());
}
