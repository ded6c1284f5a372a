//! The real Lambda binaries (`crates/functions/src/bin`), each run behind a small Lambda Runtime
//! API server written here, handed recorded events, with their effects checked against the
//! emulator: an API Gateway REST request for `/create`, a Kinesis batch with a poison record, a
//! `sender` payload and a DynamoDB-stream REMOVE.
//!
//! The binaries are the debug host builds cargo makes for `cargo test --workspace` (the
//! functions crate's own integration tests make cargo build its bins); building release
//! binaries for the host as well would double the CI build for no extra coverage — the arm64
//! release zips are checked by `scripts/package` and the template tests.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sqs_push_core::crypto::SessionKey;
use sqs_push_local::LocalStack;
use sqs_push_tests::*;
use tokio::sync::{mpsc, oneshot};

/// What a function answered to one invocation.
#[derive(Debug)]
enum Answer {
    /// `POST …/response`.
    Response(Value),
    /// `POST …/error`.
    Error(Value),
}

struct Pending {
    id: String,
    event: Value,
    answer: oneshot::Sender<Answer>,
}

#[derive(Clone)]
struct ServerState {
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>>,
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Answer>>>>,
    function_arn: String,
    init_error: Arc<Mutex<Option<String>>>,
}

async fn next(State(state): State<ServerState>) -> Response {
    let Some(pending) = state.queue.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 60_000;
    state
        .waiting
        .lock()
        .unwrap()
        .insert(pending.id.clone(), pending.answer);
    let mut headers = HeaderMap::new();
    headers.insert(
        "Lambda-Runtime-Aws-Request-Id",
        HeaderValue::from_str(&pending.id).unwrap(),
    );
    headers.insert(
        "Lambda-Runtime-Deadline-Ms",
        HeaderValue::from_str(&deadline.to_string()).unwrap(),
    );
    headers.insert(
        "Lambda-Runtime-Invoked-Function-Arn",
        HeaderValue::from_str(&state.function_arn).unwrap(),
    );
    headers.insert(
        "Lambda-Runtime-Trace-Id",
        HeaderValue::from_static("Root=1-00000000-000000000000000000000000;Sampled=0"),
    );
    headers.insert("Content-Type", HeaderValue::from_static("application/json"));
    (headers, pending.event.to_string()).into_response()
}

