//! Hostile and careless requests against the local stack, signed with the test keys: each is
//! answered with the expected 4xx and a message naming what was wrong, and nothing changes —
//! both tables and the queue list are the same before and after.

mod support;

use std::collections::BTreeSet;

use aws_credential_types::Credentials;
use serde_json::Value;
use sqs_push_local::LocalStack;
use support::*;

/// A signed call that does not insist on a JSON answer (HEAD has no body).
async fn raw_call(stack: &LocalStack, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let keys = test_keys();
    let credentials = Credentials::new(keys.access_key, keys.secret_key, None, None, "test");
    let url = format!("{}{path}", stack.api_url());
    sqs_push_cli::call_gw::call(&url, method, "us-east-1", &credentials, body)
        .await
        .unwrap_or_else(|error| (0, format!("the call failed: {error}")))
}

/// Everything a request could change: every sessions row, every history row, every queue.
async fn snapshot(
    stack: &LocalStack,
    emulator: &Emulator,
) -> (Vec<String>, Vec<String>, BTreeSet<String>) {
    let config = admin_config(emulator).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let mut tables = Vec::new();
    for table in [stack.config.sessions_table(), stack.config.history_table()] {
        let mut rows: Vec<String> = Vec::new();
        let mut start = None;
        loop {
            let page = dynamodb
                .scan()
                .table_name(&table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            rows.extend(page.items().iter().map(|item| {
                let mut fields: Vec<String> =
                    item.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                fields.sort();
                fields.join(",")
            }));
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        rows.sort();
        tables.push(rows);
    }
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queues = sqs
        .list_queues()
        .send()
        .await
        .expect("list queues")
        .queue_urls()
        .iter()
        .cloned()
        .collect();
    let history = tables.pop().unwrap();
    let sessions = tables.pop().unwrap();
    (sessions, history, queues)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_naming_the_problem_and_change_nothing() {
    let emulator = Emulator::start();
    let stack = spawn_stack(&emulator).await;
    // A live session and a history row, so there is something a wrong request could touch.
    let receiver = create(&stack, 1, 2, "s").await;
    let (status, answer) = get(&stack, "/notify/user/2?message=before").await;
    assert_eq!(status, 200, "{answer}");
    let sqs = aws_sdk_sqs::Client::new(&admin_config(&emulator).await);
    let mut received = Vec::new();
    for _ in 0..10 {
        received.extend(drain(&sqs, &receiver, 2).await);
        if !received.is_empty() {
            break;
        }
    }
    assert_eq!(received.len(), 1, "{received:?}");
    let before = snapshot(&stack, &emulator).await;

    let long_session = "a".repeat(257);
    let big_body = format!(r#"{{"message":"{}"}}"#, "x".repeat(800 * 1024));
    let history_too_big = format!(r#"{{"message":"{}"}}"#, "x".repeat(500 * 1024));
    let nested = format!(r#"{{"a":{}{}}}"#, "[".repeat(300), "]".repeat(300));
    let long_query = format!("/notify/user/2?message={}", "x".repeat(60 * 1024));
    let create_long = format!("/create/1/2/{long_session}");
    let notify_long = format!("/notify/user/2/session/{long_session}");

    // (method, path, body, expected status, what the error must name)
    let cases: Vec<(&str, &str, &str, u16, &str)> = vec![
        // bad ids of every kind
        ("GET", "/create/007/2/s", "", 400, "accountId"),
        ("GET", "/create/1/007/s", "", 400, "userId"),
        ("GET", "/create/9007199254740992/2/s", "", 400, "accountId"),
        ("GET", "/create/1/9007199254740992/s", "", 400, "userId"),
        ("GET", "/create/-1/2/s", "", 400, "accountId"),
        ("GET", "/create/1/2/a%2Fb", "", 400, "sessionId"),
        ("GET", "/create/1/2/a%00b", "", 400, "sessionId"),
        ("GET", "/create/1/2/%FF", "", 400, "UTF-8"),
        ("GET", &create_long, "", 400, "sessionId"),
        ("GET", "/status/1/2/a%2Fb", "", 400, "sessionId"),
        ("GET", "/notify/user/007", "", 400, "userId"),
        ("GET", "/notify/user/9007199254740992", "", 400, "userId"),
        ("GET", "/notify/account/abc", "", 400, "accountId"),
        ("GET", "/notify/user/2/session/a%2Fb", "", 400, "sessionId"),
        ("GET", &notify_long, "", 400, "sessionId"),
        (
            "POST",
            "/notify",
            r#"{"userId":2,"sessionId":"."}"#,
            400,
            "sessionId",
        ),
        (
            "POST",
            "/notify",
            r#"{"userId":2,"sessionId":".."}"#,
            400,
            "sessionId",
        ),
        ("GET", "/notify?userId=2&sessionId=..", "", 400, "sessionId"),
        ("GET", "/notify?userId=%FF", "", 400, "userId"),
        (
            "POST",
            "/notify",
            r#"{"userId":9007199254740992}"#,
            400,
            "userId",
        ),
        ("POST", "/notify", r#"{"userId":null}"#, 400, "userId"),
        ("POST", "/notify", r#"{"userId":1.5}"#, 400, "userId"),
        ("GET", "/messages/user/007", "", 400, "userId"),
        // bad retention, limits and page tokens
        (
            "GET",
            "/create/1/2/s2?MessageRetentionPeriod=abc",
            "",
            400,
            "MessageRetentionPeriod",
        ),
        (
            "GET",
            "/create/1/2/s2?MessageRetentionPeriod=59",
            "",
            400,
            "MessageRetentionPeriod",
        ),
        ("GET", "/messages/user/2?limit=0", "", 400, "limit"),
        ("GET", "/messages/user/2?limit=1001", "", 400, "limit"),
        ("GET", "/messages/user/2?limit=ten", "", 400, "limit"),
        ("GET", "/messages/user/2?next=not-a-token", "", 400, "next"),
        ("GET", "/status?limit=0", "", 400, "limit"),
        ("GET", "/status?next=e30", "", 400, "next"),
        // wrong methods
        ("HEAD", "/notify?message=x", "", 405, ""),
        ("HEAD", "/create/1/2/s3", "", 405, ""),
        ("HEAD", "/notify/user/2?message=x", "", 405, ""),
        ("DELETE", "/notify", "", 405, "Method Not Allowed"),
        ("PUT", "/create/1/2/s3", "", 405, "Method Not Allowed"),
        ("POST", "/create/1/2/s3", "", 405, "Method Not Allowed"),
        // invalid, nested, non-object, oversized and empty JSON
        ("POST", "/notify/user/2", "not json", 400, "not valid JSON"),
        ("POST", "/notify/user/2", "", 400, "not valid JSON"),
        ("POST", "/notify/user/2", r#"{"a":"#, 400, "not valid JSON"),
        ("POST", "/notify/user/2", "[1]", 400, "JSON object"),
        ("POST", "/notify/user/2", r#""text""#, 400, "JSON object"),
        ("POST", "/notify/user/2", "null", 400, "JSON object"),
        ("POST", "/notify/user/2", &nested, 400, "recursion limit"),
        ("POST", "/notify/user/2", &big_body, 413, "at most"),
        ("POST", "/notify/user/2", &history_too_big, 413, "DynamoDB"),
        (
            "POST",
            "/messages/set-read/user/2",
            // Whole numbers are ids, as in the original stack; a fraction is not.
            "[1.5]",
            400,
            "messageIds",
        ),
        // oversized query strings
        ("GET", &long_query, "", 413, "query string"),
        // target conflicts and near-miss fields
        (
            "GET",
            "/notify/user/2?userId=3&message=x",
            "",
            400,
            "userId",
        ),
        (
            "GET",
            "/notify/account/1?accountId=9&message=x",
            "",
            400,
            "accountId",
        ),
        (
            "GET",
            "/notify/user/2/session/s?sessionId=t",
            "",
            400,
            "sessionId",
        ),
        ("POST", "/notify/user/2", r#"{"userId":3}"#, 400, "userId"),
        ("GET", "/notify?sessionId=s&message=x", "", 400, "ambiguous"),
        ("GET", "/notify?userID=2&message=x", "", 400, "userID"),
        ("GET", "/notify?user_id=2&message=x", "", 400, "userId"),
        ("GET", "/notify?accountid=1&message=x", "", 400, "accountId"),
        (
            "POST",
            "/notify",
            r#"{"session_id":"s","userId":2}"#,
            400,
            "sessionId",
        ),
        ("POST", "/notify/user/2", r#"{"UserId":2}"#, 400, "userId"),
        // flags
        (
            "GET",
            "/notify/user/2?_sqs_only=no&message=x",
            "",
            400,
            "_sqs_only",
        ),
        (
            "POST",
            "/notify/user/2",
            r#"{"_sqs_only":"no"}"#,
            400,
            "_sqs_only",
        ),
        (
            "POST",
            "/notify/user/2",
            r#"{"_sqs_only":2}"#,
            400,
            "_sqs_only",
        ),
    ];
    assert!(cases.len() >= 40);
    let mut failures = Vec::new();
    for (method, path, body, expected, needle) in &cases {
        let (status, text) = raw_call(&stack, method, path, body.as_bytes()).await;
        let shown: String = path.chars().take(80).collect();
        let error = if *method == "HEAD" {
            String::new()
        } else {
            match serde_json::from_str::<Value>(&text) {
                Ok(answer) if answer["success"] == false => {
                    answer["error"].as_str().unwrap_or_default().to_string()
                }
                _ => {
                    failures.push(format!("{method} {shown}: not a JSON error: {text:.200}"));
                    continue;
                }
            }
        };
        if status != *expected || !error.contains(needle) {
            failures.push(format!(
                "{method} {shown}: expected {expected} naming {needle:?}, got {status}: {error:.300}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    let after = snapshot(&stack, &emulator).await;
    assert_eq!(before.0, after.0, "the sessions table changed");
    assert_eq!(before.1, after.1, "the history table changed");
    assert_eq!(before.2, after.2, "the queue list changed");
    assert!(
        drain(&sqs, &receiver, 1).await.is_empty(),
        "a refused request reached the session"
    );
}
