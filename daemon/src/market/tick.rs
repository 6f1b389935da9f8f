//! Price ticks: the values of the `StockExchange` topic, keyed by ticker.

use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::Value;

use super::time::{format_micros, parse_timestamp};

/// One trade: the new price of a ticker.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// The ticker symbol, e.g. `IBM`; never empty.
    pub ticker: String,
    /// The price in currency units; finite and > 0.
    pub price: f64,
    /// When the trade happened (UTC).
    pub at: NaiveDateTime,
}

/// Why a `StockExchange` message is not a tick.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TickError {
    /// Not JSON at all.
    #[error("not JSON: {0}")]
    BadJson(String),
    /// JSON, but not an object (nor a string holding one).
    #[error("not a JSON object")]
    NotAnObject,
    /// A required field is missing.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// TICK is empty or not a string.
    #[error("TICK must be a non-empty string, found {0}")]
    BadTicker(String),
    /// PRICE is not a finite number > 0 (or a string holding one).
    #[error("PRICE must be a number above zero, found {0}")]
    BadPrice(String),
    /// TS is not a timestamp.
    #[error("TS is not a timestamp: {0}")]
    BadTimestamp(String),
}

#[derive(Serialize)]
struct TickJson<'a> {
    #[serde(rename = "TICK")]
    ticker: &'a str,
    #[serde(rename = "PRICE")]
    price: f64,
    #[serde(rename = "TS")]
    at: String,
}

impl Tick {
    /// The message value: `{"TICK":"IBM","PRICE":123.2,"TS":"2026-11-24 09:40:20.123456"}`.
    pub fn encode(&self) -> Vec<u8> {
        let json = TickJson { ticker: &self.ticker, price: self.price, at: format_micros(self.at) };
        serde_json::to_vec(&json).expect("a tick always serialises")
    }

    /// Reads a message value. Besides the form [`encode`](Self::encode)
    /// writes, accepts the original Python producers' forms: PRICE as a
    /// numeric string (`"123.20"`) and the whole object encoded again as a
    /// JSON string.
    pub fn decode(bytes: &[u8]) -> Result<Tick, TickError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| TickError::BadJson(e.to_string()))?;
        let value = match value {
            Value::String(inner) => serde_json::from_str(&inner).map_err(|e| TickError::BadJson(e.to_string()))?,
            other => other,
        };
        let Value::Object(fields) = value else {
            return Err(TickError::NotAnObject);
        };
        let field = |name: &'static str| fields.get(name).ok_or(TickError::MissingField(name));
        let ticker = match field("TICK")? {
            Value::String(t) if !t.trim().is_empty() => t.clone(),
            other => return Err(TickError::BadTicker(other.to_string())),
        };
        let price_value = field("PRICE")?;
        let price = match price_value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|p| p.is_finite() && *p > 0.0)
        .ok_or_else(|| TickError::BadPrice(price_value.to_string()))?;
        let at = match field("TS")? {
            Value::String(ts) => parse_timestamp(ts).map_err(|_| TickError::BadTimestamp(ts.clone()))?,
            other => return Err(TickError::BadTimestamp(other.to_string())),
        };
        Ok(Tick { ticker, price, at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick() -> Tick {
        Tick { ticker: "IBM".to_string(), price: 123.2, at: parse_timestamp("2026-11-24 09:40:20.123456").unwrap() }
    }

    #[test]
    fn encodes_the_documented_form_and_reads_it_back() {
        let bytes = tick().encode();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            r#"{"TICK":"IBM","PRICE":123.2,"TS":"2026-11-24 09:40:20.123456"}"#
        );
        assert_eq!(Tick::decode(&bytes).unwrap(), tick());
    }

    #[test]
    fn accepts_the_python_producers_forms() {
        let string_price = br#"{"TICK":"IBM","PRICE":"123.20","TS":"2026-11-24 09:40:20.123456"}"#;
        assert_eq!(Tick::decode(string_price).unwrap(), tick());
        let double_encoded = br#""{\"TICK\": \"IBM\", \"PRICE\": \"123.20\", \"TS\": \"2026-11-24 09:40:20.123456\"}""#;
        assert_eq!(Tick::decode(double_encoded).unwrap(), tick());
        let unpadded = br#"{"TICK":"IBM","PRICE":123.2,"TS":"2022-3-20 15:38"}"#;
        assert_eq!(Tick::decode(unpadded).unwrap().at, parse_timestamp("2022-03-20 15:38:00").unwrap());
    }

    #[test]
    fn rejects_each_malformed_form_with_its_reason() {
        let cases: [(&[u8], TickError); 11] = [
            (b"{not json", TickError::BadJson("key must be a string at line 1 column 2".to_string())),
            (b"[1,2]", TickError::NotAnObject),
            (br#"{"PRICE":1,"TS":"2026-11-24"}"#, TickError::MissingField("TICK")),
            (br#"{"TICK":"IBM","TS":"2026-11-24"}"#, TickError::MissingField("PRICE")),
            (br#"{"TICK":"IBM","PRICE":1}"#, TickError::MissingField("TS")),
            (br#"{"TICK":"","PRICE":1,"TS":"2026-11-24"}"#, TickError::BadTicker("\"\"".to_string())),
            (br#"{"TICK":7,"PRICE":1,"TS":"2026-11-24"}"#, TickError::BadTicker("7".to_string())),
            (br#"{"TICK":"IBM","PRICE":0,"TS":"2026-11-24"}"#, TickError::BadPrice("0".to_string())),
            (br#"{"TICK":"IBM","PRICE":-3.5,"TS":"2026-11-24"}"#, TickError::BadPrice("-3.5".to_string())),
            (br#"{"TICK":"IBM","PRICE":"NaN","TS":"2026-11-24"}"#, TickError::BadPrice("\"NaN\"".to_string())),
            (br#"{"TICK":"IBM","PRICE":1,"TS":"soon"}"#, TickError::BadTimestamp("soon".to_string())),
        ];
        for (bytes, expected) in cases {
            assert_eq!(Tick::decode(bytes).unwrap_err(), expected, "{}", String::from_utf8_lossy(bytes));
        }
        assert!(matches!(Tick::decode(br#""just a string""#), Err(TickError::BadJson(_))));
        assert!(matches!(
            Tick::decode(br#"{"TICK":"IBM","PRICE":"inf","TS":"2026-11-24"}"#),
            Err(TickError::BadPrice(_))
        ));
    }
}
