//! The HTTP API: one axum Router, served by lambda_http on AWS and by axum::serve locally.
//!
//! Authentication is not here: API Gateway's IAM auth checks SigV4 on AWS, and the local stack
//! wraps this Router in its own SigV4 check.

mod channels;
mod cleanup;
mod error;
pub mod extract;
mod history;
mod notify;
pub mod params;
pub mod paths;
mod receipts;
mod session;

pub use error::ApiError;

use axum::Router;
use axum::routing::get;
use sqs_push_core::channel::ChannelService;
use sqs_push_core::cleanup::orphans::OrphanSweeper;
use sqs_push_core::dispatch::Dispatcher;
use sqs_push_core::history::read::HistoryReader;
use sqs_push_core::history::receipts::ReceiptService;
use sqs_push_core::session::SessionService;
use sqs_push_core::upstream::presence::PresenceService;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Subscribes sessions to channels and lists who is on one.
    pub channels: ChannelService,
    /// Creates and renews sessions.
    pub sessions: SessionService,
    /// Routes messages.
    pub dispatcher: Dispatcher,
    /// Sweeps orphan queues (`/cleanup`).
    pub orphans: OrphanSweeper,
    /// Reads user history.
    pub history: HistoryReader,
    /// Applies read receipts.
    pub receipts: ReceiptService,
    /// The upstream queue's URL, for create and renew answers; `None` when the stack has none.
    pub upstream_url: Option<String>,
    /// Sessions' and channels' presence.
    pub presence: PresenceService,
}

/// Every route of the api function.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/create/{accountId}/{userId}/{sessionId}",
            get(session::create).post(session::create),
        )
        .route(
            "/subscribe/{accountId}/{userId}/{sessionId}",
            axum::routing::post(channels::subscribe_many),
        )
        .route(
            "/subscribe/{accountId}/{userId}/{sessionId}/{*channel}",
            get(channels::subscribe).post(channels::subscribe),
        )
        .route(
            "/unsubscribe/{accountId}/{userId}/{sessionId}/{*channel}",
            get(channels::unsubscribe).post(channels::unsubscribe),
        )
        .route("/channels/{*channel}", get(channels::channel))
        .route(
            "/renew/{accountId}/{userId}/{sessionId}",
            get(session::renew),
        )
        .route(
            "/destroy/{accountId}/{userId}/{sessionId}",
            get(session::destroy),
        )
        .route(
            "/status/{accountId}/{userId}/{sessionId}",
            get(session::status),
        )
        .route("/status", get(session::list))
        .route("/cleanup", get(cleanup::orphans))
        .route("/notify", get(notify::everyone).post(notify::everyone))
        .route(
            "/notify/account/{accountId}",
            get(notify::account).post(notify::account),
        )
        .route(
            "/notify/channel/{*channel}",
            get(notify::channel).post(notify::channel),
        )
        .route(
            "/notify/user/{userId}",
            get(notify::user).post(notify::user),
        )
        .route(
            "/notify/user/{userId}/session/{sessionId}",
            get(notify::session).post(notify::session),
        )
        .route("/messages/user/{userId}", get(history::messages))
        .route(
            "/messages/set-read/user/{userId}",
            axum::routing::post(receipts::listed),
        )
        .route(
            "/messages/set-read/user/{userId}/message/{messageId}",
            get(receipts::named),
        )
        .route(
            "/messages/set-read/user/{userId}/asof/{timestamp}",
            get(receipts::as_of),
        )
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn(refuse_repeated_query_keys))
        .layer(axum::middleware::from_fn(refuse_head))
        .layer(axum::middleware::map_response(error::json_errors))
        .with_state(state)
}

/// HEAD is refused on every route: axum's `get` would answer it by running the handler, so
/// `HEAD /notify` would send and `HEAD /create/...` would create.
async fn refuse_head(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if request.method() == axum::http::Method::HEAD {
        return (
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            "HEAD is not allowed on this API; use GET or POST",
        )
            .into_response();
    }
    next.run(request).await
}

