//! Comparison of atomic values (OWNER: functions helper).
//!
//! Contract used by the evaluator:
//! * [`value_compare`] — `eq`/`lt`/… after the caller has cast untyped
//!   operands as the operator requires; numeric promotion, codepoint
//!   string order, booleans, dates/durations (via `crate::datetime`),
//!   QNames/binaries equality; XPTY0004 for incomparable types.
//! * [`atomic_equal`] — equality for `distinct-values`, `index-of`,
//!   `deep-equal` (incomparable → false, NaN = NaN where the function says).
//!
//! # How values compare
//!
//! * **Numbers** follow the promotion hierarchy integer → decimal → float →
//!   double. Integers and decimals are compared *exactly* (an `i64` always
//!   fits a 96-bit decimal), so `9007199254740993 eq 9007199254740992.0`
//!   is false, unlike a comparison through `f64`. As soon as a float takes
//!   part, the other operand is rounded to `f32` first (the spec promotes
//!   to xs:float), with a double it is compared as `f64`. NaN is
//!   unordered: the result is `None`, which makes `eq`, `lt`, … false and
//!   `ne` true.
//! * **Strings**, xs:untypedAtomic and xs:anyURI compare by Unicode
//!   codepoints; for UTF-8 text that is exactly byte order, so `str::cmp`
//!   is correct and needs no decoding.
//! * **Booleans**: `false < true`.
//! * **QNames** only support `eq`/`ne` (by namespace URI and local name,
//!   the prefix is irrelevant); **binaries** are ordered byte-wise (XPath
//!   3.1 added `lt`/`gt` for them).
//! * **Durations** compare equal when months and seconds agree; ordering is
//!   only defined within xs:yearMonthDuration or within
//!   xs:dayTimeDuration. The other **date/time** types are delegated to
//!   the date/time module (timezone normalisation lives there).

use std::cmp::Ordering;

use rust_decimal::Decimal;

use crate::error::{Error, Result};
use crate::value::Atomic;

/// Compares two atomic values for the value comparison operators. `None`
/// means unordered (NaN involved); equality-only types (QName, binary,
/// duration) give `Some(Equal)` or `Some(Less)` for "not equal" when
/// `eq_only` is true and XPTY0004 for ordering otherwise.
pub fn value_compare(
    a: &Atomic,
    b: &Atomic,
    eq_only: bool,
    implicit_tz: i16,
) -> Result<Option<Ordering>> {
    if a.is_numeric() && b.is_numeric() {
        return Ok(numeric_compare(a, b));
    }
    match (a, b) {
        (
            Atomic::String(x) | Atomic::Untyped(x) | Atomic::AnyUri(x),
            Atomic::String(y) | Atomic::Untyped(y) | Atomic::AnyUri(y),
        ) => Ok(Some(x.as_ref().cmp(y.as_ref()))),
        (Atomic::Boolean(x), Atomic::Boolean(y)) => Ok(Some(x.cmp(y))),
        (Atomic::QName(x), Atomic::QName(y)) => {
            if !eq_only {
                return Err(incomparable(
                    a,
                    b,
                    "QNames can only be compared with eq and ne",
                ));
            }
            Ok(Some(eq_order(x.uri == y.uri && x.local == y.local)))
        }
        (Atomic::HexBinary(x), Atomic::HexBinary(y))
        | (Atomic::Base64Binary(x), Atomic::Base64Binary(y)) => {
            Ok(Some(x.as_ref().cmp(y.as_ref())))
        }
        _ => match crate::datetime::compare_for(a, b, eq_only, implicit_tz) {
            Some(r) => r.map(Some),
            None => Err(incomparable(a, b, "the types are not comparable")),
        },
    }
}

/// Equality as used by `distinct-values`/`index-of`/`deep-equal`
/// (incomparable types are unequal; NaN equals NaN iff `nan_equal`).
pub fn atomic_equal(a: &Atomic, b: &Atomic, nan_equal: bool, implicit_tz: i16) -> bool {
    if nan_equal && is_nan(a) && is_nan(b) {
        return true;
    }
    matches!(
        value_compare(a, b, true, implicit_tz),
        Ok(Some(Ordering::Equal))
    )
}

/// Is the value a floating-point NaN?
pub fn is_nan(a: &Atomic) -> bool {
    match a {
        Atomic::Double(d) => d.is_nan(),
        Atomic::Float(f) => f.is_nan(),
        _ => false,
    }
}

