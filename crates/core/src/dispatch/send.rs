//! Sending: seal each delivery with its session's key and send them with SendMessageBatch —
//! grouped per queue, at most 10 entries and a byte limit per call, with bounded concurrency,
//! failed entries retried, and a deadline so a Lambda stops in time to report what it did not send.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::batch::cut;
use crate::clock::{Clock, SystemClock};
use crate::crypto::{SessionCipher, SessionKey};
use crate::dispatch::letter::{About, DeliveryRef, Letter, SessionRef};
use crate::model::recipient::Recipient;
use crate::ports::{AsyncFunction, BatchEntry, HandOffLimits, Invoker, QueueService};
use crate::ports::{PortError, PortErrorKind};
use crate::retry::{Stop, retry_leftovers};

/// SQS's limit on entries per SendMessageBatch.
pub const MAX_BATCH_ENTRIES: usize = 10;
/// SQS's limit on a whole SendMessageBatch request (1 MiB since 2025).
pub const MAX_BATCH_BYTES: usize = 1_048_576;
/// Bytes an entry costs beyond its body and tag (id, attribute name and type, JSON framing).
const ENTRY_OVERHEAD: usize = 96;

/// Work for a sender: messages, and who gets which. Handed between functions as JSON.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendJob {
    /// The messages' JSON texts; deliveries point at them by index so a broadcast carries the
    /// message once, not once per recipient.
    pub messages: Vec<String>,
    /// One entry per (queue, message).
    pub deliveries: Vec<Delivery>,
    /// How many `sender` invocations handed this work on before this one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
}

fn is_zero(attempt: &u32) -> bool {
    *attempt == 0
}

impl fmt::Debug for SendJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendJob")
            .field("messages", &self.messages.len())
            .field("deliveries", &self.deliveries.len())
            .finish()
    }
}

/// One message for one queue, with the key to seal it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The session's queue.
    pub queue_url: String,
    /// The session's key, base64.
    pub aes_key: String,
    /// Index into [`SendJob::messages`].
    pub message: usize,
    /// The session: what a dead letter names instead of the key. `None` only in payloads
    /// written by a version that did not name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionRef>,
    /// When the session was created, epoch seconds, where the read had it: a queue younger
    /// than [`NEW_QUEUE_SECONDS`] that SQS calls missing may only not be visible yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
}

impl Delivery {
    /// `message` for `recipient`'s queue.
    pub fn to(recipient: &Recipient, message: usize) -> Self {
        Self {
            queue_url: recipient.queue_url.clone(),
            aes_key: recipient.aes_key.clone(),
            message,
            session: Some(SessionRef {
                user_id: recipient.user_id,
                session_id: recipient.session_id.clone(),
            }),
            created: recipient.created,
        }
    }

    /// What a dead letter keeps of it: the queue and the session, not the key.
    pub fn reference(&self) -> DeliveryRef {
        DeliveryRef {
            queue_url: self.queue_url.clone(),
            session: self.session.clone(),
        }
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("queue_url", &self.queue_url)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

/// What a send did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendReport {
    /// Messages SQS accepted.
    pub sent: usize,
    /// Messages for queues that no longer exist: sessions that ended. Not retried.
    pub queues_gone: usize,
    /// Messages that failed after retries (or had a bad key or message index).
    pub failed: usize,
    /// Messages not attempted because the deadline came first.
    pub unsent: usize,
    /// Indexes into [`SendJob::deliveries`] worth another attempt later: unsent at the
    /// deadline, or still failing for a transient reason after the retries.
    /// [`Sender::send_or_hand_on`] hands these on, so they are never only counted.
    #[serde(skip)]
    pub retry_later: Vec<usize>,
    /// Indexes into [`SendJob::deliveries`] SQS refused for good as they are: entries it
    /// failed for the sender's fault, calls it refused for a reason a retry cannot fix (a
    /// message above the queue's MaximumMessageSize, access denied), a malformed key.
    /// [`Sender::send_or_hand_on`] dead-letters these, so a person can replay them once the
    /// cause is fixed. Counted in `failed` too.
    #[serde(skip)]
    pub refused: Vec<usize>,
}

impl SendReport {
    /// Adds another report's counts.
    pub fn add(&mut self, other: SendReport) {
        self.sent += other.sent;
        self.queues_gone += other.queues_gone;
        self.failed += other.failed;
        self.unsent += other.unsent;
        self.retry_later.extend(other.retry_later);
        self.refused.extend(other.refused);
    }
}

/// What [`Sender::send_or_hand_on`] did: the send, and where what it left went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOutcome {
    /// The send itself.
    pub report: SendReport,
    /// Deliveries handed on to a fresh `sender` invocation to try again.
    pub handed_on: usize,
    /// Deliveries put in the dead-letter queue (refused by SQS, or still failing after
    /// [`MAX_HAND_ONS`] hand-ons), replayable with `sqs-push redrive`.
    pub dead_lettered: usize,
}

