//! `sqs-push redrive` against the emulator: a dead-letter queue holding a failed `sender` invoke
//! for three real sessions (and a stream-trigger batch record) — a dry run changes nothing and
//! counts one sender record; `--apply` delivers the message to the three queues, deletes the
//! sender record and leaves the batch record.

use std::time::Duration;

use serde_json::{Value, json};
use sqs_push_cli::redrive::{
    DeadLetters, LocalRunner, RedriveOptions, RedriveReport, SqsDeadLetters, dlq_name, redrive,
};
use sqs_push_functions::wiring::Adapters;
use sqs_push_tests::*;

/// The DLQ's URL; created here when the bootstrap does not create it.
async fn dead_letter_queue(sqs: &aws_sdk_sqs::Client, stage: &str) -> String {
    let name = dlq_name(stage);
    if let Ok(found) = sqs.get_queue_url().queue_name(&name).send().await {
        return found.queue_url().unwrap().to_string();
    }
    sqs.create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("the DLQ is created")
        .queue_url()
        .unwrap()
        .to_string()
}

/// Messages in a queue, visible or not, as the emulator counts them.
async fn depth(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> usize {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(
            aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
        )
        .send()
        .await
        .unwrap();
    attributes
        .attributes()
        .unwrap()
        .values()
        .map(|v| v.parse::<usize>().unwrap())
        .sum()
}

/// A Lambda on-failure destination record for `function`.
fn destination_record(stage: &str, function: &str, payload: Value) -> String {
    json!({
        "version": "1.0",
        "timestamp": "2026-11-23T10:00:00.000Z",
        "requestContext": {
            "requestId": "c0ffee00-0000-4000-8000-000000000001",
            "functionArn": format!("arn:aws:lambda:us-east-1:123456789012:function:sqs-push-{stage}-{function}:$LATEST"),
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": "Task timed out after 30.00 seconds"}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_dry_run_leaves_records_and_apply_delivers_the_sender_payload() {
    let stack = Stack::start().await;
    let emulator = &stack.emulator;
    let stage = stack.config.stage.clone();
    let sqs = aws_sdk_sqs::Client::new(&admin_config(emulator).await);
    let dlq_url = dead_letter_queue(&sqs, &stage).await;
    // Whatever the stack itself may have dead-lettered is not this test's.
    sqs.purge_queue().queue_url(&dlq_url).send().await.unwrap();

    let mut receivers = Vec::new();
    for user in 1..=3 {
        let session = unique_session_id("redrive");
        receivers.push(create(&stack, 77, user, &session).await);
    }
    let job = json!({
        "messages": [json!({"marker": "redriven", "message": "hello again"}).to_string()],
        "deliveries": receivers.iter().map(|r| json!({
            "queueUrl": r.queue_url,
            "aesKey": r.key.to_base64(),
            "message": 0
        })).collect::<Vec<_>>()
    });
    sqs.send_message()
        .queue_url(&dlq_url)
        .message_body(destination_record(&stage, "sender", job))
        .send()
        .await
        .unwrap();
    let batch_record = json!({
        "requestContext": {
            "functionArn": format!("arn:aws:lambda:us-east-1:123456789012:function:sqs-push-{stage}-dispatcher"),
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 4
        },
        "KinesisBatchInfo": {"shardId": "shardId-000000000000", "batchSize": 1}
    });
    sqs.send_message()
        .queue_url(&dlq_url)
        .message_body(batch_record.to_string())
        .send()
        .await
        .unwrap();

    let adapters = Adapters::aws(&stack.config).await;
    let runner = LocalRunner::new(&stack.config, &adapters);
    let dlq = SqsDeadLetters::find(sqs.clone(), &dlq_name(&stage))
        .await
        .unwrap();
    let options = RedriveOptions {
        hide: Duration::from_secs(5),
        ..RedriveOptions::default()
    };

    // Dry run: counted, nothing changed, records visible again at once.
    let mut lines = Vec::new();
    let mut progress = |report: &RedriveReport| lines.push(report.seen);
    let report = redrive(
        &stage,
        &dlq,
        runner.as_ref(),
        adapters.sessions.as_ref(),
        options,
        &mut progress,
    )
    .await
    .unwrap();
    assert!(!lines.is_empty(), "a progress line is reported");
    assert_eq!(report.seen, 2, "{report:?}");
    assert_eq!(report.per_function.get("sender"), Some(&1), "{report:?}");
    assert_eq!(
        report
            .per_function
            .get(&format!("sqs-push-{stage}-dispatcher")),
        Some(&1)
    );
    assert_eq!((report.redriven, report.left, report.failed), (0, 2, 0));
    assert_eq!(depth(&sqs, &dlq_url).await, 2);
    for receiver in &receivers {
        assert!(drain(&sqs, receiver, 0).await.is_empty());
    }
    assert_eq!(
        dlq.receive(Duration::from_secs(1)).await.unwrap().len(),
        2,
        "a dry run leaves records visible"
    );
    // Those two reads hid them for a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Apply: the sender record is replayed and deleted, the batch record is left.
    let apply = RedriveOptions {
        apply: true,
        ..options
    };
    let report = redrive(
        &stage,
        &dlq,
        runner.as_ref(),
        adapters.sessions.as_ref(),
        apply,
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        (report.seen, report.redriven, report.left, report.failed),
        (2, 1, 1, 0),
        "{report:?}"
    );
    for receiver in &receivers {
        let got = drain(&sqs, receiver, 5).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["marker"], "redriven");
    }
    let left = dlq.receive(Duration::from_secs(1)).await.unwrap();
    assert_eq!(left.len(), 1, "only the batch record is left");
    assert!(left[0].body.contains("KinesisBatchInfo"));

    // A second apply finds no sender record and changes nothing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let report = redrive(
        &stage,
        &dlq,
        runner.as_ref(),
        adapters.sessions.as_ref(),
        apply,
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!((report.seen, report.redriven), (1, 0), "{report:?}");
    drop(stack);
}
