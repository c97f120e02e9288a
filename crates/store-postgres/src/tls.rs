//! TLS with rustls, with libpq's `sslmode` meanings.
//!
//! | `sslmode`     | encrypted | server certificate checked |
//! |---------------|-----------|----------------------------|
//! | `disable`     | no        | —                          |
//! | `prefer` (default) | if the server offers it | no (as libpq) |
//! | `require`     | yes       | no (as libpq without a root file) |
//! | `verify-ca`   | yes       | chain to a trusted root    |
//! | `verify-full` | yes       | chain and host name        |
//!
//! Trusted roots are the Mozilla roots (`webpki-roots`) plus
//! [`PgOptions::tls_ca_file`](crate::PgOptions::tls_ca_file). tokio-postgres
//! knows only the first three modes, so `verify-*` are rewritten to
//! `require` with the stricter verifier. Use `verify-full` in production;
//! `prefer` and `require` protect against eavesdroppers, not against an
//! impostor.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};

use crate::{PgError, PgOptions};

/// How much of the server certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verify {
    /// Nothing (libpq's `prefer` and `require`).
    None,
    /// The chain (`verify-ca`).
    Ca,
    /// Chain and host name (`verify-full`).
    Full,
}

/// `url` with a `verify-*` sslmode rewritten for tokio-postgres, and the
/// verification it asked for.
pub(crate) fn split_sslmode(url: &str) -> (String, Verify) {
    for (mode, verify) in [("verify-full", Verify::Full), ("verify-ca", Verify::Ca)] {
        let needle = format!("sslmode={mode}");
        if url.contains(&needle) {
            return (url.replace(&needle, "sslmode=require"), verify);
        }
    }
    (url.to_owned(), Verify::None)
}

/// The connector for `verify` with the roots of `options`.
pub(crate) fn connector(
    options: &PgOptions,
    verify: Verify,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, PgError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &options.tls_ca_file {
        let bad = |e: &dyn std::fmt::Display| PgError::Config(format!("{}: {e}", path.display()));
        let pem = std::fs::read(path).map_err(|e| bad(&e))?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
        }
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| PgError::Config(format!("TLS roots: {e}")))?;
    let verifier = Arc::new(Verifier {
        webpki,
        verify,
        algorithms: provider.signature_verification_algorithms,
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PgError::Config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The certificate check of one [`Verify`] level; handshake signatures
/// are always checked.
#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    verify: Verify,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        match self.verify {
            Verify::None => Ok(ServerCertVerified::assertion()),
            Verify::Full => self.webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            Verify::Ca => match self.webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Err(Error::InvalidCertificate(CertificateError::NotValidForName))
                | Err(Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                    ..
                })) => Ok(ServerCertVerified::assertion()),
                other => other,
            },
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_are_rewritten() {
        assert_eq!(
            split_sslmode("postgres://h/db?sslmode=verify-full"),
            ("postgres://h/db?sslmode=require".to_owned(), Verify::Full)
        );
        assert_eq!(split_sslmode("host=h sslmode=verify-ca").1, Verify::Ca);
        assert_eq!(split_sslmode("postgres://h/db").1, Verify::None);
    }
}
