//! Investor 3 of the seed (see `investor1` to write your own).

investor_sdk::book_investor! {
    name: "Investor 3",
    book: &[
        (1, &[("HPQ", 1200.0), ("ZM", 750.0), ("DELL", 800.0), ("NVDA", 1250.0), ("IBM", 900.0), ("INTC", 1000.0)]),
        (2, &[("VZ", 1150.0), ("AVGO", 900.0), ("TWTR", 1200.0), ("AAPL", 1200.0), ("DELL", 500.0), ("ORKL", 900.0)]),
    ],
}
