//! The segmented path: a message for everyone — or for an account or a channel too large to
//! read in the process that accepted it — is not resolved there. [`Dispatcher::dispatch`] plans it — one
//! [`SegmentJob`] per [`Scope`] (a scan segment of the table, or the account's index), async-
//! invoked on the `dispatcher` function — and answers at once. Each [`SegmentWorker`] pages
//! through its scope with a projection of routing attributes only, hands every page's
//! deliveries to `sender` and its users to `history`, and hands the rest of the scope (the
//! position) to a fresh `dispatcher` invocation when its deadline nears. Memory is bounded by
//! one page. Several messages for the same scope (a Kinesis batch) share one job, so the table
//! is read once for all of them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::dispatch::DispatchSettings;
use crate::dispatch::letter::SessionRef;
use crate::dispatch::send::{Delivery, SendJob};
use crate::history::HistoryTask;
use crate::history::write::HistoryJob;
use crate::model::channel::ChannelName;
use crate::model::ids::{AccountId, UserId};
use crate::model::recipient::{Recipient, RecipientPage, ScanPosition};
use crate::ports::{AsyncFunction, HandOffLimits, Invoker, PortError, SessionStore};

/// A broadcast gets at least one segment per this many sessions (by the table's estimate), so
/// a growing table spreads over more workers without a config change.
pub const SESSIONS_PER_SEGMENT: u64 = 500_000;
/// At most this many segments (DynamoDB allows up to 1,000,000; each is a Lambda invocation).
pub const MAX_SEGMENTS: u64 = 256;
/// At most this many messages share one segment job.
pub const MAX_MESSAGES_PER_JOB: usize = 100;

fn yes() -> bool {
    true
}

/// What a segment job reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Scope {
    /// One segment of a parallel scan of the whole table: a broadcast.
    Segment {
        /// This worker's segment, `0..total_segments`.
        segment: u32,
        /// How many segments the scan is cut into.
        total_segments: u32,
    },
    /// Every session of one account, from the account index.
    Account {
        /// The account.
        account_id: AccountId,
    },
    /// Every live session subscribed to a channel, from the channel's memberships.
    Channel {
        /// The channel.
        channel: ChannelName,
    },
}

impl Scope {
    /// The segments of a broadcast, `0..total`.
    pub fn segments(total: u32) -> Vec<Self> {
        (0..total)
            .map(|segment| Self::Segment {
                segment,
                total_segments: total,
            })
            .collect()
    }
}

/// One message of a segment job, stamped and final.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedMessage {
    /// The message's JSON text.
    pub message: String,
    /// Its id, for history rows.
    pub message_id: String,
    /// When it was accepted, epoch seconds (history's `created`).
    pub created: u64,
    /// Whether users' history gets the message (false for `_sqs_only`).
    #[serde(default = "yes")]
    pub history: bool,
}

impl std::fmt::Debug for PlannedMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedMessage")
            .field("message_id", &self.message_id)
            .finish_non_exhaustive()
    }
}

/// One scope of a segmented dispatch: the `dispatcher` function's async payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentJob {
    /// The messages every session of the scope gets, in order.
    pub messages: Vec<PlannedMessage>,
    /// What to read.
    pub scope: Scope,
    /// Where to resume (the last key an earlier worker read); absent at the scope's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<ScanPosition>,
    /// How many workers handed this scope on before this one.
    #[serde(default)]
    pub generation: u32,
}

/// What one segment worker did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentReport {
    /// The first message's id (the log line names the job by it).
    pub message_id: String,
    /// Messages in the job.
    pub messages: usize,
    /// What was read.
    pub scope: Scope,
    /// Pages read.
    pub pages: usize,
    /// Rows read.
    pub rows: usize,
    /// Deliveries handed to `sender` (session × message).
    pub deliveries: usize,
    /// Rows skipped because their session's ttl had passed.
    pub skipped_expired: usize,
    /// `sender` invocations.
    pub sender_batches: usize,
    /// `history` invocations.
    pub history_batches: usize,
    /// Set when the rest of the scope was handed to a fresh `dispatcher` invocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handed_on_at: Option<ScanPosition>,
}

