//! Presence: a session is online while its leader tab's last heartbeat is younger than
//! `online_seconds` (90 s by default; the tab beats at most once a minute while visible).
//!
//! Channels with presence events (`?presence=true` on subscribe) announce `join` when a session
//! subscribed to them goes online (its first heartbeat after being offline) and `leave` when the
//! sweep finds its last heartbeat older than the window: each once, decided by a conditional
//! write (online → offline, offline → online), with a message id derived from the transition so
//! a retried announcement is deduped by clients. A leave is announced within
//! `online_seconds + sweep interval + one bucket` of the last heartbeat (a bucket is a ninth of
//! the window, at most [`BUCKET_SECONDS`]: 10 s for the default 90 s).

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::clock::{Clock, rfc3339_millis};
use crate::model::channel::ChannelName;
use crate::model::ids::{SessionId, UserId};
use crate::model::message::{Message, MessageId};
use crate::model::session::Session;
use crate::ports::{PortError, PresenceMember, PresencePage, PresenceStore, UpstreamStore};

/// The widest slot of the timer wheel the sweep reads, seconds.
pub const BUCKET_SECONDS: u64 = 10;

/// Where presence events go: every session subscribed to a channel. The dispatcher implements
/// it; the trait keeps presence free of dispatch.
#[async_trait]
pub trait ChannelNotifier: Send + Sync {
    /// Sends `message` to every live session subscribed to `channel`.
    async fn notify_channel(
        &self,
        channel: &ChannelName,
        message: Message,
    ) -> Result<(), PortError>;
}

/// Whether a session is online, as status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    /// The last heartbeat is younger than the online window.
    pub online: bool,
    /// The last heartbeat, RFC 3339; `null` when it never sent one (or too long ago to remember).
    pub last_seen: Option<String>,
}

impl Presence {
    /// Presence from the last heartbeat's time (epoch ms), at `now_millis`.
    pub fn from_last_seen(last_seen: Option<u64>, now_millis: u64, online_seconds: u64) -> Self {
        Self {
            online: last_seen
                .is_some_and(|seen| now_millis.saturating_sub(seen) < online_seconds * 1_000),
            last_seen: last_seen.map(rfc3339_millis),
        }
    }
}

/// One online session of a channel, as the presence route lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OnlineSession {
    /// The account.
    pub account_id: u64,
    /// The user.
    pub user_id: u64,
    /// The session.
    pub session_id: String,
    /// Its last heartbeat, RFC 3339.
    pub last_seen: Option<String>,
}

/// A channel's presence: counts over every online session, and one page of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPresence {
    /// Online sessions in the channel.
    pub sessions: u64,
    /// Distinct users among them.
    pub users: u64,
    /// This page.
    pub online: Vec<OnlineSession>,
    /// Where the next page starts.
    pub next: Option<(UserId, SessionId)>,
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Sessions found gone, their leaves announced.
    pub left: u64,
    /// Due entries looked at.
    pub checked: u64,
}

/// Presence: heartbeats in, joins and leaves out, and what a channel's presence route reads.
#[derive(Clone)]
pub struct PresenceService {
    beats: Arc<dyn UpstreamStore>,
    store: Arc<dyn PresenceStore>,
    notifier: Arc<dyn ChannelNotifier>,
    clock: Arc<dyn Clock>,
    online_seconds: u64,
}

fn member_of(session: &Session) -> PresenceMember {
    PresenceMember {
        account_id: session.account_id,
        user_id: session.user_id,
        session_id: session.session_id.clone(),
    }
}

/// How long presence rows outlive their last write: a leave removes them, the TTL only cleans
/// up after one that never came (a stage torn down mid-session).
const PRESENCE_TTL_SECONDS: u64 = 86_400;

