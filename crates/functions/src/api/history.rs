//! The history route: a user's messages, newest first, a page at a time.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Map, Value};
use sqs_push_core::ports::HistoryEntry;

use super::extract::{Path, Query};
use super::params::{self, HistoryQuery};
use super::paths::UserPath;
use super::{ApiError, ApiState};

/// A row as the caller sees it, flat as the original stack returned it: the message's own
/// fields at the top level, with the row's `messageId`, `created`, `is_read` and `userId`
/// winning over message fields of the same names. A stored message that is not a JSON object
/// (never written by this service) is kept under `message`.
pub fn entry_json(entry: HistoryEntry) -> Value {
    let mut row = match serde_json::from_str::<Value>(&entry.row.message) {
        Ok(Value::Object(fields)) => fields,
        Ok(other) => Map::from_iter([("message".to_string(), other)]),
        Err(_) => Map::from_iter([("message".to_string(), Value::String(entry.row.message))]),
    };
    row.insert("messageId".into(), entry.row.message_id.into());
    row.insert("created".into(), entry.row.created.into());
    row.insert("is_read".into(), u8::from(entry.is_read).into());
    row.insert("userId".into(), entry.row.user_id.get().into());
    Value::Object(row)
}

/// `{"success": true, "messages": [<flat rows>], "next": token or null}`
#[derive(Serialize)]
pub struct HistoryAnswer {
    success: bool,
    messages: Vec<Value>,
    next: Option<String>,
}

/// `GET /messages/user/{userId}[?start=&end=&limit=&next=&_type=]`
pub async fn messages(
    State(state): State<ApiState>,
    Path(path): Path<UserPath>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<HistoryAnswer>, ApiError> {
    let request = params::page_request(&query)?;
    let page = state.history.page(path.user_id, &request).await?;
    Ok(Json(HistoryAnswer {
        success: true,
        messages: page.entries.into_iter().map(entry_json).collect(),
        next: page.next.as_ref().map(params::history_token),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sqs_push_core::model::ids::UserId;
    use sqs_push_core::ports::HistoryRow;

    #[test]
    fn rows_are_flat_and_the_stored_fields_win() {
        let entry = HistoryEntry {
            row: HistoryRow {
                user_id: UserId::try_from(7).unwrap(),
                message_id: "m1".into(),
                created: 100,
                ttl: 200,
                message: json!({"messageId": "m1", "msg": "x", "created": "spoof",
                                "is_read": 1, "userId": 999, "data": {"a": [1, 2]}})
                .to_string(),
            },
            is_read: false,
        };
        assert_eq!(
            entry_json(entry),
            json!({"messageId": "m1", "created": 100, "is_read": 0, "userId": 7,
                   "msg": "x", "data": {"a": [1, 2]}})
        );
    }
}