/// Compares two numeric values with type promotion; `None` if either is
/// NaN (or an operand is not numeric).
pub fn numeric_compare(a: &Atomic, b: &Atomic) -> Option<Ordering> {
    match (a, b) {
        (Atomic::Integer(x), Atomic::Integer(y)) => Some(x.cmp(y)),
        (Atomic::Integer(x), Atomic::Decimal(y)) => Some(Decimal::from(*x).cmp(y)),
        (Atomic::Decimal(x), Atomic::Integer(y)) => Some(x.cmp(&Decimal::from(*y))),
        (Atomic::Decimal(x), Atomic::Decimal(y)) => Some(x.cmp(y)),
        (Atomic::Double(_), _) | (_, Atomic::Double(_)) => {
            a.to_number().partial_cmp(&b.to_number())
        }
        (Atomic::Float(_), _) | (_, Atomic::Float(_)) => {
            let x = a.to_number() as f32;
            let y = b.to_number() as f32;
            x.partial_cmp(&y)
        }
        _ => None,
    }
}

fn eq_order(equal: bool) -> Ordering {
    if equal {
        Ordering::Equal
    } else {
        Ordering::Less
    }
}

fn incomparable(a: &Atomic, b: &Atomic, why: &str) -> Error {
    Error::new(
        "XPTY0004",
        format!(
            "cannot compare {:?} with {:?}: {why}",
            a.type_of(),
            b.type_of()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datetime::Duration;
    use crate::value::AtomicType;

    fn cmp(a: Atomic, b: Atomic) -> Option<Ordering> {
        value_compare(&a, &b, false, 0).unwrap()
    }

    #[test]
    fn numbers_promote_and_compare_exactly() {
        assert_eq!(
            cmp(Atomic::Integer(1), Atomic::Integer(2)),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp(Atomic::Integer(3), Atomic::Decimal(Decimal::new(30, 1))),
            Some(Ordering::Equal)
        );
        // exact integer/decimal comparison beyond f64 precision
        assert_eq!(
            cmp(
                Atomic::Integer(9_007_199_254_740_993),
                Atomic::Decimal(Decimal::from(9_007_199_254_740_992i64))
            ),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp(Atomic::Double(2.5), Atomic::Integer(2)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            cmp(Atomic::Double(f64::NAN), Atomic::Double(f64::NAN)),
            None
        );
        // 0.1 promoted to float equals xs:float(0.1)
        assert_eq!(
            cmp(Atomic::Float(0.1), Atomic::Decimal(Decimal::new(1, 1))),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn strings_by_codepoint() {
        assert_eq!(
            cmp(Atomic::string("a"), Atomic::string("b")),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp(Atomic::string("Z"), Atomic::string("a")),
            Some(Ordering::Less)
        );
        assert_eq!(
            cmp(Atomic::untyped("x"), Atomic::string("x")),
            Some(Ordering::Equal)
        );
        assert_eq!(
            cmp(Atomic::string("é"), Atomic::string("z")),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn incomparable_types_are_type_errors() {
        let e = value_compare(&Atomic::string("1"), &Atomic::Integer(1), true, 0).unwrap_err();
        assert_eq!(e.code, "XPTY0004");
        let q = Atomic::QName(std::sync::Arc::new(crate::tree::QName::new("u", "a", "p")));
        let q2 = Atomic::QName(std::sync::Arc::new(crate::tree::QName::new("u", "a", "")));
        assert_eq!(
            value_compare(&q, &q2, true, 0).unwrap(),
            Some(Ordering::Equal)
        );
        assert!(value_compare(&q, &q2, false, 0).is_err());
    }

    #[test]
    fn durations() {
        let ym = |m| {
            Atomic::Duration(
                Duration {
                    months: m,
                    seconds: Decimal::ZERO,
                },
                AtomicType::YearMonthDuration,
            )
        };
        assert_eq!(cmp(ym(12), ym(13)), Some(Ordering::Less));
        let d = Atomic::Duration(
            Duration {
                months: 12,
                seconds: Decimal::ZERO,
            },
            AtomicType::Duration,
        );
        assert!(atomic_equal(&d, &ym(12), false, 0));
        assert!(value_compare(&d, &ym(12), false, 0).is_err());
    }

    #[test]
    fn equality_helpers() {
        assert!(atomic_equal(
            &Atomic::Double(f64::NAN),
            &Atomic::Double(f64::NAN),
            true,
            0
        ));
        assert!(!atomic_equal(
            &Atomic::Double(f64::NAN),
            &Atomic::Double(f64::NAN),
            false,
            0
        ));
        assert!(!atomic_equal(
            &Atomic::string("1"),
            &Atomic::Integer(1),
            true,
            0
        ));
        assert!(atomic_equal(
            &Atomic::Integer(1),
            &Atomic::Double(1.0),
            false,
            0
        ));
    }
}
