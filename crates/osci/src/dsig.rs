//! XML signatures as OSCI uses them (XML-DSig with inclusive C14N 1.0):
//! checking one `ds:Signature` ([`verify`], [`verify_with`]) and making
//! one ([`sign`], [`sign_with`]).
//!
//! # What a check does
//!
//! 1. The `ds:SignedInfo` names its algorithms: canonicalisation must be
//!    inclusive C14N 1.0, the signature method and every digest method one
//!    of the table below.
//! 2. Every `ds:Reference` is recomputed and compared with its
//!    `ds:DigestValue`: `URI="#id"` is the element with that `Id`,
//!    canonicalised **in its context** (it carries the namespaces it
//!    inherits from the envelope) or, with the `base64` transform, the
//!    bytes its base64 text decodes to (OSCI's `osci:Base64Content`);
//!    `URI="cid:…"` is the raw body of that MIME part.
//! 3. The `ds:SignatureValue` is checked with the signer's RSA key over
//!    the canonical `ds:SignedInfo` — again in context, so the
//!    `xmlns:…` declarations of the envelope are part of what was signed.
//!
//! A check returns the URIs the signature covers; which parts *must* be
//! covered (every header block and the body for a `ClientSignature`) is
//! the caller's rule.
//!
//! # Algorithms
//!
//! | kind | accepted | legacy (only with [`Algorithms::allow_legacy`]) |
//! |---|---|---|
//! | signature | `xmldsig-more#rsa-sha256`, `#rsa-sha384`, `#rsa-sha512` (PKCS#1 v1.5); RSA-PSS `2007/05/xmldsig-more#sha256-rsa-MGF1`, `#sha384-…`, `#sha512-…`, `#sha3-256-…`, `#sha3-384-…`, `#sha3-512-rsa-MGF1` (MGF1 with the same hash, salt length = digest length, RFC 6931 §2.3.10) | `xmldsig#rsa-sha1` |
//! | digest | `xmlenc#sha256`, `xmldsig-more#sha384`, `xmlenc#sha512`, `2007/05/xmldsig-more#sha3-256`, `#sha3-384`, `#sha3-512` (and the non-standard alias `xmldsig#sha256` older partners write) | `xmldsig#sha1` |
//!
//! A legacy algorithm is refused by default as [`DsigError::Legacy`] (so a
//! caller can tell "old partner, could be switched on" from "unknown"),
//! anything else as [`DsigError::Unsupported`].
//!
//! # Making a signature
//!
//! [`sign`] puts a complete `ds:Signature` where the caller left a marker
//! in the envelope. OSCI never uses the enveloped-signature transform: a
//! `ClientSignature` is a header block next to the blocks it signs, a
//! content signature sits in its `ContentContainer` next to the `Content`
//! it signs. So the signature must lie outside every element it
//! references, and `sign` refuses otherwise. It works in two passes over
//! the document as it will be:
//!
//! 1. the marker is replaced by a processing instruction carrying a random
//!    token; each referenced element is canonicalised in context and
//!    digested (a token in its canonical form means the signature would
//!    sit inside it);
//! 2. the marker is replaced by the finished `ds:Signature` — final
//!    digests, the token as a stand-in `SignatureValue` — and the
//!    document is parsed again; that `ds:SignedInfo` is canonicalised in
//!    context and signed, and the value replaces the token.
//!
//! The canonical `SignedInfo` is therefore taken from the same bytes a
//! verifier will parse. The layout copies the reference library's
//! (a line feed after each element inside `SignedInfo`, empty elements
//! written as start and end tag, the signature value in base64 lines of
//! 76 characters each ending in a line feed), so a signature by the same
//! key over the same references is byte for byte the library's
//! (`tests/sign.rs` re-creates a captured one).
//!
//! # OSCI feedback codes
//!
//! [`DsigError::feedback_code`] maps a failed check to the code an
//! Intermediär answers with, as the reference library's
//! `OSCIExceptionCodes` names them:
//!
//! | code | meaning | errors |
//! |---|---|---|
//! | `9100` | message structure invalid | [`DsigError::Structure`], [`DsigError::C14n`] |
//! | `9600` | request not signed | (the caller: no `ClientSignature`) |
//! | `9601` | signature invalid | [`DsigError::BadSignature`], [`DsigError::DigestMismatch`], [`DsigError::Unsupported`], [`DsigError::Legacy`] |
//! | `9602` | not all relevant parts signed | (the caller, from the URIs a check returns) |
//! | `9700` | signature certificate of the client invalid | [`DsigError::Certificate`] |
//! | `9000` | internal error of the supplier | [`DsigError::Signing`] (our own key failed) |

