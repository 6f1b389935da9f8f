//! The topics stockd uses: their specs as configured, creating them at
//! start-up (waiting for the bus to answer), and their partition counts,
//! checked against the configuration at start-up and watched while running
//! (stockd never changes an existing topic; a partition count that changes
//! under a running deployment moves keys between partitions).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, TopicSpec};
use crate::config::Config;

/// The longest one attempt to create the topics waits for an answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the partition counts are checked while running.
const PARTITION_CHECK_PERIOD: Duration = Duration::from_secs(30);

/// Topic → partition count.
pub type Partitions = BTreeMap<String, i32>;

/// The topics stockd uses, as configured: the tick topic with one
/// partition (ticks are few, and one partition gives each investor's
/// consumer group to one process: a second investors process stands by),
/// the portfolio topic with `topics.partitions`.
pub fn specs(config: &Config) -> Vec<TopicSpec> {
    let replication = config.topics.replication;
    vec![
        TopicSpec { name: config.topics.stock_exchange.clone(), partitions: 1, replication },
        TopicSpec { name: config.topics.portfolios.clone(), partitions: config.topics.partitions, replication },
    ]
}

/// Creates the topics, waiting for the bus to answer: on Kafka the brokers
/// may still be starting, so it retries with backoff and a log line each
/// time, until `kafka.startup-timeout` (or a stop). Returns their partition
/// counts, warning about any that differs from the configuration.
pub async fn create<B: Bus>(bus: &B, config: &Config, stop: &CancellationToken) -> anyhow::Result<Partitions> {
    let deadline = tokio::time::Instant::now() + config.kafka.startup_timeout;
    let mut backoff = Duration::from_secs(1);
    loop {
        // An attempt may itself wait for an answer (librdkafka waits for a
        // broker rather than failing): at most 5 s, then a new try with a
        // fresh connection, never past the deadline.
        let left = deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .clamp(Duration::from_secs(1), ATTEMPT_TIMEOUT);
        let error = match tokio::time::timeout(left, bus.create_topics(&specs(config))).await {
            Ok(Ok(())) => return check_partitions(bus, config).await,
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer in {left:.0?}"),
        };
        let now = tokio::time::Instant::now();
        if now >= deadline || stop.is_cancelled() {
            let waited = crate::config::duration::format(config.kafka.startup_timeout);
            anyhow::bail!(
                "cannot create the topics on {} within {waited} (kafka.startup-timeout): {error}",
                bus.identity()
            );
        }
        let wait = backoff.min(deadline - now);
        tracing::warn!("waiting for {} to create the topics (retrying in {wait:?}): {error}", bus.identity());
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// The partition counts of stockd's topics, with a warning for each that
/// differs from what stockd would create (see [`specs`]).
async fn check_partitions<B: Bus>(bus: &B, config: &Config) -> anyhow::Result<Partitions> {
    let wanted: Vec<TopicSpec> = specs(config);
    let listed: Partitions = bus.topics().await?.into_iter().collect();
    let mut partitions = Partitions::new();
    for spec in wanted {
        let Some(&count) = listed.get(&spec.name) else { continue };
        if count != spec.partitions {
            tracing::warn!(
                topic = spec.name,
                "topic {} has {count} partition(s), not the {} stockd creates it with: it existed already, and \
                 stockd leaves existing topics as they are",
                spec.name,
                spec.partitions
            );
        }
        partitions.insert(spec.name, count);
    }
    Ok(partitions)
}

/// What changed between two partition listings, one line per topic.
pub fn partition_changes(before: &Partitions, now: &Partitions) -> Vec<String> {
    before
        .iter()
        .filter_map(|(topic, &was)| {
            let count = now.get(topic).copied()?;
            (count != was).then(|| {
                format!(
                    "topic {topic} now has {count} partition(s), not {was}: keys hash to other partitions from \
                     now on, so a ticker's or a portfolio's messages may be split across two partitions and \
                     read out of order around the change; restart every stockd process of the deployment"
                )
            })
        })
        .collect()
}

/// Checks the partition counts every 30 s until `stop`, logging an error
/// for each change (once per change).
pub async fn watch_partitions<B: Bus>(bus: B, mut known: Partitions, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(PARTITION_CHECK_PERIOD);
    ticker.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let Ok(listed) = bus.topics().await else { continue };
        let now: Partitions = listed.into_iter().filter(|(topic, _)| known.contains_key(topic)).collect();
        for change in partition_changes(&known, &now) {
            tracing::error!("{change}");
        }
        known.extend(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tick_topic_keeps_one_partition_and_the_portfolio_topic_takes_the_configured_count() {
        let mut config = Config::default();
        config.topics.partitions = 6;
        let specs = specs(&config);
        let counts: Vec<(&str, i32)> = specs.iter().map(|spec| (spec.name.as_str(), spec.partitions)).collect();
        assert_eq!(counts, [("StockExchange", 1), ("Portfolios", 6)]);
    }

    #[test]
    fn a_changed_partition_count_is_reported_once_per_topic() {
        let before = Partitions::from([("Portfolios".to_string(), 1), ("StockExchange".to_string(), 3)]);
        let now = Partitions::from([("Portfolios".to_string(), 4), ("StockExchange".to_string(), 3)]);
        let changes = partition_changes(&before, &now);
        assert_eq!(changes.len(), 1);
        assert!(changes[0].starts_with("topic Portfolios now has 4 partition(s), not 1:"), "{}", changes[0]);
        assert!(partition_changes(&now, &now).is_empty());
    }
}
