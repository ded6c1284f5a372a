//! `bench broadcast`: on the local stack, the time for one broadcast (the segmented path) to
//! reach every session, whether each got it exactly once, and the emulator requests the stack
//! made per delivered message (the emulator's count less the benchmark's own receives).
//! `bench --subscribes N`: instead, N signed `/subscribe` calls one after another (ten channels
//! per session, over N/10 sessions made by `/create`), and their latency percentiles.
//! `bench --orphans N`: instead, N orphan queues beside `--sessions` live sessions, swept by the
//! scheduled form of the orphan sweep (the cleanup function handing each step on): its steps,
//! time, and the emulator requests it made.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// Measure this many subscribe calls instead of a broadcast.
    #[arg(long)]
    subscribes: Option<usize>,
    /// Measure the orphan sweep of this many orphan queues instead of a broadcast.
    #[arg(long, conflicts_with = "subscribes")]
    orphans: Option<usize>,
}

/// Requests the emulator has served: in all, and the SendMessageBatch calls among them.
async fn emulator_requests(emulator: &str) -> Result<(u64, u64), String> {
    let stats: serde_json::Value = reqwest::get(format!("{emulator}/_emulator/stats"))
        .await
        .map_err(|e| format!("emulator stats: {e} (is it scripts/emulator?)"))?
        .json()
        .await
        .map_err(|e| format!("emulator stats: {e}"))?;
    let total = stats["requests"]
        .as_u64()
        .ok_or("emulator stats lack 'requests'")?;
    let batches = stats["byTarget"]["AmazonSQS.SendMessageBatch"]
        .as_u64()
        .unwrap_or(0);
    Ok((total, batches))
}

