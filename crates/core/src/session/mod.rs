//! The session lifecycle: create (a queue, an identity with credentials for it, and a key),
//! renew, status, list and destroy.

pub mod policy;
pub mod queue_name;

use std::sync::Arc;

use crate::clock::Clock;
use crate::crypto::SessionKey;
use crate::model::ids::{AccountId, IdError, SessionId, UserId};
use crate::model::session::{QueueRef, Session, SessionSummary};
use crate::ports::{
    IdentityProvider, PortError, PortErrorKind, QueueService, QueueSpec, SessionCursor,
    SessionStore,
};
use queue_name::QueueNameGenerator;

/// One page of live sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionList {
    /// The live sessions of this page.
    pub sessions: Vec<SessionSummary>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<SessionCursor>,
}

/// SQS's bounds on MessageRetentionPeriod, in seconds.
pub const RETENTION_RANGE: std::ops::RangeInclusive<u32> = 60..=1_209_600;

/// How sessions are made; read once from config.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Names the stage's queues.
    pub queue_names: QueueNameGenerator,
    /// Credentials closer than this to expiry are replaced when create is repeated.
    pub refresh_margin_seconds: u64,
    /// How long a session outlives its credentials before the TTL removes it.
    pub idle_seconds: u64,
    /// The region clients sign for.
    pub region: String,
}

/// `<userId>:<sessionId>:<128 random bits in hex>`: a developer user identifier no other session
/// has, so every create gets a fresh identity (Cognito returns the existing identity for a known
/// login). Kept in the session row so that renew needs no LookupDeveloperIdentity. Cognito allows
/// 1–1024 characters; a session id is at most 256.
fn developer_login(user_id: UserId, session_id: &SessionId) -> String {
    let mut random = [0u8; 16];
    crate::crypto::fill_random(&mut random);
    let hex: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{user_id}:{session_id}:{hex}")
}

/// Why a session call failed. Each variant is one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A malformed id or parameter (400).
    #[error(transparent)]
    Invalid(#[from] IdError),
    /// The (userId, sessionId) pair is live under another account (409).
    #[error(
        "session {session_id} of user {user_id} already exists under another accountId; destroy it first or use a new sessionId"
    )]
    AccountMismatch {
        /// The user.
        user_id: UserId,
        /// The session.
        session_id: SessionId,
    },
    /// No such session (404).
    #[error("session {session_id} of user {user_id} not found")]
    NotFound {
        /// The user.
        user_id: UserId,
        /// The session.
        session_id: SessionId,
    },
    /// A backend call failed (502).
    #[error(transparent)]
    Backend(#[from] PortError),
}

/// Creates sessions: a queue, an identity with credentials for it, and a key.
#[derive(Clone)]
pub struct SessionService {
    store: Arc<dyn SessionStore>,
    queues: Arc<dyn QueueService>,
    identities: Arc<dyn IdentityProvider>,
    clock: Arc<dyn Clock>,
    settings: SessionSettings,
}

impl SessionService {
    /// Wires the service to its ports.
    pub fn new(
        store: Arc<dyn SessionStore>,
        queues: Arc<dyn QueueService>,
        identities: Arc<dyn IdentityProvider>,
        clock: Arc<dyn Clock>,
        settings: SessionSettings,
    ) -> Self {
        Self {
            store,
            queues,
            identities,
            clock,
            settings,
        }
    }

