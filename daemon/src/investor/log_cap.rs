//! A cap on the per-valuation log lines of one interval, shared by every
//! investor of a process: the seed printed each valuation, which is what a
//! small deployment wants to see, but a million lines every interval is a
//! log nobody can read. Beyond the cap, valuations are logged at debug
//! level (`RUST_LOG=stockd=debug` shows them all).

use std::sync::Mutex;

/// Valuation lines logged at info level per interval, across investors.
pub const VALUATION_LINES_PER_INTERVAL: u32 = 100;

/// How many lines of the current interval have been handed out.
#[derive(Debug)]
pub(crate) struct LogCap {
    cap: u32,
    used: Mutex<Used>,
}

/// What has been handed out in the current interval.
#[derive(Debug, Default)]
struct Used {
    interval: u64,
    lines: u32,
    /// A grant already said the cap was reached.
    announced: bool,
}

/// What one investor may log of its valuations for an interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grant {
    /// Lines at info level.
    pub(crate) lines: u32,
    /// This grant is the one that reached the cap: say so, once.
    pub(crate) reached_cap: bool,
}

impl LogCap {
    /// A cap of `cap` lines per interval.
    pub(crate) fn new(cap: u32) -> Self {
        LogCap { cap, used: Mutex::new(Used::default()) }
    }

    /// Asks for `wanted` lines in interval `interval`.
    pub(crate) fn grant(&self, interval: u64, wanted: usize) -> Grant {
        let mut used = self.used.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if used.interval != interval {
            *used = Used { interval, ..Used::default() };
        }
        let lines = (self.cap - used.lines).min(u32::try_from(wanted).unwrap_or(u32::MAX));
        used.lines += lines;
        let cut = (lines as usize) < wanted;
        let reached_cap = cut && !used.announced;
        used.announced |= cut;
        Grant { lines, reached_cap }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_out_the_cap_once_per_interval_and_says_when_it_is_reached() {
        let cap = LogCap::new(10);
        assert_eq!(cap.grant(1, 6), Grant { lines: 6, reached_cap: false });
        assert_eq!(cap.grant(1, 6), Grant { lines: 4, reached_cap: true });
        assert_eq!(cap.grant(1, 6), Grant { lines: 0, reached_cap: false });
        assert_eq!(cap.grant(2, 10), Grant { lines: 10, reached_cap: false });
        assert_eq!(cap.grant(2, 1), Grant { lines: 0, reached_cap: true });
        assert_eq!(cap.grant(2, 1), Grant { lines: 0, reached_cap: false });
    }
}
