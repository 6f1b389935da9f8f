//! What the sink does between batches to keep the data folder bounded: the
//! archive's compaction and retention (a background pass, see
//! [`crate::archive::maintain`]), the CSV window (portfolio files cut back
//! to their header when a window starts, their rows being in the archive),
//! and the disk accounting: bytes per tier, free space, and a warning when
//! the file system would fill within a day at the current rate.

use std::fs::{File, TryLockError};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{Sink, SinkError};
use crate::archive::Coverage;
use crate::archive::import::sink_lock_path;
use crate::archive::maintain::{self, Pass, Report};
use crate::bus::Consumer;
use crate::layout::sink_partition_dir;
use crate::layout::{HEADER, file_name};

/// How often an archive pass starts.
const PASS_PERIOD: Duration = Duration::from_secs(60);

/// How often the CSV files are measured (a stat of every portfolio file).
const CSV_MEASURE_PERIOD: Duration = Duration::from_secs(3600);

/// The free space is compared with the last measurement this long ago to
/// estimate when the file system fills (the first estimate after start-up
/// comes after [`FIRST_ESTIMATE`]).
const ESTIMATE_PERIOD: Duration = Duration::from_secs(3600);
const FIRST_ESTIMATE: Duration = Duration::from_secs(600);

/// A warning is logged when the file system would fill within this.
const FILL_WARNING: Duration = Duration::from_secs(24 * 3600);

/// The CSV window's marker in a partition's folder: the index of the last
/// window the partition's files were cut for.
const WINDOW_MARKER: &str = "csv-window";

/// What a background pass returns: its report, and the CSV files' bytes
/// when it measured them.
type PassResult = io::Result<(Report, Option<u64>)>;

/// The state of the upkeep.
#[derive(Default)]
pub(super) struct Upkeep {
    /// The archive pass running, if any.
    pass: Option<tokio::task::JoinHandle<PassResult>>,
    /// Tells the running pass to stop early.
    stop_pass: std::sync::Arc<std::sync::atomic::AtomicBool>,
    started: Option<Instant>,
    csv_measured: Option<Instant>,
    /// Free bytes at the last estimate, and when.
    free_before: Option<(Instant, u64)>,
    /// A fill estimate has been made (the next comes an hour later).
    estimated: bool,
    /// The CSV window the partitions held were last checked for (`None`:
    /// not yet, or a partition was taken since).
    pub(super) window: Option<i64>,
    /// The archive holds every CSV row (the CSV window may cut).
    pub(super) covering: bool,
}

impl Upkeep {
    /// The upkeep of a sink whose archive holds every CSV row when
    /// `covering`.
    pub(super) fn new(covering: bool) -> Self {
        Upkeep { covering, ..Upkeep::default() }
    }
}

/// Takes the lock that keeps `stockd archive` from rebuilding the archive
/// while this sink runs (shared: sinks share the folder).
pub(super) fn fence_imports(data: &Path) -> io::Result<File> {
    let path = sink_lock_path(data);
    std::fs::create_dir_all(path.parent().expect("in .sink"))?;
    let file = File::options().read(true).write(true).create(true).truncate(false).open(&path)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "`stockd archive` is rebuilding the archive of {} ({}): start the sink once it has finished",
                data.display(),
                path.display()
            ),
        )),
        Err(TryLockError::Error(error)) => Err(error),
    }
}

/// Records, the first time, whether the archive holds every CSV row (yes
/// when the sink starts it on a folder whose portfolio files hold no row),
/// and stops
/// saying so when the archive is turned off. Returns whether it does.
pub(super) fn record_coverage(data: &Path, archive: bool) -> io::Result<bool> {
    let coverage = Coverage::read(data);
    if !archive {
        if coverage.covers_csvs {
            Coverage::write(data, false)?;
            tracing::warn!("archive.enabled = false: the archive no longer holds every row; readers use the CSV files");
        }
        return Ok(false);
    }
    if Coverage::recorded(data) {
        if !coverage.covers_csvs {
            warn_not_covering(data);
        }
        return Ok(coverage.covers_csvs);
    }
    // No portfolio file holds a row yet (files with only their header, as
    // a benchmark creates them, hold none).
    let covers = crate::layout::portfolio_files(data)?
        .iter()
        .all(|(_, path)| std::fs::metadata(path).is_ok_and(|meta| meta.len() <= HEADER.len() as u64));
    Coverage::write(data, covers)?;
    if !covers {
        warn_not_covering(data);
    }
    Ok(covers)
}

fn warn_not_covering(data: &Path) {
    tracing::warn!(
        "the archive of {0} holds the rows written since it was started, not the older ones of the CSV files: \
         queries read the CSV files and no CSV window is applied until `stockd archive --data {0}` (with the sink \
         stopped) builds the archive from them",
        data.display()
    );
}

