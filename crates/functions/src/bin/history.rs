//! The history Lambda: per async invoke, writes one batch of history rows or applies one chunk
//! of read receipts.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sqs_push_core::history::HistoryTask;
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::events::HistoryOutcome;
use sqs_push_functions::failure::FunctionError;
use sqs_push_functions::metrics::{Emf, Metric};
use sqs_push_functions::wiring::{Adapters, history_writer, receipts};
use sqs_push_functions::{events, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = StackConfig::from_env()?;
    let adapters = Adapters::aws(&config).await;
    let history = history_writer(&config, &adapters);
    let receipts = receipts(&config, &adapters);
    let emf = Emf::new(&config.stage, "history");
    lambda_runtime::run(service_fn(|event: LambdaEvent<HistoryTask>| {
        let (history, receipts) = (history.clone(), receipts.clone());
        let emf = &emf;
        async move {
            let rows = match &event.payload {
                HistoryTask::Write(job) => job.user_ids.len(),
                HistoryTask::Receipts(_) => 0,
            };
            let outcome = events::handle_history(&history, &receipts, event.payload).await;
            match &outcome {
                Ok(HistoryOutcome::Written(report)) => emf.emit(&[
                    (Metric::HistoryWritten, report.written as f64),
                    (Metric::HistoryFailed, report.failed as f64),
                ]),
                // A failed write job: its rows are retried by Lambda.
                Err(_) if rows > 0 => emf.emit(&[(Metric::HistoryFailed, rows as f64)]),
                _ => {}
            }
            outcome.map_err(FunctionError::from)
        }
    }))
    .await
}
