//! The HTTPS listener: rustls (ring provider) in front of the same axum
//! router, HTTP/1.1 and HTTP/2 chosen by ALPN, optional client
//! certificates (mTLS).
//!
//! When a client presented a verified certificate, every request of that
//! connection carries a [`ClientCertificate`] extension (SHA-256
//! fingerprint and subject); the XTA server binds accounts to it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use tokio_rustls::TlsAcceptor;

/// TLS set-up failure.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file holds no usable PEM object of the expected kind.
    #[error("`{path}`: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the certificates or key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client CA verifier could not be built.
    #[error("client CA `{path}`: {reason}")]
    ClientCa {
        /// The CA file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Whether the listener asks for client certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCerts {
    /// No client certificates are requested.
    None,
    /// Certificates issued by the CAs in this PEM file are verified when
    /// presented; clients without one may still connect.
    Optional(PathBuf),
    /// As `Optional`, but the handshake fails without a valid certificate.
    Required(PathBuf),
}

/// A ready rustls server configuration for [`crate::Bound::bind_tls`].
#[derive(Clone)]
pub struct TlsSettings {
    config: Arc<rustls::ServerConfig>,
}

impl TlsSettings {
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("alpn", &self.config.alpn_protocols.len())
            .finish_non_exhaustive()
    }
}

impl TlsSettings {
    /// Load the certificate chain `cert` (PEM, leaf first), its private
    /// key `key` (PEM: PKCS#8, PKCS#1 or SEC1) and, for mTLS, the client
    /// CA file. ALPN offers `h2` and `http/1.1`.
    pub fn from_files(cert: &Path, key: &Path, clients: &ClientCerts) -> Result<Self, TlsError> {
        let certs = read_certs(cert)?;
        let key_pem = read(key)?;
        let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
            path: key.to_path_buf(),
            reason: format!("no private key: {e}"),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match clients {
            ClientCerts::None => builder.with_no_client_auth(),
            ClientCerts::Optional(ca) | ClientCerts::Required(ca) => {
                let mut roots = RootCertStore::empty();
                for c in read_certs(ca)? {
                    roots.add(c).map_err(|e| TlsError::ClientCa {
                        path: ca.clone(),
                        reason: e.to_string(),
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if matches!(clients, ClientCerts::Optional(_)) {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier.build().map_err(|e| TlsError::ClientCa {
                    path: ca.clone(),
                    reason: e.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key_der)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// Use an already built rustls configuration (its ALPN list is kept).
    pub fn from_rustls(config: Arc<rustls::ServerConfig>) -> Self {
        Self { config }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            reason: "no certificate".into(),
        });
    }
    Ok(certs)
}

/// Accept TLS connections until `shutdown`, then stop accepting and give
/// open connections `grace` (None = unlimited) to finish their requests.
/// The subject of a DER certificate as `CN=…, O=…` (attributes in
/// certificate order), or `None` when it cannot be read.
pub fn subject_of(der: &[u8]) -> Option<String> {
    let (tag, cert, _) = tlv(der)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, mut tbs, _) = tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    // [0] version (optional), serial, signature, issuer, validity, subject.
    if tbs.first() == Some(&0xA0) {
        tbs = tlv(tbs)?.2;
    }
    for _ in 0..4 {
        tbs = tlv(tbs)?.2;
    }
    let (tag, mut name, _) = tlv(tbs)?;
    if tag != 0x30 {
        return None;
    }
    let mut parts = Vec::new();
    while !name.is_empty() {
        let (tag, mut set, rest) = tlv(name)?;
        name = rest;
        if tag != 0x31 {
            return None;
        }
        while !set.is_empty() {
            let (_, atv, rest) = tlv(set)?;
            set = rest;
            let (tag, oid, after) = tlv(atv)?;
            if tag != 0x06 {
                return None;
            }
            let (vtag, value, _) = tlv(after)?;
            let value = match vtag {
                // BMPString: UTF-16BE.
                0x1E => {
                    let units: Vec<u16> = value
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    String::from_utf16_lossy(&units)
                }
                _ => String::from_utf8_lossy(value).into_owned(),
            };
            parts.push(format!("{}={value}", attribute_name(oid)));
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn attribute_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x05] => "serialNumber".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x0A] => "O".into(),
        [0x55, 0x04, 0x0B] => "OU".into(),
        _ => {
            let mut arcs = Vec::new();
            let mut v: u64 = 0;
            for b in oid {
                v = (v << 7) | u64::from(b & 0x7F);
                if b & 0x80 == 0 {
                    if arcs.is_empty() {
                        let first = (v / 40).min(2);
                        arcs.push(first);
                        arcs.push(v - first * 40);
                    } else {
                        arcs.push(v);
                    }
                    v = 0;
                }
            }
            let dotted: Vec<String> = arcs.iter().map(u64::to_string).collect();
            format!("OID.{}", dotted.join("."))
        }
    }
}

/// One DER tag-length-value: (tag, content, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    let content = b.get(head..end)?;
    Some((tag, content, b.get(end..)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_attributes_are_named_by_their_oid() {
        // emailAddress, 1.2.840.113549.1.9.1
        let oid = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01];
        assert_eq!(attribute_name(&oid), "OID.1.2.840.113549.1.9.1");
        assert_eq!(attribute_name(&[0x55, 0x04, 0x0B]), "OU");
    }

    #[test]
    fn garbage_has_no_subject() {
        assert_eq!(subject_of(b""), None);
        assert_eq!(subject_of(b"\x30\x84\xff\xff\xff\xff"), None);
        assert_eq!(subject_of(b"\x30\x03\x30\x01"), None);
        assert_eq!(subject_of(&[0x30; 64]), None);
    }
}
