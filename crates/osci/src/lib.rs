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
//! On that ground:
//!
//! * [`xenc`]: the transport layer (the whole inner message encrypted for
//!   the other side's cipher certificate) and end-to-end content
//!   encryption; [`certs`]: certificate validity and chains, [`crl`]:
//!   revocation lists;
//! * [`message`]: reading and writing the inner SOAP envelope the way the
//!   reference library does; [`content`]: content packages;
//! * [`intermediary`] and [`state`]: the hub as OSCI Intermediär (channel
//!   `osci`, configured in [`channel_config`]): dialogs, message ids,
//!   postboxes and Laufzettel in the hub store;
//! * [`client`]: the client side, used by the `osci-poller` channel and
//!   the `osci` connector ([`remote`]).
//!
//! ADR 0022 records the decisions and the wire facts learnt from the
//! reference library.

pub mod c14n;
pub mod certs;
pub mod channel_config;
pub mod client;
pub mod content;
pub mod crl;
pub mod dsig;
pub mod intermediary;
pub mod message;
pub mod mime;
pub mod remote;
pub mod state;
pub mod xenc;
