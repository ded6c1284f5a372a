//! The tools users run against a stack: signed API calls (`call-gw`), message decryption
//! (`decrypt-message`), events on the stream (`put-event`), the local-stack broadcast benchmark
//! (`bench`) and the dead-letter replay (`redrive`). The `sqs-push` binary is a thin clap front
//! end over these modules.
//!
//! Not for: anything the service itself runs.

#![deny(missing_docs)]

pub mod bench;
pub mod call_gw;
pub mod decrypt;
pub mod put_event;
pub mod redrive;
