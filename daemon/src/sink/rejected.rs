//! The records of `rejected.jsonl`: a message the sink refused, verbatim,
//! with the reason.

use serde::Serialize;

use crate::bus::Message;

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
