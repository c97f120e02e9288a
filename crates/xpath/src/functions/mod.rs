//! The built-in function library.
//!
//! Each module exports a table `FUNCTIONS: &[Builtin]`; [`table`] joins
//! them once. A [`Builtin`] declares its name, arity range, parameter
//! types and whether a missing last argument defaults to the context item;
//! the evaluator applies the function conversion rules (atomization,
//! `xs:untypedAtomic` casts, numeric promotion — or, in XPath 1.0
//! backwards-compatible mode, the first-item rule with `string()` /
//! `number()` / `boolean()` conversions) **before** calling `imp`, so an
//! implementation can rely on its arguments having the declared shape:
//!
//! | `Kind`      | what `imp` receives per item                       |
//! |-------------|----------------------------------------------------|
//! | `Item`      | anything, unchanged                                |
//! | `Atomic`    | atomized values                                    |
//! | `String`    | `Atomic::String` (untyped/anyURI cast to string)   |
//! | `Double`    | `Atomic::Double`                                   |
//! | `Numeric`   | `Integer`/`Decimal`/`Double`/`Float`               |
//! | `Integer`   | `Atomic::Integer`                                  |
//! | `Boolean`   | `Atomic::Boolean`                                  |
//! | `Node`      | `Item::Node`                                       |
//! | `Function`  | `Item::Function`/`Item::Map`/`Item::Array`         |
//! | `Map`       | `Item::Map`                                        |
//! | `Array`     | `Item::Array`                                      |
//!
//! and the occurrence (`One`, `Opt`, `Many`) has been checked (XPTY0004).

use std::sync::OnceLock;

use crate::error::Result;
use crate::eval::Eval;
use crate::value::{Atomic, Item, Sequence};

pub mod datetime_fns;
pub mod format_number;
pub mod hof;
pub mod node;
pub mod numeric;
pub mod seq;
pub mod string;

/// `http://www.w3.org/2005/xpath-functions`
pub const FN: &str = "http://www.w3.org/2005/xpath-functions";
/// `http://www.w3.org/2005/xpath-functions/math`
pub const MATH: &str = "http://www.w3.org/2005/xpath-functions/math";
/// `http://www.w3.org/2005/xpath-functions/map`
pub const MAP: &str = "http://www.w3.org/2005/xpath-functions/map";
/// `http://www.w3.org/2005/xpath-functions/array`
pub const ARRAY: &str = "http://www.w3.org/2005/xpath-functions/array";
/// `http://www.w3.org/2001/XMLSchema`
pub const XS: &str = "http://www.w3.org/2001/XMLSchema";

/// Expected item kind of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `item()`
    Item,
    /// `xs:anyAtomicType`
    Atomic,
    /// `xs:string`
    String,
    /// `xs:double`
    Double,
    /// `xs:numeric`
    Numeric,
    /// `xs:integer`
    Integer,
    /// `xs:boolean`
    Boolean,
    /// `node()`
    Node,
    /// `function(*)`
    Function,
    /// `map(*)`
    Map,
    /// `array(*)`
    Array,
}

/// Occurrence of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occ {
    /// exactly one
    One,
    /// zero or one
    Opt,
    /// any number
    Many,
}

/// A parameter declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param(pub Kind, pub Occ);

/// Parameter declarations shared by the function modules, named
/// `KIND_OCCURRENCE`.
pub(crate) mod params {
    use super::{Kind, Occ, Param};

    pub(crate) const ITEM_OPT: Param = Param(Kind::Item, Occ::Opt);
    pub(crate) const ITEM_MANY: Param = Param(Kind::Item, Occ::Many);
    pub(crate) const ATOMIC_ONE: Param = Param(Kind::Atomic, Occ::One);
    pub(crate) const ATOMIC_OPT: Param = Param(Kind::Atomic, Occ::Opt);
    pub(crate) const ATOMIC_MANY: Param = Param(Kind::Atomic, Occ::Many);
    pub(crate) const STR_ONE: Param = Param(Kind::String, Occ::One);
    pub(crate) const STR_OPT: Param = Param(Kind::String, Occ::Opt);
    pub(crate) const STR_MANY: Param = Param(Kind::String, Occ::Many);
    pub(crate) const NODE_ONE: Param = Param(Kind::Node, Occ::One);
    pub(crate) const NODE_OPT: Param = Param(Kind::Node, Occ::Opt);
    pub(crate) const NODE_MANY: Param = Param(Kind::Node, Occ::Many);
    pub(crate) const INT_ONE: Param = Param(Kind::Integer, Occ::One);
    pub(crate) const INT_MANY: Param = Param(Kind::Integer, Occ::Many);
    pub(crate) const DOUBLE_ONE: Param = Param(Kind::Double, Occ::One);
    pub(crate) const DOUBLE_OPT: Param = Param(Kind::Double, Occ::Opt);
    pub(crate) const NUMERIC_ONE: Param = Param(Kind::Numeric, Occ::One);
    pub(crate) const NUMERIC_OPT: Param = Param(Kind::Numeric, Occ::Opt);
    pub(crate) const FUNC_ONE: Param = Param(Kind::Function, Occ::One);
    pub(crate) const MAP_ONE: Param = Param(Kind::Map, Occ::One);
    pub(crate) const MAP_MANY: Param = Param(Kind::Map, Occ::Many);
    pub(crate) const ARRAY_ONE: Param = Param(Kind::Array, Occ::One);
    pub(crate) const ARRAY_MANY: Param = Param(Kind::Array, Occ::Many);
}

