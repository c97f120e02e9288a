//! XML encryption against the reference library: the transport layer of
//! the captured InitDialog and StoreDelivery requests (tests/captures/,
//! from ../shared/osci/) decrypts with the demo Intermediär key to exactly
//! the captured inner messages, and Dave's end-to-end encrypted content
//! container in the StoreDelivery opens with Dave's key. Then the other
//! direction (what this crate writes is what the library writes and opens
//! again), broken and tampered input (errors with OSCI feedback codes,
//! never panics), and the algorithm policy (legacy algorithms only when
//! allowed, unknown ones never) on EncryptedData built here with the
//! RustCrypto primitives directly.
#![allow(clippy::unwrap_used)]

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aes::{Aes128, Aes192, Aes256};
use aes_gcm::{AeadInPlace, AesGcm, KeyInit};
use base64::Engine;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockEncryptMut, KeyIvInit};
use drehscheibe_osci::c14n::Document;
use drehscheibe_osci::mime;
use drehscheibe_osci::xenc::{self, Algorithms, Reader, XencError};
use rand::RngCore;
use rsa::{Oaep, Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn key(name: &str) -> RsaPrivateKey {
    let pem = String::from_utf8(read(&format!("demo-pki/{name}.key.pem"))).unwrap();
    xenc::private_key_from_pem(&pem).unwrap()
}

fn cert(name: &str) -> Vec<u8> {
    let pem = String::from_utf8(read(&format!("demo-pki/{name}.cert.pem"))).unwrap();
    xenc::certificate_der_from_pem(&pem).unwrap()
}

/// The HTTP body of a captured request (after the blank line).
fn http_body(file: &str) -> Vec<u8> {
    let raw = read(&format!("captures/{file}"));
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    raw[at + 4..].to_vec()
}

const INTERMEDIARY: &str = "osci_manager_cipher_4096";

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn b64d(text: &str) -> Vec<u8> {
    let compact: String = text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .unwrap()
}

// ---------------------------------------------------------------------
// The captures

#[test]
fn the_outer_layer_of_both_captures_decrypts_to_exactly_the_inner_messages() {
    let intermediary = key(INTERMEDIARY);
    for name in ["initdialog", "storedelivery"] {
        let inner = xenc::decrypt_transport(
            &http_body(&format!("{name}.http")),
            &intermediary,
            Algorithms::default(),
        )
        .unwrap();
        assert!(
            inner == read(&format!("captures/{name}.inner.mime")),
            "{name}: the decrypted inner message differs from the capture"
        );
    }
}

/// The captured StoreDelivery's inner message, parsed: (raw, doc root).
fn store_delivery_inner() -> Vec<u8> {
    read("captures/storedelivery.inner.mime")
}

#[test]
fn daves_content_container_opens_with_daves_key() {
    let raw = store_delivery_inner();
    let msg = mime::parse(&raw).unwrap();
    let doc = Document::parse(msg.part("osci@message").unwrap().body).unwrap();
    let enc = doc.element_by_id("encdata_0").unwrap();
    let dave = key("dave_cipher_4096");
    // By the certificate the RetrievalMethod names, and without it.
    let dave_cert = cert("dave_cipher_4096");
    for reader_cert in [Some(dave_cert.as_slice()), None] {
        let plain = xenc::decrypt_element(
            &doc,
            Some(&msg),
            enc,
            &dave,
            reader_cert,
            Algorithms::default(),
        )
        .unwrap();
        let container = Document::parse(&plain).unwrap();
        let root = container.root();
        assert_eq!(root.local_name(), "ContentContainer");
        assert_eq!(
            root.namespace().as_deref(),
            Some("http://www.osci.de/2002/04/osci")
        );
        assert_eq!(root.attr("Id"), Some("contentcontainer1"));
        let content = container.element_by_id("content2").unwrap();
        assert_eq!(content.local_name(), "Base64Content");
        assert_eq!(b64d(&content.text()), b"Any encrypted content data.");
    }
}

#[test]
fn the_content_is_not_for_bob_nor_for_the_intermediary() {
    let raw = store_delivery_inner();
    let msg = mime::parse(&raw).unwrap();
    let doc = Document::parse(msg.part("osci@message").unwrap().body).unwrap();
    let enc = doc.element_by_id("encdata_0").unwrap();
    for who in ["bob_cipher_4096", INTERMEDIARY] {
        let err = xenc::decrypt_element(
            &doc,
            Some(&msg),
            enc,
            &key(who),
            None,
            Algorithms::default(),
        )
        .unwrap_err();
        assert_eq!(err, XencError::Key, "{who}");
        assert_eq!(err.feedback_code(), "9200");
    }
    // Dave's key, but asked for as Bob: no EncryptedKey names Bob.
    let bob_cert = cert("bob_cipher_4096");
    assert_eq!(
        xenc::decrypt_element(
            &doc,
            Some(&msg),
            enc,
            &key("dave_cipher_4096"),
            Some(&bob_cert),
            Algorithms::default()
        ),
        Err(XencError::Key)
    );
}

// ---------------------------------------------------------------------
// Broken and tampered transport messages

fn replace_once(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let at = hay
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)));
    let mut out = hay[..at].to_vec();
    out.extend_from_slice(with);
    out.extend_from_slice(&hay[at + needle.len()..]);
    out
}

/// (start, end) of the osci_enc part's content in a body.
fn cipher_part_span(body: &[u8]) -> (usize, usize) {
    let msg = mime::parse(body).unwrap();
    let part = msg.part("osci_enc").unwrap().body;
    let start = part.as_ptr() as usize - body.as_ptr() as usize;
    (start, start + part.len())
}

