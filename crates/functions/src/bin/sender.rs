//! The sender Lambda: one batch of deliveries per async invoke, stopping before the deadline and
//! handing on what is left.

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sqs_push_core::dispatch::send::SendJob;
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::failure::FunctionError;
use sqs_push_functions::wiring::{Adapters, sender};
use sqs_push_functions::{events, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = StackConfig::from_env()?;
    let adapters = Adapters::aws(&config).await;
    let sender = sender(&config, &adapters);
    let invoker = adapters.invoker.clone();
    let safety = Duration::from_millis(config.sender_safety_millis);
    let payload_limit = config.dispatch.payload_limit;
    lambda_runtime::run(service_fn(|event: LambdaEvent<SendJob>| {
        let (sender, invoker) = (sender.clone(), invoker.clone());
        async move {
            let deadline = events::stop_at(event.context.deadline, safety);
            events::handle_send(
                &sender,
                invoker.as_ref(),
                event.payload,
                Some(deadline),
                payload_limit,
            )
            .await
            .map_err(FunctionError::from)
        }
    }))
    .await
}
