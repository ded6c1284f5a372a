//! The sender Lambda: one batch of deliveries per async invoke, stopping before the deadline and
//! handing on what is left.

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sqs_push_core::dispatch::send::SendJob;
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::failure::FunctionError;
use sqs_push_functions::metrics::{Emf, Metric, send_metrics};
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
    let emf = Emf::new(&config.stage, "sender");
    lambda_runtime::run(service_fn(|event: LambdaEvent<SendJob>| {
        let (sender, invoker) = (sender.clone(), invoker.clone());
        let emf = &emf;
        async move {
            let deadline = events::stop_at(event.context.deadline, safety);
            let deliveries = event.payload.deliveries.len();
            let outcome = events::handle_send(
                &sender,
                invoker.as_ref(),
                event.payload,
                Some(deadline),
                payload_limit,
            )
            .await;
            match &outcome {
                Ok(outcome) => emf.emit(&send_metrics(outcome)),
                // The hand-on or the dead-lettering itself failed: Lambda retries the job,
                // then writes it to the dead-letter queue.
                Err(_) => emf.emit(&[(Metric::DeliveriesFailed, deliveries as f64)]),
            }
            outcome
                .map(|outcome| outcome.report)
                .map_err(FunctionError::from)
        }
    }))
    .await
}
