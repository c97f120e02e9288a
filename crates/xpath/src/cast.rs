//! Casting between atomic types and the xs: constructor functions
//! (OWNER: datetime helper).
//!
//! Contract used by the evaluator:
//! * [`type_by_name`] — the xs: local names the engine knows (primitive
//!   and derived: `int`, `short`, `nonNegativeInteger`, `token`, `NCName`,
//!   …) → a [`CastTarget`];
//! * [`cast`] — `$v cast as T` (FORG0001 invalid lexical form, XPTY0004
//!   impossible cast);
//! * [`instance_of`] — does an atomic value belong to a named type
//!   (derivation: an xs:integer is an xs:decimal; xs:untypedAtomic is not
//!   xs:string; every value is xs:anyAtomicType)?
//!
//! # How derived types are represented
//!
//! The value model has no separate variants for derived types: a value
//! cast to `xs:short` is an [`Atomic::Integer`] whose range was checked,
//! a value cast to `xs:token` is an [`Atomic::String`] whose whitespace
//! was collapsed and whose lexical form was checked. Consequently
//! [`instance_of`] answers for derived types by checking the *value*
//! (`xs:integer(5) instance of xs:short` is true, and so is
//! `'abc' instance of xs:NCName`). Integers are `i64`, so
//! `xs:unsignedLong` values above `i64::MAX` cannot be represented
//! (FOCA0003).
//!
//! # The casting table
//!
//! Follows XPath 3.1 §19: every type casts to and from `xs:string` and
//! `xs:untypedAtomic`; numerics and booleans among each other (FOCA0002
//! for NaN/INF → integer/decimal, FOCA0003 for integers out of range);
//! dateTime → date/time/g*, date → dateTime/g*; the duration types among
//! each other; hexBinary ↔ base64Binary; anything else is XPTY0004.

use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::datetime::{decimal_from_f64, Date, DateTime, Duration, GDate, Time};
use crate::error::{Error, Result};
use crate::tree::QName;
use crate::value::{parse_double, Atomic, AtomicType};

/// A cast target: a primitive type, optionally restricted (derived
/// integer and string types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CastTarget {
    /// The primitive type the value is stored as.
    pub primitive: AtomicType,
    /// The xs: local name (for derived-type facets and error messages).
    pub name: &'static str,
}

/// Names that are known types but not cast targets (XPST0080).
const ABSTRACT: &[&str] = &["anyAtomicType", "numeric", "NOTATION"];

/// The types known by name: (local name, stored primitive).
const TYPES: &[(&str, AtomicType)] = &[
    ("string", AtomicType::String),
    ("untypedAtomic", AtomicType::Untyped),
    ("anyURI", AtomicType::AnyUri),
    ("boolean", AtomicType::Boolean),
    ("integer", AtomicType::Integer),
    ("decimal", AtomicType::Decimal),
    ("double", AtomicType::Double),
    ("float", AtomicType::Float),
    ("QName", AtomicType::QName),
    ("dateTime", AtomicType::DateTime),
    ("dateTimeStamp", AtomicType::DateTime),
    ("date", AtomicType::Date),
    ("time", AtomicType::Time),
    ("duration", AtomicType::Duration),
    ("yearMonthDuration", AtomicType::YearMonthDuration),
    ("dayTimeDuration", AtomicType::DayTimeDuration),
    ("gYear", AtomicType::GYear),
    ("gYearMonth", AtomicType::GYearMonth),
    ("gMonth", AtomicType::GMonth),
    ("gMonthDay", AtomicType::GMonthDay),
    ("gDay", AtomicType::GDay),
    ("hexBinary", AtomicType::HexBinary),
    ("base64Binary", AtomicType::Base64Binary),
    // derived integer types
    ("nonPositiveInteger", AtomicType::Integer),
    ("negativeInteger", AtomicType::Integer),
    ("long", AtomicType::Integer),
    ("int", AtomicType::Integer),
    ("short", AtomicType::Integer),
    ("byte", AtomicType::Integer),
    ("nonNegativeInteger", AtomicType::Integer),
    ("unsignedLong", AtomicType::Integer),
    ("unsignedInt", AtomicType::Integer),
    ("unsignedShort", AtomicType::Integer),
    ("unsignedByte", AtomicType::Integer),
    ("positiveInteger", AtomicType::Integer),
    // derived string types
    ("normalizedString", AtomicType::String),
    ("token", AtomicType::String),
    ("language", AtomicType::String),
    ("NMTOKEN", AtomicType::String),
    ("Name", AtomicType::String),
    ("NCName", AtomicType::String),
    ("ID", AtomicType::String),
    ("IDREF", AtomicType::String),
    ("ENTITY", AtomicType::String),
    // abstract: known, not cast targets
    ("anyAtomicType", AtomicType::String),
    ("numeric", AtomicType::Double),
    ("NOTATION", AtomicType::String),
];

