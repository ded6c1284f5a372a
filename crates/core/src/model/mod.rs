//! The records several features share: validated ids, messages, and the session row.

pub mod channel;
pub mod ids;
pub mod message;
pub mod recipient;
pub mod session;
