//! Partner certificates: validity period and chain to configured CA
//! certificates.
//!
//! Every OSCI message carries the X.509 certificates of its parties
//! (`osci:NonIntermediaryCertificates`: the originator's signature and
//! cipher certificates, the addressee's, readers', authors'). An
//! Intermediär checks them before it relies on them; [`check`] does the
//! part that needs no network:
//!
//! 1. **validity**: `now` within `notBefore ..= notAfter`
//!    ([`CertError::NotYetValid`], [`CertError::Expired`]);
//! 2. **chain**, only when a [`TrustStore`] is configured: a path from the
//!    certificate to one of the store's certificates (a *trust anchor*),
//!    through the intermediate CA certificates the caller has (the chain a
//!    partner sent, say) and those in the store. Each step matches the
//!    child's issuer name with a CA's subject name (DER equality) and
//!    verifies the child's signature with that CA's RSA key; each CA on
//!    the path must be within its validity, must not say `cA=FALSE` in
//!    basicConstraints (a CA certificate without the extension is taken
//!    as a CA, like old roots), must allow `keyCertSign` where it has a
//!    keyUsage extension, and must respect its `pathLenConstraint`. Paths
//!    are searched depth first, at most [`MAX_CHAIN`] certificates long,
//!    without visiting a CA twice. A certificate that *is* one of the
//!    store's (same DER) is trusted as it is (a pinned partner).
//!
//! Certificate signature algorithms: `sha256WithRSAEncryption`,
//! `sha384…`, `sha512…`, RSASSA-PSS (SHA-256/384/512, MGF1 with the same
//! hash, the salt length the parameters name); `sha1WithRSAEncryption`
//! (and PSS over SHA-1) only with `allow_legacy`. Other algorithms (ECDSA,
//! …) make a step fail, so such a chain is [`CertError::Untrusted`].
//!
//! 3. **revocation**, for CAs with a configured CRL ([`crate::crl`]): on
//!    each link of the path, the child's serial number is not on its
//!    CA's CRL and that CRL is current.
//!
//! Not done here: OCSP, name constraints, policies, unknown critical
//! extensions. An empty trust store means "validity only" — the
//! configuration decides.
//!
//! # OSCI feedback codes
//!
//! The reference library (`OSCIExceptionCodes`) reports certificate
//! problems per role: a certificate out of its time range is a
//! **warning** (`37xx`/`35xx`, the request is still processed), an
//! invalid one (no trusted chain, broken signature, unreadable) an error.
//! [`CertError::feedback_code`] answers for the client's signature
//! certificate, the one every request is checked with;
//! [`CertError::feedback_code_for`] for each role:
//!
//! | role | time range (warning) | invalid (error) |
//! |---|---|---|
//! | client signature (`SignatureCertificateOriginator`) | `3700` | `9700` |
//! | client cipher (`CipherCertificateOriginator`) | `3500` | `9501` |
//! | author signature | `3701` | `3702` (warning) |
//! | author cipher | `3704` | `9704` |
//! | addressee cipher | `3705` | `9706` |
//! | addressee signature | `3708` | `9711` |
//! | reader cipher | `3706` | `9708` |
//!
//! A caller that refuses expired certificates outright (stricter than
//! the library) sends the error code of the role instead.

use std::time::SystemTime;

use base64::Engine;
use rsa::pkcs1::RsaPssParams;
use rsa::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::oid::db::rfc5912;
use x509_cert::der::oid::AssociatedOid;
use x509_cert::der::{Decode, Encode, Header, Reader, SliceReader};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::Certificate;

use std::sync::Arc;

use crate::crl::{Crl, CrlError, CrlSet};
use crate::dsig::{pkcs1_verifies, pss_verifies};

/// Longest path accepted, the certificate and its anchor included.
pub const MAX_CHAIN: usize = 8;

