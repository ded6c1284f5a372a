//! Session routes: create, renew, status (one, or a page of all), destroy.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use sqs_push_core::model::ids::{AccountId, SessionId, UserId};
use sqs_push_core::model::session::Session;

use super::params::{self, QueryParams};
use super::{ApiError, ApiState};

/// `GET /create/{accountId}/{userId}/{sessionId}[?MessageRetentionPeriod=seconds]`
pub async fn create(
    State(state): State<ApiState>,
    Path(path): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let (account_id, user_id, session_id) = ids(path)?;
    let retention = QueryParams::parse(query.as_deref())?
        .get("MessageRetentionPeriod")
        .map(params::retention)
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
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = QueryParams::parse(query.as_deref())?;
    let limit = params::limit(query.get("limit"))?;
    let after = query.get("next").map(params::session_cursor).transpose()?;
    let page = state.sessions.list(limit, after).await?;
    let mut answer = json!({"success": true, "sessions": page.sessions});
    if let Some(next) = page.next {
        answer["next"] = Value::from(params::session_token(&next));
    }
    Ok(Json(answer))
}
