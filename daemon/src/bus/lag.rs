//! How far a consumer group is behind on each partition, and the
//! partitions nobody in the group reads.
//!
//! A process sees its own partitions' progress; for the others it sees
//! only the group's committed offsets. A partition with messages unread
//! whose committed offset has not moved for longer than the group's
//! session timeout has no live reader: a member died holding it (and the
//! broker has not reassigned it), or every member is stuck. That is what
//! [`Unread`] finds.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use tokio::task::JoinHandle;

use super::Consumer;

/// One partition's lag for a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// Messages beyond the group's progress: this consumer's position where
    /// it holds the partition, else the group's committed offset.
    pub unread: u64,
    /// Whether this consumer holds (reads) the partition.
    pub held: bool,
    /// The group's committed offset, for a partition not held (`None`: the
    /// group has committed none).
    pub committed: Option<i64>,
}

/// A partition with messages unread and no progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stalled {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// Its messages unread.
    pub unread: u64,
    /// How long its committed offset has not moved.
    pub for_: Duration,
}

/// Follows the partitions a consumer does not hold, to find those nobody
/// reads.
#[derive(Debug)]
pub struct Unread {
    after: Duration,
    /// Per partition not held: the committed offset last seen, and since
    /// when it has not moved while messages were unread.
    since: BTreeMap<(Arc<str>, i32), (Option<i64>, Instant)>,
    stalled: BTreeSet<(Arc<str>, i32)>,
}

/// What changed at one observation.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Partitions found without a reader.
    pub stalled: Vec<Stalled>,
    /// Partitions read again.
    pub resumed: Vec<(Arc<str>, i32)>,
}

impl Unread {
    /// Calls a partition stalled after `after` without progress (the
    /// session timeout: by then the broker should have given it to a live
    /// member).
    pub fn new(after: Duration) -> Self {
        Unread { after, since: BTreeMap::new(), stalled: BTreeSet::new() }
    }

    /// Takes in the lags measured at `now`; returns what changed.
    pub fn observe(&mut self, lags: &[PartitionLag], now: Instant) -> Changes {
        let mut changes = Changes::default();
        let mut seen = BTreeSet::new();
        for lag in lags.iter().filter(|lag| !lag.held && lag.unread > 0) {
            let key = (Arc::clone(&lag.topic), lag.partition);
            let entry = self.since.entry(key.clone()).or_insert((lag.committed, now));
            if entry.0 != lag.committed {
                *entry = (lag.committed, now);
            }
            let for_ = now.saturating_duration_since(entry.1);
            if for_ >= self.after && !self.stalled.contains(&key) {
                changes.stalled.push(Stalled {
                    topic: Arc::clone(&lag.topic),
                    partition: lag.partition,
                    unread: lag.unread,
                    for_,
                });
                self.stalled.insert(key.clone());
            } else if for_ < self.after && self.stalled.remove(&key) {
                changes.resumed.push(key.clone());
            }
            seen.insert(key);
        }
        self.since.retain(|key, _| seen.contains(key));
        let gone: Vec<_> = self.stalled.iter().filter(|key| !seen.contains(*key)).cloned().collect();
        for key in gone {
            self.stalled.remove(&key);
            changes.resumed.push(key);
        }
        changes
    }

    /// How many partitions have no reader now.
    pub fn count(&self) -> usize {
        self.stalled.len()
    }
}

/// Measures a consumer's lag every `period` in a task of its own, so that
/// a slow answer from the broker never holds up the reading: the reader
/// asks [`LagProbe::take`] between batches and gets a measurement when
/// one is in.
#[derive(Debug)]
pub struct LagProbe {
    period: Duration,
    started: Instant,
    running: Option<JoinHandle<Option<Vec<PartitionLag>>>>,
}

impl LagProbe {
    /// A probe whose first measurement starts one `period` from now.
    pub fn new(period: Duration) -> LagProbe {
        LagProbe { period, started: Instant::now(), running: None }
    }

    /// The measurement that finished since the last call, if any (`None`
    /// also where the bus cannot tell); starts the next one when it is due
    /// and none is running.
    pub fn take(&mut self, consumer: &impl Consumer) -> Option<Vec<PartitionLag>> {
        let finished = match &self.running {
            Some(running) if running.is_finished() => self.running.take(),
            _ => None,
        };
        if self.running.is_none() && self.started.elapsed() >= self.period {
            self.started = Instant::now();
            self.running = Some(tokio::spawn(consumer.partition_lags()));
        }
        finished?.now_or_never()?.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe starts a measurement when due, hands it over on a later
    /// call once it is in, and starts the next only a period after.
    #[tokio::test]
    async fn a_probe_hands_over_a_measurement_taken_beside_the_reader() {
        use crate::bus::{Bus, MemoryBus, Record, TopicSpec};
        let bus = MemoryBus::new(100);
        bus.create_topics(&[TopicSpec { name: "T".into(), partitions: 1, replication: 1 }]).await.unwrap();
        bus.produce_batch("T", (0..7).map(|i| Record { key: "k".into(), value: vec![i] }).collect()).await.unwrap();
        let consumer = bus.consumer("g", &["T"]).unwrap();
        let mut probe = LagProbe::new(Duration::from_millis(50));
        assert_eq!(probe.take(&consumer), None, "not due yet");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(probe.take(&consumer), None, "started, not in yet");
        tokio::task::yield_now().await;
        let lags = probe.take(&consumer).expect("the measurement is in");
        assert_eq!(lags.iter().map(|lag| lag.unread).sum::<u64>(), 7);
        assert_eq!(probe.take(&consumer), None, "the next is a period away");
    }

    fn lag(partition: i32, unread: u64, held: bool, committed: Option<i64>) -> PartitionLag {
        PartitionLag { topic: "Portfolios".into(), partition, unread, held, committed }
    }

    #[test]
    fn a_partition_not_held_without_progress_past_the_timeout_is_stalled_until_it_moves() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut unread = Unread::new(Duration::from_secs(10));
        // Partition 0 held (never stalled), 1 not held and stuck at 40, 2
        // not held but moving.
        let lags =
            |t: i64| vec![lag(0, 500, true, None), lag(1, 20 + t as u64, false, Some(40)), lag(2, 5, false, Some(t))];
        assert_eq!(unread.observe(&lags(0), at(0)), Changes::default());
        assert_eq!(unread.observe(&lags(5), at(5)), Changes::default());
        let changes = unread.observe(&lags(10), at(10));
        assert_eq!(
            changes.stalled,
            vec![Stalled { topic: "Portfolios".into(), partition: 1, unread: 30, for_: Duration::from_secs(10) }]
        );
        assert_eq!(unread.count(), 1);
        assert_eq!(unread.observe(&lags(11), at(11)), Changes::default(), "reported once");
        let mut moved = lags(12);
        moved[1].committed = Some(41);
        assert_eq!(unread.observe(&moved, at(12)).resumed, vec![("Portfolios".into(), 1)]);
        assert_eq!(unread.count(), 0);
    }

    #[test]
    fn a_partition_read_up_or_taken_back_is_no_longer_stalled() {
        let start = Instant::now();
        let mut unread = Unread::new(Duration::from_secs(1));
        unread.observe(&[lag(1, 7, false, None)], start);
        assert_eq!(unread.observe(&[lag(1, 7, false, None)], start + Duration::from_secs(2)).stalled.len(), 1);
        let changes = unread.observe(&[lag(1, 7, true, None)], start + Duration::from_secs(3));
        assert_eq!(changes.resumed, vec![("Portfolios".into(), 1)]);
        assert_eq!(unread.count(), 0);
    }
}
