//! Signatures made here: the captured signatures of the reference library
//! come out byte for byte when Alice's demo key signs the same references
//! again; every signature method and digest verifies with her
//! certificate; tampering is found; the legacy set only passes when a
//! partner is allowed it; `sign` refuses to put a signature inside what it
//! signs.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use drehscheibe_osci::c14n::{C14nError, Document};
use drehscheibe_osci::dsig::{
    self, Algorithms, DigestMethod, DsigError, RefTarget, SignatureMethod,
};
use drehscheibe_osci::mime::{self, Message, Part};
use rsa::pkcs8::DecodePrivateKey;
use rsa::{RsaPrivateKey, RsaPublicKey};

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

fn alice_key() -> RsaPrivateKey {
    let pem = String::from_utf8(read("demo-pki/alice_signature_4096.key.pem")).unwrap();
    RsaPrivateKey::from_pkcs8_pem(&pem).unwrap()
}

fn alice_cert() -> Vec<u8> {
    pem_der("demo-pki/alice_signature_4096.cert.pem")
}

fn key_of(cert: &[u8]) -> RsaPublicKey {
    dsig::rsa_key_of_certificate(cert).unwrap()
}

const MARKER: &str = "<!--SIGNATURE-->";
const ATTACHMENT: &[u8] = b"Any attachment data.";

/// A small StoreDelivery-like envelope: the ClientSignature is a header
/// block next to what it signs; every block inherits its namespaces from
/// the envelope.
fn envelope() -> String {
    concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        "\n",
        r#"<soap:Envelope xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:osci="http://www.osci.de/2002/04/osci" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">"#,
        r#"<soap:Header><osci:ControlBlock Id="controlblock" SequenceNumber="0"><osci:Challenge>hrWEnA13awJRmQ==</osci:Challenge></osci:ControlBlock>"#,
        r#"<osci:ClientSignature Id="clientsignature"><!--SIGNATURE--></osci:ClientSignature></soap:Header>"#,
        r#"<soap:Body Id="body"><osci:ContentPackage><osci:ContentContainer Id="contentcontainer0">"#,
        r#"<osci:Content><osci:Base64Content Id="content0">QW55IGNvbnRlbnQgZGF0YS4=</osci:Base64Content></osci:Content>"#,
        r#"<osci:Content Id="content1" href="cid:attachment"></osci:Content>"#,
        r#"</osci:ContentContainer></osci:ContentPackage></soap:Body></soap:Envelope>"#,
    )
    .to_owned()
}

fn targets() -> Vec<RefTarget<'static>> {
    vec![
        RefTarget::Id("controlblock"),
        RefTarget::Id("body"),
        RefTarget::Base64Id("content0"),
        RefTarget::Cid {
            uri: "cid:attachment",
            bytes: ATTACHMENT,
        },
    ]
}

fn key_info() -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(alice_cert());
    format!("<ds:X509Data><ds:X509Certificate>{b64}</ds:X509Certificate></ds:X509Data>")
}

fn signed(method: SignatureMethod, digest: DigestMethod) -> String {
    dsig::sign_with(
        &envelope(),
        MARKER,
        &targets(),
        method,
        digest,
        &alice_key(),
        &key_info(),
    )
    .unwrap()
}

fn attachment_message(body: &[u8]) -> Message<'_> {
    Message {
        parts: vec![Part {
            headers: vec![("content-id".into(), "<attachment>".into())],
            body,
        }],
    }
}

/// Verify the (only) signature of `xml` with the certificate it names.
fn check(xml: &str, attachment: &[u8], algorithms: Algorithms) -> Result<Vec<String>, DsigError> {
    let doc = Document::parse(xml.as_bytes())?;
    let msg = attachment_message(attachment);
    let sig = doc.elements_named("Signature")[0];
    let key = key_of(&dsig::signer_certificate(&doc, sig)?);
    dsig::verify_with(&doc, Some(&msg), sig, &key, algorithms)
}

