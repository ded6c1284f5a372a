//! Messages grouped per queue: several messages dispatched together (a Kinesis batch) resolve
//! each distinct target once and go out as ONE [`SendJob`] — so the entries for one queue share
//! SendMessageBatch calls (≤ 10 per call) instead of one call per message per queue.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::dispatch::kinesis::{
    ParseOptions, StreamRecord, StreamReport, dispatch_records, parse_record,
};
use crate::dispatch::send::{Delivery, MAX_BATCH_ENTRIES, SendJob};
use crate::dispatch::{Dispatcher, Reach, Target, history_users};
use crate::history::write::HistoryJob;
use crate::model::message::Message;
use crate::ports::{AsyncFunction, HandOffLimits, PortError, PortErrorKind};

/// What a grouped dispatch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupReport {
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
    /// Deliveries sent from this process.
    pub sent_directly: usize,
    /// Direct sends that failed or were not attempted.
    pub failed: usize,
    /// `sender` invocations.
    pub sender_batches: usize,
    /// `history` invocations.
    pub history_batches: usize,
}

impl Dispatcher {
    /// Dispatches several messages together: each distinct target resolved once, one send job
    /// for all of them (deliveries of one queue side by side), history per message. Everyone
    /// and large accounts are planned for segment workers, all of a target's messages in one
    /// job per scope. Fails as a whole; the caller may retry message by message.
    pub async fn dispatch_many(
        &self,
        items: Vec<(Target, Message)>,
    ) -> Result<GroupReport, PortError> {
        let mut report = GroupReport {
            messages: items.len(),
            ..GroupReport::default()
        };
        // Distinct targets, in first-seen order, with the messages for each.
        let mut groups: Vec<(Target, Vec<Message>)> = Vec::new();
        for (target, mut message) in items {
            target.stamp(&mut message);
            match groups.iter_mut().find(|(known, _)| *known == target) {
                Some((_, messages)) => messages.push(message),
                None => groups.push((target, vec![message])),
            }
        }
        report.targets = groups.len();
        let now = self.clock.now();
        let reached =
            futures::future::try_join_all(groups.iter().map(|(target, _)| self.reach(target)))
                .await?;
        let mut job = SendJob::default();
        let mut histories = Vec::new();
        for ((target, messages), reach) in groups.iter().zip(reached) {
            let sessions = match reach {
                Reach::Sessions(sessions) => sessions,
                Reach::Segmented {
                    scopes,
                    estimated_sessions,
                } => {
                    self.plan_segments(&scopes, estimated_sessions, messages)
                        .await?;
                    report.segmented_targets += 1;
                    report.segmented_messages += messages.len();
                    continue;
                }
            };
            let users = history_users(target, &sessions);
            for message in messages {
                let text = String::from_utf8(message.to_json()).expect("serde_json writes UTF-8");
                let index = job.messages.len();
                job.deliveries
                    .extend(sessions.iter().filter(|session| session.is_live(now)).map(
                        |session| Delivery {
                            queue_url: session.queue_url.clone(),
                            aes_key: session.aes_key.clone(),
                            message: index,
                        },
                    ));
                if !message.is_sqs_only() {
                    histories.push(HistoryJob {
                        message_id: message.id().to_string(),
                        message: text.clone(),
                        created: now,
                        user_ids: users.clone(),
                    });
                }
                job.messages.push(text);
            }
        }
        // A queue's deliveries side by side, so a cut between payloads splits few queues.
        job.deliveries.sort_by(|a, b| a.queue_url.cmp(&b.queue_url));
        let mut per_queue: BTreeMap<&str, usize> = BTreeMap::new();
        for delivery in &job.deliveries {
            *per_queue.entry(delivery.queue_url.as_str()).or_default() += 1;
        }
        report.deliveries = job.deliveries.len();
        report.queues = per_queue.len();
        report.sqs_calls = per_queue
            .values()
            .map(|n| n.div_ceil(MAX_BATCH_ENTRIES))
            .sum();
        drop(per_queue);

        if job.deliveries.len() <= self.settings.direct_limit {
            let sent = self.sender.send(&job, None).await;
            report.sent_directly = sent.sent;
            report.failed = sent.failed + sent.unsent;
        } else {
            report.sender_batches = self.hand_off_grouped(job).await?;
        }
        for history in histories {
            report.history_batches += self.write_history(history).await?;
        }
        tracing::info!(
            messages = report.messages,
            targets = report.targets,
            segmented_targets = report.segmented_targets,
            segmented_messages = report.segmented_messages,
            deliveries = report.deliveries,
            queues = report.queues,
            sqs_calls = report.sqs_calls,
            sent_directly = report.sent_directly,
            sender_batches = report.sender_batches,
            history_batches = report.history_batches,
            "dispatched together"
        );
        Ok(report)
    }

