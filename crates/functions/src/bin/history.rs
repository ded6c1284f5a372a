//! The history Lambda: per async invoke, writes one batch of history rows or applies one chunk
//! of read receipts.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sqs_push_core::history::HistoryTask;
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::failure::FunctionError;
use sqs_push_functions::wiring::{Adapters, history_writer, receipts};
use sqs_push_functions::{events, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = StackConfig::from_env()?;
    let adapters = Adapters::aws(&config).await;
    let history = history_writer(&config, &adapters);
    let receipts = receipts(&config, &adapters);
    lambda_runtime::run(service_fn(|event: LambdaEvent<HistoryTask>| {
        let (history, receipts) = (history.clone(), receipts.clone());
        async move {
            events::handle_history(&history, &receipts, event.payload)
                .await
                .map_err(FunctionError::from)
        }
    }))
    .await
}
