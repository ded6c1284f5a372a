use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::dispatch::send::Sender;
use crate::dispatch::{DispatchSettings, Dispatcher};
use crate::history::write::HistoryWriter;
use crate::model::ids::SessionId;
use crate::ports::HistoryRow;
use crate::ports::HistoryStore;
use crate::testing::ManualClock;
use crate::testing::memory::{
    MemoryHistory, MemoryQueues, MemorySessionStore, MemoryUpstream, RecordingAppTarget,
    RecordingInvoker, seed_session,
};

const NOW: u64 = 1_800_000_000;
const ROLE: &str = "AROABROWSER";

struct Fixture {
    consumer: Consumer,
    store: Arc<MemoryUpstream>,
    app: Arc<RecordingAppTarget>,
    history: Arc<MemoryHistory>,
    a: Session,
    b: Session,
}

async fn fixture(settings: UpstreamSettings) -> Fixture {
    let sessions = Arc::new(MemorySessionStore::default());
    let queues = Arc::new(MemoryQueues::default());
    let history = Arc::new(MemoryHistory::default());
    let invoker = Arc::new(RecordingInvoker::default());
    let clock = Arc::new(ManualClock::at(NOW));
    let mut a = seed_session(&sessions, &queues, 1, 10, "a", NOW + 600).await;
    a.identity_id = "us-east-1:identity-a".into();
    sessions.put(&a).await.unwrap();
    let mut b = seed_session(&sessions, &queues, 1, 10, "b", NOW + 600).await;
    b.identity_id = "us-east-1:identity-b".into();
    sessions.put(&b).await.unwrap();
    let dispatcher = Dispatcher::new(
        sessions.clone(),
        Sender::new(queues.clone(), 4),
        HistoryWriter::new(history.clone(), 86_400, 2),
        invoker.clone(),
        clock.clone(),
        DispatchSettings::default(),
    );
    let dispatcher = Arc::new(dispatcher);
    let receipts = ReceiptService::new(history.clone(), dispatcher.clone(), invoker, clock.clone());
    let store = Arc::new(MemoryUpstream::default());
    let app = Arc::new(RecordingAppTarget::default());
    let presence = presence::PresenceService::new(
        store.clone(),
        store.clone(),
        dispatcher,
        clock.clone(),
        settings.online_seconds,
    );
    let consumer = Consumer::new(
        sessions,
        store.clone(),
        app.clone(),
        receipts,
        presence,
        clock,
        UpstreamSettings {
            browser_role_id: ROLE.into(),
            ..settings
        },
    );
    Fixture {
        consumer,
        store,
        app,
        history,
        a,
        b,
    }
}

fn sender_of(session: &Session) -> String {
    format!(
        "{ROLE}:{}",
        role_session_name(session.user_id, &session.identity_id)
    )
}

fn record(id: &str, sender: &str, body: serde_json::Value) -> UpstreamRecord {
    UpstreamRecord {
        message_id: id.into(),
        sender_id: Some(sender.into()),
        body: body.to_string(),
    }
}

fn chat(session: &str, seq: u64) -> serde_json::Value {
    json!({"v":1,"sessionId":session,"seq":seq,"ts":NOW * 1_000,"type":"chat","body":{"n":seq}})
}

#[tokio::test]
async fn a_verified_message_reaches_the_app_with_the_rows_ids() {
    let f = fixture(UpstreamSettings::default()).await;
    let report = f
        .consumer
        .handle(&[record("m1", &sender_of(&f.a), chat("a", 1))])
        .await;
    assert_eq!(report.accepted, 1);
    let delivered = f.app.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].session_id, SessionId::parse("a").unwrap());
    assert_eq!(delivered[0].account_id, f.a.account_id);
    assert_eq!(delivered[0].kind, "chat");
    assert_eq!(delivered[0].body, json!({"n":1}));
    assert_eq!(delivered[0].received_at, "2027-01-15T08:00:00.000Z");
}

#[tokio::test]
async fn a_session_claiming_another_sessions_id_is_dropped_with_a_strike_and_nothing_routed() {
    let f = fixture(UpstreamSettings::default()).await;
    let spoofs = [chat("b", 1), chat("nobody", 2)];
    let records: Vec<_> = spoofs
        .into_iter()
        .enumerate()
        .map(|(n, body)| record(&format!("m{n}"), &sender_of(&f.a), body))
        .collect();
    let report = f.consumer.handle(&records).await;
    assert_eq!(report.dropped.get(&Drop::WrongSession), Some(&2));
    assert!(report.failed.is_empty());
    assert!(f.app.delivered().is_empty());
    let name = role_session_name(f.a.user_id, &f.a.identity_id);
    assert_eq!(f.store.strikes_of(&name), 2);
}

