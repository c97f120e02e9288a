//! Certificate checks: the reference library's demo certificates chain to
//! "Governikus Root CA 3:PN"; time, tampering, foreign and hand-made
//! chains (legacy SHA-1, RSA-PSS, non-CA issuers, path length, loops,
//! length bound) are judged as the module docs say.
#![allow(clippy::unwrap_used)]

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drehscheibe_osci::certs::{self, CertError, CertRole, TrustStore, MAX_CHAIN};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::signature::{RandomizedSigner, SignatureEncoding};
use rsa::{pkcs1v15, pss, RsaPrivateKey};
use sha2::{Digest, Sha256, Sha512};
use x509_cert::der::asn1::{Any, BitString, OctetString};
use x509_cert::der::oid::db::rfc5912;
use x509_cert::der::oid::AssociatedOid;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn der(name: &str) -> Vec<u8> {
    certs::certificates_from_pem(&read(&format!("demo-pki/{name}.cert.pem")))
        .unwrap()
        .remove(0)
}

fn at(unix: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix)
}

/// 2026-06-01: inside every demo certificate's validity.
fn june_2026() -> SystemTime {
    at(1_780_272_000)
}

/// The chain PEM: "Governikus CA 8:PN", then "Governikus Root CA 3:PN".
fn chain() -> Vec<Vec<u8>> {
    certs::certificates_from_pem(&read("demo-pki/alice_signature_4096.chain.pem")).unwrap()
}

fn root_only() -> TrustStore {
    let root = chain()
        .into_iter()
        .find(|d| certs::info(d).unwrap().subject.contains("Root CA 3"))
        .unwrap();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, root);
    TrustStore::from_pem(&format!(
        "-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n"
    ))
    .unwrap()
}

fn ca8() -> Vec<Vec<u8>> {
    chain()
        .into_iter()
        .filter(|d| certs::info(d).unwrap().subject.contains("CA 8"))
        .collect()
}

const DEMO: [&str; 6] = [
    "alice_signature_4096",
    "bob_signature_4096",
    "bob_cipher_4096",
    "dave_signature_4096",
    "osci_manager_signature_4096",
    "osci_manager_cipher_4096",
];

#[test]
fn the_demo_certificates_chain_to_the_governikus_root() {
    let root = root_only();
    assert_eq!(root.len(), 1);
    let whole_chain =
        TrustStore::from_pem(&read("demo-pki/alice_signature_4096.chain.pem")).unwrap();
    assert_eq!(whole_chain.len(), 2);
    for name in DEMO {
        let cert = der(name);
        // Root as anchor, CA 8 from the partner's chain.
        let info = certs::check(&cert, &ca8(), &root, june_2026(), false)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            info.issuer.ends_with("CN=Governikus CA 8:PN"),
            "{}",
            info.issuer
        );
        // Both CAs configured: no intermediates needed.
        assert_eq!(
            certs::check(&cert, &[], &whole_chain, june_2026(), false),
            Ok(info)
        );
        // Only the root and no intermediates: no path.
        assert!(matches!(
            certs::check(&cert, &[], &root, june_2026(), false),
            Err(CertError::Untrusted(m)) if m.contains("Governikus CA 8:PN")
        ));
    }
}

#[test]
fn info_names_subject_issuer_serial_validity_and_fingerprint() {
    let alice = der("alice_signature_4096");
    let info = certs::info(&alice).unwrap();
    assert_eq!(
        info.subject,
        "C=de,O=Governikus KG,OU=Testcertificate Governikus,CN=Alice Signature 4096"
    );
    assert_eq!(
        info.issuer,
        "C=DE,L=Bremen,O=Governikus KG,OU=Governikus CA,CN=Governikus CA 8:PN"
    );
    assert_eq!(info.serial_hex, "586a16c5fa90ae90");
    assert_eq!(info.not_before, at(1_622_809_942)); // 2021-06-04 12:32:22
    assert!(info.not_after > at(2_077_000_000) && info.not_after < at(2_094_000_000));
    assert_eq!(info.sha256_hex, hex::encode(Sha256::digest(&alice)));
    assert!(matches!(
        certs::info(b"no certificate"),
        Err(CertError::Parse(_))
    ));
}

#[test]
fn outside_its_validity_a_certificate_is_refused_even_without_anchors() {
    let alice = der("alice_signature_4096");
    let year_2040 = at(2_208_988_800);
    let year_2020 = at(1_577_836_800);
    for trust in [root_only(), TrustStore::empty()] {
        assert!(matches!(
            certs::check(&alice, &ca8(), &trust, year_2040, false),
            Err(CertError::Expired(s)) if s.ends_with("CN=Alice Signature 4096")
        ));
        assert!(matches!(
            certs::check(&alice, &ca8(), &trust, year_2020, false),
            Err(CertError::NotYetValid(_))
        ));
    }
}

