//! `/notify` to everyone through the api Router on in-memory adapters: answered 202 with the
//! plan, and one `dispatcher` payload per segment handed off.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use serde_json::Value;
use sqs_push_core::dispatch::segment::SegmentJob;
use sqs_push_core::ports::AsyncFunction;
use sqs_push_core::testing::ManualClock;
use sqs_push_core::testing::memory::{
    MemoryHistory, MemoryIdentities, MemoryQueues, MemorySessionStore, RecordingInvoker,
    seed_session,
};
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::wiring::{Adapters, api_state};
use tower::ServiceExt;

#[tokio::test]
async fn notify_to_everyone_is_a_202_with_the_plan_and_one_segment_job_per_segment() {
    let clock = Arc::new(ManualClock::at(1_000_000));
    let store = Arc::new(MemorySessionStore::default());
    let queues = Arc::new(MemoryQueues::default());
    for user in 0..30 {
        seed_session(&store, &queues, 1, user, "a", 2_000_000).await;
    }
    let invoker = Arc::new(RecordingInvoker::default());
    let adapters = Adapters {
        sessions: store,
        queues,
        identities: Arc::new(MemoryIdentities::new(clock.clone(), 3600)),
        history: Arc::new(MemoryHistory::default()),
        invoker: invoker.clone(),
        clock,
    };
    let mut config = StackConfig::for_stage("test", "us-east-1");
    config.dispatch.broadcast_segments = 5;
    let router = sqs_push_functions::api::router(api_state(&config, &adapters).unwrap());

    let request = Request::get("/notify?message=hi")
        .body(Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let answer: Value = serde_json::from_slice(&body).unwrap();

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
            assert_eq!((job.total_segments, job.start.as_ref()), (5, None));
            assert_eq!(job.message_id, message_id);
            job.segment
        })
        .collect();
    segments.sort_unstable();
    assert_eq!(segments, vec![0, 1, 2, 3, 4]);
    assert!(
        invoker.payloads(AsyncFunction::Sender).is_empty(),
        "nothing sent by the api"
    );
}
