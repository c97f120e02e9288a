//! Evaluation of the IR.
//!
//! One recursive function, [`eval`], walks the IR with the current focus.
//! Paths are evaluated step by step over the arena tree: child,
//! attribute, descendant and sibling axes are index walks over the node
//! records (no allocation per node), name tests compare interned name ids
//! (resolved once per document and step), and results are put into
//! document order only when they are not already (a linear check first).

use std::collections::HashSet;
use std::rc::Rc;

use crate::ast::{Axis, Occurrence};
use crate::compile::{Expression, InlineFn};
use crate::error::{Error, Result};
use crate::eval::{Env, Eval, Focus, Host};
use crate::functions::{self, Kind, Occ, Param};
use crate::ir::{Capture, CmpOp, Ir, ItemTypeIr, KeyIr, NodeCmp, Pred, SeqTypeIr, SetOp, Test};
use crate::tree::{Document, Node, NodeKind, NONE};
use crate::value::{Array, Atomic, AtomicType, Function, Item, Map, MapKey, Sequence};

impl Expression {
    /// A fresh evaluation state for this expression (its frame, its mode).
    fn state<'a, 'h>(&self, env: &'h Env<'a>, host: &'h mut dyn Host<'a>) -> Eval<'a, 'h> {
        Eval {
            env,
            host,
            // most expressions have no local variables: no call at all
            locals: if self.frame == 0 {
                Vec::new()
            } else {
                vec![Sequence::Empty; self.frame]
            },
            xpath1: self.xpath1,
        }
    }

    /// Evaluates the expression. `focus` is the context item, position and
    /// size (`None`: absent focus).
    pub fn evaluate<'a>(
        &'a self,
        env: &Env<'a>,
        host: &mut dyn Host<'a>,
        focus: Option<&Focus<'a>>,
    ) -> Result<Sequence<'a>> {
        eval(&mut self.state(env, host), &self.ir, focus)
    }

    /// Evaluates and takes the effective boolean value.
    pub fn evaluate_bool<'a>(
        &'a self,
        env: &Env<'a>,
        host: &mut dyn Host<'a>,
        focus: Option<&Focus<'a>>,
    ) -> Result<bool> {
        ebv(&self.evaluate(env, host, focus)?)
    }

    /// Evaluates and returns the string value of the result (items joined
    /// with a space; XPath 1.0 mode: the first item only).
    pub fn evaluate_string<'a>(
        &'a self,
        env: &Env<'a>,
        host: &mut dyn Host<'a>,
        focus: Option<&Focus<'a>>,
    ) -> Result<String> {
        let mut ev = self.state(env, host);
        let s = eval(&mut ev, &self.ir, focus)?;
        if self.xpath1 {
            return match s.first() {
                Some(i) => ev.item_string(i),
                None => Ok(String::new()),
            };
        }
        let mut out = String::new();
        for (i, item) in s.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&ev.item_string(item)?);
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------
// helpers shared with the function library

pub(crate) use crate::functions::numeric::effective_boolean_value as ebv;
pub(crate) use crate::functions::seq::atomize;
use crate::functions::seq::node_value as node_typed_value;

fn atomize_opt(s: &Sequence<'_>, what: &str) -> Result<Option<Atomic>> {
    if let Sequence::One(Item::Node(n)) = s {
        return Ok(Some(node_typed_value(*n)));
    }
    if let Sequence::One(Item::Atomic(a)) = s {
        return Ok(Some(a.clone()));
    }
    let mut v = atomize(s)?;
    match v.len() {
        0 => Ok(None),
        1 => Ok(v.pop()),
        n => Err(Error::type_error(format!(
            "{what} expects at most one item, got a sequence of {n}"
        ))),
    }
}

// ---------------------------------------------------------------------------
// the evaluator

pub(crate) fn eval<'a>(
    ev: &mut Eval<'a, '_>,
    ir: &'a Ir,
    focus: Option<&Focus<'a>>,
) -> Result<Sequence<'a>> {
    // The cooperative time budget (see `crate::budget`).
    crate::budget::tick()?;
    stacker::maybe_grow(64 * 1024, 1024 * 1024, || eval_inner(ev, ir, focus))
}

fn context<'f, 'a>(focus: Option<&'f Focus<'a>>) -> Result<&'f Focus<'a>> {
    focus.ok_or_else(Error::no_context)
}

fn context_node<'a>(focus: Option<&Focus<'a>>) -> Result<Node<'a>> {
    match &context(focus)?.item {
        Item::Node(n) => Ok(*n),
        _ => Err(Error::new("XPTY0020", "the context item is not a node")),
    }
}

