//! The error every port returns: what was attempted, on what, and whether retrying can help.

/// How a caller should treat a failed port call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortErrorKind {
    /// The resource does not exist (a queue or identity already gone, a missing row).
    NotFound,
    /// A condition on a write did not hold (the row changed or already exists).
    ConditionFailed,
    /// Throttling, timeouts, 5xx: the same call may succeed later.
    Transient,
    /// The payload exceeds a service limit: sending it again cannot help.
    TooLarge,
    /// Anything else: bad configuration, permissions, malformed data.
    Other,
}

/// A failed call to storage, a queue service or the identity provider.
///
/// Carries the operation and the resource (a table, a queue name, an identity id) but never a
/// key, a credential or a message body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} on {resource} failed: {message}")]
pub struct PortError {
    /// What was attempted, e.g. `SQS CreateQueue`.
    pub operation: &'static str,
    /// Which resource it was attempted on.
    pub resource: String,
    /// What went wrong, in the service's words.
    pub message: String,
    /// Whether retrying can help.
    pub kind: PortErrorKind,
}

impl PortError {
    /// Builds an error of the given kind.
    pub fn new(
        kind: PortErrorKind,
        operation: &'static str,
        resource: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            operation,
            resource: resource.into(),
            message: message.into(),
            kind,
        }
    }

    /// True when the resource was already gone.
    pub fn is_not_found(&self) -> bool {
        self.kind == PortErrorKind::NotFound
    }
}
