//! Summaries beside the archive, so that a question over days reads one
//! row per portfolio and hour instead of every row.
//!
//! For an hour partition `archive/date=D/hour=H/`, the summary is one
//! Parquet file `archive-summaries/date=D/hour=H/summary.parquet` (outside
//! `archive/`, so a `read_parquet('DATA/archive/**/*.parquet')` never
//! mixes it with rows), one row per portfolio, sorted by investor then
//! portfolio number (as numbers, the query's order): its
//! [`Summary`] over the hour (the moments of its NAVs and their trend; see
//! [`SCHEMA`]). Beside it, `window-MM.parquet` holds the same over each
//! [`WINDOW`] of the hour starting at minute MM, so that a question over
//! part of an hour reads the rows of at most one window at each edge.
//!
//! A summary is derived data, rebuilt deterministically from the hour's
//! files: it names in its footer (`stockd.sources`) the archive files it
//! was computed from, and a reader uses it only while the hour holds
//! exactly those files. Any change to the hour (a late batch file, a
//! compaction's swap, a rolled-back batch) makes it stale until the next
//! maintenance pass builds it again ([`refresh`]); a stale or missing
//! summary costs a reader time (it reads the rows), never a wrong answer.
//! A summary file appears whole (written aside, renamed into place).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

use super::read::{parquet_names, scan_runs};
use super::{HOUR, WINDOW, hour_dir, hour_of_dir, hour_partition};
use crate::fsutil::with_path;
use crate::market::PortfolioId;
use crate::query::batch::Interval;
use crate::statistics::{Drawdown, Moments, Point, Summary, Trend};

/// The summaries' folder, relative to the data folder.
pub const DIR: &str = "archive-summaries";

/// The footer key naming the archive files a summary was computed from
/// (their names, one per line, sorted).
const SOURCES: &str = "stockd.sources";

/// The footer key marking a summary without rows, for an hour where a
/// portfolio's rows interleave across files: readers read its rows, and
/// the maintenance does not try again until the hour changes.
const INTERLEAVED: &str = "stockd.interleaved";

/// The footer key marking a window's summary without rows, its window
/// being sparse (see [`write_window`]): readers read its rows.
const SPARSE: &str = "stockd.sparse";

/// The summary file of the hour starting at `hour` (seconds since the
/// epoch).
pub fn path(data: &Path, hour: i64) -> PathBuf {
    data.join(DIR).join(hour_partition(hour)).join("summary.parquet")
}

/// The columns: PORTFOLIO; ROWS, NAV_MEAN, NAV_M2 (Σ (x − mean)²),
/// NAV_MIN, NAV_MAX; then the trend's points as `*_AT` (seconds since the
/// epoch) and `*_NAV`: FIRST, LAST, PEAK, TROUGH, and the maximum
/// drawdown's FALL_PEAK and FALL_TROUGH (null while it never fell); then
/// RETURNS, RETURNS_MEAN and RETURNS_M2, the moments of the returns
/// between consecutive rows.
pub static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new("PORTFOLIO", DataType::Utf8, false),
        Field::new("ROWS", DataType::UInt64, false),
        Field::new("NAV_MEAN", DataType::Float64, false),
        Field::new("NAV_M2", DataType::Float64, false),
        Field::new("NAV_MIN", DataType::Float64, false),
        Field::new("NAV_MAX", DataType::Float64, false),
    ];
    for (point, nullable) in [
        ("FIRST", false),
        ("LAST", false),
        ("PEAK", false),
        ("TROUGH", false),
        ("FALL_PEAK", true),
        ("FALL_TROUGH", true),
    ] {
        fields.push(Field::new(format!("{point}_AT"), DataType::Int64, nullable));
        fields.push(Field::new(format!("{point}_NAV"), DataType::Float64, nullable));
    }
    fields.push(Field::new("RETURNS", DataType::UInt64, false));
    fields.push(Field::new("RETURNS_MEAN", DataType::Float64, false));
    fields.push(Field::new("RETURNS_M2", DataType::Float64, false));
    Arc::new(Schema::new(fields))
});

/// The summary of every portfolio in the files read (see [`Grouped::scan`]).
/// A PORTFOLIO that is not an id (never written by stockd) is left out.
///
/// A run of a portfolio the list given has is merged into its summary in
/// place, found from where the last run's was. The runs of portfolios it
/// lacks (all of them, into an empty list) are kept in the order they
/// came and grouped by portfolio at the end (their keys sorted, not the
/// 200-byte summaries): a million portfolios' runs are neither looked up
/// one by one in a table nor copied twice.
#[derive(Debug, Default)]
pub struct Grouped {
    /// Summaries sorted by portfolio, each run of theirs merged in.
    merged: Vec<(PortfolioId, Summary)>,
    /// Where the last run's portfolio was found in `merged`.
    cursor: usize,
    /// Each run of a portfolio `merged` lacks, in the order the runs came.
    runs: Vec<(PortfolioId, Summary)>,
}

