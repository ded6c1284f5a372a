//! The broadcast model run (issue 14), once, printing numbers (`harness = false`):
//!
//! 1. 1,000,000 sessions in the in-memory store; a scan page (≈ 1 MB of routing attributes,
//!    5,000 rows) costs 20 ms, an async invoke 15 ms, a SendMessageBatch 20 ms. `/notify` to
//!    everyone plans the default segments; workers page and hand off; senders send. Prints the
//!    time to the last SQS send.
//! 2. One segment worker alone, latencies zero: peak resident memory growth during its run, and CPU (wall, one task) per recipient for planning.
//! 3. A Kinesis batch of 100 records to one account of 1,000 users × 2 sessions: SQS requests
//!    per delivered message, grouped (`dispatch_records_grouped`) and one by one.
//!
//! 4. A Kinesis batch of 10 broadcast records to 20,000 sessions: scan pages read and SQS
//!    requests per delivered message, grouped and one by one.
//!
//! `cargo bench -p sqs-push-core --bench broadcast` (numbers in docs/benchmarks.md).
//! `BROADCAST_SESSIONS=100000` runs a smaller model. `MODEL_TARGET=channel` runs 1 and 2 as a
//! publish to a channel every session is subscribed to instead (one worker pages the channel's
//! memberships, each page a 20 ms Query), then stops.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use sqs_push_core::crypto::SessionKey;
use sqs_push_core::dispatch::grouping::dispatch_records_grouped;
use sqs_push_core::dispatch::kinesis::{StreamRecord, dispatch_records};
use sqs_push_core::dispatch::segment::{PlannedMessage, Scope, SegmentJob, SegmentWorker};
use sqs_push_core::dispatch::send::{SendJob, Sender};
use sqs_push_core::dispatch::{DispatchSettings, Dispatcher, Target};
use sqs_push_core::history::write::HistoryWriter;
use sqs_push_core::model::channel::ChannelName;
use sqs_push_core::model::ids::{AccountId, SessionId, UserId};
use sqs_push_core::model::message::{Message, MessageId};
use sqs_push_core::model::recipient::Recipient;
use sqs_push_core::model::session::{Credentials, QueueRef, Session};
use sqs_push_core::ports::{
    AsyncFunction, BatchEntry, FailedEntry, Invoker, PortError, QueuePage, QueueService, QueueSpec,
    SessionStore,
};
use sqs_push_core::testing::ManualClock;
use sqs_push_core::testing::memory::{MemoryHistory, MemorySessionStore, RecordingInvoker};
use tokio::time::Instant;

/// Resident memory of this process, from /proc (the workspace forbids `unsafe`, so no counting
/// allocator): the worker is measured right after seeding, before anything freed memory the
/// allocator could hand back to it, so RSS growth is the worker's peak working set.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Samples RSS every millisecond until stopped; returns the highest sample.
fn sample_rss(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = rss_bytes();
        while !stop.load(Ordering::Relaxed) {
            peak = peak.max(rss_bytes());
            std::thread::sleep(Duration::from_millis(1));
        }
        peak.max(rss_bytes())
    })
}

const NOW: u64 = 1_000_000;
const SCAN_PAGE: usize = 5_000;

fn session(account: u64, user: u64, id: &str) -> Session {
    Session {
        account_id: AccountId::try_from(account).unwrap(),
        user_id: UserId::try_from(user).unwrap(),
        session_id: SessionId::parse(id).unwrap(),
        queue: QueueRef {
            url: format!(
                "https://sqs.us-east-1.amazonaws.com/123456789012/sqs-push-prod-{user:0>43}{id}"
            ),
            name: format!("sqs-push-prod-{user:0>43}{id}"),
        },
        identity_id: "us-east-1:00000000-0000-0000-0000-000000000000".into(),
        developer_login: None,
        channels: Default::default(),
        aes_key: SessionKey::generate(),
        credentials: Credentials {
            access_key: "ASIA".into(),
            secret_key: "secret".into(),
            session_token: "token".into(),
            expires: NOW + 3600,
        },
        ttl: NOW + 7200,
        created: NOW,
    }
}

/// SQS that only counts: each SendMessageBatch waits `latency`.
#[derive(Default)]
struct CountingQueues {
    latency: Duration,
    calls: AtomicU64,
    entries: AtomicU64,
}

