//! The sink as a real process on Kafka, killed with SIGKILL at random
//! moments while valuations keep coming: every row must end up in the CSV
//! files exactly once, in offset order.

mod common;
mod daemon;

use std::path::Path;
use std::time::{Duration, Instant};

use daemon::Daemon;

use stockd::bus::{Bus, KafkaBus, KafkaSettings, Record, TopicSpec};
use stockd::market::{InvestorId, PortfolioId, Valuation, parse_timestamp};

fn start_sink(brokers: &str, data: &Path, config: &Path, log: &Path) -> Daemon {
    let (data, config) = (data.to_str().unwrap(), config.to_str().unwrap());
    Daemon::start(&["run", "--roles", "sink", "--brokers", brokers, "--data", data, "--config", config], log)
}

/// The next offset the sink's checkpoint records (0 before any).
fn checkpointed(data: &Path, topic: &str) -> i64 {
    std::fs::read(data.join(".sink/partitions").join(topic).join("0/checkpoint.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|v| v["positions"][topic]["0"].as_i64())
        .unwrap_or(0)
}

/// Held by each test for its whole run: a sink's `syncfs` waits for
/// whatever the other test's sink has written, so that side by side their
/// timings are not their own.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A folder with a data folder, a configuration and a log for one sink
/// process, and a one-partition portfolio topic of its own.
struct Setup {
    dir: tempfile::TempDir,
    data: std::path::PathBuf,
    config: std::path::PathBuf,
    log: std::path::PathBuf,
    portfolios: String,
    bus: KafkaBus,
}

impl Setup {
    /// With `sink` (lines of the `[sink]` table, and any table after it)
    /// in the configuration.
    async fn new(brokers: &str, sink: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let (data, config, log) =
            (dir.path().join("data"), dir.path().join("stockd.toml"), dir.path().join("sink.log"));
        let (stock, portfolios) = (common::unique("StockExchange"), common::unique("Portfolios"));
        let prefix = common::unique("test");
        std::fs::write(&config, format!("[topics]\nstock-exchange = \"{stock}\"\nportfolios = \"{portfolios}\"\n[sink]\n{sink}[kafka]\nsession-timeout = \"6s\"\ngroup-prefix = \"{prefix}-\"\n")).unwrap();
        let bus = KafkaBus::connect(KafkaSettings::new(brokers, "stockd-tests")).unwrap();
        bus.create_topics(&[TopicSpec { name: portfolios.clone(), partitions: 1, replication: 1 }]).await.unwrap();
        Setup { dir, data, config, log, portfolios, bus }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_process_killed_at_random_moments_writes_every_row_exactly_once() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let Some(brokers) = common::test_brokers("a_sink_process_killed_at_random_moments_writes_every_row_exactly_once")
    else {
        return;
    };
    let Setup { dir: _dir, data, config, log, portfolios, bus } = Setup::new(&brokers, "batch = 50\n").await;

    let at = parse_timestamp("2026-11-24 09:00:00").unwrap();
    let expected: Vec<Valuation> = (0..3000u32)
        .map(|i| {
            let id = PortfolioId::new(InvestorId::new(i % 5 + 1).unwrap(), i % 6 + 1).unwrap();
            Valuation::new(id, at + chrono::Duration::seconds(i64::from(i)), 1000.0 + f64::from(i) / 4.0, None, None)
        })
        .collect();
    // Each round: publish a chunk, start the sink, wait until it has
    // checkpointed something new (it is writing), then kill it a few
    // milliseconds later, somewhere in the middle of its batches.
    let kill_after_ms = [0u64, 35, 8, 60, 17];
    let chunk_size = expected.len().div_ceil(kill_after_ms.len());
    for (round, chunk) in expected.chunks(chunk_size).enumerate() {
        let records = chunk.iter().map(|v| Record { key: v.portfolio.to_string(), value: v.encode() }).collect();
        bus.produce_batch(&portfolios, records).await.unwrap();
        let before = checkpointed(&data, &portfolios);
        let mut sink = start_sink(&brokers, &data, &config, &log);
        let deadline = Instant::now() + Duration::from_secs(60);
        while checkpointed(&data, &portfolios) == before {
            assert!(
                Instant::now() < deadline,
                "round {round}: no progress; log:\n{}",
                std::fs::read_to_string(&log).unwrap()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(kill_after_ms[round])).await;
        sink.signal("KILL");
        sink.wait_exit(Duration::from_secs(5));
        eprintln!(
            "round {round}: killed at offset {} of {}",
            checkpointed(&data, &portfolios),
            (round + 1) * chunk_size
        );
    }
    // The catch-up is timed by its progress, not as a whole: a slow disk
    // makes each batch slower, a stuck sink makes none.
    let mut sink = start_sink(&brokers, &data, &config, &log);
    let started = Instant::now();
    let (mut reached, mut progressed) = (checkpointed(&data, &portfolios), Instant::now());
    while reached < 3000 {
        assert!(
            progressed.elapsed() < Duration::from_secs(60),
            "the sink made no progress for 60 s at offset {reached}; its log:\n{}",
            std::fs::read_to_string(&log).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = checkpointed(&data, &portfolios);
        if now > reached {
            (reached, progressed) = (now, Instant::now());
        }
    }
    eprintln!("caught up in {:?}", started.elapsed());
    // A graceful stop (SIGTERM) exits 0.
    sink.signal("TERM");
    assert!(sink.wait_exit(Duration::from_secs(10)).success(), "exit status; log:\n{}", sink.log());

    // Every valuation exactly once, in order, per file.
    for investor in 1..=5u32 {
        for number in 1..=6u32 {
            let path = data.join(format!("INVESTOR_{investor}_PORTFOLIO_{number}.csv"));
            let mut reader = csv::Reader::from_path(&path).unwrap();
            let navs: Vec<f64> = reader.records().map(|r| r.unwrap()[2].parse().unwrap()).collect();
            let want: Vec<f64> = expected
                .iter()
                .filter(|v| v.portfolio.investor.get() == investor && v.portfolio.number == number)
                .map(|v| v.nav)
                .collect();
            assert_eq!(navs, want, "{}", path.display());
        }
    }
}

/// On Kafka a stop does not drain a backlog first: the sink writes the
/// batch in hand and exits within seconds; the rest waits on the broker,
/// and the next start writes it, each row once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_sink_leaves_a_backlog_on_the_broker_and_exits_within_seconds() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let Some(brokers) = common::test_brokers("a_stopped_sink_leaves_a_backlog_on_the_broker_and_exits_within_seconds")
    else {
        return;
    };
    // Small batches, each synced file by file: the backlog takes minutes.
    let sink = "batch = 20\nsync = \"file\"\n[archive]\nenabled = false\n";
    let Setup { dir: _dir, data, config, log, portfolios, bus } = Setup::new(&brokers, sink).await;
    let at = parse_timestamp("2026-11-24 09:00:00").unwrap();
    let total = 20_000u32;
    let records: Vec<Record> = (0..total)
        .map(|i| {
            let id = PortfolioId::new(InvestorId::new(i % 4 + 1).unwrap(), i / 4 % 5 + 1).unwrap();
            let v = Valuation::new(id, at + chrono::Duration::seconds(i64::from(i)), 1000.0 + f64::from(i), None, None);
            Record { key: v.portfolio.to_string(), value: v.encode() }
        })
        .collect();
    bus.produce_batch(&portfolios, records).await.unwrap();
    let mut sink = start_sink(&brokers, &data, &config, &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    while checkpointed(&data, &portfolios) == 0 {
        assert!(Instant::now() < deadline, "no progress; log:\n{}", sink.log());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sink.signal("TERM");
    let stopped = Instant::now();
    assert!(sink.wait_exit(Duration::from_secs(20)).success(), "log:\n{}", sink.log());
    let written = checkpointed(&data, &portfolios);
    eprintln!("stopped in {:?} at offset {written} of {total}", stopped.elapsed());
    assert!(stopped.elapsed() < Duration::from_secs(10), "the stop took {:?}", stopped.elapsed());
    assert!(written < i64::from(total) / 2, "the stop drained the backlog: offset {written} of {total}");
    // The next start, with large batches, writes the rest.
    let text = std::fs::read_to_string(&config).unwrap().replace("batch = 20\nsync = \"file\"", "batch = 5000");
    std::fs::write(&config, text).unwrap();
    let mut sink = start_sink(&brokers, &data, &config, &log);
    let deadline = Instant::now() + Duration::from_secs(120);
    while checkpointed(&data, &portfolios) < i64::from(total) {
        assert!(Instant::now() < deadline, "the sink did not catch up; log:\n{}", sink.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sink.signal("TERM");
    assert!(sink.wait_exit(Duration::from_secs(20)).success());
    let rows: usize = daemon::csv_rows(&data).values().map(Vec::len).sum();
    assert_eq!(rows, total as usize, "each valuation once");
}
