//! The orphan sweep route.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use sqs_push_core::cleanup::orphans::OrphanReport;

use super::extract::{NoQuery, Query};
use super::{ApiError, ApiState};

/// `{"success": true, "queuesScanned": …, "orphansFound": …, "deleted": …, …}`
#[derive(Serialize)]
pub struct CleanupAnswer {
    success: bool,
    #[serde(flatten)]
    report: OrphanReport,
}

/// `GET /cleanup`: deletes the stage's queues that no session names and that are older than the
/// grace period; answers with what it found and did.
pub async fn orphans(
    State(state): State<ApiState>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<CleanupAnswer>, ApiError> {
    let report = state.orphans.sweep().await?;
    Ok(Json(CleanupAnswer {
        success: true,
        report,
    }))
}
