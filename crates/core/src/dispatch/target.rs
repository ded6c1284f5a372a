//! Who a message is for, read from a message's fields or a path, and the fields that tell the
//! browser.
//!
//! One resolver serves the API and the Kinesis path: `accountId`, `userId` and `sessionId` pick
//! the target with the original stack's account-scoped semantics, `channel` picks a channel's
//! subscribers and combines with none of them, every id is validated like a path id, and a field
//! name that is almost a target field (`userID`, `session_id`) is refused rather than ignored —
//! targeting never fails open.

use serde_json::Value;

use crate::model::channel::ChannelName;
use crate::model::ids::{AccountId, IdError, SessionId, UserId};
use crate::model::message::{Fields, Message};

/// Who a message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One session of one user.
    Session(UserId, SessionId),
    /// One session of one user, only if it belongs to the account.
    SessionInAccount(AccountId, UserId, SessionId),
    /// Every session of a user.
    User(UserId),
    /// Every session of a user that belongs to the account.
    UserInAccount(AccountId, UserId),
    /// Every session of an account with this session id (normally one; session ids are unique
    /// per user only).
    AccountSession(AccountId, SessionId),
    /// Every session of every user of an account.
    Account(AccountId),
    /// Every live session subscribed to a channel.
    Channel(ChannelName),
    /// Every session.
    Everyone,
}

/// The fields that pick a target.
pub const TARGET_FIELDS: [&str; 4] = [
    AccountId::FIELD,
    UserId::FIELD,
    SessionId::FIELD,
    ChannelName::FIELD,
];

/// Why a message's fields do not name a target; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TargetError {
    /// The field at fault, as the caller wrote it.
    pub field: String,
    /// What is wrong, naming the field, never echoing its value.
    pub message: String,
}

impl TargetError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl From<IdError> for TargetError {
    fn from(error: IdError) -> Self {
        Self::new(error.field, error.to_string())
    }
}

/// The target fields of a message (or a path), validated, not yet combined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetFields {
    /// `accountId`.
    pub account_id: Option<AccountId>,
    /// `userId`.
    pub user_id: Option<UserId>,
    /// `sessionId`.
    pub session_id: Option<SessionId>,
    /// `channel`.
    pub channel: Option<ChannelName>,
}

/// Lower case without `_` and `-`: how a near-miss field name is recognised.
fn folded(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The target field `name` is probably a misspelling of, if any.
pub fn near_miss(name: &str) -> Option<&'static str> {
    let folded = folded(name);
    TARGET_FIELDS
        .into_iter()
        .find(|field| *field != name && folded == self::folded(field))
}

/// Field names that look like a target but are not read as one: plurals, bare nouns.
const TARGET_LOOK_ALIKES: [&str; 11] = [
    "userids",
    "accountids",
    "sessionids",
    "users",
    "accounts",
    "sessions",
    "user",
    "account",
    "session",
    "channels",
    "channelnames",
];

/// Fields that name recipients when their value is an object or a list.
const RECIPIENT_CONTAINERS: [&str; 3] = ["target", "to", "recipients"];

/// The first field of a message bound for everyone (it names no target) that looks as if it
/// meant to target someone — a plural (`userIds`), a bracketed key (`userId[]`, `userId[0]`),
/// a bare `user`/`account`/`session`, an object- or list-valued `target`/`to`/`recipients` —
/// refused so such a message is never widened to everyone. A message that says
/// `_broadcast: true` means everyone and is not checked; on a targeted route these stay
/// ordinary message fields.
pub fn widening_field(fields: &Fields) -> Result<(), TargetError> {
    for (name, value) in fields {
        let base = name.split('[').next().unwrap_or(name);
        let bracketed = base.len() < name.len();
        let folded = folded(base);
        let looks_targeted = TARGET_LOOK_ALIKES.contains(&folded.as_str())
            || (bracketed
                && TARGET_FIELDS
                    .iter()
                    .any(|field| folded == self::folded(field)));
        let names_recipients = RECIPIENT_CONTAINERS.contains(&folded.as_str())
            && matches!(value, Value::Object(_) | Value::Array(_));
        if looks_targeted || names_recipients {
            return Err(TargetError::new(
                name,
                format!(
                    "field {name:?} looks like a target but is not one, and this message names \
                     no target, so it would go to everyone; target with accountId, userId and \
                     sessionId, or with channel (one value each), or say \"_broadcast\": true \
                     to mean everyone"
                ),
            ));
        }
    }
    Ok(())
}

