//! Events from the Kinesis stream: each record is a JSON object whose optional `accountId`,
//! `userId` and `sessionId` pick the target (none of them: everyone). Records are handled in
//! sequence order; a malformed record is skipped and counted, never blocking the shard.

use serde::Serialize;
use serde_json::Value;

use crate::dispatch::{Dispatcher, Target};
use crate::model::ids::{AccountId, IdError, SessionId, UserId};
use crate::model::message::{Message, MessageId};
use crate::ports::PortErrorKind;

/// A stream record as the dispatcher needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// Its sequence number, reported back when it has to be retried.
    pub sequence_number: String,
    /// The event id (`shardId-…:sequence`), which the message id is derived from.
    pub event_id: String,
    /// The record's data.
    pub data: Vec<u8>,
}

/// What a batch of records did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamReport {
    /// Records dispatched.
    pub dispatched: usize,
    /// Malformed records skipped.
    pub skipped: usize,
    /// Records skipped because their dispatch failed for a reason a retry cannot fix (too
    /// large, malformed rows, permissions): logged with their sequence number.
    pub poison: usize,
    /// The sequence number of the first record that failed for a transient reason: it and every
    /// later record must be retried.
    pub first_failure: Option<String>,
}

/// Why a record is malformed.
fn id_field<T>(
    object: &serde_json::Map<String, Value>,
    field: &'static str,
    parse: impl Fn(&str) -> Result<T, IdError>,
) -> Result<Option<T>, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) if number.is_u64() => parse(&number.to_string())
            .map(Some)
            .map_err(|e| e.to_string()),
        Some(Value::String(text)) => parse(text).map(Some).map_err(|e| e.to_string()),
        Some(_) => Err(format!("{field} has the wrong type")),
    }
}

/// Parses one record into a target and a message with a message id stable across retries.
pub fn parse_record(record: &StreamRecord) -> Result<(Target, Message), String> {
    let value: Value =
        serde_json::from_slice(&record.data).map_err(|error| format!("not JSON: {error}"))?;
    let Value::Object(fields) = value else {
        return Err("not a JSON object".to_string());
    };
    let account_id = id_field(&fields, AccountId::FIELD, AccountId::parse)?;
    let user_id = id_field(&fields, UserId::FIELD, UserId::parse)?;
    let session_id = match fields.get(SessionId::FIELD) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(SessionId::parse(text).map_err(|e| e.to_string())?),
        Some(_) => return Err("sessionId has the wrong type".to_string()),
    };
    let target = match (account_id, user_id, session_id) {
        (_, Some(user_id), Some(session_id)) => Target::Session(user_id, session_id),
        (_, None, Some(_)) => return Err("sessionId needs a userId".to_string()),
        (_, Some(user_id), None) => Target::User(user_id),
        (Some(account_id), None, None) => Target::Account(account_id),
        (None, None, None) => Target::Everyone,
    };
    let message = Message::new(fields, || MessageId::derived_from(&record.event_id))
        .map_err(|error| error.to_string())?;
    Ok((target, message))
}

