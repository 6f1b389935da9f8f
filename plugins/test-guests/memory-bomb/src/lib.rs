//! Loads fine, then allocates (and touches) memory until something stops it.

use investor_sdk::{Guest, Portfolio, Quote, Valuation};

struct MemoryBomb;

impl Guest for MemoryBomb {
    fn name() -> String {
        "Memory Bomb".to_string()
    }

    fn portfolios() -> Vec<Portfolio> {
        investor_sdk::portfolios(&[(1, &[("IBM", 1.0)])])
    }

    fn evaluate(_quotes: Vec<Quote>) -> Result<Vec<Valuation>, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![0xAB; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

investor_sdk::export!(MemoryBomb);
