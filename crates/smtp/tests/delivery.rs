//! Plain-text SMTP to a recording test server on 127.0.0.1: the mail's
//! content, its headers, and how replies and failures are classified.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{blobs, envelope, nasty_bytes, put, request, settings, Behaviour, Part, SmtpServer};
use drehscheibe_model::{sha256_hex, AttachmentRef, BlobRef, Connector};
use drehscheibe_smtp::SmtpConnector;

#[tokio::test]
async fn mail_arrives_with_document_and_attachments_byte_exact() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = blobs(dir.path());
    let scan = nasty_bytes(70_000);
    let note = b"Bitte beachten:\n.eine Zeile mit Punkt\r\nEnde".to_vec();
    let scan_ref = put(&store, &scan).await;
    let note_ref = put(&store, &note).await;
    let env = envelope(vec![
        AttachmentRef {
            name: "nachweis".into(),
            filename: Some("scan.pdf".into()),
            content_type: "application/pdf".into(),
            blob: scan_ref.clone(),
        },
        AttachmentRef {
            name: "notiz".into(),
            filename: None,
            content_type: "text/plain".into(),
            blob: note_ref,
        },
    ]);
    let id = env.id;
    let received_at = env.received_at;
    let document = nasty_bytes(3_000);

    let connector = SmtpConnector::new(settings(server.addr)).unwrap();
    assert_eq!(connector.kind(), "smtp");
    let receipt = connector
        .deliver(request(env, &document, store.clone()))
        .await
        .unwrap();
    assert_eq!(
        receipt.detail,
        "SMTP 250 2.0.0 Ok: queued as T3ST1D to gewerbeamt@musterstadt.example, poststelle@musterstadt.example"
    );

    let mails = server.received();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.mail_from, "drehscheibe@hub.example.org");
    assert_eq!(
        mail.rcpt_to,
        [
            "gewerbeamt@musterstadt.example",
            "poststelle@musterstadt.example"
        ]
    );
    assert!(!mail.tls);
    assert!(mail.data.is_ascii(), "the mail must be 7-bit clean");

    let top = Part::parse(&mail.data);
    assert_eq!(
        top.header("Subject").unwrap(),
        format!("Drehscheibe: 99050012104000 {id} (fachverfahren)")
    );
    assert_eq!(
        top.header("Message-ID").unwrap(),
        format!("<{id}/fachverfahren/0@hub.example.org>")
    );
    assert_eq!(
        top.header("X-Drehscheibe-Message-Id").unwrap(),
        id.to_string()
    );
    assert_eq!(top.header("X-Drehscheibe-Target").unwrap(), "fachverfahren");
    assert_eq!(
        top.header("X-Drehscheibe-Leistung").unwrap(),
        "99050012104000"
    );
    assert_eq!(top.header("X-Drehscheibe-Tenant").unwrap(), "musterstadt");
    assert!(top
        .header("From")
        .unwrap()
        .contains("<drehscheibe@hub.example.org>"));
    let to = top.header("To").unwrap();
    assert!(to.contains("gewerbeamt@musterstadt.example"), "{to}");
    assert!(to.contains("poststelle@musterstadt.example"), "{to}");
    assert!(top.header("Date").is_some());
    assert!(top
        .header("Content-Type")
        .unwrap()
        .starts_with("multipart/mixed"));

    let parts = top.parts();
    assert_eq!(parts.len(), 4, "summary, document, two attachments");

    let summary = String::from_utf8(parts[0].decoded()).unwrap();
    assert!(parts[0]
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain"));
    for expected in [
        id.to_string(),
        "99050012104000".into(),
        "09162000".into(),
        "musterstadt".into(),
        received_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "antragsportal".into(),
        sha256_hex(&document),
        "gewerbeanmeldung.xml".into(),
        "scan.pdf (application/pdf, ".into(),
        scan_ref.sha256.clone(),
        "notiz (text/plain".into(),
    ] {
        assert!(
            summary.contains(&expected),
            "summary lacks {expected:?}:\n{summary}"
        );
    }

    let doc = &parts[1];
    assert_eq!(
        doc.header("Content-Type").unwrap(),
        "application/xml; charset=utf-8"
    );
    assert_eq!(
        doc.header("Content-Disposition").unwrap(),
        "attachment; filename=\"gewerbeanmeldung.xml\""
    );
    assert_eq!(doc.header("Content-Transfer-Encoding").unwrap(), "base64");
    assert_eq!(doc.decoded(), document, "document must arrive byte-exact");

    assert_eq!(parts[2].header("Content-Type").unwrap(), "application/pdf");
    assert_eq!(
        parts[2].header("Content-Disposition").unwrap(),
        "attachment; filename=\"scan.pdf\""
    );
    assert_eq!(parts[2].decoded(), scan);

    assert!(parts[3]
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(
        parts[3].header("Content-Disposition").unwrap(),
        "attachment; filename=\"notiz\""
    );
    assert_eq!(parts[3].decoded(), note, "line endings must be untouched");
    assert_eq!(store.opens.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_retry_carries_the_same_message_id_a_replay_a_new_one() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = blobs(dir.path());
    let env = envelope(Vec::new());
    let connector = SmtpConnector::new(settings(server.addr)).unwrap();

    let mut first = request(env.clone(), b"<a/>", store.clone());
    first.attempt = 1;
    let mut retry = request(env.clone(), b"<a/>", store.clone());
    retry.attempt = 2;
    let mut replay = request(env.clone(), b"<a/>", store.clone());
    replay.generation = 1;
    for r in [first, retry, replay] {
        connector.deliver(r).await.unwrap();
    }
    let ids: Vec<String> = server
        .received()
        .iter()
        .map(|m| {
            Part::parse(&m.data)
                .header("Message-ID")
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], ids[1], "attempts of one generation share the id");
    assert_ne!(ids[0], ids[2], "a replay is a new mail");
    assert_eq!(
        ids[2],
        format!("<{}/fachverfahren/1@hub.example.org>", env.id)
    );
    let summary = Part::parse(&server.received()[0].data).parts()[0].decoded();
    assert!(String::from_utf8(summary)
        .unwrap()
        .contains("Attachments: none"));
}

#[tokio::test]
async fn temporary_smtp_failure_451_is_retryable() {
    let server = SmtpServer::start(Behaviour {
        data_reply: Some("451 4.3.0 Mail server temporarily rejected message".into()),
        ..Behaviour::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let connector = SmtpConnector::new(settings(server.addr)).unwrap();
    let err = connector
        .deliver(request(envelope(Vec::new()), b"<a/>", blobs(dir.path())))
        .await
        .unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert!(err.reason.contains("451"), "{}", err.reason);
    assert!(
        err.reason.contains("temporarily rejected message"),
        "{}",
        err.reason
    );
    assert!(err.reason.contains("temporary failure"), "{}", err.reason);
    assert!(
        err.reason.contains(&server.addr.to_string()),
        "{}",
        err.reason
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn permanent_smtp_failure_550_is_not_retryable() {
    let server = SmtpServer::start(Behaviour {
        rcpt_reply: Some(
            "550 5.1.1 <gewerbeamt@musterstadt.example>: Recipient address rejected: User unknown"
                .into(),
        ),
        ..Behaviour::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let connector = SmtpConnector::new(settings(server.addr)).unwrap();
    let err = connector
        .deliver(request(envelope(Vec::new()), b"<a/>", blobs(dir.path())))
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(err.reason.contains("550"), "{}", err.reason);
    assert!(err.reason.contains("User unknown"), "{}", err.reason);
    assert!(err.reason.contains("permanent failure"), "{}", err.reason);
    assert!(server.received().is_empty());
    assert!(
        !server.commands().iter().any(|c| c == "DATA"),
        "no DATA after a refused recipient"
    );
}

#[tokio::test]
async fn nobody_listening_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let connector = SmtpConnector::new(settings(addr)).unwrap();
    let err = connector
        .deliver(request(envelope(Vec::new()), b"<a/>", blobs(dir.path())))
        .await
        .unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert!(err.reason.contains(&addr.to_string()), "{}", err.reason);
    assert!(
        err.reason.to_lowercase().contains("connect"),
        "{}",
        err.reason
    );
}

#[tokio::test]
async fn a_silent_server_times_out_retryably() {
    let server = SmtpServer::start(Behaviour {
        silent: true,
        ..Behaviour::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(server.addr);
    s.timeout = Duration::from_millis(400);
    let connector = SmtpConnector::new(s).unwrap();
    let started = Instant::now();
    let err = connector
        .deliver(request(envelope(Vec::new()), b"<a/>", blobs(dir.path())))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.retryable, "{err:?}");
    assert!(err.reason.contains("400ms"), "{}", err.reason);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn oversize_is_refused_before_reading_or_connecting() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = blobs(dir.path());
    let big = put(&store, &vec![7u8; 5_000]).await;
    let mut s = settings(server.addr);
    s.max_total_bytes = 4_096;
    let connector = SmtpConnector::new(s).unwrap();

    // The document fits, document plus attachment does not.
    let env = envelope(vec![AttachmentRef {
        name: "anlage".into(),
        filename: Some("anlage.bin".into()),
        content_type: "application/octet-stream".into(),
        blob: big,
    }]);
    let err = connector
        .deliver(request(env, &[1u8; 100], store.clone()))
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(err.reason.contains("too large"), "{}", err.reason);
    assert!(err.reason.contains("5100 bytes"), "{}", err.reason);
    assert!(err.reason.contains("4096"), "{}", err.reason);

    // The document alone is too large.
    let err = connector
        .deliver(request(envelope(Vec::new()), &[1u8; 4_097], store.clone()))
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err:?}");

    assert_eq!(store.opens.load(Ordering::SeqCst), 0, "no blob was read");
    // Give a (wrong) connection attempt time to show up.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.connections.load(Ordering::SeqCst), 0, "nothing sent");
    assert!(server.received().is_empty());

    // Exactly at the limit is fine.
    connector
        .deliver(request(envelope(Vec::new()), &[1u8; 4_096], store.clone()))
        .await
        .unwrap();
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn missing_or_mismatched_blobs_are_permanent() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = blobs(dir.path());
    let connector = SmtpConnector::new(settings(server.addr)).unwrap();
    let attachment = |blob: BlobRef| AttachmentRef {
        name: "anlage".into(),
        filename: None,
        content_type: "application/octet-stream".into(),
        blob,
    };

    let missing = BlobRef {
        sha256: sha256_hex(b"never stored"),
        size: 12,
    };
    let err = connector
        .deliver(request(
            envelope(vec![attachment(missing)]),
            b"<a/>",
            store.clone(),
        ))
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(
        err.reason.contains("\"anlage\"") && err.reason.contains("not found"),
        "{}",
        err.reason
    );

    // The file store itself notices a size that differs from the reference.
    let mut wrong = put(&store, b"twelve bytes").await;
    wrong.size = 5;
    let err = connector
        .deliver(request(
            envelope(vec![attachment(wrong)]),
            b"<a/>",
            store.clone(),
        ))
        .await
        .unwrap_err();
    assert!(!err.retryable, "{err:?}");
    assert!(err.reason.contains("corrupt"), "{}", err.reason);

    // A store that does not check: the connector reads at most the declared
    // size and refuses a blob that is longer or shorter.
    let stored = put(&store, b"twelve bytes").await;
    for (content, expect) in [
        (
            b"thirteen bytes".to_vec(),
            "has more bytes, the envelope declares 12",
        ),
        (b"short".to_vec(), "has 5 bytes, the envelope declares 12"),
    ] {
        *store.tampered.lock().unwrap() = Some(content);
        let err = connector
            .deliver(request(
                envelope(vec![attachment(stored.clone())]),
                b"<a/>",
                store.clone(),
            ))
            .await
            .unwrap_err();
        assert!(!err.retryable, "{err:?}");
        assert!(err.reason.contains(expect), "{}", err.reason);
    }

    assert_eq!(server.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn unknown_placeholders_and_missing_values_in_the_subject() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(server.addr);
    s.subject_template = "Antrag {leistung} fuer {kommune}/{tenant} {unbekannt}".into();
    let connector = SmtpConnector::new(s).unwrap();
    let mut env = envelope(Vec::new());
    env.leistung = None;
    connector
        .deliver(request(env, b"<a/>", blobs(dir.path())))
        .await
        .unwrap();
    let top = Part::parse(&server.received()[0].data);
    assert_eq!(
        top.header("Subject").unwrap(),
        "Antrag (unknown) fuer 09162000/musterstadt {unbekannt}"
    );
    assert!(top.header("X-Drehscheibe-Leistung").is_none());
}
