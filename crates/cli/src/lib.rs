//! Library side of the `drehscheibe` binary: building a running hub from a
//! configuration ([`runtime`]), the demo receivers ([`demo`]) and the
//! operations client used by `send` and `messages` ([`client`]).
//!
//! The binaries are thin `clap` fronts over these, so tests and
//! benchmarks can start the very same hub in-process: `drehscheibe-hub`
//! runs every command, `drehscheibe` runs `transform` itself and hands
//! everything else to `drehscheibe-hub` ([`front`]).

/// Makes mimalloc the process's allocator, tuned by
/// [`allocator::ARENA_EAGER_COMMIT`]. The hub allocates many
/// short-lived small objects across threads (request buffers, XPath
/// values, result trees, store records); under the pipeline benchmark
/// glibc spent a fifth of all CPU in `malloc`/`free` and
/// `malloc_consolidate` (docs/benchmarks.md, session 9; ADR 0012).
///
/// Invoked once by each executable that runs the hub — `drehscheibe-hub`,
/// the test suite's copy and the test suite's library (so in-process
/// tests and benchmarks measure what the hub runs). Not by the
/// `drehscheibe` front ([`front`]): a one-shot `transform` allocates
/// little and exits, and mimalloc's arena set-up cost it more page faults
/// than the transform itself (ADR 0020).
#[macro_export]
macro_rules! hub_allocator {
    () => {
        #[global_allocator]
        static HUB_ALLOCATOR: $crate::allocator::MiMalloc = $crate::allocator::MiMalloc;

        /// mimalloc's tuning for a long-running server with a memory
        /// budget, applied before `main` (see [`$crate::allocator`]).
        mod hub_allocator_options {
            extern "C" {
                /// mimalloc's option setter (`mimalloc.h`), linked from
                /// `libmimalloc-sys`.
                fn mi_option_set(option: ::std::os::raw::c_int, value: ::std::os::raw::c_long);
            }

            extern "C" fn configure() {
                if ::std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_some() {
                    return;
                }
                // SAFETY: sets a plain integer option; mimalloc accepts
                // options at any time, and this runs before any other
                // thread exists.
                unsafe { mi_option_set($crate::allocator::ARENA_EAGER_COMMIT, 0) }
            }

            // An ELF constructor (`.init_array`): runs before the Rust
            // runtime allocates anything, as mimalloc reads its options
            // when it reserves its first arena, at the first allocation.
            #[cfg(target_os = "linux")]
            #[used]
            #[link_section = ".init_array"]
            static CONFIGURE_BEFORE_MAIN: extern "C" fn() = configure;
        }
    };
}

/// The hub's allocator settings (applied by [`hub_allocator`]).
pub mod allocator {
    pub use mimalloc::MiMalloc;

    /// `mi_option_arena_eager_commit` in the mimalloc v3 that
    /// `libmimalloc-sys` 0.1.49 builds (its Rust constants still number
    /// the v2 options, so the value is spelled out here), set to 0:
    /// commit arena memory as it is used, not all at once. With eager
    /// commit (mimalloc's default on Linux) the hub's idle RSS was 60 MiB
    /// instead of 17 and a 50 MB attachment peaked at 107 MiB instead of
    /// 27, for no throughput gain (docs/benchmarks.md, session 9). An
    /// operator who sets `MIMALLOC_ARENA_EAGER_COMMIT` in the environment
    /// keeps mimalloc's own reading of it (for measuring either way).
    ///
    /// The option is set from an ELF constructor, so on Linux only; the
    /// hub is built for Linux (elsewhere mimalloc's default applies).
    pub const ARENA_EAGER_COMMIT: std::os::raw::c_int = 4;
}

pub mod admin;
pub mod client;
pub mod command;
pub mod connectors;
pub mod demo;
pub mod front;
mod ruletools;
pub mod runtime;
mod singleton;
