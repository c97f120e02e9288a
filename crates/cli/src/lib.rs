//! Library side of the `drehscheibe` binary: building a running hub from a
//! configuration ([`runtime`]), the demo receivers ([`demo`]) and the
//! operations client used by `send` and `messages` ([`client`]).
//!
//! The binary is a thin `clap` front over these, so tests and benchmarks
//! can start the very same hub in-process.

pub mod client;
pub mod command;
pub mod connectors;
pub mod demo;
mod ruletools;
pub mod runtime;