impl Grouped {
    /// Summaries already gathered (sorted by portfolio, as
    /// [`read_into`] leaves them, and of times before the rows to be read),
    /// into which the rows read are merged, with room for about `coming`
    /// runs when there are none yet (so that a million are not grown and
    /// copied as they come).
    pub fn from_sorted(summaries: Vec<(PortfolioId, Summary)>, coming: usize) -> Grouped {
        let runs = if summaries.is_empty() { Vec::with_capacity(coming) } else { Vec::new() };
        Grouped { merged: summaries, cursor: 0, runs }
    }

    /// Reads the rows of the archive file `path` in `interval`.
    pub fn scan(&mut self, path: &Path, interval: Interval) -> io::Result<()> {
        scan_runs(path, interval, |portfolio, at, navs| self.take(portfolio, at, navs))
    }

    /// One run of `portfolio`'s rows, in time order.
    fn take(&mut self, portfolio: &str, at: &[i64], navs: &[f64]) {
        let Ok(portfolio) = portfolio.parse::<PortfolioId>() else { return };
        let Some(summary) = Summary::of_series(at, navs) else { return };
        match self.find(portfolio) {
            Some(slot) => slot.absorb(&summary),
            None => self.runs.push((portfolio, summary)),
        }
    }

    /// `portfolio`'s summary in `merged`, searched from the last one found,
    /// forward or back, doubling the step: the rows come sorted by
    /// PORTFOLIO as text ("1.10" before "1.2"), the list by id, so the next
    /// run's portfolio is near the last one's, not always after it.
    fn find(&mut self, portfolio: PortfolioId) -> Option<&mut Summary> {
        let (merged, last) = (&self.merged, self.cursor.min(self.merged.len().saturating_sub(1)));
        let below = |index: usize| merged[index].0 < portfolio;
        // The first entry not below `portfolio` is in `from..to` (or is `to`).
        let (from, to) = if merged.is_empty() {
            (0, 0)
        } else if below(last) {
            let mut step = 1;
            while last + step < merged.len() && below(last + step) {
                step *= 2;
            }
            (last + step / 2 + 1, (last + step).min(merged.len()))
        } else {
            let mut step = 1;
            while step <= last && !below(last - step) {
                step *= 2;
            }
            (last.saturating_sub(step), last - step / 2)
        };
        let index = from + merged[from..to].partition_point(|(p, _)| *p < portfolio);
        self.cursor = index;
        match self.merged.get_mut(index) {
            Some((p, summary)) if *p == portfolio => Some(summary),
            _ => None,
        }
    }

    /// The summaries by portfolio, in the query's order: each new
    /// portfolio's runs merged in the order they came (a portfolio's runs
    /// come in time order: one file after another, each in time order),
    /// then merged into the list.
    pub fn into_sorted(self) -> Vec<(PortfolioId, Summary)> {
        let Grouped { mut merged, runs, .. } = self;
        let mut order: Vec<(PortfolioId, u32)> = runs
            .iter()
            .enumerate()
            .map(|(run, (portfolio, _))| (*portfolio, u32::try_from(run).expect("fewer than 2^32 runs")))
            .collect();
        order.sort_unstable();
        let mut absorb = Absorb::new(&mut merged, order.len());
        for portfolio_runs in order.chunk_by(|a, b| a.0 == b.0) {
            let summary = portfolio_runs
                .iter()
                .map(|&(_, run)| runs[run as usize].1)
                .reduce(Summary::merge)
                .expect("a chunk is not empty");
            let in_order = absorb.push(portfolio_runs[0].0, summary);
            debug_assert!(in_order, "sorted, each portfolio once");
        }
        absorb.finish();
        merged
    }
}

/// Two lists of summaries sorted by portfolio, merged into one: in place
/// when they hold the same portfolios (the usual case: every hour's
/// summary holds every portfolio), else by a merge of the two.
pub fn merge_sorted(mut a: Vec<(PortfolioId, Summary)>, b: Vec<(PortfolioId, Summary)>) -> Vec<(PortfolioId, Summary)> {
    if a.len() < b.len() {
        return merge_sorted(b, a);
    }
    if b.is_empty() {
        return a;
    }
    if a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x.0 == y.0) {
        for (x, y) in a.iter_mut().zip(b) {
            x.1.absorb(&y.1);
        }
        return a;
    }
    merge_lists(vec![a, b]).collect()
}

/// Lists of summaries, each sorted by portfolio, as one sequence sorted
/// by portfolio (a portfolio's summaries in several lists merged into
/// one), without building the merged list: the lists are the threads' of a
/// query, a million summaries each.
pub fn merge_lists(lists: Vec<Vec<(PortfolioId, Summary)>>) -> impl Iterator<Item = (PortfolioId, Summary)> {
    let mut heads: Vec<_> = lists.into_iter().map(|list| list.into_iter().peekable()).collect();
    std::iter::from_fn(move || {
        let portfolio = heads.iter_mut().filter_map(|head| head.peek().map(|(portfolio, _)| *portfolio)).min()?;
        let mut merged: Option<Summary> = None;
        for head in &mut heads {
            if let Some((_, summary)) = head.next_if(|(next, _)| *next == portfolio) {
                match &mut merged {
                    Some(merged) => merged.absorb(&summary),
                    None => merged = Some(summary),
                }
            }
        }
        merged.map(|summary| (portfolio, summary))
    })
}

