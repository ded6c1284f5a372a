//! The local stack's stand-in for Lambda's async invoke: `sender`, `history`, segment and
//! orphan-sweep payloads are parsed as Lambda would parse them and run on background tasks of this process, through the
//! same handlers the functions run. A job whose handler fails goes, as on AWS after Lambda's
//! retries, to the dead-letter queue (`sqs-push-dlq-local` in the emulator) as a Lambda
//! destination record — so a failure is something `sqs-push redrive` can replay, never only a
//! log line. Like a function's reserved concurrency on Lambda, at most
//! [`LOCAL_FUNCTION_CONCURRENCY`] invocations of each function run at once; the rest wait their
//! turn (Lambda's async queue), so a large fan-out does not open more connections than one
//! emulator process can accept.
//!
//! Each function runs with its own adapters (its own credentials, crate::functions), and each
//! invokes through its own [`FunctionInvoker`]: the call log then has every invoke as
//! `lambda:InvokeFunction` by the function that made it, as Lambda would authorize it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_trait::async_trait;
use std::time::Duration;

use serde_json::Value;
use sqs_push_core::cleanup::orphans::{OrphanSweeper, SweepStep};
use sqs_push_core::dispatch::segment::{SegmentJob, SegmentWorker};
use sqs_push_core::dispatch::send::{SendJob, Sender};
use sqs_push_core::history::HistoryTask;
use sqs_push_core::history::receipts::ReceiptService;
use sqs_push_core::history::write::HistoryWriter;
use sqs_push_core::ports::{AsyncFunction, Invoker, PortError, PortErrorKind, destination_record};
use sqs_push_functions::config::{ConfigError, StackConfig};
use sqs_push_functions::events;
use sqs_push_functions::sweep::{SweepEvent, handle_sweep};
use sqs_push_functions::wiring::{self, Adapters};
use tokio::sync::Semaphore;

use crate::functions::{CallLog, LocalFunction};

/// Invocations of one function that run at once locally (the others wait, as async invokes
/// beyond a function's reserved concurrency wait in Lambda's queue).
pub const LOCAL_FUNCTION_CONCURRENCY: usize = 4;

/// The dead-letter queue of the local stage, and how to reach it.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    /// The emulator's SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// The queue's URL.
    pub queue_url: String,
    /// The stage's function-name prefix, `sqs-push-<stage>`, for the records' function ARNs.
    pub function_prefix: String,
}

impl DeadLetters {
    /// The same queue, written to with `sqs` (another function's credentials).
    pub fn with_client(&self, sqs: aws_sdk_sqs::Client) -> Self {
        Self {
            sqs,
            ..self.clone()
        }
    }

    /// Creates (or finds) `sqs-push-dlq-<stage>` — outside the stage's session-queue names, so
    /// neither cleanup nor the orphan sweep ever touches it.
    pub async fn provision(sqs: aws_sdk_sqs::Client, config: &StackConfig) -> Result<Self, String> {
        let name = format!("sqs-push-dlq-{}", config.stage);
        let created = sqs
            .create_queue()
            .queue_name(&name)
            .send()
            .await
            .map_err(|error| {
                format!("create {name}: {}", sqs_push_aws::errors::describe(&error))
            })?;
        Ok(Self {
            sqs,
            queue_url: created.queue_url().unwrap_or_default().to_string(),
            function_prefix: config.prefix(),
        })
    }

    /// Writes a record as Lambda's on-failure destination would (`condition` as Lambda names
    /// it: `RetriesExhausted` for a job whose handler kept failing).
    async fn put(
        &self,
        function: AsyncFunction,
        condition: &str,
        payload: &[u8],
        error_type: &str,
        error_message: &str,
    ) -> Result<(), PortError> {
        let arn = format!(
            "arn:aws:lambda:local:000000000000:function:{}-{}",
            self.function_prefix,
            function.name()
        );
        let record = destination_record(&arn, condition, payload, error_type, error_message)?;
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(record)
            .send()
            .await
            .map_err(|error| {
                PortError::new(
                    PortErrorKind::Transient,
                    "SQS SendMessage",
                    self.queue_url.clone(),
                    sqs_push_aws::errors::describe(&error),
                )
            })?;
        Ok(())
    }