#[test]
fn the_wrong_private_key_is_feedback_9200() {
    let err = xenc::decrypt_transport(
        &http_body("initdialog.http"),
        &key("bob_cipher_4096"),
        Algorithms::default(),
    )
    .unwrap_err();
    assert_eq!(err, XencError::Key);
    assert_eq!(err.feedback_code(), "9200");
}

#[test]
fn a_changed_ciphertext_tag_or_iv_byte_is_feedback_9202() {
    let body = http_body("initdialog.http");
    let (start, end) = cipher_part_span(&body);
    let intermediary = key(INTERMEDIARY);
    // IV, ciphertext start, middle, last ciphertext byte, tag.
    for at in [start, start + 12, (start + end) / 2, end - 17, end - 1] {
        let mut bad = body.clone();
        bad[at] ^= 0x01;
        let err = xenc::decrypt_transport(&bad, &intermediary, Algorithms::default()).unwrap_err();
        assert_eq!(err, XencError::Decrypt, "byte {}", at - start);
        assert_eq!(err.feedback_code(), "9202");
    }
}

#[test]
fn truncated_missing_and_garbage_input_are_errors_with_codes() {
    let body = http_body("initdialog.http");
    let (start, end) = cipher_part_span(&body);
    let intermediary = key(INTERMEDIARY);
    let code = |b: &[u8]| {
        xenc::decrypt_transport(b, &intermediary, Algorithms::default())
            .unwrap_err()
            .feedback_code()
    };
    // The cipher part shortened (the framing intact): bytes lost, then
    // less than IV and tag.
    for keep in [end - start - 100, 20, 0] {
        let mut short = body[..start + keep].to_vec();
        short.extend_from_slice(&body[end..]);
        assert_eq!(
            xenc::decrypt_transport(&short, &intermediary, Algorithms::default()),
            Err(XencError::Decrypt),
            "{keep} bytes kept"
        );
    }
    // The body cut off (no closing boundary).
    assert!(matches!(
        xenc::decrypt_transport(&body[..start + 500], &intermediary, Algorithms::default()),
        Err(XencError::Mime(_))
    ));
    assert_eq!(code(&body[..start + 500]), "9100");
    // The part the CipherReference names is missing.
    let renamed = replace_once(&body, b"Content-ID: <osci_enc>", b"Content-ID: <other>");
    assert!(matches!(
        xenc::decrypt_transport(&renamed, &intermediary, Algorithms::default()),
        Err(XencError::Structure(_))
    ));
    assert_eq!(code(&renamed), "9100");
    // Garbage.
    for garbage in [
        &b""[..],
        b"hello",
        b"\x00\xff\xfe garbage \r\n\r\n\r\n",
        b"Content-Type: text/xml\r\n\r\n<a/>",
        b"Content-Type: Multipart/Related; boundary=Q\r\n\r\n--Q\r\n\r\nno xml\r\n--Q--\r\n",
        b"Content-Type: Multipart/Related; boundary=Q\r\n\r\n--Q\r\n\r\n<a><b/></a>\r\n--Q--\r\n",
        b"Content-Type: Multipart/Related; boundary=Q\r\n\r\n--Q--\r\n",
    ] {
        assert_eq!(
            code(garbage),
            "9100",
            "{:?}",
            String::from_utf8_lossy(garbage)
        );
    }
    // Random bytes after valid headers.
    let mut noise =
        b"MIME-Version: 1.0\r\nContent-Type: Multipart/Related; boundary=B\r\n\r\n".to_vec();
    let mut r = vec![0u8; 4096];
    rand::thread_rng().fill_bytes(&mut r);
    noise.extend_from_slice(&r);
    assert_eq!(code(&noise), "9100");
    // A broken EncryptedKey value: broken base64, then another value.
    let key_value = {
        let text = String::from_utf8_lossy(&body).into_owned();
        let from = text.find("<xenc:CipherValue>").unwrap() + "<xenc:CipherValue>".len();
        text[from..from + 40].to_owned()
    };
    let broken = replace_once(&body, key_value.as_bytes(), &[b'!'; 40]);
    assert_eq!(code(&broken), "9100");
    let mut other = key_value.clone().into_bytes();
    other[10] = if other[10] == b'A' { b'B' } else { b'A' };
    let other = replace_once(&body, key_value.as_bytes(), &other);
    assert_eq!(
        xenc::decrypt_transport(&other, &intermediary, Algorithms::default()),
        Err(XencError::Key)
    );
}

#[test]
fn every_cut_of_a_body_is_an_error_not_a_panic() {
    let body = http_body("initdialog.http");
    let intermediary = key(INTERMEDIARY);
    // Every cut loses the closing boundary: a framing error, found
    // before any RSA operation.
    let (start, _) = cipher_part_span(&body);
    let cuts = (0..start)
        .step_by(37)
        .chain([start + 1, start + 13, body.len() - 3]);
    for cut in cuts {
        let err = xenc::decrypt_transport(&body[..cut], &intermediary, Algorithms::default())
            .unwrap_err();
        assert_eq!(err.feedback_code(), "9100", "cut at {cut}: {err}");
    }
}

