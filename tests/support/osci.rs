//! The OSCI demo PKI (`crates/osci/tests/demo-pki`, the reference
//! library's demo certificates) for the OSCI suite tests and the OSCI
//! benchmark.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use drehscheibe_osci::intermediary::KeyPair;
use drehscheibe_osci::xenc;

/// A file of the demo PKI.
pub fn pki(name: &str) -> PathBuf {
    crate::repo_root()
        .join("crates/osci/tests/demo-pki")
        .join(name)
}

/// A demo PKI file's text.
pub fn pem(name: &str) -> String {
    std::fs::read_to_string(pki(name)).unwrap()
}

/// The key pair `name` (`<name>.key.pem`, `<name>.cert.pem`).
pub fn key_pair(name: &str) -> KeyPair {
    KeyPair {
        key: xenc::private_key_from_pem(&pem(&format!("{name}.key.pem"))).unwrap(),
        cert: cert(name),
    }
}

/// The DER of `<name>.cert.pem`.
pub fn cert(name: &str) -> Vec<u8> {
    xenc::certificate_der_from_pem(&pem(&format!("{name}.cert.pem"))).unwrap()
}
