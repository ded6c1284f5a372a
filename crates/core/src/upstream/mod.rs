//! Browser to server: the consumer of the shared upstream queue (docs/architecture.md,
//! "Upstream"). A message is accepted only when SQS's `SenderId` names the browser role and a
//! live session, the envelope names that same session, its timestamp is recent, its
//! `(session, seq)` is new and the session's and account's rate buckets have a token. Accepted
//! messages are routed: `read` to the read receipts, `heartbeat` to presence, any other type to
//! the app's target.
//!
//! Invalid messages are dropped (deleted and counted), never retried; only a failure to route
//! makes a message fail, so SQS redelivers it (then dead-letters it).
//!
//! Not for: reading SQS events or talking to AWS (crates/functions and crates/aws do).

pub mod bucket;
pub mod envelope;
pub mod presence;
pub mod sender;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::clock::{Clock, rfc3339_millis};
use crate::history::receipts::ReceiptService;
use crate::model::ids::UserId;
use crate::model::session::Session;
use crate::ports::{AppMessage, AppTarget, PortError, PortErrorKind, SessionStore, UpstreamStore};
use bucket::Rate;
use envelope::{Envelope, Kind};
use presence::PresenceService;
use sender::{BrowserSender, browser_sender, role_session_name};

/// How the consumer judges messages; read once from config.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// The browser role's RoleId (`AROA…`): the SenderId prefix of every browser session.
    pub browser_role_id: String,
    /// Each session's bucket.
    pub session_rate: Rate,
    /// Each account's bucket (all its sessions together).
    pub account_rate: Rate,
    /// Strikes (spoofed sessions, messages over a limit) after which `/renew` refuses the session.
    pub strike_limit: u64,
    /// How far a message's `ts` may be from the consumer's clock, milliseconds.
    pub max_skew_millis: u64,
    /// How long a `(session, seq)` is remembered, seconds.
    pub seq_ttl_seconds: u64,
    /// A session is online while its last heartbeat is younger than this, seconds.
    pub online_seconds: u64,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            browser_role_id: String::new(),
            // Pusher's client events: 10 a second.
            session_rate: Rate {
                per_second: 10,
                burst: 20,
            },
            account_rate: Rate {
                per_second: 1_000,
                burst: 2_000,
            },
            strike_limit: 20,
            max_skew_millis: 5 * 60 * 1_000,
            seq_ttl_seconds: 86_400,
            online_seconds: 90,
        }
    }
}

/// One message from the upstream queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRecord {
    /// SQS's message id: what a failure is reported by.
    pub message_id: String,
    /// SQS's `SenderId` attribute.
    pub sender_id: Option<String>,
    /// The message body.
    pub body: String,
}

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Routed to the app, or handled (`read`, `heartbeat`).
    Accepted,
    /// Already processed: a replay or a redelivery.
    Duplicate,
    /// Dropped and deleted, for the reason given.
    Dropped(Drop),
    /// Routing failed: SQS redelivers it.
    Failed,
}

/// Why a message was dropped. Each is one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Drop {
    /// Not sent by a browser session (another principal of the account, no SenderId).
    NotBrowser,
    /// Not JSON, a bad field, too large.
    Malformed,
    /// The envelope names a session that is not the sender's (or has ended): a strike.
    WrongSession,
    /// `ts` too far from now.
    Stale,
    /// Over the session's or the account's rate: a strike.
    OverLimit,
}

impl Drop {
    /// The metric name this drop is counted under.
    pub fn metric(self) -> &'static str {
        match self {
            Self::NotBrowser => "UpstreamNotBrowser",
            Self::Malformed => "UpstreamMalformed",
            Self::WrongSession => "UpstreamWrongSession",
            Self::Stale => "UpstreamStale",
            Self::OverLimit => "UpstreamOverLimit",
        }
    }
}

