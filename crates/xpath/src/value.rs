//! Values of the XDM: atomic values, items and sequences.
//!
//! `Atomic` is `Send + Sync` (strings are `Arc<str>`) so constants can live
//! in compiled expressions shared between threads. Items and sequences
//! borrow nodes from the documents of one evaluation (`'a`) and share
//! their bulk with `Rc`: cloning a sequence is O(1).

use std::rc::Rc;
use std::sync::Arc;

use indexmap::IndexMap;
use rust_decimal::Decimal;

use crate::datetime::{Date, DateTime, Duration, GDate, Time};
use crate::error::{Error, Result};
use crate::tree::{Node, QName};

/// The primitive (and the few derived) atomic types the engine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AtomicType {
    /// xs:string
    String,
    /// xs:untypedAtomic
    Untyped,
    /// xs:anyURI
    AnyUri,
    /// xs:boolean
    Boolean,
    /// xs:integer (and its derived types, by range)
    Integer,
    /// xs:decimal
    Decimal,
    /// xs:double
    Double,
    /// xs:float
    Float,
    /// xs:QName
    QName,
    /// xs:dateTime
    DateTime,
    /// xs:date
    Date,
    /// xs:time
    Time,
    /// xs:duration
    Duration,
    /// xs:yearMonthDuration
    YearMonthDuration,
    /// xs:dayTimeDuration
    DayTimeDuration,
    /// xs:gYear etc.
    GYear,
    /// xs:gYearMonth
    GYearMonth,
    /// xs:gMonth
    GMonth,
    /// xs:gMonthDay
    GMonthDay,
    /// xs:gDay
    GDay,
    /// xs:hexBinary
    HexBinary,
    /// xs:base64Binary
    Base64Binary,
}

/// An atomic value.
#[derive(Debug, Clone)]
pub enum Atomic {
    /// xs:string (and derived string types)
    String(Arc<str>),
    /// xs:untypedAtomic
    Untyped(Arc<str>),
    /// xs:anyURI
    AnyUri(Arc<str>),
    /// xs:boolean
    Boolean(bool),
    /// xs:integer (i64 range; overflow is an error FOAR0002)
    Integer(i64),
    /// xs:decimal
    Decimal(Decimal),
    /// xs:double
    Double(f64),
    /// xs:float
    Float(f32),
    /// xs:QName
    QName(Arc<QName>),
    /// xs:dateTime
    DateTime(DateTime),
    /// xs:date
    Date(Date),
    /// xs:time
    Time(Time),
    /// xs:duration / yearMonthDuration / dayTimeDuration (the type is
    /// carried by the second field)
    Duration(Duration, AtomicType),
    /// xs:gYear, gYearMonth, gMonth, gMonthDay, gDay
    G(GDate, AtomicType),
    /// xs:hexBinary
    HexBinary(Arc<[u8]>),
    /// xs:base64Binary
    Base64Binary(Arc<[u8]>),
}

impl Atomic {
    /// A string value.
    pub fn string(s: &str) -> Atomic {
        Atomic::String(Arc::from(s))
    }

    /// An untyped atomic value.
    pub fn untyped(s: &str) -> Atomic {
        Atomic::Untyped(Arc::from(s))
    }

    /// The type of the value.
    pub fn type_of(&self) -> AtomicType {
        match self {
            Atomic::String(_) => AtomicType::String,
            Atomic::Untyped(_) => AtomicType::Untyped,
            Atomic::AnyUri(_) => AtomicType::AnyUri,
            Atomic::Boolean(_) => AtomicType::Boolean,
            Atomic::Integer(_) => AtomicType::Integer,
            Atomic::Decimal(_) => AtomicType::Decimal,
            Atomic::Double(_) => AtomicType::Double,
            Atomic::Float(_) => AtomicType::Float,
            Atomic::QName(_) => AtomicType::QName,
            Atomic::DateTime(_) => AtomicType::DateTime,
            Atomic::Date(_) => AtomicType::Date,
            Atomic::Time(_) => AtomicType::Time,
            Atomic::Duration(_, t) | Atomic::G(_, t) => *t,
            Atomic::HexBinary(_) => AtomicType::HexBinary,
            Atomic::Base64Binary(_) => AtomicType::Base64Binary,
        }
    }

