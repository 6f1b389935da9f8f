//! Plugin host benchmarks: `evaluate` latency with the limits on, and the
//! cost of loading a component cold (compiling) and from the cache.
//!
//! Needs the guests: `just plugins` (or `just bench`) first.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use stockd::config::MarketConfig;
use stockd::market::InvestorId;
use stockd::plugin::{PluginHost, PluginLimits, Quote};

fn guest(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.ancestors().nth(3).unwrap().join("test-plugins").join(format!("{name}.wasm"));
    assert!(path.exists(), "{} is missing: run `just plugins` first", path.display());
    path
}

/// The opening price of every ticker held, from the default market.
fn quotes_for(tickers: &[String]) -> Vec<Quote> {
    MarketConfig::default()
        .exchanges
        .into_iter()
        .flat_map(|exchange| exchange.tickers)
        .filter(|(ticker, _)| tickers.contains(ticker))
        .map(|(ticker, price)| Quote { ticker, price })
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
