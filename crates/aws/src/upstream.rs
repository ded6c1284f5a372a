//! The upstream consumer's memory on one DynamoDB table (`sqs-push-<stage>-upstream`, key `pk`
//! (S) + `sk` (S), TTL on `ttl`), and the app's targets on SQS and Lambda.
//!
//! Items: `seq#<sender>` / `<seq>` (a processed message), `bucket#<key>` / `-` (a rate bucket:
//! `tokens` in thousandths, `at` epoch ms), `strikes#<sender>` / `-` (`strikes`),
//! `seen#<userId>#<sessionId>` / `-` (the last heartbeat, `lastSeen` epoch ms). `<sender>` is
//! the role session name: nothing here is a key or a credential.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use sqs_push_core::model::ids::{SessionId, UserId};
use sqs_push_core::ports::{AppMessage, AppTarget, Heartbeat, UpstreamStore};
use sqs_push_core::upstream::bucket::Bucket;
use sqs_push_core::{PortError, PortErrorKind};

use crate::errors::port_error;

/// The item with no range of its own uses this sort key.
const SINGLE: &str = "-";

/// [`UpstreamStore`] on DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoUpstreamStore {
    client: Client,
    table: String,
}

impl DynamoUpstreamStore {
    /// The store on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn seen_key(user_id: UserId, session_id: &SessionId) -> String {
    format!("seen#{user_id}#{session_id}")
}

#[async_trait]
impl UpstreamStore for DynamoUpstreamStore {
    async fn claim_seq(&self, sender: &str, seq: u64, expires: u64) -> Result<bool, PortError> {
        let outcome = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("seq#{sender}")))
            .item("sk", s(seq.to_string()))
            .item("ttl", n(expires))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(error) => {
                let error = port_error("DynamoDB PutItem (upstream seq)", &self.table, error);
                if error.kind == PortErrorKind::ConditionFailed {
                    Ok(false)
                } else {
                    Err(error)
                }
            }
        }
    }

    async fn release_seq(&self, sender: &str, seq: u64) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("seq#{sender}")))
            .key("sk", s(seq.to_string()))
            .send()
            .await
            .map_err(|error| {
                port_error("DynamoDB DeleteItem (upstream seq)", &self.table, error)
            })?;
        Ok(())
    }

    async fn bucket(&self, key: &str) -> Result<Option<Bucket>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("bucket#{key}")))
            .key("sk", s(SINGLE))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| {
                port_error("DynamoDB GetItem (upstream bucket)", &self.table, error)
            })?;
        Ok(output.item().and_then(|item| {
            Some(Bucket {
                milli_tokens: number(item, "tokens")?,
                at_millis: number(item, "at")?,
            })
        }))
    }

    async fn put_bucket(
        &self,
        key: &str,
        previous: Option<Bucket>,
        next: Bucket,
        expires: u64,
    ) -> Result<(), PortError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("bucket#{key}")))
            .item("sk", s(SINGLE))
            .item("tokens", n(next.milli_tokens))
            .item("at", n(next.at_millis))
            .item("ttl", n(expires));
        let put = match previous {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(previous) => put
                .condition_expression("tokens = :tokens AND #at = :at")
                .expression_attribute_names("#at", "at")
                .expression_attribute_values(":tokens", n(previous.milli_tokens))
                .expression_attribute_values(":at", n(previous.at_millis)),
        };
        put.send().await.map_err(|error| {
            port_error("DynamoDB PutItem (upstream bucket)", &self.table, error)
        })?;
        Ok(())
    }

    async fn add_strike(&self, sender: &str, expires: u64) -> Result<u64, PortError> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("strikes#{sender}")))
            .key("sk", s(SINGLE))
            .update_expression("ADD strikes :one SET #ttl = :ttl")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(expires))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|error| {
                port_error("DynamoDB UpdateItem (upstream strike)", &self.table, error)
            })?;
        Ok(output
            .attributes()
            .and_then(|item| number(item, "strikes"))
            .unwrap_or(1))
    }

    async fn strikes(&self, sender: &str) -> Result<u64, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("strikes#{sender}")))
            .key("sk", s(SINGLE))
            .send()
            .await
            .map_err(|error| {
                port_error("DynamoDB GetItem (upstream strikes)", &self.table, error)
            })?;
        Ok(output
            .item()
            .and_then(|item| number(item, "strikes"))
            .unwrap_or(0))
    }

    async fn heartbeat(&self, beat: &Heartbeat, expires: u64) -> Result<Option<u64>, PortError> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(seen_key(beat.user_id, &beat.session_id)))
            .key("sk", s(SINGLE))
            .update_expression("SET lastSeen = :at, accountId = :account, #ttl = :ttl")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":at", n(beat.at_millis))
            .expression_attribute_values(":account", n(beat.account_id.get()))
            .expression_attribute_values(":ttl", n(expires))
            .return_values(ReturnValue::UpdatedOld)
            .send()
            .await
            .map_err(|error| port_error("DynamoDB UpdateItem (heartbeat)", &self.table, error))?;
        Ok(output
            .attributes()
            .and_then(|item| number(item, "lastSeen")))
    }

    async fn last_seen(
        &self,
        user_id: UserId,
        session_id: &SessionId,
    ) -> Result<Option<u64>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(seen_key(user_id, session_id)))
            .key("sk", s(SINGLE))
            .send()
            .await
            .map_err(|error| port_error("DynamoDB GetItem (last seen)", &self.table, error))?;
        Ok(output.item().and_then(|item| number(item, "lastSeen")))
    }
}

/// The app's target: an SQS queue (by URL) or a Lambda function (invoked asynchronously).
#[derive(Debug, Clone)]
pub enum AwsAppTarget {
    /// SendMessage of the message's JSON.
    Queue {
        /// SQS.
        client: aws_sdk_sqs::Client,
        /// The queue URL.
        url: String,
    },
    /// An Event invoke with the message's JSON as the payload.
    Function {
        /// Lambda.
        client: aws_sdk_lambda::Client,
        /// The function's name or ARN.
        name: String,
    },
}

#[async_trait]
impl AppTarget for AwsAppTarget {
    async fn deliver(&self, message: &AppMessage) -> Result<(), PortError> {
        let json = serde_json::to_string(message).map_err(|error| {
            PortError::new(
                PortErrorKind::Other,
                "serialize app message",
                "app",
                error.to_string(),
            )
        })?;
        match self {
            Self::Queue { client, url } => {
                client
                    .send_message()
                    .queue_url(url)
                    .message_body(json)
                    .send()
                    .await
                    .map_err(|error| port_error("SQS SendMessage (app target)", url, error))?;
            }
            Self::Function { client, name } => {
                client
                    .invoke()
                    .function_name(name)
                    .invocation_type(InvocationType::Event)
                    .payload(Blob::new(json))
                    .send()
                    .await
                    .map_err(|error| port_error("Lambda Invoke (app target)", name, error))?;
            }
        }
        Ok(())
    }
}
