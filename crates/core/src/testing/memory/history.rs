//! The history table in memory: rows in a map keyed like the table.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;

use crate::model::ids::UserId;
use crate::model::message::MessageId;
use crate::ports::{HistoryCursor, HistoryEntry, HistoryPage, HistoryQuery, Marked};
use crate::ports::{HistoryRow, HistoryStore};
use crate::ports::{PortError, PortErrorKind};

/// A read row's receipt: pending until it went out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    ReceiptPending,
    Receipted,
}

/// History rows in a map keyed like the table.
#[derive(Debug, Default)]
pub struct MemoryHistory {
    rows: Mutex<BTreeMap<(UserId, String), HistoryRow>>,
    calls: AtomicU64,
    /// Keys of the rows marked read; rewriting a row leaves it as it was, read or not.
    read: Mutex<HashMap<(UserId, String), ReadState>>,
    /// Rows the next write_batch leaves unprocessed, as DynamoDB does under throttling.
    unprocessed_next: Mutex<usize>,
    /// While set, every write_batch fails as a whole (throttled past the SDK's retries).
    failing_writes: AtomicBool,
    /// How long each write_batch takes, in milliseconds.
    latency_ms: AtomicU64,
}

impl MemoryHistory {
    /// Makes the next BatchWriteItem leave its first `count` rows unprocessed.
    pub fn leave_unprocessed_next(&self, count: usize) {
        *self.unprocessed_next.lock().unwrap() = count;
    }

    /// Makes every write take `latency`, as a round trip to DynamoDB would.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// While `fail` is set, every write fails as throttled; `false` recovers.
    pub fn fail_writes(&self, fail: bool) {
        self.failing_writes.store(fail, Ordering::SeqCst);
    }

    /// Every row of a user, by message id.
    pub fn rows_of(&self, user_id: UserId) -> Vec<HistoryRow> {
        let rows = self.rows.lock().unwrap();
        rows.values()
            .filter(|row| row.user_id == user_id)
            .cloned()
            .collect()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.lock().unwrap().len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of write calls.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Whether a row is marked read.
    pub fn is_read(&self, user_id: UserId, message_id: &str) -> bool {
        let read = self.read.lock().unwrap();
        read.contains_key(&(user_id, message_id.to_string()))
    }

    /// Whether a row is read with its receipt still pending.
    pub fn receipt_pending(&self, user_id: UserId, message_id: &str) -> bool {
        let read = self.read.lock().unwrap();
        read.get(&(user_id, message_id.to_string())) == Some(&ReadState::ReceiptPending)
    }

    /// A user's live rows in `created` order, newest first, ties by message id descending (the
    /// order of the `created` index read backwards).
    fn newest_first(&self, user_id: UserId, now: u64) -> Vec<HistoryEntry> {
        let rows = self.rows.lock().unwrap();
        let read = self.read.lock().unwrap();
        let mut entries: Vec<HistoryEntry> = rows
            .values()
            .filter(|row| row.user_id == user_id && row.ttl > now)
            .map(|row| HistoryEntry {
                row: row.clone(),
                is_read: read.contains_key(&(row.user_id, row.message_id.clone())),
            })
            .collect();
        entries.sort_by(|a, b| {
            (b.row.created, &b.row.message_id).cmp(&(a.row.created, &a.row.message_id))
        });
        entries
    }
}

#[async_trait]
impl HistoryStore for MemoryHistory {
    async fn write_batch(&self, rows: &[HistoryRow]) -> Result<Vec<HistoryRow>, PortError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let latency = self.latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
        }
        if self.failing_writes.load(Ordering::SeqCst) {
            return Err(PortError::new(
                PortErrorKind::Transient,
                "DynamoDB PutItem",
                "history",
                "injected throttling",
            ));
        }
        let skip = std::mem::take(&mut *self.unprocessed_next.lock().unwrap()).min(rows.len());
        let (unprocessed, rows) = rows.split_at(skip);
        let mut stored = self.rows.lock().unwrap();
        for row in rows {
            // Like the conditional PutItem: a row already written (and maybe read) is kept.
            stored
                .entry((row.user_id, row.message_id.clone()))
                .or_insert_with(|| row.clone());
        }
        Ok(unprocessed.to_vec())
    }

    async fn query(&self, user_id: UserId, query: &HistoryQuery) -> Result<HistoryPage, PortError> {
        let after = query
            .after
            .as_ref()
            .map(|cursor| (cursor.created, cursor.message_id.as_str().to_string()));
        let mut entries: Vec<HistoryEntry> = self
            .newest_first(user_id, query.now)
            .into_iter()
            .filter(|entry| (query.start..=query.end).contains(&entry.row.created))
            .filter(|entry| match &after {
                Some(after) => (entry.row.created, entry.row.message_id.clone()) < *after,
                None => true,
            })
            .take(query.limit + 1)
            .collect();
        let next = if entries.len() > query.limit {
            entries.truncate(query.limit);
            entries.last().map(|entry| HistoryCursor {
                created: entry.row.created,
                message_id: MessageId::parse(&entry.row.message_id)
                    .expect("memory rows hold valid ids"),
            })
        } else {
            None
        };
        Ok(HistoryPage { entries, next })
    }

    async fn mark_read(
        &self,
        user_id: UserId,
        message_id: &MessageId,
    ) -> Result<Marked, PortError> {
        let key = (user_id, message_id.as_str().to_string());
        if self.failing_writes.load(Ordering::SeqCst) {
            return Err(PortError::new(
                PortErrorKind::Transient,
                "DynamoDB UpdateItem",
                "history",
                "injected throttling",
            ));
        }
        let rows = self.rows.lock().unwrap();
        if !rows.contains_key(&key) {
            return Ok(Marked::Missing);
        }
        let mut read = self.read.lock().unwrap();
        Ok(match read.get(&key) {
            Some(ReadState::Receipted) => Marked::Before,
            _ => {
                read.insert(key, ReadState::ReceiptPending);
                Marked::Now
            }
        })
    }

    async fn receipt_sent(&self, user_id: UserId, message_id: &MessageId) -> Result<(), PortError> {
        let key = (user_id, message_id.as_str().to_string());
        if let Some(state) = self.read.lock().unwrap().get_mut(&key) {
            *state = ReadState::Receipted;
        }
        Ok(())
    }

    async fn unread_up_to(
        &self,
        user_id: UserId,
        created_up_to: u64,
        now: u64,
        limit: usize,
    ) -> Result<Vec<MessageId>, PortError> {
        let receipted = |entry: &HistoryEntry| {
            self.read
                .lock()
                .unwrap()
                .get(&(user_id, entry.row.message_id.clone()))
                == Some(&ReadState::Receipted)
        };
        Ok(self
            .newest_first(user_id, now)
            .into_iter()
            .filter(|entry| entry.row.created <= created_up_to && !receipted(entry))
            .filter_map(|entry| MessageId::parse(&entry.row.message_id).ok())
            .take(limit)
            .collect())
    }
}
