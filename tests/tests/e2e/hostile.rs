//! Hostile and careless requests against the local stack, signed with the test keys: each is
//! answered with the expected 4xx and a message naming what was wrong, and nothing changes —
//! every table and the queue list are the same before and after.

use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock, Weak};

use aws_credential_types::Credentials;
use serde_json::Value;
use sqs_push_local::LocalStack;
use sqs_push_tests::*;
use tokio::runtime::Runtime;

/// A signed call that does not insist on a JSON answer (HEAD has no body).
async fn raw_call(stack: &LocalStack, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let keys = test_keys();
    let credentials = Credentials::new(keys.access_key, keys.secret_key, None, None, "test");
    let url = format!("{}{path}", stack.api_url());
    sqs_push_cli::call_gw::call(&url, method, "us-east-1", &credentials, body)
        .await
        .unwrap_or_else(|error| (0, format!("the call failed: {error}")))
}

/// Everything a request could change: every sessions row, every history row, every channel
/// membership, every queue.
async fn snapshot(
    stack: &LocalStack,
    emulator: &Emulator,
) -> (Vec<String>, Vec<String>, Vec<String>, BTreeSet<String>) {
    let config = admin_config(emulator).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let mut tables = Vec::new();
    for table in [
        stack.config.sessions_table(),
        stack.config.history_table(),
        stack.config.channels_table(),
    ] {
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
    let channels = tables.pop().unwrap();
    let history = tables.pop().unwrap();
    let sessions = tables.pop().unwrap();
    (sessions, history, channels, queues)
}

/// One runtime for every case: the shared stack's tasks and the clients' pooled connections live
/// on it, so they outlive each case (a `#[tokio::test]` runtime ends with its test).
static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
});

/// The stack the cases share, with a live session and a history row a wrong request could
/// touch, and an admin SQS client to see whether anything reached the session.
struct Fixture {
    stack: Stack,
    receiver: Receiver,
    sqs: aws_sdk_sqs::Client,
}

impl Fixture {
    async fn start() -> Self {
        let stack = Stack::start().await;
        let receiver = create(&stack, 1, 2, "s").await;
        let (status, answer) = get(&stack, "/subscribe/1/2/s/room").await;
        assert_eq!(status, 200, "{answer}");
        let (status, answer) = get(&stack, "/notify/user/2?message=before").await;
        assert_eq!(status, 200, "{answer}");
        let sqs = aws_sdk_sqs::Client::new(&admin_config(&stack.emulator).await);
        let mut received = Vec::new();
        for _ in 0..10 {
            received.extend(drain(&sqs, &receiver, 2).await);
            if !received.is_empty() {
                break;
            }
        }
        assert_eq!(received.len(), 1, "{received:?}");
        Self {
            stack,
            receiver,
            sqs,
        }
    }

    /// The running fixture, or a new one: cases running at the same time share one, and the
    /// last case to let go of it stops its stack and emulator.
    async fn shared() -> Arc<Self> {
        static SHARED: tokio::sync::Mutex<Weak<Fixture>> =
            tokio::sync::Mutex::const_new(Weak::new());
        let mut shared = SHARED.lock().await;
        if let Some(fixture) = shared.upgrade() {
            return fixture;
        }
        let fixture = Arc::new(Self::start().await);
        *shared = Arc::downgrade(&fixture);
        fixture
    }
}

/// Sends one hostile request: it must be answered with `expected` and a JSON error naming
/// `needle` (HEAD has no body), and change nothing: both tables, the queue list and the
/// session's queue are as they were.
async fn refused(method: &str, path: &str, body: &str, expected: u16, needle: &str) {
    let fixture = Fixture::shared().await;
    let stack = &fixture.stack;
    let before = snapshot(stack, &stack.emulator).await;
    let (status, text) = raw_call(stack, method, path, body.as_bytes()).await;
    let error = if method == "HEAD" {
        String::new()
    } else {
        match serde_json::from_str::<Value>(&text) {
            Ok(answer) if answer["success"] == false => {
                answer["error"].as_str().unwrap_or_default().to_string()
            }
            _ => panic!("not a JSON error: {text:.200}"),
        }
    };
    assert!(
        status == expected && error.contains(needle),
        "expected {expected} naming {needle:?}, got {status}: {error:.300}"
    );
    let after = snapshot(stack, &stack.emulator).await;
    assert_eq!(before.0, after.0, "the sessions table changed");
    assert_eq!(before.1, after.1, "the history table changed");
    assert_eq!(before.2, after.2, "the channels table changed");
    assert_eq!(before.3, after.3, "the queue list changed");
    assert!(
        drain(&fixture.sqs, &fixture.receiver, 1).await.is_empty(),
        "a refused request reached the session"
    );
}

