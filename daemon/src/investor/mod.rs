//! The investor runtime: for every loaded plugin, a worker that reads the
//! stock topic in its own consumer group (`investor-N`) and, every
//! interval, values the investor's portfolios and publishes them to the
//! portfolio topic. A supervisor follows the plugin registry: a new plugin
//! gets a worker, a removed one's worker stops, a replaced one is picked up
//! by its worker at the next interval.

mod active;
mod book;
mod log_cap;
mod schedule;
mod state;
mod status;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use book::{Applied, PriceBook};
pub use log_cap::VALUATION_LINES_PER_INTERVAL;
pub use schedule::Schedule;
pub use state::{InvestorState, Pending, StateError, Unsettled};
pub use status::{InvestorStatus, StatusBoard};

use crate::bus::Bus;
use crate::market::InvestorId;
use crate::metrics::Metrics;
use crate::plugin::PluginRegistry;

/// How long a worker that failed to start waits before it is tried again.
const RESTART_DELAY: Duration = Duration::from_secs(5);

/// What the runtime needs from the configuration.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// The topic ticks are read from.
    pub stock_topic: String,
    /// The topic valuations are published to.
    pub portfolio_topic: String,
    /// The data folder (checkpoints go to `.state/`).
    pub data: PathBuf,
    /// Consecutive failed intervals before quarantine.
    pub quarantine_after: u32,
    /// The consumer groups' names (`investor-N`).
    pub groups: crate::groups::Groups,
    /// The sink's consumer group where this process runs the sink on a bus
    /// that keeps messages only in this process: a published interval is
    /// kept for a restart until this group has committed past it.
    pub settled_by: Option<String>,
}

/// Runs a worker per loaded investor, following `registry`, until
/// `shutdown`, keeping `status` current; then waits for the workers to finish their interval in
/// flight and checkpoint.
pub async fn run<B: Bus>(
    bus: B,
    registry: Arc<PluginRegistry>,
    schedule: Schedule,
    settings: RuntimeSettings,
    metrics: Metrics,
    status: StatusBoard,
    shutdown: CancellationToken,
) {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let shared = Arc::new(worker::Shared {
        bus,
        registry: Arc::clone(&registry),
        schedule,
        settings,
        metrics: metrics.clone(),
        plugin_calls: Arc::new(Semaphore::new(cores)),
        log_cap: log_cap::LogCap::new(VALUATION_LINES_PER_INTERVAL),
        status,
        overrun_logged: Default::default(),
        publish_failure_logged: Default::default(),
    });
    let mut updates = registry.subscribe();
    let mut workers = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, InvestorId> = HashMap::new();
    let mut retry_at: HashMap<InvestorId, Instant> = HashMap::new();
    loop {
        let loaded = registry.plugins();
        let now = Instant::now();
        for &investor in loaded.keys() {
            if running.values().any(|id| *id == investor) || retry_at.get(&investor).is_some_and(|at| *at > now) {
                continue;
            }
            retry_at.remove(&investor);
            let (shared, shutdown) = (Arc::clone(&shared), shutdown.clone());
            let task = workers.spawn(async move { worker::run(shared, investor, shutdown).await });
            running.insert(task.id(), investor);
        }
        metrics.investors_loaded(loaded.len());
        let next_retry = retry_at.values().min().copied().unwrap_or_else(|| now + Duration::from_secs(3600));
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = updates.changed() => if changed.is_err() { break },
            () = tokio::time::sleep_until(next_retry) => {}
            Some(joined) = workers.join_next_with_id() => {
                let (task, outcome) = match joined {
                    Ok((task, outcome)) => (task, outcome.map(|_| ())),
                    Err(error) => (error.id(), Err(anyhow::anyhow!("worker panicked: {error}"))),
                };
                let investor = running.remove(&task).expect("every worker is registered");
                if let Err(error) = outcome {
                    tracing::error!(investor = %investor, "investor stopped: {error:#}; restarting in {RESTART_DELAY:?}");
                    retry_at.insert(investor, Instant::now() + RESTART_DELAY);
                }
            }
        }
    }
    while let Some(joined) = workers.join_next_with_id().await {
        match joined {
            Ok((task, Err(error))) => tracing::error!(investor = ?running.get(&task), "investor stopped: {error:#}"),
            Err(error) => tracing::error!(investor = ?running.get(&error.id()), "worker panicked: {error}"),
            Ok(_) => {}
        }
    }
}
