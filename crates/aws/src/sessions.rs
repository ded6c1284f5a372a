//! The sessions table on DynamoDB: key `userId` (N) + `sessionId` (S), GSI on `accountId`; and
//! the channels table beside it: key `channel` (S) + `member` (`<userId>#<sessionId>`), one row
//! per membership, written together with the session row's `channels` set in one transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnValue, Select, TransactWriteItem, Update,
};
use futures::StreamExt;
use sqs_push_core::model::channel::ChannelName;
use sqs_push_core::model::ids::{AccountId, SessionId, UserId};
use sqs_push_core::model::recipient::{Recipient, RecipientPage, ScanPosition};
use sqs_push_core::model::session::Session;
use sqs_push_core::ports::{SessionCursor, SessionPage, SessionStore};
use sqs_push_core::{PortError, PortErrorKind};

use crate::errors::{condition_held, port_error};
use crate::rows::{
    MembershipRow, SessionRow, member_key, recipient_from_row, session_from_row, to_item,
};

/// Name of the global secondary index on `accountId`.
pub const ACCOUNT_INDEX: &str = "accountId-index";
/// The non-key attributes the account index projects (INCLUDE): routing only, no secrets.
pub const ACCOUNT_INDEX_ATTRIBUTES: [&str; 4] = ["sqsUrl", "aesKey", "expires", "ttl"];

type Item = HashMap<String, AttributeValue>;

/// Membership rows written or deleted at once, one session at a time (renew, cleanup).
const MEMBERSHIP_CONCURRENCY: usize = 8;

/// [`SessionStore`] on a DynamoDB table and its channels table.
#[derive(Debug, Clone)]
pub struct DynamoSessionStore {
    client: Client,
    table: String,
    channels_table: String,
}

impl DynamoSessionStore {
    /// The store for the sessions `table` and the `channels_table` of its memberships.
    pub fn new(
        client: Client,
        table: impl Into<String>,
        channels_table: impl Into<String>,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            channels_table: channels_table.into(),
        }
    }

    fn membership_key(&self, channel: &ChannelName, session: &Session) -> Item {
        HashMap::from([
            ("channel".to_string(), string(channel.as_str())),
            (
                "member".to_string(),
                string(&member_key(session.user_id, &session.session_id)),
            ),
        ])
    }

    /// Extends one membership to the session's ttl, if it still holds the session's queue.
    async fn refresh_membership(
        &self,
        channel: ChannelName,
        session: &Session,
    ) -> Result<(), PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.channels_table)
            .set_key(Some(self.membership_key(&channel, session)))
            .update_expression("SET #ttl = :ttl, expires = :expires")
            .condition_expression("sqsUrl = :url")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":ttl", number(session.ttl))
            .expression_attribute_values(":expires", number(session.credentials.expires))
            .expression_attribute_values(":url", string(&session.queue.url))
            .send()
            .await;
        // Unsubscribed meanwhile, or no row of this queue: nothing to extend.
        condition_held(result, "DynamoDB UpdateItem", &self.channels_table).map(|_| ())
    }

    /// Deletes one membership if it still holds the session's queue; 1 when it did.
    async fn remove_membership(
        &self,
        channel: ChannelName,
        session: &Session,
    ) -> Result<usize, PortError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.channels_table)
            .set_key(Some(self.membership_key(&channel, session)))
            .condition_expression("sqsUrl = :url")
            .expression_attribute_values(":url", string(&session.queue.url))
            .send()
            .await;
        // Gone already, or a re-created session's row: not this session's to delete.
        condition_held(result, "DynamoDB DeleteItem", &self.channels_table).map(usize::from)
    }

    /// One transaction; a cancellation for a failed condition is a
    /// [`PortErrorKind::ConditionFailed`], for a conflicting transaction a transient error.
    async fn transact(
        &self,
        operation: &'static str,
        items: Vec<TransactWriteItem>,
    ) -> Result<(), PortError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(context))
                if matches!(
                    context.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                let TransactWriteItemsError::TransactionCanceledException(cancelled) =
                    context.err()
                else {
                    unreachable!("matched above");
                };
                let codes: Vec<&str> = cancelled
                    .cancellation_reasons()
                    .iter()
                    .filter_map(|reason| reason.code())
                    .collect();
                let kind = if codes.contains(&"ConditionalCheckFailed") {
                    PortErrorKind::ConditionFailed
                } else {
                    PortErrorKind::Transient
                };
                Err(PortError::new(
                    kind,
                    operation,
                    &self.table,
                    format!("transaction cancelled: {}", codes.join(", ")),
                ))
            }
            Err(error) => Err(port_error(operation, &self.table, error)),
        }
    }

    fn key(user_id: UserId, session_id: &SessionId) -> Item {
        HashMap::from([
            ("userId".to_string(), number(user_id.get())),
            (
                "sessionId".to_string(),
                AttributeValue::S(session_id.to_string()),
            ),
        ])
    }

    fn session(&self, operation: &'static str, item: &Item) -> Result<Session, PortError> {
        session_from_item(item).map_err(|field| self.malformed(operation, field))
    }

    fn sessions(&self, operation: &'static str, items: &[Item]) -> Result<Vec<Session>, PortError> {
        items
            .iter()
            .map(|item| self.session(operation, item))
            .collect()
    }

    fn malformed(&self, operation: &'static str, field: impl std::fmt::Display) -> PortError {
        PortError::new(
            PortErrorKind::Other,
            operation,
            &self.table,
            format!("a row has a missing or malformed {field}"),
        )
    }

    fn recipients(
        &self,
        operation: &'static str,
        items: &[Item],
    ) -> Result<Vec<Recipient>, PortError> {
        items
            .iter()
            .map(|item| recipient_from_row(item.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|field| self.malformed(operation, field))
    }

    fn position(
        &self,
        operation: &'static str,
        key: Option<&Item>,
    ) -> Result<Option<ScanPosition>, PortError> {
        match key {
            Some(key) if !key.is_empty() => {
                let cursor =
                    cursor_from_key(key).map_err(|field| self.malformed(operation, field))?;
                Ok(Some(ScanPosition {
                    user_id: cursor.user_id,
                    session_id: cursor.session_id,
                }))
            }
            _ => Ok(None),
        }
    }
}

fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn string(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

/// The row for a session.
pub fn session_to_item(session: &Session) -> Item {
    to_item(&SessionRow::from(session))
}

/// The session in a row; the error names the field that is missing or malformed.
pub fn session_from_item(item: &Item) -> Result<Session, String> {
    session_from_row(item.clone())
}

#[async_trait]
impl SessionStore for DynamoSessionStore {
    async fn get(
        &self,
        user_id: UserId,
        session_id: &SessionId,
    ) -> Result<Option<Session>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(user_id, session_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| port_error("DynamoDB GetItem", &self.table, error))?;
        match output.item() {
            Some(item) => Ok(Some(self.session("DynamoDB GetItem", item)?)),
            None => Ok(None),
        }
    }

    async fn put(&self, session: &Session) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(session_to_item(session)))
            .send()
            .await
            .map_err(|error| port_error("DynamoDB PutItem", &self.table, error))?;
        Ok(())
    }

    async fn put_new(&self, session: &Session, now: u64) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(session_to_item(session)))
            .condition_expression("attribute_not_exists(userId) OR #ttl <= :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", number(now))
            .send()
            .await
            .map_err(|error| port_error("DynamoDB PutItem", &self.table, error))?;
        Ok(())
    }

    async fn delete_if_queue(
        &self,
        user_id: UserId,
        session_id: &SessionId,
        queue_url: &str,
    ) -> Result<Session, PortError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(user_id, session_id)))
            .condition_expression("sqsUrl = :url")
            .expression_attribute_values(":url", string(queue_url))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|error| port_error("DynamoDB DeleteItem", &self.table, error))?;
        match output.attributes() {
            Some(item) if !item.is_empty() => self.session("DynamoDB DeleteItem", item),
            _ => Err(self.malformed("DynamoDB DeleteItem", "old row")),
        }
    }

    async fn delete(
        &self,
        user_id: UserId,
        session_id: &SessionId,
    ) -> Result<Option<Session>, PortError> {
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(user_id, session_id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|error| port_error("DynamoDB DeleteItem", &self.table, error))?;
        match output.attributes() {
            Some(item) if !item.is_empty() => Ok(Some(self.session("DynamoDB DeleteItem", item)?)),
            _ => Ok(None),
        }
    }

    async fn recipients_of_user(&self, user_id: UserId) -> Result<Vec<Recipient>, PortError> {
        let items: Vec<Item> = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("userId = :user")
            .expression_attribute_values(":user", number(user_id.get()))
            .projection_expression(RECIPIENT_PROJECTION)
            .expression_attribute_names("#ttl", "ttl")
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|error| port_error("DynamoDB Query", &self.table, error))?;
        self.recipients("DynamoDB Query", &items)
    }

    async fn account_page(
        &self,
        account_id: AccountId,
        start: Option<&ScanPosition>,
        limit: usize,
    ) -> Result<RecipientPage, PortError> {
        const OPERATION: &str = "DynamoDB Query";
        // An index's start key is the index key and the table key together.
        let start_key = start.map(|position| {
            let mut key = Self::key(position.user_id, &position.session_id);
            key.insert("accountId".to_string(), number(account_id.get()));
            key
        });
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(ACCOUNT_INDEX)
            .key_condition_expression("accountId = :account")
            .expression_attribute_values(":account", number(account_id.get()))
            .projection_expression(ACCOUNT_INDEX_PROJECTION)
            .expression_attribute_names("#ttl", "ttl")
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(|error| port_error(OPERATION, ACCOUNT_INDEX, error))?;
        Ok(RecipientPage {
            recipients: self.recipients(OPERATION, output.items())?,
            next: self.position(OPERATION, output.last_evaluated_key())?,
        })
    }

    async fn list(
        &self,
        limit: usize,
        after: Option<&SessionCursor>,
    ) -> Result<SessionPage, PortError> {
        const OPERATION: &str = "DynamoDB Scan";
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(
                after.map(|cursor| Self::key(cursor.user_id, &cursor.session_id)),
            )
            .send()
            .await
            .map_err(|error| port_error(OPERATION, &self.table, error))?;
        let sessions = self.sessions(OPERATION, output.items())?;
        let next = match output.last_evaluated_key() {
            Some(key) if !key.is_empty() => {
                Some(cursor_from_key(key).map_err(|field| self.malformed(OPERATION, field))?)
            }
            _ => None,
        };
        Ok(SessionPage { sessions, next })
    }

    async fn replace(&self, session: &Session) -> Result<Session, PortError> {
        const OPERATION: &str = "DynamoDB UpdateItem";
        // Every attribute of the row but its key and its channels, which are subscribe's: a
        // whole-row put here would drop a channel subscribed since the session was read.
        let mut row = session_to_item(session);
        row.remove("userId");
        row.remove("sessionId");
        row.remove("channels");
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut sets = Vec::new();
        for (index, (name, value)) in row.into_iter().enumerate() {
            names.insert(format!("#a{index}"), name);
            values.insert(format!(":v{index}"), value);
            sets.push(format!("#a{index} = :v{index}"));
        }
        names.insert("#url".to_string(), "sqsUrl".to_string());
        values.insert(":url".to_string(), string(&session.queue.url));
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(session.user_id, &session.session_id)))
            .update_expression(format!("SET {}", sets.join(", ")))
            .condition_expression("#url = :url")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|error| port_error(OPERATION, &self.table, error))?;
        match output.attributes() {
            Some(item) if !item.is_empty() => self.session(OPERATION, item),
            _ => Err(self.malformed(OPERATION, "new row")),
        }
    }

    async fn subscribe(
        &self,
        session: &Session,
        channels: &[ChannelName],
        at_most_before: usize,
        now: u64,
    ) -> Result<(), PortError> {
        if channels.is_empty() {
            return Ok(());
        }
        let mut items = vec![
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(Self::key(session.user_id, &session.session_id)))
                        .update_expression("ADD channels :new")
                        .condition_expression(
                            "sqsUrl = :url AND #ttl = :ttl AND #ttl > :now \
                         AND (attribute_not_exists(channels) OR size(channels) <= :room)",
                        )
                        .expression_attribute_names("#ttl", "ttl")
                        .expression_attribute_values(
                            ":new",
                            AttributeValue::Ss(channels.iter().map(ToString::to_string).collect()),
                        )
                        .expression_attribute_values(":url", string(&session.queue.url))
                        .expression_attribute_values(":ttl", number(session.ttl))
                        .expression_attribute_values(":now", number(now))
                        .expression_attribute_values(":room", number(at_most_before as u64))
                        .build()
                        .expect("table, key and expression are set"),
                )
                .build(),
        ];
        for channel in channels {
            items.push(
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.channels_table)
                            .set_item(Some(to_item(&MembershipRow::of(channel, session))))
                            .build()
                            .expect("table and item are set"),
                    )
                    .build(),
            );
        }
        self.transact("DynamoDB TransactWriteItems (subscribe)", items)
            .await
    }

    async fn unsubscribe(&self, session: &Session, channel: &ChannelName) -> Result<(), PortError> {
        let items = vec![
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(Self::key(session.user_id, &session.session_id)))
                        .update_expression("DELETE channels :gone")
                        .condition_expression("sqsUrl = :url")
                        .expression_attribute_values(
                            ":gone",
                            AttributeValue::Ss(vec![channel.to_string()]),
                        )
                        .expression_attribute_values(":url", string(&session.queue.url))
                        .build()
                        .expect("table, key and expression are set"),
                )
                .build(),
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name(&self.channels_table)
                        .set_key(Some(self.membership_key(channel, session)))
                        .build()
                        .expect("table and key are set"),
                )
                .build(),
        ];
        self.transact("DynamoDB TransactWriteItems (unsubscribe)", items)
            .await
    }

    async fn channel_page(
        &self,
        channel: &ChannelName,
        start: Option<&ScanPosition>,
        limit: usize,
    ) -> Result<RecipientPage, PortError> {
        const OPERATION: &str = "DynamoDB Query";
        let start_key = start.map(|position| {
            HashMap::from([
                ("channel".to_string(), string(channel.as_str())),
                (
                    "member".to_string(),
                    string(&member_key(position.user_id, &position.session_id)),
                ),
            ])
        });
        let output = self
            .client
            .query()
            .table_name(&self.channels_table)
            .key_condition_expression("channel = :channel")
            .expression_attribute_values(":channel", string(channel.as_str()))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start_key)
            .send()
            .await
            .map_err(|error| port_error(OPERATION, &self.channels_table, error))?;
        // A membership row carries the session's routing attributes under the sessions
        // table's names, so it reads as any other recipient row.
        let recipients = self.recipients(OPERATION, output.items())?;
        // The last row read is where the next page starts (the key names only the member).
        let next = match output.last_evaluated_key() {
            Some(key) if !key.is_empty() => recipients.last().map(|last| ScanPosition {
                user_id: last.user_id,
                session_id: last.session_id.clone(),
            }),
            _ => None,
        };
        Ok(RecipientPage { recipients, next })
    }

    async fn count_channel(&self, channel: &ChannelName, now: u64) -> Result<u64, PortError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.channels_table)
            .key_condition_expression("channel = :channel")
            .filter_expression("#ttl > :now")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":channel", string(channel.as_str()))
            .expression_attribute_values(":now", number(now))
            .select(Select::Count)
            .into_paginator()
            .send();
        let mut count = 0u64;
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|error| port_error("DynamoDB Query", &self.channels_table, error))?;
            count += u64::try_from(page.count()).unwrap_or(0);
        }
        Ok(count)
    }

    async fn refresh_memberships(&self, session: &Session) -> Result<(), PortError> {
        // Owned names: a stream of futures borrowing from the set's iterator is not `Send`.
        let channels: Vec<ChannelName> = session.channels.iter().cloned().collect();
        let results: Vec<Result<(), PortError>> = futures::stream::iter(channels)
            .map(|channel| self.refresh_membership(channel, session))
            .buffer_unordered(MEMBERSHIP_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    async fn remove_memberships(&self, session: &Session) -> Result<usize, PortError> {
        let channels: Vec<ChannelName> = session.channels.iter().cloned().collect();
        let results: Vec<Result<usize, PortError>> = futures::stream::iter(channels)
            .map(|channel| self.remove_membership(channel, session))
            .buffer_unordered(MEMBERSHIP_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().sum()
    }

    async fn scan_page(
        &self,
        segment: u32,
        total_segments: u32,
        start: Option<&ScanPosition>,
        limit: usize,
    ) -> Result<RecipientPage, PortError> {
        const OPERATION: &str = "DynamoDB Scan";
        let output = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(i32::try_from(segment).unwrap_or(i32::MAX))
            .total_segments(i32::try_from(total_segments.max(1)).unwrap_or(i32::MAX))
            .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
            .projection_expression(RECIPIENT_PROJECTION)
            .expression_attribute_names("#ttl", "ttl")
            .set_exclusive_start_key(
                start.map(|position| Self::key(position.user_id, &position.session_id)),
            )
            .send()
            .await
            .map_err(|error| port_error(OPERATION, &self.table, error))?;
        Ok(RecipientPage {
            recipients: self.recipients(OPERATION, output.items())?,
            next: self.position(OPERATION, output.last_evaluated_key())?,
        })
    }

    async fn estimated_count(&self) -> Result<Option<u64>, PortError> {
        let output = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|error| port_error("DynamoDB DescribeTable", &self.table, error))?;
        Ok(output
            .table()
            .and_then(aws_sdk_dynamodb::types::TableDescription::item_count)
            .and_then(|count| u64::try_from(count).ok()))
    }
}

/// The attributes sending needs, and nothing else: what a user's key query and a broadcast
/// scan read (`ttl` is a reserved word, hence `#ttl`); `created` tells a send that a queue
/// SQS calls missing may only be too new to be visible yet.
pub const RECIPIENT_PROJECTION: &str =
    "userId, sessionId, accountId, sqsUrl, aesKey, expires, #ttl, created";

/// What the account index projects (serverless.yml, the local bootstrap): the recipient
/// attributes without `created`.
pub const ACCOUNT_INDEX_PROJECTION: &str =
    "userId, sessionId, accountId, sqsUrl, aesKey, expires, #ttl";

/// The cursor in a Scan's LastEvaluatedKey; the error names the malformed key attribute.
fn cursor_from_key(key: &Item) -> Result<SessionCursor, &'static str> {
    let user_id = key
        .get("userId")
        .and_then(|value| value.as_n().ok())
        .and_then(|n| n.parse::<u64>().ok())
        .and_then(|n| UserId::try_from(n).ok())
        .ok_or("userId")?;
    let session_id = key
        .get("sessionId")
        .and_then(|value| value.as_s().ok())
        .and_then(|s| SessionId::parse(s).ok())
        .ok_or("sessionId")?;
    Ok(SessionCursor {
        user_id,
        session_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqs_push_core::crypto::SessionKey;
    use sqs_push_core::model::session::{Credentials, QueueRef};

    #[test]
    fn a_session_survives_a_round_trip_through_its_row() {
        let session = Session {
            account_id: AccountId::try_from(100).unwrap(),
            user_id: UserId::try_from(200).unwrap(),
            session_id: SessionId::parse("s 1").unwrap(),
            queue: QueueRef {
                url: "http://x/1/q".into(),
                name: "q".into(),
            },
            identity_id: "us-east-1:abc".into(),
            developer_login: None,
            channels: Default::default(),
            aes_key: SessionKey::generate(),
            credentials: Credentials {
                access_key: "A".into(),
                secret_key: "S".into(),
                session_token: "T".into(),
                expires: 10,
            },
            ttl: 20,
            created: 5,
        };
        assert_eq!(session_from_item(&session_to_item(&session)), Ok(session));
    }

    #[test]
    fn a_scan_position_becomes_a_cursor_and_a_foreign_one_names_its_field() {
        let key = DynamoSessionStore::key(
            UserId::try_from(7).unwrap(),
            &SessionId::parse("tab 1").unwrap(),
        );
        let cursor = cursor_from_key(&key).unwrap();
        assert_eq!(cursor.user_id.get(), 7);
        assert_eq!(cursor.session_id.as_str(), "tab 1");
        let mut foreign = key.clone();
        foreign.insert("userId".into(), AttributeValue::S("7".into()));
        assert_eq!(cursor_from_key(&foreign).unwrap_err(), "userId");
    }

    #[test]
    fn a_malformed_row_names_the_field() {
        let mut item = HashMap::new();
        item.insert("userId".to_string(), AttributeValue::N("1".into()));
        assert_eq!(session_from_item(&item).unwrap_err(), "accountId");
    }
}
