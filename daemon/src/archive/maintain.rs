//! Keeping the archive small and bounded, in the background: compaction of
//! closed hours and retention by age and size. One pass at a time per data
//! folder (`.sink/archive-maintain.lock`; a sink that finds it held skips
//! its pass).
//!
//! - **Compaction** merges, in each hour partition closed for a minute, the
//!   batch files of the partitions of the topic this sink holds, of batches
//!   already checkpointed (never one a crash could still roll back), and
//!   the hour's generations, into files of about [`MERGE_ROWS`] rows, each
//!   holding a range of portfolios whole ([`merge`]), in a row group per
//!   10-minute window, each sorted by PORTFOLIO then TIMESTAMP
//!   ([`Layout::Windows`]). In the open hour, the checkpointed batch files
//!   become a generation of range files (`g-…`, not cut by window: the
//!   hour's last merge reads them in order) once there are [`OPEN_HOUR_FILES`],
//!   so that a reader of one portfolio opens a file per generation, not
//!   per batch.
//!   The new hour folder (the merged files and hard links to
//!   every other file) is built in `.sink/archive-staging/` and swapped
//!   with the old one in one `renameat2(RENAME_EXCHANGE)` under the
//!   archive's exclusive lock, after checking that the merged files are
//!   all still there. A reader lists the old folder or the new one: it
//!   never sees a row twice or misses one. The old folder is removed at the
//!   next pass, so a reader that listed it just before the swap can still
//!   open its files.
//! - **Retention** drops whole hour partitions: those that ended more than
//!   `archive.retention` ago, then the oldest while the archive is larger
//!   than `archive.max-bytes` (the newest two hours are always kept).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::encode::Layout;
use super::merge::{self, Run, Target};
use super::{ArchiveLock, DIR, HOUR, batch_of};
use crate::fsutil::{LockAttempt, try_lock, with_path};

/// Rows merged into one file, about (bounds a pass's memory to a few
/// hundred MB).
pub const MERGE_ROWS: u64 = 4 << 20;

/// How long after an hour ends before it is compacted (late rows of a
/// sink that is behind still go in as small files, merged at a later
/// pass).
const CLOSED_AFTER: i64 = 60;

/// How long and how large the archive is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Hours that ended longer ago than this are dropped.
    pub max_age: Option<Duration>,
    /// The oldest hours are dropped while the archive is larger.
    pub max_bytes: Option<u64>,
}

/// What one pass may do.
#[derive(Debug, Clone)]
pub struct Pass {
    /// The data folder.
    pub data: PathBuf,
    /// The valuations topic (its batch files are named after it).
    pub topic: String,
    /// Per partition of the topic this sink holds, its last checkpointed
    /// batch: only their batch files up to it are merged.
    pub checkpointed: BTreeMap<i32, u64>,
    /// What to keep.
    pub retention: Retention,
    /// Now, in seconds since the epoch.
    pub now: i64,
    /// Set to stop the pass early (between two merges): the sink is
    /// stopping.
    pub stop: Arc<AtomicBool>,
}

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Another pass held the lock: nothing was done.
    pub skipped: bool,
    /// Hours compacted.
    pub compacted_hours: u64,
    /// Batch files merged away.
    pub merged_files: u64,
    /// Hours dropped by retention.
    pub dropped_hours: u64,
    /// Hours whose summary was (re)built.
    pub summarised_hours: u64,
    /// The archive's size after the pass, in bytes.
    pub archive_bytes: u64,
}

/// One hour partition: its start and folder.
pub struct Hour {
    /// Its start, seconds since the epoch.
    pub start: i64,
    /// Its folder.
    pub dir: PathBuf,
}

fn staging(data: &Path) -> PathBuf {
    crate::layout::sink_dir(data).join("archive-staging")
}

