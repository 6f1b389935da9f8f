//! `stockd bench compaction`: one hour of the archive as a sink writes it
//! (a batch file per partition and interval), then the hour's compaction.
//! Measured: bytes per row per column before and after; the compaction's
//! time beside reading every batch file once (the floor of any merge);
//! and one portfolio's rows over the hour, as the web view's history page
//! reads them, before and after.
//!
//! The NAVs are the seed market's: 24 tickers on a random walk of up to
//! ±5 % a trade, about 11 trades an interval, and every portfolio 10
//! holdings of 100–999 shares drawn from its own id (so investors differ),
//! valued and rounded as the investors do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

use crate::archive::encode::{self, Layout};
use crate::archive::maintain::{self, Pass, Retention};
use crate::archive::{ArchiveRow, Coverage, HOUR, batch_file, hour_dir};
use crate::market::{InvestorId, PortfolioId, nav_changes};
use crate::query::Query;
use crate::query::batch::{BatchConsumer, Interval};

/// The benchmark's shape.
#[derive(Debug, Clone)]
pub struct CompactionBench {
    /// Investors; each has `portfolios` portfolios.
    pub investors: u32,
    /// Portfolios per investor.
    pub portfolios: u32,
    /// Intervals of the hour (180 at 20 s).
    pub intervals: u32,
    /// Batch files per interval (the sink writes one per partition and
    /// poll: about 8–10 at the seed's scale).
    pub files_per_interval: u32,
    /// A maintenance pass while the hour is open every this many
    /// intervals, as the sink's minute-by-minute passes (0: none; the
    /// hour's batch files all wait for its close).
    pub open_every: u32,
}

/// Sizes of one state of the hour.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Files in the hour.
    pub files: usize,
    /// Bytes per row of each column (compressed), by name, and in all.
    pub columns: Vec<(String, f64)>,
    /// Bytes per row on disk.
    pub total: f64,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct CompactionReport {
    /// Rows in the hour.
    pub rows: u64,
    /// The hour's files at its end, before its close: batch files (and
    /// the generations of the passes while it was open).
    pub before: Sizes,
    /// The compacted hour.
    pub after: Sizes,
    /// The passes while the hour was open: how many, and their time.
    pub open_passes: (u32, Duration),
    /// The compaction pass at the hour's close.
    pub compaction: Duration,
    /// Reading every batch file once, every column (the floor).
    pub read_all: Duration,
    /// One portfolio's rows over the hour, median of the portfolios tried,
    /// before and after.
    pub one_portfolio: (Duration, Duration),
}

/// The seed market: prices of 24 tickers moving by trades.
struct Market {
    prices: [f64; 24],
    rng: StdRng,
}

impl Market {
    /// One trade: a random ticker moves by up to ±5 %, to the cent.
    fn trade(&mut self) {
        let ticker = self.rng.random_range(0..24);
        let step = self.rng.random_range(-0.05..=0.05);
        self.prices[ticker] = crate::market::round_cents(self.prices[ticker] * (1.0 + step)).max(1.0);
    }

    /// An interval's trades (two exchanges, a trade every 2–5 s each).
    fn trade_interval(&mut self) {
        for _ in 0..11 {
            self.trade();
        }
    }
}

/// A portfolio's 10 holdings (ticker, shares), from its id.
fn holdings(portfolio: u64) -> [(usize, f64); 10] {
    let mut rng = StdRng::seed_from_u64(portfolio);
    std::array::from_fn(|_| (rng.random_range(0..24), f64::from(rng.random_range(100..1000))))
}

