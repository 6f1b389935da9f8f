//! Merging sorted archive files into files that each hold one range of
//! portfolios: what compaction writes. A portfolio's rows of a compacted
//! hour are then in one file, so a reader looking for it opens one file
//! per hour, not one per slice of time, and each file's PORTFOLIO
//! dictionary holds only its own range.
//!
//! The inputs are runs: files whose rows, read one after the other, are
//! in the archive's order (a batch file alone, or the files of an earlier
//! merge in range order). Every run is read once, a page of rows at a
//! time, always from the run that is furthest behind (the smallest last
//! PORTFOLIO read), until about the rows of one output are held. The
//! smallest last PORTFOLIO is then the range's bound: every run has read
//! all its rows below it, so those rows are the range, whole, and the rest
//! waits for the next one. A portfolio is never split between two files.
//! The range's rows are ordered by PORTFOLIO then TIMESTAMP (portfolios
//! ranked, rows placed by rank, each portfolio's few rows sorted by time)
//! and written. Memory is one range's rows and a page per run; more than
//! [`FAN_IN`] runs are first merged in groups.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::{AsArray, RecordBatch};
use arrow::compute::interleave_record_batch;
use arrow::datatypes::TimestampMillisecondType;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::encode::{self, Layout};
use super::pread::PositionedFile;
use crate::fsutil::with_path;

/// Files whose rows, read one after the other, are in the archive's
/// order.
pub type Run = Vec<PathBuf>;

/// Runs read at once at most: each holds a page of rows and its decoding
/// state. More are first merged in groups of this many.
pub const FAN_IN: usize = 64;

/// Rows decoded at a time from a run.
const READ_ROWS: usize = 4096;

/// Where a merge writes and when it stops.
pub struct Target<'a> {
    /// The folder of the merged files.
    pub dir: &'a Path,
    /// Their names' start: `{prefix}-{range:05}.parquet`, in range order.
    pub prefix: &'a str,
    /// A folder for the merges of groups when there are more than
    /// [`FAN_IN`] runs (emptied as they are used).
    pub scratch: &'a Path,
    /// Rows per merged file, about (more when one portfolio has more).
    pub max_rows: u64,
    /// Set to stop between two files: the merge then returns `None`.
    pub stop: &'a AtomicBool,
    /// How the merged files lay out their rows (a merge of groups writes
    /// [`Layout::Runs`]: the next level reads them in order).
    pub layout: Layout,
}

fn invalid(path: &Path, error: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {error}", path.display()))
}

/// Merges `runs` into files of about `target.max_rows` rows, each sorted by
/// PORTFOLIO then TIMESTAMP, holding ranges of portfolios that do not
/// overlap; returns them in range order (a run), or `None` if stopped.
pub fn merge(runs: Vec<Run>, target: &Target) -> io::Result<Option<Run>> {
    let mut runs = runs;
    let mut level = 0;
    let mut scratch_files: Vec<PathBuf> = Vec::new();
    while runs.len() > FAN_IN {
        std::fs::create_dir_all(target.scratch).map_err(with_path(target.scratch))?;
        let mut merged = Vec::new();
        for (group, runs) in runs.chunks(FAN_IN).enumerate() {
            let prefix = format!("level{level}-group{group}");
            let Some(run) =
                merge_once(runs, &Target { dir: target.scratch, prefix: &prefix, layout: Layout::Runs, ..*target })?
            else {
                return Ok(None);
            };
            merged.push(run);
        }
        for path in scratch_files.drain(..) {
            std::fs::remove_file(&path).map_err(with_path(&path))?;
        }
        scratch_files = merged.iter().flatten().cloned().collect();
        runs = merged;
        level += 1;
    }
    let merged = merge_once(&runs, target)?;
    for path in scratch_files {
        std::fs::remove_file(&path).map_err(with_path(&path))?;
    }
    Ok(merged)
}

/// A run being read in order, a page of rows at a time: the files not
/// opened yet, the one being read, the rows read and not yet merged, and
/// the last PORTFOLIO read.
struct Cursor {
    files: VecDeque<PathBuf>,
    reader: Option<(PathBuf, ParquetRecordBatchReader)>,
    held: VecDeque<RecordBatch>,
    last: Option<Vec<u8>>,
}

impl Cursor {
    fn new(run: &Run) -> Cursor {
        Cursor { files: run.iter().cloned().collect(), reader: None, held: VecDeque::new(), last: None }
    }

    /// Whether every row of the run has been read.
    fn done(&self) -> bool {
        self.reader.is_none() && self.files.is_empty()
    }

    /// The rows read and not yet merged.
    fn held_rows(&self) -> usize {
        self.held.iter().map(RecordBatch::num_rows).sum()
    }

