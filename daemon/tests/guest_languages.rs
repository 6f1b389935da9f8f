//! Investors written in Python (componentize-py) and JavaScript
//! (componentize-js), default builds: they load in the sandbox and value like
//! the Rust investor they copy, and every hostile thing a Python or
//! JavaScript plugin can try is contained with an error naming the investor.

mod common;
mod daemon;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{assert_close, deploy, opening_quotes, test_plugin, wait_until};
use daemon::{Daemon, csv_rows, seed_plugins, write_fast_config};
use stockd::market::InvestorId;
use stockd::plugin::{PluginError, PluginHost, PluginImage, PluginLimits, Quote};

/// A host with the default limits and the tests' shared compiled cache.
fn host() -> PluginHost {
    PluginHost::new(PluginLimits::default(), Some(common::test_plugins_dir().join(".cache"))).unwrap()
}

fn load(host: &PluginHost, guest: &str, n: u32) -> Arc<PluginImage> {
    let investor = InvestorId::new(n).unwrap();
    Arc::new(host.load(investor, &test_plugin(guest)).unwrap_or_else(|error| panic!("{guest}: {error}")))
}

/// Investor 1's NAVs at the seed's opening prices, computed by hand.
const INVESTOR_1_NAVS: [(u32, f64); 2] = [(1, 10_724_420.00), (2, 590_240.00)];

#[test]
fn python_and_javascript_examples_value_the_opening_prices_as_investor_1() {
    let host = host();
    let rust = load(&host, "investor1", 1);
    for guest in ["python_investor1", "js_investor1"] {
        let image = load(&host, guest, 4);
        assert_eq!(image.name(), "Investor 1", "{guest}");
        assert_eq!(image.portfolios(), rust.portfolios(), "{guest}: the holdings of the Rust investor 1");
        let navs = image.instantiate().evaluate(&opening_quotes()).unwrap();
        assert_eq!(navs.len(), 2, "{guest}");
        for (valuation, (portfolio, nav)) in navs.iter().zip(INVESTOR_1_NAVS) {
            assert_eq!(valuation.portfolio, portfolio, "{guest}");
            assert_close(valuation.nav, nav, &format!("{guest}: NAV of 4.{portfolio}"));
        }
        let quotes: Vec<Quote> = opening_quotes().into_iter().filter(|q| q.ticker != "AMZN").collect();
        let error = image.instantiate().evaluate(&quotes).unwrap_err();
        assert_eq!(error.to_string(), "investor 4: evaluate returned an error: no price for AMZN", "{guest}");
    }
}

/// A TCP listener on loopback that never blocks (to check that nothing
/// connected), and its port.
fn listener() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// The quotes that make a hostile guest do `action`, with `price` as its
/// argument.
fn order(action: &str, price: f64) -> Vec<Quote> {
    vec![Quote { ticker: action.to_string(), price }]
}

/// The interval a test evaluates at: 2026-11-24 09:40:20 UTC.
fn interval_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_167_620)
}

/// A hostile guest loaded as investor 9, beside the Python example as
/// investor 4: after each hostile call the example must still value
/// correctly, and the hostile instance must come back for an honest call.
struct Sandbox {
    hostile: stockd::plugin::PluginInstance,
    healthy: stockd::plugin::PluginInstance,
}

impl Sandbox {
    fn new(guest: &str) -> Sandbox {
        let host = host();
        Sandbox {
            hostile: load(&host, guest, 9).instantiate(),
            healthy: load(&host, "python_investor1", 4).instantiate(),
        }
    }

    /// Evaluates `quotes` on the hostile guest, then checks that both
    /// investors go on.
    fn attempt(&mut self, quotes: &[Quote]) -> (Result<f64, PluginError>, Duration) {
        let started = Instant::now();
        let result = self.hostile.evaluate_at(quotes, interval_time()).map(|navs| navs[0].nav);
        let took = started.elapsed();
        if let Err(error) = &result {
            assert_eq!(error.investor(), Some(InvestorId::new(9).unwrap()), "{error}");
        }
        let navs = self.healthy.evaluate(&opening_quotes()).unwrap();
        assert_close(navs[0].nav, INVESTOR_1_NAVS[0].1, "the other investor after a hostile call");
        let honest = self.hostile.evaluate(&order("IBM", 123.2)).unwrap();
        assert_close(honest[0].nav, 123.2, "the hostile investor's next honest call");
        (result, took)
    }
}

