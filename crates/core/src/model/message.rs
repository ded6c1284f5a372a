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

/// A message ready to be encrypted: its fields, including `messageId`.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    id: MessageId,
    fields: Fields,
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
        fields.insert(MESSAGE_ID_FIELD.to_string(), Value::String(id.0.clone()));
        Ok(Self { id, fields })
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
        match self.fields.get(SQS_ONLY_FIELD) {
            Some(Value::Bool(flag)) => *flag,
            Some(Value::Number(number)) => number.as_f64() != Some(0.0),
            Some(Value::String(text)) => !matches!(text.as_str(), "" | "0" | "false"),
            _ => false,
        }
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
