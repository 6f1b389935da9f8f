//! An investor with 1,000 portfolios of 10 holdings each over the 24 default
//! tickers (a fixed pseudo-random choice), for benchmarks. It resolves each
//! holding to a ticker index once, so that a call costs one lookup per quote
//! and one multiply-add per holding, summed in two accumulators (a single
//! running sum is bound by the latency of floating-point adds).

use std::sync::OnceLock;

use investor_sdk::{Guest, Holding, Portfolio, Quote, Valuation};

const TICKERS: [&str; 24] = [
    "IBM", "AAPL", "FB", "AMZN", "GOOG", "TWTR", "LNKD", "INTC", "AMD", "MSFT", "DELL", "ORKL", "HPQ", "CSCO", "ZM",
    "QCOM", "ADBE", "VZ", "TXN", "CRM", "AVGO", "NVDA", "VMW", "EBAY",
];
const PORTFOLIOS: usize = 1_000;
const HOLDINGS: usize = 10;

/// A portfolio: its id and its holdings as (index into TICKERS, shares).
type Row = (u32, [(usize, f64); HOLDINGS]);

/// Every portfolio, in one block.
fn book() -> &'static [Row] {
    static BOOK: OnceLock<Vec<Row>> = OnceLock::new();
    BOOK.get_or_init(|| {
        (1..=PORTFOLIOS as u32)
            .map(|id| {
                (
                    id,
                    std::array::from_fn(|h| {
                        (((id as usize * 7 + h * 5) % 24), (100 + (id as usize * 31 + h * 17) % 900) as f64)
                    }),
                )
            })
            .collect()
    })
}

struct Wide;

impl Guest for Wide {
    fn name() -> String {
        "Wide".to_string()
    }

    fn portfolios() -> Vec<Portfolio> {
        book()
            .iter()
            .map(|(id, holdings)| Portfolio {
                id: *id,
                holdings: holdings
                    .iter()
                    .map(|&(ticker, shares)| Holding { ticker: TICKERS[ticker].to_string(), shares })
                    .collect(),
            })
            .collect()
    }

    fn evaluate(quotes: Vec<Quote>) -> Result<Vec<Valuation>, String> {
        let mut prices = [f64::NAN; TICKERS.len()];
        for quote in &quotes {
            if let Some(index) = TICKERS.iter().position(|t| *t == quote.ticker) {
                prices[index] = quote.price;
            }
        }
        if let Some(missing) = prices.iter().position(|p| p.is_nan()) {
            return Err(format!("no price for {}", TICKERS[missing]));
        }
        let mut valuations = Vec::with_capacity(PORTFOLIOS);
        for (id, holdings) in book() {
            let (mut even, mut odd) = (0.0, 0.0);
            for pair in holdings.chunks_exact(2) {
                even += pair[0].1 * prices[pair[0].0];
                odd += pair[1].1 * prices[pair[1].0];
            }
            let nav = even + odd;
            valuations.push(Valuation { portfolio: *id, nav });
        }
        Ok(valuations)
    }
}

investor_sdk::export!(Wide);
