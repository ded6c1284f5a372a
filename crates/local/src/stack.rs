//! The local stack: provisions the emulator, then serves the api Router behind the SigV4 check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::config::BehaviorVersion;
use sqs_push_core::dispatch::DispatchSettings;
use sqs_push_functions::api;
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::wiring::{Adapters, api_state, dispatcher};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::bootstrap::{BootstrapError, Provisioner};
use crate::kinesis::{self, StreamStats};
use crate::sigv4::{LocalKeys, require_signature};

/// The emulator accepts any credentials; these make the SDK sign its calls.
pub const EMULATOR_CREDENTIALS: (&str, &str) = ("test", "test");

/// How to run the local stack.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The emulator, e.g. `http://127.0.0.1:4566`.
    pub emulator_url: String,
    /// The region everything lives in.
    pub region: String,
    /// Where the API listens; port 0 picks a free one.
    pub api_address: SocketAddr,
    /// The key pair API requests must be signed with.
    pub keys: LocalKeys,
    /// How long a session outlives its credentials.
    pub idle_seconds: u64,
    /// Lifetime of issued credentials.
    pub credential_seconds: u32,
    /// How fan-outs are cut (a low direct limit forces the async path).
    pub dispatch: DispatchSettings,
    /// How often each event-stream shard is polled when idle.
    pub kinesis_poll_interval: Duration,
}

impl LocalOptions {
    /// Defaults: emulator on 4566, API on 3000, the documented local keys.
    pub fn new(emulator_url: &str) -> Self {
        Self {
            emulator_url: emulator_url.to_string(),
            region: "us-east-1".to_string(),
            api_address: SocketAddr::from(([127, 0, 0, 1], 3000)),
            keys: LocalKeys {
                access_key: DEFAULT_ACCESS_KEY.to_string(),
                secret_key: DEFAULT_SECRET_KEY.to_string(),
            },
            idle_seconds: 3600,
            credential_seconds: 3600,
            dispatch: DispatchSettings::default(),
            kinesis_poll_interval: Duration::from_millis(200),
        }
    }
}

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
    stop_tasks: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    stream_stats: Arc<StreamStats>,
}

impl LocalStack {
    /// Provisions the emulator (idempotently) and starts serving the API.
    pub async fn start(options: LocalOptions) -> Result<Self, StartError> {
        let mut config = StackConfig::for_stage("local", &options.region);
        config.endpoint_url = Some(options.emulator_url.clone());
        config.static_credentials = Some((
            EMULATOR_CREDENTIALS.0.to_string(),
            EMULATOR_CREDENTIALS.1.to_string(),
        ));
        config.idle_seconds = options.idle_seconds;
        config.credential_seconds = options.credential_seconds;
        config.dispatch = options.dispatch.clone();

        let sdk = emulator_sdk_config(&options).await;
        let provisioner = Provisioner {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            kinesis: aws_sdk_kinesis::Client::new(&sdk),
            cognito: aws_sdk_cognitoidentity::Client::new(&sdk),
            iam: aws_sdk_iam::Client::new(&sdk),
        };
        let provisioned = provisioner.provision(&config).await?;
        config.identity_pool_id = provisioned.identity_pool_id;
        config.unauthenticated_role_arn = provisioned.unauthenticated_role_arn;

        let adapters = Adapters::aws(&config)
            .await
            .with_in_process_invoker(&config);
        let state = api_state(&config, &adapters)?;
        let (stop_tasks, stopped_tasks) = watch::channel(false);
        let stream_stats = Arc::new(StreamStats::default());
        let pollers = kinesis::spawn_pollers(
            provisioner.kinesis.clone(),
            &config.events_stream(),
            &config.region,
            dispatcher(&config, &adapters),
            options.kinesis_poll_interval,
            stream_stats.clone(),
            stopped_tasks,
        )
        .await?;
        let app = api::router(state.clone()).layer(axum::middleware::from_fn_with_state(
            options.keys.clone(),
            require_signature,
        ));
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
            stop_tasks,
            tasks: pollers,
            stream_stats,
        })
    }

    /// What the event-stream pollers have handed to the dispatcher so far.
    pub fn stream_stats(&self) -> &StreamStats {
        &self.stream_stats
    }

    /// The API's base URL.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_address)
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        let _ = self.stop_tasks.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

async fn emulator_sdk_config(options: &LocalOptions) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(options.region.clone()))
        .endpoint_url(&options.emulator_url)
        .credentials_provider(aws_credential_types::Credentials::new(
            EMULATOR_CREDENTIALS.0,
            EMULATOR_CREDENTIALS.1,
            None,
            None,
            "emulator",
        ))
        .load()
        .await
}
