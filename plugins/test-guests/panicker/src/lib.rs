//! Loads fine, then panics in `evaluate` (a trap, with the message on stderr).

use investor_sdk::{Guest, Portfolio, Quote, Valuation};

struct Panicker;

impl Guest for Panicker {
    fn name() -> String {
        "Panicker".to_string()
    }

    fn portfolios() -> Vec<Portfolio> {
        investor_sdk::portfolios(&[(1, &[("IBM", 1.0)])])
    }

    fn evaluate(_quotes: Vec<Quote>) -> Result<Vec<Valuation>, String> {
        panic!("investor panicked on purpose")
    }
}

investor_sdk::export!(Panicker);
