//! The archive: the history of every row the sink writes, in Parquet under
//! `DATA/archive/`, readable at any moment by an independent engine
//! (`read_parquet('DATA/archive/**/*.parquet', hive_partitioning=true)`).
//!
//! The contract, between the sink (which writes it), the maintenance
//! (compaction and retention, [`maintain`]) and the readers ([`read`]):
//! - Rows live in Hive-style hour partitions,
//!   `archive/date=YYYY-MM-DD/hour=HH/` (UTC, by the row's TIMESTAMP), with
//!   the CSV header's columns: `PORTFOLIO` (string), `TIMESTAMP` (UTC
//!   timestamp, ms), `NAV`, `NAV_Change`, `NAV_Change_%` (doubles, the
//!   CSV's values bit for bit). Each row group is sorted by PORTFOLIO (as
//!   text), then TIMESTAMP; a compacted, generated or imported file holds
//!   its rows in row groups per [`WINDOW`] of time, in time order
//!   ([`encode`]).
//! - A file appears whole or not at all: written under a temporary name
//!   outside the archive and renamed into its hour partition. The sink writes one file per batch, partition of the topic
//!   and hour (`b-TOPIC-P-BATCH-UNIQUE.parquet`), listed in the batch's
//!   intent, so a batch rolled back after a crash takes its file with it.
//! - Compaction replaces an hour folder's small files by larger sorted ones,
//!   each holding a range of portfolios, in one step: a new folder holding
//!   the merged files and hard links to every other file is swapped with the old one (`renameat2` with
//!   `RENAME_EXCHANGE`); a reader lists one folder or the other, never a
//!   mix. It merges only files of batches already checkpointed.
//! - Every change of an hour folder's contents (a file renamed in, a
//!   batch's file rolled back, a swap, a drop by retention) is made under
//!   `.sink/archive.lock`: shared for the sink's own files, exclusive for
//!   a swap or a drop.
//! - `.sink/archive.json` says whether the archive holds every row of the
//!   CSV files too ([`Coverage`]): true when the sink started the archive
//!   on a folder without rows, or `stockd archive` imported the CSVs. Only
//!   then do readers take the archive for the whole history, and only then
//!   may the CSV files be cut back (the CSV window).

pub mod encode;
pub mod generate;
pub mod import;
pub mod maintain;
pub mod merge;
pub mod pread;
pub mod read;
pub mod summary;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Timelike};
use serde::{Deserialize, Serialize};

use crate::market::PortfolioId;

/// The archive's folder, relative to the data folder.
pub const DIR: &str = "archive";

/// Seconds in an hour partition.
pub const HOUR: i64 = 3600;

/// Seconds in a window: the part of an hour that a compacted hour's files
/// keep in row groups of their own and that has a summary of its own, so
/// that a question over part of an hour reads the rows of at most one
/// window at each edge.
pub const WINDOW: i64 = 600;

/// One row of the archive: a CSV row's values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArchiveRow {
    /// PORTFOLIO.
    pub portfolio: PortfolioId,
    /// TIMESTAMP, seconds since the epoch (UTC), as the CSV row has it.
    pub timestamp: i64,
    /// NAV.
    pub nav: f64,
    /// NAV_Change.
    pub nav_change: f64,
    /// NAV_Change_%.
    pub nav_change_pct: f64,
}

/// Rows per portfolio and window, on average, from which a window is kept
/// apart: its rows in row groups of their own (see [`encode`]) and its
/// summary beside the hour's. Below, a reader of part of the window does
/// about as much work with the window's rows as with its summary (a
/// portfolio's work for each portfolio either way), while the cut would
/// cost one portfolio's rows a column chunk per window (at 600 s a row,
/// one a window: 24 hours of one portfolio took 55 ms cut, 30 ms not) and
/// the summary would be larger than the rows.
pub const DENSE_WINDOW_ROWS: u64 = 10;

/// Whether `rows` rows spread over `portfolio_windows` (portfolios ×
/// windows) are dense enough to keep their windows apart
/// ([`DENSE_WINDOW_ROWS`]).
pub fn dense(rows: u64, portfolio_windows: u64) -> bool {
    rows >= DENSE_WINDOW_ROWS.saturating_mul(portfolio_windows)
}

/// The start of the hour partition holding `timestamp` (seconds).
pub fn hour_of(timestamp: i64) -> i64 {
    timestamp.div_euclid(HOUR) * HOUR
}

/// The start of the window holding `timestamp` (seconds).
pub fn window_of(timestamp: i64) -> i64 {
    timestamp.div_euclid(WINDOW) * WINDOW
}

/// The folder of the hour partition starting at `hour` (seconds), relative
/// to the data folder: `archive/date=YYYY-MM-DD/hour=HH`.
pub fn hour_dir(hour: i64) -> String {
    format!("{DIR}/{}", hour_partition(hour))
}

