//! The evaluator: runs a compiled [`crate::Expression`] against documents.
//!
//! Evaluation is a walk over the compiled IR (see `compile.rs`). The
//! per-run environment [`Env`] owns nothing but references: the document
//! arena (documents created while evaluating — `json-to-xml`, `parse-xml`,
//! XSLT temporary trees — live as long as the run), the stable
//! `current-dateTime()`, and a recursion budget. The host (the XSLT
//! interpreter, the rule recognizer) supplies variables and its own
//! functions through [`Host`].

use std::cell::Cell;

use crate::datetime::DateTime;
use crate::error::{Error, Result};
use crate::tree::Document;
use crate::value::{Function, Item, Sequence};

/// Documents created during one run; they live as long as the arena.
#[derive(Default)]
pub struct DocArena {
    arena: typed_arena::Arena<Document>,
}

impl std::fmt::Debug for DocArena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DocArena")
    }
}

impl DocArena {
    /// A new, empty arena.
    pub fn new() -> DocArena {
        DocArena::default()
    }

    /// Moves a document into the arena.
    pub fn alloc(&self, doc: Document) -> &Document {
        self.arena.alloc(doc)
    }
}

/// The dynamic environment of one run (one transformation or one
/// recognition pass).
#[derive(Debug)]
pub struct Env<'a> {
    /// Where new documents go.
    pub arena: &'a DocArena,
    /// `current-dateTime()` (stable during the run), with the implicit
    /// timezone.
    pub now: DateTime,
    /// Implicit timezone in minutes east of UTC.
    pub implicit_timezone: i16,
    /// Static base URI (for `resolve-uri`, `static-base-uri`).
    pub base_uri: Option<String>,
    /// Deepest nesting of evaluations/calls before `XTDE0000`-style
    /// "recursion too deep" errors.
    pub max_depth: usize,
    pub(crate) depth: Cell<usize>,
    /// Name ids found by name tests in this run (see
    /// [`Env::name_id`]).
    pub(crate) name_ids: std::cell::RefCell<[(usize, u64, u32); NAME_ID_SLOTS]>,
}

/// Slots of [`Env::name_ids`] (direct-mapped by the name test's address).
const NAME_ID_SLOTS: usize = 64;

