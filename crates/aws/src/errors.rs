//! The one place that reads SDK errors: [`describe`] formats any of them, and `port_error`
//! classifies them into domain errors so every adapter treats a failure alike — with the SDK's
//! own lists of throttling and transient codes, so a code the SDK retries is never "permanent"
//! here.

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::display::DisplayErrorContext;
use sqs_push_core::{PortError, PortErrorKind};

const NOT_FOUND_CODES: &[&str] = &[
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
    "ResourceNotFoundException",
    "NoSuchEntity",
];

/// An SDK error as one line: the service's code and message when it answered, the whole error
/// chain otherwise. Never the request, so never a key or a body.
pub fn describe<E>(error: &E) -> String
where
    E: ProvideErrorMetadata + std::error::Error,
{
    match error.code() {
        Some(code) => format!("{code}: {}", error.message().unwrap_or("")),
        None => DisplayErrorContext(error).to_string(),
    }
}

/// Classifies an SDK error: not found, a failed condition, transient (throttling, the SDK's
/// transient codes, any 5xx, timeouts and connection failures) or other.
pub(crate) fn port_error<E>(
    operation: &'static str,
    resource: impl Into<String>,
    error: SdkError<E, Response>,
) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let kind = match &error {
        SdkError::ServiceError(context) => {
            let code = context.err().code().unwrap_or("Unknown");
            if NOT_FOUND_CODES.contains(&code) {
                PortErrorKind::NotFound
            } else if code == "ConditionalCheckFailedException" {
                PortErrorKind::ConditionFailed
            } else if THROTTLING_ERRORS.contains(&code)
                || TRANSIENT_ERRORS.contains(&code)
                || context.raw().status().is_server_error()
            {
                PortErrorKind::Transient
            } else {
                PortErrorKind::Other
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PortErrorKind::Transient
        }
        _ => PortErrorKind::Other,
    };
    PortError::new(kind, operation, resource, describe(&error))
}

/// A conditional write's result: true when it was written, false when its condition did not
/// hold (a race lost, a row gone: the caller's answer, not an error), any other failure as a
/// [`PortError`].
pub(crate) fn condition_held<T, E>(
    outcome: Result<T, SdkError<E, Response>>,
    operation: &'static str,
    resource: &str,
) -> Result<bool, PortError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match outcome {
        Ok(_) => Ok(true),
        Err(error) => {
            let error = port_error(operation, resource, error);
            if error.kind == PortErrorKind::ConditionFailed {
                Ok(false)
            } else {
                Err(error)
            }
        }
    }
}

/// An answer that lacks a field the API promises.
pub(crate) fn missing(
    operation: &'static str,
    resource: impl Into<String>,
    field: &str,
) -> PortError {
    PortError::new(
        PortErrorKind::Other,
        operation,
        resource,
        format!("the response has no {field}"),
    )
}
