//! Drehscheibe's XPath engine.
//!
//! * [`tree`] — the read-only arena document (parse, build, navigate);
//! * [`parser`] — a hand-written lexer and precedence-climbing parser,
//!   linear in the expression length, producing [`ast`];
//! * [`compile`] — static analysis into a compact IR ([`Expression`]);
//! * [`eval`] — evaluation against documents with a host ([`Host`]) that
//!   supplies variables and extra functions (the XSLT interpreter);
//! * [`functions`] — the built-in function library;
//! * [`value`], [`datetime`] — the XDM values.

#![warn(missing_docs)]

pub mod arith;
pub mod ast;
pub mod budget;
pub mod cast;
pub mod compare;
pub mod compile;
pub mod datetime;
pub mod error;
pub mod eval;
pub mod functions;
pub(crate) mod interp;
pub(crate) mod ir;
pub mod json;
pub mod lexer;
pub mod parser;
pub mod tree;
pub mod value;

pub use compile::{Expression, HostFunction, HostStatic, NoHostStatic, StaticContext};
pub use error::{Error, Result, Span};
pub use eval::{DocArena, Env, Eval, Focus, Host, NoHost};
pub use tree::{Builder, Document, Node, NodeKind, ParseOptions, QName};
pub use value::{Atomic, Item, Sequence};
