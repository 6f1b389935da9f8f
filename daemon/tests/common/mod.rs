//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stockd::plugin::Quote;

/// The folder `just plugins` copies the test guests to: `target/test-plugins`
/// of the target directory this test binary was built into.
pub fn test_plugins_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test binary>
    let target = exe.ancestors().nth(3).expect("target directory").to_path_buf();
    target.join("test-plugins")
}

/// A built test guest, e.g. `test_plugin("looper")`.
pub fn test_plugin(name: &str) -> PathBuf {
    let path = test_plugins_dir().join(format!("{name}.wasm"));
    assert!(path.exists(), "{} is missing: run `just plugins` (or `just test`) first", path.display());
    path
}

/// Copies a test guest into `dir` as `investorN.wasm`, atomically (the way
/// the docs say to deploy), and returns the destination.
pub fn deploy(guest: &str, dir: &Path, investor: u32) -> PathBuf {
    let destination = dir.join(format!("investor{investor}.wasm"));
    let staging = dir.join(format!(".investor{investor}.wasm.staging"));
    std::fs::copy(test_plugin(guest), &staging).unwrap();
    std::fs::rename(&staging, &destination).unwrap();
    destination
}

/// The seed's opening prices, as DESIGN.md lists them — transcribed here on
/// purpose rather than taken from the configuration defaults, so that the
/// tests check the code against the design, not against itself.
pub const OPENING_PRICES: [(&str, f64); 24] = [
    ("IBM", 123.20),
    ("AAPL", 125.35),
    ("FB", 264.30),
    ("AMZN", 3159.50),
    ("GOOG", 2083.80),
    ("TWTR", 71.90),
    ("LNKD", 45.00),
    ("INTC", 63.20),
    ("AMD", 86.90),
    ("MSFT", 234.50),
    ("DELL", 81.70),
    ("ORKL", 64.70),
    ("HPQ", 28.00),
    ("CSCO", 45.70),
    ("ZM", 385.20),
    ("QCOM", 141.10),
    ("ADBE", 476.60),
    ("VZ", 57.10),
    ("TXN", 179.40),
    ("CRM", 240.50),
    ("AVGO", 480.90),
    ("NVDA", 580.00),
    ("VMW", 146.80),
    ("EBAY", 59.40),
];

/// The seed's opening prices as plugin quotes.
pub fn opening_quotes() -> Vec<Quote> {
    OPENING_PRICES.iter().map(|&(ticker, price)| Quote { ticker: ticker.to_string(), price }).collect()
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts two floats agree to 1e-9 relative.
pub fn assert_close(actual: f64, expected: f64, what: &str) {
    let scale = expected.abs().max(1.0);
    assert!((actual - expected).abs() <= 1e-9 * scale, "{what}: got {actual}, expected {expected}");
}

/// The Kafka-compatible broker for the Kafka half of the tests, from
/// `STOCKD_TEST_BROKERS` (`just test` starts one). Without it the test says
/// loudly that it was skipped, except under CI (`CI` set), where a missing
/// broker is a failure.
pub fn test_brokers(test: &str) -> Option<String> {
    match std::env::var("STOCKD_TEST_BROKERS") {
        Ok(brokers) if !brokers.is_empty() => Some(brokers),
        _ => {
            assert!(std::env::var_os("CI").is_none(), "CI must run the Kafka tests: STOCKD_TEST_BROKERS is not set");
            eprintln!("SKIPPED (no broker): {test} — set STOCKD_TEST_BROKERS=host:port, as `just test` does");
            None
        }
    }
}

/// A Kafka bus on the test broker, or `None` (and a loud skip) without one.
pub fn kafka_bus(test: &str) -> Option<stockd::bus::KafkaBus> {
    let brokers = test_brokers(test)?;
    Some(stockd::bus::KafkaBus::connect(stockd::bus::KafkaSettings::new(brokers, "stockd-tests")).unwrap())
}

/// Runs each listed `async fn name<B: Bus>(bus: B)` of the test file twice:
/// as `memory::name` on a fresh memory bus and as `kafka::name` on the test
/// broker (skipped without one, see [`test_brokers`]).
#[macro_export]
macro_rules! on_both_buses {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(stockd::bus::MemoryBus::default()).await;
                }
            )*
        }

        mod kafka {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(bus) = $crate::common::kafka_bus(concat!("kafka::", stringify!($name))) {
                        super::$name(bus).await;
                    }
                }
            )*
        }
    };
}

/// A name no other test run uses, for topics and groups on a shared broker.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{nanos:08x}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The seed's holdings (DESIGN.md), portfolio id → [(ticker, shares)], and
/// those of the `investor2_v2` test guest, for independent NAV checks.
pub fn holdings(portfolio: &str) -> Option<&'static [(&'static str, f64)]> {
    Some(match portfolio {
        "1.1" => {
            &[("IBM", 1000.0), ("AAPL", 1200.0), ("FB", 900.0), ("AMZN", 2300.0), ("GOOG", 1400.0), ("TWTR", 400.0)]
        }
        "1.2" => {
            &[("LNKD", 900.0), ("INTC", 600.0), ("AMD", 1100.0), ("MSFT", 1200.0), ("DELL", 700.0), ("ORKL", 1200.0)]
        }
        "2.1" => &[("HPQ", 600.0), ("CSCO", 1200.0), ("ZM", 1400.0), ("QCOM", 900.0), ("ADBE", 800.0), ("VZ", 1200.0)],
        "2.2" => &[("TXN", 1100.0), ("CRM", 600.0), ("AVGO", 700.0), ("NVDA", 1100.0), ("VMW", 600.0), ("EBAY", 800.0)],
        "3.1" => &[("HPQ", 1200.0), ("ZM", 750.0), ("DELL", 800.0), ("NVDA", 1250.0), ("IBM", 900.0), ("INTC", 1000.0)],
        "3.2" => {
            &[("VZ", 1150.0), ("AVGO", 900.0), ("TWTR", 1200.0), ("AAPL", 1200.0), ("DELL", 500.0), ("ORKL", 900.0)]
        }
        _ => return None,
    })
}

/// `investor2_v2`'s holdings: 2.1 rebalanced, 2.3 new.
pub fn holdings_v2(portfolio: &str) -> Option<&'static [(&'static str, f64)]> {
    Some(match portfolio {
        "2.1" => &[("HPQ", 1000.0), ("CSCO", 1000.0), ("ZM", 1000.0)],
        "2.3" => &[("NVDA", 100.0), ("AVGO", 100.0)],
        _ => return None,
    })
}

/// Rounds to cents.
pub fn cents(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
