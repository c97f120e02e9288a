//! The abstract syntax tree of an XPath 3.1 expression, as produced by
//! [`crate::parser::parse`]. Names are still lexical here (prefixes are
//! resolved by the compiler, [`crate::compile`]); every node carries the
//! [`Span`] of its source text for error messages.

use crate::error::Span;

/// A name as written: `prefix:local`, `local`, or the EQName
/// `Q{uri}local` (then `uri` is `Some`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// Prefix as written (`None`: unprefixed).
    pub prefix: Option<String>,
    /// Local part.
    pub local: String,
    /// Namespace URI given literally with `Q{…}`.
    pub uri: Option<String>,
}

impl Name {
    /// An unprefixed name.
    pub fn local(local: &str) -> Name {
        Name {
            prefix: None,
            local: local.to_string(),
            uri: None,
        }
    }
}

/// Binary operators (arithmetic, comparisons, logic, sequence operators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `or`
    Or,
    /// `and`
    And,
    /// `=`
    GenEq,
    /// `!=`
    GenNe,
    /// `<`
    GenLt,
    /// `<=`
    GenLe,
    /// `>`
    GenGt,
    /// `>=`
    GenGe,
    /// `eq`
    ValEq,
    /// `ne`
    ValNe,
    /// `lt`
    ValLt,
    /// `le`
    ValLe,
    /// `gt`
    ValGt,
    /// `ge`
    ValGe,
    /// `is`
    Is,
    /// `<<`
    Precedes,
    /// `>>`
    Follows,
    /// `||`
    Concat,
    /// `to`
    Range,
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
    /// `union`, `|`
    Union,
    /// `intersect`
    Intersect,
    /// `except`
    Except,
}

/// Axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Axis {
    /// `child::`
    Child,
    /// `descendant::`
    Descendant,
    /// `attribute::`, `@`
    Attribute,
    /// `self::`
    SelfAxis,
    /// `descendant-or-self::`
    DescendantOrSelf,
    /// `following-sibling::`
    FollowingSibling,
    /// `following::`
    Following,
    /// `namespace::`
    Namespace,
    /// `parent::`, `..`
    Parent,
    /// `ancestor::`
    Ancestor,
    /// `preceding-sibling::`
    PrecedingSibling,
    /// `preceding::`
    Preceding,
    /// `ancestor-or-self::`
    AncestorOrSelf,
}

impl Axis {
    /// Reverse axes number their positions from the context node backwards.
    pub fn is_reverse(self) -> bool {
        matches!(
            self,
            Axis::Parent
                | Axis::Ancestor
                | Axis::PrecedingSibling
                | Axis::Preceding
                | Axis::AncestorOrSelf
        )
    }
}

/// A name test with wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameTest {
    /// `name`, `p:name`, `Q{uri}name`.
    Name(Name),
    /// `*`
    Any,
    /// `p:*` (prefix) — `uri` set for `Q{uri}*`.
    AnyLocal {
        /// The prefix as written.
        prefix: Option<String>,
        /// The URI of `Q{uri}*`.
        uri: Option<String>,
    },
    /// `*:local`
    AnyNamespace(String),
}

/// A kind test (`node()`, `element(a)`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindTest {
    /// `node()`
    AnyNode,
    /// `text()`
    Text,
    /// `comment()`
    Comment,
    /// `namespace-node()`
    NamespaceNode,
    /// `processing-instruction()` / `processing-instruction(name)`
    Pi(Option<String>),
    /// `document-node()` / `document-node(element(…))`
    Document(Option<Box<KindTest>>),
    /// `element()`, `element(name)`, `element(*, type)`
    Element(Option<NameTest>, Option<Name>),
    /// `attribute()`, `attribute(name)`, `attribute(*, type)`
    Attribute(Option<NameTest>, Option<Name>),
    /// `schema-element(name)` (no schema support: refused by the compiler)
    SchemaElement(Name),
    /// `schema-attribute(name)` (refused by the compiler)
    SchemaAttribute(Name),
}

/// A node test of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeTest {
    /// A name test.
    Name(NameTest),
    /// A kind test.
    Kind(KindTest),
}

/// Occurrence indicator of a sequence type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrence {
    /// exactly one
    One,
    /// `?`
    Optional,
    /// `*`
    ZeroOrMore,
    /// `+`
    OneOrMore,
}

/// An item type.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemType {
    /// `item()`
    Item,
    /// A kind test (`node()`, `element()`, …).
    Kind(KindTest),
    /// An atomic or union type by name (`xs:integer`).
    Atomic(Name),
    /// `function(*)` (None) or `function(T, …) as R`.
    Function(Option<(Vec<SequenceType>, Box<SequenceType>)>),
    /// `map(*)` (None) or `map(K, V)`.
    Map(Option<(Box<ItemType>, Box<SequenceType>)>),
    /// `array(*)` (None) or `array(T)`.
    Array(Option<Box<SequenceType>>),
    /// `( ItemType )`
    Paren(Box<ItemType>),
}