#[tokio::test]
async fn another_principal_of_the_account_is_not_a_browser() {
    let f = fixture(UpstreamSettings::default()).await;
    let name = role_session_name(f.a.user_id, &f.a.identity_id);
    let records = [
        record("m1", &format!("AROABACKEND:{name}"), chat("a", 1)),
        record("m2", "AIDAADMINUSER", chat("a", 2)),
        UpstreamRecord {
            message_id: "m3".into(),
            sender_id: None,
            body: chat("a", 3).to_string(),
        },
    ];
    let report = f.consumer.handle(&records).await;
    assert_eq!(report.dropped.get(&Drop::NotBrowser), Some(&3));
    assert!(f.app.delivered().is_empty());
}

#[tokio::test]
async fn a_replay_and_a_redelivery_are_processed_once() {
    let f = fixture(UpstreamSettings::default()).await;
    let first = record("m1", &sender_of(&f.a), chat("a", 7));
    let replay = record("m2", &sender_of(&f.a), chat("a", 7));
    let report = f.consumer.handle(&[first.clone(), replay, first]).await;
    assert_eq!((report.accepted, report.duplicates), (1, 2));
    assert_eq!(f.app.delivered().len(), 1);
}

#[tokio::test]
async fn a_stale_or_future_timestamp_is_dropped() {
    let f = fixture(UpstreamSettings::default()).await;
    let mut old = chat("a", 1);
    old["ts"] = json!(NOW * 1_000 - 5 * 60 * 1_000 - 1);
    let mut future = chat("a", 2);
    future["ts"] = json!(NOW * 1_000 + 5 * 60 * 1_000 + 1);
    let mut edge = chat("a", 3);
    edge["ts"] = json!(NOW * 1_000 - 5 * 60 * 1_000);
    let sender = sender_of(&f.a);
    let report = f
        .consumer
        .handle(&[
            record("m1", &sender, old),
            record("m2", &sender, future),
            record("m3", &sender, edge),
        ])
        .await;
    assert_eq!(report.dropped.get(&Drop::Stale), Some(&2));
    assert_eq!(report.accepted, 1);
}

#[tokio::test]
async fn malformed_and_oversize_messages_are_dropped_not_retried() {
    let f = fixture(UpstreamSettings::default()).await;
    let sender = sender_of(&f.a);
    let records = [
        UpstreamRecord {
            message_id: "m1".into(),
            sender_id: Some(sender.clone()),
            body: "{not json".into(),
        },
        UpstreamRecord {
            message_id: "m2".into(),
            sender_id: Some(sender.clone()),
            body: json!({"v":1,"sessionId":"a","seq":1,"ts":NOW*1000,"type":"chat","body":"x".repeat(17_000)}).to_string(),
        },
        record("m3", &sender, json!({"v":1,"sessionId":"a","seq":2,"ts":NOW*1000,"type":"Bad Type"})),
    ];
    let report = f.consumer.handle(&records).await;
    assert_eq!(report.dropped.get(&Drop::Malformed), Some(&3));
    assert!(report.failed.is_empty(), "never retried");
}

