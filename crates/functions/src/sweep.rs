//! The scheduled orphan sweep, run by the cleanup function: EventBridge invokes it with
//! `{"sweep": {}}`; each invocation runs one step within its deadline and, when the listing
//! goes on, invokes the function again with `{"sweep": <cursor>}`. A run of any size is then
//! a chain of short invocations, never one API request against API Gateway's 29 s.
//!
//! A step whose hand-on fails fails as a whole: Lambda runs the same payload again, and a step
//! repeated from the same cursor deletes nothing twice (a queue already gone counts as deleted).

use tokio::time::Instant;

use serde::{Deserialize, Serialize};
use sqs_push_core::cleanup::orphans::{OrphanSweeper, SweepCursor, SweepStep};
use sqs_push_core::ports::{AsyncFunction, Invoker, PortError, PortErrorKind};

/// The payload of a sweep invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepEvent {
    /// Where the run stands; `{}` starts one.
    pub sweep: SweepCursor,
}

/// Runs one step from `event`'s cursor until `deadline`, and hands the rest of the run to a
/// fresh invocation of the cleanup function.
pub async fn handle_sweep(
    sweeper: &OrphanSweeper,
    invoker: &dyn Invoker,
    event: SweepEvent,
    deadline: Instant,
) -> Result<SweepStep, PortError> {
    let step = sweeper.step(event.sweep, deadline).await?;
    if let Some(next) = &step.next {
        let payload = serde_json::to_vec(&SweepEvent {
            sweep: next.clone(),
        })
        .map_err(|error| {
            PortError::new(
                PortErrorKind::Other,
                "sweep hand-on",
                "cleanup",
                error.to_string(),
            )
        })?;
        invoker
            .invoke_async(AsyncFunction::Cleanup, payload)
            .await?;
    } else {
        let totals = &step.run.totals;
        tracing::info!(
            steps = step.run.steps,
            queues_scanned = totals.queues_scanned,
            orphans_found = totals.orphans_found,
            deleted = totals.deleted,
            skipped_young = totals.skipped_young,
            failed = totals.failed,
            "orphan sweep finished"
        );
    }
    Ok(step)
}
