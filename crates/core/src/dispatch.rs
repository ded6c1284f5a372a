//! Dispatch: resolve a target to its sessions, apply the delivery rules, and send — directly for
//! small fan-outs, through batches handed to the `sender` and `history` functions for large ones.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::batch::cut;
use crate::clock::Clock;
use crate::error::PortError;
use crate::history::{HistoryJob, HistoryReport, HistoryWriter};
use crate::ids::{AccountId, SessionId, UserId};
use crate::message::Message;
use crate::ports::{AsyncFunction, Invoker, SessionStore};
use crate::send::{Delivery, SendJob, SendReport, Sender};
use crate::session::Session;

/// Who a message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One session of one user.
    Session(UserId, SessionId),
    /// Every session of a user.
    User(UserId),
    /// Every session of every user of an account.
    Account(AccountId),
    /// Every session.
    Everyone,
}

impl Target {
    /// Writes the fields that tell the browser who the message was for, as the original
    /// stack did: `userId` for a user, `accountId` for an account, both ids for a session.
    pub fn stamp(&self, message: &mut Message) {
        match self {
            Target::Session(user_id, session_id) => {
                message.set("userId", Value::from(user_id.get()));
                message.set("sessionId", Value::from(session_id.as_str()));
            }
            Target::User(user_id) => message.set("userId", Value::from(user_id.get())),
            Target::Account(account_id) => message.set("accountId", Value::from(account_id.get())),
            Target::Everyone => {}
        }
    }

    /// The user a target names, if it names one: their history gets the message even when they
    /// have no live session.
    fn named_user(&self) -> Option<UserId> {
        match self {
            Target::Session(user_id, _) | Target::User(user_id) => Some(*user_id),
            Target::Account(_) | Target::Everyone => None,
        }
    }
}

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
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            direct_limit: 50,
            sender_batch: 2_000,
            history_batch: 5_000,
            payload_limit: 1_048_576,
            report_urls_up_to: 50,
        }
    }
}

/// What one dispatch did, as `/notify` answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchReport {
    /// The message id, for history and dedupe.
    pub message_id: String,
    /// Sessions the target matched.
    pub sessions_matched: usize,
    /// Sessions skipped because their credentials had expired.
    pub skipped_expired: usize,
    /// Queues sent to from this process.
    pub sent_directly: usize,
    /// Queues that no longer existed (sessions that ended), on the direct path.
    pub queues_gone: usize,
    /// Direct sends that failed.
    pub failed: usize,
    /// Batches handed to the `sender` function.
    pub sender_batches: usize,
    /// Users whose history got the message.
    pub history_users: usize,
    /// Batches handed to the `history` function.
    pub history_batches: usize,
    /// The queues sent to, for small fan-outs only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_urls: Option<Vec<String>>,
}

/// Routes messages to sessions.
#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn SessionStore>,
    sender: Sender,
    history: HistoryWriter,
    invoker: Arc<dyn Invoker>,
    clock: Arc<dyn Clock>,
    settings: DispatchSettings,
}

impl Dispatcher {
    /// Wires the dispatcher.
    pub fn new(
        store: Arc<dyn SessionStore>,
        sender: Sender,
        history: HistoryWriter,
        invoker: Arc<dyn Invoker>,
        clock: Arc<dyn Clock>,
        settings: DispatchSettings,
    ) -> Self {
        Self {
            store,
            sender,
            history,
            invoker,
            clock,
            settings,
        }
    }

    /// The sessions a target names, live or not.
    pub async fn resolve(&self, target: &Target) -> Result<Vec<Session>, PortError> {
        match target {
            Target::Session(user_id, session_id) => Ok(self
                .store
                .get(*user_id, session_id)
                .await?
                .into_iter()
                .collect()),
            Target::User(user_id) => self.store.sessions_of_user(*user_id).await,
            Target::Account(account_id) => self.store.sessions_of_account(*account_id).await,
            Target::Everyone => self.store.all_sessions().await,
        }
    }

    /// Stamps the target onto the message and delivers it: SQS to sessions whose credentials
    /// still work, history to their users (and to a named user with no live session) unless
    /// the message is SQS-only. Fails only when work could not be handed off; a retry then
    /// repeats the same message id, which clients dedupe.
    pub async fn dispatch(
        &self,
        target: &Target,
        mut message: Message,
    ) -> Result<DispatchReport, PortError> {
        target.stamp(&mut message);
        let sessions = self.resolve(target).await?;
        let now = self.clock.now();
        let text = String::from_utf8(message.to_json()).expect("serde_json writes UTF-8");
        let mut report = DispatchReport {
            message_id: message.id().to_string(),
            sessions_matched: sessions.len(),
            ..DispatchReport::default()
        };

        let users = if message.is_sqs_only() {
            Vec::new()
        } else {
            history_users(target, &sessions)
        };
        let deliveries: Vec<Delivery> = sessions
            .iter()
            .filter(|session| session.can_receive(now))
            .map(|session| Delivery {
                queue_url: session.queue.url.clone(),
                aes_key: session.aes_key.to_base64(),
                message: 0,
            })
            .collect();
        report.skipped_expired = sessions.len() - deliveries.len();
        if deliveries.len() <= self.settings.report_urls_up_to {
            report.queue_urls = Some(deliveries.iter().map(|d| d.queue_url.clone()).collect());
        }

        let history = HistoryJob {
            message_id: report.message_id.clone(),
            message: text.clone(),
            created: now,
            user_ids: users,
        };
        report.history_users = history.user_ids.len();
        if deliveries.len() <= self.settings.direct_limit {
            let job = SendJob {
                messages: vec![text],
                deliveries,
            };
            let (sent, written) =
                futures::join!(self.sender.send(&job, None), self.write_history(history));
            report.history_batches = written?;
            record_direct(&mut report, sent);
        } else {
            report.sender_batches = self.hand_off_sends(&text, deliveries).await?;
            report.history_batches = self.write_history(history).await?;
        }
        tracing::info!(
            message_id = %report.message_id,
            matched = report.sessions_matched,
            expired = report.skipped_expired,
            direct = report.sent_directly,
            gone = report.queues_gone,
            failed = report.failed,
            sender_batches = report.sender_batches,
            history_users = report.history_users,
            history_batches = report.history_batches,
            "dispatched"
        );
        Ok(report)
    }

