//! The `drehscheibe` front executable, built as a binary of the test
//! suite's own package (see `tests/support/hub_bin.rs` for why): runs
//! `transform` itself and hands every other command to
//! `drehscheibe-under-test-hub` beside it.

fn main() -> std::process::ExitCode {
    drehscheibe_cli::command::front_main()
}
