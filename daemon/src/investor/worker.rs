//! One investor at work: it reads ticks into its price book and, at every
//! interval, values its portfolios with its plugin, publishes the
//! valuations, checkpoints and commits.
//!
//! The order of one interval, and what a crash between two steps leaves:
//! 1. value (plugin call) — nothing written yet: the interval is redone.
//! 2. checkpoint with the interval pending (fsync) — a restart publishes
//!    it: no valuation is lost, none is recomputed.
//! 3. publish — a restart republishes it (the same messages).
//! 4. mark it published (no fsync) — nothing to redo.
//! 5. commit the tick offsets — ticks after the committed offset are read
//!    again; those the checkpoint already reflects are skipped.
//!
//! On the embedded memory bus, a published interval stays in the checkpoint
//! (unsettled) until the sink of this process has committed past it: a
//! restart, on a new bus, publishes it again.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::book::PriceBook;
use super::schedule::Schedule;
use super::state::{InvestorState, Pending, StateError, Unsettled};
use super::status::StatusBoard;
use crate::bus::{Bus, Consumer, LagProbe, Positions, Receipt};
use crate::market::{InvestorId, PortfolioId, format_seconds, nav_changes};
use crate::metrics::Metrics;
use crate::plugin::{PluginError, PluginImage, PluginInstance, PluginRegistry, PortfolioNav, Quote};

/// Longest wait for ticks before checking the schedule and shutdown again.
const POLL_SLICE: Duration = Duration::from_millis(100);
/// Most ticks taken per poll.
const POLL_BATCH: usize = 10_000;
/// How often the consumer lag is measured for the metrics.
const LAG_PERIOD: Duration = Duration::from_secs(10);
/// How long a stopping investor waits for the sink to make its last
/// intervals durable (else a restart publishes them again).
const SETTLE_WAIT: Duration = Duration::from_secs(5);

/// What every investor of a process shares.
pub(crate) struct Shared<B> {
    pub(crate) bus: B,
    pub(crate) registry: Arc<PluginRegistry>,
    pub(crate) schedule: Schedule,
    pub(crate) settings: super::RuntimeSettings,
    pub(crate) metrics: Metrics,
    /// Bounds concurrent plugin calls to the cores available.
    pub(crate) plugin_calls: Arc<Semaphore>,
    /// Bounds the valuation lines logged per interval.
    pub(crate) log_cap: super::log_cap::LogCap,
    /// Every investor's status (quarantine, last interval valued, failures).
    pub(crate) status: StatusBoard,
    /// Overruns, logged once per interval for all investors of the process.
    pub(crate) overrun_logged: OncePerInterval,
    /// Failed publishes, logged once per interval for all investors of the
    /// process.
    pub(crate) publish_failure_logged: OncePerInterval,
}

/// A cause every investor of the process meets at once (the bus has no
/// room, the process fell behind) is logged once per interval, at the
/// first investor to meet it, and at debug level for the others: a
/// thousand investors would otherwise log a thousand lines of one cause.
#[derive(Debug, Default)]
pub(crate) struct OncePerInterval(std::sync::atomic::AtomicU64);

impl OncePerInterval {
    /// Whether this is the first report in interval `k` (k ≥ 1).
    pub(crate) fn first(&self, k: u64) -> bool {
        self.0.fetch_max(k, std::sync::atomic::Ordering::Relaxed) < k
    }
}

/// Why a worker ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// The daemon is stopping.
    Shutdown,
    /// The plugin file was removed.
    Unloaded,
}

