//! The envelope a page sends upstream (docs/wire-format.md, "Upstream"):
//! `{"v": 1, "sessionId", "seq", "ts", "type", "body"}`.

use serde_json::{Map, Value};

use crate::model::ids::SessionId;
use crate::model::message::MessageId;

/// The largest upstream message: the queue's MaximumMessageSize (SQS refuses more at send).
pub const MAX_ENVELOPE_BYTES: usize = 16 * 1024;
/// The largest `seq`: 2^53 - 1, safe in JavaScript.
pub const MAX_SEQ: u64 = (1 << 53) - 1;
/// How many ids one `read` may name.
pub const MAX_READ_IDS: usize = 100;

/// The types sqs-push handles itself.
pub const READ_TYPE: &str = "read";
/// The leader tab's presence beat.
pub const HEARTBEAT_TYPE: &str = "heartbeat";

/// A parsed envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The session the page says it is (checked against the SenderId).
    pub session_id: SessionId,
    /// Unique per session; never reused.
    pub seq: u64,
    /// When the page made it, epoch milliseconds.
    pub ts: u64,
    /// What it is.
    pub kind: Kind,
}

/// What an envelope asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Mark these history messages read.
    Read(Vec<MessageId>),
    /// The session is here.
    Heartbeat,
    /// For the app: its type and body as sent.
    App {
        /// `^[a-z][a-z0-9_.:-]{0,63}$`, not `read` or `heartbeat`.
        kind: String,
        /// Any JSON value.
        body: Value,
    },
}

/// Why an envelope was refused; the message names the field, never echoes what the page sent
/// (consumer logs carry it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EnvelopeError(pub String);

fn invalid(message: impl Into<String>) -> EnvelopeError {
    EnvelopeError(message.into())
}

/// Parses and checks an envelope.
pub fn parse(body: &str) -> Result<Envelope, EnvelopeError> {
    if body.len() > MAX_ENVELOPE_BYTES {
        return Err(invalid(format!(
            "the message is {} bytes, more than {MAX_ENVELOPE_BYTES}",
            body.len()
        )));
    }
    let value: Value =
        serde_json::from_str(body).map_err(|_| invalid("the message is not JSON"))?;
    let Value::Object(mut fields) = value else {
        return Err(invalid("the message is not a JSON object"));
    };
    const KNOWN: [&str; 6] = ["v", "sessionId", "seq", "ts", "type", "body"];
    // The name is not echoed: the error is logged, and a key is part of the body.
    if fields.keys().any(|key| !KNOWN.contains(&key.as_str())) {
        return Err(invalid(
            "a field other than v, sessionId, seq, ts, type and body",
        ));
    }
    if fields.get("v").and_then(Value::as_u64) != Some(1) {
        return Err(invalid("v must be 1"));
    }
    let session_id = fields
        .get("sessionId")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("sessionId must be a string"))
        .and_then(|raw| SessionId::parse(raw).map_err(|error| invalid(error.to_string())))?;
    let seq = integer(&fields, "seq", 1..=MAX_SEQ)?;
    let ts = integer(&fields, "ts", 0..=MAX_SEQ)?;
    let kind = fields
        .get("type")
        .and_then(Value::as_str)
        .filter(|kind| valid_type(kind))
        .ok_or_else(|| invalid("type must match ^[a-z][a-z0-9_.:-]{0,63}$"))?
        .to_string();
    let body = fields.remove("body").unwrap_or(Value::Null);
    let kind = match kind.as_str() {
        READ_TYPE => Kind::Read(read_ids(&body)?),
        HEARTBEAT_TYPE => Kind::Heartbeat,
        _ => Kind::App { kind, body },
    };
    Ok(Envelope {
        session_id,
        seq,
        ts,
        kind,
    })
}

fn integer(
    fields: &Map<String, Value>,
    name: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, EnvelopeError> {
    fields
        .get(name)
        .and_then(Value::as_u64)
        .filter(|value| range.contains(value))
        .ok_or_else(|| {
            invalid(format!(
                "{name} must be an integer in {}..={}",
                range.start(),
                range.end()
            ))
        })
}

fn valid_type(kind: &str) -> bool {
    let bytes = kind.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_lowercase()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.:-".contains(b))
}

fn read_ids(body: &Value) -> Result<Vec<MessageId>, EnvelopeError> {
    let ids = body
        .get("messageIds")
        .and_then(Value::as_array)
        .filter(|ids| (1..=MAX_READ_IDS).contains(&ids.len()))
        .ok_or_else(|| {
            invalid(format!(
                "a read's body must be {{\"messageIds\": [1 to {MAX_READ_IDS} ids]}}"
            ))
        })?;
    ids.iter()
        .map(|id| {
            id.as_str()
                .ok_or_else(|| invalid("messageIds must be strings"))
                .and_then(|raw| MessageId::parse(raw).map_err(|error| invalid(error.to_string())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(value: Value) -> Result<Envelope, EnvelopeError> {
        parse(&value.to_string())
    }

    #[test]
    fn a_valid_envelope_parses_by_type() {
        let app = envelope(
            json!({"v":1,"sessionId":"s1","seq":3,"ts":5,"type":"chat.line","body":{"t":"hi"}}),
        )
        .unwrap();
        assert_eq!(app.seq, 3);
        assert_eq!(
            app.kind,
            Kind::App {
                kind: "chat.line".into(),
                body: json!({"t":"hi"})
            }
        );
        let read = envelope(json!({"v":1,"sessionId":"s1","seq":1,"ts":5,"type":"read","body":{"messageIds":["m1"]}}))
            .unwrap();
        assert!(matches!(read.kind, Kind::Read(ids) if ids.len() == 1));
        let beat =
            envelope(json!({"v":1,"sessionId":"s1","seq":2,"ts":5,"type":"heartbeat","body":{}}))
                .unwrap();
        assert_eq!(beat.kind, Kind::Heartbeat);
    }

    #[test]
    fn each_bad_field_is_named() {
        let good = json!({"v":1,"sessionId":"s1","seq":1,"ts":5,"type":"x","body":null});
        for (field, value, said) in [
            ("v", json!(2), "v must be 1"),
            ("sessionId", json!(7), "sessionId"),
            ("seq", json!(0), "seq must be"),
            ("seq", json!(1u64 << 53), "seq must be"),
            ("ts", json!("now"), "ts must be"),
            ("type", json!("Chat"), "type must match"),
            ("extra", json!(1), "a field other than"),
        ] {
            let mut bad = good.clone();
            bad[field] = value;
            let error = envelope(bad).unwrap_err();
            assert!(error.0.contains(said), "{field}: {error}");
        }
        let read =
            json!({"v":1,"sessionId":"s1","seq":1,"ts":5,"type":"read","body":{"messageIds":[]}});
        assert!(envelope(read).unwrap_err().0.contains("messageIds"));
        assert!(parse("not json").unwrap_err().0.contains("not JSON"));
        assert!(
            parse(&"x".repeat(MAX_ENVELOPE_BYTES + 1))
                .unwrap_err()
                .0
                .contains("bytes")
        );
    }
}
