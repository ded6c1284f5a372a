//! `redrive`: moves dead-lettered `sender`, `history` and segment-job (`dispatcher`) payloads
//! back through their function.
//!
//! The stage's dead-letter queue `sqs-push-dlq-<stage>` receives Lambda destination records:
//! `{"requestContext":{"functionArn":…,"condition":…},"requestPayload":…,…}` for failed async
//! invokes of `sender`, `history` and `dispatcher` (segment jobs) — and the same records written
//! by the service itself for deliveries SQS refused or that kept failing through every hand-on —
//! and batch-info records (no payload) for failed Kinesis and DynamoDB-stream batches of
//! `dispatcher` and `cleanup`. A dry run (the default) counts records per function and changes
//! nothing; `--apply` invokes the function again with each record's `requestPayload` and deletes
//! the record once the invoke was accepted. Every other record is counted and left in the queue.
//!
//! Dead letters the service writes itself (`dispatch::letter`) hold no session key: a message
//! once and the deliveries it did not reach by queue and session, or a poison Kinesis record.
//! A letter may span several records (parts); it is replayed once all its parts are read. An
//! undelivered message is replayed by reading each session's key again from the sessions
//! table: a session that ended since, or whose row now holds another queue, is reported gone
//! and not resent; the others get the message through `sender` with the same message id. A
//! poison record is listed (shard, sequence number, reason) and left: it can never be dispatched
//! as written, so replaying it would only make it poison again — fix the producer and put a
//! corrected record with `sqs-push put-event`, then delete the record.
//!
//! The core, [`redrive`], works on three ports — [`DeadLetters`], [`Invoker`] and
//! [`SessionStore`] — so it runs against Lambda on AWS, against a [`LocalRunner`] locally, and
//! in tests.

use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use sqs_push_core::clock::{Clock, SystemClock};
use sqs_push_core::dispatch::letter::{About, LetterPart, join};
use sqs_push_core::dispatch::segment::{SegmentJob, SegmentWorker};
use sqs_push_core::dispatch::send::{SendJob, Sender};
use sqs_push_core::history::HistoryTask;
use sqs_push_core::history::receipts::ReceiptService;
use sqs_push_core::history::write::HistoryWriter;
use sqs_push_core::ports::{AsyncFunction, Invoker, PortError, PortErrorKind, SessionStore};
use sqs_push_functions::config::StackConfig;
use sqs_push_functions::events;
use sqs_push_functions::wiring::{self, Adapters};

/// Arguments of redrive.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stage whose dead-letter queue `sqs-push-dlq-<stage>` is read.
    #[arg(long)]
    stage: String,
    /// The region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// `aws`: invoke the stage's Lambda functions; `local`: run the payloads in this process
    /// against the emulator.
    #[arg(long, default_value = "aws", value_parser = ["aws", "local"])]
    env: String,
    /// The emulator for `--env local`.
    #[arg(
        long,
        env = "SQS_PUSH_EMULATOR",
        default_value = "http://127.0.0.1:4566"
    )]
    emulator: String,
    /// Invoke again and delete; without it, only count.
    #[arg(long)]
    apply: bool,
    /// Look at most at this many records.
    #[arg(long)]
    max: Option<usize>,
}

/// The dead-letter queue of a stage.
pub fn dlq_name(stage: &str) -> String {
    format!("sqs-push-dlq-{stage}")
}

/// One record read from the dead-letter queue.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The queue's message id: the same record read twice has the same id.
    pub id: String,
    /// What deletes or releases it.
    pub receipt: String,
    /// The record's body.
    pub body: String,
}

/// The dead-letter queue, as redrive needs it.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Up to 10 records, hidden from other readers for `hide`; none when the queue is empty.
    async fn receive(&self, hide: Duration) -> Result<Vec<DeadLetter>, PortError>;
    /// Deletes a record that was handled.
    async fn delete(&self, letter: &DeadLetter) -> Result<(), PortError>;
    /// Makes a record visible again at once.
    async fn release(&self, letter: &DeadLetter) -> Result<(), PortError>;
}

