//! Messages as the browser sees them once decrypted: a JSON object with a `messageId`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::crypto::fill_random;
use crate::model::ids::IdError;

/// The fields of a message, in the order they were given.
pub type Fields = Map<String, Value>;

/// Field that carries the message id.
pub const MESSAGE_ID_FIELD: &str = "messageId";
/// Field that marks a message as SQS-only (no history), as the original stack did.
pub const SQS_ONLY_FIELD: &str = "_sqs_only";
/// Field that marks a message without target fields as meant for everyone (Kinesis); stripped
/// before delivery.
pub const BROADCAST_FIELD: &str = "_broadcast";
/// Field that asks for user history on a channel message (channel messages write none unless it
/// is true; other targets always do unless `_sqs_only`).
pub const HISTORY_FIELD: &str = "_history";
/// DynamoDB's limit on one item (a history row), in bytes.
pub const MAX_HISTORY_ITEM_BYTES: usize = 400 * 1024;
/// What a history row adds to the message text: attribute names, keys, times, flags.
const HISTORY_ROW_OVERHEAD: usize = 256;
/// What a sealed SQS message adds beyond the base64 ciphertext: the decimal counter and `|`, the
/// MAC attribute (name, type, 44 base64 characters).
const SEALED_OVERHEAD: usize = 40 + 96;
/// Longest accepted caller-chosen message id, in bytes (a DynamoDB sort key allows 1024).
pub const MAX_MESSAGE_ID_LEN: usize = 256;

/// A message id: the caller's, or a random one. History rows and client dedupe key on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(String);

impl TryFrom<String> for MessageId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        Self::parse(&value)
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> String {
        id.0
    }
}

impl MessageId {
    /// Accepts 1–256 printable ASCII characters.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let printable = raw.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if raw.is_empty() || raw.len() > MAX_MESSAGE_ID_LEN || !printable {
            return Err(IdError {
                field: MESSAGE_ID_FIELD,
                reason: "must be 1-256 printable ASCII characters".to_string(),
            });
        }
        Ok(Self(raw.to_string()))
    }

    /// 160 random bits in base64url: as unique as the original stack's SHA-1 ids, URL-safe.
    pub fn random() -> Self {
        let mut bytes = [0u8; 20];
        fill_random(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// An id derived from a stream record's event id: the same record gets the same id on
    /// every retry, so history rows and client dedupe stay exact.
    pub fn derived_from(event_id: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(event_id.as_bytes());
        Self(URL_SAFE_NO_PAD.encode(&digest[..20]))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads a flag field as the original stack's producers write it: `true`, `1`, `"true"`, `"1"`
/// are true; `false`, `0`, `"false"`, `"0"` are false; anything else is refused, naming the field.
pub fn parse_flag(field: &'static str, value: &Value) -> Result<bool, IdError> {
    let text = match value {
        Value::Bool(flag) => return Ok(*flag),
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.clone(),
        _ => String::new(),
    };
    match text.as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(IdError {
            field,
            reason: "must be true, 1, \"true\" or \"1\" (or false, 0, \"false\", \"0\")"
                .to_string(),
        }),
    }
}

/// The limits a message must fit before anything is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeLimits {
    /// The queues' MaximumMessageSize: the sealed body and its MAC attribute must fit.
    pub max_sqs_bytes: usize,
    /// DynamoDB's item limit: the history row must fit unless the message is SQS-only.
    pub max_history_item_bytes: usize,
}

impl Default for SizeLimits {
    fn default() -> Self {
        Self {
            max_sqs_bytes: 1_048_576,
            max_history_item_bytes: MAX_HISTORY_ITEM_BYTES,
        }
    }
}

/// A message too large for a limit it has to fit; names the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message too large: {what} would be {size} bytes; {limit_name} is {limit} bytes")]
pub struct SizeError {
    /// What was measured.
    pub what: &'static str,
    /// Its size.
    pub size: usize,
    /// The limit's name.
    pub limit_name: &'static str,
    /// The limit.
    pub limit: usize,
}

/// A message ready to be encrypted: its fields, including `messageId`.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    id: MessageId,
    fields: Fields,
    sqs_only: bool,
    /// `_history: true`: wanted even where history is not written by default (channels).
    history_requested: bool,
    /// Whether users' history gets the message: not for `_sqs_only`, and for a channel only
    /// when requested ([`Message::write_history_only_if_requested`]).
    history: bool,
}

