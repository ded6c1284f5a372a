//! Cleanup: what a session leaves behind when its row is removed or replaced. Changes to the
//! sessions table come in (from its stream); the queues, identities and channel memberships
//! they orphan are deleted.
//!
//! A resource already gone counts as deleted, so replaying a change is harmless. A change whose
//! deletes failed is reported back by its sequence number, so the stream retries only from there.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use futures::StreamExt;

use crate::model::session::{QueueRef, Session};
use crate::ports::{IdentityProvider, QueueService, SessionStore};
use crate::retry::{Stop, retry_leftovers};

/// Cognito's limit on ids per DeleteIdentities call.
pub const IDENTITIES_PER_CALL: usize = 60;

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A new row.
    Insert,
    /// A row rewritten (renewed credentials, or an expired session replaced by a new one).
    Modify,
    /// A row deleted (destroy, or the TTL).
    Remove,
}

/// One change to the sessions table, as its stream reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionChange {
    /// The stream's sequence number: the id a failure is reported under.
    pub sequence_number: String,
    /// The stream's event id, for logs.
    pub event_id: String,
    /// Insert, modify or remove.
    pub kind: ChangeKind,
    /// The row before the change.
    pub old: Option<Session>,
    /// The row after the change.
    pub new: Option<Session>,
    /// True when DynamoDB's TTL removed the row (the session expired), not a caller.
    pub expired: bool,
}

/// The resources a change leaves without a row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// A queue to delete.
    pub queue: Option<QueueRef>,
    /// An identity to delete.
    pub identity_id: Option<String>,
    /// The ended session whose channel memberships (those still holding its queue) to delete.
    pub memberships: Option<Session>,
}

impl SessionChange {
    /// A remove leaves the old row's queue, identity and memberships; a modify leaves
    /// whichever of them the new row no longer names (a replaced session's memberships go with
    /// its queue); an insert leaves nothing.
    pub fn leftovers(&self) -> Leftovers {
        let Some(old) = &self.old else {
            return Leftovers::default();
        };
        let memberships = (!old.channels.is_empty()).then(|| old.clone());
        match (self.kind, &self.new) {
            (ChangeKind::Insert, _) => Leftovers::default(),
            (ChangeKind::Remove, _) | (ChangeKind::Modify, None) => Leftovers {
                queue: Some(old.queue.clone()),
                identity_id: Some(old.identity_id.clone()),
                memberships,
            },
            (ChangeKind::Modify, Some(new)) => {
                let replaced = old.queue.url != new.queue.url;
                Leftovers {
                    queue: replaced.then(|| old.queue.clone()),
                    identity_id: (old.identity_id != new.identity_id)
                        .then(|| old.identity_id.clone()),
                    memberships: memberships.filter(|_| replaced),
                }
            }
        }
    }
}

/// What one batch of changes did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Changes in the batch.
    pub changes: usize,
    /// Of those, rows the TTL removed.
    pub expired: usize,
    /// Queues deleted, or found already gone.
    pub queues_deleted: usize,
    /// Channel membership rows deleted.
    pub memberships_deleted: usize,
    /// Identities deleted (unknown ids count: Cognito ignores them).
    pub identities_deleted: usize,
    /// DeleteIdentities calls made.
    pub identity_calls: usize,
    /// Sequence numbers of the changes whose deletes failed, in batch order.
    pub failed: Vec<String>,
}

/// Deletes what removed and replaced sessions leave behind.
#[derive(Clone)]
pub struct CleanupService {
    store: Arc<dyn SessionStore>,
    queues: Arc<dyn QueueService>,
    identities: Arc<dyn IdentityProvider>,
    concurrency: usize,
}

impl CleanupService {
    /// `concurrency` bounds the queue deletes in flight at once.
    pub fn new(
        store: Arc<dyn SessionStore>,
        queues: Arc<dyn QueueService>,
        identities: Arc<dyn IdentityProvider>,
        concurrency: usize,
    ) -> Self {
        Self {
            store,
            queues,
            identities,
            concurrency: concurrency.max(1),
        }
    }

