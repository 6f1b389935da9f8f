//! Resident memory per loaded investor, beyond the engine's fixed cost:
//! loads a guest under many ids, instantiates and evaluates each once (as
//! the daemon does), and reports the RSS growth per investor. Investor 1 in
//! Rust (200 copies), Python and JavaScript (50 copies each), components
//! and scripts (`plugins/scripts/investor1.*` run by the interpreters).
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
    let guests = [
        ("investor1", 200),
        ("python_investor1", 50),
        ("investor1.py", 50),
        ("js_investor1", 50),
        ("investor1.js", 50),
    ];
    for (guest, investors) in guests {
        measure(guest, investors);
    }
}

/// Loads `guest` as investors 1..=`investors` and prints the RSS growth.
fn measure(guest: &str, investors: u32) {
    let target = std::env::current_exe().unwrap().ancestors().nth(3).unwrap().to_path_buf();
    let path = if guest.contains('.') {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/scripts").join(guest)
    } else {
        target.join("test-plugins").join(format!("{guest}.wasm"))
    };
    let bytes = std::fs::read(&path).expect("run `just plugins guest-languages` first");
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = Some(cache_dir.path().to_path_buf());
    let host =
        PluginHost::with_interpreters(PluginLimits::default(), cache, Some(target.join("interpreters"))).unwrap();
    let load = |n: u32| {
        let investor = InvestorId::new(n).unwrap();
        if guest.contains('.') { host.load(investor, &path) } else { host.load_bytes(investor, &path, &bytes) }
    };
    let quotes: Vec<Quote> =
        ["IBM", "AAPL", "FB", "AMZN", "GOOG", "TWTR", "LNKD", "INTC", "AMD", "MSFT", "DELL", "ORKL"]
            .iter()
            .map(|t| Quote { ticker: t.to_string(), price: 100.0 })
            .collect();
    // The engine's fixed cost, and the first compile, are paid here.
    let first = Arc::new(load(1).unwrap());
    first.instantiate().evaluate(&quotes).unwrap();
    let before = rss_bytes();
    let mut running = Vec::new();
    for n in 1..=investors {
        let image = Arc::new(load(n).unwrap());
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