/// Why a certificate is not accepted.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    /// Not a DER X.509 certificate (or no certificate in a PEM text).
    #[error("not an X.509 certificate: {0}")]
    Parse(String),
    /// `now` is before `notBefore` (the subject is named).
    #[error("certificate {0:?} is not valid yet")]
    NotYetValid(String),
    /// `now` is after `notAfter` (the subject is named).
    #[error("certificate {0:?} has expired")]
    Expired(String),
    /// No path to a trust anchor; the reason of the last path tried.
    #[error("no trusted chain: {0}")]
    Untrusted(String),
}

/// The party a certificate belongs to, for [`CertError::feedback_code_for`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertRole {
    ClientSignature,
    ClientCipher,
    AuthorSignature,
    AuthorCipher,
    AddresseeSignature,
    AddresseeCipher,
    ReaderCipher,
}

impl CertRole {
    /// The role of an `osci:NonIntermediaryCertificates` child element
    /// (local name, e.g. `SignatureCertificateOriginator`); `None` for
    /// the Intermediär's own and unknown ones.
    pub fn from_element(local_name: &str) -> Option<Self> {
        Some(match local_name {
            "SignatureCertificateOriginator" => Self::ClientSignature,
            "CipherCertificateOriginator" => Self::ClientCipher,
            "SignatureCertificateOtherAuthor" => Self::AuthorSignature,
            "CipherCertificateOtherAuthor" => Self::AuthorCipher,
            "SignatureCertificateAddressee" => Self::AddresseeSignature,
            "CipherCertificateAddressee" => Self::AddresseeCipher,
            "CipherCertificateOtherReader" => Self::ReaderCipher,
            _ => return None,
        })
    }
}

impl CertError {
    /// The OSCI feedback code for the client's signature certificate:
    /// `3700` (warning) out of its time range, `9700` otherwise.
    pub fn feedback_code(&self) -> &'static str {
        self.feedback_code_for(CertRole::ClientSignature)
    }

    /// The OSCI feedback code for a certificate of `role` (the table in
    /// the module docs); codes starting with `3` are warnings.
    pub fn feedback_code_for(&self, role: CertRole) -> &'static str {
        let time = matches!(self, CertError::NotYetValid(_) | CertError::Expired(_));
        match (role, time) {
            (CertRole::ClientSignature, true) => "3700",
            (CertRole::ClientSignature, false) => "9700",
            (CertRole::ClientCipher, true) => "3500",
            (CertRole::ClientCipher, false) => "9501",
            (CertRole::AuthorSignature, true) => "3701",
            (CertRole::AuthorSignature, false) => "3702",
            (CertRole::AuthorCipher, true) => "3704",
            (CertRole::AuthorCipher, false) => "9704",
            (CertRole::AddresseeSignature, true) => "3708",
            (CertRole::AddresseeSignature, false) => "9711",
            (CertRole::AddresseeCipher, true) => "3705",
            (CertRole::AddresseeCipher, false) => "9706",
            (CertRole::ReaderCipher, true) => "3706",
            (CertRole::ReaderCipher, false) => "9708",
        }
    }
}

fn parse_error(e: impl std::fmt::Display) -> CertError {
    CertError::Parse(e.to_string())
}

/// A certificate parsed once, with its DER and its signed part.
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    der: Vec<u8>,
    pub(crate) cert: Certificate,
    /// The DER of `tbsCertificate` as sent (what the issuer signed).
    tbs: std::ops::Range<usize>,
}

impl Parsed {
    fn new(der: &[u8]) -> Result<Self, CertError> {
        let cert = Certificate::from_der(der).map_err(parse_error)?;
        // Certificate ::= SEQUENCE { tbsCertificate, … }: the first TLV
        // inside the outer header.
        let mut reader = SliceReader::new(der).map_err(parse_error)?;
        Header::decode(&mut reader).map_err(parse_error)?;
        let start = usize::try_from(reader.position()).map_err(parse_error)?;
        let len = reader.tlv_bytes().map_err(parse_error)?.len();
        Ok(Self {
            der: der.to_vec(),
            cert,
            tbs: start..start + len,
        })
    }

