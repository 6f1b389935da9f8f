//! Rows per second into many files: `rows` valuations spread round-robin
//! over `files` portfolios, already on the memory bus, written by the sink
//! in batches (10,000 by default) until none is left.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::bus::{Bus, MemoryBus, Record, TopicSpec};
use crate::config::SyncMode;
use crate::market::{InvestorId, PortfolioId, ValuationFields};
use crate::metrics::Metrics;
use crate::sink::{Sink, SinkSettings};

/// What to run.
#[derive(Debug, Clone)]
pub struct SinkBench {
    /// Distinct portfolio files.
    pub files: u32,
    /// Rows in all.
    pub rows: u32,
    /// Messages per batch.
    pub batch: usize,
    /// Open handles kept.
    pub open_files: usize,
    /// How batches are made durable.
    pub sync: SyncMode,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct SinkReport {
    /// Rows written.
    pub rows: u64,
    /// Time to write them all (the bus already holds them).
    pub elapsed: Duration,
    /// Peak resident memory of the process.
    pub peak_rss: u64,
}

/// Runs the benchmark with its data folder in `dir`.
pub async fn run(bench: &SinkBench, dir: &Path) -> anyhow::Result<SinkReport> {
    let topic = "Portfolios";
    let bus = MemoryBus::new(bench.rows as usize + 1);
    bus.create_topics(&[TopicSpec { name: topic.into(), partitions: 1, replication: 1 }]).await?;
    // 1,000 portfolios per investor, like the seed's 1,000 × 1,000.
    let mut records = Vec::with_capacity(bench.batch);
    for i in 0..bench.rows {
        let n = i % bench.files;
        let id = PortfolioId::new(InvestorId::new(n / 1000 + 1)?, n % 1000 + 1)?;
        let nav = 1_000_000.0 + f64::from(i) * 0.25;
        let fields = ValuationFields {
            portfolio: id,
            timestamp: "2026-11-24 09:40:20",
            nav,
            nav_change: 0.25,
            nav_change_pct: 0.0,
            investor: Some("Investor"),
        };
        records.push(Record { key: id.to_string(), value: fields.encode() });
        if records.len() == bench.batch {
            bus.produce_batch(topic, std::mem::take(&mut records)).await?;
        }
    }
    bus.produce_batch(topic, records).await?;
    let settings = SinkSettings {
        topic: topic.into(),
        data: dir.join("data"),
        open_files: bench.open_files,
        sync: bench.sync,
        batch: bench.batch,
    };
    let metrics = Metrics::new();
    let mut sink = Sink::open(&bus, settings, metrics)?;
    let started = Instant::now();
    let mut rows = 0;
    loop {
        let read = sink.step(Duration::from_millis(10)).await?;
        if read == 0 {
            break;
        }
        rows += read as u64;
    }
    let elapsed = started.elapsed();
    Ok(SinkReport { rows, elapsed, peak_rss: super::peak_rss_bytes().unwrap_or(0) })
}