/// Pages through one scope of a segmented dispatch.
#[derive(Clone)]
pub struct SegmentWorker {
    store: Arc<dyn SessionStore>,
    invoker: Arc<dyn Invoker>,
    clock: Arc<dyn Clock>,
    settings: DispatchSettings,
    /// The rest of the scope is handed on once the deadline is this close.
    margin: Duration,
}

impl SegmentWorker {
    /// Wires a worker; `margin` before its deadline it hands the rest of its scope on.
    pub fn new(
        store: Arc<dyn SessionStore>,
        invoker: Arc<dyn Invoker>,
        clock: Arc<dyn Clock>,
        settings: DispatchSettings,
        margin: Duration,
    ) -> Self {
        Self {
            store,
            invoker,
            clock,
            settings,
            margin,
        }
    }

    /// Runs one job: page by page until the scope ends, or until `deadline` (less the margin)
    /// nears, when the position is handed to a fresh `dispatcher` invocation. At least one page
    /// is read per invocation, so a chain of workers always makes progress. A failure is
    /// returned (Lambda retries the job; pages sent again are deduped by message id).
    pub async fn run(
        &self,
        job: &SegmentJob,
        deadline: Option<Instant>,
    ) -> Result<SegmentReport, PortError> {
        let mut report = SegmentReport {
            message_id: job
                .messages
                .first()
                .map(|message| message.message_id.clone())
                .unwrap_or_default(),
            messages: job.messages.len(),
            scope: job.scope.clone(),
            pages: 0,
            rows: 0,
            deliveries: 0,
            skipped_expired: 0,
            sender_batches: 0,
            history_batches: 0,
            handed_on_at: None,
        };
        let mut position = job.start.clone();
        loop {
            let page = self.read_page(&job.scope, position.as_ref()).await?;
            report.pages += 1;
            report.rows += page.recipients.len();
            self.hand_off_page(job, page.recipients, &mut report)
                .await?;
            position = page.next;
            let Some(next) = &position else { break };
            if deadline.is_some_and(|deadline| Instant::now() + self.margin >= deadline) {
                let rest = SegmentJob {
                    start: Some(next.clone()),
                    generation: job.generation + 1,
                    ..job.clone()
                };
                let payload = serde_json::to_vec(&rest).expect("a segment job serializes");
                self.invoker
                    .invoke_async(AsyncFunction::Dispatcher, payload)
                    .await?;
                report.handed_on_at = Some(next.clone());
                break;
            }
        }
        tracing::info!(
            message_id = %report.message_id,
            messages = report.messages,
            scope = ?report.scope,
            generation = job.generation,
            pages = report.pages,
            rows = report.rows,
            deliveries = report.deliveries,
            expired = report.skipped_expired,
            sender_batches = report.sender_batches,
            history_batches = report.history_batches,
            handed_on = report.handed_on_at.is_some(),
            "segment worked"
        );
        Ok(report)
    }

    async fn read_page(
        &self,
        scope: &Scope,
        position: Option<&ScanPosition>,
    ) -> Result<RecipientPage, PortError> {
        let limit = self.settings.scan_page;
        match scope {
            Scope::Segment {
                segment,
                total_segments,
            } => {
                self.store
                    .scan_page(*segment, *total_segments, position, limit)
                    .await
            }
            Scope::Account { account_id } => {
                self.store.account_page(*account_id, position, limit).await
            }
            Scope::Channel { channel } => self.store.channel_page(channel, position, limit).await,
        }
    }