/// [`DeadLetters`] on an SQS queue.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDeadLetters {
    /// The queue at `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Looks the queue up by name (GetQueueUrl).
    pub async fn find(client: aws_sdk_sqs::Client, name: &str) -> Result<Self, PortError> {
        let output = client
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|error| sqs_error("GetQueueUrl", name, error))?;
        let url = output.queue_url().unwrap_or_default().to_string();
        Ok(Self::new(client, url))
    }
}

fn sqs_error<E>(operation: &'static str, resource: &str, error: E) -> PortError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error,
{
    PortError::new(
        PortErrorKind::Other,
        operation,
        resource.to_string(),
        sqs_push_aws::errors::describe(&error),
    )
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn receive(&self, hide: Duration) -> Result<Vec<DeadLetter>, PortError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(hide.as_secs().max(1) as i32)
            // A 1 s long poll asks every SQS server, so an empty answer means an empty queue.
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|error| sqs_error("ReceiveMessage", &self.queue_url, error))?;
        Ok(output
            .messages()
            .iter()
            .map(|message| DeadLetter {
                id: message.message_id().unwrap_or_default().to_string(),
                receipt: message.receipt_handle().unwrap_or_default().to_string(),
                body: message.body().unwrap_or_default().to_string(),
            })
            .collect())
    }

    async fn delete(&self, letter: &DeadLetter) -> Result<(), PortError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(&letter.receipt)
            .send()
            .await
            .map_err(|error| sqs_error("DeleteMessage", &self.queue_url, error))?;
        Ok(())
    }

    async fn release(&self, letter: &DeadLetter) -> Result<(), PortError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(&letter.receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|error| sqs_error("ChangeMessageVisibility", &self.queue_url, error))?;
        Ok(())
    }
}

/// What one record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKind {
    /// A failed async invoke of this stage's `sender` or `history`, with its payload.
    Replayable(AsyncFunction, Vec<u8>),
    /// A part of a letter this stage's `function` wrote: an undelivered message, or a poison
    /// record.
    Letter(AsyncFunction, Box<LetterPart>),
    /// A record of another function (a stream trigger's batch info, another stage's function),
    /// named by its function.
    Other(String),
    /// Not a destination record.
    Unreadable,
}

/// Reads a destination record: which function failed and, for `sender`/`history` of `stage`,
/// the payload to invoke it with again.
pub fn classify(stage: &str, body: &str) -> RecordKind {
    let Ok(record) = serde_json::from_str::<Value>(body) else {
        return RecordKind::Unreadable;
    };
    let Some(arn) = record
        .pointer("/requestContext/functionArn")
        .and_then(Value::as_str)
    else {
        return RecordKind::Unreadable;
    };
    // arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]
    let name = arn.split(':').nth(6).unwrap_or(arn).to_string();
    let prefix = format!("sqs-push-{stage}-");
    let function = match name.strip_prefix(&prefix) {
        Some("sender") => AsyncFunction::Sender,
        Some("history") => AsyncFunction::History,
        // A segment job's async invoke; a Kinesis batch's record carries no payload.
        Some("dispatcher") => AsyncFunction::Dispatcher,
        _ => return RecordKind::Other(name),
    };
    if let Some(payload) = record.get("requestPayload")
        && payload.get("letter").is_some()
    {
        return match serde_json::from_value::<LetterPart>(payload.clone()) {
            Ok(part) => RecordKind::Letter(function, Box::new(part)),
            Err(_) => RecordKind::Unreadable,
        };
    }
    match record.get("requestPayload") {
        Some(payload) if !payload.is_null() => RecordKind::Replayable(
            function,
            serde_json::to_vec(payload).expect("a JSON value serializes"),
        ),
        _ => RecordKind::Other(name),
    }
}

/// What redrive should do.
#[derive(Debug, Clone, Copy)]
pub struct RedriveOptions {
    /// Invoke again and delete; otherwise only count.
    pub apply: bool,
    /// Look at most at this many records.
    pub max: Option<usize>,
    /// How long a read record stays hidden from other readers.
    pub hide: Duration,
}

impl Default for RedriveOptions {
    fn default() -> Self {
        Self {
            apply: false,
            max: None,
            hide: Duration::from_secs(30),
        }
    }
}

