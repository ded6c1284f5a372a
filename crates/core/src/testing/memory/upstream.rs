//! The upstream consumer's memory and the app's target, in memory.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;

use crate::model::ids::{SessionId, UserId};
use crate::ports::{AppMessage, AppTarget, Heartbeat, PortError, PortErrorKind, UpstreamStore};
use crate::upstream::bucket::Bucket;

/// Seqs, buckets, strikes and heartbeats in maps.
#[derive(Default)]
pub struct MemoryUpstream {
    seqs: Mutex<HashSet<(String, u64)>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    strikes: Mutex<HashMap<String, u64>>,
    beats: Mutex<HashMap<(UserId, SessionId), u64>>,
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
