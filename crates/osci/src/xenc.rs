//! XML encryption (xmlenc 1.0/1.1) as OSCI uses it, in two layers.
//!
//! # The two layers
//!
//! **Transport encryption** protects a whole OSCI message on its way
//! between a client and the Intermediär (and back). The sender builds the
//! complete *inner* message — a `Multipart/Related` MIME body with the
//! SOAP envelope of the order (e.g. StoreDelivery) and its attachments —
//! encrypts those bytes as one blob and sends an *outer* message:
//!
//! ```text
//! MIME-Version: 1.0
//! Content-Type: Multipart/Related; boundary=B; type=text/xml
//!
//! --B
//! Content-Type: text/xml; charset=UTF-8
//! Content-Transfer-Encoding: 8bit
//! Content-ID: <osci@message>
//! Content-Length: N
//!
//! <?xml …?><soap:Envelope …><soap:Body>
//!   <xenc:EncryptedData MimeType="Multipart/Related">
//!     <xenc:EncryptionMethod Algorithm="…xmlenc11#aes256-gcm">
//!       <osci128:IvLength Value="12"/></xenc:EncryptionMethod>
//!     <ds:KeyInfo><xenc:EncryptedKey>          (RSA-OAEP, for the recipient)
//!       <ds:KeyInfo><ds:X509Data><ds:X509Certificate>recipient's cipher cert…
//!       <xenc:CipherData><xenc:CipherValue>base64(RSA-OAEP(AES key))…
//!     </xenc:EncryptedKey></ds:KeyInfo>
//!     <xenc:CipherData><xenc:CipherReference URI="cid:osci_enc">…
//!   </xenc:EncryptedData></soap:Body></soap:Envelope>
//! --B
//! Content-Type: application/octet-stream
//! Content-Transfer-Encoding: binary
//! Content-ID: <osci_enc>
//!
//! IV(12) ‖ AES-GCM ciphertext ‖ tag(16)        (raw bytes)
//! --B--
//! ```
//!
//! [`decrypt_transport`] turns such a body back into the inner message,
//! byte for byte as the sender produced it; [`encrypt_transport`] writes
//! one the way the reference library (Governikus OSCI-Bibliothek 2.4.1)
//! does. The `base64` transform the library declares on the
//! `CipherReference` is ceremonial: the part is raw binary unless its own
//! headers say otherwise (`Content-Type: text/base64` or
//! `Content-Transfer-Encoding: base64`, the library's `base64` mode),
//! and that is what decides here.
//!
//! **Content encryption** is end to end: inside the inner message a
//! `xenc:EncryptedData` element (in the `osci:ContentPackage`, or nested in
//! a content container) holds an `osci:ContentContainer` only its readers
//! can open. Its `ds:KeyInfo` has one `xenc:EncryptedKey` per reader, each
//! naming the reader's cipher certificate inline or — as the library does —
//! by `ds:RetrievalMethod URI="#id"` pointing into
//! `osci:NonIntermediaryCertificates`. The data is an inline
//! `xenc:CipherValue` (base64 of `IV ‖ ciphertext ‖ tag`) or a
//! `CipherReference URI="cid:…"` to an attachment part (encrypted
//! attachments). [`decrypt_element`] opens one, [`encrypt_element`] writes
//! one for a list of [`Reader`]s.
//!
//! # Formats
//!
//! * Symmetric data: `IV ‖ ciphertext ‖ tag` for AES-GCM (16-byte tag);
//!   `IV ‖ ciphertext` for CBC, padded as xmlenc prescribes (ISO 10126:
//!   the last byte is the number of padding bytes, the others arbitrary;
//!   PKCS#7 padding is one case of it).
//! * The AES-GCM IV is 12 bytes when the sender says so with
//!   `osci128:IvLength Value="12"` (namespace `http://xoev.de/transport/osci12/8`,
//!   library ≥ 1.9.0, what the library sends today) and 16 bytes with
//!   `Value="16"`. Without the element the library's parser assumes its
//!   old default of **16** bytes (backwards compatibility with library
//!   versions before 1.9.0); xmlenc 1.1 itself prescribes 12. Here a
//!   missing element means 16 first and, if the tag does not verify,
//!   12 — both are authenticated by the tag, nothing is guessed blindly.
//! * Key transport: RSA-OAEP (`xmlenc11#rsa-oaep` with `xenc11:MGF` and
//!   `ds:DigestMethod`, defaults MGF1-SHA1 and SHA-1 per the
//!   specification; `xmlenc#rsa-oaep-mgf1p`, MGF1-SHA1 and digest SHA-1
//!   unless a `ds:DigestMethod` says otherwise; an `xenc:OAEPparams` label
//!   if it is UTF-8). The RSA operation is blinded.
//! * What is written: always AES-256-GCM with a 12-byte IV and the
//!   `osci128:IvLength` element, RSA-OAEP with MGF1-SHA256 and SHA-256 —
//!   the reference library's defaults. Base64 text is broken into lines of
//!   76 characters with a line feed after every full line, as the library
//!   writes it.
//!
//! # Algorithm policy
//!
//! Accepted when decrypting ([`Algorithms::default`]): AES-128/192/256-GCM
//! (`http://www.w3.org/2009/xmlenc11#aesNNN-gcm`), RSA-OAEP with MGF1 over
//! SHA-1/224/256/384/512 and digests SHA-1, SHA-224, SHA-256, SHA-384,
//! SHA-512 and SHA3-256/384/512. **Legacy** algorithms — AES-CBC
//! (`xmlenc#aesNNN-cbc`), Triple-DES-CBC (`xmlenc#tripledes-cbc`) and
//! RSAES-PKCS1-v1_5 key transport (`xmlenc#rsa-1_5`) — are refused with
//! [`XencError::Legacy`] unless the partner is configured with
//! [`Algorithms::allow_legacy`]; the check happens before any key is used,
//! so a refused message costs no RSA operation. Every other algorithm URI
//! is [`XencError::Unsupported`].
//!
//! Two known attacks on XML Encryption shape the legacy path. RSA-PKCS1-v1_5
//! key transport rejects implicitly (Bleichenbacher; Jager, Schinzel and
//! Somorovsky 2012): a padding error continues with a random key, so it
//! ends as [`XencError::Decrypt`] (`9202`) exactly like a key that
//! unwraps but does not open the data — with RSA-1.5, a wrong key is
//! `9202`, not `9200`. CBC has no integrity (Jager and Somorovsky 2011,
//! "How to break XML encryption"): a caller that parses CBC-decrypted
//! plaintext must answer a parse failure like a decryption failure
//! (`9202`), never with a code of its own, or the difference is a padding
//! oracle. AES-GCM and RSA-OAEP need neither precaution.
//!
//! # Errors and OSCI feedback
//!
//! [`XencError::feedback_code`] maps an error to the OSCI feedback code the
//! Intermediär answers with: `9200` when the symmetric key cannot be
//! recovered (no `EncryptedKey` for us, RSA decryption fails — the wrong
//! key), `9202` when the data cannot be decrypted (authentication tag,
//! padding, unsupported or refused algorithm), `9100` when the message is
//! not structured as required (MIME, XML, missing elements or parts).
//!
//! # Bounds
//!
//! Nothing here panics on input. The encrypted key is at most
//! [`MAX_ENCRYPTED_KEY_BYTES`] (an RSA-16384 block); other base64 text is
//! decoded only from what the caller already holds in memory (the decoded
//! bytes are smaller). The transport layer copies the ciphertext once into
//! the output buffer and decrypts it there in place
//! (`AeadInPlace::decrypt_in_place_detached`); encryption likewise writes
//! the inner message once into the output body and encrypts it in place,
//! so a message of 100 MB needs about 100 MB more, not several times that.

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::generic_array::typenum::Unsigned;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aes::{Aes128, Aes192, Aes256};
use aes_gcm::{AeadCore, AeadInPlace, AesGcm, KeyInit};
use base64::Engine;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, KeyIvInit};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Oaep, Pkcs1v15Encrypt, RsaPrivateKey, RsaPublicKey};
use sha2::digest::DynDigest;
use x509_cert::der::{Decode, Encode};

