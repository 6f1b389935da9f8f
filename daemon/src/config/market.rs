//! The `[market]` section: the simulated exchanges.

use std::fmt;
use std::time::Duration;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::duration;

/// How a trade moves a price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PriceModel {
    /// A random walk: the last price × (1 + U(−max-step, +max-step)),
    /// floored at 0.01. The default.
    RandomWalk,
    /// The original server's formula, kept for comparison: the opening price
    /// × U(0.5, 0.6), never cumulative.
    Seed,
}

/// The simulated exchanges and their trading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MarketConfig {
    /// Seed of the random numbers, for reproducible runs. Default: none (a
    /// different market every run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// How trades move prices. Default `random-walk`.
    pub price_model: PriceModel,
    /// Largest relative move of one trade in the random walk. Default 0.05.
    pub max_step: f64,
    /// Shortest wait between two trades of an exchange. Default `2s`.
    #[serde(with = "duration")]
    pub trade_delay_min: Duration,
    /// Longest wait between two trades of an exchange. Default `5s`.
    #[serde(with = "duration")]
    pub trade_delay_max: Duration,
    /// Waits are whole multiples of this above the minimum (the seed waits a
    /// whole 2, 3, 4 or 5 seconds). Default `1s`.
    #[serde(with = "duration")]
    pub trade_delay_step: Duration,
    /// The exchanges. Default: the seed's se1 and se2 with 12 tickers each.
    pub exchanges: Vec<ExchangeConfig>,
}

/// One exchange: its name and its tickers with their opening prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// The exchange's name, e.g. `se1`.
    pub name: String,
    /// Ticker → opening price, in the order they open, e.g.
    /// `{ IBM = 123.20, AAPL = 125.35 }`.
    #[serde(serialize_with = "serialize_tickers", deserialize_with = "deserialize_tickers")]
    pub tickers: Vec<(String, f64)>,
}

const SE1: [(&str, f64); 12] = [
    ("IBM", 123.20),
    ("AAPL", 125.35),
    ("FB", 264.30),
    ("AMZN", 3159.50),
    ("GOOG", 2083.80),
    ("TWTR", 71.90),
    ("LNKD", 45.00),
    ("INTC", 63.20),
    ("AMD", 86.90),
    ("MSFT", 234.50),
    ("DELL", 81.70),
    ("ORKL", 64.70),
];

const SE2: [(&str, f64); 12] = [
    ("HPQ", 28.00),
    ("CSCO", 45.70),
    ("ZM", 385.20),
    ("QCOM", 141.10),
    ("ADBE", 476.60),
    ("VZ", 57.10),
    ("TXN", 179.40),
    ("CRM", 240.50),
    ("AVGO", 480.90),
    ("NVDA", 580.00),
    ("VMW", 146.80),
    ("EBAY", 59.40),
];

impl Default for MarketConfig {
    fn default() -> Self {
        let exchange = |name: &str, tickers: &[(&str, f64)]| ExchangeConfig {
            name: name.to_string(),
            tickers: tickers.iter().map(|&(t, p)| (t.to_string(), p)).collect(),
        };
        MarketConfig {
            seed: None,
            price_model: PriceModel::RandomWalk,
            max_step: 0.05,
            trade_delay_min: Duration::from_secs(2),
            trade_delay_max: Duration::from_secs(5),
            trade_delay_step: Duration::from_secs(1),
            exchanges: vec![exchange("se1", &SE1), exchange("se2", &SE2)],
        }
    }
}

impl MarketConfig {
    /// Checks ranges and tickers; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.max_step > 0.0 && self.max_step < 1.0) {
            return Err(format!("market.max-step: {} must be between 0 and 1", self.max_step));
        }
        if self.trade_delay_min > self.trade_delay_max {
            return Err("market.trade-delay-min: must not exceed market.trade-delay-max".to_string());
        }
        if self.trade_delay_step.is_zero() {
            return Err("market.trade-delay-step: must be more than zero".to_string());
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, exchange) in self.exchanges.iter().enumerate() {
            let key = format!("market.exchanges[{i}]");
            if exchange.name.trim().is_empty() {
                return Err(format!("{key}.name: must not be empty"));
            }
            if exchange.tickers.is_empty() {
                return Err(format!("{key}.tickers: {} has no ticker", exchange.name));
            }
            for (ticker, price) in &exchange.tickers {
                if ticker.trim().is_empty() || ticker.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(format!("{key}.tickers: invalid ticker {ticker:?}"));
                }
                if !(price.is_finite() && *price > 0.0) {
                    return Err(format!("{key}.tickers.{ticker}: opening price {price} must be above zero"));
                }
                if !seen.insert(ticker.clone()) {
                    return Err(format!("{key}.tickers.{ticker}: listed on two exchanges"));
                }
            }
        }
        Ok(())
    }
}

fn serialize_tickers<S: Serializer>(tickers: &[(String, f64)], serializer: S) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(tickers.len()))?;
    for (ticker, price) in tickers {
        map.serialize_entry(ticker, price)?;
    }
    map.end()
}

/// Reads a table of ticker → price, keeping the order of the file.
fn deserialize_tickers<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<(String, f64)>, D::Error> {
    struct Tickers;

    impl<'de> Visitor<'de> for Tickers {
        type Value = Vec<(String, f64)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table of ticker = opening price")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut tickers = Vec::new();
            while let Some((ticker, price)) = map.next_entry::<String, f64>()? {
                tickers.push((ticker, price));
            }
            Ok(tickers)
        }
    }

    deserializer.deserialize_map(Tickers)
}
