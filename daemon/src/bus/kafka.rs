//! The Kafka bus, with rdkafka (bundled librdkafka).
//!
//! Producers are idempotent with `acks=all`; consumers never auto-commit and
//! start from the earliest offset when their group has none. Topics are
//! created through the admin client (they are never auto-created on
//! produce). An idempotent producer that hits a fatal error (librdkafka
//! refuses every later message) is replaced by a new one: the messages
//! in flight fail, and the next ones go through the new producer.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use bytes::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::producer::future_producer::OwnedDeliveryResult;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use super::kafka_context::QuietContext;
use super::{Bus, BusError, Consumer, Delivered, Message, PartitionLag, Positions, Record, TopicSpec};

/// How long a produce may wait for the broker before it fails.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long metadata and admin requests may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long asking the brokers for their cluster id may take.
const CLUSTER_ID_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// `host:port,host:port`.
    pub brokers: String,
    /// The client id the broker sees.
    pub client_id: String,
    /// How long a consumer may go silent before the group gives its
    /// partitions to another member: a killed process's partitions wait
    /// this long.
    pub session_timeout: Duration,
}

impl KafkaSettings {
    /// Settings for `brokers` with the default session timeout (10 s).
    pub fn new(brokers: impl Into<String>, client_id: impl Into<String>) -> Self {
        KafkaSettings { brokers: brokers.into(), client_id: client_id.into(), session_timeout: Duration::from_secs(10) }
    }
}

/// The Kafka bus. Cheap to clone; clones share the producer.
#[derive(Clone)]
pub struct KafkaBus {
    settings: Arc<KafkaSettings>,
    /// The producer, replaced after a fatal error.
    producer: Arc<RwLock<FutureProducer<QuietContext>>>,
    /// The cluster id the brokers reported when first asked (`None`: they
    /// did not).
    cluster: Arc<OnceLock<Option<String>>>,
}

fn kafka_error(operation: impl Into<String>, error: KafkaError) -> BusError {
    BusError::Kafka { operation: operation.into(), message: error.to_string() }
}

impl KafkaBus {
    /// Connects a producer to `settings.brokers` (lazily: a wrong address
    /// shows up as errors on the first requests).
    pub fn connect(settings: KafkaSettings) -> Result<Self, BusError> {
        let producer = new_producer(&settings)?;
        Ok(KafkaBus {
            settings: Arc::new(settings),
            producer: Arc::new(RwLock::new(producer)),
            cluster: Arc::new(OnceLock::new()),
        })
    }

    /// The current producer.
    fn producer(&self) -> FutureProducer<QuietContext> {
        self.producer.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// After a failed produce through `used`: if it failed because the
    /// producer hit a fatal error, replaces it (once, whichever clone of the
    /// bus notices first), saying so.
    fn replace_if_fatal(&self, used: &FutureProducer<QuietContext>) {
        let Some((code, reason)) = used.client().fatal_error() else { return };
        let mut current = self.producer.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.client().native_ptr() != used.client().native_ptr() {
            return;
        }
        match new_producer(&self.settings) {
            Ok(fresh) => {
                *current = fresh;
                tracing::error!(
                    "the Kafka producer hit a fatal error ({code}: {reason}): the messages in flight failed; \
                     continuing with a new producer"
                );
            }
            Err(error) => tracing::error!("the Kafka producer hit a fatal error ({code}: {reason}); {error}"),
        }
    }

    /// Makes the producer fail as librdkafka's fatal errors do (tests of
    /// the replacement).
    #[doc(hidden)]
    pub fn inject_fatal_error(&self) {
        let producer = self.producer();
        let reason = c"injected by a test";
        // SAFETY: the handle is live (`producer` holds it) and the reason
        // is a NUL-terminated string; librdkafka copies it.
        unsafe {
            rdkafka::bindings::rd_kafka_test_fatal_error(
                producer.client().native_ptr(),
                rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                reason.as_ptr(),
            );
        }
    }

    /// Asks the brokers for their cluster id, once (waiting up to
    /// [`CLUSTER_ID_TIMEOUT`]); called once a broker has answered.
    fn learn_cluster_id(&self) {
        self.cluster.get_or_init(|| {
            let id = self.producer().client().fetch_cluster_id(CLUSTER_ID_TIMEOUT).filter(|id| !id.is_empty());
            if id.is_none() {
                tracing::warn!(
                    "the brokers {} did not report a cluster id: naming the bus by their addresses",
                    self.settings.brokers
                );
            }
            id
        });
    }

    /// The brokers this bus talks to.
    pub fn brokers(&self) -> &str {
        &self.settings.brokers
    }
}

/// An idempotent producer with `acks=all`.
fn new_producer(settings: &KafkaSettings) -> Result<FutureProducer<QuietContext>, BusError> {
    base_config(settings)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", DELIVERY_TIMEOUT.as_millis().to_string())
        .create_with_context(QuietContext::default())
        .map_err(|e| kafka_error("producer set-up", e))
}

fn base_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &settings.brokers).set("client.id", &settings.client_id);
    // librdkafka's own debug contexts (e.g. `cgrp,fetch`), logged at debug
    // level under the `librdkafka` target (librdkafka drops its debug lines
    // below its own log level: raised with them).
    if let Ok(contexts) = std::env::var("STOCKD_KAFKA_DEBUG") {
        config.set("debug", contexts).set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
    }
    config
}