use crate::c14n::{C14nError, Document, ElementRef};
use crate::mime::{self, Message, MimeError};

/// `xenc` namespace (xmlenc 1.0).
pub const XENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";
/// `xenc11` namespace (xmlenc 1.1).
pub const XENC11_NS: &str = "http://www.w3.org/2009/xmlenc11#";
/// `ds` namespace (XML-DSig).
pub const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// OSCI 1.2 extension namespace of `osci128:IvLength`.
pub const OSCI128_NS: &str = "http://xoev.de/transport/osci12/8";

/// AES-128-GCM.
pub const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
/// AES-192-GCM.
pub const AES192_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes192-gcm";
/// AES-256-GCM (what is written).
pub const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
/// AES-128-CBC (legacy).
pub const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
/// AES-192-CBC (legacy).
pub const AES192_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes192-cbc";
/// AES-256-CBC (legacy).
pub const AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
/// Triple-DES-CBC (legacy).
pub const TRIPLEDES_CBC: &str = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc";
/// RSA-OAEP with explicit MGF and digest (what is written).
pub const RSA_OAEP: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
/// RSA-OAEP with MGF1-SHA1 (xmlenc 1.0).
pub const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
/// RSAES-PKCS1-v1_5 (legacy).
pub const RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";
/// MGF1 with SHA-256 (what is written).
pub const MGF1_SHA256: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha256";
/// SHA-256 digest (what is written).
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
/// `ds:RetrievalMethod` type of a certificate reference.
pub const X509_DATA_TYPE: &str = "http://www.w3.org/2000/09/xmldsig#X509Data";

const ENCRYPTED_KEY_TYPE: &str = "http://www.w3.org/2001/04/xmlenc#EncryptedKey";
const BASE64_TRANSFORM: &str = "http://www.w3.org/2000/09/xmldsig#base64";

/// Longest encrypted symmetric key accepted (an RSA-16384 block).
pub const MAX_ENCRYPTED_KEY_BYTES: usize = 2048;
/// Most `EncryptedKey`s tried (RSA private-key operations) for one
/// `EncryptedData`: without the reader's certificate every one is a
/// candidate, and a message must not buy unbounded RSA work.
pub const MAX_KEY_ATTEMPTS: usize = 8;
/// The AES-GCM IV length the reference library assumes when a message
/// has no `osci128:IvLength` (its default before version 1.9.0).
pub const LEGACY_GCM_IV_LENGTH: usize = 16;
/// The AES-GCM IV length that is written (and xmlenc 1.1's).
pub const GCM_IV_LENGTH: usize = 12;
const GCM_TAG_LENGTH: usize = 16;

/// Which algorithms a partner may use. Default: modern only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Algorithms {
    /// Accept AES-CBC, Triple-DES-CBC and RSA-PKCS1-v1_5 (see the module
    /// docs).
    pub allow_legacy: bool,
}

impl Algorithms {
    /// Modern algorithms only (the default).
    pub const MODERN: Self = Self {
        allow_legacy: false,
    };
    /// Modern and legacy algorithms.
    pub const WITH_LEGACY: Self = Self { allow_legacy: true };
}

/// Why a message or element cannot be decrypted or encrypted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XencError {
    /// The encryption structure is not as required (missing element,
    /// attribute or part, broken base64).
    #[error("encryption structure: {0}")]
    Structure(String),
    /// An algorithm URI or parameter this implementation does not know.
    #[error("unsupported encryption algorithm or parameter: {0}")]
    Unsupported(String),
    /// A legacy algorithm, refused without [`Algorithms::allow_legacy`].
    #[error("legacy encryption algorithm {0} is not allowed for this partner")]
    Legacy(String),
    /// The symmetric key cannot be recovered: no encrypted key for this
    /// reader, or the RSA decryption failed (the wrong private key).
    #[error("the symmetric key cannot be decrypted with this private key")]
    Key,
    /// The symmetric decryption failed (authentication tag, padding, key
    /// length, truncated data).
    #[error("the encrypted data cannot be decrypted (corrupt or tampered)")]
    Decrypt,
    /// The MIME framing is broken.
    #[error(transparent)]
    Mime(#[from] MimeError),
    /// The XML is not well-formed or a reference does not resolve.
    #[error(transparent)]
    Xml(#[from] C14nError),
    /// Encrypting failed (the recipient's certificate is not usable).
    #[error("cannot encrypt: {0}")]
    Encrypt(String),
    /// A PEM key or certificate cannot be read.
    #[error("PEM: {0}")]
    Pem(String),
}

impl XencError {
    /// The OSCI feedback code for this error: `9200` when the key cannot
    /// be recovered (also for an unusable recipient certificate when
    /// encrypting), `9202` for decryption failures and unsupported or
    /// refused algorithms, `9100` for structural errors.
    pub fn feedback_code(&self) -> &'static str {
        match self {
            XencError::Key | XencError::Encrypt(_) => "9200",
            XencError::Decrypt | XencError::Unsupported(_) | XencError::Legacy(_) => "9202",
            XencError::Structure(_)
            | XencError::Mime(_)
            | XencError::Xml(_)
            | XencError::Pem(_) => "9100",
        }
    }
}

