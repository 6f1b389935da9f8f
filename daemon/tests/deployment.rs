//! A Kafka deployment of three processes — `--roles exchange`, `--roles
//! investors`, `--roles sink` — with the investors process killed (SIGKILL)
//! and restarted mid-run: the CSV files must hold every valuation of the
//! topic exactly once, with NAV_Change continuous across the restart.

mod common;
mod daemon;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use daemon::{Daemon, csv_rows, seed_plugins, write_fast_config};
use stockd::bus::{Bus, Consumer, KafkaBus, KafkaSettings};
use stockd::market::Valuation;

/// Every valuation on the topic, by portfolio, in offset order.
fn topic_valuations(brokers: &str, topic: &str) -> BTreeMap<String, Vec<Valuation>> {
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

fn rows_per_file(data: &std::path::Path) -> Vec<usize> {
    csv_rows(data).values().map(Vec::len).collect()
}

fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool, logs: &[&Daemon]) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() > deadline {
            let logs: Vec<String> = logs.iter().map(|d| d.log()).collect();
            panic!("timed out waiting for {what}; logs:\n{}", logs.join("\n-----\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_processes_on_kafka_lose_and_duplicate_nothing_across_an_investors_restart() {
    let Some(brokers) =
        common::test_brokers("three_processes_on_kafka_lose_and_duplicate_nothing_across_an_investors_restart")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (stock, portfolios) = (common::unique("StockExchange"), common::unique("Portfolios"));
    let config = write_fast_config(dir.path(), Some((&stock, &portfolios)));
    let plugins = seed_plugins(dir.path());
    let (investor_data, sink_data) = (dir.path().join("investors-data"), dir.path().join("sink-data"));
    let config = config.to_str().unwrap();
    let common_args = ["--brokers", brokers.as_str(), "--config", config, "--interval", "500ms"];
    let role = |role: &'static str, extra: Vec<&str>| -> Vec<String> {
        ["run", "--roles", role].iter().chain(common_args.iter()).chain(extra.iter()).map(|s| s.to_string()).collect()
    };
    let exchange_args = role("exchange", vec![]);
    let investor_args =
        role("investors", vec!["--plugins", plugins.to_str().unwrap(), "--data", investor_data.to_str().unwrap()]);
    let sink_args = role("sink", vec!["--data", sink_data.to_str().unwrap()]);
    let start = |args: &[String], log: &str| {
        Daemon::start(&args.iter().map(String::as_str).collect::<Vec<_>>(), &dir.path().join(log))
    };

    let mut exchange = start(&exchange_args, "exchange.log");
    let mut investors = start(&investor_args, "investors.log");
    let mut sink = start(&sink_args, "sink.log");
    wait_until(
        "three rows in each of the six files",
        Duration::from_secs(120),
        || rows_per_file(&sink_data).len() == 6 && rows_per_file(&sink_data).iter().all(|n| *n >= 3),
        &[&exchange, &investors, &sink],
    );

    investors.signal("KILL");
    investors.wait_exit(Duration::from_secs(5));
    let before: Vec<usize> = rows_per_file(&sink_data);
    let mut investors = start(&investor_args, "investors.log");
    wait_until(
        "four more rows in each file after the restart",
        Duration::from_secs(120),
        || rows_per_file(&sink_data).iter().zip(&before).all(|(now, then)| *now >= then + 4),
        &[&exchange, &investors, &sink],
    );

    for daemon in [&mut exchange, &mut investors] {
        daemon.signal("TERM");
        assert!(daemon.wait_exit(Duration::from_secs(10)).success(), "{}", daemon.log());
    }
    let published = topic_valuations(&brokers, &portfolios);
    let total: usize = published.values().map(Vec::len).sum();
    wait_until(
        "the sink to write every published valuation",
        Duration::from_secs(60),
        || rows_per_file(&sink_data).iter().sum::<usize>() >= total,
        &[&sink],
    );
    sink.signal("TERM");
    assert!(sink.wait_exit(Duration::from_secs(10)).success(), "{}", sink.log());

    let files = csv_rows(&sink_data);
    let mut repeats = 0;
    for (portfolio, valuations) in &published {
        let id: stockd::market::PortfolioId = portfolio.parse().unwrap();
        let rows = &files[&format!("INVESTOR_{}_PORTFOLIO_{}.csv", id.investor, id.number)];
        // The sink: every message of the topic, once, in order.
        let written: Vec<(f64, f64, f64)> =
            rows.iter().map(|r| (r[2].parse().unwrap(), r[3].parse().unwrap(), r[4].parse().unwrap())).collect();
        let sent: Vec<(f64, f64, f64)> = valuations.iter().map(|v| (v.nav, v.nav_change, v.nav_change_pct)).collect();
        assert_eq!(written, sent, "{portfolio}: the file holds exactly the topic's valuations");
        // The investors: NAV_Change continues across the kill.
        assert_eq!((sent[0].1, sent[0].2), (0.0, 0.0), "{portfolio}: first valuation");
        for pair in sent.windows(2) {
            if pair[1] == pair[0] && pair[1].1 != 0.0 {
                repeats += 1; // an interval republished after the kill
                continue;
            }
            assert_eq!(pair[1].1, common::cents(pair[1].0 - pair[0].0), "{portfolio}: {pair:?}");
        }
    }
    eprintln!("{total} valuations checked, {repeats} republished after the kill");
}

/// A broker that does not answer: start-up retries with a log line each
/// time, then gives up at `kafka.startup-timeout` with one clear error.
#[test]
fn start_up_gives_up_with_one_clear_error_when_no_broker_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_fast_config(dir.path(), None);
    let text = std::fs::read_to_string(&config).unwrap().replace("[kafka]\n", "[kafka]\nstartup-timeout = \"8s\"\n");
    std::fs::write(&config, text).unwrap();
    let brokers = format!("127.0.0.1:{}", daemon::free_port());
    let data = dir.path().join("data");
    let args = ["run", "--brokers", &brokers, "--roles", "exchange", "--config", config.to_str().unwrap()];
    let mut daemon = Daemon::start(&[&args[..], &["--data", data.to_str().unwrap()]].concat(), &dir.path().join("log"));
    let status = daemon.wait_exit(Duration::from_secs(30));
    assert!(!status.success());
    let log = daemon.log();
    assert!(log.contains(&format!("waiting for kafka:{brokers} to create the topics")), "{log}");
    let error = log.lines().find(|line| line.starts_with("error: ")).expect("an error line");
    assert!(
        error.starts_with(&format!(
            "error: cannot create the topics on kafka:{brokers} within 8s (kafka.startup-timeout): "
        )),
        "{error}"
    );
}

