//! The sink's side of the archive (see [`crate::archive`] for its
//! contract): per batch, partition and hour, one Parquet file of the rows
//! the batch writes, named in the batch's intent before it is written, and
//! made whole under a temporary name in the partition's folder (which only
//! the partition's holder writes) before it is renamed into its hour
//! partition.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use crate::archive::{ArchiveLock, ArchiveRow, DIR, batch_file, encode, hour_of};
use crate::config::SyncMode;
use crate::fsutil::with_path;
use crate::layout::sink_partition_dir;

/// Prefix of the temporary files in a partition's folder.
const TMP_PREFIX: &str = "archive-tmp-";

/// One archive file a batch writes.
#[derive(Debug, Clone)]
pub struct ArchiveFile {
    /// Relative to the data folder.
    pub name: String,
    /// The partition of the topic whose rows it holds.
    pub partition: i32,
    /// The hour partition (seconds).
    pub hour: i64,
}

/// Whether `name` (relative to the data folder) is an archive file.
pub fn is_archive_file(name: &str) -> bool {
    name.starts_with(DIR) && name.ends_with(".parquet")
}

/// The archive files batch `batch` of `partition` of `topic` writes for
/// `rows`: one per hour they fall in.
pub fn plan(topic: &str, partition: i32, batch: u64, rows: &[ArchiveRow]) -> Vec<ArchiveFile> {
    let unique = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let hours: std::collections::BTreeSet<i64> = rows.iter().map(|row| hour_of(row.timestamp)).collect();
    hours
        .into_iter()
        .map(|hour| ArchiveFile { name: batch_file(topic, partition, batch, unique, hour), partition, hour })
        .collect()
}

/// Writes `files`, each with the rows of its partition (in `rows`) that
/// fall in its hour: encoded on all cores, written under a temporary name
/// in the partition's folder (synced in `file` mode), then renamed into
/// place under the archive's shared lock.
pub fn write(
    data: &Path,
    topic: &str,
    files: &[ArchiveFile],
    rows: &BTreeMap<i32, Vec<ArchiveRow>>,
    sync: SyncMode,
) -> io::Result<()> {
    let written: Vec<(PathBuf, &ArchiveFile)> = files
        .par_iter()
        .map(|file| {
            let mut hour_rows: Vec<ArchiveRow> =
                rows[&file.partition].iter().filter(|row| hour_of(row.timestamp) == file.hour).copied().collect();
            let bytes = encode::rows_to_parquet(&mut hour_rows, encode::Layout::Batch);
            let base = file.name.rsplit('/').next().expect("a file name");
            let tmp = sink_partition_dir(data, topic, file.partition).join(format!("{TMP_PREFIX}{}-{base}", file.hour));
            let mut out = std::fs::File::create(&tmp).map_err(with_path(&tmp))?;
            out.write_all(&bytes).map_err(with_path(&tmp))?;
            if sync == SyncMode::File {
                out.sync_data().map_err(with_path(&tmp))?;
            }
            Ok((tmp, file))
        })
        .collect::<io::Result<_>>()?;
    let _lock = ArchiveLock::shared(data)?;
    for (tmp, file) in written {
        let target = data.join(&file.name);
        let dir = target.parent().expect("in an hour folder");
        if !dir.is_dir() {
            std::fs::create_dir_all(dir).map_err(with_path(dir))?;
            if sync == SyncMode::File {
                for created in [dir, dir.parent().expect("in a date folder")] {
                    crate::fsutil::sync_dir(created.parent().expect("in the archive")).map_err(with_path(created))?;
                }
            }
        }
        std::fs::rename(&tmp, &target).map_err(with_path(&target))?;
        if sync == SyncMode::File {
            crate::fsutil::sync_dir(dir).map_err(with_path(dir))?;
        }
    }
    Ok(())
}

/// Removes archive file `name` of an interrupted batch (under the shared
/// lock, so that no compaction swaps its folder meanwhile); returns its
/// length, or 0 if it was not there.
pub fn roll_back(data: &Path, name: &str) -> io::Result<u64> {
    let _lock = ArchiveLock::shared(data)?;
    let path = data.join(name);
    match std::fs::metadata(&path) {
        Ok(meta) => {
            std::fs::remove_file(&path).map_err(with_path(&path))?;
            Ok(meta.len())
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(with_path(&path)(error)),
    }
}

/// Removes the temporary files an interrupted holder of the partition in
/// `dir` left.
pub fn clear_tmp(dir: &Path) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(|name| name.starts_with(TMP_PREFIX)) {
            std::fs::remove_file(entry.path()).map_err(with_path(&entry.path()))?;
        }
    }
    Ok(())
}