fn answered(state: &ServerState, id: &str, answer: Answer) -> StatusCode {
    match state.waiting.lock().unwrap().remove(id) {
        Some(waiter) => {
            let _ = waiter.send(answer);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    answered(&state, &id, Answer::Response(json_of(&body)))
}

async fn error(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    answered(&state, &id, Answer::Error(json_of(&body)))
}

async fn on_init_error(State(state): State<ServerState>, body: Bytes) -> StatusCode {
    *state.init_error.lock().unwrap() = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

/// One function binary behind its own Runtime API; the process is killed when dropped.
struct Function {
    name: &'static str,
    child: Child,
    invocations: mpsc::UnboundedSender<Pending>,
    logs: Arc<Mutex<Vec<String>>>,
    init_error: Arc<Mutex<Option<String>>>,
    counter: usize,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where cargo put the host binaries: next to this test's own `deps/` folder.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from <target>/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the Lambda binaries first (`cargo build -p sqs-push-functions --bins`; \
         `cargo test --workspace` builds them)",
        path.display()
    );
    path
}

impl Function {
    /// Serves the Runtime API on a free port and starts the binary `name` against it, configured
    /// for `stack` on `emulator`.
    async fn start(name: &'static str, emulator: &Emulator, stack: &LocalStack) -> Self {
        let (invocations, queue) = mpsc::unbounded_channel();
        let init_error = Arc::new(Mutex::new(None));
        let function_name = format!("sqs-push-local-{name}");
        let state = ServerState {
            queue: Arc::new(tokio::sync::Mutex::new(queue)),
            waiting: Arc::new(Mutex::new(HashMap::new())),
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
            init_error: init_error.clone(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(on_init_error))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let config = &stack.config;
        // The stack's dead-letter queue, as serverless.yml hands it to every function: where
        // the dispatcher puts a poison record (without one it could only retry it).
        let dead_letters = aws_sdk_sqs::Client::new(&admin_config(emulator).await)
            .get_queue_url()
            .queue_name(format!("sqs-push-dlq-{}", config.stage))
            .send()
            .await
            .expect("the local stack made its dead-letter queue")
            .queue_url()
            .expect("a queue url")
            .to_string();
        let mut child = Command::new(binary(name))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &function_name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
            // As serverless.yml sets it: the router's paths carry no stage prefix (without it,
            // lambda_http prefixes REST API paths with the stage and every route is a 404).
            .env("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true")
            .env("AWS_REGION", &config.region)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("SQS_PUSH_STAGE", &config.stage)
            .env("SQS_PUSH_REGION", &config.region)
            .env("SQS_PUSH_ENDPOINT_URL", &emulator.url)
            .env("SQS_PUSH_IDENTITY_POOL_ID", &config.identity_pool_id)
            .env("SQS_PUSH_UNAUTH_ROLE_ARN", &config.unauthenticated_role_arn)
            .env("SQS_PUSH_DEAD_LETTER_QUEUE_URL", &dead_letters)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        let logs = Arc::new(Mutex::new(Vec::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    logs.lock().unwrap().push(line);
                }
            });
        }
        Self {
            name,
            child,
            invocations,
            logs,
            init_error,
            counter: 0,
        }
    }

    /// Hands `event` to the function and waits for its answer.
    async fn invoke(&mut self, event: Value) -> Answer {
        self.counter += 1;
        let (answer, answered) = oneshot::channel();
        self.invocations
            .send(Pending {
                id: format!("{}-request-{}", self.name, self.counter),
                event,
                answer,
            })
            .unwrap();
        match tokio::time::timeout(Duration::from_secs(60), answered).await {
            Ok(Ok(answer)) => answer,
            _ => panic!(
                "{} did not answer within 60 s (init error: {:?}; exit: {:?}); logs:\n{}",
                self.name,
                self.init_error.lock().unwrap(),
                self.child.try_wait(),
                self.logs.lock().unwrap().join("\n")
            ),
        }
    }

    /// Hands `event` over and expects a `/response`.
    async fn respond(&mut self, event: Value) -> Value {
        match self.invoke(event).await {
            Answer::Response(value) => value,
            Answer::Error(error) => panic!(
                "{} answered an error: {error}; logs:\n{}",
                self.name,
                self.logs.lock().unwrap().join("\n")
            ),
        }
    }

    fn log_lines(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }
}

/// A recorded API Gateway REST (v1) proxy event, trimmed of nothing lambda_http reads; a
/// `?a=b&…` on `path` becomes its query string parameters (plain values only).
fn api_gateway_get(path: &str) -> Value {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .collect();
    let (single, multi) = if pairs.is_empty() {
        (Value::Null, Value::Null)
    } else {
        (
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect(),
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), json!([v])))
                .collect(),
        )
    };
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": "GET",
        "headers": {
            "Accept": "application/json",
            "Host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "User-Agent": "sqs-push-tests",
            "X-Forwarded-Proto": "https"
        },
        "multiValueHeaders": {
            "Accept": ["application/json"],
            "Host": ["abcdef1234.execute-api.us-east-1.amazonaws.com"],
            "User-Agent": ["sqs-push-tests"],
            "X-Forwarded-Proto": ["https"]
        },
        "queryStringParameters": single,
        "multiValueQueryStringParameters": multi,
        "pathParameters": {"proxy": path.trim_start_matches('/')},
        "stageVariables": null,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": "/{proxy+}",
            "httpMethod": "GET",
            "extendedRequestId": "Xyz=",
            "requestTime": "23/Nov/2026:10:00:00 +0000",
            "path": format!("/local{path}"),
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "local",
            "domainPrefix": "abcdef1234",
            "requestTimeEpoch": 1_795_428_000_000_u64,
            "requestId": "5a1b2c3d-0000-4000-8000-000000000001",
            "identity": {
                "cognitoIdentityPoolId": null,
                "accountId": "123456789012",
                "cognitoIdentityId": null,
                "caller": "AIDAEXAMPLE",
                "sourceIp": "203.0.113.7",
                "principalOrgId": null,
                "accessKey": "AKIAEXAMPLE",
                "cognitoAuthenticationType": null,
                "cognitoAuthenticationProvider": null,
                "userArn": "arn:aws:iam::123456789012:user/tester",
                "userAgent": "sqs-push-tests",
                "user": "AIDAEXAMPLE"
            },
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "apiId": "abcdef1234"
        },
        "body": null,
        "isBase64Encoded": false
    })
}

