//! Events from the Kinesis stream: each record is a JSON object whose `accountId`, `userId` and
//! `sessionId` pick the target (none of them: everyone, only with `"_broadcast": true` or
//! `SQS_PUSH_IMPLICIT_BROADCAST`). Records are handled in
//! sequence order; a record that can never be dispatched as written (not JSON, bad ids, no or
//! an ambiguous target, too large) is poison: put in the dead-letter queue as the record
//! (shard, sequence number, reason, data — [`dead_letter_poison`]), counted and skipped, never
//! blocking the shard; any other failure — the dead-lettering of a poison record included —
//! stops the batch at that record so the stream retries it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;

use crate::dispatch::DeliveryCounts;
use crate::dispatch::letter::{About, Letter};
use crate::dispatch::{Dispatcher, Target, widening_field};
use crate::model::message::{BROADCAST_FIELD, Fields, Message, MessageId, SizeLimits, parse_flag};
use crate::ports::{AsyncFunction, PortError, PortErrorKind};

/// A stream record as the dispatcher needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// Its sequence number, reported back when it has to be retried.
    pub sequence_number: String,
    /// The event id (`shardId-…:sequence`), which the message id is derived from.
    pub event_id: String,
    /// The record's data.
    pub data: Vec<u8>,
}

impl StreamRecord {
    /// The shard it was read from: the event id's part before the `:`.
    pub fn shard_id(&self) -> &str {
        match self.event_id.split_once(':') {
            Some((shard, _)) if shard.starts_with("shardId-") => shard,
            _ => "unknown",
        }
    }
}

impl std::fmt::Debug for StreamRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRecord")
            .field("sequence_number", &self.sequence_number)
            .field("event_id", &self.event_id)
            .field("data_bytes", &self.data.len())
            .finish()
    }
}

/// Puts a record that can never be dispatched as written in the dead-letter queue as the
/// record — its shard, sequence number, `reason` (field names, never values) and data
/// (base64) — as a letter of `dispatcher` that `sqs-push redrive` lists. Returns how many
/// dead-letter records it took (a record up to Kinesis's 1 MiB spans several).
pub async fn dead_letter_poison(
    dispatcher: &Dispatcher,
    record: &StreamRecord,
    reason: &str,
) -> Result<usize, PortError> {
    let letter = Letter::new(
        About::Poison {
            shard_id: record.shard_id().to_string(),
            sequence_number: record.sequence_number.clone(),
            reason: reason.to_string(),
        },
        STANDARD.encode(&record.data),
        Vec::new(),
    );
    let records = letter
        .post(
            dispatcher.invoker.as_ref(),
            AsyncFunction::Dispatcher,
            "poison Kinesis record",
        )
        .await?;
    tracing::error!(
        shard_id = record.shard_id(),
        sequence_number = %record.sequence_number,
        %reason,
        letter = %letter.id,
        records,
        "poison record dead-lettered; sqs-push redrive lists it"
    );
    Ok(records)
}

/// What a batch of records did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamReport {
    /// Records dispatched.
    pub dispatched: usize,
    /// Malformed records skipped, each dead-lettered as the record.
    pub skipped: usize,
    /// Records skipped because they can never be dispatched as written: accepted by the parser
    /// but too large for any hand-off. Dead-lettered as the record, like the malformed ones.
    pub poison: usize,
    /// The sequence number of the first record whose dispatch failed for any other reason —
    /// throttling, 5xx, but also access denied, a missing table or index, a validation error
    /// of our own request (an index being replaced): the cause is the stack's, not the record's,
    /// so it and every later record are retried until an operator fixes it (the iterator-age
    /// alarm shows the stream backing up), never skipped. Lambda reads it as
    /// `batchItemFailures`, so it is not serialized here.
    #[serde(skip)]
    pub first_failure: Option<String>,
    /// What the dispatched records' deliveries did, added up.
    #[serde(flatten)]
    pub counts: DeliveryCounts,
}