/// Dispatches records in order; stops at the first transient failure so the stream retries
/// from there.
pub async fn dispatch_records(dispatcher: &Dispatcher, records: &[StreamRecord]) -> StreamReport {
    let mut report = StreamReport::default();
    for record in records {
        let (target, message) = match parse_record(record) {
            Ok(parsed) => parsed,
            Err(reason) => {
                tracing::warn!(sequence_number = %record.sequence_number, %reason, "skipping malformed record");
                report.skipped += 1;
                continue;
            }
        };
        match dispatcher.dispatch(&target, message).await {
            Ok(_) => report.dispatched += 1,
            Err(error) if error.kind != PortErrorKind::Transient => {
                tracing::error!(sequence_number = %record.sequence_number, %error, "skipping a poison record: its dispatch cannot succeed on a retry");
                report.poison += 1;
            }
            Err(error) => {
                tracing::error!(sequence_number = %record.sequence_number, %error, "dispatch failed; the stream will retry");
                report.first_failure = Some(record.sequence_number.clone());
                break;
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(data: &str) -> StreamRecord {
        StreamRecord {
            sequence_number: "1".into(),
            event_id: "shardId-000000000000:1".into(),
            data: data.as_bytes().to_vec(),
        }
    }

    fn target(data: &str) -> Result<Target, String> {
        parse_record(&record(data)).map(|(target, _)| target)
    }

    #[test]
    fn ids_in_the_record_pick_the_target() {
        let user = UserId::try_from(200).unwrap();
        assert_eq!(target(r#"{"message":"x"}"#), Ok(Target::Everyone));
        assert_eq!(
            target(r#"{"accountId":100}"#),
            Ok(Target::Account(AccountId::try_from(100).unwrap()))
        );
        assert_eq!(
            target(r#"{"accountId":100,"userId":200}"#),
            Ok(Target::User(user))
        );
        assert_eq!(target(r#"{"userId":"200"}"#), Ok(Target::User(user)));
        assert_eq!(
            target(r#"{"userId":200,"sessionId":"s"}"#),
            Ok(Target::Session(user, SessionId::parse("s").unwrap()))
        );
    }

    #[test]
    fn malformed_records_say_why() {
        for (data, why) in [
            ("not json", "not JSON"),
            ("[1,2]", "not a JSON object"),
            (r#"{"userId":true}"#, "userId has the wrong type"),
            (r#"{"userId":1.5}"#, "userId has the wrong type"),
            (r#"{"accountId":-1}"#, "accountId has the wrong type"),
            (r#"{"userId":9007199254740992}"#, "invalid userId"),
            (r#"{"sessionId":"s"}"#, "sessionId needs a userId"),
            (
                r#"{"userId":1,"sessionId":5}"#,
                "sessionId has the wrong type",
            ),
        ] {
            let error = target(data).unwrap_err();
            assert!(error.contains(why), "{data}: {error}");
        }
    }

    #[test]
    fn the_message_id_is_derived_from_the_event_id_unless_given() {
        let (_, message) = parse_record(&record(r#"{"message":"x"}"#)).unwrap();
        assert_eq!(
            message.id(),
            &MessageId::derived_from("shardId-000000000000:1")
        );
        let (_, message) = parse_record(&record(r#"{"messageId":"mine"}"#)).unwrap();
        assert_eq!(message.id().as_str(), "mine");
    }

    fn dispatcher(store: std::sync::Arc<crate::testing::memory::MemorySessionStore>) -> Dispatcher {
        use crate::testing::memory::{MemoryHistory, MemoryQueues, RecordingInvoker};
        use std::sync::Arc;
        Dispatcher::new(
            store,
            crate::dispatch::send::Sender::new(Arc::new(MemoryQueues::default()), 4),
            crate::history::write::HistoryWriter::new(Arc::new(MemoryHistory::default()), 60, 1),
            Arc::new(RecordingInvoker::default()),
            Arc::new(crate::testing::ManualClock::at(1_000)),
            crate::dispatch::DispatchSettings::default(),
        )
    }

    fn numbered(n: usize) -> Vec<StreamRecord> {
        (1..=n)
            .map(|i| StreamRecord {
                sequence_number: i.to_string(),
                event_id: format!("shardId-000000000000:{i}"),
                data: br#"{"userId":7,"message":"x"}"#.to_vec(),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_transient_dispatch_failure_stops_the_batch_at_that_record() {
        let store = std::sync::Arc::new(crate::testing::memory::MemorySessionStore::default());
        store.fail_reads(Some(PortErrorKind::Transient));
        let report = dispatch_records(&dispatcher(store), &numbered(3)).await;
        assert_eq!(
            (report.dispatched, report.poison, report.first_failure),
            (0, 0, Some("1".to_string()))
        );
    }

    #[tokio::test]
    async fn a_permanent_dispatch_failure_is_poison_and_the_batch_goes_on() {
        for kind in [PortErrorKind::TooLarge, PortErrorKind::Other] {
            let store = std::sync::Arc::new(crate::testing::memory::MemorySessionStore::default());
            store.fail_reads(Some(kind));
            let mut records = numbered(3);
            records.insert(1, record("not json"));
            let report = dispatch_records(&dispatcher(store), &records).await;
            assert_eq!(
                (
                    report.dispatched,
                    report.skipped,
                    report.poison,
                    report.first_failure
                ),
                (0, 1, 3, None),
                "{kind:?}"
            );
        }
    }
}