/// A recorded Kinesis event with the given record payloads.
fn kinesis_event(payloads: &[&[u8]]) -> Value {
    use base64::Engine as _;
    let records: Vec<Value> = payloads
        .iter()
        .enumerate()
        .map(|(index, data)| {
            let sequence = format!("4959000000000000000000000000000000000000000000000000000{index}");
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": format!("key-{index}"),
                    "sequenceNumber": sequence,
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "approximateArrivalTimestamp": 1_795_428_000.123
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{sequence}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/sqs-push-local-dispatcher",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/sqs-push-local-events"
            })
        })
        .collect();
    json!({ "Records": records })
}

/// A DynamoDB item as a stream image (`{"S": …}`, `{"N": …}`…).
fn stream_image(item: &HashMap<String, AttributeValue>) -> Value {
    fn value(attribute: &AttributeValue) -> Value {
        match attribute {
            AttributeValue::S(s) => json!({ "S": s }),
            AttributeValue::N(n) => json!({ "N": n }),
            AttributeValue::Bool(b) => json!({ "BOOL": b }),
            AttributeValue::Null(_) => json!({ "NULL": true }),
            AttributeValue::Ss(list) => json!({ "SS": list }),
            AttributeValue::Ns(list) => json!({ "NS": list }),
            AttributeValue::L(list) => json!({ "L": list.iter().map(value).collect::<Vec<_>>() }),
            AttributeValue::M(map) => json!({ "M": stream_image(map) }),
            other => panic!("no stream form for {other:?} in this test"),
        }
    }
    Value::Object(
        item.iter()
            .map(|(name, attribute)| (name.clone(), value(attribute)))
            .collect(),
    )
}

/// The one message in a queue, decrypted (waits up to 10 s).
/// The CloudWatch EMF documents among a function's log lines.
fn emf_documents(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|document| document.get("_aws").is_some())
        .collect()
}

async fn receive_one(sqs: &aws_sdk_sqs::Client, queue_url: &str, key: &SessionKey) -> Vec<Value> {
    let receiver = Receiver {
        account: 0,
        user: 0,
        session: String::new(),
        queue_url: queue_url.to_string(),
        key: key.clone(),
    };
    drain(sqs, &receiver, 10).await
}

async fn queue_exists(sqs: &aws_sdk_sqs::Client, name: &str) -> bool {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(_) => true,
        Err(error) => {
            let error = error.into_service_error();
            assert!(error.is_queue_does_not_exist(), "GetQueueUrl: {error:?}");
            false
        }
    }
}

