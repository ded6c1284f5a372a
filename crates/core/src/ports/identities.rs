//! The identity port (Cognito + STS): identities and the credentials they get.

use async_trait::async_trait;

use crate::model::session::{Credentials, QueueRef};
use crate::ports::PortError;

/// The identity pool and the credentials it hands out.
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// A new unauthenticated identity; returns its id.
    async fn create_identity(&self) -> Result<String, PortError>;
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
