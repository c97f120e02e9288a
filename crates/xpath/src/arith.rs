//! Arithmetic on atomic values (OWNER: functions helper).
//!
//! Contract: [`arithmetic`] takes operands that are already atomized and
//! with untyped values cast to xs:double (the caller does that), applies
//! numeric type promotion (integer < decimal < float < double), the
//! integer/decimal/double rules (FOAR0001 division by zero for integer and
//! decimal, FOAR0002 overflow), and delegates date/time/duration operands
//! to `crate::datetime::arithmetic`.

use crate::error::{Error, Result};
use crate::value::{ArithOp, Atomic};

/// `a op b`.
pub fn arithmetic(op: ArithOp, a: &Atomic, b: &Atomic, implicit_tz: i16) -> Result<Atomic> {
    let _ = (op, a, b, implicit_tz);
    Err(Error::new("XPTY0004", "not yet implemented"))
}

/// Unary minus.
pub fn negate(a: &Atomic) -> Result<Atomic> {
    let _ = a;
    Err(Error::new("XPTY0004", "not yet implemented"))
}
