//! Orphan queues: queues with the stage's names that no session row points to, left by a
//! create that failed half-way or a cleanup that never ran.
//!
//! A sweep runs in steps, each within a deadline: a step reads the names the session rows hold,
//! then pages through the queue listing from the [`SweepCursor`] it was given until its
//! deadline, and answers the cursor the next step starts from. The scheduled sweep is the
//! cleanup function handing each next step to itself; `GET /cleanup?next=` is the same by hand.

use std::collections::HashSet;
use std::sync::Arc;
use tokio::time::Instant;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::model::session::QueueRef;
use crate::ports::PortError;
use crate::ports::{QueuePage, QueueService, SessionStore};
use crate::session::queue_name::QueueNameGenerator;

/// What a sweep found and did, as `/cleanup` reports it: one step's, or a run's so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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

impl OrphanReport {
    fn add(&mut self, other: &OrphanReport) {
        self.queues_scanned += other.queues_scanned;
        self.orphans_found += other.orphans_found;
        self.deleted += other.deleted;
        self.skipped_young += other.skipped_young;
        self.failed += other.failed;
    }
}

/// Which listing a sweep is paging through: the stage's names, then (while an upgrade keeps
/// them reachable) its names from before the `_` separator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Listing {
    /// `<prefix>_…`
    #[default]
    Current,
    /// `<prefix>-…` of exactly the old shape.
    Legacy,
}

/// Where a sweep run stands between two steps. `{}` starts a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SweepCursor {
    /// The listing the next page comes from.
    pub listing: Listing,
    /// That listing's continuation token; none for its first page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Steps run so far.
    pub steps: u32,
    /// What the steps so far found and did.
    pub totals: OrphanReport,
}

