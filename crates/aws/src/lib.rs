//! The ports of `sqs-push-core` implemented on the AWS SDK: the sessions table on DynamoDB,
//! queues on SQS, identities and credentials on Cognito and STS.
//!
//! Not for: routing or business rules. Adapters translate between domain types and SDK calls and
//! classify failures into [`sqs_push_core::PortError`]s; retries are the SDK's own.

#![deny(missing_docs)]

pub mod errors;
pub mod history;
pub mod identities;
pub mod invoker;
pub mod queues;
pub mod rows;
pub mod sessions;
pub mod upstream;

pub use history::DynamoHistoryStore;
pub use identities::{CognitoIdentities, CredentialFlow, IdentitySettings};
pub use invoker::LambdaInvoker;
pub use queues::SqsQueues;
pub use sessions::DynamoSessionStore;
pub use upstream::{AwsAppTarget, DynamoUpstreamStore};

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Where the SDK talks to: real AWS, or an emulator at `endpoint_url`.
#[derive(Debug, Clone, Default)]
pub struct Endpoint {
    /// The region to sign for.
    pub region: String,
    /// An endpoint for every service (the local emulator); `None` on AWS.
    pub endpoint_url: Option<String>,
    /// Fixed credentials (the emulator's, or a session's in tests); `None` uses the default
    /// provider chain.
    pub credentials: Option<aws_credential_types::Credentials>,
}

/// The SDK clients of one stack, built once per process and cloned cheaply.
#[derive(Debug, Clone)]
pub struct Clients {
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Cognito identity pools.
    pub cognito: aws_sdk_cognitoidentity::Client,
    /// STS.
    pub sts: aws_sdk_sts::Client,
    /// Lambda, for async invokes.
    pub lambda: aws_sdk_lambda::Client,
}

impl Clients {
    /// Loads the SDK config and builds every client from it.
    pub async fn connect(endpoint: &Endpoint) -> Self {
        let sdk = load_sdk_config(endpoint).await;
        Self {
            sqs: aws_sdk_sqs::Client::new(&sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            cognito: aws_sdk_cognitoidentity::Client::new(&sdk),
            sts: aws_sdk_sts::Client::new(&sdk),
            lambda: aws_sdk_lambda::Client::new(&sdk),
        }
    }
}

/// The one SDK config loader, for the functions, the local stack, the tools and the tests:
/// credentials from the environment's default chain (or fixed ones for the emulator),
/// the SDK's standard retry policy (3 attempts, exponential backoff with jitter) and timeouts that
/// keep a stuck call from eating a Lambda's whole budget.
pub async fn load_sdk_config(endpoint: &Endpoint) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(endpoint.region.clone()))
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(url) = &endpoint.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(credentials) = &endpoint.credentials {
        loader = loader.credentials_provider(credentials.clone());
    }
    loader.load().await
}
