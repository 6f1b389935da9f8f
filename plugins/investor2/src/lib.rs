//! Investor 2 of the seed (see `investor1` to write your own).

investor_sdk::book_investor! {
    name: "Investor 2",
    book: &[
        (1, &[("HPQ", 600.0), ("CSCO", 1200.0), ("ZM", 1400.0), ("QCOM", 900.0), ("ADBE", 800.0), ("VZ", 1200.0)]),
        (2, &[("TXN", 1100.0), ("CRM", 600.0), ("AVGO", 700.0), ("NVDA", 1100.0), ("VMW", 600.0), ("EBAY", 800.0)]),
    ],
}