    /// Dead-letters a job whose handler failed through every retry.
    async fn record(&self, function: AsyncFunction, payload: &[u8], error: &PortError) {
        let error_type = format!("{:?}", error.kind);
        let put = self
            .put(
                function,
                "RetriesExhausted",
                payload,
                &error_type,
                &error.to_string(),
            )
            .await;
        match put {
            Ok(()) => {
                tracing::warn!(function = function.name(), %error, "job failed; dead-lettered");
            }
            Err(dead_letter_error) => tracing::error!(
                function = function.name(),
                %error,
                %dead_letter_error,
                "job failed and could not be dead-lettered"
            ),
        }
    }
}

/// How often Lambda runs a failed async invocation again before its on-failure destination
/// gets it (two retries), and the pause before each — a minute and two on Lambda, seconds here
/// so a local failure that clears soon still ends delivered, as it would on AWS.
const LOCAL_ASYNC_RETRIES: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// Runs `attempt` as Lambda runs an async invocation: again after each of
/// [`LOCAL_ASYNC_RETRIES`] while it fails, then its last error is dead-lettered.
async fn run_with_retries<F, Fut>(
    dead_letters: &DeadLetters,
    function: AsyncFunction,
    payload: &[u8],
    attempt: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), PortError>>,
{
    let mut outcome = attempt().await;
    for pause in LOCAL_ASYNC_RETRIES {
        let Err(error) = &outcome else { return };
        tracing::warn!(function = function.name(), %error, "job failed; Lambda would retry it");
        tokio::time::sleep(pause).await;
        outcome = attempt().await;
    }
    if let Err(error) = outcome {
        dead_letters.record(function, payload, &error).await;
    }
}

/// The adapters of each function: its own SDK clients, its own credentials.
pub struct FunctionAdapters(HashMap<LocalFunction, Adapters>);

impl FunctionAdapters {
    /// Every function's adapters, each from `config` with that function's credentials.
    pub async fn connect(config: &StackConfig) -> Self {
        let mut all = HashMap::new();
        for function in LocalFunction::ALL {
            all.insert(function, Adapters::aws(&function.config(config)).await);
        }
        Self(all)
    }

    /// The adapters of `function`.
    pub fn of(&self, function: LocalFunction) -> &Adapters {
        &self.0[&function]
    }
}

/// Runs async invocations as tasks on the current runtime: the services of the async functions,
/// each built from that function's adapters.
pub struct InProcessInvoker {
    sender: Sender,
    history: HistoryWriter,
    payload_limit: usize,
    /// Per function, the dead-letter queue written with its credentials.
    dead_letters: HashMap<LocalFunction, DeadLetters>,
    /// Where invokes are logged, when the IAM check records calls.
    call_log: Option<Arc<CallLog>>,
    region: String,
    /// This invoker itself, for jobs that hand work on.
    this: OnceLock<Weak<InProcessInvoker>>,
    /// Set once, right after the invoker is installed: the receipt service dispatches through
    /// the history function's invoker.
    receipts: OnceLock<ReceiptService>,
    /// Set with the receipts: a broadcast's segment workers hand pages on through the
    /// dispatcher's invoker.
    segments: OnceLock<SegmentWorker>,
    /// Per function, the invocations that may run at once.
    running: HashMap<AsyncFunction, Arc<Semaphore>>,
    /// The cleanup function's orphan sweep, and how long each of its steps may list.
    sweeper: OrphanSweeper,
    sweep_step: Duration,
    /// What each sweep step answered, in order: the function's log, for tests and `sqs-push-local`.
    sweep_steps: Mutex<Vec<SweepStep>>,
}