/// The text of an id field: a JSON number as written or a string. Anything else is refused.
fn id_text<'a>(field: &str, value: &'a Value) -> Result<std::borrow::Cow<'a, str>, TargetError> {
    match value {
        Value::Number(number) => Ok(std::borrow::Cow::Owned(number.to_string())),
        Value::String(text) => Ok(std::borrow::Cow::Borrowed(text)),
        Value::Null => Err(TargetError::new(
            field,
            format!("invalid {field}: is null; leave the field out to not target by it"),
        )),
        _ => Err(TargetError::new(
            field,
            format!("invalid {field}: has the wrong type (a number or a string of digits)"),
        )),
    }
}

impl TargetFields {
    /// Reads and validates `accountId`, `userId` and `sessionId` from message fields, refusing
    /// near-miss names.
    pub fn from_fields(fields: &Fields) -> Result<Self, TargetError> {
        for name in fields.keys() {
            if let Some(meant) = near_miss(name) {
                return Err(TargetError::new(
                    name,
                    format!(
                        "field {name:?} looks like a misspelt {meant:?}; target fields are \
                         accountId, userId, sessionId and channel, exactly so"
                    ),
                ));
            }
        }
        let mut target = Self::default();
        if let Some(value) = fields.get(AccountId::FIELD) {
            target.account_id = Some(AccountId::parse(&id_text(AccountId::FIELD, value)?)?);
        }
        if let Some(value) = fields.get(UserId::FIELD) {
            target.user_id = Some(UserId::parse(&id_text(UserId::FIELD, value)?)?);
        }
        if let Some(value) = fields.get(SessionId::FIELD) {
            target.session_id = Some(SessionId::parse(&id_text(SessionId::FIELD, value)?)?);
        }
        if let Some(value) = fields.get(ChannelName::FIELD) {
            let Value::String(name) = value else {
                return Err(TargetError::new(
                    ChannelName::FIELD,
                    "invalid channel: must be a string (one channel name)",
                ));
            };
            target.channel = Some(ChannelName::parse(name)?);
        }
        Ok(target)
    }

    /// True when no target field is present.
    pub fn is_empty(&self) -> bool {
        self.account_id.is_none()
            && self.user_id.is_none()
            && self.session_id.is_none()
            && self.channel.is_none()
    }

    /// Combines a path's target with the fields of the message: a field may narrow the path's
    /// target (an `accountId` on a user route) or repeat it, never contradict it.
    pub fn merge(self, path: TargetFields) -> Result<Self, TargetError> {
        fn one<T: PartialEq>(
            field: &str,
            path: Option<T>,
            fields: Option<T>,
        ) -> Result<Option<T>, TargetError> {
            match (path, fields) {
                (Some(a), Some(b)) if a != b => Err(TargetError::new(
                    field,
                    format!("{field} in the message contradicts the {field} of the path"),
                )),
                (Some(a), _) => Ok(Some(a)),
                (None, b) => Ok(b),
            }
        }
        Ok(Self {
            account_id: one(AccountId::FIELD, path.account_id, self.account_id)?,
            user_id: one(UserId::FIELD, path.user_id, self.user_id)?,
            session_id: one(SessionId::FIELD, path.session_id, self.session_id)?,
            channel: one(ChannelName::FIELD, path.channel, self.channel)?,
        })
    }

