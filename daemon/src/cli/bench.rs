//! `stockd bench`: the measured figures behind docs/PERFORMANCE.md.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::bench::bus::{self, BusBench};
use crate::bench::sink::{self, SinkBench};
use crate::bench::valuation::{self, ValuationBench};
use crate::bus::{KafkaBus, KafkaSettings, MemoryBus};
use crate::config::SyncMode;
use crate::query::Query;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Wall time of a query over a data folder (e.g. one written by `stockd gen-data`).
    Query {
        /// The data folder.
        #[arg(long, value_name = "DIR")]
        data: std::path::PathBuf,
        /// A portfolio whose rows to list.
        #[arg(value_name = "PORTFOLIO")]
        portfolio: Option<String>,
        /// Only the portfolio's rows.
        #[arg(long, requires = "portfolio")]
        no_stats: bool,
        /// Runs (the first one warms the page cache).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Rows per second the sink writes into many files (rows already on the memory bus).
    Sink {
        /// Distinct portfolio files.
        #[arg(long, default_value_t = 1000)]
        files: u32,
        /// Rows in all.
        #[arg(long, default_value_t = 2_000_000)]
        rows: u32,
        /// Messages per batch.
        #[arg(long, default_value_t = 10_000)]
        batch: usize,
        /// Open file handles kept.
        #[arg(long, default_value_t = 512)]
        open_files: usize,
        /// How batches are made durable.
        #[arg(long, value_enum, default_value = "file")]
        sync: SyncArg,
        /// Where the data folder goes (a temporary folder in it).
        #[arg(long, value_name = "DIR", default_value = "/tmp")]
        dir: std::path::PathBuf,
    },
    /// Wall time of one valuation interval with many investors on the memory bus.
    Valuation {
        /// The plugin copied under every investor id (e.g. investors/investor1.wasm, target/test-plugins/wide.wasm).
        #[arg(long, value_name = "FILE")]
        plugin: std::path::PathBuf,
        /// How many investors.
        #[arg(long, default_value_t = 1000)]
        investors: u32,
        /// Intervals to time.
        #[arg(long, default_value_t = 3)]
        intervals: u64,
        /// Where the plugin copies and checkpoints go (a temporary folder in it).
        #[arg(long, value_name = "DIR", default_value = "/tmp")]
        dir: std::path::PathBuf,
    },
    /// Produce → consume throughput and latency of the memory bus, or of Kafka with --brokers.
    Bus {
        /// Kafka brokers; without them, the memory bus.
        #[arg(long, value_name = "HOST:PORT,…")]
        brokers: Option<String>,
        /// Messages to send.
        #[arg(long, default_value_t = 1_000_000)]
        messages: usize,
        /// Bytes per message value.
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Messages per produce batch.
        #[arg(long, default_value_t = 1000)]
        batch: usize,
    },
}

/// `--sync` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SyncArg {
    /// fsync every touched file per batch.
    File,
    /// One syncfs per batch.
    Filesystem,
    /// No sync.
    None,
}

impl SyncArg {
    fn mode(self) -> SyncMode {
        match self {
            SyncArg::File => SyncMode::File,
            SyncArg::Filesystem => SyncMode::Filesystem,
            SyncArg::None => SyncMode::None,
        }
    }
}

pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match &args.what {
        Bench::Query { data, portfolio, no_stats, runs } => query(data, portfolio.as_deref(), *no_stats, *runs)?,
        Bench::Sink { files, rows, batch, open_files, sync, dir } => {
            let dir = tempfile::tempdir_in(dir)?;
            let bench =
                SinkBench { files: *files, rows: *rows, batch: *batch, open_files: *open_files, sync: sync.mode() };
            let report = runtime.block_on(sink::run(&bench, dir.path()))?;
            println!(
                "sink: {} rows into {} files, batches of {}, sync {:?}, {} open handles: {:.2} s, {:.0} rows/s, peak RSS {:.0} MiB",
                report.rows,
                files,
                batch,
                bench.sync,
                open_files,
                report.elapsed.as_secs_f64(),
                report.rows as f64 / report.elapsed.as_secs_f64(),
                report.peak_rss as f64 / 1048576.0
            );
        }
        Bench::Valuation { plugin, investors, intervals, dir } => {
            let dir = tempfile::tempdir_in(dir)?;
            let bench = ValuationBench { plugin: plugin.clone(), investors: *investors, intervals: *intervals };
            let report = runtime.block_on(valuation::run(&bench, dir.path()))?;
            let mib = |bytes: u64| bytes as f64 / 1048576.0;
            println!(
                "valuation: {} investors, {} portfolios per interval; plugins loaded in {:.2} s; RSS {:.1} -> {:.1} MiB ({:.0} KiB per investor)",
                report.investors,
                report.portfolios,
                report.load.as_secs_f64(),
                mib(report.rss.0),
                mib(report.rss.1),
                report.rss.1.saturating_sub(report.rss.0) as f64 / 1024.0 / report.investors as f64
            );
            for (k, took) in report.intervals.iter().enumerate() {
                println!(
                    "  interval {}: {:.3} s ({:.0} valuations/s)",
                    k + 1,
                    took.as_secs_f64(),
                    report.portfolios as f64 / took.as_secs_f64()
                );
            }
        }
        Bench::Bus { brokers, messages, size, batch } => {
            let bench = BusBench { messages: *messages, size: *size, batch: *batch };
            let (name, report) = runtime.block_on(async {
                match brokers {
                    None => Ok::<_, anyhow::Error>((
                        "memory bus".to_string(),
                        bus::run(MemoryBus::default(), &bench).await?,
                    )),
                    Some(brokers) => {
                        let kafka = KafkaBus::connect(KafkaSettings::new(brokers.clone(), "stockd-bench"))?;
                        Ok((format!("kafka bus ({brokers})"), bus::run(kafka, &bench).await?))
                    }
                }
            })?;
            println!(
                "{name}: {} messages of {} bytes in batches of {}: {:.0} msg/s ({:.3} s); produce→consume latency p50 {:?}, p99 {:?}",
                report.messages,
                size,
                batch,
                report.rate(),
                report.elapsed.as_secs_f64(),
                report.p50,
                report.p99
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a query `runs` times in this process and prints the wall times.
fn query(data: &std::path::Path, portfolio: Option<&str>, no_stats: bool, runs: usize) -> anyhow::Result<()> {
    let portfolio = portfolio.map(str::parse).transpose().map_err(|e| anyhow::anyhow!("{e}"))?;
    let query = Query { data: data.to_path_buf(), portfolio, interval: Default::default(), stats: !no_stats };
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..runs.max(1) {
        let started = std::time::Instant::now();
        let answer = crate::query::run(&query)?;
        times.push(started.elapsed().as_secs_f64());
        rows = answer.rows.len() as u64 + answer.stats.iter().map(|s| s.moments.count).sum::<u64>();
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "query {}{}: {} rows read; wall min {:.3} s, median {median:.3} s ({:.1} M rows/s); peak RSS {:.0} MiB",
        data.display(),
        portfolio.map(|p: crate::market::PortfolioId| format!(" {p}")).unwrap_or_default(),
        rows,
        times[0],
        rows as f64 / median / 1e6,
        crate::bench::peak_rss_bytes().unwrap_or(0) as f64 / 1048576.0
    );
    Ok(())
}
