//! The Lambda invoker against a local HTTP endpoint that records the Invoke request.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use sqs_push_aws::LambdaInvoker;
use sqs_push_core::ports::{AsyncFunction, Invoker};

#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    invocation_type: Option<String>,
    payload: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Recorded>>>;

async fn record(State(log): State<Log>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    log.lock().unwrap().push(Recorded {
        path: uri.path().to_string(),
        invocation_type: headers
            .get("x-amz-invocation-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        payload: body.to_vec(),
    });
    StatusCode::ACCEPTED
}

async fn lambda_endpoint() -> (String, Log) {
    let log = Log::default();
    let app = Router::new()
        .route("/{*path}", post(record))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), log)
}

async fn invoker(endpoint: &str) -> LambdaInvoker {
    let clients = sqs_push_aws::Clients::connect(&sqs_push_aws::Endpoint {
        region: "us-east-1".into(),
        endpoint_url: Some(endpoint.to_string()),
        credentials: Some(aws_credential_types::Credentials::new(
            "test", "test", None, None, "test",
        )),
    })
    .await;
    LambdaInvoker::new(clients.lambda, "sqs-push-prod")
}

#[tokio::test]
async fn an_async_invoke_posts_the_payload_to_the_named_function_as_an_event() {
    let (endpoint, log) = lambda_endpoint().await;
    let payload = br#"{"messages":["{}"],"deliveries":[]}"#.to_vec();
    invoker(&endpoint)
        .await
        .invoke_async(AsyncFunction::Sender, payload.clone())
        .await
        .expect("a 202 is success");
    let recorded = log.lock().unwrap().clone();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        recorded[0].path,
        "/2015-03-31/functions/sqs-push-prod-sender/invocations"
    );
    assert_eq!(recorded[0].invocation_type.as_deref(), Some("Event"));
    assert_eq!(recorded[0].payload, payload);
}

#[tokio::test]
async fn history_jobs_go_to_the_history_function() {
    let (endpoint, log) = lambda_endpoint().await;
    invoker(&endpoint)
        .await
        .invoke_async(AsyncFunction::History, b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(
        log.lock().unwrap()[0].path,
        "/2015-03-31/functions/sqs-push-prod-history/invocations"
    );
}
