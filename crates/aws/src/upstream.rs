//! The upstream consumer's memory on one DynamoDB table (`sqs-push-<stage>-upstream`, key `pk`
//! (S) + `sk` (S), TTL on `ttl`), and the app's targets on SQS and Lambda.
//!
//! Items: `seq#<sender>` / `<seq>` (a processed message), `bucket#<key>` / `-` (a rate bucket:
//! `tokens` in thousandths, `at` epoch ms), `strikes#<sender>` / `-` (`strikes`),
//! `seen#<userId>#<sessionId>` / `-` (the last heartbeat, `lastSeen` epoch ms; `online` and the
//! `channels` it joined while a join stands), `presence#<channel>` / `<userId>#<sessionId>` (a
//! channel's online sessions), `due#<bucket>` / `<userId>#<sessionId>` (the sweep's timer wheel),
//! `sweep` / `-` (the last bucket swept) and `channel#<name>` / `-` (presence events on).
//! `<sender>` is the role session name: nothing here is a key or a credential.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use sqs_push_core::model::channel::ChannelName;
use sqs_push_core::model::ids::{AccountId, SessionId, UserId};
use sqs_push_core::ports::{
    AppMessage, AppTarget, Heartbeat, PresenceMember, PresencePage, PresenceStore, Seen,
    UpstreamStore,
};
use sqs_push_core::upstream::bucket::Bucket;
use sqs_push_core::{PortError, PortErrorKind};

use crate::errors::{condition_held, port_error};

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
        condition_held(outcome, "DynamoDB PutItem (upstream seq)", &self.table)
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

fn member_key(user_id: UserId, session_id: &SessionId) -> String {
    format!("{user_id}#{session_id}")
}

fn member_item(member: &PresenceMember) -> [(&'static str, AttributeValue); 3] {
    [
        ("accountId", n(member.account_id.get())),
        ("userId", n(member.user_id.get())),
        ("sessionId", s(member.session_id.as_str())),
    ]
}

fn member_from(item: &HashMap<String, AttributeValue>) -> Option<PresenceMember> {
    Some(PresenceMember {
        account_id: AccountId::try_from(number(item, "accountId")?).ok()?,
        user_id: UserId::try_from(number(item, "userId")?).ok()?,
        session_id: SessionId::parse(item.get("sessionId")?.as_s().ok()?).ok()?,
    })
}

impl DynamoUpstreamStore {
    async fn put_single(
        &self,
        pk: String,
        extra: Vec<(&str, AttributeValue)>,
    ) -> Result<(), PortError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(SINGLE));
        for (name, value) in extra {
            put = put.item(name, value);
        }
        put.send()
            .await
            .map_err(|error| port_error("DynamoDB PutItem (presence)", &self.table, error))?;
        Ok(())
    }

    async fn get_single(
        &self,
        pk: String,
    ) -> Result<Option<HashMap<String, AttributeValue>>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(SINGLE))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| port_error("DynamoDB GetItem (presence)", &self.table, error))?;
        Ok(output.item().cloned())
    }

    async fn put_member(
        &self,
        pk: String,
        member: &PresenceMember,
        expires: u64,
    ) -> Result<(), PortError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(member_key(member.user_id, &member.session_id)))
            .item("ttl", n(expires));
        for (name, value) in member_item(member) {
            put = put.item(name, value);
        }
        put.send()
            .await
            .map_err(|error| port_error("DynamoDB PutItem (presence)", &self.table, error))?;
        Ok(())
    }

    async fn delete_member(&self, pk: String, member: &PresenceMember) -> Result<(), PortError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(member_key(member.user_id, &member.session_id)))
            .send()
            .await
            .map_err(|error| port_error("DynamoDB DeleteItem (presence)", &self.table, error))?;
        Ok(())
    }

    /// A page of the members under `pk`, after `after`.
    async fn members(
        &self,
        pk: String,
        limit: usize,
        after: Option<&(UserId, SessionId)>,
    ) -> Result<PresencePage, PortError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk.clone()))
            .consistent_read(true)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX));
        if let Some((user_id, session_id)) = after {
            query = query
                .exclusive_start_key("pk", s(pk))
                .exclusive_start_key("sk", s(member_key(*user_id, session_id)));
        }
        let output = query
            .send()
            .await
            .map_err(|error| port_error("DynamoDB Query (presence)", &self.table, error))?;
        let members: Vec<PresenceMember> = output.items().iter().filter_map(member_from).collect();
        let next = output
            .last_evaluated_key()
            .and_then(|_| members.last())
            .map(|last| (last.user_id, last.session_id.clone()));
        Ok(PresencePage { members, next })
    }
}

#[async_trait]
impl PresenceStore for DynamoUpstreamStore {
    async fn is_online(&self, user_id: UserId, session_id: &SessionId) -> Result<bool, PortError> {
        Ok(self
            .get_single(seen_key(user_id, session_id))
            .await?
            .and_then(|item| item.get("online").and_then(|v| v.as_bool().ok()).copied())
            .unwrap_or(false))
    }

