//! Valuations: the values of the `Portfolios` topic, keyed by portfolio id.
//!
//! The message's fields are named once, in [`ValuationFields`] (what is
//! written and what is read). A new field goes there, in [`Valuation`] (the
//! owned form) and [`ValuationView`] (the form the sink and the web view
//! read without allocating) with their conversions, in
//! `Valuation::decode_explained` (the reason a message is rejected), and,
//! if the CSV files hold it, in [`crate::layout::COLUMNS`] and
//! `layout::write_row`.

use chrono::{NaiveDateTime, Timelike as _};
use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ids::{IdError, PortfolioId};
use super::time::{format_seconds, parse_timestamp};

/// The value of one portfolio at one interval, and its change since the
/// portfolio's previous valuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Valuation {
    /// Which portfolio, `N.P`.
    pub portfolio: PortfolioId,
    /// When it was valued (UTC, whole seconds).
    pub at: NaiveDateTime,
    /// Net asset value, rounded to cents.
    pub nav: f64,
    /// NAV minus the previous NAV, rounded to cents; 0 the first time.
    pub nav_change: f64,
    /// The change in percent of the previous NAV, rounded to 2 decimals; 0
    /// the first time and when the previous NAV was 0.
    pub nav_change_pct: f64,
    /// The investor's display name, when the producer gave one.
    pub investor: Option<String>,
    /// INTERVAL_MS, when the producer gave it: see [`ValuationView::identity`].
    pub interval_ms: Option<i64>,
}

/// Rounds to 2 decimals (cents); never returns -0.
pub fn round_cents(value: f64) -> f64 {
    (value * 100.0).round() / 100.0 + 0.0
}

/// A NAV rounded to cents, with its change and percentage change since
/// `previous` (the rounded NAV of the previous valuation): 0 and 0 the first
/// time, and a 0 % change from a previous NAV of 0.
pub fn nav_changes(nav: f64, previous: Option<f64>) -> (f64, f64, f64) {
    let nav = round_cents(nav);
    match previous {
        None => (nav, 0.0, 0.0),
        Some(previous) => {
            let change = nav - previous;
            let pct = if previous == 0.0 { 0.0 } else { change / previous * 100.0 };
            (nav, round_cents(change), round_cents(pct))
        }
    }
}

/// The fields of a valuation message as JSON, borrowed where possible: what
/// is encoded, and what a valid message decodes to before TIMESTAMP is
/// parsed (numbers as JSON numbers are always finite).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ValuationFields<'a> {
    /// PORTFOLIO.
    #[serde(rename = "PORTFOLIO")]
    pub portfolio: PortfolioId,
    /// TIMESTAMP, formatted `YYYY-MM-DD HH:MM:SS`.
    #[serde(rename = "TIMESTAMP", borrow)]
    pub timestamp: Cow<'a, str>,
    /// NAV.
    #[serde(rename = "NAV")]
    pub nav: f64,
    /// NAV_Change.
    #[serde(rename = "NAV_Change")]
    pub nav_change: f64,
    /// NAV_Change_%.
    #[serde(rename = "NAV_Change_%")]
    pub nav_change_pct: f64,
    /// INVESTOR, the display name.
    #[serde(rename = "INVESTOR", borrow, default, skip_serializing_if = "Option::is_none")]
    pub investor: Option<Cow<'a, str>>,
    /// INTERVAL_MS: the valuation's interval, in milliseconds since the
    /// Unix epoch; with PORTFOLIO, the valuation's identity.
    #[serde(rename = "INTERVAL_MS", default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<i64>,
}

impl ValuationFields<'_> {
    /// The message value:
    /// `{"PORTFOLIO":"1.2","TIMESTAMP":"2026-11-24 09:40:20","NAV":…,"NAV_Change":…,"NAV_Change_%":…,"INVESTOR":"Investor 1","INTERVAL_MS":…}`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        serde_json::to_writer(&mut out, self).expect("a valuation always serialises");
        out
    }
}

impl Valuation {
    /// The valuation of `portfolio` at `nav`, with the change since
    /// `previous_nav` (the NAV of its previous valuation, if any).
    pub fn new(
        portfolio: PortfolioId,
        at: NaiveDateTime,
        nav: f64,
        previous_nav: Option<f64>,
        investor: Option<String>,
    ) -> Valuation {
        let (nav, nav_change, nav_change_pct) = nav_changes(nav, previous_nav);
        Valuation {
            portfolio,
            at: at.with_nanosecond(0).unwrap_or(at),
            nav,
            nav_change,
            nav_change_pct,
            investor,
            interval_ms: None,
        }
    }

