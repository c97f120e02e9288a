//! JOSE for FIT-Connect, composed from pure-Rust RustCrypto primitives.
//!
//! * JWE compact serialization with `alg: RSA-OAEP-256`, `enc: A256GCM` and
//!   optional `zip: DEF` (raw DEFLATE, RFC 1951), the only combination
//!   FIT-Connect uses. Other algorithms (`none`, `dir`, `RSA1_5`, …) are
//!   refused.
//! * JWS compact serialization with `alg: PS512` (RSASSA-PSS, SHA-512,
//!   MGF1-SHA-512, salt length 64), used for Security Event Tokens.
//! * RSA JWKs and their RFC 7638 thumbprints.
//!
//! Decryption never insists that the JWE `kid` equals a stored key id: real
//! clients put the RFC 7638 thumbprint there. Keys are tried by `kid`, then
//! by thumbprint, then every remaining key (rotation). All decryption
//! failures look the same to the caller ([`JoseError::Decryption`]), so the
//! error does not tell an attacker which step failed.
//!
//! [`decrypt_compact_stream`] decrypts from any [`Read`] into any
//! [`Write`] with bounded memory (64 KiB chunks), for attachments up to
//! hundreds of megabytes.
//!
//! # Authenticate, then inflate
//!
//! AES-GCM authenticates the ciphertext with a tag that comes *after* it,
//! so a streaming decryptor sees every byte before it can know whether any
//! of them is genuine. Two rules follow:
//!
//! * **Compressed (`zip: DEF`) content is never inflated before the tag is
//!   verified.** The decrypted, still compressed bytes are held back — in
//!   memory up to [`SPOOL_MEMORY_BYTES`], beyond that in an anonymous
//!   temporary file that disappears when it is closed — and inflated (with
//!   the plaintext limit) only once the tag matched. Feeding
//!   unauthenticated bytes to the inflater would turn damaged or forged
//!   ciphertext into inflate errors whose kind depends on *where* the
//!   damage is (a flipped first byte ends the stream early, a flipped last
//!   byte leaves it incomplete), and would run a decompressor on
//!   attacker-chosen input. Now any damage anywhere is the same
//!   [`JoseError::Decryption`]; so is authentic content that does not
//!   inflate (a sender's bug).
//! * Uncompressed content is written to the output as it is decrypted,
//!   *before* the tag is verified: on any error the caller must discard
//!   everything written.
//!
//! See `docs/decisions/0006-fit-connect-jose.md` for the choice of crates.

use std::io::{BufRead, BufReader, Read, Seek, Write};
use std::path::Path;

use aes::cipher::{BlockEncrypt, KeyInit, KeyIvInit, StreamCipher};
use aes_gcm::aead::AeadInPlace;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ghash::universal_hash::UniversalHash;
use rand::rngs::OsRng;
use rand::RngCore;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Verifier};
use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BigUint, Oaep};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// JWE key management algorithm of FIT-Connect.
pub const ALG_RSA_OAEP_256: &str = "RSA-OAEP-256";
/// JWE content encryption algorithm of FIT-Connect.
pub const ENC_A256GCM: &str = "A256GCM";
/// JWS algorithm of FIT-Connect SETs and destination signatures.
pub const ALG_PS512: &str = "PS512";
/// Default limit for plaintext produced by [`decrypt_compact`] (after
/// `zip: DEF` inflation): 64 MiB.
pub const DEFAULT_PLAINTEXT_LIMIT: u64 = 64 * 1024 * 1024;

/// Largest protected header we parse (base64url characters).
const MAX_HEADER_CHARS: usize = 16 * 1024;
/// Largest encrypted key we accept (base64url characters; 8192-bit RSA is
/// 1366 characters).
const MAX_EK_CHARS: usize = 2048;
/// Base64url characters decoded per chunk: 65536 characters are 49152
/// bytes, a multiple of the 16-byte GCM block.
const CHUNK_CHARS: usize = 65536;
/// Decrypted but not yet authenticated compressed content held in memory
/// before it is spilled to a temporary file (streaming decryption only;
/// [`decrypt_compact_limited`] holds it in memory, as it holds its input).
pub const SPOOL_MEMORY_BYTES: usize = 1024 * 1024;
/// Buffer size of the inflater.
const INFLATE_CHUNK: usize = 64 * 1024;

/// Errors of the JOSE layer.
#[derive(Debug, thiserror::Error)]
pub enum JoseError {
    /// Not a well-formed compact serialization (segments, base64url, JSON).
    #[error("malformed JOSE object: {0}")]
    Malformed(String),
    /// An algorithm, encoding or header parameter we refuse.
    #[error("unsupported JOSE parameter: {0}")]
    Unsupported(String),
    /// No key could decrypt the content, or the authentication tag did not
    /// match. Deliberately without detail.
    #[error("decryption failed")]
    Decryption,
    /// No key verified the signature.
    #[error("signature verification failed")]
    Signature,
    /// A key could not be read or used.
    #[error("invalid key: {0}")]
    Key(String),
    /// The plaintext (after inflation) exceeds the caller's limit, or the
    /// compressed content is so much larger than the limit that it cannot
    /// inflate to less (more than `limit + limit / 8 + 64 KiB`).
    #[error("plaintext larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// Reading the input or writing the output failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Encryption or signing failed inside a primitive.
    #[error("crypto: {0}")]
    Crypto(String),
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(what: &str, text: &[u8]) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| JoseError::Malformed(format!("{what}: not base64url: {e}")))
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

/// A public RSA JSON Web Key (RFC 7517) as FIT-Connect publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsaPublicJwk {
    /// Always `RSA`.
    pub kty: String,
    /// Key id, where the key has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Modulus, base64url big-endian.
    pub n: String,
    /// Public exponent, base64url big-endian.
    pub e: String,
    /// Permitted operations (`wrapKey` for encryption keys, `verify` for
    /// signature keys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_ops: Vec<String>,
    /// Intended algorithm (`RSA-OAEP-256`, `PS512`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Public key use (`enc`, `sig`), where given.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// Certificate chain (base64 DER), carried but not validated here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x5c: Option<Vec<String>>,
}

impl RsaPublicJwk {
    /// Parse a public JWK from JSON. Private members, if present, are
    /// ignored.
    pub fn from_json(json: &str) -> Result<Self, JoseError> {
        let jwk: Self = serde_json::from_str(json)
            .map_err(|e| JoseError::Key(format!("not an RSA JWK: {e}")))?;
        jwk.check()?;
        Ok(jwk)
    }

    /// Parse a public JWK from a JSON value.
    pub fn from_value(value: &Value) -> Result<Self, JoseError> {
        let jwk: Self = serde_json::from_value(value.clone())
            .map_err(|e| JoseError::Key(format!("not an RSA JWK: {e}")))?;
        jwk.check()?;
        Ok(jwk)
    }

    fn check(&self) -> Result<(), JoseError> {
        if self.kty != "RSA" {
            return Err(JoseError::Key(format!(
                "kty {:?} is not supported, expected RSA",
                self.kty
            )));
        }
        self.to_public_key().map(|_| ())
    }

