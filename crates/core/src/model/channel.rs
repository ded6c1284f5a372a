//! Channel names: the only way a channel enters the domain, from a path, a query, a body or a
//! Kinesis record alike.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::ids::IdError;

/// Longest accepted channel name, in characters (all ASCII).
pub const MAX_CHANNEL_LEN: usize = 128;

/// The punctuation a channel name may hold besides ASCII letters and digits: enough for
/// `prices:AAPL`, `doc.42`, `room-7`, `user@example.com`, `a=b+c`, and nothing a URL path, a
/// DynamoDB key (`#` separates a membership's user and session) or a log line would misread.
const CHANNEL_PUNCTUATION: &str = "_-.:@=+";

/// A named channel sessions subscribe to (`prices:AAPL`, `doc:42`, `room:7`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelName(String);

impl ChannelName {
    /// The field name used in the API, in messages and in errors.
    pub const FIELD: &'static str = "channel";

    /// Accepts 1–128 characters of `A–Z a–z 0–9 _ - . : @ = +`.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let invalid = |reason: String| IdError {
            field: Self::FIELD,
            reason,
        };
        if raw.is_empty() {
            return Err(invalid("must not be empty".into()));
        }
        if raw.len() > MAX_CHANNEL_LEN {
            return Err(invalid(format!(
                "must be at most {MAX_CHANNEL_LEN} characters"
            )));
        }
        if let Some(position) = raw
            .chars()
            .position(|c| !(c.is_ascii_alphanumeric() || CHANNEL_PUNCTUATION.contains(c)))
        {
            return Err(invalid(format!(
                "may hold only A-Z a-z 0-9 and {CHANNEL_PUNCTUATION}; character {position} is not one of them"
            )));
        }
        Ok(Self(raw.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ChannelName {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        Self::parse(&value)
    }
}

impl From<ChannelName> for String {
    fn from(name: ChannelName) -> String {
        name.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_the_allowed_characters_up_to_128_are_accepted() {
        for name in [
            "prices:AAPL",
            "doc:42",
            "room-7",
            "a",
            "user@example.com",
            "a=b+c_d.e",
            &"x".repeat(128),
        ] {
            assert_eq!(ChannelName::parse(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn anything_else_is_refused_naming_the_channel_field() {
        for name in [
            "",
            "a/b",
            "a b",
            "a#b",
            "a?b",
            "naïve",
            "tab\t",
            "%2F",
            &"x".repeat(129),
        ] {
            let error = ChannelName::parse(name).unwrap_err();
            assert_eq!(error.field, "channel", "{name:?}");
            assert!(error.to_string().contains("channel"), "{error}");
        }
    }
}