/// What one function invokes through: the shared [`InProcessInvoker`], with the invokes and
/// dead letters it writes made as `caller`.
pub struct FunctionInvoker {
    caller: LocalFunction,
    runtime: Arc<InProcessInvoker>,
}

/// Makes every function's adapters hand `sender`, `history` and segment work to this process
/// instead of Lambda, each through an invoker of its own. `dead_letters` is the stage's queue
/// (any client); each function writes to it with its own credentials, `sqs_of(function)`.
pub fn run_in_process(
    adapters: &mut FunctionAdapters,
    config: &StackConfig,
    dead_letters: &DeadLetters,
    sqs_of: impl Fn(LocalFunction) -> aws_sdk_sqs::Client,
    call_log: Option<Arc<CallLog>>,
) -> Result<Arc<InProcessInvoker>, ConfigError> {
    let sweeper = wiring::orphan_sweeper(config, adapters.of(LocalFunction::Cleanup))?;
    let invoker = Arc::new(InProcessInvoker {
        sender: wiring::sender(config, adapters.of(LocalFunction::Sender)),
        history: wiring::history_writer(config, adapters.of(LocalFunction::History)),
        payload_limit: config.dispatch.payload_limit,
        dead_letters: LocalFunction::ALL
            .into_iter()
            .map(|function| (function, dead_letters.with_client(sqs_of(function))))
            .collect(),
        call_log,
        region: config.region.clone(),
        this: OnceLock::new(),
        receipts: OnceLock::new(),
        segments: OnceLock::new(),
        running: [
            AsyncFunction::Sender,
            AsyncFunction::History,
            AsyncFunction::Dispatcher,
            AsyncFunction::Cleanup,
        ]
        .into_iter()
        .map(|function| {
            let permits = Arc::new(Semaphore::new(LOCAL_FUNCTION_CONCURRENCY));
            (function, permits)
        })
        .collect(),
        sweeper,
        sweep_step: Duration::from_millis(config.sweep_step_millis),
        sweep_steps: Mutex::new(Vec::new()),
    });
    let _ = invoker.this.set(Arc::downgrade(&invoker));
    for (function, function_adapters) in &mut adapters.0 {
        function_adapters.invoker = Arc::new(invoker.for_caller(*function));
    }
    let receipts = wiring::receipts(config, adapters.of(LocalFunction::History));
    if invoker.receipts.set(receipts).is_err() {
        unreachable!("the invoker was created above and nothing else sets its receipts");
    }
    let worker = wiring::segment_worker(config, adapters.of(LocalFunction::Dispatcher));
    if invoker.segments.set(worker).is_err() {
        unreachable!("the invoker was created above and nothing else sets its worker");
    }
    Ok(invoker)
}

/// The function an async invocation runs.
fn local(function: AsyncFunction) -> LocalFunction {
    match function {
        AsyncFunction::Sender => LocalFunction::Sender,
        AsyncFunction::History => LocalFunction::History,
        AsyncFunction::Dispatcher => LocalFunction::Dispatcher,
        AsyncFunction::Cleanup => LocalFunction::Cleanup,
    }
}

fn malformed(function: AsyncFunction, error: serde_json::Error) -> PortError {
    PortError::new(
        PortErrorKind::Other,
        "in-process invoke",
        function.name(),
        format!("payload does not parse: {error}"),
    )
}

impl InProcessInvoker {
    /// Invokes `function` as a schedule would (EventBridge, not another function: no call is
    /// logged for a caller).
    pub async fn schedule(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
    ) -> Result<(), PortError> {
        self.run(function, payload).await
    }

    /// The steps the orphan sweep has run so far, oldest first.
    pub fn sweep_steps(&self) -> Vec<SweepStep> {
        self.sweep_steps.lock().unwrap().clone()
    }

    fn this(&self) -> Arc<InProcessInvoker> {
        self.this
            .get()
            .and_then(Weak::upgrade)
            .expect("run_in_process keeps the invoker alive")
    }

    /// The invoker `caller` hands work on through.
    fn for_caller(&self, caller: LocalFunction) -> FunctionInvoker {
        FunctionInvoker {
            caller,
            runtime: self.this(),
        }
    }

