//! Test support: a small SMTP server on 127.0.0.1 that records what it
//! receives, a test PKI, a minimal MIME reader, and request builders.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use drehscheibe_model::{
    AttachmentRef, BlobError, BlobReader, BlobRef, BlobStore, DeliveryRequest, Envelope, MessageId,
    SenderIdentity,
};
use drehscheibe_smtp::{SmtpSettings, SmtpTls};
use drehscheibe_store::FsBlobStore;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

// ---------------------------------------------------------------- server

/// How the test server behaves.
#[derive(Clone, Default)]
pub struct Behaviour {
    /// Reply to every `RCPT TO` instead of `250` (e.g. `550 …`).
    pub rcpt_reply: Option<String>,
    /// Reply after the end of `DATA` instead of `250 …queued…`.
    pub data_reply: Option<String>,
    /// Accept connections but never say anything.
    pub silent: bool,
    /// Offer STARTTLS with this acceptor.
    pub starttls: Option<TlsAcceptor>,
    /// TLS from the first byte with this acceptor.
    pub implicit_tls: Option<TlsAcceptor>,
    /// Offer `AUTH PLAIN` and require this user/password before `MAIL`.
    pub auth: Option<(String, String)>,
}

/// One accepted mail.
#[derive(Debug, Clone)]
pub struct Received {
    pub helo: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// Message content after dot-unstuffing, without the final `.` line.
    pub data: Vec<u8>,
    /// Whether the session was encrypted when the mail was sent.
    pub tls: bool,
    /// User that logged in, if any.
    pub user: Option<String>,
}

/// A running test server.
pub struct SmtpServer {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Every command line received (AUTH lines redacted), over all sessions.
    pub commands: Arc<Mutex<Vec<String>>>,
    pub connections: Arc<AtomicUsize>,
}

impl SmtpServer {
    pub async fn start(behaviour: Behaviour) -> SmtpServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let commands = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let server = SmtpServer {
            addr,
            received: received.clone(),
            commands: commands.clone(),
            connections: connections.clone(),
        };
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                connections.fetch_add(1, Ordering::SeqCst);
                let session = Session {
                    behaviour: behaviour.clone(),
                    received: received.clone(),
                    commands: commands.clone(),
                };
                tokio::spawn(async move {
                    let _ = session.run(tcp).await;
                });
            }
        });
        server
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Session {
    behaviour: Behaviour,
    received: Arc<Mutex<Vec<Received>>>,
    commands: Arc<Mutex<Vec<String>>>,
}

async fn reply(stream: &mut BufReader<Box<dyn Io>>, text: &str) -> std::io::Result<()> {
    let s = stream.get_mut();
    s.write_all(text.as_bytes()).await?;
    s.write_all(b"\r\n").await?;
    s.flush().await
}

/// Read one line including its CRLF; `None` at end of stream.
async fn read_line(stream: &mut BufReader<Box<dyn Io>>) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    if stream.read_until(b'\n', &mut line).await? == 0 {
        return Ok(None);
    }
    Ok(Some(line))
}

fn address(arg: &str) -> String {
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg[start..].find('>').map_or(arg.len(), |i| start + i);
    arg[start..end].to_owned()
}

impl Session {
    async fn run(self, tcp: TcpStream) -> std::io::Result<()> {
        if self.behaviour.silent {
            let mut tcp = tcp;
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut sink).await;
            return Ok(());
        }
        let mut tls = false;
        let io: Box<dyn Io> = match &self.behaviour.implicit_tls {
            Some(acceptor) => {
                tls = true;
                Box::new(acceptor.accept(tcp).await?)
            }
            None => Box::new(tcp),
        };
        let mut stream = BufReader::new(io);
        reply(&mut stream, "220 mx.test.invalid ESMTP test server").await?;

        let mut helo = String::new();
        let mut user: Option<String> = None;
        let mut mail_from: Option<String> = None;
        let mut rcpt_to: Vec<String> = Vec::new();

