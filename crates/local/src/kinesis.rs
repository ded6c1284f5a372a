//! The local stand-in for Lambda's Kinesis event source: polls every shard of the event stream
//! and hands the dispatcher function the same `KinesisEvent` Lambda would, retrying from the
//! first failed record as Lambda does with `batchItemFailures`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::ShardIteratorType;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use sqs_push_core::dispatch::Dispatcher;
use sqs_push_functions::events::handle_kinesis;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Counts of what the pollers handed to the dispatcher, for tests and the dev log.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Records dispatched.
    pub dispatched: AtomicUsize,
    /// Malformed records skipped.
    pub skipped: AtomicUsize,
}

/// Why the poller could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start polling stream {stream}: {message}")]
pub struct PollerError {
    stream: String,
    message: String,
}

/// Starts one polling task per shard, each from LATEST (only records put after start).
pub async fn spawn_pollers(
    client: Client,
    stream: &str,
    region: &str,
    dispatcher: Dispatcher,
    interval: Duration,
    stats: Arc<StreamStats>,
    stop: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, PollerError> {
    let error = |message: String| PollerError {
        stream: stream.to_string(),
        message,
    };
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .map_err(|e| error(format!("{e:?}")))?;
    let stream_arn = format!("arn:aws:kinesis:{region}:000000000000:stream/{stream}");
    let mut tasks = Vec::new();
    for shard in shards.shards() {
        let iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::Latest)
            .send()
            .await
            .map_err(|e| error(format!("{e:?}")))?
            .shard_iterator()
            .map(str::to_string)
            .ok_or_else(|| error("no shard iterator".into()))?;
        let poll = ShardPoll {
            client: client.clone(),
            stream: stream.to_string(),
            shard_id: shard.shard_id().to_string(),
            stream_arn: stream_arn.clone(),
            region: region.to_string(),
            dispatcher: dispatcher.clone(),
            interval,
            stats: stats.clone(),
        };
        tasks.push(tokio::spawn(poll.run(iterator, stop.clone())));
    }
    Ok(tasks)
}

struct ShardPoll {
    client: Client,
    stream: String,
    shard_id: String,
    stream_arn: String,
    region: String,
    dispatcher: Dispatcher,
    interval: Duration,
    stats: Arc<StreamStats>,
}

impl ShardPoll {
    async fn run(self, mut iterator: String, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let next = self.poll_once(&iterator).await;
            let wait = match next {
                Ok((next_iterator, busy)) => {
                    iterator = next_iterator;
                    if busy { Duration::ZERO } else { self.interval }
                }
                Err(message) => {
                    tracing::warn!(shard = %self.shard_id, %message, "kinesis poll failed; retrying");
                    self.interval * 5
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Reads one batch and dispatches it; returns the next iterator and whether records came.
    async fn poll_once(&self, iterator: &str) -> Result<(String, bool), String> {
        let output = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(100)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let next = output
            .next_shard_iterator()
            .map(str::to_string)
            .ok_or("the shard is closed")?;
        let records = output.records();
        if records.is_empty() {
            return Ok((next, false));
        }
        let event = json!({
            "Records": records.iter().map(|record| json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": record.partition_key(),
                    "sequenceNumber": record.sequence_number(),
                    "data": STANDARD.encode(record.data().as_ref()),
                    "approximateArrivalTimestamp": record
                        .approximate_arrival_timestamp()
                        .map(aws_smithy_types::DateTime::as_secs_f64)
                        .unwrap_or(0.0),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{}:{}", self.shard_id, record.sequence_number()),
                "eventName": "aws:kinesis:record",
                "awsRegion": self.region,
                "eventSourceARN": self.stream_arn,
            })).collect::<Vec<_>>()
        });
        let event =
            serde_json::from_value(event).map_err(|e| format!("event does not parse: {e}"))?;
        let report = handle_kinesis(&self.dispatcher, event).await;
        self.stats
            .dispatched
            .fetch_add(report.dispatched, Ordering::Relaxed);
        self.stats
            .skipped
            .fetch_add(report.skipped, Ordering::Relaxed);
        match report.first_failure {
            // As Lambda does: retry from the first failed record.
            Some(sequence_number) => {
                let retry = self
                    .client
                    .get_shard_iterator()
                    .stream_name(&self.stream)
                    .shard_id(&self.shard_id)
                    .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                    .starting_sequence_number(sequence_number)
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))?;
                let iterator = retry.shard_iterator().ok_or("no retry iterator")?;
                tokio::time::sleep(self.interval).await;
                Ok((iterator.to_string(), false))
            }
            None => Ok((next, true)),
        }
    }
}
