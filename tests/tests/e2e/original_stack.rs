//! What a team moving from the original Reuters stack (ReutersMedia/sqs-browser-events) expects of
//! the history routes, written from that project's behaviour (docs/original-stack.md, C.2–C.5):
//! `_type` filters, flat rows with reserved fields, epoch times with a fraction, and the
//! original's answer names. Unknown parameters are our own stricter choice.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sqs_push_local::LocalStack;
use sqs_push_tests::*;

fn now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A fresh user id per test, as the original's tests use fresh random ids.
fn fresh_user(base: u64) -> u64 {
    let mut bytes = [0u8; 4];
    sqs_push_core::crypto::fill_random(&mut bytes);
    base + u64::from(u32::from_be_bytes(bytes) % 1_000_000)
}

/// Notifies a user with query fields; returns the message id.
async fn notify(stack: &LocalStack, user: u64, query: &str) -> String {
    let (status, answer) = get(stack, &format!("/notify/user/{user}?{query}")).await;
    assert_eq!(status, 200, "{answer}");
    answer["messageId"].as_str().unwrap().to_string()
}

/// The rows of one history call.
async fn rows(stack: &LocalStack, path: &str) -> Vec<Value> {
    let (status, answer) = get(stack, path).await;
    assert_eq!(status, 200, "{path}: {answer}");
    answer["messages"].as_array().unwrap().clone()
}