#[test]
fn unknown_and_malformed_transport_parameters_are_refused_by_name() {
    let body = http_body("initdialog.http");
    let intermediary = key(INTERMEDIARY);
    let ctr = replace_once(
        &body,
        b"http://www.w3.org/2009/xmlenc11#aes256-gcm",
        b"http://www.w3.org/2001/04/xmlenc#aes256-ctr",
    );
    let err = xenc::decrypt_transport(&ctr, &intermediary, Algorithms::default()).unwrap_err();
    assert_eq!(
        err,
        XencError::Unsupported("http://www.w3.org/2001/04/xmlenc#aes256-ctr".into())
    );
    assert_eq!(err.feedback_code(), "9202");
    let iv8 = replace_once(&body, b"Value=\"12\"", b"Value=\"8\"");
    assert!(matches!(
        xenc::decrypt_transport(&iv8, &intermediary, Algorithms::default()),
        Err(XencError::Unsupported(_))
    ));
    // The right IV length matters: 16 where 12 were used.
    let iv16 = replace_once(&body, b"Value=\"12\"", b"Value=\"16\"");
    assert_eq!(
        xenc::decrypt_transport(&iv16, &intermediary, Algorithms::default()),
        Err(XencError::Decrypt)
    );
    // Without osci128:IvLength: 16 bytes (the library's old default) are
    // tried, then xmlenc 1.1's 12 — the capture used 12.
    let text = String::from_utf8_lossy(&body).into_owned();
    let from = text.find("<osci128:IvLength").unwrap();
    let to = text.find("</osci128:IvLength>").unwrap() + "</osci128:IvLength>".len();
    let no_iv_length = replace_once(&body, &text.as_bytes()[from..to], b"");
    let inner = xenc::decrypt_transport(&no_iv_length, &intermediary, Algorithms::default());
    assert_eq!(inner.unwrap(), read("captures/initdialog.inner.mime"));
    // Not an EncryptedData in the xenc namespace.
    let foreign = replace_once(
        &body,
        b"<xenc:EncryptedData MimeType",
        b"<xenc:EncryptedData xmlns:xenc=\"urn:other\" MimeType",
    );
    assert!(matches!(
        xenc::decrypt_transport(&foreign, &intermediary, Algorithms::default()),
        Err(XencError::Structure(_))
    ));
}

// ---------------------------------------------------------------------
// Writing the transport layer

/// The envelope with the base64 text of certificates and cipher values
/// left out: the structure to compare.
fn skeleton(xml: &[u8]) -> String {
    let mut s = String::from_utf8(xml.to_vec()).unwrap();
    for tag in ["ds:X509Certificate", "xenc:CipherValue"] {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        let mut from = 0;
        while let Some(i) = s[from..].find(&open) {
            let a = from + i + open.len();
            let b = a + s[a..].find(&close).unwrap();
            s.replace_range(a..b, "");
            from = a + close.len();
        }
    }
    s
}

#[test]
fn what_is_written_has_the_structure_of_the_capture_and_opens_again() {
    let capture = http_body("initdialog.http");
    let inner = read("captures/initdialog.inner.mime");
    let recipient = cert(INTERMEDIARY);
    let body = xenc::encrypt_transport(&inner, &recipient).unwrap();

    assert_eq!(
        xenc::decrypt_transport(&body, &key(INTERMEDIARY), Algorithms::default()).unwrap(),
        inner
    );

    let ours = mime::parse(&body).unwrap();
    let theirs = mime::parse(&capture).unwrap();
    assert_eq!(ours.parts.len(), 2);
    // The top headers, boundary aside.
    let top = |b: &[u8]| {
        let text =
            String::from_utf8_lossy(&b[..b.windows(4).position(|w| w == b"\r\n\r\n").unwrap()])
                .into_owned();
        let from = text.find("boundary=").unwrap();
        let to = from + text[from..].find(';').unwrap();
        format!("{}{}", &text[..from], &text[to..])
    };
    assert_eq!(top(&body), top(&capture));
    assert!(body.starts_with(
        b"MIME-Version: 1.0\r\nContent-Type: Multipart/Related; boundary=MIME_boundary_"
    ));
    for (o, t) in ours.parts.iter().zip(&theirs.parts) {
        let names =
            |p: &mime::Part<'_>| p.headers.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(o), names(t));
        for h in ["content-type", "content-transfer-encoding", "content-id"] {
            assert_eq!(o.header(h), t.header(h), "{h}");
        }
    }
    // The envelope: the same bytes but for the base64 text, and a
    // Content-Length that is its length.
    let root = ours.part("osci@message").unwrap();
    let xml = root.body.strip_suffix(b"\r\n").unwrap();
    assert_eq!(
        root.header("content-length"),
        Some(xml.len().to_string().as_str())
    );
    let their_xml = theirs
        .part("osci@message")
        .unwrap()
        .body
        .strip_suffix(b"\r\n")
        .unwrap();
    assert_eq!(skeleton(xml), skeleton(their_xml));
    // The certificate in KeyInfo is the recipient's.
    let doc = Document::parse(xml).unwrap();
    let c = doc.elements_named("X509Certificate");
    assert_eq!(c.len(), 1);
    assert_eq!(b64d(&c[0].text()), recipient);
    // The cipher part: IV, ciphertext as long as the plaintext, tag.
    assert_eq!(
        ours.part("osci_enc").unwrap().body.len(),
        12 + inner.len() + 16
    );
    assert!(body.ends_with(b"--\r\n"));
    // A fresh boundary, key and IV every time.
    let again = xenc::encrypt_transport(&inner, &recipient).unwrap();
    assert_ne!(top_boundary(&again), top_boundary(&body));
    assert_ne!(
        mime::parse(&again).unwrap().part("osci_enc").unwrap().body[..12],
        ours.part("osci_enc").unwrap().body[..12]
    );
}

fn top_boundary(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..200]).into_owned();
    let from = text.find("boundary=").unwrap() + 9;
    text[from..from + text[from..].find(';').unwrap()].to_owned()
}

#[test]
fn a_one_megabyte_random_message_round_trips() {
    let mut inner = vec![0u8; 1024 * 1024];
    rand::thread_rng().fill_bytes(&mut inner);
    let body = xenc::encrypt_transport(&inner, &cert("alice_cipher_4096")).unwrap();
    let back =
        xenc::decrypt_transport(&body, &key("alice_cipher_4096"), Algorithms::default()).unwrap();
    assert!(back == inner);
    assert_eq!(
        xenc::decrypt_transport(&body, &key("bob_cipher_4096"), Algorithms::default()),
        Err(XencError::Key)
    );
}

