//! The embedded bus: an in-process log per topic-partition.
//!
//! Offsets, committed offsets per group, several independent groups per
//! topic, and waiting consumers woken by producers (no busy polling), as on
//! Kafka. Unlike Kafka, the consumers of one group do not split the
//! partitions between them: each reads them all (stockd runs one consumer
//! per group).
//!
//! Nothing a live consumer has not read is ever dropped. Each partition
//! keeps its share of the topic's retention (1,000,000 messages per topic by
//! default), read or not, so that a group that starts later still finds the
//! recent past; when a partition is full and its oldest message is unread
//! by a live consumer (one that exists now, in any group), the producer
//! waits for room — backpressure, measured in
//! `stockd_produce_wait_seconds` — and after `produce_timeout` gets
//! [`BusError::Full`] naming the group behind. A group stops counting when
//! its last consumer is dropped (an investor removed, a sink stopped); what
//! is trimmed before it comes back is counted in `stockd_messages_missed`
//! and logged when it does.

use std::collections::{HashMap, VecDeque};
use std::hash::Hasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Bus, BusError, Consumer, Delivered, Message, PartitionLag, Positions, Receipt, Record, TopicSpec};
use crate::metrics::Metrics;

/// Messages kept per topic by default.
pub const DEFAULT_RETENTION: usize = 1_000_000;

/// How long a producer waits for room by default before it gets
/// [`BusError::Full`].
pub const DEFAULT_PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a waiting producer says so in the log.
const WAIT_WARNING_PERIOD: Duration = Duration::from_secs(10);

/// The embedded bus. Cheap to clone; clones share the topics.
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

struct Inner {
    /// Unique per bus instance (process and creation time).
    instance: String,
    retention: usize,
    produce_timeout: Duration,
    metrics: Metrics,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Committed offsets: (group, topic, partition) → next offset.
    committed: Mutex<HashMap<(String, String, i32), i64>>,
    /// Signalled whenever messages are appended to any topic.
    appended: Notify,
    /// Signalled whenever a consumer reads (room may have been made).
    read: Notify,
    /// Ids of consumers, to register their positions.
    consumers: AtomicU64,
    /// When a producer last logged that it waits for room: one line per
    /// period for the whole bus, however many producers wait (a thousand
    /// investors held back at once would log a thousand).
    wait_logged: Mutex<Option<Instant>>,
}

impl Inner {
    /// Whether this producer logs its wait (no other did within the
    /// period).
    fn claim_wait_log(&self) -> bool {
        let mut logged = self.wait_logged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = logged.is_none_or(|at| at.elapsed() >= WAIT_WARNING_PERIOD);
        if due {
            *logged = Some(Instant::now());
        }
        due
    }
}

struct Topic {
    name: Arc<str>,
    partitions: Vec<Mutex<PartitionLog>>,
}

struct PartitionLog {
    /// The offset of `messages[0]`.
    start: i64,
    messages: VecDeque<Stored>,
    capacity: usize,
    /// The live consumers' next offsets, by consumer id.
    readers: HashMap<u64, Reader>,
    /// Every live reader is at or past this offset (a lower bound, raised
    /// lazily): messages below it may be trimmed without asking them again.
    read_by_all: i64,
}

struct Reader {
    group: Arc<str>,
    next: i64,
}

struct Stored {
    key: Option<Bytes>,
    value: Bytes,
}

/// A full partition whose oldest message a live consumer has not read.
struct Behind {
    group: Arc<str>,
    unread: i64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code path leaves the data inconsistent on panic: recover.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PartitionLog {
    fn end(&self) -> i64 {
        self.start + self.messages.len() as i64
    }

    /// Makes room for one message, trimming the oldest if every live reader
    /// has read it; else says who is behind.
    fn make_room(&mut self) -> Result<(), Behind> {
        if self.messages.len() < self.capacity {
            return Ok(());
        }
        if self.read_by_all <= self.start {
            self.read_by_all = self.readers.values().map(|r| r.next).min().unwrap_or(i64::MAX);
        }
        if self.read_by_all <= self.start {
            let slowest = self.readers.values().min_by_key(|r| r.next).expect("a reader holds the oldest message");
            return Err(Behind { group: Arc::clone(&slowest.group), unread: self.end() - slowest.next });
        }
        self.messages.pop_front();
        self.start += 1;
        Ok(())
    }

    fn push(&mut self, key: Option<Bytes>, value: Bytes) -> i64 {
        self.messages.push_back(Stored { key, value });
        self.end() - 1
    }
}

impl Default for MemoryBus {
    fn default() -> Self {
        MemoryBus::new(DEFAULT_RETENTION)
    }
}

impl MemoryBus {
    /// A bus keeping `retention` messages per topic, with the default
    /// produce timeout and metrics of its own.
    pub fn new(retention: usize) -> Self {
        MemoryBus::with(retention, DEFAULT_PRODUCE_TIMEOUT, Metrics::new())
    }

