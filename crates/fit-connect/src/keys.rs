//! Loading RSA private keys from files: PEM (PKCS#8 or PKCS#1) or a
//! private JWK (JSON).

use std::path::Path;

use crate::jose::{JoseError, RsaPrivateKey};

/// Errors of key loading.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file cannot be read.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a usable RSA private key.
    #[error("key file {path}: {source}")]
    Key {
        /// The file.
        path: String,
        /// The cause.
        source: JoseError,
    },
}

/// Read a private key from `path`: a private JWK when the text starts with
/// `{`, else PEM. The `kid` is the JWK's own, else `kid` when given, else
/// the RFC 7638 thumbprint.
pub fn load_private_key(path: &Path, kid: Option<&str>) -> Result<RsaPrivateKey, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_private_key(&text, kid).map_err(|source| KeyFileError::Key {
        path: path.display().to_string(),
        source,
    })
}

/// Parse a private key from text (JWK or PEM), as [`load_private_key`].
pub fn parse_private_key(text: &str, kid: Option<&str>) -> Result<RsaPrivateKey, JoseError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let key = RsaPrivateKey::from_jwk_json(trimmed)?;
        let has_own_kid = serde_json::from_str::<serde_json::Value>(trimmed)
            .ok()
            .and_then(|v| v.get("kid").cloned())
            .is_some();
        Ok(match (has_own_kid, kid) {
            (false, Some(k)) => key.with_kid(k),
            _ => key,
        })
    } else {
        let key = RsaPrivateKey::from_pem(trimmed)?;
        Ok(match kid {
            Some(k) => key.with_kid(k),
            None => key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_files_load_with_and_without_kid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        std::fs::write(&path, include_str!("../tests/fixtures/keys/dest-a.pem")).unwrap();
        let k = load_private_key(&path, None).unwrap();
        assert_eq!(k.kid(), k.thumbprint());
        let k = load_private_key(&path, Some("dest-1")).unwrap();
        assert_eq!(k.kid(), "dest-1");
        let err = load_private_key(&dir.path().join("missing.pem"), None).unwrap_err();
        assert!(err.to_string().contains("missing.pem"));
        std::fs::write(&path, "garbage").unwrap();
        assert!(matches!(
            load_private_key(&path, None),
            Err(KeyFileError::Key { .. })
        ));
    }
}
