//! The history route: a user's messages, newest first, a page at a time.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use sqs_push_core::model::ids::UserId;
use sqs_push_core::ports::HistoryEntry;

use super::params::{self, QueryParams};
use super::{ApiError, ApiState};

/// A row as the caller sees it: the stored message as a JSON object, not a string.
fn entry_json(entry: HistoryEntry) -> Value {
    let message = serde_json::from_str::<Value>(&entry.row.message)
        .unwrap_or(Value::String(entry.row.message));
    json!({
        "messageId": entry.row.message_id,
        "created": entry.row.created,
        "is_read": u8::from(entry.is_read),
        "message": message,
    })
}

/// `GET /messages/user/{userId}[?start=&end=&limit=&next=]`
pub async fn messages(
    State(state): State<ApiState>,
    Path(user_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let user_id = UserId::parse(&user_id)?;
    let request = params::page_request(&QueryParams::parse(query.as_deref())?)?;
    let page = state.history.page(user_id, &request).await?;
    let messages: Vec<Value> = page.entries.into_iter().map(entry_json).collect();
    Ok(Json(json!({
        "success": true,
        "messages": messages,
        "next": page.next.as_ref().map(params::history_token),
    })))
}
