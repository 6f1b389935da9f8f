//! Configuration: `stockd.toml` (optional), `STOCKD_*` environment variables
//! and command-line flags. A flag overrides the environment, which overrides
//! the file, which overrides the defaults below. Every key is documented
//! where it is declared; `docs/CONFIG.md` and `stockd.example.toml` say the
//! same for users.

pub mod duration;
mod file;
mod market;
mod sources;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use file::{ConfigError, load_file};
pub use market::{ExchangeConfig, MarketConfig, PriceModel};
pub use sources::{Overrides, Source, Sourced, effective};

use crate::plugin::PluginLimits;

/// A part of the pipeline a process runs. `stockd run` runs all three by
/// default; a Kafka deployment may spread them over machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The simulated exchanges, publishing ticks to the stock topic.
    Exchange,
    /// The investor plugins, valuing portfolios every interval.
    Investors,
    /// The CSV sink (App1), writing valuations to the data folder.
    Sink,
}

/// The whole configuration of a `stockd run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Kafka bootstrap servers, `host:port[,host:port…]`. Unset: the
    /// embedded memory bus (one process, nothing to install).
    /// Flag `--brokers`, env `STOCKD_BROKERS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers: Option<String>,
    /// The roles this process runs. Default: all three.
    /// Flag `--roles exchange,investors,sink`, env `STOCKD_ROLES`.
    pub roles: Vec<Role>,
    /// How often every portfolio is valued. Default `20s`.
    /// Flag `--interval`, env `STOCKD_INTERVAL`.
    #[serde(with = "duration")]
    pub interval: Duration,
    /// The folder of investors (`investorN.wasm`, `.py`, `.js`), watched for changes.
    /// Default `investors`. Flag `--plugins`, env `STOCKD_PLUGINS`.
    pub plugins: PathBuf,
    /// The data folder: the CSV files, and the state under `.state/` and
    /// `.sink/`. Default `data`. Flag `--data`, env `STOCKD_DATA`.
    pub data: PathBuf,
    /// Serve the web view (`/`), `/metrics` and `/health` on this address,
    /// e.g. `127.0.0.1:9464`. Default: off (`just run` turns it on there).
    /// Flag `--http`, env `STOCKD_HTTP`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<SocketAddr>,
    /// Topic names and layout.
    pub topics: TopicsConfig,
    /// Kafka client settings (used with `brokers`).
    pub kafka: KafkaConfig,
    /// The embedded memory bus (used when `brokers` is unset).
    pub memory_bus: MemoryBusConfig,
    /// The simulated exchanges.
    pub market: MarketConfig,
    /// The investor runtime: the plugins' sandbox, quarantine, reloading.
    pub investors: InvestorsConfig,
    /// The CSV sink.
    pub sink: SinkConfig,
    /// The Parquet archive of the sink's rows.
    pub archive: ArchiveConfig,
}

/// Topic names and layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TopicsConfig {
    /// Where the exchanges publish ticks (key = ticker). Default `StockExchange`.
    pub stock_exchange: String,
    /// Where investors publish valuations (key = portfolio id). Default `Portfolios`.
    pub portfolios: String,
    /// Partitions of the portfolio topic when stockd creates it (the sinks
    /// split them). Default 1, as in the seed; keys keep per-portfolio order
    /// with any number. The tick topic always gets one.
    pub partitions: i32,
    /// Replication factor when stockd creates a topic. Default 1.
    pub replication: i16,
}

/// Kafka client settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct KafkaConfig {
    /// How long a consumer may go silent before its group hands its
    /// partitions to another member: after a crash, the restarted process
    /// waits up to this long. Kafka brokers accept 6s to 5m by default.
    /// Default `10s`.
    #[serde(with = "duration")]
    pub session_timeout: Duration,
    /// How long start-up waits for the brokers (retrying with backoff, a
    /// log line each time) before it gives up with an error. Default `2m`.
    #[serde(with = "duration")]
    pub startup_timeout: Duration,
    /// Put before the consumer groups' names (`app1`, `investor-N`), so
    /// that several deployments can share a cluster. Default "" (the
    /// seed's names).
    pub group_prefix: String,
}

impl Config {
    /// The deployment's consumer groups (after `kafka.group-prefix`).
    pub fn groups(&self) -> crate::groups::Groups {
        crate::groups::Groups::new(self.kafka.group_prefix.clone())
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            session_timeout: Duration::from_secs(10),
            startup_timeout: Duration::from_secs(120),
            group_prefix: String::new(),
        }
    }
}

