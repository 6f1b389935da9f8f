//! Loads fine, then returns a NaN NAV for portfolio 1 and a negative one for
//! portfolio 2 (after saying so on stdout).

use investor_sdk::{Guest, Portfolio, Quote, Valuation};

struct BadNav;

impl Guest for BadNav {
    fn name() -> String {
        "Bad NAV".to_string()
    }

    fn portfolios() -> Vec<Portfolio> {
        investor_sdk::portfolios(&[(1, &[("IBM", 1.0)]), (2, &[("AAPL", 1.0)])])
    }

    fn evaluate(_quotes: Vec<Quote>) -> Result<Vec<Valuation>, String> {
        println!("returning a NaN and a negative NAV");
        Ok(vec![Valuation { portfolio: 1, nav: f64::NAN }, Valuation { portfolio: 2, nav: -5.0 }])
    }
}

investor_sdk::export!(BadNav);