/// Looks up an xs: type by local name (`anyAtomicType` and `numeric` are
/// known but not cast targets: `cast` refuses them with XPST0080).
pub fn type_by_name(local: &str) -> Option<CastTarget> {
    TYPES
        .iter()
        .find(|(n, _)| *n == local)
        .map(|(name, primitive)| CastTarget {
            primitive: *primitive,
            name,
        })
}

/// The xs: local name of a primitive type.
pub fn primitive_name(ty: AtomicType) -> &'static str {
    match ty {
        AtomicType::String => "string",
        AtomicType::Untyped => "untypedAtomic",
        AtomicType::AnyUri => "anyURI",
        AtomicType::Boolean => "boolean",
        AtomicType::Integer => "integer",
        AtomicType::Decimal => "decimal",
        AtomicType::Double => "double",
        AtomicType::Float => "float",
        AtomicType::QName => "QName",
        AtomicType::DateTime => "dateTime",
        AtomicType::Date => "date",
        AtomicType::Time => "time",
        AtomicType::Duration => "duration",
        AtomicType::YearMonthDuration => "yearMonthDuration",
        AtomicType::DayTimeDuration => "dayTimeDuration",
        AtomicType::GYear => "gYear",
        AtomicType::GYearMonth => "gYearMonth",
        AtomicType::GMonth => "gMonth",
        AtomicType::GMonthDay => "gMonthDay",
        AtomicType::GDay => "gDay",
        AtomicType::HexBinary => "hexBinary",
        AtomicType::Base64Binary => "base64Binary",
    }
}

/// Casts `value` to `target`.
pub fn cast(value: &Atomic, target: CastTarget) -> Result<Atomic> {
    if ABSTRACT.contains(&target.name) {
        return Err(Error::new(
            "XPST0080",
            format!("xs:{} is not a valid cast target", target.name),
        ));
    }
    match target.primitive {
        AtomicType::Integer if target.name != "integer" => {
            let v = cast_to(value, AtomicType::Integer)?;
            if let Atomic::Integer(i) = v {
                if !integer_in_range(i, target.name) {
                    return Err(Error::invalid_value(format!(
                        "{i} is out of the range of xs:{}",
                        target.name
                    )));
                }
            }
            Ok(v)
        }
        AtomicType::String if target.name != "string" => {
            let text = match value {
                Atomic::String(s) | Atomic::Untyped(s) | Atomic::AnyUri(s) => s.to_string(),
                other => other.to_xs_string(),
            };
            let text = whitespace(&text, target.name);
            if !string_valid(&text, target.name) {
                return Err(Error::invalid_value(format!(
                    "'{text}' is not a valid xs:{}",
                    target.name
                )));
            }
            Ok(Atomic::String(Arc::from(text.as_str())))
        }
        AtomicType::DateTime if target.name == "dateTimeStamp" => {
            let v = cast_to(value, AtomicType::DateTime)?;
            match &v {
                Atomic::DateTime(d) if d.tz.is_none() => {
                    Err(Error::invalid_value("xs:dateTimeStamp requires a timezone"))
                }
                _ => Ok(v),
            }
        }
        ty => cast_to(value, ty),
    }
}

