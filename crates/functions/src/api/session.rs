//! Session routes.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};
use sqs_push_core::ids::{AccountId, SessionId, UserId};
use sqs_push_core::session::parse_retention;

use super::{ApiError, ApiState};

/// `GET /create/{accountId}/{userId}/{sessionId}[?MessageRetentionPeriod=seconds]`
pub async fn create(
    State(state): State<ApiState>,
    Path((account_id, user_id, session_id)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let account_id = AccountId::parse(&account_id)?;
    let user_id = UserId::parse(&user_id)?;
    let session_id = SessionId::parse(&session_id)?;
    let retention = query
        .get("MessageRetentionPeriod")
        .map(|raw| parse_retention(raw))
        .transpose()?;
    let session = state
        .sessions
        .create(account_id, user_id, session_id, retention)
        .await?;
    let region = &state.sessions.settings().region;
    Ok(Json(
        json!({"success": true, "session": session.to_client(region)}),
    ))
}