    /// A bus keeping `retention` messages per topic, whose producers wait up
    /// to `produce_timeout` for room, counting into `metrics`.
    pub fn with(retention: usize, produce_timeout: Duration, metrics: Metrics) -> Self {
        MemoryBus {
            inner: Arc::new(Inner {
                instance: new_instance_id(),
                retention: retention.max(1),
                produce_timeout,
                metrics,
                topics: RwLock::new(HashMap::new()),
                committed: Mutex::new(HashMap::new()),
                appended: Notify::new(),
                read: Notify::new(),
                consumers: AtomicU64::new(0),
                wait_logged: Mutex::new(None),
            }),
        }
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>, BusError> {
        let topics = self.inner.topics.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        topics.get(name).cloned().ok_or_else(|| BusError::UnknownTopic(name.to_string()))
    }

    /// Appends `records` (all of one partition) in order, waiting for room
    /// while a live consumer is behind; returns the last offset.
    async fn append(
        &self,
        topic: &Topic,
        partition: usize,
        records: impl IntoIterator<Item = (Option<Bytes>, Bytes)>,
    ) -> Result<i64, BusError> {
        let mut records = records.into_iter().peekable();
        let mut last = -1;
        let mut waiting_since: Option<Instant> = None;
        let mut warned_at = Instant::now();
        loop {
            // Register for wake-ups before looking, so that a read in
            // between is not missed.
            let read = self.inner.read.notified();
            tokio::pin!(read);
            read.as_mut().enable();
            let (appended, behind) = {
                let mut log = lock(&topic.partitions[partition]);
                let mut appended = 0;
                let mut behind = None;
                while records.peek().is_some() {
                    if let Err(slow) = log.make_room() {
                        behind = Some(slow);
                        break;
                    }
                    let (key, value) = records.next().expect("peeked");
                    last = log.push(key, value);
                    appended += 1;
                }
                (appended, behind)
            };
            if appended > 0 {
                self.inner.appended.notify_waiters();
            }
            let Some(behind) = behind else {
                if let Some(since) = waiting_since {
                    self.inner.metrics.produce_wait(since.elapsed());
                }
                return Ok(last);
            };
            let since = *waiting_since.get_or_insert_with(Instant::now);
            let waited = since.elapsed();
            if waited >= self.inner.produce_timeout {
                self.inner.metrics.produce_wait(waited);
                return Err(BusError::Full {
                    topic: topic.name.to_string(),
                    group: behind.group.to_string(),
                    unread: behind.unread,
                    waited,
                });
            }
            if warned_at.elapsed() >= WAIT_WARNING_PERIOD {
                warned_at = Instant::now();
                if self.inner.claim_wait_log() {
                    tracing::warn!(
                        topic = %topic.name, partition, group = %behind.group,
                        "a producer has waited {:.0} s for room: consumer group {} has {} messages to read \
                         (one line per {} s for every producer held back)",
                        waited.as_secs_f64(), behind.group, behind.unread, WAIT_WARNING_PERIOD.as_secs()
                    );
                }
            }
            let _ = tokio::time::timeout((self.inner.produce_timeout - waited).min(WAIT_WARNING_PERIOD), read).await;
        }
    }
}

/// Whether the bus a checkpoint names (see [`Bus::identity`]) kept its
/// messages only in its process (a memory bus): what it held unread died
/// with the process.
pub fn lost_with_its_process(identity: &str) -> bool {
    identity.starts_with(IDENTITY_PREFIX)
}

/// How a memory bus's identity begins.
const IDENTITY_PREFIX: &str = "memory:";

/// An id no other bus instance has: the process, the time, a counter.
fn new_instance_id() -> String {
    static CREATED: AtomicU64 = AtomicU64::new(0);
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}-{}-{}", std::process::id(), since_epoch.as_nanos(), CREATED.fetch_add(1, Ordering::Relaxed))
}

/// The partition of `key`: a stable hash (FNV-1a) modulo the partitions.
fn partition_of(key: &str, partitions: usize) -> usize {
    let mut hasher = Fnv1a::default();
    hasher.write(key.as_bytes());
    (hasher.finish() % partitions as u64) as usize
}

struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl Bus for MemoryBus {
    type Consumer = MemoryConsumer;

    fn identity(&self) -> String {
        format!("{IDENTITY_PREFIX}{}", self.inner.instance)
    }

    async fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), BusError> {
        let mut topics = self.inner.topics.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        for spec in specs {
            if spec.partitions < 1 {
                return Err(BusError::Invalid(format!("topic {} needs at least one partition", spec.name)));
            }
            topics.entry(spec.name.clone()).or_insert_with(|| {
                let capacity = (self.inner.retention / spec.partitions as usize).max(1);
                Arc::new(Topic {
                    name: spec.name.as_str().into(),
                    partitions: (0..spec.partitions)
                        .map(|_| {
                            Mutex::new(PartitionLog {
                                start: 0,
                                messages: VecDeque::new(),
                                capacity,
                                readers: HashMap::new(),
                                read_by_all: 0,
                            })
                        })
                        .collect(),
                })
            });
        }
        Ok(())
    }