    /// Hands a grouped job to `sender` in payloads that each carry only the messages they use.
    async fn hand_off_grouped(&self, job: SendJob) -> Result<usize, PortError> {
        let messages_bytes: usize = job.messages.iter().map(|m| m.len() + 3).sum();
        // Every payload may carry every message: what is left of the limit is for deliveries.
        let room = self.settings.payload_limit.saturating_sub(messages_bytes);
        if room < self.settings.payload_limit / 4 {
            return Err(PortError::new(
                PortErrorKind::TooLarge,
                "grouped hand-off",
                AsyncFunction::Sender.name(),
                format!("{messages_bytes} bytes of messages leave too little room per payload"),
            ));
        }
        let messages = job.messages;
        self.invoker
            .hand_off(
                AsyncFunction::Sender,
                job.deliveries,
                HandOffLimits {
                    max_items: self.settings.sender_batch,
                    max_bytes: room,
                },
                |deliveries: Vec<Delivery>| {
                    let used: BTreeSet<usize> = deliveries.iter().map(|d| d.message).collect();
                    let renumber: BTreeMap<usize, usize> = used
                        .iter()
                        .enumerate()
                        .map(|(new, old)| (*old, new))
                        .collect();
                    SendJob {
                        messages: used.iter().map(|i| messages[*i].clone()).collect(),
                        deliveries: deliveries
                            .into_iter()
                            .map(|d| Delivery {
                                message: renumber[&d.message],
                                ..d
                            })
                            .collect(),
                        attempt: 0,
                    }
                },
            )
            .await
    }
}

/// Dispatches a batch of records together ([`Dispatcher::dispatch_many`]); if that fails, falls
/// back to record-by-record dispatch, which finds the failing record and keeps the stream's
/// per-record semantics (messages already sent go again with the same ids; clients dedupe).
pub async fn dispatch_records_grouped(
    dispatcher: &Dispatcher,
    records: &[StreamRecord],
) -> StreamReport {
    let mut items = Vec::with_capacity(records.len());
    let mut skipped = 0;
    let options = ParseOptions::of(dispatcher);
    for record in records {
        match parse_record(record, &options) {
            Ok(parsed) => items.push(parsed),
            Err(_) => skipped += 1,
        }
    }
    if items.len() < 2 {
        return dispatch_records(dispatcher, records).await;
    }
    let count = items.len();
    match dispatcher.dispatch_many(items).await {
        Ok(_) => {
            if skipped > 0 {
                tracing::warn!(skipped, "skipping malformed records");
            }
            StreamReport {
                dispatched: count,
                skipped,
                ..StreamReport::default()
            }
        }
        Err(error) => {
            tracing::warn!(%error, "grouped dispatch failed; dispatching record by record");
            dispatch_records(dispatcher, records).await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::dispatch::DispatchSettings;
    use crate::dispatch::send::Sender;
    use crate::history::write::HistoryWriter;
    use crate::model::ids::UserId;
    use crate::model::message::MessageId;
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
        assert_eq!(report.sent_directly, 27);
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
            (report.deliveries, report.sender_batches, report.sqs_calls),
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
}
