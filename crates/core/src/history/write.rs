//! Writing user message history: one row per (userId, messageId), handed to the store 25 at a
//! time with unprocessed items retried. The store writes a row only when none exists, so a
//! retried job never turns a read row unread.

use std::fmt;
use std::sync::Arc;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::model::ids::UserId;
use crate::ports::{HistoryRow, HistoryStore};
use crate::retry::{Stop, retry_leftovers};

/// DynamoDB's limit on items per BatchWriteItem.
pub const MAX_BATCH_ROWS: usize = 25;

/// Work for the history function: one message for many users. Handed between functions as JSON.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryJob {
    /// The message id.
    pub message_id: String,
    /// The message's JSON.
    pub message: String,
    /// When it was dispatched, epoch seconds.
    pub created: u64,
    /// Whose history gets it.
    pub user_ids: Vec<UserId>,
}

impl fmt::Debug for HistoryJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HistoryJob")
            .field("message_id", &self.message_id)
            .field("users", &self.user_ids.len())
            .finish_non_exhaustive()
    }
}

/// What a history write did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryReport {
    /// Rows written.
    pub written: usize,
    /// Rows that could not be written after retries.
    pub failed: usize,
    /// The users whose rows those are: the part of the job to hand on.
    #[serde(skip)]
    pub unwritten: Vec<UserId>,
}

/// Writes history rows.
#[derive(Clone)]
pub struct HistoryWriter {
    store: Arc<dyn HistoryStore>,
    ttl_seconds: u64,
    concurrency: usize,
}

impl HistoryWriter {
    /// Rows expire `ttl_seconds` after they were created.
    pub fn new(store: Arc<dyn HistoryStore>, ttl_seconds: u64, concurrency: usize) -> Self {
        Self {
            store,
            ttl_seconds,
            concurrency: concurrency.max(1),
        }
    }

    /// Writes one row per user; rewriting the same job is harmless (same keys).
    pub async fn write(&self, job: &HistoryJob) -> HistoryReport {
        let rows: Vec<HistoryRow> = job
            .user_ids
            .iter()
            .map(|user_id| HistoryRow {
                user_id: *user_id,
                message_id: job.message_id.clone(),
                created: job.created,
                ttl: job.created + self.ttl_seconds,
                message: job.message.clone(),
            })
            .collect();
        let chunks: Vec<Vec<HistoryRow>> = rows.chunks(MAX_BATCH_ROWS).map(<[_]>::to_vec).collect();
        let outcomes: Vec<HistoryReport> = futures::stream::iter(chunks)
            .map(|chunk| self.write_chunk(chunk))
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        outcomes
            .into_iter()
            .fold(HistoryReport::default(), |mut total, report| {
                total.written += report.written;
                total.failed += report.failed;
                total.unwritten.extend(report.unwritten);
                total
            })
    }

    async fn write_chunk(&self, rows: Vec<HistoryRow>) -> HistoryReport {
        let total = rows.len();
        let left = retry_leftovers(rows, None, |pending| {
            Box::pin(async move { self.store.write_batch(&pending).await })
        })
        .await;
        match &left.stop {
            Stop::Done => {}
            Stop::Failed(error) => {
                tracing::warn!(%error, rows = left.items.len(), "history write failed");
            }
            Stop::Exhausted | Stop::Deadline => {
                tracing::warn!(
                    rows = left.items.len(),
                    "history rows still unwritten after retries"
                );
            }
        }
        HistoryReport {
            written: total - left.items.len(),
            failed: left.items.len(),
            unwritten: left.items.iter().map(|row| row.user_id).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory::MemoryHistory;

    #[tokio::test]
    async fn unprocessed_rows_are_written_on_a_retry() {
        let store = Arc::new(MemoryHistory::default());
        store.leave_unprocessed_next(10);
        let writer = HistoryWriter::new(store.clone(), 86_400, 1);
        let job = HistoryJob {
            message_id: "m".into(),
            message: "{}".into(),
            created: 100,
            user_ids: (0..25).map(|u| UserId::try_from(u).unwrap()).collect(),
        };
        assert_eq!(
            writer.write(&job).await,
            HistoryReport {
                written: 25,
                ..HistoryReport::default()
            }
        );
        assert_eq!(store.len(), 25);
        assert_eq!(store.calls(), 2, "the batch, then its ten unprocessed rows");
    }

    #[tokio::test]
    async fn rows_are_written_25_per_call_and_rewriting_is_idempotent() {
        let store = Arc::new(MemoryHistory::default());
        let writer = HistoryWriter::new(store.clone(), 86_400, 4);
        let job = HistoryJob {
            message_id: "m".into(),
            message: "{}".into(),
            created: 100,
            user_ids: (0..60).map(|u| UserId::try_from(u).unwrap()).collect(),
        };
        assert_eq!(
            writer.write(&job).await,
            HistoryReport {
                written: 60,
                ..HistoryReport::default()
            }
        );
        assert_eq!(store.calls(), 3);
        writer.write(&job).await;
        assert_eq!(store.len(), 60);
        let row = &store.rows_of(UserId::try_from(7).unwrap())[0];
        assert_eq!((row.created, row.ttl), (100, 86_500));
    }

    #[tokio::test]
    async fn rewriting_a_row_after_it_was_read_leaves_it_read() {
        let store = Arc::new(MemoryHistory::default());
        let writer = HistoryWriter::new(store.clone(), 86_400, 1);
        let user = UserId::try_from(7).unwrap();
        let job = HistoryJob {
            message_id: "m".into(),
            message: "{}".into(),
            created: 100,
            user_ids: vec![user],
        };
        writer.write(&job).await;
        let id = crate::model::message::MessageId::parse("m").unwrap();
        assert_eq!(
            store.mark_read(user, &id).await.unwrap(),
            crate::ports::Marked::Now
        );
        let report = writer.write(&job).await;
        assert_eq!(
            report,
            HistoryReport {
                written: 1,
                ..HistoryReport::default()
            }
        );
        assert!(
            store.is_read(user, "m"),
            "a retried write must not unread the row"
        );
        assert_eq!(store.len(), 1);
    }
}
