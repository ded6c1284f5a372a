//! Read receipts: a message counts only when it changes from unread to read, and the ids that
//! changed go out as one SQS-only message to every live session of the user. Large requests are
//! handed to the `history` function in chunks.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::batch::cut;
use crate::clock::Clock;
use crate::history::HistoryTask;
use crate::model::ids::UserId;
use crate::model::message::{Message, MessageId, SQS_ONLY_FIELD};
use crate::ports::{AsyncFunction, HandOffLimits, HistoryStore, Invoker, Marked, PortError};

/// The `_type` of a read-receipt message.
pub const RECEIPT_TYPE: &str = "message-read-receipt";
/// The field of a read-receipt message that lists the ids that changed.
pub const RECEIPTED_FIELD: &str = "messages-receipted";
/// Ids per `history` invocation when the work is handed off.
pub const ASYNC_CHUNK: usize = 300;
/// Most ids one call may name when it waits for the answer.
pub const MAX_SYNC_IDS: usize = 1_000;
/// Most ids one call may name when the work is handed off (100 chunks).
pub const MAX_ASYNC_IDS: usize = 30_000;
/// Most ids per receipt message. With ids of at most 256 characters a receipt stays under
/// [`RECEIPT_BYTES`]; the byte bound below is what really holds.
const IDS_PER_RECEIPT: usize = 1_000;
/// A receipt's JSON stays under this, so sealed (base64 adds a third) it fits even a queue left
/// at SQS's old 256 KiB default.
const RECEIPT_BYTES: usize = 180_000;
/// The byte bound of one handed-off chunk; 300 ids of at most 256 characters fit easily.
const CHUNK_BYTES: usize = 200_000;
/// Where receipts go: every live session of a user. The dispatcher implements it; the trait
/// keeps history free of dispatch.
#[async_trait]
pub trait UserNotifier: Send + Sync {
    /// Sends `message` to every session of `user_id` (SQS only when the message says so).
    async fn notify_user(&self, user_id: UserId, message: Message) -> Result<(), PortError>;
}

/// UpdateItem calls in flight at once for one request.
const MARK_CONCURRENCY: usize = 16;

/// Work for the history function: ids of one user to mark read. Handed between functions as
/// JSON.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptJob {
    /// Whose messages.
    pub user_id: UserId,
    /// At most [`ASYNC_CHUNK`] ids.
    pub message_ids: Vec<MessageId>,
}

impl fmt::Debug for ReceiptJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiptJob")
            .field("user_id", &self.user_id)
            .field("ids", &self.message_ids.len())
            .finish()
    }
}

/// What marking did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptReport {
    /// The ids that changed from unread to read (or whose receipt an earlier, interrupted try
    /// left pending), in the order they were asked for.
    pub changed: Vec<MessageId>,
    /// Receipt messages dispatched: 0 when nothing changed, otherwise 1 (more only for
    /// thousands of ids, which do not fit one SQS message).
    pub receipts: usize,
    /// Ids the user has no history row for — perhaps not yet: a `history` job may still be
    /// writing it. The caller sets them read again later.
    pub missing: Vec<MessageId>,
    /// For `asof`: more unread messages remain than one call marks; call again.
    pub more: bool,
}

/// The ids once each, in first-seen order.
fn distinct(ids: &[MessageId]) -> Vec<MessageId> {
    let mut seen = HashSet::new();
    ids.iter().filter(|id| seen.insert(*id)).cloned().collect()
}

/// Applies read receipts.
#[derive(Clone)]
pub struct ReceiptService {
    store: Arc<dyn HistoryStore>,
    notifier: Arc<dyn UserNotifier>,
    invoker: Arc<dyn Invoker>,
    clock: Arc<dyn Clock>,
}

