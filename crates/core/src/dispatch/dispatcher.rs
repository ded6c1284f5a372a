//! The dispatcher: the one path every message takes, one message (`/notify`, a receipt) or a
//! batch (a Kinesis batch). Each distinct target is resolved once; small fan-outs are sealed and
//! sent here and large ones handed to `sender`/`history` in payloads; everyone and large
//! accounts are planned for segment workers. Whatever a direct send or history write leaves
//! is handed on exactly as a large fan-out's would be, so it ends delivered or dead-lettered.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use crate::batch::cut;
use crate::clock::Clock;
use crate::dispatch::grouping::GroupReport;
use crate::dispatch::segment::{MAX_MESSAGES_PER_JOB, PlannedMessage, Scope, SegmentJob};
use crate::dispatch::segment::{SegmentWorker, segment_count};
use crate::dispatch::send::{Delivery, MAX_BATCH_ENTRIES, SendJob, Sender};
use crate::dispatch::{DispatchReport, DispatchSettings, Target};
use crate::history::HistoryTask;
use crate::history::receipts::UserNotifier;
use crate::history::write::{HistoryJob, HistoryWriter};
use crate::model::ids::UserId;
use crate::model::message::Message;
use crate::model::recipient::Recipient;
use crate::ports::{AsyncFunction, HandOffLimits, Invoker, PortError, PortErrorKind, SessionStore};

/// Routes messages to sessions.
#[derive(Clone)]
pub struct Dispatcher {
    pub(super) store: Arc<dyn SessionStore>,
    pub(super) sender: Sender,
    pub(super) history: HistoryWriter,
    pub(super) invoker: Arc<dyn Invoker>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) settings: DispatchSettings,
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

/// History jobs of one dispatch written at once, at most (a Kinesis batch of 100 records has
/// 100 jobs; one after another they would take 100 round trips).
const HISTORY_JOBS_AT_ONCE: usize = 16;

/// What writing the history jobs of a dispatch did (the `history` function's own answer is
/// `sqs_push_functions::events::HistoryOutcome`).
#[derive(Debug, Default)]
struct HistoryHandOff {
    /// `history` invocations for large jobs.
    batches: usize,
    /// Users whose row failed here and was handed to `history`.
    handed_on: usize,
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

    /// A segment worker for this dispatcher's store, invoker and settings.
    pub fn segment_worker(&self, margin: Duration) -> SegmentWorker {
        SegmentWorker::new(
            self.store.clone(),
            self.invoker.clone(),
            self.clock.clone(),
            self.settings.clone(),
            margin,
        )
    }

    /// Stamps the target onto the message and delivers it ([`dispatch_many`] with one message):
    /// SQS to sessions within their ttl (credentials may have lapsed; `/renew` reads the
    /// backlog), history to their users (and to a named user with no live session) unless the
    /// message is SQS-only. Everyone and a large account are planned for segment workers and
    /// answered as `accepted`. Fails only when work could not be handed on; a retry then
    /// repeats the same message id, which clients dedupe.
    ///
    /// [`dispatch_many`]: Self::dispatch_many
    pub async fn dispatch(
        &self,
        target: &Target,
        message: Message,
    ) -> Result<DispatchReport, PortError> {
        let report = self.dispatch_many(vec![(target.clone(), message)]).await?;
        Ok(DispatchReport::of_one(report))
    }