        while let Some(line) = read_line(&mut stream).await? {
            let line = String::from_utf8_lossy(&line).trim_end().to_owned();
            let (verb, arg) = match line.split_once(' ') {
                Some((v, a)) => (v.to_ascii_uppercase(), a.to_owned()),
                None => (line.to_ascii_uppercase(), String::new()),
            };
            self.commands.lock().unwrap().push(if verb == "AUTH" {
                "AUTH <redacted>".to_owned()
            } else {
                line.clone()
            });
            match verb.as_str() {
                "EHLO" => {
                    helo = arg;
                    mail_from = None;
                    rcpt_to.clear();
                    let mut lines = vec!["mx.test.invalid greets you".to_owned()];
                    lines.push("8BITMIME".into());
                    lines.push("SIZE 104857600".into());
                    if self.behaviour.starttls.is_some() && !tls {
                        lines.push("STARTTLS".into());
                    }
                    if self.behaviour.auth.is_some() {
                        lines.push("AUTH PLAIN".into());
                    }
                    let last = lines.len() - 1;
                    let text = lines
                        .iter()
                        .enumerate()
                        .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
                        .collect::<Vec<_>>()
                        .join("\r\n");
                    reply(&mut stream, &text).await?;
                }
                "HELO" => {
                    helo = arg;
                    reply(&mut stream, "250 mx.test.invalid").await?;
                }
                "STARTTLS" => match (&self.behaviour.starttls, tls) {
                    (Some(acceptor), false) => {
                        reply(&mut stream, "220 2.0.0 Ready to start TLS").await?;
                        let inner = stream.into_inner();
                        let upgraded = acceptor.accept(inner).await?;
                        stream = BufReader::new(Box::new(upgraded));
                        tls = true;
                        helo.clear();
                        user = None;
                        mail_from = None;
                        rcpt_to.clear();
                    }
                    _ => reply(&mut stream, "502 5.5.1 STARTTLS not offered").await?,
                },
                "AUTH" => {
                    let Some((expected_user, expected_password)) = &self.behaviour.auth else {
                        reply(&mut stream, "502 5.5.1 AUTH not offered").await?;
                        continue;
                    };
                    let mut parts = arg.split_whitespace();
                    let mechanism = parts.next().unwrap_or_default().to_ascii_uppercase();
                    if mechanism != "PLAIN" {
                        reply(&mut stream, "504 5.5.4 mechanism not supported").await?;
                        continue;
                    }
                    let initial = match parts.next() {
                        Some(r) => r.to_owned(),
                        None => {
                            reply(&mut stream, "334 ").await?;
                            let Some(l) = read_line(&mut stream).await? else {
                                break;
                            };
                            String::from_utf8_lossy(&l).trim().to_owned()
                        }
                    };
                    let decoded = base64_decode(initial.as_bytes());
                    let fields: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
                    let ok = fields.len() == 3
                        && fields[1] == expected_user.as_bytes()
                        && fields[2] == expected_password.as_bytes();
                    if ok {
                        user = Some(expected_user.clone());
                        reply(&mut stream, "235 2.7.0 Authentication successful").await?;
                    } else {
                        reply(&mut stream, "535 5.7.8 Authentication credentials invalid").await?;
                    }
                }
                "MAIL" => {
                    if self.behaviour.auth.is_some() && user.is_none() {
                        reply(&mut stream, "530 5.7.0 Authentication required").await?;
                        continue;
                    }
                    mail_from = Some(address(&arg));
                    rcpt_to.clear();
                    reply(&mut stream, "250 2.1.0 Ok").await?;
                }
                "RCPT" => {
                    if mail_from.is_none() {
                        reply(&mut stream, "503 5.5.1 need MAIL first").await?;
                        continue;
                    }
                    match &self.behaviour.rcpt_reply {
                        Some(r) => reply(&mut stream, r).await?,
                        None => {
                            rcpt_to.push(address(&arg));
                            reply(&mut stream, "250 2.1.5 Ok").await?;
                        }
                    }
                }
                "DATA" => {
                    if mail_from.is_none() || rcpt_to.is_empty() {
                        reply(&mut stream, "503 5.5.1 no valid recipients").await?;
                        continue;
                    }
                    reply(&mut stream, "354 End data with <CR><LF>.<CR><LF>").await?;
                    let mut data = Vec::new();
                    loop {
                        let Some(line) = read_line(&mut stream).await? else {
                            return Ok(());
                        };
                        if line == b".\r\n" {
                            break;
                        }
                        // RFC 5321 4.5.2: remove one leading dot.
                        let line = if line.first() == Some(&b'.') {
                            &line[1..]
                        } else {
                            &line[..]
                        };
                        data.extend_from_slice(line);
                    }
                    let answer = self
                        .behaviour
                        .data_reply
                        .clone()
                        .unwrap_or_else(|| "250 2.0.0 Ok: queued as T3ST1D".into());
                    if answer.starts_with('2') {
                        self.received.lock().unwrap().push(Received {
                            helo: helo.clone(),
                            mail_from: mail_from.clone().unwrap_or_default(),
                            rcpt_to: rcpt_to.clone(),
                            data,
                            tls,
                            user: user.clone(),
                        });
                    }
                    mail_from = None;
                    rcpt_to.clear();
                    reply(&mut stream, &answer).await?;
                }
                "RSET" => {
                    mail_from = None;
                    rcpt_to.clear();
                    reply(&mut stream, "250 2.0.0 Ok").await?;
                }
                "NOOP" => reply(&mut stream, "250 2.0.0 Ok").await?,
                "QUIT" => {
                    reply(&mut stream, "221 2.0.0 Bye").await?;
                    return Ok(());
                }
                _ => reply(&mut stream, "502 5.5.2 command not recognized").await?,
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- PKI

/// A test CA and a server certificate for `localhost` / 127.0.0.1.
pub struct Pki {
    pub ca_pem: String,
    pub acceptor: TlsAcceptor,
}

pub fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Drehscheibe SMTP Test-CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let server = params.signed_by(&server_key, &ca, &ca_key).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server.der().clone(), ca.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        )
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        acceptor: TlsAcceptor::from(Arc::new(config)),
    }
}