/// `summaries` (sorted by portfolio, each with its trend) as a record batch
/// of [`SCHEMA`].
fn to_batch(summaries: &[(PortfolioId, Moments, Trend)]) -> RecordBatch {
    let floats = |value: &dyn Fn(&Moments, &Trend) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(summaries.iter().map(|(_, m, t)| value(m, t))))
    };
    let ints = |value: &dyn Fn(&Trend) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(summaries.iter().map(|(_, _, t)| value(t))))
    };
    let fall = |value: &dyn Fn(&Drawdown) -> Point| -> (ArrayRef, ArrayRef) {
        let points: Vec<Option<Point>> = summaries.iter().map(|(_, _, t)| t.fall.as_ref().map(value)).collect();
        (
            Arc::new(Int64Array::from(points.iter().map(|p| p.map(|p| p.at)).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(points.iter().map(|p| p.map(|p| p.nav)).collect::<Vec<_>>())),
        )
    };
    let (fall_peak_at, fall_peak_nav) = fall(&|f| f.peak);
    let (fall_trough_at, fall_trough_nav) = fall(&|f| f.trough);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(summaries.iter().map(|(p, _, _)| p.to_string()))),
        Arc::new(UInt64Array::from_iter_values(summaries.iter().map(|(_, m, _)| m.count))),
        floats(&|m, _| m.mean),
        floats(&|m, _| m.m2),
        floats(&|m, _| m.min),
        floats(&|m, _| m.max),
        ints(&|t| t.first.at),
        floats(&|_, t| t.first.nav),
        ints(&|t| t.last.at),
        floats(&|_, t| t.last.nav),
        ints(&|t| t.peak.at),
        floats(&|_, t| t.peak.nav),
        ints(&|t| t.trough.at),
        floats(&|_, t| t.trough.nav),
        fall_peak_at,
        fall_peak_nav,
        fall_trough_at,
        fall_trough_nav,
        Arc::new(UInt64Array::from_iter_values(summaries.iter().map(|(_, _, t)| t.returns.count))),
        floats(&|_, t| t.returns.mean),
        floats(&|_, t| t.returns.m2),
    ];
    RecordBatch::try_new(Arc::clone(&SCHEMA), columns).expect("columns of the schema")
}

/// What a summary file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    /// One row per portfolio.
    Rows,
    /// No rows: a portfolio's rows interleave across the hour's files.
    Interleaved,
    /// No rows: a window whose portfolios have too few rows each to be
    /// worth a summary ([`super::dense`]), cheaper read than summarised.
    Sparse,
}

/// Writes a summary file for the hour folder's files `sources` at `path`:
/// aside, then renamed into place. `write` hands the batches (sorted by
/// portfolio across batches) to the writer.
fn write(
    path: &Path,
    sources: &[String],
    content: Content,
    write: impl FnOnce(&mut dyn FnMut(&RecordBatch) -> io::Result<()>) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path.parent().expect("a summary file is in an hour folder");
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".summary-{}.tmp", std::process::id()));
    let properties = WriterProperties::builder()
        // LZ4 (raw): a query over a day decodes 24 million summary rows,
        // and zstd's decoding was a quarter of its time.
        .set_compression(Compression::LZ4_RAW)
        .set_key_value_metadata(Some(vec![
            KeyValue::new(SOURCES.to_string(), sources.join("\n")),
            KeyValue::new(INTERLEAVED.to_string(), (content == Content::Interleaved).to_string()),
            KeyValue::new(SPARSE.to_string(), (content == Content::Sparse).to_string()),
        ]))
        .build();
    let file = File::create(&temporary)?;
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&SCHEMA), Some(properties)).map_err(invalid)?;
    let result = write(&mut |batch| writer.write(batch).map_err(invalid));
    let result = result.and_then(|()| writer.close().map_err(invalid)).and_then(|_| File::open(&temporary)?.sync_all());
    match result {
        Ok(()) => std::fs::rename(&temporary, path),
        Err(error) => {
            let _ = std::fs::remove_file(&temporary);
            Err(error)
        }
    }
}

fn invalid(error: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error.to_string())
}

/// What [`build`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Built {
    /// The summary was written.
    Written,
    /// A file of the hour went away while it was read (a compaction or a
    /// roll-back): left for the next pass.
    Changed,
    /// A portfolio's rows in two files interleave in time: the hour's
    /// summary says so (and holds no rows), and readers read its rows.
    Interleaved,
}

/// Computes and writes the summaries of the hour starting at `hour` from
/// the files its folder holds now: each window's (reading the row groups
/// that can hold its times), then the hour's, their merge.
pub fn build(data: &Path, hour: i64) -> io::Result<Built> {
    let dir = data.join(hour_dir(hour));
    let sources = parquet_names(&dir)?;
    let mut whole: Vec<(PortfolioId, Summary)> = Vec::new();
    for window in windows(hour) {
        let mut grouped = Grouped::default();
        let interval = Interval { from: Some(window), to: Some(window + WINDOW - 1) };
        for name in &sources {
            match grouped.scan(&dir.join(name), interval) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Built::Changed),
                Err(error) => return Err(with_path(&dir.join(name))(error)),
            }
        }
        let summaries = grouped.into_sorted();
        write_window(data, window, &sources, &summaries)?;
        whole = merge_sorted(whole, summaries);
    }
    Ok(if write_or_mark(&path(data, hour), &sources, &whole)? { Built::Written } else { Built::Interleaved })
}