/// A poison Kinesis record found in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoisonListing {
    /// The shard it was read from.
    pub shard_id: String,
    /// Its sequence number.
    pub sequence_number: String,
    /// Why it can never be dispatched as written.
    pub reason: String,
    /// Its data's size in bytes.
    pub bytes: usize,
}

/// What redrive found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveReport {
    /// Letters (undelivered messages and poison records) whose parts were all read.
    pub letters: usize,
    /// Letters with parts missing (still being written, or lost): left in the queue.
    pub incomplete: usize,
    /// Deliveries of undelivered messages sent again, with the session's key read now.
    pub resent: usize,
    /// Deliveries not resent because their session ended since (or its row now holds another
    /// queue): the letter is deleted once the rest were resent.
    pub gone: usize,
    /// Poison Kinesis records, listed and left.
    pub poison: Vec<PoisonListing>,
    /// Records seen, per function name (`unreadable` for records that are not destination
    /// records).
    pub per_function: BTreeMap<String, usize>,
    /// Records seen in all.
    pub seen: usize,
    /// Payloads invoked again and deleted from the queue.
    pub redriven: usize,
    /// Records left in the queue (all of them in a dry run).
    pub left: usize,
    /// Invokes or deletes that failed (those records are left).
    pub failed: usize,
}

/// Reads the dead-letter queue until it is empty (or `max` records were seen); with `apply`,
/// invokes `sender`/`history` again with each such record's payload and deletes the record.
/// Records left are made visible again before returning. `progress` gets the report so far after
/// each batch of records.
pub async fn redrive(
    stage: &str,
    dlq: &dyn DeadLetters,
    invoker: &dyn Invoker,
    sessions: &dyn SessionStore,
    options: RedriveOptions,
    progress: &mut (dyn FnMut(&RedriveReport) + Send),
) -> Result<RedriveReport, PortError> {
    let mut report = RedriveReport::default();
    let mut seen = HashSet::new();
    let mut kept = Vec::new();
    // Parts of letters not yet complete, by letter id.
    let mut waiting: BTreeMap<String, Vec<(DeadLetter, LetterPart)>> = BTreeMap::new();
    let result = async {
        loop {
            if options.max.is_some_and(|max| report.seen >= max) {
                break;
            }
            let letters = dlq.receive(options.hide).await?;
            let mut new = 0;
            for letter in letters {
                if !seen.insert(letter.id.clone())
                    || options.max.is_some_and(|max| report.seen >= max)
                {
                    kept.push(letter);
                    continue;
                }
                new += 1;
                report.seen += 1;
                let kind = classify(stage, &letter.body);
                let name = match &kind {
                    RecordKind::Replayable(function, _) => function.name().to_string(),
                    RecordKind::Letter(_, part) if matches!(part.about, About::Poison { .. }) => {
                        "poison".to_string()
                    }
                    RecordKind::Letter(function, _) => function.name().to_string(),
                    RecordKind::Other(name) => name.clone(),
                    RecordKind::Unreadable => "unreadable".to_string(),
                };
                *report.per_function.entry(name).or_default() += 1;
                match kind {
                    RecordKind::Letter(_, part) => {
                        let id = part.letter.clone();
                        let parts = part.parts as usize;
                        let entry = waiting.entry(id.clone()).or_default();
                        entry.push((letter, *part));
                        if entry.len() >= parts {
                            let parts = waiting.remove(&id).unwrap_or_default();
                            let left =
                                replay_letter(parts, dlq, invoker, sessions, options, &mut report)
                                    .await;
                            report.left += left.len();
                            kept.extend(left);
                        }
                    }
                    RecordKind::Replayable(function, payload) if options.apply => {
                        let handled = match invoker.invoke_async(function, payload).await {
                            Ok(()) => dlq.delete(&letter).await,
                            Err(error) => Err(error),
                        };
                        match handled {
                            Ok(()) => report.redriven += 1,
                            Err(error) => {
                                tracing::warn!(%error, id = %letter.id, "redrive failed");
                                eprintln!("redrive: record {}: {error}", letter.id);
                                report.failed += 1;
                                report.left += 1;
                                kept.push(letter);
                            }
                        }
                    }
                    _ => {
                        report.left += 1;
                        kept.push(letter);
                    }
                }
            }
            progress(&report);
            if new == 0 {
                break;
            }
        }
        Ok::<(), PortError>(())
    }
    .await;
    for (_, parts) in std::mem::take(&mut waiting) {
        report.incomplete += 1;
        report.left += parts.len();
        kept.extend(parts.into_iter().map(|(letter, _)| letter));
    }
    // Whatever was left becomes visible again, also after an error.
    for letter in &kept {
        if let Err(error) = dlq.release(letter).await {
            tracing::warn!(%error, id = %letter.id, "could not release a record");
        }
    }
    result.map(|()| report)
}