    async fn topics(&self) -> Result<Vec<(String, i32)>, BusError> {
        let topics = self.inner.topics.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut list: Vec<(String, i32)> =
            topics.values().map(|t| (t.name.to_string(), t.partitions.len() as i32)).collect();
        list.sort();
        Ok(list)
    }

    async fn produce(&self, topic: &str, key: &str, value: Vec<u8>) -> Result<Delivered, BusError> {
        let topic = self.topic(topic)?;
        let partition = partition_of(key, topic.partitions.len());
        let record = (Some(Bytes::copy_from_slice(key.as_bytes())), Bytes::from(value));
        let offset = self.append(&topic, partition, [record]).await?;
        Ok(Delivered { partition: partition as i32, offset })
    }

    async fn produce_batch(&self, topic: &str, records: Vec<Record>) -> Result<(), BusError> {
        let topic = self.topic(topic)?;
        let partitions = topic.partitions.len();
        let mut by_partition: Vec<Vec<Record>> = (0..partitions).map(|_| Vec::new()).collect();
        if partitions == 1 {
            by_partition[0] = records;
        } else {
            for record in records {
                by_partition[partition_of(&record.key, partitions)].push(record);
            }
        }
        for (partition, records) in by_partition.into_iter().enumerate().filter(|(_, r)| !r.is_empty()) {
            let records = records.into_iter().map(|r| (Some(Bytes::from(r.key.into_bytes())), Bytes::from(r.value)));
            self.append(&topic, partition, records).await?;
        }
        Ok(())
    }

    /// Per partition, the offset after the last message stored.
    fn receipt(&self, topic: &str) -> Receipt {
        let Ok(topic) = self.topic(topic) else { return Receipt::default() };
        Receipt(topic.partitions.iter().map(|partition| lock(partition).end()).collect())
    }

    fn is_settled(&self, group: &str, topic: &str, receipt: &Receipt) -> bool {
        let committed = lock(&self.inner.committed);
        receipt.0.iter().enumerate().all(|(partition, &end)| {
            end == 0
                || committed
                    .get(&(group.to_string(), topic.to_string(), partition as i32))
                    .is_some_and(|&next| next >= end)
        })
    }

    fn consumer(&self, group: &str, topics: &[&str]) -> Result<MemoryConsumer, BusError> {
        self.consumer_from(group, topics, false)
    }

    fn tail_consumer(&self, group: &str, topics: &[&str]) -> Result<MemoryConsumer, BusError> {
        self.consumer_from(group, topics, true)
    }
}

