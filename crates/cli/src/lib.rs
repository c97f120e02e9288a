//! Library side of the `drehscheibe` binary: building a running hub from a
//! configuration ([`runtime`]), the demo receivers ([`demo`]) and the
//! operations client used by `send` and `messages` ([`client`]).
//!
//! The binary is a thin `clap` front over these, so tests and benchmarks
//! can start the very same hub in-process.

/// The process's allocator: mimalloc instead of glibc's malloc. The hub
/// allocates many short-lived small objects across threads (request
/// buffers, XPath values, result trees, store records); under the pipeline
/// benchmark glibc spent a fifth of all CPU in `malloc`/`free` and
/// `malloc_consolidate` (docs/benchmarks.md, session 9; ADR 0012).
/// Declared here so that every binary built on this library —
/// `drehscheibe` and the test suite's `drehscheibe-under-test` — uses it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's tuning for a long-running server with a memory budget.
pub mod allocator {
    use std::os::raw::{c_int, c_long};

    extern "C" {
        /// mimalloc's option setter (`mimalloc.h`), linked from
        /// `libmimalloc-sys`.
        fn mi_option_set(option: c_int, value: c_long);
    }

    /// `mi_option_arena_eager_commit` in the mimalloc v3 that
    /// `libmimalloc-sys` 0.1.49 builds (its Rust constants still number
    /// the v2 options, so the value is spelled out here).
    const ARENA_EAGER_COMMIT: c_int = 4;

    /// Commit arena memory as it is used, not all at once: with eager
    /// commit (mimalloc's default on Linux) the hub's idle RSS was 60 MiB
    /// instead of 17 and a 50 MB attachment peaked at 107 MiB instead of
    /// 27, for no throughput gain (docs/benchmarks.md, session 9).
    ///
    /// mimalloc reads the option when it reserves its first arena, which
    /// happens at the first allocation — before `main`. An operator who
    /// sets `MIMALLOC_ARENA_EAGER_COMMIT` in the environment keeps
    /// mimalloc's own reading of it (for measuring either way). This runs as an
    /// ELF constructor (`.init_array`), before the Rust runtime allocates
    /// anything; [`configure`] keeps it linked in.
    #[cfg(target_os = "linux")]
    #[used]
    #[link_section = ".init_array"]
    static CONFIGURE_BEFORE_MAIN: extern "C" fn() = configure_before_main;

    extern "C" fn configure_before_main() {
        if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_some() {
            return;
        }
        // SAFETY: sets a plain integer option; mimalloc accepts options at
        // any time, and this runs before any other thread exists.
        unsafe { mi_option_set(ARENA_EAGER_COMMIT, 0) }
    }

    /// Call first thing in `main`: keeps the constructor above in the
    /// binary (a linker may drop an unreferenced section) and applies the
    /// option on platforms without `.init_array`.
    pub fn configure() {
        #[cfg(target_os = "linux")]
        std::hint::black_box(&CONFIGURE_BEFORE_MAIN);
        #[cfg(not(target_os = "linux"))]
        configure_before_main();
    }
}

pub mod client;
pub mod command;
pub mod connectors;
pub mod demo;
mod ruletools;
pub mod runtime;
mod singleton;
