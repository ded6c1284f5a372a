//! Property tests (issue 11, item 8) of the edge: page tokens round-trip and arbitrary strings
//! never panic the decoders; the api Router (on the in-memory adapters) answers every arbitrary
//! path, query, method and body with JSON and never with a 5xx or a panic. Bounded case counts.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request};
use proptest::prelude::*;
use sqs_push_core::model::message::MessageId;
use sqs_push_core::ports::{HistoryCursor, SessionCursor};
use sqs_push_core::testing::ManualClock;
use sqs_push_core::testing::memory::{
    MemoryHistory, MemoryIdentities, MemoryQueues, MemorySessionStore, RecordingInvoker,
};
use sqs_push_core::{SessionId, UserId};
use sqs_push_functions::api::extract;
use sqs_push_functions::api::params::{
    HistoryQuery, history_cursor, history_token, page_request, session_cursor, session_token,
};
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::wiring::{Adapters, api_state};
use tower::ServiceExt;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A path segment: ids near their grammars, hostile encodings, or anything encoded.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{1,18}",
        Just("0".to_string()),
        Just("007".to_string()),
        Just("9007199254740992".to_string()),
        Just(".".to_string()),
        Just("..".to_string()),
        Just("%2F".to_string()),
        Just("%00".to_string()),
        Just("%FF".to_string()),
        Just("%".to_string()),
        Just("x".repeat(257)),
        "[a-zA-Z0-9._~-]{1,20}",
        any::<String>().prop_map(|s| encode(&s)),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let route = prop_oneof![
        Just(""),
        Just("/create"),
        Just("/renew"),
        Just("/destroy"),
        Just("/status"),
        Just("/cleanup"),
        Just("/notify"),
        Just("/notify/account"),
        Just("/notify/user"),
        Just("/messages/user"),
        Just("/messages/set-read/user"),
    ];
    (route, proptest::collection::vec(segment(), 0..5))
        .prop_map(|(route, segments)| format!("{route}/{}", segments.join("/")))
}

fn query() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("message".to_string()),
        Just("userId".to_string()),
        Just("sessionId".to_string()),
        Just("accountId".to_string()),
        Just("limit".to_string()),
        Just("next".to_string()),
        Just("start".to_string()),
        Just("end".to_string()),
        Just("async".to_string()),
        Just("MessageRetentionPeriod".to_string()),
        Just("_sqs_only".to_string()),
        any::<String>().prop_map(|s| encode(&s)),
    ];
    let pair = (name, segment()).prop_map(|(name, value)| format!("{name}={value}"));
    prop_oneof![
        proptest::collection::vec(pair, 0..4).prop_map(|pairs| pairs.join("&")),
        Just("a=%ZZ".to_string()),
        Just("&&==&".to_string()),
        Just("next=".to_string() + &"A".repeat(5000)),
    ]
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("{}".to_string()),
        Just("[]".to_string()),
        Just("null".to_string()),
        Just("{\"message\":".to_string()),
        Just("{\"message\":{\"a\":[1,2,{\"b\":null}]},\"userId\":5}".to_string()),
        Just("{\"message\":1e999999}".to_string()),
        Just("{\"userId\":\"x\",\"message\":\"m\"}".to_string()),
        Just("[\"id1\",\"id2\"]".to_string()),
        any::<String>(),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::HEAD),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::OPTIONS),
        Just(Method::PATCH),
    ]
}

fn memory_router() -> axum::Router {
    let clock = Arc::new(ManualClock::at(1_000_000));
    let upstream = Arc::new(sqs_push_core::testing::memory::MemoryUpstream::default());
    let adapters = Adapters {
        sessions: Arc::new(MemorySessionStore::default()),
        queues: Arc::new(MemoryQueues::default()),
        identities: Arc::new(MemoryIdentities::new(clock.clone(), 3600)),
        history: Arc::new(MemoryHistory::default()),
        upstream: upstream.clone(),
        presence: upstream,
        app: Arc::new(sqs_push_core::testing::memory::RecordingAppTarget::default()),
        invoker: Arc::new(RecordingInvoker::default()),
        clock,
    };
    let config = StackConfig::for_stage("test", "us-east-1");
    sqs_push_functions::api::router(api_state(&config, &adapters).unwrap())
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn the_router_answers_everything_with_json_and_never_a_5xx(
        method in method(),
        path in path(),
        query in query(),
        body in body(),
    ) {
        let uri = if query.is_empty() { path.clone() } else { format!("{path}?{query}") };
        let request = Request::builder().method(method.clone()).uri(&uri).body(Body::from(body));
        prop_assume!(request.is_ok());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (status, bytes) = runtime.block_on(async {
            let response = memory_router().oneshot(request.unwrap()).await.unwrap();
            let status = response.status();
            (status, to_bytes(response.into_body(), 1 << 22).await.unwrap())
        });
        prop_assert!(!status.is_server_error(), "{method} {uri}: {status} {bytes:?}");
        prop_assert!(
            status.is_success() || status.is_client_error(),
            "{method} {uri}: {status}"
        );
        if method != Method::HEAD {
            let json: Result<serde_json::Value, _> = serde_json::from_slice(&bytes);
            prop_assert!(json.is_ok(), "{method} {uri}: {status} answered non-JSON {bytes:?}");
        }
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn session_tokens_round_trip(user in 0u64..=(1 << 53) - 1, session in "[ -.0-~]{1,256}") {
        prop_assume!(session != "." && session != "..");
        let cursor = SessionCursor {
            user_id: UserId::try_from(user).unwrap(),
            session_id: SessionId::parse(&session).unwrap(),
        };
        prop_assert_eq!(session_cursor(&session_token(&cursor)), Ok(cursor));
    }

    #[test]
    fn history_tokens_round_trip(created in any::<u64>()) {
        let cursor = HistoryCursor { created, message_id: MessageId::random() };
        let decoded = history_cursor(&history_token(&cursor)).ok();
        // A `created` past 2^53-1 cannot come from a row (times are safe integers): refused.
        if created < (1 << 53) {
            prop_assert_eq!(decoded, Some(cursor));
        } else {
            prop_assert_eq!(decoded, None);
        }
    }

    #[test]
    fn arbitrary_tokens_and_page_queries_never_panic(raw in any::<String>(), query in query()) {
        let _ = session_cursor(&raw);
        let _ = history_cursor(&raw);
        if let Ok(params) = extract::query::<HistoryQuery>(Some(&query)) {
            let _ = page_request(&params);
        }
        let token_like = format!("next={}", encode(&raw));
        if let Ok(params) = extract::query::<HistoryQuery>(Some(&token_like)) {
            let _ = page_request(&params);
        }
    }
}