impl Bus for KafkaBus {
    type Consumer = KafkaConsumer;

    /// `kafka:cluster=<id>`, the cluster id the brokers report: the same
    /// whichever broker addresses are given. Learnt when the topics are
    /// created (start-up does that first, waiting for a broker); before
    /// that, or if the brokers report none, `kafka:<brokers>`.
    fn identity(&self) -> String {
        match self.cluster.get() {
            Some(Some(id)) => format!("kafka:cluster={id}"),
            _ => format!("kafka:{}", self.settings.brokers),
        }
    }

    /// Also the identity stockd used before it asked for the cluster id,
    /// `kafka:<brokers>`, when the brokers are given the same way.
    fn is_identity(&self, stored: &str) -> bool {
        stored == self.identity() || stored == format!("kafka:{}", self.settings.brokers)
    }

    async fn create_topics(&self, specs: &[TopicSpec]) -> Result<(), BusError> {
        let admin: AdminClient<QuietContext> = base_config(&self.settings)
            .create_with_context(QuietContext::default())
            .map_err(|e| kafka_error("admin client set-up", e))?;
        let new_topics: Vec<NewTopic> = specs
            .iter()
            .map(|s| NewTopic::new(&s.name, s.partitions, TopicReplication::Fixed(i32::from(s.replication))))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Timeout::After(REQUEST_TIMEOUT)));
        let results = admin.create_topics(&new_topics, &options).await.map_err(|e| kafka_error("create topics", e))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(BusError::Kafka {
                        operation: format!("create topic {topic}"),
                        message: code.to_string(),
                    });
                }
            }
        }
        // The brokers answer: ask them for the cluster id now (it names
        // this bus), off the runtime.
        let bus = self.clone();
        let _ = tokio::task::spawn_blocking(move || bus.learn_cluster_id()).await;
        Ok(())
    }

    async fn topics(&self) -> Result<Vec<(String, i32)>, BusError> {
        let producer = self.producer();
        let metadata = tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, REQUEST_TIMEOUT))
            .await
            .map_err(|e| BusError::Kafka { operation: "list topics".into(), message: e.to_string() })?
            .map_err(|e| kafka_error("list topics", e))?;
        let mut topics: Vec<(String, i32)> =
            metadata.topics().iter().map(|t| (t.name().to_string(), t.partitions().len() as i32)).collect();
        topics.sort();
        Ok(topics)
    }

    async fn produce(&self, topic: &str, key: &str, value: Vec<u8>) -> Result<Delivered, BusError> {
        let record = FutureRecord::to(topic).key(key).payload(&value);
        let producer = self.producer();
        match producer.send(record, Timeout::After(DELIVERY_TIMEOUT)).await {
            Ok(delivery) => Ok(Delivered { partition: delivery.partition, offset: delivery.offset }),
            Err((error, _)) => {
                self.replace_if_fatal(&producer);
                Err(kafka_error(format!("produce to {topic}"), error))
            }
        }
    }

    async fn produce_batch(&self, topic: &str, records: Vec<Record>) -> Result<(), BusError> {
        let producer = self.producer();
        let sent = send_all(&producer, topic, &records).await;
        if sent.is_err() {
            self.replace_if_fatal(&producer);
        }
        sent
    }

    fn consumer(&self, group: &str, topics: &[&str]) -> Result<KafkaConsumer, BusError> {
        self.consumer_from(group, topics, "earliest")
    }

    fn tail_consumer(&self, group: &str, topics: &[&str]) -> Result<KafkaConsumer, BusError> {
        // A new group has no committed offsets: "latest" applies.
        self.consumer_from(group, topics, "latest")
    }
}

