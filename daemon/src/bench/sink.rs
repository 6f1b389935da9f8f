//! Rows per second the sink writes into many files.
//!
//! Two modes:
//! - fresh (the default): `rows` valuations spread round-robin over `files`
//!   portfolios, already on the memory bus, written by the sink in batches
//!   until none is left (the files are created on the way);
//! - steady state (`existing`): `files` portfolio files exist already (with
//!   their header, created before the first pass, not timed); each
//!   pass appends one row to every one of them, as an interval of the seed's
//!   scale does. Each sink pass is measured beside a pass of the physical
//!   baseline on the same folder: a plain loop that opens each file for
//!   appending, writes one line and closes it, then one `syncfs`, on one
//!   thread.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::bus::{Bus, MemoryBus, Record, TopicSpec};
use crate::config::SyncMode;
use crate::layout::file_name;
use crate::market::{InvestorId, PortfolioId, ValuationFields};
use crate::metrics::Metrics;
use crate::sink::{Sink, SinkSettings};

/// What to run.
#[derive(Debug, Clone)]
pub struct SinkBench {
    /// Distinct portfolio files.
    pub files: u32,
    /// Rows in all (fresh mode).
    pub rows: u32,
    /// Messages per batch.
    pub batch: usize,
    /// Open handles kept.
    pub open_files: usize,
    /// How batches are made durable.
    pub sync: SyncMode,
    /// Steady state: this many passes over files that already exist, each
    /// beside a baseline pass; 0: the fresh mode.
    pub passes: u32,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct SinkReport {
    /// Rows written by the sink.
    pub rows: u64,
    /// Time the sink took for them (the bus already holds them).
    pub elapsed: Duration,
    /// Steady state: per pass, (sink time, baseline time) for one row per file.
    pub passes: Vec<(Duration, Duration)>,
    /// Peak resident memory of the process.
    pub peak_rss: u64,
}

/// The portfolio of file number `n` (1,000 portfolios per investor, like
/// the seed's 1,000 × 1,000).
fn portfolio(n: u32) -> anyhow::Result<PortfolioId> {
    Ok(PortfolioId::new(InvestorId::new(n / 1000 + 1)?, n % 1000 + 1)?)
}

fn record(n: u32, interval: u32) -> anyhow::Result<Record> {
    let id = portfolio(n)?;
    let timestamp = format!("2026-11-24 {:02}:{:02}:{:02}", 9 + interval / 180, interval / 3 % 60, interval % 3 * 20);
    let fields = ValuationFields {
        portfolio: id,
        timestamp: std::borrow::Cow::Borrowed(&timestamp),
        nav: 1_000_000.0 + f64::from(interval) * 0.25,
        nav_change: 0.25,
        nav_change_pct: 0.0,
        investor: Some("Investor".into()),
        // As an investor stamps it: 20 s intervals from 2026-11-24 09:00:00.
        interval_ms: Some(1_795_510_800_000 + i64::from(interval) * 20_000),
    };
    Ok(Record { key: id.to_string(), value: fields.encode() })
}

/// Runs the benchmark with its data folder in `dir`.
pub async fn run(bench: &SinkBench, dir: &Path) -> anyhow::Result<SinkReport> {
    let topic = "Portfolios";
    let data = dir.join("data");
    let per_pass = if bench.passes > 0 { bench.files as usize } else { bench.rows as usize };
    let bus = MemoryBus::new(per_pass + 1);
    bus.create_topics(&[TopicSpec { name: topic.into(), partitions: 1, replication: 1 }]).await?;
    let ids: Vec<PortfolioId> = (0..bench.files).map(portfolio).collect::<anyhow::Result<_>>()?;
    let names: Vec<String> = ids.iter().map(|id| file_name(*id)).collect();
    if bench.passes > 0 {
        super::create_portfolio_files(&data, &ids)?;
    }
    let settings = SinkSettings {
        topic: topic.into(),
        group: crate::groups::SINK.into(),
        data: data.clone(),
        open_files: bench.open_files,
        sync: bench.sync,
        batch: bench.batch,
        archive: true,
        retention: Default::default(),
        csv_window: None,
        csv_files: true,
        unread_after: Duration::from_secs(10),
    };
    let mut sink = Sink::open(&bus, settings, Metrics::new())?;
    if bench.passes == 0 {
        publish(&bus, topic, (0..bench.rows).map(|i| record(i % bench.files, i / bench.files)), bench.batch).await?;
        let (rows, elapsed) = drain(&mut sink).await?;
        return Ok(SinkReport { rows, elapsed, passes: Vec::new(), peak_rss: super::peak_rss_bytes().unwrap_or(0) });
    }
    let mut report = SinkReport { rows: 0, elapsed: Duration::ZERO, passes: Vec::new(), peak_rss: 0 };
    for pass in 0..bench.passes {
        let baseline = raw_append_pass(&data, &names)?;
        publish(&bus, topic, (0..bench.files).map(|n| record(n, pass + 1)), bench.batch).await?;
        let (rows, elapsed) = drain(&mut sink).await?;
        report.rows += rows;
        report.elapsed += elapsed;
        report.passes.push((elapsed, baseline));
    }
    report.peak_rss = super::peak_rss_bytes().unwrap_or(0);
    Ok(report)
}

async fn publish(
    bus: &MemoryBus,
    topic: &str,
    records: impl Iterator<Item = anyhow::Result<Record>>,
    batch: usize,
) -> anyhow::Result<()> {
    let mut pending = Vec::with_capacity(batch);
    for record in records {
        pending.push(record?);
        if pending.len() == batch {
            bus.produce_batch(topic, std::mem::take(&mut pending)).await?;
        }
    }
    bus.produce_batch(topic, pending).await?;
    Ok(())
}

/// Lets the sink write until the bus has nothing left; the rows and time.
async fn drain(sink: &mut Sink<crate::bus::MemoryConsumer>) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let mut rows = 0;
    loop {
        let read = sink.step(Duration::from_millis(10)).await?;
        if read == 0 {
            return Ok((rows, started.elapsed()));
        }
        rows += read as u64;
    }
}

/// The physical baseline: for every file, open it for appending, write one
/// row, close it; then one `syncfs`. One thread, as the reference loop.
fn raw_append_pass(data: &Path, names: &[String]) -> std::io::Result<Duration> {
    let started = Instant::now();
    let line = b"1.1,2026-11-24 09:00:00,1000000.25,0.25,0\n";
    for name in names {
        OpenOptions::new().append(true).open(data.join(name))?.write_all(line)?;
    }
    rustix::fs::syncfs(File::open(data)?)?;
    Ok(started.elapsed())
}