/// Start-up waits for a broker that comes up after the daemon, then runs.
#[test]
fn start_up_waits_for_a_broker_that_comes_up_late() {
    if common::test_brokers("start_up_waits_for_a_broker_that_comes_up_late").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_fast_config(dir.path(), Some((&common::unique("Ticks"), &common::unique("Valuations"))));
    let port = daemon::free_port();
    let brokers = format!("127.0.0.1:{port}");
    let data = dir.path().join("data");
    let args = ["run", "--brokers", &brokers, "--roles", "exchange", "--config", config.to_str().unwrap()];
    let mut daemon = Daemon::start(&[&args[..], &["--data", data.to_str().unwrap()]].concat(), &dir.path().join("log"));
    daemon.wait_for_log(&format!("waiting for kafka:{brokers}"), Duration::from_secs(30));
    let broker = LateBroker::start(&dir.path().join("broker"), port);
    daemon.wait_for_log("opened 12 tickers", Duration::from_secs(90));
    // Named by the cluster id the late broker reported, not by its address.
    assert!(daemon.log().contains("[kafka:cluster="), "{}", daemon.log());
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(20)).success());
    drop(broker);
}

/// A broker of the test's own (scripts/broker), stopped when dropped.
struct LateBroker(std::path::PathBuf);

impl LateBroker {
    fn script() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/broker")
    }

    fn start(dir: &std::path::Path, port: u16) -> LateBroker {
        let status = std::process::Command::new(Self::script())
            .arg("start")
            .arg(dir)
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "scripts/broker start");
        LateBroker(dir.to_path_buf())
    }
}

impl Drop for LateBroker {
    fn drop(&mut self) {
        let _ = std::process::Command::new(Self::script()).arg("stop").arg(&self.0).status();
    }
}

/// Existing topics are left as they are: a partition count other than
/// `topics.partitions` is reported at start-up.
#[test]
fn a_partition_count_other_than_configured_is_reported_at_start_up() {
    let Some(brokers) = common::test_brokers("a_partition_count_other_than_configured_is_reported_at_start_up") else {
        return;
    };
    let (stock, portfolios) = (common::unique("Ticks"), common::unique("Valuations"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let bus = KafkaBus::connect(KafkaSettings::new(brokers.as_str(), "stockd-tests")).unwrap();
        let specs = [&stock, &portfolios].map(|name| stockd::bus::TopicSpec {
            name: name.clone(),
            partitions: 1,
            replication: 1,
        });
        bus.create_topics(&specs).await.unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_fast_config(dir.path(), Some((&stock, &portfolios)));
    let text = std::fs::read_to_string(&config).unwrap().replace("[topics]\n", "[topics]\npartitions = 2\n");
    std::fs::write(&config, text).unwrap();
    let data = dir.path().join("data");
    let args = ["run", "--brokers", &brokers, "--roles", "exchange", "--config", config.to_str().unwrap()];
    let mut daemon = Daemon::start(&[&args[..], &["--data", data.to_str().unwrap()]].concat(), &dir.path().join("log"));
    daemon.wait_for_log(
        &format!("topic {portfolios} has 1 partition(s), not topics.partitions = 2"),
        Duration::from_secs(60),
    );
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(20)).success());
}