fn structure(m: impl Into<String>) -> XencError {
    XencError::Structure(m.into())
}

/// One reader of content encrypted with [`encrypt_element`].
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    /// The reader's cipher certificate (X.509 DER, RSA key).
    pub cert_der: &'a [u8],
    /// The Id of the element holding this certificate in the message
    /// (e.g. an `osci:CipherCertificateReader` in
    /// `osci:NonIntermediaryCertificates`); `None` puts the certificate
    /// inline.
    pub retrieval_id: Option<&'a str>,
}

// ---------------------------------------------------------------------
// Algorithms

/// The block cipher of an `EncryptedData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataCipher {
    /// AES-GCM with a key of this many bytes; the IV length if declared.
    Gcm {
        key_len: usize,
        iv_len: Option<usize>,
    },
    /// AES-CBC with a key of this many bytes.
    AesCbc { key_len: usize },
    /// Triple-DES-CBC.
    TripleDes,
}

impl DataCipher {
    /// The key length written for this cipher.
    fn key_len(self) -> usize {
        match self {
            DataCipher::Gcm { key_len, .. } | DataCipher::AesCbc { key_len } => key_len,
            DataCipher::TripleDes => 24,
        }
    }

    /// Whether a key of `len` bytes is one for this cipher (two-key
    /// Triple-DES included).
    fn key_fits(self, len: usize) -> bool {
        len == self.key_len() || (self == DataCipher::TripleDes && len == 16)
    }
}

fn algorithm_of(method: Option<ElementRef<'_>>, what: &str) -> Result<String, XencError> {
    method
        .ok_or_else(|| structure(format!("no {what} EncryptionMethod")))?
        .attr("Algorithm")
        .map(str::to_owned)
        .ok_or_else(|| structure(format!("{what} EncryptionMethod without Algorithm")))
}

fn data_cipher(enc: ElementRef<'_>, algorithms: Algorithms) -> Result<DataCipher, XencError> {
    let method = enc.child("EncryptionMethod");
    let uri = algorithm_of(method, "EncryptedData")?;
    let legacy = |c: DataCipher| {
        if algorithms.allow_legacy {
            Ok(c)
        } else {
            Err(XencError::Legacy(uri.clone()))
        }
    };
    let gcm = |key_len: usize| -> Result<DataCipher, XencError> {
        let iv_len = match method
            .and_then(|m| m.child("IvLength"))
            .filter(|l| l.namespace().as_deref() == Some(OSCI128_NS))
            .map(|l| l.attr("Value").unwrap_or_default().trim())
        {
            None => None,
            Some("12") => Some(12),
            Some("16") => Some(16),
            Some(other) => {
                return Err(XencError::Unsupported(format!(
                    "AES-GCM IvLength {other:?} (12 or 16)"
                )))
            }
        };
        Ok(DataCipher::Gcm { key_len, iv_len })
    };
    match uri.as_str() {
        AES128_GCM => gcm(16),
        AES192_GCM => gcm(24),
        AES256_GCM => gcm(32),
        AES128_CBC => legacy(DataCipher::AesCbc { key_len: 16 }),
        AES192_CBC => legacy(DataCipher::AesCbc { key_len: 24 }),
        AES256_CBC => legacy(DataCipher::AesCbc { key_len: 32 }),
        TRIPLEDES_CBC => legacy(DataCipher::TripleDes),
        _ => Err(XencError::Unsupported(uri)),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha3_256,
    Sha3_384,
    Sha3_512,
}

impl Hash {
    fn of_digest_uri(uri: &str) -> Result<Self, XencError> {
        Ok(match uri {
            "http://www.w3.org/2000/09/xmldsig#sha1" => Hash::Sha1,
            "http://www.w3.org/2001/04/xmldsig-more#sha224" => Hash::Sha224,
            // The second spelling is not a W3C URI, but is seen in the wild
            // (and accepted by crate::dsig as well).
            SHA256 | "http://www.w3.org/2000/09/xmldsig#sha256" => Hash::Sha256,
            "http://www.w3.org/2001/04/xmldsig-more#sha384" => Hash::Sha384,
            "http://www.w3.org/2001/04/xmlenc#sha512" => Hash::Sha512,
            "http://www.w3.org/2007/05/xmldsig-more#sha3-256" => Hash::Sha3_256,
            "http://www.w3.org/2007/05/xmldsig-more#sha3-384" => Hash::Sha3_384,
            "http://www.w3.org/2007/05/xmldsig-more#sha3-512" => Hash::Sha3_512,
            other => return Err(XencError::Unsupported(other.to_owned())),
        })
    }

    fn of_mgf_uri(uri: &str) -> Result<Self, XencError> {
        Ok(match uri {
            "http://www.w3.org/2009/xmlenc11#mgf1sha1" => Hash::Sha1,
            "http://www.w3.org/2009/xmlenc11#mgf1sha224" => Hash::Sha224,
            MGF1_SHA256 => Hash::Sha256,
            "http://www.w3.org/2009/xmlenc11#mgf1sha384" => Hash::Sha384,
            "http://www.w3.org/2009/xmlenc11#mgf1sha512" => Hash::Sha512,
            other => return Err(XencError::Unsupported(other.to_owned())),
        })
    }

    fn boxed(self) -> Box<dyn DynDigest + Send + Sync> {
        match self {
            Hash::Sha1 => Box::new(sha1::Sha1::default()),
            Hash::Sha224 => Box::new(sha2::Sha224::default()),
            Hash::Sha256 => Box::new(sha2::Sha256::default()),
            Hash::Sha384 => Box::new(sha2::Sha384::default()),
            Hash::Sha512 => Box::new(sha2::Sha512::default()),
            Hash::Sha3_256 => Box::new(sha3::Sha3_256::default()),
            Hash::Sha3_384 => Box::new(sha3::Sha3_384::default()),
            Hash::Sha3_512 => Box::new(sha3::Sha3_512::default()),
        }
    }
}

/// The key transport of an `EncryptedKey`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyTransport {
    Oaep {
        digest: Hash,
        mgf: Hash,
        label: Option<String>,
    },
    Pkcs1v15,
}

