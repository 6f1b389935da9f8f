//! Kafka deployments of several processes — `--roles exchange`, `--roles
//! investors`, `--roles sink` — with processes killed (SIGKILL) and
//! restarted mid-run: the CSV files must hold every valuation of the topic
//! exactly once, with NAV_Change continuous across the restarts.

mod common;
mod daemon;

use std::time::Duration;

use daemon::deployment::{Roles, assert_files_hold_each_valuation_once, rows_per_file, stop_and_drain, wait_until};
use daemon::{Daemon, write_fast_config};
use stockd::bus::{Bus, KafkaBus, KafkaSettings};

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

/// Existing topics are left as they are: a partition count other than the
/// one stockd would create (`topics.partitions` for the portfolio topic) is
/// reported at start-up.
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
        &format!("topic {portfolios} has 1 partition(s), not the 2 stockd creates it with"),
        Duration::from_secs(60),
    );
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(20)).success());
}
