//! Investor 1 of the seed.
//!
//! `just investor 4 rust` copies this crate to `plugins/investor4` and builds
//! `investors/investor4.wasm` from it: change the name and the book below,
//! then run the command again.

investor_sdk::book_investor! {
    name: "Investor 1",
    book: &[
        (1, &[("IBM", 1000.0), ("AAPL", 1200.0), ("FB", 900.0), ("AMZN", 2300.0), ("GOOG", 1400.0), ("TWTR", 400.0)]),
        (2, &[("LNKD", 900.0), ("INTC", 600.0), ("AMD", 1100.0), ("MSFT", 1200.0), ("DELL", 700.0), ("ORKL", 1200.0)]),
    ],
}
