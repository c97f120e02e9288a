//! Mutual TLS: the `xta` connector presents the tenant's certificate to
//! an XTA server (the double behind rustls) that requires one from a test
//! CA generated with rcgen.
#![allow(clippy::unwrap_used)]

mod client_support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use client_support::{request, Double, MemBlobs};
use drehscheibe_model::Connector;
use drehscheibe_xta::client::{XtaClientSettings, XtaEndpoints};
use drehscheibe_xta::connector::{MetaDefaults, XtaConnector, XtaConnectorSettings};
use drehscheibe_xta::model::PartyIdentifier;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
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
        .push(DnType::CommonName, "XTA Test-CA");
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
        .push(DnType::CommonName, "dvdv:01001000");
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

struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn serve_mtls(double: &Double, pki: &Pki) -> String {
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
    let listener = TlsListener {
        tcp,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    };
    let app = double.router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("https://{addr}/xta")
}

fn connector(url: &str, pki: &Pki, with_cert: bool) -> XtaConnector {
    XtaConnector::new(XtaConnectorSettings {
        client: XtaClientSettings {
            endpoints: XtaEndpoints::single(url),
            author: PartyIdentifier::new("dvdv:01001000", "xoev"),
            client_cert_pem: with_cert.then(|| {
                (
                    pki.client_cert_pem.clone().into_bytes(),
                    pki.client_key_pem.clone().into_bytes(),
                )
            }),
            ca_cert_pem: Some(pki.ca_pem.clone().into_bytes()),
            bearer_token: None,
            timeout: Duration::from_secs(10),
            max_answer_bytes: 1 << 20,
        },
        meta: MetaDefaults {
            reader: Some(PartyIdentifier::new("dvdv:02000000", "xoev")),
            service: Some("urn:s".into()),
            ..Default::default()
        },
        report_wait: Duration::ZERO,
        report_poll_interval: Duration::from_millis(20),
        require_final_report: false,
    })
    .unwrap()
}

const DOC: &[u8] = b"<a xmlns=\"urn:a\"/>";

#[tokio::test]
async fn client_certificate_is_presented_and_required() {
    let pki = pki();
    let double = Double::new();
    let url = serve_mtls(&double, &pki).await;

    let req = request(DOC, vec![], Arc::new(MemBlobs::default()), BTreeMap::new());
    let receipt = connector(&url, &pki, true).deliver(req).await.unwrap();
    assert!(receipt.detail.contains("double:1"), "{}", receipt.detail);
    assert_eq!(double.state.lock().unwrap().received.len(), 1);

    // Without the certificate the handshake fails: nothing arrives, the
    // attempt counts as a network failure (retryable).
    let req = request(DOC, vec![], Arc::new(MemBlobs::default()), BTreeMap::new());
    let e = connector(&url, &pki, false).deliver(req).await.unwrap_err();
    assert!(e.retryable, "{e:?}");
    assert_eq!(double.state.lock().unwrap().received.len(), 1);
}

#[test]
fn unusable_certificates_are_configuration_errors() {
    let pki = pki();
    let mut s = XtaClientSettings {
        endpoints: XtaEndpoints::single("https://127.0.0.1:1/xta"),
        author: PartyIdentifier::new("a", "xoev"),
        client_cert_pem: Some((b"not a cert".to_vec(), b"not a key".to_vec())),
        ca_cert_pem: None,
        bearer_token: None,
        timeout: Duration::from_secs(1),
        max_answer_bytes: 1024,
    };
    let e = drehscheibe_xta::client::XtaClient::new(s.clone()).unwrap_err();
    assert!(e.to_string().contains("client certificate"), "{e}");
    s.client_cert_pem = Some((
        pki.client_cert_pem.clone().into_bytes(),
        pki.client_key_pem.clone().into_bytes(),
    ));
    s.ca_cert_pem = Some(b"garbage".to_vec());
    assert!(drehscheibe_xta::client::XtaClient::new(s).is_err());
}
