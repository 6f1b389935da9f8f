//! One conformance suite, run against both buses: the same test functions,
//! parameterised by the bus (the Kafka half against the broker in
//! `STOCKD_TEST_BROKERS`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use stockd::bus::{Bus, Consumer, Message, Positions, Record, TopicSpec};

/// Generous: a Kafka group join and first fetch take a second or two.
const PATIENCE: Duration = Duration::from_secs(30);

async fn topic<B: Bus>(bus: &B, prefix: &str, partitions: i32) -> String {
    let name = common::unique(prefix);
    bus.create_topics(&[TopicSpec { name: name.clone(), partitions, replication: 1 }]).await.unwrap();
    name
}

/// Polls until `n` messages came, or fails after `PATIENCE`.
async fn collect<C: Consumer>(consumer: &mut C, n: usize) -> Vec<Message> {
    let deadline = Instant::now() + PATIENCE;
    let mut messages = Vec::new();
    while messages.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n} messages arrived", messages.len());
        messages.extend(consumer.poll(n - messages.len(), Duration::from_millis(500)).await.unwrap());
    }
    messages
}

/// Asserts that nothing more arrives within `wait`.
async fn assert_quiet<C: Consumer>(consumer: &mut C, wait: Duration) {
    let extra = consumer.poll(100, wait).await.unwrap();
    assert!(extra.is_empty(), "unexpected messages: {:?}", extra.iter().map(|m| m.offset).collect::<Vec<_>>());
}

fn positions_after(messages: &[Message]) -> Positions {
    let mut positions = Positions::new();
    messages.iter().for_each(|m| positions.advance(m));
    positions
}

async fn round_trip_with_keys<B: Bus>(bus: B) {
    let topic = topic(&bus, "roundtrip", 1).await;
    for (key, value) in [("IBM", "one"), ("AAPL", "two"), ("IBM", "three")] {
        bus.produce(&topic, key, value.as_bytes().to_vec()).await.unwrap();
    }
    let mut consumer = bus.consumer(&common::unique("g"), &[&topic]).unwrap();
    let got: Vec<(String, String)> = collect(&mut consumer, 3)
        .await
        .iter()
        .map(|m| (m.key_text().into_owned(), String::from_utf8(m.value.to_vec()).unwrap()))
        .collect();
    let expected = [("IBM", "one"), ("AAPL", "two"), ("IBM", "three")].map(|(k, v)| (k.to_string(), v.to_string()));
    assert_eq!(got, expected);
}

