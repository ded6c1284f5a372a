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
    let payload = &record["requestPayload"];
    assert_eq!(
        payload["attempt"], 3,
        "handed on three times first: {record}"
    );
    let dead: BTreeSet<String> = payload["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|delivery| delivery["queueUrl"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(dead, queues, "exactly the user's undelivered queues");
    assert_eq!(
        payload["messages"].as_array().map(Vec::len),
        Some(1),
        "{record}"
    );
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
    let kinesis = aws_sdk_kinesis::Client::new(&admin);
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
    kinesis
        .put_records()
        .stream_name(stack.config.events_stream())
        .set_records(Some(entries))
        .send()
        .await
        .expect("the records are put");

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
