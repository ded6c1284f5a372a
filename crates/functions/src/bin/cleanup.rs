//! The cleanup Lambda: the sessions table's stream (ReportBatchItemFailures on).

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::metrics::{Emf, Metric};
use sqs_push_functions::wiring::{Adapters, cleanup_service};
use sqs_push_functions::{cleanup, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init_lambda();
    let config = StackConfig::from_env()?;
    let service = cleanup_service(&config, &Adapters::aws(&config).await);
    let service = &service;
    let emf = &Emf::new(&config.stage, "cleanup");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        // Destroy and TTL remove the row; a MODIFY is a renew or a replacement.
        let ended = event
            .payload
            .records
            .iter()
            .filter(|record| record.event_name == "REMOVE")
            .count();
        let response = cleanup::handle(service, event.payload).await;
        emf.emit(&[(Metric::SessionsEnded, ended as f64)]);
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}