#[test]
fn a_signature_made_here_verifies_with_the_signers_certificate() {
    let xml = dsig::sign(
        &envelope(),
        MARKER,
        &targets(),
        SignatureMethod::RsaSha256,
        &alice_key(),
        &key_info(),
    )
    .unwrap();
    assert!(!xml.contains(MARKER));
    let doc = Document::parse(xml.as_bytes()).unwrap();
    let sig = doc.elements_named("Signature")[0];
    assert_eq!(dsig::signer_certificate(&doc, sig).unwrap(), alice_cert());
    let msg = attachment_message(ATTACHMENT);
    assert_eq!(
        dsig::verify(&doc, Some(&msg), sig, &key_of(&alice_cert())).unwrap(),
        vec!["#controlblock", "#body", "#content0", "cid:attachment"]
    );
    // The layout of the reference library: a line feed after each element
    // inside SignedInfo, the value in lines of 76 characters.
    assert!(xml.contains(concat!(
        "<ds:Signature><ds:SignedInfo>\n",
        "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"></ds:CanonicalizationMethod>\n",
        "<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"></ds:SignatureMethod>\n",
        "<ds:Reference URI=\"#controlblock\">\n<ds:Transforms>\n",
    )));
    assert!(xml.contains(concat!(
        "<ds:Reference URI=\"cid:attachment\">\n",
        "<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"></ds:DigestMethod>\n",
    )));
    let value = doc.elements_named("SignatureValue")[0].text();
    let lines: Vec<&str> = value.split_terminator('\n').collect();
    assert_eq!(
        lines.len(),
        9,
        "512 bytes = 684 base64 characters = 9 lines"
    );
    assert!(lines.iter().all(|l| l.len() == 76));
    assert!(value.ends_with('\n'));
}

/// The root part of a capture as text, and its attachment.
fn capture() -> (String, Vec<u8>) {
    let raw = read("captures/storedelivery.inner.mime");
    let msg = mime::parse(&raw).unwrap();
    let xml = String::from_utf8(msg.part("osci@message").unwrap().body.to_vec()).unwrap();
    let attachment = msg.part("cid:test.txt").unwrap().body.to_vec();
    (xml, attachment)
}

/// The `n`th `<ds:Signature>…</ds:Signature>` of `xml` replaced by the
/// marker (the captured signatures hold no nested signature).
fn strip_signature(xml: &str, n: usize) -> (String, String) {
    let start = xml.match_indices("<ds:Signature>").nth(n).unwrap().0;
    let end = start + xml[start..].find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let stripped = format!("{}{MARKER}{}", &xml[..start], &xml[end..]);
    (stripped, xml[start..end].to_owned())
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> &'a str {
    let start = s.find(open).unwrap() + open.len();
    &s[start..start + s[start..].find(close).unwrap()]
}

const ALICE_RETRIEVAL: &str = "<ds:RetrievalMethod URI=\"#originator_signature_67505e4c534d4f26830493fa37b5fddde01fd8e6a36733f4ba0bbc7038f3dcc0\"></ds:RetrievalMethod>";

#[test]
fn re_signing_the_captured_client_signature_gives_the_reference_librarys_bytes() {
    let (xml, attachment) = capture();
    let (stripped, original) = strip_signature(&xml, 0);
    assert!(original.contains("#qualityoftimestamp_creation"));
    let targets = [
        RefTarget::Id("qualityoftimestamp_creation"),
        RefTarget::Id("storedelivery"),
        RefTarget::Cid {
            uri: "cid:test.txt",
            bytes: &attachment,
        },
        RefTarget::Id("controlblock"),
        RefTarget::Id("nonintermediarycertificates"),
        RefTarget::Id("qualityoftimestamp_reception"),
        RefTarget::Id("featuredescription"),
        RefTarget::Id("desiredlanguages"),
        RefTarget::Id("body"),
    ];
    let resigned = dsig::sign(
        &stripped,
        MARKER,
        &targets,
        SignatureMethod::RsaSha256,
        &alice_key(),
        ALICE_RETRIEVAL,
    )
    .unwrap();
    let (_, ours) = strip_signature(&resigned, 0);
    // Same digests, same SignedInfo bytes …
    let digests = |s: &str| -> Vec<String> {
        s.split("<ds:DigestValue>")
            .skip(1)
            .map(|p| p[..p.find('<').unwrap()].to_owned())
            .collect()
    };
    assert_eq!(digests(&ours), digests(&original));
    assert_eq!(
        between(&ours, "<ds:SignedInfo>", "</ds:SignedInfo>"),
        between(&original, "<ds:SignedInfo>", "</ds:SignedInfo>")
    );
    // … and, PKCS#1 v1.5 being deterministic, the same signature value:
    // the whole message is the library's again.
    assert_eq!(ours, original);
    assert_eq!(resigned, xml);
}