fn key_transport(ek: ElementRef<'_>, algorithms: Algorithms) -> Result<KeyTransport, XencError> {
    let method = ek.child("EncryptionMethod");
    let uri = algorithm_of(method, "EncryptedKey")?;
    let param = |local: &str| method.and_then(|m| m.child(local));
    let digest = || -> Result<Hash, XencError> {
        match param("DigestMethod") {
            None => Ok(Hash::Sha1),
            Some(d) => Hash::of_digest_uri(
                d.attr("Algorithm")
                    .ok_or_else(|| structure("ds:DigestMethod without Algorithm"))?,
            ),
        }
    };
    let label = || -> Result<Option<String>, XencError> {
        let Some(p) = param("OAEPparams") else {
            return Ok(None);
        };
        let bytes = b64_bounded(&p.text(), MAX_ENCRYPTED_KEY_BYTES, "xenc:OAEPparams")?;
        if bytes.is_empty() {
            return Ok(None);
        }
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| XencError::Unsupported("an OAEPparams label that is not UTF-8".into()))
    };
    match uri.as_str() {
        RSA_OAEP => {
            let mgf = match param("MGF") {
                None => Hash::Sha1,
                Some(m) => Hash::of_mgf_uri(
                    m.attr("Algorithm")
                        .ok_or_else(|| structure("xenc11:MGF without Algorithm"))?,
                )?,
            };
            Ok(KeyTransport::Oaep {
                digest: digest()?,
                mgf,
                label: label()?,
            })
        }
        RSA_OAEP_MGF1P => Ok(KeyTransport::Oaep {
            digest: digest()?,
            mgf: Hash::Sha1,
            label: label()?,
        }),
        RSA_1_5 if algorithms.allow_legacy => Ok(KeyTransport::Pkcs1v15),
        RSA_1_5 => Err(XencError::Legacy(uri)),
        _ => Err(XencError::Unsupported(uri)),
    }
}

// ---------------------------------------------------------------------
// Base64

fn is_b64_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Decode base64 text with line breaks; `what` names it in errors.
fn b64(text: &[u8], what: &str) -> Result<Vec<u8>, XencError> {
    let compact: Vec<u8> = text.iter().copied().filter(|b| !is_b64_space(*b)).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| structure(format!("{what}: base64: {e}")))
}

/// [`b64`] refusing text that decodes to more than `max` bytes.
fn b64_bounded(text: &str, max: usize, what: &str) -> Result<Vec<u8>, XencError> {
    let significant = text.bytes().filter(|b| !is_b64_space(*b)).count();
    if significant / 4 * 3 > max {
        return Err(structure(format!("{what} longer than {max} bytes")));
    }
    b64(text.as_bytes(), what)
}

/// Base64 in lines of 76 characters, a line feed after every full line
/// (the reference library's layout).
fn b64_lines(data: &[u8]) -> String {
    let flat = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(flat.len() + flat.len() / 76 + 1);
    for (i, c) in flat.chars().enumerate() {
        out.push(c);
        if (i + 1) % 76 == 0 {
            out.push('\n');
        }
    }
    out
}

// ---------------------------------------------------------------------
// Certificates and keys

/// The DER certificate an `EncryptedKey`'s `ds:KeyInfo` names (inline
/// `ds:X509Data` or `ds:RetrievalMethod` to an element holding one);
/// `None` when it names none or the reference does not resolve.
fn named_certificate(doc: &Document, ek: ElementRef<'_>) -> Option<Vec<u8>> {
    let key_info = ek.child("KeyInfo")?;
    let holder = match key_info
        .child("RetrievalMethod")
        .and_then(|r| r.attr("URI"))
    {
        Some(uri) => doc.element_by_id(uri.strip_prefix('#')?).ok()?,
        None => key_info,
    };
    let cert = holder.child("X509Data")?.child("X509Certificate")?;
    b64(cert.text().as_bytes(), "ds:X509Certificate").ok()
}

fn rsa_public_key(cert_der: &[u8]) -> Result<RsaPublicKey, XencError> {
    let encrypt = |e: &dyn std::fmt::Display| XencError::Encrypt(format!("certificate: {e}"));
    let cert = x509_cert::Certificate::from_der(cert_der).map_err(|e| encrypt(&e))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| encrypt(&e))?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|e| encrypt(&e))
}

/// The DER contents of the first PEM block labelled `label`.
fn pem_block(pem: &str, label: &str) -> Option<Result<Vec<u8>, XencError>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let Some(len) = pem[start..].find(&end) else {
        return Some(Err(XencError::Pem(format!("{begin} without {end}"))));
    };
    Some(b64(&pem.as_bytes()[start..start + len], label).map_err(|e| XencError::Pem(e.to_string())))
}

/// Load an RSA private key from PEM: the first `PRIVATE KEY` (PKCS#8) or
/// `RSA PRIVATE KEY` (PKCS#1) block. Encrypted keys are refused.
///
/// # Errors
///
/// [`XencError::Pem`]: no such block, or not an RSA key.
pub fn private_key_from_pem(pem: &str) -> Result<RsaPrivateKey, XencError> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    if let Some(der) = pem_block(pem, "PRIVATE KEY") {
        return RsaPrivateKey::from_pkcs8_der(&der?)
            .map_err(|e| XencError::Pem(format!("PKCS#8 RSA key: {e}")));
    }
    if let Some(der) = pem_block(pem, "RSA PRIVATE KEY") {
        return RsaPrivateKey::from_pkcs1_der(&der?)
            .map_err(|e| XencError::Pem(format!("PKCS#1 RSA key: {e}")));
    }
    if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return Err(XencError::Pem(
            "encrypted private keys are not supported".into(),
        ));
    }
    Err(XencError::Pem("no PRIVATE KEY block".into()))
}

/// The DER bytes of the first `CERTIFICATE` block of `pem` (checked to
/// be an X.509 certificate).
///
/// # Errors
///
/// [`XencError::Pem`]: no such block, or not a certificate.
pub fn certificate_der_from_pem(pem: &str) -> Result<Vec<u8>, XencError> {
    let der = pem_block(pem, "CERTIFICATE")
        .ok_or_else(|| XencError::Pem("no CERTIFICATE block".into()))??;
    x509_cert::Certificate::from_der(&der)
        .map_err(|e| XencError::Pem(format!("certificate: {e}")))?;
    Ok(der)
}

// ---------------------------------------------------------------------
// Key transport

