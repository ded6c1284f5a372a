//! Developer-authenticated identities on a Cognito identity pool that admits no unauthenticated
//! ones; credentials from the classic flow (the identity's OpenID token plus STS
//! AssumeRoleWithWebIdentity, the default, scoped to one queue by a session policy) or from the
//! enhanced flow (GetCredentialsForIdentity with the token as the login).
//!
//! Every token comes from GetOpenIdTokenForDeveloperIdentity, which only a caller with the api
//! function's IAM role may make: an identityId alone mints nothing (docs/security.md).

use async_trait::async_trait;
use aws_sdk_cognitoidentity::Client as CognitoClient;
use aws_sdk_sts::Client as StsClient;
use sqs_push_core::model::session::{Credentials, QueueRef};
use sqs_push_core::ports::IdentityProvider;
use sqs_push_core::session::policy::{queue_arn, session_policy};
use sqs_push_core::{PortError, PortErrorKind};

use crate::errors::{missing, port_error};

/// How credentials are obtained for an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialFlow {
    /// The developer identity's token + AssumeRoleWithWebIdentity with an inline policy naming
    /// the one queue.
    Classic,
    /// GetCredentialsForIdentity: Cognito assumes the role itself; no per-queue session policy,
    /// so only the role's owner-tag condition limits what the credentials can read.
    Enhanced,
}

impl std::str::FromStr for CredentialFlow {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, String> {
        match raw {
            "classic" => Ok(Self::Classic),
            "enhanced" => Ok(Self::Enhanced),
            other => Err(format!(
                "credential flow must be 'classic' or 'enhanced', not {other:?}"
            )),
        }
    }
}

/// What the identity adapter needs to know about the stack.
#[derive(Debug, Clone)]
pub struct IdentitySettings {
    /// The identity pool id.
    pub identity_pool_id: String,
    /// The identities' role (trusting `amr` `authenticated`), assumed in the classic flow.
    pub unauthenticated_role_arn: String,
    /// The pool's DeveloperProviderName, the key of every identity's login.
    pub developer_provider_name: String,
    /// Classic (default) or enhanced.
    pub flow: CredentialFlow,
    /// How long classic-flow credentials last (900–43200 s; Cognito's own flow gives one hour).
    pub credential_seconds: i32,
    /// `aws`, `aws-cn`, `aws-us-gov`: part of the queue ARN in the session policy.
    pub partition: String,
    /// The region of the queues.
    pub region: String,
    /// The stage's upstream queue, which the session policy lets each session send to;
    /// `None`: no upstream grant.
    pub upstream_queue_arn: Option<String>,
}

/// The login key of the tokens the enhanced flow passes to GetCredentialsForIdentity.
const COGNITO_LOGIN: &str = "cognito-identity.amazonaws.com";

/// [`IdentityProvider`] on Cognito and STS.
#[derive(Debug)]
pub struct CognitoIdentities {
    cognito: CognitoClient,
    sts: StsClient,
    settings: IdentitySettings,
}

impl CognitoIdentities {
    /// Wires the clients.
    pub fn new(cognito: CognitoClient, sts: StsClient, settings: IdentitySettings) -> Self {
        Self {
            cognito,
            sts,
            settings,
        }
    }

    /// A fresh OpenID token from GetOpenIdTokenForDeveloperIdentity for the identity and its own
    /// login, used at once by the credentials call and dropped with it: no token outlives the
    /// request that needed it (create pays one more Cognito call for that; a token kept in
    /// memory would outlive a create that failed half-way). The login comes from the session
    /// row; only a row written before it was kept makes this look it up with
    /// LookupDeveloperIdentity, which Cognito throttles at authentication volumes.
    async fn token(&self, identity_id: &str, login: Option<&str>) -> Result<String, PortError> {
        let looked_up;
        let login = match login {
            Some(login) => login,
            None => {
                looked_up = self.lookup_login(identity_id).await?;
                &looked_up
            }
        };
        let (_, token) = self.developer_token(Some(identity_id), login).await?;
        Ok(token)
    }

    /// The identity's developer user identifier, from LookupDeveloperIdentity.
    async fn lookup_login(&self, identity_id: &str) -> Result<String, PortError> {
        const LOOKUP: &str = "Cognito LookupDeveloperIdentity";
        let found = self
            .cognito
            .lookup_developer_identity()
            .identity_pool_id(&self.settings.identity_pool_id)
            .identity_id(identity_id)
            .max_results(1)
            .send()
            .await
            .map_err(|error| port_error(LOOKUP, identity_id, error))?;
        found
            .developer_user_identifier_list()
            .first()
            .cloned()
            .ok_or_else(|| missing(LOOKUP, identity_id, "DeveloperUserIdentifierList"))
    }

