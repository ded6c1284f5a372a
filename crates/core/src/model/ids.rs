//! Validated ids: the only way an account, user or session id enters the domain.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The largest integer JavaScript represents exactly (2^53 - 1): ids above it would be corrupted
/// by a browser's JSON.parse.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Longest accepted session id, in bytes.
pub const MAX_SESSION_ID_LEN: usize = 256;

/// An id that failed validation; names the field so a 400 can say what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct IdError {
    /// The field as the API names it (`accountId`, `userId`, `sessionId`).
    pub field: &'static str,
    /// What is wrong with it, without echoing long input back.
    pub reason: String,
}

/// Parses a decimal integer in 0..=2^53-1 written without sign or leading zeros.
pub(crate) fn parse_safe_integer(field: &'static str, raw: &str) -> Result<u64, IdError> {
    let invalid = |reason: &str| IdError {
        field,
        reason: reason.to_string(),
    };
    if raw.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            "must be a non-negative integer written in decimal digits",
        ));
    }
    if raw.len() > 1 && raw.starts_with('0') {
        return Err(invalid("must not have leading zeros"));
    }
    match raw.parse::<u64>() {
        Ok(value) if value <= MAX_SAFE_INTEGER => Ok(value),
        _ => Err(invalid("must be at most 9007199254740991 (2^53-1)")),
    }
}

macro_rules! integer_id {
    ($name:ident, $field:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(try_from = "u64", into = "u64")]
        pub struct $name(u64);

        impl $name {
            /// The field name used in the API and in errors.
            pub const FIELD: &'static str = $field;

            /// Parses the decimal form found in a URL path or query.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                parse_safe_integer($field, raw).map(Self)
            }

            /// The numeric value.
            pub fn get(self) -> u64 {
                self.0
            }
        }

        impl TryFrom<u64> for $name {
            type Error = IdError;
            fn try_from(value: u64) -> Result<Self, IdError> {
                if value <= MAX_SAFE_INTEGER {
                    Ok(Self(value))
                } else {
                    Err(IdError {
                        field: $field,
                        reason: "must be at most 9007199254740991 (2^53-1)".to_string(),
                    })
                }
            }
        }

        impl From<$name> for u64 {
            fn from(id: $name) -> u64 {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

integer_id!(AccountId, "accountId", "An account: a collection of users.");
integer_id!(
    UserId,
    "userId",
    "A user: one person, with any number of sessions."
);

/// A session: one browser tab or app connection, named by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    /// The field name used in the API and in errors.
    pub const FIELD: &'static str = "sessionId";

    /// Accepts 1–256 printable ASCII characters (space through tilde) other than '/'.
    pub fn parse(raw: &str) -> Result<Self, IdError> {
        let invalid = |reason: &str| IdError {
            field: Self::FIELD,
            reason: reason.to_string(),
        };
        if raw.is_empty() {
            return Err(invalid("must not be empty"));
        }
        if raw.len() > MAX_SESSION_ID_LEN {
            return Err(invalid("must be at most 256 characters"));
        }
        if let Some(position) = raw.bytes().position(|b| !(0x20..=0x7e).contains(&b)) {
            return Err(invalid(&format!(
                "must be printable ASCII; byte {position} is not"
            )));
        }
        if raw.contains('/') {
            return Err(invalid("must not contain '/'"));
        }
        if raw == "." || raw == ".." {
            return Err(invalid("must not be '.' or '..' (path segments)"));
        }
        Ok(Self(raw.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SessionId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, IdError> {
        Self::parse(&value)
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> String {
        id.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_ids_accept_exactly_the_javascript_safe_range() {
        let table: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("200", Some(200)),
            ("9007199254740991", Some(MAX_SAFE_INTEGER)),
            ("9007199254740992", None),
            ("18446744073709551616", None),
            ("", None),
            ("-1", None),
            ("+1", None),
            ("1.0", None),
            ("1e3", None),
            (" 1", None),
            ("007", None),
            ("abc", None),
        ];
        for (raw, expected) in table {
            assert_eq!(
                UserId::parse(raw).ok().map(UserId::get),
                *expected,
                "userId {raw:?}"
            );
            assert_eq!(
                AccountId::parse(raw).ok().map(AccountId::get),
                *expected,
                "accountId {raw:?}"
            );
        }
    }

    #[test]
    fn integer_id_errors_name_their_field() {
        assert_eq!(UserId::parse("x").unwrap_err().field, "userId");
        assert_eq!(AccountId::parse("x").unwrap_err().field, "accountId");
        assert!(
            AccountId::parse("9007199254740992")
                .unwrap_err()
                .to_string()
                .starts_with("invalid accountId: ")
        );
    }

    #[test]
    fn session_ids_are_printable_ascii_without_slash() {
        let longest = "a".repeat(256);
        let too_long = "a".repeat(257);
        let table: &[(&str, bool)] = &[
            ("cbbd5ab3-46e9-11e7-8d5e-f45c89b63a13", true),
            ("x", true),
            ("with space~and!punct", true),
            (&longest, true),
            (&too_long, false),
            ("", false),
            ("a/b", false),
            (".", false),
            ("..", false),
            ("...", true),
            (".a", true),
            ("tab\there", false),
            ("new\nline", false),
            ("grüße", false),
            ("\u{7f}", false),
        ];
        for (raw, ok) in table {
            let parsed = SessionId::parse(raw);
            assert_eq!(parsed.is_ok(), *ok, "sessionId {raw:?}: {parsed:?}");
            if let Err(error) = parsed {
                assert_eq!(error.field, "sessionId");
            }
        }
    }

    fn value_with_ids() -> serde_json::Value {
        serde_json::from_str(r#"{"u":200,"a":100}"#).unwrap()
    }

    #[test]
    fn ids_deserialize_through_validation() {
        assert!(serde_json::from_str::<UserId>("9007199254740992").is_err());
        assert_eq!(serde_json::from_str::<UserId>("200").unwrap().get(), 200);
        assert!(serde_json::from_str::<SessionId>("\"a/b\"").is_err());
        // Through a Value too, as ids arrive inside payloads (serde_json's arbitrary_precision
        // must not break numeric ids).
        let value: serde_json::Value = serde_json::from_str("{\"u\":200}").unwrap();
        assert_eq!(
            serde_json::from_value::<UserId>(value["u"].clone())
                .unwrap()
                .get(),
            200
        );
        #[derive(serde::Deserialize)]
        struct Row {
            u: UserId,
            a: AccountId,
        }
        let row: Row = serde_json::from_value(value_with_ids()).unwrap();
        assert_eq!((row.u.get(), row.a.get()), (200, 100));
        let row: Row = serde_json::from_str(r#"{"u":200,"a":100}"#).unwrap();
        assert_eq!((row.u.get(), row.a.get()), (200, 100));
    }
}