fn eval_inner<'a>(
    ev: &mut Eval<'a, '_>,
    ir: &'a Ir,
    focus: Option<&Focus<'a>>,
) -> Result<Sequence<'a>> {
    Ok(match ir {
        Ir::Empty => Sequence::Empty,
        Ir::Const(a) => Sequence::One(Item::Atomic(a.clone())),
        Ir::ConstSeq(v) => Sequence::from_vec(v.iter().cloned().map(Item::Atomic).collect()),
        Ir::ContextItem => Sequence::One(context(focus)?.item.clone()),
        Ir::Root => {
            let n = context_node(focus)?;
            let r = n.root();
            if r.kind() != NodeKind::Document {
                return Err(Error::new(
                    "XPDY0050",
                    "the root of the tree containing the context node is not a document node",
                ));
            }
            Sequence::One(Item::Node(r))
        }
        Ir::Position => Sequence::integer(context(focus)?.position as i64),
        Ir::Last => Sequence::integer(context(focus)?.size as i64),
        Ir::Local(s) => ev.locals.get(*s as usize).cloned().unwrap_or_default(),
        Ir::HostVar(id) => ev.host.variable(*id)?,
        Ir::Seq(items) => {
            let mut out = Vec::new();
            for i in items {
                let s = eval(ev, i, focus)?;
                push_seq(&mut out, s);
            }
            Sequence::from_vec(out)
        }
        Ir::Path(a, b) => {
            let left = eval(ev, a, focus)?;
            path_step(ev, left, b)?
        }
        Ir::Step(axis, test, preds) => {
            let n = context_node(focus)?;
            let mut nodes = Vec::new();
            axis_nodes(ev.env, n, *axis, test, &mut nodes);
            let nodes = apply_preds_nodes(ev, nodes, preds)?;
            let mut nodes = nodes;
            if axis.is_reverse() {
                nodes.reverse();
            }
            Sequence::from_nodes(nodes)
        }
        Ir::Filter(a, preds) => {
            let base = eval(ev, a, focus)?;
            let mut items = base.into_vec();
            for p in preds {
                items = apply_pred_items(ev, items, p)?;
            }
            Sequence::from_vec(items)
        }
        Ir::SimpleMap(a, b) => {
            let left = eval(ev, a, focus)?;
            let size = left.len();
            let mut out = Vec::new();
            for (i, item) in left.iter().enumerate() {
                let f = Focus {
                    item: item.clone(),
                    position: i + 1,
                    size,
                };
                let r = eval(ev, b, Some(&f))?;
                push_seq(&mut out, r);
            }
            Sequence::from_vec(out)
        }
        Ir::Call(id, args, params) => {
            let b = &functions::table()[*id as usize];
            let mut vals = Vec::with_capacity(args.len());
            for (i, a) in args.iter().enumerate() {
                let v = eval(ev, a, focus)?;
                let p = params
                    .get(i)
                    .copied()
                    .unwrap_or(Param(Kind::Item, Occ::Many));
                vals.push(convert_arg(ev, v, p, b.name)?);
            }
            (b.imp)(ev, vals)?
        }
        Ir::HostCall(id, args, params, wants_context) => {
            let mut vals = Vec::with_capacity(args.len() + 1);
            for (i, a) in args.iter().enumerate() {
                let v = eval(ev, a, focus)?;
                let p = params
                    .get(i)
                    .copied()
                    .unwrap_or(Param(Kind::Item, Occ::Many));
                vals.push(convert_arg(ev, v, p, "host function")?);
            }
            if *wants_context {
                match focus {
                    Some(f) => vals.push(Sequence::One(f.item.clone())),
                    None => vals.push(Sequence::Empty),
                }
            }
            ev.env.enter()?;
            let r = ev.host.call(*id, vals);
            ev.env.leave();
            r?
        }
        Ir::DynCall(f, args) => {
            let fs = eval(ev, f, focus)?;
            let fun = function_item(&fs)?;
            let mut vals = Vec::with_capacity(args.len());
            let mut partial = false;
            for a in args {
                match a {
                    Some(e) => vals.push(Some(eval(ev, e, focus)?)),
                    None => {
                        partial = true;
                        vals.push(None)
                    }
                }
            }
            if fun.arity() != vals.len() {
                return Err(Error::type_error(format!(
                    "function of arity {} called with {} arguments",
                    fun.arity(),
                    vals.len()
                )));
            }
            if partial {
                Sequence::One(Item::Function(Rc::new(Function::Partial {
                    target: Rc::new(fun),
                    args: vals,
                })))
            } else {
                let vals: Vec<Sequence<'a>> = vals.into_iter().flatten().collect();
                call_function(ev, &fun, vals)?
            }
        }
        Ir::PartialStatic(f, args) => {
            let fs = eval(ev, f, focus)?;
            let fun = function_item(&fs)?;
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(match a {
                    Some(e) => Some(eval(ev, e, focus)?),
                    None => None,
                });
            }
            Sequence::One(Item::Function(Rc::new(Function::Partial {
                target: Rc::new(fun),
                args: vals,
            })))
        }
        Ir::BuiltinRef(id, arity) => Sequence::One(Item::Function(Rc::new(Function::Builtin {
            id: *id,
            arity: *arity,
        }))),
        Ir::HostRef(id, arity, name) => Sequence::One(Item::Function(Rc::new(Function::Host {
            id: *id,
            arity: *arity,
            name: name.clone(),
        }))),
        Ir::InlineFn(def, caps) => {
            let mut captured = Vec::with_capacity(caps.len());
            for c in caps {
                captured.push(match c {
                    Capture::Local(s) => ev.locals.get(*s as usize).cloned().unwrap_or_default(),
                    Capture::Host(h) => ev.host.variable(*h)?,
                });
            }
            Sequence::One(Item::Function(Rc::new(Function::Inline { def, captured })))
        }
        Ir::Lookup(base, key) => {
            let b = eval(ev, base, focus)?;
            let mut out = Vec::new();
            for item in b.iter() {
                lookup(ev, item, key, focus, &mut out)?;
            }
            Sequence::from_vec(out)
        }
        Ir::UnaryLookup(key) => {
            let item = context(focus)?.item.clone();
            let mut out = Vec::new();
            lookup(ev, &item, key, focus, &mut out)?;
            Sequence::from_vec(out)
        }
        Ir::Arith(op, a, b) => {
            let l = eval(ev, a, focus)?;
            let r = eval(ev, b, focus)?;
            let (Some(x), Some(y)) = (arith_operand(&l)?, arith_operand(&r)?) else {
                return Ok(Sequence::Empty);
            };
            Sequence::atomic(crate::arith::arithmetic(
                *op,
                &x,
                &y,
                ev.env.implicit_timezone,
            )?)
        }
        Ir::Neg(a) => {
            let v = eval(ev, a, focus)?;
            match arith_operand(&v)? {
                Some(x) => Sequence::atomic(crate::arith::negate(&x)?),
                None => Sequence::Empty,
            }
        }
        Ir::Plus(a) => {
            let v = eval(ev, a, focus)?;
            match arith_operand(&v)? {
                Some(x) if x.is_numeric() => Sequence::atomic(x),
                Some(_) => return Err(Error::type_error("unary plus needs a numeric operand")),
                None => Sequence::Empty,
            }
        }
        Ir::NameEq(n) => match focus.map(|f| &f.item) {
            Some(Item::Node(node)) => {
                let equal = match crate::functions::node::expanded_name(*node) {
                    None => n.value.is_empty(),
                    Some(q) if !n.lexical => *q.local == *n.value,
                    Some(q) if q.prefix.is_empty() => *q.local == *n.value,
                    Some(q) => n
                        .value
                        .strip_prefix(q.prefix.as_str())
                        .and_then(|rest| rest.strip_prefix(':'))
                        .is_some_and(|local| *local == *q.local),
                };
                Sequence::boolean(equal != n.negate)
            }
            _ => eval(ev, &n.fallback, focus)?,
        },
        Ir::GenCmp(op, a, b) => {
            let l = eval(ev, a, focus)?;
            let r = eval(ev, b, focus)?;
            Sequence::boolean(general_compare(ev, *op, &l, &r)?)
        }
        Ir::ValCmp(op, a, b) => {
            let l = eval(ev, a, focus)?;
            let r = eval(ev, b, focus)?;
            let (Some(x), Some(y)) = (
                atomize_opt(&l, "a value comparison")?,
                atomize_opt(&r, "a value comparison")?,
            ) else {
                return Ok(Sequence::Empty);
            };
            let x = untyped_to_string(x);
            let y = untyped_to_string(y);
            let eq_only = matches!(op, CmpOp::Eq | CmpOp::Ne);
            let o = crate::compare::value_compare(&x, &y, eq_only, ev.env.implicit_timezone)?;
            Sequence::boolean(match o {
                Some(o) => op.holds(o),
                None => *op == CmpOp::Ne,
            })
        }
        Ir::NodeCmp(op, a, b) => {
            let l = eval(ev, a, focus)?;
            let r = eval(ev, b, focus)?;
            let (Some(x), Some(y)) = (single_node(&l)?, single_node(&r)?) else {
                return Ok(Sequence::Empty);
            };
            Sequence::boolean(match op {
                NodeCmp::Is => x == y,
                NodeCmp::Precedes => x < y,
                NodeCmp::Follows => x > y,
            })
        }
        Ir::And(a, b) => {
            let l = eval(ev, a, focus)?;
            if !ebv(&l)? {
                return Ok(Sequence::boolean(false));
            }
            let r = eval(ev, b, focus)?;
            Sequence::boolean(ebv(&r)?)
        }
        Ir::Or(a, b) => {
            let l = eval(ev, a, focus)?;
            if ebv(&l)? {
                return Ok(Sequence::boolean(true));
            }
            let r = eval(ev, b, focus)?;
            Sequence::boolean(ebv(&r)?)
        }
        Ir::If(c, t, e) => {
            let cv = eval(ev, c, focus)?;
            if ebv(&cv)? {
                eval(ev, t, focus)?
            } else {
                eval(ev, e, focus)?
            }
        }
        Ir::For(slot, input, ret) => {
            let seq = eval(ev, input, focus)?;
            let mut out = Vec::new();
            for item in seq.iter() {
                set_local(ev, *slot, Sequence::One(item.clone()));
                let r = eval(ev, ret, focus)?;
                push_seq(&mut out, r);
            }
            Sequence::from_vec(out)
        }
        Ir::Let(slot, value, ret) => {
            let v = eval(ev, value, focus)?;
            set_local(ev, *slot, v);
            eval(ev, ret, focus)?
        }
        Ir::Quantified(every, slot, input, cond) => {
            let seq = eval(ev, input, focus)?;
            for item in seq.iter() {
                set_local(ev, *slot, Sequence::One(item.clone()));
                let c = eval(ev, cond, focus)?;
                let b = ebv(&c)?;
                if *every && !b {
                    return Ok(Sequence::boolean(false));
                }
                if !*every && b {
                    return Ok(Sequence::boolean(true));
                }
            }
            Sequence::boolean(*every)
        }
        Ir::Range(a, b) => {
            let l = eval(ev, a, focus)?;
            let r = eval(ev, b, focus)?;
            let (Some(x), Some(y)) = (range_operand(&l)?, range_operand(&r)?) else {
                return Ok(Sequence::Empty);
            };
            if x > y {
                return Ok(Sequence::Empty);
            }
            if y - x > 50_000_000 {
                return Err(Error::new(
                    "XPDY0130",
                    format!("range {x} to {y} is too large to materialise"),
                ));
            }
            Sequence::from_vec((x..=y).map(|i| Item::Atomic(Atomic::Integer(i))).collect())
        }
        Ir::Concat(a, b) => {
            let l = eval(ev, a, focus)?;
            let r = eval(ev, b, focus)?;
            let mut s = concat_operand(ev, &l)?;
            s.push_str(&concat_operand(ev, &r)?);
            Sequence::string(&s)
        }
        Ir::Set(SetOp::Union, a, b) if attributes_then_children(a, b).is_some() => {
            // `@*|node()` and the like: from one context node, the
            // attribute (or namespace) step's nodes all precede the child
            // step's, and the two are disjoint, so the union is the one
            // followed by the other — no document-order sort.
            let (first, second) = attributes_then_children(a, b).unwrap_or((a, b));
            let l = eval(ev, first, focus)?;
            let r = eval(ev, second, focus)?;
            match (l, r) {
                (Sequence::Empty, r) => r,
                (l, Sequence::Empty) => l,
                (l, r) => {
                    let mut v = Vec::with_capacity(l.len() + r.len());
                    v.extend_from_slice(l.items());
                    v.extend_from_slice(r.items());
                    Sequence::from_vec(v)
                }
            }
        }
        Ir::Set(op, a, b) => {
            let l = eval(ev, a, focus)?;
            let r = eval(ev, b, focus)?;
            let ln = l.nodes().ok_or_else(|| {
                Error::type_error("the operands of union/intersect/except must be nodes")
            })?;
            let rn = r.nodes().ok_or_else(|| {
                Error::type_error("the operands of union/intersect/except must be nodes")
            })?;
            let out = match op {
                SetOp::Union => {
                    let mut v = ln;
                    v.extend(rn);
                    v
                }
                SetOp::Intersect => {
                    let set: HashSet<Node<'a>> = rn.into_iter().collect();
                    ln.into_iter().filter(|n| set.contains(n)).collect()
                }
                SetOp::Except => {
                    let set: HashSet<Node<'a>> = rn.into_iter().collect();
                    ln.into_iter().filter(|n| !set.contains(n)).collect()
                }
            };
            Sequence::from_nodes(doc_order(out))
        }
        Ir::InstanceOf(a, t) => {
            let v = eval(ev, a, focus)?;
            Sequence::boolean(matches_type(&v, t))
        }
        Ir::Treat(a, t) => {
            let v = eval(ev, a, focus)?;
            if !matches_type(&v, t) {
                return Err(Error::new(
                    "XPDY0050",
                    "the value does not match the type required by `treat as`",
                ));
            }
            v
        }
        Ir::Cast(a, target, opt) => {
            let v = eval(ev, a, focus)?;
            match atomize_opt(&v, "cast")? {
                None if *opt => Sequence::Empty,
                None => {
                    return Err(Error::type_error(format!(
                        "cannot cast an empty sequence to xs:{}",
                        target.name
                    )))
                }
                Some(x) => Sequence::atomic(crate::cast::cast(&x, *target)?),
            }
        }
        Ir::Castable(a, target, opt) => {
            let v = eval(ev, a, focus)?;
            let ok = match atomize(&v) {
                Ok(mut xs) => match xs.len() {
                    0 => *opt,
                    1 => match xs.pop() {
                        Some(x) => crate::cast::cast(&x, *target).is_ok(),
                        None => false,
                    },
                    _ => false,
                },
                Err(_) => false,
            };
            Sequence::boolean(ok)
        }
        Ir::CastQName(a, target, opt, castable, ns) => {
            let v = eval(ev, a, focus)?;
            if *castable {
                let ok = match atomize(&v) {
                    Ok(xs) => match xs.as_slice() {
                        [] => *opt,
                        [x] => crate::cast::cast_with_namespaces(x, *target, ns).is_ok(),
                        _ => false,
                    },
                    Err(_) => false,
                };
                Sequence::boolean(ok)
            } else {
                match atomize_opt(&v, "cast")? {
                    None if *opt => Sequence::Empty,
                    None => {
                        return Err(Error::type_error(format!(
                            "cannot cast an empty sequence to xs:{}",
                            target.name
                        )))
                    }
                    Some(x) => {
                        Sequence::atomic(crate::cast::cast_with_namespaces(&x, *target, ns)?)
                    }
                }
            }
        }
        Ir::MapCtor(entries) => {
            let mut m = Map::default();
            for (k, v) in entries {
                let ks = eval(ev, k, focus)?;
                let key = atomize_opt(&ks, "a map key")?
                    .ok_or_else(|| Error::type_error("a map key must not be empty"))?;
                let val = eval(ev, v, focus)?;
                let mk = MapKey::of(&key);
                if m.entries.contains_key(&mk) {
                    return Err(Error::new(
                        "XQDY0137",
                        format!("duplicate key {} in map constructor", key.to_xs_string()),
                    ));
                }
                m.entries.insert(mk, (key, val));
            }
            Sequence::One(Item::Map(Rc::new(m)))
        }
        Ir::SquareArray(members) => {
            let mut a = Array::default();
            for m in members {
                a.members.push(eval(ev, m, focus)?);
            }
            Sequence::One(Item::Array(Rc::new(a)))
        }
        Ir::CurlyArray(e) => {
            let v = eval(ev, e, focus)?;
            let a = Array {
                members: v.iter().map(|i| Sequence::One(i.clone())).collect(),
            };
            Sequence::One(Item::Array(Rc::new(a)))
        }
        Ir::Number1(a) => {
            let v = eval(ev, a, focus)?;
            Sequence::double(number1(&v))
        }
    })
}