/// The embedded memory bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MemoryBusConfig {
    /// Messages kept per topic, read or not, for groups that start later.
    /// A message a live consumer has not read is never dropped: the
    /// producer waits for room instead. Default 1,000,000.
    pub retention: usize,
    /// How long a producer waits for room before its message fails with an
    /// error naming the consumer group behind (an investor keeps the
    /// interval and publishes it next time). Default `30s`.
    #[serde(with = "duration")]
    pub produce_timeout: Duration,
}

/// The investor runtime: the `[investors]` section (the plugin folder itself
/// is the top-level `plugins` key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct InvestorsConfig {
    /// Per-call time budget. Default `250ms`.
    #[serde(with = "duration")]
    pub call_timeout: Duration,
    /// Memory cap per instance, in bytes. Default 67108864 (64 MiB).
    pub max_memory_bytes: usize,
    /// Consecutive failed intervals after which an investor is quarantined
    /// until its file changes. Default 5.
    pub quarantine_after: u32,
    /// How long a plugin file must be quiet before it is (re)loaded.
    /// Default `250ms`.
    #[serde(with = "duration")]
    pub reload_debounce: Duration,
    /// Where compiled plugins are cached (by content hash), writable by the
    /// daemon only. Default: `.cache` inside the plugin folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
    /// Where the interpreter components that run investor scripts are
    /// (`python.wasm`, `js.wasm`, built by `just plugins`). Default:
    /// `.interpreters` inside the plugin folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interpreters: Option<PathBuf>,
}

/// How the sink makes rows durable before it commits their offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SyncMode {
    /// fsync every file touched by a batch: one call per file, too slow for
    /// thousands of files per batch; for a data folder on a file system
    /// shared with busy writers, whose data `filesystem` would flush too.
    File,
    /// One `syncfs` of the data folder's file system per batch (the
    /// default): the same guarantee as `file` in one call, however many
    /// files the batch touched; it also flushes other writers on that file
    /// system.
    Filesystem,
    /// No sync before committing: a power loss (not a process crash) can
    /// lose or tear the last rows. Faster; weaker.
    None,
}

/// The CSV sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SinkConfig {
    /// Open file handles kept (least recently used ones are closed); the
    /// process raises its soft descriptor limit to the hard one, and keeps
    /// fewer if even that is too low. Default 8192.
    pub open_files: usize,
    /// How a batch is made durable before its offsets are committed.
    /// Default `filesystem` (one syncfs per batch, however many files).
    pub sync: SyncMode,
    /// Messages read per batch: each batch costs one sync and two journal
    /// writes. Default 100,000.
    pub batch: usize,
    /// Keep only a recent window of rows in the CSV files: when a window of
    /// this length starts (windows are aligned to the epoch, so `1d` starts
    /// at 00:00 UTC), every portfolio file is cut back to its header; its
    /// rows are in the archive. Needs the archive, holding every CSV row
    /// (`stockd archive` brings an older folder's in). Default: unset, keep
    /// every row. At 1,000 × 1,000 portfolios every 20 s the CSV files grow
    /// by about 224 GB a day: such a deployment needs a window.
    #[serde(default, with = "duration::optional", skip_serializing_if = "Option::is_none")]
    pub csv_window: Option<Duration>,
    /// Write the per-portfolio CSV files. `false` keeps the rows in the
    /// archive alone, for deployments whose users read history through
    /// `stockd query`, the web view, DuckDB or Spark: the sink then makes no
    /// per-file appends, its main cost at 1,000 × 1,000 portfolios. Needs
    /// the archive, holding every row of the CSV files already in the
    /// folder (`stockd archive`). Default true.
    pub csv_files: bool,
}

/// The Parquet archive under `DATA/archive/` (see `docs/OPERATIONS.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ArchiveConfig {
    /// Write every row the sink writes into the archive too, in the same
    /// batch. Default true.
    pub enabled: bool,
    /// Drop the hour partitions older than this (by their end). Default:
    /// unset, keep every hour.
    #[serde(default, with = "duration::optional", skip_serializing_if = "Option::is_none")]
    pub retention: Option<Duration>,
    /// Drop the oldest hour partitions while the archive is larger than
    /// this many bytes (the newest two hours are always kept). Default:
    /// unset, no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        ArchiveConfig { enabled: true, retention: None, max_bytes: None }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            brokers: None,
            roles: vec![Role::Exchange, Role::Investors, Role::Sink],
            interval: Duration::from_secs(20),
            plugins: PathBuf::from("investors"),
            data: PathBuf::from("data"),
            http: None,
            topics: TopicsConfig::default(),
            kafka: KafkaConfig::default(),
            memory_bus: MemoryBusConfig::default(),
            market: MarketConfig::default(),
            investors: InvestorsConfig::default(),
            sink: SinkConfig::default(),
            archive: ArchiveConfig::default(),
        }
    }
}

