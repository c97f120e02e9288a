//! The XPath 3.1 parser (OWNER: parser helper).

use crate::ast::Expr;
use crate::error::{Error, Result};

/// Parses an XPath 3.1 expression.
pub fn parse(text: &str) -> Result<Expr> {
    let _ = text;
    Err(Error::new("XPST0003", "not yet implemented"))
}
