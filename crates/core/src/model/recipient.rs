//! What sending needs of a session, and where a segmented scan resumes: the broadcast path's
//! records. No credentials, no identity: a scan page of recipients can be handed on freely.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::ids::{AccountId, SessionId, UserId};
use crate::model::session::Session;

/// One session as a fan-out sees it: the routing attributes a scan or the account index
/// projects (`userId`, `sessionId`, `accountId`, `sqsUrl`, `aesKey`, `expires`, `ttl`).
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The account.
    pub account_id: AccountId,
    /// The user.
    pub user_id: UserId,
    /// The session.
    pub session_id: SessionId,
    /// The session's queue.
    pub queue_url: String,
    /// The session's key, base64.
    pub aes_key: String,
    /// When the session's credentials stop working, epoch seconds.
    pub expires: u64,
    /// When the row may be deleted, epoch seconds.
    pub ttl: u64,
    /// When the session was created, epoch seconds; `None` where the read does not project it
    /// (the account index). A send uses it to tell a queue not visible yet from one gone.
    pub created: Option<u64>,
}

impl Recipient {
    /// Whether a message sent now can still be read: the session is within its ttl, as
    /// [`crate::model::session::Session::is_live`] — its credentials may have lapsed, but
    /// `/renew` lets it read the backlog (docs/operations.md).
    pub fn is_live(&self, now: u64) -> bool {
        self.ttl > now
    }
}

impl From<&Session> for Recipient {
    fn from(session: &Session) -> Self {
        Self {
            account_id: session.account_id,
            user_id: session.user_id,
            session_id: session.session_id.clone(),
            queue_url: session.queue.url.clone(),
            aes_key: session.aes_key.to_base64(),
            expires: session.credentials.expires,
            ttl: session.ttl,
            created: Some(session.created),
        }
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipient")
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id)
            .field("queue_url", &self.queue_url)
            .finish_non_exhaustive()
    }
}

/// Where a segment's scan resumes: the key of the last row read (DynamoDB's LastEvaluatedKey).
/// Serialized into a `dispatcher` payload when a segment worker hands the rest of its segment on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanPosition {
    /// The last row's user.
    pub user_id: UserId,
    /// The last row's session.
    pub session_id: SessionId,
}

/// One page of a segment's scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientPage {
    /// The rows read, live or not.
    pub recipients: Vec<Recipient>,
    /// Where the segment resumes; `None` once the segment is done.
    pub next: Option<ScanPosition>,
}
