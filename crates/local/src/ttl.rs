//! The local stand-in for DynamoDB's TTL, which the emulator lacks: every interval, rows whose
//! `ttl` (epoch seconds) has passed are deleted. Each delete produces the same REMOVE stream record
//! as on AWS, and its key is noted so the stream poller can mark the record as the TTL's, as AWS does
//! with `userIdentity.principalId = dynamodb.amazonaws.com`.
//!
//! AWS deletes expired items lazily ("typically within two days of expiration"); here it is
//! within one interval. The sweep is conditional, so a row renewed meanwhile stays.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::StreamExt;
use sqs_push_core::clock::{Clock, SystemClock};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The attribute DynamoDB's TTL is set on for every sqs-push table.
pub const TTL_ATTRIBUTE: &str = "ttl";
/// Deletes in flight at once.
const CONCURRENCY: usize = 8;

/// A sweep that could not run.
#[derive(Debug, thiserror::Error)]
#[error("TTL sweep of {table}: {operation} failed: {message}")]
pub struct SweepError {
    table: String,
    operation: &'static str,
    message: String,
}

fn sweep_error<E: ProvideErrorMetadata + std::error::Error>(
    table: &str,
    operation: &'static str,
    error: E,
) -> SweepError {
    SweepError {
        table: table.to_string(),
        operation,
        message: sqs_push_aws::errors::describe(&error),
    }
}

/// Keys of rows the sweeper deleted whose REMOVE records the stream poller has not seen yet.
#[derive(Debug, Clone, Default)]
pub struct SweptKeys(Arc<Mutex<HashSet<String>>>);

impl SweptKeys {
    fn insert(&self, key: String) {
        self.0.lock().unwrap().insert(key);
    }

    fn remove(&self, key: &str) -> bool {
        self.0.lock().unwrap().remove(key)
    }

    /// True (once) when the row with this key was deleted by the sweeper.
    pub fn take(&self, table: &str, key: serde_dynamo::Item) -> bool {
        self.remove(&canonical_key(table, key))
    }
}

/// One string per (table, key), whatever SDK the key came from.
pub fn canonical_key(table: &str, key: serde_dynamo::Item) -> String {
    let sorted: BTreeMap<String, serde_dynamo::AttributeValue> =
        key.into_inner().into_iter().collect();
    let json = serde_json::to_string(&sorted).unwrap_or_default();
    format!("{table}\u{0}{json}")
}

/// Deletes one table's expired rows.
#[derive(Debug, Clone)]
pub struct TtlSweeper {
    client: Client,
    table: String,
    key_names: Vec<String>,
    swept: SweptKeys,
}

impl TtlSweeper {
    /// Reads the table's key schema once.
    pub async fn new(client: Client, table: &str, swept: SweptKeys) -> Result<Self, SweepError> {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|error| sweep_error(table, "DescribeTable", error.into_service_error()))?;
        let key_names = described
            .table()
            .map(|table| {
                table
                    .key_schema()
                    .iter()
                    .map(|key| key.attribute_name().to_string())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            client,
            table: table.to_string(),
            key_names,
            swept,
        })
    }

    /// One pass: deletes every row whose ttl is before `now`; returns how many it deleted. A row
    /// renewed between the scan and its delete is kept (the delete is conditional).
    pub async fn sweep(&self, now: u64) -> Result<usize, SweepError> {
        let mut names = HashMap::from([("#ttl".to_string(), TTL_ATTRIBUTE.to_string())]);
        let mut projection = vec!["#ttl".to_string()];
        for (index, key) in self.key_names.iter().enumerate() {
            names.insert(format!("#k{index}"), key.clone());
            projection.push(format!("#k{index}"));
        }
        let now_value = AttributeValue::N(now.to_string());
        let expired: Vec<HashMap<String, AttributeValue>> = self
            .client
            .scan()
            .table_name(&self.table)
            .projection_expression(projection.join(", "))
            .filter_expression("#ttl < :now")
            .set_expression_attribute_names(Some(names))
            .expression_attribute_values(":now", now_value.clone())
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|error| sweep_error(&self.table, "Scan", error.into_service_error()))?;

        let deleted = futures::stream::iter(expired)
            .map(|mut item| {
                item.retain(|name, _| self.key_names.contains(name));
                self.delete_expired(item, now_value.clone())
            })
            .buffer_unordered(CONCURRENCY)
            .filter(|deleted| std::future::ready(*deleted))
            .count()
            .await;
        if deleted > 0 {
            tracing::info!(table = %self.table, deleted, "TTL sweep");
        }
        Ok(deleted)
    }

    async fn delete_expired(
        &self,
        key: HashMap<String, AttributeValue>,
        now: AttributeValue,
    ) -> bool {
        // Noted before the delete: the poller may read the REMOVE record before this call returns.
        let noted = canonical_key(&self.table, key.clone().into());
        self.swept.insert(noted.clone());
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression("#ttl < :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", now)
            .send()
            .await;
        match result {
            Ok(_) => true,
            Err(error) => {
                self.swept.remove(&noted);
                let error = error.into_service_error();
                if !error.is_conditional_check_failed_exception() {
                    tracing::warn!(table = %self.table, error = %sweep_error(&self.table, "DeleteItem", error), "TTL delete failed");
                }
                false
            }
        }
    }

    /// Sweeps every `interval` until `stop` turns true.
    pub fn spawn(self, interval: Duration, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    _ = tokio::time::sleep(interval) => {}
                }
                if let Err(error) = self.sweep(SystemClock.now()).await {
                    tracing::warn!(%error, "TTL sweep failed; trying again next interval");
                }
            }
        })
    }
}
