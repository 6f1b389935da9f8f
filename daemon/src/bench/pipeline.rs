//! The whole pipeline at a given scale, through the daemon's own path:
//! exchanges, the investor runtime with real plugins (`investors` copies of
//! one plugin file), the memory bus and the sink writing to a data folder
//! on disk, for `intervals` intervals. Per interval it reports what a user
//! of that scale checks: valuations published, rows made durable, the
//! sink's lag when the next interval starts, how long after the interval
//! the sink had made it durable, CPU and RSS. At the end every row on disk
//! is counted and compared with the valuations published.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use rayon::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::bus::MemoryBus;
use crate::config::Config;
use crate::market::{InvestorId, PortfolioId};
use crate::metrics::Metrics;

/// What to run.
#[derive(Debug, Clone)]
pub struct PipelineBench {
    /// The plugin file copied under every investor id.
    pub plugin: PathBuf,
    /// How many investors.
    pub investors: u32,
    /// Portfolios per investor the plugin must declare, if given.
    pub portfolios: Option<u64>,
    /// The valuation interval.
    pub interval: Duration,
    /// Intervals to run.
    pub intervals: u64,
    /// Start with an empty data folder: the first intervals also create
    /// every portfolio file. Otherwise the files are created (timed apart)
    /// before the daemon starts, as they are after the first interval of a
    /// long run.
    pub fresh: bool,
    /// Serve the web view (and metrics) on this address, to measure what it
    /// costs the pipeline.
    pub http: Option<std::net::SocketAddr>,
    /// Write the Parquet archive too (`archive.enabled`).
    pub archive: bool,
    /// The CSV window (`sink.csv-window`), if any.
    pub csv_window: Option<Duration>,
    /// Write the portfolio files (`sink.csv-files`).
    pub csv_files: bool,
}

