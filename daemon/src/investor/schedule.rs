//! The valuation intervals, shared by every investor of a process: interval
//! k ≥ 1 falls at start + k × interval, and every valuation of interval k
//! carries the same timestamp, whichever investor made it.
//!
//! The timestamps come from the wall clock read once at start, plus a
//! shift: when an investor's checkpoint holds an interval stamped later than
//! this process would stamp its next one (the clock went back since, or
//! another host's clock is behind), every later stamp of the process moves
//! forward, so that each portfolio's rows stay in time order.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::NaiveDateTime;
use tokio::time::Instant;

/// When intervals fall.
#[derive(Debug, Clone)]
pub struct Schedule {
    start: Instant,
    wall_start: NaiveDateTime,
    interval: Duration,
    /// Milliseconds added to every stamp (see [`Schedule::stamp_after`]).
    shift_ms: Arc<AtomicI64>,
}

impl Schedule {
    /// Intervals of `interval`, counted from now.
    pub fn starting_now(interval: Duration) -> Self {
        Schedule {
            start: Instant::now(),
            wall_start: crate::market::now(),
            interval,
            shift_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// The time between intervals.
    pub fn interval(&self) -> Duration {
        self.interval
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
        self.clock_timestamp(k) + chrono::Duration::milliseconds(self.shift_ms.load(Ordering::Relaxed))
    }

    /// Interval `k`'s time by the wall clock read at start.
    fn clock_timestamp(&self, k: u64) -> NaiveDateTime {
        let offset = chrono::Duration::from_std(self.interval.saturating_mul(u32::try_from(k).unwrap_or(u32::MAX)))
            .unwrap_or(chrono::Duration::MAX);
        self.wall_start + offset
    }

    /// Makes interval `k`'s stamp, and every later one, at least one
    /// interval after `last_ms` (an earlier stamp, in milliseconds since the
    /// epoch) by moving every stamp of this process forward. Returns how far
    /// they moved; `None` when they were already after it.
    pub fn stamp_after(&self, k: u64, last_ms: i64) -> Option<chrono::Duration> {
        let interval_ms = i64::try_from(self.interval.as_millis()).unwrap_or(i64::MAX).max(1);
        let wanted = last_ms.saturating_add(interval_ms);
        let clock = self.clock_timestamp(k).and_utc().timestamp_millis();
        let moved = std::cell::Cell::new(0);
        self.shift_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |shift| {
                let behind = wanted.saturating_sub(clock.saturating_add(shift));
                moved.set(behind);
                (behind > 0).then(|| shift + behind)
            })
            .ok()
            .map(|_| chrono::Duration::milliseconds(moved.get()))
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

    #[test]
    fn stamps_move_after_a_checkpoint_stamped_later_than_the_clock() {
        let schedule = Schedule::starting_now(Duration::from_secs(20));
        let shared = schedule.clone();
        let clock = schedule.timestamp(3);
        let ms = |at: NaiveDateTime| at.and_utc().timestamp_millis();
        // A checkpoint of an earlier interval: nothing moves.
        assert_eq!(schedule.stamp_after(3, ms(clock) - 20_000), None);
        assert_eq!(schedule.timestamp(3), clock);
        // Stamped 5 minutes ahead of this clock: interval 3 comes one
        // interval after it, for every holder of the schedule.
        let last = clock + chrono::Duration::minutes(5);
        let moved = schedule.stamp_after(3, ms(last)).expect("behind");
        assert_eq!(moved, chrono::Duration::seconds(320));
        assert_eq!(shared.timestamp(3), last + chrono::Duration::seconds(20));
        assert_eq!(shared.timestamp(4) - shared.timestamp(3), chrono::Duration::seconds(20));
        // A second investor with an older checkpoint moves nothing more.
        assert_eq!(shared.stamp_after(3, ms(last) - 60_000), None);
        assert_eq!(schedule.timestamp(3), last + chrono::Duration::seconds(20));
    }
}
