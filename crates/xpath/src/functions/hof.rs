//! Higher-order functions (`fn:for-each`, `fn:filter`, folds, `fn:apply`)
//! and the `map:` and `array:` function libraries.

use std::rc::Rc;

use super::params::*;
use super::{Builtin, Kind, Occ, Param, ARRAY, FN, MAP};
use crate::error::{Error, Result};
use crate::eval::Eval;
use crate::interp::{atomize, ebv};
use crate::value::{Array, Atomic, Function, Item, Map, MapKey, Sequence};

macro_rules! b {
    ($ns:expr, $name:expr, $min:expr, $max:expr, $params:expr, $imp:expr) => {
        Builtin {
            ns: $ns,
            name: $name,
            min: $min,
            max: $max,
            params: $params,
            context_default: false,
            imp: $imp,
        }
    };
}

/// The functions of this module.
pub const FUNCTIONS: &[Builtin] = &[
    b!(FN, "for-each", 2, 2, &[ITEM_MANY, FUNC_ONE], for_each),
    b!(FN, "filter", 2, 2, &[ITEM_MANY, FUNC_ONE], filter),
    b!(
        FN,
        "fold-left",
        3,
        3,
        &[ITEM_MANY, ITEM_MANY, FUNC_ONE],
        fold_left
    ),
    b!(
        FN,
        "fold-right",
        3,
        3,
        &[ITEM_MANY, ITEM_MANY, FUNC_ONE],
        fold_right
    ),
    b!(
        FN,
        "for-each-pair",
        3,
        3,
        &[ITEM_MANY, ITEM_MANY, FUNC_ONE],
        for_each_pair
    ),
    b!(FN, "apply", 2, 2, &[FUNC_ONE, ARRAY_ONE], apply),
    b!(FN, "function-arity", 1, 1, &[FUNC_ONE], function_arity),
    b!(MAP, "merge", 1, 2, &[MAP_MANY, MAP_ONE], map_merge),
    b!(MAP, "size", 1, 1, &[MAP_ONE], map_size),
    b!(MAP, "keys", 1, 1, &[MAP_ONE], map_keys),
    b!(MAP, "contains", 2, 2, &[MAP_ONE, ATOMIC_ONE], map_contains),
    b!(MAP, "get", 2, 2, &[MAP_ONE, ATOMIC_ONE], map_get),
    b!(MAP, "put", 3, 3, &[MAP_ONE, ATOMIC_ONE, ITEM_MANY], map_put),
    b!(
        MAP,
        "remove",
        2,
        2,
        &[MAP_ONE, Param(Kind::Atomic, Occ::Many)],
        map_remove
    ),
    b!(MAP, "entry", 2, 2, &[ATOMIC_ONE, ITEM_MANY], map_entry),
    b!(MAP, "for-each", 2, 2, &[MAP_ONE, FUNC_ONE], map_for_each),
    b!(MAP, "find", 2, 2, &[ITEM_MANY, ATOMIC_ONE], map_find),
    b!(ARRAY, "size", 1, 1, &[ARRAY_ONE], array_size),
    b!(ARRAY, "get", 2, 2, &[ARRAY_ONE, INT_ONE], array_get),
    b!(
        ARRAY,
        "put",
        3,
        3,
        &[ARRAY_ONE, INT_ONE, ITEM_MANY],
        array_put
    ),
    b!(ARRAY, "append", 2, 2, &[ARRAY_ONE, ITEM_MANY], array_append),
    b!(
        ARRAY,
        "subarray",
        2,
        3,
        &[ARRAY_ONE, INT_ONE, INT_ONE],
        array_subarray
    ),
    b!(
        ARRAY,
        "remove",
        2,
        2,
        &[ARRAY_ONE, Param(Kind::Integer, Occ::Many)],
        array_remove
    ),
    b!(
        ARRAY,
        "insert-before",
        3,
        3,
        &[ARRAY_ONE, INT_ONE, ITEM_MANY],
        array_insert_before
    ),
    b!(ARRAY, "head", 1, 1, &[ARRAY_ONE], array_head),
    b!(ARRAY, "tail", 1, 1, &[ARRAY_ONE], array_tail),
    b!(ARRAY, "reverse", 1, 1, &[ARRAY_ONE], array_reverse),
    b!(
        ARRAY,
        "sort",
        1,
        3,
        &[ARRAY_ONE, STR_OPT, FUNC_ONE],
        array_sort
    ),
    b!(ARRAY, "join", 1, 1, &[ARRAY_MANY], array_join),
    b!(ARRAY, "flatten", 1, 1, &[ITEM_MANY], array_flatten),
    b!(
        ARRAY,
        "for-each",
        2,
        2,
        &[ARRAY_ONE, FUNC_ONE],
        array_for_each
    ),
    b!(ARRAY, "filter", 2, 2, &[ARRAY_ONE, FUNC_ONE], array_filter),
    b!(
        ARRAY,
        "fold-left",
        3,
        3,
        &[ARRAY_ONE, ITEM_MANY, FUNC_ONE],
        array_fold_left
    ),
    b!(
        ARRAY,
        "fold-right",
        3,
        3,
        &[ARRAY_ONE, ITEM_MANY, FUNC_ONE],
        array_fold_right
    ),
    b!(
        ARRAY,
        "for-each-pair",
        3,
        3,
        &[ARRAY_ONE, ARRAY_ONE, FUNC_ONE],
        array_for_each_pair
    ),
];

