//! Errors reported when compiling a stylesheet or running a transformation.

use std::path::PathBuf;

/// A stylesheet could not be compiled.
///
/// Every construct outside the supported subset is refused with this error,
/// naming the construct and its position in the stylesheet source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", file.display())]
pub struct CompileError {
    /// The stylesheet module (file) the error was found in; `<string>` for
    /// text compiled without a base path.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number (in characters).
    pub column: usize,
    /// What went wrong, e.g. `unsupported instruction xsl:analyze-string`.
    pub message: String,
}

/// A transformation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// `xsl:message terminate="yes"` was executed.
    #[error("transformation terminated by xsl:message: {message}")]
    Terminated {
        /// The text of the terminating message.
        message: String,
    },
    /// A dynamic error raised while executing an instruction or evaluating
    /// an XPath expression.
    #[error("{}:{line}: {message}", file.display())]
    Dynamic {
        /// The stylesheet module of the failing instruction.
        file: PathBuf,
        /// 1-based line of the failing instruction.
        line: usize,
        /// Error code and description.
        message: String,
    },
    /// The input document could not be used (not well-formed, contains a
    /// DOCTYPE, unknown document handle).
    #[error("input document: {message}")]
    Input {
        /// What is wrong with the input.
        message: String,
    },
    /// A global parameter declared with `required="yes"` was not supplied.
    #[error("required stylesheet parameter `{name}` was not supplied")]
    MissingParam {
        /// The parameter name.
        name: String,
    },
    /// The result tree could not be serialized as requested by `xsl:output`.
    #[error("serialization: {message}")]
    Serialize {
        /// What could not be serialized.
        message: String,
    },
}
