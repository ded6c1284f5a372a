//! The demo's chat "app" (`sqs-push-local --demo-chat`, off by default): what an app backend does
//! with the chat lines pages send upstream. The consumer routes every verified app message to the
//! local app queue as `{accountId, userId, sessionId, type, body, receivedAt}`; this reads that
//! queue and, for a `chat` message whose body is `{"channel", "text"}` from a session subscribed to
//! that channel, publishes `{"message": text, "chat": true, "fromUserId", "fromSessionId",
//! "sentAt"}` to the channel through the api Router in process (the same route as
//! `/notify/channel/{channel}`). Anything else is deleted and counted in the log.
//!
//! Off by default because it consumes the app queue: the end-to-end tests read that queue
//! themselves. The demo page (`scripts/dev`) and its browser test turn it on.
//!
//! Not for: anything outside the local stack. On AWS the app is yours.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{Value, json};
use sqs_push_core::model::channel::ChannelName;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// How long one receive waits (short, so a stop is noticed soon).
const WAIT_SECONDS: i32 = 1;
/// The longest chat line relayed, in characters (the page's input allows 500).
const MAX_TEXT_CHARS: usize = 500;

/// An app message as the consumer delivers it to the app queue (only the fields used here).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppMessage {
    account_id: u64,
    user_id: u64,
    session_id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    body: Value,
}

/// What became of one app message.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Published,
    /// Not a chat line this app relays (another type, a bad body, a channel the sender is not on).
    Ignored(&'static str),
}

/// Relays chat lines from `app_queue_url` until `stop` turns true.
pub fn spawn(
    sqs: aws_sdk_sqs::Client,
    app_queue_url: String,
    api: Router,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = stop.changed() => return,
                polled = poll_once(&sqs, &app_queue_url, &api) => {
                    if let Err(error) = polled {
                        tracing::warn!(%error, "demo chat: app queue poll failed");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
    })
}

async fn poll_once(sqs: &aws_sdk_sqs::Client, queue_url: &str, api: &Router) -> Result<(), String> {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(WAIT_SECONDS)
        .send()
        .await
        .map_err(|error| sqs_push_aws::errors::describe(&error))?;
    for message in received.messages() {
        match relay(api, message.body().unwrap_or_default()).await {
            // a line that could not be published stays and comes back after the visibility timeout
            Err(error) => {
                tracing::warn!(%error, "demo chat: publish failed; the line comes back");
                continue;
            }
            Ok(Outcome::Published) => tracing::info!("demo chat: line published"),
            Ok(Outcome::Ignored(why)) => tracing::info!(why, "demo chat: app message ignored"),
        }
        if let Some(handle) = message.receipt_handle() {
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .map_err(|error| sqs_push_aws::errors::describe(&error))?;
        }
    }
    Ok(())
}

/// Publishes one app message to its channel when it is a chat line its sender may post.
async fn relay(api: &Router, raw: &str) -> Result<Outcome, String> {
    let Ok(message) = serde_json::from_str::<AppMessage>(raw) else {
        return Ok(Outcome::Ignored("not an app message"));
    };
    if message.kind != "chat" {
        return Ok(Outcome::Ignored("not a chat line"));
    }
    let (Some(channel), Some(text)) = (
        message.body.get("channel").and_then(Value::as_str),
        message.body.get("text").and_then(Value::as_str),
    ) else {
        return Ok(Outcome::Ignored("a chat body is {\"channel\", \"text\"}"));
    };
    if text.trim().is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Ok(Outcome::Ignored("empty or too long"));
    }
    let Ok(channel) = ChannelName::parse(channel) else {
        return Ok(Outcome::Ignored("not a channel name"));
    };
    // The app decides who may post where: here, the sessions subscribed to the channel.
    let (status, session) = call(
        api,
        Method::GET,
        &format!(
            "/status/{}/{}/{}",
            message.account_id,
            message.user_id,
            percent_encode(&message.session_id)
        ),
        None,
    )
    .await?;
    let subscribed = status == StatusCode::OK
        && session
            .pointer("/session/channels")
            .or_else(|| session.get("channels"))
            .and_then(Value::as_array)
            .is_some_and(|channels| {
                channels
                    .iter()
                    .any(|c| c.as_str() == Some(channel.as_str()))
            });
    if !subscribed {
        return Ok(Outcome::Ignored("the sender is not on that channel"));
    }
    let line = json!({
        "message": text,
        "chat": true,
        "fromUserId": message.user_id,
        "fromSessionId": message.session_id,
        "sentAt": message.body.get("sentAt").filter(|v| v.is_u64()),
    });
    let (status, answer) = call(
        api,
        Method::POST,
        &format!("/notify/channel/{}", channel.as_str()),
        Some(line),
    )
    .await?;
    if status != StatusCode::OK {
        return Err(format!(
            "notify answered {status}: {}",
            answer.get("error").unwrap_or(&Value::Null)
        ));
    }
    Ok(Outcome::Published)
}

/// One request to the api Router in process; answers its status and JSON.
async fn call(
    api: &Router,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<(StatusCode, Value), String> {
    let mut request = Request::builder().method(method).uri(path);
    let body = match body {
        Some(value) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(value.to_string())
        }
        None => Body::empty(),
    };
    let request = request.body(body).map_err(|error| error.to_string())?;
    let response = api
        .clone()
        .oneshot(request)
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|error| error.to_string())?
        .to_bytes();
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// A session id in a path segment: everything but unreserved characters percent-encoded.
fn percent_encode(raw: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_percent_encoded_in_paths() {
        assert_eq!(percent_encode("a b/c:d"), "a%20b%2Fc%3Ad");
        assert_eq!(percent_encode("tab-1_x.y~"), "tab-1_x.y~");
    }

    #[tokio::test]
    async fn what_is_not_a_chat_line_is_ignored_without_calling_the_api() {
        let api = Router::new(); // any call would answer 404 and fail the relay
        let cases = [
            ("not json", "not an app message"),
            (
                r#"{"accountId":1,"userId":2,"sessionId":"s","type":"typing","body":true}"#,
                "not a chat line",
            ),
            (
                r#"{"accountId":1,"userId":2,"sessionId":"s","type":"chat","body":{"text":"hi"}}"#,
                "a chat body is {\"channel\", \"text\"}",
            ),
            (
                r#"{"accountId":1,"userId":2,"sessionId":"s","type":"chat","body":{"channel":"r","text":" "}}"#,
                "empty or too long",
            ),
            (
                r#"{"accountId":1,"userId":2,"sessionId":"s","type":"chat","body":{"channel":"a b","text":"hi"}}"#,
                "not a channel name",
            ),
        ];
        for (raw, why) in cases {
            assert_eq!(relay(&api, raw).await, Ok(Outcome::Ignored(why)), "{raw}");
        }
    }
}
