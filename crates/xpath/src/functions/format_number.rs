//! `format-number()` pictures (XSLT 1.0 / XPath 3.1 rules) and decimal
//! formats; `format-integer()` and the `xsl:number` format tokens.
//! OWNER: datetime helper.
//!
//! # format-number
//!
//! A picture is parsed once ([`Picture::parse`]) against a
//! [`DecimalFormat`] and can then format many values
//! ([`Picture::format`]). Numbers are handled as *decimal digit strings*
//! ([`Digits`]), never as binary fractions: a double is converted through
//! its shortest round-trip representation (the digits `xs:string` would
//! print), so `format-number(0.125, '0.00')` is `0.12` (half-to-even on
//! the decimal 0.125) and `format-number(2.675, '0.00')` is `2.68` (the
//! printed double is 2.675). Values of any magnitude work (1e300 prints
//! all its digits).
//!
//! `backwards_compatible` reproduces libxslt (xsltproc), the reference
//! for `version="1.0"` stylesheets, verified against xsltproc 1.1.35:
//! it rounds half away from zero on the *scaled double*
//! (`floor(0.5 + |x| × 10^maxfrac)`, so 0.125 → `0.13`, 2.5 → `3`,
//! -0.5 → `-1`, 1.005 → `1.00`), uses the distance of the rightmost
//! grouping separator as a regular grouping size (`#,##,###` groups by 3)
//! and formats negative zero like positive zero.
//!
//! # format-integer and xsl:number
//!
//! [`format_integer`] implements the XPath 3.1 primary format tokens
//! (`1`, `01`, `#,##0`, `a`, `A`, `i`, `I`, `w`, `W`, `Ww`) with the `o`
//! (ordinal) modifier, English and German words and ordinals.
//! [`format_number_list`] applies an `xsl:number` format string (prefix,
//! tokens with separators, suffix) to a list of numbers.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use rust_decimal::Decimal;

use super::{Builtin, Kind, Occ, Param, FN};
use crate::error::{Error, Result};
use crate::eval::Eval;
use crate::value::{Atomic, Item, Sequence};

/// The properties of an `xsl:decimal-format` (defaults per XSLT 3.0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecimalFormat {
    /// `decimal-separator` (`.`)
    pub decimal_separator: char,
    /// `grouping-separator` (`,`)
    pub grouping_separator: char,
    /// `exponent-separator` (`e`)
    pub exponent_separator: char,
    /// `infinity` (`Infinity`)
    pub infinity: String,
    /// `minus-sign` (`-`)
    pub minus_sign: char,
    /// `NaN` (`NaN`)
    pub nan: String,
    /// `percent` (`%`)
    pub percent: char,
    /// `per-mille` (`‰`)
    pub per_mille: char,
    /// `zero-digit` (`0`); the digit family is zero-digit … zero-digit+9.
    pub zero_digit: char,
    /// `digit` (`#`)
    pub digit: char,
    /// `pattern-separator` (`;`)
    pub pattern_separator: char,
}

impl Default for DecimalFormat {
    fn default() -> Self {
        DecimalFormat {
            decimal_separator: '.',
            grouping_separator: ',',
            exponent_separator: 'e',
            infinity: "Infinity".into(),
            minus_sign: '-',
            nan: "NaN".into(),
            percent: '%',
            per_mille: '\u{2030}',
            zero_digit: '0',
            digit: '#',
            pattern_separator: ';',
        }
    }
}

impl DecimalFormat {
    /// The value 0–9 of a digit of this format's family.
    fn digit_value(&self, c: char) -> Option<u32> {
        let d = (c as u32).wrapping_sub(self.zero_digit as u32);
        (d < 10).then_some(d)
    }

    fn digit_char(&self, d: u8) -> char {
        char::from_u32(self.zero_digit as u32 + u32::from(d)).unwrap_or('?')
    }
}

fn picture_error(picture: &str, why: &str) -> Error {
    Error::new(
        "FODF1310",
        format!("format-number(): invalid picture '{picture}': {why}"),
    )
}

// ---------------------------------------------------------------------------
// Decimal digit strings

/// A non-negative decimal number as digits: `int` (no leading zeros,
/// empty for zero) and `frac` (no trailing zeros).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Digits {
    /// Integer digits (0–9 values), most significant first.
    pub int: Vec<u8>,
    /// Fraction digits (0–9 values).
    pub frac: Vec<u8>,
}

impl Digits {
    /// From plain decimal text `123.456` (no sign, no exponent).
    pub fn from_plain(s: &str) -> Digits {
        let (i, f) = s.split_once('.').unwrap_or((s, ""));
        let mut d = Digits {
            int: i
                .bytes()
                .filter(u8::is_ascii_digit)
                .map(|b| b - b'0')
                .collect(),
            frac: f
                .bytes()
                .filter(u8::is_ascii_digit)
                .map(|b| b - b'0')
                .collect(),
        };
        d.trim();
        d
    }

    /// From the shortest round-trip representation of a finite double
    /// (sign ignored).
    pub fn from_f64(f: f64) -> Digits {
        let s = format!("{:e}", f.abs());
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i64 = exp.parse().unwrap_or(0);
        let digits: Vec<u8> = mantissa
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(|b| b - b'0')
            .collect();
        // value = d1.d2d3… × 10^exp: the point is after exp+1 digits
        let point = exp + 1;
        let mut d = if point <= 0 {
            let mut frac = vec![0; usize::try_from(-point).unwrap_or(0)];
            frac.extend_from_slice(&digits);
            Digits {
                int: Vec::new(),
                frac,
            }
        } else {
            let p = usize::try_from(point).unwrap_or(0);
            if digits.len() <= p {
                let mut int = digits.clone();
                int.resize(p, 0);
                Digits {
                    int,
                    frac: Vec::new(),
                }
            } else {
                Digits {
                    int: digits[..p].to_vec(),
                    frac: digits[p..].to_vec(),
                }
            }
        };
        d.trim();
        d
    }

    /// From a decimal (sign ignored).
    pub fn from_decimal(d: &Decimal) -> Digits {
        Digits::from_plain(&d.abs().normalize().to_string())
    }

    fn trim(&mut self) {
        let lead = self.int.iter().take_while(|d| **d == 0).count();
        self.int.drain(..lead);
        while self.frac.last() == Some(&0) {
            self.frac.pop();
        }
    }