    /// Build the JWK of an RSA public key.
    pub fn from_public_key(
        key: &rsa::RsaPublicKey,
        kid: Option<&str>,
        key_ops: &[&str],
        alg: Option<&str>,
    ) -> Self {
        Self {
            kty: "RSA".into(),
            kid: kid.map(str::to_owned),
            n: b64(&key.n().to_bytes_be()),
            e: b64(&key.e().to_bytes_be()),
            key_ops: key_ops.iter().map(|s| (*s).to_owned()).collect(),
            alg: alg.map(str::to_owned),
            key_use: None,
            x5c: None,
        }
    }

    /// The RSA public key.
    pub fn to_public_key(&self) -> Result<rsa::RsaPublicKey, JoseError> {
        let n = unb64("n", self.n.as_bytes()).map_err(|e| JoseError::Key(e.to_string()))?;
        let e = unb64("e", self.e.as_bytes()).map_err(|e| JoseError::Key(e.to_string()))?;
        rsa::RsaPublicKey::new_with_max_size(
            BigUint::from_bytes_be(&n),
            BigUint::from_bytes_be(&e),
            16384,
        )
        .map_err(|e| JoseError::Key(e.to_string()))
    }

    /// Modulus length in bits.
    pub fn bits(&self) -> usize {
        self.to_public_key().map(|k| k.n().bits()).unwrap_or(0)
    }

    /// RFC 7638 thumbprint: base64url SHA-256 of `{"e":…,"kty":"RSA","n":…}`.
    pub fn thumbprint(&self) -> String {
        thumbprint_of(&self.e, &self.n)
    }

    /// The `kid` if set, else the thumbprint.
    pub fn kid_or_thumbprint(&self) -> String {
        self.kid.clone().unwrap_or_else(|| self.thumbprint())
    }
}

fn thumbprint_of(e: &str, n: &str) -> String {
    // Members in lexicographic order, no whitespace (RFC 7638 §3.2). The
    // values are base64url, so they need no JSON escaping.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    b64(&Sha256::digest(canonical.as_bytes()))
}

/// An RSA private key with its key id (`kid`).
#[derive(Clone)]
pub struct RsaPrivateKey {
    key: rsa::RsaPrivateKey,
    kid: String,
}

impl std::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPrivateKey")
            .field("kid", &self.kid)
            .field("bits", &self.bits())
            .finish_non_exhaustive()
    }
}

impl RsaPrivateKey {
    /// Wrap a key; the `kid` is the RFC 7638 thumbprint.
    /// The private exponent (big-endian): secret material only the key's
    /// holder has, to derive other keys from (see `intake::token`).
    pub(crate) fn secret_exponent(&self) -> Vec<u8> {
        use rsa::traits::PrivateKeyParts;
        self.key.d().to_bytes_be()
    }

    pub fn from_rsa(key: rsa::RsaPrivateKey) -> Self {
        let kid = thumbprint_of(&b64(&key.e().to_bytes_be()), &b64(&key.n().to_bytes_be()));
        Self { key, kid }
    }

    /// Read a PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE
    /// KEY`) PEM. The `kid` is the RFC 7638 thumbprint; see
    /// [`RsaPrivateKey::with_kid`].
    pub fn from_pem(pem: &str) -> Result<Self, JoseError> {
        let key = if pem.contains("BEGIN RSA PRIVATE KEY") {
            rsa::RsaPrivateKey::from_pkcs1_pem(pem).map_err(|e| JoseError::Key(e.to_string()))?
        } else if pem.contains("BEGIN PRIVATE KEY") {
            rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| JoseError::Key(e.to_string()))?
        } else {
            return Err(JoseError::Key(
                "expected a PEM 'PRIVATE KEY' or 'RSA PRIVATE KEY' block".into(),
            ));
        };
        key.validate()
            .map_err(|e| JoseError::Key(format!("inconsistent RSA key: {e}")))?;
        Ok(Self::from_rsa(key))
    }

    /// Read a private RSA JWK (members `n`, `e`, `d`, `p`, `q`). The `kid`
    /// is the JWK's own, else the thumbprint.
    pub fn from_jwk_json(json: &str) -> Result<Self, JoseError> {
        let v: Value =
            serde_json::from_str(json).map_err(|e| JoseError::Key(format!("not JSON: {e}")))?;
        if v.get("kty").and_then(Value::as_str) != Some("RSA") {
            return Err(JoseError::Key("kty must be RSA".into()));
        }
        let member = |name: &str| -> Result<BigUint, JoseError> {
            let text = v
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| JoseError::Key(format!("private JWK lacks {name:?}")))?;
            let bytes = unb64(name, text.as_bytes()).map_err(|e| JoseError::Key(e.to_string()))?;
            Ok(BigUint::from_bytes_be(&bytes))
        };
        let key = rsa::RsaPrivateKey::from_components(
            member("n")?,
            member("e")?,
            member("d")?,
            vec![member("p")?, member("q")?],
        )
        .map_err(|e| JoseError::Key(e.to_string()))?;
        key.validate()
            .map_err(|e| JoseError::Key(format!("inconsistent RSA key: {e}")))?;
        let mut out = Self::from_rsa(key);
        if let Some(kid) = v.get("kid").and_then(Value::as_str) {
            out.kid = kid.to_owned();
        }
        Ok(out)
    }

    /// Replace the key id.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = kid.into();
        self
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// RFC 7638 thumbprint of the public key.
    pub fn thumbprint(&self) -> String {
        thumbprint_of(
            &b64(&self.key.e().to_bytes_be()),
            &b64(&self.key.n().to_bytes_be()),
        )
    }

    /// Modulus length in bits.
    pub fn bits(&self) -> usize {
        self.key.n().bits()
    }

    /// The public half as a JWK with the given `kid`, `key_ops` and `alg`.
    pub fn public_jwk(&self, kid: &str, key_ops: &[&str], alg: &str) -> RsaPublicJwk {
        RsaPublicJwk::from_public_key(&self.key.to_public_key(), Some(kid), key_ops, Some(alg))
    }

    /// The public encryption JWK as FIT-Connect publishes it: own `kid`,
    /// `key_ops: ["wrapKey"]`, `alg: RSA-OAEP-256`, `use: enc`.
    pub fn encryption_jwk(&self) -> RsaPublicJwk {
        let mut jwk = self.public_jwk(&self.kid, &["wrapKey"], ALG_RSA_OAEP_256);
        jwk.key_use = Some("enc".into());
        jwk
    }

    /// The public signature-verification JWK: own `kid`,
    /// `key_ops: ["verify"]`, `alg: PS512`, `use: sig`.
    pub fn verification_jwk(&self) -> RsaPublicJwk {
        let mut jwk = self.public_jwk(&self.kid, &["verify"], ALG_PS512);
        jwk.key_use = Some("sig".into());
        jwk
    }

    /// PKCS#8 PEM of the private key.
    pub fn to_pkcs8_pem(&self) -> Result<String, JoseError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|z| z.to_string())
            .map_err(|e| JoseError::Key(e.to_string()))
    }

    /// The private exponent is present (always true; for symmetry in tests).
    pub fn has_private_parts(&self) -> bool {
        self.key.d().bits() > 0
    }
}

/// Generate a new RSA key (`kid` = thumbprint). 4096-bit generation takes
/// long in debug builds; tests should use cached keys.
pub fn generate_rsa_key(bits: usize) -> Result<RsaPrivateKey, JoseError> {
    let key =
        rsa::RsaPrivateKey::new(&mut OsRng, bits).map_err(|e| JoseError::Key(e.to_string()))?;
    Ok(RsaPrivateKey::from_rsa(key))
}

