//! An OASIS XML Catalogs 1.1 reader: maps schema URIs and system
//! identifiers to local files.
//!
//! Supported entries (namespace [`CATALOG_NS`]), in `catalog` or `group`:
//!
//! | entry | maps |
//! |---|---|
//! | `<uri name="N" uri="F"/>` | the URI `N` to the file `F` |
//! | `<system systemId="N" uri="F"/>` | the system identifier `N` to `F` |
//! | `<rewriteURI uriStartString="P" rewritePrefix="D"/>` | `P…` to `D…` |
//! | `<rewriteSystem systemIdStartString="P" rewritePrefix="D"/>` | `P…` to `D…` |
//! | `<uriSuffix uriSuffix="S" uri="F"/>` | any URI ending in `S` to `F` |
//! | `<systemSuffix systemSuffix="S" uri="F"/>` | any system id ending in `S` to `F` |
//! | `<nextCatalog catalog="C"/>` | consult catalog `C` when nothing here matched |
//!
//! A relative `uri`, `rewritePrefix` or `catalog` is relative to the
//! directory of the catalog file that contains it; `file:` URLs are
//! accepted, any other scheme (`http:`, …) is an error, because the hub
//! never fetches a schema from the network. `public` and `delegatePublic`
//! entries are ignored (schemas are located by URI, never by public
//! identifier); `delegateURI`, `delegateSystem` and `xml:base` are
//! refused as unsupported rather than silently ignored. Elements of
//! other namespaces are ignored, as the specification requires.
//!
//! The hub does not distinguish URIs from system identifiers when it
//! resolves (a schema location or an `xs:import/@schemaLocation` can be
//! either), so [`Catalog::resolve`] consults both kinds of entries: first
//! an exact match (`uri`, `system`; the first in document order wins),
//! then the longest matching rewrite start string, then the longest
//! matching suffix, then each `nextCatalog` in document order.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// The namespace of OASIS XML catalogs.
pub const CATALOG_NS: &str = "urn:oasis:names:tc:entity:xmlns:xml:catalog";

/// How deep `nextCatalog` chains may go (the loaded catalog is depth 0).
pub const MAX_CATALOG_DEPTH: usize = 8;

/// Why a catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read XML catalog {}: {source}", path.display())]
    Io {
        /// The catalog file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not well-formed XML.
    #[error("XML catalog {}, line {line}: {message}", path.display())]
    Syntax {
        /// The catalog file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// The XML parser's message.
        message: String,
    },
    /// The root element is not `catalog` in [`CATALOG_NS`].
    #[error(
        "{} is not an OASIS XML catalog: the root element must be `catalog` in namespace {CATALOG_NS}",
        path.display()
    )]
    NotACatalog {
        /// The file.
        path: PathBuf,
    },
    /// An entry lacks a required attribute.
    #[error("XML catalog {}, line {line}: <{element}> needs the attribute `{attribute}`", path.display())]
    MissingAttribute {
        /// The catalog file.
        path: PathBuf,
        /// 1-based line of the entry.
        line: usize,
        /// The entry's element name.
        element: String,
        /// The missing attribute.
        attribute: &'static str,
    },
    /// An entry maps to something that is not a local file.
    #[error(
        "XML catalog {}, line {line}: `{value}` is not a local file; the hub never fetches schemas from the network",
        path.display()
    )]
    Remote {
        /// The catalog file.
        path: PathBuf,
        /// 1-based line of the entry.
        line: usize,
        /// The offending value.
        value: String,
    },
    /// An entry or attribute this reader does not implement.
    #[error("XML catalog {}, line {line}: {what} is not supported", path.display())]
    Unsupported {
        /// The catalog file.
        path: PathBuf,
        /// 1-based line of the entry.
        line: usize,
        /// What was found.
        what: String,
    },
    /// `nextCatalog` entries nest deeper than [`MAX_CATALOG_DEPTH`].
    #[error(
        "XML catalog {}: nextCatalog chain deeper than {MAX_CATALOG_DEPTH} catalogs",
        path.display()
    )]
    TooDeep {
        /// The catalog that would have been one too many.
        path: PathBuf,
    },
}

/// A `rewriteURI`/`rewriteSystem` entry.
#[derive(Debug, Clone)]
struct Rewrite {
    start: String,
    /// The local prefix (a directory when it ends with `/`).
    prefix: OsString,
}

