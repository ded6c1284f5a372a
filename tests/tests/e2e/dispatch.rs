//! Dispatch end to end: every target kind through the API and through Kinesis reaches exactly
//! the sessions it names; poison records are skipped; a large broadcast goes through the async
//! sender/history path and reaches every session once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use futures::StreamExt;
use serde_json::{Value, json};
use sqs_push_core::dispatch::DispatchSettings;
use sqs_push_local::LocalStack;
use sqs_push_tests::*;

/// Asserts that exactly `expected` (by index) receive one message with `marker`.
async fn assert_reached(
    sqs: &aws_sdk_sqs::Client,
    receivers: &[Receiver],
    expected: &BTreeSet<usize>,
    marker: &str,
) {
    // The expected ones first, with a long poll: the Kinesis path is asynchronous.
    for (index, receiver) in receivers.iter().enumerate() {
        let wait = if expected.contains(&index) { 10 } else { 0 };
        let got = drain(sqs, receiver, wait).await;
        let marked: Vec<&Value> = got.iter().filter(|m| m["marker"] == marker).collect();
        let who = format!(
            "account {} user {} session {}",
            receiver.account, receiver.user, receiver.session
        );
        if expected.contains(&index) {
            assert_eq!(
                marked.len(),
                1,
                "{marker}: {who} should get it once: {got:?}"
            );
        } else {
            assert!(
                marked.is_empty(),
                "{marker}: {who} should not get it: {got:?}"
            );
        }
    }
}

async fn put_event(emulator: &Emulator, data: &[u8]) {
    let kinesis = aws_sdk_kinesis::Client::new(&admin_config(emulator).await);
    kinesis
        .put_record()
        .stream_name("sqs-push-local-events")
        .partition_key("test")
        .data(Blob::new(data))
        .send()
        .await
        .unwrap();
}

