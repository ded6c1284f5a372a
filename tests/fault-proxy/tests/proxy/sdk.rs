//! The proxy between the real AWS SDK clients and the moto emulator: what each fault looks like
//! to the SDK, measured.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::{Verdicts, proxy, retries, sdk_config, unique};
use aws_config::retry::RetryConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, WriteRequest,
};
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_smithy_types::retry::ErrorKind;
use sqs_push_fault_proxy::{Fault, FaultKind, FaultProxy, Rule, Withhold};
use sqs_push_tests::Emulator;

type BatchResult = Result<
    aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput,
    SdkError<aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError>,
>;

async fn sqs(endpoint: &str, retry: RetryConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config(endpoint, retry).await)
}

/// An SQS client whose retry verdicts are recorded.
async fn sqs_recorded(endpoint: &str, retry: RetryConfig) -> (aws_sdk_sqs::Client, Verdicts) {
    let verdicts = Verdicts::default();
    let config = aws_sdk_sqs::config::Builder::from(&sdk_config(endpoint, retry).await)
        .retry_classifier(verdicts.clone())
        .build();
    (aws_sdk_sqs::Client::from_conf(config), verdicts)
}

async fn ddb_recorded(endpoint: &str, retry: RetryConfig) -> (aws_sdk_dynamodb::Client, Verdicts) {
    let verdicts = Verdicts::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk_config(endpoint, retry).await)
        .retry_classifier(verdicts.clone())
        .build();
    (aws_sdk_dynamodb::Client::from_conf(config), verdicts)
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, tag: &str) -> String {
    sqs.create_queue()
        .queue_name(unique(tag))
        .send()
        .await
        .expect("CreateQueue")
        .queue_url
        .expect("a queue URL")
}

async fn send_batch(sqs: &aws_sdk_sqs::Client, url: &str, ids: &[&str]) -> BatchResult {
    let entries = ids
        .iter()
        .map(|id| {
            SendMessageBatchRequestEntry::builder()
                .id(*id)
                .message_body(format!("body-{id}"))
                .build()
                .expect("an entry")
        })
        .collect();
    sqs.send_message_batch()
        .queue_url(url)
        .set_entries(Some(entries))
        .send()
        .await
}

