//! The canonicaliser against the reference library: every `ds:Reference`
//! digest in the captured InitDialog and StoreDelivery requests
//! (tests/captures/, from ../shared/osci/) is recomputed — `#id`
//! references over the inclusive C14N of the element, `cid:` references
//! over the raw MIME part — and must equal the digest the library wrote.
#![allow(clippy::unwrap_used)]

use base64::Engine;
use drehscheibe_osci::{c14n, mime};
use quick_xml::events::Event;
use sha2::{Digest, Sha256};

const C14N: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const BASE64: &str = "http://www.w3.org/2000/09/xmldsig#base64";

/// (URI, transform, digest algorithm, DigestValue) of every
/// `ds:Reference` (each has at most one transform here).
fn references(xml: &[u8]) -> Vec<(String, String, String, String)> {
    let mut r = quick_xml::Reader::from_reader(xml);
    let mut out = Vec::new();
    let mut cur: Option<(String, String, String)> = None;
    let mut in_value = false;
    let mut buf = Vec::new();
    loop {
        match r.read_event_into(&mut buf).unwrap() {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"Reference" => {
                let uri = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == b"URI")
                    .map(|a| String::from_utf8(a.value.to_vec()).unwrap())
                    .unwrap();
                cur = Some((uri, String::new(), String::new()));
            }
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"Transform" => {
                if let Some(c) = cur.as_mut() {
                    c.1 = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == b"Algorithm")
                        .map(|a| String::from_utf8(a.value.to_vec()).unwrap())
                        .unwrap();
                }
            }
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"DigestMethod" => {
                if let Some(c) = cur.as_mut() {
                    c.2 = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == b"Algorithm")
                        .map(|a| String::from_utf8(a.value.to_vec()).unwrap())
                        .unwrap();
                }
            }
            Event::Start(e) if e.local_name().as_ref() == b"DigestValue" => in_value = true,
            Event::Text(t) if in_value => {
                if let Some((uri, transform, alg)) = cur.take() {
                    out.push((uri, transform, alg, t.unescape().unwrap().trim().to_owned()));
                }
                in_value = false;
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

fn check(file: &str) -> usize {
    let raw = std::fs::read(format!(
        "{}/tests/captures/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let msg = mime::parse(&raw).unwrap();
    let root = msg.part("osci@message").unwrap();
    let doc = c14n::Document::parse(root.body).unwrap();
    let refs = references(root.body);
    assert!(!refs.is_empty(), "{file}: no references");
    let b64 = base64::engine::general_purpose::STANDARD;
    for (uri, transform, alg, expected) in &refs {
        assert_eq!(
            alg, "http://www.w3.org/2001/04/xmlenc#sha256",
            "{file} {uri}"
        );
        let bytes = match (uri.strip_prefix('#'), transform.as_str()) {
            (Some(id), C14N) => doc.element_by_id(id).unwrap().canonicalize().unwrap(),
            (Some(id), BASE64) => {
                let text = doc.element_by_id(id).unwrap().text();
                let compact: String = text.split_whitespace().collect();
                b64.decode(compact).unwrap()
            }
            (Some(id), other) => panic!("{file}: #{id} with transform {other:?}"),
            (None, _) => msg
                .part(uri)
                .unwrap_or_else(|| panic!("{file}: no part {uri}"))
                .body
                .to_vec(),
        };
        let got = b64.encode(Sha256::digest(&bytes));
        assert_eq!(&got, expected, "{file}: digest of {uri}");
    }
    refs.len()
}

#[test]
fn every_reference_digest_of_the_captured_init_dialog_verifies() {
    assert!(check("initdialog.inner.mime") >= 5);
}

#[test]
fn every_reference_digest_of_the_captured_store_delivery_verifies() {
    // Header blocks, body, both content containers, the signature
    // certificates, and the attachment by cid:.
    assert!(check("storedelivery.inner.mime") >= 10);
}

#[test]
fn a_changed_byte_changes_the_digest() {
    let raw = std::fs::read(format!(
        "{}/tests/captures/initdialog.inner.mime",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let msg = mime::parse(&raw).unwrap();
    let xml = std::str::from_utf8(msg.part("osci@message").unwrap().body).unwrap();
    let tampered = xml.replacen("<osci:Challenge>", "<osci:Challenge>X", 1);
    let good = c14n::canonicalize_id(xml.as_bytes(), "controlblock").unwrap();
    let bad = c14n::canonicalize_id(tampered.as_bytes(), "controlblock").unwrap();
    assert_ne!(Sha256::digest(good), Sha256::digest(bad));
}