impl PresenceService {
    /// Wires the service.
    pub fn new(
        beats: Arc<dyn UpstreamStore>,
        store: Arc<dyn PresenceStore>,
        notifier: Arc<dyn ChannelNotifier>,
        clock: Arc<dyn Clock>,
        online_seconds: u64,
    ) -> Self {
        Self {
            beats,
            store,
            notifier,
            clock,
            online_seconds,
        }
    }

    /// The timer wheel's slot width: a ninth of the online window, 1 to [`BUCKET_SECONDS`] s.
    fn bucket_millis(&self) -> u64 {
        (self.online_seconds / 9).clamp(1, BUCKET_SECONDS) * 1_000
    }

    /// A heartbeat of `session` (envelope `seq`) at `now_millis`: records it, schedules the
    /// check for its leave, and when the session was offline announces its join in each of its
    /// channels with presence events. Safe to repeat: a retry announces with the same ids.
    pub async fn beat(
        &self,
        session: &Session,
        seq: u64,
        now_millis: u64,
    ) -> Result<(), PortError> {
        let member = member_of(session);
        let expires = now_millis / 1_000 + PRESENCE_TTL_SECONDS;
        self.beats
            .heartbeat(
                &crate::ports::Heartbeat {
                    account_id: session.account_id,
                    user_id: session.user_id,
                    session_id: session.session_id.clone(),
                    at_millis: now_millis,
                },
                expires,
            )
            .await?;
        let due = (now_millis + self.online_seconds * 1_000).div_ceil(self.bucket_millis());
        self.store.add_due(due, &member, expires).await?;
        if self
            .store
            .is_online(session.user_id, &session.session_id)
            .await?
        {
            return Ok(());
        }
        let channels: Vec<ChannelName> = session.channels.iter().cloned().collect();
        for channel in &channels {
            self.store.enter(channel, &member, expires).await?;
            if self.store.events_enabled(channel).await? {
                let id = format!(
                    "presence:join:{}:{}:{seq}",
                    session.user_id, session.session_id
                );
                self.announce(channel, &member, "join", now_millis, &id)
                    .await?;
            }
        }
        // Last: a failure above leaves the session offline, so the retry announces again.
        self.store.mark_online(&member, &channels, expires).await?;
        Ok(())
    }

    /// Announces the leave of every session whose last heartbeat is older than the window,
    /// reading the timer wheel's buckets up to now. Returns what it did; a failure stops the
    /// sweep where it was, and the next one starts there.
    pub async fn sweep(&self) -> Result<SweepReport, PortError> {
        let now_millis = self.clock.now_millis();
        let current = now_millis / self.bucket_millis();
        // A stage's first sweep: nothing can be due further back than a window (and a slot)
        // before its first heartbeat, which came after this code was deployed.
        let first = match self.store.swept_through().await? {
            Some(done) => done + 1,
            None => current.saturating_sub(self.online_seconds * 1_000 / self.bucket_millis() + 1),
        };
        let cutoff = now_millis.saturating_sub(self.online_seconds * 1_000);
        let mut report = SweepReport::default();
        for bucket in first..=current {
            for member in self.store.due(bucket).await? {
                report.checked += 1;
                if let Some(seen) = self
                    .store
                    .mark_offline(member.user_id, &member.session_id, cutoff)
                    .await?
                {
                    for channel in &seen.channels {
                        self.store.leave(channel, &seen.member).await?;
                        if self.store.events_enabled(channel).await? {
                            let id = format!(
                                "presence:leave:{}:{}:{}",
                                member.user_id, member.session_id, seen.last_seen
                            );
                            self.announce(channel, &seen.member, "leave", seen.last_seen, &id)
                                .await?;
                        }
                    }
                    report.left += 1;
                }
                self.store.remove_due(bucket, &member).await?;
            }
            self.store.set_swept_through(bucket).await?;
        }
        if report.left > 0 {
            tracing::info!(
                left = report.left,
                checked = report.checked,
                "presence sweep"
            );
        }
        Ok(report)
    }

