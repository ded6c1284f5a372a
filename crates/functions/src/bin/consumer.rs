//! The consumer Lambda: SQS events from the upstream queue in, verified messages routed,
//! partial batch failures out (only routing failures: invalid messages are dropped and deleted).

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::failure::FunctionError;
use sqs_push_functions::metrics::Emf;
use sqs_push_functions::wiring::{Adapters, consumer};
use sqs_push_functions::{telemetry, upstream};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = StackConfig::from_env()?;
    let consumer = consumer(&config, &Adapters::aws(&config).await);
    let emf = Emf::new(&config.stage, "consumer");
    lambda_runtime::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let consumer = consumer.clone();
        let emf = &emf;
        async move {
            let (response, report) = upstream::handle(&consumer, event.payload).await;
            emf.emit(&upstream::metrics(&report));
            Ok::<_, FunctionError>(response)
        }
    }))
    .await
}
