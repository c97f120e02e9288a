//! OSCI-Transport 1.2 between hubs on loopback (issue 14), with the
//! reference library's demo PKI (`crates/osci/tests/demo-pki`):
//!
//! * hub B is the Intermediär (channel `osci`, the `osci_manager` key
//!   pairs) with a postbox for bob and hub recipient dave, and it is also
//!   bob (an `osci-poller` channel fetching from its own Intermediär);
//! * hub A's `osci` connector delivers as alice (GetMessageId +
//!   StoreDelivery, content signed and end-to-end encrypted for bob);
//! * B's poller fetches (InitDialog, FetchDelivery, ExitDialog) and
//!   routes the delivery to an HTTP Fachverfahren — byte-exact, once;
//! * a crash between fetch and ExitDialog: fetched again, routed once;
//! * hostile requests on the wire get the matching OSCI code in a SOAP
//!   fault (HTTP 200) and store nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use drehscheibe_model::Intake;
use drehscheibe_osci::certs::TrustStore;
use drehscheibe_osci::client::{Client, ClientError, ClientSettings, OutContent};
use drehscheibe_osci::intermediary::KeyPair;
use drehscheibe_osci::remote::OsciPoller;
use drehscheibe_osci::{message, mime, xenc};
use drehscheibe_suite::osci::{cert, key_pair, pem, pki};
use drehscheibe_suite::receiver::Receiver;
use drehscheibe_suite::{
    free_port, multipart_body, order, start, Api, CrashAfterSubmit, TestConfig, SENDER,
};

const LEISTUNG: &str = "99050012104000";
const AGS: &str = "09162000";
const WAIT: Duration = Duration::from_secs(90);

fn pair_toml(name: &str) -> String {
    format!(
        r#"{{ key = "{}", cert = "{}" }}"#,
        pki(&format!("{name}.key.pem")).display(),
        pki(&format!("{name}.cert.pem")).display()
    )
}

/// Hub B's channels: the Intermediär (max `max` bytes per request) and
/// bob's poller on it.
fn b_channels(b_port: u16, max: &str, poller: bool) -> String {
    let mut s = format!(
        r#"
[channels.osci]
type = "osci"
cipher = {cipher}
signature = {signature}
ca_certs = ["{chain}"]
max_message_bytes = "{max}"

[[channels.osci.postboxes]]
name = "bob"
cert = "{bob}"
signature_cert = "{bob_sig}"

[[channels.osci.recipients]]
name = "dave"
key = "{dave_key}"
cert = "{dave_cert}"
"#,
        cipher = pair_toml("osci_manager_cipher_4096"),
        signature = pair_toml("osci_manager_signature_4096"),
        chain = pki("osci_manager_cipher_4096.chain.pem").display(),
        bob = pki("bob_cipher_4096.cert.pem").display(),
        bob_sig = pki("bob_signature_4096.cert.pem").display(),
        dave_key = pki("dave_cipher_4096.key.pem").display(),
        dave_cert = pki("dave_cipher_4096.cert.pem").display(),
    );
    if poller {
        s.push_str(&format!(
            r#"
[channels.bob]
type = "osci-poller"
url = "http://127.0.0.1:{b_port}/osci/osci"
intermediary_cipher_cert = "{icipher}"
intermediary_signature_cert = "{isig}"
cipher = {cipher}
signature = {signature}
ca_certs = ["{chain}"]
poll_interval = "100ms"
"#,
            icipher = pki("osci_manager_cipher_4096.cert.pem").display(),
            isig = pki("osci_manager_signature_4096.cert.pem").display(),
            cipher = pair_toml("bob_cipher_4096"),
            signature = pair_toml("bob_signature_4096"),
            chain = pki("osci_manager_cipher_4096.chain.pem").display(),
        ));
    }
    s
}

/// Hub A's tenant: the test Leistung goes to `addressee` via B's
/// Intermediär, as alice.
fn a_tenant(b_port: u16, addressee: &str) -> String {
    format!(
        r#"id = "alpha"
name = "Kommune alpha (A)"
ags = "{AGS}"

[connectors.osci]
type = "osci"
timeout = "60s"
retry = {{ max_attempts = 3, initial_backoff = "200ms" }}
url = "http://127.0.0.1:{b_port}/osci/osci"
intermediary_cipher_cert = "{icipher}"
intermediary_signature_cert = "{isig}"
cipher = {cipher}
signature = {signature}
ca_certs = ["{chain}"]
addressee_cert = "{addressee}"
subject = "Antrag"

[[routes]]
leistung = "{LEISTUNG}"
rule = "testorder@^1"
targets = {{ fachverfahren = "osci" }}
"#,
        icipher = pki("osci_manager_cipher_4096.cert.pem").display(),
        isig = pki("osci_manager_signature_4096.cert.pem").display(),
        cipher = pair_toml("alice_cipher_4096"),
        signature = pair_toml("alice_signature_4096"),
        chain = pki("osci_manager_cipher_4096.chain.pem").display(),
        addressee = pki(&format!("{addressee}_cipher_4096.cert.pem")).display(),
    )
}

fn client(b_port: u16, cipher: &str, signature: &str) -> Client {
    Client::new(ClientSettings {
        url: format!("http://127.0.0.1:{b_port}/osci/osci"),
        intermediary_cipher: cert("osci_manager_cipher_4096"),
        intermediary_signature: Some(cert("osci_manager_signature_4096")),
        cipher: key_pair(cipher),
        signature: key_pair(signature),
        trust: Arc::new(TrustStore::from_pem(&pem("osci_manager_cipher_4096.chain.pem")).unwrap()),
        allow_legacy: false,
        timeout: Duration::from_secs(30),
        tls_ca_pem: None,
    })
    .unwrap()
}