    /// The target these fields name; `None` when there are none. A `sessionId` alone is refused:
    /// session ids are unique per user only, so it could reach anyone's session.
    pub fn target(self) -> Result<Option<Target>, TargetError> {
        if let Some(channel) = self.channel {
            // A channel names its subscribers; with an account, user or session too it would be
            // unclear whether the message is for the intersection, the union or either.
            if let Some(other) = [
                self.account_id.map(|_| AccountId::FIELD),
                self.user_id.map(|_| UserId::FIELD),
                self.session_id.map(|_| SessionId::FIELD),
            ]
            .into_iter()
            .flatten()
            .next()
            {
                return Err(TargetError::new(
                    ChannelName::FIELD,
                    format!(
                        "a channel message must not also name {other}: it would be ambiguous \
                         whom it is for; send it to the channel or to the {other}, not both"
                    ),
                ));
            }
            return Ok(Some(Target::Channel(channel)));
        }
        Ok(Some(
            match (self.account_id, self.user_id, self.session_id) {
                (Some(a), Some(u), Some(s)) => Target::SessionInAccount(a, u, s),
                (None, Some(u), Some(s)) => Target::Session(u, s),
                (Some(a), Some(u), None) => Target::UserInAccount(a, u),
                (None, Some(u), None) => Target::User(u),
                (Some(a), None, Some(s)) => Target::AccountSession(a, s),
                (Some(a), None, None) => Target::Account(a),
                (None, None, Some(_)) => {
                    return Err(TargetError::new(
                        SessionId::FIELD,
                        "sessionId alone is ambiguous: session ids are unique per user only; add \
                     userId or accountId",
                    ));
                }
                (None, None, None) => return Ok(None),
            },
        ))
    }
}

impl From<&Target> for TargetFields {
    fn from(target: &Target) -> Self {
        let mut channel = None;
        let (account_id, user_id, session_id) = match target.clone() {
            Target::Session(u, s) => (None, Some(u), Some(s)),
            Target::SessionInAccount(a, u, s) => (Some(a), Some(u), Some(s)),
            Target::User(u) => (None, Some(u), None),
            Target::UserInAccount(a, u) => (Some(a), Some(u), None),
            Target::AccountSession(a, s) => (Some(a), None, Some(s)),
            Target::Account(a) => (Some(a), None, None),
            Target::Channel(c) => {
                channel = Some(c);
                (None, None, None)
            }
            Target::Everyone => (None, None, None),
        };
        Self {
            account_id,
            user_id,
            session_id,
            channel,
        }
    }
}

impl Target {
    /// The target a message's fields name (`None`: no target field), as the API and the Kinesis
    /// path both read it.
    pub fn from_fields(fields: &Fields) -> Result<Option<Target>, TargetError> {
        TargetFields::from_fields(fields)?.target()
    }

    /// Writes the fields that tell the browser who the message was for, as the original
    /// stack did: the ids the target names, or the channel. A channel message writes history
    /// only when it asks (`_history: true`).
    pub fn stamp(&self, message: &mut Message) {
        let fields = TargetFields::from(self);
        if let Some(channel) = fields.channel {
            message.set(ChannelName::FIELD, Value::from(channel.as_str()));
            message.write_history_only_if_requested();
        }
        if let Some(account_id) = fields.account_id {
            message.set(AccountId::FIELD, Value::from(account_id.get()));
        }
        if let Some(user_id) = fields.user_id {
            message.set(UserId::FIELD, Value::from(user_id.get()));
        }
        if let Some(session_id) = fields.session_id {
            message.set(SessionId::FIELD, Value::from(session_id.as_str()));
        }
    }

    /// The user a target names, if it names one: their history gets the message even when they
    /// have no live session.
    pub(crate) fn named_user(&self) -> Option<UserId> {
        TargetFields::from(self).user_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        value.as_object().unwrap().clone()
    }

    fn target(value: Value) -> Result<Option<Target>, TargetError> {
        Target::from_fields(&fields(value))
    }

    fn a(n: u64) -> AccountId {
        AccountId::try_from(n).unwrap()
    }
    fn u(n: u64) -> UserId {
        UserId::try_from(n).unwrap()
    }
    fn s(text: &str) -> SessionId {
        SessionId::parse(text).unwrap()
    }

