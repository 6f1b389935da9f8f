//! Price lists for `stockd value`: a JSON object `{"IBM": 123.2, …}` or CSV
//! rows `TICK,PRICE` (with or without that header).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};

/// Ticker → price, every price finite and > 0.
pub type PriceList = BTreeMap<String, f64>;

/// Reads a price list, JSON or CSV by its first character.
pub fn read(path: &Path) -> anyhow::Result<PriceList> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read price file {}", path.display()))?;
    parse(&text).with_context(|| format!("bad price file {}", path.display()))
}

/// Parses the text of a price list.
pub fn parse(text: &str) -> anyhow::Result<PriceList> {
    let prices = if text.trim_start().starts_with('{') { parse_json(text)? } else { parse_csv(text)? };
    if prices.is_empty() {
        bail!("no prices in it (expected {{\"IBM\": 123.2, …}} or TICK,PRICE rows)");
    }
    Ok(prices)
}

fn parse_json(text: &str) -> anyhow::Result<PriceList> {
    let object: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(text).context("not a JSON object of ticker to price, like {\"IBM\": 123.2}")?;
    object
        .into_iter()
        .map(|(ticker, value)| {
            let price = value.as_f64().with_context(|| format!("price of {ticker:?} is {value}, not a number"))?;
            check(&ticker, price)?;
            Ok((ticker, price))
        })
        .collect()
}

fn parse_csv(text: &str) -> anyhow::Result<PriceList> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).trim(csv::Trim::All).from_reader(text.as_bytes());
    let mut prices = PriceList::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 1;
        let record = record.with_context(|| format!("line {line}"))?;
        if record.len() != 2 {
            bail!("line {line}: expected TICK,PRICE, found {} fields", record.len());
        }
        let (ticker, price) = (&record[0], &record[1]);
        if line == 1 && ticker.eq_ignore_ascii_case("TICK") {
            continue;
        }
        let price: f64 = price.parse().with_context(|| format!("line {line}: price {price:?} is not a number"))?;
        check(ticker, price).with_context(|| format!("line {line}"))?;
        prices.insert(ticker.to_string(), price);
    }
    Ok(prices)
}

fn check(ticker: &str, price: f64) -> anyhow::Result<()> {
    if ticker.trim().is_empty() {
        bail!("empty ticker");
    }
    if !price.is_finite() || price <= 0.0 {
        bail!("price of {ticker} is {price}; prices must be finite and above zero");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_and_csv_with_or_without_header() {
        let json = parse(r#"{"IBM": 123.2, "AAPL": 125.35}"#).unwrap();
        assert_eq!(json["IBM"], 123.2);
        let csv = parse("TICK,PRICE\nIBM,123.2\nAAPL, 125.35\n").unwrap();
        assert_eq!(csv, json);
        assert_eq!(parse("IBM,123.2").unwrap()["IBM"], 123.2);
    }

    #[test]
    fn names_the_bad_line_or_value() {
        let error = |text: &str| format!("{:#}", parse(text).unwrap_err());
        assert!(error("IBM,abc").contains("line 1: price \"abc\" is not a number"));
        assert!(error("TICK,PRICE\nIBM,1\nAAPL,-2").contains("line 3: price of AAPL is -2"));
        assert!(error("IBM,1,2").contains("expected TICK,PRICE"));
        assert!(error(r#"{"IBM": "x"}"#).contains("not a number"));
        assert!(error(r#"{"IBM": 0}"#).contains("above zero"));
        assert!(error("{nope").contains("not a JSON object"));
        assert!(error("").contains("no prices"));
    }
}
