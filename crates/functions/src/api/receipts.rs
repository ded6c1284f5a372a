//! Read-receipt routes: mark messages read by id, by list or up to a time; `?async` hands the
//! work to the `history` function and answers at once.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use sqs_push_core::ids::UserId;
use sqs_push_core::message::MessageId;
use sqs_push_core::receipts::{check_count, parse_as_of, parse_id_body, parse_id_list};

use super::history::query_params;
use super::{ApiError, ApiState};

/// Whether the query asks for `async`: `?async`, `?async=1` or `?async=true`.
fn handed_off(query: Option<&str>) -> Result<bool, ApiError> {
    match query_params(query)?.get("async").map(String::as_str) {
        None | Some("0" | "false") => Ok(false),
        Some("" | "1" | "true") => Ok(true),
        Some(_) => Err(ApiError::bad_request(
            "invalid async: must be empty, 1, true, 0 or false",
        )),
    }
}

/// Marks the ids, or hands them off, and answers.
async fn receipt(
    state: ApiState,
    user_id: UserId,
    ids: Vec<MessageId>,
    async_: bool,
) -> Result<Json<Value>, ApiError> {
    check_count(ids.len(), async_)?;
    if async_ {
        let chunks = state.receipts.hand_off(user_id, &ids).await?;
        return Ok(Json(
            json!({"success": true, "async": true, "chunks": chunks}),
        ));
    }
    let report = state.receipts.mark_read(user_id, &ids).await?;
    Ok(Json(json!({
        "success": true,
        "changed": report.changed.len(),
        "messageIds": report.changed,
    })))
}

/// `GET /messages/set-read/user/{userId}/message/{messageId}[,{messageId}...][?async]`
pub async fn named(
    State(state): State<ApiState>,
    Path((user_id, message_ids)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let user_id = UserId::parse(&user_id)?;
    let ids = parse_id_list(&message_ids)?;
    receipt(state, user_id, ids, handed_off(query.as_deref())?).await
}

/// `POST /messages/set-read/user/{userId}[?async]` with a JSON list of message ids.
pub async fn listed(
    State(state): State<ApiState>,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let user_id = UserId::parse(&user_id)?;
    let ids = parse_id_body(&body)?;
    receipt(state, user_id, ids, handed_off(query.as_deref())?).await
}

/// `GET /messages/set-read/user/{userId}/asof/{timestamp}[?async]`: every unread message
/// created at or before `timestamp`.
pub async fn as_of(
    State(state): State<ApiState>,
    Path((user_id, timestamp)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let user_id = UserId::parse(&user_id)?;
    let timestamp = parse_as_of(&timestamp)?;
    if handed_off(query.as_deref())? {
        let chunks = state.receipts.hand_off_as_of(user_id, timestamp).await?;
        return Ok(Json(
            json!({"success": true, "async": true, "chunks": chunks}),
        ));
    }
    let report = state.receipts.mark_read_as_of(user_id, timestamp).await?;
    Ok(Json(json!({
        "success": true,
        "changed": report.changed.len(),
        "messageIds": report.changed,
    })))
}
