//! Read-receipt routes: mark messages read by id, by list or up to a time; `?async` hands the
//! work to the `history` function and answers at once.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use sqs_push_core::history::receipts::ReceiptReport;
use sqs_push_core::model::ids::UserId;
use sqs_push_core::model::message::MessageId;

use super::params::{self, QueryParams};
use super::{ApiError, ApiState};

/// Whether the query asks for the work to be handed off (`?async`); any other parameter is a
/// 400 naming it.
fn handed_off(query: Option<&str>) -> Result<bool, ApiError> {
    let query = QueryParams::parse(query)?;
    query.only(params::SET_READ_PARAMS)?;
    Ok(params::handed_off(&query)?)
}

/// The answer of a synchronous set-read: `changed` and `messageIds`, and the same ids as
/// `messages_receipted`, the original stack's name for them; `missing` lists ids without a
/// history row (yet), `more` says an `asof` left others for the next call.
fn changed_json(report: &ReceiptReport) -> Json<Value> {
    let mut answer = json!({
        "success": true,
        "changed": report.changed.len(),
        "messageIds": report.changed,
        "messages_receipted": report.changed,
    });
    if !report.missing.is_empty() {
        answer["missing"] = json!(report.missing);
    }
    if report.more {
        answer["more"] = json!(true);
    }
    Json(answer)
}

/// Marks the ids, or hands them off, and answers.
async fn receipt(
    state: ApiState,
    user_id: UserId,
    ids: Vec<MessageId>,
    async_: bool,
) -> Result<Json<Value>, ApiError> {
    params::check_id_count(ids.len(), async_)?;
    if async_ {
        let chunks = state.receipts.hand_off(user_id, &ids).await?;
        return Ok(Json(
            json!({"success": true, "async": true, "chunks": chunks}),
        ));
    }
    let report = state.receipts.mark_read(user_id, &ids).await?;
    Ok(changed_json(&report))
}

/// `GET /messages/set-read/user/{userId}/message/{messageId}[,{messageId}...][?async]`
pub async fn named(
    State(state): State<ApiState>,
    Path((user_id, message_ids)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let user_id = UserId::parse(&user_id)?;
    let ids = params::id_list(&message_ids)?;
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
    let ids = params::id_body(&body)?;
    receipt(state, user_id, ids, handed_off(query.as_deref())?).await
}

/// `GET /messages/set-read/user/{userId}/asof/{timestamp}[?async]`: every unread message
/// created at or before `timestamp` (epoch seconds, a fraction allowed).
pub async fn as_of(
    State(state): State<ApiState>,
    Path((user_id, timestamp)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let user_id = UserId::parse(&user_id)?;
    // `created` is whole seconds, so "created at or before t" is "created <= floor(t)".
    let timestamp = params::epoch_time("timestamp", &timestamp)?.floor();
    if handed_off(query.as_deref())? {
        let (chunks, more) = state.receipts.hand_off_as_of(user_id, timestamp).await?;
        let mut answer = json!({"success": true, "async": true, "chunks": chunks});
        if more {
            answer["more"] = json!(true);
        }
        return Ok(Json(answer));
    }
    let report = state.receipts.mark_read_as_of(user_id, timestamp).await?;
    Ok(changed_json(&report))
}