#[async_trait]
impl QueueService for CountingQueues {
    async fn create_queue(&self, spec: &QueueSpec) -> Result<QueueRef, PortError> {
        Ok(QueueRef {
            url: spec.name.clone(),
            name: spec.name.clone(),
        })
    }
    async fn send_batch(
        &self,
        _queue_url: &str,
        entries: &[BatchEntry],
    ) -> Result<Vec<FailedEntry>, PortError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.entries
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(Vec::new())
    }
    async fn delete_queue(&self, _queue_url: &str) -> Result<(), PortError> {
        Ok(())
    }
    async fn list_queues_page(
        &self,
        _prefix: &str,
        _token: Option<&str>,
        _max: u16,
    ) -> Result<QueuePage, PortError> {
        Ok(QueuePage::default())
    }
    async fn created_at(&self, _queue_url: &str) -> Result<u64, PortError> {
        Ok(0)
    }
}

/// Lambda's async invoke, modelled: 15 ms to accept, then the function runs as its own task.
struct ModelInvoker {
    sender: Sender,
    worker: OnceLock<SegmentWorker>,
    running: AtomicUsize,
    last_send: Mutex<Option<Instant>>,
    invocations: AtomicU64,
}

#[async_trait]
impl Invoker for ModelInvoker {
    /// The model's queues never refuse, so nothing is ever dead-lettered; if something were,
    /// the run would fail loudly rather than count a loss as done.
    async fn dead_letter(
        &self,
        function: AsyncFunction,
        _: Vec<u8>,
        reason: &str,
    ) -> Result<(), PortError> {
        Err(PortError::new(
            sqs_push_core::PortErrorKind::Other,
            "model dead-letter",
            function.name(),
            format!("the model has no dead-letter queue ({reason})"),
        ))
    }

    async fn invoke_async(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
    ) -> Result<(), PortError> {
        tokio::time::sleep(Duration::from_millis(15)).await;
        self.invocations.fetch_add(1, Ordering::Relaxed);
        let me = model();
        match function {
            AsyncFunction::Sender => {
                let job: SendJob = serde_json::from_slice(&payload).unwrap();
                self.running.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    me.sender.send(&job, None).await;
                    *me.last_send.lock().unwrap() = Some(Instant::now());
                    me.running.fetch_sub(1, Ordering::SeqCst);
                });
            }
            AsyncFunction::Dispatcher => {
                let job: SegmentJob = serde_json::from_slice(&payload).unwrap();
                self.running.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let worker = me.worker.get().unwrap().clone();
                    worker.run(&job, None).await.unwrap();
                    me.running.fetch_sub(1, Ordering::SeqCst);
                });
            }
            // The model broadcasts: no history rows, no sweep.
            AsyncFunction::History | AsyncFunction::Cleanup => {}
        }
        Ok(())
    }
}

static MODEL: OnceLock<Arc<ModelInvoker>> = OnceLock::new();
fn model() -> Arc<ModelInvoker> {
    MODEL.get().unwrap().clone()
}

fn hello(id: &str) -> Message {
    let fields = serde_json::json!({"message": "breaking news"});
    Message::new(fields.as_object().unwrap().clone(), || {
        MessageId::parse(id).unwrap()
    })
    .unwrap()
}

fn dispatcher(
    store: Arc<dyn SessionStore>,
    queues: Arc<dyn QueueService>,
    invoker: Arc<dyn Invoker>,
    settings: DispatchSettings,
) -> Dispatcher {
    Dispatcher::new(
        store,
        Sender::new(queues, 128),
        HistoryWriter::new(Arc::new(MemoryHistory::default()), 86_400, 8),
        invoker,
        Arc::new(ManualClock::at(NOW)),
        settings,
    )
}

/// What the model run publishes to: everyone (a table scan in segments) or one channel every
/// session is subscribed to (its memberships, one key range, paged by one worker).
fn model_target(channel: Option<&ChannelName>) -> (Target, Scope) {
    match channel {
        Some(channel) => (
            Target::Channel(channel.clone()),
            Scope::Channel {
                channel: channel.clone(),
            },
        ),
        None => (
            Target::Everyone,
            Scope::Segment {
                segment: 0,
                total_segments: 4,
            },
        ),
    }
}