    async fn announce(
        &self,
        channel: &ChannelName,
        member: &PresenceMember,
        what: &str,
        last_seen_millis: u64,
        id: &str,
    ) -> Result<(), PortError> {
        let Value::Object(fields) = json!({
            "type": "presence",
            "presence": what,
            "channel": channel.to_string(),
            "accountId": member.account_id,
            "userId": member.user_id,
            "sessionId": member.session_id,
            "lastSeen": rfc3339_millis(last_seen_millis),
            // Presence is now, not history.
            "_sqs_only": true,
        }) else {
            unreachable!("a JSON object literal")
        };
        let fields: Map<String, Value> = fields;
        let message = Message::new(fields, || MessageId::derived_from(id)).map_err(|error| {
            PortError::new(
                crate::PortErrorKind::Other,
                "presence event",
                channel.to_string(),
                error.to_string(),
            )
        })?;
        self.notifier.notify_channel(channel, message).await
    }

    /// The presence of one session.
    pub async fn of(&self, user_id: UserId, session_id: &SessionId) -> Result<Presence, PortError> {
        let last_seen = self.beats.last_seen(user_id, session_id).await?;
        Ok(Presence::from_last_seen(
            last_seen,
            self.clock.now_millis(),
            self.online_seconds,
        ))
    }

    /// Switches a channel's join and leave events on.
    pub async fn enable_events(&self, channel: &ChannelName) -> Result<(), PortError> {
        self.store.enable_events(channel).await
    }

