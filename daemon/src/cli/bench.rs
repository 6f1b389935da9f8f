//! `stockd bench`: the measured figures behind docs/PERFORMANCE.md.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::bench::bus::{self, BusBench};
use crate::bench::compaction::{self, CompactionBench};
use crate::bench::pipeline::{self, PipelineBench, PipelineReport};
use crate::bench::sink::{self, SinkBench};
use crate::bench::valuation::{self, ValuationBench};
use crate::bench::web;
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
    ///
    /// With --existing, the steady state: the files exist already and each pass appends one row to
    /// every one of them, beside a pass of the physical baseline on the same folder (open for
    /// appending, write one line, close, for every file; then one syncfs; one thread).
    Sink {
        /// Distinct portfolio files.
        #[arg(long, default_value_t = 1000)]
        files: u32,
        /// Rows in all (without --existing).
        #[arg(long, default_value_t = 2_000_000)]
        rows: u32,
        /// The steady state: append one row to each of --files existing files, --passes times.
        #[arg(long)]
        existing: bool,
        /// Passes of the steady state (each beside a baseline pass).
        #[arg(long, default_value_t = 2, requires = "existing")]
        passes: u32,
        /// Messages per batch.
        #[arg(long, default_value_t = 100_000)]
        batch: usize,
        /// Open file handles kept.
        #[arg(long, default_value_t = 8192)]
        open_files: usize,
        /// How batches are made durable.
        #[arg(long, value_enum, default_value = "filesystem")]
        sync: SyncArg,
        /// Where the data folder goes (a temporary folder in it).
        #[arg(long, value_name = "DIR", default_value = "/tmp")]
        dir: std::path::PathBuf,
    },
    /// What keeping the web view current costs per interval at scale, against decoding the
    /// messages alone; the cost of a page request for each sort; the view's memory.
    Web {
        /// Investors.
        #[arg(long, default_value_t = 1000)]
        investors: u32,
        /// Portfolios per investor.
        #[arg(long, default_value_t = 1000)]
        portfolios: u32,
        /// Intervals applied.
        #[arg(long, default_value_t = 3)]
        intervals: u32,
    },
    /// One hour of the archive as the sink writes it (a batch file per partition and interval),
    /// then its compaction: bytes per row per column before and after, the compaction's time
    /// beside reading every batch file once, and one portfolio's rows over the hour (the history
    /// page's read) before and after.
    Compaction {
        /// Investors.
        #[arg(long, default_value_t = 1000)]
        investors: u32,
        /// Portfolios per investor.
        #[arg(long, default_value_t = 1000)]
        portfolios: u32,
        /// Intervals in the hour (180 at 20 s).
        #[arg(long, default_value_t = 180)]
        intervals: u32,
        /// Batch files per interval.
        #[arg(long, default_value_t = 8)]
        files_per_interval: u32,
        /// Run a maintenance pass every this many intervals while the hour is open, as the
        /// sink's passes do (its batch files become generations); 0: none.
        #[arg(long, default_value_t = 0)]
        open_every: u32,
        /// Where the data folder goes (a temporary folder in it, removed after the run).
        #[arg(long, value_name = "DIR", default_value = ".")]
        dir: std::path::PathBuf,
    },
    /// Wall time of one valuation interval with many investors on the memory bus.
    Valuation {
        /// The plugin copied under every investor id (e.g. investors/investor1.wasm, target/test-plugins/wide.wasm,
        /// plugins/scripts/investor1.py).
        #[arg(long, value_name = "FILE")]
        plugin: std::path::PathBuf,
        /// How many investors.
        #[arg(long, default_value_t = 1000)]
        investors: u32,
        /// Intervals to time.
        #[arg(long, default_value_t = 3)]
        intervals: u64,
        /// The interpreter components, when the plugin is a script.
        #[arg(long, value_name = "DIR", default_value = "investors/.interpreters")]
        interpreters: std::path::PathBuf,
        /// Where the plugin copies and checkpoints go (a temporary folder in it).
        #[arg(long, value_name = "DIR", default_value = "/tmp")]
        dir: std::path::PathBuf,
    },
    /// The whole pipeline at scale: exchanges, N copies of a plugin, the memory bus and the sink
    /// writing to disk; per interval what was published, made durable, the lag, CPU and RSS. Exits
    /// non-zero if a target is missed (every interval valued and durable within 75 % of the
    /// interval, every valuation a row on disk, nothing missed).
    Pipeline {
        /// The plugin copied under every investor id (its portfolios are the portfolios per
        /// investor; `target/test-plugins/wide.wasm` has 1,000).
        #[arg(long, value_name = "FILE", default_value = "target/test-plugins/wide.wasm")]
        plugin: std::path::PathBuf,
        /// How many investors.
        #[arg(long, default_value_t = 1000)]
        investors: u32,
        /// Portfolios per investor: checked against what the plugin declares.
        #[arg(long)]
        portfolios: Option<u64>,
        /// The valuation interval.
        #[arg(long, default_value = "20s", value_parser = crate::config::duration::parse)]
        interval: std::time::Duration,
        /// Intervals to run.
        #[arg(long, default_value_t = 10)]
        intervals: u64,
        /// Start with an empty data folder, so that the first intervals also create every
        /// portfolio file (by default they are created before the run, timed apart).
        #[arg(long)]
        fresh: bool,
        /// Serve the web view on this address while it runs (its cost is then part of the figures).
        #[arg(long, value_name = "ADDR")]
        http: Option<std::net::SocketAddr>,
        /// Without the Parquet archive (archive.enabled = false), to measure what it costs.
        #[arg(long)]
        no_archive: bool,
        /// Keep the CSV files to a window of this length (sink.csv-window), e.g. 30m.
        #[arg(long, value_name = "DURATION", value_parser = crate::config::duration::parse)]
        csv_window: Option<std::time::Duration>,
        /// Rows in the archive alone, no per-portfolio CSV files (sink.csv-files = false).
        #[arg(long, conflicts_with_all = ["no_archive", "csv_window"])]
        no_csv: bool,
        /// Where the plugin copies, state and data folder go (a temporary folder in it, removed
        /// after the run).
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

fn print_compaction(report: &compaction::CompactionReport) {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    println!("compaction: one hour of {} rows", report.rows);
    if report.open_passes.0 > 0 {
        println!(
            "  passes while the hour was open: {}, {:.1} s in all",
            report.open_passes.0,
            report.open_passes.1.as_secs_f64()
        );
    }
    for (label, sizes) in [("at the hour's end", &report.before), ("compacted", &report.after)] {
        let columns: Vec<String> = sizes.columns.iter().map(|(name, bytes)| format!("{name} {bytes:.2}")).collect();
        println!("  {label}: {} files, {:.2} B/row on disk ({})", sizes.files, sizes.total, columns.join(", "));
    }
    println!(
        "  compaction at the close {:.1} s; reading the hour's files once {:.1} s (compaction / read = {:.2})",
        report.compaction.as_secs_f64(),
        report.read_all.as_secs_f64(),
        report.compaction.as_secs_f64() / report.read_all.as_secs_f64()
    );
    println!(
        "  one portfolio's rows over the hour (median of 5): {:.1} ms at the hour's end, {:.1} ms compacted",
        ms(report.one_portfolio.0),
        ms(report.one_portfolio.1)
    );
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
        Bench::Sink { files, rows, existing, passes, batch, open_files, sync, dir } => {
            let dir = tempfile::tempdir_in(dir)?;
            let passes = if *existing { (*passes).max(1) } else { 0 };
            let bench = SinkBench {
                files: *files,
                rows: *rows,
                batch: *batch,
                open_files: *open_files,
                sync: sync.mode(),
                passes,
            };
            let report = runtime.block_on(sink::run(&bench, dir.path()))?;
            if passes > 0 {
                println!(
                    "sink steady state: {files} existing files, one row each per pass, batches of {batch}, sync {:?}, {open_files} open handles",
                    bench.sync
                );
                for (pass, (sink, baseline)) in report.passes.iter().enumerate() {
                    let rate = |took: &std::time::Duration| f64::from(*files) / took.as_secs_f64();
                    println!(
                        "  pass {}: sink {:.2} s ({:.0} rows/s); baseline {:.2} s ({:.0} files/s); sink / baseline = {:.2}",
                        pass + 1,
                        sink.as_secs_f64(),
                        rate(sink),
                        baseline.as_secs_f64(),
                        rate(baseline),
                        baseline.as_secs_f64() / sink.as_secs_f64()
                    );
                }
                println!("  peak RSS {:.0} MiB", report.peak_rss as f64 / 1048576.0);
                return Ok(ExitCode::SUCCESS);
            }
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
        Bench::Compaction { investors, portfolios, intervals, files_per_interval, open_every, dir } => {
            let folder = tempfile::tempdir_in(dir)?;
            let bench = CompactionBench {
                investors: *investors,
                portfolios: *portfolios,
                intervals: *intervals,
                files_per_interval: *files_per_interval,
                open_every: *open_every,
            };
            print_compaction(&compaction::run(&bench, folder.path())?);
        }
        Bench::Web { investors, portfolios, intervals } => {
            let bench = web::WebBench { investors: *investors, portfolios: *portfolios, intervals: *intervals };
            let report = web::run(&bench);
            let mib = |bytes: u64| bytes as f64 / 1048576.0;
            println!(
                "web view: {} portfolios; board RSS {:.1} -> {:.1} MiB ({:.0} bytes per portfolio)",
                report.portfolios,
                mib(report.rss.0),
                mib(report.rss.1),
                report.rss.1.saturating_sub(report.rss.0) as f64 / report.portfolios.max(1) as f64
            );
            for (k, cost) in report.intervals.iter().enumerate() {
                println!(
                    "  interval {}: decode only {:.3} s, decode + apply {:.3} s ({:.2}x the decode)",
                    k + 1,
                    cost.decode.as_secs_f64(),
                    cost.apply.as_secs_f64(),
                    cost.apply.as_secs_f64() / cost.decode.as_secs_f64()
                );
            }
            for (label, took) in &report.pages {
                println!("  page of 50, {label}: {:.1} ms (median of 20)", took.as_secs_f64() * 1000.0);
            }
        }
        Bench::Valuation { plugin, investors, intervals, interpreters, dir } => {
            let dir = tempfile::tempdir_in(dir)?;
            let bench = ValuationBench {
                plugin: plugin.clone(),
                investors: *investors,
                intervals: *intervals,
                interpreters: std::path::absolute(interpreters)?,
            };
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
        Bench::Pipeline {
            plugin,
            investors,
            portfolios,
            interval,
            intervals,
            fresh,
            http,
            no_archive,
            csv_window,
            no_csv,
            dir,
        } => {
            let dir = tempfile::tempdir_in(dir)?;
            let bench = PipelineBench {
                plugin: plugin.clone(),
                investors: *investors,
                portfolios: *portfolios,
                interval: *interval,
                intervals: *intervals,
                fresh: *fresh,
                http: *http,
                archive: !*no_archive,
                csv_window: *csv_window,
                csv_files: !*no_csv,
            };
            let report = runtime.block_on(pipeline::run(&bench, dir.path()))?;
            print_pipeline(&bench, &report);
            let failures = report.failures(*interval);
            if failures.is_empty() {
                println!(
                    "targets met: every interval valued and durable within {:.0} % of the interval, every valuation a row, nothing missed",
                    pipeline::SINK_DEADLINE_SHARE * 100.0
                );
            } else {
                println!("targets missed:");
                failures.iter().for_each(|failure| println!("  {failure}"));
                return Ok(ExitCode::FAILURE);
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

/// The pipeline benchmark's table: one line per interval, then the totals.
fn print_pipeline(bench: &PipelineBench, report: &PipelineReport) {
    println!(
        "pipeline: {} investors, {} portfolios, interval {}, {} intervals",
        bench.investors,
        report.portfolios,
        crate::config::duration::format(bench.interval),
        bench.intervals
    );
    if let Some(took) = report.created_files {
        println!(
            "  the {} portfolio files created beforehand in {:.1} s (--fresh: by the sink)",
            report.portfolios,
            took.as_secs_f64()
        );
    }
    println!("  interval  valuations        rows  lag at end  durable after  CPU (of {} cores)   RSS", num_cores());
    for (k, interval) in report.intervals.iter().enumerate() {
        println!(
            "  {:>8}  {:>10}  {:>10}  {:>10}  {:>13}  {:>17}  {:>4.0} MiB",
            k + 1,
            interval.valuations,
            interval.rows,
            interval.lag,
            interval.sink_done.map_or("—".to_string(), |done| format!("{:.2} s", done.as_secs_f64())),
            format!(
                "{:.1} s ({:.0} %)",
                interval.cpu.as_secs_f64(),
                interval.cpu.as_secs_f64() / bench.interval.as_secs_f64() * 100.0
            ),
            interval.rss as f64 / 1048576.0
        );
    }
    println!(
        "  valuations published {}, rows on disk {}, messages missed {}",
        report.published, report.rows_on_disk, report.missed
    );
    let per_row = |bytes: u64, rows: u64| if rows == 0 { 0.0 } else { bytes as f64 / rows as f64 };
    if bench.csv_files {
        println!(
            "  CSV files: {} ({:.1} bytes per row)",
            crate::format::bytes(report.csv_bytes),
            per_row(report.csv_bytes, report.rows_on_disk)
        );
    } else {
        println!("  CSV files: none (--no-csv: the archive alone)");
    }
    if let Some(rows) = report.archive_rows {
        println!(
            "  archive: {rows} rows, {} ({:.1} bytes per row, uncompacted batch files)",
            crate::format::bytes(report.archive_bytes),
            per_row(report.archive_bytes, rows)
        );
    }
    println!(
        "  evaluate: {:.1} µs per call on average, after {:.1} ms waiting for a free core",
        report.plugin_call_mean.as_secs_f64() * 1e6,
        report.plugin_wait_mean.as_secs_f64() * 1e3
    );
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
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