fn set_local<'a>(ev: &mut Eval<'a, '_>, slot: u32, v: Sequence<'a>) {
    let s = slot as usize;
    if s >= ev.locals.len() {
        ev.locals.resize(s + 1, Sequence::Empty);
    }
    ev.locals[s] = v;
}

fn push_seq<'a>(out: &mut Vec<Item<'a>>, s: Sequence<'a>) {
    match s {
        Sequence::Empty => {}
        Sequence::One(i) => out.push(i),
        Sequence::Many(v) => out.extend(v.iter().cloned()),
    }
}

/// XPath 1.0 `number()` of the first item.
pub(crate) fn number1(v: &Sequence<'_>) -> f64 {
    match v.first() {
        None => f64::NAN,
        Some(Item::Node(n)) => crate::value::xpath1_parse_number(n.string_value()),
        Some(Item::Atomic(a)) => match a {
            Atomic::String(s) | Atomic::Untyped(s) | Atomic::AnyUri(s) => {
                crate::value::xpath1_parse_number(s)
            }
            other => other.to_number(),
        },
        Some(_) => f64::NAN,
    }
}

fn untyped_to_string(a: Atomic) -> Atomic {
    match a {
        Atomic::Untyped(s) => Atomic::String(s),
        other => other,
    }
}

