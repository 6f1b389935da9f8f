//! An investor's checkpoint, `DATA/.state/investor-N.json`, and its
//! "published" marker, `DATA/.state/investor-N.published`.
//!
//! The checkpoint is written atomically and durably (temporary file, fsync,
//! rename, directory fsync) *before* an interval's valuations are
//! published, with what is needed to publish them again: the interval's
//! sequence number, timestamp and the NAVs before it ([`Pending`]). The
//! messages themselves are rebuilt from those and the new NAVs, byte for
//! byte. A restart therefore finds either the state before the interval or
//! the state after it with its messages to (re)publish — never a
//! NAV_Change computed against a NAV that was not the last one published.
//! Once the broker acknowledges the messages, the marker file records the
//! sequence number (a small in-place write, not synced: a power loss, not a
//! process crash, may republish the last interval's messages once).
//!
//! Where the bus keeps messages only in this process (the embedded memory
//! bus), a published interval is not safe until the sink has made it
//! durable: the checkpoint keeps every interval published but not yet known
//! written ([`Unsettled`]), and a restart publishes them again on the new
//! bus, in order (the sink's identities keep one row per valuation).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bus::{Positions, Record};
use crate::fsutil;
use crate::market::{InvestorId, PortfolioId, ValuationFields, nav_changes};

/// Everything an investor must remember across restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InvestorState {
    /// The bus the positions belong to (see `Bus::identity`).
    pub bus: String,
    /// How many intervals this investor has valued, ever (its sequence).
    pub interval: u64,
    /// Portfolio number → NAV of its last valuation.
    pub navs: BTreeMap<u32, f64>,
    /// Ticker → latest price.
    pub prices: BTreeMap<String, f64>,
    /// Per partition, the next tick offset to read.
    pub positions: Positions,
    /// The last interval's valuations, until their publication is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
    /// The INTERVAL_MS of the last interval valued (0: none yet, or a
    /// checkpoint from before stockd carried it): the next is above it.
    #[serde(default)]
    pub last_interval_ms: i64,
    /// Intervals published on a bus that keeps messages only in its
    /// process, not yet known written by the sink, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsettled: Vec<Unsettled>,
}

/// A published interval that may not be durable yet: enough to publish its
/// messages again, byte for byte.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unsettled {
    /// The interval (not flattened: serde's flatten reads integer map keys
    /// back as strings).
    pub interval: Pending,
    /// Portfolio number → its NAV in this interval.
    pub navs: BTreeMap<u32, f64>,
}

impl Unsettled {
    /// The interval's messages.
    pub fn records(&self, investor: InvestorId) -> Vec<Record> {
        self.interval.records(investor, &self.navs)
    }
}

/// An interval whose valuations may not be published yet: with the NAVs
/// (`InvestorState::navs`), enough to rebuild its messages exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// The interval's sequence number (`InvestorState::interval`).
    pub interval: u64,
    /// Its TIMESTAMP.
    pub timestamp: String,
    /// Its INTERVAL_MS, the valuations' identity (absent in a checkpoint
    /// from before stockd carried it: the messages go without, as they
    /// first did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<i64>,
    /// The investor's name, for INVESTOR.
    pub investor: String,
    /// Portfolio number → NAV before this interval (absent: first valuation).
    pub previous: BTreeMap<u32, f64>,
}

impl Pending {
    /// The interval's messages: one per portfolio of `navs`.
    pub fn records(&self, investor: InvestorId, navs: &BTreeMap<u32, f64>) -> Vec<Record> {
        navs.iter()
            .map(|(&number, &nav)| {
                let portfolio = PortfolioId { investor, number };
                let (nav, nav_change, nav_change_pct) = nav_changes(nav, self.previous.get(&number).copied());
                let fields = ValuationFields {
                    portfolio,
                    timestamp: Cow::Borrowed(&self.timestamp),
                    nav,
                    nav_change,
                    nav_change_pct,
                    investor: Some(Cow::Borrowed(&self.investor)),
                    interval_ms: self.interval_ms,
                };
                Record { key: portfolio.to_string(), value: fields.encode() }
            })
            .collect()
    }
}

/// The file recording the last interval published, beside the checkpoint.
fn marker_path(state: &Path) -> PathBuf {
    state.with_extension("published")
}

/// Why a checkpoint could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("checkpoint {}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The file is not a checkpoint.
    #[error("checkpoint {} is corrupt: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io { path: path.to_path_buf(), cause: source }
}

