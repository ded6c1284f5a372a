//! From config to services: builds the SDK clients and adapters once per process.

use std::sync::Arc;

use sqs_push_aws::{
    AwsAppTarget, Clients, CognitoIdentities, DynamoHistoryStore, DynamoSessionStore,
    DynamoUpstreamStore, Endpoint, IdentitySettings, LambdaInvoker, SqsQueues,
};
use sqs_push_core::channel::ChannelService;
use sqs_push_core::cleanup::orphans::{OrphanSettings, OrphanSweeper};
use sqs_push_core::cleanup::stream::CleanupService;
use sqs_push_core::clock::{Clock, SystemClock};
use sqs_push_core::dispatch::Dispatcher;
use sqs_push_core::dispatch::segment::SegmentWorker;
use sqs_push_core::dispatch::send::Sender;
use sqs_push_core::history::write::HistoryWriter;
use sqs_push_core::ports::{
    AppMessage, AppTarget, PortError, PortErrorKind, PresenceStore, UpstreamStore,
};
use sqs_push_core::ports::{HistoryStore, IdentityProvider, Invoker, QueueService, SessionStore};
use sqs_push_core::session::policy::queue_arn;
use sqs_push_core::session::{SessionService, SessionSettings};
use sqs_push_core::upstream::presence::PresenceService;
use sqs_push_core::upstream::{AppTargetSpec, Consumer};

use sqs_push_core::history::read::HistoryReader;
use sqs_push_core::history::receipts::ReceiptService;

use crate::api::ApiState;
use crate::config::{ConfigError, StackConfig};

