//! `sqs-push-local`: the whole stack on one machine, against the emulator.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use sqs_push_local::stack::{DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY};
use sqs_push_local::{LocalKeys, LocalOptions, LocalStack, settings};

/// Runs the sqs-push API locally against the AWS emulator.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The emulator's URL.
    #[arg(
        long,
        env = "SQS_PUSH_EMULATOR",
        default_value = "http://127.0.0.1:4566"
    )]
    emulator: String,
    /// Where the API listens.
    #[arg(long, env = "SQS_PUSH_LOCAL_API", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// The region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// The access key requests must be signed with.
    #[arg(long, env = "SQS_PUSH_LOCAL_ACCESS_KEY", default_value = DEFAULT_ACCESS_KEY)]
    access_key: String,
    /// Its secret.
    #[arg(long, env = "SQS_PUSH_LOCAL_SECRET_KEY", default_value = DEFAULT_SECRET_KEY, hide_default_value = true)]
    secret_key: String,
    /// Seconds a session outlives its credentials.
    #[arg(long, env = "SQS_PUSH_IDLE_SECONDS", default_value_t = 3600)]
    idle_seconds: u64,
    /// Lifetime of the credentials handed to sessions, in seconds.
    #[arg(long, env = "SQS_PUSH_CREDENTIAL_SECONDS", default_value_t = 3600)]
    credential_seconds: u32,
    /// Milliseconds between TTL sweeps (the emulator does not expire rows itself).
    #[arg(long, env = "SQS_PUSH_LOCAL_SWEEP_MS", default_value_t = 1000)]
    sweep_interval_ms: u64,
    /// Milliseconds between reads of the sessions table's stream when it had nothing new.
    #[arg(long, env = "SQS_PUSH_LOCAL_STREAM_POLL_MS", default_value_t = 500)]
    stream_poll_interval_ms: u64,
    /// Seconds a queue is left alone by /cleanup after its creation.
    #[arg(long, env = "SQS_PUSH_ORPHAN_GRACE_SECONDS", default_value_t = 600)]
    orphan_grace_seconds: u64,
    /// Milliseconds between presence sweeps (leaves are announced by them; Lambda's schedule is a
    /// minute, tests want seconds).
    #[arg(long, env = "SQS_PUSH_LOCAL_PRESENCE_SWEEP_MS", default_value_t = 5000)]
    presence_sweep_ms: u64,
    /// Run the demo page's chat app: relay `chat` lines pages send upstream from the app queue to
    /// their channel (the end-to-end tests read the app queue themselves, so it is off by default).
    #[arg(long, env = "SQS_PUSH_LOCAL_DEMO_CHAT")]
    demo_chat: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    sqs_push_functions::telemetry::init_local();
    let args = Args::parse();
    let mut options = LocalOptions::new(&args.emulator);
    // Every SQS_PUSH_* setting the functions read (docs/operations.md, "Settings").
    options.stack = match settings::stack_config(&args.region, |name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("sqs-push-local: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    options.api_address = args.listen;
    options.stack.idle_seconds = args.idle_seconds;
    options.stack.credential_seconds = args.credential_seconds;
    options.sweep_interval = Duration::from_millis(args.sweep_interval_ms.max(10));
    options.stream_poll_interval = Duration::from_millis(args.stream_poll_interval_ms.max(10));
    options.stack.orphan_grace_seconds = args.orphan_grace_seconds;
    options.demo_chat = args.demo_chat;
    options.presence_sweep_interval = Duration::from_millis(args.presence_sweep_ms.max(10));
    options.keys = LocalKeys {
        access_key: args.access_key,
        secret_key: args.secret_key,
    };
    let stack = match LocalStack::start(options).await {
        Ok(stack) => stack,
        Err(error) => {
            eprintln!("sqs-push-local: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("api      {}", stack.api_url());
    println!("emulator {}", args.emulator);
    println!("stream   {}", stack.config.events_stream());
    println!("ready");
    let _ = tokio::signal::ctrl_c().await;
    stack.stop().await;
    std::process::ExitCode::SUCCESS
}