// ---------------------------------------------------------------- MIME

/// A mail or MIME part: unfolded headers and raw body.
#[derive(Debug, Clone)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Part {
    pub fn parse(data: &[u8]) -> Part {
        let split = data
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("header/body separator");
        let head = std::str::from_utf8(&data[..split]).expect("ASCII headers");
        let body = data[split + 4..].to_vec();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                let last = headers.last_mut().expect("continuation after a header");
                last.1.push_str(line);
            } else {
                let (name, value) = line.split_once(':').expect("header line");
                headers.push((name.to_owned(), value.trim_start().to_owned()));
            }
        }
        Part { headers, body }
    }

    /// First header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header of this name.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The parts of a multipart body.
    pub fn parts(&self) -> Vec<Part> {
        let ct = self.header("Content-Type").expect("Content-Type");
        let boundary = ct
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("boundary="))
            .expect("boundary")
            .trim_matches('"');
        let delimiter = format!("--{boundary}");
        let body = std::str::from_utf8(&self.body).expect("ASCII body");
        let pieces: Vec<&str> = body.split(delimiter.as_str()).collect();
        assert!(pieces.len() >= 3, "multipart body with parts");
        assert!(
            pieces.last().unwrap().starts_with("--"),
            "closing delimiter present"
        );
        pieces[1..pieces.len() - 1]
            .iter()
            .map(|p| {
                let p = p.strip_prefix("\r\n").expect("CRLF after delimiter");
                let p = p.strip_suffix("\r\n").expect("CRLF before delimiter");
                Part::parse(p.as_bytes())
            })
            .collect()
    }

    /// The body with its Content-Transfer-Encoding undone.
    pub fn decoded(&self) -> Vec<u8> {
        match self
            .header("Content-Transfer-Encoding")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("base64") => base64_decode(&self.body),
            Some("quoted-printable") => qp_decode(&self.body),
            _ => self.body.clone(),
        }
    }
}