impl KafkaBus {
    /// A consumer in `group`, starting at `reset` ("earliest" or "latest")
    /// where the group has no committed offset.
    fn consumer_from(&self, group: &str, topics: &[&str], reset: &str) -> Result<KafkaConsumer, BusError> {
        let consumer: StreamConsumer<QuietContext> = base_config(&self.settings)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", reset)
            .set("enable.partition.eof", "false")
            // A topic created after subscribing is seen within 10 s, not 5 min.
            .set("topic.metadata.refresh.interval.ms", "10000")
            .set("session.timeout.ms", self.settings.session_timeout.as_millis().to_string())
            .set("heartbeat.interval.ms", (self.settings.session_timeout.as_millis() / 3).max(100).to_string())
            .create_with_context(QuietContext::for_group(group))
            .map_err(|e| kafka_error("consumer set-up", e))?;
        consumer.subscribe(topics).map_err(|e| kafka_error(format!("subscribe to {}", topics.join(",")), e))?;
        Ok(KafkaConsumer { consumer: Arc::new(consumer), topics: topics.iter().map(|t| t.to_string()).collect() })
    }
}

/// Sends `records` to `topic` through `producer`, pipelined, and waits for
/// every delivery.
async fn send_all(producer: &FutureProducer<QuietContext>, topic: &str, records: &[Record]) -> Result<(), BusError> {
    let mut pending = VecDeque::with_capacity(records.len());
    for record in records {
        let mut future_record = FutureRecord::to(topic).key(&record.key).payload(&record.value);
        loop {
            match producer.send_result(future_record) {
                Ok(delivery) => {
                    pending.push_back(delivery);
                    break;
                }
                // The local queue is full: wait for the oldest delivery.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    future_record = returned;
                    match pending.pop_front() {
                        Some(oldest) => check_delivery(topic, oldest.await)?,
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err((error, _)) => return Err(kafka_error(format!("produce to {topic}"), error)),
            }
        }
    }
    for delivery in pending {
        check_delivery(topic, delivery.await)?;
    }
    Ok(())
}

/// The outcome of one pipelined delivery (`Err(_)` outside: the producer
/// was dropped before answering).
fn check_delivery<Dropped>(topic: &str, outcome: Result<OwnedDeliveryResult, Dropped>) -> Result<(), BusError> {
    match outcome {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((error, _))) => Err(kafka_error(format!("produce to {topic}"), error)),
        Err(_) => Err(BusError::Kafka { operation: format!("produce to {topic}"), message: "producer dropped".into() }),
    }
}

/// A Kafka consumer in a group.
pub struct KafkaConsumer {
    consumer: Arc<StreamConsumer<QuietContext>>,
    topics: Vec<String>,
}

