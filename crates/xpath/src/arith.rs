//! Arithmetic on atomic values (OWNER: functions helper).
//!
//! Contract: [`arithmetic`] takes operands that are already atomized and
//! with untyped values cast to xs:double (the caller does that), applies
//! numeric type promotion (integer < decimal < float < double), the
//! integer/decimal/double rules (FOAR0001 division by zero for integer and
//! decimal, FOAR0002 overflow), and delegates date/time/duration operands
//! to `crate::datetime::arithmetic`.
//!
//! # The rules in short (F&O 3.1 §4.2)
//!
//! | operands          | `+ - *`           | `div`                  | `idiv`            | `mod`             |
//! |-------------------|-------------------|------------------------|-------------------|-------------------|
//! | integer, integer  | integer, FOAR0002 on overflow | decimal (exact), FOAR0001 on 0 | integer, truncating, FOAR0001 on 0 | integer, sign of dividend |
//! | decimal           | decimal (exact)   | decimal, FOAR0001 on 0 | integer           | decimal           |
//! | float / double    | IEEE 754          | IEEE (±INF, NaN)       | integer, FOAR0001 on 0, FOAR0002 on NaN/INF | IEEE `fmod` |
//!
//! A mixed pair is promoted to the "higher" type first: integer → decimal
//! → float → double.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::error::{Error, Result};
use crate::value::{ArithOp, Atomic};

/// `a op b`.
pub fn arithmetic(op: ArithOp, a: &Atomic, b: &Atomic, implicit_tz: i16) -> Result<Atomic> {
    if a.is_numeric() && b.is_numeric() {
        return numeric(op, a, b);
    }
    if let Some(r) = crate::datetime::arithmetic(op, a, b, implicit_tz) {
        return r;
    }
    Err(Error::new(
        "XPTY0004",
        format!(
            "arithmetic operator {} is not defined for {:?} and {:?}",
            op_name(op),
            a.type_of(),
            b.type_of()
        ),
    ))
}

/// Unary minus.
pub fn negate(a: &Atomic) -> Result<Atomic> {
    match a {
        Atomic::Integer(i) => i.checked_neg().map(Atomic::Integer).ok_or_else(overflow),
        Atomic::Decimal(d) => Ok(Atomic::Decimal(-*d)),
        Atomic::Double(d) => Ok(Atomic::Double(-*d)),
        Atomic::Float(f) => Ok(Atomic::Float(-*f)),
        other => Err(Error::new(
            "XPTY0004",
            format!("unary minus is not defined for {:?}", other.type_of()),
        )),
    }
}

fn op_name(op: ArithOp) -> &'static str {
    match op {
        ArithOp::Add => "+",
        ArithOp::Sub => "-",
        ArithOp::Mul => "*",
        ArithOp::Div => "div",
        ArithOp::IDiv => "idiv",
        ArithOp::Mod => "mod",
    }
}

fn overflow() -> Error {
    Error::new("FOAR0002", "numeric overflow")
}

fn div_zero() -> Error {
    Error::new("FOAR0001", "division by zero")
}

/// Numeric arithmetic with promotion.
fn numeric(op: ArithOp, a: &Atomic, b: &Atomic) -> Result<Atomic> {
    match (a, b) {
        (Atomic::Integer(x), Atomic::Integer(y)) => integer(op, *x, *y),
        (Atomic::Double(_), _) | (_, Atomic::Double(_)) => double(op, a.to_number(), b.to_number()),
        (Atomic::Float(_), _) | (_, Atomic::Float(_)) => {
            float(op, a.to_number() as f32, b.to_number() as f32)
        }
        _ => {
            let x = to_decimal(a)?;
            let y = to_decimal(b)?;
            decimal(op, x, y)
        }
    }
}

fn to_decimal(a: &Atomic) -> Result<Decimal> {
    match a {
        Atomic::Integer(i) => Ok(Decimal::from(*i)),
        Atomic::Decimal(d) => Ok(*d),
        other => Err(Error::new(
            "XPTY0004",
            format!("{:?} is not a decimal", other.type_of()),
        )),
    }
}

fn integer(op: ArithOp, x: i64, y: i64) -> Result<Atomic> {
    let r = match op {
        ArithOp::Add => x.checked_add(y),
        ArithOp::Sub => x.checked_sub(y),
        ArithOp::Mul => x.checked_mul(y),
        ArithOp::Div => {
            if y == 0 {
                return Err(div_zero());
            }
            return match Decimal::from(x).checked_div(Decimal::from(y)) {
                Some(d) => Ok(Atomic::Decimal(d.normalize())),
                None => Ok(Atomic::Double(x as f64 / y as f64)),
            };
        }
        ArithOp::IDiv => {
            if y == 0 {
                return Err(div_zero());
            }
            x.checked_div(y)
        }
        ArithOp::Mod => {
            if y == 0 {
                return Err(div_zero());
            }
            // i64::MIN mod -1 is 0 mathematically
            Some(x.checked_rem(y).unwrap_or(0))
        }
    };
    r.map(Atomic::Integer).ok_or_else(overflow)
}

fn decimal(op: ArithOp, x: Decimal, y: Decimal) -> Result<Atomic> {
    let r = match op {
        ArithOp::Add => x.checked_add(y),
        ArithOp::Sub => x.checked_sub(y),
        ArithOp::Mul => x.checked_mul(y),
        ArithOp::Div => {
            if y.is_zero() {
                return Err(div_zero());
            }
            x.checked_div(y).map(|d| d.normalize())
        }
        ArithOp::IDiv => {
            if y.is_zero() {
                return Err(div_zero());
            }
            let q = x.checked_div(y).ok_or_else(overflow)?.trunc();
            return q.to_i64().map(Atomic::Integer).ok_or_else(overflow);
        }
        ArithOp::Mod => {
            if y.is_zero() {
                return Err(div_zero());
            }
            x.checked_rem(y)
        }
    };
    r.map(Atomic::Decimal).ok_or_else(overflow)
}

