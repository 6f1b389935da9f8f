//! Counters of everything that happens, in one registry: served as
//! Prometheus text on `/metrics` and summarised in the log every interval.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExchangeLabel {
    exchange: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InvestorLabel {
    investor: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginErrorLabel {
    investor: u32,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabel {
    tier: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabel {
    group: String,
}

/// The daemon's counters. Cheap to clone; clones count together.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    ticks_produced: Family<ExchangeLabel, Counter>,
    tick_produce_errors: Family<ExchangeLabel, Counter>,
    ticks_consumed: Family<InvestorLabel, Counter>,
    ticks_rejected: Family<InvestorLabel, Counter>,
    valuations_published: Family<InvestorLabel, Counter>,
    valuations_missing_price: Family<InvestorLabel, Counter>,
    plugin_calls: Family<InvestorLabel, Counter>,
    plugin_errors: Family<PluginErrorLabel, Counter>,
    plugin_call_seconds: Histogram,
    plugin_wait_seconds: Histogram,
    investors_loaded: Gauge,
    investors_quarantined: Gauge,
    sink_rows: Counter,
    sink_files_created: Counter,
    sink_rejected: Counter,
    sink_duplicates: Counter,
    sink_batches: Counter,
    consumer_lag: Family<GroupLabel, Gauge>,
    partitions_unread: Family<GroupLabel, Gauge>,
    messages_missed: Family<GroupLabel, Counter>,
    web_events_dropped: Counter,
    produce_wait_seconds: Histogram,
    data_bytes: Family<TierLabel, Gauge>,
    filesystem_free_bytes: Gauge,
    archive_files_merged: Counter,
    archive_hours_dropped: Counter,
    csv_files_cut: Counter,
    totals: Totals,
    /// The slowest plugin call since the last interval summary.
    slowest_call: Mutex<Option<(u32, Duration)>>,
    /// The totals at the last interval summary.
    last_summary: Mutex<Snapshot>,
}

/// The counters an interval summary reports the change of.
#[derive(Debug, Clone, Copy, Default)]
struct Snapshot {
    valuations: u64,
    rows: u64,
    plugin_errors: u64,
}

/// Sums over all labels, for the log summary.
#[derive(Default)]
struct Totals {
    ticks_produced: AtomicU64,
    ticks_consumed: AtomicU64,
    valuations_published: AtomicU64,
    plugin_errors: AtomicU64,
    messages_missed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh set of counters, registered under the `stockd_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("stockd");
        let inner = Inner {
            ticks_produced: Family::default(),
            tick_produce_errors: Family::default(),
            ticks_consumed: Family::default(),
            ticks_rejected: Family::default(),
            valuations_published: Family::default(),
            valuations_missing_price: Family::default(),
            plugin_calls: Family::default(),
            plugin_errors: Family::default(),
            // 10 µs … ~5 s
            plugin_call_seconds: Histogram::new(exponential_buckets(1e-5, 3.0, 12)),
            plugin_wait_seconds: Histogram::new(exponential_buckets(1e-5, 3.0, 12)),
            investors_loaded: Gauge::default(),
            investors_quarantined: Gauge::default(),
            sink_rows: Counter::default(),
            sink_files_created: Counter::default(),
            sink_rejected: Counter::default(),
            sink_duplicates: Counter::default(),
            sink_batches: Counter::default(),
            consumer_lag: Family::default(),
            partitions_unread: Family::default(),
            messages_missed: Family::default(),
            web_events_dropped: Counter::default(),
            // 100 µs … ~60 s
            produce_wait_seconds: Histogram::new(exponential_buckets(1e-4, 3.0, 13)),
            data_bytes: Family::default(),
            filesystem_free_bytes: Gauge::default(),
            archive_files_merged: Counter::default(),
            archive_hours_dropped: Counter::default(),
            csv_files_cut: Counter::default(),
            totals: Totals::default(),
            slowest_call: Mutex::new(None),
            last_summary: Mutex::new(Snapshot::default()),
            registry: Registry::default(),
        };
        registry.register("ticks_produced", "Ticks published by an exchange", inner.ticks_produced.clone());
        registry.register(
            "tick_produce_errors",
            "Ticks an exchange could not publish",
            inner.tick_produce_errors.clone(),
        );
        registry.register("ticks_consumed", "Ticks read by an investor", inner.ticks_consumed.clone());
        registry.register("ticks_rejected", "Malformed ticks an investor skipped", inner.ticks_rejected.clone());
        registry.register(
            "valuations_published",
            "Valuations published by an investor",
            inner.valuations_published.clone(),
        );
        registry.register(
            "valuations_missing_price",
            "Intervals an investor skipped because a ticker had no price yet",
            inner.valuations_missing_price.clone(),
        );
        registry.register("plugin_calls", "Calls into an investor plugin's evaluate", inner.plugin_calls.clone());
        registry.register(
            "plugin_errors",
            "Failed plugin calls, by kind (timeout, memory, trap…)",
            inner.plugin_errors.clone(),
        );
        registry.register(
            "plugin_call_seconds",
            "Time an evaluate call ran (on its thread, not counting the wait for one)",
            inner.plugin_call_seconds.clone(),
        );
        registry.register(
            "plugin_wait_seconds",
            "Time an evaluate call waited for a free core before it ran",
            inner.plugin_wait_seconds.clone(),
        );
        registry.register("investors_loaded", "Investor plugins loaded", inner.investors_loaded.clone());
        registry.register(
            "investors_quarantined",
            "Investors quarantined after repeated failures",
            inner.investors_quarantined.clone(),
        );
        registry.register(
            "sink_rows",
            "Rows made durable: appended to portfolio files (or written to the archive alone, sink.csv-files = false)",
            inner.sink_rows.clone(),
        );
        registry.register("sink_files_created", "Portfolio files created", inner.sink_files_created.clone());
        registry.register(
            "sink_rejected",
            "Messages the sink rejected (see rejected.jsonl)",
            inner.sink_rejected.clone(),
        );
        registry.register(
            "sink_duplicates_skipped",
            "Valuations the sink skipped because their row was written already (published twice)",
            inner.sink_duplicates.clone(),
        );
        registry.register("sink_batches", "Batches the sink made durable and committed", inner.sink_batches.clone());
        registry.register(
            "consumer_lag",
            "Messages a consumer group has yet to read, over every partition (those no process of this group holds against the group's committed offset)",
            inner.consumer_lag.clone(),
        );
        registry.register(
            "partitions_unread",
            "Partitions with messages unread whose committed offset has not moved for longer than the session timeout: no member of the group reads them",
            inner.partitions_unread.clone(),
        );
        registry.register(
            "messages_missed",
            "Messages a consumer group never read because the bus no longer held them",
            inner.messages_missed.clone(),
        );
        registry.register(
            "web_events_dropped",
            "Live events a browser of the web view missed because it read too slowly (it skips to the latest)",
            inner.web_events_dropped.clone(),
        );
        registry.register(
            "produce_wait_seconds",
            "Time a producer waited for room on the embedded bus (backpressure from a consumer behind)",
            inner.produce_wait_seconds.clone(),
        );
        registry.register(
            "data_bytes",
            "Bytes the data folder holds, by tier (csv: the portfolio files; archive: the Parquet archive)",
            inner.data_bytes.clone(),
        );
        registry.register(
            "filesystem_free_bytes",
            "Bytes free for the sink on the data folder's file system",
            inner.filesystem_free_bytes.clone(),
        );
        registry.register(
            "archive_files_merged",
            "Small archive files merged by compaction",
            inner.archive_files_merged.clone(),
        );
        registry.register(
            "archive_hours_dropped",
            "Hour partitions of the archive dropped by retention",
            inner.archive_hours_dropped.clone(),
        );
        registry.register(
            "csv_files_cut",
            "Portfolio files cut back to their header when a CSV window started",
            inner.csv_files_cut.clone(),
        );
        Metrics { inner: Arc::new(Inner { registry, ..inner }) }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry).expect("writing to a String");
        text
    }

    /// An exchange published a tick.
    pub fn tick_produced(&self, exchange: &str) {
        self.inner.ticks_produced.get_or_create(&ExchangeLabel { exchange: exchange.to_string() }).inc();
        self.inner.totals.ticks_produced.fetch_add(1, Ordering::Relaxed);
    }

    /// An exchange could not publish a tick.
    pub fn tick_produce_failed(&self, exchange: &str) {
        self.inner.tick_produce_errors.get_or_create(&ExchangeLabel { exchange: exchange.to_string() }).inc();
    }

    /// An investor read `n` ticks, of which `rejected` were malformed.
    pub fn ticks_consumed(&self, investor: u32, n: u64, rejected: u64) {
        let label = InvestorLabel { investor };
        self.inner.ticks_consumed.get_or_create(&label).inc_by(n);
        self.inner.totals.ticks_consumed.fetch_add(n, Ordering::Relaxed);
        if rejected > 0 {
            self.inner.ticks_rejected.get_or_create(&label).inc_by(rejected);
        }
    }

    /// An investor published `n` valuations.
    pub fn valuations_published(&self, investor: u32, n: u64) {
        self.inner.valuations_published.get_or_create(&InvestorLabel { investor }).inc_by(n);
        self.inner.totals.valuations_published.fetch_add(n, Ordering::Relaxed);
    }

    /// An investor skipped an interval for lack of prices.
    pub fn valuation_missing_price(&self, investor: u32) {
        self.inner.valuations_missing_price.get_or_create(&InvestorLabel { investor }).inc();
    }

    /// A plugin call ran for `took`; `error` is the failure kind.
    pub fn plugin_call(&self, investor: u32, took: Duration, error: Option<&str>) {
        self.inner.plugin_calls.get_or_create(&InvestorLabel { investor }).inc();
        self.inner.plugin_call_seconds.observe(took.as_secs_f64());
        let mut slowest = self.inner.slowest_call.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if slowest.is_none_or(|(_, longest)| took > longest) {
            *slowest = Some((investor, took));
        }
        drop(slowest);
        if let Some(kind) = error {
            self.inner.plugin_errors.get_or_create(&PluginErrorLabel { investor, kind: kind.to_string() }).inc();
            self.inner.totals.plugin_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A plugin call waited `waited` for a free core.
    pub fn plugin_wait(&self, waited: Duration) {
        self.inner.plugin_wait_seconds.observe(waited.as_secs_f64());
    }

    /// A producer waited `waited` for room on the embedded bus.
    pub fn produce_wait(&self, waited: Duration) {
        self.inner.produce_wait_seconds.observe(waited.as_secs_f64());
    }

    /// A browser of the web view skipped `n` live events.
    pub fn web_events_dropped(&self, n: u64) {
        self.inner.web_events_dropped.inc_by(n);
    }

    /// Consumer group `group` will never read `n` messages.
    pub fn messages_missed(&self, group: &str, n: u64) {
        self.inner.messages_missed.get_or_create(&GroupLabel { group: group.to_string() }).inc_by(n);
        self.inner.totals.messages_missed.fetch_add(n, Ordering::Relaxed);
    }

    /// How many investors are loaded.
    pub fn investors_loaded(&self, loaded: usize) {
        self.inner.investors_loaded.set(loaded as i64);
    }

    /// How many investors are quarantined.
    pub fn investors_quarantined(&self, quarantined: usize) {
        self.inner.investors_quarantined.set(quarantined as i64);
    }

    /// The sink made a batch durable: rows written, files created, messages
    /// rejected, valuations skipped as written already.
    pub fn sink_batch(&self, rows: u64, files_created: u64, rejected: u64, duplicates: u64) {
        self.inner.sink_batches.inc();
        self.inner.sink_rows.inc_by(rows);
        self.inner.sink_files_created.inc_by(files_created);
        self.inner.sink_rejected.inc_by(rejected);
        self.inner.sink_duplicates.inc_by(duplicates);
    }

    /// The bytes the data folder's `tier` ("csv" or "archive") holds.
    pub fn data_bytes(&self, tier: &str, bytes: u64) {
        self.inner.data_bytes.get_or_create(&TierLabel { tier: tier.to_string() }).set(bytes as i64);
    }

    /// The bytes free on the data folder's file system.
    pub fn filesystem_free_bytes(&self, bytes: u64) {
        self.inner.filesystem_free_bytes.set(bytes as i64);
    }

    /// An archive upkeep pass merged `merged` files and dropped `dropped`
    /// hours.
    pub fn archive_upkeep(&self, merged: u64, dropped: u64) {
        self.inner.archive_files_merged.inc_by(merged);
        self.inner.archive_hours_dropped.inc_by(dropped);
    }

    /// Portfolio files cut back to their header.
    pub fn csv_files_cut(&self, files: u64) {
        self.inner.csv_files_cut.inc_by(files);
    }

    /// A consumer group's lag.
    pub fn consumer_lag(&self, group: &str, lag: u64) {
        self.inner.consumer_lag.get_or_create(&GroupLabel { group: group.to_string() }).set(lag as i64);
    }

    /// The partitions no member of `group` reads now.
    pub fn partitions_unread(&self, group: &str, count: usize) {
        self.inner.partitions_unread.get_or_create(&GroupLabel { group: group.to_string() }).set(count as i64);
    }

    /// One line on what happened since the previous call: valuations
    /// published, rows written, plugin errors, the lag of `sink_group` (when
    /// this process runs the sink), the slowest plugin call.
    pub fn interval_summary(&self, sink_group: Option<&str>) -> String {
        let totals = &self.inner.totals;
        let now = Snapshot {
            valuations: totals.valuations_published.load(Ordering::Relaxed),
            rows: self.inner.sink_rows.get(),
            plugin_errors: totals.plugin_errors.load(Ordering::Relaxed),
        };
        let before = std::mem::replace(
            &mut *self.inner.last_summary.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
            now,
        );
        let slowest = self.inner.slowest_call.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        let mut line = format!(
            "{} valuations published, {} rows written, {} plugin errors",
            now.valuations - before.valuations,
            now.rows - before.rows,
            now.plugin_errors - before.plugin_errors
        );
        if let Some(group) = sink_group {
            let lag = self.inner.consumer_lag.get_or_create(&GroupLabel { group: group.to_string() }).get();
            line.push_str(&format!("; sink lag {lag}"));
        }
        if let Some((investor, took)) = slowest {
            line.push_str(&format!("; slowest evaluate: investor {investor}, {:.1} ms", took.as_secs_f64() * 1e3));
        }
        line
    }

    /// Valuations published so far, by every investor.
    pub fn valuations_published_total(&self) -> u64 {
        self.inner.totals.valuations_published.load(Ordering::Relaxed)
    }

    /// Rows the sink has made durable so far.
    pub fn sink_rows_total(&self) -> u64 {
        self.inner.sink_rows.get()
    }

    /// Messages any consumer group missed so far.
    pub fn messages_missed_total(&self) -> u64 {
        self.inner.totals.messages_missed.load(Ordering::Relaxed)
    }

    /// A one-line summary of the totals, for the periodic log line.
    pub fn summary(&self) -> String {
        let totals = &self.inner.totals;
        format!(
            "ticks produced {}, ticks consumed {}, valuations published {}, plugin errors {}, sink rows {}, sink rejects {}",
            totals.ticks_produced.load(Ordering::Relaxed),
            totals.ticks_consumed.load(Ordering::Relaxed),
            totals.valuations_published.load(Ordering::Relaxed),
            totals.plugin_errors.load(Ordering::Relaxed),
            self.inner.sink_rows.get(),
            self.inner.sink_rejected.get()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_in_the_exposition_and_the_summary() {
        let metrics = Metrics::new();
        metrics.tick_produced("se1");
        metrics.tick_produced("se1");
        metrics.valuations_published(2, 6);
        metrics.plugin_call(2, Duration::from_micros(5), Some("timeout"));
        metrics.sink_batch(6, 2, 1, 3);
        let text = metrics.encode();
        assert!(text.contains("stockd_ticks_produced_total{exchange=\"se1\"} 2"), "{text}");
        assert!(text.contains("stockd_plugin_errors_total{investor=\"2\",kind=\"timeout\"} 1"), "{text}");
        assert!(text.contains("stockd_sink_rows_total 6"), "{text}");
        assert!(text.contains("stockd_sink_duplicates_skipped_total 3"), "{text}");
        assert_eq!(
            metrics.interval_summary(Some("app1")),
            "6 valuations published, 6 rows written, 1 plugin errors; sink lag 0; slowest evaluate: investor 2, 0.0 ms"
        );
        metrics.valuations_published(1, 4);
        metrics.plugin_call(1, Duration::from_millis(12), None);
        metrics.plugin_call(3, Duration::from_millis(3), None);
        metrics.consumer_lag("app1", 4);
        assert_eq!(
            metrics.interval_summary(Some("app1")),
            "4 valuations published, 0 rows written, 0 plugin errors; sink lag 4; slowest evaluate: investor 1, 12.0 ms"
        );
        assert_eq!(metrics.interval_summary(None), "0 valuations published, 0 rows written, 0 plugin errors");
        assert_eq!(
            metrics.summary(),
            "ticks produced 2, ticks consumed 0, valuations published 10, plugin errors 1, sink rows 6, sink rejects 1"
        );
    }
}
