//! What the sink does with a batch a crash interrupted (an intent and no
//! checkpoint), and with the single journal of earlier versions.

use std::sync::Arc;

use crate::bus::Positions;
use crate::config::SyncMode;

use super::files::DataFiles;
use super::journal::{Checkpoint, Intent, Journal};
use super::{SinkError, SinkSettings, archive, identities};
use crate::layout::sink_partition_dir;

/// Says whether a `Bus` identity recorded in a journal names the sink's bus.
pub(super) type IdentityCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Moves the single journal earlier versions kept in `DATA/.sink/` into the
/// partitions' folders: interrupted batches are rolled back, and the
/// checkpoint's offsets become each partition's checkpoint.
pub(super) fn move_legacy_journal(
    settings: &SinkSettings,
    files: &mut DataFiles,
    is_bus: &IdentityCheck,
) -> Result<(), SinkError> {
    let durable = settings.sync != SyncMode::None;
    let legacy = Journal::legacy(&settings.data, durable);
    if !legacy.exists() {
        return Ok(());
    }
    // Two sinks starting together on one folder: one moves it, the other
    // then finds it gone.
    let write_error = |cause| SinkError::Write { data: settings.data.clone(), cause };
    let lock_path = crate::layout::sink_dir(&settings.data).join("journal-migration.lock");
    let lock =
        std::fs::File::options().write(true).create(true).truncate(false).open(&lock_path).map_err(write_error)?;
    lock.lock().map_err(write_error)?;
    if !legacy.exists() {
        return Ok(());
    }
    let checkpoint = roll_back_interrupted(&legacy, files, is_bus, &settings.data)?;
    for (topic, number, next) in checkpoint.positions.iter() {
        let journal = Journal::at(&sink_partition_dir(&settings.data, topic, number), durable);
        if journal.exists() {
            continue;
        }
        let mut positions = Positions::new();
        positions.set(topic, number, next);
        journal.write_checkpoint(&Checkpoint { bus: checkpoint.bus.clone(), batch: 0, positions })?;
    }
    legacy.remove()?;
    tracing::info!(data = %settings.data.display(), "moved the sink's checkpoint into one per partition");
    Ok(())
}

/// Reads `journal`'s checkpoint after rolling back, newest first, the
/// batches it has an intent for but no checkpoint (see [`recover`]), in
/// the data folder `data`.
pub(super) fn roll_back_interrupted(
    journal: &Journal,
    files: &mut DataFiles,
    is_bus: &IdentityCheck,
    data: &std::path::Path,
) -> Result<Checkpoint, SinkError> {
    let checkpoint = journal.checkpoint()?;
    let mut interrupted: Vec<Intent> =
        journal.intents()?.into_iter().filter(|intent| intent.batch > checkpoint.batch).collect();
    interrupted.sort_by_key(|intent| std::cmp::Reverse(intent.batch));
    for intent in &interrupted {
        recover(files, intent, is_bus(&intent.bus), data)
            .map_err(|cause| SinkError::Write { data: data.to_path_buf(), cause })?;
    }
    Ok(checkpoint)
}

/// Undoes an interrupted batch, each file by its kind. When its messages
/// will be read again (same bus), its files go back to their lengths
/// before it and its archive files are removed. When they cannot be (a
/// restarted memory bus lost them), the batch is kept if it got as far as
/// its archive files (every one is there: its rows and identities are
/// complete), with identity logs cut to whole records and torn last lines
/// trimmed; a batch that did not get that far is rolled back as above, so
/// that the archive and the CSV files keep the same rows.
fn recover(files: &mut DataFiles, intent: &Intent, replayable: bool, data: &std::path::Path) -> std::io::Result<()> {
    let archived =
        intent.files.keys().filter(|name| archive::is_archive_file(name)).all(|name| data.join(name).exists());
    let keep = !replayable && archived;
    for (name, length) in &intent.files {
        if !keep {
            let removed = if archive::is_archive_file(name) {
                archive::roll_back(data, name)?
            } else {
                files.truncate(name, *length)?
            };
            if removed > 0 {
                tracing::warn!(
                    file = name.as_str(),
                    batch = intent.batch,
                    removed_bytes = removed,
                    "rolled back the rows of an interrupted batch{}",
                    if replayable {
                        " (they are written again from the topic)"
                    } else {
                        " (its messages were on a bus that is gone)"
                    }
                );
            }
        } else if archive::is_archive_file(name) {
            continue;
        } else if name.ends_with(identities::LOG_SUFFIX) {
            let cut = files.trim_partial_record(name, identities::RECORD as u64)?;
            if cut > 0 {
                tracing::warn!(file = name.as_str(), "cut a partial last record of {cut} bytes");
            }
        } else if let Some(torn) = files.trim_torn_line(name)? {
            tracing::warn!(
                file = name.as_str(),
                "trimmed a torn last line {torn:?} (its message was on a bus that is gone)"
            );
        }
    }
    Ok(())
}