/// The static namespaces a cast to `xs:QName` resolves prefixes with
/// (XPath 3.1 §3.14.2): captured at compile time, and only for casts whose
/// target is `xs:QName`, so no other expression pays for it.
#[derive(Debug, Clone, Default)]
pub struct CastNamespaces {
    /// Prefix → URI bindings (the `xml` prefix is always bound).
    pub bindings: Vec<(String, String)>,
    /// The namespace of an unprefixed name (the default element/type
    /// namespace).
    pub default_ns: String,
}

impl CastNamespaces {
    fn resolve(&self, prefix: &str) -> Option<&str> {
        if prefix == "xml" {
            return Some(crate::tree::XML_NS);
        }
        self.bindings
            .iter()
            .rev()
            .find(|(p, _)| p == prefix)
            .map(|(_, u)| u.as_str())
    }
}

/// Casts `value` to `target`, resolving the prefix of a string cast to
/// `xs:QName` with the static namespaces `ns` (FONS0004 when unbound).
pub fn cast_with_namespaces(
    value: &Atomic,
    target: CastTarget,
    ns: &CastNamespaces,
) -> Result<Atomic> {
    let text = match value {
        Atomic::String(s) | Atomic::Untyped(s) if target.primitive == AtomicType::QName => s,
        _ => return cast(value, target),
    };
    let t = text.trim_matches(is_xml_ws);
    if is_ncname(t) {
        return Ok(Atomic::QName(Arc::new(QName::new(&ns.default_ns, t, ""))));
    }
    match t.split_once(':') {
        Some((p, l)) if is_ncname(p) && is_ncname(l) => match ns.resolve(p) {
            Some(uri) => Ok(Atomic::QName(Arc::new(QName::new(uri, l, p)))),
            None => Err(Error::new(
                "FONS0004",
                format!("cannot cast '{t}' to xs:QName: the prefix `{p}` is not declared"),
            )),
        },
        _ => Err(invalid(text, target.primitive)),
    }
}

/// Is `i` within the value space of the derived integer type `name`?
pub fn integer_in_range(i: i64, name: &str) -> bool {
    match name {
        "nonPositiveInteger" => i <= 0,
        "negativeInteger" => i < 0,
        "int" => i32::try_from(i).is_ok(),
        "short" => i16::try_from(i).is_ok(),
        "byte" => i8::try_from(i).is_ok(),
        "nonNegativeInteger" | "unsignedLong" => i >= 0,
        "unsignedInt" => u32::try_from(i).is_ok(),
        "unsignedShort" => u16::try_from(i).is_ok(),
        "unsignedByte" => u8::try_from(i).is_ok(),
        "positiveInteger" => i > 0,
        _ => true,
    }
}

fn is_xml_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// XML Schema whitespace collapse: runs of whitespace → one space,
/// leading/trailing removed.
pub fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(is_xml_ws).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The whitespace facet of a string-derived type.
fn whitespace(s: &str, name: &str) -> String {
    match name {
        "normalizedString" => s
            .chars()
            .map(|c| if is_xml_ws(c) { ' ' } else { c })
            .collect(),
        _ => collapse(s),
    }
}

fn is_name_start(c: char) -> bool {
    c == '_'
        || c == ':'
        || c.is_ascii_alphabetic()
        || matches!(c as u32,
            0xC0..=0xD6 | 0xD8..=0xF6 | 0xF8..=0x2FF | 0x370..=0x37D | 0x37F..=0x1FFF
            | 0x200C..=0x200D | 0x2070..=0x218F | 0x2C00..=0x2FEF | 0x3001..=0xD7FF
            | 0xF900..=0xFDCF | 0xFDF0..=0xFFFD | 0x10000..=0xEFFFF)
}

fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || c == '-'
        || c == '.'
        || c.is_ascii_digit()
        || matches!(c as u32, 0xB7 | 0x300..=0x36F | 0x203F..=0x2040)
}

/// Is `s` an XML Name?
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start) && chars.all(is_name_char)
}

/// Is `s` an NCName (a Name without colons)?
pub fn is_ncname(s: &str) -> bool {
    !s.contains(':') && is_name(s)
}