/// Handles a letter whose parts were all read: lists a poison record; with `apply`, resends an
/// undelivered message to the sessions still there (keys read now) and deletes its records.
/// Returns the records to leave in the queue.
async fn replay_letter(
    parts: Vec<(DeadLetter, LetterPart)>,
    dlq: &dyn DeadLetters,
    invoker: &dyn Invoker,
    sessions: &dyn SessionStore,
    options: RedriveOptions,
    report: &mut RedriveReport,
) -> Vec<DeadLetter> {
    let (records, parts): (Vec<DeadLetter>, Vec<LetterPart>) = parts.into_iter().unzip();
    let letter = match join(parts) {
        Ok(letter) => letter,
        Err(error) => {
            eprintln!("redrive: {error}");
            report.failed += 1;
            return records;
        }
    };
    report.letters += 1;
    if let About::Poison {
        shard_id,
        sequence_number,
        reason,
    } = &letter.about
    {
        report.poison.push(PoisonListing {
            shard_id: shard_id.clone(),
            sequence_number: sequence_number.clone(),
            reason: reason.clone(),
            bytes: letter.text.len() / 4 * 3,
        });
        return records;
    }
    if !options.apply {
        return records;
    }
    let replayed = async {
        let resolved = letter
            .resolve(sessions, SystemClock.now())
            .await?
            .expect("an undelivered letter resolves");
        if !resolved.job.deliveries.is_empty() {
            let payload = serde_json::to_vec(&resolved.job).expect("a send job serializes");
            invoker.invoke_async(AsyncFunction::Sender, payload).await?;
        }
        Ok::<_, PortError>(resolved)
    };
    let resolved = match replayed.await {
        Ok(resolved) => resolved,
        Err(error) => {
            tracing::warn!(%error, letter = %letter.id, "redrive failed");
            eprintln!("redrive: letter {}: {error}", letter.id);
            report.failed += 1;
            return records;
        }
    };
    report.resent += resolved.job.deliveries.len();
    report.gone += resolved.gone.len();
    let mut left = Vec::new();
    for record in records {
        match dlq.delete(&record).await {
            Ok(()) => report.redriven += 1,
            Err(error) => {
                eprintln!("redrive: record {}: {error}", record.id);
                report.failed += 1;
                left.push(record);
            }
        }
    }
    left
}

/// Runs `sender`, `history` and segment-job payloads in this process, to completion, against a
/// stack's adapters: the local env has no Lambda to invoke.
pub struct LocalRunner {
    sender: Sender,
    history: HistoryWriter,
    receipts: OnceLock<ReceiptService>,
    segments: OnceLock<SegmentWorker>,
}

impl LocalRunner {
    /// A runner on `adapters` (whose invoker it replaces: receipts hand their chunks to it).
    pub fn new(config: &StackConfig, adapters: &Adapters) -> Arc<Self> {
        let runner = Arc::new(Self {
            sender: wiring::sender(config, adapters),
            history: wiring::history_writer(config, adapters),
            receipts: OnceLock::new(),
            segments: OnceLock::new(),
        });
        let mut adapters = adapters.clone();
        adapters.invoker = runner.clone();
        if runner
            .receipts
            .set(wiring::receipts(config, &adapters))
            .is_err()
            || runner
                .segments
                .set(wiring::segment_worker(config, &adapters))
                .is_err()
        {
            unreachable!("the runner was created above");
        }
        runner
    }
}

fn malformed(function: AsyncFunction, error: serde_json::Error) -> PortError {
    PortError::new(
        PortErrorKind::Other,
        "local invoke",
        function.name(),
        format!("payload does not parse: {error}"),
    )
}

