//! In-memory implementations of every port, for unit tests and benchmarks: one file a fake.

mod history;
mod identities;
mod invoker;
mod queues;
mod sessions;
mod upstream;

pub use history::MemoryHistory;
pub use identities::MemoryIdentities;
pub use invoker::RecordingInvoker;
pub use queues::{MemoryQueue, MemoryQueues};
pub use sessions::MemorySessionStore;
pub use upstream::{MemoryUpstream, RecordingAppTarget};

use crate::crypto::SessionKey;
use crate::model::ids::{AccountId, SessionId, UserId};
use crate::model::session::{Credentials, Session};
use crate::ports::{QueueService, QueueSpec, SessionStore};

/// A session with its own in-memory queue (named `q-<user>-<session>`), stored in `store`, whose
/// credentials expire at `expires`: the fixture unit tests and benchmarks share.
pub async fn seed_session(
    store: &MemorySessionStore,
    queues: &MemoryQueues,
    account: u64,
    user: u64,
    session_id: &str,
    expires: u64,
) -> Session {
    let queue = queues
        .create_queue(&QueueSpec {
            name: format!("q-{user}-{session_id}"),
            owner_identity_id: "i".into(),
            retention_seconds: None,
        })
        .await
        .expect("memory queues always create");
    let session = Session {
        account_id: AccountId::try_from(account).expect("a safe integer"),
        user_id: UserId::try_from(user).expect("a safe integer"),
        session_id: SessionId::parse(session_id).expect("a valid session id"),
        queue,
        identity_id: "i".into(),
        developer_login: None,
        channels: Default::default(),
        aes_key: SessionKey::generate(),
        credentials: Credentials {
            access_key: "a".into(),
            secret_key: "s".into(),
            session_token: "t".into(),
            expires,
        },
        ttl: expires + 3_600,
        created: 0,
    };
    store
        .put(&session)
        .await
        .expect("memory store always writes");
    session
}