/// One interval's figures.
#[derive(Debug, Clone)]
pub struct IntervalReport {
    /// Valuations published for the interval.
    pub valuations: u64,
    /// Rows made durable since the previous interval's end.
    pub rows: u64,
    /// Valuations published but not yet rows when the next interval began.
    pub lag: u64,
    /// From the interval's start until every valuation of it was a durable
    /// row; `None` if that had not happened when the next interval began.
    pub sink_done: Option<Duration>,
    /// CPU time the process used during the interval.
    pub cpu: Duration,
    /// Resident memory at the interval's end.
    pub rss: u64,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct PipelineReport {
    /// Portfolios per interval (every investor's, as the plugin declares).
    pub portfolios: u64,
    /// Per interval.
    pub intervals: Vec<IntervalReport>,
    /// Valuations published in all.
    pub published: u64,
    /// Rows found in the portfolio files at the end.
    pub rows_on_disk: u64,
    /// Messages a consumer group missed (must be 0).
    pub missed: u64,
    /// Time to create the portfolio files before the run (not `fresh`).
    pub created_files: Option<Duration>,
    /// Mean time an `evaluate` call ran, and mean time it waited for a
    /// free core before (from `stockd_plugin_call_seconds` and
    /// `stockd_plugin_wait_seconds`).
    pub plugin_call_mean: Duration,
    /// See `plugin_call_mean`.
    pub plugin_wait_mean: Duration,
    /// The CSV files were cut by a window during the run, or not written
    /// (their rows are then fewer than the valuations).
    pub csv_cut: bool,
    /// Rows in the archive at the end (with the archive on).
    pub archive_rows: Option<u64>,
    /// Bytes of the archive at the end.
    pub archive_bytes: u64,
    /// Bytes of the portfolio files at the end.
    pub csv_bytes: u64,
}

/// The share of the interval within which the sink must have made an
/// interval's rows durable (15 s of 20 s).
pub const SINK_DEADLINE_SHARE: f64 = 0.75;

impl PipelineReport {
    /// Why the run misses its targets: every interval fully valued and made
    /// durable within [`SINK_DEADLINE_SHARE`] of the interval, every
    /// valuation a row, nothing missed. Empty: all met.
    pub fn failures(&self, interval: Duration) -> Vec<String> {
        let mut failures = Vec::new();
        let deadline = interval.mul_f64(SINK_DEADLINE_SHARE);
        for (k, report) in self.intervals.iter().enumerate() {
            let k = k + 1;
            if report.valuations != self.portfolios {
                failures
                    .push(format!("interval {k}: {} of {} valuations published", report.valuations, self.portfolios));
            }
            match report.sink_done {
                Some(done) if done <= deadline => {}
                Some(done) => failures.push(format!("interval {k}: durable after {done:.1?}, over {deadline:.1?}")),
                None => failures.push(format!("interval {k}: not durable before the next interval")),
            }
        }
        if let Some(archived) = self.archive_rows
            && archived != self.published
        {
            failures.push(format!("{archived} rows in the archive for {} valuations published", self.published));
        }
        if self.rows_on_disk != self.published && !self.csv_cut {
            failures.push(format!("{} rows on disk for {} valuations published", self.rows_on_disk, self.published));
        }
        if self.missed > 0 {
            failures.push(format!("{} messages missed", self.missed));
        }
        failures
    }
}

/// Runs the benchmark in `dir` (plugins, data and state go there).
pub async fn run(bench: &PipelineBench, dir: &Path) -> anyhow::Result<PipelineReport> {
    let plugins = super::deploy_copies(&bench.plugin, bench.investors, &dir.join("investors"))?;
    let numbers: Vec<u32> = {
        let host =
            crate::plugin::PluginHost::new(crate::plugin::PluginLimits::default(), Some(plugins.join(".cache")))?;
        let image = host.load(InvestorId::new(1)?, &bench.plugin)?;
        image.portfolios().iter().map(|p| p.id).collect()
    };
    if let Some(wanted) = bench.portfolios
        && wanted != numbers.len() as u64
    {
        anyhow::bail!(
            "--portfolios {wanted}: {} declares {} portfolios (pass a plugin that declares {wanted})",
            bench.plugin.display(),
            numbers.len()
        );
    }
    let portfolios = numbers.len() as u64 * u64::from(bench.investors);
    let config = Config {
        interval: bench.interval,
        plugins: plugins.clone(),
        data: dir.join("data"),
        http: bench.http,
        archive: crate::config::ArchiveConfig { enabled: bench.archive, ..Default::default() },
        sink: crate::config::SinkConfig {
            csv_window: bench.csv_window,
            csv_files: bench.csv_files,
            ..Default::default()
        },
        ..Config::default()
    };
    let data = config.data.clone();
    let created_files = if bench.fresh || !bench.csv_files {
        None
    } else {
        Some(super::create_portfolio_files(&data, &portfolio_ids(bench.investors, &numbers)?)?)
    };
    let metrics = Metrics::new();
    let bus = MemoryBus::with(config.memory_bus.retention, config.memory_bus.produce_timeout, metrics.clone());
    let stop = CancellationToken::new();
    let started = Instant::now();
    let node = tokio::spawn(crate::node::run_on(bus, config, metrics.clone(), stop.clone()));

    let mut intervals = Vec::new();
    let mut cpu = super::cpu_time();
    let mut rows_before = 0;
    for k in 1..=bench.intervals {
        let boundary = started + bench.interval * k as u32;
        let next = boundary + bench.interval;
        let expected = portfolios * k;
        let mut sink_done = None;
        while Instant::now() < next {
            if node.is_finished() {
                break;
            }
            if sink_done.is_none() && Instant::now() > boundary && metrics.sink_rows_total() >= expected {
                sink_done = Some(boundary.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::ensure!(!node.is_finished(), "the daemon stopped during interval {k}");
        let (published, rows) = (metrics.valuations_published_total(), metrics.sink_rows_total());
        let now_cpu = super::cpu_time();
        intervals.push(IntervalReport {
            valuations: published.saturating_sub(portfolios * (k - 1)).min(portfolios),
            rows: rows - rows_before,
            lag: published.saturating_sub(rows),
            sink_done,
            cpu: now_cpu.saturating_sub(cpu),
            rss: super::rss_bytes().unwrap_or(0),
        });
        cpu = now_cpu;
        rows_before = rows;
    }
    stop.cancel();
    node.await?.context("the daemon failed")?;
    let published = metrics.valuations_published_total();
    let (rows_on_disk, csv_bytes) = count_rows(&data)?;
    let (archive_rows, archive_bytes) = if bench.archive { count_archive(&data)? } else { (0, 0) };
    let missed = metrics.messages_missed_total();
    let exposition = metrics.encode();
    Ok(PipelineReport {
        portfolios,
        intervals,
        published,
        rows_on_disk,
        missed,
        created_files,
        plugin_call_mean: histogram_mean(&exposition, "stockd_plugin_call_seconds"),
        plugin_wait_mean: histogram_mean(&exposition, "stockd_plugin_wait_seconds"),
        csv_cut: !bench.csv_files
            || exposition.lines().any(|line| line.starts_with("stockd_csv_files_cut_total ") && !line.ends_with(" 0")),
        archive_rows: bench.archive.then_some(archive_rows),
        archive_bytes,
        csv_bytes,
    })
}

/// The mean of histogram `name` in a Prometheus text exposition.
fn histogram_mean(exposition: &str, name: &str) -> Duration {
    let value = |suffix: &str| {
        exposition
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}_{suffix} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let count = value("count");
    if count == 0.0 { Duration::ZERO } else { Duration::from_secs_f64(value("sum") / count) }
}

/// The portfolios `numbers` of investors 1..=`investors`.
fn portfolio_ids(investors: u32, numbers: &[u32]) -> anyhow::Result<Vec<PortfolioId>> {
    (1..=investors)
        .flat_map(|i| numbers.iter().map(move |&p| (i, p)))
        .map(|(i, p)| Ok(PortfolioId::new(InvestorId::new(i)?, p)?))
        .collect()
}

/// The data rows (lines after the header) of every portfolio file, and
/// their bytes.
fn count_rows(data: &Path) -> anyhow::Result<(u64, u64)> {
    let files = crate::layout::portfolio_files(data)?;
    files
        .par_iter()
        .map(|(_, path)| {
            let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Ok((memchr::memchr_iter(b'\n', &bytes).count().saturating_sub(1) as u64, bytes.len() as u64))
        })
        .try_reduce(|| (0, 0), |a, b| Ok((a.0 + b.0, a.1 + b.1)))
}

/// The rows of the archive (from the files' footers), and its bytes.
fn count_archive(data: &Path) -> anyhow::Result<(u64, u64)> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let mut totals = (0, 0);
    for path in crate::archive::read::files(data, Default::default())? {
        let file = std::fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
        totals.1 += file.metadata()?.len();
        let reader = SerializedFileReader::new(file).with_context(|| format!("reading {}", path.display()))?;
        totals.0 += reader.metadata().file_metadata().num_rows() as u64;
    }
    Ok(totals)
}
