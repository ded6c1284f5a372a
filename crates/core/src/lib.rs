//! The domain of sqs-push, by feature: [`session`] (create, renew, status, list, destroy),
//! [`dispatch`] (targets, planning, sending, Kinesis records), [`history`] (write, read,
//! receipts), [`cleanup`] (what removed sessions leave behind, orphan queues), [`crypto`] (keys
//! and the wire format), [`upstream`] (browser to server: the consumer and presence), over the shared records in [`model`] and the traits in [`ports`].
//!
//! Not for: talking to AWS or HTTP. The AWS SDK implementations of the ports live in
//! `sqs-push-aws`; request parsing and routing live in `sqs-push-functions`. In-memory adapters
//! for tests and benchmarks are behind the `testing` feature.

#![deny(missing_docs)]

pub mod batch;
pub mod channel;
pub mod cleanup;
pub mod clock;
pub mod crypto;
pub mod dispatch;
pub mod history;
pub mod model;
pub mod ports;
pub mod retry;
pub mod session;
pub mod settings;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod upstream;

pub use model::ids::{AccountId, IdError, SessionId, UserId};
pub use ports::{PortError, PortErrorKind};
