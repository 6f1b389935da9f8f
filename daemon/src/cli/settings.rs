//! The flags (and `STOCKD_*` variables) shared by the commands that read
//! the configuration: `run` and `config`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};

use crate::config::{self, Overrides, Role, Source, Sourced};

/// Flags override `STOCKD_*` variables, which override the file.
#[derive(Debug, Clone, Args)]
pub struct SettingsArgs {
    /// Configuration file; a missing `stockd.toml` just means defaults.
    #[arg(long, env = "STOCKD_CONFIG", value_name = "FILE", default_value = "stockd.toml")]
    pub config: PathBuf,
    /// Kafka brokers (host:port,…); without them, the embedded memory bus.
    #[arg(long, env = "STOCKD_BROKERS", value_name = "HOST:PORT,…")]
    pub brokers: Option<String>,
    /// Roles to run [default: exchange,investors,sink].
    #[arg(long, env = "STOCKD_ROLES", value_enum, value_delimiter = ',', value_name = "ROLE,…")]
    pub roles: Option<Vec<Role>>,
    /// Valuation interval, e.g. 20s, 500ms, 1m [default: 20s].
    #[arg(long, env = "STOCKD_INTERVAL", value_parser = config::duration::parse, value_name = "DURATION")]
    pub interval: Option<Duration>,
    /// Folder of investorN.wasm, .py and .js investors, watched for changes [default: investors].
    #[arg(long, visible_alias = "dir", env = "STOCKD_PLUGINS", value_name = "DIR")]
    pub plugins: Option<PathBuf>,
    /// Data folder: portfolio CSVs and state [default: data].
    #[arg(long, env = "STOCKD_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Serve the web view (/), /metrics and /health on this address, e.g. 127.0.0.1:9464 [default: off].
    #[arg(long, env = "STOCKD_HTTP", value_name = "ADDR")]
    pub http: Option<SocketAddr>,
}

impl SettingsArgs {
    /// The effective configuration: the file, then the environment, then
    /// the flags. `matches` are this subcommand's, to tell flags from
    /// environment variables.
    pub fn load(&self, matches: &ArgMatches) -> Result<Sourced, config::ConfigError> {
        let source = |id: &str| match matches.value_source(id) {
            Some(ValueSource::EnvVariable) => Source::Environment,
            _ => Source::Flag,
        };
        let overrides = Overrides {
            brokers: self.brokers.clone().map(|v| (v, source("brokers"))),
            roles: self.roles.clone().map(|v| (v, source("roles"))),
            interval: self.interval.map(|v| (v, source("interval"))),
            plugins: self.plugins.clone().map(|v| (v, source("plugins"))),
            data: self.data.clone().map(|v| (v, source("data"))),
            http: self.http.map(|v| (v, source("http"))),
        };
        let file_named =
            matches!(matches.value_source("config"), Some(ValueSource::CommandLine | ValueSource::EnvVariable));
        config::effective(&self.config, file_named, overrides)
    }
}
