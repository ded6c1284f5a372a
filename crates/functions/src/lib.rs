//! The Lambda functions of sqs-push: the api Router, the cleanup handler, the config every
//! function reads once at start, and the wiring from config to adapters. The binaries in
//! `src/bin` are thin mains.
//!
//! Not for: business rules (they live in `sqs-push-core`) or SDK calls (in `sqs-push-aws`).

#![deny(missing_docs)]

pub mod api;
pub mod cleanup;
pub mod config;
pub mod events;
pub mod failure;
pub mod metrics;
pub mod telemetry;
pub mod upstream;
pub mod wiring;