    /// Hands one page on: its live sessions to `sender` (every message of the job for each, so
    /// a queue's entries share SendMessageBatch calls), its users to `history`.
    async fn hand_off_page(
        &self,
        job: &SegmentJob,
        recipients: Vec<Recipient>,
        report: &mut SegmentReport,
    ) -> Result<(), PortError> {
        let now = self.clock.now();
        // A channel's ended memberships are not subscribers: no history for their users.
        let recipients: Vec<Recipient> = match job.scope {
            Scope::Channel { .. } => recipients
                .into_iter()
                .filter(|recipient| recipient.is_live(now))
                .collect(),
            _ => recipients,
        };
        let users: Vec<UserId> = if job.messages.iter().any(|message| message.history) {
            recipients
                .iter()
                .map(|recipient| recipient.user_id)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        } else {
            Vec::new()
        };
        let total = recipients.len();
        let live: Vec<Recipient> = recipients
            .into_iter()
            .filter(|recipient| recipient.is_live(now))
            .collect();
        report.skipped_expired += total - live.len();
        let deliveries = deliveries_of(live, job.messages.len());
        report.deliveries += deliveries.len();
        let texts: Vec<String> = job
            .messages
            .iter()
            .map(|message| message.message.clone())
            .collect();
        let sends = self.invoker.hand_off(
            AsyncFunction::Sender,
            deliveries,
            HandOffLimits {
                // Whole recipients per payload, so a cut by count splits no queue's entries.
                max_items: (self.settings.sender_batch / job.messages.len().max(1)).max(1)
                    * job.messages.len().max(1),
                max_bytes: self.settings.payload_limit,
            },
            |deliveries| SendJob {
                messages: texts.clone(),
                deliveries,
                attempt: 0,
            },
        );
        let histories = job
            .messages
            .iter()
            .filter(|message| message.history)
            .map(|message| {
                self.invoker.hand_off(
                    AsyncFunction::History,
                    users.clone(),
                    HandOffLimits {
                        max_items: self.settings.history_batch,
                        max_bytes: self.settings.payload_limit,
                    },
                    |user_ids| {
                        HistoryTask::Write(HistoryJob {
                            message_id: message.message_id.clone(),
                            message: message.message.clone(),
                            created: message.created,
                            user_ids,
                        })
                    },
                )
            });
        let (sender_batches, history_batches) =
            futures::try_join!(sends, futures::future::try_join_all(histories))?;
        report.sender_batches += sender_batches;
        report.history_batches += history_batches.iter().sum::<usize>();
        Ok(())
    }
}

/// Every message for every recipient, a recipient's deliveries side by side.
fn deliveries_of(live: Vec<Recipient>, messages: usize) -> Vec<Delivery> {
    if messages == 1 {
        // The common case moves the strings instead of copying them.
        return live
            .into_iter()
            .map(|recipient| Delivery {
                session: Some(SessionRef {
                    user_id: recipient.user_id,
                    session_id: recipient.session_id,
                }),
                created: recipient.created,
                queue_url: recipient.queue_url,
                aes_key: recipient.aes_key,
                message: 0,
            })
            .collect();
    }
    live.iter()
        .flat_map(|recipient| (0..messages).map(|message| Delivery::to(recipient, message)))
        .collect()
}