// ---------------------------------------------------------------------------
// JWE
// ---------------------------------------------------------------------------

/// Result of [`decrypt_compact`].
#[derive(Debug, Clone)]
pub struct Decrypted {
    /// The plaintext (inflated when `zip: DEF`).
    pub plaintext: Vec<u8>,
    /// The protected header.
    pub header: Value,
    /// The fifth segment (authentication tag) exactly as sent; FIT-Connect
    /// `accept-submission` events carry it.
    pub auth_tag: String,
}

/// Result of [`decrypt_compact_stream`]: everything but the plaintext,
/// which went to the writer.
#[derive(Debug, Clone)]
pub struct StreamDecrypted {
    /// The protected header.
    pub header: Value,
    /// The fifth segment (authentication tag) exactly as sent.
    pub auth_tag: String,
    /// Plaintext bytes written.
    pub size: u64,
    /// Hex SHA-512 of the plaintext (FIT-Connect metadata hashes).
    pub sha512_hex: String,
    /// Key id of the key that decrypted it.
    pub kid: String,
}

/// Encrypt `plaintext` for `key` as JWE compact serialization: RSA-OAEP-256
/// key wrapping, A256GCM content encryption, `zip: DEF` when `zip`. The
/// header carries `kid` (the JWK's `kid`, else its thumbprint).
pub fn encrypt_compact(
    plaintext: &[u8],
    key: &RsaPublicJwk,
    zip: bool,
) -> Result<String, JoseError> {
    encrypt_compact_with(plaintext, key, zip, Value::Null)
}

/// As [`encrypt_compact`], with extra protected header members (e.g.
/// `{"cty": "application/json"}`). `alg`, `enc` and `zip` cannot be
/// overridden.
pub fn encrypt_compact_with(
    plaintext: &[u8],
    key: &RsaPublicJwk,
    zip: bool,
    header_extra: Value,
) -> Result<String, JoseError> {
    let public = key.to_public_key()?;
    if public.n().bits() < 2048 {
        return Err(JoseError::Key("RSA key shorter than 2048 bits".into()));
    }
    let mut header = match header_extra {
        Value::Null => serde_json::Map::new(),
        Value::Object(map) => map,
        _ => {
            return Err(JoseError::Malformed(
                "header_extra must be an object".into(),
            ))
        }
    };
    header
        .entry("kid")
        .or_insert_with(|| Value::String(key.kid_or_thumbprint()));
    header.insert("alg".into(), ALG_RSA_OAEP_256.into());
    header.insert("enc".into(), ENC_A256GCM.into());
    if zip {
        header.insert("zip".into(), "DEF".into());
    } else {
        header.remove("zip");
    }
    let content = if zip {
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(plaintext)?;
        enc.finish()?
    } else {
        plaintext.to_vec()
    };
    seal(content, &public, header)
}

/// Encrypt `content` (already compressed where the header says `zip`)
/// under a fresh content key wrapped for `public`.
fn seal(
    mut buffer: Vec<u8>,
    public: &rsa::RsaPublicKey,
    header: serde_json::Map<String, Value>,
) -> Result<String, JoseError> {
    let header_b64 = b64(&serde_json::to_vec(&Value::Object(header))
        .map_err(|e| JoseError::Crypto(e.to_string()))?);

    let mut cek = [0u8; 32];
    OsRng.fill_bytes(&mut cek);
    let mut iv = [0u8; 12];
    OsRng.fill_bytes(&mut iv);
    let encrypted_key = public
        .encrypt(&mut OsRng, Oaep::new::<Sha256>(), &cek)
        .map_err(|e| JoseError::Crypto(e.to_string()))?;

    let cipher = aes_gcm::Aes256Gcm::new(aes_gcm::Key::<aes_gcm::Aes256Gcm>::from_slice(&cek));
    let tag = cipher
        .encrypt_in_place_detached(
            aes_gcm::Nonce::from_slice(&iv),
            header_b64.as_bytes(),
            &mut buffer,
        )
        .map_err(|e| JoseError::Crypto(e.to_string()))?;
    Ok(format!(
        "{header_b64}.{}.{}.{}.{}",
        b64(&encrypted_key),
        b64(&iv),
        b64(&buffer),
        b64(&tag)
    ))
}

/// Decrypt a JWE compact serialization with the first fitting key (by
/// `kid`, then thumbprint, then every key), inflating `zip: DEF` up to
/// [`DEFAULT_PLAINTEXT_LIMIT`] bytes. Surrounding ASCII whitespace is
/// ignored.
pub fn decrypt_compact(jwe: &[u8], keys: &[&RsaPrivateKey]) -> Result<Decrypted, JoseError> {
    decrypt_compact_limited(jwe, keys, DEFAULT_PLAINTEXT_LIMIT)
}

/// As [`decrypt_compact`] with an explicit plaintext limit.
pub fn decrypt_compact_limited(
    jwe: &[u8],
    keys: &[&RsaPrivateKey],
    limit: u64,
) -> Result<Decrypted, JoseError> {
    let mut plaintext = Vec::new();
    // The input is in memory already; the compressed content (smaller than
    // the input) may be too.
    let out = decrypt(jwe, keys, &mut plaintext, limit, None)?;
    Ok(Decrypted {
        plaintext,
        header: out.header,
        auth_tag: out.auth_tag,
    })
}

/// Decrypt a JWE compact serialization read from `input`, writing the
/// plaintext to `output` in chunks (memory stays bounded, independent of
/// the size). `limit` bounds the plaintext after inflation.
///
/// Compressed content is inflated only after the authentication tag has
/// been verified (see the module docs); it waits in memory or, beyond
/// [`SPOOL_MEMORY_BYTES`], in an anonymous temporary file in the system's
/// temporary directory ([`decrypt_compact_stream_in`] chooses the
/// directory). Uncompressed plaintext is written before the tag at the end
/// of the input has been checked: on any error the caller must discard
/// what was written.
pub fn decrypt_compact_stream<R: Read, W: Write>(
    input: R,
    keys: &[&RsaPrivateKey],
    output: W,
    limit: u64,
) -> Result<StreamDecrypted, JoseError> {
    decrypt(input, keys, output, limit, Some(&std::env::temp_dir()))
}

/// As [`decrypt_compact_stream`], with compressed content beyond
/// [`SPOOL_MEMORY_BYTES`] held back in an anonymous temporary file in
/// `spool_dir` (e.g. next to the encrypted upload, on the same volume).
pub fn decrypt_compact_stream_in<R: Read, W: Write>(
    input: R,
    keys: &[&RsaPrivateKey],
    output: W,
    limit: u64,
    spool_dir: &Path,
) -> Result<StreamDecrypted, JoseError> {
    decrypt(input, keys, output, limit, Some(spool_dir))
}

