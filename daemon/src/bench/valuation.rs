//! One interval's wall time: `investors` copies of a plugin (the seed's
//! investor1, the 1,000-portfolio `wide` test guest, or a script) valued by the real
//! runtime on the memory bus, from the interval's start until every
//! valuation is on the portfolio topic. That covers the plugin calls, the
//! change computation, the encoding, the checkpoints and the publishing.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Consumer, MemoryBus, TopicSpec};
use crate::config::MarketConfig;
use crate::investor::{self, RuntimeSettings, Schedule};
use crate::market::{Tick, now};
use crate::metrics::Metrics;
use crate::plugin::{PluginHost, PluginLimits, PluginRegistry};

/// What to run.
#[derive(Debug, Clone)]
pub struct ValuationBench {
    /// The plugin file copied under every investor id: a component, or a
    /// script run by the interpreters of `interpreters`.
    pub plugin: std::path::PathBuf,
    /// The interpreter components, for a script.
    pub interpreters: std::path::PathBuf,
    /// How many investors.
    pub investors: u32,
    /// Intervals to time.
    pub intervals: u64,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct ValuationReport {
    /// Investors loaded.
    pub investors: usize,
    /// Portfolios valued per interval.
    pub portfolios: usize,
    /// Time to load every plugin (from the compiled cache after the first).
    pub load: Duration,
    /// Per interval, from its start to its last valuation on the topic.
    pub intervals: Vec<Duration>,
    /// RSS before and after loading and running the investors.
    pub rss: (u64, u64),
}

/// Runs the benchmark in `dir` (plugins and state go there).
pub async fn run(bench: &ValuationBench, dir: &Path) -> anyhow::Result<ValuationReport> {
    let plugins = super::deploy_copies(&bench.plugin, bench.investors, &dir.join("investors"))?;
    let rss_before = super::rss_bytes().unwrap_or(0);
    let loading = Instant::now();
    let host = PluginHost::with_interpreters(
        PluginLimits::default(),
        Some(dir.join("cache")),
        Some(bench.interpreters.clone()),
    )?;
    let (registry, _) = PluginRegistry::open(host, &plugins)?;
    let load = loading.elapsed();
    let registry = Arc::new(registry);
    let loaded = registry.plugins();
    anyhow::ensure!(
        loaded.len() == bench.investors as usize,
        "only {} of {} plugins loaded",
        loaded.len(),
        bench.investors
    );
    let portfolios: usize = loaded.values().map(|image| image.portfolios().len()).sum();

    let bus = MemoryBus::default();
    let (stock, portfolio_topic) = ("StockExchange".to_string(), "Portfolios".to_string());
    let specs = [&stock, &portfolio_topic].map(|name| TopicSpec { name: name.clone(), partitions: 1, replication: 1 });
    bus.create_topics(&specs).await?;
    // Every ticker's opening price, so that every investor can value.
    for (ticker, price) in MarketConfig::default().exchanges.into_iter().flat_map(|e| e.tickers) {
        bus.produce(&stock, &ticker, Tick { ticker: ticker.clone(), price, at: now() }.encode()).await?;
    }
    let mut follower = bus.consumer("bench-follower", &[&portfolio_topic])?;
    // Room for every worker to start and read the ticks before interval 1.
    let interval = Duration::from_secs(5).max(Duration::from_millis(u64::from(bench.investors) * 4));
    let schedule = Schedule::starting_now(interval);
    let settings = RuntimeSettings {
        stock_topic: stock,
        portfolio_topic,
        data: dir.join("data"),
        quarantine_after: 5,
        groups: Default::default(),
        settled_by: None,
    };
    let shutdown = CancellationToken::new();
    let runtime = tokio::spawn(investor::run(
        bus.clone(),
        registry,
        schedule.clone(),
        settings,
        Metrics::new(),
        investor::StatusBoard::default(),
        shutdown.clone(),
    ));
    let mut intervals = Vec::new();
    for k in 1..=bench.intervals {
        let mut received = 0;
        while received < portfolios {
            let batch = follower.poll(100_000, interval * 2).await?;
            anyhow::ensure!(!batch.is_empty(), "interval {k}: only {received} of {portfolios} valuations arrived");
            received += batch.len();
        }
        let start = schedule.boundary(k).into_std();
        intervals.push(Instant::now().saturating_duration_since(start));
    }
    let rss_after = super::rss_bytes().unwrap_or(0);
    shutdown.cancel();
    runtime.await?;
    Ok(ValuationReport { investors: loaded.len(), portfolios, load, intervals, rss: (rss_before, rss_after) })
}