/// What a batch came to: the ids to report as failed, and counts by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Message ids whose routing failed (the Lambda's batchItemFailures).
    pub failed: Vec<String>,
    /// Accepted messages.
    pub accepted: u64,
    /// Duplicates skipped.
    pub duplicates: u64,
    /// Dropped messages by reason.
    pub dropped: BTreeMap<Drop, u64>,
}

impl BatchReport {
    fn count(&mut self, message_id: &str, outcome: Outcome) {
        match outcome {
            Outcome::Accepted => self.accepted += 1,
            Outcome::Duplicate => self.duplicates += 1,
            Outcome::Dropped(reason) => *self.dropped.entry(reason).or_default() += 1,
            Outcome::Failed => self.failed.push(message_id.to_string()),
        }
    }
}

/// The consumer: verifies and routes upstream messages.
#[derive(Clone)]
pub struct Consumer {
    sessions: Arc<dyn SessionStore>,
    store: Arc<dyn UpstreamStore>,
    app: Arc<dyn AppTarget>,
    receipts: ReceiptService,
    presence: PresenceService,
    clock: Arc<dyn Clock>,
    settings: UpstreamSettings,
}

/// A bucket update that lost a race is tried again this many times before the message is
/// treated as over the limit.
const BUCKET_ATTEMPTS: usize = 4;

impl Consumer {
    /// Wires the consumer to its ports.
    pub fn new(
        sessions: Arc<dyn SessionStore>,
        store: Arc<dyn UpstreamStore>,
        app: Arc<dyn AppTarget>,
        receipts: ReceiptService,
        presence: PresenceService,
        clock: Arc<dyn Clock>,
        settings: UpstreamSettings,
    ) -> Self {
        Self {
            sessions,
            store,
            app,
            receipts,
            presence,
            clock,
            settings,
        }
    }

    /// Handles a batch in order (a session's messages keep the order SQS gave them); the
    /// session rows it reads are read once per batch.
    pub async fn handle(&self, records: &[UpstreamRecord]) -> BatchReport {
        let mut report = BatchReport::default();
        let mut rows: HashMap<(UserId, String), Option<Session>> = HashMap::new();
        for record in records {
            let outcome = self.one(record, &mut rows).await;
            if let Outcome::Dropped(reason) = &outcome {
                tracing::info!(message_id = %record.message_id, reason = reason.metric(), "upstream message dropped");
            }
            report.count(&record.message_id, outcome);
        }
        tracing::info!(
            records = records.len(),
            accepted = report.accepted,
            duplicates = report.duplicates,
            dropped = report.dropped.values().sum::<u64>(),
            failed = report.failed.len(),
            "upstream batch handled"
        );
        report
    }