/// How long a handed-on job waits before it sends: a job is handed on because SQS kept
/// failing, so the next try gives it time to recover (1 s, 4 s, 16 s for the three hand-ons);
/// a first attempt does not wait.
pub fn hand_on_delay(attempt: u32) -> Duration {
    match attempt {
        0 => Duration::ZERO,
        n => Duration::from_secs(1 << (2 * (n - 1).min(2))),
    }
}

/// How many times a job's leftovers are handed on to a fresh `sender`; what still fails after
/// that goes to the dead-letter queue.
pub const MAX_HAND_ONS: u32 = 3;

impl SendJob {
    /// The part of this job still to do: the deliveries at `indexes`, one attempt further on,
    /// with only the messages they use.
    pub fn remainder(&self, indexes: &[usize]) -> SendJob {
        let deliveries: Vec<Delivery> = indexes
            .iter()
            .filter_map(|index| self.deliveries.get(*index).cloned())
            .collect();
        self.with_messages_of(deliveries, self.attempt + 1)
    }

    /// A job of `deliveries` (indexes into this job's messages) carrying only the messages
    /// they use, renumbered.
    fn with_messages_of(&self, deliveries: Vec<Delivery>, attempt: u32) -> SendJob {
        let mut renumber: BTreeMap<usize, usize> = BTreeMap::new();
        for delivery in &deliveries {
            renumber.entry(delivery.message).or_default();
        }
        let mut messages = Vec::with_capacity(renumber.len());
        for (new, (old, slot)) in renumber.iter_mut().enumerate() {
            *slot = new;
            messages.push(self.messages.get(*old).cloned().unwrap_or_default());
        }
        SendJob {
            messages,
            deliveries: deliveries
                .into_iter()
                .map(|delivery| Delivery {
                    message: renumber[&delivery.message],
                    ..delivery
                })
                .collect(),
            attempt,
        }
    }

    /// The deliveries at `indexes` as jobs one attempt further on, each within `limits` by
    /// its serialized size and carrying only the messages its deliveries use: a job that
    /// names many large messages is cut by message, never copied whole into every payload.
    fn remainder_jobs(&self, indexes: &[usize], limits: HandOffLimits) -> Vec<SendJob> {
        let mut chosen: Vec<&Delivery> = indexes
            .iter()
            .filter_map(|index| self.deliveries.get(*index))
            .collect();
        chosen.sort_by_key(|delivery| delivery.message);
        let empty = json_len(&SendJob {
            attempt: self.attempt + 1,
            ..SendJob::default()
        });
        let message_bytes = |message: usize| {
            self.messages
                .get(message)
                .map_or(0, |text| json_len(text) + 1)
        };
        let mut jobs: Vec<Vec<Delivery>> = Vec::new();
        let (mut current, mut bytes) = (Vec::<Delivery>::new(), empty);
        for delivery in chosen {
            let shares_message = current
                .last()
                .is_some_and(|last| last.message == delivery.message);
            let mut size = json_len(delivery) + 1;
            if !shares_message {
                size += message_bytes(delivery.message);
            }
            if !current.is_empty()
                && (bytes + size > limits.max_bytes || current.len() >= limits.max_items)
            {
                jobs.push(std::mem::take(&mut current));
                // The message travels again in the new job.
                bytes = empty;
                size = json_len(delivery) + 1 + message_bytes(delivery.message);
            }
            bytes += size;
            current.push(delivery.clone());
        }
        if !current.is_empty() {
            jobs.push(current);
        }
        jobs.into_iter()
            .map(|deliveries| self.with_messages_of(deliveries, self.attempt + 1))
            .collect()
    }

