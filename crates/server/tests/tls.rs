//! The HTTPS listener on its own: client certificate extension (fingerprint
//! and subject), TLS set-up errors, the shutdown grace.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::{Extension, Router};
use drehscheibe_model::auth::ClientCertificate;
use drehscheibe_server::{Bound, ClientCerts, ServerError, TlsError, TlsSettings};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

struct Pki {
    ca_pem: String,
    client_pem: String,
    client_key: String,
    client_sha256: String,
}

/// Write a CA (`ca.pem`), a server certificate for 127.0.0.1
/// (`server.pem`, `server.key`) and return a client certificate.
fn pki(dir: &Path) -> Pki {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, "Test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = p.self_signed(&ca_key).unwrap();

    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let server = p.signed_by(&key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();

    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CountryName, "DE");
    p.distinguished_name
        .push(DnType::OrganizationName, "Kommune Nord");
    p.distinguished_name.push(DnType::CommonName, "Bauamt Süd");
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().unwrap();
    let client = p.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca_pem: ca.pem(),
        client_pem: client.pem(),
        client_key: key.serialize_pem(),
        client_sha256: hex::encode(Sha256::digest(client.der())),
    }
}

fn client(pki: &Pki, with_cert: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap());
    if with_cert {
        let pem = format!("{}{}", pki.client_pem, pki.client_key);
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

async fn who(cert: Option<Extension<ClientCertificate>>) -> String {
    match cert {
        Some(Extension(c)) => format!("{}|{}", c.sha256_hex, c.subject.unwrap_or_default()),
        None => "anonymous".into(),
    }
}

type Served = (
    SocketAddr,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), ServerError>>,
);

async fn serve(dir: &Path, app: Router, grace: Duration) -> Served {
    let tls = TlsSettings::from_files(
        &dir.join("server.pem"),
        &dir.join("server.key"),
        &ClientCerts::Optional(dir.join("ca.pem")),
    )
    .unwrap();
    let bound = Bound::bind_tls("127.0.0.1:0".parse().unwrap(), tls)
        .await
        .unwrap()
        .with_shutdown_grace(grace);
    assert_eq!(bound.scheme(), "https");
    let addr = bound.local_addr().unwrap();
    let token = CancellationToken::new();
    let handle = tokio::spawn(bound.serve(app, token.clone()));
    (addr, token, handle)
}

#[tokio::test]
async fn the_client_certificate_reaches_the_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let app = Router::new().route("/who", get(who));
    let (addr, token, handle) = serve(dir.path(), app, Duration::from_secs(5)).await;
    let url = format!("https://{addr}/who");

    let r = client(&pki, true).get(&url).send().await.unwrap();
    let text = r.text().await.unwrap();
    let (fingerprint, subject) = text.split_once('|').unwrap();
    assert_eq!(fingerprint, pki.client_sha256);
    // Attributes in certificate order (rcgen decides that order).
    let mut attributes: Vec<&str> = subject.split(", ").collect();
    attributes.sort_unstable();
    assert_eq!(attributes, ["C=DE", "CN=Bauamt Süd", "O=Kommune Nord"]);
    // Optional: without a certificate the request is served anonymously.
    let r = client(&pki, false).get(&url).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "anonymous");

    token.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_hanging_request_is_cut_off_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let app = Router::new().route(
        "/hang",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "never"
        }),
    );
    let (addr, token, handle) = serve(dir.path(), app, Duration::from_millis(500)).await;
    let request = tokio::spawn(
        client(&pki, false)
            .get(format!("https://{addr}/hang"))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    token.cancel();
    handle.await.unwrap().unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(450),
        "stopped before the grace: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "grace not enforced: {took:?}"
    );
    // The cut-off request fails instead of hanging.
    assert!(request.await.unwrap().is_err());
}

#[test]
fn tls_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    std::fs::write(dir.path().join("empty.pem"), "no pem here").unwrap();
    let err = TlsSettings::from_files(
        &dir.path().join("missing.pem"),
        &dir.path().join("server.key"),
        &ClientCerts::None,
    )
    .unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }), "{err}");
    let err = TlsSettings::from_files(
        &dir.path().join("empty.pem"),
        &dir.path().join("server.key"),
        &ClientCerts::None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("no certificate"), "{err}");
    let err = TlsSettings::from_files(
        &dir.path().join("server.pem"),
        &dir.path().join("server.pem"),
        &ClientCerts::None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("no private key"), "{err}");
    // The key of another certificate.
    let other = tempfile::tempdir().unwrap();
    pki(other.path());
    let err = TlsSettings::from_files(
        &dir.path().join("server.pem"),
        &other.path().join("server.key"),
        &ClientCerts::None,
    )
    .unwrap_err();
    assert!(matches!(err, TlsError::Rustls(_)), "{err}");
    let err = TlsSettings::from_files(
        &dir.path().join("server.pem"),
        &dir.path().join("server.key"),
        &ClientCerts::Required(dir.path().join("empty.pem")),
    )
    .unwrap_err();
    assert!(err.to_string().contains("empty.pem"), "{err}");
}
