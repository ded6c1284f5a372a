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
            .filter(|recipient| recipient.can_receive(now))
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
