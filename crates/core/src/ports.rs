//! The ports: what the domain needs from storage, queues and identities. Adapters implement them
//! on AWS (`sqs-push-aws`) and in memory ([`crate::memory`]).

use async_trait::async_trait;

use crate::crypto::SealedMessage;
use crate::error::PortError;
use crate::ids::{AccountId, SessionId, UserId};
use crate::message::MessageId;
use crate::session::{Credentials, QueueRef, Session};

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
    /// Removes a row and returns what it held.
    async fn delete(
        &self,
        user_id: UserId,
        session_id: &SessionId,
    ) -> Result<Option<Session>, PortError>;
    /// Every session of a user (a key query).
    async fn sessions_of_user(&self, user_id: UserId) -> Result<Vec<Session>, PortError>;
    /// Every session of an account (the accountId index).
    async fn sessions_of_account(&self, account_id: AccountId) -> Result<Vec<Session>, PortError>;
    /// Every session (a parallel scan).
    async fn all_sessions(&self) -> Result<Vec<Session>, PortError>;
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

/// What a new queue needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// The queue name (from [`crate::queue_name::QueueNameGenerator`]).
    pub name: String,
    /// Tagged on the queue as `owner`, so the role's tag condition admits only this identity.
    pub owner_identity_id: String,
    /// MessageRetentionPeriod in seconds; the service default when absent.
    pub retention_seconds: Option<u32>,
}

/// The message queues.
#[async_trait]
pub trait QueueService: Send + Sync {
    /// Creates a queue, tagged with its owner.
    async fn create_queue(&self, spec: &QueueSpec) -> Result<QueueRef, PortError>;
    /// Sends up to 10 entries to one queue in one call; returns the entries that failed. A
    /// missing queue is a [`crate::PortErrorKind::NotFound`] for the whole call.
    async fn send_batch(
        &self,
        queue_url: &str,
        entries: &[BatchEntry],
    ) -> Result<Vec<FailedEntry>, PortError>;
    /// Deletes a queue; one already gone is a [`crate::PortErrorKind::NotFound`].
    async fn delete_queue(&self, queue_url: &str) -> Result<(), PortError>;
    /// Every queue whose name starts with `prefix`, across all pages of the listing.
    async fn list_queues(&self, prefix: &str) -> Result<Vec<QueueRef>, PortError>;
    /// When a queue was created, epoch seconds; one already gone is a
    /// [`crate::PortErrorKind::NotFound`].
    async fn created_at(&self, queue_url: &str) -> Result<u64, PortError>;
}

/// The identity pool and the credentials it hands out.
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// A new unauthenticated identity; returns its id.
    async fn create_identity(&self) -> Result<String, PortError>;
    /// Temporary credentials for `identity_id` that can read `queue`.
    async fn credentials(
        &self,
        identity_id: &str,
        queue: &QueueRef,
    ) -> Result<Credentials, PortError>;
    /// Deletes identities (at most 60 per call); returns the ids that were not processed and
    /// should be retried. Ids that do not exist count as deleted.
    async fn delete_identities(&self, identity_ids: &[String]) -> Result<Vec<String>, PortError>;
}

/// One entry of a SendMessageBatch call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEntry {
    /// Unique within the call; failures are reported by it.
    pub id: String,
    /// The sealed message.
    pub message: SealedMessage,
}

/// An entry the queue service did not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEntry {
    /// The entry's id.
    pub id: String,
    /// The service's error code.
    pub code: String,
    /// True when the entry itself is bad, so sending it again cannot help.
    pub sender_fault: bool,
}

/// One row of a user's message history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// Whose history.
    pub user_id: UserId,
    /// The message id (the row's sort key, so rewriting is idempotent).
    pub message_id: String,
    /// When the message was dispatched, epoch seconds.
    pub created: u64,
    /// When the row expires, epoch seconds.
    pub ttl: u64,
    /// The message's JSON.
    pub message: String,
}

/// The user history table.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Writes up to 25 rows; returns the rows that were not processed and should be retried.
    async fn write_batch(&self, rows: &[HistoryRow]) -> Result<Vec<HistoryRow>, PortError>;
    /// One page of a user's rows whose `created` lies in the query's range, newest first (a key
    /// condition on the `created` index), leaving out rows whose `ttl` has passed.
    async fn query(&self, user_id: UserId, query: &HistoryQuery) -> Result<HistoryPage, PortError>;
    /// Marks one row read; true only when it existed and was unread.
    async fn mark_read(&self, user_id: UserId, message_id: &MessageId) -> Result<bool, PortError>;
    /// The ids of a user's unread rows created at or before `created_up_to`, `ttl` after `now`.
    async fn unread_up_to(
        &self,
        user_id: UserId,
        created_up_to: u64,
        now: u64,
    ) -> Result<Vec<MessageId>, PortError>;
}

/// A history row as read back, with its read flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The row.
    pub row: HistoryRow,
    /// Whether a read receipt has marked it.
    pub is_read: bool,
}

/// Where a page of history ends: the `created` index key of its last row, so the next page
/// starts strictly after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCursor {
    /// The last row's `created`.
    pub created: u64,
    /// The last row's message id.
    pub message_id: MessageId,
}

/// What a page of history asks the store for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Earliest `created`, inclusive.
    pub start: u64,
    /// Latest `created`, inclusive.
    pub end: u64,
    /// At most this many rows.
    pub limit: usize,
    /// Continue after this row.
    pub after: Option<HistoryCursor>,
    /// Rows whose `ttl` is at or before this have expired and are left out.
    pub now: u64,
}

/// One page of history, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryPage {
    /// The rows.
    pub entries: Vec<HistoryEntry>,
    /// Where the next page starts; `None` when there are no more rows.
    pub next: Option<HistoryCursor>,
}

/// The functions a dispatcher hands work to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsyncFunction {
    /// Encrypts and sends a batch of deliveries.
    Sender,
    /// Writes a batch of history rows.
    History,
}

impl AsyncFunction {
    /// The function's short name, as in `sqs-push-<stage>-<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sender => "sender",
            Self::History => "history",
        }
    }
}

/// Hands a payload to another function without waiting for its result.
#[async_trait]
pub trait Invoker: Send + Sync {
    /// Queues `payload` (JSON) for `function`; returns once it was accepted.
    async fn invoke_async(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
    ) -> Result<(), PortError>;
}
