//! Channel routes: subscribe and unsubscribe a session, and who is on a channel. Publishing is
//! a notify route (`/notify/channel/{channel}`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use serde::Serialize;
use serde_json::Value;
use sqs_push_core::channel::{MAX_CHANNELS_PER_CALL, Member};
use sqs_push_core::model::channel::ChannelName;
use sqs_push_core::model::recipient::ScanPosition;
use sqs_push_core::ports::SessionCursor;
use sqs_push_core::upstream::presence::OnlineSession;

use super::extract::{NoQuery, Path, Query, object_body, query};
use super::params::{self, ListQuery};
use super::paths::{SessionChannelPath, SessionPath};
use super::{ApiError, ApiState};

/// The body key of a subscribe (and a create) that lists channels.
pub const CHANNELS_KEY: &str = "channels";

/// `{"success": true, "channel": …}`, or `"channels": […]` for a list.
#[derive(Serialize)]
pub struct SubscribeAnswer {
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channels: Option<Vec<String>>,
}

/// Channel names from a body's `channels` list: 1 to [`MAX_CHANNELS_PER_CALL`] strings, each a
/// valid name; anything else is a 400 naming `channels` or the bad `channel`.
pub fn channel_list(value: &Value) -> Result<Vec<ChannelName>, ApiError> {
    let Value::Array(names) = value else {
        return Err(ApiError::bad_request(
            "invalid channels: must be a list of channel names",
        ));
    };
    if names.len() > MAX_CHANNELS_PER_CALL {
        return Err(ApiError::bad_request(format!(
            "invalid channels: at most {MAX_CHANNELS_PER_CALL} channels per call, {} given",
            names.len()
        )));
    }
    names
        .iter()
        .map(|name| match name {
            Value::String(name) => ChannelName::parse(name).map_err(ApiError::from),
            _ => Err(ApiError::bad_request(
                "invalid channel: each of channels must be a string",
            )),
        })
        .collect()
}

/// Channel names from a query's comma-separated `channels` value.
pub fn channel_csv(raw: &str) -> Result<Vec<ChannelName>, ApiError> {
    let names: Vec<Value> = raw.split(',').map(Value::from).collect();
    channel_list(&Value::Array(names))
}

/// `GET|POST /subscribe/{accountId}/{userId}/{sessionId}/{channel}[?presence=true]`: subscribes
/// a live session; again is a no-op. `presence=true` switches the channel's join and leave
/// events on (for every subscriber; there is no switching them off). A POST body, if any, is
/// `{}`.
pub async fn subscribe(
    State(state): State<ApiState>,
    Path(path): Path<SessionChannelPath>,
    Query(options): Query<params::SubscribeQuery>,
    body: Bytes,
) -> Result<Json<SubscribeAnswer>, ApiError> {
    object_body(&body, &[])?;
    let presence_events = options
        .presence
        .as_deref()
        .map(params::presence_flag)
        .transpose()?
        .unwrap_or(false);
    let SessionPath {
        account_id,
        user_id,
        session_id,
    } = path.session;
    state
        .channels
        .subscribe(
            account_id,
            user_id,
            &session_id,
            std::slice::from_ref(&path.channel),
        )
        .await?;
    if presence_events {
        state.presence.enable_events(&path.channel).await?;
    }
    Ok(Json(SubscribeAnswer {
        success: true,
        channel: Some(path.channel.to_string()),
        channels: None,
    }))
}

/// `POST /subscribe/{accountId}/{userId}/{sessionId}` with `{"channels": […]}`: several
/// channels at once, all or nothing.
pub async fn subscribe_many(
    State(state): State<ApiState>,
    Path(path): Path<SessionPath>,
    Query(NoQuery {}): Query<NoQuery>,
    body: Bytes,
) -> Result<Json<SubscribeAnswer>, ApiError> {
    let fields = object_body(&body, &[CHANNELS_KEY])?;
    let Some(list) = fields.get(CHANNELS_KEY) else {
        return Err(ApiError::bad_request(
            "missing channels: POST {\"channels\": [\"a\", \"b\"]}",
        ));
    };
    let channels = channel_list(list)?;
    state
        .channels
        .subscribe(path.account_id, path.user_id, &path.session_id, &channels)
        .await?;
    Ok(Json(SubscribeAnswer {
        success: true,
        channel: None,
        channels: Some(channels.iter().map(ToString::to_string).collect()),
    }))
}

