//! `stockd archive`: the archive of a data folder built from its CSV files,
//! so that history written before the archive existed (or by the seed, or
//! `stockd gen-data`) is not stranded.
//!
//! The CSV files hold every row of a folder whose archive does not cover
//! them (the CSV window cuts nothing until it does), so the archive is
//! rebuilt from them whole: written beside the old one, swapped in, and
//! only then marked as covering the CSVs. A crash before the mark leaves a
//! folder whose readers still use the CSVs, and the command can be run
//! again. It refuses to run beside a sink (whose rows would land in the old
//! archive only) and over a partition with an interrupted batch (which the
//! sink rolls back at its next start, while the rebuilt archive would keep
//! its rows).

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::{ArchiveRow, Coverage, DIR, encode, hour_dir, hour_of, maintain::MERGE_ROWS};
use crate::fsutil::{LockAttempt, try_lock, with_path};
use crate::layout::portfolio_files;
use crate::query::RowsConsumer;
use crate::query::batch::{Columns, Interval};
use crate::query::scan::scan;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    /// Portfolio files read.
    pub files: u64,
    /// Rows written to the archive.
    pub rows: u64,
    /// Corrupt rows skipped (each logged with its file and line).
    pub skipped: u64,
    /// Parquet files written.
    pub parquet_files: u64,
    /// The archive's bytes.
    pub bytes: u64,
    /// Hour summaries written.
    pub summaries: u64,
}

/// Why there is no import.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A sink is running on the folder.
    #[error("a sink is running on {} ({holder}): stop it first", data.display())]
    SinkRunning {
        /// The data folder.
        data: PathBuf,
        /// Who holds the lock.
        holder: String,
    },
    /// A partition has a batch a crash interrupted.
    #[error(
        "{} has an interrupted batch: start the sink once (it rolls the batch back and writes it again), stop it, then run this again",
        journal.display()
    )]
    Interrupted {
        /// The partition's intent file.
        journal: PathBuf,
    },
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// The lock a running sink holds (shared) and an import takes (exclusive).
pub fn sink_lock_path(data: &Path) -> PathBuf {
    crate::layout::sink_dir(data).join("archive-import.lock")
}

/// Builds the archive of `data` from its CSV files.
pub fn import(data: &Path) -> Result<Imported, ImportError> {
    let lock_path = sink_lock_path(data);
    let _lock = match try_lock(&lock_path)? {
        LockAttempt::Taken(lock) => lock,
        LockAttempt::Held(holder) => return Err(ImportError::SinkRunning { data: data.to_path_buf(), holder }),
    };
    check_no_interrupted_batch(data)?;
    let work = crate::layout::sink_dir(data).join("archive-import");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let new_root = work.join(DIR);
    std::fs::create_dir_all(&new_root)?;
    let mut imported = Imported::default();
    let mut pending: Vec<ArchiveRow> = Vec::new();
    for (_, path) in portfolio_files(data)? {
        let (rows, skipped) =
            scan(&path, Columns::All, Interval::default(), RowsConsumer::default).map_err(with_path(&path))?;
        for warning in &skipped.warnings {
            tracing::warn!("{warning}");
        }
        imported.files += 1;
        imported.skipped += skipped.rows;
        pending.extend(rows.rows.into_iter().filter_map(|row| {
            Some(ArchiveRow {
                portfolio: row.portfolio.parse().ok()?,
                timestamp: row.timestamp,
                nav: row.nav,
                nav_change: row.nav_change,
                nav_change_pct: row.nav_change_pct,
            })
        }));
        if pending.len() as u64 >= MERGE_ROWS {
            flush(&work, &mut pending, &mut imported)?;
        }
    }
    flush(&work, &mut pending, &mut imported)?;
    let old = work.join("old");
    let current = data.join(DIR);
    if current.exists() {
        std::fs::rename(&current, &old)?;
    }
    std::fs::rename(&new_root, &current)?;
    crate::fsutil::sync_dir(data)?;
    Coverage::mark_covering(data)?;
    std::fs::remove_dir_all(&work)?;
    // Every hour, the latest too: one that changes later (a sink started
    // on the folder) is summarised again by the sink's maintenance.
    let everything = i64::MAX / 2;
    imported.summaries = super::summary::refresh(data, everything, 0, &std::sync::atomic::AtomicBool::new(false))?;
    Ok(imported)
}

/// Writes `rows` into one file per hour under `work`, and empties it.
fn flush(work: &Path, rows: &mut Vec<ArchiveRow>, imported: &mut Imported) -> io::Result<()> {
    let mut by_hour: BTreeMap<i64, Vec<ArchiveRow>> = BTreeMap::new();
    for row in rows.drain(..) {
        by_hour.entry(hour_of(row.timestamp)).or_default().push(row);
    }
    for (hour, mut rows) in by_hour {
        let dir = work.join(hour_dir(hour));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("i-{:06}.parquet", imported.parquet_files));
        let bytes = encode::rows_to_parquet(&mut rows, encode::Layout::Windows);
        let mut file = File::create(&path)?;
        io::Write::write_all(&mut file, &bytes)?;
        file.sync_all()?;
        imported.rows += rows.len() as u64;
        imported.parquet_files += 1;
        imported.bytes += bytes.len() as u64;
    }
    Ok(())
}

/// Fails when a partition's journal (or the single journal of an earlier
/// version) records a batch that is not checkpointed.
fn check_no_interrupted_batch(data: &Path) -> Result<(), ImportError> {
    let mut journals = vec![crate::layout::sink_dir(data)];
    let partitions = crate::layout::sink_dir(data).join("partitions");
    for topic in read_dirs(&partitions)? {
        journals.extend(read_dirs(&topic)?);
    }
    for dir in journals {
        let journal = crate::sink::journal::Journal::at(&dir, false);
        let checkpoint = journal.checkpoint().map_err(|e| io::Error::other(e.to_string()))?;
        let intents = journal.intents().map_err(|e| io::Error::other(e.to_string()))?;
        if intents.iter().any(|intent| intent.batch > checkpoint.batch) {
            return Err(ImportError::Interrupted { journal: dir.join("intent.json") });
        }
    }
    Ok(())
}

fn read_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            entries.map(|e| e.map(|e| e.path())).filter(|p| p.as_ref().map_or(true, |p| p.is_dir())).collect()
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}