    /// Dispatches messages together: each distinct target resolved once, one send job for all
    /// of them (a queue's deliveries side by side, sharing SendMessageBatch calls), history per
    /// message. Everyone and large accounts are planned for segment workers, all of a target's
    /// messages in one job per scope. Deliveries and history rows still failing after the
    /// in-process retries are handed on to `sender`/`history` (or dead-lettered when SQS
    /// refuses them), never only counted. Fails as a whole, before or after sending; the
    /// caller retries with the same message ids.
    pub async fn dispatch_many(
        &self,
        items: Vec<(Target, Message)>,
    ) -> Result<GroupReport, PortError> {
        let mut report = GroupReport {
            messages: items.len(),
            message_id: items
                .first()
                .map(|(_, message)| message.id().to_string())
                .unwrap_or_default(),
            ..GroupReport::default()
        };
        // Distinct targets, in first-seen order, with the messages for each.
        let mut groups: Vec<(Target, Vec<Message>)> = Vec::new();
        for (target, mut message) in items {
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
                    self.plan_segments(&scopes, messages).await?;
                    report.segmented_targets += 1;
                    report.segmented_messages += messages.len();
                    *report.segments.get_or_insert(0) += scopes.len();
                    report.estimated_sessions = report.estimated_sessions.or(estimated_sessions);
                    continue;
                }
            };
            let live: Vec<&Recipient> = sessions
                .iter()
                // Within its ttl a session can still be renewed, and renew-after-sleep reads
                // what was sent while its credentials had lapsed.
                .filter(|session| session.is_live(now))
                .collect();
            report.sessions_matched += sessions.len();
            report.skipped_expired += sessions.len() - live.len();
            let users = history_users(target, &sessions);
            for message in messages {
                let text = String::from_utf8(message.to_json()).expect("serde_json writes UTF-8");
                let index = job.messages.len();
                job.deliveries
                    .extend(live.iter().map(|session| Delivery::to(session, index)));
                if message.writes_history() {
                    report.history_users += users.len();
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
        if job.deliveries.len() <= self.settings.report_urls_up_to {
            let mut seen = HashSet::new();
            report.queue_urls = Some(
                job.deliveries
                    .iter()
                    .filter(|delivery| seen.insert(delivery.queue_url.as_str()))
                    .map(|delivery| delivery.queue_url.clone())
                    .collect(),
            );
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

        let (sent, written) = futures::join!(self.send(job, &mut report), async {
            // Every job runs to its end, so one's failure loses none of the others' hand-ons.
            let results: Vec<Result<HistoryHandOff, PortError>> = futures::stream::iter(histories)
                .map(|history| self.write_history(history))
                .buffer_unordered(HISTORY_JOBS_AT_ONCE)
                .collect()
                .await;
            let mut outcome = HistoryHandOff::default();
            for written in results {
                let written = written?;
                outcome.batches += written.batches;
                outcome.handed_on += written.handed_on;
            }
            Ok::<_, PortError>(outcome)
        });
        // Both ran to the end, so neither's hand-ons are lost to the other's failure.
        sent?;
        let written = written?;
        report.history_batches = written.batches;
        report.history_handed_on = written.handed_on;
        tracing::info!(
            message_id = %report.message_id,
            messages = report.messages,
            targets = report.targets,
            segmented_targets = report.segmented_targets,
            segmented_messages = report.segmented_messages,
            matched = report.sessions_matched,
            expired = report.skipped_expired,
            deliveries = report.deliveries,
            queues = report.queues,
            sqs_calls = report.sqs_calls,
            sent_directly = report.sent_directly,
            gone = report.queues_gone,
            failed = report.failed,
            handed_on = report.handed_on,
            dead_lettered = report.dead_lettered,
            sender_batches = report.sender_batches,
            history_users = report.history_users,
            history_batches = report.history_batches,
            history_handed_on = report.history_handed_on,
            "dispatched"
        );
        Ok(report)
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
            Target::Channel(channel) => {
                // One key range: the channel's memberships. One page one row past the threshold
                // tells a large channel from a small one, as for an account.
                let page = self
                    .store
                    .channel_page(channel, None, self.settings.large_account + 1)
                    .await?;
                if page.next.is_some() {
                    return Ok(Reach::Segmented {
                        scopes: vec![Scope::Channel {
                            channel: channel.clone(),
                        }],
                        estimated_sessions: None,
                    });
                }
                // An ended session's membership waits for cleanup; it is no subscriber.
                let now = self.clock.now();
                page.recipients
                    .into_iter()
                    .filter(|recipient| recipient.is_live(now))
                    .collect()
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

    /// Sends a small job from here, settling what it leaves ([`Sender::send_or_hand_on`]);
    /// hands a large one to `sender` in payloads.
    async fn send(&self, job: SendJob, report: &mut GroupReport) -> Result<(), PortError> {
        if job.deliveries.len() > self.settings.direct_limit {
            report.sender_batches = self.hand_off_sends(job).await?;
            return Ok(());
        }
        let outcome = self
            .sender
            .send_or_hand_on(
                &job,
                None,
                self.invoker.as_ref(),
                self.settings.payload_limit,
            )
            .await?;
        report.sent_directly = outcome.report.sent;
        report.queues_gone = outcome.report.queues_gone;
        report.failed = outcome.report.failed + outcome.report.unsent;
        report.handed_on = outcome.handed_on;
        report.dead_lettered = outcome.dead_lettered;
        Ok(())
    }

    /// Hands a job to `sender` in payloads cut by count and serialized size, each carrying only
    /// the messages its deliveries use; returns how many payloads.
    async fn hand_off_sends(&self, job: SendJob) -> Result<usize, PortError> {
        // JSON escaping can grow a message's text: count it as written.
        let messages_bytes: usize = job
            .messages
            .iter()
            .map(|m| serde_json::to_string(m).map_or(m.len(), |json| json.len()) + 1)
            .sum();
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
            .hand_off_reserving(
                AsyncFunction::Sender,
                job.deliveries,
                HandOffLimits {
                    max_items: self.settings.sender_batch,
                    max_bytes: self.settings.payload_limit,
                },
                messages_bytes,
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

    /// Writes history directly for few users — handing the rows that still fail to `history`,
    /// whose failures Lambda retries and then dead-letters — and through `history` invocations
    /// for many.
    async fn write_history(&self, job: HistoryJob) -> Result<HistoryHandOff, PortError> {
        if job.user_ids.is_empty() {
            return Ok(HistoryHandOff::default());
        }
        let direct = job.user_ids.len() <= self.settings.direct_limit;
        let user_ids = if direct {
            let report = self.history.write(&job).await;
            if report.unwritten.is_empty() {
                return Ok(HistoryHandOff::default());
            }
            tracing::warn!(
                message_id = %job.message_id,
                users = report.unwritten.len(),
                "history rows not written here; handed to the history function"
            );
            report.unwritten
        } else {
            job.user_ids
        };
        let handed = user_ids.len();
        let limits = HandOffLimits {
            max_items: self.settings.history_batch,
            max_bytes: self.settings.payload_limit,
        };
        let (message_id, message, created) = (job.message_id, job.message, job.created);
        let batches = self
            .invoker
            .hand_off(AsyncFunction::History, user_ids, limits, |user_ids| {
                HistoryTask::Write(HistoryJob {
                    message_id: message_id.clone(),
                    message: message.clone(),
                    created,
                    user_ids,
                })
            })
            .await?;
        Ok(if direct {
            HistoryHandOff {
                batches: 0,
                handed_on: handed,
            }
        } else {
            HistoryHandOff {
                batches,
                handed_on: 0,
            }
        })
    }

    /// The scopes a broadcast is cut into, and the table's size estimate they were cut by.
    async fn broadcast_scopes(&self) -> (Vec<Scope>, Option<u64>) {
        let estimated = match self.store.estimated_count().await {
            Ok(count) => count,
            Err(error) => {
                tracing::warn!(%error, "no table size estimate; planning the configured segments");
                None
            }
        };
        let segments = segment_count(self.settings.broadcast_segments, estimated);
        (Scope::segments(segments), estimated)
    }

    /// Plans `messages` (stamped) for every scope: jobs of up to [`MAX_MESSAGES_PER_JOB`]
    /// messages and a quarter of the payload limit in message text (the rest of a `sender`
    /// payload is for deliveries), one per scope, async-invoked on `dispatcher`.
    async fn plan_segments(&self, scopes: &[Scope], messages: &[Message]) -> Result<(), PortError> {
        let created = self.clock.now();
        let planned: Vec<PlannedMessage> = messages
            .iter()
            .map(|message| PlannedMessage {
                message: String::from_utf8(message.to_json()).expect("serde_json writes UTF-8"),
                message_id: message.id().to_string(),
                created,
                history: message.writes_history(),
            })
            .collect();
        let chunks = cut(
            planned,
            MAX_MESSAGES_PER_JOB,
            self.settings.payload_limit / 4,
            0,
            |message| message.message.len(),
        );
        let jobs: Vec<SegmentJob> = chunks
            .iter()
            .flat_map(|chunk| {
                scopes.iter().map(|scope| SegmentJob {
                    messages: chunk.clone(),
                    scope: scope.clone(),
                    start: None,
                    generation: 0,
                })
            })
            .collect();
        let invocations = jobs.iter().map(|job| {
            let payload = serde_json::to_vec(job).expect("a segment job serializes");
            self.invoker
                .invoke_async(AsyncFunction::Dispatcher, payload)
        });
        futures::future::try_join_all(invocations).await?;
        tracing::info!(
            message_id = messages.first().map(|message| message.id().as_str()),
            messages = messages.len(),
            scopes = scopes.len(),
            jobs = jobs.len(),
            "segmented dispatch planned"
        );
        Ok(())
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

#[async_trait]
impl crate::upstream::presence::ChannelNotifier for Dispatcher {
    async fn notify_channel(
        &self,
        channel: &crate::model::channel::ChannelName,
        message: Message,
    ) -> Result<(), PortError> {
        self.dispatch(&Target::Channel(channel.clone()), message)
            .await
            .map(|_| ())
    }
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