impl Message {
    /// Builds a message from caller fields: keeps a valid caller `messageId`, otherwise uses
    /// `fallback_id` (random for API calls, derived from the record for streams).
    pub fn new(
        mut fields: Fields,
        fallback_id: impl FnOnce() -> MessageId,
    ) -> Result<Self, IdError> {
        let id = match fields.get(MESSAGE_ID_FIELD) {
            Some(Value::String(raw)) => MessageId::parse(raw)?,
            Some(Value::Number(number)) => MessageId::parse(&number.to_string())?,
            Some(_) => {
                return Err(IdError {
                    field: MESSAGE_ID_FIELD,
                    reason: "must be a string".to_string(),
                });
            }
            None => fallback_id(),
        };
        let sqs_only = match fields.get(SQS_ONLY_FIELD) {
            Some(value) => parse_flag(SQS_ONLY_FIELD, value)?,
            None => false,
        };
        let history_requested = match fields.get(HISTORY_FIELD) {
            Some(value) => parse_flag(HISTORY_FIELD, value)?,
            None => false,
        };
        if sqs_only && history_requested {
            return Err(IdError {
                field: HISTORY_FIELD,
                reason: format!("is true but {SQS_ONLY_FIELD} is too; send one or the other"),
            });
        }
        fields.insert(MESSAGE_ID_FIELD.to_string(), Value::String(id.0.clone()));
        Ok(Self {
            id,
            fields,
            sqs_only,
            history_requested,
            history: !sqs_only,
        })
    }

    /// Sets a field the target decides (`userId`, `accountId`), overriding the caller's.
    pub fn set(&mut self, name: &str, value: Value) {
        self.fields.insert(name.to_string(), value);
    }

    /// The message id.
    pub fn id(&self) -> &MessageId {
        &self.id
    }

    /// True for messages meant only for live sessions (read receipts): no history row.
    pub fn is_sqs_only(&self) -> bool {
        self.sqs_only
    }

    /// Whether users' history gets the message.
    pub fn writes_history(&self) -> bool {
        self.history
    }

    /// For targets whose history is opt-in (a channel): history only with `_history: true`.
    pub fn write_history_only_if_requested(&mut self) {
        self.history = self.history && self.history_requested;
    }

