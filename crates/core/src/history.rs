//! Writing user message history: one row per (userId, messageId), written 25 at a time with
//! unprocessed items retried; and the payload the `history` function takes.

use std::fmt;
use std::sync::Arc;

use futures::StreamExt;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::ids::UserId;
use crate::ports::{HistoryRow, HistoryStore};
use crate::receipts::ReceiptJob;
use crate::retry::{MAX_ATTEMPTS, backoff};

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

/// A payload of the `history` function: a write job, or read receipts to apply.
///
/// A write job travels as the plain [`HistoryJob`] JSON, as before receipts existed, so payloads
/// from older dispatchers still parse and older history functions still read new ones; a
/// receipt job carries `"kind": "readReceipts"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryTask {
    /// Write one message into many users' histories.
    Write(HistoryJob),
    /// Mark one user's messages read.
    Receipts(ReceiptJob),
}

/// The `kind` of a receipt job.
const RECEIPTS_KIND: &str = "readReceipts";

#[derive(Serialize)]
struct TaggedReceipts<'a> {
    kind: &'static str,
    #[serde(flatten)]
    job: &'a ReceiptJob,
}

impl Serialize for HistoryTask {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Write(job) => job.serialize(serializer),
            Self::Receipts(job) => TaggedReceipts {
                kind: RECEIPTS_KIND,
                job,
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for HistoryTask {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match value.get("kind") {
            None => HistoryJob::deserialize(value)
                .map(Self::Write)
                .map_err(D::Error::custom),
            Some(kind) if kind == RECEIPTS_KIND => ReceiptJob::deserialize(value)
                .map(Self::Receipts)
                .map_err(D::Error::custom),
            Some(kind) => Err(D::Error::custom(format!(
                "unknown history task kind {kind}; expected none (a write) or \"{RECEIPTS_KIND}\""
            ))),
        }
    }
}

/// What a history write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryReport {
    /// Rows written.
    pub written: usize,
    /// Rows that could not be written after retries.
    pub failed: usize,
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
                total
            })
    }

    async fn write_chunk(&self, mut pending: Vec<HistoryRow>) -> HistoryReport {
        let mut report = HistoryReport::default();
        for attempt in 0..MAX_ATTEMPTS {
            match self.store.write_batch(&pending).await {
                Ok(unprocessed) => {
                    report.written += pending.len() - unprocessed.len();
                    pending = unprocessed;
                }
                Err(error) => {
                    tracing::warn!(%error, rows = pending.len(), "history write failed");
                }
            }
            if pending.is_empty() {
                return report;
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        tracing::warn!(
            rows = pending.len(),
            "history rows still unwritten after retries"
        );
        report.failed += pending.len();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryHistory;

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
                failed: 0
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
                failed: 0
            }
        );
        assert_eq!(store.calls(), 3);
        writer.write(&job).await;
        assert_eq!(store.len(), 60);
        let row = &store.rows_of(UserId::try_from(7).unwrap())[0];
        assert_eq!((row.created, row.ttl), (100, 86_500));
    }

    #[test]
    fn write_jobs_travel_untagged_and_receipt_jobs_by_kind() {
        let write = r#"{"messageId":"m","message":"{}","created":5,"userIds":[1,2]}"#;
        let task: HistoryTask = serde_json::from_str(write).unwrap();
        assert!(matches!(&task, HistoryTask::Write(job) if job.user_ids.len() == 2));
        assert_eq!(serde_json::to_string(&task).unwrap(), write);

        let receipts = r#"{"kind":"readReceipts","userId":7,"messageIds":["a","b"]}"#;
        let task: HistoryTask = serde_json::from_str(receipts).unwrap();
        assert!(matches!(&task, HistoryTask::Receipts(job) if job.message_ids.len() == 2));
        assert_eq!(serde_json::to_string(&task).unwrap(), receipts);

        for bad in [
            r#"{"kind":"other","userId":7}"#,
            r#"{"kind":"readReceipts","userId":7,"messageIds":[""]}"#,
            r#"{"messageId":"m"}"#,
        ] {
            assert!(serde_json::from_str::<HistoryTask>(bad).is_err(), "{bad}");
        }
    }
}
