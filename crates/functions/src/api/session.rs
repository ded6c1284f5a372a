//! Session routes: create, renew, status (one, or a page of all), destroy.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Method;
use serde::Serialize;
use serde_json::Value;
use sqs_push_core::model::session::{ClientSession, Session, SessionSummary};
use sqs_push_core::upstream::presence::Presence;

use super::channels::{CHANNELS_KEY, channel_csv, channel_list};
use super::extract::{NoQuery, Path, Query, object_body};
use super::params::{self, CreateQuery, ListQuery};
use super::paths::SessionPath;
use super::{ApiError, ApiState};

/// `{"success": true, "session": <as create returns it, with "upstreamUrl" when the stack has
/// an upstream queue; status adds "online" and "lastSeen">}`
#[derive(Serialize)]
pub struct SessionAnswer {
    success: bool,
    session: SessionWithUpstream,
}

/// The client session, the upstream queue's URL, and (status only) presence.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionWithUpstream {
    #[serde(flatten)]
    session: ClientSession,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_url: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    presence: Option<Presence>,
}

impl SessionAnswer {
    fn new(state: &ApiState, session: &Session, presence: Option<Presence>) -> Json<Self> {
        let region = &state.sessions.settings().region;
        Json(Self {
            success: true,
            session: SessionWithUpstream {
                session: session.to_client(region),
                upstream_url: state.upstream_url.clone(),
                presence,
            },
        })
    }
}

/// `GET /create/{accountId}/{userId}/{sessionId}[?MessageRetentionPeriod=seconds&channels=a,b]`,
/// or `POST` with `{"channels": ["a", "b"]}` (and/or `"MessageRetentionPeriod"`): creates the
/// session and subscribes it to the channels, so a page that joins its rooms at login costs one
/// call. Every parameter is checked before anything is created.
pub async fn create(
    State(state): State<ApiState>,
    Path(path): Path<SessionPath>,
    method: Method,
    Query(query): Query<CreateQuery>,
    body: Bytes,
) -> Result<Json<SessionAnswer>, ApiError> {
    let mut retention = query
        .retention
        .as_deref()
        .map(params::retention)
        .transpose()?;
    let mut channels = query
        .channels
        .as_deref()
        .map(channel_csv)
        .transpose()?
        .unwrap_or_default();
    if method == Method::POST {
        let fields = object_body(&body, &["MessageRetentionPeriod", CHANNELS_KEY])?;
        if fields.contains_key(CHANNELS_KEY) && query.channels.is_some()
            || fields.contains_key("MessageRetentionPeriod") && query.retention.is_some()
        {
            return Err(ApiError::bad_request(
                "a parameter is given both in the query and in the body; give it once",
            ));
        }
        if let Some(list) = fields.get(CHANNELS_KEY) {
            channels = channel_list(list)?;
        }
        match fields.get("MessageRetentionPeriod") {
            Some(Value::Number(seconds)) => {
                retention = Some(params::retention(&seconds.to_string())?);
            }
            Some(Value::String(seconds)) => retention = Some(params::retention(seconds)?),
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid MessageRetentionPeriod: must be a number of seconds",
                ));
            }
            None => {}
        }
    }
    let mut session = state
        .sessions
        .create(
            path.account_id,
            path.user_id,
            path.session_id.clone(),
            retention,
        )
        .await?;
    if !channels.is_empty() {
        session = state
            .channels
            .subscribe(path.account_id, path.user_id, &path.session_id, &channels)
            .await?;
    }
    Ok(SessionAnswer::new(&state, &session, None))
}

/// `GET /renew/{accountId}/{userId}/{sessionId}`: new credentials, same queue and key.
pub async fn renew(
    State(state): State<ApiState>,
    Path(path): Path<SessionPath>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<SessionAnswer>, ApiError> {
    let session = state
        .sessions
        .renew(path.account_id, path.user_id, path.session_id)
        .await?;
    Ok(SessionAnswer::new(&state, &session, None))
}

/// `GET /status/{accountId}/{userId}/{sessionId}`: the live session as create returned it.
pub async fn status(
    State(state): State<ApiState>,
    Path(path): Path<SessionPath>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<SessionAnswer>, ApiError> {
    let session = state
        .sessions
        .status(path.account_id, path.user_id, path.session_id)
        .await?;
    let presence = state
        .presence
        .of(session.user_id, &session.session_id)
        .await?;
    Ok(SessionAnswer::new(&state, &session, Some(presence)))
}

/// `{"success": true, "accountId": …, "userId": …, "sessionId": …}`
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DestroyAnswer {
    success: bool,
    account_id: u64,
    user_id: u64,
    session_id: String,
}

/// `GET /destroy/{accountId}/{userId}/{sessionId}`: removes the row and the queue.
pub async fn destroy(
    State(state): State<ApiState>,
    Path(path): Path<SessionPath>,
    Query(NoQuery {}): Query<NoQuery>,
) -> Result<Json<DestroyAnswer>, ApiError> {
    let session = state
        .sessions
        .destroy(path.account_id, path.user_id, path.session_id)
        .await?;
    Ok(Json(DestroyAnswer {
        success: true,
        account_id: session.account_id.get(),
        user_id: session.user_id.get(),
        session_id: session.session_id.as_str().to_string(),
    }))
}

/// `{"success": true, "sessions": […], "next"?: token}`
#[derive(Serialize)]
pub struct ListAnswer {
    success: bool,
    sessions: Vec<SessionSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// `GET /status[?limit=n&next=token]`: a page of live sessions, without keys or credentials.
pub async fn list(
    State(state): State<ApiState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<ListAnswer>, ApiError> {
    let limit = params::limit(query.limit.as_deref())?;
    let after = query
        .next
        .as_deref()
        .map(params::session_cursor)
        .transpose()?;
    let page = state.sessions.list(limit, after).await?;
    Ok(Json(ListAnswer {
        success: true,
        sessions: page.sessions,
        next: page.next.as_ref().map(params::session_token),
    }))
}
