//! How a function's failure reaches Lambda: under its kind (`Transient`, `NotFound`,
//! `TooLarge`, ...), so the error type CloudWatch, the function's metrics and a dead-letter record
//! show says what went wrong and whether a replay can help — not the type name of a boxed error.

use lambda_runtime::Diagnostic;
use sqs_push_core::{PortError, PortErrorKind};

/// A failed invocation of an event-driven function.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    /// A port call failed (after its retries and hand-ons).
    #[error(transparent)]
    Port(#[from] PortError),
    /// The payload is not what the function takes.
    #[error("the payload does not parse: {0}")]
    Payload(#[from] serde_json::Error),
}

impl FunctionError {
    /// The `errorType` Lambda reports.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::Port(error) => match error.kind {
                PortErrorKind::NotFound => "NotFound",
                PortErrorKind::ConditionFailed => "ConditionFailed",
                PortErrorKind::Transient => "Transient",
                PortErrorKind::TooLarge => "TooLarge",
                PortErrorKind::Other => "Other",
            },
            Self::Payload(_) => "MalformedPayload",
        }
    }
}

impl From<FunctionError> for Diagnostic {
    fn from(error: FunctionError) -> Self {
        Diagnostic {
            error_type: error.error_type().to_string(),
            // Port errors name the operation and the resource, never a key or a body.
            error_message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_sees_the_kind_of_a_port_error_and_its_message() {
        let error = FunctionError::from(PortError::new(
            PortErrorKind::Transient,
            "SQS SendMessageBatch",
            "queue-1",
            "throttled",
        ));
        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "Transient");
        assert_eq!(
            diagnostic.error_message,
            "SQS SendMessageBatch on queue-1 failed: throttled"
        );
        let malformed = serde_json::from_str::<u8>("x").unwrap_err();
        assert_eq!(
            Diagnostic::from(FunctionError::from(malformed)).error_type,
            "MalformedPayload"
        );
    }
}