fn func<'a>(s: &Sequence<'a>) -> Result<Function<'a>> {
    match s.first() {
        Some(Item::Function(f)) => Ok((**f).clone()),
        Some(Item::Map(m)) => Ok(Function::Map(m.clone())),
        Some(Item::Array(a)) => Ok(Function::Array(a.clone())),
        _ => Err(Error::type_error("a function item is required")),
    }
}

fn map<'s, 'a>(s: &'s Sequence<'a>) -> Result<&'s Rc<Map<'a>>> {
    match s.first() {
        Some(Item::Map(m)) => Ok(m),
        _ => Err(Error::type_error("a map is required")),
    }
}

fn array<'s, 'a>(s: &'s Sequence<'a>) -> Result<&'s Rc<Array<'a>>> {
    match s.first() {
        Some(Item::Array(a)) => Ok(a),
        _ => Err(Error::type_error("an array is required")),
    }
}

fn key(s: &Sequence<'_>) -> Result<Atomic> {
    match s.first() {
        Some(Item::Atomic(a)) => Ok(a.clone()),
        _ => Err(Error::type_error("a single atomic key is required")),
    }
}

fn int(s: &Sequence<'_>) -> Result<i64> {
    match s.first() {
        Some(Item::Atomic(Atomic::Integer(i))) => Ok(*i),
        _ => Err(Error::type_error("an integer is required")),
    }
}

fn arg<'a>(args: &[Sequence<'a>], i: usize) -> Sequence<'a> {
    args.get(i).cloned().unwrap_or_default()
}

fn for_each<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let f = func(&arg(&args, 1))?;
    let mut out = Vec::new();
    for i in arg(&args, 0).iter() {
        out.extend(
            ev.call_function(&f, vec![Sequence::One(i.clone())])?
                .into_vec(),
        );
    }
    Ok(Sequence::from_vec(out))
}

fn filter<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let f = func(&arg(&args, 1))?;
    let mut out = Vec::new();
    for i in arg(&args, 0).iter() {
        let r = ev.call_function(&f, vec![Sequence::One(i.clone())])?;
        match r {
            Sequence::One(Item::Atomic(Atomic::Boolean(b))) => {
                if b {
                    out.push(i.clone());
                }
            }
            _ => {
                return Err(Error::type_error(
                    "filter: the function must return a boolean",
                ))
            }
        }
    }
    Ok(Sequence::from_vec(out))
}

fn fold_left<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let f = func(&arg(&args, 2))?;
    let mut acc = arg(&args, 1);
    for i in arg(&args, 0).iter() {
        acc = ev.call_function(&f, vec![acc, Sequence::One(i.clone())])?;
    }
    Ok(acc)
}

fn fold_right<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let f = func(&arg(&args, 2))?;
    let mut acc = arg(&args, 1);
    for i in arg(&args, 0).iter().rev() {
        acc = ev.call_function(&f, vec![Sequence::One(i.clone()), acc])?;
    }
    Ok(acc)
}