/// One test a case: `name: METHOD path, body => status, "what the error names";`. Each runs on
/// [`RUNTIME`] against the shared [`Fixture`].
macro_rules! hostile {
    ($($(#[$doc:meta])* $name:ident: $method:ident $path:expr, $body:expr => $status:literal, $needle:literal;)*) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                RUNTIME.block_on(refused(stringify!($method), $path, $body, $status, $needle));
            }
        )*
    };
}

hostile! {
    // a query key given twice (SigV4 does not sign which comes first): refused on every route
    get_notify_repeated_user_id: GET "/notify?userId=2&userId=3&message=x", "" => 400, "\"userId\"";
    get_notify_user_repeated_user_id: GET "/notify/user/2?userId=2&userId=3", "" => 400, "\"userId\"";
    get_status_repeated_limit: GET "/status?limit=1&limit=2", "" => 400, "\"limit\"";
    // shapes the everyone route does not read as targets: refused, never widened to everyone
    get_notify_bracketed_user_id: GET "/notify?userId%5B%5D=2&message=x", "" => 400, "\"userId[]\"";
    get_notify_user_ids: GET "/notify?userIds=2&message=x", "" => 400, "\"userIds\"";
    get_notify_bare_user: GET "/notify?user=2&message=x", "" => 400, "\"user\"";
    post_notify_user_ids: POST "/notify", r#"{"userIds":[2],"message":"x"}"# => 400, "\"userIds\"";
    post_notify_target_object: POST "/notify", r#"{"target":{"userId":2}}"# => 400, "\"target\"";
    post_notify_to_list: POST "/notify", r#"{"to":[2,3],"message":"x"}"# => 400, "\"to\"";
    // bad ids of every kind
    get_create_007_2_s: GET "/create/007/2/s", "" => 400, "accountId";
    get_create_1_007_s: GET "/create/1/007/s", "" => 400, "userId";
    get_create_9007199254740992_2_s: GET "/create/9007199254740992/2/s", "" => 400, "accountId";
    get_create_1_9007199254740992_s: GET "/create/1/9007199254740992/s", "" => 400, "userId";
    get_create_negative_account: GET "/create/-1/2/s", "" => 400, "accountId";
    get_create_1_2_a_pct2f_b: GET "/create/1/2/a%2Fb", "" => 400, "sessionId";
    get_create_1_2_a_pct00_b: GET "/create/1/2/a%00b", "" => 400, "sessionId";
    get_create_1_2_pctff: GET "/create/1/2/%FF", "" => 400, "UTF-8";
    get_create_long: GET &format!("/create/1/2/{}", "a".repeat(257)), "" => 400, "sessionId";
    get_status_1_2_a_pct2f_b: GET "/status/1/2/a%2Fb", "" => 400, "sessionId";
    get_notify_user_007: GET "/notify/user/007", "" => 400, "userId";
    get_notify_user_9007199254740992: GET "/notify/user/9007199254740992", "" => 400, "userId";
    get_notify_account_abc: GET "/notify/account/abc", "" => 400, "accountId";
    get_notify_user_2_session_a_pct2f_b: GET "/notify/user/2/session/a%2Fb", "" => 400, "sessionId";
    get_notify_long: GET &format!("/notify/user/2/session/{}", "a".repeat(257)), "" => 400, "sessionId";
    post_notify_session_id_dot: POST "/notify", r#"{"userId":2,"sessionId":"."}"# => 400, "sessionId";
    post_notify_session_id_dot_dot: POST "/notify", r#"{"userId":2,"sessionId":".."}"# => 400, "sessionId";
    get_notify_session_id_dot_dot: GET "/notify?userId=2&sessionId=..", "" => 400, "sessionId";
    get_notify_userid_pctff: GET "/notify?userId=%FF", "" => 400, "userId";
    post_notify_userid_9007199254740992: POST "/notify", r#"{"userId":9007199254740992}"# => 400, "userId";
    post_notify_userid_null: POST "/notify", r#"{"userId":null}"# => 400, "userId";
    post_notify_userid_1_5: POST "/notify", r#"{"userId":1.5}"# => 400, "userId";
    get_messages_user_007: GET "/messages/user/007", "" => 400, "userId";
    // bad retention, limits and page tokens
    get_create_1_2_s2_messageretentionperiod_abc: GET "/create/1/2/s2?MessageRetentionPeriod=abc", "" => 400, "MessageRetentionPeriod";
    get_create_1_2_s2_messageretentionperiod_59: GET "/create/1/2/s2?MessageRetentionPeriod=59", "" => 400, "MessageRetentionPeriod";
    get_messages_user_2_limit_0: GET "/messages/user/2?limit=0", "" => 400, "limit";
    get_messages_user_2_limit_1001: GET "/messages/user/2?limit=1001", "" => 400, "limit";
    get_messages_user_2_limit_ten: GET "/messages/user/2?limit=ten", "" => 400, "limit";
    get_messages_user_2_next_not_a_token: GET "/messages/user/2?next=not-a-token", "" => 400, "next";
    get_status_limit_0: GET "/status?limit=0", "" => 400, "limit";
    get_status_next_e30: GET "/status?next=e30", "" => 400, "next";
    // wrong methods
    head_notify_message_x: HEAD "/notify?message=x", "" => 405, "";
    head_create_1_2_s3: HEAD "/create/1/2/s3", "" => 405, "";
    head_notify_user_2_message_x: HEAD "/notify/user/2?message=x", "" => 405, "";
    delete_notify: DELETE "/notify", "" => 405, "Method Not Allowed";
    put_create_1_2_s3: PUT "/create/1/2/s3", "" => 405, "Method Not Allowed";
    post_create_1_2_s3_unknown_key: POST "/create/1/2/s3", r#"{"_broadcast":true}"# => 400, "_broadcast";
    post_create_1_2_s3_channels_not_a_list: POST "/create/1/2/s3", r#"{"channels":"room"}"# => 400, "channels";
    // invalid, nested, non-object, oversized and empty JSON
    post_notify_user_2_not_json: POST "/notify/user/2", "not json" => 400, "not valid JSON";
    post_notify_user_2_empty_body: POST "/notify/user/2", "" => 400, "not valid JSON";
    post_notify_user_2_truncated_json: POST "/notify/user/2", r#"{"a":"# => 400, "not valid JSON";
    post_notify_user_2_json_array: POST "/notify/user/2", "[1]" => 400, "JSON object";
    post_notify_user_2_text: POST "/notify/user/2", r#""text""# => 400, "JSON object";
    post_notify_user_2_null: POST "/notify/user/2", "null" => 400, "JSON object";
    post_notify_user_2_nested: POST "/notify/user/2", &format!(r#"{{"a":{}{}}}"#, "[".repeat(300), "]".repeat(300)) => 400, "recursion limit";
    post_notify_user_2_big_body: POST "/notify/user/2", &format!(r#"{{"message":"{}"}}"#, "x".repeat(800 * 1024)) => 413, "at most";
    post_notify_user_2_history_too_big: POST "/notify/user/2", &format!(r#"{{"message":"{}"}}"#, "x".repeat(500 * 1024)) => 413, "DynamoDB";
    // Whole numbers are ids, as in the original stack; a fraction is not.
    post_messages_set_read_user_2_1_5: POST "/messages/set-read/user/2", "[1.5]" => 400, "messageIds";
    // oversized query strings
    get_long_query: GET &format!("/notify/user/2?message={}", "x".repeat(60 * 1024)), "" => 413, "query string";
    // target conflicts and near-miss fields
    get_notify_user_2_userid_3_message_x: GET "/notify/user/2?userId=3&message=x", "" => 400, "userId";
    get_notify_account_1_accountid_9_message_x: GET "/notify/account/1?accountId=9&message=x", "" => 400, "accountId";
    get_notify_user_2_session_s_sessionid_t: GET "/notify/user/2/session/s?sessionId=t", "" => 400, "sessionId";
    post_notify_user_2_userid_3: POST "/notify/user/2", r#"{"userId":3}"# => 400, "userId";
    get_notify_sessionid_s_message_x: GET "/notify?sessionId=s&message=x", "" => 400, "ambiguous";
    get_notify_user_id_with_capital_d: GET "/notify?userID=2&message=x", "" => 400, "userID";
    get_notify_user_id_with_underscore: GET "/notify?user_id=2&message=x", "" => 400, "userId";
    get_notify_account_id_in_lower_case: GET "/notify?accountid=1&message=x", "" => 400, "accountId";
    post_notify_session_id_s_userid_2: POST "/notify", r#"{"session_id":"s","userId":2}"# => 400, "sessionId";
    post_notify_user_id_with_capital_u: POST "/notify/user/2", r#"{"UserId":2}"# => 400, "userId";
    // flags
    get_notify_user_2_sqs_only_no_message_x: GET "/notify/user/2?_sqs_only=no&message=x", "" => 400, "_sqs_only";
    post_notify_user_2_sqs_only_no: POST "/notify/user/2", r#"{"_sqs_only":"no"}"# => 400, "_sqs_only";
    post_notify_user_2_sqs_only_2: POST "/notify/user/2", r#"{"_sqs_only":2}"# => 400, "_sqs_only";
    post_notify_user_2_history_and_sqs_only: POST "/notify/user/2", r#"{"_history":true,"_sqs_only":true}"# => 400, "_history";
    // a channel message that also names a user, an account, a session or everyone: ambiguous
    get_notify_channel_room_user_id: GET "/notify/channel/room?userId=2&message=x", "" => 400, "ambiguous";
    get_notify_channel_field_and_account: GET "/notify?channel=room&accountId=1&message=x", "" => 400, "ambiguous";
    post_notify_channel_field_and_session: POST "/notify", r#"{"channel":"room","userId":2,"sessionId":"s"}"# => 400, "ambiguous";
    post_notify_channel_room_broadcast: POST "/notify/channel/room", r#"{"_broadcast":true}"# => 400, "_broadcast";
    get_notify_channel_room_other_channel: GET "/notify/channel/room?channel=other", "" => 400, "channel";
    get_notify_channels_bracketed: GET "/notify?channels%5B%5D=room&message=x", "" => 400, "channel";
    post_notify_channel_list: POST "/notify", r#"{"channel":["room"]}"# => 400, "channel";
    // channel names outside 1-128 of A-Z a-z 0-9 _ - . : @ = +
    get_notify_channel_pct2f: GET "/notify/channel/a%2Fb?message=x", "" => 400, "channel";
    get_notify_channel_slash: GET "/notify/channel/a/b?message=x", "" => 400, "channel";
    get_notify_channel_space: GET "/notify/channel/a%20b?message=x", "" => 400, "channel";
    get_notify_channel_hash: GET "/notify/channel/a%23b?message=x", "" => 400, "channel";
    get_notify_channel_long: GET &format!("/notify/channel/{}?message=x", "a".repeat(129)), "" => 400, "channel";
    get_subscribe_slash: GET "/subscribe/1/2/s/a/b", "" => 400, "channel";
    get_subscribe_unknown_session: GET "/subscribe/1/2/nobody/room", "" => 404, "not found";
    get_subscribe_other_account: GET "/subscribe/9/2/s/other", "" => 404, "not found";
    post_subscribe_batch_one_bad: POST "/subscribe/1/2/s", r#"{"channels":["ok","a b"]}"# => 400, "channel";
    post_subscribe_batch_26: POST "/subscribe/1/2/s", &format!(r#"{{"channels":[{}]}}"#, (0..26).map(|n| format!("\"c{n}\"")).collect::<Vec<_>>().join(",")) => 400, "at most 25";
    post_subscribe_batch_missing: POST "/subscribe/1/2/s", "{}" => 400, "channels";
    post_subscribe_batch_unknown_key: POST "/subscribe/1/2/s", r#"{"channel":"x"}"# => 400, "body key channel";
    get_create_with_a_bad_channel: GET "/create/1/2/s4?channels=ok,a%2Fb", "" => 400, "channel";
    get_unsubscribe_bad_name: GET "/unsubscribe/1/2/s/a%20b", "" => 400, "channel";
    get_channels_bad_name: GET "/channels/a%20b", "" => 400, "channel";
    get_channels_sessions_bad_limit: GET "/channels/room/sessions?limit=0", "" => 400, "limit";
    // every route refuses a query parameter it does not take, naming it
    get_create_unknown_broadcast: GET "/create/1/2/s5?_broadcast=true", "" => 400, "_broadcast";
    get_renew_unknown: GET "/renew/1/2/s?userId=3", "" => 400, "userId";
    get_status_one_unknown: GET "/status/1/2/s?verbose=1", "" => 400, "verbose";
    get_status_list_unknown: GET "/status?userId=2", "" => 400, "userId";
    get_destroy_unknown: GET "/destroy/1/2/s?force=1", "" => 400, "force";
    get_cleanup_unknown: GET "/cleanup?all=1", "" => 400, "all";
    get_cleanup_bad_token: GET "/cleanup?next=e30x", "" => 400, "next";
    get_cleanup_foreign_token: GET "/cleanup?next=eyJ0b2tuIjoiYSJ9", "" => 400, "next";
    get_subscribe_unknown: GET "/subscribe/1/2/s/room?userId=3", "" => 400, "userId";
    get_unsubscribe_unknown: GET "/unsubscribe/1/2/s/room?x=1", "" => 400, "x";
    get_channels_unknown: GET "/channels/room?x=1", "" => 400, "x";
    get_channels_sessions_unknown: GET "/channels/room/sessions?x=1", "" => 400, "x";
    get_messages_unknown: GET "/messages/user/2?userId=3", "" => 400, "userId";
    get_set_read_unknown: GET "/messages/set-read/user/2/message/m?userId=3", "" => 400, "userId";
}
