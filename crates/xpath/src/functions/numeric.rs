//! Numeric and boolean built-in functions (OWNER: functions helper).
//!
//! * `fn:number`, `abs`, `ceiling`, `floor`, `round` (1 and 2 args),
//!   `round-half-to-even`, `sum`, `avg`, `min`, `max`;
//! * the `math:` namespace (`pi`, `exp`, `exp10`, `log`, `log10`, `pow`,
//!   `sqrt`, `sin`, `cos`, `tan`, `asin`, `acos`, `atan`, `atan2`);
//! * `fn:boolean`, `fn:not`, `fn:true`, `fn:false` and
//!   [`effective_boolean_value`], which the evaluator uses for predicates
//!   and conditions.
//!
//! The rounding functions are *type preserving*: an xs:integer stays an
//! integer, a decimal is rounded exactly with `rust_decimal`, floats and
//! doubles keep their type (and their `-0`, NaN and infinities). `round`
//! rounds halves towards positive infinity (`round(-2.5)` is `-2`),
//! `round-half-to-even` to the even neighbour.
//!
//! Aggregates (`sum`, `avg`, `min`, `max`) cast xs:untypedAtomic items to
//! xs:double first (values taken from nodes are untyped) and reuse the
//! operators of [`crate::arith`] and [`crate::compare`], so the promotion
//! rules are the same as for `+` and `lt`.

use std::cmp::Ordering;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use super::params::*;
use super::{def, opt_atomic, Builtin, Impl, Param, MATH};
use crate::arith::arithmetic;
use crate::compare::value_compare;
use crate::error::{Error, Result};
use crate::eval::Eval;
use crate::value::{parse_double, xpath1_parse_number, ArithOp, Atomic, Item, Sequence};

const fn math(name: &'static str, params: &'static [Param], imp: Impl) -> Builtin {
    Builtin {
        ns: MATH,
        name,
        min: params.len(),
        max: params.len(),
        params,
        context_default: false,
        imp,
    }
}

/// The functions of this module.
pub const FUNCTIONS: &[Builtin] = &[
    def("number", 1, 1, &[ATOMIC_OPT], true, number),
    def("abs", 1, 1, &[NUMERIC_OPT], false, abs),
    def("ceiling", 1, 1, &[NUMERIC_OPT], false, ceiling),
    def("floor", 1, 1, &[NUMERIC_OPT], false, floor),
    def("round", 1, 2, &[NUMERIC_OPT, INT_ONE], false, round),
    def(
        "round-half-to-even",
        1,
        2,
        &[NUMERIC_OPT, INT_ONE],
        false,
        round_half_to_even,
    ),
    def("sum", 1, 2, &[ATOMIC_MANY, ATOMIC_OPT], false, sum),
    def("avg", 1, 1, &[ATOMIC_MANY], false, avg),
    def("min", 1, 2, &[ATOMIC_MANY, STR_ONE], false, min),
    def("max", 1, 2, &[ATOMIC_MANY, STR_ONE], false, max),
    def("boolean", 1, 1, &[ITEM_MANY], false, boolean),
    def("not", 1, 1, &[ITEM_MANY], false, not),
    def("true", 0, 0, &[], false, true_fn),
    def("false", 0, 0, &[], false, false_fn),
    math("pi", &[], math_pi),
    math("exp", &[DOUBLE_OPT], math_exp),
    math("exp10", &[DOUBLE_OPT], math_exp10),
    math("log", &[DOUBLE_OPT], math_log),
    math("log10", &[DOUBLE_OPT], math_log10),
    math("pow", &[DOUBLE_OPT, NUMERIC_ONE], math_pow),
    math("sqrt", &[DOUBLE_OPT], math_sqrt),
    math("sin", &[DOUBLE_OPT], math_sin),
    math("cos", &[DOUBLE_OPT], math_cos),
    math("tan", &[DOUBLE_OPT], math_tan),
    math("asin", &[DOUBLE_OPT], math_asin),
    math("acos", &[DOUBLE_OPT], math_acos),
    math("atan", &[DOUBLE_OPT], math_atan),
    math("atan2", &[DOUBLE_ONE, DOUBLE_ONE], math_atan2),
];

