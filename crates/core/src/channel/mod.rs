//! Channels: the backend subscribes live sessions to named channels and publishes to a channel
//! without knowing who listens ([`crate::dispatch::Target::Channel`]). Membership is stored
//! where a publish reads it as one key range per channel, holding the routing projection and
//! the session's ttl; the session row lists its channels so that renew extends them and the end
//! of the session (destroy, TTL, replacement) removes them.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use crate::clock::Clock;
use crate::model::channel::ChannelName;
use crate::model::ids::{AccountId, SessionId, UserId};
use crate::model::recipient::ScanPosition;
use crate::model::session::Session;
use crate::ports::{PortError, PortErrorKind, SessionStore};
use crate::session::SessionError;

/// At most this many channels in one subscribe call (all or nothing: one DynamoDB transaction
/// of the memberships and the session row).
pub const MAX_CHANNELS_PER_CALL: usize = 25;

/// How channels behave; read once from config.
#[derive(Debug, Clone)]
pub struct ChannelSettings {
    /// A session holds at most this many channels (`SQS_PUSH_MAX_CHANNELS_PER_SESSION`).
    pub max_per_session: usize,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            max_per_session: 100,
        }
    }
}

/// A subscribed session as a channel listing shows it: ids only, no secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The account.
    pub account_id: u64,
    /// The user.
    pub user_id: u64,
    /// The session.
    pub session_id: String,
}

/// One page of a channel's live members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPage {
    /// The live members of this page.
    pub members: Vec<Member>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ScanPosition>,
}

/// Subscribes and unsubscribes sessions, and tells who is on a channel.
#[derive(Clone)]
pub struct ChannelService {
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    settings: ChannelSettings,
}

impl ChannelService {
    /// Wires the service to the sessions store.
    pub fn new(
        store: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
        settings: ChannelSettings,
    ) -> Self {
        Self {
            store,
            clock,
            settings,
        }
    }

    /// The live session with these ids, as status finds it.
    async fn live_session(
        &self,
        account_id: AccountId,
        user_id: UserId,
        session_id: &SessionId,
    ) -> Result<Session, SessionError> {
        match self.store.get(user_id, session_id).await? {
            Some(session)
                if session.account_id == account_id && session.is_live(self.clock.now()) =>
            {
                Ok(session)
            }
            _ => Err(SessionError::NotFound {
                user_id,
                session_id: session_id.clone(),
            }),
        }
    }

    /// Subscribes a live session to `channels` (at most [`MAX_CHANNELS_PER_CALL`]), all or
    /// nothing; channels it already holds are kept as they are. Returns the session as stored,
    /// its channels included. A session past its ttl is not found; one that would hold more
    /// than the configured maximum is refused, naming the limit.
    pub async fn subscribe(
        &self,
        account_id: AccountId,
        user_id: UserId,
        session_id: &SessionId,
        channels: &[ChannelName],
    ) -> Result<Session, SessionError> {
        if channels.len() > MAX_CHANNELS_PER_CALL {
            return Err(SessionError::Limit(format!(
                "invalid channels: at most {MAX_CHANNELS_PER_CALL} channels per call, {} given",
                channels.len()
            )));
        }
        // A concurrent subscribe or renew changes the row between the read and the write; the
        // write's condition notices, and the next round reads again.
        const ROUNDS: usize = 5;
        for _ in 0..ROUNDS {
            let mut session = self.live_session(account_id, user_id, session_id).await?;
            let new: Vec<ChannelName> = channels
                .iter()
                .filter(|channel| !session.channels.contains(*channel))
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if new.is_empty() {
                return Ok(session);
            }
            let limit = self.settings.max_per_session;
            if session.channels.len() + new.len() > limit {
                return Err(SessionError::Limit(format!(
                    "invalid channel: a session holds at most {limit} channels \
                     (SQS_PUSH_MAX_CHANNELS_PER_SESSION); this one holds {} and the call adds {}",
                    session.channels.len(),
                    new.len()
                )));
            }
            let now = self.clock.now();
            match self
                .store
                .subscribe(&session, &new, limit - new.len(), now)
                .await
            {
                Ok(()) => {
                    tracing::info!(
                        user_id = %user_id,
                        added = new.len(),
                        channels = session.channels.len() + new.len(),
                        "session subscribed"
                    );
                    session.channels.extend(new);
                    return Ok(session);
                }
                Err(error) if error.kind == PortErrorKind::ConditionFailed => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(PortError::new(
            PortErrorKind::Transient,
            "subscribe",
            session_id.as_str(),
            "the session kept changing while subscribing; try again",
        )
        .into())
    }

    /// Unsubscribes a live session from `channel`; answers whether it was subscribed.
    pub async fn unsubscribe(
        &self,
        account_id: AccountId,
        user_id: UserId,
        session_id: &SessionId,
        channel: &ChannelName,
    ) -> Result<bool, SessionError> {
        let session = self.live_session(account_id, user_id, session_id).await?;
        let subscribed = session.channels.contains(channel);
        match self.store.unsubscribe(&session, channel).await {
            Ok(()) => Ok(subscribed),
            // Replaced or removed since the read: the session this call named has ended.
            Err(error) if error.kind == PortErrorKind::ConditionFailed => {
                Err(SessionError::NotFound {
                    user_id,
                    session_id: session_id.clone(),
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// How many live sessions are subscribed to `channel`.
    pub async fn count(&self, channel: &ChannelName) -> Result<u64, SessionError> {
        Ok(self.store.count_channel(channel, self.clock.now()).await?)
    }

    /// Up to `limit` live members of `channel`, resuming after `after`; a page can be shorter
    /// than `limit` and still have a `next`.
    pub async fn members(
        &self,
        channel: &ChannelName,
        limit: usize,
        after: Option<ScanPosition>,
    ) -> Result<MemberPage, SessionError> {
        // Bounds the reads one call makes when a stretch of the channel holds only ended rows.
        const MAX_READS: usize = 10;
        let limit = limit.max(1);
        let now = self.clock.now();
        let mut members = Vec::new();
        let mut cursor = after;
        for _ in 0..MAX_READS {
            let page = self
                .store
                .channel_page(channel, cursor.as_ref(), limit - members.len())
                .await?;
            members.extend(
                page.recipients
                    .iter()
                    .filter(|recipient| recipient.is_live(now))
                    .map(|recipient| Member {
                        account_id: recipient.account_id.get(),
                        user_id: recipient.user_id.get(),
                        session_id: recipient.session_id.to_string(),
                    }),
            );
            cursor = page.next;
            if cursor.is_none() || members.len() >= limit {
                break;
            }
        }
        Ok(MemberPage {
            members,
            next: cursor,
        })
    }
}

#[cfg(test)]
mod tests;