fn arith_operand(s: &Sequence<'_>) -> Result<Option<Atomic>> {
    Ok(match atomize_opt(s, "an arithmetic operator")? {
        None => None,
        Some(Atomic::Untyped(t)) => {
            Some(Atomic::Double(crate::value::parse_double(&t).ok_or_else(
                || Error::invalid_value(format!("cannot convert '{t}' to xs:double")),
            )?))
        }
        Some(a) => Some(a),
    })
}

fn range_operand(s: &Sequence<'_>) -> Result<Option<i64>> {
    Ok(match atomize_opt(s, "the range operator")? {
        None => None,
        Some(Atomic::Integer(i)) => Some(i),
        Some(Atomic::Untyped(t)) => Some(
            t.trim()
                .parse::<i64>()
                .map_err(|_| Error::invalid_value(format!("cannot convert '{t}' to xs:integer")))?,
        ),
        Some(other) => {
            let f = other.to_number();
            if other.is_numeric()
                && f.fract() == 0.0
                && !matches!(other, Atomic::Double(_) | Atomic::Float(_))
            {
                Some(f as i64)
            } else {
                return Err(Error::type_error("the operands of `to` must be integers"));
            }
        }
    })
}

fn concat_operand(ev: &Eval<'_, '_>, s: &Sequence<'_>) -> Result<String> {
    Ok(match atomize_opt(s, "the || operator")? {
        None => String::new(),
        Some(a) => ev.atomic_string(&a),
    })
}

fn single_node<'a>(s: &Sequence<'a>) -> Result<Option<Node<'a>>> {
    match s {
        Sequence::Empty => Ok(None),
        Sequence::One(Item::Node(n)) => Ok(Some(*n)),
        _ => Err(Error::type_error("a node comparison needs single nodes")),
    }
}

fn function_item<'a>(s: &Sequence<'a>) -> Result<Function<'a>> {
    match s {
        Sequence::One(Item::Function(f)) => Ok((**f).clone()),
        Sequence::One(Item::Map(m)) => Ok(Function::Map(m.clone())),
        Sequence::One(Item::Array(a)) => Ok(Function::Array(a.clone())),
        _ => Err(Error::type_error(
            "a dynamic function call needs exactly one function item",
        )),
    }
}

// ---------------------------------------------------------------------------
// comparisons

