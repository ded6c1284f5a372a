//! Many sessions at once, straight through the adapters (a queue and a row each, no Cognito):
//! for fan-out tests and benchmarks, where thousands of create calls would only measure Cognito.

use futures::StreamExt;
use sqs_push_core::crypto::SessionKey;
use sqs_push_core::model::channel::ChannelName;
use sqs_push_core::model::ids::{AccountId, SessionId, UserId};
use sqs_push_core::model::session::{Credentials, Session};
use sqs_push_core::ports::QueueSpec;
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::wiring::Adapters;

/// A seeded session, as a test or benchmark needs to read its queue.
#[derive(Debug, Clone)]
pub struct SeededSession {
    /// The account (`userId % accounts`).
    pub account_id: u64,
    /// The user.
    pub user_id: u64,
    /// The session id.
    pub session_id: String,
    /// The queue.
    pub queue_url: String,
    /// The key.
    pub aes_key: SessionKey,
}

/// Creates `users × sessions_per_user` live sessions, users spread over `accounts` accounts.
pub async fn seed_sessions(
    config: &StackConfig,
    users: u64,
    sessions_per_user: u64,
    accounts: u64,
) -> Vec<SeededSession> {
    seed_subscribers(config, users, sessions_per_user, accounts, None).await
}

/// As [`seed_sessions`], each session also subscribed to `channel` (when given): the row lists
/// the channel and a membership row is written beside it, as `/subscribe`'s transaction would
/// (written plainly here: the emulator copies whole tables for every transaction).
pub async fn seed_subscribers(
    config: &StackConfig,
    users: u64,
    sessions_per_user: u64,
    accounts: u64,
    channel: Option<&ChannelName>,
) -> Vec<SeededSession> {
    let adapters = Adapters::aws(config).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(
        &crate::stack::emulator_sdk_config(
            config.endpoint_url.as_deref().unwrap_or_default(),
            &config.region,
        )
        .await,
    );
    let channels_table = config.channels_table();
    let names = config.queue_names().expect("the stack's config is valid");
    let expires = adapters.clock.now() + u64::from(config.credential_seconds);
    let pairs: Vec<(u64, u64)> = (0..users)
        .flat_map(|user| (0..sessions_per_user).map(move |session| (user, session)))
        .collect();
    futures::stream::iter(pairs)
        .map(|(user, session)| {
            let adapters = adapters.clone();
            let dynamodb = dynamodb.clone();
            let channels_table = channels_table.clone();
            let name = names.generate();
            let account = user % accounts.max(1);
            async move {
                let queue = adapters
                    .queues
                    .create_queue(&QueueSpec {
                        name,
                        owner_identity_id: "seeded".into(),
                        retention_seconds: None,
                    })
                    .await
                    .expect("the emulator creates the queue");
                let aes_key = SessionKey::generate();
                let session_id = format!("seeded-{session}");
                let row = Session {
                    account_id: AccountId::try_from(account).expect("small id"),
                    user_id: UserId::try_from(user).expect("small id"),
                    session_id: SessionId::parse(&session_id).expect("valid id"),
                    queue: queue.clone(),
                    identity_id: "seeded".into(),
                    developer_login: None,
                    channels: channel.iter().map(|c| (*c).clone()).collect(),
                    aes_key: aes_key.clone(),
                    credentials: Credentials {
                        access_key: "seeded".into(),
                        secret_key: "seeded".into(),
                        session_token: "seeded".into(),
                        expires,
                    },
                    ttl: expires + config.idle_seconds,
                    created: expires - u64::from(config.credential_seconds),
                };
                adapters
                    .sessions
                    .put(&row)
                    .await
                    .expect("the emulator stores the row");
                if let Some(channel) = channel {
                    dynamodb
                        .put_item()
                        .table_name(&channels_table)
                        .set_item(Some(sqs_push_aws::rows::to_item(
                            &sqs_push_aws::rows::MembershipRow::of(channel, &row),
                        )))
                        .send()
                        .await
                        .expect("the emulator stores the membership");
                }
                SeededSession {
                    account_id: account,
                    user_id: user,
                    session_id,
                    queue_url: queue.url,
                    aes_key,
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await
}
