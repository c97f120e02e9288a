//! Built-in functions: seq (OWNER: see lib.rs).

use super::Builtin;

/// The functions of this module.
pub const FUNCTIONS: &[Builtin] = &[];