    /// Runs `payload` as an async invocation of `function`, made by `caller`.
    async fn invoke_as(
        &self,
        caller: LocalFunction,
        function: AsyncFunction,
        payload: Vec<u8>,
    ) -> Result<(), PortError> {
        if let Some(log) = &self.call_log {
            let target = format!(
                "{}-{}",
                self.dead_letters[&caller].function_prefix,
                function.name()
            );
            log.invoke(caller, &target, &self.region);
        }
        self.run(function, payload).await
    }

    /// Runs `payload` as an async invocation of `function`.
    async fn run(&self, function: AsyncFunction, payload: Vec<u8>) -> Result<(), PortError> {
        // Parsed before returning, as Lambda would reject a malformed payload at invoke time.
        let raw: Value = serde_json::from_slice(&payload).map_err(|e| malformed(function, e))?;
        let this = self.this();
        let permits = self.running[&function].clone();
        // On AWS, Lambda writes a failed invocation's destination record with the role of the
        // function that failed.
        let dead_letters = self.dead_letters[&local(function)].clone();
        match function {
            AsyncFunction::Sender => {
                let job: SendJob =
                    serde_json::from_value(raw).map_err(|e| malformed(function, e))?;
                tokio::spawn(async move {
                    let _running = permits.acquire_owned().await;
                    let invoker = this.for_caller(LocalFunction::Sender);
                    run_with_retries(&dead_letters, function, &payload, || async {
                        events::handle_send(
                            &this.sender,
                            &invoker,
                            job.clone(),
                            None,
                            this.payload_limit,
                        )
                        .await
                        .map(|_| ())
                    })
                    .await;
                });
            }
            AsyncFunction::Dispatcher => {
                let job: SegmentJob =
                    serde_json::from_value(raw).map_err(|e| malformed(function, e))?;
                let worker = self
                    .segments
                    .get()
                    .cloned()
                    .expect("run_in_process sets the segment worker");
                tokio::spawn(async move {
                    let _running = permits.acquire_owned().await;
                    run_with_retries(&dead_letters, function, &payload, || async {
                        worker.run(&job, None).await.map(|_| ())
                    })
                    .await;
                });
            }
            AsyncFunction::Cleanup => {
                let event: SweepEvent =
                    serde_json::from_value(raw).map_err(|e| malformed(function, e))?;
                tokio::spawn(async move {
                    let _running = permits.acquire_owned().await;
                    let invoker = this.for_caller(LocalFunction::Cleanup);
                    run_with_retries(&dead_letters, function, &payload, || async {
                        let deadline = tokio::time::Instant::now() + this.sweep_step;
                        let step =
                            handle_sweep(&this.sweeper, &invoker, event.clone(), deadline).await?;
                        this.sweep_steps.lock().unwrap().push(step);
                        Ok(())
                    })
                    .await;
                });
            }
            AsyncFunction::History => {
                let task: HistoryTask =
                    serde_json::from_value(raw).map_err(|e| malformed(function, e))?;
                let receipts = self
                    .receipts
                    .get()
                    .cloned()
                    .expect("run_in_process sets the receipt service");
                tokio::spawn(async move {
                    let _running = permits.acquire_owned().await;
                    run_with_retries(&dead_letters, function, &payload, || async {
                        events::handle_history(&this.history, &receipts, task.clone())
                            .await
                            .map(|_| ())
                    })
                    .await;
                });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Invoker for FunctionInvoker {
    async fn invoke_async(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
    ) -> Result<(), PortError> {
        self.runtime.invoke_as(self.caller, function, payload).await
    }

    async fn dead_letter(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
        reason: &str,
    ) -> Result<(), PortError> {
        // The caller's own code writes this record, with its own credentials.
        self.runtime.dead_letters[&self.caller]
            .put(
                function,
                "RefusedOrExhausted",
                &payload,
                "Undeliverable",
                reason,
            )
            .await
    }
}
