//! The orphan sweep route: one step of a run per request, with the token to go on from.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use sqs_push_core::cleanup::orphans::{OrphanReport, SweepCursor};
use tokio::time::Instant;

use super::extract::Query;
use super::params::{CleanupQuery, decode_token, encode_token};
use super::{ApiError, ApiState};

/// `{"success": true, "queuesScanned": …, "orphansFound": …, "deleted": …, …, "steps": n,
/// "next": "…"}`: the run's figures so far; `next` while the listing goes on.
#[derive(Serialize)]
pub struct CleanupAnswer {
    success: bool,
    #[serde(flatten)]
    report: OrphanReport,
    steps: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// `GET /cleanup[?next=…]`: deletes the stage's queues that no session names and that are older
/// than the grace period, for up to 20 s of listing (the scheduled sweep runs in the cleanup
/// function instead, docs/operations.md); answers the run's figures and, when the listing goes
/// on, a `next` to call again with.
pub async fn orphans(
    State(state): State<ApiState>,
    Query(query): Query<CleanupQuery>,
) -> Result<Json<CleanupAnswer>, ApiError> {
    let cursor: SweepCursor = match query.next.as_deref() {
        Some(raw) => decode_token(raw)?,
        None => SweepCursor::default(),
    };
    let step = state
        .orphans
        .step(cursor, Instant::now() + state.orphan_step)
        .await?;
    Ok(Json(CleanupAnswer {
        success: true,
        report: step.run.totals,
        steps: step.run.steps,
        next: step.next.as_ref().map(encode_token),
    }))
}