/// The effective boolean value of a sequence (XPath 3.1 §2.4.3): `()` is
/// false; a sequence starting with a node is true; a single boolean is
/// itself; a single string/untypedAtomic/anyURI is true iff non-empty; a
/// single number is true iff neither zero nor NaN; anything else is
/// FORG0006.
pub fn effective_boolean_value(seq: &Sequence) -> Result<bool> {
    let items = seq.items();
    let first = match items.first() {
        None => return Ok(false),
        Some(i) => i,
    };
    if let Item::Node(_) = first {
        return Ok(true);
    }
    if items.len() > 1 {
        return Err(Error::new(
            "FORG0006",
            "effective boolean value of a sequence of two or more atomic values",
        ));
    }
    match first {
        Item::Atomic(a) => match a {
            Atomic::Boolean(b) => Ok(*b),
            Atomic::String(s) | Atomic::Untyped(s) | Atomic::AnyUri(s) => Ok(!s.is_empty()),
            Atomic::Integer(i) => Ok(*i != 0),
            Atomic::Decimal(d) => Ok(!d.is_zero()),
            Atomic::Double(d) => Ok(*d != 0.0 && !d.is_nan()),
            Atomic::Float(f) => Ok(*f != 0.0 && !f.is_nan()),
            other => Err(Error::new(
                "FORG0006",
                format!(
                    "no effective boolean value for a value of type {:?}",
                    other.type_of()
                ),
            )),
        },
        _ => Err(Error::new(
            "FORG0006",
            "no effective boolean value for a function, map or array",
        )),
    }
}

fn one<'a>(a: Atomic) -> Result<Sequence<'a>> {
    Ok(Sequence::atomic(a))
}

fn arg(args: &[Sequence<'_>], i: usize) -> Option<Atomic> {
    args.get(i).and_then(opt_atomic).cloned()
}

fn number<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let v = match arg(&args, 0) {
        None => f64::NAN,
        Some(a) => match &a {
            Atomic::String(s) | Atomic::Untyped(s) | Atomic::AnyUri(s) => {
                if ev.xpath1() {
                    xpath1_parse_number(s)
                } else {
                    parse_double(s).unwrap_or(f64::NAN)
                }
            }
            other => other.to_number(),
        },
    };
    Ok(Sequence::double(v))
}

fn abs<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    match arg(&args, 0) {
        None => Ok(Sequence::Empty),
        Some(Atomic::Integer(i)) => i
            .checked_abs()
            .map(Sequence::integer)
            .ok_or_else(|| Error::new("FOAR0002", "abs overflows xs:integer")),
        Some(Atomic::Decimal(d)) => one(Atomic::Decimal(d.abs())),
        Some(Atomic::Float(f)) => one(Atomic::Float(f.abs())),
        Some(other) => Ok(Sequence::double(other.to_number().abs())),
    }
}

fn ceiling<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(match arg(&args, 0) {
        None => Sequence::Empty,
        Some(Atomic::Decimal(d)) => Sequence::atomic(Atomic::Decimal(d.ceil())),
        Some(Atomic::Float(f)) => Sequence::atomic(Atomic::Float(f.ceil())),
        Some(Atomic::Double(d)) => Sequence::double(d.ceil()),
        Some(other) => Sequence::atomic(other),
    })
}

fn floor<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(match arg(&args, 0) {
        None => Sequence::Empty,
        Some(Atomic::Decimal(d)) => Sequence::atomic(Atomic::Decimal(d.floor())),
        Some(Atomic::Float(f)) => Sequence::atomic(Atomic::Float(f.floor())),
        Some(Atomic::Double(d)) => Sequence::double(d.floor()),
        Some(other) => Sequence::atomic(other),
    })
}

/// Rounding modes of `round` and `round-half-to-even`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Half {
    /// Halves towards positive infinity.
    Up,
    /// Halves to the even neighbour.
    Even,
}

fn round<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    round_impl(&args, Half::Up)
}

fn round_half_to_even<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    round_impl(&args, Half::Even)
}