    /// GetOpenIdTokenForDeveloperIdentity: (identity id, token) for `login`, on `identity_id`
    /// when given, on a new identity otherwise.
    async fn developer_token(
        &self,
        identity_id: Option<&str>,
        login: &str,
    ) -> Result<(String, String), PortError> {
        const OPERATION: &str = "Cognito GetOpenIdTokenForDeveloperIdentity";
        let subject = identity_id.unwrap_or(&self.settings.identity_pool_id);
        let output = self
            .cognito
            .get_open_id_token_for_developer_identity()
            .identity_pool_id(&self.settings.identity_pool_id)
            .set_identity_id(identity_id.map(str::to_string))
            .logins(&self.settings.developer_provider_name, login)
            .send()
            .await
            .map_err(|error| port_error(OPERATION, subject, error))?;
        let id = output
            .identity_id()
            .ok_or_else(|| missing(OPERATION, subject, "IdentityId"))?;
        let token = output
            .token()
            .ok_or_else(|| missing(OPERATION, subject, "Token"))?;
        Ok((id.to_string(), token.to_string()))
    }

    async fn classic(
        &self,
        identity_id: &str,
        login: Option<&str>,
        queue: &QueueRef,
        role_session_name: &str,
    ) -> Result<Credentials, PortError> {
        let arn = queue_arn(&self.settings.partition, &self.settings.region, &queue.url)
            .ok_or_else(|| {
                PortError::new(
                    PortErrorKind::Other,
                    "session policy",
                    &queue.name,
                    "the queue URL has no account id and name to build an ARN from",
                )
            })?;
        let token = self.token(identity_id, login).await?;
        let output = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&self.settings.unauthenticated_role_arn)
            .role_session_name(role_session_name)
            .web_identity_token(&token)
            .policy(session_policy(
                &arn,
                self.settings.upstream_queue_arn.as_deref(),
            ))
            .duration_seconds(self.settings.credential_seconds)
            .send()
            .await
            .map_err(|error| port_error("STS AssumeRoleWithWebIdentity", identity_id, error))?;
        let credentials = output
            .credentials()
            .ok_or_else(|| missing("STS AssumeRoleWithWebIdentity", identity_id, "Credentials"))?;
        Ok(Credentials {
            access_key: credentials.access_key_id().to_string(),
            secret_key: credentials.secret_access_key().to_string(),
            session_token: credentials.session_token().to_string(),
            expires: epoch_seconds(credentials.expiration()),
        })
    }

    async fn enhanced(
        &self,
        identity_id: &str,
        login: Option<&str>,
    ) -> Result<Credentials, PortError> {
        const OPERATION: &str = "Cognito GetCredentialsForIdentity";
        let token = self.token(identity_id, login).await?;
        let output = self
            .cognito
            .get_credentials_for_identity()
            .identity_id(identity_id)
            .logins(COGNITO_LOGIN, token)
            .send()
            .await
            .map_err(|error| port_error(OPERATION, identity_id, error))?;
        let credentials = output
            .credentials()
            .ok_or_else(|| missing(OPERATION, identity_id, "Credentials"))?;
        let field = |value: Option<&str>, name: &str| {
            value
                .map(str::to_string)
                .ok_or_else(|| missing(OPERATION, identity_id, name))
        };
        Ok(Credentials {
            access_key: field(credentials.access_key_id(), "AccessKeyId")?,
            secret_key: field(credentials.secret_key(), "SecretKey")?,
            session_token: field(credentials.session_token(), "SessionToken")?,
            expires: credentials
                .expiration()
                .map(epoch_seconds)
                .ok_or_else(|| missing(OPERATION, identity_id, "Expiration"))?,
        })
    }
}

fn epoch_seconds(time: &aws_smithy_types::DateTime) -> u64 {
    u64::try_from(time.secs()).unwrap_or(0)
}

#[async_trait]
impl IdentityProvider for CognitoIdentities {
    async fn create_identity(&self, login: &str) -> Result<String, PortError> {
        // The token that comes with the new identity is dropped here, unseen by anyone.
        let (identity_id, _token) = self.developer_token(None, login).await?;
        Ok(identity_id)
    }

    async fn credentials(
        &self,
        identity_id: &str,
        login: Option<&str>,
        queue: &QueueRef,
        role_session_name: &str,
    ) -> Result<Credentials, PortError> {
        match self.settings.flow {
            CredentialFlow::Classic => {
                self.classic(identity_id, login, queue, role_session_name)
                    .await
            }
            CredentialFlow::Enhanced => self.enhanced(identity_id, login).await,
        }
    }

    async fn delete_identities(&self, identity_ids: &[String]) -> Result<Vec<String>, PortError> {
        if identity_ids.is_empty() {
            return Ok(Vec::new());
        }
        let output = self
            .cognito
            .delete_identities()
            .set_identity_ids_to_delete(Some(identity_ids.to_vec()))
            .send()
            .await
            .map_err(|error| {
                port_error(
                    "Cognito DeleteIdentities",
                    format!("{} identities", identity_ids.len()),
                    error,
                )
            })?;
        Ok(output
            .unprocessed_identity_ids()
            .iter()
            .filter_map(|unprocessed| unprocessed.identity_id().map(str::to_string))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_parse_by_name() {
        assert_eq!("classic".parse(), Ok(CredentialFlow::Classic));
        assert_eq!("enhanced".parse(), Ok(CredentialFlow::Enhanced));
        assert!("other".parse::<CredentialFlow>().is_err());
    }
}