    pub(crate) fn subject(&self) -> String {
        self.cert.tbs_certificate.subject.to_string()
    }

    fn info(&self) -> CertInfo {
        let tbs = &self.cert.tbs_certificate;
        let serial = tbs.serial_number.as_bytes();
        // The INTEGER's content octets; a leading zero only keeps it
        // positive.
        let serial = match serial {
            [0, rest @ ..] if !rest.is_empty() => rest,
            s => s,
        };
        CertInfo {
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            serial_hex: hex::encode(serial),
            not_before: tbs.validity.not_before.to_system_time(),
            not_after: tbs.validity.not_after.to_system_time(),
            sha256_hex: hex::encode(Sha256::digest(&self.der)),
        }
    }

    fn within_validity(&self, now: SystemTime) -> Result<(), CertError> {
        let v = &self.cert.tbs_certificate.validity;
        if now < v.not_before.to_system_time() {
            return Err(CertError::NotYetValid(self.subject()));
        }
        if now > v.not_after.to_system_time() {
            return Err(CertError::Expired(self.subject()));
        }
        Ok(())
    }

    pub(crate) fn rsa_key(&self) -> Result<RsaPublicKey, String> {
        let spki = self
            .cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| e.to_string())?;
        RsaPublicKey::from_public_key_der(&spki)
            .map_err(|e| format!("the key of {:?} is not RSA: {e}", self.subject()))
    }

    pub(crate) fn extension<T: AssociatedOid + for<'a> Decode<'a>>(
        &self,
    ) -> Result<Option<T>, String> {
        let Some(ext) = self
            .cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == T::OID)
        else {
            return Ok(None);
        };
        T::from_der(ext.extn_value.as_bytes())
            .map(Some)
            .map_err(|e| format!("extension {} of {:?}: {e}", T::OID, self.subject()))
    }
}

/// What a certificate says about itself (for logs and the operator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// RFC 4514 form: the RDNs in reverse of their DER order, as Java's
    /// `X500Principal` writes them (the demo certificates, encoded `CN`
    /// first, read `C=de,O=…,CN=Alice Signature 4096`).
    pub subject: String,
    pub issuer: String,
    /// Lower-case hex of the serial number.
    pub serial_hex: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// SHA-256 of the DER, lower-case hex (the fingerprint).
    pub sha256_hex: String,
}

/// What a DER certificate says about itself.
///
/// # Errors
///
/// [`CertError::Parse`].
pub fn info(der: &[u8]) -> Result<CertInfo, CertError> {
    Parsed::new(der).map(|p| p.info())
}

/// The DER of every `CERTIFICATE` block of a PEM text, in order (other
/// blocks and text around them are skipped).
///
/// # Errors
///
/// [`CertError::Parse`]: no certificate, a block without its end, bad
/// base64.
pub fn certificates_from_pem(pem: &str) -> Result<Vec<Vec<u8>>, CertError> {
    let out = pem_blocks(pem, "CERTIFICATE").map_err(|e| CertError::Parse(format!("PEM: {e}")))?;
    if out.is_empty() {
        return Err(CertError::Parse("PEM: no CERTIFICATE block".into()));
    }
    Ok(out)
}

/// The DER of every `label` block of a PEM text, in order (other blocks
/// and text around them are skipped); errors say what is wrong.
pub(crate) fn pem_blocks(pem: &str, label: &str) -> Result<Vec<Vec<u8>>, String> {
    let (begin, end) = (
        format!("-----BEGIN {label}-----"),
        format!("-----END {label}-----"),
    );
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        match &mut block {
            None if line == begin => block = Some(String::new()),
            None => {}
            Some(b64) if line == end => {
                out.push(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64.as_bytes())
                        .map_err(|e| format!("base64: {e}"))?,
                );
                block = None;
            }
            Some(_) if line.starts_with("-----") => {
                return Err(format!("{line} inside a {label} block"));
            }
            Some(b64) => b64.push_str(line),
        }
    }
    if block.is_some() {
        return Err(format!("a {label} block without its end"));
    }
    Ok(out)
}

