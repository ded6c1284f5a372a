//! The domain of sqs-push: validated ids, the session record, queue names, the wire format's
//! crypto, the access policy a session's credentials carry, and the services (session, notify,
//! cleanup, orphans) written against ports.
//!
//! Not for: talking to AWS. Every port here has an in-memory implementation in [`memory`]; the
//! AWS SDK implementations live in `sqs-push-aws`, and HTTP routing lives in `sqs-push-functions`.

pub mod cleanup;
pub mod clock;
pub mod crypto;
pub mod error;
pub mod ids;
pub mod memory;
pub mod message;
pub mod notify;
pub mod orphans;
pub mod policy;
pub mod ports;
pub mod queue_name;
pub mod session;

pub use error::{PortError, PortErrorKind};
pub use ids::{AccountId, IdError, SessionId, UserId};
