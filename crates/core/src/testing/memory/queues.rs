//! SQS in memory: queues in a map keyed by URL, with an optional delay per call.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Clock;
use crate::crypto::{SealedMessage, SessionCipher, SessionKey};
use crate::model::session::QueueRef;
use crate::ports::{BatchEntry, FailedEntry, QueuePage, QueueService, QueueSpec};
use crate::ports::{PortError, PortErrorKind};

/// A queue held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryQueue {
    /// The `owner` tag.
    pub owner_identity_id: String,
    /// The retention asked for.
    pub retention_seconds: Option<u32>,
    /// Every message sent, in order.
    pub messages: Vec<SealedMessage>,
}

/// Queues in a map keyed by URL, with an optional per-call delay to imitate network latency.
#[derive(Debug, Default)]
pub struct MemoryQueues {
    queues: Mutex<HashMap<String, MemoryQueue>>,
    latency_micros: AtomicU64,
    calls: AtomicU64,
    clock: ClockCell,
    created: Mutex<HashMap<String, u64>>,
    failing_deletes: Mutex<HashSet<String>>,
    /// Entry ids the next send_batch reports as failed: (count, sender_fault).
    refuse_next: Mutex<Option<(usize, bool)>>,
    /// While set, every send_batch fails as a whole with this kind.
    failing_sends: Mutex<Option<PortErrorKind>>,
}

/// The clock that stamps queue creation times; the system clock unless a test sets one.
#[derive(Default)]
struct ClockCell(Option<Arc<dyn Clock>>);

impl std::fmt::Debug for ClockCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ClockCell(set)"
        } else {
            "ClockCell(system)"
        })
    }
}

impl ClockCell {
    fn now(&self) -> u64 {
        match &self.0 {
            Some(clock) => clock.now(),
            None => crate::clock::SystemClock.now(),
        }
    }
}

impl MemoryQueues {
    /// Queues whose every call waits `latency` first (what SQS costs in-region).
    pub fn with_latency(latency: Duration) -> Self {
        let queues = Self::default();
        queues.set_latency(latency);
        queues
    }

