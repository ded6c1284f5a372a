//! The consumer function's edge: an SQS event from the upstream queue in, the consumer's
//! verdicts out as a partial batch response (only messages whose routing failed are reported,
//! so SQS deletes everything else, dropped messages included) and as EMF counts.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use sqs_push_core::upstream::{BatchReport, Consumer, Drop, UpstreamRecord};

use crate::metrics::Metric;

/// The records of an SQS event as the consumer reads them.
pub fn records(event: SqsEvent) -> Vec<UpstreamRecord> {
    event
        .records
        .into_iter()
        .map(|mut message| UpstreamRecord {
            message_id: message.message_id.unwrap_or_default(),
            sender_id: message.attributes.remove("SenderId"),
            body: message.body.unwrap_or_default(),
        })
        .collect()
}

/// Handles one SQS event: the batch response Lambda reads, and what became of each message.
pub async fn handle(consumer: &Consumer, event: SqsEvent) -> (SqsBatchResponse, BatchReport) {
    let report = consumer.handle(&records(event)).await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = report
        .failed
        .iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id.clone();
            failure
        })
        .collect();
    (response, report)
}

/// The EMF counts of one batch.
pub fn metrics(report: &BatchReport) -> Vec<(Metric, f64)> {
    let dropped = |reason: Drop| report.dropped.get(&reason).copied().unwrap_or(0) as f64;
    vec![
        (Metric::UpstreamAccepted, report.accepted as f64),
        (Metric::UpstreamDuplicates, report.duplicates as f64),
        (Metric::UpstreamNotBrowser, dropped(Drop::NotBrowser)),
        (Metric::UpstreamMalformed, dropped(Drop::Malformed)),
        (Metric::UpstreamWrongSession, dropped(Drop::WrongSession)),
        (Metric::UpstreamStale, dropped(Drop::Stale)),
        (Metric::UpstreamOverLimit, dropped(Drop::OverLimit)),
        (Metric::UpstreamFailed, report.failed.len() as f64),
    ]
}
