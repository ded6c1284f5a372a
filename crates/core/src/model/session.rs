//! The session record as every feature sees it: the row, its queue and credentials, and what a
//! client is shown of it.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use crate::crypto::SessionKey;
use crate::model::channel::ChannelName;
use crate::model::ids::{AccountId, SessionId, UserId};

/// Temporary AWS credentials that can read one queue. Debug output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
    /// The session token.
    pub session_token: String,
    /// When they stop working, epoch seconds.
    pub expires: u64,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// A queue as the session knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRef {
    /// The queue URL that clients poll.
    pub url: String,
    /// The queue name.
    pub name: String,
}

/// One row of the sessions table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The account the user belongs to.
    pub account_id: AccountId,
    /// The user.
    pub user_id: UserId,
    /// The caller's session id.
    pub session_id: SessionId,
    /// The session's own queue.
    pub queue: QueueRef,
    /// The Cognito identity whose credentials read the queue.
    pub identity_id: String,
    /// The developer user identifier the identity was created with: renew asks for a token with
    /// it directly instead of looking it up (LookupDeveloperIdentity is throttled at
    /// authentication volumes). `None` on rows written before it was kept.
    pub developer_login: Option<String>,
    /// The key messages are encrypted with.
    pub aes_key: SessionKey,
    /// The credentials last handed out.
    pub credentials: Credentials,
    /// When the row may be deleted, epoch seconds: credential expiry plus the idle period.
    pub ttl: u64,
    /// When the session was created, epoch seconds.
    pub created: u64,
    /// The channels the session is subscribed to (the row's `channels` set; cleanup reads it to
    /// remove the memberships).
    pub channels: BTreeSet<ChannelName>,
}

impl Session {
    /// A session is live until its ttl passes, even if its credentials have lapsed.
    pub fn is_live(&self, now: u64) -> bool {
        self.ttl > now
    }

    /// What the client receives from create, renew and status.
    pub fn to_client(&self, region: &str) -> ClientSession {
        ClientSession {
            sqs_url: self.queue.url.clone(),
            sqs_queue_name: self.queue.name.clone(),
            aes_key: self.aes_key.to_base64(),
            access_key: self.credentials.access_key.clone(),
            secret_key: self.credentials.secret_key.clone(),
            session_token: self.credentials.session_token.clone(),
            expires: self.credentials.expires,
            identity_id: self.identity_id.clone(),
            session_id: self.session_id.to_string(),
            user_id: self.user_id.get(),
            account_id: self.account_id.get(),
            ttl: self.ttl,
            region: region.to_string(),
            channels: self.channels.iter().map(ToString::to_string).collect(),
        }
    }
}

/// The session as the Reuters article's create call returns it, plus the region to sign with.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientSession {
    /// The queue URL to poll.
    pub sqs_url: String,
    /// The queue name.
    pub sqs_queue_name: String,
    /// The AES-256 key, base64.
    pub aes_key: String,
    /// The credentials' access key id.
    pub access_key: String,
    /// The credentials' secret key.
    pub secret_key: String,
    /// The credentials' session token.
    pub session_token: String,
    /// When the credentials stop working, epoch seconds.
    pub expires: u64,
    /// The Cognito identity.
    pub identity_id: String,
    /// The caller's session id.
    pub session_id: String,
    /// The user.
    pub user_id: u64,
    /// The account.
    pub account_id: u64,
    /// When the session may be deleted, epoch seconds.
    pub ttl: u64,
    /// The region to sign SQS calls for.
    pub region: String,
    /// The channels the session is subscribed to.
    pub channels: Vec<String>,
}

impl fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSession")
            .field("sqs_queue_name", &self.sqs_queue_name)
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// A session as the `/status` list shows it: ids, queue name and times, never a key or a
/// credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    /// The account.
    pub account_id: u64,
    /// The user.
    pub user_id: u64,
    /// The session.
    pub session_id: String,
    /// The session's queue.
    pub sqs_queue_name: String,
    /// When the credentials last handed out stop working.
    pub expires: u64,
    /// When the row may be deleted.
    pub ttl: u64,
    /// When the session was created.
    pub created: u64,
}

impl From<&Session> for SessionSummary {
    fn from(session: &Session) -> Self {
        Self {
            account_id: session.account_id.get(),
            user_id: session.user_id.get(),
            session_id: session.session_id.to_string(),
            sqs_queue_name: session.queue.name.clone(),
            expires: session.credentials.expires,
            ttl: session.ttl,
            created: session.created,
        }
    }
}
