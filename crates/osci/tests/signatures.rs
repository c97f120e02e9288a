//! Every XML signature in the captured requests verifies (digests of
//! every reference, then the signature value over the canonical
//! SignedInfo with the signer's RSA-4096 key from the message's own
//! certificates); a changed byte, a changed signature value or another
//! key does not.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use drehscheibe_osci::c14n::Document;
use drehscheibe_osci::dsig::{self, DsigError};
use drehscheibe_osci::mime;

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn pem_der(rel: &str) -> Vec<u8> {
    let text = String::from_utf8(read(rel)).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

/// Verify every ds:Signature of a capture; returns how many.
fn verify_all(raw: &[u8]) -> Result<usize, DsigError> {
    let msg = mime::parse(raw).unwrap();
    let doc = Document::parse(msg.part("osci@message").unwrap().body)?;
    let signatures = doc.elements_named("Signature");
    for s in &signatures {
        let cert = dsig::signer_certificate(&doc, *s)?;
        let key = dsig::rsa_key_of_certificate(&cert)?;
        dsig::verify(&doc, Some(&msg), *s, &key)?;
    }
    Ok(signatures.len())
}

#[test]
fn every_signature_of_the_captures_verifies_with_the_signers_certificate() {
    assert_eq!(verify_all(&read("captures/initdialog.inner.mime")), Ok(1));
    // The ClientSignature and the content container's signature.
    assert_eq!(
        verify_all(&read("captures/storedelivery.inner.mime")),
        Ok(2)
    );
}

#[test]
fn the_signer_is_alice_and_bobs_key_does_not_verify() {
    let raw = read("captures/initdialog.inner.mime");
    let msg = mime::parse(&raw).unwrap();
    let doc = Document::parse(msg.part("osci@message").unwrap().body).unwrap();
    let sig = doc.elements_named("Signature")[0];
    let embedded = dsig::signer_certificate(&doc, sig).unwrap();
    assert_eq!(embedded, pem_der("demo-pki/alice_signature_4096.cert.pem"));
    let bob =
        dsig::rsa_key_of_certificate(&pem_der("demo-pki/bob_signature_4096.cert.pem")).unwrap();
    assert_eq!(
        dsig::verify(&doc, Some(&msg), sig, &bob),
        Err(DsigError::BadSignature)
    );
}

#[test]
fn tampering_is_found() {
    let raw = String::from_utf8_lossy(&read("captures/storedelivery.inner.mime")).into_owned();
    // A byte of signed content (the base64 content of container 0).
    let content = raw.replacen("QW55IGNvbnRlbnQgZGF0YS4=", "QW55IGNvbnRlbnQgZGF0YS5=", 1);
    assert!(matches!(
        verify_all(content.as_bytes()),
        Err(DsigError::DigestMismatch(_))
    ));
    // The attachment (cid:test.txt).
    let attachment = raw.replacen(
        "Any unencrypted attachment data.",
        "Any unencrypted attachment dat4.",
        1,
    );
    assert!(attachment != raw, "the capture has the attachment part");
    assert_eq!(
        verify_all(attachment.as_bytes()),
        Err(DsigError::DigestMismatch("cid:test.txt".into()))
    );
    // A signed header value (the ControlBlock's Challenge).
    let init = String::from_utf8_lossy(&read("captures/initdialog.inner.mime")).into_owned();
    let challenge = init.replacen("<osci:Challenge>", "<osci:Challenge>A", 1);
    assert_eq!(
        verify_all(challenge.as_bytes()),
        Err(DsigError::DigestMismatch("#controlblock".into()))
    );
    // The SignedInfo itself (a digest value swapped for another).
    let start = init.find("<ds:DigestValue>").unwrap() + "<ds:DigestValue>".len();
    let mut swapped = init.clone();
    swapped.replace_range(start..start + 4, "AAAA");
    assert!(matches!(
        verify_all(swapped.as_bytes()),
        Err(DsigError::DigestMismatch(_)) | Err(DsigError::BadSignature)
    ));
}