#[test]
fn an_empty_trust_store_checks_validity_only_and_a_foreign_certificate_is_untrusted() {
    // A throw-away CA (ECDSA, made by rcgen), valid now.
    let pki = drehscheibe_testkit::pki::Pki::new("osci-client");
    let foreign = pki.ca_der.to_vec();
    let empty = TrustStore::empty();
    assert!(empty.is_empty());
    assert!(certs::check(&foreign, &[], &empty, SystemTime::now(), false).is_ok());
    assert!(matches!(
        certs::check(&foreign, &[], &root_only(), SystemTime::now(), false),
        Err(CertError::Untrusted(m)) if m.contains("no CA certificate named")
    ));
    // Its client certificate under its own CA: ECDSA is not taken.
    let own = TrustStore::from_pem(&pki.ca_pem).unwrap();
    let client = certs::certificates_from_pem(&pki.client_cert_pem)
        .unwrap()
        .remove(0);
    assert!(matches!(
        certs::check(&client, &[], &own, SystemTime::now(), false),
        Err(CertError::Untrusted(m)) if m.contains("not RSA")
    ));
    // A configured certificate is trusted as it is (pinned).
    assert!(certs::check(&foreign, &[], &own, SystemTime::now(), false).is_ok());
}

#[test]
fn a_tampered_certificate_is_untrusted() {
    let alice = der("alice_signature_4096");
    // The last byte of the signature BIT STRING.
    let mut signature = alice.clone();
    *signature.last_mut().unwrap() ^= 0x01;
    assert!(matches!(
        certs::check(&signature, &ca8(), &root_only(), june_2026(), false),
        Err(CertError::Untrusted(m)) if m.contains("does not verify")
    ));
    // A byte of the serial number (signed content).
    let serial = hex::decode("586A16C5FA90AE90").unwrap();
    let pos = alice.windows(8).position(|w| w == serial).unwrap();
    let mut content = alice.clone();
    content[pos + 7] ^= 0x01;
    assert!(matches!(
        certs::check(&content, &ca8(), &root_only(), june_2026(), false),
        Err(CertError::Untrusted(m)) if m.contains("does not verify")
    ));
    // Without anchors nothing is verified: that is what an empty store
    // means.
    assert!(certs::check(&content, &[], &TrustStore::empty(), june_2026(), false).is_ok());
}

// ---- hand-made chains (Alice's demo key signs every certificate) ----

#[derive(Clone, Copy)]
enum Alg {
    Sha256,
    Sha512,
    Pss256,
    Sha1,
}

struct Spec<'a> {
    subject: &'a str,
    issuer: &'a str,
    alg: Alg,
    /// `Some((cA, pathLenConstraint))`: a basicConstraints extension.
    basic: Option<(bool, Option<u8>)>,
    /// `Some(keyCertSign)`: a keyUsage extension (with cRLSign unless
    /// `no_crl_sign`).
    cert_sign: Option<bool>,
    no_crl_sign: bool,
    valid: (u64, u64),
}

impl<'a> Spec<'a> {
    fn ca(subject: &'a str, issuer: &'a str) -> Self {
        Self {
            subject,
            issuer,
            alg: Alg::Sha256,
            basic: Some((true, None)),
            cert_sign: Some(true),
            no_crl_sign: false,
            valid: (1_577_836_800, 2_208_988_800),
        }
    }

    fn leaf(subject: &'a str, issuer: &'a str, alg: Alg) -> Self {
        Self {
            alg,
            basic: Some((false, None)),
            cert_sign: None,
            ..Self::ca(subject, issuer)
        }
    }
}

fn alice_key() -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(&read("demo-pki/alice_signature_4096.key.pem")).unwrap()
}

fn extension<T: AssociatedOid + Encode>(value: &T) -> Extension {
    Extension {
        extn_id: T::OID,
        critical: true,
        extn_value: OctetString::new(value.to_der().unwrap()).unwrap(),
    }
}

