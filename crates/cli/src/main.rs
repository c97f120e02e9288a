//! `drehscheibe` — the integration hub's command line (see
//! [`drehscheibe_cli::command`]).

fn main() -> std::process::ExitCode {
    drehscheibe_cli::command::main()
}
