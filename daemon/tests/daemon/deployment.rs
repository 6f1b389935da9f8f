//! A Kafka deployment of several stockd processes in a test: the command
//! lines of its roles, and the check that the files hold every valuation
//! of the topic exactly once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use stockd::bus::{Bus, Consumer, KafkaBus, KafkaSettings};
use stockd::market::Valuation;

use super::{Daemon, csv_rows, seed_plugins};
use crate::common;

/// Every valuation on the topic, by portfolio, in offset order.
pub fn topic_valuations(brokers: &str, topic: &str) -> BTreeMap<String, Vec<Valuation>> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let bus = KafkaBus::connect(KafkaSettings::new(brokers, "stockd-tests")).unwrap();
        let mut consumer = bus.consumer(&common::unique("check"), &[topic]).unwrap();
        let mut by_portfolio: BTreeMap<String, Vec<Valuation>> = BTreeMap::new();
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_secs(3) {
            let batch = consumer.poll(10_000, Duration::from_millis(200)).await.unwrap();
            if !batch.is_empty() {
                quiet_since = Instant::now();
            }
            for message in batch {
                let v = Valuation::decode(&message.value).unwrap();
                by_portfolio.entry(v.portfolio.to_string()).or_default().push(v);
            }
        }
        by_portfolio
    })
}

pub fn rows_per_file(data: &std::path::Path) -> Vec<usize> {
    csv_rows(data).values().map(Vec::len).collect()
}

/// The command lines of the three roles of a test deployment in `dir`
/// (with the seed's investors), each process logging to a file there.
pub struct Roles {
    /// The folder.
    pub dir: std::path::PathBuf,
    /// `stockd run --roles exchange …`.
    pub exchange: Vec<String>,
    /// `stockd run --roles investors …` (one state folder for all).
    pub investors: Vec<String>,
    /// `stockd run --roles sink …` (one data folder for all).
    pub sink: Vec<String>,
    /// The sinks' data folder.
    pub sink_data: std::path::PathBuf,
}

impl Roles {
    pub fn new(dir: &std::path::Path, brokers: &str, config: &std::path::Path) -> Roles {
        let plugins = seed_plugins(dir);
        let (investor_data, sink_data) = (dir.join("investors-data"), dir.join("sink-data"));
        let common = ["--brokers", brokers, "--config", config.to_str().unwrap(), "--interval", "500ms"];
        let role = |role: &str, extra: &[&str]| -> Vec<String> {
            ["run", "--roles", role].iter().chain(&common).chain(extra).map(|s| s.to_string()).collect()
        };
        Roles {
            dir: dir.to_path_buf(),
            exchange: role("exchange", &[]),
            investors: role(
                "investors",
                &["--plugins", plugins.to_str().unwrap(), "--data", investor_data.to_str().unwrap()],
            ),
            sink: role("sink", &["--data", sink_data.to_str().unwrap()]),
            sink_data,
        }
    }

    /// Starts `stockd ARGS…`, logging to `log` in the folder.
    pub fn start(&self, args: &[String], log: &str) -> Daemon {
        Daemon::start(&args.iter().map(String::as_str).collect::<Vec<_>>(), &self.dir.join(log))
    }
}