async fn model_run(sessions: u64, channel: Option<ChannelName>) {
    let store = Arc::new(MemorySessionStore::default());
    let seeded = std::time::Instant::now();
    for user in 0..sessions / 2 {
        for id in ["a", "b"] {
            let session = session(1, user, id);
            store.put(&session).await.unwrap();
            if let Some(channel) = &channel {
                store.put_membership(channel, Recipient::from(&session));
            }
        }
    }
    let (target, scope) = model_target(channel.as_ref());
    println!("seeded {sessions} sessions in {:?}", seeded.elapsed());
    // One segment worker alone: peak memory above the baseline, planning CPU per recipient.
    let recording = Arc::new(RecordingDiscard::default());
    let settings = DispatchSettings {
        scan_page: SCAN_PAGE,
        ..DispatchSettings::default()
    };
    let worker = dispatcher_with(store.clone(), recording.clone(), settings)
        .segment_worker(Duration::from_secs(2));
    let job = SegmentJob {
        messages: vec![PlannedMessage {
            message: r#"{"message":"breaking news"}"#.into(),
            message_id: "m-1m".into(),
            created: NOW,
            history: true,
        }],
        scope: scope.clone(),
        start: None,
        generation: 0,
    };
    let baseline = rss_bytes();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(stop.clone());
    let cpu = std::time::Instant::now();
    let segment = worker.run(&job, None).await.unwrap();
    let elapsed = cpu.elapsed();
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap().saturating_sub(baseline);
    // Afterwards (so the memory above is measured before anything was freed), the same pages
    // read alone: what the in-memory stand-in for DynamoDB costs (on Lambda,
    // the SDK's deserialization of a page), to tell it from the worker's own planning.
    let reads = std::time::Instant::now();
    let mut position = None;
    loop {
        let page = match &scope {
            Scope::Channel { channel } => {
                store
                    .channel_page(channel, position.as_ref(), SCAN_PAGE)
                    .await
            }
            _ => store.scan_page(0, 4, position.as_ref(), SCAN_PAGE).await,
        }
        .unwrap();
        match page.next {
            Some(next) => position = Some(next),
            None => break,
        }
    }
    let reads = reads.elapsed();
    let per_row = |time: Duration| time.as_secs_f64() * 1e6 / segment.rows as f64;
    println!(
        "one segment worker: {} rows in {} pages, peak RSS growth {:.1} MB, \
         {:.3} µs per recipient in all (latencies 0) = {:.3} µs reading pages from the \
         in-memory store + {:.3} µs planning (deliveries, history users, cut, serialize, hand off)",
        segment.rows,
        segment.pages,
        peak as f64 / 1_048_576.0,
        per_row(elapsed),
        per_row(reads),
        per_row(elapsed.saturating_sub(reads)),
    );
    store.set_scan_latency(Duration::from_millis(20));
    let queues = Arc::new(CountingQueues {
        latency: Duration::from_millis(20),
        ..CountingQueues::default()
    });
    let settings = DispatchSettings {
        scan_page: SCAN_PAGE,
        ..DispatchSettings::default()
    };
    let invoker = Arc::new(ModelInvoker {
        sender: Sender::new(queues.clone(), 128),
        worker: OnceLock::new(),
        running: AtomicUsize::new(0),
        last_send: Mutex::new(None),
        invocations: AtomicU64::new(0),
    });
    MODEL.set(invoker.clone()).ok().unwrap();
    let dispatcher = dispatcher(
        store.clone(),
        queues.clone(),
        invoker.clone(),
        settings.clone(),
    );
    invoker
        .worker
        .set(dispatcher.segment_worker(Duration::from_secs(2)))
        .ok()
        .unwrap();
    let started = Instant::now();
    let report = dispatcher.dispatch(&target, hello("m-1m")).await.unwrap();
    let answered = started.elapsed();
    while invoker.running.load(Ordering::SeqCst) > 0
        || queues.entries.load(Ordering::Relaxed) < sessions
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let last = invoker.last_send.lock().unwrap().unwrap() - started;
    println!(
        "model run ({}): {sessions} sessions, {} segments, page {SCAN_PAGE}: answered in {answered:?}, \
         last SQS send at {last:?}; {} SendMessageBatch calls, {} entries, {} async invokes, \
         {} scan pages, {} channel pages",
        match &target {
            Target::Channel(channel) => format!("publish to channel {channel}"),
            _ => "broadcast to everyone".to_string(),
        },
        report.segments.unwrap(),
        queues.calls.load(Ordering::Relaxed),
        queues.entries.load(Ordering::Relaxed),
        invoker.invocations.load(Ordering::Relaxed),
        store.scan_pages(),
        store.channel_pages()
    );
    store.set_scan_latency(Duration::ZERO);
}

/// An invoker that serializes nothing further and keeps nothing: for the worker's memory.
#[derive(Default)]
struct RecordingDiscard {
    payloads: AtomicU64,
}