use base64::Engine;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::{pkcs1v15, pss, RsaPrivateKey, RsaPublicKey};
use sha2::digest::FixedOutputReset;
use sha2::{Digest, Sha256, Sha384, Sha512};
use sha3::{Sha3_256, Sha3_384, Sha3_512};
use x509_cert::der::oid::AssociatedOid;
use x509_cert::der::{Decode, Encode};

use crate::c14n::{C14nError, Document, ElementRef};
use crate::mime::Message;

const C14N_10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const BASE64_TRANSFORM: &str = "http://www.w3.org/2000/09/xmldsig#base64";
/// Most references one signature may make ([`sign`]).
pub const MAX_REFERENCES: usize = 1_000;

/// Why a signature does not verify, or cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DsigError {
    #[error("signature structure: {0}")]
    Structure(String),
    #[error("unsupported algorithm {0}")]
    Unsupported(String),
    #[error("legacy algorithm {0} (not allowed for this partner)")]
    Legacy(String),
    #[error("reference {0}: the digest does not match")]
    DigestMismatch(String),
    #[error("the signature value does not verify")]
    BadSignature,
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error(transparent)]
    C14n(#[from] C14nError),
}

impl DsigError {
    /// The OSCI feedback code for this error (see the module docs).
    pub fn feedback_code(&self) -> &'static str {
        match self {
            DsigError::Structure(_) | DsigError::C14n(_) => "9100",
            DsigError::Unsupported(_)
            | DsigError::Legacy(_)
            | DsigError::DigestMismatch(_)
            | DsigError::BadSignature => "9601",
            DsigError::Certificate(_) => "9700",
            DsigError::Signing(_) => "9000",
        }
    }
}

/// Which algorithms a check accepts (per partner).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Algorithms {
    /// Accept `rsa-sha1` signatures and SHA-1 digests (old partners).
    pub allow_legacy: bool,
}

/// A signature method (`ds:SignatureMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMethod {
    /// `xmldsig-more#rsa-sha256`, RSASSA-PKCS1-v1_5 — the reference
    /// library's default.
    RsaSha256,
    RsaSha384,
    RsaSha512,
    /// RSASSA-PSS, MGF1 with the same hash, salt length = digest length.
    RsaPssSha256,
    RsaPssSha384,
    RsaPssSha512,
    RsaPssSha3_256,
    RsaPssSha3_384,
    RsaPssSha3_512,
    /// `xmldsig#rsa-sha1`: legacy, verified only when allowed; signing
    /// with it exists for answering old partners and for tests.
    LegacyRsaSha1,
}

impl SignatureMethod {
    const ALL: [SignatureMethod; 10] = [
        Self::RsaSha256,
        Self::RsaSha384,
        Self::RsaSha512,
        Self::RsaPssSha256,
        Self::RsaPssSha384,
        Self::RsaPssSha512,
        Self::RsaPssSha3_256,
        Self::RsaPssSha3_384,
        Self::RsaPssSha3_512,
        Self::LegacyRsaSha1,
    ];

