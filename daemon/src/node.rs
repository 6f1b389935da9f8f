//! One stockd process: the roles it runs, on the bus it was given, until it
//! is told to stop.
//!
//! Stopping is ordered so that nothing in flight is lost: the exchanges stop
//! first and the investors finish the interval in flight; then the sink
//! writes what has been published so far (on the memory bus, everything),
//! makes it durable and commits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, KafkaBus, KafkaSettings, MemoryBus};
use crate::config::{Config, Role};
use crate::exchange::{self, Exchange};
use crate::investor::{self, RuntimeSettings, Schedule};
use crate::metrics::Metrics;
use crate::plugin::{Change, PluginHost, PluginRegistry, RegistryWatcher};
use crate::sink::{self, SinkSettings};

/// Runs `config`'s roles on the bus it names until `shutdown` is cancelled.
pub async fn run(config: Config, metrics: Metrics, shutdown: CancellationToken) -> anyhow::Result<()> {
    match &config.brokers {
        None => {
            let bus = MemoryBus::with(config.memory_bus.retention, config.memory_bus.produce_timeout, metrics.clone());
            run_on(bus, config, metrics, shutdown).await
        }
        Some(brokers) => {
            let settings = KafkaSettings {
                session_timeout: config.kafka.session_timeout,
                ..KafkaSettings::new(brokers.clone(), "stockd")
            };
            let bus = KafkaBus::connect(settings).context("connecting to Kafka")?;
            run_on(bus, config, metrics, shutdown).await
        }
    }
}

/// Runs the roles on `bus`.
pub async fn run_on<B: Bus>(bus: B, config: Config, metrics: Metrics, stop: CancellationToken) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let partitions = crate::topics::create(&bus, &config, &stop).await?;
    tokio::spawn(crate::topics::watch_partitions(bus.clone(), partitions, stop.clone()));
    let status = investor::StatusBoard::default();
    let plugins = if config.roles.contains(&Role::Investors) {
        // Compiling a large plugin (a Python one: seconds) blocks: not on
        // the runtime's threads.
        let config = config.clone();
        Some(
            tokio::task::spawn_blocking(move || open_plugins(&config))
                .await
                .context("loading the plugins panicked")??,
        )
    } else {
        None
    };
    if let Some(addr) = config.http {
        let roles = config.roles.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
        let health = crate::http::Health { roles, bus: bus.identity(), started };
        let investors = plugins.as_ref().map(|(registry, _)| (Arc::clone(registry), status.clone()));
        let topics = (config.topics.stock_exchange.as_str(), config.topics.portfolios.as_str());
        let view = crate::web::WebView::start(
            &bus,
            topics,
            &config.groups(),
            config.data.clone(),
            investors,
            metrics.clone(),
            &stop,
        )
        .context("starting the web view's query threads")?;
        crate::http::serve(addr, metrics.clone(), health, Some(crate::web::routes(view)), stop.clone()).await?;
    }
    let names: Vec<String> = plugins
        .iter()
        .flat_map(|(registry, _)| registry.plugins().values().map(|i| i.name().to_string()).collect::<Vec<_>>())
        .collect();
    announce(&config, &bus.identity(), &names);

    let mut producers = JoinSet::new();
    if config.roles.contains(&Role::Exchange) {
        start_exchanges(&mut producers, &bus, &config, &metrics, &stop);
    }
    let _watcher = plugins.map(|(registry, watcher)| {
        start_investors(&mut producers, &bus, &config, registry, &metrics, status, &stop);
        watcher
    });
    // The sink stops last, after writing what the producers published.
    let sink_stop = CancellationToken::new();
    let sink = config.roles.contains(&Role::Sink).then(|| start_sink(&bus, &config, &metrics, &sink_stop, &stop));
    let sink_group = config.roles.contains(&Role::Sink).then(|| config.groups().sink());
    let summary = tokio::spawn(log_summaries(metrics.clone(), config.interval, sink_group, stop.clone()));

    let mut first_error = None;
    while let Some(joined) = producers.join_next().await {
        if let Err(error) = joined.map_err(anyhow::Error::from).and_then(|result| result) {
            tracing::error!("{error:#}");
            stop.cancel();
            first_error.get_or_insert(error);
        }
    }
    // Producers end only when stopped; with none (a sink-only process),
    // wait for the stop here.
    stop.cancelled().await;
    sink_stop.cancel();
    if let Some(sink) = sink {
        match sink.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!("{error}");
                first_error.get_or_insert(error.into());
            }
            Err(panic) => {
                first_error.get_or_insert(panic.into());
            }
        }
    }
    summary.abort();
    tracing::info!("stopped: {}", metrics.summary());
    first_error.map_or(Ok(()), Err)
}

type Producers = JoinSet<anyhow::Result<()>>;

fn start_exchanges<B: Bus>(
    producers: &mut Producers,
    bus: &B,
    config: &Config,
    metrics: &Metrics,
    stop: &CancellationToken,
) {
    for (index, exchange_config) in config.market.exchanges.iter().enumerate() {
        let exchange = Exchange::new(exchange_config, &config.market, index);
        let topic = config.topics.stock_exchange.clone();
        let task = exchange::run(bus.clone(), topic, exchange, metrics.clone(), stop.clone());
        producers.spawn(async move {
            task.await;
            Ok(())
        });
    }
}