/// A sequence type.
#[derive(Debug, Clone, PartialEq)]
pub enum SequenceType {
    /// `empty-sequence()`
    Empty,
    /// An item type with occurrence.
    Item(ItemType, Occurrence),
}

/// A literal.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `"text"` (quotes undoubled).
    String(String),
    /// `12` (as written, may exceed i64).
    Integer(String),
    /// `1.5` (as written).
    Decimal(String),
    /// `1e3` (as written).
    Double(String),
}

/// One argument of a function call: an expression or the placeholder `?`
/// of partial function application.
#[derive(Debug, Clone, PartialEq)]
pub enum Argument {
    /// An expression.
    Expr(Expr),
    /// `?`
    Placeholder,
}

/// A key specifier of the lookup operator `?`.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySpec {
    /// `?name`
    Name(String),
    /// `?12`
    Integer(String),
    /// `?(expr)`
    Expr(Box<Expr>),
    /// `?*`
    Wildcard,
}

/// A postfix on a primary expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Postfix {
    /// `[predicate]`
    Predicate(Expr),
    /// `(args)` — dynamic function call.
    Call(Vec<Argument>),
    /// `?key`
    Lookup(KeySpec),
}

/// A step of a relative path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// `axis::test[pred]*`
    Axis {
        /// The axis (abbreviations expanded).
        axis: Axis,
        /// The node test.
        test: NodeTest,
        /// Predicates, in order.
        predicates: Vec<Expr>,
    },
    /// A postfix expression used as a step (`(a|b)`, `f()`, `$x[1]`).
    Expr(Box<Expr>),
}

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStart {
    /// Relative to the context item.
    Relative,
    /// `/…`: the root of the context node's tree.
    Root,
    /// `//…`: the root, then descendant-or-self::node().
    RootDescendants,
}

/// One `for`/`let`/`some`/`every` binding.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The variable name.
    pub name: Name,
    /// The bound expression.
    pub expr: Expr,
    /// Where the binding is.
    pub span: Span,
}

/// A parameter of an inline function.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its name.
    pub name: Name,
    /// Declared type.
    pub ty: Option<SequenceType>,
}

/// An expression with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is.
    pub span: Span,
}

/// The kinds of expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A literal.
    Literal(Literal),
    /// `$name`
    VarRef(Name),
    /// `.`
    ContextItem,
    /// `()` (empty) or `(a, b, c)` — the comma operator.
    Sequence(Vec<Expr>),
    /// `f(args)`
    FunctionCall(Name, Vec<Argument>),
    /// `f#2`
    NamedFunctionRef(Name, usize),
    /// `function($a as T) as R { body }`
    InlineFunction {
        /// Parameters.
        params: Vec<Param>,
        /// Declared result type.
        result: Option<SequenceType>,
        /// Body (`()` if empty).
        body: Box<Expr>,
    },
    /// `map { k: v, … }`
    Map(Vec<(Expr, Expr)>),
    /// `[a, b]` (square) — each member one expression.
    SquareArray(Vec<Expr>),
    /// `array { e }` (curly) — each item one member.
    CurlyArray(Box<Expr>),
    /// `?key` without a left-hand side (unary lookup on the context item).
    UnaryLookup(KeySpec),
    /// A primary with postfixes (predicates, dynamic calls, lookups).
    Postfix(Box<Expr>, Vec<Postfix>),
    /// A path: start and steps (at least one step unless `start` is `Root`).
    Path(PathStart, Vec<Step>),
    /// `a op b`
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `-a` / `+a` (`true`: minus)
    Unary(bool, Box<Expr>),
    /// `a ! b`
    SimpleMap(Box<Expr>, Box<Expr>),
    /// `a => f(args)` — already desugared by the parser into a call with
    /// `a` as first argument when `f` is a static name; this variant keeps
    /// the dynamic form `a => $f(args)`.
    ArrowDynamic(Box<Expr>, Box<Expr>, Vec<Argument>),
    /// `if (c) then a else b`
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `for $x in E, $y in F return R`
    For(Vec<Binding>, Box<Expr>),
    /// `let $x := E, … return R`
    Let(Vec<Binding>, Box<Expr>),
    /// `some`/`every` (`true`: every) `$x in E satisfies C`
    Quantified(bool, Vec<Binding>, Box<Expr>),
    /// `E instance of T`
    InstanceOf(Box<Expr>, SequenceType),
    /// `E treat as T`
    TreatAs(Box<Expr>, SequenceType),
    /// `E castable as T?` (name, `?` allowed empty)
    CastableAs(Box<Expr>, Name, bool),
    /// `E cast as T?`
    CastAs(Box<Expr>, Name, bool),
}