fn general_compare<'a>(
    ev: &Eval<'a, '_>,
    op: CmpOp,
    l: &Sequence<'a>,
    r: &Sequence<'a>,
) -> Result<bool> {
    if l.is_empty() || r.is_empty() {
        return Ok(false);
    }
    let tz = ev.env.implicit_timezone;
    if ev.xpath1 {
        // XPath 1.0: booleans first, then numbers, then strings
        let is_bool =
            |s: &Sequence<'_>| matches!(s, Sequence::One(Item::Atomic(Atomic::Boolean(_))));
        if is_bool(l) || is_bool(r) {
            let a = ebv(l)?;
            let b = ebv(r)?;
            return Ok(op.holds(a.cmp(&b)));
        }
        if let Some(holds) = xpath1_compare_views(op, l.items(), r.items()) {
            return Ok(holds);
        }
        let la = atomize(l)?;
        let ra = atomize(r)?;
        let relational = !matches!(op, CmpOp::Eq | CmpOp::Ne);
        for x in &la {
            for y in &ra {
                let numeric = relational || x.is_numeric() || y.is_numeric();
                let holds = if numeric {
                    let a = num1(x);
                    let b = num1(y);
                    match a.partial_cmp(&b) {
                        Some(o) => op.holds(o),
                        None => op == CmpOp::Ne,
                    }
                } else if x.is_stringlike() && y.is_stringlike() {
                    op.holds(x.as_str().unwrap_or("").cmp(y.as_str().unwrap_or("")))
                } else {
                    pair_compare(op, x, y, tz).unwrap_or_default()
                };
                if holds {
                    return Ok(true);
                }
            }
        }
        return Ok(false);
    }
    let la = atomize(l)?;
    let ra = atomize(r)?;
    // hash join for large string equality tests
    if op == CmpOp::Eq
        && la.len() * ra.len() > 256
        && la.iter().chain(ra.iter()).all(Atomic::is_stringlike)
    {
        let set: HashSet<&str> = ra.iter().filter_map(Atomic::as_str).collect();
        return Ok(la
            .iter()
            .filter_map(Atomic::as_str)
            .any(|s| set.contains(s)));
    }
    for x in &la {
        for y in &ra {
            if pair_compare(op, x, y, tz)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A borrowed view of an item for XPath 1.0 comparisons: nodes and
/// string-like atomics as their string (no `Arc<str>` per node),
/// numerics as their number.
#[derive(Clone, Copy)]
enum View<'s> {
    Str(&'s str),
    Num(f64),
}

fn view<'s>(item: &'s Item<'_>) -> Option<View<'s>> {
    match item {
        Item::Node(n) => Some(View::Str(n.string_value())),
        Item::Atomic(Atomic::String(s) | Atomic::Untyped(s) | Atomic::AnyUri(s)) => {
            Some(View::Str(s))
        }
        Item::Atomic(a) if a.is_numeric() => Some(View::Num(a.to_number())),
        _ => None,
    }
}

impl View<'_> {
    fn num(self) -> f64 {
        match self {
            View::Str(s) => crate::value::xpath1_parse_number(s),
            View::Num(n) => n,
        }
    }
}

/// The XPath 1.0 general comparison without atomizing, when every item
/// is a node, a string-like or a numeric atomic (`None`: some item is
/// not; the caller takes the general path). Same rules as the general
/// path: numeric if the operator is relational or either side of a pair
/// is a number, else string equality.
fn xpath1_compare_views(op: CmpOp, l: &[Item<'_>], r: &[Item<'_>]) -> Option<bool> {
    if l.iter().chain(r.iter()).any(|i| view(i).is_none()) {
        return None;
    }
    let relational = !matches!(op, CmpOp::Eq | CmpOp::Ne);
    // one side a single value: convert it once
    if let [y] = r {
        let y = view(y)?;
        let yn = if relational || matches!(y, View::Num(_)) {
            Some(y.num())
        } else {
            None
        };
        for x in l {
            let x = view(x)?;
            let holds = match (x, y, yn) {
                (View::Str(a), View::Str(b), None) if !relational => op.holds(a.cmp(b)),
                (x, _, yn) => {
                    let b = yn.unwrap_or_else(|| y.num());
                    match x.num().partial_cmp(&b) {
                        Some(o) => op.holds(o),
                        None => op == CmpOp::Ne,
                    }
                }
            };
            if holds {
                return Some(true);
            }
        }
        return Some(false);
    }
    for x in l {
        let x = view(x)?;
        for y in r {
            let y = view(y)?;
            let holds = match (x, y) {
                (View::Str(a), View::Str(b)) if !relational => op.holds(a.cmp(b)),
                _ => match x.num().partial_cmp(&y.num()) {
                    Some(o) => op.holds(o),
                    None => op == CmpOp::Ne,
                },
            };
            if holds {
                return Some(true);
            }
        }
    }
    Some(false)
}

fn num1(a: &Atomic) -> f64 {
    match a {
        Atomic::String(s) | Atomic::Untyped(s) | Atomic::AnyUri(s) => {
            crate::value::xpath1_parse_number(s)
        }
        other => other.to_number(),
    }
}

/// One pair of a general comparison (XPath 3.1 §3.7.2).
fn pair_compare(op: CmpOp, x: &Atomic, y: &Atomic, tz: i16) -> Result<bool> {
    let (x, y) = match (x, y) {
        (Atomic::Untyped(a), Atomic::Untyped(b)) => {
            (Atomic::String(a.clone()), Atomic::String(b.clone()))
        }
        (Atomic::Untyped(a), other) => (cast_untyped(a, other)?, other.clone()),
        (other, Atomic::Untyped(b)) => (other.clone(), cast_untyped(b, other)?),
        (a, b) => (a.clone(), b.clone()),
    };
    let eq_only = matches!(op, CmpOp::Eq | CmpOp::Ne);
    Ok(match crate::compare::value_compare(&x, &y, eq_only, tz)? {
        Some(o) => op.holds(o),
        None => op == CmpOp::Ne,
    })
}

fn cast_untyped(s: &std::sync::Arc<str>, other: &Atomic) -> Result<Atomic> {
    if other.is_numeric() {
        return crate::value::parse_double(s)
            .map(Atomic::Double)
            .ok_or_else(|| Error::invalid_value(format!("cannot convert '{s}' to xs:double")));
    }
    match other.type_of() {
        AtomicType::String | AtomicType::AnyUri | AtomicType::Untyped => {
            Ok(Atomic::String(s.clone()))
        }
        t => crate::cast::cast_to(&Atomic::Untyped(s.clone()), t),
    }
}

// ---------------------------------------------------------------------------
// paths and axes

fn path_step<'a>(ev: &mut Eval<'a, '_>, left: Sequence<'a>, step: &'a Ir) -> Result<Sequence<'a>> {
    let size = left.len();
    if size == 0 {
        return Ok(Sequence::Empty);
    }
    // fast path: a plain axis step over nodes
    if let Ir::Step(axis, test, preds) = step {
        let mut out: Vec<Node<'a>> = Vec::new();
        for item in left.iter() {
            let Item::Node(n) = item else {
                return Err(Error::new(
                    "XPTY0019",
                    "the left-hand side of `/` must be nodes",
                ));
            };
            let start = out.len();
            axis_nodes(ev.env, *n, *axis, test, &mut out);
            if !preds.is_empty() {
                let tail: Vec<Node<'a>> = out.drain(start..).collect();
                let kept = apply_preds_nodes(ev, tail, preds)?;
                out.extend(kept);
            }
            if axis.is_reverse() {
                out[start..].reverse();
            }
        }
        // one context node's results are already in document order (reverse
        // axes were turned around above); several may interleave
        if size > 1 {
            out = doc_order(out);
        }
        return Ok(Sequence::from_nodes(out));
    }
    let mut out: Vec<Item<'a>> = Vec::new();
    for (i, item) in left.iter().enumerate() {
        if !matches!(item, Item::Node(_)) {
            return Err(Error::new(
                "XPTY0019",
                "the left-hand side of `/` must be nodes",
            ));
        }
        let f = Focus {
            item: item.clone(),
            position: i + 1,
            size,
        };
        let r = eval(ev, step, Some(&f))?;
        push_seq(&mut out, r);
    }
    let nodes = out.iter().filter(|i| matches!(i, Item::Node(_))).count();
    if nodes == out.len() {
        let ns: Vec<Node<'a>> = out.into_iter().filter_map(|i| i.as_node()).collect();
        Ok(Sequence::from_nodes(doc_order(ns)))
    } else if nodes == 0 {
        Ok(Sequence::from_vec(out))
    } else {
        Err(Error::new(
            "XPTY0018",
            "the result of a path step mixes nodes and atomic values",
        ))
    }
}

/// Sorts into document order and removes duplicates (linear when the
/// input is already ordered).
pub(crate) fn doc_order(mut v: Vec<Node<'_>>) -> Vec<Node<'_>> {
    if v.windows(2).all(|w| w[0] < w[1]) {
        return v;
    }
    v.sort_unstable();
    v.dedup();
    v
}

struct Matcher<'t> {
    test: &'t Test,
    principal: NodeKind,
    env: &'t Env<'t>,
    /// (doc id, name id) cache of the last lookup.
    cache: Option<(u64, Option<u32>)>,
}

impl<'t> Matcher<'t> {
    fn new(test: &'t Test, principal: NodeKind, env: &'t Env<'t>) -> Self {
        Matcher {
            test,
            principal,
            env,
            cache: None,
        }
    }

    fn name_id(&mut self, doc: &Document, uri: &str, local: &str) -> Option<u32> {
        match self.cache {
            Some((d, id)) if d == doc.id() => id,
            _ => {
                let id = self
                    .env
                    .name_id(self.test as *const Test as usize, doc, uri, local);
                self.cache = Some((doc.id(), id));
                id
            }
        }
    }

    fn matches(&mut self, n: Node<'_>) -> bool {
        let kind = n.kind();
        match self.test {
            Test::AnyNode => true,
            Test::Name { uri, local } if n.ns != 0 => {
                kind == self.principal
                    && n.name()
                        .is_some_and(|q| crate::tree::name_eq(q, uri, local))
            }
            Test::Name { uri, local } => {
                kind == self.principal
                    && match self.name_id(n.doc, uri, local) {
                        Some(id) => n.name_id() == Some(id),
                        None => false,
                    }
            }
            Test::AnyName => kind == self.principal,
            Test::AnyLocal(uri) => {
                kind == self.principal && n.name().is_some_and(|q| &q.uri == uri)
            }
            Test::AnyNamespace(local) => {
                kind == self.principal && n.name().is_some_and(|q| &q.local == local)
            }
            other => kind_matches(other, n),
        }
    }
}

/// Matches a kind test (not the name tests that depend on the axis).
pub(crate) fn kind_matches(t: &Test, n: Node<'_>) -> bool {
    let kind = n.kind();
    match t {
        Test::AnyNode => true,
        Test::Text => kind == NodeKind::Text,
        Test::Comment => kind == NodeKind::Comment,
        Test::NamespaceNode => kind == NodeKind::Namespace,
        Test::Never => false,
        Test::Pi(name) => {
            kind == NodeKind::ProcessingInstruction
                && name
                    .as_ref()
                    .is_none_or(|nm| n.name().is_some_and(|q| &q.local == nm))
        }
        Test::Document(inner) => {
            kind == NodeKind::Document
                && match inner {
                    None => true,
                    Some(t) => {
                        let elems: Vec<Node<'_>> = n
                            .children()
                            .filter(|c| c.kind() == NodeKind::Element)
                            .collect();
                        elems.len() == 1 && elems.iter().all(|e| kind_matches(t, *e))
                    }
                }
        }
        Test::Element(inner) => {
            kind == NodeKind::Element && inner.as_ref().is_none_or(|t| name_matches(t, n))
        }
        Test::Attribute(inner) => {
            kind == NodeKind::Attribute && inner.as_ref().is_none_or(|t| name_matches(t, n))
        }
        Test::Name { .. } | Test::AnyName | Test::AnyLocal(_) | Test::AnyNamespace(_) => {
            // used as an item type: principal kind element
            kind == NodeKind::Element && name_matches(t, n)
        }
    }
}

fn name_matches(t: &Test, n: Node<'_>) -> bool {
    let Some(q) = n.name() else {
        return false;
    };
    match t {
        Test::Name { uri, local } => crate::tree::name_eq(q, uri, local),
        Test::AnyName => true,
        Test::AnyLocal(uri) => &q.uri == uri,
        Test::AnyNamespace(local) => &q.local == local,
        _ => true,
    }
}

/// The operands of a union `a | b` in document order when one is a step
/// on the attribute or namespace axis and the other a step on the child
/// axis, both from the context node (see `Ir::Set` in [`eval`]).
fn attributes_then_children<'i>(a: &'i Ir, b: &'i Ir) -> Option<(&'i Ir, &'i Ir)> {
    let leading = |ir: &Ir| matches!(ir, Ir::Step(Axis::Attribute | Axis::Namespace, _, _));
    let child = |ir: &Ir| matches!(ir, Ir::Step(Axis::Child, _, _));
    if leading(a) && child(b) {
        Some((a, b))
    } else if child(a) && leading(b) {
        Some((b, a))
    } else {
        None
    }
}

/// Appends the nodes of `axis` from `n` matching `test`, in axis order
/// (reverse axes: nearest first).
fn axis_nodes<'a>(env: &Env<'_>, n: Node<'a>, axis: Axis, test: &Test, out: &mut Vec<Node<'a>>) {
    let principal = match axis {
        Axis::Attribute => NodeKind::Attribute,
        Axis::Namespace => NodeKind::Namespace,
        _ => NodeKind::Element,
    };
    let mut m = Matcher::new(test, principal, env);
    let doc = n.doc;
    let nodes = &doc.nodes;
    let at = |i: u32| Node { doc, idx: i, ns: 0 };
    let rec = nodes[n.idx as usize];
    if n.ns != 0 {
        // A namespace node (of the element `n.idx`): no children,
        // attributes, siblings or namespaces; its parent is the element;
        // what follows it is the element's content and what follows that.
        match axis {
            Axis::SelfAxis | Axis::DescendantOrSelf if m.matches(n) => out.push(n),
            Axis::Parent | Axis::Ancestor | Axis::AncestorOrSelf => {
                if axis == Axis::AncestorOrSelf && m.matches(n) {
                    out.push(n);
                }
                let mut p = n.idx;
                while p != NONE {
                    let pn = at(p);
                    if m.matches(pn) {
                        out.push(pn);
                    }
                    if axis == Axis::Parent {
                        break;
                    }
                    p = nodes[p as usize].parent;
                }
            }
            Axis::Following => {
                for i in (n.idx + 1)..(nodes.len() as u32) {
                    if nodes[i as usize].kind != NodeKind::Attribute {
                        let c = at(i);
                        if m.matches(c) {
                            out.push(c);
                        }
                    }
                }
            }
            Axis::Preceding => axis_nodes(env, at(n.idx), axis, test, out),
            _ => {}
        }
        return;
    }
    match axis {
        Axis::Child => {
            if matches!(rec.kind, NodeKind::Element | NodeKind::Document) {
                // fast path for element name tests: the name resolved once,
                // then one comparison per child record
                if let Test::Name { uri, local } = test {
                    let Some(id) = m.name_id(doc, uri, local) else {
                        return;
                    };
                    let mut i = n.idx + 1;
                    while i < rec.end {
                        let r = &nodes[i as usize];
                        if r.kind == NodeKind::Element && r.name == id {
                            out.push(at(i));
                        }
                        i = r.end;
                    }
                    return;
                }
                let mut i = n.idx + 1;
                while i < rec.end {
                    let r = nodes[i as usize];
                    if r.kind != NodeKind::Attribute {
                        let c = at(i);
                        if m.matches(c) {
                            out.push(c);
                        }
                    }
                    i = r.end;
                }
            }
        }
        Axis::Attribute => {
            if rec.kind == NodeKind::Element {
                if let Test::Name { uri, local } = test {
                    let Some(id) = m.name_id(doc, uri, local) else {
                        return;
                    };
                    let mut i = n.idx + 1;
                    while i < rec.end && nodes[i as usize].kind == NodeKind::Attribute {
                        if nodes[i as usize].name == id {
                            out.push(at(i));
                            // an element has at most one attribute of a name
                            break;
                        }
                        i += 1;
                    }
                    return;
                }
                let mut i = n.idx + 1;
                while i < rec.end && nodes[i as usize].kind == NodeKind::Attribute {
                    let c = at(i);
                    if m.matches(c) {
                        out.push(c);
                    }
                    i += 1;
                }
            }
        }
        Axis::Descendant | Axis::DescendantOrSelf => {
            if axis == Axis::DescendantOrSelf && m.matches(n) {
                out.push(n);
            }
            if matches!(rec.kind, NodeKind::Element | NodeKind::Document) {
                // fast path for element name tests
                if let Test::Name { uri, local } = test {
                    let Some(id) = m.name_id(doc, uri, local) else {
                        return;
                    };
                    for i in (n.idx + 1)..rec.end {
                        let r = &nodes[i as usize];
                        if r.kind == NodeKind::Element && r.name == id {
                            out.push(at(i));
                        }
                    }
                    return;
                }
                for i in (n.idx + 1)..rec.end {
                    if nodes[i as usize].kind != NodeKind::Attribute {
                        let c = at(i);
                        if m.matches(c) {
                            out.push(c);
                        }
                    }
                }
            }
        }
        Axis::SelfAxis => {
            if m.matches(n) {
                out.push(n);
            }
        }
        Axis::Parent => {
            if rec.parent != NONE {
                let p = at(rec.parent);
                if m.matches(p) {
                    out.push(p);
                }
            }
        }
        Axis::Ancestor | Axis::AncestorOrSelf => {
            if axis == Axis::AncestorOrSelf && m.matches(n) {
                out.push(n);
            }
            let mut p = rec.parent;
            while p != NONE {
                let pn = at(p);
                if m.matches(pn) {
                    out.push(pn);
                }
                p = nodes[p as usize].parent;
            }
        }
        Axis::FollowingSibling => {
            if rec.kind == NodeKind::Attribute || rec.parent == NONE {
                return;
            }
            let pend = nodes[rec.parent as usize].end;
            let mut i = rec.end;
            while i < pend {
                let c = at(i);
                if m.matches(c) {
                    out.push(c);
                }
                i = nodes[i as usize].end;
            }
        }
        Axis::PrecedingSibling => {
            if rec.kind == NodeKind::Attribute {
                return;
            }
            let mut p = rec.prev;
            while p != NONE {
                let c = at(p);
                if m.matches(c) {
                    out.push(c);
                }
                p = nodes[p as usize].prev;
            }
        }
        Axis::Following => {
            let start = if rec.kind == NodeKind::Attribute {
                // following of an attribute: after the attribute, i.e. the
                // element's content and everything after it
                n.idx + 1
            } else {
                rec.end
            };
            for i in start..(nodes.len() as u32) {
                if nodes[i as usize].kind != NodeKind::Attribute {
                    let c = at(i);
                    if m.matches(c) {
                        out.push(c);
                    }
                }
            }
        }
        Axis::Preceding => {
            let mut i = n.idx;
            // ancestors of n are exactly the nodes before it whose subtree
            // contains it
            while i > 0 {
                i -= 1;
                let r = &nodes[i as usize];
                if r.kind == NodeKind::Attribute || r.end > n.idx {
                    continue;
                }
                let c = at(i);
                if m.matches(c) {
                    out.push(c);
                }
            }
        }
        Axis::Namespace => {
            if rec.kind == NodeKind::Element {
                for c in n.namespace_nodes() {
                    if m.matches(c) {
                        out.push(c);
                    }
                }
            }
        }
    }
}