fn make(spec: &Spec<'_>, key: &RsaPrivateKey) -> Vec<u8> {
    let rsa_alg = |oid| AlgorithmIdentifierOwned {
        oid,
        parameters: Some(Any::null()),
    };
    let alg = match spec.alg {
        Alg::Sha256 => rsa_alg(rfc5912::SHA_256_WITH_RSA_ENCRYPTION),
        Alg::Sha512 => rsa_alg(rfc5912::SHA_512_WITH_RSA_ENCRYPTION),
        Alg::Sha1 => rsa_alg(rfc5912::SHA_1_WITH_RSA_ENCRYPTION),
        Alg::Pss256 => pss::get_default_pss_signature_algo_id::<Sha256>().unwrap(),
    };
    let mut extensions = Vec::new();
    if let Some((ca, path_len_constraint)) = spec.basic {
        extensions.push(extension(&BasicConstraints {
            ca,
            path_len_constraint,
        }));
    }
    if let Some(sign) = spec.cert_sign {
        let usage = match (sign, spec.no_crl_sign) {
            (true, false) => KeyUsages::KeyCertSign | KeyUsages::CRLSign,
            (true, true) => KeyUsages::KeyCertSign.into(),
            (false, _) => KeyUsages::DigitalSignature.into(),
        };
        extensions.push(extension(&KeyUsage(usage)));
    }
    let spki = SubjectPublicKeyInfoOwned::from_der(
        key.to_public_key().to_public_key_der().unwrap().as_bytes(),
    )
    .unwrap();
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&[0x01, 0x02]).unwrap(),
        signature: alg.clone(),
        issuer: Name::from_str(spec.issuer).unwrap(),
        validity: Validity {
            not_before: Time::try_from(at(spec.valid.0)).unwrap(),
            not_after: Time::try_from(at(spec.valid.1)).unwrap(),
        },
        subject: Name::from_str(spec.subject).unwrap(),
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let signed = tbs.to_der().unwrap();
    let mut rng = rand::thread_rng();
    let value = match spec.alg {
        Alg::Sha256 => pkcs1v15::SigningKey::<Sha256>::new(key.clone())
            .sign_with_rng(&mut rng, &signed)
            .to_vec(),
        Alg::Sha512 => pkcs1v15::SigningKey::<Sha512>::new(key.clone())
            .sign_with_rng(&mut rng, &signed)
            .to_vec(),
        Alg::Sha1 => pkcs1v15::SigningKey::<sha1::Sha1>::new(key.clone())
            .sign_with_rng(&mut rng, &signed)
            .to_vec(),
        Alg::Pss256 => pss::SigningKey::<Sha256>::new(key.clone())
            .sign_with_rng(&mut rng, &signed)
            .to_vec(),
    };
    Certificate {
        tbs_certificate: tbs,
        signature_algorithm: alg,
        signature: BitString::from_bytes(&value).unwrap(),
    }
    .to_der()
    .unwrap()
}

fn store(ders: &[&[u8]]) -> TrustStore {
    let mut pem = String::new();
    for d in ders {
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, d);
        pem.push_str(&format!(
            "-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n"
        ));
    }
    TrustStore::from_pem(&pem).unwrap()
}

const NOW: u64 = 1_780_272_000;

fn untrusted(result: Result<certs::CertInfo, CertError>) -> String {
    match result {
        Err(CertError::Untrusted(m)) => m,
        other => panic!("expected Untrusted, got {other:?}"),
    }
}

#[test]
fn legacy_sha1_certificates_only_with_allow_legacy_and_pss_and_sha512_always() {
    let key = alice_key();
    let root = make(&Spec::ca("CN=Test Root", "CN=Test Root"), &key);
    let trust = store(&[&root]);
    let sha1 = make(
        &Spec::leaf("CN=Old Partner", "CN=Test Root", Alg::Sha1),
        &key,
    );
    assert!(untrusted(certs::check(&sha1, &[], &trust, at(NOW), false)).contains("legacy"));
    assert!(certs::check(&sha1, &[], &trust, at(NOW), true).is_ok());
    for alg in [Alg::Pss256, Alg::Sha512] {
        let leaf = make(&Spec::leaf("CN=Partner", "CN=Test Root", alg), &key);
        assert!(certs::check(&leaf, &[], &trust, at(NOW), false).is_ok());
    }
}