fn round_impl<'a>(args: &[Sequence<'a>], half: Half) -> Result<Sequence<'a>> {
    let precision = args.get(1).and_then(super::integer).unwrap_or(0);
    // Decimals have at most 28 digits; doubles need the wider range.
    let wide = precision.clamp(-400, 1200) as i32;
    let precision = precision.clamp(-40, 40) as i32;
    let v = match arg(args, 0) {
        None => return Ok(Sequence::Empty),
        Some(v) => v,
    };
    Ok(Sequence::atomic(match v {
        Atomic::Integer(i) => {
            if precision >= 0 {
                Atomic::Integer(i)
            } else {
                let r = round_decimal(Decimal::from(i), precision, half);
                Atomic::Integer(
                    r.to_i64()
                        .ok_or_else(|| Error::new("FOAR0002", "round overflows xs:integer"))?,
                )
            }
        }
        Atomic::Decimal(d) => Atomic::Decimal(round_decimal(d, precision, half)),
        Atomic::Float(f) => Atomic::Float(round_double(f64::from(f), wide, half) as f32),
        other => Atomic::Double(round_double(other.to_number(), wide, half)),
    }))
}

/// Rounds a decimal to `precision` digits after the point (negative:
/// before the point).
fn round_decimal(d: Decimal, precision: i32, half: Half) -> Decimal {
    let strategy = match half {
        Half::Even => RoundingStrategy::MidpointNearestEven,
        Half::Up if d.is_sign_negative() => RoundingStrategy::MidpointTowardZero,
        Half::Up => RoundingStrategy::MidpointAwayFromZero,
    };
    if precision >= 0 {
        return d.round_dp_with_strategy(precision as u32, strategy);
    }
    // scale down, round to an integer, scale back up
    let mut factor = Decimal::ONE;
    for _ in 0..(-precision) {
        match factor.checked_mul(Decimal::TEN) {
            Some(f) => factor = f,
            None => return Decimal::ZERO,
        }
    }
    match d.checked_div(factor) {
        Some(q) => q
            .round_dp_with_strategy(0, strategy)
            .checked_mul(factor)
            .unwrap_or(d),
        None => d,
    }
}

/// Rounds a double; NaN, infinities and zeros are returned unchanged.
///
/// The rounding is of the exact binary value (F&O 3.1: `150.015e0`,
/// really 150.01499999…, rounds to 150.01 at precision 2; `-13.65e0`,
/// really -13.65000000000000036…, rounds to -13.7 at precision 1); only a
/// value exactly on the midpoint is a tie for the rounding mode.
fn round_double(x: f64, precision: i32, half: Half) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    if precision == 0 {
        let r = match half {
            Half::Up => {
                let f = x.floor();
                if x - f >= 0.5 {
                    f + 1.0
                } else {
                    f
                }
            }
            Half::Even => x.round_ties_even(),
        };
        // round(-0.3) is -0
        return if r == 0.0 && x < 0.0 { -0.0 } else { r };
    }
    // Every double has at most 1074 fractional digits: beyond that a
    // precision changes nothing; below -330 everything rounds to zero.
    if precision > 1100 {
        return x;
    }
    let signed_zero = |r: f64| if r == 0.0 && x < 0.0 { -0.0 } else { r };
    if precision < -330 {
        return signed_zero(0.0);
    }
    // The decimal expansion (exact up to 31 digits beyond the rounding
    // position, which decides every case but a difference from the
    // midpoint smaller than 10^-(precision+31)).
    let frac_digits = precision.max(0) as usize + 31;
    let text = format!("{:.*}", frac_digits, x.abs());
    let (int_part, frac_part) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    // Digits [0, keep) stay; the first dropped one is at `keep`.
    let keep = int_part.len() as i64 + i64::from(precision);
    if keep < 0 {
        return signed_zero(0.0);
    }
    let keep = keep as usize;
    let first = digits.get(keep).map_or(0, |d| d.saturating_sub(b'0'));
    let rest_zero = digits
        .get(keep + 1..)
        .is_none_or(|r| r.iter().all(|&d| d == b'0'));
    let mut kept: Vec<u8> = digits.get(..keep).unwrap_or(&[]).to_vec();
    let last_odd = kept.last().is_some_and(|d| (d - b'0') % 2 == 1);
    let up = match first {
        6..=9 => true,
        5 if !rest_zero => true,
        5 => match half {
            Half::Even => last_odd,
            // ties toward positive infinity
            Half::Up => x > 0.0,
        },
        _ => false,
    };
    if up {
        // add one unit in the last kept place (with carry)
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, b'1');
                break;
            }
            i -= 1;
            if kept[i] == b'9' {
                kept[i] = b'0';
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    if kept.is_empty() {
        kept.push(b'0');
    }
    let literal = format!(
        "{}{}e{}",
        if x < 0.0 { "-" } else { "" },
        String::from_utf8_lossy(&kept),
        -precision
    );
    signed_zero(literal.parse::<f64>().unwrap_or(x))
}

