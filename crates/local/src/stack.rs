//! The local stack: provisions the emulator, then serves the api Router behind the SigV4 check,
//! and runs the TTL sweeper and the stream poller that invokes cleanup.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqs_push_core::cleanup::orphans::SweepStep;
use sqs_push_core::ports::{AsyncFunction, PortError};
use sqs_push_functions::api;
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::sweep::SweepEvent;
use sqs_push_functions::wiring::{api_state, cleanup_service, dispatcher};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::bootstrap::{BootstrapError, Provisioner, UpstreamQueueOptions};
use crate::functions::{CallLog, LocalFunction};
use crate::in_process::{DeadLetters, FunctionAdapters, InProcessInvoker, run_in_process};
use crate::kinesis::{self, StreamStats};
use crate::sigv4::{LocalKeys, require_signature};
use crate::stream::{StreamError, StreamHandler, StreamPoller};
use crate::ttl::{SweepError, SweptKeys, TtlSweeper};

/// The emulator accepts any credentials; these make the SDK sign its calls.
pub const EMULATOR_CREDENTIALS: (&str, &str) = ("test", "test");

/// How to run the local stack: where things are, and the one [`StackConfig`] the functions run
/// with (stage `local`; the emulator endpoint, credentials, pool and role are filled in at start).
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The emulator, e.g. `http://127.0.0.1:4566`.
    pub emulator_url: String,
    /// Where the API listens; port 0 picks a free one.
    pub api_address: SocketAddr,
    /// The key pair API requests must be signed with.
    pub keys: LocalKeys,
    /// The functions' configuration.
    pub stack: StackConfig,
    /// How often each event-stream shard is polled when idle.
    pub kinesis_poll_interval: Duration,
    /// How often expired sessions are deleted (DynamoDB's TTL, which the emulator lacks).
    pub sweep_interval: Duration,
    /// How often the sessions table's stream is read when it had nothing new.
    pub stream_poll_interval: Duration,
    /// Where to add the Lambda invokes the stack runs in process, next to the emulator's record
    /// of every AWS call (`SQS_PUSH_CALL_LOG`, read by the IAM check; crate::functions).
    pub call_log: Option<PathBuf>,
    /// The upstream queue's visibility timeout and redrive count.
    pub upstream_queue: UpstreamQueueOptions,
    /// Run the demo's chat app (crate::demo_chat): relay `chat` lines from the app queue to their
    /// channel. Off by default: it consumes the app queue, which the end-to-end tests read.
    pub demo_chat: bool,
    /// How often presence's sweep announces leaves (serverless.yml: every minute).
    pub presence_sweep_interval: Duration,
}

impl LocalOptions {
    /// Defaults: emulator on 4566, API on 3000, the documented local keys, stage `local` in
    /// us-east-1.
    pub fn new(emulator_url: &str) -> Self {
        let mut stack = StackConfig::for_stage("local", "us-east-1");
        // The emulator is one Python process: past a few dozen concurrent calls it only queues
        // them, and every sender job would otherwise open 128.
        stack.send_concurrency = 16;
        Self {
            emulator_url: emulator_url.to_string(),
            api_address: SocketAddr::from(([127, 0, 0, 1], 3000)),
            keys: LocalKeys {
                access_key: DEFAULT_ACCESS_KEY.to_string(),
                secret_key: DEFAULT_SECRET_KEY.to_string(),
            },
            stack,
            kinesis_poll_interval: Duration::from_millis(200),
            sweep_interval: Duration::from_secs(1),
            stream_poll_interval: Duration::from_millis(500),
            call_log: std::env::var_os(CALL_LOG_VARIABLE).map(PathBuf::from),
            // serverless.yml's redrive count; a shorter visibility than AWS's 60 s, so that a
            // failed message's retries take seconds locally.
            upstream_queue: UpstreamQueueOptions {
                visibility_seconds: 5,
                max_receive_count: 5,
            },
            demo_chat: false,
            presence_sweep_interval: Duration::from_secs(5),
        }
    }
}

/// The variable naming the call log, for the emulator (scripts/call_log.py) and this stack alike.
pub const CALL_LOG_VARIABLE: &str = "SQS_PUSH_CALL_LOG";

/// The access key the local stack accepts unless told otherwise (`SQS_PUSH_LOCAL_ACCESS_KEY`).
pub const DEFAULT_ACCESS_KEY: &str = "AKIDSQSPUSHLOCAL";
/// Its secret (`SQS_PUSH_LOCAL_SECRET_KEY`); only ever valid against the local stack.
pub const DEFAULT_SECRET_KEY: &str = "sqs-push-local-secret-key";