    #[test]
    fn every_combination_of_fields_picks_the_original_stacks_target() {
        assert_eq!(target(json!({"msg": "x"})), Ok(None));
        assert_eq!(
            target(json!({"accountId": 1})),
            Ok(Some(Target::Account(a(1))))
        );
        assert_eq!(target(json!({"userId": "2"})), Ok(Some(Target::User(u(2)))));
        assert_eq!(
            target(json!({"accountId": "1", "userId": 2})),
            Ok(Some(Target::UserInAccount(a(1), u(2))))
        );
        assert_eq!(
            target(json!({"accountId": 1, "sessionId": "s"})),
            Ok(Some(Target::AccountSession(a(1), s("s"))))
        );
        assert_eq!(
            target(json!({"userId": 2, "sessionId": "s"})),
            Ok(Some(Target::Session(u(2), s("s"))))
        );
        assert_eq!(
            target(json!({"accountId": 1, "userId": 2, "sessionId": "s"})),
            Ok(Some(Target::SessionInAccount(a(1), u(2), s("s"))))
        );
    }

    #[test]
    fn a_channel_is_a_target_of_its_own_and_combines_with_no_other() {
        let channel = ChannelName::parse("prices:AAPL").unwrap();
        assert_eq!(
            target(json!({"channel": "prices:AAPL", "message": "x"})),
            Ok(Some(Target::Channel(channel.clone())))
        );
        for other in [
            json!({"accountId": 1}),
            json!({"userId": 2}),
            json!({"sessionId": "s"}),
            json!({"userId": 2, "sessionId": "s"}),
        ] {
            let mut value = other.clone();
            value["channel"] = json!("prices:AAPL");
            let error = target(value).unwrap_err();
            assert_eq!(error.field, "channel", "{other}");
            assert!(error.message.contains("ambiguous"), "{error}");
        }
        for bad in [json!("a/b"), json!(""), json!(7), json!(["a"]), json!(null)] {
            let error = target(json!({ "channel": bad })).unwrap_err();
            assert_eq!(error.field, "channel", "{bad}");
        }
        let error = target(json!({"Channel": "a"})).unwrap_err();
        assert!(error.message.contains("\"channel\""), "{error}");
        // A path's channel is narrowed by nothing and contradicted by another channel.
        let path = TargetFields::from(&Target::Channel(channel.clone()));
        let error = TargetFields::from_fields(&fields(json!({"channel": "other"})))
            .unwrap()
            .merge(path)
            .unwrap_err();
        assert_eq!(error.field, "channel");
        let mut message = Message::new(Fields::new(), || {
            crate::model::message::MessageId::parse("m").unwrap()
        })
        .unwrap();
        Target::Channel(channel).stamp(&mut message);
        assert_eq!(message.fields()["channel"], "prices:AAPL");
        assert!(!message.writes_history(), "history only when asked");
    }

    #[test]
    fn a_session_id_alone_is_refused_as_ambiguous() {
        let error = target(json!({"sessionId": "s"})).unwrap_err();
        assert_eq!(error.field, "sessionId");
        assert!(error.message.contains("ambiguous"), "{error}");
    }

    #[test]
    fn bad_ids_are_refused_naming_the_field() {
        for (value, field) in [
            (json!({"userId": "007"}), "userId"),
            (json!({"userId": 9007199254740992u64}), "userId"),
            (json!({"userId": 1.5}), "userId"),
            (json!({"userId": -1}), "userId"),
            (json!({"userId": true}), "userId"),
            (json!({"userId": null}), "userId"),
            (json!({"accountId": "abc", "userId": 1}), "accountId"),
            (json!({"accountId": [1]}), "accountId"),
            (json!({"userId": 1, "sessionId": ".."}), "sessionId"),
            (json!({"userId": 1, "sessionId": "a/b"}), "sessionId"),
            (json!({"userId": 1, "sessionId": {}}), "sessionId"),
        ] {
            let error = target(value.clone()).unwrap_err();
            assert_eq!(error.field, field, "{value}: {error}");
            assert!(error.message.contains(field), "{value}: {error}");
        }
    }