/// A query key given twice is refused on every route: SigV4 signs the query sorted by key and
/// value, so the order of `?userId=1&userId=2` is not signed, and a captured request replayed
/// with the pair swapped would otherwise reach another target.
async fn refuse_repeated_query_keys(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(query) = request.uri().query() {
        let pairs: Vec<(String, String)> = match serde_urlencoded::from_str(query) {
            Ok(pairs) => pairs,
            Err(error) => {
                return ApiError::bad_request(format!("malformed query string: {error}"))
                    .into_response();
            }
        };
        let mut seen = std::collections::HashSet::new();
        if let Some((name, _)) = pairs.iter().find(|(name, _)| !seen.insert(name.as_str())) {
            return ApiError::bad_request(format!(
                "query parameter {name:?} is given more than once; give each parameter once"
            ))
            .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use serde_json::Value;
    use sqs_push_core::testing::ManualClock;
    use sqs_push_core::testing::memory::{
        MemoryHistory, MemoryIdentities, MemoryQueues, MemorySessionStore, MemoryUpstream,
        RecordingAppTarget, RecordingInvoker,
    };
    use tower::ServiceExt;

    use crate::config::StackConfig;
    use crate::wiring::{Adapters, api_state};

    fn memory_router() -> axum::Router {
        memory_router_with(Arc::new(MemorySessionStore::default()))
    }

    fn memory_router_with(sessions: Arc<MemorySessionStore>) -> axum::Router {
        let clock = Arc::new(ManualClock::at(1_000_000));
        let upstream = Arc::new(MemoryUpstream::default());
        let adapters = Adapters {
            sessions,
            queues: Arc::new(MemoryQueues::default()),
            identities: Arc::new(MemoryIdentities::new(clock.clone(), 3600)),
            history: Arc::new(MemoryHistory::default()),
            invoker: Arc::new(RecordingInvoker::default()),
            upstream: upstream.clone(),
            presence: upstream,
            app: Arc::new(RecordingAppTarget::default()),
            clock,
        };
        let config = StackConfig::for_stage("test", "us-east-1");
        super::router(api_state(&config, &adapters).unwrap())
    }

    async fn answer(request: Request<Body>) -> (StatusCode, Value) {
        let response = memory_router().oneshot(request).await.unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (
            status,
            serde_json::from_slice(&body).expect("every answer is JSON"),
        )
    }

    #[tokio::test]
    async fn an_oversized_body_is_a_json_413() {
        let body = format!("{{\"message\":\"{}\"}}", "x".repeat(3 << 20));
        let request = Request::post("/notify").body(Body::from(body)).unwrap();
        let (status, answer) = answer(request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(answer["success"], false);
        assert!(
            answer["error"].as_str().unwrap().contains("length limit"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn a_bad_path_id_is_a_400_saying_only_what_is_wrong_with_it() {
        for (uri, error) in [
            (
                "/create/007/2/s",
                "invalid accountId: must not have leading zeros",
            ),
            (
                "/notify/user/x",
                "invalid userId: must be a non-negative integer",
            ),
            (
                "/messages/set-read/user/1/asof/soon",
                "invalid timestamp: must be non-negative epoch seconds",
            ),
        ] {
            let request = Request::get(uri).body(Body::empty()).unwrap();
            let (status, answer) = answer(request).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {answer}");
            let said = answer["error"].as_str().unwrap();
            assert!(said.starts_with(error), "{uri}: {answer}");
        }
    }

    #[tokio::test]
    async fn a_wrong_method_is_a_json_405() {
        let request = Request::delete("/notify").body(Body::empty()).unwrap();
        let (status, answer) = answer(request).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(answer["success"], false);
    }

    #[tokio::test]
    async fn a_post_body_that_is_not_an_object_is_a_400_naming_the_problem() {
        let request = Request::post("/notify/user/1")
            .body(Body::from("[1]"))
            .unwrap();
        let (status, answer) = answer(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(answer["error"], "message body must be a JSON object");
    }

    #[tokio::test]
    async fn a_failed_notify_answers_with_the_message_id_to_retry_with() {
        let sessions = Arc::new(MemorySessionStore::default());
        sessions.fail_reads(Some(sqs_push_core::PortErrorKind::Transient));
        let request = Request::post("/notify/user/1")
            .body(Body::from(r#"{"message":"x","messageId":"retry-me"}"#))
            .unwrap();
        let response = memory_router_with(sessions).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let answer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(answer["success"], false);
        assert_eq!(answer["messageId"], "retry-me", "{answer}");
    }

    #[tokio::test]
    async fn head_is_a_405_on_every_route() {
        for uri in ["/notify?message=x", "/create/1/2/s", "/status", "/nowhere"] {
            let request = Request::head(uri).body(Body::empty()).unwrap();
            let response = memory_router().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{uri}");
        }
    }

    #[tokio::test]
    async fn notify_refuses_bad_targets_naming_the_field() {
        for (uri, field) in [
            ("/notify?userID=5&message=x", "userID"),
            ("/notify?user_id=5&message=x", "userId"),
            ("/notify?userId=007&message=x", "userId"),
            ("/notify?sessionId=s&message=x", "sessionId"),
            ("/notify/user/1?userId=2&message=x", "userId"),
            ("/notify/account/1?accountId=2&message=x", "accountId"),
            ("/notify/user/1/session/a?sessionId=b", "sessionId"),
            ("/notify/user/1?_sqs_only=no", "_sqs_only"),
        ] {
            let request = Request::get(uri).body(Body::empty()).unwrap();
            let (status, answer) = answer(request).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {answer}");
            assert!(
                answer["error"].as_str().unwrap().contains(field),
                "{uri}: {answer}"
            );
        }
    }

    #[tokio::test]
    async fn a_query_key_given_twice_is_a_400_naming_it_on_every_route() {
        for uri in [
            "/notify/user/1?userId=1&userId=2&message=x",
            "/notify?accountId=1&accountId=2",
            "/messages/user/1?limit=5&limit=6",
            "/status?limit=1&limit=1",
            "/create/1/2/s?retention=60&retention=61",
        ] {
            let request = Request::get(uri).body(Body::empty()).unwrap();
            let (status, answer) = answer(request).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {answer}");
            assert!(
                answer["error"].as_str().unwrap().contains("more than once"),
                "{uri}: {answer}"
            );
        }
    }

    #[tokio::test]
    async fn a_message_for_everyone_with_a_look_alike_target_is_a_400_never_a_broadcast() {
        let requests = [
            Request::get("/notify?userId%5B%5D=1&message=x").body(Body::empty()),
            Request::get("/notify?userIds=1&message=x").body(Body::empty()),
            Request::get("/notify?user=1&message=x").body(Body::empty()),
            Request::post("/notify").body(Body::from(r#"{"userIds":[1],"message":"x"}"#)),
            Request::post("/notify").body(Body::from(r#"{"target":{"userId":1}}"#)),
        ];
        for (request, field) in requests
            .into_iter()
            .zip(["userId[]", "userIds", "user", "userIds", "target"])
        {
            let (status, answer) = answer(request.unwrap()).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
            assert!(
                answer["error"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("{field:?}")),
                "{field}: {answer}"
            );
        }
        // Said outright, it is everyone; on a targeted route such fields are message fields.
        let request = Request::post("/notify")
            .body(Body::from(r#"{"userIds":[1],"_broadcast":true}"#))
            .unwrap();
        assert_eq!(answer(request).await.0, StatusCode::ACCEPTED);
        let request = Request::get("/notify/user/1?userIds=1&message=x")
            .body(Body::empty())
            .unwrap();
        assert_eq!(answer(request).await.0, StatusCode::OK);
        let request = Request::get("/notify/user/1?_broadcast=true")
            .body(Body::empty())
            .unwrap();
        assert_eq!(answer(request).await.0, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn notify_accepts_matching_and_narrowing_fields() {
        for uri in [
            "/notify?userId=5&message=x",
            "/notify/user/1?userId=1&message=x",
            "/notify/user/1?accountId=3&message=x",
            "/notify/account/1?sessionId=s&message=x",
        ] {
            let request = Request::get(uri).body(Body::empty()).unwrap();
            let (status, answer) = answer(request).await;
            assert_eq!(status, StatusCode::OK, "{uri}: {answer}");
        }
        // Everyone: accepted for the segmented fan-out.
        let request = Request::get("/notify?message=Hello+Everyone")
            .body(Body::empty())
            .unwrap();
        let (status, answer) = answer(request).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    }

    #[tokio::test]
    async fn a_message_whose_history_row_would_not_fit_is_a_413_naming_the_limit() {
        let body = format!("{{\"message\":\"{}\"}}", "x".repeat(500 * 1024));
        let request = Request::post("/notify/user/1")
            .body(Body::from(body))
            .unwrap();
        let (status, answer) = answer(request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("DynamoDB"),
            "{answer}"
        );
    }
}