/// The adapters of one stack, shared by every service built from them.
#[derive(Clone)]
pub struct Adapters {
    /// The sessions table.
    pub sessions: Arc<dyn SessionStore>,
    /// SQS.
    pub queues: Arc<dyn QueueService>,
    /// Cognito + STS.
    pub identities: Arc<dyn IdentityProvider>,
    /// The history table.
    pub history: Arc<dyn HistoryStore>,
    /// Where large fan-outs are handed off: Lambda on AWS, this process locally.
    pub invoker: Arc<dyn Invoker>,
    /// The upstream consumer's table.
    pub upstream: Arc<dyn UpstreamStore>,
    /// Presence, in the same table.
    pub presence: Arc<dyn PresenceStore>,
    /// Where the app's upstream messages go.
    pub app: Arc<dyn AppTarget>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

/// The app target when `SQS_PUSH_APP_TARGET` is not set: every app message fails, so SQS keeps
/// it and then dead-letters it (an operator can redrive once a target is configured).
struct NoAppTarget;

#[async_trait::async_trait]
impl AppTarget for NoAppTarget {
    async fn deliver(&self, message: &AppMessage) -> Result<(), PortError> {
        Err(PortError::new(
            PortErrorKind::Other,
            "route an upstream message",
            message.kind.clone(),
            "no app target is configured (SQS_PUSH_APP_TARGET)",
        ))
    }
}

impl Adapters {
    /// The AWS adapters for a stack, with the Lambda invoker.
    pub async fn aws(config: &StackConfig) -> Self {
        let clients = Clients::connect(&Endpoint {
            region: config.region.clone(),
            endpoint_url: config.endpoint_url.clone(),
            credentials: config
                .static_credentials
                .as_ref()
                .map(|(access_key, secret_key)| {
                    aws_credential_types::Credentials::new(
                        access_key,
                        secret_key,
                        None,
                        None,
                        "sqs-push-static",
                    )
                }),
        })
        .await;
        let identities = CognitoIdentities::new(
            clients.cognito.clone(),
            clients.sts.clone(),
            IdentitySettings {
                identity_pool_id: config.identity_pool_id.clone(),
                unauthenticated_role_arn: config.unauthenticated_role_arn.clone(),
                developer_provider_name: config.developer_provider_name.clone(),
                flow: config.credential_flow,
                credential_seconds: config.credential_seconds as i32,
                partition: config.partition.clone(),
                region: config.region.clone(),
                upstream_queue_arn: config
                    .upstream_queue_url
                    .as_deref()
                    .and_then(|url| queue_arn(&config.partition, &config.region, url)),
            },
        );
        let upstream = Arc::new(DynamoUpstreamStore::new(
            clients.dynamodb.clone(),
            config.upstream_table(),
        ));
        Self {
            sessions: Arc::new(DynamoSessionStore::new(
                clients.dynamodb.clone(),
                config.sessions_table(),
                config.channels_table(),
            )),
            queues: Arc::new(SqsQueues::new(
                clients.sqs.clone(),
                config.max_message_bytes,
            )),
            identities: Arc::new(identities),
            history: Arc::new(DynamoHistoryStore::new(
                clients.dynamodb.clone(),
                config.history_table(),
            )),
            invoker: Arc::new(match &config.dead_letter_queue_url {
                Some(url) => LambdaInvoker::new(clients.lambda.clone(), config.prefix())
                    .with_dead_letters(clients.sqs.clone(), url),
                None => LambdaInvoker::new(clients.lambda.clone(), config.prefix()),
            }),
            upstream: upstream.clone(),
            presence: upstream,
            app: match &config.app_target {
                Some(AppTargetSpec::Queue(url)) => Arc::new(AwsAppTarget::Queue {
                    client: clients.sqs.clone(),
                    url: url.clone(),
                }),
                Some(AppTargetSpec::Function(name)) => Arc::new(AwsAppTarget::Function {
                    client: clients.lambda.clone(),
                    name: name.clone(),
                }),
                None => Arc::new(NoAppTarget),
            },
            clock: Arc::new(SystemClock),
        }
    }
}

/// The sender service.
pub fn sender(config: &StackConfig, adapters: &Adapters) -> Sender {
    Sender::new(adapters.queues.clone(), config.send_concurrency).with_clock(adapters.clock.clone())
}

/// The history writer.
pub fn history_writer(config: &StackConfig, adapters: &Adapters) -> HistoryWriter {
    HistoryWriter::new(adapters.history.clone(), config.history_ttl_seconds, 8)
}

/// The dispatcher.
pub fn dispatcher(config: &StackConfig, adapters: &Adapters) -> Dispatcher {
    Dispatcher::new(
        adapters.sessions.clone(),
        sender(config, adapters),
        history_writer(config, adapters),
        adapters.invoker.clone(),
        adapters.clock.clone(),
        config.dispatch.clone(),
    )
}

/// A broadcast's segment worker; it hands the rest of its segment on `sender_safety_millis`
/// before its deadline.
pub fn segment_worker(config: &StackConfig, adapters: &Adapters) -> SegmentWorker {
    dispatcher(config, adapters).segment_worker(std::time::Duration::from_millis(
        config.sender_safety_millis,
    ))
}

/// The api function's state.
pub fn api_state(config: &StackConfig, adapters: &Adapters) -> Result<ApiState, ConfigError> {
    let sessions = SessionService::new(
        adapters.sessions.clone(),
        adapters.queues.clone(),
        adapters.identities.clone(),
        adapters.clock.clone(),
        SessionSettings {
            queue_names: config.queue_names()?,
            refresh_margin_seconds: config.refresh_margin_seconds,
            idle_seconds: config.idle_seconds,
            region: config.region.clone(),
        },
    )
    .with_upstream_strikes(adapters.upstream.clone(), config.upstream.strike_limit);
    let orphans = OrphanSweeper::new(
        adapters.sessions.clone(),
        adapters.queues.clone(),
        adapters.clock.clone(),
        OrphanSettings {
            queue_names: config.queue_names()?,
            grace_seconds: config.orphan_grace_seconds,
            concurrency: config.cleanup_concurrency,
            scan_segments: config.scan_segments,
            legacy_names: config.legacy_queue_names,
        },
    );
    Ok(ApiState {
        channels: ChannelService::new(
            adapters.sessions.clone(),
            adapters.clock.clone(),
            config.channels.clone(),
        ),
        sessions,
        dispatcher: dispatcher(config, adapters),
        orphans,
        history: history_reader(adapters),
        receipts: receipts(config, adapters),
        upstream_url: config.upstream_queue_url.clone(),
        presence: presence(config, adapters),
    })
}

/// Presence: heartbeats, joins and leaves (announced through the dispatcher), the sweep.
pub fn presence(config: &StackConfig, adapters: &Adapters) -> PresenceService {
    PresenceService::new(
        adapters.upstream.clone(),
        adapters.presence.clone(),
        Arc::new(dispatcher(config, adapters)),
        adapters.clock.clone(),
        config.upstream.online_seconds,
    )
}

/// The upstream consumer.
pub fn consumer(config: &StackConfig, adapters: &Adapters) -> Consumer {
    Consumer::new(
        adapters.sessions.clone(),
        adapters.upstream.clone(),
        adapters.app.clone(),
        receipts(config, adapters),
        presence(config, adapters),
        adapters.clock.clone(),
        config.upstream.clone(),
    )
}

/// The history reader.
pub fn history_reader(adapters: &Adapters) -> HistoryReader {
    HistoryReader::new(adapters.history.clone(), adapters.clock.clone())
}

/// The read-receipt service: marks rows, dispatches receipts, hands chunks to `history`.
pub fn receipts(config: &StackConfig, adapters: &Adapters) -> ReceiptService {
    ReceiptService::new(
        adapters.history.clone(),
        Arc::new(dispatcher(config, adapters)),
        adapters.invoker.clone(),
        adapters.clock.clone(),
    )
}

/// The cleanup function's service.
pub fn cleanup_service(config: &StackConfig, adapters: &Adapters) -> CleanupService {
    CleanupService::new(
        adapters.sessions.clone(),
        adapters.queues.clone(),
        adapters.identities.clone(),
        config.cleanup_concurrency,
    )
}