/// The decryption behind the public functions; `spool_dir: None` keeps
/// compressed content in memory.
fn decrypt<R: Read, W: Write>(
    input: R,
    keys: &[&RsaPrivateKey],
    output: W,
    limit: u64,
    spool_dir: Option<&Path>,
) -> Result<StreamDecrypted, JoseError> {
    let mut reader = BufReader::with_capacity(CHUNK_CHARS, input);
    skip_leading_whitespace(&mut reader)?;
    let header_b64 = read_small_segment(&mut reader, "protected header", MAX_HEADER_CHARS)?
        .ok_or_else(|| JoseError::Malformed("expected 5 segments".into()))?;
    let header_bytes = unb64("protected header", &header_b64)?;
    let header: Value = serde_json::from_slice(&header_bytes)
        .map_err(|e| JoseError::Malformed(format!("protected header is not JSON: {e}")))?;
    let zip = check_jwe_header(&header)?;
    let ek_b64 = read_small_segment(&mut reader, "encrypted key", MAX_EK_CHARS)?
        .ok_or_else(|| JoseError::Malformed("expected 5 segments".into()))?;
    let encrypted_key = unb64("encrypted key", &ek_b64)?;
    let iv_b64 = read_small_segment(&mut reader, "initialization vector", 64)?
        .ok_or_else(|| JoseError::Malformed("expected 5 segments".into()))?;
    let iv = unb64("initialization vector", &iv_b64)?;
    let iv: [u8; 12] = iv
        .try_into()
        .map_err(|_| JoseError::Malformed("A256GCM needs a 96-bit initialization vector".into()))?;

    let (cek, kid) = unwrap_cek(&header, &encrypted_key, keys)?;

    let mut sink = LimitedHashWriter::new(output, limit);
    let mut gcm = GcmDecryptor::new(&cek, &iv, &header_b64);
    let tag_b64 = if zip {
        // Authenticate, then inflate: the compressed bytes wait in the
        // spool until the tag has matched.
        let mut spool = Spool::new(spool_dir, limit);
        stream_ciphertext(&mut reader, &mut gcm, &mut spool)?;
        let tag_b64 = verify_tag(&mut reader, gcm)?;
        inflate(spool.into_reader()?, &mut sink)?;
        tag_b64
    } else {
        stream_ciphertext(&mut reader, &mut gcm, &mut sink)?;
        verify_tag(&mut reader, gcm)?
    };
    let (size, sha512_hex) = sink.finish()?;
    Ok(StreamDecrypted {
        header,
        auth_tag: String::from_utf8_lossy(&tag_b64).into_owned(),
        size,
        sha512_hex,
        kid,
    })
}

/// Read the tag segment and check it against the ciphertext seen; returns
/// the segment as sent.
fn verify_tag<R: Read>(reader: &mut BufReader<R>, gcm: GcmDecryptor) -> Result<Vec<u8>, JoseError> {
    let tag_b64 = read_tail(reader)?;
    let tag = unb64("authentication tag", &tag_b64)?;
    if !gcm.verify(&tag) {
        return Err(JoseError::Decryption);
    }
    Ok(tag_b64)
}

/// Inflate authenticated raw DEFLATE (RFC 1951) content into `out`.
///
/// A stream that does not inflate, ends early or carries bytes after its
/// end is [`JoseError::Decryption`] (the content is not what the metadata
/// promises, like a wrong key); the limit of `out` is
/// [`JoseError::TooLarge`]; reading the spool or writing `out` failing is
/// [`JoseError::Io`].
fn inflate<R: Read, W: Write>(mut compressed: R, out: &mut W) -> Result<(), JoseError> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut inflater = Decompress::new(false);
    let mut input = vec![0u8; INFLATE_CHUNK];
    let mut output = vec![0u8; INFLATE_CHUNK];
    let (mut start, mut end, mut eof, mut stalled) = (0usize, 0usize, false, false);
    loop {
        if (start == end || stalled) && !eof {
            // Keep what is left, read more behind it.
            input.copy_within(start..end, 0);
            end -= start;
            start = 0;
            if end == input.len() {
                return Err(JoseError::Decryption);
            }
            let n = compressed.read(&mut input[end..])?;
            end += n;
            eof = n == 0;
        }
        let (in_before, out_before) = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress(&input[start..end], &mut output, FlushDecompress::None)
            .map_err(|_| JoseError::Decryption)?;
        let consumed =
            usize::try_from(inflater.total_in() - in_before).map_err(|_| JoseError::Decryption)?;
        let produced = usize::try_from(inflater.total_out() - out_before)
            .map_err(|_| JoseError::Decryption)?;
        start += consumed;
        if let Some(bytes) = output.get(..produced) {
            write_out(out, bytes)?;
        }
        if status == Status::StreamEnd {
            // Nothing may follow the final block.
            let trailing = start < end || compressed.read(&mut input[..1])? > 0;
            return if trailing {
                Err(JoseError::Decryption)
            } else {
                Ok(())
            };
        }
        stalled = consumed == 0 && produced == 0;
        if stalled && eof {
            // The input ended inside the stream.
            return Err(JoseError::Decryption);
        }
    }
}

/// Where decrypted compressed content waits for its tag: memory, and
/// (streaming decryption) an anonymous temporary file beyond
/// [`SPOOL_MEMORY_BYTES`]. Holds at most `limit + limit / 8 + 64 KiB`
/// bytes and refuses more as [`JoseError::TooLarge`]: an encoder expands
/// incompressible data by a few bytes per 64 KiB stored block, or by an
/// eighth at worst with fixed Huffman codes, so content for at most
/// `limit` bytes of plaintext fits.
struct Spool<'d> {
    dir: Option<&'d Path>,
    memory: Vec<u8>,
    file: Option<std::fs::File>,
    held: u64,
    cap: u64,
    limit: u64,
}

impl<'d> Spool<'d> {
    fn new(dir: Option<&'d Path>, limit: u64) -> Self {
        Self {
            dir,
            memory: Vec::new(),
            file: None,
            held: 0,
            cap: limit.saturating_add(limit / 8).saturating_add(64 * 1024),
            limit,
        }
    }

    /// Read back what was written, from the start.
    fn into_reader(self) -> Result<SpoolReader, JoseError> {
        match self.file {
            Some(mut f) => {
                f.flush()?;
                f.rewind()?;
                Ok(SpoolReader::File(BufReader::with_capacity(
                    INFLATE_CHUNK,
                    f,
                )))
            }
            None => Ok(SpoolReader::Memory(std::io::Cursor::new(self.memory))),
        }
    }
}

impl Write for Spool<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.held.saturating_add(buf.len() as u64) > self.cap {
            return Err(std::io::Error::other(LimitExceeded(self.limit)));
        }
        match (&mut self.file, self.dir) {
            (Some(f), _) => f.write_all(buf)?,
            (None, Some(dir)) if self.memory.len() + buf.len() > SPOOL_MEMORY_BYTES => {
                let mut f = tempfile::tempfile_in(dir)?;
                f.write_all(&self.memory)?;
                f.write_all(buf)?;
                self.memory = Vec::new();
                self.file = Some(f);
            }
            (None, _) => self.memory.extend_from_slice(buf),
        }
        self.held += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// Reads a [`Spool`] back.
enum SpoolReader {
    Memory(std::io::Cursor<Vec<u8>>),
    File(BufReader<std::fs::File>),
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Memory(c) => c.read(buf),
            Self::File(f) => f.read(buf),
        }
    }
}