#[test]
fn every_issuer_on_the_path_must_be_a_valid_ca_allowed_to_sign_certificates() {
    let key = alice_key();
    let root = make(&Spec::ca("CN=Test Root", "CN=Test Root"), &key);
    let trust = store(&[&root]);
    let leaf = make(&Spec::leaf("CN=Partner", "CN=Sub", Alg::Sha256), &key);
    let sub = |spec: Spec<'_>| make(&spec, &key);

    let good = sub(Spec::ca("CN=Sub", "CN=Test Root"));
    assert!(certs::check(&leaf, &[good], &trust, at(NOW), false).is_ok());

    let not_ca = sub(Spec {
        basic: Some((false, None)),
        ..Spec::ca("CN=Sub", "CN=Test Root")
    });
    assert!(
        untrusted(certs::check(&leaf, &[not_ca], &trust, at(NOW), false)).contains("is not a CA")
    );

    let no_cert_sign = sub(Spec {
        cert_sign: Some(false),
        ..Spec::ca("CN=Sub", "CN=Test Root")
    });
    assert!(
        untrusted(certs::check(&leaf, &[no_cert_sign], &trust, at(NOW), false))
            .contains("may not sign certificates")
    );

    let expired = sub(Spec {
        valid: (1_577_836_800, 1_600_000_000),
        ..Spec::ca("CN=Sub", "CN=Test Root")
    });
    assert!(untrusted(certs::check(&leaf, &[expired], &trust, at(NOW), false)).contains("expired"));

    // Without the extensions (an old-style CA) the step is taken.
    let bare = sub(Spec {
        basic: None,
        cert_sign: None,
        ..Spec::ca("CN=Sub", "CN=Test Root")
    });
    assert!(certs::check(&leaf, &[bare], &trust, at(NOW), false).is_ok());

    // pathLenConstraint 0 on the root: no CA below it.
    let strict_root = make(
        &Spec {
            basic: Some((true, Some(0))),
            ..Spec::ca("CN=Test Root", "CN=Test Root")
        },
        &key,
    );
    let good = sub(Spec::ca("CN=Sub", "CN=Test Root"));
    assert!(untrusted(certs::check(
        &leaf,
        std::slice::from_ref(&good),
        &store(&[&strict_root]),
        at(NOW),
        false
    ))
    .contains("at most 0"));
    // … but it may sign the leaf itself.
    let direct = make(&Spec::leaf("CN=Partner", "CN=Test Root", Alg::Sha256), &key);
    assert!(certs::check(&direct, &[], &store(&[&strict_root]), at(NOW), false).is_ok());
}

#[test]
fn loops_end_and_paths_are_bounded() {
    let key = alice_key();
    let root = make(&Spec::ca("CN=Test Root", "CN=Test Root"), &key);
    let trust = store(&[&root]);
    // A and B issued by each other, nobody by the root.
    let a = make(&Spec::ca("CN=A", "CN=B"), &key);
    let b = make(&Spec::ca("CN=B", "CN=A"), &key);
    let leaf = make(&Spec::leaf("CN=Partner", "CN=A", Alg::Sha256), &key);
    assert!(matches!(
        certs::check(&leaf, &[a, b], &trust, at(NOW), false),
        Err(CertError::Untrusted(_))
    ));

    // Root, then a ladder of intermediates: MAX_CHAIN certificates in all
    // are fine, one more is not.
    let names: Vec<String> = (0..MAX_CHAIN).map(|i| format!("CN=Sub {i}")).collect();
    let ladder: Vec<Vec<u8>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let issuer = if i == 0 {
                "CN=Test Root"
            } else {
                &names[i - 1]
            };
            make(&Spec::ca(n, issuer), &key)
        })
        .collect();
    // Leaf + (MAX_CHAIN - 2) intermediates + root = MAX_CHAIN.
    let ok_leaf = make(
        &Spec::leaf("CN=Partner", &names[MAX_CHAIN - 3], Alg::Sha256),
        &key,
    );
    assert!(certs::check(&ok_leaf, &ladder, &trust, at(NOW), false).is_ok());
    let long_leaf = make(
        &Spec::leaf("CN=Partner", &names[MAX_CHAIN - 2], Alg::Sha256),
        &key,
    );
    assert!(
        untrusted(certs::check(&long_leaf, &ladder, &trust, at(NOW), false)).contains("within")
    );
}

