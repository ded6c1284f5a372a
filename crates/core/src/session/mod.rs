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
    SessionStore, UpstreamStore,
};
use crate::upstream::sender::role_session_name;
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
    /// A request over a limit (400): too many channels.
    #[error("{0}")]
    Limit(String),
    /// The session may not be renewed (403): its upstream messages broke the limits too often.
    #[error("{0}")]
    Refused(String),
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
    /// Where the consumer counts each session's strikes, and how many refuse renewal.
    upstream_strikes: Option<(Arc<dyn UpstreamStore>, u64)>,
}

impl SessionService {
    /// Renew refuses a session whose upstream strikes in `store` reached `strike_limit`.
    pub fn with_upstream_strikes(
        mut self,
        store: Arc<dyn UpstreamStore>,
        strike_limit: u64,
    ) -> Self {
        self.upstream_strikes = Some((store, strike_limit));
        self
    }

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
            upstream_strikes: None,
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
            .credentials(
                &identity_id,
                Some(&login),
                &queue,
                &role_session_name(user_id, &identity_id),
            )
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
            channels: Default::default(),
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
        if let Some((store, limit)) = &self.upstream_strikes
            && let Some(refusal) =
                crate::upstream::renew_refusal(store.as_ref(), &session, *limit).await?
        {
            tracing::warn!(user_id = %session.user_id, "renew refused: upstream strikes");
            return Err(SessionError::Refused(refusal));
        }
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
        // The memberships end with the row: a publish stops reaching the session and the
        // channel's count drops at once. Cleanup removes them again from the stream record, so
        // a failure here only delays that.
        if !session.channels.is_empty()
            && let Err(error) = self.store.remove_memberships(&session).await
        {
            tracing::warn!(queue = %session.queue.name, %error, "destroy left the memberships to cleanup");
        }
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
                &role_session_name(session.user_id, &session.identity_id),
            )
            .await?;
        session.ttl = session.credentials.expires + self.settings.idle_seconds;
        match self.store.replace(&session).await {
            Ok(stored) => {
                // The memberships carry the ttl a publish filters by: extend them too, for the
                // channels the row holds now (a subscribe since the read is in `stored`).
                if !stored.channels.is_empty() {
                    self.store.refresh_memberships(&stored).await?;
                }
                Ok(stored)
            }
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
mod tests;