/// Writes `summaries` as the summary file at `path` computed from
/// `sources`; when one has no trend (its pieces interleaved), writes a
/// summary without rows that says so instead, and returns false.
fn write_or_mark(path: &Path, sources: &[String], summaries: &[(PortfolioId, Summary)]) -> io::Result<bool> {
    match with_trends(summaries) {
        Some(summaries) => write_trends(path, sources, &summaries).map(|()| true),
        None => write(path, sources, Content::Interleaved, |_| Ok(())).map(|()| false),
    }
}

/// Writes the summary of the window starting at `window` (`summaries`,
/// sorted by portfolio, computed from the hour's files `sources`): a
/// summary without rows when its portfolios have too few rows for a
/// summary to be worth its space (at 600 s a row, one a window: a summary
/// row is six times the size of the row it sums up).
pub fn write_window(
    data: &Path,
    window: i64,
    sources: &[String],
    summaries: &[(PortfolioId, Summary)],
) -> io::Result<()> {
    let rows: u64 = summaries.iter().map(|(_, summary)| summary.moments.count).sum();
    let path = window_path(data, window);
    if !super::dense(rows, summaries.len() as u64) {
        return write(&path, sources, Content::Sparse, |_| Ok(()));
    }
    write_or_mark(&path, sources, summaries).map(|_| ())
}

/// The summaries with their trends, `None` when one has none (its pieces
/// interleaved).
fn with_trends(summaries: &[(PortfolioId, Summary)]) -> Option<Vec<(PortfolioId, Moments, Trend)>> {
    summaries.iter().map(|(portfolio, summary)| Some((*portfolio, summary.moments, summary.trend?))).collect()
}

/// Writes `summaries` (sorted by portfolio, each with its trend), computed
/// from the archive files `sources`, as the summary file at `path`.
pub fn write_summaries(path: &Path, sources: &[String], summaries: &[(PortfolioId, Summary)]) -> io::Result<()> {
    let Some(summaries) = with_trends(summaries) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "a summary without its trend"));
    };
    write_trends(path, sources, &summaries)
}

/// Writes `summaries` (sorted by portfolio) as the summary file at `path`.
fn write_trends(path: &Path, sources: &[String], summaries: &[(PortfolioId, Moments, Trend)]) -> io::Result<()> {
    write(path, sources, Content::Rows, |out| summaries.chunks(64 * 1024).try_for_each(|chunk| out(&to_batch(chunk))))
}

/// What a summary's footer says.
struct Footer {
    /// The archive files it was computed from.
    sources: Vec<String>,
    /// It holds no rows (its rows interleave, or its window is sparse):
    /// readers read the rows.
    rowless: bool,
}

/// The footer of the summary at `path`; `None` when there is no summary
/// (or it cannot be read: it is then rebuilt).
fn footer(path: &Path) -> Option<Footer> {
    let file = File::open(path).ok()?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).ok()?;
    let metadata = builder.metadata().file_metadata().key_value_metadata()?;
    let value = |key: &str| metadata.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone());
    let sources = value(SOURCES)?.split('\n').filter(|name| !name.is_empty()).map(str::to_string).collect();
    let marked = |key: &str| value(key).as_deref() == Some("true");
    Some(Footer { sources, rowless: marked(INTERLEAVED) || marked(SPARSE) })
}

/// The footer of the summary at `path` if it was computed from exactly
/// `sources`.
fn current(path: &Path, sources: &[String]) -> Option<Footer> {
    footer(path).filter(|footer| footer.sources == sources)
}

/// `path` if the summary there is current (see [`current`]) and has rows.
fn usable_file(path: PathBuf, sources: &[String]) -> Option<PathBuf> {
    current(&path, sources).filter(|footer| !footer.rowless).map(|_| path)
}

/// The summary file a reader may use for the hour starting at `hour`
/// whose folder holds the files `names` now: current and with rows.
pub fn usable(data: &Path, hour: i64, names: &[String]) -> Option<PathBuf> {
    usable_file(path(data, hour), names)
}

/// The starts of the windows of the hour starting at `hour`.
pub fn windows(hour: i64) -> impl Iterator<Item = i64> {
    (hour..hour + HOUR).step_by(WINDOW as usize)
}

/// The summary file of the window starting at `window` (seconds since the
/// epoch), beside its hour's: `window-MM.parquet`, MM its minute.
pub fn window_path(data: &Path, window: i64) -> PathBuf {
    let hour = super::hour_of(window);
    path(data, hour).with_file_name(format!("window-{:02}.parquet", (window - hour) / 60))
}

/// The summary file a reader may use for the window starting at `window`
/// whose hour folder holds the files `names` now: current and with rows.
pub fn usable_window(data: &Path, window: i64, names: &[String]) -> Option<PathBuf> {
    usable_file(window_path(data, window), names)
}

