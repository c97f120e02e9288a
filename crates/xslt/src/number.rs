//! Number formatting: the `format` of `xsl:number`, and the picture
//! strings of `format-number()`.
//!
//! `format-number()` is a host function of the XPath engine: the picture
//! is parsed once per run and picture text ([`Picture::parse`]) and
//! applied with round-half-to-even ([`Picture::format`]).

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::ir::DecimalFormat;

// ---------------------------------------------------------------------------
// xsl:number

/// A format token of `xsl:number`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Decimal digits, zero-padded to this width.
    Decimal(usize),
    LowerAlpha,
    UpperAlpha,
    LowerRoman,
    UpperRoman,
}

/// A parsed `format` attribute: prefix, (token, separator before it)*,
/// suffix.
#[derive(Debug, Clone)]
struct NumberFormat {
    prefix: String,
    tokens: Vec<(String, Token)>,
    suffix: String,
}

fn is_alnum(c: char) -> bool {
    c.is_alphanumeric()
}

fn parse_token(t: &str) -> Result<Token, String> {
    match t {
        "a" => return Ok(Token::LowerAlpha),
        "A" => return Ok(Token::UpperAlpha),
        "i" => return Ok(Token::LowerRoman),
        "I" => return Ok(Token::UpperRoman),
        _ => {}
    }
    let mut chars = t.chars().peekable();
    let mut width = 0;
    while chars.peek() == Some(&'0') {
        chars.next();
        width += 1;
    }
    match (chars.next(), chars.next()) {
        (Some('1'), None) => Ok(Token::Decimal(width + 1)),
        _ => Err(format!(
            "unsupported xsl:number format token '{t}' (supported: 1, 01, a, A, i, I)"
        )),
    }
}

fn parse_number_format(format: &str) -> Result<NumberFormat, String> {
    let mut prefix = String::new();
    let mut tokens = Vec::new();
    let mut sep = String::new();
    let mut current = String::new();
    let mut in_token = false;
    for c in format.chars() {
        if is_alnum(c) {
            current.push(c);
            in_token = true;
        } else {
            if in_token {
                tokens.push((std::mem::take(&mut sep), parse_token(&current)?));
                current.clear();
                in_token = false;
            }
            sep.push(c);
        }
    }
    if in_token {
        tokens.push((std::mem::take(&mut sep), parse_token(&current)?));
    }
    // the separator text before the first token is the prefix
    if let Some(first) = tokens.first_mut() {
        prefix = std::mem::take(&mut first.0);
    }
    let suffix = if tokens.is_empty() {
        prefix = String::new();
        sep.clone()
    } else {
        sep
    };
    if tokens.is_empty() {
        tokens.push((String::new(), Token::Decimal(1)));
    }
    Ok(NumberFormat {
        prefix,
        tokens,
        suffix,
    })
}

/// Checks a literal `xsl:number` format at compile time.
pub(crate) fn check_number_format(format: &str) -> Result<(), String> {
    parse_number_format(format).map(|_| ())
}

