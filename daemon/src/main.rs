//! The `stockd` command.

fn main() -> std::process::ExitCode {
    stockd::cli::main()
}
