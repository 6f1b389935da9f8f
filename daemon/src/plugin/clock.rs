//! The clocks a plugin sees. Both are virtual, so that a plugin can neither
//! read nor time the host:
//!
//! - the wall clock reads the time the call is about: for `evaluate` the
//!   interval's timestamp, otherwise the time the call began, in whole
//!   seconds;
//! - the monotonic clock is a counter of the instance: each read advances it
//!   by one microsecond, and waiting on it (a sleep) returns at once and
//!   advances it by the time waited. A sleeping plugin never blocks a host
//!   thread, and its time budget is spent only by running code.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::HostWallClock;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi_io::poll::{Pollable, subscribe};

/// How far one read of the monotonic clock advances it, in nanoseconds.
const MONOTONIC_STEP_NANOS: u64 = 1_000;

/// The wall-clock time shown to an instance; the host sets it before each
/// call. Cheap to clone: clones share the time.
#[derive(Clone, Debug, Default)]
pub(crate) struct WallTime {
    nanos_since_epoch: Arc<AtomicU64>,
}

impl WallTime {
    /// Shows `time` to the plugin (times before 1970 show as 1970).
    pub(crate) fn set(&self, time: SystemTime) {
        let nanos = time.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        self.nanos_since_epoch.store(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Shows the current time, truncated to the second.
    pub(crate) fn set_to_now_in_seconds(&self) {
        let seconds = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        self.set(UNIX_EPOCH + Duration::from_secs(seconds));
    }

    /// The wall clock a WASI context reads this time through.
    pub(crate) fn clock(&self) -> VirtualWallClock {
        VirtualWallClock { time: self.clone() }
    }
}

/// `wasi:clocks/wall-clock` answering with a [`WallTime`].
pub(crate) struct VirtualWallClock {
    time: WallTime,
}

impl HostWallClock for VirtualWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.time.nanos_since_epoch.load(Ordering::Relaxed))
    }
}

/// The monotonic counter of one instance, in nanoseconds.
#[derive(Debug, Default)]
pub(crate) struct VirtualMonotonic {
    nanos: u64,
}

impl VirtualMonotonic {
    fn read(&mut self) -> u64 {
        self.nanos = self.nanos.saturating_add(MONOTONIC_STEP_NANOS);
        self.nanos
    }

    fn advance_to(&mut self, instant: u64) {
        self.nanos = self.nanos.max(instant);
    }
}

/// What `wasi:clocks/monotonic-clock` calls reach: the counter and the
/// resource table that holds pollables.
pub(crate) struct MonotonicView<'a> {
    pub(crate) clock: &'a mut VirtualMonotonic,
    pub(crate) table: &'a mut ResourceTable,
}

/// `HasData` for [`MonotonicView`].
pub(crate) struct VirtualMonotonicClock;

impl HasData for VirtualMonotonicClock {
    type Data<'a> = MonotonicView<'a>;
}

/// Adds `wasi:clocks/monotonic-clock`, answered by [`VirtualMonotonic`].
pub(crate) fn add_monotonic_clock<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> MonotonicView<'_>,
) -> wasmtime::Result<()> {
    monotonic_clock::add_to_linker::<T, VirtualMonotonicClock>(linker, view)
}

impl monotonic_clock::Host for MonotonicView<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        Ok(self.clock.read())
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        Ok(MONOTONIC_STEP_NANOS)
    }

    fn subscribe_instant(&mut self, when: monotonic_clock::Instant) -> wasmtime::Result<Resource<DynPollable>> {
        self.clock.advance_to(when);
        self.elapsed()
    }

    fn subscribe_duration(&mut self, duration: monotonic_clock::Duration) -> wasmtime::Result<Resource<DynPollable>> {
        let until = self.clock.nanos.saturating_add(duration);
        self.clock.advance_to(until);
        self.elapsed()
    }
}

impl MonotonicView<'_> {
    /// A pollable that is ready at once: the clock already moved past it.
    fn elapsed(&mut self) -> wasmtime::Result<Resource<DynPollable>> {
        let elapsed = self.table.push(Elapsed)?;
        subscribe(self.table, elapsed)
    }
}

/// A wait on the virtual clock: the clock already moved past it.
struct Elapsed;

#[wasmtime_wasi::async_trait]
impl Pollable for Elapsed {
    async fn ready(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_clock_shows_what_the_host_set() {
        let time = WallTime::default();
        let clock = time.clock();
        time.set(UNIX_EPOCH + Duration::from_secs(1_795_000_000));
        assert_eq!(clock.now(), Duration::from_secs(1_795_000_000));
        time.set(UNIX_EPOCH - Duration::from_secs(5));
        assert_eq!(clock.now(), Duration::ZERO);
    }

    #[test]
    fn the_wall_clock_in_seconds_has_no_fraction() {
        let time = WallTime::default();
        time.set_to_now_in_seconds();
        assert_eq!(time.clock().now().subsec_nanos(), 0);
    }

    #[test]
    fn the_monotonic_clock_counts_reads_and_sleeps() {
        let mut clock = VirtualMonotonic::default();
        let mut table = ResourceTable::new();
        let mut view = MonotonicView { clock: &mut clock, table: &mut table };
        let first = monotonic_clock::Host::now(&mut view).unwrap();
        let second = monotonic_clock::Host::now(&mut view).unwrap();
        assert_eq!(second - first, MONOTONIC_STEP_NANOS);
        monotonic_clock::Host::subscribe_duration(&mut view, 5_000_000_000).unwrap();
        let after_sleep = monotonic_clock::Host::now(&mut view).unwrap();
        assert_eq!(after_sleep - second, 5_000_000_000 + MONOTONIC_STEP_NANOS);
        // An instant in the past does not move the clock back.
        monotonic_clock::Host::subscribe_instant(&mut view, 1).unwrap();
        assert!(monotonic_clock::Host::now(&mut view).unwrap() > after_sleep);
    }
}
