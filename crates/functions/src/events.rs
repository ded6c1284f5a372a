//! The event-driven functions' handlers: Lambda event types in, domain calls, Lambda responses
//! out. The binaries in `src/bin` and the local stack's pollers both call these.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use serde::Serialize;
use sqs_push_core::PortError;
use sqs_push_core::dispatch::Dispatcher;
use sqs_push_core::dispatch::kinesis::{StreamRecord, StreamReport, dispatch_records};
use sqs_push_core::dispatch::send::{SendJob, SendReport, Sender};
use sqs_push_core::history::HistoryTask;
use sqs_push_core::history::receipts::{ReceiptReport, ReceiptService};
use sqs_push_core::history::write::{HistoryReport, HistoryWriter};
use tokio::time::Instant;

/// The `dispatcher` function: dispatches a batch of Kinesis records in sequence order. Poison
/// records are skipped and counted; a transient failure stops the batch at that record.
pub async fn handle_kinesis(dispatcher: &Dispatcher, event: KinesisEvent) -> StreamReport {
    let records: Vec<StreamRecord> = event
        .records
        .into_iter()
        .map(|record| {
            let sequence_number = record.kinesis.sequence_number.clone();
            StreamRecord {
                event_id: record
                    .event_id
                    .unwrap_or_else(|| format!("sequence:{sequence_number}")),
                sequence_number,
                data: record.kinesis.data.0,
            }
        })
        .collect();
    let report = dispatch_records(dispatcher, &records).await;
    tracing::info!(
        records = records.len(),
        dispatched = report.dispatched,
        skipped = report.skipped,
        poison = report.poison,
        failed_from = report.first_failure.as_deref(),
        "kinesis batch handled"
    );
    report
}

/// What Lambda needs back: the first failed record, so it retries from there.
pub fn batch_response(report: &StreamReport) -> KinesisEventResponse {
    let mut response = KinesisEventResponse::default();
    if let Some(sequence_number) = &report.first_failure {
        let mut failure = KinesisBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number.clone());
        response.batch_item_failures.push(failure);
    }
    response
}

/// The `sender` function: sends one job, stopping `safety` before the deadline.
pub async fn handle_send(sender: &Sender, job: SendJob, deadline: Option<Instant>) -> SendReport {
    let report = sender.send(&job, deadline).await;
    tracing::info!(
        deliveries = job.deliveries.len(),
        sent = report.sent,
        gone = report.queues_gone,
        failed = report.failed,
        unsent = report.unsent,
        "send job handled"
    );
    report
}

/// What the `history` function did with one payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum HistoryOutcome {
    /// A write job's rows.
    Written(HistoryReport),
    /// A receipt job's changes.
    Receipts(ReceiptReport),
}

/// The `history` function: writes one job's rows, or applies one chunk of read receipts. A
/// failed receipt chunk is an error, so Lambda retries it; the retry marks what is left and
/// receipts only that.
pub async fn handle_history(
    history: &HistoryWriter,
    receipts: &ReceiptService,
    task: HistoryTask,
) -> Result<HistoryOutcome, PortError> {
    match task {
        HistoryTask::Write(job) => {
            let report = history.write(&job).await;
            tracing::info!(
                message_id = %job.message_id,
                users = job.user_ids.len(),
                written = report.written,
                failed = report.failed,
                "history job handled"
            );
            Ok(HistoryOutcome::Written(report))
        }
        HistoryTask::Receipts(job) => {
            let report = receipts.apply(&job).await?;
            tracing::info!(
                user_id = %job.user_id,
                ids = job.message_ids.len(),
                changed = report.changed.len(),
                receipts = report.receipts,
                "receipt job handled"
            );
            Ok(HistoryOutcome::Receipts(report))
        }
    }
}
