//! `/notify` to everyone, and to a large account, through the api Router on in-memory adapters:
//! answered 202 with the plan, and one `dispatcher` payload per scope handed off.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::Value;
use sqs_push_core::dispatch::segment::{Scope, SegmentJob};
use sqs_push_core::model::ids::AccountId;
use sqs_push_core::ports::AsyncFunction;
use sqs_push_core::testing::ManualClock;
use sqs_push_core::testing::memory::{
    MemoryHistory, MemoryIdentities, MemoryQueues, MemorySessionStore, RecordingInvoker,
    seed_session,
};
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::wiring::{Adapters, api_state};
use tower::ServiceExt;

/// The api Router on in-memory adapters with `sessions` seeded ((account, user) each, one
/// session "a"), and the invoker that records what it hands off.
async fn api(
    sessions: impl IntoIterator<Item = (u64, u64)>,
    configure: impl FnOnce(&mut StackConfig),
) -> (axum::Router, Arc<RecordingInvoker>) {
    let clock = Arc::new(ManualClock::at(1_000_000));
    let store = Arc::new(MemorySessionStore::default());
    let queues = Arc::new(MemoryQueues::default());
    for (account, user) in sessions {
        seed_session(&store, &queues, account, user, "a", 2_000_000).await;
    }
    let invoker = Arc::new(RecordingInvoker::default());
    let upstream = Arc::new(sqs_push_core::testing::memory::MemoryUpstream::default());
    let adapters = Adapters {
        sessions: store,
        queues,
        identities: Arc::new(MemoryIdentities::new(clock.clone(), 3600)),
        history: Arc::new(MemoryHistory::default()),
        upstream: upstream.clone(),
        presence: upstream,
        app: Arc::new(sqs_push_core::testing::memory::RecordingAppTarget::default()),
        invoker: invoker.clone(),
        clock,
    };
    let mut config = StackConfig::for_stage("test", "us-east-1");
    configure(&mut config);
    let router = sqs_push_functions::api::router(api_state(&config, &adapters).unwrap());
    (router, invoker)
}

async fn get(router: &axum::Router, uri: &str) -> (StatusCode, Value) {
    let request = Request::get(uri).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn notify_to_everyone_is_a_202_with_the_plan_and_one_segment_job_per_segment() {
    let (router, invoker) = api((0..30).map(|user| (1, user)), |config| {
        config.dispatch.broadcast_segments = 5;
    })
    .await;
    let (status, answer) = get(&router, "/notify?message=hi").await;

    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let message_id = answer["messageId"].as_str().unwrap().to_string();
    assert_eq!(
        answer,
        serde_json::json!({
            "success": true,
            "messageId": message_id,
            "segments": 5,
            "estimatedSessions": 30,
        })
    );
    let mut segments: Vec<u32> = invoker
        .payloads(AsyncFunction::Dispatcher)
        .iter()
        .map(|payload| {
            let job: SegmentJob = serde_json::from_slice(payload).unwrap();
            assert_eq!(job.start, None);
            assert_eq!(job.messages.len(), 1);
            assert_eq!(job.messages[0].message_id, message_id);
            match job.scope {
                Scope::Segment {
                    segment,
                    total_segments: 5,
                } => segment,
                other => panic!("not a segment of 5: {other:?}"),
            }
        })
        .collect();
    segments.sort_unstable();
    assert_eq!(segments, vec![0, 1, 2, 3, 4]);
    assert!(
        invoker.payloads(AsyncFunction::Sender).is_empty(),
        "nothing sent by the api"
    );
}

#[tokio::test]
async fn notify_to_a_large_account_is_a_202_and_a_small_one_is_sent_at_once() {
    let accounts = (0..12)
        .map(|user| (7, user))
        .chain((100..103).map(|user| (8, user)));
    let (router, invoker) = api(accounts, |config| config.dispatch.large_account = 10).await;

    let (status, answer) = get(&router, "/notify/account/7?message=big").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["segments"], 1, "{answer}");
    let payloads = invoker.payloads(AsyncFunction::Dispatcher);
    assert_eq!(payloads.len(), 1);
    let job: SegmentJob = serde_json::from_slice(&payloads[0]).unwrap();
    assert_eq!(
        job.scope,
        Scope::Account {
            account_id: AccountId::try_from(7).unwrap()
        }
    );
    assert_eq!(job.messages[0].message_id, answer["messageId"]);
    assert!(invoker.payloads(AsyncFunction::Sender).is_empty());

    let (status, answer) = get(&router, "/notify/account/8?message=small").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["sentDirectly"], 3, "{answer}");
    assert_eq!(invoker.payloads(AsyncFunction::Dispatcher).len(), 1);
}
