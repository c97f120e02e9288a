//! Sequence built-in functions (OWNER: functions helper).
//!
//! `empty`, `exists`, `head`, `tail`, `insert-before`, `remove`,
//! `reverse`, `subsequence`, `unordered`, `distinct-values`, `index-of`,
//! `deep-equal`, `zero-or-one`, `one-or-more`, `exactly-one`, `count`,
//! `data`, `sort` — and [`atomize`], the atomization the evaluator uses
//! everywhere a value is needed.
//!
//! Atomization turns a document, element, attribute or text node into an
//! xs:untypedAtomic of its string value (there is no schema, so nothing is
//! typed), a comment, processing instruction or namespace node into an
//! xs:string, flattens arrays, and refuses maps and functions (FOTY0013).
//!
//! Everything here is linear in the input, with two deliberate
//! exceptions that stay bounded: `distinct-values` hashes all values
//! except date/time/duration ones (whose equality depends on timezone
//! normalisation) which it compares pairwise among themselves, and
//! `sort` is `O(n log n)`. Tree walks (`deep-equal` on nodes, array
//! flattening) use explicit stacks instead of recursion.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::rc::Rc;

use rust_decimal::Decimal;

use super::def;
use super::numeric::check_collation;
use super::params::*;
use super::Builtin;
use crate::compare::{atomic_equal, is_nan, value_compare};
use crate::error::{Error, Result};
use crate::eval::Eval;
use crate::tree::{Node, NodeKind};
use crate::value::{decimal_to_f64, Atomic, Function, Item, MapKey, Sequence};

/// The functions of this module.
pub const FUNCTIONS: &[Builtin] = &[
    def("empty", 1, 1, &[ITEM_MANY], false, empty),
    def("exists", 1, 1, &[ITEM_MANY], false, exists),
    def("head", 1, 1, &[ITEM_MANY], false, head),
    def("tail", 1, 1, &[ITEM_MANY], false, tail),
    def(
        "insert-before",
        3,
        3,
        &[ITEM_MANY, INT_ONE, ITEM_MANY],
        false,
        insert_before,
    ),
    def("remove", 2, 2, &[ITEM_MANY, INT_ONE], false, remove),
    def("reverse", 1, 1, &[ITEM_MANY], false, reverse),
    def(
        "subsequence",
        2,
        3,
        &[ITEM_MANY, DOUBLE_ONE, DOUBLE_ONE],
        false,
        subsequence,
    ),
    def("unordered", 1, 1, &[ITEM_MANY], false, unordered),
    def(
        "distinct-values",
        1,
        2,
        &[ATOMIC_MANY, STR_ONE],
        false,
        distinct_values,
    ),
    def(
        "index-of",
        2,
        3,
        &[ATOMIC_MANY, ATOMIC_ONE, STR_ONE],
        false,
        index_of,
    ),
    def(
        "deep-equal",
        2,
        3,
        &[ITEM_MANY, ITEM_MANY, STR_ONE],
        false,
        deep_equal,
    ),
    def("zero-or-one", 1, 1, &[ITEM_MANY], false, zero_or_one),
    def("one-or-more", 1, 1, &[ITEM_MANY], false, one_or_more),
    def("exactly-one", 1, 1, &[ITEM_MANY], false, exactly_one),
    def("count", 1, 1, &[ITEM_MANY], false, count),
    def("data", 1, 1, &[ITEM_MANY], true, data),
    def("sort", 1, 3, &[ITEM_MANY, STR_OPT, FUNC_ONE], false, sort),
];

/// Atomizes a sequence (XPath 3.1 §2.4.2): nodes give their typed value
/// (untypedAtomic, or xs:string for comments, PIs and namespace nodes),
/// arrays are flattened, maps and functions are FOTY0013.
pub fn atomize<'a>(seq: &Sequence<'a>) -> Result<Vec<Atomic>> {
    let mut out = Vec::with_capacity(seq.len());
    for item in seq.iter() {
        atomize_item(item, &mut out)?;
    }
    Ok(out)
}

/// The typed value of a node.
pub fn node_value(n: Node<'_>) -> Atomic {
    match n.kind() {
        NodeKind::Comment | NodeKind::ProcessingInstruction | NodeKind::Namespace => {
            Atomic::string(n.string_value())
        }
        _ => Atomic::untyped(n.string_value()),
    }
}

