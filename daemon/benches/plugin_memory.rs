//! Resident memory per loaded investor, beyond the engine's fixed cost:
//! loads a guest under many ids, instantiates and evaluates each once (as
//! the daemon does), and reports the RSS growth per investor. Investor 1 in
//! Rust (200 copies), Python and JavaScript (50 copies each).
//!
//! `cargo bench --bench plugin_memory` (after `just plugins guest-languages`).

use std::sync::Arc;

use stockd::market::InvestorId;
use stockd::plugin::{PluginHost, PluginLimits, Quote};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let resident_pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    resident_pages * 4096
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` asks every bench target for its benchmarks
    }
    for (guest, investors) in [("investor1", 200), ("python_investor1", 50), ("js_investor1", 50)] {
        measure(guest, investors);
    }
}

/// Loads `guest` as investors 1..=`investors` and prints the RSS growth.
fn measure(guest: &str, investors: u32) {
    let exe = std::env::current_exe().unwrap();
    let path = exe.ancestors().nth(3).unwrap().join("test-plugins").join(format!("{guest}.wasm"));
    let bytes = std::fs::read(&path).expect("run `just plugins guest-languages` first");
    let cache = tempfile::tempdir().unwrap();
    let host = PluginHost::new(PluginLimits::default(), Some(cache.path().to_path_buf())).unwrap();
    let quotes: Vec<Quote> =
        ["IBM", "AAPL", "FB", "AMZN", "GOOG", "TWTR", "LNKD", "INTC", "AMD", "MSFT", "DELL", "ORKL"]
            .iter()
            .map(|t| Quote { ticker: t.to_string(), price: 100.0 })
            .collect();
    // The engine's fixed cost, and the first compile, are paid here.
    let first = Arc::new(host.load_bytes(InvestorId::new(1).unwrap(), &path, &bytes).unwrap());
    first.instantiate().evaluate(&quotes).unwrap();
    let before = rss_bytes();
    let mut running = Vec::new();
    for n in 1..=investors {
        let image = Arc::new(host.load_bytes(InvestorId::new(n).unwrap(), &path, &bytes).unwrap());
        let mut instance = image.instantiate();
        instance.evaluate(&quotes).unwrap();
        running.push((image, instance));
    }
    let after = rss_bytes();
    let per_investor = (after.saturating_sub(before)) as f64 / f64::from(investors);
    println!(
        "plugin memory, {guest}: {investors} investors loaded and instantiated: RSS {:.1} MiB -> {:.1} MiB, {:.0} KiB per investor",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        per_investor / 1024.0
    );
}
