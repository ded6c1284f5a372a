//! The cleanup Lambda: the sessions table's stream (ReportBatchItemFailures on), and the steps
//! of the scheduled orphan sweep (`{"sweep": …}`, from EventBridge or from its own hand-on).

use std::time::Duration;

use tokio::time::Instant;

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};
use sqs_push_functions::cleanup::CleanupEvent;
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::failure::FunctionError;
use sqs_push_functions::metrics::{Emf, Metric};
use sqs_push_functions::sweep::handle_sweep;
use sqs_push_functions::wiring::{Adapters, cleanup_service, orphan_sweeper};
use sqs_push_functions::{cleanup, events, telemetry};

/// Left of the Lambda timeout after a step's last page: that page's deletes and the hand-on.
const SWEEP_SAFETY: Duration = Duration::from_secs(15);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init_lambda();
    let config = StackConfig::from_env()?;
    let adapters = Adapters::aws(&config).await;
    let service = &cleanup_service(&config, &adapters);
    let sweeper = &orphan_sweeper(&config, &adapters)?;
    let invoker = &adapters.invoker;
    let step_budget = Duration::from_millis(config.sweep_step_millis);
    let emf = &Emf::new(&config.stage, "cleanup");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        match CleanupEvent::parse(event.payload).map_err(FunctionError::from)? {
            CleanupEvent::Stream(batch) => {
                // Destroy and TTL remove the row; a MODIFY is a renew or a replacement.
                let ended = batch
                    .records
                    .iter()
                    .filter(|record| record.event_name == "REMOVE")
                    .count();
                let response = cleanup::handle(service, batch).await;
                emf.emit(&[(Metric::SessionsEnded, ended as f64)]);
                Ok::<_, lambda_runtime::Error>(serde_json::to_value(response)?)
            }
            CleanupEvent::Sweep(sweep) => {
                let deadline = events::stop_at(event.context.deadline, SWEEP_SAFETY)
                    .min(Instant::now() + step_budget);
                let step = handle_sweep(sweeper, invoker.as_ref(), sweep, deadline)
                    .await
                    .map_err(FunctionError::from)?;
                emf.emit(&[
                    (Metric::OrphansDeleted, step.step.deleted as f64),
                    (Metric::OrphanDeletesFailed, step.step.failed as f64),
                ]);
                Ok(json!({ "step": step.step, "run": step.run, "more": step.next.is_some() }))
            }
        }
    }))
    .await
}