    /// This valuation with INTERVAL_MS set.
    pub fn with_interval_ms(self, interval_ms: i64) -> Valuation {
        Valuation { interval_ms: Some(interval_ms), ..self }
    }

    /// Its identity within its portfolio (see [`ValuationView::identity`]).
    pub fn identity(&self) -> i64 {
        self.interval_ms.unwrap_or_else(|| self.at.and_utc().timestamp_millis())
    }

    /// The message value (see [`ValuationFields::encode`]).
    pub fn encode(&self) -> Vec<u8> {
        let timestamp = format_seconds(self.at);
        ValuationFields {
            portfolio: self.portfolio,
            timestamp: Cow::Borrowed(&timestamp),
            nav: self.nav,
            nav_change: self.nav_change,
            nav_change_pct: self.nav_change_pct,
            investor: self.investor.as_deref().map(Cow::Borrowed),
            interval_ms: self.interval_ms,
        }
        .encode()
    }

    /// Reads a message value, strictly: PORTFOLIO must be a valid `N.P`, the
    /// three numbers finite, TIMESTAMP a time; INVESTOR is optional.
    pub fn decode(bytes: &[u8]) -> Result<Valuation, ValuationError> {
        match ValuationView::decode(bytes) {
            Some(view) => Ok(view.to_owned()),
            None => Self::decode_explained(bytes),
        }
    }

    fn decode_explained(bytes: &[u8]) -> Result<Valuation, ValuationError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| ValuationError::BadJson(e.to_string()))?;
        let Value::Object(fields) = value else {
            return Err(ValuationError::NotAnObject);
        };
        let field = |name: &'static str| fields.get(name).ok_or(ValuationError::MissingField(name));
        let portfolio = match field("PORTFOLIO")? {
            Value::String(id) => id.parse().map_err(ValuationError::BadPortfolio)?,
            other => return Err(ValuationError::BadPortfolio(IdError::BadPortfolio(other.to_string()))),
        };
        let at = match field("TIMESTAMP")? {
            Value::String(ts) => parse_timestamp(ts).map_err(|_| ValuationError::BadTimestamp(ts.clone()))?,
            other => return Err(ValuationError::BadTimestamp(other.to_string())),
        };
        let number = |name: &'static str| -> Result<f64, ValuationError> {
            field(name)?
                .as_f64()
                .filter(|n| n.is_finite())
                .ok_or_else(|| ValuationError::NotANumber { field: name, found: fields[name].to_string() })
        };
        let investor = match fields.get("INVESTOR") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.clone()),
            Some(other) => return Err(ValuationError::BadInvestor(other.to_string())),
        };
        let interval_ms = match fields.get("INTERVAL_MS") {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_i64().ok_or_else(|| ValuationError::BadInterval(value.to_string()))?),
        };
        if let Some(ms) = interval_ms
            && !interval_near_timestamp(ms, at)
        {
            return Err(ValuationError::IntervalFarFromTimestamp(ms));
        }
        Ok(Valuation {
            portfolio,
            at,
            nav: number("NAV")?,
            nav_change: number("NAV_Change")?,
            nav_change_pct: number("NAV_Change_%")?,
            investor,
            interval_ms,
        })
    }
}

/// A valid valuation message, borrowed from its bytes where possible: what
/// the sink reads without allocating.
#[derive(Debug, Clone, PartialEq)]
pub struct ValuationView<'a> {
    /// PORTFOLIO.
    pub portfolio: PortfolioId,
    /// TIMESTAMP, parsed.
    pub at: NaiveDateTime,
    /// TIMESTAMP as sent.
    pub timestamp: Cow<'a, str>,
    /// NAV.
    pub nav: f64,
    /// NAV_Change.
    pub nav_change: f64,
    /// NAV_Change_%.
    pub nav_change_pct: f64,
    /// INVESTOR, if given.
    pub investor: Option<Cow<'a, str>>,
    /// INTERVAL_MS, if given.
    pub interval_ms: Option<i64>,
}

