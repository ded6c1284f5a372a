//! Dead letters of the largest message the API accepts: refused by a queue whose
//! MaximumMessageSize was lowered, on `/notify` (sent by the api itself), in the `sender`
//! function (a handed-off fan-out) and on Kinesis. Each ends in the dead-letter queue whole —
//! split into records the queue's own 256 KiB limit takes — with no session key in any record;
//! `sqs-push redrive` resends it to the sessions still there with keys read again, and reports
//! a session destroyed since as gone.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqs_push_cli::redrive::{
    LocalRunner, RecordKind, RedriveOptions, RedriveReport, SqsDeadLetters, classify, dlq_name,
    redrive,
};
use sqs_push_core::dispatch::DispatchSettings;
use sqs_push_core::dispatch::letter::{About, Letter, LetterPart, join};
use sqs_push_functions::wiring::Adapters;
use sqs_push_tests::*;

/// The largest message JSON the queues take: its sealed form (base64 of the JSON, counter,
/// MAC attribute: 136 bytes) fits 1 MiB exactly (`Message::check_sizes`). A Kinesis record
/// may be this large.
const LARGEST_JSON: usize = (1_048_576 - 136) / 4 * 3;

/// The largest `/notify` body the API accepts (`api/notify.rs`).
const LARGEST_BODY: usize = 700 * 1024;

/// A message of `bytes` bytes of JSON with `fields` (SQS only: a history row is capped at
/// 400 KB).
fn largest(message_id: &str, bytes: usize, fields: Value) -> Value {
    let mut message = json!({"messageId": message_id, "_sqs_only": 1, "message": ""});
    for (name, value) in fields.as_object().unwrap() {
        message[name] = value.clone();
    }
    let base = message.to_string().len();
    message["message"] = Value::from("x".repeat(bytes - base));
    message
}

/// The stage's dead-letter queue, emptied.
async fn empty_dead_letter_queue(sqs: &aws_sdk_sqs::Client, stage: &str) -> String {
    let url = sqs
        .get_queue_url()
        .queue_name(dlq_name(stage))
        .send()
        .await
        .expect("the local stack made its dead-letter queue")
        .queue_url()
        .unwrap()
        .to_string();
    sqs.purge_queue().queue_url(&url).send().await.unwrap();
    url
}

/// Every record of the dead-letter queue (read, then visible again within 2 s), by message id.
async fn dead_letter_bodies(sqs: &aws_sdk_sqs::Client, url: &str) -> BTreeMap<String, String> {
    let mut bodies = BTreeMap::new();
    loop {
        let output = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(2)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if output.messages().is_empty() {
            break;
        }
        for message in output.messages() {
            bodies.insert(
                message.message_id().unwrap().to_string(),
                message.body().unwrap().to_string(),
            );
        }
    }
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    bodies
}

/// Waits until the dead-letter queue holds a complete letter, then checks every record: within
/// the queue's limit, no key of `receivers`; returns the letters.
async fn wait_for_letters(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    stage: &str,
    receivers: &[&Receiver],
) -> Vec<Letter> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let bodies = dead_letter_bodies(sqs, url).await;
        let mut parts: BTreeMap<String, Vec<LetterPart>> = BTreeMap::new();
        for body in bodies.values() {
            assert!(body.len() <= 262_144, "a record of {} bytes", body.len());
            for receiver in receivers {
                assert!(
                    !body.contains(&receiver.key.to_base64()),
                    "a dead letter holds the key of {}",
                    receiver.queue_url
                );
            }
            match classify(stage, body) {
                RecordKind::Letter(_, part) => {
                    parts.entry(part.letter.clone()).or_default().push(*part);
                }
                other => panic!("not a letter: {other:?}"),
            }
        }
        let complete = !parts.is_empty()
            && parts
                .values()
                .all(|parts| parts.len() == parts[0].parts as usize);
        if complete {
            return parts
                .into_values()
                .map(|parts| join(parts).unwrap())
                .collect();
        }
        assert!(Instant::now() < deadline, "no complete letter: {bodies:?}");
    }
}

