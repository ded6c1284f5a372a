//! The user history table on DynamoDB: key `userId` (N) + `messageId` (S), LSI on `created`;
//! rows carry `is_read` (0/1) and expire through the table's TTL on `ttl`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use sqs_push_core::model::ids::UserId;
use sqs_push_core::model::message::MessageId;
use sqs_push_core::ports::{
    HistoryCursor, HistoryEntry, HistoryPage, HistoryQuery, HistoryRow, HistoryStore, Marked,
};
use sqs_push_core::{PortError, PortErrorKind};

use crate::errors::port_error;
use crate::rows::{HistoryItem, from_item, to_item};

/// Set on a row marked read until its receipt went out: a retried set-read receipts it.
const RECEIPT_PENDING: &str = "receipt_pending";

/// Name of the local secondary index on (`userId`, `created`), projecting every attribute.
pub const CREATED_INDEX: &str = "created-index";

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

    /// An UpdateItem of one row, by its key.
    fn update_row(&self, user_id: UserId, message_id: &MessageId) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("userId", number(user_id.get()))
            .key("messageId", AttributeValue::S(message_id.to_string()))
    }
}

fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The item for a history row; new rows are unread.
pub fn row_to_item(row: &HistoryRow) -> HashMap<String, AttributeValue> {
    to_item(&HistoryItem::unread(row))
}

/// The history entry in an item read back; `None` when a field is missing or malformed.
fn entry_from_item(item: &HashMap<String, AttributeValue>) -> Option<HistoryEntry> {
    from_item::<_, HistoryItem>(item.clone())
        .ok()
        .map(HistoryItem::into_entry)
}

/// The `created` index key where a page ended, for ExclusiveStartKey.
fn cursor_key(user_id: UserId, cursor: &HistoryCursor) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("userId".to_string(), number(user_id.get())),
        (
            "messageId".to_string(),
            AttributeValue::S(cursor.message_id.to_string()),
        ),
        ("created".to_string(), number(cursor.created)),
    ])
}

/// Conditional PutItems one `write_batch` runs at a time.
pub const WRITE_CONCURRENCY: usize = 16;

impl DynamoHistoryStore {
    async fn put_new(&self, row: &HistoryRow) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(row_to_item(row)))
            .condition_expression("attribute_not_exists(messageId)")
            .send()
            .await
            .map_err(|error| port_error("DynamoDB PutItem", &self.table, error))?;
        Ok(())
    }

    fn malformed(&self, operation: &'static str) -> PortError {
        PortError::new(
            PortErrorKind::Other,
            operation,
            &self.table,
            "a row has a missing or malformed field",
        )
    }
}

#[async_trait]
impl HistoryStore for DynamoHistoryStore {
    /// One conditional PutItem per row (BatchWriteItem takes no conditions), up to
    /// [`WRITE_CONCURRENCY`] at a time: a row that already exists fails its condition and is
    /// left as it is, so a retried job never turns a read row unread. Rows that failed
    /// transiently come back as unprocessed; any other failure is returned.
    async fn write_batch(&self, rows: &[HistoryRow]) -> Result<Vec<HistoryRow>, PortError> {
        use futures::StreamExt;
        type Outcome = (HistoryRow, Result<(), PortError>);
        let outcomes: Vec<Outcome> = futures::stream::iter(rows.iter().cloned())
            .map(|row| -> futures::future::BoxFuture<'_, Outcome> {
                Box::pin(async move {
                    let outcome = self.put_new(&row).await;
                    (row, outcome)
                })
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .collect()
            .await;
        let mut unprocessed = Vec::new();
        for (row, outcome) in outcomes {
            match outcome {
                Ok(()) => {}
                Err(error) if error.kind == PortErrorKind::ConditionFailed => {}
                Err(error) if error.kind == PortErrorKind::Transient => unprocessed.push(row),
                Err(error) => return Err(error),
            }
        }
        Ok(unprocessed)
    }

    async fn query(&self, user_id: UserId, query: &HistoryQuery) -> Result<HistoryPage, PortError> {
        // One row more than the page, so `next` is set only when another page really follows.
        let wanted = query.limit + 1;
        let mut entries: Vec<HistoryEntry> = Vec::with_capacity(wanted);
        let mut start_key = query.after.as_ref().map(|c| cursor_key(user_id, c));
        loop {
            // Limit counts rows evaluated before the ttl filter, and a call returns at most
            // 1 MB, so a page may take several calls.
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(CREATED_INDEX)
                .key_condition_expression("userId = :user AND #created BETWEEN :start AND :end")
                .filter_expression("#ttl > :now")
                .expression_attribute_names("#created", "created")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":user", number(user_id.get()))
                .expression_attribute_values(":start", number(query.start))
                .expression_attribute_values(":end", number(query.end))
                .expression_attribute_values(":now", number(query.now))
                .scan_index_forward(false)
                .limit(i32::try_from(wanted - entries.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|error| port_error("DynamoDB Query", CREATED_INDEX, error))?;
            for item in output.items() {
                entries
                    .push(entry_from_item(item).ok_or_else(|| self.malformed("DynamoDB Query"))?);
            }
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() && entries.len() < wanted => {
                    start_key = Some(key.clone());
                }
                _ => break,
            }
        }
        let next = if entries.len() > query.limit {
            entries.truncate(query.limit);
            let last = entries.last().expect("limit is at least 1");
            Some(HistoryCursor {
                created: last.row.created,
                message_id: MessageId::parse(&last.row.message_id)
                    .map_err(|_| self.malformed("DynamoDB Query"))?,
            })
        } else {
            None
        };
        Ok(HistoryPage { entries, next })
    }