impl<'a> ValuationView<'a> {
    /// The valuation's identity within its portfolio: INTERVAL_MS, or for
    /// producers that do not send it (the original's), TIMESTAMP in
    /// milliseconds. An investor's identities only grow, so a valuation
    /// whose identity is not above the last one written for its portfolio
    /// is one written already (republished), or older.
    pub fn identity(&self) -> i64 {
        self.interval_ms.unwrap_or_else(|| self.at.and_utc().timestamp_millis())
    }

    /// The valuation in `bytes` if it is valid, without building a JSON
    /// tree; `None` otherwise ([`Valuation::decode`] says why).
    pub fn decode(bytes: &'a [u8]) -> Option<Self> {
        let wire = serde_json::from_slice::<ValuationFields<'a>>(bytes).ok()?;
        let at = parse_timestamp(&wire.timestamp).ok()?;
        if wire.interval_ms.is_some_and(|ms| !interval_near_timestamp(ms, at)) {
            return None;
        }
        Some(ValuationView {
            portfolio: wire.portfolio,
            at,
            timestamp: wire.timestamp,
            nav: wire.nav,
            nav_change: wire.nav_change,
            nav_change_pct: wire.nav_change_pct,
            investor: wire.investor,
            interval_ms: wire.interval_ms,
        })
    }

    /// The owned valuation.
    pub fn to_owned(&self) -> Valuation {
        Valuation {
            portfolio: self.portfolio,
            at: self.at,
            nav: self.nav,
            nav_change: self.nav_change,
            nav_change_pct: self.nav_change_pct,
            investor: self.investor.as_deref().map(str::to_string),
            interval_ms: self.interval_ms,
        }
    }
}

/// How far INTERVAL_MS may be from TIMESTAMP: an investor keeps its
/// identities increasing when its clock goes back, so they can run ahead of
/// the time; one far off (a bad producer) would make the sink skip every
/// later valuation of its portfolio, and is rejected instead.
pub const MAX_INTERVAL_DRIFT: chrono::Duration = chrono::Duration::days(1);

/// Whether `interval_ms` is within [`MAX_INTERVAL_DRIFT`] of `at`.
fn interval_near_timestamp(interval_ms: i64, at: NaiveDateTime) -> bool {
    interval_ms.abs_diff(at.and_utc().timestamp_millis()) <= MAX_INTERVAL_DRIFT.num_milliseconds() as u64
}