impl ReceiptService {
    /// Marks rows in `store`, tells sessions through `notifier`, hands chunks to `invoker`.
    pub fn new(
        store: Arc<dyn HistoryStore>,
        notifier: Arc<dyn UserNotifier>,
        invoker: Arc<dyn Invoker>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            notifier,
            invoker,
            clock,
        }
    }

    /// Marks the ids read and sends the ones that changed to the user's live sessions, then
    /// clears their pending receipt. A row whose receipt did not go out (the send failed, the
    /// function timed out) stays pending, so repeating the call — Lambda's retry, the
    /// client's — receipts it: receipts are at least once. Ids the user has no row for are
    /// reported `missing`. When some marks fail, the receipt for the others is still sent and
    /// the first failure is returned.
    pub async fn mark_read(
        &self,
        user_id: UserId,
        ids: &[MessageId],
    ) -> Result<ReceiptReport, PortError> {
        let ids = distinct(ids);
        let asked = ids.len();
        let outcomes: Vec<(MessageId, Result<Marked, PortError>)> = futures::stream::iter(ids)
            .map(|id| async move {
                let outcome = self.store.mark_read(user_id, &id).await;
                (id, outcome)
            })
            .buffered(MARK_CONCURRENCY)
            .collect()
            .await;
        let mut report = ReceiptReport::default();
        let mut failures = 0;
        let mut first_failure = None;
        for (id, outcome) in outcomes {
            match outcome {
                Ok(Marked::Now) => report.changed.push(id),
                Ok(Marked::Before) => {}
                Ok(Marked::Missing) => report.missing.push(id),
                Err(error) => {
                    failures += 1;
                    first_failure.get_or_insert(error);
                }
            }
        }
        report.receipts = self.send_receipts(user_id, &report.changed).await?;
        // Only once the receipts went out: a failure up to here leaves the rows pending.
        let cleared: Vec<Result<(), PortError>> = futures::stream::iter(report.changed.clone())
            .map(|id| async move { self.store.receipt_sent(user_id, &id).await })
            .buffer_unordered(MARK_CONCURRENCY)
            .collect()
            .await;
        if let Some(Err(error)) = cleared.into_iter().find(Result::is_err) {
            // The receipt went out; the row stays pending, so a later call sends it again
            // (clients treat a receipt as idempotent).
            tracing::warn!(user_id = %user_id, %error, "a pending receipt was not cleared");
        }
        tracing::info!(
            user_id = %user_id,
            asked,
            changed = report.changed.len(),
            missing = report.missing.len(),
            failed = failures,
            receipts = report.receipts,
            "read receipts applied"
        );
        match first_failure {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    /// Marks read the user's unread messages created at or before `created_up_to` — at most
    /// [`MAX_SYNC_IDS`] per call; `more` says when others remain, for the caller to call again.
    pub async fn mark_read_as_of(
        &self,
        user_id: UserId,
        created_up_to: u64,
    ) -> Result<ReceiptReport, PortError> {
        let (ids, more) = self.unread(user_id, created_up_to, MAX_SYNC_IDS).await?;
        let mut report = self.mark_read(user_id, &ids).await?;
        report.more = more;
        Ok(report)
    }

    /// Up to `limit` of the user's unread ids up to `created_up_to`, and whether there are more.
    async fn unread(
        &self,
        user_id: UserId,
        created_up_to: u64,
        limit: usize,
    ) -> Result<(Vec<MessageId>, bool), PortError> {
        let mut ids = self
            .store
            .unread_up_to(user_id, created_up_to, self.clock.now(), limit + 1)
            .await?;
        let more = ids.len() > limit;
        ids.truncate(limit);
        Ok((ids, more))
    }

    /// Runs one chunk handed to the `history` function.
    pub async fn apply(&self, job: &ReceiptJob) -> Result<ReceiptReport, PortError> {
        self.mark_read(job.user_id, &job.message_ids).await
    }

    /// Hands the ids to the `history` function in chunks of [`ASYNC_CHUNK`]; returns how many
    /// chunks. Each chunk sends its own receipt.
    pub async fn hand_off(&self, user_id: UserId, ids: &[MessageId]) -> Result<usize, PortError> {
        let limits = HandOffLimits {
            max_items: ASYNC_CHUNK,
            max_bytes: CHUNK_BYTES,
        };
        let count = self
            .invoker
            .hand_off(
                AsyncFunction::History,
                distinct(ids),
                limits,
                |message_ids| {
                    HistoryTask::Receipts(ReceiptJob {
                        user_id,
                        message_ids,
                    })
                },
            )
            .await?;
        tracing::info!(user_id = %user_id, ids = ids.len(), chunks = count, "read receipts handed off");
        Ok(count)
    }

    /// Finds the user's unread messages up to `created_up_to` — at most [`MAX_ASYNC_IDS`] per
    /// call — and hands them off; returns the chunks and whether others remain.
    pub async fn hand_off_as_of(
        &self,
        user_id: UserId,
        created_up_to: u64,
    ) -> Result<(usize, bool), PortError> {
        let (ids, more) = self.unread(user_id, created_up_to, MAX_ASYNC_IDS).await?;
        Ok((self.hand_off(user_id, &ids).await?, more))
    }

    /// Dispatches the changed ids to every session of the user as SQS-only messages (no
    /// history row); returns how many messages.
    async fn send_receipts(
        &self,
        user_id: UserId,
        changed: &[MessageId],
    ) -> Result<usize, PortError> {
        let groups = cut(
            changed.iter().cloned(),
            IDS_PER_RECEIPT,
            RECEIPT_BYTES,
            256,
            |id| id.as_str().len() + 3,
        );
        let count = groups.len();
        for ids in groups {
            let message = receipt_message(user_id, ids);
            self.notifier.notify_user(user_id, message).await?;
        }
        Ok(count)
    }
}

/// `{"_type":"message-read-receipt","userId":..,"messages-receipted":[..],"_sqs_only":1}` with a
/// fresh `messageId`, as the original stack sent them.
fn receipt_message(user_id: UserId, ids: Vec<MessageId>) -> Message {
    let mut fields = Map::new();
    fields.insert("_type".to_string(), Value::from(RECEIPT_TYPE));
    fields.insert("userId".to_string(), Value::from(user_id.get()));
    let ids: Vec<Value> = ids
        .into_iter()
        .map(|id| Value::from(String::from(id)))
        .collect();
    fields.insert(RECEIPTED_FIELD.to_string(), Value::Array(ids));
    fields.insert(SQS_ONLY_FIELD.to_string(), Value::from(1));
    Message::new(fields, MessageId::random).expect("a receipt names no messageId of its own")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::send::Sender;
    use crate::dispatch::{DispatchSettings, Dispatcher};
    use crate::history::write::HistoryWriter;
    use crate::model::session::Session;
    use crate::ports::HistoryRow;
    use crate::testing::ManualClock;
    use crate::testing::memory::{
        MemoryHistory, MemoryQueues, MemorySessionStore, RecordingInvoker, seed_session,
    };
    use serde_json::json;

    const NOW: u64 = 10_000;
    const USER: u64 = 200;

    struct Fixture {
        history: Arc<MemoryHistory>,
        queues: Arc<MemoryQueues>,
        sessions: Arc<MemorySessionStore>,
        invoker: Arc<RecordingInvoker>,
        receipts: ReceiptService,
    }

    fn user(id: u64) -> UserId {
        UserId::try_from(id).unwrap()
    }

    fn id(raw: &str) -> MessageId {
        MessageId::parse(raw).unwrap()
    }

    /// The user has rows m0..m9 created at NOW-100+n.
    async fn fixture() -> Fixture {
        let history = Arc::new(MemoryHistory::default());
        let queues = Arc::new(MemoryQueues::default());
        let sessions = Arc::new(MemorySessionStore::default());
        let invoker = Arc::new(RecordingInvoker::default());
        let clock = Arc::new(ManualClock::at(NOW));
        let dispatcher = Dispatcher::new(
            sessions.clone(),
            Sender::new(queues.clone(), 4),
            HistoryWriter::new(history.clone(), 86_400, 2),
            invoker.clone(),
            clock.clone(),
            DispatchSettings::default(),
        );
        let rows: Vec<HistoryRow> = (0..10)
            .map(|n| HistoryRow {
                user_id: user(USER),
                message_id: format!("m{n}"),
                created: NOW - 100 + n,
                ttl: NOW + 86_400,
                message: "{}".into(),
            })
            .collect();
        history.write_batch(&rows).await.unwrap();
        let receipts = ReceiptService::new(
            history.clone(),
            Arc::new(dispatcher),
            invoker.clone(),
            clock,
        );
        Fixture {
            history,
            queues,
            sessions,
            invoker,
            receipts,
        }
    }

    async fn session(f: &Fixture, user_id: u64, name: &str, expires: u64) -> Session {
        seed_session(&f.sessions, &f.queues, 1, user_id, name, expires).await
    }

    fn received(f: &Fixture, session: &Session) -> Vec<Value> {
        f.queues.opened(&session.queue.url, &session.aes_key)
    }

    fn read_ids(f: &Fixture) -> Vec<String> {
        (0..10)
            .map(|n| format!("m{n}"))
            .filter(|m| f.history.is_read(user(USER), m))
            .collect()
    }

    #[tokio::test]
    async fn receipting_some_flips_those_only_and_every_live_session_gets_one_receipt() {
        let f = fixture().await;
        let phone = session(&f, USER, "phone", NOW + 60).await;
        let laptop = session(&f, USER, "laptop", NOW + 60).await;
        let stranger = session(&f, USER + 1, "phone", NOW + 60).await;
        let report = f
            .receipts
            .mark_read(user(USER), &[id("m3"), id("m1"), id("m3"), id("nope")])
            .await
            .unwrap();
        assert_eq!(report.changed, [id("m3"), id("m1")]);
        assert_eq!(report.receipts, 1);
        assert_eq!(read_ids(&f), ["m1", "m3"]);
        for session in [&phone, &laptop] {
            let got = received(&f, session);
            assert_eq!(got.len(), 1);
            let mut receipt = got[0].clone();
            assert!(receipt["messageId"].is_string());
            receipt.as_object_mut().unwrap().remove("messageId");
            assert_eq!(
                receipt,
                json!({"_type": "message-read-receipt", "userId": 200,
                       "messages-receipted": ["m3", "m1"], "_sqs_only": 1})
            );
        }
        assert!(received(&f, &stranger).is_empty());
        assert_eq!(f.history.len(), 10, "a receipt writes no history row");
    }

    #[tokio::test]
    async fn receipting_again_or_unknown_ids_changes_nothing_and_sends_nothing() {
        let f = fixture().await;
        let phone = session(&f, USER, "phone", NOW + 60).await;
        f.receipts.mark_read(user(USER), &[id("m2")]).await.unwrap();
        let again = f.receipts.mark_read(user(USER), &[id("m2")]).await.unwrap();
        assert_eq!(again, ReceiptReport::default());
        let stranger = f.receipts.mark_read(user(7), &[id("m2")]).await.unwrap();
        assert_eq!(
            stranger,
            ReceiptReport {
                missing: vec![id("m2")],
                ..ReceiptReport::default()
            },
            "an id without a row is answered as missing, for the caller to retry"
        );
        assert_eq!(received(&f, &phone).len(), 1, "only the first receipt");
    }

    #[tokio::test]
    async fn a_set_read_whose_receipt_failed_sends_it_when_repeated() {
        let f = fixture().await;
        let phone = session(&f, USER, "phone", NOW + 60).await;
        // The receipt cannot be sent: reading the user's sessions fails.
        f.sessions
            .fail_reads(Some(crate::ports::PortErrorKind::Transient));
        assert!(f.receipts.mark_read(user(USER), &[id("m4")]).await.is_err());
        assert!(f.history.receipt_pending(user(USER), "m4"));
        f.sessions.fail_reads(None);
        let retried = f.receipts.mark_read(user(USER), &[id("m4")]).await.unwrap();
        assert_eq!((retried.changed, retried.receipts), (vec![id("m4")], 1));
        let got = received(&f, &phone);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["messages-receipted"], json!(["m4"]));
        assert!(!f.history.receipt_pending(user(USER), "m4"));
        // Once receipted, a repeat sends nothing.
        let again = f.receipts.mark_read(user(USER), &[id("m4")]).await.unwrap();
        assert_eq!(again.receipts, 0);
    }

    #[tokio::test]
    async fn as_of_marks_at_most_the_sync_cap_and_says_when_more_remain() {
        let f = fixture().await;
        let rows: Vec<HistoryRow> = (0..MAX_SYNC_IDS + 5)
            .map(|n| HistoryRow {
                user_id: user(USER),
                message_id: format!("bulk{n}"),
                created: NOW - 50,
                ttl: NOW + 86_400,
                message: "{}".into(),
            })
            .collect();
        for chunk in rows.chunks(25) {
            f.history.write_batch(chunk).await.unwrap();
        }
        let first = f.receipts.mark_read_as_of(user(USER), NOW).await.unwrap();
        assert_eq!((first.changed.len(), first.more), (MAX_SYNC_IDS, true));
        let second = f.receipts.mark_read_as_of(user(USER), NOW).await.unwrap();
        assert_eq!((second.changed.len(), second.more), (15, false));
    }

    #[tokio::test]
    async fn as_of_marks_every_unread_message_up_to_then() {
        let f = fixture().await;
        f.receipts.mark_read(user(USER), &[id("m1")]).await.unwrap();
        let report = f
            .receipts
            .mark_read_as_of(user(USER), NOW - 100 + 4)
            .await
            .unwrap();
        let mut changed: Vec<&str> = report.changed.iter().map(MessageId::as_str).collect();
        changed.sort();
        assert_eq!(changed, ["m0", "m2", "m3", "m4"]);
        assert_eq!(read_ids(&f), ["m0", "m1", "m2", "m3", "m4"]);
    }

    #[tokio::test]
    async fn handed_off_work_goes_to_history_in_chunks_of_300_and_applies_there() {
        let f = fixture().await;
        let mut ids: Vec<MessageId> = (0..10).map(|n| id(&format!("m{n}"))).collect();
        ids.extend((0..990).map(|n| id(&format!("missing-{n}"))));
        assert_eq!(f.receipts.hand_off(user(USER), &ids).await.unwrap(), 4);
        let payloads = f.invoker.payloads(AsyncFunction::History);
        let mut total = 0;
        for payload in &payloads {
            let HistoryTask::Receipts(job) = serde_json::from_slice(payload).unwrap() else {
                panic!("not a receipt job");
            };
            assert!(job.message_ids.len() <= ASYNC_CHUNK);
            total += job.message_ids.len();
            f.receipts.apply(&job).await.unwrap();
        }
        assert_eq!(total, 1_000);
        assert_eq!(read_ids(&f).len(), 10);
    }
}