impl Default for TopicsConfig {
    fn default() -> Self {
        TopicsConfig {
            stock_exchange: "StockExchange".to_string(),
            portfolios: "Portfolios".to_string(),
            partitions: 1,
            replication: 1,
        }
    }
}

impl Default for MemoryBusConfig {
    fn default() -> Self {
        MemoryBusConfig {
            retention: crate::bus::DEFAULT_RETENTION,
            produce_timeout: crate::bus::DEFAULT_PRODUCE_TIMEOUT,
        }
    }
}

impl Default for InvestorsConfig {
    fn default() -> Self {
        let limits = PluginLimits::default();
        InvestorsConfig {
            call_timeout: limits.call_timeout,
            max_memory_bytes: limits.max_memory_bytes,
            quarantine_after: 5,
            reload_debounce: Duration::from_millis(250),
            cache_dir: None,
            interpreters: None,
        }
    }
}

impl InvestorsConfig {
    /// The sandbox limits these settings give.
    pub fn limits(&self) -> PluginLimits {
        PluginLimits {
            call_timeout: self.call_timeout,
            max_memory_bytes: self.max_memory_bytes,
            ..PluginLimits::default()
        }
    }
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig { open_files: 8192, sync: SyncMode::Filesystem, batch: 100_000, csv_window: None, csv_files: true }
    }
}

impl Config {
    /// Checks what the types cannot: every problem names its key.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |ok: bool, key: &str, what: &str| if ok { Ok(()) } else { Err(format!("{key}: {what}")) };
        positive(!self.roles.is_empty(), "roles", "at least one of exchange, investors, sink")?;
        positive(self.interval >= Duration::from_millis(1), "interval", "must be at least 1ms")?;
        positive(!self.topics.stock_exchange.is_empty(), "topics.stock-exchange", "must not be empty")?;
        positive(!self.topics.portfolios.is_empty(), "topics.portfolios", "must not be empty")?;
        positive(
            self.topics.stock_exchange != self.topics.portfolios,
            "topics.portfolios",
            "must differ from topics.stock-exchange",
        )?;
        positive(self.topics.partitions >= 1, "topics.partitions", "must be at least 1")?;
        positive(self.topics.replication >= 1, "topics.replication", "must be at least 1")?;
        positive(self.memory_bus.retention >= 1, "memory-bus.retention", "must be at least 1")?;
        positive(
            self.memory_bus.produce_timeout >= Duration::from_millis(1),
            "memory-bus.produce-timeout",
            "must be at least 1ms",
        )?;
        positive(self.investors.max_memory_bytes >= 1 << 20, "investors.max-memory-bytes", "must be at least 1048576")?;
        positive(self.investors.quarantine_after >= 1, "investors.quarantine-after", "must be at least 1")?;
        positive(self.sink.open_files >= 1, "sink.open-files", "must be at least 1")?;
        positive(self.sink.batch >= 1, "sink.batch", "must be at least 1")?;
        positive(
            self.sink.csv_window.is_none() || self.archive.enabled,
            "sink.csv-window",
            "needs the archive (archive.enabled = true): the CSV rows it cuts must be kept there",
        )?;
        positive(
            self.sink.csv_files || self.archive.enabled,
            "sink.csv-files",
            "= false needs the archive (archive.enabled = true): it is then the only copy of the rows",
        )?;
        positive(
            self.sink.csv_files || self.sink.csv_window.is_none(),
            "sink.csv-window",
            "has no CSV rows to cut with sink.csv-files = false",
        )?;
        positive(self.archive.max_bytes != Some(0), "archive.max-bytes", "must be more than 0")?;
        if self.brokers.as_deref().is_some_and(|b| b.trim().is_empty()) {
            return Err("brokers: must be host:port[,host:port…] (leave it unset for the memory bus)".to_string());
        }
        self.market.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_in_the_archive_alone_need_the_archive_and_no_csv_window() {
        let mut config = Config::default();
        config.sink.csv_files = false;
        assert_eq!(config.validate(), Ok(()));
        config.archive.enabled = false;
        let error = config.validate().unwrap_err();
        assert!(error.contains("sink.csv-files") && error.contains("archive.enabled"), "{error}");
        config.archive.enabled = true;
        config.sink.csv_window = Some(Duration::from_secs(60));
        let error = config.validate().unwrap_err();
        assert!(error.contains("sink.csv-window") && error.contains("csv-files = false"), "{error}");
    }
}
