//! New queues are given their second: AWS documents that a queue may not be usable for up to a
//! second after CreateQueue. The fault proxy answers the first SendMessageBatch calls after a
//! create with `QueueDoesNotExist`, more of them than the sending process asks again: the
//! delivery is handed on, not counted as an ended session, and arrives once.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqs_push_fault_proxy::{Fault, Rule};
use sqs_push_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_right_after_create_whose_queue_is_not_visible_yet_is_delivered_once() {
    let stack = Stack::builder().fault_proxy().start().await;
    let proxy = stack.proxy();
    let receiver = create(&stack, 9, 9301, &unique_session_id("fresh")).await;
    // The api asks three times (once, then after 0.3 s and 0.7 s), so it hands the delivery
    // on; the handed-on sender's first call fails too; its next one finds the queue.
    proxy.set_rules(vec![
        Rule::new(
            "SendMessageBatch",
            Fault::error(400, "QueueDoesNotExist"),
            1.0,
        )
        .max_faults(4),
    ]);
    let (status, answer) = get(&stack, "/notify/user/9301?message=welcome").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["queuesGone"], &answer["handedOn"]),
        (&Value::from(0), &Value::from(1)),
        "not taken for an ended session: {answer}"
    );
    let message_id = answer["messageId"].as_str().unwrap().to_string();

    let sqs = aws_sdk_sqs::Client::new(&admin_config(&stack.emulator).await);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = BTreeSet::new();
    let mut copies = 0;
    while got.is_empty() && Instant::now() < deadline {
        for message in drain(&sqs, &receiver, 2).await {
            copies += 1;
            got.insert(message["messageId"].as_str().unwrap().to_string());
        }
    }
    // Anything still on its way would show up now.
    for message in drain(&sqs, &receiver, 3).await {
        copies += 1;
        got.insert(message["messageId"].as_str().unwrap().to_string());
    }
    assert_eq!(got, BTreeSet::from([message_id]), "nothing lost");
    assert_eq!(copies, 1, "nothing doubled");
    let missing = proxy.stats().operation("SendMessageBatch").total_faults();
    assert_eq!(missing, 4, "the queue was missing as planned");
    eprintln!("delivered once after {missing} QueueDoesNotExist answers");
}