/// Whether the summaries of the hour starting at `hour` (its own and its
/// windows') were computed from exactly the files `names`.
fn hour_current(data: &Path, hour: i64, names: &[String]) -> bool {
    current(&path(data, hour), names).is_some()
        && windows(hour).all(|window| current(&window_path(data, window), names).is_some())
}

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// The summary file of the UTC day starting at `day` (seconds since the
/// epoch): the day's hour summaries merged, for questions over whole days.
pub fn day_path(data: &Path, day: i64) -> PathBuf {
    let partition = hour_partition(day);
    let date = partition.split('/').next().expect("date=…/hour=…");
    data.join(DIR).join(date).join("day.parquet")
}

/// The sources a day summary names: every file of the day's hours, as
/// `HH/NAME`, from the hours' starts and their files' names.
pub fn day_sources(hours: &[(i64, Vec<String>)]) -> Vec<String> {
    let mut sources = Vec::new();
    for (start, names) in hours {
        let hour = start.rem_euclid(DAY) / HOUR;
        sources.extend(names.iter().map(|name| format!("{hour:02}/{name}")));
    }
    sources
}

/// The day summary a reader may use for the day starting at `day`, whose
/// hours hold the files `sources` names now (see [`day_sources`]).
pub fn usable_day(data: &Path, day: i64, sources: &[String]) -> Option<PathBuf> {
    usable_file(day_path(data, day), sources)
}

/// Merges the current hour summaries of the day starting at `day` (its
/// hour folders `hours`) into its day summary; false when an hour has no
/// usable summary (it is tried again at the next pass).
fn build_day(data: &Path, day: i64, hours: &[&super::maintain::Hour]) -> io::Result<bool> {
    let mut listings = Vec::with_capacity(hours.len());
    let mut merged = Vec::new();
    for hour in hours {
        let names = parquet_names(&hour.dir)?;
        let Some(path) = usable(data, hour.start, &names) else { return Ok(false) };
        read_into(&path, &mut merged)?;
        listings.push((hour.start, names));
    }
    let Some(summaries) = with_trends(&merged) else { return Ok(false) };
    write_trends(&day_path(data, day), &day_sources(&listings), &summaries)?;
    Ok(true)
}

/// The rows (portfolios) of the summary at `path`, from its footer.
pub fn rows(path: &Path) -> io::Result<usize> {
    let file = super::pread::PositionedFile::open(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(invalid)?;
    Ok(usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0))
}

/// Reads the summary at `path` into `merged` (summaries sorted by
/// portfolio): a portfolio `merged` has is merged in place, without
/// copying the list, the usual case; the others are merged in at the end.
pub fn read_into(path: &Path, merged: &mut Vec<(PortfolioId, Summary)>) -> io::Result<()> {
    let file = super::pread::PositionedFile::open(path)?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(invalid)?.with_batch_size(64 * 1024);
    // Into an empty list, every row is new: room for them all at once.
    let file_rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let mut absorb = Absorb::new(merged, file_rows);
    for batch in builder.build().map_err(invalid)? {
        let batch = batch.map_err(invalid)?;
        if batch.schema().fields() != SCHEMA.fields() {
            return Err(invalid(format!("{}: not a summary file's columns", path.display())));
        }
        let column = |i: usize| batch.column(i).as_any();
        let text = |i: usize| column(i).downcast_ref::<StringArray>().expect("of the schema");
        let count = |i: usize| column(i).downcast_ref::<UInt64Array>().expect("of the schema");
        let float = |i: usize| column(i).downcast_ref::<Float64Array>().expect("of the schema");
        let int = |i: usize| column(i).downcast_ref::<Int64Array>().expect("of the schema");
        let (portfolios, rows, returns) = (text(0), count(1), count(18));
        let [mean, m2, min, max, first, last, peak, trough, fall_peak, fall_trough, returns_mean, returns_m2] =
            [2, 3, 4, 5, 7, 9, 11, 13, 15, 17, 19, 20].map(float);
        let [first_at, last_at, peak_at, trough_at, fall_peak_at, fall_trough_at] = [6, 8, 10, 12, 14, 16].map(int);
        for i in 0..batch.num_rows() {
            let point = |at: &Int64Array, nav: &Float64Array| Point { at: at.value(i), nav: nav.value(i) };
            let fall = (!fall_peak_at.is_null(i))
                .then(|| Drawdown::between(point(fall_peak_at, fall_peak), point(fall_trough_at, fall_trough)));
            let trend = Trend {
                first: point(first_at, first),
                last: point(last_at, last),
                peak: point(peak_at, peak),
                trough: point(trough_at, trough),
                fall,
                returns: Moments {
                    count: returns.value(i),
                    mean: returns_mean.value(i),
                    m2: returns_m2.value(i),
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                },
            };
            let moments = Moments {
                count: rows.value(i),
                mean: mean.value(i),
                m2: m2.value(i),
                min: min.value(i),
                max: max.value(i),
            };
            let portfolio = portfolios.value(i).parse().map_err(|e| invalid(format!("{}: {e}", path.display())))?;
            if !absorb.push(portfolio, Summary { moments, trend: Some(trend) }) {
                return Err(invalid(format!("{}: not sorted by portfolio at {portfolio}", path.display())));
            }
        }
    }
    absorb.finish();
    Ok(())
}