/// Runs the broadcast benchmark and prints one result line.
pub async fn run(args: Args) -> ExitCode {
    // The stack's own log lines only when asked for: they would drown the result line.
    if std::env::var_os("RUST_LOG").is_some() {
        sqs_push_functions::telemetry::init_local();
    }
    let result = match (args.subscribes, args.orphans) {
        (Some(count), _) => subscribes(&args.emulator, count).await,
        (None, Some(count)) => orphans(&args, count).await,
        (None, None) => broadcast(&args).await,
    };
    match result {
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
    // The TTL stand-in scans both tables every second by default; at 10,000 sessions (and as
    // many history rows) those full scans would take most of the emulator's one process and
    // measure the sweeper instead of the broadcast. Nothing here expires.
    options.sweep_interval = Duration::from_secs(600);
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
    if status != 200 && status != 202 {
        return Err(format!("notify answered {status}: {answer}"));
    }
    // The benchmark's own requests, so the stack's can be told from them.
    let own_requests = AtomicU64::new(0);
    // Per session: when its first receive returned. Messages stay visible (visibility 0), so a
    // receive whose answer is lost to a busy emulator loses nothing; copies are told apart by
    // their SQS message ids in the second pass.
    let arrivals: Vec<Option<Duration>> = futures::stream::iter(sessions.iter())
        .map(|session| {
            let sqs = sqs.clone();
            let own_requests = &own_requests;
            async move {
                // Poll until the message is there: a queue late in the fan-out may need more
                // than one poll (5 s each, within the SDK's 10 s attempt timeout).
                while started.elapsed() < GIVE_UP_AFTER {
                    own_requests.fetch_add(1, Ordering::Relaxed);
                    let received = sqs
                        .receive_message()
                        .queue_url(&session.queue_url)
                        .visibility_timeout(0)
                        .wait_time_seconds(5)
                        .send()
                        .await;
                    // A busy emulator may refuse a connection: ask again, it is not a miss.
                    if received.is_ok_and(|output| !output.messages().is_empty()) {
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
    // Copies per queue: the distinct SQS message ids among everything visible now (a few
    // receives each, as SQS may answer with a subset of a queue's messages).
    let copies: Vec<usize> = futures::stream::iter(sessions.iter())
        .map(|session| {
            let sqs = sqs.clone();
            async move {
                let mut ids = std::collections::BTreeSet::new();
                let mut answers = 0;
                while answers < 3 {
                    let received = sqs
                        .receive_message()
                        .queue_url(&session.queue_url)
                        .max_number_of_messages(10)
                        .visibility_timeout(0)
                        .wait_time_seconds(0)
                        .send()
                        .await;
                    if let Ok(output) = received {
                        answers += 1;
                        ids.extend(
                            output
                                .messages()
                                .iter()
                                .filter_map(|message| message.message_id().map(str::to_string)),
                        );
                    }
                }
                ids.len()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let duplicates: usize = copies.iter().map(|n| n.saturating_sub(1)).sum();
    let received = arrivals.iter().flatten().count();
    let last = arrivals.iter().flatten().max().copied().unwrap_or_default();
    stack.stop().await;
    let requests = after.0 - before.0;
    let batches = after.1 - before.1;
    let own = own_requests.load(Ordering::Relaxed);
    let stack_requests = requests.saturating_sub(own);
    let per_message = |n: u64| n as f64 / received.max(1) as f64;
    Ok(format!(
        "broadcast to {} sessions: /notify answered {status} in {:.0?}; {received} reached, {duplicates} \
         duplicates, the last after {:.2?}; the emulator served {requests} requests in {:.2?} \
         ({:.0}/s): {own} the benchmark's receives, {stack_requests} the stack's (background \
         pollers included) = {:.3} per delivered message, of which {batches} SendMessageBatch = \
         {:.3} per delivered message",
        sessions.len(),
        answered,
        last,
        elapsed,
        requests as f64 / elapsed.as_secs_f64(),
        per_message(stack_requests),
        per_message(batches),
    ))
}

/// `count` signed subscribe calls, one at a time, ten channels per session: their latency.
async fn subscribes(emulator: &str, count: usize) -> Result<String, String> {
    const CHANNELS_PER_SESSION: usize = 10;
    let mut options = LocalOptions::new(emulator);
    options.api_address = "127.0.0.1:0".parse().expect("a literal address");
    options.sweep_interval = Duration::from_secs(600);
    let keys = options.keys.clone();
    let stack = LocalStack::start(options)
        .await
        .map_err(|e| e.to_string())?;
    let credentials = Credentials::new(keys.access_key, keys.secret_key, None, None, "bench");
    let call = |path: String| {
        let url = format!("{}{path}", stack.api_url());
        let credentials = credentials.clone();
        async move {
            let started = Instant::now();
            let (status, answer) =
                crate::call_gw::call(&url, "GET", "us-east-1", &credentials, b"").await?;
            if status != 200 {
                return Err(format!("{path} answered {status}: {answer}"));
            }
            Ok::<_, String>(started.elapsed())
        }
    };
    let mut latencies = Vec::with_capacity(count);
    for session in 0..count.div_ceil(CHANNELS_PER_SESSION) {
        call(format!("/create/1/{session}/bench")).await?;
        for channel in 0..CHANNELS_PER_SESSION.min(count - latencies.len()) {
            latencies.push(call(format!("/subscribe/1/{session}/bench/room:{channel}")).await?);
        }
    }
    // The floor of a signed call on this stack: a status read (one GetItem).
    let mut floor = Vec::with_capacity(latencies.len());
    for _ in 0..latencies.len() {
        floor.push(call("/status/1/0/bench".to_string()).await?);
    }
    stack.stop().await;
    let percentiles = |mut times: Vec<Duration>| {
        times.sort_unstable();
        let at = |quantile: f64| times[((times.len() - 1) as f64 * quantile).round() as usize];
        format!(
            "p50 {:.1?}, p90 {:.1?}, p99 {:.1?}, max {:.1?}",
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0)
        )
    };
    Ok(format!(
        "{} subscribe calls ({CHANNELS_PER_SESSION} channels per session, signed, one at a time): \
         {}; as many status calls (one GetItem) for comparison: {}",
        latencies.len(),
        percentiles(latencies),
        percentiles(floor),
    ))
}

/// `count` orphan queues and `args.sessions` live sessions, then one scheduled sweep run with
/// the default step deadline and page size, timed from its start to its last step.
async fn orphans(args: &Args, count: usize) -> Result<String, String> {
    let mut options = LocalOptions::new(&args.emulator);
    options.api_address = "127.0.0.1:0".parse().expect("a literal address");
    options.sweep_interval = Duration::from_secs(600);
    // Orphans made a moment ago count as old: the benchmark measures the sweep, not the wait.
    options.stack.orphan_grace_seconds = 0;
    let stack = LocalStack::start(options)
        .await
        .map_err(|e| e.to_string())?;
    let seeding = Instant::now();
    let sessions = seed_sessions(&stack.config, args.sessions.div_ceil(2), 2, 10).await;
    let sqs = aws_sdk_sqs_client(&args.emulator).await;
    let names = stack.config.queue_names().map_err(|e| e.to_string())?;
    let made: Vec<Result<(), String>> = futures::stream::iter(0..count)
        .map(|_| {
            let (sqs, name) = (sqs.clone(), names.generate());
            async move {
                sqs.create_queue()
                    .queue_name(&name)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("create {name}: {e}"))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    made.into_iter().collect::<Result<Vec<()>, String>>()?;
    eprintln!(
        "bench: {} sessions and {count} orphan queues made in {:.1?}",
        sessions.len(),
        seeding.elapsed()
    );

    let before = emulator_requests(&args.emulator).await?;
    let started = Instant::now();
    stack
        .start_orphan_sweep()
        .await
        .map_err(|e| e.to_string())?;
    let run = loop {
        if let Some(last) = stack.orphan_sweep_steps().last()
            && last.next.is_none()
        {
            break last.run.clone();
        }
        if started.elapsed() > GIVE_UP_AFTER {
            return Err("the sweep did not finish in 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = started.elapsed();
    let after = emulator_requests(&args.emulator).await?;
    stack.stop().await;
    let totals = run.totals;
    if totals.deleted != count || totals.failed != 0 {
        return Err(format!("the sweep left orphans: {totals:?}"));
    }
    Ok(format!(
        "orphan sweep of {count} orphans among {} queues: {} steps, {:.1?} in all, {:.2?} per \
         orphan, {} emulator requests",
        totals.queues_scanned,
        run.steps,
        took,
        took / count.max(1) as u32,
        after.0.saturating_sub(before.0),
    ))
}

async fn aws_sdk_sqs_client(emulator: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&emulator_sdk_config(emulator, "us-east-1").await)
}