/// Checks `alg`, `enc`, `zip`, `crit`; returns whether to inflate.
fn check_jwe_header(header: &Value) -> Result<bool, JoseError> {
    let obj = header
        .as_object()
        .ok_or_else(|| JoseError::Malformed("protected header is not an object".into()))?;
    match obj.get("alg").and_then(Value::as_str) {
        Some(ALG_RSA_OAEP_256) => {}
        Some(other) => return Err(JoseError::Unsupported(format!("alg {other:?}"))),
        None => return Err(JoseError::Malformed("header lacks alg".into())),
    }
    match obj.get("enc").and_then(Value::as_str) {
        Some(ENC_A256GCM) => {}
        Some(other) => return Err(JoseError::Unsupported(format!("enc {other:?}"))),
        None => return Err(JoseError::Malformed("header lacks enc".into())),
    }
    if obj.contains_key("crit") {
        return Err(JoseError::Unsupported("crit header parameters".into()));
    }
    match obj.get("zip") {
        None => Ok(false),
        Some(Value::String(z)) if z == "DEF" => Ok(true),
        Some(other) => Err(JoseError::Unsupported(format!("zip {other}"))),
    }
}

/// Order keys: `kid` match, thumbprint match, then the rest.
fn candidate_order<'k>(kid: Option<&str>, keys: &[&'k RsaPrivateKey]) -> Vec<&'k RsaPrivateKey> {
    let mut ordered: Vec<&RsaPrivateKey> = Vec::with_capacity(keys.len());
    if let Some(kid) = kid {
        ordered.extend(keys.iter().filter(|k| k.kid == kid).copied());
        ordered.extend(
            keys.iter()
                .filter(|k| k.kid != kid && k.thumbprint() == kid)
                .copied(),
        );
    }
    for k in keys {
        if !ordered.iter().any(|o| std::ptr::eq(*o, *k)) {
            ordered.push(k);
        }
    }
    ordered
}

fn unwrap_cek(
    header: &Value,
    encrypted_key: &[u8],
    keys: &[&RsaPrivateKey],
) -> Result<([u8; 32], String), JoseError> {
    let kid = header.get("kid").and_then(Value::as_str);
    for key in candidate_order(kid, keys) {
        // Blinded decryption (RSA blinding) against timing side channels.
        if let Ok(cek) = key
            .key
            .decrypt_blinded(&mut OsRng, Oaep::new::<Sha256>(), encrypted_key)
        {
            if let Ok(cek) = <[u8; 32]>::try_from(cek.as_slice()) {
                return Ok((cek, key.kid.clone()));
            }
        }
    }
    Err(JoseError::Decryption)
}

fn skip_leading_whitespace<R: Read>(reader: &mut BufReader<R>) -> Result<(), JoseError> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        let n = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let all = n == buf.len();
        reader.consume(n);
        if !all {
            return Ok(());
        }
    }
}

/// Read up to the next `.`; `None` when the input ends first.
fn read_small_segment<R: Read>(
    reader: &mut BufReader<R>,
    what: &str,
    max: usize,
) -> Result<Option<Vec<u8>>, JoseError> {
    let mut out = Vec::new();
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        if let Some(pos) = buf.iter().position(|b| *b == b'.') {
            out.extend_from_slice(&buf[..pos]);
            reader.consume(pos + 1);
            if out.len() > max {
                return Err(JoseError::Malformed(format!("{what} is too long")));
            }
            return Ok(Some(out));
        }
        let n = buf.len();
        out.extend_from_slice(buf);
        reader.consume(n);
        if out.len() > max {
            return Err(JoseError::Malformed(format!("{what} is too long")));
        }
    }
}

/// Read the last segment (the tag): at most 64 characters, trailing ASCII
/// whitespace allowed, no further `.`.
fn read_tail<R: Read>(reader: &mut BufReader<R>) -> Result<Vec<u8>, JoseError> {
    let mut out = Vec::new();
    reader.take(257).read_to_end(&mut out)?;
    while out.last().is_some_and(u8::is_ascii_whitespace) {
        out.pop();
    }
    if out.len() > 64 {
        return Err(JoseError::Malformed(
            "authentication tag is too long".into(),
        ));
    }
    if out.contains(&b'.') {
        return Err(JoseError::Malformed("expected 5 segments".into()));
    }
    Ok(out)
}

/// Decode the ciphertext segment chunk by chunk, decrypt, write.
fn stream_ciphertext<R: Read, W: Write>(
    reader: &mut BufReader<R>,
    gcm: &mut GcmDecryptor,
    out: &mut W,
) -> Result<(), JoseError> {
    let mut pending: Vec<u8> = Vec::with_capacity(CHUNK_CHARS);
    let mut bytes: Vec<u8> = Vec::with_capacity(CHUNK_CHARS / 4 * 3);
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Err(JoseError::Malformed("expected 5 segments".into()));
        }
        let (take, end) = match buf.iter().position(|b| *b == b'.') {
            Some(pos) => (pos, true),
            None => (buf.len(), false),
        };
        let mut slice = &buf[..take];
        while !slice.is_empty() {
            let room = CHUNK_CHARS - pending.len();
            let n = room.min(slice.len());
            pending.extend_from_slice(&slice[..n]);
            slice = &slice[n..];
            if pending.len() == CHUNK_CHARS {
                decode_chunk(&pending, &mut bytes)?;
                gcm.decrypt_chunk(&mut bytes);
                write_out(out, &bytes)?;
                pending.clear();
            }
        }
        reader.consume(if end { take + 1 } else { take });
        if end {
            decode_chunk(&pending, &mut bytes)?;
            gcm.decrypt_chunk(&mut bytes);
            write_out(out, &bytes)?;
            return Ok(());
        }
    }
}

fn decode_chunk(text: &[u8], bytes: &mut Vec<u8>) -> Result<(), JoseError> {
    bytes.clear();
    URL_SAFE_NO_PAD
        .decode_vec(text, bytes)
        .map_err(|e| JoseError::Malformed(format!("ciphertext: not base64url: {e}")))
}

fn write_out<W: Write>(out: &mut W, bytes: &[u8]) -> Result<(), JoseError> {
    out.write_all(bytes).map_err(map_write_error)
}

/// Limit errors travel through `io::Error`; recover them. Everything else
/// is a real I/O failure of the output or the spool.
fn map_write_error(e: std::io::Error) -> JoseError {
    if let Some(limit) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<LimitExceeded>())
    {
        return JoseError::TooLarge { limit: limit.0 };
    }
    JoseError::Io(e)
}

#[derive(Debug)]
struct LimitExceeded(u64);

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plaintext larger than {} bytes", self.0)
    }
}

impl std::error::Error for LimitExceeded {}

/// Counts, limits and hashes (SHA-512) what passes through.
struct LimitedHashWriter<W> {
    inner: W,
    limit: u64,
    written: u64,
    hash: Sha512,
}

impl<W: Write> LimitedHashWriter<W> {
    fn new(inner: W, limit: u64) -> Self {
        Self {
            inner,
            limit,
            written: 0,
            hash: Sha512::new(),
        }
    }

    fn finish(mut self) -> Result<(u64, String), JoseError> {
        self.inner.flush()?;
        Ok((self.written, hex::encode(self.hash.finalize())))
    }
}

impl<W: Write> Write for LimitedHashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(std::io::Error::other(LimitExceeded(self.limit)));
        }
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// AES-256-GCM decryption in chunks (NIST SP 800-38D with a 96-bit IV),
/// composed from the `aes`, `ctr` and `ghash` crates that `aes-gcm` itself
/// is built on. Every chunk but the last must be a multiple of 16 bytes.
struct GcmDecryptor {
    ctr: ctr::Ctr32BE<aes::Aes256>,
    ghash: ghash::GHash,
    tag_mask: [u8; 16],
    aad_len: u64,
    ct_len: u64,
}

