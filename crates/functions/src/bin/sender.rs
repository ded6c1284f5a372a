//! The sender Lambda: one batch of deliveries per async invoke, stopping before the deadline and
//! handing on what is left.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sqs_push_core::dispatch::send::SendJob;
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::metrics::{Emf, Metric};
use sqs_push_functions::wiring::{Adapters, sender};
use sqs_push_functions::{events, telemetry};
use tokio::time::Instant;

/// The Lambda deadline (epoch ms) as an Instant, less a safety margin for reporting.
fn stop_at(deadline_ms: u64, safety: Duration) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0);
    let remaining = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Instant::now() + remaining.saturating_sub(safety)
}

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
            let deadline = stop_at(event.context.deadline, safety);
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
                Ok(report) => emf.emit(&[
                    (Metric::DeliveriesSent, report.sent as f64),
                    (Metric::DeliveriesFailed, report.failed as f64),
                    (Metric::DeliveriesToEndedSessions, report.queues_gone as f64),
                    (Metric::DeliveriesHandedOn, report.retry_later.len() as f64),
                ]),
                // Given up after the last hand-on (or the hand-on itself failed): Lambda
                // retries the job, then writes it to the dead-letter queue.
                Err(_) => emf.emit(&[(Metric::DeliveriesDeadLettered, deliveries as f64)]),
            }
            outcome.map_err(Error::from)
        }
    }))
    .await
}
