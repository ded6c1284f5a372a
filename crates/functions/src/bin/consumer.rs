//! The consumer Lambda: SQS events from the upstream queue in, verified messages routed,
//! partial batch failures out (only routing failures: invalid messages are dropped and deleted);
//! and, on its schedule (`{"presenceSweep": true}`), presence's sweep that announces leaves.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::failure::FunctionError;
use sqs_push_functions::metrics::Emf;
use sqs_push_functions::wiring::{Adapters, consumer, presence};
use sqs_push_functions::{telemetry, upstream};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = StackConfig::from_env()?;
    let adapters = Adapters::aws(&config).await;
    let consumer = consumer(&config, &adapters);
    let presence = presence(&config, &adapters);
    let emf = Emf::new(&config.stage, "consumer");
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let consumer = consumer.clone();
        let presence = presence.clone();
        let emf = &emf;
        async move {
            // Picked by the field an SQS event always has (see the dispatcher's main for why
            // not an untagged enum).
            if event.payload.get("Records").is_some() {
                let records: SqsEvent = serde_json::from_value(event.payload)?;
                let (response, report) = upstream::handle(&consumer, records).await;
                emf.emit(&upstream::metrics(&report));
                return Ok::<_, FunctionError>(serde_json::to_value(response)?);
            }
            let report = presence.sweep().await?;
            Ok(json!({ "left": report.left, "checked": report.checked }))
        }
    }))
    .await
}
