//! Timestamps: UTC, written `YYYY-MM-DD HH:MM:SS` (zero-padded, so that they
//! sort as text), with microseconds on ticks.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// The forms [`parse_timestamp`] accepts, for error messages.
pub const ACCEPTED_FORMS: &str = "YYYY-MM-DD, YYYY-MM-DD HH:MM, YYYY-MM-DD HH:MM:SS[.ffffff], \
     RFC 3339 (2026-11-24T09:40:20Z), or unpadded like 2022-3-20 15:38";

/// Why a text is not a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time {text:?}: use {ACCEPTED_FORMS}")]
pub struct TimestampError {
    text: String,
}

/// Parses a UTC time in any of the [`ACCEPTED_FORMS`]. A date alone means
/// its midnight. RFC 3339 offsets are converted to UTC.
pub fn parse_timestamp(text: &str) -> Result<NaiveDateTime, TimestampError> {
    if let Some(at) = parse_canonical(text.as_bytes()) {
        return Ok(at);
    }
    let trimmed = text.trim();
    let error = || TimestampError { text: text.to_string() };
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(trimmed) {
        return Ok(with_offset.naive_utc());
    }
    let (date, time) = match trimmed.split_once([' ', 'T']) {
        Some((date, time)) => (date, Some(time.trim())),
        None => (trimmed, None),
    };
    // chrono's %m, %d, %H, %M and %S accept unpadded numbers too.
    let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| error())?;
    let time = match time {
        None => NaiveTime::MIN,
        Some(time) => ["%H:%M:%S%.f", "%H:%M"]
            .iter()
            .find_map(|format| NaiveTime::parse_from_str(time, format).ok())
            .ok_or_else(error)?,
    };
    Ok(date.and_time(time))
}

/// The canonical `YYYY-MM-DD HH:MM:SS` form, read without chrono's format
/// machinery (it is on the sink's hot path); anything else is `None`.
fn parse_canonical(text: &[u8]) -> Option<NaiveDateTime> {
    DateTime::from_timestamp(epoch_seconds(text)?, 0).map(|t| t.naive_utc())
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) to seconds since the epoch, every field
/// checked (month lengths and leap years included); `None` for anything
/// else. The query's and the sink's hot paths use it instead of a general
/// date parser.
pub fn epoch_seconds(text: &[u8]) -> Option<i64> {
    if text.len() != 19
        || text[4] != b'-'
        || text[7] != b'-'
        || text[10] != b' '
        || text[13] != b':'
        || text[16] != b':'
    {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        text[range].iter().try_fold(0i64, |n, &b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
    };
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    // Days since 1970-01-01: H. Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some((era * 146_097 + day_of_era - 719_468) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Seconds since the epoch to `YYYY-MM-DD HH:MM:SS` (UTC), the inverse of
/// [`epoch_seconds`].
pub fn format_epoch(seconds: i64) -> String {
    // H. Hinnant's civil_from_days.
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    }
    // The common case without the formatting machinery: a query prints
    // three of these per portfolio.
    let mut text = *b"0000-00-00 00:00:00";
    let mut put = |at: usize, value: i64, digits: usize| {
        let mut value = value;
        for i in (at..at + digits).rev() {
            text[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, rest / 3600, 2);
    put(14, rest % 3600 / 60, 2);
    put(17, rest % 60, 2);
    String::from_utf8(text.to_vec()).expect("ASCII digits")
}

/// Whether `text` is already in the canonical `YYYY-MM-DD HH:MM:SS` form.
pub fn is_canonical(text: &str) -> bool {
    parse_canonical(text.as_bytes()).is_some()
}

/// `YYYY-MM-DD HH:MM:SS`, the form of valuation timestamps.
pub fn format_seconds(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `YYYY-MM-DD HH:MM:SS.ffffff`, the form of tick timestamps.
pub fn format_micros(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// The current UTC time.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_opt(h, mi, s).unwrap()
    }

    #[test]
    fn accepts_every_documented_form() {
        assert_eq!(parse_timestamp("2026-11-24").unwrap(), at(2026, 11, 24, 0, 0, 0));
        assert_eq!(parse_timestamp("2026-11-24 09:40").unwrap(), at(2026, 11, 24, 9, 40, 0));
        assert_eq!(parse_timestamp("2026-11-24 09:40:20").unwrap(), at(2026, 11, 24, 9, 40, 20));
        assert_eq!(parse_timestamp("2022-3-20 15:38").unwrap(), at(2022, 3, 20, 15, 38, 0));
        assert_eq!(parse_timestamp("2026-11-24T10:40:20+01:00").unwrap(), at(2026, 11, 24, 9, 40, 20));
        assert_eq!(parse_timestamp("2026-11-24T09:40:20Z").unwrap(), at(2026, 11, 24, 9, 40, 20));
        let micros = parse_timestamp("2026-11-24 09:40:20.123456").unwrap();
        assert_eq!(format_micros(micros), "2026-11-24 09:40:20.123456");
        assert_eq!(format_seconds(micros), "2026-11-24 09:40:20");
    }

    #[test]
    fn the_canonical_fast_path_agrees_with_chrono() {
        for text in ["2026-11-24 09:40:20", "2000-02-29 23:59:59", "1999-01-01 00:00:00"] {
            assert!(is_canonical(text));
            assert_eq!(format_seconds(parse_timestamp(text).unwrap()), text);
        }
        for text in [
            "2026-02-30 09:40:20",
            "2026-11-24 24:00:00",
            "2026-11-24T09:40:20",
            "2026-11-24 9:40:20",
            "2026-1x-24 09:40:20",
        ] {
            assert!(!is_canonical(text), "{text}");
        }
        assert!(parse_timestamp("2026-02-30 09:40:20").is_err());
    }

    #[test]
    fn epoch_seconds_agree_with_chrono_both_ways() {
        for text in [
            "1970-01-01 00:00:00",
            "2026-11-24 09:40:20",
            "2000-02-29 12:00:00",
            "2100-03-01 23:59:59",
            "1969-12-31 23:59:59",
            "1600-02-29 06:07:08",
        ] {
            let want = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap().and_utc().timestamp();
            assert_eq!(epoch_seconds(text.as_bytes()), Some(want), "{text}");
            assert_eq!(format_epoch(want), text);
        }
        for text in [
            "2026-02-29 00:00:00",
            "2100-02-29 00:00:00",
            "2026-13-01 00:00:00",
            "2026-11-31 00:00:00",
            "2026-11-24 24:00:00",
            "2026-11-24 9:40:20 ",
        ] {
            assert_eq!(epoch_seconds(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn rejects_nonsense_and_lists_the_forms() {
        for bad in ["", "yesterday", "2026-13-01", "2026-11-24 25:00", "24/11/2026", "2026-11-24 09"] {
            let error = parse_timestamp(bad).unwrap_err();
            assert!(error.to_string().contains("YYYY-MM-DD HH:MM"), "{bad}: {error}");
        }
    }
}
