//! History and read receipts end to end: messages land in a user's history unread, time ranges
//! and pages are exact, receipts flip only what changed and reach every session of the user
//! once, and a thousand ids handed off with `?async` all end up read.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sqs_push_aws::DynamoHistoryStore;
use sqs_push_core::model::ids::UserId;
use sqs_push_core::ports::{HistoryRow, HistoryStore};
use sqs_push_local::LocalStack;
use sqs_push_tests::*;

const HISTORY_TABLE: &str = "sqs-push-local-history";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The history table through the same adapter the functions use, to write rows with chosen
/// `created` values.
async fn history_store(emulator: &Emulator) -> DynamoHistoryStore {
    let dynamodb = aws_sdk_dynamodb::Client::new(&admin_config(emulator).await);
    DynamoHistoryStore::new(dynamodb, HISTORY_TABLE)
}

async fn write_rows(store: &DynamoHistoryStore, user: u64, rows: &[(String, u64)]) {
    let rows: Vec<HistoryRow> = rows
        .iter()
        .map(|(id, created)| HistoryRow {
            user_id: UserId::try_from(user).unwrap(),
            message_id: id.clone(),
            created: *created,
            ttl: now() + 86_400,
            message: json!({"messageId": id, "userId": user}).to_string(),
        })
        .collect();
    for chunk in rows.chunks(25) {
        let unprocessed = store.write_batch(chunk).await.unwrap();
        assert!(unprocessed.is_empty());
    }
}

/// Every page of `path` (which carries its own query), as lists of message ids.
async fn pages(stack: &LocalStack, path: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let url = match &next {
            Some(token) => format!("{path}&next={token}"),
            None => path.to_string(),
        };
        let (status, answer) = get(stack, &url).await;
        assert_eq!(status, 200, "{url}: {answer}");
        pages.push(
            answer["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["messageId"].as_str().unwrap().to_string())
                .collect(),
        );
        match answer["next"].as_str() {
            Some(token) => next = Some(token.to_string()),
            None => return pages,
        }
        assert!(pages.len() < 20, "pagination does not end");
    }
}