fn apply_preds_nodes<'a>(
    ev: &mut Eval<'a, '_>,
    mut nodes: Vec<Node<'a>>,
    preds: &'a [Pred],
) -> Result<Vec<Node<'a>>> {
    for p in preds {
        if nodes.is_empty() {
            break;
        }
        nodes = match p {
            Pred::Position(k) => {
                let k = *k;
                if k >= 1 && (k as usize) <= nodes.len() {
                    vec![nodes[k as usize - 1]]
                } else {
                    Vec::new()
                }
            }
            Pred::Last => nodes.last().copied().into_iter().collect(),
            Pred::Boolean(ir) | Pred::General(ir) => {
                let size = nodes.len();
                let mut kept = Vec::new();
                for (i, n) in nodes.iter().enumerate() {
                    let f = Focus {
                        item: Item::Node(*n),
                        position: i + 1,
                        size,
                    };
                    let v = eval(ev, ir, Some(&f))?;
                    if pred_truth(&v, i + 1, matches!(p, Pred::General(_)))? {
                        kept.push(*n);
                    }
                }
                kept
            }
        };
    }
    Ok(nodes)
}

fn apply_pred_items<'a>(
    ev: &mut Eval<'a, '_>,
    items: Vec<Item<'a>>,
    p: &'a Pred,
) -> Result<Vec<Item<'a>>> {
    Ok(match p {
        Pred::Position(k) => {
            let k = *k;
            if k >= 1 && (k as usize) <= items.len() {
                vec![items[k as usize - 1].clone()]
            } else {
                Vec::new()
            }
        }
        Pred::Last => items.last().cloned().into_iter().collect(),
        Pred::Boolean(ir) | Pred::General(ir) => {
            let size = items.len();
            let mut kept = Vec::new();
            for (i, item) in items.into_iter().enumerate() {
                let f = Focus {
                    item,
                    position: i + 1,
                    size,
                };
                let v = eval(ev, ir, Some(&f))?;
                if pred_truth(&v, i + 1, matches!(p, Pred::General(_)))? {
                    kept.push(f.item);
                }
            }
            kept
        }
    })
}