/// Sets a queue's MaximumMessageSize.
async fn max_size(sqs: &aws_sdk_sqs::Client, receiver: &Receiver, bytes: u32) {
    sqs.set_queue_attributes()
        .queue_url(&receiver.queue_url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize,
            bytes.to_string(),
        )
        .send()
        .await
        .unwrap();
}

/// One `sqs-push redrive --apply` in this process.
async fn redrive_applied(stack: &Stack) -> RedriveReport {
    let sqs = aws_sdk_sqs::Client::new(&admin_config(&stack.emulator).await);
    let dlq = SqsDeadLetters::find(sqs, &dlq_name(&stack.config.stage))
        .await
        .unwrap();
    let adapters = Adapters::aws(&stack.config).await;
    let runner = LocalRunner::new(&stack.config, &adapters);
    let options = RedriveOptions {
        apply: true,
        hide: Duration::from_secs(10),
        ..RedriveOptions::default()
    };
    redrive(
        &stack.config.stage,
        &dlq,
        runner.as_ref(),
        adapters.sessions.as_ref(),
        options,
        &mut |_| {},
    )
    .await
    .expect("redrive reads the dead-letter queue")
}

/// A user with three sessions, two of whose queues refuse anything above 1 KiB.
struct Scene {
    user: u64,
    open: Receiver,
    refusing: [Receiver; 2],
}

async fn scene(stack: &Stack, user: u64) -> Scene {
    let sqs = aws_sdk_sqs::Client::new(&admin_config(&stack.emulator).await);
    let open = create(stack, 3, user, &unique_session_id("open")).await;
    let refusing = [
        create(stack, 3, user, &unique_session_id("small-a")).await,
        create(stack, 3, user, &unique_session_id("small-b")).await,
    ];
    for receiver in &refusing {
        max_size(&sqs, receiver, 1024).await;
    }
    Scene {
        user,
        open,
        refusing,
    }
}

/// The message ids a queue received (and deleted).
async fn ids(sqs: &aws_sdk_sqs::Client, receiver: &Receiver, wait: i32) -> Vec<String> {
    drain(sqs, receiver, wait)
        .await
        .iter()
        .map(|message| message["messageId"].as_str().unwrap().to_string())
        .collect()
}