    /// Is it numeric (integer, decimal, double, float)?
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            Atomic::Integer(_) | Atomic::Decimal(_) | Atomic::Double(_) | Atomic::Float(_)
        )
    }

    /// Is it string-like (string, untypedAtomic, anyURI)?
    pub fn is_stringlike(&self) -> bool {
        matches!(
            self,
            Atomic::String(_) | Atomic::Untyped(_) | Atomic::AnyUri(_)
        )
    }

    /// The text of a string-like value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atomic::String(s) | Atomic::Untyped(s) | Atomic::AnyUri(s) => Some(s),
            _ => None,
        }
    }

    /// The canonical lexical form (`xs:string` cast), XPath 3.1 rules.
    pub fn to_xs_string(&self) -> String {
        match self {
            Atomic::String(s) | Atomic::Untyped(s) | Atomic::AnyUri(s) => s.to_string(),
            Atomic::Boolean(b) => if *b { "true" } else { "false" }.to_string(),
            Atomic::Integer(i) => i.to_string(),
            Atomic::Decimal(d) => decimal_to_string(d),
            Atomic::Double(d) => double_to_string(*d),
            Atomic::Float(f) => float_to_string(*f),
            Atomic::QName(q) => q.lexical(),
            Atomic::DateTime(v) => v.to_string(),
            Atomic::Date(v) => v.to_string(),
            Atomic::Time(v) => v.to_string(),
            Atomic::Duration(v, t) => v.to_lexical(*t),
            Atomic::G(v, t) => v.to_lexical(*t),
            Atomic::HexBinary(b) => b.iter().map(|x| format!("{x:02X}")).collect(),
            Atomic::Base64Binary(b) => base64_encode(b),
        }
    }

    /// The string form with XPath 1.0 number formatting (no exponent,
    /// integers without `.0`): used in backwards-compatible mode.
    pub fn to_xpath1_string(&self) -> String {
        match self {
            Atomic::Double(d) => xpath1_number_to_string(*d),
            Atomic::Float(f) => xpath1_number_to_string(f64::from(*f)),
            Atomic::Decimal(d) => decimal_to_string(d),
            _ => self.to_xs_string(),
        }
    }

    /// The numeric value as f64 (`NaN` if not convertible), XPath 1.0
    /// `number()` semantics for strings.
    pub fn to_number(&self) -> f64 {
        match self {
            Atomic::Integer(i) => *i as f64,
            Atomic::Decimal(d) => decimal_to_f64(d),
            Atomic::Double(d) => *d,
            Atomic::Float(f) => f64::from(*f),
            Atomic::Boolean(b) => {
                if *b {
                    1.0
                } else {
                    0.0
                }
            }
            Atomic::String(s) | Atomic::Untyped(s) | Atomic::AnyUri(s) => {
                parse_double(s).unwrap_or(f64::NAN)
            }
            _ => f64::NAN,
        }
    }
}

/// Decimal to f64.
pub fn decimal_to_f64(d: &Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64().unwrap_or(f64::NAN)
}

/// Parses the lexical form of xs:double (`INF`, `-INF`, `NaN`, decimal and
/// exponent forms, surrounding whitespace allowed).
pub fn parse_double(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    match t {
        "INF" | "+INF" => return Some(f64::INFINITY),
        "-INF" => return Some(f64::NEG_INFINITY),
        "NaN" => return Some(f64::NAN),
        _ => {}
    }
    let b = t.as_bytes();
    if b.is_empty() {
        return None;
    }
    // only [+-]digits[.digits][(e|E)[+-]digits]
    let mut i = 0;
    if b[i] == b'+' || b[i] == b'-' {
        i += 1;
    }
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    t.parse::<f64>().ok()
}

