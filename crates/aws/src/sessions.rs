//! The sessions table on DynamoDB: key `userId` (N) + `sessionId` (S), GSI on `accountId`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use sqs_push_core::model::ids::{AccountId, SessionId, UserId};
use sqs_push_core::model::recipient::{Recipient, RecipientPage, ScanPosition};
use sqs_push_core::model::session::Session;
use sqs_push_core::ports::{SessionCursor, SessionPage, SessionStore};
use sqs_push_core::{PortError, PortErrorKind};

use crate::errors::port_error;
use crate::rows::{SessionRow, recipient_from_row, session_from_row, to_item};

/// Name of the global secondary index on `accountId`.
pub const ACCOUNT_INDEX: &str = "accountId-index";
/// The non-key attributes the account index projects (INCLUDE): routing only, no secrets.
pub const ACCOUNT_INDEX_ATTRIBUTES: [&str; 4] = ["sqsUrl", "aesKey", "expires", "ttl"];

type Item = HashMap<String, AttributeValue>;

/// [`SessionStore`] on a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoSessionStore {
    client: Client,
    table: String,
}

impl DynamoSessionStore {
    /// The store for `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
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

    async fn replace(&self, session: &Session) -> Result<(), PortError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(session_to_item(session)))
            .condition_expression("sqsUrl = :url")
            .expression_attribute_values(":url", string(&session.queue.url))
            .send()
            .await
            .map_err(|error| port_error("DynamoDB PutItem", &self.table, error))?;
        Ok(())
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