    /// Is it zero?
    pub fn is_zero(&self) -> bool {
        self.int.is_empty() && self.frac.is_empty()
    }

    /// Multiplies by 10^n (n ≥ 0).
    pub fn shift_left(&mut self, n: usize) {
        for _ in 0..n {
            let d = if self.frac.is_empty() {
                0
            } else {
                self.frac.remove(0)
            };
            self.int.push(d);
        }
        self.trim();
    }

    /// Divides by 10^n (n ≥ 0).
    pub fn shift_right(&mut self, n: usize) {
        for _ in 0..n {
            let d = self.int.pop().unwrap_or(0);
            self.frac.insert(0, d);
        }
        self.trim();
    }

    /// Rounds to `n` fraction digits, half to even.
    pub fn round_half_even(&mut self, n: usize) {
        if self.frac.len() <= n {
            return;
        }
        let first = self.frac[n];
        let rest_nonzero = self.frac[n + 1..].iter().any(|d| *d != 0);
        let last_kept = if n == 0 {
            self.int.last().copied().unwrap_or(0)
        } else {
            self.frac[n - 1]
        };
        let up = first > 5 || (first == 5 && (rest_nonzero || last_kept % 2 == 1));
        self.frac.truncate(n);
        if up {
            self.increment_last();
        }
        self.trim();
    }

    /// Adds one unit in the last kept place.
    fn increment_last(&mut self) {
        let mut i = self.frac.len();
        while i > 0 {
            i -= 1;
            if self.frac[i] == 9 {
                self.frac[i] = 0;
            } else {
                self.frac[i] += 1;
                return;
            }
        }
        let mut j = self.int.len();
        while j > 0 {
            j -= 1;
            if self.int[j] == 9 {
                self.int[j] = 0;
            } else {
                self.int[j] += 1;
                return;
            }
        }
        self.int.insert(0, 1);
    }

    /// Number of integer digits (0 for values below one).
    fn int_len(&self) -> usize {
        self.int.len()
    }
}

// ---------------------------------------------------------------------------
// Pictures

/// One analysed sub-picture (XPath 3.1 §4.7.4).
#[derive(Debug, Clone, PartialEq)]
struct SubPicture {
    prefix: String,
    suffix: String,
    /// Grouping positions in the integer part (digits to their right).
    int_grouping: Vec<usize>,
    /// Regular grouping size, if the positions repeat.
    regular: Option<usize>,
    /// Grouping positions in the fraction part (digits to their left).
    frac_grouping: Vec<usize>,
    min_int: usize,
    min_frac: usize,
    max_frac: usize,
    /// Multiplier: 1, 100 (percent) or 1000 (per-mille) as a power of ten.
    scale_pow: usize,
    /// Minimum exponent digits, if there is an exponent.
    min_exp: Option<usize>,
    /// Scaling factor for exponent notation.
    scaling: usize,
}

/// A parsed `format-number()` picture string.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    positive: SubPicture,
    /// The explicit negative sub-picture; `None`: minus sign + positive.
    negative: Option<SubPicture>,
    /// libxslt: the negative sub-picture only supplies prefix and suffix.
    negative_compat: Option<SubPicture>,
    format: DecimalFormat,
}

impl Picture {
    /// Parses a picture string with a decimal format (FODF1310 when the
    /// picture is invalid).
    pub fn parse(picture: &str, df: &DecimalFormat) -> Result<Picture> {
        let subs: Vec<&str> = picture.split(df.pattern_separator).collect();
        if subs.len() > 2 {
            return Err(picture_error(picture, "more than one pattern separator"));
        }
        let positive = parse_sub(subs[0], picture, df)?;
        let negative = match subs.get(1) {
            Some(s) => Some(parse_sub(s, picture, df)?),
            None => None,
        };
        let negative_compat = negative.as_ref().map(|n| SubPicture {
            prefix: n.prefix.clone(),
            suffix: n.suffix.clone(),
            ..positive.clone()
        });
        Ok(Picture {
            positive,
            negative,
            negative_compat,
            format: df.clone(),
        })
    }

    /// Formats a numeric value (other values are converted with
    /// `number()` semantics). `backwards_compatible` selects the libxslt
    /// (XSLT 1.0) behaviour described in the module docs.
    pub fn format_with(&self, value: &Atomic, backwards_compatible: bool) -> String {
        let df = &self.format;
        let (negative, digits) = match value {
            Atomic::Integer(i) => (*i < 0, Digits::from_plain(&i.unsigned_abs().to_string())),
            Atomic::Decimal(d) => (
                d.is_sign_negative() && !d.is_zero(),
                Digits::from_decimal(d),
            ),
            other => {
                let f = match other {
                    Atomic::Float(x) => {
                        // shortest digits of the float itself
                        let s = format!("{x:e}");
                        s.parse::<f64>().unwrap_or(f64::from(*x))
                    }
                    _ => other.to_number(),
                };
                if f.is_nan() {
                    return df.nan.clone();
                }
                let negative = if backwards_compatible {
                    f < 0.0
                } else {
                    f < 0.0 || (f == 0.0 && f.is_sign_negative())
                };
                let sub = self.sub(negative, backwards_compatible);
                if f.is_infinite() {
                    if backwards_compatible {
                        // libxslt: minus sign and infinity, positive affixes
                        let sign = if negative {
                            df.minus_sign.to_string()
                        } else {
                            String::new()
                        };
                        let p = &self.positive;
                        return format!("{}{sign}{}{}", p.prefix, df.infinity, p.suffix);
                    }
                    return self.wrap(negative, sub, &df.infinity);
                }
                if backwards_compatible && sub.min_exp.is_none() {
                    let body = self.libxslt_body(sub, f.abs());
                    return self.wrap(negative, sub, &body);
                }
                (negative, Digits::from_f64(f))
            }
        };
        let sub = self.sub(negative, backwards_compatible);
        let body = self.body(sub, digits);
        self.wrap(negative, sub, &body)
    }

    /// Formats with the XPath 3.1 rules.
    pub fn format(&self, value: &Atomic) -> String {
        self.format_with(value, false)
    }

    fn sub(&self, negative: bool, backwards_compatible: bool) -> &SubPicture {
        let neg = if backwards_compatible {
            &self.negative_compat
        } else {
            &self.negative
        };
        match (neg, negative) {
            (Some(n), true) => n,
            _ => &self.positive,
        }
    }