fn for_each_pair<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let f = func(&arg(&args, 2))?;
    let a = arg(&args, 0);
    let b = arg(&args, 1);
    let mut out = Vec::new();
    for (x, y) in a.iter().zip(b.iter()) {
        out.extend(
            ev.call_function(&f, vec![Sequence::One(x.clone()), Sequence::One(y.clone())])?
                .into_vec(),
        );
    }
    Ok(Sequence::from_vec(out))
}

fn apply<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let f = func(&arg(&args, 0))?;
    let a = array(&arg(&args, 1))?.clone();
    if a.members.len() != f.arity() {
        return Err(Error::new(
            "FOAP0001",
            format!(
                "apply: the function takes {} arguments, the array has {} members",
                f.arity(),
                a.members.len()
            ),
        ));
    }
    ev.call_function(&f, a.members.clone())
}

fn function_arity<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::integer(func(&arg(&args, 0))?.arity() as i64))
}

fn one_map<'a>(m: Map<'a>) -> Sequence<'a> {
    Sequence::One(Item::Map(Rc::new(m)))
}

fn one_array<'a>(a: Array<'a>) -> Sequence<'a> {
    Sequence::One(Item::Array(Rc::new(a)))
}

fn map_merge<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let mut policy = "use-first".to_string();
    if let Some(opts) = args.get(1) {
        let o = map(opts)?;
        if let Some((_, v)) = o.entries.get(&MapKey::Str("duplicates".into())) {
            if let Some(Item::Atomic(a)) = v.first() {
                policy = a.to_xs_string();
            }
        }
    }
    let mut out = Map::default();
    for m in arg(&args, 0).iter() {
        let Item::Map(m) = m else {
            return Err(Error::type_error("map:merge: maps are required"));
        };
        for (k, (orig, v)) in &m.entries {
            match out.entries.get_mut(k) {
                None => {
                    out.entries.insert(k.clone(), (orig.clone(), v.clone()));
                }
                Some(existing) => match policy.as_str() {
                    "use-first" | "use-any" => {}
                    "use-last" => existing.1 = v.clone(),
                    "combine" => {
                        let mut items = existing.1.clone().into_vec();
                        items.extend(v.iter().cloned());
                        existing.1 = Sequence::from_vec(items);
                    }
                    "reject" => {
                        return Err(Error::new(
                            "FOJS0003",
                            format!("map:merge: duplicate key {}", orig.to_xs_string()),
                        ))
                    }
                    other => {
                        return Err(Error::new(
                            "FOJS0005",
                            format!("map:merge: unknown duplicates policy {other}"),
                        ))
                    }
                },
            }
        }
    }
    Ok(one_map(out))
}

fn map_size<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::integer(map(&arg(&args, 0))?.entries.len() as i64))
}

fn map_keys<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let m = map(&arg(&args, 0))?.clone();
    Ok(Sequence::from_vec(
        m.entries
            .values()
            .map(|(k, _)| Item::Atomic(k.clone()))
            .collect(),
    ))
}

fn map_contains<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let m = map(&arg(&args, 0))?.clone();
    let k = key(&arg(&args, 1))?;
    Ok(Sequence::boolean(m.entries.contains_key(&MapKey::of(&k))))
}

fn map_get<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let m = map(&arg(&args, 0))?.clone();
    let k = key(&arg(&args, 1))?;
    Ok(m.entries
        .get(&MapKey::of(&k))
        .map(|(_, v)| v.clone())
        .unwrap_or_default())
}

fn map_put<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let mut m = (**map(&arg(&args, 0))?).clone();
    let k = key(&arg(&args, 1))?;
    m.entries.insert(MapKey::of(&k), (k, arg(&args, 2)));
    Ok(one_map(m))
}

fn map_remove<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let mut m = (**map(&arg(&args, 0))?).clone();
    for k in atomize(&arg(&args, 1))? {
        m.entries.shift_remove(&MapKey::of(&k));
    }
    Ok(one_map(m))
}

fn map_entry<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let k = key(&arg(&args, 0))?;
    let mut m = Map::default();
    m.entries.insert(MapKey::of(&k), (k, arg(&args, 1)));
    Ok(one_map(m))
}

fn map_for_each<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let m = map(&arg(&args, 0))?.clone();
    let f = func(&arg(&args, 1))?;
    let mut out = Vec::new();
    for (k, v) in m.entries.values() {
        out.extend(
            ev.call_function(&f, vec![Sequence::atomic(k.clone()), v.clone()])?
                .into_vec(),
        );
    }
    Ok(Sequence::from_vec(out))
}