#[test]
fn pem_input_is_checked() {
    assert!(matches!(TrustStore::from_pem(""), Err(CertError::Parse(_))));
    assert!(matches!(
        TrustStore::from_pem(&read("demo-pki/alice_signature_4096.key.pem")),
        Err(CertError::Parse(_))
    ));
    let pem = read("demo-pki/alice_signature_4096.cert.pem");
    let cut = &pem[..pem.find("-----END").unwrap()];
    assert!(matches!(
        TrustStore::from_pem(cut),
        Err(CertError::Parse(_))
    ));
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        TrustStore::from_pem(garbage),
        Err(CertError::Parse(_))
    ));
    // Text around the blocks (openssl's bag attributes) is fine.
    assert_eq!(
        certs::certificates_from_pem(&read("demo-pki/alice_signature_4096.chain.pem"))
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn feedback_codes_follow_the_reference_library() {
    let expired = CertError::Expired("CN=x".into());
    let untrusted = CertError::Untrusted("x".into());
    assert_eq!(expired.feedback_code(), "3700");
    assert_eq!(
        CertError::NotYetValid("CN=x".into()).feedback_code(),
        "3700"
    );
    assert_eq!(untrusted.feedback_code(), "9700");
    assert_eq!(CertError::Parse("x".into()).feedback_code(), "9700");
    assert_eq!(untrusted.feedback_code_for(CertRole::ClientCipher), "9501");
    assert_eq!(expired.feedback_code_for(CertRole::ReaderCipher), "3706");
    assert_eq!(
        CertRole::from_element("CipherCertificateOtherReader"),
        Some(CertRole::ReaderCipher)
    );
    assert_eq!(CertRole::from_element("CipherCertificateIntermed"), None);
}

// ---- revocation lists ----

/// A v2 CRL by `issuer`, signed with `key`, listing `revoked` serials,
/// issued at `this` and due again at `next`.
fn crl(issuer: &str, key: &RsaPrivateKey, revoked: &[&[u8]], this: u64, next: u64) -> Vec<u8> {
    crl_with(issuer, key, revoked, (this, Some(next)), None, None)
}

/// As [`crl`], with CRL extensions `ext`, entry extensions `entry_ext` on
/// every entry, and perhaps no nextUpdate.
fn crl_with(
    issuer: &str,
    key: &RsaPrivateKey,
    revoked: &[&[u8]],
    window: (u64, Option<u64>),
    ext: Option<Vec<Extension>>,
    entry_ext: Option<Vec<Extension>>,
) -> Vec<u8> {
    let tbs = tbs_list(issuer, revoked, window, ext, entry_ext);
    signed_list(&tbs.to_der().unwrap(), key)
}

/// The to-be-signed part of a v2 CRL (see [`crl_with`]).
fn tbs_list(
    issuer: &str,
    revoked: &[&[u8]],
    (this, next): (u64, Option<u64>),
    ext: Option<Vec<Extension>>,
    entry_ext: Option<Vec<Extension>>,
) -> x509_cert::crl::TbsCertList {
    use x509_cert::crl::{RevokedCert, TbsCertList};
    TbsCertList {
        version: Version::V2,
        signature: crl_alg(),
        issuer: Name::from_str(issuer).unwrap(),
        this_update: Time::try_from(at(this)).unwrap(),
        next_update: next.map(|n| Time::try_from(at(n)).unwrap()),
        revoked_certificates: Some(
            revoked
                .iter()
                .map(|s| RevokedCert {
                    serial_number: SerialNumber::new(s).unwrap(),
                    revocation_date: Time::try_from(at(this)).unwrap(),
                    crl_entry_extensions: entry_ext.clone(),
                })
                .collect(),
        ),
        crl_extensions: ext,
    }
}

fn crl_alg() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
        parameters: Some(Any::null()),
    }
}

/// `CertificateList ::= SEQUENCE { tbs, algorithm, signature }` over the
/// DER `tbs` as it is (so a hand-made v1 list can be signed too).
fn signed_list(tbs: &[u8], key: &RsaPrivateKey) -> Vec<u8> {
    let value = pkcs1v15::SigningKey::<Sha256>::new(key.clone())
        .sign_with_rng(&mut rand::thread_rng(), tbs)
        .to_vec();
    let mut content = tbs.to_vec();
    content.extend(crl_alg().to_der().unwrap());
    content.extend(BitString::from_bytes(&value).unwrap().to_der().unwrap());
    sequence(content)
}

fn sequence(content: Vec<u8>) -> Vec<u8> {
    use x509_cert::der::{Header, Length, Tag};
    let mut out = Header::new(Tag::Sequence, Length::try_from(content.len()).unwrap())
        .unwrap()
        .to_der()
        .unwrap();
    out.extend(content);
    out
}

/// A v1 CRL (no version field, as RFC 5280 has it for lists without
/// extensions) of `issuer` with `revoked` serials, valid from `this` to
/// `next`; `ext`: CRL extensions all the same (which v1 may not carry).
fn crl_v1(
    issuer: &str,
    key: &RsaPrivateKey,
    revoked: &[&[u8]],
    (this, next): (u64, u64),
    ext: Option<Vec<Extension>>,
) -> Vec<u8> {
    use x509_cert::der::{Header, Reader, SliceReader};
    let v2 = tbs_list(issuer, revoked, (this, Some(next)), ext, None)
        .to_der()
        .unwrap();
    let mut r = SliceReader::new(&v2).unwrap();
    Header::decode(&mut r).unwrap();
    let version = r.tlv_bytes().unwrap();
    assert_eq!(version, [0x02, 0x01, 0x01], "v2's version INTEGER first");
    let rest = r.read_slice(r.remaining_len()).unwrap().to_vec();
    signed_list(&sequence(rest), key)
}

