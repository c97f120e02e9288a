//! OSCI-Transport 1.2 without Java (issue 14).
//!
//! OSCI messages are SOAP 1.1 envelopes in a `Multipart/Related` body
//! ([`mime`]); every signature in them is an XML-DSig over element
//! subtrees canonicalised with **inclusive** C14N 1.0 ([`c14n`]), with
//! the namespaces the subtree inherits from the envelope. Exclusive C14N
//! gives other bytes and wrong digests, so this crate has its own
//! canonicaliser, tested against the digests of real requests the
//! reference library (Governikus OSCI-Bibliothek) made
//! (`tests/captures.rs`, captures from `../shared/osci/`).
//!
//! XML signatures ([`dsig`]) are checked on that ground: every reference
//! digest, then the RSA signature over the canonical `SignedInfo` with the
//! signer's certificate (RustCrypto `rsa`, `x509-cert`).
//!
//! What is here is the ground floor of the protocol: the Intermediär
//! endpoint, the client, transport and content encryption and the
//! certificate chain checks build on it (ADR 0022 lists what is still to
//! come).

pub mod c14n;
pub mod certs;
pub mod channel_config;
pub mod client;
pub mod content;
pub mod dsig;
pub mod intermediary;
pub mod message;
pub mod mime;
pub mod remote;
pub mod state;
pub mod xenc;