#[test]
fn re_signing_the_captured_content_signature_gives_the_reference_librarys_bytes() {
    let (xml, attachment) = capture();
    let (stripped, original) = strip_signature(&xml, 1);
    let targets = [
        RefTarget::Base64Id("content0"),
        RefTarget::Id("content1"),
        RefTarget::Cid {
            uri: "cid:test.txt",
            bytes: &attachment,
        },
    ];
    let resigned = dsig::sign(
        &stripped,
        MARKER,
        &targets,
        SignatureMethod::RsaSha256,
        &alice_key(),
        ALICE_RETRIEVAL,
    )
    .unwrap();
    assert_eq!(resigned, xml, "{original}");
}

#[test]
fn every_signature_method_and_digest_verifies() {
    for method in [
        SignatureMethod::RsaSha384,
        SignatureMethod::RsaSha512,
        SignatureMethod::RsaPssSha256,
        SignatureMethod::RsaPssSha384,
        SignatureMethod::RsaPssSha512,
        SignatureMethod::RsaPssSha3_256,
        SignatureMethod::RsaPssSha3_384,
        SignatureMethod::RsaPssSha3_512,
    ] {
        let xml = signed(method, DigestMethod::Sha256);
        assert!(xml.contains(method.uri()));
        assert_eq!(SignatureMethod::from_uri(method.uri()), Some(method));
        assert_eq!(
            check(&xml, ATTACHMENT, Algorithms::default()).map(|c| c.len()),
            Ok(4),
            "{method:?}"
        );
    }
    for digest in [
        DigestMethod::Sha384,
        DigestMethod::Sha512,
        DigestMethod::Sha3_256,
        DigestMethod::Sha3_384,
        DigestMethod::Sha3_512,
    ] {
        let xml = signed(SignatureMethod::RsaPssSha512, digest);
        assert!(xml.contains(digest.uri()));
        assert_eq!(
            check(&xml, ATTACHMENT, Algorithms::default()).map(|c| c.len()),
            Ok(4),
            "{digest:?}"
        );
    }
}

#[test]
fn pss_signatures_are_randomised_and_both_verify() {
    let a = signed(SignatureMethod::RsaPssSha256, DigestMethod::Sha256);
    let b = signed(SignatureMethod::RsaPssSha256, DigestMethod::Sha256);
    assert_ne!(a, b, "PSS uses a random salt");
    assert!(check(&a, ATTACHMENT, Algorithms::default()).is_ok());
    assert!(check(&b, ATTACHMENT, Algorithms::default()).is_ok());
}

#[test]
fn tampering_is_found() {
    let xml = signed(SignatureMethod::RsaPssSha256, DigestMethod::Sha512);
    let strict = Algorithms::default();
    assert!(check(&xml, ATTACHMENT, strict).is_ok());
    // A signed header.
    let header = xml.replacen("<osci:Challenge>", "<osci:Challenge>A", 1);
    assert_eq!(
        check(&header, ATTACHMENT, strict),
        Err(DsigError::DigestMismatch("#controlblock".into()))
    );
    // The attachment.
    assert_eq!(
        check(&xml, b"Any attachment dat4.", strict),
        Err(DsigError::DigestMismatch("cid:attachment".into()))
    );
    // The signature value.
    let value = between(&xml, "<ds:SignatureValue>", "</ds:SignatureValue>");
    let flipped = value.replacen(
        &value[..4],
        if &value[..4] == "AAAA" {
            "BBBB"
        } else {
            "AAAA"
        },
        1,
    );
    let bad_value = xml.replacen(value, &flipped, 1);
    assert_eq!(
        check(&bad_value, ATTACHMENT, strict),
        Err(DsigError::BadSignature)
    );
    // Another key.
    let doc = Document::parse(xml.as_bytes()).unwrap();
    let msg = attachment_message(ATTACHMENT);
    let bob = key_of(&pem_der("demo-pki/bob_signature_4096.cert.pem"));
    assert_eq!(
        dsig::verify(&doc, Some(&msg), doc.elements_named("Signature")[0], &bob),
        Err(DsigError::BadSignature)
    );
    // A PSS signature passed off as PKCS#1 v1.5.
    let relabelled = xml.replacen(
        SignatureMethod::RsaPssSha256.uri(),
        SignatureMethod::RsaSha256.uri(),
        1,
    );
    assert_eq!(
        check(&relabelled, ATTACHMENT, strict),
        Err(DsigError::BadSignature)
    );
    // An unknown algorithm.
    let md5 = xml.replacen(
        SignatureMethod::RsaPssSha256.uri(),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-md5",
        1,
    );
    assert_eq!(
        check(&md5, ATTACHMENT, strict),
        Err(DsigError::Unsupported(
            "http://www.w3.org/2001/04/xmldsig-more#rsa-md5".into()
        ))
    );
}

