//! Durations written as text: `20s`, `500ms`, `1m`, `1h 30m`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Parses a duration such as `20s`, `500ms` or `1m`; zero is refused.
pub fn parse(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration {text:?} ({e}); use e.g. 20s, 500ms, 1m"))?;
    if duration.is_zero() {
        return Err(format!("invalid duration {text:?}: must be more than zero"));
    }
    Ok(duration)
}

/// Prints a duration the way [`parse`] reads it.
pub fn format(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// `#[serde(with = "crate::config::duration")]`: reads with [`parse`].
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// `#[serde(with = "crate::config::duration")]`: writes with [`format`].
pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*duration))
}

/// `#[serde(default, with = "crate::config::duration::optional")]`: an
/// optional duration, absent when unset.
pub mod optional {
    use super::*;

    /// Reads with [`parse`](super::parse).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        super::deserialize(deserializer).map(Some)
    }

    /// Writes with [`format`](super::format); only called when set.
    pub fn serialize<S: Serializer>(duration: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse(" 1h 30m ").unwrap(), Duration::from_secs(5400));
        assert_eq!(format(Duration::from_millis(1500)), "1s 500ms");
    }

    #[test]
    fn refuses_nonsense_and_zero() {
        assert!(parse("20").unwrap_err().contains("use e.g. 20s"));
        assert!(parse("soon").is_err());
        assert!(parse("0s").unwrap_err().contains("more than zero"));
    }
}
