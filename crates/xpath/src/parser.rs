//! The XPath 3.1 parser: a hand-written recursive-descent parser with a
//! precedence-climbing (Pratt) core, producing [`crate::ast::Expr`].
//!
//! # Pipeline
//!
//! [`parse`] first runs the [`crate::lexer`] over the whole text (one
//! linear pass, producing a token vector that ends with `Eof`), then walks
//! the tokens with at most three tokens of lookahead. Every token is
//! consumed exactly once, so parsing is linear in the expression length.
//! Every AST node carries the byte [`Span`] from its first to its last
//! token; syntax errors are `XPST0003` with the span of the offending token
//! and a message of the form "expected X, found Y".
//!
//! # Grammar levels (XPath 3.1 §A.1, §A.4)
//!
//! ```text
//! Expr        := ExprSingle ("," ExprSingle)*                 -> Sequence
//! ExprSingle  := for/let/some/every ... | if (...) then .. else ..
//!              | binary operators, precedence climbing:
//!   level  operators                          associativity
//!     1    or                                 left
//!     2    and                                left
//!     3    = != < <= > >= eq ne lt le gt ge   none
//!          is << >>
//!     4    ||                                 left
//!     5    to                                 none
//!     6    + -                                left
//!     7    * div idiv mod                     left
//!     8    union |                            left
//!     9    intersect except                   left
//!    10    instance of SequenceType           none (postfix)
//!    11    treat as SequenceType              none (postfix)
//!    12    castable as SingleType             none (postfix)
//!    13    cast as SingleType                 none (postfix)
//!    14    => ArrowFunctionSpecifier(args)    left (postfix)
//! Unary       := ("-" | "+")* SimpleMap        (signs folded into one node)
//! SimpleMap   := Path ("!" Path)*              left
//! Path        := "/" Relative? | "//" Relative | Relative
//! Relative    := Step (("/" | "//") Step)*
//! Step        := ".." | "@" NodeTest Preds | axis "::" NodeTest Preds
//!              | NodeTest Preds | Postfix
//! Postfix     := Primary ("[" Expr "]" | "(" Args ")" | "?" KeySpec)*
//! Primary     := literal | "$" name | "(" Expr? ")" | "." | f(args) | f#n
//!              | function(...) {...} | map {...} | [...] | array {...}
//!              | "?" KeySpec
//! ```
//!
//! A non-associative level accepts one operator: `a = b = c` and
//! `1 to 2 to 3` are syntax errors, and after `instance of` only operators
//! of a lower level may follow.
//!
//! # Shapes produced
//!
//! * Parentheses around a single expression disappear (the inner node gets
//!   the span including the parentheses); `()` is `Sequence([])`, `(a, b)`
//!   is `Sequence`.
//! * A primary without postfixes is returned bare; with postfixes it is
//!   `Postfix(primary, [...])`.
//! * A relative path consisting of one non-axis step is returned bare
//!   (`$x[1]` is a `Postfix`, not a `Path`); an axis step alone is
//!   `Path(Relative, [step])`. Predicates of axis steps live in
//!   [`Step::Axis`] (they count positions along the axis), predicates of
//!   other primaries in [`Postfix::Predicate`].
//! * `//` between steps becomes a `descendant-or-self::node()` step; a
//!   leading `//` is [`PathStart::RootDescendants`]; a lone `/` is
//!   `Path(Root, [])`. `..` is `parent::node()`; `@x` is `attribute::x`;
//!   an unabbreviated step whose test is `attribute(…)` /
//!   `schema-attribute(…)` defaults to the attribute axis and
//!   `namespace-node()` to the namespace axis.
//! * `E => f(args)` becomes `FunctionCall(f, [E, args…])`;
//!   `E => $f(args)` and `E => (expr)(args)` become `ArrowDynamic`.
//! * A run of unary signs becomes one `Unary(minus, e)` where `minus` is
//!   the parity of the `-` signs (so `--1` is `Unary(false, 1)`): a long
//!   run of signs cannot build a deep tree.
//!
//! # Keywords versus names
//!
//! XPath has no reserved words, so names are classified by the parser
//! from their position:
//!
//! * **Operator position** (just after a complete operand): an unprefixed
//!   name `or`, `and`, `eq`…`ge`, `is`, `to`, `div`, `idiv`, `mod`,
//!   `union`, `intersect`, `except`, `instance`, `treat`, `castable`,
//!   `cast` is an operator; `*` is multiplication; `?` is a lookup; `[` is
//!   a predicate; `(` is a dynamic call. Any other name ends the operand
//!   (it may be a `return`, `then`, `in`, `satisfies`, … of an enclosing
//!   construct, or an error).
//! * **Operand position**: `for`, `let`, `some`, `every` start their
//!   expressions only when followed by `$`; `if` only when followed by
//!   `(`; `function` when followed by `(` starts an inline function; `map`
//!   and `array` followed by `{` are constructors. A name followed by `::`
//!   is an axis; followed by `(` it is a kind test if it is one of the
//!   kind-test names (`node`, `text`, `comment`, `element`, `attribute`,
//!   `document-node`, `processing-instruction`, `namespace-node`,
//!   `schema-element`, `schema-attribute`), a syntax error if it is one of
//!   the other reserved function names of XPath 3.1 §A.3 (`item`,
//!   `empty-sequence`, `map`, `array`, `if`, `switch`, `typeswitch`,
//!   `function`), and a function call otherwise; followed by `#` it is a
//!   named function reference; anything else is a name test on the child
//!   axis. `*` is a wildcard. `?` followed by `,` or `)` inside an argument
//!   list is a placeholder, otherwise a unary lookup.
//!
//! So `div div div` is "child `div` divided by child `div`", `child::if`
//! and `for` are name tests, and `text` differs from `text()`.
//!
//! `map{a:b}` is, per the spec's longest-match rule, the QName `a:b` and
//! therefore a syntax error; the error message suggests writing
//! `map{a : b}`. Occurrence indicators after a sequence type are taken
//! greedily (`4 treat as item() + - 5` reads `item()+`), as the spec says.
//!
//! # Bounded recursion
//!
//! Recursion happens only through [`Parser::expr_single`] (every nested
//! expression: parentheses, arguments, predicates, …) and
//! [`Parser::item_type`] (nested types); both run under
//! `stacker::maybe_grow`, so deep nesting cannot overflow the thread stack.
//! The binary-operator loop recurses at most once per precedence level.
//! A depth counter limits nesting to [`MAX_DEPTH`] levels; it also counts
//! each operator of a left-deep chain (`1+1+…`, `a!b!…`, `$x=>f()=>g()`),
//! so the depth of the produced AST is bounded too and later passes
//! (compiler, `Drop`) never face an arbitrarily deep tree.

use crate::ast::{
    Argument, Axis, BinOp, Binding, Expr, ExprKind, ItemType, KeySpec, KindTest, Literal, Name,
    NameTest, NodeTest, Occurrence, Param, PathStart, Postfix, SequenceType, Step,
};
use crate::error::{Error, Result, Span};
use crate::lexer::{display_name, tokenize, Tok, Token};

/// Maximum nesting depth of an expression (`XPST0003` beyond).
pub const MAX_DEPTH: usize = 1024;

