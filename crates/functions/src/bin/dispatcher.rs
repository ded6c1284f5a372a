//! The dispatcher Lambda: Kinesis records in, messages routed, partial batch failures out; and,
//! as an async invoke, a broadcast's segment worker (a `SegmentJob`).

use std::time::Duration;

use aws_lambda_events::event::kinesis::KinesisEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde::Deserialize;
use sqs_push_core::dispatch::segment::SegmentJob;
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::wiring::{Adapters, dispatcher};
use sqs_push_functions::{events, telemetry};

/// What invokes the dispatcher: the Kinesis event source mapping, or a broadcast's planner.
#[derive(Deserialize)]
#[serde(untagged)]
enum DispatcherEvent {
    /// One scan segment of a broadcast (tried first: it has required fields a Kinesis event lacks).
    Segment(Box<SegmentJob>),
    /// A batch of stream records.
    Kinesis(KinesisEvent),
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = StackConfig::from_env()?;
    let dispatcher = dispatcher(&config, &Adapters::aws(&config).await);
    let worker = dispatcher.segment_worker(Duration::from_millis(config.sender_safety_millis));
    lambda_runtime::run(service_fn(|event: LambdaEvent<DispatcherEvent>| {
        let dispatcher = dispatcher.clone();
        let worker = worker.clone();
        async move {
            match event.payload {
                DispatcherEvent::Kinesis(records) => {
                    let report = events::handle_kinesis(&dispatcher, records).await;
                    Ok::<_, Error>(serde_json::to_value(events::batch_response(&report))?)
                }
                DispatcherEvent::Segment(job) => {
                    let deadline = events::stop_at(event.context.deadline, Duration::ZERO);
                    let report = worker.run(&job, Some(deadline)).await?;
                    Ok::<_, Error>(serde_json::to_value(report)?)
                }
            }
        }
    }))
    .await
}
