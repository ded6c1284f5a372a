//! The path parameters routes share, as structs whose ids are validated in `TryFrom`: a route
//! takes `Path<SessionPath>` and never sees an unchecked id.

use serde::Deserialize;
use sqs_push_core::dispatch::Target;
use sqs_push_core::model::channel::ChannelName;
use sqs_push_core::model::ids::{AccountId, IdError, SessionId, UserId};

/// `{accountId}/{userId}/{sessionId}`: one session of a user of an account.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawSessionPath")]
pub struct SessionPath {
    /// The account.
    pub account_id: AccountId,
    /// The user.
    pub user_id: UserId,
    /// The session.
    pub session_id: SessionId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSessionPath {
    account_id: String,
    user_id: String,
    session_id: String,
}

impl TryFrom<RawSessionPath> for SessionPath {
    type Error = IdError;

    fn try_from(raw: RawSessionPath) -> Result<Self, IdError> {
        Ok(Self {
            account_id: AccountId::parse(&raw.account_id)?,
            user_id: UserId::parse(&raw.user_id)?,
            session_id: SessionId::parse(&raw.session_id)?,
        })
    }
}

/// `{accountId}`: every session of an account.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawAccountPath")]
pub struct AccountPath {
    /// The account.
    pub account_id: AccountId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAccountPath {
    account_id: String,
}

impl TryFrom<RawAccountPath> for AccountPath {
    type Error = IdError;

    fn try_from(raw: RawAccountPath) -> Result<Self, IdError> {
        Ok(Self {
            account_id: AccountId::parse(&raw.account_id)?,
        })
    }
}

impl From<AccountPath> for Target {
    fn from(path: AccountPath) -> Self {
        Target::Account(path.account_id)
    }
}

/// `{userId}`: a user (every session, or their history).
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawUserPath")]
pub struct UserPath {
    /// The user.
    pub user_id: UserId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawUserPath {
    user_id: String,
}

impl TryFrom<RawUserPath> for UserPath {
    type Error = IdError;

    fn try_from(raw: RawUserPath) -> Result<Self, IdError> {
        Ok(Self {
            user_id: UserId::parse(&raw.user_id)?,
        })
    }
}

impl From<UserPath> for Target {
    fn from(path: UserPath) -> Self {
        Target::User(path.user_id)
    }
}

/// `{userId}/session/{sessionId}`: one session of a user.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawUserSessionPath")]
pub struct UserSessionPath {
    /// The user.
    pub user_id: UserId,
    /// The session.
    pub session_id: SessionId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawUserSessionPath {
    user_id: String,
    session_id: String,
}

impl TryFrom<RawUserSessionPath> for UserSessionPath {
    type Error = IdError;

    fn try_from(raw: RawUserSessionPath) -> Result<Self, IdError> {
        Ok(Self {
            user_id: UserId::parse(&raw.user_id)?,
            session_id: SessionId::parse(&raw.session_id)?,
        })
    }
}

impl From<UserSessionPath> for Target {
    fn from(path: UserSessionPath) -> Self {
        Target::Session(path.user_id, path.session_id)
    }
}

/// `{channel}`: a channel, on the notify and channel routes. Captured to the end of the path, so
/// that a name holding `/` is refused naming `channel` rather than routed nowhere.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawChannelPath")]
pub struct ChannelPath {
    /// The channel.
    pub channel: ChannelName,
}

#[derive(Deserialize)]
struct RawChannelPath {
    channel: String,
}

impl TryFrom<RawChannelPath> for ChannelPath {
    type Error = IdError;

    fn try_from(raw: RawChannelPath) -> Result<Self, IdError> {
        Ok(Self {
            channel: ChannelName::parse(&raw.channel)?,
        })
    }
}

impl From<ChannelPath> for Target {
    fn from(path: ChannelPath) -> Self {
        Target::Channel(path.channel)
    }
}

/// `{accountId}/{userId}/{sessionId}/{channel}`: one session and one channel (subscribe,
/// unsubscribe); the channel is captured to the end of the path, as in [`ChannelPath`].
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawSessionChannelPath")]
pub struct SessionChannelPath {
    /// The session.
    pub session: SessionPath,
    /// The channel.
    pub channel: ChannelName,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSessionChannelPath {
    account_id: String,
    user_id: String,
    session_id: String,
    channel: String,
}

impl TryFrom<RawSessionChannelPath> for SessionChannelPath {
    type Error = IdError;

    fn try_from(raw: RawSessionChannelPath) -> Result<Self, IdError> {
        Ok(Self {
            session: SessionPath::try_from(RawSessionPath {
                account_id: raw.account_id,
                user_id: raw.user_id,
                session_id: raw.session_id,
            })?,
            channel: ChannelName::parse(&raw.channel)?,
        })
    }
}