/// Every message body in the queue (read directly from the emulator).
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> BTreeSet<String> {
    let mut bodies = BTreeSet::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for message in messages {
            assert!(
                bodies.insert(message.body.unwrap_or_default()),
                "a message arrived twice"
            );
        }
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(std::string::ToString::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_is_a_500_the_sdk_classifies_as_transient_and_retries() {
    let emulator = Emulator::shared();
    let proxy = proxy(&emulator).await;
    let direct = sqs(&emulator.url, RetryConfig::disabled()).await;
    let url = create_queue(&direct, "server-error").await;
    proxy.set_rules(vec![Rule::new("SendMessageBatch", Fault::ServerError, 1.0)]);

    // Retries disabled: one request, a 500 service error.
    let client = sqs(&proxy.url(), RetryConfig::disabled()).await;
    let err = send_batch(&client, &url, &["a", "b"]).await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    let err = err.into_service_error();
    assert!(err.meta().code().is_some(), "{err:?}");
    assert_eq!(err.code(), Some("InternalError"));
    let stats = proxy.stats().operation("SendMessageBatch");
    assert_eq!((stats.seen, stats.forwarded), (1, 0));
    assert_eq!(stats.faults_of(FaultKind::ServerError), 1);

    // Standard retries: the SDK's classifiers call every attempt a transient error.
    proxy.reset_stats();
    let (client, verdicts) = sqs_recorded(&proxy.url(), retries(3)).await;
    let err = send_batch(&client, &url, &["a", "b"]).await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(500));
    assert_eq!(proxy.stats().operation("SendMessageBatch").seen, 3);
    assert_eq!(verdicts.only(), Some(ErrorKind::TransientError));

    // Rules cleared: the same client gets through, and nothing was delivered before.
    proxy.clear();
    let sent = send_batch(&client, &url, &["a", "b"])
        .await
        .expect("no faults");
    assert_eq!(sent.successful().len(), 2);
    assert_eq!(drain(&direct, &url).await, set(&["body-a", "body-b"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_errors_are_classified_as_throttling() {
    let emulator = Emulator::shared();
    let proxy = proxy(&emulator).await;
    let direct = sqs(&emulator.url, RetryConfig::disabled()).await;
    let url = create_queue(&direct, "throttle").await;

    // SQS (JSON protocol, query-compatible): RequestThrottled.
    proxy.set_rules(vec![Rule::new("SendMessageBatch", Fault::Throttling, 1.0)]);
    let (client, verdicts) = sqs_recorded(&proxy.url(), retries(2)).await;
    let err = send_batch(&client, &url, &["a"]).await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    let err = err.into_service_error();
    assert_eq!(err.code(), Some("RequestThrottled"));
    assert!(
        err.is_request_throttled(),
        "modeled as RequestThrottled: {err:?}"
    );
    assert_eq!(verdicts.only(), Some(ErrorKind::ThrottlingError));

    // DynamoDB: ProvisionedThroughputExceededException by default, or any code by Fault::error.
    // The fault is answered before anything is forwarded, so no table is needed.
    let write = |ddb: aws_sdk_dynamodb::Client| async move {
        let put = PutRequest::builder()
            .item("pk", AttributeValue::S("x".into()))
            .build()
            .unwrap();
        ddb.batch_write_item()
            .request_items(
                "no-such-table",
                vec![WriteRequest::builder().put_request(put).build()],
            )
            .send()
            .await
            .unwrap_err()
    };
    proxy.set_rules(vec![Rule::new("BatchWriteItem", Fault::Throttling, 1.0)]);
    let (ddb, verdicts) = ddb_recorded(&proxy.url(), retries(2)).await;
    let err = write(ddb).await.into_service_error();
    assert!(
        err.is_provisioned_throughput_exceeded_exception(),
        "{err:?}"
    );
    assert_eq!(verdicts.only(), Some(ErrorKind::ThrottlingError));

    proxy.set_rules(vec![Rule::new(
        "BatchWriteItem",
        Fault::error(400, "ThrottlingException"),
        1.0,
    )]);
    let (ddb, verdicts) = ddb_recorded(&proxy.url(), retries(1)).await;
    let err = write(ddb).await.into_service_error();
    assert_eq!(err.code(), Some("ThrottlingException"));
    assert_eq!(verdicts.only(), Some(ErrorKind::ThrottlingError));

    // Cognito: TooManyRequestsException, HTTP 429.
    proxy.set_rules(vec![Rule::new("DeleteIdentities", Fault::Throttling, 1.0)]);
    let verdicts = Verdicts::default();
    let config =
        aws_sdk_cognitoidentity::config::Builder::from(&sdk_config(&proxy.url(), retries(1)).await)
            .retry_classifier(verdicts.clone())
            .build();
    let cognito = aws_sdk_cognitoidentity::Client::from_conf(config);
    let err = cognito
        .delete_identities()
        .identity_ids_to_delete("us-east-1:00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(429));
    let err = err.into_service_error();
    assert!(err.is_too_many_requests_exception(), "{err:?}");
    assert_eq!(verdicts.only(), Some(ErrorKind::ThrottlingError));

    let stats = proxy.stats();
    assert_eq!(stats.total().forwarded, 0);
    assert_eq!(
        stats
            .operation("BatchWriteItem")
            .faults_of(FaultKind::Throttling),
        2
    );
    assert_eq!(
        stats
            .operation("BatchWriteItem")
            .faults_of(FaultKind::Error),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_entries_name_exactly_the_withheld_ids_and_the_rest_arrive() {
    let emulator = Emulator::shared();
    let proxy = proxy(&emulator).await;
    let direct = sqs(&emulator.url, RetryConfig::disabled()).await;
    let url = create_queue(&direct, "failed-entries").await;
    let client = sqs(&proxy.url(), RetryConfig::disabled()).await;
    let ids = ["e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8", "e9"];

    proxy.set_rules(vec![Rule::new(
        "SendMessageBatch",
        Fault::FailedEntries(Withhold::AllButFirst(6)),
        1.0,
    )]);
    let sent = send_batch(&client, &url, &ids)
        .await
        .expect("a partial success");
    let ok: BTreeSet<&str> = sent
        .successful()
        .iter()
        .map(aws_sdk_sqs::types::SendMessageBatchResultEntry::id)
        .collect();
    assert_eq!(ok, ids[..6].iter().copied().collect());
    for entry in sent.successful() {
        assert!(!entry.message_id().is_empty(), "the emulator's MessageId");
        assert_eq!(entry.md5_of_message_body().len(), 32, "the emulator's MD5");
    }
    let failed: BTreeSet<&str> = sent
        .failed()
        .iter()
        .map(aws_sdk_sqs::types::BatchResultErrorEntry::id)
        .collect();
    assert_eq!(failed, ids[6..].iter().copied().collect());
    for entry in sent.failed() {
        assert!(!entry.sender_fault());
        assert_eq!(entry.code(), "InternalError");
    }
    let arrived = drain(&direct, &url).await;
    assert_eq!(
        arrived,
        ids[..6].iter().map(|id| format!("body-{id}")).collect()
    );

    // Everything withheld: nothing reaches the emulator, all entries fail.
    proxy.set_rules(vec![Rule::new(
        "SendMessageBatch",
        Fault::FailedEntries(Withhold::AllButFirst(0)),
        1.0,
    )]);
    let sent = send_batch(&client, &url, &ids[..3])
        .await
        .expect("an answer");
    assert!(sent.successful().is_empty());
    assert_eq!(sent.failed().len(), 3);
    assert!(drain(&direct, &url).await.is_empty());
    let stats = proxy.stats().operation("SendMessageBatch");
    assert_eq!(
        (stats.seen, stats.forwarded, stats.withheld_entries),
        (2, 1, 7)
    );
    assert_eq!(stats.faults_of(FaultKind::FailedEntries), 2);

    // Random withholding, retried by the caller until done: each message arrives once.
    proxy.set_rules(vec![Rule::new(
        "SendMessageBatch",
        Fault::FailedEntries(Withhold::Each(0.5)),
        1.0,
    )]);
    let mut pending: Vec<&str> = ids.to_vec();
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        assert!(rounds < 50, "never finished");
        let sent = send_batch(&client, &url, &pending)
            .await
            .expect("an answer");
        pending.retain(|id| sent.failed().iter().any(|f| f.id() == *id));
    }
    assert_eq!(
        drain(&direct, &url).await,
        ids.iter().map(|id| format!("body-{id}")).collect()
    );
    let stats = proxy.stats().operation("SendMessageBatch");
    println!("Each(0.5) on 10 entries took {rounds} rounds; stats {stats:?}");
}

async fn create_table(ddb: &aws_sdk_dynamodb::Client, tag: &str) -> String {
    let name = unique(tag);
    ddb.create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateTable");
    name
}

fn puts(keys: &[String]) -> Vec<WriteRequest> {
    keys.iter()
        .map(|key| {
            let put = PutRequest::builder()
                .item("pk", AttributeValue::S(key.clone()))
                .build()
                .unwrap();
            WriteRequest::builder().put_request(put).build()
        })
        .collect()
}

async fn keys_in(ddb: &aws_sdk_dynamodb::Client, table: &str) -> BTreeSet<String> {
    let scan = ddb.scan().table_name(table).send().await.expect("Scan");
    scan.items()
        .iter()
        .filter_map(|item| item.get("pk")?.as_s().ok().cloned())
        .collect()
}

fn unprocessed_keys(requests: &[WriteRequest]) -> BTreeSet<String> {
    requests
        .iter()
        .filter_map(|r| r.put_request()?.item().get("pk")?.as_s().ok().cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprocessed_items_write_exactly_the_forwarded_items() {
    let emulator = Emulator::shared();
    let proxy = proxy(&emulator).await;
    let direct = aws_sdk_dynamodb::Client::new(&sdk_config(&emulator.url, retries(1)).await);
    let client = aws_sdk_dynamodb::Client::new(&sdk_config(&proxy.url(), retries(1)).await);

    // One table, 25 items: the first 10 are written, 15 come back unprocessed.
    let table = create_table(&direct, "items").await;
    let keys: Vec<String> = (0..25).map(|n| format!("k{n:02}")).collect();
    proxy.set_rules(vec![Rule::new(
        "BatchWriteItem",
        Fault::UnprocessedItems(Withhold::AllButFirst(10)),
        1.0,
    )]);
    let out = client
        .batch_write_item()
        .request_items(&table, puts(&keys))
        .send()
        .await
        .expect("a partial success");
    let unprocessed = out.unprocessed_items().cloned().unwrap_or_default();
    assert_eq!(
        unprocessed_keys(&unprocessed[&table]),
        keys[10..].iter().cloned().collect()
    );
    assert_eq!(
        keys_in(&direct, &table).await,
        keys[..10].iter().cloned().collect()
    );

    // Two tables: entries count across tables in name order (…-a before …-b).
    let stem = unique("two");
    let (a, b) = (format!("{stem}-a"), format!("{stem}-b"));
    for name in [&a, &b] {
        direct
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("pk")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("pk")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("CreateTable");
    }
    // (moto refuses the same key in two tables of one request, so the keys differ.)
    let in_a: Vec<String> = (0..5).map(|n| format!("a{n}")).collect();
    let in_b: Vec<String> = (0..5).map(|n| format!("b{n}")).collect();
    proxy.set_rules(vec![Rule::new(
        "BatchWriteItem",
        Fault::UnprocessedItems(Withhold::AllButFirst(7)),
        1.0,
    )]);
    let out = client
        .batch_write_item()
        .request_items(&b, puts(&in_b))
        .request_items(&a, puts(&in_a))
        .send()
        .await
        .expect("a partial success");
    let unprocessed = out.unprocessed_items().cloned().unwrap_or_default();
    assert!(!unprocessed.contains_key(&a));
    assert_eq!(
        unprocessed_keys(&unprocessed[&b]),
        in_b[2..].iter().cloned().collect()
    );
    assert_eq!(keys_in(&direct, &a).await, in_a.iter().cloned().collect());
    assert_eq!(
        keys_in(&direct, &b).await,
        in_b[..2].iter().cloned().collect()
    );
    let stats = proxy.stats().operation("BatchWriteItem");
    assert_eq!(
        (stats.seen, stats.forwarded, stats.withheld_entries),
        (2, 2, 18)
    );

    // Random withholding, retried by the caller until done: every item written.
    let table = create_table(&direct, "retry").await;
    proxy.set_rules(vec![Rule::new(
        "BatchWriteItem",
        Fault::UnprocessedItems(Withhold::Each(0.3)),
        1.0,
    )]);
    let mut pending = puts(&keys);
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        assert!(rounds < 50, "never finished");
        let out = client
            .batch_write_item()
            .request_items(&table, pending)
            .send()
            .await
            .expect("an answer");
        pending = out
            .unprocessed_items()
            .and_then(|u| u.get(&table).cloned())
            .unwrap_or_default();
    }
    assert_eq!(
        keys_in(&direct, &table).await,
        keys.iter().cloned().collect()
    );
    let stats = proxy.stats().operation("BatchWriteItem");
    println!("Each(0.3) on 25 items took {rounds} rounds; stats {stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprocessed_identity_ids_leave_exactly_the_withheld_identities() {
    let emulator = Emulator::shared();
    let proxy = proxy(&emulator).await;
    let direct = aws_sdk_cognitoidentity::Client::new(&sdk_config(&emulator.url, retries(1)).await);
    let client = aws_sdk_cognitoidentity::Client::new(&sdk_config(&proxy.url(), retries(1)).await);
    let pool = direct
        .create_identity_pool()
        .identity_pool_name(unique("pool").replace('-', "_"))
        .allow_unauthenticated_identities(true)
        .send()
        .await
        .expect("CreateIdentityPool")
        .identity_pool_id;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let id = direct
            .get_id()
            .identity_pool_id(&pool)
            .account_id("123456789012")
            .send()
            .await
            .expect("GetId")
            .identity_id
            .expect("an identity id");
        ids.push(id);
    }
    proxy.set_rules(vec![Rule::new(
        "DeleteIdentities",
        Fault::UnprocessedIdentityIds(Withhold::AllButFirst(2)),
        1.0,
    )]);
    let out = client
        .delete_identities()
        .set_identity_ids_to_delete(Some(ids.clone()))
        .send()
        .await
        .expect("a partial success");
    let unprocessed: BTreeSet<String> = out
        .unprocessed_identity_ids()
        .iter()
        .map(|u| {
            assert_eq!(
                u.error_code()
                    .map(aws_sdk_cognitoidentity::types::ErrorCode::as_str),
                Some("InternalServerError")
            );
            u.identity_id().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(unprocessed, ids[2..].iter().cloned().collect());
    let left: BTreeSet<String> = direct
        .list_identities()
        .identity_pool_id(&pool)
        .max_results(60)
        .send()
        .await
        .expect("ListIdentities")
        .identities()
        .iter()
        .filter_map(|i| i.identity_id().map(str::to_string))
        .collect();
    assert_eq!(left, unprocessed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reset_is_a_dispatch_io_error_and_the_client_recovers() {
    let emulator = Emulator::shared();
    let proxy = proxy(&emulator).await;
    let direct = sqs(&emulator.url, RetryConfig::disabled()).await;
    let url = create_queue(&direct, "reset").await;
    // Warm the connection pool first, so the reset hits a kept-alive connection.
    let (client, verdicts) = sqs_recorded(&proxy.url(), retries(1)).await;
    send_batch(&client, &url, &["warm"])
        .await
        .expect("no faults yet");
    verdicts.clear();

    proxy.set_rules(vec![Rule::new(
        "SendMessageBatch",
        Fault::ConnectionReset,
        1.0,
    )]);
    let err = send_batch(&client, &url, &["a"]).await.unwrap_err();
    println!(
        "ConnectionReset as the SDK sees it: {}",
        aws_smithy_types::error::display::DisplayErrorContext(&err)
    );
    match &err {
        SdkError::DispatchFailure(failure) => assert!(failure.is_io(), "{err:?}"),
        other => panic!("expected a dispatch failure, got {other:?}"),
    }
    assert_eq!(
        verdicts.only(),
        Some(ErrorKind::TransientError),
        "{:?}",
        verdicts.all()
    );

    // With retries the SDK tries again on a new connection each time.
    let (retrying, _) = sqs_recorded(&proxy.url(), retries(3)).await;
    proxy.reset_stats();
    send_batch(&retrying, &url, &["b"]).await.unwrap_err();
    let stats = proxy.stats().operation("SendMessageBatch");
    assert_eq!((stats.seen, stats.forwarded), (3, 0));
    assert_eq!(stats.faults_of(FaultKind::ConnectionReset), 3);

    proxy.clear();
    send_batch(&client, &url, &["c"])
        .await
        .expect("the client recovers");
    assert_eq!(drain(&direct, &url).await, set(&["body-warm", "body-c"]));
}

/// Which of 100 sequential calls failed.
async fn hundred_calls(proxy: &FaultProxy, url: &str) -> Vec<usize> {
    let client = sqs(&proxy.url(), RetryConfig::disabled()).await;
    let mut failed = Vec::new();
    for n in 0..100 {
        if send_batch(&client, url, &["x"]).await.is_err() {
            failed.push(n);
        }
    }
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_rate_fails_the_same_calls_every_run() {
    let emulator = Emulator::shared();
    let direct = sqs(&emulator.url, RetryConfig::disabled()).await;
    let url = create_queue(&direct, "rate").await;
    let rule = Rule::new("SendMessageBatch", Fault::ServerError, 0.10);

    let proxy = FaultProxy::builder(&emulator.url)
        .seed(42)
        .start()
        .await
        .unwrap();
    proxy.set_rules(vec![rule.clone()]);
    let first = hundred_calls(&proxy, &url).await;
    // Setting the rules again restarts their RNG: the same calls fail.
    proxy.set_rules(vec![rule.clone()]);
    let second = hundred_calls(&proxy, &url).await;
    // So does another proxy with the same seed, while requests to other operations (which
    // the rule does not match) do not shift the sequence.
    let other = FaultProxy::builder(&emulator.url)
        .seed(42)
        .start()
        .await
        .unwrap();
    other.set_rules(vec![rule.clone()]);
    let client = sqs(&other.url(), RetryConfig::disabled()).await;
    client.list_queues().send().await.expect("ListQueues");
    let third = hundred_calls(&other, &url).await;
    println!("seed 42, rate 0.1: calls {first:?} failed");
    assert_eq!(first, second);
    assert_eq!(first, third);
    // SplitMix64 never changes, so neither does this list.
    assert_eq!(first, [3, 5, 23, 71, 85]);
    let stats = proxy.stats().operation("SendMessageBatch");
    assert_eq!(stats.seen, 200);
    assert_eq!(stats.faults_of(FaultKind::ServerError), 10);
    assert_eq!(stats.forwarded, 190);

    // Another seed: another set of calls.
    proxy.set_seed(7);
    let fourth = hundred_calls(&proxy, &url).await;
    assert_ne!(first, fourth);

    // Every Nth: exactly calls 9, 19, ... 99.
    proxy.set_rules(vec![Rule::every(
        "SendMessageBatch",
        Fault::ServerError,
        10,
    )]);
    let every = hundred_calls(&proxy, &url).await;
    assert_eq!(every, (0..10).map(|k| k * 10 + 9).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_concurrent_calls_delays_and_reset() {
    let emulator = Emulator::shared();
    let proxy = proxy(&emulator).await;
    let direct = sqs(&emulator.url, RetryConfig::disabled()).await;
    let url = create_queue(&direct, "stats").await;
    let client = sqs(&proxy.url(), RetryConfig::disabled()).await;

    proxy.set_rules(vec![Rule::every(
        "SendMessage",
        Fault::Delay(Duration::from_millis(300)),
        2,
    )]);
    let started = Instant::now();
    let calls = (0..20).map(|n| {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            client
                .send_message()
                .queue_url(url)
                .message_body(format!("m{n}"))
                .send()
                .await
                .expect("SendMessage through the proxy")
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap();
    }
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Delayed answers: the message is already in the queue while the caller still waits.
    proxy.set_rules(vec![Rule::new(
        "SendMessage",
        Fault::DelayAnswer(Duration::from_secs(2)),
        1.0,
    )]);
    let impatient = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(
            &sdk_config(&proxy.url(), RetryConfig::disabled()).await,
        )
        .timeout_config(
            aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_millis(500))
                .build(),
        )
        .build(),
    );
    let err = impatient
        .send_message()
        .queue_url(&url)
        .message_body("late")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, SdkError::TimeoutError(_)), "{err:?}");
    proxy.clear();
    client
        .get_queue_url()
        .queue_name(url.rsplit('/').next().unwrap())
        .send()
        .await
        .expect("GetQueueUrl");

    let stats = proxy.stats();
    let send = stats.operation("SendMessage");
    assert_eq!((send.seen, send.forwarded), (21, 21));
    assert_eq!(send.faults_of(FaultKind::Delay), 10);
    assert_eq!(send.faults_of(FaultKind::DelayAnswer), 1);
    assert_eq!(send.total_faults(), 11);
    let get = stats.operation("GetQueueUrl");
    assert_eq!((get.seen, get.forwarded, get.total_faults()), (1, 1, 0));
    let keys: Vec<String> = stats
        .operations
        .keys()
        .map(std::string::ToString::to_string)
        .collect();
    assert_eq!(keys, ["sqs:GetQueueUrl", "sqs:SendMessage"]);
    assert_eq!(
        drain(&direct, &url).await.len(),
        21,
        "the late one arrived too"
    );

    proxy.reset_stats();
    assert!(proxy.stats().operations.is_empty());
    assert_eq!(proxy.stats().operation("SendMessage").seen, 0);
}
