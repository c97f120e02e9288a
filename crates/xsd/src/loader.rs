//! The process-wide libxml2 external entity loader: keeps schema
//! compilation offline and document validation free of any file access.
//!
//! libxml2 loads every external resource (the schema file itself, each
//! `xs:include`/`xs:import`/`xs:redefine`, external DTDs and entities)
//! through one global function pointer, `xmlSetExternalEntityLoader`.
//! [`install`] replaces libxml2's default loader (which would follow
//! `http://` and `ftp://` URLs and consult `/etc/xml/catalog`) once per
//! process with [`entity_loader`], which decides from a thread-local
//! [`LoaderScope`]:
//!
//! - while a schema is compiled on this thread ([`LoaderScope::enter`]):
//!   a URL the hub's catalog maps is loaded from the mapped file; a plain
//!   path or `file:` URL inside one of the allowed roots is loaded; every
//!   other URL is refused and remembered, so that the compile error can
//!   name it;
//! - at any other time (in particular while a document is validated):
//!   everything is refused.

use std::cell::RefCell;
use std::ffi::CString;
use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Arc, Once};

use libxml::bindings::{
    xmlNewInputFromFile, xmlParserCtxtPtr, xmlParserInputPtr, xmlSchemaInitTypes,
    xmlSetExternalEntityLoader,
};

use crate::catalog::{file_url_to_path, has_uri_scheme, Catalog};
use crate::errors::c_string;

/// What the loader may read while one schema compiles on this thread.
#[derive(Debug)]
pub(crate) struct LoaderScope {
    catalog: Arc<Catalog>,
    /// Canonical directories whose files (at any depth) may be read.
    roots: Vec<PathBuf>,
    /// URLs refused so far, in order, without duplicates.
    refused: Vec<String>,
}

thread_local! {
    static SCOPE: RefCell<Option<LoaderScope>> = const { RefCell::new(None) };
}

/// Initialises libxml2 and installs [`entity_loader`], once per process,
/// before any schema is compiled or document validated.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        libxml::init_parser();
        // SAFETY: plain global initialisation, run once. libxml2 before
        // 2.11 creates its table of built-in XSD types lazily, without a
        // lock, in the first xmlSchemaParse: two threads compiling their
        // first schemas at once could see a half-filled table ("The QName
        // value '{…XMLSchema}int' does not resolve to a(n) type
        // definition"). Done here, under the Once, it never races.
        unsafe { xmlSchemaInitTypes() };
        // SAFETY: sets a global function pointer to a function with the
        // expected signature that never unwinds.
        unsafe { xmlSetExternalEntityLoader(Some(entity_loader)) };
    });
}

impl LoaderScope {
    /// Makes `catalog` and `roots` the loader's rules on this thread until
    /// the returned guard is dropped (or [`ScopeGuard::finish`]ed).
    pub(crate) fn enter(catalog: Arc<Catalog>, roots: &[PathBuf]) -> ScopeGuard {
        let roots = roots
            .iter()
            .filter_map(|r| std::fs::canonicalize(r).ok())
            .collect();
        let scope = LoaderScope {
            catalog,
            roots,
            refused: Vec::new(),
        };
        let previous = SCOPE
            .try_with(|s| s.try_borrow_mut().ok().and_then(|mut s| s.replace(scope)))
            .ok()
            .flatten();
        ScopeGuard {
            previous: Some(previous),
        }
    }
}

/// Restores the previous scope (normally none) when dropped.
pub(crate) struct ScopeGuard {
    previous: Option<Option<LoaderScope>>,
}

impl ScopeGuard {
    /// Ends the scope and returns the URLs refused during it.
    pub(crate) fn finish(mut self) -> Vec<String> {
        self.restore().map(|s| s.refused).unwrap_or_default()
    }

    fn restore(&mut self) -> Option<LoaderScope> {
        let previous = self.previous.take()?;
        SCOPE
            .try_with(|s| {
                s.try_borrow_mut()
                    .ok()
                    .and_then(|mut s| std::mem::replace(&mut *s, previous))
            })
            .ok()
            .flatten()
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        self.restore();
    }
}

/// libxml2's external entity loader (see the module documentation).
///
/// # Safety
/// Called by libxml2 with `url` NULL or a NUL-terminated string, and
/// `ctxt` NULL or the parser context that asks.
unsafe extern "C" fn entity_loader(
    url: *const c_char,
    _public_id: *const c_char,
    ctxt: xmlParserCtxtPtr,
) -> xmlParserInputPtr {
    // SAFETY: `url` is NULL or NUL-terminated per libxml2's contract.
    let url = unsafe { c_string(url) };
    // No panic may cross into C: one is treated as a refusal.
    let decision = catch_unwind(AssertUnwindSafe(|| url.and_then(|url| decide(&url))))
        .ok()
        .flatten();
    match decision {
        // SAFETY: `ctxt` comes from libxml2 (xmlNewInputFromFile returns
        // NULL for a NULL context); the path is NUL-terminated and only
        // read during the call.
        Some(path) if !ctxt.is_null() => unsafe { xmlNewInputFromFile(ctxt, path.as_ptr()) },
        _ => ptr::null_mut(),
    }
}

/// The local file to load for `url`, or `None` to refuse it.
fn decide(url: &str) -> Option<CString> {
    SCOPE
        .try_with(|scope| {
            let mut scope = scope.try_borrow_mut().ok()?;
            let scope = scope.as_mut()?; // outside a compile: refuse all
            let allowed = allowed_file(scope, url);
            if allowed.is_none() && !scope.refused.iter().any(|r| r == url) {
                scope.refused.push(url.to_string());
            }
            allowed
        })
        .ok()
        .flatten()
}

fn allowed_file(scope: &LoaderScope, url: &str) -> Option<CString> {
    // The catalog first: it may map a remote-looking URL to a local file.
    if let Some(mapped) = scope.catalog.resolve(url) {
        let file = std::fs::canonicalize(mapped).ok()?;
        return to_c_path(&file);
    }
    let candidate = if has_uri_scheme(url) {
        file_url_to_path(url)?
    } else {
        PathBuf::from(url)
    };
    let file = std::fs::canonicalize(candidate).ok()?;
    if file.is_file() && scope.roots.iter().any(|root| file.starts_with(root)) {
        return to_c_path(&file);
    }
    None
}

fn to_c_path(path: &Path) -> Option<CString> {
    CString::new(path.to_str()?).ok()
}