/// The `EncryptedKey` elements of `enc`'s `ds:KeyInfo`, including those a
/// `ds:RetrievalMethod Type="…#EncryptedKey"` points to.
fn encrypted_keys<'d>(
    doc: &'d Document,
    enc: ElementRef<'d>,
) -> Result<Vec<ElementRef<'d>>, XencError> {
    let key_info = enc
        .child("KeyInfo")
        .ok_or_else(|| structure("EncryptedData without ds:KeyInfo"))?;
    let mut keys: Vec<ElementRef<'d>> = key_info
        .children_named("EncryptedKey")
        .into_iter()
        .filter(|k| k.namespace().as_deref() == Some(XENC_NS))
        .collect();
    for r in key_info.children_named("RetrievalMethod") {
        if r.attr("Type") != Some(ENCRYPTED_KEY_TYPE) {
            continue;
        }
        let id = r
            .attr("URI")
            .and_then(|u| u.strip_prefix('#'))
            .ok_or_else(|| structure("RetrievalMethod to an EncryptedKey without #id"))?;
        let target = doc.element_by_id(id)?;
        if target.local_name() != "EncryptedKey" || target.namespace().as_deref() != Some(XENC_NS) {
            return Err(structure(format!(
                "RetrievalMethod #{id} does not point to an xenc:EncryptedKey"
            )));
        }
        keys.push(target);
    }
    if keys.is_empty() {
        return Err(structure("EncryptedData without xenc:EncryptedKey"));
    }
    Ok(keys)
}

fn unwrap_one(
    ek: ElementRef<'_>,
    key: &RsaPrivateKey,
    cipher: DataCipher,
    algorithms: Algorithms,
) -> Result<Vec<u8>, XencError> {
    let transport = key_transport(ek, algorithms)?;
    let cipher_data = ek
        .child("CipherData")
        .ok_or_else(|| structure("EncryptedKey without xenc:CipherData"))?;
    let value = cipher_data.child("CipherValue").ok_or_else(|| {
        if cipher_data.child("CipherReference").is_some() {
            XencError::Unsupported("an EncryptedKey by CipherReference".into())
        } else {
            structure("EncryptedKey without xenc:CipherValue")
        }
    })?;
    let wrapped = b64_bounded(
        &value.text(),
        MAX_ENCRYPTED_KEY_BYTES,
        "EncryptedKey CipherValue",
    )?;
    match transport {
        KeyTransport::Oaep { digest, mgf, label } => key
            .decrypt_blinded(
                &mut OsRng,
                Oaep {
                    digest: digest.boxed(),
                    mgf_digest: mgf.boxed(),
                    label,
                },
                &wrapped,
            )
            .map_err(|_| XencError::Key),
        KeyTransport::Pkcs1v15 => {
            // Implicit rejection against Bleichenbacher's attack on XML
            // Encryption: a PKCS#1 v1.5 padding error must not answer
            // differently from a key that unwraps but does not open the
            // data, so it continues with a random key and ends as
            // `Decrypt` like that.
            match key.decrypt_blinded(&mut OsRng, Pkcs1v15Encrypt, &wrapped) {
                Ok(k) if cipher.key_fits(k.len()) => Ok(k),
                _ => {
                    let mut k = vec![0u8; cipher.key_len()];
                    OsRng.fill_bytes(&mut k);
                    Ok(k)
                }
            }
        }
    }
}

