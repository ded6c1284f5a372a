//! The dispatcher Lambda: Kinesis records in, messages routed, partial batch failures out.

use aws_lambda_events::event::kinesis::KinesisEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::wiring::{Adapters, dispatcher};
use sqs_push_functions::{events, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = StackConfig::from_env()?;
    let dispatcher = dispatcher(&config, &Adapters::aws(&config).await);
    lambda_runtime::run(service_fn(|event: LambdaEvent<KinesisEvent>| {
        let dispatcher = dispatcher.clone();
        async move {
            let report = events::handle_kinesis(&dispatcher, event.payload).await;
            Ok::<_, Error>(events::batch_response(&report))
        }
    }))
    .await
}