    /// The algorithm URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::RsaSha256 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            Self::RsaSha384 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
            Self::RsaSha512 => "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
            Self::RsaPssSha256 => "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
            Self::RsaPssSha384 => "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1",
            Self::RsaPssSha512 => "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1",
            Self::RsaPssSha3_256 => "http://www.w3.org/2007/05/xmldsig-more#sha3-256-rsa-MGF1",
            Self::RsaPssSha3_384 => "http://www.w3.org/2007/05/xmldsig-more#sha3-384-rsa-MGF1",
            Self::RsaPssSha3_512 => "http://www.w3.org/2007/05/xmldsig-more#sha3-512-rsa-MGF1",
            Self::LegacyRsaSha1 => "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        }
    }

    /// The method an algorithm URI names, if known.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.uri() == uri)
    }

    /// Only accepted with [`Algorithms::allow_legacy`].
    pub fn is_legacy(self) -> bool {
        self == Self::LegacyRsaSha1
    }

    fn check_value(self, key: &RsaPublicKey, message: &[u8], value: &[u8]) -> bool {
        match self {
            Self::RsaSha256 => pkcs1_verifies::<Sha256>(key, message, value),
            Self::RsaSha384 => pkcs1_verifies::<Sha384>(key, message, value),
            Self::RsaSha512 => pkcs1_verifies::<Sha512>(key, message, value),
            Self::RsaPssSha256 => pss_default_verifies::<Sha256>(key, message, value),
            Self::RsaPssSha384 => pss_default_verifies::<Sha384>(key, message, value),
            Self::RsaPssSha512 => pss_default_verifies::<Sha512>(key, message, value),
            Self::RsaPssSha3_256 => pss_default_verifies::<Sha3_256>(key, message, value),
            Self::RsaPssSha3_384 => pss_default_verifies::<Sha3_384>(key, message, value),
            Self::RsaPssSha3_512 => pss_default_verifies::<Sha3_512>(key, message, value),
            Self::LegacyRsaSha1 => pkcs1_verifies::<sha1::Sha1>(key, message, value),
        }
    }

    fn make_value(self, key: &RsaPrivateKey, message: &[u8]) -> Result<Vec<u8>, DsigError> {
        match self {
            Self::RsaSha256 => pkcs1_sign::<Sha256>(key, message),
            Self::RsaSha384 => pkcs1_sign::<Sha384>(key, message),
            Self::RsaSha512 => pkcs1_sign::<Sha512>(key, message),
            Self::RsaPssSha256 => pss_sign::<Sha256>(key, message),
            Self::RsaPssSha384 => pss_sign::<Sha384>(key, message),
            Self::RsaPssSha512 => pss_sign::<Sha512>(key, message),
            Self::RsaPssSha3_256 => pss_sign::<Sha3_256>(key, message),
            Self::RsaPssSha3_384 => pss_sign::<Sha3_384>(key, message),
            Self::RsaPssSha3_512 => pss_sign::<Sha3_512>(key, message),
            Self::LegacyRsaSha1 => pkcs1_sign::<sha1::Sha1>(key, message),
        }
    }
}

/// Whether `value` is an RSASSA-PKCS1-v1_5 signature of `msg` over `D`
/// by `key` (also used for certificate signatures).
pub(crate) fn pkcs1_verifies<D: Digest + AssociatedOid>(
    key: &RsaPublicKey,
    msg: &[u8],
    value: &[u8],
) -> bool {
    pkcs1v15::Signature::try_from(value).is_ok_and(|sig| {
        pkcs1v15::VerifyingKey::<D>::new(key.clone())
            .verify(msg, &sig)
            .is_ok()
    })
}

/// Whether `value` is an RSASSA-PSS signature of `msg` over `D` (MGF1
/// with `D`) with a salt of `salt_len` bytes by `key`.
pub(crate) fn pss_verifies<D: Digest + FixedOutputReset>(
    key: &RsaPublicKey,
    msg: &[u8],
    value: &[u8],
    salt_len: usize,
) -> bool {
    pss::Signature::try_from(value).is_ok_and(|sig| {
        pss::VerifyingKey::<D>::new_with_salt_len(key.clone(), salt_len)
            .verify(msg, &sig)
            .is_ok()
    })
}

/// [`pss_verifies`] with the salt length of XML-DSig's `…-rsa-MGF1`
/// methods: the digest length.
fn pss_default_verifies<D: Digest + FixedOutputReset>(
    key: &RsaPublicKey,
    msg: &[u8],
    value: &[u8],
) -> bool {
    pss_verifies::<D>(key, msg, value, <D as Digest>::output_size())
}

// Both sign with a random number generator: for PKCS#1 v1.5 it only
// blinds the private-key operation (the value stays deterministic).
fn pkcs1_sign<D: Digest + AssociatedOid>(
    key: &RsaPrivateKey,
    msg: &[u8],
) -> Result<Vec<u8>, DsigError> {
    pkcs1v15::SigningKey::<D>::new(key.clone())
        .try_sign_with_rng(&mut rand::thread_rng(), msg)
        .map(|s| s.to_vec())
        .map_err(|e| DsigError::Signing(e.to_string()))
}

