//! The message-queue port (SQS).

use async_trait::async_trait;

use crate::crypto::SealedMessage;
use crate::model::session::QueueRef;
use crate::ports::PortError;

/// What a new queue needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    /// The queue name (from [`crate::session::queue_name::QueueNameGenerator`]).
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
    /// One page of the queues whose names start with `prefix`: at most `max` (1–1,000) of
    /// them, from where `token` (the last page's [`QueuePage::next`]) left off.
    async fn list_queues_page(
        &self,
        prefix: &str,
        token: Option<&str>,
        max: u16,
    ) -> Result<QueuePage, PortError>;
    /// When a queue was created, epoch seconds; one already gone is a
    /// [`crate::PortErrorKind::NotFound`].
    async fn created_at(&self, queue_url: &str) -> Result<u64, PortError>;
}

/// One page of a queue listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueuePage {
    /// The queues on this page.
    pub queues: Vec<QueueRef>,
    /// Where the next page starts; none on the last page.
    pub next: Option<String>,
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