/// Writes the hour into `data` and measures it.
pub fn run(bench: &CompactionBench, data: &Path) -> anyhow::Result<CompactionReport> {
    let hour = 1_764_579_600; // 2025-12-01 09:00 UTC
    let ids: Vec<PortfolioId> = (1..=bench.investors)
        .flat_map(|investor| {
            let investor = InvestorId::new(investor).expect("investor ids from 1");
            (1..=bench.portfolios).map(move |number| PortfolioId::new(investor, number).expect("numbers from 1"))
        })
        .collect();
    let books: Vec<[(usize, f64); 10]> = (0..ids.len() as u64).map(holdings).collect();
    let mut market = Market { prices: std::array::from_fn(|i| 20.0 + 40.0 * i as f64), rng: StdRng::seed_from_u64(7) };
    let mut previous: Vec<Option<f64>> = vec![None; ids.len()];
    let files = bench.files_per_interval.max(1) as usize;
    let pass = |now: i64| Pass {
        data: data.to_path_buf(),
        topic: "Portfolios".into(),
        checkpointed: (0..files as i32).map(|p| (p, u64::MAX)).collect::<BTreeMap<_, _>>(),
        retention: Retention::default(),
        now,
        stop: Arc::new(AtomicBool::new(false)),
    };
    let mut open_passes = (0, Duration::ZERO);
    std::fs::create_dir_all(data.join(hour_dir(hour)))?;
    for interval in 0..bench.intervals {
        market.trade_interval();
        let timestamp = hour + i64::from(interval) * 20;
        let rows: Vec<ArchiveRow> = previous
            .par_iter_mut()
            .zip(books.par_iter().zip(ids.par_iter()))
            .map(|(previous, (book, &portfolio))| {
                let nav: f64 = book.iter().map(|&(ticker, shares)| shares * market.prices[ticker]).sum();
                let (nav, nav_change, nav_change_pct) = nav_changes(nav, *previous);
                *previous = Some(nav);
                ArchiveRow { portfolio, timestamp, nav, nav_change, nav_change_pct }
            })
            .collect();
        (0..files).into_par_iter().try_for_each(|file| -> std::io::Result<()> {
            let mut mine: Vec<ArchiveRow> = rows.iter().skip(file).step_by(files).copied().collect();
            let batch = u64::from(interval) * files as u64 + file as u64;
            let path = data.join(batch_file("Portfolios", file as i32, batch, 1, hour));
            std::fs::write(path, encode::rows_to_parquet(&mut mine, Layout::Batch))
        })?;
        if bench.open_every > 0 && (interval + 1) % bench.open_every == 0 {
            let started = Instant::now();
            maintain::run(&pass(timestamp + 20))?;
            open_passes = (open_passes.0 + 1, open_passes.1 + started.elapsed());
        }
    }
    Coverage::mark_covering(data)?;
    let rows = ids.len() as u64 * u64::from(bench.intervals);
    let hour_folder = data.join(hour_dir(hour));
    let before = sizes(&hour_folder, rows)?;
    let tried: Vec<PortfolioId> = (0..5).map(|k| ids[(k * 7919 + 13) % ids.len()]).collect();
    let one_before = one_portfolio(data, &tried)?;
    let started = Instant::now();
    let counted = read_every_row(data)?;
    let read_all = started.elapsed();
    anyhow::ensure!(counted == rows, "read {counted} rows of {rows}");
    let started = Instant::now();
    let report = maintain::run(&pass(hour + 2 * HOUR))?;
    let compaction = started.elapsed();
    anyhow::ensure!(report.compacted_hours == 1, "the hour was not compacted: {report:?}");
    let after = sizes(&hour_folder, rows)?;
    let one_after = one_portfolio(data, &tried)?;
    Ok(CompactionReport {
        rows,
        before,
        after,
        open_passes,
        compaction,
        read_all,
        one_portfolio: (one_before, one_after),
    })
}

struct Count(u64);

/// Reads every column of every row of the archive of `data` once;
/// returns how many rows.
fn read_every_row(data: &Path) -> std::io::Result<u64> {
    let mut counted = Count(0);
    for path in crate::archive::read::files(data, Interval::default())? {
        crate::archive::read::scan(&path, None, Interval::default(), &mut counted)?;
    }
    Ok(counted.0)
}

impl BatchConsumer for Count {
    fn take(&mut self, batch: &arrow::array::RecordBatch) {
        self.0 += batch.num_rows() as u64;
    }
}