    /// Cuts deliveries into `sender` payloads by count and by bytes; returns how many.
    async fn hand_off_sends(
        &self,
        text: &str,
        deliveries: Vec<Delivery>,
    ) -> Result<usize, PortError> {
        // {"messages":["…"],"deliveries":[…]} — the message is escaped inside a JSON string, so
        // its serialized length is what counts.
        let overhead = serde_json::to_string(text)
            .map(|s| s.len())
            .unwrap_or(text.len() * 2)
            + 64;
        let batches = cut(
            deliveries,
            self.settings.sender_batch,
            self.settings.payload_limit,
            overhead,
            Delivery::serialized_len,
        );
        let count = batches.len();
        let payloads = batches.into_iter().map(|deliveries| SendJob {
            messages: vec![text.to_string()],
            deliveries,
        });
        let handed = payloads.map(|job| {
            let payload = serde_json::to_vec(&job).expect("a send job serializes");
            self.invoker.invoke_async(AsyncFunction::Sender, payload)
        });
        futures::future::try_join_all(handed).await?;
        Ok(count)
    }

    /// Writes history directly for few users, through `history` invocations for many; returns
    /// how many invocations were made.
    async fn write_history(&self, job: HistoryJob) -> Result<usize, PortError> {
        if job.user_ids.is_empty() {
            return Ok(0);
        }
        if job.user_ids.len() <= self.settings.direct_limit {
            let report: HistoryReport = self.history.write(&job).await;
            if report.failed > 0 {
                tracing::warn!(message_id = %job.message_id, failed = report.failed, "history rows not written");
            }
            return Ok(0);
        }
        let overhead = job.message.len() * 2 + job.message_id.len() + 128;
        let batches = cut(
            job.user_ids.iter().copied(),
            self.settings.history_batch,
            self.settings.payload_limit,
            overhead,
            |_| 17,
        );
        let count = batches.len();
        let handed = batches.into_iter().map(|user_ids| {
            let part = HistoryJob {
                user_ids,
                ..job.clone()
            };
            let payload = serde_json::to_vec(&part).expect("a history job serializes");
            self.invoker.invoke_async(AsyncFunction::History, payload)
        });
        futures::future::try_join_all(handed).await?;
        Ok(count)
    }
}

fn record_direct(report: &mut DispatchReport, sent: SendReport) {
    report.sent_directly = sent.sent;
    report.queues_gone = sent.queues_gone;
    report.failed = sent.failed + sent.unsent;
}

/// Users whose history gets the message: the named user, or every user the sessions belong to.
fn history_users(target: &Target, sessions: &[Session]) -> Vec<UserId> {
    match target.named_user() {
        Some(user_id) => vec![user_id],
        None => sessions
            .iter()
            .map(|session| session.user_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::memory::{
        MemoryHistory, MemoryQueues, MemorySessionStore, RecordingInvoker, seed_session,
    };
    use crate::message::MessageId;

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

    #[tokio::test]
    async fn a_user_message_reaches_live_sessions_and_history_but_not_expired_ones() {
        let f = fixture(50);
        let live = session(&f, 100, 200, "a", NOW + 60).await;
        let expired = session(&f, 100, 200, "b", NOW - 1).await;
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
                report.sessions_matched,
                report.sent_directly,
                report.skipped_expired
            ),
            (2, 1, 1)
        );
        assert_eq!(
            received(&f, &live),
            vec![serde_json::json!({"message": "Hello User", "messageId": "m-1", "userId": 200})]
        );
        assert!(received(&f, &expired).is_empty() && received(&f, &stranger).is_empty());
        assert_eq!(f.history.rows_of(user(200)).len(), 1);
        assert!(f.history.rows_of(user(201)).is_empty());
        assert_eq!(report.queue_urls, Some(vec![live.queue.url.clone()]));
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
        assert_eq!(report.sent_directly, 1);
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
        assert_eq!((report.sent_directly, report.history_users), (3, 2));
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
                &Target::Everyone,
                message(serde_json::json!({"message": "all"})),
            )
            .await
            .unwrap();
        assert_eq!(report.sent_directly, 0);
        assert_eq!(report.sender_batches, 4, "10 deliveries in batches of 3");
        assert_eq!(report.history_batches, 3, "5 users in batches of 2");
        assert_eq!(
            report.queue_urls,
            Some(
                (0..5)
                    .flat_map(
                        |u| ["a", "b"].map(|s| format!("memory://queues/000000000000/q-{u}-{s}"))
                    )
                    .collect()
            )
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
    async fn sender_payloads_stay_under_the_byte_limit() {
        let mut f = fixture(0);
        f.dispatcher.settings.payload_limit = 1_000;
        f.dispatcher.settings.sender_batch = 1_000;
        for user_id in 0..40 {
            session(&f, 1, user_id, "a", NOW + 60).await;
        }
        f.dispatcher
            .dispatch(
                &Target::Everyone,
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
