//! The `stockd` command line: one module per subcommand.

mod archive;
mod bench;
mod config;
mod investors;
mod output;
mod prices;
mod query;
mod run;
mod settings;
mod tail;
mod value;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

pub use output::Format;

/// stockd: stock exchanges, WASM investors and portfolio files over Kafka.
#[derive(Debug, Parser)]
#[command(name = "stockd", version, about, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: exchanges, investors and sink (or the --roles given).
    Run(run::RunArgs),
    /// Print the effective configuration and where each setting came from.
    Config(config::ConfigArgs),
    /// Query the portfolio files: one portfolio's rows and every portfolio's statistics.
    Query(query::QueryArgs),
    /// Build the data folder's Parquet archive from its CSV files (with the sink stopped).
    Archive(archive::ArchiveArgs),
    /// Write a test dataset in the sink's layout.
    GenData(query::GenDataArgs),
    /// Print a Kafka topic's messages as they arrive.
    Tail(tail::TailArgs),
    /// Measure throughput and latency (figures for docs/PERFORMANCE.md).
    Bench(bench::BenchArgs),
    /// List the investor plugins of a folder with their portfolios.
    Investors(investors::InvestorsArgs),
    /// Value every portfolio once at the prices in a file (no bus needed).
    Value(value::ValueArgs),
}

/// Where the investor plugins are.
#[derive(Debug, Clone, Args)]
pub struct PluginDirArg {
    /// Folder of investorN.wasm, investorN.py and investorN.js files.
    #[arg(long, visible_alias = "dir", value_name = "DIR", env = "STOCKD_PLUGINS", default_value = "investors")]
    pub plugins: PathBuf,
}

/// Runs the command line; the process exit code is the result.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let sub_matches = matches.subcommand().map(|(_, m)| m.clone()).unwrap_or_default();
    // The daemon logs its events; every other command only its warnings.
    init_logging(if matches!(cli.command, Command::Run(_)) { "info" } else { "warn" });
    let result = match cli.command {
        Command::Run(args) => run::run(&args, &sub_matches),
        Command::Config(args) => config::run(&args, &sub_matches),
        Command::Query(args) => query::run(&args),
        Command::GenData(args) => query::gen_data(&args),
        Command::Archive(args) => archive::run(&args),
        Command::Tail(args) => tail::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Investors(args) => investors::run(&args),
        Command::Value(args) => value::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` or else `default`; in colour only
/// when stderr is a terminal and `NO_COLOR` is unset or empty.
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colour = use_colour(std::io::IsTerminal::is_terminal(&std::io::stderr()), std::env::var_os("NO_COLOR"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_target(false)
        .init();
}

/// Whether to colour the log: on a terminal, unless `NO_COLOR` is set to a
/// non-empty value (<https://no-color.org>).
fn use_colour(terminal: bool, no_colour: Option<std::ffi::OsString>) -> bool {
    terminal && no_colour.is_none_or(|value| value.is_empty())
}

/// Files of a plugin folder that failed to load.
struct LoadFailures(usize);

impl LoadFailures {
    /// Failure if any file failed to load (each was logged when it failed).
    fn exit_code(&self) -> ExitCode {
        if self.0 == 0 {
            ExitCode::SUCCESS
        } else {
            eprintln!("error: {} plugin file(s) failed to load (see the warnings above)", self.0);
            ExitCode::FAILURE
        }
    }
}

/// Loads the plugins of a folder for a one-shot command, with the default
/// limits, the compiled-component cache in `DIR/.cache` and the script
/// interpreters in `DIR/.interpreters`.
fn open_registry(dir: &PluginDirArg) -> anyhow::Result<(crate::plugin::PluginRegistry, LoadFailures)> {
    use anyhow::Context;

    let host = crate::plugin::PluginHost::with_interpreters(
        crate::plugin::PluginLimits::default(),
        Some(dir.plugins.join(".cache")),
        Some(dir.plugins.join(".interpreters")),
    )?;
    let (registry, changes) = crate::plugin::PluginRegistry::open(host, &dir.plugins)
        .with_context(|| "cannot open the plugin folder (build the seed investors with `just plugins`)")?;
    let failed = changes.iter().filter(|c| matches!(c, crate::plugin::Change::Failed { .. })).count();
    Ok((registry, LoadFailures(failed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some("".into())));
        assert!(!use_colour(true, Some("1".into())));
        assert!(!use_colour(false, None));
    }
}