    /// Removes a field (the `_broadcast` marker) before delivery.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.fields.remove(name)
    }

    /// Checks the message against the limits where they bind: the sealed SQS body (base64 of
    /// the JSON, counter, MAC attribute) against the queues' MaximumMessageSize, and — unless
    /// SQS-only — the history row against DynamoDB's item limit.
    pub fn check_sizes(&self, limits: &SizeLimits) -> Result<(), SizeError> {
        let json = self.to_json().len();
        let sealed = json.div_ceil(3) * 4 + SEALED_OVERHEAD;
        if sealed > limits.max_sqs_bytes {
            return Err(SizeError {
                what: "the encrypted SQS message",
                size: sealed,
                limit_name: "the queues' MaximumMessageSize",
                limit: limits.max_sqs_bytes,
            });
        }
        let row = json + self.id.as_str().len() + HISTORY_ROW_OVERHEAD;
        if self.history && row > limits.max_history_item_bytes {
            return Err(SizeError {
                what: "the history row",
                size: row,
                limit_name: "DynamoDB's item limit (send with _sqs_only to skip history)",
                limit: limits.max_history_item_bytes,
            });
        }
        Ok(())
    }

    /// The fields, `messageId` included.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The JSON the browser decrypts.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.fields).expect("a JSON map always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_callers_message_id_is_kept() {
        let message = Message::new(fields(json!({"messageId": "abc", "message": "hi"})), || {
            panic!("fallback must not be used")
        })
        .unwrap();
        assert_eq!(message.id().as_str(), "abc");
    }

    #[test]
    fn a_missing_message_id_comes_from_the_fallback_and_is_written_into_the_fields() {
        let message = Message::new(fields(json!({"message": "hi"})), || {
            MessageId::parse("f").unwrap()
        })
        .unwrap();
        assert_eq!(message.fields()["messageId"], "f");
        assert_eq!(
            serde_json::from_slice::<Value>(&message.to_json()).unwrap(),
            json!({"message": "hi", "messageId": "f"})
        );
    }

    #[test]
    fn malformed_message_ids_are_refused() {
        for bad in [
            json!(""),
            json!({"a": 1}),
            json!("x".repeat(257)),
            json!("tab\t"),
        ] {
            let result = Message::new(fields(json!({ "messageId": bad })), MessageId::random);
            assert_eq!(result.unwrap_err().field, "messageId");
        }
    }

    #[test]
    fn sqs_only_accepts_the_usual_spellings_and_refuses_anything_else() {
        let build =
            |value: Value| Message::new(fields(json!({ "_sqs_only": value })), MessageId::random);
        for yes in [json!(true), json!(1), json!("true"), json!("1")] {
            assert!(build(yes).unwrap().is_sqs_only());
        }
        for no in [json!(false), json!(0), json!("false"), json!("0")] {
            assert!(!build(no).unwrap().is_sqs_only());
        }
        assert!(
            !Message::new(Fields::new(), MessageId::random)
                .unwrap()
                .is_sqs_only()
        );
        for bad in [
            json!("no"),
            json!(""),
            json!(2),
            json!(null),
            json!([true]),
            json!("yes"),
        ] {
            assert_eq!(build(bad).unwrap_err().field, "_sqs_only");
        }
    }

    #[test]
    fn sizes_are_checked_against_the_sealed_body_and_the_history_row() {
        let limits = SizeLimits::default();
        let with = |text: usize, extra: Value| {
            let mut f = fields(json!({ "message": "x".repeat(text) }));
            f.extend(fields(extra));
            Message::new(f, MessageId::random).unwrap()
        };
        assert_eq!(with(300_000, json!({})).check_sizes(&limits), Ok(()));
        let error = with(500_000, json!({})).check_sizes(&limits).unwrap_err();
        assert!(error.to_string().contains("DynamoDB"), "{error}");
        assert_eq!(
            with(500_000, json!({"_sqs_only": 1})).check_sizes(&limits),
            Ok(())
        );
        // 780 KB of JSON seals to more than 1 MiB of base64.
        let error = with(790_000, json!({"_sqs_only": 1}))
            .check_sizes(&limits)
            .unwrap_err();
        assert!(error.to_string().contains("MaximumMessageSize"), "{error}");
        assert_eq!(error.limit, 1_048_576);
        // A channel message writes no history unless asked, so DynamoDB's limit binds only then.
        let mut channel = with(500_000, json!({}));
        channel.write_history_only_if_requested();
        assert!(!channel.writes_history());
        assert_eq!(channel.check_sizes(&limits), Ok(()));
        let mut asked = with(500_000, json!({"_history": true}));
        asked.write_history_only_if_requested();
        assert!(asked.writes_history());
        assert!(asked.check_sizes(&limits).is_err());
    }

    #[test]
    fn history_asked_for_and_refused_at_once_is_refused() {
        let error = Message::new(
            fields(json!({"_history": true, "_sqs_only": true})),
            MessageId::random,
        )
        .unwrap_err();
        assert_eq!(error.field, "_history");
        let error =
            Message::new(fields(json!({"_history": "maybe"})), MessageId::random).unwrap_err();
        assert_eq!(error.field, "_history");
    }

    #[test]
    fn big_integers_keep_every_digit() {
        let big = r#"{"n":123456789012345678901234567890,"m":9007199254740993}"#;
        let f: Fields = serde_json::from_str(big).unwrap();
        let message = Message::new(f, || MessageId::parse("i").unwrap()).unwrap();
        let text = String::from_utf8(message.to_json()).unwrap();
        assert!(text.contains("123456789012345678901234567890"), "{text}");
        assert!(text.contains("9007199254740993"), "{text}");
    }

    #[test]
    fn derived_ids_are_stable_per_event_and_differ_between_events() {
        let first = MessageId::derived_from("shardId-000000000000:4959");
        assert_eq!(first, MessageId::derived_from("shardId-000000000000:4959"));
        assert_ne!(first, MessageId::derived_from("shardId-000000000000:4960"));
        assert_eq!(first.as_str().len(), 27);
    }

    #[test]
    fn random_ids_are_27_url_safe_characters_and_differ() {
        let (a, b) = (MessageId::random(), MessageId::random());
        assert_eq!(a.as_str().len(), 27);
        assert_ne!(a, b);
    }
}