async fn a_new_group_reads_from_the_earliest<B: Bus>(bus: B) {
    let topic = topic(&bus, "earliest", 1).await;
    let records = (0..5).map(|i| Record { key: "k".into(), value: vec![i] }).collect();
    bus.produce_batch(&topic, records).await.unwrap();
    let mut consumer = bus.consumer(&common::unique("g"), &[&topic]).unwrap();
    let messages = collect(&mut consumer, 5).await;
    assert_eq!(messages.iter().map(|m| m.offset).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert_eq!(messages.iter().map(|m| m.value[0]).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
}

async fn a_group_resumes_after_its_committed_offset<B: Bus>(bus: B) {
    let topic = topic(&bus, "resume", 1).await;
    let records = (0..10).map(|i| Record { key: "k".into(), value: vec![i] }).collect();
    bus.produce_batch(&topic, records).await.unwrap();
    let group = common::unique("g");
    {
        let mut first = bus.consumer(&group, &[&topic]).unwrap();
        let messages = collect(&mut first, 10).await;
        // Handled (and committed) only the first five.
        first.commit(&positions_after(&messages[..5])).await.unwrap();
    }
    let mut restarted = bus.consumer(&group, &[&topic]).unwrap();
    let messages = collect(&mut restarted, 5).await;
    assert_eq!(messages.iter().map(|m| m.offset).collect::<Vec<_>>(), [5, 6, 7, 8, 9]);
    assert_quiet(&mut restarted, Duration::from_secs(1)).await;
}

async fn two_groups_read_the_same_topic_independently<B: Bus>(bus: B) {
    let topic = topic(&bus, "groups", 1).await;
    let records = (0..4).map(|i| Record { key: format!("k{i}"), value: vec![i] }).collect();
    bus.produce_batch(&topic, records).await.unwrap();
    let (one, two) = (common::unique("one"), common::unique("two"));
    let mut first = bus.consumer(&one, &[&topic]).unwrap();
    let read = collect(&mut first, 4).await;
    first.commit(&positions_after(&read)).await.unwrap();
    drop(first);
    let mut second = bus.consumer(&two, &[&topic]).unwrap();
    assert_eq!(collect(&mut second, 4).await.len(), 4, "group two starts from the earliest");
    // Group one, restarted, is past all four; it gets only what comes next.
    let mut first_again = bus.consumer(&one, &[&topic]).unwrap();
    assert_quiet(&mut first_again, Duration::from_secs(2)).await;
    bus.produce(&topic, "k", vec![4]).await.unwrap();
    let next = collect(&mut first_again, 1).await;
    assert_eq!((next[0].offset, next[0].value[0]), (4, 4));
}

async fn ten_thousand_messages_are_read_exactly_once<B: Bus>(bus: B) {
    let topic = topic(&bus, "tenk", 1).await;
    let records =
        (0..10_000u32).map(|i| Record { key: format!("k{}", i % 100), value: i.to_be_bytes().to_vec() }).collect();
    bus.produce_batch(&topic, records).await.unwrap();
    let group = common::unique("g");
    let mut consumer = bus.consumer(&group, &[&topic]).unwrap();
    let messages = collect(&mut consumer, 10_000).await;
    assert_quiet(&mut consumer, Duration::from_secs(1)).await;
    let values: BTreeSet<u32> = messages.iter().map(|m| u32::from_be_bytes(m.value[..].try_into().unwrap())).collect();
    assert_eq!(messages.len(), 10_000, "no duplicates");
    assert_eq!(values, (0..10_000).collect::<BTreeSet<_>>(), "nothing lost");
    consumer.commit(&positions_after(&messages)).await.unwrap();
    drop(consumer);
    let mut restarted = bus.consumer(&group, &[&topic]).unwrap();
    assert_quiet(&mut restarted, Duration::from_secs(2)).await;
    bus.produce(&topic, "k0", 10_000u32.to_be_bytes().to_vec()).await.unwrap();
    assert_eq!(collect(&mut restarted, 1).await[0].offset, 10_000, "the restarted group resumes at the end");
}

async fn three_partitions_keep_per_key_order<B: Bus>(bus: B) {
    let topic = topic(&bus, "order", 3).await;
    let records = (0..100u32)
        .flat_map(|seq| (0..10).map(move |key| Record { key: format!("key-{key}"), value: seq.to_be_bytes().to_vec() }))
        .collect();
    bus.produce_batch(&topic, records).await.unwrap();
    let mut consumer = bus.consumer(&common::unique("g"), &[&topic]).unwrap();
    let messages = collect(&mut consumer, 1000).await;
    let mut by_key: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut partitions = BTreeSet::new();
    for m in &messages {
        partitions.insert(m.partition);
        by_key.entry(m.key_text().into_owned()).or_default().push(u32::from_be_bytes(m.value[..].try_into().unwrap()));
    }
    assert_eq!(by_key.len(), 10);
    for (key, seqs) in by_key {
        assert_eq!(seqs, (0..100).collect::<Vec<_>>(), "order of {key}");
    }
    assert!(partitions.len() > 1, "10 keys should spread over several of 3 partitions: {partitions:?}");
    assert_eq!(bus.topics().await.unwrap().iter().find(|(name, _)| *name == topic).map(|(_, p)| *p), Some(3));
}

on_both_buses!(
    round_trip_with_keys,
    a_new_group_reads_from_the_earliest,
    a_group_resumes_after_its_committed_offset,
    two_groups_read_the_same_topic_independently,
    ten_thousand_messages_are_read_exactly_once,
    three_partitions_keep_per_key_order,
);

/// The Kafka bus is named by the cluster id its brokers report, not by how
/// the brokers are addressed; checkpoints of the earlier, address-based
/// identity still count as this bus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kafka_bus_is_named_by_its_cluster_id() {
    let Some(brokers) = common::test_brokers("the_kafka_bus_is_named_by_its_cluster_id") else { return };
    let port = brokers.rsplit_once(':').expect("host:port").1;
    let by_ip =
        stockd::bus::KafkaBus::connect(stockd::bus::KafkaSettings::new(format!("127.0.0.1:{port}"), "t")).unwrap();
    let by_name =
        stockd::bus::KafkaBus::connect(stockd::bus::KafkaSettings::new(format!("localhost:{port}"), "t")).unwrap();
    assert_eq!(by_ip.identity(), format!("kafka:127.0.0.1:{port}"), "before any broker answered");
    // Creating the topics (start-up's first step) learns the cluster id.
    topic(&by_ip, "identity", 1).await;
    topic(&by_name, "identity", 1).await;
    let identity = by_ip.identity();
    assert!(identity.starts_with("kafka:cluster="), "{identity}");
    assert_eq!(by_name.identity(), identity, "the same cluster, addressed another way");
    assert!(by_ip.is_identity(&format!("kafka:127.0.0.1:{port}")), "the identity stockd recorded before");
    assert!(!by_ip.is_identity("kafka:cluster=another"));
    assert!(!by_ip.is_identity("memory:1"));
}

/// A producer that hits a fatal error (librdkafka then refuses everything
/// it is given) is replaced: the produce that met the error fails, the
/// next ones, single and batched, are stored, and the clones of the bus
/// use the new producer too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_that_hits_a_fatal_error_is_replaced() {
    let Some(brokers) = common::test_brokers("a_producer_that_hits_a_fatal_error_is_replaced") else { return };
    let bus = stockd::bus::KafkaBus::connect(stockd::bus::KafkaSettings::new(brokers, "t")).unwrap();
    let topic = topic(&bus, "fatal", 1).await;
    bus.produce(&topic, "k", b"before".to_vec()).await.unwrap();
    bus.inject_fatal_error();
    let error = bus.produce(&topic, "k", b"lost".to_vec()).await.unwrap_err().to_string();
    assert!(error.contains("produce to"), "{error}");
    let clone = bus.clone();
    clone.produce(&topic, "k", b"after".to_vec()).await.unwrap();
    let batch = ["one", "two"].map(|v| Record { key: "k".into(), value: v.as_bytes().to_vec() }).to_vec();
    bus.produce_batch(&topic, batch).await.unwrap();
    let mut consumer = bus.consumer(&common::unique("g"), &[&topic]).unwrap();
    let values: Vec<String> =
        collect(&mut consumer, 4).await.iter().map(|m| String::from_utf8(m.value.to_vec()).unwrap()).collect();
    assert_eq!(values, ["before", "after", "one", "two"]);
    assert_quiet(&mut consumer, Duration::from_secs(1)).await;
}