async fn identity_exists(cognito: &aws_sdk_cognitoidentity::Client, identity_id: &str) -> bool {
    match cognito
        .describe_identity()
        .identity_id(identity_id)
        .send()
        .await
    {
        Ok(_) => true,
        Err(error) => {
            let error = error.into_service_error();
            assert!(
                error.is_resource_not_found_exception(),
                "DescribeIdentity: {error:?}"
            );
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_binaries_answer_recorded_events_behind_a_runtime_api() {
    // The local stack provisions the emulator (tables, stream, pool, role) and names them.
    let stack = Stack::start().await;
    let emulator = &stack.emulator;
    let admin = admin_config(emulator).await;
    let sqs = aws_sdk_sqs::Client::new(&admin);
    let dynamodb = aws_sdk_dynamodb::Client::new(&admin);
    let cognito = aws_sdk_cognitoidentity::Client::new(&admin);
    let session_id = unique_session_id("rt");
    let (account, user) = (41, 42);

    // api: GET /create/{a}/{u}/{s} as API Gateway's REST proxy event.
    let mut api = Function::start("api", emulator, &stack).await;
    let answer = api
        .respond(api_gateway_get(&format!(
            "/create/{account}/{user}/{session_id}"
        )))
        .await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().expect("a text body"))
        .unwrap_or_else(|_| panic!("the body is JSON: {answer}"));
    let session = &body["session"];
    let queue_url = text(session, "sqsUrl").to_string();
    let queue_name = text(session, "sqsQueueName").to_string();
    let identity_id = text(session, "identityId").to_string();
    let key = SessionKey::from_base64(text(session, "aesKey")).unwrap();
    assert!(
        queue_exists(&sqs, &queue_name).await,
        "the queue was created"
    );
    // api: a /notify to that user; its delivery counts reach CloudWatch as EMF, beside its
    // latency (the api once emitted no Deliveries* counts at all).
    let answer = api
        .respond(api_gateway_get(&format!("/notify/user/{user}?marker=api")))
        .await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let got = receive_one(&sqs, &queue_url, &key).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["marker"], "api", "{got:?}");
    let emitted = emf_documents(&api.log_lines());
    assert!(
        emitted
            .iter()
            .any(|document| document["DeliveriesSent"] == 1.0
                && document["DispatchLatency"].is_number()),
        "the api's /notify counts its delivery: {emitted:?}"
    );
    drop(api);

    // dispatcher: one good record for that user, one poison record.
    let mut dispatcher = Function::start("dispatcher", emulator, &stack).await;
    let good = json!({"userId": user, "message": {"marker": "kinesis"}}).to_string();
    let answer = dispatcher
        .respond(kinesis_event(&[good.as_bytes(), b"not json at all"]))
        .await;
    let failures = answer["batchItemFailures"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        failures.is_empty(),
        "a poison record is skipped, not retried: {answer}"
    );
    // Skipped into the dead-letter queue, as the record: nothing ends only in a log line.
    let dead_letters = sqs
        .receive_message()
        .queue_url(
            sqs.get_queue_url()
                .queue_name(format!("sqs-push-dlq-{}", stack.config.stage))
                .send()
                .await
                .unwrap()
                .queue_url()
                .unwrap(),
        )
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    assert_eq!(dead_letters.messages().len(), 1, "{dead_letters:?}");
    let letter = dead_letters.messages()[0].body().unwrap_or_default();
    assert!(letter.contains("oison"), "{letter}");
    let got = receive_one(&sqs, &queue_url, &key).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].to_string().contains("kinesis"), "{got:?}");
    let counted = dispatcher.log_lines().iter().any(|line| {
        line.contains("kinesis batch handled") && line.replace(' ', "").contains("\"skipped\":1")
    });
    assert!(
        counted,
        "the poison record is counted in the batch log line:\n{}",
        dispatcher.log_lines().join("\n")
    );
    let emitted = emf_documents(&dispatcher.log_lines());
    assert!(
        emitted
            .iter()
            .any(|document| document["DeliveriesSent"] == 1.0
                && document["RecordsRejected"] == 1.0
                && document["StreamBatchLatency"].is_number()
                && document.get("DispatchLatency").is_none()),
        "the batch counts its delivery, and times itself apart from /notify: {emitted:?}"
    );
    drop(dispatcher);

    // sender: a SendJob payload as the dispatcher hands it off.
    let mut sender = Function::start("sender", emulator, &stack).await;
    let job = json!({
        "messages": [json!({"marker": "sender"}).to_string()],
        "deliveries": [{"queueUrl": queue_url, "aesKey": key.to_base64(), "message": 0}]
    });
    let answer = sender.respond(job).await;
    assert_eq!(answer["sent"], 1, "{answer}");
    let got = receive_one(&sqs, &queue_url, &key).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["marker"], "sender", "{got:?}");
    drop(sender);

    // cleanup: the session's row as a DynamoDB-stream REMOVE.
    let item = dynamodb
        .get_item()
        .table_name(stack.config.sessions_table())
        .key("userId", AttributeValue::N(user.to_string()))
        .key("sessionId", AttributeValue::S(session_id.clone()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the row the api wrote");
    let keys = json!({
        "userId": {"N": user.to_string()},
        "sessionId": {"S": session_id}
    });
    let remove = json!({
        "Records": [{
            "eventID": "c4ca4238a0b923820dcc509a6f75849b",
            "eventName": "REMOVE",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1_795_428_000.0,
                "Keys": keys,
                "OldImage": stream_image(&item),
                "SequenceNumber": "111100000000000000000001",
                "SizeBytes": 512,
                "StreamViewType": "NEW_AND_OLD_IMAGES"
            },
            "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
            "eventSourceARN": format!(
                "arn:aws:dynamodb:us-east-1:123456789012:table/{}/stream/2026-11-23T10:00:00.000",
                stack.config.sessions_table()
            )
        }]
    });
    let mut cleanup = Function::start("cleanup", emulator, &stack).await;
    let answer = cleanup.respond(remove).await;
    let failures = answer["batchItemFailures"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(failures.is_empty(), "{answer}");
    assert!(
        !queue_exists(&sqs, &queue_name).await,
        "the queue is deleted"
    );
    assert!(
        !identity_exists(&cognito, &identity_id).await,
        "the identity is deleted"
    );
    drop(cleanup);
    drop(stack);
}