fn unique() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// Runs one pass over the archive of `pass.data`.
pub fn run(pass: &Pass) -> io::Result<Report> {
    let lock_path = crate::layout::sink_dir(&pass.data).join("archive-maintain.lock");
    let _lock = match try_lock(&lock_path).map_err(with_path(&lock_path))? {
        LockAttempt::Taken(lock) => lock,
        LockAttempt::Held(_) => return Ok(Report { skipped: true, ..Report::default() }),
    };
    let staging = staging(&pass.data);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(with_path(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(with_path(&staging))?;
    let mut report = Report::default();
    for hour in hours(&pass.data)? {
        if pass.stop.load(Ordering::Relaxed) {
            return Ok(report);
        }
        let closed = hour.start + HOUR + CLOSED_AFTER <= pass.now;
        let merged = compact_hour(pass, &hour, &staging, closed)?;
        if merged > 0 {
            report.compacted_hours += 1;
            report.merged_files += merged;
        }
    }
    report.dropped_hours = apply_retention(pass, &staging)?;
    report.summarised_hours = super::summary::refresh(&pass.data, pass.now, CLOSED_AFTER, &pass.stop)?;
    report.archive_bytes = hours(&pass.data)?.iter().map(|h| dir_bytes(&h.dir)).sum::<io::Result<u64>>()?;
    Ok(report)
}

/// The hour partitions of `data`'s archive, oldest first.
pub fn hours(data: &Path) -> io::Result<Vec<Hour>> {
    let root = data.join(DIR);
    let hours = super::read::hour_dirs(&root).map_err(with_path(&root))?;
    Ok(hours.into_iter().map(|(start, dir)| Hour { start, dir }).collect())
}

/// The names in `dir` (none when it does not exist), sorted.
fn names(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(with_path(dir)(error)),
    };
    let mut names = Vec::new();
    for entry in entries {
        if let Some(name) = entry.map_err(with_path(dir))?.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// The bytes of the files in `dir`.
fn dir_bytes(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for name in names(dir)? {
        match std::fs::metadata(dir.join(&name)) {
            Ok(meta) => total += meta.len(),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(with_path(&dir.join(name))(error)),
        }
    }
    Ok(total)
}

/// Checkpointed batch files an open hour gathers before they are merged
/// into a generation (one level of merge: every run read at once).
const OPEN_HOUR_FILES: usize = merge::FAN_IN;

/// The generation of an open hour's merged file `name` of `topic`
/// (`g-TOPIC-GENERATION-RANGE.parquet`), if it is one.
fn generation_of<'a>(name: &'a str, topic: &str) -> Option<&'a str> {
    let rest = name.strip_prefix("g-")?.strip_prefix(topic)?.strip_prefix('-')?.strip_suffix(".parquet")?;
    Some(rest.rsplit_once('-')?.0)
}

/// Merges what `pass` may merge in `hour`; returns how many files were
/// merged (0: none, or the folder changed under it).
/// - An open hour: once it holds [`OPEN_HOUR_FILES`] checkpointed batch
///   files or more, they become a generation of range files (`g-…`), so a
///   reader of one portfolio opens one file per generation, not one per
///   batch.
/// - A closed hour: its checkpointed batch files and its generations
///   become its range files (`c-…`).
fn compact_hour(pass: &Pass, hour: &Hour, staging: &Path, closed: bool) -> io::Result<u64> {
    let listing = names(&hour.dir)?;
    let batches: Vec<&String> = listing
        .iter()
        .filter(|name| {
            batch_of(name, &pass.topic).is_some_and(|(partition, batch)| {
                pass.checkpointed.get(&partition).is_some_and(|&checkpointed| batch <= checkpointed)
            })
        })
        .collect();
    let mut generations: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    if closed {
        for name in &listing {
            if let Some(generation) = generation_of(name, &pass.topic) {
                generations.entry(generation).or_default().push(name);
            }
        }
    }
    let enough = if closed { batches.len() + generations.len() >= 2 } else { batches.len() >= OPEN_HOUR_FILES };
    if !enough {
        return Ok(0);
    }
    let mut runs: Vec<Run> = batches.iter().map(|name| vec![hour.dir.join(name)]).collect();
    // A generation's files, by name, are in range order.
    runs.extend(generations.values().map(|files| files.iter().map(|name| hour.dir.join(name)).collect()));
    let candidates: Vec<&String> = batches.iter().copied().chain(generations.values().flatten().copied()).collect();
    let started = std::time::Instant::now();
    let work = staging.join(format!("hour-{}", unique()));
    let new = work.join("new");
    std::fs::create_dir_all(&new).map_err(with_path(&new))?;
    let prefix = format!("{}-{}-{}", if closed { "c" } else { "g" }, pass.topic, unique());
    // A closed hour's files are final: cut by window for readers of part of
    // the hour. A generation is read in order by the hour's last merge.
    let layout = if closed { Layout::Windows } else { Layout::Runs };
    let target = Target {
        dir: &new,
        prefix: &prefix,
        scratch: &work.join("scratch"),
        max_rows: MERGE_ROWS,
        stop: &pass.stop,
        layout,
    };
    let Some(written) = merge::merge(runs, &target)? else {
        return Ok(0);
    };
    let _lock = ArchiveLock::exclusive(&pass.data)?;
    let now: BTreeSet<String> = names(&hour.dir)?.into_iter().collect();
    if !candidates.iter().all(|name| now.contains(*name)) {
        tracing::info!(hour = %hour.dir.display(), "archive compaction: the hour changed meanwhile; left for the next pass");
        return Ok(0);
    }
    let merged: BTreeSet<&String> = candidates.iter().copied().collect();
    for name in now.iter().filter(|name| !merged.contains(name)) {
        std::fs::hard_link(hour.dir.join(name), new.join(name)).map_err(with_path(&hour.dir.join(name)))?;
    }
    File::open(&new)?.sync_all().map_err(with_path(&new))?;
    rustix::fs::renameat_with(rustix::fs::CWD, &new, rustix::fs::CWD, &hour.dir, rustix::fs::RenameFlags::EXCHANGE)
        .map_err(|e| with_path(&hour.dir)(e.into()))?;
    crate::fsutil::sync_dir(hour.dir.parent().expect("in a date folder")).map_err(with_path(&hour.dir))?;
    crate::fsutil::sync_dir(&work).map_err(with_path(&work))?;
    tracing::info!(
        hour = %hour.dir.display(),
        "archive: merged {} batch files and {} generations into {} files by portfolio range in {:.1} s",
        batches.len(),
        generations.len(),
        written.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(candidates.len() as u64)
}

/// Drops the hours `pass.retention` no longer keeps; returns how many.
fn apply_retention(pass: &Pass, staging: &Path) -> io::Result<u64> {
    let Retention { max_age, max_bytes } = pass.retention;
    if max_age.is_none() && max_bytes.is_none() {
        return Ok(0);
    }
    let mut hours = hours(&pass.data)?;
    let mut dropped = 0;
    if let Some(max_age) = max_age {
        let oldest_kept_end = pass.now - max_age.as_secs() as i64;
        while hours.first().is_some_and(|hour| hour.start + HOUR <= oldest_kept_end) {
            drop_hour(&pass.data, &hours.remove(0), staging, "older than archive.retention")?;
            dropped += 1;
        }
    }
    if let Some(max_bytes) = max_bytes {
        let mut sizes: Vec<u64> = hours.iter().map(|hour| dir_bytes(&hour.dir)).collect::<io::Result<_>>()?;
        let mut total: u64 = sizes.iter().sum();
        while total > max_bytes && hours.len() > 2 {
            drop_hour(&pass.data, &hours.remove(0), staging, "archive.max-bytes reached")?;
            total -= sizes.remove(0);
            dropped += 1;
        }
    }
    Ok(dropped)
}

/// Removes `hour` whole: moved out of the archive in one rename (under the
/// exclusive lock), then deleted; its date folder goes with its last hour.
fn drop_hour(data: &Path, hour: &Hour, staging: &Path, why: &str) -> io::Result<()> {
    let trash = staging.join(format!("dropped-{}", unique()));
    {
        let _lock = ArchiveLock::exclusive(data)?;
        std::fs::rename(&hour.dir, &trash).map_err(with_path(&hour.dir))?;
        let date = hour.dir.parent().expect("in a date folder");
        if names(date)?.is_empty() {
            std::fs::remove_dir(date).map_err(with_path(date))?;
        }
    }
    std::fs::remove_dir_all(&trash).map_err(with_path(&trash))?;
    tracing::info!(hour = %hour.dir.display(), "archive: dropped an hour ({why})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::RecordBatch;

    use crate::archive::encode;
    use crate::archive::read::{files, scan};
    use crate::archive::{ArchiveRow, batch_file, hour_dir};
    use crate::market::{InvestorId, PortfolioId};
    use crate::query::batch::{BatchConsumer, Interval};

    const TOPIC: &str = "Portfolios";

    /// Counts rows and keeps (PORTFOLIO, TIMESTAMP, NAV bits).
    #[derive(Default)]
    struct Collect(Vec<(String, i64, u64)>);

    impl BatchConsumer for Collect {
        fn take(&mut self, batch: &RecordBatch) {
            use arrow::array::{Array, Float64Array, StringArray, TimestampSecondArray};
            let p = batch.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            let t = batch.column(1).as_any().downcast_ref::<TimestampSecondArray>().unwrap();
            let n = batch.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
            self.0.extend((0..batch.num_rows()).map(|i| (p.value(i).to_string(), t.value(i), n.value(i).to_bits())));
        }
    }

    /// Every row, sorted. A file listed but gone when read (a swap came
    /// between) means reading again, as the contract says.
    fn read_all(data: &Path) -> Vec<(String, i64, u64)> {
        'read: loop {
            let mut rows = Collect::default();
            for path in files(data, Interval::default()).unwrap() {
                match scan(&path, None, Interval::default(), &mut rows) {
                    Ok(()) => {}
                    Err(error) if error.kind() == io::ErrorKind::NotFound => continue 'read,
                    Err(error) => panic!("{}: {error}", path.display()),
                }
            }
            rows.0.sort();
            return rows.0;
        }
    }

    /// Writes batch `batch` of partition 0 into `hour`: `rows` rows over 37
    /// portfolios, 20 s apart from `first`.
    fn write_batch(data: &Path, hour: i64, batch: u64, first: usize, rows: usize) {
        let mut rows: Vec<ArchiveRow> = (first..first + rows)
            .map(|i| ArchiveRow {
                portfolio: PortfolioId::new(InvestorId::new(i as u32 % 37 / 10 + 1).unwrap(), i as u32 % 10 + 1)
                    .unwrap(),
                timestamp: hour + (i as i64 % 180) * 20,
                nav: 1000.0 + i as f64,
                nav_change: i as f64 / 3.0,
                nav_change_pct: 0.01,
            })
            .collect();
        let path = data.join(batch_file(TOPIC, 0, batch, 7, hour));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, encode::rows_to_parquet(&mut rows, encode::Layout::Batch)).unwrap();
    }

    fn pass(data: &Path, checkpointed: u64, retention: Retention, now: i64) -> Pass {
        Pass {
            data: data.to_path_buf(),
            topic: TOPIC.into(),
            checkpointed: BTreeMap::from([(0, checkpointed)]),
            retention,
            now,
            stop: Arc::default(),
        }
    }

    #[test]
    fn compaction_merges_checkpointed_batches_while_a_reader_sees_every_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let hour = 1_764_579_600; // 2025-12-01 09:00 UTC
        for batch in 1..=30 {
            write_batch(data, hour, batch, batch as usize * 1000, 1000);
        }
        let expected = read_all(data);
        assert_eq!(expected.len(), 30_000);
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (data, done, expected) = (data.to_path_buf(), Arc::clone(&done), expected.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) || reads < 3 {
                    assert_eq!(read_all(&data), expected, "a reader saw a row twice or missed one");
                    reads += 1;
                }
                reads
            })
        };
        // Batches 26..=30 are not checkpointed: a crash could still roll them back.
        let report = run(&pass(data, 25, Retention::default(), hour + 2 * HOUR)).unwrap();
        done.store(true, Ordering::Relaxed);
        let reads = reader.join().unwrap();
        assert!(reads >= 3);
        assert_eq!((report.compacted_hours, report.merged_files, report.dropped_hours), (1, 25, 0));
        let names = names(&data.join(hour_dir(hour))).unwrap();
        let merged: Vec<&String> = names.iter().filter(|n| n.starts_with("c-")).collect();
        assert_eq!(merged.len(), 1, "{names:?}");
        assert_eq!(names.iter().filter(|n| n.starts_with("b-")).count(), 5, "{names:?}");
        assert_eq!(read_all(data), expected);
        let mut merged_rows = Collect::default();
        scan(&data.join(hour_dir(hour)).join(merged[0]), None, Interval::default(), &mut merged_rows).unwrap();
        assert_eq!(merged_rows.0.len(), 25_000);
        let key = |row: &(String, i64, u64)| (crate::archive::window_of(row.1), row.0.clone(), row.1);
        assert!(merged_rows.0.windows(2).all(|w| key(&w[0]) <= key(&w[1])), "by window, then PORTFOLIO and TIMESTAMP");
        // An open hour is left alone; a second pass finds nothing more to merge.
        write_batch(data, hour + HOUR, 31, 0, 10);
        write_batch(data, hour + HOUR, 32, 10, 10);
        let again = run(&pass(data, 32, Retention::default(), hour + 2 * HOUR)).unwrap();
        assert_eq!((again.compacted_hours, again.merged_files), (1, 5), "only the closed hour's 5 new files");
        assert_eq!(read_all(data).len(), 30_020);
    }

    #[test]
    fn an_open_hour_merges_its_batches_into_generations_and_its_close_merges_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let hour = 1_764_579_600; // 2025-12-01 09:00 UTC
        let in_hour = |prefix: &str| {
            names(&data.join(hour_dir(hour))).unwrap().into_iter().filter(|n| n.starts_with(prefix)).count()
        };
        // Writes batches `batches` and runs a pass at minute 30 (the hour
        // open), every batch checkpointed.
        let open = |batches: std::ops::RangeInclusive<u64>| {
            let last = *batches.end();
            for batch in batches {
                write_batch(data, hour, batch, batch as usize * 100, 100);
            }
            run(&pass(data, last, Retention::default(), hour + HOUR / 2)).unwrap()
        };
        // Fewer than OPEN_HOUR_FILES checkpointed batches: left alone.
        assert_eq!(open(1..=OPEN_HOUR_FILES as u64 - 1).merged_files, 0);
        assert_eq!(in_hour("b-"), OPEN_HOUR_FILES - 1);
        // 70: all of them become a generation.
        assert_eq!(open(OPEN_HOUR_FILES as u64..=70).merged_files, 70);
        assert_eq!((in_hour("g-"), in_hour("b-"), in_hour("c-")), (1, 0, 0));
        let expected = read_all(data);
        assert_eq!(expected.len(), 7000);
        // 6 more: fewer than OPEN_HOUR_FILES new ones, nothing merged.
        assert_eq!(open(71..=76).merged_files, 0);
        assert_eq!((in_hour("g-"), in_hour("b-")), (1, 6));
        let expected = read_all(data);
        // Closed: the generation and the 6 batches become the hour's files.
        let closed = run(&pass(data, 76, Retention::default(), hour + 2 * HOUR)).unwrap();
        assert_eq!(closed.merged_files, 1 + 6);
        assert_eq!((in_hour("g-"), in_hour("b-"), in_hour("c-")), (0, 0, 1));
        assert_eq!(read_all(data), expected, "every row once");
    }

    #[test]
    fn retention_drops_whole_hours_only_once_they_are_old_enough_or_too_many_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let now = 1_764_579_600 + 10 * HOUR;
        for (batch, hours_ago) in [(1, 10), (2, 6), (3, 3), (4, 2), (5, 1)] {
            write_batch(data, hour_of_now(now, hours_ago), batch, 0, 500);
        }
        let keep_4h = Retention { max_age: Some(Duration::from_secs(4 * 3600)), max_bytes: None };
        let report = run(&pass(data, 0, keep_4h, now)).unwrap();
        assert_eq!(report.dropped_hours, 2, "the hours that ended more than 4 h ago");
        let left: Vec<i64> = hours(data).unwrap().iter().map(|h| (now - h.start) / HOUR).collect();
        assert_eq!(left, [3, 2, 1]);
        assert_eq!(read_all(data).len(), 1500);
        // The hour that ended exactly 3 h ago is kept by a 3 h retention.
        let keep_3h = Retention { max_age: Some(Duration::from_secs(3 * 3600)), max_bytes: None };
        assert_eq!(run(&pass(data, 0, keep_3h, now)).unwrap().dropped_hours, 0);
        let tiny = Retention { max_age: None, max_bytes: Some(1) };
        let report = run(&pass(data, 0, tiny, now)).unwrap();
        assert_eq!(report.dropped_hours, 1, "the newest two hours are always kept");
        assert_eq!(read_all(data).len(), 1000);
        assert!(report.archive_bytes > 0);
    }

    fn hour_of_now(now: i64, hours_ago: i64) -> i64 {
        now - hours_ago * HOUR
    }
}