/// The parts of a multipart/form-data delivery.
async fn parts(got: &drehscheibe_suite::receiver::Received) -> Vec<Vec<u8>> {
    let ct = got.header("content-type");
    let b = ct
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let body = got.body.clone();
    let mut m = multer::Multipart::new(
        futures::stream::once(async move { Ok::<_, std::io::Error>(body) }),
        b,
    );
    let mut out = Vec::new();
    while let Some(f) = m.next_field().await.unwrap() {
        out.push(f.bytes().await.unwrap().to_vec());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivers_over_osci_to_bobs_postbox_and_b_fetches_it_exactly_once() {
    let rx = Receiver::start().await;
    let b_port = free_port();
    let b_cfg = TestConfig::write(
        &format!("127.0.0.1:{b_port}"),
        &b_channels(b_port, "150 MB", true),
        &[(
            "alpha",
            drehscheibe_suite::http_tenant("alpha", AGS, LEISTUNG, &rx.url("/fv"), ""),
        )],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    let a_cfg = TestConfig::write("127.0.0.1:0", "", &[("alpha", a_tenant(b_port, "bob"))]);
    let hub_a = start(&a_cfg.main).await.unwrap();
    let api_a = Api::new(hub_a.addr);
    let api_b = Api::new(hub_b.addr);

    let doc = order(AGS, LEISTUNG, 3000);
    let pdf: Vec<u8> = (0..300_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let boundary = "osci-roundtrip-boundary";
    let r = api_a
        .post(
            "portal",
            SENDER,
            &format!("multipart/form-data; boundary={boundary}"),
            multipart_body(boundary, &doc, &pdf),
            None,
        )
        .await;
    assert_eq!(r.status().as_u16(), 202);
    let a_id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // B's Fachverfahren gets document and attachment byte-exact.
    let got = rx.wait_accepted("/fv", 1, WAIT).await;
    assert_eq!(got.len(), 1);
    let p = parts(&got[0]).await;
    assert_eq!(p.len(), 2, "document and attachment");
    assert_eq!(p[0], doc);
    assert_eq!(p[1], pdf);

    // B's message came from bob's poller, keyed by the OSCI message id.
    let b_id = got[0].header("x-drehscheibe-message-id");
    let b_view = api_b.message(&b_id).await;
    let ids = &b_view["envelope"]["correlation_ids"];
    let osci_id = ids["osci.message_id"].as_str().unwrap().to_owned();
    assert_eq!(ids["osci.subject"], "Antrag");
    assert_eq!(b_view["envelope"]["idempotency_key"], osci_id.as_str());
    assert_eq!(b_view["envelope"]["sender"]["adapter"], "osci-poller");

    // A's delivery ends `delivered`, its receipt names the message id.
    let a_view = api_a.wait_state(&a_id, "delivered", WAIT).await;
    let receipt = a_view["deliveries"][0]["receipt"].as_str().unwrap();
    assert!(receipt.contains(&osci_id), "{receipt}");

    // alice's Laufzettel: created, forwarded, received (ExitDialog
    // confirmed it).
    let alice = client(b_port, "alice_cipher_4096", "alice_signature_4096");
    let mut d = alice.init_dialog().await.unwrap();
    let card = alice
        .fetch_process_card(&mut d, &osci_id)
        .await
        .unwrap()
        .expect("a Laufzettel");
    alice.exit_dialog(d).await.unwrap();
    assert_eq!(card.subject.as_deref(), Some("Antrag"));
    assert!(
        card.creation.is_some() && card.forwarding.is_some(),
        "{card:?}"
    );
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut d = alice.init_dialog().await.unwrap();
        let card = alice
            .fetch_process_card(&mut d, &osci_id)
            .await
            .unwrap()
            .unwrap();
        alice.exit_dialog(d).await.unwrap();
        if card.reception.is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never confirmed: {card:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Someone else's Laufzettel is not shown to dave.
    let dave = client(b_port, "dave_cipher_4096", "dave_signature_4096");
    let mut d = dave.init_dialog().await.unwrap();
    assert_eq!(
        dave.fetch_process_card(&mut d, &osci_id).await.unwrap(),
        None
    );
    dave.exit_dialog(d).await.unwrap();

    // Exactly once: the poller polls on, nothing more arrives.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.accepted("/fv").len(), 1, "delivered exactly once");

    hub_a.shutdown().await.unwrap();
    hub_b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_to_a_hub_recipient_becomes_a_hub_message() {
    let rx = Receiver::start().await;
    let b_port = free_port();
    let b_cfg = TestConfig::write(
        &format!("127.0.0.1:{b_port}"),
        &b_channels(b_port, "150 MB", false),
        &[(
            "alpha",
            drehscheibe_suite::http_tenant("alpha", AGS, LEISTUNG, &rx.url("/fv"), ""),
        )],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    // alice → dave, end-to-end encrypted for dave: B reads it with
    // dave's key.
    let alice = client(b_port, "alice_cipher_4096", "alice_signature_4096");
    let id = alice.get_message_id().await.unwrap();
    let doc = order(AGS, LEISTUNG, 100);
    let contents = [
        OutContent {
            name: "antrag.xml".into(),
            bytes: doc.clone().into(),
            attachment: false,
        },
        OutContent {
            name: "nachweis.pdf".into(),
            bytes: b"%PDF-1.7 nachweis".to_vec().into(),
            attachment: true,
        },
    ];
    let card = alice
        .store_delivery(
            &id,
            Some("An dave"),
            &cert("dave_cipher_4096"),
            &contents,
            true,
        )
        .await
        .unwrap();
    assert_eq!(card.message_id, id);
    assert!(card.creation.is_some());
    // The same contents again under the id: encrypted afresh they are
    // another delivery — the id is spent (9801), no second message; the
    // Laufzettel tells the sender the first one arrived (what the `osci`
    // connector asks after a lost answer).
    match alice
        .store_delivery(
            &id,
            Some("An dave"),
            &cert("dave_cipher_4096"),
            &contents,
            true,
        )
        .await
    {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "9801"),
        other => panic!("{other:?}"),
    }
    let mut d = alice.init_dialog().await.unwrap();
    let card = alice
        .fetch_process_card(&mut d, &id)
        .await
        .unwrap()
        .unwrap();
    assert!(card.reception.is_some(), "the hub took it in: {card:?}");
    alice.exit_dialog(d).await.unwrap();
    // Unencrypted, a retry is the same delivery: answered as stored.
    let id2 = alice.get_message_id().await.unwrap();
    let plain = [OutContent {
        name: "antrag.xml".into(),
        bytes: order(AGS, LEISTUNG, 150).into(),
        attachment: false,
    }];
    for _ in 0..2 {
        alice
            .store_delivery(&id2, None, &cert("dave_cipher_4096"), &plain, false)
            .await
            .unwrap();
    }
    let got = rx.wait_accepted("/fv", 2, WAIT).await;
    let got: Vec<_> = got
        .into_iter()
        .filter(|g| g.header("content-type").starts_with("multipart/"))
        .collect();
    assert_eq!(got.len(), 1, "the encrypted delivery with its attachment");
    let p = parts(&got[0]).await;
    assert_eq!(p[0], doc);
    assert_eq!(p[1], b"%PDF-1.7 nachweis");
    let view = Api::new(hub_b.addr)
        .message(&got[0].header("x-drehscheibe-message-id"))
        .await;
    let ids = &view["envelope"]["correlation_ids"];
    assert_eq!(ids["osci.recipient"], "dave");
    assert_eq!(ids["osci.message_id"], id.as_str());
    assert!(
        ids["osci.originator"].as_str().unwrap().contains("Alice"),
        "{ids:#}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.accepted("/fv").len(), 2, "one message per delivery");
    // A message id not issued by B, or issued to someone else: refused.
    let bob = client(b_port, "bob_cipher_4096", "bob_signature_4096");
    let foreign = bob.get_message_id().await.unwrap();
    match alice
        .store_delivery(&foreign, None, &cert("dave_cipher_4096"), &contents, true)
        .await
    {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "9801"),
        other => panic!("{other:?}"),
    }
    hub_b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_fetch_and_exit_dialog_refetches_and_routes_once() {
    let rx = Receiver::start().await;
    let b_port = free_port();
    // B without its own poller: the test runs bob's poller.
    let b_cfg = TestConfig::write(
        &format!("127.0.0.1:{b_port}"),
        &b_channels(b_port, "150 MB", false),
        &[(
            "alpha",
            drehscheibe_suite::http_tenant("alpha", AGS, LEISTUNG, &rx.url("/fv"), ""),
        )],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    let alice = client(b_port, "alice_cipher_4096", "alice_signature_4096");
    let id = alice.get_message_id().await.unwrap();
    let doc = order(AGS, LEISTUNG, 200);
    alice
        .store_delivery(
            &id,
            None,
            &cert("bob_cipher_4096"),
            &[OutContent {
                name: "antrag.xml".into(),
                bytes: doc.clone().into(),
                attachment: false,
            }],
            true,
        )
        .await
        .unwrap();
    let poller = OsciPoller {
        channel: "other".into(),
        client: client(b_port, "bob_cipher_4096", "bob_signature_4096"),
        poll_interval: Duration::from_millis(100),
        max_per_poll: 10,
    };
    let real: Arc<dyn Intake> = hub_b.hub.clone();
    let crashing: Arc<dyn Intake> = Arc::new(CrashAfterSubmit(real.clone()));
    // First poll: stored in the hub, then the "crash" before ExitDialog.
    assert!(poller.poll_once(&crashing).await.is_err());
    // The Intermediär still holds it (not confirmed): fetched again, the
    // intake knows it, ExitDialog confirms.
    assert_eq!(poller.poll_once(&real).await.unwrap(), 1);
    // Now the postbox is empty.
    assert_eq!(poller.poll_once(&real).await.unwrap(), 0);
    let got = rx.wait_accepted("/fv", 1, WAIT).await;
    assert_eq!(parts_or_body(&got[0]).await, doc);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.accepted("/fv").len(), 1, "routed once");
    let (status, list) = Api::new(hub_b.addr)
        .get("/api/v1/messages?limit=10", drehscheibe_suite::OPERATOR)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list:#}");
    hub_b.shutdown().await.unwrap();
}

/// The body of a delivery without attachments (or the document part).
async fn parts_or_body(got: &drehscheibe_suite::receiver::Received) -> Vec<u8> {
    if got.header("content-type").starts_with("multipart/") {
        parts(got).await.remove(0)
    } else {
        got.body.to_vec()
    }
}

/// What the Intermediär answers: (code in the fault, or `None` for a
/// normal response).
async fn post_raw(port: u16, body: Vec<u8>) -> (u16, Option<String>) {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/osci/osci"))
        .header("Content-Type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    let inner = message::Inner::parse(&bytes).unwrap();
    let code = inner.fault().map(|f| f.detail.trim().to_owned());
    (status, code)
}

/// A recording proxy between a client and B: what an attacker on the
/// wire sees.
async fn proxy(target: u16) -> (u16, Arc<std::sync::Mutex<Vec<Vec<u8>>>>) {
    let seen: Arc<std::sync::Mutex<Vec<Vec<u8>>>> = Arc::default();
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/osci/osci",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = s2.clone();
            async move {
                seen.lock().unwrap().push(body.to_vec());
                reqwest::Client::new()
                    .post(format!("http://127.0.0.1:{target}/osci/osci"))
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap()
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_their_osci_code_and_store_nothing() {
    let b_port = free_port();
    let b_cfg = TestConfig::write(
        &format!("127.0.0.1:{b_port}"),
        &b_channels(b_port, "2 MB", false),
        &[],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    let (p_port, seen) = proxy(b_port).await;
    let intermediary = key_pair("osci_manager_cipher_4096");

    // Not MIME at all.
    assert_eq!(
        post_raw(b_port, b"<hello/>".to_vec()).await,
        (200, Some("9100".into()))
    );
    // Larger than the channel's limit: refused while streaming.
    assert_eq!(
        post_raw(b_port, vec![b'x'; 3 * 1024 * 1024]).await,
        (200, Some("9904".into()))
    );

    // A genuine dialog through the recording proxy.
    let bob = client(p_port, "bob_cipher_4096", "bob_signature_4096");
    let mut d = bob.init_dialog().await.unwrap();
    assert_eq!(
        bob.fetch_delivery(&mut d, None)
            .await
            .unwrap()
            .map(|f| f.message_id),
        None
    );
    let fetch = seen.lock().unwrap().last().cloned().unwrap();
    // Replayed on the wire: its Response echoes a spent Challenge.
    assert_eq!(
        post_raw(b_port, fetch.clone()).await,
        (200, Some("9400".into()))
    );
    // A wrong SequenceNumber, correctly signed.
    let mut wrong = d.clone();
    wrong.set_sequence(d.sequence() + 5);
    match bob.fetch_delivery(&mut wrong, None).await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "9400"),
        other => panic!("{other:?}"),
    }
    // Ciphertext tampered with: the GCM tag fails.
    let mut tampered = fetch.clone();
    let at = tampered.len() - 200;
    tampered[at] ^= 1;
    assert_eq!(post_raw(b_port, tampered).await, (200, Some("9202".into())));
    // Encrypted for another key (bob's instead of the Intermediär's).
    let inner =
        xenc::decrypt_transport(&fetch, &intermediary.key, xenc::Algorithms::default()).unwrap();
    let for_bob = xenc::encrypt_transport(&inner, &cert("bob_cipher_4096")).unwrap();
    assert_eq!(post_raw(b_port, for_bob).await, (200, Some("9200".into())));
    // Signed content changed after signing (decrypted, edited,
    // re-encrypted for the Intermediär).
    let edited = String::from_utf8(inner.clone())
        .unwrap()
        .replace("LanguagesList=\"de\"", "LanguagesList=\"en\"");
    assert_ne!(edited.as_bytes(), inner.as_slice());
    let forged = xenc::encrypt_transport(edited.as_bytes(), &intermediary.cert).unwrap();
    assert_eq!(post_raw(b_port, forged).await, (200, Some("9601".into())));
    // Broken MIME inside a valid encryption.
    let broken =
        xenc::encrypt_transport(b"MIME-Version: 1.0\r\n\r\nno parts", &intermediary.cert).unwrap();
    assert_eq!(post_raw(b_port, broken).await, (200, Some("9100".into())));
    // An unsigned header block slipped in: the signature must cover
    // every block the Intermediär might read.
    let text = String::from_utf8(inner.clone()).unwrap();
    let extra = text.replacen(
        "</soap:Header>",
        r#"<x:Extra xmlns:x="urn:example:x" Id="extra">unsigned</x:Extra></soap:Header>"#,
        1,
    );
    let sent = xenc::encrypt_transport(extra.as_bytes(), &intermediary.cert).unwrap();
    assert_eq!(post_raw(b_port, sent).await, (200, Some("9602".into())));
    // A second ControlBlock (which one would be read?).
    let start = text.find("<osci:ControlBlock").unwrap();
    let end = text.find("</osci:ControlBlock>").unwrap() + "</osci:ControlBlock>".len();
    let twice = text.replacen(
        "</soap:Header>",
        &format!(
            "{}</soap:Header>",
            &text[start..end].replace("Id=\"controlblock\"", "Id=\"cb2\"")
        ),
        1,
    );
    let sent = xenc::encrypt_transport(twice.as_bytes(), &intermediary.cert).unwrap();
    assert_eq!(post_raw(b_port, sent).await, (200, Some("9100".into())));
    // The genuine dialog still works after all that.
    assert!(bob.fetch_delivery(&mut d, None).await.unwrap().is_none());
    bob.exit_dialog(d).await.unwrap();

    // A StoreDelivery for an addressee B does not know.
    let alice = client(b_port, "alice_cipher_4096", "alice_signature_4096");
    let id = alice.get_message_id().await.unwrap();
    let content = [OutContent {
        name: "a.xml".into(),
        bytes: order(AGS, LEISTUNG, 10).into(),
        attachment: false,
    }];
    match alice
        .store_delivery(&id, None, &cert("alice_cipher_4096"), &content, true)
        .await
    {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "9805"),
        other => panic!("{other:?}"),
    }
    // A StoreDelivery larger than the limit.
    let big = [OutContent {
        name: "big.bin".into(),
        bytes: vec![7u8; 3 * 1024 * 1024].into(),
        attachment: true,
    }];
    match alice
        .store_delivery(&id, None, &cert("bob_cipher_4096"), &big, false)
        .await
    {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "9904"),
        other => panic!("{other:?}"),
    }
    // Nothing was stored half: bob's postbox is empty, the id is unused.
    let mut d = bob.init_dialog().await.unwrap();
    assert!(bob.fetch_delivery(&mut d, None).await.unwrap().is_none());
    bob.exit_dialog(d).await.unwrap();
    alice
        .store_delivery(&id, None, &cert("bob_cipher_4096"), &content, true)
        .await
        .unwrap();
    let mut d = bob.init_dialog().await.unwrap();
    let f = bob.fetch_delivery(&mut d, None).await.unwrap().unwrap();
    assert_eq!(f.message_id, id);
    let contents = f.contents.unwrap();
    assert_eq!(contents[0].bytes, content[0].bytes);
    assert!(contents[0].signed, "alice's content signature verified");
    bob.exit_dialog(d).await.unwrap();
    // The raw framing of what went over the wire is the reference
    // library's: MIME headers in the body, two parts.
    let m = mime::parse(&fetch).unwrap();
    assert_eq!(m.parts.len(), 2);
    assert!(m.part("cid:osci_enc").is_some());
    hub_b.shutdown().await.unwrap();
}

#[test]
fn config_check_names_a_wrong_key_missing_cas_and_a_poller_without_keys() {
    let channels = format!(
        r#"
[channels.osci]
type = "osci"
cipher = {{ key = "{bob_key}", cert = "{manager_cert}" }}
signature = {signature}

[[channels.osci.postboxes]]
name = "bob"
cert = "{bob}"

[channels.fetch]
type = "osci-poller"
url = "http://127.0.0.1:9/osci/osci"
intermediary_cipher_cert = "{manager_cert}"
"#,
        bob_key = pki("bob_cipher_4096.key.pem").display(),
        manager_cert = pki("osci_manager_cipher_4096.cert.pem").display(),
        signature = pair_toml("osci_manager_signature_4096"),
        bob = pki("bob_cipher_4096.cert.pem").display(),
    );
    let cfg = TestConfig::write("127.0.0.1:0", &channels, &[]);
    let err = format!(
        "{:#}",
        drehscheibe_cli::runtime::load(&cfg.main).unwrap_err()
    );
    for expected in [
        "channels.osci.cipher: the key does not belong to the certificate",
        "channels.osci.ca_certs",
        "channels.osci.postboxes[0].signature_cert",
        "channels.fetch.cipher",
        "channels.fetch.signature",
    ] {
        assert!(err.contains(expected), "{expected:?} not in:\n{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_postbox_owner_fetches_and_a_used_id_delivers_once() {
    let b_port = free_port();
    let b_cfg = TestConfig::write(
        &format!("127.0.0.1:{b_port}"),
        &b_channels(b_port, "150 MB", false),
        &[],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    let alice = client(b_port, "alice_cipher_4096", "alice_signature_4096");
    let id = alice.get_message_id().await.unwrap();
    let content = |text: &str| {
        [OutContent {
            name: "a.xml".into(),
            bytes: order(AGS, LEISTUNG, text.len()).into(),
            attachment: false,
        }]
    };
    alice
        .store_delivery(&id, None, &cert("bob_cipher_4096"), &content("one"), true)
        .await
        .unwrap();
    // The same id again with other content: refused (9801), not "stored".
    match alice
        .store_delivery(
            &id,
            None,
            &cert("bob_cipher_4096"),
            &content("another"),
            true,
        )
        .await
    {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "9801"),
        other => panic!("{other:?}"),
    }
    // dave presents bob's cipher certificate (and, for the test, holds
    // its key) but signs as dave: not the postbox owner, nothing to see.
    let mallory = client(b_port, "bob_cipher_4096", "dave_signature_4096");
    let mut d = mallory.init_dialog().await.unwrap();
    assert!(mallory
        .fetch_delivery(&mut d, None)
        .await
        .unwrap()
        .is_none());
    assert!(mallory
        .fetch_delivery(&mut d, Some(&id))
        .await
        .unwrap()
        .is_none());
    assert_eq!(mallory.fetch_process_card(&mut d, &id).await.unwrap(), None);
    mallory.exit_dialog(d).await.unwrap();
    // bob still gets it, once.
    let bob = client(b_port, "bob_cipher_4096", "bob_signature_4096");
    let mut d = bob.init_dialog().await.unwrap();
    let f = bob.fetch_delivery(&mut d, None).await.unwrap().unwrap();
    assert_eq!(f.message_id, id);
    assert_eq!(f.contents.unwrap()[0].bytes, content("one")[0].bytes);
    let card = bob.fetch_process_card(&mut d, &id).await.unwrap().unwrap();
    assert!(card.forwarding.is_some());
    bob.exit_dialog(d).await.unwrap();
    let mut d = bob.init_dialog().await.unwrap();
    assert!(bob.fetch_delivery(&mut d, None).await.unwrap().is_none());
    bob.exit_dialog(d).await.unwrap();
    hub_b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_the_poller_cannot_read_is_taken_in_visibly() {
    let b_cfg = TestConfig::write("127.0.0.1:0", "", &[]);
    let hub = start(&b_cfg.main).await.unwrap();
    let intake: Arc<dyn Intake> = hub.hub.clone();
    let poller = OsciPoller {
        channel: "other".into(),
        client: client(9, "bob_cipher_4096", "bob_signature_4096"),
        poll_interval: Duration::from_secs(1),
        max_per_poll: 1,
    };
    let raw = b"MIME-Version: 1.0\r\n(the delivery as received)".to_vec();
    poller
        .take_in(
            &intake,
            drehscheibe_osci::client::Fetched {
                message_id: "bWlk".into(),
                subject: None,
                contents: Err(("9202".into(), "content decryption failed".into())),
                raw: raw.clone(),
                more: false,
                metadata: Vec::new(),
            },
        )
        .await
        .unwrap();
    let api = Api::new(hub.addr);
    let (_, list) = api
        .get("/api/v1/messages?limit=10", drehscheibe_suite::OPERATOR)
        .await;
    let id = list["items"][0]["id"].as_str().unwrap().to_owned();
    let view = api.wait_state(&id, "rejected", WAIT).await;
    let ids = &view["envelope"]["correlation_ids"];
    assert_eq!(ids["osci.message_id"], "bWlk");
    assert!(
        ids["osci.error"].as_str().unwrap().starts_with("9202"),
        "{ids:#}"
    );
    let att = &view["envelope"]["attachments"][0];
    assert_eq!(att["name"], "osci-delivery.mime");
    assert_eq!(att["blob"]["size"], raw.len());
    hub.shutdown().await.unwrap();
}

/// A proxy that forwards everything to B but answers the first request
/// of at least `min_bytes` with HTTP 502 after B processed it: a lost
/// answer.
async fn losing_proxy(target: u16, min_bytes: usize) -> u16 {
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = axum::Router::new().route(
        "/osci/osci",
        axum::routing::post(move |body: axum::body::Bytes| {
            let lost = lost.clone();
            async move {
                let big = body.len() >= min_bytes;
                let answer = reqwest::Client::new()
                    .post(format!("http://127.0.0.1:{target}/osci/osci"))
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                if big && !lost.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    (
                        axum::http::StatusCode::BAD_GATEWAY,
                        axum::body::Bytes::new(),
                    )
                } else {
                    (axum::http::StatusCode::OK, answer)
                }
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(l, app).await });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_store_delivery_answer_is_recognised_by_its_laufzettel() {
    let b_port = free_port();
    let b_cfg = TestConfig::write(
        &format!("127.0.0.1:{b_port}"),
        &b_channels(b_port, "150 MB", false),
        &[],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    // Only a StoreDelivery carries the 200 KB document; the answer to
    // the first one is lost: B stores it, A never hears. (Counting
    // requests would race with the connector's health check, whose
    // InitDialog/ExitDialog go through the same proxy.)
    let proxy = losing_proxy(b_port, 100_000).await;
    let a_cfg = TestConfig::write("127.0.0.1:0", "", &[("alpha", a_tenant(proxy, "bob"))]);
    let hub_a = start(&a_cfg.main).await.unwrap();
    let api_a = Api::new(hub_a.addr);
    let doc = order(AGS, LEISTUNG, 200_000);
    let a_id = api_a.submit("application/xml", doc.clone()).await;
    let view = api_a.wait_state(&a_id, "delivered", WAIT).await;
    let delivery = &view["deliveries"][0];
    // Two attempts: the lost one, then the retry that found the
    // Laufzettel of the first.
    assert_eq!(delivery["state"], "delivered", "{view:#}");
    let attempts = drehscheibe_suite::audit_actions(&view)
        .iter()
        .filter(|a| a.as_str() == "delivery_failed")
        .count();
    assert_eq!(attempts, 1, "{view:#}");
    let receipt = delivery["receipt"].as_str().unwrap();
    let checkpoint = delivery["checkpoint"].as_str().unwrap();
    assert!(receipt.contains(checkpoint), "{receipt} / {checkpoint}");
    // bob finds exactly one delivery: the first.
    let bob = client(b_port, "bob_cipher_4096", "bob_signature_4096");
    let mut d = bob.init_dialog().await.unwrap();
    let f = bob.fetch_delivery(&mut d, None).await.unwrap().unwrap();
    assert_eq!(f.message_id, checkpoint);
    assert_eq!(f.contents.unwrap()[0].bytes, doc);
    bob.exit_dialog(d).await.unwrap();
    let mut d = bob.init_dialog().await.unwrap();
    assert!(bob.fetch_delivery(&mut d, None).await.unwrap().is_none());
    bob.exit_dialog(d).await.unwrap();
    hub_a.shutdown().await.unwrap();
    hub_b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_health_check_talks_osci_to_the_intermediary() {
    let b_port = free_port();
    let b_cfg = TestConfig::write(
        &format!("127.0.0.1:{b_port}"),
        &b_channels(b_port, "150 MB", false),
        &[],
    );
    let hub_b = start(&b_cfg.main).await.unwrap();
    let dead = free_port();
    // gamma's connector also trusts a CA of ours whose CRL is past its
    // nextUpdate: the Intermediär (of the demo CA) still answers, and
    // `/readyz` names the CRL to renew.
    let (ours, root, root_key) = RevocationPki::new("alice_signature_4096");
    let dir = tempfile::tempdir().unwrap();
    let (root_path, crl_path) = (dir.path().join("root.pem"), dir.path().join("ours.crl"));
    std::fs::write(&root_path, &ours.root_pem).unwrap();
    std::fs::write(
        &crl_path,
        RevocationPki::crl_of(&root, &root_key, &[], (2025, 2026)),
    )
    .unwrap();
    let a_cfg = TestConfig::write(
        "127.0.0.1:0",
        "",
        &[
            ("alpha", a_tenant(b_port, "bob")),
            (
                "beta",
                a_tenant(dead, "bob")
                    .replace("id = \"alpha\"", "id = \"beta\"")
                    .replace(AGS, "09162001"),
            ),
            (
                "gamma",
                a_tenant(b_port, "bob")
                    .replace("id = \"alpha\"", "id = \"gamma\"")
                    .replace(AGS, "09162002")
                    .replace(
                        "ca_certs = [",
                        &format!(
                            "crls = [\"{}\"]\nca_certs = [\"{}\", ",
                            crl_path.display(),
                            root_path.display()
                        ),
                    ),
            ),
        ],
    );
    let hub_a = start(&a_cfg.main).await.unwrap();
    let api = Api::new(hub_a.addr);
    let end = std::time::Instant::now() + WAIT;
    let body = loop {
        let m = api.metrics().await;
        let up = |t: &str| {
            m.lines()
                .find(|l| {
                    l.starts_with(&format!(
                        "drehscheibe_connector_up{{tenant=\"{t}\",connector=\"osci\",kind=\"osci\"}}"
                    ))
                })
                .map(str::to_owned)
        };
        if let (Some(a), Some(b), Some(c)) = (up("alpha"), up("beta"), up("gamma")) {
            break (a, b, c);
        }
        assert!(std::time::Instant::now() < end, "no health figures:\n{m}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(body.0.ends_with(" 1"), "{body:?}");
    assert!(body.1.ends_with(" 0"), "{body:?}");
    assert!(body.2.ends_with(" 1"), "{body:?}");
    let (_, ready) = api.readyz().await;
    assert!(
        ready.contains("connector beta/osci (osci): unreachable")
            && ready.contains("OSCI InitDialog"),
        "{ready}"
    );
    assert!(!ready.contains("alpha/osci"), "{ready}");
    let gamma = ready
        .lines()
        .find(|l| l.contains("connector gamma/osci (osci)"))
        .unwrap_or_else(|| panic!("{ready}"));
    assert!(
        gamma.contains("ours.crl")
            && gamma.contains("past its nextUpdate")
            && !gamma.contains("unreachable"),
        "{gamma}"
    );
    hub_a.shutdown().await.unwrap();
    hub_b.shutdown().await.unwrap();
}

/// One client holds at most `max_dialogs_per_client` open dialogs and
/// `max_unused_ids_per_client` unused message ids; beyond, InitDialog and
/// GetMessageId are refused with 9000 naming the setting (retryable for
/// the hub's own connector), and ending a dialog or using an id gives its
/// place back. Another client is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_holds_at_most_its_quota_of_dialogs_and_message_ids() {
    let b_port = free_port();
    let channels = b_channels(b_port, "150 MB", false).replace(
        "max_message_bytes = \"150 MB\"",
        "max_message_bytes = \"150 MB\"\nmax_dialogs_per_client = 2\nmax_unused_ids_per_client = 2",
    );
    assert!(channels.contains("max_dialogs_per_client = 2"));
    let b_cfg = TestConfig::write(&format!("127.0.0.1:{b_port}"), &channels, &[]);
    let hub_b = start(&b_cfg.main).await.unwrap();
    let bob = client(b_port, "bob_cipher_4096", "bob_signature_4096");
    let first = bob.init_dialog().await.unwrap();
    let _second = bob.init_dialog().await.unwrap();
    let refused = bob.init_dialog().await.unwrap_err();
    match &refused {
        ClientError::Refused { code, text } => {
            assert_eq!(code, "9000", "{text}");
            assert!(text.contains("max_dialogs_per_client"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert!(refused.retryable());
    // alice is not bob.
    let alice = client(b_port, "alice_cipher_4096", "alice_signature_4096");
    let d = alice.init_dialog().await.unwrap();
    alice.exit_dialog(d).await.unwrap();
    // ExitDialog gives bob a place back.
    bob.exit_dialog(first).await.unwrap();
    let _third = bob.init_dialog().await.unwrap();

    // Message ids: two unused at most.
    let ids = [
        alice.get_message_id().await.unwrap(),
        alice.get_message_id().await.unwrap(),
    ];
    let refused = alice.get_message_id().await.unwrap_err();
    assert!(
        refused.to_string().contains("9000")
            && refused.to_string().contains("max_unused_ids_per_client"),
        "{refused}"
    );
    // Using one gives its place back.
    let content = [OutContent {
        name: "antrag.xml".into(),
        bytes: order(AGS, LEISTUNG, 10).into(),
        attachment: false,
    }];
    alice
        .store_delivery(&ids[0], None, &cert("bob_cipher_4096"), &content, false)
        .await
        .unwrap();
    alice.get_message_id().await.unwrap();
    match alice.get_message_id().await {
        Err(ClientError::Refused { code, text }) => {
            assert_eq!(code, "9000", "{text}");
            assert!(text.contains("max_unused_ids_per_client"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    // Inside a dialog the refusal leaves the dialog where it was: the
    // next request, with the challenge and sequence number of before,
    // is served.
    let mut d = alice.init_dialog().await.unwrap();
    let before = d.sequence();
    match alice.get_message_id_in(&mut d).await {
        Err(ClientError::Refused { code, text }) => {
            assert_eq!(code, "9000", "{text}");
            assert!(text.contains("max_unused_ids_per_client"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(d.sequence(), before);
    alice.exit_dialog(d).await.unwrap();
    // With a place free, GetMessageId in a dialog is served and the
    // dialog moves on.
    alice
        .store_delivery(&ids[1], None, &cert("bob_cipher_4096"), &content, false)
        .await
        .unwrap();
    let mut d = alice.init_dialog().await.unwrap();
    let id = alice.get_message_id_in(&mut d).await.unwrap();
    assert!(!ids.contains(&id), "{id}");
    assert_eq!(d.sequence(), before + 1);
    alice.exit_dialog(d).await.unwrap();
    assert!(alice.get_message_id().await.is_err(), "two unused again");
    hub_b.shutdown().await.unwrap();
}

/// A small RSA PKI made with rcgen: "CN=Drehscheibe Test Root" (with the
/// demo key `root_key`, alice's signature key in the tests) has issued new certificates for alice's two demo keys,
/// and signs the CRLs of [`RevocationPki::crl`].
struct RevocationPki {
    root_pem: String,
    cipher: KeyPair,
    signature: KeyPair,
    signature_serial: u64,
}

impl RevocationPki {
    fn new(root_key: &str) -> (Self, rcgen::Certificate, rcgen::KeyPair) {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyUsagePurpose};
        let rsa = |name: &str| {
            rcgen::KeyPair::from_pem_and_sign_algo(
                &pem(&format!("{name}.key.pem")),
                &rcgen::PKCS_RSA_SHA256,
            )
            .unwrap()
        };
        let root_key = rsa(root_key);
        let mut root = CertificateParams::default();
        root.distinguished_name
            .push(DnType::CommonName, "Drehscheibe Test Root");
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root = root.self_signed(&root_key).unwrap();
        let issue = |name: &str, serial: u64| {
            let key = rsa(name);
            let mut p = CertificateParams::default();
            p.distinguished_name
                .push(DnType::CommonName, format!("Revocable {name}"));
            p.serial_number = Some(serial.into());
            let cert = p.signed_by(&key, &root, &root_key).unwrap();
            KeyPair {
                key: xenc::private_key_from_pem(&pem(&format!("{name}.key.pem"))).unwrap(),
                cert: cert.der().to_vec(),
            }
        };
        let pki = Self {
            root_pem: root.pem(),
            cipher: issue("alice_cipher_4096", 0x4711),
            signature: issue("alice_signature_4096", 0x4712),
            signature_serial: 0x4712,
        };
        (pki, root, root_key)
    }

    fn crl(root: &rcgen::Certificate, key: &rcgen::KeyPair, revoked: &[u64]) -> String {
        Self::crl_of(root, key, revoked, (2026, 2099))
    }

    /// As [`Self::crl`], issued on 1 January of the first year and due
    /// again on 1 January of the second.
    fn crl_of(
        root: &rcgen::Certificate,
        key: &rcgen::KeyPair,
        revoked: &[u64],
        (this_year, next_year): (i32, i32),
    ) -> String {
        rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(this_year, 1, 1),
            next_update: rcgen::date_time_ymd(next_year, 1, 1),
            crl_number: 1u64.into(),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| rcgen::RevokedCertParams {
                    serial_number: (*s).into(),
                    revocation_time: rcgen::date_time_ymd(this_year, 1, 1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(root, key)
        .unwrap()
        .pem()
        .unwrap()
    }
}

/// `crls` on an `osci` channel: a client whose signature certificate the
/// CA's CRL lists is refused (9700, "revoked"), the same keys with
/// certificates the CRL does not list are served, and the demo partners
/// of another CA are not affected. A CRL no configured CA signed is a
/// configuration error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_client_certificate_is_refused_by_the_intermediary() {
    let (ours, root, root_key) = RevocationPki::new("alice_signature_4096");
    let dir = tempfile::tempdir().unwrap();
    let root_path = dir.path().join("root.pem");
    std::fs::write(&root_path, &ours.root_pem).unwrap();
    // Hub B's channels with our root among the CAs and `crl` as its CRL.
    let with_crl = |crl: &str, name: &str| {
        let crl_path = dir.path().join(name);
        std::fs::write(&crl_path, crl).unwrap();
        let b_port = free_port();
        let channels = b_channels(b_port, "150 MB", false).replace(
            "ca_certs = [",
            &format!(
                "crls = [\"{}\"]\nca_certs = [\"{}\", ",
                crl_path.display(),
                root_path.display()
            ),
        );
        (b_port, channels)
    };
    let settings = |b_port: u16, pair: (&KeyPair, &KeyPair)| ClientSettings {
        url: format!("http://127.0.0.1:{b_port}/osci/osci"),
        intermediary_cipher: cert("osci_manager_cipher_4096"),
        intermediary_signature: Some(cert("osci_manager_signature_4096")),
        cipher: pair.0.clone(),
        signature: pair.1.clone(),
        trust: Arc::new(TrustStore::from_pem(&pem("osci_manager_cipher_4096.chain.pem")).unwrap()),
        allow_legacy: false,
        timeout: Duration::from_secs(30),
        tls_ca_pem: None,
    };

    for (revoked, refused) in [(vec![0x0999], false), (vec![ours.signature_serial], true)] {
        let (b_port, channels) = with_crl(
            &RevocationPki::crl(&root, &root_key, &revoked),
            &format!("root-{}.crl", revoked[0]),
        );
        assert!(channels.contains("crls = ["), "{channels}");
        let cfg = TestConfig::write(&format!("127.0.0.1:{b_port}"), &channels, &[]);
        let hub = start(&cfg.main).await.unwrap();
        let revocable = Client::new(settings(b_port, (&ours.cipher, &ours.signature))).unwrap();
        match revocable.init_dialog().await {
            Ok(d) => {
                assert!(!refused, "a revoked certificate was served");
                revocable.exit_dialog(d).await.unwrap();
            }
            Err(ClientError::Refused { code, text }) => {
                assert!(refused, "{code} {text}");
                assert_eq!(code, "9700", "{text}");
                assert!(text.contains("revoked") && text.contains("4712"), "{text}");
            }
            Err(e) => panic!("{e}"),
        }
        // bob's certificates come from the demo CA, which has no CRL here.
        let bob = client(b_port, "bob_cipher_4096", "bob_signature_4096");
        let d = bob.init_dialog().await.unwrap();
        bob.exit_dialog(d).await.unwrap();
        hub.shutdown().await.unwrap();
    }

    // A CRL past its nextUpdate: our certificates' status is unknown,
    // refused; `/readyz` says which CRL to renew.
    let (b_port, channels) = with_crl(
        &RevocationPki::crl_of(&root, &root_key, &[], (2025, 2026)),
        "stale.crl",
    );
    let cfg = TestConfig::write(&format!("127.0.0.1:{b_port}"), &channels, &[]);
    let hub = start(&cfg.main).await.unwrap();
    let revocable = Client::new(settings(b_port, (&ours.cipher, &ours.signature))).unwrap();
    match revocable.init_dialog().await {
        // (both of our certificates are "unknown"; the Intermediär checks
        // the cipher certificate first: 9501)
        Err(ClientError::Refused { code, text }) => {
            assert_eq!(code, "9501", "{text}");
            assert!(
                text.contains("unknown") && text.contains("stale.crl"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    let api = Api::new(hub.addr);
    let (_, ready) = api.readyz().await;
    assert!(
        ready.contains("osci")
            && ready.contains("stale.crl")
            && ready.contains("past its nextUpdate"),
        "{ready}"
    );
    hub.shutdown().await.unwrap();

    // A CRL under the root's name, signed by another key (dave's):
    // refused at start.
    let (_, other_root, other_key) = RevocationPki::new("dave_signature_4096");
    let (b_port, channels) = with_crl(
        &RevocationPki::crl(&other_root, &other_key, &[]),
        "forged.crl",
    );
    let cfg = TestConfig::write(&format!("127.0.0.1:{b_port}"), &channels, &[]);
    let err = format!(
        "{:#}",
        drehscheibe_cli::runtime::load(&cfg.main).unwrap_err()
    );
    assert!(
        err.contains("channels.osci.crls") && err.contains("does not verify"),
        "{err}"
    );
}