/// Recover the symmetric key of `enc` (see [`decrypt_element`] for the
/// choice among several `EncryptedKey`s).
fn unwrap_key(
    doc: &Document,
    enc: ElementRef<'_>,
    key: &RsaPrivateKey,
    reader_cert_der: Option<&[u8]>,
    cipher: DataCipher,
    algorithms: Algorithms,
) -> Result<Vec<u8>, XencError> {
    let all = encrypted_keys(doc, enc)?;
    let candidates: Vec<ElementRef<'_>> = match reader_cert_der {
        None => all,
        Some(mine) => {
            let named: Vec<(ElementRef<'_>, Option<Vec<u8>>)> = all
                .into_iter()
                .map(|ek| (ek, named_certificate(doc, ek)))
                .collect();
            let matching: Vec<ElementRef<'_>> = named
                .iter()
                .filter(|(_, c)| c.as_deref() == Some(mine))
                .map(|(ek, _)| *ek)
                .collect();
            if matching.is_empty() {
                // Keys that name no (resolvable) certificate may be ours.
                named
                    .iter()
                    .filter(|(_, c)| c.is_none())
                    .map(|(ek, _)| *ek)
                    .collect()
            } else {
                matching
            }
        }
    };
    let mut first_error: Option<XencError> = None;
    for ek in candidates.into_iter().take(MAX_KEY_ATTEMPTS) {
        match unwrap_one(ek, key, cipher, algorithms) {
            Ok(k) => return Ok(k),
            // A refused or unknown algorithm tells more than a wrong key.
            Err(XencError::Key) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(XencError::Key))
}

// ---------------------------------------------------------------------
// Symmetric decryption

fn gcm_open<A>(key: &[u8], iv: &[u8], ct: &[u8], tag: &[u8]) -> Result<Vec<u8>, XencError>
where
    A: KeyInit + AeadInPlace,
{
    let cipher = A::new_from_slice(key).map_err(|_| XencError::Decrypt)?;
    if iv.len() != <A as AeadCore>::NonceSize::USIZE || tag.len() != <A as AeadCore>::TagSize::USIZE
    {
        return Err(XencError::Decrypt);
    }
    let nonce = GenericArray::from_slice(iv);
    let tag = GenericArray::from_slice(tag);
    let mut buf = Vec::with_capacity(ct.len());
    buf.extend_from_slice(ct);
    cipher
        .decrypt_in_place_detached(nonce, b"", &mut buf, tag)
        .map_err(|_| XencError::Decrypt)?;
    Ok(buf)
}

/// AES-GCM over `IV(iv_len) ‖ ciphertext ‖ tag(16)`.
fn gcm_decrypt(key: &[u8], iv_len: usize, blob: &[u8]) -> Result<Vec<u8>, XencError> {
    if blob.len() < iv_len + GCM_TAG_LENGTH {
        return Err(XencError::Decrypt);
    }
    let (iv, rest) = blob.split_at(iv_len);
    let (ct, tag) = rest.split_at(rest.len() - GCM_TAG_LENGTH);
    match (key.len(), iv_len) {
        (16, 12) => gcm_open::<AesGcm<Aes128, U12>>(key, iv, ct, tag),
        (24, 12) => gcm_open::<AesGcm<Aes192, U12>>(key, iv, ct, tag),
        (32, 12) => gcm_open::<AesGcm<Aes256, U12>>(key, iv, ct, tag),
        (16, 16) => gcm_open::<AesGcm<Aes128, U16>>(key, iv, ct, tag),
        (24, 16) => gcm_open::<AesGcm<Aes192, U16>>(key, iv, ct, tag),
        (32, 16) => gcm_open::<AesGcm<Aes256, U16>>(key, iv, ct, tag),
        _ => Err(XencError::Decrypt),
    }
}

fn cbc_open<C>(key: &[u8], blob: &[u8], block: usize) -> Result<Vec<u8>, XencError>
where
    C: BlockDecryptMut + KeyIvInit,
{
    if blob.len() < 2 * block || !blob.len().is_multiple_of(block) {
        return Err(XencError::Decrypt);
    }
    let (iv, ct) = blob.split_at(block);
    let decryptor = C::new_from_slices(key, iv).map_err(|_| XencError::Decrypt)?;
    let mut buf = ct.to_vec();
    let len = decryptor
        .decrypt_padded_mut::<NoPadding>(&mut buf)
        .map_err(|_| XencError::Decrypt)?
        .len();
    // ISO 10126: the last byte counts the padding bytes (1..=block).
    let pad = usize::from(*buf[..len].last().ok_or(XencError::Decrypt)?);
    if pad == 0 || pad > block || pad > len {
        return Err(XencError::Decrypt);
    }
    buf.truncate(len - pad);
    Ok(buf)
}

/// Decrypt `blob` (IV, ciphertext, tag as the cipher lays them out).
fn decrypt_blob(cipher: DataCipher, key: &[u8], blob: &[u8]) -> Result<Vec<u8>, XencError> {
    match cipher {
        DataCipher::Gcm { key_len, iv_len } => {
            if key.len() != key_len {
                return Err(XencError::Decrypt);
            }
            match iv_len {
                Some(n) => gcm_decrypt(key, n, blob),
                // No IvLength: the library's old default, else xmlenc 1.1's.
                None => gcm_decrypt(key, LEGACY_GCM_IV_LENGTH, blob)
                    .or_else(|_| gcm_decrypt(key, GCM_IV_LENGTH, blob)),
            }
        }
        DataCipher::AesCbc { key_len } => match (key.len() == key_len, key_len) {
            (true, 16) => cbc_open::<cbc::Decryptor<Aes128>>(key, blob, 16),
            (true, 24) => cbc_open::<cbc::Decryptor<Aes192>>(key, blob, 16),
            (true, 32) => cbc_open::<cbc::Decryptor<Aes256>>(key, blob, 16),
            _ => Err(XencError::Decrypt),
        },
        DataCipher::TripleDes => match key.len() {
            24 => cbc_open::<cbc::Decryptor<des::TdesEde3>>(key, blob, 8),
            16 => cbc_open::<cbc::Decryptor<des::TdesEde2>>(key, blob, 8),
            _ => Err(XencError::Decrypt),
        },
    }
}

/// Whether a MIME part's own headers say its content is base64 text.
fn part_is_base64(part: &mime::Part<'_>) -> bool {
    let cte = part.header("content-transfer-encoding").unwrap_or_default();
    let ct = part.header("content-type").unwrap_or_default();
    cte.trim().eq_ignore_ascii_case("base64")
        || ct
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/base64"))
}

/// Decrypt an `xenc:EncryptedData` element `enc` of `doc` (a parsed
/// envelope) with the reader's private `key`.
///
/// The symmetric key comes from the `xenc:EncryptedKey`s in `enc`'s
/// `ds:KeyInfo` (also those a `ds:RetrievalMethod` of type
/// `xmlenc#EncryptedKey` points to). With `reader_cert_der`, only those
/// naming that certificate (inline or by `ds:RetrievalMethod`) are tried —
/// or, if none names it, those naming no certificate at all; without it,
/// each in turn until one opens with `key` — at most
/// [`MAX_KEY_ATTEMPTS`] RSA operations, so pass the certificate when an
/// element may have many readers. The data is the
/// `xenc:CipherValue` (base64) or the MIME part of `message` a
/// `xenc:CipherReference URI="cid:…"` names (raw bytes, or base64 when
/// the part's headers say so). Returns the plaintext: for an OSCI
/// content container, the `osci:ContentContainer` element as text.
///
/// # Errors
///
/// See [`XencError`] and the module docs; algorithms are checked against
/// `algorithms` before any key is used.
pub fn decrypt_element(
    doc: &Document,
    message: Option<&Message<'_>>,
    enc: ElementRef<'_>,
    key: &RsaPrivateKey,
    reader_cert_der: Option<&[u8]>,
    algorithms: Algorithms,
) -> Result<Vec<u8>, XencError> {
    if enc.local_name() != "EncryptedData" || enc.namespace().as_deref() != Some(XENC_NS) {
        return Err(structure(format!(
            "{} is not an xenc:EncryptedData element",
            enc.name()
        )));
    }
    let cipher = data_cipher(enc, algorithms)?;
    let cipher_data = enc
        .child("CipherData")
        .ok_or_else(|| structure("EncryptedData without xenc:CipherData"))?;
    // Resolve the data before the RSA operation: a message without its
    // data costs no private-key operation.
    enum Data<'m> {
        Owned(Vec<u8>),
        Borrowed(&'m [u8]),
    }
    let data = match (
        cipher_data.child("CipherValue"),
        cipher_data.child("CipherReference"),
    ) {
        (Some(v), None) => Data::Owned(b64(v.text().as_bytes(), "EncryptedData CipherValue")?),
        (None, Some(r)) => {
            let uri = r
                .attr("URI")
                .ok_or_else(|| structure("CipherReference without URI"))?;
            if !uri.starts_with("cid:") {
                return Err(XencError::Unsupported(format!(
                    "CipherReference URI {uri:?}"
                )));
            }
            if let Some(transforms) = r.child("Transforms") {
                for t in transforms.children_named("Transform") {
                    let alg = t.attr("Algorithm").unwrap_or_default();
                    if alg != BASE64_TRANSFORM {
                        return Err(XencError::Unsupported(format!(
                            "CipherReference transform {alg:?}"
                        )));
                    }
                }
            }
            let message =
                message.ok_or_else(|| structure(format!("{uri}: no MIME message given")))?;
            let part = message
                .part(uri)
                .ok_or_else(|| structure(format!("no MIME part {uri}")))?;
            if part_is_base64(part) {
                Data::Owned(b64(part.body, uri)?)
            } else {
                Data::Borrowed(part.body)
            }
        }
        _ => {
            return Err(structure(
                "xenc:CipherData needs exactly one of CipherValue and CipherReference",
            ))
        }
    };
    let sym = unwrap_key(doc, enc, key, reader_cert_der, cipher, algorithms)?;
    let blob = match &data {
        Data::Owned(v) => v.as_slice(),
        Data::Borrowed(b) => b,
    };
    decrypt_blob(cipher, &sym, blob)
}

/// Decrypt a transport-encrypted OSCI message: `body` is the whole HTTP
/// body (starting with its MIME headers); the result is the inner
/// message exactly as the sender produced it.
///
/// # Errors
///
/// See [`XencError`]; `9100` for broken framing, `9200` for a message not
/// encrypted for `key`, `9202` for tampered data or refused algorithms.
pub fn decrypt_transport(
    body: &[u8],
    key: &RsaPrivateKey,
    algorithms: Algorithms,
) -> Result<Vec<u8>, XencError> {
    decrypt_transport_for(body, key, None, algorithms)
}

/// Largest outer envelope part: it holds one `xenc:EncryptedData` with a
/// key per recipient and a reference to the `<osci_enc>` part — a few
/// KiB. Bulk content in the envelope (a `CipherValue` instead of a
/// reference) is refused before it is parsed.
pub const MAX_OUTER_ENVELOPE_BYTES: usize = 1024 * 1024;

/// [`decrypt_transport`] for the holder of `cert_der`: only the
/// `EncryptedKey` naming that certificate (or naming none) is tried, so
/// a request costs one RSA operation, not [`MAX_KEY_ATTEMPTS`].
///
/// # Errors
///
/// See [`XencError`].
pub fn decrypt_transport_for(
    body: &[u8],
    key: &RsaPrivateKey,
    cert_der: Option<&[u8]>,
    algorithms: Algorithms,
) -> Result<Vec<u8>, XencError> {
    let message = mime::parse(body)?;
    let root = message
        .part("osci@message")
        .or_else(|| message.parts.first())
        .ok_or_else(|| structure("a MIME message without parts"))?;
    if root.body.len() > MAX_OUTER_ENVELOPE_BYTES {
        return Err(structure(format!(
            "the outer envelope is larger than {MAX_OUTER_ENVELOPE_BYTES} bytes"
        )));
    }
    let doc = Document::parse(root.body)?;
    let enc = doc
        .root()
        .child("Body")
        .and_then(|b| b.child("EncryptedData"))
        .ok_or_else(|| structure("no xenc:EncryptedData in the soap:Body"))?;
    decrypt_element(&doc, Some(&message), enc, key, cert_der, algorithms)
}

// ---------------------------------------------------------------------
// Encryption

/// A fresh AES-256 key and the RSA-OAEP (SHA-256, MGF1-SHA256) wrapped
/// form of it for `cert_der`.
fn fresh_key_for(cert_der: &[u8], sym: &[u8; 32]) -> Result<Vec<u8>, XencError> {
    rsa_public_key(cert_der)?
        .encrypt(&mut OsRng, Oaep::new::<sha2::Sha256>(), sym)
        .map_err(|e| XencError::Encrypt(format!("RSA-OAEP: {e}")))
}

/// AES-256-GCM in place over `buf[start..]` with `iv`; returns the tag.
fn seal_in_place(
    sym: &[u8; 32],
    iv: &[u8; GCM_IV_LENGTH],
    buf: &mut [u8],
) -> Result<Vec<u8>, XencError> {
    let cipher = AesGcm::<Aes256, U12>::new_from_slice(sym)
        .map_err(|e| XencError::Encrypt(format!("AES key: {e}")))?;
    let tag = cipher
        .encrypt_in_place_detached(GenericArray::from_slice(iv), b"", buf)
        .map_err(|_| XencError::Encrypt("AES-GCM: message too long".into()))?;
    Ok(tag.to_vec())
}

/// The `EncryptionMethod` of the data (AES-256-GCM, 12-byte IV).
const DATA_METHOD: &str = concat!(
    r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm">"#,
    r#"<osci128:IvLength xmlns:osci128="http://xoev.de/transport/osci12/8" Value="12"></osci128:IvLength>"#,
    "</xenc:EncryptionMethod>"
);

/// The `EncryptionMethod` of a key (RSA-OAEP, MGF1-SHA256, SHA-256).
const KEY_METHOD: &str = concat!(
    r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#rsa-oaep">"#,
    r#"<xenc11:MGF xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" Algorithm="http://www.w3.org/2009/xmlenc11#mgf1sha256"></xenc11:MGF>"#,
    r#"<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"></ds:DigestMethod>"#,
    "</xenc:EncryptionMethod>"
);

fn push_inline_certificate(out: &mut String, cert_der: &[u8]) {
    out.push_str("<ds:X509Data><ds:X509Certificate>");
    out.push_str(&b64_lines(cert_der));
    out.push_str("</ds:X509Certificate></ds:X509Data>");
}

fn push_encrypted_key(out: &mut String, key_info: &str, wrapped: &[u8]) {
    out.push_str("<xenc:EncryptedKey>");
    out.push_str(KEY_METHOD);
    out.push_str("<ds:KeyInfo>");
    out.push_str(key_info);
    out.push_str("</ds:KeyInfo><xenc:CipherData><xenc:CipherValue>");
    out.push_str(&b64_lines(wrapped));
    out.push_str("</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey>");
}

fn new_boundary() -> String {
    let tail: String = (&mut OsRng)
        .sample_iter(rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("MIME_boundary_{tail}")
}

/// Encrypt `inner` (a complete inner MIME message) for the holder of
/// `recipient_cert_der` (X.509 DER with an RSA key): AES-256-GCM with a
/// 12-byte IV, the key by RSA-OAEP (MGF1-SHA256, SHA-256), in the layout
/// the reference library sends (see the module docs). Returns the whole
/// body, MIME headers first, with a fresh random boundary.
///
/// The root part's `Content-Length` is the true length of the envelope
/// (the reference library's own value leaves out the certificate's
/// base64 text; receivers go by the boundary).
///
/// # Errors
///
/// [`XencError::Encrypt`]: the certificate is not an RSA certificate.
pub fn encrypt_transport(inner: &[u8], recipient_cert_der: &[u8]) -> Result<Vec<u8>, XencError> {
    let mut sym = [0u8; 32];
    OsRng.fill_bytes(&mut sym);
    let mut iv = [0u8; GCM_IV_LENGTH];
    OsRng.fill_bytes(&mut iv);
    let wrapped = fresh_key_for(recipient_cert_der, &sym)?;

    let mut xml = String::with_capacity(4096);
    xml.push_str(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\r\n",
        r#"<soap:Envelope xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://schemas.xmlsoap.org/soap/envelope/ soapMessageEncrypted.xsd http://www.w3.org/2000/09/xmldsig# oscisig.xsd http://www.w3.org/2001/04/xmlenc# oscienc.xsd">"#,
        r#"<soap:Body><xenc:EncryptedData MimeType="Multipart/Related">"#
    ));
    xml.push_str(DATA_METHOD);
    xml.push_str("<ds:KeyInfo>");
    let mut key_info = String::new();
    push_inline_certificate(&mut key_info, recipient_cert_der);
    push_encrypted_key(&mut xml, &key_info, &wrapped);
    xml.push_str(concat!(
        "</ds:KeyInfo><xenc:CipherData>",
        r#"<xenc:CipherReference URI="cid:osci_enc"><xenc:Transforms>"#,
        r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#base64"></ds:Transform>"#,
        "</xenc:Transforms></xenc:CipherReference></xenc:CipherData>",
        "</xenc:EncryptedData></soap:Body></soap:Envelope>"
    ));

    let boundary = new_boundary();
    let head = format!(
        "MIME-Version: 1.0\r\n\
         Content-Type: Multipart/Related; boundary={boundary}; type=text/xml\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: text/xml; charset=UTF-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         Content-ID: <osci@message>\r\n\
         Content-Length: {len}\r\n\
         \r\n\
         {xml}\r\n\
         \r\n\
         --{boundary}\r\n\
         Content-Type: application/octet-stream\r\n\
         Content-Transfer-Encoding: binary\r\n\
         Content-ID: <osci_enc>\r\n\
         \r\n",
        len = xml.len()
    );
    let tail = format!("\r\n--{boundary}--\r\n");

    let mut out =
        Vec::with_capacity(head.len() + GCM_IV_LENGTH + inner.len() + GCM_TAG_LENGTH + tail.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&iv);
    let start = out.len();
    out.extend_from_slice(inner);
    let tag = seal_in_place(&sym, &iv, &mut out[start..])?;
    out.extend_from_slice(&tag);
    out.extend_from_slice(tail.as_bytes());
    Ok(out)
}

fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Encrypt `plaintext` (for OSCI: an `osci:ContentContainer` element) for
/// every reader: returns an `xenc:EncryptedData` element with `Id="{id}"`
/// and `MimeType="text/xml"` that declares its own `xenc` and `ds`
/// namespaces (so it can be placed anywhere), AES-256-GCM with a 12-byte IV
/// and `osci128:IvLength`, one `xenc:EncryptedKey` per reader (RSA-OAEP,
/// MGF1-SHA256, SHA-256) whose `ds:KeyInfo` is a `ds:RetrievalMethod` to
/// `#{retrieval_id}` or the certificate inline, and the data as inline
/// `xenc:CipherValue`.
///
/// # Errors
///
/// [`XencError::Encrypt`]: no readers, an empty id, or a reader's
/// certificate is not an RSA certificate.
pub fn encrypt_element(
    plaintext: &[u8],
    id: &str,
    readers: &[Reader<'_>],
) -> Result<String, XencError> {
    if readers.is_empty() {
        return Err(XencError::Encrypt("no readers".into()));
    }
    if id.is_empty() {
        return Err(XencError::Encrypt("an empty Id".into()));
    }
    let mut sym = [0u8; 32];
    OsRng.fill_bytes(&mut sym);
    let mut iv = [0u8; GCM_IV_LENGTH];
    OsRng.fill_bytes(&mut iv);

    let mut out = String::with_capacity(plaintext.len() * 4 / 3 + 2048 * readers.len() + 1024);
    out.push_str(&format!(
        r#"<xenc:EncryptedData xmlns:ds="{DS_NS}" xmlns:xenc="{XENC_NS}" Id="{}" MimeType="text/xml">"#,
        escape_attr(id)
    ));
    out.push_str(DATA_METHOD);
    out.push_str("<ds:KeyInfo>");
    for reader in readers {
        let wrapped = fresh_key_for(reader.cert_der, &sym)?;
        let key_info = match reader.retrieval_id {
            Some(rid) => format!(
                r##"<ds:RetrievalMethod Type="{X509_DATA_TYPE}" URI="#{}"></ds:RetrievalMethod>"##,
                escape_attr(rid)
            ),
            None => {
                let mut s = String::new();
                push_inline_certificate(&mut s, reader.cert_der);
                s
            }
        };
        push_encrypted_key(&mut out, &key_info, &wrapped);
    }
    out.push_str("</ds:KeyInfo><xenc:CipherData><xenc:CipherValue>");
    let mut blob = Vec::with_capacity(GCM_IV_LENGTH + plaintext.len() + GCM_TAG_LENGTH);
    blob.extend_from_slice(&iv);
    blob.extend_from_slice(plaintext);
    let tag = seal_in_place(&sym, &iv, &mut blob[GCM_IV_LENGTH..])?;
    blob.extend_from_slice(&tag);
    out.push_str(&b64_lines(&blob));
    out.push_str("</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>");
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_lines_break_after_every_full_line_like_the_library() {
        let s = b64_lines(&[0u8; 57]); // exactly 76 characters
        assert_eq!(s.len(), 77);
        assert!(s.ends_with('\n'));
        let s = b64_lines(&[0u8; 58]);
        assert_eq!(s.lines().map(str::len).collect::<Vec<_>>(), vec![76, 4]);
        assert_eq!(b64(s.as_bytes(), "x").unwrap(), vec![0u8; 58]);
    }

    #[test]
    fn iso10126_padding_is_checked_not_trusted() {
        use cbc::cipher::BlockEncryptMut;
        let key = [7u8; 16];
        let iv = [9u8; 16];
        let seal = |plain: &[u8]| {
            let mut buf = plain.to_vec();
            let n = buf.len();
            let mut out = iv.to_vec();
            out.extend(
                cbc::Encryptor::<Aes128>::new_from_slices(&key, &iv)
                    .unwrap()
                    .encrypt_padded_mut::<NoPadding>(&mut buf, n)
                    .unwrap(),
            );
            out
        };
        // "hello" + 10 arbitrary bytes + pad length 11.
        let mut padded = b"hello".to_vec();
        padded.extend([0xAA; 10]);
        padded.push(11);
        assert_eq!(
            cbc_open::<cbc::Decryptor<Aes128>>(&key, &seal(&padded), 16).unwrap(),
            b"hello"
        );
        for bad in [0u8, 17, 255] {
            let mut p = padded.clone();
            p[15] = bad;
            assert_eq!(
                cbc_open::<cbc::Decryptor<Aes128>>(&key, &seal(&p), 16),
                Err(XencError::Decrypt)
            );
        }
        assert_eq!(
            cbc_open::<cbc::Decryptor<Aes128>>(&key, &[0u8; 20], 16),
            Err(XencError::Decrypt)
        );
    }

    #[test]
    fn short_gcm_blobs_are_decryption_errors() {
        for n in [0, 5, 27] {
            assert_eq!(
                gcm_decrypt(&[0u8; 32], 12, &vec![0u8; n]),
                Err(XencError::Decrypt)
            );
        }
        assert_eq!(
            gcm_decrypt(&[0u8; 7], 12, &[0u8; 40]),
            Err(XencError::Decrypt)
        );
    }
}