impl<C: Consumer> Sink<C> {
    /// Whether something between batches is due: an archive pass finished
    /// or to start, a new CSV window, an identities log to rewrite. A sink
    /// that is behind (every poll brings messages) settles the batch before
    /// and does it then; without that it would never compact, drop or cut
    /// anything while behind, and the disk would fill.
    pub(super) fn upkeep_due(&self) -> bool {
        let pass = self.upkeep.pass.as_ref().map_or_else(|| self.pass_due(), |pass| pass.is_finished());
        pass || self.window_due().is_some()
            || self.partitions.values().any(|partition| partition.identities.wants_compaction())
    }

    /// Whether the next archive pass is due: the archive is on, no pass
    /// runs, and the last started [`PASS_PERIOD`] ago or more.
    fn pass_due(&self) -> bool {
        self.settings.archive
            && self.upkeep.pass.is_none()
            && self.upkeep.started.is_none_or(|at| at.elapsed() >= PASS_PERIOD)
    }

    /// The index of the CSV window the partitions held have not been
    /// checked for yet, if there is a window and the archive holds every
    /// CSV row (until then nothing is cut).
    fn window_due(&self) -> Option<i64> {
        let window = self.settings.csv_window.filter(|_| self.upkeep.covering)?;
        let index = window_index(window);
        (self.upkeep.window != Some(index)).then_some(index)
    }

    /// Between batches (nothing being synced): collects a finished archive
    /// pass, starts the next when due, and cuts the CSV files when a new
    /// window has started.
    pub(super) fn upkeep(&mut self) -> Result<(), SinkError> {
        if self.syncing.is_some() {
            return Ok(());
        }
        self.collect_pass();
        if self.pass_due() {
            self.start_pass();
        }
        self.cut_csv_window()
    }

    /// Stops the archive pass, if one runs, between two of its merges, and
    /// waits for it (the sink is stopping).
    pub(super) async fn stop_upkeep(&mut self) {
        self.upkeep.stop_pass.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(pass) = self.upkeep.pass.take()
            && let Ok(Err(error)) = pass.await
        {
            tracing::warn!("archive upkeep: {error}");
        }
    }

    fn start_pass(&mut self) {
        let pass = Pass {
            data: self.settings.data.clone(),
            topic: self.settings.topic.clone(),
            checkpointed: self.partitions.iter().map(|(number, p)| (*number, p.checkpoint.batch)).collect(),
            retention: self.settings.retention,
            now: chrono::Utc::now().timestamp(),
            stop: std::sync::Arc::clone(&self.upkeep.stop_pass),
        };
        let measure_csv = self.upkeep.csv_measured.is_none_or(|at| at.elapsed() >= CSV_MEASURE_PERIOD);
        if measure_csv {
            self.upkeep.csv_measured = Some(Instant::now());
        }
        self.upkeep.started = Some(Instant::now());
        self.upkeep.pass = Some(tokio::task::spawn_blocking(move || {
            let report = maintain::run(&pass)?;
            let csv = if measure_csv { Some(csv_bytes(&pass.data)?) } else { None };
            Ok((report, csv))
        }));
    }

    /// Takes the result of a finished pass: metrics, the log, the fill
    /// estimate. A failed pass is logged and tried again at the next.
    fn collect_pass(&mut self) {
        if !self.upkeep.pass.as_ref().is_some_and(|pass| pass.is_finished()) {
            return;
        }
        let pass = self.upkeep.pass.take().expect("finished");
        let result = futures_util::FutureExt::now_or_never(pass).expect("finished").expect("a pass cannot panic");
        match result {
            Ok((report, csv)) => {
                if !report.skipped {
                    self.metrics.archive_upkeep(report.merged_files, report.dropped_hours);
                    self.metrics.data_bytes("archive", report.archive_bytes);
                    if report.compacted_hours > 0 || report.dropped_hours > 0 {
                        tracing::info!(
                            compacted_hours = report.compacted_hours,
                            merged_files = report.merged_files,
                            dropped_hours = report.dropped_hours,
                            archive_bytes = report.archive_bytes,
                            "archive upkeep"
                        );
                    }
                }
                if let Some(csv) = csv {
                    self.metrics.data_bytes("csv", csv);
                }
            }
            Err(error) => tracing::warn!("archive upkeep failed (tried again in {PASS_PERIOD:?}): {error}"),
        }
        self.estimate_fill();
    }

