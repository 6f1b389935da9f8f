//! What the sink writes: portfolio file names, CSV rows, rejected-message
//! records.

use std::io::Write;

use chrono::{Datelike, Timelike};
use serde::Serialize;

use crate::bus::Message;
use crate::market::{PortfolioId, ValuationView, is_canonical};

/// The header of every portfolio file (the seed's columns).
pub const HEADER: &[u8] = b"PORTFOLIO,TIMESTAMP,NAV,NAV_Change,NAV_Change_%\n";

/// The file of rejected messages, in the data folder.
pub const REJECTED_FILE: &str = "rejected.jsonl";

/// `INVESTOR_{i}_PORTFOLIO_{p}.csv`. Built from a validated id only, so it
/// can never name a path outside the data folder.
pub fn file_name(id: PortfolioId) -> String {
    format!("INVESTOR_{}_PORTFOLIO_{}.csv", id.investor, id.number)
}

/// Appends `valuation` as a CSV row: TIMESTAMP in the canonical form,
/// numbers in plain decimal (never an exponent), the shortest form that
/// reads back to the same value.
pub fn write_row(out: &mut Vec<u8>, valuation: &ValuationView<'_>) {
    let _ = write!(out, "{},", valuation.portfolio);
    if is_canonical(&valuation.timestamp) {
        out.extend_from_slice(valuation.timestamp.as_bytes());
    } else {
        let at = valuation.at;
        let (date, time) = (at.date(), at.time());
        let _ = write!(
            out,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            date.year(),
            date.month(),
            date.day(),
            time.hour(),
            time.minute(),
            time.second()
        );
    }
    let _ = writeln!(out, ",{},{},{}", valuation.nav + 0.0, valuation.nav_change + 0.0, valuation.nav_change_pct + 0.0);
}

#[derive(Serialize)]
struct Rejected<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    reason: String,
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_hex: Option<String>,
}

/// Appends a JSON line recording `message` (verbatim: as text, or as hex
/// when it is not UTF-8) and why it was rejected.
pub fn write_rejected(out: &mut Vec<u8>, message: &Message, reason: &str) {
    let text = std::str::from_utf8(&message.value).ok();
    let record = Rejected {
        topic: &message.topic,
        partition: message.partition,
        offset: message.offset,
        reason: reason.to_string(),
        key: message.key.as_ref().map(|_| message.key_text().into_owned()),
        value: text,
        value_hex: text.is_none().then(|| message.value.iter().map(|b| format!("{b:02x}")).collect()),
    };
    serde_json::to_writer(&mut *out, &record).expect("writing JSON to memory");
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_plain_decimal_and_names_follow_the_seed() {
        let v = ValuationView::decode(
            br#"{"PORTFOLIO":"12.3","TIMESTAMP":"2026-1-2 3:04:05","NAV":1e21,"NAV_Change":-0.0,"NAV_Change_%":0.0001}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        write_row(&mut out, &v);
        assert_eq!(String::from_utf8(out).unwrap(), "12.3,2026-01-02 03:04:05,1000000000000000000000,0,0.0001\n");
        assert_eq!(file_name(v.portfolio), "INVESTOR_12_PORTFOLIO_3.csv");
        let canonical = ValuationView::decode(
            br#"{"PORTFOLIO":"1.1","TIMESTAMP":"2026-11-24 09:40:20","NAV":590240,"NAV_Change":-1.5,"NAV_Change_%":-0.25}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        write_row(&mut out, &canonical);
        assert_eq!(String::from_utf8(out).unwrap(), "1.1,2026-11-24 09:40:20,590240,-1.5,-0.25\n");
    }

    #[test]
    fn rejected_records_keep_the_message_verbatim() {
        let message = Message {
            topic: "Portfolios".into(),
            partition: 2,
            offset: 41,
            key: Some(b"../x".to_vec().into()),
            value: b"{\"PORTFOLIO\":\"../../etc/x.1\"}".to_vec().into(),
        };
        let mut out = Vec::new();
        write_rejected(&mut out, &message, "bad id");
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["offset"], 41);
        assert_eq!(line["partition"], 2);
        assert_eq!(line["reason"], "bad id");
        assert_eq!(line["key"], "../x");
        assert_eq!(line["value"], "{\"PORTFOLIO\":\"../../etc/x.1\"}");
        let binary = Message { value: vec![0xff, 0x00].into(), ..message };
        let mut out = Vec::new();
        write_rejected(&mut out, &binary, "not JSON");
        let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(line["value_hex"], "ff00");
    }
}