    /// Reads the run's next rows into `held` (none at its end).
    fn read(&mut self) -> io::Result<()> {
        loop {
            if let Some((path, reader)) = &mut self.reader {
                match reader.next() {
                    Some(batch) => {
                        let batch = batch
                            .and_then(|batch| batch.with_schema(Arc::clone(&encode::SCHEMA)))
                            .map_err(|e| invalid(path, e))?;
                        if batch.num_rows() == 0 {
                            continue;
                        }
                        let portfolios = batch.column(0).as_string::<i32>();
                        self.last = Some(portfolios.value(batch.num_rows() - 1).as_bytes().to_vec());
                        self.held.push_back(batch);
                        return Ok(());
                    }
                    None => self.reader = None,
                }
            }
            let Some(path) = self.files.pop_front() else {
                return Ok(());
            };
            let file = PositionedFile::open(&path).map_err(with_path(&path))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                .and_then(|builder| builder.with_batch_size(READ_ROWS).build())
                .map_err(|e| invalid(&path, e))?;
            self.reader = Some((path, reader));
        }
    }

    /// Moves the held rows with PORTFOLIO below `bound` (all of them:
    /// `None`) to `out`.
    fn take_below(&mut self, bound: Option<&[u8]>, out: &mut Vec<RecordBatch>) {
        while let Some(batch) = self.held.pop_front() {
            let portfolios = batch.column(0).as_string::<i32>();
            let below = bound.map_or(batch.num_rows(), |bound| {
                // Sorted within the run: the rows below the bound lead.
                partition_point(batch.num_rows(), |row| portfolios.value(row).as_bytes() < bound)
            });
            if below > 0 {
                out.push(batch.slice(0, below));
            }
            if below < batch.num_rows() {
                self.held.push_front(batch.slice(below, batch.num_rows() - below));
                return;
            }
        }
    }
}

/// The first index in `0..len` where `below` turns false (it is true then
/// false along the range).
fn partition_point(len: usize, below: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, len);
    while low < high {
        let middle = low + (high - low) / 2;
        if below(middle) { low = middle + 1 } else { high = middle }
    }
    low
}

/// The rows of the next range: about `max_rows` (more when one portfolio
/// has more), every row of each of its portfolios; `None` once every run
/// is read.
fn next_range(cursors: &mut [Cursor], max_rows: usize) -> io::Result<Option<Vec<RecordBatch>>> {
    loop {
        let held: usize = cursors.iter().map(Cursor::held_rows).sum();
        // The run furthest behind: not started, or the smallest last PORTFOLIO.
        let behind = cursors
            .iter()
            .enumerate()
            .filter(|(_, cursor)| !cursor.done())
            .min_by(|(_, a), (_, b)| a.last.cmp(&b.last))
            .map(|(index, _)| index);
        let Some(behind) = behind else {
            let mut parts = Vec::new();
            cursors.iter_mut().for_each(|cursor| cursor.take_below(None, &mut parts));
            return Ok((!parts.is_empty()).then_some(parts));
        };
        if held >= max_rows
            && let Some(bound) = cursors[behind].last.clone()
        {
            let mut parts = Vec::new();
            cursors.iter_mut().for_each(|cursor| cursor.take_below(Some(&bound), &mut parts));
            if !parts.is_empty() {
                return Ok(Some(parts));
            }
        }
        cursors[behind].read()?;
    }
}

/// Merges at most [`FAN_IN`] runs into `target`.
fn merge_once(runs: &[Run], target: &Target) -> io::Result<Option<Run>> {
    let mut cursors: Vec<Cursor> = runs.iter().map(Cursor::new).collect();
    let max_rows = usize::try_from(target.max_rows).unwrap_or(usize::MAX);
    let mut merged = Vec::new();
    loop {
        if target.stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let Some(parts) = next_range(&mut cursors, max_rows)? else {
            return Ok(Some(merged));
        };
        let path = target.dir.join(format!("{}-{:05}.parquet", target.prefix, merged.len()));
        write_sorted(&parts, &path, target.layout)?;
        merged.push(path);
    }
}

/// Writes `parts` (each sorted by PORTFOLIO then TIMESTAMP) to `path`,
/// merged into that order and laid out as `layout` says, synced.
fn write_sorted(parts: &[RecordBatch], path: &Path, layout: Layout) -> io::Result<()> {
    let sorted = interleave_record_batch(&parts.iter().collect::<Vec<_>>(), &merged_order(parts))
        .map_err(|e| invalid(path, e))?;
    let bytes = encode::to_parquet([&sorted], layout);
    let mut out = File::create(path).map_err(with_path(path))?;
    io::Write::write_all(&mut out, &bytes).map_err(with_path(path))?;
    out.sync_all().map_err(with_path(path))
}

