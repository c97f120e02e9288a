//! Comparison of atomic values (OWNER: functions helper).
//!
//! Contract used by the evaluator:
//! * [`value_compare`] — `eq`/`lt`/… after the caller has cast untyped
//!   operands as the operator requires; numeric promotion, codepoint
//!   string order, booleans, dates/durations (via `crate::datetime`),
//!   QNames/binaries equality; XPTY0004 for incomparable types.
//! * [`atomic_equal`] — equality for `distinct-values`, `index-of`,
//!   `deep-equal` (incomparable → false, NaN = NaN where the function says).

use std::cmp::Ordering;

use crate::error::{Error, Result};
use crate::value::Atomic;

/// Compares two atomic values for the value comparison operators. `None`
/// means unordered (NaN involved); equality-only types (QName, binary,
/// duration) give `Some(Equal)` or `Some(Less)` for "not equal" when
/// `eq_only` is true and XPTY0004 for ordering otherwise.
pub fn value_compare(a: &Atomic, b: &Atomic, eq_only: bool, implicit_tz: i16) -> Result<Option<Ordering>> {
    let _ = (a, b, eq_only, implicit_tz);
    Err(Error::new("XPTY0004", "not yet implemented"))
}

/// Equality as used by `distinct-values`/`index-of`/`deep-equal`
/// (incomparable types are unequal; NaN equals NaN iff `nan_equal`).
pub fn atomic_equal(a: &Atomic, b: &Atomic, nan_equal: bool, implicit_tz: i16) -> bool {
    let _ = (a, b, nan_equal, implicit_tz);
    false
}
