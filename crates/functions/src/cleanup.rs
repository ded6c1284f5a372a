//! The cleanup function: a batch of the sessions table's stream records in, the queues and
//! identities of removed or replaced sessions deleted, partial failures reported back. The
//! same function runs the scheduled orphan sweep ([`crate::sweep`]).
//!
//! Records become [`SessionChange`]s here; what to delete is decided in `sqs-push-core`.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use sqs_push_aws::rows::session_from_row;
use sqs_push_core::cleanup::stream::{ChangeKind, CleanupService, SessionChange};
use sqs_push_core::model::session::Session;

use crate::sweep::SweepEvent;

/// The principal DynamoDB's TTL process writes its deletes under.
pub const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

/// Why a record cannot become a change. Retrying will not help, so it is skipped and logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The record has no sequence number to report a failure under.
    #[error("record {event_id} has no sequence number")]
    NoSequenceNumber {
        /// The record's event id.
        event_id: String,
    },
    /// Not INSERT, MODIFY or REMOVE.
    #[error("record {event_id} has an unknown event name {name:?}")]
    UnknownEvent {
        /// The record's event id.
        event_id: String,
        /// The event name.
        name: String,
    },
    /// An image is not a session row.
    #[error("record {event_id}: the {image} image has a missing or malformed {field}")]
    MalformedImage {
        /// The record's event id.
        event_id: String,
        /// `old` or `new`.
        image: &'static str,
        /// The first bad attribute.
        field: String,
    },
}

/// What the cleanup function is invoked with.
#[derive(Debug)]
pub enum CleanupEvent {
    /// A batch of the sessions table's stream records.
    Stream(Event),
    /// A step of the orphan sweep: from the schedule, or handed on by the step before.
    Sweep(SweepEvent),
}

impl CleanupEvent {
    /// Tells the two apart by their one top-level key (`Records` or `sweep`); anything else
    /// does not parse, naming what was expected.
    pub fn parse(payload: serde_json::Value) -> Result<Self, serde_json::Error> {
        if payload.get("sweep").is_some() {
            serde_json::from_value(payload).map(Self::Sweep)
        } else {
            serde_json::from_value(payload).map(Self::Stream)
        }
    }
}

/// One stream record as a domain change.
pub fn change_from_record(record: &EventRecord) -> Result<SessionChange, RecordError> {
    let event_id = record.event_id.clone();
    let sequence_number =
        record
            .change
            .sequence_number
            .clone()
            .ok_or_else(|| RecordError::NoSequenceNumber {
                event_id: event_id.clone(),
            })?;
    let kind = match record.event_name.as_str() {
        "INSERT" => ChangeKind::Insert,
        "MODIFY" => ChangeKind::Modify,
        "REMOVE" => ChangeKind::Remove,
        other => {
            return Err(RecordError::UnknownEvent {
                event_id,
                name: other.to_string(),
            });
        }
    };
    let image = |item: &serde_dynamo::Item, image: &'static str| {
        image_to_session(item).map_err(|field| RecordError::MalformedImage {
            event_id: event_id.clone(),
            image,
            field,
        })
    };
    let old = image(&record.change.old_image, "old")?;
    let new = image(&record.change.new_image, "new")?;
    let expired = kind == ChangeKind::Remove
        && record
            .user_identity
            .as_ref()
            .is_some_and(|identity| identity.principal_id == TTL_PRINCIPAL);
    Ok(SessionChange {
        sequence_number,
        event_id,
        kind,
        old,
        new,
        expired,
    })
}

/// An absent (empty) image is `None`; a present one is read as the sessions table's row.
fn image_to_session(item: &serde_dynamo::Item) -> Result<Option<Session>, String> {
    if item.is_empty() {
        return Ok(None);
    }
    session_from_row(item.clone()).map(Some)
}