#[async_trait]
impl Invoker for RecordingDiscard {
    async fn invoke_async(&self, _: AsyncFunction, _payload: Vec<u8>) -> Result<(), PortError> {
        self.payloads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn dead_letter(&self, _: AsyncFunction, _: Vec<u8>, _: &str) -> Result<(), PortError> {
        self.payloads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn dispatcher_with(
    store: Arc<dyn SessionStore>,
    invoker: Arc<dyn Invoker>,
    settings: DispatchSettings,
) -> Dispatcher {
    dispatcher(
        store,
        Arc::new(CountingQueues::default()),
        invoker,
        settings,
    )
}

/// Runs every `dispatcher` payload (segment jobs and their hand-ons) and then every `sender`
/// payload, as the functions would; returns (SendMessageBatch calls, entries sent).
async fn run_invocations(
    dispatcher: &Dispatcher,
    invoker: &RecordingInvoker,
    queues: Arc<CountingQueues>,
) -> (u64, u64) {
    let worker = dispatcher.segment_worker(Duration::from_secs(2));
    let mut ran = 0;
    while let Some(payload) = invoker.payloads(AsyncFunction::Dispatcher).get(ran) {
        let job: SegmentJob = serde_json::from_slice(payload).unwrap();
        worker.run(&job, None).await.unwrap();
        ran += 1;
    }
    let sender = Sender::new(queues.clone(), 128);
    for payload in invoker.payloads(AsyncFunction::Sender) {
        let job: SendJob = serde_json::from_slice(&payload).unwrap();
        sender.send(&job, None).await;
    }
    (
        queues.calls.load(Ordering::Relaxed),
        queues.entries.load(Ordering::Relaxed),
    )
}

/// A Kinesis batch of `records` records of `target_fields` (JSON fields naming the target) to an
/// account of `sessions` sessions, dispatched grouped and one by one: scan pages read and SQS
/// requests per delivered message.
async fn kinesis_batch(records: usize, target_fields: &str, sessions: u64) {
    let batch: Vec<StreamRecord> = (0..records)
        .map(|i| StreamRecord {
            sequence_number: i.to_string(),
            event_id: format!("shardId-000000000000:{i}"),
            data: format!(r#"{{{target_fields},"message":"record {i}"}}"#).into_bytes(),
        })
        .collect();
    for grouped in [true, false] {
        let store = Arc::new(MemorySessionStore::default());
        for user in 0..sessions / 2 {
            for id in ["a", "b"] {
                store.put(&session(7, user, id)).await.unwrap();
            }
        }
        let queues = Arc::new(CountingQueues::default());
        let invoker = Arc::new(RecordingInvoker::default());
        let d = dispatcher(
            store.clone(),
            queues.clone(),
            invoker.clone(),
            DispatchSettings::default(),
        );
        let report = if grouped {
            dispatch_records_grouped(&d, &batch).await
        } else {
            dispatch_records(&d, &batch).await
        };
        assert_eq!(report.dispatched, records);
        let (calls, delivered) = run_invocations(&d, &invoker, queues).await;
        assert_eq!(delivered, records as u64 * sessions);
        println!(
            "kinesis batch of {records} records {{{target_fields}}} to {sessions} sessions, {}: \
             {} scan pages, {delivered} delivered, {calls} SendMessageBatch calls = {:.3} requests \
             per delivered message, {} sender invocations",
            if grouped { "grouped" } else { "one by one" },
            store.scan_pages(),
            calls as f64 / delivered as f64,
            invoker.payloads(AsyncFunction::Sender).len()
        );
    }
}

fn main() {
    let sessions: u64 = std::env::var("BROADCAST_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .unwrap();
    let channel = match std::env::var("MODEL_TARGET").as_deref() {
        Ok("channel") => Some(ChannelName::parse("prices:AAPL").unwrap()),
        Ok("everyone") | Err(_) => None,
        Ok(other) => panic!("MODEL_TARGET is everyone or channel, not {other:?}"),
    };
    runtime.block_on(async {
        // The model first: the worker's memory is measured before anything else ran.
        let channel_only = channel.is_some();
        model_run(sessions, channel).await;
        if channel_only {
            return;
        }
        // 100 records to one account of 1,000 users × 2 sessions (read at once: 2,000 sessions
        // is not above the large-account threshold).
        kinesis_batch(100, r#""accountId":7"#, 2_000).await;
        // 10 broadcast records to 20,000 sessions (segmented).
        kinesis_batch(10, r#""_broadcast":true"#, 20_000).await;
    });
}