#[test]
fn a_python_endless_loop_times_out() {
    let (result, took) = Sandbox::new("python_hostile").attempt(&order("LOOP", 0.0));
    let error = result.unwrap_err();
    assert_eq!(error.to_string(), "investor 9: evaluate timed out after 250ms");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn a_python_memory_bomb_hits_the_cap() {
    let (result, took) = Sandbox::new("python_hostile").attempt(&order("BOMB", 0.0));
    match result.unwrap_err() {
        PluginError::MemoryExceeded { limit, requested, .. } => {
            assert_eq!(limit, 64 << 20);
            assert!(requested > limit);
        }
        other => panic!("expected the memory cap, got {other}"),
    }
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn python_cannot_open_a_host_file() {
    let (result, _) = Sandbox::new("python_hostile").attempt(&order("FILE", 0.0));
    let message = result.unwrap_err().to_string();
    assert!(message.starts_with("investor 9: evaluate trapped"), "{message}");
    assert!(message.contains("No such file or directory: '/etc/passwd'"), "{message}");
}

#[test]
fn python_cannot_connect_a_socket() {
    let (listener, port) = listener();
    let (result, _) = Sandbox::new("python_hostile").attempt(&order("SOCKET", f64::from(port)));
    let message = result.unwrap_err().to_string();
    assert!(message.starts_with("investor 9: evaluate trapped"), "{message}");
    assert!(message.contains("Error"), "the Python exception: {message}");
    assert!(listener.accept().is_err(), "the plugin reached the listener");
}

#[test]
fn python_sees_an_empty_environment() {
    let (result, _) = Sandbox::new("python_hostile").attempt(&order("ENV", 0.0));
    assert_eq!(result.unwrap_err().to_string(), "investor 9: evaluate returned an error: environment: {}");
}

#[test]
fn python_reads_the_interval_time_not_the_host_clock() {
    let (result, _) = Sandbox::new("python_hostile").attempt(&order("CLOCK", 0.0));
    let expected = interval_time().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    assert_eq!(result.unwrap(), expected, "time.time() is the interval's timestamp");
}

#[test]
fn a_python_sleep_returns_at_once_on_the_virtual_clock() {
    let (result, took) = Sandbox::new("python_hostile").attempt(&order("SLEEP", 0.0));
    let monotonic = result.unwrap();
    assert!(monotonic >= 3600.0, "time.monotonic() after an hour's sleep: {monotonic}");
    assert!(took < Duration::from_millis(250), "the sleep blocked for {took:?}");
}

/// A JavaScript export cannot await, so a `fetch` it starts never completes
/// within the call; what matters is that nothing leaves the sandbox (the
/// refusal itself: [`a_wasi_http_request_is_refused`]).
#[test]
fn javascript_fetch_is_refused() {
    let (listener, port) = listener();
    let mut sandbox = Sandbox::new("js_hostile");
    let (started, _) = sandbox.attempt(&order("FETCH", f64::from(port)));
    assert_eq!(started.unwrap(), 1.0, "the request was started");
    let (outcome, _) = sandbox.attempt(&order("FETCHED", 0.0));
    let message = outcome.unwrap_err().to_string();
    assert!(message.starts_with("investor 9: evaluate returned an error: "), "{message}");
    assert!(!message.contains("answered"), "{message}");
    assert!(listener.accept().is_err(), "the plugin reached the listener");
}

#[test]
fn a_wasi_http_request_is_refused() {
    let (listener, port) = listener();
    let (outcome, _) = Sandbox::new("http_client").attempt(&order("GET", f64::from(port)));
    let message = outcome.unwrap_err().to_string();
    assert_eq!(message, "investor 9: evaluate returned an error: refused: ErrorCode::HttpRequestDenied");
    assert!(listener.accept().is_err(), "the plugin reached the listener");
}

#[test]
fn javascript_reads_the_interval_time_not_the_host_clock() {
    let (result, _) = Sandbox::new("js_hostile").attempt(&order("CLOCK", 0.0));
    let expected = interval_time().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    assert_eq!(result.unwrap(), expected, "Date.now() is the interval's timestamp");
}

/// The seconds of each row's TIMESTAMP of a portfolio file's rows, and their
/// NAV, NAV_Change.
fn timeline(rows: &[csv::StringRecord]) -> Vec<(chrono::NaiveDateTime, f64, f64)> {
    rows.iter()
        .map(|row| {
            let time = chrono::NaiveDateTime::parse_from_str(&row[1], "%Y-%m-%d %H:%M:%S").unwrap();
            (time, row[2].parse().unwrap(), row[3].parse().unwrap())
        })
        .collect()
}

#[test]
fn a_running_rust_investor_is_replaced_by_a_python_one_while_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_fast_config(dir.path(), None);
    // A cold compiled-component cache: the Python plugin compiles (seconds)
    // while the other investors' intervals fall.
    let shared_cache = common::test_plugins_dir().join(".cache");
    let text = std::fs::read_to_string(&config).unwrap();
    let cold = dir.path().join("cache");
    std::fs::write(&config, text.replace(&shared_cache.display().to_string(), &cold.display().to_string())).unwrap();
    let plugins = seed_plugins(dir.path());
    deploy("investor1", &plugins, 4);
    let data = dir.path().join("data");
    let args = ["run", "--config", config.to_str().unwrap(), "--plugins", plugins.to_str().unwrap()];
    let args = [&args[..], &["--data", data.to_str().unwrap(), "--interval", "1s"]].concat();
    let mut daemon = Daemon::start(&args, &dir.path().join("stockd.log"));
    let rows_of = |name: &str| csv_rows(&data).get(name).map_or(0, Vec::len);
    let four = "INVESTOR_4_PORTFOLIO_1.csv";
    assert!(wait_until(Duration::from_secs(60), || rows_of(four) >= 2), "no rows for 4.1:\n{}", daemon.log());

    deploy("python_investor1", &plugins, 4);
    daemon.wait_for_log("replaced investor 4 (Investor 1)", Duration::from_secs(60));
    let at_switch = rows_of(four);
    assert!(wait_until(Duration::from_secs(30), || rows_of(four) >= at_switch + 3), "{}", daemon.log());
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(10)).success());

    let log = daemon.log();
    assert!(log.contains("switching to the new plugin version; NAV changes continue for 2 portfolio(s)"), "{log}");
    assert!(!log.contains("skipped"), "an interval was skipped while the Python plugin compiled:\n{log}");
    let files = csv_rows(&data);
    for name in ["INVESTOR_1_PORTFOLIO_1.csv", four, "INVESTOR_4_PORTFOLIO_2.csv"] {
        let rows = timeline(&files[name]);
        for pair in rows.windows(2) {
            let ((earlier, nav_before, _), (later, nav, change)) = (pair[0], pair[1]);
            assert_eq!(later - earlier, chrono::Duration::seconds(1), "{name}: one row per interval, none missed");
            assert_close(change, nav - nav_before, &format!("{name}: NAV_Change at {later}"));
        }
    }
}
