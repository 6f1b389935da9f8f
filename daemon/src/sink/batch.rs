//! A batch of the sink between reading and writing: its messages decoded
//! (on all cores, in chunks) and formatted into rows, the invalid ones
//! rejected, grouped by portfolio and partition.

use std::collections::BTreeMap;

use crate::archive::ArchiveRow;
use crate::bus::{Message, Positions};
use crate::layout::{REJECTED_FILE, write_row};
use crate::market::{InvestorId, MAX_INTERVAL_DRIFT, PortfolioId, Valuation, ValuationView};

use super::rejected::write_rejected;

/// A batch read and decoded, not written yet.
#[derive(Default)]
pub(super) struct Prepared {
    /// Portfolio → its partition and the rows to append to its file, in
    /// offset order.
    pub(super) rows: BTreeMap<PortfolioId, (i32, Vec<u8>)>,
    /// Partition → identity records to append to its log.
    pub(super) identities: BTreeMap<i32, Vec<u8>>,
    /// Partition → the rows for the archive (empty without one).
    pub(super) archive: BTreeMap<i32, Vec<ArchiveRow>>,
    pub(super) rejected: Vec<u8>,
    pub(super) row_count: u64,
    pub(super) reject_count: u64,
    pub(super) duplicate_count: u64,
    /// Valuations older than their portfolio's last row: the first one's
    /// portfolio, identity and last identity written, and how many.
    pub(super) older: Option<(PortfolioId, i64, i64, u64)>,
    /// Per partition of the batch, the next offset after it.
    pub(super) positions: Positions,
}

/// The rows of one portfolio in a chunk of a batch.
#[derive(Default)]
pub(super) struct PortfolioRows {
    pub(super) partition: i32,
    pub(super) bytes: Vec<u8>,
    /// Per row, its valuation's identity and where it ends in `bytes`.
    pub(super) ends: Vec<(i64, usize)>,
    /// Per row, its values for the archive.
    pub(super) values: Vec<ArchiveRow>,
}

/// One chunk of a batch, decoded and formatted.
#[derive(Default)]
pub(super) struct Part {
    pub(super) rows: BTreeMap<PortfolioId, PortfolioRows>,
    /// Investor names seen, when they differ from the previous message's.
    pub(super) names: Vec<(InvestorId, String)>,
    pub(super) rejected: Vec<u8>,
    pub(super) reject_count: u64,
}

impl Part {
    /// Decodes `messages`, and formats them as CSV rows when `csv`; a
    /// valuation stamped more than [`MAX_INTERVAL_DRIFT`] after `now` is
    /// rejected (its identity would hold every later valuation of its
    /// portfolio back).
    pub(super) fn of(messages: &[&Message], now: chrono::NaiveDateTime, csv: bool) -> Part {
        let mut part = Part::default();
        for message in messages {
            let decoded = ValuationView::decode(&message.value);
            let future = decoded.as_ref().is_some_and(|v| v.at > now + MAX_INTERVAL_DRIFT);
            match decoded.filter(|_| !future) {
                Some(valuation) => {
                    let rows = part.rows.entry(valuation.portfolio).or_default();
                    rows.partition = message.partition;
                    if csv {
                        write_row(&mut rows.bytes, &valuation);
                    }
                    rows.ends.push((valuation.identity(), rows.bytes.len()));
                    rows.values.push(ArchiveRow {
                        portfolio: valuation.portfolio,
                        timestamp: valuation.at.and_utc().timestamp(),
                        nav: valuation.nav + 0.0,
                        nav_change: valuation.nav_change + 0.0,
                        nav_change_pct: valuation.nav_change_pct + 0.0,
                    });
                    if let Some(name) = &valuation.investor {
                        let investor = valuation.portfolio.investor;
                        if part.names.last().is_none_or(|(i, n)| *i != investor || n != name) {
                            part.names.push((investor, name.to_string()));
                        }
                    }
                }
                None => {
                    let reason = match Valuation::decode(&message.value) {
                        Err(error) => error.to_string(),
                        Ok(_) if future => "TIMESTAMP is more than a day after this machine's clock".into(),
                        Ok(_) => "invalid valuation".into(),
                    };
                    tracing::warn!(
                        topic = %message.topic, partition = message.partition, offset = message.offset,
                        "rejected a valuation ({reason}); recorded in {REJECTED_FILE}"
                    );
                    write_rejected(&mut part.rejected, message, &reason);
                    part.reject_count += 1;
                }
            }
        }
        part
    }
}