impl GcmDecryptor {
    fn new(key: &[u8; 32], iv: &[u8; 12], aad: &[u8]) -> Self {
        let cipher = aes::Aes256::new(key.into());
        let mut h = aes::Block::default();
        cipher.encrypt_block(&mut h);
        let mut ghash = ghash::GHash::new(&h);
        ghash.update_padded(aad);
        // J0 = IV || 0^31 || 1; E(K, J0) masks the tag; payload starts at J0 + 1.
        let mut j0 = aes::Block::default();
        j0[..12].copy_from_slice(iv);
        j0[15] = 1;
        let mut mask = j0;
        cipher.encrypt_block(&mut mask);
        let mut counter = j0;
        counter[15] = 2;
        let ctr = ctr::Ctr32BE::<aes::Aes256>::new(key.into(), &counter);
        Self {
            ctr,
            ghash,
            tag_mask: mask.into(),
            aad_len: aad.len() as u64,
            ct_len: 0,
        }
    }

    fn decrypt_chunk(&mut self, chunk: &mut [u8]) {
        self.ghash.update_padded(chunk);
        self.ct_len += chunk.len() as u64;
        self.ctr.apply_keystream(chunk);
    }

    fn verify(mut self, tag: &[u8]) -> bool {
        let mut lengths = aes::Block::default();
        lengths[..8].copy_from_slice(&(self.aad_len * 8).to_be_bytes());
        lengths[8..].copy_from_slice(&(self.ct_len * 8).to_be_bytes());
        self.ghash.update(&[lengths]);
        let mut expected: [u8; 16] = self.ghash.finalize().into();
        for (e, m) in expected.iter_mut().zip(self.tag_mask) {
            *e ^= m;
        }
        tag.len() == 16 && bool::from(expected.ct_eq(tag))
    }
}

// ---------------------------------------------------------------------------
// JWS PS512
// ---------------------------------------------------------------------------

/// Sign `payload` as JWS compact serialization with PS512. The header is
/// `{"alg":"PS512","kid":<key kid>}` merged with `header_extra` (an object
/// or null; e.g. `{"typ":"secevent+jwt"}`); `alg` cannot be overridden.
pub fn sign_jws_ps512(
    header_extra: Value,
    payload: &Value,
    key: &RsaPrivateKey,
) -> Result<String, JoseError> {
    let mut header = match header_extra {
        Value::Null => serde_json::Map::new(),
        Value::Object(map) => map,
        _ => {
            return Err(JoseError::Malformed(
                "header_extra must be an object".into(),
            ))
        }
    };
    header
        .entry("kid")
        .or_insert_with(|| Value::String(key.kid.clone()));
    header.insert("alg".into(), ALG_PS512.into());
    let header_b64 = b64(&serde_json::to_vec(&Value::Object(header))
        .map_err(|e| JoseError::Crypto(e.to_string()))?);
    let payload_b64 =
        b64(&serde_json::to_vec(payload).map_err(|e| JoseError::Crypto(e.to_string()))?);
    let input = format!("{header_b64}.{payload_b64}");
    let signer = rsa::pss::BlindedSigningKey::<Sha512>::new(key.key.clone());
    let signature = signer
        .try_sign_with_rng(&mut OsRng, input.as_bytes())
        .map_err(|e| JoseError::Crypto(e.to_string()))?;
    Ok(format!("{input}.{}", b64(&signature.to_vec())))
}

/// Verify a PS512 JWS compact serialization against `keys` (those whose
/// `kid` or thumbprint equals the header `kid` first, else all). Refuses
/// every `alg` but PS512 and any `crit`. Returns header and payload.
pub fn verify_jws_ps512(token: &str, keys: &[RsaPublicJwk]) -> Result<(Value, Value), JoseError> {
    let token = token.trim();
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = parts.as_slice() else {
        return Err(JoseError::Malformed("a JWS has 3 segments".into()));
    };
    let header: Value = serde_json::from_slice(&unb64("JWS header", header_b64.as_bytes())?)
        .map_err(|e| JoseError::Malformed(format!("JWS header is not JSON: {e}")))?;
    match header.get("alg").and_then(Value::as_str) {
        Some(ALG_PS512) => {}
        Some(other) => return Err(JoseError::Unsupported(format!("alg {other:?}"))),
        None => return Err(JoseError::Malformed("JWS header lacks alg".into())),
    }
    if header.get("crit").is_some() {
        return Err(JoseError::Unsupported("crit header parameters".into()));
    }
    let signature = unb64("JWS signature", signature_b64.as_bytes())?;
    let signature =
        rsa::pss::Signature::try_from(signature.as_slice()).map_err(|_| JoseError::Signature)?;
    let input_len = header_b64.len() + 1 + payload_b64.len();
    let input = &token.as_bytes()[..input_len];

    let kid = header.get("kid").and_then(Value::as_str);
    let matching: Vec<&RsaPublicJwk> = match kid {
        Some(kid) => keys
            .iter()
            .filter(|k| k.kid.as_deref() == Some(kid) || k.thumbprint() == kid)
            .collect(),
        None => Vec::new(),
    };
    let candidates: Vec<&RsaPublicJwk> = if matching.is_empty() {
        keys.iter().collect()
    } else {
        matching
    };
    let verified = candidates.iter().any(|jwk| {
        jwk.to_public_key().is_ok_and(|public| {
            rsa::pss::VerifyingKey::<Sha512>::new(public)
                .verify(input, &signature)
                .is_ok()
        })
    });
    if !verified {
        return Err(JoseError::Signature);
    }
    let payload: Value = serde_json::from_slice(&unb64("JWS payload", payload_b64.as_bytes())?)
        .map_err(|e| JoseError::Malformed(format!("JWS payload is not JSON: {e}")))?;
    Ok((header, payload))
}

/// Decode the header and payload of a JWS *without* verifying it (for
/// logging and routing to the right verification key).
pub fn peek_jws(token: &str) -> Result<(Value, Value), JoseError> {
    let mut parts = token.trim().split('.');
    let (Some(h), Some(p), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::Malformed("a JWS has 3 segments".into()));
    };
    let header = serde_json::from_slice(&unb64("JWS header", h.as_bytes())?)
        .map_err(|e| JoseError::Malformed(format!("JWS header is not JSON: {e}")))?;
    let payload = serde_json::from_slice(&unb64("JWS payload", p.as_bytes())?)
        .map_err(|e| JoseError::Malformed(format!("JWS payload is not JSON: {e}")))?;
    Ok((header, payload))
}

/// The protected header of a JWE compact serialization, without
/// decrypting.
pub fn peek_jwe_header(jwe: &[u8]) -> Result<Value, JoseError> {
    let start = jwe
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let rest = &jwe[start..];
    let end = rest
        .iter()
        .position(|b| *b == b'.')
        .ok_or_else(|| JoseError::Malformed("expected 5 segments".into()))?;
    if end > MAX_HEADER_CHARS {
        return Err(JoseError::Malformed("protected header is too long".into()));
    }
    serde_json::from_slice(&unb64("protected header", &rest[..end])?)
        .map_err(|e| JoseError::Malformed(format!("protected header is not JSON: {e}")))
}

