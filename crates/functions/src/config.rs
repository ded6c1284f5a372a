//! The stack's configuration, read once at start into a typed struct with defaults.
//!
//! Every value comes from an `SQS_PUSH_*` environment variable on Lambda; the local stack fills
//! the same struct in code. A bad value is an error that names the variable.

use sqs_push_aws::CredentialFlow;
use sqs_push_core::channel::ChannelSettings;
use sqs_push_core::dispatch::DispatchSettings;
use sqs_push_core::session::queue_name::QueueNameGenerator;
pub use sqs_push_core::settings::ConfigError;
use sqs_push_core::settings::{Lookup, flag, parsed, required, setting, text};
use sqs_push_core::upstream::{self, AppTargetSpec, UpstreamSettings};

/// Everything the functions need to know about their stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Stage name: `local`, `dev`, `prod`… Every resource name derives from it.
    pub stage: String,
    /// AWS region.
    pub region: String,
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// One endpoint for every service (the emulator); `None` on AWS.
    pub endpoint_url: Option<String>,
    /// Fixed SDK credentials, only for the emulator; `None` on AWS (the Lambda role's).
    pub static_credentials: Option<(String, String)>,
    /// The identity pool.
    pub identity_pool_id: String,
    /// The pool's unauthenticated role.
    pub unauthenticated_role_arn: String,
    /// The identity pool's DeveloperProviderName (`sqs-push.<stage>` unless
    /// `SQS_PUSH_DEVELOPER_PROVIDER` says otherwise): the key of every session identity's login.
    pub developer_provider_name: String,
    /// Classic (default) or enhanced credentials.
    pub credential_flow: CredentialFlow,
    /// Lifetime of issued credentials in seconds.
    pub credential_seconds: u32,
    /// How long a session outlives its credentials.
    pub idle_seconds: u64,
    /// A repeated create replaces credentials that expire sooner than this.
    pub refresh_margin_seconds: u64,
    /// MaximumMessageSize set on every new queue.
    pub max_message_bytes: u32,
    /// Parallel scan segments the orphan sweep (`/cleanup`) reads the sessions table in.
    pub scan_segments: u32,
    /// SQS calls in flight at once in one process.
    pub send_concurrency: usize,
    /// How fan-outs are cut: direct limit, batch sizes, async-invoke payload limit.
    pub dispatch: DispatchSettings,
    /// How long history rows live, in seconds.
    pub history_ttl_seconds: u64,
    /// The sender stops starting calls this long before its Lambda deadline.
    pub sender_safety_millis: u64,
    /// `/cleanup` leaves queues younger than this alone: their session may be mid-create.
    pub orphan_grace_seconds: u64,
    /// Queue deletes in flight at once in cleanup and `/cleanup`.
    pub cleanup_concurrency: usize,
    /// How channels behave (`SQS_PUSH_MAX_CHANNELS_PER_SESSION`).
    pub channels: ChannelSettings,
    /// Whether the stage's queue names from before the `_` separator are still reachable (the
    /// template parameter `legacyQueueNames`), so `/cleanup` sweeps them too
    /// (`SQS_PUSH_LEGACY_QUEUE_NAMES`; docs/operations.md, "Upgrading").
    pub legacy_queue_names: bool,
    /// The stage's dead-letter queue (`SQS_PUSH_DEAD_LETTER_QUEUE_URL`), where work that cannot
    /// succeed as things stand is put for `sqs-push redrive`.
    pub dead_letter_queue_url: Option<String>,
    /// The stage's upstream queue (`SQS_PUSH_UPSTREAM_QUEUE_URL`): sessions may send to it, and
    /// create and renew answer with it; `None` switches the upstream grant off.
    pub upstream_queue_url: Option<String>,
    /// How the consumer judges upstream messages (`SQS_PUSH_BROWSER_ROLE_ID`,
    /// `SQS_PUSH_UPSTREAM_*`, `SQS_PUSH_ONLINE_SECONDS`).
    pub upstream: UpstreamSettings,
    /// Where the app's upstream messages go (`SQS_PUSH_APP_TARGET`); `None`: app types are
    /// refused by the consumer's target (they fail and dead-letter, nothing is lost).
    pub app_target: Option<AppTargetSpec>,
}

