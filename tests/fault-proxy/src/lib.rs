//! A fault-injecting HTTP/1.1 proxy for tests: it sits between AWS SDK clients and the AWS
//! emulator (moto, all services on one endpoint) and, by rule, answers some calls with errors
//! (500s, throttling), resets connections (before or after the emulator acted), delays them,
//! or lets only part of a batch through (`UnprocessedItems`, `Failed` entries,
//! `UnprocessedIdentityIds`) — so tests can prove that nothing is lost and nothing doubled.
//!
//! The test process embeds it:
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use sqs_push_fault_proxy::{Fault, FaultProxy, Rule};
//!
//! let proxy = FaultProxy::start("http://127.0.0.1:4566").await?;
//! // Give proxy.url() to the SDK clients as their endpoint, then:
//! proxy.set_rules(vec![Rule::new("SendMessageBatch", Fault::ServerError, 0.10)]);
//! // ... run the scenario ...
//! let failed = proxy.stats().operation("SendMessageBatch").total_faults();
//! proxy.clear();
//! # let _ = failed;
//! # Ok(())
//! # }
//! ```
//!
//! Each request is identified as an [`Operation`] (from `X-Amz-Target`, a form-encoded
//! `Action=`, or a Lambda path), matched against the [`Rule`]s, and either forwarded untouched
//! (body byte for byte, headers as signed — the emulator does not verify SigV4) or given a
//! [`Fault`]. Rate decisions come from a seeded RNG per rule, so a run is repeatable given the
//! order of the requests a rule matches. Counters per operation: [`FaultProxy::stats`].
//!
//! What it is not: a general HTTP proxy (no TLS, no CONNECT, no HTTP/2, no upstream path
//! prefix), a SigV4 verifier, or something to run outside tests — it buffers every request
//! body in memory.

#![deny(missing_docs)]

mod errors;
mod operation;
mod proxy;
mod rewrite;
mod rules;
mod stats;

pub use operation::{Operation, Protocol, identify};
pub use proxy::{Builder, FaultProxy};
pub use rules::{Fault, FaultKind, Rule, Trigger, Withhold};
pub use stats::{OperationStats, Stats};
