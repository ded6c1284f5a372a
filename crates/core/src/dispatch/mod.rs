//! Dispatch: resolve a target to its sessions, apply the delivery rules, and send — directly for
//! small fan-outs, through batches handed to the `sender` and `history` functions for large ones.
//! Also: sealing and sending ([`send`]) and Kinesis records ([`kinesis`]).

pub mod grouping;
pub mod kinesis;
pub mod segment;
pub mod send;
mod settings;
mod target;

pub use target::{Target, TargetError, TargetFields};

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::clock::Clock;
use crate::history::HistoryTask;
use crate::history::receipts::UserNotifier;
use crate::history::write::{HistoryJob, HistoryReport, HistoryWriter};
use crate::model::ids::UserId;
use crate::model::message::{Message, SizeLimits};
use crate::model::recipient::Recipient;
use crate::ports::{AsyncFunction, HandOffLimits, Invoker, PortError, PortErrorKind, SessionStore};
use segment::Scope;
use send::{Delivery, SendJob, SendReport, Sender};

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

/// What one dispatch did, as `/notify` answers it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DispatchReport {
    /// The message id, for history and dedupe.
    pub message_id: String,
    /// Sessions the target matched.
    pub sessions_matched: usize,
    /// Sessions skipped because their ttl had passed (they can no longer be renewed).
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

    /// The settings it was wired with.
    pub fn settings(&self) -> &DispatchSettings {
        &self.settings
    }

    /// How far a target reaches: its sessions, live or not, when they are few enough to read
    /// here; the scopes segment workers read, for everyone and for a large account.
    pub(crate) async fn reach(&self, target: &Target) -> Result<Reach, PortError> {
        let sessions = match target {
            Target::Everyone => {
                let (scopes, estimated_sessions) = self.broadcast_scopes().await;
                return Ok(Reach::Segmented {
                    scopes,
                    estimated_sessions,
                });
            }
            Target::Account(account_id) => {
                // One page one row past the threshold tells a large account from a small one.
                let page = self
                    .store
                    .account_page(*account_id, None, self.settings.large_account + 1)
                    .await?;
                if page.next.is_some() {
                    return Ok(Reach::Segmented {
                        scopes: vec![Scope::Account {
                            account_id: *account_id,
                        }],
                        estimated_sessions: None,
                    });
                }
                page.recipients
            }
            Target::AccountSession(account_id, session_id) => {
                // The index has no session key: read the account page by page, keep the matches.
                let mut matches = Vec::new();
                let mut start = None;
                loop {
                    let page = self
                        .store
                        .account_page(*account_id, start.as_ref(), self.settings.scan_page)
                        .await?;
                    matches.extend(
                        page.recipients
                            .into_iter()
                            .filter(|recipient| recipient.session_id == *session_id),
                    );
                    match page.next {
                        Some(next) => start = Some(next),
                        None => break matches,
                    }
                }
            }
            Target::Session(user_id, session_id) => self
                .store
                .get(*user_id, session_id)
                .await?
                .iter()
                .map(Recipient::from)
                .collect(),
            Target::SessionInAccount(account_id, user_id, session_id) => self
                .store
                .get(*user_id, session_id)
                .await?
                .iter()
                .filter(|session| session.account_id == *account_id)
                .map(Recipient::from)
                .collect(),
            Target::User(user_id) => self.store.recipients_of_user(*user_id).await?,
            Target::UserInAccount(account_id, user_id) => {
                let mut sessions = self.store.recipients_of_user(*user_id).await?;
                sessions.retain(|session| session.account_id == *account_id);
                sessions
            }
        };
        Ok(Reach::Sessions(sessions))
    }

    /// Stamps the target onto the message and delivers it: SQS to sessions within their ttl
    /// (credentials may have lapsed; `/renew` reads the backlog), history to their users (and
    /// to a named user with no live session) unless the message is SQS-only. Everyone and a
    /// large account are planned for segment workers and answered as `accepted`. Fails only
    /// when work could not be handed off; a retry then repeats the same message id, which
    /// clients dedupe.
    pub async fn dispatch(
        &self,
        target: &Target,
        mut message: Message,
    ) -> Result<DispatchReport, PortError> {
        target.stamp(&mut message);
        message
            .check_sizes(&self.settings.limits)
            .map_err(|error| {
                PortError::new(
                    PortErrorKind::TooLarge,
                    "dispatch",
                    message.id().as_str(),
                    error.to_string(),
                )
            })?;
        let sessions = match self.reach(target).await? {
            Reach::Sessions(sessions) => sessions,
            Reach::Segmented {
                scopes,
                estimated_sessions,
            } => {
                return self
                    .plan_segments(&scopes, estimated_sessions, &[message])
                    .await;
            }
        };
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
            // Within its ttl a session can still be renewed, and renew-after-sleep reads what
            // was sent while its credentials had lapsed.
            .filter(|session| session.is_live(now))
            .map(|session| Delivery {
                queue_url: session.queue_url.clone(),
                aes_key: session.aes_key.clone(),
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
                attempt: 0,
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

    /// Hands deliveries to `sender` in payloads cut by count and serialized size; returns how
    /// many payloads.
    async fn hand_off_sends(
        &self,
        text: &str,
        deliveries: Vec<Delivery>,
    ) -> Result<usize, PortError> {
        let limits = HandOffLimits {
            max_items: self.settings.sender_batch,
            max_bytes: self.settings.payload_limit,
        };
        self.invoker
            .hand_off(AsyncFunction::Sender, deliveries, limits, |deliveries| {
                SendJob {
                    messages: vec![text.to_string()],
                    deliveries,
                    attempt: 0,
                }
            })
            .await
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
        let limits = HandOffLimits {
            max_items: self.settings.history_batch,
            max_bytes: self.settings.payload_limit,
        };
        let HistoryJob {
            message_id,
            message,
            created,
            user_ids,
        } = job;
        self.invoker
            .hand_off(AsyncFunction::History, user_ids, limits, |user_ids| {
                HistoryTask::Write(HistoryJob {
                    message_id: message_id.clone(),
                    message: message.clone(),
                    created,
                    user_ids,
                })
            })
            .await
    }
}

#[async_trait]
impl UserNotifier for Dispatcher {
    async fn notify_user(&self, user_id: UserId, message: Message) -> Result<(), PortError> {
        self.dispatch(&Target::User(user_id), message)
            .await
            .map(|_| ())
    }
}

fn record_direct(report: &mut DispatchReport, sent: SendReport) {
    report.sent_directly = sent.sent;
    report.queues_gone = sent.queues_gone;
    report.failed = sent.failed + sent.unsent;
}

/// What a target resolves to.
pub(crate) enum Reach {
    /// Its sessions, read here.
    Sessions(Vec<Recipient>),
    /// Scopes for segment workers: everyone, or an account too large to read here.
    Segmented {
        scopes: Vec<Scope>,
        estimated_sessions: Option<u64>,
    },
}

/// Users whose history gets the message: the named user, or every user the sessions belong to.
pub(crate) fn history_users(target: &Target, sessions: &[Recipient]) -> Vec<UserId> {
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
    use crate::model::ids::AccountId;
    use crate::model::message::MessageId;
    use crate::model::session::Session;
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
                report.sessions_matched,
                report.sent_directly,
                report.skipped_expired
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
                &Target::Account(AccountId::try_from(1).unwrap()),
                message(serde_json::json!({"message": "all"})),
            )
            .await
            .unwrap();
        assert_eq!(report.sent_directly, 0);
        assert_eq!(report.sender_batches, 4, "10 deliveries in batches of 3");
        assert_eq!(report.history_batches, 3, "5 users in batches of 2");
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
