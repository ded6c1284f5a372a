//! Orphan queues: queues with the stage's names that no session row points to, left by a
//! create that failed half-way or a cleanup that never ran. `/cleanup` sweeps them.

use std::collections::HashSet;
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;

use crate::clock::Clock;
use crate::model::session::QueueRef;
use crate::ports::PortError;
use crate::ports::{QueueService, SessionStore};
use crate::session::queue_name::QueueNameGenerator;

/// What one sweep found and did, as `/cleanup` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrphanReport {
    /// Queues with the stage's names.
    pub queues_scanned: usize,
    /// Of those, queues no session row names.
    pub orphans_found: usize,
    /// Orphans deleted (or found already gone).
    pub deleted: usize,
    /// Orphans younger than the grace period, left alone: their session may still be being made.
    pub skipped_young: usize,
    /// Orphans whose delete failed (logged with the queue).
    pub failed: usize,
}

/// How orphans are recognised; read once from config.
#[derive(Debug, Clone)]
pub struct OrphanSettings {
    /// Only names this generator makes are touched.
    pub queue_names: QueueNameGenerator,
    /// Queues younger than this are never deleted.
    pub grace_seconds: u64,
    /// Queue calls in flight at once.
    pub concurrency: usize,
    /// The sessions table is read in this many parallel scan segments.
    pub scan_segments: u32,
    /// Also sweep the stage's names from before the `_` separator (`<prefix>-<43>`), while an
    /// upgrade keeps them reachable (`SQS_PUSH_LEGACY_QUEUE_NAMES`).
    pub legacy_names: bool,
}

/// Rows per scan page while collecting the queue names the sessions hold.
const SCAN_PAGE: usize = 2_000;

/// Finds and deletes orphan queues.
#[derive(Clone)]
pub struct OrphanSweeper {
    store: Arc<dyn SessionStore>,
    queues: Arc<dyn QueueService>,
    clock: Arc<dyn Clock>,
    settings: OrphanSettings,
}

impl OrphanSweeper {
    /// The names of the queues the session rows hold, read segment by segment with the routing
    /// projection (a queue's name is the last part of its URL).
    async fn named_queues(&self) -> Result<HashSet<String>, PortError> {
        let total = self.settings.scan_segments.max(1);
        let segments = (0..total).map(|segment| async move {
            let mut names = Vec::new();
            let mut start = None;
            loop {
                let page = self
                    .store
                    .scan_page(segment, total, start.as_ref(), SCAN_PAGE)
                    .await?;
                names.extend(page.recipients.into_iter().map(|recipient| {
                    let name = recipient.queue_url.rsplit('/').next().unwrap_or_default();
                    name.to_string()
                }));
                match page.next {
                    Some(next) => start = Some(next),
                    None => return Ok::<_, PortError>(names),
                }
            }
        });
        let per_segment = futures::future::try_join_all(segments).await?;
        Ok(per_segment.into_iter().flatten().collect())
    }
}

enum Outcome {
    Deleted,
    Young,
    Failed,
}

impl OrphanSweeper {
    /// Wires the sweeper to its ports.
    pub fn new(
        store: Arc<dyn SessionStore>,
        queues: Arc<dyn QueueService>,
        clock: Arc<dyn Clock>,
        settings: OrphanSettings,
    ) -> Self {
        Self {
            store,
            queues,
            clock,
            settings,
        }
    }

    /// Lists the stage's queues, then the sessions, and deletes the queues no row names that
    /// are older than the grace period.
    ///
    /// Queues are listed before rows are read: a create writes its row after making its queue,
    /// so a listed queue whose row is not yet readable belongs to a create in flight, and the
    /// grace period keeps it.
    pub async fn sweep(&self) -> Result<OrphanReport, PortError> {
        let names = &self.settings.queue_names;
        let mut queues: Vec<QueueRef> = self
            .queues
            .list_queues(&names.name_prefix())
            .await?
            .into_iter()
            .filter(|queue| names.owns(&queue.name))
            .collect();
        if self.settings.legacy_names {
            // `<prefix>-` lists other stages' queues too (`prod-eu`'s for `prod`): only names of
            // exactly this stage's old shape are kept.
            let legacy = self.queues.list_queues(&names.legacy_name_prefix()).await?;
            queues.extend(legacy.into_iter().filter(|q| names.owns_legacy(&q.name)));
        }
        let named = self.named_queues().await?;
        // Owned queues, collected first: a stream of futures borrowing from an iterator's
        // closures is not `Send` for axum.
        let orphans: Vec<QueueRef> = queues
            .iter()
            .filter(|queue| !named.contains(&queue.name))
            .cloned()
            .collect();
        let orphans_found = orphans.len();

        let now = self.clock.now();
        let outcomes: Vec<Outcome> = futures::stream::iter(orphans)
            .map(|queue| async move { self.delete_if_old(&queue, now).await })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let count = |wanted: fn(&Outcome) -> bool| outcomes.iter().filter(|o| wanted(o)).count();
        let report = OrphanReport {
            queues_scanned: queues.len(),
            orphans_found,
            deleted: count(|o| matches!(o, Outcome::Deleted)),
            skipped_young: count(|o| matches!(o, Outcome::Young)),
            failed: count(|o| matches!(o, Outcome::Failed)),
        };
        tracing::info!(
            queues_scanned = report.queues_scanned,
            orphans_found = report.orphans_found,
            deleted = report.deleted,
            skipped_young = report.skipped_young,
            failed = report.failed,
            "orphan sweep"
        );
        Ok(report)
    }

