//! One place that turns SDK errors into domain errors, so every adapter classifies alike.

use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use sqs_push_core::{PortError, PortErrorKind};

const NOT_FOUND_CODES: &[&str] = &[
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
    "ResourceNotFoundException",
    "NoSuchEntity",
];

const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "RequestThrottled",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalErrorException",
];

/// Classifies an SDK error. The message is the service's code and message, never the request.
pub(crate) fn port_error<E, R>(
    operation: &'static str,
    resource: impl Into<String>,
    error: SdkError<E, R>,
) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (kind, message) = match &error {
        SdkError::ServiceError(context) => {
            let service_error = context.err();
            let code = service_error.code().unwrap_or("Unknown");
            let kind = if NOT_FOUND_CODES.contains(&code) {
                PortErrorKind::NotFound
            } else if code == "ConditionalCheckFailedException" {
                PortErrorKind::ConditionFailed
            } else if TRANSIENT_CODES.contains(&code) {
                PortErrorKind::Transient
            } else {
                PortErrorKind::Other
            };
            let message = service_error.message().unwrap_or("");
            (kind, format!("{code}: {message}"))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => (
            PortErrorKind::Transient,
            aws_smithy_types::error::display::DisplayErrorContext(&error).to_string(),
        ),
        _ => (
            PortErrorKind::Other,
            aws_smithy_types::error::display::DisplayErrorContext(&error).to_string(),
        ),
    };
    PortError::new(kind, operation, resource, message)
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
