//! The sessions table port.

use async_trait::async_trait;

use crate::model::channel::ChannelName;
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
    /// replaced meanwhile is a [`crate::PortErrorKind::ConditionFailed`]. The row's `channels`
    /// are left as they are (they are subscribe's to change); returns the row as now stored.
    async fn replace(&self, session: &Session) -> Result<Session, PortError>;
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
    /// Subscribes a session to `channels` (none of which it holds yet): one membership row per
    /// channel holding the routing projection and the session's ttl (never credentials), and
    /// the names added to the row's `channels` — all or nothing, and only while the row still
    /// holds the queue and the ttl `session` names (a renew in between would leave the new
    /// memberships with the old ttl), is within its ttl at `now` and holds at most
    /// `at_most_before` channels; otherwise a [`crate::PortErrorKind::ConditionFailed`] and
    /// nothing is written.
    async fn subscribe(
        &self,
        session: &Session,
        channels: &[ChannelName],
        at_most_before: usize,
        now: u64,
    ) -> Result<(), PortError>;
    /// Removes a session's membership of `channel` and the name from its row, only while the
    /// row still holds the queue `session` names (else a
    /// [`crate::PortErrorKind::ConditionFailed`]).
    async fn unsubscribe(&self, session: &Session, channel: &ChannelName) -> Result<(), PortError>;
    /// One page of a channel's memberships (one key range), live or not, resuming after
    /// `start`, with at most `limit` rows; `next` is absent on the last page.
    async fn channel_page(
        &self,
        channel: &ChannelName,
        start: Option<&ScanPosition>,
        limit: usize,
    ) -> Result<RecipientPage, PortError>;
    /// How many memberships of `channel` are within their ttl at `now`.
    async fn count_channel(&self, channel: &ChannelName, now: u64) -> Result<u64, PortError>;
    /// Rewrites the ttl and expiry of the session's membership rows that still hold its queue
    /// (renew extends a session, so its memberships must outlive the old ttl too).
    async fn refresh_memberships(&self, session: &Session) -> Result<(), PortError>;
    /// Deletes the session's membership rows (the channels its row listed) that still hold its
    /// queue: a membership a re-created session wrote since is not this session's. Returns how
    /// many rows were deleted.
    async fn remove_memberships(&self, session: &Session) -> Result<usize, PortError>;
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