fn pred_truth(v: &Sequence<'_>, position: usize, numeric_possible: bool) -> Result<bool> {
    if numeric_possible {
        if let Sequence::One(Item::Atomic(a)) = v {
            if a.is_numeric() {
                return Ok(a.to_number() == position as f64);
            }
        }
    }
    ebv(v)
}

// ---------------------------------------------------------------------------
// lookups, maps, arrays

fn lookup<'a>(
    ev: &mut Eval<'a, '_>,
    item: &Item<'a>,
    key: &'a KeyIr,
    focus: Option<&Focus<'a>>,
    out: &mut Vec<Item<'a>>,
) -> Result<()> {
    match item {
        Item::Map(m) => match key {
            KeyIr::Wildcard => {
                for (_, v) in m.entries.values() {
                    push_seq(out, v.clone());
                }
            }
            KeyIr::Expr(e) => {
                let ks = eval(ev, e, focus)?;
                for k in atomize(&ks)? {
                    if let Some((_, v)) = m.entries.get(&MapKey::of(&k)) {
                        push_seq(out, v.clone());
                    }
                }
            }
        },
        Item::Array(a) => match key {
            KeyIr::Wildcard => {
                for v in &a.members {
                    push_seq(out, v.clone());
                }
            }
            KeyIr::Expr(e) => {
                let ks = eval(ev, e, focus)?;
                for k in atomize(&ks)? {
                    let Atomic::Integer(i) = k else {
                        return Err(Error::type_error("array lookup needs integer keys"));
                    };
                    let m = array_member(a, i)?;
                    push_seq(out, m);
                }
            }
        },
        _ => {
            return Err(Error::type_error(
                "the lookup operator `?` applies to maps and arrays",
            ))
        }
    }
    Ok(())
}

fn array_member<'a>(a: &Array<'a>, i: i64) -> Result<Sequence<'a>> {
    if i < 1 || i as usize > a.members.len() {
        return Err(Error::new(
            "FOAY0001",
            format!(
                "array index {i} is out of bounds (size {})",
                a.members.len()
            ),
        ));
    }
    Ok(a.members[i as usize - 1].clone())
}

// ---------------------------------------------------------------------------
// function calls

/// Applies the function conversion rules for a builtin/host parameter.
pub(crate) fn convert_arg<'a>(
    ev: &Eval<'a, '_>,
    v: Sequence<'a>,
    p: Param,
    fname: &str,
) -> Result<Sequence<'a>> {
    let Param(kind, occ) = p;
    let xpath1 = ev.xpath1;
    if xpath1 && occ != Occ::Many {
        // XPath 1.0 compatibility (XPath 2.0 §3.1.5.2): the first item,
        // converted with string() / number()
        match kind {
            Kind::String => {
                return Ok(match v.first() {
                    // already a string (or as good as one): shared, not copied
                    Some(Item::Atomic(
                        Atomic::String(s) | Atomic::Untyped(s) | Atomic::AnyUri(s),
                    )) => Sequence::One(Item::Atomic(Atomic::String(s.clone()))),
                    Some(i) => Sequence::string(&ev.item_string(i)?),
                    None => Sequence::string(""),
                });
            }
            Kind::Double | Kind::Numeric => return Ok(Sequence::double(number1(&v))),
            _ => {}
        }
    }
    let v = if xpath1 && occ != Occ::Many && v.len() > 1 {
        v.first().cloned().map(Sequence::One).unwrap_or_default()
    } else {
        v
    };
    let v = match kind {
        Kind::Item => v,
        Kind::Node => {
            if v.iter().any(|i| !matches!(i, Item::Node(_))) {
                return Err(Error::type_error(format!(
                    "{fname}(): argument must be a node"
                )));
            }
            v
        }
        Kind::Function => {
            if v.iter()
                .any(|i| !matches!(i, Item::Function(_) | Item::Map(_) | Item::Array(_)))
            {
                return Err(Error::type_error(format!(
                    "{fname}(): argument must be a function"
                )));
            }
            v
        }
        Kind::Map => {
            if v.iter().any(|i| !matches!(i, Item::Map(_))) {
                return Err(Error::type_error(format!(
                    "{fname}(): argument must be a map"
                )));
            }
            v
        }
        Kind::Array => {
            if v.iter().any(|i| !matches!(i, Item::Array(_))) {
                return Err(Error::type_error(format!(
                    "{fname}(): argument must be an array"
                )));
            }
            v
        }
        Kind::Atomic
        | Kind::String
        | Kind::Double
        | Kind::Numeric
        | Kind::Integer
        | Kind::Boolean => {
            let atoms = atomize(&v)?;
            let mut out = Vec::with_capacity(atoms.len());
            for a in atoms {
                out.push(Item::Atomic(convert_atomic(a, kind, fname)?));
            }
            Sequence::from_vec(out)
        }
    };
    match (occ, v.len()) {
        (Occ::One, 1) | (Occ::Opt, 0 | 1) | (Occ::Many, _) => Ok(v),
        (Occ::One, 0) => Err(Error::type_error(format!(
            "{fname}(): an empty sequence is not allowed as argument"
        ))),
        (_, n) => Err(Error::type_error(format!(
            "{fname}(): a sequence of {n} items is not allowed as argument"
        ))),
    }
}

