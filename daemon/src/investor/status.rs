//! What each investor of this process is doing, as the web view's
//! investors page shows it: quarantined or not (and why), when it last
//! valued, and its failed intervals. Written by the workers, read by
//! whoever shows it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::market::InvestorId;

/// One investor's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct InvestorStatus {
    /// Why it is quarantined (its last error), while it is.
    pub quarantined: Option<String>,
    /// The timestamp of the last interval it valued.
    pub last_valued: Option<String>,
    /// Intervals it failed (trap, timeout, memory cap, error, bad NAV).
    pub failed_intervals: u64,
    /// Its last failure.
    pub last_error: Option<String>,
    /// While another process runs it (see `investor::active`): who.
    pub standby_for: Option<String>,
}

/// The status of every running investor. Cheap to clone; clones share it.
#[derive(Debug, Clone, Default)]
pub struct StatusBoard {
    investors: Arc<Mutex<BTreeMap<InvestorId, InvestorStatus>>>,
}

impl StatusBoard {
    /// Every investor's status now.
    pub fn snapshot(&self) -> BTreeMap<InvestorId, InvestorStatus> {
        self.lock().clone()
    }

    /// Records a valued interval.
    pub(crate) fn valued(&self, investor: InvestorId, timestamp: String) {
        self.lock().entry(investor).or_default().last_valued = Some(timestamp);
    }

    /// Records a failed interval.
    pub(crate) fn failed(&self, investor: InvestorId, error: String) {
        let mut investors = self.lock();
        let status = investors.entry(investor).or_default();
        status.failed_intervals += 1;
        status.last_error = Some(error);
    }

    /// Quarantines (with the last error as the reason) or releases an
    /// investor; returns how many are quarantined.
    pub(crate) fn set_quarantined(&self, investor: InvestorId, quarantined: bool) -> usize {
        let mut investors = self.lock();
        let status = investors.entry(investor).or_default();
        status.quarantined = if quarantined { Some(status.last_error.clone().unwrap_or_default()) } else { None };
        investors.values().filter(|s| s.quarantined.is_some()).count()
    }

    /// Records that another process (`holder`) runs the investor and this
    /// one stands by, or (`None`) that this one took over.
    pub(crate) fn standing_by(&self, investor: InvestorId, holder: Option<String>) {
        self.lock().entry(investor).or_default().standby_for = holder;
    }

    /// Forgets an investor whose worker stopped.
    pub(crate) fn remove(&self, investor: InvestorId) {
        self.lock().remove(&investor);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<InvestorId, InvestorStatus>> {
        self.investors.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_and_quarantine_carries_the_last_error() {
        let board = StatusBoard::default();
        let one = InvestorId::new(1).unwrap();
        board.valued(one, "2026-11-24 09:40:20".into());
        board.failed(one, "investor 1: evaluate timed out after 250ms".into());
        board.failed(one, "investor 1: evaluate trapped: boom".into());
        assert_eq!(board.set_quarantined(one, true), 1);
        let status = &board.snapshot()[&one];
        assert_eq!(status.failed_intervals, 2);
        assert_eq!(status.quarantined.as_deref(), Some("investor 1: evaluate trapped: boom"));
        assert_eq!(status.last_valued.as_deref(), Some("2026-11-24 09:40:20"));
        assert_eq!(board.set_quarantined(one, false), 0);
        board.standing_by(one, Some("pid 7 on host".into()));
        assert_eq!(board.snapshot()[&one].standby_for.as_deref(), Some("pid 7 on host"));
        board.standing_by(one, None);
        assert_eq!(board.snapshot()[&one].standby_for, None);
        board.remove(one);
        assert!(board.snapshot().is_empty());
    }
}
