//! The message bus: the seam between stockd's components and Kafka.
//!
//! A [`Bus`] produces keyed messages to topics and makes [`Consumer`]s that
//! read topics in a consumer group, from the group's committed offsets or
//! else from the earliest message, in batches, committing explicitly. Two
//! implementations pass the same conformance suite: [`MemoryBus`] (the
//! embedded default: one process, nothing to install) and [`KafkaBus`]
//! (`--brokers`).

mod kafka;
mod kafka_context;
mod lag;
mod memory;
mod positions;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use kafka::{KafkaBus, KafkaConsumer, KafkaSettings};
pub use lag::{Changes, LagProbe, PartitionLag, Stalled, Unread};
pub use memory::{DEFAULT_PRODUCE_TIMEOUT, DEFAULT_RETENTION, MemoryBus, MemoryConsumer, lost_with_its_process};
pub use positions::Positions;

/// A topic to create: its name, partitions and replication factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Number of partitions (≥ 1).
    pub partitions: i32,
    /// Replication factor (≥ 1; the memory bus ignores it).
    pub replication: i16,
}

/// A message to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The key; messages with the same key go to the same partition, in order.
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
}

/// A message read from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was read from.
    pub topic: Arc<str>,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its key, if any.
    pub key: Option<Bytes>,
    /// Its value.
    pub value: Bytes,
}

impl Message {
    /// The key as text (lossy), or "" when there is none.
    pub fn key_text(&self) -> std::borrow::Cow<'_, str> {
        self.key.as_deref().map(String::from_utf8_lossy).unwrap_or_default()
    }
}

/// Where a produced message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

/// A mark of everything produced to a topic up to some moment (per
/// partition, the offset after the last message), to ask later whether a
/// consumer group has made it durable ([`Bus::is_settled`]). Empty where
/// the bus keeps what it acknowledged durably itself (Kafka).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt(Vec<i64>);

/// A bus operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BusError {
    /// The topic does not exist (topics are created at start-up, never on
    /// produce).
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    /// The broker (or librdkafka) refused; `message` is theirs.
    #[error("kafka {operation} failed: {message}")]
    Kafka {
        /// What was being done, e.g. "produce to StockExchange".
        operation: String,
        /// The broker's or librdkafka's message.
        message: String,
    },
    /// The embedded bus had no room for the message within its produce
    /// timeout: a live consumer group has not read what it holds.
    #[error(
        "the embedded bus has no room on {topic}: consumer group {group} has {unread} messages to read \
         and made no room in {waited:?} (it is too slow or stuck)"
    )]
    Full {
        /// The topic.
        topic: String,
        /// The group furthest behind.
        group: String,
        /// The messages it has yet to read in the partition.
        unread: i64,
        /// How long the producer waited.
        waited: Duration,
    },
    /// The request is invalid (e.g. zero partitions).
    #[error("invalid request: {0}")]
    Invalid(String),
}

/// A message bus. Cheap to clone; clones share the connection.
pub trait Bus: Clone + Send + Sync + 'static {
    /// This bus's consumers.
    type Consumer: Consumer;

    /// Names this bus's offsets: checkpoints taken on one bus identity are
    /// not applied to another (a restarted memory bus starts again at
    /// offset 0). `memory:<instance>` or `kafka:cluster=<cluster id>`.
    fn identity(&self) -> String;

    /// Whether `stored`, an identity a checkpoint recorded, names this bus.
    fn is_identity(&self, stored: &str) -> bool {
        stored == self.identity()
    }

    /// Creates the topics that do not exist yet (existing ones are left as
    /// they are).
    fn create_topics(&self, topics: &[TopicSpec]) -> impl Future<Output = Result<(), BusError>> + Send;

    /// The topics and their partition counts.
    fn topics(&self) -> impl Future<Output = Result<Vec<(String, i32)>, BusError>> + Send;

    /// Produces one message and waits until it is stored.
    fn produce(
        &self,
        topic: &str,
        key: &str,
        value: Vec<u8>,
    ) -> impl Future<Output = Result<Delivered, BusError>> + Send;

    /// Produces many messages to one topic, pipelined, and waits until all
    /// are stored. Per key, order is kept.
    fn produce_batch(&self, topic: &str, records: Vec<Record>) -> impl Future<Output = Result<(), BusError>> + Send;

    /// A receipt for everything produced to `topic` so far (call it after
    /// `produce_batch` returns: the messages it stored are covered).
    fn receipt(&self, _topic: &str) -> Receipt {
        Receipt::default()
    }

    /// Whether consumer group `group` has committed, on every partition of
    /// `topic`, past what `receipt` covers: where the bus keeps messages
    /// only in this process (the memory bus), that is when they are safe
    /// from a crash, the group having made them durable. Always true where
    /// an acknowledged message is durable already (Kafka).
    fn is_settled(&self, _group: &str, _topic: &str, _receipt: &Receipt) -> bool {
        true
    }

    /// A consumer of `topics` in `group`, starting from the group's committed
    /// offsets, or from the earliest messages where it has none.
    fn consumer(&self, group: &str, topics: &[&str]) -> Result<Self::Consumer, BusError>;

    /// A consumer of `topics` in `group` (a group of its own, that never
    /// commits) that starts at the end of every partition: it reads what is
    /// published from now on. For live views: producers never wait for it
    /// (on the memory bus, a tail consumer that falls behind the retention
    /// skips ahead, counting what it skipped in `messages_missed`).
    fn tail_consumer(&self, group: &str, topics: &[&str]) -> Result<Self::Consumer, BusError>;
}

/// Reads topics in a consumer group.
pub trait Consumer: Send + 'static {
    /// The next messages (at most `max`), waiting up to `timeout` for the
    /// first one; an empty batch means none came in time. Messages of one
    /// partition come in offset order.
    fn poll(&mut self, max: usize, timeout: Duration) -> impl Future<Output = Result<Vec<Message>, BusError>> + Send;

    /// Commits `positions` (per partition, the offset of the next message to
    /// read) for the group: a consumer of the group made later starts there.
    fn commit(&mut self, positions: &Positions) -> impl Future<Output = Result<(), BusError>> + Send;

    /// Per partition of the consumer's topics, held by this consumer or
    /// not, the messages the group has yet to read (see [`PartitionLag`]),
    /// where the bus can tell. The measurement does not borrow the
    /// consumer, so it can run beside reading (see [`LagProbe`]): asking a
    /// broker takes round trips (about a second on tansu).
    fn partition_lags(&self) -> impl Future<Output = Option<Vec<PartitionLag>>> + Send + 'static;

    /// The group's messages yet to read, over every partition (see
    /// [`partition_lags`](Self::partition_lags)).
    fn lag(&self) -> impl Future<Output = Option<u64>> + Send + 'static {
        let lags = self.partition_lags();
        async move { lags.await.map(|lags| lags.iter().map(|lag| lag.unread).sum()) }
    }

    /// The partitions of `topic` the consumer group gives this consumer
    /// now, which change when members join or leave (a rebalance); `None`
    /// where the bus does not split partitions between a group's consumers
    /// (the memory bus: each reads them all), or cannot tell now.
    fn assigned(&self, topic: &str) -> Option<Vec<i32>>;
}