    async fn delete_if_old(&self, queue: &QueueRef, now: u64) -> Outcome {
        let created = match self.queues.created_at(&queue.url).await {
            Ok(created) => created,
            Err(error) if error.is_not_found() => return Outcome::Deleted,
            Err(error) => {
                tracing::warn!(queue = %queue.name, %error, "could not read an orphan's age");
                return Outcome::Failed;
            }
        };
        if now.saturating_sub(created) < self.settings.grace_seconds {
            return Outcome::Young;
        }
        match self.queues.delete_queue(&queue.url).await {
            Ok(()) => Outcome::Deleted,
            Err(error) if error.is_not_found() => Outcome::Deleted,
            Err(error) => {
                tracing::warn!(queue = %queue.name, %error, "could not delete an orphan");
                Outcome::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::{AccountId, SessionId, UserId};
    use crate::ports::QueueSpec;
    use crate::session::{SessionService, SessionSettings};
    use crate::testing::ManualClock;
    use crate::testing::memory::{MemoryIdentities, MemoryQueues, MemorySessionStore};

    #[tokio::test]
    async fn old_orphans_go_while_live_young_and_foreign_queues_stay() {
        let clock = Arc::new(ManualClock::at(1_000_000));
        let store = Arc::new(MemorySessionStore::default());
        let queues = Arc::new(MemoryQueues::with_clock(clock.clone()));
        let identities = Arc::new(MemoryIdentities::new(clock.clone(), 3600));
        let names = QueueNameGenerator::new("sqs-push-test").unwrap();
        let sessions = SessionService::new(
            store.clone(),
            queues.clone(),
            identities,
            clock.clone(),
            SessionSettings {
                queue_names: names.clone(),
                refresh_margin_seconds: 900,
                idle_seconds: 3600,
                region: "us-east-1".into(),
            },
        );
        let make = |name: String| QueueSpec {
            name,
            owner_identity_id: "nobody".into(),
            retention_seconds: None,
        };
        let old_orphan = queues.create_queue(&make(names.generate())).await.unwrap();
        let foreign = queues
            .create_queue(&make(
                QueueNameGenerator::new("sqs-push-testx")
                    .unwrap()
                    .generate(),
            ))
            .await
            .unwrap();
        let odd = queues
            .create_queue(&make("sqs-push-test_short".into()))
            .await
            .unwrap();
        let live = sessions
            .create(
                AccountId::try_from(1).unwrap(),
                UserId::try_from(2).unwrap(),
                SessionId::parse("s").unwrap(),
                None,
            )
            .await
            .unwrap();
        clock.advance(601);
        let young_orphan = queues.create_queue(&make(names.generate())).await.unwrap();

        let sweeper = OrphanSweeper::new(
            store,
            queues.clone(),
            clock,
            OrphanSettings {
                queue_names: names,
                grace_seconds: 600,
                concurrency: 4,
                scan_segments: 3,
                legacy_names: false,
            },
        );
        let report = sweeper.sweep().await.unwrap();
        assert_eq!(
            report,
            OrphanReport {
                queues_scanned: 3,
                orphans_found: 2,
                deleted: 1,
                skipped_young: 1,
                failed: 0,
            }
        );
        assert!(queues.queue(&old_orphan.url).is_none());
        for kept in [&young_orphan, &foreign, &odd, &live.queue] {
            assert!(queues.queue(&kept.url).is_some(), "{}", kept.name);
        }
    }

    #[tokio::test]
    async fn with_legacy_names_the_stages_old_dash_orphans_go_too_and_nothing_of_another_stage() {
        let clock = Arc::new(ManualClock::at(1_000_000));
        let store = Arc::new(MemorySessionStore::default());
        let queues = Arc::new(MemoryQueues::with_clock(clock.clone()));
        let names = QueueNameGenerator::new("sqs-push-test").unwrap();
        let make = |name: String| QueueSpec {
            name,
            owner_identity_id: "nobody".into(),
            retention_seconds: None,
        };
        let random = "B".repeat(crate::session::queue_name::RANDOM_PART_LEN);
        let old_orphan = queues
            .create_queue(&make(format!("sqs-push-test-{random}")))
            .await
            .unwrap();
        let mut kept = Vec::new();
        for name in [
            format!("sqs-push-test-eu-{random}"), // stage test-eu, old name
            format!("sqs-push-test-eu_{random}"), // stage test-eu, new name
            "sqs-push-test-upstream".to_string(),
        ] {
            kept.push(queues.create_queue(&make(name)).await.unwrap());
        }
        clock.advance(601);
        let sweep = |legacy_names| {
            OrphanSweeper::new(
                store.clone(),
                queues.clone(),
                clock.clone(),
                OrphanSettings {
                    queue_names: names.clone(),
                    grace_seconds: 600,
                    concurrency: 4,
                    scan_segments: 1,
                    legacy_names,
                },
            )
        };
        let off = sweep(false).sweep().await.unwrap();
        assert_eq!(
            off.queues_scanned, 0,
            "without the setting old names are not the sweep's"
        );
        assert!(queues.queue(&old_orphan.url).is_some());

        let on = sweep(true).sweep().await.unwrap();
        assert_eq!((on.queues_scanned, on.deleted), (1, 1), "{on:?}");
        assert!(queues.queue(&old_orphan.url).is_none());
        for queue in &kept {
            assert!(queues.queue(&queue.url).is_some(), "{}", queue.name);
        }
    }
}