fn pss_sign<D: Digest + FixedOutputReset>(
    key: &RsaPrivateKey,
    msg: &[u8],
) -> Result<Vec<u8>, DsigError> {
    pss::SigningKey::<D>::new(key.clone())
        .try_sign_with_rng(&mut rand::thread_rng(), msg)
        .map(|s| s.to_vec())
        .map_err(|e| DsigError::Signing(e.to_string()))
}

/// A digest method (`ds:DigestMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestMethod {
    /// `xmlenc#sha256` — the reference library's default.
    Sha256,
    Sha384,
    Sha512,
    Sha3_256,
    Sha3_384,
    Sha3_512,
    /// `xmldsig#sha1`: legacy.
    LegacySha1,
}

impl DigestMethod {
    const ALL: [DigestMethod; 7] = [
        Self::Sha256,
        Self::Sha384,
        Self::Sha512,
        Self::Sha3_256,
        Self::Sha3_384,
        Self::Sha3_512,
        Self::LegacySha1,
    ];

    /// The algorithm URI written when signing.
    pub fn uri(self) -> &'static str {
        match self {
            Self::Sha256 => "http://www.w3.org/2001/04/xmlenc#sha256",
            Self::Sha384 => "http://www.w3.org/2001/04/xmldsig-more#sha384",
            Self::Sha512 => "http://www.w3.org/2001/04/xmlenc#sha512",
            Self::Sha3_256 => "http://www.w3.org/2007/05/xmldsig-more#sha3-256",
            Self::Sha3_384 => "http://www.w3.org/2007/05/xmldsig-more#sha3-384",
            Self::Sha3_512 => "http://www.w3.org/2007/05/xmldsig-more#sha3-512",
            Self::LegacySha1 => "http://www.w3.org/2000/09/xmldsig#sha1",
        }
    }

    /// The method an algorithm URI names (aliases included), if known.
    pub fn from_uri(uri: &str) -> Option<Self> {
        if uri == "http://www.w3.org/2000/09/xmldsig#sha256" {
            return Some(Self::Sha256);
        }
        Self::ALL.into_iter().find(|m| m.uri() == uri)
    }

    /// Only accepted with [`Algorithms::allow_legacy`].
    pub fn is_legacy(self) -> bool {
        self == Self::LegacySha1
    }

    /// The digest of `bytes`.
    pub fn digest(self, bytes: &[u8]) -> Vec<u8> {
        fn run<D: Digest>(bytes: &[u8]) -> Vec<u8> {
            D::digest(bytes).to_vec()
        }
        match self {
            Self::Sha256 => run::<Sha256>(bytes),
            Self::Sha384 => run::<Sha384>(bytes),
            Self::Sha512 => run::<Sha512>(bytes),
            Self::Sha3_256 => run::<Sha3_256>(bytes),
            Self::Sha3_384 => run::<Sha3_384>(bytes),
            Self::Sha3_512 => run::<Sha3_512>(bytes),
            Self::LegacySha1 => run::<sha1::Sha1>(bytes),
        }
    }
}

fn structure(m: impl Into<String>) -> DsigError {
    DsigError::Structure(m.into())
}

fn b64(text: &str) -> Result<Vec<u8>, DsigError> {
    let compact: String = text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| structure(format!("base64: {e}")))
}

/// The RSA public key of a DER X.509 certificate.
///
/// # Errors
///
/// Not a certificate, or not an RSA key.
pub fn rsa_key_of_certificate(der: &[u8]) -> Result<RsaPublicKey, DsigError> {
    let cert =
        x509_cert::Certificate::from_der(der).map_err(|e| DsigError::Certificate(e.to_string()))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| DsigError::Certificate(e.to_string()))?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|e| DsigError::Certificate(e.to_string()))
}

/// The certificate a signature's `ds:KeyInfo` names: an inline
/// `ds:X509Certificate`, or a `ds:RetrievalMethod` to an element (by Id)
/// holding one (OSCI's `NonIntermediaryCertificates`). DER bytes.
///
/// # Errors
///
/// No certificate found.
pub fn signer_certificate(doc: &Document, signature: ElementRef<'_>) -> Result<Vec<u8>, DsigError> {
    let key_info = signature
        .child("KeyInfo")
        .ok_or_else(|| structure("no ds:KeyInfo"))?;
    let holder = match key_info
        .child("RetrievalMethod")
        .and_then(|r| r.attr("URI"))
    {
        Some(uri) => {
            let id = uri.strip_prefix('#').ok_or_else(|| {
                structure(format!(
                    "RetrievalMethod {uri:?} is not a same-document reference"
                ))
            })?;
            doc.element_by_id(id)?
        }
        None => key_info,
    };
    let data = holder
        .child("X509Data")
        .and_then(|d| d.child("X509Certificate"))
        .ok_or_else(|| structure("no ds:X509Certificate"))?;
    b64(&data.text())
}