#[tokio::test]
async fn a_flood_from_one_session_routes_at_most_the_burst_and_strikes() {
    let f = fixture(UpstreamSettings {
        session_rate: Rate {
            per_second: 1,
            burst: 5,
        },
        ..UpstreamSettings::default()
    })
    .await;
    let sender = sender_of(&f.a);
    let records: Vec<_> = (1..=100)
        .map(|seq| record(&format!("m{seq}"), &sender, chat("a", seq)))
        .collect();
    let report = f.consumer.handle(&records).await;
    assert_eq!(report.accepted, 5);
    assert_eq!(report.dropped.get(&Drop::OverLimit), Some(&95));
    assert_eq!(f.app.delivered().len(), 5);
    // Another session of the same account still has its own bucket.
    let other = f
        .consumer
        .handle(&[record("n1", &sender_of(&f.b), chat("b", 1))])
        .await;
    assert_eq!(other.accepted, 1);
    let refusal = renew_refusal(f.store.as_ref(), &f.a, 20).await.unwrap();
    assert!(refusal.unwrap().contains("refused renewal"));
    assert_eq!(
        renew_refusal(f.store.as_ref(), &f.b, 20).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn the_account_bucket_holds_all_its_sessions_together() {
    let f = fixture(UpstreamSettings {
        account_rate: Rate {
            per_second: 1,
            burst: 3,
        },
        ..UpstreamSettings::default()
    })
    .await;
    let records: Vec<_> = (1..=4)
        .flat_map(|seq| {
            [
                record(&format!("a{seq}"), &sender_of(&f.a), chat("a", seq)),
                record(&format!("b{seq}"), &sender_of(&f.b), chat("b", seq)),
            ]
        })
        .collect();
    let report = f.consumer.handle(&records).await;
    assert_eq!(report.accepted, 3);
}

#[tokio::test]
async fn a_downstream_failure_is_retried_and_its_redelivery_processed_once() {
    let f = fixture(UpstreamSettings::default()).await;
    let sender = sender_of(&f.a);
    f.app.fail(true);
    let report = f
        .consumer
        .handle(&[
            record("m1", &sender, chat("a", 1)),
            record("m2", &sender, chat("a", 2)),
        ])
        .await;
    assert_eq!(report.failed, vec!["m1".to_string(), "m2".to_string()]);
    f.app.fail(false);
    let report = f
        .consumer
        .handle(&[
            record("m1", &sender, chat("a", 1)),
            record("m3", &sender, chat("a", 3)),
        ])
        .await;
    assert!(report.failed.is_empty());
    assert_eq!(report.accepted, 2);
    let again = f
        .consumer
        .handle(&[record("m1", &sender, chat("a", 1))])
        .await;
    assert_eq!(again.duplicates, 1);
    assert_eq!(f.app.delivered().len(), 2);
}

#[tokio::test]
async fn read_marks_history_and_heartbeat_records_presence() {
    let f = fixture(UpstreamSettings::default()).await;
    f.history
        .write_batch(&[HistoryRow {
            user_id: f.a.user_id,
            message_id: "h1".into(),
            created: NOW - 10,
            ttl: NOW + 86_400,
            message: "{}".into(),
        }])
        .await
        .unwrap();
    let sender = sender_of(&f.a);
    let read = json!({"v":1,"sessionId":"a","seq":1,"ts":NOW*1000,"type":"read","body":{"messageIds":["h1"]}});
    let beat = json!({"v":1,"sessionId":"a","seq":2,"ts":NOW*1000,"type":"heartbeat","body":{}});
    let report = f
        .consumer
        .handle(&[record("m1", &sender, read), record("m2", &sender, beat)])
        .await;
    assert_eq!(report.accepted, 2);
    assert!(
        f.app.delivered().is_empty(),
        "sqs-push's own types never reach the app"
    );
    assert!(f.history.is_read(f.a.user_id, "h1"));
    assert_eq!(
        f.store
            .last_seen(f.a.user_id, &f.a.session_id)
            .await
            .unwrap(),
        Some(NOW * 1_000)
    );
}

/// The consumer's own CPU per message (verify, dedupe, two buckets, route) against the in-memory
/// adapters, in batches of 10 from 100 sessions: `cargo test --release -p sqs-push-core --lib
/// consumer_cpu_per_message -- --ignored --nocapture` (docs/benchmarks.md, "Upstream").
#[tokio::test]
#[ignore = "a measurement, not a check: run by hand"]
async fn consumer_cpu_per_message() {
    let f = fixture(UpstreamSettings {
        session_rate: Rate {
            per_second: 1_000_000,
            burst: 1_000_000,
        },
        account_rate: Rate {
            per_second: 1_000_000,
            burst: 1_000_000,
        },
        ..UpstreamSettings::default()
    })
    .await;
    let sender = sender_of(&f.a);
    const MESSAGES: u64 = 100_000;
    let batches: Vec<Vec<UpstreamRecord>> = (0..MESSAGES / 10)
        .map(|batch| {
            (0..10)
                .map(|n| {
                    let seq = batch * 10 + n + 1;
                    record(&format!("m{seq}"), &sender, chat("a", seq))
                })
                .collect()
        })
        .collect();
    let started = std::time::Instant::now();
    let mut accepted = 0;
    for batch in &batches {
        accepted += f.consumer.handle(batch).await.accepted;
    }
    let took = started.elapsed();
    assert_eq!(accepted, MESSAGES);
    println!(
        "consumer: {MESSAGES} messages in {took:?} = {:.2} µs per message (in-memory adapters)",
        took.as_secs_f64() * 1e6 / MESSAGES as f64
    );
}
