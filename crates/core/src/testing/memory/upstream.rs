//! The upstream consumer's memory and the app's target, in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use crate::model::channel::ChannelName;
use crate::model::ids::{SessionId, UserId};
use crate::ports::{
    AppMessage, AppTarget, Heartbeat, PortError, PortErrorKind, PresenceMember, PresencePage,
    PresenceStore, Seen, UpstreamStore,
};
use crate::upstream::bucket::Bucket;

/// A session marked online, and the channels it joined.
type Joined = (PresenceMember, Vec<ChannelName>);

/// Seqs, buckets, strikes and heartbeats in maps.
#[derive(Default)]
pub struct MemoryUpstream {
    seqs: Mutex<HashSet<(String, u64)>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    strikes: Mutex<HashMap<String, u64>>,
    beats: Mutex<HashMap<(UserId, SessionId), u64>>,
    online: Mutex<HashMap<(UserId, SessionId), Joined>>,
    present: Mutex<BTreeMap<(ChannelName, UserId, SessionId), PresenceMember>>,
    due: Mutex<BTreeMap<u64, BTreeSet<PresenceMember>>>,
    swept_through: Mutex<Option<u64>>,
    events: Mutex<HashSet<ChannelName>>,
}

impl MemoryUpstream {
    /// The strikes of a sender.
    pub fn strikes_of(&self, sender: &str) -> u64 {
        self.strikes
            .lock()
            .unwrap()
            .get(sender)
            .copied()
            .unwrap_or(0)
    }
}

#[async_trait]
impl UpstreamStore for MemoryUpstream {
    async fn claim_seq(&self, sender: &str, seq: u64, _expires: u64) -> Result<bool, PortError> {
        Ok(self.seqs.lock().unwrap().insert((sender.to_string(), seq)))
    }

    async fn release_seq(&self, sender: &str, seq: u64) -> Result<(), PortError> {
        self.seqs.lock().unwrap().remove(&(sender.to_string(), seq));
        Ok(())
    }

    async fn bucket(&self, key: &str) -> Result<Option<Bucket>, PortError> {
        Ok(self.buckets.lock().unwrap().get(key).copied())
    }

    async fn put_bucket(
        &self,
        key: &str,
        previous: Option<Bucket>,
        next: Bucket,
        _expires: u64,
    ) -> Result<(), PortError> {
        let mut buckets = self.buckets.lock().unwrap();
        if buckets.get(key).copied() != previous {
            return Err(PortError::new(
                PortErrorKind::ConditionFailed,
                "put bucket",
                key,
                "changed meanwhile",
            ));
        }
        buckets.insert(key.to_string(), next);
        Ok(())
    }

    async fn add_strike(&self, sender: &str, _expires: u64) -> Result<u64, PortError> {
        let mut strikes = self.strikes.lock().unwrap();
        let count = strikes.entry(sender.to_string()).or_default();
        *count += 1;
        Ok(*count)
    }

    async fn strikes(&self, sender: &str) -> Result<u64, PortError> {
        Ok(self.strikes_of(sender))
    }

    async fn heartbeat(&self, beat: &Heartbeat, _expires: u64) -> Result<Option<u64>, PortError> {
        Ok(self
            .beats
            .lock()
            .unwrap()
            .insert((beat.user_id, beat.session_id.clone()), beat.at_millis))
    }

    async fn last_seen(
        &self,
        user_id: UserId,
        session_id: &SessionId,
    ) -> Result<Option<u64>, PortError> {
        Ok(self
            .beats
            .lock()
            .unwrap()
            .get(&(user_id, session_id.clone()))
            .copied())
    }
}

#[async_trait]
impl PresenceStore for MemoryUpstream {
    async fn is_online(&self, user_id: UserId, session_id: &SessionId) -> Result<bool, PortError> {
        Ok(self
            .online
            .lock()
            .unwrap()
            .contains_key(&(user_id, session_id.clone())))
    }

    async fn mark_online(
        &self,
        member: &PresenceMember,
        channels: &[ChannelName],
        _expires: u64,
    ) -> Result<bool, PortError> {
        let mut online = self.online.lock().unwrap();
        let key = (member.user_id, member.session_id.clone());
        if online.contains_key(&key) {
            return Ok(false);
        }
        online.insert(key, (member.clone(), channels.to_vec()));
        Ok(true)
    }

