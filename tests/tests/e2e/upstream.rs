//! Browser to server end to end: a session sends to the shared upstream queue with its own
//! credentials; the emulator stamps the SenderId from the signing principal (role id and role
//! session name) as SQS does; the consumer, run by the local stack's poller as Lambda's trigger
//! would, routes what it verifies to the app's queue and drops the rest without retrying it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde_json::{Value, json};
use sqs_push_local::LocalStack;
use sqs_push_tests::*;

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn envelope(session: &str, seq: u64, kind: &str, body: Value) -> String {
    json!({"v": 1, "sessionId": session, "seq": seq, "ts": now_millis(), "type": kind, "body": body})
        .to_string()
}

/// A session as its page holds it: the create answer and an SQS client with its credentials.
struct Page {
    session: Value,
    sqs: aws_sdk_sqs::Client,
}

impl Page {
    async fn open(stack: &Stack, account: u64, user: u64, session: &str) -> Self {
        let (status, created) = get(stack, &format!("/create/{account}/{user}/{session}")).await;
        assert_eq!(status, 200, "{created}");
        let session = created["session"].clone();
        let sqs = session_sqs_client(&stack.emulator, &session).await;
        Self { session, sqs }
    }

    fn upstream_url(&self) -> &str {
        text(&self.session, "upstreamUrl")
    }

    async fn send(&self, body: String) {
        self.sqs
            .send_message()
            .queue_url(self.upstream_url())
            .message_body(body)
            .send()
            .await
            .expect("a session may send upstream");
    }
}

/// An SQS client of another role of the account (a backend's), its session named as `session`'s
/// role session name.
async fn impostor_sqs(stack: &Stack, session: &Value) -> aws_sdk_sqs::Client {
    let user = sqs_push_core::UserId::try_from(session["userId"].as_u64().unwrap()).unwrap();
    let name =
        sqs_push_core::upstream::sender::role_session_name(user, text(session, "identityId"));
    let sts = aws_sdk_sts::Client::new(&admin_config(&stack.emulator).await);
    let assumed = sts
        .assume_role()
        .role_arn("arn:aws:iam::123456789012:role/a-backend-service")
        .role_session_name(name)
        .send()
        .await
        .unwrap();
    let credentials = assumed.credentials().unwrap();
    let credentials = aws_credential_types::Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_string()),
        None,
        "impostor",
    );
    aws_sdk_sqs::Client::new(&sdk_config(&stack.emulator, "us-east-1", credentials).await)
}

