//! Channels end to end: sessions of two accounts subscribed to one channel each receive a
//! publish once (through the API and through Kinesis) and a bystander nothing; unsubscribe,
//! subscribe at create, batch subscribe all or nothing; destroy and the TTL end a membership at
//! once and cleanup removes its rows; renew keeps and extends them; a 5,000-subscriber channel
//! goes through segment workers and reaches each session once; a Kinesis batch of 100 records to
//! one channel reads its memberships once.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use futures::StreamExt;
use serde_json::{Value, json};
use sqs_push_core::dispatch::DispatchSettings;
use sqs_push_core::model::channel::ChannelName;
use sqs_push_local::LocalStack;
use sqs_push_tests::*;

use crate::identities::served;

/// Every membership row of the channels table, as `(channel, member, ttl)`.
async fn memberships(stack: &LocalStack, emulator: &Emulator) -> BTreeSet<(String, String, u64)> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&admin_config(emulator).await);
    dynamodb
        .scan()
        .table_name(stack.config.channels_table())
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|item| {
            let item = item.expect("scan");
            (
                item["channel"].as_s().unwrap().clone(),
                item["member"].as_s().unwrap().clone(),
                item["ttl"].as_n().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// The messages of `receiver` that carry `marker`, waiting up to `wait` seconds for the first.
async fn marked(
    sqs: &aws_sdk_sqs::Client,
    receiver: &Receiver,
    wait: i32,
    marker: &str,
) -> Vec<Value> {
    drain(sqs, receiver, wait)
        .await
        .into_iter()
        .filter(|message| message["marker"] == marker)
        .collect()
}

async fn put_record(emulator: &Emulator, data: &str) {
    aws_sdk_kinesis::Client::new(&admin_config(emulator).await)
        .put_record()
        .stream_name("sqs-push-local-events")
        .partition_key("test")
        .data(Blob::new(data.as_bytes()))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_reaches_exactly_its_subscribers_in_every_account_through_the_api_and_kinesis() {
    let stack = Stack::builder()
        .configure(|options| options.stack.channels.max_per_session = 4)
        .start()
        .await;
    let emulator = &stack.emulator;
    let sqs = aws_sdk_sqs::Client::new(&admin_config(emulator).await);

    // Subscribed at create (one call), in another account by a batch, and a bystander.
    let (status, created) = get(&stack, "/create/1/10/tab?channels=room:7,news").await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["session"]["channels"], json!(["news", "room:7"]));
    let first = Receiver {
        account: 1,
        user: 10,
        session: "tab".into(),
        queue_url: text(&created["session"], "sqsUrl").to_string(),
        key: sqs_push_core::crypto::SessionKey::from_base64(text(&created["session"], "aesKey"))
            .unwrap(),
    };
    let second = create(&stack, 2, 20, "phone").await;
    let (status, answer) = call(
        &stack,
        "POST",
        "/subscribe/2/20/phone",
        r#"{"channels": ["room:7"]}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let bystander = create(&stack, 1, 11, "tab").await;
    let leaver = create(&stack, 1, 12, "tab").await;
    for path in ["/subscribe/1/12/tab/room:7", "/subscribe/1/12/tab/room:7"] {
        let (status, answer) = get(&stack, path).await;
        assert_eq!(status, 200, "again is a no-op: {answer}");
        assert_eq!(answer["channel"], "room:7");
    }
    let (_, answer) = get(&stack, "/unsubscribe/1/12/tab/room:7").await;
    assert_eq!(answer["subscribed"], true, "{answer}");
    let (status, answer) = get(&stack, "/unsubscribe/1/12/tab/room:7").await;
    assert_eq!((status, &answer["subscribed"]), (200, &json!(false)));

    // Who is on the channel: a count, and pages of ids without secrets.
    let (_, count) = get(&stack, "/channels/room:7").await;
    assert_eq!(count["sessions"], 2, "{count}");
    let mut members = BTreeSet::new();
    let mut path = "/channels/room:7/sessions?limit=1".to_string();
    loop {
        let (status, page) = get(&stack, &path).await;
        assert_eq!(status, 200, "{page}");
        for member in page["sessions"].as_array().unwrap() {
            assert_eq!(
                member.as_object().unwrap().len(),
                3,
                "ids only, no key or queue: {member}"
            );
            members.insert((
                member["accountId"].as_u64().unwrap(),
                member["userId"].as_u64().unwrap(),
            ));
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/channels/room:7/sessions?limit=1&next={next}"),
            None => break,
        }
    }
    assert_eq!(members, BTreeSet::from([(1, 10), (2, 20)]));
    let (_, status_answer) = get(&stack, "/status/2/20/phone").await;
    assert_eq!(status_answer["session"]["channels"], json!(["room:7"]));

    // A publish through the API: each subscriber once, with the channel; no one else; no history.
    let (status, answer) = get(&stack, "/notify/channel/room:7?message=hi&marker=api").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["sessionsMatched"], 2, "{answer}");
    for receiver in [&first, &second] {
        let got = marked(&sqs, receiver, 5, "api").await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["channel"], "room:7");
        assert_eq!(got[0]["message"], "hi");
        assert_eq!(got[0]["messageId"], answer["messageId"]);
    }
    for receiver in [&bystander, &leaver] {
        assert!(marked(&sqs, receiver, 1, "api").await.is_empty());
    }
    let (_, history) = get(&stack, "/messages/user/10").await;
    assert_eq!(history["messages"], json!([]), "{history}");

    // Asked for, history gets one row per subscribed user.
    let (status, _) = call(
        &stack,
        "POST",
        "/notify/channel/room:7",
        r#"{"message": "kept", "_history": true, "marker": "history"}"#,
    )
    .await;
    assert_eq!(status, 200);
    for user in [10, 20] {
        let (_, history) = get(&stack, &format!("/messages/user/{user}")).await;
        assert_eq!(
            history["messages"].as_array().unwrap().len(),
            1,
            "{history}"
        );
    }
    for receiver in [&first, &second] {
        assert_eq!(marked(&sqs, receiver, 5, "history").await.len(), 1);
    }

    // Through Kinesis, the same; a record naming a channel and a user is poison.
    put_record(
        emulator,
        r#"{"channel": "room:7", "userId": 11, "marker": "poison"}"#,
    )
    .await;
    put_record(emulator, r#"{"channel": "room:7", "marker": "kinesis"}"#).await;
    for receiver in [&first, &second] {
        let got = marked(&sqs, receiver, 10, "kinesis").await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["channel"], "room:7");
    }
    for receiver in [&first, &second, &bystander, &leaver] {
        assert!(marked(&sqs, receiver, 1, "poison").await.is_empty());
    }
    assert_eq!(
        stack
            .stream_stats()
            .skipped
            .load(std::sync::atomic::Ordering::Relaxed),
        1,
        "the ambiguous record was counted as poison"
    );

    // A batch is all or nothing: one bad name, or one channel past the limit, adds none.
    let before = memberships(&stack, emulator).await;
    let (status, answer) = call(
        &stack,
        "POST",
        "/subscribe/1/10/tab",
        r#"{"channels": ["fine", "not fine"]}"#,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(text(&answer, "error").contains("channel"), "{answer}");
    let (status, answer) = call(
        &stack,
        "POST",
        "/subscribe/1/10/tab",
        r#"{"channels": ["a", "b", "c"]}"#,
    )
    .await;
    assert_eq!(status, 400, "2 held + 3 > 4: {answer}");
    assert!(
        text(&answer, "error").contains("SQS_PUSH_MAX_CHANNELS_PER_SESSION"),
        "{answer}"
    );
    assert_eq!(memberships(&stack, emulator).await, before);
    let (_, status_answer) = get(&stack, "/status/1/10/tab").await;
    assert_eq!(
        status_answer["session"]["channels"],
        json!(["news", "room:7"])
    );

    // A session that does not exist cannot subscribe.
    let (status, answer) = get(&stack, "/subscribe/1/10/nobody/room:7").await;
    assert_eq!(status, 404, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_and_expiry_end_memberships_at_once_renew_keeps_them_and_cleanup_removes_the_rows()
{
    let stack = Stack::builder()
        .configure(|options| {
            options.sweep_interval = Duration::from_millis(250);
            options.stream_poll_interval = Duration::from_millis(100);
        })
        .start()
        .await;
    let emulator = &stack.emulator;
    let stack_ref = &stack;

    let (status, _) = get(&stack, "/create/1/1/gone?channels=room").await;
    assert_eq!(status, 200);
    let (status, _) = get(&stack, "/create/1/2/stays?channels=room").await;
    assert_eq!(status, 200);
    let (_, count) = get(&stack, "/channels/room").await;
    assert_eq!(count["sessions"], 2);

    // Destroy: out of the count and the table at once.
    let (status, _) = get(&stack, "/destroy/1/1/gone").await;
    assert_eq!(status, 200);
    let (_, count) = get(&stack, "/channels/room").await;
    assert_eq!(count["sessions"], 1, "{count}");
    let rows = memberships(&stack, emulator).await;
    assert_eq!(rows.len(), 1, "{rows:?}");

    // Renew keeps the subscription and carries the new ttl to the membership.
    let (status, renewed) = get(&stack, "/renew/1/2/stays").await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["session"]["channels"], json!(["room"]));
    let ttl = renewed["session"]["ttl"].as_u64().unwrap();
    let rows = memberships(&stack, emulator).await;
    assert_eq!(rows.iter().map(|row| row.2).collect::<Vec<_>>(), vec![ttl]);

    // A short-lived session: past its ttl it leaves the count at once, before any sweep; its
    // row goes when the TTL removes the session and cleanup reads the stream.
    let stack = Stack::builder()
        .configure(|options| {
            options.stack.credential_seconds = 2;
            options.stack.idle_seconds = 1;
            options.sweep_interval = Duration::from_secs(3600);
            options.stream_poll_interval = Duration::from_millis(100);
        })
        .start()
        .await;
    let (status, _) = get(&stack, "/create/1/3/short?channels=room").await;
    assert_eq!(status, 200);
    let (_, count) = get(&stack, "/channels/room").await;
    assert_eq!(count["sessions"], 1);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_, count) = get(&stack, "/channels/room").await;
    assert_eq!(count["sessions"], 0, "past its ttl: {count}");
    let (_, answer) = get(&stack, "/notify/channel/room?message=late").await;
    assert_eq!(answer["sentDirectly"], 0, "{answer}");
    assert_eq!(memberships(&stack, &stack.emulator).await.len(), 1);
    assert_eq!(stack.sweep_expired().await.unwrap(), 1);
    let short = &stack;
    eventually(
        Duration::from_secs(20),
        "cleanup removing the ended session's membership row",
        move || async move { memberships(short, &short.emulator).await.is_empty() },
    )
    .await;
    // The first stack's live member was never touched.
    assert_eq!(memberships(stack_ref, emulator).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5000_subscriber_channel_goes_through_segment_workers_and_reaches_each_once() {
    const USERS: u64 = 2500;
    let stack = Stack::builder()
        .configure(|options| {
            options.stack.dispatch = DispatchSettings {
                direct_limit: 10,
                sender_batch: 500,
                history_batch: 500,
                report_urls_up_to: 10,
                large_account: 1_000,
                // Small pages: the worker reads many and resumes from each position.
                scan_page: 400,
                ..DispatchSettings::default()
            };
        })
        .start()
        .await;
    let emulator = &stack.emulator;
    let channel = ChannelName::parse("prices:AAPL").unwrap();
    let seeded = Instant::now();
    let subscribers =
        sqs_push_local::seed::seed_subscribers(&stack.config, USERS, 2, 7, Some(&channel)).await;
    // Users the seeded ones are not (seeding reuses user ids from 0).
    let bystanders = [
        create(&stack, 1, 900_001, "tab").await,
        create(&stack, 2, 900_002, "tab").await,
    ];
    eprintln!(
        "seeded {} subscribers in {:?}",
        subscribers.len(),
        seeded.elapsed()
    );
    let (_, count) = get(&stack, "/channels/prices:AAPL").await;
    assert_eq!(count["sessions"], 5000, "{count}");

    let started = Instant::now();
    let (status, answer) = get(&stack, "/notify/channel/prices:AAPL?price=187.5").await;
    assert_eq!(
        status, 202,
        "a large channel is planned for segment workers: {answer}"
    );
    let message_id = text(&answer, "messageId").to_string();
    let sqs = aws_sdk_sqs::Client::new(&admin_config(emulator).await);
    let receivers: Vec<Receiver> = subscribers
        .into_iter()
        .map(|seeded| Receiver {
            account: seeded.account_id,
            user: seeded.user_id,
            session: seeded.session_id,
            queue_url: seeded.queue_url,
            key: seeded.aes_key,
        })
        .collect();
    let counts: Vec<usize> = futures::stream::iter(receivers.iter())
        .map(|receiver| {
            let sqs = sqs.clone();
            let message_id = message_id.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(180);
                let mut got = drain(&sqs, receiver, 10).await;
                while got.is_empty() && Instant::now() < deadline {
                    got = drain(&sqs, receiver, 10).await;
                }
                assert_eq!(got.len(), 1, "{} got {got:?}", receiver.queue_url);
                assert_eq!(got[0]["messageId"], message_id.as_str());
                assert_eq!(got[0]["channel"], "prices:AAPL");
                got.len()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    eprintln!(
        "a publish to 5000 subscribers received in {:?}",
        started.elapsed()
    );
    assert_eq!(counts.iter().sum::<usize>(), 5000);
    for bystander in &bystanders {
        assert!(drain(&sqs, bystander, 0).await.is_empty());
    }
    // Nothing twice later either.
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kinesis_batch_of_100_records_to_one_channel_reads_its_memberships_once() {
    const QUERY: &str = "DynamoDB_20120810.Query";
    // Every Query the emulator serves is counted: presence's sweep (a Query per timer-wheel
    // slot) is put off for the test's span.
    let stack = Stack::builder()
        .configure(|options| options.presence_sweep_interval = Duration::from_secs(3600))
        .start()
        .await;
    let emulator = &stack.emulator;
    let sqs = aws_sdk_sqs::Client::new(&admin_config(emulator).await);
    let mut members = Vec::new();
    for (account, user) in [(1, 31), (2, 32)] {
        let (status, created) = get(
            &stack,
            &format!("/create/{account}/{user}/tab?channels=feed"),
        )
        .await;
        assert_eq!(status, 200, "{created}");
        members.push(Receiver {
            account,
            user,
            session: "tab".into(),
            queue_url: text(&created["session"], "sqsUrl").to_string(),
            key: sqs_push_core::crypto::SessionKey::from_base64(text(
                &created["session"],
                "aesKey",
            ))
            .unwrap(),
        });
    }
    let queries = served(emulator, QUERY).await;
    // One PutRecords call: the poller reads the 100 records as one batch (its limit is 100).
    let entries: Vec<_> = (0..100)
        .map(|n| {
            aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                .partition_key("feed")
                .data(Blob::new(format!(r#"{{"channel": "feed", "n": {n}}}"#)))
                .build()
                .unwrap()
        })
        .collect();
    let put = aws_sdk_kinesis::Client::new(&admin_config(emulator).await)
        .put_records()
        .stream_name("sqs-push-local-events")
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(put.failed_record_count(), Some(0));
    for member in &members {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while got.len() < 100 && Instant::now() < deadline {
            got.extend(drain(&sqs, member, 5).await);
        }
        let numbers: BTreeSet<u64> = got.iter().map(|m| m["n"].as_u64().unwrap()).collect();
        assert_eq!(numbers.len(), 100, "user {}: {got:?}", member.user);
        assert_eq!(got.len(), 100, "each record once");
    }
    let read = served(emulator, QUERY).await - queries;
    assert_eq!(
        read, 1,
        "the batch's 100 records share one read of the channel's memberships"
    );
}
