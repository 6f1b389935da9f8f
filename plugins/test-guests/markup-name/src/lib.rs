//! An investor whose name is markup: a page that renders names as HTML
//! would run its script.

investor_sdk::book_investor! {
    name: "<img src=x onerror=alert(1)>",
    book: &[(1, &[("IBM", 10.0)])],
}