#[async_trait]
impl Invoker for LocalRunner {
    async fn invoke_async(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
    ) -> Result<(), PortError> {
        match function {
            AsyncFunction::Sender => {
                let job: SendJob =
                    serde_json::from_slice(&payload).map_err(|e| malformed(function, e))?;
                // Run to the end here and report what did not go: redrive then keeps the record.
                let report = self.sender.send(&job, None).await;
                if report.failed > 0 || report.unsent > 0 {
                    return Err(PortError::new(
                        PortErrorKind::Transient,
                        "local invoke",
                        function.name(),
                        format!("{report:?}"),
                    ));
                }
            }
            AsyncFunction::History => {
                let task: HistoryTask =
                    serde_json::from_slice(&payload).map_err(|e| malformed(function, e))?;
                let receipts = self.receipts.get().expect("set in new");
                events::handle_history(&self.history, receipts, task).await?;
            }
            AsyncFunction::Dispatcher => {
                let job: SegmentJob =
                    serde_json::from_slice(&payload).map_err(|e| malformed(function, e))?;
                // Its pages come back to this runner as `sender`/`history` payloads.
                let worker = self.segments.get().expect("set in new");
                worker.run(&job, None).await?;
            }
            // Redrive never classifies a record as the cleanup function's replayable work (a
            // sweep step is done again by the next scheduled run), so none comes here.
            AsyncFunction::Cleanup => {
                return Err(PortError::new(
                    PortErrorKind::Other,
                    "local invoke",
                    function.name(),
                    "an orphan sweep step is not replayed; the next scheduled run does it",
                ));
            }
        }
        Ok(())
    }

    /// Redrive keeps a record whose replay fails instead: nothing here dead-letters anew.
    async fn dead_letter(
        &self,
        function: AsyncFunction,
        _: Vec<u8>,
        reason: &str,
    ) -> Result<(), PortError> {
        Err(PortError::new(
            PortErrorKind::Other,
            "local invoke",
            function.name(),
            format!("not replayed ({reason}); the record stays in the dead-letter queue"),
        ))
    }
}

/// How to handle records redrive leaves, per function.
pub fn advice(function: &str) -> &'static str {
    if function.ends_with("-dispatcher") {
        "a Kinesis batch the dispatcher gave up on: the record holds the shard and sequence range \
         (KinesisBatchInfo); read them with GetShardIterator AT_SEQUENCE_NUMBER while the stream \
         still keeps them, put them again with `sqs-push put-event`, then delete the record"
    } else if function.ends_with("-cleanup") {
        "a sessions-stream batch cleanup gave up on (DDBStreamBatchInfo): the sessions' queues and \
         identities may be left; or an orphan sweep step (`{\"sweep\": …}`) that kept failing, \
         which the next scheduled run does again. `/cleanup` removes orphaned queues, then delete \
         the record"
    } else if function == "poison" {
        "Kinesis records that can never be dispatched as written (the record holds the data, \
         base64): fix the producer, put a corrected record with `sqs-push put-event`, then delete \
         the record"
    } else if function == "unreadable" {
        "not a Lambda destination record: inspect it with `aws sqs receive-message` and delete it"
    } else {
        "a record of another stage or function: run redrive with that --stage, or delete it"
    }
}

fn print_progress(report: &RedriveReport, apply: bool) {
    if apply {
        eprint!(
            "\rredrive: {} records read, {} redriven, {} left, {} failed",
            report.seen, report.redriven, report.left, report.failed
        );
    } else {
        eprint!("\rredrive: {} records read (dry run)", report.seen);
    }
}