    /// Measures the free space and warns when, at the rate it fell since
    /// the last estimate, it runs out within [`FILL_WARNING`].
    fn estimate_fill(&mut self) {
        let Ok(stat) = rustix::fs::statvfs(&self.settings.data) else { return };
        let free = stat.f_bavail * stat.f_frsize;
        self.metrics.filesystem_free_bytes(free);
        let Some((then, free_then)) = self.upkeep.free_before else {
            self.upkeep.free_before = Some((Instant::now(), free));
            tracing::info!(data = %self.settings.data.display(), "{} free on the data folder's file system", crate::format::bytes(free));
            return;
        };
        let elapsed = then.elapsed();
        let due = if self.upkeep.estimated { ESTIMATE_PERIOD } else { FIRST_ESTIMATE };
        if elapsed < due {
            return;
        }
        self.upkeep.estimated = true;
        self.upkeep.free_before = Some((Instant::now(), free));
        if free_then <= free {
            return;
        }
        let per_second = (free_then - free) as f64 / elapsed.as_secs_f64();
        let left = Duration::from_secs_f64(free as f64 / per_second);
        if left < FILL_WARNING {
            tracing::warn!(
                data = %self.settings.data.display(),
                "the data folder's file system fills in about {} at the current rate ({}/h, {} free): {}",
                crate::config::duration::format(Duration::from_secs(left.as_secs())),
                crate::format::bytes((per_second * 3600.0) as u64),
                crate::format::bytes(free),
                fill_advice(
                    self.settings.archive,
                    self.settings.csv_files,
                    self.settings.csv_window,
                    self.settings.retention
                )
            );
        }
    }

    /// When a new CSV window has started, cuts every portfolio file of the
    /// partitions held back to its header (their rows are in the archive).
    fn cut_csv_window(&mut self) -> Result<(), SinkError> {
        // Each partition's marker is read once per window, not at every
        // upkeep.
        let Some(index) = self.window_due() else { return Ok(()) };
        let data = self.settings.data.clone();
        let mut cut = 0;
        for (number, partition) in &self.partitions {
            let marker = sink_partition_dir(&data, &self.settings.topic, *number).join(WINDOW_MARKER);
            let last: Option<i64> = std::fs::read_to_string(&marker).ok().and_then(|text| text.trim().parse().ok());
            if last.is_some_and(|last| last >= index) {
                continue;
            }
            if last.is_some() {
                let names: Vec<String> = partition.identities.portfolios().map(file_name).collect();
                cut += self
                    .files
                    .cut_all(&names, HEADER.len() as u64)
                    .map_err(|cause| SinkError::Write { data: data.clone(), cause })?;
            }
            crate::fsutil::write_atomically(&marker, index.to_string().as_bytes())
                .map_err(|cause| SinkError::Write { data: data.clone(), cause })?;
        }
        self.upkeep.window = Some(index);
        if cut > 0 {
            self.metrics.csv_files_cut(cut);
            tracing::info!(
                files = cut,
                "a new CSV window started: cut {cut} portfolio files back to their header (their rows are in the archive)"
            );
        }
        Ok(())
    }
}

/// What a user can do about a disk that fills, given the settings in
/// force: set what bounds each tier, or tighten what already does.
fn fill_advice(
    archive: bool,
    csv_files: bool,
    csv_window: Option<Duration>,
    retention: crate::archive::maintain::Retention,
) -> String {
    let format = crate::config::duration::format;
    let mut steps = Vec::new();
    match (csv_files, csv_window) {
        (false, _) => {}
        (true, Some(window)) => steps.push(format!("shorten sink.csv-window ({})", format(window))),
        (true, None) if archive => steps.push("set sink.csv-window".to_string()),
        (true, None) => steps.push("turn the archive on and set sink.csv-window".to_string()),
    }
    if archive {
        match (retention.max_age, retention.max_bytes) {
            (None, None) => steps.push("set archive.retention or archive.max-bytes".to_string()),
            (age, bytes) => {
                steps.extend(age.map(|age| format!("shorten archive.retention ({})", format(age))));
                steps.extend(bytes.map(|bytes| format!("lower archive.max-bytes ({})", crate::format::bytes(bytes))));
            }
        }
    }
    steps.push("free space".to_string());
    steps.join(", or ")
}

/// The index of the CSV window of length `window` now (windows are aligned
/// to the epoch).
fn window_index(window: Duration) -> i64 {
    chrono::Utc::now().timestamp() / window.as_secs().max(1) as i64
}

/// The bytes of the portfolio files of `data`.
fn csv_bytes(data: &Path) -> io::Result<u64> {
    let mut total = 0;
    for (_, path) in crate::layout::portfolio_files(data)? {
        if let Ok(meta) = std::fs::metadata(&path) {
            total += meta.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::maintain::Retention;

    #[test]
    fn the_fill_warning_advises_what_the_settings_leave_open() {
        let none = Retention::default();
        assert_eq!(
            fill_advice(true, true, None, none),
            "set sink.csv-window, or set archive.retention or archive.max-bytes, or free space"
        );
        assert_eq!(fill_advice(false, true, None, none), "turn the archive on and set sink.csv-window, or free space");
        let bounded = Retention { max_age: Some(Duration::from_secs(7200)), max_bytes: None };
        assert_eq!(
            fill_advice(true, true, Some(Duration::from_secs(1800)), bounded),
            "shorten sink.csv-window (30m), or shorten archive.retention (2h), or free space"
        );
        let both = Retention { max_age: None, max_bytes: Some(5_000_000_000) };
        let advice = fill_advice(true, false, None, both);
        assert!(advice.starts_with("lower archive.max-bytes (") && advice.ends_with("), or free space"), "{advice}");
    }
}
