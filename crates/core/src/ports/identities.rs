//! The identity port (Cognito + STS): identities and the credentials they get.

use async_trait::async_trait;

use crate::model::session::{Credentials, QueueRef};
use crate::ports::PortError;

/// The identity pool and the credentials it hands out.
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// A new developer-authenticated identity whose developer user identifier is `login` (the
    /// session service makes it unique per session, so every session gets an identity of its
    /// own). Returns the identity id.
    async fn create_identity(&self, login: &str) -> Result<String, PortError>;
    /// Temporary credentials for `identity_id` that can read `queue` (and send upstream).
    /// `login` is the developer user identifier the identity was created with; `None` (a row
    /// from before it was kept) makes the adapter look it up first. `role_session_name`
    /// ([`crate::upstream::sender::role_session_name`]) is what SQS stamps into the SenderId
    /// of every message the credentials send.
    async fn credentials(
        &self,
        identity_id: &str,
        login: Option<&str>,
        queue: &QueueRef,
        role_session_name: &str,
    ) -> Result<Credentials, PortError>;
    /// Deletes identities (at most 60 per call); returns the ids that were not processed and
    /// should be retried. Ids that do not exist count as deleted.
    async fn delete_identities(&self, identity_ids: &[String]) -> Result<Vec<String>, PortError>;
}