/// Runs redrive.
pub async fn run(args: Args) -> ExitCode {
    let name = dlq_name(&args.stage);
    let mut config = StackConfig::for_stage(&args.stage, &args.region);
    if args.env == "local" {
        config.endpoint_url = Some(args.emulator.clone());
        config.static_credentials = Some((
            sqs_push_local::stack::EMULATOR_CREDENTIALS.0.to_string(),
            sqs_push_local::stack::EMULATOR_CREDENTIALS.1.to_string(),
        ));
    }
    let adapters = Adapters::aws(&config).await;
    let sqs = if args.env == "local" {
        aws_sdk_sqs::Client::new(
            &sqs_push_local::stack::emulator_sdk_config(&args.emulator, &args.region).await,
        )
    } else {
        aws_sdk_sqs::Client::new(
            &sqs_push_aws::load_sdk_config(&sqs_push_aws::Endpoint {
                region: args.region.clone(),
                ..sqs_push_aws::Endpoint::default()
            })
            .await,
        )
    };
    let dlq = match SqsDeadLetters::find(sqs, &name).await {
        Ok(dlq) => dlq,
        Err(error) => {
            eprintln!("redrive: cannot find the dead-letter queue {name}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let invoker: Arc<dyn Invoker> = if args.env == "local" {
        LocalRunner::new(&config, &adapters)
    } else {
        adapters.invoker.clone()
    };
    let options = RedriveOptions {
        apply: args.apply,
        max: args.max,
        ..RedriveOptions::default()
    };
    let started = Instant::now();
    let apply = args.apply;
    let mut progress = move |report: &RedriveReport| print_progress(report, apply);
    let result = redrive(
        &args.stage,
        &dlq,
        invoker.as_ref(),
        adapters.sessions.as_ref(),
        options,
        &mut progress,
    )
    .await;
    eprintln!();
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            eprintln!("redrive: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "{name}: {} records in {:.1}s{}",
        report.seen,
        started.elapsed().as_secs_f64(),
        if apply {
            ""
        } else {
            " (dry run: nothing changed; --apply to redrive)"
        }
    );
    for (function, count) in &report.per_function {
        let replayable = ["sender", "history", "dispatcher", "poison"].contains(&function.as_str());
        println!("  {function}: {count}");
        if !replayable {
            println!("    left: {}", advice(function));
        }
    }
    if report.letters + report.incomplete > 0 {
        println!(
            "  letters: {} complete, {} with parts missing (left)",
            report.letters, report.incomplete
        );
    }
    for poison in &report.poison {
        println!(
            "  poison record {} of {} ({} bytes): {}",
            poison.sequence_number, poison.shard_id, poison.bytes, poison.reason
        );
    }
    if !report.poison.is_empty() {
        println!("    left: {}", advice("poison"));
    }
    if apply {
        println!(
            "redriven {} records, left {}, failed {}; deliveries resent {}, to sessions gone since {}",
            report.redriven, report.left, report.failed, report.resent, report.gone
        );
    }
    if report.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_classified_by_function_and_stage() {
        let record = |arn: &str| {
            format!(
                r#"{{"requestContext":{{"functionArn":"{arn}","condition":"RetriesExhausted"}},"requestPayload":{{"messages":[]}}}}"#
            )
        };
        assert_eq!(
            classify(
                "dev",
                &record("arn:aws:lambda:eu-west-1:1:function:sqs-push-dev-sender:$LATEST")
            ),
            RecordKind::Replayable(AsyncFunction::Sender, br#"{"messages":[]}"#.to_vec())
        );
        assert!(matches!(
            classify(
                "dev",
                &record("arn:aws:lambda:eu-west-1:1:function:sqs-push-dev-history")
            ),
            RecordKind::Replayable(AsyncFunction::History, _)
        ));
        assert_eq!(
            classify(
                "dev",
                &record("arn:aws:lambda:eu-west-1:1:function:sqs-push-prod-sender")
            ),
            RecordKind::Other("sqs-push-prod-sender".into())
        );
        assert!(matches!(
            classify(
                "dev",
                &record("arn:aws:lambda:eu-west-1:1:function:sqs-push-dev-dispatcher")
            ),
            RecordKind::Replayable(AsyncFunction::Dispatcher, _)
        ));
        // Written by the service itself: the function's name stands for its ARN.
        assert!(matches!(
            classify("dev", &record("sqs-push-dev-sender")),
            RecordKind::Replayable(AsyncFunction::Sender, _)
        ));
        let batch = r#"{"requestContext":{"functionArn":"arn:aws:lambda:eu-west-1:1:function:sqs-push-dev-dispatcher"},"KinesisBatchInfo":{}}"#;
        assert_eq!(
            classify("dev", batch),
            RecordKind::Other("sqs-push-dev-dispatcher".into())
        );
        assert_eq!(classify("dev", "not json"), RecordKind::Unreadable);
        assert_eq!(classify("dev", "{}"), RecordKind::Unreadable);
    }
}
