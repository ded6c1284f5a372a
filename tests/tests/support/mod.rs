//! Shared helpers: an emulator per test binary on a free port, the local stack in process, and a
//! signed API client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use serde_json::Value;
use sqs_push_core::crypto::{SessionCipher, SessionKey};
use sqs_push_local::{LocalKeys, LocalOptions, LocalStack};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A moto server of our own, stopped when dropped.
pub struct Emulator {
    child: Child,
    /// e.g. `http://127.0.0.1:40123`.
    pub url: String,
}

impl Emulator {
    /// Starts `scripts/emulator.py` from the project's venv on a free port and waits until it
    /// answers.
    pub fn start() -> Self {
        let root = repo_root();
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/test (or scripts/emulator once) to install the emulator",
            python.display()
        );
        let port = free_port();
        let mut child = Command::new(python)
            .arg(root.join("scripts/emulator.py"))
            .args(["--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the emulator starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lines = BufReader::new(stdout).lines();
        loop {
            assert!(
                Instant::now() < deadline,
                "the emulator did not start within 60 s"
            );
            match lines.next() {
                Some(Ok(line)) if line.contains("emulator listening") => break,
                Some(_) => continue,
                None => panic!("the emulator exited before it was ready"),
            }
        }
        // Keep draining its stdout so a chatty emulator never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// The key pair the test stacks accept.
pub fn test_keys() -> LocalKeys {
    LocalKeys {
        access_key: "AKIDTESTSTACK".into(),
        secret_key: "test-stack-secret".into(),
    }
}

/// Options for a stack on a free port against `emulator`.
pub fn stack_options(emulator: &Emulator) -> LocalOptions {
    let mut options = LocalOptions::new(&emulator.url);
    options.api_address = "127.0.0.1:0".parse().unwrap();
    options.keys = test_keys();
    options
}

/// Starts the local stack in process.
pub async fn spawn_stack(emulator: &Emulator) -> LocalStack {
    LocalStack::start(stack_options(emulator))
        .await
        .expect("the local stack starts")
}

/// Starts the local stack in process with options adjusted by `configure`.
pub async fn spawn_stack_with(
    emulator: &Emulator,
    configure: impl FnOnce(&mut LocalOptions),
) -> LocalStack {
    let mut options = stack_options(emulator);
    configure(&mut options);
    LocalStack::start(options)
        .await
        .expect("the local stack starts")
}

/// Polls `check` every 100 ms until it returns true; panics with `what` after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A SigV4-signed call to the stack; returns the status and the JSON answer.
pub async fn call(stack: &LocalStack, method: &str, path: &str, body: &str) -> (u16, Value) {
    let keys = test_keys();
    let credentials = Credentials::new(keys.access_key, keys.secret_key, None, None, "test");
    let url = format!("{}{path}", stack.api_url());
    let (status, text) =
        sqs_push_cli::call_gw::call(&url, method, "us-east-1", &credentials, body.as_bytes())
            .await
            .expect("the API answers");
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("answer to {path} is not JSON: {text}"));
    (status, json)
}

/// A signed GET.
pub async fn get(stack: &LocalStack, path: &str) -> (u16, Value) {
    call(stack, "GET", path, "").await
}

/// An SDK config for the emulator with the given credentials.
pub async fn sdk_config(
    emulator: &Emulator,
    region: &str,
    credentials: Credentials,
) -> aws_config::SdkConfig {
    let config = sqs_push_aws::load_sdk_config(&sqs_push_aws::Endpoint {
        region: region.to_string(),
        endpoint_url: Some(emulator.url.clone()),
        credentials: Some(credentials),
    })
    .await;
    for_long_polls(config)
}

/// An SDK config with the emulator's admin credentials.
pub async fn admin_config(emulator: &Emulator) -> aws_config::SdkConfig {
    for_long_polls(sqs_push_local::stack::emulator_sdk_config(&emulator.url, "us-east-1").await)
}

/// Tests long-poll like a browser (up to 20 s a call, longer on a busy emulator): the functions'
/// per-attempt timeout would cut those polls short, so test clients have none.
fn for_long_polls(config: aws_config::SdkConfig) -> aws_config::SdkConfig {
    config
        .to_builder()
        .timeout_config(aws_config::timeout::TimeoutConfig::disabled())
        .build()
}

/// A fresh session id.
pub fn unique_session_id(tag: &str) -> String {
    let mut bytes = [0u8; 8];
    sqs_push_core::crypto::fill_random(&mut bytes);
    format!("{tag}-{}", u64::from_be_bytes(bytes))
}

/// A session as the test knows it.
#[derive(Clone)]
pub struct Receiver {
    pub account: u64,
    pub user: u64,
    pub session: String,
    pub queue_url: String,
    pub key: SessionKey,
}

/// Creates a session through the signed API.
pub async fn create(stack: &LocalStack, account: u64, user: u64, session: &str) -> Receiver {
    let (status, created) = get(stack, &format!("/create/{account}/{user}/{session}")).await;
    assert_eq!(status, 200, "{created}");
    Receiver {
        account,
        user,
        session: session.to_string(),
        queue_url: created["session"]["sqsUrl"].as_str().unwrap().to_string(),
        key: SessionKey::from_base64(created["session"]["aesKey"].as_str().unwrap()).unwrap(),
    }
}

/// Receives and deletes what is in a queue, decrypted; waits up to `wait` seconds for a first
/// message.
pub async fn drain(sqs: &aws_sdk_sqs::Client, receiver: &Receiver, wait: i32) -> Vec<Value> {
    let cipher = SessionCipher::new(&receiver.key);
    let mut messages = Vec::new();
    let mut wait = wait;
    loop {
        let output = sqs
            .receive_message()
            .queue_url(&receiver.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        if output.messages().is_empty() {
            return messages;
        }
        for message in output.messages() {
            let mac = message
                .message_attributes()
                .and_then(|a| a.get("mac"))
                .and_then(|a| a.string_value());
            let plaintext = cipher.open(message.body().unwrap(), mac).expect("verifies");
            messages.push(serde_json::from_slice(&plaintext).unwrap());
            sqs.delete_message()
                .queue_url(&receiver.queue_url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        wait = 0;
    }
}

/// A string field of a session answer.
pub fn text<'a>(session: &'a Value, field: &str) -> &'a str {
    session[field]
        .as_str()
        .unwrap_or_else(|| panic!("session.{field} is not a string: {session}"))
}

/// An SQS client holding only what create (or renew) returned: the browser's side.
pub async fn session_sqs_client(emulator: &Emulator, session: &Value) -> aws_sdk_sqs::Client {
    let credentials = Credentials::new(
        text(session, "accessKey"),
        text(session, "secretKey"),
        Some(text(session, "sessionToken").to_string()),
        None,
        "session",
    );
    aws_sdk_sqs::Client::new(&sdk_config(emulator, text(session, "region"), credentials).await)
}

/// Starts a 10-second long poll of the session's queue, with message attributes.
pub fn long_poll(
    client: &aws_sdk_sqs::Client,
    session: &Value,
) -> tokio::task::JoinHandle<
    Result<
        aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput,
        aws_sdk_sqs::error::SdkError<aws_sdk_sqs::operation::receive_message::ReceiveMessageError>,
    >,
> {
    let client = client.clone();
    let queue_url = text(session, "sqsUrl").to_string();
    tokio::spawn(async move {
        client
            .receive_message()
            .queue_url(queue_url)
            .wait_time_seconds(10)
            .message_attribute_names("All")
            .send()
            .await
    })
}

/// `users` users with two sessions each, spread over `accounts` accounts, made through the
/// adapters (not create calls: Cognito would only add minutes where the fan-out is under test).
pub async fn seed_receivers(stack: &LocalStack, users: u64, accounts: u64) -> Vec<Receiver> {
    sqs_push_local::seed::seed_sessions(&stack.config, users, 2, accounts)
        .await
        .into_iter()
        .map(|seeded| Receiver {
            account: seeded.account_id,
            user: seeded.user_id,
            session: seeded.session_id,
            queue_url: seeded.queue_url,
            key: seeded.aes_key,
        })
        .collect()
}