fn is_language(s: &str) -> bool {
    // [a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*
    let mut parts = s.split('-');
    let first_ok = parts
        .next()
        .is_some_and(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    first_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Does (already whitespace-processed) `s` satisfy the lexical facet of
/// the string-derived type `name`?
fn string_valid(s: &str, name: &str) -> bool {
    match name {
        "normalizedString" | "token" => true,
        "language" => is_language(s),
        "NMTOKEN" => !s.is_empty() && s.chars().all(is_name_char),
        "Name" => is_name(s),
        "NCName" | "ID" | "IDREF" | "ENTITY" => is_ncname(s),
        _ => true,
    }
}

fn impossible(value: &Atomic, ty: AtomicType) -> Error {
    Error::type_error(format!(
        "cannot cast xs:{} to xs:{}",
        primitive_name(value.type_of()),
        primitive_name(ty)
    ))
}

fn invalid(s: &str, ty: AtomicType) -> Error {
    Error::invalid_value(format!(
        "'{s}' is not a valid lexical form of xs:{}",
        primitive_name(ty)
    ))
}

/// Casts to a primitive type.
pub fn cast_to(value: &Atomic, ty: AtomicType) -> Result<Atomic> {
    if value.type_of() == ty {
        return Ok(value.clone());
    }
    match ty {
        AtomicType::String => return Ok(Atomic::String(Arc::from(value.to_xs_string().as_str()))),
        AtomicType::Untyped => {
            return Ok(Atomic::Untyped(Arc::from(value.to_xs_string().as_str())))
        }
        _ => {}
    }
    match value {
        Atomic::String(s) | Atomic::Untyped(s) => from_string(s, ty),
        Atomic::AnyUri(_) => Err(impossible(value, ty)),
        Atomic::Boolean(b) => match ty {
            AtomicType::Integer => Ok(Atomic::Integer(i64::from(*b))),
            AtomicType::Decimal => Ok(Atomic::Decimal(Decimal::from(u8::from(*b)))),
            AtomicType::Double => Ok(Atomic::Double(if *b { 1.0 } else { 0.0 })),
            AtomicType::Float => Ok(Atomic::Float(if *b { 1.0 } else { 0.0 })),
            _ => Err(impossible(value, ty)),
        },
        Atomic::Integer(_) | Atomic::Decimal(_) | Atomic::Double(_) | Atomic::Float(_) => {
            from_numeric(value, ty)
        }
        Atomic::DateTime(d) => match ty {
            AtomicType::Date => Ok(Atomic::Date(d.date())),
            AtomicType::Time => Ok(Atomic::Time(d.time())),
            AtomicType::GYear
            | AtomicType::GYearMonth
            | AtomicType::GMonth
            | AtomicType::GMonthDay
            | AtomicType::GDay => Ok(Atomic::G(GDate::from_date(&d.date(), ty), ty)),
            _ => Err(impossible(value, ty)),
        },
        Atomic::Date(d) => match ty {
            AtomicType::DateTime => Ok(Atomic::DateTime(d.to_datetime())),
            AtomicType::GYear
            | AtomicType::GYearMonth
            | AtomicType::GMonth
            | AtomicType::GMonthDay
            | AtomicType::GDay => Ok(Atomic::G(GDate::from_date(d, ty), ty)),
            _ => Err(impossible(value, ty)),
        },
        Atomic::Duration(d, _) => match ty {
            AtomicType::Duration => Ok(Atomic::Duration(d.clone(), ty)),
            AtomicType::YearMonthDuration => Ok(Atomic::Duration(
                Duration {
                    months: d.months,
                    seconds: Decimal::ZERO,
                },
                ty,
            )),
            AtomicType::DayTimeDuration => Ok(Atomic::Duration(
                Duration {
                    months: 0,
                    seconds: d.seconds,
                },
                ty,
            )),
            _ => Err(impossible(value, ty)),
        },
        Atomic::HexBinary(b) if ty == AtomicType::Base64Binary => {
            Ok(Atomic::Base64Binary(b.clone()))
        }
        Atomic::Base64Binary(b) if ty == AtomicType::HexBinary => Ok(Atomic::HexBinary(b.clone())),
        Atomic::QName(_) | Atomic::Time(_) | Atomic::G(..) => Err(impossible(value, ty)),
        Atomic::HexBinary(_) | Atomic::Base64Binary(_) => Err(impossible(value, ty)),
    }
}

/// Numeric → numeric/boolean.
fn from_numeric(value: &Atomic, ty: AtomicType) -> Result<Atomic> {
    match ty {
        AtomicType::Boolean => Ok(Atomic::Boolean(match value {
            Atomic::Integer(i) => *i != 0,
            Atomic::Decimal(d) => !d.is_zero(),
            other => {
                let f = other.to_number();
                !(f == 0.0 || f.is_nan())
            }
        })),
        AtomicType::Double => Ok(Atomic::Double(value.to_number())),
        AtomicType::Float => Ok(Atomic::Float(value.to_number() as f32)),
        AtomicType::Decimal => match value {
            Atomic::Integer(i) => Ok(Atomic::Decimal(Decimal::from(*i))),
            other => {
                let f = other.to_number();
                if !f.is_finite() {
                    return Err(Error::new(
                        "FOCA0002",
                        format!("cannot cast {} to xs:decimal", other.to_xs_string()),
                    ));
                }
                let d = match other {
                    // shortest representation of the float, not of its f64 widening
                    Atomic::Float(x) => Decimal::from_str(&format!("{x}")).ok(),
                    _ => decimal_from_f64(f),
                };
                d.map(Atomic::Decimal).ok_or_else(|| {
                    Error::new(
                        "FOCA0001",
                        format!("{} is too large for xs:decimal", other.to_xs_string()),
                    )
                })
            }
        },
        AtomicType::Integer => {
            match value {
                Atomic::Decimal(d) => d.trunc().to_i64().map(Atomic::Integer).ok_or_else(|| {
                    Error::new("FOCA0003", format!("{d} is too large for xs:integer"))
                }),
                other => {
                    let f = other.to_number();
                    if !f.is_finite() {
                        return Err(Error::new(
                            "FOCA0002",
                            format!("cannot cast {} to xs:integer", other.to_xs_string()),
                        ));
                    }
                    let t = f.trunc();
                    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&t) {
                        return Err(Error::new(
                            "FOCA0003",
                            format!("{} is too large for xs:integer", other.to_xs_string()),
                        ));
                    }
                    Ok(Atomic::Integer(t as i64))
                }
            }
        }
        _ => Err(impossible(value, ty)),
    }
}

/// Parses an xs:integer lexical form (`[+-]?digits`, whitespace trimmed).
pub fn parse_integer(s: &str) -> Result<i64> {
    let t = s.trim_matches(is_xml_ws);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(s, AtomicType::Integer));
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    i64::from_str(t).map_err(|_| Error::new("FOCA0003", format!("{s} is too large for xs:integer")))
}

