//! The identity of the last valuation written per portfolio, so that a
//! valuation published twice adds one row.
//!
//! Kept per partition of the valuations topic (a portfolio's valuations all
//! come through one partition): in memory, and in an append-only log in the
//! partition's folder, 16 bytes per row written (investor, portfolio, then
//! INTERVAL_MS, little-endian). The sink appends to the log in the same
//! batch as the rows, under the same intent, so a batch rolled back after a
//! crash rolls its identities back with it. When the log holds many more
//! records than portfolios, it is rewritten with one record per portfolio
//! (between batches, when no intent refers to its length).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::path::Path;

use crate::fsutil;
use crate::market::{InvestorId, PortfolioId};

/// What [`Identities::admit`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// A valuation not written yet: it gets its row.
    New,
    /// The last valuation written, again (republished): skipped.
    Again,
    /// A valuation older than the last one written (`last`): skipped, as
    /// its row would break the file's order (an investor restarted from an
    /// older state, or another producer).
    Older {
        /// The last identity written.
        last: i64,
    },
}

/// Bytes per record.
pub const RECORD: usize = 16;

/// The name every identities log ends with (binary: never trimmed as
/// text).
pub const LOG_SUFFIX: &str = "identities.bin";
/// Records beyond twice the portfolios before the log is rewritten.
const SLACK: u64 = 65_536;

/// The last identity written per portfolio of one partition.
pub struct Identities {
    /// The log, relative to the data folder.
    name: String,
    last: HashMap<PortfolioId, i64>,
    /// Records in the log.
    records: u64,
}

impl Identities {
    /// The portfolios with a row written.
    pub fn portfolios(&self) -> impl Iterator<Item = PortfolioId> + '_ {
        self.last.keys().copied()
    }

    /// Reads the log `name` of the data folder `data` (none yet: empty). A
    /// partial last record (which the sink's recovery removes before this
    /// is read) is ignored with a warning.
    pub fn load(data: &Path, name: String) -> io::Result<Self> {
        let bytes = match std::fs::read(data.join(&name)) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(io::Error::new(error.kind(), format!("{name}: {error}"))),
        };
        if bytes.len() % RECORD != 0 {
            tracing::warn!(file = name, "ignoring a partial last record of {} bytes", bytes.len() % RECORD);
        }
        let mut identities = Identities { name, last: HashMap::new(), records: 0 };
        for record in bytes.chunks_exact(RECORD) {
            let (investor, rest) = record.split_at(4);
            let (number, identity) = rest.split_at(4);
            let investor = u32::from_le_bytes(investor.try_into().expect("4 bytes"));
            let number = u32::from_le_bytes(number.try_into().expect("4 bytes"));
            let identity = i64::from_le_bytes(identity.try_into().expect("8 bytes"));
            if let Ok(investor) = InvestorId::new(investor) {
                let slot = identities.last.entry(PortfolioId { investor, number }).or_insert(identity);
                *slot = (*slot).max(identity);
            }
            identities.records += 1;
        }
        Ok(identities)
    }

    /// The log's name, relative to the data folder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `identity` is above the last one written for `portfolio`; if
    /// so it becomes the last, and its record is added to `log`.
    pub fn admit(&mut self, portfolio: PortfolioId, identity: i64, log: &mut Vec<u8>) -> Admitted {
        match self.last.entry(portfolio) {
            Entry::Occupied(last) if *last.get() == identity => return Admitted::Again,
            Entry::Occupied(last) if *last.get() > identity => return Admitted::Older { last: *last.get() },
            Entry::Occupied(mut last) => {
                last.insert(identity);
            }
            Entry::Vacant(slot) => {
                slot.insert(identity);
            }
        }
        push_record(log, portfolio, identity);
        Admitted::New
    }

    /// Counts `bytes` of records appended to the log.
    pub fn appended(&mut self, bytes: usize) {
        self.records += (bytes / RECORD) as u64;
    }

    /// Whether the log has grown well past one record per portfolio.
    pub fn wants_compaction(&self) -> bool {
        self.records > 2 * self.last.len() as u64 + SLACK
    }

    /// Rewrites the log with one record per portfolio, atomically (synced
    /// when `durable`). The caller must have closed its handle on the log.
    pub fn compact(&mut self, data: &Path, durable: bool) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(self.last.len() * RECORD);
        for (&portfolio, &identity) in &self.last {
            push_record(&mut bytes, portfolio, identity);
        }
        let path = data.join(&self.name);
        if durable { fsutil::write_atomically(&path, &bytes) } else { fsutil::replace(&path, &bytes) }
            .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", self.name)))?;
        tracing::debug!(file = self.name, from = self.records, to = self.last.len(), "rewrote the identities log");
        self.records = self.last.len() as u64;
        Ok(())
    }
}

fn push_record(log: &mut Vec<u8>, portfolio: PortfolioId, identity: i64) {
    log.extend_from_slice(&portfolio.investor.get().to_le_bytes());
    log.extend_from_slice(&portfolio.number.to_le_bytes());
    log.extend_from_slice(&identity.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> PortfolioId {
        text.parse().unwrap()
    }

    #[test]
    fn admits_only_newer_identities_and_survives_a_reload_and_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let name = "identities.bin".to_string();
        let mut identities = Identities::load(dir.path(), name.clone()).unwrap();
        let mut log = Vec::new();
        assert_eq!(identities.admit(id("1.1"), 1000, &mut log), Admitted::New);
        assert_eq!(identities.admit(id("1.2"), 1000, &mut log), Admitted::New);
        assert_eq!(identities.admit(id("1.1"), 1000, &mut log), Admitted::Again, "the same valuation again");
        assert_eq!(identities.admit(id("1.1"), 500, &mut log), Admitted::Older { last: 1000 });
        assert_eq!(identities.admit(id("1.1"), 1500, &mut log), Admitted::New);
        assert_eq!(log.len(), 3 * RECORD);
        // A torn record at the end is ignored.
        let mut written = log.clone();
        written.extend_from_slice(&[1, 2, 3]);
        std::fs::write(dir.path().join(&name), &written).unwrap();
        let mut reloaded = Identities::load(dir.path(), name.clone()).unwrap();
        assert_eq!(reloaded.records, 3);
        assert_eq!(reloaded.admit(id("1.1"), 1500, &mut Vec::new()), Admitted::Again);
        assert_eq!(reloaded.admit(id("1.2"), 999, &mut Vec::new()), Admitted::Older { last: 1000 });
        reloaded.compact(dir.path(), true).unwrap();
        assert_eq!(std::fs::metadata(dir.path().join(&name)).unwrap().len(), 2 * RECORD as u64);
        let mut compacted = Identities::load(dir.path(), name).unwrap();
        assert_eq!(compacted.admit(id("1.1"), 1500, &mut Vec::new()), Admitted::Again);
        assert_eq!(compacted.admit(id("1.1"), 1501, &mut Vec::new()), Admitted::New);
        assert!(!compacted.wants_compaction());
    }
}