/// A builtin in the `fn:` namespace.
pub(crate) const fn def(
    name: &'static str,
    min: usize,
    max: usize,
    params: &'static [Param],
    context_default: bool,
    imp: Impl,
) -> Builtin {
    Builtin {
        ns: FN,
        name,
        min,
        max,
        params,
        context_default,
        imp,
    }
}

/// Implementation of a builtin: converted arguments in, result out.
pub type Impl = for<'a> fn(&mut Eval<'a, '_>, Vec<Sequence<'a>>) -> Result<Sequence<'a>>;

/// A built-in function.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// Namespace URI (one of [`FN`], [`MATH`], [`MAP`], [`ARRAY`]).
    pub ns: &'static str,
    /// Local name.
    pub name: &'static str,
    /// Fewest arguments.
    pub min: usize,
    /// Most arguments (`usize::MAX`: variadic, the last param repeats).
    pub max: usize,
    /// Parameter types; a variadic function's last entry repeats.
    pub params: &'static [Param],
    /// Called with `min - 1` arguments, the context item is appended
    /// (`string()`, `name()`, `normalize-space()`, …). `min` counts that
    /// argument, i.e. `string#0` is declared `min: 1, context_default:
    /// true` and is also callable with 0 args.
    pub context_default: bool,
    /// The implementation.
    pub imp: Impl,
}

impl Builtin {
    /// The declared type of argument `i`.
    pub fn param(&self, i: usize) -> Param {
        self.params
            .get(i)
            .or(self.params.last())
            .copied()
            .unwrap_or(Param(Kind::Item, Occ::Many))
    }

    /// Accepts `arity` arguments (counting the context default)?
    pub fn accepts(&self, arity: usize) -> bool {
        (arity >= self.min && arity <= self.max) || (self.context_default && arity + 1 == self.min)
    }
}

/// All builtins, in one table; a builtin's index is its id.
pub fn table() -> &'static [Builtin] {
    static TABLE: OnceLock<Vec<Builtin>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut v = Vec::new();
        for part in [
            string::FUNCTIONS,
            numeric::FUNCTIONS,
            seq::FUNCTIONS,
            node::FUNCTIONS,
            datetime_fns::FUNCTIONS,
            hof::FUNCTIONS,
        ] {
            v.extend_from_slice(part);
        }
        v
    })
}

/// Finds a builtin by namespace, local name and arity: its id.
pub fn lookup(ns: &str, local: &str, arity: usize) -> Option<u32> {
    table()
        .iter()
        .position(|b| b.ns == ns && b.name == local && b.accepts(arity))
        .map(|i| i as u32)
}

/// Is there a builtin with this name (any arity)?
pub fn exists(ns: &str, local: &str) -> bool {
    table().iter().any(|b| b.ns == ns && b.name == local)
}

// ---------------------------------------------------------------------------
// Argument helpers for implementations (arguments are already converted).

/// The single optional string argument (`None` for `()`).
pub fn opt_str<'s>(s: &'s Sequence<'_>) -> Option<&'s str> {
    match s.first() {
        Some(Item::Atomic(a)) => a.as_str(),
        _ => None,
    }
}

/// The string argument, `""` for `()`.
pub fn str_or_empty<'s>(s: &'s Sequence<'_>) -> &'s str {
    opt_str(s).unwrap_or("")
}

/// The single atomic argument.
pub fn opt_atomic<'s>(s: &'s Sequence<'_>) -> Option<&'s Atomic> {
    match s.first() {
        Some(Item::Atomic(a)) => Some(a),
        _ => None,
    }
}

/// The double argument (`NaN` for `()`).
pub fn double(s: &Sequence<'_>) -> f64 {
    opt_atomic(s).map(Atomic::to_number).unwrap_or(f64::NAN)
}

/// The integer argument.
pub fn integer(s: &Sequence<'_>) -> Option<i64> {
    match opt_atomic(s) {
        Some(Atomic::Integer(i)) => Some(*i),
        _ => None,
    }
}

/// The boolean argument (`false` for `()`).
pub fn boolean(s: &Sequence<'_>) -> bool {
    matches!(opt_atomic(s), Some(Atomic::Boolean(true)))
}
