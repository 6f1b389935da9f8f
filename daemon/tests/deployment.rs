//! Kafka deployments of several processes — `--roles exchange`, `--roles
//! investors`, `--roles sink` — with processes killed (SIGKILL) and
//! restarted mid-run: the CSV files must hold every valuation of the topic
//! exactly once, with NAV_Change continuous across the restarts.

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

/// The command lines of the three roles of a test deployment in `dir`
/// (with the seed's investors), each process logging to a file there.
struct Roles {
    dir: std::path::PathBuf,
    exchange: Vec<String>,
    investors: Vec<String>,
    sink: Vec<String>,
    sink_data: std::path::PathBuf,
}

impl Roles {
    fn new(dir: &std::path::Path, brokers: &str, config: &std::path::Path) -> Roles {
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
    fn start(&self, args: &[String], log: &str) -> Daemon {
        Daemon::start(&args.iter().map(String::as_str).collect::<Vec<_>>(), &self.dir.join(log))
    }
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
    let roles = Roles::new(dir.path(), &brokers, &config);
    let (exchange_args, investor_args, sink_args) = (&roles.exchange, &roles.investors, &roles.sink);
    let sink_data = roles.sink_data.clone();
    let start = |args: &[String], log: &str| roles.start(args, log);

    let mut exchange = start(exchange_args, "exchange.log");
    let mut investors = start(investor_args, "investors.log");
    let mut sink = start(sink_args, "sink.log");
    wait_until(
        "three rows in each of the six files",
        Duration::from_secs(120),
        || rows_per_file(&sink_data).len() == 6 && rows_per_file(&sink_data).iter().all(|n| *n >= 3),
        &[&exchange, &investors, &sink],
    );

    investors.signal("KILL");
    investors.wait_exit(Duration::from_secs(5));
    let before: Vec<usize> = rows_per_file(&sink_data);
    let mut investors = start(investor_args, "investors.log");
    wait_until(
        "four more rows in each file after the restart",
        Duration::from_secs(120),
        || rows_per_file(&sink_data).iter().zip(&before).all(|(now, then)| *now >= then + 4),
        &[&exchange, &investors, &sink],
    );

    let published =
        stop_and_drain(&brokers, &portfolios, &sink_data, &mut [&mut exchange, &mut investors], &mut [&mut sink]);
    assert_files_hold_each_valuation_once(&sink_data, &published);
}

/// The scaled deployment of OPERATIONS.md on a 3-partition topic: an
/// exchange, two investors processes on one state folder (one active, one
/// standing by) and two sinks on one data folder. A sink is killed
/// (SIGKILL) and restarted, then the active investors process is killed
/// and the standby takes over; restarted, the killed one stands by. Every valuation on the topic must be in its
/// file exactly once, in order, with NAV_Change continuous.
#[test]
fn two_sinks_and_a_standby_investors_process_on_three_partitions_keep_one_row_per_valuation() {
    let name = "two_sinks_and_a_standby_investors_process_on_three_partitions_keep_one_row_per_valuation";
    let Some(brokers) = common::test_brokers(name) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (stock, portfolios) = (common::unique("StockExchange"), common::unique("Portfolios"));
    let config = write_fast_config(dir.path(), Some((&stock, &portfolios)));
    let text = std::fs::read_to_string(&config).unwrap().replace("[topics]\n", "[topics]\npartitions = 3\n");
    std::fs::write(&config, text).unwrap();
    // The ticks on one partition, as by default: the investors' group
    // gives it to one process.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let bus = KafkaBus::connect(KafkaSettings::new(brokers.as_str(), "stockd-tests")).unwrap();
        let spec = stockd::bus::TopicSpec { name: stock.clone(), partitions: 1, replication: 1 };
        bus.create_topics(&[spec]).await.unwrap();
    });
    let roles = Roles::new(dir.path(), &brokers, &config);
    let (exchange_args, investor_args, sink_args) = (&roles.exchange, &roles.investors, &roles.sink);
    let sink_data = roles.sink_data.clone();
    let start = |args: &[String], log: &str| roles.start(args, log);
    let grown_by = |before: &[usize], rows: usize| {
        let now = rows_per_file(&sink_data);
        now.len() == 6 && now.iter().zip(before).all(|(now, then)| *now >= then + rows)
    };

    let mut exchange = start(exchange_args, "exchange.log");
    let mut active = start(investor_args, "investors-a.log");
    active.wait_for_log("investor started", Duration::from_secs(60));
    let standby_port = daemon::free_port();
    let standby_http = format!("127.0.0.1:{standby_port}");
    let standby_args: Vec<String> = investor_args.iter().cloned().chain(["--http".into(), standby_http]).collect();
    let mut standby = start(&standby_args, "investors-b.log");
    let mut sink_a = start(sink_args, "sink-a.log");
    let mut sink_b = start(sink_args, "sink-b.log");
    wait_until(
        "three rows in each of the six files",
        Duration::from_secs(120),
        || grown_by(&[0; 6], 3),
        &[&exchange, &active, &standby, &sink_a, &sink_b],
    );
    standby.wait_for_log("standing by to take over", Duration::from_secs(30));
    // Its investors page says so, naming the active process.
    let (status, body) = daemon::http_get(standby_port, "/api/investors");
    let investors: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{status}: {body}"));
    let rows = investors["investors"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{body}");
    for row in rows {
        assert_eq!(row["status"], "standby", "{body}");
        let error = row["error"].as_str().unwrap();
        assert!(error.starts_with(&format!("active in another process: pid {} on ", active.pid())), "{error}");
    }
    // The group split the partitions between the two sinks.
    wait_until(
        "each sink to write a partition",
        Duration::from_secs(60),
        || [&sink_a, &sink_b].iter().all(|sink| sink.log().contains("took partition")),
        &[&sink_a, &sink_b],
    );

    // A sink is killed in the middle of its work, and restarted once the
    // group has dropped it (its session timed out: the other sink's
    // partitions are taken back). tansu 0.6 then hands the survivor the
    // old assignment again, leaving the dead sink's partitions unread until
    // a member joins; Kafka would give them to the survivor. Either way
    // the restarted sink joins, the partitions are split again, and it
    // takes the dead one's partitions, rolling back its interrupted batch.
    let revocations = |sink: &Daemon| sink.log().matches("consumer group took back").count();
    let revoked_before = revocations(&sink_b);
    sink_a.signal("KILL");
    sink_a.wait_exit(Duration::from_secs(5));
    wait_until(
        "the group to drop the killed sink",
        Duration::from_secs(60),
        || revocations(&sink_b) > revoked_before,
        &[&sink_b],
    );
    let before = rows_per_file(&sink_data);
    let mut sink_a = start(sink_args, "sink-a.log");
    wait_until(
        "every file to grow again with the killed sink restarted",
        Duration::from_secs(120),
        || grown_by(&before, 4),
        &[&exchange, &active, &sink_a, &sink_b],
    );

    active.signal("KILL");
    active.wait_exit(Duration::from_secs(5));
    let before = rows_per_file(&sink_data);
    standby.wait_for_log("taking over", Duration::from_secs(30));
    wait_until(
        "four more rows in each file from the standby",
        Duration::from_secs(120),
        || grown_by(&before, 4),
        &[&exchange, &standby, &sink_a, &sink_b],
    );
    // The killed process, restarted, is now the standby.
    let mut active = start(investor_args, "investors-a2.log");
    active.wait_for_log("standing by to take over", Duration::from_secs(30));
    let before = rows_per_file(&sink_data);
    wait_until("two more rows in each file", Duration::from_secs(60), || grown_by(&before, 2), &[&standby]);

    let published = stop_and_drain(
        &brokers,
        &portfolios,
        &sink_data,
        &mut [&mut exchange, &mut standby, &mut active],
        &mut [&mut sink_a, &mut sink_b],
    );
    assert_files_hold_each_valuation_once(&sink_data, &published);
}