    fn wrap(&self, negative: bool, sub: &SubPicture, body: &str) -> String {
        let minus = if negative && self.negative.is_none() {
            self.format.minus_sign.to_string()
        } else {
            String::new()
        };
        format!("{minus}{}{body}{}", sub.prefix, sub.suffix)
    }

    /// The number part following libxslt: scaled double, half away from
    /// zero, regular grouping by the rightmost group size.
    fn libxslt_body(&self, sub: &SubPicture, a: f64) -> String {
        let scaled = a * 10f64.powi(sub.scale_pow as i32);
        let n = sub.max_frac;
        let rounded = (0.5 + scaled * 10f64.powi(n as i32)).floor();
        let mut digits = Digits::from_plain(&format!("{rounded:.0}"));
        digits.shift_right(n);
        let mut compat = sub.clone();
        if compat.regular.is_none() {
            compat.regular = compat.int_grouping.first().copied();
        }
        self.plain_body(&compat, &digits)
    }

    /// Scales, rounds and lays out the digits (§4.7.5).
    fn body(&self, sub: &SubPicture, mut digits: Digits) -> String {
        digits.shift_left(sub.scale_pow);
        match sub.min_exp {
            None => {
                digits.round_half_even(sub.max_frac);
                self.plain_body(sub, &digits)
            }
            Some(min_exp) => {
                // choose the exponent so that the mantissa has `scaling`
                // integer digits (or is below 1 when scaling is 0)
                let mut exp: i64 = 0;
                if !digits.is_zero() {
                    let magnitude = if digits.int.is_empty() {
                        -(digits.frac.iter().take_while(|d| **d == 0).count() as i64)
                    } else {
                        digits.int_len() as i64
                    };
                    exp = magnitude - sub.scaling as i64;
                    shift(&mut digits, -exp);
                    digits.round_half_even(sub.max_frac);
                    if digits.int_len() > sub.scaling {
                        shift(&mut digits, -1);
                        exp += 1;
                        digits.round_half_even(sub.max_frac);
                    }
                } else {
                    digits.round_half_even(sub.max_frac);
                }
                let mut out = self.plain_body(sub, &digits);
                out.push(self.format.exponent_separator);
                if exp < 0 {
                    out.push(self.format.minus_sign);
                }
                let e = exp.unsigned_abs().to_string();
                for _ in e.len()..min_exp {
                    out.push(self.format.zero_digit);
                }
                for b in e.bytes() {
                    out.push(self.format.digit_char(b - b'0'));
                }
                out
            }
        }
    }

    /// Integer part padding and grouping, fraction part padding.
    fn plain_body(&self, sub: &SubPicture, digits: &Digits) -> String {
        let df = &self.format;
        let mut int = digits.int.clone();
        while int.len() < sub.min_int {
            int.insert(0, 0);
        }
        let mut frac = digits.frac.clone();
        while frac.len() < sub.min_frac {
            frac.push(0);
        }
        if int.is_empty() && frac.is_empty() {
            int.push(0);
        }
        let int_groups: HashSet<usize> = sub.int_grouping.iter().copied().collect();
        let frac_groups: HashSet<usize> = sub.frac_grouping.iter().copied().collect();
        let mut out = String::with_capacity(int.len() * 2 + frac.len() + 2);
        let n = int.len();
        for (i, d) in int.iter().enumerate() {
            let from_right = n - i;
            if i > 0 {
                let at = match sub.regular {
                    Some(g) => from_right.is_multiple_of(g),
                    None => int_groups.contains(&from_right),
                };
                if at {
                    out.push(df.grouping_separator);
                }
            }
            out.push(df.digit_char(*d));
        }
        if !frac.is_empty() {
            out.push(df.decimal_separator);
            for (i, d) in frac.iter().enumerate() {
                if i > 0 && frac_groups.contains(&i) {
                    out.push(df.grouping_separator);
                }
                out.push(df.digit_char(*d));
            }
        }
        out
    }
}

/// Multiplies by 10^n (n may be negative).
fn shift(d: &mut Digits, n: i64) {
    if n >= 0 {
        d.shift_left(usize::try_from(n).unwrap_or(0));
    } else {
        d.shift_right(usize::try_from(-n).unwrap_or(0));
    }
}