struct Worker<B: Bus> {
    shared: Arc<Shared<B>>,
    /// This process's hold on the investor (see [`super::active`]).
    _active: std::fs::File,
    /// Its consumer group.
    group: String,
    investor: InvestorId,
    image: Arc<PluginImage>,
    /// Taken while a call runs on the blocking pool.
    instance: Option<PluginInstance>,
    consumer: B::Consumer,
    book: PriceBook,
    state_path: PathBuf,
    navs: BTreeMap<u32, f64>,
    /// How many intervals this investor has valued, ever.
    interval: u64,
    /// The INTERVAL_MS of the last interval valued.
    last_interval_ms: i64,
    /// The last interval's valuations, until the broker acknowledged them.
    pending: Option<Pending>,
    /// Intervals published (with their receipt) or to publish again (none)
    /// that the sink may not have made durable yet, oldest first; only
    /// where the bus keeps messages in this process alone.
    unsettled: VecDeque<(Unsettled, Option<Receipt>)>,
    failures: u32,
    quarantined: bool,
    missing_logged: BTreeSet<String>,
    /// Whether the state moved since the last durable checkpoint.
    dirty: bool,
    /// Whether the consumer group gives this process no tick partition
    /// (as last seen).
    without_ticks: bool,
    /// The positions in the last durable checkpoint: the only ones that may
    /// be committed.
    durable_positions: Positions,
    /// The positions last committed.
    committed_positions: Positions,
}

/// Runs investor `investor` until it is unloaded or the daemon stops.
pub(crate) async fn run<B: Bus>(
    shared: Arc<Shared<B>>,
    investor: InvestorId,
    shutdown: CancellationToken,
) -> anyhow::Result<Exit> {
    let loaded = || shared.registry.plugins().contains_key(&investor);
    let taken = super::active::take(&shared.settings.data, investor, &shared.status, &shutdown, loaded).await;
    let Ok(Some(lock)) = taken else {
        // Stopped, unloaded or failed while standing by.
        shared.status.remove(investor);
        let path = crate::layout::investor_lock_path(&shared.settings.data, investor);
        taken.with_context(|| format!("investor {investor}: taking {}", path.display()))?;
        return Ok(if shutdown.is_cancelled() { Exit::Shutdown } else { Exit::Unloaded });
    };
    let Some(image) = shared.registry.plugins().get(&investor).cloned() else {
        return Ok(Exit::Unloaded);
    };
    let mut worker = Worker::start(shared, investor, image, lock).await?;
    let result = worker.work(&shutdown).await;
    worker.set_quarantined(false);
    worker.shared.status.remove(investor);
    result
}

impl<B: Bus> Worker<B> {
    async fn start(
        shared: Arc<Shared<B>>,
        investor: InvestorId,
        image: Arc<PluginImage>,
        lock: std::fs::File,
    ) -> anyhow::Result<Self> {
        let settings = &shared.settings;
        let state_path = crate::layout::investor_state_path(&settings.data, investor);
        let state = match InvestorState::load(&state_path) {
            Ok(state) => state.unwrap_or_default(),
            Err(error @ StateError::Corrupt { .. }) => {
                let kept = state_path.with_extension(format!("corrupt-{}", std::process::id()));
                tracing::error!(investor = %investor, "{error}; starting afresh, the file is kept as {}", kept.display());
                std::fs::rename(&state_path, &kept)
                    .with_context(|| format!("moving {} aside", state_path.display()))?;
                InvestorState::default()
            }
            Err(error) => return Err(error.into()),
        };
        let mut book = PriceBook::restore(state.prices, state.positions);
        let mut pending = state.pending;
        let mut unsettled = VecDeque::new();
        if !state.bus.is_empty() && !shared.bus.is_identity(&state.bus) {
            // Offsets of another bus (a restarted memory bus starts at 0).
            book.forget_positions();
            if crate::bus::lost_with_its_process(&state.bus) {
                // What the old process's sink may not have written goes
                // out again; its identities skip what it had.
                if !state.unsettled.is_empty() {
                    tracing::info!(investor = %investor, "publishing again {} interval(s) the sink may not have written before the restart", state.unsettled.len());
                }
                unsettled = state.unsettled.into_iter().map(|interval| (interval, None)).collect();
            } else if let Some(dropped) = pending.take() {
                tracing::warn!(investor = %investor, "dropping interval {} of a previous bus ({}): it may not have been published", dropped.interval, state.bus);
            }
        }
        if state.last_interval_ms > 0 {
            let next = shared.schedule.current(Instant::now()) + 1;
            if let Some(moved) = shared.schedule.stamp_after(next, state.last_interval_ms) {
                let last = chrono::DateTime::from_timestamp_millis(state.last_interval_ms).unwrap_or_default();
                let seconds = moved.num_milliseconds() as f64 / 1e3;
                if moved.to_std().is_ok_and(|moved| moved > shared.schedule.interval()) {
                    tracing::warn!(
                        investor = %investor,
                        "the wall clock is behind this investor's last interval ({}): this process stamps its \
                         intervals {seconds} s later than its clock, so that every portfolio's rows stay in time order",
                        format_seconds(last.naive_utc())
                    );
                } else {
                    // Less than an interval: it only spaces the first stamp
                    // from the last one of the process that held the investor.
                    tracing::debug!(investor = %investor, "intervals stamped {seconds} s later, one interval after the last");
                }
            }
        }
        // What the checkpoint holds is durable: committable at once (which
        // also catches up after a crash between a checkpoint and its commit).
        let durable_positions = book.positions().clone();
        let group = settings.groups.investor(investor);
        let consumer = shared.bus.consumer(&group, &[&settings.stock_topic])?;
        tracing::info!(investor = %investor, name = image.name(), group, "investor started at interval {}", state.interval);
        Ok(Worker {
            shared,
            _active: lock,
            group,
            investor,
            image,
            instance: None,
            consumer,
            book,
            state_path,
            navs: state.navs,
            interval: state.interval,
            last_interval_ms: state.last_interval_ms,
            pending,
            unsettled,
            failures: 0,
            quarantined: false,
            missing_logged: BTreeSet::new(),
            dirty: false,
            without_ticks: false,
            durable_positions,
            committed_positions: Positions::new(),
        })
    }