/// Why the stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Provisioning the emulator failed.
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] sqs_push_functions::config::ConfigError),
    /// The event-stream poller could not start.
    #[error(transparent)]
    Poller(#[from] kinesis::PollerError),
    /// The TTL sweeper could not read the sessions table.
    #[error(transparent)]
    Sweeper(#[from] SweepError),
    /// The sessions table's stream could not be read.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The dead-letter queue could not be created.
    #[error("the local dead-letter queue: {0}")]
    DeadLetters(String),
    /// The sessions table has no stream.
    #[error(
        "the sessions table {0} has no stream (or cannot be described); delete it so the bootstrap recreates it"
    )]
    NoStream(String),
    /// The call log could not be opened.
    #[error("cannot open the call log {path}: {source}")]
    CallLog {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The API port could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address asked for.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A running local stack.
pub struct LocalStack {
    /// The complete config the functions run with.
    pub config: StackConfig,
    /// The API's address.
    pub api_address: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    sweeper: TtlSweeper,
    stop_background: watch::Sender<bool>,
    background: Vec<JoinHandle<()>>,
    stream_stats: Arc<StreamStats>,
    invoker: Arc<InProcessInvoker>,
}

impl LocalStack {
    /// Provisions the emulator (idempotently) and starts serving the API.
    pub async fn start(options: LocalOptions) -> Result<Self, StartError> {
        let mut config = options.stack.clone();
        config.endpoint_url = Some(options.emulator_url.clone());
        config.static_credentials = Some((
            EMULATOR_CREDENTIALS.0.to_string(),
            EMULATOR_CREDENTIALS.1.to_string(),
        ));

        let sdk = emulator_sdk_config(&options.emulator_url, &config.region).await;
        let provisioner = Provisioner {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            kinesis: aws_sdk_kinesis::Client::new(&sdk),
            cognito: aws_sdk_cognitoidentity::Client::new(&sdk),
            iam: aws_sdk_iam::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
        };
        let provisioned = provisioner
            .provision(&config, options.upstream_queue)
            .await?;
        config.identity_pool_id = provisioned.identity_pool_id;
        config.unauthenticated_role_arn = provisioned.unauthenticated_role_arn;
        config.upstream.browser_role_id = provisioned.browser_role_id;
        config.upstream_queue_url = Some(provisioned.upstream_queue_url.clone());
        if config.app_target.is_none() {
            config.app_target = Some(sqs_push_core::upstream::AppTargetSpec::Queue(
                provisioned.app_queue_url.clone(),
            ));
        }

        let call_log = match &options.call_log {
            Some(path) => Some(Arc::new(CallLog::open(path).map_err(|source| {
                StartError::CallLog {
                    path: path.clone(),
                    source,
                }
            })?)),
            None => None,
        };
        // Each function as itself: its own credentials, as each has its own role on AWS.
        let mut sdk_of = std::collections::HashMap::new();
        for function in LocalFunction::ALL {
            let function_sdk = function
                .sdk_config(&options.emulator_url, &config.region)
                .await;
            sdk_of.insert(function, function_sdk);
        }
        let mut adapters = FunctionAdapters::connect(&config).await;
        let dead_letters = DeadLetters::provision(aws_sdk_sqs::Client::new(&sdk), &config)
            .await
            .map_err(StartError::DeadLetters)?;
        let invoker = run_in_process(
            &mut adapters,
            &config,
            &dead_letters,
            |function| aws_sdk_sqs::Client::new(&sdk_of[&function]),
            call_log,
        )?;
        let state = api_state(&config, adapters.of(LocalFunction::Api))?;

        let (sweeper, stop_background, mut background) = start_ttl_and_cleanup(
            &config,
            &adapters,
            &sdk,
            &sdk_of[&LocalFunction::Cleanup],
            &options,
        )
        .await?;
        let stream_stats = Arc::new(StreamStats::default());
        // Lambda's Kinesis trigger reads the stream with the dispatcher's role.
        let pollers = kinesis::spawn_pollers(
            aws_sdk_kinesis::Client::new(&sdk_of[&LocalFunction::Dispatcher]),
            &config.events_stream(),
            &config.region,
            dispatcher(&config, adapters.of(LocalFunction::Dispatcher)),
            options.kinesis_poll_interval,
            stream_stats.clone(),
            stop_background.subscribe(),
        )
        .await?;
        background.extend(pollers);
        // Lambda's SQS trigger reads the upstream queue with the consumer's role.
        background.push(crate::upstream::spawn(
            aws_sdk_sqs::Client::new(&sdk_of[&LocalFunction::Consumer]),
            provisioned.upstream_queue_url,
            sqs_push_functions::wiring::consumer(&config, adapters.of(LocalFunction::Consumer)),
            stop_background.subscribe(),
        ));
        // The consumer's schedule: presence's sweep.
        background.push(crate::upstream::spawn_presence_sweep(
            sqs_push_functions::wiring::presence(&config, adapters.of(LocalFunction::Consumer)),
            options.presence_sweep_interval,
            stop_background.subscribe(),
        ));

        let app = api::router(state.clone()).layer(axum::middleware::from_fn_with_state(
            options.keys.clone(),
            require_signature,
        ));
        if options.demo_chat {
            background.push(crate::demo_chat::spawn(
                aws_sdk_sqs::Client::new(&sdk),
                provisioned.app_queue_url.clone(),
                api::router(state.clone()),
                stop_background.subscribe(),
            ));
        }
        let app = crate::demo::mount(app, api::router(state), options.api_address);

        let listener = TcpListener::bind(options.api_address)
            .await
            .map_err(|source| StartError::Listen {
                address: options.api_address,
                source,
            })?;
        let api_address = listener.local_addr().map_err(|source| StartError::Listen {
            address: options.api_address,
            source,
        })?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "local API server stopped");
            }
        });
        Ok(Self {
            config,
            api_address,
            shutdown: Some(shutdown),
            server: Some(server),
            sweeper,
            stop_background,
            background,
            stream_stats,
            invoker,
        })
    }

    /// Starts an orphan sweep run as the template's schedule does: the cleanup function invoked
    /// with `{"sweep": {}}`, each step handing the next to the function again.
    pub async fn start_orphan_sweep(&self) -> Result<(), PortError> {
        let start = serde_json::to_vec(&SweepEvent::default()).unwrap_or_default();
        self.invoker.schedule(AsyncFunction::Cleanup, start).await
    }

    /// The orphan sweep steps run so far (each as the cleanup function answered it).
    pub fn orphan_sweep_steps(&self) -> Vec<SweepStep> {
        self.invoker.sweep_steps()
    }

    /// What the event-stream pollers have handed to the dispatcher so far.
    pub fn stream_stats(&self) -> &StreamStats {
        &self.stream_stats
    }

    /// The API's base URL.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_address)
    }

    /// Runs one TTL sweep now, as the background sweeper does every interval; returns how
    /// many expired sessions it deleted.
    pub async fn sweep_expired(&self) -> Result<usize, SweepError> {
        use sqs_push_core::clock::{Clock, SystemClock};
        self.sweeper.sweep(SystemClock.now()).await
    }

    /// Stops the server, the sweeper and the poller, and waits for them.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let _ = self.stop_background.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        for task in self.background.drain(..) {
            let _ = task.await;
        }
    }
}

