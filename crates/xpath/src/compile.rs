//! Static analysis: AST → IR.
//!
//! Names are resolved against the [`StaticContext`], variables to frame
//! slots (host variables by id, XPath-local `for`/`let`/parameters by
//! slot), function calls bound to builtins or host functions (unknown
//! functions, wrong arity and undeclared variables are static errors),
//! constants folded, and `//name` without positional predicates turned
//! into a single descendant step.

use crate::error::{Error, Result};
use crate::functions::Param;
use crate::tree::QName;

/// Resolves namespace prefixes of the expression's static context.
pub trait Namespaces {
    /// The URI bound to `prefix` (`""` is never asked: unprefixed element
    /// names use [`StaticContext::default_element_namespace`]).
    fn resolve(&self, prefix: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Namespaces for F {
    fn resolve(&self, prefix: &str) -> Option<String> {
        self(prefix)
    }
}

/// A host function as resolved at compile time.
#[derive(Debug, Clone)]
pub struct HostFunction {
    /// Id passed to [`crate::Host::call`].
    pub id: u32,
    /// Parameter types (conversion applied before the call).
    pub params: Vec<Param>,
    /// Append the context item as an extra last argument (e.g. `key()`
    /// needs the context node's root). Absent focus → XPDY0002.
    pub wants_context: bool,
}

/// What the host knows at compile time.
pub trait HostStatic {
    /// Resolves a variable reference to a host variable id.
    fn variable(&self, name: &QName) -> Option<u32>;
    /// Resolves a host function by expanded name and arity (consulted
    /// before the builtins, so a host can override e.g. `fn:format-number`).
    fn function(&self, name: &QName, arity: usize) -> Option<HostFunction> {
        let _ = (name, arity);
        None
    }
}

/// A host without variables or functions.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHostStatic;

impl HostStatic for NoHostStatic {
    fn variable(&self, _name: &QName) -> Option<u32> {
        None
    }
}

/// The static context of an expression.
pub struct StaticContext<'s> {
    /// Prefix → URI (the `xml` prefix is always bound).
    pub namespaces: &'s dyn Namespaces,
    /// Namespace of unprefixed element/type names (`xpath-default-namespace`).
    pub default_element_namespace: String,
    /// XPath 1.0 backwards-compatible mode (XSLT `version="1.0"`).
    pub backwards_compatible: bool,
    /// The host.
    pub host: &'s dyn HostStatic,
}

/// An inline function (or the body of a function item) after compilation.
#[derive(Debug)]
pub struct InlineFn {
    /// Number of parameters.
    pub arity: usize,
    /// Local slots captured from the enclosing scope (copied into the new
    /// frame before the parameters).
    pub captures: Vec<u32>,
    /// Frame size.
    pub(crate) frame: usize,
    /// Parameter types (for coercion).
    pub(crate) params: Vec<Option<crate::ast::SequenceType>>,
    /// The body.
    pub(crate) body: crate::ir::Ir,
}

/// A compiled expression: `Send + Sync`, evaluate many times.
#[derive(Debug)]
pub struct Expression {
    pub(crate) ir: crate::ir::Ir,
    pub(crate) frame: usize,
    pub(crate) xpath1: bool,
    text: String,
}

impl Expression {
    /// Compiles `text` in `ctx`.
    pub fn compile(text: &str, ctx: &StaticContext<'_>) -> Result<Expression> {
        let _ = (text, ctx);
        Err(Error::new("XPST0003", "not yet implemented"))
    }

    /// The expression text.
    pub fn text(&self) -> &str {
        &self.text
    }
}
