//! The valuation intervals, shared by every investor of a process: interval
//! k ≥ 1 falls at start + k × interval, and every valuation of interval k
//! carries the same timestamp, whichever investor made it.

use std::time::Duration;

use chrono::NaiveDateTime;
use tokio::time::Instant;

/// When intervals fall.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    wall_start: NaiveDateTime,
    interval: Duration,
}

impl Schedule {
    /// Intervals of `interval`, counted from now.
    pub fn starting_now(interval: Duration) -> Self {
        Schedule { start: Instant::now(), wall_start: crate::market::now(), interval }
    }

    /// When interval `k` falls.
    pub fn boundary(&self, k: u64) -> Instant {
        self.start + self.interval.saturating_mul(u32::try_from(k).unwrap_or(u32::MAX))
    }

    /// The last interval that has fallen by `now` (0: none yet).
    pub fn current(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start);
        (elapsed.as_nanos() / self.interval.as_nanos().max(1)) as u64
    }

    /// The UTC time of interval `k`, as its valuations are stamped.
    pub fn timestamp(&self, k: u64) -> NaiveDateTime {
        let offset = chrono::Duration::from_std(self.interval.saturating_mul(u32::try_from(k).unwrap_or(u32::MAX)))
            .unwrap_or(chrono::Duration::MAX);
        self.wall_start + offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_fall_at_multiples_of_the_interval() {
        let schedule = Schedule::starting_now(Duration::from_millis(200));
        let start = schedule.boundary(0);
        assert_eq!(schedule.boundary(3) - start, Duration::from_millis(600));
        assert_eq!(schedule.current(start), 0);
        assert_eq!(schedule.current(start + Duration::from_millis(399)), 1);
        assert_eq!(schedule.current(start + Duration::from_millis(400)), 2);
        assert_eq!(schedule.timestamp(5) - schedule.timestamp(0), chrono::Duration::seconds(1));
    }
}