/// The configured CA certificates (trust anchors), and the CRLs of those
/// CAs if any are configured ([`crate::crl`]).
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    anchors: Vec<Parsed>,
    crls: Option<Arc<CrlSet>>,
}

impl TrustStore {
    /// Every `CERTIFICATE` block of `pem` (one or more).
    ///
    /// # Errors
    ///
    /// [`CertError::Parse`]: no certificate, or one that does not parse.
    pub fn from_pem(pem: &str) -> Result<Self, CertError> {
        let anchors = certificates_from_pem(pem)?
            .iter()
            .map(|der| Parsed::new(der))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            anchors,
            crls: None,
        })
    }

    /// The same anchors with the CRL files `files` (each verified by one
    /// of the anchors; looked at again at most every `refresh_every`, see
    /// [`crate::crl`]). `allow_legacy` admits SHA-1 CRL signatures.
    ///
    /// # Errors
    ///
    /// A file that cannot be read, is no CRL, or no anchor signed.
    pub fn with_crl_files(
        mut self,
        files: Vec<std::path::PathBuf>,
        allow_legacy: bool,
        refresh_every: std::time::Duration,
    ) -> Result<Self, CrlError> {
        self.crls = if files.is_empty() {
            None
        } else {
            Some(Arc::new(CrlSet::load(
                files,
                self.anchors.clone(),
                allow_legacy,
                refresh_every,
            )?))
        };
        Ok(self)
    }

    /// The CRL files and what they hold now, if any are configured.
    pub fn crls(&self) -> Option<&CrlSet> {
        self.crls.as_deref()
    }

    /// No anchors: [`check`] tests validity only.
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// How many anchors.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// What the anchors say about themselves.
    pub fn anchors(&self) -> Vec<CertInfo> {
        self.anchors.iter().map(Parsed::info).collect()
    }
}

/// Check `der` at `now` (see the module docs): its validity period, and
/// when `trust` is not empty a chain to one of its anchors through
/// `intermediates` (DER; ones that do not parse are skipped) and the
/// store. `allow_legacy` admits SHA-1 certificate signatures. Returns
/// what the certificate says about itself.
///
/// # Errors
///
/// See [`CertError`].
pub fn check(
    der: &[u8],
    intermediates: &[Vec<u8>],
    trust: &TrustStore,
    now: SystemTime,
    allow_legacy: bool,
) -> Result<CertInfo, CertError> {
    let leaf = Parsed::new(der)?;
    leaf.within_validity(now)?;
    let info = leaf.info();
    if trust.is_empty() || trust.anchors.iter().any(|a| a.der == leaf.der) {
        return Ok(info);
    }
    let intermediates: Vec<Parsed> = intermediates
        .iter()
        .filter_map(|d| Parsed::new(d).ok())
        .collect();
    let crls = trust.crls.as_ref().map(|c| c.current());
    let search = Search {
        anchors: &trust.anchors,
        intermediates: &intermediates,
        crls: crls.as_deref().map(Vec::as_slice).unwrap_or_default(),
        now,
        allow_legacy,
    };
    let mut visited = vec![leaf.der.as_slice()];
    search
        .up(&leaf, 1, &mut visited)
        .map_err(|e| CertError::Untrusted(e.reason()))?;
    Ok(info)
}

/// Why a step of a path failed.
enum Step {
    /// `ca` is not (or may not be) the issuer.
    NotThis(String),
    /// `ca` issued the certificate, which is revoked or whose revocation
    /// status is unknown.
    Refused(String),
}

