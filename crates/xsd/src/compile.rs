//! Compiling a schema file with libxml2, and the per-thread cache of
//! compiled schemas.
//!
//! A compiled libxml2 schema (`xmlSchemaPtr`) is not `Send`: it is created,
//! used and freed on one thread. [`compiled`] keeps up to
//! [`MAX_CACHED_PER_THREAD`] of them per thread, keyed by the process-unique
//! id of their [`XsdSchema`](crate::XsdSchema), and evicts the least
//! recently used one when a further schema is compiled. A schema dropped
//! by the hub stays in the caches of the threads that used it until it is
//! evicted or the thread ends.

use std::cell::RefCell;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use libxml::bindings::{
    xmlSchemaFree, xmlSchemaFreeParserCtxt, xmlSchemaNewParserCtxt, xmlSchemaParse,
    xmlSchemaParserCtxtPtr, xmlSchemaPtr, xmlSchemaSetParserStructuredErrors,
};

use crate::catalog::Catalog;
use crate::errors::{handler, Collector, ThreadErrorsTo};
use crate::loader::{install, LoaderScope};

/// Most compiled schemas one thread keeps.
pub const MAX_CACHED_PER_THREAD: usize = 32;

/// Everything needed to compile a schema again, on any thread.
#[derive(Debug)]
pub(crate) struct CompileSpec {
    /// The schema file.
    pub path: PathBuf,
    /// Resolves imports by URI.
    pub catalog: Arc<Catalog>,
    /// Directories whose files imports may read.
    pub roots: Vec<PathBuf>,
}

/// An owned, compiled libxml2 schema (freed on drop, on the thread that
/// compiled it: the type is neither `Send` nor `Sync`).
pub(crate) struct CompiledSchema {
    ptr: xmlSchemaPtr,
}

impl CompiledSchema {
    pub(crate) fn as_ptr(&self) -> xmlSchemaPtr {
        self.ptr
    }
}

impl Drop for CompiledSchema {
    fn drop(&mut self) {
        // SAFETY: `ptr` is a non-NULL schema returned by xmlSchemaParse and
        // owned by this value alone.
        unsafe { xmlSchemaFree(self.ptr) }
    }
}

/// Frees a schema parser context on drop.
struct ParserCtxt(xmlSchemaParserCtxtPtr);

impl Drop for ParserCtxt {
    fn drop(&mut self) {
        // SAFETY: a non-NULL context from xmlSchemaNewParserCtxt, freed once.
        unsafe { xmlSchemaFreeParserCtxt(self.0) }
    }
}

/// Compiles `spec.path` on this thread; the error is a message naming the
/// file, line and libxml2's text of each problem, and every import the
/// loader refused.
pub(crate) fn compile(spec: &CompileSpec) -> Result<CompiledSchema, String> {
    install();
    let display = spec.path.display();
    let c_path = spec
        .path
        .to_str()
        .and_then(|p| CString::new(p).ok())
        .ok_or_else(|| format!("the schema path {display} is not valid UTF-8"))?;
    let scope = LoaderScope::enter(Arc::clone(&spec.catalog), &spec.roots);
    let mut collector = Collector::default();
    let schema = {
        let sink: *mut Collector = &mut collector;
        // SAFETY: `sink` outlives the guard and the parser context below
        // (both dropped at the end of this block) and `collector` is not
        // touched until then.
        let _thread_errors = unsafe { ThreadErrorsTo::install(sink) };
        // SAFETY: `c_path` is NUL-terminated; the context copies it.
        let ctxt = unsafe { xmlSchemaNewParserCtxt(c_path.as_ptr()) };
        if ctxt.is_null() {
            return Err(format!(
                "libxml2 could not create a schema parser for {display}"
            ));
        }
        let ctxt = ParserCtxt(ctxt);
        // SAFETY: `ctxt.0` is valid; `sink` outlives it (see above).
        unsafe { xmlSchemaSetParserStructuredErrors(ctxt.0, handler(), sink.cast()) };
        // SAFETY: `ctxt.0` is valid; the result is owned by us (or NULL).
        unsafe { xmlSchemaParse(ctxt.0) }
    };
    let refused = scope.finish();
    let compiled = (!schema.is_null()).then_some(CompiledSchema { ptr: schema });
    match compiled {
        Some(compiled) if refused.is_empty() => Ok(compiled),
        // A refused import leaves the schema incomplete even when libxml2
        // compiled the rest (it skips an import it cannot load): refuse it.
        _ => Err(failure_message(&spec.path, &collector, &refused)),
    }
}

fn failure_message(path: &Path, collector: &Collector, refused: &[String]) -> String {
    // The refusals first: they are the cause of what libxml2 says next.
    let mut parts: Vec<String> = refused
        .iter()
        .map(|url| {
            format!(
                "import of {url} refused: not in the XML catalog; the hub never fetches schemas from the network"
            )
        })
        .collect();
    parts.extend(collector.issues.iter().map(|i| i.with_location()));
    if collector.more > 0 {
        parts.push(format!("and {} more", collector.more));
    }
    if parts.is_empty() {
        parts.push("libxml2 gave no reason".to_string());
    }
    format!(
        "{} could not be compiled: {}",
        path.display(),
        parts.join("; ")
    )
}

type Cache = Vec<(u64, Rc<CompiledSchema>)>;

thread_local! {
    /// Least recently used first.
    static CACHE: RefCell<Cache> = const { RefCell::new(Vec::new()) };
}

/// The schema `id` compiled on this thread: from the cache, or compiled
/// now (and cached).
pub(crate) fn compiled(id: u64, spec: &CompileSpec) -> Result<Rc<CompiledSchema>, String> {
    let hit = CACHE
        .try_with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            let index = cache.iter().position(|(key, _)| *key == id)?;
            let entry = cache.remove(index);
            let schema = Rc::clone(&entry.1);
            cache.push(entry);
            Some(schema)
        })
        .ok()
        .flatten();
    if let Some(schema) = hit {
        return Ok(schema);
    }
    let schema = Rc::new(compile(spec)?);
    insert(id, Rc::clone(&schema));
    Ok(schema)
}

/// Caches `schema` as `id` on this thread, evicting the least recently
/// used entry when full. Evicted schemas are freed once no validation on
/// this thread holds them.
pub(crate) fn insert(id: u64, schema: Rc<CompiledSchema>) {
    let evicted = CACHE
        .try_with(|cache| {
            let mut cache = cache.try_borrow_mut().ok()?;
            cache.retain(|(key, _)| *key != id);
            let evicted = if cache.len() >= MAX_CACHED_PER_THREAD {
                Some(cache.remove(0))
            } else {
                None
            };
            cache.push((id, schema));
            evicted
        })
        .ok()
        .flatten();
    // Freed here, outside the borrow.
    drop(evicted);
}

/// How many compiled schemas this thread caches (for tests).
pub fn cached_on_this_thread() -> usize {
    CACHE
        .try_with(|cache| cache.try_borrow().map(|c| c.len()).unwrap_or(0))
        .unwrap_or(0)
}