    /// The deliveries at `indexes` as letters, one per message: its text once, and the
    /// deliveries as references (queue, session) without their keys.
    fn letters(&self, indexes: &[usize]) -> Vec<Letter> {
        let mut per_message: BTreeMap<usize, Vec<DeliveryRef>> = BTreeMap::new();
        for delivery in indexes
            .iter()
            .filter_map(|index| self.deliveries.get(*index))
        {
            per_message
                .entry(delivery.message)
                .or_default()
                .push(delivery.reference());
        }
        per_message
            .into_iter()
            .map(|(message, deliveries)| {
                let text = self.messages.get(message).cloned().unwrap_or_default();
                Letter::new(
                    About::Undelivered {
                        message_id: message_id_of(&text),
                        attempt: self.attempt,
                    },
                    text,
                    deliveries,
                )
            })
            .collect()
    }
}

/// The `messageId` of a message's JSON, or an empty string.
fn message_id_of(text: &str) -> String {
    #[derive(Deserialize)]
    struct Id {
        #[serde(rename = "messageId", default)]
        message_id: Option<String>,
    }
    serde_json::from_str::<Id>(text)
        .ok()
        .and_then(|id| id.message_id)
        .unwrap_or_default()
}

/// How many bytes `value`'s JSON takes.
fn json_len(value: &impl Serialize) -> usize {
    serde_json::to_vec(value).map_or(0, |json| json.len())
}

/// Sends [`SendJob`]s.
#[derive(Clone)]
pub struct Sender {
    queues: Arc<dyn QueueService>,
    concurrency: usize,
    clock: Arc<dyn Clock>,
}

struct QueueCall {
    queue_url: String,
    entries: Vec<BatchEntry>,
    /// When the queue's session was created, if known.
    created: Option<u64>,
}

/// AWS documents that a new queue may not be usable for up to a second after CreateQueue: a
/// queue whose session is younger than this that SQS calls missing is retried and handed on
/// like a transient failure, not counted gone.
pub const NEW_QUEUE_SECONDS: u64 = 5;

/// Pauses before sending again to a queue too new to be visible, in this process, before
/// what is left is handed on (which waits 1 s, then 4 s).
const NEW_QUEUE_PAUSES: [Duration; 2] = [Duration::from_millis(300), Duration::from_millis(700)];

