//! The local stack of sqs-push: provisions the AWS emulator for the `local` stage and serves the
//! same api Router the Lambda runs, behind a SigV4 check that stands in for API Gateway's IAM auth,
//! and the demo page with its unsigned `/local-demo/…` routes (loopback only). What AWS would do
//! on its own runs here in process: the event stream's trigger ([`kinesis`]), the sessions
//! table's TTL ([`ttl`]) and the stream trigger that invokes the cleanup function ([`stream`]).
//!
//! Not for: production. Nothing here runs on AWS.

#![deny(missing_docs)]

pub mod bootstrap;
pub mod demo;
pub mod demo_chat;
pub mod functions;
pub mod in_process;
pub mod kinesis;
pub mod seed;
pub mod settings;
pub mod sigv4;
pub mod stack;
pub mod stream;
pub mod ttl;
pub mod upstream;

pub use sigv4::LocalKeys;
pub use stack::{LocalOptions, LocalStack};