    /// The settings the service was built with.
    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    /// Creates a session, or returns the live one with the same (userId, sessionId): same queue
    /// and key, with fresh credentials when the old ones are close to expiry.
    pub async fn create(
        &self,
        account_id: AccountId,
        user_id: UserId,
        session_id: SessionId,
        retention_seconds: Option<u32>,
    ) -> Result<Session, SessionError> {
        let now = self.clock.now();
        if let Some(existing) = self.store.get(user_id, &session_id).await? {
            if existing.account_id != account_id {
                return Err(SessionError::AccountMismatch {
                    user_id,
                    session_id,
                });
            }
            if existing.is_live(now) {
                return self.refresh_if_needed(existing, now).await;
            }
            // An expired row the TTL has not removed yet: replace it. The stream's MODIFY record
            // lets cleanup delete the old queue and identity.
        }

        let login = developer_login(user_id, &session_id);
        let identity_id = self.identities.create_identity(&login).await?;
        let queue = match self
            .queues
            .create_queue(&QueueSpec {
                name: self.settings.queue_names.generate(),
                owner_identity_id: identity_id.clone(),
                retention_seconds,
            })
            .await
        {
            Ok(queue) => queue,
            Err(error) => {
                self.abandon(None, &identity_id).await;
                return Err(error.into());
            }
        };
        let credentials = match self
            .identities
            .credentials(&identity_id, Some(&login), &queue)
            .await
        {
            Ok(credentials) => credentials,
            Err(error) => {
                self.abandon(Some(&queue), &identity_id).await;
                return Err(error.into());
            }
        };
        let session = Session {
            account_id,
            user_id,
            session_id,
            queue,
            identity_id,
            developer_login: Some(login),
            aes_key: SessionKey::generate(),
            ttl: credentials.expires + self.settings.idle_seconds,
            credentials,
            created: now,
        };
        if let Err(error) = self.store.put_new(&session, now).await {
            self.abandon(Some(&session.queue), &session.identity_id)
                .await;
            if error.kind != PortErrorKind::ConditionFailed {
                return Err(error.into());
            }
            // A concurrent create won: answer with its session, never with the queue just
            // abandoned.
            return match self.store.get(session.user_id, &session.session_id).await? {
                Some(winner) if winner.account_id != session.account_id => {
                    Err(SessionError::AccountMismatch {
                        user_id: session.user_id,
                        session_id: session.session_id,
                    })
                }
                Some(winner) if winner.is_live(now) => Ok(winner),
                _ => Err(PortError::new(
                    PortErrorKind::Transient,
                    "create",
                    session.session_id.as_str(),
                    "a concurrent create or destroy changed the session; try again",
                )
                .into()),
            };
        }
        tracing::info!(
            user_id = %session.user_id,
            account_id = %session.account_id,
            queue = %session.queue.name,
            "session created"
        );
        Ok(session)
    }

    /// The live session with these ids; expired rows the TTL has not removed yet and rows of
    /// another account are not found.
    pub async fn status(
        &self,
        account_id: AccountId,
        user_id: UserId,
        session_id: SessionId,
    ) -> Result<Session, SessionError> {
        match self.store.get(user_id, &session_id).await? {
            Some(session)
                if session.account_id == account_id && session.is_live(self.clock.now()) =>
            {
                Ok(session)
            }
            _ => Err(SessionError::NotFound {
                user_id,
                session_id,
            }),
        }
    }

    /// New credentials for the same identity and queue of a live session; extends its ttl.
    pub async fn renew(
        &self,
        account_id: AccountId,
        user_id: UserId,
        session_id: SessionId,
    ) -> Result<Session, SessionError> {
        let session = self.status(account_id, user_id, session_id).await?;
        let renewed = self.reissue_credentials(session).await?;
        tracing::info!(
            user_id = %renewed.user_id,
            queue = %renewed.queue.name,
            expires = renewed.credentials.expires,
            "session renewed"
        );
        Ok(renewed)
    }

    /// Removes the session's row and deletes its queue. The identity is deleted by cleanup when
    /// the row's removal reaches the stream. A second call finds nothing: [`SessionError::NotFound`].
    pub async fn destroy(
        &self,
        account_id: AccountId,
        user_id: UserId,
        session_id: SessionId,
    ) -> Result<Session, SessionError> {
        let not_found = |session_id| SessionError::NotFound {
            user_id,
            session_id,
        };
        let read = match self.store.get(user_id, &session_id).await? {
            Some(session) if session.account_id == account_id => session,
            _ => return Err(not_found(session_id)),
        };
        // Only the row that was read (and checked) is removed: a row a concurrent create put in
        // its place is not this caller's to destroy.
        let session = match self
            .store
            .delete_if_queue(user_id, &session_id, &read.queue.url)
            .await
        {
            Ok(session) => session,
            Err(error) if error.kind == PortErrorKind::ConditionFailed => {
                return Err(not_found(session_id));
            }
            Err(error) => return Err(error.into()),
        };
        match self.queues.delete_queue(&session.queue.url).await {
            Ok(()) => {}
            Err(error) if error.is_not_found() => {}
            // The row is gone, so the stream's REMOVE record retries this delete in cleanup.
            Err(error) => {
                tracing::warn!(queue = %session.queue.name, %error, "destroy left the queue to cleanup");
            }
        }
        tracing::info!(
            user_id = %session.user_id,
            queue = %session.queue.name,
            "session destroyed"
        );
        Ok(session)
    }

