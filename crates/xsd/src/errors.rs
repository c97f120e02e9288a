//! Collecting libxml2's structured errors into a bounded list.
//!
//! libxml2 reports every problem as an `xmlError` passed to a callback
//! (`xmlStructuredErrorFunc`) together with a user pointer. Here the user
//! pointer is a `*mut Collector` that lives on the Rust stack for exactly
//! as long as the libxml2 objects that may call back.

use std::ffi::{c_void, CStr};
use std::os::raw::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use drehscheibe_rules::schema::{SchemaIssue, MAX_ISSUE_CHARS, MAX_REPORTED_ISSUES};
use libxml::bindings::{
    __xmlStructuredError, __xmlStructuredErrorContext, xmlError, xmlErrorDomain_XML_FROM_SCHEMASV,
    xmlErrorLevel_XML_ERR_ERROR, xmlErrorLevel_XML_ERR_FATAL, xmlSetStructuredErrorFunc,
    xmlStructuredErrorFunc, xmlTextReaderByteConsumed, xmlTextReaderPtr,
};

/// One collected problem (with the file, which schema compile errors
/// name).
#[derive(Debug, Clone)]
pub(crate) struct Issue {
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
    /// For a schema validity error without a column: how many bytes of
    /// the document the parser had consumed when it was raised (the end
    /// of the start or end tag of the element concerned).
    pub offset: Option<u64>,
}

impl Issue {
    /// An issue of this crate's own making.
    pub(crate) fn new(line: Option<u32>, column: Option<u32>, message: impl Into<String>) -> Self {
        Self {
            file: None,
            line,
            column,
            message: message.into(),
            offset: None,
        }
    }

    pub(crate) fn into_schema_issue(self) -> SchemaIssue {
        SchemaIssue {
            line: self.line,
            column: self.column,
            message: self.message,
        }
    }

    /// `file:line: message` (the parts that are known).
    pub(crate) fn with_location(&self) -> String {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => format!("{file}:{line}: {}", self.message),
            (Some(file), None) => format!("{file}: {}", self.message),
            (None, Some(line)) => format!("line {line}: {}", self.message),
            (None, None) => self.message.clone(),
        }
    }
}

/// Keeps the first [`MAX_REPORTED_ISSUES`] errors and counts the rest;
/// ignores warnings, and everything after the first fatal error (after
/// which libxml2 only reports consequences).
#[derive(Debug)]
pub(crate) struct Collector {
    pub issues: Vec<Issue>,
    pub more: usize,
    pub fatal: bool,
    /// The reader being validated (NULL outside validation): asked for
    /// its position when a validity error comes without a column.
    pub reader: xmlTextReaderPtr,
}

impl Default for Collector {
    fn default() -> Self {
        Self {
            issues: Vec::new(),
            more: 0,
            fatal: false,
            reader: std::ptr::null_mut(),
        }
    }
}

impl Collector {
    pub(crate) fn push(&mut self, issue: Issue) {
        if self.fatal {
            return;
        }
        if self.issues.len() < MAX_REPORTED_ISSUES {
            self.issues.push(issue);
        } else {
            self.more += 1;
        }
    }

    pub(crate) fn total(&self) -> usize {
        self.issues.len() + self.more
    }

    fn record(&mut self, error: &xmlError) {
        let fatal = error.level == xmlErrorLevel_XML_ERR_FATAL;
        if !(fatal || error.level == xmlErrorLevel_XML_ERR_ERROR) {
            return;
        }
        if self.issues.len() >= MAX_REPORTED_ISSUES && !self.fatal {
            // Only counted: a message can quote a multi-megabyte value, and
            // a hostile document can raise millions of errors.
            self.more += 1;
            if fatal {
                self.fatal = true;
            }
            return;
        }
        // SAFETY: libxml2 hands out NUL-terminated strings (or NULL) that
        // live until the callback returns; they are copied here (at most
        // what `clip` keeps).
        let message = unsafe { c_prefix(error.message, MAX_ISSUE_CHARS * 4) }.unwrap_or_default();
        // SAFETY: as above.
        let file = unsafe { c_string(error.file) };
        let column = positive(error.int2);
        let offset = if column.is_none()
            && error.domain == xmlErrorDomain_XML_FROM_SCHEMASV as i32
            && !self.reader.is_null()
        {
            // SAFETY: `reader` is the live reader whose parsing raised this
            // error (set by `validate::run`, cleared before it is freed);
            // the call only reads the parser's position.
            u64::try_from(unsafe { xmlTextReaderByteConsumed(self.reader) }).ok()
        } else {
            None
        };
        self.push(Issue {
            file,
            line: positive(error.line),
            column,
            message: clip(message.trim()),
            offset,
        });
        if fatal {
            self.fatal = true;
        }
    }
}