#[test]
fn encrypting_for_something_that_is_not_an_rsa_certificate_fails() {
    for bad in [&b""[..], b"not a certificate"] {
        let err = xenc::encrypt_transport(b"x", bad).unwrap_err();
        assert!(matches!(err, XencError::Encrypt(_)), "{err}");
    }
}

// ---------------------------------------------------------------------
// Writing the content layer

const OSCI: &str = "http://www.osci.de/2002/04/osci";

/// A document holding Dave's certificate under an Id (as
/// NonIntermediaryCertificates does) and `enc`.
fn with_reader_certificates(enc: &str) -> String {
    format!(
        r#"<osci:ContentPackage xmlns:osci="{OSCI}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><osci:CipherCertificateReader Id="reader_dave"><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></osci:CipherCertificateReader>{enc}</osci:ContentPackage>"#,
        b64(&cert("dave_cipher_4096"))
    )
}

#[test]
fn content_encrypted_for_two_readers_opens_for_each_and_no_one_else() {
    let plaintext = format!(
        r#"<osci:ContentContainer xmlns:osci="{OSCI}" Id="cc1"><osci:Content><osci:Base64Content Id="c1">{}</osci:Base64Content></osci:Content></osci:ContentContainer>"#,
        b64("Für Dave & Alice <3".as_bytes())
    );
    let dave_cert = cert("dave_cipher_4096");
    let alice_cert = cert("alice_cipher_4096");
    let readers = [
        Reader {
            cert_der: &dave_cert,
            retrieval_id: Some("reader_dave"),
        },
        Reader {
            cert_der: &alice_cert,
            retrieval_id: None,
        },
    ];
    let enc = xenc::encrypt_element(plaintext.as_bytes(), "encdata_7", &readers).unwrap();

    // It stands alone (declares its own namespaces) ...
    let alone = Document::parse(enc.as_bytes()).unwrap();
    let root = alone.root();
    assert_eq!(root.local_name(), "EncryptedData");
    assert_eq!(
        root.namespace().as_deref(),
        Some("http://www.w3.org/2001/04/xmlenc#")
    );
    assert_eq!(root.attr("Id"), Some("encdata_7"));
    assert_eq!(root.attr("MimeType"), Some("text/xml"));
    let method = root.child("EncryptionMethod").unwrap();
    assert_eq!(method.attr("Algorithm"), Some(xenc::AES256_GCM));
    assert_eq!(method.child("IvLength").unwrap().attr("Value"), Some("12"));
    let keys = root
        .child("KeyInfo")
        .unwrap()
        .children_named("EncryptedKey");
    assert_eq!(keys.len(), 2);
    let rm = keys[0]
        .child("KeyInfo")
        .unwrap()
        .child("RetrievalMethod")
        .unwrap();
    assert_eq!(rm.attr("URI"), Some("#reader_dave"));
    assert_eq!(rm.attr("Type"), Some(xenc::X509_DATA_TYPE));
    assert_eq!(
        b64d(
            &keys[1]
                .child("KeyInfo")
                .unwrap()
                .child("X509Data")
                .unwrap()
                .child("X509Certificate")
                .unwrap()
                .text()
        ),
        alice_cert
    );
    for k in &keys {
        let m = k.child("EncryptionMethod").unwrap();
        assert_eq!(m.attr("Algorithm"), Some(xenc::RSA_OAEP));
        assert_eq!(
            m.child("MGF").unwrap().attr("Algorithm"),
            Some(xenc::MGF1_SHA256)
        );
        assert_eq!(
            m.child("DigestMethod").unwrap().attr("Algorithm"),
            Some(xenc::SHA256)
        );
    }

    // ... and inside a document with the reader certificates.
    let doc_text = with_reader_certificates(&enc);
    let doc = Document::parse(doc_text.as_bytes()).unwrap();
    let enc_el = doc.element_by_id("encdata_7").unwrap();
    for (who, c) in [
        ("dave_cipher_4096", &dave_cert),
        ("alice_cipher_4096", &alice_cert),
    ] {
        for reader_cert in [Some(c.as_slice()), None] {
            let plain = xenc::decrypt_element(
                &doc,
                None,
                enc_el,
                &key(who),
                reader_cert,
                Algorithms::default(),
            )
            .unwrap();
            assert_eq!(String::from_utf8(plain).unwrap(), plaintext, "{who}");
        }
    }
    let err = xenc::decrypt_element(
        &doc,
        None,
        enc_el,
        &key("bob_cipher_4096"),
        None,
        Algorithms::default(),
    )
    .unwrap_err();
    assert_eq!(err, XencError::Key);
    // A changed byte of the data.
    let value = enc_el
        .child("CipherData")
        .unwrap()
        .child("CipherValue")
        .unwrap()
        .text();
    let compact: String = value.split_whitespace().collect();
    let mut data = b64d(&compact);
    data[20] ^= 0x80;
    let tampered = doc_text.replacen(&value, &b64(&data), 1);
    let tdoc = Document::parse(tampered.as_bytes()).unwrap();
    assert_eq!(
        xenc::decrypt_element(
            &tdoc,
            None,
            tdoc.element_by_id("encdata_7").unwrap(),
            &key("alice_cipher_4096"),
            None,
            Algorithms::default()
        ),
        Err(XencError::Decrypt)
    );
}