fn indexes(receivers: &[Receiver], pick: impl Fn(&Receiver) -> bool) -> BTreeSet<usize> {
    receivers
        .iter()
        .enumerate()
        .filter(|(_, r)| pick(r))
        .map(|(i, _)| i)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_target_reaches_exactly_its_sessions_through_the_api_and_through_kinesis() {
    let stack = Stack::builder()
        .configure(|options| {
            // An account of 6 sessions is large: it goes to a segment worker that reads the account
            // index 2 rows a page, resuming from each page's key (as does an account + session
            // target, which reads the account's pages for the session).
            options.stack.dispatch.large_account = 4;
            options.stack.dispatch.scan_page = 2;
        })
        .start()
        .await;
    let emulator = &stack.emulator;
    let mut receivers = Vec::new();
    for account in 1..=3u64 {
        for k in 1..=3u64 {
            for session in ["a", "b"] {
                receivers.push(create(&stack, account, account * 10 + k, session).await);
            }
        }
    }
    let sqs = aws_sdk_sqs::Client::new(&admin_config(emulator).await);

    let cases: Vec<(&str, Value, BTreeSet<usize>)> = vec![
        (
            "/notify/user/21/session/b",
            json!({"userId": 21, "sessionId": "b"}),
            indexes(&receivers, |r| r.user == 21 && r.session == "b"),
        ),
        (
            "/notify/user/22",
            json!({"userId": 22}),
            indexes(&receivers, |r| r.user == 22),
        ),
        (
            "/notify/account/3",
            json!({"accountId": 3}),
            indexes(&receivers, |r| r.account == 3),
        ),
        // Account-scoped targets, as the original stack read them: the path (or `/notify`)
        // narrowed by the message's own target fields.
        (
            "/notify/account/1?sessionId=a",
            json!({"accountId": 1, "sessionId": "a"}),
            indexes(&receivers, |r| r.account == 1 && r.session == "a"),
        ),
        (
            "/notify/user/21?accountId=2",
            json!({"accountId": "2", "userId": "21"}),
            indexes(&receivers, |r| r.user == 21),
        ),
        (
            "/notify/user/21?accountId=1",
            json!({"accountId": 1, "userId": 21}),
            BTreeSet::new(),
        ),
        (
            "/notify?userId=32",
            json!({"userId": 32}),
            indexes(&receivers, |r| r.user == 32),
        ),
        // A record without target fields broadcasts only with the explicit marker.
        (
            "/notify",
            json!({"_broadcast": true}),
            indexes(&receivers, |_| true),
        ),
    ];
    for (path, event, expected) in cases {
        let marker = format!("api {path}");
        let mut body = json!({"marker": marker});
        // POST bodies carry the query's target fields.
        if let Some((_, query)) = path.split_once('?') {
            for (name, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
                body[name] = json!(value);
            }
        }
        let route = path.split('?').next().unwrap();
        let (status, answer) = call(&stack, "POST", route, &body.to_string()).await;
        if path == "/notify" {
            // Everyone: accepted for segmented fan-out, answered with the plan.
            assert_eq!(status, 202, "{answer}");
            assert_eq!(answer["segments"], 4, "{answer}");
        } else if path == "/notify/account/3" {
            // A large account: one segment worker pages through its index.
            assert_eq!(status, 202, "{answer}");
            assert_eq!(answer["segments"], 1, "{answer}");
        } else {
            assert_eq!(status, 200, "{answer}");
            assert_eq!(
                answer["sessionsMatched"],
                expected.len(),
                "{path}: {answer}"
            );
        }
        assert_reached(&sqs, &receivers, &expected, &marker).await;

        let marker = format!("kinesis {path}");
        let mut event = event;
        event["marker"] = json!(marker);
        put_event(emulator, event.to_string().as_bytes()).await;
        assert_reached(&sqs, &receivers, &expected, &marker).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_record_is_counted_and_skipped_between_two_delivered_ones() {
    let stack = Stack::start().await;
    let emulator = &stack.emulator;
    let receiver = create(&stack, 1, 5, "only").await;
    let sqs = aws_sdk_sqs::Client::new(&admin_config(emulator).await);

    put_event(emulator, br#"{"userId": 5, "message": "first"}"#).await;
    put_event(emulator, br#"{"userId": true, "message": "poison"}"#).await;
    put_event(emulator, br#"{"userId": 5, "message": "second"}"#).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < 2 && Instant::now() < deadline {
        got.extend(drain(&sqs, &receiver, 2).await);
    }
    let texts: Vec<&str> = got.iter().map(|m| m["message"].as_str().unwrap()).collect();
    assert_eq!(texts, ["first", "second"]);
    let stats = stack.stream_stats();
    assert_eq!(stats.skipped.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(
        stats.dispatched.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_to_2000_sessions_goes_through_segment_workers_and_reaches_each_once() {
    const USERS: u64 = 1000;
    let stack = Stack::builder()
        .configure(|options| {
            options.stack.dispatch = DispatchSettings {
                direct_limit: 10,
                sender_batch: 250,
                history_batch: 300,
                report_urls_up_to: 10,
                broadcast_segments: 3,
                // Small pages: each segment worker reads many pages and resumes from each scan
                // position.
                scan_page: 97,
                ..DispatchSettings::default()
            };
        })
        .start()
        .await;
    let emulator = &stack.emulator;

    // Sessions are made through the adapters, not 2,000 create calls: what is under test here is
    // the fan-out, and Cognito would only add minutes.
    let seeded = std::time::Instant::now();
    let receivers = seed_sessions(&stack, USERS).await;
    eprintln!(
        "seeded {} sessions in {:?}",
        receivers.len(),
        seeded.elapsed()
    );

    let started = std::time::Instant::now();
    let (status, answer) = get(&stack, "/notify?message=Hello+Everyone").await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["success"], true, "{answer}");
    assert_eq!(answer["segments"], 3, "{answer}");
    assert!(
        answer.get("estimatedSessions").is_some(),
        "the plan carries the table's estimate (DescribeTable ItemCount): {answer}"
    );
    assert!(
        answer.get("queueUrls").is_none() && answer.get("sessionsMatched").is_none(),
        "a plan, not an outcome: {answer}"
    );
    let message_id = answer["messageId"].as_str().unwrap().to_string();

    let sqs = aws_sdk_sqs::Client::new(&admin_config(emulator).await);
    let counts: Vec<usize> = futures::stream::iter(receivers.iter())
        .map(|receiver| {
            let sqs = sqs.clone();
            let message_id = message_id.clone();
            async move {
                // The fan-out runs in the background: wait for this queue's turn.
                let deadline = Instant::now() + Duration::from_secs(120);
                let mut got = drain(&sqs, receiver, 10).await;
                while got.is_empty() && Instant::now() < deadline {
                    got = drain(&sqs, receiver, 10).await;
                }
                let ids: BTreeSet<String> = got
                    .iter()
                    .map(|m| m["messageId"].as_str().unwrap().to_string())
                    .collect();
                assert_eq!(ids, BTreeSet::from([message_id]), "{}", receiver.queue_url);
                assert_eq!(got.len(), 1, "{} got it more than once", receiver.queue_url);
                got.len()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    eprintln!(
        "broadcast to 2000 sessions received in {:?}",
        started.elapsed()
    );
    assert_eq!(counts.len(), 2000);
    // Nothing arrives twice later either (a duplicate from a re-read page would show here).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let late: usize = futures::stream::iter(receivers.iter())
        .map(|receiver| {
            let sqs = sqs.clone();
            async move { drain(&sqs, receiver, 0).await.len() }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum();
    assert_eq!(late, 0, "duplicates arrived after the first pass");

    let dynamodb = aws_sdk_dynamodb::Client::new(&admin_config(emulator).await);
    let mut rows: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while rows.values().sum::<usize>() < USERS as usize && Instant::now() < deadline {
        rows.clear();
        let items = dynamodb
            .scan()
            .table_name("sqs-push-local-history")
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        for item in items {
            let item = item.unwrap();
            let user = item["userId"].as_n().unwrap().clone();
            assert_eq!(item["messageId"].as_s().unwrap(), &message_id);
            *rows.entry(user).or_default() += 1;
        }
    }
    assert_eq!(rows.len(), USERS as usize, "one history row per user");
    assert!(rows.values().all(|count| *count == 1));
}

async fn seed_sessions(stack: &LocalStack, users: u64) -> Vec<Receiver> {
    seed_receivers(stack, users, 7).await
}