impl Step {
    fn reason(self) -> String {
        match self {
            Step::NotThis(m) | Step::Refused(m) => m,
        }
    }
}

struct Search<'a> {
    anchors: &'a [Parsed],
    intermediates: &'a [Parsed],
    /// The CRLs in force (empty: no revocation checks).
    crls: &'a [Crl],
    now: SystemTime,
    allow_legacy: bool,
}

impl<'a> Search<'a> {
    /// Find an issuer for `child`, the `len`th certificate of the path
    /// (the leaf is the first), and go on up to an anchor.
    ///
    /// The error is the reason of the last path tried — unless a path
    /// got as far as a CA that did sign and then refused (revoked, status
    /// unknown): that reason is kept over a later "not this CA".
    fn up(&self, child: &Parsed, len: usize, visited: &mut Vec<&'a [u8]>) -> Result<(), Step> {
        if len >= MAX_CHAIN {
            return Err(Step::NotThis(format!(
                "no anchor within {MAX_CHAIN} certificates"
            )));
        }
        let issuer = &child.cert.tbs_certificate.issuer;
        let mut last = Step::NotThis(format!("no CA certificate named {issuer}"));
        let keep = |e: Step, last: &mut Step| {
            if matches!(e, Step::Refused(_)) || matches!(last, Step::NotThis(_)) {
                *last = e;
            }
        };
        // Intermediate CAs between this issuer and the leaf.
        let below = len - 1;
        for anchor in self
            .anchors
            .iter()
            .filter(|a| &a.cert.tbs_certificate.subject == issuer)
        {
            match self.issued_by(child, anchor, below) {
                Ok(()) => return Ok(()),
                Err(e) => keep(e, &mut last),
            }
        }
        for ca in self
            .intermediates
            .iter()
            .filter(|c| &c.cert.tbs_certificate.subject == issuer)
        {
            if visited.contains(&ca.der.as_slice()) {
                continue;
            }
            if let Err(e) = self.issued_by(child, ca, below) {
                keep(e, &mut last);
                continue;
            }
            visited.push(ca.der.as_slice());
            match self.up(ca, len + 1, visited) {
                Ok(()) => return Ok(()),
                Err(e) => keep(e, &mut last),
            }
            visited.pop();
        }
        Err(last)
    }

    /// Whether `ca` (with `below` intermediate CAs under it on this path)
    /// may have issued `child` and did, and `child` is not revoked.
    fn issued_by(&self, child: &Parsed, ca: &Parsed, below: usize) -> Result<(), Step> {
        self.signed_by(child, ca, below).map_err(Step::NotThis)?;
        if self.crls.is_empty() {
            return Ok(());
        }
        let tbs = &ca.cert.tbs_certificate;
        let spki = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|e| Step::NotThis(e.to_string()))?;
        crate::crl::status(
            self.crls,
            &tbs.subject,
            &spki,
            child.cert.tbs_certificate.serial_number.as_bytes(),
            &child.subject(),
            self.now,
        )
        .map_err(Step::Refused)
    }

    /// Whether `ca` may have issued `child` and did.
    fn signed_by(&self, child: &Parsed, ca: &Parsed, below: usize) -> Result<(), String> {
        let name = ca.subject();
        ca.within_validity(self.now).map_err(|e| e.to_string())?;
        match ca.extension::<BasicConstraints>()? {
            Some(bc) if !bc.ca => return Err(format!("{name:?} is not a CA")),
            Some(BasicConstraints {
                path_len_constraint: Some(max),
                ..
            }) if below > usize::from(max) => {
                return Err(format!("{name:?} allows at most {max} CAs below it"));
            }
            _ => {}
        }
        if let Some(usage) = ca.extension::<KeyUsage>()? {
            if !usage.key_cert_sign() {
                return Err(format!("{name:?} may not sign certificates"));
            }
        }
        let key = ca.rsa_key()?;
        if self.signature_verifies(child, &key)? {
            Ok(())
        } else {
            Err(format!(
                "the signature of {:?} by {name:?} does not verify",
                child.subject()
            ))
        }
    }

    fn signature_verifies(&self, child: &Parsed, key: &RsaPublicKey) -> Result<bool, String> {
        let alg = &child.cert.signature_algorithm;
        if alg != &child.cert.tbs_certificate.signature {
            return Err(format!(
                "{:?} names two signature algorithms",
                child.subject()
            ));
        }
        let value = child
            .cert
            .signature
            .as_bytes()
            .ok_or_else(|| "a signature that is not whole bytes".to_owned())?;
        let tbs = child
            .der
            .get(child.tbs.clone())
            .ok_or_else(|| "the signed part is missing".to_owned())?;
        verify_signature(
            alg,
            key,
            tbs,
            value,
            self.allow_legacy,
            &format!("{:?}", child.subject()),
        )
    }
}

