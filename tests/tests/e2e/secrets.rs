//! Secrets stay put (issue 11, item 9; docs/security.md): representative flows run against the
//! local stack with every log line captured — our crates at TRACE, everything else at INFO, as
//! JSON with span fields — and no AES key, secret key, session token, developer login or message
//! body appears in any of them, nor in any error answer.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use serde_json::{Value, json};
use sqs_push_tests::*;
use tracing_subscriber::fmt::MakeWriter;

/// Every line logged in this test binary.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The capture, installed once as the global default: the stack's tasks run on every worker
/// thread, where a thread-local default would miss them.
fn capture() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let filter = tracing_subscriber::EnvFilter::new(
            "info,sqs_push_core=trace,sqs_push_aws=trace,sqs_push_functions=trace,\
             sqs_push_local=trace,sqs_push_cli=trace",
        );
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(filter)
            .with_writer(captured.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the first subscriber");
        captured
    })
}

fn secrets_of(session: &Value) -> Vec<(String, String)> {
    ["aesKey", "secretKey", "sessionToken"]
        .iter()
        .map(|field| (field.to_string(), text(session, field).to_string()))
        .collect()
}

fn assert_absent(haystack: &str, secrets: &[(String, String)], where_: &str) {
    for (what, secret) in secrets {
        assert!(secret.len() >= 8, "{what} is too short to search for");
        if let Some(line) = haystack.lines().find(|line| line.contains(secret.as_str())) {
            panic!("{what} appears in {where_}: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_credential_or_message_body_reaches_a_log_line_or_an_error_answer() {
    let captured = capture();
    let stack = Stack::start().await;
    let emulator = &stack.emulator;
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut answers: Vec<Value> = Vec::new();
    let unique = |what: &str| format!("{what}-{}", unique_session_id("secret"));

    // Create two sessions of one user and one of another; renew one; status each.
    let mut sessions = Vec::new();
    for (user, tag) in [(900, "a"), (900, "b"), (901, "c")] {
        let path = format!("/1/{user}/{}", unique_session_id(tag));
        let (status, created) = get(&stack, &format!("/create{path}")).await;
        assert_eq!(status, 200, "{created}");
        secrets.extend(secrets_of(&created["session"]));
        sessions.push((path, created["session"].clone()));
    }
    let (renew_path, _) = &sessions[0];
    let (status, renewed) = get(&stack, &format!("/renew{renew_path}")).await;
    assert_eq!(status, 200, "{renewed}");
    secrets.extend(secrets_of(&renewed["session"]));
    for (path, _) in &sessions {
        let (status, answer) = get(&stack, &format!("/status{path}")).await;
        assert_eq!(status, 200, "{answer}");
    }
    let (status, list) = get(&stack, "/status").await;
    assert_eq!(status, 200, "{list}");

    // Notify a user (GET and POST), everyone, one session, and through Kinesis.
    let user_body = unique("body-to-user");
    let (status, answer) = get(&stack, &format!("/notify/user/900?message={user_body}")).await;
    assert_eq!(status, 200, "{answer}");
    let posted_body = unique("posted-body");
    let (status, answer) = call(
        &stack,
        "POST",
        "/notify/user/901",
        &json!({"message": posted_body, "extra": {"nested": posted_body}}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let everyone_body = unique("body-to-everyone");
    let (status, answer) = call(
        &stack,
        "POST",
        "/notify",
        &json!({"message": everyone_body}).to_string(),
    )
    .await;
    assert_eq!(status, 202, "everyone is a segmented fan-out: {answer}");
    let session_body = unique("body-to-session");
    let (_, one) = &sessions[1];
    let (status, answer) = get(
        &stack,
        &format!(
            "/notify/user/900/session/{}?message={session_body}",
            text(one, "sessionId")
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let kinesis_body = unique("kinesis-body");
    aws_sdk_kinesis::Client::new(&admin_config(emulator).await)
        .put_record()
        .stream_name("sqs-push-local-events")
        .partition_key("test")
        .data(Blob::new(
            json!({"userId": 901, "message": kinesis_body})
                .to_string()
                .into_bytes(),
        ))
        .send()
        .await
        .unwrap();
    let bodies = [
        &user_body,
        &posted_body,
        &everyone_body,
        &session_body,
        &kinesis_body,
    ];

    // History and receipts.
    eventually(Duration::from_secs(30), "history has the messages", || {
        let stack = &stack;
        let kinesis_body = kinesis_body.clone();
        async move {
            let (_, history) = get(stack, "/messages/user/901").await;
            history.to_string().contains(&kinesis_body)
        }
    })
    .await;
    let (status, history) = get(&stack, "/messages/user/900").await;
    assert_eq!(status, 200, "{history}");
    let message_id = history["messages"][0]["messageId"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| panic!("a message in {history}"));
    let (status, answer) = get(
        &stack,
        &format!("/messages/set-read/user/900/message/{message_id}"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let (status, answer) = get(&stack, &format!("/messages/set-read/user/901/asof/{now}")).await;
    assert!(status < 500, "{status} {answer}");

    // Error answers that carry caller input: a malformed body, a bad id, an unknown session.
    let error_body = unique("malformed-body");
    for (method, path, body) in [
        (
            "POST",
            "/notify/user/900".to_string(),
            format!("{{\"message\": \"{error_body}\""),
        ),
        (
            "POST",
            "/notify/user/900".to_string(),
            format!("[\"{error_body}\"]"),
        ),
        (
            "GET",
            format!("/notify/user/x?message={error_body}"),
            String::new(),
        ),
        (
            "GET",
            format!("/status/1/900/{}", unique_session_id("none")),
            String::new(),
        ),
    ] {
        let (status, answer) = call(&stack, method, &path, &body).await;
        assert!((400..500).contains(&status), "{path}: {status} {answer}");
        answers.push(answer);
    }

    // Destroy.
    for (path, _) in &sessions {
        let (status, answer) = get(&stack, &format!("/destroy{path}")).await;
        assert_eq!(status, 200, "{answer}");
    }
    // Let background work (cleanup of destroyed rows, history writes) log what it logs.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let logs = captured.text();
    assert!(
        logs.contains("session created"),
        "the capture sees the stack's logs"
    );
    let mut searched = secrets.clone();
    for body in bodies.into_iter().chain([&error_body]) {
        searched.push(("message body".to_string(), body.clone()));
    }
    assert_absent(&logs, &searched, "a log line");
    for answer in &answers {
        assert_absent(
            &answer.to_string(),
            &searched,
            &format!("an error answer {answer}"),
        );
    }
}