/// The Hive-style partition of the hour starting at `hour` (seconds):
/// `date=YYYY-MM-DD/hour=HH`.
pub fn hour_partition(hour: i64) -> String {
    let at = DateTime::from_timestamp(hour, 0).expect("an hour within chrono's range").naive_utc();
    format!("date={:04}-{:02}-{:02}/hour={:02}", at.year(), at.month(), at.day(), at.hour())
}

/// The hour (seconds) of a folder named `date=YYYY-MM-DD/hour=HH` given as
/// its two names; `None` for any other name.
pub fn hour_of_dir(date: &str, hour: &str) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(date.strip_prefix("date=")?, "%Y-%m-%d").ok()?;
    let hour: u32 = hour.strip_prefix("hour=")?.parse().ok()?;
    Some(date.and_hms_opt(hour, 0, 0)?.and_utc().timestamp())
}

/// The file of one batch's rows of `partition` of `topic` in the hour
/// partition `hour`, relative to the data folder; `unique` tells apart the
/// files of a batch number used again (after a restart of a bus that lost
/// its messages).
pub fn batch_file(topic: &str, partition: i32, batch: u64, unique: u64, hour: i64) -> String {
    format!("{}/b-{topic}-{partition}-{batch:012}-{unique}.parquet", hour_dir(hour))
}

/// The partition and batch of a batch file's name, if it is one of `topic`.
pub fn batch_of(name: &str, topic: &str) -> Option<(i32, u64)> {
    let rest = name.strip_prefix("b-")?.strip_suffix(".parquet")?.strip_prefix(topic)?.strip_prefix('-')?;
    let mut parts = rest.splitn(3, '-');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The lock that orders changes of the archive's hour folders (held while
/// the value lives).
pub struct ArchiveLock {
    _file: File,
}

impl ArchiveLock {
    fn open(data: &Path) -> io::Result<File> {
        let path = crate::layout::sink_dir(data).join("archive.lock");
        std::fs::create_dir_all(path.parent().expect("in .sink"))?;
        File::options().read(true).write(true).create(true).truncate(false).open(&path)
    }

    /// Shared: the sink renaming its files in or rolling one back.
    pub fn shared(data: &Path) -> io::Result<Self> {
        let file = Self::open(data)?;
        file.lock_shared()?;
        Ok(ArchiveLock { _file: file })
    }

    /// Exclusive: a swap by compaction or a drop by retention.
    pub fn exclusive(data: &Path) -> io::Result<Self> {
        let file = Self::open(data)?;
        file.lock()?;
        Ok(ArchiveLock { _file: file })
    }
}

/// What `.sink/archive.json` says of the archive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// The archive holds every row the CSV files hold.
    pub covers_csvs: bool,
}

/// The coverage file of the data folder `data`.
fn coverage_path(data: &Path) -> PathBuf {
    crate::layout::sink_dir(data).join("archive.json")
}

impl Coverage {
    /// The coverage of `data`'s archive (none yet: not covering).
    pub fn read(data: &Path) -> Coverage {
        std::fs::read(coverage_path(data))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Records whether the archive of `data` holds every CSV row.
    pub fn write(data: &Path, covers_csvs: bool) -> io::Result<()> {
        let bytes = serde_json::to_vec(&Coverage { covers_csvs }).expect("serialises");
        crate::fsutil::write_atomically(&coverage_path(data), &bytes)
    }

    /// Records that the archive of `data` holds every CSV row.
    pub fn mark_covering(data: &Path) -> io::Result<()> {
        Coverage::write(data, true)
    }

    /// Whether the coverage file exists.
    pub fn recorded(data: &Path) -> bool {
        coverage_path(data).exists()
    }
}

/// Whether `data` holds an archive that readers take for the whole
/// history.
pub fn is_complete(data: &Path) -> bool {
    Coverage::read(data).covers_csvs && data.join(DIR).is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hour_folders_and_batch_files_are_named_hive_style_and_read_back() {
        let at = crate::market::parse_timestamp("2026-12-01 09:59:59").unwrap().and_utc().timestamp();
        let hour = hour_of(at);
        assert_eq!(hour_dir(hour), "archive/date=2026-12-01/hour=09");
        assert_eq!(hour_of_dir("date=2026-12-01", "hour=09"), Some(hour));
        assert_eq!(hour_of_dir("date=2026-12-01", "hour=x"), None);
        let name = batch_file("Portfolios", 2, 17, 99, hour);
        assert_eq!(name, "archive/date=2026-12-01/hour=09/b-Portfolios-2-000000000017-99.parquet");
        let file = name.rsplit('/').next().unwrap();
        assert_eq!(batch_of(file, "Portfolios"), Some((2, 17)));
        assert_eq!(batch_of(file, "Other"), None);
        assert_eq!(hour_of(-1), -HOUR);
    }
}