    async fn mark_online(
        &self,
        member: &PresenceMember,
        channels: &[ChannelName],
        expires: u64,
    ) -> Result<bool, PortError> {
        let names: Vec<AttributeValue> = channels.iter().map(|c| s(c.to_string())).collect();
        let outcome = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(seen_key(member.user_id, &member.session_id)))
            .key("sk", s(SINGLE))
            .update_expression(
                "SET #online = :on, channels = :channels, accountId = :account, #ttl = :ttl",
            )
            .condition_expression("attribute_not_exists(#online) OR #online = :off")
            // Both are DynamoDB reserved words.
            .expression_attribute_names("#online", "online")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":on", AttributeValue::Bool(true))
            .expression_attribute_values(":off", AttributeValue::Bool(false))
            .expression_attribute_values(":channels", AttributeValue::L(names))
            .expression_attribute_values(":account", n(member.account_id.get()))
            .expression_attribute_values(":ttl", n(expires))
            .send()
            .await;
        condition_held(outcome, "DynamoDB UpdateItem (online)", &self.table)
    }

    async fn mark_offline(
        &self,
        user_id: UserId,
        session_id: &SessionId,
        before_millis: u64,
    ) -> Result<Option<Seen>, PortError> {
        let outcome = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(seen_key(user_id, session_id)))
            .key("sk", s(SINGLE))
            .update_expression("SET #online = :off")
            .condition_expression("#online = :on AND lastSeen < :before")
            .expression_attribute_names("#online", "online")
            .expression_attribute_values(":on", AttributeValue::Bool(true))
            .expression_attribute_values(":off", AttributeValue::Bool(false))
            .expression_attribute_values(":before", n(before_millis))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let output = match outcome {
            Ok(output) => output,
            Err(error) => {
                let error = port_error("DynamoDB UpdateItem (offline)", &self.table, error);
                return if error.kind == PortErrorKind::ConditionFailed {
                    Ok(None)
                } else {
                    Err(error)
                };
            }
        };
        let Some(item) = output.attributes() else {
            return Ok(None);
        };
        let channels = item
            .get("channels")
            .and_then(|v| v.as_l().ok())
            .map(|names| {
                names
                    .iter()
                    .filter_map(|name| ChannelName::parse(name.as_s().ok()?).ok())
                    .collect()
            })
            .unwrap_or_default();
        let account_id = number(item, "accountId")
            .and_then(|id| AccountId::try_from(id).ok())
            .ok_or_else(|| {
                PortError::new(
                    PortErrorKind::Other,
                    "DynamoDB UpdateItem (offline)",
                    &self.table,
                    "the seen row has no accountId",
                )
            })?;
        Ok(Some(Seen {
            member: PresenceMember {
                account_id,
                user_id,
                session_id: session_id.clone(),
            },
            last_seen: number(item, "lastSeen").unwrap_or(0),
            channels,
        }))
    }

    async fn enter(
        &self,
        channel: &ChannelName,
        member: &PresenceMember,
        expires: u64,
    ) -> Result<(), PortError> {
        self.put_member(format!("presence#{channel}"), member, expires)
            .await
    }

    async fn leave(&self, channel: &ChannelName, member: &PresenceMember) -> Result<(), PortError> {
        self.delete_member(format!("presence#{channel}"), member)
            .await
    }

    async fn channel_page(
        &self,
        channel: &ChannelName,
        limit: usize,
        after: Option<&(UserId, SessionId)>,
    ) -> Result<PresencePage, PortError> {
        self.members(format!("presence#{channel}"), limit, after)
            .await
    }

    async fn add_due(
        &self,
        bucket: u64,
        member: &PresenceMember,
        expires: u64,
    ) -> Result<(), PortError> {
        self.put_member(format!("due#{bucket}"), member, expires)
            .await
    }

    async fn due(&self, bucket: u64) -> Result<Vec<PresenceMember>, PortError> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .members(format!("due#{bucket}"), 1_000, after.as_ref())
                .await?;
            all.extend(page.members);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(all),
            }
        }
    }

    async fn remove_due(&self, bucket: u64, member: &PresenceMember) -> Result<(), PortError> {
        self.delete_member(format!("due#{bucket}"), member).await
    }

    async fn swept_through(&self) -> Result<Option<u64>, PortError> {
        Ok(self
            .get_single("sweep".to_string())
            .await?
            .and_then(|item| number(&item, "bucket")))
    }

    async fn set_swept_through(&self, bucket: u64) -> Result<(), PortError> {
        self.put_single("sweep".to_string(), vec![("bucket", n(bucket))])
            .await
    }

    async fn enable_events(&self, channel: &ChannelName) -> Result<(), PortError> {
        self.put_single(
            format!("channel#{channel}"),
            vec![("presenceEvents", AttributeValue::Bool(true))],
        )
        .await
    }

    async fn events_enabled(&self, channel: &ChannelName) -> Result<bool, PortError> {
        Ok(self
            .get_single(format!("channel#{channel}"))
            .await?
            .and_then(|item| {
                item.get("presenceEvents")
                    .and_then(|v| v.as_bool().ok())
                    .copied()
            })
            .unwrap_or(false))
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
