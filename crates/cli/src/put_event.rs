//! `put-event`: puts JSON events on the event stream — from arguments or one per line on stdin,
//! optionally repeated (`--count`) at a steady rate (`--rate`), with a progress line.

use std::io::BufRead;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use serde_json::Value;

/// Kinesis's limit on records per PutRecords call.
const MAX_RECORDS_PER_CALL: usize = 500;

/// Arguments of put-event.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stage: `local` puts on the local emulator's stream.
    #[arg(long, default_value = "local")]
    env: String,
    /// The region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// The emulator for `--env local`.
    #[arg(
        long,
        env = "SQS_PUSH_EMULATOR",
        default_value = "http://127.0.0.1:4566"
    )]
    emulator: String,
    /// Put this many events in all, cycling through the given ones.
    #[arg(long)]
    count: Option<usize>,
    /// At most this many events per second.
    #[arg(long)]
    rate: Option<f64>,
    /// Events as JSON objects, e.g. '{"userId":200,"message":"Hello"}'; none: read stdin.
    events: Vec<String>,
}

/// Parses events, naming the one that is not a JSON object.
pub fn parse_events<'a>(
    lines: impl IntoIterator<Item = (String, &'a str)>,
) -> Result<Vec<Vec<u8>>, String> {
    let mut events = Vec::new();
    for (place, text) in lines {
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(_)) => events.push(text.as_bytes().to_vec()),
            Ok(_) => return Err(format!("{place} is not a JSON object")),
            Err(error) => return Err(format!("{place} is not JSON: {error}")),
        }
    }
    if events.is_empty() {
        return Err("no events given (as arguments or one JSON object per line on stdin)".into());
    }
    Ok(events)
}

/// Kinesis orders records per partition key: keying by user keeps one user's events in order.
fn partition_key(event: &[u8], index: usize) -> String {
    let value: Value = serde_json::from_slice(event).unwrap_or(Value::Null);
    for field in ["userId", "accountId"] {
        if let Some(id) = value.get(field).filter(|id| !id.is_null()) {
            return format!("{field}-{id}");
        }
    }
    format!("event-{index}")
}

async fn client(args: &Args) -> Client {
    let config = if args.env == "local" {
        sqs_push_local::stack::emulator_sdk_config(&args.emulator, &args.region).await
    } else {
        sqs_push_aws::load_sdk_config(&sqs_push_aws::Endpoint {
            region: args.region.clone(),
            ..sqs_push_aws::Endpoint::default()
        })
        .await
    };
    Client::new(&config)
}

/// Runs put-event.
pub async fn run(args: Args) -> ExitCode {
    let stdin_lines: Vec<String>;
    let events = if args.events.is_empty() {
        stdin_lines = std::io::stdin()
            .lock()
            .lines()
            .map_while(Result::ok)
            .collect();
        parse_events(
            stdin_lines
                .iter()
                .enumerate()
                .map(|(i, l)| (format!("line {}", i + 1), l.as_str())),
        )
    } else {
        parse_events(
            args.events
                .iter()
                .enumerate()
                .map(|(i, e)| (format!("event {}", i + 1), e.as_str())),
        )
    };
    let events = match events {
        Ok(events) => events,
        Err(error) => {
            eprintln!("put-event: {error}");
            return ExitCode::from(2);
        }
    };
    let total = args.count.unwrap_or(events.len());
    let stream = format!("sqs-push-{}-events", args.env);
    let kinesis = client(&args).await;
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut put = 0usize;
    let mut failed = 0usize;
    // With a rate, calls are small so the rate is smooth; without, as large as Kinesis allows.
    let per_call = match args.rate {
        Some(rate) => ((rate / 10.0).ceil() as usize).clamp(1, MAX_RECORDS_PER_CALL),
        None => MAX_RECORDS_PER_CALL,
    };
    while put + failed < total {
        let batch: Vec<PutRecordsRequestEntry> = (put + failed..total.min(put + failed + per_call))
            .map(|index| {
                let event = &events[index % events.len()];
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(event.clone()))
                    .partition_key(partition_key(event, index))
                    .build()
                    .expect("data and key are set")
            })
            .collect();
        let size = batch.len();
        match kinesis
            .put_records()
            .stream_name(&stream)
            .set_records(Some(batch))
            .send()
            .await
        {
            Ok(output) => {
                let refused = output.failed_record_count().unwrap_or(0).max(0) as usize;
                put += size - refused;
                failed += refused;
            }
            Err(error) => {
                eprintln!(
                    "put-event: PutRecords on {stream} failed: {}",
                    sqs_push_aws::errors::describe(&error)
                );
                return ExitCode::FAILURE;
            }
        }
        if let Some(rate) = args.rate {
            let due = Duration::from_secs_f64((put + failed) as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            let rate = put as f64 / started.elapsed().as_secs_f64();
            eprint!("\rput-event: {put}/{total} put ({rate:.0}/s), {failed} refused");
            last_progress = Instant::now();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "\rput-event: {put}/{total} put on {stream} in {elapsed:.1}s ({:.0}/s), {failed} refused",
        put as f64 / elapsed.max(0.001)
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_must_be_json_objects_and_errors_name_the_line() {
        let ok = parse_events([
            ("line 1".to_string(), r#"{"userId":1}"#),
            ("line 2".to_string(), "  "),
        ]);
        assert_eq!(ok.unwrap().len(), 1);
        let error = parse_events([("line 1".to_string(), "{}"), ("line 2".to_string(), "[1]")])
            .unwrap_err();
        assert_eq!(error, "line 2 is not a JSON object");
        assert!(
            parse_events([("line 1".to_string(), "{")])
                .unwrap_err()
                .starts_with("line 1 is not JSON")
        );
        assert!(parse_events(Vec::<(String, &str)>::new()).is_err());
    }

    #[test]
    fn partition_keys_follow_the_user_then_the_account() {
        assert_eq!(
            partition_key(br#"{"userId":5,"accountId":1}"#, 0),
            "userId-5"
        );
        assert_eq!(partition_key(br#"{"accountId":1}"#, 0), "accountId-1");
        assert_eq!(partition_key(br#"{}"#, 3), "event-3");
    }
}