fn atomize_item(item: &Item<'_>, out: &mut Vec<Atomic>) -> Result<()> {
    match item {
        Item::Atomic(a) => out.push(a.clone()),
        Item::Node(n) => out.push(node_value(*n)),
        Item::Array(arr) => {
            // explicit stack: nested arrays are flattened without recursion
            let mut stack: Vec<(Rc<crate::value::Array<'_>>, usize, usize)> =
                vec![(arr.clone(), 0, 0)];
            while let Some((a, m, i)) = stack.pop() {
                let Some(member) = a.members.get(m) else {
                    continue;
                };
                let Some(it) = member.items().get(i) else {
                    stack.push((a, m + 1, 0));
                    continue;
                };
                let it = it.clone();
                stack.push((a, m, i + 1));
                match it {
                    Item::Array(inner) => stack.push((inner, 0, 0)),
                    Item::Atomic(x) => out.push(x),
                    Item::Node(n) => out.push(node_value(n)),
                    Item::Map(_) | Item::Function(_) => return Err(no_atomize()),
                }
            }
        }
        Item::Map(_) | Item::Function(_) => return Err(no_atomize()),
    }
    Ok(())
}

fn no_atomize() -> Error {
    Error::new("FOTY0013", "a map or function item cannot be atomized")
}

fn empty<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::boolean(args[0].is_empty()))
}

fn exists<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::boolean(!args[0].is_empty()))
}

fn head<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(args[0]
        .first()
        .cloned()
        .map(Sequence::One)
        .unwrap_or_default())
}

fn tail<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::from_vec(
        args[0].items().iter().skip(1).cloned().collect(),
    ))
}

fn insert_before<'a>(_: &mut Eval<'a, '_>, mut args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let inserts = args.pop().unwrap_or_default();
    let pos = super::integer(&args[1]).unwrap_or(1);
    let target = args[0].items();
    let at = usize::try_from(pos.saturating_sub(1))
        .unwrap_or(0)
        .min(target.len());
    let mut out = Vec::with_capacity(target.len() + inserts.len());
    out.extend_from_slice(&target[..at]);
    out.extend(inserts.iter().cloned());
    out.extend_from_slice(&target[at..]);
    Ok(Sequence::from_vec(out))
}

fn remove<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let pos = super::integer(&args[1]).unwrap_or(0);
    let items = args[0].items();
    if pos < 1 || pos as u64 > items.len() as u64 {
        return Ok(args[0].clone());
    }
    let at = (pos - 1) as usize;
    Ok(items
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != at)
        .map(|(_, it)| it.clone())
        .collect())
}

fn reverse<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(args[0].items().iter().rev().cloned().collect())
}

fn xround(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let f = x.floor();
    if x - f >= 0.5 {
        f + 1.0
    } else {
        f
    }
}

fn subsequence<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let start = xround(super::double(&args[1]));
    let end = match args.get(2) {
        Some(len) => start + xround(super::double(len)),
        None => f64::INFINITY,
    };
    let items = args[0].items();
    if start.is_nan() || end.is_nan() {
        return Ok(Sequence::Empty);
    }
    // positions p (1-based) with start <= p < end, computed without a scan
    let first = if start <= 1.0 {
        0
    } else {
        (start - 1.0).min(items.len() as f64) as usize
    };
    let last = if end <= 1.0 {
        0
    } else {
        (end - 1.0).min(items.len() as f64) as usize
    };
    if first >= last {
        return Ok(Sequence::Empty);
    }
    Ok(Sequence::from_vec(items[first..last].to_vec()))
}

fn unordered<'a>(_: &mut Eval<'a, '_>, mut args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(args.pop().unwrap_or_default())
}

fn is_temporal(a: &Atomic) -> bool {
    matches!(
        a,
        Atomic::DateTime(_)
            | Atomic::Date(_)
            | Atomic::Time(_)
            | Atomic::Duration(..)
            | Atomic::G(..)
    )
}

