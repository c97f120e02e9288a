//! XML signatures as OSCI uses them (XML-DSig with inclusive C14N 1.0):
//! [`verify`] checks one `ds:Signature` — every `ds:Reference` digest,
//! then the `ds:SignatureValue` over the canonical `ds:SignedInfo` with
//! the signer's RSA key.
//!
//! Accepted algorithms (what the reference library sends): canonicalisation
//! inclusive C14N 1.0; signature `rsa-sha256` (PKCS#1 v1.5); digest
//! SHA-256; reference transforms C14N 1.0 and `base64`; `cid:` references
//! digest the raw MIME part. Anything else is refused by name
//! ([`DsigError::Unsupported`]) — RSA-PSS, SHA-512/SHA-3 and the legacy
//! set come with the rest of issue 14.

use base64::Engine;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};

use crate::c14n::{C14nError, Document, ElementRef};
use crate::mime::Message;

const C14N_10: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const SHA256_DSIG: &str = "http://www.w3.org/2000/09/xmldsig#sha256";
const BASE64_TRANSFORM: &str = "http://www.w3.org/2000/09/xmldsig#base64";

/// Why a signature does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DsigError {
    #[error("signature structure: {0}")]
    Structure(String),
    #[error("unsupported algorithm {0}")]
    Unsupported(String),
    #[error("reference {0}: the digest does not match")]
    DigestMismatch(String),
    #[error("the signature value does not verify")]
    BadSignature,
    #[error("certificate: {0}")]
    Certificate(String),
    #[error(transparent)]
    C14n(#[from] C14nError),
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

/// Verify `signature` (a `ds:Signature` element of `doc`, whose MIME
/// message is `message` for `cid:` references) with `key`; returns the
/// URIs of the references it covers.
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
    let method = algorithm(signed_info.child("SignatureMethod"), "SignatureMethod")?;
    if method != RSA_SHA256 {
        return Err(DsigError::Unsupported(method));
    }
    let mut covered = Vec::new();
    for reference in signed_info.children_named("Reference") {
        let uri = reference
            .attr("URI")
            .ok_or_else(|| structure("a ds:Reference without URI"))?;
        let digest_alg = algorithm(reference.child("DigestMethod"), "DigestMethod")?;
        if digest_alg != SHA256 && digest_alg != SHA256_DSIG {
            return Err(DsigError::Unsupported(digest_alg));
        }
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
                message
                    .and_then(|m| m.part(uri))
                    .ok_or_else(|| structure(format!("no MIME part {uri}")))?
                    .body
                    .to_vec()
            }
            None => return Err(DsigError::Unsupported(format!("reference URI {uri:?}"))),
        };
        let expected = b64(&reference
            .child("DigestValue")
            .ok_or_else(|| structure("no ds:DigestValue"))?
            .text())?;
        if Sha256::digest(&bytes).as_slice() != expected.as_slice() {
            return Err(DsigError::DigestMismatch(uri.to_owned()));
        }
        covered.push(uri.to_owned());
    }
    if covered.is_empty() {
        return Err(structure("a signature over nothing"));
    }
    let value = b64(&signature
        .child("SignatureValue")
        .ok_or_else(|| structure("no ds:SignatureValue"))?
        .text())?;
    let sig = Signature::try_from(value.as_slice()).map_err(|_| DsigError::BadSignature)?;
    VerifyingKey::<Sha256>::new(key.clone())
        .verify(&signed_info.canonicalize()?, &sig)
        .map_err(|_| DsigError::BadSignature)?;
    Ok(covered)
}
