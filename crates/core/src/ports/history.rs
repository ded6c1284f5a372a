//! The user history table port.

use async_trait::async_trait;

use crate::model::ids::UserId;
use crate::model::message::MessageId;
use crate::ports::PortError;

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
    /// Writes up to 25 rows, each only when no row with its key exists (a row already written,
    /// read or not, is left as it is and counts as written); returns the rows that were not
    /// processed and should be retried.
    async fn write_batch(&self, rows: &[HistoryRow]) -> Result<Vec<HistoryRow>, PortError>;
    /// One page of a user's rows whose `created` lies in the query's range, newest first (a key
    /// condition on the `created` index), leaving out rows whose `ttl` has passed.
    async fn query(&self, user_id: UserId, query: &HistoryQuery) -> Result<HistoryPage, PortError>;
    /// Marks one row read with its receipt pending: [`Marked::Now`] when the row was unread, or
    /// read with a receipt still pending (an earlier try marked it, then failed or timed out
    /// before its receipt went out), so a retry sends the receipt that try did not.
    async fn mark_read(&self, user_id: UserId, message_id: &MessageId)
    -> Result<Marked, PortError>;
    /// Clears the pending receipt of rows whose receipt went out.
    async fn receipt_sent(&self, user_id: UserId, message_id: &MessageId) -> Result<(), PortError>;
    /// The ids of a user's rows created at or before `created_up_to`, `ttl` after `now`, that
    /// are unread or have a receipt pending; at most `limit` of them.
    async fn unread_up_to(
        &self,
        user_id: UserId,
        created_up_to: u64,
        now: u64,
        limit: usize,
    ) -> Result<Vec<MessageId>, PortError>;
}

/// What marking a row read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// Unread until now, or read with its receipt still pending: it goes in a receipt.
    Now,
    /// Read before and receipted: nothing to send again.
    Before,
    /// No such row (yet: a history job may still be writing it).
    Missing,
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

/// Which message types a history read keeps: a row matches when its message's top-level
/// `_type` is a string equal to one of the names. Rows without `_type` never match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeFilter {
    types: Vec<String>,
}

impl TypeFilter {
    /// The field of a message that names its type.
    pub const FIELD: &'static str = "_type";

    /// A filter keeping the given types (already trimmed; an empty name matches nothing).
    pub fn new(types: Vec<String>) -> Self {
        Self { types }
    }

    /// The type names.
    pub fn types(&self) -> &[String] {
        &self.types
    }

    /// Whether a row's message has one of the types.
    pub fn matches(&self, row: &HistoryRow) -> bool {
        let Ok(serde_json::Value::Object(message)) = serde_json::from_str(&row.message) else {
            return false;
        };
        match message.get(Self::FIELD) {
            Some(serde_json::Value::String(kind)) => {
                !kind.is_empty() && self.types.iter().any(|wanted| wanted == kind)
            }
            _ => false,
        }
    }
}

/// One page of history, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistoryPage {
    /// The rows.
    pub entries: Vec<HistoryEntry>,
    /// Where the next page starts; `None` when there are no more rows.
    pub next: Option<HistoryCursor>,
}