impl StackConfig {
    /// Defaults for a stage; the pool and role still have to be filled in.
    pub fn for_stage(stage: &str, region: &str) -> Self {
        Self {
            stage: stage.to_string(),
            region: region.to_string(),
            partition: "aws".to_string(),
            endpoint_url: None,
            static_credentials: None,
            identity_pool_id: String::new(),
            unauthenticated_role_arn: String::new(),
            developer_provider_name: format!("sqs-push.{stage}"),
            credential_flow: CredentialFlow::Classic,
            credential_seconds: 3600,
            idle_seconds: 3600,
            refresh_margin_seconds: 900,
            max_message_bytes: sqs_push_aws::queues::MAX_MESSAGE_BYTES,
            scan_segments: 4,
            send_concurrency: 128,
            dispatch: DispatchSettings::default(),
            history_ttl_seconds: 86_400,
            sender_safety_millis: 2_000,
            orphan_grace_seconds: 600,
            cleanup_concurrency: 16,
            channels: ChannelSettings::default(),
            legacy_queue_names: false,
            dead_letter_queue_url: None,
            upstream_queue_url: None,
            upstream: UpstreamSettings::default(),
            app_target: None,
        }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads values through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let lookup: Lookup<'_> = &lookup;
        let stage = required(lookup, "SQS_PUSH_STAGE")?;
        let region = lookup("SQS_PUSH_REGION")
            .or_else(|| lookup("AWS_REGION"))
            .ok_or(ConfigError {
                variable: "SQS_PUSH_REGION",
                problem: "is required (or AWS_REGION)".to_string(),
            })?;
        let default = Self::for_stage(&stage, &region);
        let mut config = Self {
            identity_pool_id: required(lookup, "SQS_PUSH_IDENTITY_POOL_ID")?,
            unauthenticated_role_arn: required(lookup, "SQS_PUSH_UNAUTH_ROLE_ARN")?,
            endpoint_url: text(lookup, "SQS_PUSH_ENDPOINT_URL"),
            dead_letter_queue_url: text(lookup, "SQS_PUSH_DEAD_LETTER_QUEUE_URL"),
            partition: lookup("SQS_PUSH_PARTITION").unwrap_or(default.partition),
            developer_provider_name: developer_provider(lookup)?
                .unwrap_or(default.developer_provider_name),
            credential_flow: parsed(lookup, "SQS_PUSH_CREDENTIAL_FLOW")?
                .unwrap_or(default.credential_flow),
            credential_seconds: setting(lookup, "SQS_PUSH_CREDENTIAL_SECONDS", 900..=43_200)?
                .unwrap_or(default.credential_seconds),
            idle_seconds: setting(lookup, "SQS_PUSH_IDLE_SECONDS", 0..=31_536_000)?
                .unwrap_or(default.idle_seconds),
            refresh_margin_seconds: setting(lookup, "SQS_PUSH_REFRESH_MARGIN_SECONDS", 0..=43_200)?
                .unwrap_or(default.refresh_margin_seconds),
            max_message_bytes: setting(lookup, "SQS_PUSH_MAX_MESSAGE_BYTES", 1024..=1_048_576)?
                .unwrap_or(default.max_message_bytes),
            scan_segments: setting(lookup, "SQS_PUSH_SCAN_SEGMENTS", 1..=64)?
                .unwrap_or(default.scan_segments),
            send_concurrency: setting(lookup, "SQS_PUSH_SEND_CONCURRENCY", 1..=1024)?
                .unwrap_or(default.send_concurrency),
            dispatch: DispatchSettings::from_lookup(lookup)?,
            history_ttl_seconds: setting(lookup, "SQS_PUSH_HISTORY_TTL_SECONDS", 60..=31_536_000)?
                .unwrap_or(default.history_ttl_seconds),
            sender_safety_millis: setting(lookup, "SQS_PUSH_SENDER_SAFETY_MILLIS", 0..=60_000)?
                .unwrap_or(default.sender_safety_millis),
            orphan_grace_seconds: setting(lookup, "SQS_PUSH_ORPHAN_GRACE_SECONDS", 0..=86_400)?
                .unwrap_or(default.orphan_grace_seconds),
            cleanup_concurrency: setting(lookup, "SQS_PUSH_CLEANUP_CONCURRENCY", 1..=256)?
                .unwrap_or(default.cleanup_concurrency),
            channels: ChannelSettings {
                // A subscribe writes the session's memberships in one DynamoDB transaction of
                // at most 100 items, and renew rewrites every one of them.
                max_per_session: setting(lookup, "SQS_PUSH_MAX_CHANNELS_PER_SESSION", 1..=1_000)?
                    .unwrap_or(default.channels.max_per_session),
            },
            legacy_queue_names: flag(lookup, "SQS_PUSH_LEGACY_QUEUE_NAMES")?
                .unwrap_or(default.legacy_queue_names),
            upstream_queue_url: text(lookup, "SQS_PUSH_UPSTREAM_QUEUE_URL"),
            upstream: upstream::settings_from_lookup(lookup)?,
            app_target: app_target(lookup)?,
            ..default
        };
        config.dispatch.limits.max_sqs_bytes = config.max_message_bytes as usize;
        config.queue_names()?;
        Ok(config)
    }

