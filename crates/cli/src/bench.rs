//! `bench broadcast`: on the local stack, the time for one broadcast to reach every session, and
//! the emulator's request rate meanwhile.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use futures::StreamExt;
use sqs_push_local::seed::seed_sessions;
use sqs_push_local::stack::emulator_sdk_config;
use sqs_push_local::{LocalOptions, LocalStack};

/// A session that has not received by then counts as not reached.
const GIVE_UP_AFTER: Duration = Duration::from_secs(600);

/// Arguments of bench.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The emulator (start one with scripts/emulator).
    #[arg(
        long,
        env = "SQS_PUSH_EMULATOR",
        default_value = "http://127.0.0.1:4566"
    )]
    emulator: String,
    /// Sessions to broadcast to (two per user).
    #[arg(long, default_value_t = 2000)]
    sessions: u64,
}

async fn emulator_requests(emulator: &str) -> Result<u64, String> {
    let stats: serde_json::Value = reqwest::get(format!("{emulator}/_emulator/stats"))
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("emulator stats: {e} (is it scripts/emulator?)"))?
        .json()
        .await
        .map_err(|e| format!("emulator stats: {e}"))?;
    stats["requests"]
        .as_u64()
        .ok_or("emulator stats lack 'requests'".into())
}

/// Runs the broadcast benchmark and prints one result line.
pub async fn run(args: Args) -> ExitCode {
    match broadcast(&args).await {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn broadcast(args: &Args) -> Result<String, String> {
    let mut options = LocalOptions::new(&args.emulator);
    options.api_address = "127.0.0.1:0".parse().expect("a literal address");
    let keys = options.keys.clone();
    let stack = LocalStack::start(options)
        .await
        .map_err(|e| e.to_string())?;

    let seeding = Instant::now();
    let sessions = seed_sessions(&stack.config, args.sessions.div_ceil(2), 2, 10).await;
    eprintln!(
        "bench: seeded {} sessions in {:.1?}",
        sessions.len(),
        seeding.elapsed()
    );

    let sqs = aws_sdk_sqs_client(&args.emulator).await;
    let before = emulator_requests(&args.emulator).await?;
    let started = Instant::now();
    let credentials = Credentials::new(keys.access_key, keys.secret_key, None, None, "bench");
    let url = format!("{}/notify?message=bench", stack.api_url());
    let (status, answer) =
        crate::call_gw::call(&url, "GET", "us-east-1", &credentials, b"").await?;
    let answered = started.elapsed();
    if status != 200 {
        return Err(format!("notify answered {status}: {answer}"));
    }
    let arrivals: Vec<Option<Duration>> = futures::stream::iter(sessions.iter())
        .map(|session| {
            let sqs = sqs.clone();
            async move {
                // Poll until the message is there: a queue late in the fan-out may need more
                // than one long poll.
                while started.elapsed() < GIVE_UP_AFTER {
                    let output = sqs
                        .receive_message()
                        .queue_url(&session.queue_url)
                        .wait_time_seconds(20)
                        .send()
                        .await
                        .ok()?;
                    if !output.messages().is_empty() {
                        return Some(started.elapsed());
                    }
                }
                None
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let after = emulator_requests(&args.emulator).await?;
    let received = arrivals.iter().flatten().count();
    let last = arrivals.iter().flatten().max().copied().unwrap_or_default();
    stack.stop().await;
    let requests = after - before;
    Ok(format!(
        "broadcast to {} sessions: /notify answered in {:.0?}; {received} received, the last after {:.2?}; \
         the emulator served {requests} requests in {:.2?} ({:.0}/s, {} of them the benchmark's own receives)",
        sessions.len(),
        answered,
        last,
        elapsed,
        requests as f64 / elapsed.as_secs_f64(),
        sessions.len(),
    ))
}

async fn aws_sdk_sqs_client(emulator: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&emulator_sdk_config(emulator, "us-east-1").await)
}