fn positive(n: i32) -> Option<u32> {
    u32::try_from(n).ok().filter(|&n| n > 0)
}

/// At most [`MAX_ISSUE_CHARS`] characters (the last one `…` when cut).
pub(crate) fn clip(message: &str) -> String {
    if message.chars().count() <= MAX_ISSUE_CHARS {
        return message.to_string();
    }
    let mut out: String = message.chars().take(MAX_ISSUE_CHARS - 1).collect();
    out.push('…');
    out
}

/// Copies at most `max` bytes of a C string (cut at a character
/// boundary by the lossy conversion).
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for this call.
pub(crate) unsafe fn c_prefix(p: *const c_char, max: usize) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract; the
    // scan stops at the terminator or after `max` bytes, both inside it.
    let len = (0..max).find(|&i| unsafe { *p.add(i) } == 0).unwrap_or(max);
    // SAFETY: the first `len` bytes were just read.
    let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) };
    Some(String::from_utf8_lossy(bytes).into_owned())
}

/// Copies a C string.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for this call.
pub(crate) unsafe fn c_string(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let s = unsafe { CStr::from_ptr(p) };
    Some(s.to_string_lossy().into_owned())
}

/// The pointer type of the callback's error argument: `xmlError *` up to
/// libxml2 2.11, `const xmlError *` from 2.12. The callback is generic
/// over both so it matches whichever `xmlStructuredErrorFunc` bindgen
/// generated from the installed headers.
pub(crate) trait ErrorPtr: Copy {
    fn as_const(self) -> *const xmlError;
}

impl ErrorPtr for *mut xmlError {
    fn as_const(self) -> *const xmlError {
        self
    }
}

impl ErrorPtr for *const xmlError {
    fn as_const(self) -> *const xmlError {
        self
    }
}

/// The structured error callback: `user` is a `*mut Collector`.
///
/// # Safety
/// Called by libxml2 only, with `user` as registered: NULL or a
/// `*mut Collector` that is valid and not otherwise borrowed for the
/// duration of the call.
pub(crate) unsafe extern "C" fn collect_error<P: ErrorPtr>(user: *mut c_void, error: P) {
    // A panic must not unwind into C; there is nothing useful to do with
    // one here, so it is dropped (the error is then not collected).
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let error = error.as_const();
        if user.is_null() || error.is_null() {
            return;
        }
        // SAFETY: per this function's contract `user` is a live, unaliased
        // `Collector` for the duration of the call.
        let collector = unsafe { &mut *user.cast::<Collector>() };
        // SAFETY: libxml2 passes a valid `xmlError` for the call.
        let error = unsafe { &*error };
        collector.record(error);
    }));
}

/// The callback as libxml2's function pointer type.
pub(crate) fn handler() -> xmlStructuredErrorFunc {
    Some(collect_error)
}

/// Routes this thread's otherwise unhandled libxml2 errors (those raised
/// without a context that has its own handler, e.g. while the schema
/// parser reads an imported file) to a collector, and restores the
/// previous handler when dropped.
pub(crate) struct ThreadErrorsTo {
    saved_handler: xmlStructuredErrorFunc,
    saved_data: *mut c_void,
}

impl ThreadErrorsTo {
    /// # Safety
    /// `collector` must stay valid (and not be otherwise borrowed while
    /// libxml2 runs) until the guard is dropped.
    pub(crate) unsafe fn install(collector: *mut Collector) -> Self {
        // SAFETY: these accessors return pointers to this thread's libxml2
        // globals, valid for the life of the thread.
        let saved = unsafe {
            Self {
                saved_handler: *__xmlStructuredError(),
                saved_data: *__xmlStructuredErrorContext(),
            }
        };
        // SAFETY: `collector` stays valid until the guard is dropped (this
        // function's contract), which restores the saved handler.
        unsafe { xmlSetStructuredErrorFunc(collector.cast(), handler()) };
        saved
    }
}

impl Drop for ThreadErrorsTo {
    fn drop(&mut self) {
        // SAFETY: restores the values read in `install` on the same thread
        // (the guard is not Send: it holds a raw pointer).
        unsafe { xmlSetStructuredErrorFunc(self.saved_data, self.saved_handler) }
    }
}
