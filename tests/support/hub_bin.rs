//! The `drehscheibe-hub` executable (the whole command line, which the
//! front `drehscheibe-under-test` hands every command but `transform`),
//! built as a binary of the test suite's own package so that `cargo test`
//! and `cargo bench` build it in the same invocation, with the same
//! unified features, as the tests that start it (see `drehscheibe_bin` in
//! `tests/support/lib.rs`). A `cargo build -p drehscheibe-cli` from inside
//! a test resolved features differently and rebuilt half the workspace on
//! every alternation between the two.

drehscheibe_cli::hub_allocator!();

fn main() -> std::process::ExitCode {
    drehscheibe_cli::command::main()
}