fn map_find<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let k = MapKey::of(&key(&arg(&args, 1))?);
    let mut found = Vec::new();
    let mut stack: Vec<Item<'a>> = arg(&args, 0).into_vec();
    stack.reverse();
    // depth-first, document order of the input
    while let Some(item) = stack.pop() {
        match item {
            Item::Map(m) => {
                if let Some((_, v)) = m.entries.get(&k) {
                    found.push(v.clone());
                }
                let mut inner: Vec<Item<'a>> = Vec::new();
                for (_, v) in m.entries.values() {
                    inner.extend(v.iter().cloned());
                }
                inner.reverse();
                stack.extend(inner);
            }
            Item::Array(a) => {
                let mut inner: Vec<Item<'a>> = Vec::new();
                for v in &a.members {
                    inner.extend(v.iter().cloned());
                }
                inner.reverse();
                stack.extend(inner);
            }
            _ => {}
        }
    }
    Ok(one_array(Array { members: found }))
}

fn checked(a: &Array<'_>, i: i64) -> Result<usize> {
    if i < 1 || i as usize > a.members.len() {
        return Err(Error::new(
            "FOAY0001",
            format!(
                "array index {i} is out of bounds (size {})",
                a.members.len()
            ),
        ));
    }
    Ok(i as usize - 1)
}

fn array_size<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    Ok(Sequence::integer(
        array(&arg(&args, 0))?.members.len() as i64
    ))
}

fn array_get<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let a = array(&arg(&args, 0))?.clone();
    let i = checked(&a, int(&arg(&args, 1))?)?;
    Ok(a.members[i].clone())
}

fn array_put<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let mut a = (**array(&arg(&args, 0))?).clone();
    let i = checked(&a, int(&arg(&args, 1))?)?;
    a.members[i] = arg(&args, 2);
    Ok(one_array(a))
}

fn array_append<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let mut a = (**array(&arg(&args, 0))?).clone();
    a.members.push(arg(&args, 1));
    Ok(one_array(a))
}

fn array_subarray<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let a = array(&arg(&args, 0))?.clone();
    let start = int(&arg(&args, 1))?;
    let len = match args.get(2) {
        Some(s) => int(s)?,
        None => (a.members.len() as i64)
            .saturating_sub(start)
            .saturating_add(1),
    };
    if len < 0 {
        return Err(Error::new("FOAY0002", "array:subarray: negative length"));
    }
    if start < 1
        || (start - 1)
            .checked_add(len)
            .is_none_or(|end| end > a.members.len() as i64)
    {
        return Err(Error::new("FOAY0001", "array:subarray: out of bounds"));
    }
    let s = (start - 1) as usize;
    Ok(one_array(Array {
        members: a.members[s..s + len as usize].to_vec(),
    }))
}

fn array_remove<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let a = array(&arg(&args, 0))?.clone();
    let mut drop = std::collections::HashSet::new();
    for p in atomize(&arg(&args, 1))? {
        let Atomic::Integer(i) = p else {
            return Err(Error::type_error(
                "array:remove: integer positions required",
            ));
        };
        drop.insert(checked(&a, i)?);
    }
    Ok(one_array(Array {
        members: a
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| !drop.contains(i))
            .map(|(_, m)| m.clone())
            .collect(),
    }))
}

fn array_insert_before<'a>(
    _ev: &mut Eval<'a, '_>,
    args: Vec<Sequence<'a>>,
) -> Result<Sequence<'a>> {
    let mut a = (**array(&arg(&args, 0))?).clone();
    let p = int(&arg(&args, 1))?;
    if p < 1 || p as usize > a.members.len() + 1 {
        return Err(Error::new("FOAY0001", "array:insert-before: out of bounds"));
    }
    a.members.insert(p as usize - 1, arg(&args, 2));
    Ok(one_array(a))
}

fn array_head<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let a = array(&arg(&args, 0))?.clone();
    a.members
        .first()
        .cloned()
        .ok_or_else(|| Error::new("FOAY0001", "array:head of an empty array"))
}