/// A loaded catalog (with its `nextCatalog` chain, loaded eagerly).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    path: Option<PathBuf>,
    /// `uri` and `system` entries in document order.
    exact: Vec<(String, PathBuf)>,
    rewrites: Vec<Rewrite>,
    /// `uriSuffix` and `systemSuffix` entries in document order.
    suffixes: Vec<(String, PathBuf)>,
    next: Vec<Catalog>,
}

impl Catalog {
    /// A catalog without entries: every URI location is refused.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Reads the catalog file `path` and, recursively, its `nextCatalog`s.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CatalogError> {
        let mut visited = HashSet::new();
        Self::load_at(path.as_ref(), 0, &mut visited)
    }

    fn load_at(
        path: &Path,
        depth: usize,
        visited: &mut HashSet<PathBuf>,
    ) -> Result<Self, CatalogError> {
        if depth > MAX_CATALOG_DEPTH {
            return Err(CatalogError::TooDeep {
                path: path.to_path_buf(),
            });
        }
        let io = |source| CatalogError::Io {
            path: path.to_path_buf(),
            source,
        };
        let canonical = std::fs::canonicalize(path).map_err(io)?;
        let text = std::fs::read_to_string(path).map_err(io)?;
        visited.insert(canonical.clone());
        let base = canonical
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut catalog = Catalog {
            path: Some(path.to_path_buf()),
            ..Catalog::default()
        };
        let next = parse(&text, path, &base, &mut catalog)?;
        for next_path in next {
            // A catalog already in the chain is skipped (the
            // specification asks resolvers to ignore circular chains).
            let key = std::fs::canonicalize(&next_path).unwrap_or_else(|_| next_path.clone());
            if visited.contains(&key) {
                continue;
            }
            catalog
                .next
                .push(Self::load_at(&next_path, depth + 1, visited)?);
        }
        Ok(catalog)
    }

    /// The file this catalog was loaded from (`None` for [`Catalog::empty`]).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Whether this catalog (and its chain) has no entries at all.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.rewrites.is_empty()
            && self.suffixes.is_empty()
            && self.next.iter().all(Catalog::is_empty)
    }

    /// The local file a URI or system identifier maps to: an exact entry
    /// first, then the longest rewrite start string, then the longest
    /// suffix, then the `nextCatalog`s in order. The file need not exist.
    pub fn resolve(&self, uri_or_system_id: &str) -> Option<PathBuf> {
        let id = uri_or_system_id;
        if let Some((_, file)) = self.exact.iter().find(|(name, _)| name == id) {
            return Some(file.clone());
        }
        let mut best: Option<&Rewrite> = None;
        for rewrite in &self.rewrites {
            if id.starts_with(rewrite.start.as_str())
                && best.is_none_or(|b| rewrite.start.len() > b.start.len())
                && safe_remainder(&id[rewrite.start.len()..])
            {
                best = Some(rewrite);
            }
        }
        if let Some(rewrite) = best {
            let mut out = rewrite.prefix.clone();
            out.push(&id[rewrite.start.len()..]);
            return Some(PathBuf::from(out));
        }
        let mut best_suffix: Option<&(String, PathBuf)> = None;
        for entry in &self.suffixes {
            if id.ends_with(entry.0.as_str())
                && best_suffix.is_none_or(|b| entry.0.len() > b.0.len())
            {
                best_suffix = Some(entry);
            }
        }
        if let Some((_, file)) = best_suffix {
            return Some(file.clone());
        }
        self.next.iter().find_map(|next| next.resolve(id))
    }

    /// The directories the mapped files live in (for a rewrite entry: the
    /// prefix directory), over the whole `nextCatalog` chain, without
    /// duplicates. Schemas compiled by the hub may read files below
    /// these directories.
    pub fn roots(&self) -> Vec<PathBuf> {
        let mut roots = Vec::new();
        self.collect_roots(&mut roots);
        roots
    }

    fn collect_roots(&self, roots: &mut Vec<PathBuf>) {
        let mut add = |dir: Option<&Path>| {
            if let Some(dir) = dir {
                if !dir.as_os_str().is_empty() && !roots.iter().any(|r| r == dir) {
                    roots.push(dir.to_path_buf());
                }
            }
        };
        for (_, file) in self.exact.iter().chain(&self.suffixes) {
            add(file.parent());
        }
        for rewrite in &self.rewrites {
            let prefix = Path::new(&rewrite.prefix);
            if ends_with_slash(&rewrite.prefix) {
                add(Some(prefix));
            } else {
                add(prefix.parent());
            }
        }
        for next in &self.next {
            next.collect_roots(roots);
        }
    }
}