    /// Up to `limit` live sessions, resuming at `after`. Expired rows are skipped; a page can be
    /// shorter than `limit` and still have a `next`.
    pub async fn list(
        &self,
        limit: usize,
        after: Option<SessionCursor>,
    ) -> Result<SessionList, SessionError> {
        // Bounds the reads one call makes when a stretch of the table holds only expired rows.
        const MAX_READS: usize = 10;
        let limit = limit.max(1);
        let now = self.clock.now();
        let mut sessions = Vec::new();
        let mut cursor = after;
        for _ in 0..MAX_READS {
            let page = self
                .store
                .list(limit - sessions.len(), cursor.as_ref())
                .await?;
            sessions.extend(
                page.sessions
                    .iter()
                    .filter(|session| session.is_live(now))
                    .map(SessionSummary::from),
            );
            cursor = page.next;
            if cursor.is_none() || sessions.len() >= limit {
                break;
            }
        }
        Ok(SessionList {
            sessions,
            next: cursor,
        })
    }

    async fn refresh_if_needed(&self, session: Session, now: u64) -> Result<Session, SessionError> {
        let remaining = session.credentials.expires.saturating_sub(now);
        if remaining > self.settings.refresh_margin_seconds {
            return Ok(session);
        }
        self.reissue_credentials(session).await
    }