/// Parses an xs:decimal lexical form (no exponent).
pub fn parse_decimal(s: &str) -> Result<Decimal> {
    let t = s.trim_matches(is_xml_ws);
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid(s, AtomicType::Decimal));
    }
    let negative = t.starts_with('-');
    let int = int.trim_start_matches('0');
    let text = format!(
        "{}{}{}{}",
        if negative { "-" } else { "" },
        if int.is_empty() { "0" } else { int },
        if frac.is_empty() { "" } else { "." },
        frac
    );
    Decimal::from_str(&text)
        .or_else(|_| Decimal::from_str_exact(&text))
        .map_err(|_| Error::new("FOCA0001", format!("{s} is out of the range of xs:decimal")))
}

fn from_string(s: &str, ty: AtomicType) -> Result<Atomic> {
    let t = s.trim_matches(is_xml_ws);
    match ty {
        AtomicType::AnyUri => Ok(Atomic::AnyUri(Arc::from(collapse(s).as_str()))),
        AtomicType::Boolean => match t {
            "true" | "1" => Ok(Atomic::Boolean(true)),
            "false" | "0" => Ok(Atomic::Boolean(false)),
            _ => Err(invalid(s, ty)),
        },
        AtomicType::Integer => parse_integer(s).map(Atomic::Integer),
        AtomicType::Decimal => parse_decimal(s).map(Atomic::Decimal),
        AtomicType::Double => parse_double(t)
            .map(Atomic::Double)
            .ok_or_else(|| invalid(s, ty)),
        AtomicType::Float => parse_double(t)
            .map(|f| Atomic::Float(f as f32))
            .ok_or_else(|| invalid(s, ty)),
        AtomicType::DateTime => DateTime::parse(s).map(Atomic::DateTime),
        AtomicType::Date => Date::parse(s).map(Atomic::Date),
        AtomicType::Time => Time::parse(s).map(Atomic::Time),
        AtomicType::Duration | AtomicType::YearMonthDuration | AtomicType::DayTimeDuration => {
            Duration::parse(s, ty).map(|d| Atomic::Duration(d, ty))
        }
        AtomicType::GYear
        | AtomicType::GYearMonth
        | AtomicType::GMonth
        | AtomicType::GMonthDay
        | AtomicType::GDay => GDate::parse(s, ty).map(|g| Atomic::G(g, ty)),
        AtomicType::HexBinary => hex_decode(t)
            .map(|b| Atomic::HexBinary(Arc::from(b)))
            .ok_or_else(|| invalid(s, ty)),
        AtomicType::Base64Binary => base64_decode(t)
            .map(|b| Atomic::Base64Binary(Arc::from(b)))
            .ok_or_else(|| invalid(s, ty)),
        AtomicType::QName => {
            if is_ncname(t) {
                Ok(Atomic::QName(Arc::new(QName::local(t))))
            } else if t
                .split_once(':')
                .is_some_and(|(p, l)| is_ncname(p) && is_ncname(l))
            {
                Err(Error::new(
                    "FONS0004",
                    format!(
                        "cannot cast '{t}' to xs:QName: the prefix cannot be resolved without the static namespaces (use fn:QName or resolve-QName)"
                    ),
                ))
            } else {
                Err(invalid(s, ty))
            }
        }
        AtomicType::String | AtomicType::Untyped => Ok(Atomic::string(s)),
    }
}

