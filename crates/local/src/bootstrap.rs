//! Creates, idempotently, everything the `local` stage needs in the emulator: the tables (the
//! sessions, their channel memberships, the history), the event stream, the identity pool (developer-authenticated identities only) and its identities'
//! role.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ScalarAttributeType, StreamSpecification,
    StreamViewType, TimeToLiveSpecification,
};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use sqs_push_aws::errors::describe;
use sqs_push_core::session::policy::{identity_role_policy, identity_trust_policy};
use sqs_push_functions::config::StackConfig;

/// A step of the bootstrap failed.
#[derive(Debug, thiserror::Error)]
#[error("bootstrap step '{step}' failed: {message}")]
pub struct BootstrapError {
    step: &'static str,
    message: String,
}

fn failed<E: ProvideErrorMetadata + std::error::Error>(
    step: &'static str,
) -> impl FnOnce(E) -> BootstrapError {
    move |error| BootstrapError {
        step,
        message: describe(&error),
    }
}

fn already_exists<E: ProvideErrorMetadata>(error: &E) -> bool {
    matches!(
        error.code(),
        Some("ResourceInUseException" | "EntityAlreadyExists" | "ResourceAlreadyExistsException")
    )
}

/// Clients the bootstrap uses; the emulator accepts any credentials.
pub struct Provisioner {
    pub(crate) dynamodb: aws_sdk_dynamodb::Client,
    pub(crate) kinesis: aws_sdk_kinesis::Client,
    pub(crate) cognito: aws_sdk_cognitoidentity::Client,
    pub(crate) iam: aws_sdk_iam::Client,
    pub(crate) sqs: aws_sdk_sqs::Client,
}

/// What the bootstrap found or made, to complete the stack's config.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// The identity pool's id.
    pub identity_pool_id: String,
    /// The identities' role's ARN (the config still calls it the unauthenticated role).
    pub unauthenticated_role_arn: String,
    /// That role's RoleId: the SenderId prefix of every browser session's upstream message.
    pub browser_role_id: String,
    /// The upstream queue's URL.
    pub upstream_queue_url: String,
    /// The queue the consumer routes the app's messages to locally (`sqs-push-local-app`).
    pub app_queue_url: String,
}

/// How the local upstream queue behaves: SQS's visibility timeout (how soon a message whose
/// routing failed comes back) and redrive count (receives before the dead-letter queue).
#[derive(Debug, Clone, Copy)]
pub struct UpstreamQueueOptions {
    /// Seconds a received message stays invisible.
    pub visibility_seconds: u32,
    /// Receives before a message moves to the upstream dead-letter queue.
    pub max_receive_count: u32,
}

fn key(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .expect("name and type are set")
}

fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .expect("name and type are set")
}

fn all_attributes() -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::All)
        .build()
}

/// The account index's projection: the routing attributes only (keys are always projected) —
/// no credentials, session tokens or identity ids in the index.
fn routing_attributes() -> Projection {
    Projection::builder()
        .projection_type(ProjectionType::Include)
        .set_non_key_attributes(Some(
            sqs_push_aws::sessions::ACCOUNT_INDEX_ATTRIBUTES
                .iter()
                .map(ToString::to_string)
                .collect(),
        ))
        .build()
}

impl Provisioner {
    /// Runs every step; safe to repeat against an emulator that already has some or all of it.
    pub async fn provision(
        &self,
        config: &StackConfig,
        upstream: UpstreamQueueOptions,
    ) -> Result<Provisioned, BootstrapError> {
        self.sessions_table(config).await?;
        self.channels_table(config).await?;
        self.history_table(config).await?;
        self.upstream_table(config).await?;
        self.events_stream(config).await?;
        let upstream_queue_url = self.upstream_queues(config, upstream).await?;
        let app_queue_url = self.queue(&format!("{}-app", config.prefix()), &[]).await?;
        let (unauthenticated_role_arn, browser_role_id) = self.unauthenticated_role(config).await?;
        let identity_pool_id = self.identity_pool(config).await?;
        self.cognito
            .set_identity_pool_roles()
            .identity_pool_id(&identity_pool_id)
            .roles("authenticated", &unauthenticated_role_arn)
            .send()
            .await
            .map_err(failed("set identity pool roles"))?;
        Ok(Provisioned {
            identity_pool_id,
            unauthenticated_role_arn,
            browser_role_id,
            upstream_queue_url,
            app_queue_url,
        })
    }

