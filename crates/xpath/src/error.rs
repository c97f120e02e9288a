//! Errors of the XPath engine: static (compile-time) and dynamic.

use std::fmt;

/// A position in an expression: byte offset and 1-based line/column in the
/// expression text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Byte offset of the start.
    pub start: u32,
    /// Byte offset just after the end.
    pub end: u32,
}

impl Span {
    /// A span from byte offsets.
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// 1-based (line, column in characters) of `start` within `text`.
    pub fn line_col(&self, text: &str) -> (usize, usize) {
        let upto = text.get(..self.start as usize).unwrap_or(text);
        let line = upto.matches('\n').count() + 1;
        let col = upto.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, col)
    }
}

/// An XPath error: the W3C error code (e.g. `XPST0017`), a message and,
/// for static errors, where in the expression it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    /// W3C error code such as `XPST0003` or `FORG0001`, or an `XTDE`/`FOxx`
    /// code raised through a host.
    pub code: String,
    /// Human-readable description.
    pub message: String,
    /// Position in the expression text, for static errors.
    pub span: Option<Span>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl Error {
    /// A new error with a code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            code: code.into(),
            message: message.into(),
            span: None,
        }
    }

    /// The same error, located at `span`.
    pub fn at(mut self, span: Span) -> Error {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }

    /// `XPST0003`: syntax error.
    pub fn syntax(message: impl Into<String>, span: Span) -> Error {
        Error::new("XPST0003", message).at(span)
    }

    /// `XPTY0004`: type error.
    pub fn type_error(message: impl Into<String>) -> Error {
        Error::new("XPTY0004", message)
    }

    /// `FORG0001`: invalid value for cast/constructor.
    pub fn invalid_value(message: impl Into<String>) -> Error {
        Error::new("FORG0001", message)
    }

    /// `XPDY0002`: context item absent.
    pub fn no_context() -> Error {
        Error::new("XPDY0002", "the context item is absent")
    }

    /// Renders the error with the line/column of its span in `text`.
    pub fn describe(&self, text: &str) -> String {
        match self.span {
            Some(s) => {
                let (l, c) = s.line_col(text);
                format!("{} at line {l}, column {c} of `{text}`", self)
            }
            None => self.to_string(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
