//! The event-driven functions' handlers: Lambda event types in, domain calls, Lambda responses
//! out. The binaries in `src/bin` and the local stack's pollers both call these.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use serde::Serialize;
use sqs_push_core::dispatch::Dispatcher;
use sqs_push_core::dispatch::grouping::dispatch_records_grouped;
use sqs_push_core::dispatch::kinesis::{StreamRecord, StreamReport};
use sqs_push_core::dispatch::send::{SendJob, SendOutcome, Sender};
use sqs_push_core::history::HistoryTask;
use sqs_push_core::history::receipts::{ReceiptReport, ReceiptService};
use sqs_push_core::history::write::{HistoryReport, HistoryWriter};
use sqs_push_core::ports::Invoker;
use sqs_push_core::{PortError, PortErrorKind};
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
    let report = dispatch_records_grouped(dispatcher, &records).await;
    tracing::info!(
        records = records.len(),
        dispatched = report.dispatched,
        skipped = report.skipped,
        poison = report.poison,
        sent = report.counts.sent_directly,
        handed_on = report.counts.handed_on,
        dead_lettered = report.counts.dead_lettered,
        history_handed_on = report.counts.history_handed_on,
        failed_from = report.first_failure.as_deref(),
        "kinesis batch handled"
    );
    report
}

/// What the dispatcher answers a Kinesis batch with: the first failed record, which is all
/// Lambda reads (it retries from there), and beside it the batch's [`StreamReport`] — what it
/// dispatched, skipped as poison and handed on — which Lambda ignores but the function's
/// response and its tests show.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BatchResponse {
    /// Lambda's partial-batch answer.
    #[serde(flatten)]
    pub failures: KinesisEventResponse,
    /// What the batch did.
    #[serde(flatten)]
    pub report: StreamReport,
}

/// What Lambda needs back: the first failed record, so it retries from there.
pub fn batch_response(report: &StreamReport) -> BatchResponse {
    let mut failures = KinesisEventResponse::default();
    if let Some(sequence_number) = &report.first_failure {
        let mut failure = KinesisBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number.clone());
        failures.batch_item_failures.push(failure);
    }
    BatchResponse {
        failures,
        report: report.clone(),
    }
}

/// The `sender` function: sends one job, stopping `safety` before the deadline, and settles
/// what it leaves ([`Sender::send_or_hand_on`]): deliveries unsent at the deadline or still
/// failing for a transient reason go to a fresh `sender` invocation (at most
/// [`MAX_HAND_ONS`](sqs_push_core::dispatch::send::MAX_HAND_ONS) times), deliveries SQS refuses
/// and those still failing after the last hand-on go to the dead-letter queue. Nothing is only
/// logged; the invocation fails (so Lambda retries it, then dead-letters it) only when that
/// hand-on itself fails.
pub async fn handle_send(
    sender: &Sender,
    invoker: &dyn Invoker,
    job: SendJob,
    deadline: Option<Instant>,
    payload_limit: usize,
) -> Result<SendOutcome, PortError> {
    let outcome = sender
        .send_or_hand_on(&job, deadline, invoker, payload_limit)
        .await?;
    let report = &outcome.report;
    tracing::info!(
        deliveries = job.deliveries.len(),
        attempt = job.attempt,
        sent = report.sent,
        gone = report.queues_gone,
        failed = report.failed,
        unsent = report.unsent,
        handed_on = outcome.handed_on,
        dead_lettered = outcome.dead_lettered,
        "send job handled"
    );
    Ok(outcome)
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
            if report.failed > 0 {
                // Rows are written only where absent, so Lambda's retry of the whole job (and
                // then the dead-letter queue) can never unread or double anything.
                return Err(PortError::new(
                    PortErrorKind::Transient,
                    "history",
                    job.message_id.as_str(),
                    format!(
                        "{} of {} rows not written",
                        report.failed,
                        job.user_ids.len()
                    ),
                ));
            }
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

/// The Lambda deadline (epoch ms) as an Instant, less `safety`.
pub fn stop_at(deadline_ms: u64, safety: std::time::Duration) -> Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0);
    let remaining = std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Instant::now() + remaining.saturating_sub(safety)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqs_push_core::dispatch::DeliveryCounts;

    #[test]
    fn the_batch_response_names_the_failed_record_for_lambda_and_the_counts_beside_it() {
        let report = StreamReport {
            dispatched: 3,
            skipped: 1,
            poison: 1,
            first_failure: Some("49590".to_string()),
            counts: DeliveryCounts {
                sent_directly: 5,
                failed: 2,
                handed_on: 2,
                ..DeliveryCounts::default()
            },
        };
        let json = serde_json::to_value(batch_response(&report)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "batchItemFailures": [{"itemIdentifier": "49590"}],
                "dispatched": 3,
                "skipped": 1,
                "poison": 1,
                "sessionsMatched": 0,
                "skippedExpired": 0,
                "sentDirectly": 5,
                "queuesGone": 0,
                "failed": 2,
                "handedOn": 2,
                "senderBatches": 0,
                "historyUsers": 0,
                "historyBatches": 0,
            })
        );
    }
}