fn double(op: ArithOp, x: f64, y: f64) -> Result<Atomic> {
    Ok(Atomic::Double(match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div => x / y,
        ArithOp::IDiv => return float_idiv(x, y),
        ArithOp::Mod => x % y,
    }))
}

fn float(op: ArithOp, x: f32, y: f32) -> Result<Atomic> {
    Ok(Atomic::Float(match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div => x / y,
        ArithOp::IDiv => return float_idiv(f64::from(x), f64::from(y)),
        ArithOp::Mod => x % y,
    }))
}

/// `idiv` on floating-point operands: truncated quotient as xs:integer.
fn float_idiv(x: f64, y: f64) -> Result<Atomic> {
    if y == 0.0 {
        return Err(div_zero());
    }
    if x.is_nan() || y.is_nan() || x.is_infinite() {
        return Err(Error::new(
            "FOAR0002",
            "idiv of NaN or infinity has no integer result",
        ));
    }
    let q = (x / y).trunc();
    if q.is_finite() && q.abs() < 9.223_372_036_854_775e18 {
        Ok(Atomic::Integer(q as i64))
    } else {
        Err(overflow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ar(op: ArithOp, a: Atomic, b: Atomic) -> Result<Atomic> {
        arithmetic(op, &a, &b, 0)
    }

    fn s(r: Result<Atomic>) -> String {
        match r {
            Ok(a) => format!("{:?}:{}", a.type_of(), a.to_xs_string()),
            Err(e) => e.code,
        }
    }

    #[test]
    fn integers() {
        assert_eq!(
            s(ar(ArithOp::Add, Atomic::Integer(2), Atomic::Integer(3))),
            "Integer:5"
        );
        assert_eq!(
            s(ar(
                ArithOp::Add,
                Atomic::Integer(i64::MAX),
                Atomic::Integer(1)
            )),
            "FOAR0002"
        );
        assert_eq!(
            s(ar(ArithOp::Div, Atomic::Integer(1), Atomic::Integer(3))),
            "Decimal:0.3333333333333333333333333333"
        );
        assert_eq!(
            s(ar(ArithOp::Div, Atomic::Integer(6), Atomic::Integer(3))),
            "Decimal:2"
        );
        assert_eq!(
            s(ar(ArithOp::Div, Atomic::Integer(1), Atomic::Integer(0))),
            "FOAR0001"
        );
        assert_eq!(
            s(ar(ArithOp::IDiv, Atomic::Integer(-7), Atomic::Integer(2))),
            "Integer:-3"
        );
        assert_eq!(
            s(ar(ArithOp::Mod, Atomic::Integer(-7), Atomic::Integer(2))),
            "Integer:-1"
        );
        assert_eq!(
            s(ar(ArithOp::Mod, Atomic::Integer(7), Atomic::Integer(-2))),
            "Integer:1"
        );
        assert_eq!(
            s(ar(ArithOp::IDiv, Atomic::Integer(1), Atomic::Integer(0))),
            "FOAR0001"
        );
    }

    #[test]
    fn decimals_and_doubles() {
        let d = |m: i64, e: u32| Atomic::Decimal(Decimal::new(m, e));
        assert_eq!(s(ar(ArithOp::Add, d(1, 1), d(2, 1))), "Decimal:0.3");
        assert_eq!(
            s(ar(ArithOp::Mul, Atomic::Integer(2), d(15, 1))),
            "Decimal:3"
        );
        assert_eq!(
            s(ar(ArithOp::Mod, d(-55, 1), Atomic::Integer(2))),
            "Decimal:-1.5"
        );
        assert_eq!(s(ar(ArithOp::Div, d(1, 0), d(0, 0))), "FOAR0001");
        assert_eq!(
            s(ar(ArithOp::Div, Atomic::Double(1.0), Atomic::Integer(0))),
            "Double:INF"
        );
        assert_eq!(
            s(ar(ArithOp::Add, Atomic::Double(0.5), Atomic::Integer(1))),
            "Double:1.5"
        );
        assert_eq!(
            s(ar(ArithOp::IDiv, Atomic::Double(7.5), Atomic::Double(2.0))),
            "Integer:3"
        );
        assert_eq!(
            s(ar(
                ArithOp::IDiv,
                Atomic::Double(f64::NAN),
                Atomic::Double(2.0)
            )),
            "FOAR0002"
        );
        assert_eq!(
            s(ar(ArithOp::Mod, Atomic::Double(-5.0), Atomic::Double(3.0))),
            "Double:-2"
        );
        assert_eq!(
            s(ar(ArithOp::Add, Atomic::Float(1.5), Atomic::Integer(1))),
            "Float:2.5"
        );
    }

    #[test]
    fn type_errors_and_negation() {
        assert_eq!(
            s(ar(ArithOp::Add, Atomic::string("1"), Atomic::Integer(1))),
            "XPTY0004"
        );
        assert_eq!(s(negate(&Atomic::Integer(5))), "Integer:-5");
        assert_eq!(s(negate(&Atomic::Integer(i64::MIN))), "FOAR0002");
        assert_eq!(s(negate(&Atomic::string("x"))), "XPTY0004");
    }
}