#[test]
fn legacy_algorithms_only_pass_when_the_partner_is_allowed_them() {
    let legacy = Algorithms { allow_legacy: true };
    let sha1_signature = signed(SignatureMethod::LegacyRsaSha1, DigestMethod::Sha256);
    assert!(sha1_signature.contains("http://www.w3.org/2000/09/xmldsig#rsa-sha1"));
    assert_eq!(
        check(&sha1_signature, ATTACHMENT, Algorithms::default()),
        Err(DsigError::Legacy(
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1".into()
        ))
    );
    assert_eq!(
        check(&sha1_signature, ATTACHMENT, legacy).map(|c| c.len()),
        Ok(4)
    );

    let sha1_digests = signed(SignatureMethod::RsaSha256, DigestMethod::LegacySha1);
    assert_eq!(
        check(&sha1_digests, ATTACHMENT, Algorithms::default()),
        Err(DsigError::Legacy(
            "http://www.w3.org/2000/09/xmldsig#sha1".into()
        ))
    );
    assert_eq!(
        check(&sha1_digests, ATTACHMENT, legacy).map(|c| c.len()),
        Ok(4)
    );
    // `verify` is the strict policy.
    let doc = Document::parse(sha1_digests.as_bytes()).unwrap();
    let msg = attachment_message(ATTACHMENT);
    assert!(matches!(
        dsig::verify(
            &doc,
            Some(&msg),
            doc.elements_named("Signature")[0],
            &key_of(&alice_cert())
        ),
        Err(DsigError::Legacy(_))
    ));
}

#[test]
fn sign_refuses_what_would_not_be_an_osci_signature() {
    let key = alice_key();
    let sign = |xml: &str, targets: &[RefTarget<'_>]| {
        dsig::sign(xml, MARKER, targets, SignatureMethod::RsaSha256, &key, "")
    };
    let xml = envelope();
    // The marker missing or twice.
    assert!(matches!(
        sign(&xml.replace(MARKER, ""), &targets()),
        Err(DsigError::Structure(_))
    ));
    let twice = xml.replace("</soap:Header>", "<!--SIGNATURE--></soap:Header>");
    assert!(matches!(
        sign(&twice, &targets()),
        Err(DsigError::Structure(_))
    ));
    // No references.
    assert!(matches!(sign(&xml, &[]), Err(DsigError::Structure(_))));
    // The signature inside an element it signs (no enveloped signatures).
    let inside = xml.replace(MARKER, "").replace(
        "</osci:ContentPackage>",
        "<!--SIGNATURE--></osci:ContentPackage>",
    );
    let err = sign(&inside, &targets()).unwrap_err();
    assert!(
        matches!(&err, DsigError::Structure(m) if m.contains("#body")),
        "{err}"
    );
    // An Id that is not there; a base64 reference to non-base64 text.
    assert_eq!(
        sign(&xml, &[RefTarget::Id("nowhere")]),
        Err(DsigError::C14n(C14nError::NoSuchId("nowhere".into())))
    );
    let not_base64 = xml.replace("hrWEnA13awJRmQ==", "not base64!");
    assert!(matches!(
        sign(&not_base64, &[RefTarget::Base64Id("controlblock")]),
        Err(DsigError::Structure(_))
    ));
    // A MIME reference that is not cid:.
    assert!(matches!(
        sign(
            &xml,
            &[RefTarget::Cid {
                uri: "http://example.org/x",
                bytes: b""
            }]
        ),
        Err(DsigError::Structure(_))
    ));
    // The ds prefix not in scope where the signature goes.
    let no_ds = xml.replace(r#" xmlns:ds="http://www.w3.org/2000/09/xmldsig#""#, "");
    assert!(matches!(sign(&no_ds, &targets()), Err(DsigError::C14n(_))));
}

#[test]
fn feedback_codes() {
    assert_eq!(DsigError::Structure("x".into()).feedback_code(), "9100");
    assert_eq!(DsigError::C14n(C14nError::Doctype).feedback_code(), "9100");
    for e in [
        DsigError::BadSignature,
        DsigError::DigestMismatch("#body".into()),
        DsigError::Unsupported("x".into()),
        DsigError::Legacy("x".into()),
    ] {
        assert_eq!(e.feedback_code(), "9601", "{e}");
    }
    assert_eq!(DsigError::Certificate("x".into()).feedback_code(), "9700");
    assert_eq!(DsigError::Signing("x".into()).feedback_code(), "9000");
}
