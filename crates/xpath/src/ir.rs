//! The compiled intermediate representation: a tree of [`Ir`] nodes with
//! every name resolved, every variable a slot, every function call bound.
//! It is evaluated by `interp.rs`; it is `Send + Sync` (constants are
//! [`Atomic`]s, inline functions are boxed [`InlineFn`]s that function
//! items borrow for the duration of a run).

use crate::ast::{Axis, Occurrence};
use crate::cast::CastTarget;
use crate::compile::InlineFn;
use crate::value::{ArithOp, Atomic};

/// The fast path of a name comparison, see [`Ir::NameEq`].
#[derive(Debug)]
pub(crate) struct NameEq {
    /// `true`: `name()` (the lexical QName), `false`: `local-name()`.
    pub lexical: bool,
    pub value: std::sync::Arc<str>,
    /// `!=` / `ne`.
    pub negate: bool,
    /// The comparison as written.
    pub fallback: Box<Ir>,
}

/// Comparison operators (general and value comparisons share them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub(crate) fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => o == Equal,
            CmpOp::Ne => o != Equal,
            CmpOp::Lt => o == Less,
            CmpOp::Le => o != Greater,
            CmpOp::Gt => o == Greater,
            CmpOp::Ge => o != Less,
        }
    }
}

/// Node comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeCmp {
    Is,
    Precedes,
    Follows,
}

/// Set operators on node sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOp {
    Union,
    Intersect,
    Except,
}

/// A resolved node test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Test {
    /// Principal node kind with this name.
    Name {
        uri: String,
        local: String,
    },
    /// Principal node kind, any name.
    AnyName,
    /// Principal node kind in this namespace.
    AnyLocal(String),
    /// Principal node kind with this local name, any namespace.
    AnyNamespace(String),
    /// `node()`
    AnyNode,
    Text,
    Comment,
    Pi(Option<String>),
    /// `document-node()` optionally with an element test on its element child.
    Document(Option<Box<Test>>),
    /// `element(...)`: a name test (or `None` for any) on elements.
    Element(Option<Box<Test>>),
    /// `attribute(...)`
    Attribute(Option<Box<Test>>),
    NamespaceNode,
    /// A test no node of an untyped tree passes (`element(*, xs:integer)`:
    /// elements are annotated `xs:untyped`, attributes `xs:untypedAtomic`).
    Never,
}

/// A predicate, with its fast path.
#[derive(Debug)]
pub(crate) enum Pred {
    /// `[3]` — a constant position.
    Position(i64),
    /// `[last()]`
    Last,
    /// A predicate that is never numeric (comparison, logic, path…): EBV.
    Boolean(Ir),
    /// Anything else: numeric → position test, otherwise EBV.
    General(Ir),
}

/// A resolved item type.
#[derive(Debug, Clone)]
pub(crate) enum ItemTypeIr {
    Item,
    /// A node kind test.
    Node(Test),
    /// An xs: atomic type by local name (`anyAtomicType`, `numeric`, …).
    Atomic(&'static str),
    Function(Option<usize>),
    Map,
    Array,
}

/// A resolved sequence type.
#[derive(Debug, Clone)]
pub(crate) enum SeqTypeIr {
    Empty,
    Item(ItemTypeIr, Occurrence),
}

/// How a local variable captured by an inline function is filled.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Capture {
    Local(u32),
    Host(u32),
}

/// Conversion of a host/builtin argument.
pub(crate) type ParamConv = crate::functions::Param;

/// A compiled expression node.
#[derive(Debug)]
pub(crate) enum Ir {
    Empty,
    Const(Atomic),
    ConstSeq(Vec<Atomic>),
    ContextItem,
    /// The root of the context node's tree (`/`); `document: true`
    /// requires a document node (XPDY0050).
    Root,
    Position,
    Last,
    Local(u32),
    HostVar(u32),
    Seq(Vec<Ir>),
    /// `E1 / E2`
    Path(Box<Ir>, Box<Ir>),
    /// An axis step from the context node.
    Step(Axis, Test, Vec<Pred>),
    /// `E[p]…`
    Filter(Box<Ir>, Vec<Pred>),
    /// `E1 ! E2`
    SimpleMap(Box<Ir>, Box<Ir>),
    /// A builtin call: id, args (with the declared conversions).
    Call(u32, Vec<Ir>, Vec<ParamConv>),
    /// `position()`-free builtin call needing nothing: same as Call.
    /// A host function call: id, args, conversions, wants context.
    HostCall(u32, Vec<Ir>, Vec<ParamConv>, bool),
    /// `$f(args)` with `None` for placeholders.
    DynCall(Box<Ir>, Vec<Option<Ir>>),
    /// Partial application of a builtin/host function: function item, fixed args.
    PartialStatic(Box<Ir>, Vec<Option<Ir>>),
    /// `fn#2` for a builtin.
    BuiltinRef(u32, usize),
    /// `my:f#2` for a host function.
    HostRef(u32, usize, std::sync::Arc<crate::tree::QName>),
    InlineFn(Box<InlineFn>, Vec<Capture>),
    Lookup(Box<Ir>, Box<KeyIr>),
    UnaryLookup(Box<KeyIr>),
    Arith(ArithOp, Box<Ir>, Box<Ir>),
    Neg(Box<Ir>),
    /// Unary plus: atomize + numeric check.
    Plus(Box<Ir>),
    GenCmp(CmpOp, Box<Ir>, Box<Ir>),
    /// `local-name() = 'lit'` / `name() = 'lit'` (also `!=`, `eq`, `ne`,
    /// either operand order) on the context item: the name is compared in
    /// place, without building a string. The generic comparison is kept
    /// as the fallback when the context item is not a node.
    NameEq(NameEq),
    ValCmp(CmpOp, Box<Ir>, Box<Ir>),
    NodeCmp(NodeCmp, Box<Ir>, Box<Ir>),
    And(Box<Ir>, Box<Ir>),
    Or(Box<Ir>, Box<Ir>),
    If(Box<Ir>, Box<Ir>, Box<Ir>),
    For(u32, Box<Ir>, Box<Ir>),
    Let(u32, Box<Ir>, Box<Ir>),
    Quantified(bool, u32, Box<Ir>, Box<Ir>),
    Range(Box<Ir>, Box<Ir>),
    Concat(Box<Ir>, Box<Ir>),
    Set(SetOp, Box<Ir>, Box<Ir>),
    InstanceOf(Box<Ir>, SeqTypeIr),
    Treat(Box<Ir>, SeqTypeIr),
    Cast(Box<Ir>, CastTarget, bool),
    Castable(Box<Ir>, CastTarget, bool),
    /// A cast (`false`) or castable (`true`) to `xs:QName` of a computed
    /// value, with the static namespaces captured at compile time;
    /// the `bool` after the target is "empty allowed".
    CastQName(
        Box<Ir>,
        CastTarget,
        bool,
        bool,
        Box<crate::cast::CastNamespaces>,
    ),
    MapCtor(Vec<(Ir, Ir)>),
    SquareArray(Vec<Ir>),
    CurlyArray(Box<Ir>),
    /// XPath 1.0 mode: `number()` of the first item.
    Number1(Box<Ir>),
}

/// A lookup key.
#[derive(Debug)]
pub(crate) enum KeyIr {
    Wildcard,
    Expr(Ir),
}
