//! The identity port (Cognito + STS): identities and the credentials they get.

use async_trait::async_trait;

use crate::model::session::{Credentials, QueueRef};
use crate::ports::PortError;

/// The identity pool and the credentials it hands out.
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// A new developer-authenticated identity for one session; `owner` (`<userId>:<sessionId>`)
    /// starts its developer user identifier, which the adapter makes unique per call, so every
    /// session gets an identity of its own. Returns the identity id.
    async fn create_identity(&self, owner: &str) -> Result<String, PortError>;
    /// Temporary credentials for `identity_id` that can read `queue`.
    async fn credentials(
        &self,
        identity_id: &str,
        queue: &QueueRef,
    ) -> Result<Credentials, PortError>;
    /// Deletes identities (at most 60 per call); returns the ids that were not processed and
    /// should be retried. Ids that do not exist count as deleted.
    async fn delete_identities(&self, identity_ids: &[String]) -> Result<Vec<String>, PortError>;
}
