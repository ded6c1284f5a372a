//! Nothing lost under injected faults: the local stack talks to the emulator through the fault
//! proxy (`tests/fault-proxy`), which fails a share of the AWS calls, and each scenario asserts
//! exact outcomes — every session reached, one history row per user, or the undeliverable work
//! in the dead-letter queue.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqs_push_core::dispatch::DispatchSettings;
use sqs_push_fault_proxy::{Fault, Rule};
use sqs_push_tests::*;

/// A stack whose every AWS call crosses the fault proxy, sending directly up to `direct_limit`
/// queues and handing on batches of 40.
async fn stack_behind_proxy(direct_limit: usize) -> Stack {
    Stack::builder()
        .fault_proxy()
        .configure(|options| {
            options.stack.dispatch = DispatchSettings {
                direct_limit,
                sender_batch: 40,
                ..DispatchSettings::default()
            };
        })
        .start()
        .await
}

/// The message ids a queue received, read straight from the emulator (not through the proxy).
async fn received_ids(sqs: &aws_sdk_sqs::Client, receiver: &Receiver) -> BTreeSet<String> {
    drain(sqs, receiver, 1)
        .await
        .iter()
        .filter_map(|message| message["messageId"].as_str().map(str::to_string))
        .collect()
}

/// Puts `records` on the stack's stream in one PutRecords call, all on one shard (in order).
async fn put_records(admin: &aws_config::SdkConfig, stack: &Stack, records: &[Value]) {
    let entries: Vec<_> = records
        .iter()
        .map(|record| {
            aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                .partition_key("one-shard")
                .data(aws_sdk_kinesis::primitives::Blob::new(record.to_string()))
                .build()
                .unwrap()
        })
        .collect();
    aws_sdk_kinesis::Client::new(admin)
        .put_records()
        .stream_name(stack.config.events_stream())
        .set_records(Some(entries))
        .send()
        .await
        .expect("the records are put");
}

/// One `sqs-push redrive --apply` over the stage's dead-letter queue, replayed in this process.
async fn redrive_applied(
    stage: &str,
    dlq: &sqs_push_cli::redrive::SqsDeadLetters,
    runner: &sqs_push_cli::redrive::LocalRunner,
    sessions: &dyn sqs_push_core::ports::SessionStore,
) -> sqs_push_cli::redrive::RedriveReport {
    let options = sqs_push_cli::redrive::RedriveOptions {
        apply: true,
        hide: Duration::from_secs(5),
        ..Default::default()
    };
    sqs_push_cli::redrive::redrive(stage, dlq, runner, sessions, options, &mut |_| {})
        .await
        .expect("redrive reads the dead-letter queue")
}

