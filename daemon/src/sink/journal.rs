//! The two small files of each partition's folder,
//! `DATA/.sink/partitions/TOPIC/P/`, and the crash contract they implement.
//!
//! - `intent.json`, written durably *before* a batch touches any file of
//!   the partition: the intents of its batches not checkpointed yet (at
//!   most two: the batch being synced and the one being written), each with
//!   its sequence number and, for every file it appends to, the file's
//!   length before it (absent: the file is new).
//! - `checkpoint.json`, written durably *after* the batch's rows are synced:
//!   the batch's sequence number and the partition's next offset to read.
//!
//! Earlier versions kept one pair for all partitions in `DATA/.sink/`
//! ([`Journal::legacy`]); the sink moves it into the partitions' folders.
//!
//! A restart that finds intents ahead of the checkpoint knows those batches
//! were not completed: newest first, it truncates their files back to the
//! recorded lengths (which also removes any torn last line), and the
//! messages, not yet past the checkpoint, are written again. Offsets at or
//! below the checkpoint are skipped, so a crash between the checkpoint and
//! the commit writes nothing twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bus::Positions;
use crate::fsutil;

/// What has been written and made durable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The bus the offsets belong to (see `Bus::identity`).
    pub bus: String,
    /// The last completed batch.
    pub batch: u64,
    /// Per partition, the next offset to read.
    pub positions: Positions,
}

/// What a batch is about to change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Intent {
    /// The bus the batch's messages came from.
    pub bus: String,
    /// The batch's sequence number (the checkpoint's + 1).
    pub batch: u64,
    /// File name (in the data folder) → length before the batch; `None`:
    /// the file did not exist.
    pub files: BTreeMap<String, Option<u64>>,
}

/// `intent.json` as written now (a list) or by stockd before 0.2 (one).
#[derive(Deserialize)]
#[serde(untagged)]
enum Intents {
    Many(Vec<Intent>),
    One(Intent),
}

/// The journal files of a data folder.
#[derive(Debug, Clone)]
pub struct Journal {
    checkpoint: PathBuf,
    intent: PathBuf,
    /// Sync each record to disk (off only with `sync = "none"`, which gives
    /// up power-loss safety anyway; a process crash keeps unsynced writes).
    durable: bool,
}

/// A journal file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Reading or writing failed.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The file is not what the sink wrote.
    #[error(
        "{} is corrupt ({message}); it is written atomically, so something else changed it: restore it from a \
         backup. (Deleting it does not rebuild anything: the group's committed offsets and the partition's \
         identities log skip what was written. To write again what the topic still holds, stop every sink, remove \
         the partition's folder and the CSV files and archive it wrote, and reset group app1's offsets to the \
         earliest.)",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

impl Journal {
    /// The journal files in the folder `dir`; `durable` syncs every record.
    pub fn at(dir: &Path, durable: bool) -> Self {
        Journal { checkpoint: dir.join("checkpoint.json"), intent: dir.join("intent.json"), durable }
    }

    /// The journal of all partitions, as earlier versions kept it in
    /// `DATA/.sink/`.
    pub fn legacy(data: &Path, durable: bool) -> Self {
        Journal::at(&crate::layout::sink_dir(data), durable)
    }

    /// Whether either file exists.
    pub fn exists(&self) -> bool {
        self.checkpoint.exists() || self.intent.exists()
    }

    /// Removes both files.
    pub fn remove(&self) -> Result<(), JournalError> {
        for path in [&self.intent, &self.checkpoint] {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(cause) => return Err(JournalError::Io { path: path.clone(), cause }),
            }
        }
        Ok(())
    }

    /// The last checkpoint (empty before the first batch).
    pub fn checkpoint(&self) -> Result<Checkpoint, JournalError> {
        read(&self.checkpoint).map(Option::unwrap_or_default)
    }

    /// The intents last recorded (none before the first batch).
    pub fn intents(&self) -> Result<Vec<Intent>, JournalError> {
        Ok(match read(&self.intent)? {
            None => Vec::new(),
            Some(Intents::One(intent)) => vec![intent],
            Some(Intents::Many(intents)) => intents,
        })
    }

    /// Records the intents of the batches not checkpointed yet.
    pub fn write_intents(&self, intents: &[Intent]) -> Result<(), JournalError> {
        write(&self.intent, &intents, self.durable)
    }

    /// Records a completed batch.
    pub fn write_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), JournalError> {
        write(&self.checkpoint, checkpoint, self.durable)
    }
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, JournalError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| JournalError::Corrupt { path: path.to_path_buf(), message: e.to_string() }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(JournalError::Io { path: path.to_path_buf(), cause: source }),
    }
}

fn write<T: Serialize>(path: &Path, value: &T, durable: bool) -> Result<(), JournalError> {
    let bytes = serde_json::to_vec(value).expect("journal records always serialise");
    let written = if durable { fsutil::write_atomically(path, &bytes) } else { fsutil::replace(path, &bytes) };
    written.map_err(|source| JournalError::Io { path: path.to_path_buf(), cause: source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_corruption_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::legacy(dir.path(), true);
        assert_eq!(journal.checkpoint().unwrap(), Checkpoint::default());
        assert!(journal.intents().unwrap().is_empty());
        let mut positions = Positions::new();
        positions.set("Portfolios", 0, 10);
        let checkpoint = Checkpoint { bus: "kafka:x".into(), batch: 3, positions };
        journal.write_checkpoint(&checkpoint).unwrap();
        let intent = Intent {
            bus: "kafka:x".into(),
            batch: 4,
            files: BTreeMap::from([
                ("INVESTOR_1_PORTFOLIO_1.csv".to_string(), Some(120)),
                ("new.csv".to_string(), None),
            ]),
        };
        let next = Intent { batch: 5, files: BTreeMap::from([("new.csv".to_string(), Some(48))]), ..intent.clone() };
        journal.write_intents(&[intent.clone(), next.clone()]).unwrap();
        assert_eq!(journal.checkpoint().unwrap(), checkpoint);
        assert_eq!(journal.intents().unwrap(), [intent.clone(), next]);
        // The single intent an older stockd wrote still reads.
        std::fs::write(dir.path().join(".sink/intent.json"), serde_json::to_vec(&intent).unwrap()).unwrap();
        assert_eq!(journal.intents().unwrap(), [intent]);
        std::fs::write(dir.path().join(".sink/checkpoint.json"), "{").unwrap();
        let error = journal.checkpoint().unwrap_err().to_string();
        assert!(error.contains("checkpoint.json is corrupt"), "{error}");
    }
}