/// The user's read flags by message id.
async fn read_flags(stack: &LocalStack, user: u64) -> Vec<(String, u64)> {
    let (status, answer) = get(stack, &format!("/messages/user/{user}?limit=1000")).await;
    assert_eq!(status, 200, "{answer}");
    let mut flags: Vec<(String, u64)> = answer["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["messageId"].as_str().unwrap().to_string(),
                m["is_read"].as_u64().unwrap(),
            )
        })
        .collect();
    flags.sort();
    flags
}

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(std::string::ToString::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_a_user_appear_unread_and_time_ranges_and_pages_are_exact() {
    let stack = Stack::start().await;
    let emulator = &stack.emulator;

    // A notification lands in history, unread, as the message object the browser would see.
    let (status, sent) = get(&stack, "/notify/user/300?message=Hello+User").await;
    assert_eq!(status, 200, "{sent}");
    let (status, history) = get(&stack, "/messages/user/300").await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["success"], true);
    assert_eq!(history["next"], Value::Null);
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{history}");
    assert_eq!(messages[0]["messageId"], sent["messageId"]);
    assert_eq!(messages[0]["is_read"], 0);
    let created = messages[0]["created"].as_u64().unwrap();
    assert!(created.abs_diff(now()) < 60, "created {created}");
    // Flat, as the original stack returned rows: the message's own fields at the top level.
    assert_eq!(
        messages[0],
        json!({"message": "Hello User", "userId": 300, "messageId": sent["messageId"],
               "created": created, "is_read": 0})
    );

    // Seven rows one second apart: pages of three run newest first and end without a token.
    let store = history_store(emulator).await;
    let rows: Vec<(String, u64)> = (0..7).map(|n| (format!("m{n}"), 1_000 + n)).collect();
    write_rows(&store, 301, &rows).await;
    assert_eq!(
        pages(&stack, "/messages/user/301?limit=3").await,
        [
            ids(&["m6", "m5", "m4"]),
            ids(&["m3", "m2", "m1"]),
            ids(&["m0"])
        ]
    );
    // start and end are inclusive; a range that fits one page exactly has no next page.
    assert_eq!(
        pages(&stack, "/messages/user/301?start=1002&end=1004&limit=3").await,
        [ids(&["m4", "m3", "m2"])]
    );
    assert_eq!(
        pages(&stack, "/messages/user/301?start=1001&end=1005&limit=2").await,
        [ids(&["m5", "m4"]), ids(&["m3", "m2"]), ids(&["m1"])]
    );
    assert_eq!(
        pages(&stack, "/messages/user/301?start=2000").await,
        [Vec::<String>::new()]
    );
    assert_eq!(
        pages(&stack, "/messages/user/302?limit=3").await,
        [Vec::<String>::new()],
        "another user's history is empty"
    );

    // Malformed parameters are 400s that name the parameter.
    let (_, first) = get(&stack, "/messages/user/301?limit=3").await;
    let token = first["next"].as_str().unwrap().to_string();
    for (path, field) in [
        ("/messages/user/x".to_string(), "userId"),
        ("/messages/user/301?start=-5".to_string(), "start"),
        ("/messages/user/301?end=soon".to_string(), "end"),
        ("/messages/user/301?start=9&end=8".to_string(), "start"),
        ("/messages/user/301?limit=0".to_string(), "limit"),
        ("/messages/user/301?limit=1001".to_string(), "limit"),
        ("/messages/user/301?next=garbage".to_string(), "next"),
        (
            format!("/messages/user/301?start=1005&next={token}"),
            "next",
        ),
    ] {
        let (status, answer) = get(&stack, &path).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert_eq!(answer["success"], false);
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(field), "{path}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_flip_only_what_changed_and_reach_every_session_of_the_user_once() {
    let stack = Stack::start().await;
    let emulator = &stack.emulator;
    let sqs = aws_sdk_sqs::Client::new(&admin_config(emulator).await);
    let phone = create(&stack, 40, 400, "phone").await;
    let laptop = create(&stack, 40, 400, "laptop").await;
    let stranger = create(&stack, 40, 401, "phone").await;
    for n in 0..4 {
        let body = json!({"messageId": format!("m{n}"), "message": format!("number {n}")});
        let (status, answer) = call(&stack, "POST", "/notify/user/400", &body.to_string()).await;
        assert_eq!(status, 200, "{answer}");
    }
    for receiver in [&phone, &laptop] {
        assert_eq!(drain(&sqs, receiver, 5).await.len(), 4);
    }
    let unread = |names: &[&str]| -> Vec<(String, u64)> {
        (0..4)
            .map(|n| format!("m{n}"))
            .map(|id| {
                let flag = u64::from(!names.contains(&id.as_str()));
                (id, flag)
            })
            .collect()
    };
    assert_eq!(
        read_flags(&stack, 400).await,
        unread(&["m0", "m1", "m2", "m3"])
    );

    // Receipting two (one named twice, plus an id the user never got) flips those two only; the
    // id without a row is answered as missing.
    let (status, answer) = get(
        &stack,
        "/messages/set-read/user/400/message/m1,m3,m1,never-sent",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"success": true, "changed": 2, "messageIds": ["m1", "m3"],
               "messages_receipted": ["m1", "m3"], "missing": ["never-sent"]})
    );
    assert_eq!(read_flags(&stack, 400).await, unread(&["m0", "m2"]));

    // Every session of the user gets one receipt; the other user gets nothing; no history row.
    for receiver in [&phone, &laptop] {
        let got = drain(&sqs, receiver, 2).await;
        assert_eq!(got.len(), 1, "{got:?}");
        let mut receipt = got[0].clone();
        assert!(receipt["messageId"].is_string(), "{receipt}");
        receipt.as_object_mut().unwrap().remove("messageId");
        assert_eq!(
            receipt,
            json!({"_type": "message-read-receipt", "userId": 400,
                   "messages-receipted": ["m1", "m3"], "_sqs_only": 1})
        );
    }
    assert!(drain(&sqs, &stranger, 0).await.is_empty());
    assert_eq!(
        read_flags(&stack, 400).await.len(),
        4,
        "a receipt has no row"
    );

    // Receipting them again changes nothing and sends nothing; nor does an unknown user.
    let (status, answer) = call(
        &stack,
        "POST",
        "/messages/set-read/user/400",
        r#"["m3", "m1"]"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"success": true, "changed": 0, "messageIds": [], "messages_receipted": []})
    );
    let (_, answer) = get(&stack, "/messages/set-read/user/999/message/m1").await;
    assert_eq!(answer["changed"], 0, "{answer}");
    for receiver in [&phone, &laptop] {
        assert!(drain(&sqs, receiver, 1).await.is_empty());
    }

    // asof reads the rest in one receipt.
    let (status, answer) = get(
        &stack,
        &format!("/messages/set-read/user/400/asof/{}", now() + 1),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["changed"], 2, "{answer}");
    let receipted = |message: &Value| -> BTreeSet<String> {
        message["messages-receipted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_str().unwrap().to_string())
            .collect()
    };
    let got = drain(&sqs, &phone, 2).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        receipted(&got[0]),
        ids(&["m0", "m2"]).into_iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(read_flags(&stack, 400).await, unread(&[]));

    // Malformed ids and bodies are 400s naming the field.
    for (method, path, body, field) in [
        (
            "GET",
            "/messages/set-read/user/abc/message/m1",
            "",
            "userId",
        ),
        (
            "GET",
            "/messages/set-read/user/400/message/m1,,m2",
            "",
            "messageId",
        ),
        (
            "GET",
            "/messages/set-read/user/400/asof/noon",
            "",
            "timestamp",
        ),
        (
            "POST",
            "/messages/set-read/user/400",
            r#"{"ids": []}"#,
            "messageIds",
        ),
        (
            "POST",
            "/messages/set-read/user/400",
            "[1.5, 2]",
            "messageIds",
        ),
        (
            "GET",
            "/messages/set-read/user/400/message/m1?async=maybe",
            "",
            "async",
        ),
    ] {
        let (status, answer) = call(&stack, method, path, body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(field), "{path}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_ids_receipted_with_async_are_all_read_afterwards() {
    let stack = Stack::start().await;
    let emulator = &stack.emulator;
    let store = history_store(emulator).await;
    let base = now() - 10_000;
    let rows: Vec<(String, u64)> = (0..1_000)
        .map(|n| (format!("bulk-{n:04}"), base + n))
        .collect();
    write_rows(&store, 500, &rows).await;
    let body = serde_json::to_string(&rows.iter().map(|(id, _)| id).collect::<Vec<_>>()).unwrap();

    let started = Instant::now();
    let (status, answer) = call(&stack, "POST", "/messages/set-read/user/500?async", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"success": true, "async": true, "chunks": 4}));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the call answers at once"
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let flags = read_flags(&stack, 500).await;
        assert_eq!(flags.len(), 1_000);
        let read = flags.iter().filter(|(_, flag)| *flag == 1).count();
        if read == 1_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {read} of 1000 read after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("1000 async receipts applied in {:?}", started.elapsed());
}
