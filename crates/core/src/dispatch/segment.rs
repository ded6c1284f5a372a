//! The broadcast path: a message for everyone is not resolved in the process that accepted it.
//! [`Dispatcher::dispatch`] plans it — one [`SegmentJob`] per scan segment, async-invoked on the
//! `dispatcher` function — and answers at once. Each [`SegmentWorker`] pages through its segment
//! with a projection of routing attributes only, hands every page's deliveries to `sender` and
//! its users to `history`, and hands the rest of the segment (the scan position) to a fresh
//! `dispatcher` invocation when its deadline nears. Memory is bounded by one page.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::dispatch::send::{Delivery, SendJob};
use crate::dispatch::{DispatchReport, DispatchSettings, Dispatcher};
use crate::history::HistoryTask;
use crate::history::write::HistoryJob;
use crate::model::ids::UserId;
use crate::model::message::Message;
use crate::model::recipient::{Recipient, ScanPosition};
use crate::ports::{AsyncFunction, HandOffLimits, Invoker, PortError, SessionStore};

/// A broadcast gets at least one segment per this many sessions (by the table's estimate), so
/// a growing table spreads over more workers without a config change.
pub const SESSIONS_PER_SEGMENT: u64 = 500_000;
/// At most this many segments (DynamoDB allows up to 1,000,000; each is a Lambda invocation).
pub const MAX_SEGMENTS: u64 = 256;

fn yes() -> bool {
    true
}

/// One scan segment of a broadcast: the `dispatcher` function's async payload.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentJob {
    /// The message's JSON text, stamped and final.
    pub message: String,
    /// Its id, for history rows.
    pub message_id: String,
    /// When it was accepted, epoch seconds (history's `created`).
    pub created: u64,
    /// This worker's segment, `0..total_segments`.
    pub segment: u32,
    /// How many segments the scan is cut into.
    pub total_segments: u32,
    /// Where to resume (the last key an earlier worker read); absent at the segment's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<ScanPosition>,
    /// Whether users' history gets the message (false for `_sqs_only`).
    #[serde(default = "yes")]
    pub history: bool,
    /// How many workers handed this segment on before this one.
    #[serde(default)]
    pub generation: u32,
}

impl std::fmt::Debug for SegmentJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentJob")
            .field("message_id", &self.message_id)
            .field("segment", &self.segment)
            .field("total_segments", &self.total_segments)
            .field("start", &self.start)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// What one segment worker did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentReport {
    /// The message.
    pub message_id: String,
    /// The segment.
    pub segment: u32,
    /// Scan pages read.
    pub pages: usize,
    /// Rows read.
    pub rows: usize,
    /// Deliveries handed to `sender`.
    pub deliveries: usize,
    /// Rows skipped because their credentials had expired.
    pub skipped_expired: usize,
    /// `sender` invocations.
    pub sender_batches: usize,
    /// `history` invocations.
    pub history_batches: usize,
    /// Set when the rest of the segment was handed to a fresh `dispatcher` invocation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handed_on_at: Option<ScanPosition>,
}

/// Pages through one segment of a broadcast.
#[derive(Clone)]
pub struct SegmentWorker {
    store: Arc<dyn SessionStore>,
    invoker: Arc<dyn Invoker>,
    clock: Arc<dyn Clock>,
    settings: DispatchSettings,
    /// The rest of the segment is handed on once the deadline is this close.
    margin: Duration,
}

impl SegmentWorker {
    /// Wires a worker; `margin` before its deadline it hands the rest of its segment on.
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