    async fn mark_read(
        &self,
        user_id: UserId,
        message_id: &MessageId,
    ) -> Result<Marked, PortError> {
        let updated = self
            .update_row(user_id, message_id)
            // Without attribute_exists an update would create a row for an unknown id. A row
            // read with its receipt still pending is marked again, so its receipt goes out.
            .condition_expression(
                "attribute_exists(messageId) AND (#read = :unread OR attribute_exists(#pending))",
            )
            .update_expression("SET #read = :read, #pending = :read")
            .expression_attribute_names("#read", "is_read")
            .expression_attribute_names("#pending", RECEIPT_PENDING)
            .expression_attribute_values(":unread", number(0))
            .expression_attribute_values(":read", number(1))
            // On a failed condition, the row as it was tells "read before" from "no row".
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let Err(error) = updated else {
            return Ok(Marked::Now);
        };
        match error.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(failed)) => {
                Ok(if failed.item().is_some_and(|item| !item.is_empty()) {
                    Marked::Before
                } else {
                    Marked::Missing
                })
            }
            _ => Err(port_error("DynamoDB UpdateItem", &self.table, error)),
        }
    }

    async fn receipt_sent(&self, user_id: UserId, message_id: &MessageId) -> Result<(), PortError> {
        let updated = self
            .update_row(user_id, message_id)
            .condition_expression("attribute_exists(messageId)")
            .update_expression("REMOVE #pending")
            .expression_attribute_names("#pending", RECEIPT_PENDING)
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(error) => match port_error("DynamoDB UpdateItem", &self.table, error) {
                // The row expired or was never there: nothing pending.
                error if error.kind == PortErrorKind::ConditionFailed => Ok(()),
                error => Err(error),
            },
        }
    }

    async fn unread_up_to(
        &self,
        user_id: UserId,
        created_up_to: u64,
        now: u64,
        limit: usize,
    ) -> Result<Vec<MessageId>, PortError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CREATED_INDEX)
            .key_condition_expression("userId = :user AND #created <= :upto")
            .filter_expression("(#read = :unread OR attribute_exists(#pending)) AND #ttl > :now")
            .projection_expression("messageId")
            .scan_index_forward(false)
            .expression_attribute_names("#created", "created")
            .expression_attribute_names("#read", "is_read")
            .expression_attribute_names("#pending", RECEIPT_PENDING)
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":user", number(user_id.get()))
            .expression_attribute_values(":upto", number(created_up_to))
            .expression_attribute_values(":unread", number(0))
            .expression_attribute_values(":now", number(now))
            .into_paginator()
            .send();
        // The filter applies after each page is read: page on until `limit` ids are found.
        let mut items: Vec<HashMap<String, AttributeValue>> = Vec::new();
        while items.len() < limit {
            let Some(page) = pages.next().await else {
                break;
            };
            let page = page.map_err(|error| port_error("DynamoDB Query", CREATED_INDEX, error))?;
            items.extend(page.items().iter().cloned());
        }
        items.truncate(limit);
        items
            .iter()
            .map(|item| {
                item.get("messageId")
                    .and_then(|value| value.as_s().ok())
                    .and_then(|raw| MessageId::parse(raw).ok())
                    .ok_or_else(|| self.malformed("DynamoDB Query"))
            })
            .collect()
    }
}