impl InvestorState {
    /// Loads a checkpoint; `None` when there is none yet. A pending interval
    /// the marker records as published joins the unsettled ones (the
    /// caller drops them where the bus is durable).
    pub fn load(path: &Path) -> Result<Option<Self>, StateError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Io { path: path.to_path_buf(), cause: source }),
        };
        let mut state: InvestorState = serde_json::from_slice(&bytes)
            .map_err(|e| StateError::Corrupt { path: path.to_path_buf(), message: e.to_string() })?;
        let published =
            std::fs::read_to_string(marker_path(path)).ok().and_then(|text| text.trim().parse::<u64>().ok());
        if state.pending.as_ref().is_some_and(|p| published.is_some_and(|done| done >= p.interval)) {
            let interval = state.pending.take().expect("checked");
            state.unsettled.push(Unsettled { interval, navs: state.navs.clone() });
        }
        Ok(Some(state))
    }

    /// Writes the checkpoint atomically and durably.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(self).expect("a checkpoint always serialises");
        fsutil::write_atomically(path, &bytes).map_err(io_error(path))
    }

    /// Records that interval `interval` was published (beside `path`).
    pub fn mark_published(path: &Path, interval: u64) -> Result<(), StateError> {
        let marker = marker_path(path);
        let mut file =
            OpenOptions::new().write(true).create(true).truncate(false).open(&marker).map_err(io_error(&marker))?;
        // Fixed width: overwriting in place never leaves a longer old tail.
        writeln!(file, "{interval:020}").map_err(io_error(&marker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::Valuation;

    fn investor() -> InvestorId {
        InvestorId::new(3).unwrap()
    }

    #[test]
    fn round_trips_and_reports_a_missing_or_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::layout::investor_state_path(dir.path(), investor());
        assert!(path.ends_with(".state/investor-3.json"));
        assert_eq!(InvestorState::load(&path).unwrap(), None);
        let mut state = InvestorState { bus: "memory:x".into(), interval: 7, ..InvestorState::default() };
        state.navs.insert(1, 1_286_940.0);
        state.prices.insert("IBM".into(), 123.2);
        state.positions.set("StockExchange", 0, 42);
        state.unsettled.push(Unsettled {
            interval: Pending {
                interval: 7,
                timestamp: "2026-11-24 09:40:20".into(),
                interval_ms: Some(1_795_513_220_000),
                investor: "Investor 3".into(),
                previous: BTreeMap::from([(1, 1_280_000.0)]),
            },
            navs: BTreeMap::from([(1, 1_286_940.0)]),
        });
        state.save(&path).unwrap();
        assert_eq!(InvestorState::load(&path).unwrap(), Some(state));
        std::fs::write(&path, "{not json").unwrap();
        assert!(matches!(InvestorState::load(&path), Err(StateError::Corrupt { .. })));
    }

    #[test]
    fn a_pending_interval_rebuilds_its_messages_until_marked_published() {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::layout::investor_state_path(dir.path(), investor());
        let mut state = InvestorState { interval: 12, ..InvestorState::default() };
        state.navs = BTreeMap::from([(1, 1_300_000.0), (2, 850_000.5)]);
        state.pending = Some(Pending {
            interval: 12,
            timestamp: "2026-11-24 09:40:20".into(),
            interval_ms: Some(1_795_513_220_250),
            investor: "Investor 3".into(),
            previous: BTreeMap::from([(1, 1_286_940.0)]),
        });
        state.save(&path).unwrap();
        InvestorState::mark_published(&path, 11).unwrap();
        let loaded = InvestorState::load(&path).unwrap().unwrap();
        let records = loaded.pending.as_ref().expect("still pending").records(investor(), &loaded.navs);
        let decoded: Vec<Valuation> = records.iter().map(|r| Valuation::decode(&r.value).unwrap()).collect();
        assert_eq!(records[0].key, "3.1");
        assert_eq!((decoded[0].nav, decoded[0].nav_change, decoded[0].nav_change_pct), (1_300_000.0, 13_060.0, 1.01));
        assert_eq!((decoded[1].nav, decoded[1].nav_change, decoded[1].nav_change_pct), (850_000.5, 0.0, 0.0));
        assert_eq!(decoded[1].investor.as_deref(), Some("Investor 3"));
        assert!(decoded.iter().all(|v| v.interval_ms == Some(1_795_513_220_250)), "the identity is carried");
        InvestorState::mark_published(&path, 12).unwrap();
        let loaded = InvestorState::load(&path).unwrap().unwrap();
        assert_eq!(loaded.pending, None);
        assert_eq!(loaded.unsettled.len(), 1, "published, not known written");
        assert_eq!(loaded.unsettled[0].records(investor()), records, "the same messages, byte for byte");
    }
}
