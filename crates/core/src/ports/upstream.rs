//! The upstream's ports: what the consumer remembers (seqs seen, rate buckets, strikes, last
//! heartbeats) and where it routes the app's messages.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::model::channel::ChannelName;
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

/// A session as presence lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PresenceMember {
    /// The session's account.
    pub account_id: AccountId,
    /// The user.
    pub user_id: UserId,
    /// The session.
    pub session_id: SessionId,
}

/// What presence remembers of a session that went online (the seen row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Who.
    pub member: PresenceMember,
    /// The last heartbeat, epoch milliseconds.
    pub last_seen: u64,
    /// The channels it joined when it went online: the ones it leaves.
    pub channels: Vec<ChannelName>,
}

/// One page of a channel's online sessions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PresencePage {
    /// The sessions of this page.
    pub members: Vec<PresenceMember>,
    /// Where the next page starts (user, session); `None` on the last page.
    pub next: Option<(UserId, SessionId)>,
}

/// Presence's memory, beside the consumer's: who went online in which channels, and when each
/// session is due to be checked for having left (a timer wheel of `bucket`s, epoch-time slots).
#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// Whether the session is marked online (a join was announced and no leave since).
    async fn is_online(&self, user_id: UserId, session_id: &SessionId) -> Result<bool, PortError>;
    /// Marks the session online in `channels`, unless a concurrent beat did (then `false`).
    async fn mark_online(
        &self,
        member: &PresenceMember,
        channels: &[ChannelName],
        expires: u64,
    ) -> Result<bool, PortError>;
    /// Marks the session offline only while it is online and its last beat is older than
    /// `before_millis`; returns what it held, or `None` when another sweep or a fresh beat won.
    async fn mark_offline(
        &self,
        user_id: UserId,
        session_id: &SessionId,
        before_millis: u64,
    ) -> Result<Option<Seen>, PortError>;
    /// Lists the session among a channel's online sessions.
    async fn enter(
        &self,
        channel: &ChannelName,
        member: &PresenceMember,
        expires: u64,
    ) -> Result<(), PortError>;
    /// Removes the session from a channel's online sessions.
    async fn leave(&self, channel: &ChannelName, member: &PresenceMember) -> Result<(), PortError>;
    /// A page of a channel's online sessions, in (user, session) order, after `after`.
    async fn channel_page(
        &self,
        channel: &ChannelName,
        limit: usize,
        after: Option<&(UserId, SessionId)>,
    ) -> Result<PresencePage, PortError>;
    /// Records that the session's liveness is to be checked in `bucket`.
    async fn add_due(
        &self,
        bucket: u64,
        member: &PresenceMember,
        expires: u64,
    ) -> Result<(), PortError>;
    /// Who is to be checked in `bucket`.
    async fn due(&self, bucket: u64) -> Result<Vec<PresenceMember>, PortError>;
    /// Done checking a session in `bucket`.
    async fn remove_due(&self, bucket: u64, member: &PresenceMember) -> Result<(), PortError>;
    /// The last bucket a sweep finished, if any.
    async fn swept_through(&self) -> Result<Option<u64>, PortError>;
    /// Records that every bucket up to `bucket` was swept.
    async fn set_swept_through(&self, bucket: u64) -> Result<(), PortError>;
    /// Switches join/leave events on for a channel.
    async fn enable_events(&self, channel: &ChannelName) -> Result<(), PortError>;
    /// Whether a channel announces joins and leaves.
    async fn events_enabled(&self, channel: &ChannelName) -> Result<bool, PortError>;
}
