//! `drehscheibe-hub` — the integration hub with its whole command line
//! (see [`drehscheibe_cli::command`]); users call it as `drehscheibe`,
//! whose front executable hands it every command but `transform`.

drehscheibe_cli::hub_allocator!();

fn main() -> std::process::ExitCode {
    drehscheibe_cli::command::main()
}