/// What one step did, and where the run goes on from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepStep {
    /// This step's own figures.
    pub step: OrphanReport,
    /// The run's figures, this step included, and its step count.
    pub run: SweepCursor,
    /// Where the next step starts; none when the run has listed everything.
    pub next: Option<SweepCursor>,
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
    /// Queues per listing page (1–1,000, SQS's most).
    pub page_size: u16,
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

    /// One step of a run: reads the names the session rows hold, then deletes the orphans of
    /// one listing page after another, from `cursor`, until the listing ends or `deadline`
    /// passes (a step always does at least one page, so every run ends).
    ///
    /// An orphan is deleted only when it is older than the grace period *at the moment the rows
    /// were read*: a create makes its queue, then writes its row within seconds, so a queue
    /// older than that whose row the read did not see has no row. This holds however long
    /// after the read the queue is listed, which is what lets a run span many steps.
    pub async fn step(
        &self,
        cursor: SweepCursor,
        deadline: Instant,
    ) -> Result<SweepStep, PortError> {
        let rows_read_at = self.clock.now();
        let named = self.named_queues().await?;
        let mut step = OrphanReport::default();
        let mut listing = cursor.listing;
        let mut token = cursor.token.clone();
        let finished = loop {
            let page = self.page(listing, token.as_deref()).await?;
            step.add(&self.sweep_page(&page.queues, &named, rows_read_at).await);
            match (page.next, listing) {
                (Some(next), _) => token = Some(next),
                (None, Listing::Current) if self.settings.legacy_names => {
                    listing = Listing::Legacy;
                    token = None;
                }
                (None, _) => break true,
            }
            if Instant::now() >= deadline {
                break false;
            }
        };
        let mut run = SweepCursor {
            steps: cursor.steps + 1,
            totals: cursor.totals,
            ..SweepCursor::default()
        };
        run.totals.add(&step);
        tracing::info!(
            step = run.steps,
            queues_scanned = step.queues_scanned,
            orphans_found = step.orphans_found,
            deleted = step.deleted,
            skipped_young = step.skipped_young,
            failed = step.failed,
            run_deleted = run.totals.deleted,
            finished,
            "orphan sweep step"
        );
        let next = (!finished).then(|| SweepCursor {
            listing,
            token,
            ..run.clone()
        });
        Ok(SweepStep { step, run, next })
    }

    /// A whole run in one go, steps back to back with no deadline: for tests and small stages.
    pub async fn sweep(&self) -> Result<OrphanReport, PortError> {
        let mut cursor = SweepCursor::default();
        loop {
            let step = self.step(cursor, Instant::now()).await?;
            match step.next {
                Some(next) => cursor = next,
                None => return Ok(step.run.totals),
            }
        }
    }

    /// One page of `listing`, keeping only the names this stage makes: `<prefix>-` also
    /// lists other stages' queues (`prod-eu`'s for `prod`), so the legacy listing keeps names
    /// of exactly this stage's old shape.
    async fn page(&self, listing: Listing, token: Option<&str>) -> Result<QueuePage, PortError> {
        let names = &self.settings.queue_names;
        let (prefix, owns): (String, fn(&QueueNameGenerator, &str) -> bool) = match listing {
            Listing::Current => (names.name_prefix(), QueueNameGenerator::owns),
            Listing::Legacy => (names.legacy_name_prefix(), QueueNameGenerator::owns_legacy),
        };
        let mut page = self
            .queues
            .list_queues_page(&prefix, token, self.settings.page_size)
            .await?;
        page.queues.retain(|queue| owns(names, &queue.name));
        Ok(page)
    }

    /// Deletes the orphans among `queues` that were old when the rows were read.
    async fn sweep_page(
        &self,
        queues: &[QueueRef],
        named: &HashSet<String>,
        rows_read_at: u64,
    ) -> OrphanReport {
        // Owned queues, collected first: a stream of futures borrowing from an iterator's
        // closures is not `Send` for axum.
        let orphans: Vec<QueueRef> = queues
            .iter()
            .filter(|queue| !named.contains(&queue.name))
            .cloned()
            .collect();
        let orphans_found = orphans.len();
        let outcomes: Vec<Outcome> = futures::stream::iter(orphans)
            .map(|queue| async move { self.delete_if_old(&queue, rows_read_at).await })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        let count = |wanted: fn(&Outcome) -> bool| outcomes.iter().filter(|o| wanted(o)).count();
        OrphanReport {
            queues_scanned: queues.len(),
            orphans_found,
            deleted: count(|o| matches!(o, Outcome::Deleted)),
            skipped_young: count(|o| matches!(o, Outcome::Young)),
            failed: count(|o| matches!(o, Outcome::Failed)),
        }
    }

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

    async fn delete_if_old(&self, queue: &QueueRef, rows_read_at: u64) -> Outcome {
        let created = match self.queues.created_at(&queue.url).await {
            Ok(created) => created,
            Err(error) if error.is_not_found() => return Outcome::Deleted,
            Err(error) => {
                tracing::warn!(queue = %queue.name, %error, "could not read an orphan's age");
                return Outcome::Failed;
            }
        };
        if rows_read_at.saturating_sub(created) < self.settings.grace_seconds {
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

    /// A stage's stores in memory, on a manual clock, and the session service over them.
    struct Stage {
        clock: Arc<ManualClock>,
        store: Arc<MemorySessionStore>,
        queues: Arc<MemoryQueues>,
        names: QueueNameGenerator,
        sessions: SessionService,
    }

    impl Stage {
        fn new() -> Self {
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
            Self {
                clock,
                store,
                queues,
                names,
                sessions,
            }
        }
    }

    #[tokio::test]
    async fn old_orphans_go_while_live_young_and_foreign_queues_stay() {
        let Stage {
            clock,
            store,
            queues,
            names,
            sessions,
        } = Stage::new();
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
                page_size: 1000,
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
                    page_size: 1000,
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

    /// A run over 2,050 orphans in pages of 100 with a deadline already passed: each step does
    /// one page and answers a cursor; fed back (through JSON, as the function hands it on),
    /// the cursors carry the run to its end, every orphan gone, the live queue and a queue
    /// made mid-run (young) kept, the totals adding up.
    #[tokio::test]
    async fn a_run_past_its_deadline_goes_on_page_by_page_from_its_cursor() {
        let Stage {
            clock,
            store,
            queues,
            names,
            sessions,
        } = Stage::new();
        let mut orphans = Vec::new();
        for _ in 0..2050 {
            let spec = QueueSpec {
                name: names.generate(),
                owner_identity_id: "nobody".into(),
                retention_seconds: None,
            };
            orphans.push(queues.create_queue(&spec).await.unwrap());
        }
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
        let sweeper = OrphanSweeper::new(
            store,
            queues.clone(),
            clock.clone(),
            OrphanSettings {
                queue_names: names.clone(),
                grace_seconds: 600,
                concurrency: 8,
                scan_segments: 2,
                legacy_names: false,
                page_size: 100,
            },
        );

        let mut cursor = SweepCursor::default();
        let mut young = None;
        let last = loop {
            let step = sweeper.step(cursor, Instant::now()).await.unwrap();
            assert!(step.step.queues_scanned <= 100, "{:?}", step.step);
            if young.is_none() {
                let spec = QueueSpec {
                    name: names.generate(),
                    owner_identity_id: "nobody".into(),
                    retention_seconds: None,
                };
                young = Some(queues.create_queue(&spec).await.unwrap());
            }
            match step.next {
                Some(next) => {
                    let handed_on = serde_json::to_string(&next).unwrap();
                    cursor = serde_json::from_str(&handed_on).unwrap();
                }
                None => break step.run,
            }
        };
        assert!(last.steps >= 21, "2,052 queues in pages of 100: {last:?}");
        assert_eq!(last.totals.deleted, 2050, "{last:?}");
        assert_eq!(last.totals.failed, 0, "{last:?}");
        assert!(
            orphans
                .iter()
                .all(|queue| queues.queue(&queue.url).is_none())
        );
        assert!(
            queues.queue(&live.queue.url).is_some(),
            "the live queue stays"
        );
        let young = young.unwrap();
        assert!(
            queues.queue(&young.url).is_some(),
            "the mid-run queue stays"
        );
    }

    #[test]
    fn an_empty_object_starts_a_run_and_unknown_cursor_fields_are_refused() {
        let start: SweepCursor = serde_json::from_str("{}").unwrap();
        assert_eq!(start, SweepCursor::default());
        let error = serde_json::from_str::<SweepCursor>(r#"{"tokn":"x"}"#).unwrap_err();
        assert!(error.to_string().contains("tokn"), "{error}");
    }
}
