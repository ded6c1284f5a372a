//! Session routes: create, renew, status (one, or a page of all), destroy.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};
use sqs_push_core::ids::{AccountId, SessionId, UserId};
use sqs_push_core::ports::SessionCursor;
use sqs_push_core::session::{DEFAULT_LIST_LIMIT, Session, parse_list_limit, parse_retention};

use super::{ApiError, ApiState};

/// `GET /create/{accountId}/{userId}/{sessionId}[?MessageRetentionPeriod=seconds]`
pub async fn create(
    State(state): State<ApiState>,
    Path(path): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (account_id, user_id, session_id) = ids(path)?;
    let retention = query
        .get("MessageRetentionPeriod")
        .map(|raw| parse_retention(raw))
        .transpose()?;
    let session = state
        .sessions
        .create(account_id, user_id, session_id, retention)
        .await?;
    Ok(session_answer(&state, &session))
}

/// The three path ids, validated.
fn ids(
    (account_id, user_id, session_id): (String, String, String),
) -> Result<(AccountId, UserId, SessionId), ApiError> {
    Ok((
        AccountId::parse(&account_id)?,
        UserId::parse(&user_id)?,
        SessionId::parse(&session_id)?,
    ))
}

/// `{"success": true, "session": <as create returns it>}`
fn session_answer(state: &ApiState, session: &Session) -> Json<Value> {
    let region = &state.sessions.settings().region;
    Json(json!({"success": true, "session": session.to_client(region)}))
}

/// `GET /renew/{accountId}/{userId}/{sessionId}`: new credentials, same queue and key.
pub async fn renew(
    State(state): State<ApiState>,
    Path(path): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (account_id, user_id, session_id) = ids(path)?;
    let session = state
        .sessions
        .renew(account_id, user_id, session_id)
        .await?;
    Ok(session_answer(&state, &session))
}

/// `GET /status/{accountId}/{userId}/{sessionId}`: the live session as create returned it.
pub async fn status(
    State(state): State<ApiState>,
    Path(path): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (account_id, user_id, session_id) = ids(path)?;
    let session = state
        .sessions
        .status(account_id, user_id, session_id)
        .await?;
    Ok(session_answer(&state, &session))
}

/// `GET /destroy/{accountId}/{userId}/{sessionId}`: removes the row and the queue.
pub async fn destroy(
    State(state): State<ApiState>,
    Path(path): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (account_id, user_id, session_id) = ids(path)?;
    let session = state
        .sessions
        .destroy(account_id, user_id, session_id)
        .await?;
    Ok(Json(json!({
        "success": true,
        "accountId": session.account_id.get(),
        "userId": session.user_id.get(),
        "sessionId": session.session_id.as_str(),
    })))
}

/// `GET /status[?limit=n&next=token]`: a page of live sessions, without keys or credentials.
pub async fn list(
    State(state): State<ApiState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = query
        .get("limit")
        .map(|raw| parse_list_limit(raw))
        .transpose()?
        .unwrap_or(DEFAULT_LIST_LIMIT);
    let after = query
        .get("next")
        .map(|token| SessionCursor::from_token(token))
        .transpose()?;
    let page = state.sessions.list(limit, after).await?;
    let mut answer = json!({"success": true, "sessions": page.sessions});
    if let Some(next) = page.next {
        answer["next"] = Value::from(next.to_token());
    }
    Ok(Json(answer))
}
