//! The user history table on DynamoDB: key `userId` (N) + `messageId` (S), LSI on `created`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use sqs_push_core::PortError;
use sqs_push_core::ids::UserId;
use sqs_push_core::ports::{HistoryRow, HistoryStore};

use crate::errors::port_error;

/// [`HistoryStore`] on a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoHistoryStore {
    client: Client,
    table: String,
}

impl DynamoHistoryStore {
    /// The store for `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The item for a history row; new rows are unread.
pub fn row_to_item(row: &HistoryRow) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("userId".to_string(), number(row.user_id.get())),
        (
            "messageId".to_string(),
            AttributeValue::S(row.message_id.clone()),
        ),
        ("created".to_string(), number(row.created)),
        ("ttl".to_string(), number(row.ttl)),
        ("is_read".to_string(), number(0)),
        (
            "message".to_string(),
            AttributeValue::S(row.message.clone()),
        ),
    ])
}

fn row_from_item(item: &HashMap<String, AttributeValue>) -> Option<HistoryRow> {
    let integer = |name: &str| item.get(name)?.as_n().ok()?.parse::<u64>().ok();
    let text = |name: &str| item.get(name)?.as_s().ok().cloned();
    Some(HistoryRow {
        user_id: UserId::try_from(integer("userId")?).ok()?,
        message_id: text("messageId")?,
        created: integer("created")?,
        ttl: integer("ttl")?,
        message: text("message")?,
    })
}

#[async_trait]
impl HistoryStore for DynamoHistoryStore {
    async fn write_batch(&self, rows: &[HistoryRow]) -> Result<Vec<HistoryRow>, PortError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let requests: Vec<WriteRequest> = rows
            .iter()
            .map(|row| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(row_to_item(row)))
                            .build()
                            .expect("the item is set"),
                    )
                    .build()
            })
            .collect();
        let output = self
            .client
            .batch_write_item()
            .request_items(&self.table, requests)
            .send()
            .await
            .map_err(|error| port_error("DynamoDB BatchWriteItem", &self.table, error))?;
        let unprocessed = output
            .unprocessed_items()
            .and_then(|items| items.get(&self.table))
            .map(|requests| {
                requests
                    .iter()
                    .filter_map(|request| request.put_request())
                    .filter_map(|put| row_from_item(put.item()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(unprocessed)
    }
}
