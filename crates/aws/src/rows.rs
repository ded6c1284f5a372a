//! The tables' rows as serde types, defined once and read with `serde_dynamo` from items
//! (GetItem, Query, Scan) and from stream images alike.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sqs_push_core::crypto::SessionKey;
use sqs_push_core::model::channel::ChannelName;
use sqs_push_core::model::ids::{AccountId, SessionId, UserId};
use sqs_push_core::model::recipient::Recipient;
use sqs_push_core::model::session::{Credentials, QueueRef, Session};
use sqs_push_core::ports::{HistoryEntry, HistoryRow};

/// One row of the sessions table, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRow {
    /// The accountId index's key.
    pub account_id: AccountId,
    /// Partition key.
    pub user_id: UserId,
    /// Sort key.
    pub session_id: SessionId,
    /// The session's queue URL.
    pub sqs_url: String,
    /// The session's queue name.
    pub sqs_queue_name: String,
    /// The Cognito identity that reads the queue.
    pub identity_id: String,
    /// The identity's developer user identifier (renew's token needs it); absent on rows
    /// written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub developer_login: Option<String>,
    /// The AES key, base64.
    pub aes_key: String,
    /// The credentials last handed out.
    pub access_key: String,
    /// Their secret.
    pub secret_key: String,
    /// Their session token.
    pub session_token: String,
    /// When they expire, epoch seconds.
    pub expires: u64,
    /// The table's TTL attribute.
    pub ttl: u64,
    /// When the session was created.
    pub created: u64,
    /// The channels the session is subscribed to: a string set, absent when empty (DynamoDB
    /// keeps no empty set).
    #[serde(
        default,
        skip_serializing_if = "BTreeSet::is_empty",
        with = "serde_dynamo::string_set"
    )]
    pub channels: BTreeSet<ChannelName>,
}

impl From<&Session> for SessionRow {
    fn from(session: &Session) -> Self {
        Self {
            user_id: session.user_id,
            session_id: session.session_id.clone(),
            account_id: session.account_id,
            sqs_url: session.queue.url.clone(),
            sqs_queue_name: session.queue.name.clone(),
            identity_id: session.identity_id.clone(),
            developer_login: session.developer_login.clone(),
            aes_key: session.aes_key.to_base64(),
            access_key: session.credentials.access_key.clone(),
            secret_key: session.credentials.secret_key.clone(),
            session_token: session.credentials.session_token.clone(),
            expires: session.credentials.expires,
            ttl: session.ttl,
            created: session.created,
            channels: session.channels.clone(),
        }
    }
}

impl TryFrom<SessionRow> for Session {
    type Error = String;

    fn try_from(row: SessionRow) -> Result<Self, String> {
        Ok(Session {
            account_id: row.account_id,
            user_id: row.user_id,
            session_id: row.session_id,
            queue: QueueRef {
                url: row.sqs_url,
                name: row.sqs_queue_name,
            },
            identity_id: row.identity_id,
            developer_login: row.developer_login,
            aes_key: SessionKey::from_base64(&row.aes_key).map_err(|_| "aesKey".to_string())?,
            credentials: Credentials {
                access_key: row.access_key,
                secret_key: row.secret_key,
                session_token: row.session_token,
                expires: row.expires,
            },
            ttl: row.ttl,
            created: row.created,
            channels: row.channels,
        })
    }
}

/// One row of the history table, as stored (`is_read` is 0 or 1, as the original stack's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    /// Partition key.
    #[serde(rename = "userId")]
    pub user_id: UserId,
    /// Sort key.
    #[serde(rename = "messageId")]
    pub message_id: String,
    /// The `created` index's sort key, epoch seconds.
    pub created: u64,
    /// The table's TTL attribute.
    pub ttl: u64,
    /// 1 once a read receipt marked it.
    pub is_read: u8,
    /// The message's JSON.
    pub message: String,
}

impl HistoryItem {
    /// A new, unread row.
    pub fn unread(row: &HistoryRow) -> Self {
        Self {
            user_id: row.user_id,
            message_id: row.message_id.clone(),
            created: row.created,
            ttl: row.ttl,
            is_read: 0,
            message: row.message.clone(),
        }
    }