fn alpha(mut n: u64, upper: bool) -> String {
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

fn roman(n: u64, upper: bool) -> String {
    if n == 0 || n >= 5000 {
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

fn group(digits: &str, separator: &str, size: usize) -> String {
    if size == 0 || separator.is_empty() {
        return digits.to_string();
    }
    let chars: Vec<char> = digits.chars().collect();
    let mut out = String::new();
    for (i, c) in chars.iter().enumerate() {
        let remaining = chars.len() - i;
        if i > 0 && remaining % size == 0 {
            out.push_str(separator);
        }
        out.push(*c);
    }
    out
}

/// Formats the numbers of `xsl:number` with a `format` string.
pub(crate) fn format_number_list(
    numbers: &[u64],
    format: &str,
    grouping: Option<(&str, usize)>,
) -> Result<String, String> {
    let f = parse_number_format(format)?;
    let mut out = f.prefix.clone();
    for (i, n) in numbers.iter().enumerate() {
        let index = i.min(f.tokens.len() - 1);
        let (sep, token) = &f.tokens[index];
        if i > 0 {
            if i < f.tokens.len() {
                out.push_str(sep);
            } else if f.tokens.len() > 1 {
                out.push_str(&f.tokens[f.tokens.len() - 1].0);
            } else {
                out.push('.');
            }
        }
        let text = match token {
            Token::Decimal(width) => {
                let digits = format!("{n:0width$}", width = *width);
                match grouping {
                    Some((sep, size)) => group(&digits, sep, size),
                    None => digits,
                }
            }
            Token::LowerAlpha => alpha(*n, false),
            Token::UpperAlpha => alpha(*n, true),
            Token::LowerRoman => roman(*n, false),
            Token::UpperRoman => roman(*n, true),
        };
        out.push_str(&text);
    }
    out.push_str(&f.suffix);
    Ok(out)
}

// ---------------------------------------------------------------------------
// format-number()

/// One sub-picture of a `format-number()` picture.
#[derive(Debug, Clone, PartialEq)]
struct SubPicture {
    prefix: String,
    suffix: String,
}

/// A parsed `format-number()` picture string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Picture {
    positive: SubPicture,
    negative: SubPicture,
    min_int: usize,
    min_frac: usize,
    max_frac: usize,
    /// Positions of grouping separators in the integer part, counted from
    /// the decimal separator.
    grouping: Vec<usize>,
    /// The grouping positions repeat with this interval.
    regular: Option<usize>,
    multiplier: u32,
    format: DecimalFormat,
}

impl Picture {
    /// Parses a picture string with a decimal format.
    pub(crate) fn parse(picture: &str, df: &DecimalFormat) -> Result<Picture, String> {
        let subs: Vec<&str> = picture.split(df.pattern_separator).collect();
        if subs.len() > 2 {
            return Err(format!(
                "format-number(): picture '{picture}' has more than two sub-pictures (FODF1310)"
            ));
        }
        let is_digit =
            |c: char| c == df.digit || (c as u32).wrapping_sub(df.zero_digit as u32) < 10;
        let is_active =
            |c: char| is_digit(c) || c == df.decimal_separator || c == df.grouping_separator;
        let split = |sub: &str| -> Result<(String, String, String), String> {
            let chars: Vec<char> = sub.chars().collect();
            let first = chars.iter().position(|c| is_active(*c));
            let last = chars.iter().rposition(|c| is_active(*c));
            match (first, last) {
                (Some(a), Some(b)) => Ok((
                    chars[..a].iter().collect(),
                    chars[a..=b].iter().collect(),
                    chars[b + 1..].iter().collect(),
                )),
                _ => Err(format!(
                    "format-number(): picture '{picture}' has no digit or zero-digit (FODF1310)"
                )),
            }
        };
        let (prefix, mantissa, suffix) = split(subs[0])?;
        let passive = format!("{prefix}{suffix}");
        let multiplier = if passive.contains(df.percent) {
            100
        } else if passive.contains(df.per_mille) {
            1000
        } else {
            1
        };
        if mantissa
            .chars()
            .filter(|c| *c == df.decimal_separator)
            .count()
            > 1
        {
            return Err(format!(
                "format-number(): picture '{picture}' has more than one decimal separator (FODF1310)"
            ));
        }
        let (int_part, frac_part) = match mantissa.split_once(df.decimal_separator) {
            Some((i, f)) => (i.to_string(), Some(f.to_string())),
            None => (mantissa.clone(), None),
        };
        for c in mantissa.chars() {
            if !is_active(c) {
                return Err(format!(
                    "format-number(): unsupported character '{c}' inside the number part of picture '{picture}' (exponents and passive characters between digits are not supported)"
                ));
            }
        }
        let mut min_int = int_part
            .chars()
            .filter(|c| is_digit(*c) && *c != df.digit)
            .count();
        let frac = frac_part.unwrap_or_default();
        let min_frac = frac
            .chars()
            .filter(|c| is_digit(*c) && *c != df.digit)
            .count();
        let max_frac = frac.chars().filter(|c| is_digit(*c)).count();
        if min_int == 0 && max_frac == 0 {
            min_int = 1;
        }
        // grouping positions, counted from the right of the integer part
        let mut grouping = Vec::new();
        let mut digits_seen = 0;
        for c in int_part.chars().rev() {
            if c == df.grouping_separator {
                grouping.push(digits_seen);
            } else if is_digit(c) {
                digits_seen += 1;
            }
        }
        grouping.retain(|p| *p > 0);
        let regular = match grouping.first() {
            Some(&g) if grouping.iter().enumerate().all(|(i, p)| *p == g * (i + 1)) => Some(g),
            _ => None,
        };
        let positive = SubPicture {
            prefix: prefix.clone(),
            suffix: suffix.clone(),
        };
        let negative = match subs.get(1) {
            Some(neg) => {
                let (p, _, s) = split(neg)?;
                SubPicture {
                    prefix: p,
                    suffix: s,
                }
            }
            None => SubPicture {
                prefix: format!("{}{prefix}", df.minus_sign),
                suffix,
            },
        };
        Ok(Picture {
            positive,
            negative,
            min_int,
            min_frac,
            max_frac,
            grouping,
            regular,
            multiplier,
            format: df.clone(),
        })
    }

    /// Formats a number.
    pub(crate) fn format(&self, value: Num) -> String {
        let (negative, digits) = match value {
            Num::Double(d) if d.is_nan() => return self.format.nan.clone(),
            Num::Double(d) => {
                let negative = d < 0.0 || (d == 0.0 && d.is_sign_negative());
                let a = d.abs() * f64::from(self.multiplier);
                if a.is_infinite() {
                    return self.wrap(negative, &self.format.infinity);
                }
                let text = if a >= 1e18 {
                    format!("{:.0}", a.round())
                } else {
                    match Decimal::try_from(a) {
                        Ok(dec) => round_decimal(dec, self.max_frac),
                        Err(_) => format!("{a}"),
                    }
                };
                (negative, text)
            }
            Num::Decimal(d) => {
                let negative = d.is_sign_negative() && !d.is_zero();
                let a = d.abs() * Decimal::from(self.multiplier);
                (negative, round_decimal(a, self.max_frac))
            }
        };
        let (ip, fp) = match digits.split_once('.') {
            Some((i, f)) => (i.to_string(), f.to_string()),
            None => (digits.clone(), String::new()),
        };
        let mut fp = fp;
        while fp.chars().count() < self.min_frac {
            fp.push('0');
        }
        let mut ip = if ip == "0" && self.min_int == 0 {
            String::new()
        } else {
            ip
        };
        while ip.chars().count() < self.min_int {
            ip.insert(0, '0');
        }
        let chars: Vec<char> = ip.chars().collect();
        let mut grouped = String::new();
        for (i, c) in chars.iter().enumerate() {
            let from_right = chars.len() - i;
            let at = i > 0
                && match self.regular {
                    Some(g) => from_right % g == 0,
                    None => self.grouping.contains(&from_right),
                };
            if at {
                grouped.push(self.format.grouping_separator);
            }
            grouped.push(*c);
        }
        let map = |s: &str| -> String {
            s.chars()
                .map(|c| match c.to_digit(10) {
                    Some(d) => char::from_u32(self.format.zero_digit as u32 + d).unwrap_or(c),
                    None => c,
                })
                .collect()
        };
        let mut body = map(&grouped);
        if !fp.is_empty() {
            body.push(self.format.decimal_separator);
            body.push_str(&map(&fp));
        }
        self.wrap(negative, &body)
    }

    fn wrap(&self, negative: bool, body: &str) -> String {
        let sub = if negative {
            &self.negative
        } else {
            &self.positive
        };
        format!("{}{body}{}", sub.prefix, sub.suffix)
    }
}

/// A number to format.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    Double(f64),
    Decimal(Decimal),
}

fn round_decimal(d: Decimal, max_frac: usize) -> String {
    let dp = u32::try_from(max_frac).unwrap_or(u32::MAX).min(28);
    let r = d.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven);
    let r = r.normalize();
    let text = r.to_string();
    if text == "-0" {
        "0".to_string()
    } else if r.to_f64().is_some() {
        text
    } else {
        "0".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
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
            format_number_list(&[1234567], "1", Some((",", 3))).unwrap(),
            "1,234,567"
        );
        assert!(check_number_format("one").is_err());
    }

    #[test]
    fn pictures_format_in_rust() {
        let df = DecimalFormat::default();
        let p = Picture::parse("#,##0.00", &df).unwrap();
        assert_eq!(p.format(Num::Double(1234.5)), "1,234.50");
        assert_eq!(p.format(Num::Double(-0.5)), "-0.50");
        let p = Picture::parse("0.###", &df).unwrap();
        assert_eq!(p.format(Num::Double(5.43216)), "5.432");
        let p = Picture::parse("#%", &df).unwrap();
        assert_eq!(p.format(Num::Double(0.25)), "25%");
        let p = Picture::parse("#", &df).unwrap();
        assert_eq!(p.format(Num::Double(f64::NAN)), "NaN");
        assert_eq!(p.format(Num::Double(0.0)), "0");
        let p = Picture::parse("0.00;(0.00)", &df).unwrap();
        assert_eq!(p.format(Num::Double(-2.0)), "(2.00)");
        assert!(Picture::parse("0.0.0", &df).is_err());
    }
}
