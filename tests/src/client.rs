//! The client side: signed API calls, SDK configs for the emulator, and a session as the
//! browser holds it (its queue, key and credentials).

use aws_credential_types::Credentials;
use serde_json::Value;
use sqs_push_core::crypto::{SessionCipher, SessionKey};
use sqs_push_local::LocalStack;

use crate::{Emulator, test_keys};

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