/// The configured segment count, raised for a large table, within [1, MAX_SEGMENTS].
pub fn segment_count(configured: usize, estimated: Option<u64>) -> u32 {
    let by_size = estimated.map_or(0, |count| count.div_ceil(SESSIONS_PER_SEGMENT));
    (configured as u64).max(by_size).clamp(1, MAX_SEGMENTS) as u32
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::dispatch::Dispatcher;
    use crate::dispatch::Target;
    use crate::dispatch::send::Sender;
    use crate::history::write::HistoryWriter;
    use crate::model::ids::AccountId;
    use crate::model::message::Message;
    use crate::model::message::MessageId;
    use crate::testing::ManualClock;
    use crate::testing::memory::{
        MemoryHistory, MemoryQueues, MemorySessionStore, RecordingInvoker, seed_session,
    };

    const NOW: u64 = 1_000;

    struct Fixture {
        store: Arc<MemorySessionStore>,
        queues: Arc<MemoryQueues>,
        invoker: Arc<RecordingInvoker>,
        dispatcher: Dispatcher,
    }

    fn fixture(scan_page: usize, segments: usize) -> Fixture {
        let store = Arc::new(MemorySessionStore::default());
        let queues = Arc::new(MemoryQueues::default());
        let invoker = Arc::new(RecordingInvoker::default());
        let dispatcher = Dispatcher::new(
            store.clone(),
            Sender::new(queues.clone(), 4),
            HistoryWriter::new(Arc::new(MemoryHistory::default()), 86_400, 4),
            invoker.clone(),
            Arc::new(ManualClock::at(NOW)),
            DispatchSettings {
                sender_batch: 4,
                history_batch: 3,
                broadcast_segments: segments,
                scan_page,
                ..DispatchSettings::default()
            },
        );
        Fixture {
            store,
            queues,
            invoker,
            dispatcher,
        }
    }

    fn message(text: &str) -> Message {
        let fields = serde_json::json!({"message": text});
        Message::new(fields.as_object().unwrap().clone(), || {
            MessageId::parse("m-b").unwrap()
        })
        .unwrap()
    }

    /// Plans a broadcast and runs every `dispatcher` payload — the planned ones and every
    /// hand-on — until none is left; returns how many worker runs it took.
    async fn broadcast(f: &Fixture, deadline: Option<Instant>) -> usize {
        let report = f
            .dispatcher
            .dispatch(&Target::Everyone, message("all"))
            .await
            .unwrap();
        assert!(report.accepted);
        run_workers(f, deadline).await
    }

    /// Runs every `dispatcher` payload, hand-ons included, until none is left.
    async fn run_workers(f: &Fixture, deadline: Option<Instant>) -> usize {
        let worker = f.dispatcher.segment_worker(Duration::from_millis(50));
        let mut ran = 0;
        while let Some(payload) = f.invoker.payloads(AsyncFunction::Dispatcher).get(ran) {
            let job: SegmentJob = serde_json::from_slice(payload).unwrap();
            worker.run(&job, deadline).await.unwrap();
            ran += 1;
            assert!(ran < 10_000, "the hand-on chain does not end");
        }
        ran
    }

    /// (queue URL, message) → how many deliveries the `sender` payloads carry for it.
    fn deliveries(f: &Fixture) -> BTreeMap<(String, String), usize> {
        let mut seen = BTreeMap::new();
        for payload in f.invoker.payloads(AsyncFunction::Sender) {
            let job: SendJob = serde_json::from_slice(&payload).unwrap();
            for delivery in job.deliveries {
                let message = job.messages[delivery.message].clone();
                *seen.entry((delivery.queue_url, message)).or_insert(0) += 1;
            }
        }
        seen
    }

    fn history_users(f: &Fixture) -> BTreeSet<UserId> {
        f.invoker
            .payloads(AsyncFunction::History)
            .iter()
            .flat_map(|payload| match serde_json::from_slice(payload).unwrap() {
                HistoryTask::Write(job) => job.user_ids,
                HistoryTask::Receipts(_) => panic!("no receipts here"),
            })
            .collect()
    }

    async fn seed(f: &Fixture, users: u64) -> BTreeSet<String> {
        let mut urls = BTreeSet::new();
        for user in 0..users {
            for session in ["a", "b"] {
                let s = seed_session(&f.store, &f.queues, 1, user, session, NOW + 60).await;
                urls.insert(s.queue.url);
            }
        }
        // One session past its ttl: read, not delivered, its user still gets history. (Lapsed
        // credentials alone do not stop delivery: the session can still renew and read.)
        let mut old = seed_session(&f.store, &f.queues, 1, users, "old", NOW - 1).await;
        old.ttl = NOW - 1;
        crate::ports::SessionStore::put(f.store.as_ref(), &old)
            .await
            .unwrap();
        urls
    }

    #[tokio::test]
    async fn a_segmented_scan_with_small_pages_reaches_every_session_exactly_once() {
        for deadline in [None, Some(Instant::now())] {
            let f = fixture(7, 4);
            let urls = seed(&f, 101).await;
            let runs = broadcast(&f, deadline).await;
            let seen = deliveries(&f);
            let queues: BTreeSet<String> = seen.keys().map(|(url, _)| url.clone()).collect();
            assert_eq!(queues, urls);
            assert!(seen.values().all(|n| *n == 1), "a queue got it twice");
            assert_eq!(
                history_users(&f).len(),
                102,
                "every user, the expired one's too"
            );
            if deadline.is_some() {
                // Past deadline: one page per worker, then the rest is handed on.
                assert!(
                    runs as u64 >= f.store.scan_pages() && runs > 4 * 5,
                    "{runs}"
                );
            } else {
                assert_eq!(runs, 4, "no hand-on without a deadline");
            }
        }
    }

    #[tokio::test]
    async fn a_worker_hands_the_rest_of_its_segment_on_when_its_deadline_nears() {
        let f = fixture(5, 1);
        seed(&f, 10).await;
        let job = SegmentJob {
            messages: vec![PlannedMessage {
                message: "{}".into(),
                message_id: "m".into(),
                created: NOW,
                history: true,
            }],
            scope: Scope::Segment {
                segment: 0,
                total_segments: 1,
            },
            start: None,
            generation: 0,
        };
        let worker = f.dispatcher.segment_worker(Duration::from_secs(2));
        // The deadline is within the margin: one page, then hand on.
        let report = worker
            .run(&job, Some(Instant::now() + Duration::from_secs(1)))
            .await
            .unwrap();
        assert_eq!((report.pages, report.rows), (1, 5));
        let position = report.handed_on_at.clone().expect("handed on");
        let payloads = f.invoker.payloads(AsyncFunction::Dispatcher);
        assert_eq!(payloads.len(), 1);
        let rest: SegmentJob = serde_json::from_slice(&payloads[0]).unwrap();
        assert_eq!(rest.start, Some(position));
        assert_eq!((rest.generation, &rest.scope), (1, &job.scope));
        assert_eq!(rest.messages, job.messages);
        // A far deadline: the worker finishes the segment itself.
        let report = worker
            .run(&rest, Some(Instant::now() + Duration::from_secs(60)))
            .await
            .unwrap();
        assert_eq!((report.rows, report.handed_on_at), (16, None));
        assert_eq!(f.invoker.payloads(AsyncFunction::Dispatcher).len(), 1);
    }

    #[tokio::test]
    async fn an_sqs_only_broadcast_writes_no_history() {
        let f = fixture(50, 2);
        seed(&f, 5).await;
        let fields = serde_json::json!({"_sqs_only": true});
        let message = Message::new(fields.as_object().unwrap().clone(), MessageId::random).unwrap();
        f.dispatcher
            .dispatch(&Target::Everyone, message)
            .await
            .unwrap();
        let worker = f.dispatcher.segment_worker(Duration::ZERO);
        for payload in f.invoker.payloads(AsyncFunction::Dispatcher) {
            worker
                .run(&serde_json::from_slice(&payload).unwrap(), None)
                .await
                .unwrap();
        }
        assert_eq!(deliveries(&f).len(), 10);
        assert!(f.invoker.payloads(AsyncFunction::History).is_empty());
    }

    #[tokio::test]
    async fn a_large_account_is_read_by_a_segment_worker_a_small_one_at_once() {
        let f = fixture(7, 4);
        let urls = seed(&f, 30).await; // account 1: 61 sessions
        let other = seed_session(&f.store, &f.queues, 2, 500, "x", NOW + 60).await;
        let account = AccountId::try_from(1).unwrap();
        let mut f = f;
        f.dispatcher.settings.large_account = 60;
        let report = f
            .dispatcher
            .dispatch(&Target::Account(account), message("acct"))
            .await
            .unwrap();
        assert!(report.accepted, "61 sessions > 60: segmented");
        assert_eq!(report.segments, Some(1));
        let jobs = f.invoker.payloads(AsyncFunction::Dispatcher);
        let job: SegmentJob = serde_json::from_slice(&jobs[0]).unwrap();
        assert_eq!(
            job.scope,
            Scope::Account {
                account_id: account
            }
        );
        run_workers(&f, Some(Instant::now())).await;
        let seen = deliveries(&f);
        let queues: BTreeSet<String> = seen.keys().map(|(url, _)| url.clone()).collect();
        assert_eq!(
            queues, urls,
            "every session of the account, none of another"
        );
        assert!(!queues.contains(&other.queue.url));
        assert!(seen.values().all(|n| *n == 1), "a queue got it twice");
        assert_eq!(history_users(&f).len(), 31);

        // At the threshold the account is read here and sent at once.
        f.dispatcher.settings.large_account = 61;
        let report = f
            .dispatcher
            .dispatch(&Target::Account(account), message("small"))
            .await
            .unwrap();
        assert!(!report.accepted);
        assert_eq!(report.counts.sessions_matched, 61);
    }

    #[tokio::test]
    async fn a_large_channel_is_read_by_a_segment_worker_and_reaches_only_live_subscribers() {
        use crate::model::channel::ChannelName;
        let mut f = fixture(7, 4);
        seed(&f, 30).await; // 61 sessions, one of them past its ttl
        let bystander = seed_session(&f.store, &f.queues, 1, 900, "x", NOW + 60).await;
        let channel = ChannelName::parse("prices:AAPL").unwrap();
        let mut subscribed = BTreeSet::new();
        for recipient in f.store.recipients() {
            if recipient.queue_url == bystander.queue.url {
                continue;
            }
            if recipient.is_live(NOW) {
                subscribed.insert(recipient.queue_url.clone());
            }
            f.store.put_membership(&channel, recipient);
        }
        f.dispatcher.settings.large_account = 20;
        let report = f
            .dispatcher
            .dispatch(
                &Target::Channel(channel.clone()),
                Message::new(
                    serde_json::json!({"message": "tick", "_history": true})
                        .as_object()
                        .unwrap()
                        .clone(),
                    || MessageId::parse("tick").unwrap(),
                )
                .unwrap(),
            )
            .await
            .unwrap();
        assert!(report.accepted, "61 members > 20: segmented");
        let jobs = f.invoker.payloads(AsyncFunction::Dispatcher);
        let job: SegmentJob = serde_json::from_slice(&jobs[0]).unwrap();
        assert_eq!(job.scope, Scope::Channel { channel });
        run_workers(&f, Some(Instant::now())).await;
        let seen = deliveries(&f);
        let queues: BTreeSet<String> = seen.keys().map(|(url, _)| url.clone()).collect();
        assert_eq!(queues, subscribed, "every live member, no one else");
        assert!(!queues.contains(&bystander.queue.url));
        assert!(seen.values().all(|n| *n == 1), "a queue got it twice");
        assert!(
            seen.keys()
                .all(|(_, text)| text.contains("\"channel\":\"prices:AAPL\""))
        );
        assert_eq!(
            history_users(&f).len(),
            30,
            "asked for: one row per live member's user"
        );
    }

    #[tokio::test]
    async fn broadcasts_dispatched_together_share_one_scan_and_one_batch_call_per_queue() {
        let f = fixture(7, 2);
        let urls = seed(&f, 20).await;
        let texts = ["one", "two", "three"];
        let items = texts
            .iter()
            .map(|text| {
                let fields = serde_json::json!({"message": text});
                let message =
                    Message::new(fields.as_object().unwrap().clone(), MessageId::random).unwrap();
                (Target::Everyone, message)
            })
            .collect();
        let report = f.dispatcher.dispatch_many(items).await.unwrap();
        assert_eq!(
            (report.segmented_targets, report.segmented_messages),
            (1, 3)
        );
        let jobs = f.invoker.payloads(AsyncFunction::Dispatcher);
        assert_eq!(
            jobs.len(),
            2,
            "one job per segment, carrying all three messages"
        );
        run_workers(&f, None).await;
        let pages_for_all_three = f.store.scan_pages();
        let seen = deliveries(&f);
        assert_eq!(seen.len(), urls.len() * 3, "every queue, every message");
        assert!(seen.values().all(|n| *n == 1));
        // Through the real sender: one SendMessageBatch per queue for the three messages.
        let sender = Sender::new(f.queues.clone(), 4);
        let before = f.queues.calls();
        for payload in f.invoker.payloads(AsyncFunction::Sender) {
            sender
                .send(&serde_json::from_slice(&payload).unwrap(), None)
                .await;
        }
        assert_eq!(f.queues.calls() - before, urls.len() as u64);
        // Three broadcasts one by one read the table three times.
        let g = fixture(7, 2);
        seed(&g, 20).await;
        for text in texts {
            g.dispatcher
                .dispatch(&Target::Everyone, message(text))
                .await
                .unwrap();
        }
        run_workers(&g, None).await;
        assert_eq!(g.store.scan_pages(), 3 * pages_for_all_three);
    }

    #[test]
    fn the_segment_count_grows_with_the_table() {
        assert_eq!(segment_count(4, None), 4);
        assert_eq!(segment_count(4, Some(1_000_000)), 4);
        assert_eq!(segment_count(4, Some(3_000_001)), 7);
        assert_eq!(segment_count(0, None), 1);
        assert_eq!(segment_count(4, Some(u64::MAX)), MAX_SEGMENTS as u32);
    }
}