impl Sender {
    /// `concurrency` bounds the SendMessageBatch calls in flight.
    pub fn new(queues: Arc<dyn QueueService>, concurrency: usize) -> Self {
        Self {
            queues,
            concurrency: concurrency.max(1),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same, telling a session's age by `clock` (the system's by default).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether a queue whose session was created at `created` may still be becoming visible.
    fn is_new(&self, created: Option<u64>) -> bool {
        created.is_some_and(|created| self.clock.now() < created + NEW_QUEUE_SECONDS)
    }

    /// Seals and sends every delivery; stops starting calls once `deadline` has passed.
    pub async fn send(&self, job: &SendJob, deadline: Option<Instant>) -> SendReport {
        let (calls, mut report) = plan_calls(job);
        let outcomes: Vec<SendReport> = futures::stream::iter(calls)
            .map(|call| self.send_call(call, deadline))
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for outcome in outcomes {
            report.add(outcome);
        }
        if report.unsent > 0 {
            tracing::warn!(
                unsent = report.unsent,
                "deadline reached before every message was sent"
            );
        }
        report
    }

    /// Sends `job` (after [`hand_on_delay`] when it was handed on) and settles what the send
    /// left, so nothing is only counted: deliveries worth another try go to a fresh `sender`
    /// invocation one attempt further on (at most [`MAX_HAND_ONS`] times); deliveries SQS
    /// refused for good, and those still failing after the last hand-on, go to the dead-letter
    /// queue as a `sender` payload that `sqs-push redrive` replays. Fails only when that
    /// hand-on or dead-lettering fails, so the caller's retry (Lambda's, the stream's, the
    /// API client's) repeats the work; clients dedupe by message id.
    pub async fn send_or_hand_on(
        &self,
        job: &SendJob,
        deadline: Option<Instant>,
        invoker: &dyn Invoker,
        payload_limit: usize,
    ) -> Result<SendOutcome, PortError> {
        let delay = hand_on_delay(job.attempt);
        if !delay.is_zero() {
            // Never past half the time left: the send and its report must still fit.
            let delay = match deadline {
                Some(deadline) => delay.min(deadline.saturating_duration_since(Instant::now()) / 2),
                None => delay,
            };
            tokio::time::sleep(delay).await;
        }
        let report = self.send(job, deadline).await;
        let mut outcome = SendOutcome::default();
        let limits = HandOffLimits {
            max_items: job.deliveries.len().max(1),
            max_bytes: payload_limit,
        };
        let (retry, mut give_up) = if job.attempt >= MAX_HAND_ONS {
            (Vec::new(), report.retry_later.clone())
        } else {
            (report.retry_later.clone(), Vec::new())
        };
        let exhausted = give_up.len();
        give_up.extend(report.refused.iter().copied());
        if !retry.is_empty() {
            let jobs = job.remainder_jobs(&retry, limits);
            let payloads = jobs.len();
            let handed = jobs.iter().map(|job| {
                let payload = serde_json::to_vec(job).expect("a send job serializes");
                invoker.invoke_async(AsyncFunction::Sender, payload)
            });
            futures::future::try_join_all(handed).await?;
            outcome.handed_on = retry.len();
            tracing::warn!(
                deliveries = retry.len(),
                attempt = job.attempt + 1,
                payloads,
                "undelivered deliveries handed on to a fresh sender"
            );
        }
        if !give_up.is_empty() {
            let reason = if exhausted == 0 {
                "SQS refused the deliveries".to_string()
            } else {
                format!(
                    "{exhausted} deliveries still failing after {MAX_HAND_ONS} hand-ons, {} refused by SQS",
                    give_up.len() - exhausted
                )
            };
            // A letter per message: its text once, the deliveries by queue and session, no
            // key; its `attempt` is as far as the job got, so a replay that fails again is
            // dead-lettered again at once, not handed on for another round.
            let letters = job.letters(&give_up);
            let mut records = 0;
            for letter in &letters {
                records += letter.post(invoker, AsyncFunction::Sender, &reason).await?;
            }
            outcome.dead_lettered = give_up.len();
            tracing::error!(
                deliveries = give_up.len(),
                letters = letters.len(),
                records,
                %reason,
                "deliveries dead-lettered; replay them with sqs-push redrive"
            );
        }
        outcome.report = report;
        Ok(outcome)
    }

    async fn send_call(&self, call: QueueCall, deadline: Option<Instant>) -> SendReport {
        let mut report = SendReport::default();
        let total = call.entries.len();
        // Entry ids are the deliveries' indexes in the job (see `plan_calls`).
        let refused: Mutex<Vec<usize>> = Mutex::new(Vec::new());
        let queue_url = call.queue_url.as_str();
        let refused_ref = &refused;
        let attempt = |pending: Vec<BatchEntry>| -> futures::future::BoxFuture<'_, _> {
            Box::pin(async move {
                let failed = self.queues.send_batch(queue_url, &pending).await?;
                let (retryable, hopeless): (Vec<_>, Vec<_>) =
                    failed.into_iter().partition(|entry| !entry.sender_fault);
                for entry in &hopeless {
                    tracing::warn!(queue = %queue_url, code = %entry.code, "entry refused");
                }
                refused_ref
                    .lock()
                    .expect("no panic while holding the lock")
                    .extend(
                        hopeless
                            .iter()
                            .filter_map(|entry| entry.id.parse::<usize>().ok()),
                    );
                Ok(pending
                    .into_iter()
                    .filter(|entry| retryable.iter().any(|failed| failed.id == entry.id))
                    .collect())
            })
        };
        let mut left = retry_leftovers(call.entries, deadline, attempt).await;
        // A queue created a moment ago may not be visible yet: ask again shortly.
        for pause in NEW_QUEUE_PAUSES {
            let missing = matches!(&left.stop, Stop::Failed(error) if error.is_not_found());
            if !missing || !self.is_new(call.created) {
                break;
            }
            if deadline.is_some_and(|deadline| Instant::now() + pause >= deadline) {
                break;
            }
            tokio::time::sleep(pause).await;
            left = retry_leftovers(left.items, deadline, attempt).await;
        }
        report.refused = refused
            .into_inner()
            .expect("no panic while holding the lock");
        report.failed += report.refused.len();
        let unsettled = left.items.len();
        let left_ids = || -> Vec<usize> {
            left.items
                .iter()
                .filter_map(|entry| entry.id.parse().ok())
                .collect()
        };
        match &left.stop {
            Stop::Done => {}
            Stop::Deadline => {
                report.unsent += unsettled;
                report.retry_later = left_ids();
            }
            Stop::Failed(error) if error.is_not_found() && self.is_new(call.created) => {
                tracing::warn!(queue = %queue_url, entries = unsettled, "a new queue is not visible yet; handed on");
                report.failed += unsettled;
                report.retry_later = left_ids();
            }
            Stop::Failed(error) if error.is_not_found() => report.queues_gone += unsettled,
            Stop::Failed(error) if error.kind == PortErrorKind::Transient => {
                log_failure(error, queue_url, unsettled);
                report.failed += unsettled;
                report.retry_later = left_ids();
            }
            Stop::Failed(error) => {
                // Refused as a whole for a reason a retry cannot fix: the queue's
                // MaximumMessageSize below the message, access denied.
                log_failure(error, queue_url, unsettled);
                report.failed += unsettled;
                report.refused.extend(left_ids());
            }
            Stop::Exhausted => {
                tracing::warn!(queue = %queue_url, entries = unsettled, "entries still failing after retries");
                report.failed += unsettled;
                report.retry_later = left_ids();
            }
        }
        report.sent = total - report.failed - report.unsent - report.queues_gone;
        report
    }
}

