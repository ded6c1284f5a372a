//! Messages grouped per queue: several messages dispatched together (a Kinesis batch) resolve
//! each distinct target once and go out as ONE [`SendJob`] — so the entries for one queue share
//! SendMessageBatch calls (≤ 10 per call) instead of one call per message per queue.

use serde::Serialize;

use crate::dispatch::DeliveryCounts;
use crate::dispatch::Dispatcher;
use crate::dispatch::kinesis::{
    ParseOptions, StreamRecord, StreamReport, dead_letter_poison, dispatch_records,
    dispatch_records_after, parse_record,
};

/// What a grouped dispatch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupReport {
    /// The first message's id (a one-message dispatch's message id).
    pub message_id: String,
    /// Messages dispatched.
    pub messages: usize,
    /// Distinct targets.
    pub targets: usize,
    /// Of those, targets planned for segment workers (everyone, a large account): all their
    /// messages share one job per scope, so the table or index is read once for them all.
    pub segmented_targets: usize,
    /// Messages planned for segment workers.
    pub segmented_messages: usize,
    /// Deliveries (queue × message).
    pub deliveries: usize,
    /// Distinct queues.
    pub queues: usize,
    /// SendMessageBatch calls planned (by entry count; the 1 MiB cap may add a few).
    pub sqs_calls: usize,
    /// What happened to the deliveries.
    #[serde(flatten)]
    pub counts: DeliveryCounts,
    /// The queues sent to, when there are few.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_urls: Option<Vec<String>>,
    /// Scopes planned for segment workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<usize>,
    /// The table's approximate size when a broadcast was planned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_sessions: Option<u64>,
}