/// Untyped values (from nodes) become doubles before aggregation.
fn untyped_to_double(a: &Atomic) -> Result<Atomic> {
    match a {
        Atomic::Untyped(s) => parse_double(s)
            .map(Atomic::Double)
            .ok_or_else(|| Error::new("FORG0001", format!("cannot convert \"{s}\" to xs:double"))),
        other => Ok(other.clone()),
    }
}

fn is_summable(a: &Atomic) -> bool {
    a.is_numeric()
        || matches!(
            a,
            Atomic::Duration(
                _,
                crate::value::AtomicType::YearMonthDuration
                    | crate::value::AtomicType::DayTimeDuration
            )
        )
}

/// Sum of atomized values (`None` for the empty sequence).
/// In XPath 1.0 mode (`xpath1`), strings and untyped values that are not
/// numbers count as NaN, as XPath 1.0 `sum()` does, instead of FORG0001.
fn add_all(values: &Sequence<'_>, tz: i16, xpath1: bool) -> Result<Option<(Atomic, usize)>> {
    let mut acc: Option<Atomic> = None;
    let mut n = 0usize;
    for item in values.iter() {
        let a = match item {
            Item::Atomic(a) if xpath1 && a.is_stringlike() => {
                Atomic::Double(a.as_str().map(xpath1_parse_number).unwrap_or(f64::NAN))
            }
            Item::Atomic(a) => untyped_to_double(a)?,
            _ => return Err(Error::type_error("sum/avg expects atomic values")),
        };
        if !is_summable(&a) {
            return Err(Error::new(
                "FORG0006",
                format!("cannot sum values of type {:?}", a.type_of()),
            ));
        }
        n += 1;
        acc = Some(match acc {
            None => a,
            Some(s) => arithmetic(ArithOp::Add, &s, &a, tz).map_err(|e| {
                if e.code == "XPTY0004" {
                    Error::new("FORG0006", e.message)
                } else {
                    e
                }
            })?,
        });
    }
    Ok(acc.map(|a| (a, n)))
}

fn sum<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let tz = ev.env.implicit_timezone;
    match add_all(&args[0], tz, ev.xpath1())? {
        Some((s, _)) => one(s),
        None => {
            if args.len() > 1 {
                Ok(args[1].clone())
            } else {
                Ok(Sequence::integer(0))
            }
        }
    }
}

fn avg<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let tz = ev.env.implicit_timezone;
    match add_all(&args[0], tz, false)? {
        Some((s, n)) => {
            let count = Atomic::Integer(i64::try_from(n).unwrap_or(i64::MAX));
            one(arithmetic(ArithOp::Div, &s, &count, tz)?)
        }
        None => Ok(Sequence::Empty),
    }
}

/// Checks the collation argument of an aggregate or string function: only
/// the Unicode codepoint collation is supported (FOCH0002 otherwise).
pub(crate) fn check_collation(args: &[Sequence<'_>], i: usize) -> Result<()> {
    match args.get(i).and_then(super::opt_str) {
        None => Ok(()),
        Some(c) if c == CODEPOINT_COLLATION => Ok(()),
        Some(c) => Err(Error::new(
            "FOCH0002",
            format!("collation {c} is not supported (only the Unicode codepoint collation is)"),
        )),
    }
}

/// The Unicode codepoint collation URI.
pub const CODEPOINT_COLLATION: &str = "http://www.w3.org/2005/xpath-functions/collation/codepoint";

fn min<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    extreme(ev, &args, Ordering::Less)
}