#[test]
fn encrypt_element_refuses_no_readers_and_escapes_ids() {
    assert!(matches!(
        xenc::encrypt_element(b"x", "id", &[]),
        Err(XencError::Encrypt(_))
    ));
    let c = cert("dave_cipher_4096");
    let enc = xenc::encrypt_element(
        b"<a/>",
        "a\"b",
        &[Reader {
            cert_der: &c,
            retrieval_id: Some("x&y"),
        }],
    )
    .unwrap();
    let doc = Document::parse(enc.as_bytes()).unwrap();
    assert_eq!(doc.root().attr("Id"), Some("a\"b"));
    let rm = doc.elements_named("RetrievalMethod");
    assert_eq!(rm[0].attr("URI"), Some("#x&y"));
}

// ---------------------------------------------------------------------
// Algorithms: EncryptedData built here

/// An EncryptedData for Dave with the given data algorithm (and
/// IvLength element), key transport method (inner XML of the key's
/// EncryptionMethod) and raw blobs.
fn encrypted_data(
    data_alg: &str,
    iv_length: Option<&str>,
    key_alg: &str,
    key_params: &str,
    wrapped: &[u8],
    blob: &[u8],
) -> String {
    let iv = iv_length
        .map(|v| {
            format!(r#"<osci128:IvLength xmlns:osci128="http://xoev.de/transport/osci12/8" Value="{v}"/>"#)
        })
        .unwrap_or_default();
    format!(
        r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" Id="e" MimeType="text/xml"><xenc:EncryptionMethod Algorithm="{data_alg}">{iv}</xenc:EncryptionMethod><ds:KeyInfo><xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="{key_alg}">{key_params}</xenc:EncryptionMethod><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>"#,
        b64(wrapped),
        b64(blob)
    )
}

fn open(xml: &str, algorithms: Algorithms) -> Result<Vec<u8>, XencError> {
    let doc = Document::parse(xml.as_bytes()).unwrap();
    xenc::decrypt_element(
        &doc,
        None,
        doc.root(),
        &key("dave_cipher_4096"),
        None,
        algorithms,
    )
}

fn dave_public() -> RsaPublicKey {
    RsaPublicKey::from(&key("dave_cipher_4096"))
}

fn oaep_sha256(sym: &[u8]) -> Vec<u8> {
    dave_public()
        .encrypt(&mut rand::thread_rng(), Oaep::new::<sha2::Sha256>(), sym)
        .unwrap()
}

const OAEP_SHA256_PARAMS: &str = r#"<xenc11:MGF Algorithm="http://www.w3.org/2009/xmlenc11#mgf1sha256"/><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>"#;

const PLAIN: &[u8] = b"<osci:ContentContainer xmlns:osci=\"http://www.osci.de/2002/04/osci\"/> and 37 more bytes of text here!";

fn gcm_blob<A: KeyInit + AeadInPlace>(sym: &[u8], iv: &[u8]) -> Vec<u8> {
    let mut buf = PLAIN.to_vec();
    let tag = A::new_from_slice(sym)
        .unwrap()
        .encrypt_in_place_detached(GenericArray::from_slice(iv), b"", &mut buf)
        .unwrap();
    let mut blob = iv.to_vec();
    blob.extend(buf);
    blob.extend(tag);
    blob
}

/// CBC with ISO 10126 padding (random bytes, the last one the count).
fn cbc_blob<C: BlockEncryptMut + KeyIvInit>(sym: &[u8], block: usize) -> Vec<u8> {
    let mut iv = vec![0u8; block];
    rand::thread_rng().fill_bytes(&mut iv);
    let pad = block - PLAIN.len() % block;
    let mut buf = PLAIN.to_vec();
    let mut filler = vec![0u8; pad - 1];
    rand::thread_rng().fill_bytes(&mut filler);
    buf.extend(filler);
    buf.push(u8::try_from(pad).unwrap());
    let n = buf.len();
    let ct = C::new_from_slices(sym, &iv)
        .unwrap()
        .encrypt_padded_mut::<NoPadding>(&mut buf, n)
        .unwrap()
        .to_vec();
    let mut blob = iv;
    blob.extend(ct);
    blob
}

#[test]
fn aes_gcm_in_every_key_size_and_both_iv_lengths() {
    let mut rng = rand::thread_rng();
    let cases: Vec<(&str, usize, usize)> = vec![
        (xenc::AES128_GCM, 16, 12),
        ("http://www.w3.org/2009/xmlenc11#aes192-gcm", 24, 12),
        (xenc::AES256_GCM, 32, 12),
        (xenc::AES128_GCM, 16, 16),
        (xenc::AES256_GCM, 32, 16),
    ];
    for (alg, key_len, iv_len) in cases {
        let mut sym = vec![0u8; key_len];
        rng.fill_bytes(&mut sym);
        let mut iv = vec![0u8; iv_len];
        rng.fill_bytes(&mut iv);
        let blob = match (key_len, iv_len) {
            (16, 12) => gcm_blob::<AesGcm<Aes128, U12>>(&sym, &iv),
            (24, 12) => gcm_blob::<AesGcm<Aes192, U12>>(&sym, &iv),
            (32, 12) => gcm_blob::<AesGcm<Aes256, U12>>(&sym, &iv),
            (16, 16) => gcm_blob::<AesGcm<Aes128, U16>>(&sym, &iv),
            _ => gcm_blob::<AesGcm<Aes256, U16>>(&sym, &iv),
        };
        let wrapped = oaep_sha256(&sym);
        let declared = iv_len.to_string();
        let xml = encrypted_data(
            alg,
            Some(&declared),
            xenc::RSA_OAEP,
            OAEP_SHA256_PARAMS,
            &wrapped,
            &blob,
        );
        assert_eq!(
            open(&xml, Algorithms::default()).unwrap(),
            PLAIN,
            "{alg} iv {iv_len}"
        );
        // Without IvLength: either length is found by its tag.
        let xml = encrypted_data(
            alg,
            None,
            xenc::RSA_OAEP,
            OAEP_SHA256_PARAMS,
            &wrapped,
            &blob,
        );
        assert_eq!(
            open(&xml, Algorithms::default()).unwrap(),
            PLAIN,
            "{alg} iv {iv_len}, undeclared"
        );
    }
    // A key of the wrong size for the algorithm.
    let sym = [1u8; 16];
    let blob = gcm_blob::<AesGcm<Aes128, U12>>(&sym, &[2u8; 12]);
    let xml = encrypted_data(
        xenc::AES256_GCM,
        Some("12"),
        xenc::RSA_OAEP,
        OAEP_SHA256_PARAMS,
        &oaep_sha256(&sym),
        &blob,
    );
    assert_eq!(open(&xml, Algorithms::default()), Err(XencError::Decrypt));
}

#[test]
fn rsa_oaep_with_each_mgf_and_digest() {
    let sym = [0x5Au8; 32];
    let blob = gcm_blob::<AesGcm<Aes256, U12>>(&sym, &[3u8; 12]);
    let pk = dave_public();
    let mut rng = rand::thread_rng();
    let mgf =
        |m: &str| format!(r#"<xenc11:MGF Algorithm="http://www.w3.org/2009/xmlenc11#mgf1{m}"/>"#);
    let dm = |d: &str| format!(r#"<ds:DigestMethod Algorithm="{d}"/>"#);
    let cases: Vec<(&str, String, Oaep)> = vec![
        // The xmlenc 1.1 defaults: MGF1-SHA1, SHA-1.
        (xenc::RSA_OAEP, String::new(), Oaep::new::<sha1::Sha1>()),
        (
            xenc::RSA_OAEP,
            mgf("sha1") + &dm("http://www.w3.org/2000/09/xmldsig#sha1"),
            Oaep::new::<sha1::Sha1>(),
        ),
        (
            xenc::RSA_OAEP,
            mgf("sha512") + &dm("http://www.w3.org/2001/04/xmlenc#sha512"),
            Oaep::new::<sha2::Sha512>(),
        ),
        (
            xenc::RSA_OAEP,
            mgf("sha384") + &dm("http://www.w3.org/2001/04/xmldsig-more#sha384"),
            Oaep::new::<sha2::Sha384>(),
        ),
        (
            xenc::RSA_OAEP,
            mgf("sha224") + &dm("http://www.w3.org/2001/04/xmlenc#sha256"),
            Oaep::new_with_mgf_hash::<sha2::Sha256, sha2::Sha224>(),
        ),
        (
            xenc::RSA_OAEP,
            mgf("sha1") + &dm("http://www.w3.org/2001/04/xmlenc#sha256"),
            Oaep::new_with_mgf_hash::<sha2::Sha256, sha1::Sha1>(),
        ),
        // xmlenc 1.0's rsa-oaep-mgf1p: MGF1-SHA1, SHA-1 unless stated.
        (
            xenc::RSA_OAEP_MGF1P,
            String::new(),
            Oaep::new::<sha1::Sha1>(),
        ),
        (
            xenc::RSA_OAEP_MGF1P,
            dm("http://www.w3.org/2001/04/xmlenc#sha256"),
            Oaep::new_with_mgf_hash::<sha2::Sha256, sha1::Sha1>(),
        ),
        // With a label.
        (
            xenc::RSA_OAEP,
            format!("<xenc:OAEPparams>{}</xenc:OAEPparams>", b64(b"osci")),
            Oaep::new_with_label::<sha1::Sha1, _>("osci"),
        ),
    ];
    for (alg, params, padding) in cases {
        let wrapped = pk.encrypt(&mut rng, padding, &sym).unwrap();
        let xml = encrypted_data(xenc::AES256_GCM, Some("12"), alg, &params, &wrapped, &blob);
        assert_eq!(
            open(&xml, Algorithms::default()).unwrap(),
            PLAIN,
            "{alg} {params}"
        );
    }
    // A mismatch between what is declared and what was used: wrong key.
    let wrapped = pk
        .encrypt(&mut rng, Oaep::new::<sha2::Sha512>(), &sym)
        .unwrap();
    let xml = encrypted_data(
        xenc::AES256_GCM,
        Some("12"),
        xenc::RSA_OAEP,
        OAEP_SHA256_PARAMS,
        &wrapped,
        &blob,
    );
    assert_eq!(open(&xml, Algorithms::default()), Err(XencError::Key));
}

#[test]
fn legacy_algorithms_only_when_allowed() {
    let mut rng = rand::thread_rng();
    let mut sym32 = [0u8; 32];
    rng.fill_bytes(&mut sym32);
    let mut sym24 = [0u8; 24];
    rng.fill_bytes(&mut sym24);
    let mut sym16 = [0u8; 16];
    rng.fill_bytes(&mut sym16);
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        (
            xenc::AES256_CBC,
            sym32.to_vec(),
            cbc_blob::<cbc::Encryptor<Aes256>>(&sym32, 16),
        ),
        (
            xenc::AES192_CBC,
            sym24.to_vec(),
            cbc_blob::<cbc::Encryptor<Aes192>>(&sym24, 16),
        ),
        (
            xenc::AES128_CBC,
            sym16.to_vec(),
            cbc_blob::<cbc::Encryptor<Aes128>>(&sym16, 16),
        ),
        (
            xenc::TRIPLEDES_CBC,
            sym24.to_vec(),
            cbc_blob::<cbc::Encryptor<des::TdesEde3>>(&sym24, 8),
        ),
    ];
    for (alg, sym, blob) in cases {
        let xml = encrypted_data(
            alg,
            None,
            xenc::RSA_OAEP,
            OAEP_SHA256_PARAMS,
            &oaep_sha256(&sym),
            &blob,
        );
        let err = open(&xml, Algorithms::default()).unwrap_err();
        assert_eq!(err, XencError::Legacy(alg.into()));
        assert_eq!(err.feedback_code(), "9202");
        assert_eq!(
            open(&xml, Algorithms { allow_legacy: true }).unwrap(),
            PLAIN,
            "{alg}"
        );
        // A changed last block breaks the padding or the content.
        let mut bad = blob.clone();
        let n = bad.len();
        bad[n - 9] ^= 0xFF;
        let xml = encrypted_data(
            alg,
            None,
            xenc::RSA_OAEP,
            OAEP_SHA256_PARAMS,
            &oaep_sha256(&sym),
            &bad,
        );
        assert_ne!(
            open(&xml, Algorithms::WITH_LEGACY).ok().as_deref(),
            Some(PLAIN)
        );
    }
    // RSA-PKCS1-v1_5 key transport, with a modern and a legacy cipher.
    let wrapped = dave_public()
        .encrypt(&mut rng, Pkcs1v15Encrypt, &sym32)
        .unwrap();
    let blob = gcm_blob::<AesGcm<Aes256, U12>>(&sym32, &[4u8; 12]);
    let xml = encrypted_data(
        xenc::AES256_GCM,
        Some("12"),
        xenc::RSA_1_5,
        "",
        &wrapped,
        &blob,
    );
    assert_eq!(
        open(&xml, Algorithms::default()),
        Err(XencError::Legacy(xenc::RSA_1_5.into()))
    );
    assert_eq!(open(&xml, Algorithms::WITH_LEGACY).unwrap(), PLAIN);
    let wrapped = dave_public()
        .encrypt(&mut rng, Pkcs1v15Encrypt, &sym16)
        .unwrap();
    let blob = cbc_blob::<cbc::Encryptor<Aes128>>(&sym16, 16);
    let xml = encrypted_data(xenc::AES128_CBC, None, xenc::RSA_1_5, "", &wrapped, &blob);
    assert!(matches!(
        open(&xml, Algorithms::default()),
        Err(XencError::Legacy(_))
    ));
    assert_eq!(open(&xml, Algorithms::WITH_LEGACY).unwrap(), PLAIN);
}

#[test]
fn rsa_1_5_rejects_implicitly_so_a_padding_error_looks_like_bad_data() {
    // Bleichenbacher: with PKCS#1 v1.5 a broken padding (another key, a
    // changed value) must answer like a key that does not open the data.
    let mut rng = rand::thread_rng();
    let sym = [0x33u8; 32];
    let blob = gcm_blob::<AesGcm<Aes256, U12>>(&sym, &[4u8; 12]);
    let for_bob = RsaPublicKey::from(&key("bob_cipher_4096"))
        .encrypt(&mut rng, Pkcs1v15Encrypt, &sym)
        .unwrap();
    let mut mangled = dave_public()
        .encrypt(&mut rng, Pkcs1v15Encrypt, &sym)
        .unwrap();
    mangled[100] ^= 1;
    // A well-padded key of the wrong length.
    let short = dave_public()
        .encrypt(&mut rng, Pkcs1v15Encrypt, &sym[..7])
        .unwrap();
    for wrapped in [for_bob, mangled, short] {
        let xml = encrypted_data(
            xenc::AES256_GCM,
            Some("12"),
            xenc::RSA_1_5,
            "",
            &wrapped,
            &blob,
        );
        let err = open(&xml, Algorithms::WITH_LEGACY).unwrap_err();
        assert_eq!(err, XencError::Decrypt);
        assert_eq!(err.feedback_code(), "9202");
    }
}

#[test]
fn rsa_work_per_element_is_bounded_without_the_readers_certificate() {
    // Nine readers before Dave: without his certificate only the first
    // MAX_KEY_ATTEMPTS keys are tried; with it, his alone.
    let bob = cert("bob_cipher_4096");
    let dave = cert("dave_cipher_4096");
    let mut readers = vec![
        Reader {
            cert_der: &bob,
            retrieval_id: None,
        };
        9
    ];
    readers.push(Reader {
        cert_der: &dave,
        retrieval_id: None,
    });
    assert!(readers.len() > xenc::MAX_KEY_ATTEMPTS);
    let enc = xenc::encrypt_element(b"<x/>", "e", &readers).unwrap();
    let doc = Document::parse(enc.as_bytes()).unwrap();
    let dave_key = key("dave_cipher_4096");
    assert_eq!(
        xenc::decrypt_element(
            &doc,
            None,
            doc.root(),
            &dave_key,
            None,
            Algorithms::default()
        ),
        Err(XencError::Key)
    );
    assert_eq!(
        xenc::decrypt_element(
            &doc,
            None,
            doc.root(),
            &dave_key,
            Some(&dave),
            Algorithms::default()
        )
        .unwrap(),
        b"<x/>"
    );
}

#[test]
fn unknown_algorithms_are_unsupported_even_with_legacy_allowed() {
    let sym = [9u8; 32];
    let blob = gcm_blob::<AesGcm<Aes256, U12>>(&sym, &[5u8; 12]);
    let wrapped = oaep_sha256(&sym);
    let unknown = [
        // Data ciphers.
        encrypted_data(
            "http://www.w3.org/2001/04/xmlenc#kw-aes256",
            None,
            xenc::RSA_OAEP,
            OAEP_SHA256_PARAMS,
            &wrapped,
            &blob,
        ),
        encrypted_data(
            "urn:chacha20",
            None,
            xenc::RSA_OAEP,
            OAEP_SHA256_PARAMS,
            &wrapped,
            &blob,
        ),
        // Key transport.
        encrypted_data(
            xenc::AES256_GCM,
            Some("12"),
            "http://www.w3.org/2001/04/xmlenc#kw-aes128",
            "",
            &wrapped,
            &blob,
        ),
        // MGF and digest.
        encrypted_data(
            xenc::AES256_GCM,
            Some("12"),
            xenc::RSA_OAEP,
            r#"<xenc11:MGF Algorithm="http://www.w3.org/2009/xmlenc11#mgf1md5"/>"#,
            &wrapped,
            &blob,
        ),
        encrypted_data(
            xenc::AES256_GCM,
            Some("12"),
            xenc::RSA_OAEP,
            r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#ripemd160"/>"#,
            &wrapped,
            &blob,
        ),
        // IV length.
        encrypted_data(
            xenc::AES256_GCM,
            Some("32"),
            xenc::RSA_OAEP,
            OAEP_SHA256_PARAMS,
            &wrapped,
            &blob,
        ),
    ];
    for xml in &unknown {
        for algorithms in [Algorithms::default(), Algorithms::WITH_LEGACY] {
            let err = open(xml, algorithms).unwrap_err();
            assert!(matches!(err, XencError::Unsupported(_)), "{err}");
            assert_eq!(err.feedback_code(), "9202");
        }
    }
}

#[test]
fn data_by_cid_reference_raw_or_base64() {
    let sym = [7u8; 32];
    let blob = gcm_blob::<AesGcm<Aes256, U12>>(&sym, &[6u8; 12]);
    let xml = encrypted_data(
        xenc::AES256_GCM,
        Some("12"),
        xenc::RSA_OAEP,
        OAEP_SHA256_PARAMS,
        &oaep_sha256(&sym),
        &blob,
    );
    let value_at = xml.rfind("<xenc:CipherValue>").unwrap();
    let value_end = xml.rfind("</xenc:CipherValue>").unwrap() + "</xenc:CipherValue>".len();
    let by_ref = format!(
        r#"{}<xenc:CipherReference URI="cid:att"><xenc:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#base64"/></xenc:Transforms></xenc:CipherReference>{}"#,
        &xml[..value_at],
        &xml[value_end..]
    );
    let doc = Document::parse(by_ref.as_bytes()).unwrap();
    let dave = key("dave_cipher_4096");
    for (headers, content) in [
        (
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary",
            blob.clone(),
        ),
        (
            "Content-Type: text/base64\r\nContent-Transfer-Encoding: 7bit",
            b64(&blob).into_bytes(),
        ),
        (
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64",
            b64(&blob).into_bytes(),
        ),
    ] {
        let mut body = format!(
            "MIME-Version: 1.0\r\nContent-Type: Multipart/Related; boundary=QQ; type=text/xml\r\n\r\n--QQ\r\nContent-ID: <osci@message>\r\n\r\n<x/>\r\n--QQ\r\n{headers}\r\nContent-ID: <att>\r\n\r\n"
        )
        .into_bytes();
        body.extend(&content);
        body.extend(b"\r\n--QQ--\r\n");
        let msg = mime::parse(&body).unwrap();
        assert_eq!(
            xenc::decrypt_element(
                &doc,
                Some(&msg),
                doc.root(),
                &dave,
                None,
                Algorithms::default()
            )
            .unwrap(),
            PLAIN,
            "{headers}"
        );
    }
    // No message, or no such part.
    assert!(matches!(
        xenc::decrypt_element(&doc, None, doc.root(), &dave, None, Algorithms::default()),
        Err(XencError::Structure(_))
    ));
}

#[test]
fn structure_errors_are_9100() {
    let dave = key("dave_cipher_4096");
    let cases = [
        // Not EncryptedData.
        r#"<a xmlns="http://www.w3.org/2001/04/xmlenc#"/>"#,
        // EncryptedData without anything.
        r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"/>"#,
        // No KeyInfo.
        r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"><xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/><xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>"#,
        // Broken base64 data.
        r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"><xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm"/><xenc:CipherData><xenc:CipherValue>A*A</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>"#,
    ];
    for xml in cases {
        let doc = Document::parse(xml.as_bytes()).unwrap();
        let err = xenc::decrypt_element(&doc, None, doc.root(), &dave, None, Algorithms::default())
            .unwrap_err();
        assert_eq!(err.feedback_code(), "9100", "{xml}: {err}");
    }
    // An oversized encrypted key is refused before decoding.
    let xml = encrypted_data(
        xenc::AES256_GCM,
        Some("12"),
        xenc::RSA_OAEP,
        "",
        &vec![1u8; 4096],
        &[0u8; 40],
    );
    assert!(matches!(
        open(&xml, Algorithms::default()),
        Err(XencError::Structure(_))
    ));
}

// ---------------------------------------------------------------------
// PEM

#[test]
fn pem_keys_and_certificates() {
    let pkcs8 = String::from_utf8(read("demo-pki/dave_cipher_4096.key.pem")).unwrap();
    let k = xenc::private_key_from_pem(&pkcs8).unwrap();
    // PKCS#1 as well.
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let pkcs1 = k.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    assert_eq!(xenc::private_key_from_pem(&pkcs1).unwrap(), k);
    for bad in [
        "",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    ] {
        assert!(
            matches!(xenc::private_key_from_pem(bad), Err(XencError::Pem(_))),
            "{bad:?}"
        );
    }
    // The first certificate of a file; the cert's key is the key's.
    let c = cert("dave_cipher_4096");
    let chain = String::from_utf8(read("demo-pki/dave_cipher_4096.cert.pem")).unwrap()
        + &String::from_utf8(read("demo-pki/bob_cipher_4096.cert.pem")).unwrap();
    assert_eq!(xenc::certificate_der_from_pem(&chain).unwrap(), c);
    assert!(matches!(
        xenc::certificate_der_from_pem(&pkcs8),
        Err(XencError::Pem(_))
    ));
    assert!(matches!(
        xenc::certificate_der_from_pem(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
        ),
        Err(XencError::Pem(_))
    ));
}