    /// `sqs-push-<stage>`: the prefix of every resource name.
    pub fn prefix(&self) -> String {
        format!("sqs-push-{}", self.stage)
    }

    /// The sessions table.
    pub fn sessions_table(&self) -> String {
        format!("{}-sessions", self.prefix())
    }

    /// The channels table: one row per (channel, session) membership.
    pub fn channels_table(&self) -> String {
        format!("{}-channels", self.prefix())
    }

    /// The history table.
    pub fn history_table(&self) -> String {
        format!("{}-history", self.prefix())
    }

    /// The shared queue browsers send upstream to.
    pub fn upstream_queue(&self) -> String {
        format!("{}-upstream", self.prefix())
    }

    /// The upstream queue's dead-letter queue.
    pub fn upstream_dead_letter_queue(&self) -> String {
        format!("{}-upstream-dlq", self.prefix())
    }

    /// The consumer's table: seqs seen, rate buckets, strikes, last heartbeats.
    pub fn upstream_table(&self) -> String {
        format!("{}-upstream", self.prefix())
    }

    /// The Kinesis event stream.
    pub fn events_stream(&self) -> String {
        format!("{}-events", self.prefix())
    }

    /// The identity pool's name (pool names allow no '-').
    pub fn identity_pool_name(&self) -> String {
        format!("sqs_push_{}", self.stage.replace('-', "_"))
    }

    /// The queue name generator; fails when the stage name is too long for SQS names.
    pub fn queue_names(&self) -> Result<QueueNameGenerator, ConfigError> {
        QueueNameGenerator::new(&self.prefix()).map_err(|error| ConfigError {
            variable: "SQS_PUSH_STAGE",
            problem: error.to_string(),
        })
    }
}

/// `SQS_PUSH_APP_TARGET`: `none` (the template parameter's default) or unset is no target.
fn app_target(lookup: Lookup<'_>) -> Result<Option<AppTargetSpec>, ConfigError> {
    let variable = "SQS_PUSH_APP_TARGET";
    text(lookup, variable)
        .filter(|raw| raw != "none")
        .map(|raw| {
            raw.parse()
                .map_err(|problem| ConfigError { variable, problem })
        })
        .transpose()
}

