//! The local stack's stand-in for Lambda's async invoke: `sender` and `history` payloads are
//! parsed as Lambda would parse them and run on background tasks of this process.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use sqs_push_core::dispatch::segment::{SegmentJob, SegmentWorker};
use sqs_push_core::dispatch::send::{SendJob, Sender};
use sqs_push_core::history::HistoryTask;
use sqs_push_core::history::receipts::ReceiptService;
use sqs_push_core::history::write::HistoryWriter;
use sqs_push_core::ports::{AsyncFunction, Invoker, PortError, PortErrorKind};
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::wiring::{self, Adapters};

/// Runs async invocations as tasks on the current runtime.
pub struct InProcessInvoker {
    sender: Sender,
    history: HistoryWriter,
    /// Set once, right after the invoker is installed: the receipt service dispatches through
    /// this very invoker.
    receipts: OnceLock<ReceiptService>,
    /// Set with the receipts: a broadcast's segment workers hand pages on through this invoker.
    segments: OnceLock<SegmentWorker>,
}

/// Makes `adapters` hand `sender` and `history` work to this process instead of Lambda.
pub fn run_in_process(adapters: &mut Adapters, config: &StackConfig) {
    let invoker = Arc::new(InProcessInvoker {
        sender: wiring::sender(config, adapters),
        history: wiring::history_writer(config, adapters),
        receipts: OnceLock::new(),
        segments: OnceLock::new(),
    });
    adapters.invoker = invoker.clone();
    let receipts = wiring::receipts(config, adapters);
    if invoker.receipts.set(receipts).is_err() {
        unreachable!("the invoker was created above and nothing else sets its receipts");
    }
    if invoker
        .segments
        .set(wiring::segment_worker(config, adapters))
        .is_err()
    {
        unreachable!("the invoker was created above and nothing else sets its worker");
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

#[async_trait]
impl Invoker for InProcessInvoker {
    async fn invoke_async(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
    ) -> Result<(), PortError> {
        // Parsed before returning, as Lambda would reject a malformed payload at invoke time.
        match function {
            AsyncFunction::Sender => {
                let job: SendJob =
                    serde_json::from_slice(&payload).map_err(|e| malformed(function, e))?;
                let sender = self.sender.clone();
                tokio::spawn(async move {
                    let report = sender.send(&job, None).await;
                    tracing::info!(?report, "sender job done");
                });
            }
            AsyncFunction::Dispatcher => {
                let job: SegmentJob =
                    serde_json::from_slice(&payload).map_err(|e| malformed(function, e))?;
                let worker = self
                    .segments
                    .get()
                    .cloned()
                    .expect("run_in_process sets the segment worker");
                tokio::spawn(async move {
                    if let Err(error) = worker.run(&job, None).await {
                        tracing::warn!(%error, ?job, "segment job failed");
                    }
                });
            }
            AsyncFunction::History => {
                let task: HistoryTask =
                    serde_json::from_slice(&payload).map_err(|e| malformed(function, e))?;
                match task {
                    HistoryTask::Write(job) => {
                        let history = self.history.clone();
                        tokio::spawn(async move {
                            let report = history.write(&job).await;
                            tracing::info!(?report, "history job done");
                        });
                    }
                    HistoryTask::Receipts(job) => {
                        let receipts = self
                            .receipts
                            .get()
                            .cloned()
                            .expect("run_in_process sets the receipt service");
                        tokio::spawn(async move {
                            match receipts.apply(&job).await {
                                Ok(report) => tracing::info!(
                                    changed = report.changed.len(),
                                    receipts = report.receipts,
                                    "receipt job done"
                                ),
                                Err(error) => tracing::warn!(%error, "receipt job failed"),
                            }
                        });
                    }
                }
            }
        }
        Ok(())
    }
}