    #[test]
    fn look_alike_target_fields_in_a_message_for_everyone_are_refused_naming_them() {
        let refused = |json: &str| {
            let fields: Fields = serde_json::from_str(json).unwrap();
            widening_field(&fields).map_err(|error| error.field)
        };
        for (json, field) in [
            (r#"{"userIds":[1]}"#, "userIds"),
            (r#"{"accountIds":"1"}"#, "accountIds"),
            (r#"{"sessionIds":["a"]}"#, "sessionIds"),
            (r#"{"userId[]":"1"}"#, "userId[]"),
            (r#"{"userId[0]":"1"}"#, "userId[0]"),
            (r#"{"user":1}"#, "user"),
            (r#"{"Account":1}"#, "Account"),
            (r#"{"session":"s"}"#, "session"),
            (r#"{"target":{"userId":1}}"#, "target"),
            (r#"{"to":[1,2]}"#, "to"),
            (r#"{"recipients":{"users":[1]}}"#, "recipients"),
            (r#"{"channels":["a"]}"#, "channels"),
            (r#"{"channels[]":"a"}"#, "channels[]"),
            (r#"{"channel[]":"a"}"#, "channel[]"),
        ] {
            assert_eq!(refused(json), Err(field.to_string()), "{json}");
        }
        for json in [
            r#"{"message":"hi","target":"home page","to":"all readers","kind":"user"}"#,
            r#"{"username":"x","sessionCount":3}"#,
        ] {
            assert_eq!(refused(json), Ok(()), "{json}");
        }
    }

    #[test]
    fn near_miss_field_names_are_refused_naming_the_field_meant() {
        for (name, meant) in [
            ("userID", "userId"),
            ("userid", "userId"),
            ("user_id", "userId"),
            ("UserId", "userId"),
            ("accountid", "accountId"),
            ("account_id", "accountId"),
            ("session_id", "sessionId"),
            ("SESSIONID", "sessionId"),
        ] {
            let error = target(json!({ name: 1, "msg": "x" })).unwrap_err();
            assert_eq!(error.field, name);
            assert!(error.message.contains(meant), "{name}: {error}");
        }
        assert_eq!(near_miss("user"), None);
        assert_eq!(near_miss("userId"), None);
    }

    #[test]
    fn fields_may_narrow_or_repeat_a_path_target_but_not_contradict_it() {
        let path = TargetFields::from(&Target::User(u(2)));
        let narrowed = TargetFields::from_fields(&fields(json!({"accountId": 1})))
            .unwrap()
            .merge(path.clone())
            .unwrap();
        assert_eq!(
            narrowed.target(),
            Ok(Some(Target::UserInAccount(a(1), u(2))))
        );
        let repeated = TargetFields::from_fields(&fields(json!({"userId": "2"})))
            .unwrap()
            .merge(path.clone())
            .unwrap();
        assert_eq!(repeated.target(), Ok(Some(Target::User(u(2)))));
        let error = TargetFields::from_fields(&fields(json!({"userId": 3})))
            .unwrap()
            .merge(path)
            .unwrap_err();
        assert_eq!(error.field, "userId");
        let path = TargetFields::from(&Target::Session(u(2), s("a")));
        let error = TargetFields::from_fields(&fields(json!({"sessionId": "b"})))
            .unwrap()
            .merge(path)
            .unwrap_err();
        assert_eq!(error.field, "sessionId");
    }

    #[test]
    fn stamping_writes_every_id_the_target_names() {
        let mut message = Message::new(Fields::new(), || {
            crate::model::message::MessageId::parse("m").unwrap()
        })
        .unwrap();
        Target::SessionInAccount(a(1), u(2), s("s")).stamp(&mut message);
        assert_eq!(message.fields()["accountId"], 1);
        assert_eq!(message.fields()["userId"], 2);
        assert_eq!(message.fields()["sessionId"], "s");
    }
}
