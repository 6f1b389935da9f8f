//! Plugin host benchmarks: `evaluate` latency with the limits on, and the
//! cost of loading a component cold (compiling) and from the cache, for the
//! seed's investor 1 written in Rust, Python and JavaScript, as components
//! and as scripts (`plugins/scripts/investor1.py`, `.js`) run by the
//! interpreter components.
//!
//! Needs the guests: `just plugins guest-languages` (or `just bench`) first.

use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use stockd::config::MarketConfig;
use stockd::market::InvestorId;
use stockd::plugin::{PluginHost, PluginLimits, Quote};

/// A test guest, or a script of `plugins/scripts` (a name with an extension).
fn guest(name: &str) -> PathBuf {
    let path = if name.contains('.') {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/scripts").join(name)
    } else {
        target().join("test-plugins").join(format!("{name}.wasm"))
    };
    assert!(path.exists(), "{} is missing: run `just plugins` first", path.display());
    path
}

/// The target directory this bench was built into.
fn target() -> PathBuf {
    std::env::current_exe().unwrap().ancestors().nth(3).unwrap().to_path_buf()
}

/// A host that also runs scripts, with the interpreters `just plugins` built.
fn host(cache: Option<PathBuf>) -> PluginHost {
    PluginHost::with_interpreters(PluginLimits::default(), cache, Some(target().join("interpreters"))).unwrap()
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
    let host = host(None);
    let mut group = c.benchmark_group("evaluate");
    let guests = [
        ("investor1", "investor 1 in Rust (2 portfolios x 6)"),
        ("python_investor1", "investor 1 in Python"),
        ("investor1.py", "investor 1 as a Python script"),
        ("js_investor1", "investor 1 in JavaScript"),
        ("investor1.js", "investor 1 as a JavaScript script"),
        ("wide", "1,000 portfolios x 10 in Rust"),
    ];
    for (name, label) in guests {
        let image = Arc::new(host.load(InvestorId::new(1).unwrap(), &guest(name)).unwrap());
        let quotes = quotes_for(image.tickers());
        let mut instance = image.instantiate();
        instance.evaluate(&quotes).unwrap();
        group.bench_function(label, |b| b.iter(|| instance.evaluate(&quotes).unwrap()));
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let investor = InvestorId::new(1).unwrap();
    let scripts = host(None);
    for (name, language) in [("investor1.py", "Python"), ("investor1.js", "JavaScript")] {
        let path = guest(name);
        scripts.load(investor, &path).unwrap(); // compiles the interpreter, once
        let mut group = c.benchmark_group(format!("load investor 1 as a {language} script"));
        group.bench_function("interpreter compiled (read + instantiate + validate)", |b| {
            b.iter(|| scripts.load(investor, &path).unwrap())
        });
        group.finish();
    }
    for (name, language) in [("investor1", "Rust"), ("python_investor1", "Python"), ("js_investor1", "JavaScript")] {
        let path = guest(name);
        let bytes = std::fs::read(&path).unwrap();
        let mut group = c.benchmark_group(format!("load investor 1 in {language}"));
        // A Python or JavaScript compile takes seconds: the fewest samples.
        group.sample_size(10);
        let cold = PluginHost::new(PluginLimits::default(), None).unwrap();
        group.bench_function("cold (compile + validate)", |b| {
            b.iter(|| cold.load_bytes(investor, &path, &bytes).unwrap())
        });
        let cache = tempfile::tempdir().unwrap();
        let cached = PluginHost::new(PluginLimits::default(), Some(cache.path().to_path_buf())).unwrap();
        cached.load_bytes(investor, &path, &bytes).unwrap();
        group.bench_function("from cache (deserialize + validate)", |b| {
            b.iter(|| cached.load_bytes(investor, &path, &bytes).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, evaluate, load);
criterion_main!(benches);