    /// The consumer's table: key `pk` + `sk` (strings), TTL on `ttl`.
    async fn upstream_table(&self, config: &StackConfig) -> Result<(), BootstrapError> {
        let table = config.upstream_table();
        let created = self
            .dynamodb
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("pk", ScalarAttributeType::S))
            .attribute_definitions(attribute("sk", ScalarAttributeType::S))
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .send()
            .await;
        self.created_or_existing(created, "create upstream table")?;
        self.time_to_live(&table).await
    }

    /// The upstream queue as serverless.yml makes it (16 KiB, 4 days) with its dead-letter
    /// queue; returns the upstream queue's URL.
    async fn upstream_queues(
        &self,
        config: &StackConfig,
        options: UpstreamQueueOptions,
    ) -> Result<String, BootstrapError> {
        let dead_letters = self
            .queue(
                &config.upstream_dead_letter_queue(),
                &[("MessageRetentionPeriod", "1209600".to_string())],
            )
            .await?;
        let dead_letter_arn = self
            .sqs
            .get_queue_attributes()
            .queue_url(&dead_letters)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(failed("read the upstream dead-letter queue's ARN"))?
            .attributes()
            .and_then(|attributes| {
                attributes
                    .get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .cloned()
            })
            .ok_or(BootstrapError {
                step: "read the upstream dead-letter queue's ARN",
                message: "no QueueArn in the answer".to_string(),
            })?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dead_letter_arn,
            "maxReceiveCount": options.max_receive_count,
        })
        .to_string();
        let attributes = [
            ("MaximumMessageSize", "16384".to_string()),
            ("MessageRetentionPeriod", "345600".to_string()),
            ("VisibilityTimeout", options.visibility_seconds.to_string()),
            ("RedrivePolicy", redrive),
        ];
        let url = self.queue(&config.upstream_queue(), &attributes).await?;
        // An emulator a previous run provisioned keeps its queue: bring it to these options.
        let mut update = self.sqs.set_queue_attributes().queue_url(&url);
        for (name, value) in &attributes {
            update = update.attributes(aws_sdk_sqs::types::QueueAttributeName::from(*name), value);
        }
        update
            .send()
            .await
            .map_err(failed("set the upstream queue's attributes"))?;
        Ok(url)
    }

    /// Creates (or finds) a queue; returns its URL.
    async fn queue(
        &self,
        name: &str,
        attributes: &[(&str, String)],
    ) -> Result<String, BootstrapError> {
        let mut create = self.sqs.create_queue().queue_name(name);
        for (attribute, value) in attributes {
            create = create.attributes(
                aws_sdk_sqs::types::QueueAttributeName::from(*attribute),
                value,
            );
        }
        match create.send().await {
            Ok(created) => Ok(created.queue_url().unwrap_or_default().to_string()),
            Err(_) => Ok(self
                .sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(failed("find a local queue"))?
                .queue_url()
                .unwrap_or_default()
                .to_string()),
        }
    }

    async fn sessions_table(&self, config: &StackConfig) -> Result<(), BootstrapError> {
        let table = config.sessions_table();
        let created = self
            .dynamodb
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("userId", ScalarAttributeType::N))
            .attribute_definitions(attribute("sessionId", ScalarAttributeType::S))
            .attribute_definitions(attribute("accountId", ScalarAttributeType::N))
            .key_schema(key("userId", KeyType::Hash))
            .key_schema(key("sessionId", KeyType::Range))
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(sqs_push_aws::sessions::ACCOUNT_INDEX)
                    .key_schema(key("accountId", KeyType::Hash))
                    .projection(routing_attributes())
                    .build()
                    .expect("index fields are set"),
            )
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .expect("stream fields are set"),
            )
            .send()
            .await;
        self.created_or_existing(created, "create sessions table")?;
        self.time_to_live(&table).await
    }

    /// One row per membership: a publish reads one key range, its channel's.
    async fn channels_table(&self, config: &StackConfig) -> Result<(), BootstrapError> {
        let table = config.channels_table();
        let created = self
            .dynamodb
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("channel", ScalarAttributeType::S))
            .attribute_definitions(attribute("member", ScalarAttributeType::S))
            .key_schema(key("channel", KeyType::Hash))
            .key_schema(key("member", KeyType::Range))
            .send()
            .await;
        self.created_or_existing(created, "create channels table")?;
        self.time_to_live(&table).await
    }

    async fn history_table(&self, config: &StackConfig) -> Result<(), BootstrapError> {
        let table = config.history_table();
        let created = self
            .dynamodb
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("userId", ScalarAttributeType::N))
            .attribute_definitions(attribute("messageId", ScalarAttributeType::S))
            .attribute_definitions(attribute("created", ScalarAttributeType::N))
            .key_schema(key("userId", KeyType::Hash))
            .key_schema(key("messageId", KeyType::Range))
            .local_secondary_indexes(
                LocalSecondaryIndex::builder()
                    .index_name(sqs_push_aws::history::CREATED_INDEX)
                    .key_schema(key("userId", KeyType::Hash))
                    .key_schema(key("created", KeyType::Range))
                    .projection(all_attributes())
                    .build()
                    .expect("index fields are set"),
            )
            .send()
            .await;
        self.created_or_existing(created, "create history table")?;
        self.time_to_live(&table).await
    }

    fn created_or_existing<T, E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        result: Result<T, aws_sdk_dynamodb::error::SdkError<E>>,
        step: &'static str,
    ) -> Result<(), BootstrapError> {
        match result {
            Ok(_) => Ok(()),
            Err(error) if already_exists(&error) => Ok(()),
            Err(error) => Err(failed(step)(error)),
        }
    }

    async fn time_to_live(&self, table: &str) -> Result<(), BootstrapError> {
        let current = self
            .dynamodb
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .map_err(failed("describe time to live"))?;
        let enabled = current
            .time_to_live_description()
            .and_then(|description| description.attribute_name())
            == Some("ttl");
        if enabled {
            return Ok(());
        }
        self.dynamodb
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("ttl")
                    .build()
                    .expect("ttl fields are set"),
            )
            .send()
            .await
            .map_err(failed("enable time to live"))?;
        Ok(())
    }

    async fn events_stream(&self, config: &StackConfig) -> Result<(), BootstrapError> {
        let created = self
            .kinesis
            .create_stream()
            .stream_name(config.events_stream())
            .shard_count(1)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(error) if already_exists(&error) => Ok(()),
            Err(error) => Err(failed("create event stream")(error)),
        }
    }

    /// The identities' role: its ARN and its RoleId.
    async fn unauthenticated_role(
        &self,
        config: &StackConfig,
    ) -> Result<(String, String), BootstrapError> {
        let role_name = format!("{}-identities", config.prefix());
        let policy = identity_role_policy(&config.partition, &config.prefix()).to_string();
        // The trust policy names the pool, which may not exist yet; the emulator does not
        // enforce trust policies, so the pool's name stands in until the pool id is known.
        let trust = identity_trust_policy(&config.identity_pool_name()).to_string();
        let arn = match self
            .iam
            .create_role()
            .role_name(&role_name)
            .assume_role_policy_document(&trust)
            .send()
            .await
        {
            Ok(output) => output
                .role()
                .map(|role| (role.arn().to_string(), role.role_id().to_string())),
            Err(error) if already_exists(&error) => None,
            Err(error) => return Err(failed("create identities role")(error)),
        };
        let arn = match arn {
            Some(arn) => arn,
            None => self
                .iam
                .get_role()
                .role_name(&role_name)
                .send()
                .await
                .map_err(failed("get identities role"))?
                .role()
                .map(|role| (role.arn().to_string(), role.role_id().to_string()))
                .ok_or(BootstrapError {
                    step: "get identities role",
                    message: "no role in the answer".to_string(),
                })?,
        };
        self.iam
            .put_role_policy()
            .role_name(&role_name)
            .policy_name("read-own-queue")
            .policy_document(policy)
            .send()
            .await
            .map_err(failed("put identities role policy"))?;
        Ok(arn)
    }

    async fn identity_pool(&self, config: &StackConfig) -> Result<String, BootstrapError> {
        let name = config.identity_pool_name();
        let pools = self
            .cognito
            .list_identity_pools()
            .max_results(60)
            .send()
            .await
            .map_err(failed("list identity pools"))?;
        if let Some(pool) = pools
            .identity_pools()
            .iter()
            .find(|pool| pool.identity_pool_name() == Some(name.as_str()))
            && let Some(id) = pool.identity_pool_id()
        {
            // A pool an older bootstrap made: bring its settings up to date.
            self.cognito
                .update_identity_pool()
                .identity_pool_id(id)
                .identity_pool_name(&name)
                .allow_unauthenticated_identities(false)
                .developer_provider_name(&config.developer_provider_name)
                .allow_classic_flow(true)
                .send()
                .await
                .map_err(failed("update identity pool"))?;
            return Ok(id.to_string());
        }
        let created = self
            .cognito
            .create_identity_pool()
            .identity_pool_name(&name)
            .allow_unauthenticated_identities(false)
            .developer_provider_name(&config.developer_provider_name)
            .allow_classic_flow(true)
            .send()
            .await
            .map_err(failed("create identity pool"))?;
        Ok(created.identity_pool_id().to_string())
    }
}