/// Decodes hexadecimal text (even length, case-insensitive).
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    b.chunks(2)
        .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
        .collect()
}

/// Decodes base64 text (whitespace ignored, padding required to a
/// multiple of four characters).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let chars: Vec<u8> = s.bytes().filter(|b| !b" \t\r\n".contains(b)).collect();
    if !chars.len().is_multiple_of(4) {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let mut out = Vec::with_capacity(chars.len() / 4 * 3);
    let n = chars.len() / 4;
    for (i, q) in chars.chunks(4).enumerate() {
        let pad = q.iter().rev().take_while(|c| **c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != n) {
            return None;
        }
        let mut acc = 0u32;
        for (j, c) in q.iter().enumerate() {
            let v = if j >= 4 - pad { 0 } else { val(*c)? };
            acc = (acc << 6) | v;
        }
        out.push((acc >> 16) as u8);
        if pad < 2 {
            out.push((acc >> 8) as u8);
        }
        if pad < 1 {
            out.push(acc as u8);
        }
    }
    Some(out)
}

/// Is `value` an instance of the xs: type `local` (by derivation)?
pub fn instance_of(value: &Atomic, local: &str) -> bool {
    let ty = value.type_of();
    match local {
        "anyAtomicType" => true,
        "numeric" => value.is_numeric(),
        "decimal" => matches!(ty, AtomicType::Decimal | AtomicType::Integer),
        "duration" => matches!(
            ty,
            AtomicType::Duration | AtomicType::YearMonthDuration | AtomicType::DayTimeDuration
        ),
        "dateTimeStamp" => matches!(value, Atomic::DateTime(d) if d.tz.is_some()),
        "NOTATION" => false,
        _ => match type_by_name(local) {
            Some(t) if t.name == primitive_name(t.primitive) => t.primitive == ty,
            Some(t) => match (value, t.primitive) {
                (Atomic::Integer(i), AtomicType::Integer) => integer_in_range(*i, t.name),
                (Atomic::String(s), AtomicType::String) => {
                    whitespace(s, t.name) == **s && string_valid(s, t.name)
                }
                _ => false,
            },
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(v: Atomic, name: &str) -> Result<Atomic> {
        cast(&v, type_by_name(name).unwrap())
    }

    fn s(v: &str, name: &str) -> Result<String> {
        c(Atomic::string(v), name).map(|a| a.to_xs_string())
    }

    #[test]
    fn lookup() {
        assert_eq!(type_by_name("int").unwrap().primitive, AtomicType::Integer);
        assert_eq!(
            type_by_name("NCName").unwrap().primitive,
            AtomicType::String
        );
        assert!(type_by_name("nonsense").is_none());
        assert_eq!(
            c(Atomic::Integer(1), "anyAtomicType").unwrap_err().code,
            "XPST0080"
        );
        assert_eq!(
            c(Atomic::Integer(1), "NOTATION").unwrap_err().code,
            "XPST0080"
        );
    }

    #[test]
    fn strings_to_numbers() {
        assert_eq!(s(" +12 ", "integer").unwrap(), "12");
        assert_eq!(s("1e3", "integer").unwrap_err().code, "FORG0001");
        assert_eq!(s("1.50", "decimal").unwrap(), "1.5");
        assert_eq!(s(".5", "decimal").unwrap(), "0.5");
        assert_eq!(s("1e3", "decimal").unwrap_err().code, "FORG0001");
        assert_eq!(s("1e3", "double").unwrap(), "1000");
        assert_eq!(s("-INF", "double").unwrap(), "-INF");
        assert_eq!(s("abc", "double").unwrap_err().code, "FORG0001");
        assert_eq!(
            s("99999999999999999999", "integer").unwrap_err().code,
            "FOCA0003"
        );
        assert_eq!(s("1", "boolean").unwrap(), "true");
        assert_eq!(s("yes", "boolean").unwrap_err().code, "FORG0001");
    }

    #[test]
    fn numerics() {
        assert_eq!(
            c(Atomic::Double(f64::NAN), "integer").unwrap_err().code,
            "FOCA0002"
        );
        assert_eq!(
            c(Atomic::Double(f64::INFINITY), "decimal")
                .unwrap_err()
                .code,
            "FOCA0002"
        );
        assert_eq!(
            c(Atomic::Double(-3.9), "integer").unwrap().to_xs_string(),
            "-3"
        );
        assert_eq!(
            c(Atomic::Double(0.1), "decimal").unwrap().to_xs_string(),
            "0.1"
        );
        assert_eq!(
            c(Atomic::Float(0.1), "decimal").unwrap().to_xs_string(),
            "0.1"
        );
        assert_eq!(
            c(Atomic::Integer(0), "boolean").unwrap().to_xs_string(),
            "false"
        );
        assert_eq!(
            c(Atomic::Double(f64::NAN), "boolean")
                .unwrap()
                .to_xs_string(),
            "false"
        );
        assert_eq!(
            c(Atomic::Boolean(true), "double").unwrap().to_xs_string(),
            "1"
        );
        assert_eq!(
            c(Atomic::Double(1e300), "integer").unwrap_err().code,
            "FOCA0003"
        );
    }

    #[test]
    fn derived_types() {
        assert_eq!(
            c(Atomic::Integer(300), "byte").unwrap_err().code,
            "FORG0001"
        );
        assert_eq!(
            c(Atomic::Integer(-1), "unsignedInt").unwrap_err().code,
            "FORG0001"
        );
        assert_eq!(s("0", "positiveInteger").unwrap_err().code, "FORG0001");
        assert_eq!(s("65535", "unsignedShort").unwrap(), "65535");
        assert_eq!(s("  a   b ", "token").unwrap(), "a b");
        assert_eq!(s("a\tb", "normalizedString").unwrap(), "a b");
        assert_eq!(s("de-DE", "language").unwrap(), "de-DE");
        assert_eq!(s("a:b", "NCName").unwrap_err().code, "FORG0001");
        assert_eq!(s("a:b", "Name").unwrap(), "a:b");
        assert_eq!(s("1abc", "NCName").unwrap_err().code, "FORG0001");
        assert_eq!(s("1abc", "NMTOKEN").unwrap(), "1abc");
        assert!(instance_of(&Atomic::Integer(5), "short"));
        assert!(!instance_of(&Atomic::Integer(-5), "nonNegativeInteger"));
        assert!(instance_of(&Atomic::Integer(5), "decimal"));
        assert!(!instance_of(&Atomic::Decimal(Decimal::ONE), "integer"));
        assert!(!instance_of(&Atomic::untyped("a"), "string"));
        assert!(instance_of(&Atomic::untyped("a"), "anyAtomicType"));
        assert!(instance_of(&Atomic::Double(1.0), "numeric"));
        assert!(!instance_of(&Atomic::string("a b"), "NCName"));
    }

    #[test]
    fn dates_and_durations() {
        let dt = s("2024-02-29T13:05:00Z", "dateTime").unwrap();
        assert_eq!(dt, "2024-02-29T13:05:00Z");
        let v = c(Atomic::string("2024-02-29T13:05:00Z"), "dateTime").unwrap();
        assert_eq!(c(v.clone(), "date").unwrap().to_xs_string(), "2024-02-29Z");
        assert_eq!(c(v.clone(), "time").unwrap().to_xs_string(), "13:05:00Z");
        assert_eq!(
            c(v.clone(), "gYearMonth").unwrap().to_xs_string(),
            "2024-02Z"
        );
        assert_eq!(c(v.clone(), "gDay").unwrap().to_xs_string(), "---29Z");
        let d = c(v, "date").unwrap();
        assert_eq!(
            c(d, "dateTime").unwrap().to_xs_string(),
            "2024-02-29T00:00:00Z"
        );
        let t = c(Atomic::string("10:00:00"), "time").unwrap();
        assert_eq!(c(t, "date").unwrap_err().code, "XPTY0004");
        let du = c(Atomic::string("P1Y2M3DT4H"), "duration").unwrap();
        assert_eq!(
            c(du.clone(), "yearMonthDuration").unwrap().to_xs_string(),
            "P1Y2M"
        );
        assert_eq!(c(du, "dayTimeDuration").unwrap().to_xs_string(), "P3DT4H");
        assert_eq!(s("2024-02-30", "date").unwrap_err().code, "FORG0001");
        assert_eq!(
            s("2024-01-01T10:00:00", "dateTimeStamp").unwrap_err().code,
            "FORG0001"
        );
    }

    #[test]
    fn binary_qname_uri() {
        let h = c(Atomic::string("0fA0"), "hexBinary").unwrap();
        assert_eq!(h.to_xs_string(), "0FA0");
        let b = c(h, "base64Binary").unwrap();
        assert_eq!(b.to_xs_string(), "D6A=");
        assert_eq!(c(b, "hexBinary").unwrap().to_xs_string(), "0FA0");
        assert_eq!(s("abc", "hexBinary").unwrap_err().code, "FORG0001");
        assert_eq!(s("SGVsbG8=", "base64Binary").unwrap(), "SGVsbG8=");
        assert_eq!(s("SGVsbG8", "base64Binary").unwrap_err().code, "FORG0001");
        assert_eq!(s("local", "QName").unwrap(), "local");
        assert_eq!(s("p:local", "QName").unwrap_err().code, "FONS0004");
        assert_eq!(s(" http://x/ y ", "anyURI").unwrap(), "http://x/ y");
        assert_eq!(
            c(Atomic::Integer(1), "anyURI").unwrap_err().code,
            "XPTY0004"
        );
        assert_eq!(c(Atomic::Integer(1), "string").unwrap().to_xs_string(), "1");
        let u = c(Atomic::Boolean(true), "untypedAtomic").unwrap();
        assert!(matches!(u, Atomic::Untyped(_)));
    }
}