    async fn one(
        &self,
        record: &UpstreamRecord,
        rows: &mut HashMap<(UserId, String), Option<Session>>,
    ) -> Outcome {
        let Ok(sender) =
            browser_sender(record.sender_id.as_deref(), &self.settings.browser_role_id)
        else {
            return Outcome::Dropped(Drop::NotBrowser);
        };
        let envelope = match envelope::parse(&record.body) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::info!(message_id = %record.message_id, %error, "upstream envelope refused");
                return Outcome::Dropped(Drop::Malformed);
            }
        };
        let now_millis = self.clock.now_millis();
        if now_millis.abs_diff(envelope.ts) > self.settings.max_skew_millis {
            return Outcome::Dropped(Drop::Stale);
        }
        let key = (sender.user_id, envelope.session_id.as_str().to_string());
        if !rows.contains_key(&key) {
            match self
                .sessions
                .get(sender.user_id, &envelope.session_id)
                .await
            {
                Ok(row) => {
                    rows.insert(key.clone(), row);
                }
                Err(error) => return self.failed("read the session", &error),
            }
        }
        let session = match &rows[&key] {
            Some(session)
                if session.is_live(now_millis / 1_000)
                    && role_session_name(session.user_id, &session.identity_id)
                        == sender.session_name =>
            {
                session.clone()
            }
            _ => {
                self.strike(&sender).await;
                return Outcome::Dropped(Drop::WrongSession);
            }
        };
        let expires = now_millis / 1_000 + self.settings.seq_ttl_seconds;
        match self
            .store
            .claim_seq(&sender.session_name, envelope.seq, expires)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Outcome::Duplicate,
            Err(error) => return self.failed("claim the seq", &error),
        }
        let within = match self.within_limits(&sender, &session, now_millis).await {
            Ok(within) => within,
            Err(error) => {
                return self
                    .release(&sender, &envelope, "take a token", &error)
                    .await;
            }
        };
        if !within {
            self.strike(&sender).await;
            return Outcome::Dropped(Drop::OverLimit);
        }
        match self.route(&session, &envelope, now_millis).await {
            Ok(()) => Outcome::Accepted,
            Err(error) => self.release(&sender, &envelope, "route", &error).await,
        }
    }

    async fn route(
        &self,
        session: &Session,
        envelope: &Envelope,
        now_millis: u64,
    ) -> Result<(), PortError> {
        match &envelope.kind {
            Kind::Read(ids) => self
                .receipts
                .mark_read(session.user_id, ids)
                .await
                .map(|_| ()),
            Kind::Heartbeat => self.presence.beat(session, envelope.seq, now_millis).await,
            Kind::App { kind, body } => {
                self.app
                    .deliver(&AppMessage {
                        account_id: session.account_id,
                        user_id: session.user_id,
                        session_id: session.session_id.clone(),
                        kind: kind.clone(),
                        body: body.clone(),
                        received_at: rfc3339_millis(now_millis),
                    })
                    .await
            }
        }
    }

    /// Takes a token from the session's bucket, then from the account's.
    async fn within_limits(
        &self,
        sender: &BrowserSender,
        session: &Session,
        now_millis: u64,
    ) -> Result<bool, PortError> {
        let session_key = format!("session#{}", sender.session_name);
        if !self
            .take(&session_key, self.settings.session_rate, now_millis)
            .await?
        {
            return Ok(false);
        }
        let account_key = format!("account#{}", session.account_id);
        self.take(&account_key, self.settings.account_rate, now_millis)
            .await
    }

    async fn take(&self, key: &str, rate: Rate, now_millis: u64) -> Result<bool, PortError> {
        // A bucket untouched for a day is full again anyway.
        let expires = now_millis / 1_000 + 86_400;
        for _ in 0..BUCKET_ATTEMPTS {
            let previous = self.store.bucket(key).await?;
            let Some(next) = rate.take(previous, now_millis) else {
                return Ok(false);
            };
            match self.store.put_bucket(key, previous, next, expires).await {
                Ok(()) => return Ok(true),
                Err(error) if error.kind == PortErrorKind::ConditionFailed => continue,
                Err(error) => return Err(error),
            }
        }
        Ok(false)
    }

    async fn strike(&self, sender: &BrowserSender) {
        let expires = self.clock.now() + 86_400;
        match self.store.add_strike(&sender.session_name, expires).await {
            Ok(strikes) if strikes == self.settings.strike_limit => {
                tracing::warn!(user_id = %sender.user_id, strikes, "upstream sender reached the strike limit: renew refuses it");
            }
            Ok(_) => {}
            // The drop stands; a strike lost to a failed write only delays the refusal.
            Err(error) => tracing::warn!(%error, "an upstream strike was not recorded"),
        }
    }

    fn failed(&self, what: &str, error: &PortError) -> Outcome {
        tracing::warn!(%error, what, "upstream message left to SQS's retry");
        Outcome::Failed
    }

    /// Routing failed: forget the seq so the redelivery is processed, and fail the message.
    async fn release(
        &self,
        sender: &BrowserSender,
        envelope: &Envelope,
        what: &str,
        error: &PortError,
    ) -> Outcome {
        if let Err(release) = self
            .store
            .release_seq(&sender.session_name, envelope.seq)
            .await
        {
            // The redelivery will look like a replay and be skipped: logged so it can be found.
            tracing::error!(error = %release, seq = envelope.seq, "a failed upstream message's seq was not released");
        }
        self.failed(what, error)
    }
}

