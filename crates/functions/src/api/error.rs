//! Errors as HTTP answers: one status per kind, a JSON body that says what was wrong.

use axum::Json;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sqs_push_core::dispatch::TargetError;
use sqs_push_core::model::ids::IdError;
use sqs_push_core::model::message::SizeError;
use sqs_push_core::session::SessionError;
use sqs_push_core::{PortError, PortErrorKind};

/// An error answer: `{"success": false, "error": "..."}`, plus `"messageId"` when the request
/// named or was given a message id, so the caller can retry the same message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    message_id: Option<String>,
}

impl ApiError {
    /// An error answering with `status`.
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            message_id: None,
        }
    }

    /// A 400 with a message naming what was wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// The same error, answering with the id of the message it concerns.
    pub fn with_message_id(mut self, message_id: impl Into<String>) -> Self {
        self.message_id = Some(message_id.into());
        self
    }

    /// A 413 with a message naming the limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What the answer says was wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<IdError> for ApiError {
    fn from(error: IdError) -> Self {
        Self::bad_request(error.to_string())
    }
}

impl From<TargetError> for ApiError {
    fn from(error: TargetError) -> Self {
        Self::bad_request(error.to_string())
    }
}

impl From<SizeError> for ApiError {
    fn from(error: SizeError) -> Self {
        Self::too_large(error.to_string())
    }
}

impl From<PortError> for ApiError {
    fn from(error: PortError) -> Self {
        // The full error (operation, resource, service message) goes to the log; the caller
        // learns which operation failed and whether to retry.
        tracing::error!(%error, "backend call failed");
        let status = match error.kind {
            PortErrorKind::Transient => StatusCode::SERVICE_UNAVAILABLE,
            PortErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_GATEWAY,
        };
        let message = match error.kind {
            // A size refusal names the limit the message broke (never its content): the
            // caller needs it to fix the message.
            PortErrorKind::TooLarge => error.message,
            _ => format!("{} failed; see the service log", error.operation),
        };
        Self::new(status, message)
    }
}

impl From<SessionError> for ApiError {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::Invalid(error) => error.into(),
            SessionError::Backend(error) => error.into(),
            SessionError::AccountMismatch { .. } => {
                Self::new(StatusCode::CONFLICT, error.to_string())
            }
            SessionError::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, error.to_string()),
            SessionError::Limit(message) => Self::bad_request(message),
            SessionError::Refused(message) => Self::new(StatusCode::FORBIDDEN, message),
        }
    }
}

/// `{"success": false, "error": "...", "messageId"?: "..."}`
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorAnswer {
    success: bool,
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorAnswer {
            success: false,
            error: self.message,
            message_id: self.message_id,
        };
        (self.status, Json(body)).into_response()
    }
}

/// Unknown paths get the same JSON shape as every other error.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no route for {}", uri.path()),
    )
}

/// Answers axum produces itself (405, 413, 415…) come as plain text; give them the same JSON
/// shape as every other error so clients parse one format.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let body = axum::body::to_bytes(response.into_body(), 16 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let message = if body.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        body
    };
    ApiError::new(status, message).into_response()
}