/// Whether `value` is `key`'s signature of `tbs` by algorithm `alg`
/// (what `what` names in errors); SHA-1 only with `allow_legacy`.
pub(crate) fn verify_signature(
    alg: &spki::AlgorithmIdentifierOwned,
    key: &RsaPublicKey,
    tbs: &[u8],
    value: &[u8],
    allow_legacy: bool,
    what: &str,
) -> Result<bool, String> {
    let legacy = |name: &str| -> Result<(), String> {
        if allow_legacy {
            Ok(())
        } else {
            Err(format!("{what} is signed with legacy {name}"))
        }
    };
    Ok(match alg.oid {
        rfc5912::SHA_256_WITH_RSA_ENCRYPTION => pkcs1_verifies::<Sha256>(key, tbs, value),
        rfc5912::SHA_384_WITH_RSA_ENCRYPTION => pkcs1_verifies::<Sha384>(key, tbs, value),
        rfc5912::SHA_512_WITH_RSA_ENCRYPTION => pkcs1_verifies::<Sha512>(key, tbs, value),
        rfc5912::SHA_1_WITH_RSA_ENCRYPTION => {
            legacy("sha1WithRSAEncryption")?;
            pkcs1_verifies::<sha1::Sha1>(key, tbs, value)
        }
        rfc5912::ID_RSASSA_PSS => {
            let params = alg
                .parameters
                .as_ref()
                .map(|p| p.to_der())
                .transpose()
                .map_err(|e| e.to_string())?;
            let params = match &params {
                Some(der) => RsaPssParams::try_from(der.as_slice())
                    .map_err(|e| format!("RSASSA-PSS parameters: {e}"))?,
                None => RsaPssParams::default(),
            };
            let hash = params.hash.oid;
            let mgf_hash = params.mask_gen.parameters.map(|p| p.oid);
            if params.mask_gen.oid != rfc5912::ID_MGF_1 || mgf_hash != Some(hash) {
                return Err("RSASSA-PSS with a mask other than MGF1 over its hash".into());
            }
            let salt = usize::from(params.salt_len);
            match hash {
                rfc5912::ID_SHA_256 => pss_verifies::<Sha256>(key, tbs, value, salt),
                rfc5912::ID_SHA_384 => pss_verifies::<Sha384>(key, tbs, value, salt),
                rfc5912::ID_SHA_512 => pss_verifies::<Sha512>(key, tbs, value, salt),
                rfc5912::ID_SHA_1 => {
                    legacy("RSASSA-PSS over SHA-1")?;
                    pss_verifies::<sha1::Sha1>(key, tbs, value, salt)
                }
                other => return Err(format!("RSASSA-PSS over {other}")),
            }
        }
        other => {
            return Err(format!(
                "unsupported signature algorithm {}",
                oid_name(other)
            ))
        }
    })
}

fn oid_name(oid: ObjectIdentifier) -> String {
    x509_cert::der::oid::db::DB
        .by_oid(&oid)
        .map_or_else(|| oid.to_string(), str::to_owned)
}