/// The median time of `crate::query::run` for each of `portfolios`' rows
/// (what the history page asks), after one run to warm the page cache.
fn one_portfolio(data: &Path, portfolios: &[PortfolioId]) -> anyhow::Result<Duration> {
    let mut times = Vec::new();
    for (k, &portfolio) in portfolios.iter().enumerate() {
        let query =
            Query { data: data.to_path_buf(), portfolio: Some(portfolio), interval: Interval::default(), stats: false };
        if k == 0 {
            crate::query::run(&query)?;
        }
        let started = Instant::now();
        let answer = crate::query::run(&query)?;
        times.push(started.elapsed());
        anyhow::ensure!(!answer.rows.is_empty(), "no rows for {portfolio}");
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// The sizes of the hour folder `dir` holding `rows` rows.
fn sizes(dir: &Path, rows: u64) -> anyhow::Result<Sizes> {
    let paths: Vec<PathBuf> = crate::archive::read::parquet_names(dir)?.into_iter().map(|n| dir.join(n)).collect();
    let mut columns: Vec<(String, u64)> = encode::SCHEMA.fields().iter().map(|f| (f.name().clone(), 0)).collect();
    let mut total = 0;
    for path in &paths {
        total += std::fs::metadata(path)?.len();
        let reader = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(path)?)?;
        for group in parquet::file::reader::FileReader::metadata(&reader).row_groups() {
            for (column, sum) in group.columns().iter().zip(&mut columns) {
                sum.1 += u64::try_from(column.compressed_size()).unwrap_or(0);
            }
        }
    }
    let per_row = |bytes: u64| bytes as f64 / rows.max(1) as f64;
    Ok(Sizes {
        files: paths.len(),
        columns: columns.into_iter().map(|(name, bytes)| (name, per_row(bytes))).collect(),
        total: per_row(total),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_compacts_every_row_of_its_hour_into_fewer_files() {
        let dir = tempfile::tempdir().unwrap();
        let bench =
            CompactionBench { investors: 20, portfolios: 50, intervals: 12, files_per_interval: 2, open_every: 0 };
        let report = run(&bench, dir.path()).unwrap();
        assert_eq!(report.rows, 12_000);
        assert_eq!(report.before.files, 24);
        assert_eq!(report.open_passes.0, 0);
        assert_eq!(report.after.files, 1, "12,000 rows make one file of a range");
        for sizes in [&report.before, &report.after] {
            let columns: f64 = sizes.columns.iter().map(|(_, bytes)| bytes).sum();
            assert!(columns > 0.0 && columns < sizes.total, "{sizes:?}: the columns within the file");
        }
        assert_eq!(read_every_row(dir.path()).unwrap(), 12_000, "every row once in the compacted hour");
    }

    #[test]
    fn passes_while_the_hour_is_open_leave_generations_that_its_close_merges() {
        let dir = tempfile::tempdir().unwrap();
        // 8 files an interval: 64 (a generation) after 8 intervals.
        let bench =
            CompactionBench { investors: 10, portfolios: 20, intervals: 20, files_per_interval: 8, open_every: 4 };
        let report = run(&bench, dir.path()).unwrap();
        assert_eq!(report.open_passes.0, 5);
        // Generations at intervals 8 and 16 (64 files each), then 32 batch files.
        assert_eq!(report.before.files, 2 + 32, "{report:?}");
        assert_eq!(report.after.files, 1);
        assert_eq!(read_every_row(dir.path()).unwrap(), 4_000, "every row once in the compacted hour");
    }

    #[test]
    fn the_market_moves_one_ticker_a_trade_by_at_most_five_percent_to_the_cent() {
        let book = holdings(42);
        assert_eq!(book, holdings(42), "holdings from the portfolio's id alone");
        assert!(book.iter().all(|&(ticker, shares)| ticker < 24 && (100.0..1000.0).contains(&shares)));
        let mut market = Market { prices: [10.0; 24], rng: StdRng::seed_from_u64(1) };
        let mut moves = 0;
        for _ in 0..20 {
            let before = market.prices;
            market.trade();
            let moved: Vec<(f64, f64)> =
                before.iter().zip(&market.prices).filter(|(a, b)| a != b).map(|(a, b)| (*a, *b)).collect();
            assert!(moved.len() <= 1, "one ticker a trade: {moved:?}");
            for (from, to) in moved {
                assert!((to - from).abs() <= from * 0.05 + 0.005, "at most 5 %: {from} -> {to}");
                assert_eq!(to, crate::market::round_cents(to), "to the cent");
                moves += 1;
            }
        }
        assert!(moves >= 15, "{moves} of 20 trades moved a price");
    }
}
