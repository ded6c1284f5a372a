//! An [`Invoker`] that runs `sender` and `history` jobs in this process, for the local stack and
//! tests: the same payloads Lambda would get, handled on background tasks.

use async_trait::async_trait;

use crate::error::{PortError, PortErrorKind};
use crate::history::{HistoryTask, HistoryWriter};
use crate::ports::{AsyncFunction, Invoker};
use crate::receipts::ReceiptService;
use crate::send::{SendJob, Sender};

/// Runs async invocations as tasks on the current runtime.
#[derive(Clone)]
pub struct InProcessInvoker {
    sender: Sender,
    history: HistoryWriter,
    receipts: Option<ReceiptService>,
}

impl InProcessInvoker {
    /// Hands `sender` jobs to `sender` and `history` write jobs to `history`.
    pub fn new(sender: Sender, history: HistoryWriter) -> Self {
        Self {
            sender,
            history,
            receipts: None,
        }
    }

    /// Also hands `history` receipt jobs to `receipts`. Without it they are refused: the
    /// receipt service dispatches through an invoker of its own, so it is added last.
    pub fn with_receipts(mut self, receipts: ReceiptService) -> Self {
        self.receipts = Some(receipts);
        self
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
                        let Some(receipts) = self.receipts.clone() else {
                            return Err(PortError::new(
                                PortErrorKind::Other,
                                "in-process invoke",
                                function.name(),
                                "read receipts are not wired into this invoker",
                            ));
                        };
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