    /// Runs one job: page by page until the segment ends, or until `deadline` (less the margin)
    /// nears, when the position is handed to a fresh `dispatcher` invocation. At least one page
    /// is read per invocation, so a chain of workers always makes progress. A failure is
    /// returned (Lambda retries the job; pages sent again are deduped by message id).
    pub async fn run(
        &self,
        job: &SegmentJob,
        deadline: Option<Instant>,
    ) -> Result<SegmentReport, PortError> {
        let mut report = SegmentReport {
            message_id: job.message_id.clone(),
            segment: job.segment,
            ..SegmentReport::default()
        };
        let mut position = job.start.clone();
        loop {
            let page = self
                .store
                .scan_page(
                    job.segment,
                    job.total_segments,
                    position.as_ref(),
                    self.settings.scan_page,
                )
                .await?;
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
            segment = report.segment,
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

    /// Hands one page on: its live sessions to `sender`, its users to `history`.
    async fn hand_off_page(
        &self,
        job: &SegmentJob,
        recipients: Vec<Recipient>,
        report: &mut SegmentReport,
    ) -> Result<(), PortError> {
        let now = self.clock.now();
        let users: Vec<UserId> = if job.history {
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
        let deliveries: Vec<Delivery> = recipients
            .into_iter()
            .filter(|recipient| recipient.is_live(now))
            .map(|recipient| Delivery {
                queue_url: recipient.queue_url,
                aes_key: recipient.aes_key,
                message: 0,
            })
            .collect();
        report.deliveries += deliveries.len();
        report.skipped_expired += total - deliveries.len();
        let sends = self.invoker.hand_off(
            AsyncFunction::Sender,
            deliveries,
            HandOffLimits {
                max_items: self.settings.sender_batch,
                max_bytes: self.settings.payload_limit,
            },
            |deliveries| SendJob {
                messages: vec![job.message.clone()],
                deliveries,
                attempt: 0,
            },
        );
        let history = self.invoker.hand_off(
            AsyncFunction::History,
            users,
            HandOffLimits {
                max_items: self.settings.history_batch,
                max_bytes: self.settings.payload_limit,
            },
            |user_ids| {
                HistoryTask::Write(HistoryJob {
                    message_id: job.message_id.clone(),
                    message: job.message.clone(),
                    created: job.created,
                    user_ids,
                })
            },
        );
        let (sender_batches, history_batches) = futures::try_join!(sends, history)?;
        report.sender_batches += sender_batches;
        report.history_batches += history_batches;
        Ok(())
    }
}

impl Dispatcher {
    /// A worker for this dispatcher's store, invoker and settings.
    pub fn segment_worker(&self, margin: Duration) -> SegmentWorker {
        SegmentWorker::new(
            self.store.clone(),
            self.invoker.clone(),
            self.clock.clone(),
            self.settings.clone(),
            margin,
        )
    }

    /// Plans a broadcast: one [`SegmentJob`] per segment, async-invoked on `dispatcher`; answers
    /// with the plan (`accepted`), not with what was sent.
    pub(super) async fn plan_broadcast(
        &self,
        message: &Message,
    ) -> Result<DispatchReport, PortError> {
        let estimated = match self.store.estimated_count().await {
            Ok(count) => count,
            Err(error) => {
                tracing::warn!(%error, "no table size estimate; planning the configured segments");
                None
            }
        };
        let segments = segment_count(self.settings.broadcast_segments, estimated);
        let text = String::from_utf8(message.to_json()).expect("serde_json writes UTF-8");
        let template = SegmentJob {
            message: text,
            message_id: message.id().to_string(),
            created: self.clock.now(),
            segment: 0,
            total_segments: segments,
            start: None,
            history: !message.is_sqs_only(),
            generation: 0,
        };
        let invocations = (0..segments).map(|segment| {
            let job = SegmentJob {
                segment,
                ..template.clone()
            };
            let payload = serde_json::to_vec(&job).expect("a segment job serializes");
            self.invoker
                .invoke_async(AsyncFunction::Dispatcher, payload)
        });
        futures::future::try_join_all(invocations).await?;
        let report = DispatchReport {
            message_id: template.message_id,
            accepted: true,
            segments: Some(segments as usize),
            estimated_sessions: estimated,
            ..DispatchReport::default()
        };
        tracing::info!(
            message_id = %report.message_id,
            segments,
            estimated_sessions = estimated,
            "broadcast planned"
        );
        Ok(report)
    }
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
    use crate::dispatch::Target;
    use crate::dispatch::send::Sender;
    use crate::history::write::HistoryWriter;
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

    /// Queue URL → how many deliveries the `sender` payloads carry for it.
    fn deliveries(f: &Fixture) -> BTreeMap<String, usize> {
        let mut seen = BTreeMap::new();
        for payload in f.invoker.payloads(AsyncFunction::Sender) {
            let job: SendJob = serde_json::from_slice(&payload).unwrap();
            assert_eq!(job.messages.len(), 1);
            for delivery in job.deliveries {
                *seen.entry(delivery.queue_url).or_insert(0) += 1;
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
            assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), urls);
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
            message: "{}".into(),
            message_id: "m".into(),
            created: NOW,
            segment: 0,
            total_segments: 1,
            start: None,
            history: true,
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
        assert_eq!(
            (rest.generation, rest.segment, rest.message_id.as_str()),
            (1, 0, "m")
        );
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

    #[test]
    fn the_segment_count_grows_with_the_table() {
        assert_eq!(segment_count(4, None), 4);
        assert_eq!(segment_count(4, Some(1_000_000)), 4);
        assert_eq!(segment_count(4, Some(3_000_001)), 7);
        assert_eq!(segment_count(0, None), 1);
        assert_eq!(segment_count(4, Some(u64::MAX)), MAX_SEGMENTS as u32);
    }
}
