//! Offsets per topic-partition: the next message to read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Message;

/// Per topic and partition, the offset of the next message to read (one past
/// the last one handled), as Kafka commits them. Serialises as
/// `{"topic": {"0": 42}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Positions(BTreeMap<String, BTreeMap<i32, i64>>);

impl Positions {
    /// No positions.
    pub fn new() -> Self {
        Positions::default()
    }

    /// The next offset to read in `topic`/`partition`, if known.
    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0.get(topic)?.get(&partition).copied()
    }

    /// Sets the next offset to read.
    pub fn set(&mut self, topic: &str, partition: i32, next: i64) {
        self.0.entry(topic.to_string()).or_default().insert(partition, next);
    }

    /// Records that `message` was handled: the next offset of its partition
    /// is one past it (never moving backwards).
    pub fn advance(&mut self, message: &Message) {
        let next = message.offset + 1;
        let slot = self.0.entry(message.topic.to_string()).or_default().entry(message.partition).or_insert(next);
        *slot = (*slot).max(next);
    }

    /// Whether `message` is before the position of its partition, i.e.
    /// already handled.
    pub fn covers(&self, message: &Message) -> bool {
        self.get(&message.topic, message.partition).is_some_and(|next| message.offset < next)
    }

    /// Every (topic, partition, next offset).
    pub fn iter(&self) -> impl Iterator<Item = (&str, i32, i64)> {
        self.0
            .iter()
            .flat_map(|(topic, partitions)| partitions.iter().map(move |(&p, &next)| (topic.as_str(), p, next)))
    }

    /// Whether no position is known.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeMap::is_empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(partition: i32, offset: i64) -> Message {
        Message { topic: "T".into(), partition, offset, key: None, value: Default::default() }
    }

    #[test]
    fn advances_never_backwards_and_covers_what_was_handled() {
        let mut positions = Positions::new();
        positions.advance(&message(0, 4));
        positions.advance(&message(0, 2));
        positions.advance(&message(1, 0));
        assert_eq!(positions.get("T", 0), Some(5));
        assert!(positions.covers(&message(0, 4)));
        assert!(!positions.covers(&message(0, 5)));
        assert!(!positions.covers(&message(2, 0)));
        let json = serde_json::to_string(&positions).unwrap();
        assert_eq!(json, r#"{"T":{"0":5,"1":1}}"#);
        assert_eq!(serde_json::from_str::<Positions>(&json).unwrap(), positions);
    }
}