/// Merges a sorted stream of summaries into a sorted list.
struct Absorb<'a> {
    merged: &'a mut Vec<(PortfolioId, Summary)>,
    /// The first entry of `merged` not below the last portfolio taken.
    cursor: usize,
    /// Portfolios `merged` does not have, in order.
    extras: Vec<(PortfolioId, Summary)>,
    last: Option<PortfolioId>,
}

impl<'a> Absorb<'a> {
    /// Merges into `merged` about `coming` summaries (room for them all is
    /// made when `merged` is empty: every one is new).
    fn new(merged: &'a mut Vec<(PortfolioId, Summary)>, coming: usize) -> Absorb<'a> {
        let extras = if merged.is_empty() { Vec::with_capacity(coming) } else { Vec::new() };
        Absorb { merged, cursor: 0, extras, last: None }
    }

    /// Takes the next summary; false when it is out of order.
    fn push(&mut self, portfolio: PortfolioId, summary: Summary) -> bool {
        if self.last.is_some_and(|last| last >= portfolio) {
            return false;
        }
        self.last = Some(portfolio);
        while self.merged.get(self.cursor).is_some_and(|(p, _)| *p < portfolio) {
            self.cursor += 1;
        }
        match self.merged.get_mut(self.cursor) {
            Some((p, slot)) if *p == portfolio => slot.absorb(&summary),
            _ => self.extras.push((portfolio, summary)),
        }
        true
    }

    fn finish(self) {
        let merged = std::mem::take(self.merged);
        *self.merged = merge_sorted(merged, self.extras);
    }
}

/// Builds the summary of every closed hour (ended at least `closed_after`
/// seconds before `now`) that has none or a stale one, then of every
/// closed day likewise, and removes the summaries of hours and days the
/// archive no longer has. Stops between two hours when `stop` is set.
/// Returns the summaries built (hours and days).
pub fn refresh(data: &Path, now: i64, closed_after: i64, stop: &AtomicBool) -> io::Result<u64> {
    let hours = super::maintain::hours(data)?;
    let mut built = 0;
    for hour in &hours {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if hour.start + HOUR + closed_after > now || hour_current(data, hour.start, &parquet_names(&hour.dir)?) {
            continue;
        }
        match build(data, hour.start)? {
            Built::Written => built += 1,
            Built::Changed => {}
            Built::Interleaved => {
                tracing::debug!(hour = %hour.dir.display(), "a portfolio's rows interleave across files: no summary")
            }
        }
    }
    let mut days: std::collections::BTreeMap<i64, Vec<&super::maintain::Hour>> = Default::default();
    for hour in &hours {
        days.entry(hour.start.div_euclid(DAY) * DAY).or_default().push(hour);
    }
    for (&day, hours) in &days {
        if stop.load(Ordering::Relaxed) || day + DAY + closed_after > now {
            continue;
        }
        let listings =
            hours.iter().map(|hour| Ok((hour.start, parquet_names(&hour.dir)?))).collect::<io::Result<Vec<_>>>()?;
        if current(&day_path(data, day), &day_sources(&listings)).is_some() {
            continue;
        }
        if build_day(data, day, hours)? {
            built += 1;
        }
    }
    let gone = |error: io::Error| if error.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(error) };
    let kept: std::collections::BTreeSet<i64> = hours.iter().map(|hour| hour.start).collect();
    for (start, dir) in super::read::hour_dirs(&data.join(DIR))? {
        if !kept.contains(&start) {
            std::fs::remove_dir_all(&dir).or_else(gone)?;
        }
    }
    for date in std::fs::read_dir(data.join(DIR)).into_iter().flatten() {
        let date = date?.path();
        let day = date.file_name().and_then(|name| name.to_str()).and_then(|name| hour_of_dir(name, "hour=00"));
        if day.is_some_and(|day| !days.contains_key(&day)) {
            std::fs::remove_dir_all(&date).or_else(gone)?;
        }
    }
    Ok(built)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::archive::{ArchiveRow, encode};
    use crate::market::{InvestorId, PortfolioId};

    const HOUR_START: i64 = 1_764_000_000 / HOUR * HOUR;

    fn portfolio(investor: u32, number: u32) -> PortfolioId {
        PortfolioId::new(InvestorId::new(investor).unwrap(), number).unwrap()
    }

