//! The hub's HTTPS listener (`[server] tls`): inbox over HTTPS, HTTP/2 via
//! ALPN, client certificates (optional and required) and XTA accounts bound
//! to client certificate fingerprints, graceful shutdown.
//!
//! A throw-away PKI is generated per test with `rcgen`: one CA issuing the
//! server certificate (`127.0.0.1`) and client certificates, and a second,
//! foreign CA.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drehscheibe_suite::{order, start, Api, Runtime, TestConfig, SENDER};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use sha2::{Digest, Sha256};

const LEISTUNG: &str = "99050012104000";

/// A CA that can issue certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Self { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `127.0.0.1`.
    fn server(&self) -> Leaf {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
        p.distinguished_name.push(DnType::CommonName, "hub.test");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(p)
    }

    /// A client certificate with common name `cn`.
    fn client(&self, cn: &str) -> Leaf {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name
            .push(DnType::OrganizationName, "Kommune Nord");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(p)
    }

    fn issue(&self, p: CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            sha256: hex::encode(Sha256::digest(cert.der())),
        }
    }
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    sha256: String,
}

impl Leaf {
    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert_pem, self.key_pem).as_bytes())
            .unwrap()
    }

    /// The fingerprint as operators copy it (upper case, `:`-separated).
    fn colon_fingerprint(&self) -> String {
        self.sha256
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(":")
    }
}

struct Pki {
    ca: Ca,
    server: Leaf,
}

impl Pki {
    fn new() -> Self {
        let ca = Ca::new("Drehscheibe Test CA");
        let server = ca.server();
        Self { ca, server }
    }

    /// Write `server.pem`, `server.key` and `clients-ca.pem` to `dir`.
    fn write(&self, dir: &Path) {
        std::fs::write(dir.join("server.pem"), &self.server.cert_pem).unwrap();
        std::fs::write(dir.join("server.key"), &self.server.key_pem).unwrap();
        std::fs::write(dir.join("clients-ca.pem"), self.ca.pem()).unwrap();
    }

    /// A reqwest client trusting only the test CA.
    fn client(&self, identity: Option<&Leaf>) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca.pem().as_bytes()).unwrap())
            .timeout(Duration::from_secs(30));
        if let Some(id) = identity {
            b = b.identity(id.identity());
        }
        b.build().unwrap()
    }
}

/// A hub with `[server] tls = { … }` (`tls` is the inline table's body)
/// and `extra` appended to the main file.
async fn tls_hub(pki: &Pki, tls: &str, extra: &str) -> (TestConfig, Runtime) {
    let cfg = TestConfig::write("127.0.0.1:0", &format!("tls = {{ {tls} }}"), &[]);
    pki.write(cfg.dir.path());
    if !extra.is_empty() {
        let mut text = std::fs::read_to_string(&cfg.main).unwrap();
        text.push_str(extra);
        std::fs::write(&cfg.main, text).unwrap();
    }
    let hub = start(&cfg.main).await.unwrap();
    assert_eq!(hub.scheme, "https");
    (cfg, hub)
}