fn max<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    extreme(ev, &args, Ordering::Greater)
}

/// `min`/`max`: keeps the value that orders `want` against the others.
fn extreme<'a>(ev: &Eval<'a, '_>, args: &[Sequence<'a>], want: Ordering) -> Result<Sequence<'a>> {
    check_collation(args, 1)?;
    let tz = ev.env.implicit_timezone;
    let mut best: Option<Atomic> = None;
    let mut nan = false;
    for item in args[0].iter() {
        let a = match item {
            Item::Atomic(a) => untyped_to_double(a)?,
            _ => return Err(Error::type_error("min/max expects atomic values")),
        };
        if crate::compare::is_nan(&a) {
            nan = true;
        }
        best = Some(match best {
            None => {
                // a lone value must still be ordered (e.g. not a QName)
                value_compare(&a, &a, false, tz).map_err(to_forg0006)?;
                a
            }
            Some(b) => {
                let ord = value_compare(&a, &b, false, tz).map_err(to_forg0006)?;
                let keep_new = ord == Some(want);
                // numeric promotion: the result has the "highest" type seen
                let (winner, loser) = if keep_new { (a, b) } else { (b, a) };
                promote_like(winner, &loser)
            }
        });
    }
    match best {
        None => Ok(Sequence::Empty),
        Some(b) if nan => one(match b {
            Atomic::Float(_) => Atomic::Float(f32::NAN),
            _ => Atomic::Double(f64::NAN),
        }),
        Some(b) => one(match b {
            // xs:anyURI values compared with strings give strings
            Atomic::AnyUri(s) => Atomic::String(s),
            other => other,
        }),
    }
}

fn to_forg0006(e: Error) -> Error {
    if e.code == "XPTY0004" {
        Error::new("FORG0006", e.message)
    } else {
        e
    }
}

/// Promotes a numeric `v` to the type of `other` if that is "higher".
fn promote_like(v: Atomic, other: &Atomic) -> Atomic {
    fn rank(a: &Atomic) -> u8 {
        match a {
            Atomic::Integer(_) => 1,
            Atomic::Decimal(_) => 2,
            Atomic::Float(_) => 3,
            Atomic::Double(_) => 4,
            _ => 0,
        }
    }
    let (rv, ro) = (rank(&v), rank(other));
    if rv == 0 || ro <= rv {
        return v;
    }
    match ro {
        2 => match v {
            Atomic::Integer(i) => Atomic::Decimal(Decimal::from(i)),
            x => x,
        },
        3 => Atomic::Float(v.to_number() as f32),
        _ => Atomic::Double(v.to_number()),
    }
}

fn boolean<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::boolean(effective_boolean_value(&args[0])?))
}

fn not<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::boolean(!effective_boolean_value(&args[0])?))
}

fn true_fn<'a>(_: &mut Eval<'a, '_>, _: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::boolean(true))
}

fn false_fn<'a>(_: &mut Eval<'a, '_>, _: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::boolean(false))
}

/// A one-argument `math:` function: `()` in, `()` out.
fn unary<'a>(args: &[Sequence<'a>], f: fn(f64) -> f64) -> Result<Sequence<'a>> {
    Ok(match arg(args, 0) {
        None => Sequence::Empty,
        Some(a) => Sequence::double(f(a.to_number())),
    })
}

fn math_pi<'a>(_: &mut Eval<'a, '_>, _: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::double(std::f64::consts::PI))
}

fn math_exp<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    unary(&args, f64::exp)
}

fn math_exp10<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    unary(&args, |x| 10f64.powf(x))
}

fn math_log<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    unary(&args, f64::ln)
}

fn math_log10<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    unary(&args, f64::log10)
}

fn math_sqrt<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    unary(&args, f64::sqrt)
}

fn math_sin<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    unary(&args, f64::sin)
}

fn math_cos<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    unary(&args, f64::cos)
}

fn math_tan<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    unary(&args, f64::tan)
}

fn math_asin<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    unary(&args, f64::asin)
}

fn math_acos<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    unary(&args, f64::acos)
}

fn math_atan<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    unary(&args, f64::atan)
}