fn start_investors<B: Bus>(
    producers: &mut Producers,
    bus: &B,
    config: &Config,
    registry: Arc<PluginRegistry>,
    metrics: &Metrics,
    status: investor::StatusBoard,
    stop: &CancellationToken,
) {
    let settings = RuntimeSettings {
        stock_topic: config.topics.stock_exchange.clone(),
        portfolio_topic: config.topics.portfolios.clone(),
        data: config.data.clone(),
        quarantine_after: config.investors.quarantine_after,
        groups: config.groups(),
        settled_by: (config.roles.contains(&Role::Sink) && crate::bus::lost_with_its_process(&bus.identity()))
            .then(|| config.groups().sink()),
    };
    let schedule = Schedule::starting_now(config.interval);
    let task = investor::run(bus.clone(), registry, schedule, settings, metrics.clone(), status, stop.clone());
    producers.spawn(async move {
        task.await;
        Ok(())
    });
}

/// Starts the sink; it stops on `sink_stop`, and stops everything (`stop`)
/// if it fails.
fn start_sink<B: Bus>(
    bus: &B,
    config: &Config,
    metrics: &Metrics,
    sink_stop: &CancellationToken,
    stop: &CancellationToken,
) -> tokio::task::JoinHandle<Result<(), sink::SinkError>> {
    let settings = SinkSettings {
        topic: config.topics.portfolios.clone(),
        group: config.groups().sink(),
        data: config.data.clone(),
        open_files: config.sink.open_files,
        sync: config.sink.sync,
        batch: config.sink.batch,
        archive: config.archive.enabled,
        retention: crate::archive::maintain::Retention {
            max_age: config.archive.retention,
            max_bytes: config.archive.max_bytes,
        },
        csv_window: config.sink.csv_window,
        csv_files: config.sink.csv_files,
        unread_after: config.kafka.session_timeout,
    };
    let (bus, metrics, sink_stop, stop) = (bus.clone(), metrics.clone(), sink_stop.clone(), stop.clone());
    tokio::spawn(async move {
        let result = sink::run(bus, settings, metrics, sink_stop).await;
        if result.is_err() {
            stop.cancel();
        }
        result
    })
}

/// The first lines a user sees: what runs where, and how to query it.
fn announce(config: &Config, bus: &str, investors: &[String]) {
    let roles: Vec<String> = config.roles.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
    let on = match &config.brokers {
        None => "the embedded memory bus (no broker; add --brokers HOST:PORT for Kafka)".to_string(),
        Some(brokers) => format!("Kafka at {brokers}"),
    };
    tracing::info!("stockd {} running {} on {on} [{bus}]", env!("CARGO_PKG_VERSION"), roles.join(", "));
    if config.roles.contains(&Role::Investors) {
        tracing::info!(
            "{} investor(s) from {}/: {}; valuations every {}",
            investors.len(),
            config.plugins.display(),
            investors.join(", "),
            crate::config::duration::format(config.interval)
        );
    }
    if config.roles.contains(&Role::Sink) {
        let now = crate::market::now();
        let until = now + chrono::Duration::hours(1);
        let exe = std::env::args().next().unwrap_or_else(|| "stockd".to_string());
        tracing::info!("portfolio files go to {}/INVESTOR_i_PORTFOLIO_p.csv", config.data.display());
        tracing::info!(
            "query them with: {exe} query 1.1 --data {} --from \"{}\" --to \"{}\"",
            config.data.display(),
            now.format("%Y-%m-%d %H:%M"),
            until.format("%Y-%m-%d %H:%M")
        );
    }
}

/// Loads the plugin folder and starts watching it.
fn open_plugins(config: &Config) -> anyhow::Result<(Arc<PluginRegistry>, RegistryWatcher)> {
    let cache = config.investors.cache_dir.clone().unwrap_or_else(|| config.plugins.join(".cache"));
    let interpreters = config.investors.interpreters.clone().unwrap_or_else(|| config.plugins.join(".interpreters"));
    let host = PluginHost::with_interpreters(config.investors.limits(), Some(cache), Some(interpreters))?;
    let (registry, changes) = PluginRegistry::open(host.clone(), &config.plugins)
        .context("cannot open the plugin folder (build the seed investors with `just plugins`)")?;
    std::thread::Builder::new()
        .name("stockd-interpreters".into())
        .spawn(move || host.prepare_interpreters())
        .context("cannot start the thread that compiles the script interpreters")?;
    let loaded = changes.iter().filter(|c| matches!(c, Change::Loaded(_))).count();
    tracing::info!(folder = %config.plugins.display(), "{loaded} investor(s) loaded; drop investorN.wasm, investorN.py or investorN.js files there to add or replace investors");
    let registry = Arc::new(registry);
    let watcher = RegistryWatcher::start(Arc::clone(&registry), config.investors.reload_debounce)
        .with_context(|| format!("cannot watch {}", config.plugins.display()))?;
    Ok((registry, watcher))
}

/// Logs, once per interval (at most once a second), what happened in it
/// (see [`Metrics::interval_summary`]), and the running totals once a
/// minute.
async fn log_summaries(metrics: Metrics, interval: Duration, sink_group: Option<String>, shutdown: CancellationToken) {
    let period = interval.max(Duration::from_secs(1));
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await;
    let mut totals_logged = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {
                tracing::info!("last {}: {}", crate::config::duration::format(period), metrics.interval_summary(sink_group.as_deref()));
                if totals_logged.elapsed() >= Duration::from_secs(60) {
                    totals_logged = tokio::time::Instant::now();
                    tracing::info!("counters: {}", metrics.summary());
                }
            }
        }
    }
}
