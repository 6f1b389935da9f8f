//! Declares portfolio 0 and portfolio 1 twice: must fail validation on load.

investor_sdk::book_investor! {
    name: "Bad Portfolios",
    book: &[
        (0, &[("IBM", 1.0)]),
        (1, &[("AAPL", 1.0)]),
        (1, &[("FB", 1.0)]),
    ],
}
