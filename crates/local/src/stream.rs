//! The local stand-in for Lambda's DynamoDB-stream trigger: polls a table's stream and hands each
//! batch to a handler as the `aws_lambda_events` DynamoDB event Lambda would deliver, then honours
//! the handler's `batchItemFailures` as Lambda does: the shard resumes from the first failed
//! record, up to [`MAX_RETRIES`] times, and is then skipped past with an error in the log.
//!
//! Shards present at start are read from LATEST; shards that appear later from TRIM_HORIZON.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::error::ProvideErrorMetadata;
use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, Record, ShardIteratorType};
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ttl::SweptKeys;

/// What Lambda would invoke with each batch.
pub type StreamHandler =
    Arc<dyn Fn(Event) -> BoxFuture<'static, DynamoDbEventResponse> + Send + Sync>;

/// Records per GetRecords call (the API's maximum), and so per batch.
pub const BATCH_SIZE: i32 = 1000;
/// Retries of a batch that reported failures before the shard moves past it.
pub const MAX_RETRIES: u32 = 3;
/// How often the stream is described to find new shards.
const SHARD_REFRESH: Duration = Duration::from_secs(10);

/// A stream call that failed.
#[derive(Debug, thiserror::Error)]
#[error("stream of {table}: {operation} failed: {message}")]
pub struct StreamError {
    table: String,
    operation: &'static str,
    message: String,
}

/// Where one shard is.
#[derive(Debug, Default)]
struct Shard {
    /// `None` once the shard is closed and read to its end.
    iterator: Option<String>,
    /// The last record handed over successfully.
    last_sequence: Option<String>,
    /// Failed deliveries of the batch at the current position.
    retries: u32,
}

/// Polls one table's stream.
pub struct StreamPoller {
    client: Client,
    table: String,
    stream_arn: String,
    handler: StreamHandler,
    swept: SweptKeys,
    shards: BTreeMap<String, Shard>,
    /// Sequence numbers of REMOVE records known to be the TTL sweeper's, kept across retries.
    ttl_removes: HashSet<String>,
    described: Instant,
}

impl StreamPoller {
    /// Finds the stream's shards and positions each at LATEST, so every change made after this
    /// returns is delivered.
    pub async fn start(
        client: Client,
        table: &str,
        stream_arn: &str,
        handler: StreamHandler,
        swept: SweptKeys,
    ) -> Result<Self, StreamError> {
        let mut poller = Self {
            client,
            table: table.to_string(),
            stream_arn: stream_arn.to_string(),
            handler,
            swept,
            shards: BTreeMap::new(),
            ttl_removes: HashSet::new(),
            described: Instant::now(),
        };
        poller.discover(ShardIteratorType::Latest).await?;
        Ok(poller)
    }

    fn error<E: ProvideErrorMetadata + std::error::Error>(
        &self,
        operation: &'static str,
        error: E,
    ) -> StreamError {
        StreamError {
            table: self.table.clone(),
            operation,
            message: sqs_push_aws::errors::describe(&error),
        }
    }