impl MemoryBus {
    /// A consumer in `group`, from the group's committed offsets (or the
    /// oldest message kept), or from the end of each partition when
    /// `from_end` (a tail consumer, which producers never wait for).
    fn consumer_from(&self, group: &str, topics: &[&str], from_end: bool) -> Result<MemoryConsumer, BusError> {
        let topics = topics.iter().map(|name| self.topic(name)).collect::<Result<Vec<_>, _>>()?;
        let id = self.inner.consumers.fetch_add(1, Ordering::Relaxed);
        let group: Arc<str> = group.into();
        let committed = lock(&self.inner.committed).clone();
        let mut positions = Vec::with_capacity(topics.len());
        for topic in &topics {
            let mut starts = Vec::with_capacity(topic.partitions.len());
            for (p, partition) in topic.partitions.iter().enumerate() {
                let mut log = lock(partition);
                let key = (group.to_string(), topic.name.to_string(), p as i32);
                let end = log.start + log.messages.len() as i64;
                let mut next = if from_end { end } else { committed.get(&key).copied().unwrap_or(log.start) };
                if next < log.start {
                    let missed = log.start - next;
                    self.inner.metrics.messages_missed(&group, missed as u64);
                    tracing::warn!(
                        topic = %topic.name, partition = p, group = %group,
                        "consumer group {group} missed {missed} messages: they were trimmed while it had no consumer"
                    );
                    next = log.start;
                }
                // A tail consumer is a live view: it never holds producers
                // back (it skips ahead instead, see `poll`).
                if !from_end {
                    log.readers.insert(id, Reader { group: Arc::clone(&group), next });
                    log.read_by_all = log.read_by_all.min(next);
                }
                starts.push(next);
            }
            positions.push(starts);
        }
        Ok(MemoryConsumer { bus: self.clone(), id, topics, positions, group, cursor: 0 })
    }
}

/// A consumer of the memory bus. While it exists, its group holds back what
/// it has not read; dropping it lets go.
pub struct MemoryConsumer {
    bus: MemoryBus,
    /// Its id in the partitions' reader tables.
    id: u64,
    group: Arc<str>,
    topics: Vec<Arc<Topic>>,
    /// Per topic and partition, the next offset to read.
    positions: Vec<Vec<i64>>,
    /// Round-robin start, so that one busy partition cannot starve others.
    cursor: usize,
}

impl MemoryConsumer {
    /// Takes up to `max` available messages, advancing the positions.
    fn take(&mut self, max: usize) -> Vec<Message> {
        let mut batch = Vec::new();
        let slots: Vec<(usize, usize)> = self
            .topics
            .iter()
            .enumerate()
            .flat_map(|(t, topic)| (0..topic.partitions.len()).map(move |p| (t, p)))
            .collect();
        let count = slots.len();
        for i in 0..count {
            if batch.len() >= max {
                break;
            }
            let (t, p) = slots[(self.cursor + i) % count];
            let topic = Arc::clone(&self.topics[t]);
            let mut log = lock(&topic.partitions[p]);
            // A registered reader holds back trimming, so only a tail
            // consumer can find its position trimmed: it skips ahead.
            let position = self.positions[t][p];
            if position < log.start {
                let skipped = log.start - position;
                self.bus.inner.metrics.messages_missed(&self.group, skipped as u64);
                tracing::warn!(topic = %topic.name, partition = p, group = %self.group, "{skipped} messages trimmed before this reader read them: skipped");
            }
            let next = position.max(log.start);
            let from = (next - log.start) as usize;
            let take = (max - batch.len()).min(log.messages.len().saturating_sub(from));
            for (i, stored) in log.messages.range(from..from + take).enumerate() {
                batch.push(Message {
                    topic: Arc::clone(&topic.name),
                    partition: p as i32,
                    offset: next + i as i64,
                    key: stored.key.clone(),
                    value: stored.value.clone(),
                });
            }
            let next = next + take as i64;
            self.positions[t][p] = next;
            if let Some(reader) = log.readers.get_mut(&self.id) {
                reader.next = next;
            }
        }
        self.cursor = (self.cursor + 1) % count.max(1);
        if !batch.is_empty() {
            self.bus.inner.read.notify_waiters();
        }
        batch
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        for topic in &self.topics {
            for partition in &topic.partitions {
                lock(partition).readers.remove(&self.id);
            }
        }
        self.bus.inner.read.notify_waiters();
    }
}

