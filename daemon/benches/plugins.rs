//! Plugin host benchmarks: `evaluate` latency with the limits on, and the
//! cost of loading a component cold (compiling) and from the cache.
//!
//! Needs the guests: `just plugins` (or `just bench`) first.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use stockd::market::InvestorId;
use stockd::plugin::{PluginHost, PluginLimits, Quote};

fn guest(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.ancestors().nth(3).unwrap().join("test-plugins").join(format!("{name}.wasm"));
    assert!(path.exists(), "{} is missing: run `just plugins` first", path.display());
    path
}

const TICKERS: [(&str, f64); 24] = [
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

fn quotes_for(tickers: &[String]) -> Vec<Quote> {
    TICKERS
        .iter()
        .filter(|(t, _)| tickers.iter().any(|held| held == t))
        .map(|&(ticker, price)| Quote { ticker: ticker.to_string(), price })
        .collect()
}

fn evaluate(c: &mut Criterion) {
    let host = PluginHost::new(PluginLimits::default(), None).unwrap();
    let mut group = c.benchmark_group("evaluate");
    for (name, label) in [("investor1", "seed investor (2 portfolios x 6)"), ("wide", "1,000 portfolios x 10")] {
        let image = Arc::new(host.load(InvestorId::new(1).unwrap(), &guest(name)).unwrap());
        let quotes = quotes_for(image.tickers());
        let mut instance = image.instantiate();
        instance.evaluate(&quotes).unwrap();
        group.bench_function(label, |b| b.iter(|| instance.evaluate(&quotes).unwrap()));
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let bytes = std::fs::read(guest("investor1")).unwrap();
    let path = guest("investor1");
    let investor = InvestorId::new(1).unwrap();
    let mut group = c.benchmark_group("load investor1");
    group.sample_size(20);
    let cold = PluginHost::new(PluginLimits::default(), None).unwrap();
    group.bench_function("cold (compile + validate)", |b| b.iter(|| cold.load_bytes(investor, &path, &bytes).unwrap()));
    let cache = tempfile::tempdir().unwrap();
    let cached = PluginHost::new(PluginLimits::default(), Some(cache.path().to_path_buf())).unwrap();
    cached.load_bytes(investor, &path, &bytes).unwrap();
    group.bench_function("from cache (deserialize + validate)", |b| {
        b.iter(|| cached.load_bytes(investor, &path, &bytes).unwrap())
    });
    group.finish();
}

criterion_group!(benches, evaluate, load);
criterion_main!(benches);