/// A trust store of `anchors` with the CRL file `name` (holding `crl`)
/// written to `dir`.
fn with_crl(
    dir: &tempfile::TempDir,
    anchors: &[&[u8]],
    name: &str,
    crl: &[u8],
) -> Result<TrustStore, drehscheibe_osci::crl::CrlError> {
    let path = dir.path().join(name);
    std::fs::write(&path, crl).unwrap();
    store(anchors).with_crl_files(vec![path], false, Duration::from_secs(60))
}

fn pem_crl(der: &[u8]) -> String {
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
    format!("-----BEGIN X509 CRL-----\n{b64}\n-----END X509 CRL-----\n")
}

/// A CA's CRL refuses the certificates it lists — leaf or intermediate
/// CA — and, once past its nextUpdate, every certificate of that CA
/// (status unknown); certificates of CAs without a CRL are not affected.
#[test]
fn a_revoked_certificate_and_a_stale_crl_are_refused() {
    let key = alice_key();
    let root = make(&Spec::ca("CN=Test Root", "CN=Test Root"), &key);
    let sub = make(&Spec::ca("CN=Sub", "CN=Test Root"), &key);
    // Every certificate `make` makes has serial 01 02.
    let leaf = make(&Spec::leaf("CN=Partner", "CN=Test Root", Alg::Sha256), &key);
    let below_sub = make(&Spec::leaf("CN=Far Partner", "CN=Sub", Alg::Sha256), &key);
    let dir = tempfile::tempdir().unwrap();
    let with = |name: &str, bytes: &[u8]| with_crl(&dir, &[&root], name, bytes);

    // Listed: refused, saying so (PEM and DER files alike).
    let listed = crl(
        "CN=Test Root",
        &key,
        &[&[0x01, 0x02]],
        NOW - 10,
        NOW + 86_400,
    );
    for trust in [
        with("listed.pem", pem_crl(&listed).as_bytes()).unwrap(),
        with("listed.der", &listed).unwrap(),
    ] {
        let m = untrusted(certs::check(&leaf, &[], &trust, at(NOW), false));
        assert!(m.contains("revoked") && m.contains("0102"), "{m}");
        // The intermediate CA has the same serial: revoked too, and with
        // it everything below it.
        let m = untrusted(certs::check(
            &below_sub,
            std::slice::from_ref(&sub),
            &trust,
            at(NOW),
            false,
        ));
        assert!(m.contains("revoked") && m.contains("CN=Sub"), "{m}");
        assert_eq!(trust.crls().unwrap().len(), 1);
    }

    // Not listed: accepted.
    let other = crl(
        "CN=Test Root",
        &key,
        &[&[0x09, 0x99]],
        NOW - 10,
        NOW + 86_400,
    );
    let trust = with("other.pem", pem_crl(&other).as_bytes()).unwrap();
    assert!(certs::check(&leaf, &[], &trust, at(NOW), false).is_ok());
    // Past its nextUpdate: the status is unknown, refused.
    let m = untrusted(certs::check(
        &leaf,
        &[],
        &trust,
        at(NOW + 2 * 86_400),
        false,
    ));
    assert!(
        m.contains("unknown") && m.contains("due for renewal"),
        "{m}"
    );

    // A CRL the CA did not sign (dave's key) is not taken at all.
    let dave = RsaPrivateKey::from_pkcs8_pem(&read("demo-pki/dave_cipher_4096.key.pem")).unwrap();
    let forged = crl("CN=Test Root", &dave, &[], NOW - 10, NOW + 86_400);
    let e = with("forged.pem", pem_crl(&forged).as_bytes()).unwrap_err();
    assert!(e.to_string().contains("does not verify"), "{e}");
    // Nor one of a CA that is not configured, nor something else.
    let foreign = crl("CN=Elsewhere", &key, &[], NOW - 10, NOW + 86_400);
    let e = with("foreign.pem", pem_crl(&foreign).as_bytes()).unwrap_err();
    assert!(e.to_string().contains("no CA certificate named"), "{e}");
    assert!(with("junk.pem", b"not a crl").is_err());

    // A CA without a CRL: its certificates are checked as before.
    let other_root = make(&Spec::ca("CN=Other Root", "CN=Other Root"), &key);
    let path = dir.path().join("listed.der");
    let both = store(&[&root, &other_root])
        .with_crl_files(vec![path], false, Duration::from_secs(60))
        .unwrap();
    let other_leaf = make(
        &Spec::leaf("CN=Partner", "CN=Other Root", Alg::Sha256),
        &key,
    );
    assert!(certs::check(&other_leaf, &[], &both, at(NOW), false).is_ok());
}

