//! Notify: resolve a target to its sessions, encrypt the message for each, send it directly.
//!
//! This is the direct path: every matched queue is sent to from this process, with bounded
//! concurrency. Large fan-outs hand batches to other functions (the dispatch module).

use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;

use crate::clock::Clock;
use crate::crypto::{SealedMessage, SessionCipher};
use crate::error::PortError;
use crate::ids::{AccountId, SessionId, UserId};
use crate::message::Message;
use crate::ports::{QueueService, SessionStore};
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
}

/// What one notify did, as `/notify` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyReport {
    /// The message id, for history and dedupe.
    pub message_id: String,
    /// Sessions the target matched.
    pub sessions_matched: usize,
    /// Queues the message was sent to from this process.
    pub sent_directly: usize,
    /// Sessions skipped because their credentials had expired.
    pub skipped_expired: usize,
    /// Queues that no longer existed: sessions that ended.
    pub queues_gone: usize,
    /// Sends that failed otherwise.
    pub failed: usize,
}

/// Sends messages to the sessions a target names.
#[derive(Clone)]
pub struct Notifier {
    store: Arc<dyn SessionStore>,
    queues: Arc<dyn QueueService>,
    clock: Arc<dyn Clock>,
    concurrency: usize,
}

impl Notifier {
    /// `concurrency` bounds the SQS calls in flight at once.
    pub fn new(
        store: Arc<dyn SessionStore>,
        queues: Arc<dyn QueueService>,
        clock: Arc<dyn Clock>,
        concurrency: usize,
    ) -> Self {
        Self {
            store,
            queues,
            clock,
            concurrency: concurrency.max(1),
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

    /// Stamps the target onto the message, then sends it to every session whose credentials
    /// still work.
    pub async fn notify(
        &self,
        target: &Target,
        mut message: Message,
    ) -> Result<NotifyReport, PortError> {
        target.stamp(&mut message);
        let sessions = self.resolve(target).await?;
        let now = self.clock.now();
        let plaintext = message.to_json();
        let mut report = NotifyReport {
            message_id: message.id().to_string(),
            sessions_matched: sessions.len(),
            ..NotifyReport::default()
        };
        // Sealed up front and owned, so the send futures borrow nothing and stay Send.
        let deliveries: Vec<(String, SealedMessage)> = sessions
            .iter()
            .filter(|session| session.can_receive(now))
            .map(|session| {
                let sealed = SessionCipher::new(&session.aes_key).seal(&plaintext);
                (session.queue.url.clone(), sealed)
            })
            .collect();
        report.skipped_expired = sessions.len() - deliveries.len();

        let outcomes: Vec<Result<(), PortError>> = futures::stream::iter(deliveries)
            .map(|(queue_url, sealed)| {
                let queues = self.queues.clone();
                async move { queues.send(&queue_url, &sealed).await }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for outcome in outcomes {
            match outcome {
                Ok(()) => report.sent_directly += 1,
                Err(error) if error.is_not_found() => report.queues_gone += 1,
                Err(error) => {
                    tracing::warn!(%error, message_id = %report.message_id, "send failed");
                    report.failed += 1;
                }
            }
        }
        tracing::info!(
            message_id = %report.message_id,
            matched = report.sessions_matched,
            sent = report.sent_directly,
            expired = report.skipped_expired,
            gone = report.queues_gone,
            failed = report.failed,
            "notified"
        );
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::crypto::SessionKey;
    use crate::memory::{MemoryQueues, MemorySessionStore};
    use crate::message::MessageId;
    use crate::ports::{QueueService, QueueSpec};
    use crate::session::{Credentials, QueueRef};

    async fn session(
        store: &MemorySessionStore,
        queues: &MemoryQueues,
        account: u64,
        user: u64,
        id: &str,
        expires: u64,
    ) -> Session {
        let queue: QueueRef = queues
            .create_queue(&QueueSpec {
                name: format!("q-{user}-{id}"),
                owner_identity_id: "i".into(),
                retention_seconds: None,
            })
            .await
            .unwrap();
        let session = Session {
            account_id: AccountId::try_from(account).unwrap(),
            user_id: UserId::try_from(user).unwrap(),
            session_id: SessionId::parse(id).unwrap(),
            queue,
            identity_id: "i".into(),
            aes_key: SessionKey::generate(),
            credentials: Credentials {
                access_key: "a".into(),
                secret_key: "s".into(),
                session_token: "t".into(),
                expires,
            },
            ttl: expires + 3600,
            created: 0,
        };
        store.put(&session).await.unwrap();
        session
    }

    fn hello() -> Message {
        let fields = serde_json::json!({"message": "Hello User"});
        Message::new(fields.as_object().unwrap().clone(), || {
            MessageId::parse("m-1").unwrap()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_user_notification_reaches_each_live_session_of_that_user_only() {
        let store = Arc::new(MemorySessionStore::default());
        let queues = Arc::new(MemoryQueues::default());
        let now = 1000;
        let first = session(&store, &queues, 100, 200, "a", now + 60).await;
        let second = session(&store, &queues, 100, 200, "b", now + 60).await;
        let expired = session(&store, &queues, 100, 200, "c", now - 1).await;
        let stranger = session(&store, &queues, 100, 201, "a", now + 60).await;
        let notifier = Notifier::new(store, queues.clone(), Arc::new(ManualClock::at(now)), 4);

        let user = UserId::try_from(200).unwrap();
        let report = notifier.notify(&Target::User(user), hello()).await.unwrap();

        assert_eq!(report.sessions_matched, 3);
        assert_eq!(report.sent_directly, 2);
        assert_eq!(report.skipped_expired, 1);
        for receiver in [&first, &second] {
            let queue = queues.queue(&receiver.queue.url).unwrap();
            assert_eq!(queue.messages.len(), 1);
            let sealed = &queue.messages[0];
            let plaintext = SessionCipher::new(&receiver.aes_key)
                .open(&sealed.body, Some(&sealed.mac))
                .unwrap();
            let value: Value = serde_json::from_slice(&plaintext).unwrap();
            assert_eq!(
                value,
                serde_json::json!({"message": "Hello User", "messageId": "m-1", "userId": 200})
            );
        }
        for silent in [&expired, &stranger] {
            assert!(queues.queue(&silent.queue.url).unwrap().messages.is_empty());
        }
    }

    #[tokio::test]
    async fn a_vanished_queue_counts_as_a_session_that_ended() {
        let store = Arc::new(MemorySessionStore::default());
        let queues = Arc::new(MemoryQueues::default());
        let gone = session(&store, &queues, 1, 2, "a", 2000).await;
        queues.delete_queue(&gone.queue.url).await.unwrap();
        let notifier = Notifier::new(store, queues, Arc::new(ManualClock::at(1000)), 4);
        let report = notifier
            .notify(&Target::User(UserId::try_from(2).unwrap()), hello())
            .await
            .unwrap();
        assert_eq!(
            (report.queues_gone, report.failed, report.sent_directly),
            (1, 0, 0)
        );
    }
}
