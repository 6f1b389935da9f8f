//! Running the pipeline in-process for end-to-end tests, and reading back
//! what it published.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stockd::bus::{Bus, Consumer, Message};
use stockd::config::{Config, Role};
use stockd::metrics::Metrics;
use tokio_util::sync::CancellationToken;

use crate::common;

/// A configuration for a fast run: trades every 5–20 ms, a 200 ms interval,
/// a fixed market seed, the seed investors deployed into a fresh plugin
/// folder, and topics named uniquely (a Kafka broker is shared by tests).
pub fn fast_config(dir: &Path, roles: &[Role]) -> Config {
    let plugins = dir.join("investors");
    std::fs::create_dir_all(&plugins).unwrap();
    for n in 1..=3 {
        common::deploy(&format!("investor{n}"), &plugins, n);
    }
    let mut config = Config {
        roles: roles.to_vec(),
        interval: Duration::from_millis(200),
        plugins,
        data: dir.join("data"),
        ..Config::default()
    };
    config.market.seed = Some(7);
    config.market.trade_delay_min = Duration::from_millis(5);
    config.market.trade_delay_max = Duration::from_millis(20);
    config.market.trade_delay_step = Duration::from_millis(5);
    config.investors.reload_debounce = Duration::from_millis(50);
    // Compiling a plugin takes over a second in a debug build: share the
    // compiled-component cache between tests.
    config.investors.cache_dir = Some(common::test_plugins_dir().join(".cache"));
    config.topics.stock_exchange = common::unique("StockExchange");
    config.topics.portfolios = common::unique("Portfolios");
    // Consumer groups of its own: tests running at once on one broker do
    // not join each other's groups.
    config.kafka.group_prefix = format!("{}-", common::unique("test"));
    config
}

/// A running pipeline.
pub struct Running {
    /// Its counters.
    pub metrics: Metrics,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Logs to stderr when `STOCKD_TEST_LOG` holds a filter (e.g. `info`).
pub fn init_test_logging() {
    if let Ok(filter) = std::env::var("STOCKD_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    }
}

/// Creates the config's topics on `bus` (before following them).
pub async fn create_topics<B: Bus>(bus: &B, config: &Config) {
    bus.create_topics(&stockd::topics::specs(config)).await.unwrap();
}

/// Starts `config`'s roles on `bus`.
pub fn start<B: Bus>(bus: &B, config: &Config) -> Running {
    init_test_logging();
    let shutdown = CancellationToken::new();
    let metrics = Metrics::new();
    let task = tokio::spawn(stockd::node::run_on(bus.clone(), config.clone(), metrics.clone(), shutdown.clone()));
    Running { metrics, shutdown, task }
}

impl Running {
    /// Stops it the orderly way (as on SIGTERM) and waits.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("stopped within 20 s")
            .expect("did not panic")
            .expect("ran without error");
    }

    /// Kills it: every task is dropped at its current await point, as if
    /// the process died (files written so far stay).
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Every message of `topic`, read with a fresh group until nothing more
/// comes for `quiet`.
pub async fn read_all<B: Bus>(bus: &B, topic: &str, quiet: Duration) -> Vec<Message> {
    let mut consumer = bus.consumer(&common::unique("reader"), &[topic]).unwrap();
    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_news = Instant::now();
    while last_news.elapsed() < quiet && Instant::now() < deadline {
        let batch = consumer.poll(10_000, Duration::from_millis(100)).await.unwrap();
        if !batch.is_empty() {
            last_news = Instant::now();
            messages.extend(batch);
        }
    }
    messages.sort_by_key(|m| (m.partition, m.offset));
    messages
}

/// The data folder of a config.
pub fn data_dir(config: &Config) -> PathBuf {
    config.data.clone()
}

/// Follows a topic (in its own group) to see how far the pipeline got.
pub struct Follower<C> {
    consumer: C,
    /// Valuations seen so far, by investor.
    pub per_investor: std::collections::BTreeMap<u32, usize>,
}

/// Creates the config's topics and follows its portfolio topic from the
/// earliest message.
pub async fn follow<B: Bus>(bus: &B, config: &Config) -> Follower<B::Consumer> {
    create_topics(bus, config).await;
    let consumer = bus.consumer(&common::unique("follower"), &[&config.topics.portfolios]).unwrap();
    Follower { consumer, per_investor: Default::default() }
}

impl<C: Consumer> Follower<C> {
    /// Waits until every investor in `investors` has published at least
    /// `more` valuations beyond what was seen when called.
    pub async fn wait_for(&mut self, investors: &[u32], more: usize) {
        let published = self.published_within(investors, more, Duration::from_secs(60)).await;
        assert!(published, "the investors did not publish within 60 s: {:?}", self.per_investor);
    }

    /// Reads until nothing more comes for `quiet`: what was published
    /// before is then counted, and a later
    /// [`published_within`](Self::published_within) counts only what comes
    /// after.
    pub async fn catch_up(&mut self, quiet: Duration) {
        let mut last_news = Instant::now();
        while last_news.elapsed() < quiet {
            let messages = self.consumer.poll(1000, Duration::from_millis(100)).await.unwrap();
            if self.take(messages) {
                last_news = Instant::now();
            }
        }
    }

    /// Counts `messages`; whether there were any.
    fn take(&mut self, messages: Vec<Message>) -> bool {
        let any = !messages.is_empty();
        for message in messages {
            let valuation = stockd::market::Valuation::decode(&message.value).unwrap();
            *self.per_investor.entry(valuation.portfolio.investor.get()).or_default() += 1;
        }
        any
    }

    /// Whether every investor in `investors` publishes at least `more`
    /// valuations beyond what was seen when called, within `within`.
    pub async fn published_within(&mut self, investors: &[u32], more: usize, within: Duration) -> bool {
        let target: Vec<(u32, usize)> =
            investors.iter().map(|i| (*i, self.per_investor.get(i).copied().unwrap_or(0) + more)).collect();
        let deadline = Instant::now() + within;
        while !target.iter().all(|(i, n)| self.per_investor.get(i).copied().unwrap_or(0) >= *n) {
            if Instant::now() >= deadline {
                return false;
            }
            let messages = self.consumer.poll(1000, Duration::from_millis(100)).await.unwrap();
            self.take(messages);
        }
        true
    }
}

/// The value of one metric line of the Prometheus exposition, e.g.
/// `stockd_plugin_errors_total{investor="4",kind="timeout"}`; 0 if absent.
pub fn metric(metrics: &Metrics, series: &str) -> f64 {
    metrics.encode().lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}