/// Dispatches a batch of records together ([`Dispatcher::dispatch_many`]); if that fails, falls
/// back to record-by-record dispatch, which finds the failing record and keeps the stream's
/// per-record semantics (messages already sent go again with the same ids; clients dedupe).
/// Malformed records are dead-lettered as the record first (once: the fallback skips them); if
/// that fails, the record-by-record path takes the batch, and stops at the record it cannot
/// dead-letter (one dead-lettered before it may then be dead-lettered twice).
pub async fn dispatch_records_grouped(
    dispatcher: &Dispatcher,
    records: &[StreamRecord],
) -> StreamReport {
    let mut items = Vec::with_capacity(records.len());
    let mut poison = Vec::new();
    let options = ParseOptions::of(dispatcher);
    for record in records {
        match parse_record(record, &options) {
            Ok(parsed) => items.push(parsed),
            Err(reason) => poison.push((record, reason)),
        }
    }
    if items.len() < 2 {
        return dispatch_records(dispatcher, records).await;
    }
    let dead_lettered = futures::future::try_join_all(
        poison
            .iter()
            .map(|(record, reason)| dead_letter_poison(dispatcher, record, reason)),
    )
    .await;
    if let Err(error) = dead_lettered {
        tracing::warn!(%error, "a poison record could not be dead-lettered; dispatching record by record");
        return dispatch_records(dispatcher, records).await;
    }
    let count = items.len();
    match dispatcher.dispatch_many(items).await {
        Ok(group) => StreamReport {
            dispatched: count,
            skipped: poison.len(),
            counts: group.counts,
            ..StreamReport::default()
        },
        Err(error) => {
            tracing::warn!(%error, "grouped dispatch failed; dispatching record by record");
            let done: Vec<&str> = poison
                .iter()
                .map(|(record, _)| record.sequence_number.as_str())
                .collect();
            dispatch_records_after(dispatcher, records, &done).await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use std::collections::BTreeSet;

    use super::*;
    use crate::dispatch::DispatchSettings;
    use crate::dispatch::Target;
    use crate::dispatch::send::SendJob;
    use crate::dispatch::send::Sender;
    use crate::history::write::HistoryWriter;
    use crate::model::ids::UserId;
    use crate::model::message::Message;
    use crate::model::message::MessageId;
    use crate::ports::AsyncFunction;
    use crate::testing::ManualClock;
    use crate::testing::memory::{
        MemoryHistory, MemoryQueues, MemorySessionStore, RecordingInvoker, seed_session,
    };

    const NOW: u64 = 1_000;

    fn message(id: &str) -> Message {
        let fields = serde_json::json!({"message": id});
        Message::new(fields.as_object().unwrap().clone(), || {
            MessageId::parse(id).unwrap()
        })
        .unwrap()
    }

    fn user(id: u64) -> UserId {
        UserId::try_from(id).unwrap()
    }

    #[tokio::test]
    async fn a_kinesis_batch_of_100_records_to_one_channel_reads_its_membership_once() {
        use crate::model::channel::ChannelName;
        use crate::ports::SessionStore;
        let store = Arc::new(MemorySessionStore::default());
        let queues = Arc::new(MemoryQueues::default());
        let history = Arc::new(MemoryHistory::default());
        let room = ChannelName::parse("room:7").unwrap();
        let member = seed_session(&store, &queues, 1, 1, "a", NOW + 60).await;
        let other_account = seed_session(&store, &queues, 2, 2, "a", NOW + 60).await;
        let bystander = seed_session(&store, &queues, 1, 3, "a", NOW + 60).await;
        for session in [&member, &other_account] {
            store
                .subscribe(session, std::slice::from_ref(&room), 100, NOW)
                .await
                .unwrap();
        }
        let dispatcher = Dispatcher::new(
            store.clone(),
            Sender::new(queues.clone(), 4),
            HistoryWriter::new(history.clone(), 86_400, 4),
            Arc::new(RecordingInvoker::default()),
            Arc::new(ManualClock::at(NOW)),
            DispatchSettings {
                direct_limit: 1_000,
                ..DispatchSettings::default()
            },
        );
        let records: Vec<StreamRecord> = (0..100)
            .map(|i| StreamRecord {
                sequence_number: i.to_string(),
                event_id: format!("shardId-000000000000:{i}"),
                data: format!(r#"{{"channel":"room:7","n":{i}}}"#).into_bytes(),
            })
            .collect();
        let report = dispatch_records_grouped(&dispatcher, &records).await;
        assert_eq!((report.dispatched, report.skipped), (100, 0));
        assert_eq!(store.channel_pages(), 1, "one read for the whole batch");
        for session in [&member, &other_account] {
            let got = queues.opened(&session.queue.url, &session.aes_key);
            assert_eq!(got.len(), 100);
            assert!(got.iter().all(|m| m["channel"] == "room:7"));
        }
        assert!(
            queues
                .opened(&bystander.queue.url, &bystander.aes_key)
                .is_empty()
        );
        assert!(
            history.is_empty(),
            "channel messages write no history unless asked"
        );
    }

    #[tokio::test]
    async fn several_messages_for_one_queue_share_send_message_batch_calls() {
        let store = Arc::new(MemorySessionStore::default());
        let queues = Arc::new(MemoryQueues::default());
        let history = Arc::new(MemoryHistory::default());
        let mut sessions = Vec::new();
        for (u, s) in [(1, "a"), (1, "b"), (2, "a")] {
            sessions.push(seed_session(&store, &queues, 9, u, s, NOW + 60).await);
        }
        let dispatcher = Dispatcher::new(
            store.clone(),
            Sender::new(queues.clone(), 4),
            HistoryWriter::new(history.clone(), 86_400, 4),
            Arc::new(RecordingInvoker::default()),
            Arc::new(ManualClock::at(NOW)),
            DispatchSettings::default(),
        );
        // 12 messages for user 1 (2 queues), 3 for user 2 (1 queue).
        let mut items: Vec<(Target, Message)> = (0..12)
            .map(|i| (Target::User(user(1)), message(&format!("u1-{i}"))))
            .collect();
        items.extend((0..3).map(|i| (Target::User(user(2)), message(&format!("u2-{i}")))));
        let before = queues.calls();
        let report = dispatcher.dispatch_many(items).await.unwrap();
        let calls = queues.calls() - before;
        assert_eq!(
            (
                report.messages,
                report.targets,
                report.deliveries,
                report.queues
            ),
            (15, 2, 27, 3)
        );
        // 12 entries = 2 calls per user-1 queue, 3 entries = 1 call for user 2: 5, not 27.
        assert_eq!((report.sqs_calls, calls), (5, 5));
        assert_eq!(report.counts.sent_directly, 27);
        for session in &sessions[..2] {
            let got = queues.opened(&session.queue.url, &session.aes_key);
            let ids: Vec<&str> = got
                .iter()
                .map(|m| m["messageId"].as_str().unwrap())
                .collect();
            assert_eq!(ids.len(), 12, "each message once: {ids:?}");
            assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 12);
        }
        assert_eq!(history.rows_of(user(1)).len(), 12);
        assert_eq!(history.rows_of(user(2)).len(), 3);
    }

    #[tokio::test]
    async fn a_large_grouped_fan_out_is_handed_off_with_only_the_messages_each_payload_uses() {
        let store = Arc::new(MemorySessionStore::default());
        let queues = Arc::new(MemoryQueues::default());
        for u in 0..20 {
            seed_session(&store, &queues, 9, u, "a", NOW + 60).await;
        }
        let invoker = Arc::new(RecordingInvoker::default());
        let dispatcher = Dispatcher::new(
            store,
            Sender::new(queues.clone(), 4),
            HistoryWriter::new(Arc::new(MemoryHistory::default()), 86_400, 4),
            invoker.clone(),
            Arc::new(ManualClock::at(NOW)),
            DispatchSettings {
                direct_limit: 2,
                sender_batch: 10,
                ..DispatchSettings::default()
            },
        );
        let items = (0..20)
            .flat_map(|u| {
                [
                    (Target::User(user(u)), message(&format!("x-{u}"))),
                    (Target::User(user(u)), message(&format!("y-{u}"))),
                ]
            })
            .collect();
        let report = dispatcher.dispatch_many(items).await.unwrap();
        assert_eq!(
            (
                report.deliveries,
                report.counts.sender_batches,
                report.sqs_calls
            ),
            (40, 4, 20)
        );
        let mut seen = BTreeSet::new();
        for payload in invoker.payloads(AsyncFunction::Sender) {
            let job: SendJob = serde_json::from_slice(&payload).unwrap();
            assert_eq!(
                job.messages.len(),
                10,
                "each delivery here has its own message: only the 10 used, not all 40"
            );
            for d in &job.deliveries {
                assert!(seen.insert((d.queue_url.clone(), job.messages[d.message].clone())));
            }
        }
        assert_eq!(seen.len(), 40);
    }

    #[tokio::test]
    async fn a_grouped_batch_dead_letters_each_malformed_record_as_the_record_once() {
        use crate::dispatch::kinesis::tests::poison_letters;
        use crate::dispatch::letter::About;
        let store = Arc::new(MemorySessionStore::default());
        let queues = Arc::new(MemoryQueues::default());
        seed_session(&store, &queues, 9, 1, "a", NOW + 60).await;
        let invoker = Arc::new(RecordingInvoker::default());
        let dispatcher = Dispatcher::new(
            store.clone(),
            Sender::new(queues.clone(), 4),
            HistoryWriter::new(Arc::new(MemoryHistory::default()), 86_400, 4),
            invoker.clone(),
            Arc::new(ManualClock::at(NOW)),
            DispatchSettings::default(),
        );
        // A poison record first, so the fallback below meets one before it stops.
        let data = [
            "not json",
            r#"{"userId":1,"message":"a"}"#,
            r#"{"userID":1,"message":"look-alike"}"#,
            r#"{"userId":1,"message":"b"}"#,
        ];
        let records: Vec<StreamRecord> = data
            .iter()
            .enumerate()
            .map(|(i, data)| StreamRecord {
                sequence_number: format!("{}", 100 + i),
                event_id: format!("shardId-000000000003:{}", 100 + i),
                data: data.as_bytes().to_vec(),
            })
            .collect();
        let report = dispatch_records_grouped(&dispatcher, &records).await;
        assert_eq!(
            (report.dispatched, report.skipped, report.first_failure),
            (2, 2, None)
        );
        let mut letters = poison_letters(&invoker);
        letters.sort_by_key(|letter| format!("{:?}", letter.about));
        let found: Vec<(String, String, Vec<u8>)> = letters
            .iter()
            .map(|letter| match &letter.about {
                About::Poison {
                    shard_id,
                    sequence_number,
                    reason,
                } => {
                    assert!(
                        !reason.contains("look-alike"),
                        "names, never values: {reason}"
                    );
                    (
                        shard_id.clone(),
                        sequence_number.clone(),
                        base64::Engine::decode(
                            &base64::engine::general_purpose::STANDARD,
                            &letter.text,
                        )
                        .unwrap(),
                    )
                }
                other => panic!("not poison: {other:?}"),
            })
            .collect();
        assert_eq!(
            found,
            vec![
                ("shardId-000000000003".into(), "100".into(), data[0].into()),
                ("shardId-000000000003".into(), "102".into(), data[2].into()),
            ]
        );

        // The grouped dispatch fails: the record-by-record fallback does not letter them again.
        let again = Arc::new(RecordingInvoker::default());
        store.fail_reads(Some(crate::ports::PortErrorKind::Transient));
        let dispatcher = Dispatcher::new(
            store.clone(),
            Sender::new(queues, 4),
            HistoryWriter::new(Arc::new(MemoryHistory::default()), 86_400, 4),
            again.clone(),
            Arc::new(ManualClock::at(NOW)),
            DispatchSettings::default(),
        );
        let report = dispatch_records_grouped(&dispatcher, &records).await;
        assert_eq!(
            (report.skipped, report.first_failure),
            (1, Some("101".to_string())),
            "record 100 skipped (lettered already), the batch stopped at 101"
        );
        assert_eq!(poison_letters(&again).len(), 2, "each once");
    }
}
