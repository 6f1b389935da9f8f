//! Tries to read a host file: it imports `wasi:filesystem`, which stockd
//! grants with nothing preopened, so it loads and its read fails.

use investor_sdk::{Guest, Portfolio, Quote, Valuation};

struct Snooper;

impl Guest for Snooper {
    fn name() -> String {
        "Snooper".to_string()
    }

    fn portfolios() -> Vec<Portfolio> {
        investor_sdk::portfolios(&[(1, &[("IBM", 1.0)])])
    }

    fn evaluate(_quotes: Vec<Quote>) -> Result<Vec<Valuation>, String> {
        let secrets = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
        Ok(vec![Valuation { portfolio: 1, nav: secrets.len() as f64 }])
    }
}

investor_sdk::export!(Snooper);
