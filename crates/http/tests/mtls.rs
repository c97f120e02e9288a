//! Mutual TLS: a rustls receiver that requires a client certificate issued
//! by a test CA generated with rcgen.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::Router;
use common::{sha256_hex, FileBlobStore};
use drehscheibe_http::{HttpConnector, HttpConnectorSettings};
use drehscheibe_model::{Connector, DeliveryRequest, Envelope, MessageId, SenderIdentity};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    client_cert_pem: String,
    client_key_pem: String,
}

fn issue(
    mut params: CertificateParams,
    usage: ExtendedKeyUsagePurpose,
    ca: &Certificate,
    ca_key: &KeyPair,
) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    params.extended_key_usages = vec![usage];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.signed_by(&key, ca, ca_key).unwrap();
    (cert, key)
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Drehscheibe Test-CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server_params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let (server, server_key) = issue(
        server_params,
        ExtendedKeyUsagePurpose::ServerAuth,
        &ca,
        &ca_key,
    );

    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "drehscheibe-hub");
    let (client, client_key) = issue(
        client_params,
        ExtendedKeyUsagePurpose::ClientAuth,
        &ca,
        &ca_key,
    );

    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server_chain: vec![server.der().clone()],
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// Accepts TCP connections and completes a TLS handshake that requires a
/// client certificate; failed handshakes are counted and skipped.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    refused: Arc<AtomicUsize>,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            match self.acceptor.accept(tcp).await {
                Ok(tls) => return (tls, addr),
                Err(_) => {
                    self.refused.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A TLS receiver requiring client certificates from the test CA.
async fn mtls_receiver(pki: &Pki) -> (SocketAddr, mpsc::UnboundedReceiver<Bytes>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];

    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let router = Router::new().fallback(move |body: Bytes| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(body);
            (StatusCode::CREATED, "angenommen")
        }
    });
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
        refused: Arc::new(AtomicUsize::new(0)),
    };
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
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
    let pki = pki();
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