/// Handles one batch. Never fails as a whole: records whose deletes failed come back as
/// `batchItemFailures` (by sequence number) so the stream retries from the first of them;
/// records that can never be handled are logged and skipped.
pub async fn handle(service: &CleanupService, event: Event) -> DynamoDbEventResponse {
    let mut changes = Vec::with_capacity(event.records.len());
    let mut skipped = 0usize;
    for record in &event.records {
        match change_from_record(record) {
            Ok(change) => changes.push(change),
            Err(error) => {
                skipped += 1;
                tracing::error!(%error, "stream record skipped");
            }
        }
    }
    if skipped > 0 {
        tracing::warn!(skipped, "stream records that are not session changes");
    }
    let report = service.apply(&changes).await;
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = report
        .failed
        .into_iter()
        .map(|sequence_number| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence_number);
            failure
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sqs_push_core::ports::{IdentityProvider, QueueService, QueueSpec};
    use sqs_push_core::testing::ManualClock;
    use sqs_push_core::testing::memory::{MemoryIdentities, MemoryQueues};
    use std::sync::Arc;

    fn image(queue_url: &str, identity_id: &str) -> serde_json::Value {
        json!({
            "userId": {"N": "200"}, "sessionId": {"S": "s1"}, "accountId": {"N": "100"},
            "sqsUrl": {"S": queue_url}, "sqsQueueName": {"S": queue_url.rsplit('/').next().unwrap()},
            "identityId": {"S": identity_id},
            "aesKey": {"S": "IpR6RqjQ8PgEGHdDdZC+zQ7Il/4n7QN9uWbwuMLlJ8U="},
            "accessKey": {"S": "A"}, "secretKey": {"S": "S"}, "sessionToken": {"S": "T"},
            "expires": {"N": "10"}, "ttl": {"N": "20"}, "created": {"N": "5"}
        })
    }

    fn record(sequence: &str, name: &str, old: Option<serde_json::Value>) -> serde_json::Value {
        let mut change = json!({
            "ApproximateCreationDateTime": 1_700_000_000.0,
            "Keys": {"userId": {"N": "200"}, "sessionId": {"S": "s1"}},
            "SequenceNumber": sequence,
            "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        });
        if let Some(old) = old {
            change["OldImage"] = old;
        }
        json!({
            "awsRegion": "us-east-1", "eventID": format!("e{sequence}"), "eventName": name,
            "eventSource": "aws:dynamodb", "eventVersion": "1.1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/t/stream/x",
            "dynamodb": change
        })
    }

    #[test]
    fn a_ttl_remove_becomes_an_expired_change_with_the_old_session() {
        let mut raw = record(
            "101",
            "REMOVE",
            Some(image("http://q/1/sqs-push-x-q", "id-1")),
        );
        raw["userIdentity"] = json!({"type": "Service", "principalId": TTL_PRINCIPAL});
        let record: EventRecord = serde_json::from_value(raw).unwrap();
        let change = change_from_record(&record).unwrap();
        assert_eq!(change.kind, ChangeKind::Remove);
        assert_eq!(change.sequence_number, "101");
        assert!(change.expired);
        assert!(change.new.is_none());
        let old = change.old.unwrap();
        assert_eq!(old.identity_id, "id-1");
        assert_eq!(old.queue.name, "sqs-push-x-q");
    }

    #[test]
    fn a_destroy_is_not_an_expiry_and_a_malformed_image_names_its_field() {
        let raw = record("102", "REMOVE", Some(image("http://q/1/q", "id-1")));
        let record: EventRecord = serde_json::from_value(raw).unwrap();
        assert!(!change_from_record(&record).unwrap().expired);

        let mut bad = image("http://q/1/q", "id-1");
        bad.as_object_mut().unwrap().remove("identityId");
        let record: EventRecord = serde_json::from_value(record_json_with_old("103", bad)).unwrap();
        assert_eq!(
            change_from_record(&record).unwrap_err().to_string(),
            "record e103: the old image has a missing or malformed identityId"
        );
    }

    fn record_json_with_old(sequence: &str, old: serde_json::Value) -> serde_json::Value {
        record(sequence, "REMOVE", Some(old))
    }

    #[tokio::test]
    async fn only_failed_records_come_back_as_batch_item_failures() {
        let clock = Arc::new(ManualClock::at(0));
        let queues = Arc::new(MemoryQueues::default());
        let identities = Arc::new(MemoryIdentities::new(clock, 60));
        let mut records = Vec::new();
        let mut failing_url = String::new();
        for number in 0..3 {
            let identity = identities.create_identity("1:s").await.unwrap();
            let queue = queues
                .create_queue(&QueueSpec {
                    name: format!("q{number}"),
                    owner_identity_id: identity.clone(),
                    retention_seconds: None,
                })
                .await
                .unwrap();
            if number == 1 {
                failing_url = queue.url.clone();
            }
            records.push(record(
                &format!("{}", 200 + number),
                "REMOVE",
                Some(image(&queue.url, &identity)),
            ));
        }
        records.push(
            json!({"eventID": "junk", "eventName": "REMOVE", "awsRegion": "x",
            "dynamodb": {"SizeBytes": 1}}),
        );
        queues.fail_deletes_of(&failing_url);
        let event: Event = serde_json::from_value(json!({ "Records": records })).unwrap();
        let service = CleanupService::new(
            Arc::new(sqs_push_core::testing::memory::MemorySessionStore::default()),
            queues.clone(),
            identities.clone(),
            2,
        );
        let response = handle(&service, event).await;
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "201"}]})
        );
        assert_eq!(queues.count(), 1);
        assert_eq!(identities.count(), 0);
    }
}