    async fn mark_offline(
        &self,
        user_id: UserId,
        session_id: &SessionId,
        before_millis: u64,
    ) -> Result<Option<Seen>, PortError> {
        let key = (user_id, session_id.clone());
        let last_seen = self.beats.lock().unwrap().get(&key).copied().unwrap_or(0);
        if last_seen >= before_millis {
            return Ok(None);
        }
        Ok(self
            .online
            .lock()
            .unwrap()
            .remove(&key)
            .map(|(member, channels)| Seen {
                member,
                last_seen,
                channels,
            }))
    }

    async fn enter(
        &self,
        channel: &ChannelName,
        member: &PresenceMember,
        _expires: u64,
    ) -> Result<(), PortError> {
        self.present.lock().unwrap().insert(
            (channel.clone(), member.user_id, member.session_id.clone()),
            member.clone(),
        );
        Ok(())
    }

    async fn leave(&self, channel: &ChannelName, member: &PresenceMember) -> Result<(), PortError> {
        self.present.lock().unwrap().remove(&(
            channel.clone(),
            member.user_id,
            member.session_id.clone(),
        ));
        Ok(())
    }

    async fn channel_page(
        &self,
        channel: &ChannelName,
        limit: usize,
        after: Option<&(UserId, SessionId)>,
    ) -> Result<PresencePage, PortError> {
        let present = self.present.lock().unwrap();
        let mut members: Vec<PresenceMember> = present
            .iter()
            .filter(|((name, user, session), _)| {
                name == channel
                    && after.is_none_or(|(after_user, after_session)| {
                        (user, session) > (after_user, after_session)
                    })
            })
            .map(|(_, member)| member.clone())
            .take(limit + 1)
            .collect();
        let next = (members.len() > limit).then(|| {
            members.truncate(limit);
            let last = members.last().expect("limit is at least 1");
            (last.user_id, last.session_id.clone())
        });
        Ok(PresencePage { members, next })
    }

    async fn add_due(
        &self,
        bucket: u64,
        member: &PresenceMember,
        _expires: u64,
    ) -> Result<(), PortError> {
        self.due
            .lock()
            .unwrap()
            .entry(bucket)
            .or_default()
            .insert(member.clone());
        Ok(())
    }

    async fn due(&self, bucket: u64) -> Result<Vec<PresenceMember>, PortError> {
        Ok(self
            .due
            .lock()
            .unwrap()
            .get(&bucket)
            .map(|members| members.iter().cloned().collect())
            .unwrap_or_default())
    }

    async fn remove_due(&self, bucket: u64, member: &PresenceMember) -> Result<(), PortError> {
        if let Some(members) = self.due.lock().unwrap().get_mut(&bucket) {
            members.remove(member);
        }
        Ok(())
    }

    async fn swept_through(&self) -> Result<Option<u64>, PortError> {
        Ok(*self.swept_through.lock().unwrap())
    }

    async fn set_swept_through(&self, bucket: u64) -> Result<(), PortError> {
        *self.swept_through.lock().unwrap() = Some(bucket);
        Ok(())
    }

    async fn enable_events(&self, channel: &ChannelName) -> Result<(), PortError> {
        self.events.lock().unwrap().insert(channel.clone());
        Ok(())
    }

    async fn events_enabled(&self, channel: &ChannelName) -> Result<bool, PortError> {
        Ok(self.events.lock().unwrap().contains(channel))
    }
}

/// An app target that keeps what it was given, and can be told to fail.
#[derive(Default)]
pub struct RecordingAppTarget {
    delivered: Mutex<Vec<AppMessage>>,
    fail: AtomicBool,
}

impl RecordingAppTarget {
    /// What was delivered, in order.
    pub fn delivered(&self) -> Vec<AppMessage> {
        self.delivered.lock().unwrap().clone()
    }

    /// Makes every delivery fail (transiently) while `fail` holds.
    pub fn fail(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }
}

#[async_trait]
impl AppTarget for RecordingAppTarget {
    async fn deliver(&self, message: &AppMessage) -> Result<(), PortError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(PortError::new(
                PortErrorKind::Transient,
                "deliver",
                "app",
                "told to fail",
            ));
        }
        self.delivered.lock().unwrap().push(message.clone());
        Ok(())
    }
}