/// History rows of a message, per user, read straight from the emulator.
async fn history_rows(
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
    message_id: &str,
) -> Vec<u64> {
    let items: Vec<_> = dynamodb
        .scan()
        .table_name(table)
        .filter_expression("messageId = :m")
        .expression_attribute_values(
            ":m",
            aws_sdk_dynamodb::types::AttributeValue::S(message_id.to_string()),
        )
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    let mut users: Vec<u64> = items
        .into_iter()
        .map(|item| {
            let item = item.expect("the scan succeeds");
            item["userId"].as_n().unwrap().parse().unwrap()
        })
        .collect();
    users.sort_unstable();
    users
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_notified_while_sqs_fails_and_history_throttles_get_every_message_and_one_row_each() {
    const USERS: u64 = 60;
    let stack = stack_behind_proxy(0).await;
    let (emulator, proxy) = (&stack.emulator, stack.proxy());
    let receivers = seed_receivers(&stack, USERS, 3).await;
    proxy.set_rules(vec![
        Rule::new("SendMessageBatch", Fault::ServerError, 0.10),
        Rule::new("PutItem", Fault::Throttling, 0.20).service("dynamodb"),
    ]);

    let mut message_ids = Vec::new();
    for user in 0..USERS {
        let (status, answer) = get(&stack, &format!("/notify/user/{user}?message=hi")).await;
        assert_eq!(status, 200, "{answer}");
        message_ids.push(answer["messageId"].as_str().unwrap().to_string());
    }

    let admin = admin_config(emulator).await;
    let sqs = aws_sdk_sqs::Client::new(&admin);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut missing: Vec<&Receiver> = receivers.iter().collect();
    let mut seen: Vec<(u64, BTreeSet<String>)> = Vec::new();
    while !missing.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for receiver in missing {
            let ids = received_ids(&sqs, receiver).await;
            if ids.is_empty() {
                still.push(receiver);
            } else {
                seen.push((receiver.user, ids));
            }
        }
        missing = still;
    }
    assert!(
        missing.is_empty(),
        "{} of {} sessions never got their message",
        missing.len(),
        receivers.len()
    );
    for (user, ids) in &seen {
        // After client dedupe (a set of ids), each session holds exactly its user's message.
        assert_eq!(
            ids,
            &BTreeSet::from([message_ids[*user as usize].clone()]),
            "user {user}"
        );
    }
    let stats = proxy.stats();
    let faults = stats.operation("SendMessageBatch").total_faults();
    let throttled = stats.operation("PutItem").total_faults();
    assert!(faults > 0, "the proxy failed no SendMessageBatch call");
    assert!(throttled > 0, "the proxy throttled no history write");
    eprintln!(
        "{} sessions reached; {faults} SendMessageBatch calls failed and {throttled} history \
         PutItems were throttled on the way",
        seen.len()
    );

    // History is written by `history` jobs of its own: wait for them, then count exactly.
    let dynamodb = aws_sdk_dynamodb::Client::new(&admin);
    let table = stack.config.history_table();
    for (user, message_id) in message_ids.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut rows = history_rows(&dynamodb, &table, message_id).await;
        while rows.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            rows = history_rows(&dynamodb, &table, message_id).await;
        }
        assert_eq!(rows, vec![user as u64], "history of {message_id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_that_keep_failing_are_handed_on_then_dead_lettered_exactly() {
    let stack = stack_behind_proxy(0).await;
    let (emulator, proxy) = (&stack.emulator, stack.proxy());
    let receivers = seed_receivers(&stack, 3, 3).await;
    let user = receivers[0].user;
    let queues: BTreeSet<String> = receivers
        .iter()
        .filter(|receiver| receiver.user == user)
        .map(|receiver| receiver.queue_url.clone())
        .collect();
    proxy.set_rules(vec![Rule::new("SendMessageBatch", Fault::ServerError, 1.0)]);

    let (status, answer) = get(&stack, &format!("/notify/user/{user}?message=lost")).await;
    assert_eq!(status, 200, "{answer}");

    let sqs = aws_sdk_sqs::Client::new(&admin_config(emulator).await);
    let dlq = sqs
        .get_queue_url()
        .queue_name("sqs-push-dlq-local")
        .send()
        .await
        .expect("the local stack made its dead-letter queue")
        .queue_url()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    let record: Value = loop {
        assert!(
            Instant::now() < deadline,
            "nothing reached the dead-letter queue"
        );
        let output = sqs
            .receive_message()
            .queue_url(&dlq)
            .wait_time_seconds(2)
            .send()
            .await
            .unwrap();
        if let Some(message) = output.messages().first() {
            break serde_json::from_str(message.body().unwrap()).unwrap();
        }
    };
    assert!(
        record["requestContext"]["functionArn"]
            .as_str()
            .unwrap()
            .ends_with("sqs-push-local-sender"),
        "{record}"
    );
    // A letter: the message once, the deliveries by queue and session, no key.
    let payload = &record["requestPayload"];
    assert_eq!(
        payload["about"]["undelivered"]["attempt"], 3,
        "handed on three times first: {record}"
    );
    let dead: BTreeSet<String> = payload["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|delivery| delivery["queueUrl"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(dead, queues, "exactly the user's undelivered queues");
    assert_eq!(payload["parts"], 1, "{record}");
    let message: Value = serde_json::from_str(payload["text"].as_str().unwrap()).unwrap();
    assert_eq!(message["message"], "lost", "{record}");
    for receiver in &receivers {
        assert!(
            !record.to_string().contains(&receiver.key.to_base64()),
            "no session key in a dead letter: {record}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_under_failing_deletes_removes_every_queue_in_the_end() {
    const USERS: u64 = 30;
    let stack = stack_behind_proxy(50).await;
    let (emulator, proxy) = (&stack.emulator, stack.proxy());
    let receivers = seed_receivers(&stack, USERS, 3).await;
    // The SDK retries a 5xx three times, so 10% would almost never get past it; at 40% about
    // one delete in sixteen fails for good and the stream's own retry has to finish the job.
    proxy.set_rules(vec![
        Rule::new("DeleteQueue", Fault::ServerError, 0.40),
        Rule::new("DeleteIdentities", Fault::ServerError, 0.40),
    ]);

    // Rows removed behind the API's back, as the TTL does: only the stream tells cleanup.
    let admin = admin_config(emulator).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&admin);
    for receiver in &receivers {
        dynamodb
            .delete_item()
            .table_name(stack.config.sessions_table())
            .key(
                "userId",
                aws_sdk_dynamodb::types::AttributeValue::N(receiver.user.to_string()),
            )
            .key(
                "sessionId",
                aws_sdk_dynamodb::types::AttributeValue::S(receiver.session.clone()),
            )
            .send()
            .await
            .expect("the row is deleted");
    }

    let sqs = aws_sdk_sqs::Client::new(&admin);
    let urls: BTreeSet<String> = receivers.iter().map(|r| r.queue_url.clone()).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut left = urls.len();
    while left > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let listed = sqs
            .list_queues()
            .queue_name_prefix(stack.config.prefix())
            .max_results(1000)
            .send()
            .await
            .expect("the queues are listed");
        left = listed
            .queue_urls()
            .iter()
            .filter(|url| {
                urls.iter()
                    .any(|ours| ours.ends_with(url.rsplit('/').next().unwrap_or_default()))
            })
            .count();
    }
    let failed = proxy.stats().operation("DeleteQueue").total_faults();
    assert!(failed > 0, "the proxy failed no DeleteQueue call");
    assert_eq!(
        left, 0,
        "queues still there after cleanup ({failed} DeleteQueue calls failed on the way)"
    );
    eprintln!(
        "{} queues removed; {failed} DeleteQueue calls failed on the way",
        urls.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kinesis_batch_failing_mid_way_resumes_at_the_failed_record_skipping_and_doubling_nothing()
 {
    let stack = stack_behind_proxy(50).await;
    let (emulator, proxy) = (&stack.emulator, stack.proxy());
    let receivers = seed_receivers(&stack, 3, 1).await;
    let session_of = |user: u64| {
        receivers
            .iter()
            .find(|receiver| receiver.user == user)
            .unwrap()
    };
    // Record 1 names a session (GetItem), record 2 a user (Query), record 3 a session again.
    // Six Query calls fail: the grouped attempt and then record 2 on its own, each after the
    // SDK's three attempts — so the batch stops at record 2 and the stream retries from there.
    proxy.set_rules(vec![
        Rule::new("Query", Fault::ServerError, 1.0)
            .service("dynamodb")
            .max_faults(6),
    ]);
    let records = [
        serde_json::json!({"userId": 0, "sessionId": session_of(0).session, "messageId": "k-1"}),
        serde_json::json!({"userId": 1, "messageId": "k-2"}),
        serde_json::json!({"userId": 2, "sessionId": session_of(2).session, "messageId": "k-3"}),
    ];
    let admin = admin_config(emulator).await;
    put_records(&admin, &stack, &records).await;

    let sqs = aws_sdk_sqs::Client::new(&admin);
    let dynamodb = aws_sdk_dynamodb::Client::new(&admin);
    let table = stack.config.history_table();
    for (user, message_id) in [(0, "k-1"), (1, "k-2"), (2, "k-3")] {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut rows = history_rows(&dynamodb, &table, message_id).await;
        while rows.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            rows = history_rows(&dynamodb, &table, message_id).await;
        }
        assert_eq!(rows, vec![user], "one history row for {message_id}");
    }
    // Each session got its record's message once: nothing skipped, nothing sent twice.
    for (receiver, expected) in [(session_of(0), vec!["k-1"]), (session_of(2), vec!["k-3"])] {
        let got: Vec<String> = drain(&sqs, receiver, 2)
            .await
            .iter()
            .map(|message| message["messageId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, expected, "{}", receiver.queue_url);
    }
    for receiver in receivers.iter().filter(|receiver| receiver.user == 1) {
        let got: Vec<String> = drain(&sqs, receiver, 2)
            .await
            .iter()
            .map(|message| message["messageId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, vec!["k-2"], "{}", receiver.queue_url);
    }
    assert_eq!(
        proxy.stats().operation("Query").total_faults(),
        6,
        "the downstream call failed as planned"
    );
}

/// The stage's dead-letter queue, read straight from the emulator.
async fn dead_letter_queue(sqs: &aws_sdk_sqs::Client) -> String {
    sqs.get_queue_url()
        .queue_name("sqs-push-dlq-local")
        .send()
        .await
        .expect("the local stack made its dead-letter queue")
        .queue_url()
        .unwrap()
        .to_string()
}

/// Waits until every receiver holds at least one message and returns what each got (by message
/// id, as a client dedupes).
async fn wait_for_ids(
    sqs: &aws_sdk_sqs::Client,
    receivers: &[Receiver],
    limit: Duration,
) -> Vec<BTreeSet<String>> {
    let deadline = Instant::now() + limit;
    let mut got: Vec<BTreeSet<String>> = vec![BTreeSet::new(); receivers.len()];
    while got.iter().any(BTreeSet::is_empty) && Instant::now() < deadline {
        for (receiver, ids) in receivers.iter().zip(got.iter_mut()) {
            ids.extend(received_ids(sqs, receiver).await);
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_notified_while_every_send_fails_gets_it_once_sqs_recovers_and_the_answer_says_handed_on()
 {
    // The direct path: a few sessions are sent to by the api itself.
    let stack = stack_behind_proxy(50).await;
    let (emulator, proxy) = (&stack.emulator, stack.proxy());
    let mut receivers = Vec::new();
    for n in 0..3 {
        receivers.push(create(&stack, 5, 4242, &unique_session_id(&format!("down{n}"))).await);
    }
    // Every SendMessageBatch fails, more often than the SDK's three attempts can hide.
    proxy.set_rules(vec![Rule::new("SendMessageBatch", Fault::ServerError, 1.0)]);
    let (status, answer) = get(&stack, "/notify/user/4242?message=after+the+outage").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (
            &answer["sentDirectly"],
            &answer["failed"],
            &answer["handedOn"]
        ),
        (&Value::from(0), &Value::from(3), &Value::from(3)),
        "the answer says all three deliveries were handed on: {answer}"
    );
    let message_id = answer["messageId"].as_str().unwrap().to_string();
    // SQS recovers after a while; the handed-on job (waiting 1 s, then 4 s) delivers.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let failed = proxy.stats().operation("SendMessageBatch").total_faults();
    proxy.set_rules(Vec::new());

    let sqs = aws_sdk_sqs::Client::new(&admin_config(emulator).await);
    let got = wait_for_ids(&sqs, &receivers, Duration::from_secs(60)).await;
    for (receiver, ids) in receivers.iter().zip(&got) {
        assert_eq!(
            ids,
            &BTreeSet::from([message_id.clone()]),
            "{} after {failed} failed SendMessageBatch calls",
            receiver.queue_url
        );
    }
    let dlq = dead_letter_queue(&sqs).await;
    let left = sqs
        .receive_message()
        .queue_url(&dlq)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert!(left.messages().is_empty(), "nothing was dead-lettered");
    eprintln!("3 sessions reached once each after {failed} SendMessageBatch calls failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_row_whose_direct_write_is_throttled_for_a_while_exists_exactly_once_after() {
    let stack = stack_behind_proxy(50).await;
    let (emulator, proxy) = (&stack.emulator, stack.proxy());
    proxy.set_rules(vec![
        Rule::new("PutItem", Fault::Throttling, 1.0).service("dynamodb"),
    ]);
    let (status, answer) = get(&stack, "/notify/user/5151?message=kept").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["historyHandedOn"], 1, "{answer}");
    let message_id = answer["messageId"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let throttled = proxy.stats().operation("PutItem").total_faults();
    proxy.set_rules(Vec::new());

    let dynamodb = aws_sdk_dynamodb::Client::new(&admin_config(emulator).await);
    let table = stack.config.history_table();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut rows = history_rows(&dynamodb, &table, &message_id).await;
    while rows.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        rows = history_rows(&dynamodb, &table, &message_id).await;
    }
    assert_eq!(
        rows,
        vec![5151],
        "one row after {throttled} throttled PutItems"
    );
    eprintln!("history row written once after {throttled} PutItems were throttled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_above_the_queues_size_limit_is_dead_lettered_and_redrive_delivers_it_once_raised()
 {
    use sqs_push_cli::redrive::{LocalRunner, SqsDeadLetters, dlq_name};
    let stack = stack_behind_proxy(50).await;
    let emulator = &stack.emulator;
    let receiver = create(&stack, 6, 6161, &unique_session_id("small")).await;
    let sqs = aws_sdk_sqs::Client::new(&admin_config(emulator).await);
    let dlq_url = dead_letter_queue(&sqs).await;
    sqs.purge_queue().queue_url(&dlq_url).send().await.unwrap();
    let max_size = |bytes: u32| {
        sqs.set_queue_attributes()
            .queue_url(&receiver.queue_url)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize,
                bytes.to_string(),
            )
            .send()
    };
    max_size(1024).await.unwrap();

    let body = serde_json::json!({"message": "x".repeat(2048)}).to_string();
    let (status, answer) = call(&stack, "POST", "/notify/user/6161", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["deadLettered"], 1, "{answer}");
    let message_id = answer["messageId"].as_str().unwrap().to_string();

    let dlq = SqsDeadLetters::find(sqs.clone(), &dlq_name(&stack.config.stage))
        .await
        .unwrap();
    let adapters = sqs_push_functions::wiring::Adapters::aws(&stack.config).await;
    let runner = LocalRunner::new(&stack.config, &adapters);
    // Still too small: the replay fails and the record stays.
    let report = redrive_applied(
        &stack.config.stage,
        &dlq,
        runner.as_ref(),
        adapters.sessions.as_ref(),
    )
    .await;
    assert_eq!(
        (
            report.per_function.get("sender"),
            report.redriven,
            report.left
        ),
        (Some(&1), 0, 1),
        "{report:?}"
    );
    assert!(drain(&sqs, &receiver, 0).await.is_empty());

    // The cause fixed, redrive delivers it, once.
    max_size(262_144).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = redrive_applied(
        &stack.config.stage,
        &dlq,
        runner.as_ref(),
        adapters.sessions.as_ref(),
    )
    .await;
    assert_eq!((report.redriven, report.left), (1, 0), "{report:?}");
    let got = drain(&sqs, &receiver, 5).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["messageId"], message_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kinesis_batch_whose_account_query_is_denied_stops_there_and_resumes_skipping_nothing() {
    let stack = stack_behind_proxy(50).await;
    let (emulator, proxy) = (&stack.emulator, stack.proxy());
    let receivers = seed_receivers(&stack, 3, 3).await;
    let of_user = |user: u64| -> Vec<Receiver> {
        receivers
            .iter()
            .filter(|receiver| receiver.user == user)
            .cloned()
            .collect()
    };
    let (first, middle, last) = (of_user(0), of_user(1), of_user(2));
    // Access denied on every Query (the account index) while an IAM change is rolled out: not
    // retryable for the SDK, so it reaches the dispatcher at once.
    proxy.set_rules(vec![
        Rule::new("Query", Fault::error(400, "AccessDeniedException"), 1.0).service("dynamodb"),
    ]);
    let records = [
        serde_json::json!({"userId": 0, "sessionId": first[0].session, "messageId": "d-1"}),
        serde_json::json!({"accountId": middle[0].account, "messageId": "d-2"}),
        serde_json::json!({"userId": 2, "sessionId": last[0].session, "messageId": "d-3"}),
    ];
    let admin = admin_config(emulator).await;
    put_records(&admin, &stack, &records).await;

    let sqs = aws_sdk_sqs::Client::new(&admin);
    // While access is denied: record 1 went out, records 2 and 3 wait (not skipped).
    let got_first = wait_for_ids(&sqs, &first[..1], Duration::from_secs(30)).await;
    assert_eq!(got_first[0], BTreeSet::from(["d-1".to_string()]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let denied = proxy.stats().operation("Query").total_faults();
    assert!(
        denied > 1,
        "the stream retried the denied record ({denied} denials)"
    );
    for receiver in middle.iter().chain(&last[..1]) {
        assert!(
            received_ids(&sqs, receiver).await.is_empty(),
            "{}: nothing may pass the stopped record",
            receiver.queue_url
        );
    }
    // Access restored: the stream resumes at record 2.
    proxy.set_rules(Vec::new());
    let accounts_sessions: Vec<Receiver> = receivers
        .iter()
        .filter(|receiver| receiver.account == middle[0].account)
        .cloned()
        .collect();
    let got = wait_for_ids(&sqs, &accounts_sessions, Duration::from_secs(60)).await;
    for (receiver, ids) in accounts_sessions.iter().zip(&got) {
        assert!(ids.contains("d-2"), "{}: {ids:?}", receiver.queue_url);
    }
    let got_last = wait_for_ids(&sqs, &last[..1], Duration::from_secs(30)).await;
    assert!(got_last[0].contains("d-3"), "{:?}", got_last[0]);
    eprintln!("the batch waited through {denied} denied Query calls, then resumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_read_whose_receipt_failed_sends_it_to_the_other_sessions_when_repeated() {
    let stack = stack_behind_proxy(50).await;
    let (emulator, proxy) = (&stack.emulator, stack.proxy());
    let phone = create(&stack, 8, 8181, &unique_session_id("phone")).await;
    let (status, answer) = get(&stack, "/notify/user/8181?message=read+me").await;
    assert_eq!(status, 200, "{answer}");
    let message_id = answer["messageId"].as_str().unwrap().to_string();
    let sqs = aws_sdk_sqs::Client::new(&admin_config(emulator).await);
    assert_eq!(
        received_ids(&sqs, &phone).await,
        BTreeSet::from([message_id.clone()])
    );

    // The receipt cannot go out: finding the user's sessions fails through the SDK's retries.
    proxy.set_rules(vec![
        Rule::new("Query", Fault::ServerError, 1.0)
            .service("dynamodb")
            .max_faults(3),
    ]);
    let path = format!("/messages/set-read/user/8181/message/{message_id}");
    let (status, answer) = get(&stack, &path).await;
    assert_eq!(
        status, 503,
        "the receipt failed, so the set-read did: {answer}"
    );
    // The caller repeats it: the row is read already, but its receipt is still owed.
    let (status, answer) = get(&stack, &path).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["messageIds"], serde_json::json!([message_id]));
    let receipts = drain(&sqs, &phone, 5).await;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0]["_type"], "message-read-receipt");
    assert_eq!(
        receipts[0]["messages-receipted"],
        serde_json::json!([message_id])
    );
    // Receipted now: a third call sends nothing.
    let (_, answer) = get(&stack, &path).await;
    assert_eq!(answer["changed"], 0, "{answer}");
    assert!(drain(&sqs, &phone, 1).await.is_empty());
}