/// The fifth segment (authentication tag) of a JWE compact serialization.
pub fn jwe_auth_tag(jwe: &str) -> Option<&str> {
    let parts: Vec<&str> = jwe.trim().split('.').collect();
    (parts.len() == 5).then(|| parts[4])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn key_a() -> RsaPrivateKey {
        RsaPrivateKey::from_pem(include_str!("../tests/fixtures/keys/dest-a.pem")).unwrap()
    }
    fn key_b() -> RsaPrivateKey {
        RsaPrivateKey::from_pem(include_str!("../tests/fixtures/keys/dest-b.pem")).unwrap()
    }

    #[test]
    fn rfc7638_thumbprint_vector() {
        // RFC 7638, section 3.1.
        let jwk = RsaPublicJwk::from_json(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(jwk.bits(), 2048);
    }

    #[test]
    fn keys_load_and_publish() {
        let a = key_a();
        assert_eq!(a.bits(), 4096);
        assert_eq!(a.kid(), a.thumbprint());
        let jwk = a.encryption_jwk();
        assert_eq!(jwk.key_ops, vec!["wrapKey"]);
        assert_eq!(jwk.alg.as_deref(), Some("RSA-OAEP-256"));
        assert_eq!(jwk.thumbprint(), a.thumbprint());
        let text = serde_json::to_string(&jwk).unwrap();
        assert!(!text.contains("\"d\""), "public JWK must not leak d");
        assert_eq!(RsaPublicJwk::from_json(&text).unwrap(), jwk);
        // PEM round trip keeps the key
        let again = RsaPrivateKey::from_pem(&a.to_pkcs8_pem().unwrap()).unwrap();
        assert_eq!(again.thumbprint(), a.thumbprint());
        assert!(RsaPrivateKey::from_pem("-----BEGIN CERTIFICATE-----").is_err());
        assert!(format!("{a:?}").contains("kid"));
    }

    #[test]
    fn round_trip_plain_and_zip() {
        let a = key_a().with_kid("dest-key-1");
        let jwk = a.encryption_jwk();
        let text = "Grüße aus der Drehscheibe ".repeat(500);
        for zip in [false, true] {
            let jwe = encrypt_compact(text.as_bytes(), &jwk, zip).unwrap();
            assert_eq!(jwe.split('.').count(), 5);
            let out = decrypt_compact(jwe.as_bytes(), &[&a]).unwrap();
            assert_eq!(out.plaintext, text.as_bytes());
            assert_eq!(out.header["kid"], "dest-key-1");
            assert_eq!(out.header.get("zip").is_some(), zip);
            assert_eq!(Some(out.auth_tag.as_str()), jwe_auth_tag(&jwe));
            if zip {
                assert!(jwe.len() < text.len(), "DEF must compress repetitive text");
            }
        }
        // empty plaintext (FIT-Connect data placeholder)
        let jwe = encrypt_compact(b"", &jwk, true).unwrap();
        assert!(decrypt_compact(jwe.as_bytes(), &[&a])
            .unwrap()
            .plaintext
            .is_empty());
    }

    #[test]
    fn streaming_decryption_matches_aes_gcm_over_chunk_boundaries() {
        let a = key_a();
        let jwk = a.encryption_jwk();
        // sizes around the 49152-byte chunk and 16-byte block boundaries
        for size in [1usize, 15, 16, 17, 49151, 49152, 49153, 3 * 49152 + 5] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let jwe = encrypt_compact(&data, &jwk, false).unwrap();
            let mut out = Vec::new();
            let info = decrypt_compact_stream(jwe.as_bytes(), &[&a], &mut out, u64::MAX).unwrap();
            assert_eq!(out, data, "size {size}");
            assert_eq!(info.size, size as u64);
            assert_eq!(info.sha512_hex, hex::encode(Sha512::digest(&data)));
            assert_eq!(info.kid, a.kid());
        }
    }

    #[test]
    fn thumbprint_kid_and_trial_keys() {
        let a = key_a().with_kid("published-a");
        let b = key_b().with_kid("published-b");
        // sender puts the thumbprint in kid (the PyPI client does)
        let mut jwk = b.encryption_jwk();
        jwk.kid = None;
        let jwe = encrypt_compact(b"x", &jwk, true).unwrap();
        assert_eq!(
            peek_jwe_header(jwe.as_bytes()).unwrap()["kid"],
            b.thumbprint()
        );
        let out = decrypt_compact(jwe.as_bytes(), &[&a, &b]).unwrap();
        assert_eq!(out.plaintext, b"x");
        // an unknown kid: every key is tried (rotation)
        let jwe = encrypt_compact_with(
            b"y",
            &b.encryption_jwk(),
            false,
            json!({"kid": "old", "cty": "application/pdf"}),
        )
        .unwrap();
        let mut sink = Vec::new();
        let info = decrypt_compact_stream(jwe.as_bytes(), &[&a, &b], &mut sink, 10).unwrap();
        assert_eq!(info.kid, "published-b");
        assert_eq!(info.header["cty"], "application/pdf");
        // no fitting key
        assert!(matches!(
            decrypt_compact(jwe.as_bytes(), &[&a]),
            Err(JoseError::Decryption)
        ));
    }

    fn tamper(jwe: &str, segment: usize) -> String {
        let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
        let mut bytes = URL_SAFE_NO_PAD.decode(&parts[segment]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        parts[segment] = URL_SAFE_NO_PAD.encode(bytes);
        parts.join(".")
    }

    #[test]
    fn tampering_is_detected() {
        let a = key_a();
        let jwe = encrypt_compact(b"important data 123", &a.encryption_jwk(), false).unwrap();
        for segment in [1, 2, 3, 4] {
            let bad = tamper(&jwe, segment);
            assert!(
                matches!(
                    decrypt_compact(bad.as_bytes(), &[&a]),
                    Err(JoseError::Decryption)
                ),
                "segment {segment}"
            );
        }
        // header change breaks the AAD
        let mut parts: Vec<&str> = jwe.split('.').collect();
        let other = b64(br#"{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"x"}"#);
        parts[0] = &other;
        assert!(matches!(
            decrypt_compact(parts.join(".").as_bytes(), &[&a]),
            Err(JoseError::Decryption)
        ));
        // truncation and garbage
        assert!(decrypt_compact(&jwe.as_bytes()[..jwe.len() - 30], &[&a]).is_err());
        assert!(decrypt_compact(b"a.b.c", &[&a]).is_err());
        assert!(decrypt_compact(b"", &[&a]).is_err());
        assert!(decrypt_compact(format!("{jwe}.extra").as_bytes(), &[&a]).is_err());
        // trailing newline is fine
        assert!(decrypt_compact(format!("{jwe}\n").as_bytes(), &[&a]).is_ok());
    }

    /// Flip the lowest bit of ciphertext byte `at` (clamped to the last).
    fn flip_ciphertext(jwe: &str, at: usize) -> String {
        let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
        let mut bytes = URL_SAFE_NO_PAD.decode(&parts[3]).unwrap();
        let at = at.min(bytes.len() - 1);
        bytes[at] ^= 0x01;
        parts[3] = URL_SAFE_NO_PAD.encode(bytes);
        parts.join(".")
    }

    /// Xorshift bytes from 16 letters: compressible to about half.
    fn half_compressible(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b'a' + (x % 16) as u8
            })
            .collect()
    }

    #[test]
    fn damaged_compressed_ciphertext_fails_the_same_wherever_the_damage_is() {
        // Regression: the inflater ran before the tag was checked, so a
        // flipped first or last byte was an inflate error (`Io`, "incomplete
        // deflate stream", "failed to write whole buffer").
        let a = key_a();
        let dir = tempfile::tempdir().unwrap();
        for len in [40, 5_000, 3 * SPOOL_MEMORY_BYTES] {
            let data = half_compressible(len);
            let jwe = encrypt_compact(&data, &a.encryption_jwk(), true).unwrap();
            let ct_len = URL_SAFE_NO_PAD
                .decode(jwe.split('.').nth(3).unwrap())
                .unwrap()
                .len();
            for at in [0, 1, ct_len / 2, ct_len - 2, ct_len - 1] {
                let bad = flip_ciphertext(&jwe, at);
                let got = decrypt_compact(bad.as_bytes(), &[&a]);
                assert!(
                    matches!(got, Err(JoseError::Decryption)),
                    "len {len}, byte {at}: {got:?}"
                );
                let mut sink = Vec::new();
                let got = decrypt_compact_stream_in(
                    bad.as_bytes(),
                    &[&a],
                    &mut sink,
                    1 << 30,
                    dir.path(),
                );
                assert!(
                    matches!(got, Err(JoseError::Decryption)),
                    "streamed, len {len}, byte {at}: {got:?}"
                );
                assert!(sink.is_empty(), "nothing inflated before the tag matched");
            }
            // intact: the same content comes out, through the file spool
            // for the large one, which leaves nothing behind
            let mut sink = Vec::new();
            decrypt_compact_stream_in(jwe.as_bytes(), &[&a], &mut sink, 1 << 30, dir.path())
                .unwrap();
            assert_eq!(sink, data);
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }

    #[test]
    fn authentic_content_that_does_not_inflate_is_a_decryption_failure() {
        let a = key_a();
        let public = a.encryption_jwk().to_public_key().unwrap();
        let header = |zip: bool| {
            let mut h = serde_json::Map::new();
            h.insert("alg".into(), ALG_RSA_OAEP_256.into());
            h.insert("enc".into(), ENC_A256GCM.into());
            if zip {
                h.insert("zip".into(), "DEF".into());
            }
            h
        };
        let deflate = |data: &[u8]| {
            let mut enc =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(data).unwrap();
            enc.finish().unwrap()
        };
        let good = deflate(b"hello hello hello");
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"more");
        let truncated = good[..good.len() - 2].to_vec();
        let not_deflate = vec![0xffu8; 64];
        for content in [trailing, truncated, not_deflate, Vec::new()] {
            let jwe = seal(content.clone(), &public, header(true)).unwrap();
            let got = decrypt_compact(jwe.as_bytes(), &[&a]);
            assert!(
                matches!(got, Err(JoseError::Decryption)),
                "{content:?}: {got:?}"
            );
        }
        let jwe = seal(good, &public, header(true)).unwrap();
        assert_eq!(
            decrypt_compact(jwe.as_bytes(), &[&a]).unwrap().plaintext,
            b"hello hello hello"
        );
    }

    #[test]
    fn unexpected_algorithms_are_refused() {
        let a = key_a();
        let jwe = encrypt_compact(b"z", &a.encryption_jwk(), false).unwrap();
        let rest: Vec<&str> = jwe.split('.').skip(1).collect();
        for header in [
            json!({"alg": "none", "enc": "A256GCM"}),
            json!({"alg": "RSA1_5", "enc": "A256GCM"}),
            json!({"alg": "dir", "enc": "A256GCM"}),
            json!({"alg": "RSA-OAEP-256", "enc": "A128CBC-HS256"}),
            json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "zip": "GZ"}),
            json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "crit": ["exp"]}),
        ] {
            let forged = format!("{}.{}", b64(header.to_string().as_bytes()), rest.join("."));
            assert!(
                matches!(
                    decrypt_compact(forged.as_bytes(), &[&a]),
                    Err(JoseError::Unsupported(_))
                ),
                "{header}"
            );
        }
    }

    #[test]
    fn inflation_is_limited() {
        let a = key_a();
        let zeros = vec![0u8; 1_000_000];
        let jwe = encrypt_compact(&zeros, &a.encryption_jwk(), true).unwrap();
        assert!(jwe.len() < 10_000, "a compression bomb is small");
        assert!(matches!(
            decrypt_compact_limited(jwe.as_bytes(), &[&a], 100_000),
            Err(JoseError::TooLarge { limit: 100_000 })
        ));
        assert_eq!(
            decrypt_compact_limited(jwe.as_bytes(), &[&a], 1_000_000)
                .unwrap()
                .plaintext
                .len(),
            1_000_000
        );
    }

    #[test]
    fn ps512_sign_and_verify() {
        let signer = RsaPrivateKey::from_pem(include_str!("../tests/fixtures/keys/signing.pem"))
            .unwrap()
            .with_kid("set-key-1");
        let payload = json!({"iss": "https://hub.example", "sub": "submission:1"});
        let token = sign_jws_ps512(json!({"typ": "secevent+jwt"}), &payload, &signer).unwrap();
        let jwks = vec![key_a().verification_jwk(), signer.verification_jwk()];
        let (header, got) = verify_jws_ps512(&token, &jwks).unwrap();
        assert_eq!(header["typ"], "secevent+jwt");
        assert_eq!(header["alg"], "PS512");
        assert_eq!(header["kid"], "set-key-1");
        assert_eq!(got, payload);
        assert_eq!(peek_jws(&token).unwrap().1, payload);
        // wrong key only
        assert!(matches!(
            verify_jws_ps512(&token, &jwks[..1]),
            Err(JoseError::Signature)
        ));
        // tampered payload
        let parts: Vec<&str> = token.split('.').collect();
        let forged_payload = b64(br#"{"iss":"https://evil.example","sub":"submission:1"}"#);
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert!(matches!(
            verify_jws_ps512(&forged, &jwks),
            Err(JoseError::Signature)
        ));
        // alg none / HS512 refused
        for alg in ["none", "HS512", "RS512"] {
            let h = b64(json!({"alg": alg, "kid": "set-key-1"})
                .to_string()
                .as_bytes());
            let forged = format!("{h}.{}.{}", parts[1], parts[2]);
            assert!(matches!(
                verify_jws_ps512(&forged, &jwks),
                Err(JoseError::Unsupported(_))
            ));
        }
        assert!(verify_jws_ps512("abc", &jwks).is_err());
    }

    #[test]
    fn private_jwk_is_read() {
        let a = key_a();
        use rsa::traits::PrivateKeyParts;
        let primes = a.key.primes();
        let jwk = json!({
            "kty": "RSA", "kid": "from-jwk",
            "n": b64(&a.key.n().to_bytes_be()), "e": b64(&a.key.e().to_bytes_be()),
            "d": b64(&a.key.d().to_bytes_be()),
            "p": b64(&primes[0].to_bytes_be()), "q": b64(&primes[1].to_bytes_be()),
        });
        let k = RsaPrivateKey::from_jwk_json(&jwk.to_string()).unwrap();
        assert_eq!(k.kid(), "from-jwk");
        assert_eq!(k.thumbprint(), a.thumbprint());
        assert!(k.has_private_parts());
        assert!(RsaPrivateKey::from_jwk_json(r#"{"kty":"EC"}"#).is_err());
    }
}