/// A replaced CRL file is read again on the next check after the refresh
/// interval; a replacement that does not verify leaves the last good one
/// in force.
#[test]
fn a_replaced_crl_file_is_taken_on_the_next_check() {
    let key = alice_key();
    let root = make(&Spec::ca("CN=Test Root", "CN=Test Root"), &key);
    let leaf = make(&Spec::leaf("CN=Partner", "CN=Test Root", Alg::Sha256), &key);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.crl");
    let clean = crl("CN=Test Root", &key, &[], NOW - 10, NOW + 86_400);
    std::fs::write(&path, pem_crl(&clean)).unwrap();
    let trust = store(&[&root])
        .with_crl_files(vec![path.clone()], false, Duration::ZERO)
        .unwrap();
    assert!(certs::check(&leaf, &[], &trust, at(NOW), false).is_ok());

    // The next day's CRL lists the leaf (a different size: noticed even
    // within the file system's timestamp granularity).
    let listed = crl("CN=Test Root", &key, &[&[0x01, 0x02]], NOW, NOW + 86_400);
    std::fs::write(&path, pem_crl(&listed)).unwrap();
    assert!(untrusted(certs::check(&leaf, &[], &trust, at(NOW), false)).contains("revoked"));

    // A broken replacement: the revocation stays known.
    std::fs::write(
        &path,
        "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
    )
    .unwrap();
    assert!(untrusted(certs::check(&leaf, &[], &trust, at(NOW), false)).contains("revoked"));
}

/// Only a CA's complete, signed-by-that-key CRL speaks for its
/// certificates: partitioned, delta and indirect CRLs, critical
/// extensions, a missing nextUpdate and a CA not allowed to sign CRLs are
/// refused at load; a re-keyed CA's certificates under the old key are
/// "unknown", not trusted.
#[test]
fn only_complete_crls_are_taken() {
    let key = alice_key();
    let root = make(&Spec::ca("CN=Test Root", "CN=Test Root"), &key);
    let leaf = make(&Spec::leaf("CN=Partner", "CN=Test Root", Alg::Sha256), &key);
    let dir = tempfile::tempdir().unwrap();
    let load = |anchors: &[&[u8]], name: &str, crl: &[u8]| with_crl(&dir, anchors, name, crl);
    let ext = |oid: &str, critical: bool| Extension {
        extn_id: x509_cert::der::asn1::ObjectIdentifier::new_unwrap(oid),
        critical,
        extn_value: OctetString::new(vec![0x30, 0x00]).unwrap(),
    };
    let window = (NOW - 10, Some(NOW + 86_400));
    for (name, crl, expected) in [
        (
            "idp",
            crl_with(
                "CN=Test Root",
                &key,
                &[],
                window,
                Some(vec![ext("2.5.29.28", true)]),
                None,
            ),
            "partitioned or delta",
        ),
        (
            "delta",
            crl_with(
                "CN=Test Root",
                &key,
                &[],
                window,
                Some(vec![ext("2.5.29.27", true)]),
                None,
            ),
            "partitioned or delta",
        ),
        (
            "critical",
            crl_with(
                "CN=Test Root",
                &key,
                &[],
                window,
                Some(vec![ext("1.2.3.4", true)]),
                None,
            ),
            "critical CRL extension 1.2.3.4",
        ),
        (
            "indirect",
            crl_with(
                "CN=Test Root",
                &key,
                &[&[0x05]],
                window,
                None,
                Some(vec![ext("2.5.29.29", true)]),
            ),
            "critical entry extension 2.5.29.29",
        ),
        (
            "no-next",
            crl_with("CN=Test Root", &key, &[], (NOW - 10, None), None, None),
            "no nextUpdate",
        ),
    ] {
        let e = load(&[&root], name, &crl).unwrap_err().to_string();
        assert!(e.contains(expected), "{name}: {e}");
    }
    // A non-critical extension it does not know is fine.
    let fine = crl_with(
        "CN=Test Root",
        &key,
        &[],
        window,
        Some(vec![ext("1.2.3.4", false)]),
        None,
    );
    assert!(load(&[&root], "fine", &fine).is_ok());

    // A CA whose keyUsage lacks cRLSign did not issue a valid CRL.
    let no_crl_sign = make(
        &Spec {
            no_crl_sign: true,
            ..Spec::ca("CN=Test Root", "CN=Test Root")
        },
        &key,
    );
    let clean = crl("CN=Test Root", &key, &[], NOW - 10, NOW + 86_400);
    let e = load(&[&no_crl_sign], "usage", &clean)
        .unwrap_err()
        .to_string();
    assert!(e.contains("may not sign CRLs"), "{e}");

    // Re-keyed: the new root (dave's key, same name) signs the CRLs; the
    // leaf was issued under the old key and nothing speaks for it.
    let dave = RsaPrivateKey::from_pkcs8_pem(&read("demo-pki/dave_cipher_4096.key.pem")).unwrap();
    let new_root = make(&Spec::ca("CN=Test Root", "CN=Test Root"), &dave);
    let new_crl = crl("CN=Test Root", &dave, &[], NOW - 10, NOW + 86_400);
    let trust = load(&[&root, &new_root], "rekeyed", &new_crl).unwrap();
    let m = untrusted(certs::check(&leaf, &[], &trust, at(NOW), false));
    assert!(m.contains("another key"), "{m}");
}

