//! The history Lambda: writes one batch of history rows per async invoke.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sqs_push_core::history::HistoryJob;
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::wiring::{Adapters, history_writer};
use sqs_push_functions::{events, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = StackConfig::from_env()?;
    let history = history_writer(&config, &Adapters::aws(&config).await);
    lambda_runtime::run(service_fn(|event: LambdaEvent<HistoryJob>| {
        let history = history.clone();
        async move { Ok::<_, Error>(events::handle_history(&history, event.payload).await) }
    }))
    .await
}