/// What every path must end with: the open session got the message, the two refused
/// deliveries wait in the dead-letter queue as one letter holding the whole message and two
/// session references; after one refused session is destroyed and the other's queue raised,
/// redrive resends it to that one, reports the other gone, and leaves the queue empty.
async fn dead_lettered_whole_then_redriven(stack: &Stack, scene: &Scene, message_id: &str) {
    let sqs = aws_sdk_sqs::Client::new(&admin_config(&stack.emulator).await);
    let url = sqs
        .get_queue_url()
        .queue_name(dlq_name(&stack.config.stage))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    assert_eq!(ids(&sqs, &scene.open, 20).await, vec![message_id]);
    let all = [&scene.open, &scene.refusing[0], &scene.refusing[1]];
    let letters = wait_for_letters(&sqs, &url, &stack.config.stage, &all).await;
    assert_eq!(letters.len(), 1, "one letter: {letters:?}");
    let letter = &letters[0];
    assert!(
        matches!(&letter.about, About::Undelivered { message_id: id, .. } if id == message_id),
        "{letter:?}"
    );
    let message: Value = serde_json::from_str(&letter.text).unwrap();
    assert_eq!(message["messageId"], message_id);
    assert!(
        letter.text.len() >= LARGEST_BODY,
        "the whole message: {} bytes",
        letter.text.len()
    );
    let mut named: Vec<(u64, String)> = letter
        .deliveries
        .iter()
        .map(|reference| {
            let session = reference.session.as_ref().expect("names its session");
            (session.user_id.get(), session.session_id.to_string())
        })
        .collect();
    named.sort();
    let mut expected: Vec<(u64, String)> = scene
        .refusing
        .iter()
        .map(|receiver| (scene.user, receiver.session.clone()))
        .collect();
    expected.sort();
    assert_eq!(named, expected);

    // One refused session ends; the other's queue is raised to take the message.
    let gone = &scene.refusing[0];
    let (status, answer) = get(
        stack,
        &format!("/destroy/{}/{}/{}", gone.account, gone.user, gone.session),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    max_size(&sqs, &scene.refusing[1], 1_048_576).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = redrive_applied(stack).await;
    assert_eq!(
        (report.letters, report.resent, report.gone, report.left),
        (1, 1, 1, 0),
        "{report:?}"
    );
    assert_eq!(ids(&sqs, &scene.refusing[1], 10).await, vec![message_id]);
    assert!(
        dead_letter_bodies(&sqs, &url).await.is_empty(),
        "the letter's records are deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_message_refused_on_notify_is_dead_lettered_whole_without_keys_and_redriven() {
    let stack = Stack::start().await;
    let sqs = aws_sdk_sqs::Client::new(&admin_config(&stack.emulator).await);
    empty_dead_letter_queue(&sqs, &stack.config.stage).await;
    let scene = scene(&stack, 7101).await;
    let body = largest("largest-notify", LARGEST_BODY, json!({})).to_string();
    // The largest: one byte more is refused.
    let larger = largest("largest-notify", LARGEST_BODY + 1, json!({})).to_string();
    let (status, answer) = call(&stack, "POST", "/notify/user/7101", &larger).await;
    assert_eq!(status, 413, "{answer}");

    let (status, answer) = call(&stack, "POST", "/notify/user/7101", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["sentDirectly"], &answer["deadLettered"]),
        (&json!(1), &json!(2)),
        "{answer}"
    );
    dead_lettered_whole_then_redriven(&stack, &scene, "largest-notify").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_message_refused_in_the_sender_is_dead_lettered_whole_and_redriven() {
    // Every fan-out goes to `sender` invocations.
    let stack = Stack::builder()
        .configure(|options| {
            options.stack.dispatch = DispatchSettings {
                direct_limit: 0,
                ..DispatchSettings::default()
            };
        })
        .start()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&admin_config(&stack.emulator).await);
    empty_dead_letter_queue(&sqs, &stack.config.stage).await;
    let scene = scene(&stack, 7102).await;
    let body = largest("largest-sender", LARGEST_BODY, json!({})).to_string();
    let (status, answer) = call(&stack, "POST", "/notify/user/7102", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["senderBatches"], 1, "{answer}");
    dead_lettered_whole_then_redriven(&stack, &scene, "largest-sender").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_message_refused_on_kinesis_is_dead_lettered_whole_not_skipped_as_poison() {
    let stack = Stack::start().await;
    let admin = admin_config(&stack.emulator).await;
    let sqs = aws_sdk_sqs::Client::new(&admin);
    empty_dead_letter_queue(&sqs, &stack.config.stage).await;
    let scene = scene(&stack, 7103).await;
    // Larger than the API takes: what a record may carry, sealed within 1 MiB.
    let record = largest(
        "largest-kinesis",
        LARGEST_JSON,
        json!({"userId": scene.user}),
    );
    aws_sdk_kinesis::Client::new(&admin)
        .put_record()
        .stream_name(stack.config.events_stream())
        .partition_key("one")
        .data(aws_sdk_kinesis::primitives::Blob::new(record.to_string()))
        .send()
        .await
        .expect("the record is put");
    dead_lettered_whole_then_redriven(&stack, &scene, "largest-kinesis").await;
}

/// Puts `records` on the stack's stream in one PutRecords call, on one shard; returns their
/// sequence numbers.
async fn put_records(stack: &Stack, records: &[String]) -> Vec<String> {
    let admin = admin_config(&stack.emulator).await;
    let entries: Vec<_> = records
        .iter()
        .map(|data| {
            aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                .partition_key("one-shard")
                .data(aws_sdk_kinesis::primitives::Blob::new(data.as_bytes()))
                .build()
                .unwrap()
        })
        .collect();
    let output = aws_sdk_kinesis::Client::new(&admin)
        .put_records()
        .stream_name(stack.config.events_stream())
        .set_records(Some(entries))
        .send()
        .await
        .expect("the records are put");
    output
        .records()
        .iter()
        .map(|entry| entry.sequence_number().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_records_on_both_kinesis_paths_are_dead_lettered_as_the_record_and_listed_by_redrive()
 {
    let stack = Stack::start().await;
    let sqs = aws_sdk_sqs::Client::new(&admin_config(&stack.emulator).await);
    let url = empty_dead_letter_queue(&sqs, &stack.config.stage).await;
    let receiver = create(&stack, 4, 7104, &unique_session_id("poison")).await;
    // A batch of one: the record-by-record path.
    let alone = put_records(&stack, &[r#"{"message":"no target"}"#.to_string()]).await;
    let first = wait_for_letters(&sqs, &url, &stack.config.stage, &[&receiver]).await;
    assert_eq!(first.len(), 1, "{first:?}");
    // A batch of four: the grouped path, two of them poison (one larger than a record).
    let huge = format!(r#"{{"userID":7104,"m":"{}"}}"#, "y".repeat(300_000));
    let batch = [
        r#"{"userId":7104,"message":"one","messageId":"p-1"}"#.to_string(),
        huge.clone(),
        r#"{"userId":7104,"message":"two","messageId":"p-2"}"#.to_string(),
        "not json".to_string(),
    ];
    let sequences = put_records(&stack, &batch).await;
    let mut got = ids(&sqs, &receiver, 20).await;
    while got.len() < 2 {
        got.extend(ids(&sqs, &receiver, 5).await);
    }
    got.sort();
    assert_eq!(got, vec!["p-1", "p-2"], "the batch's good records went out");

    let deadline = Instant::now() + Duration::from_secs(60);
    let letters = loop {
        let letters = wait_for_letters(&sqs, &url, &stack.config.stage, &[&receiver]).await;
        if letters.len() == 3 || Instant::now() > deadline {
            break letters;
        }
    };
    // (sequence number, bytes, the first 24): the whole record, without printing 300 KB.
    let summary = |data: &str| (data.len(), data.chars().take(24).collect::<String>());
    let mut found: Vec<(String, (usize, String))> = letters
        .iter()
        .map(|letter| match &letter.about {
            About::Poison {
                shard_id,
                sequence_number,
                ..
            } => {
                use base64::Engine;
                let data = base64::engine::general_purpose::STANDARD
                    .decode(&letter.text)
                    .unwrap();
                assert!(shard_id.starts_with("shardId-"), "{shard_id}");
                (
                    sequence_number.clone(),
                    summary(&String::from_utf8(data).unwrap()),
                )
            }
            other => panic!("not poison: {other:?}"),
        })
        .collect();
    found.sort();
    let mut expected = vec![
        (alone[0].clone(), summary(r#"{"message":"no target"}"#)),
        (sequences[1].clone(), summary(&huge)),
        (sequences[3].clone(), summary("not json")),
    ];
    expected.sort();
    assert_eq!(
        found, expected,
        "each poison record, whole, by its sequence number"
    );

    // Redrive lists them (dry run and apply alike) and leaves them.
    let report = redrive_applied(&stack).await;
    let mut listed: Vec<String> = report
        .poison
        .iter()
        .map(|poison| poison.sequence_number.clone())
        .collect();
    listed.sort();
    let mut sequences_expected: Vec<String> = expected.into_iter().map(|(s, _)| s).collect();
    sequences_expected.sort();
    assert_eq!(listed, sequences_expected, "{report:?}");
    assert!(report.poison.iter().all(|poison| !poison.reason.is_empty()));
    assert_eq!((report.redriven, report.resent), (0, 0), "{report:?}");
    assert!(report.left >= 3, "{report:?}");
}