    /// New credentials for the same identity and queue; extends the ttl. A row destroyed or
    /// replaced meanwhile is not brought back: that is [`SessionError::NotFound`].
    pub async fn reissue_credentials(&self, mut session: Session) -> Result<Session, SessionError> {
        session.credentials = self
            .identities
            .credentials(
                &session.identity_id,
                session.developer_login.as_deref(),
                &session.queue,
            )
            .await?;
        session.ttl = session.credentials.expires + self.settings.idle_seconds;
        match self.store.replace(&session).await {
            Ok(()) => Ok(session),
            Err(error) if error.kind == PortErrorKind::ConditionFailed => {
                Err(SessionError::NotFound {
                    user_id: session.user_id,
                    session_id: session.session_id,
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Best effort: a failed create must not leave a queue or identity behind. A failure here
    /// leaves an orphan for /cleanup, so it is logged, not returned over the original error.
    async fn abandon(&self, queue: Option<&QueueRef>, identity_id: &str) {
        if let Some(queue) = queue
            && let Err(error) = self.queues.delete_queue(&queue.url).await
        {
            tracing::warn!(queue = %queue.name, %error, "could not delete the queue of a failed create");
        }
        if let Err(error) = self
            .identities
            .delete_identities(&[identity_id.to_string()])
            .await
        {
            tracing::warn!(identity_id, %error, "could not delete the identity of a failed create");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::session::Credentials;
    use crate::testing::ManualClock;
    use crate::testing::memory::{MemoryIdentities, MemoryQueues, MemorySessionStore};

    struct Fixture {
        service: SessionService,
        store: Arc<MemorySessionStore>,
        queues: Arc<MemoryQueues>,
        identities: Arc<MemoryIdentities>,
        clock: Arc<ManualClock>,
    }

    fn fixture() -> Fixture {
        let store = Arc::new(MemorySessionStore::default());
        let clock = Arc::new(ManualClock::at(1_000_000));
        let queues = Arc::new(MemoryQueues::default());
        let identities = Arc::new(MemoryIdentities::new(clock.clone(), 3600));
        let settings = SessionSettings {
            queue_names: QueueNameGenerator::new("sqs-push-test").unwrap(),
            refresh_margin_seconds: 900,
            idle_seconds: 3600,
            region: "us-east-1".into(),
        };
        let service = SessionService::new(
            store.clone(),
            queues.clone(),
            identities.clone(),
            clock.clone(),
            settings,
        );
        Fixture {
            service,
            store,
            queues,
            identities,
            clock,
        }
    }

    fn ids(account: u64, user: u64, session: &str) -> (AccountId, UserId, SessionId) {
        (
            AccountId::try_from(account).unwrap(),
            UserId::try_from(user).unwrap(),
            SessionId::parse(session).unwrap(),
        )
    }

    #[tokio::test]
    async fn create_makes_a_queue_an_identity_and_a_row_with_ttl_after_expiry() {
        let f = fixture();
        let (a, u, s) = ids(100, 200, "s1");
        let session = f.service.create(a, u, s.clone(), Some(120)).await.unwrap();
        assert!(session.queue.name.starts_with("sqs-push-test_"));
        assert_eq!(session.credentials.expires, 1_000_000 + 3600);
        assert_eq!(session.ttl, 1_000_000 + 3600 + 3600);
        assert_eq!(f.store.get(u, &s).await.unwrap().unwrap(), session);
        let queue = f.queues.queue(&session.queue.url).unwrap();
        assert_eq!(queue.owner_identity_id, session.identity_id);
        assert_eq!(queue.retention_seconds, Some(120));
        assert!(f.identities.exists(&session.identity_id));
    }

    #[tokio::test]
    async fn repeating_create_returns_the_same_queue_key_and_credentials() {
        let f = fixture();
        let (a, u, s) = ids(100, 200, "s1");
        let first = f.service.create(a, u, s.clone(), None).await.unwrap();
        f.clock.advance(60);
        let second = f.service.create(a, u, s, None).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(f.queues.count(), 1);
    }

    #[tokio::test]
    async fn repeating_create_near_expiry_keeps_queue_and_key_but_renews_credentials() {
        let f = fixture();
        let (a, u, s) = ids(100, 200, "s1");
        let first = f.service.create(a, u, s.clone(), None).await.unwrap();
        f.clock.advance(3600 - 600);
        let second = f.service.create(a, u, s.clone(), None).await.unwrap();
        assert_eq!(second.queue, first.queue);
        assert_eq!(second.aes_key, first.aes_key);
        assert_eq!(second.identity_id, first.identity_id);
        assert_ne!(second.credentials, first.credentials);
        assert_eq!(second.ttl, second.credentials.expires + 3600);
        assert_eq!(f.store.get(u, &s).await.unwrap().unwrap(), second);
    }

    #[tokio::test]
    async fn the_same_pair_under_another_account_is_refused_and_nothing_changes() {
        let f = fixture();
        let (a, u, s) = ids(100, 200, "s1");
        let first = f.service.create(a, u, s.clone(), None).await.unwrap();
        let other = AccountId::try_from(101).unwrap();
        let error = f
            .service
            .create(other, u, s.clone(), None)
            .await
            .unwrap_err();
        assert!(matches!(error, SessionError::AccountMismatch { .. }));
        assert_eq!(f.store.get(u, &s).await.unwrap().unwrap(), first);
        assert_eq!(f.queues.count(), 1);
    }

    #[tokio::test]
    async fn an_expired_row_is_replaced_by_a_new_queue() {
        let f = fixture();
        let (a, u, s) = ids(100, 200, "s1");
        let first = f.service.create(a, u, s.clone(), None).await.unwrap();
        f.clock.advance(7201);
        let second = f.service.create(a, u, s, None).await.unwrap();
        assert_ne!(second.queue, first.queue);
        assert_ne!(second.aes_key, first.aes_key);
    }

    #[tokio::test]
    async fn a_failed_credential_call_leaves_no_queue_or_identity_behind() {
        let f = fixture();
        f.identities.fail_credentials(true);
        let (a, u, s) = ids(100, 200, "s1");
        let error = f.service.create(a, u, s.clone(), None).await.unwrap_err();
        assert!(matches!(error, SessionError::Backend(_)));
        assert_eq!(f.queues.count(), 0);
        assert_eq!(f.identities.count(), 0);
        assert!(f.store.get(u, &s).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn status_returns_a_live_session_and_not_one_of_another_account_or_expired() {
        let f = fixture();
        let (a, u, s) = ids(100, 200, "s1");
        let created = f.service.create(a, u, s.clone(), None).await.unwrap();
        assert_eq!(f.service.status(a, u, s.clone()).await.unwrap(), created);
        let other = AccountId::try_from(101).unwrap();
        let error = f.service.status(other, u, s.clone()).await.unwrap_err();
        assert!(matches!(error, SessionError::NotFound { .. }));
        f.clock.advance(7201);
        let error = f.service.status(a, u, s).await.unwrap_err();
        assert_eq!(error.to_string(), "session s1 of user 200 not found");
    }

    #[tokio::test]
    async fn renew_keeps_queue_key_and_identity_and_extends_the_ttl() {
        let f = fixture();
        let (a, u, s) = ids(100, 200, "s1");
        let created = f.service.create(a, u, s.clone(), None).await.unwrap();
        f.clock.advance(100);
        let renewed = f.service.renew(a, u, s.clone()).await.unwrap();
        assert_eq!(renewed.queue, created.queue);
        assert_eq!(renewed.aes_key, created.aes_key);
        assert_eq!(renewed.identity_id, created.identity_id);
        assert_ne!(renewed.credentials, created.credentials);
        assert_eq!(renewed.ttl, created.ttl + 100);
        assert_eq!(f.store.get(u, &s).await.unwrap().unwrap(), renewed);
    }

    #[tokio::test]
    async fn renew_uses_the_kept_developer_login_and_looks_nothing_up() {
        let f = fixture();
        let (a, u, s) = ids(100, 200, "s1");
        let created = f.service.create(a, u, s.clone(), None).await.unwrap();
        let login = created
            .developer_login
            .clone()
            .expect("create keeps the login");
        assert!(login.starts_with("200:s1:"), "{login}");
        assert_eq!(login.len(), "200:s1:".len() + 32);
        f.service.renew(a, u, s.clone()).await.unwrap();
        assert_eq!(f.identities.lookups(), 0);
        let again = f.service.create(a, u, ids(100, 200, "s2").2, None).await;
        assert_ne!(
            again.unwrap().developer_login,
            Some(login),
            "unique per session"
        );
    }

    #[tokio::test]
    async fn renew_of_a_row_without_a_kept_login_looks_it_up_once() {
        let f = fixture();
        let (a, u, s) = ids(100, 200, "s1");
        let mut created = f.service.create(a, u, s.clone(), None).await.unwrap();
        created.developer_login = None;
        f.store.replace(&created).await.unwrap();
        let renewed = f.service.renew(a, u, s).await.unwrap();
        assert_eq!(renewed.identity_id, created.identity_id);
        assert_eq!(f.identities.lookups(), 1);
    }

    #[tokio::test]
    async fn renew_of_a_missing_session_is_not_found_and_writes_nothing() {
        let f = fixture();
        let (a, u, s) = ids(100, 200, "gone");
        let error = f.service.renew(a, u, s.clone()).await.unwrap_err();
        assert!(matches!(error, SessionError::NotFound { .. }));
        assert!(f.store.is_empty());
    }

    #[tokio::test]
    async fn credentials_reissued_for_a_row_destroyed_meanwhile_do_not_bring_it_back() {
        let f = fixture();
        let (a, u, s) = ids(100, 200, "s1");
        let created = f.service.create(a, u, s.clone(), None).await.unwrap();
        f.service.destroy(a, u, s.clone()).await.unwrap();
        let error = f.service.reissue_credentials(created).await.unwrap_err();
        assert!(matches!(error, SessionError::NotFound { .. }));
        assert!(f.store.get(u, &s).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn destroy_removes_row_and_queue_once_and_leaves_the_identity_to_cleanup() {
        let f = fixture();
        let (a, u, s) = ids(100, 200, "s1");
        let created = f.service.create(a, u, s.clone(), None).await.unwrap();
        let other = AccountId::try_from(101).unwrap();
        assert!(matches!(
            f.service.destroy(other, u, s.clone()).await.unwrap_err(),
            SessionError::NotFound { .. }
        ));
        let destroyed = f.service.destroy(a, u, s.clone()).await.unwrap();
        assert_eq!(destroyed, created);
        assert!(f.store.get(u, &s).await.unwrap().is_none());
        assert_eq!(f.queues.count(), 0);
        assert!(f.identities.exists(&created.identity_id));
        assert!(matches!(
            f.service.destroy(a, u, s).await.unwrap_err(),
            SessionError::NotFound { .. }
        ));
    }

    #[tokio::test]
    async fn list_pages_through_live_sessions_only() {
        let f = fixture();
        for (user, session) in [(1, "a"), (1, "b"), (2, "a"), (3, "x"), (4, "y")] {
            let (a, u, s) = ids(100, user, session);
            f.service.create(a, u, s, None).await.unwrap();
        }
        // An expired row in the middle of the key order is skipped.
        let (_, u, s) = ids(100, 2, "a");
        let mut expired = f.store.get(u, &s).await.unwrap().unwrap();
        expired.ttl = 5;
        f.store.put(&expired).await.unwrap();

        let first = f.service.list(2, None).await.unwrap();
        let names = |list: &SessionList| {
            list.sessions
                .iter()
                .map(|s| format!("{}/{}", s.user_id, s.session_id))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&first), ["1/a", "1/b"]);
        let second = f.service.list(2, first.next.clone()).await.unwrap();
        assert_eq!(names(&second), ["3/x", "4/y"]);
        assert!(second.next.is_none());
    }

    #[test]
    fn debug_output_hides_credentials() {
        let credentials = Credentials {
            access_key: "AKIA-SECRET".into(),
            secret_key: "very-secret".into(),
            session_token: "token".into(),
            expires: 5,
        };
        let printed = format!("{credentials:?}");
        assert!(!printed.contains("SECRET") && !printed.contains("very-secret"));
    }

    #[tokio::test]
    async fn concurrent_creates_of_one_session_answer_with_the_winner_and_leave_one_queue() {
        let mut f = fixture();
        // Latency makes every create read "no row" before any of them writes.
        let queues = Arc::new(MemoryQueues::with_latency(
            std::time::Duration::from_millis(2),
        ));
        f.service = SessionService::new(
            f.store.clone(),
            queues.clone(),
            f.identities.clone(),
            f.clock.clone(),
            f.service.settings().clone(),
        );
        let (a, u, s) = ids(1, 2, "tab");
        let answers =
            futures::future::join_all((0..10).map(|_| f.service.create(a, u, s.clone(), None)))
                .await;
        let answers: Vec<Session> = answers.into_iter().map(Result::unwrap).collect();
        assert!(answers.iter().all(|answer| answer == &answers[0]));
        assert_eq!(queues.count(), 1, "the losers deleted their queues");
        assert_eq!(
            f.identities.count(),
            1,
            "the losers deleted their identities"
        );
        assert!(queues.queue(&answers[0].queue.url).is_some());
        assert_eq!(
            f.store.get(u, &s).await.unwrap().as_ref(),
            Some(&answers[0])
        );
    }

    #[tokio::test]
    async fn destroy_does_not_remove_a_row_that_replaced_the_one_it_read() {
        let f = fixture();
        let (a, u, s) = ids(1, 2, "tab");
        let first = f.service.create(a, u, s.clone(), None).await.unwrap();
        let mut replacement = first.clone();
        replacement.queue.url = "memory://queues/000000000000/other".into();
        f.store.put(&replacement).await.unwrap();
        let error = f
            .store
            .delete_if_queue(u, &s, &first.queue.url)
            .await
            .unwrap_err();
        assert_eq!(error.kind, PortErrorKind::ConditionFailed);
        assert_eq!(f.store.get(u, &s).await.unwrap(), Some(replacement));
    }
}