fn parse_sub(sub: &str, picture: &str, df: &DecimalFormat) -> Result<SubPicture> {
    let chars: Vec<char> = sub.chars().collect();
    let is_digit = |c: char| c == df.digit || df.digit_value(c).is_some();
    let is_basic_active =
        |c: char| is_digit(c) || c == df.decimal_separator || c == df.grouping_separator;
    // an exponent separator is active only between active characters
    let mut active = vec![false; chars.len()];
    for (i, c) in chars.iter().enumerate() {
        active[i] = is_basic_active(*c);
    }
    let mut exp_at = None;
    for (i, c) in chars.iter().enumerate() {
        if *c == df.exponent_separator
            && !active[i]
            && i > 0
            && active[i - 1]
            && chars.get(i + 1).is_some_and(|n| is_digit(*n))
            && exp_at.is_none()
        {
            active[i] = true;
            exp_at = Some(i);
        }
    }
    let first = active.iter().position(|a| *a);
    let last = active.iter().rposition(|a| *a);
    let (first, last) = match (first, last) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(picture_error(picture, "a sub-picture has no digit sign")),
    };
    if (first..=last).any(|i| !active[i]) {
        return Err(picture_error(
            picture,
            "a passive character appears between active characters",
        ));
    }
    let prefix: String = chars[..first].iter().collect();
    let suffix: String = chars[last + 1..].iter().collect();
    let passive = format!("{prefix}{suffix}");
    let percents = passive.chars().filter(|c| *c == df.percent).count();
    let milles = passive.chars().filter(|c| *c == df.per_mille).count();
    if percents + milles > 1 {
        return Err(picture_error(
            picture,
            "more than one percent or per-mille sign",
        ));
    }
    let scale_pow = if percents == 1 {
        2
    } else if milles == 1 {
        3
    } else {
        0
    };
    let (mantissa, exponent) = match exp_at {
        Some(e) => (&chars[first..e], Some(&chars[e + 1..=last])),
        None => (&chars[first..=last], None),
    };
    if !mantissa.iter().any(|c| is_digit(*c)) {
        return Err(picture_error(picture, "the mantissa has no digit sign"));
    }
    let seps = mantissa
        .iter()
        .filter(|c| **c == df.decimal_separator)
        .count();
    if seps > 1 {
        return Err(picture_error(picture, "more than one decimal separator"));
    }
    let dot = mantissa.iter().position(|c| *c == df.decimal_separator);
    let (int_part, frac_part) = match dot {
        Some(p) => (&mantissa[..p], &mantissa[p + 1..]),
        None => (mantissa, &mantissa[mantissa.len()..]),
    };
    // grouping separator rules
    if dot.is_some_and(|p| {
        (p > 0 && mantissa[p - 1] == df.grouping_separator)
            || mantissa.get(p + 1) == Some(&df.grouping_separator)
    }) {
        return Err(picture_error(
            picture,
            "a grouping separator is adjacent to the decimal separator",
        ));
    }
    if dot.is_none() && int_part.last() == Some(&df.grouping_separator) {
        return Err(picture_error(
            picture,
            "a grouping separator ends the integer part",
        ));
    }
    if int_part
        .windows(2)
        .any(|w| w[0] == df.grouping_separator && w[1] == df.grouping_separator)
    {
        return Err(picture_error(picture, "adjacent grouping separators"));
    }
    // integer part: no optional digit after a mandatory one
    let mut seen_mandatory = false;
    for c in int_part {
        if df.digit_value(*c).is_some() {
            seen_mandatory = true;
        } else if *c == df.digit && seen_mandatory {
            return Err(picture_error(
                picture,
                "an optional digit sign follows a mandatory digit sign in the integer part",
            ));
        }
    }
    // fraction part: no mandatory digit after an optional one
    let mut seen_optional = false;
    for c in frac_part {
        if *c == df.digit {
            seen_optional = true;
        } else if df.digit_value(*c).is_some() && seen_optional {
            return Err(picture_error(
                picture,
                "a mandatory digit sign follows an optional digit sign in the fraction part",
            ));
        }
    }
    // grouping positions
    let mut int_grouping = Vec::new();
    let mut count = 0;
    for c in int_part.iter().rev() {
        if *c == df.grouping_separator {
            int_grouping.push(count);
        } else {
            count += 1;
        }
    }
    let int_digits = count;
    let position_set: HashSet<usize> = int_grouping.iter().copied().collect();
    let regular = match int_grouping.iter().copied().min() {
        Some(g) if g > 0 => {
            let all_multiples = int_grouping.iter().all(|p| p % g == 0);
            let every = (1..)
                .map(|k| k * g)
                .take_while(|m| *m < int_digits)
                .all(|m| position_set.contains(&m));
            (all_multiples && every).then_some(g)
        }
        _ => None,
    };
    let mut frac_grouping = Vec::new();
    let mut count = 0;
    for c in frac_part {
        if *c == df.grouping_separator {
            frac_grouping.push(count);
        } else {
            count += 1;
        }
    }
    let mandatory_int = int_part
        .iter()
        .filter(|c| df.digit_value(**c).is_some())
        .count();
    let mut min_frac = frac_part
        .iter()
        .filter(|c| df.digit_value(**c).is_some())
        .count();
    let max_frac = frac_part.iter().filter(|c| is_digit(**c)).count();
    let min_exp = match exponent {
        Some(e) => {
            if !e.iter().all(|c| df.digit_value(*c).is_some()) {
                return Err(picture_error(
                    picture,
                    "the exponent may only contain mandatory digit signs",
                ));
            }
            if scale_pow != 0 {
                return Err(picture_error(
                    picture,
                    "a picture with an exponent cannot have a percent or per-mille sign",
                ));
            }
            Some(e.len())
        }
        None => None,
    };
    let mut min_int = mandatory_int;
    let mut max_frac = max_frac;
    if min_int == 0 && dot.is_none() && min_exp.is_none() {
        min_int = 1;
    }
    if min_exp.is_some() && min_int == 0 && max_frac == 0 {
        min_frac = 1;
        max_frac = 1;
    }
    Ok(SubPicture {
        prefix,
        suffix,
        int_grouping,
        regular,
        frac_grouping,
        min_int,
        min_frac,
        max_frac,
        scale_pow,
        min_exp,
        scaling: mandatory_int,
    })
}

/// `format-number($value, $picture)` with a decimal format in one call.
pub fn format_number(
    value: &Atomic,
    picture: &str,
    df: &DecimalFormat,
    backwards_compatible: bool,
) -> Result<String> {
    Ok(Picture::parse(picture, df)?.format_with(value, backwards_compatible))
}

// ---------------------------------------------------------------------------
// Integer formatting: format-integer and xsl:number

/// Zero digits of the decimal digit families recognised in format tokens.
const ZERO_DIGITS: &[u32] = &[
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xE50, 0xED0, 0xF20, 0x1040, 0x17E0, 0x1810, 0xFF10,
];

/// The digit value and zero digit of a Unicode decimal digit.
fn unicode_digit(c: char) -> Option<(u32, char)> {
    let cp = c as u32;
    ZERO_DIGITS
        .iter()
        .find(|z| cp >= **z && cp < **z + 10)
        .and_then(|z| Some((cp - z, char::from_u32(*z)?)))
}

/// A primary format token of `format-integer` / `xsl:number`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberToken {
    /// A decimal digit pattern: minimum width, zero digit, grouping
    /// (positions from the right with their separator), regular size.
    Decimal {
        /// Minimum number of digits.
        min_width: usize,
        /// Zero digit of the family.
        zero: char,
        /// Grouping separators: (position from the right, separator).
        grouping: Vec<(usize, char)>,
        /// Regular grouping: (size, separator).
        regular: Option<(usize, char)>,
    },
    /// `a` / `A`
    Alpha(bool),
    /// `i` / `I`
    Roman(bool),
    /// `w` (lower), `W` (upper), `Ww` (title)
    Words(WordCase),
}

/// Letter case of word output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordCase {
    /// `w`
    Lower,
    /// `W`
    Upper,
    /// `Ww`
    Title,
}