impl fmt::Display for Catalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{}", path.display()),
            None => f.write_str("(empty catalog)"),
        }
    }
}

/// A rewrite must not climb out of its prefix directory.
fn safe_remainder(rest: &str) -> bool {
    !rest.contains('\0') && !rest.contains('\\') && !rest.split('/').any(|segment| segment == "..")
}

fn ends_with_slash(s: &OsString) -> bool {
    s.to_string_lossy().ends_with('/')
}

/// 1-based line of byte offset `pos` in `text`.
fn line_at(text: &str, pos: u64) -> usize {
    let pos = usize::try_from(pos).unwrap_or(usize::MAX).min(text.len());
    text.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses `text` into `catalog`; returns the `nextCatalog` files.
fn parse(
    text: &str,
    path: &Path,
    base: &Path,
    catalog: &mut Catalog,
) -> Result<Vec<PathBuf>, CatalogError> {
    let mut reader = NsReader::from_str(text);
    let mut next = Vec::new();
    let mut foreign_depth = 0usize; // open elements inside a foreign one
    let mut seen_root = false;
    loop {
        let line = line_at(text, reader.buffer_position());
        let (in_catalog_ns, event) = match reader.read_resolved_event() {
            Ok((ns, event)) => (
                matches!(ns, ResolveResult::Bound(n) if n.as_ref() == CATALOG_NS.as_bytes()),
                event,
            ),
            Err(e) => {
                return Err(CatalogError::Syntax {
                    path: path.to_path_buf(),
                    line: line_at(text, reader.error_position()),
                    message: e.to_string(),
                })
            }
        };
        let (element, is_start) = match event {
            Event::Start(e) => (e, true),
            Event::Empty(e) => (e, false),
            Event::End(_) => {
                foreign_depth = foreign_depth.saturating_sub(1);
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = String::from_utf8_lossy(element.local_name().as_ref()).into_owned();
        if !seen_root {
            if !in_catalog_ns || name != "catalog" {
                return Err(CatalogError::NotACatalog {
                    path: path.to_path_buf(),
                });
            }
            seen_root = true;
            reject_xml_base(&element, path, line)?;
        } else if foreign_depth > 0 || !in_catalog_ns {
            if is_start {
                foreign_depth += 1;
            }
        } else {
            let ctx = EntryCtx {
                element: &element,
                name: &name,
                path,
                base,
                line,
            };
            reject_xml_base(&element, path, line)?;
            match name.as_str() {
                "group" => {}
                "uri" => {
                    let target = ctx.file("uri")?;
                    catalog.exact.push((ctx.attr("name")?, target));
                }
                "system" => {
                    let target = ctx.file("uri")?;
                    catalog.exact.push((ctx.attr("systemId")?, target));
                }
                "rewriteURI" | "rewriteSystem" => {
                    let start_attr = if name == "rewriteURI" {
                        "uriStartString"
                    } else {
                        "systemIdStartString"
                    };
                    let start = ctx.attr(start_attr)?;
                    let raw = ctx.attr("rewritePrefix")?;
                    let mut prefix = ctx.local_path(&raw)?.into_os_string();
                    if raw.ends_with('/') && !ends_with_slash(&prefix) {
                        prefix.push("/");
                    }
                    catalog.rewrites.push(Rewrite { start, prefix });
                }
                "uriSuffix" | "systemSuffix" => {
                    let target = ctx.file("uri")?;
                    let suffix_attr = if name == "uriSuffix" {
                        "uriSuffix"
                    } else {
                        "systemSuffix"
                    };
                    catalog.suffixes.push((ctx.attr(suffix_attr)?, target));
                }
                "nextCatalog" => next.push(ctx.file("catalog")?),
                "public" | "delegatePublic" => {}
                other => {
                    return Err(CatalogError::Unsupported {
                        path: path.to_path_buf(),
                        line,
                        what: format!("the entry <{other}>"),
                    })
                }
            }
        }
    }
    if !seen_root {
        return Err(CatalogError::NotACatalog {
            path: path.to_path_buf(),
        });
    }
    Ok(next)
}

fn reject_xml_base(element: &BytesStart<'_>, path: &Path, line: usize) -> Result<(), CatalogError> {
    if element
        .attributes()
        .flatten()
        .any(|a| a.key.as_ref() == b"xml:base")
    {
        return Err(CatalogError::Unsupported {
            path: path.to_path_buf(),
            line,
            what: "the attribute xml:base".to_string(),
        });
    }
    Ok(())
}

/// One catalog entry being read.
struct EntryCtx<'a> {
    element: &'a BytesStart<'a>,
    name: &'a str,
    path: &'a Path,
    base: &'a Path,
    line: usize,
}

impl EntryCtx<'_> {
    fn attr(&self, attribute: &'static str) -> Result<String, CatalogError> {
        for a in self.element.attributes() {
            let a = a.map_err(|e| self.syntax(e.to_string()))?;
            if a.key.as_ref() == attribute.as_bytes() {
                let value = a.unescape_value().map_err(|e| self.syntax(e.to_string()))?;
                return Ok(value.into_owned());
            }
        }
        Err(CatalogError::MissingAttribute {
            path: self.path.to_path_buf(),
            line: self.line,
            element: self.name.to_string(),
            attribute,
        })
    }

    fn syntax(&self, message: String) -> CatalogError {
        CatalogError::Syntax {
            path: self.path.to_path_buf(),
            line: self.line,
            message,
        }
    }

    fn file(&self, attribute: &'static str) -> Result<PathBuf, CatalogError> {
        let value = self.attr(attribute)?;
        self.local_path(&value)
    }

    /// A `uri`/`rewritePrefix`/`catalog` value as a local path.
    fn local_path(&self, value: &str) -> Result<PathBuf, CatalogError> {
        let remote = || CatalogError::Remote {
            path: self.path.to_path_buf(),
            line: self.line,
            value: value.to_string(),
        };
        let path = if has_uri_scheme(value) {
            file_url_to_path(value).ok_or_else(remote)?
        } else {
            PathBuf::from(value)
        };
        if path.as_os_str().is_empty() {
            return Err(remote());
        }
        Ok(normalize(&self.base.join(path)))
    }
}

/// Whether `s` starts with a URI scheme (`[A-Za-z][A-Za-z0-9+.-]+:`; one
/// letter is not enough, so a Windows drive letter is not a scheme).
pub(crate) fn has_uri_scheme(s: &str) -> bool {
    let Some(colon) = s.find(':') else {
        return false;
    };
    let scheme = &s[..colon];
    let mut chars = scheme.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && scheme.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
}

/// `file:///a/b`, `file://localhost/a/b` and `file:/a/b` as a path
/// (percent-decoded); `None` for any other URL.
pub(crate) fn file_url_to_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("file:")
        .or_else(|| url.strip_prefix("FILE:"))?;
    let rest = if let Some(authority_and_path) = rest.strip_prefix("//") {
        let slash = authority_and_path.find('/')?;
        let host = &authority_and_path[..slash];
        if !host.is_empty() && !host.eq_ignore_ascii_case("localhost") {
            return None;
        }
        &authority_and_path[slash..]
    } else {
        rest
    };
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    percent_decode(rest).map(PathBuf::from)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Removes `.` and resolves `..` lexically (no file system access).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert!(has_uri_scheme("urn:x"));
        assert!(has_uri_scheme("http://a"));
        assert!(has_uri_scheme("a+b.c-d:x"));
        assert!(!has_uri_scheme("C:/x"));
        assert!(!has_uri_scheme("x.xsd"));
        assert!(!has_uri_scheme("1a:x"));
        assert!(!has_uri_scheme("dir/a:b"));
    }

    #[test]
    fn file_urls() {
        assert_eq!(
            file_url_to_path("file:///a/b%20c.xsd"),
            Some(PathBuf::from("/a/b c.xsd"))
        );
        assert_eq!(
            file_url_to_path("file://localhost/a"),
            Some(PathBuf::from("/a"))
        );
        assert_eq!(file_url_to_path("file:/a"), Some(PathBuf::from("/a")));
        assert_eq!(file_url_to_path("file://host/a"), None);
        assert_eq!(file_url_to_path("http://x/a"), None);
        assert_eq!(file_url_to_path("file:///a%zz"), None);
    }

    #[test]
    fn normalizes() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }
}
