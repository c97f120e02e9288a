//! Secrets: where they come from and their resolved, redacted value.

use std::fmt;
use std::path::PathBuf;

/// A secret value that never shows up in `Debug` or `Display` output
/// (both print `***`). Use [`SecretString::expose`] where the value is
/// really needed (an `Authorization` header, an SMTP login).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret was taken from. TOML: `{ env = "NAME" }`,
/// `{ file = "path" }` or `{ value = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable (its name).
    Env(String),
    /// A file (resolved path); one trailing line break is removed.
    File(PathBuf),
    /// Written literally into the configuration (demo and tests only).
    Value,
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(name) => write!(f, "env:{name}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Value => f.write_str("value"),
        }
    }
}

/// A secret resolved at load time, together with its source.
///
/// `Debug` shows the source (an env variable name or a file path is not
/// secret) and `***` for the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    /// Where the value came from.
    pub source: SecretSource,
    /// The resolved value.
    pub value: SecretString,
}

impl Secret {
    /// A secret given literally (for tests and programmatic configs).
    pub fn from_value(value: impl Into<String>) -> Self {
        Self {
            source: SecretSource::Value,
            value: SecretString::new(value),
        }
    }

    /// The secret value itself.
    pub fn expose(&self) -> &str {
        self.value.expose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret {
            source: SecretSource::Env("HUB_TOKEN".into()),
            value: SecretString::new("hunter2-very-secret"),
        };
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("***"));
        assert!(dbg.contains("HUB_TOKEN"));
        assert_eq!(format!("{}", s.value), "***");
        assert_eq!(format!("{:?}", s.value), "***");
        assert_eq!(format!("{:#?}", s.value), "***");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }
}