    /// The row and its read flag.
    pub fn into_entry(self) -> HistoryEntry {
        HistoryEntry {
            is_read: self.is_read != 0,
            row: HistoryRow {
                user_id: self.user_id,
                message_id: self.message_id,
                created: self.created,
                ttl: self.ttl,
                message: self.message,
            },
        }
    }
}

/// Why a row did not read: the field that is missing or malformed, as far as serde tells.
fn field_of(error: &serde_dynamo::Error) -> String {
    let text = error.to_string();
    text.split('`')
        .nth(1)
        .filter(|_| text.starts_with("missing field"))
        .map(str::to_string)
        .unwrap_or(text)
}

/// Reads a row from an item or a stream image; the error names the bad field.
pub fn from_item<'a, I, T>(item: I) -> Result<T, String>
where
    I: Into<serde_dynamo::Item>,
    T: Deserialize<'a>,
{
    serde_dynamo::from_item(item).map_err(|error| field_of(&error))
}

/// The session in a row (an item or a stream image); the error names the bad field.
pub fn session_from_row(item: impl Into<serde_dynamo::Item>) -> Result<Session, String> {
    Session::try_from(from_item::<_, SessionRow>(item)?)
}

/// A row as an item of the SDK's type (or a stream image's).
pub fn to_item<T: Serialize, I: From<serde_dynamo::Item>>(row: &T) -> I {
    serde_dynamo::to_item(row).expect("a row of strings and numbers serializes to an item")
}

/// The routing attributes of a sessions row: what a broadcast scan and the account index project.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecipientRow {
    /// The accountId index's key.
    pub account_id: AccountId,
    /// Partition key.
    pub user_id: UserId,
    /// Sort key.
    pub session_id: SessionId,
    /// The session's queue URL.
    pub sqs_url: String,
    /// The AES key, base64.
    pub aes_key: String,
    /// When the credentials expire, epoch seconds.
    pub expires: u64,
    /// The table's TTL attribute.
    pub ttl: u64,
    /// When the session was created; absent where the read does not project it (the account
    /// index).
    #[serde(default)]
    pub created: Option<u64>,
}

/// The recipient in a projected row; the error names the bad field.
pub fn recipient_from_row(item: impl Into<serde_dynamo::Item>) -> Result<Recipient, String> {
    let row: RecipientRow = from_item(item)?;
    Ok(Recipient {
        account_id: row.account_id,
        user_id: row.user_id,
        session_id: row.session_id,
        queue_url: row.sqs_url,
        aes_key: row.aes_key,
        expires: row.expires,
        ttl: row.ttl,
        created: row.created,
    })
}

/// One row of the channels table: key `channel` + `member` (`<userId>#<sessionId>`), the
/// session's routing attributes (never credentials) and its ttl, also the table's TTL attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipRow {
    /// Partition key.
    pub channel: ChannelName,
    /// Sort key: `<userId>#<sessionId>`.
    pub member: String,
    /// The session's account.
    pub account_id: AccountId,
    /// The session's user.
    pub user_id: UserId,
    /// The session.
    pub session_id: SessionId,
    /// The session's queue URL.
    pub sqs_url: String,
    /// The session's AES key, base64.
    pub aes_key: String,
    /// When the session's credentials expire, epoch seconds.
    pub expires: u64,
    /// The session's ttl: a publish skips the row once it passes, and DynamoDB's TTL removes it
    /// (a backstop; cleanup removes it when the session ends).
    pub ttl: u64,
}

/// A membership's sort key: `<userId>#<sessionId>`. A session id may itself hold `#`, but the
/// user id before the first `#` is digits only, so the key splits unambiguously.
pub fn member_key(user_id: UserId, session_id: &SessionId) -> String {
    format!("{user_id}#{session_id}")
}

impl MembershipRow {
    /// The membership of `session` in `channel`.
    pub fn of(channel: &ChannelName, session: &Session) -> Self {
        Self {
            channel: channel.clone(),
            member: member_key(session.user_id, &session.session_id),
            account_id: session.account_id,
            user_id: session.user_id,
            session_id: session.session_id.clone(),
            sqs_url: session.queue.url.clone(),
            aes_key: session.aes_key.to_base64(),
            expires: session.credentials.expires,
            ttl: session.ttl,
        }
    }
}