/// `{"success": true, "channel": …, "subscribed": <whether it was>}`
#[derive(Serialize)]
pub struct UnsubscribeAnswer {
    success: bool,
    channel: String,
    subscribed: bool,
}

/// `GET|POST /unsubscribe/{accountId}/{userId}/{sessionId}/{channel}`: 200 whether or not the
/// session was subscribed.
pub async fn unsubscribe(
    State(state): State<ApiState>,
    Path(path): Path<SessionChannelPath>,
    Query(NoQuery {}): Query<NoQuery>,
    body: Bytes,
) -> Result<Json<UnsubscribeAnswer>, ApiError> {
    object_body(&body, &[])?;
    let SessionPath {
        account_id,
        user_id,
        session_id,
    } = path.session;
    let subscribed = state
        .channels
        .unsubscribe(account_id, user_id, &session_id, &path.channel)
        .await?;
    Ok(Json(UnsubscribeAnswer {
        success: true,
        channel: path.channel.to_string(),
        subscribed,
    }))
}

/// `GET /channels/{channel}`, `…/sessions` or `…/presence`.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ChannelAnswer {
    /// `{"success": true, "channel", "sessions": <online count>, "users": <distinct online
    /// users>, "online": [{accountId, userId, sessionId, lastSeen}], "next"}`
    Presence {
        /// Always true.
        success: bool,
        /// The channel.
        channel: String,
        /// Online sessions in the channel.
        sessions: u64,
        /// Distinct users among them.
        users: u64,
        /// A page of them.
        online: Vec<OnlineSession>,
        /// The token of the next page, `null` on the last.
        next: Option<String>,
    },
    /// `{"success": true, "channel": …, "sessions": <live subscribed sessions>}`
    Count {
        /// Always true.
        success: bool,
        /// The channel.
        channel: String,
        /// Live subscribed sessions.
        sessions: u64,
    },
    /// `{"success": true, "channel": …, "sessions": [{accountId, userId, sessionId}], "next"?}`
    Members {
        /// Always true.
        success: bool,
        /// The channel.
        channel: String,
        /// A page of live members: ids only.
        sessions: Vec<Member>,
        /// The token of the next page.
        #[serde(skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
}

/// `GET /channels/{channel}` (how many live sessions are subscribed) and
/// `GET /channels/{channel}/sessions?limit&next` (a page of them). One route captures the rest
/// of the path: a channel name holds no `/`, so a trailing `/sessions` is never part of one.
pub async fn channel(
    State(state): State<ApiState>,
    Path(rest): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ChannelAnswer>, ApiError> {
    if let Some(name) = rest.strip_suffix("/presence") {
        let channel = ChannelName::parse(name)?;
        let list: ListQuery = query(raw.as_deref())?;
        let limit = params::limit(list.limit.as_deref())?;
        let after = list
            .next
            .as_deref()
            .map(params::session_cursor)
            .transpose()?
            .map(|cursor| (cursor.user_id, cursor.session_id));
        let presence = state.presence.channel(&channel, limit, after).await?;
        return Ok(Json(ChannelAnswer::Presence {
            success: true,
            channel: channel.to_string(),
            sessions: presence.sessions,
            users: presence.users,
            online: presence.online,
            next: presence.next.map(|(user_id, session_id)| {
                params::session_token(&SessionCursor {
                    user_id,
                    session_id,
                })
            }),
        }));
    }
    if let Some(name) = rest.strip_suffix("/sessions") {
        let channel = ChannelName::parse(name)?;
        let list: ListQuery = query(raw.as_deref())?;
        let limit = params::limit(list.limit.as_deref())?;
        let after = list
            .next
            .as_deref()
            .map(params::session_cursor)
            .transpose()?
            .map(|cursor| ScanPosition {
                user_id: cursor.user_id,
                session_id: cursor.session_id,
            });
        let page = state.channels.members(&channel, limit, after).await?;
        return Ok(Json(ChannelAnswer::Members {
            success: true,
            channel: channel.to_string(),
            sessions: page.members,
            next: page.next.map(|position| {
                params::session_token(&SessionCursor {
                    user_id: position.user_id,
                    session_id: position.session_id,
                })
            }),
        }));
    }
    let channel = ChannelName::parse(&rest)?;
    let NoQuery {} = query(raw.as_deref())?;
    let sessions = state.channels.count(&channel).await?;
    Ok(Json(ChannelAnswer::Count {
        success: true,
        channel: channel.to_string(),
        sessions,
    }))
}