/// The rows of `parts` ordered by PORTFOLIO then TIMESTAMP, as (part,
/// row): each PORTFOLIO ranked among the range's (one hash lookup a row,
/// none while it repeats), the rows placed by rank, then each portfolio's
/// rows sorted by TIMESTAMP (stable: rows of equal times keep their
/// parts' order). A k-way merge of the sorted parts compared strings at
/// every step and took three times as long.
fn merged_order(parts: &[RecordBatch]) -> Vec<(usize, usize)> {
    // Each row's PORTFOLIO as an id (first seen, first numbered), then as
    // its rank.
    let mut ids: HashMap<&[u8], u32> = HashMap::new();
    let mut row_ranks: Vec<u32> = Vec::with_capacity(parts.iter().map(RecordBatch::num_rows).sum());
    for part in parts {
        let portfolios = part.column(0).as_string::<i32>();
        let mut previous: Option<(&[u8], u32)> = None;
        for row in 0..part.num_rows() {
            let key = portfolios.value(row).as_bytes();
            let id = match previous {
                Some((last, id)) if last == key => id,
                _ => {
                    let next = ids.len() as u32;
                    *ids.entry(key).or_insert(next)
                }
            };
            previous = Some((key, id));
            row_ranks.push(id);
        }
    }
    // Ids in first-seen order, to ranks in PORTFOLIO order.
    let mut by_key: Vec<(&[u8], u32)> = ids.into_iter().collect();
    by_key.sort_unstable();
    let mut rank_of_id = vec![0u32; by_key.len()];
    for (rank, (_, id)) in by_key.iter().enumerate() {
        rank_of_id[*id as usize] = rank as u32;
    }
    for id in &mut row_ranks {
        *id = rank_of_id[*id as usize];
    }
    let mut starts = vec![0usize; by_key.len() + 1];
    for rank in &row_ranks {
        starts[*rank as usize + 1] += 1;
    }
    for rank in 1..starts.len() {
        starts[rank] += starts[rank - 1];
    }
    let mut next = starts.clone();
    let mut order = vec![(0, 0); row_ranks.len()];
    let mut ranks_in_order = row_ranks.into_iter();
    for (part, batch) in parts.iter().enumerate() {
        for row in 0..batch.num_rows() {
            let rank = ranks_in_order.next().expect("a rank per row") as usize;
            order[next[rank]] = (part, row);
            next[rank] += 1;
        }
    }
    let times: Vec<&[i64]> =
        parts.iter().map(|part| part.column(1).as_primitive::<TimestampMillisecondType>().values().as_ref()).collect();
    for rank in 0..by_key.len() {
        order[starts[rank]..starts[rank + 1]].sort_by_key(|&(part, row)| times[part][row]);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::ArchiveRow;
    use crate::market::{InvestorId, PortfolioId};

    /// Every row of `path` as (PORTFOLIO, TIMESTAMP ms, NAV bits).
    fn rows_of(path: &Path) -> Vec<(String, i64, u64)> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap().build().unwrap();
        let mut rows = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let p = batch.column(0).as_string::<i32>();
            let t = batch.column(1).as_primitive::<arrow::datatypes::TimestampMillisecondType>();
            let n = batch.column(2).as_primitive::<arrow::datatypes::Float64Type>();
            rows.extend((0..batch.num_rows()).map(|i| (p.value(i).to_string(), t.value(i), n.value(i).to_bits())));
        }
        rows
    }

    /// A batch file of one interval: every portfolio of investors 1..=40
    /// (10 each) once, at `interval`.
    fn batch_file(dir: &Path, interval: i64) -> PathBuf {
        let mut rows: Vec<ArchiveRow> = (1..=40)
            .flat_map(|investor| {
                (1..=10).map(move |number| ArchiveRow {
                    portfolio: PortfolioId::new(InvestorId::new(investor).unwrap(), number).unwrap(),
                    timestamp: 1_764_579_600 + 20 * interval,
                    nav: f64::from(investor * 1000 + number) + interval as f64 / 100.0,
                    nav_change: 0.01,
                    nav_change_pct: 0.0,
                })
            })
            .collect();
        let path = dir.join(format!("b-{interval:03}.parquet"));
        std::fs::write(&path, encode::rows_to_parquet(&mut rows, Layout::Batch)).unwrap();
        path
    }

    #[test]
    fn sorted_runs_merge_into_files_of_disjoint_portfolio_ranges_holding_every_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let (inputs, out, scratch) = (dir.path().join("in"), dir.path().join("out"), dir.path().join("scratch"));
        std::fs::create_dir_all(&inputs).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        // More runs than FAN_IN: merged in groups first, through scratch.
        let runs: Vec<Run> = (0..FAN_IN as i64 + 6).map(|interval| vec![batch_file(&inputs, interval)]).collect();
        let mut expected: Vec<(String, i64, u64)> = runs.iter().flat_map(|run| rows_of(&run[0])).collect();
        expected.sort();
        let stop = AtomicBool::new(false);
        let target = Target {
            dir: &out,
            prefix: "c-test",
            scratch: &scratch,
            max_rows: 5000,
            stop: &stop,
            layout: Layout::Runs,
        };
        let merged = merge(runs, &target).unwrap().unwrap();
        assert!((5..=7).contains(&merged.len()), "28,000 rows in files of about 5,000: {}", merged.len());
        let mut all = Vec::new();
        let mut last_of_previous: Option<String> = None;
        for path in &merged {
            let rows = rows_of(path);
            assert!(rows.len() <= 5000 + 4096, "{}: {} rows", path.display(), rows.len());
            assert!(rows.windows(2).all(|w| (&w[0].0, w[0].1) <= (&w[1].0, w[1].1)), "sorted");
            if let Some(last) = &last_of_previous {
                assert!(*last < rows[0].0, "ranges overlap: {last} then {}", rows[0].0);
            }
            // A portfolio's 70 rows are in one file.
            assert_eq!(rows.len() % 70, 0);
            last_of_previous = Some(rows.last().unwrap().0.clone());
            all.extend(rows);
        }
        assert_eq!(all, expected, "every row once, in order");
        assert_eq!(std::fs::read_dir(&scratch).unwrap().count(), 0, "the groups' files are removed");
    }

    #[test]
    fn a_stop_request_ends_the_merge_between_two_files() {
        let dir = tempfile::tempdir().unwrap();
        let runs: Vec<Run> = (0..3).map(|interval| vec![batch_file(dir.path(), interval)]).collect();
        let stop = AtomicBool::new(true);
        let target = Target {
            dir: dir.path(),
            prefix: "c",
            scratch: dir.path(),
            max_rows: 100,
            stop: &stop,
            layout: Layout::Runs,
        };
        assert_eq!(merge(runs, &target).unwrap(), None);
    }

    /// A run of one file holding `rows` rows of each portfolio of
    /// investors `investors`, 20 s apart.
    fn range_file(dir: &Path, name: &str, investors: std::ops::RangeInclusive<u32>, rows: i64) -> PathBuf {
        let mut all: Vec<ArchiveRow> = investors
            .flat_map(|investor| {
                (0..rows).map(move |k| ArchiveRow {
                    portfolio: PortfolioId::new(InvestorId::new(investor).unwrap(), 1).unwrap(),
                    timestamp: 1_764_579_600 + 20 * k,
                    nav: f64::from(investor) + k as f64,
                    nav_change: 1.0,
                    nav_change_pct: 0.0,
                })
            })
            .collect();
        let path = dir.join(name);
        std::fs::write(&path, encode::rows_to_parquet(&mut all, Layout::Runs)).unwrap();
        path
    }

    #[test]
    fn runs_of_unequal_ranges_and_a_portfolio_larger_than_a_file_merge_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        // One run of low portfolios, one of high ones, one of a single
        // portfolio with 20,000 rows (more than a file's 3,000).
        let runs: Vec<Run> = vec![
            vec![range_file(dir.path(), "low.parquet", 10..=19, 300)],
            vec![range_file(dir.path(), "high.parquet", 80..=99, 300)],
            vec![range_file(dir.path(), "big.parquet", 5..=5, 20_000)],
        ];
        let mut expected: Vec<(String, i64, u64)> = runs.iter().flat_map(|run| rows_of(&run[0])).collect();
        expected.sort();
        let stop = AtomicBool::new(false);
        let target =
            Target { dir: &out, prefix: "c", scratch: dir.path(), max_rows: 3000, stop: &stop, layout: Layout::Runs };
        let merged = merge(runs, &target).unwrap().unwrap();
        let files: Vec<Vec<(String, i64, u64)>> = merged.iter().map(|path| rows_of(path)).collect();
        let portfolios_of = |rows: &[(String, i64, u64)]| {
            rows.iter().map(|row| row.0.clone()).collect::<std::collections::BTreeSet<_>>()
        };
        for pair in files.windows(2) {
            assert!(pair[0].last().unwrap().0 < pair[1][0].0, "ranges in order, not overlapping");
        }
        let big: Vec<&Vec<(String, i64, u64)>> =
            files.iter().filter(|rows| portfolios_of(rows).contains("5.1")).collect();
        assert_eq!(big.len(), 1, "portfolio 5.1 in one file");
        assert!(big[0].len() >= 20_000);
        assert!(
            files.iter().all(|rows| rows.len() <= 20_000 + 3000 + 2 * READ_ROWS),
            "{:?}",
            files.iter().map(Vec::len).collect::<Vec<_>>()
        );
        assert!(files.len() >= 4, "9,000 other rows in files of about 3,000: {} files", files.len());
        assert_eq!(files.concat(), expected, "every row once, in order");
    }
}