fn convert_atomic(a: Atomic, kind: Kind, fname: &str) -> Result<Atomic> {
    let bad = |a: &Atomic| {
        Error::type_error(format!(
            "{fname}(): a value of type {:?} is not allowed here (expected {kind:?})",
            a.type_of()
        ))
    };
    Ok(match kind {
        Kind::String => match a {
            Atomic::String(_) => a,
            Atomic::Untyped(s) | Atomic::AnyUri(s) => Atomic::String(s),
            other => return Err(bad(&other)),
        },
        Kind::Double => match a {
            Atomic::Double(_) => a,
            Atomic::Untyped(s) => {
                Atomic::Double(crate::value::parse_double(&s).ok_or_else(|| {
                    Error::invalid_value(format!("cannot convert '{s}' to xs:double"))
                })?)
            }
            ref n if n.is_numeric() => Atomic::Double(n.to_number()),
            other => return Err(bad(&other)),
        },
        Kind::Numeric => match a {
            Atomic::Untyped(s) => {
                Atomic::Double(crate::value::parse_double(&s).ok_or_else(|| {
                    Error::invalid_value(format!("cannot convert '{s}' to xs:double"))
                })?)
            }
            ref n if n.is_numeric() => a,
            other => return Err(bad(&other)),
        },
        Kind::Integer => match a {
            Atomic::Integer(_) => a,
            Atomic::Untyped(_) => crate::cast::cast_to(&a, AtomicType::Integer)?,
            other => return Err(bad(&other)),
        },
        Kind::Boolean => match a {
            Atomic::Boolean(_) => a,
            Atomic::Untyped(_) => crate::cast::cast_to(&a, AtomicType::Boolean)?,
            other => return Err(bad(&other)),
        },
        _ => a,
    })
}

/// Calls a function item.
pub(crate) fn call_function<'a>(
    ev: &mut Eval<'a, '_>,
    f: &Function<'a>,
    args: Vec<Sequence<'a>>,
) -> Result<Sequence<'a>> {
    if args.len() != f.arity() {
        return Err(Error::type_error(format!(
            "function of arity {} called with {} arguments",
            f.arity(),
            args.len()
        )));
    }
    match f {
        Function::Builtin { id, .. } => {
            let b = functions::table()
                .get(*id as usize)
                .ok_or_else(|| Error::new("XPST0017", "unknown builtin"))?;
            let mut vals = Vec::with_capacity(args.len());
            for (i, a) in args.into_iter().enumerate() {
                vals.push(convert_arg(ev, a, b.param(i), b.name)?);
            }
            (b.imp)(ev, vals)
        }
        Function::Host { id, .. } => {
            ev.env.enter()?;
            let r = ev.host.call(*id, args);
            ev.env.leave();
            r
        }
        Function::Inline { def, captured } => call_inline(ev, def, captured, args),
        Function::Partial {
            target,
            args: fixed,
        } => {
            let mut it = args.into_iter();
            let mut full = Vec::with_capacity(fixed.len());
            for a in fixed {
                match a {
                    Some(v) => full.push(v.clone()),
                    None => full.push(it.next().unwrap_or_default()),
                }
            }
            call_function(ev, target, full)
        }
        Function::Map(m) => {
            let k = args
                .first()
                .map(|a| atomize_opt(a, "a map lookup"))
                .transpose()?
                .flatten()
                .ok_or_else(|| Error::type_error("a map lookup needs one key"))?;
            Ok(m.entries
                .get(&MapKey::of(&k))
                .map(|(_, v)| v.clone())
                .unwrap_or_default())
        }
        Function::Array(a) => {
            let k = args
                .first()
                .map(|x| atomize_opt(x, "an array lookup"))
                .transpose()?
                .flatten();
            match k {
                Some(Atomic::Integer(i)) => array_member(a, i),
                Some(Atomic::Untyped(s)) => match s.trim().parse::<i64>() {
                    Ok(i) => array_member(a, i),
                    Err(_) => Err(Error::type_error("array index must be an integer")),
                },
                _ => Err(Error::type_error("array index must be an integer")),
            }
        }
    }
}

fn call_inline<'a>(
    ev: &mut Eval<'a, '_>,
    def: &'a InlineFn,
    captured: &[Sequence<'a>],
    args: Vec<Sequence<'a>>,
) -> Result<Sequence<'a>> {
    let mut frame: Vec<Sequence<'a>> = Vec::with_capacity(def.frame);
    frame.extend(captured.iter().cloned());
    for (i, a) in args.into_iter().enumerate() {
        let a = match def.params.get(i).and_then(|p| p.as_ref()) {
            Some(t) => coerce(a, t)?,
            None => a,
        };
        frame.push(a);
    }
    frame.resize(def.frame.max(frame.len()), Sequence::Empty);
    ev.env.enter()?;
    let saved = std::mem::replace(&mut ev.locals, frame);
    let saved_mode = std::mem::replace(&mut ev.xpath1, def.xpath1);
    let r = eval(ev, &def.body, None);
    ev.locals = saved;
    ev.xpath1 = saved_mode;
    ev.env.leave();
    let r = r?;
    match &def.result {
        Some(t) => coerce(r, t),
        None => Ok(r),
    }
}

/// Function coercion of a value to a declared sequence type: atomization
/// and untyped casts for atomic types, then a type check (XPTY0004).
pub(crate) fn coerce<'a>(v: Sequence<'a>, t: &SeqTypeIr) -> Result<Sequence<'a>> {
    if let SeqTypeIr::Item(ItemTypeIr::Atomic(name), _) = t {
        let atoms = atomize(&v)?;
        let mut out = Vec::with_capacity(atoms.len());
        for a in atoms {
            let a = match (&a, *name) {
                (Atomic::Untyped(_), "anyAtomicType" | "untypedAtomic") => a,
                (Atomic::Untyped(_), n) => match crate::cast::type_by_name(n) {
                    Some(target) => crate::cast::cast(&a, target)?,
                    None => a,
                },
                (x, "double") if x.is_numeric() => Atomic::Double(x.to_number()),
                (x @ (Atomic::Integer(_) | Atomic::Decimal(_)), "float") => {
                    Atomic::Float(x.to_number() as f32)
                }
                // An xs:integer is an xs:decimal: subtype substitution
                // keeps its type (no conversion).
                (Atomic::AnyUri(s), "string") => Atomic::String(s.clone()),
                _ => a,
            };
            out.push(Item::Atomic(a));
        }
        let v = Sequence::from_vec(out);
        if matches_type(&v, t) {
            return Ok(v);
        }
        return Err(Error::type_error(
            "the value does not match the declared type",
        ));
    }
    if matches_type(&v, t) {
        Ok(v)
    } else {
        Err(Error::type_error(
            "the value does not match the declared type",
        ))
    }
}

/// Does a sequence match a sequence type?
pub(crate) fn matches_type(v: &Sequence<'_>, t: &SeqTypeIr) -> bool {
    match t {
        SeqTypeIr::Empty => v.is_empty(),
        SeqTypeIr::Item(it, occ) => {
            let n = v.len();
            let occ_ok = match occ {
                Occurrence::One => n == 1,
                Occurrence::Optional => n <= 1,
                Occurrence::ZeroOrMore => true,
                Occurrence::OneOrMore => n >= 1,
            };
            occ_ok && v.iter().all(|i| item_matches(i, it))
        }
    }
}

fn item_matches(i: &Item<'_>, t: &ItemTypeIr) -> bool {
    match (t, i) {
        (ItemTypeIr::Item, _) => true,
        (ItemTypeIr::Node(test), Item::Node(n)) => kind_matches(test, *n),
        (ItemTypeIr::Atomic(name), Item::Atomic(a)) => crate::cast::instance_of(a, name),
        (ItemTypeIr::Function(arity), Item::Function(f)) => arity.is_none_or(|k| f.arity() == k),
        (ItemTypeIr::Function(arity), Item::Map(_) | Item::Array(_)) => {
            arity.is_none_or(|k| k == 1)
        }
        (ItemTypeIr::Map, Item::Map(_)) => true,
        (ItemTypeIr::Array, Item::Array(_)) => true,
        _ => false,
    }
}