/// [`verify_with`] under the default policy (no legacy algorithms).
///
/// # Errors
///
/// See [`DsigError`].
pub fn verify(
    doc: &Document,
    message: Option<&Message<'_>>,
    signature: ElementRef<'_>,
    key: &RsaPublicKey,
) -> Result<Vec<String>, DsigError> {
    verify_with(doc, message, signature, key, Algorithms::default())
}

/// Verify `signature` (a `ds:Signature` element of `doc`, whose MIME
/// message is `message` for `cid:` references) with `key`, accepting the
/// algorithms `algorithms` allows; returns the URIs of the references it
/// covers, in order.
///
/// # Errors
///
/// See [`DsigError`]; the signature and digest algorithms are all
/// checked before anything is digested.
pub fn verify_with(
    doc: &Document,
    message: Option<&Message<'_>>,
    signature: ElementRef<'_>,
    key: &RsaPublicKey,
    algorithms: Algorithms,
) -> Result<Vec<String>, DsigError> {
    let signed_info = signature
        .child("SignedInfo")
        .ok_or_else(|| structure("no ds:SignedInfo"))?;
    let algorithm = |e: Option<ElementRef<'_>>, what: &str| -> Result<String, DsigError> {
        e.and_then(|m| m.attr("Algorithm"))
            .map(str::to_owned)
            .ok_or_else(|| structure(format!("no {what} Algorithm")))
    };
    let c14n = algorithm(
        signed_info.child("CanonicalizationMethod"),
        "CanonicalizationMethod",
    )?;
    if c14n != C14N_10 {
        return Err(DsigError::Unsupported(c14n));
    }
    let method_uri = algorithm(signed_info.child("SignatureMethod"), "SignatureMethod")?;
    let method = SignatureMethod::from_uri(&method_uri)
        .ok_or_else(|| DsigError::Unsupported(method_uri.clone()))?;
    if method.is_legacy() && !algorithms.allow_legacy {
        return Err(DsigError::Legacy(method_uri));
    }

    // Every reference's algorithms first, then the digests.
    let mut references = Vec::new();
    for reference in signed_info.children_named("Reference") {
        let uri = reference
            .attr("URI")
            .ok_or_else(|| structure("a ds:Reference without URI"))?;
        let digest_uri = algorithm(reference.child("DigestMethod"), "DigestMethod")?;
        let digest = DigestMethod::from_uri(&digest_uri)
            .ok_or_else(|| DsigError::Unsupported(digest_uri.clone()))?;
        if digest.is_legacy() && !algorithms.allow_legacy {
            return Err(DsigError::Legacy(digest_uri));
        }
        references.push((reference, uri, digest));
    }
    if references.is_empty() {
        return Err(structure("a signature over nothing"));
    }
    if references.len() > MAX_REFERENCES {
        return Err(structure(format!(
            "more than {MAX_REFERENCES} references in one signature"
        )));
    }
    {
        let mut uris: Vec<&str> = references.iter().map(|(_, u, _)| *u).collect();
        uris.sort_unstable();
        if uris.windows(2).any(|w| w[0] == w[1]) {
            return Err(structure("a signature references one URI twice"));
        }
    }
    // The signature value first: one RSA operation decides whether the
    // digests (which cost time in the size of what they cover) are worth
    // computing at all.
    let value = b64(&signature
        .child("SignatureValue")
        .ok_or_else(|| structure("no ds:SignatureValue"))?
        .text())?;
    if !method.check_value(key, &signed_info.canonicalize()?, &value) {
        return Err(DsigError::BadSignature);
    }

    let mut covered = Vec::new();
    for (reference, uri, digest) in references {
        let transforms: Vec<String> = reference
            .child("Transforms")
            .map(|t| {
                t.children_named("Transform")
                    .into_iter()
                    .filter_map(|t| t.attr("Algorithm").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let bytes = match uri.strip_prefix('#') {
            Some(id) => {
                let target = doc.element_by_id(id)?;
                match transforms.as_slice() {
                    [] => target.canonicalize()?,
                    [t] if t == C14N_10 => target.canonicalize()?,
                    [t] if t == BASE64_TRANSFORM => b64(&target.text())?,
                    other => return Err(DsigError::Unsupported(other.join(" "))),
                }
            }
            None if uri.starts_with("cid:") => {
                if !transforms.is_empty() {
                    return Err(DsigError::Unsupported(transforms.join(" ")));
                }
                // Digested where it lies, not copied.
                let part = message
                    .and_then(|m| m.part(uri))
                    .ok_or_else(|| structure(format!("no MIME part {uri}")))?;
                let expected = b64(&reference
                    .child("DigestValue")
                    .ok_or_else(|| structure("no ds:DigestValue"))?
                    .text())?;
                if digest.digest(part.body) != expected {
                    return Err(DsigError::DigestMismatch(uri.to_owned()));
                }
                covered.push(uri.to_owned());
                continue;
            }
            None => return Err(DsigError::Unsupported(format!("reference URI {uri:?}"))),
        };
        let expected = b64(&reference
            .child("DigestValue")
            .ok_or_else(|| structure("no ds:DigestValue"))?
            .text())?;
        if digest.digest(&bytes) != expected {
            return Err(DsigError::DigestMismatch(uri.to_owned()));
        }
        covered.push(uri.to_owned());
    }
    Ok(covered)
}

/// What one `ds:Reference` of a new signature points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefTarget<'a> {
    /// The element with this `Id`, C14N 1.0 transform.
    Id(&'a str),
    /// The element with this `Id` whose text is base64 (like
    /// `osci:Base64Content`): `base64` transform, the decoded bytes are
    /// digested.
    Base64Id(&'a str),
    /// A MIME part (`uri` is `cid:…`): its raw bytes are digested, no
    /// transform.
    Cid { uri: &'a str, bytes: &'a [u8] },
}

/// [`sign_with`] with SHA-256 digests (what the reference library uses).
///
/// # Errors
///
/// See [`sign_with`].
pub fn sign(
    xml: &str,
    marker: &str,
    targets: &[RefTarget<'_>],
    method: SignatureMethod,
    key: &RsaPrivateKey,
    key_info: &str,
) -> Result<String, DsigError> {
    sign_with(
        xml,
        marker,
        targets,
        method,
        DigestMethod::Sha256,
        key,
        key_info,
    )
}

/// Sign: `xml` is a complete XML document (the SOAP envelope of an OSCI
/// message) containing the text `marker` exactly once, at a place where
/// the `ds` prefix (`http://www.w3.org/2000/09/xmldsig#`) is in scope.
/// Returns `xml` with `marker` replaced by a complete `ds:Signature`:
/// inclusive C14N 1.0, `method`, `digest` for every reference, one
/// `ds:Reference` per target in order, and `<ds:KeyInfo>{key_info}</ds:KeyInfo>`
/// (`key_info` is XML the caller provides, e.g.
/// `<ds:RetrievalMethod URI="#originator_signature_…"></ds:RetrievalMethod>`).
/// See the module docs for how and why.
///
/// # Errors
///
/// [`DsigError::Structure`]: the marker is missing, empty or not unique,
/// no targets (or more than [`MAX_REFERENCES`]), a target's text is not
/// base64, a `Cid` URI without `cid:`, or the marker lies inside a
/// referenced element; [`DsigError::C14n`]: the document (with the
/// signature) does not parse, an Id is missing or not unique, `ds` is not
/// in scope; [`DsigError::Signing`]: the key cannot make this signature.
pub fn sign_with(
    xml: &str,
    marker: &str,
    targets: &[RefTarget<'_>],
    method: SignatureMethod,
    digest: DigestMethod,
    key: &RsaPrivateKey,
    key_info: &str,
) -> Result<String, DsigError> {
    if marker.is_empty() || xml.matches(marker).count() != 1 {
        return Err(structure("the signature marker must occur exactly once"));
    }
    let (before, after) = xml
        .split_once(marker)
        .ok_or_else(|| structure("the signature marker must occur exactly once"))?;
    if targets.is_empty() || targets.len() > MAX_REFERENCES {
        return Err(structure(format!(
            "a signature needs 1 to {MAX_REFERENCES} references"
        )));
    }
    // A token that cannot occur in the document by chance.
    let token = format!(
        "drehscheibe-dsig-{}",
        hex::encode(rand::random::<[u8; 16]>())
    );
    if xml.contains(&token) {
        return Err(structure("the document already holds the signing token"));
    }

    // Pass 1: digests of the referenced elements, in context.
    let probe = format!("{before}<?{token}?>{after}");
    let doc = Document::parse(probe.as_bytes())?;
    let mut references = Vec::with_capacity(targets.len());
    for target in targets {
        let (uri, transform, hash) = match *target {
            RefTarget::Id(id) | RefTarget::Base64Id(id) => {
                let element = doc.element_by_id(id)?;
                let canonical = element.canonicalize()?;
                if contains(&canonical, token.as_bytes()) {
                    return Err(structure(format!(
                        "the signature would lie inside the element #{id} it signs"
                    )));
                }
                if let RefTarget::Base64Id(_) = target {
                    (
                        format!("#{id}"),
                        BASE64_TRANSFORM,
                        digest.digest(&b64(&element.text())?),
                    )
                } else {
                    (format!("#{id}"), C14N_10, digest.digest(&canonical))
                }
            }
            RefTarget::Cid { uri, bytes } => {
                if !uri.starts_with("cid:") {
                    return Err(structure(format!("{uri:?} is not a cid: URI")));
                }
                // Digested where it lies, not copied.
                (uri.to_owned(), "", digest.digest(bytes))
            }
        };
        let value = base64::engine::general_purpose::STANDARD.encode(hash);
        references.push((uri, transform, value));
    }
    drop(doc);

    // Pass 2: the SignedInfo in its final context.
    let signed_info = signed_info_xml(method, digest, &references);
    let head = format!("<ds:Signature>{signed_info}<ds:SignatureValue>");
    let tail = format!("</ds:SignatureValue><ds:KeyInfo>{key_info}</ds:KeyInfo></ds:Signature>");
    let draft = format!("{before}{head}{token}{tail}{after}");
    let doc = Document::parse(draft.as_bytes())?;
    let ours = doc
        .elements_named("Signature")
        .into_iter()
        .find(|s| s.child("SignatureValue").is_some_and(|v| v.text() == token))
        .ok_or_else(|| structure("the new ds:Signature is not where the marker was"))?;
    let canonical = ours
        .child("SignedInfo")
        .ok_or_else(|| structure("the new ds:Signature has no SignedInfo"))?
        .canonicalize()?;
    let value = method.make_value(key, &canonical)?;
    Ok(format!(
        "{before}{head}{}{tail}{after}",
        base64_lines(&value)
    ))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The `ds:SignedInfo` as the reference library lays it out.
fn signed_info_xml(
    method: SignatureMethod,
    digest: DigestMethod,
    references: &[(String, &str, String)],
) -> String {
    let mut s = String::from("<ds:SignedInfo>\n");
    s.push_str(&format!(
        "<ds:CanonicalizationMethod Algorithm=\"{C14N_10}\"></ds:CanonicalizationMethod>\n"
    ));
    s.push_str(&format!(
        "<ds:SignatureMethod Algorithm=\"{}\"></ds:SignatureMethod>\n",
        method.uri()
    ));
    for (uri, transform, value) in references {
        s.push_str(&format!("<ds:Reference URI=\"{}\">\n", escape_attr(uri)));
        if !transform.is_empty() {
            s.push_str(&format!(
                "<ds:Transforms>\n<ds:Transform Algorithm=\"{transform}\"></ds:Transform>\n</ds:Transforms>\n"
            ));
        }
        s.push_str(&format!(
            "<ds:DigestMethod Algorithm=\"{}\"></ds:DigestMethod>\n<ds:DigestValue>{value}</ds:DigestValue>\n</ds:Reference>\n",
            digest.uri()
        ));
    }
    s.push_str("</ds:SignedInfo>");
    s
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
}

/// Base64 in lines of 76 characters, each ending in a line feed (as the
/// reference library writes a `SignatureValue`).
fn base64_lines(bytes: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(text.len() + text.len() / 76 + 1);
    for chunk in text.as_bytes().chunks(76) {
        // Base64 is ASCII: every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}