    async fn work(&mut self, shutdown: &CancellationToken) -> anyhow::Result<Exit> {
        let schedule = self.shared.schedule.clone();
        let mut next = schedule.current(Instant::now()) + 1;
        let mut lag = LagProbe::new(LAG_PERIOD);
        loop {
            if let Some(lags) = lag.take(&self.consumer) {
                self.shared.metrics.consumer_lag(&self.group, lags.iter().map(|lag| lag.unread).sum());
            }
            if shutdown.is_cancelled() {
                self.await_settled(SETTLE_WAIT).await;
                self.checkpoint_and_commit().await?;
                return Ok(Exit::Shutdown);
            }
            let now = Instant::now();
            if now >= schedule.boundary(next) {
                let due = schedule.current(now);
                if due > next {
                    if self.shared.overrun_logged.first(due) {
                        tracing::warn!(
                            investor = %self.investor,
                            "investor {} skipped {} interval(s), the previous one having overrun (other investors \
                             of this process skipping interval {due} log at debug level)",
                            self.investor,
                            due - next
                        );
                    } else {
                        tracing::debug!(investor = %self.investor, "skipped {} interval(s) (the previous one overran)", due - next);
                    }
                }
                if let Some(exit) = self.run_interval(due).await? {
                    self.checkpoint_and_commit().await?;
                    return Ok(exit);
                }
                next = due + 1;
                continue;
            }
            let wait = schedule.boundary(next).saturating_duration_since(now).min(POLL_SLICE);
            self.read_ticks(wait).await;
        }
    }