    /// Changes the per-call delay (set up fast, then measure slow).
    pub fn set_latency(&self, latency: Duration) {
        self.latency_micros
            .store(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Queues whose creation times come from `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock: ClockCell(Some(clock)),
            ..Self::default()
        }
    }

    /// Makes every delete of `url` fail (not as "already gone"), to test partial failures.
    pub fn fail_deletes_of(&self, url: &str) {
        self.failing_deletes.lock().unwrap().insert(url.to_string());
    }

    /// A copy of one queue.
    pub fn queue(&self, url: &str) -> Option<MemoryQueue> {
        self.queues.lock().unwrap().get(url).cloned()
    }

    /// Makes the next SendMessageBatch report its first `count` entries as failed, as SQS does
    /// for a partial failure; `sender_fault` says whether sending them again can help.
    pub fn refuse_next_entries(&self, count: usize, sender_fault: bool) {
        *self.refuse_next.lock().unwrap() = Some((count, sender_fault));
    }

    /// While `kind` is set, every SendMessageBatch fails as a whole with it (after the SDK's
    /// retries, as the port reports it); `None` recovers.
    pub fn fail_sends(&self, kind: Option<PortErrorKind>) {
        *self.failing_sends.lock().unwrap() = kind;
    }

    /// Every message in a queue, verified and decrypted with `key`, for tests.
    pub fn opened(&self, url: &str, key: &SessionKey) -> Vec<serde_json::Value> {
        let cipher = SessionCipher::new(key);
        self.queue(url)
            .map(|queue| queue.messages)
            .unwrap_or_default()
            .iter()
            .map(|message| {
                let plaintext = cipher
                    .open(&message.body, Some(&message.mac))
                    .expect("a message sealed with this key");
                serde_json::from_slice(&plaintext).expect("a JSON message")
            })
            .collect()
    }

    /// Number of queues.
    pub fn count(&self) -> usize {
        self.queues.lock().unwrap().len()
    }

    /// Number of calls made, of any kind.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    async fn call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let micros = self.latency_micros.load(Ordering::Relaxed);
        if micros > 0 {
            tokio::time::sleep(Duration::from_micros(micros)).await;
        }
    }
}

#[async_trait]
impl QueueService for MemoryQueues {
    async fn create_queue(&self, spec: &QueueSpec) -> Result<QueueRef, PortError> {
        self.call().await;
        let url = format!("memory://queues/000000000000/{}", spec.name);
        let created = self.clock.now();
        self.created.lock().unwrap().insert(url.clone(), created);
        self.queues.lock().unwrap().insert(
            url.clone(),
            MemoryQueue {
                owner_identity_id: spec.owner_identity_id.clone(),
                retention_seconds: spec.retention_seconds,
                messages: Vec::new(),
            },
        );
        Ok(QueueRef {
            url,
            name: spec.name.clone(),
        })
    }

    async fn send_batch(
        &self,
        queue_url: &str,
        entries: &[BatchEntry],
    ) -> Result<Vec<FailedEntry>, PortError> {
        self.call().await;
        if let Some(kind) = *self.failing_sends.lock().unwrap() {
            return Err(PortError::new(
                kind,
                "SQS SendMessageBatch",
                queue_url,
                "injected failure",
            ));
        }
        let refused = self.refuse_next.lock().unwrap().take();
        let (count, sender_fault) = refused.unwrap_or((0, false));
        let (failed, accepted) = entries.split_at(count.min(entries.len()));
        match self.queues.lock().unwrap().get_mut(queue_url) {
            Some(queue) => {
                queue
                    .messages
                    .extend(accepted.iter().map(|entry| entry.message.clone()));
                Ok(failed
                    .iter()
                    .map(|entry| FailedEntry {
                        id: entry.id.clone(),
                        code: "InternalError".into(),
                        sender_fault,
                    })
                    .collect())
            }
            None => Err(queue_not_found("SQS SendMessageBatch", queue_url)),
        }
    }

    async fn delete_queue(&self, queue_url: &str) -> Result<(), PortError> {
        self.call().await;
        if self.failing_deletes.lock().unwrap().contains(queue_url) {
            return Err(PortError::new(
                PortErrorKind::Transient,
                "SQS DeleteQueue",
                queue_url,
                "injected failure",
            ));
        }
        match self.queues.lock().unwrap().remove(queue_url) {
            Some(_) => Ok(()),
            None => Err(queue_not_found("SQS DeleteQueue", queue_url)),
        }
    }

    /// Pages in name order; the token is the last name of the page before, so a queue deleted
    /// between pages shifts nothing.
    async fn list_queues_page(
        &self,
        prefix: &str,
        token: Option<&str>,
        max: u16,
    ) -> Result<QueuePage, PortError> {
        self.call().await;
        let queues = self.queues.lock().unwrap();
        let mut found: Vec<QueueRef> = queues
            .keys()
            .filter_map(|url| {
                let name = url.rsplit('/').next()?;
                let after_token = token.is_none_or(|last| name > last);
                (name.starts_with(prefix) && after_token).then(|| QueueRef {
                    url: url.clone(),
                    name: name.to_string(),
                })
            })
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        let max = usize::from(max.clamp(1, 1000));
        let next = (found.len() > max).then(|| found[max - 1].name.clone());
        found.truncate(max);
        Ok(QueuePage {
            queues: found,
            next,
        })
    }

    async fn created_at(&self, queue_url: &str) -> Result<u64, PortError> {
        self.call().await;
        if !self.queues.lock().unwrap().contains_key(queue_url) {
            return Err(queue_not_found("SQS GetQueueAttributes", queue_url));
        }
        Ok(self
            .created
            .lock()
            .unwrap()
            .get(queue_url)
            .copied()
            .unwrap_or(0))
    }
}

fn queue_not_found(operation: &'static str, url: &str) -> PortError {
    PortError::new(
        PortErrorKind::NotFound,
        operation,
        url,
        "queue does not exist",
    )
}
