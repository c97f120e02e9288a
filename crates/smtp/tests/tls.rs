//! STARTTLS and implicit TLS against the test server with a certificate
//! from a test CA generated with rcgen, plus login.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;

use common::{blobs, envelope, nasty_bytes, pki, request, settings, Behaviour, Part, SmtpServer};
use drehscheibe_model::Connector;
use drehscheibe_smtp::{SmtpConnector, SmtpTls};

const USER: &str = "drehscheibe";
const PASSWORD: &str = "pa55-w0rd-never-logged";

#[tokio::test]
async fn starttls_with_test_ca_then_login_then_mail() {
    let pki = pki();
    let server = SmtpServer::start(Behaviour {
        starttls: Some(pki.acceptor.clone()),
        auth: Some((USER.into(), PASSWORD.into())),
        ..Behaviour::default()
    })
    .await;
    let mut s = settings(server.addr);
    s.tls = SmtpTls::Starttls;
    s.username = Some(USER.into());
    s.password = Some(PASSWORD.into());
    s.ca_cert_pem = Some(pki.ca_pem.clone().into_bytes());
    let connector = SmtpConnector::new(s).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let document = nasty_bytes(10_000);
    let receipt = connector
        .deliver(request(envelope(Vec::new()), &document, blobs(dir.path())))
        .await
        .unwrap();
    assert!(
        receipt.detail.starts_with("SMTP 250 "),
        "{}",
        receipt.detail
    );

    let mails = server.received();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls, "the mail must travel encrypted");
    assert_eq!(mails[0].user.as_deref(), Some(USER));
    let parts = Part::parse(&mails[0].data).parts();
    assert_eq!(parts[1].decoded(), document);

    // STARTTLS came before the login and the mail; EHLO was repeated.
    let commands = server.commands();
    let position = |verb: &str| {
        commands
            .iter()
            .position(|c| c.to_ascii_uppercase().starts_with(verb))
            .unwrap_or_else(|| panic!("{verb} missing in {commands:?}"))
    };
    assert!(position("STARTTLS") < position("AUTH"), "{commands:?}");
    assert!(position("AUTH") < position("MAIL FROM"), "{commands:?}");
    assert_eq!(
        commands.iter().filter(|c| c.starts_with("EHLO")).count(),
        2,
        "{commands:?}"
    );
}

#[tokio::test]
async fn implicit_tls_with_test_ca() {
    let pki = pki();
    let server = SmtpServer::start(Behaviour {
        implicit_tls: Some(pki.acceptor.clone()),
        ..Behaviour::default()
    })
    .await;
    let mut s = settings(server.addr);
    s.tls = SmtpTls::Tls;
    s.ca_cert_pem = Some(pki.ca_pem.clone().into_bytes());
    let connector = SmtpConnector::new(s).unwrap();
    let dir = tempfile::tempdir().unwrap();
    connector
        .deliver(request(envelope(Vec::new()), b"<a/>", blobs(dir.path())))
        .await
        .unwrap();
    let mails = server.received();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls);
}

#[tokio::test]
async fn an_untrusted_certificate_fails_and_sends_nothing() {
    let pki = pki();
    let server = SmtpServer::start(Behaviour {
        starttls: Some(pki.acceptor.clone()),
        auth: Some((USER.into(), PASSWORD.into())),
        ..Behaviour::default()
    })
    .await;
    let mut s = settings(server.addr);
    s.tls = SmtpTls::Starttls;
    s.username = Some(USER.into());
    s.password = Some(PASSWORD.into());
    // No `ca_cert_pem`: the test CA is not trusted.
    let connector = SmtpConnector::new(s).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = connector
        .deliver(request(envelope(Vec::new()), b"<a/>", blobs(dir.path())))
        .await
        .unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert!(err.reason.contains("TLS"), "{}", err.reason);
    assert!(!err.reason.contains(PASSWORD));
    assert!(server.received().is_empty());
    let commands = server.commands();
    assert!(
        !commands
            .iter()
            .any(|c| c.starts_with("AUTH") || c.starts_with("MAIL")),
        "credentials or mail sent without trusted TLS: {commands:?}"
    );
}

#[tokio::test]
async fn a_server_without_starttls_is_never_used_in_plain_text() {
    let server = SmtpServer::start(Behaviour {
        auth: Some((USER.into(), PASSWORD.into())),
        ..Behaviour::default()
    })
    .await;
    let pki = pki();
    let mut s = settings(server.addr);
    s.tls = SmtpTls::Starttls;
    s.username = Some(USER.into());
    s.password = Some(PASSWORD.into());
    s.ca_cert_pem = Some(pki.ca_pem.into_bytes());
    let connector = SmtpConnector::new(s).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = connector
        .deliver(request(envelope(Vec::new()), b"<a/>", blobs(dir.path())))
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(err.reason.contains("STARTTLS"), "{}", err.reason);
    let commands = server.commands();
    assert!(
        !commands
            .iter()
            .any(|c| c.starts_with("AUTH") || c.starts_with("MAIL")),
        "{commands:?}"
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_refused_login_is_permanent_and_does_not_leak_the_password() {
    let pki = pki();
    let server = SmtpServer::start(Behaviour {
        starttls: Some(pki.acceptor.clone()),
        auth: Some((USER.into(), "the-right-one".into())),
        ..Behaviour::default()
    })
    .await;
    let mut s = settings(server.addr);
    s.tls = SmtpTls::Starttls;
    s.username = Some(USER.into());
    s.password = Some(PASSWORD.into());
    s.ca_cert_pem = Some(pki.ca_pem.into_bytes());
    let connector = SmtpConnector::new(s).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = connector
        .deliver(request(envelope(Vec::new()), b"<a/>", blobs(dir.path())))
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(err.reason.contains("535"), "{}", err.reason);
    assert!(!err.reason.contains(PASSWORD), "{}", err.reason);
    assert!(!format!("{connector:?}").contains(PASSWORD));
    assert!(server.received().is_empty());
}
