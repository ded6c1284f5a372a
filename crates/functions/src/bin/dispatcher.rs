//! The dispatcher Lambda: Kinesis records in, messages routed, partial batch failures out; and,
//! as an async invoke, a broadcast's segment worker (a `SegmentJob`).

use std::time::{Duration, Instant};

use aws_lambda_events::event::kinesis::KinesisEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use sqs_push_core::dispatch::segment::SegmentJob;
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::failure::FunctionError;
use sqs_push_functions::metrics::{Emf, Metric, dispatch_metrics};
use sqs_push_functions::wiring::{Adapters, dispatcher};
use sqs_push_functions::{events, telemetry};

/// What invokes the dispatcher: the Kinesis event source mapping, or a broadcast's planner.
enum DispatcherEvent {
    /// One scan segment of a broadcast.
    Segment(Box<SegmentJob>),
    /// A batch of stream records.
    Kinesis(KinesisEvent),
}

impl DispatcherEvent {
    /// Picks the shape by the `Records` field a Kinesis event always has. (Not an untagged serde
    /// enum: with serde_json's arbitrary_precision, numbers inside buffered untagged content do
    /// not deserialize, and a Kinesis event carries a numeric timestamp.)
    fn from_value(value: Value) -> Result<Self, serde_json::Error> {
        if value.get("Records").is_some() {
            serde_json::from_value(value).map(Self::Kinesis)
        } else {
            serde_json::from_value(value).map(|job| Self::Segment(Box::new(job)))
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init_lambda();
    let config = StackConfig::from_env()?;
    let dispatcher = dispatcher(&config, &Adapters::aws(&config).await);
    let worker = dispatcher.segment_worker(Duration::from_millis(config.sender_safety_millis));
    let emf = Emf::new(&config.stage, "dispatcher");
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let dispatcher = dispatcher.clone();
        let worker = worker.clone();
        let emf = &emf;
        async move {
            match DispatcherEvent::from_value(event.payload)? {
                DispatcherEvent::Kinesis(records) => {
                    let started = Instant::now();
                    let report = events::handle_kinesis(&dispatcher, records).await;
                    let mut values = vec![
                        (Metric::RecordsDispatched, report.dispatched as f64),
                        (
                            Metric::RecordsRejected,
                            (report.skipped + report.poison) as f64,
                        ),
                        (
                            Metric::StreamBatchLatency,
                            started.elapsed().as_secs_f64() * 1000.0,
                        ),
                    ];
                    values.extend(dispatch_metrics(&report.counts));
                    emf.emit(&values);
                    Ok::<_, FunctionError>(serde_json::to_value(events::batch_response(&report))?)
                }
                DispatcherEvent::Segment(job) => {
                    let deadline = events::stop_at(event.context.deadline, Duration::ZERO);
                    let report = worker.run(&job, Some(deadline)).await?;
                    Ok::<_, FunctionError>(serde_json::to_value(report)?)
                }
            }
        }
    }))
    .await
}