/// A hash key with `eq` semantics for non-temporal values (numbers across
/// types by value, strings and untyped by codepoints, NaN equal to NaN).
fn distinct_key(a: &Atomic) -> MapKey {
    if let Atomic::Decimal(d) = a {
        if !d.fract().is_zero() {
            // a decimal equal to a double must hash like that double
            let f = decimal_to_f64(d);
            if format!("{f}").parse::<Decimal>().ok() == Some(d.normalize()) {
                return MapKey::Num(f.to_bits());
            }
        }
    }
    MapKey::of(a)
}

fn distinct_values<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    check_collation(&args, 1)?;
    let tz = ev.env.implicit_timezone;
    let mut seen: HashSet<MapKey> = HashSet::new();
    let mut temporal: Vec<Atomic> = Vec::new();
    let mut out = Vec::new();
    for item in args[0].iter() {
        let Item::Atomic(a) = item else { continue };
        if is_temporal(a) {
            if temporal.iter().any(|t| atomic_equal(t, a, true, tz)) {
                continue;
            }
            temporal.push(a.clone());
        } else if !seen.insert(distinct_key(a)) {
            continue;
        }
        out.push(item.clone());
    }
    Ok(Sequence::from_vec(out))
}

fn index_of<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    check_collation(&args, 2)?;
    let tz = ev.env.implicit_timezone;
    let Some(Item::Atomic(search)) = args[1].first() else {
        return Ok(Sequence::Empty);
    };
    Ok(args[0]
        .iter()
        .enumerate()
        .filter(|(_, it)| matches!(it, Item::Atomic(a) if atomic_equal(a, search, false, tz)))
        .map(|(i, _)| Item::Atomic(Atomic::Integer(i as i64 + 1)))
        .collect())
}

fn deep_equal<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    check_collation(&args, 2)?;
    let tz = ev.env.implicit_timezone;
    Ok(Sequence::boolean(sequences_deep_equal(
        &args[0], &args[1], tz,
    )?))
}

/// `fn:deep-equal` on two sequences.
pub fn sequences_deep_equal(a: &Sequence<'_>, b: &Sequence<'_>, tz: i16) -> Result<bool> {
    if a.len() != b.len() {
        return Ok(false);
    }
    for (x, y) in a.iter().zip(b.iter()) {
        if !items_deep_equal(x, y, tz)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn items_deep_equal(a: &Item<'_>, b: &Item<'_>, tz: i16) -> Result<bool> {
    match (a, b) {
        (Item::Atomic(x), Item::Atomic(y)) => Ok(atomic_equal(x, y, true, tz)),
        (Item::Node(x), Item::Node(y)) => Ok(nodes_deep_equal(*x, *y)),
        (Item::Array(x), Item::Array(y)) => {
            if x.members.len() != y.members.len() {
                return Ok(false);
            }
            for (m, n) in x.members.iter().zip(y.members.iter()) {
                if !stacker::maybe_grow(64 * 1024, 1024 * 1024, || sequences_deep_equal(m, n, tz))?
                {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        (Item::Map(x), Item::Map(y)) => {
            if x.entries.len() != y.entries.len() {
                return Ok(false);
            }
            for (k, (_, v)) in &x.entries {
                let Some((_, w)) = y.entries.get(k) else {
                    return Ok(false);
                };
                if !stacker::maybe_grow(64 * 1024, 1024 * 1024, || sequences_deep_equal(v, w, tz))?
                {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        (Item::Function(_), _) | (_, Item::Function(_)) => Err(Error::new(
            "FOTY0015",
            "deep-equal is not defined for function items",
        )),
        _ => Ok(false),
    }
}

/// Children that take part in a deep comparison (no comments or PIs).
fn significant_children<'a>(n: Node<'a>) -> Vec<Node<'a>> {
    n.children()
        .filter(|c| {
            !matches!(
                c.kind(),
                NodeKind::Comment | NodeKind::ProcessingInstruction
            )
        })
        .collect()
}

fn same_name(a: Node<'_>, b: Node<'_>) -> bool {
    match (a.name(), b.name()) {
        (Some(x), Some(y)) => x.uri == y.uri && x.local == y.local,
        (None, None) => true,
        _ => false,
    }
}

/// Deep equality of two nodes: kinds, names, attributes as sets, children
/// (ignoring comments and processing instructions) and text. Iterative.
pub fn nodes_deep_equal(a: Node<'_>, b: Node<'_>) -> bool {
    let mut stack = vec![(a, b)];
    while let Some((x, y)) = stack.pop() {
        if x.kind() != y.kind() {
            return false;
        }
        match x.kind() {
            NodeKind::Document | NodeKind::Element => {
                if x.kind() == NodeKind::Element {
                    if !same_name(x, y) {
                        return false;
                    }
                    let xa: Vec<_> = x.attributes().collect();
                    if xa.len() != y.attributes().count() {
                        return false;
                    }
                    for attr in xa {
                        let Some(name) = attr.name() else {
                            return false;
                        };
                        if y.attribute(&name.uri, &name.local) != Some(attr.string_value()) {
                            return false;
                        }
                    }
                }
                let xc = significant_children(x);
                let yc = significant_children(y);
                if xc.len() != yc.len() {
                    return false;
                }
                stack.extend(xc.into_iter().zip(yc));
            }
            NodeKind::Attribute | NodeKind::ProcessingInstruction | NodeKind::Namespace => {
                if !same_name(x, y) || x.string_value() != y.string_value() {
                    return false;
                }
            }
            NodeKind::Text | NodeKind::Comment => {
                if x.string_value() != y.string_value() {
                    return false;
                }
            }
        }
    }
    true
}

fn zero_or_one<'a>(_: &mut Eval<'a, '_>, mut args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let s = args.pop().unwrap_or_default();
    if s.len() > 1 {
        return Err(Error::new(
            "FORG0003",
            "zero-or-one called with a sequence of more than one item",
        ));
    }
    Ok(s)
}

fn one_or_more<'a>(_: &mut Eval<'a, '_>, mut args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let s = args.pop().unwrap_or_default();
    if s.is_empty() {
        return Err(Error::new(
            "FORG0004",
            "one-or-more called with an empty sequence",
        ));
    }
    Ok(s)
}

fn exactly_one<'a>(_: &mut Eval<'a, '_>, mut args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let s = args.pop().unwrap_or_default();
    if s.len() != 1 {
        return Err(Error::new(
            "FORG0005",
            format!("exactly-one called with a sequence of {} items", s.len()),
        ));
    }
    Ok(s)
}

fn count<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::integer(args[0].len() as i64))
}

fn data<'a>(_: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(atomize(&args[0])?.into_iter().map(Item::Atomic).collect())
}