/// How records are read: whether a record without target fields goes to everyone, and the size
/// limits a message must fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseOptions {
    /// `SQS_PUSH_IMPLICIT_BROADCAST`: no target field means everyone even without `_broadcast`.
    pub implicit_broadcast: bool,
    /// Limits checked before anything is sent.
    pub limits: SizeLimits,
}

impl ParseOptions {
    /// The options a dispatcher was wired with.
    pub fn of(dispatcher: &Dispatcher) -> Self {
        Self {
            implicit_broadcast: dispatcher.settings().implicit_broadcast,
            limits: dispatcher.settings().limits,
        }
    }
}

/// The names of a record's fields for a log line: names only, never values, cut short.
fn field_names(fields: &Fields) -> String {
    let mut names: Vec<String> = fields
        .keys()
        .take(20)
        .map(|name| name.chars().take(64).collect::<String>())
        .collect();
    if fields.len() > 20 {
        names.push(format!("… {} more", fields.len() - 20));
    }
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// Parses one record into a target and a message with a message id stable across retries.
///
/// A record names its target with `accountId`/`userId`/`sessionId` ([`Target::from_fields`]);
/// one without them is meant for everyone only with `"_broadcast": true` (stripped before
/// delivery) or when [`ParseOptions::implicit_broadcast`] is set. Errors name fields, never
/// values, so they can be logged.
pub fn parse_record(
    record: &StreamRecord,
    options: &ParseOptions,
) -> Result<(Target, Message), String> {
    let value: Value =
        serde_json::from_slice(&record.data).map_err(|error| format!("not JSON: {error}"))?;
    let Value::Object(mut fields) = value else {
        return Err("not a JSON object".to_string());
    };
    let broadcast = match fields.remove(BROADCAST_FIELD) {
        Some(value) => parse_flag(BROADCAST_FIELD, &value).map_err(|e| e.to_string())?,
        None => false,
    };
    let named = Target::from_fields(&fields).map_err(|error| error.to_string())?;
    let target = match (named, broadcast) {
        (Some(_), true) => {
            return Err(format!(
                "{BROADCAST_FIELD} is true but the record names a target too; send one or the other"
            ));
        }
        (Some(target), false) => target,
        (None, true) => Target::Everyone,
        (None, false) if options.implicit_broadcast => {
            // Implicitly for everyone: a field that looks like a target must not widen it.
            widening_field(&fields).map_err(|error| error.to_string())?;
            Target::Everyone
        }
        (None, false) => {
            return Err(format!(
                "no target field (accountId, userId, sessionId) and no \"{BROADCAST_FIELD}\": true; \
                 fields present: {}",
                field_names(&fields)
            ));
        }
    };
    let mut message = Message::new(fields, || MessageId::derived_from(&record.event_id))
        .map_err(|error| error.to_string())?;
    target.stamp(&mut message);
    message
        .check_sizes(&options.limits)
        .map_err(|error| error.to_string())?;
    Ok((target, message))
}

/// Dispatches records in order; stops at the first failure that is not the record's own so the
/// stream retries from there. A poison record is dead-lettered as the record before it is
/// skipped; when that fails, the batch stops at it too.
pub async fn dispatch_records(dispatcher: &Dispatcher, records: &[StreamRecord]) -> StreamReport {
    dispatch_records_after(dispatcher, records, &[]).await
}

/// [`dispatch_records`] for a batch whose malformed records at `dead_lettered` (sequence
/// numbers) were dead-lettered already: they are skipped without a second letter.
pub(crate) async fn dispatch_records_after(
    dispatcher: &Dispatcher,
    records: &[StreamRecord],
    dead_lettered: &[&str],
) -> StreamReport {
    let mut report = StreamReport::default();
    for record in records {
        let (target, message) = match parse_record(record, &ParseOptions::of(dispatcher)) {
            Ok(parsed) => parsed,
            Err(reason) => {
                let done = dead_lettered.contains(&record.sequence_number.as_str());
                if !done && !skip_poison(dispatcher, record, &reason, &mut report).await {
                    break;
                }
                report.skipped += 1;
                continue;
            }
        };
        match dispatcher.dispatch(&target, message).await {
            Ok(dispatched) => {
                report.dispatched += 1;
                report.counts.add(&dispatched.counts);
            }
            Err(error) if error.kind == PortErrorKind::TooLarge => {
                if !skip_poison(dispatcher, record, &error.to_string(), &mut report).await {
                    break;
                }
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

/// Dead-letters a poison record; false (the batch stops at it, so the stream retries it) when
/// that failed: a poison record is never only a log line.
pub(crate) async fn skip_poison(
    dispatcher: &Dispatcher,
    record: &StreamRecord,
    reason: &str,
    report: &mut StreamReport,
) -> bool {
    match dead_letter_poison(dispatcher, record, reason).await {
        Ok(_) => true,
        Err(error) => {
            tracing::error!(sequence_number = %record.sequence_number, %error, "a poison record could not be dead-lettered; the stream will retry");
            report.first_failure = Some(record.sequence_number.clone());
            false
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::ids::{AccountId, SessionId, UserId};

    fn record(data: &str) -> StreamRecord {
        StreamRecord {
            sequence_number: "1".into(),
            event_id: "shardId-000000000000:1".into(),
            data: data.as_bytes().to_vec(),
        }
    }

    fn target(data: &str) -> Result<Target, String> {
        parse_record(&record(data), &ParseOptions::default()).map(|(target, _)| target)
    }

    #[test]
    fn ids_in_the_record_pick_the_target() {
        let user = UserId::try_from(200).unwrap();
        let account = AccountId::try_from(100).unwrap();
        assert_eq!(target(r#"{"accountId":100}"#), Ok(Target::Account(account)));
        assert_eq!(
            target(r#"{"accountId":100,"userId":200}"#),
            Ok(Target::UserInAccount(account, user))
        );
        assert_eq!(target(r#"{"userId":"200"}"#), Ok(Target::User(user)));
        assert_eq!(
            target(r#"{"userId":200,"sessionId":"s"}"#),
            Ok(Target::Session(user, SessionId::parse("s").unwrap()))
        );
        assert_eq!(
            target(r#"{"accountId":"100","sessionId":"s"}"#),
            Ok(Target::AccountSession(
                account,
                SessionId::parse("s").unwrap()
            ))
        );
    }

    #[test]
    fn a_record_without_target_is_poison_unless_marked_or_configured() {
        let error = target(r#"{"message":"x","kind":"reset"}"#).unwrap_err();
        assert!(error.contains("no target field"), "{error}");
        assert!(error.contains("kind, message"), "names the fields: {error}");
        assert!(!error.contains("reset"), "never a value: {error}");
        assert_eq!(
            target(r#"{"message":"x","_broadcast":true}"#),
            Ok(Target::Everyone)
        );
        assert_eq!(
            target(r#"{"message":"x","_broadcast":"1"}"#),
            Ok(Target::Everyone)
        );
        let implicit = ParseOptions {
            implicit_broadcast: true,
            ..ParseOptions::default()
        };
        let (target, _) = parse_record(&record(r#"{"message":"x"}"#), &implicit).unwrap();
        assert_eq!(target, Target::Everyone);
        // A look-alike target field never widens an implicit broadcast; `_broadcast` says it.
        let error = parse_record(&record(r#"{"message":"x","userIds":[1]}"#), &implicit)
            .map(|(target, _)| target)
            .unwrap_err();
        assert!(error.contains("\"userIds\""), "{error}");
        let (target, _) = parse_record(
            &record(r#"{"message":"x","userIds":[1],"_broadcast":true}"#),
            &implicit,
        )
        .unwrap();
        assert_eq!(target, Target::Everyone);
    }

    #[test]
    fn the_broadcast_marker_is_stripped_and_never_combines_with_a_target() {
        let (_, message) = parse_record(
            &record(r#"{"message":"x","_broadcast":true}"#),
            &ParseOptions::default(),
        )
        .unwrap();
        assert!(!message.fields().contains_key("_broadcast"));
        let error = target(r#"{"userId":1,"_broadcast":true}"#).unwrap_err();
        assert!(error.contains("_broadcast"), "{error}");
        let error = target(r#"{"message":"x","_broadcast":"yes"}"#).unwrap_err();
        assert!(error.contains("_broadcast"), "{error}");
        // `false` is no marker: still poison.
        assert!(target(r#"{"message":"x","_broadcast":false}"#).is_err());
    }

    #[test]
    fn malformed_records_say_why() {
        for (data, why) in [
            ("not json", "not JSON"),
            ("[1,2]", "not a JSON object"),
            (r#"{"userId":true}"#, "invalid userId"),
            (r#"{"userId":1.5}"#, "invalid userId"),
            (r#"{"accountId":-1}"#, "invalid accountId"),
            (r#"{"accountId":"abc","userId":1}"#, "invalid accountId"),
            (r#"{"userId":9007199254740992}"#, "invalid userId"),
            (r#"{"sessionId":"s"}"#, "ambiguous"),
            (r#"{"userID":200,"message":"reset password"}"#, "userId"),
            (r#"{"session_id":"s","userId":1}"#, "sessionId"),
            (r#"{"accountid":1}"#, "accountId"),
            (r#"{"userId":1,"sessionId":".."}"#, "invalid sessionId"),
            (r#"{"userId":1,"_sqs_only":"no"}"#, "_sqs_only"),
        ] {
            let error = target(data).unwrap_err();
            assert!(error.contains(why), "{data}: {error}");
            assert!(!error.contains("reset password"), "{data}: {error}");
        }
    }

    #[test]
    fn a_record_too_large_to_seal_is_poison_naming_the_limit() {
        let data = format!(
            r#"{{"userId":1,"_sqs_only":1,"m":"{}"}}"#,
            "x".repeat(800_000)
        );
        let error = target(&data).unwrap_err();
        assert!(error.contains("MaximumMessageSize"), "{error}");
        let data = format!(r#"{{"userId":1,"m":"{}"}}"#, "x".repeat(420_000));
        let error = target(&data).unwrap_err();
        assert!(error.contains("DynamoDB"), "{error}");
    }

    #[test]
    fn big_integers_survive_parsing() {
        let (_, message) = parse_record(
            &record(r#"{"userId":1,"n":123456789012345678901234567890}"#),
            &ParseOptions::default(),
        )
        .unwrap();
        let text = String::from_utf8(message.to_json()).unwrap();
        assert!(text.contains("123456789012345678901234567890"), "{text}");
    }

    #[test]
    fn the_message_id_is_derived_from_the_event_id_unless_given() {
        let options = ParseOptions::default();
        let (_, message) =
            parse_record(&record(r#"{"message":"x","_broadcast":true}"#), &options).unwrap();
        assert_eq!(
            message.id(),
            &MessageId::derived_from("shardId-000000000000:1")
        );
        let (_, message) =
            parse_record(&record(r#"{"messageId":"mine","userId":1}"#), &options).unwrap();
        assert_eq!(message.id().as_str(), "mine");
    }

    fn dispatcher(store: std::sync::Arc<crate::testing::memory::MemorySessionStore>) -> Dispatcher {
        with_invoker(store, Default::default())
    }

    fn with_invoker(
        store: std::sync::Arc<crate::testing::memory::MemorySessionStore>,
        invoker: std::sync::Arc<crate::testing::memory::RecordingInvoker>,
    ) -> Dispatcher {
        use crate::testing::memory::{MemoryHistory, MemoryQueues};
        use std::sync::Arc;
        Dispatcher::new(
            store,
            crate::dispatch::send::Sender::new(Arc::new(MemoryQueues::default()), 4),
            crate::history::write::HistoryWriter::new(Arc::new(MemoryHistory::default()), 60, 1),
            invoker,
            Arc::new(crate::testing::ManualClock::at(1_000)),
            crate::dispatch::DispatchSettings::default(),
        )
    }

    /// The poison letters dead-lettered for `dispatcher`, one part each here.
    pub(crate) fn poison_letters(
        invoker: &crate::testing::memory::RecordingInvoker,
    ) -> Vec<crate::dispatch::letter::Letter> {
        invoker
            .dead_letters(AsyncFunction::Dispatcher)
            .iter()
            .map(|(payload, _)| {
                let part: crate::dispatch::letter::LetterPart =
                    serde_json::from_slice(payload).unwrap();
                crate::dispatch::letter::join(vec![part]).unwrap()
            })
            .collect()
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
    async fn a_record_too_large_for_any_hand_off_is_poison_and_the_batch_goes_on() {
        let store = std::sync::Arc::new(crate::testing::memory::MemorySessionStore::default());
        store.fail_reads(Some(PortErrorKind::TooLarge));
        let invoker = std::sync::Arc::new(crate::testing::memory::RecordingInvoker::default());
        let mut records = numbered(3);
        records.insert(1, record("not json"));
        let report = dispatch_records(&with_invoker(store, invoker.clone()), &records).await;
        assert_eq!(
            (
                report.dispatched,
                report.skipped,
                report.poison,
                report.first_failure
            ),
            (0, 1, 3, None)
        );
        // Each is in the dead-letter queue as the record: shard, sequence number, reason, data.
        let letters = poison_letters(&invoker);
        assert_eq!(letters.len(), 4);
        for (letter, record) in letters.iter().zip(&records) {
            let About::Poison {
                shard_id,
                sequence_number,
                reason,
            } = &letter.about
            else {
                panic!("a poison letter: {letter:?}");
            };
            assert_eq!(
                (shard_id.as_str(), sequence_number),
                ("shardId-000000000000", &record.sequence_number)
            );
            assert!(!reason.is_empty());
            assert_eq!(STANDARD.decode(&letter.text).unwrap(), record.data);
        }
    }

    #[tokio::test]
    async fn a_poison_record_that_cannot_be_dead_lettered_stops_the_batch_there() {
        let store = std::sync::Arc::new(crate::testing::memory::MemorySessionStore::default());
        let invoker = std::sync::Arc::new(crate::testing::memory::RecordingInvoker::default());
        invoker.refuse_dead_letters(true);
        let mut records = numbered(3);
        records[1] = StreamRecord {
            data: b"not json".to_vec(),
            ..records[1].clone()
        };
        let report = dispatch_records(&with_invoker(store, invoker), &records).await;
        assert_eq!(
            (report.dispatched, report.skipped, report.first_failure),
            (1, 0, Some("2".to_string())),
            "retried from the poison record, not skipped as a log line"
        );
    }

    #[tokio::test]
    async fn an_aws_error_that_is_not_the_records_stops_the_batch_instead_of_skipping_it() {
        // AccessDenied during an IAM change, a missing index, a validation error while an index
        // is replaced: the stream must back up until the cause is fixed, not skip records.
        for kind in [
            PortErrorKind::Other,
            PortErrorKind::NotFound,
            PortErrorKind::ConditionFailed,
        ] {
            let store = std::sync::Arc::new(crate::testing::memory::MemorySessionStore::default());
            store.fail_reads(Some(kind));
            let mut records = numbered(3);
            records.insert(0, record("not json"));
            let report = dispatch_records(&dispatcher(store), &records).await;
            assert_eq!(
                (
                    report.dispatched,
                    report.skipped,
                    report.poison,
                    report.first_failure
                ),
                (0, 1, 0, Some("1".to_string())),
                "{kind:?}"
            );
        }
    }
}