/// What AWS runs on its own: the sessions table's TTL, and the stream trigger of the cleanup
/// function. The poller is positioned before the API serves, so every change it makes is
/// delivered.
async fn start_ttl_and_cleanup(
    config: &StackConfig,
    adapters: &FunctionAdapters,
    sdk: &aws_config::SdkConfig,
    cleanup_sdk: &aws_config::SdkConfig,
    options: &LocalOptions,
) -> Result<(TtlSweeper, watch::Sender<bool>, Vec<JoinHandle<()>>), StartError> {
    let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
    let table = config.sessions_table();
    let swept = SweptKeys::default();
    let sweeper = TtlSweeper::new(dynamodb.clone(), &table, swept.clone()).await?;
    let stream_arn = dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .ok()
        .and_then(|output| output.table()?.latest_stream_arn().map(str::to_string))
        .ok_or_else(|| StartError::NoStream(table.clone()))?;
    let cleanup = cleanup_service(config, adapters.of(LocalFunction::Cleanup));
    let handler: StreamHandler = Arc::new(move |event| {
        let cleanup = cleanup.clone();
        Box::pin(async move { sqs_push_functions::cleanup::handle(&cleanup, event).await })
    });
    // Lambda's DynamoDB-stream trigger reads the stream with the cleanup function's role.
    let poller = StreamPoller::start(
        aws_sdk_dynamodbstreams::Client::new(cleanup_sdk),
        &table,
        &stream_arn,
        handler,
        swept,
    )
    .await?;
    let (stop, stopped) = watch::channel(false);
    let tasks = vec![
        sweeper
            .clone()
            .spawn(options.sweep_interval, stopped.clone()),
        poller.spawn(options.stream_poll_interval, stopped),
    ];
    Ok((sweeper, stop, tasks))
}

/// An SDK config for the emulator with its admin credentials.
pub async fn emulator_sdk_config(emulator_url: &str, region: &str) -> aws_config::SdkConfig {
    sqs_push_aws::load_sdk_config(&sqs_push_aws::Endpoint {
        region: region.to_string(),
        endpoint_url: Some(emulator_url.to_string()),
        credentials: Some(aws_credential_types::Credentials::new(
            EMULATOR_CREDENTIALS.0,
            EMULATOR_CREDENTIALS.1,
            None,
            None,
            "emulator",
        )),
    })
    .await
}
