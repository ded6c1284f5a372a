//! `sqs-push`: the tools users run against a stack.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sqs_push_cli::{bench, call_gw, decrypt, put_event, redrive};

/// Tools for sqs-push: signed API calls (call-gw), message decryption (decrypt-message), events
/// on the stream (put-event), a broadcast timing (bench) and dead-letter replay (redrive).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Calls the API with a SigV4-signed request and prints the JSON answer indented.
    CallGw(call_gw::Args),
    /// Decrypts what `aws sqs receive-message` printed (read from stdin), one JSON per line.
    DecryptMessage(decrypt::Args),
    /// Puts JSON events on the event stream (arguments, or one per line on stdin).
    PutEvent(put_event::Args),
    /// Times one broadcast on the local stack against a running emulator.
    Bench(bench::Args),
    /// Replays dead-lettered sender, history and segment-job payloads through their function
    /// (dry run unless --apply).
    Redrive(redrive::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::CallGw(args) => call_gw::run(args).await,
        Command::DecryptMessage(args) => decrypt::run(args),
        Command::PutEvent(args) => put_event::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Redrive(args) => redrive::run(args).await,
    }
}
