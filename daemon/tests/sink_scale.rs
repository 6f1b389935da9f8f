//! The sink at scale, alone in its process so that the count of open file
//! descriptors is its own: 100,000 distinct portfolios with a handle cache
//! of 64.

use std::time::Duration;

use stockd::bus::{Bus, MemoryBus, Record, TopicSpec};
use stockd::config::SyncMode;
use stockd::market::{PortfolioId, Valuation, parse_timestamp};
use stockd::metrics::Metrics;
use stockd::sink::{Sink, SinkSettings};

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test]
async fn a_hundred_thousand_portfolios_with_a_bounded_number_of_open_files() {
    let bus = MemoryBus::default();
    bus.create_topics(&[TopicSpec { name: "Portfolios".into(), partitions: 1, replication: 1 }]).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let at = parse_timestamp("2026-11-24 09:00:00").unwrap();
    let all: Vec<Valuation> = (1..=1000u32)
        .flat_map(|i| (1..=100u32).map(move |p| (i, p)))
        .map(|(i, p)| {
            let id = PortfolioId::new(stockd::market::InvestorId::new(i).unwrap(), p).unwrap();
            Valuation::new(id, at, f64::from(i * 1000 + p), None, None)
        })
        .collect();
    let records = all.iter().map(|v| Record { key: v.portfolio.to_string(), value: v.encode() }).collect();
    bus.produce_batch("Portfolios", records).await.unwrap();
    let before = open_descriptors();
    let settings = SinkSettings {
        topic: "Portfolios".into(),
        group: "app1".into(),
        data: data.path().to_path_buf(),
        open_files: 64,
        sync: SyncMode::Filesystem,
        batch: 10_000,
        archive: true,
        retention: Default::default(),
        csv_window: None,
        csv_files: true,
        unread_after: Duration::from_secs(10),
    };
    let mut sink = Sink::open(&bus, settings, Metrics::new()).unwrap();
    let mut peak = 0;
    while sink.step(Duration::from_millis(50)).await.unwrap() > 0 {
        peak = peak.max(open_descriptors());
    }
    assert!(peak <= before + 64 + 8, "{peak} descriptors open (before: {before}, cache: 64)");
    let files = std::fs::read_dir(data.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("INVESTOR_"))
        .count();
    assert_eq!(files, 100_000);
    let sample = std::fs::read_to_string(data.path().join("INVESTOR_777_PORTFOLIO_42.csv")).unwrap();
    assert_eq!(sample, "PORTFOLIO,TIMESTAMP,NAV,NAV_Change,NAV_Change_%\n777.42,2026-11-24 09:00:00,777042,0,0\n");
}
