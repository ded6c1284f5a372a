//! Lambda's SQS trigger of the consumer, locally: polls the upstream queue with the consumer's
//! own credentials, hands each batch (up to 10, as serverless.yml's batchSize) to the consumer
//! function's handler as an SQS event, and deletes what the partial batch response does not
//! name. Messages it names stay in the queue until their visibility timeout ends, then come
//! back; past the queue's maxReceiveCount the emulator moves them to the dead-letter queue, as
//! SQS does.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use sqs_push_core::upstream::Consumer;
use sqs_push_core::upstream::presence::PresenceService;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long one receive waits for messages (short, so a stop is noticed soon).
const WAIT_SECONDS: i32 = 1;

/// Starts polling `queue_url` until `stop` turns true.
pub fn spawn(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    consumer: Consumer,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if *stop.borrow() {
                return;
            }
            tokio::select! {
                _ = stop.changed() => return,
                polled = poll_once(&sqs, &queue_url, &consumer) => {
                    if let Err(error) = polled {
                        tracing::warn!(%error, "upstream poll failed");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
        }
    })
}

/// Runs presence's sweep every `interval` until `stop` turns true, as the consumer's schedule
/// does on AWS.
pub fn spawn_presence_sweep(
    presence: PresenceService,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(interval) => {
                    if let Err(error) = presence.sweep().await {
                        tracing::warn!(%error, "presence sweep failed");
                    }
                }
            }
        }
    })
}

/// One receive, one handler call, one delete.
async fn poll_once(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    consumer: &Consumer,
) -> Result<usize, String> {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(WAIT_SECONDS)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|error| sqs_push_aws::errors::describe(&error))?;
    let messages = received.messages();
    if messages.is_empty() {
        return Ok(0);
    }
    let mut event = SqsEvent::default();
    for message in messages {
        let mut record = SqsMessage::default();
        record.message_id = message.message_id().map(str::to_string);
        record.receipt_handle = message.receipt_handle().map(str::to_string);
        record.body = message.body().map(str::to_string);
        record.attributes = message
            .attributes()
            .map(|attributes| {
                attributes
                    .iter()
                    .map(|(name, value)| (name.as_str().to_string(), value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        record.event_source = Some("aws:sqs".to_string());
        event.records.push(record);
    }
    let (response, _report) = sqs_push_functions::upstream::handle(consumer, event).await;
    let failed: std::collections::HashSet<&str> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.as_str())
        .collect();
    let entries: Vec<DeleteMessageBatchRequestEntry> = messages
        .iter()
        .enumerate()
        .filter(|(_, message)| !failed.contains(message.message_id().unwrap_or_default()))
        .filter_map(|(index, message)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(index.to_string())
                .receipt_handle(message.receipt_handle()?)
                .build()
                .ok()
        })
        .collect();
    if !entries.is_empty() {
        sqs.delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|error| sqs_push_aws::errors::describe(&error))?;
    }
    Ok(messages.len())
}