/// Stops the `producers` (SIGTERM: they must exit cleanly), reads every
/// valuation the topic then holds, waits until each portfolio's file ends
/// with its portfolio's last one (a count of rows would never reach the
/// topic's when it carries copies, which have no row), then stops the
/// `sinks`. Returns the topic's valuations, by portfolio in offset order.
fn stop_and_drain(
    brokers: &str,
    topic: &str,
    data: &std::path::Path,
    producers: &mut [&mut Daemon],
    sinks: &mut [&mut Daemon],
) -> BTreeMap<String, Vec<Valuation>> {
    for daemon in producers.iter_mut() {
        daemon.signal("TERM");
        assert!(daemon.wait_exit(Duration::from_secs(10)).success(), "{}", daemon.log());
    }
    let published = topic_valuations(brokers, topic);
    let ends_with_the_last = || {
        let files = csv_rows(data);
        published.iter().all(|(portfolio, valuations)| {
            let id: stockd::market::PortfolioId = portfolio.parse().unwrap();
            let last = valuations.last().unwrap();
            files
                .get(&format!("INVESTOR_{}_PORTFOLIO_{}.csv", id.investor, id.number))
                .and_then(|rows| rows.last())
                .is_some_and(|row| row[2].parse::<f64>().ok() == Some(last.nav))
        })
    };
    let logs: Vec<&Daemon> = sinks.iter().map(|sink| &**sink).collect();
    wait_until("the sinks to write the topic's last valuations", Duration::from_secs(60), ends_with_the_last, &logs);
    for sink in sinks.iter_mut() {
        sink.signal("TERM");
        assert!(sink.wait_exit(Duration::from_secs(10)).success(), "{}", sink.log());
    }
    eprintln!("{} valuations on the topic", published.values().map(Vec::len).sum::<usize>());
    published
}

/// Every valuation of the topic (`published`, by portfolio in offset
/// order) is in its file exactly once, in order: a valuation published
/// twice (the same portfolio and INTERVAL_MS) has one row; and NAV_Change
/// is continuous (each row's change is from the row before).
fn assert_files_hold_each_valuation_once(data: &std::path::Path, published: &BTreeMap<String, Vec<Valuation>>) {
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
            assert_eq!(pair[1].2, common::cents(pair[1].1 - pair[0].1), "{portfolio}: NAV_Change continues: {pair:?}");
        }
    }
    eprintln!("{total} valuations checked; {repeats} copies on the topic had no second row");
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