fn api(hub: &Runtime, http: reqwest::Client) -> Api {
    let mut api = Api::new(hub.addr);
    api.base = format!("https://{}", hub.addr);
    api.http = http;
    api
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_answers_over_https_and_plain_http_is_refused() {
    let pki = Pki::new();
    let (_cfg, hub) = tls_hub(&pki, r#"cert = "server.pem", key = "server.key""#, "").await;
    let api = api(&hub, pki.client(None));

    let id = api
        .submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    assert!(!id.is_empty());
    // The message is stored and readable over HTTPS as well.
    let view = api.message(&id).await;
    assert_eq!(view["envelope"]["id"], id.as_str(), "{view}");
    // The peer address reaches the handlers as on plain HTTP.
    assert!(
        view["envelope"]["sender"]["remote_addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{view}"
    );

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = plain
        .post(format!("http://{}/api/v1/inbox/portal", hub.addr))
        .bearer_auth(SENDER)
        .header("content-type", "application/xml")
        .body(order("01001000", LEISTUNG, 10))
        .send()
        .await;
    assert!(r.is_err(), "plain HTTP got an answer: {r:?}");

    // A client that does not trust the hub's CA cannot connect either.
    let strange = Ca::new("Other CA");
    let untrusting = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(strange.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = untrusting
        .get(format!("https://{}/healthz", hub.addr))
        .send()
        .await;
    assert!(r.is_err(), "untrusted server certificate accepted: {r:?}");
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_negotiated_by_alpn() {
    use http_body_util::{BodyExt, Empty};
    let pki = Pki::new();
    let (_cfg, hub) = tls_hub(&pki, r#"cert = "server.pem", key = "server.key""#, "").await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(pem_cert(&pki.ca.pem())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let connect = |alpn: Vec<Vec<u8>>| {
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = alpn;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let addr = hub.addr;
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
            connector.connect(name, tcp).await.unwrap()
        }
    };

    let tls = connect(vec![b"h2".to_vec(), b"http/1.1".to_vec()]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(format!("https://{}/healthz", hub.addr))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    let _ = resp.into_body().collect().await.unwrap();

    // Clients offering only HTTP/1.1 get HTTP/1.1.
    let tls = connect(vec![b"http/1.1".to_vec()]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    hub.shutdown().await.unwrap();
}

fn pem_cert(pem: &str) -> rustls::pki_types::CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_client_certificate_is_enforced_in_the_handshake() {
    let pki = Pki::new();
    let (_cfg, hub) = tls_hub(
        &pki,
        r#"cert = "server.pem", key = "server.key", client_ca = "clients-ca.pem", client_auth = "required""#,
        "",
    )
    .await;
    let url = format!("https://{}/healthz", hub.addr);

    let r = pki.client(None).get(&url).send().await;
    assert!(r.is_err(), "no client certificate, yet: {r:?}");

    let foreign = Ca::new("Foreign CA").client("intruder");
    let r = pki.client(Some(&foreign)).get(&url).send().await;
    assert!(r.is_err(), "certificate of a foreign CA accepted: {r:?}");

    let good = pki.ca.client("bauamt");
    let r = pki.client(Some(&good)).get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The inbox still takes its bearer token on an mTLS connection.
    let api = api(&hub, pki.client(Some(&good)));
    api.submit("application/xml", order("01001000", LEISTUNG, 10))
        .await;
    hub.shutdown().await.unwrap();
}

fn xta_channel(fingerprint: &str) -> String {
    format!(
        r#"
[channels.xta]
type = "xta"
server_identity = "drehscheibe.test"

[[channels.xta.accounts]]
name = "bauamt"
identifier = "dvdv:02000000"
identifier_category = "Fachverfahren"
client_cert_sha256 = ["{fingerprint}"]

[[channels.xta.accounts]]
name = "kommune"
identifier = "dvdv:01001000"
tokens = [{{ value = "xta-token" }}]
"#
    )
}

async fn check_account_active(http: &reqwest::Client, url: &str) -> (u16, String) {
    let env = drehscheibe_xta::soap::request_envelope(
        "http://www.xta.de/XTA/CheckAccountActive",
        &format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        url,
        "",
        "",
    );
    let r = http
        .post(url)
        .header("content-type", "application/soap+xml; charset=utf-8")
        .body(env)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xta_accounts_are_bound_to_client_certificates() {
    let pki = Pki::new();
    let bauamt = pki.ca.client("bauamt");
    let (_cfg, hub) = tls_hub(
        &pki,
        r#"cert = "server.pem", key = "server.key", client_ca = "clients-ca.pem""#,
        &xta_channel(&bauamt.colon_fingerprint()),
    )
    .await;
    let url = format!("https://{}/xta/xta", hub.addr);

    // The bound certificate authenticates the account.
    let (status, text) = check_account_active(&pki.client(Some(&bauamt)), &url).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Envelope"), "{text}");
    assert!(!text.contains("Fault"), "{text}");

    // Another certificate of the same CA passes the handshake but is bound
    // to no account.
    let other = pki.ca.client("bauamt");
    let (status, text) = check_account_active(&pki.client(Some(&other)), &url).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("PermissionDeniedException"), "{text}");

    // client_auth is optional: no certificate, no token → permission denied;
    // the token account still works without a certificate.
    let (status, text) = check_account_active(&pki.client(None), &url).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("PermissionDeniedException"), "{text}");
    let env = drehscheibe_xta::soap::request_envelope(
        "http://www.xta.de/XTA/CheckAccountActive",
        "urn:uuid:1",
        &url,
        "",
        "",
    );
    let r = pki
        .client(None)
        .post(&url)
        .bearer_auth("xta-token")
        .header("content-type", "application/soap+xml; charset=utf-8")
        .body(env)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A certificate of a foreign CA is refused in the handshake even though
    // client certificates are optional.
    let foreign = Ca::new("Foreign CA").client("bauamt");
    let r = pki
        .client(Some(&foreign))
        .get(format!("https://{}/healthz", hub.addr))
        .send()
        .await;
    assert!(r.is_err(), "certificate of a foreign CA accepted: {r:?}");
    hub.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_the_open_request_and_stops_accepting() {
    let pki = Pki::new();
    let (_cfg, hub) = tls_hub(&pki, r#"cert = "server.pem", key = "server.key""#, "").await;
    let addr: SocketAddr = hub.addr;
    let token = hub.shutdown_token();

    // A request whose body is still on its way when shutdown starts.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let doc = order("01001000", LEISTUNG, 10);
    let (head, tail) = doc.split_at(doc.len() / 2);
    tx.send(Ok(head.to_vec())).await.unwrap();
    let http = pki.client(None);
    let request = tokio::spawn(
        http.post(format!("https://{addr}/api/v1/inbox/portal"))
            .bearer_auth(SENDER)
            .header("content-type", "application/xml")
            .body(body)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let stopping = tokio::spawn(hub.shutdown());
    token.cancelled().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No new connections are accepted.
    let r = pki
        .client(None)
        .get(format!("https://{addr}/healthz"))
        .send()
        .await;
    assert!(
        r.is_err(),
        "a new connection was served after shutdown: {r:?}"
    );

    // The open request is completed and answered.
    tx.send(Ok(tail.to_vec())).await.unwrap();
    drop(tx);
    let resp = request.await.unwrap().unwrap();
    let status = resp.status().as_u16();
    assert!(
        status == 202 || status == 503,
        "open request answered {status}"
    );
    stopping.await.unwrap().unwrap();
    // Within the configured grace (5 s) plus slack.
    assert!(started.elapsed() < Duration::from_secs(8));
}

/// A stream over an mpsc receiver (no tokio-stream dependency).
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
