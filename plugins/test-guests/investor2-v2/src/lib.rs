//! Investor 2 after a change of holdings: portfolio 1 is rebalanced,
//! portfolio 2 is sold, portfolio 3 is new.

investor_sdk::book_investor! {
    name: "Investor 2",
    book: &[
        (1, &[("HPQ", 1000.0), ("CSCO", 1000.0), ("ZM", 1000.0)]),
        (3, &[("NVDA", 100.0), ("AVGO", 100.0)]),
    ],
}