/// `SQS_PUSH_DEVELOPER_PROVIDER`, when set and not empty: Cognito takes 1-100 characters of
/// letters, digits, '_', '.' and '-'.
fn developer_provider(lookup: Lookup<'_>) -> Result<Option<String>, ConfigError> {
    let variable = "SQS_PUSH_DEVELOPER_PROVIDER";
    let Some(name) = text(lookup, variable) else {
        return Ok(None);
    };
    let valid = name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !valid {
        return Err(ConfigError {
            variable,
            problem: format!("must be 1-100 letters, digits, '_', '.' or '-', not {name:?}"),
        });
    }
    Ok(Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const MINIMAL: &[(&str, &str)] = &[
        ("SQS_PUSH_STAGE", "prod"),
        ("AWS_REGION", "eu-west-1"),
        ("SQS_PUSH_IDENTITY_POOL_ID", "eu-west-1:pool"),
        ("SQS_PUSH_UNAUTH_ROLE_ARN", "arn:aws:iam::1:role/r"),
    ];

    #[test]
    fn defaults_fill_everything_not_given() {
        let config = StackConfig::from_lookup(lookup(MINIMAL)).unwrap();
        assert_eq!(config.sessions_table(), "sqs-push-prod-sessions");
        assert_eq!(config.events_stream(), "sqs-push-prod-events");
        assert_eq!(config.identity_pool_name(), "sqs_push_prod");
        assert_eq!(config.credential_flow, CredentialFlow::Classic);
        assert_eq!(config.region, "eu-west-1");
        assert_eq!(config.credential_seconds, 3600);
        assert_eq!(config.orphan_grace_seconds, 600);
        assert_eq!(config.cleanup_concurrency, 16);
        assert_eq!(config.upstream_queue(), "sqs-push-prod-upstream");
        assert_eq!(config.upstream.online_seconds, 90);
        assert_eq!(config.app_target, None);
    }

    #[test]
    fn upstream_settings_are_read_and_a_bad_target_is_named() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("SQS_PUSH_BROWSER_ROLE_ID", "AROAEXAMPLE"));
        pairs.push(("SQS_PUSH_UPSTREAM_SESSION_BURST", "5"));
        pairs.push((
            "SQS_PUSH_APP_TARGET",
            "https://sqs.eu-west-1.amazonaws.com/1/app",
        ));
        let config = StackConfig::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(config.upstream.browser_role_id, "AROAEXAMPLE");
        assert_eq!(config.upstream.session_rate.burst, 5);
        assert!(matches!(config.app_target, Some(AppTargetSpec::Queue(_))));
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("SQS_PUSH_APP_TARGET", "my-queue"));
        let error = StackConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert_eq!(error.variable, "SQS_PUSH_APP_TARGET");
        let mut pairs = MINIMAL.to_vec();
        pairs.push((
            "SQS_PUSH_APP_TARGET",
            "arn:aws:sqs:eu-west-1:123456789012:app",
        ));
        let config = StackConfig::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(
            config.app_target,
            Some(AppTargetSpec::Queue(
                "https://sqs.eu-west-1.amazonaws.com/123456789012/app".into()
            ))
        );
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("SQS_PUSH_APP_TARGET", "none"));
        assert_eq!(
            StackConfig::from_lookup(lookup(&pairs)).unwrap().app_target,
            None
        );
    }

    #[test]
    fn the_developer_provider_is_named_after_the_stage_unless_set() {
        let config = StackConfig::from_lookup(lookup(MINIMAL)).unwrap();
        assert_eq!(config.developer_provider_name, "sqs-push.prod");
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("SQS_PUSH_DEVELOPER_PROVIDER", "login.example.com"));
        let config = StackConfig::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(config.developer_provider_name, "login.example.com");
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("SQS_PUSH_DEVELOPER_PROVIDER", "has space"));
        let error = StackConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert_eq!(error.variable, "SQS_PUSH_DEVELOPER_PROVIDER");
    }

    #[test]
    fn lifecycle_settings_are_read_and_bounded() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("SQS_PUSH_ORPHAN_GRACE_SECONDS", "60"));
        pairs.push(("SQS_PUSH_CLEANUP_CONCURRENCY", "4"));
        let config = StackConfig::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(config.orphan_grace_seconds, 60);
        assert_eq!(config.cleanup_concurrency, 4);
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("SQS_PUSH_CLEANUP_CONCURRENCY", "0"));
        let error = StackConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert_eq!(error.variable, "SQS_PUSH_CLEANUP_CONCURRENCY");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("SQS_PUSH_IDLE_SECONDS", "soon"));
        let error = StackConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert_eq!(error.variable, "SQS_PUSH_IDLE_SECONDS");
        let error = StackConfig::from_lookup(lookup(&MINIMAL[1..])).unwrap_err();
        assert_eq!(error.variable, "SQS_PUSH_STAGE");
    }

    #[test]
    fn a_stage_too_long_for_queue_names_is_refused_at_start() {
        let mut pairs = MINIMAL.to_vec();
        pairs[0] = ("SQS_PUSH_STAGE", "a-very-long-stage-name-that-is-silly");
        let error = StackConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert_eq!(error.variable, "SQS_PUSH_STAGE");
        assert!(error.problem.contains("at most 36"), "{error}");
    }
}