    async fn discover(&mut self, position: ShardIteratorType) -> Result<(), StreamError> {
        let mut start: Option<String> = None;
        loop {
            let output = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start.clone())
                .send()
                .await
                .map_err(|error| self.error("DescribeStream", error.into_service_error()))?;
            let Some(description) = output.stream_description() else {
                break;
            };
            for shard in description.shards() {
                let Some(id) = shard.shard_id() else { continue };
                if self.shards.contains_key(id) {
                    continue;
                }
                let iterator = self.iterator(id, position.clone(), None).await?;
                self.shards.insert(
                    id.to_string(),
                    Shard {
                        iterator,
                        ..Shard::default()
                    },
                );
            }
            start = description.last_evaluated_shard_id().map(str::to_string);
            if start.is_none() {
                break;
            }
        }
        self.described = Instant::now();
        Ok(())
    }

    async fn iterator(
        &self,
        shard_id: &str,
        position: ShardIteratorType,
        sequence_number: Option<&str>,
    ) -> Result<Option<String>, StreamError> {
        let output = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard_id)
            .shard_iterator_type(position)
            .set_sequence_number(sequence_number.map(str::to_string))
            .send()
            .await
            .map_err(|error| self.error("GetShardIterator", error.into_service_error()))?;
        Ok(output.shard_iterator().map(str::to_string))
    }

    /// One read of every open shard; each non-empty read is one handler call. Returns the
    /// number of records delivered.
    pub async fn poll_once(&mut self) -> Result<usize, StreamError> {
        if self.described.elapsed() >= SHARD_REFRESH {
            self.discover(ShardIteratorType::TrimHorizon).await?;
        }
        let mut delivered = 0;
        let ids: Vec<String> = self.shards.keys().cloned().collect();
        for id in ids {
            let mut shard = self.shards.remove(&id).unwrap_or_default();
            let result = self.poll_shard(&id, &mut shard).await;
            self.shards.insert(id, shard);
            delivered += result?;
        }
        Ok(delivered)
    }

    async fn poll_shard(
        &mut self,
        shard_id: &str,
        shard: &mut Shard,
    ) -> Result<usize, StreamError> {
        let Some(iterator) = shard.iterator.clone() else {
            return Ok(0);
        };
        let output = match self
            .client
            .get_records()
            .shard_iterator(iterator)
            .limit(BATCH_SIZE)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) => {
                let error = error.into_service_error();
                if error.is_expired_iterator_exception() || error.is_trimmed_data_access_exception()
                {
                    shard.iterator = self
                        .resume(shard_id, shard.last_sequence.as_deref())
                        .await?;
                    return Ok(0);
                }
                return Err(self.error("GetRecords", error));
            }
        };
        let records = output.records();
        if records.is_empty() {
            shard.iterator = output.next_shard_iterator().map(str::to_string);
            return Ok(0);
        }

        let event = self.event(records);
        let response = (self.handler)(event).await;
        let failed: HashSet<&str> = response
            .batch_item_failures
            .iter()
            .filter_map(|failure| failure.item_identifier.as_deref())
            .collect();
        let first_failed = records
            .iter()
            .filter_map(|record| record.dynamodb()?.sequence_number())
            .find(|sequence| failed.contains(sequence));

        match first_failed {
            Some(sequence) if shard.retries < MAX_RETRIES => {
                shard.retries += 1;
                tracing::warn!(
                    table = %self.table,
                    sequence,
                    attempt = shard.retries,
                    "stream batch reported failures; retrying from the first"
                );
                shard.iterator = self
                    .iterator(
                        shard_id,
                        ShardIteratorType::AtSequenceNumber,
                        Some(sequence),
                    )
                    .await?;
                Ok(0)
            }
            first_failed => {
                if let Some(sequence) = first_failed {
                    tracing::error!(
                        table = %self.table,
                        sequence,
                        retries = MAX_RETRIES,
                        "stream records still failing; skipping past them"
                    );
                }
                shard.retries = 0;
                shard.last_sequence = records
                    .iter()
                    .rev()
                    .find_map(|record| record.dynamodb()?.sequence_number())
                    .map(str::to_string);
                for record in records {
                    if let Some(sequence) = record.dynamodb().and_then(|r| r.sequence_number()) {
                        self.ttl_removes.remove(sequence);
                    }
                }
                shard.iterator = output.next_shard_iterator().map(str::to_string);
                Ok(records.len())
            }
        }
    }

    /// A fresh iterator after the last delivered record (or from the start when none was).
    async fn resume(
        &self,
        shard_id: &str,
        last_sequence: Option<&str>,
    ) -> Result<Option<String>, StreamError> {
        match last_sequence {
            Some(sequence) => {
                self.iterator(
                    shard_id,
                    ShardIteratorType::AfterSequenceNumber,
                    Some(sequence),
                )
                .await
            }
            None => {
                self.iterator(shard_id, ShardIteratorType::TrimHorizon, None)
                    .await
            }
        }
    }

    /// The records as Lambda's JSON event, read back into its Rust type as the runtime would.
    fn event(&mut self, records: &[Record]) -> Event {
        let records: Vec<Value> = records.iter().map(|record| self.record(record)).collect();
        serde_json::from_value(json!({ "Records": records })).unwrap_or_else(|error| {
            // Only the category: serde's message can quote a value, and images hold keys.
            let category = error.classify();
            tracing::error!(table = %self.table, ?category, "stream records do not form a Lambda event");
            Event::default()
        })
    }

    fn record(&mut self, record: &Record) -> Value {
        let change = record.dynamodb();
        let sequence = change.and_then(|c| c.sequence_number()).unwrap_or_default();
        let mut dynamodb = json!({
            "ApproximateCreationDateTime": change
                .and_then(|c| c.approximate_creation_date_time())
                .map(aws_smithy_types::DateTime::as_secs_f64)
                .unwrap_or(0.0),
            "SequenceNumber": sequence,
            "SizeBytes": change.and_then(aws_sdk_dynamodbstreams::types::StreamRecord::size_bytes).unwrap_or(0),
        });
        if let Some(view) = change.and_then(|c| c.stream_view_type()) {
            dynamodb["StreamViewType"] = Value::from(view.as_str());
        }
        for (field, image) in [
            ("Keys", change.and_then(|c| c.keys())),
            ("NewImage", change.and_then(|c| c.new_image())),
            ("OldImage", change.and_then(|c| c.old_image())),
        ] {
            if let Some(image) = image {
                dynamodb[field] = item_json(image);
            }
        }
        let mut json = json!({
            "eventID": record.event_id().unwrap_or_default(),
            "eventName": record.event_name().map(OperationType::as_str).unwrap_or_default(),
            "eventVersion": record.event_version().unwrap_or("1.1"),
            "eventSource": record.event_source().unwrap_or("aws:dynamodb"),
            "awsRegion": record.aws_region().unwrap_or_default(),
            "eventSourceARN": self.stream_arn,
            "dynamodb": dynamodb,
        });
        if let Some(identity) = record.user_identity() {
            json["userIdentity"] = json!({
                "type": identity.r#type().unwrap_or_default(),
                "principalId": identity.principal_id().unwrap_or_default(),
            });
        } else if self.is_ttl_remove(record, sequence) {
            json["userIdentity"] = json!({
                "type": "Service",
                "principalId": sqs_push_functions::cleanup::TTL_PRINCIPAL,
            });
        }
        json
    }

    fn is_ttl_remove(&mut self, record: &Record, sequence: &str) -> bool {
        if record.event_name() != Some(&OperationType::Remove) {
            return false;
        }
        if self.ttl_removes.contains(sequence) {
            return true;
        }
        let Some(keys) = record.dynamodb().and_then(|c| c.keys()) else {
            return false;
        };
        let swept = self.swept.take(&self.table, keys.clone().into());
        if swept {
            self.ttl_removes.insert(sequence.to_string());
        }
        swept
    }

    /// Polls until `stop` turns true: at once again after a delivery, after `interval` otherwise.
    pub fn spawn(mut self, interval: Duration, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let delivered = match self.poll_once().await {
                    Ok(delivered) => delivered,
                    Err(error) => {
                        tracing::warn!(%error, "stream poll failed; trying again next interval");
                        0
                    }
                };
                if *stop.borrow() {
                    return;
                }
                if delivered == 0 {
                    tokio::select! {
                        _ = stop.wait_for(|stopped| *stopped) => return,
                        _ = tokio::time::sleep(interval) => {}
                    }
                }
            }
        })
    }
}

fn item_json(image: &HashMap<String, AttributeValue>) -> Value {
    serde_json::to_value(serde_dynamo::Item::from(image.clone())).unwrap_or(Value::Null)
}