impl NumberToken {
    /// Parses a primary format token; unknown tokens fall back to `1`
    /// as the specification requires.
    pub fn parse(token: &str) -> Result<NumberToken> {
        match token {
            "a" => return Ok(NumberToken::Alpha(false)),
            "A" => return Ok(NumberToken::Alpha(true)),
            "i" => return Ok(NumberToken::Roman(false)),
            "I" => return Ok(NumberToken::Roman(true)),
            "w" => return Ok(NumberToken::Words(WordCase::Lower)),
            "W" => return Ok(NumberToken::Words(WordCase::Upper)),
            "Ww" => return Ok(NumberToken::Words(WordCase::Title)),
            _ => {}
        }
        let chars: Vec<char> = token.chars().collect();
        let has_digit = chars.iter().any(|c| unicode_digit(*c).is_some());
        if !has_digit {
            if chars.contains(&'#') {
                return Err(Error::new(
                    "FODF1310",
                    format!("format token '{token}' has no mandatory digit"),
                ));
            }
            return Ok(NumberToken::decimal_default());
        }
        let mut zero = None;
        let mut min_width = 0;
        let mut grouping = Vec::new();
        let mut count = 0;
        let mut seen_mandatory = false;
        for c in chars.iter().rev() {
            if let Some((_, z)) = unicode_digit(*c) {
                if zero.is_some_and(|x| x != z) {
                    return Err(Error::new(
                        "FODF1310",
                        format!("format token '{token}' mixes digit families"),
                    ));
                }
                zero = Some(z);
                min_width += 1;
                count += 1;
                seen_mandatory = true;
            } else if *c == '#' {
                if !seen_mandatory {
                    return Err(Error::new(
                        "FODF1310",
                        format!("format token '{token}': '#' after a digit"),
                    ));
                }
                count += 1;
            } else if c.is_alphanumeric() {
                return Ok(NumberToken::decimal_default());
            } else {
                if count == 0 || grouping.last().is_some_and(|(p, _)| *p == count) {
                    return Err(Error::new(
                        "FODF1310",
                        format!("format token '{token}': misplaced grouping separator"),
                    ));
                }
                grouping.push((count, *c));
            }
        }
        if grouping.last().is_some_and(|(p, _)| *p == count) {
            return Err(Error::new(
                "FODF1310",
                format!("format token '{token}': grouping separator at the start"),
            ));
        }
        let regular = match grouping.first() {
            Some(&(g, sep))
                if grouping
                    .iter()
                    .enumerate()
                    .all(|(i, (p, s))| *p == g * (i + 1) && *s == sep) =>
            {
                Some((g, sep))
            }
            _ => None,
        };
        Ok(NumberToken::Decimal {
            min_width,
            zero: zero.unwrap_or('0'),
            grouping,
            regular,
        })
    }

    fn decimal_default() -> NumberToken {
        NumberToken::Decimal {
            min_width: 1,
            zero: '0',
            grouping: Vec::new(),
            regular: None,
        }
    }

    /// Formats a non-negative integer.
    pub fn format(&self, n: u64, ordinal: bool, lang: &str) -> String {
        match self {
            NumberToken::Decimal {
                min_width,
                zero,
                grouping,
                regular,
            } => {
                let digits = format!("{n:0width$}", width = *min_width);
                let len = digits.len();
                let groups: HashMap<usize, char> = grouping.iter().copied().collect();
                let mut out = String::with_capacity(len * 2);
                for (i, b) in digits.bytes().enumerate() {
                    let from_right = len - i;
                    if i > 0 {
                        let sep = match regular {
                            Some((g, s)) if from_right % g == 0 => Some(*s),
                            Some(_) => None,
                            None => groups.get(&from_right).copied(),
                        };
                        if let Some(s) = sep {
                            out.push(s);
                        }
                    }
                    out.push(char::from_u32(*zero as u32 + u32::from(b - b'0')).unwrap_or('?'));
                }
                if ordinal {
                    out.push_str(&ordinal_suffix(n, lang));
                }
                out
            }
            NumberToken::Alpha(upper) => alpha(n, *upper),
            NumberToken::Roman(upper) => roman(n, *upper),
            NumberToken::Words(case) => {
                let w = if is_german(lang) {
                    if ordinal {
                        german_ordinal(n)
                    } else {
                        german_words(n)
                    }
                } else if ordinal {
                    english_ordinal(n)
                } else {
                    english_words(n)
                };
                apply_case(&w, *case)
            }
        }
    }
}

fn is_german(lang: &str) -> bool {
    lang == "de" || lang.starts_with("de-") || lang.starts_with("de_")
}

