//! librdkafka's callbacks into our log, without floods: while a broker is
//! down librdkafka reports the same error many times a second, so each
//! distinct message is logged at most once per [`QUIET_PERIOD`], with the
//! count of repeats suppressed meanwhile.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::TopicPartitionList;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;

/// How long a repeated message stays quiet.
const QUIET_PERIOD: Duration = Duration::from_secs(30);

/// The client context of every stockd Kafka client.
#[derive(Default)]
pub struct QuietContext {
    /// Message → (when it was last logged, repeats suppressed since).
    seen: Mutex<HashMap<String, (Instant, u64)>>,
    /// The consumer group, for a consumer's context.
    group: Option<String>,
}

impl QuietContext {
    /// The context of a consumer in `group`: it also logs the partitions
    /// each rebalance takes away and gives.
    pub fn for_group(group: &str) -> Self {
        QuietContext { group: Some(group.to_string()), ..QuietContext::default() }
    }

    /// Whether to log `message` now, and how many repeats were suppressed.
    fn admit(&self, message: &str) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        if seen.len() > 1000 {
            seen.retain(|_, (at, _)| now.duration_since(*at) < QUIET_PERIOD);
        }
        match seen.get_mut(message) {
            Some((at, suppressed)) if now.duration_since(*at) < QUIET_PERIOD => {
                *suppressed += 1;
                None
            }
            Some((at, suppressed)) => {
                let repeats = *suppressed;
                *at = now;
                *suppressed = 0;
                Some(repeats)
            }
            None => {
                seen.insert(message.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

fn with_repeats(message: &str, repeats: u64) -> String {
    if repeats == 0 { message.to_string() } else { format!("{message} (and {repeats} times more in the last 30 s)") }
}

impl ClientContext for QuietContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let text = format!("{facility}: {message}");
        match level {
            RDKafkaLogLevel::Debug | RDKafkaLogLevel::Info | RDKafkaLogLevel::Notice => {
                tracing::debug!(target: "librdkafka", "{text}");
            }
            RDKafkaLogLevel::Warning => {
                if let Some(repeats) = self.admit(&text) {
                    tracing::warn!(target: "librdkafka", "{}", with_repeats(&text, repeats));
                }
            }
            _ => {
                if let Some(repeats) = self.admit(&text) {
                    tracing::error!(target: "librdkafka", "{}", with_repeats(&text, repeats));
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let text = format!("{error}: {reason}");
        if let Some(repeats) = self.admit(&text) {
            tracing::warn!(target: "librdkafka", "{}", with_repeats(&text, repeats));
        }
    }
}

/// `topic[0,2] other[1]`.
fn describe(partitions: &TopicPartitionList) -> String {
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for element in partitions.elements() {
        by_topic.entry(element.topic().to_string()).or_default().push(element.partition());
    }
    if by_topic.is_empty() {
        return "no partitions".into();
    }
    let lists = by_topic.iter().map(|(topic, partitions)| format!("{topic}{partitions:?}"));
    lists.collect::<Vec<_>>().join(" ")
}

impl ConsumerContext for QuietContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let group = self.group.as_deref().unwrap_or("?");
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(group, "consumer group gave this process {}", describe(partitions));
            }
            Rebalance::Revoke(partitions) => {
                tracing::info!(group, "consumer group took back {}", describe(partitions));
            }
            Rebalance::Error(error) => tracing::warn!(group, "consumer group rebalance failed: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_suppressed_then_counted() {
        let context = QuietContext::default();
        assert_eq!(context.admit("down"), Some(0));
        assert_eq!(context.admit("down"), None);
        assert_eq!(context.admit("down"), None);
        assert_eq!(context.admit("other"), Some(0));
        context.seen.lock().unwrap().get_mut("down").unwrap().0 -= QUIET_PERIOD;
        assert_eq!(context.admit("down"), Some(2));
    }
}