    /// Writes `rows` (portfolio, seconds into the hour, NAV) as one file of
    /// the hour.
    fn file(data: &Path, name: &str, rows: &[(PortfolioId, i64, f64)]) {
        let mut rows: Vec<ArchiveRow> = rows
            .iter()
            .map(|&(portfolio, at, nav)| ArchiveRow {
                portfolio,
                timestamp: HOUR_START + at,
                nav,
                nav_change: 0.0,
                nav_change_pct: 0.0,
            })
            .collect();
        let dir = data.join(hour_dir(HOUR_START));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), encode::rows_to_parquet(&mut rows, encode::Layout::Batch)).unwrap();
    }

    fn read_all(data: &Path) -> HashMap<String, Summary> {
        let path = usable(data, HOUR_START, &parquet_names(&data.join(hour_dir(HOUR_START))).unwrap())
            .expect("a current summary");
        let mut all = Vec::new();
        read_into(&path, &mut all).unwrap();
        all.into_iter().map(|(p, s)| (p.to_string(), s)).collect()
    }

    #[test]
    fn runs_in_text_order_merge_into_the_summaries_given_and_new_portfolios_join_them_in_id_order() {
        // Summaries at minute 0 of the odd portfolios 1..=30 of investors 1
        // and 2; then runs at minutes 1 and 2 of every portfolio, in the
        // rows' order (PORTFOLIO as text: 1.1, 1.10, 1.11, ... 1.2, ...),
        // twice (two row groups), and a portfolio of a third investor.
        let point = |at: i64, nav: f64| Summary::of_series(&[HOUR_START + 60 * at], &[nav]).unwrap();
        let ids: Vec<PortfolioId> = (1..=2).flat_map(|i| (1..=30).map(move |n| portfolio(i, n))).collect();
        let earlier: Vec<(PortfolioId, Summary)> =
            ids.iter().filter(|p| p.number % 2 == 1).map(|&p| (p, point(0, f64::from(p.number)))).collect();
        let mut by_text: Vec<PortfolioId> = ids.clone();
        by_text.push(portfolio(3, 7));
        by_text.sort_by_key(|p| p.to_string());
        let mut grouped = Grouped::from_sorted(earlier, 0);
        for minute in [1, 2] {
            for p in &by_text {
                let at = HOUR_START + 60 * minute;
                grouped.take(&p.to_string(), &[at], &[f64::from(p.number) + minute as f64]);
            }
        }
        let all = grouped.into_sorted();
        let mut expected_ids = ids;
        expected_ids.push(portfolio(3, 7));
        assert_eq!(all.iter().map(|(p, _)| *p).collect::<Vec<_>>(), expected_ids, "each once, in id order");
        for (p, summary) in &all {
            let first = if p.number % 2 == 1 && p.investor.get() < 3 { 0 } else { 1 };
            let trend = summary.trend.expect("pieces in time order");
            assert_eq!(summary.moments.count, 3 - first as u64, "{p}");
            assert_eq!((trend.first.at, trend.last.at), (HOUR_START + 60 * first, HOUR_START + 120), "{p}");
            assert_eq!(trend.last.nav, f64::from(p.number) + 2.0, "{p}");
        }
    }

    #[test]
    fn lists_merge_into_one_sorted_sequence_with_each_portfolio_once_as_a_pairwise_merge_gives() {
        // Rows of portfolio (i, 1) at minute k: NAV 100 i + k. Three lists
        // (three threads' files) overlapping in their portfolios, each
        // holding its own minutes of them.
        let summary = |investor: u32, minutes: std::ops::Range<i64>| {
            let at: Vec<i64> = minutes.clone().map(|k| HOUR_START + 60 * k).collect();
            let navs: Vec<f64> = minutes.map(|k| f64::from(100 * investor) + k as f64).collect();
            (portfolio(investor, 1), Summary::of_series(&at, &navs).unwrap())
        };
        let lists = vec![
            (1..=6).map(|i| summary(i, 0..10)).collect::<Vec<_>>(),
            (4..=9).map(|i| summary(i, 10..20)).collect(),
            vec![summary(2, 20..30), summary(9, 20..30), summary(12, 20..30)],
        ];
        let pairwise = lists.iter().cloned().fold(Vec::new(), merge_sorted);
        let merged: Vec<(PortfolioId, Summary)> = merge_lists(lists).collect();
        assert_eq!(merged, pairwise);
        let counts: Vec<(u32, u64)> = merged.iter().map(|(p, s)| (p.investor.get(), s.moments.count)).collect();
        assert_eq!(counts, [(1, 10), (2, 20), (3, 10), (4, 20), (5, 20), (6, 20), (7, 10), (8, 10), (9, 20), (12, 10)]);
        let nine = merged.iter().find(|(p, _)| p.investor.get() == 9).unwrap().1;
        assert_eq!(nine.trend.map(|t| (t.first.nav, t.last.nav)), Some((910.0, 929.0)), "joined in time order");
        assert_eq!(merge_lists(Vec::new()).count(), 0);
    }

    #[test]
    fn a_summary_round_trips_is_used_while_current_and_rebuilt_when_the_hour_changes() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let (a, b) = (portfolio(1, 1), portfolio(10, 2));
        file(data, "b-1.parquet", &[(a, 0, 100.0), (a, 20, 120.0), (b, 0, 50.0), (b, 20, 40.0)]);
        file(data, "b-2.parquet", &[(a, 40, 90.0), (a, 60, 95.0)]);
        let stop = AtomicBool::new(false);
        assert_eq!(refresh(data, HOUR_START + HOUR, 60, &stop).unwrap(), 0, "the hour is not closed yet");
        assert_eq!(refresh(data, HOUR_START + HOUR + 60, 60, &stop).unwrap(), 1);
        let all = read_all(data);
        let one = all["1.1"];
        let trend = one.trend.unwrap();
        assert_eq!((one.moments.count, one.moments.mean, one.moments.min, one.moments.max), (4, 101.25, 90.0, 120.0));
        assert_eq!((trend.first.nav, trend.last.nav, trend.peak.at), (100.0, 95.0, HOUR_START + 20));
        let fall = trend.max_drawdown().unwrap().unwrap();
        assert_eq!((fall.fraction, fall.peak.nav, fall.trough.at), (0.25, 120.0, HOUR_START + 40), "across the files");
        assert_eq!(trend.returns.count, 3);
        assert_eq!(all["10.2"].trend.unwrap().total_return(), Some(40.0 / 50.0 - 1.0));
        assert_eq!(refresh(data, HOUR_START + HOUR + 60, 60, &stop).unwrap(), 0, "current: not rebuilt");
        // Its windows' summaries: every row is in the first window, too
        // few a portfolio for a summary (read from the rows); the others
        // have none.
        let names = parquet_names(&data.join(hour_dir(HOUR_START))).unwrap();
        assert!(hour_current(data, HOUR_START, &names));
        assert_eq!(usable_window(data, HOUR_START, &names), None, "sparse");
        let mut second = Vec::new();
        read_into(&usable_window(data, HOUR_START + WINDOW, &names).expect("the second window's"), &mut second)
            .unwrap();
        assert!(second.is_empty(), "the second window has no rows");

        // A late file: the summary no longer matches the hour until rebuilt.
        file(data, "b-3.parquet", &[(b, 40, 60.0)]);
        let names = parquet_names(&data.join(hour_dir(HOUR_START))).unwrap();
        assert_eq!(usable(data, HOUR_START, &names), None, "stale");
        assert_eq!(refresh(data, HOUR_START + HOUR + 60, 60, &stop).unwrap(), 1);
        assert_eq!(read_all(data)["10.2"].moments.count, 3);

        // Rows of one portfolio interleaving across files: no usable
        // summary, and no new attempt until the hour changes.
        file(data, "b-4.parquet", &[(a, 30, 80.0)]);
        assert_eq!(build(data, HOUR_START).unwrap(), Built::Interleaved);
        let names = parquet_names(&data.join(hour_dir(HOUR_START))).unwrap();
        assert_eq!(usable(data, HOUR_START, &names), None);
        assert_eq!(refresh(data, HOUR_START + HOUR + 60, 60, &stop).unwrap(), 0);

        // Once the day is over, its summary: the hour's, merged.
        std::fs::remove_file(data.join(hour_dir(HOUR_START)).join("b-4.parquet")).unwrap();
        file(data, "b-5.parquet", &[(a, 3000, 80.0)]);
        let day_end = HOUR_START.div_euclid(DAY) * DAY + DAY;
        assert_eq!(refresh(data, day_end + 60, 60, &stop).unwrap(), 2, "the hour again, and the day");

        let names = parquet_names(&data.join(hour_dir(HOUR_START))).unwrap();
        let day = usable_day(data, day_end - DAY, &day_sources(&[(HOUR_START, names)])).expect("a current day");
        let mut merged = Vec::new();
        read_into(&day, &mut merged).unwrap();
        assert_eq!(
            merged.iter().map(|(p, s)| (p.to_string(), s.moments.count)).collect::<Vec<_>>(),
            [("1.1".to_string(), 5), ("10.2".to_string(), 3)]
        );

        // The hour dropped from the archive: its summaries go too.
        std::fs::remove_dir_all(data.join(hour_dir(HOUR_START))).unwrap();
        refresh(data, day_end + 60, 60, &stop).unwrap();
        assert!(!path(data, HOUR_START).exists() && !day_path(data, day_end - DAY).exists());
    }

    #[test]
    fn a_dense_window_has_a_summary_of_its_own_and_the_hours_is_the_merge_of_its_windows() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        // Two portfolios, a row every 20 s for 20 minutes: two windows of
        // 30 rows each.
        let rows: Vec<(PortfolioId, i64, f64)> = [portfolio(1, 1), portfolio(2, 1)]
            .into_iter()
            .flat_map(|p| (0..60).map(move |k| (p, 20 * k, 100.0 + (k % 7) as f64 - (k / 20) as f64)))
            .collect();
        file(data, "c-1.parquet", &rows);
        assert_eq!(refresh(data, HOUR_START + HOUR + 60, 60, &AtomicBool::new(false)).unwrap(), 1);
        let names = parquet_names(&data.join(hour_dir(HOUR_START))).unwrap();
        let read = |path: PathBuf| {
            let mut all = Vec::new();
            read_into(&path, &mut all).unwrap();
            all.into_iter().map(|(p, s)| (p.to_string(), s)).collect::<HashMap<_, _>>()
        };
        let first = read(usable_window(data, HOUR_START, &names).expect("the first window's summary"));
        let second = read(usable_window(data, HOUR_START + WINDOW, &names).expect("the second window's summary"));
        assert_eq!((first["1.1"].moments.count, second["2.1"].moments.count), (30, 30));
        let merged = first["1.1"].merge(second["1.1"]);
        let hour = read_all(data)["1.1"];
        assert_eq!(hour.moments.count, 60);
        assert!((hour.moments.mean - merged.moments.mean).abs() < 1e-12);
        assert!((hour.moments.m2 - merged.moments.m2).abs() < 1e-9);
        let (hour, merged) = (hour.trend.unwrap(), merged.trend.unwrap());
        assert_eq!((hour.first, hour.last, hour.fall), (merged.first, merged.last, merged.fall));
        assert_eq!(hour.returns.count, 59, "the return across the windows' edge counted once");
    }
}
