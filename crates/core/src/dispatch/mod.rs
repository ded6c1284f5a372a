//! Dispatch: resolve a target to its sessions, apply the delivery rules, and send — directly for
//! small fan-outs, through batches handed to the `sender` and `history` functions for large ones.
//! Also: sealing and sending ([`send`]) and Kinesis records ([`kinesis`]).

mod dispatcher;
pub mod grouping;
pub mod kinesis;
pub mod letter;
pub mod segment;
pub mod send;
mod settings;
mod target;

pub use dispatcher::Dispatcher;
pub use target::{Target, TargetError, TargetFields, widening_field};

use serde::Serialize;

use crate::model::message::SizeLimits;
use grouping::GroupReport;

/// Limits that decide how a fan-out is cut; read once from config.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Up to this many queues are sent to from the dispatching process itself.
    pub direct_limit: usize,
    /// At most this many deliveries per `sender` invocation.
    pub sender_batch: usize,
    /// At most this many users per `history` invocation.
    pub history_batch: usize,
    /// The async-invoke payload limit in bytes (1 MiB on Lambda since late 2025, 256 KiB before).
    pub payload_limit: usize,
    /// Queue URLs are listed in the report only for fan-outs up to this size.
    pub report_urls_up_to: usize,
    /// Scan segments a broadcast is cut into (raised for a large table; see [`segment`]).
    pub broadcast_segments: usize,
    /// Rows per scan page of a segment worker (DynamoDB also cuts a page at 1 MB).
    pub scan_page: usize,
    /// An account with more sessions than this goes the segmented path (segment workers read
    /// its index page by page) instead of being read whole by the process that accepted it.
    pub large_account: usize,
    /// A Kinesis record without target fields goes to everyone even without `"_broadcast":
    /// true` (`SQS_PUSH_IMPLICIT_BROADCAST`, the original stack's behaviour; off by default).
    pub implicit_broadcast: bool,
    /// Limits every message must fit before anything is sent.
    pub limits: SizeLimits,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            direct_limit: 50,
            sender_batch: 2_000,
            history_batch: 5_000,
            payload_limit: 1_048_576,
            report_urls_up_to: 50,
            broadcast_segments: 4,
            scan_page: 2_000,
            large_account: 2_000,
            implicit_broadcast: false,
            limits: SizeLimits::default(),
        }
    }
}

/// What a dispatch did with its deliveries: one message's (`/notify`), a group's (a Kinesis
/// batch) or a whole batch's, added up. The one set of counts every report and metric reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryCounts {
    /// Sessions the targets matched (read here, not by segment workers).
    pub sessions_matched: usize,
    /// Of those, sessions skipped because their ttl had passed (they can no longer be renewed).
    pub skipped_expired: usize,
    /// Deliveries sent from this process.
    pub sent_directly: usize,
    /// Deliveries for queues that no longer exist (sessions that ended), on the direct path.
    pub queues_gone: usize,
    /// Direct sends that failed here or were not attempted (then handed on or dead-lettered,
    /// never dropped).
    pub failed: usize,
    /// Of those, deliveries handed on to a fresh `sender` invocation to try again.
    #[serde(skip_serializing_if = "is_zero")]
    pub handed_on: usize,
    /// Of those, deliveries SQS refused for good, put in the dead-letter queue for
    /// `sqs-push redrive`.
    #[serde(skip_serializing_if = "is_zero")]
    pub dead_lettered: usize,
    /// `sender` invocations the rest went to.
    pub sender_batches: usize,
    /// History rows to write (users × messages).
    pub history_users: usize,
    /// `history` invocations.
    pub history_batches: usize,
    /// History rows that failed here and were handed to the `history` function.
    #[serde(skip_serializing_if = "is_zero")]
    pub history_handed_on: usize,
}

impl DeliveryCounts {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &DeliveryCounts) {
        self.sessions_matched += other.sessions_matched;
        self.skipped_expired += other.skipped_expired;
        self.sent_directly += other.sent_directly;
        self.queues_gone += other.queues_gone;
        self.failed += other.failed;
        self.handed_on += other.handed_on;
        self.dead_lettered += other.dead_lettered;
        self.sender_batches += other.sender_batches;
        self.history_users += other.history_users;
        self.history_batches += other.history_batches;
        self.history_handed_on += other.history_handed_on;
    }
}