    /// Deletes the leftovers of every change: queues concurrently, identities in calls of
    /// [`IDENTITIES_PER_CALL`].
    pub async fn apply(&self, changes: &[SessionChange]) -> CleanupReport {
        let leftovers: Vec<Leftovers> = changes.iter().map(SessionChange::leftovers).collect();
        let mut failed = vec![false; changes.len()];

        // Owned queues, collected first: a stream of futures borrowing from an iterator's
        // closures is not `Send` for the Lambda runtime.
        let queues: Vec<(usize, QueueRef)> = leftovers
            .iter()
            .enumerate()
            .filter_map(|(index, left)| left.queue.clone().map(|queue| (index, queue)))
            .collect();
        let queue_results: Vec<(usize, bool)> = futures::stream::iter(queues)
            .map(|(index, queue)| async move { (index, self.delete_queue(&queue).await) })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut queues_deleted = 0;
        for (index, deleted) in queue_results {
            if deleted {
                queues_deleted += 1;
            } else {
                failed[index] = true;
            }
        }

        // Memberships only hold routing data and a publish already skips ended ones (by ttl),
        // so they go one session at a time; a failure retries the change like a queue's.
        let mut memberships_deleted = 0;
        for (index, left) in leftovers.iter().enumerate() {
            let Some(ended) = &left.memberships else {
                continue;
            };
            match self.store.remove_memberships(ended).await {
                Ok(deleted) => memberships_deleted += deleted,
                Err(error) => {
                    tracing::warn!(queue = %ended.queue.name, %error, "membership delete failed; the change will be retried");
                    failed[index] = true;
                }
            }
        }

        // Each identity once, in batch order, with the changes that named it.
        let mut owners: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut ids: Vec<String> = Vec::new();
        for (index, left) in leftovers.iter().enumerate() {
            if let Some(identity_id) = &left.identity_id {
                let changes = owners.entry(identity_id.as_str()).or_default();
                if changes.is_empty() {
                    ids.push(identity_id.clone());
                }
                changes.push(index);
            }
        }
        let outcome = delete_identities(self.identities.as_ref(), &ids).await;
        for id in &outcome.failed {
            for &index in &owners[id.as_str()] {
                failed[index] = true;
            }
        }

        let report = CleanupReport {
            changes: changes.len(),
            expired: changes.iter().filter(|change| change.expired).count(),
            queues_deleted,
            memberships_deleted,
            identities_deleted: ids.len() - outcome.failed.len(),
            identity_calls: outcome.calls,
            failed: changes
                .iter()
                .zip(&failed)
                .filter(|(_, failed)| **failed)
                .map(|(change, _)| change.sequence_number.clone())
                .collect(),
        };
        tracing::info!(
            changes = report.changes,
            expired = report.expired,
            queues_deleted = report.queues_deleted,
            memberships_deleted = report.memberships_deleted,
            identities_deleted = report.identities_deleted,
            identity_calls = report.identity_calls,
            failed = report.failed.len(),
            "cleanup batch"
        );
        report
    }

    /// True when the queue is gone, whether this call deleted it or not.
    async fn delete_queue(&self, queue: &QueueRef) -> bool {
        match self.queues.delete_queue(&queue.url).await {
            Ok(()) => true,
            Err(error) if error.is_not_found() => true,
            Err(error) => {
                tracing::warn!(queue = %queue.name, %error, "queue delete failed; the change will be retried");
                false
            }
        }
    }
}

/// What deleting a set of identities came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityDeletion {
    /// Ids that could not be deleted (the call failed, or they stayed unprocessed).
    pub failed: BTreeSet<String>,
    /// DeleteIdentities calls made.
    pub calls: usize,
}