/// XPath 1.0 `number()` of a string: like [`parse_double`] but without
/// exponents or `INF` (XPath 1.0 Number production).
pub fn xpath1_parse_number(s: &str) -> f64 {
    let t = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && b[i] == b'-' {
        i += 1;
    }
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 || i != b.len() {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// Canonical xs:decimal form: no exponent, no trailing zeros after the
/// point, integers without a point.
pub fn decimal_to_string(d: &Decimal) -> String {
    let n = d.normalize();
    let s = n.to_string();
    if s == "-0" {
        "0".to_string()
    } else {
        s
    }
}

/// xs:double → xs:string per XPath 3.1 (F&O §19.1.2.2): integers in
/// [1e-6, 1e6) without exponent, others `1.0E7` style.
pub fn double_to_string(d: f64) -> String {
    canonical_float(d, || format!("{d}"), || format!("{d:e}"))
}

/// xs:float → xs:string (same rules, float precision: the shortest digits
/// of the f32 itself).
pub fn float_to_string(f: f32) -> String {
    canonical_float(f64::from(f), || format!("{f}"), || format!("{f:e}"))
}

/// The shared rules of [`double_to_string`] and [`float_to_string`];
/// `plain` and `scientific` render the value at its own precision.
fn canonical_float(
    v: f64,
    plain: impl FnOnce() -> String,
    scientific: impl FnOnce() -> String,
) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "INF" } else { "-INF" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    if (1e-6..1e6).contains(&v.abs()) {
        // shortest round-trip representation, without exponent
        let s = plain();
        return match s.strip_suffix(".0") {
            Some(stripped) => stripped.to_string(),
            None => s,
        };
    }
    exponent_form(&scientific())
}

/// Rust `1.5e7` → XPath `1.5E7`; `1e7` → `1.0E7`.
fn exponent_form(rust: &str) -> String {
    let (mantissa, exp) = rust.split_once('e').unwrap_or((rust, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exp}")
}

/// XPath 1.0 number → string: integers without a point, others in plain
/// decimal notation (no exponent), `NaN`, `Infinity`, `-Infinity`.
pub fn xpath1_number_to_string(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if d == 0.0 {
        return "0".into();
    }
    if d.fract() == 0.0 && d.abs() < 1e15 {
        return format!("{}", d as i64);
    }
    // shortest round-trip digits, expanded without exponent
    let s = format!("{d:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    // value = 0.d1d2d3… × 10^(exp+1)
    let point = exp + 1;
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if point <= 0 {
        out.push_str("0.");
        for _ in 0..(-point) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let p = point as usize;
        if digits.len() <= p {
            out.push_str(&digits);
            for _ in digits.len()..p {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..p]);
            out.push('.');
            out.push_str(&digits[p..]);
        }
    }
    out
}

fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// A key of an XPath map: atomic values compared with `op:same-key`
/// (numerics by value across types, strings/untyped/anyURI by codepoints,
/// NaN equal to NaN).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MapKey {
    /// string, untypedAtomic, anyURI
    Str(Arc<str>),
    /// numeric, normalised: integral values as i64 when they fit
    Int(i64),
    /// other numerics: the bits of the f64 (NaN canonical)
    Num(u64),
    /// decimals that are not integral (normalised text)
    Dec(String),
    /// boolean
    Bool(bool),
    /// everything else by type and canonical lexical form
    Other(AtomicType, String),
}

impl MapKey {
    /// The key for an atomic value.
    pub fn of(a: &Atomic) -> MapKey {
        match a {
            Atomic::String(s) | Atomic::Untyped(s) | Atomic::AnyUri(s) => MapKey::Str(s.clone()),
            Atomic::Boolean(b) => MapKey::Bool(*b),
            Atomic::Integer(i) => MapKey::Int(*i),
            Atomic::Decimal(d) => {
                if d.fract().is_zero() {
                    use rust_decimal::prelude::ToPrimitive;
                    if let Some(i) = d.to_i64() {
                        return MapKey::Int(i);
                    }
                }
                MapKey::Dec(decimal_to_string(d))
            }
            Atomic::Double(_) | Atomic::Float(_) => {
                let f = a.to_number();
                if f.is_nan() {
                    MapKey::Num(u64::MAX)
                } else if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    MapKey::Int(f as i64)
                } else {
                    MapKey::Num(f.to_bits())
                }
            }
            other => MapKey::Other(other.type_of(), other.to_xs_string()),
        }
    }
}

/// An XPath map (insertion-ordered for deterministic output).
#[derive(Debug, Clone, Default)]
pub struct Map<'a> {
    /// Entries by key: the original key value and the mapped sequence.
    pub entries: IndexMap<MapKey, (Atomic, Sequence<'a>)>,
}

/// An XPath array.
#[derive(Debug, Clone, Default)]
pub struct Array<'a> {
    /// The members.
    pub members: Vec<Sequence<'a>>,
}

/// A function item.
#[derive(Debug, Clone)]
pub enum Function<'a> {
    /// A built-in function (`fn:concat#3`): index into the builtin table.
    Builtin {
        /// Builtin table index.
        id: u32,
        /// Arity.
        arity: usize,
    },
    /// A host (e.g. XSLT `xsl:function`) function.
    Host {
        /// Host function id.
        id: u32,
        /// Arity.
        arity: usize,
        /// Name, for diagnostics.
        name: Arc<QName>,
    },
    /// An inline function with its captured variables.
    Inline {
        /// The compiled function.
        def: &'a crate::compile::InlineFn,
        /// Captured values, in the order of `def.captures`.
        captured: Vec<Sequence<'a>>,
    },
    /// A partial application: `args` has `None` for each placeholder.
    Partial {
        /// The function applied.
        target: Rc<Function<'a>>,
        /// Fixed arguments.
        args: Vec<Option<Sequence<'a>>>,
    },
    /// A map used as a function.
    Map(Rc<Map<'a>>),
    /// An array used as a function.
    Array(Rc<Array<'a>>),
}

impl Function<'_> {
    /// The arity.
    pub fn arity(&self) -> usize {
        match self {
            Function::Builtin { arity, .. } | Function::Host { arity, .. } => *arity,
            Function::Inline { def, .. } => def.arity,
            Function::Partial { args, .. } => args.iter().filter(|a| a.is_none()).count(),
            Function::Map(_) | Function::Array(_) => 1,
        }
    }
}