/// Waits until `condition` holds, else fails with the `logs`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool, logs: &[&Daemon]) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() > deadline {
            let logs: Vec<String> = logs.iter().map(|d| d.log()).collect();
            panic!("timed out waiting for {what}; logs:\n{}", logs.join("\n-----\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stops the `producers` (SIGTERM: they must exit cleanly), reads every
/// valuation the topic then holds, waits until each portfolio's file ends
/// with its portfolio's last one, then stops the `sinks`. Returns the
/// topic's valuations, by portfolio in offset order.
pub fn stop_and_drain(
    brokers: &str,
    topic: &str,
    data: &std::path::Path,
    producers: &mut [&mut Daemon],
    sinks: &mut [&mut Daemon],
) -> BTreeMap<String, Vec<Valuation>> {
    let published = stop_and_read(brokers, topic, producers);
    let logs: Vec<&Daemon> = sinks.iter().map(|sink| &**sink).collect();
    wait_until(
        "the sinks to write the topic's last valuations",
        Duration::from_secs(60),
        || ends_with_the_last(data, &published),
        &logs,
    );
    for sink in sinks.iter_mut() {
        sink.signal("TERM");
        assert!(sink.wait_exit(Duration::from_secs(10)).success(), "{}", sink.log());
    }
    published
}

/// Stops the `producers` (SIGTERM: they must exit cleanly) and returns
/// every valuation the topic then holds, by portfolio in offset order.
pub fn stop_and_read(brokers: &str, topic: &str, producers: &mut [&mut Daemon]) -> BTreeMap<String, Vec<Valuation>> {
    for daemon in producers.iter_mut() {
        daemon.signal("TERM");
        assert!(daemon.wait_exit(Duration::from_secs(10)).success(), "{}", daemon.log());
    }
    let published = topic_valuations(brokers, topic);
    eprintln!("{} valuations on the topic", published.values().map(Vec::len).sum::<usize>());
    published
}

/// Whether each portfolio's file in `data` ends with its last valuation of
/// `published` (a count of rows would never reach the topic's when it
/// carries copies, which have no row).
pub fn ends_with_the_last(data: &std::path::Path, published: &BTreeMap<String, Vec<Valuation>>) -> bool {
    let files = csv_rows(data);
    published.iter().all(|(portfolio, valuations)| {
        let id: stockd::market::PortfolioId = portfolio.parse().unwrap();
        let last = valuations.last().unwrap();
        files
            .get(&format!("INVESTOR_{}_PORTFOLIO_{}.csv", id.investor, id.number))
            .and_then(|rows| rows.last())
            .is_some_and(|row| row[2].parse::<f64>().ok() == Some(last.nav))
    })
}

/// Every valuation of the topic (`published`, by portfolio in offset
/// order) is in its file exactly once, in order: a valuation published
/// twice (the same portfolio and INTERVAL_MS) has one row; and NAV_Change
/// is continuous (each row's change is from the row before).
pub fn assert_files_hold_each_valuation_once(data: &std::path::Path, published: &BTreeMap<String, Vec<Valuation>>) {
    let files = csv_rows(data);
    assert_eq!(files.len(), published.len(), "one file per portfolio on the topic");
    let (mut total, mut repeats) = (0, 0);
    for (portfolio, valuations) in published {
        let id: stockd::market::PortfolioId = portfolio.parse().unwrap();
        let rows = &files[&format!("INVESTOR_{}_PORTFOLIO_{}.csv", id.investor, id.number)];
        let mut distinct: Vec<&Valuation> = Vec::new();
        for v in valuations {
            assert!(v.interval_ms.is_some(), "{portfolio}: the investors carry the identity");
            match distinct.last() {
                Some(last) if last.identity() >= v.identity() => {
                    assert_eq!(last.identity(), v.identity(), "{portfolio}: identities only repeat, never go back");
                    assert_eq!((last.nav, last.nav_change), (v.nav, v.nav_change), "{portfolio}: a copy");
                    repeats += 1;
                }
                _ => distinct.push(v),
            }
        }
        total += distinct.len();
        let written: Vec<(String, f64, f64, f64)> = rows
            .iter()
            .map(|r| (r[1].to_string(), r[2].parse().unwrap(), r[3].parse().unwrap(), r[4].parse().unwrap()))
            .collect();
        let sent: Vec<(String, f64, f64, f64)> = distinct
            .iter()
            .map(|v| (stockd::market::format_seconds(v.at), v.nav, v.nav_change, v.nav_change_pct))
            .collect();
        assert_eq!(written, sent, "{portfolio}: the file holds each of the topic's valuations once, in order");
        assert_eq!((sent[0].2, sent[0].3), (0.0, 0.0), "{portfolio}: first valuation");
        for pair in sent.windows(2) {
            assert!(pair[1].0 >= pair[0].0, "{portfolio}: the rows' timestamps never go back: {pair:?}");
            assert_eq!(pair[1].2, common::cents(pair[1].1 - pair[0].1), "{portfolio}: NAV_Change continues: {pair:?}");
        }
    }
    eprintln!("{total} valuations checked; {repeats} copies on the topic had no second row");
}
