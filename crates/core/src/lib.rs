//! The domain of sqs-push: validated ids, the session record, queue names, the wire format's
//! crypto, the access policy a session's credentials carry, and the services (session, dispatch,
//! send, history, cleanup, orphans) written against ports.
//!
//! Not for: talking to AWS. Every port here has an in-memory implementation in [`memory`]; the
//! AWS SDK implementations live in `sqs-push-aws`, and HTTP routing lives in `sqs-push-functions`.

pub mod batch;
pub mod cleanup;
pub mod clock;
pub mod crypto;
pub mod dispatch;
pub mod error;
pub mod history;
pub mod history_page;
pub mod ids;
pub mod in_process;
pub mod memory;
pub mod message;
pub mod orphans;
pub mod policy;
pub mod ports;
pub mod queue_name;
pub mod receipts;
pub mod retry;
pub mod send;
pub mod session;
pub mod stream;

pub use error::{PortError, PortErrorKind};
pub use ids::{AccountId, IdError, SessionId, UserId};