fn types_of(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .map(|row| row["_type"].as_str().unwrap_or("<none>").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_type_filter_returns_exactly_those_types_and_unknown_parameters_are_named() {
    let stack = Stack::start().await;
    let u1 = fresh_user(10_000_000);
    let u2 = u1 + 2_000_000;
    let before = now_f64() - 1.0;
    for query in [
        "msg=test1&_type=type1",
        "msg=test1&_type=type2",
        "msg=test1&_type=type3",
        "msg=test2",
        "msg=test5",
        "msg=test6",
    ] {
        notify(&stack, u1, query).await;
    }
    notify(&stack, u2, "msg=test3").await;
    notify(&stack, u2, "msg=test4&_type=type1").await;
    let after = now_f64() + 1.0;

    // C.2.1–2.7
    assert_eq!(rows(&stack, &format!("/messages/user/{u1}")).await.len(), 6);
    assert_eq!(rows(&stack, &format!("/messages/user/{u2}")).await.len(), 2);
    let two = rows(&stack, &format!("/messages/user/{u1}?_type=type1,type2")).await;
    assert_eq!(two.len(), 2, "{two:?}");
    assert_eq!(
        types_of(&two),
        BTreeSet::from(["type1".into(), "type2".into()])
    );
    let one = rows(&stack, &format!("/messages/user/{u1}?_type=type1")).await;
    assert_eq!(one.len(), 1, "U2's type1 row is not U1's: {one:?}");
    let spaced = rows(&stack, &format!("/messages/user/{u1}?_type=type1,%20type2")).await;
    assert_eq!(types_of(&spaced), types_of(&two), "items are trimmed");
    assert!(
        rows(&stack, &format!("/messages/user/{u1}?_type=nosuch"))
            .await
            .is_empty()
    );
    let ranged = rows(
        &stack,
        &format!("/messages/user/{u1}?_type=type3&start={before:.2}&end={after:.2}"),
    )
    .await;
    assert_eq!(types_of(&ranged), BTreeSet::from(["type3".into()]));
    // 2.10, our choice: an empty `_type` names the empty type, which no row has.
    assert!(
        rows(&stack, &format!("/messages/user/{u1}?_type="))
            .await
            .is_empty()
    );

    // 2.8: pages of one matching row each; no page holds another type; the last next is null.
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let mut path = format!("/messages/user/{u1}?_type=type1,type2&limit=1");
        if let Some(token) = &next {
            path.push_str(&format!("&next={token}"));
        }
        let (status, answer) = get(&stack, &path).await;
        assert_eq!(status, 200, "{answer}");
        let page = answer["messages"].as_array().unwrap();
        assert_eq!(page.len(), 1, "{answer}");
        seen.push(page[0]["_type"].as_str().unwrap().to_string());
        match answer["next"].as_str() {
            Some(token) => next = Some(token.to_string()),
            None => break,
        }
        assert!(seen.len() <= 2, "more pages than matching rows: {seen:?}");
    }
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), types_of(&two));

    // 2.9, ours: unknown parameters are a 400 that names them, on every history route.
    for path in [
        format!("/messages/user/{u1}?foo=1"),
        format!("/messages/user/{u1}?_type=type1&foo=1"),
        format!("/messages/set-read/user/{u1}/message/m1?foo=1"),
        format!("/messages/set-read/user/{u1}/asof/1795440869.93?async&foo=1"),
    ] {
        let (status, answer) = get(&stack, &path).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert_eq!(answer["success"], false);
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains("foo"), "{path}: {error}");
    }
    let (status, answer) = call(
        &stack,
        "POST",
        &format!("/messages/set-read/user/{u1}?foo=1"),
        "[]",
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("foo"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_rows_are_flat_and_the_row_s_own_fields_win() {
    let stack = Stack::start().await;
    let user = fresh_user(20_000_000);

    // C.3.1: the message's fields at the top level, no `message` wrapper.
    let first = notify(&stack, user, "msg=test1&_type=type1").await;
    let got = rows(&stack, &format!("/messages/user/{user}")).await;
    assert_eq!(got.len(), 1);
    let row = got[0].as_object().unwrap();
    assert_eq!(row["messageId"], first.as_str());
    assert_eq!(row["is_read"], 0);
    assert_eq!(row["msg"], "test1");
    assert_eq!(row["_type"], "type1");
    assert_eq!(row["userId"], user);
    assert!(row["created"].is_u64(), "{row:?}");
    assert!(!row.contains_key("message"), "{row:?}");

    // C.3.2 and 3.3: nested values stay JSON; spoofed reserved fields lose to the row's.
    let body = json!({"messageId": "spoofed", "msg": "x", "data": {"a": [1, 2]},
                      "created": "spoof", "is_read": 1});
    let (status, answer) = call(
        &stack,
        "POST",
        &format!("/notify/user/{user}"),
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let got = rows(&stack, &format!("/messages/user/{user}")).await;
    let spoofed = got.iter().find(|r| r["messageId"] == "spoofed").unwrap();
    assert_eq!(spoofed["data"], json!({"a": [1, 2]}));
    assert!(spoofed["created"].is_u64(), "{spoofed}");
    assert_eq!(spoofed["is_read"], 0);
    assert_eq!(spoofed["userId"], user);

    // C.3.5: `_sqs_only` messages leave no row.
    let other = user + 1;
    notify(&stack, other, "msg=test1&_sqs_only=1").await;
    notify(&stack, other, "msg=test2&_sqs_only=1").await;
    notify(&stack, other, "msg=test3").await;
    let msgs: Vec<Value> = rows(&stack, &format!("/messages/user/{other}"))
        .await
        .iter()
        .map(|r| r["msg"].clone())
        .collect();
    assert_eq!(msgs, [json!("test3")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decimal_asof_marks_every_earlier_row_and_the_receipt_reaches_the_session() {
    let stack = Stack::start().await;
    let emulator = &stack.emulator;
    let sqs = aws_sdk_sqs::Client::new(&admin_config(emulator).await);
    let user = fresh_user(30_000_000);
    let session = create(&stack, 7, user, &unique_session_id("asof")).await;
    let t0 = now_f64();
    let mut sent = BTreeSet::new();
    for n in 0..3 {
        sent.insert(notify(&stack, user, &format!("msg=test{n}")).await);
    }
    assert_eq!(drain(&sqs, &session, 5).await.len(), 3);
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    // C.4.5: fractional start/end around a row's created include it.
    let got = rows(&stack, &format!("/messages/user/{user}")).await;
    let created = got[0]["created"].as_u64().unwrap() as f64;
    let around = rows(
        &stack,
        &format!(
            "/messages/user/{user}?start={:.2}&end={:.2}",
            created - 0.5,
            created + 0.5
        ),
    )
    .await;
    assert!(around.iter().any(|r| r["messageId"] == got[0]["messageId"]));

    // C.4.3: asof before every message changes nothing.
    let (status, answer) = get(
        &stack,
        &format!("/messages/set-read/user/{user}/asof/{:.0}.5", t0 - 100.0),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["messages_receipted"], json!([]));

    // C.4.9: malformed times are 400s naming the parameter.
    for bad in ["abc", "1e9", "-1", "nan", "1.2.3", "9007199254740992"] {
        let (status, answer) = get(
            &stack,
            &format!("/messages/set-read/user/{user}/asof/{bad}"),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("timestamp"),
            "{answer}"
        );
        let (status, answer) = get(&stack, &format!("/messages/user/{user}?start={bad}")).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("start"),
            "{answer}"
        );
    }

    // C.4.1: asof now, written as Python 3's time.time() prints it (seven fraction digits),
    // marks all three and receipts them.
    let t = format!("{:.7}", now_f64());
    let (status, answer) = get(&stack, &format!("/messages/set-read/user/{user}/asof/{t}")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["success"], true);
    let receipted: BTreeSet<String> = answer["messages_receipted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    assert_eq!(receipted, sent, "{answer}");
    let flags: Vec<Value> = rows(&stack, &format!("/messages/user/{user}"))
        .await
        .iter()
        .map(|r| r["is_read"].clone())
        .collect();
    assert_eq!(flags, [json!(1), json!(1), json!(1)]);
    let got = drain(&sqs, &session, 5).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["_type"], "message-read-receipt");
    let in_receipt: BTreeSet<String> = got[0]["messages-receipted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    assert_eq!(in_receipt, sent);

    // C.5 / B.3: POST set-read takes whole numbers as their decimal text.
    let (status, answer) = call(
        &stack,
        "POST",
        &format!("/notify/user/{user}"),
        r#"{"messageId": "123", "msg": "numbered"}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = call(
        &stack,
        "POST",
        &format!("/messages/set-read/user/{user}"),
        "[123]",
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["messages_receipted"], json!(["123"]));
}