/// An item.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    /// A node.
    Node(Node<'a>),
    /// An atomic value.
    Atomic(Atomic),
    /// A function item (maps and arrays are separate variants).
    Function(Rc<Function<'a>>),
    /// A map.
    Map(Rc<Map<'a>>),
    /// An array.
    Array(Rc<Array<'a>>),
}

impl<'a> Item<'a> {
    /// The node, if this is one.
    pub fn as_node(&self) -> Option<Node<'a>> {
        match self {
            Item::Node(n) => Some(*n),
            _ => None,
        }
    }

    /// The string value (`fn:string`): nodes' string value, atomics'
    /// canonical form; error FOTY0014 for function items.
    pub fn string_value(&self) -> Result<String> {
        match self {
            Item::Node(n) => Ok(n.string_value().to_string()),
            Item::Atomic(a) => Ok(a.to_xs_string()),
            _ => Err(Error::new(
                "FOTY0014",
                "the string value of a function item is not defined",
            )),
        }
    }
}

impl From<Atomic> for Item<'_> {
    fn from(a: Atomic) -> Self {
        Item::Atomic(a)
    }
}

impl<'a> From<Node<'a>> for Item<'a> {
    fn from(n: Node<'a>) -> Self {
        Item::Node(n)
    }
}

/// A sequence: empty, one item, or many items behind an `Rc` (O(1) clone).
#[derive(Debug, Clone, Default)]
pub enum Sequence<'a> {
    /// `()`
    #[default]
    Empty,
    /// One item.
    One(Item<'a>),
    /// Two or more items.
    Many(Rc<Vec<Item<'a>>>),
}

impl<'a> Sequence<'a> {
    /// From a vector (0, 1 or many items).
    pub fn from_vec(mut items: Vec<Item<'a>>) -> Sequence<'a> {
        match items.len() {
            0 => Sequence::Empty,
            1 => match items.pop() {
                Some(i) => Sequence::One(i),
                None => Sequence::Empty,
            },
            _ => Sequence::Many(Rc::new(items)),
        }
    }

    /// From nodes.
    pub fn from_nodes(nodes: Vec<Node<'a>>) -> Sequence<'a> {
        Sequence::from_vec(nodes.into_iter().map(Item::Node).collect())
    }

    /// A single atomic value.
    pub fn atomic(a: Atomic) -> Sequence<'a> {
        Sequence::One(Item::Atomic(a))
    }

    /// A single string.
    pub fn string(s: &str) -> Sequence<'a> {
        Sequence::One(Item::Atomic(Atomic::string(s)))
    }

    /// A single boolean.
    pub fn boolean(b: bool) -> Sequence<'a> {
        Sequence::One(Item::Atomic(Atomic::Boolean(b)))
    }

    /// A single integer.
    pub fn integer(i: i64) -> Sequence<'a> {
        Sequence::One(Item::Atomic(Atomic::Integer(i)))
    }

    /// A single double.
    pub fn double(d: f64) -> Sequence<'a> {
        Sequence::One(Item::Atomic(Atomic::Double(d)))
    }

    /// The items as a slice.
    pub fn items(&self) -> &[Item<'a>] {
        match self {
            Sequence::Empty => &[],
            Sequence::One(i) => std::slice::from_ref(i),
            Sequence::Many(v) => v.as_slice(),
        }
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items().len()
    }

    /// Is it `()`?
    pub fn is_empty(&self) -> bool {
        matches!(self, Sequence::Empty)
    }

    /// The first item.
    pub fn first(&self) -> Option<&Item<'a>> {
        self.items().first()
    }

    /// Into a vector of items.
    pub fn into_vec(self) -> Vec<Item<'a>> {
        match self {
            Sequence::Empty => Vec::new(),
            Sequence::One(i) => vec![i],
            Sequence::Many(v) => Rc::try_unwrap(v).unwrap_or_else(|v| (*v).clone()),
        }
    }

    /// Iterates over the items.
    pub fn iter(&self) -> std::slice::Iter<'_, Item<'a>> {
        self.items().iter()
    }

    /// All items are nodes: the nodes; otherwise `None`.
    pub fn nodes(&self) -> Option<Vec<Node<'a>>> {
        self.items().iter().map(Item::as_node).collect()
    }
}

impl<'a> FromIterator<Item<'a>> for Sequence<'a> {
    fn from_iter<I: IntoIterator<Item = Item<'a>>>(iter: I) -> Self {
        Sequence::from_vec(iter.into_iter().collect())
    }
}

/// Arithmetic operators on atomic values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `div`
    Div,
    /// `idiv`
    IDiv,
    /// `mod`
    Mod,
}
