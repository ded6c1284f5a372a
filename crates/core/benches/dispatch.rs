//! The three micro-benchmarks: planning a 100,000-recipient broadcast, sending to 10,000
//! queues that each cost 20 ms, and sealing a 1 KiB message.
//!
//! `cargo bench -p sqs-push-core` (numbers in docs/benchmarks.md).

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sqs_push_core::crypto::{SessionCipher, SessionKey};
use sqs_push_core::dispatch::segment::{PlannedMessage, Scope, SegmentJob};
use sqs_push_core::dispatch::send::{Delivery, SendJob, Sender};
use sqs_push_core::dispatch::{DispatchSettings, Dispatcher};
use sqs_push_core::history::write::HistoryWriter;
use sqs_push_core::model::ids::{AccountId, SessionId, UserId};
use sqs_push_core::model::message::{Message, MessageId};
use sqs_push_core::model::session::{Credentials, QueueRef, Session};
use sqs_push_core::ports::{QueueService, QueueSpec, SessionStore};
use sqs_push_core::testing::ManualClock;
use sqs_push_core::testing::memory::{
    MemoryHistory, MemoryQueues, MemorySessionStore, RecordingInvoker,
};

const NOW: u64 = 1_000_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .unwrap()
}

fn session(user: u64, id: &str) -> Session {
    Session {
        account_id: AccountId::try_from(user % 100).unwrap(),
        user_id: UserId::try_from(user).unwrap(),
        session_id: SessionId::parse(id).unwrap(),
        queue: QueueRef {
            url: format!(
                "https://sqs.us-east-1.amazonaws.com/123456789012/sqs-push-prod-{user:0>43}{id}"
            ),
            name: format!("sqs-push-prod-{user:0>43}"),
        },
        identity_id: format!("us-east-1:{user}"),
        developer_login: None,
        channels: Default::default(),
        aes_key: SessionKey::generate(),
        credentials: Credentials {
            access_key: "a".into(),
            secret_key: "s".into(),
            session_token: "t".into(),
            expires: NOW + 3600,
        },
        ttl: NOW + 7200,
        created: NOW,
    }
}

fn hello() -> Message {
    let fields = serde_json::json!({"message": "Breaking news", "priority": "high"});
    Message::new(fields.as_object().unwrap().clone(), MessageId::random).unwrap()
}

/// Resolve 100,000 sessions from the in-memory store, build deliveries, cut them into sender
/// and history payloads (serialized JSON), and hand them to a recording invoker.
fn planning(c: &mut Criterion) {
    let rt = runtime();
    let store = Arc::new(MemorySessionStore::default());
    rt.block_on(async {
        for user in 0..50_000u64 {
            store.put(&session(user, "a")).await.unwrap();
            store.put(&session(user, "b")).await.unwrap();
        }
    });
    let mut group = c.benchmark_group("planning");
    group.sample_size(10);
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("broadcast to 100,000 recipients", |b| {
        b.iter(|| {
            let dispatcher = Dispatcher::new(
                store.clone(),
                Sender::new(Arc::new(MemoryQueues::default()), 8),
                HistoryWriter::new(Arc::new(MemoryHistory::default()), 86_400, 8),
                Arc::new(RecordingInvoker::default()),
                Arc::new(ManualClock::at(NOW)),
                DispatchSettings {
                    scan_page: 5_000,
                    ..DispatchSettings::default()
                },
            );
            // A broadcast is planned as segment jobs; the work per recipient is the segment
            // worker's: page, deliveries, cut and serialize payloads (one segment, 5,000-row pages).
            let worker = dispatcher.segment_worker(std::time::Duration::ZERO);
            let job = SegmentJob {
                messages: vec![PlannedMessage {
                    message: String::from_utf8(hello().to_json()).unwrap(),
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
            let report = rt.block_on(worker.run(&job, None)).unwrap();
            assert_eq!(report.deliveries, 100_000);
        });
    });
    group.finish();
}

/// 10,000 queues through the sender against queues that cost 20 ms a call.
fn sending(c: &mut Criterion) {
    let rt = runtime();
    let queues = Arc::new(MemoryQueues::default());
    let key = SessionKey::generate().to_base64();
    let deliveries: Vec<Delivery> = rt.block_on(async {
        let mut deliveries = Vec::new();
        for i in 0..10_000 {
            let queue = queues
                .create_queue(&QueueSpec {
                    name: format!("q{i}"),
                    owner_identity_id: "i".into(),
                    retention_seconds: None,
                })
                .await
                .unwrap();
            deliveries.push(Delivery {
                queue_url: queue.url,
                aes_key: key.clone(),
                message: 0,
                session: None,
                created: None,
            });
        }
        deliveries
    });
    let job = SendJob {
        messages: vec![String::from_utf8(hello().to_json()).unwrap()],
        deliveries,
        attempt: 0,
    };
    queues.set_latency(Duration::from_millis(20));
    let sender = Sender::new(queues, 128);
    let mut group = c.benchmark_group("sending");
    group.sample_size(10);
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("10,000 queues at 20 ms per call, 128 in flight", |b| {
        b.iter(|| {
            let report = rt.block_on(sender.send(&job, None));
            assert_eq!(report.sent, 10_000);
        });
    });
    group.finish();
}

/// Encrypt + MAC + base64 of a 1 KiB message, the per-recipient cost of a send.
fn crypto(c: &mut Criterion) {
    let cipher = SessionCipher::new(&SessionKey::generate());
    let message = vec![b'x'; 1024];
    let mut group = c.benchmark_group("crypto");
    group.throughput(Throughput::Bytes(1024));
    group.bench_function("seal 1 KiB", |b| b.iter(|| cipher.seal(&message)));
    group.bench_function("session cipher setup (HKDF + HMAC key)", |b| {
        let key = SessionKey::generate();
        b.iter(|| SessionCipher::new(&key));
    });
    group.finish();
}

criterion_group!(benches, crypto, planning, sending);
criterion_main!(benches);