    /// Reads the ticks available within `wait` into the book.
    async fn read_ticks(&mut self, wait: Duration) {
        match self.consumer.poll(POLL_BATCH, wait).await {
            Ok(messages) if !messages.is_empty() => {
                let applied = self.book.apply(&messages);
                for (offset, reason) in &applied.rejected {
                    tracing::warn!(investor = %self.investor, offset, "malformed tick skipped: {reason}");
                }
                self.shared.metrics.ticks_consumed(self.investor.get(), applied.ticks, applied.rejected.len() as u64);
                self.dirty = true;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(investor = %self.investor, "reading ticks: {error}");
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// Interval `k`: follow plugin changes, value, publish, checkpoint,
    /// commit. Returns an exit when the plugin is gone.
    async fn run_interval(&mut self, k: u64) -> anyhow::Result<Option<Exit>> {
        match self.shared.registry.plugins().get(&self.investor) {
            None => {
                tracing::info!(investor = %self.investor, "plugin removed: investor stopped");
                return Ok(Some(Exit::Unloaded));
            }
            Some(latest) if latest.generation() != self.image.generation() => self.switch_to(Arc::clone(latest)),
            Some(_) => {}
        }
        // Ticks already waiting belong to this interval.
        self.read_ticks(Duration::ZERO).await;
        if !self.holds_ticks() {
            return Ok(None);
        }
        self.settle();
        if self.owes_publication() {
            self.publish_pending().await;
        }
        if !self.owes_publication()
            && !self.quarantined
            && let Some(quotes) = self.quotes()
        {
            let as_of = self.shared.schedule.timestamp(k).and_utc().into();
            match self.evaluate(quotes, as_of).await {
                Ok(navs) => {
                    self.failures = 0;
                    self.shared.status.valued(self.investor, format_seconds(self.shared.schedule.timestamp(k)));
                    self.stage(k, &navs);
                    self.save_state().await?;
                    self.publish_pending().await;
                }
                Err(error) => self.failed(&error),
            }
        }
        self.checkpoint_and_commit().await?;
        Ok(None)
    }

    /// Whether the consumer group gives this process tick partitions. On
    /// Kafka a process whose group gives it none (another process runs this
    /// investor, from a state folder of its own, and has the partitions; or
    /// the group is rebalancing) values and publishes nothing: with the
    /// tick topic's one partition (the default), one process per investor
    /// publishes.
    fn holds_ticks(&mut self) -> bool {
        let holds = self.consumer.assigned(&self.shared.settings.stock_topic).is_none_or(|p| !p.is_empty());
        if holds == self.without_ticks {
            self.without_ticks = !holds;
            if holds {
                tracing::info!(investor = %self.investor, "the consumer group gives this process ticks again: valuing");
            } else {
                tracing::info!(
                    investor = %self.investor,
                    "consumer group {} gives this process no tick partition (the group is rebalancing, or \
                     another process runs investor {}): valuing nothing until it does",
                    self.group, self.investor
                );
            }
        }
        holds
    }

    /// Takes a new version of the plugin from the next call on. NAVs of
    /// portfolio ids it still has carry over; others are forgotten.
    fn switch_to(&mut self, image: Arc<PluginImage>) {
        let ids: BTreeSet<u32> = image.portfolios().iter().map(|p| p.id).collect();
        self.navs.retain(|id, _| ids.contains(id));
        tracing::info!(
            investor = %self.investor, name = image.name(), path = %image.path().display(),
            "switching to the new plugin version; NAV changes continue for {} portfolio(s)", self.navs.len()
        );
        self.image = image;
        self.instance = None;
        self.failures = 0;
        self.set_quarantined(false);
        self.missing_logged.clear();
    }

    /// The latest price of every ticker held, or `None` (logged once per
    /// missing ticker) when one has none yet.
    fn quotes(&mut self) -> Option<Vec<Quote>> {
        let mut quotes = Vec::with_capacity(self.image.tickers().len());
        let mut missing = Vec::new();
        for ticker in self.image.tickers() {
            match self.book.price(ticker) {
                Some(price) => quotes.push(Quote { ticker: ticker.clone(), price }),
                None => missing.push(ticker.clone()),
            }
        }
        if missing.is_empty() {
            return Some(quotes);
        }
        self.shared.metrics.valuation_missing_price(self.investor.get());
        let new: Vec<String> = missing.into_iter().filter(|t| self.missing_logged.insert(t.clone())).collect();
        if !new.is_empty() {
            tracing::warn!(
                investor = %self.investor,
                "no price yet for {}: nothing published until every ticker held has one", new.join(", ")
            );
        }
        None
    }

    /// Calls `evaluate` on the blocking pool, at most one call per core at
    /// a time across investors.
    ///
    /// The call's own time (measured on the thread that runs it) and the
    /// wait for a free core (a slot, then a blocking-pool thread) are
    /// recorded apart: at a thousand investors the wait dominates.
    /// The plugin's wall clock shows `as_of`, the interval's timestamp.
    async fn evaluate(&mut self, quotes: Vec<Quote>, as_of: SystemTime) -> Result<Vec<PortfolioNav>, PluginError> {
        let queued = std::time::Instant::now();
        let permit =
            Arc::clone(&self.shared.plugin_calls).acquire_owned().await.expect("the semaphore is never closed");
        let mut instance = self.instance.take().unwrap_or_else(|| self.image.instantiate());
        let (instance, result, waited, took) = tokio::task::spawn_blocking(move || {
            let waited = queued.elapsed();
            let started = std::time::Instant::now();
            let result = instance.evaluate_at(&quotes, as_of);
            let took = started.elapsed();
            drop(permit);
            (instance, result, waited, took)
        })
        .await
        .expect("a plugin call cannot panic the host");
        self.instance = Some(instance);
        self.shared.metrics.plugin_wait(waited);
        self.shared.metrics.plugin_call(self.investor.get(), took, result.as_ref().err().map(PluginError::kind));
        result
    }

    /// Makes interval `k` (of the schedule) this investor's next interval:
    /// moves the NAVs and keeps what is needed to publish it.
    fn stage(&mut self, k: u64, navs: &[PortfolioNav]) {
        let previous = std::mem::take(&mut self.navs);
        let grant = self.shared.log_cap.grant(k, navs.len());
        if grant.reached_cap {
            tracing::info!(
                "more than {} valuations this interval: the rest are logged at debug level (RUST_LOG=stockd=debug)",
                super::VALUATION_LINES_PER_INTERVAL
            );
        }
        for (index, nav) in navs.iter().enumerate() {
            let (rounded, change, pct) = nav_changes(nav.nav, previous.get(&nav.portfolio).copied());
            let id = PortfolioId { investor: self.investor, number: nav.portfolio };
            if index < grant.lines as usize {
                tracing::info!(
                    investor = %self.investor, portfolio = %id, nav = rounded, change, pct,
                    "{id} NAV {rounded:.2} change {change:.2} ({pct:.2}%)"
                );
            } else {
                tracing::debug!(
                    investor = %self.investor, portfolio = %id, nav = rounded, change, pct,
                    "{id} NAV {rounded:.2} change {change:.2} ({pct:.2}%)"
                );
            }
            self.navs.insert(nav.portfolio, rounded);
        }
        self.interval += 1;
        // The identity of the interval's valuations: its time, kept above
        // the previous one's even if the clock went back across a restart.
        let at = self.shared.schedule.timestamp(k);
        self.last_interval_ms = at.and_utc().timestamp_millis().max(self.last_interval_ms + 1);
        self.pending = Some(Pending {
            interval: self.interval,
            timestamp: format_seconds(at),
            interval_ms: Some(self.last_interval_ms),
            investor: self.image.name().to_string(),
            previous,
        });
        self.dirty = true;
    }

    /// Publishes what a restart left to publish again, then the pending
    /// interval; on success records it, on failure keeps it for the next
    /// interval.
    async fn publish_pending(&mut self) {
        let topic = &self.shared.settings.portfolio_topic;
        for (interval, receipt) in self.unsettled.iter_mut().filter(|(_, receipt)| receipt.is_none()) {
            let records = interval.records(self.investor);
            let count = records.len();
            if let Err(error) = self.shared.bus.produce_batch(topic, records).await {
                self.log_publish_failure(&format!("publishing again {count} valuations"), &error);
                return;
            }
            *receipt = Some(self.shared.bus.receipt(topic));
        }
        let Some(pending) = &self.pending else { return };
        let records = pending.records(self.investor, &self.navs);
        let count = records.len() as u64;
        match self.shared.bus.produce_batch(topic, records).await {
            Ok(()) => {
                self.shared.metrics.valuations_published(self.investor.get(), count);
                let (path, interval) = (self.state_path.clone(), pending.interval);
                let published = self.pending.take().expect("checked");
                if self.shared.settings.settled_by.is_some() {
                    let receipt = self.shared.bus.receipt(topic);
                    self.unsettled
                        .push_back((Unsettled { interval: published, navs: self.navs.clone() }, Some(receipt)));
                }
                match tokio::task::spawn_blocking(move || InvestorState::mark_published(&path, interval)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::warn!(investor = %self.investor, "{error}"),
                    Err(error) => tracing::warn!(investor = %self.investor, "{error}"),
                }
            }
            Err(error) => self.log_publish_failure(&format!("publishing {count} valuations"), &error),
        }
    }

    /// Logs a failed publish (retried at the next interval): at error level
    /// for the first investor of the process to fail in this interval, at
    /// debug level for the others (see [`OncePerInterval`]).
    fn log_publish_failure(&self, what: &str, error: &crate::bus::BusError) {
        let k = self.shared.schedule.current(Instant::now());
        if self.shared.publish_failure_logged.first(k) {
            tracing::error!(
                investor = %self.investor,
                "investor {}: {what} failed (retried next interval; other investors of this process failing in \
                 interval {k} log at debug level): {error}",
                self.investor
            );
        } else {
            tracing::debug!(investor = %self.investor, "{what} failed (retried next interval): {error}");
        }
    }

    /// Whether an interval valued is still to be published (or published
    /// again after a restart): nothing new is valued until it is, so that
    /// intervals go out in order.
    fn owes_publication(&self) -> bool {
        self.pending.is_some() || self.unsettled.iter().any(|(_, receipt)| receipt.is_none())
    }

    /// Forgets the published intervals the sink has made durable.
    fn settle(&mut self) {
        let (bus, topic) = (&self.shared.bus, &self.shared.settings.portfolio_topic);
        let Some(group) = &self.shared.settings.settled_by else { return };
        while let Some((_, Some(receipt))) = self.unsettled.front() {
            if !bus.is_settled(group, topic, receipt) {
                break;
            }
            self.unsettled.pop_front();
            self.dirty = true;
        }
    }

    /// Waits up to `limit` for the sink to make every published interval
    /// durable (a stop: the sink still runs).
    async fn await_settled(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            self.settle();
            if self.unsettled.iter().all(|(_, receipt)| receipt.is_none()) || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A failed plugin call: counted; after `quarantine_after` in a row the
    /// investor is quarantined until its file changes.
    fn failed(&mut self, error: &PluginError) {
        self.failures += 1;
        self.shared.status.failed(self.investor, error.to_string());
        let limit = self.shared.settings.quarantine_after;
        tracing::warn!(investor = %self.investor, failures = self.failures, "nothing published this interval: {error}");
        if self.failures >= limit {
            tracing::error!(investor = %self.investor, "quarantined after {limit} consecutive failures; replace investor{}.wasm to retry", self.investor);
            self.set_quarantined(true);
        }
    }

    fn set_quarantined(&mut self, quarantined: bool) {
        self.quarantined = quarantined;
        let count = self.shared.status.set_quarantined(self.investor, quarantined);
        self.shared.metrics.investors_quarantined(count);
    }

    /// Writes the checkpoint durably (on the blocking pool); its positions
    /// become committable.
    async fn save_state(&mut self) -> anyhow::Result<()> {
        let state = InvestorState {
            bus: self.shared.bus.identity(),
            interval: self.interval,
            navs: self.navs.clone(),
            prices: self.book.prices().clone(),
            positions: self.book.positions().clone(),
            pending: self.pending.clone(),
            last_interval_ms: self.last_interval_ms,
            unsettled: self.unsettled.iter().map(|(interval, _)| interval.clone()).collect(),
        };
        let path = self.state_path.clone();
        let positions = state.positions.clone();
        tokio::task::spawn_blocking(move || state.save(&path)).await??;
        self.dirty = false;
        self.durable_positions = positions;
        Ok(())
    }

    /// Makes the state durable, then commits the positions it holds.
    async fn checkpoint_and_commit(&mut self) -> anyhow::Result<()> {
        if self.dirty {
            self.save_state().await?;
        }
        if self.durable_positions == self.committed_positions {
            return Ok(());
        }
        match self.consumer.commit(&self.durable_positions).await {
            Ok(()) => self.committed_positions = self.durable_positions.clone(),
            // Not fatal: the checkpoint holds the positions; a restart
            // re-reads from the older commit and skips what it reflects.
            Err(error) => tracing::warn!(investor = %self.investor, "committing tick offsets: {error}"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::OncePerInterval;

    #[test]
    fn a_cause_met_by_every_investor_is_reported_once_per_interval() {
        let once = OncePerInterval::default();
        assert!(once.first(3), "the first investor to meet it in interval 3");
        assert!(!once.first(3), "another investor in interval 3");
        assert!(once.first(4), "the next interval");
        assert!(!once.first(3), "a late report of an earlier interval");
    }
}