/// Parses an XPath 3.1 expression.
pub fn parse(text: &str) -> Result<Expr> {
    let toks = tokenize(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.expr()?;
    if !matches!(p.peek(), Tok::Eof) {
        return Err(p.unexpected("an operator or the end of the expression"));
    }
    Ok(e)
}

/// Stack that must remain before a recursive step (else a new segment).
const RED_ZONE: usize = 128 * 1024;
/// Size of each additional stack segment.
const STACK_SEGMENT: usize = 2 * 1024 * 1024;

/// What an operator token in operator position means.
#[derive(Clone, Copy)]
enum Infix {
    Bin(BinOp),
    InstanceOf,
    TreatAs,
    CastableAs,
    CastAs,
    Arrow,
}

const COMPARISON: u8 = 3;
const RANGE: u8 = 5;

/// Precedence level of an infix operator (see the module docs).
fn level(op: Infix) -> u8 {
    use BinOp::*;
    match op {
        Infix::Bin(b) => match b {
            Or => 1,
            And => 2,
            GenEq | GenNe | GenLt | GenLe | GenGt | GenGe | ValEq | ValNe | ValLt | ValLe
            | ValGt | ValGe | Is | Precedes | Follows => COMPARISON,
            Concat => 4,
            Range => RANGE,
            Add | Sub => 6,
            Mul | Div | IDiv | Mod => 7,
            Union => 8,
            Intersect | Except => 9,
        },
        Infix::InstanceOf => 10,
        Infix::TreatAs => 11,
        Infix::CastableAs => 12,
        Infix::CastAs => 13,
        Infix::Arrow => 14,
    }
}

/// Whether operators of this level may be chained (`a + b + c`).
fn left_assoc(op: Infix) -> bool {
    match op {
        Infix::Bin(_) => !matches!(level(op), COMPARISON | RANGE),
        Infix::Arrow => true,
        _ => false,
    }
}

fn infix_of(tok: &Tok) -> Option<Infix> {
    use BinOp::*;
    let b = match tok {
        Tok::Eq => GenEq,
        Tok::Ne => GenNe,
        Tok::Lt => GenLt,
        Tok::Le => GenLe,
        Tok::Gt => GenGt,
        Tok::Ge => GenGe,
        Tok::LtLt => Precedes,
        Tok::GtGt => Follows,
        Tok::PipePipe => Concat,
        Tok::Plus => Add,
        Tok::Minus => Sub,
        Tok::Star => Mul,
        Tok::Pipe => Union,
        Tok::Arrow => return Some(Infix::Arrow),
        t => match t.unprefixed()? {
            "or" => Or,
            "and" => And,
            "eq" => ValEq,
            "ne" => ValNe,
            "lt" => ValLt,
            "le" => ValLe,
            "gt" => ValGt,
            "ge" => ValGe,
            "is" => Is,
            "to" => Range,
            "div" => Div,
            "idiv" => IDiv,
            "mod" => Mod,
            "union" => Union,
            "intersect" => Intersect,
            "except" => Except,
            "instance" => return Some(Infix::InstanceOf),
            "treat" => return Some(Infix::TreatAs),
            "castable" => return Some(Infix::CastableAs),
            "cast" => return Some(Infix::CastAs),
            _ => return None,
        },
    };
    Some(Infix::Bin(b))
}

fn axis_of(name: &str) -> Option<Axis> {
    Some(match name {
        "child" => Axis::Child,
        "descendant" => Axis::Descendant,
        "attribute" => Axis::Attribute,
        "self" => Axis::SelfAxis,
        "descendant-or-self" => Axis::DescendantOrSelf,
        "following-sibling" => Axis::FollowingSibling,
        "following" => Axis::Following,
        "namespace" => Axis::Namespace,
        "parent" => Axis::Parent,
        "ancestor" => Axis::Ancestor,
        "preceding-sibling" => Axis::PrecedingSibling,
        "preceding" => Axis::Preceding,
        "ancestor-or-self" => Axis::AncestorOrSelf,
        _ => return None,
    })
}

/// Names that start a kind test when followed by `(`.
const KIND_TESTS: &[&str] = &[
    "node",
    "text",
    "comment",
    "namespace-node",
    "processing-instruction",
    "document-node",
    "element",
    "attribute",
    "schema-element",
    "schema-attribute",
];

/// The reserved function names of XPath 3.1 §A.3 that are not kind tests.
const RESERVED_NON_KIND: &[&str] = &[
    "array",
    "empty-sequence",
    "function",
    "if",
    "item",
    "map",
    "switch",
    "typeswitch",
];

fn join(a: Span, b: Span) -> Span {
    Span {
        start: a.start,
        end: b.end.max(a.end),
    }
}

fn mk(kind: ExprKind, span: Span) -> Expr {
    Expr { kind, span }
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    // ----- token access -------------------------------------------------

    fn tok_at(&self, i: usize) -> &Token {
        // The vector always ends with Eof; clamp lookahead to it.
        let last = self.toks.len().saturating_sub(1);
        &self.toks[i.min(last)]
    }

    fn peek(&self) -> &Tok {
        &self.tok_at(self.pos).tok
    }

    fn peek_n(&self, n: usize) -> &Tok {
        &self.tok_at(self.pos + n).tok
    }

    fn span(&self) -> Span {
        self.tok_at(self.pos).span
    }

    /// The span of the most recently consumed token.
    fn prev_span(&self) -> Span {
        if self.pos == 0 {
            Span::default()
        } else {
            self.tok_at(self.pos - 1).span
        }
    }

    /// Consumes the current token (never moves past `Eof`); its span.
    fn bump(&mut self) -> Span {
        let span = self.span();
        if self.pos < self.toks.len().saturating_sub(1) {
            self.pos += 1;
        }
        span
    }

    fn at(&self, t: &Tok) -> bool {
        self.peek() == t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.at(t) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn unexpected(&self, expected: &str) -> Error {
        Error::syntax(
            format!("expected {expected}, found {}", self.peek().describe()),
            self.span(),
        )
    }

    fn consume(&mut self, t: &Tok) -> Result<Span> {
        if self.at(t) {
            Ok(self.bump())
        } else {
            Err(self.unexpected(&t.describe()))
        }
    }

    fn consume_keyword(&mut self, kw: &str) -> Result<Span> {
        if self.peek().is_keyword(kw) {
            Ok(self.bump())
        } else {
            Err(self.unexpected(&format!("`{kw}`")))
        }
    }

    /// Consumes a name token (QName, NCName or EQName).
    fn name(&mut self, what: &str) -> Result<(Name, Span)> {
        match self.peek() {
            Tok::Name(n) => {
                let n = n.clone();
                Ok((n, self.bump()))
            }
            _ => Err(self.unexpected(what)),
        }
    }

    // ----- depth control ------------------------------------------------

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::syntax(
                format!("expression nested too deeply (more than {MAX_DEPTH} levels)"),
                self.span(),
            ));
        }
        Ok(())
    }

    fn leave(&mut self, n: usize) {
        self.depth = self.depth.saturating_sub(n);
    }

    /// Runs `f` on a stack that grows as needed.
    fn grow<T>(&mut self, f: impl FnOnce(&mut Parser) -> T) -> T {
        stacker::maybe_grow(RED_ZONE, STACK_SEGMENT, || f(self))
    }

    /// Runs `f` one nesting level deeper, on a stack that grows as needed.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Parser) -> Result<T>) -> Result<T> {
        self.enter()?;
        let r = self.grow(f);
        self.leave(1);
        r
    }

    // ----- expressions --------------------------------------------------

    /// `Expr := ExprSingle ("," ExprSingle)*`
    fn expr(&mut self) -> Result<Expr> {
        let first = self.expr_single()?;
        if !self.at(&Tok::Comma) {
            return Ok(first);
        }
        let start = first.span;
        let mut items = vec![first];
        while self.eat(&Tok::Comma) {
            items.push(self.expr_single()?);
        }
        Ok(mk(ExprKind::Sequence(items), join(start, self.prev_span())))
    }

    /// `ExprSingle`: the entry point of all nested expressions.
    fn expr_single(&mut self) -> Result<Expr> {
        self.nested(|p| p.expr_single_inner())
    }

    fn expr_single_inner(&mut self) -> Result<Expr> {
        let t = self.peek();
        let next = self.peek_n(1);
        if matches!(next, Tok::Dollar) {
            if let Some(kw @ ("for" | "let" | "some" | "every")) = t.unprefixed() {
                let kw = kw.to_string();
                return self.flwor_like(&kw);
            }
        }
        if t.is_keyword("if") && matches!(next, Tok::LParen) {
            return self.if_expr();
        }
        self.binary(1)
    }

    /// `for`, `let`, `some`, `every` with their bindings.
    fn flwor_like(&mut self, kw: &str) -> Result<Expr> {
        let start = self.bump();
        let is_let = kw == "let";
        let mut bindings = Vec::new();
        loop {
            let bstart = self.consume(&Tok::Dollar)?;
            let (name, _) = self.name("a variable name")?;
            if is_let {
                self.consume(&Tok::Assign)?;
            } else {
                self.consume_keyword("in")?;
            }
            let expr = self.expr_single()?;
            let span = join(bstart, expr.span);
            bindings.push(Binding { name, expr, span });
            if !self.eat(&Tok::Comma) {
                break;
            }
        }
        let body_kw = match kw {
            "for" | "let" => "return",
            _ => "satisfies",
        };
        self.consume_keyword(body_kw)?;
        let body = Box::new(self.expr_single()?);
        let span = join(start, body.span);
        let kind = match kw {
            "for" => ExprKind::For(bindings, body),
            "let" => ExprKind::Let(bindings, body),
            "some" => ExprKind::Quantified(false, bindings, body),
            _ => ExprKind::Quantified(true, bindings, body),
        };
        Ok(mk(kind, span))
    }

    /// `if ( Expr ) then ExprSingle else ExprSingle`
    fn if_expr(&mut self) -> Result<Expr> {
        let start = self.bump();
        self.consume(&Tok::LParen)?;
        let cond = self.expr()?;
        self.consume(&Tok::RParen)?;
        self.consume_keyword("then")?;
        let then = self.expr_single()?;
        self.consume_keyword("else")?;
        let els = self.expr_single()?;
        let span = join(start, els.span);
        Ok(mk(
            ExprKind::If(Box::new(cond), Box::new(then), Box::new(els)),
            span,
        ))
    }

    /// Precedence climbing over the binary and postfix-type operators
    /// (levels 1–14), starting at level `min`.
    fn binary(&mut self, min: u8) -> Result<Expr> {
        let mut lhs = self.unary()?;
        // Operators above `cap` are not allowed any more (after a
        // non-associative operator of level L, cap = L - 1).
        let mut cap = u8::MAX;
        let mut last_nonassoc: Option<u8> = None;
        let mut chain = 0usize;
        let result = loop {
            let Some(op) = infix_of(self.peek()) else {
                break Ok(lhs);
            };
            let lv = level(op);
            if lv < min {
                break Ok(lhs);
            }
            if lv > cap {
                if last_nonassoc == Some(lv) {
                    let what = if lv == COMPARISON {
                        "comparison operators are not associative: use parentheses, as in `(a = b) = c`"
                    } else if lv == RANGE {
                        "`to` is not associative: use parentheses"
                    } else {
                        "this operator cannot be repeated without parentheses"
                    };
                    break Err(Error::syntax(
                        format!("{what}; found {}", self.peek().describe()),
                        self.span(),
                    ));
                }
                break Ok(lhs);
            }
            let op_span = self.bump();
            let start = lhs.span;
            let next = match op {
                Infix::Bin(b) => match self.grow(|p| p.binary(lv + 1)) {
                    Ok(rhs) => {
                        let span = join(start, rhs.span);
                        Ok(mk(ExprKind::Binary(b, Box::new(lhs), Box::new(rhs)), span))
                    }
                    Err(e) => Err(e),
                },
                Infix::InstanceOf => self
                    .consume_keyword("of")
                    .and_then(|_| self.sequence_type())
                    .map(|t| {
                        let span = join(start, self.prev_span());
                        mk(ExprKind::InstanceOf(Box::new(lhs), t), span)
                    }),
                Infix::TreatAs => self
                    .consume_keyword("as")
                    .and_then(|_| self.sequence_type())
                    .map(|t| {
                        let span = join(start, self.prev_span());
                        mk(ExprKind::TreatAs(Box::new(lhs), t), span)
                    }),
                Infix::CastableAs | Infix::CastAs => self
                    .consume_keyword("as")
                    .and_then(|_| self.single_type())
                    .map(|(name, opt)| {
                        let span = join(start, self.prev_span());
                        let kind = if matches!(op, Infix::CastAs) {
                            ExprKind::CastAs(Box::new(lhs), name, opt)
                        } else {
                            ExprKind::CastableAs(Box::new(lhs), name, opt)
                        };
                        mk(kind, span)
                    }),
                Infix::Arrow => self.arrow(lhs, op_span),
            };
            lhs = match next {
                Ok(e) => e,
                Err(e) => break Err(e),
            };
            if left_assoc(op) {
                cap = lv;
            } else {
                cap = lv - 1;
                last_nonassoc = Some(lv);
            }
            // A chain of operators builds a left-deep tree: count it.
            chain += 1;
            if let Err(e) = self.enter() {
                break Err(e);
            }
        };
        self.leave(chain);
        result
    }

    /// The part after `=>`: `f(args)`, `$f(args)` or `(expr)(args)`.
    fn arrow(&mut self, lhs: Expr, op_span: Span) -> Result<Expr> {
        let start = lhs.span;
        match self.peek() {
            Tok::Name(_) => {
                let (name, _) = self.name("a function name")?;
                let mut args = vec![Argument::Expr(lhs)];
                args.extend(self.arguments()?);
                Ok(mk(
                    ExprKind::FunctionCall(name, args),
                    join(start, self.prev_span()),
                ))
            }
            Tok::Dollar | Tok::LParen => {
                let f = if self.at(&Tok::Dollar) {
                    self.var_ref()?
                } else {
                    self.paren()?
                };
                let args = self.arguments()?;
                Ok(mk(
                    ExprKind::ArrowDynamic(Box::new(lhs), Box::new(f), args),
                    join(start, self.prev_span()),
                ))
            }
            _ => Err(Error::syntax(
                format!(
                    "expected a function name, `$variable` or parenthesized expression after `=>`, found {}",
                    self.peek().describe()
                ),
                join(op_span, self.span()),
            )),
        }
    }

    /// `("-" | "+")* SimpleMap`, the signs folded into one node.
    fn unary(&mut self) -> Result<Expr> {
        let start = self.span();
        let mut signs = 0usize;
        let mut minus = false;
        loop {
            match self.peek() {
                Tok::Minus => minus = !minus,
                Tok::Plus => {}
                _ => break,
            }
            self.bump();
            signs += 1;
        }
        let e = self.simple_map()?;
        if signs == 0 {
            return Ok(e);
        }
        let span = join(start, e.span);
        Ok(mk(ExprKind::Unary(minus, Box::new(e)), span))
    }

    /// `Path ("!" Path)*`
    fn simple_map(&mut self) -> Result<Expr> {
        let mut lhs = self.path()?;
        let mut chain = 0usize;
        let result = loop {
            if !self.at(&Tok::Bang) {
                break Ok(lhs);
            }
            self.bump();
            let rhs = match self.path() {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            let span = join(lhs.span, rhs.span);
            lhs = mk(ExprKind::SimpleMap(Box::new(lhs), Box::new(rhs)), span);
            chain += 1;
            if let Err(e) = self.enter() {
                break Err(e);
            }
        };
        self.leave(chain);
        result
    }

    /// Whether the current token can begin a step of a relative path.
    fn starts_step(&self) -> bool {
        matches!(
            self.peek(),
            Tok::Name(_)
                | Tok::Star
                | Tok::PrefixStar(_)
                | Tok::UriStar(_)
                | Tok::StarLocal(_)
                | Tok::At
                | Tok::Dot
                | Tok::DotDot
                | Tok::Dollar
                | Tok::LParen
                | Tok::LBracket
                | Tok::Question
                | Tok::String(_)
                | Tok::Integer(_)
                | Tok::Decimal(_)
                | Tok::Double(_)
        )
    }

    /// `"/" Relative? | "//" Relative | Relative`
    fn path(&mut self) -> Result<Expr> {
        let start = self.span();
        let lead = match self.peek() {
            Tok::Slash => {
                self.bump();
                // A lone `/` when no step can follow (the spec's
                // leading-lone-slash rule: `/ * 5` is `/*` then an error).
                if !self.starts_step() {
                    return Ok(mk(ExprKind::Path(PathStart::Root, Vec::new()), start));
                }
                PathStart::Root
            }
            Tok::SlashSlash => {
                self.bump();
                if !self.starts_step() {
                    return Err(self.unexpected("a step after `//`"));
                }
                PathStart::RootDescendants
            }
            _ => PathStart::Relative,
        };
        let mut steps = vec![self.step()?];
        loop {
            let sep = match self.peek() {
                Tok::Slash => false,
                Tok::SlashSlash => true,
                _ => break,
            };
            let sep_span = self.bump();
            if sep {
                steps.push(Step::Axis {
                    axis: Axis::DescendantOrSelf,
                    test: NodeTest::Kind(KindTest::AnyNode),
                    predicates: Vec::new(),
                });
            }
            if !self.starts_step() {
                return Err(Error::syntax(
                    format!(
                        "expected a step after `{}`, found {}",
                        if sep { "//" } else { "/" },
                        self.peek().describe()
                    ),
                    join(sep_span, self.span()),
                ));
            }
            steps.push(self.step()?);
        }
        let span = join(start, self.prev_span());
        if lead == PathStart::Relative && steps.len() == 1 {
            if let Some(Step::Expr(_)) = steps.first() {
                if let Some(Step::Expr(e)) = steps.pop() {
                    return Ok(*e);
                }
            }
        }
        Ok(mk(ExprKind::Path(lead, steps), span))
    }

    /// One step: an axis step with predicates, or a postfix expression.
    fn step(&mut self) -> Result<Step> {
        let (axis, explicit) = match self.peek() {
            Tok::DotDot => {
                self.bump();
                let mut predicates = Vec::new();
                while self.at(&Tok::LBracket) {
                    predicates.push(self.predicate()?);
                }
                return Ok(Step::Axis {
                    axis: Axis::Parent,
                    test: NodeTest::Kind(KindTest::AnyNode),
                    predicates,
                });
            }
            Tok::At => {
                self.bump();
                (Axis::Attribute, true)
            }
            Tok::Name(n) if matches!(self.peek_n(1), Tok::ColonColon) => {
                let axis = if n.prefix.is_none() && n.uri.is_none() {
                    axis_of(&n.local)
                } else {
                    None
                };
                let Some(axis) = axis else {
                    return Err(Error::syntax(
                        format!("unknown axis `{}`", display_name(n)),
                        self.span(),
                    ));
                };
                self.bump();
                self.bump();
                (axis, true)
            }
            Tok::Star | Tok::PrefixStar(_) | Tok::UriStar(_) | Tok::StarLocal(_) => {
                (Axis::Child, false)
            }
            Tok::Name(n) => {
                let follows = self.peek_n(1);
                let unprefixed = n.prefix.is_none() && n.uri.is_none();
                let is_primary = match follows {
                    Tok::LParen => !(unprefixed && KIND_TESTS.contains(&n.local.as_str())),
                    Tok::Hash => true,
                    Tok::LBrace => unprefixed && (n.local == "map" || n.local == "array"),
                    _ => false,
                };
                if is_primary {
                    return Ok(Step::Expr(Box::new(self.postfix()?)));
                }
                (Axis::Child, false)
            }
            _ => return Ok(Step::Expr(Box::new(self.postfix()?))),
        };
        let test = self.node_test()?;
        let axis = if explicit {
            axis
        } else {
            match &test {
                NodeTest::Kind(KindTest::Attribute(..) | KindTest::SchemaAttribute(_)) => {
                    Axis::Attribute
                }
                NodeTest::Kind(KindTest::NamespaceNode) => Axis::Namespace,
                _ => axis,
            }
        };
        let mut predicates = Vec::new();
        while self.at(&Tok::LBracket) {
            predicates.push(self.predicate()?);
        }
        Ok(Step::Axis {
            axis,
            test,
            predicates,
        })
    }

    /// `"[" Expr "]"`
    fn predicate(&mut self) -> Result<Expr> {
        self.consume(&Tok::LBracket)?;
        let e = self.expr()?;
        self.consume(&Tok::RBracket)?;
        Ok(e)
    }

    /// A name test or kind test.
    fn node_test(&mut self) -> Result<NodeTest> {
        let t = match self.peek() {
            Tok::Star => NameTest::Any,
            Tok::PrefixStar(p) => NameTest::AnyLocal {
                prefix: Some(p.clone()),
                uri: None,
            },
            Tok::UriStar(u) => NameTest::AnyLocal {
                prefix: None,
                uri: Some(u.clone()),
            },
            Tok::StarLocal(l) => NameTest::AnyNamespace(l.clone()),
            Tok::Name(n) => {
                if matches!(self.peek_n(1), Tok::LParen) {
                    if let Some(local) = self.peek().unprefixed() {
                        if KIND_TESTS.contains(&local) {
                            return Ok(NodeTest::Kind(self.kind_test()?));
                        }
                    }
                    return Err(Error::syntax(
                        format!(
                            "expected a node test, found `{}(`: only kind tests such as `node()` or `element()` may follow an axis",
                            display_name(n)
                        ),
                        self.span(),
                    ));
                }
                NameTest::Name(n.clone())
            }
            _ => return Err(self.unexpected("a node test (a name, `*` or a kind test)")),
        };
        self.bump();
        Ok(NodeTest::Name(t))
    }

    /// `Primary (Predicate | ArgumentList | Lookup)*`
    fn postfix(&mut self) -> Result<Expr> {
        let base = self.primary()?;
        let mut posts = Vec::new();
        loop {
            match self.peek() {
                Tok::LBracket => posts.push(Postfix::Predicate(self.predicate()?)),
                Tok::LParen => posts.push(Postfix::Call(self.arguments()?)),
                Tok::Question => {
                    self.bump();
                    posts.push(Postfix::Lookup(self.key_spec()?));
                }
                _ => break,
            }
        }
        if posts.is_empty() {
            return Ok(base);
        }
        let span = join(base.span, self.prev_span());
        Ok(mk(ExprKind::Postfix(Box::new(base), posts), span))
    }

    /// The key after `?`: NCName, integer, `(Expr)` or `*`.
    fn key_spec(&mut self) -> Result<KeySpec> {
        let k = match self.peek() {
            Tok::Name(n) if n.prefix.is_none() && n.uri.is_none() => KeySpec::Name(n.local.clone()),
            Tok::Integer(i) => KeySpec::Integer(i.clone()),
            Tok::Star => KeySpec::Wildcard,
            Tok::LParen => {
                let e = self.paren()?;
                return Ok(KeySpec::Expr(Box::new(e)));
            }
            _ => {
                return Err(self.unexpected(
                    "a key after `?` (an NCName, an integer, `*` or a parenthesized expression)",
                ))
            }
        };
        self.bump();
        Ok(k)
    }

    /// `"(" (Argument ("," Argument)*)? ")"`
    fn arguments(&mut self) -> Result<Vec<Argument>> {
        self.consume(&Tok::LParen)?;
        let mut args = Vec::new();
        if self.eat(&Tok::RParen) {
            return Ok(args);
        }
        loop {
            if self.at(&Tok::Question) && matches!(self.peek_n(1), Tok::Comma | Tok::RParen) {
                self.bump();
                args.push(Argument::Placeholder);
            } else {
                args.push(Argument::Expr(self.expr_single()?));
            }
            if self.eat(&Tok::Comma) {
                continue;
            }
            if self.eat(&Tok::RParen) {
                return Ok(args);
            }
            return Err(self.unexpected("`,` or `)` in the argument list"));
        }
    }

    /// `"$" EQName`
    fn var_ref(&mut self) -> Result<Expr> {
        let start = self.consume(&Tok::Dollar)?;
        let (name, end) = self.name("a variable name after `$`")?;
        Ok(mk(ExprKind::VarRef(name), join(start, end)))
    }

    /// `"(" Expr? ")"` — a single expression loses its parentheses.
    fn paren(&mut self) -> Result<Expr> {
        let start = self.consume(&Tok::LParen)?;
        if self.at(&Tok::RParen) {
            let end = self.bump();
            return Ok(mk(ExprKind::Sequence(Vec::new()), join(start, end)));
        }
        let mut e = self.expr()?;
        let end = self.consume(&Tok::RParen)?;
        e.span = join(start, end);
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr> {
        let start = self.span();
        let lit = |l: Literal| ExprKind::Literal(l);
        let kind = match self.peek() {
            Tok::String(s) => lit(Literal::String(s.clone())),
            Tok::Integer(s) => lit(Literal::Integer(s.clone())),
            Tok::Decimal(s) => lit(Literal::Decimal(s.clone())),
            Tok::Double(s) => lit(Literal::Double(s.clone())),
            Tok::Dot => ExprKind::ContextItem,
            Tok::Dollar => return self.var_ref(),
            Tok::LParen => return self.paren(),
            Tok::Question => {
                self.bump();
                let k = self.key_spec()?;
                return Ok(mk(ExprKind::UnaryLookup(k), join(start, self.prev_span())));
            }
            Tok::LBracket => return self.square_array(),
            Tok::Name(n) => {
                let n = n.clone();
                return self.named_primary(n);
            }
            _ => return Err(self.unexpected("an expression")),
        };
        self.bump();
        Ok(mk(kind, start))
    }

    /// Primaries that start with a name: calls, `f#n`, inline functions,
    /// map and array constructors.
    fn named_primary(&mut self, n: Name) -> Result<Expr> {
        let start = self.span();
        let unprefixed = n.prefix.is_none() && n.uri.is_none();
        let local = n.local.as_str();
        match self.peek_n(1) {
            Tok::LParen if unprefixed && local == "function" => self.inline_function(),
            Tok::LBrace if unprefixed && local == "map" => self.map_constructor(),
            Tok::LBrace if unprefixed && local == "array" => {
                self.bump();
                let body = self.enclosed()?;
                Ok(mk(
                    ExprKind::CurlyArray(Box::new(body)),
                    join(start, self.prev_span()),
                ))
            }
            Tok::Hash => {
                self.bump();
                self.bump();
                let arity = match self.peek() {
                    Tok::Integer(i) => i.parse::<usize>().map_err(|_| {
                        Error::syntax(format!("function arity `{i}` is too large"), self.span())
                    })?,
                    _ => return Err(self.unexpected("an integer arity after `#`")),
                };
                self.bump();
                Ok(mk(
                    ExprKind::NamedFunctionRef(n, arity),
                    join(start, self.prev_span()),
                ))
            }
            Tok::LParen => {
                if unprefixed && RESERVED_NON_KIND.contains(&local) {
                    let hint = match local {
                        "if" => "an `if` expression must be parenthesized here, as in `(if (c) then a else b)`",
                        "switch" | "typeswitch" => "it is an XQuery expression that XPath does not have",
                        _ => "it is a reserved name that cannot be called unprefixed",
                    };
                    return Err(Error::syntax(
                        format!("`{local}(` is not allowed here: {hint}"),
                        self.span(),
                    ));
                }
                if unprefixed && KIND_TESTS.contains(&local) {
                    return Err(Error::syntax(
                        format!(
                            "`{local}()` is a kind test, not a function: it cannot be used here"
                        ),
                        self.span(),
                    ));
                }
                self.bump();
                let args = self.arguments()?;
                Ok(mk(
                    ExprKind::FunctionCall(n, args),
                    join(start, self.prev_span()),
                ))
            }
            _ => Err(self.unexpected("an expression")),
        }
    }

    /// `"{" Expr? "}"` (an empty body is the empty sequence).
    fn enclosed(&mut self) -> Result<Expr> {
        let start = self.consume(&Tok::LBrace)?;
        if self.at(&Tok::RBrace) {
            let end = self.bump();
            return Ok(mk(ExprKind::Sequence(Vec::new()), join(start, end)));
        }
        let e = self.expr()?;
        self.consume(&Tok::RBrace)?;
        Ok(e)
    }

    /// `function ( ($name (as T)?),* ) (as T)? { Expr? }`
    fn inline_function(&mut self) -> Result<Expr> {
        let start = self.bump();
        self.consume(&Tok::LParen)?;
        let mut params = Vec::new();
        if !self.eat(&Tok::RParen) {
            loop {
                self.consume(&Tok::Dollar)?;
                let (name, _) = self.name("a parameter name")?;
                let ty = if self.peek().is_keyword("as") {
                    self.bump();
                    Some(self.sequence_type()?)
                } else {
                    None
                };
                params.push(Param { name, ty });
                if self.eat(&Tok::Comma) {
                    continue;
                }
                if self.eat(&Tok::RParen) {
                    break;
                }
                return Err(self.unexpected("`,` or `)` in the parameter list"));
            }
        }
        let result = if self.peek().is_keyword("as") {
            self.bump();
            Some(self.sequence_type()?)
        } else {
            None
        };
        let body = self.enclosed()?;
        Ok(mk(
            ExprKind::InlineFunction {
                params,
                result,
                body: Box::new(body),
            },
            join(start, self.prev_span()),
        ))
    }

    /// `map { (ExprSingle : ExprSingle),* }`
    fn map_constructor(&mut self) -> Result<Expr> {
        let start = self.bump();
        self.consume(&Tok::LBrace)?;
        let mut entries = Vec::new();
        if !self.eat(&Tok::RBrace) {
            loop {
                let key = self.expr_single()?;
                if !self.at(&Tok::Colon) {
                    if let Some(qn) = lexed_qname(&key) {
                        return Err(Error::syntax(
                            format!(
                                "expected `:` after the map key, found {}; `{qn}` was read as one prefixed name: write spaces around the `:` (`map {{ a : b }}`)",
                                self.peek().describe()
                            ),
                            key.span,
                        ));
                    }
                    return Err(self.unexpected("`:` after the map key"));
                }
                self.bump();
                let value = self.expr_single()?;
                entries.push((key, value));
                if self.eat(&Tok::Comma) {
                    continue;
                }
                if self.eat(&Tok::RBrace) {
                    break;
                }
                return Err(self.unexpected("`,` or `}` in the map constructor"));
            }
        }
        Ok(mk(ExprKind::Map(entries), join(start, self.prev_span())))
    }

    /// `[ (ExprSingle),* ]`
    fn square_array(&mut self) -> Result<Expr> {
        let start = self.consume(&Tok::LBracket)?;
        let mut members = Vec::new();
        if !self.eat(&Tok::RBracket) {
            loop {
                members.push(self.expr_single()?);
                if self.eat(&Tok::Comma) {
                    continue;
                }
                if self.eat(&Tok::RBracket) {
                    break;
                }
                return Err(self.unexpected("`,` or `]` in the array constructor"));
            }
        }
        Ok(mk(
            ExprKind::SquareArray(members),
            join(start, self.prev_span()),
        ))
    }

    // ----- types --------------------------------------------------------

    /// `empty-sequence() | ItemType Occurrence?`
    fn sequence_type(&mut self) -> Result<SequenceType> {
        if self.peek().is_keyword("empty-sequence") && matches!(self.peek_n(1), Tok::LParen) {
            self.bump();
            self.bump();
            self.consume(&Tok::RParen)?;
            return Ok(SequenceType::Empty);
        }
        let item = self.item_type()?;
        let occ = match self.peek() {
            Tok::Question => Occurrence::Optional,
            Tok::Star => Occurrence::ZeroOrMore,
            Tok::Plus => Occurrence::OneOrMore,
            _ => return Ok(SequenceType::Item(item, Occurrence::One)),
        };
        self.bump();
        Ok(SequenceType::Item(item, occ))
    }

    /// `SingleType := EQName "?"?`
    fn single_type(&mut self) -> Result<(Name, bool)> {
        let (name, _) = self.name("an atomic type name")?;
        if matches!(self.peek(), Tok::LParen) {
            return Err(Error::syntax(
                format!(
                    "expected an atomic type name, found `{}(`: cast targets are atomic types",
                    display_name(&name)
                ),
                self.prev_span(),
            ));
        }
        Ok((name, self.eat(&Tok::Question)))
    }

    /// An item type (recursion point for nested types).
    fn item_type(&mut self) -> Result<ItemType> {
        self.nested(|p| p.item_type_inner())
    }

    fn item_type_inner(&mut self) -> Result<ItemType> {
        if self.eat(&Tok::LParen) {
            let inner = self.item_type()?;
            self.consume(&Tok::RParen)?;
            return Ok(ItemType::Paren(Box::new(inner)));
        }
        let Tok::Name(n) = self.peek() else {
            return Err(self.unexpected("an item type"));
        };
        if !matches!(self.peek_n(1), Tok::LParen) {
            let (n, _) = self.name("an item type")?;
            return Ok(ItemType::Atomic(n));
        }
        let Some(local) = self.peek().unprefixed().map(str::to_string) else {
            return Err(Error::syntax(
                format!("expected an item type, found `{}(`", display_name(n)),
                self.span(),
            ));
        };
        if KIND_TESTS.contains(&local.as_str()) {
            return Ok(ItemType::Kind(self.kind_test()?));
        }
        let name_span = self.span();
        self.bump();
        self.bump();
        match local.as_str() {
            "item" => {
                self.consume(&Tok::RParen)?;
                Ok(ItemType::Item)
            }
            "function" => {
                if self.eat(&Tok::Star) {
                    self.consume(&Tok::RParen)?;
                    return Ok(ItemType::Function(None));
                }
                let mut params = Vec::new();
                if !self.eat(&Tok::RParen) {
                    loop {
                        params.push(self.sequence_type()?);
                        if self.eat(&Tok::Comma) {
                            continue;
                        }
                        if self.eat(&Tok::RParen) {
                            break;
                        }
                        return Err(self.unexpected("`,` or `)` in the function type"));
                    }
                }
                self.consume_keyword("as")?;
                let ret = self.sequence_type()?;
                Ok(ItemType::Function(Some((params, Box::new(ret)))))
            }
            "map" => {
                if self.eat(&Tok::Star) {
                    self.consume(&Tok::RParen)?;
                    return Ok(ItemType::Map(None));
                }
                let (key, _) = self.name("an atomic key type or `*`")?;
                self.consume(&Tok::Comma)?;
                let value = self.sequence_type()?;
                self.consume(&Tok::RParen)?;
                Ok(ItemType::Map(Some((
                    Box::new(ItemType::Atomic(key)),
                    Box::new(value),
                ))))
            }
            "array" => {
                if self.eat(&Tok::Star) {
                    self.consume(&Tok::RParen)?;
                    return Ok(ItemType::Array(None));
                }
                let member = self.sequence_type()?;
                self.consume(&Tok::RParen)?;
                Ok(ItemType::Array(Some(Box::new(member))))
            }
            "empty-sequence" => Err(Error::syntax(
                "`empty-sequence()` cannot take an occurrence indicator or appear inside another type",
                name_span,
            )),
            other => Err(Error::syntax(
                format!("expected an item type, found `{other}(`"),
                name_span,
            )),
        }
    }

    /// A kind test; the current token is its name, followed by `(`.
    fn kind_test(&mut self) -> Result<KindTest> {
        let (n, name_span) = self.name("a kind test")?;
        self.consume(&Tok::LParen)?;
        let t = match n.local.as_str() {
            "node" => KindTest::AnyNode,
            "text" => KindTest::Text,
            "comment" => KindTest::Comment,
            "namespace-node" => KindTest::NamespaceNode,
            "processing-instruction" => {
                let target = match self.peek() {
                    Tok::Name(t) if t.prefix.is_none() && t.uri.is_none() => Some(t.local.clone()),
                    Tok::String(s) => {
                        let norm = s.split_whitespace().collect::<Vec<_>>().join(" ");
                        if !crate::lexer::is_ncname(&norm) {
                            return Err(Error::new(
                                "XPTY0004",
                                format!(
                                    "processing-instruction({s:?}): the target is not an NCName"
                                ),
                            )
                            .at(self.span()));
                        }
                        Some(norm)
                    }
                    _ => None,
                };
                if target.is_some() {
                    self.bump();
                }
                KindTest::Pi(target)
            }
            "document-node" => {
                let inner = if self.at(&Tok::RParen) {
                    None
                } else {
                    match self.peek().unprefixed() {
                        Some("element" | "schema-element")
                            if matches!(self.peek_n(1), Tok::LParen) =>
                        {
                            Some(Box::new(self.kind_test()?))
                        }
                        _ => {
                            return Err(self.unexpected(
                                "`element(…)`, `schema-element(…)` or `)` in `document-node(`",
                            ))
                        }
                    }
                };
                KindTest::Document(inner)
            }
            "element" | "attribute" => {
                let is_element = n.local == "element";
                let mut name = None;
                let mut ty = None;
                if !self.at(&Tok::RParen) {
                    name = Some(match self.peek() {
                        Tok::Star => {
                            self.bump();
                            NameTest::Any
                        }
                        Tok::Name(_) => NameTest::Name(self.name("a name")?.0),
                        _ => return Err(self.unexpected("a name, `*` or `)`")),
                    });
                    if self.eat(&Tok::Comma) {
                        ty = Some(self.name("a type name")?.0);
                        // `element(a, T?)`: nillable; without schema
                        // support it does not change what matches.
                        if is_element {
                            self.eat(&Tok::Question);
                        }
                    }
                }
                if is_element {
                    KindTest::Element(name, ty)
                } else {
                    KindTest::Attribute(name, ty)
                }
            }
            "schema-element" => KindTest::SchemaElement(self.name("an element name")?.0),
            "schema-attribute" => KindTest::SchemaAttribute(self.name("an attribute name")?.0),
            other => {
                return Err(Error::syntax(
                    format!("`{other}` is not a kind test"),
                    name_span,
                ))
            }
        };
        self.consume(&Tok::RParen)?;
        Ok(t)
    }
}

/// The prefixed name a map key was read as, if the key is just `p:l`
/// (a name test or a variable), for the `map{a:b}` hint.
fn lexed_qname(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Path(PathStart::Relative, steps) => match steps.as_slice() {
            [Step::Axis {
                axis: Axis::Child,
                test: NodeTest::Name(NameTest::Name(n)),
                predicates,
            }] if predicates.is_empty() && n.prefix.is_some() => Some(display_name(n)),
            _ => None,
        },
        ExprKind::VarRef(n) if n.prefix.is_some() => Some(format!("${}", display_name(n))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // ----- a compact S-expression rendering of the AST ------------------

    fn n(name: &Name) -> String {
        display_name(name)
    }

    fn op(b: BinOp) -> &'static str {
        use BinOp::*;
        match b {
            Or => "or",
            And => "and",
            GenEq => "=",
            GenNe => "!=",
            GenLt => "<",
            GenLe => "<=",
            GenGt => ">",
            GenGe => ">=",
            ValEq => "eq",
            ValNe => "ne",
            ValLt => "lt",
            ValLe => "le",
            ValGt => "gt",
            ValGe => "ge",
            Is => "is",
            Precedes => "<<",
            Follows => ">>",
            Concat => "||",
            Range => "to",
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "div",
            IDiv => "idiv",
            Mod => "mod",
            Union => "union",
            Intersect => "intersect",
            Except => "except",
        }
    }

    fn axis(a: Axis) -> &'static str {
        match a {
            Axis::Child => "child",
            Axis::Descendant => "descendant",
            Axis::Attribute => "attribute",
            Axis::SelfAxis => "self",
            Axis::DescendantOrSelf => "descendant-or-self",
            Axis::FollowingSibling => "following-sibling",
            Axis::Following => "following",
            Axis::Namespace => "namespace",
            Axis::Parent => "parent",
            Axis::Ancestor => "ancestor",
            Axis::PrecedingSibling => "preceding-sibling",
            Axis::Preceding => "preceding",
            Axis::AncestorOrSelf => "ancestor-or-self",
        }
    }

    fn name_test(t: &NameTest) -> String {
        match t {
            NameTest::Name(x) => n(x),
            NameTest::Any => "*".into(),
            NameTest::AnyLocal {
                prefix: Some(p), ..
            } => format!("{p}:*"),
            NameTest::AnyLocal { uri, .. } => format!("Q{{{}}}*", uri.clone().unwrap_or_default()),
            NameTest::AnyNamespace(l) => format!("*:{l}"),
        }
    }

    fn kind(k: &KindTest) -> String {
        match k {
            KindTest::AnyNode => "node()".into(),
            KindTest::Text => "text()".into(),
            KindTest::Comment => "comment()".into(),
            KindTest::NamespaceNode => "namespace-node()".into(),
            KindTest::Pi(t) => format!("processing-instruction({})", t.clone().unwrap_or_default()),
            KindTest::Document(i) => {
                format!(
                    "document-node({})",
                    i.as_ref().map(|k| kind(k)).unwrap_or_default()
                )
            }
            KindTest::Element(a, b) | KindTest::Attribute(a, b) => {
                let w = if matches!(k, KindTest::Element(..)) {
                    "element"
                } else {
                    "attribute"
                };
                let mut s = format!("{w}({}", a.as_ref().map(name_test).unwrap_or_default());
                if let Some(t) = b {
                    s.push_str(&format!(", {}", n(t)));
                }
                s + ")"
            }
            KindTest::SchemaElement(x) => format!("schema-element({})", n(x)),
            KindTest::SchemaAttribute(x) => format!("schema-attribute({})", n(x)),
        }
    }

    fn item(t: &ItemType) -> String {
        match t {
            ItemType::Item => "item()".into(),
            ItemType::Kind(k) => kind(k),
            ItemType::Atomic(x) => n(x),
            ItemType::Function(None) => "function(*)".into(),
            ItemType::Function(Some((ps, r))) => format!(
                "function({}) as {}",
                ps.iter().map(seq).collect::<Vec<_>>().join(", "),
                seq(r)
            ),
            ItemType::Map(None) => "map(*)".into(),
            ItemType::Map(Some((k, v))) => format!("map({}, {})", item(k), seq(v)),
            ItemType::Array(None) => "array(*)".into(),
            ItemType::Array(Some(m)) => format!("array({})", seq(m)),
            ItemType::Paren(i) => format!("({})", item(i)),
        }
    }

    fn seq(t: &SequenceType) -> String {
        match t {
            SequenceType::Empty => "empty-sequence()".into(),
            SequenceType::Item(i, o) => {
                let occ = match o {
                    Occurrence::One => "",
                    Occurrence::Optional => "?",
                    Occurrence::ZeroOrMore => "*",
                    Occurrence::OneOrMore => "+",
                };
                format!("{}{occ}", item(i))
            }
        }
    }

    fn key(k: &KeySpec) -> String {
        match k {
            KeySpec::Name(s) | KeySpec::Integer(s) => s.clone(),
            KeySpec::Expr(e) => format!("({})", sx(e)),
            KeySpec::Wildcard => "*".into(),
        }
    }

    fn args(a: &[Argument]) -> String {
        a.iter()
            .map(|a| match a {
                Argument::Expr(e) => format!(" {}", sx(e)),
                Argument::Placeholder => " ?".into(),
            })
            .collect()
    }

    fn list(es: &[Expr]) -> String {
        es.iter().map(|e| format!(" {}", sx(e))).collect()
    }

    fn bindings(bs: &[Binding]) -> String {
        bs.iter()
            .map(|b| format!("(${} {})", n(&b.name), sx(&b.expr)))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn step(s: &Step) -> String {
        match s {
            Step::Axis {
                axis: a,
                test,
                predicates,
            } => {
                let t = match test {
                    NodeTest::Name(nt) => name_test(nt),
                    NodeTest::Kind(k) => kind(k),
                };
                let preds: String = predicates.iter().map(|p| format!("[{}]", sx(p))).collect();
                format!("{}::{t}{preds}", axis(*a))
            }
            Step::Expr(e) => sx(e),
        }
    }

    fn sx(e: &Expr) -> String {
        use ExprKind as K;
        match &e.kind {
            K::Literal(Literal::String(s)) => format!("{s:?}"),
            K::Literal(Literal::Integer(s)) => s.clone(),
            K::Literal(Literal::Decimal(s)) => format!("dec:{s}"),
            K::Literal(Literal::Double(s)) => format!("dbl:{s}"),
            K::VarRef(x) => format!("${}", n(x)),
            K::ContextItem => ".".into(),
            K::Sequence(es) if es.is_empty() => "()".into(),
            K::Sequence(es) => format!("(seq{})", list(es)),
            K::FunctionCall(f, a) => format!("(call {}{})", n(f), args(a)),
            K::NamedFunctionRef(f, k) => format!("{}#{k}", n(f)),
            K::InlineFunction {
                params,
                result,
                body,
            } => {
                let ps: Vec<String> = params
                    .iter()
                    .map(|p| match &p.ty {
                        Some(t) => format!("${} as {}", n(&p.name), seq(t)),
                        None => format!("${}", n(&p.name)),
                    })
                    .collect();
                let r = result
                    .as_ref()
                    .map(|r| format!(" as {}", seq(r)))
                    .unwrap_or_default();
                format!("(fn ({}){r} {})", ps.join(", "), sx(body))
            }
            K::Map(entries) => format!(
                "(map{})",
                entries
                    .iter()
                    .map(|(k, v)| format!(" ({} {})", sx(k), sx(v)))
                    .collect::<String>()
            ),
            K::SquareArray(es) => format!("(array{})", list(es)),
            K::CurlyArray(e) => format!("(array{{}} {})", sx(e)),
            K::UnaryLookup(k) => format!("(? {})", key(k)),
            K::Postfix(b, ps) => {
                let ps: String = ps
                    .iter()
                    .map(|p| match p {
                        Postfix::Predicate(e) => format!(" [{}]", sx(e)),
                        Postfix::Call(a) => format!(" (call{})", args(a)),
                        Postfix::Lookup(k) => format!(" (? {})", key(k)),
                    })
                    .collect();
                format!("(postfix {}{ps})", sx(b))
            }
            K::Path(start, steps) => {
                let s = match start {
                    PathStart::Relative => "rel",
                    PathStart::Root => "/",
                    PathStart::RootDescendants => "//",
                };
                let st: String = steps.iter().map(|x| format!(" {}", step(x))).collect();
                format!("(path {s}{st})")
            }
            K::Binary(b, l, r) => format!("({} {} {})", op(*b), sx(l), sx(r)),
            K::Unary(true, x) => format!("(neg {})", sx(x)),
            K::Unary(false, x) => format!("(pos {})", sx(x)),
            K::SimpleMap(l, r) => format!("(! {} {})", sx(l), sx(r)),
            K::ArrowDynamic(l, f, a) => format!("(=> {} {}{})", sx(l), sx(f), args(a)),
            K::If(c, t, f) => format!("(if {} {} {})", sx(c), sx(t), sx(f)),
            K::For(bs, r) => format!("(for {} {})", bindings(bs), sx(r)),
            K::Let(bs, r) => format!("(let {} {})", bindings(bs), sx(r)),
            K::Quantified(every, bs, r) => format!(
                "({} {} {})",
                if *every { "every" } else { "some" },
                bindings(bs),
                sx(r)
            ),
            K::InstanceOf(x, t) => format!("(instance-of {} {})", sx(x), seq(t)),
            K::TreatAs(x, t) => format!("(treat-as {} {})", sx(x), seq(t)),
            K::CastableAs(x, t, o) => {
                format!(
                    "(castable-as {} {}{})",
                    sx(x),
                    n(t),
                    if *o { "?" } else { "" }
                )
            }
            K::CastAs(x, t, o) => {
                format!("(cast-as {} {}{})", sx(x), n(t), if *o { "?" } else { "" })
            }
        }
    }

    fn err(text: &str) -> Error {
        match parse(text) {
            Ok(e) => panic!("{text:?} parsed as {}", sx(&e)),
            Err(e) => e,
        }
    }

    fn check(table: &[(&str, &str)]) {
        let mut bad = Vec::new();
        for (src, want) in table {
            match parse(src) {
                Ok(e) => {
                    let got = sx(&e);
                    if got != *want {
                        bad.push(format!("{src:?}\n   want {want}\n    got {got}"));
                    }
                }
                Err(e) => bad.push(format!(
                    "{src:?}\n   want {want}\n  error {}",
                    e.describe(src)
                )),
            }
        }
        assert!(bad.is_empty(), "\n{}", bad.join("\n"));
    }

    // ----- tests --------------------------------------------------------

    #[test]
    fn literals_and_primaries() {
        check(&[
            ("1", "1"),
            ("1.5", "dec:1.5"),
            (".5", "dec:.5"),
            ("1.", "dec:1."),
            ("1e3", "dbl:1e3"),
            ("1.e3", "dbl:1.e3"),
            ("'it''s'", "\"it's\""),
            ("\"a\"\"b\"", "\"a\\\"b\""),
            ("$x", "$x"),
            ("$ p:x", "$p:x"),
            ("$Q{urn:a}x", "$Q{urn:a}x"),
            (".", "."),
            ("()", "()"),
            ("(1)", "1"),
            ("((1))", "1"),
            ("(1, 2)", "(seq 1 2)"),
            ("1, 2, 3", "(seq 1 2 3)"),
            ("f()", "(call f)"),
            ("fn:concat('a', 'b')", "(call fn:concat \"a\" \"b\")"),
            ("Q{urn:x}f(1)", "(call Q{urn:x}f 1)"),
            ("f(?, 1)", "(call f ? 1)"),
            ("f(?)", "(call f ?)"),
            ("f(?a)", "(call f (? a))"),
            ("concat#3", "concat#3"),
            ("fn:abs#1(-1)", "(postfix fn:abs#1 (call (neg 1)))"),
            ("$f(1, ?)", "(postfix $f (call 1 ?))"),
            ("$f(1)(2)", "(postfix $f (call 1) (call 2))"),
            ("(1, 2)[2]", "(postfix (seq 1 2) [2])"),
            ("$x[1][2]", "(postfix $x [1] [2])"),
        ]);
    }

    #[test]
    fn precedence_and_associativity() {
        check(&[
            ("1 - 2 - 3", "(- (- 1 2) 3)"),
            ("1 + 2 * 3", "(+ 1 (* 2 3))"),
            ("(1 + 2) * 3", "(* (+ 1 2) 3)"),
            (
                "a or b and c",
                "(or (path rel child::a) (and (path rel child::b) (path rel child::c)))",
            ),
            (
                "a and b or c",
                "(or (and (path rel child::a) (path rel child::b)) (path rel child::c))",
            ),
            ("-1 + 2", "(+ (neg 1) 2)"),
            ("- -1", "(pos 1)"),
            ("-+-1", "(pos 1)"),
            ("--1", "(pos 1)"),
            ("+-1", "(neg 1)"),
            ("1 to 3", "(to 1 3)"),
            ("1 + 1 to 3", "(to (+ 1 1) 3)"),
            ("1 = 2 or 3 < 4", "(or (= 1 2) (< 3 4))"),
            ("1 to 2 = 3 to 4", "(= (to 1 2) (to 3 4))"),
            ("$a || $b || $c", "(|| (|| $a $b) $c)"),
            ("1 || 2 = 3", "(= (|| 1 2) 3)"),
            ("$a eq $b", "(eq $a $b)"),
            ("$a is $b", "(is $a $b)"),
            ("$a << $b", "(<< $a $b)"),
            ("$a >> $b", "(>> $a $b)"),
            ("$a != $b", "(!= $a $b)"),
            ("$a >= $b", "(>= $a $b)"),
            (
                "a | b union c",
                "(union (union (path rel child::a) (path rel child::b)) (path rel child::c))",
            ),
            (
                "a | b intersect c",
                "(union (path rel child::a) (intersect (path rel child::b) (path rel child::c)))",
            ),
            (
                "a except b",
                "(except (path rel child::a) (path rel child::b))",
            ),
            (
                "1 * 2 div 3 idiv 4 mod 5",
                "(mod (idiv (div (* 1 2) 3) 4) 5)",
            ),
            ("$a * - $b", "(* $a (neg $b))"),
            ("1 + 2 | 3", "(+ 1 (union 2 3))"),
            ("$x instance of xs:integer+", "(instance-of $x xs:integer+)"),
            (
                "$x instance of xs:integer and true()",
                "(and (instance-of $x xs:integer) (call true))",
            ),
            ("1 + $x instance of item()", "(+ 1 (instance-of $x item()))"),
            (
                "$x treat as xs:string? instance of item()*",
                "(instance-of (treat-as $x xs:string?) item()*)",
            ),
            ("$x cast as xs:integer?", "(cast-as $x xs:integer?)"),
            ("$x castable as xs:integer", "(castable-as $x xs:integer)"),
            (
                "$x cast as xs:integer castable as xs:string",
                "(castable-as (cast-as $x xs:integer) xs:string)",
            ),
            ("-$x cast as xs:double", "(cast-as (neg $x) xs:double)"),
            ("4 treat as item() + - 5", "(- (treat-as 4 item()+) 5)"),
            ("$x => f()", "(call f $x)"),
            ("$x => f(1, 2)", "(call f $x 1 2)"),
            ("$x => f() => g(?)", "(call g (call f $x) ?)"),
            ("-$x => abs()", "(call abs (neg $x))"),
            ("$x => $f(1)", "(=> $x $f 1)"),
            ("$x => (f#1)()", "(=> $x f#1)"),
            (
                "$s => upper-case() || 'x'",
                "(|| (call upper-case $s) \"x\")",
            ),
            ("$a ! $b ! $c", "(! (! $a $b) $c)"),
            ("-$a ! $b", "(neg (! $a $b))"),
            ("a!b", "(! (path rel child::a) (path rel child::b))"),
            (
                "a/b!c",
                "(! (path rel child::a child::b) (path rel child::c))",
            ),
        ]);
    }

    #[test]
    fn paths() {
        check(
            &[
                ("/", "(path /)"),
                ("/a", "(path / child::a)"),
                ("//a", "(path // child::a)"),
                (
                    "a/b[1]//c",
                    "(path rel child::a child::b[1] descendant-or-self::node() child::c)",
                ),
                ("@*", "(path rel attribute::*)"),
                ("@x", "(path rel attribute::x)"),
                ("..", "(path rel parent::node())"),
                ("../@id", "(path rel parent::node() attribute::id)"),
                ("..[1]", "(path rel parent::node()[1])"),
                (".[1]", "(postfix . [1])"),
                ("@node()", "(path rel attribute::node())"),
                ("@*:l", "(path rel attribute::*:l)"),
                ("-a/b", "(neg (path rel child::a child::b))"),
                ("map:get($m, 'a')", "(call map:get $m \"a\")"),
                ("xs:integer('1')", "(call xs:integer \"1\")"),
                ("Q{}l", "(path rel child::Q{}l)"),
                ("./a", "(path rel . child::a)"),
                ("a/.", "(path rel child::a .)"),
                ("*", "(path rel child::*)"),
                ("p:*", "(path rel child::p:*)"),
                ("*:l", "(path rel child::*:l)"),
                ("Q{urn:x}*", "(path rel child::Q{urn:x}*)"),
                ("Q{urn:x}a", "(path rel child::Q{urn:x}a)"),
                (
                    "ancestor-or-self::x[2]",
                    "(path rel ancestor-or-self::x[2])",
                ),
                (
                    "following-sibling::*[1][@a]",
                    "(path rel following-sibling::*[1][(path rel attribute::a)])",
                ),
                ("namespace::*", "(path rel namespace::*)"),
                ("self::node()", "(path rel self::node())"),
                ("text()", "(path rel child::text())"),
                ("node()", "(path rel child::node())"),
                ("comment()", "(path rel child::comment())"),
                (
                    "processing-instruction()",
                    "(path rel child::processing-instruction())",
                ),
                (
                    "processing-instruction(xml-stylesheet)",
                    "(path rel child::processing-instruction(xml-stylesheet))",
                ),
                (
                    "processing-instruction(' pi ')",
                    "(path rel child::processing-instruction(pi))",
                ),
                ("attribute()", "(path rel attribute::attribute())"),
                ("attribute(id)", "(path rel attribute::attribute(id))"),
                ("child::attribute(id)", "(path rel child::attribute(id))"),
                ("namespace-node()", "(path rel namespace::namespace-node())"),
                (
                    "element(a, xs:untyped)",
                    "(path rel child::element(a, xs:untyped))",
                ),
                (
                    "element(*, xs:anyType?)",
                    "(path rel child::element(*, xs:anyType))",
                ),
                (
                    "document-node(element(a))",
                    "(path rel child::document-node(element(a)))",
                ),
                ("schema-element(a)", "(path rel child::schema-element(a))"),
                ("$x/a", "(path rel $x child::a)"),
                ("$x//a", "(path rel $x descendant-or-self::node() child::a)"),
                (
                    "(a|b)/c",
                    "(path rel (union (path rel child::a) (path rel child::b)) child::c)",
                ),
                ("f()/a[1]", "(path rel (call f) child::a[1])"),
                ("(a)[1]", "(postfix (path rel child::a) [1])"),
                ("/a/b", "(path / child::a child::b)"),
                (
                    "//a//b",
                    "(path // child::a descendant-or-self::node() child::b)",
                ),
                ("/ * 5", "ERR"),
                ("(/) * 5", "(* (path /) 5)"),
                ("/ = 1", "(= (path /) 1)"),
                (
                    "a/(b, c)",
                    "(path rel child::a (seq (path rel child::b) (path rel child::c)))",
                ),
                ("a/'x'", "(path rel child::a \"x\")"),
                ("$m?k", "(postfix $m (? k))"),
                ("$m?1", "(postfix $m (? 1))"),
                ("$m?*", "(postfix $m (? *))"),
                ("$m?($k)", "(postfix $m (? ($k)))"),
                ("$m?k?l[1]", "(postfix $m (? k) (? l) [1])"),
                ("?*", "(? *)"),
                ("?name", "(? name)"),
                ("a[?x = 1]", "(path rel child::a[(= (? x) 1)])"),
            ]
            .iter()
            .filter(|(_, w)| *w != "ERR")
            .copied()
            .collect::<Vec<_>>(),
        );
        assert_eq!(err("/ * 5").code, "XPST0003");
    }

    #[test]
    fn keywords_as_names() {
        check(&[
            (
                "div div div",
                "(div (path rel child::div) (path rel child::div))",
            ),
            ("div", "(path rel child::div)"),
            ("child::if", "(path rel child::if)"),
            ("if", "(path rel child::if)"),
            ("for", "(path rel child::for)"),
            ("text", "(path rel child::text)"),
            ("text/node", "(path rel child::text child::node)"),
            (
                "and and or",
                "(and (path rel child::and) (path rel child::or))",
            ),
            (
                "or or and and and",
                "(or (path rel child::or) (and (path rel child::and) (path rel child::and)))",
            ),
            (
                "mod mod mod",
                "(mod (path rel child::mod) (path rel child::mod))",
            ),
            ("return", "(path rel child::return)"),
            ("map", "(path rel child::map)"),
            ("function", "(path rel child::function)"),
            ("child::element", "(path rel child::element)"),
            ("@div", "(path rel attribute::div)"),
            ("a-b", "(path rel child::a-b)"),
            ("a -b", "(- (path rel child::a) (path rel child::b))"),
            ("a - b", "(- (path rel child::a) (path rel child::b))"),
            ("$a-1", "$a-1"),
            ("$a -1", "(- $a 1)"),
            ("* * *", "(* (path rel child::*) (path rel child::*))"),
            ("if/then", "(path rel child::if child::then)"),
            (
                "for $for in for return for",
                "(for ($for (path rel child::for)) (path rel child::for))",
            ),
            ("let $x := 1 return $x", "(let ($x 1) $x)"),
            (
                "instance instance of item()",
                "(instance-of (path rel child::instance) item())",
            ),
            ("to to to", "(to (path rel child::to) (path rel child::to))"),
            ("union/union", "(path rel child::union child::union)"),
            ("item", "(path rel child::item)"),
            ("array", "(path rel child::array)"),
        ]);
    }

    #[test]
    fn flwor_if_quantified() {
        check(&[
            (
                "for $x in 1 to 3 return $x * 2",
                "(for ($x (to 1 3)) (* $x 2))",
            ),
            (
                "for $x in a, $y in b return ($x, $y)",
                "(for ($x (path rel child::a)) ($y (path rel child::b)) (seq $x $y))",
            ),
            (
                "let $a := 1, $b := $a + 1 return $b",
                "(let ($a 1) ($b (+ $a 1)) $b)",
            ),
            (
                "some $x in (1, 2) satisfies $x = 2",
                "(some ($x (seq 1 2)) (= $x 2))",
            ),
            (
                "every $x in a satisfies $x",
                "(every ($x (path rel child::a)) $x)",
            ),
            (
                "if (a) then b else c",
                "(if (path rel child::a) (path rel child::b) (path rel child::c))",
            ),
            (
                "if (1, 2) then 3 else if (4) then 5 else 6",
                "(if (seq 1 2) 3 (if 4 5 6))",
            ),
            ("1 + (if (1) then 2 else 3)", "(+ 1 (if 1 2 3))"),
            (
                "f(if (1) then 2 else 3, for $x in 1 return $x)",
                "(call f (if 1 2 3) (for ($x 1) $x))",
            ),
            (
                "for $x in 1 return for $y in 2 return $x + $y",
                "(for ($x 1) (for ($y 2) (+ $x $y)))",
            ),
        ]);
    }

    #[test]
    fn functions_maps_arrays() {
        check(&[
            ("function() { 1 }", "(fn () 1)"),
            ("function() {}", "(fn () ())"),
            (
                "function($a as xs:integer) as xs:string { string($a) }",
                "(fn ($a as xs:integer) as xs:string (call string $a))",
            ),
            (
                "function($a, $b) { $a + $b }(1, 2)",
                "(postfix (fn ($a, $b) (+ $a $b)) (call 1 2))",
            ),
            ("map {}", "(map)"),
            ("map { 'a' : 1, 'b' : 2 }", "(map (\"a\" 1) (\"b\" 2))"),
            ("map{\"a\":1}", "(map (\"a\" 1))"),
            ("map{$k:$v}", "(map ($k $v))"),
            (
                "map { a : b }",
                "(map ((path rel child::a) (path rel child::b)))",
            ),
            (
                "map{a :b}",
                "(map ((path rel child::a) (path rel child::b)))",
            ),
            ("map{1:2}", "(map (1 2))"),
            (
                "map { 'k' : map { 'n' : [1, 2] } }",
                "(map (\"k\" (map (\"n\" (array 1 2)))))",
            ),
            ("[]", "(array)"),
            ("[1, (2, 3)]", "(array 1 (seq 2 3))"),
            ("array { 1, 2 }", "(array{} (seq 1 2))"),
            ("array {}", "(array{} ())"),
            ("[1, 2](1)", "(postfix (array 1 2) (call 1))"),
            ("[1, 2]?1", "(postfix (array 1 2) (? 1))"),
            ("map{'a':1}?a", "(postfix (map (\"a\" 1)) (? a))"),
        ]);
    }

    #[test]
    fn sequence_types() {
        check(&[
            (
                "$x instance of empty-sequence()",
                "(instance-of $x empty-sequence())",
            ),
            ("$x instance of item()?", "(instance-of $x item()?)"),
            ("$x instance of function(*)", "(instance-of $x function(*))"),
            (
                "$x instance of function(xs:string, item()*) as item()",
                "(instance-of $x function(xs:string, item()*) as item())",
            ),
            (
                "$x instance of function() as empty-sequence()",
                "(instance-of $x function() as empty-sequence())",
            ),
            ("$x instance of map(*)", "(instance-of $x map(*))"),
            (
                "$x instance of map(xs:string, item()*)",
                "(instance-of $x map(xs:string, item()*))",
            ),
            ("$x instance of array(*)", "(instance-of $x array(*))"),
            (
                "$x instance of array(xs:integer+)",
                "(instance-of $x array(xs:integer+))",
            ),
            ("$x instance of (node())*", "(instance-of $x (node())*)"),
            ("$x instance of element(a)+", "(instance-of $x element(a)+)"),
            (
                "$x instance of document-node()",
                "(instance-of $x document-node())",
            ),
            (
                "$x instance of attribute(*, xs:ID)",
                "(instance-of $x attribute(*, xs:ID))",
            ),
            (
                "$x instance of Q{http://www.w3.org/2001/XMLSchema}integer",
                "(instance-of $x Q{http://www.w3.org/2001/XMLSchema}integer)",
            ),
            (
                "$x treat as map(xs:string, map(*))",
                "(treat-as $x map(xs:string, map(*)))",
            ),
        ]);
    }

    #[test]
    fn spans() {
        let text = "1 + f($x)[2]";
        let e = parse(text).unwrap();
        assert_eq!(e.span, Span::new(0, 12));
        let ExprKind::Binary(_, l, r) = &e.kind else {
            panic!()
        };
        assert_eq!(l.span, Span::new(0, 1));
        assert_eq!(r.span, Span::new(4, 12));
        let ExprKind::Postfix(base, _) = &r.kind else {
            panic!()
        };
        assert_eq!(base.span, Span::new(4, 9));
        let e = parse(" (1) ").unwrap();
        assert_eq!(e.span, Span::new(1, 4));
        let e = parse("for $x in a return $x").unwrap();
        let ExprKind::For(bs, _) = &e.kind else {
            panic!()
        };
        assert_eq!(bs[0].span, Span::new(4, 11));
        assert_eq!(e.span, Span::new(0, 21));
    }

    #[test]
    fn errors_say_what_and_where() {
        let cases: &[(&str, u32, &str)] = &[
            ("1 +", 3, "expected an expression, found end of expression"),
            ("(1", 2, "expected `)`, found end of expression"),
            ("f(1 2)", 4, "`,` or `)`"),
            ("1 2", 2, "found number `2`"),
            ("a[1", 3, "expected `]`"),
            ("1 = 2 = 3", 6, "not associative"),
            ("1 to 2 to 3", 7, "not associative"),
            (
                "$x instance of xs:integer instance of item()",
                26,
                "cannot be repeated",
            ),
            ("if (1) then 2", 13, "expected `else`"),
            ("for $x in 1 satisfies 2", 12, "expected `return`"),
            ("some $x in 1 return 2", 13, "expected `satisfies`"),
            ("let $x = 1 return $x", 7, "expected `:=`"),
            ("item()", 0, "reserved name"),
            ("1 + if (1) then 2 else 3", 4, "must be parenthesized"),
            ("foo::a", 0, "unknown axis `foo`"),
            ("child::f()", 7, "expected a node test"),
            ("map{a:b}", 4, "`a:b` was read as one prefixed name"),
            ("$m?p:k", 3, "a key after `?`"),
            ("$x cast as item()", 11, "atomic type"),
            ("a/", 1, "expected a step after `/`"),
            ("//", 2, "a step after `//`"),
            ("$", 1, "a variable name"),
            ("f#x", 2, "integer arity"),
            ("10div 3", 0, "separated"),
            ("'abc", 0, "unterminated string"),
            ("1 => 2", 2, "after `=>`"),
            ("switch(1)", 0, "XQuery"),
            ("$x instance of foo(", 15, "item type"),
            ("element(a", 9, "expected `)`"),
        ];
        for (src, at, msg) in cases {
            let e = err(src);
            assert_eq!(e.code, "XPST0003", "{src}: {e}");
            assert_eq!(
                e.span.map(|s| s.start),
                Some(*at),
                "{src}: {}",
                e.describe(src)
            );
            assert!(
                e.message.contains(msg),
                "{src}: {:?} lacks {msg:?}",
                e.message
            );
        }
        assert_eq!(err("processing-instruction('a b')").code, "XPTY0004");
    }

    fn nest(depth: usize, open: &str, inner: &str, close: &str) -> String {
        let mut s = String::with_capacity(depth * (open.len() + close.len()) + inner.len());
        for _ in 0..depth {
            s.push_str(open);
        }
        s.push_str(inner);
        for _ in 0..depth {
            s.push_str(close);
        }
        s
    }

    /// Runs `f` on a thread with a small stack, to prove the parser's
    /// recursion is bounded; the result comes back to the (larger) test
    /// thread, where the derived, recursive `Drop` of a deep AST runs.
    fn small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn deep_nesting_parses() {
        let kinds: &[(&str, &str, &str)] = &[
            ("(", "1", ")"),
            ("f(", "1", ")"),
            ("a[", "1", "]"),
            ("$x[", "1", "]"),
            ("1 + (", "1", ")"),
            ("(1 * ", "1", ")"),
            ("-(", "1", ")"),
            ("[", "1", "]"),
            ("map{1:", "1", "}"),
            ("if (1) then 2 else ", "3", ""),
            ("for $x in 1 return ", "$x", ""),
            ("function() { ", "1", " }"),
        ];
        for &(open, inner, close) in kinds {
            for depth in [200, 1000] {
                let text = nest(depth, open, inner, close);
                let r = small_stack(move || parse(&text));
                assert!(r.is_ok(), "{open}…{close} × {depth}: {:?}", r.err());
            }
        }
        for depth in [200, 1000] {
            let text = format!("1 instance of {}", nest(depth, "array(", "item()", ")"));
            assert!(small_stack(move || parse(&text)).is_ok());
        }
        // Every precedence level open at once, 1000 deep.
        let text = nest(
            1000,
            "1 or 2 and 3 = 4 || 5 to 6 + 7 * 8 | 9 intersect - 10 ! 11 => f(",
            "1",
            ")",
        );
        assert!(small_stack(move || parse(&text)).is_ok());
        // Depth 200 of everything mixed: each level is a call, a
        // predicate, parentheses and an addition.
        let text = nest(200, "f(a[(1 + ", "1", ")])");
        let e = small_stack(move || parse(&text));
        assert!(e.is_ok());
    }

    #[test]
    fn nesting_is_linear_depth_100_and_1000() {
        let (shallow, deep) = small_stack(|| {
            (
                parse(&nest(100, "(", "1", ")")),
                parse(&nest(1000, "(", "1", ")")),
            )
        });
        assert_eq!(sx(&shallow.unwrap()), "1");
        assert_eq!(sx(&deep.unwrap()), "1");
    }

    #[test]
    fn long_flat_constructs_parse() {
        let results = small_stack(|| {
            // Flat lists are vectors in the AST, not nesting.
            let steps = vec!["a"; 20_000].join("/");
            let seq = vec!["1"; 20_000].join(", ");
            let args = format!("f({})", vec!["1"; 20_000].join(", "));
            let preds = format!("a{}", "[1]".repeat(20_000));
            let signs = format!("{}1", "-".repeat(20_000));
            // A left-deep operator chain counts towards the depth.
            let sum = vec!["1"; 1000].join(" + ");
            [steps, seq, args, preds, signs, sum].map(|t| parse(&t))
        });
        for r in &results {
            assert!(r.is_ok(), "{:?}", r.as_ref().err());
        }
        assert_eq!(sx(results[4].as_ref().unwrap()), "(pos 1)");
    }

    #[test]
    fn too_deep_is_an_error_not_a_crash() {
        small_stack(|| {
            let e = parse(&nest(MAX_DEPTH + 10, "(", "1", ")")).unwrap_err();
            assert_eq!(e.code, "XPST0003");
            assert!(e.message.contains("nested too deeply"));
            let sum = vec!["1"; MAX_DEPTH + 10].join("+");
            assert!(parse(&sum)
                .unwrap_err()
                .message
                .contains("nested too deeply"));
            let chain = vec!["$x"; MAX_DEPTH + 10].join("!");
            assert!(parse(&chain)
                .unwrap_err()
                .message
                .contains("nested too deeply"));
            let text = format!(
                "1 instance of {}",
                nest(MAX_DEPTH + 10, "array(", "item()", ")")
            );
            assert!(parse(&text)
                .unwrap_err()
                .message
                .contains("nested too deeply"));
            let text = nest(100_000, "f(", "", ")");
            assert!(parse(&text)
                .unwrap_err()
                .message
                .contains("nested too deeply"));
        });
    }
}