/// What one dispatch did, as `/notify` answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchReport {
    /// The message id, for history and dedupe.
    pub message_id: String,
    /// What happened to its deliveries.
    #[serde(flatten)]
    pub counts: DeliveryCounts,
    /// The queues sent to, for small fan-outs only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_urls: Option<Vec<String>>,
    /// Set when the message was accepted for segmented fan-out (a broadcast) rather than sent.
    #[serde(skip)]
    pub accepted: bool,
    /// The broadcast's scan segments, one `dispatcher` invocation each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<usize>,
    /// The table's approximate size when the broadcast was planned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_sessions: Option<u64>,
}

fn is_zero(count: &usize) -> bool {
    *count == 0
}

impl DispatchReport {
    /// The report of a one-message dispatch, from its group report.
    pub(crate) fn of_one(group: GroupReport) -> Self {
        Self {
            message_id: group.message_id,
            counts: group.counts,
            queue_urls: group.queue_urls,
            accepted: group.segmented_messages > 0,
            segments: group.segments,
            estimated_sessions: group.estimated_sessions,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::*;
    use crate::dispatch::letter;
    use crate::dispatch::send::{SendJob, Sender};
    use crate::history::write::{HistoryJob, HistoryWriter};
    use crate::model::ids::AccountId;
    use crate::model::ids::UserId;
    use crate::model::message::Message;
    use crate::model::message::MessageId;
    use crate::model::session::Session;
    use crate::ports::{AsyncFunction, PortErrorKind, SessionStore};
    use crate::testing::ManualClock;
    use crate::testing::memory::{
        MemoryHistory, MemoryQueues, MemorySessionStore, RecordingInvoker, seed_session,
    };
    use serde_json::Value;

    struct Fixture {
        store: Arc<MemorySessionStore>,
        queues: Arc<MemoryQueues>,
        history: Arc<MemoryHistory>,
        invoker: Arc<RecordingInvoker>,
        dispatcher: Dispatcher,
    }

    const NOW: u64 = 1_000;

    fn fixture(direct_limit: usize) -> Fixture {
        let store = Arc::new(MemorySessionStore::default());
        let queues = Arc::new(MemoryQueues::default());
        let history = Arc::new(MemoryHistory::default());
        let invoker = Arc::new(RecordingInvoker::default());
        let dispatcher = Dispatcher::new(
            store.clone(),
            Sender::new(queues.clone(), 8),
            HistoryWriter::new(history.clone(), 86_400, 4),
            invoker.clone(),
            Arc::new(ManualClock::at(NOW)),
            DispatchSettings {
                direct_limit,
                sender_batch: 3,
                history_batch: 2,
                ..DispatchSettings::default()
            },
        );
        Fixture {
            store,
            queues,
            history,
            invoker,
            dispatcher,
        }
    }

    async fn session(f: &Fixture, account: u64, user: u64, id: &str, expires: u64) -> Session {
        seed_session(&f.store, &f.queues, account, user, id, expires).await
    }

    fn message(fields: Value) -> Message {
        Message::new(fields.as_object().unwrap().clone(), || {
            MessageId::parse("m-1").unwrap()
        })
        .unwrap()
    }

    fn received(f: &Fixture, session: &Session) -> Vec<Value> {
        f.queues.opened(&session.queue.url, &session.aes_key)
    }

    fn user(id: u64) -> UserId {
        UserId::try_from(id).unwrap()
    }

    /// `{"message": "x"}` dispatched to one user.
    async fn notify_user(f: &Fixture, id: u64) -> DispatchReport {
        f.dispatcher
            .dispatch(
                &Target::User(user(id)),
                message(serde_json::json!({"message": "x"})),
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_user_message_reaches_live_sessions_and_history_but_not_expired_ones() {
        let f = fixture(50);
        let live = session(&f, 100, 200, "a", NOW + 60).await;
        // Credentials and ttl both passed: the session cannot be renewed.
        let mut expired = session(&f, 100, 200, "b", NOW - 10).await;
        expired.ttl = NOW - 1;
        f.store.put(&expired).await.unwrap();
        // Credentials lapsed but within its ttl: renew would read the backlog, so it gets it.
        let lapsed = session(&f, 100, 200, "c", NOW - 1).await;
        let stranger = session(&f, 100, 201, "a", NOW + 60).await;
        let report = f
            .dispatcher
            .dispatch(
                &Target::User(user(200)),
                message(serde_json::json!({"message": "Hello User"})),
            )
            .await
            .unwrap();
        assert_eq!(
            (
                report.counts.sessions_matched,
                report.counts.sent_directly,
                report.counts.skipped_expired
            ),
            (3, 2, 1)
        );
        assert_eq!(
            received(&f, &live),
            vec![serde_json::json!({"message": "Hello User", "messageId": "m-1", "userId": 200})]
        );
        assert_eq!(received(&f, &lapsed), received(&f, &live));
        assert!(received(&f, &expired).is_empty() && received(&f, &stranger).is_empty());
        assert_eq!(f.history.rows_of(user(200)).len(), 1);
        assert!(f.history.rows_of(user(201)).is_empty());
        assert_eq!(
            report.queue_urls,
            Some(vec![live.queue.url.clone(), lapsed.queue.url.clone()])
        );
    }

    #[tokio::test]
    async fn a_channel_message_reaches_live_members_only_and_writes_history_only_when_asked() {
        use crate::model::channel::ChannelName;
        let f = fixture(50);
        let room = ChannelName::parse("room").unwrap();
        let member = session(&f, 1, 200, "a", NOW + 60).await;
        let other_account = session(&f, 2, 300, "a", NOW + 60).await;
        let bystander = session(&f, 1, 201, "a", NOW + 60).await;
        let mut ended = session(&f, 1, 202, "a", NOW + 60).await;
        for s in [&member, &other_account, &ended] {
            f.store
                .subscribe(s, std::slice::from_ref(&room), 100, NOW)
                .await
                .unwrap();
        }
        // Past its ttl: its membership waits for cleanup but is no subscriber.
        ended.ttl = NOW - 1;
        f.store.put(&ended).await.unwrap();
        f.store
            .refresh_memberships(&{
                let mut with_channel = ended.clone();
                with_channel.channels.insert(room.clone());
                with_channel
            })
            .await
            .unwrap();
        let target = Target::Channel(room.clone());
        let report = f
            .dispatcher
            .dispatch(&target, message(serde_json::json!({"message": "tick"})))
            .await
            .unwrap();
        assert_eq!(
            (report.counts.sessions_matched, report.counts.sent_directly),
            (2, 2)
        );
        for s in [&member, &other_account] {
            assert_eq!(
                received(&f, s),
                vec![serde_json::json!({"message": "tick", "channel": "room", "messageId": "m-1"})]
            );
        }
        assert!(received(&f, &bystander).is_empty() && received(&f, &ended).is_empty());
        assert!(f.history.is_empty(), "no history unless asked");
        f.dispatcher
            .dispatch(
                &target,
                message(serde_json::json!({"message": "kept", "_history": "1"})),
            )
            .await
            .unwrap();
        assert_eq!(
            (
                f.history.rows_of(user(200)).len(),
                f.history.rows_of(user(300)).len(),
                f.history.rows_of(user(202)).len()
            ),
            (1, 1, 0),
            "one row per live member's user"
        );
    }

    #[tokio::test]
    async fn a_user_without_sessions_still_gets_history_and_sqs_only_skips_it() {
        let f = fixture(50);
        f.dispatcher
            .dispatch(
                &Target::User(user(7)),
                message(serde_json::json!({"message": "x"})),
            )
            .await
            .unwrap();
        assert_eq!(f.history.rows_of(user(7)).len(), 1);
        let f = fixture(50);
        session(&f, 1, 7, "a", NOW + 60).await;
        let report = f
            .dispatcher
            .dispatch(
                &Target::User(user(7)),
                message(serde_json::json!({"_sqs_only": 1})),
            )
            .await
            .unwrap();
        assert_eq!(report.counts.sent_directly, 1);
        assert!(f.history.is_empty());
    }

    #[tokio::test]
    async fn an_account_message_writes_one_history_row_per_user() {
        let f = fixture(50);
        for (user_id, id) in [(1, "a"), (1, "b"), (2, "a")] {
            session(&f, 9, user_id, id, NOW + 60).await;
        }
        session(&f, 8, 3, "a", NOW + 60).await;
        let report = f
            .dispatcher
            .dispatch(
                &Target::Account(AccountId::try_from(9).unwrap()),
                message(serde_json::json!({})),
            )
            .await
            .unwrap();
        assert_eq!(
            (report.counts.sent_directly, report.counts.history_users),
            (3, 2)
        );
        assert_eq!(f.history.len(), 2);
    }

    #[tokio::test]
    async fn a_large_fan_out_is_handed_to_sender_and_history_in_batches() {
        let f = fixture(2);
        for user_id in 0..5 {
            session(&f, 1, user_id, "a", NOW + 60).await;
            session(&f, 1, user_id, "b", NOW + 60).await;
        }
        let report = f
            .dispatcher
            .dispatch(
                &Target::Account(AccountId::try_from(1).unwrap()),
                message(serde_json::json!({"message": "all"})),
            )
            .await
            .unwrap();
        assert_eq!(report.counts.sent_directly, 0);
        assert_eq!(
            report.counts.sender_batches, 4,
            "10 deliveries in batches of 3"
        );
        assert_eq!(report.counts.history_batches, 3, "5 users in batches of 2");
        let mut reported = report.queue_urls.unwrap();
        reported.sort();
        assert_eq!(
            reported,
            (0..5)
                .flat_map(|u| ["a", "b"].map(|s| format!("memory://queues/000000000000/q-{u}-{s}")))
                .collect::<Vec<_>>()
        );
        let jobs: Vec<SendJob> = f
            .invoker
            .payloads(AsyncFunction::Sender)
            .iter()
            .map(|payload| serde_json::from_slice(payload).unwrap())
            .collect();
        let queues: BTreeSet<String> = jobs
            .iter()
            .flat_map(|j| j.deliveries.iter().map(|d| d.queue_url.clone()))
            .collect();
        assert_eq!(queues.len(), 10, "every queue exactly once");
        let users: Vec<UserId> = f
            .invoker
            .payloads(AsyncFunction::History)
            .iter()
            .flat_map(|payload| {
                serde_json::from_slice::<HistoryJob>(payload)
                    .unwrap()
                    .user_ids
            })
            .collect();
        assert_eq!(users, (0..5).map(user).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn direct_sends_that_still_fail_are_handed_on_to_sender_not_dropped() {
        let f = fixture(50);
        let sessions = [
            session(&f, 1, 7, "a", NOW + 60).await,
            session(&f, 1, 7, "b", NOW + 60).await,
        ];
        f.queues.fail_sends(Some(PortErrorKind::Transient));
        let report = notify_user(&f, 7).await;
        assert_eq!(
            (
                report.counts.sent_directly,
                report.counts.failed,
                report.counts.handed_on
            ),
            (0, 2, 2)
        );
        let jobs: Vec<SendJob> = f
            .invoker
            .payloads(AsyncFunction::Sender)
            .iter()
            .map(|payload| serde_json::from_slice(payload).unwrap())
            .collect();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].attempt, 1, "one attempt further on");
        let mut handed: Vec<&str> = jobs[0]
            .deliveries
            .iter()
            .map(|d| d.queue_url.as_str())
            .collect();
        handed.sort_unstable();
        assert_eq!(
            handed,
            sessions
                .iter()
                .map(|s| s.queue.url.as_str())
                .collect::<Vec<_>>()
        );
        // The handed-on job delivers once SQS recovers.
        f.queues.fail_sends(None);
        let sent = f.dispatcher.sender.send(&jobs[0], None).await;
        assert_eq!(sent.sent, 2);
        for session in &sessions {
            assert_eq!(received(&f, session).len(), 1);
        }
        assert!(f.invoker.dead_letters(AsyncFunction::Sender).is_empty());
    }

    /// The letters dead-lettered for `sender`, joined from their parts.
    fn letters(f: &Fixture) -> Vec<letter::Letter> {
        let mut parts: Vec<letter::LetterPart> = f
            .invoker
            .dead_letters(AsyncFunction::Sender)
            .iter()
            .map(|(payload, _)| serde_json::from_slice(payload).unwrap())
            .collect();
        let mut letters = Vec::new();
        while let Some(first) = parts.first() {
            let id = first.letter.clone();
            let (mine, rest) = parts.into_iter().partition(|part| part.letter == id);
            parts = rest;
            letters.push(letter::join(mine).unwrap());
        }
        letters
    }

    #[tokio::test]
    async fn deliveries_sqs_refuses_for_good_are_dead_lettered_naming_sessions_not_keys() {
        let f = fixture(50);
        let refused = [
            session(&f, 1, 7, "a", NOW + 60).await,
            session(&f, 1, 7, "b", NOW + 60).await,
            session(&f, 1, 7, "c", NOW + 60).await,
        ];
        // Not transient: what SQS answers for a message above the queue's MaximumMessageSize.
        f.queues.fail_sends(Some(PortErrorKind::Other));
        let report = notify_user(&f, 7).await;
        assert_eq!(
            (report.counts.dead_lettered, report.counts.handed_on),
            (3, 0)
        );
        assert!(f.invoker.payloads(AsyncFunction::Sender).is_empty());
        for (payload, reason) in f.invoker.dead_letters(AsyncFunction::Sender) {
            let text = String::from_utf8(payload).unwrap() + &reason;
            for session in &refused {
                assert!(
                    !text.contains(&session.aes_key.to_base64()),
                    "a dead letter carries no key: {text}"
                );
            }
        }
        let letters = letters(&f);
        assert_eq!(letters.len(), 1, "one letter: the message once");
        assert_eq!(letters[0].deliveries.len(), 3);
        assert!(matches!(
            &letters[0].about,
            letter::About::Undelivered { message_id, attempt: 0 } if message_id == "m-1"
        ));

        // Meanwhile one session ended and another was replaced by a new queue.
        f.store
            .delete(refused[1].user_id, &refused[1].session_id)
            .await
            .unwrap();
        let mut replaced = refused[2].clone();
        replaced.queue.url = "memory://queues/000000000000/a-newer-queue".into();
        f.store.put(&replaced).await.unwrap();
        let resolved = letters[0]
            .resolve(f.store.as_ref(), NOW)
            .await
            .unwrap()
            .unwrap();
        let gone: Vec<&str> = resolved
            .gone
            .iter()
            .map(|reference| reference.queue_url.as_str())
            .collect();
        assert_eq!(
            gone,
            vec![refused[1].queue.url.as_str(), refused[2].queue.url.as_str()]
        );
        // Replayed once the cause is fixed, it reaches the session still there, once.
        f.queues.fail_sends(None);
        assert_eq!(f.dispatcher.sender.send(&resolved.job, None).await.sent, 1);
        assert_eq!(received(&f, &refused[0]).len(), 1);
    }

    // Paused time: the last hand-on's 16 s wait passes at once.
    #[tokio::test(start_paused = true)]
    async fn deliveries_still_failing_after_the_last_hand_on_are_dead_lettered() {
        let f = fixture(50);
        let s = session(&f, 1, 7, "a", NOW + 60).await;
        f.queues.fail_sends(Some(PortErrorKind::Transient));
        let job = SendJob {
            messages: vec!["{}".into()],
            deliveries: vec![send::Delivery::to(
                &crate::model::recipient::Recipient::from(&s),
                0,
            )],
            attempt: send::MAX_HAND_ONS,
        };
        let outcome = f
            .dispatcher
            .sender
            .send_or_hand_on(&job, None, f.invoker.as_ref(), 1_048_576)
            .await
            .unwrap();
        assert_eq!((outcome.handed_on, outcome.dead_lettered), (0, 1));
        let letters = letters(&f);
        let resolved = letters[0]
            .resolve(f.store.as_ref(), NOW)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            resolved.job.attempt,
            send::MAX_HAND_ONS,
            "as far as it got: a failing replay is dead-lettered again, not handed on"
        );
    }

    #[tokio::test]
    async fn a_refused_job_of_large_messages_is_dead_lettered_whole_in_parts_within_the_record_limit()
     {
        let f = fixture(50);
        let sessions = [
            session(&f, 1, 7, "a", NOW + 60).await,
            session(&f, 1, 7, "b", NOW + 60).await,
        ];
        f.queues.fail_sends(Some(PortErrorKind::Other));
        // Two messages as large as the queues accept, quotes included (escaping doubles them).
        let texts: Vec<String> = ["a", "b"]
            .iter()
            .map(|id| {
                let mut text = serde_json::json!({"m": "\"".repeat(390_000)}).to_string();
                text.insert_str(1, &format!("\"messageId\":\"{id}\","));
                text
            })
            .collect();
        let job = SendJob {
            messages: texts.clone(),
            deliveries: sessions
                .iter()
                .flat_map(|s| {
                    (0..2).map(move |m| {
                        send::Delivery::to(&crate::model::recipient::Recipient::from(s), m)
                    })
                })
                .collect(),
            attempt: 0,
        };
        let outcome = f
            .dispatcher
            .sender
            .send_or_hand_on(&job, None, f.invoker.as_ref(), 1_048_576)
            .await
            .unwrap();
        assert_eq!(outcome.dead_lettered, 4);
        for (payload, _) in f.invoker.dead_letters(AsyncFunction::Sender) {
            assert!(payload.len() <= crate::ports::DEAD_LETTER_BYTES);
        }
        let mut letters = letters(&f);
        letters.sort_by_key(|letter| letter.text.clone());
        assert_eq!(
            letters.iter().map(|l| l.text.clone()).collect::<Vec<_>>(),
            texts,
            "each message once, whole"
        );
        assert!(letters.iter().all(|letter| letter.deliveries.len() == 2));
    }

    #[tokio::test]
    async fn direct_history_rows_that_still_fail_are_handed_to_the_history_function() {
        let f = fixture(50);
        f.history.fail_writes(true);
        let report = notify_user(&f, 9).await;
        assert_eq!(report.counts.history_handed_on, 1);
        let tasks = f.invoker.payloads(AsyncFunction::History);
        assert_eq!(tasks.len(), 1);
        let task: crate::history::HistoryTask = serde_json::from_slice(&tasks[0]).unwrap();
        let crate::history::HistoryTask::Write(job) = task else {
            panic!("a write task");
        };
        assert_eq!(job.user_ids, vec![user(9)]);
        f.history.fail_writes(false);
        f.dispatcher.history.write(&job).await;
        assert_eq!(f.history.rows_of(user(9)).len(), 1);
    }

    // Paused time: 50 ms per history write is exact.
    #[tokio::test(start_paused = true)]
    async fn a_batch_of_forty_messages_writes_its_history_jobs_at_once_not_one_after_another() {
        let f = fixture(50);
        f.history.set_latency(std::time::Duration::from_millis(50));
        let items: Vec<(Target, Message)> = (0..40)
            .map(|u| {
                let fields = serde_json::json!({"message": "x"});
                let message = Message::new(fields.as_object().unwrap().clone(), || {
                    MessageId::parse(&format!("m-{u}")).unwrap()
                })
                .unwrap();
                (Target::User(user(u)), message)
            })
            .collect();
        let started = tokio::time::Instant::now();
        let report = f.dispatcher.dispatch_many(items).await.unwrap();
        let took = started.elapsed();
        assert_eq!(report.counts.history_users, 40);
        assert_eq!(f.history.len(), 40);
        // One after another: 40 × 50 ms = 2 s. Sixteen at once: three rounds.
        assert!(took < std::time::Duration::from_millis(400), "{took:?}");
    }

    #[tokio::test]
    async fn sender_payloads_stay_under_the_byte_limit() {
        let mut f = fixture(0);
        f.dispatcher.settings.payload_limit = 1_000;
        f.dispatcher.settings.sender_batch = 1_000;
        for user_id in 0..40 {
            session(&f, 1, user_id, "a", NOW + 60).await;
        }
        f.dispatcher
            .dispatch(
                &Target::Account(AccountId::try_from(1).unwrap()),
                message(serde_json::json!({"message": "x".repeat(200)})),
            )
            .await
            .unwrap();
        let payloads = f.invoker.payloads(AsyncFunction::Sender);
        assert!(payloads.len() > 1);
        for payload in &payloads {
            assert!(payload.len() <= 1_000, "payload of {} bytes", payload.len());
        }
    }
}
