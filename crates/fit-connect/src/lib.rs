//! FIT-Connect for Drehscheibe.
//!
//! * [`jose`]: JWE (RSA-OAEP-256 + A256GCM, optional `zip: DEF`) and JWS
//!   PS512 on pure-Rust RustCrypto primitives (no OpenSSL);
//! * the hub as a Zustelldienst-compatible intake (Submission API v1);
//!   both channel types are configured through [`channel_config`];
//! * the subscriber adapter and the sender connector (configured through
//!   [`connector_config::CONNECTOR`]).

pub mod api;
pub mod channel_config;
pub mod client;
pub mod connector;
pub mod connector_config;
pub mod intake;
pub mod jose;
pub mod keys;
pub mod schema;
pub mod set;
pub mod subscriber;
