//! The upstream's ports: what the consumer remembers (seqs seen, rate buckets, strikes, last
//! heartbeats) and where it routes the app's messages.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::model::ids::{AccountId, SessionId, UserId};
use crate::ports::PortError;
use crate::upstream::bucket::Bucket;

/// The consumer's memory (one DynamoDB table on AWS, `sqs-push-<stage>-upstream`). Every key is
/// a sender's role session name or an account: never a credential.
#[async_trait]
pub trait UpstreamStore: Send + Sync {
    /// Records `(sender, seq)` until `expires` (epoch seconds). `false` when it was already
    /// recorded: a replay or an SQS redelivery.
    async fn claim_seq(&self, sender: &str, seq: u64, expires: u64) -> Result<bool, PortError>;
    /// Forgets `(sender, seq)`, so the redelivery of a message whose routing failed is processed.
    async fn release_seq(&self, sender: &str, seq: u64) -> Result<(), PortError>;
    /// A rate bucket's state, `None` before its first use.
    async fn bucket(&self, key: &str) -> Result<Option<Bucket>, PortError>;
    /// Stores `next` only while the bucket is still `previous` (a
    /// [`crate::PortErrorKind::ConditionFailed`] when another consumer changed it meanwhile).
    async fn put_bucket(
        &self,
        key: &str,
        previous: Option<Bucket>,
        next: Bucket,
        expires: u64,
    ) -> Result<(), PortError>;
    /// Adds a strike to `sender`; returns its strikes so far.
    async fn add_strike(&self, sender: &str, expires: u64) -> Result<u64, PortError>;
    /// The strikes of `sender`, 0 when none.
    async fn strikes(&self, sender: &str) -> Result<u64, PortError>;
    /// Records a heartbeat; returns the previous one's time (epoch milliseconds), if any.
    async fn heartbeat(&self, beat: &Heartbeat, expires: u64) -> Result<Option<u64>, PortError>;
    /// The last heartbeat of a session, epoch milliseconds.
    async fn last_seen(
        &self,
        user_id: UserId,
        session_id: &SessionId,
    ) -> Result<Option<u64>, PortError>;
}

/// One heartbeat of one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// The session's account.
    pub account_id: AccountId,
    /// The user.
    pub user_id: UserId,
    /// The session.
    pub session_id: SessionId,
    /// When it arrived, epoch milliseconds.
    pub at_millis: u64,
}

/// A verified upstream message as the app receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppMessage {
    /// The sender's account (from the session row, not the envelope).
    pub account_id: AccountId,
    /// The sender's user.
    pub user_id: UserId,
    /// The sender's session.
    pub session_id: SessionId,
    /// The envelope's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The envelope's body, as sent.
    pub body: Value,
    /// When the consumer accepted it, RFC 3339.
    pub received_at: String,
}

/// Where the app's messages go: an SQS queue, an EventBridge bus or a Lambda function.
#[async_trait]
pub trait AppTarget: Send + Sync {
    /// Hands one message on; an error leaves it to SQS's retry.
    async fn deliver(&self, message: &AppMessage) -> Result<(), PortError>;
}
