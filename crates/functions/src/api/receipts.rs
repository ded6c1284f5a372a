//! Read-receipt routes: mark messages read by id, by list or up to a time; `?async` hands the
//! work to the `history` function and answers at once.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use sqs_push_core::history::receipts::ReceiptReport;
use sqs_push_core::model::ids::{IdError, UserId};
use sqs_push_core::model::message::MessageId;

use super::extract::{Path, Query};
use super::params::{self, InvalidParameter, SetReadQuery};
use super::paths::UserPath;
use super::{ApiError, ApiState};

/// `{userId}/message/{messageId}[,{messageId}...]`: ids named in the path.
#[derive(Deserialize)]
#[serde(try_from = "RawNamedPath")]
pub struct NamedPath {
    user_id: UserId,
    message_ids: Vec<MessageId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNamedPath {
    user_id: String,
    message_id: String,
}

impl TryFrom<RawNamedPath> for NamedPath {
    type Error = IdError;

    fn try_from(raw: RawNamedPath) -> Result<Self, IdError> {
        Ok(Self {
            user_id: UserId::parse(&raw.user_id)?,
            message_ids: params::id_list(&raw.message_id)?,
        })
    }
}

/// `{userId}/asof/{timestamp}`: every message created at or before a time.
#[derive(Deserialize)]
#[serde(try_from = "RawAsOfPath")]
pub struct AsOfPath {
    user_id: UserId,
    /// `created` is whole seconds, so "created at or before t" is "created <= floor(t)".
    created_up_to: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAsOfPath {
    user_id: String,
    timestamp: String,
}

/// Why an as-of path was refused: its user id or its time.
#[derive(Debug, thiserror::Error)]
pub enum AsOfPathError {
    /// The user id.
    #[error(transparent)]
    User(#[from] IdError),
    /// The time.
    #[error(transparent)]
    Timestamp(#[from] InvalidParameter),
}

impl TryFrom<RawAsOfPath> for AsOfPath {
    type Error = AsOfPathError;

    fn try_from(raw: RawAsOfPath) -> Result<Self, AsOfPathError> {
        Ok(Self {
            user_id: UserId::parse(&raw.user_id)?,
            created_up_to: params::epoch_time("timestamp", &raw.timestamp)?.floor(),
        })
    }
}

/// Whether the query asks for the work to be handed off (`?async`).
fn handed_off(query: &SetReadQuery) -> Result<bool, ApiError> {
    Ok(params::handed_off(query)?)
}

/// The answer of a set-read.
#[derive(Serialize)]
#[serde(untagged)]
pub enum SetReadAnswer {
    /// `{"success": true, "changed": n, "messageIds": […], "messages_receipted": […]}`: the
    /// same ids under `messages_receipted`, the original stack's name for them.
    Changed {
        /// Always true.
        success: bool,
        /// How many messages became read.
        changed: usize,
        /// The ids that became read.
        #[serde(rename = "messageIds")]
        message_ids: Vec<MessageId>,
        /// The same ids.
        messages_receipted: Vec<MessageId>,
        /// Ids without a history row (yet): set them read again later.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        missing: Vec<MessageId>,
        /// `asof` left others for the next call.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
    /// `{"success": true, "async": true, "chunks": n}`: handed to the `history` function.
    HandedOff {
        /// Always true.
        success: bool,
        /// Always true.
        #[serde(rename = "async")]
        handed_off: bool,
        /// The invocations the work was split into.
        chunks: usize,
        /// `asof` found more unread ids than one call hands off.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
}

impl SetReadAnswer {
    fn changed(report: ReceiptReport) -> Json<Self> {
        Json(Self::Changed {
            success: true,
            changed: report.changed.len(),
            message_ids: report.changed.clone(),
            messages_receipted: report.changed,
            missing: report.missing,
            more: report.more,
        })
    }

    fn handed_off(chunks: usize, more: bool) -> Json<Self> {
        Json(Self::HandedOff {
            success: true,
            handed_off: true,
            chunks,
            more,
        })
    }
}

/// Marks the ids, or hands them off, and answers.
async fn receipt(
    state: ApiState,
    user_id: UserId,
    ids: Vec<MessageId>,
    async_: bool,
) -> Result<Json<SetReadAnswer>, ApiError> {
    params::check_id_count(ids.len(), async_)?;
    if async_ {
        let chunks = state.receipts.hand_off(user_id, &ids).await?;
        return Ok(SetReadAnswer::handed_off(chunks, false));
    }
    let report = state.receipts.mark_read(user_id, &ids).await?;
    Ok(SetReadAnswer::changed(report))
}

/// `GET /messages/set-read/user/{userId}/message/{messageId}[,{messageId}...][?async]`
pub async fn named(
    State(state): State<ApiState>,
    Path(path): Path<NamedPath>,
    Query(query): Query<SetReadQuery>,
) -> Result<Json<SetReadAnswer>, ApiError> {
    receipt(state, path.user_id, path.message_ids, handed_off(&query)?).await
}

/// `POST /messages/set-read/user/{userId}[?async]` with a JSON list of message ids.
pub async fn listed(
    State(state): State<ApiState>,
    Path(path): Path<UserPath>,
    Query(query): Query<SetReadQuery>,
    body: Bytes,
) -> Result<Json<SetReadAnswer>, ApiError> {
    let ids = params::id_body(&body)?;
    receipt(state, path.user_id, ids, handed_off(&query)?).await
}

/// `GET /messages/set-read/user/{userId}/asof/{timestamp}[?async]`: every unread message
/// created at or before `timestamp` (epoch seconds, a fraction allowed).
pub async fn as_of(
    State(state): State<ApiState>,
    Path(path): Path<AsOfPath>,
    Query(query): Query<SetReadQuery>,
) -> Result<Json<SetReadAnswer>, ApiError> {
    if handed_off(&query)? {
        let (chunks, more) = state
            .receipts
            .hand_off_as_of(path.user_id, path.created_up_to)
            .await?;
        return Ok(SetReadAnswer::handed_off(chunks, more));
    }
    let report = state
        .receipts
        .mark_read_as_of(path.user_id, path.created_up_to)
        .await?;
    Ok(SetReadAnswer::changed(report))
}