/// Orders two sort keys: untyped as string, NaN before everything else,
/// then the `lt` order (XPTY0004 for incomparable values).
pub(crate) fn compare_keys(a: &[Atomic], b: &[Atomic], tz: i16) -> Result<Ordering> {
    for (x, y) in a.iter().zip(b.iter()) {
        let x = untyped_as_string(x);
        let y = untyped_as_string(y);
        let o = match (is_nan(&x), is_nan(&y)) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => {
                // equality first: types that are only eq-comparable still sort stably
                if atomic_equal(&x, &y, true, tz) {
                    Ordering::Equal
                } else {
                    value_compare(&x, &y, false, tz)?.unwrap_or(Ordering::Equal)
                }
            }
        };
        if o != Ordering::Equal {
            return Ok(o);
        }
    }
    Ok(a.len().cmp(&b.len()))
}

fn untyped_as_string(a: &Atomic) -> Atomic {
    match a {
        Atomic::Untyped(s) => Atomic::String(s.clone()),
        other => other.clone(),
    }
}

fn sort<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    check_collation(&args, 1)?;
    let tz = ev.env.implicit_timezone;
    let key_fn: Option<Function<'a>> = match args.get(2).and_then(Sequence::first) {
        Some(Item::Function(f)) => Some((**f).clone()),
        Some(Item::Map(m)) => Some(Function::Map(m.clone())),
        Some(Item::Array(a)) => Some(Function::Array(a.clone())),
        _ => None,
    };
    let mut keyed: Vec<(Vec<Atomic>, Item<'a>)> = Vec::with_capacity(args[0].len());
    for item in args[0].iter() {
        let key = match &key_fn {
            Some(f) => {
                let r = ev.call_function(f, vec![Sequence::One(item.clone())])?;
                atomize(&r)?
            }
            None => atomize(&Sequence::One(item.clone()))?,
        };
        keyed.push((key, item.clone()));
    }
    let mut error = None;
    keyed.sort_by(|(a, _), (b, _)| match compare_keys(a, b, tz) {
        Ok(o) => o,
        Err(e) => {
            error.get_or_insert(e);
            Ordering::Equal
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    Ok(keyed.into_iter().map(|(_, it)| it).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{DocArena, Env, NoHost};
    use crate::functions::Impl;
    use crate::tree::{Document, ParseOptions};
    use crate::value::Array;

    fn run(f: Impl, args: Vec<Sequence<'static>>) -> Result<String> {
        let arena = DocArena::new();
        let env = Env::new(&arena);
        let mut host = NoHost;
        let mut ev = Eval {
            env: &env,
            host: &mut host,
            locals: vec![],
            xpath1: false,
        };
        let r = f(&mut ev, args)?;
        Ok(r.iter()
            .map(|i| match i {
                Item::Atomic(a) => a.to_xs_string(),
                _ => "?".into(),
            })
            .collect::<Vec<_>>()
            .join(","))
    }

    fn ints(v: &[i64]) -> Sequence<'static> {
        Sequence::from_vec(
            v.iter()
                .map(|i| Item::Atomic(Atomic::Integer(*i)))
                .collect(),
        )
    }

    fn atoms(v: Vec<Atomic>) -> Sequence<'static> {
        Sequence::from_vec(v.into_iter().map(Item::Atomic).collect())
    }

    #[test]
    fn basic_sequence_functions() {
        assert_eq!(run(empty, vec![Sequence::Empty]).unwrap(), "true");
        assert_eq!(run(exists, vec![ints(&[1])]).unwrap(), "true");
        assert_eq!(run(head, vec![ints(&[1, 2, 3])]).unwrap(), "1");
        assert_eq!(run(tail, vec![ints(&[1, 2, 3])]).unwrap(), "2,3");
        assert_eq!(run(reverse, vec![ints(&[1, 2, 3])]).unwrap(), "3,2,1");
        assert_eq!(run(count, vec![ints(&[1, 2, 3])]).unwrap(), "3");
        assert_eq!(
            run(
                insert_before,
                vec![ints(&[1, 2]), Sequence::integer(2), ints(&[9])]
            )
            .unwrap(),
            "1,9,2"
        );
        assert_eq!(
            run(
                insert_before,
                vec![ints(&[1, 2]), Sequence::integer(0), ints(&[9])]
            )
            .unwrap(),
            "9,1,2"
        );
        assert_eq!(
            run(
                insert_before,
                vec![ints(&[1, 2]), Sequence::integer(7), ints(&[9])]
            )
            .unwrap(),
            "1,2,9"
        );
        assert_eq!(
            run(remove, vec![ints(&[1, 2, 3]), Sequence::integer(2)]).unwrap(),
            "1,3"
        );
        assert_eq!(
            run(remove, vec![ints(&[1, 2, 3]), Sequence::integer(5)]).unwrap(),
            "1,2,3"
        );
    }

    #[test]
    fn subsequence_rounding() {
        let s = ints(&[1, 2, 3, 4, 5]);
        let d = Sequence::double;
        assert_eq!(run(subsequence, vec![s.clone(), d(4.0)]).unwrap(), "4,5");
        assert_eq!(
            run(subsequence, vec![s.clone(), d(3.0), d(2.0)]).unwrap(),
            "3,4"
        );
        assert_eq!(
            run(subsequence, vec![s.clone(), d(0.0), d(3.0)]).unwrap(),
            "1,2"
        );
        assert_eq!(
            run(subsequence, vec![s.clone(), d(1.5), d(2.6)]).unwrap(),
            "2,3,4"
        );
        assert_eq!(
            run(subsequence, vec![s.clone(), d(-3.0), d(5.0)]).unwrap(),
            "1"
        );
        assert_eq!(run(subsequence, vec![s.clone(), d(f64::NAN)]).unwrap(), "");
        assert_eq!(
            run(subsequence, vec![s.clone(), d(-3.0), d(f64::INFINITY)]).unwrap(),
            "1,2,3,4,5"
        );
        assert_eq!(
            run(subsequence, vec![s, d(f64::NEG_INFINITY), d(f64::INFINITY)]).unwrap(),
            ""
        );
    }

    #[test]
    fn cardinality_checks() {
        assert_eq!(
            run(zero_or_one, vec![ints(&[1, 2])]).unwrap_err().code,
            "FORG0003"
        );
        assert_eq!(
            run(one_or_more, vec![Sequence::Empty]).unwrap_err().code,
            "FORG0004"
        );
        assert_eq!(
            run(exactly_one, vec![Sequence::Empty]).unwrap_err().code,
            "FORG0005"
        );
        assert_eq!(run(exactly_one, vec![ints(&[4])]).unwrap(), "4");
    }

    #[test]
    fn distinct_and_index() {
        let v = atoms(vec![
            Atomic::Integer(1),
            Atomic::Double(1.0),
            Atomic::Decimal(Decimal::new(15, 1)),
            Atomic::Double(1.5),
            Atomic::string("a"),
            Atomic::untyped("a"),
            Atomic::Double(f64::NAN),
            Atomic::Double(f64::NAN),
        ]);
        assert_eq!(run(distinct_values, vec![v]).unwrap(), "1,1.5,a,NaN");
        let v = atoms(vec![
            Atomic::Integer(10),
            Atomic::Integer(20),
            Atomic::Double(10.0),
        ]);
        assert_eq!(
            run(index_of, vec![v, Sequence::integer(10)]).unwrap(),
            "1,3"
        );
        let v = atoms(vec![Atomic::string("a"), Atomic::Integer(1)]);
        assert_eq!(run(index_of, vec![v, Sequence::string("a")]).unwrap(), "1");
    }

    #[test]
    fn atomize_and_deep_equal_of_values() {
        let inner = Item::Array(Rc::new(Array {
            members: vec![ints(&[2, 3])],
        }));
        let arr = Item::Array(Rc::new(Array {
            members: vec![ints(&[1]), Sequence::One(inner)],
        }));
        let a = atomize(&Sequence::One(arr.clone())).unwrap();
        assert_eq!(
            a.iter().map(Atomic::to_xs_string).collect::<Vec<_>>(),
            ["1", "2", "3"]
        );
        assert_eq!(
            run(data, vec![Sequence::One(arr.clone())]).unwrap(),
            "1,2,3"
        );
        assert!(sequences_deep_equal(&Sequence::One(arr.clone()), &Sequence::One(arr), 0).unwrap());
        assert!(sequences_deep_equal(
            &ints(&[1, 2]),
            &atoms(vec![Atomic::Double(1.0), Atomic::Integer(2)]),
            0
        )
        .unwrap());
        assert!(!sequences_deep_equal(&ints(&[1, 2]), &ints(&[1]), 0).unwrap());
        assert!(
            sequences_deep_equal(&Sequence::double(f64::NAN), &Sequence::double(f64::NAN), 0)
                .unwrap()
        );
        assert!(!sequences_deep_equal(&Sequence::string("1"), &Sequence::integer(1), 0).unwrap());
    }

    #[test]
    fn sorting() {
        let v = atoms(vec![
            Atomic::Integer(3),
            Atomic::Double(f64::NAN),
            Atomic::Decimal(Decimal::new(15, 1)),
            Atomic::Integer(1),
        ]);
        assert_eq!(run(sort, vec![v]).unwrap(), "NaN,1,1.5,3");
        let v = atoms(vec![Atomic::untyped("b"), Atomic::string("a")]);
        assert_eq!(run(sort, vec![v]).unwrap(), "a,b");
        let v = atoms(vec![Atomic::string("b"), Atomic::Integer(1)]);
        assert_eq!(run(sort, vec![v]).unwrap_err().code, "XPTY0004");
    }

    #[test]
    fn deep_equal_nodes() {
        let o = ParseOptions::default();
        let a = Document::parse_str("<a x='1' y='2'><b>t</b><!--c--></a>", &o).unwrap();
        let b = Document::parse_str("<a y='2' x='1'><b>t</b></a>", &o).unwrap();
        let c = Document::parse_str("<a y='2' x='1'><b>u</b></a>", &o).unwrap();
        assert!(nodes_deep_equal(a.root(), b.root()));
        assert!(!nodes_deep_equal(a.root(), c.root()));
        let n = atomize(&Sequence::One(Item::Node(a.root()))).unwrap();
        assert_eq!(n[0].to_xs_string(), "t");
        assert!(matches!(n[0], Atomic::Untyped(_)));
    }
}