impl Consumer for MemoryConsumer {
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
        let deadline = Instant::now() + timeout;
        loop {
            // Register for wake-ups before looking, so that a message
            // appended in between is not missed.
            let bus = self.bus.clone();
            let appended = bus.inner.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let batch = self.take(max.max(1));
            if !batch.is_empty() {
                return Ok(batch);
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn commit(&mut self, positions: &Positions) -> Result<(), BusError> {
        let mut committed = lock(&self.bus.inner.committed);
        for (topic, partition, next) in positions.iter() {
            committed.insert((self.group.to_string(), topic.to_string(), partition), next);
        }
        Ok(())
    }

    /// Every partition, held: a memory consumer reads them all. Measured
    /// at the call.
    fn partition_lags(&self) -> impl Future<Output = Option<Vec<PartitionLag>>> + Send + 'static {
        let mut lags = Vec::new();
        for (t, topic) in self.topics.iter().enumerate() {
            for (p, partition) in topic.partitions.iter().enumerate() {
                let log = lock(partition);
                lags.push(PartitionLag {
                    topic: Arc::clone(&topic.name),
                    partition: p as i32,
                    unread: (log.end() - self.positions[t][p].max(log.start)).max(0) as u64,
                    held: true,
                    committed: None,
                });
            }
        }
        std::future::ready(Some(lags))
    }

    /// Every partition: a memory consumer reads them all.
    fn assigned(&self, _topic: &str) -> Option<Vec<i32>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retention_drops_the_oldest_and_a_late_group_skips_ahead() {
        let bus = MemoryBus::new(10);
        bus.create_topics(&[TopicSpec { name: "T".into(), partitions: 1, replication: 1 }]).await.unwrap();
        let records = (0..25).map(|i| Record { key: "k".into(), value: vec![i] }).collect();
        bus.produce_batch("T", records).await.unwrap();
        let mut consumer = bus.consumer("late", &["T"]).unwrap();
        assert_eq!(consumer.lag().await, Some(10));
        let batch = consumer.poll(100, Duration::from_millis(10)).await.unwrap();
        let offsets: Vec<i64> = batch.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, (15..25).collect::<Vec<_>>());
        assert_eq!(batch[0].value.as_ref(), [15]);
        assert_eq!(consumer.lag().await, Some(0));
    }

    fn records(range: std::ops::Range<u8>) -> Vec<Record> {
        range.map(|i| Record { key: "k".into(), value: vec![i] }).collect()
    }

    async fn bus_with_topic(retention: usize, produce_timeout: Duration) -> (MemoryBus, Metrics) {
        let metrics = Metrics::new();
        let bus = MemoryBus::with(retention, produce_timeout, metrics.clone());
        bus.create_topics(&[TopicSpec { name: "T".into(), partitions: 1, replication: 1 }]).await.unwrap();
        (bus, metrics)
    }

    #[tokio::test]
    async fn a_tail_consumer_reads_from_the_end_and_never_holds_the_producer_back() {
        let (bus, metrics) = bus_with_topic(10, Duration::from_millis(200)).await;
        bus.produce_batch("T", records(0..3)).await.unwrap();
        let mut tail = bus.tail_consumer("view", &["T"]).unwrap();
        bus.produce_batch("T", records(3..5)).await.unwrap();
        let batch = tail.poll(100, Duration::from_millis(10)).await.unwrap();
        let values: Vec<u8> = batch.iter().map(|m| m.value[0]).collect();
        assert_eq!(values, [3, 4], "only what was published after it started");
        // It reads nothing while 20 more are published: the producer does
        // not wait for it, and it skips what was trimmed, counted.
        tokio::time::timeout(Duration::from_millis(100), bus.produce_batch("T", records(5..25)))
            .await
            .expect("the producer never waits for a tail consumer")
            .unwrap();
        let batch = tail.poll(100, Duration::from_millis(10)).await.unwrap();
        let values: Vec<u8> = batch.iter().map(|m| m.value[0]).collect();
        assert_eq!(values, (15..25).collect::<Vec<u8>>());
        assert_eq!(metrics.messages_missed_total(), 10);
    }

    #[tokio::test]
    async fn a_live_consumer_behind_holds_the_producer_back_and_loses_nothing() {
        let (bus, metrics) = bus_with_topic(10, Duration::from_secs(30)).await;
        let mut consumer = bus.consumer("slow", &["T"]).unwrap();
        let producer = bus.clone();
        let produced = tokio::spawn(async move { producer.produce_batch("T", records(0..25)).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!produced.is_finished(), "the producer waits: the consumer has read nothing");
        assert_eq!(consumer.lag().await, Some(10));
        let mut values = Vec::new();
        while values.len() < 25 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            for message in consumer.poll(3, Duration::from_secs(5)).await.unwrap() {
                values.push(message.value[0]);
            }
        }
        produced.await.unwrap().unwrap();
        assert_eq!(values, (0..25).collect::<Vec<u8>>(), "every message, in order");
        assert!(metrics.encode().contains("stockd_produce_wait_seconds_count 1"), "{}", metrics.encode());
    }

