//! The `stockd` command line: one module per subcommand.

mod investors;
mod output;
mod prices;
mod value;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

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
    /// List the investor plugins of a folder with their portfolios.
    Investors(investors::InvestorsArgs),
    /// Value every portfolio once at the prices in a file (no bus needed).
    Value(value::ValueArgs),
}

/// Where the investor plugins are.
#[derive(Debug, Clone, Args)]
pub struct PluginDirArg {
    /// Folder of investorN.wasm plugin files.
    #[arg(long, visible_alias = "dir", value_name = "DIR", env = "STOCKD_PLUGINS", default_value = "investors")]
    pub plugins: PathBuf,
}

/// Runs the command line; the process exit code is the result.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging("warn");
    let result = match cli.command {
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

/// Logs to stderr, filtered by `RUST_LOG` or else `default`.
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
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
/// limits and the compiled-component cache in `DIR/.cache`.
fn open_registry(dir: &PluginDirArg) -> anyhow::Result<(crate::plugin::PluginRegistry, LoadFailures)> {
    use anyhow::Context;

    let host =
        crate::plugin::PluginHost::new(crate::plugin::PluginLimits::default(), Some(dir.plugins.join(".cache")))?;
    let (registry, changes) = crate::plugin::PluginRegistry::open(host, &dir.plugins)
        .with_context(|| "cannot open the plugin folder (build the seed investors with `just plugins`)")?;
    let failed = changes.iter().filter(|c| matches!(c, crate::plugin::Change::Failed { .. })).count();
    Ok((registry, LoadFailures(failed)))
}