fn detach(message: &BorrowedMessage<'_>) -> Message {
    Message {
        topic: message.topic().into(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(Bytes::copy_from_slice),
        value: message.payload().map(Bytes::copy_from_slice).unwrap_or_default(),
    }
}

impl Consumer for KafkaConsumer {
    async fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
        let mut batch = Vec::new();
        match tokio::time::timeout(timeout, self.consumer.recv()).await {
            Err(_) => return Ok(batch),
            Ok(Err(error)) => return Err(kafka_error("consume", error)),
            Ok(Ok(message)) => batch.push(detach(&message)),
        }
        // Drain what librdkafka already fetched, without waiting.
        while batch.len() < max {
            match tokio::time::timeout(Duration::ZERO, self.consumer.recv()).await {
                Ok(Ok(message)) => batch.push(detach(&message)),
                Ok(Err(error)) => {
                    tracing::warn!("kafka consume error after {} messages of a batch: {error}", batch.len());
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(batch)
    }

    async fn commit(&mut self, positions: &Positions) -> Result<(), BusError> {
        if positions.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for (topic, partition, next) in positions.iter() {
            list.add_partition_offset(topic, partition, Offset::Offset(next))
                .map_err(|e| kafka_error("commit (building the offset list)", e))?;
        }
        let consumer = Arc::clone(&self.consumer);
        tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync))
            .await
            .map_err(|e| BusError::Kafka { operation: "commit".into(), message: e.to_string() })?
            .map_err(|e| kafka_error("commit", e))
    }

    /// The partitions this consumer holds against its position; the others
    /// against the group's committed offsets.
    fn partition_lags(&self) -> impl Future<Output = Option<Vec<PartitionLag>>> + Send + 'static {
        let consumer = Arc::clone(&self.consumer);
        let topics = self.topics.clone();
        let measured = tokio::task::spawn_blocking(move || {
            let assignment = consumer.assignment().ok()?;
            let positions = consumer.position().ok()?;
            let offset = |list: &TopicPartitionList, topic: &str, partition: i32| {
                list.find_partition(topic, partition).and_then(|p| match p.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                })
            };
            let mut lags = Vec::new();
            for topic in &topics {
                let metadata = consumer.fetch_metadata(Some(topic), REQUEST_TIMEOUT).ok()?;
                let partitions: Vec<i32> = metadata
                    .topics()
                    .iter()
                    .filter(|t| t.name() == topic)
                    .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                    .collect();
                let mut others = TopicPartitionList::new();
                for &partition in &partitions {
                    if assignment.find_partition(topic, partition).is_none() {
                        others.add_partition(topic, partition);
                    }
                }
                let committed =
                    if others.count() > 0 { consumer.committed_offsets(others, REQUEST_TIMEOUT).ok()? } else { others };
                let name: Arc<str> = topic.as_str().into();
                for partition in partitions {
                    let (low, high) = consumer.fetch_watermarks(topic, partition, REQUEST_TIMEOUT).ok()?;
                    let held = assignment.find_partition(topic, partition).is_some();
                    let group_committed = if held { None } else { offset(&committed, topic, partition) };
                    let from = if held {
                        offset(&positions, topic, partition).unwrap_or(low)
                    } else {
                        group_committed.unwrap_or(low)
                    };
                    lags.push(PartitionLag {
                        topic: Arc::clone(&name),
                        partition,
                        unread: (high - from).max(0) as u64,
                        held,
                        committed: group_committed,
                    });
                }
            }
            Some(lags)
        });
        async move { measured.await.ok().flatten() }
    }

    /// The current assignment (empty while the group rebalances). If
    /// librdkafka cannot tell, `None`: nothing is let go on a guess (a
    /// partition let go and taken again without a rebalance would resume
    /// past the messages dropped meanwhile).
    fn assigned(&self, topic: &str) -> Option<Vec<i32>> {
        match self.consumer.assignment() {
            Ok(assignment) => {
                Some(assignment.elements_for_topic(topic).iter().map(|element| element.partition()).collect())
            }
            Err(error) => {
                tracing::warn!("kafka: reading this consumer's assignment: {error}");
                None
            }
        }
    }
}
