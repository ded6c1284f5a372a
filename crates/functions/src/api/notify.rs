//! Notify routes: query parameters (GET) or a JSON object body (POST) become the message; its
//! `accountId`, `userId` and `sessionId` fields target it exactly as a Kinesis record's do.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::{Extension, Json};
use serde::Serialize;
use serde_json::{Map, Value};
use sqs_push_core::dispatch::{
    DeliveryCounts, DispatchReport, Target, TargetFields, widening_field,
};
use sqs_push_core::model::message::{BROADCAST_FIELD, Fields, Message, MessageId, parse_flag};

use super::extract::{Path, query_pairs};
use super::paths::{AccountPath, ChannelPath, UserPath, UserSessionPath};
use super::{ApiError, ApiState};

/// A message body above this is refused before parsing; SQS takes 1 MiB after encryption.
const MAX_BODY_BYTES: usize = 700 * 1024;

/// A query string above this is refused: a message that long belongs in a POST body.
const MAX_QUERY_BYTES: usize = 16 * 1024;

/// The message fields of a request: the query string's pairs for GET, the JSON object for POST.
fn fields(method: &Method, query: Option<&str>, body: &[u8]) -> Result<Fields, ApiError> {
    if method == Method::POST {
        if body.len() > MAX_BODY_BYTES {
            return Err(ApiError::too_large(format!(
                "message body is {} bytes; at most {MAX_BODY_BYTES} are accepted",
                body.len()
            )));
        }
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => Ok(fields),
            Ok(_) => Err(ApiError::bad_request("message body must be a JSON object")),
            Err(error) => Err(ApiError::bad_request(format!(
                "message body is not valid JSON: {error}"
            ))),
        };
    }
    let query_len = query.map_or(0, str::len);
    if query_len > MAX_QUERY_BYTES {
        return Err(ApiError::too_large(format!(
            "query string is {query_len} bytes; at most {MAX_QUERY_BYTES} are accepted (POST a JSON body instead)"
        )));
    }
    let mut fields = Map::new();
    for (name, value) in query_pairs(query)? {
        fields.insert(name, Value::String(value));
    }
    Ok(fields)
}

/// The answer of a notify call.
#[derive(Serialize)]
#[serde(untagged)]
pub enum NotifyAnswer {
    /// A 200: `{"success": true, <the dispatch report's fields>}`, what was sent.
    Sent {
        /// Always true.
        success: bool,
        /// What the dispatch did.
        #[serde(flatten)]
        report: DispatchReport,
    },
    /// A 202: accepted for segmented fan-out; the plan, not the outcome (docs/http-api.md).
    #[serde(rename_all = "camelCase")]
    Accepted {
        /// Always true.
        success: bool,
        /// The message's id.
        message_id: String,
        /// The broadcast's scan segments.
        segments: Option<usize>,
        /// The table's approximate size when the broadcast was planned.
        estimated_sessions: Option<u64>,
    },
}

/// A notify route's answer, with what its dispatch did left for the metrics layer.
type NotifyResponse = (StatusCode, Extension<DeliveryCounts>, Json<NotifyAnswer>);

/// The one notify flow: the path's target, narrowed by target fields in the message (never
/// contradicted), or — on `/notify` — the message's own target fields, everyone when it has none.
async fn notify(
    state: ApiState,
    path: Option<Target>,
    method: Method,
    query: Option<String>,
    body: Bytes,
) -> Result<NotifyResponse, ApiError> {
    let mut fields = fields(&method, query.as_deref(), &body)?;
    let broadcast = match fields.remove(BROADCAST_FIELD) {
        Some(value) => parse_flag(BROADCAST_FIELD, &value)?,
        None => false,
    };
    let named = TargetFields::from_fields(&fields)?;
    let target = match path {
        Some(path) => Some(
            named
                .merge(TargetFields::from(&path))?
                .target()?
                .unwrap_or(path),
        ),
        None => named.target()?,
    };
    let target = match (target, broadcast) {
        (Some(_), true) => {
            return Err(ApiError::bad_request(format!(
                "{BROADCAST_FIELD} is true but the message names a target too; send one or the other"
            )));
        }
        (Some(target), false) => target,
        (None, true) => Target::Everyone,
        (None, false) => {
            // The everyone route with no target: a field that looks like one must not widen it.
            widening_field(&fields)?;
            Target::Everyone
        }
    };
    // Stamping and the size check are dispatch's: one place for every path.
    let message = Message::new(fields, MessageId::random)?;
    let message_id = message.id().to_string();
    let report = state
        .dispatcher
        .dispatch(&target, message)
        .await
        .map_err(|error| ApiError::from(error).with_message_id(message_id))?;
    if report.accepted {
        return Ok((
            StatusCode::ACCEPTED,
            Extension(report.counts),
            Json(NotifyAnswer::Accepted {
                success: true,
                message_id: report.message_id,
                segments: report.segments,
                estimated_sessions: report.estimated_sessions,
            }),
        ));
    }
    Ok((
        StatusCode::OK,
        Extension(report.counts),
        Json(NotifyAnswer::Sent {
            success: true,
            report,
        }),
    ))
}

/// `/notify`: the target the message's fields name; every session when it names none (this route
/// is the explicit everyone marker).
pub async fn everyone(
    State(state): State<ApiState>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<NotifyResponse, ApiError> {
    notify(state, None, method, query, body).await
}

/// `/notify/account/{accountId}`: every session of an account.
pub async fn account(
    State(state): State<ApiState>,
    Path(path): Path<AccountPath>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<NotifyResponse, ApiError> {
    notify(state, Some(path.into()), method, query, body).await
}

/// `/notify/channel/{channel}`: every live session subscribed to the channel.
pub async fn channel(
    State(state): State<ApiState>,
    Path(path): Path<ChannelPath>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<NotifyResponse, ApiError> {
    notify(state, Some(path.into()), method, query, body).await
}

/// `/notify/user/{userId}`: every session of a user.
pub async fn user(
    State(state): State<ApiState>,
    Path(path): Path<UserPath>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<NotifyResponse, ApiError> {
    notify(state, Some(path.into()), method, query, body).await
}

/// `/notify/user/{userId}/session/{sessionId}`: one session.
pub async fn session(
    State(state): State<ApiState>,
    Path(path): Path<UserSessionPath>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<NotifyResponse, ApiError> {
    notify(state, Some(path.into()), method, query, body).await
}