    #[tokio::test]
    async fn a_stuck_consumer_makes_the_producer_fail_loudly_after_the_timeout() {
        let (bus, _metrics) = bus_with_topic(10, Duration::from_millis(200)).await;
        let _stuck = bus.consumer("app1", &["T"]).unwrap();
        let error = bus.produce_batch("T", records(0..25)).await.unwrap_err();
        assert!(matches!(&error, BusError::Full { group, unread: 10, .. } if group == "app1"), "{error}");
        assert!(error.to_string().contains("consumer group app1 has 10 messages to read"), "{error}");
    }

    #[tokio::test]
    async fn a_group_without_consumers_stops_counting_and_its_missed_messages_are_counted() {
        let (bus, metrics) = bus_with_topic(10, Duration::from_millis(200)).await;
        let mut consumer = bus.consumer("investor-7", &["T"]).unwrap();
        bus.produce_batch("T", records(0..5)).await.unwrap();
        let read = consumer.poll(100, Duration::from_millis(10)).await.unwrap();
        let mut positions = Positions::new();
        read.iter().for_each(|m| positions.advance(m));
        consumer.commit(&positions).await.unwrap();
        drop(consumer);
        bus.produce_batch("T", records(5..25)).await.expect("nobody holds the producer back");
        let mut back = bus.consumer("investor-7", &["T"]).unwrap();
        let batch = back.poll(100, Duration::from_millis(10)).await.unwrap();
        assert_eq!(batch.first().map(|m| m.offset), Some(15), "the oldest message still held");
        assert!(
            metrics.encode().contains("stockd_messages_missed_total{group=\"investor-7\"} 10"),
            "{}",
            metrics.encode()
        );
    }

    #[tokio::test]
    async fn a_waiting_consumer_is_woken_by_a_producer() {
        let bus = MemoryBus::default();
        bus.create_topics(&[TopicSpec { name: "T".into(), partitions: 2, replication: 1 }]).await.unwrap();
        let mut consumer = bus.consumer("g", &["T"]).unwrap();
        let producer = bus.clone();
        let started = std::time::Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            producer.produce("T", "IBM", b"x".to_vec()).await.unwrap();
        });
        let batch = consumer.poll(10, Duration::from_secs(10)).await.unwrap();
        assert_eq!(batch.len(), 1);
        assert!(started.elapsed() < Duration::from_secs(5), "woken, not timed out");
    }

    #[tokio::test]
    async fn a_receipt_is_settled_once_the_group_commits_past_it() {
        let bus = MemoryBus::default();
        bus.create_topics(&[TopicSpec { name: "T".into(), partitions: 2, replication: 1 }]).await.unwrap();
        let mut sink = bus.consumer("app1", &["T"]).unwrap();
        bus.produce_batch("T", (0..6).map(|i| Record { key: format!("k{i}"), value: vec![i] }).collect())
            .await
            .unwrap();
        let receipt = bus.receipt("T");
        bus.produce("T", "late", vec![9]).await.unwrap();
        assert!(!bus.is_settled("app1", "T", &receipt), "nothing committed yet");
        let mut positions = Positions::new();
        let read = sink.poll(100, Duration::from_millis(10)).await.unwrap();
        read.iter().filter(|m| m.value[0] < 6).for_each(|m| positions.advance(m));
        sink.commit(&positions).await.unwrap();
        assert!(bus.is_settled("app1", "T", &receipt), "committed past every message the receipt covers");
        assert!(!bus.is_settled("app1", "T", &bus.receipt("T")), "not past the later message");
        assert!(!bus.is_settled("other", "T", &receipt), "per group");
    }

    #[tokio::test]
    async fn producing_to_an_unknown_topic_fails() {
        let bus = MemoryBus::default();
        assert!(matches!(bus.produce("nope", "k", vec![]).await, Err(BusError::UnknownTopic(t)) if t == "nope"));
        assert!(bus.consumer("g", &["nope"]).is_err());
    }
}