/// Everything the app's queue holds, deleted as read; waits up to `wait` s for the first.
async fn app_messages(stack: &LocalStack, admin: &aws_sdk_sqs::Client, wait: i32) -> Vec<Value> {
    let url = queue_url(admin, &format!("{}-app", stack.config.prefix())).await;
    let mut messages = Vec::new();
    let mut wait = wait;
    loop {
        let output = admin
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .send()
            .await
            .unwrap();
        if output.messages().is_empty() {
            return messages;
        }
        for message in output.messages() {
            messages.push(serde_json::from_str(message.body().unwrap()).unwrap());
            admin
                .delete_message()
                .queue_url(&url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        wait = 0;
    }
}

async fn queue_url(admin: &aws_sdk_sqs::Client, name: &str) -> String {
    admin
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string()
}

/// Visible plus in-flight messages of a queue.
async fn held(admin: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName::{
        ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible,
    };
    let output = admin
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(ApproximateNumberOfMessages)
        .attribute_names(ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let attributes = output.attributes().unwrap();
    [
        ApproximateNumberOfMessages,
        ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|name| attributes[name].parse::<u64>().unwrap())
    .sum()
}

async fn wait_until_consumed(stack: &LocalStack, admin: &aws_sdk_sqs::Client) {
    let url = stack.config.upstream_queue_url.clone().unwrap();
    eventually(
        Duration::from_secs(30),
        "the upstream queue emptied",
        || {
            let url = url.clone();
            async move { held(admin, &url).await == 0 }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_messages_a_session_signed_for_itself_reach_the_app_and_each_once() {
    let stack = Stack::builder()
        .configure(|options| options.stack.upstream.strike_limit = 2)
        .start()
        .await;
    let admin = aws_sdk_sqs::Client::new(&admin_config(&stack.emulator).await);
    let a = Page::open(&stack, 1, 10, "a").await;
    let b = Page::open(&stack, 1, 10, "b").await;
    assert!(
        a.upstream_url().ends_with("/sqs-push-local-upstream"),
        "{}",
        a.session
    );

    a.send(envelope("a", 1, "chat.line", json!({"text": "hi"})))
        .await;
    // Replayed by the page (same seq) and sent by another principal of the account (the
    // emulator's admin key, as a backend service would) claiming to be the session.
    a.send(envelope("a", 1, "chat.line", json!({"text": "replay"})))
        .await;
    // Another role of the account whose session is named exactly as session a's: its SenderId
    // carries a's name after another role's id.
    let impostor = impostor_sqs(&stack, &a.session).await;
    impostor
        .send_message()
        .queue_url(a.upstream_url())
        .message_body(envelope("a", 8, "chat.line", json!({"text": "impostor"})))
        .send()
        .await
        .unwrap();
    admin
        .send_message()
        .queue_url(a.upstream_url())
        .message_body(envelope("a", 2, "chat.line", json!({"text": "admin"})))
        .send()
        .await
        .unwrap();
    // A stale timestamp, a malformed body, a type outside the grammar.
    let mut stale: Value = serde_json::from_str(&envelope("a", 3, "chat.line", json!({}))).unwrap();
    stale["ts"] = json!(now_millis() - 6 * 60 * 1000);
    a.send(stale.to_string()).await;
    a.send("{not json".to_string()).await;
    a.send(envelope("a", 4, "Not A Type", json!({}))).await;
    // Oversize: the queue's 16 KiB refuses it at the edge.
    let oversize = a
        .sqs
        .send_message()
        .queue_url(a.upstream_url())
        .message_body(envelope("a", 5, "chat.line", json!("x".repeat(16 * 1024))))
        .send()
        .await;
    assert!(
        oversize.is_err(),
        "the upstream queue refuses more than 16 KiB"
    );
    // Session a claims to be session b of the same user: dropped, a strike on a.
    a.send(envelope("b", 6, "chat.line", json!({"text": "spoof"})))
        .await;
    b.send(envelope("b", 1, "chat.line", json!({"text": "from b"})))
        .await;

    wait_until_consumed(&stack, &admin).await;
    let routed = app_messages(&stack, &admin, 2).await;
    let texts: Vec<&str> = routed
        .iter()
        .map(|message| message["body"]["text"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(texts.len(), 2, "{routed:?}");
    assert!(
        texts.contains(&"hi") && texts.contains(&"from b"),
        "{routed:?}"
    );
    let from_a = routed.iter().find(|m| m["body"]["text"] == "hi").unwrap();
    assert_eq!(from_a["accountId"], 1);
    assert_eq!(from_a["userId"], 10);
    assert_eq!(from_a["sessionId"], "a");
    assert_eq!(from_a["type"], "chat.line");
    assert!(from_a["receivedAt"].as_str().unwrap().ends_with('Z'));
    // Dropped messages were deleted, never retried into the dead-letter queue.
    let dead = queue_url(&admin, &stack.config.upstream_dead_letter_queue()).await;
    assert_eq!(held(&admin, &dead).await, 0);

    // One more spoof reaches the strike limit of 2: renew refuses a, not b.
    a.send(envelope("b", 7, "chat.line", json!({}))).await;
    wait_until_consumed(&stack, &admin).await;
    let (status, refused) = get(&stack, "/renew/1/10/a").await;
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("refused renewal"),
        "{refused}"
    );
    let (status, renewed) = get(&stack, "/renew/1/10/b").await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(renewed["session"]["upstreamUrl"], a.session["upstreamUrl"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_100_messages_in_a_second_routes_at_most_the_burst() {
    let stack = Stack::builder()
        .configure(|options| {
            options.stack.upstream.session_rate.per_second = 1;
            options.stack.upstream.session_rate.burst = 5;
        })
        .start()
        .await;
    let admin = aws_sdk_sqs::Client::new(&admin_config(&stack.emulator).await);
    let page = Page::open(&stack, 1, 10, "flood").await;
    let started = std::time::Instant::now();
    for batch in 0..10u64 {
        let entries: Vec<_> = (0..10u64)
            .map(|n| {
                let seq = batch * 10 + n + 1;
                SendMessageBatchRequestEntry::builder()
                    .id(seq.to_string())
                    .message_body(envelope("flood", seq, "typing", json!({"seq": seq})))
                    .build()
                    .unwrap()
            })
            .collect();
        let sent = page
            .sqs
            .send_message_batch()
            .queue_url(page.upstream_url())
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert!(sent.failed().is_empty());
    }
    let sending = started.elapsed();
    assert!(sending < Duration::from_secs(2), "sent in {sending:?}");
    wait_until_consumed(&stack, &admin).await;
    let consumed = started.elapsed().as_secs() + 1;
    let routed = app_messages(&stack, &admin, 1).await;
    // The burst, plus what the bucket refilled (1/s) while the consumer worked through them.
    assert!(
        routed.len() >= 5 && routed.len() as u64 <= 5 + consumed,
        "{} routed in {consumed} s",
        routed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downstream_failure_is_retried_then_dead_lettered_while_its_siblings_are_processed_once()
{
    let stack = Stack::builder()
        .configure(|options| {
            options.upstream_queue.visibility_seconds = 1;
            options.upstream_queue.max_receive_count = 3;
        })
        .start()
        .await;
    let admin = aws_sdk_sqs::Client::new(&admin_config(&stack.emulator).await);
    // The app's queue is gone: every app message fails downstream.
    let app = queue_url(&admin, &format!("{}-app", stack.config.prefix())).await;
    admin.delete_queue().queue_url(&app).send().await.unwrap();
    let page = Page::open(&stack, 1, 10, "tab").await;
    // A history message to mark read through the upstream.
    let (status, sent) = get(&stack, "/notify/user/10?message=hello&messageId=m1").await;
    assert_eq!(status, 200, "{sent}");

    let entries = [
        envelope("tab", 1, "chat.line", json!({"text": "lost downstream"})),
        envelope("tab", 2, "heartbeat", json!({})),
        envelope("tab", 3, "read", json!({"messageIds": ["m1"]})),
    ]
    .into_iter()
    .enumerate()
    .map(|(n, body)| {
        SendMessageBatchRequestEntry::builder()
            .id(n.to_string())
            .message_body(body)
            .build()
            .unwrap()
    })
    .collect();
    page.sqs
        .send_message_batch()
        .queue_url(page.upstream_url())
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap();

    let dead = queue_url(&admin, &stack.config.upstream_dead_letter_queue()).await;
    eventually(
        Duration::from_secs(30),
        "the failed message dead-lettered",
        || {
            let (admin, dead) = (&admin, &dead);
            async move { held(admin, dead).await == 1 }
        },
    )
    .await;
    let letters = admin
        .receive_message()
        .queue_url(&dead)
        .send()
        .await
        .unwrap();
    let letter: Value = serde_json::from_str(letters.messages()[0].body().unwrap()).unwrap();
    assert_eq!(letter["seq"], 1, "the app message, not a sibling");

    // The siblings: the heartbeat made the session online, the read mark went through once.
    let (status, status_answer) = get(&stack, "/status/1/10/tab").await;
    assert_eq!(status, 200);
    assert_eq!(status_answer["session"]["online"], true, "{status_answer}");
    let (_, history) = get(&stack, "/messages/user/10").await;
    assert_eq!(history["messages"][0]["is_read"], 1, "{history}");
    let receiver = Receiver {
        account: 1,
        user: 10,
        session: "tab".into(),
        queue_url: text(&page.session, "sqsUrl").to_string(),
        key: sqs_push_core::crypto::SessionKey::from_base64(text(&page.session, "aesKey")).unwrap(),
    };
    let received = drain(&admin, &receiver, 2).await;
    let receipts = received
        .iter()
        .filter(|message| message["_type"] == "message-read-receipt")
        .count();
    assert_eq!(receipts, 1, "{received:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_online_while_its_heartbeats_are_fresh_then_offline() {
    let stack = Stack::builder()
        .configure(|options| options.stack.upstream.online_seconds = 3)
        .start()
        .await;
    let page = Page::open(&stack, 1, 10, "here").await;
    let (_, before) = get(&stack, "/status/1/10/here").await;
    assert_eq!(before["session"]["online"], false, "{before}");
    assert_eq!(before["session"]["lastSeen"], Value::Null, "{before}");

    page.send(envelope("here", 1, "heartbeat", json!({}))).await;
    let sent = std::time::Instant::now();
    eventually(Duration::from_secs(10), "online", || async {
        get(&stack, "/status/1/10/here").await.1["session"]["online"] == true
    })
    .await;
    let (_, online) = get(&stack, "/status/1/10/here").await;
    assert!(
        online["session"]["lastSeen"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    eventually(Duration::from_secs(10), "offline", || async {
        get(&stack, "/status/1/10/here").await.1["session"]["online"] == false
    })
    .await;
    assert!(
        sent.elapsed() >= Duration::from_secs(3),
        "online for the window"
    );
}

/// The presence events in `receiver`'s queue, waiting up to `limit` for a first one.
async fn presence_events(
    admin: &aws_sdk_sqs::Client,
    receiver: &Receiver,
    limit: Duration,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let events: Vec<Value> = drain(admin, receiver, 1)
            .await
            .into_iter()
            .filter(|message| message["type"] == "presence")
            .collect();
        if !events.is_empty() || std::time::Instant::now() >= deadline {
            return events;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_with_presence_events_announces_each_join_and_leave_once_within_the_bound() {
    const ONLINE_SECONDS: u64 = 3;
    const SWEEP: Duration = Duration::from_secs(1);
    let stack = Stack::builder()
        .configure(|options| {
            options.stack.upstream.online_seconds = ONLINE_SECONDS;
            options.presence_sweep_interval = SWEEP;
        })
        .start()
        .await;
    let admin = aws_sdk_sqs::Client::new(&admin_config(&stack.emulator).await);
    let watcher = create(&stack, 1, 20, "watcher").await;
    let (status, answer) = get(&stack, "/subscribe/1/20/watcher/room?presence=true").await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = get(&stack, "/subscribe/1/20/watcher/room?presence=maybe").await;
    assert_eq!(status, 400, "{answer}");
    let (status, created) = get(&stack, "/create/2/30/chatter?channels=room").await;
    assert_eq!(status, 200, "{created}");
    let chatter = Page {
        sqs: session_sqs_client(&stack.emulator, &created["session"]).await,
        session: created["session"].clone(),
    };

    // Two beats: one join.
    chatter
        .send(envelope("chatter", 1, "heartbeat", json!({})))
        .await;
    chatter
        .send(envelope("chatter", 2, "heartbeat", json!({})))
        .await;
    let joins = presence_events(&admin, &watcher, Duration::from_secs(10)).await;
    let joined = std::time::Instant::now();
    let (_, page) = get(&stack, "/channels/room/presence?limit=10").await;
    assert_eq!(page["sessions"], 1, "{page}");
    assert_eq!(page["users"], 1, "{page}");
    assert_eq!(page["online"][0]["sessionId"], "chatter", "{page}");
    assert_eq!(page["online"][0]["accountId"], 2, "{page}");
    assert!(
        page["online"][0]["lastSeen"]
            .as_str()
            .unwrap()
            .ends_with('Z'),
        "{page}"
    );
    let (status, refused) = get(&stack, "/channels/room/presence?limit=10&since=1").await;
    assert_eq!(status, 400, "unknown query keys are refused: {refused}");

    // The beats stop: one leave, within the window + a sweep + a bucket of the last beat.
    let leaves = presence_events(&admin, &watcher, Duration::from_secs(15)).await;
    let took = joined.elapsed();
    // Anything more (a second join or leave) would have arrived by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let late = presence_events(&admin, &watcher, Duration::ZERO).await;
    let all: Vec<&Value> = joins.iter().chain(&leaves).chain(&late).collect();
    assert_eq!(all.len(), 2, "one join and one leave: {all:?}");
    assert_eq!(joins[0]["presence"], "join");
    assert_eq!(joins[0]["channel"], "room");
    assert_eq!(joins[0]["sessionId"], "chatter");
    assert_eq!(leaves.len(), 1, "{leaves:?}");
    assert_eq!(leaves[0]["presence"], "leave");
    assert_eq!(leaves[0]["userId"], 30);
    let bound = Duration::from_secs(ONLINE_SECONDS + 1) + SWEEP + Duration::from_secs(1);
    println!("presence: leave announced {took:?} after the join (bound {bound:?})");
    assert!(
        took <= bound + Duration::from_secs(2),
        "leave after {took:?}, bound {bound:?}"
    );
    let (_, page) = get(&stack, "/channels/room/presence").await;
    assert_eq!(page["sessions"], 0, "{page}");
}

/// This process's CPU time (user + system), from /proc (Linux), in seconds.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Upstream throughput and latency on the local stack: 10 sessions send 100 messages each in
/// batches of 10, all at once; the time from each send to its arrival in the app's queue, and
/// the test process's CPU (the local stack with its consumer, and this client) per message.
/// `cargo test -p sqs-push-tests --test e2e upstream_throughput -- --ignored --nocapture`
/// (docs/benchmarks.md, "Upstream").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check: run by hand"]
async fn upstream_throughput_and_latency_on_the_local_stack() {
    const SESSIONS: u64 = 10;
    const PER_SESSION: u64 = 30;
    let stack = Stack::builder()
        .configure(|options| {
            options.stack.upstream.session_rate.per_second = 10_000;
            options.stack.upstream.session_rate.burst = 10_000;
        })
        .start()
        .await;
    let admin = aws_sdk_sqs::Client::new(&admin_config(&stack.emulator).await);
    let mut pages = Vec::new();
    for n in 0..SESSIONS {
        pages.push(Page::open(&stack, 1, 100 + n, &format!("bench-{n}")).await);
    }
    let app = queue_url(&admin, &format!("{}-app", stack.config.prefix())).await;
    let cpu_before = process_cpu_seconds();
    let started = std::time::Instant::now();
    let senders = pages.into_iter().enumerate().map(|(n, page)| {
        tokio::spawn(async move {
            for batch in 0..PER_SESSION / 10 {
                let entries: Vec<_> = (0..10u64)
                    .map(|k| {
                        let seq = batch * 10 + k + 1;
                        SendMessageBatchRequestEntry::builder()
                            .id(seq.to_string())
                            .message_body(envelope(
                                &format!("bench-{n}"),
                                seq,
                                "bench",
                                json!({"sentAt": now_millis()}),
                            ))
                            .build()
                            .unwrap()
                    })
                    .collect();
                page.sqs
                    .send_message_batch()
                    .queue_url(page.upstream_url())
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .unwrap();
            }
        })
    });
    let senders: Vec<_> = senders.collect();
    let mut latencies = Vec::new();
    while (latencies.len() as u64) < SESSIONS * PER_SESSION {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{} arrived",
            latencies.len()
        );
        let output = admin
            .receive_message()
            .queue_url(&app)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let arrived = now_millis();
        let mut handles = Vec::new();
        for message in output.messages() {
            let routed: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            latencies.push(arrived - routed["body"]["sentAt"].as_u64().unwrap());
            handles.push(
                aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                    .id(handles.len().to_string())
                    .receipt_handle(message.receipt_handle().unwrap())
                    .build()
                    .unwrap(),
            );
        }
        if !handles.is_empty() {
            admin
                .delete_message_batch()
                .queue_url(&app)
                .set_entries(Some(handles))
                .send()
                .await
                .unwrap();
        }
    }
    let took = started.elapsed();
    for sender in senders {
        sender.await.unwrap();
    }
    let cpu = process_cpu_seconds() - cpu_before;
    // Latency without a backlog: one message every 250 ms.
    let page = Page::open(&stack, 1, 99, "paced").await;
    let mut paced = Vec::new();
    for seq in 1..=40u64 {
        page.send(envelope(
            "paced",
            seq,
            "bench",
            json!({"sentAt": now_millis()}),
        ))
        .await;
        let output = admin
            .receive_message()
            .queue_url(&app)
            .wait_time_seconds(10)
            .send()
            .await
            .unwrap();
        let arrived = now_millis();
        for message in output.messages() {
            let routed: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            paced.push(arrived - routed["body"]["sentAt"].as_u64().unwrap());
            admin
                .delete_message()
                .queue_url(&app)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    paced.sort_unstable();
    let paced_at = |q: f64| paced[((paced.len() as f64 - 1.0) * q) as usize];
    println!(
        "upstream, one at a time: send → app queue p50 {} ms, p99 {} ms ({} messages)",
        paced_at(0.5),
        paced_at(0.99),
        paced.len()
    );
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize];
    let total = SESSIONS * PER_SESSION;
    println!(
        "upstream: {total} messages routed in {took:?} = {:.0} msg/s; send → app queue p50 {} ms, p99 {} ms, max {} ms; this process's CPU {cpu:.2} s = {:.0} µs per message",
        total as f64 / took.as_secs_f64(),
        at(0.5),
        at(0.99),
        latencies.last().unwrap(),
        cpu * 1e6 / total as f64,
    );
}
