//! The sender Lambda: one batch of deliveries per async invoke, stopping before the deadline.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use sqs_push_core::dispatch::send::SendJob;
use sqs_push_functions::config::StackConfig;
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
    let sender = sender(&config, &Adapters::aws(&config).await);
    let safety = Duration::from_millis(config.sender_safety_millis);
    lambda_runtime::run(service_fn(|event: LambdaEvent<SendJob>| {
        let sender = sender.clone();
        async move {
            let deadline = stop_at(event.context.deadline, safety);
            Ok::<_, Error>(events::handle_send(&sender, event.payload, Some(deadline)).await)
        }
    }))
    .await
}
