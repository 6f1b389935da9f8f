//! The daemon as users run it (memory bus): orderly shutdown on a signal,
//! an immediate exit on a second one, metrics over HTTP, configuration
//! errors.

mod common;
mod daemon;

use std::time::{Duration, Instant};

use daemon::{Daemon, csv_rows, free_port, http_get, seed_plugins, write_fast_config};

/// Starts `stockd run` on the memory bus with the seed investors, a fast
/// market and a 200 ms interval in `dir`, plus `extra` flags; returns it
/// and its data folder.
fn start_daemon(dir: &std::path::Path, extra: &[&str]) -> (Daemon, std::path::PathBuf) {
    let config = write_fast_config(dir, None);
    let plugins = seed_plugins(dir);
    let data = dir.join("data");
    let mut args = vec!["run", "--config", config.to_str().unwrap(), "--plugins", plugins.to_str().unwrap()];
    args.extend(["--data", data.to_str().unwrap(), "--interval", "200ms"]);
    args.extend(extra);
    (Daemon::start(&args, &dir.join("stockd.log")), data)
}

/// The counters of the final "stopped: …" log line.
fn final_counter(log: &str, name: &str) -> u64 {
    let line = log.lines().rev().find(|l| l.contains("stopped:")).expect("a final summary line");
    let after = line.split(&format!("{name} ")).nth(1).expect("the counter");
    after.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[test]
fn sigterm_stops_in_order_within_five_seconds_and_nothing_published_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, data) = start_daemon(dir.path(), &[]);
    daemon.wait_for_log("query them with:", Duration::from_secs(60));
    daemon.wait_for_log("wrote 2 rows", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    daemon.signal("TERM");
    let status = daemon.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "exit status {status}");
    assert!(signalled.elapsed() < Duration::from_secs(5));
    let log = daemon.log();
    assert!(log.contains("stopping: finishing the work in flight"), "{log}");
    // Every valuation published made it into a file: the sink drained the
    // bus before exiting.
    let published = final_counter(&log, "valuations published");
    let rows: usize = csv_rows(&data).values().map(Vec::len).sum();
    assert!(published >= 12, "{published} valuations in about 1.5 s at 200 ms");
    assert_eq!(rows as u64, published, "rows in the CSV files = valuations published");
    assert_eq!(final_counter(&log, "sink rows"), published);
}

#[test]
fn a_second_signal_exits_at_once() {
    // A plugin call that runs for up to 30 s keeps the orderly stop busy, so
    // the second signal is what ends the process.
    let dir = tempfile::tempdir().unwrap();
    let config = write_fast_config(dir.path(), None);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("[investors]\n", "[investors]\ncall-timeout = \"30s\"\n")).unwrap();
    let plugins = seed_plugins(dir.path());
    common::deploy("looper", &plugins, 4);
    let data = dir.path().join("data");
    let args = ["run", "--config", config.to_str().unwrap(), "--plugins", plugins.to_str().unwrap()];
    let args = [&args[..], &["--data", data.to_str().unwrap(), "--interval", "200ms"]].concat();
    let mut daemon = Daemon::start(&args, &dir.path().join("stockd.log"));
    daemon.wait_for_log("wrote 2 rows", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    daemon.signal("INT");
    // Signals sent back to back may merge into one: send the second only
    // once the first was handled.
    daemon.wait_for_log("stopping: finishing the work in flight", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(500));
    assert!(daemon.try_exit().is_none(), "the looping plugin should hold the orderly stop:\n{}", daemon.log());
    let signalled = Instant::now();
    daemon.signal("INT");
    let status = daemon.wait_exit(Duration::from_secs(2));
    assert_eq!(status.code(), Some(130), "{}", daemon.log());
    assert!(signalled.elapsed() < Duration::from_secs(2));
    assert!(daemon.log().contains("exiting at once"));
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}