/// Why a `Portfolios` message is not a valuation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValuationError {
    /// Not JSON at all.
    #[error("not JSON: {0}")]
    BadJson(String),
    /// JSON, but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A required field is missing.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// PORTFOLIO is not a valid `N.P`.
    #[error("PORTFOLIO: {0}")]
    BadPortfolio(IdError),
    /// TIMESTAMP is not a time.
    #[error("TIMESTAMP is not a timestamp: {0}")]
    BadTimestamp(String),
    /// A number field is not a finite number.
    #[error("{field} must be a finite number, found {found}")]
    NotANumber {
        /// The field name.
        field: &'static str,
        /// What it held.
        found: String,
    },
    /// INVESTOR is not a string.
    #[error("INVESTOR must be a string, found {0}")]
    BadInvestor(String),
    /// INTERVAL_MS is not a whole number.
    #[error("INTERVAL_MS must be a whole number of milliseconds, found {0}")]
    BadInterval(String),
    /// INTERVAL_MS is more than a day away from TIMESTAMP.
    #[error("INTERVAL_MS {0} is more than a day away from TIMESTAMP")]
    IntervalFarFromTimestamp(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> NaiveDateTime {
        parse_timestamp("2026-11-24 09:40:20").unwrap()
    }

    fn id(text: &str) -> PortfolioId {
        text.parse().unwrap()
    }

    #[test]
    fn first_valuation_has_no_change_then_changes_are_rounded() {
        let first = Valuation::new(id("1.2"), at(), 590_240.004, None, None);
        assert_eq!((first.nav, first.nav_change, first.nav_change_pct), (590_240.0, 0.0, 0.0));
        let second = Valuation::new(id("1.2"), at(), 601_234.567, Some(first.nav), None);
        assert_eq!(second.nav, 601_234.57);
        assert_eq!(second.nav_change, 10_994.57);
        // 10994.57 / 590240 * 100 = 1.86272...
        assert_eq!(second.nav_change_pct, 1.86);
        let from_zero = Valuation::new(id("1.2"), at(), 5.0, Some(0.0), None);
        assert_eq!((from_zero.nav_change, from_zero.nav_change_pct), (5.0, 0.0));
        let tiny_fall = Valuation::new(id("1.2"), at(), 99.999, Some(100.0), None);
        assert!(tiny_fall.nav_change.is_sign_positive() && tiny_fall.nav_change_pct.is_sign_positive(), "no -0");
        let falling = Valuation::new(id("1.2"), at(), 90.0, Some(100.0), None);
        assert_eq!((falling.nav_change, falling.nav_change_pct), (-10.0, -10.0));
    }

    #[test]
    fn encodes_the_documented_form_and_reads_it_back() {
        let v = Valuation::new(id("1.2"), at(), 601_234.57, Some(590_240.0), Some("Investor 1".to_string()));
        let text = String::from_utf8(v.encode()).unwrap();
        assert_eq!(
            text,
            r#"{"PORTFOLIO":"1.2","TIMESTAMP":"2026-11-24 09:40:20","NAV":601234.57,"NAV_Change":10994.57,"NAV_Change_%":1.86,"INVESTOR":"Investor 1"}"#
        );
        assert_eq!(Valuation::decode(text.as_bytes()).unwrap(), v);
        assert_eq!(v.identity(), at().and_utc().timestamp_millis(), "without INTERVAL_MS: TIMESTAMP");
        let v = v.with_interval_ms(1_795_513_220_123);
        let text = String::from_utf8(v.encode()).unwrap();
        assert!(text.ends_with(r#""INVESTOR":"Investor 1","INTERVAL_MS":1795513220123}"#), "{text}");
        assert_eq!(Valuation::decode(text.as_bytes()).unwrap(), v);
        assert_eq!(ValuationView::decode(text.as_bytes()).unwrap().identity(), 1_795_513_220_123);
        let bad = text.replace("1795513220123", "\"soon\"");
        assert_eq!(Valuation::decode(bad.as_bytes()).unwrap_err(), ValuationError::BadInterval(r#""soon""#.into()));
        // A day ahead is kept (a clock gone back); further is rejected: it
        // would hold the portfolio's later rows back.
        let ahead = text.replace("1795513220123", "1795599620000");
        assert_eq!(ValuationView::decode(ahead.as_bytes()).unwrap().identity(), 1_795_599_620_000);
        let far = text.replace("1795513220123", "9223372036854775807");
        assert!(ValuationView::decode(far.as_bytes()).is_none());
        assert_eq!(Valuation::decode(far.as_bytes()).unwrap_err(), ValuationError::IntervalFarFromTimestamp(i64::MAX));
    }

    #[test]
    fn rejects_hostile_and_malformed_messages() {
        let with = |portfolio: &str| {
            format!(
                r#"{{"PORTFOLIO":{portfolio},"TIMESTAMP":"2026-11-24 09:40:20","NAV":1,"NAV_Change":0,"NAV_Change_%":0}}"#
            )
        };
        for hostile in [r#""../../etc/x.1""#, r#""1.2/../3""#, r#""1.2\n""#, r#""1.-1""#, r#""0.1""#, "12"] {
            let error = Valuation::decode(with(hostile).as_bytes()).unwrap_err();
            assert!(matches!(error, ValuationError::BadPortfolio(_)), "{hostile}: {error:?}");
        }
        let long = format!(r#""{}.1""#, "9".repeat(5000));
        assert!(matches!(Valuation::decode(with(&long).as_bytes()), Err(ValuationError::BadPortfolio(_))));
        assert_eq!(
            Valuation::decode(b"nope").unwrap_err(),
            ValuationError::BadJson("expected ident at line 1 column 2".into())
        );
        assert_eq!(
            Valuation::decode(
                br#"{"PORTFOLIO":"1.1","TIMESTAMP":"2026-11-24","NAV":"x","NAV_Change":0,"NAV_Change_%":0}"#
            )
            .unwrap_err()
            .to_string(),
            r#"NAV must be a finite number, found "x""#
        );
        assert_eq!(
            Valuation::decode(br#"{"PORTFOLIO":"1.1","TIMESTAMP":"never","NAV":1,"NAV_Change":0,"NAV_Change_%":0}"#)
                .unwrap_err(),
            ValuationError::BadTimestamp("never".into())
        );
        assert_eq!(
            Valuation::decode(br#"{"PORTFOLIO":"1.1","TIMESTAMP":"2026-11-24","NAV":1,"NAV_Change":0}"#).unwrap_err(),
            ValuationError::MissingField("NAV_Change_%")
        );
    }
}
