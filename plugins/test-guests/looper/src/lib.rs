//! Loads fine, then never returns from `evaluate`.

use investor_sdk::{Guest, Portfolio, Quote, Valuation};

struct Looper;

impl Guest for Looper {
    fn name() -> String {
        "Looper".to_string()
    }

    fn portfolios() -> Vec<Portfolio> {
        investor_sdk::portfolios(&[(1, &[("IBM", 1.0)])])
    }

    fn evaluate(_quotes: Vec<Quote>) -> Result<Vec<Valuation>, String> {
        let mut spins: u64 = 0;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}

investor_sdk::export!(Looper);
