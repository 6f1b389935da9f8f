//! Guest-side glue for stockd investor plugins.
//!
//! This crate generates the bindings for the `investor` world in
//! `wit/investor.wit` once, so that a plugin crate only has to implement
//! [`Guest`] and call [`export!`]. It also provides the valuation the seed's
//! investors use, Σ shares × price, over a fixed table of holdings
//! ([`Book`]). A plugin that values differently implements `evaluate` itself.
//!
//! ```ignore
//! use investor_sdk::{Book, Guest, Portfolio, Quote, Valuation};
//!
//! const BOOK: Book = &[(1, &[("IBM", 10.0), ("AAPL", 5.0)])];
//!
//! struct MyInvestor;
//!
//! impl Guest for MyInvestor {
//!     fn name() -> String { "My Investor".into() }
//!     fn portfolios() -> Vec<Portfolio> { investor_sdk::portfolios(BOOK) }
//!     fn evaluate(quotes: Vec<Quote>) -> Result<Vec<Valuation>, String> {
//!         investor_sdk::value(BOOK, &quotes)
//!     }
//! }
//!
//! investor_sdk::export!(MyInvestor);
//! ```

// Lets the generated code name this crate by its external path, so that the
// exported `export!` macro works from plugin crates.
extern crate self as investor_sdk;

#[doc(hidden)]
pub use wit_bindgen;

/// The bindings generated from `wit/investor.wit`.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "investor",
        pub_export_macro: true,
        default_bindings_module: "investor_sdk::bindings",
        runtime_path: "investor_sdk::wit_bindgen::rt",
    });
}

pub use bindings::{Guest, Holding, Portfolio, Quote, Valuation, export};

/// A fixed table of portfolios: `(portfolio id, [(ticker, shares), …])`.
pub type Book = &'static [(u32, &'static [(&'static str, f64)])];

/// The portfolios of a [`Book`], as `portfolios` returns them.
pub fn portfolios(book: Book) -> Vec<Portfolio> {
    book.iter()
        .map(|&(id, holdings)| Portfolio {
            id,
            holdings: holdings.iter().map(|&(ticker, shares)| Holding { ticker: ticker.to_string(), shares }).collect(),
        })
        .collect()
}

/// Values every portfolio of `book` as Σ shares × price.
///
/// Fails with a message naming the first ticker (in book order) that has no
/// quote.
pub fn value(book: Book, quotes: &[Quote]) -> Result<Vec<Valuation>, String> {
    let prices = Prices::new(quotes);
    book.iter()
        .map(|&(id, holdings)| {
            let nav = prices
                .nav(holdings.iter().copied())
                .map_err(|ticker| format!("no price for {ticker} (portfolio {id})"))?;
            Ok(Valuation { portfolio: id, nav })
        })
        .collect()
}

/// The quotes of one `evaluate` call, indexed by ticker.
pub struct Prices<'a> {
    sorted: Vec<(&'a str, f64)>,
}

impl<'a> Prices<'a> {
    /// Indexes `quotes` (stockd passes each ticker once).
    pub fn new(quotes: &'a [Quote]) -> Self {
        let mut sorted: Vec<(&str, f64)> = quotes.iter().map(|q| (q.ticker.as_str(), q.price)).collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        Prices { sorted }
    }

    /// The price of `ticker`, if quoted.
    pub fn get(&self, ticker: &str) -> Option<f64> {
        self.sorted.binary_search_by(|probe| probe.0.cmp(ticker)).map(|i| self.sorted[i].1).ok()
    }

    /// Σ shares × price over `holdings`, or the first ticker without a price.
    pub fn nav<'t>(&self, holdings: impl IntoIterator<Item = (&'t str, f64)>) -> Result<f64, &'t str> {
        holdings.into_iter().try_fold(0.0, |nav, (ticker, shares)| Ok(nav + shares * self.get(ticker).ok_or(ticker)?))
    }
}

/// Defines and exports an investor that values a fixed [`Book`] as
/// Σ shares × price — the whole of a seed investor:
///
/// ```ignore
/// investor_sdk::book_investor! {
///     name: "Investor 4",
///     book: &[
///         (1, &[("IBM", 100.0), ("AAPL", 50.0)]),
///         (2, &[("NVDA", 10.0)]),
///     ],
/// }
/// ```
///
/// To value another way (or keep state between intervals), implement
/// [`Guest`] yourself and call [`export!`], as the doc example above shows.
#[macro_export]
macro_rules! book_investor {
    (name: $name:expr, book: $book:expr $(,)?) => {
        const BOOK: $crate::Book = $book;

        struct BookInvestor;

        impl $crate::Guest for BookInvestor {
            fn name() -> String {
                ($name).to_string()
            }

            fn portfolios() -> Vec<$crate::Portfolio> {
                $crate::portfolios(BOOK)
            }

            fn evaluate(quotes: Vec<$crate::Quote>) -> Result<Vec<$crate::Valuation>, String> {
                $crate::value(BOOK, &quotes)
            }
        }

        $crate::export!(BookInvestor);
    };
}