/// Whether `/renew` still serves a session: `None`, or why not.
pub async fn renew_refusal(
    store: &dyn UpstreamStore,
    session: &Session,
    strike_limit: u64,
) -> Result<Option<String>, PortError> {
    let name = role_session_name(session.user_id, &session.identity_id);
    let strikes = store.strikes(&name).await?;
    Ok((strikes >= strike_limit).then(|| {
        format!(
            "session {} of user {} is refused renewal: its upstream messages broke the limits {strikes} times (limit {strike_limit}); create a new session",
            session.session_id, session.user_id
        )
    }))
}

#[cfg(test)]
mod tests;

/// Where the app's upstream messages go, as configured (`SQS_PUSH_APP_TARGET`): an SQS queue (by
/// URL or ARN), or the ARN of a Lambda function. The template passes the `appTarget` parameter
/// as it is, so `none` reads as no target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppTargetSpec {
    /// An SQS queue, by URL.
    Queue(String),
    /// A Lambda function, by ARN (invoked asynchronously).
    Function(String),
}

impl std::str::FromStr for AppTargetSpec {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        if raw.starts_with("https://") || raw.starts_with("http://") {
            return Ok(Self::Queue(raw.to_string()));
        }
        // arn:<partition>:sqs:<region>:<account>:<name> → the queue's URL.
        if let ["arn", partition, "sqs", region, account, name] =
            raw.split(':').collect::<Vec<_>>().as_slice()
        {
            let domain = if *partition == "aws-cn" {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            return Ok(Self::Queue(format!(
                "https://sqs.{region}.{domain}/{account}/{name}"
            )));
        }
        if raw.starts_with("arn:") && raw.contains(":lambda:") && raw.contains(":function:") {
            return Ok(Self::Function(raw.to_string()));
        }
        Err(format!(
            "must be an SQS queue's URL or ARN, a Lambda function's ARN, or none, not {raw:?}"
        ))
    }
}

/// Reads the consumer's settings (`SQS_PUSH_BROWSER_ROLE_ID`, `SQS_PUSH_UPSTREAM_*`,
/// `SQS_PUSH_ONLINE_SECONDS`); unset ones keep the defaults.
pub fn settings_from_lookup(
    lookup: crate::settings::Lookup<'_>,
) -> Result<UpstreamSettings, crate::settings::ConfigError> {
    use crate::settings::{setting, text};
    let default = UpstreamSettings::default();
    Ok(UpstreamSettings {
        browser_role_id: text(lookup, "SQS_PUSH_BROWSER_ROLE_ID").unwrap_or_default(),
        session_rate: Rate {
            per_second: setting(lookup, "SQS_PUSH_UPSTREAM_SESSION_RATE", 1..=10_000)?
                .unwrap_or(default.session_rate.per_second),
            burst: setting(lookup, "SQS_PUSH_UPSTREAM_SESSION_BURST", 1..=100_000)?
                .unwrap_or(default.session_rate.burst),
        },
        account_rate: Rate {
            per_second: setting(lookup, "SQS_PUSH_UPSTREAM_ACCOUNT_RATE", 1..=1_000_000)?
                .unwrap_or(default.account_rate.per_second),
            burst: setting(lookup, "SQS_PUSH_UPSTREAM_ACCOUNT_BURST", 1..=10_000_000)?
                .unwrap_or(default.account_rate.burst),
        },
        strike_limit: setting(lookup, "SQS_PUSH_UPSTREAM_STRIKE_LIMIT", 1..=1_000_000)?
            .unwrap_or(default.strike_limit),
        online_seconds: setting(lookup, "SQS_PUSH_ONLINE_SECONDS", 1..=3_600)?
            .unwrap_or(default.online_seconds),
        ..default
    })
}