/// A v1 CRL (no version field) is read like a v2 one; a v1 CRL with
/// extensions is malformed and refused.
#[test]
fn a_version_1_crl_is_taken() {
    let key = alice_key();
    let root = make(&Spec::ca("CN=Test Root", "CN=Test Root"), &key);
    let leaf = make(&Spec::leaf("CN=Partner", "CN=Test Root", Alg::Sha256), &key);
    let dir = tempfile::tempdir().unwrap();
    let load = |name: &str, crl: &[u8]| with_crl(&dir, &[&root], name, crl);
    let window = (NOW - 10, NOW + 86_400);
    let listed = crl_v1("CN=Test Root", &key, &[&[0x01, 0x02]], window, None);
    // (x509-cert's own type requires the version)
    assert!(x509_cert::crl::CertificateList::from_der(&listed).is_err());
    let trust = load("v1.crl", &listed).unwrap();
    let m = untrusted(certs::check(&leaf, &[], &trust, at(NOW), false));
    assert!(m.contains("revoked") && m.contains("0102"), "{m}");
    let clean = crl_v1("CN=Test Root", &key, &[&[0x09]], window, None);
    let trust = load("v1-clean.pem", pem_crl(&clean).as_bytes()).unwrap();
    assert!(certs::check(&leaf, &[], &trust, at(NOW), false).is_ok());

    let with_ext = crl_v1(
        "CN=Test Root",
        &key,
        &[],
        window,
        Some(vec![Extension {
            extn_id: x509_cert::der::asn1::ObjectIdentifier::new_unwrap("2.5.29.20"),
            critical: false,
            extn_value: OctetString::new(vec![0x02, 0x01, 0x01]).unwrap(),
        }]),
    );
    let e = load("v1-ext.crl", &with_ext).unwrap_err().to_string();
    assert!(e.contains("v1 CRL with extensions"), "{e}");
}

/// `/readyz` learns of a CA's CRL late in its validity and past it.
#[test]
fn a_crl_near_or_past_its_next_update_needs_attention() {
    let key = alice_key();
    let root = make(&Spec::ca("CN=Test Root", "CN=Test Root"), &key);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("root.crl");
    // Valid for one day from NOW; an older one (superseded) is past.
    let mut both = pem_crl(&crl("CN=Test Root", &key, &[], NOW, NOW + 86_400));
    both.push_str(&pem_crl(&crl(
        "CN=Test Root",
        &key,
        &[],
        NOW - 90_000,
        NOW - 3_600,
    )));
    std::fs::write(&path, both).unwrap();
    let trust = store(&[&root])
        .with_crl_files(vec![path], false, Duration::from_secs(60))
        .unwrap();
    let crls = trust.crls().unwrap();
    assert_eq!(crls.len(), 2);
    // Early in its day: nothing (the superseded one does not count).
    assert_eq!(crls.attention(at(NOW + 3_600)), Vec::<String>::new());
    // In its last quarter: due.
    let lines = crls.attention(at(NOW + 70_000));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("due for renewal") && lines[0].contains("CN=Test Root"),
        "{lines:?}"
    );
    // Past it: its certificates are refused.
    let lines = crls.attention(at(NOW + 90_000));
    assert!(
        lines[0].contains("past its nextUpdate") && lines[0].contains("refused"),
        "{lines:?}"
    );
}