fn apply_case(w: &str, case: WordCase) -> String {
    match case {
        WordCase::Lower => w.to_lowercase(),
        WordCase::Upper => w.to_uppercase(),
        WordCase::Title => {
            // Every word capitalized but the conjunction: `One Hundred and Ten`.
            let mut out = String::with_capacity(w.len());
            let mut start = true;
            for (i, c) in w.char_indices() {
                if start && !w[i..].starts_with("and ") {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = c == ' ' || c == '-';
            }
            out
        }
    }
}

fn ordinal_suffix(n: u64, lang: &str) -> String {
    if is_german(lang) {
        return ".".into();
    }
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    suffix.into()
}

/// `a`, `b`, …, `z`, `aa`, … (0 → `0`).
pub fn alpha(mut n: u64, upper: bool) -> String {
    if n == 0 {
        return "0".to_string();
    }
    let base = if upper { b'A' } else { b'a' };
    let mut out = Vec::new();
    while n > 0 {
        n -= 1;
        out.push(base + (n % 26) as u8);
        n /= 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Roman numerals (1–3999; other values in decimal).
pub fn roman(n: u64, upper: bool) -> String {
    if n == 0 || n >= 4000 {
        return n.to_string();
    }
    const TABLE: &[(u64, &str)] = &[
        (1000, "m"),
        (900, "cm"),
        (500, "d"),
        (400, "cd"),
        (100, "c"),
        (90, "xc"),
        (50, "l"),
        (40, "xl"),
        (10, "x"),
        (9, "ix"),
        (5, "v"),
        (4, "iv"),
        (1, "i"),
    ];
    let mut n = n;
    let mut out = String::new();
    for (value, text) in TABLE {
        while n >= *value {
            out.push_str(text);
            n -= value;
        }
    }
    if upper {
        out.to_uppercase()
    } else {
        out
    }
}

const EN_ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const EN_TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const SCALES: [(u64, &str, &str); 6] = [
    (1_000_000_000_000_000_000, "quintillion", "Trillion"),
    (1_000_000_000_000_000, "quadrillion", "Billiarde"),
    (1_000_000_000_000, "trillion", "Billion"),
    (1_000_000_000, "billion", "Milliarde"),
    (1_000_000, "million", "Million"),
    (1_000, "thousand", ""),
];

/// English cardinal words, British style: `one hundred and twenty-three`,
/// `two thousand and one`, `one thousand nine hundred and ninety`.
pub fn english_words(n: u64) -> String {
    if n < 20 {
        return EN_ONES[n as usize].to_string();
    }
    if n < 100 {
        let t = EN_TENS[(n / 10) as usize];
        return if n.is_multiple_of(10) {
            t.to_string()
        } else {
            format!("{t}-{}", EN_ONES[(n % 10) as usize])
        };
    }
    if n < 1000 {
        let h = format!("{} hundred", EN_ONES[(n / 100) as usize]);
        return if n.is_multiple_of(100) {
            h
        } else {
            format!("{h} and {}", english_words(n % 100))
        };
    }
    for (scale, name, _) in SCALES {
        if n >= scale {
            let head = format!("{} {name}", english_words(n / scale));
            let rest = n % scale;
            return if rest == 0 {
                head
            } else if rest < 100 {
                format!("{head} and {}", english_words(rest))
            } else {
                format!("{head} {}", english_words(rest))
            };
        }
    }
    n.to_string()
}

/// English ordinal words (`first`, `twenty-second`, `one hundredth`).
pub fn english_ordinal(n: u64) -> String {
    let w = english_words(n);
    let (head, last) = match w.rfind([' ', '-']) {
        Some(i) => (&w[..=i], &w[i + 1..]),
        None => ("", w.as_str()),
    };
    let last = match last {
        "one" => "first".to_string(),
        "two" => "second".to_string(),
        "three" => "third".to_string(),
        "five" => "fifth".to_string(),
        "eight" => "eighth".to_string(),
        "nine" => "ninth".to_string(),
        "twelve" => "twelfth".to_string(),
        l if l.ends_with('y') => format!("{}ieth", &l[..l.len() - 1]),
        l => format!("{l}th"),
    };
    format!("{head}{last}")
}

const DE_ONES: [&str; 20] = [
    "null",
    "eins",
    "zwei",
    "drei",
    "vier",
    "fünf",
    "sechs",
    "sieben",
    "acht",
    "neun",
    "zehn",
    "elf",
    "zwölf",
    "dreizehn",
    "vierzehn",
    "fünfzehn",
    "sechzehn",
    "siebzehn",
    "achtzehn",
    "neunzehn",
];
const DE_TENS: [&str; 10] = [
    "", "", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig", "neunzig",
];

/// German cardinal words (`einundzwanzig`, `zweitausendvierundzwanzig`).
pub fn german_words(n: u64) -> String {
    if n == 0 {
        return "null".into();
    }
    german_words_inner(n, false)
}

fn german_words_inner(n: u64, before_noun: bool) -> String {
    if n == 1 {
        return if before_noun { "ein" } else { "eins" }.into();
    }
    if n < 20 {
        return DE_ONES[n as usize].to_string();
    }
    if n < 100 {
        let t = DE_TENS[(n / 10) as usize];
        return if n.is_multiple_of(10) {
            t.to_string()
        } else {
            format!("{}und{t}", german_words_inner(n % 10, true))
        };
    }
    if n < 1000 {
        let h = format!("{}hundert", german_words_inner(n / 100, true));
        return if n.is_multiple_of(100) {
            h
        } else {
            format!("{h}{}", german_words_inner(n % 100, before_noun))
        };
    }
    if n < 1_000_000 {
        let t = format!("{}tausend", german_words_inner(n / 1000, true));
        return if n.is_multiple_of(1000) {
            t
        } else {
            format!("{t}{}", german_words_inner(n % 1000, before_noun))
        };
    }
    for (scale, _, name) in SCALES {
        if n >= scale && !name.is_empty() {
            let count = n / scale;
            let noun = if count == 1 {
                format!("eine {name}")
            } else {
                let plural = if name.ends_with('e') {
                    format!("{name}n")
                } else {
                    format!("{name}en")
                };
                format!("{} {plural}", german_words_inner(count, true))
            };
            return if n.is_multiple_of(scale) {
                noun
            } else {
                format!("{noun} {}", german_words_inner(n % scale, before_noun))
            };
        }
    }
    n.to_string()
}

/// German ordinal words (`erste`, `dritte`, `zwanzigste`).
pub fn german_ordinal(n: u64) -> String {
    match n {
        1 => "erste".into(),
        3 => "dritte".into(),
        7 => "siebte".into(),
        8 => "achte".into(),
        _ if n < 20 => format!("{}te", german_words(n)),
        _ => {
            let w = german_words(n);
            let w = w
                .strip_suffix("eins")
                .map(|h| format!("{h}ein"))
                .unwrap_or(w);
            format!("{w}ste")
        }
    }
}

/// `format-integer($value, $picture, $lang)` (XPath 3.1 §4.6.1).
pub fn format_integer(value: i64, picture: &str, lang: &str) -> Result<String> {
    let (primary, modifier) = match picture.rfind(';') {
        Some(i) if i > 0 => (&picture[..i], &picture[i + 1..]),
        Some(_) => {
            return Err(Error::new(
                "FODF1310",
                "format-integer(): the primary format token is empty",
            ))
        }
        None => (picture, ""),
    };
    if primary.is_empty() {
        return Err(Error::new(
            "FODF1310",
            "format-integer(): the primary format token is empty",
        ));
    }
    let ordinal = modifier.starts_with('o');
    let token = NumberToken::parse(primary)?;
    let text = token.format(value.unsigned_abs(), ordinal, lang);
    Ok(if value < 0 { format!("-{text}") } else { text })
}

/// A parsed `xsl:number` format: prefix, tokens with the separator
/// before each, suffix.
#[derive(Debug, Clone)]
struct NumberFormat {
    prefix: String,
    tokens: Vec<(String, NumberToken)>,
    suffix: String,
}

fn parse_number_format(format: &str) -> Result<NumberFormat> {
    let mut tokens = Vec::new();
    let mut sep = String::new();
    let mut current = String::new();
    for c in format.chars() {
        if c.is_alphanumeric() {
            current.push(c);
        } else {
            if !current.is_empty() {
                tokens.push((std::mem::take(&mut sep), NumberToken::parse(&current)?));
                current.clear();
            }
            sep.push(c);
        }
    }
    if !current.is_empty() {
        tokens.push((std::mem::take(&mut sep), NumberToken::parse(&current)?));
    }
    if tokens.is_empty() {
        // no token: prefix is the whole string? XSLT: default token "1"
        return Ok(NumberFormat {
            prefix: String::new(),
            tokens: vec![(String::new(), NumberToken::decimal_default())],
            suffix: sep,
        });
    }
    let prefix = std::mem::take(&mut tokens[0].0);
    Ok(NumberFormat {
        prefix,
        tokens,
        suffix: sep,
    })
}

/// Checks an `xsl:number` format string (for compile-time checks).
pub fn check_number_format(format: &str) -> Result<()> {
    parse_number_format(format).map(|_| ())
}

/// Formats the numbers of `xsl:number` with a `format` string; grouping
/// from `grouping-separator`/`grouping-size` applies to decimal tokens.
/// `lang` selects word/ordinal language (`""`: English).
pub fn format_number_list(
    numbers: &[u64],
    format: &str,
    grouping: Option<(&str, usize)>,
) -> Result<String> {
    format_number_list_lang(numbers, format, grouping, "")
}

/// [`format_number_list`] with a language for words.
pub fn format_number_list_lang(
    numbers: &[u64],
    format: &str,
    grouping: Option<(&str, usize)>,
    lang: &str,
) -> Result<String> {
    let f = parse_number_format(format)?;
    let mut out = f.prefix.clone();
    let last = f.tokens.len().saturating_sub(1);
    for (i, n) in numbers.iter().enumerate() {
        let index = i.min(last);
        let Some((sep, token)) = f.tokens.get(index) else {
            break;
        };
        if i > 0 {
            if i <= last {
                out.push_str(sep);
            } else if last > 0 {
                out.push_str(&f.tokens[last].0);
            } else {
                out.push('.');
            }
        }
        let text = match (token, grouping) {
            (
                NumberToken::Decimal {
                    min_width, zero, ..
                },
                Some((gsep, size)),
            ) if size > 0 && !gsep.is_empty() => {
                let plain = NumberToken::Decimal {
                    min_width: *min_width,
                    zero: *zero,
                    grouping: Vec::new(),
                    regular: None,
                }
                .format(*n, false, lang);
                group_string(&plain, gsep, size)
            }
            _ => token.format(*n, false, lang),
        };
        out.push_str(&text);
    }
    out.push_str(&f.suffix);
    Ok(out)
}

fn group_string(digits: &str, separator: &str, size: usize) -> String {
    let chars: Vec<char> = digits.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        let remaining = chars.len() - i;
        if i > 0 && remaining.is_multiple_of(size) {
            out.push_str(separator);
        }
        out.push(*c);
    }
    out
}

// ---------------------------------------------------------------------------
// Builtins

fn fn_format_number<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    if let Some(name) = args.get(2).and_then(|s| super::opt_str(s)) {
        if !name.is_empty() {
            return Err(Error::new(
                "FODF1280",
                format!("unknown decimal format '{name}' (only the default decimal format is available here)"),
            ));
        }
    }
    let picture = args.get(1).map(super::str_or_empty).unwrap_or("");
    let value = match args.first().and_then(|s| s.first()) {
        Some(Item::Atomic(a)) => a.clone(),
        _ => Atomic::Double(f64::NAN),
    };
    let text = format_number(&value, picture, &DecimalFormat::default(), ev.xpath1())?;
    Ok(Sequence::string(&text))
}

/// Decimal text of a number for tests and hosts: parses `s` as xs:decimal
/// when possible, else as a double.
pub fn number_atomic(s: &str) -> Atomic {
    match Decimal::from_str(s) {
        Ok(d) if !s.contains(['e', 'E']) => Atomic::Decimal(d),
        _ => Atomic::Double(crate::value::parse_double(s).unwrap_or(f64::NAN)),
    }
}

/// The `fn:format-number` builtin (2 and 3 arguments, default decimal
/// format only; hosts with `xsl:decimal-format` override it).
pub const FUNCTIONS: &[Builtin] = &[Builtin {
    ns: FN,
    name: "format-number",
    min: 2,
    max: 3,
    params: &[
        Param(Kind::Numeric, Occ::Opt),
        Param(Kind::String, Occ::One),
        Param(Kind::String, Occ::Opt),
    ],
    context_default: false,
    imp: fn_format_number,
}];

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64, p: &str) -> String {
        format_number(&Atomic::Double(v), p, &DecimalFormat::default(), false).unwrap()
    }

    fn x(v: f64, p: &str) -> String {
        format_number(&Atomic::Double(v), p, &DecimalFormat::default(), true).unwrap()
    }

    #[test]
    fn xpath31_rounding_on_decimal_digits() {
        assert_eq!(f(0.125, "0.00"), "0.12");
        assert_eq!(f(2.675, "0.00"), "2.68");
        assert_eq!(f(2.5, "0"), "2");
        assert_eq!(f(3.5, "0"), "4");
        assert_eq!(f(-0.5, "0"), "-0");
        assert_eq!(f(1234.5, "#,##0.0"), "1,234.5");
        assert_eq!(f(1234.56, "#,##0.00"), "1,234.56");
        assert_eq!(f(0.1 + 0.2, "0.0################"), "0.30000000000000004");
        assert_eq!(f(1e20, "#,##0"), "100,000,000,000,000,000,000");
    }

    #[test]
    fn libxslt_compatibility() {
        // verified with xsltproc 1.1.35 (libxslt)
        assert_eq!(x(0.125, "0.00"), "0.13");
        assert_eq!(x(2.5, "0"), "3");
        assert_eq!(x(-0.5, "0"), "-1");
        assert_eq!(x(1234.5, "#,##0.0"), "1,234.5");
        assert_eq!(x(2.675, "0.00"), "2.68");
        assert_eq!(x(1.005, "0.00"), "1.00");
        assert_eq!(x(0.135, "0.00"), "0.14");
        assert_eq!(x(-1234.567, "#,##0.00"), "-1,234.57");
        assert_eq!(x(0.0, "#"), "0");
        assert_eq!(x(0.0, "#.#"), "0");
        assert_eq!(x(0.5, "#"), "1");
        assert_eq!(x(-0.0, "0"), "0");
        assert_eq!(x(f64::NAN, "0"), "NaN");
        assert_eq!(x(0.25, "#%"), "25%");
        assert_eq!(x(1_234_567.891, "#,##,###.##"), "1,234,567.89");
        assert_eq!(x(12.0, "000"), "012");
        assert_eq!(x(-3.0, "0;(0)"), "(3)");
        assert_eq!(x(0.0001, "0.00"), "0.00");
        assert_eq!(x(-0.0001, "0.00"), "-0.00");
        assert_eq!(x(1e20, "0"), "100000000000000000000");
        assert_eq!(x(0.123, "#.00"), ".12");
        assert_eq!(x(5.0, "#.##"), "5");
        assert_eq!(x(0.5, ".0"), ".5");
        assert_eq!(x(1.25, "0.0"), "1.3");
        assert_eq!(x(0.045, "0.00"), "0.05");
        assert_eq!(x(-1234.0, "#,##0;-#"), "-1,234");
        assert_eq!(x(-1234.0, "#,##0;[#]"), "[1,234]");
        assert_eq!(x(0.0015, "0.0\u{2030}"), "1.5\u{2030}");
        assert_eq!(x(12345.0, "abc0def"), "abc12345def");
        assert_eq!(x(f64::INFINITY, "0"), "Infinity");
        assert_eq!(x(f64::NEG_INFINITY, "0"), "-Infinity");
        assert_eq!(x(f64::NEG_INFINITY, "0;(0)"), "-Infinity");
        assert_eq!(x(f64::NAN, "x0"), "NaN");
        assert_eq!(x(-1_234_567.5, "#,##0.0;(#)"), "(1,234,567.5)");
        assert_eq!(f(f64::NEG_INFINITY, "0;(0)"), "(Infinity)");
    }

    #[test]
    fn pictures() {
        assert_eq!(f(1_234_567.891, "#,##,###.##"), "12,34,567.89");
        assert_eq!(f(1_234_567.0, "#,###"), "1,234,567");
        assert_eq!(f(0.25, "#%"), "25%");
        assert_eq!(f(-2.0, "0.00;(0.00)"), "(2.00)");
        assert_eq!(f(5.43216, "0.###"), "5.432");
        assert_eq!(f(0.0, "#"), "0");
        assert_eq!(f(-0.0, "0"), "-0");
        assert_eq!(f(1234.5678, "0.0e0"), "1.2e3");
        assert_eq!(f(0.000_123, "00.00e00"), "12.30e-05");
        assert_eq!(f(1234.0, "#.00e0"), ".12e4");
        assert_eq!(f(1234.5, "#,##0.0###,#"), "1,234.5");
        assert_eq!(f(0.123_456, "0.000,000"), "0.123,456");
        let de = DecimalFormat {
            decimal_separator: ',',
            grouping_separator: '.',
            ..DecimalFormat::default()
        };
        let p = Picture::parse("#.##0,00", &de).unwrap();
        assert_eq!(p.format(&Atomic::Double(1234.5)), "1.234,50");
        for bad in [
            "0.0.0", "#0;#0;#0", "abc", "0#", "#.0#0", "#,.0", "0,", "0 0", "%0%",
        ] {
            let e = Picture::parse(bad, &DecimalFormat::default()).unwrap_err();
            assert_eq!(e.code, "FODF1310", "{bad}");
        }
    }

    #[test]
    fn decimals_and_integers() {
        let df = DecimalFormat::default();
        let p = Picture::parse("#,##0.00", &df).unwrap();
        assert_eq!(p.format(&Atomic::Integer(-1_234_567)), "-1,234,567.00");
        assert_eq!(
            p.format(&number_atomic("12345678901234567890.125")),
            "12,345,678,901,234,567,890.12"
        );
        assert_eq!(p.format(&Atomic::Decimal(Decimal::new(-5, 3))), "-0.00");
    }

    #[test]
    fn format_integer_tokens() {
        let fi = |n, p| format_integer(n, p, "en").unwrap();
        assert_eq!(fi(7, "1"), "7");
        assert_eq!(fi(7, "01"), "07");
        assert_eq!(fi(7, "001"), "007");
        assert_eq!(fi(1_234_567, "#,##0"), "1,234,567");
        assert_eq!(fi(1_234_567, "#,###,##0"), "1,234,567");
        assert_eq!(fi(28, "a"), "ab");
        assert_eq!(fi(28, "A"), "AB");
        assert_eq!(fi(1999, "i"), "mcmxcix");
        assert_eq!(fi(4, "I"), "IV");
        assert_eq!(fi(21, "w"), "twenty-one");
        assert_eq!(fi(123, "W"), "ONE HUNDRED AND TWENTY-THREE");
        assert_eq!(fi(21, "Ww"), "Twenty-One");
        assert_eq!(fi(1, "1;o"), "1st");
        assert_eq!(fi(2, "1;o"), "2nd");
        assert_eq!(fi(3, "1;o"), "3rd");
        assert_eq!(fi(11, "1;o"), "11th");
        assert_eq!(fi(22, "1;o"), "22nd");
        assert_eq!(fi(22, "w;o"), "twenty-second");
        assert_eq!(fi(-5, "01"), "-05");
        assert_eq!(fi(5, "x"), "5");
        assert_eq!(
            format_integer(2024, "w", "de").unwrap(),
            "zweitausendvierundzwanzig"
        );
        assert_eq!(format_integer(21, "w;o", "de").unwrap(), "einundzwanzigste");
        assert_eq!(format_integer(3, "1;o", "de").unwrap(), "3.");
        assert_eq!(fi(12, "\u{661}\u{660}"), "\u{661}\u{662}");
        assert!(format_integer(1, "#", "en").is_err());
    }

    #[test]
    fn xsl_number_lists() {
        assert_eq!(format_number_list(&[3], "1", None).unwrap(), "3");
        assert_eq!(format_number_list(&[3], "01", None).unwrap(), "03");
        assert_eq!(format_number_list(&[28], "a", None).unwrap(), "ab");
        assert_eq!(format_number_list(&[4], "I", None).unwrap(), "IV");
        assert_eq!(
            format_number_list(&[1, 2, 3], "1.", None).unwrap(),
            "1.2.3."
        );
        assert_eq!(format_number_list(&[1, 2], "(1-a)", None).unwrap(), "(1-b)");
        assert_eq!(
            format_number_list(&[1, 2, 3], "1.a.i", None).unwrap(),
            "1.b.iii"
        );
        assert_eq!(
            format_number_list(&[1_234_567], "1", Some((",", 3))).unwrap(),
            "1,234,567"
        );
        assert_eq!(format_number_list(&[2], "w", None).unwrap(), "two");
    }
}
