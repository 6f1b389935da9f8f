//! Investor and portfolio identifiers.
//!
//! Portfolio P of investor N is written `N.P` (both ≥ 1, plain decimal, no
//! sign, no leading zeros). That text becomes a file name in the sink, so
//! parsing is strict: anything else is rejected, never sanitised.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An investor number N ≥ 1, as in `investorN.wasm`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InvestorId(u32);

/// A portfolio `N.P`: portfolio P of investor N.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortfolioId {
    /// The investor N.
    pub investor: InvestorId,
    /// The portfolio number P ≥ 1 within the investor.
    pub number: u32,
}

/// Why a text is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Zero is not a valid investor or portfolio number.
    #[error("{what} number must be at least 1")]
    Zero {
        /// "investor" or "portfolio".
        what: &'static str,
    },
    /// The text is not of the form `N.P`.
    #[error("portfolio id {0:?} is not of the form N.P (e.g. 2.1)")]
    BadPortfolio(String),
    /// The text is not a plain decimal number ≥ 1.
    #[error("investor id {0:?} is not a number ≥ 1")]
    BadInvestor(String),
}

impl InvestorId {
    /// The investor with number `n`; zero is rejected.
    pub fn new(n: u32) -> Result<Self, IdError> {
        if n == 0 { Err(IdError::Zero { what: "investor" }) } else { Ok(InvestorId(n)) }
    }

    /// The number N.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for InvestorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for InvestorId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = parse_number(s).ok_or_else(|| IdError::BadInvestor(s.to_string()))?;
        InvestorId::new(n)
    }
}

impl PortfolioId {
    /// Portfolio `number` of `investor`; zero is rejected.
    pub fn new(investor: InvestorId, number: u32) -> Result<Self, IdError> {
        if number == 0 { Err(IdError::Zero { what: "portfolio" }) } else { Ok(PortfolioId { investor, number }) }
    }
}

impl fmt::Display for PortfolioId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.investor, self.number)
    }
}

impl FromStr for PortfolioId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || IdError::BadPortfolio(s.to_string());
        let (n, p) = s.split_once('.').ok_or_else(bad)?;
        let investor = parse_number(n).ok_or_else(bad)?;
        let number = parse_number(p).ok_or_else(bad)?;
        PortfolioId::new(InvestorId::new(investor)?, number)
    }
}

/// A canonical decimal u32: ASCII digits only, no sign, no leading zero
/// (except "0" itself), no overflow.
fn parse_number(s: &str) -> Option<u32> {
    let canonical = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

impl Serialize for PortfolioId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PortfolioId {
    /// From the string `N.P`, parsed where it lies (no copy).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = PortfolioId;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a portfolio id N.P")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<PortfolioId, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Text)
    }
}

impl Serialize for InvestorId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for InvestorId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        InvestorId::new(u32::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonical_ids() {
        let id: PortfolioId = "3.2".parse().unwrap();
        assert_eq!(id.investor.get(), 3);
        assert_eq!(id.number, 2);
        assert_eq!(id.to_string(), "3.2");
        assert_eq!("4294967295.1".parse::<PortfolioId>().unwrap().investor.get(), u32::MAX);
    }

    #[test]
    fn rejects_hostile_and_malformed_ids() {
        for bad in [
            "",
            ".",
            "1.",
            ".1",
            "1",
            "1.2.3",
            "../../etc/x.1",
            "1.2/../3",
            "1.2\n",
            " 1.2",
            "1.-1",
            "-1.1",
            "+1.1",
            "0.1",
            "1.0",
            "01.2",
            "1.02",
            "1.2e3",
            "4294967296.1",
            "1,2",
            "１.２",
        ] {
            assert!(bad.parse::<PortfolioId>().is_err(), "{bad:?} should be rejected");
        }
        let long = format!("{}.1", "9".repeat(10_000));
        assert!(long.parse::<PortfolioId>().is_err());
    }

    #[test]
    fn zero_is_named_in_the_error() {
        assert_eq!("0.1".parse::<PortfolioId>().unwrap_err(), IdError::Zero { what: "investor" });
        assert_eq!("1.0".parse::<PortfolioId>().unwrap_err(), IdError::Zero { what: "portfolio" });
    }

    #[test]
    fn orders_by_investor_then_portfolio_number() {
        let mut ids: Vec<PortfolioId> = ["1.10", "2.1", "1.2"].iter().map(|s| s.parse().unwrap()).collect();
        ids.sort();
        let texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["1.2", "1.10", "2.1"]);
    }
}
