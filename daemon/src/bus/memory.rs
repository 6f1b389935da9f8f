//! The embedded bus: an in-process log per topic-partition.
//!
//! Offsets, committed offsets per group, several independent groups per
//! topic, and waiting consumers woken by producers (no busy polling), as on
//! Kafka. Each partition keeps at most its share of the topic's retention
//! (1,000,000 messages per topic by default); a consumer that falls behind
//! the retained messages skips to the oldest one and the loss is logged.
//! Unlike Kafka, the consumers of one group do not split the partitions
//! between them: each reads them all (stockd runs one consumer per group).

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use super::{Bus, BusError, Consumer, Delivered, Message, Positions, Record, TopicSpec};

/// Messages kept per topic by default.
pub const DEFAULT_RETENTION: usize = 1_000_000;

/// The embedded bus. Cheap to clone; clones share the topics.
#[derive(Clone)]
pub struct MemoryBus {
    inner: Arc<Inner>,
}

struct Inner {
    /// Unique per bus instance (process and creation time).
    instance: String,
    retention: usize,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Committed offsets: (group, topic, partition) → next offset.
    committed: Mutex<HashMap<(String, String, i32), i64>>,
    /// Signalled whenever messages are appended to any topic.
    appended: Notify,
}

struct Topic {
    name: Arc<str>,
    partitions: Vec<Mutex<PartitionLog>>,
}

struct PartitionLog {
    /// The offset of `messages[0]`.
    start: i64,
    messages: std::collections::VecDeque<Stored>,
    capacity: usize,
}

struct Stored {
    key: Option<Bytes>,
    value: Bytes,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code path leaves the data inconsistent on panic: recover.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PartitionLog {
    fn end(&self) -> i64 {
        self.start + self.messages.len() as i64
    }

    fn append(&mut self, key: Option<Bytes>, value: Bytes) -> i64 {
        if self.messages.len() == self.capacity {
            self.messages.pop_front();
            self.start += 1;
        }
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
    /// A bus keeping at most `retention` messages per topic.
    pub fn new(retention: usize) -> Self {
        MemoryBus {
            inner: Arc::new(Inner {
                instance: new_instance_id(),
                retention: retention.max(1),
                topics: RwLock::new(HashMap::new()),
                committed: Mutex::new(HashMap::new()),
                appended: Notify::new(),
            }),
        }
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>, BusError> {
        let topics = self.inner.topics.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        topics.get(name).cloned().ok_or_else(|| BusError::UnknownTopic(name.to_string()))
    }
}

/// An id no other bus instance has: the process, the time, a counter.
fn new_instance_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
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
        format!("memory:{}", self.inner.instance)
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
                        .map(|_| Mutex::new(PartitionLog { start: 0, messages: Default::default(), capacity }))
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
        let offset =
            lock(&topic.partitions[partition]).append(Some(Bytes::copy_from_slice(key.as_bytes())), value.into());
        self.inner.appended.notify_waiters();
        Ok(Delivered { partition: partition as i32, offset })
    }

    async fn produce_batch(&self, topic: &str, records: Vec<Record>) -> Result<(), BusError> {
        let topic = self.topic(topic)?;
        let partitions = topic.partitions.len();
        if partitions == 1 {
            let mut log = lock(&topic.partitions[0]);
            for record in records {
                log.append(Some(Bytes::from(record.key.into_bytes())), record.value.into());
            }
        } else {
            let mut by_partition: Vec<Vec<Record>> = (0..partitions).map(|_| Vec::new()).collect();
            for record in records {
                by_partition[partition_of(&record.key, partitions)].push(record);
            }
            for (partition, records) in by_partition.into_iter().enumerate().filter(|(_, r)| !r.is_empty()) {
                let mut log = lock(&topic.partitions[partition]);
                for record in records {
                    log.append(Some(Bytes::from(record.key.into_bytes())), record.value.into());
                }
            }
        }
        self.inner.appended.notify_waiters();
        Ok(())
    }

    fn consumer(&self, group: &str, topics: &[&str]) -> Result<MemoryConsumer, BusError> {
        let topics = topics.iter().map(|name| self.topic(name)).collect::<Result<Vec<_>, _>>()?;
        let positions = topics.iter().map(|t| vec![None; t.partitions.len()]).collect();
        Ok(MemoryConsumer { bus: self.clone(), group: group.to_string(), topics, positions, cursor: 0 })
    }
}

/// A consumer of the memory bus.
pub struct MemoryConsumer {
    bus: MemoryBus,
    group: String,
    topics: Vec<Arc<Topic>>,
    /// Per topic and partition, the next offset to read (None until first
    /// read: then the committed offset or the earliest).
    positions: Vec<Vec<Option<i64>>>,
    /// Round-robin start, so that one busy partition cannot starve others.
    cursor: usize,
}

impl MemoryConsumer {
    fn start_position(&self, topic: &Topic, partition: usize, log: &PartitionLog) -> i64 {
        let committed = lock(&self.bus.inner.committed);
        committed.get(&(self.group.clone(), topic.name.to_string(), partition as i32)).copied().unwrap_or(log.start)
    }

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
            let log = lock(&topic.partitions[p]);
            let mut next = match self.positions[t][p] {
                Some(next) => next,
                None => self.start_position(&topic, p, &log),
            };
            if next < log.start {
                tracing::warn!(
                    topic = %topic.name, partition = p, group = %self.group,
                    "{} messages were dropped by retention before this group read them",
                    log.start - next
                );
                next = log.start;
            }
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
            self.positions[t][p] = Some(next + take as i64);
        }
        self.cursor = (self.cursor + 1) % count.max(1);
        batch
    }
}

impl Consumer for MemoryConsumer {
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
        let deadline = tokio::time::Instant::now() + timeout;
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
            committed.insert((self.group.clone(), topic.to_string(), partition), next);
        }
        Ok(())
    }

    async fn lag(&mut self) -> Option<u64> {
        let mut lag = 0;
        for (t, topic) in self.topics.iter().enumerate() {
            for (p, partition) in topic.partitions.iter().enumerate() {
                let log = lock(partition);
                let next = match self.positions[t][p] {
                    Some(next) => next,
                    None => self.start_position(topic, p, &log),
                };
                lag += (log.end() - next.max(log.start)).max(0) as u64;
            }
        }
        Some(lag)
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
    async fn producing_to_an_unknown_topic_fails() {
        let bus = MemoryBus::default();
        assert!(matches!(bus.produce("nope", "k", vec![]).await, Err(BusError::UnknownTopic(t)) if t == "nope"));
        assert!(bus.consumer("g", &["nope"]).is_err());
    }
}
