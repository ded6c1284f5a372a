//! The sessions table port.

use async_trait::async_trait;

use crate::model::ids::{AccountId, SessionId, UserId};
use crate::model::recipient::{Recipient, RecipientPage, ScanPosition};
use crate::model::session::Session;
use crate::ports::PortError;

/// The sessions table.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// One session by its key.
    async fn get(
        &self,
        user_id: UserId,
        session_id: &SessionId,
    ) -> Result<Option<Session>, PortError>;
    /// Writes the whole row, replacing any previous one.
    async fn put(&self, session: &Session) -> Result<(), PortError>;
    /// Writes a new row only when none exists for its key or the existing one has expired
    /// (`ttl <= now`); otherwise a [`crate::PortErrorKind::ConditionFailed`], and the row is
    /// left as it was.
    async fn put_new(&self, session: &Session, now: u64) -> Result<(), PortError>;
    /// Removes a row only while it still holds the queue `queue_url`; a row removed or replaced
    /// meanwhile is a [`crate::PortErrorKind::ConditionFailed`]. Returns what the row held.
    async fn delete_if_queue(
        &self,
        user_id: UserId,
        session_id: &SessionId,
        queue_url: &str,
    ) -> Result<Session, PortError>;
    /// Removes a row and returns what it held.
    async fn delete(
        &self,
        user_id: UserId,
        session_id: &SessionId,
    ) -> Result<Option<Session>, PortError>;
    /// Every session of a user (a key query), as routing attributes only — no credentials.
    async fn recipients_of_user(&self, user_id: UserId) -> Result<Vec<Recipient>, PortError>;
    /// One page of an account's sessions (the accountId index, which projects routing
    /// attributes only), resuming after `start`, with at most `limit` rows; `next` is absent on
    /// the last page. A large account is read page by page by segment workers, never at once.
    async fn account_page(
        &self,
        account_id: AccountId,
        start: Option<&ScanPosition>,
        limit: usize,
    ) -> Result<RecipientPage, PortError>;
    /// Up to `limit` rows in the store's own order, resuming after `after`. `next` is absent
    /// on the last page (a page may also come back short, or empty, with a `next`).
    async fn list(
        &self,
        limit: usize,
        after: Option<&SessionCursor>,
    ) -> Result<SessionPage, PortError>;
    /// Rewrites a row only while it still exists with the same queue; a row removed or
    /// replaced meanwhile is a [`crate::PortErrorKind::ConditionFailed`].
    async fn replace(&self, session: &Session) -> Result<(), PortError>;
    /// One page of one segment of a parallel scan (`segment` of `total_segments`), resuming
    /// after `start`, with at most `limit` rows (the store may return fewer, and a 1 MB page
    /// cap applies on DynamoDB). Only the routing attributes are read — never credentials.
    async fn scan_page(
        &self,
        segment: u32,
        total_segments: u32,
        start: Option<&ScanPosition>,
        limit: usize,
    ) -> Result<RecipientPage, PortError>;
    /// The table's approximate size (DynamoDB refreshes ItemCount about every six hours);
    /// `None` when the store cannot tell cheaply.
    async fn estimated_count(&self) -> Result<Option<u64>, PortError> {
        Ok(None)
    }
}

/// Where a listing of sessions resumes: the key of the last row the store read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionCursor {
    /// The row's user.
    pub user_id: UserId,
    /// The row's session.
    pub session_id: SessionId,
}

/// One page of a session listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionPage {
    /// The rows read, live or not.
    pub sessions: Vec<Session>,
    /// Where the next page starts; `None` when the listing is complete.
    pub next: Option<SessionCursor>,
}