fn array_tail<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let a = array(&arg(&args, 0))?.clone();
    if a.members.is_empty() {
        return Err(Error::new("FOAY0001", "array:tail of an empty array"));
    }
    Ok(one_array(Array {
        members: a.members[1..].to_vec(),
    }))
}

fn array_reverse<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let mut a = (**array(&arg(&args, 0))?).clone();
    a.members.reverse();
    Ok(one_array(a))
}

/// `array:sort($array, $collation?, $key?)`: the members in the order of
/// their sort keys (`fn:sort` semantics; stable).
fn array_sort<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    super::numeric::check_collation(&args, 1)?;
    let tz = ev.env.implicit_timezone;
    let first = arg(&args, 0);
    let a = array(&first)?;
    let key_fn: Option<Function<'a>> = match args.get(2).and_then(Sequence::first) {
        Some(Item::Function(f)) => Some((**f).clone()),
        Some(Item::Map(m)) => Some(Function::Map(m.clone())),
        Some(Item::Array(k)) => Some(Function::Array(k.clone())),
        _ => None,
    };
    let mut keyed = Vec::with_capacity(a.members.len());
    for m in a.members.iter() {
        let key = match &key_fn {
            Some(f) => atomize(&ev.call_function(f, vec![m.clone()])?)?,
            None => atomize(m)?,
        };
        keyed.push((key, m.clone()));
    }
    let mut error = None;
    keyed.sort_by(|(x, _), (y, _)| {
        super::seq::compare_keys(x, y, tz).unwrap_or_else(|e| {
            error.get_or_insert(e);
            std::cmp::Ordering::Equal
        })
    });
    if let Some(e) = error {
        return Err(e);
    }
    Ok(one_array(Array {
        members: keyed.into_iter().map(|(_, m)| m).collect(),
    }))
}

fn array_join<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let mut out = Array::default();
    for i in arg(&args, 0).iter() {
        if let Item::Array(a) = i {
            out.members.extend(a.members.iter().cloned());
        }
    }
    Ok(one_array(out))
}

fn array_flatten<'a>(_ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let mut out = Vec::new();
    let mut stack: Vec<Item<'a>> = arg(&args, 0).into_vec();
    stack.reverse();
    while let Some(i) = stack.pop() {
        match i {
            Item::Array(a) => {
                let mut inner: Vec<Item<'a>> = Vec::new();
                for m in &a.members {
                    inner.extend(m.iter().cloned());
                }
                inner.reverse();
                stack.extend(inner);
            }
            other => out.push(other),
        }
    }
    Ok(Sequence::from_vec(out))
}

fn array_for_each<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let a = array(&arg(&args, 0))?.clone();
    let f = func(&arg(&args, 1))?;
    let mut out = Array::default();
    for m in &a.members {
        out.members.push(ev.call_function(&f, vec![m.clone()])?);
    }
    Ok(one_array(out))
}

fn array_filter<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let a = array(&arg(&args, 0))?.clone();
    let f = func(&arg(&args, 1))?;
    let mut out = Array::default();
    for m in &a.members {
        let r = ev.call_function(&f, vec![m.clone()])?;
        if ebv(&r)? {
            out.members.push(m.clone());
        }
    }
    Ok(one_array(out))
}

fn array_fold_left<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let a = array(&arg(&args, 0))?.clone();
    let f = func(&arg(&args, 2))?;
    let mut acc = arg(&args, 1);
    for m in &a.members {
        acc = ev.call_function(&f, vec![acc, m.clone()])?;
    }
    Ok(acc)
}

fn array_fold_right<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let a = array(&arg(&args, 0))?.clone();
    let f = func(&arg(&args, 2))?;
    let mut acc = arg(&args, 1);
    for m in a.members.iter().rev() {
        acc = ev.call_function(&f, vec![m.clone(), acc])?;
    }
    Ok(acc)
}

fn array_for_each_pair<'a>(ev: &mut Eval<'a, '_>, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
    let a = array(&arg(&args, 0))?.clone();
    let b = array(&arg(&args, 1))?.clone();
    let f = func(&arg(&args, 2))?;
    let mut out = Array::default();
    for (x, y) in a.members.iter().zip(b.members.iter()) {
        out.members
            .push(ev.call_function(&f, vec![x.clone(), y.clone()])?);
    }
    Ok(one_array(out))
}