fn log_failure(error: &PortError, queue_url: &str, entries: usize) {
    tracing::warn!(%error, queue = queue_url, entries, "SendMessageBatch failed");
}

/// Seals every delivery and groups the entries per queue into calls within SQS's limits.
fn plan_calls(job: &SendJob) -> (Vec<QueueCall>, SendReport) {
    let mut report = SendReport::default();
    let mut order: Vec<&str> = Vec::new();
    let mut per_queue: HashMap<&str, Vec<BatchEntry>> = HashMap::new();
    let mut created: HashMap<&str, u64> = HashMap::new();
    let mut ciphers: HashMap<&str, Option<SessionCipher>> = HashMap::new();
    for (index, delivery) in job.deliveries.iter().enumerate() {
        let Some(message) = job.messages.get(delivery.message) else {
            tracing::warn!(queue = %delivery.queue_url, "delivery names no message of its job");
            report.failed += 1;
            report.refused.push(index);
            continue;
        };
        let cipher = ciphers.entry(delivery.aes_key.as_str()).or_insert_with(|| {
            SessionKey::from_base64(&delivery.aes_key)
                .ok()
                .map(|key| SessionCipher::new(&key))
        });
        let Some(cipher) = cipher else {
            tracing::warn!(queue = %delivery.queue_url, "delivery has a malformed key");
            report.failed += 1;
            report.refused.push(index);
            continue;
        };
        if let Some(at) = delivery.created {
            // A queue is one session's; the newest creation time is the cautious one.
            let known = created.entry(delivery.queue_url.as_str()).or_insert(at);
            *known = (*known).max(at);
        }
        let entries = per_queue
            .entry(delivery.queue_url.as_str())
            .or_insert_with(|| {
                order.push(delivery.queue_url.as_str());
                Vec::new()
            });
        entries.push(BatchEntry {
            // The delivery's index: unique within a call, and how a leftover is found again.
            id: index.to_string(),
            message: cipher.seal(message.as_bytes()),
        });
    }
    let mut calls = Vec::new();
    for queue_url in order {
        let entries = per_queue.remove(queue_url).unwrap_or_default();
        for group in cut(entries, MAX_BATCH_ENTRIES, MAX_BATCH_BYTES, 0, |entry| {
            entry.message.body.len() + entry.message.mac.len() + ENTRY_OVERHEAD
        }) {
            calls.push(QueueCall {
                queue_url: queue_url.to_string(),
                entries: group,
                created: created.get(queue_url).copied(),
            });
        }
    }
    (calls, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{QueueService, QueueSpec};
    use crate::testing::memory::MemoryQueues;
    use std::time::Duration;

    async fn queue(queues: &MemoryQueues, name: &str) -> String {
        queues
            .create_queue(&QueueSpec {
                name: name.into(),
                owner_identity_id: "i".into(),
                retention_seconds: None,
            })
            .await
            .unwrap()
            .url
    }

    #[tokio::test]
    async fn messages_for_one_queue_go_in_calls_of_at_most_ten() {
        let queues = Arc::new(MemoryQueues::default());
        let url = queue(&queues, "q").await;
        let key = SessionKey::generate();
        let job = SendJob {
            messages: (0..23).map(|i| format!("{{\"n\":{i}}}")).collect(),
            deliveries: (0..23)
                .map(|i| Delivery {
                    queue_url: url.clone(),
                    aes_key: key.to_base64(),
                    message: i,
                    session: None,
                    created: None,
                })
                .collect(),
            attempt: 0,
        };
        let report = Sender::new(queues.clone(), 4).send(&job, None).await;
        assert_eq!(report.sent, 23);
        assert_eq!(queues.calls(), 1 + 3, "one create and three batch calls");
        let received = queues.queue(&url).unwrap().messages;
        let cipher = SessionCipher::new(&key);
        let mut numbers: Vec<String> = received
            .iter()
            .map(|m| String::from_utf8(cipher.open(&m.body, Some(&m.mac)).unwrap()).unwrap())
            .collect();
        numbers.sort();
        let mut expected: Vec<String> = job.messages.clone();
        expected.sort();
        assert_eq!(numbers, expected);
    }

    fn job_for(url: &str, messages: usize) -> SendJob {
        let key = SessionKey::generate().to_base64();
        SendJob {
            messages: (0..messages).map(|i| format!("{{\"n\":{i}}}")).collect(),
            deliveries: (0..messages)
                .map(|i| Delivery {
                    queue_url: url.to_string(),
                    aes_key: key.clone(),
                    message: i,
                    session: None,
                    created: None,
                })
                .collect(),
            attempt: 0,
        }
    }

    #[tokio::test]
    async fn entries_sqs_failed_are_sent_again_until_accepted() {
        let queues = Arc::new(MemoryQueues::default());
        let url = queue(&queues, "q").await;
        queues.refuse_next_entries(3, false);
        let report = Sender::new(queues.clone(), 1)
            .send(&job_for(&url, 5), None)
            .await;
        assert_eq!(
            report,
            SendReport {
                sent: 5,
                ..SendReport::default()
            }
        );
        assert_eq!(
            queues.queue(&url).unwrap().messages.len(),
            5,
            "each message exactly once"
        );
        assert_eq!(
            queues.calls(),
            1 + 2,
            "one create, the batch, one retry of the failed three"
        );
    }

    #[tokio::test]
    async fn entries_refused_for_their_own_fault_are_not_sent_again() {
        let queues = Arc::new(MemoryQueues::default());
        let url = queue(&queues, "q").await;
        queues.refuse_next_entries(2, true);
        let report = Sender::new(queues.clone(), 1)
            .send(&job_for(&url, 5), None)
            .await;
        assert_eq!(
            report,
            SendReport {
                sent: 3,
                failed: 2,
                refused: vec![0, 1],
                ..SendReport::default()
            }
        );
        assert_eq!(queues.calls(), 1 + 1);
    }

    #[tokio::test]
    async fn a_missing_queue_counts_as_gone_and_bad_keys_as_failed() {
        let queues = Arc::new(MemoryQueues::default());
        let live = queue(&queues, "live").await;
        let key = SessionKey::generate().to_base64();
        let job = SendJob {
            messages: vec!["{}".into()],
            deliveries: vec![
                Delivery {
                    queue_url: live,
                    aes_key: key.clone(),
                    message: 0,
                    session: None,
                    created: None,
                },
                Delivery {
                    queue_url: "memory://gone".into(),
                    aes_key: key.clone(),
                    message: 0,
                    session: None,
                    created: None,
                },
                Delivery {
                    queue_url: "memory://x".into(),
                    aes_key: "bad".into(),
                    message: 0,
                    session: None,
                    created: None,
                },
                Delivery {
                    queue_url: "memory://y".into(),
                    aes_key: key,
                    message: 7,
                    session: None,
                    created: None,
                },
            ],
            attempt: 0,
        };
        let report = Sender::new(queues, 2).send(&job, None).await;
        assert_eq!(
            report,
            SendReport {
                sent: 1,
                queues_gone: 1,
                failed: 2,
                unsent: 0,
                retry_later: vec![],
                refused: vec![2, 3],
            }
        );
    }

    /// Twenty queues that each take 30 ms a call, and a job with one message for each.
    async fn twenty_slow_queues() -> (Arc<MemoryQueues>, SendJob) {
        let queues = Arc::new(MemoryQueues::with_latency(Duration::from_millis(30)));
        let mut deliveries = Vec::new();
        for i in 0..20 {
            let url = queue(&queues, &format!("q{i}")).await;
            deliveries.push(Delivery {
                queue_url: url,
                aes_key: SessionKey::generate().to_base64(),
                message: 0,
                session: None,
                created: None,
            });
        }
        let job = SendJob {
            messages: vec!["{}".into()],
            deliveries,
            attempt: 0,
        };
        (queues, job)
    }

    // Paused time: the 30 ms calls and the 45 ms deadline are exact, not at the mercy of a
    // busy machine.
    #[tokio::test(start_paused = true)]
    async fn what_the_deadline_left_unsent_is_the_remainder_to_hand_on() {
        let (queues, job) = twenty_slow_queues().await;
        let deadline = Instant::now() + Duration::from_millis(45);
        let report = Sender::new(queues.clone(), 1)
            .send(&job, Some(deadline))
            .await;
        assert!(report.unsent > 0, "{report:?}");
        assert_eq!(report.retry_later.len(), report.unsent);
        let remainder = job.remainder(&report.retry_later);
        assert_eq!(remainder.attempt, 1);
        let rest = Sender::new(queues.clone(), 4).send(&remainder, None).await;
        assert_eq!(rest.sent, report.unsent);
        for delivery in &job.deliveries {
            let received = queues.queue(&delivery.queue_url).unwrap().messages.len();
            assert_eq!(received, 1, "{} got {received}", delivery.queue_url);
        }
    }

    // Paused time: the 30 ms calls and the 45 ms deadline are exact, not at the mercy of a
    // busy machine.
    #[tokio::test(start_paused = true)]
    async fn a_passed_deadline_leaves_messages_unsent_and_reported() {
        let (queues, job) = twenty_slow_queues().await;
        let deadline = Instant::now() + Duration::from_millis(45);
        let report = Sender::new(queues, 1).send(&job, Some(deadline)).await;
        assert!(report.sent >= 1 && report.sent < 20, "{report:?}");
        assert_eq!(report.sent + report.unsent, 20);
    }

    #[test]
    fn jobs_do_not_print_keys() {
        let job = SendJob {
            messages: vec!["secret body".into()],
            deliveries: vec![Delivery {
                queue_url: "u".into(),
                aes_key: "KEY".into(),
                message: 0,
                session: None,
                created: None,
            }],
            attempt: 0,
        };
        let printed = format!("{job:?} {:?}", job.deliveries[0]);
        assert!(
            !printed.contains("KEY") && !printed.contains("secret body"),
            "{printed}"
        );
    }

    fn delivery_to(queue_url: &str, created: Option<u64>) -> Delivery {
        Delivery {
            queue_url: queue_url.to_string(),
            aes_key: SessionKey::generate().to_base64(),
            message: 0,
            session: None,
            created,
        }
    }

    // Paused time: the pauses before asking again pass at once.
    #[tokio::test(start_paused = true)]
    async fn a_missing_queue_of_a_session_created_seconds_ago_is_handed_on_not_counted_gone() {
        let queues = Arc::new(MemoryQueues::default());
        let sender = Sender::new(queues.clone(), 4)
            .with_clock(Arc::new(crate::testing::ManualClock::at(1_000)));
        let invoker = crate::testing::memory::RecordingInvoker::default();
        let job = SendJob {
            messages: vec!["{}".into()],
            deliveries: vec![
                delivery_to("memory://queues/000000000000/new", Some(999)),
                delivery_to(
                    "memory://queues/000000000000/old",
                    Some(1_000 - NEW_QUEUE_SECONDS),
                ),
                delivery_to("memory://queues/000000000000/unknown", None),
            ],
            attempt: 0,
        };
        let outcome = sender
            .send_or_hand_on(&job, None, &invoker, 1_048_576)
            .await
            .unwrap();
        assert_eq!(
            (outcome.report.queues_gone, outcome.handed_on),
            (2, 1),
            "{outcome:?}"
        );
        let handed: Vec<SendJob> = invoker
            .payloads(AsyncFunction::Sender)
            .iter()
            .map(|payload| serde_json::from_slice(payload).unwrap())
            .collect();
        assert_eq!(handed.len(), 1);
        assert_eq!(
            handed[0].deliveries[0].queue_url,
            "memory://queues/000000000000/new"
        );
        assert_eq!(
            queues.calls(),
            2 + 3,
            "asked again twice here before handing on; the old and unknown once each"
        );
    }

    // Paused time: the queue appears 200 ms in, before the first pause ends.
    #[tokio::test(start_paused = true)]
    async fn a_queue_that_becomes_visible_a_moment_later_gets_the_message_here() {
        let queues = Arc::new(MemoryQueues::default());
        let sender = Sender::new(queues.clone(), 4)
            .with_clock(Arc::new(crate::testing::ManualClock::at(50)));
        let late = queues.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            queue(&late, "late").await;
        });
        let job = SendJob {
            messages: vec!["{}".into()],
            deliveries: vec![delivery_to("memory://queues/000000000000/late", Some(50))],
            attempt: 0,
        };
        let report = sender.send(&job, None).await;
        assert_eq!((report.sent, report.queues_gone), (1, 0), "{report:?}");
    }
}