    /// A channel's presence: counts over all its online sessions (read in full: one query of
    /// keys per 1 MB of them) and a page of up to `limit` with their last heartbeats.
    pub async fn channel(
        &self,
        channel: &ChannelName,
        limit: usize,
        after: Option<(UserId, SessionId)>,
    ) -> Result<ChannelPresence, PortError> {
        let page = self
            .store
            .channel_page(channel, limit.max(1), after.as_ref())
            .await?;
        let mut online = Vec::with_capacity(page.members.len());
        for member in &page.members {
            let last_seen = self
                .beats
                .last_seen(member.user_id, &member.session_id)
                .await?;
            online.push(OnlineSession {
                account_id: member.account_id.get(),
                user_id: member.user_id.get(),
                session_id: member.session_id.to_string(),
                last_seen: last_seen.map(rfc3339_millis),
            });
        }
        let (mut sessions, mut users) = (0u64, std::collections::BTreeSet::new());
        let mut cursor: Option<(UserId, SessionId)> = None;
        loop {
            let PresencePage { members, next } = self
                .store
                .channel_page(channel, 1_000, cursor.as_ref())
                .await?;
            sessions += members.len() as u64;
            users.extend(members.iter().map(|member| member.user_id));
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(ChannelPresence {
            sessions,
            users: users.len() as u64,
            online,
            next: page.next,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::crypto::SessionKey;
    use crate::model::ids::AccountId;
    use crate::model::session::{Credentials, QueueRef};
    use crate::testing::ManualClock;
    use crate::testing::memory::MemoryUpstream;

    #[test]
    fn online_while_the_last_beat_is_younger_than_the_window() {
        let at = 1_000_000;
        assert!(Presence::from_last_seen(Some(at), at + 89_999, 90).online);
        let gone = Presence::from_last_seen(Some(at), at + 90_000, 90);
        assert!(!gone.online);
        assert_eq!(gone.last_seen.as_deref(), Some("1970-01-01T00:16:40.000Z"));
        assert_eq!(
            Presence::from_last_seen(None, at, 90),
            Presence {
                online: false,
                last_seen: None
            }
        );
    }

    #[derive(Default)]
    struct Announced(Mutex<Vec<(String, Value)>>);

    #[async_trait]
    impl ChannelNotifier for Announced {
        async fn notify_channel(
            &self,
            channel: &ChannelName,
            message: Message,
        ) -> Result<(), PortError> {
            let json: Value = serde_json::from_slice(&message.to_json()).unwrap();
            self.0.lock().unwrap().push((channel.to_string(), json));
            Ok(())
        }
    }

    fn session(user: u64, id: &str, channels: &[&str]) -> Session {
        Session {
            account_id: AccountId::try_from(1).unwrap(),
            user_id: UserId::try_from(user).unwrap(),
            session_id: SessionId::parse(id).unwrap(),
            queue: QueueRef {
                url: "u".into(),
                name: "n".into(),
            },
            identity_id: "i".into(),
            developer_login: None,
            aes_key: SessionKey::generate(),
            credentials: Credentials {
                access_key: "a".into(),
                secret_key: "s".into(),
                session_token: "t".into(),
                expires: 0,
            },
            ttl: u64::MAX,
            created: 0,
            channels: channels
                .iter()
                .map(|name| ChannelName::parse(name).unwrap())
                .collect(),
        }
    }

    const START: u64 = 1_800_000_000;

    #[tokio::test]
    async fn joins_and_leaves_are_announced_once_each_in_channels_with_presence_events() {
        let store = Arc::new(MemoryUpstream::default());
        let announced = Arc::new(Announced::default());
        let clock = Arc::new(ManualClock::at(START));
        let presence = PresenceService::new(
            store.clone(),
            store.clone(),
            announced.clone(),
            clock.clone(),
            90,
        );
        let room = ChannelName::parse("room").unwrap();
        presence.enable_events(&room).await.unwrap();
        let tab = session(7, "tab", &["room", "quiet"]);
        presence.beat(&tab, 1, START * 1_000).await.unwrap();
        presence
            .beat(&tab, 2, START * 1_000 + 60_000)
            .await
            .unwrap();
        let events = announced.0.lock().unwrap().clone();
        assert_eq!(
            events.len(),
            1,
            "one join, in the channel with events: {events:?}"
        );
        assert_eq!(events[0].0, "room");
        assert_eq!(events[0].1["presence"], "join");
        assert_eq!(events[0].1["sessionId"], "tab");

        let page = presence.channel(&room, 10, None).await.unwrap();
        assert_eq!((page.sessions, page.users), (1, 1));
        assert_eq!(page.online[0].session_id, "tab");
        let quiet = ChannelName::parse("quiet").unwrap();
        assert_eq!(
            presence.channel(&quiet, 10, None).await.unwrap().sessions,
            1
        );

        // 89 s after the last beat: still here. 90 s + a bucket: gone, once.
        clock.advance(60 + 89);
        assert_eq!(presence.sweep().await.unwrap().left, 0);
        clock.advance(1 + BUCKET_SECONDS);
        assert_eq!(presence.sweep().await.unwrap().left, 1);
        assert_eq!(presence.sweep().await.unwrap().left, 0);
        let events = announced.0.lock().unwrap().clone();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[1].1["presence"], "leave");
        assert_eq!(presence.channel(&room, 10, None).await.unwrap().sessions, 0);

        // Back: a new join.
        presence.beat(&tab, 3, clock.now_millis()).await.unwrap();
        assert_eq!(announced.0.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_channels_presence_pages_and_counts_distinct_users() {
        let store = Arc::new(MemoryUpstream::default());
        let clock = Arc::new(ManualClock::at(START));
        let presence = PresenceService::new(
            store.clone(),
            store.clone(),
            Arc::new(Announced::default()),
            clock,
            90,
        );
        for (user, id) in [(1, "a"), (1, "b"), (2, "c")] {
            presence
                .beat(&session(user, id, &["room"]), 1, START * 1_000)
                .await
                .unwrap();
        }
        let room = ChannelName::parse("room").unwrap();
        let first = presence.channel(&room, 2, None).await.unwrap();
        assert_eq!((first.sessions, first.users, first.online.len()), (3, 2, 2));
        let second = presence.channel(&room, 2, first.next).await.unwrap();
        assert_eq!(second.online.len(), 1);
        assert_eq!(second.next, None);
    }
}
