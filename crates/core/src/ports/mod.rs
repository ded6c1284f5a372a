//! The ports: what the domain needs from storage, queues, identities and other functions, as
//! traits. Adapters implement them on AWS (`sqs-push-aws`) and in memory (the `testing`
//! feature's `testing::memory`).

mod error;
mod history;
mod identities;
mod invoker;
mod queues;
mod sessions;
mod upstream;

pub use error::{PortError, PortErrorKind};
pub use history::{
    HistoryCursor, HistoryEntry, HistoryPage, HistoryQuery, HistoryRow, HistoryStore, Marked,
    TypeFilter,
};
pub use identities::IdentityProvider;
pub use invoker::{AsyncFunction, DEAD_LETTER_BYTES, HandOffLimits, Invoker, destination_record};
pub use queues::{BatchEntry, FailedEntry, QueueService, QueueSpec};
pub use sessions::{SessionCursor, SessionPage, SessionStore};
pub use upstream::{
    AppMessage, AppTarget, Heartbeat, PresenceMember, PresencePage, PresenceStore, Seen,
    UpstreamStore,
};
