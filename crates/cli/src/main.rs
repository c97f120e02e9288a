//! `drehscheibe` — the integration hub's command line. This executable
//! runs `drehscheibe transform` itself and hands every other command to
//! `drehscheibe-hub` next to it (see [`drehscheibe_cli::front`]).

fn main() -> std::process::ExitCode {
    drehscheibe_cli::command::front_main()
}