impl<'a> Env<'a> {
    /// An environment with the current time and UTC as implicit timezone.
    pub fn new(arena: &'a DocArena) -> Env<'a> {
        Env {
            arena,
            now: crate::datetime::now_utc(),
            implicit_timezone: 0,
            base_uri: None,
            max_depth: 2_000,
            depth: Cell::new(0),
            name_ids: std::cell::RefCell::new([(0, 0, 0); NAME_ID_SLOTS]),
        }
    }

    /// The id of the name `{uri}local` in `doc`, for the name test at
    /// address `test`: a step evaluated once per context node looks its
    /// name up once per run instead of hashing it each time. A hit is
    /// verified against the document's name table, so a slot shared by
    /// two tests (or a test compiled anew at a freed address) can only
    /// cost a lookup, never give a wrong answer; misses are not cached.
    pub(crate) fn name_id(
        &self,
        test: usize,
        doc: &crate::tree::Document,
        uri: &str,
        local: &str,
    ) -> Option<crate::tree::NameId> {
        // Fibonacci hashing of the address: IR nodes are spaced by their
        // size, which a plain modulo would fold onto a few slots.
        let slot = (test as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58;
        let slot = slot as usize % NAME_ID_SLOTS;
        let mut ids = self.name_ids.borrow_mut();
        if let Some(&(t, d, id)) = ids.get(slot) {
            if t == test
                && d == doc.id()
                && doc
                    .names
                    .get(id as usize)
                    .is_some_and(|q| crate::tree::name_eq(q, uri, local))
            {
                return Some(id);
            }
        }
        let found = doc.lookup_name(uri, local);
        if let (Some(id), Some(entry)) = (found, ids.get_mut(slot)) {
            *entry = (test, doc.id(), id);
        }
        found
    }

    /// Enters one level of recursion (function call, template call);
    /// errors with code `DSXP0001` when the budget is exhausted.
    pub fn enter(&self) -> Result<()> {
        let d = self.depth.get() + 1;
        if d > self.max_depth {
            return Err(Error::new(
                "DSXP0001",
                format!(
                    "recursion deeper than {} levels (runaway recursion?)",
                    self.max_depth
                ),
            ));
        }
        self.depth.set(d);
        Ok(())
    }

    /// Leaves a level entered with [`Env::enter`].
    pub fn leave(&self) {
        self.depth.set(self.depth.get().saturating_sub(1));
    }
}

/// What the host supplies at run time.
pub trait Host<'a> {
    /// The value of host variable `id` (as resolved at compile time by
    /// [`crate::HostStatic::variable`]).
    fn variable(&mut self, id: u32) -> Result<Sequence<'a>>;

    /// Calls host function `id` (as resolved by
    /// [`crate::HostStatic::function`]); arguments converted as declared,
    /// the context item appended if the function asked for it.
    fn call(&mut self, id: u32, args: Vec<Sequence<'a>>) -> Result<Sequence<'a>> {
        let _ = args;
        Err(Error::new(
            "XPST0017",
            format!("host function {id} is not available"),
        ))
    }

    /// `fn:doc($uri)` (already resolved against the base URI).
    fn document(&mut self, uri: &str) -> Result<&'a Document> {
        Err(Error::new(
            "FODC0002",
            format!("cannot retrieve document {uri}: no documents are available"),
        ))
    }

    /// `fn:unparsed-text($uri)`.
    fn unparsed_text(&mut self, uri: &str) -> Result<String> {
        Err(Error::new(
            "FOUT1170",
            format!("cannot retrieve {uri}: no resources are available"),
        ))
    }

    /// The static base URI of the expression being evaluated, when the
    /// host knows one per expression (an XSLT stylesheet: its module's URI
    /// with `xml:base`). `None`: [`Env::base_uri`] applies.
    /// `static-base-uri()` and `resolve-uri()` without a base read it.
    fn static_base_uri(&self) -> Option<&str> {
        None
    }
}

/// A host with no variables and no functions.
#[derive(Debug, Default)]
pub struct NoHost;

impl<'a> Host<'a> for NoHost {
    fn variable(&mut self, id: u32) -> Result<Sequence<'a>> {
        Err(Error::new("XPST0008", format!("no variable {id}")))
    }
}

/// The focus: context item, position (1-based) and size.
#[derive(Debug, Clone)]
pub struct Focus<'a> {
    /// The context item.
    pub item: Item<'a>,
    /// `position()`
    pub position: usize,
    /// `last()`
    pub size: usize,
}

impl<'a> Focus<'a> {
    /// A focus on one item (position 1 of 1).
    pub fn of(item: Item<'a>) -> Focus<'a> {
        Focus {
            item,
            position: 1,
            size: 1,
        }
    }
}

/// The evaluation state handed to builtin implementations.
pub struct Eval<'a, 'h> {
    /// The run's environment.
    pub env: &'h Env<'a>,
    /// The host.
    pub host: &'h mut dyn Host<'a>,
    /// XPath-local variables (`for`, `let`, inline function parameters).
    pub(crate) locals: Vec<Sequence<'a>>,
    /// XPath 1.0 backwards-compatible mode of the expression running.
    pub(crate) xpath1: bool,
}

impl<'a, 'h> Eval<'a, 'h> {
    /// Is the running expression in XPath 1.0 backwards-compatible mode?
    pub fn xpath1(&self) -> bool {
        self.xpath1
    }

    /// The string form of an atomic value in the current mode (XPath 1.0
    /// number formatting in backwards-compatible mode).
    pub fn atomic_string(&self, a: &crate::value::Atomic) -> String {
        if self.xpath1 {
            a.to_xpath1_string()
        } else {
            a.to_xs_string()
        }
    }

    /// The string value of an item in the current mode.
    pub fn item_string(&self, item: &Item<'a>) -> Result<String> {
        match item {
            Item::Atomic(a) => Ok(self.atomic_string(a)),
            other => other.string_value(),
        }
    }

    /// Moves a new document into the run's arena.
    pub fn alloc_document(&self, doc: Document) -> &'a Document {
        self.env.arena.alloc(doc)
    }

    /// Calls a function item with arguments (higher-order functions).
    pub fn call_function(
        &mut self,
        f: &Function<'a>,
        args: Vec<Sequence<'a>>,
    ) -> Result<Sequence<'a>> {
        crate::interp::call_function(self, f, args)
    }
}