pub fn base64_decode(input: &[u8]) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c:?}"),
        }
    };
    let clean: Vec<u8> = input
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    assert_eq!(clean.len() % 4, 0, "base64 length");
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    for chunk in clean.chunks(4) {
        let pad = chunk.iter().filter(|c| **c == b'=').count();
        let n = chunk
            .iter()
            .map(|c| if *c == b'=' { 0 } else { value(*c) })
            .fold(0u32, |acc, v| (acc << 6) | v);
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    out
}

fn qp_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'=' {
            if input[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            let hex = std::str::from_utf8(&input[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    out
}

// ---------------------------------------------------------------- requests

/// FsBlobStore that counts `open` calls and can be told to hand out other
/// content than stored (a store that does not check sizes itself).
pub struct CountingBlobs {
    pub inner: FsBlobStore,
    pub opens: AtomicUsize,
    pub tampered: Mutex<Option<Vec<u8>>>,
}

#[async_trait]
impl BlobStore for CountingBlobs {
    async fn put(&self, reader: BlobReader, limit: u64) -> Result<BlobRef, BlobError> {
        self.inner.put(reader, limit).await
    }
    async fn open(&self, blob: &BlobRef) -> Result<BlobReader, BlobError> {
        self.opens.fetch_add(1, Ordering::SeqCst);
        if let Some(bytes) = self.tampered.lock().unwrap().clone() {
            return Ok(Box::pin(std::io::Cursor::new(bytes)));
        }
        self.inner.open(blob).await
    }
    async fn contains(&self, blob: &BlobRef) -> Result<bool, BlobError> {
        self.inner.contains(blob).await
    }
}

pub fn blobs(dir: &std::path::Path) -> Arc<CountingBlobs> {
    Arc::new(CountingBlobs {
        inner: FsBlobStore::open(dir).unwrap(),
        opens: AtomicUsize::new(0),
        tampered: Mutex::new(None),
    })
}

pub async fn put(store: &CountingBlobs, bytes: &[u8]) -> BlobRef {
    store
        .put(Box::pin(std::io::Cursor::new(bytes.to_vec())), u64::MAX)
        .await
        .unwrap()
}

pub fn envelope(attachments: Vec<AttachmentRef>) -> Envelope {
    Envelope {
        id: MessageId::new(),
        channel: "antragsportal".into(),
        sender: SenderIdentity {
            adapter: "http".into(),
            principal: "portal-token".into(),
            remote_addr: Some("127.0.0.1:5555".into()),
        },
        received_at: chrono::Utc::now(),
        content_type: "application/xml".into(),
        size: 0,
        sha256: String::new(),
        correlation_ids: Default::default(),
        idempotency_key: None,
        tenant: Some("musterstadt".into()),
        kommune_key: Some("09162000".into()),
        leistung: Some("99050012104000".into()),
        attachments,
    }
}

pub fn request(envelope: Envelope, document: &[u8], blobs: Arc<CountingBlobs>) -> DeliveryRequest {
    DeliveryRequest {
        envelope,
        target: "fachverfahren".into(),
        generation: 0,
        attempt: 1,
        document: Bytes::copy_from_slice(document),
        content_type: "application/xml; charset=utf-8".into(),
        filename: "gewerbeanmeldung.xml".into(),
        blobs,
        checkpoint: drehscheibe_model::Checkpoint::in_memory(),
    }
}

pub fn settings(addr: SocketAddr) -> SmtpSettings {
    SmtpSettings {
        host: addr.ip().to_string(),
        port: addr.port(),
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "Drehscheibe <drehscheibe@hub.example.org>".into(),
        to: vec![
            "gewerbeamt@musterstadt.example".into(),
            "poststelle@musterstadt.example".into(),
        ],
        subject_template: "Drehscheibe: {leistung} {id} ({target})".into(),
        max_total_bytes: 1 << 20,
        timeout: Duration::from_secs(10),
        ca_cert_pem: None,
    }
}

/// Every byte value, CRLF and a lone `.` line, to catch any mangling.
pub fn nasty_bytes(len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = b"\r\n.\r\n..\n.\r\r\n".to_vec();
    v.extend((0..len).map(|i| (i * 7 % 256) as u8));
    v
}