#[test]
fn metrics_and_health_are_served_and_the_counters_move() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let (mut daemon, _) = start_daemon(dir.path(), &["--http", &addr]);
    daemon.wait_for_log("wrote 2 rows", Duration::from_secs(60));
    let (status, first) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    std::thread::sleep(Duration::from_millis(1000));
    let (_, second) = http_get(port, "/metrics");
    for series in [
        r#"stockd_ticks_produced_total{exchange="se1"}"#,
        r#"stockd_ticks_consumed_total{investor="2"}"#,
        r#"stockd_valuations_published_total{investor="3"}"#,
        r#"stockd_plugin_calls_total{investor="1"}"#,
        "stockd_sink_rows_total",
    ] {
        assert!(metric(&second, series) > metric(&first, series), "{series} did not move:\n{second}");
    }
    assert_eq!(metric(&second, "stockd_investors_loaded"), 3.0);
    assert!(second.contains("# TYPE stockd_plugin_call_seconds histogram"));
    let (status, health) = http_get(port, "/health");
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["roles"], serde_json::json!(["exchange", "investors", "sink"]));
    assert_eq!(http_get(port, "/nope").0, 404);
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(5)).success());
}

#[test]
fn a_bad_configuration_is_one_clear_error_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stockd.toml");
    let stockd = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_stockd")).args(args).output().unwrap();
        (output.status.success(), String::from_utf8(output.stderr).unwrap())
    };
    for (text, expected) in [
        ("intervall = \"20s\"\n", "unknown field `intervall`"),
        ("[sink]\nsync = \"sometimes\"\n", "unknown variant `sometimes`"),
        ("[topics]\npartitions = 0\n", "topics.partitions: must be at least 1"),
    ] {
        std::fs::write(&config, text).unwrap();
        let (ok, stderr) = stockd(&["run", "--config", config.to_str().unwrap()]);
        assert!(!ok);
        assert!(stderr.contains(expected) && stderr.contains("stockd.toml"), "{text:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
    }
    let (ok, stderr) = stockd(&["run", "--config", "/nonexistent/stockd.toml"]);
    assert!(!ok && stderr.contains("cannot read configuration file /nonexistent/stockd.toml"), "{stderr}");
    let (ok, stderr) = stockd(&["run", "--interval", "soon"]);
    assert!(!ok && stderr.contains("use e.g. 20s"), "{stderr}");
}

#[test]
fn the_example_configuration_is_the_default_configuration() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../stockd.example.toml");
    let (config, table) = stockd::config::load_file(&example, true).unwrap();
    assert_eq!(config, stockd::config::Config::default(), "stockd.example.toml documents the defaults");
    assert!(table.contains_key("market") && table.contains_key("sink"), "the example sets every section");
}

/// At scale the log stays readable: valuation lines are capped per interval
/// (exactly the cap when an interval has more), with one line saying so,
/// and an interval summary; a log written to a file has no colour escapes,
/// NO_COLOR or not.
#[test]
fn valuation_lines_are_capped_per_interval_and_a_log_file_has_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_fast_config(dir.path(), None);
    let plugins = dir.path().join("investors");
    std::fs::create_dir_all(&plugins).unwrap();
    common::deploy("wide", &plugins, 1);
    let data = dir.path().join("data");
    let log_path = dir.path().join("stockd.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_stockd"))
        .args(["run", "--config", config.to_str().unwrap(), "--plugins", plugins.to_str().unwrap()])
        .args(["--data", data.to_str().unwrap(), "--interval", "1s"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let cap_line = "more than 100 valuations this interval";
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    while log().matches(cap_line).count() < 2 || !log().contains("rows written") {
        assert!(Instant::now() < deadline, "two intervals of the 1,000-portfolio investor within 60 s:\n{}", log());
        std::thread::sleep(Duration::from_millis(100));
    }
    std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(child.wait().unwrap().success());
    let log = log();
    let intervals = final_counter(&log, "valuations published") / 1000;
    assert!(intervals >= 2, "{log}");
    let valuation_lines = log.lines().filter(|line| line.contains(" NAV ") && line.contains(" change ")).count();
    assert_eq!(valuation_lines as u64, 100 * intervals, "exactly the cap in each interval");
    assert_eq!(log.matches(cap_line).count() as u64, intervals, "said once per interval");
    assert!(log.contains("last 1s: ") && log.contains(" rows written, "), "interval summaries: {log}");
    assert!(!log.contains('\u{1b}'), "no ANSI escapes in a log file");
}