/// Deletes identities [`IDENTITIES_PER_CALL`] at a time, retrying the ids a call reports
/// unprocessed (the one retry helper, [`retry_leftovers`]). A failed call is not repeated here: the
/// SDK has already retried it, and the caller's own retry (the stream's) covers the rest.
pub async fn delete_identities(
    provider: &dyn IdentityProvider,
    identity_ids: &[String],
) -> IdentityDeletion {
    let mut outcome = IdentityDeletion::default();
    for chunk in identity_ids.chunks(IDENTITIES_PER_CALL) {
        let left = retry_leftovers(chunk.to_vec(), None, |pending| {
            Box::pin(async move {
                let unprocessed = provider.delete_identities(&pending).await?;
                // Only ids that were asked for can come back, whatever the answer says.
                Ok(pending
                    .into_iter()
                    .filter(|id| unprocessed.contains(id))
                    .collect())
            })
        })
        .await;
        outcome.calls += left.calls;
        match left.stop {
            Stop::Done => {}
            Stop::Failed(error) if error.is_not_found() => {}
            Stop::Failed(error) => {
                tracing::warn!(identities = left.items.len(), %error, "identity delete failed");
                outcome.failed.extend(left.items);
            }
            Stop::Exhausted | Stop::Deadline => {
                tracing::warn!(
                    identities = left.items.len(),
                    "identities still unprocessed after retries"
                );
                outcome.failed.extend(left.items);
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SessionKey;
    use crate::model::channel::ChannelName;
    use crate::model::ids::{AccountId, SessionId, UserId};
    use crate::model::session::Credentials;
    use crate::ports::QueueSpec;
    use crate::testing::ManualClock;
    use crate::testing::memory::{MemoryIdentities, MemoryQueues, MemorySessionStore};

    struct Fixture {
        service: CleanupService,
        store: Arc<MemorySessionStore>,
        queues: Arc<MemoryQueues>,
        identities: Arc<MemoryIdentities>,
    }

    fn fixture() -> Fixture {
        let clock = Arc::new(ManualClock::at(1_000_000));
        let queues = Arc::new(MemoryQueues::default());
        let identities = Arc::new(MemoryIdentities::new(clock, 3600));
        let store = Arc::new(MemorySessionStore::default());
        Fixture {
            service: CleanupService::new(store.clone(), queues.clone(), identities.clone(), 4),
            store,
            queues,
            identities,
        }
    }

    impl Fixture {
        /// A session whose queue and identity exist.
        async fn session(&self, number: u64) -> Session {
            let identity_id = self.identities.create_identity("1:s").await.unwrap();
            let queue = self
                .queues
                .create_queue(&QueueSpec {
                    name: format!("q{number}"),
                    owner_identity_id: identity_id.clone(),
                    retention_seconds: None,
                })
                .await
                .unwrap();
            Session {
                account_id: AccountId::try_from(1).unwrap(),
                user_id: UserId::try_from(number).unwrap(),
                session_id: SessionId::parse("s").unwrap(),
                queue,
                identity_id,
                developer_login: None,
                channels: Default::default(),
                aes_key: SessionKey::generate(),
                credentials: Credentials {
                    access_key: "A".into(),
                    secret_key: "S".into(),
                    session_token: "T".into(),
                    expires: 1,
                },
                ttl: 2,
                created: 0,
            }
        }
    }

    fn change(
        sequence: u64,
        kind: ChangeKind,
        old: Option<&Session>,
        new: Option<&Session>,
    ) -> SessionChange {
        SessionChange {
            sequence_number: sequence.to_string(),
            event_id: format!("event-{sequence}"),
            kind,
            old: old.cloned(),
            new: new.cloned(),
            expired: false,
        }
    }

    #[tokio::test]
    async fn a_remove_deletes_the_queue_and_the_identity() {
        let f = fixture();
        let session = f.session(1).await;
        let report = f
            .service
            .apply(&[change(1, ChangeKind::Remove, Some(&session), None)])
            .await;
        assert!(report.failed.is_empty());
        assert_eq!((report.queues_deleted, report.identities_deleted), (1, 1));
        assert_eq!(f.queues.count(), 0);
        assert!(!f.identities.exists(&session.identity_id));
    }

    #[tokio::test]
    async fn an_ended_sessions_memberships_go_but_a_re_created_sessions_stay() {
        let f = fixture();
        let room = ChannelName::parse("room").unwrap();
        let mut old = f.session(1).await;
        f.store.put(&old).await.unwrap();
        f.store
            .subscribe(&old, std::slice::from_ref(&room), 10, 0)
            .await
            .unwrap();
        old.channels.insert(room.clone());
        // The session is created again (same ids, new queue) and joins the room again before
        // the old row's change reaches cleanup.
        let mut new = f.session(101).await;
        new.user_id = old.user_id;
        assert_ne!(new.queue.url, old.queue.url, "a new queue");
        f.store.put(&new).await.unwrap();
        f.store
            .subscribe(&new, std::slice::from_ref(&room), 10, 0)
            .await
            .unwrap();
        let report = f
            .service
            .apply(&[change(1, ChangeKind::Modify, Some(&old), Some(&new))])
            .await;
        assert_eq!(report.memberships_deleted, 0, "the row holds the new queue");
        let page = f.store.channel_page(&room, None, 10).await.unwrap();
        assert_eq!(page.recipients[0].queue_url, new.queue.url);
        // The new session's removal takes its membership with it.
        let mut ended = new.clone();
        ended.channels.insert(room.clone());
        let report = f
            .service
            .apply(&[change(2, ChangeKind::Remove, Some(&ended), None)])
            .await;
        assert_eq!(report.memberships_deleted, 1);
        assert_eq!(f.store.membership_count(), 0);
    }

    #[tokio::test]
    async fn a_membership_delete_that_fails_retries_the_change() {
        let f = fixture();
        let room = ChannelName::parse("room").unwrap();
        let mut session = f.session(1).await;
        f.store.put(&session).await.unwrap();
        f.store
            .subscribe(&session, std::slice::from_ref(&room), 10, 0)
            .await
            .unwrap();
        session.channels.insert(room);
        f.store.fail_writes(Some(crate::PortErrorKind::Transient));
        let remove = change(7, ChangeKind::Remove, Some(&session), None);
        let report = f.service.apply(std::slice::from_ref(&remove)).await;
        assert_eq!(report.failed, vec!["7".to_string()]);
        assert_eq!(f.store.membership_count(), 1);
        f.store.fail_writes(None);
        let report = f.service.apply(&[remove]).await;
        assert!(report.failed.is_empty());
        assert_eq!(f.store.membership_count(), 0);
    }

    #[tokio::test]
    async fn a_modify_that_replaced_queue_and_identity_deletes_the_old_ones_only() {
        let f = fixture();
        let old = f.session(1).await;
        let new = f.session(2).await;
        f.service
            .apply(&[change(1, ChangeKind::Modify, Some(&old), Some(&new))])
            .await;
        assert!(f.queues.queue(&old.queue.url).is_none());
        assert!(!f.identities.exists(&old.identity_id));
        assert!(f.queues.queue(&new.queue.url).is_some());
        assert!(f.identities.exists(&new.identity_id));
    }

    #[tokio::test]
    async fn a_renewal_and_an_insert_delete_nothing() {
        let f = fixture();
        let old = f.session(1).await;
        let mut renewed = old.clone();
        renewed.credentials.expires += 3600;
        renewed.ttl += 3600;
        let report = f
            .service
            .apply(&[
                change(1, ChangeKind::Insert, None, Some(&old)),
                change(2, ChangeKind::Modify, Some(&old), Some(&renewed)),
            ])
            .await;
        assert_eq!((report.queues_deleted, report.identity_calls), (0, 0));
        assert_eq!(f.queues.count(), 1);
        assert!(f.identities.exists(&old.identity_id));
    }

    #[tokio::test]
    async fn resources_already_gone_count_as_deleted() {
        let f = fixture();
        let session = f.session(1).await;
        let remove = change(1, ChangeKind::Remove, Some(&session), None);
        f.service.apply(std::slice::from_ref(&remove)).await;
        let replay = f.service.apply(&[remove]).await;
        assert!(replay.failed.is_empty());
        assert_eq!(replay.queues_deleted, 1);
    }

    #[tokio::test]
    async fn identities_are_deleted_sixty_per_call() {
        let f = fixture();
        let mut changes = Vec::new();
        for number in 0..130 {
            let session = f.session(number).await;
            changes.push(change(number, ChangeKind::Remove, Some(&session), None));
        }
        let report = f.service.apply(&changes).await;
        assert!(report.failed.is_empty());
        assert_eq!(f.identities.delete_batches(), vec![60, 60, 10]);
        assert_eq!(report.identity_calls, 3);
        assert_eq!(f.identities.count(), 0);
        assert_eq!(f.queues.count(), 0);
    }

    #[tokio::test]
    async fn unprocessed_identities_are_retried_in_a_smaller_call() {
        let f = fixture();
        let a = f.session(1).await;
        let b = f.session(2).await;
        f.identities.leave_unprocessed_once(&b.identity_id);
        let report = f
            .service
            .apply(&[
                change(1, ChangeKind::Remove, Some(&a), None),
                change(2, ChangeKind::Remove, Some(&b), None),
            ])
            .await;
        assert!(report.failed.is_empty());
        assert_eq!(f.identities.delete_batches(), vec![2, 1]);
        assert_eq!(f.identities.count(), 0);
    }

    #[tokio::test]
    async fn only_the_changes_whose_deletes_failed_are_reported() {
        let f = fixture();
        let a = f.session(1).await;
        let b = f.session(2).await;
        let c = f.session(3).await;
        f.queues.fail_deletes_of(&b.queue.url);
        let report = f
            .service
            .apply(&[
                change(11, ChangeKind::Remove, Some(&a), None),
                change(12, ChangeKind::Remove, Some(&b), None),
                change(13, ChangeKind::Remove, Some(&c), None),
            ])
            .await;
        assert_eq!(report.failed, vec!["12".to_string()]);
        assert!(f.queues.queue(&a.queue.url).is_none());
        assert!(f.queues.queue(&c.queue.url).is_none());
    }

    #[tokio::test]
    async fn a_failed_identity_call_fails_every_change_it_carried() {
        let f = fixture();
        let a = f.session(1).await;
        let b = f.session(2).await;
        f.identities.fail_deletes(true);
        let report = f
            .service
            .apply(&[
                change(1, ChangeKind::Remove, Some(&a), None),
                change(2, ChangeKind::Remove, Some(&b), None),
            ])
            .await;
        assert_eq!(report.failed, vec!["1".to_string(), "2".to_string()]);
        assert_eq!(report.identities_deleted, 0);
        assert_eq!(f.queues.count(), 0, "queues are deleted all the same");
    }
}
