//! The end-to-end harness: the AWS emulator on a free port, the local stack in process (optionally
//! behind the fault proxy), a signed API client and the browser's side of a session. Used by the
//! one end-to-end test binary (tests/tests/e2e) and by the fault proxy's own tests.
//!
//! Not for: production code, or tests that can run against the in-memory fakes
//! (`sqs_push_core::testing`) — those belong next to the code they test.

mod client;
mod emulator;
mod stack;

pub use client::{
    Receiver, admin_config, call, create, drain, get, long_poll, sdk_config, seed_receivers,
    session_sqs_client, text, unique_session_id,
};
pub use emulator::{Emulator, free_port, repo_root};
pub use stack::{Stack, StackBuilder, eventually, test_keys};