fn math_atan2<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let y = super::double(&args[0]);
    let x = super::double(&args[1]);
    Ok(Sequence::double(y.atan2(x)))
}

fn math_pow<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let x = match arg(&args, 0) {
        None => return Ok(Sequence::Empty),
        Some(a) => a.to_number(),
    };
    let y = match arg(&args, 1) {
        Some(Atomic::Integer(i)) if i32::try_from(i).is_ok() => {
            return Ok(Sequence::double(x.powi(i as i32)));
        }
        Some(a) => a.to_number(),
        None => f64::NAN,
    };
    Ok(Sequence::double(x.powf(y)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{DocArena, Env, NoHost};

    fn run(f: Impl, args: Vec<Sequence<'static>>) -> Result<String> {
        run_mode(f, args, false)
    }

    fn run_mode(f: Impl, args: Vec<Sequence<'static>>, xpath1: bool) -> Result<String> {
        let arena = DocArena::new();
        let env = Env::new(&arena);
        let mut host = NoHost;
        let mut ev = Eval {
            env: &env,
            host: &mut host,
            locals: vec![],
            xpath1,
        };
        let r = f(&mut ev, args)?;
        Ok(r.iter()
            .map(|i| match i {
                Item::Atomic(a) => format!("{:?}:{}", a.type_of(), a.to_xs_string()),
                _ => "?".into(),
            })
            .collect::<Vec<_>>()
            .join(" "))
    }

    fn at(a: Atomic) -> Sequence<'static> {
        Sequence::atomic(a)
    }

    fn dec(s: &str) -> Atomic {
        Atomic::Decimal(s.parse().unwrap())
    }

    #[test]
    fn ebv() {
        assert!(!effective_boolean_value(&Sequence::Empty).unwrap());
        assert!(effective_boolean_value(&Sequence::string("x")).unwrap());
        assert!(!effective_boolean_value(&Sequence::string("")).unwrap());
        assert!(!effective_boolean_value(&Sequence::double(f64::NAN)).unwrap());
        assert!(effective_boolean_value(&Sequence::integer(2)).unwrap());
        let two = Sequence::from_vec(vec![
            Item::Atomic(Atomic::Integer(1)),
            Item::Atomic(Atomic::Integer(1)),
        ]);
        assert_eq!(effective_boolean_value(&two).unwrap_err().code, "FORG0006");
    }

    #[test]
    fn number_conversions() {
        assert_eq!(
            run(number, vec![Sequence::string(" 12 ")]).unwrap(),
            "Double:12"
        );
        assert_eq!(
            run(number, vec![Sequence::string("abc")]).unwrap(),
            "Double:NaN"
        );
        assert_eq!(run(number, vec![Sequence::Empty]).unwrap(), "Double:NaN");
        assert_eq!(
            run(number, vec![at(Atomic::Boolean(true))]).unwrap(),
            "Double:1"
        );
    }

    #[test]
    fn rounding() {
        assert_eq!(run(round, vec![Sequence::double(2.5)]).unwrap(), "Double:3");
        assert_eq!(
            run(round, vec![Sequence::double(-2.5)]).unwrap(),
            "Double:-2"
        );
        assert_eq!(
            run(round, vec![Sequence::double(-0.3)]).unwrap(),
            "Double:-0"
        );
        assert_eq!(run(round, vec![at(dec("-2.5"))]).unwrap(), "Decimal:-2");
        assert_eq!(run(round, vec![at(dec("2.5"))]).unwrap(), "Decimal:3");
        assert_eq!(
            run(round, vec![at(dec("3.14159")), Sequence::integer(2)]).unwrap(),
            "Decimal:3.14"
        );
        assert_eq!(
            run(round, vec![Sequence::integer(1250), Sequence::integer(-2)]).unwrap(),
            "Integer:1300"
        );
        assert_eq!(
            run(round, vec![Sequence::double(1.125), Sequence::integer(2)]).unwrap(),
            "Double:1.13"
        );
        assert_eq!(
            run(round_half_to_even, vec![Sequence::double(2.5)]).unwrap(),
            "Double:2"
        );
        assert_eq!(
            run(
                round_half_to_even,
                vec![at(dec("3.567812")), Sequence::integer(2)]
            )
            .unwrap(),
            "Decimal:3.57"
        );
        assert_eq!(
            run(
                round_half_to_even,
                vec![Sequence::integer(35612), Sequence::integer(-2)]
            )
            .unwrap(),
            "Integer:35600"
        );
        assert_eq!(run(floor, vec![at(dec("-1.5"))]).unwrap(), "Decimal:-2");
        assert_eq!(
            run(ceiling, vec![Sequence::double(1.2)]).unwrap(),
            "Double:2"
        );
        assert_eq!(run(abs, vec![Sequence::integer(-3)]).unwrap(), "Integer:3");
        assert_eq!(run(round, vec![Sequence::Empty]).unwrap(), "");
    }

    #[test]
    fn aggregates() {
        let s = |v: Vec<Atomic>| Sequence::from_vec(v.into_iter().map(Item::Atomic).collect());
        assert_eq!(
            run(sum, vec![s(vec![Atomic::Integer(1), Atomic::Integer(2)])]).unwrap(),
            "Integer:3"
        );
        assert_eq!(
            run(
                sum,
                vec![s(vec![Atomic::untyped("1.5"), Atomic::Integer(2)])]
            )
            .unwrap(),
            "Double:3.5"
        );
        assert_eq!(run(sum, vec![Sequence::Empty]).unwrap(), "Integer:0");
        assert_eq!(
            run(sum, vec![s(vec![Atomic::untyped("x")])])
                .unwrap_err()
                .code,
            "FORG0001"
        );
        assert_eq!(
            run_mode(
                sum,
                vec![s(vec![Atomic::untyped("x"), Atomic::untyped("1")])],
                true
            )
            .unwrap(),
            "Double:NaN"
        );
        assert_eq!(
            run_mode(
                sum,
                vec![s(vec![Atomic::untyped("2"), Atomic::untyped("1")])],
                true
            )
            .unwrap(),
            "Double:3"
        );
        assert_eq!(
            run(sum, vec![Sequence::Empty, Sequence::Empty]).unwrap(),
            ""
        );
        assert_eq!(
            run(sum, vec![s(vec![Atomic::string("a")])])
                .unwrap_err()
                .code,
            "FORG0006"
        );
        assert_eq!(
            run(avg, vec![s(vec![Atomic::Integer(1), Atomic::Integer(2)])]).unwrap(),
            "Decimal:1.5"
        );
        assert_eq!(run(avg, vec![Sequence::Empty]).unwrap(), "");
        assert_eq!(
            run(max, vec![s(vec![Atomic::Integer(1), Atomic::Double(0.5)])]).unwrap(),
            "Double:1"
        );
        assert_eq!(
            run(min, vec![s(vec![Atomic::string("b"), Atomic::string("a")])]).unwrap(),
            "String:a"
        );
        assert_eq!(
            run(
                min,
                vec![s(vec![Atomic::Integer(1), Atomic::Double(f64::NAN)])]
            )
            .unwrap(),
            "Double:NaN"
        );
        assert_eq!(
            run(max, vec![s(vec![Atomic::Integer(1), Atomic::string("a")])])
                .unwrap_err()
                .code,
            "FORG0006"
        );
        assert_eq!(
            run(max, vec![s(vec![Atomic::untyped("3"), Atomic::Integer(2)])]).unwrap(),
            "Double:3"
        );
    }

    #[test]
    fn math_functions() {
        assert_eq!(
            run(math_sqrt, vec![Sequence::double(4.0)]).unwrap(),
            "Double:2"
        );
        assert_eq!(
            run(math_pow, vec![Sequence::double(2.0), Sequence::integer(10)]).unwrap(),
            "Double:1024"
        );
        assert_eq!(
            run(math_exp10, vec![Sequence::double(2.0)]).unwrap(),
            "Double:100"
        );
        assert_eq!(run(math_log, vec![Sequence::Empty]).unwrap(), "");
        assert_eq!(
            run(
                math_atan2,
                vec![Sequence::double(0.0), Sequence::double(1.0)]
            )
            .unwrap(),
            "Double:0"
        );
    }
}
